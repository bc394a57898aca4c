"""The rows behind exports and reports: the payments view's rows (same filters and sort as the index)
and the three payment reports (X1), as header labels plus a streamed iterator of typed values."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import String, func, select, type_coerce
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
    LedgerEntry,
    Payment,
    PaymentLink,
    Payout,
    User,
)
from kassa.money import exponent
from kassa.services.backoffice.payment_filters import FilterContext
from kassa.services.backoffice.payment_index import COLUMNS, SORTS, IndexState, base_query

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


def _raw(column):
    """Read a timestamp column without the generic result processing (the `local` converter does it)."""
    return type_coerce(column, String)


# Each index column becomes one or more export columns: (header, SQL expression, how to turn the value).
def _payment_columns(key: str, tz: ZoneInfo) -> list[tuple[str, Any, Any]]:
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
    money = MONEY
    return {
        "amount": [(_("Gross amount"), Payment.amount_minor, money), (_("Currency"), Payment.currency, None)],
        "status": [(_("Status"), Payment.display_status, status_labels.get)],
        "date": [(_("Payment date"), _raw(Payment.created_at), local)],
        "contact": [(_("Contact"), func.coalesce(func.nullif(Payment.buyer_name, ""), Payment.buyer_email), None)],
        "method": [(_("Payment method"), Payment.method, None), (_("Card brand"), Payment.card_brand, None),
                   (_("Last 4"), func.coalesce(Payment.card_last4, Payment.bank_last4), None)],
        "source": [(_("Source"), PaymentLink.name, None)],
        "currency": [(_("Currency"), Payment.currency, None)],
        "fee": [(_("Fee"), Payment.fee_minor, money)],
        "net": [(_("Net"), Payment.amount_minor - Payment.fee_minor, money)],
        "refunded": [(_("Refunded"), Payment.refunded_minor, money)],
        "receipt": [(_("Receipt number"), Payment.receipt_number, lambda v: display_id_or_none("receipt", v))],
        "email": [(_("Contact email"), Payment.buyer_email, None)],
        "company": [(_("Company"), Payment.buyer_company, None)],
        "dispute_created": [(_("Dispute created"), _raw(Payment.dispute_created_at), local)],
        "dispute_reason": [(_("Dispute reason"), Payment.dispute_reason, None)],
        "dispute_amount": [(_("Dispute amount"), Payment.dispute_amount_minor, money)],
        "dispute_deadline": [(_("Dispute deadline"), _raw(Payment.dispute_due_by), local)],
        "dispute_closed": [(_("Dispute closed"), _raw(Payment.dispute_closed_at), local)],
    }[key]


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


def _payments_rows(account_id: int, params: dict[str, Any]) -> tuple[list[str], Iterator[tuple]]:
    account, state, query = _payments_query(account_id, params)
    tz = zone(account.timezone)
    keys = [key for key in (params.get("columns") or state.columns) if key in COLUMNS]
    specs = [spec for key in keys for spec in _payment_columns(key, tz)]
    include_associations = bool(params.get("associations"))
    headers = [label for label, _expr, _convert in specs]
    exprs = [expr for _label, expr, _convert in specs]
    if include_associations:
        for _kind, column, label in ASSOCIATIONS:
            headers.append(_(label))
            exprs.append(column())
    query = (query.with_only_columns(*exprs, Payment.currency)
             .outerjoin(PaymentLink, PaymentLink.id == Payment.link_id))
    if include_associations:
        query = (query.outerjoin(Contact, Contact.id == Payment.contact_id)
                 .outerjoin(Company, Company.id == Payment.company_id)
                 .outerjoin(Deal, Deal.id == Payment.deal_id))
    column = Payment.created_at if SORTS[state.sort][1] == "date" else Payment.amount_minor
    order = (column.desc(), Payment.id.desc()) if SORTS[state.sort][2] else (column.asc(), Payment.id.asc())
    query = query.order_by(*order)
    # Only the columns that need it are converted; the rest pass straight through.
    money_columns = [i for i, (_label, _expr, convert) in enumerate(specs) if convert is MONEY]
    other_columns = [(i, convert) for i, (_label, _expr, convert) in enumerate(specs)
                     if convert is not None and convert is not MONEY]
    width = len(exprs)

    def rows() -> Iterator[tuple]:
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
                yield values

    return headers, rows()


# -- reports (X1) -----------------------------------------------------------------------------------


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
    headers = [_("Payout"), _("Payout date"), _("Arrival date"), _("Payout status"), _("Payout amount"),
               _("Transaction type"), _("Amount"), _("Currency"), _("Payment"), _("Description"), _("Date")]

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
    headers = [_("Date"), _("Type"), _("Amount"), _("Currency"), _("Available on"), _("Payout"), _("Payment"),
               _("Source"), _("Contact email"), _("Description")]

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
    headers = [_("Payout"), _("Payout date"), _("Payment"), _("Payment date"), _("Gross amount"), _("Fee"),
               _("Currency"), _("Payment method"), _("Contact email"), _("Settled amount"), _("Settlement currency")]

    def rows():
        for (pid, pdate, payment_id, created, gross, currency, fee, method, email, settled,
             settle_currency) in db.session.execute(query.execution_options(yield_per=STREAM)):
            yield (display_id("payout", pid), pdate, display_id("payment", payment_id), created.astimezone(tz).replace(tzinfo=None),
                   major(gross, currency), major(fee, currency), currency, method, email,
                   major(settled, settle_currency), settle_currency)

    return headers, rows()


REPORTS = {"payout_reconciliation": _payout_reconciliation, "balance": _balance, "payout_details": _payout_details}


def count_rows(account_id: int, user: User, kind: str, params: dict[str, Any]) -> int:
    if kind == "payments":
        return _payments_count(account_id, params)
    account = db.session.get(Account, account_id)
    query = REPORTS[kind](account, params, count_only=True)
    return db.session.scalar(select(func.count()).select_from(query.subquery()))


def headers_and_rows(account_id: int, user_id: int, kind: str, params: dict[str, Any],
                     language: str) -> tuple[list[str], Iterator[tuple]]:
    if kind == "payments":
        return _payments_rows(account_id, params)
    return REPORTS[kind](db.session.get(Account, account_id), params)

