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
from functools import cache, lru_cache

from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    String,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    literal_column,
    null,
    select,
    union_all,
)

from kassa import timefmt
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
from kassa.money import Money
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


# Statements are built once (per dialect) and run with their values bound: a view runs about ten of them, and
# building and compiling each anew cost more than the database took to answer (P8 bench).


def _bound(name: str):
    return bindparam(name, expanding=True) if name == "modes" else bindparam(name)


def _day_of(column, dialect: str):
    """The merchant's day of `column` (a UTC instant): bound as `zone` (PostgreSQL) or `offset` (SQLite)."""
    if dialect == "postgresql":
        return func.date(func.timezone(bindparam("zone", type_=String()), column))
    return func.date(column, bindparam("offset", type_=String()))


def _day_values(account: Account) -> dict[str, str]:
    if dialect_name(db.session) == "postgresql":
        return {"zone": zone_name(account.timezone)}
    offset = now().astimezone(zone(account.timezone)).utcoffset() or timedelta()
    return {"offset": f"{int(offset.total_seconds())} seconds"}


def _sums(succeeded, same) -> list:
    """The payments' figures in _FIELDS' order, those of disputes left out (read row by row, see _per_day)."""
    return [func.coalesce(func.sum(case((succeeded, _gross_settled()), else_=0)), 0),
            func.coalesce(func.sum(case((succeeded, _refunded_settled()), else_=0)), 0),
            func.coalesce(func.sum(case((succeeded, Payment.fee_settlement_minor), else_=0)), 0),
            func.count(case((succeeded, 1))),
            func.count(case((Payment.status == "failed", 1))),
            func.coalesce(func.sum(case((succeeded, _tax_settled()), else_=0)), 0),
            func.count(case(((Payment.status == "succeeded") & ~same, 1)))]


def _payments_in_period(one_day: bool, dialect: str):
    same = Payment.settlement_currency == _bound("currency")
    succeeded = (Payment.status == "succeeded") & same
    day = bindparam("one_day", type_=String()) if one_day else _day_of(Payment.created_at, dialect)
    mine = (Payment.account_id == _bound("account_id"), Payment.mode.in_(_bound("modes")),
            Payment.created_at >= _bound("start"), Payment.created_at < _bound("end"))
    return same, succeeded, day, mine


@cache
def _per_day_statements(dialect: str, one_day: bool):
    """The sums of the payments made in [start, end), and their disputes and converted refunds (see _per_day)."""
    same, succeeded, day, mine = _payments_in_period(one_day, dialect)
    totals = select(day, Payment.mode, *_sums(succeeded, same)).where(*mine).group_by(
        *([] if one_day else [day]), Payment.mode)
    in_period = (*mine, succeeded)
    # One statement for both (a round trip less): kind 0 a dispute, 1 a refund.
    events = union_all(
        select(literal_column("0"), day, Payment.mode, Dispute.amount_minor, Dispute.fee_minor, Dispute.status,
               Payment.currency, Payment.settlement_currency, Payment.exchange_rate)
        .join(Payment, Payment.id == Dispute.payment_id)
        .where(Dispute.account_id == _bound("account_id"), Dispute.is_inquiry.is_(False), *in_period),
        select(literal_column("1"), day, Payment.mode, Refund.amount_minor, null(), null(), Payment.currency,
               Payment.settlement_currency, Payment.exchange_rate)
        .join(Payment, Payment.id == Refund.payment_id)
        .where(Refund.account_id == _bound("account_id"), Refund.status != RefundStatus.FAILED.value,
               Payment.currency != Payment.settlement_currency, *in_period))
    return totals, events


def _add_events(figures: dict, rows) -> None:
    """Disputes on the payments (few: read apart, by the payment's day): withdrawn less returned, and their fees;
    refunds of payments converted to the account's currency; each converted on its own as the ledger converts it
    (to_settlement)."""
    for kind, value, mode, amount, fee, status, *rate in rows:
        entry = figures.setdefault((_day(value), mode), Figures())
        if kind == 1:
            entry.refunded += to_settlement(_Rate(*rate), amount)
            continue
        if status != DisputeStatus.WON.value:  # a won dispute returned what it withdrew
            entry.disputed += to_settlement(_Rate(*rate), amount)
        entry.dispute_fees += to_settlement(_Rate(*rate), fee) if fee else 0


