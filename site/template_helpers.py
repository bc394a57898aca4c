"""Template globals and filters that several blueprints share (order wording, brand colours, card brands)."""

from __future__ import annotations

from flask import Flask

from kassa.colors import text_on
from kassa.order_summary import every_label, frequency_label, group_sentence, line_recurrence, term_label

CARD_BRANDS = {
    "visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "discover": "Discover",
    "diners": "Diners Club", "jcb": "JCB", "unionpay": "UnionPay",
}


def card_brand_name(brand: str | None) -> str:
    return CARD_BRANDS.get(brand or "", (brand or "").title())


def register(app: Flask) -> None:
    app.jinja_env.globals.update(
        frequency_label=frequency_label, every_label=every_label, line_recurrence=line_recurrence,
        group_sentence=group_sentence, term_label=term_label,
    )
    app.add_template_filter(text_on, "text_on")
    app.add_template_filter(card_brand_name, "card_brand_name")
