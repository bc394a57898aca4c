"""V2: an open invoice emailed to its customer, in the customer's language, with the invoice PDF attached and the
link to its pay page (invoice_checkout.pay_url). Sending again sends a fresh copy (the amount due as it is now).

Reminders (the tick): the same email, saying it is a reminder, once a set number of days before the due date and
once a set number of days after it while something is still due (Settings → Payments; 0 days: none, the default).
"""

from __future__ import annotations

from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import or_, select

from kassa.actor import Actor
from kassa.clock import account_today, now
from kassa.database import lock_one, write_transaction
from kassa.errors import Conflict, NotFound
from kassa.extensions import db
from kassa.models import Account, Contact, EmailMessage, Invoice, InvoiceStatus
from kassa.money import Money
from kassa.services.checkout.invoice_checkout import customer_language, pay_url
from kassa.services.payments.invoices import invoice_label
from kassa.services.platform.audit import record_audit
from kassa.services.platform.mail import queue_email
from kassa.services.platform.ticks import each_item, for_tick_account

SENDABLE = (InvoiceStatus.OPEN.value, InvoiceStatus.PARTIALLY_PAID.value)


def queue_invoice_email(invoice: Invoice, account: Account, contact: Contact, *,
                        reminder: str | None = None) -> EmailMessage:
    """In the caller's write: the email with the PDF (rendered by the worker at send time) and the pay link."""
    number = invoice_label(invoice)
    return queue_email(
        kind="invoice_reminder" if reminder else "invoice", to=[contact.email], template="email/invoice.html",
        language=customer_language(invoice, account),
        context={"account": account, "invoice": invoice, "number": number, "brand_color": account.brand_color,
                 "amount_due": Money(invoice.amount_due_minor, invoice.currency),
                 "total": Money(invoice.amount_minor, invoice.currency),
                 "partly_paid": invoice.amount_paid_minor > 0, "pay_url": pay_url(invoice), "reminder": reminder},
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


def send_reminders() -> int:
    """The tick: each account's reminders, on the calendar day it is for the merchant. "before": an invoice due
    within the set days (not yet past due); "after": one past due by at least the set days. Each goes once per
    invoice (reminded_*_at), and only while something is due."""
    accounts = db.session.execute(
        select(Account.id, Account.invoice_reminder_days_before, Account.invoice_reminder_days_after)
        .where(or_(Account.invoice_reminder_days_before > 0, Account.invoice_reminder_days_after > 0),
               for_tick_account(Account.id))).all()
    db.session.rollback()

    def remind_account(row) -> int:
        account_id, before, after = row
        today = account_today(db.session.get(Account, account_id))
        due = select(Invoice.id).where(Invoice.account_id == account_id, Invoice.payment_id.is_(None),
                                       Invoice.status.in_(SENDABLE), Invoice.due_date.is_not(None))
        targets = []
        if before:
            targets += [(i, "before") for i in db.session.scalars(due.where(
                Invoice.reminded_before_at.is_(None), Invoice.due_date >= today,
                Invoice.due_date <= today + timedelta(days=before)))]
        if after:
            targets += [(i, "after") for i in db.session.scalars(due.where(
                Invoice.reminded_after_at.is_(None), Invoice.due_date <= today - timedelta(days=after)))]
        db.session.rollback()
        return each_item("invoice_reminders", targets, remind, describe=lambda target: f"invoice {target[0]}")

    def remind(target) -> bool:
        invoice_id, which = target
        with write_transaction(db.session) as session:
            invoice = lock_one(session, Invoice, invoice_id)
            column = "reminded_before_at" if which == "before" else "reminded_after_at"
            if getattr(invoice, column) is not None or invoice.status not in SENDABLE \
                    or invoice.amount_due_minor <= 0:
                return False  # sent by another tick meanwhile, or paid or void since
            contact = session.get(Contact, invoice.contact_id) if invoice.contact_id else None
            setattr(invoice, column, now())
            if contact is None or not contact.email:
                return False
            queue_invoice_email(invoice, session.get(Account, invoice.account_id), contact, reminder=which)
            return True

    # H1: one account or invoice failing is logged and retried later; every other reminder still goes.
    return each_item("invoice_reminders", accounts, remind_account, describe=lambda row: f"account {row[0]}")
