"""The background worker: delivers outbox messages and runs the periodic tick.

G2, one design: the database is the queue. Every worker claims due outbox messages with a lease (on PostgreSQL
`FOR UPDATE SKIP LOCKED`, so workers never wait for each other's rows; on SQLite under the write lock), so a
message runs on whichever worker is free, and on one at a time. RQ was used before for the same purpose, but
the claim already lived in the database and the worker ran RQ's jobs itself (burst mode): RQ added a second
queue to keep consistent and gained nothing, so it was removed (docs/architecture.md). Redis stays for the rate
limits.

The periodic tick runs once per period across all workers (`platform.periods.claim_period`): each worker
looks a few times per period, and the first to look in a new period runs it.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask

from kassa.extensions import db
from kassa.services.platform import outbox
from kassa.services.platform.periods import claim_period
from kassa.services.platform.ticks import run_tick

log = logging.getLogger(__name__)
RELEASE_EVERY = 10.0  # seconds between looks for leases held by dead workers
TICK_JOB = "tick"
LOOKS_PER_PERIOD = 4  # a worker that looks once per period could miss one: the loop's own time adds up


def tick_if_due(tick_seconds: float) -> bool:
    """Run the tick when this worker is the first to look in the current period. True when it ran here."""
    if not claim_period(TICK_JOB, tick_seconds):
        return False
    report = run_tick()
    if report.failed:
        log.warning("tick failures: %s", report.failed)
    if report.skipped:
        log.warning("tick items skipped after failing (retried later): %s", report.skipped)
    return True


def run_worker(
    app: Flask,
    *,
    stop: threading.Event,
    poll_seconds: float = 1.0,
    tick_seconds: float | None = None,
    batch: int = 20,
) -> None:
    """Loop until `stop` is set. Waits use the stop event, so shutdown is immediate."""
    look_every = None if tick_seconds is None else min(tick_seconds, max(1.0, tick_seconds / LOOKS_PER_PERIOD))
    last_look = last_release = float("-inf")
    while not stop.is_set():
        worked = 0
        try:
            if time.monotonic() - last_release >= RELEASE_EVERY:
                # H6: what a dead worker on this machine had leased runs now, not when its lease runs out.
                last_release = time.monotonic()
                outbox.release_dead_leases()
            worked = outbox.run_pending(batch)
            if look_every is not None and time.monotonic() - last_look >= look_every:
                last_look = time.monotonic()
                tick_if_due(tick_seconds)
        except Exception:
            log.exception("worker loop error; continuing")
            db.session.rollback()
        finally:
            db.session.remove()
        if not worked:
            stop.wait(poll_seconds)
