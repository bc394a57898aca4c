"""What a merchant's invoice (V1) and a quote (V4) share as documents: their customer, the customer's language, the
branded PDF (the receipt's layout: lines with their Q1 discounts, dates, notes and terms), and the "a charge of it is
with the processor right now" check of their checkouts.

Why shared: quotes were built by copying the invoice code (issue 21); one copy of each piece keeps the PDF, the
language and the guards of both the same. invoices.py and quotes.py keep what is their own (title, dates, tax, the
amount due).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.numbers import format_decimal
from flask_babel import gettext as _
from sqlalchemy import select

from kassa.extensions import db
from kassa.i18n import LANGUAGES
from kassa.models import Account, AttemptStatus, CheckoutSession, Company, Contact, PaymentAttempt
from kassa.money import Money
from kassa.order_summary import DiscountType
from kassa.renderers.receipt import ReceiptData, ReceiptLine
from kassa.services.accounts.accounts import logo_dir


def customer_of(obj) -> tuple[Contact | None, Company | None]:
    """The invoice's or quote's contact and company (either may be missing)."""
    contact = db.session.get(Contact, obj.contact_id) if obj.contact_id else None
    company = db.session.get(Company, obj.company_id) if obj.company_id else None
    return contact, company


def customer_language(obj, account: Account) -> str:
    """The language its emails, page and PDF speak: the contact's, else the account's, else English."""
    contact = db.session.get(Contact, obj.contact_id) if obj.contact_id else None
    if contact is not None and contact.language in LANGUAGES:
        return contact.language
    return account.language if account.language in LANGUAGES else "en"


def pdf_lines(lines, money, language: str, recurrence=lambda line: None) -> list[ReceiptLine]:
    """The PDF's lines (inside force_locale(language)): gross amount, and its Q1 discount under it. `recurrence`
    words a recurring line's period ("every month"), None for one-time."""
    rows = []
    for line in lines:
        gross = money(line.quantity * line.unit_amount_minor)
        discount = gross - money(line.amount_minor) if line.amount_minor != gross.amount_minor else None
        if discount is not None and line.discount_type == DiscountType.PERCENT:
            label = _("Discount (%(percent)s%%)", percent=format_decimal(Decimal(line.discount_value) / 100,
                                                                         locale=language))
        else:
            label = _("Discount")
        rows.append(ReceiptLine(name=line.description, description="", quantity=line.quantity,
                                unit_amount=money(line.unit_amount_minor), amount=gross, recurrence=recurrence(line),
                                discount=discount, discount_label=label if discount is not None else None))
    return rows


def document_data(obj, account: Account, language: str, lines: list[ReceiptLine], *, net_minor: int,
                  **own: Any) -> ReceiptData:
    """The PDF's data, branded as the receipts are (logo, colour, the merchant's address and VAT number), for the
    customer of `obj`; `own` is what the document sets itself (number, title, dates, totals)."""
    contact, company = customer_of(obj)
    money = lambda minor: Money(minor, obj.currency)  # noqa: E731
    logo = Path(logo_dir()) / account.logo_path if account.logo_path else None
    gross_total = sum(line.amount.amount_minor for line in lines)
    return ReceiptData(
        timezone=account.timezone, language=language, merchant_name=account.name,
        merchant_address=account.address or "", merchant_email=account.support_email or "",
        brand_color=account.brand_color, logo_file=logo if logo and logo.exists() else None,
        buyer_email=contact.email if contact else "",
        buyer_name=" · ".join(part for part in ((contact.display_name if contact and contact.display_name !=
                                                  contact.email else ""), company.name if company else "") if part),
        billing_address=None, lines=tuple(lines), payment_method="", test_mode=False, subtotal=money(gross_total),
        discount=money(gross_total - net_minor) if gross_total != net_minor else None,
        merchant_vat_number=account.vat_number or "", notes=obj.notes, terms=obj.terms, **own,
    )


def attempt_in_flight(session, source_column, object_id: int) -> bool:
    """A payment attempt of one of the object's checkouts (`source_column`: CheckoutSession.invoice_id or .quote_id)
    with the processor right now: its outcome isn't known yet, so no second charge and no void meanwhile."""
    return session.scalar(
        select(PaymentAttempt.id).join(CheckoutSession, CheckoutSession.id == PaymentAttempt.checkout_session_id)
        .where(source_column == object_id, PaymentAttempt.status.in_(
            (AttemptStatus.PENDING.value, AttemptStatus.UNKNOWN.value))).limit(1)) is not None
