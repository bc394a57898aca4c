"""Billing dates: the n-th charge of a subscription, counted from its anchor in the merchant's time zone.

Dates are always computed from the anchor, never from the previous charge, so an anchor on the 31st
bills on the last day of shorter months and returns to the 31st afterwards (Jan 31 → Feb 28 → Mar 31).
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

from kassa.clock import zone
from kassa.models import BillingFrequency


def _add_months(local: datetime, months: int) -> datetime:
    month_index = local.month - 1 + months
    year, month = local.year + month_index // 12, month_index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)


def charge_date(anchor: datetime, frequency: str | BillingFrequency, n: int, timezone: str) -> datetime:
    """When the n-th charge after the first falls due (n=0 is the anchor itself), as aware UTC."""
    unit, count = BillingFrequency(frequency).interval
    local = anchor.astimezone(zone(timezone))
    if unit == "weeks":
        shifted = local.replace(tzinfo=None) + timedelta(weeks=count * n)
    else:
        shifted = _add_months(local.replace(tzinfo=None), count * n)
    # Re-attach the zone to the wall-clock time, so a DST change doesn't move the time of day.
    return shifted.replace(tzinfo=zone(timezone)).astimezone(UTC)
