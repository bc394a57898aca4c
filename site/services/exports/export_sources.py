"""The rows behind exports and reports: the payments view's rows (same filters and sort as the index)
and the three payment reports (X1), as columns (label, kind, the words for stored codes: B10) plus a streamed
iterator of typed values. Codes stay codes here and the spreadsheet writers turn them into words, so CSV
keeps them (the payment status is the exception: CSV has always had its label)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, func, or_, select, type_coerce
from sqlalchemy.orm import aliased
from werkzeug.datastructures import MultiDict

from kassa.clock import account_today, local_midnight_utc, zone
from kassa.display_ids import display_id, display_id_or_none
from kassa.extensions import db
from kassa.forms import parse_date
from kassa.models import (
    Account,
    Company,
    Contact,
    Deal,
    DisplayStatus,
    DisputeReason,
    Invoice,
    InvoiceStatus,
    LedgerEntry,
    LedgerType,
    Payment,
    PaymentLink,
    Payout,
    PayoutStatus,
    RiskLevel,
    User,
)
from kassa.money import exponent
from kassa.services.backoffice import payment_sources, segments
from kassa.services.backoffice.payment_filters import FilterContext
from kassa.services.backoffice.payment_index import COLUMNS, SORTS, IndexState, base_query
from kassa.services.exports.export_writers import Column
from kassa.services.links.custom_fields import answer_text
from kassa.services.payments import invoice_filters
from kassa.template_helpers import CARD_BRANDS, decline_reasons, dispute_reason_label, incomplete_reasons

STREAM = 2000


@lru_cache(maxsize=256)
def _exponent(currency: str) -> int:
    return exponent(currency)


def major(amount_minor: int | None, currency: str) -> Decimal | None:
    """Money as a number in major units (the currency is its own column), so spreadsheets can add it up.
    Exact: 2450 EUR → Decimal('24.50')."""
    return None if amount_minor is None else Decimal(amount_minor).scaleb(-_exponent(currency))


# -- the payments view ------------------------------------------------------------------------------

MONEY = "money"  # converted with the row's currency into major units

# The index's columns, and what only an export offers: the payment's invoice number (R1, B6).
# Q1: "discount" brings the amount before discounts and the discount (after them is the charged amount).
# Q8: "custom_fields" is one column, "Label: value; Label: value" (the labels differ from link to link).
# Q2: "promo" brings the promo code and what it took off. Q6: "tax" brings the tax charged, the buyer's country
# and VAT number. V6: "source_type" is where the payment came from. Q7: "terms" brings when the buyer agreed to the terms of service and the address they were shown.
EXPORT_COLUMNS = {**COLUMNS, "invoice": _l("Invoice number"), "discount": _l("Discount"),
                  "custom_fields": _l("Custom fields"), "promo": _l("Promo code"), "tax": _l("Tax"),
                  "terms": _l("Terms of service"), "source_type": _l("Source type")}  # V6: link, invoice, …, manual
ASSOCIATION_LIMITS = {"1000": 1000, "all": None}  # X3: up to 1,000 associated records, or all


def _raw(column):
    """Read a timestamp column without the generic result processing (the `local` converter does it)."""
    return type_coerce(column, String)


# V6: the invoice a payment pays, joined for its source's name (apart from the "invoice" column's join)
SourceInvoice = aliased(Invoice, name="source_invoice")


def method_words() -> dict[str, str]:
    """The payment methods as the index and its filters name them (B10)."""
    return {"card": _("Card"), "ach": _("Bank debit (ACH)"), "sepa": _("SEPA Direct Debit"), "manual": _("Manual")}


def _dispute_reason_words() -> dict[str, str]:
    return {reason.value: dispute_reason_label(reason.value) for reason in DisputeReason}


# Each index column becomes one or more export columns: (column, SQL expression, how to turn the value).
def _payment_columns(key: str, tz: ZoneInfo) -> list[tuple[Column, Any, Any]]:
    def local(value):
        """A stored UTC time as the account's wall-clock time. The column is read raw (see `_raw`): SQLite
        hands back text, which datetime.fromisoformat parses far faster than the generic type would."""
        if value is None:
            return None
        if type(value) is str:
            value = datetime.fromisoformat(value).replace(tzinfo=UTC)
        return value.astimezone(tz).replace(tzinfo=None)

    # Labels looked up once per export, not translated again on every row.
    status_labels = {status.value: status.label for status in DisplayStatus}
    money, when = MONEY, "datetime"
    return {
        "amount": [(Column(_("Gross amount"), money), Payment.amount_minor, money),
                   (Column(_("Currency")), Payment.currency, None)],
        "status": [(Column(_("Status")), Payment.display_status, status_labels.get)],
        "date": [(Column(_("Payment date"), when), _raw(Payment.created_at), local)],
        "contact": [(Column(_("Contact")), func.coalesce(func.nullif(Payment.buyer_name, ""), Payment.buyer_email),
                     None)],
        "method": [(Column(_("Payment method"), words=method_words()), Payment.method, None),
                   (Column(_("Card brand"), words=CARD_BRANDS), Payment.card_brand, None),
                   (Column(_("Last 4")), func.coalesce(Payment.card_last4, Payment.bank_last4), None)],
        # V6: the source's name (the link's, or the number of the invoice it pays: a CSV of link payments is what it
        # was before V6, byte for byte) and, as its own column, its type (link, invoice, quote, subscription, manual)
        "source": [(Column(_("Source")), func.coalesce(payment_sources.invoice_number_text(SourceInvoice.number),
                                                       PaymentLink.name), None)],
        "source_type": [(Column(_("Source type"), words=payment_sources.words()), payment_sources.kind_column(),
                         None)],
        "currency": [(Column(_("Currency")), Payment.currency, None)],
        "fee": [(Column(_("Fee"), money), Payment.fee_minor, money)],
        "net": [(Column(_("Net"), money), Payment.amount_minor - Payment.fee_minor, money)],
        "refunded": [(Column(_("Refunded"), money), Payment.refunded_minor, money)],
        "receipt": [(Column(_("Receipt number")), Payment.receipt_number,
                     lambda v: display_id_or_none("receipt", v))],
        "email": [(Column(_("Contact email")), Payment.buyer_email, None)],
        "company": [(Column(_("Company")), Payment.buyer_company, None)],
        "dispute_created": [(Column(_("Dispute created"), when), _raw(Payment.dispute_created_at), local)],
        "dispute_reason": [(Column(_("Dispute reason"), words=_dispute_reason_words()), Payment.dispute_reason,
                            None)],
        "dispute_amount": [(Column(_("Dispute amount"), money), Payment.dispute_amount_minor, money)],
        "dispute_deadline": [(Column(_("Dispute deadline"), when), _raw(Payment.dispute_due_by), local)],
        "dispute_closed": [(Column(_("Dispute closed"), when), _raw(Payment.dispute_closed_at), local)],
        "invoice": [(Column(_("Invoice number")), Invoice.number, lambda v: display_id_or_none("invoice", v))],
        # B2: a failed payment's reason (the code, with the app's words for it in spreadsheets) and risk signal.
        "decline": [(Column(_("Decline reason"), words={**decline_reasons(), **incomplete_reasons()}),
                     Payment.failure_code, None)],
        "risk": [(Column(_("Risk"), words={level.value: level.label for level in RiskLevel}), Payment.risk_level,
                  None)],
        # Q1: payments from before discounts have no gross of their own: it is the amount.
        "discount": [(Column(_("Before discounts"), money), func.coalesce(Payment.gross_minor, Payment.amount_minor),
                      money),
                     (Column(_("Discount"), money), Payment.discount_minor, money)],
        "custom_fields": [(Column(_("Custom fields")), Payment.custom_fields, answer_text)],
        "promo": [(Column(_("Promo code")), Payment.promo_code, None),
                  (Column(_("Promo discount"), money), Payment.promo_discount_minor, money)],
        "tax": [(Column(_("Tax"), money), Payment.tax_minor, money),
                (Column(_("Country")), Payment.buyer_country, None),
                (Column(_("VAT id")), Payment.buyer_vat_id, None)],
        "terms": [(Column(_("Terms agreed"), when), _raw(Payment.terms_accepted_at), local),
                  (Column(_("Terms address")), Payment.terms_url, None)],
    }[key]


def _one_currency_column(specs: list[tuple[Column, Any, Any]]) -> list[tuple[Column, Any, Any]]:
    """Gross amount brings its Currency and the view may show Currency too: CSV keeps both (its columns
    don't change), a spreadsheet shows the first only."""
    seen = False
    result = []
    for column, expr, convert in specs:
        if expr is Payment.currency:
            if seen:
                column = replace(column, in_sheets=False)
            seen = True
        result.append((column, expr, convert))
    return result


ASSOCIATIONS = [
    ("contact", lambda: Contact.email, "Associated contact"),
    ("company", lambda: Company.name, "Associated company"),
    ("deal", lambda: Deal.name, "Associated deal"),
    ("subscription", lambda: Payment.subscription_id, "Associated subscription"),
]


def _state(params: dict[str, Any]) -> IndexState:
    return IndexState.from_args(MultiDict(parse_qsl(params.get("state", ""))), params.get("tab", "payments"))


def _payments_query(account_id: int, params: dict[str, Any]):
    account = db.session.get(Account, account_id)
    ctx = FilterContext(timezone=account.timezone, today=account_today(account))
    extra = Payment.dispute_created_at.is_not(None) if params.get("tab") == "disputes" else None
    state = _state(params)
    modes = tuple(params.get("modes") or ("live",))
    return account, state, base_query(account_id, modes, state, ctx, extra)


def _payments_count(account_id: int, params: dict[str, Any]) -> int:
    query = _payments_query(account_id, params)[2]
    return db.session.scalar(select(func.count()).select_from(query.with_only_columns(Payment.id).subquery()))


def _payments_rows(account_id: int, params: dict[str, Any],
                   notes: dict[str, Any]) -> tuple[list[Column], Iterator[tuple]]:
    account, state, query = _payments_query(account_id, params)
    tz = zone(account.timezone)
    keys = [key for key in (params.get("columns") or state.columns) if key in EXPORT_COLUMNS]
    specs = _one_currency_column([spec for key in keys for spec in _payment_columns(key, tz)])
    include_associations = bool(params.get("associations"))
    headers = [column for column, _expr, _convert in specs]
    exprs = [expr for _column, expr, _convert in specs]
    if include_associations:
        for _kind, column, label in ASSOCIATIONS:
            headers.append(Column(_(label)))
            exprs.append(column())
    query = (query.with_only_columns(*exprs, Payment.currency)
             .outerjoin(PaymentLink, PaymentLink.id == Payment.link_id))
    if "source" in keys:  # V6: the invoice a payment pays (V2, V3) names its source
        query = query.outerjoin(SourceInvoice, SourceInvoice.id == Payment.invoice_id)
    if "invoice" in keys:
        # R5: the payment's own invoice; V2/V3: the merchant's invoice it pays (a payment has one or the other)
        query = query.outerjoin(Invoice, or_(Invoice.payment_id == Payment.id, Invoice.id == Payment.invoice_id))
    if include_associations:
        query = (query.outerjoin(Contact, Contact.id == Payment.contact_id)
                 .outerjoin(Company, Company.id == Payment.company_id)
                 .outerjoin(Deal, Deal.id == Payment.deal_id))
    column = Payment.created_at if SORTS[state.sort][1] == "date" else Payment.amount_minor
    order = (column.desc(), Payment.id.desc()) if SORTS[state.sort][2] else (column.asc(), Payment.id.asc())
    query = query.order_by(*order)
    # Only the columns that need it are converted; the rest pass straight through.
    money_columns = [i for i, (_column, _expr, convert) in enumerate(specs) if convert is MONEY]
    other_columns = [(i, convert) for i, (_column, _expr, convert) in enumerate(specs)
                     if convert is not None and convert is not MONEY]
    width = len(exprs)
    association_columns = range(len(specs), width) if include_associations else range(0)
    # X3: "up to 1,000 associated records" fills the association cells of the rows in order until 1,000
    # records are named; the rest stay empty and the export says how many were left out. "All" names every one.
    limit = (ASSOCIATION_LIMITS.get(str(params.get("association_limit") or "1000"), 1000)
             if include_associations else None)

    def rows() -> Iterator[tuple]:
        named = left_out = 0
        # Core rows (no ORM result processing): this loop runs once per exported payment.
        result = db.session.connection().execution_options(yield_per=STREAM).execute(query)
        for partition in result.partitions():
            for record in partition:
                values = list(record[:width])
                if money_columns:
                    exp = _exponent(record[width])
                    for i in money_columns:
                        if values[i] is not None:
                            values[i] = Decimal(values[i]).scaleb(-exp)
                for i, convert in other_columns:
                    values[i] = convert(values[i])
                if limit is not None:
                    for i in association_columns:
                        if values[i] is not None:
                            if named < limit:
                                named += 1
                            else:
                                values[i] = None
                                left_out += 1
                yield values
        if left_out:
            notes["associations_left_out"] = left_out

    return headers, rows()


# -- reports (X1) -----------------------------------------------------------------------------------


def _ledger_words() -> dict[str, str]:
    """Transaction types as the balance page names them ("charge" → "Payment")."""
    return {kind.value: kind.label for kind in LedgerType}


def _payout_status_words() -> dict[str, str]:
    return {status.value: status.label for status in PayoutStatus}


def _range(account: Account, params: dict[str, Any]) -> tuple[date, date]:
    today = account_today(account)
    # Checked when the report was asked for (H9); an old queued row with a bad date falls back to the default.
    start = parse_date(params.get("from")) or today.replace(day=1)
    end = parse_date(params.get("to")) or today
    return min(start, end), max(start, end)


def _modes(params: dict[str, Any]) -> tuple[str, ...]:
    return tuple(params.get("modes") or ("live",))


def _payout_reconciliation(account: Account, params: dict[str, Any], count_only: bool = False):
    """Payouts, newest first, each with the transactions in it (payments, refunds, fees, disputes)."""
    start, end = _range(account, params)
    query = (select(Payout.id, Payout.payout_date, Payout.arrival_date, Payout.status, Payout.amount_minor,
                    LedgerEntry.type, LedgerEntry.amount_minor, LedgerEntry.currency, LedgerEntry.payment_id,
                    LedgerEntry.description, LedgerEntry.occurred_at)
             .join(LedgerEntry, LedgerEntry.payout_id == Payout.id)
             .where(Payout.account_id == account.id, Payout.mode.in_(_modes(params)),
                    Payout.payout_date.between(start, end), LedgerEntry.type != "payout")
             .order_by(Payout.payout_date.desc(), Payout.id.desc(), LedgerEntry.id))
    if count_only:
        return query
    tz = zone(account.timezone)
    headers = [Column(_("Payout")), Column(_("Payout date"), "date"), Column(_("Arrival date"), "date"),
               Column(_("Payout status"), words=_payout_status_words()), Column(_("Payout amount"), MONEY),
               Column(_("Transaction type"), words=_ledger_words()), Column(_("Amount"), MONEY),
               Column(_("Currency")), Column(_("Payment")), Column(_("Description")), Column(_("Date"), "datetime")]

    def rows():
        for (pid, pdate, arrival, status, pamount, kind, amount, currency, payment_id, description,
             occurred) in db.session.execute(query.execution_options(yield_per=STREAM)):
            yield (display_id("payout", pid), pdate, arrival, status, major(pamount, currency), kind, major(amount, currency),
                   currency, display_id_or_none("payment", payment_id), description,
                   occurred.astimezone(tz).replace(tzinfo=None))

    return headers, rows()


def _balance(account: Account, params: dict[str, Any], count_only: bool = False):
    """Every buyer transaction in the period: payments (one-time and recurring), refunds, fees, disputes."""
    start, end = _range(account, params)
    tz = zone(account.timezone)
    query = (select(LedgerEntry.occurred_at, LedgerEntry.type, LedgerEntry.amount_minor, LedgerEntry.currency,
                    LedgerEntry.available_on, LedgerEntry.payout_id, LedgerEntry.payment_id, Payment.source,
                    Payment.buyer_email, LedgerEntry.description)
             .outerjoin(Payment, Payment.id == LedgerEntry.payment_id)
             .where(LedgerEntry.account_id == account.id, LedgerEntry.mode.in_(_modes(params)),
                    LedgerEntry.type.not_in(("payout", "payout_failure")),
                    LedgerEntry.occurred_at >= local_midnight_utc(start, account.timezone),
                    LedgerEntry.occurred_at < local_midnight_utc(end + timedelta(days=1), account.timezone))
             .order_by(LedgerEntry.occurred_at.desc(), LedgerEntry.id.desc()))
    if count_only:
        return query
    headers = [Column(_("Date"), "datetime"), Column(_("Type"), words=_ledger_words()), Column(_("Amount"), MONEY),
               Column(_("Currency")), Column(_("Available on"), "date"), Column(_("Payout")), Column(_("Payment")),
               Column(_("Source"), words={"payment_link": _("Payment link"), "subscription": _("Subscription"),
                                           "invoice": _("Invoice")}),
               Column(_("Contact email")), Column(_("Description"))]

    def rows():
        for (occurred, kind, amount, currency, available, payout_id, payment_id, source, email,
             description) in db.session.execute(query.execution_options(yield_per=STREAM)):
            yield (occurred.astimezone(tz).replace(tzinfo=None), kind, major(amount, currency), currency, available,
                   display_id_or_none("payout", payout_id), display_id_or_none("payment", payment_id),
                   source, email, description)

    return headers, rows()


def _payout_details(account: Account, params: dict[str, Any], count_only: bool = False):
    """The buyer payments in each daily payout."""
    start, end = _range(account, params)
    tz = zone(account.timezone)
    query = (select(Payout.id, Payout.payout_date, Payment.id, Payment.created_at, Payment.amount_minor,
                    Payment.currency, Payment.fee_minor, Payment.method, Payment.buyer_email, LedgerEntry.amount_minor,
                    LedgerEntry.currency)
             .join(LedgerEntry, LedgerEntry.payout_id == Payout.id)
             .join(Payment, Payment.id == LedgerEntry.payment_id)
             .where(Payout.account_id == account.id, Payout.mode.in_(_modes(params)),
                    Payout.payout_date.between(start, end), LedgerEntry.type == "charge")
             .order_by(Payout.payout_date.desc(), Payout.id.desc(), Payment.id))
    if count_only:
        return query
    headers = [Column(_("Payout")), Column(_("Payout date"), "date"), Column(_("Payment")),
               Column(_("Payment date"), "datetime"), Column(_("Gross amount"), MONEY), Column(_("Fee"), MONEY),
               Column(_("Currency")), Column(_("Payment method"), words=method_words()), Column(_("Contact email")),
               Column(_("Settled amount"), MONEY), Column(_("Settlement currency"))]

    def rows():
        for (pid, pdate, payment_id, created, gross, currency, fee, method, email, settled,
             settle_currency) in db.session.execute(query.execution_options(yield_per=STREAM)):
            yield (display_id("payout", pid), pdate, display_id("payment", payment_id), created.astimezone(tz).replace(tzinfo=None),
                   major(gross, currency), major(fee, currency), currency, method, email,
                   major(settled, settle_currency), settle_currency)

    return headers, rows()


# V7: how late an open invoice is, in the buckets accountants use (days past the due date).
AGING_BUCKETS = ((0, 0), (1, 30), (31, 60), (61, 90), (91, None))


def aging_bucket(days_late: int) -> int:
    """The index in AGING_BUCKETS of an invoice `days_late` past its due date (0 or less: not due yet)."""
    if days_late <= 0:
        return 0
    return next(index for index, (_low, high) in enumerate(AGING_BUCKETS) if index and (high is None or days_late <= high))


def aging_as_of(account: Account, params: dict[str, Any]) -> date:
    """The day the aging report is as of: the export's "as_of" parameter when it is a past day, else today."""
    today = account_today(account)
    chosen = parse_date(str(params.get("as_of") or ""))
    return chosen if chosen is not None and chosen < today else today


def _ar_aging(account: Account, params: dict[str, Any], count_only: bool = False):
    """V7: accounts receivable as of a day (today, or the "as_of" parameter's past day): every invoice that was
    open or partially paid at the end of that day with what was still due then, in the column of its age on that
    day (Current, 1–30, 31–60, 61–90, over 90 days past due). The buckets of a row add up to its amount due, so
    the columns' totals are the receivables by age, to the cent.

    As of a past day: an invoice finalized by the end of that day and not voided by then, less the payments of
    it that had succeeded by then (an invoice paid since is still open on that day; one finalized since is not
    in it). Marking an invoice uncollectible keeps no date, so an uncollectible invoice is left out on every
    day, as today."""
    as_of = aging_as_of(account, params)
    past = as_of < account_today(account)
    if past:
        cutoff = local_midnight_utc(as_of + timedelta(days=1), account.timezone)
        paid = (select(func.coalesce(func.sum(Payment.amount_minor), 0))
                .where(Payment.invoice_id == Invoice.id, Payment.account_id == account.id,
                       Payment.status == "succeeded", Payment.succeeded_at < cutoff)
                .correlate(Invoice).scalar_subquery())
        states = (InvoiceStatus.OPEN.value, InvoiceStatus.PARTIALLY_PAID.value, InvoiceStatus.PAID.value,
                  InvoiceStatus.VOID.value)
        where = (Invoice.account_id == account.id, Invoice.payment_id.is_(None), Invoice.status.in_(states),
                 Invoice.finalized_at < cutoff, (Invoice.voided_at.is_(None)) | (Invoice.voided_at >= cutoff),
                 Invoice.amount_minor > paid)
    else:
        paid = Invoice.amount_paid_minor
        where = (Invoice.account_id == account.id,
                 Invoice.status.in_((InvoiceStatus.OPEN.value, InvoiceStatus.PARTIALLY_PAID.value)))
    query = (select(Invoice.number, Invoice.issue_date, Invoice.due_date, Invoice.amount_minor,
                    paid, Invoice.currency, Contact.email, Contact.first_name, Contact.last_name,
                    Company.name)
             .outerjoin(Contact, Contact.id == Invoice.contact_id)
             .outerjoin(Company, Company.id == Invoice.company_id)
             .where(*where)
             .order_by(Invoice.due_date, Invoice.number))
    if count_only:
        return query
    headers = [Column(_("Invoice")), Column(_("Customer")), Column(_("Contact email")), Column(_("Issue date"), "date"),
               Column(_("Due date"), "date"), Column(_("Days past due"), "number"), Column(_("Amount due"), MONEY),
               Column(_("Current"), MONEY), Column(_("1–30 days"), MONEY), Column(_("31–60 days"), MONEY),
               Column(_("61–90 days"), MONEY), Column(_("Over 90 days"), MONEY), Column(_("Currency"))]

    def rows():
        for (number, issued, due, amount, paid_then, currency, email, first, last,
             company) in db.session.execute(query.execution_options(yield_per=STREAM)):
            due_now = amount - paid_then
            late = (as_of - due).days if due else 0
            buckets: list[Decimal | None] = [major(0, currency)] * len(AGING_BUCKETS)
            buckets[aging_bucket(late)] = major(due_now, currency)
            customer = company or " ".join(part for part in (first, last) if part) or email or ""
            yield (display_id_or_none("invoice", number), customer, email, issued, due, max(late, 0),
                   major(due_now, currency), *buckets, currency)

    return headers, rows()


def _invoices(account: Account, params: dict[str, Any], count_only: bool = False):
    """V7: the Invoices index as it was filtered (params["filters"], read and checked as the page reads them:
    a filter that doesn't read is left out, as on the page), newest first, with the amounts of each invoice."""
    filters = invoice_filters.read_filters(params.get("filters") or {})
    checked, _errors = invoice_filters.check(filters, account.default_currency, str(params.get("locale") or "en"))
    base = (select(Invoice.number, Invoice.status, Invoice.issue_date, Invoice.due_date, Invoice.amount_minor,
                   Invoice.tax_minor, Invoice.amount_paid_minor, Invoice.currency, Contact.email,
                   Contact.first_name, Contact.last_name, Company.name)
            .outerjoin(Contact, Contact.id == Invoice.contact_id)
            .outerjoin(Company, Company.id == Invoice.company_id)
            .where(Invoice.account_id == account.id, Invoice.payment_id.is_(None)))
    today = account_today(account)
    query = invoice_filters.apply(base, checked, account.id, today).order_by(Invoice.id.desc())
    if count_only:
        return query
    statuses = {"draft": _("Draft"), "open": _("Open"), "partially_paid": _("Partially paid"), "paid": _("Paid"),
                "void": _("Void"), "uncollectible": _("Uncollectible")}
    headers = [Column(_("Invoice")), Column(_("Status")), Column(_("Customer")), Column(_("Contact email")),
               Column(_("Issue date"), "date"), Column(_("Due date"), "date"), Column(_("Amount"), MONEY),
               Column(_("Tax"), MONEY), Column(_("Amount paid"), MONEY), Column(_("Amount due"), MONEY),
               Column(_("Currency"))]

    def rows():
        for (number, status, issued, due, amount, tax, paid, currency, email, first, last,
             company) in db.session.execute(query.execution_options(yield_per=STREAM)):
            overdue = status in invoice_filters.OWED and due is not None and due < today
            owed = max(amount - paid, 0) if status not in ("draft", "void") else 0
            customer = company or " ".join(part for part in (first, last) if part) or email or ""
            yield (display_id_or_none("invoice", number) or _("Draft"),
                   _("Overdue") if overdue else statuses.get(status, status), customer, email, issued, due,
                   major(amount, currency), major(tax, currency), major(paid, currency), major(owed, currency),
                   currency)

    return headers, rows()


def _segment(account: Account, params: dict[str, Any], count_only: bool = False):
    """W8: a segment's contacts with their payments' properties, one row per contact and currency paid in (a
    contact who paid in two currencies has two rows; the totals stay to the cent in each)."""
    segment = segments.get_segment(account.id, params.get("segment_id"))
    query = segments.export_query(segment)
    if count_only:
        return query
    tz = zone(account.timezone)
    headers = [Column(_("First name")), Column(_("Last name")), Column(_("Email")), Column(_("Payments"), "number"),
               Column(_("Total paid"), MONEY), Column(_("Currency")), Column(_("Last payment"), "datetime"),
               Column(_("Payment method"), words=method_words())]

    def rows():
        for first, last, email, n, total, currency, last_at, method in db.session.execute(
                query.execution_options(yield_per=STREAM)):
            yield (first, last, email, n or 0, major(total, currency) if currency else None, currency,
                   last_at.astimezone(tz).replace(tzinfo=None) if last_at else None, method)

    return headers, rows()


REPORTS = {"payout_reconciliation": _payout_reconciliation, "balance": _balance, "payout_details": _payout_details,
           "ar_aging": _ar_aging, "invoices": _invoices, "segment": _segment}


def count_rows(account_id: int, user: User, kind: str, params: dict[str, Any]) -> int:
    if kind == "payments":
        return _payments_count(account_id, params)
    account = db.session.get(Account, account_id)
    query = REPORTS[kind](account, params, count_only=True)
    return db.session.scalar(select(func.count()).select_from(query.subquery()))


def headers_and_rows(account_id: int, user_id: int, kind: str, params: dict[str, Any], language: str,
                     notes: dict[str, Any] | None = None) -> tuple[list[Column], Iterator[tuple]]:
    """The export's columns and its rows. `notes` receives, once the rows are read, what the merchant should
    know about the file (how many associated records an "up to 1,000" export left out)."""
    if kind == "payments":
        return _payments_rows(account_id, params, notes if notes is not None else {})
    return REPORTS[kind](db.session.get(Account, account_id), params)

