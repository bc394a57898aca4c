"""api_list_payments_ms: server time (p50/p95) of the API's payment list (`GET /api/v1/payment_intents`, I3) at
1,000,000 payments, on SQLite and PostgreSQL (issue 18: p95 under 50 ms): the first page, a page of 100, a page
2,000 payments deep and one half-way down the list by `starting_after`, the page before that one by
`ending_before`, one payment by id, a page with `expand[]=customer&expand[]=refunds`, and Kassa's filter
(`/api/kassa/payments`, failed payments over 10.00, I2). Each call includes its key's lookup, the rate-limit check
(I7, limits lifted) and the audit row every API call writes (I1).

The baseline, measured in the same run, is a bare Flask app serving a body of the first page's size
(benchmarks.baseline_app). Server time comes from the app's own Server-Timing header, which also carries the
CPU time the request's thread used (`cpu`): on the shared machine the wall time also holds the time the worker
and the database waited for a core, the CPU time hardly moves with the load, so both are reported (and the load
average). EXPLAIN (ANALYZE on PostgreSQL) of the list's queries is kept in
instance/bench/api_list_payments_plan_<db>.txt: each reads ~11 index entries, wherever the cursor is.

The 1,000,000 payments are the dashboard benchmark's dataset (benchmarks.dashboard_bench.dataset: built once,
kept under instance/bench/datasets/ and in the PostgreSQL database KASSA_BENCH_PG_DATASET, default
`kassa_bench_p8`, migrated to the code's head on reuse). KASSA_BENCH_PAYMENTS changes the size,
KASSA_BENCH_DBS picks the databases. Exits non-zero when a p95 misses the target.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from urllib.parse import quote

from benchmarks.common import OUT_DIR, ROOT, emit, gunicorn
from benchmarks.dashboard_bench import dataset
from benchmarks.payments_index import WARMUP, Client

TARGET_P95_MS = 50
FILTER = '[[["status","any_of",["failed"]],["amount","gt",["10"]]]]'  # Kassa's filter: failed payments over 10.00
# One key makes every call here back to back: its limits (I7) lifted, the check itself still made on each call.
LIFTED_API_LIMITS = {"KASSA_API_LIVE_RATE_LIMIT": "100000 per second",
                     "KASSA_API_LIVE_ACCOUNT_RATE_LIMIT": "100000 per second"}


class CpuClient(Client):
    """Client, also keeping the CPU time the app reports per call (Server-Timing `cpu`): on a shared machine the
    wall time also holds the time the worker waited for a core, the CPU time hardly moves with the load."""

    def __init__(self, base: str) -> None:
        super().__init__(base)
        self.cpu: list[float] = []

    def request(self, method: str, path: str, body: str | None = None, headers: dict | None = None):
        response, data = super().request(method, path, body, headers)
        match = re.search(r"cpu;dur=([\d.]+)", response.getheader("Server-Timing") or "")
        self.cpu.append(float(match.group(1)) if match else 0.0)
        return response, data

    def timings(self, path: str, headers: dict | None = None) -> tuple[list[float], int]:
        self.cpu = []
        samples, size = super().timings(path, headers)
        self.cpu = self.cpu[WARMUP:]
        return samples, size


def _p95(values: list[float]) -> float:
    return sorted(values)[max(int(len(values) * 0.95) - 1, 0)]


def _setup(env: dict[str, str]) -> tuple[str, str, str, str]:
    """A live API key for the bench merchant, cursors 2,000 payments deep and half-way down the list, and one
    payment's id."""
    full = {**os.environ, **env}
    code = (
        "from kassa import create_app\nfrom kassa.actor import Actor\nfrom kassa.extensions import db\n"
        "from kassa.models import Payment, User\nfrom kassa.bench_data import BENCH_EMAIL\n"
        "from kassa.services.api.keys import create_key\nimport json\napp=create_app()\nwith app.app_context():\n"
        " u=db.session.query(User).filter_by(email=BENCH_EMAIL).one()\n"
        " q=db.session.query(Payment.id).filter(Payment.account_id==u.account_id, Payment.mode=='live')"
        ".order_by(Payment.created_at.desc(), Payment.id.desc())\n"
        " deep=q.offset(1999).first()[0]\n"
        " far=q.offset(q.count()//2).first()[0]\n"
        " secret=create_key(Actor(user=u, account_id=u.account_id), 'Bench', 'live')[1]\n"
        " print(json.dumps([secret, f'pi_{deep}', f'pi_{far}', f'pi_{deep}']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, check=True, capture_output=True,
                         text=True).stdout
    secret, cursor, far, one = json.loads(out.strip().splitlines()[-1])
    return secret, cursor, far, one


