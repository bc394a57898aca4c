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
from fractions import Fraction

from sqlalchemy import Integer, case, cast, delete, exists, func, literal, select, union

from kassa.clock import account_today, local_midnight_utc, now, zone, zone_name
from kassa.database import dialect_name, locked, write_transaction
from kassa.extensions import db
from kassa.models import (
    Account,
    BillingFrequency,
    CheckoutSession,
    Dispute,
    DisputeStatus,
    LedgerEntry,
    Payment,
    PaymentAttempt,
    PaymentLink,
    PaymentStatus,
    Refund,
    RefundStatus,
    RevenueDay,
    RevenueWatermark,
    Subscription,
    SubscriptionStatus,
)
from kassa.services.money.ledger import to_settlement

PERIODS = (7, 30, 90)
MAX_DAYS = 3660  # a chosen period: up to ten years


@dataclass
class Figures:
    gross: int = 0
    refunded: int = 0
    fees: int = 0
    succeeded: int = 0
    failed: int = 0
    tax: int = 0  # Q6: the tax in the gross volume (collected for the tax office, not the merchant's revenue)
    disputed: int = 0  # withdrawn by disputes on these payments, less what won disputes returned
    dispute_fees: int = 0
    other_currencies: int = 0  # succeeded payments settled in another currency: not in these sums

    @property
    def net(self) -> int:
        """What these payments left in the balance: the ledger's entries for them, summed."""
        return self.gross - self.refunded - self.fees - self.disputed - self.dispute_fees

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
    previous_daily: list[int] = field(default_factory=list)  # the period before, day by day (same length)
    disputes: DisputeFigures | None = None
    previous_disputes: DisputeFigures | None = None
    subscriptions: SubscriptionFigures | None = None
    previous_subscriptions: SubscriptionFigures | None = None
    conversion: list[LinkConversion] = field(default_factory=list)
    chosen: bool = False  # a period the merchant chose by dates, not one of PERIODS

    def change(self, name: str) -> float | None:
        """Relative change against the previous period (None when there was nothing to compare with)."""
        before, now = getattr(self.previous, name), getattr(self.current, name)
        return (now - before) / before if before else None

    @property
    def peak(self) -> int:
        return max((amount for _day, amount in self.daily), default=0)

    @property
    def chart_top(self) -> int:
        """The chart's scale: the highest day of either period."""
        return max(self.peak, max(self.previous_daily, default=0))

    @property
    def funnel_top(self) -> int:
        return max((row.sessions for row in self.conversion), default=0)


def _gross_settled():
    return Payment.net_settlement_minor + Payment.fee_settlement_minor


def _settled(amount):
    # An amount in the payment's currency as a share of the settled gross (exact when the currencies are the same).
    return cast(amount * _gross_settled() / func.nullif(Payment.amount_minor, 0), Integer)


def _refunded_settled():
    # Refunds taken from the balance: settled and on their way (the ledger books a refund when it is made and
    # gives it back if it fails, F6), i.e. the reserved amount. A payment converted to another currency has each
    # refund converted (and rounded) on its own by the ledger: those are summed apart (_converted).
    return case((Payment.currency == Payment.settlement_currency, Payment.refund_reserved_minor), else_=0)


def _tax_settled():
    # Q6: the tax share of the settled gross, per payment (exact when the currencies are the same).
    return _settled(Payment.tax_minor)


