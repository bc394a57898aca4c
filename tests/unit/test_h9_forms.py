"""H9: the one input layer (kassa/forms.py) every request parse of a number, id or date goes through."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from flask import Flask
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import NotFound

from kassa.forms import (
    MAX_ID,
    AsciiDigits,
    AsciiIntegerField,
    Form,
    IsoDateField,
    parse_date,
    parse_id,
    parse_int,
    parse_timestamp,
    register,
    safe_filename,
)


@pytest.mark.parametrize("text", ["²", "①", "١٢٣", "４２", "1²", "", " ", "1e3", "0x10", "+1", "1_000", "9" * 20,
                                  str(2**63), "-" + str(2**63 + 1), None, "NaN"])
def test_h9_parse_int_refuses_what_isdigit_accepts_and_what_sqlite_cannot_hold(text):
    assert parse_int(text) is None


def test_h9_parse_int_reads_ascii_numbers_within_bounds():
    assert parse_int(" 42 ") == 42 and parse_int("-7") == -7 and parse_int(str(2**63 - 1)) == 2**63 - 1
    assert parse_int("31", minimum=1, maximum=30) is None and parse_int("0", minimum=1) is None
    assert parse_id("0") is None and parse_id("-1") is None and parse_id(str(MAX_ID)) == MAX_ID
    assert parse_id(str(MAX_ID + 1)) is None


@pytest.mark.parametrize("text", ["2026-02-30", "2026-13-01", "٢٠٢٦-٠١-٠١", "20260101", "2026-1-1", "0000-01-01",
                                  "tomorrow", "", None, "2026-01-01T00:00"])
def test_h9_parse_date_accepts_only_real_dates_written_yyyy_mm_dd(text):
    assert parse_date(text) is None


def test_h9_parse_date_and_timestamp():
    assert parse_date(" 2028-02-29 ") == date(2028, 2, 29)
    assert parse_timestamp("2026-01-01T10:00:00+00:00") == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert parse_timestamp("2026-01-01T10:00:00") is None  # no offset: not one of our cursors
    assert parse_timestamp("٢٠٢٦-01-01T10:00:00+00:00") is None


def test_h9_safe_filename_keeps_no_control_characters_quotes_or_paths():
    assert safe_filename("May\r\nSet-Cookie: x=1", "export") == "May Set-Cookie: x=1"
    assert safe_filename('a"b/../c\\d\te', "x") == "a'b-..-c-d e"
    assert safe_filename("\r\n", "evidence") == "evidence"


def test_h9_int_urls_take_ascii_digits_within_64_bits_only():
    app = Flask(__name__)
    register(app)
    app.add_url_rule("/things/<int:thing_id>", "thing", lambda thing_id: str(thing_id))
    urls = app.url_map.bind("kassa.test")
    assert urls.match("/things/12") == ("thing", {"thing_id": 12})
    assert urls.match(f"/things/{MAX_ID}") == ("thing", {"thing_id": MAX_ID})
    for path in (f"/things/{MAX_ID + 1}", "/things/١٢", "/things/²", "/things/-1"):
        with pytest.raises(NotFound):
            urls.match(path)


class _NumbersForm(Form):
    count = AsciiIntegerField(minimum=1, maximum=120)
    day = IsoDateField(name="from")
    code = AsciiIntegerField()


def test_h9_wtforms_fields_give_field_errors_keyed_by_the_html_name():
    from flask_babel import Babel

    app = Flask(__name__)
    app.config.update(SECRET_KEY="x", WTF_CSRF_ENABLED=False)
    Babel(app)
    with app.test_request_context(method="POST"):
        form = _NumbersForm(formdata=MultiDict({"count": "1²", "from": "2026-02-30", "code": "7"}))
        assert not form.validate()
        assert set(form.error_dict()) == {"count", "from"}
        good = _NumbersForm(formdata=MultiDict({"count": " 12 ", "from": "2026-02-28", "code": ""}))
        assert good.validate(), good.errors
        assert (good.count.data, good.day.date, good.code.data) == (12, date(2026, 2, 28), None)

        class Field:
            data = "11000000²"

        with pytest.raises(Exception, match="digits"):
            AsciiDigits()(None, Field())
