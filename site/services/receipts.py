"""Receipts (E2–E4): the branded PDF of a payment, and the email that carries it in the buyer's language."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from kassa.actor import Actor
from kassa.database import write_transaction
from kassa.errors import Forbidden, NotFound, ValidationFailed
from kassa.extensions import db
from kassa.models import Account, BillingFrequency, Payment, Permission
from kassa.money import Money
from kassa.order_summary import build_order_summary, group_sentence, line_recurrence
from kassa.services.accounts import logo_dir
from kassa.services.mail import queue_email, register_attachment
from kassa.template_helpers import card_brand_name


def receipt_number(payment: Payment) -> str:
    return f"R-{payment.receipt_number:06d}" if payment.receipt_number else f"P-{payment.id:06d}"


def method_label(payment: Payment) -> str:
    """ "Visa •••• 4242" or "Bank account •••• 6789" (translated)."""
    if payment.method == "ach":
        return _("Bank account •••• %(last4)s", last4=payment.bank_last4 or "")
    return f"{card_brand_name(payment.card_brand) or _('Card')} •••• {payment.card_last4 or ''}"


def format_address(address: dict[str, str] | None) -> str | None:
    if not address:
        return None
    city_line = " ".join(part for part in (address.get("postal_code"), address.get("city")) if part)
    lines = [address.get("line1"), address.get("line2"), city_line, address.get("state"), address.get("country")]
    return "\n".join(line for line in lines if line)


def receipt_data(payment: Payment) -> Any:
    """Everything the PDF shows, in the buyer's language, from the payment's own frozen copy."""
    from kassa.renderers.receipt import ReceiptData, ReceiptLine

    account = db.session.get(Account, payment.account_id)
    language = payment.language
    with force_locale(language):
        summary = build_order_summary(payment.items, payment.currency)
        lines = tuple(
            ReceiptLine(name=line.name, description=line.description, quantity=line.quantity,
                        unit_amount=line.unit_amount, amount=line.amount, recurrence=line_recurrence(line))
            for line in summary.lines
        )
        notes = [group_sentence(group, language) for group in summary.groups]
        logo = Path(logo_dir()) / account.logo_path if account.logo_path else None
        return ReceiptData(
            number=receipt_number(payment),
            issued_at=payment.succeeded_at or payment.created_at,
            timezone=account.timezone,
            language=language,
            merchant_name=account.name,
            merchant_address=account.address or "",
            merchant_email=account.support_email or "",
            brand_color=account.brand_color,
            logo_file=logo if logo and logo.exists() else None,
            buyer_email=payment.buyer_email,
            buyer_name=payment.buyer_name,
            billing_address=format_address(payment.billing_address),
            lines=lines,
            total=Money(payment.amount_minor, payment.currency),
            amount_paid=Money(payment.amount_minor, payment.currency),
            payment_method=method_label(payment),
            test_mode=payment.is_test,
            recurring_note=" ".join(notes) or None,
        )


def render_payment_receipt(payment: Payment) -> tuple[str, str, bytes]:
    from kassa.renderers.receipt import render_receipt

    return render_receipt(receipt_data(payment))


@register_attachment("receipt")
def _receipt_attachment(spec: dict[str, Any]) -> tuple[str, str, bytes]:
    return render_payment_receipt(db.session.get(Payment, spec["payment_id"]))


def queue_receipt(payment: Payment, *, to: list[str] | None = None, kind: str = "receipt", invoice=None) -> None:
    """E2: email the receipt (PDF attached, and the invoice when there is one: E4) to the buyer, in their
    language. Call inside a write."""
    account = db.session.get(Account, payment.account_id)
    attachments = [{"renderer": "receipt", "payment_id": payment.id,
                    "filename": f"receipt-{receipt_number(payment)}.pdf"}]
    if invoice is None:
        from kassa.models import Invoice

        invoice = db.session.scalar(select(Invoice).where(Invoice.payment_id == payment.id))
    if invoice is not None:
        attachments.append({"renderer": "invoice", "invoice_id": invoice.id,
                            "filename": f"invoice-INV-{invoice.number:06d}.pdf"})
    queue_email(
        kind=kind,
        to=to or [payment.buyer_email],
        template="email/receipt.html",
        language=payment.language,
        context={"payment": payment, "account": account, "number": receipt_number(payment),
                 "amount": Money(payment.amount_minor, payment.currency), "method": method_label(payment),
                 "brand_color": account.brand_color, "items": payment.items,
                 "is_recurring": any(BillingFrequency(i.frequency).is_recurring for i in payment.items)},
        account_id=payment.account_id,
        attachments=attachments,
        related=("payment", payment.id),
    )


MAX_RECIPIENTS = 10


def receipt_choices(payment: Payment) -> list[Payment]:
    """E5: the payment's own receipt, or for a subscription any of its charges' receipts."""
    if payment.subscription_id is None:
        return [payment]
    charges = db.session.scalars(
        select(Payment).where(Payment.account_id == payment.account_id,
                              Payment.subscription_id == payment.subscription_id,
                              Payment.receipt_number.is_not(None))
        .order_by(Payment.created_at.desc()).limit(200)
    ).all()
    return list(charges) or [payment]


def parse_recipients(text: str) -> list[str]:
    from kassa.services.users import normalize_email

    parts = [p for p in re.split(r"[\s,;]+", text or "") if p]
    if not parts:
        raise ValidationFailed(_("Enter at least one email address."), field="recipients")
    if len(parts) > MAX_RECIPIENTS:
        raise ValidationFailed(_("Send to at most %(n)d addresses at once.", n=MAX_RECIPIENTS), field="recipients")
    addresses = []
    for part in parts:
        try:
            addresses.append(normalize_email(part, field="recipients"))
        except ValidationFailed:
            raise ValidationFailed(_("“%(address)s” is not a valid email address.", address=part[:100]),
                                   field="recipients") from None
    return list(dict.fromkeys(addresses))


def send_receipt(actor: Actor, payment_id: int, receipt_payment_id: int, recipients_text: str) -> list[str]:
    """E5: Actions → Send receipt, to the buyer's address or others the merchant types."""
    from kassa.services.audit import record_audit
    from kassa.services.crm import add_timeline
    from kassa.services.payment_states import payment_subjects

    if actor.user is None or not actor.user.can(Permission.MANAGE_PAYMENTS):
        raise Forbidden(_("You need the “%(permission)s” permission.", permission=Permission.MANAGE_PAYMENTS.label))
    recipients = parse_recipients(recipients_text)
    with write_transaction(db.session) as session:
        payment = session.get(Payment, payment_id)
        if payment is None or payment.account_id != actor.account_id:
            raise NotFound(_("Payment not found."))
        chosen = next((p for p in receipt_choices(payment) if p.id == receipt_payment_id), None)
        if chosen is None:
            raise ValidationFailed(_("Choose one of this payment's receipts."), field="receipt")
        if chosen.receipt_number is None:
            raise ValidationFailed(_("This payment has no receipt yet: it hasn't succeeded."), field="receipt")
        queue_receipt(chosen, to=recipients, kind="receipt_resent")
        add_timeline(payment.account_id, "receipt.sent", subjects=payment_subjects(payment), payment_id=payment.id,
                     data={"to": recipients, "receipt": receipt_number(chosen)}, actor_id=actor.user_id)
        record_audit(actor, "payment.receipt_sent", object_type="payment", object_id=payment.id,
                     data={"to": recipients, "receipt_payment_id": chosen.id})
        return recipients
