"""Q2 promo codes: the merchant's list (create, deactivate) and what the checkout asks of a code (is it valid
for this link and buyer; reserve a redemption before the charge, give it back when the charge doesn't go
through).

Redemptions are counted atomically: one conditional UPDATE reserves a use (`redeemed < max_redemptions`), in
the transaction that starts the payment attempt, so 50 buyers at once on a 10-use code make exactly 10
discounted payments. The account row keeps which links offer the field (`Account.promo_links`), so the cached
checkout page knows without a query."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import or_, select, update

from kassa.actor import Actor
from kassa.clock import now, zone
from kassa.database import search_key, write_transaction
from kassa.errors import NotFound, ValidationFailed
from kassa.extensions import db
from kassa.forms import parse_int
from kassa.models import Account, Payment, PaymentLink, PaymentStatus, PromoCode
from kassa.money import MoneyError, is_known_currency, parse_money
from kassa.order_summary import DiscountType
from kassa.services.links.link_drafts import parse_percent_bp
from kassa.services.platform.audit import record_audit

CODE_RE = re.compile(r"^[A-Z0-9_-]{1,32}$")
MAX_AMOUNT_MINOR = 10**11
MAX_REDEMPTIONS = 1_000_000
FIELD = "promo"  # the checkout's field (and the form value it reads)


def normalize_code(text: str | None) -> str:
    """Codes are case-insensitive: kept and compared in upper case."""
    return (text or "").strip().upper()


# -- the merchant's list ----------------------------------------------------------------------------


def list_codes(account_id: int) -> list[PromoCode]:
    return list(db.session.scalars(select(PromoCode).where(PromoCode.account_id == account_id)
                                   .order_by(PromoCode.active.desc(), PromoCode.created_at.desc(), PromoCode.id)))


def account_links(account_id: int) -> list[PaymentLink]:
    return list(db.session.scalars(select(PaymentLink).where(PaymentLink.account_id == account_id,
                                                             PaymentLink.deleted_at.is_(None))
                                   .order_by(PaymentLink.name, PaymentLink.id)))


def _parse_expiry(text: str, timezone: str) -> datetime | None:
    """A `datetime-local` value ("2027-01-31T23:59"), read in the account's time zone."""
    return datetime.fromisoformat(text).replace(tzinfo=zone(timezone))


def create_code(actor: Actor, values: dict[str, object], locale: str) -> PromoCode:
    """Check and save a new code. `values`: code, kind, percent, amount, currency, expires_at, max_redemptions,
    first_time_only (bool), link_ids (list of str). Bad input raises ValidationFailed and saves nothing."""
    account = db.session.get(Account, actor.account_id)
    errors: dict[str, str] = {}
    code = normalize_code(str(values.get("code") or ""))
    if not code:
        errors["code"] = _("Enter a code, like SUMMER10.")
    elif not CODE_RE.match(code):
        errors["code"] = _("Use up to 32 letters A–Z, digits, hyphens and underscores.")
    elif db.session.scalar(select(PromoCode.id).where(PromoCode.account_id == account.id, PromoCode.code == code)):
        errors["code"] = _("You already have a code %(code)s. Choose another one.", code=code)
    kind = str(values.get("kind") or "")
    value, currency = None, None
    if kind == DiscountType.PERCENT:
        value = parse_percent_bp(str(values.get("percent") or ""), locale)
        if value is None:
            errors["percent"] = _("Enter a percentage from 0.01 to 100, like 10 or 12.5.")
    elif kind == DiscountType.AMOUNT:
        currency = str(values.get("currency") or "").upper()
        if not is_known_currency(currency):
            errors["currency"] = _("Choose a currency.")
        else:
            try:
                value = parse_money(str(values.get("amount") or ""), currency, locale).amount_minor
            except MoneyError:
                value = None
            if value is None or not 0 < value <= MAX_AMOUNT_MINOR:
                value = None
                errors["amount"] = _("Enter an amount above zero, like 5.00.")
    else:
        errors["kind"] = _("Choose a percentage or an amount off.")
    expires_at = None
    expiry_text = str(values.get("expires_at") or "").strip()
    if expiry_text:
        try:
            expires_at = _parse_expiry(expiry_text, account.timezone)
        except ValueError:
            errors["expires_at"] = _("Enter a date and time, or leave it empty for no expiry.")
        else:
            if expires_at <= now():
                errors["expires_at"] = _("Choose a moment in the future.")
    max_redemptions = None
    max_text = str(values.get("max_redemptions") or "").strip()
    if max_text:
        max_redemptions = parse_int(max_text)
        if max_redemptions is None or not 1 <= max_redemptions <= MAX_REDEMPTIONS:
            errors["max_redemptions"] = _("Enter a whole number from 1 to 1,000,000, or leave it empty for no limit.")
    link_ids = None
    chosen = [parse_int(str(v)) for v in (values.get("link_ids") or [])]
    if chosen:
        own = {link.id for link in account_links(account.id)}
        if any(link_id not in own for link_id in chosen):
            errors["link_ids"] = _("Choose links of this account.")
        else:
            link_ids = sorted(set(chosen))
    if errors:
        raise ValidationFailed(_("Check the highlighted fields."), errors=errors)
    with write_transaction(db.session) as session:
        promo = PromoCode(account_id=account.id, code=code, kind=kind, value=value, currency=currency,
                          expires_at=expires_at, max_redemptions=max_redemptions, redeemed=0,
                          first_time_only=bool(values.get("first_time_only")), link_ids=link_ids, active=True,
                          created_at=now())
        session.add(promo)
        session.flush()
        record_audit(actor, "promo_code.created", object_type="promo_code", object_id=promo.id,
                     data={"code": code})
        _refresh_offer(account.id)
        return promo


