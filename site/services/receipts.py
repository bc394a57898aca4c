"""Receipts (E2–E4): the branded PDF of a payment, and the email that carries it in the buyer's language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask_babel import force_locale
from flask_babel import gettext as _

from kassa.extensions import db
from kassa.models import Account, BillingFrequency, Payment
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


def queue_receipt(payment: Payment, *, to: list[str] | None = None, kind: str = "receipt") -> None:
    """E2: email the receipt (PDF attached) to the buyer, in their language. Call inside a write."""
    account = db.session.get(Account, payment.account_id)
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
        attachments=[{"renderer": "receipt", "payment_id": payment.id,
                      "filename": f"receipt-{receipt_number(payment)}.pdf"}],
        related=("payment", payment.id),
    )
