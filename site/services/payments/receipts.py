"""Receipts (E2–E4): the branded PDF of a payment, and the email that carries it in the buyer's language."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from kassa.actor import Actor
from kassa.database import write_transaction
from kassa.display_ids import display_id
from kassa.errors import Forbidden, NotFound, TooManyRequests, ValidationFailed
from kassa.extensions import db
from kassa.models import (
    Account,
    BillingFrequency,
    EmailMessage,
    Invoice,
    Mode,
    Payment,
    Permission,
    Subscription,
)
from kassa.money import Money
from kassa.order_summary import (
    BuyerChoices,
    OrderSummary,
    build_order_summary,
    discount_label,
    group_sentence,
    line_recurrence,
    promo_note,
    reverse_charge_note,
    tax_label,
)
from kassa.renderers.receipt import (
    CONTENT_TYPE,
    ReceiptData,
    ReceiptLine,
    receipt_filename,
    receipt_html,
    receipt_pdf,
)
from kassa.services.accounts.accounts import logo_dir
from kassa.services.accounts.emails import normalize_email
from kassa.services.accounts.portal_tokens import portal_url
from kassa.services.crm.crm import add_timeline, payment_subjects
from kassa.services.payments.mandates import mandate_of, pre_notification
from kassa.services.platform import throttle
from kassa.services.platform.audit import record_audit
from kassa.services.platform.mail import queue_email
from kassa.tax import TaxBreakdownRow, TaxContext, TaxRateSpec
from kassa.template_helpers import card_brand_name
from kassa.timefmt import DATE, format_when
from kassa.timeline_kinds import TimelineKind

log = logging.getLogger(__name__)


def receipt_number(payment: Payment) -> str:
    return (display_id("receipt", payment.receipt_number) if payment.receipt_number
            else display_id("payment", payment.id))


def method_label(payment: Payment) -> str:
    """ "Visa •••• 4242" or "Bank account •••• 6789" (translated)."""
    if payment.method == "ach":
        return _("Bank account •••• %(last4)s", last4=payment.bank_last4 or "")
    if payment.method == "sepa":
        return _("SEPA Direct Debit •••• %(last4)s", last4=payment.bank_last4 or "")
    return f"{card_brand_name(payment.card_brand) or _('Card')} •••• {payment.card_last4 or ''}"


def format_address(address: dict[str, str] | None) -> str | None:
    if not address:
        return None
    city_line = " ".join(part for part in (address.get("postal_code"), address.get("city")) if part)
    lines = [address.get("line1"), address.get("line2"), city_line, address.get("state"), address.get("country")]
    return "\n".join(line for line in lines if line)


def payment_summary(payment: Payment) -> OrderSummary:
    """A payment's lines as charged (Q1: each with the discount it was charged with): the confirmation page,
    receipt and payment panel show this, priced by the one pricing function."""
    # Q2: each item keeps its promo share (`promo_minor`); the code names the summary's promo row.
    choices = BuyerChoices(promo_code=payment.promo_code or "")
    # Q6: the rate it was taxed at, for the buyer's country ("XX": the rate's "every country"), as charged
    if payment.tax_details is None:
        return build_order_summary(payment.items, payment.currency, choices)
    breakdown = [TaxBreakdownRow.from_stored(row) for row in payment.tax_details.get("breakdown") or ()]
    context = TaxContext(rates=tuple(TaxRateSpec(id=0, name=row.name, percentage_bp=row.percentage_bp,
                                                 inclusive=row.inclusive) for row in breakdown[:1]))
    summary = build_order_summary(payment.items, payment.currency,
                                  replace(choices, country=payment.buyer_country or "XX",
                                          vat_id=payment.buyer_vat_id), context)
    return replace(summary, reverse_charge=payment.reverse_charge)


def receipt_answers(payment: Payment) -> tuple[tuple[str, str], ...]:
    """Q8: the custom-field answers the merchant chose to show on the receipt, as (label, value)."""
    return tuple((a["label"], a["value"]) for a in payment.custom_fields or [] if a.get("receipt"))


def subscription_facts(payment: Payment, account: Account, *, create: bool = False) -> dict[str, Any]:
    """Q11: what the confirmation page, receipt email and PDF say about what recurs: the subscription, its next
    charge and the buyer's portal link (where they manage it)."""
    sub = db.session.get(Subscription, payment.subscription_id) if payment.subscription_id else None
    return {"subscription": sub, "next_charge_at": sub.next_charge_at if sub is not None else None,
            "portal_url": portal_url(account, payment.buyer_email, create=create)}


