"""The payment state machine (M1): processing → succeeded | failed, and what each move books, shows and sends.

B2: incomplete → succeeded | processing | failed: a checkout attempt waiting for the buyer (3-D Secure, a bank's
page) is listed before any money moves. Its success is the same SUCCEEDED move (receipt number, ledger, emails);
to processing (a bank debit submitted after the bank's page) books nothing yet; its failure is a decline the
buyer saw on the page, so it sends nothing. An attempt the buyer abandons stays incomplete (no move).

It lives in payments, not money, because a success queues the receipt and invoice (payments) and the move's
effects belong with its table: one place says what "a payment succeeded" means. The checkout (payment_records),
a bank debit clearing (events) and a declined renewal (billing) call ``move_payment``; the set-based batch of
renewal successes (billing_outcomes) reads the same table (``SUCCEEDED``: its timeline kind) and the same ledger
rows (``ledger.charge_rows``), and queues the same receipt through the outbox.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from kassa.database import lock_one
from kassa.event_types import AccountEventType as Event
from kassa.extensions import db
from kassa.metrics import PAYMENT_OUTCOMES, count_on_commit
from kassa.models import Account, Invoice, Payment, PaymentStatus, Subscription
from kassa.processors.base import is_bank_debit
from kassa.services.crm.crm import add_timeline, payment_subjects
from kassa.services.money.display_status import refresh_display_status
from kassa.services.money.ledger import book_charge
from kassa.services.money.machines import Transition, can_move, transition
from kassa.services.payments.invoice_states import apply_payment
from kassa.services.payments.invoices import maybe_invoice
from kassa.services.payments.receipts import queue_checkout_receipt, queue_receipt
from kassa.services.platform.account_events import record, record_move
from kassa.services.platform.counters import next_number
from kassa.services.platform.notifications import notify_ach_failed, notify_payment_received
from kassa.timeline_kinds import TimelineKind

log = logging.getLogger(__name__)


def _succeeded_emails(payment: Payment) -> None:
    """The buyer's receipt (with its invoice, R5); the merchant hears of a checkout's payment (E1: a renewal's
    receipt goes alone, the merchant heard of the first payment only)."""
    # V2: a payment of a merchant's invoice gets that invoice attached; any other, its own when the setting is on.
    invoice = db.session.get(Invoice, payment.invoice_id) if payment.invoice_id is not None \
        else maybe_invoice(payment, db.session.get(Account, payment.account_id))
    if payment.source in ("payment_link", "invoice"):  # paid at a checkout (V2: an invoice's too)
        queue_checkout_receipt(payment, invoice=invoice)
        notify_payment_received(payment)
    else:
        queue_receipt(payment, invoice=invoice)


def _failed_emails(payment: Payment) -> None:
    """T4: a bank debit that bounced tells the buyer (a declined card renewal is told by its subscription)."""
    if is_bank_debit(payment.method):
        notify_ach_failed(payment)


SUCCEEDED = Transition(TimelineKind.PAYMENT_SUCCEEDED, books=lambda payment, at: book_charge(payment),
                       emails=_succeeded_emails, event=Event.PAYMENT_SUCCEEDED)
FAILED = Transition(TimelineKind.PAYMENT_FAILED, emails=_failed_emails, event=Event.PAYMENT_FAILED)
TRANSITIONS: dict[tuple[PaymentStatus, PaymentStatus], Transition] = {
    (PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED): SUCCEEDED,
    (PaymentStatus.PROCESSING, PaymentStatus.FAILED): FAILED,
    (PaymentStatus.INCOMPLETE, PaymentStatus.SUCCEEDED): SUCCEEDED,
    (PaymentStatus.INCOMPLETE, PaymentStatus.PROCESSING): Transition(),  # its caller writes "submitted"
    (PaymentStatus.INCOMPLETE, PaymentStatus.FAILED): Transition(TimelineKind.PAYMENT_FAILED,
                                                                 event=Event.PAYMENT_FAILED),
}


def can_move_payment(status: str, target: PaymentStatus) -> bool:
    return can_move(TRANSITIONS, PaymentStatus(status), target)


def move_payment(payment: Payment, target: PaymentStatus, *, at: datetime, data: dict[str, Any] | None = None,
                 timeline_at: datetime | None = None) -> bool:
    """Move `payment` to `target` in the caller's transaction: the status and its time (`at`), a receipt number
    on success, the ledger, the timeline (dated `timeline_at`, or when written: a renewal shows on its
    subscription's clock) and the emails. Returns False for a repeat (no-op); raises Conflict for an illegal
    move (e.g. failed → succeeded)."""
    move = transition(TRANSITIONS, "payment", payment.id, PaymentStatus(payment.status), target)
    if move is None:
        log.info("payment %s already %s", payment.id, target.value)
        return False
    payment.status = target.value
    if target is PaymentStatus.SUCCEEDED:
        payment.succeeded_at = at
        payment.receipt_number = payment.receipt_number or next_number(payment.account_id, "receipt")
        payment.failure_code = payment.failure_message = None  # B2: an incomplete attempt's "waiting" is over
    elif target is PaymentStatus.PROCESSING:
        payment.failure_code = payment.failure_message = None  # B2: no longer waiting for the buyer
    else:
        payment.failed_at = at
        payment.failure_code = (data or {}).get("code")
        payment.failure_message = (data or {}).get("message")
    refresh_display_status(payment)
    # G4: kassa_payment_outcomes, once this transaction commits.
    count_on_commit(db.session, PAYMENT_OUTCOMES, processor=payment.processor or "none", outcome=target.value)
    if move.timeline is not None:
        add_timeline(payment.account_id, move.timeline, subjects=payment_subjects(payment), payment_id=payment.id,
                     data=data or {}, at=timeline_at)
    if move.books:
        move.books(payment, at)
    if target is PaymentStatus.SUCCEEDED and payment.invoice_id is not None:
        # V2: the invoice it pays counts it (paid, or partially paid), in this same transaction.
        apply_payment(lock_one(db.session, Invoice, payment.invoice_id), payment.amount_minor, at=at)
    record_move(move.event, payment, at, event_data(payment))
    if target is PaymentStatus.SUCCEEDED and is_renewal(payment):
        record(payment.account_id, Event.SUBSCRIPTION_RENEWED, _subscription(payment), at,
               renewal_data(payment))
    if move.emails:
        move.emails(payment)
    return True


def is_renewal(payment) -> bool:
    """W6: a subscription's charge after its first (the checkout's, or the first after a trial, is its start)."""
    return payment.source == "subscription"


def event_data(payment) -> dict[str, Any]:
    """What a payment's account event (W6, I6) carries besides the payment itself."""
    return {"amount_minor": payment.amount_minor, "currency": payment.currency, "status": payment.status}


def renewal_data(payment) -> dict[str, Any]:
    return {"payment_id": payment.id, "period": payment.subscription_period, "amount_minor": payment.amount_minor,
            "currency": payment.currency}


def _subscription(payment: Payment) -> Subscription:
    return db.session.get(Subscription, payment.subscription_id)