def _per_day(account: Account, modes: tuple[str, ...], start, end, *, one_day: date | None = None
             ) -> dict[tuple[date, str], Figures]:
    """One pass over the payments made in [start, end), summed per merchant day and mode (`one_day`: all of
    them that day, no day to work out per payment). Sums are of the payments settled in the account's currency;
    the others are counted apart."""
    totals, events = _per_day_statements(dialect_name(db.session), one_day is not None)
    values = {"account_id": account.id, "modes": list(modes), "start": start, "end": end,
              "currency": account.default_currency,
              **({"one_day": one_day.isoformat()} if one_day is not None else _day_values(account))}
    figures = {(_day(value), mode): Figures(*(int(v or 0) for v in sums[:6]), other_currencies=int(sums[6] or 0))
               for value, mode, *sums in db.session.execute(totals, values)}
    _add_events(figures, db.session.execute(events, values))
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


def _total(figures: list[Figures]) -> Figures:
    columns = zip(*((f.gross, f.refunded, f.fees, f.succeeded, f.failed, f.tax, f.disputed, f.dispute_fees,
                     f.other_currencies) for f in figures), strict=True)
    return Figures(*(sum(column) for column in columns)) if figures else Figures()


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
    empty = Figures()
    current = [per_day.get(start_day + timedelta(days=n), empty) for n in range(days)]
    previous = [figures for day, figures in per_day.items() if day < start_day]
    previous_daily = [per_day.get(start_day - timedelta(days=days - n), empty).gross for n in range(days)]
    disputes, previous_disputes = dispute_figures(account, modes, previous_start, start, end)
    subscriptions, previous_subscriptions = subscription_figures(account, modes, previous_start, start, end)
    return Performance(days=days, start=start_day, end=end_day, currency=account.default_currency,
                       current=_total(current), previous=_total(previous),
                       daily=[(start_day + timedelta(days=n), f.gross) for n, f in enumerate(current)],
                       previous_daily=previous_daily,
                       disputes=disputes, previous_disputes=previous_disputes,
                       subscriptions=subscriptions, previous_subscriptions=previous_subscriptions,
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


@cache
def _disputes_statement():
    def decided(period: tuple, status: DisputeStatus):
        return func.count(case((period[1] & (Dispute.status == status.value), 1)))

    periods = []
    for first, last in (("start", "end"), ("previous_start", "start")):
        opened = (Dispute.created_at >= bindparam(first)) & (Dispute.created_at < bindparam(last))
        closed = (Dispute.closed_at >= bindparam(first)) & (Dispute.closed_at < bindparam(last))
        periods.append((opened, closed))
    same_currency = Dispute.currency == bindparam("currency")
    columns = []
    for period in periods:
        columns += [func.count(case((period[0], 1))),
                    func.coalesce(func.sum(case((period[0] & same_currency, Dispute.amount_minor), else_=0)), 0),
                    decided(period, DisputeStatus.WON), decided(period, DisputeStatus.LOST)]
    return (select(*columns).join(Payment, Payment.id == Dispute.payment_id)
            .where(Dispute.account_id == bindparam("account_id"), Payment.mode.in_(_bound("modes")),
                   ((Dispute.created_at >= bindparam("previous_start")) & (Dispute.created_at < bindparam("end")))
                   | ((Dispute.closed_at >= bindparam("previous_start")) & (Dispute.closed_at < bindparam("end")))))


def dispute_figures(account: Account, modes: tuple[str, ...], previous_start, start, end
                    ) -> tuple[DisputeFigures, DisputeFigures]:
    """Disputes opened in [start, end) (count and amount), and decided in it (won, lost): D7's win rate; and the
    same of [previous_start, start). One statement for both periods."""
    row = db.session.execute(_disputes_statement(), {
        "account_id": account.id, "modes": list(modes), "currency": account.default_currency,
        "previous_start": previous_start, "start": start, "end": end}).one()
    values = [int(value or 0) for value in row]
    return DisputeFigures(*values[:4]), DisputeFigures(*values[4:])


_PAYING = (SubscriptionStatus.ACTIVE.value, SubscriptionStatus.PAST_DUE.value)
_ENDED = (SubscriptionStatus.COMPLETED.value, SubscriptionStatus.CANCELLED.value)


@cache
def _subscriptions_statement():
    return (select(Subscription.status, Subscription.frequency, Subscription.amount_minor, Subscription.currency,
                   Subscription.created_at, func.coalesce(Subscription.ended_at, Subscription.cancelled_at))
            .where(Subscription.account_id == bindparam("account_id"), Subscription.mode.in_(_bound("modes")),
                   Subscription.created_at < bindparam("end"), Subscription.status.in_(_PAYING + _ENDED)))


def subscription_figures(account: Account, modes: tuple[str, ...], previous_start, start, end
                         ) -> tuple[SubscriptionFigures, SubscriptionFigures]:
    """Subscribers and monthly recurring revenue (MRR) at `end`, what started and what ended in [start, end);
    and the same of [previous_start, start). The subscriptions are read once, for both periods."""
    rows = db.session.execute(_subscriptions_statement(),
                              {"account_id": account.id, "modes": list(modes), "end": end}).all()
    return (_subscription_period(rows, account.default_currency, start, end),
            _subscription_period(rows, account.default_currency, previous_start, start))


def _subscription_period(rows, currency: str, start, end) -> SubscriptionFigures:
    figures, mrr, new, churned = SubscriptionFigures(), Fraction(0), Fraction(0), Fraction(0)
    for status, frequency, amount, row_currency, created_at, ended_at in rows:
        if created_at >= end:
            continue
        ended = status in _ENDED
        ended_at = ended_at or created_at
        if ended and ended_at < start:
            continue
        monthly = amount * monthly_factor(frequency)
        living_at_end = not ended or ended_at >= end
        if row_currency != currency:
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


@lru_cache(maxsize=8)
def _conversion_statement(limit: int):
    paid = Payment.status == PaymentStatus.SUCCEEDED.value
    tried = CheckoutSession.payment_id.is_not(None) | exists(
        select(PaymentAttempt.id).where(PaymentAttempt.checkout_session_id == CheckoutSession.id))
    return (select(PaymentLink.id, PaymentLink.name, func.count(CheckoutSession.id), func.count(case((tried, 1))),
                   func.count(case((paid, 1))))
            .join(CheckoutSession, CheckoutSession.link_id == PaymentLink.id)
            .outerjoin(Payment, Payment.id == CheckoutSession.payment_id)
            .where(PaymentLink.account_id == bindparam("account_id"), CheckoutSession.mode.in_(_bound("modes")),
                   CheckoutSession.created_at >= bindparam("start"), CheckoutSession.created_at < bindparam("end"))
            .group_by(PaymentLink.id, PaymentLink.name)
            .order_by(func.count(CheckoutSession.id).desc(), PaymentLink.id).limit(limit))


def link_conversion(account: Account, modes: tuple[str, ...], start, end, limit: int = 10) -> list[LinkConversion]:
    """Per link, the funnel of the visits in [start, end): visits (each visit to /pay/<slug> starts its own
    checkout session, L17, so a visit is a session), those where the buyer tried to pay (a payment attempt, or a
    payment), and those paid; the links with the most visits first. Reloads of a session's page are the same
    visit, and aren't counted: that page is served without a write (Q12)."""
    rows = db.session.execute(_conversion_statement(limit),
                              {"account_id": account.id, "modes": list(modes), "start": start, "end": end})
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


def _touched_selects(dialect: str, with_failed: bool, columns: list) -> list:
    """The days of the payments that rows written since the marks touched (each select: kind 2, the day, `columns`)."""
    day = _day_of(Payment.created_at, dialect)
    account_id = bindparam("account_id")
    kind = literal_column("2")
    queries = [
        select(kind, day, *columns).join(LedgerEntry, LedgerEntry.payment_id == Payment.id)
        .where(LedgerEntry.id > bindparam("ledger_id"), LedgerEntry.account_id == account_id),
        select(kind, day, *columns).where(Payment.id > bindparam("payment_id"), Payment.account_id == account_id),
        select(kind, day, *columns).join(Dispute, Dispute.payment_id == Payment.id)
        .where(Dispute.id > bindparam("dispute_id"), Dispute.account_id == account_id),
    ]
    if with_failed:
        queries.append(select(kind, day, *columns)
                       .where(Payment.account_id == account_id, Payment.failed_at > bindparam("failed_at")))
    return queries


def _maxima() -> tuple[int, int, int]:
    row = db.session.execute(select(select(func.max(LedgerEntry.id)).scalar_subquery(),
                                    select(func.max(Payment.id)).scalar_subquery(),
                                    select(func.max(Dispute.id)).scalar_subquery())).one()
    return tuple(int(value or 0) for value in row)


_KEPT, _TODAY, _TOUCHED = 0, 1, 2


@cache
def _days_statement(dialect: str, kept: bool, touched: bool, with_failed: bool, today: bool):
    """One statement (one round trip) for a view's days: rows of kind 0, the kept days summed over the modes (each
    kept day has a row per mode, _keep writes both: a day with a row is a kept day); kind 1, today's payments
    summed (their disputes and converted refunds are read apart); kind 2, the days that rows written since the
    marks touched. Each row: kind, day, then _FIELDS."""
    def zeros() -> list:
        return [literal_column("0") for _name in _FIELDS]

    parts = []
    if kept:
        parts.append(select(literal_column("0"), RevenueDay.day,
                            *(cast(func.sum(getattr(RevenueDay, name)), BigInteger) for name in _FIELDS))
                     .where(RevenueDay.account_id == bindparam("account_id"), RevenueDay.mode.in_(_bound("modes")),
                            RevenueDay.day >= bindparam("first"), RevenueDay.day <= bindparam("last"))
                     .group_by(RevenueDay.day))
    if today:
        same, succeeded, _day_column, mine = _payments_in_period(True, dialect)
        day = bindparam("one_day", type_=String())
        *sums, other = _sums(succeeded, same)
        parts.append(select(literal_column("1"), cast(day, Date) if dialect == "postgresql" else day, *sums,
                            literal_column("0"), literal_column("0"), other).where(*mine))
    if touched:
        parts += _touched_selects(dialect, with_failed, zeros())
    return union_all(*parts)


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
    with_today = last >= today  # today is still being written: never kept
    kept: dict[date, Figures] = {}
    stale: set[date] = set()
    today_figures: Figures | None = None
    if primed or with_today:
        dialect = dialect_name(db.session)
        values = {"account_id": account.id, "modes": list(modes), "first": first, "last": closed_last,
                  **_day_values(account)}
        if primed:
            values.update(ledger_id=mark.since_ledger_id, payment_id=mark.since_payment_id,
                          dispute_id=mark.since_dispute_id, failed_at=mark.since_failed_at)
        if with_today:
            values.update(start=local_midnight_utc(today, account.timezone), currency=account.default_currency,
                          end=local_midnight_utc(today + timedelta(days=1), account.timezone),
                          one_day=today.isoformat())
        statement = _days_statement(dialect, primed and bool(wanted), primed, primed, with_today)
        for kind, day, *sums in db.session.execute(statement, values).all():
            if kind == _TOUCHED:
                if day is not None:
                    stale.add(_day(day))
            elif kind == _KEPT:
                kept[_day(day)] = Figures(*(int(v or 0) for v in sums))
            else:
                today_figures = Figures(*(int(v or 0) for v in sums))
    redo = (wanted - kept.keys()) | (stale & wanted)
    by_day = {day: figures for day, figures in kept.items() if day not in redo}
    fresh: list[tuple[tuple[date, str], Figures]] = []
    if not primed or redo or stale or at - mark.next_at >= timedelta(seconds=SETTLE_SECONDS):
        fresh += [(key, value) for key, value in _keep(account, redo, stale, at).items() if key[0] in redo]
    if today_figures is not None:
        events: dict[tuple[date, str], Figures] = {}
        _add_events(events, db.session.execute(_per_day_statements(dialect, True)[1], values))
        fresh += [((today, "all"), today_figures), *events.items()]
    for (day, mode), value in fresh:
        if (mode == "all" or mode in modes) and first <= day <= last:
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


# --- P8: the daily chart and its table, formatted once ---------------------------------------------------------

@dataclass(frozen=True)
class ChartDay:
    label: str  # the day, in the viewer's language
    amount: str  # its gross volume
    before: str  # the gross volume of the same day of the period before
    x: int
    y: str
    height: str


@dataclass(frozen=True)
class DailyChart:
    width: int
    days: list[ChartDay]  # oldest first
    line: str  # the period before as polyline points; "" when it had nothing


@lru_cache(maxsize=4096)
def _day_label(day: date, language: str) -> str:
    # A day's label never changes: a dashboard formats the same ninety days on every view.
    return timefmt.format_when(day, timefmt.DATE, locale=language, timezone=None)


def daily_chart(performance: Performance, language: str) -> DailyChart:
    """The bars (gross volume per day, scaled to the highest day of either period), the line of the period
    before, and the text of each day for the bars' titles and the table: each day and amount formatted once."""
    top, currency = performance.chart_top, performance.currency
    texts: dict[int, str] = {}

    def money(amount: int) -> str:
        text = texts.get(amount)
        if text is None:
            text = texts[amount] = Money(amount, currency).format(language)
        return text

    days = []
    for n, ((day, amount), before) in enumerate(zip(performance.daily, performance.previous_daily, strict=True)):
        height = amount / top * 96 if top else 0
        days.append(ChartDay(label=_day_label(day, language), amount=money(amount), before=money(before),
                             x=n * 10 + 1, y=f"{100 - height:.2f}", height=f"{height:.2f}"))
    line = "" if not any(performance.previous_daily) else " ".join(
        f"{n * 10 + 5},{100 - (amount / top * 96 if top else 0):.2f}"
        for n, amount in enumerate(performance.previous_daily))
    return DailyChart(width=len(days) * 10, days=days, line=line)
