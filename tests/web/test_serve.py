"""`make run` ends in `flask kassa serve`: the web server and the worker in one process group (issue 3).

Run for real, as a newcomer would: a migrated SQLite database in a temporary instance folder, the command in
its own process, the login page fetched over HTTP, then Ctrl-C (SIGINT to the group) stops both.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def _start_serve(tmp_path: Path, port: int, *, preexec_fn=None, **env_overrides: str
                 ) -> tuple[subprocess.Popen, Path]:
    """`flask kassa serve` as `make run` ends, on a freshly migrated SQLite database in `tmp_path`, in its own
    process group; returns the process and its log file."""
    env = {**os.environ, "KASSA_INSTANCE_PATH": str(tmp_path), "KASSA_DATABASE_URL": "",
           "KASSA_BASE_URL": f"http://127.0.0.1:{port}", "PYTHONUNBUFFERED": "1", **env_overrides}
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade", "-d", "site/migrations"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen([*flask, "kassa", "serve", "--port", str(port), "--tick-every", "3600"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                  preexec_fn=preexec_fn)
    return server, log


def test_make_run_serve_answers_on_its_port_with_the_worker_running_and_ctrl_c_stops_both(tmp_path):
    port = _free_port()
    server, log = _start_serve(tmp_path, port)
    try:
        status, page = None, ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                status, page = _get(f"http://127.0.0.1:{port}/login")
                break
            except OSError:
                time.sleep(0.2)
        assert server.poll() is None, f"serve exited with {server.returncode}:\n{log.read_text()}"
        assert status == 200 and "Log in" in page
        deadline = time.monotonic() + 30
        while "Kassa worker started" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "Kassa worker started" in log.read_text()
        assert f"Kassa is running on http://127.0.0.1:{port}" in log.read_text()
    finally:
        os.killpg(server.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        server.wait(timeout=30)
    # The whole group is gone: the worker too, not left behind on its own (it may take a moment to exit).
    deadline = time.monotonic() + 30
    while _group_alive(server.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(server.pid), log.read_text()


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(predicate, timeout: float, what: str, log: Path):
    """Poll `predicate` until it returns something truthy; fail with the serve log after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout:g} s:\n{log.read_text()}")


def test_h6_serve_restarts_a_killed_worker_and_the_email_it_held_goes_out_at_once(tmp_path, monkeypatch):
    """kill -9 of serve's worker while it holds an email's 5-minute lease: serve says so in its log, restarts
    the worker, and the email is delivered well before the lease would have run out."""
    from kassa.clock import now
    from kassa.database import write_transaction
    from kassa.services.platform import outbox
    from kassa.services.platform.mail import queue_email

    port = _free_port()
    server, log = _start_serve(tmp_path, port, KASSA_SMTP_URL="", KASSA_REDIS_URL="")
    for name in ("KASSA_DATABASE_URL", "KASSA_SMTP_URL", "KASSA_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KASSA_INSTANCE_PATH", str(tmp_path))
    from kassa import create_app
    from kassa.extensions import db
    from kassa.models import EmailMessage, OutboxMessage

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'kassa.db'}"})
    try:
        def worker_pid() -> int | None:
            """The worker: serve's child running `kassa worker` (read from /proc, not from what serve says; a
            library may briefly run other children, e.g. gcc from ctypes.util.find_library)."""
            children = [int(pid) for task in Path(f"/proc/{server.pid}/task").glob("*")
                        for pid in (task / "children").read_text().split()]
            workers = []
            for pid in children:
                try:
                    if b"kassa\x00worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        workers.append(pid)
                except OSError:  # it ended between the two reads
                    pass
            return workers[0] if len(workers) == 1 else None

        first = _wait_for(worker_pid, 60, "the worker", log)
        _wait_for(lambda: "Kassa worker started" in log.read_text(), 60, "the worker's start", log)
        killed_at = time.monotonic()
        os.kill(first, signal.SIGKILL)
        second = _wait_for(lambda: (pid := worker_pid()) != first and pid, 60, "a new worker", log)
        restarted_at = time.monotonic()
        # What the dead worker was doing: an email it had claimed, leased for 5 minutes in its name.
        with app.test_request_context():
            with write_transaction(db.session) as session:
                # An email without a secret link (H10 mints those at send time for a real user).
                email = queue_email(kind="signup_existing", to=["ada@example.com"],
                                    template="email/signup_existing.html", language="en",
                                    context={"login_url": "http://127.0.0.1/login",
                                             "reset_url": "http://127.0.0.1/forgot-password"}, account_id=None)
                session.flush()
                message = session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()))
                message.status, message.attempts = "processing", 1
                message.locked_by, message.locked_until = outbox.worker_identity(first), now() + outbox.LEASE
                email_id = email.id
            leased_at = time.monotonic()

            def delivered() -> bool:
                db.session.rollback()
                return db.session.get(EmailMessage, email_id).status == "stored"  # no SMTP: kept in the Email log

            _wait_for(delivered, 90, "the email", log)
            print(f"H6: worker restarted {restarted_at - killed_at:.1f} s after kill -9; the email it held was "
                  f"delivered {time.monotonic() - leased_at:.1f} s after it was leased (lease: 300 s)")
            assert time.monotonic() - leased_at < outbox.LEASE.total_seconds() / 2
            db.session.remove()
        text = log.read_text()
        assert f"Kassa worker (pid {first}) died" in text
        assert "Kassa worker restarted (restart 1)" in text
        assert worker_pid() == second  # one restart, and it stays up
        assert server.poll() is None
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _group_alive(server.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(server.pid), log.read_text()
    assert "restarted (restart 2)" not in log.read_text()  # Ctrl-C stops the worker, it isn't restarted


def test_h6_ctrl_c_stops_serve_started_from_a_background_shell(tmp_path):
    """`make run &` from a script: the shell hands serve SIGINT ignored. Ctrl-C (SIGINT to the group) must still
    stop the server and the worker, and the worker must not be restarted as if it had died."""
    port = _free_port()
    server, log = _start_serve(tmp_path, port, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        _wait_for(lambda: "Kassa worker started" in log.read_text(), 60, "the worker's start", log)
        _wait_for(lambda: _answers(port), 60, "the login page", log)
    finally:
        os.killpg(server.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=30)  # reaped, so a finished server is not counted as alive below
    deadline = time.monotonic() + 30
    while _group_alive(server.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = _group_alive(server.pid)
    if alive:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    assert not alive, log.read_text()
    assert "restarted" not in log.read_text()


def _answers(port: int) -> bool:
    try:
        return _get(f"http://127.0.0.1:{port}/login")[0] == 200
    except OSError:
        return False
