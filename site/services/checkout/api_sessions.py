"""Checkout sessions a shop opens through the API (I2) for one of its payment links, and sends its buyer to.

The session is the same checkout session a visit to the link starts (L17: its own token, a frozen copy of the
link), opened ahead of the buyer with what the shop already knows: the buyer's email (filled into the form),
where to send the buyer after paying (the shop's success page) and how long it stays open. Paying it is the
ordinary checkout; it then completes as any other. The email rides in the session's frozen snapshot, as an
invoice's customer's does (V2), so the cached checkout page (Q12) is keyed by it and never shows one buyer's
address to another.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from kassa.clock import now
from kassa.database import lock_one, write_transaction
from kassa.errors import Conflict, ValidationFailed
from kassa.extensions import db
from kassa.models import AttemptStatus, CheckoutSession, CheckoutStatus, PaymentAttempt, PaymentLink
from kassa.services.checkout.checkout import SESSION_LIFETIME
from kassa.services.links.snapshots import link_snapshot

MIN_LIFETIME = timedelta(minutes=30)  # as Stripe's: expires_at between 30 minutes and 24 hours from now


def open_for_link(link: PaymentLink, *, mode: str, api_key_id: int, email: str | None, success_url: str | None,
                  expires_at: datetime | None, metadata: dict[str, str] | None,
                  success_url_of=None) -> CheckoutSession:
    """A new open checkout session of `link` (the caller checked it is the key's account's). `success_url`
    replaces the link's confirmation for this session only (`success_url_of(session)` fills in its id)."""
    moment = now()
    if expires_at is not None and not (moment + MIN_LIFETIME <= expires_at <= moment + SESSION_LIFETIME):
        raise ValidationFailed(_("Choose a time between 30 minutes and 24 hours from now."), field="expires_at")
    with write_transaction(db.session) as session:
        link = session.get(PaymentLink, link.id)  # read as a visit's start reads it (no lock: no seat is taken)
        if link is None or link.deleted_at is not None or not link.accepting_payments(moment):
            raise ValidationFailed(_("This payment link is not accepting payments."), field="payment_link")
        snapshot = link_snapshot(link)
        if email:
            snapshot["email"] = email  # the form starts with it (the page reads it as an invoice's, V2)
        checkout = CheckoutSession(
            account_id=link.account_id, link_id=link.id, token=secrets.token_urlsafe(32), mode=mode,
            link_version=link.version, snapshot=snapshot, language=None, api_key_id=api_key_id,
            metadata_json=metadata or None, expires_at=expires_at or moment + SESSION_LIFETIME,
        )
        session.add(checkout)
        session.flush()
        if success_url:
            # L13: the buyer goes to the shop's page after paying, its origin allowed by the page's CSP (H11)
            checkout.snapshot = {**snapshot, "confirmation": "redirect",
                                 "redirect_url": success_url_of(checkout) if success_url_of else success_url}
        return checkout


def expire(account_id: int, mode: str, checkout_id: int) -> CheckoutSession:
    """POST …/expire: an open session stops taking payments at once; the buyer's page says it expired. Under
    the session's lock, which paying takes before it writes an attempt: a payment either began before (then
    the session can't be expired: it is with the processor or done) or is refused afterwards."""
    with write_transaction(db.session) as session:
        checkout = lock_one(session, CheckoutSession, checkout_id)
        if checkout is None or checkout.account_id != account_id or checkout.mode != mode:
            raise Conflict(_("No such checkout session."))
        if checkout.status == CheckoutStatus.COMPLETED.value:
            raise Conflict(_("Only an open checkout session can be expired: this one is complete."),
                           field="session")
        if checkout.status == CheckoutStatus.EXPIRED.value or checkout.expires_at <= now():
            raise Conflict(_("Only an open checkout session can be expired: this one has expired."),
                           field="session")
        busy = session.scalar(select(PaymentAttempt.id).where(
            PaymentAttempt.checkout_session_id == checkout.id,
            PaymentAttempt.status.in_((AttemptStatus.PENDING.value, AttemptStatus.UNKNOWN.value))).limit(1))
        if busy is not None:
            raise Conflict(_("A payment of this checkout session is being processed: it can't be expired now."),
                           field="session")
        checkout.status = CheckoutStatus.EXPIRED.value
        return checkout

