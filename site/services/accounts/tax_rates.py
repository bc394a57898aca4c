"""Q6: the account's tax rates (name, percentage, inclusive or exclusive, countries) and the merchant's VAT
number. Kassa computes tax itself from these; pricing reads them through links.snapshots.account_tax_context."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from babel.numbers import NumberFormatError, parse_decimal
from flask_babel import gettext as _
from sqlalchemy import select

from kassa.actor import Actor
from kassa.database import write_transaction
from kassa.errors import NotFound, ValidationFailed
from kassa.extensions import db
from kassa.models import Account, TaxRate
from kassa.services.accounts.accounts import country_choices, require_settings
from kassa.services.platform.audit import record_audit
from kassa.tax import EU_COUNTRIES, MAX_RATE_BP, normalize_vat_id, parse_countries, vat_country, vat_id_valid

MAX_RATES = 50


def account_rates(account_id: int, *, include_archived: bool = False) -> list[TaxRate]:
    query = select(TaxRate).where(TaxRate.account_id == account_id)
    if not include_archived:
        query = query.where(TaxRate.active.is_(True))
    return list(db.session.scalars(query.order_by(TaxRate.active.desc(), TaxRate.id)))


def percent_input(rate: TaxRate) -> str:
    """2100 → "21", 950 → "9.5": the form's value of a saved rate."""
    return format((Decimal(rate.percentage_bp) / 100).normalize(), "f")


def _checked(name: str, percentage: str, inclusive: bool, countries: str, locale: str
             ) -> tuple[str, int, bool, list[str]]:
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = _("Enter a name, like “VAT standard”.")
    elif len(name) > 100:
        errors["name"] = _("Use at most %(n)d characters.", n=100)
    bp = 0
    try:
        value = parse_decimal((percentage or "").strip().rstrip("%").strip(), locale=locale)
        bp_exact = value * 100
        if bp_exact != bp_exact.to_integral_value() or not 0 < bp_exact <= MAX_RATE_BP:
            raise InvalidOperation
        bp = int(bp_exact)
    except (NumberFormatError, InvalidOperation, ValueError):
        errors["percentage"] = _("Enter a percentage from 0.01 to 100, like 21 or 9.5.")
    codes = parse_countries((countries or "")[:1000])
    known = dict(country_choices("en"))
    unknown = [code for code in codes if code not in known]
    if unknown:
        errors["countries"] = _("These are not two-letter country codes: %(codes)s. Use codes like NL, BE, DE.",
                                codes=", ".join(unknown[:5]))
    elif len(codes) > 60:
        errors["countries"] = _("Name at most %(n)d countries.", n=60)
    if errors:
        raise ValidationFailed(_("Check the highlighted fields."), errors=errors)
    return name, bp, bool(inclusive), codes


def create_rate(actor: Actor, *, name: str, percentage: str, inclusive: bool, countries: str,
                locale: str = "en") -> TaxRate:
    require_settings(actor)
    name, bp, inclusive, codes = _checked(name, percentage, inclusive, countries, locale)
    with write_transaction(db.session) as session:
        if len(account_rates(actor.account_id)) >= MAX_RATES:
            raise ValidationFailed(_("An account can have at most %(n)d tax rates.", n=MAX_RATES), field="name")
        rate = TaxRate(account_id=actor.account_id, name=name, percentage_bp=bp, inclusive=inclusive,
                       countries=codes, active=True)
        session.add(rate)
        session.flush()
        record_audit(actor, "tax_rate.created", object_type="tax_rate", object_id=rate.id,
                     data={"name": name, "percentage_bp": bp, "inclusive": inclusive, "countries": codes})
        return rate


def _owned(session, actor: Actor, rate_id: int) -> TaxRate:
    rate = session.get(TaxRate, rate_id)
    if rate is None or rate.account_id != actor.account_id:
        raise NotFound(_("This tax rate doesn't exist."))
    return rate


def update_rate(actor: Actor, rate_id: int, *, name: str, percentage: str, inclusive: bool, countries: str,
                locale: str = "en") -> TaxRate:
    """Checkouts already open keep the rate they were opened with (frozen in their snapshot)."""
    require_settings(actor)
    name, bp, inclusive, codes = _checked(name, percentage, inclusive, countries, locale)
    with write_transaction(db.session) as session:
        rate = _owned(session, actor, rate_id)
        before = {"name": rate.name, "percentage_bp": rate.percentage_bp, "inclusive": rate.inclusive,
                  "countries": list(rate.countries or ())}
        rate.name, rate.percentage_bp, rate.inclusive, rate.countries = name, bp, inclusive, codes
        record_audit(actor, "tax_rate.updated", object_type="tax_rate", object_id=rate.id, data={"before": before})
        return rate


def archive_rate(actor: Actor, rate_id: int) -> TaxRate:
    """An archived rate applies to no new checkout; payments keep the tax they were charged."""
    require_settings(actor)
    with write_transaction(db.session) as session:
        rate = _owned(session, actor, rate_id)
        rate.active = False
        record_audit(actor, "tax_rate.archived", object_type="tax_rate", object_id=rate.id)
        return rate


def checked_vat_number(text: str, country: str) -> str:
    """Q6: the merchant's VAT number, normalized. An EU account's must have its member state's format (and
    prefix); elsewhere any letters and digits (up to 20) are kept as typed. Raises ValidationFailed."""
    number = normalize_vat_id(text)
    if not number:
        return ""
    if country in EU_COUNTRIES or number[:2] in ("EL", *EU_COUNTRIES):
        if not vat_id_valid(number):
            raise ValidationFailed(_("Enter a valid EU VAT number with its country code, like NL123456789B01."),
                                   field="vat_number")
        if country in EU_COUNTRIES and vat_country(number) != country:
            raise ValidationFailed(_("This VAT number is of another country than your account's (%(country)s).",
                                     country=country), field="vat_number")
    elif not number.isalnum():
        raise ValidationFailed(_("Use only letters and digits."), field="vat_number")
    return number


def set_vat_number(actor: Actor, text: str) -> Account:
    require_settings(actor)
    with write_transaction(db.session) as session:
        account = session.get(Account, actor.account_id)
        account.vat_number = checked_vat_number(text, account.country)
        record_audit(actor, "account.vat_number", object_type="account", object_id=account.id)
        return account
