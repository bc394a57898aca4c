"""Business-day arithmetic per country: weekends and the country's public holidays are not business days."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

import holidays

# Saturday and Sunday; countries with a Friday/Saturday weekend are not modelled (SPEC O2 only needs
# the processors' own business-day rules, which are Monday to Friday).
_WEEKEND = frozenset({5, 6})


@lru_cache(maxsize=1024)
def _holiday_dates(country: str, year: int) -> frozenset[date]:
    """Public holidays of one country in one year, cached because the holidays package builds them slowly."""
    try:
        calendar = holidays.country_holidays(country, years=year)
    except NotImplementedError:
        # An unknown country still gets weekends; refusing would block payouts for a merchant whose
        # country the holidays package does not cover.
        return frozenset()
    return frozenset(calendar.keys())


def is_business_day(d: date, country: str) -> bool:
    """True when ``d`` is neither a weekend day nor a public holiday in ``country`` (ISO 3166 alpha-2)."""
    if isinstance(d, datetime):
        # A datetime equals no date, so holiday membership would silently fail without this.
        d = d.date()
    if d.weekday() in _WEEKEND:
        return False
    return d not in _holiday_dates(country.strip().upper(), d.year)


def add_business_days(start: date, n: int, country: str) -> date:
    """The date ``n`` business days after ``start`` (before it when ``n`` is negative).

    ``start`` itself is never counted, so Friday + 1 is the next Monday (when that is no holiday);
    ``n == 0`` returns ``start`` unchanged even when it is not a business day.
    """
    if isinstance(start, datetime):
        raise TypeError("add_business_days takes a date; combine the result with the time yourself")
    step = timedelta(days=1 if n >= 0 else -1)
    remaining = abs(n)
    current = start
    while remaining:
        current += step
        if is_business_day(current, country):
            remaining -= 1
    return current
