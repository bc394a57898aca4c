"""Template globals and filters that several blueprints share (order wording, brand colours, card brands)."""

from __future__ import annotations

from functools import lru_cache

from flask import Flask
from markupsafe import Markup, escape

from kassa import models
from kassa.models import DisplayStatus
from kassa.order_summary import (
    discount_label,
    every_label,
    frequency_label,
    group_sentence,
    line_recurrence,
    term_label,
)
from kassa.services.accounts.accounts import country_choices
from kassa.services.platform.notifications import unread_count as count
from kassa.timeline_kinds import timeline_label

CARD_BRANDS = {
    "visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "discover": "Discover",
    "diners": "Diners Club", "jcb": "JCB", "unionpay": "UnionPay",
}


def card_brand_name(brand: str | None) -> str:
    return CARD_BRANDS.get(brand or "", (brand or "").title())


@lru_cache(maxsize=16)
def _country_options(language: str) -> str:
    # Short markup (no closing tags, unquoted codes): two of these lists are most of the checkout's bytes.
    return "".join(f"<option value={code}>{escape(name)}" for code, name in country_choices(language))


def country_options(language: str, selected: str | None) -> Markup:
    """<option>s for a country <select>, built once per language (the checkout renders them on every view)."""
    html = _country_options(language)
    if selected and selected.isalpha() and len(selected) == 2:
        html = html.replace(f"<option value={selected}>", f"<option value={selected} selected>", 1)
    return Markup(html)  # noqa: S704 - names escaped above, codes are two letters


def urlencode_multi(args) -> str:
    """A MultiDict (several values per key) as a query string, e.g. for a hidden field."""
    from urllib.parse import urlencode

    return urlencode(list(args.items(multi=True)))


def unread_notifications() -> int:
    """The number on the bell in the top bar (exports ready, …) for the signed-in user."""
    from flask_login import current_user


    return count(current_user.id) if current_user.is_authenticated else 0


def _enum(name: str):
    """A template global turning a stored status value into its enum (for .label and .tone)."""

    def lookup(value: str):
        return getattr(models, name)(value)

    return lookup


def register(app: Flask) -> None:
    app.jinja_env.globals.update(
        country_options=country_options,
        status_badge=status_badge,
        method_text=method_text,
        dispute_reason_label=dispute_reason_label,
        timeline_label=timeline_label,
        frequency_label=frequency_label, every_label=every_label, line_recurrence=line_recurrence,
        group_sentence=group_sentence, term_label=term_label, discount_label=discount_label,
        unread_notifications=unread_notifications,
        payout_status=_enum("PayoutStatus"), link_status=_enum("LinkStatus"), ledger_type=_enum("LedgerType"), export_status=_enum("ExportStatus"),
    )


def status_badge(payment) -> Markup:
    """The Status column (P1, D2): a coloured badge with the status label."""
    status = DisplayStatus(payment.display_status)
    return Markup('<span class="badge badge--{}">{}</span>').format(status.tone, status.label)


def method_text(payment) -> str:
    from flask_babel import gettext as _

    if payment.method == "ach":
        return _("Bank account •••• %(last4)s", last4=payment.bank_last4 or "")
    return f"{card_brand_name(payment.card_brand)} •••• {payment.card_last4 or ''}"


def dispute_reason_label(reason: str | None) -> str:
    from flask_babel import gettext as _

    return {
        "fraudulent": _("Fraudulent"), "product_not_received": _("Product not received"),
        "product_unacceptable": _("Product unacceptable"), "duplicate": _("Duplicate"),
        "subscription_canceled": _("Subscription canceled"), "credit_not_processed": _("Credit not processed"),
        "general": _("General"),
    }.get(reason or "", reason or "")
