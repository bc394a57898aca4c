"""The buyer's checkout form: read it, check it field by field (C2, C3), never keep a card number."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask_babel import gettext as _

from kassa.models import CONTACT_FIELDS, FieldMode
from kassa.money import MoneyError, parse_money
from kassa.order_summary import BuyerChoices, choice_errors
from kassa.processors import testcards
from kassa.processors.base import BankDetails, CardDetails, PaymentDetailsInvalid
from kassa.services.accounts.accounts import country_choices, country_code
from kassa.services.accounts.emails import normalize_email
from kassa.services.links.custom_fields import check_answer, snapshot_fields
from kassa.services.links.snapshots import offered_methods, snapshot_items, snapshot_tax
from kassa.tax import VAT_FORMATS, normalize_vat_id, vat_id_valid

OTHER_COUNTRY = "XX"  # Q6: the checkout's "Other country" (a user-assigned ISO code: no rate names it)

ADDRESS_PARTS = ("line1", "line2", "city", "postal_code", "state", "country")
REQUIRED_ADDRESS_PARTS = ("line1", "city", "postal_code", "country")
LIMITS = {"company": 200, "first_name": 100, "last_name": 100, "phone": 40, "line1": 200, "line2": 200,
          "city": 100, "postal_code": 20, "state": 100, "country": 2, "card_name": 100, "account_holder_name": 100}

# The processor's field names → the checkout form's field names.
PROCESSOR_FIELDS = {
    "number": "card_number", "expiry": "card_expiry", "cvc": "card_cvc", "name": "card_name",
    "postal_code": "billing_postal_code", "routing_number": "routing_number",
    "account_number": "account_number", "account_holder_name": "account_holder_name", "iban": "iban",
}
# The checkbox by which the buyer accepts each bank debit's mandate.
MANDATE_FIELDS = {"ach": "ach_mandate", "sepa": "sepa_mandate"}


@dataclass
class BuyerInput:
    email: str = ""
    contact: dict[str, str] = field(default_factory=dict)
    method: str = "card"
    card: CardDetails | None = None
    bank: BankDetails | None = None
    billing: dict[str, str] | None = None
    shipping: dict[str, str] | None = None
    mandate_accepted: bool = False
    # K6/K12: the PaymentMethod Stripe's Payment Element made in the buyer's browser (no card data at all).
    payment_method_token: str | None = None
    # Q3/Q4: the quantities and prices the buyer chose (checked by read_choices)
    choices: BuyerChoices = field(default_factory=BuyerChoices)
    # Q8: the answers to the link's custom fields: [{"name": "cf_<n>", "label", "value", "receipt"}]
    custom_fields: list[dict[str, Any]] = field(default_factory=list)
    # Q7: the terms of service address the buyer agreed to (None: the link asks for no agreement)
    terms_url: str | None = None

    def stored(self) -> dict[str, Any]:
        """What may be kept about this buyer: everything except card and bank numbers and the CVC."""
        return {
            "email": self.email, "contact": dict(self.contact), "method": self.method,
            "billing": self.billing, "shipping": self.shipping,
            "account_holder_name": self.bank.account_holder_name if self.bank else None,
            "bank_last4": (testcards.normalize_iban(self.bank.iban) or self.bank.account_number)[-4:]
            if self.bank else None,
            "routing_number": self.bank.routing_number if self.bank else None,
            "iban_country": testcards.normalize_iban(self.bank.iban)[:2] if self.bank and self.bank.iban else None,
            # B2: a declined card shows its brand and last 4 in the merchant's payments list, never more.
            "card_brand": testcards.card_brand(self.card.number) if self.card else None,
            "card_last4": testcards.normalize_card_number(self.card.number)[-4:] if self.card else None,
            "choices": self.choices.stored(),
            "custom_fields": list(self.custom_fields),
            "terms_url": self.terms_url,
        }


def _text(form: Mapping[str, str], name: str) -> str:
    return (form.get(name) or "").strip()[: LIMITS.get(name, 254) + 1]


def _address(form: Mapping[str, str], prefix: str, errors: dict[str, str]) -> dict[str, str]:
    address = {part: _text(form, f"{prefix}_{part}") for part in ADDRESS_PARTS}
    # Q12: a code from a <select>, or a name typed or picked from the page's shared country list.
    country = address["country"]
    address["country"] = (country_code(country) or country.upper()) if country else ""
    messages = {
        "line1": _("Enter the street and number."),
        "city": _("Enter the city."),
        "postal_code": _("Enter the postal code."),
        "country": _("Choose the country."),
    }
    for part in REQUIRED_ADDRESS_PARTS:
        if not address[part]:
            errors[f"{prefix}_{part}"] = messages[part]
    if address["country"] and address["country"] not in dict(country_choices("en")):
        errors[f"{prefix}_country"] = messages["country"]  # H1: only real countries are stored
    for part, value in address.items():
        if len(value) > LIMITS[part] and part != "country":  # a country is a known code or refused above
            errors[f"{prefix}_{part}"] = _("Use at most %(n)d characters.", n=LIMITS[part])
    return address


# A Stripe PaymentMethod id as Stripe.js hands it over ("pm_" and letters, digits, underscores).
_PAYMENT_METHOD_ID = re.compile(r"pm_[A-Za-z0-9_]{1,250}")


def read_buyer_form(snapshot: dict[str, Any], form: Mapping[str, str], today: date, *,
                    payment_element: bool = False) -> tuple[BuyerInput, dict[str, str]]:
    """Parse and check everything the buyer entered; errors are keyed by form field name.

    With ``payment_element`` (a live checkout on Stripe, K6) the payment details are Stripe's: the form
    carries only the PaymentMethod id the Payment Element made (``payment_method``), no card or bank fields."""
    errors: dict[str, str] = {}
    buyer = BuyerInput()
    try:
        buyer.email = normalize_email(form.get("email", ""))
    except Exception as exc:  # ValidationFailed carries the message we show
        errors["email"] = getattr(exc, "message", _("Enter a valid email address, like name@example.com."))

    labels = {"company": _("company"), "first_name": _("first name"), "last_name": _("last name"),
              "phone": _("phone number")}
    for name in CONTACT_FIELDS:
        mode = FieldMode(snapshot["fields"].get(name, FieldMode.OFF.value))
        if mode is FieldMode.OFF:
            continue
        value = _text(form, name)
        if mode is FieldMode.REQUIRED and not value:
            errors[name] = _("Enter your %(field)s.", field=labels[name])
        elif len(value) > LIMITS[name]:
            errors[name] = _("Use at most %(n)d characters.", n=LIMITS[name])
        buyer.contact[name] = value
    buyer.custom_fields = read_custom_fields(snapshot, form, errors)

    if snapshot.get("terms_url"):  # Q7: the box must be ticked; what it linked to is kept with the payment
        if form.get("terms") == "1":
            buyer.terms_url = snapshot["terms_url"]
        else:
            errors["terms"] = _("To pay, agree to the terms of service.")

    if payment_element:
        _read_payment_method(snapshot, form, buyer, errors)
        return buyer, errors

    allowed = offered_methods(snapshot)
    buyer.method = form.get("method") or allowed[0]
    if buyer.method not in allowed:
        # Q10: a method the link doesn't offer (ACH posted to a EUR link, SEPA to a USD one) is refused.
        errors["method"] = _("Choose how to pay.")
        buyer.method = allowed[0]

    if buyer.method == "card":
        read_card(form, today, buyer, errors)
        if snapshot["collect_billing_address"]:
            buyer.billing = _address(form, "billing", errors)
    elif buyer.method == "sepa":
        _read_sepa(form, buyer, errors)
    else:
        _read_bank(form, buyer, errors)

    _read_shipping(snapshot, form, buyer, errors)
    return buyer, errors


def read_custom_fields(snapshot: dict[str, Any], form: Mapping[str, str],
                       errors: dict[str, str]) -> list[dict[str, Any]]:
    """Q8: the answers to the link's custom fields (`cf_<n>`), checked by their type; unanswered optional
    fields are left out. Problems are keyed by the field's name, like every other field's."""
    answers = []
    for index, spec in enumerate(snapshot_fields(snapshot)):
        name = f"cf_{index}"
        value, problem = check_answer(spec, form.get(name) or "")
        if problem:
            errors[name] = problem
        elif value:
            answers.append({"name": name, "label": spec["label"], "value": value, "receipt": bool(spec.get("receipt"))})
    return answers


def _read_shipping(snapshot: dict[str, Any], form: Mapping[str, str], buyer: BuyerInput,
                   errors: dict[str, str]) -> None:
    if snapshot["collect_shipping_address"]:
        if form.get("shipping_same") == "1" and buyer.billing is not None:
            buyer.shipping = dict(buyer.billing)
        else:
            buyer.shipping = _address(form, "shipping", errors)


def _read_payment_method(snapshot: dict[str, Any], form: Mapping[str, str], buyer: BuyerInput,
                         errors: dict[str, str]) -> None:
    """K6: the Payment Element's PaymentMethod id instead of card or bank fields. The method is recorded as
    Stripe reports it on the charge; the addresses the link asks for are Kassa's own fields as before."""
    token = (form.get("payment_method") or "").strip()
    if not _PAYMENT_METHOD_ID.fullmatch(token):
        errors["payment_method"] = _("Enter your payment details.")
    else:
        buyer.payment_method_token = token
    buyer.method = "card"
    if snapshot["collect_billing_address"]:
        buyer.billing = _address(form, "billing", errors)
    _read_shipping(snapshot, form, buyer, errors)


