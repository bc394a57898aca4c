"""The bank-debit authorization the buyer accepts — ACH, or a SEPA Core mandate (Q10) —; the same words are shown and
stored (E6), with the version of the wording. A SEPA debit also gets its mandate reference and the pre-notification
(amount, date of debit, mandate reference, creditor) the buyer must have before the debit."""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from kassa.actor import Actor
from kassa.business_days import add_business_days
from kassa.database import write_transaction
from kassa.display_ids import display_id
from kassa.errors import Conflict, Forbidden, NotFound
from kassa.extensions import db
from kassa.models import Account, Mandate, Payment, Permission
from kassa.money import Money
from kassa.processors.sandbox import SETTLEMENT_BUSINESS_DAYS
from kassa.renderers import STATIC_DIR, render_pdf
from kassa.services.platform.audit import record_audit
from kassa.services.platform.mail import queue_email
from kassa.timefmt import DATE, format_when

# The wording each scheme's buyers accept; a new wording gets a new version (kept on every Mandate).
MANDATE_TEXT_VERSIONS = {"ach": "ach-1", "sepa": "sepa-core-1"}


def mandate_text(account_id: int, amount_minor: int, currency: str, language: str, method: str = "ach") -> str:
    account = db.session.get(Account, account_id)
    if method == "sepa":
        with force_locale(language):
            return _(
                "SEPA Core Direct Debit mandate. By accepting this mandate, you authorise (A) %(merchant)s to send "
                "instructions to your bank to debit your account with %(amount)s, once, for this purchase, and (B) "
                "your bank to debit your account in accordance with those instructions. As part of your rights, you "
                "are entitled to a refund from your bank under the terms and conditions of your agreement with your "
                "bank. A refund must be claimed within 8 weeks starting from the date on which your account was "
                "debited. Your rights are explained in a statement that you can obtain from your bank.",
                merchant=account.name,
                amount=Money(amount_minor, currency).format(language),
            )
    with force_locale(language):
        return _(
            "By accepting, you authorize %(merchant)s to debit %(amount)s from the bank account you entered, "
            "once, for this purchase, and your bank to process that debit. You can cancel this authorization by "
            "contacting %(merchant)s before the debit is made; you are entitled to a refund from your bank under "
            "the terms of your agreement with it.",
            merchant=account.name,
            amount=Money(amount_minor, currency).format(language),
        )


def mandate_reference(payment_id: int) -> str:
    """The SEPA mandate reference (unique per creditor, at most 35 of A–Z, 0–9 and "-"): "KASSA-P-000042"."""
    return f"KASSA-{display_id('payment', payment_id)}"


def expected_debit_date(account: Account, submitted_at: datetime, method: str) -> date:
    """The business day the processor debits the buyer's account: the sandbox's clearing days after submission
    (Stripe's SEPA debits take the same 5 business days), in the account's country."""
    return add_business_days(submitted_at.date(), SETTLEMENT_BUSINESS_DAYS[method], account.country)


def pre_notification(payment: Payment, mandate: Mandate | None, language: str) -> str | None:
    """Q10: the SEPA pre-notification — amount, date of debit, mandate reference, creditor — in ``language``; None
    for anything but a SEPA debit with its mandate."""
    if payment.method != "sepa" or mandate is None:
        return None
    account = db.session.get(Account, payment.account_id)
    debit_on = expected_debit_date(account, payment.created_at, payment.method)
    with force_locale(language):
        return _(
            "SEPA Direct Debit pre-notification: %(creditor)s will debit %(amount)s from your account (IBAN ending "
            "in %(last4)s) on %(date)s, under mandate reference %(reference)s.",
            creditor=account.name, amount=Money(payment.amount_minor, payment.currency).format(language),
            last4=payment.bank_last4 or "", date=format_when(debit_on, DATE, locale=language, timezone=account.timezone), reference=mandate.reference,
        )


def mandate_of(payment_id: int) -> Mandate | None:
    return db.session.scalar(select(Mandate).where(Mandate.payment_id == payment_id))


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
