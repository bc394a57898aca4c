"""The link editor's working copy: read from the submitted form (blueprints/link_editor.LinkEditorForm), edited
by the editor's buttons (add, remove, reorder items) and validated before it is saved. Nothing is stored until
Save."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _

from kassa.extensions import db
from kassa.forms import parse_int
from kassa.models import (
    CONTACT_FIELDS,
    Account,
    BillingFrequency,
    Confirmation,
    FieldMode,
    PaymentLink,
    Product,
    TermType,
)
from kassa.money import Money, MoneyError, is_known_currency, parse_money
from kassa.order_summary import OrderItem, OrderSummary, build_order_summary
from kassa.processors.base import bank_debit_for
from kassa.processors.registry import can_settle, settlement_choices
from kassa.services.crm.crm import validate_pipeline_choice
from kassa.services.links.products import MAX_AMOUNT_MINOR, validate_price_terms
from kassa.urls import web_origin

MAX_ITEMS = 50
MAX_QUANTITY = 999


@dataclass
class ItemDraft:
    name: str = ""
    description: str = ""
    unit_price: str = ""  # as typed, so a bad value is shown back exactly
    quantity: str = "1"
    frequency: str = BillingFrequency.ONE_TIME.value
    term_type: str = TermType.AUTO_RENEW.value
    term_count: str = ""
    product_id: int | None = None
    currency: str = ""  # a library product's currency; custom items use the link's
    # Filled in by validation:
    unit_amount_minor: int | None = None
    quantity_value: int = 1
    term_count_value: int | None = None

    @property
    def is_recurring(self) -> bool:
        return self.frequency in BillingFrequency._value2member_map_ and BillingFrequency(self.frequency).is_recurring


@dataclass
class LinkDraft:
    name: str = ""
    currency: str = "USD"
    items: list[ItemDraft] = field(default_factory=list)
    pipeline_id: int | None = None
    stage_id: int | None = None
    fields: dict[str, str] = field(default_factory=lambda: {name: FieldMode.OFF.value for name in CONTACT_FIELDS})
    allow_card: bool = True
    allow_ach: bool = False
    collect_billing_address: bool = True
    collect_shipping_address: bool = False
    confirmation: str = Confirmation.DEFAULT.value
    redirect_url: str = ""

    @property
    def has_recurring(self) -> bool:
        return any(item.is_recurring for item in self.items)


def new_draft(currency: str) -> LinkDraft:
    return LinkDraft(currency=currency, items=[ItemDraft()])


def draft_from_link(link: PaymentLink, locale: str) -> LinkDraft:
    return LinkDraft(
        name=link.name,
        currency=link.currency,
        items=[
            ItemDraft(
                name=item.name, description=item.description,
                unit_price=Money(item.unit_amount_minor, item.currency).to_input(locale),
                quantity=str(item.quantity), frequency=item.frequency, term_type=item.term_type or TermType.AUTO_RENEW.value,
                term_count=str(item.term_count or ""), product_id=item.product_id, currency=item.currency,
            )
            for item in link.items
        ],
        pipeline_id=link.pipeline_id,
        stage_id=link.stage_id,
        fields={name: link.field_mode(name).value for name in CONTACT_FIELDS},
        allow_card=link.allow_card,
        allow_ach=link.allow_ach,
        collect_billing_address=link.collect_billing_address,
        collect_shipping_address=link.collect_shipping_address,
        confirmation=link.confirmation,
        redirect_url=link.redirect_url or "",
    )


# -- editor actions ---------------------------------------------------------------------------------


def add_custom_item(draft: LinkDraft) -> LinkDraft:
    return replace(draft, items=[*draft.items, ItemDraft()])


def add_products(draft: LinkDraft, products: list[Product], locale: str) -> LinkDraft:
    """Tick products in the library, "Add": each becomes a row pre-filled with the product's values (L4)."""
    rows = [
        ItemDraft(
            name=p.name, description=p.description,
            unit_price=Money(p.unit_amount_minor, p.currency).to_input(locale),
            quantity="1", frequency=p.frequency, term_type=p.term_type or TermType.AUTO_RENEW.value,
            term_count=str(p.term_count or ""), product_id=p.id, currency=p.currency,
        )
        for p in products
    ]
    # An untouched empty first row is replaced, not kept above the products.
    kept = [item for item in draft.items if item.name or item.unit_price or item.description]
    return replace(draft, items=[*kept, *rows])


