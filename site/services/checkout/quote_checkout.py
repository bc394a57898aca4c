"""V4: a quote accepted and paid on its public page. The page's URL is the quote id signed with the app secret
(`quote_token`): unguessable, and no other quote's page can be reached by changing it.

Accepting takes the quote's row lock (two buyers, or two tabs, accepting at once are one acceptance), stores the
name typed, the time and the client's address, writes an audit row, and moves the quote's deal to the stage the
merchant chose. "Pay now" opens Kassa's checkout for exactly the quote: a checkout session of the quote whose
snapshot holds the quote's lines as a link's items, one-time and recurring, so the same checkout page, attempt,
processor call and `record_successful_charge` start the subscription of its recurring lines exactly as a link
with a recurring price does. The quote is counted paid by the payment's success (payment_states), not the page. The token, the checkout session
and the download limit are token_checkout's, shared with the invoice pay page.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from kassa.actor import Actor
from kassa.clock import account_today, now
from kassa.database import lock_one, write_transaction
from kassa.errors import Conflict, NotFound, ValidationFailed
from kassa.extensions import db
from kassa.models import (
    Account,
    BillingFrequency,
    CheckoutSession,
    Contact,
    Deal,
    Payment,
    PaymentStatus,
    Quote,
    QuoteStatus,
    Stage,
    TermType,
)
from kassa.services.checkout import token_checkout
from kassa.services.payments.documents import attempt_in_flight
from kassa.services.payments.quote_states import PAYABLE, move_quote
from kassa.services.payments.quotes import render_quote
from kassa.services.platform.audit import record_audit
from kassa.urls import absolute_url

_SALT = "kassa.quote-page"
MAX_NAME = 200


class QuoteClosed(Conflict):
    """The quote can't be accepted or paid now (expired, declined, void, paid, not accepted yet): the page says so
    politely and nothing changes."""

    def __init__(self, message: str, quote: Quote):
        super().__init__(message)
        self.quote = quote


def quote_token(quote: Quote) -> str:
    """The page's token: the quote id signed with the app secret (token_checkout.sign_id)."""
    return token_checkout.sign_id(_SALT, quote.id)


def quote_url(quote: Quote) -> str:
    return absolute_url("quote_page.page", token=quote_token(quote))


def quote_for_token(token: str) -> Quote:
    """The quote a token names; NotFound for a bad signature, a draft (not sent yet) or a deleted quote, all alike."""
    quote_id = token_checkout.signed_id(_SALT, token)
    quote = db.session.get(Quote, quote_id) if quote_id is not None else None
    if quote is None or quote.status == QuoteStatus.DRAFT.value:
        raise NotFound(_("This quote doesn't exist."))
    return quote


def is_expired(quote: Quote) -> bool:
    return quote.is_expired(account_today(db.session.get(Account, quote.account_id)))


def can_accept(quote: Quote) -> bool:
    return quote.status == QuoteStatus.OPEN.value and not is_expired(quote)


def can_pay(quote: Quote) -> bool:
    return quote.status in PAYABLE and quote.amount_minor > 0


def refusal(quote: Quote) -> str:
    """Why the quote can't be accepted (or paid), politely, for its page."""
    if quote.status == QuoteStatus.PAID.value:
        return _("This quote is accepted and paid. Thank you!")
    if quote.status == QuoteStatus.VOID.value:
        return _("This quote was withdrawn by the seller. Contact them if you have questions.")
    if quote.status == QuoteStatus.DECLINED.value:
        return _("This quote was declined.")
    if is_expired(quote):
        return _("This quote has expired, so it can no longer be accepted. Ask the seller for a new one.")
    if quote.status == QuoteStatus.OPEN.value:
        return _("Accept the quote first.")
    return _("This quote can't be accepted any more.")


def accept(token: str, *, name: str, agreed: bool, ip: str | None) -> tuple[Quote, bool]:
    """The buyer accepts: their name and the ticked box, with the time and their address stored and audited, and
    the deal moved to the chosen stage. (quote, False) when it was already accepted (a second tab, a double
    click): one acceptance. ValidationFailed at the field for a missing name or box; QuoteClosed when it can't be
    accepted (expired, void, declined)."""
    name = (name or "").strip()
    errors = {}
    if not name:
        errors["name"] = _("Type your full name to accept.")
    elif len(name) > MAX_NAME:
        errors["name"] = _("Use at most %(n)d characters.", n=MAX_NAME)
    if not agreed:
        errors["agree"] = _("Tick the box to accept the terms.")
    with write_transaction(db.session) as session:
        quote = lock_one(session, Quote, quote_for_token(token).id)
        if quote.status in (QuoteStatus.ACCEPTED.value, QuoteStatus.PAID.value):
            return quote, False
        if not can_accept(quote):
            raise QuoteClosed(refusal(quote), quote)
        if errors:
            raise ValidationFailed(_("Check the highlighted fields."), errors=errors)
        at = now()
        move_quote(quote, QuoteStatus.ACCEPTED, at=at)
        quote.accepted_name, quote.accepted_ip = name, (ip or "")[:45] or None
        moved = None
        if quote.deal_id is not None and quote.accept_stage_id is not None:
            deal = session.get(Deal, quote.deal_id)
            stage = session.get(Stage, quote.accept_stage_id)
            if deal is not None and stage is not None and stage.pipeline_id == deal.pipeline_id:
                moved = {"deal_id": deal.id, "from_stage_id": deal.stage_id, "to_stage_id": stage.id}
                deal.stage_id = stage.id
        record_audit(Actor(user=None, account_id=quote.account_id, ip=ip), "quote.accepted", object_type="quote",
                     object_id=quote.id, amount_after_minor=quote.amount_minor, currency=quote.currency,
                     data={"number": quote.number, "name": name, **({"deal": moved} if moved else {})})
        return quote, True


