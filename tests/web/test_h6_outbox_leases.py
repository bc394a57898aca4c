"""H6: a lease names the worker holding it; a worker known dead loses its leases at once.

Before, a message leased by a worker that was killed waited out the whole 5-minute lease. Now
`release_dead_leases` (run by `flask kassa serve` when it restarts its worker, and by every worker as it
starts and every few seconds) makes the messages of a dead process on this machine due again at once, while
the leases of a live worker, and of workers on other machines (which can't be checked from here), stand.
"""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import select

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import OutboxMessage
from kassa.services.platform import outbox

RAN: list[int] = []


@outbox.register_handler("h6_probe")
def _probe(payload: dict) -> None:
    RAN.append(payload["n"])


def _leased(holders: list[str]) -> list[int]:
    """One message per holder, each as its holder left it: claimed, leased for the full 5 minutes."""
    ids = []
    with write_transaction(db.session) as session:
        for n, holder in enumerate(holders):
            message = outbox.enqueue("h6_probe", {"n": n})
            session.flush()
            message.status, message.attempts, message.locked_by = "processing", 1, holder
            message.locked_until = now() + outbox.LEASE
            ids.append(message.id)
    return ids


def _statuses(ids: list[int]) -> list[str]:
    db.session.rollback()
    return [db.session.get(OutboxMessage, message_id).status for message_id in ids]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # gone and reaped: its pid names no process
    return child.pid


def test_h6_a_dead_workers_lease_is_reclaimed_at_once_a_live_workers_lease_is_respected(app):
    """Three leased messages: a dead worker's on this machine, a live worker's, and one from another host.
    Nothing is claimable (the control: without H6 all three wait 5 minutes); releasing frees only the dead
    worker's message, which the next worker pass runs at once; the other two keep their leases."""
    RAN.clear()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        ids = _leased([outbox.worker_identity(_dead_pid()), outbox.worker_identity(live.pid), "elsewhere:1"])
        assert outbox.run_pending() == 0  # every lease still runs for minutes
        assert outbox.release_dead_leases() == 1
        assert outbox.run_pending() == 1
        assert RAN == [0]
        assert _statuses(ids) == ["done", "processing", "processing"]
        db.session.rollback()
        assert db.session.get(OutboxMessage, ids[0]).attempts == 2  # the interrupted run counts as an attempt
        assert outbox.release_dead_leases() == 0
    finally:
        live.kill()
        live.wait()
    # Its worker gone too now: that lease is released as well; the other host's still stands.
    assert outbox.release_dead_leases() == 1
    assert _statuses(ids) == ["done", "pending", "processing"]


def test_h6_a_killed_but_not_yet_reaped_worker_counts_as_dead(app):
    """kill -9 leaves a zombie until its parent reaps it; its pid still 'exists', but it runs nothing."""
    RAN.clear()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        ids = _leased([outbox.worker_identity(child.pid)])
        child.kill()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # wait until it is a zombie, without reaping it
        assert outbox.release_dead_leases() == 1
        assert _statuses(ids) == ["pending"]
    finally:
        child.kill()
        child.wait()


def test_h6_claims_record_their_holder_and_finishing_clears_it(app):
    with write_transaction(db.session):
        outbox.enqueue("h6_probe", {"n": 9})
    claimed = outbox.claim_batch()
    db.session.rollback()
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.id == claimed[0][0]))
    assert message.locked_by == outbox.worker_identity()
    outbox.run_claimed(*claimed[0])
    db.session.rollback()
    assert db.session.get(OutboxMessage, claimed[0][0]).locked_by is None


def test_h6_supervisor_restarts_a_dying_worker_with_growing_back_off_and_says_so(app):
    """A worker that keeps dying is restarted each time, after 1×, 2×, 4× the first back-off up to the cap,
    and every death is said with its exit status; stop() ends it and restarts nothing more."""
    import re
    import threading

    from kassa.supervisor import WorkerSupervisor

    lines: list[str] = []
    restarted = threading.Event()

    def say(line: str) -> None:
        lines.append(line)
        if "restart 4)" in line:
            restarted.set()

    supervisor = WorkerSupervisor(app, [sys.executable, "-c", "raise SystemExit(3)"], env=dict(os.environ),
                                  say=say, first_backoff=0.05, max_backoff=0.2)
    supervisor.start()
    try:
        assert restarted.wait(60), lines
    finally:
        supervisor.stop()
    text = "\n".join(lines)
    assert re.findall(r"restarting it in ([\d.]+) s", text)[:4] == ["0.05", "0.1", "0.2", "0.2"]
    assert "died (exit status 3)" in text
    count = supervisor.restarts
    assert supervisor.pid is None or not outbox.process_alive(supervisor.pid)
    assert supervisor.restarts == count