def _per_day(account: Account, modes: tuple[str, ...], start, end, *, one_day: date | None = None
             ) -> dict[tuple[date, str], Figures]:
    """One pass over the payments made in [start, end), summed per merchant day and mode (`one_day`: all of
    them that day, no day to work out per payment). Sums are of the payments settled in the account's currency;
    the others are counted apart."""
    same = Payment.settlement_currency == account.default_currency
    succeeded = (Payment.status == "succeeded") & same
    day = _local_day(account) if one_day is None else literal(one_day.isoformat())
    rows = db.session.execute(
        select(day, Payment.mode,
               func.coalesce(func.sum(case((succeeded, _gross_settled()), else_=0)), 0),
               func.coalesce(func.sum(case((succeeded, _refunded_settled()), else_=0)), 0),
               func.coalesce(func.sum(case((succeeded, Payment.fee_settlement_minor), else_=0)), 0),
               func.count(case((succeeded, 1))),
               func.count(case((Payment.status == "failed", 1))),
               func.coalesce(func.sum(case((succeeded, _tax_settled()), else_=0)), 0),
               func.count(case(((Payment.status == "succeeded") & ~same, 1))))
        .where(Payment.account_id == account.id, Payment.mode.in_(modes), Payment.created_at >= start,
               Payment.created_at < end)
        .group_by(*([day] if one_day is None else []), Payment.mode)
    ).all()
    figures = {(_day(value), mode): Figures(*(int(v or 0) for v in sums[:6]), other_currencies=int(sums[6] or 0))
               for value, mode, *sums in rows}
    in_period = (Payment.account_id == account.id, Payment.mode.in_(modes), succeeded, Payment.created_at >= start,
                 Payment.created_at < end)
    # Disputes on these payments (few: read apart, by the payment's day): withdrawn less returned, and their fees,
    # each converted as the ledger converts it (to_settlement).
    disputes = db.session.execute(
        select(day, Payment.mode, Dispute.amount_minor, Dispute.fee_minor, Dispute.status, Payment.currency,
               Payment.settlement_currency, Payment.exchange_rate)
        .join(Payment, Payment.id == Dispute.payment_id)
        .where(Dispute.account_id == account.id, Dispute.is_inquiry.is_(False), *in_period)
    ).all()
    for value, mode, amount, fee, status, *rate in disputes:
        entry = figures.setdefault((_day(value), mode), Figures())
        if status != DisputeStatus.WON.value:  # a won dispute returned what it withdrew
            entry.disputed += to_settlement(_Rate(*rate), amount)
        entry.dispute_fees += to_settlement(_Rate(*rate), fee) if fee else 0
    # Refunds of payments converted to the account's currency: each converted on its own, as the ledger does.
    refunds = db.session.execute(
        select(day, Payment.mode, Refund.amount_minor, Payment.currency, Payment.settlement_currency,
               Payment.exchange_rate)
        .join(Payment, Payment.id == Refund.payment_id)
        .where(Refund.account_id == account.id, Refund.status != RefundStatus.FAILED.value,
               Payment.currency != Payment.settlement_currency, *in_period)
    ).all()
    for value, mode, amount, *rate in refunds:
        figures.setdefault((_day(value), mode), Figures()).refunded += to_settlement(_Rate(*rate), amount)
    return figures


@dataclass
class _Rate:
    """What to_settlement reads of a payment."""

    currency: str
    settlement_currency: str
    exchange_rate: str


def _day(value) -> date:
    # SQLite answers the day as text, PostgreSQL as a date.
    return value if isinstance(value, date) else date.fromisoformat(value)


_SUMMED = ("gross", "refunded", "fees", "succeeded", "failed", "tax", "disputed", "dispute_fees", "other_currencies")


def _total(figures: list[Figures]) -> Figures:
    return Figures(*(sum(getattr(f, name) for f in figures) for name in _SUMMED))


def _local_day(account: Account):
    if dialect_name(db.session) == "postgresql":
        return func.date(func.timezone(zone_name(account.timezone), Payment.created_at))
    offset = now().astimezone(zone(account.timezone)).utcoffset() or timedelta()
    return func.date(Payment.created_at, f"{int(offset.total_seconds())} seconds")


def performance(account: Account, modes: tuple[str, ...], days: int = 30, *, start_day: date | None = None,
                end_day: date | None = None) -> Performance:
    """The last `days` days (one of PERIODS), or the merchant's own period from `start_day` to `end_day`
    (both included, checked by the caller), each against the period of the same length just before it."""
    chosen = start_day is not None and end_day is not None
    if chosen:
        days = (end_day - start_day).days + 1
    else:
        days = days if days in PERIODS else 30
        end_day = account_today(account)
        start_day = end_day - timedelta(days=days - 1)
    start = local_midnight_utc(start_day, account.timezone)
    end = local_midnight_utc(end_day + timedelta(days=1), account.timezone)
    previous_start = local_midnight_utc(start_day - timedelta(days=days), account.timezone)
    per_day = figures_by_day(account, modes, start_day - timedelta(days=days), end_day)
    current = [per_day.get(start_day + timedelta(days=n), Figures()) for n in range(days)]
    previous = [figures for day, figures in per_day.items() if day < start_day]
    previous_daily = [per_day.get(start_day - timedelta(days=days - n), Figures()).gross for n in range(days)]
    return Performance(days=days, start=start_day, end=end_day, currency=account.default_currency,
                       current=_total(current), previous=_total(previous),
                       daily=[(start_day + timedelta(days=n), f.gross) for n, f in enumerate(current)],
                       previous_daily=previous_daily,
                       disputes=dispute_figures(account, modes, start, end),
                       previous_disputes=dispute_figures(account, modes, previous_start, start),
                       subscriptions=subscription_figures(account, modes, start, end),
                       previous_subscriptions=subscription_figures(account, modes, previous_start, start),
                       conversion=link_conversion(account, modes, start, end), chosen=chosen)