def receipt_data(payment: Payment) -> Any:
    """Everything the PDF shows, in the buyer's language, from the payment's own frozen copy."""
    account = db.session.get(Account, payment.account_id)
    language = payment.language
    with force_locale(language):
        summary = payment_summary(payment)
        lines = tuple(
            ReceiptLine(name=line.name, description=line.description, quantity=line.quantity,
                        unit_amount=line.unit_amount, amount=line.gross or line.amount,
                        recurrence=line_recurrence(line), discount=line.discount if line.has_discount else None,
                        discount_label=discount_label(line) if line.has_discount else None)
            for line in summary.lines
        )
        notes = [group_sentence(group, language) for group in summary.groups]
        if promo_note(summary):
            notes.append(promo_note(summary))
        facts = subscription_facts(payment, account)
        if facts["next_charge_at"] is not None:
            notes.append(_("Next charge: %(date)s.", date=format_when(facts["next_charge_at"], DATE,
                                                                       locale=language, timezone=account.timezone)))
        if facts["portal_url"]:
            notes.append(_("See your payments and manage subscriptions: %(url)s", url=facts["portal_url"]))
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
            subtotal=Money(payment.gross_amount_minor, payment.currency),
            discount=Money(payment.discount_minor, payment.currency) if payment.discount_minor else None,
            promo_code=payment.promo_code,
            promo=Money(payment.promo_discount_minor, payment.currency) if payment.promo_code else None,
            payment_method=method_label(payment),
            test_mode=payment.is_test,
            recurring_note=" ".join(notes) or None,
            pre_notification=pre_notification(payment, mandate_of(payment.id), language),
            custom_fields=receipt_answers(payment),
            merchant_vat_number=account.vat_number or "", buyer_vat_id=payment.buyer_vat_id or "",
            tax_rows=tuple((tax_label(row), summary.money(row.tax_minor), summary.money(row.taxable_minor))
                           for row in summary.tax_breakdown),
            reverse_charge_note=reverse_charge_note() if payment.reverse_charge else None,
        )


def render_payment_receipt(payment: Payment, *, before_render: Callable[[], None] | None = None
                           ) -> tuple[str, str, bytes]:
    """(filename, content type, PDF) of a payment's receipt. H7: a rendered PDF is kept on disk, keyed by the
    payment and a hash of the HTML it was made from, so repeat downloads and emails don't render it again,
    and any change it would show (branding, logo, language, merchant details) makes a new one.
    `before_render` runs only when the PDF must really be rendered (a rate limit raises there)."""
    data = receipt_data(payment)
    html = receipt_html(data)
    folder = Path(current_app.config["KASSA_RECEIPT_CACHE_DIR"])
    cached = folder / f"{payment.id}-{hashlib.sha256(html.encode()).hexdigest()[:40]}.pdf"
    filename = receipt_filename(data.number)
    try:
        return filename, CONTENT_TYPE, cached.read_bytes()
    except FileNotFoundError:
        pass
    if before_render is not None:
        before_render()
    pdf = receipt_pdf(html)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{payment.id}-*.pdf"):  # an older branding or language of this receipt
        stale.unlink(missing_ok=True)
    # Written whole, then renamed: a reader in another process never sees half a file.
    partial = cached.with_suffix(f".{secrets.token_hex(4)}.part")
    partial.write_bytes(pdf)
    os.replace(partial, cached)
    return filename, CONTENT_TYPE, pdf


def _limit(name: str) -> str:
    return current_app.config[name]


