"""Account event types (W6, I6): what the account event feed records, once per transition of a money object.

The workflows' triggers and the outgoing webhooks' event types are these. Each money machine declares, on its
transitions (``Transition.event``), the type a move records; objects created in a state (a subscription
starting, a dispute opening) record theirs where they are created. Callers pass an ``AccountEventType``,
never a hand-typed string: ``account_events.record`` refuses anything else.
"""

from __future__ import annotations

from enum import StrEnum

from flask_babel import lazy_gettext as _l


class AccountEventType(StrEnum):
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_REFUNDED = "payment.refunded"
    SUBSCRIPTION_STARTED = "subscription.started"
    SUBSCRIPTION_RENEWED = "subscription.renewed"
    SUBSCRIPTION_PAST_DUE = "subscription.past_due"
    SUBSCRIPTION_CANCELLED = "subscription.cancelled"
    DISPUTE_OPENED = "dispute.opened"
    DISPUTE_CLOSED = "dispute.closed"
    PAYOUT_PAID = "payout.paid"
    PAYOUT_FAILED = "payout.failed"
    # W6: a checkout session with the buyer's email that wasn't paid within an hour (the workflows tick finds it).
    CHECKOUT_ABANDONED = "checkout.abandoned"

    @property
    def label(self) -> str:
        return str(_LABELS[self])


_LABELS = {
    AccountEventType.PAYMENT_SUCCEEDED: _l("Payment succeeded"),
    AccountEventType.PAYMENT_FAILED: _l("Payment failed"),
    AccountEventType.PAYMENT_REFUNDED: _l("Payment refunded"),
    AccountEventType.SUBSCRIPTION_STARTED: _l("Subscription started"),
    AccountEventType.SUBSCRIPTION_RENEWED: _l("Subscription renewed"),
    AccountEventType.SUBSCRIPTION_PAST_DUE: _l("Subscription past due"),
    AccountEventType.SUBSCRIPTION_CANCELLED: _l("Subscription cancelled"),
    AccountEventType.DISPUTE_OPENED: _l("Dispute opened"),
    AccountEventType.DISPUTE_CLOSED: _l("Dispute won or lost"),
    AccountEventType.PAYOUT_PAID: _l("Payout paid"),
    AccountEventType.PAYOUT_FAILED: _l("Payout failed"),
    AccountEventType.CHECKOUT_ABANDONED: _l("Checkout abandoned"),
}
