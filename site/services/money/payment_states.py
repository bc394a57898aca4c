"""The payment state machine: processing → succeeded | failed. One function moves it, and writes history."""

from __future__ import annotations

import logging
from typing import Any

from kassa.clock import now
from kassa.errors import Conflict
from kassa.models import Payment, PaymentStatus
from kassa.services.crm.crm import add_timeline
from kassa.services.money.display_status import refresh_display_status
from kassa.timeline_kinds import TimelineKind

log = logging.getLogger(__name__)

TRANSITIONS: dict[PaymentStatus, set[PaymentStatus]] = {
    PaymentStatus.PROCESSING: {PaymentStatus.SUCCEEDED, PaymentStatus.FAILED},
    PaymentStatus.SUCCEEDED: set(),
    PaymentStatus.FAILED: set(),
}


def payment_subjects(payment: Payment) -> list[tuple[str, int | None]]:
    """Where payment activity shows (R6): the payment itself and its contact, company, deal, subscription."""
    return [("payment", payment.id), ("contact", payment.contact_id), ("company", payment.company_id),
            ("deal", payment.deal_id), ("subscription", payment.subscription_id)]


def move_payment(payment: Payment, target: PaymentStatus, *, data: dict[str, Any] | None = None) -> bool:
    """Move `payment` to `target` in the caller's transaction. Returns False for a repeat (no-op);
    raises Conflict for an illegal move (e.g. failed → succeeded)."""
    current = PaymentStatus(payment.status)
    if current is target:
        log.info("payment %s already %s", payment.id, target.value)
        return False
    if target not in TRANSITIONS[current]:
        raise Conflict(f"payment {payment.id} cannot go from {current.value} to {target.value}")
    payment.status = target.value
    if target is PaymentStatus.SUCCEEDED:
        payment.succeeded_at = now()
    elif target is PaymentStatus.FAILED:
        payment.failed_at = now()
        payment.failure_code = (data or {}).get("code")
        payment.failure_message = (data or {}).get("message")
    refresh_display_status(payment)
    add_timeline(payment.account_id, TimelineKind.of("payment", target), subjects=payment_subjects(payment),
                 payment_id=payment.id, data=data or {})
    return True
