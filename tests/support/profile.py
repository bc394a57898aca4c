"""The production profile (G1) from the outside, shared by its test and the load and fault run (G3): free ports
for nginx and the servers, `flask kassa run-prod` started from the real CLI on a database and instance of its
own, waiting on state, a form's CSRF token, and the pid run-prod last started a child with."""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
FLASK = [sys.executable, "-m", "flask", "--app", "kassa:create_app"]


class TimedOut(AssertionError):
    """A state waited for did not come; an AssertionError so that pytest reports it as a failure."""


def free_ports(count: int = 3) -> int:
    """The first of `count` consecutive free ports, below the kernel's range for outgoing connections: there a
    client socket (nginx's own, to a server) may take a port between our check and a server's bind."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        port = random.randrange(10000, low - count)
        try:
            for candidate in range(port, port + count):
                with socket.socket() as check:
                    check.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free ports")


def wait_for(condition: Callable[[], object], what: str, seconds: float = 120, log_dir: Path | None = None):
    """Poll `condition` until it returns something true (connection errors count as not yet); its value."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            result = condition()
        except (requests.ConnectionError, requests.Timeout):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            logs = ""
            if log_dir is not None and log_dir.exists():
                logs = "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-3000:]}" for f in log_dir.glob("*.log"))
            raise TimedOut(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.1)


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(base: str, email: str, password: str) -> requests.Session:
    """A merchant's browser session, logged in through the real form."""
    browser = requests.Session()
    page = browser.get(f"{base}/login", timeout=30)
    assert page.status_code == 200, f"/login answered {page.status_code}: {page.text[:300]}"
    signed_in = browser.post(f"{base}/login", data={"csrf_token": csrf(page.text), "email": email,
                                                     "password": password}, allow_redirects=False, timeout=30)
    assert signed_in.status_code == 303, signed_in.text[:500]
    return browser


@dataclass
class RunningProfile:
    base: str
    process: subprocess.Popen
    logs: Path
    output: Path
    server_ports: tuple[int, int]

    def started_pid(self, name: str) -> int | None:
        """The pid run-prod last started `name` with ("Kassa web-1 running (pid 123).")."""
        pids = re.findall(rf"Kassa {name} running \(pid (\d+)\)", self.output.read_text(errors="replace"))
        return int(pids[-1]) if pids else None

    def stop(self) -> None:
        """Ctrl-C in its terminal (SIGINT to its process group); SIGKILL if it has not stopped within a minute."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def server_ready(self, index: int) -> bool:
        port = self.server_ports[index]
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200


def prepare(env: dict[str, str], email: str, password: str, company: str) -> None:
    """The profile's database created and migrated, with one merchant, through the real CLI."""
    for command in ([*FLASK, "kassa", "create-database"],
                    [*FLASK, "db", "upgrade", "-d", str(ROOT / "site" / "migrations")],
                    [*FLASK, "kassa", "create-user", "--email", email, "--password", password, "--company", company]):
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr


@contextlib.contextmanager
def run_prod(env: dict[str, str], instance: Path, *extra: str) -> Iterator[RunningProfile]:
    """`flask kassa run-prod` on free ports, until both servers answer; stopped by Ctrl-C (SIGINT to its
    process group) afterwards."""
    port = free_ports()
    server_port = port + 1
    output = instance / "run-prod.out"
    with open(output, "wb") as out:
        process = subprocess.Popen(
            [*FLASK, "kassa", "run-prod", "--port", str(port), "--server-port", str(server_port), *extra],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    logs = instance / "prod" / "logs"
    profile = RunningProfile(base, process, logs, output, (server_port, server_port + 1))
    try:
        def running() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"run-prod stopped (exit {process.returncode}):\n"
                                     f"{output.read_text(errors='replace')}")
            return True

        def ready() -> bool:
            return running() and requests.get(f"{base}/readyz", timeout=5).status_code == 200

        # Both servers first, asked directly: nginx asked while they start marks them failed, and each of its
        # worker processes that did answers its next requests 502 ("no live upstreams") well after they are up.
        wait_for(lambda: running() and profile.server_ready(0) and profile.server_ready(1), "both servers",
                 log_dir=logs)
        wait_for(ready, "the profile to be ready", log_dir=logs)
        yield profile
    finally:
        profile.stop()
