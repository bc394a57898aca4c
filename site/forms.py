"""The one input layer for numbers, dates and ids that arrive in requests (H9).

A hostile test run found 42 server errors from the same few mistakes made in many places: `str.isdigit()`
accepts characters `int()` refuses ("²", "①") and others `int()` reads but nobody typed on purpose ("١٢٣"),
numbers past 2**63 overflow SQLite's INTEGER (and PostgreSQL's bigint), and `date.fromisoformat` raises on
"2026-02-30". Every view and service that turns request text into an int, an id or a date goes through the
functions here, and the WTForms fields below are built on the same functions, so a fix here is a fix
everywhere:

    parse_int(text, minimum=1, maximum=120)   # ASCII digits only, bounded; None when it isn't one
    parse_id(text)                             # a positive row id either database can hold, or None
    parse_date(text)                           # a real calendar date written YYYY-MM-DD, or None
    arg_int("page", 1, minimum=1)              # a query parameter; the default when absent or invalid
    AsciiIntegerField / IsoDateField           # the same rules as WTForms fields with field-level messages
    Form, FlagField                            # the base of every form (M6) and its "1"-means-on checkbox

Every form is a `Form` (M6): views read what was posted through one, never `request.form` by hand; only
`form_has_nul` here reads the raw form, for the NUL guard that runs before any form exists.

The URL converter `int` is replaced app-wide (see `register`) by one that matches ASCII digits only and
stops at the largest id, so `/payments/99999999999999999999` is a 404 instead of an overflow.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

from flask import Flask, request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.form import SUBMIT_METHODS
from werkzeug.datastructures import CombinedMultiDict, MultiDict
from werkzeug.routing import IntegerConverter
from wtforms import Field, FieldList, FileField, ValidationError
from wtforms.fields import StringField

# The largest value a signed 64-bit column holds: SQLite's INTEGER and PostgreSQL's bigint alike.
MAX_INT = 2**63 - 1
MIN_INT = -(2**63)
MAX_ID = MAX_INT
# The last page number a list accepts: `page * size` must stay an OFFSET either database takes.
MAX_PAGE = 10**9

_INT = re.compile(r"-?[0-9]{1,19}")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def is_ascii_digits(text: object) -> bool:
    """True for a non-empty string of the ten ASCII digits and nothing else ("²" and "١" are not)."""
    return isinstance(text, str) and text.isascii() and text.isdigit()


def parse_int(value: object, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
    """`value` (surrounding spaces allowed) as an int written in ASCII digits with an optional minus sign,
    within [minimum, maximum] and always within a signed 64-bit integer; None otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = value.strip() if isinstance(value, str) else ""
        if not _INT.fullmatch(text):
            return None
        number = int(text)
    low = MIN_INT if minimum is None else max(minimum, MIN_INT)
    high = MAX_INT if maximum is None else min(maximum, MAX_INT)
    return number if low <= number <= high else None


def parse_id(value: object) -> int | None:
    """A submitted record id as an int, or None when it is empty, not a number, or out of range."""
    return parse_int(value, minimum=1, maximum=MAX_ID)


def parse_date(value: object) -> date | None:
    """A real calendar date written YYYY-MM-DD (ASCII), or None ("2026-02-30", "٢٠٢٦-..." and "" are None)."""
    text = value.strip() if isinstance(value, str) else ""
    match = _DATE.fullmatch(text)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def parse_timestamp(value: object) -> datetime | None:
    """An ISO 8601 date and time with its UTC offset, in ASCII (a page cursor), as an aware datetime, or None."""
    text = value.strip() if isinstance(value, str) else ""
    if not text or not text.isascii() or len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def arg_int(name: str, default: int | None = None, *, minimum: int | None = None,
            maximum: int | None = None) -> int | None:
    """The query parameter `name` as a bounded int; `default` when it is missing or not such a number."""
    number = parse_int(request.args.get(name), minimum=minimum, maximum=maximum)
    return default if number is None else number


def arg_id(name: str) -> int | None:
    """The query parameter `name` as a row id (None when missing or not one)."""
    return parse_id(request.args.get(name))


def safe_filename(name: object, fallback: str) -> str:
    """A name fit for a file and a Content-Disposition header: control characters (CR/LF, tabs), quotes,
    backslashes and path separators become spaces or dashes, runs of spaces one (H9: CR/LF in an export's or
    an evidence file's name broke the download with a 500). `fallback` when nothing is left."""
    text = name if isinstance(name, str) else ""
    cleaned = "".join(" " if unicodedata.category(ch)[0] == "C" else "-" if ch in '/\\' else "'" if ch == '"'
                      else ch for ch in text)
    cleaned = " ".join(cleaned.split()).strip(". ")
    return cleaned[:200] or fallback


# -- WTForms fields on the same rules -------------------------------------------------------------------


