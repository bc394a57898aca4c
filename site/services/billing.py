"""Subscriptions that bill themselves (S1–S3): one charge per period, exactly once, on the account's clock.

Each renewal follows the checkout's three steps. A payment row for (subscription, period, attempt) is
written first — unique in the database, so two ticks racing cannot both create it — then the saved card
is charged with that row's idempotency key, then the outcome is recorded. If a tick dies in between,
the next one finds the row still processing and charges again with the same key: the processor returns
the charge it already made instead of making a second one.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kassa.clock import now, now_for
from kassa.database import dialect_name, write_transaction
from kassa.extensions import db
from kassa.models import (
    Account,
    Payment,
    PaymentItem,
    PaymentStatus,
    Subscription,
    SubscriptionStatus,
    TermType,
)
from kassa.periods import charge_date
from kassa.processors.base import CardDeclined, ChargeRequest, ChargeResult, ProcessorError
from kassa.processors.registry import NoLiveProcessor, processor_for
from kassa.services.counters import next_number
from kassa.services.crm import add_timeline
from kassa.services.display_status import refresh_display_status
from kassa.services.payment_states import move_payment
from kassa.services.ticks import register_tick

log = logging.getLogger(__name__)
BATCH = 500
BILLABLE = (SubscriptionStatus.ACTIVE.value, SubscriptionStatus.PAST_DUE.value)


def subscription_subjects(sub: Subscription) -> list[tuple[str, int | None]]:
    return [("subscription", sub.id), ("contact", sub.contact_id), ("deal", sub.deal_id)]


def _lock_due(session, sub_id: int) -> Subscription | None:
    query = select(Subscription).where(Subscription.id == sub_id)
    if dialect_name(session) == "postgresql":
        # Another tick holding this subscription is billing it: skip, don't wait.
        query = query.with_for_update(skip_locked=True)
    return session.scalar(query)


def _lock_charge(session, payment_id: int) -> Payment:
    query = select(Payment).where(Payment.id == payment_id)
    if dialect_name(session) == "postgresql":
        # Two ticks can both hear the processor's answer for one charge: the second waits here, then sees it
        # recorded (SQLite serializes writers already).
        query = query.with_for_update()
    return session.scalar(query)


def _end(sub: Subscription, status: SubscriptionStatus, reason: str, at: datetime) -> None:
    sub.status = status.value
    sub.next_charge_at = None
    sub.ended_at = at
    if status is SubscriptionStatus.CANCELLED:
        sub.cancelled_at = sub.cancelled_at or at
        sub.cancel_reason = reason
    add_timeline(sub.account_id, f"subscription.{status.value}", subjects=subscription_subjects(sub),
                 data={"reason": reason})


def _claim(sub_id: int) -> tuple[int, str, str, int] | None:
    """Step 1: the payment row for this period and attempt (new, or left behind by a crashed tick)."""
    from kassa.services.notifications import notify_subscription_ended

    with write_transaction(db.session) as session:
        sub = _lock_due(session, sub_id)
        if sub is None or sub.status not in BILLABLE or sub.next_charge_at is None:
            return None
        account = session.get(Account, sub.account_id)
        at = now_for(account, sub.mode)
        if sub.next_charge_at > at:
            return None
        if sub.cancel_at_period_end:
            _end(sub, SubscriptionStatus.CANCELLED, "cancelled_at_period_end", sub.next_charge_at)
            notify_subscription_ended(sub)
            return None
        period, attempt = sub.payments_made, sub.failed_attempts + 1
        payment = session.scalar(select(Payment).where(Payment.subscription_id == sub.id,
                                                       Payment.subscription_period == period,
                                                       Payment.billing_attempt == attempt))
        if payment is None:
            payment = _new_charge(sub, account, period, attempt, at)
            session.add(payment)
            session.flush()
            add_timeline(sub.account_id, "payment.submitted", subjects=[("payment", payment.id),
                                                                        *subscription_subjects(sub)],
                         payment_id=payment.id, data={"amount_minor": payment.amount_minor,
                                                      "currency": payment.currency, "period": period})
        elif payment.status != PaymentStatus.PROCESSING.value:
            return None  # this attempt already finished; the subscription will have moved on
        return payment.id, payment.idempotency_key, sub.payment_method_token or "", sub.account_id


def _new_charge(sub: Subscription, account: Account, period: int, attempt: int, at: datetime) -> Payment:
    """The renewal's payment row, dated on the subscription's clock (a test clock for test mode)."""
    payment = Payment(
        account_id=sub.account_id, mode=sub.mode, status=PaymentStatus.PROCESSING.value, amount_minor=sub.amount_minor,
        currency=sub.currency, method="card", card_brand=sub.card_brand, card_last4=sub.card_last4,
        card_exp_month=sub.card_exp_month, card_exp_year=sub.card_exp_year,
        processor="sandbox" if sub.mode == "test" else "live", settlement_currency=account.default_currency,
        source="subscription", link_id=sub.link_id, contact_id=sub.contact_id, deal_id=sub.deal_id,
        subscription_id=sub.id, buyer_email=sub.contact.email, buyer_name=sub.contact.display_name
        if sub.contact.display_name != sub.contact.email else "", language=sub.language,
        subscription_period=period, billing_attempt=attempt,
        idempotency_key=f"sub-{sub.id}-p{period}-a{attempt}", refund_reserved_minor=0, refunded_minor=0,
        created_at=at,
    )
    payment.items = [
        PaymentItem(position=item.position, name=item.name, description=item.description,
                    unit_amount_minor=item.unit_amount_minor, currency=item.currency, quantity=item.quantity,
                    frequency=sub.frequency, term_type=sub.term_type, term_count=sub.term_count)
        for item in sub.items
    ]
    refresh_display_status(payment)
    return payment


def bill(sub_id: int) -> str | None:
    """Charge one due subscription. Returns "succeeded", "failed", "pending" or None (nothing was due)."""
    claimed = _claim(sub_id)
    if claimed is None:
        return None
    payment_id, key, token, account_id = claimed
    payment = db.session.get(Payment, payment_id)
    account = db.session.get(Account, account_id)
    request = ChargeRequest(
        account_id=account_id, idempotency_key=key, amount_minor=payment.amount_minor, currency=payment.currency,
        method="card", payment_method_token=token, settlement_currency=account.default_currency,
        description=f"Subscription {payment.subscription_id}, period {payment.subscription_period}",
        now=now_for(account, payment.mode),
    )
    mode = payment.mode
    db.session.rollback()
    try:
        result = processor_for(mode).charge(request)
    except CardDeclined as exc:
        record_failure(payment_id, exc.code, exc.message)
        return "failed"
    except (ProcessorError, NoLiveProcessor):
        return "pending"  # unknown outcome: the next tick retries with the same key
    record_success(payment_id, result)
    return "succeeded"


def record_success(payment_id: int, result: ChargeResult) -> None:
    """Step 3 (S1): the period is paid; the subscription moves on, completes or stays active."""
    from kassa.services.invoices import maybe_invoice
    from kassa.services.receipts import queue_receipt

    with write_transaction(db.session) as session:
        payment = _lock_charge(session, payment_id)
        if payment.status != PaymentStatus.PROCESSING.value:
            return
        sub = session.get(Subscription, payment.subscription_id)
        account = session.get(Account, payment.account_id)
        payment.processor_ref = result.processor_ref
        payment.fee_minor = result.fee_minor
        payment.settlement_currency = result.settlement_currency or account.default_currency
        payment.exchange_rate = str(result.exchange_rate)
        payment.fee_settlement_minor = result.fee_settlement_minor
        payment.net_settlement_minor = result.net_settlement_minor
        payment.card_brand = result.brand or payment.card_brand
        payment.card_last4 = result.last4 or payment.card_last4
        move_payment(payment, PaymentStatus.SUCCEEDED, data={"period": payment.subscription_period})
        payment.succeeded_at = now_for(account, payment.mode)
        payment.receipt_number = next_number(account.id, "receipt")
        sub.payments_made = payment.subscription_period + 1
        sub.failed_attempts = 0
        sub.past_due_since = None
        if sub.term_type == TermType.FIXED.value and sub.term_count and sub.payments_made >= sub.term_count:
            sub.status = SubscriptionStatus.COMPLETED.value
            sub.next_charge_at = None
            sub.ended_at = now_for(account, sub.mode)
            add_timeline(sub.account_id, "subscription.completed", subjects=subscription_subjects(sub))
        else:
            sub.status = SubscriptionStatus.ACTIVE.value
            sub.next_charge_at = charge_date(sub.anchor_at, sub.frequency, sub.payments_made, account.timezone)
        from kassa.services.ledger import book_charge

        book_charge(payment)
        invoice = maybe_invoice(payment, account)
        queue_receipt(payment, invoice=invoice)  # E2: every charge; E1: no merchant email after the first


def record_failure(payment_id: int, code: str | None, message: str | None) -> None:
    """S3: the charge failed. Past due, retry after 1, 3 and 5 days, then cancel; the buyer is told."""
    from kassa.services.notifications import notify_subscription_ended, notify_subscription_payment_failed

    with write_transaction(db.session) as session:
        payment = _lock_charge(session, payment_id)
        if payment.status != PaymentStatus.PROCESSING.value:
            return
        sub = session.get(Subscription, payment.subscription_id)
        account = session.get(Account, payment.account_id)
        move_payment(payment, PaymentStatus.FAILED, data={"code": code, "message": message})
        at = now_for(account, sub.mode)
        payment.failed_at = at
        sub.failed_attempts += 1
        sub.past_due_since = sub.past_due_since or at
        retry_days = list(account.retry_days or [1, 3, 5])
        if sub.failed_attempts <= len(retry_days):
            sub.status = SubscriptionStatus.PAST_DUE.value
            sub.next_charge_at = at + timedelta(days=retry_days[sub.failed_attempts - 1])
            add_timeline(sub.account_id, "subscription.past_due", subjects=subscription_subjects(sub),
                         payment_id=payment.id, data={"message": message, "retry_at": sub.next_charge_at.isoformat()})
            notify_subscription_payment_failed(sub, payment)
        else:
            _end(sub, SubscriptionStatus.CANCELLED, "payment_failed", at)
            notify_subscription_ended(sub)


def due_subscription_ids(limit: int = BATCH) -> list[int]:
    """Subscriptions whose next charge has come, each account on its own clock."""
    accounts = db.session.execute(
        select(Account.id, Account.clock_offset_seconds)
        .where(Account.id.in_(select(Subscription.account_id).where(Subscription.status.in_(BILLABLE))
                              .distinct()))
    ).all()
    ids: list[int] = []
    for account_id, offset in accounts:
        # Only test subscriptions follow the account's test clock; live ones are due on real time.
        cutoff_live = now()
        cutoff_test = cutoff_live + timedelta(seconds=offset or 0)
        ids += db.session.scalars(
            select(Subscription.id)
            .where(Subscription.account_id == account_id, Subscription.status.in_(BILLABLE),
                   ((Subscription.mode == "test") & (Subscription.next_charge_at <= cutoff_test))
                   | ((Subscription.mode != "test") & (Subscription.next_charge_at <= cutoff_live)))
            .order_by(Subscription.next_charge_at, Subscription.id)
            .limit(limit - len(ids))
        ).all()
        if len(ids) >= limit:
            break
    db.session.rollback()
    return ids


@register_tick("subscription_billing")
def bill_due_subscriptions() -> int:
    """Charge everything due, batch after batch, until nothing due is left (a tick can catch up)."""
    charged = 0
    seen: set[int] = set()
    while True:
        ids = [sub_id for sub_id in due_subscription_ids() if sub_id not in seen]
        if not ids:
            return charged
        for sub_id in ids:
            seen.add(sub_id)
            try:
                outcome = bill(sub_id)
            except IntegrityError:
                db.session.rollback()  # another tick created this period's charge first: it bills it
                continue
            if outcome in ("succeeded", "failed"):
                charged += 1
                seen.discard(sub_id)  # a past-due retry or the next period may come due within this tick