def _plans(env: dict[str, str], backend: str, cursor: str) -> str:
    """EXPLAIN of the list's queries (first page, deep cursor, Kassa's filter), kept next to the figures."""
    code = (
        "from kassa import create_app\nfrom kassa.extensions import db\nfrom kassa.models import Payment, User\n"
        "from kassa.bench_data import BENCH_EMAIL\nfrom kassa.services.api import resources\n"
        "from kassa.services.api.stripe_objects import parse_object_id\nfrom sqlalchemy import select, text\n"
        "from kassa.services.backoffice.payment_filters import FilterContext, filter_clause, parse_filter\n"
        f"from datetime import date\nFILTER={FILTER!r}\n"
        "app=create_app()\nwith app.app_context():\n u=db.session.query(User).filter_by(email=BENCH_EMAIL).one()\n"
        f" c=db.session.get(Payment, parse_object_id('payment_intent', '{cursor}'))\n"
        " base=select(Payment.id).where(Payment.account_id==u.account_id, Payment.mode=='live')\n"
        " out=[]\n"
        " for name, q in [('first_page', resources.page_query(base, Payment, None, 10)),"
        " ('half_way_cursor', resources.page_query(base, Payment, c, 10)),"
        " ('ending_before', resources.page_query(base, Payment, c, 10, before=True)),"
        " ('kassa_filter_failed', resources.page_query(base.where(filter_clause(parse_filter(FILTER),"
        " FilterContext(timezone='UTC', today=date.today()))), Payment, None, 10))]:\n"
        "  s=str(q.compile(db.engine, compile_kwargs={'literal_binds': True}))\n"
        f"  prefix = 'EXPLAIN QUERY PLAN ' if '{backend}'=='sqlite' else 'EXPLAIN ANALYZE '\n"
        "  out.append('-- '+name+'\\n'+s+'\\n'+'\\n'.join(' | '.join(str(x) for x in r)"
        " for r in db.session.execute(text(prefix+s))))\n"
        " print('\\n\\n'.join(out))\n"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env}, check=True,
                          capture_output=True, text=True).stdout


def run_backend(backend: str, count: int) -> list[dict]:
    env = {**dataset(backend, count), **LIFTED_API_LIMITS}
    secret, cursor, far, one = _setup(env)
    (OUT_DIR / f"api_list_payments_plan_{backend}.txt").write_text(_plans(env, backend, far))
    scenarios = {
        "first_page": "/api/v1/payment_intents?limit=10",
        "page_100_items": "/api/v1/payment_intents?limit=100",
        "deep_cursor": f"/api/v1/payment_intents?limit=10&starting_after={cursor}",
        "half_way_cursor": f"/api/v1/payment_intents?limit=10&starting_after={far}",
        "ending_before": f"/api/v1/payment_intents?limit=10&ending_before={far}",
        "retrieve": f"/api/v1/payment_intents/{one}",
        # I2: the same page with its relations as objects, and Kassa's filter (failed payments over 10.00)
        "expand_customer_refunds": "/api/v1/payment_intents?limit=10&expand[]=customer&expand[]=refunds",
        "kassa_filter_failed": "/api/kassa/payments?limit=10&filter=" + quote(FILTER),
    }
    results = []
    measured, cpu = {}, {}
    with gunicorn("wsgi:app", env, workers=1) as base:
        client = CpuClient(base)
        headers = {"Authorization": f"Bearer {secret}"}
        for name, path in scenarios.items():
            measured[name] = client.timings(path, headers)
            cpu[name] = client.cpu
    # The baseline, in the same run: a bare Flask app serving a body of the first page's size (baseline_app).
    with gunicorn("benchmarks.baseline_app:app",
                  {"KASSA_BASELINE_BYTES": str(measured["first_page"][1])}, workers=1) as base:
        baseline, _size = Client(base).timings("/")
    base_p50 = statistics.median(baseline)
    for name, (samples, size) in measured.items():
        results.append(emit(f"api_list_payments_ms_{backend}_{name}", statistics.median(samples), "ms",
                            baseline=base_p50, n=len(samples), p95=round(_p95(samples), 2), payments=count,
                            bytes=size, target_p95_ms=TARGET_P95_MS, p95_ok=_p95(samples) < TARGET_P95_MS,
                            baseline_p95=round(_p95(baseline), 2), cpu_p50=round(statistics.median(cpu[name]), 2),
                            cpu_p95=round(_p95(cpu[name]), 2), loadavg=os.getloadavg()[0]))
    return results


def main() -> list[dict]:
    count = int(os.environ.get("KASSA_BENCH_PAYMENTS", "1000000"))
    backends = os.environ.get("KASSA_BENCH_DBS", "sqlite,postgresql").split(",")
    results = []
    for backend in backends:
        results += run_backend(backend.strip(), count)
    return results


if __name__ == "__main__":
    sys.exit(0 if all(r["p95_ok"] for r in main()) else 1)