class AsciiIntegerField(Field):
    """An integer field that reads ASCII digits only, bounded (default: a signed 64-bit integer)."""

    def __init__(self, label=None, validators=None, *, minimum: int | None = None, maximum: int | None = None,
                 message=None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.minimum, self.maximum = minimum, maximum
        self.message = message or _l("Enter a whole number.")
        self.raw = ""

    def _value(self) -> str:
        return self.raw if self.raw_data else ("" if self.data is None else str(self.data))

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        self.raw = valuelist[0] if isinstance(valuelist[0], str) else ""
        if not self.raw.strip():
            self.data = None
            return
        self.data = parse_int(self.raw, minimum=self.minimum, maximum=self.maximum)
        if self.data is None:
            raise ValueError(str(self.message))


class IsoDateField(StringField):
    """A date typed or picked as YYYY-MM-DD; a date that does not exist ("2026-02-30") is a field error."""

    def __init__(self, label=None, validators=None, *, message=None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.message = message or _l("Enter a real date as YYYY-MM-DD.")
        self.date: date | None = None

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        text = (self.data or "").strip()
        self.date = parse_date(text) if text else None
        if text and self.date is None:
            raise ValueError(str(self.message))


class AsciiDigits:
    """A WTForms validator: the field holds ASCII digits only (spaces allowed around), `length` of them
    when given. For numbers kept as text (routing and account numbers, codes)."""

    def __init__(self, message=None):
        self.message = message or _l("Use the digits 0 to 9 only.")

    def __call__(self, form, field):
        text = (field.data or "").strip() if isinstance(field.data, str) else ""
        if text and not is_ascii_digits(text):
            raise ValidationError(str(self.message))


_POSTED = object()


class Form(FlaskForm):
    """Base form: CSRF is checked app-wide by CSRFProtect (and its htmx header), so not again per form.

    Built without arguments it reads the posted form fields (M6). Unlike FlaskForm it never reads a JSON body
    in their place (a list or a number where text belongs was a 500, H9), and it mixes uploads in only when it
    declares a file field, so a file can't arrive where a text field reads a string.
    """

    class Meta:
        csrf = False

        def get_translations(self, form):
            # Kassa's messages are its own (flask-babel, looked up when shown). WTForms' catalogue would look up
            # the request's language while the form is built (for default labels) and so fix it for the rest
            # of the request: Settings → Profile would then confirm a language switch in the old language.
            return None

    def __init__(self, formdata=_POSTED, **kwargs):
        if formdata is _POSTED:
            formdata = _posted_fields(self)
        super().__init__(formdata=formdata, **kwargs)

    def value_dict(self) -> dict:
        """{input name: value}, the shape the templates' `values` take (what was typed, kept on an error)."""
        return {field.name: field.data for field in self}

    def error_dict(self) -> dict[str, str]:
        """{field name: first message}, the shape the templates' `errors` take."""
        return {self._fields[key].name: str(messages[0]) for key, messages in self.errors.items() if messages}

    def posted(self) -> dict[str, str]:
        """{field name: value} of the fields the request sent (the first value of each), for a service that
        takes a submitted form as a mapping (the checkout's) and a page that shows back what was typed."""
        return {field.name: field.data for field in self if field.raw_data}


def _posted_fields(form: Form):
    if request.method not in SUBMIT_METHODS:
        return None
    # Uploads only under this form's file fields' names: an upload sent under a text field's name would reach
    # that field as a file object instead of text.
    file_names = {unbound.kwargs.get("name", key) for key, unbound in form._unbound_fields
                  if issubclass(unbound.field_class, FileField)}
    uploads = MultiDict([(key, upload) for key, upload in request.files.items(multi=True) if key in file_names])
    if uploads:
        return CombinedMultiDict((uploads, request.form))
    return request.form or None


def posted_pairs() -> list[tuple[str, str]]:
    """Every posted field as (name, value), in order. For the API (I3), whose Stripe-shaped parameters
    (`line_items[0][price_data][currency]`) are no HTML form: it decodes the brackets itself."""
    return list(request.form.items(multi=True))


def form_has_nul() -> bool:
    """True when a posted field's name or value contains NUL. For kassa.input_guard, which runs before any view
    and so before any form exists, and must see every field as sent, declared by a form or not."""
    return any("\x00" in key or "\x00" in value for key, value in request.form.items(multi=True))


class FlagField(Field):
    """A checkbox posted with the value "1": True only for exactly that (absent or any other value: False)."""

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators, default=False, **kwargs)

    def process_formdata(self, valuelist):
        self.data = bool(valuelist) and valuelist[0] == "1"


class MultiValueField(Field):
    """Every value posted under one name (a group of checkboxes), as a list of at most `limit` strings."""

    def __init__(self, label=None, validators=None, *, limit: int | None = None, **kwargs):
        super().__init__(label, validators, default=list, **kwargs)
        self.limit = limit

    def process_formdata(self, valuelist):
        self.data = list(valuelist[: self.limit])


class NumberedRows(FieldList):
    """Repeated rows posted as `<name>-<n>-<part>` (line items, filter conditions), in the order of n.

    A row exists when some field name is exactly `<name>-<n>-` followed by `part` (a regular expression), n
    written in at most `digits` ASCII digits without leading zeros (the name the row's own fields are read
    under). FieldList itself takes any name that starts with `<name>` and counts what `isdigit()` accepts
    ("²" then failed in `int()`), so junk names made rows or 500s.
    """

    def __init__(self, unbound_field, label=None, validators=None, *, digits: int, part: str, **kwargs):
        super().__init__(unbound_field, label, validators, **kwargs)
        self.digits, self.part = digits, part

    def _extract_indices(self, prefix, formdata):
        key = re.compile(rf"{re.escape(prefix)}-(0|[1-9][0-9]{{0,{self.digits - 1}}})-(?:{self.part})")
        for name in formdata:
            match = key.fullmatch(name)
            if match:
                yield int(match[1])


# -- the URL converter --------------------------------------------------------------------------------


class BoundedIntConverter(IntegerConverter):
    """`<int:...>` matching ASCII digits only and at most a signed 64-bit integer: anything else is a 404
    instead of reaching the database as an id no row can have (which overflowed SQLite)."""

    regex = r"[0-9]+"

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=MAX_ID if max is None else max,
                         signed=signed)
        if signed:
            self.regex = r"-?[0-9]+"


def register(app: Flask) -> None:
    app.url_map.converters["int"] = BoundedIntConverter
