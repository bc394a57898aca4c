"""Step 3 of billing a batch (S1, S3, E2, R5, O1): what the processor answered, recorded for the whole batch.

Only payments still `processing` are recorded, under a row lock, so a second tick that heard the same answer
changes nothing. Successes are most of a billing run, so they are written a statement per table for the batch:
payments and subscriptions updated, receipt and invoice numbers taken as one block per account, ledger and
timeline entries inserted, and each receipt queued for the worker to write. Declines are few, and their emails
must say what is true at that moment (the retry date), so each is recorded through the ORM and emailed here.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select

from kassa.bulk_sql import among, insert_rows, update_rows
from kassa.clock import clock_now, now
from kassa.database import dialect_name, locked, write_transaction
from kassa.event_types import AccountEventType as Event
from kassa.extensions import db
from kassa.metrics import PAYMENT_OUTCOMES, count_on_commit
from kassa.models import (
    Account,
    Invoice,
    LedgerEntry,
    OutboxMessage,
    OutboxStatus,
    Payment,
    PaymentStatus,
    Subscription,
    SubscriptionStatus,
    TermType,
)
from kassa.money import Money
from kassa.periods import charge_date
from kassa.processors.base import ChargeResult
from kassa.services.billing.billing_rows import (
    BILLABLE,
    insert_timeline,
    subscription_subjects,
    timeline_rows,
)
from kassa.services.billing.subscription_states import COMPLETED, move_subscription
from kassa.services.crm.crm import payment_subjects
from kassa.services.money.display_status import compute_display_status
from kassa.services.money.ledger import charge_available_on, charge_rows, local_day
from kassa.services.payments.payment_states import (
    SUCCEEDED,
    can_move_payment,
    event_data,
    is_renewal,
    move_payment,
    renewal_data,
)
from kassa.services.payments.receipts import queue_receipt
from kassa.services.platform.account_events import event_row, insert_events
from kassa.services.platform.counters import reserve_numbers
from kassa.services.platform.notifications import notify_team_in_app
from kassa.urls import absolute_url

_PAYMENTS = Payment.__table__
_SUBS = Subscription.__table__
RECEIPT_JOB = "renewal_receipt"


def record_successes(successes: list[tuple[int, ChargeResult]]) -> int:
    """The periods are paid: each subscription moves on, completes, or stays active. Returns how many of the
    payments were recorded (not those another tick had recorded already)."""
    results = dict(successes)
    if not results:
        return 0
    with write_transaction(db.session) as session:
        payments = _lock_payments(session, results, PaymentStatus.SUCCEEDED)
        if not payments:
            return 0
        # Locked too: a merchant cancelling meanwhile waits for this, or this sees the cancellation.
        subs = {row.id: row for row in session.execute(locked(session, select(_SUBS).where(
            among(dialect_name(session), _SUBS.c.id, {p.subscription_id for p in payments})).order_by(_SUBS.c.id)))}
        accounts = {a.id: a for a in session.scalars(
            select(Account).where(Account.id.in_({p.account_id for p in payments})))}
        writes = _Successes(accounts, receipts=_numbers(payments, "receipt"),
                            invoices=_numbers([p for p in payments if accounts[p.account_id].create_invoices],
                                              "invoice"))
        for payment in payments:
            writes.add(payment, results[payment.id], subs[payment.subscription_id])
        writes.write(session)
        for processor in {p.processor for p in payments}:  # G4: the batch's successes, once committed
            count_on_commit(session, PAYMENT_OUTCOMES, sum(p.processor == processor for p in payments),
                            processor=processor or "none", outcome=PaymentStatus.SUCCEEDED.value)
        return len(payments)


class _Successes:
    """The rows a batch of successes writes, gathered per table to go out a statement each."""

    def __init__(self, accounts: dict[int, Account], *, receipts: dict[int, int], invoices: dict[int, int]) -> None:
        self.accounts, self.receipts, self.invoice_numbers = accounts, receipts, invoices
        self.base = now()  # one real moment for the batch, read on each subscription's own clock (B9)
        self.availability = _Availability()
        self.payments: list[dict[str, Any]] = []
        self.subscriptions: list[dict[str, Any]] = []
        self.ledger: list[dict[str, Any]] = []
        self.timeline: list[dict[str, Any]] = []
        self.invoices: list[dict[str, Any]] = []
        self.jobs: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    def add(self, payment, result: ChargeResult, sub) -> None:
        account = self.accounts[payment.account_id]
        # The batch's charges all succeeded "now", each on its subscription's clock (a test clock, B9).
        at = clock_now(sub, self.base)
        after = _paid(payment, result, account, at, self.receipts[payment.id])
        self.payments.append({"id": payment.id, **{column: getattr(after, column) for column in _PAID}})
        # M1: what the payment machine's success books and shows, for the batch at once.
        self.ledger += charge_rows(after, self.availability.on(account, payment.method, at))
        self.timeline += timeline_rows(payment.account_id, SUCCEEDED.timeline, payment_subjects(payment), at,
                                       payment_id=payment.id, data={"amount_minor": payment.amount_minor,
                                                                    "currency": payment.currency,
                                                                    "period": payment.subscription_period})
        self.subscriptions.append(_renewed(sub, payment, account, at, self.timeline))
        # W6, I6: the account events the payment machine's success records (SUCCEEDED.event, then the renewal).
        self.events.append(event_row(payment.account_id, SUCCEEDED.event, object_type="payment",
                                     object_id=payment.id, mode=payment.mode, at=at, data=event_data(after)))
        if is_renewal(payment):
            self.events.append(event_row(payment.account_id, Event.SUBSCRIPTION_RENEWED, object_type="subscription",
                                         object_id=sub.id, mode=sub.mode, at=at, data=renewal_data(payment)))
        if payment.id in self.invoice_numbers:  # R5
            self.invoices.append({"account_id": payment.account_id, "number": self.invoice_numbers[payment.id],
                                  "payment_id": payment.id, "subscription_id": payment.subscription_id,
                                  "amount_minor": payment.amount_minor, "currency": payment.currency,
                                  "issued_at": at, "status": "paid", "amount_paid_minor": payment.amount_minor,
                                  "finalized_at": at})
        # E2 (every charge; E1: the merchant heard of the first payment only): the worker writes the email.
        self.jobs.append(_receipt_job(payment))

    def write(self, session) -> None:
        update_rows(session, _PAYMENTS, self.payments)
        update_rows(session, _SUBS, self.subscriptions)
        insert_rows(session, LedgerEntry.__table__, self.ledger)
        insert_timeline(session, self.timeline)
        insert_rows(session, Invoice.__table__, self.invoices)
        insert_rows(session, OutboxMessage.__table__, self.jobs)
        insert_events(session, self.events)


def _lock_payments(session, payment_ids, target: PaymentStatus) -> list[Any]:
    """The payments, locked in id order (two ticks lock the same rows in the same order: no deadlock), that
    can still move to `target` by the payment machine — a repeat of a recorded answer is a no-op (M1)."""
    rows = session.execute(locked(session, select(_PAYMENTS).where(
        among(dialect_name(session), _PAYMENTS.c.id, payment_ids)).order_by(_PAYMENTS.c.id)))
    return [row for row in rows if can_move_payment(row.status, target)]


def _numbers(payments: list[Any], counter: str) -> dict[int, int]:
    """Gap-free numbers for these payments, in id order: one block per account, accounts in id order."""
    by_account: dict[int, list[int]] = {}
    for payment in payments:
        by_account.setdefault(payment.account_id, []).append(payment.id)
    numbers = {}
    for account_id in sorted(by_account):
        ids = by_account[account_id]
        numbers.update(zip(ids, reserve_numbers(account_id, counter, len(ids)), strict=True))
    return numbers


# The columns a success sets on the payment row.
_PAID = ("status", "display_status", "processor_ref", "fee_minor", "settlement_currency", "exchange_rate",
         "fee_settlement_minor", "net_settlement_minor", "card_brand", "card_last4", "succeeded_at", "receipt_number")


def _paid(payment, result: ChargeResult, account: Account, at: datetime, receipt_number: int) -> SimpleNamespace:
    """The payment as it is once succeeded: the processor's reference, fees and settlement, its receipt number."""
    after = SimpleNamespace(**payment._mapping)
    after.status = PaymentStatus.SUCCEEDED.value
    after.processor_ref, after.fee_minor = result.processor_ref, result.fee_minor
    after.settlement_currency = result.settlement_currency or account.default_currency
    after.exchange_rate = str(result.exchange_rate)
    after.fee_settlement_minor, after.net_settlement_minor = result.fee_settlement_minor, result.net_settlement_minor
    after.card_brand, after.card_last4 = result.brand or payment.card_brand, result.last4 or payment.card_last4
    after.succeeded_at, after.receipt_number = at, receipt_number
    after.display_status = compute_display_status(after).value
    return after


