"""The one source of "now": real UTC time, shifted by an account's test clock where it has one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class HasClock(Protocol):
    clock_offset_seconds: int
    timezone: str


def now() -> datetime:
    """Aware UTC now. Tests move it with time-machine; nothing else may call datetime.now()."""
    return datetime.now(UTC)


def account_now(account: HasClock) -> datetime:
    """Now on the account's clock: real time plus however far its test clock has been advanced."""
    return now() + timedelta(seconds=account.clock_offset_seconds or 0)


def account_today(account: HasClock) -> date:
    """The calendar day it is for the merchant, in their own time zone."""
    return account_now(account).astimezone(ZoneInfo(account.timezone)).date()


def local_midnight_utc(day: date, tz: str) -> datetime:
    """Start of a calendar day in a time zone, as a UTC instant (for date filters and daily payouts)."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def now_for(account: HasClock, mode: str) -> datetime:
    """Now for a record of this mode: test-mode records live on the account's test clock (T5);
    live ones always on real time, however far someone moved the test clock."""
    return account_now(account) if mode == "test" else now()
