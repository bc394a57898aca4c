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
from kassa.renderers.receipt import render_receipt
from kassa.services.payments.receipts import receipt_data
from kassa.services.platform.counters import next_number


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
                      currency=payment.currency, issued_at=payment.succeeded_at or payment.created_at)
    db.session.add(invoice)
    db.session.flush()
    return invoice


def payment_invoice(payment: Payment) -> Invoice | None:
    """The payment's invoice (one at most: R1), of the payment's own account."""
    return db.session.scalar(select(Invoice).where(Invoice.payment_id == payment.id,
                                                   Invoice.account_id == payment.account_id))


def render_invoice(invoice_id: int) -> tuple[str, str, bytes]:
    """The invoice PDF in the buyer's language: the receipt's layout under the invoice's title and number."""
    invoice = db.session.get(Invoice, invoice_id)
    payment = db.session.get(Payment, invoice.payment_id)
    with force_locale(payment.language):
        title, number_label = _("Invoice"), _("Invoice number")
    data = replace(receipt_data(payment), number=invoice_label(invoice), title=title, number_label=number_label)
    _name, content_type, pdf = render_receipt(data)
    return f"invoice-{invoice_label(invoice)}.pdf", content_type, pdf


def invoice_attachment(spec: dict[str, Any]) -> tuple[str, str, bytes]:
    return render_invoice(spec["invoice_id"])
