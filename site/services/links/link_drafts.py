"""The link editor's working copy: read from the submitted form (blueprints/link_editor.LinkEditorForm), edited
by the editor's buttons (add, remove, reorder items) and validated before it is saved. Nothing is stored until
Save."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

from babel.numbers import NumberFormatError, format_decimal, parse_decimal
from flask import current_app
from flask_babel import gettext as _

from kassa.clock import zone as clock_zone
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
from kassa.order_summary import (
    DISCOUNT_TYPES,
    MAX_PERCENT_BP,
    BuyerChoices,
    DiscountType,
    OrderItem,
    OrderSummary,
    build_order_summary,
)
from kassa.processors.base import bank_debit_for
from kassa.processors.registry import can_settle, settlement_choices
from kassa.services.accounts.accounts import check_terms_url
from kassa.services.crm.crm import validate_pipeline_choice
from kassa.services.links.custom_fields import MAX_FIELDS, FieldDraft, draft_fields, validate_fields
from kassa.services.links.products import MAX_AMOUNT_MINOR, validate_price_terms
from kassa.tax import TaxContext
from kassa.urls import web_origin

MAX_ITEMS = 50
MAX_QUANTITY = 999
MAX_TRIAL_DAYS = 730  # Q9: two years, as Stripe's trial_period_days allows


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
    # Q1: "" | "percent" | "amount", and the value as typed ("10", "12.5" percent; "5.00" an amount)
    discount_type: str = ""
    discount_value: str = ""
    # Q3: the buyer may change the quantity within min/max ("1" when ticked)
    quantity_adjustable: str = ""
    quantity_min: str = "1"
    quantity_max: str = "10"
    # Q4: pay what you want: the unit price is the suggested amount; min and max as typed (max optional)
    custom_amount: str = ""
    amount_min: str = ""
    amount_max: str = ""
    # Filled in by validation:
    unit_amount_minor: int | None = None
    quantity_value: int = 1
    term_count_value: int | None = None
    discount_value_int: int = 0
    quantity_min_value: int = 1
    quantity_max_value: int = 1
    amount_min_minor: int | None = None
    amount_max_minor: int | None = None

    @property
    def is_adjustable(self) -> bool:
        return self.quantity_adjustable == "1"

    @property
    def is_custom_amount(self) -> bool:
        return self.custom_amount == "1"

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
    collect_tax: bool = False  # Q6
    confirmation: str = Confirmation.DEFAULT.value
    redirect_url: str = ""
    custom_fields: list[FieldDraft] = field(default_factory=list)  # Q8
    # Q5: "stop after N completed payments" and "stop accepting payments on" (as typed: a number, and a
    # datetime-local value "2026-12-31T18:00" in the account's time zone); "" is no limit.
    usage_limit: str = ""
    ends_at: str = ""
    # Q7: buyers tick "I agree to the terms of service" (this address, or the account's when empty)
    require_terms: bool = False
    terms_url: str = ""
    # Q11: buyers can cancel this link's subscriptions from their portal
    buyer_can_cancel: bool = False
    # Filled in by validation:
    usage_limit_value: int | None = None
    ends_at_value: datetime | None = None
    trial_days: str = ""  # Q9: as typed; validate_draft fills trial_days_value
    trial_days_value: int | None = None

    @property
    def has_recurring(self) -> bool:
        return any(item.is_recurring for item in self.items)

    @property
    def preview_trial_days(self) -> int:
        """Q9: the trial the preview shows: the typed days when they are valid and a recurring item is there."""
        days = parse_int(self.trial_days, minimum=1, maximum=MAX_TRIAL_DAYS)
        return days or 0


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
                **_pricing_inputs(item, locale),
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
        collect_tax=link.collect_tax,
        confirmation=link.confirmation,
        redirect_url=link.redirect_url or "",
        custom_fields=draft_fields(link.custom_fields),
        usage_limit=str(link.usage_limit or ""),
        ends_at=local_input(link.ends_at, link.account.timezone),
        require_terms=link.require_terms,
        terms_url=link.terms_url or "",
        buyer_can_cancel=link.buyer_can_cancel,
        trial_days=str(link.trial_days or ""),
    )


def local_input(moment: datetime | None, timezone: str) -> str:
    """Q5: an instant as a datetime-local input's value ("2026-12-31T18:00") in the account's zone (a machine
    format for the browser's picker, not text a person reads)."""
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(clock_zone(timezone)).replace(tzinfo=None).isoformat(timespec="minutes")


def parse_local_input(text: str, timezone: str) -> datetime | None:
    """Q5: a datetime-local value typed in the account's zone, as a UTC instant; None if it doesn't parse."""
    text = (text or "").strip().replace(" ", "T", 1)
    if len(text) != 16 or text[10] != "T":
        return None
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        return None
    return local.replace(tzinfo=clock_zone(timezone)).astimezone(UTC)


def _pricing_inputs(item, locale: str) -> dict[str, str]:
    """Q1/Q3/Q4: a saved line's pricing options as the editor's fields show them."""
    def amount(minor: int | None) -> str:
        return "" if minor is None else Money(minor, item.currency).to_input(locale)

    if item.discount_type == DiscountType.PERCENT:
        discount = format_decimal((Decimal(item.discount_value) / 100).normalize(), locale=locale)
    elif item.discount_type == DiscountType.AMOUNT:
        discount = amount(item.discount_value)
    else:
        discount = ""
    return {
        "discount_type": item.discount_type or "", "discount_value": discount,
        "quantity_adjustable": "1" if item.quantity_adjustable else "",
        "quantity_min": str(item.quantity_min or 1), "quantity_max": str(item.quantity_max or 1),
        "custom_amount": "1" if item.custom_amount else "",
        "amount_min": amount(item.amount_min_minor), "amount_max": amount(item.amount_max_minor),
    }


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


def add_field(draft: LinkDraft) -> tuple[LinkDraft, str | None]:
    """Q8: "Add custom field": a new empty row, or a message when the link already has the most it can have."""
    if len(draft.custom_fields) >= MAX_FIELDS:
        return draft, _("A link can have at most %(n)d custom fields. Remove one to add another.", n=MAX_FIELDS)
    return replace(draft, custom_fields=[*draft.custom_fields, FieldDraft()]), None


def remove_field(draft: LinkDraft, index: int) -> LinkDraft:
    return replace(draft, custom_fields=[f for i, f in enumerate(draft.custom_fields) if i != index])


# -- preview ----------------------------------------------------------------------------------------


def preview_summary(draft: LinkDraft, fallback_currency: str, locale: str, tax: TaxContext | None = None
                    ) -> OrderSummary:
    """The order summary of the rows that are already complete: what a buyer would see right now. Q6: with the
    account's tax context when the draft collects tax, for a buyer in the merchant's country."""
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
                                 count if fixed else None, **_preview_pricing(item, currency, locale)))
    if tax is None or not draft.collect_tax:
        return build_order_summary(rows, currency, trial_days=draft.preview_trial_days)
    return build_order_summary(rows, currency, BuyerChoices(country=tax.merchant_country), tax,
                               trial_days=draft.preview_trial_days)