def _renewed(sub, payment, account: Account, at: datetime, timeline: list[dict[str, Any]]) -> dict[str, Any]:
    """The subscription's update once a period is paid (S1); a subscription the merchant ended while the charge
    was under way stays ended."""
    made = payment.subscription_period + 1
    status, next_charge_at, ended_at = sub.status, sub.next_charge_at, sub.ended_at
    if sub.status in BILLABLE:
        # M1: the subscription machine's moves, set-based: completed (its timeline kind) or active again.
        if sub.term_type == TermType.FIXED.value and sub.term_count and made >= sub.term_count:
            status, next_charge_at, ended_at = SubscriptionStatus.COMPLETED.value, None, at
            timeline += timeline_rows(sub.account_id, COMPLETED.timeline, subscription_subjects(sub), at)
        else:
            status = SubscriptionStatus.ACTIVE.value
            next_charge_at = charge_date(sub.anchor_at, sub.frequency, made, account.timezone)
    return {"id": sub.id, "payments_made": made, "failed_attempts": 0, "past_due_since": None,
            "status": status, "next_charge_at": next_charge_at, "ended_at": ended_at}


class _Availability:
    """O2: the day a payment's funds are available, worked out once per account, method and day in a batch."""

    def __init__(self) -> None:
        self.days: dict[tuple[int, str, date], date] = {}

    def on(self, account: Account, method: str, at: datetime) -> date:
        key = (account.id, method, local_day(account, at))
        if key not in self.days:
            self.days[key] = charge_available_on(account, method, at)
        return self.days[key]


