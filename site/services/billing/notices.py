"""The emails a subscriber gets (S3, E7): a failed renewal with a link to update the card, the end of a
subscription, a scheduled cancellation and the reminder before the next payment.

They live in billing rather than in platform/notifications because they need the card-update token, a
billing concept; notifications stays below every domain package.
"""

from __future__ import annotations

import secrets

from kassa.extensions import db
from kassa.models import Account, Subscription
from kassa.money import Money
from kassa.services.platform.mail import queue_email
from kassa.urls import absolute_url


def update_url_token(subscription_id: int) -> str:
    """The secret in the buyer's card-update link, created once per subscription (call inside a write)."""
    sub = db.session.get(Subscription, subscription_id)
    if not sub.update_token:
        sub.update_token = secrets.token_urlsafe(32)
    return sub.update_token



def _to_subscriber(sub, kind: str, template: str, **extra) -> None:
    account = db.session.get(Account, sub.account_id)
    contact = sub.contact
    context = {"sub": sub, "account": account, "brand_color": account.brand_color,
               "amount": Money(sub.amount_minor, sub.currency), **extra}
    if sub.status in ("trialing", "active", "past_due"):
        context["update_url"] = absolute_url("billing_portal.update_card", token=update_url_token(sub.id))
    queue_email(kind=kind, to=[contact.email], template=template, language=sub.language or contact.language,
                context=context, account_id=account.id, related=("subscription", sub.id))


# K8: the bank wants the buyer to confirm an off-session renewal (3-D Secure); nothing was charged.
AUTHENTICATION_REQUIRED = "authentication_required"


def notify_subscription_payment_failed(sub, payment) -> None:
    """S3: a renewal failed; the buyer gets a link to update their card (retries follow). K8: when the bank asked
    for the buyer's confirmation, which a renewal charged while they are away can't give, the email says so and
    asks them to confirm their card on the card-update page instead of calling it a decline."""
    if payment is not None and payment.failure_code == AUTHENTICATION_REQUIRED:
        _to_subscriber(sub, "subscription_authentication_required",
                       "email/subscription_authentication_required.html", payment=payment)
        return
    _to_subscriber(sub, "subscription_payment_failed", "email/subscription_payment_failed.html", payment=payment)


def notify_subscription_ended(sub) -> None:
    _to_subscriber(sub, "subscription_ended", "email/subscription_ended.html")


def notify_subscription_cancel_scheduled(sub) -> None:
    _to_subscriber(sub, "subscription_cancel_scheduled", "email/subscription_ended.html", scheduled=True)


def notify_subscription_reminder(sub) -> None:
    """E7: 14 days before the next payment, with the amount and the date."""
    _to_subscriber(sub, "subscription_reminder", "email/subscription_reminder.html")