def preview_methods(draft: LinkDraft) -> list[str]:
    """B11: the payment methods the checkout would offer for this draft, in its order (the bank debit of the
    link's currency, Q10, and only for one-time payments, as validate_draft insists)."""
    debit = bank_debit_for(draft.currency)
    return [method for method, on in (("card", draft.allow_card),
                                      (debit, bool(debit) and draft.allow_ach and not draft.has_recurring)) if on]


def _preview_pricing(item: ItemDraft, currency: str, locale: str) -> dict:
    """Q1/Q3/Q4 options of a row for the preview: what already parses (a half-typed value shows nothing)."""
    options: dict = {}
    discount = _parse_discount(item.discount_type, item.discount_value, currency, locale)
    if discount is not None:
        options.update(discount_type=item.discount_type, discount_value=discount)
    low = parse_int(item.quantity_min, minimum=1, maximum=MAX_QUANTITY)
    high = parse_int(item.quantity_max, minimum=1, maximum=MAX_QUANTITY)
    if item.is_adjustable and low is not None and high is not None and low <= high:
        options.update(quantity_adjustable=True, quantity_min=low, quantity_max=high)
    if item.is_custom_amount:
        options.update(custom_amount=True, amount_min_minor=_parse_amount(item.amount_min, currency, locale),
                       amount_max_minor=_parse_amount(item.amount_max, currency, locale))
    return options


