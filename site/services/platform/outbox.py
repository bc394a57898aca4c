"""The outbox: side effects written in the caller's transaction and carried out by the worker.

Delivery is at-least-once with exponential back-off. A worker claims a message by leasing it
(`locked_until`); on PostgreSQL the claim skips rows another worker holds (FOR UPDATE SKIP LOCKED), on
SQLite the claim runs under the database write lock. Handlers must therefore be idempotent, and the
email handler is: it refuses to send a message already marked sent.

H6: a lease names its holder ("host:pid"). When that process is known dead (same host, pid gone),
`release_dead_leases` makes its messages due again at once, rather than after the 5-minute lease; `flask
kassa serve` calls it when it restarts its worker, and every worker calls it as it starts and now and then.
A holder on another host can't be checked from here: its lease runs out as before.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, distinct, or_, select, tuple_, update

from kassa.clock import now
from kassa.database import locked, write_transaction
from kassa.extensions import db
from kassa.logs import log_context
from kassa.models import OutboxMessage, OutboxStatus
from kassa.services.platform.ticks import each_item

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
Handler = Callable[[dict[str, Any]], None]
_HANDLERS: dict[str, Handler] = {}
# A batch handler gets every claimed message of its kind at once, as (message id, attempt, payload) triples, and
# closes them itself with `finish_done` inside the transaction that records their outcome (I6: one claim, one
# record per batch instead of a handful of transactions per message).
Claimed = tuple[int, int, dict[str, Any]]
BatchHandler = Callable[[list[Claimed]], None]
_BATCH_HANDLERS: dict[str, BatchHandler] = {}


def register_handler(kind: str) -> Callable[[Handler], Handler]:
    def decorate(fn: Handler) -> Handler:
        _HANDLERS[kind] = fn
        return fn

    return decorate


def register_batch_handler(kind: str) -> Callable[[BatchHandler], BatchHandler]:
    def decorate(fn: BatchHandler) -> BatchHandler:
        _BATCH_HANDLERS[kind] = fn
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
    if kind not in _HANDLERS and kind not in _BATCH_HANDLERS:
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


def _machine() -> str:
    """This host, and its process-id namespace: two containers may share a host name but not pid numbers."""
    try:
        namespace = os.readlink("/proc/self/ns/pid").removeprefix("pid:")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}{namespace}"


def worker_identity(pid: int | None = None) -> str:
    """Who holds a lease: this machine and a process id (this process unless `pid` is given)."""
    return f"{_machine()}:{pid if pid is not None else os.getpid()}"


def process_alive(pid: int) -> bool:
    """Whether process `pid` on this host still runs (a zombie, dead but not yet reaped, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and not ours to judge
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True  # no /proc (macOS): os.kill said it exists


def release_dead_leases() -> int:
    """Make messages leased by a dead process on this host due again now. Returns how many."""
    machine = _machine()
    holders = db.session.scalars(
        select(distinct(OutboxMessage.locked_by)).where(OutboxMessage.status == OutboxStatus.PROCESSING.value,
                                                        OutboxMessage.locked_by.is_not(None))
    ).all()
    db.session.rollback()
    dead = []
    for holder in holders:
        where, _sep, pid_text = holder.rpartition(":")
        if where == machine and pid_text.isascii() and pid_text.isdigit() and int(pid_text) != os.getpid() and not process_alive(int(pid_text)):
            dead.append(holder)
    if not dead:
        return 0
    with write_transaction(db.session) as session:
        released = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.PROCESSING.value, OutboxMessage.locked_by.in_(dead))
            .values(status=OutboxStatus.PENDING.value, next_attempt_at=now(), locked_until=None, locked_by=None)
        ).rowcount
    log.warning("released %d outbox message(s) leased by dead worker(s) %s; they run again now",
                released, ", ".join(dead))
    return released


def claim_batch(limit: int = 20) -> list[tuple[int, int]]:
    """Lease up to `limit` due messages; returns (id, attempt number) pairs for this worker to run."""
    return [(message_id, attempt) for message_id, attempt, _kind, _payload in _claim(limit)]


