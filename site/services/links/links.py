"""Payment links: save the editor's draft, deactivate and reactivate, delete (L1–L19)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from kassa.actor import Actor
from kassa.clock import now
from kassa.database import lock_one, write_transaction
from kassa.errors import Conflict, Gone, NotFound, ValidationFailed
from kassa.extensions import db
from kassa.models import (
    CONTACT_FIELDS,
    CheckoutSession,
    LinkItem,
    LinkStatus,
    Payment,
    PaymentAttempt,
    PaymentLink,
    Product,
)
from kassa.services.links.link_drafts import LinkDraft, validate_draft
from kassa.services.platform.audit import record_audit

# Lower-case letters and digits without look-alikes (0/o, 1/l/i): safe to read aloud, type, and
# compare case-insensitively. 12 characters from 31 symbols ≈ 59 bits from the OS's CSPRNG.
SLUG_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
SLUG_LENGTH = 12


def new_slug() -> str:
    return "".join(secrets.choice(SLUG_ALPHABET) for _ in range(SLUG_LENGTH))


def normalize_slug(slug: str) -> str:
    return (slug or "").strip().lower()


def _unique_slug(session) -> str:
    while True:
        slug = new_slug()
        if session.scalar(select(func.count()).select_from(PaymentLink).where(PaymentLink.slug == slug)) == 0:
            return slug


def _check_products(session, account_id: int, draft: LinkDraft) -> dict[str, str]:
    """Library items must come from this account's library (a forged product id is refused)."""
    ids = {item.product_id for item in draft.items if item.product_id}
    if not ids:
        return {}
    owned = set(session.scalars(select(Product.id).where(Product.account_id == account_id, Product.id.in_(ids))))
    return {
        f"items-{i}-name": _("This product is not in your library.")
        for i, item in enumerate(draft.items)
        if item.product_id and item.product_id not in owned
    }


def _apply(link: PaymentLink, draft: LinkDraft) -> None:
    link.name = draft.name
    link.currency = draft.currency
    link.pipeline_id = draft.pipeline_id
    link.stage_id = draft.stage_id if draft.pipeline_id else None
    for name in CONTACT_FIELDS:
        setattr(link, f"field_{name}", draft.fields[name])
    link.allow_card = draft.allow_card
    link.allow_ach = draft.allow_ach
    link.collect_billing_address = draft.collect_billing_address
    link.collect_shipping_address = draft.collect_shipping_address
    link.collect_tax = draft.collect_tax
    link.confirmation = draft.confirmation
    link.redirect_url = draft.redirect_url or None
    link.custom_fields = [f.stored() for f in draft.custom_fields] or None  # Q8
    link.usage_limit = draft.usage_limit_value
    link.ends_at = draft.ends_at_value
    link.require_terms = draft.require_terms
    link.terms_url = draft.terms_url or None
    link.buyer_can_cancel = draft.buyer_can_cancel
    link.trial_days = draft.trial_days_value  # Q9 (validate_draft: only with a recurring item)
    link.items = [
        LinkItem(
            position=position, product_id=item.product_id, name=item.name, description=item.description,
            unit_amount_minor=item.unit_amount_minor, currency=draft.currency, quantity=item.quantity_value,
            frequency=item.frequency, term_type=item.term_type if item.is_recurring else None,
            term_count=item.term_count_value if item.is_recurring else None,
            discount_type=item.discount_type if item.discount_value_int else "",
            discount_value=item.discount_value_int if item.discount_type else 0,
            quantity_adjustable=item.is_adjustable, quantity_min=item.quantity_min_value,
            quantity_max=item.quantity_max_value, custom_amount=item.is_custom_amount,
            amount_min_minor=item.amount_min_minor if item.is_custom_amount else None,
            amount_max_minor=item.amount_max_minor if item.is_custom_amount else None,
        )
        for position, item in enumerate(draft.items)
    ]


def _validated(actor: Actor, draft: LinkDraft, locale: str) -> None:
    errors = validate_draft(draft, actor.account_id, locale)
    errors.update(_check_products(db.session, actor.account_id, draft))
    if errors:
        raise ValidationFailed(_("Check the highlighted fields."), errors=errors)


def create_link(actor: Actor, draft: LinkDraft, locale: str) -> PaymentLink:
    """L1: a new link with a fresh, permanent slug."""
    _validated(actor, draft, locale)
    with write_transaction(db.session) as session:
        link = PaymentLink(account_id=actor.account_id, slug=_unique_slug(session), created_by_id=actor.user_id)
        _apply(link, draft)
        session.add(link)
        session.flush()
        record_audit(actor, "link.created", object_type="payment_link", object_id=link.id,
                     data={"name": link.name, "slug": link.slug})
        return link


def owned_link(session, account_id: int, link_id: int) -> PaymentLink:
    link = session.get(PaymentLink, link_id)
    if link is None or link.account_id != account_id or link.deleted_at is not None:
        raise NotFound(_("Payment link not found."))
    return link