def _parse_amount(text: str, currency: str, locale: str) -> int | None:
    if not text:
        return None
    try:
        minor = parse_money(text, currency, locale).amount_minor
    except MoneyError:
        return None
    return minor if 0 < minor <= MAX_AMOUNT_MINOR else None


def parse_percent_bp(text: str, locale: str) -> int | None:
    """A percentage as typed ("12.5", "12,5 %") in basis points: 0.01 to 100 %, at most two decimals; else None.
    Q1 line discounts and Q2 promo codes."""
    try:
        value = parse_decimal((text or "").strip().rstrip("%").strip(), locale=locale, strict=True)
    except (NumberFormatError, ValueError):
        return None
    bp = value * 100
    if bp != bp.to_integral_value() or not 1 <= bp <= MAX_PERCENT_BP:
        return None
    return int(bp)


def _parse_discount(kind: str, text: str, currency: str, locale: str) -> int | None:
    """Q1: a percentage as basis points (0.01 to 100 %, at most two decimals), or an amount in minor units."""
    if kind == DiscountType.PERCENT:
        return parse_percent_bp(text, locale)
    if kind == DiscountType.AMOUNT:
        return _parse_amount(text, currency, locale)
    return None



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
    # Q3/Q4: the most a buyer could choose (the highest quantity, the maximum price) counts.
    total = sum((item.amount_max_minor if item.is_custom_amount and item.amount_max_minor else item.unit_amount_minor
                 or 0) * (item.quantity_max_value if item.is_adjustable else item.quantity_value)
                for item in draft.items[:MAX_ITEMS])
    cap = current_app.config["KASSA_LINK_MAX_TOTAL_MINOR"]
    if total <= cap:
        return None
    return _("The link's total (%(total)s) is more than one payment can be (%(max)s). Lower a price or quantity, "
             "or split the order into several links.",
             total=Money(total, draft.currency).format(locale), max=Money(cap, draft.currency).format(locale))


def _charges_nothing(draft: LinkDraft, locale: str) -> bool:
    """Q1: every line's discount takes its whole price off, and no buyer changes a quantity or types a price:
    nothing could ever be charged. (A buyer's choices that come to nothing are refused at checkout.)"""
    summary = preview_summary(draft, draft.currency, locale)
    return bool(summary.lines) and len(summary.lines) == len(draft.items) and not any(
        line.custom_amount or line.quantity_adjustable or line.amount.amount_minor for line in summary.lines)


