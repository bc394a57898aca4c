"""V2: an invoice paid through Kassa's checkout. The invoice's pay page (a signed, unguessable URL in the email)
opens a checkout session of the invoice: the same session, page, payment attempt, processor call and payment
record as a payment link's, frozen at exactly the amount due (one line the buyer can't change). The invoice is
counted paid by the payment's success (payment_states → invoice_states.apply_payment), never by the page.

One charge per invoice: every checkout of one invoice takes the invoice's row lock before its attempt
(`hold_invoice`), so two buyers (or two tabs) paying at once are one charge and one "being processed".
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from kassa.clock import now
from kassa.database import lock_one, write_transaction
from kassa.errors import Conflict, NotFound, TooManyRequests
from kassa.extensions import db
from kassa.i18n import LANGUAGES
from kassa.models import (
    CONTACT_FIELDS,
    Account,
    AttemptStatus,
    BillingFrequency,
    CheckoutSession,
    Confirmation,
    Contact,
    FieldMode,
    Invoice,
    InvoiceStatus,
    Mode,
    Payment,
    PaymentAttempt,
    PaymentStatus,
)
from kassa.services.payments.invoice_states import PAYABLE
from kassa.services.payments.invoices import invoice_label, render_invoice
from kassa.services.platform import throttle
from kassa.urls import absolute_url

_SALT = "kassa.invoice-pay"
PARTIAL_MINIMUM = 100  # a partial payment is at least 100 minor units (1.00 EUR): no card fee for a cent
SESSION_LIFETIME = timedelta(hours=24)  # as a link's checkout (checkout.SESSION_LIFETIME)


class InvoiceNotPayable(Conflict):
    """The invoice is paid, void or otherwise closed: the pay page says so and nothing is charged."""

    def __init__(self, message: str, invoice: Invoice):
        super().__init__(message)
        self.invoice = invoice


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt=_SALT)


def pay_token(invoice: Invoice) -> str:
    """The pay page's token: the invoice id signed with the app secret (HMAC), so no other invoice's page can be
    reached by changing it and none can be guessed."""
    return _serializer().dumps(invoice.id)


def pay_url(invoice: Invoice) -> str:
    return absolute_url("invoice_pay.page", token=pay_token(invoice))


def invoice_for_token(token: str) -> Invoice:
    """The merchant's invoice a pay token names; NotFound for a bad signature, a draft (not sent yet), a per-payment
    invoice (R5: paid at birth) or a deleted one, all alike, so tokens can't be probed."""
    try:
        invoice_id = _serializer().loads(token or "")
    except BadSignature:
        invoice_id = None
    invoice = db.session.get(Invoice, invoice_id) if isinstance(invoice_id, int) else None
    if invoice is None or invoice.payment_id is not None or invoice.status == InvoiceStatus.DRAFT.value:
        raise NotFound(_("This invoice doesn't exist."))
    return invoice


def customer_language(invoice: Invoice, account: Account) -> str:
    contact = db.session.get(Contact, invoice.contact_id) if invoice.contact_id else None
    if contact is not None and contact.language in LANGUAGES:
        return contact.language
    return account.language if account.language in LANGUAGES else "en"


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
    return {
        "link_id": None,
        "invoice_id": invoice.id,
        "version": 1,
        "currency": invoice.currency,
        "items": [{
            "name": name, "description": "", "unit_amount_minor": due,
            "currency": invoice.currency, "quantity": 1, "frequency": BillingFrequency.ONE_TIME.value,
            "term_type": None, "term_count": None, "product_id": None, "discount_type": "", "discount_value": 0,
            "quantity_adjustable": False, "quantity_min": 1, "quantity_max": 1, "custom_amount": partial,
            "amount_min_minor": PARTIAL_MINIMUM if partial else None, "amount_max_minor": due if partial else None,
        }],
        "fields": {field: FieldMode.OFF.value for field in CONTACT_FIELDS},
        "allow_card": True,
        "allow_ach": True,  # the bank debit of the invoice's currency, when there is one (Q10)
        "collect_billing_address": False,
        "collect_shipping_address": False,
        "confirmation": Confirmation.DEFAULT.value,
        "redirect_url": None,
        "terms_url": None,
        "pipeline_id": None,
        "stage_id": None,
        "custom_fields": [],
        "trial_days": 0,
        # V2: the page's email field starts with the customer's address; "Start again" is the invoice's pay page
        "email": email,
        "start_url": pay_url(invoice),
    }


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
        checkout = CheckoutSession(
            account_id=invoice.account_id, link_id=None, invoice_id=invoice.id, token=secrets.token_urlsafe(32),
            mode=Mode.LIVE.value, link_version=1,
            snapshot=invoice_snapshot(invoice, language or customer_language(invoice, account),
                                      contact.email if contact else ""),
            language=language, expires_at=now() + SESSION_LIFETIME,
        )
        session.add(checkout)
        session.flush()
        return checkout


def hold_invoice(session, checkout: CheckoutSession, amount_minor: int) -> None:
    """Inside the attempt's write (checkout._begin_attempt): the invoice's row lock, then every reason not to
    charge. Paid or void meanwhile, another checkout of it with the processor right now, a bank debit of it still
    clearing, or an amount due that changed since this checkout opened: refused before anything is charged."""
    invoice = lock_one(session, Invoice, checkout.invoice_id)
    if not is_payable(invoice):
        raise InvoiceNotPayable(refusal(invoice), invoice)
    busy = session.scalar(
        select(PaymentAttempt.id).join(CheckoutSession, CheckoutSession.id == PaymentAttempt.checkout_session_id)
        .where(CheckoutSession.invoice_id == invoice.id, PaymentAttempt.status.in_(
            (AttemptStatus.PENDING.value, AttemptStatus.UNKNOWN.value))).limit(1))
    if busy is not None:
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
    rules = ((current_app.config["KASSA_RECEIPT_RENDER_LINK_LIMIT"], ("invoice-render", "invoice", str(invoice.id))),
             (current_app.config["KASSA_RECEIPT_RENDER_IP_LIMIT"], ("receipt-render", "ip", ip or "-")))
    if not throttle.allow(*rules):
        minutes = -(-throttle.retry_after(*rules) // 60)
        raise TooManyRequests(_("Too many downloads right now. Try again in %(minutes)d min.", minutes=minutes))
    return render_invoice(invoice.id)
