"""What payments need to know about their disputes, below the disputes package (D2, D3, F3).

The payment's shown status, whether it may be refunded and how long a deadline has left are read by
payments, refunds and the details page; the disputes package (which opens, answers and closes disputes)
sits above payments, so these facts live here where both can use them without an import cycle.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from kassa.clock import now
from kassa.extensions import db
from kassa.models import Account, DisplayStatus, Dispute, DisputeStatus, Payment

STATUS_FOR_DISPLAY = {
    DisputeStatus.NEEDS_RESPONSE: DisplayStatus.DISPUTED_ACTION_REQUIRED,
    DisputeStatus.UNDER_REVIEW: DisplayStatus.DISPUTED_AWAITING_DECISION,
    DisputeStatus.WON: DisplayStatus.DISPUTED_WON,
    DisputeStatus.LOST: DisplayStatus.DISPUTED_LOST,
}



def latest_dispute(payment_id: int) -> Dispute | None:
    return db.session.scalar(select(Dispute).where(Dispute.payment_id == payment_id).order_by(Dispute.id.desc()))


def blocks_refund(payment: Payment) -> bool:
    """A payment under dispute can't be refunded: the bank is already taking the money back. (An inquiry
    only asks questions, and a won dispute gave the money back to the merchant: those can be refunded.)"""
    if payment.dispute_created_at is None:
        return False
    dispute = latest_dispute(payment.id)
    if dispute is None or dispute.is_inquiry:
        return False
    return dispute.status != DisputeStatus.WON.value



def deadline_info(dispute: Dispute, account: Account) -> dict[str, Any]:
    return time_left(dispute.evidence_due_by, account)


def time_left(due_by: datetime, account: Account) -> dict[str, Any]:
    """Until an evidence deadline, in real time (B9: test disputes too): "3 days left" (whole days), "10 hours left" on the
    last day, with a warning inside 48 hours (D3). Shown the same on the tab, the payment and the wizard."""
    left = due_by - now()
    return {"days": max(left.days, 0), "hours": max(int(left.total_seconds() // 3600), 0),
            "urgent": timedelta(0) < left <= timedelta(hours=48), "passed": left <= timedelta(0)}


# Card networks give the buyer's bank up to 75 days after the evidence arrives to decide (Visa, Mastercard);
# Kassa shows the date that makes, so the merchant knows when to expect the outcome (B5).
DECISION_WINDOW = timedelta(days=75)
EVIDENCE_STEPS = ("questions", "details", "evidence")


def decision_due_by(dispute: Dispute) -> datetime | None:
    """When the bank's decision is due for submitted evidence (None before it was submitted)."""
    return dispute.submitted_at + DECISION_WINDOW if dispute.submitted_at else None


def sent_evidence(dispute: Dispute) -> dict[str, Any] | None:
    """B5: what the merchant sent with their answer: the wizard's answered fields by step, the file names and
    when a decision is due. The draft is read-only from the moment the answer is taken and then holds exactly
    what went to the processor (services/disputes/disputes._claim_answer). None before anything was sent."""
    if dispute.submitted_at is None:
        return None
    draft = dispute.draft or {}
    fields = {step: [key for key, value in draft.get(step, {}).items() if value] for step in EVIDENCE_STEPS}
    return {"fields": {step: keys for step, keys in fields.items() if keys},
            "files": [file.filename for file in dispute.files], "submitted_at": dispute.submitted_at,
            "decision_due_by": decision_due_by(dispute) if dispute.status == DisputeStatus.UNDER_REVIEW.value
            else None}
