"""The one source of "now": real UTC time, shifted by an account's test clock where it has one."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)


class HasClock(Protocol):
    clock_offset_seconds: int
    timezone: str


@lru_cache(maxsize=512)
def zone(name: str | None) -> ZoneInfo:
    """The time zone called `name`, or UTC (logged) when no such zone exists.

    H1: every zone typed in is validated, but a zone stored before that (or by hand) must not make
    recording a payment, a page or a periodic job fail for that merchant: dates fall back to UTC."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        log.warning("unknown time zone %r; using UTC", name)
        return ZoneInfo("UTC")


def zone_name(name: str | None) -> str:
    """`name` if it is a real time zone, else "UTC" (for SQL functions that take a zone name)."""
    return str(zone(name).key)


def now() -> datetime:
    """Aware UTC now. Tests move it with time-machine; nothing else may call datetime.now()."""
    return datetime.now(UTC)


def account_now(account: HasClock) -> datetime:
    """Now on the account's clock: real time plus however far its test clock has been advanced."""
    return now() + timedelta(seconds=account.clock_offset_seconds or 0)


def account_today(account: HasClock) -> date:
    """The calendar day it is for the merchant, in their own time zone."""
    return account_now(account).astimezone(zone(account.timezone)).date()


def local_midnight_utc(day: date, tz: str) -> datetime:
    """Start of a calendar day in a time zone, as a UTC instant (for date filters and daily payouts)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone(tz)).astimezone(UTC)


def now_for(account: HasClock, mode: str) -> datetime:
    """Now for a record of this mode: test-mode records live on the account's test clock (T5);
    live ones always on real time, however far someone moved the test clock."""
    return account_now(account) if mode == "test" else now()
