"""V4: a quote's number as people read it and its PDF: the invoice's renderer (the receipt's branded layout, with
documents.py's lines and branding), in the customer's language, with the quote's dates (issue, valid until), its
recurring lines ("every month"), notes and terms."""

from __future__ import annotations

from typing import Any

from flask_babel import force_locale
from flask_babel import gettext as _

from kassa.display_ids import display_id
from kassa.extensions import db
from kassa.models import Account, BillingFrequency, Quote
from kassa.money import Money
from kassa.order_summary import every_label
from kassa.renderers.receipt import render_receipt

# customer_language is documents', re-exported here for the quote page and the quote email
from kassa.services.payments.documents import customer_language as customer_language
from kassa.services.payments.documents import document_data, pdf_lines
from kassa.timefmt import DATE, format_when


def quote_label(quote: Quote) -> str:
    return display_id("quote", quote.number) if quote.number is not None else _("Draft")


def render_quote(quote_id: int) -> tuple[str, str, bytes]:
    """The quote PDF in its customer's language, branded as the receipts and invoices are (documents.document_data)."""
    quote = db.session.get(Quote, quote_id)
    account = db.session.get(Account, quote.account_id)
    language = customer_language(quote, account)
    money = lambda minor: Money(minor, quote.currency)  # noqa: E731
    with force_locale(language):
        lines = pdf_lines(quote.lines, money, language, recurrence=lambda line: every_label(line.frequency)
                          if line.frequency != BillingFrequency.ONE_TIME.value else None)
        dates = tuple((label, format_when(value, DATE, locale=language, timezone=None))
                      for label, value in ((_("Quote date"), quote.issue_date), (_("Valid until"), quote.expiry_date))
                      if value is not None)
        data = document_data(
            quote, account, language, lines, net_minor=quote.amount_minor,
            number=quote_label(quote), issued_at=quote.finalized_at or quote.created_at,
            total=money(quote.amount_minor), amount_paid=money(quote.amount_minor if quote.paid_at else 0),
            title=_("Quote"), number_label=_("Quote number"), dates=dates,
            amount_due=money(0 if quote.paid_at else quote.amount_minor),
            party_label=_("Quote for"), due_label=_("Due at acceptance"), show_paid=bool(quote.paid_at),
        )
    _name, content_type, pdf = render_receipt(data)
    return f"quote-{quote_label(quote) if quote.number else 'draft'}.pdf", content_type, pdf


def quote_attachment(spec: dict[str, Any]) -> tuple[str, str, bytes]:
    return render_quote(spec["quote_id"])
