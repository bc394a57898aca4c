"""Languages, the locale and time-zone selectors, and the template filters for money and dates (`|when`: B7,
styles in kassa.timefmt)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from flask import Flask, g, has_request_context, request, session
from flask_babel import get_locale, get_timezone, refresh
from flask_login import current_user

from kassa import timefmt
from kassa.clock import zone_name
from kassa.models import Permission, Role
from kassa.money import Money

LANGUAGES: dict[str, str] = {"en": "English", "nl": "Nederlands", "fr": "Français"}
DEFAULT_LANGUAGE = "en"


def best_language(header_choice: str | None) -> str:
    return header_choice if header_choice in LANGUAGES else DEFAULT_LANGUAGE


def select_locale() -> str:
    """Buyer pages set g.buyer_language; merchants get their own or their account's language."""
    buyer = g.get("buyer_language")
    if buyer:
        return buyer
    if not has_request_context():
        return DEFAULT_LANGUAGE
    if current_user and current_user.is_authenticated:
        return current_user.language or current_user.account.language or DEFAULT_LANGUAGE
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return best_language(request.accept_languages.best_match(list(LANGUAGES)))


def select_timezone() -> str:
    zone = g.get("display_timezone")
    if zone:
        return zone_name(zone)  # H1: an email for an account with a bad stored zone still renders
    if not has_request_context():
        return "UTC"
    if current_user and current_user.is_authenticated:
        return zone_name(current_user.account.timezone)  # H1: a bad stored zone shows UTC, never a 500
    return "UTC"


def current_language() -> str:
    return str(get_locale() or DEFAULT_LANGUAGE)


def money_filter(value, currency: str | None = None) -> str:
    """`{{ payment.amount | money }}` for Money, or `{{ 1250 | money("EUR") }}` for minor units."""
    if value is None:
        return ""
    if not isinstance(value, Money):
        value = Money(int(value), currency)
    return value.format(current_language())


def show_times_in(timezone: str | None) -> None:
    """Buyer pages (checkout, card update) show times in the merchant's zone, as the receipt does (B7)."""
    g.display_timezone = timezone
    refresh()


def when_filter(value: datetime | date | None, style: str = timefmt.DATETIME, zone: str | None = None) -> str:
    """B7: `{{ payment.created_at|when("datetime") }}` — the one date/time formatter of templates (styles in
    kassa.timefmt), in the viewer's language and the account's zone (or `zone`, for a document that names it)."""
    return timefmt.format_when(value, style, locale=current_language(),
                               timezone=zone or str(get_timezone() or "UTC"))


def datetime_filter(value: datetime | None, fmt: str | None = None) -> str:
    """Only so a template merged from before B7 still renders (in the `datetime` style); the template test
    asks for `|when` instead."""
    return when_filter(value, timefmt.legacy_style(fmt, timefmt.DATETIME))


def date_filter(value, fmt: str | None = None) -> str:
    """Only so a template merged from before B7 still renders (in the `date` style); see `datetime_filter`."""
    return when_filter(value, timefmt.legacy_style(fmt, timefmt.DATE))


def percent_filter(value: Decimal | float) -> str:
    from babel.numbers import format_percent

    return format_percent(value, locale=current_language())


def role_label(value: str) -> str:
    return Role(value).label


def register_template_helpers(app: Flask) -> None:
    app.jinja_env.globals["Permission"] = Permission
    app.jinja_env.globals.update(LANGUAGES=LANGUAGES, current_language=current_language)
