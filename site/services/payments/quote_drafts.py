"""V4: quotes a merchant writes. The editor's working copy and its validation are the invoice editor's
(invoice_drafts: the same line items, product library and Q1 discounts), with two things more: a line may recur
(its billing frequency, as a link's item), and the quote has an expiry date, an optional deal and the deal stage
the deal moves to when the buyer accepts.

Only a draft can be edited (quote_states.EDITABLE). Finalizing gives it its number from the account's quote series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from kassa.actor import Actor
from kassa.clock import account_today, now
from kassa.database import lock_one, write_transaction
from kassa.errors import Conflict, NotFound, ValidationFailed
from kassa.extensions import db
from kassa.forms import parse_date
from kassa.models import (
    Account,
    BillingFrequency,
    CheckoutSession,
    Deal,
    Payment,
    PaymentStatus,
    Product,
    Quote,
    QuoteLine,
    QuoteStatus,
    Stage,
)
from kassa.services.links.products import MAX_AMOUNT_MINOR
from kassa.services.payments import invoice_drafts
from kassa.services.payments.documents import attempt_in_flight
from kassa.services.payments.invoice_drafts import CheckedLine, LineDraft
from kassa.services.payments.quote_states import EDITABLE, move_quote
from kassa.services.platform.audit import record_audit

DEFAULT_EXPIRY_DAYS = 30
MAX_EXPIRY_DAYS = 366
FREQUENCIES = [f.value for f in BillingFrequency]


@dataclass
class QuoteLineDraft(LineDraft):
    frequency: str = BillingFrequency.ONE_TIME.value  # V4: a line may recur, as a link's item


@dataclass
class QuoteDraft:
    customer_email: str = ""
    customer_name: str = ""
    company_name: str = ""
    language: str = "en"
    currency: str = "USD"
    issue_date: str = ""
    expiry_date: str = ""
    notes: str = ""
    terms: str = ""
    deal_id: int | None = None
    accept_stage_id: int | None = None
    lines: list[QuoteLineDraft] = field(default_factory=list)


# -- the editor's buttons ----------------------------------------------------------------------------


def new_draft(account: Account) -> QuoteDraft:
    today = account_today(account)
    return QuoteDraft(**invoice_drafts.new_draft_fields(account, today),
                      expiry_date=(today + timedelta(days=DEFAULT_EXPIRY_DAYS)).isoformat(), lines=[QuoteLineDraft()])


def draft_from_quote(quote: Quote, locale: str) -> QuoteDraft:
    return QuoteDraft(
        **invoice_drafts.customer_fields(quote),
        currency=quote.currency, issue_date=quote.issue_date.isoformat() if quote.issue_date else "",
        expiry_date=quote.expiry_date.isoformat() if quote.expiry_date else "", notes=quote.notes, terms=quote.terms,
        deal_id=quote.deal_id, accept_stage_id=quote.accept_stage_id,
        lines=[QuoteLineDraft(**invoice_drafts.line_fields(line, quote.currency, locale), frequency=line.frequency)
               for line in quote.lines],
    )


# The editor's buttons are the invoice editor's, with a quote's line (one-time until its frequency is chosen).


def add_line(draft: QuoteDraft) -> QuoteDraft:
    return invoice_drafts.add_line(draft, QuoteLineDraft)


remove_line = invoice_drafts.remove_line


def add_products(draft: QuoteDraft, products: list[Product], locale: str) -> QuoteDraft:
    """The product library, as the invoice editor's: a product's price, in the quote's currency only."""
    return invoice_drafts.add_products(draft, products, locale, QuoteLineDraft)


# -- validation --------------------------------------------------------------------------------------


