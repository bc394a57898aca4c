"""The merchant's home (B1): what needs them now, today's figures against the same weekday last week, and the
onboarding steps still to do.

Reads only. Every query is scoped to the account and to the modes the user sees (the "View test data" switch),
so another merchant's records, and test records with the switch off, never appear.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from kassa.clock import local_midnight_utc, now, zone
from kassa.extensions import db
from kassa.models import (
    UNPAID_STATUSES,
    Account,
    AuditEvent,
    Dispute,
    DisputeStatus,
    Export,
    ExportStatus,
    Payment,
    PaymentLink,
    PaymentStatus,
    Payout,
    PayoutStatus,
    Refund,
    RefundStatus,
    Subscription,
    SubscriptionStatus,
)

# How far back a failed payout or export still asks for attention: older ones have been dealt with or
# superseded (a failed payout's funds go out with a later one).
FAILED_PAYOUT_DAYS = 14
FAILED_EXPORT_DAYS = 7
LIST_LIMIT = 20


@dataclass
class Attention:
    disputes: list[Dispute] = field(default_factory=list)
    past_due: list[Subscription] = field(default_factory=list)
    failed_payouts: list[Payout] = field(default_factory=list)
    paused_links: list[PaymentLink] = field(default_factory=list)
    failed_exports: list[Export] = field(default_factory=list)

    @property
    def count(self) -> int:
        return (len(self.disputes) + len(self.past_due) + len(self.failed_payouts) + len(self.paused_links)
                + len(self.failed_exports))


@dataclass(frozen=True)
class Figure:
    """One of today's figures in one currency, and the same window of the same weekday a week ago."""

    currency: str | None  # None for a count
    today: int
    last_week: int

    @property
    def change_percent(self) -> int | None:
        if not self.last_week:
            return None
        return round((self.today - self.last_week) * 100 / self.last_week)


@dataclass
class Figures:
    gross: list[Figure]
    payments: Figure
    refunds: list[Figure]
    day: date


def attention(account: Account, user_id: int, modes: tuple[str, ...], can_manage_payments: bool) -> Attention:
    """What needs the merchant: disputes (most urgent first), past-due subscriptions, failed payouts, paused
    links and the user's failed exports. Payment matters only for those who may act on them."""
    result = Attention()
    current = now()
    if can_manage_payments:
        result.disputes = list(db.session.scalars(
            select(Dispute).join(Payment, Payment.id == Dispute.payment_id)
            .where(Dispute.account_id == account.id, Payment.mode.in_(modes),
                   Dispute.status == DisputeStatus.NEEDS_RESPONSE.value, Dispute.answer.is_(None))
            .order_by(Dispute.evidence_due_by, Dispute.id).limit(LIST_LIMIT)))
        result.past_due = list(db.session.scalars(
            select(Subscription).where(Subscription.account_id == account.id, Subscription.mode.in_(modes),
                                       Subscription.status == SubscriptionStatus.PAST_DUE.value)
            .order_by(Subscription.past_due_since, Subscription.id).limit(LIST_LIMIT)))
        result.failed_payouts = list(db.session.scalars(
            select(Payout).where(Payout.account_id == account.id, Payout.mode.in_(modes),
                                 Payout.status == PayoutStatus.FAILED.value,
                                 Payout.payout_date >= (current - timedelta(days=FAILED_PAYOUT_DAYS)).date())
            .order_by(Payout.payout_date.desc(), Payout.id.desc()).limit(LIST_LIMIT)))
    # A paused link refuses cards in both modes, so it shows whatever the switch says.
    result.paused_links = list(db.session.scalars(
        select(PaymentLink).where(PaymentLink.account_id == account.id, PaymentLink.deleted_at.is_(None),
                                  PaymentLink.card_paused_until > current)
        .order_by(PaymentLink.card_paused_until.desc(), PaymentLink.id).limit(LIST_LIMIT)))
    result.failed_exports = list(db.session.scalars(
        select(Export).where(Export.account_id == account.id, Export.user_id == user_id,
                             Export.status == ExportStatus.FAILED.value,
                             Export.created_at >= current - timedelta(days=FAILED_EXPORT_DAYS))
        .order_by(Export.created_at.desc(), Export.id.desc()).limit(LIST_LIMIT)))
    return result


