"""B7: the one way Kassa shows a date or a time — on pages, in emails, in PDFs.

Five styles, nothing else (a template uses them through the `|when(style)` filter, Python code that renders
text — the receipt PDF, a notification — through `format_when`):

=============  ==========================  =====================  =========================
style          en                          nl                     fr
=============  ==========================  =====================  =========================
date           Dec 6, 2026                 6 dec 2026             6 déc. 2026
datetime       Dec 6, 2026, 9:00 AM        6 dec 2026, 09:00      6 déc. 2026, 09:00
datetime_zone  Dec 6, 2026, 9:00 AM CET    6 dec 2026, 09:00 CET  6 déc. 2026, 09:00 CET
time           9:00 AM                     09:00                  09:00
weekday        Sunday                      zondag                 dimanche
=============  ==========================  =====================  =========================

An instant (an aware datetime; a naive one is taken as UTC) is shown in the zone it is given — the
account's — and a calendar day (a `date`) as it is. Times have no seconds. `datetime_zone` is for whatever a
buyer reads (their receipt, confirmation, emails): it adds the zone's abbreviation ("CET", "EDT"), which
reads the same in every language, or the offset ("UTC+05:30") where the zone has no letters.
Machines get ISO 8601 elsewhere (CSV exports, `<time datetime>` attributes), never through here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from babel import Locale, dates

from kassa.clock import zone as clock_zone

DATE, DATETIME, DATETIME_ZONE, TIME, WEEKDAY = "date", "datetime", "datetime_zone", "time", "weekday"
STYLES = (DATE, DATETIME, DATETIME_ZONE, TIME, WEEKDAY)
# Babel widths older templates passed to `|date`/`|datetime`: each means that filter's one style.
_WIDTHS = ("short", "medium", "long", "full")


@lru_cache(maxsize=16)
def _patterns(name: str) -> tuple[Locale, str]:
    """The language, and its pattern for a medium date with a short time ("d MMM y, HH:mm"): worked out once,
    a payments table formats a date on every row."""
    words = Locale.parse(name)
    joined = words.datetime_formats["medium"].format(words.time_formats["short"].pattern,
                                                     words.date_formats["medium"].pattern)
    return words, joined


def check_style(style: str) -> str:
    if style not in STYLES:
        raise ValueError(f"unknown date style {style!r}: use one of {', '.join(STYLES)} (kassa.timefmt)")
    return style


def zone_label(moment: datetime) -> str:
    """ "CET", "EDT", "UTC", or "UTC+05:30" for a zone whose abbreviation is only digits ("+0530")."""
    name = moment.tzname() or "UTC"
    if name.isalpha():
        return name
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def format_when(value: datetime | date | None, style: str = DATETIME, *, locale: str,
                timezone: str | None) -> str:
    """`value` in `style` (see the module's table), in `locale`'s words and `timezone`'s wall-clock time.
    None is ""."""
    check_style(style)
    if value is None:
        return ""
    words, datetime_pattern = _patterns(locale)
    if isinstance(value, datetime):
        moment = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(clock_zone(timezone))
        day: date = moment.date()
    else:
        if style in (DATETIME, DATETIME_ZONE, TIME):
            raise ValueError(f"{value!r} is a day without a time: use the {DATE!r} style")
        moment, day = None, value
    if style == DATE:
        return dates.format_date(day, "medium", locale=words)
    if style == WEEKDAY:
        return dates.format_date(day, "EEEE", locale=words)
    if style == TIME:
        return dates.format_time(moment, "short", tzinfo=moment.tzinfo, locale=words)
    text = dates.format_datetime(moment, datetime_pattern, tzinfo=moment.tzinfo, locale=words)
    return f"{text} {zone_label(moment)}" if style == DATETIME_ZONE else text


def legacy_style(fmt: str | None, default: str) -> str:
    """A style for `|date(...)`/`|datetime(...)`, kept so a template not yet moved to `|when` still shows the
    same text: babel widths mean the filter's own style; anything else must be a style name."""
    if fmt is None or fmt in _WIDTHS:
        return default
    return check_style(fmt)
