"""V1: invoices a merchant writes. The editor's working copy (read from the submitted form, edited by its buttons
like the link editor's line items), its validation, and the moves: save a draft, finalize, void.

Only a draft can be edited (invoice_states.EDITABLE): an open invoice was sent with its number and amount, so a
change is a new invoice (void and write again), as in Stripe and Invoice Ninja.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from babel.numbers import format_decimal
from flask_babel import gettext as _
from sqlalchemy import select

from kassa.actor import Actor
from kassa.clock import account_today, now
from kassa.database import lock_one, write_transaction
from kassa.errors import Conflict, NotFound, ValidationFailed
from kassa.extensions import db
from kassa.forms import parse_date, parse_int
from kassa.i18n import LANGUAGES
from kassa.models import (
    Account,
    Company,
    Contact,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentStatus,
    Product,
    TaxRate,
)
from kassa.money import Money, MoneyError, MoneyParseError, is_known_currency, parse_money
from kassa.order_summary import DiscountType, line_discount
from kassa.services.accounts.emails import normalize_email
from kassa.services.crm.crm import find_or_create_company, find_or_create_contact
from kassa.services.links.link_drafts import MAX_ITEMS, MAX_QUANTITY, parse_percent_bp
from kassa.services.links.products import MAX_AMOUNT_MINOR
from kassa.services.payments.invoice_states import EDITABLE, move_invoice
from kassa.services.payments.invoice_tax import TaxRow, line_tax
from kassa.services.platform.audit import record_audit
from kassa.tax import TaxRateSpec

MAX_TEXT = 5000
MAX_DUE_DAYS = 3650  # a due date at most ten years after the issue date
DEFAULT_DUE_DAYS = 30


@dataclass
class LineDraft:
    description: str = ""
    quantity: str = "1"
    unit_price: str = ""  # as typed, so a bad value is shown back exactly
    product_id: int | None = None
    discount_type: str = ""  # Q1: "" | "percent" | "amount"
    discount_value: str = ""
    tax_rate_id: str = ""  # V1 (Q6): one of the account's tax rates, "" for none


@dataclass
class InvoiceDraft:
    customer_email: str = ""
    customer_name: str = ""
    company_name: str = ""
    language: str = "en"
    currency: str = "USD"
    issue_date: str = ""  # YYYY-MM-DD as typed
    due_date: str = ""
    notes: str = ""
    terms: str = ""
    allow_partial: bool = False  # V2: the customer may pay part of the amount due
    lines: list[LineDraft] = field(default_factory=list)


@dataclass(frozen=True)
class CheckedLine:
    description: str
    quantity: int
    unit_amount_minor: int
    product_id: int | None
    discount_type: str
    discount_value: int
    amount_minor: int
    tax: TaxRateSpec | None = None  # V1 (Q6): the line's rate, as it is when saved
    tax_minor: int = 0  # exclusive: added to amount_minor; inclusive: the part of amount_minor that is tax

    @property
    def total_minor(self) -> int:
        """What the line adds to the invoice: its net, plus its tax when the rate is exclusive."""
        return self.amount_minor + (self.tax_minor if self.tax is not None and not self.tax.inclusive else 0)


# -- the editor's buttons ----------------------------------------------------------------------------


def new_draft(account: Account) -> InvoiceDraft:
    today = account_today(account)
    return InvoiceDraft(**new_draft_fields(account, today),
                        due_date=(today + timedelta(days=DEFAULT_DUE_DAYS)).isoformat(), lines=[LineDraft()])


def draft_from_invoice(invoice: Invoice, locale: str) -> InvoiceDraft:
    return InvoiceDraft(
        **customer_fields(invoice),
        currency=invoice.currency,
        issue_date=invoice.issue_date.isoformat() if invoice.issue_date else "",
        due_date=invoice.due_date.isoformat() if invoice.due_date else "",
        notes=invoice.notes, terms=invoice.terms, allow_partial=invoice.allow_partial,
        lines=[LineDraft(**line_fields(line, invoice.currency, locale),
                         tax_rate_id=str(line.tax_rate_id) if line.tax_rate_id else "")
               for line in invoice.lines],
    )


# Shared with the quote editor (quote_drafts, V4: quotes were built from this editor): a new draft, the customer and
# the lines as the editor shows them, its buttons, and the customer a saved draft is for. One copy, so the two editors
# can't drift apart.


def new_draft_fields(account: Account, today: date) -> dict[str, str]:
    """A new draft's language (the account's), currency and issue date (today)."""
    return {"language": account.language if account.language in LANGUAGES else "en",
            "currency": account.default_currency, "issue_date": today.isoformat()}


def customer_fields(obj) -> dict[str, str]:
    """The saved invoice's or quote's customer as the editor shows it (no name when it is only the email)."""
    contact = db.session.get(Contact, obj.contact_id) if obj.contact_id else None
    company = db.session.get(Company, obj.company_id) if obj.company_id else None
    return {"customer_email": contact.email if contact else "",
            "customer_name": contact.display_name if contact and contact.display_name != contact.email else "",
            "company_name": company.name if company else "",
            "language": contact.language if contact else "en"}


def line_fields(line, currency: str, locale: str) -> dict:
    """A saved line as the editor shows it (amounts in the merchant's language, as typed)."""
    return {"description": line.description, "quantity": str(line.quantity),
            "unit_price": Money(line.unit_amount_minor, currency).to_input(locale), "product_id": line.product_id,
            "discount_type": line.discount_type, "discount_value": discount_input(line, currency, locale)}


def discount_input(line, currency: str, locale: str) -> str:
    if line.discount_type == DiscountType.PERCENT:
        return format_decimal((Decimal(line.discount_value) / 100).normalize(), locale=locale)
    if line.discount_type == DiscountType.AMOUNT:
        return Money(line.discount_value, currency).to_input(locale)
    return ""


def save_customer(account_id: int, email: str, draft) -> tuple[Contact, Company | None]:
    """Inside the draft's write: the contact of `email` (made from the typed name and language when new) and the
    company, the contact joining the company when it has none."""
    first, _sep, last = draft.customer_name.strip().partition(" ")
    contact = find_or_create_contact(account_id, "live", email, first_name=first, last_name=last,
                                     language=draft.language)
    company = find_or_create_company(account_id, "live", draft.company_name)
    if company is not None and contact.company_id is None:
        contact.company_id = company.id
    return contact, company


def add_line(draft: InvoiceDraft, line_type: type[LineDraft] = LineDraft) -> InvoiceDraft:
    return replace(draft, lines=[*draft.lines, line_type()])


def remove_line(draft: InvoiceDraft, index: int) -> InvoiceDraft:
    return replace(draft, lines=[line for i, line in enumerate(draft.lines) if i != index])


def add_products(draft: InvoiceDraft, products: list[Product], locale: str,
                 line_type: type[LineDraft] = LineDraft) -> InvoiceDraft:
    """The link editor's product library: each ticked product becomes a line with its name and price, in the
    invoice's currency only (a product in another currency is skipped: an invoice has one currency)."""
    rows = [line_type(description=p.name, unit_price=Money(p.unit_amount_minor, p.currency).to_input(locale),
                      product_id=p.id)
            for p in products if p.currency == draft.currency]
    kept = [line for line in draft.lines if line.description or line.unit_price]
    return replace(draft, lines=[*kept, *rows])


# -- validation --------------------------------------------------------------------------------------


def account_tax_rates(account_id: int) -> dict[int, TaxRateSpec]:
    """The account's active tax rates (Settings → Tax rates) a line may use, by id."""
    rates = db.session.scalars(select(TaxRate).where(TaxRate.account_id == account_id, TaxRate.active.is_(True))
                               .order_by(TaxRate.id))
    return {rate.id: TaxRateSpec(id=rate.id, name=rate.name, percentage_bp=rate.percentage_bp,
                                 inclusive=rate.inclusive, countries=tuple(rate.countries or ())) for rate in rates}


def check_lines(draft: InvoiceDraft, currency: str, locale: str, account_id: int,
                 errors: dict[str, str]) -> list[CheckedLine]:
    rates = account_tax_rates(account_id)
    if not draft.lines:
        errors["lines"] = _("Add at least one line.")
    elif len(draft.lines) > MAX_ITEMS:
        errors["lines"] = _("An invoice can have at most %(n)d lines.", n=MAX_ITEMS)
    checked = []
    for i, line in enumerate(draft.lines[:MAX_ITEMS]):
        p = f"lines-{i}-"
        description = line.description.strip()
        if not description:
            errors[p + "description"] = _("Describe what this line is for.")
        elif len(description) > 500:
            errors[p + "description"] = _("Use at most 500 characters.")
        quantity = parse_int(line.quantity, minimum=1, maximum=MAX_QUANTITY)
        if quantity is None:
            errors[p + "quantity"] = _("Enter a quantity from 1 to %(max)d.", max=MAX_QUANTITY)
        unit = None
        if currency:
            try:
                unit = parse_money(line.unit_price or "", currency, locale).amount_minor
            except MoneyParseError as exc:
                errors[p + "unit_price"] = _(exc.template, **exc.params)
            except MoneyError:
                errors[p + "unit_price"] = _("Enter an amount like 12.50")
            else:
                if unit == 0:
                    errors[p + "unit_price"] = _("The unit price can't be 0. Enter a price above zero.")
                    unit = None
                elif unit > MAX_AMOUNT_MINOR:
                    errors[p + "unit_price"] = _("The amount is too large")
                    unit = None
        product_id = line.product_id
        if product_id is not None:
            product = db.session.get(Product, product_id)
            if product is None or product.account_id != account_id:
                product_id = None  # a foreign or deleted product: the line stays, typed, without the link
        kind, value = line.discount_type, 0
        if kind not in (DiscountType.NONE, DiscountType.PERCENT, DiscountType.AMOUNT):
            errors[p + "discount_type"] = _("Choose a discount type.")
            kind = DiscountType.NONE
        elif kind == DiscountType.PERCENT:
            bp = parse_percent_bp(line.discount_value, locale)
            if bp is None:
                errors[p + "discount_value"] = _("Enter a percentage from 0.01 to 100.")
            value = bp or 0
        elif kind == DiscountType.AMOUNT and currency:
            try:
                value = parse_money(line.discount_value or "", currency, locale).amount_minor
            except MoneyError:
                value = -1
            if not 0 < value <= MAX_AMOUNT_MINOR:
                errors[p + "discount_value"] = _("Enter an amount like 12.50")
                value = 0
        rate = None
        if line.tax_rate_id:
            rate_id = parse_int(line.tax_rate_id, minimum=1)
            rate = rates.get(rate_id) if rate_id is not None else None
            if rate is None:  # another account's, archived, or made up
                errors[p + "tax_rate_id"] = _("Choose one of your tax rates, or no tax.")
        if quantity is not None and unit is not None:
            gross = Money(unit * quantity, currency)
            if gross.amount_minor > MAX_AMOUNT_MINOR:
                errors[p + "quantity"] = _("The amount is too large")
                continue
            if kind == DiscountType.AMOUNT and value > gross.amount_minor:
                errors[p + "discount_value"] = _("The discount can't be more than the line's amount.")
                continue
            net = gross - line_discount(gross, kind, value)
            checked.append(CheckedLine(description, quantity, unit, product_id, kind, value, net.amount_minor,
                                       rate, line_tax(net.amount_minor, rate)))
    return checked


def validate(draft: InvoiceDraft, account: Account, locale: str) -> tuple[dict, list[CheckedLine]]:
    """Everything the editor posted, checked; ValidationFailed with every problem at its field."""
    errors: dict[str, str] = {}
    values: dict = {}
    try:
        values["email"] = normalize_email(draft.customer_email, field="customer_email")
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if len(draft.customer_name) > 200:
        errors["customer_name"] = _("Use at most 200 characters.")
    if len(draft.company_name) > 200:
        errors["company_name"] = _("Use at most 200 characters.")
    if draft.language not in LANGUAGES:
        errors["language"] = _("Choose a language.")
    currency = draft.currency.strip().upper()
    if not is_known_currency(currency):
        errors["currency"] = _("Choose a currency.")
        currency = ""
    issue = parse_date(draft.issue_date)
    if issue is None:
        errors["issue_date"] = _("Enter a date like 2026-12-31.")
    due = parse_date(draft.due_date)
    if due is None:
        errors["due_date"] = _("Enter a date like 2026-12-31.")
    elif issue is not None and due < issue:
        errors["due_date"] = _("The due date can't be before the issue date.")
    elif issue is not None and due > issue + timedelta(days=MAX_DUE_DAYS):
        errors["due_date"] = _("Choose a due date within ten years of the issue date.")
    for name in ("notes", "terms"):
        if len(getattr(draft, name)) > MAX_TEXT:
            errors[name] = _("Use at most %(n)d characters.", n=MAX_TEXT)
    lines = check_lines(draft, currency, locale, account.id, errors)
    total = sum(line.total_minor for line in lines)
    if not errors and total > MAX_AMOUNT_MINOR:
        errors["lines"] = _("The amount is too large")
    if errors:
        raise ValidationFailed(_("Check the highlighted fields."), errors=errors)
    values.update(currency=currency, issue_date=issue, due_date=due, total=total,
                  tax=sum(line.tax_minor for line in lines))
    return values, lines


# -- saving and moving -------------------------------------------------------------------------------


def _owned(actor: Actor, invoice_id: int, *, lock: bool = False) -> Invoice:
    """The actor's account's invoice (another account's is a 404), locked for the write transaction with `lock`
    (its current values: two tabs finalizing or editing at once take turns)."""
    invoice = lock_one(db.session, Invoice, invoice_id) if lock else db.session.get(Invoice, invoice_id)
    if invoice is None or invoice.account_id != actor.account_id:
        raise NotFound(_("Invoice not found."))
    return invoice


def save_draft(actor: Actor, invoice_id: int | None, draft: InvoiceDraft, locale: str) -> Invoice:
    """Create a draft, or replace a draft's contents. Conflict when the invoice is no longer a draft (finalized
    in another tab): nothing changes."""
    account = db.session.get(Account, actor.account_id)
    values, lines = validate(draft, account, locale)
    with write_transaction(db.session) as session:
        if invoice_id is None:
            invoice = Invoice(account_id=account.id, status=InvoiceStatus.DRAFT.value, number=None,
                              amount_minor=0, currency=values["currency"])
            session.add(invoice)
        else:
            invoice = _owned(actor, invoice_id, lock=True)
            if invoice.status not in EDITABLE:
                raise Conflict(_("This invoice is no longer a draft, so it can't be edited. Void it and write a new "
                                 "one instead."))
        contact, company = save_customer(account.id, values["email"], draft)
        invoice.contact_id, invoice.company_id = contact.id, company.id if company else None
        invoice.currency = values["currency"]
        invoice.issue_date, invoice.due_date = values["issue_date"], values["due_date"]
        invoice.notes, invoice.terms = draft.notes.strip(), draft.terms.strip()
        invoice.allow_partial = bool(draft.allow_partial)
        invoice.amount_minor, invoice.tax_minor = values["total"], values["tax"]
        invoice.lines = [InvoiceLine(position=i, description=line.description, quantity=line.quantity,
                                     unit_amount_minor=line.unit_amount_minor, product_id=line.product_id,
                                     discount_type=line.discount_type, discount_value=line.discount_value,
                                     amount_minor=line.amount_minor, tax_rate_id=line.tax.id if line.tax else None,
                                     tax_name=line.tax.name if line.tax else "",
                                     tax_percentage_bp=line.tax.percentage_bp if line.tax else 0,
                                     tax_inclusive=line.tax.inclusive if line.tax else False,
                                     tax_minor=line.tax_minor) for i, line in enumerate(lines)]
        session.flush()
        record_audit(actor, "invoice.created" if invoice_id is None else "invoice.updated", object_type="invoice",
                     object_id=invoice.id, amount_after_minor=invoice.amount_minor, currency=invoice.currency)
        return invoice


def finalize(actor: Actor, invoice_id: int) -> Invoice:
    """Draft → open: the invoice gets the next number of the account's series (gap-free under concurrency:
    invoice_states.move_invoice). Finalizing twice is a no-op; a void invoice can't be finalized (Conflict)."""
    with write_transaction(db.session):
        invoice = _owned(actor, invoice_id, lock=True)
        if invoice.status == InvoiceStatus.DRAFT.value and not invoice.lines:
            raise Conflict(_("Add at least one line before finalizing."))
        if move_invoice(invoice, InvoiceStatus.OPEN, at=now()):
            record_audit(actor, "invoice.finalized", object_type="invoice", object_id=invoice.id,
                         amount_after_minor=invoice.amount_minor, currency=invoice.currency,
                         data={"number": invoice.number})
        return invoice


def void(actor: Actor, invoice_id: int, reason: str) -> Invoice:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Say why the invoice is void."), field="reason")
    if len(reason) > 500:
        raise ValidationFailed(_("Use at most 500 characters."), field="reason")
    with write_transaction(db.session):
        invoice = _owned(actor, invoice_id, lock=True)
        if invoice.payment_id is not None or invoice.amount_paid_minor:
            raise Conflict(_("A paid invoice can't be voided."))
        if db.session.scalar(select(Payment.id).where(Payment.invoice_id == invoice.id, Payment.status.in_(
                (PaymentStatus.PROCESSING.value, PaymentStatus.INCOMPLETE.value))).limit(1)) is not None:
            # V2: a bank debit (or a 3-D Secure charge) of it is still on its way: it may yet pay it
            raise Conflict(_("A payment of this invoice is still being processed. Void it once that payment "
                             "has failed."))
        move_invoice(invoice, InvoiceStatus.VOID, at=now(), reason=reason)
        record_audit(actor, "invoice.voided", object_type="invoice", object_id=invoice.id,
                     data={"reason": reason, "number": invoice.number})
        return invoice


def mark_uncollectible(actor: Actor, invoice_id: int) -> Invoice:
    """The merchant gives up on collecting an open (or partly paid) invoice: it stays numbered and can still be
    paid or voided later (invoice_states)."""
    with write_transaction(db.session):
        invoice = _owned(actor, invoice_id, lock=True)
        if move_invoice(invoice, InvoiceStatus.UNCOLLECTIBLE, at=now()):
            record_audit(actor, "invoice.uncollectible", object_type="invoice", object_id=invoice.id,
                         data={"number": invoice.number})
        return invoice


def delete_draft(actor: Actor, invoice_id: int) -> None:
    """A draft has no number yet, so deleting it leaves no gap."""
    with write_transaction(db.session) as session:
        invoice = _owned(actor, invoice_id)
        if invoice.status not in EDITABLE:
            raise Conflict(_("Only a draft can be deleted. Void the invoice instead."))
        session.delete(invoice)
        record_audit(actor, "invoice.deleted", object_type="invoice", object_id=invoice_id)


def status_label(invoice: Invoice, today: date) -> tuple[str, str]:
    """The list's and the page's badge: (label, tone). Overdue is read from the due date, never stored."""
    if invoice.is_overdue(today):
        return _("Overdue"), "danger"
    return {
        InvoiceStatus.DRAFT.value: (_("Draft"), "neutral"),
        InvoiceStatus.OPEN.value: (_("Open"), "info"),
        InvoiceStatus.PARTIALLY_PAID.value: (_("Partially paid"), "warning"),
        InvoiceStatus.PAID.value: (_("Paid"), "success"),
        InvoiceStatus.VOID.value: (_("Void"), "neutral"),
        InvoiceStatus.UNCOLLECTIBLE.value: (_("Uncollectible"), "warning"),
    }.get(invoice.status, (invoice.status, "neutral"))


@dataclass(frozen=True)
class DraftTotals:
    """The editor's totals (V1, Q6): the lines' net, the tax per rate, the tax in total, the amount due."""

    net_minor: int
    tax_rows: list[TaxRow]
    tax_minor: int
    total_minor: int


def draft_totals(draft: InvoiceDraft, account: Account, locale: str) -> DraftTotals | None:
    """The totals of the lines that are complete so far (a line still being typed counts for nothing), or None
    without a valid currency. Nothing is written."""
    currency = draft.currency.strip().upper()
    if not is_known_currency(currency):
        return None
    lines = check_lines(draft, currency, locale, account.id, {})
    rows: dict[tuple[str, int, bool], list[int]] = {}
    for line in lines:
        if line.tax is not None:
            row = rows.setdefault((line.tax.name, line.tax.percentage_bp, line.tax.inclusive), [0, 0])
            row[0] += line.amount_minor
            row[1] += line.tax_minor
    return DraftTotals(net_minor=sum(line.amount_minor for line in lines),
                       tax_rows=[TaxRow(n, bp, inc, taxable, tax) for (n, bp, inc), (taxable, tax) in rows.items()],
                       tax_minor=sum(line.tax_minor for line in lines),
                       total_minor=sum(line.total_minor for line in lines))
