"""The sandbox's memory in the app's database, written on its own connections like a remote service's.

Each write commits by itself, outside whatever transaction the caller holds: a charge the sandbox
recorded stays recorded even if the app crashes before it records the payment (the reconciler then
finds it with lookup_charge).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from kassa.bulk_sql import among, rows_as_table
from kassa.models import SandboxRecord
from kassa.processors.sandbox_store import StoreWrite

_TABLE = SandboxRecord.__table__
# Marks which request holds a claimed key (claim_many reads it back); the key's final value replaces it.
HOLDER = "_holder"


class DbSandboxStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _writer(self):
        return self.engine.connect().execution_options(kassa_sqlite_begin="IMMEDIATE")

    def _among(self, keys: Iterable[str]):
        return among(self.engine.dialect.name, _TABLE.c.key, keys)

    def _upsert(self, conn, rows: list[dict[str, Any]], *, claim_at: datetime | None = None) -> None:
        """Insert each row, or replace the stored one. A claim (`claim_at`) only takes over a row whose hold
        ran out by then: one statement per key, so two requests can't both get it. PostgreSQL reads the rows
        from one JSON parameter in a single statement; SQLite runs the statement per row."""
        postgres = self.engine.dialect.name == "postgresql"
        statement = (postgresql if postgres else sqlite).insert(_TABLE)
        if postgres:
            statement = statement.from_select(list(rows[0]), select(*rows_as_table(_TABLE, rows).c))
        replaced = {"data": statement.excluded.data, "due_at": statement.excluded.due_at}
        if claim_at is None:
            replaced["account_id"] = statement.excluded.account_id
        statement = statement.on_conflict_do_update(
            index_elements=[_TABLE.c.key], set_=replaced,
            where=_TABLE.c.due_at <= claim_at if claim_at is not None else None,
        )
        if postgres:
            conn.execute(statement)
        else:
            conn.execute(statement, rows)

    @contextmanager
    def transaction(self) -> Iterator[_Transaction]:
        """H5: one database transaction for a whole unit of work (a refund: its record, the charge's list of
        refunds, its settlement event and its idempotency key). A crash anywhere inside commits nothing."""
        with self._writer() as conn, conn.begin():
            yield _Transaction(self, conn)

    def get(self, key: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(_TABLE.c.data).where(_TABLE.c.key == key)).first()
        return dict(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any], *, account_id: int | None = None,
            due_at: datetime | None = None) -> None:
        self.put_many([StoreWrite(key, value, account_id, due_at)])

    def claim(self, key: str, value: dict[str, Any], *, now: datetime, until: datetime) -> bool:
        return bool(self.claim_many({key: value}, now=now, until=until))

    def scan_due(self, account_id: int, now: datetime) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(_TABLE.c.data)
                .where(_TABLE.c.account_id == account_id, _TABLE.c.due_at.is_not(None), _TABLE.c.due_at <= now)
                .order_by(_TABLE.c.due_at, _TABLE.c.key)
            )
            return [dict(row[0]) for row in rows]

    def delete(self, key: str) -> None:
        self.delete_many([key])

    # -- batches: a statement (and a round trip) for many keys ------------------------------------------------

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        keys = list(keys)
        if not keys:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(_TABLE.c.key, _TABLE.c.data).where(self._among(keys)))
            return {key: dict(data) for key, data in rows}

    def put_many(self, writes: Iterable[StoreWrite]) -> None:
        # One row per key (the last write wins, as with put one by one): an upsert can't touch a row twice.
        # In key order, as claims lock them (below).
        latest = {write.key: write for write in writes}
        if not latest:
            return
        rows = [{"key": w.key, "data": w.value, "account_id": w.account_id, "due_at": w.due_at}
                for w in sorted(latest.values(), key=lambda w: w.key)]
        with self._writer() as conn, conn.begin():
            self._upsert(conn, rows)

    def claim_many(self, values: dict[str, dict[str, Any]], *, now: datetime, until: datetime) -> set[str]:
        """Each key claimed as `claim` does, all in one transaction; then read back in that transaction: the
        keys holding this call's mark are the ones it got (a key someone else holds keeps their value)."""
        if not values:
            return set()
        mark = secrets.token_hex(8)
        # In key order: two batches sharing keys lock them in the same order, so neither waits on the other's.
        rows = [{"key": key, "data": {**values[key], HOLDER: mark}, "account_id": None, "due_at": until}
                for key in sorted(values)]
        with self._writer() as conn, conn.begin():
            self._upsert(conn, rows, claim_at=now)
            held = conn.execute(select(_TABLE.c.key, _TABLE.c.data).where(self._among(values)))
            return {key for key, data in held if data.get(HOLDER) == mark}

    def delete_many(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            with self._writer() as conn, conn.begin():
                conn.execute(delete(_TABLE).where(self._among(keys)))


class _Transaction:
    """DbSandboxStore.transaction's view: every statement on one connection, committed together. Reads lock
    the row (PostgreSQL FOR UPDATE; SQLite's BEGIN IMMEDIATE already holds the one write lock)."""

    def __init__(self, store: DbSandboxStore, conn) -> None:
        self.store, self.conn = store, conn

    def get(self, key: str) -> dict[str, Any] | None:
        query = select(_TABLE.c.data).where(_TABLE.c.key == key)
        if self.store.engine.dialect.name == "postgresql":
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return dict(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any], *, account_id: int | None = None,
            due_at: datetime | None = None) -> None:
        self.store._upsert(self.conn, [{"key": key, "data": value, "account_id": account_id, "due_at": due_at}])

    def delete(self, key: str) -> None:
        self.conn.execute(delete(_TABLE).where(_TABLE.c.key == key))