# --- P8 (issue 17): disputes, subscriptions and conversion per link, for the same period ----------------------

# A period's amount as a month's: weeks are 12/52 of a year's months apart.
def monthly_factor(frequency: str) -> Fraction:
    unit, count = BillingFrequency(frequency).interval
    return Fraction(52, 12 * count) if unit == "weeks" else Fraction(1, count)


@dataclass
class DisputeFigures:
    opened: int = 0
    disputed: int = 0  # amount, account currency (payments in it only)
    won: int = 0  # closed in the period
    lost: int = 0

    @property
    def win_rate(self) -> float | None:
        decided = self.won + self.lost
        return self.won / decided if decided else None


@dataclass
class SubscriptionFigures:
    active: int = 0  # paying subscribers at the end of the period (active, past due; a free trial once it pays)
    mrr: int = 0  # their recurring amount per month, account currency, minor units (rounded down once)
    new_mrr: int = 0  # of subscriptions started in the period
    churned_mrr: int = 0  # of subscriptions that ended in the period
    other_currencies: int = 0  # active subscriptions in another currency: not in the MRR (no rate to use)


@dataclass
class LinkConversion:
    link_id: int
    name: str
    sessions: int  # visits: each visit to the link's address starts its own checkout session (L17)
    attempted: int  # of them, the buyer tried to pay (at least one payment attempt)
    paid: int

    @property
    def rate(self) -> float | None:
        return self.paid / self.sessions if self.sessions else None


def dispute_figures(account: Account, modes: tuple[str, ...], start, end) -> DisputeFigures:
    """Disputes opened in [start, end) (count and amount), and decided in it (won, lost): D7's win rate."""
    opened_in = (Dispute.created_at >= start) & (Dispute.created_at < end)
    closed_in = (Dispute.closed_at >= start) & (Dispute.closed_at < end)
    same_currency = Dispute.currency == account.default_currency
    row = db.session.execute(
        select(func.count(case((opened_in, 1))),
               func.coalesce(func.sum(case((opened_in & same_currency, Dispute.amount_minor), else_=0)), 0),
               func.count(case((closed_in & (Dispute.status == DisputeStatus.WON.value), 1))),
               func.count(case((closed_in & (Dispute.status == DisputeStatus.LOST.value), 1))))
        .join(Payment, Payment.id == Dispute.payment_id)
        .where(Dispute.account_id == account.id, Payment.mode.in_(modes), opened_in | closed_in)
    ).one()
    return DisputeFigures(*(int(value or 0) for value in row))


_PAYING = (SubscriptionStatus.ACTIVE.value, SubscriptionStatus.PAST_DUE.value)
_ENDED = (SubscriptionStatus.COMPLETED.value, SubscriptionStatus.CANCELLED.value)


def subscription_figures(account: Account, modes: tuple[str, ...], start, end) -> SubscriptionFigures:
    """Subscribers and monthly recurring revenue (MRR) at `end`, what started and what ended in [start, end)."""
    rows = db.session.execute(
        select(Subscription.status, Subscription.frequency, Subscription.amount_minor, Subscription.currency,
               Subscription.created_at, func.coalesce(Subscription.ended_at, Subscription.cancelled_at))
        .where(Subscription.account_id == account.id, Subscription.mode.in_(modes), Subscription.created_at < end,
               Subscription.status.in_(_PAYING + _ENDED))
    ).all()
    figures, mrr, new, churned = SubscriptionFigures(), Fraction(0), Fraction(0), Fraction(0)
    for status, frequency, amount, currency, created_at, ended_at in rows:
        ended = status in _ENDED
        ended_at = ended_at or created_at
        if ended and ended_at < start:
            continue
        monthly = amount * monthly_factor(frequency)
        living_at_end = not ended or ended_at >= end
        if currency != account.default_currency:
            figures.other_currencies += int(living_at_end)
            continue
        if living_at_end:
            figures.active += 1
            mrr += monthly
        if created_at >= start:
            new += monthly
        if ended and start <= ended_at < end:
            churned += monthly
    figures.mrr, figures.new_mrr, figures.churned_mrr = int(mrr), int(new), int(churned)
    return figures