def read_card(form: Mapping[str, str], today: date, buyer: BuyerInput, errors: dict[str, str]) -> None:
    number = testcards.normalize_card_number(form.get("card_number", ""))[:23]
    try:
        month, year = testcards.parse_expiry(form.get("card_expiry", ""))
    except PaymentDetailsInvalid as exc:
        errors["card_expiry"] = _(exc.message)
        month, year = 0, 0
    card = CardDetails(
        number=number, exp_month=month, exp_year=year, cvc=(form.get("card_cvc") or "").strip()[:4],
        name=_text(form, "card_name"), postal_code=_text(form, "billing_postal_code") or None,
    )
    try:
        # Format only (Luhn, expiry, CVC length, name): whether it is a test card is the processor's call.
        testcards.validate_card(card, today, test_mode=False)
    except PaymentDetailsInvalid as exc:
        errors.setdefault(PROCESSOR_FIELDS.get(exc.field, "card_number"), _(exc.message))
    buyer.card = card


def _read_bank(form: Mapping[str, str], buyer: BuyerInput, errors: dict[str, str]) -> None:
    bank = BankDetails(
        # Spaces and dashes dropped; any other character is kept so the number is refused as invalid
        # (H9: "²" passed `isdigit()` here and crashed the checksum's `int()`; testcards checks ASCII digits).
        routing_number=testcards.normalize_card_number(form.get("routing_number", ""))[:40],
        account_number=testcards.normalize_card_number(form.get("account_number", ""))[:40],
        account_holder_name=_text(form, "account_holder_name"),
    )
    try:
        testcards.validate_bank(bank, test_mode=False)
    except PaymentDetailsInvalid as exc:
        errors[PROCESSOR_FIELDS.get(exc.field, "account_number")] = _(exc.message)
    buyer.bank = bank
    buyer.mandate_accepted = form.get("ach_mandate") == "1"
    if not buyer.mandate_accepted:
        errors["ach_mandate"] = _("To pay by bank debit, accept the debit authorization.")


