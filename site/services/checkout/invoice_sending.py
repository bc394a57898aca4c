"""V2: an open invoice emailed to its customer, in the customer's language, with the invoice PDF attached and the
link to its pay page (invoice_checkout.pay_url). Sending again sends a fresh copy (the amount due as it is now)."""

from __future__ import annotations

from flask_babel import gettext as _

from kassa.actor import Actor
from kassa.clock import now
from kassa.database import lock_one, write_transaction
from kassa.errors import Conflict, NotFound
from kassa.extensions import db
from kassa.models import Account, Contact, EmailMessage, Invoice, InvoiceStatus
from kassa.money import Money
from kassa.services.checkout.invoice_checkout import customer_language, pay_url
from kassa.services.payments.invoices import invoice_label
from kassa.services.platform.audit import record_audit
from kassa.services.platform.mail import queue_email

SENDABLE = (InvoiceStatus.OPEN.value, InvoiceStatus.PARTIALLY_PAID.value)


def queue_invoice_email(invoice: Invoice, account: Account, contact: Contact, *, kind: str = "invoice") -> EmailMessage:
    """In the caller's write: the email with the PDF (rendered by the worker at send time) and the pay link."""
    number = invoice_label(invoice)
    return queue_email(
        kind=kind, to=[contact.email], template="email/invoice.html",
        language=customer_language(invoice, account),
        context={"account": account, "invoice": invoice, "number": number, "brand_color": account.brand_color,
                 "amount_due": Money(invoice.amount_due_minor, invoice.currency),
                 "total": Money(invoice.amount_minor, invoice.currency),
                 "partly_paid": invoice.amount_paid_minor > 0, "pay_url": pay_url(invoice)},
        account_id=account.id,
        attachments=[{"renderer": "invoice", "invoice_id": invoice.id, "filename": f"invoice-{number}.pdf"}],
        related=("invoice", invoice.id),
    )


def send_invoice(actor: Actor, invoice_id: int) -> Invoice:
    """Email an open (or partly paid) invoice to its customer. Conflict for a draft (finalize it first), a paid or
    void one: nothing is sent. Another account's invoice is NotFound."""
    with write_transaction(db.session) as session:
        invoice = lock_one(session, Invoice, invoice_id)
        if invoice is None or invoice.account_id != actor.account_id or invoice.payment_id is not None:
            raise NotFound(_("Invoice not found."))
        if invoice.status == InvoiceStatus.DRAFT.value:
            raise Conflict(_("Finalize the invoice before sending it."))
        if invoice.status not in SENDABLE or invoice.amount_due_minor <= 0:
            raise Conflict(_("Only an invoice with an amount due can be sent."))
        contact = session.get(Contact, invoice.contact_id) if invoice.contact_id else None
        if contact is None or not contact.email:
            raise Conflict(_("This invoice has no customer email to send it to."))
        account = session.get(Account, invoice.account_id)
        queue_invoice_email(invoice, account, contact)
        invoice.sent_at = now()
        record_audit(actor, "invoice.sent", object_type="invoice", object_id=invoice.id,
                     data={"number": invoice.number, "to": contact.email})
        return invoice
