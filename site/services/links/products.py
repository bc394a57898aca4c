"""The product library: create, edit, archive, and delete only what no link uses."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import func, select

from kassa.actor import Actor
from kassa.clock import now
from kassa.database import write_transaction
from kassa.errors import Conflict, NotFound, ValidationFailed
from kassa.extensions import db
from kassa.forms import parse_int
from kassa.models import BillingFrequency, LinkItem, Product, TermType
from kassa.money import MoneyError, MoneyParseError, is_known_currency, parse_money
from kassa.services.platform.audit import record_audit

MAX_AMOUNT_MINOR = 10**11
TERM_MIN, TERM_MAX = 2, 120


@dataclass
class PriceTerms:
    """Validated price and billing terms, shared by products and link line items."""

    unit_amount_minor: int | None
    frequency: str
    term_type: str | None
    term_count: int | None


def validate_price_terms(
    *, price_text: str, currency: str, locale: str, frequency: str, term_type: str | None, term_count_text: str | None,
    prefix: str = "",
) -> tuple[PriceTerms, dict[str, str]]:
    """Parse and check a unit price and billing terms; errors are keyed by `prefix + field name`."""
    errors: dict[str, str] = {}
    amount = None
    if not is_known_currency(currency):
        errors[f"{prefix}currency"] = _("Choose a currency.")
    else:
        try:
            money = parse_money(price_text or "", currency, locale)
        except MoneyParseError as exc:
            errors[f"{prefix}unit_price"] = _(exc.template, **exc.params)
        except MoneyError:
            errors[f"{prefix}unit_price"] = _("Enter an amount like 12.50")
        else:
            if money.amount_minor == 0:
                # L3: the seed product refuses line items with a unit price of 0.
                errors[f"{prefix}unit_price"] = _("The unit price can't be 0. Enter a price above zero.")
            elif money.amount_minor > MAX_AMOUNT_MINOR:
                errors[f"{prefix}unit_price"] = _("The amount is too large")
            else:
                amount = money.amount_minor
    try:
        freq = BillingFrequency(frequency)
    except ValueError:
        errors[f"{prefix}frequency"] = _("Choose a billing frequency.")
        freq = BillingFrequency.ONE_TIME
    term = None
    count = None
    if freq.is_recurring:
        try:
            term = TermType(term_type or "")
        except ValueError:
            errors[f"{prefix}term_type"] = _("Choose the billing terms: a fixed number of payments or until cancelled.")
        if term is TermType.FIXED:
            text = (term_count_text or "").strip()
            count = parse_int(text, minimum=TERM_MIN, maximum=TERM_MAX)
            if count is None:
                errors[f"{prefix}term_count"] = _(
                    "Enter a number of payments from %(min)d to %(max)d.", min=TERM_MIN, max=TERM_MAX
                )
    return PriceTerms(amount, freq.value, term.value if term else None, count), errors


def _validate_product(form: dict[str, str], locale: str) -> tuple[dict, dict[str, str]]:
    name = (form.get("name") or "").strip()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = _("Enter a product name.")
    elif len(name) > 200:
        errors["name"] = _("Use at most 200 characters.")
    description = (form.get("description") or "").strip()
    if len(description) > 2000:
        errors["description"] = _("Use at most 2000 characters.")
    sku = (form.get("sku") or "").strip() or None
    if sku and len(sku) > 64:
        errors["sku"] = _("Use at most 64 characters.")
    currency = (form.get("currency") or "").strip().upper()
    terms, price_errors = validate_price_terms(
        price_text=form.get("unit_price", ""), currency=currency, locale=locale, frequency=form.get("frequency", ""),
        term_type=form.get("term_type"), term_count_text=form.get("term_count"),
    )
    errors.update(price_errors)
    values = {
        "name": name, "description": description, "sku": sku, "currency": currency,
        "unit_amount_minor": terms.unit_amount_minor, "frequency": terms.frequency,
        "term_type": terms.term_type, "term_count": terms.term_count,
    }
    return values, errors


def create_product(actor: Actor, form: dict[str, str], locale: str) -> Product:
    values, errors = _validate_product(form, locale)
    if errors:
        raise ValidationFailed(_("Check the highlighted fields."), errors=errors)
    with write_transaction(db.session) as session:
        product = Product(account_id=actor.account_id, **values)
        session.add(product)
        session.flush()

        record_audit(actor, "product.created", object_type="product", object_id=product.id,
                     amount_after_minor=product.unit_amount_minor, currency=product.currency)
        return product


def update_product(actor: Actor, product_id: int, form: dict[str, str], locale: str) -> Product:
    values, errors = _validate_product(form, locale)
    if errors:
        raise ValidationFailed(_("Check the highlighted fields."), errors=errors)
    with write_transaction(db.session) as session:
        product = _owned(session, actor, product_id)
        before = product.unit_amount_minor
        for key, value in values.items():
            setattr(product, key, value)

        record_audit(actor, "product.updated", object_type="product", object_id=product.id,
                     amount_before_minor=before, amount_after_minor=product.unit_amount_minor,
                     currency=product.currency)
        return product


def _owned(session, actor: Actor, product_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None or product.account_id != actor.account_id:
        raise NotFound(_("Product not found."))
    return product


def set_archived(actor: Actor, product_id: int, archived: bool) -> Product:
    with write_transaction(db.session) as session:
        product = _owned(session, actor, product_id)
        product.archived_at = now() if archived else None

        record_audit(actor, "product.archived" if archived else "product.restored", object_type="product",
                     object_id=product.id)
        return product


def product_in_use(product_id: int) -> bool:
    return db.session.scalar(select(func.count()).select_from(LinkItem).where(LinkItem.product_id == product_id)) > 0


def delete_product(actor: Actor, product_id: int) -> None:
    """Hard delete, refused when a link uses the product: archive it instead so links keep working."""
    with write_transaction(db.session) as session:
        product = _owned(session, actor, product_id)
        if product_in_use(product.id):
            raise Conflict(_("This product is used on a payment link, so it can't be deleted. Archive it instead."))
        session.delete(product)

        record_audit(actor, "product.deleted", object_type="product", object_id=product_id, data={"name": product.name})