def _read_sepa(form: Mapping[str, str], buyer: BuyerInput, errors: dict[str, str]) -> None:
    """Q10: the IBAN (spaces and lower case accepted; country, length and mod-97 checked) and the SEPA mandate."""
    bank = BankDetails(iban=testcards.normalize_iban(form.get("iban", ""))[:40],
                       account_holder_name=_text(form, "account_holder_name"))
    try:
        testcards.validate_iban(bank, test_mode=False)
    except PaymentDetailsInvalid as exc:
        errors[PROCESSOR_FIELDS.get(exc.field, "iban")] = _(exc.message)
    buyer.bank = bank
    buyer.mandate_accepted = form.get("sepa_mandate") == "1"
    if not buyer.mandate_accepted:
        errors["sepa_mandate"] = _("To pay by SEPA Direct Debit, accept the mandate.")


# -- Q3/Q4: the buyer's quantities and prices -------------------------------------------------------------


def read_choices(snapshot: dict[str, Any], form: Mapping[str, str], locale: str, *,
                 max_amount_minor: int) -> tuple[BuyerChoices, dict[str, str]]:
    """The quantities (`qty_<n>`) and typed prices (`price_<n>`) the buyer sent, for the lines that allow
    them, and what is wrong with them (keyed by field name). Only valid choices are kept: the summary built
    from them is what the page shows and what is charged. Anything the page would never send (a quantity
    beyond the maximum, a price below the minimum, negative, huge, not a number) is refused here."""
    quantities: dict[int, int] = {}
    amounts: dict[int, int] = {}
    errors: dict[str, str] = {}
    for index, item in enumerate(snapshot["items"]):
        if item.get("quantity_adjustable") and f"qty_{index}" in form:
            text = (form.get(f"qty_{index}") or "").strip()
            if not re.fullmatch(r"[0-9]{1,6}", text):
                errors[f"qty_{index}"] = _("Enter a whole number from %(min)d to %(max)d.",
                                           min=item["quantity_min"], max=item["quantity_max"])
            else:
                quantities[index] = int(text)
        if item.get("custom_amount") and f"price_{index}" in form:
            text = (form.get(f"price_{index}") or "").strip()[:40]
            if not text:
                errors[f"price_{index}"] = _("Enter the amount you want to pay.")
                continue
            try:
                minor = parse_money(text, item["currency"], locale).amount_minor
            except MoneyError:
                errors[f"price_{index}"] = _("Enter an amount like 12.50")
                continue
            amounts[index] = minor
    choices = BuyerChoices(quantities=quantities, amounts=amounts)
    for index, (kind, message) in choice_errors(snapshot_items(snapshot), choices).items():
        name = f"qty_{index}" if kind == "quantity" else f"price_{index}"
        errors[name] = message
        (quantities if kind == "quantity" else amounts).pop(index, None)
    for index, minor in list(amounts.items()):
        if minor > max_amount_minor:  # no maximum set: still never more than one payment can be
            errors[f"price_{index}"] = _("The amount is too large")
            amounts.pop(index)
    country, vat_id = read_tax_choices(snapshot, form, errors)
    return BuyerChoices(quantities=quantities, amounts=amounts, country=country, vat_id=vat_id), errors


