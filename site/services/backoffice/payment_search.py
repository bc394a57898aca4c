"""Search on the payments index (B3): one box that finds a payment by email, name, receipt, invoice, payout or
payment number, card or bank last 4, amount ("12.50" or "12,50") or the name of its payment link.

What was typed is read as every thing it could be, and each reading becomes one *branch*: a condition that an
index answers newest first (models.Payment, "B3 search"). The index query takes the newest matches of each
branch and merges them (payment_index.fetch_page), so a search stays fast at a million payments however many
rows a reading matches — never one big OR that the database would have to sort whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import ColumnElement, and_, func, or_, select

from kassa.database import search_key
from kassa.extensions import db
from kassa.models import Invoice, LedgerEntry, Payment, PaymentLink
from kassa.services.backoffice.payment_filters import currencies_by_exponent

MAX_QUERY = 200
MAX_LINKS = 10  # link-name matches searched, best (shortest) names first
MIN_PREFIX = 2  # one letter would match a good part of the account
DISPLAY_ID = re.compile(r"^(p|r|inv|po)[-\s#]?0*(\d{1,12})$", re.IGNORECASE)
AMOUNT = re.compile(r"^[-+]?\d{1,12}(?:[.,]\d{1,3})?$")
MAX_NUMBER = 2**53


def normalise(text: str | None) -> str:
    return " ".join((text or "").replace("\x00", "").split())[:MAX_QUERY]


@dataclass(frozen=True)
class Branch:
    """One reading of the search: `clause` is answered by a search index. A prefix reading ("Greta", "buyer12")
    is a range of that index, not in date order: matched by many payments, its newest are found faster by
    walking the payments newest first and checking each (`scan`, written so that no search index serves it)."""

    clause: ColumnElement
    scan: ColumnElement | None = None


def _prefix(column, needle: str) -> Branch:
    """Starts with `needle`, case-insensitively: a range on search_key(column), which its index answers."""
    low = needle.lower()
    key = search_key(column)
    scan = func.substr(func.lower(column), 1, len(low)) == low
    if ord(low[-1]) >= 0x10FFFF:
        return Branch(key >= low, scan)
    return Branch(and_(key >= low, key < low[:-1] + chr(ord(low[-1]) + 1)), scan)


def _exact(column, needle: str) -> Branch:
    return Branch(search_key(column) == needle.lower())


def _number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) < MAX_NUMBER else None


def _display_id(kind: str, number: int, account_id: int) -> list[ColumnElement]:
    if kind == "p":
        return [Payment.id == number]
    if kind == "r":
        return [Payment.receipt_number == number]
    if kind == "inv":
        return [Payment.id.in_(select(Invoice.payment_id).where(Invoice.account_id == account_id,
                                                                Invoice.number == number))]
    return [Payment.id.in_(select(LedgerEntry.payment_id).where(LedgerEntry.account_id == account_id,
                                                                LedgerEntry.payout_id == number,
                                                                LedgerEntry.payment_id.is_not(None)))]


def _amounts(text: str) -> list[ColumnElement]:
    """"12.50" or "12,50": the gross amount in each currency's own decimals (one branch per way of storing it)."""
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        return []
    if value <= 0:
        return []
    branches = []
    for exp, codes in sorted(currencies_by_exponent().items()):
        minor = value.scaleb(exp)
        if minor != minor.to_integral_value() or minor >= MAX_NUMBER:
            continue
        currency = Payment.currency.in_(codes) if exp != 2 else Payment.currency.not_in(
            [code for e, group in currencies_by_exponent().items() if e != 2 for code in group])
        branches.append(and_(Payment.amount_minor == int(minor), currency))
    return branches


def _links(account_id: int, text: str) -> list[ColumnElement]:
    """Payment links whose (internal) name contains the text: a merchant has a handful to a few thousand."""
    needle = text.lower()
    ids = db.session.scalars(
        select(PaymentLink.id).where(PaymentLink.account_id == account_id,
                                     search_key(PaymentLink.name).contains(needle, autoescape=True))
        .order_by(PaymentLink.id.desc()).limit(MAX_LINKS))
    return [Payment.link_id == link_id for link_id in ids]


def branches(account_id: int, text: str) -> list[Branch]:
    """Every reading of `text`, each one index-backed condition; [] when nothing can match."""
    return [item if isinstance(item, Branch) else Branch(item) for item in _readings(account_id, text)]


def _readings(account_id: int, text: str) -> list[ColumnElement | Branch]:
    q = normalise(text)
    if not q:
        return []
    found = DISPLAY_ID.match(q)
    if found and _number(found.group(2)):
        return _display_id(found.group(1).lower(), int(found.group(2)), account_id)
    if "@" in q:
        return [_prefix(Payment.buyer_email, q)]
    result: list[ColumnElement | Branch] = []
    compact = q.replace(" ", "")
    if compact.isascii() and compact.isdigit():
        number = _number(compact)
        if len(compact) == 4:
            result += [Payment.card_last4 == compact, Payment.bank_last4 == compact]
        if number is not None:
            result += _display_id("r", number, account_id) + _display_id("inv", number, account_id) + \
                _display_id("po", number, account_id)
    if AMOUNT.match(q):
        result += _amounts(q)
    if len(q) >= MIN_PREFIX and not q.isdigit():
        result += [_prefix(Payment.buyer_name, q), _prefix(Payment.buyer_email, q)]
        result += _links(account_id, q)
    elif not result:
        result += [_exact(Payment.buyer_name, q)]
    return result


def matches(account_id: int, text: str) -> ColumnElement:
    """The search as one condition (for exports and counts that read every row anyway)."""
    found = branches(account_id, text)
    return or_(*(branch.clause for branch in found)) if found else Payment.id.is_(None)

