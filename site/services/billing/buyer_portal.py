"""Q11: the buyer portal — what one buyer (an email) has with one account, reached by the signed link in every
receipt email (services/accounts/portal_tokens.py): their payments with receipt downloads, and their active
subscriptions with "Update payment method" (the S3 card-update page) and, where the link allows it, "Cancel".

Every read is scoped to the token's account and email: nothing of another buyer or account is ever found
(the blueprint answers NotFound as 404). A buyer's cancellation takes effect at the end of the period already
paid (they keep what they paid for; no refund), like the merchant's "at period end".
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import func, select

from kassa.actor import Actor
from kassa.database import write_transaction
from kassa.errors import Conflict, NotFound
from kassa.extensions import db
from kassa.models import UNPAID_STATUSES, Account, Contact, Payment, PaymentLink, Subscription
from kassa.services.accounts.portal_tokens import read_portal_token
from kassa.services.billing.billing import BILLABLE
from kassa.services.billing.notices import update_url_token
from kassa.services.billing.subscriptions import end_subscription
from kassa.services.platform.audit import record_audit

MAX_PAYMENTS = 100


@dataclass(frozen=True)
class PortalSubscription:
    subscription: Subscription
    can_cancel: bool


@dataclass(frozen=True)
class Portal:
    account: Account
    email: str
    payments: list[Payment]
    subscriptions: list[PortalSubscription]


def _reader(token: str) -> tuple[Account, str]:
    found = read_portal_token(token)
    if found is None:
        raise NotFound(_("This link is not valid."))
    return found


def _buyer_payments(account: Account, email: str):
    return select(Payment).where(Payment.account_id == account.id, func.lower(Payment.buyer_email) == email,
                                 Payment.status.not_in(UNPAID_STATUSES))


def _buyer_subscriptions(account: Account, email: str):
    return (select(Subscription).join(Contact, Contact.id == Subscription.contact_id)
            .where(Subscription.account_id == account.id, func.lower(Contact.email) == email))


def _can_cancel(sub: Subscription) -> bool:
    if sub.status not in BILLABLE or sub.cancel_at_period_end or sub.link_id is None:
        return False
    link = db.session.get(PaymentLink, sub.link_id)
    return link is not None and link.buyer_can_cancel


def portal(token: str) -> Portal:
    account, email = _reader(token)
    payments = list(db.session.scalars(_buyer_payments(account, email)
                                       .order_by(Payment.created_at.desc(), Payment.id.desc()).limit(MAX_PAYMENTS)))
    subs = list(db.session.scalars(_buyer_subscriptions(account, email).where(Subscription.status.in_(BILLABLE))
                                   .order_by(Subscription.id.desc())))
    return Portal(account=account, email=email, payments=payments,
                  subscriptions=[PortalSubscription(sub, _can_cancel(sub)) for sub in subs])


def portal_payment(token: str, payment_id: int) -> Payment:
    """One of this buyer's payments with a receipt (the PDF download); NotFound for anyone else's."""
    account, email = _reader(token)
    payment = db.session.scalar(_buyer_payments(account, email).where(Payment.id == payment_id,
                                                                      Payment.receipt_number.is_not(None)))
    if payment is None:
        raise NotFound(_("Receipt not found."))
    return payment


def portal_subscription(token: str, subscription_id: int) -> PortalSubscription:
    account, email = _reader(token)
    sub = db.session.scalar(_buyer_subscriptions(account, email).where(Subscription.id == subscription_id))
    if sub is None:
        raise NotFound(_("Subscription not found."))
    return PortalSubscription(sub, _can_cancel(sub))


def card_update_token(token: str, subscription_id: int) -> str:
    """The S3 card-update page's token for one of this buyer's active subscriptions."""
    found = portal_subscription(token, subscription_id)
    if found.subscription.status not in BILLABLE:
        raise NotFound(_("Subscription not found."))
    with write_transaction(db.session):
        return update_url_token(subscription_id)


def cancel_from_portal(token: str, subscription_id: int) -> Subscription:
    """The buyer cancels: at the end of the period already paid. Only where the link lets buyers cancel."""
    found = portal_subscription(token, subscription_id)
    if not found.can_cancel:
        raise Conflict(_("This subscription can't be cancelled here. Contact %(merchant)s to cancel it.",
                         merchant=db.session.get(Account, found.subscription.account_id).name))
    with write_transaction(db.session) as session:
        sub = session.get(Subscription, subscription_id)
        end_subscription(session, sub, "period_end", actor_id=None, reason="cancelled_by_buyer")
        record_audit(Actor.system(sub.account_id), "subscription.cancelled_by_buyer", object_type="subscription",
                     object_id=sub.id, data={"when": "period_end"})
        return sub
