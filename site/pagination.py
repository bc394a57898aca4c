"""Pagination (M5): the one place list pages get their page size and their paging arithmetic.

Two styles, on purpose:
- keyset lists ("Newer"/"Older" by a cursor — payments, subscriptions, payouts, email log), which stay
  correct while rows arrive: ``PAGE_SIZE`` rows, one more fetched to know whether there is a next page;
- numbered pages for the small catalogues people browse by name (links, products): ``NUMBERED_PAGE_SIZE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select

from kassa.extensions import db

PAGE_SIZE = 50
NUMBERED_PAGE_SIZE = 25


def keyset_window(size: int = PAGE_SIZE) -> int:
    """How many rows a keyset page reads: the page and one more (B3's search merges such windows)."""
    return size + 1


def keyset_page(query: Select, size: int = PAGE_SIZE) -> tuple[list[Any], bool]:
    """The first ``size`` rows of an ordered, cursor-filtered query, and whether more follow."""
    rows = list(db.session.scalars(query.limit(keyset_window(size))))
    return rows[:size], len(rows) > size


@dataclass(frozen=True)
class NumberedPage:
    rows: list[Any]
    page: int
    pages: int
    total: int


def numbered_page(query: Select, order_by: tuple, page: int, size: int = NUMBERED_PAGE_SIZE) -> NumberedPage:
    """Page ``page`` (1-based) of an unordered query. A page past the end shows the last one (and a huge
    number never reaches the database's OFFSET)."""
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max((total + size - 1) // size, 1)
    page = min(page, pages)
    rows = list(db.session.scalars(query.order_by(*order_by).offset((page - 1) * size).limit(size)))
    return NumberedPage(rows=rows, page=page, pages=pages, total=total)