def _claim(limit: int) -> list[tuple[int, int, str, dict[str, Any]]]:
    with write_transaction(db.session) as session:
        at = now()
        query = select(OutboxMessage).where(_claimable(at)).order_by(OutboxMessage.id).limit(limit)
        messages = session.scalars(locked(session, query, skip_locked=True)).all()
        holder = worker_identity()
        for message in messages:
            message.status = OutboxStatus.PROCESSING.value
            message.locked_until = at + LEASE
            message.locked_by = holder
            message.attempts += 1
        return [(m.id, m.attempts, m.kind, dict(m.payload)) for m in messages]


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
                locked_by=worker_identity(),
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
    request_id, account_id = message.request_id, message.account_id
    db.session.rollback()  # no transaction is held while the handler talks to the outside world
    error: str | None = None
    # G4: the job's log lines (and messages it queues) carry the id of the request that queued it.
    with log_context(request_id, account_id):
        log.info("outbox message %s (%s) attempt %s", message_id, kind, attempt,
                 extra={"job": message_id, "job_kind": kind})
        try:
            _HANDLERS[kind](payload)
        except Exception as exc:  # any failure is retried later; the message and its error are kept
            log.warning("outbox message %s (%s) failed: %s", message_id, kind, exc,
                        extra={"job": message_id, "job_kind": kind})
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
        message.locked_by = None
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


def _update_claimed(session, claimed: list[tuple[int, int]], **values) -> int:
    """Set `values` on these leased (message id, attempt) rows, set-based, unless someone else re-claimed one after
    our lease ran out (its attempt number moved on: their outcome wins)."""
    if not claimed:
        return 0
    return session.execute(
        update(OutboxMessage)
        .where(tuple_(OutboxMessage.id, OutboxMessage.attempts).in_(claimed),
               OutboxMessage.status == OutboxStatus.PROCESSING.value)
        .values(locked_until=None, locked_by=None, **values)
        .execution_options(synchronize_session=False)
    ).rowcount


def finish_done(session, claimed: list[tuple[int, int]]) -> int:
    """Inside the caller's write transaction: mark these leased messages done."""
    return _update_claimed(session, claimed, status=OutboxStatus.DONE.value, done_at=now(), last_error=None)


def release_claimed(session, claimed: list[tuple[int, int]]) -> int:
    """Inside the caller's write transaction: give back leased messages not run this time (due again at once,
    their attempt not counted)."""
    return _update_claimed(session, claimed, status=OutboxStatus.PENDING.value, attempts=OutboxMessage.attempts - 1)


def _run_batch(kind: str, items: list[Claimed]) -> None:
    try:
        _BATCH_HANDLERS[kind](items)
    except Exception as exc:  # the whole batch is retried later, each message with its own back-off
        db.session.rollback()
        log.warning("outbox batch of %d %s message(s) failed: %s", len(items), kind, exc, extra={"job_kind": kind})
        for message_id, attempt, _payload in items:
            _finish(message_id, attempt, f"{type(exc).__name__}: {exc}")


def run_pending(limit: int = 20) -> int:
    """Claim and run one batch in this process; returns how many messages were attempted."""
    claimed = _claim(limit)
    batches: dict[str, list[Claimed]] = {}
    single: list[tuple[int, int]] = []
    for message_id, attempt, kind, payload in claimed:
        if kind in _BATCH_HANDLERS:
            batches.setdefault(kind, []).append((message_id, attempt, payload))
        else:
            single.append((message_id, attempt))
    # H1: a handler's failure is recorded by run_claimed; anything else failing for one message (recording
    # its outcome, a give-up hook) skips that message only (its lease runs out and it is retried), never the
    # rest of the batch: emails, exports and receipts of other merchants still go out.
    each_item("outbox", single, lambda pair: run_claimed(*pair), describe=lambda pair: f"outbox message {pair[0]}")
    each_item("outbox", list(batches.items()), lambda batch: _run_batch(*batch),
              describe=lambda batch: f"outbox batch of {len(batch[1])} {batch[0]} message(s)")
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
        message.locked_by = None
        if message.attempts >= current_app.config["KASSA_OUTBOX_MAX_ATTEMPTS"]:
            message.attempts = 0
