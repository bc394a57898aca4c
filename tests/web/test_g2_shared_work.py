"""G2: workers share the work through one queue (the database's outbox), and the periodic tick runs once per
period however many workers run with --tick-every."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import time_machine

from kassa import worker
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.services.platform import outbox
from kassa.services.platform.periods import claim_period, period_start

HANDLED: dict[int, list[str]] = {}
HOLDING = threading.Event()
LET_GO = threading.Event()


@outbox.register_handler("g2_probe")
def _probe(payload: dict) -> None:
    if payload["n"] == 0:  # the first message keeps its worker busy until the test lets it go
        HOLDING.set()
        assert LET_GO.wait(120)
    HANDLED.setdefault(payload["n"], []).append(threading.current_thread().name)


def _wait_until(condition, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_g2_a_message_runs_on_whichever_worker_is_free_and_on_one_only(app):
    """Two workers on one queue: while the first is stuck on a long job, the second runs every other message;
    no message runs twice."""
    HANDLED.clear()
    HOLDING.clear()
    LET_GO.clear()
    with write_transaction(db.session):
        for n in range(6):
            outbox.enqueue("g2_probe", {"n": n})
    db.session.remove()
    stop = threading.Event()

    def run(batch: int) -> None:
        with app.app_context():
            worker.run_worker(app, stop=stop, poll_seconds=0.02, batch=batch)

    busy = threading.Thread(target=run, args=(1,), name="busy")
    free = threading.Thread(target=run, args=(1,), name="free")
    busy.start()
    try:
        _wait_until(HOLDING.is_set, "the first worker to take message 0")
        free.start()
        _wait_until(lambda: set(HANDLED) == {1, 2, 3, 4, 5}, "the second worker to run messages 1-5")
        LET_GO.set()
        _wait_until(lambda: 0 in HANDLED, "message 0 to finish")
    finally:
        LET_GO.set()
        stop.set()
        busy.join(60)
        if free.ident:
            free.join(60)
    expected = {0: ["busy"], **{n: ["free"] for n in range(1, 6)}}
    assert dict(HANDLED) == expected


def test_g2_eight_workers_looking_at_once_take_a_period_once(app):
    at = datetime(2027, 1, 1, 12, 0, 30, tzinfo=UTC)
    barrier = threading.Barrier(8)

    def look() -> bool:
        with app.app_context():
            try:
                barrier.wait(timeout=60)
                return claim_period("g2_test", 60, at)
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=8) as pool:
        taken = [future.result(timeout=120) for future in [pool.submit(look) for _ in range(8)]]
    assert sorted(taken) == [False] * 7 + [True]
    assert claim_period("g2_test", 60, at + timedelta(seconds=29)) is False  # still the same minute
    assert claim_period("g2_test", 60, at + timedelta(seconds=30)) is True  # the next minute: run again
    assert claim_period("g2_test", 60, at) is False  # a worker whose clock lags never runs a period again
    assert claim_period("other_job", 60, at) is True  # each job has periods of its own


def test_g2_periods_are_cut_the_same_for_every_worker():
    start = period_start(60, datetime(2027, 1, 1, 12, 0, 59, 999000, tzinfo=UTC))
    assert start == datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
    assert period_start(30, datetime(2027, 1, 1, 12, 0, 45, tzinfo=UTC)) == datetime(2027, 1, 1, 12, 0, 30, tzinfo=UTC)


def test_g2_two_workers_ticking_every_minute_run_one_tick_per_minute(app, monkeypatch):
    """Each worker looks several times a minute; whichever looks first in a minute ticks, the other skips."""
    ticks: list[str] = []

    class Report:
        failed: dict = {}
        skipped: dict = {}

    monkeypatch.setattr(worker, "run_tick", lambda: ticks.append("tick") or Report())
    start = datetime(2027, 3, 1, 9, 0, 5, tzinfo=UTC)
    for second in range(0, 180, 15):  # three minutes, both workers looking every 15 s
        with time_machine.travel(start + timedelta(seconds=second), tick=False):
            worker.tick_if_due(60)  # worker A
            worker.tick_if_due(60)  # worker B, a moment later
    assert len(ticks) == 3