def validate(draft: QuoteDraft, account: Account, locale: str) -> tuple[dict, list[tuple[CheckedLine, str]]]:
    """Everything the editor posted, checked (the invoice editor's checks for customer, currency and lines);
    ValidationFailed with every problem at its field."""
    errors: dict[str, str] = {}
    # The invoice's checks of the customer, currency, text and lines (its dates are replaced below).
    as_invoice = invoice_drafts.InvoiceDraft(
        customer_email=draft.customer_email, customer_name=draft.customer_name, company_name=draft.company_name,
        language=draft.language, currency=draft.currency, issue_date=draft.issue_date, due_date=draft.issue_date,
        notes=draft.notes, terms=draft.terms, lines=list(draft.lines))
    values: dict = {}
    try:
        values, checked = invoice_drafts.validate(as_invoice, account, locale)
    except ValidationFailed as exc:
        errors.update(exc.errors)
        checked = []
    errors.pop("due_date", None)
    for i, line in enumerate(draft.lines):
        if line.frequency not in FREQUENCIES:
            errors[f"lines-{i}-frequency"] = _("Choose how often this line is billed.")
    issue = parse_date(draft.issue_date)
    expiry = parse_date(draft.expiry_date)
    if expiry is None:
        errors["expiry_date"] = _("Enter a date like 2026-12-31.")
    elif issue is not None and expiry < issue:
        errors["expiry_date"] = _("The expiry date can't be before the issue date.")
    elif issue is not None and expiry > issue + timedelta(days=MAX_EXPIRY_DAYS):
        errors["expiry_date"] = _("Choose an expiry date within a year of the issue date.")
    deal = None
    if draft.deal_id is not None:
        deal = db.session.get(Deal, draft.deal_id)
        if deal is None or deal.account_id != account.id:
            errors["deal_id"] = _("Choose one of your deals.")
            deal = None
    if draft.accept_stage_id is not None:
        stage = db.session.get(Stage, draft.accept_stage_id)
        if deal is None and "deal_id" not in errors:
            errors["accept_stage_id"] = _("Choose a deal first, or leave the stage empty.")
        elif stage is None or stage.account_id != account.id or (deal is not None and
                                                                 stage.pipeline_id != deal.pipeline_id):
            errors["accept_stage_id"] = _("Choose a stage of the deal's pipeline.")
    if errors:
        raise ValidationFailed(_("Check the highlighted fields."), errors=errors)
    values.update(expiry_date=expiry)
    return values, list(zip(checked, (line.frequency for line in draft.lines), strict=True))


# -- saving and moving -------------------------------------------------------------------------------


def owned(actor: Actor, quote_id: int, *, lock: bool = False) -> Quote:
    quote = lock_one(db.session, Quote, quote_id) if lock else db.session.get(Quote, quote_id)
    if quote is None or quote.account_id != actor.account_id:
        raise NotFound(_("Quote not found."))
    return quote


def save_draft(actor: Actor, quote_id: int | None, draft: QuoteDraft, locale: str) -> Quote:
    """Create a draft, or replace a draft's contents. Conflict when it is no longer a draft: nothing changes."""
    account = db.session.get(Account, actor.account_id)
    values, lines = validate(draft, account, locale)
    total = sum(line.amount_minor for line, _frequency in lines)
    if total > MAX_AMOUNT_MINOR:
        raise ValidationFailed(_("Check the highlighted fields."), errors={"lines": _("The amount is too large")})
    with write_transaction(db.session) as session:
        if quote_id is None:
            quote = Quote(account_id=account.id, status=QuoteStatus.DRAFT.value, currency=values["currency"])
            session.add(quote)
        else:
            quote = owned(actor, quote_id, lock=True)
            if quote.status not in EDITABLE:
                raise Conflict(_("This quote was sent, so it can't be edited. Void it and write a new one instead."))
        contact, company = invoice_drafts.save_customer(account.id, values["email"], draft)
        quote.contact_id, quote.company_id = contact.id, company.id if company else None
        quote.currency = values["currency"]
        quote.issue_date, quote.expiry_date = values["issue_date"], values["expiry_date"]
        quote.notes, quote.terms = draft.notes.strip(), draft.terms.strip()
        quote.deal_id, quote.accept_stage_id = draft.deal_id, draft.accept_stage_id
        quote.amount_minor = total
        quote.lines = [QuoteLine(position=i, description=line.description, quantity=line.quantity,
                                 unit_amount_minor=line.unit_amount_minor, frequency=frequency,
                                 product_id=line.product_id, discount_type=line.discount_type,
                                 discount_value=line.discount_value, amount_minor=line.amount_minor)
                       for i, (line, frequency) in enumerate(lines)]
        session.flush()
        record_audit(actor, "quote.created" if quote_id is None else "quote.updated", object_type="quote",
                     object_id=quote.id, amount_after_minor=quote.amount_minor, currency=quote.currency)
        return quote


