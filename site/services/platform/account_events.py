"""The account event feed (W6, I6): what happened to an account's money objects, in the order it happened.

Each money machine declares on its transitions the event a move records (``Transition.event``,
services/money/machines.py); ``move_<object>`` calls ``record`` in the move's own transaction, and a
repeated move is a no-op that records nothing, so each transition is in the feed exactly once. The set-based
batch of renewal successes (billing_outcomes) writes the same events for its whole batch with ``event_row`` and
``insert_events`` (one statement). Objects created in a state record theirs where they are created
(subscription.started, dispute.opened).

Consumers (workflows, outgoing webhooks) read ``events_after(account_id, cursor)``: ids only grow, and the
index (account_id, id) serves that read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from kassa.bulk_sql import insert_rows
from kassa.clock import now
from kassa.event_types import AccountEventType
from kassa.extensions import db
from kassa.models import AccountEvent, Payment

# The object an event is about, by its table: the name consumers (and webhooks' `data.object`) see.
_OBJECT_TYPES = {"payments": "payment", "subscriptions": "subscription", "disputes": "dispute", "payouts": "payout",
                 "refunds": "refund", "checkout_sessions": "checkout_session"}


def _object_type(obj: Any) -> str:
    return _OBJECT_TYPES[type(obj).__tablename__]


def _mode(obj: Any) -> str:
    """The object's test/live mode; a dispute (or refund) has its payment's."""
    mode = getattr(obj, "mode", None)
    if mode is None:
        mode = db.session.scalar(select(Payment.mode).where(Payment.id == obj.payment_id))
    return mode


def event_row(account_id: int, type: AccountEventType, *, object_type: str, object_id: int, mode: str,
              at: datetime | None, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """One feed row as a dict, for set-based paths that insert a batch at once (``insert_events``)."""
    return {"account_id": account_id, "type": AccountEventType(type).value, "object_type": object_type,
            "object_id": object_id, "mode": mode, "occurred_at": at or now(), "data": data or {}}


def insert_events(session, rows: list[dict[str, Any]]) -> None:
    """The batch's events in one statement, in the caller's transaction."""
    insert_rows(session, AccountEvent.__table__, rows)


def record(account_id: int, type: AccountEventType, obj: Any, at: datetime | None = None,
           data: dict[str, Any] | None = None) -> AccountEvent:
    """Record that `type` happened to `obj` (an ORM money object: payment, subscription, dispute, payout) at
    `at`, in the caller's transaction. Called by the transition itself, so it runs once per transition."""
    event = AccountEvent(**event_row(account_id, type, object_type=_object_type(obj), object_id=obj.id,
                                     mode=_mode(obj), at=at, data=data))
    db.session.add(event)
    return event


def record_move(event: AccountEventType | None, obj: Any, at: datetime | None, data: dict[str, Any] | None = None
                ) -> None:
    """What ``move_<object>`` calls with its transition's ``event`` (None: the move records nothing)."""
    if event is not None:
        record(obj.account_id, event, obj, at, data)


def events_after(account_id: int, after_id: int = 0, *, types: list[str] | None = None,
                 limit: int = 500) -> list[AccountEvent]:
    """The account's events with an id above `after_id` (a consumer's cursor), oldest first."""
    query = select(AccountEvent).where(AccountEvent.account_id == account_id, AccountEvent.id > after_id)
    if types is not None:
        query = query.where(AccountEvent.type.in_(types))
    return list(db.session.scalars(query.order_by(AccountEvent.id).limit(limit)))