def link_conversion(account: Account, modes: tuple[str, ...], start, end, limit: int = 10) -> list[LinkConversion]:
    """Per link, the funnel of the visits in [start, end): visits (each visit to /pay/<slug> starts its own
    checkout session, L17, so a visit is a session), those where the buyer tried to pay (a payment attempt, or a
    payment), and those paid; the links with the most visits first. Reloads of a session's page are the same
    visit, and aren't counted: that page is served without a write (Q12)."""
    paid = Payment.status == PaymentStatus.SUCCEEDED.value
    tried = CheckoutSession.payment_id.is_not(None) | exists(
        select(PaymentAttempt.id).where(PaymentAttempt.checkout_session_id == CheckoutSession.id))
    rows = db.session.execute(
        select(PaymentLink.id, PaymentLink.name, func.count(CheckoutSession.id), func.count(case((tried, 1))),
               func.count(case((paid, 1))))
        .join(CheckoutSession, CheckoutSession.link_id == PaymentLink.id)
        .outerjoin(Payment, Payment.id == CheckoutSession.payment_id)
        .where(PaymentLink.account_id == account.id, CheckoutSession.mode.in_(modes),
               CheckoutSession.created_at >= start, CheckoutSession.created_at < end)
        .group_by(PaymentLink.id, PaymentLink.name)
        .order_by(func.count(CheckoutSession.id).desc(), PaymentLink.id).limit(limit)
    ).all()
    return [LinkConversion(link_id, name, int(sessions), int(attempted), int(paid_count))
            for link_id, name, sessions, attempted, paid_count in rows]


# --- P8 (issue 17): closed days kept (revenue_days), so a view sums a few hundred rows, not a quarter's payments --

_FIELDS = ("gross", "refunded", "fees", "succeeded", "failed", "tax", "disputed", "dispute_fees", "other_currencies")
SETTLE_SECONDS = 60  # a write transaction open longer than this could be missed by a kept day (see RevenueWatermark)


def _recompute(account: Account, days: set[date]) -> dict[tuple[date, str], Figures]:
    """The figures of `days` (both modes) from the payments, in spans of consecutive days."""
    result: dict[tuple[date, str], Figures] = {}
    ordered = sorted(days)
    while ordered:
        first = last = ordered.pop(0)
        while ordered and ordered[0] == last + timedelta(days=1):
            last = ordered.pop(0)
        # One day more each side: SQLite's day is the zone's current offset, local_midnight_utc the exact one.
        start = local_midnight_utc(first - timedelta(days=1), account.timezone)
        end = local_midnight_utc(last + timedelta(days=2), account.timezone)
        for (day, mode), figures in _per_day(account, ("live", "test"), start, end).items():
            if first <= day <= last:
                result[day, mode] = figures
    return result


def _touched_days(account: Account, mark: RevenueWatermark) -> set[date]:
    """The days of the payments that rows written since the marks touched."""
    day = _local_day(account)
    queries = [
        select(day).join(LedgerEntry, LedgerEntry.payment_id == Payment.id)
        .where(LedgerEntry.id > mark.since_ledger_id, LedgerEntry.account_id == account.id),
        select(day).where(Payment.id > mark.since_payment_id, Payment.account_id == account.id),
        select(day).join(Dispute, Dispute.payment_id == Payment.id)
        .where(Dispute.id > mark.since_dispute_id, Dispute.account_id == account.id),
    ]
    if mark.since_failed_at is not None:
        queries.append(select(day).where(Payment.account_id == account.id, Payment.failed_at > mark.since_failed_at))
    return {_day(value) for (value,) in db.session.execute(union(*queries)).all() if value is not None}


def _maxima() -> tuple[int, int, int]:
    row = db.session.execute(select(select(func.max(LedgerEntry.id)).scalar_subquery(),
                                    select(func.max(Payment.id)).scalar_subquery(),
                                    select(func.max(Dispute.id)).scalar_subquery())).one()
    return tuple(int(value or 0) for value in row)