def public_receipt_pdf(payment: Payment, *, ip: str | None) -> tuple[str, str, bytes]:
    """H7: the receipt a buyer downloads from the checkout. Renders (not cached copies) are limited per link
    and per client address: each takes a second or two of the one PDF renderer everyone shares."""
    rules = (
        (_limit("KASSA_RECEIPT_RENDER_LINK_LIMIT"), ("receipt-render", "link", str(payment.link_id))),
        (_limit("KASSA_RECEIPT_RENDER_IP_LIMIT"), ("receipt-render", "ip", ip or "-")),
    )

    def count_render() -> None:
        if not throttle.allow(*rules):
            minutes = -(-throttle.retry_after(*rules) // 60)
            raise TooManyRequests(_("Too many receipts are being downloaded right now. Try again in %(minutes)d "
                                    "min.", minutes=minutes))

    return render_payment_receipt(payment, before_render=count_render)


def receipt_attachment(spec: dict[str, Any]) -> tuple[str, str, bytes]:
    return render_payment_receipt(db.session.get(Payment, spec["payment_id"]))


def queue_checkout_receipt(payment: Payment, *, invoice=None) -> bool:
    """E2: the receipt of a payment made at a checkout. H7: in test mode the emails are limited per link and
    per client address, because a test checkout emails any address it's given in the merchant's name; a
    test payment over the limit still succeeds, without the email. A live receipt always goes: every one is
    a real charge. Call inside a write; returns whether the email was queued."""
    if payment.mode == Mode.TEST.value and not throttle.allow(
        (_limit("KASSA_TEST_RECEIPT_LINK_LIMIT"), ("receipt-mail", "link", str(payment.link_id))),
        (_limit("KASSA_TEST_RECEIPT_IP_LIMIT"), ("receipt-mail", "ip", payment.ip or "-")),
    ):
        log.warning("test receipt of payment %s not emailed: link %s or address over its limit", payment.id,
                    payment.link_id)
        return False
    queue_receipt(payment, invoice=invoice)
    return True


def receipt_emailed(payment: Payment) -> bool:
    """Whether the buyer's receipt email was queued (H7: a test receipt over its limit is not), so the
    confirmation page never claims an email that was not sent."""
    return db.session.scalar(select(EmailMessage.id).where(
        EmailMessage.account_id == payment.account_id, EmailMessage.kind == "receipt",
        EmailMessage.related_type == "payment", EmailMessage.related_id == payment.id).limit(1)) is not None


def queue_receipt(payment: Payment, *, to: list[str] | None = None, kind: str = "receipt", invoice=None) -> None:
    """E2: email the receipt (PDF attached, and the invoice when there is one: E4) to the buyer, in their
    language. Call inside a write."""
    account = db.session.get(Account, payment.account_id)
    attachments = [{"renderer": "receipt", "payment_id": payment.id,
                    "filename": f"receipt-{receipt_number(payment)}.pdf"}]
    if invoice is None and payment.invoice_id is not None:
        invoice = db.session.get(Invoice, payment.invoice_id)  # V2: the merchant's invoice it paid
    if invoice is None:
        invoice = db.session.scalar(select(Invoice).where(Invoice.payment_id == payment.id))
    if invoice is not None:
        attachments.append({"renderer": "invoice", "invoice_id": invoice.id,
                            "filename": f"invoice-{display_id('invoice', invoice.number)}.pdf"})
    queue_email(
        kind=kind,
        to=to or [payment.buyer_email],
        template="email/receipt.html",
        language=payment.language,
        context={**subscription_facts(payment, account, create=True),
                 "payment": payment, "account": account, "number": receipt_number(payment),
                 "amount": Money(payment.amount_minor, payment.currency), "method": method_label(payment),
                 "brand_color": account.brand_color, "lines": (summary := payment_summary(payment)).lines,
                 "summary": summary,
                 "answers": receipt_answers(payment),
                 "promo": Money(payment.promo_discount_minor, payment.currency) if payment.promo_code else None,
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
        _count_send(actor, payment.id)
        queue_receipt(chosen, to=recipients, kind="receipt_resent")
        add_timeline(payment.account_id, TimelineKind.RECEIPT_SENT, subjects=payment_subjects(payment), payment_id=payment.id,
                     data={"to": recipients, "receipt": receipt_number(chosen)}, actor_id=actor.user_id)
        record_audit(actor, "payment.receipt_sent", object_type="payment", object_id=payment.id,
                     data={"to": recipients, "receipt_payment_id": chosen.id})
        return recipients


def _count_send(actor: Actor, payment_id: int) -> None:
    """H13: Send receipt emails whatever addresses are typed, in the merchant's name; sends are limited per
    user and per payment so a signed-in account can't be turned into a mail cannon."""
    rules = (
        (_limit("KASSA_SEND_RECEIPT_USER_LIMIT"), ("send-receipt", "user", str(actor.user_id))),
        (_limit("KASSA_SEND_RECEIPT_PAYMENT_LIMIT"), ("send-receipt", "payment", str(payment_id))),
    )
    if not throttle.allow(*rules):
        minutes = -(-throttle.retry_after(*rules) // 60)
        raise TooManyRequests(_("This receipt has been sent too often. Try again in %(minutes)d min.",
                                minutes=minutes))
