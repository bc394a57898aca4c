"""V7: the Invoices index's filters — status (overdue among them, read from the due date), customer (name, email
or company, contains), due date from / to, amount (the invoice's total) from / to — checked once here, applied
to the query, and turned back into a query string (the page's links, saved views)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import Select, exists, or_, select

from kassa.extensions import db
from kassa.forms import parse_date
from kassa.models import Company, Contact, Invoice, InvoiceStatus
from kassa.money import MoneyError, parse_money
from kassa.services.links.products import MAX_AMOUNT_MINOR

OVERDUE = "overdue"
STATUSES = (*(s.value for s in InvoiceStatus), OVERDUE)
OWED = (InvoiceStatus.OPEN.value, InvoiceStatus.PARTIALLY_PAID.value)
MAX_QUERY = 200


@dataclass(frozen=True)
class InvoiceFilters:
    status: str = ""
    q: str = ""  # the customer: contact name or email, or company name
    due_from: str = ""  # YYYY-MM-DD, as typed
    due_to: str = ""
    amount_min: str = ""  # as typed, in the account's currency's format
    amount_max: str = ""

    def to_args(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    @property
    def active(self) -> bool:
        return bool(self.to_args())


FIELDS = tuple(f.name for f in fields(InvoiceFilters))


def read_filters(args: Mapping[str, str]) -> InvoiceFilters:
    """The filters from a query string or a saved view's state: only known keys, text trimmed and bounded."""
    return InvoiceFilters(**{name: str(args.get(name) or "").replace("\x00", "").strip()[:MAX_QUERY]
                             for name in FIELDS})


@dataclass(frozen=True)
class CheckedFilters:
    status: str
    q: str
    due_from: date | None
    due_to: date | None
    amount_min: int | None
    amount_max: int | None


def check(filters: InvoiceFilters, currency: str, locale: str) -> tuple[CheckedFilters, dict[str, str]]:
    """The filters as values, and an error per field that doesn't read (that filter is then not applied)."""
    errors: dict[str, str] = {}
    status = filters.status if filters.status in STATUSES else ""
    if filters.status and not status:
        errors["status"] = _("Choose a status.")
    dates: dict[str, date | None] = {}
    for name in ("due_from", "due_to"):
        text = getattr(filters, name)
        dates[name] = parse_date(text) if text else None
        if text and dates[name] is None:
            errors[name] = _("Enter a real date as YYYY-MM-DD.")
    if dates["due_from"] and dates["due_to"] and dates["due_from"] > dates["due_to"]:
        errors["due_to"] = _("Choose a date on or after the first one.")
        dates["due_to"] = None
    amounts: dict[str, int | None] = {}
    for name in ("amount_min", "amount_max"):
        text = getattr(filters, name)
        amounts[name] = None
        if text:
            try:
                value = parse_money(text, currency, locale).amount_minor
            except MoneyError:
                value = -1
            if not 0 <= value <= MAX_AMOUNT_MINOR:
                errors[name] = _("Enter an amount like 12.50")
            else:
                amounts[name] = value
    if amounts["amount_min"] is not None and amounts["amount_max"] is not None \
            and amounts["amount_min"] > amounts["amount_max"]:
        errors["amount_max"] = _("Choose an amount at least the minimum.")
        amounts["amount_max"] = None
    return CheckedFilters(status=status, q=filters.q, due_from=dates["due_from"], due_to=dates["due_to"],
                          amount_min=amounts["amount_min"], amount_max=amounts["amount_max"]), errors


def apply(query: Select, checked: CheckedFilters, account_id: int, today: date) -> Select:
    """`query` (of the account's invoices) narrowed by the filters."""
    if checked.status == OVERDUE:
        query = query.where(Invoice.status.in_(OWED), Invoice.due_date < today)
    elif checked.status:
        query = query.where(Invoice.status == checked.status)
    if checked.q:
        needle = checked.q.lower()
        contact = exists(select(Contact.id).where(
            Contact.id == Invoice.contact_id, Contact.account_id == account_id,
            or_(db.func.lower(Contact.email).contains(needle, autoescape=True),
                db.func.lower(Contact.first_name).contains(needle, autoescape=True),
                db.func.lower(Contact.last_name).contains(needle, autoescape=True),
                db.func.lower(db.func.coalesce(Contact.first_name, "") + " " + db.func.coalesce(Contact.last_name, ""))
                .contains(needle, autoescape=True))))
        company = exists(select(Company.id).where(
            Company.id == Invoice.company_id, Company.account_id == account_id,
            db.func.lower(Company.name).contains(needle, autoescape=True)))
        query = query.where(or_(contact, company))
    if checked.due_from is not None:
        query = query.where(Invoice.due_date >= checked.due_from)
    if checked.due_to is not None:
        query = query.where(Invoice.due_date <= checked.due_to)
    if checked.amount_min is not None:
        query = query.where(Invoice.amount_minor >= checked.amount_min)
    if checked.amount_max is not None:
        query = query.where(Invoice.amount_minor <= checked.amount_max)
    return query