def remove_item(draft: LinkDraft, index: int) -> LinkDraft:
    return replace(draft, items=[item for i, item in enumerate(draft.items) if i != index])


def move_item(draft: LinkDraft, index: int, step: int) -> LinkDraft:
    items = list(draft.items)
    target = index + step
    if 0 <= index < len(items) and 0 <= target < len(items):
        items[index], items[target] = items[target], items[index]
    return replace(draft, items=items)


# -- preview ----------------------------------------------------------------------------------------


def preview_summary(draft: LinkDraft, fallback_currency: str, locale: str) -> OrderSummary:
    """The order summary of the rows that are already complete: what a buyer would see right now."""
    currency = draft.currency if is_known_currency(draft.currency) else fallback_currency
    rows = []
    for item in draft.items:
        try:
            amount = parse_money(item.unit_price, currency, locale).amount_minor
        except MoneyError:
            continue  # an unfinished price is simply not shown yet
        if amount <= 0 or not item.name or (item.currency and item.currency != currency):
            continue
        quantity = parse_int(item.quantity, minimum=1, maximum=MAX_QUANTITY) or 1
        frequency = item.frequency if item.frequency in BillingFrequency._value2member_map_ else "one_time"
        count = parse_int(item.term_count, minimum=2, maximum=120)
        fixed = item.term_type == TermType.FIXED.value and count is not None
        rows.append(OrderItem(item.name, item.description, amount, currency, quantity, frequency,
                                 TermType.FIXED.value if fixed else TermType.AUTO_RENEW.value,
                                 count if fixed else None))
    return build_order_summary(rows, currency)


def preview_methods(draft: LinkDraft) -> list[str]:
    """B11: the payment methods the checkout would offer for this draft, in its order (bank debit only for
    one-time payments, as validate_draft insists)."""
    return [method for method, on in (("card", draft.allow_card),
                                      ("ach", draft.allow_ach and not draft.has_recurring)) if on]


# -- validation -------------------------------------------------------------------------------------


def _check_url(url: str) -> str | None:
    """H11: only an http(s) address that parses cleanly; the checkout's CSP is built from its origin."""
    parts = urlsplit(url)
    if len(url) > 2000:
        return _("Use at most 2000 characters.")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return _("Enter a full address starting with https:// or http://")
    if web_origin(url) is None:
        return _("This address can't be used: remove spaces, quotes, commas, semicolons and other special "
                 "characters, and check the site's name, like https://shop.example/thanks.")
    return None


def _currency_problem(currency: str, account_id: int) -> str | None:
    """H13: a link only in a currency the processor can take and settle into the account's currency;
    before, a link in any ISO code saved fine and every buyer's payment then failed at the processor."""
    settlement = db.session.get(Account, account_id).default_currency
    if can_settle(currency, settlement, account_id):
        return None
    return _("Payments in %(currency)s can't be settled in your account's currency (%(settlement)s). "
             "Choose one of: %(choices)s.", currency=currency, settlement=settlement,
             choices=", ".join(settlement_choices(settlement, account_id)))


def _total_problem(draft: LinkDraft, locale: str) -> str | None:
    """H13: a cap on what one link can ask for (KASSA_LINK_MAX_TOTAL_MINOR), so a link never asks for more
    than one payment can be."""
    if not is_known_currency(draft.currency):
        return None
    total = sum((item.unit_amount_minor or 0) * item.quantity_value for item in draft.items[:MAX_ITEMS])
    cap = current_app.config["KASSA_LINK_MAX_TOTAL_MINOR"]
    if total <= cap:
        return None
    return _("The link's total (%(total)s) is more than one payment can be (%(max)s). Lower a price or quantity, "
             "or split the order into several links.",
             total=Money(total, draft.currency).format(locale), max=Money(cap, draft.currency).format(locale))