def read_tax_choices(snapshot: dict[str, Any], form: Mapping[str, str], errors: dict[str, str]) -> tuple[str, str]:
    """Q6: the buyer's country (the billing address's when the link asks for one, else the small "Country"
    select of the countries the account's rates name and "Other country"; the merchant's country until the
    buyer says) and their optional VAT number, format-checked per EU country (refused at the field)."""
    tax = snapshot_tax(snapshot)
    if tax is None:
        return "", ""
    if snapshot["collect_billing_address"]:
        text = (form.get("billing_country") or "").strip()[:100]
        country = (country_code(text) or "") if text else tax.merchant_country
    else:
        country = (form.get("tax_country") or "").strip().upper()[:2] or tax.merchant_country
        if country not in (*tax.named_countries(), OTHER_COUNTRY, tax.merchant_country):
            errors["tax_country"] = _("Choose your country.")
            country = tax.merchant_country
    vat_id = normalize_vat_id(form.get("vat_id"))
    if vat_id and not vat_id_valid(vat_id):
        if vat_id[:2] in VAT_FORMATS:
            errors["vat_id"] = _("This isn't a valid %(prefix)s VAT number. Check it for typos.", prefix=vat_id[:2])
        else:
            errors["vat_id"] = _("Enter an EU VAT number that starts with its country code, like NL123456789B01.")
        vat_id = ""
    return country, vat_id


