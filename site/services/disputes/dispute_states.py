"""The dispute state machine (M1, D1–D7): needs response → under review → won | lost; a dispute can also be
decided before any answer, and the merchant can accept it (needs response → lost, shown as accepted).

Opening a dispute (disputes.open_dispute) books the withdrawal; each move here copies the dispute onto its
payment, writes the timeline, books what winning returns and sends the D1 emails.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kassa.event_types import AccountEventType as Event
from kassa.extensions import db
from kassa.models import Account, Dispute, DisputeStatus, Payment
from kassa.money import Money
from kassa.services.crm.crm import add_timeline, payment_subjects
from kassa.services.money.display_status import refresh_display_status
from kassa.services.money.ledger import book_dispute_won
from kassa.services.money.machines import Transition, transition
from kassa.services.platform.account_events import record_move
from kassa.services.platform.mail import queue_email
from kassa.services.platform.notifications import payment_team
from kassa.timeline_kinds import TimelineKind
from kassa.urls import absolute_url


def sync_payment(dispute: Dispute) -> Payment:
    """Copy the dispute's properties and status onto its payment (columns, filters, the Disputes tab)."""
    payment = db.session.get(Payment, dispute.payment_id)
    payment.dispute_created_at = dispute.created_at
    payment.dispute_amount_minor = dispute.amount_minor
    payment.dispute_reason = dispute.reason
    payment.dispute_due_by = dispute.evidence_due_by
    payment.dispute_closed_at = dispute.closed_at
    refresh_display_status(payment)
    return payment


def notify_dispute(dispute: Dispute, kind: str) -> None:
    """D1: opened, won, lost — each switchable in Settings → Notifications."""
    account = db.session.get(Account, dispute.account_id)
    if not account.notification_enabled(kind):  # dispute_opened, dispute_won, dispute_lost
        return
    payment = db.session.get(Payment, dispute.payment_id)
    for user in payment_team(account.id):
        queue_email(
            kind=kind, to=[user.email], template=f"email/{kind}.html", language=user.language or account.language,
            context={"dispute": dispute, "payment": payment, "account": account, "brand_color": account.brand_color,
                     "amount": Money(dispute.amount_minor, dispute.currency),
                     "fee": Money(dispute.fee_minor, dispute.currency),
                     "counter_url": absolute_url("disputes.counter", dispute_id=dispute.id, step=1),
                     "payment_url": absolute_url("payments.detail", payment_id=payment.id)},
            account_id=account.id, related=("payment", payment.id),
        )


def _book_won(dispute: Dispute, at: datetime) -> None:
    """Winning returns the disputed amount (an inquiry withdrew nothing, so nothing comes back)."""
    if dispute.is_inquiry:
        return
    book_dispute_won(dispute, at)
    payment = db.session.get(Payment, dispute.payment_id)
    add_timeline(payment.account_id, TimelineKind.DISPUTE_FUNDS_RETURNED, subjects=payment_subjects(payment),
                 payment_id=payment.id, data={"amount_minor": dispute.amount_minor, "currency": dispute.currency})


WON = Transition(TimelineKind.DISPUTE_WON, books=_book_won, emails=lambda dispute: notify_dispute(dispute, "dispute_won"),
                 event=Event.DISPUTE_CLOSED)
LOST = Transition(TimelineKind.DISPUTE_LOST, emails=lambda dispute: notify_dispute(dispute, "dispute_lost"),
                  event=Event.DISPUTE_CLOSED)
TRANSITIONS: dict[tuple[DisputeStatus, DisputeStatus], Transition] = {
    (DisputeStatus.NEEDS_RESPONSE, DisputeStatus.UNDER_REVIEW): Transition(TimelineKind.DISPUTE_EVIDENCE_SUBMITTED),
    (DisputeStatus.NEEDS_RESPONSE, DisputeStatus.WON): WON,
    (DisputeStatus.UNDER_REVIEW, DisputeStatus.WON): WON,
    (DisputeStatus.NEEDS_RESPONSE, DisputeStatus.LOST): LOST,
    (DisputeStatus.UNDER_REVIEW, DisputeStatus.LOST): LOST,
}
# D4: the merchant accepting is needs response → lost too, shown as accepted and emailed to nobody (they did it).
ACCEPTED = Transition(TimelineKind.DISPUTE_ACCEPTED, event=Event.DISPUTE_CLOSED)
CLOSED = (DisputeStatus.WON.value, DisputeStatus.LOST.value)


def move_dispute(dispute: Dispute, target: DisputeStatus, *, at: datetime, data: dict[str, Any] | None = None,
                 actor_id: int | None = None, accepted: bool = False) -> bool:
    """Move `dispute` in the caller's transaction (`at`: when evidence went in, or when it closed). False for a
    repeat; Conflict for an illegal move (a closed dispute never reopens)."""
    move = transition(TRANSITIONS, "dispute", dispute.id, DisputeStatus(dispute.status), target)
    if move is None:
        return False
    if accepted:
        move = ACCEPTED
    dispute.status = target.value
    if target is DisputeStatus.UNDER_REVIEW:
        dispute.submitted_at = at
    else:
        dispute.closed_at = at
    payment = sync_payment(dispute)
    add_timeline(payment.account_id, move.timeline, subjects=payment_subjects(payment), payment_id=payment.id,
                 actor_id=actor_id, data=data)
    if move.books:
        move.books(dispute, at)
    record_move(move.event, dispute, at, event_data(dispute))
    if move.emails:
        move.emails(dispute)
    return True


def event_data(dispute: Dispute) -> dict[str, Any]:
    """What a dispute's account event (W6, I6) carries: its outcome once closed."""
    return {"status": dispute.status, "amount_minor": dispute.amount_minor, "currency": dispute.currency,
            "payment_id": dispute.payment_id}