def finalize(actor: Actor, quote_id: int) -> Quote:
    """Draft → open: the next number of the account's quote series (gap-free: the R5 counter)."""
    with write_transaction(db.session):
        quote = owned(actor, quote_id, lock=True)
        if quote.status == QuoteStatus.DRAFT.value and not quote.lines:
            raise Conflict(_("Add at least one line before finalizing."))
        if move_quote(quote, QuoteStatus.OPEN, at=now()):
            record_audit(actor, "quote.finalized", object_type="quote", object_id=quote.id,
                         amount_after_minor=quote.amount_minor, currency=quote.currency, data={"number": quote.number})
        return quote


def void(actor: Actor, quote_id: int) -> Quote:
    """Open or accepted → void. Conflict while a payment of it is on its way (a bank debit clearing, a charge with
    the processor right now): it may yet pay the quote, and a void quote is never paid (payment_states)."""
    with write_transaction(db.session):
        quote = owned(actor, quote_id, lock=True)
        if quote.status not in (QuoteStatus.OPEN.value, QuoteStatus.ACCEPTED.value):
            raise Conflict(_("Only a sent or accepted quote that isn't paid can be voided."))
        if _payment_on_its_way(quote.id):
            raise Conflict(_("A payment of this quote is still being processed. Void it once that payment has "
                             "failed."))
        move_quote(quote, QuoteStatus.VOID, at=now())
        record_audit(actor, "quote.voided", object_type="quote", object_id=quote.id, data={"number": quote.number})
        return quote


def _payment_on_its_way(quote_id: int) -> bool:
    """A payment of the quote's checkouts still clearing (or waiting for 3-D Secure), or an attempt of them with the
    processor right now (checkout's hold_quote refuses a second payment for the same reasons)."""
    clearing = select(Payment.id).join(CheckoutSession, CheckoutSession.id == Payment.checkout_session_id).where(
        CheckoutSession.quote_id == quote_id,
        Payment.status.in_((PaymentStatus.PROCESSING.value, PaymentStatus.INCOMPLETE.value)))
    return (db.session.scalar(clearing.limit(1)) is not None
            or attempt_in_flight(db.session, CheckoutSession.quote_id, quote_id))


def delete_draft(actor: Actor, quote_id: int) -> None:
    with write_transaction(db.session) as session:
        quote = owned(actor, quote_id)
        if quote.status not in EDITABLE:
            raise Conflict(_("Only a draft can be deleted. Void the quote instead."))
        session.delete(quote)
        record_audit(actor, "quote.deleted", object_type="quote", object_id=quote_id)


def deals_for(account_id: int) -> list[Deal]:
    """The deals a quote can belong to (newest first, the editor's menu)."""
    return list(db.session.scalars(select(Deal).where(Deal.account_id == account_id, Deal.mode == "live")
                                   .order_by(Deal.id.desc()).limit(200)))


def status_label(quote: Quote, today: date) -> tuple[str, str]:
    """The list's and the page's badge: (label, tone). Expired is read from the expiry date, never stored."""
    if quote.is_expired(today):
        return _("Expired"), "warning"
    return {
        QuoteStatus.DRAFT.value: (_("Draft"), "neutral"),
        QuoteStatus.OPEN.value: (_("Open"), "info"),
        QuoteStatus.ACCEPTED.value: (_("Accepted"), "info"),
        QuoteStatus.PAID.value: (_("Paid"), "success"),
        QuoteStatus.DECLINED.value: (_("Declined"), "neutral"),
        QuoteStatus.VOID.value: (_("Void"), "neutral"),
    }.get(quote.status, (quote.status, "neutral"))
