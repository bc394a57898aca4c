"""The sandbox's memory in the app's database, written on its own connections like a remote service's.

Each write commits by itself, outside whatever transaction the caller holds: a charge the sandbox
recorded stays recorded even if the app crashes before it records the payment (the reconciler then
finds it with lookup_charge).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from kassa.models import SandboxRecord

_TABLE = SandboxRecord.__table__


class DbSandboxStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _writer(self):
        return self.engine.connect().execution_options(kassa_sqlite_begin="IMMEDIATE")

    def get(self, key: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(_TABLE.c.data).where(_TABLE.c.key == key)).first()
        return dict(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any], *, account_id: int | None = None,
            due_at: datetime | None = None) -> None:
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        statement = insert(_TABLE).values(key=key, data=value, account_id=account_id, due_at=due_at)
        statement = statement.on_conflict_do_update(
            index_elements=[_TABLE.c.key],
            set_={"data": statement.excluded.data, "account_id": statement.excluded.account_id,
                  "due_at": statement.excluded.due_at},
        )
        with self._writer() as conn, conn.begin():
            conn.execute(statement)

    def claim(self, key: str, value: dict[str, Any], *, now: datetime, until: datetime) -> bool:
        """One statement, so two requests can't both get it: insert, or take over a claim that ran out."""
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        statement = insert(_TABLE).values(key=key, data=value, account_id=None, due_at=until)
        statement = statement.on_conflict_do_update(
            index_elements=[_TABLE.c.key],
            set_={"data": statement.excluded.data, "due_at": statement.excluded.due_at},
            where=_TABLE.c.due_at <= now,
        ).returning(_TABLE.c.key)
        with self._writer() as conn, conn.begin():
            return conn.execute(statement).first() is not None

    def scan_due(self, account_id: int, now: datetime) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(_TABLE.c.data)
                .where(_TABLE.c.account_id == account_id, _TABLE.c.due_at.is_not(None), _TABLE.c.due_at <= now)
                .order_by(_TABLE.c.due_at, _TABLE.c.key)
            )
            return [dict(row[0]) for row in rows]

    def delete(self, key: str) -> None:
        with self._writer() as conn, conn.begin():
            conn.execute(delete(_TABLE).where(_TABLE.c.key == key))
