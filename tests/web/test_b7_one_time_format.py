"""B7: one way to show time — one formatter (kassa.timefmt) for pages, emails and PDFs, in the account's zone
and the viewer's language, the zone named wherever a buyer reads a time."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import time_machine
from flask_babel import force_locale, gettext

from kassa import timefmt
from kassa.timefmt import DATE, DATETIME, DATETIME_ZONE, TIME, WEEKDAY, format_when
from tests.factories import make_merchant, make_payment
from tests.support.app import run_outbox
from tests.support.checkout import start_checkout, submit_checkout
from tests.support.checkout_flow import item, make_link, only_payment, pdf_attachment, plain, subject_of
from tests.support.payments import login, soup_of, table_rows, text_of

SITE = Path(__file__).resolve().parents[2] / "site"
TEMPLATES = SITE / "templates"


# -- the formatter itself (no database) ---------------------------------------------------------------


@pytest.mark.parametrize(("zone", "instant", "language", "expected"), [
    # Amsterdam leaves summer time at 01:00 UTC on 25 October 2026: 02:30 happens twice, the zone tells which.
    ("Europe/Amsterdam", datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "en", "Oct 25, 2026, 2:30 AM CEST"),
    ("Europe/Amsterdam", datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "en", "Oct 25, 2026, 2:30 AM CET"),
    ("Europe/Amsterdam", datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "nl", "25 okt 2026, 02:30 CET"),
    ("Europe/Amsterdam", datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "fr", "25 oct. 2026, 02:30 CET"),
    # New York leaves it at 06:00 UTC on 1 November 2026; just before 04:00 UTC it is still 31 October there.
    ("America/New_York", datetime(2026, 11, 1, 5, 30, tzinfo=UTC), "en", "Nov 1, 2026, 1:30 AM EDT"),
    ("America/New_York", datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "en", "Nov 1, 2026, 1:30 AM EST"),
    ("America/New_York", datetime(2026, 11, 1, 3, 59, 59, tzinfo=UTC), "nl", "31 okt 2026, 23:59 EDT"),
    ("America/New_York", datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "fr", "1 nov. 2026, 01:30 EST"),
    # A zone whose abbreviation is digits gets its offset; a naive value is UTC; a bad zone falls back to UTC.
    ("Asia/Kolkata", datetime(2026, 12, 6, 8, 0, 55, tzinfo=UTC), "en", "Dec 6, 2026, 1:30 PM IST"),
    ("America/Sao_Paulo", datetime(2026, 12, 6, 8, 0, tzinfo=UTC), "fr", "6 déc. 2026, 05:00 UTC-03:00"),
    ("UTC", datetime(2026, 12, 6, 8, 0, 55), "en", "Dec 6, 2026, 8:00 AM UTC"),  # naive: UTC
    ("Mars/Olympus_Mons", datetime(2026, 12, 6, 8, 0, tzinfo=UTC), "nl", "6 dec 2026, 08:00 UTC"),
])
def test_b7_datetime_with_zone_across_dst_boundaries(zone, instant, language, expected):
    assert plain(format_when(instant, DATETIME_ZONE, locale=language, timezone=zone)) == expected
    # The same instant without the zone reads the same, minus the zone: a page beside the receipt agrees.
    assert plain(format_when(instant, DATETIME, locale=language, timezone=zone)) == expected.rsplit(" ", 1)[0]


def test_b7_every_style_in_each_language_has_no_seconds_and_one_date_form():
    instant = datetime(2026, 12, 6, 8, 0, 55, tzinfo=UTC)  # "8:00:55 AM" was what the page used to say
    got = {lang: [plain(format_when(instant, s, locale=lang, timezone="Europe/Amsterdam")) for s in timefmt.STYLES]
           for lang in ("en", "nl", "fr")}
    assert got == {
        "en": ["Dec 6, 2026", "Dec 6, 2026, 9:00 AM", "Dec 6, 2026, 9:00 AM CET", "9:00 AM", "Sunday"],
        "nl": ["6 dec 2026", "6 dec 2026, 09:00", "6 dec 2026, 09:00 CET", "09:00", "zondag"],
        "fr": ["6 déc. 2026", "6 déc. 2026, 09:00", "6 déc. 2026, 09:00 CET", "09:00", "dimanche"],
    }
    assert timefmt.STYLES == (DATE, DATETIME, DATETIME_ZONE, TIME, WEEKDAY)


def test_b7_a_date_is_shown_as_it_is_and_the_date_of_an_instant_is_the_accounts_day():
    assert format_when(date(2026, 3, 8), DATE, locale="fr", timezone="Pacific/Kiritimati") == "8 mars 2026"
    # 03:00 UTC on 1 November is still 31 October in New York.
    late = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    assert format_when(late, DATE, locale="en", timezone="America/New_York") == "Oct 31, 2026"
    assert format_when(late, WEEKDAY, locale="nl", timezone="America/New_York") == "zaterdag"
    assert format_when(None, DATETIME, locale="en", timezone="UTC") == ""


def test_b7_unknown_styles_and_times_of_a_bare_day_are_refused():
    with pytest.raises(ValueError, match="unknown date style 'EEEE'"):
        format_when(date(2026, 1, 1), "EEEE", locale="en", timezone="UTC")
    with pytest.raises(ValueError, match="a day without a time"):
        format_when(date(2026, 1, 1), DATETIME_ZONE, locale="en", timezone="UTC")
    assert timefmt.legacy_style("short", DATETIME) == DATETIME
    with pytest.raises(ValueError):
        timefmt.legacy_style("yyyy-MM-dd", DATE)


# -- nobody bypasses the formatter --------------------------------------------------------------------

# Ways a template could format a date itself: strftime, babel's functions, the pre-B7 filters, a raw ISO string.
_BYPASS = re.compile(r"strftime|format_(date|datetime|time|skeleton|interval)\b|\|\s*(date|datetime)\b|"
                     r"\.isoformat\(|\.(year|month|day|hour|minute)\b\s*[~}]")
# A machine-readable ISO time is fine inside an attribute made for it: <time datetime="…">, <meta content="…">.
_MACHINE_ATTRIBUTE = re.compile(r'(datetime|content)="\{\{[^"{}]*\.isoformat\([^"{}]*\}\}"')
_WHEN = re.compile(r"\|\s*when\b(\s*\(\s*(?P<args>[^)]*)\))?")


def template_problems(name: str, source: str) -> list[str]:
    """Each place in a template that shows a date or time some way other than `|when(<style>)`."""
    problems = []
    for number, line in enumerate(source.splitlines(), start=1):
        for match in _BYPASS.finditer(_MACHINE_ATTRIBUTE.sub("", line)):
            problems.append(f"{name}:{number}: {match.group(0)!r} — use |when(style), styles in kassa.timefmt")
        for match in _WHEN.finditer(line):
            style = re.match(r"""\s*(["'])(\w+)\1""", match.group("args") or '"datetime"')
            if style is None or style.group(2) not in timefmt.STYLES:
                problems.append(f"{name}:{number}: {match.group(0)!r} — the style must be one of "
                                f"{', '.join(timefmt.STYLES)}, written out")
    return problems


def test_b7_no_template_formats_a_date_or_time_itself():
    templates = sorted(p for p in TEMPLATES.rglob("*") if p.is_file() and p.suffix in (".html", ".txt", ".xml"))
    assert len(templates) > 50
    problems = [problem for path in templates
                for problem in template_problems(str(path.relative_to(TEMPLATES)), path.read_text("utf-8"))]
    assert problems == []
    uses = sum(len(_WHEN.findall(path.read_text("utf-8"))) for path in templates)
    assert uses > 60  # the formatter really is what the templates use


@pytest.mark.parametrize("snippet", [
    '{{ payment.created_at.strftime("%d/%m/%y") }}',
    '{{ payment.created_at|datetime("short") }}',
    "{{ payout.payout_date | date }}",
    '{{ format_datetime(payment.created_at, "medium") }}',
    "<td>{{ payment.created_at.isoformat() }}</td>",
    "{{ payment.created_at.day }}/{{ payment.created_at.month }}",
    '{{ payment.created_at|when("long") }}',
    "{{ payment.created_at|when(style) }}",
])
def test_b7_the_template_check_catches_each_way_around_the_formatter(snippet):
    assert template_problems("x.html", snippet)


@pytest.mark.parametrize("snippet", [
    '<time datetime="{{ entry.created_at.isoformat() }}">{{ entry.created_at|when("datetime") }}</time>',
    '<meta name="dcterms.created" content="{{ issued_iso }}">',
    "{{ sub.next_charge_at|when }}",
    "{{ p.start|when('date') }} {{ figures.day|when(\"weekday\") }}",
])
def test_b7_the_template_check_lets_the_formatter_and_machine_attributes_through(snippet):
    assert template_problems("x.html", snippet) == []


def test_b7_python_code_formats_dates_only_through_timefmt():
    """Emails and PDFs rendered from Python (receipt, notifications) use kassa.timefmt, not babel directly."""
    offenders = []
    for path in sorted(SITE.rglob("*.py")):
        if path.name == "timefmt.py" or "migrations" in path.parts:
            continue
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            if re.search(r"\bformat_(date|datetime|time|skeleton|interval)\b", line):
                offenders.append(f"{path.relative_to(SITE)}:{number}: {line.strip()}")
    assert offenders == []


# -- the same payment, everywhere -----------------------------------------------------------------------


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


# Each account pays just around its zone's autumn change of clocks, when a wall-clock time happens twice.
CASES = {
    ("Europe/Amsterdam", "en"): ("Oct 25, 2026, 2:30 AM", "CEST"),
    ("Europe/Amsterdam", "nl"): ("25 okt 2026, 02:30", "CEST"),
    ("Europe/Amsterdam", "fr"): ("25 oct. 2026, 02:30", "CEST"),
    ("America/New_York", "en"): ("Nov 1, 2026, 1:30 AM", "EST"),
    ("America/New_York", "nl"): ("1 nov 2026, 01:30", "EST"),
    ("America/New_York", "fr"): ("1 nov. 2026, 01:30", "EST"),
}
PAID_AT = {"Europe/Amsterdam": datetime(2026, 10, 25, 0, 30, 41, tzinfo=UTC),  # before the change: summer time
           "America/New_York": datetime(2026, 11, 1, 6, 30, 41, tzinfo=UTC)}  # after it: standard time


def _pdf_lines(pdf: bytes) -> list[str]:
    """The PDF's lines as pdftotext (poppler) lays them out, spaces made plain."""
    done = subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True,
                          check=True)
    return [plain(line) for line in done.stdout.decode("utf-8").splitlines()]


