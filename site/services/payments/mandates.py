"""The bank-debit (ACH) authorization text the buyer accepts; the same words are shown and stored (E6)."""

from __future__ import annotations

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from kassa.actor import Actor
from kassa.database import write_transaction
from kassa.display_ids import display_id
from kassa.errors import Conflict, Forbidden, NotFound
from kassa.extensions import db
from kassa.models import Account, Mandate, Payment, Permission
from kassa.money import Money
from kassa.renderers import STATIC_DIR, render_pdf
from kassa.services.platform.audit import record_audit
from kassa.services.platform.mail import queue_email


def mandate_text(account_id: int, amount_minor: int, currency: str, language: str) -> str:
    account = db.session.get(Account, account_id)
    with force_locale(language):
        return _(
            "By accepting, you authorize %(merchant)s to debit %(amount)s from the bank account you entered, "
            "once, for this purchase, and your bank to process that debit. You can cancel this authorization by "
            "contacting %(merchant)s before the debit is made; you are entitled to a refund from your bank under "
            "the terms of your agreement with it.",
            merchant=account.name,
            amount=Money(amount_minor, currency).format(language),
        )


def render_mandate_pdf(payment_id: int) -> tuple[str, str, bytes]:
    """E6: the authorization the buyer accepted, as a PDF (text, time, IP, account last 4)."""
    from flask import render_template

    payment = db.session.get(Payment, payment_id)
    mandate = db.session.scalar(select(Mandate).where(Mandate.payment_id == payment_id))
    account = db.session.get(Account, payment.account_id)
    html = render_template("pdf/mandate.html", payment=payment, mandate=mandate, account=account,
                           amount=Money(payment.amount_minor, payment.currency))
    return f"authorization-{display_id('payment', payment.id)}.pdf", "application/pdf", render_pdf(html, base_dir=STATIC_DIR)


def mandate_attachment(spec: dict) -> tuple[str, str, bytes]:
    return render_mandate_pdf(spec["payment_id"])


def send_authorization_copy(actor: Actor, payment_id: int) -> str:
    """E6: Actions → Get a copy of the authorization: emailed to the user who asked."""
    if actor.user is None or not actor.user.can(Permission.MANAGE_PAYMENTS):
        raise Forbidden(_("You need the “%(permission)s” permission.", permission=Permission.MANAGE_PAYMENTS.label))
    with write_transaction(db.session) as session:
        payment = session.get(Payment, payment_id)
        if payment is None or payment.account_id != actor.account_id:
            raise NotFound(_("Payment not found."))
        if session.scalar(select(Mandate.id).where(Mandate.payment_id == payment.id)) is None:
            raise Conflict(_("Only bank debit payments have a debit authorization."))
        account = session.get(Account, payment.account_id)
        queue_email(kind="authorization_copy", to=[actor.user.email], template="email/authorization_copy.html",
                    language=actor.user.language or account.language,
                    context={"payment": payment, "account": account, "brand_color": account.brand_color,
                             "amount": Money(payment.amount_minor, payment.currency)},
                    account_id=account.id, related=("payment", payment.id),
                    attachments=[{"renderer": "mandate", "payment_id": payment.id,
                                  "filename": f"authorization-{display_id('payment', payment.id)}.pdf"}])
        record_audit(actor, "payment.authorization_copy_sent", object_type="payment", object_id=payment.id)
        return actor.user.email
