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
    promo_label,
    promo_note,
    reverse_charge_note,
    subscription_sentence,
    tax_label,
    term_label,
    trial_sentence,
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


@lru_cache(maxsize=16)
def _country_names(language: str) -> tuple[str, dict[str, str]]:
    names = country_choices(language)
    # One attribute, the names joined by "|" (no country name has one): checkout.js makes each country field a
    # <select> of them. A <datalist> of the same names costs 7 more bytes a country (<option>), ~1.7 KB a page,
    # for suggestions only a browser without the script would show; it types the name (or picks its autofill),
    # and the server reads names in any language and ISO codes.
    html = f'<div id=countries hidden data-names="{escape("|".join(name for _code, name in names))}"></div>'
    return html, dict(names)


def country_datalist(language: str) -> Markup:
    """Q12: the page's one list of countries when it has two address forms (billing and shipping): both country
    fields are text fields that checkout.js turns into <select>s of it, so the names are sent once instead of in
    two <select>s."""
    return Markup(_country_names(language)[0])  # noqa: S704 - names escaped above


def country_name(language: str, value: str | None) -> str:
    """A country field's text in the shared-list form: the name of a code ("NL" → "Netherlands"), or what the
    buyer typed, as they typed it."""
    value = value or ""
    return _country_names(language)[1].get(value.upper(), value) if len(value) == 2 else value


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
        country_options=country_options, country_datalist=country_datalist, country_name=country_name,
        status_badge=status_badge,
        method_text=method_text, manual_method_label=manual_method_label,
        dispute_reason_label=dispute_reason_label,
        decline_reason_label=decline_reason_label, risk_signal=risk_signal, risk_badge=risk_badge,
        timeline_label=timeline_label,
        frequency_label=frequency_label, every_label=every_label, line_recurrence=line_recurrence,
        group_sentence=group_sentence, term_label=term_label, discount_label=discount_label,
        promo_label=promo_label, promo_note=promo_note,
        tax_label=tax_label, reverse_charge_note=reverse_charge_note,
        subscription_sentence=subscription_sentence, trial_sentence=trial_sentence,
        unread_notifications=unread_notifications,
        payout_status=_enum("PayoutStatus"), link_status=_enum("LinkStatus"), ledger_type=_enum("LedgerType"), export_status=_enum("ExportStatus"),
    )


def status_badge(payment) -> Markup:
    """The Status column (P1, D2): a coloured badge with the status label."""
    status = DisplayStatus(payment.display_status)
    return Markup('<span class="badge badge--{}">{}</span>').format(status.tone, status.label)


def manual_method_label(value: str | None) -> str:
    """V3: how a manual payment was made (bank transfer, cash, cheque, other)."""
    from kassa.models import ManualMethod

    try:
        return ManualMethod(value).label
    except ValueError:
        return value or ""


def method_text(payment) -> str:
    from flask_babel import gettext as _

    if payment.method == "manual":  # V3: recorded by the merchant, paid outside Kassa
        return _("Manual")
    if payment.method == "ach":
        return _("Bank account •••• %(last4)s", last4=payment.bank_last4 or "")
    if payment.method == "sepa":
        return _("SEPA Direct Debit •••• %(last4)s", last4=payment.bank_last4 or "")
    if not payment.card_last4:  # B2: a declined Payment Element card: Stripe kept its details
        return card_brand_name(payment.card_brand) or _("Card")
    return f"{card_brand_name(payment.card_brand)} •••• {payment.card_last4}"


def dispute_reason_label(reason: str | None) -> str:
    from flask_babel import gettext as _

    return {
        "fraudulent": _("Fraudulent"), "product_not_received": _("Product not received"),
        "product_unacceptable": _("Product unacceptable"), "duplicate": _("Duplicate"),
        "subscription_canceled": _("Subscription canceled"), "credit_not_processed": _("Credit not processed"),
        "general": _("General"),
    }.get(reason or "", reason or "")


def decline_reasons() -> dict[str, str]:
    """B2: the bank's decline codes in the merchant's words (Stripe's codes; the sandbox uses the same)."""
    from flask_babel import gettext as _

    return {
        "card_declined": _("The bank declined the card without giving a reason."),
        "generic_decline": _("The bank declined the card without giving a reason."),
        "do_not_honor": _("The bank declined the card without giving a reason."),
        "insufficient_funds": _("The card doesn't have enough funds."),
        "expired_card": _("The card has expired."),
        "incorrect_cvc": _("The security code (CVC) was wrong."),
        "incorrect_zip": _("The postal code didn't match the card."),
        "lost_card": _("The card was reported lost."),
        "stolen_card": _("The card was reported stolen."),
        "fraudulent": _("The bank suspected fraud."),
        "processing_error": _("The bank couldn't process the card."),
        "authentication_required": _("The bank asked the buyer to confirm the payment and it wasn't confirmed."),
        "payment_not_confirmed": _("The bank asked the buyer to confirm the payment and it wasn't confirmed."),
        "payment_intent_authentication_failure": _("The buyer didn't pass the bank's 3-D Secure check."),
        "card_not_supported": _("The card doesn't support this kind of payment."),
        "currency_not_supported": _("The card doesn't support this currency."),
    }


def incomplete_reasons() -> dict[str, str]:
    """B2: why a checkout attempt is incomplete (payment_records.WAITING_FOR_BUYER / ABANDONED), as Stripe's list
    says a PaymentIntent waits for the customer."""
    from flask_babel import gettext as _

    return {
        "requires_action": _("Waiting for the buyer to confirm the payment with their bank (3-D Secure)."),
        "abandoned": _("The buyer left without confirming the payment with their bank. Nothing was charged."),
    }


def decline_reason_label(code: str | None, message: str | None = None) -> str:
    """B2: why a payment failed (or is incomplete), in words: a known code's own wording, else the processor's
    message."""
    from flask_babel import gettext as _

    known = decline_reasons().get(code or "") or incomplete_reasons().get(code or "")
    if known:
        return known
    return _(message) if message else (_("The payment failed.") if code else "")


def risk_signal(level: str | None, scope: str | None = None) -> str:
    """B2: a declined attempt's risk signal in words: the level, and what raised it."""
    from flask_babel import gettext as _

    if not level:
        return ""
    label = models.RiskLevel(level).label
    why = {
        "account": _("many declined cards on your account"),
        "ip": _("many declines from the buyer's connection"),
        "ip_cards": _("many different cards tried from the buyer's connection"),
        "link": _("many declines on this payment link"),
        "page_cards": _("several different cards tried on this checkout"),
    }.get(scope or "")
    return _("%(level)s: %(why)s", level=label, why=why) if why else label


def risk_badge(level: str | None) -> Markup:
    """B2: the risk signal as a small badge (neutral, warning or danger), or nothing."""
    from flask_babel import gettext as _

    if not level:
        return Markup("")
    risk = models.RiskLevel(level)
    words = {"normal": _("Normal risk"), "elevated": _("Elevated risk"), "high": _("High risk")}[risk.value]
    return Markup('<span class="badge badge--{}">{}</span>').format(risk.tone, words)