@pytest.mark.parametrize(("zone", "language"), list(CASES))
def test_b7_one_payment_reads_the_same_on_panel_index_confirmation_receipt_email_and_pdf(
        client, mailbox, zone, language):
    shown, zone_label = CASES[(zone, language)]
    with_zone = f"{shown} {zone_label}"
    with time_machine.travel(PAID_AT[zone], tick=False):
        owner = make_merchant(timezone=zone, language=language, currency="EUR")
        link = make_link(owner, currency="EUR", items=[item("Concert ticket", "25.00")])
        path = start_checkout(client, link.slug, lang=language)
        paid = submit_checkout(client, path, lang=language, email="buyer@example.com")
        assert paid.status_code == 303, paid.status_code
        confirmation = soup_of(client.get(paid.headers["Location"]))
    payment = only_payment()
    assert payment.created_at == PAID_AT[zone] and payment.language == language
    with force_locale(language):
        date_label, paid_label, column = gettext("Date"), gettext("Date paid"), gettext("Payment date")

    # The buyer: confirmation page, receipt email (text and HTML) and its PDF, each with the zone.
    assert text_of(confirmation.find("dt", string=date_label).find_next_sibling("dd")) == with_zone
    run_outbox()
    [email] = mailbox.to("buyer@example.com")
    assert f"{paid_label}: {with_zone}" in plain(mailbox.text_of(email))
    html = soup_of_html(email)
    assert plain(text_of(html.find("td", string=paid_label).find_next_sibling("td"))) == with_zone
    lines = _pdf_lines(pdf_attachment(email))
    [paid_line] = [line for line in lines if paid_label.upper() in line.upper()] or [lines]
    assert paid_line.upper() == f"{paid_label} {with_zone}".upper(), lines
    assert subject_of(email)  # sent, in the buyer's language

    # The merchant, in the same language: the payment panel and the payments index, the account's zone.
    login(client, owner)
    panel = soup_of(client.get(f"/payments/{payment.id}"))
    assert plain(text_of(panel.find("dt", string=date_label).find_next_sibling("dd"))) == shown
    [row] = table_rows(client.get("/payments/"))
    assert plain(row[column]) == shown


def soup_of_html(message):
    from bs4 import BeautifulSoup

    html = next(part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
                for part in message.walk() if part.get_content_type() == "text/html")
    return BeautifulSoup(html, "html.parser")


@pytest.mark.parametrize(("language", "expected"), [
    ("en", "Payment date: Dec 1, 2026 to Dec 6, 2026"),
    ("fr", "6 déc. 2026"),
])
def test_b7_date_filter_chips_read_like_every_other_date(client, language, expected):
    owner = make_merchant(language=language)
    make_payment(owner.account_id)  # an account without payments is sent to the setup page
    login(client, owner)
    response = client.get("/payments/?from=2026-12-01&to=2026-12-06")
    assert response.status_code == 200
    labels = [plain(text_of(chip)) for chip in soup_of(response).select(".chips .chip__label")]
    assert any(expected in label for label in labels), labels