def _receipt_key(payment_id: int) -> str:
    return f"renewal-receipt:{payment_id}"


def _receipt_job(payment) -> dict[str, Any]:
    """An outbox row for the worker; the unique dedupe key means one receipt job per payment, ever."""
    at = now()
    return {"kind": RECEIPT_JOB, "payload": {"payment_id": payment.id}, "account_id": payment.account_id,
            "dedupe_key": _receipt_key(payment.id), "status": OutboxStatus.PENDING.value, "attempts": 0,
            "next_attempt_at": at, "created_at": at}


def write_renewal_receipt(payload: dict[str, Any]) -> None:
    """E2, E4: the renewal's receipt email, in the buyer's language, with its invoice when there is one.

    Rendering it is most of what a charge cost when the tick did it. The job marks itself in the same
    transaction, so running it twice (a worker that died before recording it done) writes one email.
    """
    with write_transaction(db.session) as session:
        job = session.scalar(locked(session, select(OutboxMessage).where(
            OutboxMessage.dedupe_key == _receipt_key(payload["payment_id"]))))
        if job is None or job.payload.get("email_queued"):
            return
        queue_receipt(session.get(Payment, payload["payment_id"]))
        job.payload = {**job.payload, "email_queued": True}


# -- declines -------------------------------------------------------------------------------------------


def record_failures(failures: list[tuple[int, str | None, str | None]]) -> int:
    """S3: the charges were declined. Returns how many of the payments were recorded."""
    declines = {payment_id: (code, message) for payment_id, code, message in failures}
    if not declines:
        return 0
    with write_transaction(db.session) as session:
        # Payments first, then subscriptions, each in id order: the order record_successes locks them in.
        payments = [payment for payment in session.scalars(locked(session, select(Payment).where(
            Payment.id.in_(declines)).order_by(Payment.id))) if can_move_payment(payment.status, PaymentStatus.FAILED)]
        subs = {sub.id: sub for sub in session.scalars(locked(session, select(Subscription).where(
            Subscription.id.in_({p.subscription_id for p in payments})).order_by(Subscription.id)))}
        for payment in payments:
            _record_failure(session, payment, subs[payment.subscription_id], *declines[payment.id])
        return len(payments)


def _announce_failure(payment: Payment, sub: Subscription) -> None:
    """B1: the merchant's bell hears of each failed renewal, once: only a payment still processing is recorded
    as failed (record_failures), so a second tick with the same answer adds nothing."""
    amount = Money(payment.amount_minor, payment.currency)
    email = sub.contact.email

    def text() -> str:
        said = _("A subscription renewal of %(amount)s for %(email)s failed.", amount=amount.format(
            str(get_locale() or "en")), email=email)
        return _("Test: %(text)s", text=said) if sub.mode == "test" else said

    notify_team_in_app(sub.account_id, text, absolute_url("subscriptions.detail", subscription_id=sub.id))


def _record_failure(session, payment: Payment, sub: Subscription, code: str | None, message: str | None) -> None:
    """Past due and retried after the account's retry days (1, 3 and 5 by default), then cancelled; the buyer
    is told each time."""
    account = session.get(Account, payment.account_id)
    at = clock_now(sub)
    move_payment(payment, PaymentStatus.FAILED, at=at, timeline_at=at, data={"code": code, "message": message})
    _announce_failure(payment, sub)
    session.flush()  # the payment's entries go out before the subscription's (inserted at once, below)
    if sub.status not in BILLABLE:
        return  # the merchant ended it while the charge was under way: nothing to retry
    sub.failed_attempts += 1
    retry_days = list(account.retry_days or [1, 3, 5])
    if sub.failed_attempts <= len(retry_days):
        sub.next_charge_at = at + timedelta(days=retry_days[sub.failed_attempts - 1])
        move_subscription(session, sub, SubscriptionStatus.PAST_DUE, at=at, payment=payment,
                          data={"message": message, "retry_at": sub.next_charge_at.isoformat()})
    else:
        move_subscription(session, sub, SubscriptionStatus.CANCELLED, at=at, reason="payment_failed",
                          data={"reason": "payment_failed"})
