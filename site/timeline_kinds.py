"""Timeline kinds (M5, R6, D6): every kind of activity a timeline entry can record, and what it says.

Callers pass a ``TimelineKind`` (never a hand-typed string), and ``add_timeline``/``timeline_rows`` refuse
anything else, so a typo can't store a kind no page knows how to show."""

from __future__ import annotations

from enum import StrEnum


class TimelineKind(StrEnum):
    PAYMENT_SUBMITTED = "payment.submitted"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_REFUNDED = "payment.refunded"
    PAYMENT_DELETED = "payment.deleted"  # V3: a manual payment deleted by a Super admin
    PAYMENT_EDITED = "payment.edited"  # V3: a manual payment changed by a Super admin
    REFUND_CREATED = "refund.created"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_FAILED = "refund.failed"
    RECEIPT_SENT = "receipt.sent"
    ASSOCIATION_CHANGED = "association.changed"
    SUBSCRIPTION_CREATED = "subscription.created"
    SUBSCRIPTION_PAST_DUE = "subscription.past_due"
    SUBSCRIPTION_COMPLETED = "subscription.completed"
    SUBSCRIPTION_CANCELLED = "subscription.cancelled"
    SUBSCRIPTION_CANCEL_SCHEDULED = "subscription.cancel_scheduled"
    SUBSCRIPTION_CARD_UPDATED = "subscription.card_updated"
    SUBSCRIPTION_REMINDER_SENT = "subscription.reminder_sent"
    SUBSCRIPTION_TEST_CARD_CHANGED = "subscription.test_card_changed"
    SUBSCRIPTION_TEST_CLOCK_RESET = "subscription.test_clock_reset"
    DISPUTE_OPENED = "dispute.opened"
    DISPUTE_INQUIRY_OPENED = "dispute.inquiry_opened"
    DISPUTE_FUNDS_WITHDRAWN = "dispute.funds_withdrawn"
    DISPUTE_FUNDS_RETURNED = "dispute.funds_returned"
    DISPUTE_DRAFT_SAVED = "dispute.draft_saved"
    DISPUTE_FILE_ADDED = "dispute.file_added"
    DISPUTE_EVIDENCE_SUBMITTED = "dispute.evidence_submitted"
    DISPUTE_WON = "dispute.won"
    DISPUTE_LOST = "dispute.lost"
    DISPUTE_ACCEPTED = "dispute.accepted"

    @classmethod
    def of(cls, subject: str, status: StrEnum | str) -> TimelineKind:
        """The kind for a status a payment, subscription or dispute moved to: ``of("payment", FAILED)``."""
        return cls(f"{subject}.{getattr(status, 'value', status)}")


def timeline_label(kind: str) -> str:
    """What a timeline entry says, the same on a payment's History and on its contact, company and deal:
    one list, so a new kind of activity can't show as its raw key on some of them."""
    from flask_babel import gettext as _

    return {
        TimelineKind.PAYMENT_SUBMITTED: _("Payment submitted"), TimelineKind.PAYMENT_SUCCEEDED: _("Payment succeeded"),
        TimelineKind.PAYMENT_FAILED: _("Payment failed"), TimelineKind.PAYMENT_REFUNDED: _("Payment refunded"),
        TimelineKind.PAYMENT_DELETED: _("Manual payment deleted"),
        TimelineKind.PAYMENT_EDITED: _("Manual payment changed"),
        TimelineKind.REFUND_CREATED: _("Refund submitted"), TimelineKind.REFUND_SUCCEEDED: _("Refund completed"),
        TimelineKind.REFUND_FAILED: _("Refund failed"), TimelineKind.RECEIPT_SENT: _("Receipt sent"),
        TimelineKind.ASSOCIATION_CHANGED: _("Associations changed"),
        TimelineKind.SUBSCRIPTION_CREATED: _("Subscription created"),
        TimelineKind.SUBSCRIPTION_PAST_DUE: _("Payment failed: subscription past due"),
        TimelineKind.SUBSCRIPTION_COMPLETED: _("Subscription completed"),
        TimelineKind.SUBSCRIPTION_CANCELLED: _("Subscription cancelled"),
        TimelineKind.SUBSCRIPTION_CANCEL_SCHEDULED: _("Cancellation scheduled for the end of the period"),
        TimelineKind.SUBSCRIPTION_CARD_UPDATED: _("Card updated"),
        TimelineKind.SUBSCRIPTION_REMINDER_SENT: _("Payment reminder sent"),
        TimelineKind.SUBSCRIPTION_TEST_CARD_CHANGED: _("Test card changed"),
        TimelineKind.SUBSCRIPTION_TEST_CLOCK_RESET: _("Test clock back to real time"),
        TimelineKind.DISPUTE_OPENED: _("Dispute opened"), TimelineKind.DISPUTE_INQUIRY_OPENED: _("Inquiry opened"),
        TimelineKind.DISPUTE_FUNDS_WITHDRAWN: _("Disputed amount and fee withdrawn"),
        TimelineKind.DISPUTE_FUNDS_RETURNED: _("Disputed amount returned"),
        TimelineKind.DISPUTE_DRAFT_SAVED: _("Dispute evidence draft saved"),
        TimelineKind.DISPUTE_FILE_ADDED: _("Evidence file added"),
        TimelineKind.DISPUTE_EVIDENCE_SUBMITTED: _("Dispute evidence submitted"),
        TimelineKind.DISPUTE_WON: _("Dispute won"), TimelineKind.DISPUTE_LOST: _("Dispute lost"),
        TimelineKind.DISPUTE_ACCEPTED: _("Dispute accepted"),
    }.get(kind, kind)
