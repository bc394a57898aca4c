"""Gap-free numbers per account (receipts now, invoices later), safe when payments complete at once."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from kassa.extensions import db
from kassa.models import Counter


def next_number(account_id: int, name: str) -> int:
    """Take the next number in the caller's write transaction (the row lock holds until it commits)."""
    session = db.session
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(Counter).values(account_id=account_id, name=name, value=0).on_conflict_do_nothing())
    value = session.execute(
        update(Counter)
        .where(Counter.account_id == account_id, Counter.name == name)
        .values(value=Counter.value + 1)
        .returning(Counter.value)
    ).scalar_one()
    return value


def current_number(account_id: int, name: str) -> int:
    return db.session.scalar(select(Counter.value).where(Counter.account_id == account_id, Counter.name == name)) or 0
