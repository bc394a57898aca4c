"""One payment source model (V6): where each payment came from — a payment link, an invoice, a quote, a
subscription, or a manual payment recorded on an invoice — and its name (the link's name, the invoice's number).

The index's Source filter and column, the export's Source and Source name columns and the payment's panel all
read it from here. A manual payment (V3) is stored with source "invoice" and method "manual", and is shown as its
own source; quotes (V4) store source "quote", listed ahead of them so filters and saved views work when they land.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import String, case, cast, func, literal, select
from sqlalchemy.sql import ColumnElement

from kassa.display_ids import display_id
from kassa.extensions import db
from kassa.models import MANUAL_METHOD, Invoice, Payment, PaymentLink, PaymentSource


def kind_column() -> ColumnElement:
    """The source as SQL (the filter, the export): Payment.source, with a manual payment as "manual"."""
    return case((Payment.method == MANUAL_METHOD, literal(PaymentSource.MANUAL.value)), else_=Payment.source)


def kind_of(payment) -> PaymentSource:
    """A payment's (or an index row's) source; an unknown stored value reads as a link's (the column's default)."""
    if payment.method == MANUAL_METHOD:
        return PaymentSource.MANUAL
    try:
        return PaymentSource(payment.source)
    except ValueError:
        return PaymentSource.LINK


def options() -> list[tuple[str, str]]:
    return [(kind.value, kind.label) for kind in PaymentSource]


def words() -> dict[str, str]:
    return dict(options())


def invoice_number_text(number_column) -> ColumnElement:
    """An invoice's display id (INV-000012) computed in SQL, as display_id writes it, on SQLite and PostgreSQL."""
    digits = literal("000000") + cast(number_column, String)
    return literal("INV-") + func.substr(digits, func.length(digits) - 5)


@dataclass(frozen=True)
class Source:
    kind: PaymentSource
    name: str  # the link's name, the invoice's number; "" when there is none to show
    endpoint: str | None  # the merchant's page of it
    args: dict[str, int]

    @property
    def label(self) -> str:
        return self.kind.label


def names(rows, links: dict[int, str]) -> dict[int, Source]:
    """Each row's source and name, for a page of the index (`links`: link names already read)."""
    invoice_ids = {row.invoice_id for row in rows if getattr(row, "invoice_id", None)}
    numbers = dict(db.session.execute(select(Invoice.id, Invoice.number).where(Invoice.id.in_(invoice_ids))).all()) \
        if invoice_ids else {}
    return {row.id: _source(row, links.get(row.link_id) if row.link_id else None, numbers) for row in rows}


def of(payment: Payment) -> Source:
    """One payment's source, for its panel."""
    link = db.session.get(PaymentLink, payment.link_id) if payment.link_id else None
    numbers = {}
    if payment.invoice_id is not None:
        numbers = {payment.invoice_id: db.session.scalar(select(Invoice.number).where(
            Invoice.id == payment.invoice_id, Invoice.account_id == payment.account_id))}
    return _source(payment, link.name if link else None, numbers)


def _source(row, link_name: str | None, numbers: dict[int, int | None]) -> Source:
    kind = kind_of(row)
    if kind in (PaymentSource.INVOICE, PaymentSource.MANUAL) and row.invoice_id is not None:
        number = numbers.get(row.invoice_id)
        return Source(kind, display_id("invoice", number) if number else "", "invoices.detail",
                      {"invoice_id": row.invoice_id})
    if kind is PaymentSource.SUBSCRIPTION and row.subscription_id is not None:
        return Source(kind, link_name or "", "subscriptions.detail", {"subscription_id": row.subscription_id})
    if row.link_id is not None:
        return Source(kind, link_name or "", "links.share", {"link_id": row.link_id})
    return Source(kind, "", None, {})
