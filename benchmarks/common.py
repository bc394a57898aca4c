"""Shared benchmark plumbing: serve an app under gunicorn, load it with wrk, print the JSON line."""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "instance" / "bench"
_pause = threading.Event()


def emit(bench: str, value: float, unit: str, *, baseline: float | None = None, n: int | None = None,
         **extra) -> dict:
    """One JSON object per line on stdout (DESIGN §4), also written to instance/bench/<bench>.json."""
    ratio = round(value / baseline, 3) if baseline else None
    record = {"bench": bench, "value": round(value, 3), "unit": unit, "baseline": baseline and round(baseline, 3),
              "ratio": ratio, "n": n, **extra}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / f"{bench}.json").write_text(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)
    return record


# Many payments with one test card, from one address: the card-testing limits lifted, and every payment
# emailing its receipt as a buyer's would (H7 caps test receipts per link and IP).
LIFTED_CHECKOUT_LIMITS = {
    "KASSA_RISK_CARD_USES": "1000000", "KASSA_RISK_IP_DECLINES": "1000000",
    "KASSA_CHECKOUT_START_LIMIT": "100000 per minute", "KASSA_CHECKOUT_SUBMIT_LIMIT": "100000 per minute",
    "KASSA_TEST_RECEIPT_LINK_LIMIT": "100000 per hour", "KASSA_TEST_RECEIPT_IP_LIMIT": "100000 per hour",
}

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_admin(*statements: str) -> None:
    """Run statements on PostgreSQL's admin connection, outside a transaction (CREATE/DROP DATABASE)."""
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        admin.dispose()


def fresh_pg_database(name: str) -> str:
    """An empty PostgreSQL database `name` (dropped first if a run left it behind); returns its URL."""
    pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    return sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(name: str) -> None:
    pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, deadline_s: float = 30.0) -> None:
    """Poll with a deadline until the server answers."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            _pause.wait(0.1)
    raise RuntimeError(f"server at {url} did not come up within {deadline_s}s")


@contextlib.contextmanager
def gunicorn(app_spec: str, env: dict[str, str], workers: int = 2, health_path: str = "/healthz") -> Iterator[str]:
    """Serve `module:app` on a free port; yields the base URL."""
    port = free_port()
    full_env = {**os.environ, **env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
         app_spec],
        cwd=ROOT, env=full_env,
    )
    base = f"http://127.0.0.1:{port}"
    _SERVERS[base] = proc.pid
    try:
        wait_until_up(base + health_path)
        yield base
    finally:
        _SERVERS.pop(base, None)
        proc.terminate()
        proc.wait(timeout=20)


_SERVERS: dict[str, int] = {}  # base URL → the gunicorn master's pid


def server_cpu_seconds(base: str) -> float:
    """CPU time (user + system) the gunicorn at `base` and its workers have used so far (Linux /proc)."""
    master = _SERVERS[base]
    pids = [master, *(int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split())]
    ticks = 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_ms_per_request(url: str, base: str, *, seconds: int = 3) -> tuple[float, float]:
    """(requests/s, server CPU ms per request) of `url` on the gunicorn at `base`. CPU per request hardly
    moves with what else the machine runs, unlike requests per second, so its ratio is the steadier figure
    on a shared machine."""
    before = server_cpu_seconds(base)
    rps = wrk_rps(url, seconds=seconds)
    used = server_cpu_seconds(base) - before
    return rps, used * 1000 / max(1.0, rps * seconds)


def wrk_rps(url: str, *, seconds: int = 5, connections: int = 8, threads: int = 2,
            headers: dict[str, str] | None = None) -> float:
    """Requests per second from wrk (Debian's package); refuses to guess if wrk is missing."""
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is needed for throughput benchmarks: apt-get install -y wrk")
    args = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{url} answered {non2xx.group(1)} non-2xx responses under load:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def login_cookie(base: str, email: str, password: str) -> str:
    """Log in through the real form and return the session cookie header value."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": token}).encode()
    opener.open(base + "/login", data=data)
    cookies = "; ".join(f"{c.name}={c.value}" for c in jar)
    if "kassa" not in cookies:
        raise RuntimeError("login for the benchmark failed")
    return cookies


def prepare_database(instance: Path, database_url: str | None = None) -> dict[str, str]:
    """A fresh, migrated database with the demo merchant; returns the env to serve it."""
    instance.mkdir(parents=True, exist_ok=True)
    # The benchmarks read the app's own time from Server-Timing, which is off outside them (H12).
    env = {"KASSA_INSTANCE_PATH": str(instance), "KASSA_SERVER_TIMING": "1"}
    if database_url:
        env["KASSA_DATABASE_URL"] = database_url
    else:
        db_file = instance / "kassa.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    full_env = {**os.environ, **env}
    subprocess.run([*flask, "db", "upgrade", "-d", "site/migrations"], cwd=ROOT, env=full_env, check=True,
                   capture_output=True)
    subprocess.run([*flask, "kassa", "seed-demo"], cwd=ROOT, env=full_env, check=True, capture_output=True)
    return env