def validate_draft(draft: LinkDraft, account_id: int, locale: str) -> dict[str, str]:
    """All problems at once, keyed by form field name; fills the parsed values into the draft."""
    errors: dict[str, str] = {}
    if not draft.name:
        errors["name"] = _("Give the link a name. Only you see it.")
    elif len(draft.name) > 200:
        errors["name"] = _("Use at most 200 characters.")
    if not is_known_currency(draft.currency):
        errors["currency"] = _("Choose a currency.")
    else:
        problem = _currency_problem(draft.currency, account_id)
        if problem:
            errors["currency"] = problem
    if not draft.items:
        errors["items"] = _("Add at least one line item.")
    elif len(draft.items) > MAX_ITEMS:
        errors["items"] = _("A link can have at most %(n)d line items.", n=MAX_ITEMS)
    for i, item in enumerate(draft.items[:MAX_ITEMS]):
        prefix = f"items-{i}-"
        if not item.name:
            errors[prefix + "name"] = _("Enter a name for this item.")
        elif len(item.name) > 200:
            errors[prefix + "name"] = _("Use at most 200 characters.")
        if len(item.description) > 2000:
            errors[prefix + "description"] = _("Use at most 2000 characters.")
        if item.currency and item.currency != draft.currency:
            errors[prefix + "unit_price"] = _(
                "This product is priced in %(item)s but the link is in %(link)s. Use one currency per link.",
                item=item.currency, link=draft.currency,
            )
            continue
        terms, item_errors = validate_price_terms(
            price_text=item.unit_price, currency=draft.currency if is_known_currency(draft.currency) else "USD",
            locale=locale, frequency=item.frequency, term_type=item.term_type, term_count_text=item.term_count,
            prefix=prefix,
        )
        errors.update(item_errors)
        item.unit_amount_minor = terms.unit_amount_minor
        item.term_count_value = terms.term_count
        quantity = parse_int(item.quantity, minimum=1, maximum=MAX_QUANTITY)
        if quantity is None:
            errors[prefix + "quantity"] = _("Enter a quantity from 1 to %(max)d.", max=MAX_QUANTITY)
        else:
            item.quantity_value = quantity
            if terms.unit_amount_minor and terms.unit_amount_minor * item.quantity_value > MAX_AMOUNT_MINOR:
                errors[prefix + "quantity"] = _("The amount is too large")
    total_problem = _total_problem(draft, locale)
    if total_problem and "items" not in errors:
        errors["items"] = total_problem
    for name, mode in draft.fields.items():
        if mode not in FieldMode._value2member_map_:
            errors[f"field_{name}"] = _("Choose off, optional or required.")
    if not draft.allow_card and not draft.allow_ach:
        errors["payment_methods"] = _("Accept at least one payment method.")
    elif draft.allow_ach and draft.has_recurring:
        errors["payment_methods"] = _(
            "Bank debit (ACH) is only for one-time payments. Untick it, or remove the recurring items."
        )
    elif draft.allow_ach and bank_debit_for(draft.currency) is None and "currency" not in errors:
        # Q10: the bank debit follows the link's currency: ACH for USD, SEPA Direct Debit for EUR.
        errors["payment_methods"] = _(
            "Bank debit is available for links in USD (ACH) and EUR (SEPA Direct Debit). Untick it, or change "
            "the currency."
        )
    if draft.confirmation not in Confirmation._value2member_map_:
        errors["confirmation"] = _("Choose how to confirm the payment.")
    elif draft.confirmation == Confirmation.REDIRECT.value or draft.redirect_url:
        # A typed address is kept even while the default page is chosen, so it is checked either way.
        problem = _check_url(draft.redirect_url) if draft.redirect_url else _("Enter the address of your thank-you page.")
        if problem:
            errors["redirect_url"] = problem
    errors.update(validate_pipeline_choice(account_id, draft.pipeline_id, draft.stage_id))
    return errors
