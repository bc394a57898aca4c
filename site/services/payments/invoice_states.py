"""The invoice state machine (M1, V1): draft → open → paid | partially paid | void | uncollectible.

A draft is the only state that can be edited; finalizing (draft → open) takes the invoice's number from the
account's one gap-free series. Payments move an open invoice to partially paid and paid; void is for an invoice
that should never have been sent (with a reason), uncollectible for one the merchant gave up on. "Overdue" is not
a state: it is read from the due date (Invoice.is_overdue). A per-payment invoice (R5) is born paid.
"""

from __future__ import annotations

from datetime import datetime

from kassa.models import Invoice, InvoiceStatus
from kassa.services.money.machines import Transition, transition
from kassa.services.platform.counters import next_number

S = InvoiceStatus
TRANSITIONS: dict[tuple[InvoiceStatus, InvoiceStatus], Transition] = {
    (S.DRAFT, S.OPEN): Transition(),
    (S.OPEN, S.PARTIALLY_PAID): Transition(),
    (S.OPEN, S.PAID): Transition(),
    # A second partial payment keeps it partially paid: a move onto itself, listed so it isn't a no-op.
    (S.PARTIALLY_PAID, S.PARTIALLY_PAID): Transition(),
    (S.PARTIALLY_PAID, S.PAID): Transition(),
    (S.OPEN, S.VOID): Transition(),
    (S.OPEN, S.UNCOLLECTIBLE): Transition(),
    (S.PARTIALLY_PAID, S.UNCOLLECTIBLE): Transition(),
    # As Stripe: an invoice written off can still be paid (V2: in part too), or voided after all.
    (S.UNCOLLECTIBLE, S.PAID): Transition(),
    (S.UNCOLLECTIBLE, S.PARTIALLY_PAID): Transition(),
    (S.UNCOLLECTIBLE, S.VOID): Transition(),
    # V3: a manual payment deleted (or made smaller), or a payment refunded, owes its amount again.
    (S.PAID, S.PARTIALLY_PAID): Transition(),
    (S.PAID, S.OPEN): Transition(),
    (S.PARTIALLY_PAID, S.OPEN): Transition(),
}
EDITABLE = (S.DRAFT.value,)
PAYABLE = (S.OPEN.value, S.PARTIALLY_PAID.value, S.UNCOLLECTIBLE.value)


def move_invoice(invoice: Invoice, target: InvoiceStatus, *, at: datetime | None, reason: str = "") -> bool:
    """Move `invoice` in the caller's write transaction. False for a repeat; Conflict (before any write) for a
    move the table lacks. Finalizing takes the next number of the account's invoice series: the counter row
    stays locked until the caller commits, so two invoices finalized at once get consecutive numbers."""
    source = InvoiceStatus(invoice.status)
    move = transition(TRANSITIONS, "invoice", invoice.id, source, target)
    if move is None:
        return False
    if source is S.DRAFT:  # finalized (V3: an invoice moved back to open keeps its number and dates)
        invoice.number = next_number(invoice.account_id, "invoice")
        invoice.finalized_at = at
        invoice.issued_at = at
    elif target is S.VOID:
        invoice.voided_at = at
        invoice.void_reason = reason
    invoice.status = target.value
    return True


def apply_payment(invoice: Invoice, amount_minor: int, *, at: datetime | None) -> bool:
    """V2: a payment of `amount_minor` for `invoice` succeeded (in the caller's write, the invoice locked): it
    counts toward the amount paid, and the invoice moves to paid, or partially paid while some is still due.
    False (nothing changes) when the invoice can't take payments any more (void, a draft)."""
    if invoice.status not in PAYABLE:
        return False
    invoice.amount_paid_minor += amount_minor
    target = S.PAID if invoice.amount_paid_minor >= invoice.amount_minor else S.PARTIALLY_PAID
    return move_invoice(invoice, target, at=at)


def reverse_payment(invoice: Invoice, amount_minor: int, *, at: datetime | None) -> bool:
    """V3: `amount_minor` of what paid `invoice` no longer counts (a manual payment deleted or made smaller, a
    payment refunded), in the caller's write with the invoice locked: the invoice owes it again and moves back
    to partially paid, or open once nothing is paid. An uncollectible invoice stays written off (owing more);
    a draft or void invoice has no payments to take back. False when nothing moved."""
    if invoice.status not in (S.PAID.value, S.PARTIALLY_PAID.value, S.UNCOLLECTIBLE.value) or amount_minor <= 0:
        return False
    invoice.amount_paid_minor = max(0, invoice.amount_paid_minor - amount_minor)
    if invoice.status == S.UNCOLLECTIBLE.value:
        return False
    target = S.PARTIALLY_PAID if invoice.amount_paid_minor > 0 else S.OPEN
    return move_invoice(invoice, target, at=at)
