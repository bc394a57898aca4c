"""V4: a quote's number as people read it and its PDF: the invoice's renderer (the receipt's branded layout), in
the customer's language, with the quote's dates (issue, valid until), its recurring lines ("every month"), notes
and terms."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.numbers import format_decimal
from flask_babel import force_locale
from flask_babel import gettext as _

from kassa.display_ids import display_id
from kassa.extensions import db
from kassa.i18n import LANGUAGES
from kassa.models import Account, BillingFrequency, Company, Contact, Quote
from kassa.money import Money
from kassa.order_summary import DiscountType, every_label
from kassa.renderers.receipt import ReceiptData, ReceiptLine, render_receipt
from kassa.services.accounts.accounts import logo_dir
from kassa.timefmt import DATE, format_when


def quote_label(quote: Quote) -> str:
    return display_id("quote", quote.number) if quote.number is not None else _("Draft")


def customer_language(quote: Quote, account: Account) -> str:
    contact = db.session.get(Contact, quote.contact_id) if quote.contact_id else None
    if contact is not None and contact.language in LANGUAGES:
        return contact.language
    return account.language if account.language in LANGUAGES else "en"


def render_quote(quote_id: int) -> tuple[str, str, bytes]:
    """The quote PDF in its customer's language, branded as the receipts and invoices are."""
    quote = db.session.get(Quote, quote_id)
    account = db.session.get(Account, quote.account_id)
    contact = db.session.get(Contact, quote.contact_id) if quote.contact_id else None
    company = db.session.get(Company, quote.company_id) if quote.company_id else None
    language = customer_language(quote, account)
    logo = Path(logo_dir()) / account.logo_path if account.logo_path else None
    money = lambda minor: Money(minor, quote.currency)  # noqa: E731
    with force_locale(language):
        lines = []
        for line in quote.lines:
            gross = money(line.quantity * line.unit_amount_minor)
            discount = gross - money(line.amount_minor) if line.amount_minor != gross.amount_minor else None
            if discount is not None and line.discount_type == DiscountType.PERCENT:
                label = _("Discount (%(percent)s%%)", percent=format_decimal(Decimal(line.discount_value) / 100,
                                                                             locale=language))
            else:
                label = _("Discount")
            recurring = line.frequency != BillingFrequency.ONE_TIME.value
            lines.append(ReceiptLine(name=line.description, description="", quantity=line.quantity,
                                     unit_amount=money(line.unit_amount_minor), amount=gross,
                                     recurrence=every_label(line.frequency) if recurring else None,
                                     discount=discount, discount_label=label if discount is not None else None))
        gross_total = sum(line.amount.amount_minor for line in lines)
        dates = tuple((label, format_when(value, DATE, locale=language, timezone=None))
                      for label, value in ((_("Quote date"), quote.issue_date), (_("Valid until"), quote.expiry_date))
                      if value is not None)
        data = ReceiptData(
            number=quote_label(quote), issued_at=quote.finalized_at or quote.created_at, timezone=account.timezone,
            language=language, merchant_name=account.name, merchant_address=account.address or "",
            merchant_email=account.support_email or "", brand_color=account.brand_color,
            logo_file=logo if logo and logo.exists() else None, buyer_email=contact.email if contact else "",
            buyer_name=" · ".join(part for part in ((contact.display_name if contact and contact.display_name !=
                                                      contact.email else ""), company.name if company else "")
                                 if part),
            billing_address=None, lines=tuple(lines), total=money(quote.amount_minor),
            amount_paid=money(quote.amount_minor if quote.paid_at else 0), payment_method="", test_mode=False,
            subtotal=money(gross_total), discount=money(gross_total - quote.amount_minor)
            if gross_total != quote.amount_minor else None, merchant_vat_number=account.vat_number or "",
            title=_("Quote"), number_label=_("Quote number"), dates=dates,
            amount_due=money(0 if quote.paid_at else quote.amount_minor), notes=quote.notes, terms=quote.terms,
            party_label=_("Quote for"), due_label=_("Due at acceptance"), show_paid=bool(quote.paid_at),
        )
    _name, content_type, pdf = render_receipt(data)
    return f"quote-{quote_label(quote) if quote.number else 'draft'}.pdf", content_type, pdf


def quote_attachment(spec: dict[str, Any]) -> tuple[str, str, bytes]:
    return render_quote(spec["quote_id"])
