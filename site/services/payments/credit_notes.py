"""V1: credit notes. A refund of a payment that paid an invoice (a merchant's invoice, V2, or a payment's own R5
invoice) credits that invoice: when the refund succeeds (refund_states.move_refund), a credit note for the refunded
amount is made in the same transaction, numbered from the account's own gap-free series (counter "credit_note",
shown CN-000001). One per refund: a refund event applied twice finds its note (and the unique refund_id refuses a
second row whatever happens). The PDF is the receipt's branded layout, in the customer's language, titled
"Credit note" and referencing the invoice's number."""

from __future__ import annotations

from pathlib import Path

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from kassa.display_ids import display_id
from kassa.extensions import db
from kassa.i18n import LANGUAGES
from kassa.models import Account, Company, Contact, CreditNote, Invoice, Payment, Refund
from kassa.money import Money
from kassa.renderers.receipt import ReceiptData, ReceiptLine, render_receipt
from kassa.services.accounts.accounts import logo_dir
from kassa.services.payments.invoices import invoice_label, payment_invoice
from kassa.services.platform.counters import next_number
from kassa.timefmt import DATE, format_when


def credit_note_label(note: CreditNote) -> str:
    return display_id("credit_note", note.number)


def credit_for_refund(refund: Refund, payment: Payment) -> CreditNote | None:
    """In the caller's write transaction (the refund settling as succeeded): the refund's credit note, made once.
    None when the payment paid no invoice (no invoice, or a draft's: it has no number to reference)."""
    existing = db.session.scalar(select(CreditNote).where(CreditNote.refund_id == refund.id))
    if existing is not None:
        return existing
    invoice = payment_invoice(payment)
    if invoice is None or invoice.number is None:
        return None
    note = CreditNote(account_id=payment.account_id, number=next_number(payment.account_id, "credit_note"),
                      invoice_id=invoice.id, refund_id=refund.id, payment_id=payment.id,
                      amount_minor=refund.amount_minor, currency=refund.currency)
    db.session.add(note)
    db.session.flush()
    return note


def invoice_credit_notes(invoice: Invoice) -> list[CreditNote]:
    return list(db.session.scalars(select(CreditNote).where(CreditNote.invoice_id == invoice.id,
                                                            CreditNote.account_id == invoice.account_id)
                                   .order_by(CreditNote.number)))


def _language(invoice: Invoice, payment: Payment, account: Account) -> tuple[str, Contact | None]:
    contact_id = invoice.contact_id or payment.contact_id
    contact = db.session.get(Contact, contact_id) if contact_id else None
    if invoice.payment_id is not None:  # a payment's own invoice speaks the buyer's language of the checkout
        return (payment.language if payment.language in LANGUAGES else account.language), contact
    if contact is not None and contact.language in LANGUAGES:
        return contact.language, contact
    return account.language, contact


def render_credit_note(note_id: int) -> tuple[str, str, bytes]:
    """(filename, content type, PDF): "Credit note CN-000001" for invoice INV-…, the amount credited, branded as
    the receipts and invoices are, in the customer's language."""
    note = db.session.get(CreditNote, note_id)
    invoice = db.session.get(Invoice, note.invoice_id)
    payment = db.session.get(Payment, note.payment_id)
    account = db.session.get(Account, note.account_id)
    language, contact = _language(invoice, payment, account)
    company_id = invoice.company_id or payment.company_id
    company = db.session.get(Company, company_id) if company_id else None
    logo = Path(logo_dir()) / account.logo_path if account.logo_path else None
    amount = Money(note.amount_minor, note.currency)
    number, invoice_number = credit_note_label(note), invoice_label(invoice)
    with force_locale(language):
        data = ReceiptData(
            number=number, issued_at=note.issued_at, timezone=account.timezone, language=language,
            merchant_name=account.name, merchant_address=account.address or "",
            merchant_email=account.support_email or "", brand_color=account.brand_color,
            logo_file=logo if logo and logo.exists() else None,
            buyer_email=contact.email if contact else payment.buyer_email,
            buyer_name=" · ".join(part for part in ((contact.display_name if contact and contact.display_name !=
                                                      contact.email else ""), company.name if company else "")
                                 if part),
            billing_address=None,
            lines=(ReceiptLine(name=_("Refund for invoice %(number)s", number=invoice_number), description="",
                               quantity=1, unit_amount=amount, amount=amount, recurrence=None),),
            total=amount, amount_paid=amount, payment_method="", test_mode=payment.mode == "test",
            merchant_vat_number=account.vat_number or "",
            title=_("Credit note"), number_label=_("Credit note number"),
            dates=((_("Date"), format_when(note.issued_at, DATE, locale=language, timezone=account.timezone)),
                   (_("Credits invoice"), invoice_number)),
            credit_note=True,
        )
    _name, content_type, pdf = render_receipt(data)
    return f"credit-note-{number}.pdf", content_type, pdf