def _validate_pricing(item: ItemDraft, prefix: str, currency: str, locale: str, errors: dict[str, str]) -> None:
    """Q1, Q3, Q4: the line's discount, adjustable quantity and pay-what-you-want bounds."""
    if item.discount_type not in DISCOUNT_TYPES:
        errors[prefix + "discount_type"] = _("Choose no discount, a percentage or an amount.")
    elif item.discount_type:
        value = _parse_discount(item.discount_type, item.discount_value, currency, locale)
        if value is None:
            errors[prefix + "discount_value"] = (
                _("Enter a percentage from 0.01 to 100, like 10 or 12.5.")
                if item.discount_type == DiscountType.PERCENT else _("Enter an amount above zero, like 5.00"))
        elif (item.discount_type == DiscountType.AMOUNT and item.unit_amount_minor and not item.is_custom_amount
              and value > item.unit_amount_minor * item.quantity_value):
            errors[prefix + "discount_value"] = _("The discount can't be more than the line's price.")
        else:
            item.discount_value_int = value
    if item.is_adjustable:
        low = parse_int(item.quantity_min, minimum=1, maximum=MAX_QUANTITY)
        high = parse_int(item.quantity_max, minimum=1, maximum=MAX_QUANTITY)
        if low is None:
            errors[prefix + "quantity_min"] = _("Enter a quantity from 1 to %(max)d.", max=MAX_QUANTITY)
        elif high is None or high < low:
            errors[prefix + "quantity_max"] = _("Enter a maximum from the minimum (%(min)d) to %(max)d.",
                                                min=low, max=MAX_QUANTITY)
        else:
            item.quantity_min_value, item.quantity_max_value = low, high
            if not low <= item.quantity_value <= high and prefix + "quantity" not in errors:
                errors[prefix + "quantity"] = _("The default quantity must be from %(min)d to %(max)d.",
                                                min=low, max=high)
    else:
        item.quantity_min_value = item.quantity_max_value = item.quantity_value
    if item.is_custom_amount:
        low_minor = _parse_amount(item.amount_min, currency, locale)
        high_minor = _parse_amount(item.amount_max, currency, locale)
        if item.amount_min and low_minor is None:
            errors[prefix + "amount_min"] = _("Enter an amount above zero, like 5.00")
        if item.amount_max and high_minor is None:
            errors[prefix + "amount_max"] = _("Enter an amount above zero, like 5.00")
        elif low_minor is not None and high_minor is not None and high_minor < low_minor:
            errors[prefix + "amount_max"] = _("The maximum can't be below the minimum.")
        suggested = item.unit_amount_minor
        if suggested and prefix + "unit_price" not in errors and (
                (low_minor is not None and suggested < low_minor) or (high_minor is not None and suggested > high_minor)):
            errors[prefix + "unit_price"] = _("The suggested price must be between the minimum and the maximum.")
        item.amount_min_minor, item.amount_max_minor = low_minor, high_minor


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
        _validate_pricing(item, prefix, draft.currency if is_known_currency(draft.currency) else "USD", locale,
                          errors)
    total_problem = _total_problem(draft, locale)
    if total_problem and "items" not in errors:
        errors["items"] = total_problem
    if not any(key in ("items", "currency") or key.startswith("items-") for key in errors) \
            and _charges_nothing(draft, locale):
        errors["items"] = _("After its discounts this link comes to nothing to pay. Lower a discount: a payment "
                            "link has to charge something.")
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
    errors.update(validate_fields(draft.custom_fields))
    _validate_trial(draft, errors)
    errors.update(validate_pipeline_choice(account_id, draft.pipeline_id, draft.stage_id))
    _validate_limits(draft, account_id, errors)
    return errors


MAX_USAGE_LIMIT = 1_000_000


def _validate_limits(draft: LinkDraft, account_id: int, errors: dict[str, str]) -> None:
    """Q5 usage limit and end date, Q7 the terms address."""
    if draft.usage_limit.strip():
        draft.usage_limit_value = parse_int(draft.usage_limit, minimum=1, maximum=MAX_USAGE_LIMIT)
        if draft.usage_limit_value is None:
            errors["usage_limit"] = _("Enter a whole number of payments from 1 to 1,000,000, or leave it empty.")
    else:
        draft.usage_limit_value = None
    if draft.ends_at.strip():
        draft.ends_at_value = parse_local_input(draft.ends_at, db.session.get(Account, account_id).timezone)
        if draft.ends_at_value is None:
            errors["ends_at"] = _("Enter a date and time, like 2026-12-31 18:00, or leave it empty.")
    else:
        draft.ends_at_value = None
    draft.terms_url = draft.terms_url.strip()
    if draft.terms_url:
        problem = check_terms_url(draft.terms_url)
        if problem:
            errors["terms_url"] = problem
    elif draft.require_terms and not db.session.get(Account, account_id).terms_url:
        errors["terms_url"] = _("Enter the address of your terms of service, or add it in Settings.")


def _validate_trial(draft: LinkDraft, errors: dict[str, str]) -> None:
    """Q9: a free trial of 1 to 730 days, only on a link with a recurring item (empty: no trial)."""
    draft.trial_days_value = None
    if not (draft.trial_days or "").strip():
        return
    days = parse_int(draft.trial_days.strip(), minimum=1, maximum=MAX_TRIAL_DAYS)
    if days is None:
        errors["trial_days"] = _("Enter a number of days from 1 to %(max)d, or leave it empty for no trial.",
                                 max=MAX_TRIAL_DAYS)
    elif not draft.has_recurring:
        errors["trial_days"] = _("A free trial needs a recurring item. Make an item recurring, or leave the "
                                 "trial empty.")
    else:
        draft.trial_days_value = days
