"""The buyer's forms (M6): the checkout (C1–C7) and a subscription's card update (S3).

They read what was posted and nothing else. The checks — email, the contact fields the link asks for, Luhn,
expiry, CVC, bank numbers, addresses — stay in `services/checkout_form.py`, which also turns the processor's
own refusals into field messages, so a message reads the same whichever side found the problem. `posted()`
holds only the fields the buyer sent: the checkout page fills in its own defaults (the payment method, the
countries, "shipping same as billing") for the ones that are missing.
"""

from __future__ import annotations

from wtforms import StringField

from kassa.forms import Form
from kassa.services.links.custom_fields import MAX_FIELDS
from kassa.services.links.link_drafts import MAX_ITEMS


class CardForm(Form):
    """A card as typed: the subscription's card-update page, and the card part of the checkout."""

    card_number = StringField()
    card_expiry = StringField()
    card_cvc = StringField()
    card_name = StringField()
    billing_postal_code = StringField()
    # K6/K8: the PaymentMethod id Stripe's Payment Element made in the buyer's browser (card data never posted).
    payment_method = StringField()


class CheckoutForm(CardForm):
    """Everything the checkout page posts, named as its inputs are (templates/checkout/page.html)."""

    lang = StringField()
    email = StringField()
    company = StringField()
    first_name = StringField()
    last_name = StringField()
    phone = StringField()
    method = StringField()
    billing_line1 = StringField()
    billing_line2 = StringField()
    billing_city = StringField()
    billing_state = StringField()
    billing_country = StringField()
    shipping_same = StringField()
    shipping_line1 = StringField()
    shipping_line2 = StringField()
    shipping_city = StringField()
    shipping_postal_code = StringField()
    shipping_state = StringField()
    shipping_country = StringField()
    account_holder_name = StringField()
    routing_number = StringField()
    account_number = StringField()
    ach_mandate = StringField()
    iban = StringField()  # Q10: SEPA Direct Debit
    sepa_mandate = StringField()
    terms = StringField()  # Q7: "I agree to the terms of service" ("1" when ticked)
    # K6: the PaymentMethod id Stripe's Payment Element made in the browser (live checkouts on Stripe).
    payment_method = StringField()
    # Q6: the buyer's country when the link asks no billing address, and their optional VAT number
    tax_country = StringField()
    vat_id = StringField()
    # Q3/Q4: "update" re-prices the order without paying (the page's "Update total", and checkout.js).
    action = StringField()
    promo = StringField()  # Q2: the promo code typed


# Q3/Q4: per line position, the quantity (`qty_<n>`) and the typed price (`price_<n>`) the buyer chose.
for _n in range(MAX_ITEMS):
    setattr(CheckoutForm, f"qty_{_n}", StringField())
    setattr(CheckoutForm, f"price_{_n}", StringField())

# Q8: the answers to the link's custom fields, by position (`cf_<n>`).
for _n in range(MAX_FIELDS):
    setattr(CheckoutForm, f"cf_{_n}", StringField())


class TestAuthenticationForm(Form):
    """B2: the sandbox's test 3-D Secure page: "complete" or "fail" (anything else is neither)."""

    answer = StringField()