def time_left(due: datetime, at: datetime | None = None) -> dict[str, Any]:
    """A dispute's countdown: days or hours left, or overdue."""
    left = due - (at or now())
    seconds = left.total_seconds()
    if seconds <= 0:
        return {"overdue": True, "days": 0, "hours": 0, "urgent": True}
    days, hours = int(seconds // 86400), int(seconds // 3600)
    return {"overdue": False, "days": days, "hours": hours, "urgent": days < 3}


def _window(account: Account, days_back: int) -> tuple[datetime, datetime]:
    """From midnight to this time of day, `days_back` days ago, on the merchant's clock and in their zone."""
    current = now()
    day = current.astimezone(zone(account.timezone)).date() - timedelta(days=days_back)
    start = local_midnight_utc(day, account.timezone)
    return start, current - timedelta(days=days_back)


def _sums(account_id: int, modes: tuple[str, ...], start: datetime, end: datetime) -> tuple[dict, int, dict]:
    gross: dict[str, int] = {}
    count = 0
    for currency, total, number in db.session.execute(
        select(Payment.currency, func.coalesce(func.sum(Payment.amount_minor), 0), func.count())
        .where(Payment.account_id == account_id, Payment.mode.in_(modes),
               Payment.status == PaymentStatus.SUCCEEDED.value,
               Payment.created_at >= start, Payment.created_at < end)
        .group_by(Payment.currency)
    ):
        gross[currency] = int(total)
        count += int(number)
    refunds = {currency: int(total) for currency, total in db.session.execute(
        select(Refund.currency, func.coalesce(func.sum(Refund.amount_minor), 0))
        .join(Payment, Payment.id == Refund.payment_id)
        .where(Refund.account_id == account_id, Payment.mode.in_(modes), Refund.status != RefundStatus.FAILED.value,
               Refund.created_at >= start, Refund.created_at < end)
        .group_by(Refund.currency))}
    return gross, count, refunds


def _pair(today: dict[str, int], last: dict[str, int], default_currency: str) -> list[Figure]:
    currencies = sorted(set(today) | set(last) | {default_currency},
                        key=lambda code: (code != default_currency, code))
    return [Figure(code, today.get(code, 0), last.get(code, 0)) for code in currencies]


def figures(account: Account, modes: tuple[str, ...]) -> Figures:
    """Today so far against the same weekday last week up to the same time: gross, payments, refunds."""
    gross, count, refunds = _sums(account.id, modes, *_window(account, 0))
    gross_before, count_before, refunds_before = _sums(account.id, modes, *_window(account, 7))
    return Figures(gross=_pair(gross, gross_before, account.default_currency),
                   payments=Figure(None, count, count_before),
                   refunds=_pair(refunds, refunds_before, account.default_currency),
                   day=now().astimezone(zone(account.timezone)).date())


@dataclass(frozen=True)
class OnboardingStep:
    key: str
    done: bool


def onboarding(account: Account) -> list[OnboardingStep]:
    """The getting-started steps; the home shows only those not done yet."""
    # Branding is done once it has been saved, even with the default colour kept.
    branded = bool(account.logo_path) or db.session.scalar(
        select(AuditEvent.id).where(AuditEvent.account_id == account.id,
                                    AuditEvent.action == "account.branding_updated").limit(1)) is not None
    has_link = db.session.scalar(select(PaymentLink.id).where(PaymentLink.account_id == account.id).limit(1))
    # B2: a declined or incomplete attempt (nothing collected) is not a payment made.
    paid = Payment.status.not_in(UNPAID_STATUSES)
    tested = db.session.scalar(select(Payment.id).where(Payment.account_id == account.id,
                                                        Payment.mode == "test", paid).limit(1))
    live = db.session.scalar(select(Payment.id).where(Payment.account_id == account.id,
                                                      Payment.mode == "live", paid).limit(1))
    return [OnboardingStep("brand", branded), OnboardingStep("link", has_link is not None),
            OnboardingStep("test", tested is not None or live is not None)]
