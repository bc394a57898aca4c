"""The background worker: delivers outbox messages and runs the periodic tick.

Without Redis it polls the outbox table. With KASSA_REDIS_URL it hands each claimed message to RQ, so
any number of workers can execute them; the claim (a lease in the database) still guarantees that a
message is run by one worker at a time.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask

from kassa.extensions import db
from kassa.services.platform import outbox
from kassa.services.platform.ticks import run_tick

log = logging.getLogger(__name__)
QUEUE_NAME = "kassa"
RELEASE_EVERY = 10.0  # seconds between looks for leases held by dead workers


def execute_claimed(message_id: int, attempt: int) -> bool:
    """RQ job: run a message this worker's relay already leased."""
    return outbox.run_claimed(message_id, attempt)


class Worker:
    def __init__(self, app: Flask, batch: int = 20) -> None:
        self.app = app
        self.batch = batch
        self.queue = self.rq_worker = None
        if app.config.get("KASSA_REDIS_URL"):
            from redis import Redis
            from rq import Queue, SimpleWorker

            connection = Redis.from_url(app.config["KASSA_REDIS_URL"])
            self.queue = Queue(app.config.get("KASSA_RQ_QUEUE", QUEUE_NAME), connection=connection)
            # SimpleWorker runs jobs in this process, inside the app context we already hold.
            self.rq_worker = SimpleWorker([self.queue], connection=connection)

    @property
    def uses_rq(self) -> bool:
        return self.queue is not None

    def work_once(self) -> int:
        """Claim due messages and get them run; returns how many were claimed."""
        if not self.uses_rq:
            return outbox.run_pending(self.batch)
        claimed = outbox.claim_batch(self.batch)
        for message_id, attempt in claimed:
            self.queue.enqueue(execute_claimed, message_id, attempt, job_timeout=300)
        self.rq_worker.work(burst=True, logging_level="WARNING")
        return len(claimed)


def run_worker(
    app: Flask,
    *,
    stop: threading.Event,
    poll_seconds: float = 1.0,
    tick_seconds: float | None = None,
    batch: int = 20,
) -> None:
    """Loop until `stop` is set. Waits use the stop event, so shutdown is immediate."""
    worker = Worker(app, batch)
    last_tick = last_release = 0.0
    while not stop.is_set():
        worked = 0
        try:
            if time.monotonic() - last_release >= RELEASE_EVERY:
                # H6: what a dead worker on this machine had leased runs now, not when its lease runs out.
                last_release = time.monotonic()
                outbox.release_dead_leases()
            worked = worker.work_once()
            if tick_seconds is not None and time.monotonic() - last_tick >= tick_seconds:
                last_tick = time.monotonic()
                report = run_tick()
                if report.failed:
                    log.warning("tick failures: %s", report.failed)
                if report.skipped:
                    log.warning("tick items skipped after failing (retried later): %s", report.skipped)
        except Exception:
            log.exception("worker loop error; continuing")
            db.session.rollback()
        finally:
            db.session.remove()
        if not worked:
            stop.wait(poll_seconds)
