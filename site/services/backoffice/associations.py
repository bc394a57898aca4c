"""A payment's associations (P6, R7): at most one contact, company, deal and subscription each, with a label."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from kassa.actor import Actor
from kassa.database import parse_id, write_transaction
from kassa.errors import Conflict, NotFound, ValidationFailed
from kassa.extensions import db
from kassa.models import UNPAID_STATUSES, Company, Contact, Deal, Payment, Subscription
from kassa.services.crm.crm import add_timeline
from kassa.services.platform.audit import record_audit
from kassa.timeline_kinds import TimelineKind

KINDS = {"contact": Contact, "company": Company, "deal": Deal, "subscription": Subscription}
MAX_LABEL = 60


def _kind(kind: str):
    if kind not in KINDS:
        raise NotFound(_("Unknown association type."))
    return KINDS[kind]


def search(account_id: int, mode: str, kind: str, text: str, limit: int = 20) -> list:
    """Records of the same account and mode to associate ("+ Add"), by name or email."""
    model = _kind(kind)
    query = select(model).where(model.account_id == account_id, model.mode == mode)
    needle = (text or "").replace("\x00", "").strip().lower()[:100]  # PostgreSQL can't compare NUL
    if needle:
        if model is Contact:
            query = query.where(or_(func.lower(Contact.email).contains(needle, autoescape=True),
                                    func.lower(Contact.first_name + " " + Contact.last_name).contains(
                                        needle, autoescape=True)))
        elif model in (Company, Deal):
            query = query.where(func.lower(model.name).contains(needle, autoescape=True))
        elif (number := parse_id(needle)) is not None:
            query = query.where(Subscription.id == number)
    return list(db.session.scalars(query.order_by(model.id.desc()).limit(limit)))


def declined_attempt(payment: Payment) -> bool:
    """B2: a checkout attempt the bank declined (a failed payment) or the buyer didn't finish (incomplete): the CRM
    never counts it."""
    return payment.status in UNPAID_STATUSES and payment.source in ("payment_link", "invoice")


def set_association(actor: Actor, payment_id: int, kind: str, record_id: int | None,
                    label: str | None = None) -> Payment:
    """Add or replace (record_id) or remove (None) one association; the old one is replaced, never doubled."""
    model = _kind(kind)
    with write_transaction(db.session) as session:
        payment = session.get(Payment, payment_id)
        if payment is None or payment.account_id != actor.account_id:
            raise NotFound(_("Payment not found."))
        if record_id is not None and declined_attempt(payment):
            raise Conflict(_("A declined checkout attempt can't be linked to records: nothing was paid."))
        if record_id is not None:
            record = session.get(model, record_id) if parse_id(record_id) else None  # no overflow on huge ids
            if record is None or record.account_id != actor.account_id or record.mode != payment.mode:
                raise NotFound(_("Record not found."))
        before = getattr(payment, f"{kind}_id")
        setattr(payment, f"{kind}_id", record_id)
        label = (label or "").replace("\x00", "").strip()[:MAX_LABEL]
        setattr(payment, f"{kind}_label", label or None if record_id else None)
        add_timeline(payment.account_id, TimelineKind.ASSOCIATION_CHANGED, subjects=[("payment", payment.id)],
                     payment_id=payment.id, data={"kind": kind, "from": before, "to": record_id},
                     actor_id=actor.user_id)
        record_audit(actor, "payment.association_changed", object_type="payment", object_id=payment.id,
                     data={"kind": kind, "from": before, "to": record_id})
        return payment


def set_label(actor: Actor, payment_id: int, kind: str, label: str) -> Payment:
    _kind(kind)
    label = (label or "").replace("\x00", "").strip()
    if len(label) > MAX_LABEL:
        raise ValidationFailed(_("Use at most %(n)d characters.", n=MAX_LABEL), field="label")
    with write_transaction(db.session) as session:
        payment = session.get(Payment, payment_id)
        if payment is None or payment.account_id != actor.account_id:
            raise NotFound(_("Payment not found."))
        if getattr(payment, f"{kind}_id") is None:
            raise ValidationFailed(_("Add the association first."), field="label")
        setattr(payment, f"{kind}_label", label or None)
        return payment
