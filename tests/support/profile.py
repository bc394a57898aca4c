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
    server_ports: tuple[int, ...]
    verify: str | bool = True  # for requests: the test certificate when nginx speaks TLS (G7)
    database_url: str = ""  # set by a test that made the profile's database (own_database)

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

    def served_by(self, response) -> str:
        """Which server answered: the one whose access log has this response's request id (nginx's)."""
        request_id = response.headers["X-Request-Id"]

        def find():
            for log in sorted(self.logs.glob("web-*.log")):
                if request_id in log.read_text(errors="replace"):
                    return log.stem
            return None

        return wait_for(find, f"request {request_id} in a server's access log", seconds=30)


@contextlib.contextmanager
def own_database() -> Iterator[str]:
    """The URL of a PostgreSQL database of its own on the shared server (created by `prepare`), dropped after."""
    import uuid

    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from tests.support.env import PG_URL

    name = f"kassa_profile_{uuid.uuid4().hex[:10]}"
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def profile_env(url: str, instance: Path, **extra: str) -> dict[str, str]:
    """The environment of a profile on database `url` with its own instance folder; the secrets it keeps there
    unless `extra` gives them (G8: a TLS profile must)."""
    env = {**os.environ, "KASSA_DATABASE_URL": url, "KASSA_REDIS_URL": "redis://127.0.0.1:6379/13",
           "KASSA_INSTANCE_PATH": str(instance), "PYTHONDONTWRITEBYTECODE": "", "KASSA_LOG_FORMAT": "json"}
    for name in ("KASSA_SECRET_KEY", "KASSA_ENCRYPTION_KEYS", "KASSA_BASE_URL"):
        env.pop(name, None)
    env.update(extra)
    return env


def prepare(env: dict[str, str], email: str, password: str, company: str) -> None:
    """The profile's database created and migrated, with one merchant, through the real CLI."""
    for command in ([*FLASK, "kassa", "create-database"],
                    [*FLASK, "db", "upgrade", "-d", str(ROOT / "site" / "migrations")],
                    [*FLASK, "kassa", "create-user", "--email", email, "--password", password, "--company", company]):
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr


@contextlib.contextmanager
def run_prod(env: dict[str, str], instance: Path, *extra: str, servers: int = 2, scheme: str = "http",
             verify: str | bool = True) -> Iterator[RunningProfile]:
    """`flask kassa run-prod` on free ports, until every server answers; stopped by Ctrl-C (SIGINT to its
    process group) afterwards. With TLS (`--tls-cert …` in `extra`): scheme "https" and the certificate to trust."""
    from kassa.production import nginx_binary

    if nginx_binary() is None:  # a failure, never a skip: make test installs it (prod-deps)
        raise AssertionError("nginx is required for the production profile: apt-get install -y nginx")
    port = free_ports(1 + servers)
    server_ports = tuple(range(port + 1, port + 1 + servers))
    output = instance / "run-prod.out"
    with open(output, "wb") as out:
        process = subprocess.Popen(
            [*FLASK, "kassa", "run-prod", "--port", str(port), "--server-port", str(server_ports[0]),
             "--servers", str(servers), *extra],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"{scheme}://127.0.0.1:{port}"
    logs = instance / "prod" / "logs"
    profile = RunningProfile(base, process, logs, output, server_ports, verify)
    try:
        def running() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"run-prod stopped (exit {process.returncode}):\n"
                                     f"{output.read_text(errors='replace')}")
            return True

        def ready() -> bool:
            return running() and requests.get(f"{base}/readyz", timeout=5, verify=verify).status_code == 200

        # The servers first, asked directly: nginx asked while they start marks them failed, and each of its
        # worker processes that did answers its next requests 502 ("no live upstreams") well after they are up.
        wait_for(lambda: running() and all(profile.server_ready(n) for n in range(servers)), "every server",
                 log_dir=logs)
        wait_for(ready, "the profile to be ready", log_dir=logs)
        yield profile
    finally:
        profile.stop()