def decline(token: str, *, ip: str | None) -> Quote:
    """The buyer declines an open quote (audited with their address); QuoteClosed when it can't be any more."""
    with write_transaction(db.session) as session:
        quote = lock_one(session, Quote, quote_for_token(token).id)
        if quote.status == QuoteStatus.DECLINED.value:
            return quote
        if not can_accept(quote):
            raise QuoteClosed(refusal(quote), quote)
        move_quote(quote, QuoteStatus.DECLINED, at=now())
        record_audit(Actor(user=None, account_id=quote.account_id, ip=ip), "quote.declined", object_type="quote",
                     object_id=quote.id, data={"number": quote.number})
        return quote


def quote_snapshot(quote: Quote, email: str, start_url: str) -> dict[str, Any]:
    """A checkout snapshot as a link's (snapshots.link_snapshot), of the quote's lines: one-time lines charged
    today, recurring ones (auto-renewing, as a link's recurring price) charged today for their first period and then
    by their subscription. Nothing in it can be changed by the buyer (no quantities, no promo code, no questions)."""
    return token_checkout.fixed_snapshot({"quote_id": quote.id}, currency=quote.currency, items=[{
        "name": line.description, "description": "", "unit_amount_minor": line.unit_amount_minor,
        "currency": quote.currency, "quantity": line.quantity, "frequency": line.frequency,
        "term_type": None if line.frequency == BillingFrequency.ONE_TIME.value else TermType.AUTO_RENEW.value,
        "term_count": None, "product_id": line.product_id, "discount_type": line.discount_type,
        "discount_value": line.discount_value, "quantity_adjustable": False, "quantity_min": line.quantity,
        "quantity_max": line.quantity, "custom_amount": False, "amount_min_minor": None, "amount_max_minor": None,
    } for line in quote.lines], email=email, start_url=start_url)


def start_checkout(token: str, *, language: str | None) -> CheckoutSession:
    """POST /quote/<token>/pay: a checkout session of the accepted quote. QuoteClosed when it isn't accepted (or is
    paid, void) meanwhile."""
    with write_transaction(db.session) as session:
        quote = lock_one(session, Quote, quote_for_token(token).id)
        if not can_pay(quote):
            raise QuoteClosed(refusal(quote), quote)
        contact = session.get(Contact, quote.contact_id) if quote.contact_id else None
        snapshot = quote_snapshot(quote, contact.email if contact else "", quote_url(quote))
        return token_checkout.open_session(session, quote.account_id, {"quote_id": quote.id}, snapshot, language)


def hold_quote(session, checkout: CheckoutSession, amount_minor: int) -> None:
    """Inside the attempt's write (checkout._begin_attempt): the quote's row lock, then every reason not to charge:
    paid or void meanwhile, another checkout of it with the processor right now, or another amount."""
    quote = lock_one(session, Quote, checkout.quote_id)
    if not can_pay(quote):
        raise QuoteClosed(refusal(quote), quote)
    if attempt_in_flight(session, CheckoutSession.quote_id, quote.id):
        raise QuoteClosed(_("A payment of this quote is being processed right now. Open the quote again in a "
                            "moment to see it paid."), quote)
    clearing = session.scalar(
        select(Payment.id).join(CheckoutSession, CheckoutSession.id == Payment.checkout_session_id)
        .where(CheckoutSession.quote_id == quote.id, Payment.status == PaymentStatus.PROCESSING.value).limit(1))
    if clearing is not None:
        raise QuoteClosed(_("A payment of this quote is already on its way from the bank, so it can't be paid again "
                            "now."), quote)
    if amount_minor != quote.amount_minor:
        raise QuoteClosed(_("The quote has changed. Open it again to pay."), quote)


def public_quote_pdf(quote: Quote, *, ip: str | None) -> tuple[str, str, bytes]:
    """The quote PDF from its page, limited per quote and per client address as receipt downloads are (H7)."""
    return token_checkout.limited_render("quote", quote.id, ip, render_quote)
