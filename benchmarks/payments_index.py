"""payments_index_ms: server time (p50/p95) of the payments index and panel at 1,000,000 payments, on SQLite
and PostgreSQL, against a bare template of the same size served in the same run (issue 6).

Server time comes from the app's own Server-Timing header, so the load generator's noise stays out.
KASSA_BENCH_PAYMENTS changes the size (default 1,000,000); KASSA_BENCH_DBS picks the databases.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

from benchmarks.common import OUT_DIR, ROOT, drop_pg_database, emit, fresh_pg_database, gunicorn

WARMUP, SAMPLES = 10, 60


def _server_ms(response: http.client.HTTPResponse) -> float:
    match = re.search(r"dur=([\d.]+)", response.getheader("Server-Timing") or "")
    if not match:
        raise RuntimeError("no Server-Timing header")
    return float(match.group(1))


class Client:
    def __init__(self, base: str) -> None:
        parts = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.cookie = ""

    def request(self, method: str, path: str, body: str | None = None, headers: dict | None = None):
        all_headers = {"Cookie": self.cookie, **(headers or {})}
        if body is not None:
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=all_headers)
        response = self.conn.getresponse()
        data = response.read()
        for header in response.getheaders():
            if header[0].lower() == "set-cookie":
                self.cookie = header[1].split(";", 1)[0]
        return response, data

    def login(self, email: str, password: str) -> None:
        _resp, page = self.request("GET", "/login")
        token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
        body = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": token})
        response, _data = self.request("POST", "/login", body)
        if response.status != 303:
            raise RuntimeError(f"benchmark login failed: {response.status}")

    def timings(self, path: str, headers: dict | None = None) -> tuple[list[float], int]:
        samples, size = [], 0
        for i in range(WARMUP + SAMPLES):
            response, data = self.request("GET", path, headers=headers)
            if response.status != 200:
                raise RuntimeError(f"{path} answered {response.status}")
            if i >= WARMUP:
                samples.append(_server_ms(response))
                size = len(data)
        return samples, size


def _p95(values: list[float]) -> float:
    return sorted(values)[max(int(len(values) * 0.95) - 1, 0)]


def _prepare(env: dict[str, str], count: int) -> None:
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    full = {**os.environ, **env}
    subprocess.run([*flask, "db", "upgrade", "-d", "site/migrations"], cwd=ROOT, env=full, check=True,
                   capture_output=True)
    subprocess.run([*flask, "kassa", "bench-data", "--payments", str(count)], cwd=ROOT, env=full, check=True)


def _cursor_for_page(env: dict[str, str], page: int) -> tuple[str, int]:
    """The keyset cursor that page `page` starts after, and one payment id for the panel."""
    code = (
        "from kassa import create_app\nfrom kassa.extensions import db\nfrom kassa.models import Payment, User\n"
        "from kassa.bench_data import BENCH_EMAIL\nimport json\napp=create_app()\nwith app.app_context():\n"
        " u=db.session.query(User).filter_by(email=BENCH_EMAIL).one()\n"
        " q=db.session.query(Payment).filter(Payment.account_id==u.account_id)"
        ".order_by(Payment.created_at.desc(), Payment.id.desc())\n"
        f" row=q.offset({page - 1}*50-1).first()\n"
        " print(json.dumps([row.created_at.isoformat()+'~'+str(row.id), row.id]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env}, check=True,
                         capture_output=True, text=True).stdout
    cursor, payment_id = json.loads(out.strip().splitlines()[-1])
    return cursor, payment_id


def _plans(env: dict[str, str], backend: str) -> str:
    """EXPLAIN of the default view's query, kept next to the figures."""
    code = (
        "from kassa import create_app\nfrom kassa.extensions import db\nfrom kassa.models import Payment, User\n"
        "from kassa.bench_data import BENCH_EMAIL\nfrom sqlalchemy import select, text\napp=create_app()\n"
        "with app.app_context():\n u=db.session.query(User).filter_by(email=BENCH_EMAIL).one()\n"
        " q=select(Payment.id).where(Payment.account_id==u.account_id, Payment.mode.in_(['live','test']))"
        ".order_by(Payment.created_at.desc(), Payment.id.desc()).limit(51)\n"
        " s=str(q.compile(db.engine, compile_kwargs={'literal_binds': True}))\n"
        f" prefix = 'EXPLAIN QUERY PLAN ' if '{backend}'=='sqlite' else 'EXPLAIN '\n"
        " print('\\n'.join(' | '.join(str(c) for c in r) for r in db.session.execute(text(prefix+s))))\n"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env}, check=True,
                          capture_output=True, text=True).stdout


def run_backend(backend: str, count: int, workdir: Path) -> list[dict]:
    from kassa.bench_data import BENCH_EMAIL, BENCH_PASSWORD

    instance = workdir / f"instance-{backend}"
    instance.mkdir(parents=True, exist_ok=True)
    env = {"KASSA_INSTANCE_PATH": str(instance), "KASSA_SERVER_TIMING": "1"}  # it reads Server-Timing (H12)
    if backend == "postgresql":
        fresh_pg_database("kassa_bench")
        env["KASSA_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:5432/kassa_bench"
    _prepare(env, count)
    cursor, payment_id = _cursor_for_page(env, 200)
    plans = _plans(env, backend)
    (OUT_DIR / f"payments_index_plan_{backend}.txt").write_text(plans)
    adv = json.dumps([[["status", "any_of", ["failed"]], ["amount", "gt", ["100"]]], [["method", "any_of", ["ach"]]]])
    scenarios = {
        "no_filter": "/payments/",
        "status_last_30_days": "/payments/?status=succeeded&date=last_30",
        "advanced_2_group_or": "/payments/?" + urllib.parse.urlencode({"adv": adv}),
        "page_200_keyset": "/payments/?" + urllib.parse.urlencode({"after": cursor}),
        "detail_panel": f"/payments/{payment_id}",
    }
    results = []
    with gunicorn("wsgi:app", env, workers=1) as base:
        client = Client(base)
        client.login(BENCH_EMAIL, BENCH_PASSWORD)
        measured = {}
        for name, path in scenarios.items():
            headers = {"HX-Request": "true"} if name == "detail_panel" else None
            measured[name] = client.timings(path, headers)
    with gunicorn("benchmarks.baseline_app:app",
                  {"KASSA_BASELINE_BYTES": str(measured["no_filter"][1])}, workers=1) as base:
        baseline, _size = Client(base).timings("/")
    base_p50 = statistics.median(baseline)
    for name, (samples, size) in measured.items():
        results.append(emit(f"payments_index_ms_{backend}_{name}", statistics.median(samples), "ms",
                            baseline=base_p50, n=len(samples), p95=round(_p95(samples), 2), payments=count,
                            page_bytes=size, target_p95_ms=50))
    if backend == "postgresql":
        drop_pg_database("kassa_bench")
    return results


def main() -> list[dict]:
    count = int(os.environ.get("KASSA_BENCH_PAYMENTS", "1000000"))
    backends = os.environ.get("KASSA_BENCH_DBS", "sqlite,postgresql").split(",")
    results = []
    with tempfile.TemporaryDirectory(prefix="kassa-bench-index-") as tmp:
        for backend in backends:
            results += run_backend(backend.strip(), count, Path(tmp))
    return results


if __name__ == "__main__":
    main()
