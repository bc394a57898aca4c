"""V2: an invoice paid through Kassa's checkout. The invoice's pay page (a signed, unguessable URL in the email)
opens a checkout session of the invoice: the same session, page, payment attempt, processor call and payment
record as a payment link's, frozen at exactly the amount due (one line the buyer can't change). The invoice is
counted paid by the payment's success (payment_states → invoice_states.apply_payment), never by the page.

The token, the checkout session and the download limit are token_checkout's, shared with the quote page.

One charge per invoice: every checkout of one invoice takes the invoice's row lock before its attempt
(`hold_invoice`), so two buyers (or two tabs) paying at once are one charge and one "being processed".
"""

from __future__ import annotations

from typing import Any

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from kassa.database import lock_one, write_transaction
from kassa.errors import Conflict, NotFound
from kassa.extensions import db
from kassa.models import (
    Account,
    BillingFrequency,
    CheckoutSession,
    Contact,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentStatus,
)
from kassa.services.checkout import token_checkout
from kassa.services.payments.documents import attempt_in_flight
from kassa.services.payments.documents import customer_language as customer_language
from kassa.services.payments.invoice_states import PAYABLE
from kassa.services.payments.invoices import invoice_label, render_invoice
from kassa.urls import absolute_url

_SALT = "kassa.invoice-pay"
PARTIAL_MINIMUM = 100  # a partial payment is at least 100 minor units (1.00 EUR): no card fee for a cent


class InvoiceNotPayable(Conflict):
    """The invoice is paid, void or otherwise closed: the pay page says so and nothing is charged."""

    def __init__(self, message: str, invoice: Invoice):
        super().__init__(message)
        self.invoice = invoice


def pay_token(invoice: Invoice) -> str:
    """The pay page's token: the invoice id signed with the app secret (token_checkout.sign_id)."""
    return token_checkout.sign_id(_SALT, invoice.id)


def pay_url(invoice: Invoice) -> str:
    return absolute_url("invoice_pay.page", token=pay_token(invoice))


def invoice_for_token(token: str) -> Invoice:
    """The merchant's invoice a pay token names; NotFound for a bad signature, a draft (not sent yet), a per-payment
    invoice (R5: paid at birth) or a deleted one, all alike, so tokens can't be probed."""
    invoice_id = token_checkout.signed_id(_SALT, token)
    invoice = db.session.get(Invoice, invoice_id) if invoice_id is not None else None
    if invoice is None or invoice.payment_id is not None or invoice.status == InvoiceStatus.DRAFT.value:
        raise NotFound(_("This invoice doesn't exist."))
    return invoice


def is_payable(invoice: Invoice) -> bool:
    return invoice.status in PAYABLE and invoice.amount_due_minor > 0


def refusal(invoice: Invoice) -> str:
    """Why an invoice can't be paid, politely, for its pay page."""
    if invoice.status == InvoiceStatus.PAID.value or (invoice.status in PAYABLE and invoice.amount_due_minor <= 0):
        return _("This invoice is paid. Thank you! There is nothing more to pay.")
    if invoice.status == InvoiceStatus.VOID.value:
        return _("This invoice was cancelled, so there is nothing to pay. Contact the seller if you have questions.")
    return _("This invoice can't be paid online. Contact the seller.")


def invoice_snapshot(invoice: Invoice, language: str, email: str) -> dict[str, Any]:
    """A checkout snapshot as a link's (snapshots.link_snapshot), of one line: the invoice, at its amount due.
    Nothing in it can be changed by the buyer (no quantities, no promo code, no questions), except, when the
    merchant allows partial payments, the amount: the checkout's own typed price (Q4), from a minimum up to the
    amount due and never above it."""
    due = invoice.amount_due_minor
    partial = invoice.allow_partial and due > PARTIAL_MINIMUM
    with force_locale(language):
        name = _("Invoice %(number)s", number=invoice_label(invoice))
    # V2: the page's email field starts with the customer's address; "Start again" is the invoice's pay page
    return token_checkout.fixed_snapshot({"invoice_id": invoice.id}, currency=invoice.currency, items=[{
        "name": name, "description": "", "unit_amount_minor": due,
        "currency": invoice.currency, "quantity": 1, "frequency": BillingFrequency.ONE_TIME.value,
        "term_type": None, "term_count": None, "product_id": None, "discount_type": "", "discount_value": 0,
        "quantity_adjustable": False, "quantity_min": 1, "quantity_max": 1, "custom_amount": partial,
        "amount_min_minor": PARTIAL_MINIMUM if partial else None, "amount_max_minor": due if partial else None,
    }], email=email, start_url=pay_url(invoice))


def start_checkout(token: str, *, language: str | None) -> CheckoutSession:
    """POST /invoice/<token>/pay: a checkout session of the invoice for its amount due now (the pay page's one
    button). InvoiceNotPayable when it is paid, void or uncollectible-and-settled meanwhile."""
    with write_transaction(db.session) as session:
        invoice = invoice_for_token(token)
        invoice = lock_one(session, Invoice, invoice.id)
        if not is_payable(invoice):
            raise InvoiceNotPayable(refusal(invoice), invoice)
        account = session.get(Account, invoice.account_id)
        contact = session.get(Contact, invoice.contact_id) if invoice.contact_id else None
        snapshot = invoice_snapshot(invoice, language or customer_language(invoice, account),
                                    contact.email if contact else "")
        return token_checkout.open_session(session, invoice.account_id, {"invoice_id": invoice.id}, snapshot,
                                           language)


def hold_invoice(session, checkout: CheckoutSession, amount_minor: int) -> None:
    """Inside the attempt's write (checkout._begin_attempt): the invoice's row lock, then every reason not to
    charge. Paid or void meanwhile, another checkout of it with the processor right now, a bank debit of it still
    clearing, or an amount due that changed since this checkout opened: refused before anything is charged."""
    invoice = lock_one(session, Invoice, checkout.invoice_id)
    if not is_payable(invoice):
        raise InvoiceNotPayable(refusal(invoice), invoice)
    if attempt_in_flight(session, CheckoutSession.invoice_id, invoice.id):
        raise InvoiceNotPayable(_("A payment of this invoice is being processed right now. Open the invoice again "
                                  "in a moment to see it paid."), invoice)
    clearing = session.scalar(select(Payment.id).where(Payment.invoice_id == invoice.id,
                                                       Payment.status == PaymentStatus.PROCESSING.value).limit(1))
    if clearing is not None:
        raise InvoiceNotPayable(_("A payment of this invoice is already on its way from the bank, so it can't be "
                                  "paid again now."), invoice)
    partial = bool(checkout.snapshot["items"][0].get("custom_amount"))
    if amount_minor > invoice.amount_due_minor or (not partial and amount_minor != invoice.amount_due_minor):
        raise InvoiceNotPayable(_("The amount due on this invoice has changed. Open the invoice again to pay what "
                                  "is due now."), invoice)


def public_invoice_pdf(invoice: Invoice, *, ip: str | None) -> tuple[str, str, bytes]:
    """The invoice PDF from its pay page. Renders are limited per invoice and per client address, as the
    checkout's receipt downloads are (H7): each takes a second or two of the one PDF renderer everyone shares."""
    return token_checkout.limited_render("invoice", invoice.id, ip, render_invoice)
