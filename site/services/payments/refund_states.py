"""The refund state machine (M1, F3, F6): pending → succeeded | failed, settled by the processor's event.

Creating a refund (refunds.refund_payment) books it at once; settling it is a move here: success counts the
amount as refunded and tells the buyer, failure books the amount back and releases the reservation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update

from kassa.clock import now
from kassa.event_types import AccountEventType as Event
from kassa.extensions import db
from kassa.models import Payment, Refund, RefundStatus
from kassa.services.crm.crm import add_timeline, payment_subjects
from kassa.services.money.display_status import refresh_display_status
from kassa.services.money.ledger import book_refund_failure
from kassa.services.money.machines import Transition, transition
from kassa.services.payments.credit_notes import credit_for_refund
from kassa.services.platform.account_events import record_move
from kassa.services.platform.notifications import notify_refund
from kassa.timeline_kinds import TimelineKind


def _refund_email(refund: Refund, payment: Payment) -> None:
    notify_refund(payment, refund)


TRANSITIONS: dict[tuple[RefundStatus, RefundStatus], Transition] = {
    (RefundStatus.PENDING, RefundStatus.SUCCEEDED): Transition(TimelineKind.REFUND_SUCCEEDED, emails=_refund_email,
                                                                   event=Event.PAYMENT_REFUNDED),
    (RefundStatus.PENDING, RefundStatus.FAILED): Transition(TimelineKind.REFUND_FAILED, books=book_refund_failure),
}


def move_refund(refund: Refund, target: RefundStatus, *, at: datetime, data: dict[str, Any] | None = None) -> bool:
    """Settle `refund` in the caller's transaction (`at`: the ledger's, on the account's clock; settled_at is
    when it is recorded).
    False for a repeat; Conflict for an illegal move (a settled refund never changes)."""
    move = transition(TRANSITIONS, "refund", refund.id, RefundStatus(refund.status), target)
    if move is None:
        return False
    payment = db.session.get(Payment, refund.payment_id)
    refund.status = target.value
    refund.settled_at = now()
    timeline = {"amount_minor": refund.amount_minor, "currency": refund.currency}
    if target is RefundStatus.SUCCEEDED:
        payment.refunded_minor += refund.amount_minor
        # V1: a refunded invoice payment gets its credit note; the invoice itself stays paid (the credit settles it)
        credit_for_refund(refund, payment)
    else:
        refund.failure_code = (data or {}).get("code")
        refund.failure_message = (data or {}).get("message")
        timeline["message"] = refund.failure_message
        # F6: the amount is refundable again.
        db.session.execute(update(Payment).where(Payment.id == payment.id)
                           .values(refund_reserved_minor=Payment.refund_reserved_minor - refund.amount_minor))
        db.session.expire(payment)
    if move.books:
        move.books(refund, at)
    refresh_display_status(payment)
    add_timeline(payment.account_id, move.timeline, subjects=payment_subjects(payment), payment_id=payment.id,
                 data=timeline)
    # W6, I6: the payment was refunded (the event is about the payment, as Stripe's charge.refunded).
    record_move(move.event, payment, at, {"refund_id": refund.id, "amount_minor": refund.amount_minor,
                                          "currency": refund.currency, "refunded_minor": payment.refunded_minor})
    if move.emails:
        move.emails(refund, payment)
    return True
