"""Manual payments (V3): money an invoice was paid outside Kassa (bank transfer, cash, cheque, other).

No processor is involved, in test or live mode: the merchant records what arrived. The payment is a Payment
like any other (method "manual", source invoice) so the payments index, reports, revenue and exports count it,
and it moves through the same machines: payment processing → succeeded (books a MANUAL ledger entry, which no
payout takes and the balance leaves out) and the invoice → partially paid / paid (invoice_states.apply_payment).
Only a Super admin may change or delete one (each with an audit entry); deleting moves the payment to deleted and
the invoice back (paid → partially paid → open), and books the reversal.

Two records for the same amount at once take turns on the invoice's row lock: the second sees what the first
left due and is refused at its field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from kassa.actor import Actor
from kassa.clock import account_today, local_midnight_utc, now
from kassa.database import lock_one, write_transaction
from kassa.errors import Conflict, Forbidden, NotFound, ValidationFailed
from kassa.extensions import db
from kassa.models import (
    MANUAL_METHOD,
    Account,
    AttemptStatus,
    CheckoutSession,
    Company,
    Contact,
    Invoice,
    ManualMethod,
    Mode,
    Payment,
    PaymentAttempt,
    PaymentSource,
    PaymentStatus,
    Permission,
    Role,
)
from kassa.money import Money, MoneyError, parse_money
from kassa.services.crm.crm import add_timeline, payment_subjects
from kassa.services.money.display_status import refresh_display_status
from kassa.services.money.ledger import book_manual, local_day, manual_entry_count
from kassa.services.payments.invoice_states import PAYABLE, apply_payment, reverse_payment
from kassa.services.payments.payment_states import move_payment
from kassa.services.platform.audit import record_audit
from kassa.timeline_kinds import TimelineKind

MAX_REFERENCE = 120
EARLIEST = date(2000, 1, 1)


@dataclass(frozen=True)
class ManualEntry:
    """What the merchant typed (the form's values, unchecked): checked here, each error at its field."""

    method: str
    day: date | None
    amount: str
    reference: str


def can_change(actor: Actor) -> bool:
    """V3: only a Super admin changes or deletes a manual payment (an API key never)."""
    return actor.user is not None and actor.user.role == Role.SUPER_ADMIN.value


def _check(entry: ManualEntry, currency: str, account: Account, locale: str) -> tuple[ManualMethod, date, Money, str]:
    errors: dict[str, str] = {}
    method = next((m for m in ManualMethod if m.value == entry.method), None)
    if method is None:
        errors["method"] = _("Choose how the payment was made.")
    today = account_today(account)
    if entry.day is None:
        errors["date"] = _("Enter the date the payment arrived, as YYYY-MM-DD.")
    elif entry.day > today:
        errors["date"] = _("Choose a date up to today: a payment can't arrive in the future.")
    elif entry.day < EARLIEST:
        errors["date"] = _("Choose a date from %(year)s on.", year=EARLIEST.year)
    amount = None
    try:
        amount = parse_money(entry.amount or "", currency, locale)
    except MoneyError as exc:
        errors["amount"] = str(exc)
    else:
        if amount.amount_minor <= 0:
            errors["amount"] = _("Enter an amount above zero.")
    reference = (entry.reference or "").replace("\x00", "").strip()
    if len(reference) > MAX_REFERENCE:
        errors["reference"] = _("Use at most %(n)d characters.", n=MAX_REFERENCE)
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors=errors)
    return method, entry.day, amount, reference


def _when(day: date, account: Account) -> datetime:
    """The payment's time: now for today, else midday of that day in the merchant's time zone."""
    if day >= account_today(account):
        return now()
    return local_midnight_utc(day, account.timezone) + timedelta(hours=12)


def _too_much(due: Money, locale: str) -> str:
    return _("Enter at most %(amount)s, what is due on the invoice.", amount=due.format(locale))


def _refuse_while_charging(invoice: Invoice) -> None:
    """A card or bank debit of the invoice on its way could pay it too: wait for it (as a second checkout does)."""
    busy = db.session.scalar(
        select(PaymentAttempt.id).join(CheckoutSession, CheckoutSession.id == PaymentAttempt.checkout_session_id)
        .where(CheckoutSession.invoice_id == invoice.id, PaymentAttempt.status.in_(
            (AttemptStatus.PENDING.value, AttemptStatus.UNKNOWN.value))).limit(1))
    clearing = db.session.scalar(select(Payment.id).where(Payment.invoice_id == invoice.id, Payment.status.in_(
        (PaymentStatus.PROCESSING.value, PaymentStatus.INCOMPLETE.value))).limit(1))
    if busy is not None or clearing is not None:
        raise Conflict(_("A payment of this invoice is being processed right now. Record a manual payment once "
                         "it has succeeded or failed."))


def _owned_invoice(actor: Actor, invoice_id: int) -> Invoice:
    invoice = lock_one(db.session, Invoice, invoice_id)
    if invoice is None or invoice.account_id != actor.account_id or invoice.payment_id is not None:
        raise NotFound(_("Invoice not found."))
    return invoice


def _owned_manual(actor: Actor, payment_id: int) -> Payment:
    payment = lock_one(db.session, Payment, payment_id)
    if payment is None or payment.account_id != actor.account_id:
        raise NotFound(_("Payment not found."))
    if payment.method != MANUAL_METHOD:
        raise Conflict(_("Only a manual payment can be changed or deleted."))
    if payment.status != PaymentStatus.SUCCEEDED.value:
        raise Conflict(_("This manual payment was deleted, so it can't be changed."))
    return payment


