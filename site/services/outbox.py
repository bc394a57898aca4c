"""The outbox: side effects written in the caller's transaction and carried out by the worker.

Delivery is at-least-once with exponential back-off. A worker claims a message by leasing it
(`locked_until`); on PostgreSQL the claim skips rows another worker holds (FOR UPDATE SKIP LOCKED), on
SQLite the claim runs under the database write lock. Handlers must therefore be idempotent, and the
email handler is: it refuses to send a message already marked sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, or_, select, update

from kassa.clock import now
from kassa.database import dialect_name, write_transaction
from kassa.extensions import db
from kassa.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
Handler = Callable[[dict[str, Any]], None]
_HANDLERS: dict[str, Handler] = {}


def register_handler(kind: str) -> Callable[[Handler], Handler]:
    def decorate(fn: Handler) -> Handler:
        _HANDLERS[kind] = fn
        return fn

    return decorate


def enqueue(
    kind: str,
    payload: dict[str, Any],
    *,
    account_id: int | None = None,
    dedupe_key: str | None = None,
    not_before: datetime | None = None,
) -> OutboxMessage:
    """Queue a side effect inside the caller's write transaction (it commits or rolls back with it)."""
    if kind not in _HANDLERS:
        raise ValueError(f"no outbox handler for {kind!r}")
    message = OutboxMessage(
        kind=kind,
        payload=payload,
        account_id=account_id,
        dedupe_key=dedupe_key,
        next_attempt_at=not_before or now(),
    )
    db.session.add(message)
    return message


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, ... capped at one hour."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def _claimable(at: datetime):
    return or_(
        and_(OutboxMessage.status == OutboxStatus.PENDING.value, OutboxMessage.next_attempt_at <= at),
        and_(OutboxMessage.status == OutboxStatus.PROCESSING.value, OutboxMessage.locked_until < at),
    )


def claim_batch(limit: int = 20) -> list[tuple[int, int]]:
    """Lease up to `limit` due messages; returns (id, attempt number) pairs for this worker to run."""
    with write_transaction(db.session) as session:
        at = now()
        query = select(OutboxMessage).where(_claimable(at)).order_by(OutboxMessage.id).limit(limit)
        if dialect_name(session) == "postgresql":
            query = query.with_for_update(skip_locked=True)
        messages = session.scalars(query).all()
        for message in messages:
            message.status = OutboxStatus.PROCESSING.value
            message.locked_until = at + LEASE
            message.attempts += 1
        return [(m.id, m.attempts) for m in messages]


def claim_one(message_id: int) -> int | None:
    """Lease one specific message if it is due; returns its attempt number, or None if not ours to run."""
    with write_transaction(db.session) as session:
        at = now()
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, _claimable(at))
            .values(
                status=OutboxStatus.PROCESSING.value,
                locked_until=at + LEASE,
                attempts=OutboxMessage.attempts + 1,
            )
            .returning(OutboxMessage.attempts)
        )
        row = result.first()
        return row[0] if row else None


def run_claimed(message_id: int, attempt: int) -> bool:
    """Carry out a leased message and record the outcome. True when it is done."""
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        return False
    kind, payload = message.kind, dict(message.payload)
    db.session.rollback()  # no transaction is held while the handler talks to the outside world
    error: str | None = None
    try:
        _HANDLERS[kind](payload)
    except Exception as exc:  # any failure is retried later; the message and its error are kept
        log.warning("outbox message %s (%s) failed: %s", message_id, kind, exc)
        error = f"{type(exc).__name__}: {exc}"
    return _finish(message_id, attempt, error)


def _finish(message_id: int, attempt: int, error: str | None) -> bool:
    max_attempts = current_app.config["KASSA_OUTBOX_MAX_ATTEMPTS"]
    with write_transaction(db.session) as session:
        message = session.get(OutboxMessage, message_id)
        # Someone else re-claimed it after our lease ran out; their outcome wins.
        if message is None or message.attempts != attempt or message.status != OutboxStatus.PROCESSING.value:
            return False
        message.locked_until = None
        if error is None:
            message.status = OutboxStatus.DONE.value
            message.done_at = now()
            message.last_error = None
            return True
        message.last_error = error[:2000]
        if message.attempts >= max_attempts:
            message.status = OutboxStatus.FAILED.value
            on_give_up = _GIVE_UP_HOOKS.get(message.kind)
            if on_give_up:
                on_give_up(dict(message.payload), message.last_error)
        else:
            message.status = OutboxStatus.PENDING.value
            message.next_attempt_at = now() + backoff(message.attempts)
        return False


_GIVE_UP_HOOKS: dict[str, Callable[[dict[str, Any], str], None]] = {}


def on_give_up(kind: str) -> Callable:
    """Register what to record when a message of this kind has failed for the last time."""

    def decorate(fn: Callable[[dict[str, Any], str], None]) -> Callable:
        _GIVE_UP_HOOKS[kind] = fn
        return fn

    return decorate


def run_pending(limit: int = 20) -> int:
    """Claim and run one batch in this process; returns how many messages were attempted."""
    claimed = claim_batch(limit)
    for message_id, attempt in claimed:
        run_claimed(message_id, attempt)
    return len(claimed)


def retry_now(message_id: int) -> None:
    """Make a failed or waiting message due immediately (the email log's Retry button)."""
    with write_transaction(db.session) as session:
        message = session.get(OutboxMessage, message_id)
        if message is None or message.status == OutboxStatus.DONE.value:
            return
        message.status = OutboxStatus.PENDING.value
        message.next_attempt_at = now()
        message.locked_until = None
        if message.attempts >= current_app.config["KASSA_OUTBOX_MAX_ATTEMPTS"]:
            message.attempts = 0