def update_link(actor: Actor, link_id: int, draft: LinkDraft, locale: str) -> PaymentLink:
    """Edit in place: same slug and URL; only checkout sessions started afterwards see the change (L19)."""
    _validated(actor, draft, locale)
    with write_transaction(db.session) as session:
        link = lock_one(session, PaymentLink, link_id)  # Q5: the seat counters are read as they are now
        if link is None or link.account_id != actor.account_id or link.deleted_at is not None:
            raise NotFound(_("Payment link not found."))
        _apply(link, draft)
        _follow_limit(link)
        link.version += 1
        record_audit(actor, "link.updated", object_type="payment_link", object_id=link.id,
                     data={"version": link.version})
        return link


def _follow_limit(link: PaymentLink) -> None:
    """Q5, an edited limit: a link its limit had deactivated comes back when the limit is raised above the
    payments it completed (or removed); a limit lowered to what it has already completed deactivates it.
    A link the merchant deactivated by hand stays as it is (reactivate it from the list)."""
    full = link.usage_limit is not None and link.usage_count >= link.usage_limit
    if link.limit_reached_at is not None and not full:
        link.limit_reached_at = None
        if link.status == LinkStatus.INACTIVE.value:
            link.status = LinkStatus.ACTIVE.value
    elif full and link.limit_reached_at is None:
        link.limit_reached_at = now()
        link.status = LinkStatus.INACTIVE.value


def set_active(actor: Actor, link_id: int, active: bool) -> PaymentLink:
    """L19: a deactivated link stops taking payments but keeps its URL, so it can come back."""
    with write_transaction(db.session) as session:
        link = owned_link(session, actor.account_id, link_id)
        if active and link.usage_limit is not None and link.usage_count >= link.usage_limit:
            raise Conflict(_("This link has completed its %(n)d payments. Raise the limit in the editor to take "
                             "more.", n=link.usage_limit))
        link.status = (LinkStatus.ACTIVE if active else LinkStatus.INACTIVE).value
        record_audit(actor, "link.activated" if active else "link.deactivated", object_type="payment_link",
                     object_id=link.id)
        return link


def link_payment_count(link_id: int) -> int:
    """How many payments came through this link (0 until the checkout capability records payments)."""
    return db.session.scalar(select(func.count()).select_from(Payment).where(Payment.link_id == link_id)) or 0


def _attempt_count(link_id: int) -> int:
    return db.session.scalar(
        select(func.count()).select_from(PaymentAttempt).where(PaymentAttempt.link_id == link_id)
    ) or 0


def delete_link(actor: Actor, link_id: int) -> None:
    """L15: delete after confirmation. A link with payments is only hidden, so its payments keep their source."""
    with write_transaction(db.session) as session:
        link = owned_link(session, actor.account_id, link_id)
        if link_payment_count(link.id) or _attempt_count(link.id):
            # Payment attempts (even declined ones) are the record of calls to the processor: keep them,
            # and so the link and checkout sessions they point at.
            link.deleted_at = now()
            link.status = LinkStatus.INACTIVE.value
        else:
            for checkout in session.scalars(select(CheckoutSession).where(CheckoutSession.link_id == link.id)):
                session.delete(checkout)
            session.delete(link)
        record_audit(actor, "link.deleted", object_type="payment_link", object_id=link_id, data={"name": link.name})


def link_by_slug(slug: str) -> PaymentLink:
    """The (not deleted) link behind a public URL, active or not; NotFound otherwise."""
    link = db.session.scalar(select(PaymentLink).where(PaymentLink.slug == normalize_slug(slug)))
    if link is None or link.deleted_at is not None:
        raise NotFound(_("This payment link doesn't exist."))
    return link


class LinkClosed(Gone):
    """Q5/L19: the link takes no more payments (deactivated, its usage limit reached, or past its end date);
    `account` is the business, named (and branded) on the buyer's polite page."""

    def __init__(self, account) -> None:
        super().__init__(_("%(merchant)s is no longer accepting payments through this link.",
                           merchant=account.name))
        self.account = account


def public_link(slug: str) -> PaymentLink:
    """The link behind a public URL; a closed one is "gone" (410, LinkClosed), an unknown or deleted one 404."""
    link = link_by_slug(slug)
    if not link.accepting_payments(now()):
        raise LinkClosed(link.account)
    return link


def sign_test_link(link: PaymentLink) -> str:
    """H7: the signature in a link's test URL (`/pay/<slug>/test/<signature>`). An HMAC under the app secret of
    the link id and its test key, so it can't be guessed, forged or moved to another link, and a new key
    (`renew_test_link`) revokes it. Only the merchant sees it (Payment links → Actions → Test)."""
    key = current_app.config["SECRET_KEY"].encode()
    message = f"kassa.test-link:{link.id}:{link.test_link_key or ''}".encode()
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()[:18]).decode()


def is_valid_test_signature(link: PaymentLink, signature: str) -> bool:
    return hmac.compare_digest(sign_test_link(link).encode(), (signature or "").encode())


def renew_test_link(actor: Actor, link_id: int) -> PaymentLink:
    """H7: a new test URL for the link; the old one (shared too widely, say) stops opening test checkouts."""
    with write_transaction(db.session) as session:
        link = owned_link(session, actor.account_id, link_id)
        link.test_link_key = secrets.token_urlsafe(12)
        record_audit(actor, "link.test_link_renewed", object_type="payment_link", object_id=link.id)
        return link
