"""The production profile (G1) started from the real CLI for a test: its own PostgreSQL database, instance folder
and ports; a merchant created with `flask kassa create-user`; stopped with Ctrl-C (SIGINT to its process group)."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.support.env import PG_URL

ROOT = Path(__file__).resolve().parents[2]
OWNER_EMAIL = "owner@g1.example"
OWNER_PASSWORD = "production profile 2026"
FLASK = [sys.executable, "-m", "flask", "--app", "kassa:create_app"]


@dataclass
class RunningProfile:
    base: str
    process: subprocess.Popen
    logs: Path
    url: str
    output: Path
    server_ports: tuple[int, ...]
    verify: str | bool = True  # for requests: the test certificate with TLS

    def started_pid(self, name: str) -> int | None:
        """The pid run-prod last started `name` with ("Kassa web-1 running (pid 123).")."""
        pids = re.findall(rf"Kassa {name} running \(pid (\d+)\)", self.output.read_text(errors="replace"))
        return int(pids[-1]) if pids else None

    def served_by(self, response) -> str:
        """Which server answered: the one whose access log has this response's request id (nginx's)."""
        request_id = response.headers["X-Request-Id"]

        def find():
            for log in sorted(self.logs.glob("web-*.log")):
                if request_id in log.read_text(errors="replace"):
                    return log.stem
            return None

        return wait_for(find, f"request {request_id} in a server's access log", seconds=30)


def free_ports(count: int = 3) -> int:
    """The first of `count` consecutive free ports, below the kernel's range for outgoing connections: there a
    client socket (nginx's own, to a server) may take a port between this check and a server's bind."""
    import socket

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


def wait_for(condition, what: str, seconds: float = 120, log_dir: Path | None = None):
    """Wait on state: `condition()`'s first truthy result, or fail with the profile's logs."""
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
            pytest.fail(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.1)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@contextmanager
def running_profile(instance: Path, *, servers: int = 2, workers: int = 2, args: tuple[str, ...] = (),
                    env: dict[str, str] | None = None, scheme: str = "http",
                    verify: str | bool = True) -> Iterator[RunningProfile]:
    from kassa.production import nginx_binary

    if nginx_binary() is None:  # a failure, never a skip: make test installs it (prod-deps)
        pytest.fail("nginx is required for the production profile tests: apt-get install -y nginx")
    name = f"kassa_g1_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    first = free_ports(1 + servers)
    port, server_ports = first, tuple(range(first + 1, first + 1 + servers))
    full_env = {**os.environ, "KASSA_DATABASE_URL": url, "KASSA_REDIS_URL": "redis://127.0.0.1:6379/13",
                "KASSA_INSTANCE_PATH": str(instance), "PYTHONDONTWRITEBYTECODE": "", "KASSA_LOG_FORMAT": "json"}
    for unset in ("KASSA_SECRET_KEY", "KASSA_ENCRYPTION_KEYS", "KASSA_BASE_URL"):
        full_env.pop(unset, None)  # unless the test gives them: then the servers share the instance's
    full_env.update(env or {})
    process = None
    try:
        for command in ([*FLASK, "kassa", "create-database"],
                        [*FLASK, "db", "upgrade", "-d", str(ROOT / "site" / "migrations")],
                        [*FLASK, "kassa", "create-user", "--email", OWNER_EMAIL, "--password", OWNER_PASSWORD,
                         "--company", "G1 Coffee"]):
            done = subprocess.run(command, env=full_env, cwd=ROOT, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stdout + done.stderr
        output = instance / "run-prod.out"
        with open(output, "wb") as out:
            process = subprocess.Popen(
                [*FLASK, "kassa", "run-prod", "--port", str(port), "--server-port", str(server_ports[0]),
                 "--servers", str(servers), "--workers", str(workers), "--tick-every", "5", *args],
                env=full_env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"{scheme}://127.0.0.1:{port}"
        logs = instance / "prod" / "logs"

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"run-prod stopped (exit {process.returncode}):\n{output.read_text(errors='replace')}")
            return requests.get(f"{base}/readyz", timeout=5, verify=verify).status_code == 200

        wait_for(ready, "the profile to be ready", log_dir=logs)
        # Every server up: until then nginx sends everything to those that are.
        wait_for(lambda: all(requests.get(f"http://127.0.0.1:{p}/readyz", timeout=5).status_code == 200
                             for p in server_ports), "every server", log_dir=logs)
        yield RunningProfile(base=base, process=process, logs=logs, url=url, output=output,
                             server_ports=server_ports, verify=verify)
    finally:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in its terminal
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