def figures_by_day(account: Account, modes: tuple[str, ...], first: date, last: date) -> dict[date, Figures]:
    """The figures of each day from `first` to `last` (the account's days), summed over `modes`: closed days from
    revenue_days (recomputed first where something was written since), today from the payments."""
    today = account_today(account)
    closed_last = min(last, today - timedelta(days=1))
    wanted = {first + timedelta(days=n) for n in range((closed_last - first).days + 1)}
    at = now()
    mark = db.session.get(RevenueWatermark, account.id)
    if mark is not None and (mark.timezone, mark.currency) != (account.timezone, account.default_currency):
        mark = None  # kept for another time zone or currency: all of it again
    primed = mark is not None and mark.since_failed_at is not None
    kept = {} if not primed else {(_day(day), mode): values for day, mode, *values in db.session.execute(
        select(RevenueDay.day, RevenueDay.mode, *(getattr(RevenueDay, name) for name in _FIELDS))
        .where(RevenueDay.account_id == account.id, RevenueDay.day >= first, RevenueDay.day <= closed_last))}
    stale = set() if not primed else _touched_days(account, mark)
    redo = (wanted - {day for day, _mode in kept}) | (stale & wanted)
    figures = {key: Figures(*values) for key, values in kept.items() if key[0] not in redo}
    if not primed or redo or stale or at - mark.next_at >= timedelta(seconds=SETTLE_SECONDS):
        figures.update(_keep(account, redo, stale, at))
    if last >= today:  # today is still being written: never kept
        figures.update(_per_day(account, ("live", "test"), local_midnight_utc(today, account.timezone),
                                local_midnight_utc(today + timedelta(days=1), account.timezone), one_day=today))
    by_day: dict[date, Figures] = {}
    for (day, mode), value in figures.items():
        if mode in modes and first <= day <= last:
            by_day[day] = _total([by_day[day], value]) if day in by_day else value
    return by_day


_MODES = ("live", "test")


def _keep(account: Account, redo: set[date], stale: set[date], at) -> dict[tuple[date, str], Figures]:
    """Recompute the days `redo` and keep them; drop the other `stale` days (recomputed when next asked for);
    move the marks on. One write transaction, the account's mark row locked."""
    with write_transaction(db.session):
        maxima = _maxima()  # before the payments are read: a row written meanwhile is seen by the next view
        mark = db.session.scalar(locked(db.session, select(RevenueWatermark)
                                        .where(RevenueWatermark.account_id == account.id)))
        if mark is None or (mark.timezone, mark.currency) != (account.timezone, account.default_currency):
            db.session.execute(delete(RevenueDay).where(RevenueDay.account_id == account.id))
            if mark is None:
                mark = RevenueWatermark(account_id=account.id)
                db.session.add(mark)
            mark.timezone, mark.currency = account.timezone, account.default_currency
            # Not primed yet (since_failed_at None): a row whose transaction is open now may have a lower id than
            # the maxima, so no day is kept until a minute later, when every such transaction has committed and
            # days computed from scratch include it; the marks taken now are then where the looks start.
            mark.since_ledger_id = mark.since_payment_id = mark.since_dispute_id = 0
            mark.since_failed_at = None
            mark.next_ledger_id, mark.next_payment_id, mark.next_dispute_id = maxima
            mark.next_at = at
        elif at - mark.next_at >= timedelta(seconds=SETTLE_SECONDS):
            # Everything up to the marks taken a minute ago has committed by now: look from there on.
            mark.since_ledger_id, mark.since_payment_id, mark.since_dispute_id = (
                mark.next_ledger_id, mark.next_payment_id, mark.next_dispute_id)
            mark.since_failed_at = mark.next_at - timedelta(seconds=SETTLE_SECONDS)
            mark.next_ledger_id, mark.next_payment_id, mark.next_dispute_id = maxima
            mark.next_at = at
        computed = _recompute(account, redo) if redo else {}
        if mark.since_failed_at is None:
            return computed  # not primed (above): these figures are shown, not kept
        if redo | stale:
            db.session.execute(delete(RevenueDay).where(RevenueDay.account_id == account.id,
                                                        RevenueDay.day.in_(sorted(redo | stale))))
        for day in sorted(redo):  # empty days too, each mode: a day without a row is one not computed yet
            for mode in _MODES:
                figures = computed.setdefault((day, mode), Figures())
                db.session.add(RevenueDay(account_id=account.id, mode=mode, day=day,
                                          **{name: getattr(figures, name) for name in _FIELDS}))
    return computed
