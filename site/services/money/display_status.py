"""The status a payment shows in the index (P1, F3): computed from its own status and its refunds."""

from __future__ import annotations

from kassa.models import DisplayStatus, DisputeStatus, Payment, PaymentStatus
from kassa.services.money.dispute_facts import STATUS_FOR_DISPLAY, latest_dispute


def compute_display_status(payment: Payment) -> DisplayStatus:
    if payment.dispute_created_at is not None:
        dispute = latest_dispute(payment.id)
        if dispute is not None:
            return STATUS_FOR_DISPLAY[DisputeStatus(dispute.status)]
    status = PaymentStatus(payment.status)
    if status is PaymentStatus.PROCESSING:
        return DisplayStatus.PROCESSING
    if status is PaymentStatus.FAILED:
        return DisplayStatus.FAILED
    if status is PaymentStatus.INCOMPLETE:
        return DisplayStatus.INCOMPLETE
    if status is PaymentStatus.DELETED:
        return DisplayStatus.DELETED
    if (payment.refund_reserved_minor or 0) > (payment.refunded_minor or 0):
        return DisplayStatus.REFUND_PROCESSING
    if payment.refunded_minor and payment.refunded_minor >= payment.amount_minor:
        return DisplayStatus.REFUNDED
    if payment.refunded_minor:
        return DisplayStatus.PARTIALLY_REFUNDED
    return DisplayStatus.SUCCEEDED


def refresh_display_status(payment: Payment) -> None:
    """Call after any change to the payment's status or refund amounts, in the same transaction."""
    payment.display_status = compute_display_status(payment).value
