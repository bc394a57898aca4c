"""What a workflow's steps act on (W6): the object its trigger event is about — a payment (refunded: the
payment), a subscription, a dispute, a payout or an abandoned checkout session — as one `Subject`: who an email
goes to and in which language, the contact for segment steps, the page the team opens, and the merge fields.

Every object fills the common merge fields (`first_name`, `name`, `email`, `amount`, `link_name`,
`business_name`: `amount` is the object's own: the payment's, a renewal's charge, the dispute's, the payout's,
the checkout's total) and its own ones (`MERGE_FIELDS`); a field the trigger's object doesn't have is refused in
the editor."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from kassa.event_types import AccountEventType as Event
from kassa.extensions import db
from kassa.models import (
    Account,
    CheckoutSession,
    Contact,
    Dispute,
    Payment,
    PaymentAttempt,
    PaymentLink,
    Payout,
    Refund,
    Subscription,
    WorkflowEnrollment,
)
from kassa.money import Money
from kassa.timefmt import DATE, format_when
from kassa.urls import absolute_url

COMMON = ("first_name", "name", "email", "amount", "link_name", "business_name")
OWN = {
    "payment": ("refund_amount",),
    "subscription": ("period",),
    "dispute": ("dispute_reason",),
    "payout": ("arrival_date",),
    "checkout_session": ("checkout_url",),
}
OBJECT_OF = {Event.PAYMENT_SUCCEEDED: "payment", Event.PAYMENT_FAILED: "payment", Event.PAYMENT_REFUNDED: "payment",
             Event.SUBSCRIPTION_STARTED: "subscription", Event.SUBSCRIPTION_RENEWED: "subscription",
             Event.SUBSCRIPTION_PAST_DUE: "subscription", Event.SUBSCRIPTION_CANCELLED: "subscription",
             Event.DISPUTE_OPENED: "dispute", Event.DISPUTE_CLOSED: "dispute", Event.PAYOUT_PAID: "payout",
             Event.PAYOUT_FAILED: "payout", Event.CHECKOUT_ABANDONED: "checkout_session"}
# Triggers whose object is a payment or has one (a refund's, a dispute's, a renewal's charge): the payments
# index's filter (W5) applies to that payment. The others take no payment criteria.
WITH_PAYMENT = {Event.PAYMENT_SUCCEEDED, Event.PAYMENT_FAILED, Event.PAYMENT_REFUNDED, Event.DISPUTE_OPENED,
                Event.DISPUTE_CLOSED, Event.SUBSCRIPTION_RENEWED}
OBJECT_LABELS = {"payment": _l("Payment"), "subscription": _l("Subscription"), "dispute": _l("Dispute"),
                 "payout": _l("Payout"), "checkout_session": _l("Checkout")}
ALL_FIELDS = COMMON + tuple(name for names in OWN.values() for name in names)


def merge_fields(trigger: str) -> tuple[str, ...]:
    """The merge fields a workflow on `trigger` can use."""
    return COMMON + OWN.get(OBJECT_OF.get(Event(trigger)) if trigger in set(Event) else "payment", ())


@dataclass
class Subject:
    object_type: str
    object_id: int
    payment: Payment | None
    email: str | None  # the buyer's (None: a payout has no buyer)
    language: str
    contact_id: int | None
    url: str
    values: dict[str, str] = field(default_factory=dict)


def _money(amount_minor: int, currency: str, language: str) -> str:
    return Money(amount_minor, currency).format(language)


def _names(first: str, full: str) -> dict[str, str]:
    full = (full or "").strip()
    return {"first_name": (first or (full.split()[0] if full else "")).strip(), "name": full}


def _link_name(link_id: int | None) -> str:
    link = db.session.get(PaymentLink, link_id) if link_id else None
    return link.name if link else ""


def _payment_subject(enrollment: WorkflowEnrollment, payment: Payment, account: Account) -> Subject:
    language = payment.language or account.language
    refund = ""
    if enrollment.trigger_event == Event.PAYMENT_REFUNDED and payment.refunded_minor:
        refund = _money(payment.refunded_minor, payment.currency, language)
    return Subject("payment", payment.id, payment, payment.buyer_email, language, payment.contact_id,
                   absolute_url("payments.detail", payment_id=payment.id),
                   {**_names("", payment.buyer_name), "email": payment.buyer_email,
                    "amount": _money(payment.amount_minor, payment.currency, language),
                    "link_name": _link_name(payment.link_id), "refund_amount": refund})


def _subscription_subject(enrollment: WorkflowEnrollment, sub: Subscription, account: Account) -> Subject:
    contact = db.session.get(Contact, sub.contact_id)
    payment = db.session.get(Payment, enrollment.payment_id) if enrollment.payment_id else None
    language = sub.language or account.language
    amount = payment.amount_minor if payment is not None else sub.amount_minor
    return Subject("subscription", sub.id, payment, contact.email if contact else None, language, sub.contact_id,
                   absolute_url("subscriptions.detail", subscription_id=sub.id),
                   {**_names(contact.first_name if contact else "",
                             f"{contact.first_name} {contact.last_name}" if contact else ""),
                    "email": contact.email if contact else "", "amount": _money(amount, sub.currency, language),
                    "link_name": _link_name(sub.link_id), "period": sub.frequency})


def _dispute_subject(enrollment: WorkflowEnrollment, dispute: Dispute, account: Account) -> Subject:
    payment = db.session.get(Payment, dispute.payment_id)
    language = payment.language or account.language
    return Subject("dispute", dispute.id, payment, payment.buyer_email, language, payment.contact_id,
                   absolute_url("disputes.show", dispute_id=dispute.id),
                   {**_names("", payment.buyer_name), "email": payment.buyer_email,
                    "amount": _money(dispute.amount_minor, dispute.currency, language),
                    "link_name": _link_name(payment.link_id), "dispute_reason": dispute.reason.replace("_", " ")})


def _payout_subject(enrollment: WorkflowEnrollment, payout: Payout, account: Account) -> Subject:
    language = account.language
    return Subject("payout", payout.id, None, None, language, None,
                   absolute_url("payouts.detail", payout_id=payout.id),
                   {"first_name": "", "name": "", "email": "", "link_name": "",
                    "amount": _money(payout.amount_minor, payout.currency, language),
                    "arrival_date": format_when(payout.arrival_date, DATE, locale=language, timezone=account.timezone)})


def _checkout_subject(enrollment: WorkflowEnrollment, session: CheckoutSession, account: Account) -> Subject:
    attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.checkout_session_id == session.id)
                                .order_by(PaymentAttempt.id.desc()).limit(1))
    buyer = (attempt.buyer if attempt is not None else {}) or {}
    contact = buyer.get("contact") or {}
    language = session.language or account.language
    first, last = contact.get("first_name", ""), contact.get("last_name", "")
    amount = attempt.amount_minor if attempt is not None else int(session.snapshot.get("amount_minor") or 0)
    currency = attempt.currency if attempt is not None else session.snapshot.get("currency", "EUR")
    link = db.session.get(PaymentLink, session.link_id) if session.link_id else None
    url = absolute_url("checkout.start", slug=link.slug) if link is not None else ""
    return Subject("checkout_session", session.id, None, buyer.get("email") or None, language, None,
                   url or absolute_url("workflows.index"),
                   {**_names(first, f"{first} {last}"), "email": buyer.get("email") or "",
                    "amount": _money(amount, currency, language), "link_name": link.name if link else "",
                    "checkout_url": url})


_LOADERS = {"payment": (Payment, _payment_subject), "subscription": (Subscription, _subscription_subject),
            "dispute": (Dispute, _dispute_subject), "payout": (Payout, _payout_subject),
            "checkout_session": (CheckoutSession, _checkout_subject), "refund": (Refund, None)}


def subject_of(enrollment: WorkflowEnrollment, account: Account) -> Subject | None:
    """The enrollment's object as a Subject (None: it no longer exists)."""
    model, build = _LOADERS[enrollment.object_type]
    obj = db.session.get(model, enrollment.object_id)
    if obj is None or build is None:
        return None
    subject = build(enrollment, obj, account)
    subject.values["business_name"] = account.name
    return subject
