"""Gap-free numbers per account (receipts, invoices), safe when payments complete at once."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from kassa.extensions import db
from kassa.models import Counter


def reserve_numbers(account_id: int, name: str, count: int) -> range:
    """Take `count` consecutive numbers in the caller's write transaction (a batch of renewals takes its block in
    one statement). Gap-free: the counter row stays locked until the caller commits, so no one else numbers in
    between, and a rollback gives the whole block back."""
    if count < 1:
        raise ValueError("reserve at least one number")
    session = db.session
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(Counter).values(account_id=account_id, name=name, value=0).on_conflict_do_nothing())
    last = session.execute(
        update(Counter)
        .where(Counter.account_id == account_id, Counter.name == name)
        .values(value=Counter.value + count)
        .returning(Counter.value)
    ).scalar_one()
    return range(last - count + 1, last + 1)


def next_number(account_id: int, name: str) -> int:
    """Take the next number in the caller's write transaction (the row lock holds until it commits)."""
    return reserve_numbers(account_id, name, 1)[0]


def current_number(account_id: int, name: str) -> int:
    return db.session.scalar(select(Counter.value).where(Counter.account_id == account_id, Counter.name == name)) or 0
