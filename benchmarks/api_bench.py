"""api_list_payments_ms: server time (p50/p95) of the API's payment list (`GET /api/v1/payment_intents`, I3) at
1,000,000 payments, on SQLite and PostgreSQL: the first page, a page deep in the list by its cursor, one
payment by id, a page with `expand[]=customer&expand[]=refunds` and Kassa's filter (`/api/kassa/payments`, I2). Target: p95 under 50 ms (issue 18). Each call includes the audit row every API call writes (I1).

KASSA_BENCH_PAYMENTS changes the size (default 1,000,000); KASSA_BENCH_DBS picks the databases.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from benchmarks.common import ROOT, drop_pg_database, emit, fresh_pg_database, gunicorn
from benchmarks.payments_index import Client

WARMUP, SAMPLES = 10, 60


def _p95(values: list[float]) -> float:
    return sorted(values)[max(int(len(values) * 0.95) - 1, 0)]


def _setup(env: dict[str, str], count: int) -> tuple[str, str, str]:
    """Migrate, generate the merchant's payments, and make a live API key; the key, a cursor 2,000 payments
    deep and one payment's id."""
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    full = {**os.environ, **env}
    subprocess.run([*flask, "db", "upgrade", "-d", "site/migrations"], cwd=ROOT, env=full, check=True,
                   capture_output=True)
    subprocess.run([*flask, "kassa", "bench-data", "--payments", str(count)], cwd=ROOT, env=full, check=True)
    code = (
        "from kassa import create_app\nfrom kassa.actor import Actor\nfrom kassa.extensions import db\n"
        "from kassa.models import Payment, User\nfrom kassa.bench_data import BENCH_EMAIL\n"
        "from kassa.services.api.keys import create_key\nimport json\napp=create_app()\nwith app.app_context():\n"
        " u=db.session.query(User).filter_by(email=BENCH_EMAIL).one()\n"
        " q=db.session.query(Payment.id).filter(Payment.account_id==u.account_id, Payment.mode=='live')"
        ".order_by(Payment.created_at.desc(), Payment.id.desc())\n"
        " deep=q.offset(1999).first()[0]\n"
        " secret=create_key(Actor(user=u, account_id=u.account_id), 'Bench', 'live')[1]\n"
        " print(json.dumps([secret, f'pi_{deep}', f'pi_{deep}']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, check=True, capture_output=True,
                         text=True).stdout
    secret, cursor, one = json.loads(out.strip().splitlines()[-1])
    return secret, cursor, one


def run_backend(backend: str, count: int, workdir: Path) -> list[dict]:
    instance = workdir / f"instance-{backend}"
    instance.mkdir(parents=True, exist_ok=True)
    env = {"KASSA_INSTANCE_PATH": str(instance), "KASSA_SERVER_TIMING": "1"}
    if backend == "postgresql":
        fresh_pg_database("kassa_bench_api")
        env["KASSA_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:5432/kassa_bench_api"
    secret, cursor, one = _setup(env, count)
    scenarios = {
        "first_page": "/api/v1/payment_intents?limit=10",
        "page_100_items": "/api/v1/payment_intents?limit=100",
        "deep_cursor": f"/api/v1/payment_intents?limit=10&starting_after={cursor}",
        "retrieve": f"/api/v1/payment_intents/{one}",
        # I2: the same page with its relations as objects, and Kassa's filter (failed payments over 10.00)
        "expand_customer_refunds": "/api/v1/payment_intents?limit=10&expand[]=customer&expand[]=refunds",
        "kassa_filter_failed": "/api/kassa/payments?limit=10&filter=" + quote(
            '[[["status","any_of",["failed"]],["amount","gt",["10"]]]]'),
    }
    results = []
    measured = {}
    with gunicorn("wsgi:app", env, workers=1) as base:
        client = Client(base)
        headers = {"Authorization": f"Bearer {secret}"}
        for name, path in scenarios.items():
            measured[name] = client.timings(path, headers)
    # The baseline, in the same run: a bare Flask app serving a body of the first page's size (baseline_app).
    with gunicorn("benchmarks.baseline_app:app",
                  {"KASSA_BASELINE_BYTES": str(measured["first_page"][1])}, workers=1) as base:
        baseline, _size = Client(base).timings("/")
    base_p50 = statistics.median(baseline)
    for name, (samples, size) in measured.items():
        results.append(emit(f"api_list_payments_ms_{backend}_{name}", statistics.median(samples), "ms",
                            baseline=base_p50, n=len(samples), p95=round(_p95(samples), 2), payments=count,
                            bytes=size, target_p95_ms=50))
    if backend == "postgresql":
        drop_pg_database("kassa_bench_api")
    return results


def main() -> list[dict]:
    count = int(os.environ.get("KASSA_BENCH_PAYMENTS", "1000000"))
    backends = os.environ.get("KASSA_BENCH_DBS", "sqlite,postgresql").split(",")
    results = []
    with tempfile.TemporaryDirectory(prefix="kassa-bench-api-") as tmp:
        for backend in backends:
            results += run_backend(backend.strip(), count, Path(tmp))
    return results


if __name__ == "__main__":
    main()
