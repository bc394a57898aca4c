"""`make run` ends in `flask kassa serve`: the web server and the worker in one process group (issue 3).

Run for real, as a newcomer would: a migrated SQLite database in a temporary instance folder, the command in
its own process, the login page fetched over HTTP, then Ctrl-C (SIGINT to the group) stops both.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def test_make_run_serve_answers_on_its_port_with_the_worker_running_and_ctrl_c_stops_both(tmp_path):
    port = _free_port()
    env = {**os.environ, "KASSA_INSTANCE_PATH": str(tmp_path), "KASSA_DATABASE_URL": "",
           "KASSA_BASE_URL": f"http://127.0.0.1:{port}", "PYTHONUNBUFFERED": "1"}
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade", "-d", "site/migrations"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen([*flask, "kassa", "serve", "--port", str(port), "--tick-every", "3600"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
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
