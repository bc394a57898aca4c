"""The Stripe events Kassa received for one connection (K7), kept in the app's database like the sandbox's memory.

A signed webhook and the catch-up poll of GET /v1/events both put events here; the unique (account, event id)
row makes a redelivery, a poll finding an event the webhook already brought, or ten parallel deliveries store
one row. `StripeProcessor.due_events` reads the rows still pending; `acknowledge_event` marks them done.
Each write commits by itself on its own connection (like a remote processor's records): the webhook answers
2xx only once the event is stored, whatever the caller's transaction does afterwards."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from kassa.models import StripeEvent

_TABLE = StripeEvent.__table__
# How many pending events one pass reads: the rest wait for the next pass (the queued job or the poll).
PENDING_BATCH = 500


def object_of(event: dict[str, Any]) -> str:
    """The id of the object an event is about (pi_…, re_…, du_…)."""
    obj = (event.get("data") or {}).get("object") or {}
    return str(obj.get("id") or "")[:120]


class StripeInbox:
    def __init__(self, engine: Engine, account_id: int, connection_id: int) -> None:
        self.engine = engine
        self.account_id = account_id
        self.connection_id = connection_id

    def add(self, events: Iterable[dict[str, Any]], source: str, received_at: datetime) -> list[str]:
        """Store events not stored yet; returns the ids that were new (a repeat stores nothing)."""
        rows = [{
            "account_id": self.account_id, "connection_id": self.connection_id, "event_id": str(event["id"])[:64],
            "type": str(event["type"])[:64], "object_id": object_of(event),
            "created": datetime.fromtimestamp(int(event["created"]), UTC), "source": source, "payload": event,
            "received_at": received_at, "done_at": None,
        } for event in events]
        if not rows:
            return []
        postgres = self.engine.dialect.name == "postgresql"
        statement = (postgresql if postgres else sqlite).insert(_TABLE).on_conflict_do_nothing(
            index_elements=[_TABLE.c.account_id, _TABLE.c.event_id]).returning(_TABLE.c.event_id)
        new: list[str] = []
        with self.engine.connect().execution_options(kassa_sqlite_begin="IMMEDIATE") as conn, conn.begin():
            for row in rows:  # one statement per row: RETURNING answers only for the rows it inserted
                new.extend(conn.execute(statement, row).scalars())
        return new

    def pending(self, received_by: datetime) -> list[dict[str, Any]]:
        """The connection's events not done yet and received by then, oldest (by Stripe's time) first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(_TABLE.c.id, _TABLE.c.event_id, _TABLE.c.type, _TABLE.c.object_id, _TABLE.c.created,
                       _TABLE.c.payload)
                .where(_TABLE.c.connection_id == self.connection_id, _TABLE.c.done_at.is_(None),
                       _TABLE.c.received_at <= received_by)
                .order_by(_TABLE.c.created, _TABLE.c.id).limit(PENDING_BATCH)
            ).mappings().all()
        return [dict(row) for row in rows]

    def done(self, row_ids: Iterable[int], at: datetime) -> None:
        ids = list(row_ids)
        if not ids:
            return
        with self.engine.connect().execution_options(kassa_sqlite_begin="IMMEDIATE") as conn, conn.begin():
            conn.execute(update(_TABLE).where(_TABLE.c.id.in_(ids), _TABLE.c.done_at.is_(None)).values(done_at=at))