def record(actor: Actor, invoice_id: int, entry: ManualEntry, locale: str) -> Payment:
    """V3: record a payment received outside Kassa on an open (or partially paid, or written-off) invoice."""
    if not actor.can(Permission.MANAGE_PAYMENTS):
        raise Forbidden(_("You need the “%(permission)s” permission.", permission=Permission.MANAGE_PAYMENTS.label))
    account = db.session.get(Account, actor.account_id)
    with write_transaction(db.session):
        invoice = _owned_invoice(actor, invoice_id)
        method, day, amount, reference = _check(entry, invoice.currency, account, locale)
        if invoice.status not in PAYABLE or invoice.amount_due_minor <= 0:
            raise Conflict(_("This invoice has nothing left to pay, so no payment can be recorded on it."))
        _refuse_while_charging(invoice)
        if amount.amount_minor > invoice.amount_due_minor:
            due = Money(invoice.amount_due_minor, invoice.currency)
            raise ValidationFailed(_too_much(due, locale), field="amount")
        contact = db.session.get(Contact, invoice.contact_id) if invoice.contact_id else None
        company = db.session.get(Company, invoice.company_id) if invoice.company_id else None
        at = _when(day, account)
        payment = Payment(
            account_id=account.id, mode=Mode.LIVE.value, status=PaymentStatus.PROCESSING.value,
            amount_minor=amount.amount_minor, currency=invoice.currency, method=MANUAL_METHOD,
            manual_method=method.value, manual_reference=reference or None, processor="manual",
            settlement_currency=invoice.currency, exchange_rate="1", fee_minor=0, fee_settlement_minor=0,
            net_settlement_minor=amount.amount_minor, source=PaymentSource.INVOICE.value, invoice_id=invoice.id,
            contact_id=invoice.contact_id, company_id=invoice.company_id,
            buyer_email=contact.email if contact else "", buyer_name=contact.display_name if contact else "",
            buyer_company=company.name if company else "", language=contact.language if contact else account.language,
            created_at=at,
        )
        refresh_display_status(payment)
        db.session.add(payment)
        db.session.flush()
        # The one "payment succeeded" move: receipt number, MANUAL ledger entry, timeline, the invoice paid.
        move_payment(payment, PaymentStatus.SUCCEEDED, at=at)
        record_audit(actor, "payment.manual_recorded", object_type="payment", object_id=payment.id,
                     data={"invoice_id": invoice.id, "amount_minor": amount.amount_minor, "currency": invoice.currency,
                           "method": method.value, "date": day.isoformat(), "reference": reference})
        return payment


def edit(actor: Actor, payment_id: int, entry: ManualEntry, locale: str) -> Payment:
    """V3: a Super admin corrects a manual payment (way, date, amount, reference): the invoice counts the new
    amount instead of the old, and the ledger books the difference."""
    if not can_change(actor):
        raise Forbidden(_("Only a Super admin can change or delete a manual payment."))
    account = db.session.get(Account, actor.account_id)
    with write_transaction(db.session):
        payment = _owned_manual(actor, payment_id)
        invoice = lock_one(db.session, Invoice, payment.invoice_id)
        method, day, amount, reference = _check(entry, payment.currency, account, locale)
        room = invoice.amount_due_minor + payment.amount_minor
        if amount.amount_minor > room:
            raise ValidationFailed(_too_much(Money(room, payment.currency), locale), field="amount")
        before = {"amount_minor": payment.amount_minor, "method": payment.manual_method,
                  "date": payment.created_at.isoformat(), "reference": payment.manual_reference or ""}
        at = now()
        old = payment.amount_minor
        if amount.amount_minor != old:
            reverse_payment(invoice, old, at=at)
            apply_payment(invoice, amount.amount_minor, at=at)
            book_manual(payment, amount.amount_minor - old, f"manual:{payment.id}:{manual_entry_count(payment.id)}",
                        at)
            payment.amount_minor = payment.net_settlement_minor = amount.amount_minor
            payment.gross_minor = payment.net_minor = None
        if day != local_day(account, payment.created_at):
            payment.created_at = payment.succeeded_at = _when(day, account)
        payment.manual_method, payment.manual_reference = method.value, reference or None
        refresh_display_status(payment)
        after = {"amount_minor": payment.amount_minor, "method": payment.manual_method,
                 "date": payment.created_at.isoformat(), "reference": payment.manual_reference or ""}
        add_timeline(payment.account_id, TimelineKind.PAYMENT_EDITED, subjects=payment_subjects(payment),
                     payment_id=payment.id, data={"amount_minor": payment.amount_minor, "currency": payment.currency})
        record_audit(actor, "payment.manual_edited", object_type="payment", object_id=payment.id,
                     data={"invoice_id": invoice.id, "before": before, "after": after})
        return payment


def local_date(payment: Payment, account: Account) -> date:
    """The day the manual payment arrived, in the merchant's time zone (what the form shows)."""
    return local_day(account, payment.created_at)


def delete(actor: Actor, payment_id: int) -> Payment:
    """V3: a Super admin deletes a manual payment recorded by mistake: it stays listed as deleted (the audit trail,
    the receipt series), its ledger entries are reversed and its invoice owes the amount again."""
    if not can_change(actor):
        raise Forbidden(_("Only a Super admin can change or delete a manual payment."))
    with write_transaction(db.session):
        payment = _owned_manual(actor, payment_id)
        move_payment(payment, PaymentStatus.DELETED, at=now())
        record_audit(actor, "payment.manual_deleted", object_type="payment", object_id=payment.id,
                     data={"invoice_id": payment.invoice_id, "amount_minor": payment.amount_minor,
                           "currency": payment.currency, "method": payment.manual_method,
                           "reference": payment.manual_reference or ""})
        return payment
