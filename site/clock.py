"""The one source of "now": real UTC time, shifted by a test subscription's own test clock where it has one (B9)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)
# The demo seed's history (`back_dated`): empty everywhere else.
_BACK_DATED: ContextVar[timedelta] = ContextVar("kassa_back_dated", default=timedelta())


class HasClock(Protocol):
    """A record with its own clock: a subscription (test ones may run ahead of real time, B9)."""

    mode: str
    clock_offset_seconds: int


class HasZone(Protocol):
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
    return datetime.now(UTC) - _BACK_DATED.get()


@contextmanager
def back_dated(seconds: int) -> Iterator[None]:
    """For `flask kassa seed-demo` only: inside this block (this thread), now is `seconds` ago, so the demo's
    test payments, made through the real checkout, get a history of their own days (B9: there is no account
    test clock to move any more)."""
    token = _BACK_DATED.set(timedelta(seconds=seconds))
    try:
        yield
    finally:
        _BACK_DATED.reset(token)


def account_today(account: HasZone) -> date:
    """The calendar day it is for the merchant, in their own time zone (real time: reports, filters and home
    figures never follow a test clock, B9)."""
    return now().astimezone(zone(account.timezone)).date()


def local_midnight_utc(day: date, tz: str) -> datetime:
    """Start of a calendar day in a time zone, as a UTC instant (for date filters and daily payouts)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone(tz)).astimezone(UTC)


def clock_now(record: HasClock, at: datetime | None = None) -> datetime:
    """Now on a subscription's own clock (B9): a test subscription runs `clock_offset_seconds` ahead of real
    time once its test clock was advanced; live ones always run on real time, whatever is stored. `at` is the
    real moment to start from (one moment for a whole batch); real now by default."""
    base = at if at is not None else now()
    if record.mode != "test":
        return base
    return base + timedelta(seconds=record.clock_offset_seconds or 0)
