"""Invoices (R5, E4): one per payment from a link or subscription when the setting is on, numbered
without gaps per account, rendered as a PDF with the receipt's branding and attached to the receipt."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from kassa.display_ids import display_id
from kassa.extensions import db
from kassa.models import Account, Invoice, Payment
from kassa.money import Money
from kassa.order_summary import tax_label
from kassa.renderers.receipt import render_receipt
from kassa.services.payments.documents import customer_language, document_data, pdf_lines
from kassa.services.payments.invoice_tax import tax_breakdown
from kassa.services.payments.receipts import receipt_data
from kassa.services.platform.counters import next_number
from kassa.timefmt import DATE, format_when


def invoice_label(invoice: Invoice) -> str:
    return display_id("invoice", invoice.number)


def maybe_invoice(payment: Payment, account: Account) -> Invoice | None:
    """In the caller's transaction: the payment's invoice if invoices are on (the number can't be reused)."""
    if not account.create_invoices:
        return None
    existing = db.session.scalar(select(Invoice).where(Invoice.payment_id == payment.id))
    if existing is not None:
        return existing
    invoice = Invoice(account_id=account.id, number=next_number(account.id, "invoice"), payment_id=payment.id,
                      subscription_id=payment.subscription_id, amount_minor=payment.amount_minor,
                      currency=payment.currency, issued_at=payment.succeeded_at or payment.created_at,
                      amount_paid_minor=payment.amount_minor,
                      finalized_at=payment.succeeded_at or payment.created_at)
    db.session.add(invoice)
    db.session.flush()
    return invoice


def payment_invoice(payment: Payment) -> Invoice | None:
    """The payment's invoice (one at most: R1), of the payment's own account: the merchant's invoice it pays (V2),
    else its own (R5)."""
    if payment.invoice_id is not None:
        return db.session.scalar(select(Invoice).where(Invoice.id == payment.invoice_id,
                                                       Invoice.account_id == payment.account_id))
    return db.session.scalar(select(Invoice).where(Invoice.payment_id == payment.id,
                                                   Invoice.account_id == payment.account_id))


def invoice_label_or_draft(invoice: Invoice) -> str:
    return invoice_label(invoice) if invoice.number is not None else _("Draft")


def render_invoice(invoice_id: int) -> tuple[str, str, bytes]:
    """The invoice PDF in the buyer's language: the receipt's layout under the invoice's title and number."""
    invoice = db.session.get(Invoice, invoice_id)
    if invoice.payment_id is None:
        return _render_merchant_invoice(invoice)
    payment = db.session.get(Payment, invoice.payment_id)
    with force_locale(payment.language):
        title, number_label = _("Invoice"), _("Invoice number")
    data = replace(receipt_data(payment), number=invoice_label(invoice), title=title, number_label=number_label)
    _name, content_type, pdf = render_receipt(data)
    return f"invoice-{invoice_label(invoice)}.pdf", content_type, pdf


def invoice_attachment(spec: dict[str, Any]) -> tuple[str, str, bytes]:
    return render_invoice(spec["invoice_id"])


def _render_merchant_invoice(invoice: Invoice) -> tuple[str, str, bytes]:
    """V1: a merchant's invoice, in its customer's language, branded as the receipts are: its lines with their
    Q1 discounts, issue and due dates, the amount still due, notes and terms. A draft prints as "Draft"."""
    account = db.session.get(Account, invoice.account_id)
    language = customer_language(invoice, account)
    money = lambda minor: Money(minor, invoice.currency)  # noqa: E731
    with force_locale(language):
        lines = pdf_lines(invoice.lines, money, language)
        tax_rows = tax_breakdown(invoice.lines)
        dates = tuple((label, format_when(value, DATE, locale=language, timezone=None))
                      for label, value in ((_("Issue date"), invoice.issue_date), (_("Due date"), invoice.due_date))
                      if value is not None)
        data = document_data(
            invoice, account, language, lines, net_minor=sum(line.amount_minor for line in invoice.lines),
            number=invoice_label_or_draft(invoice), issued_at=invoice.issued_at,
            total=money(invoice.amount_minor), amount_paid=money(invoice.amount_paid_minor),
            title=_("Invoice"), number_label=_("Invoice number"), dates=dates,
            amount_due=money(invoice.amount_due_minor),
            tax_rows=tuple((tax_label(row), money(row.tax_minor), money(row.taxable_minor))
                           for row in tax_rows),
            tax_total=money(invoice.tax_minor) if tax_rows else None,
        )
    _name, content_type, pdf = render_receipt(data)
    return f"invoice-{invoice_label(invoice) if invoice.number else 'draft'}.pdf", content_type, pdf