def deactivate_code(actor: Actor, promo_id: int) -> PromoCode:
    with write_transaction(db.session) as session:
        promo = session.get(PromoCode, promo_id)
        if promo is None or promo.account_id != actor.account_id:
            raise NotFound(_("This promo code doesn't exist."))
        if promo.active:
            promo.active = False
            record_audit(actor, "promo_code.deactivated", object_type="promo_code", object_id=promo.id,
                         data={"code": promo.code})
            session.flush()
            _refresh_offer(promo.account_id)
        return promo


def _refresh_offer(account_id: int) -> None:
    """Which links show "Add promo code": every link when an active code is for all of them, else the links the
    active codes name. Changing it changes the account row, which the cached checkout page is keyed by."""
    scopes = db.session.scalars(select(PromoCode.link_ids).where(PromoCode.account_id == account_id,
                                                                 PromoCode.active.is_(True))).all()
    if any(scope is None for scope in scopes):
        offer = "*"
    else:
        ids = sorted({int(i) for scope in scopes for i in scope})
        offer = "," + ",".join(str(i) for i in ids) + "," if ids else ""
    db.session.get(Account, account_id).promo_links = offer


def offered(account: Account, link_id: int | None) -> bool:
    """Whether the checkout of `link_id` shows the promo code field (no query: the account row knows)."""
    offer = account.promo_links or ""
    return offer == "*" or (bool(offer) and link_id is not None and f",{link_id}," in offer)


# -- at checkout ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromoTerms:
    id: int
    code: str
    kind: str
    value: int


def find_code(account_id: int, link_id: int | None, currency: str, text: str, *, email: str | None = None,
              mode: str | None = None) -> PromoTerms | str:
    """The terms of a code the buyer typed for this link, or the message for the field saying why not. Nothing
    is written; `reserve` checks again when the buyer pays."""
    code = normalize_code(text)
    promo = db.session.scalar(select(PromoCode).where(PromoCode.account_id == account_id,
                                                      PromoCode.code == code)) if CODE_RE.match(code) else None
    if promo is None or not promo.active:
        return _("This promo code isn't valid. Check it for typos.")
    if promo.expires_at is not None and promo.expires_at <= now():
        return _("This promo code has expired.")
    if promo.max_redemptions is not None and promo.redeemed >= promo.max_redemptions:
        return _("This promo code has been used up.")
    if promo.link_ids is not None and link_id not in promo.link_ids:
        return _("This promo code can't be used for this purchase.")
    if promo.kind == DiscountType.AMOUNT and promo.currency != currency:
        return _("This promo code can't be used for a payment in %(currency)s.", currency=currency)
    if promo.first_time_only and email and mode and has_paid_before(account_id, mode, email):
        return _("This promo code is for first-time buyers only.")
    return PromoTerms(id=promo.id, code=promo.code, kind=promo.kind, value=promo.value)


def has_paid_before(account_id: int, mode: str, email: str) -> bool:
    return db.session.scalar(
        select(Payment.id).where(Payment.account_id == account_id, Payment.mode == mode,
                                 search_key(Payment.buyer_email) == search_key(email.strip()),
                                 or_(Payment.status == PaymentStatus.SUCCEEDED.value,
                                     Payment.succeeded_at.is_not(None))).limit(1)
    ) is not None


def reserve(promo_id: int, *, account_id: int, mode: str, email: str) -> str | None:
    """Take one redemption of the code, in the caller's write transaction (before the charge). Returns None
    when taken, or the field's message when the code can't be used (nothing taken)."""
    promo = db.session.get(PromoCode, promo_id)
    if promo is None or promo.account_id != account_id:
        return _("This promo code isn't valid. Check it for typos.")
    if promo.first_time_only and has_paid_before(account_id, mode, email):
        return _("This promo code is for first-time buyers only.")
    taken = db.session.execute(
        update(PromoCode)
        .where(PromoCode.id == promo_id, PromoCode.active.is_(True),
               or_(PromoCode.max_redemptions.is_(None), PromoCode.redeemed < PromoCode.max_redemptions),
               or_(PromoCode.expires_at.is_(None), PromoCode.expires_at > now()))
        .values(redeemed=PromoCode.redeemed + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken == 1:
        return None
    db.session.refresh(promo)
    if not promo.active:
        return _("This promo code isn't valid. Check it for typos.")
    if promo.expires_at is not None and promo.expires_at <= now():
        return _("This promo code has expired.")
    return _("This promo code has been used up.")


def release(promo_id: int | None) -> None:
    """Give a reserved redemption back (the charge was declined or failed), in the caller's transaction."""
    if promo_id is None:
        return
    db.session.execute(update(PromoCode).where(PromoCode.id == promo_id, PromoCode.redeemed > 0)
                       .values(redeemed=PromoCode.redeemed - 1).execution_options(synchronize_session=False))


