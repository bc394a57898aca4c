"""The revenue dashboard (P8): how payments performed over a period, against the period before.

Figures are in the account's settlement currency (what reaches the bank), from the payments table:
gross volume of succeeded payments, what was refunded of them, processing fees, net volume, the number
of payments and the share that succeeded, and gross volume per day for the chart. Days are the
merchant's days: PostgreSQL converts each timestamp to the account's time zone exactly; SQLite has no
time zones, so it shifts by the zone's current UTC offset (a day's edge can be an hour off around a DST
change, which a chart of daily bars can live with).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import Integer, case, cast, func, select

from kassa.clock import account_today, local_midnight_utc, now, zone, zone_name
from kassa.database import dialect_name
from kassa.extensions import db
from kassa.models import Account, Payment

PERIODS = (7, 30, 90)


@dataclass
class Figures:
    gross: int = 0
    refunded: int = 0
    fees: int = 0
    succeeded: int = 0
    failed: int = 0
    tax: int = 0  # Q6: the tax in the gross volume (collected for the tax office, not the merchant's revenue)

    @property
    def net(self) -> int:
        return self.gross - self.refunded - self.fees

    @property
    def success_rate(self) -> float | None:
        attempts = self.succeeded + self.failed
        return self.succeeded / attempts if attempts else None

    @property
    def average(self) -> int:
        return self.gross // self.succeeded if self.succeeded else 0


@dataclass
class Performance:
    days: int
    start: date
    end: date
    currency: str
    current: Figures
    previous: Figures
    daily: list[tuple[date, int]] = field(default_factory=list)

    def change(self, name: str) -> float | None:
        """Relative change against the previous period (None when there was nothing to compare with)."""
        before, now = getattr(self.previous, name), getattr(self.current, name)
        return (now - before) / before if before else None

    @property
    def peak(self) -> int:
        return max((amount for _day, amount in self.daily), default=0)


def _gross_settled():
    return Payment.net_settlement_minor + Payment.fee_settlement_minor


def _refunded_settled():
    # The refunded share of the settled gross, per payment (exact when the currencies are the same).
    return cast(Payment.refunded_minor * _gross_settled() / func.nullif(Payment.amount_minor, 0), Integer)


def _tax_settled():
    # Q6: the tax share of the settled gross, per payment (exact when the currencies are the same).
    return cast(Payment.tax_minor * _gross_settled() / func.nullif(Payment.amount_minor, 0), Integer)


def _per_day(account: Account, modes: tuple[str, ...], start, end) -> dict[date, Figures]:
    """One pass over the payments of both periods, summed per merchant day."""
    succeeded = Payment.status == "succeeded"
    day = _local_day(account)
    rows = db.session.execute(
        select(day,
               func.coalesce(func.sum(case((succeeded, _gross_settled()), else_=0)), 0),
               func.coalesce(func.sum(case((succeeded, _refunded_settled()), else_=0)), 0),
               func.coalesce(func.sum(case((succeeded, Payment.fee_settlement_minor), else_=0)), 0),
               func.count(case((succeeded, 1))),
               func.count(case((Payment.status == "failed", 1))),
               func.coalesce(func.sum(case((succeeded, _tax_settled()), else_=0)), 0))
        .where(Payment.account_id == account.id, Payment.mode.in_(modes), Payment.created_at >= start,
               Payment.created_at < end)
        .group_by(day)
    ).all()
    # SQLite answers the day as text, PostgreSQL as a date.
    return {(value if isinstance(value, date) else date.fromisoformat(value)): Figures(*(int(v or 0) for v in sums))
            for value, *sums in rows}


def _total(figures: list[Figures]) -> Figures:
    return Figures(*(sum(getattr(f, name) for f in figures) for name in ("gross", "refunded", "fees", "succeeded",
                                                                         "failed", "tax")))


def _local_day(account: Account):
    if dialect_name(db.session) == "postgresql":
        return func.date(func.timezone(zone_name(account.timezone), Payment.created_at))
    offset = now().astimezone(zone(account.timezone)).utcoffset() or timedelta()
    return func.date(Payment.created_at, f"{int(offset.total_seconds())} seconds")


def performance(account: Account, modes: tuple[str, ...], days: int = 30) -> Performance:
    days = days if days in PERIODS else 30
    end_day = account_today(account)
    start_day = end_day - timedelta(days=days - 1)
    end = local_midnight_utc(end_day + timedelta(days=1), account.timezone)
    previous_start = local_midnight_utc(start_day - timedelta(days=days), account.timezone)
    per_day = _per_day(account, modes, previous_start, end)
    current = [per_day.get(start_day + timedelta(days=n), Figures()) for n in range(days)]
    previous = [figures for day, figures in per_day.items() if day < start_day]
    return Performance(days=days, start=start_day, end=end_day, currency=account.default_currency,
                       current=_total(current), previous=_total(previous),
                       daily=[(start_day + timedelta(days=n), f.gross) for n, f in enumerate(current)])
