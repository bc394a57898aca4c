"""payments_search_ms: server time (p50/p95) of the payments search box at 1,000,000 payments, on SQLite and
PostgreSQL, for each kind of thing a merchant types (B3: p95 < 50 ms).

The baseline, measured in the same run on the same data, is the limit of what a search can cost: the same page
searched by payment number (``P-000123``), a lookup by primary key. Server time comes from the app's own
Server-Timing header. KASSA_BENCH_PAYMENTS changes the size (default 1,000,000); KASSA_BENCH_DBS picks the
databases.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

from benchmarks.common import OUT_DIR, ROOT, drop_pg_database, emit, fresh_pg_database, gunicorn
from benchmarks.payments_index import Client, _p95, _prepare

TARGET_P95_MS = 50


def _samples(env: dict[str, str]) -> dict[str, str]:
    """What to type, read from the data: a real email, receipt, card last 4 and payment number."""
    code = (
        "from kassa import create_app\nfrom kassa.extensions import db\nfrom kassa.models import Payment, User\n"
        "from kassa.bench_data import BENCH_EMAIL\nfrom sqlalchemy import select\nimport json\napp=create_app()\n"
        "with app.app_context():\n u=db.session.query(User).filter_by(email=BENCH_EMAIL).one()\n"
        " ids=list(db.session.scalars(select(Payment.id).where(Payment.account_id==u.account_id)"
        ".order_by(Payment.id)))\n"
        " p=db.session.get(Payment, ids[len(ids)//2])\n"
        " r=db.session.scalar(select(Payment.receipt_number).where(Payment.account_id==u.account_id,"
        " Payment.receipt_number.is_not(None)).order_by(Payment.id.desc()).limit(1))\n"
        " c=db.session.scalar(select(Payment.card_last4).where(Payment.id>=ids[len(ids)//3],"
        " Payment.card_last4.is_not(None)).limit(1))\n"
        " print(json.dumps({'email': p.buyer_email, 'id': p.id, 'receipt': r, 'last4': c}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env}, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _plans(env: dict[str, str], backend: str, queries: dict[str, str]) -> str:
    """EXPLAIN of each reading of each query, kept next to the figures."""
    code = (
        "from kassa import create_app\nfrom kassa.extensions import db\nfrom kassa.models import Payment, User\n"
        "from kassa.bench_data import BENCH_EMAIL\nfrom kassa.services.backoffice import payment_search\n"
        "from sqlalchemy import select, text\nimport json, sys\napp=create_app()\n"
        "with app.app_context():\n u=db.session.query(User).filter_by(email=BENCH_EMAIL).one()\n"
        " for name, q in json.loads(sys.argv[1]).items():\n"
        "  for branch in payment_search.branches(u.account_id, q):\n"
        "   s=select(Payment.id).where(Payment.account_id==u.account_id, Payment.mode.in_(['live','test']), branch.clause)"
        ".order_by(Payment.created_at.desc(), Payment.id.desc()).limit(51)\n"
        "   sql=str(s.compile(db.engine, compile_kwargs={'literal_binds': True}))\n"
        f"   prefix = 'EXPLAIN QUERY PLAN ' if '{backend}'=='sqlite' else 'EXPLAIN '\n"
        "   print('--', name, q)\n"
        "   print('\\n'.join(' | '.join(str(c) for c in r) for r in db.session.execute(text(prefix+sql))))\n"
    )
    return subprocess.run([sys.executable, "-c", code, json.dumps(queries)], cwd=ROOT, env={**os.environ, **env},
                          check=True, capture_output=True, text=True).stdout


def run_backend(backend: str, count: int, workdir: Path) -> list[dict]:
    from kassa.bench_data import BENCH_EMAIL, BENCH_PASSWORD

    instance = workdir / f"instance-{backend}"
    instance.mkdir(parents=True, exist_ok=True)
    env = {"KASSA_INSTANCE_PATH": str(instance), "KASSA_SERVER_TIMING": "1"}
    if backend == "postgresql":
        fresh_pg_database("kassa_bench_search")
        env["KASSA_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:5432/kassa_bench_search"
    _prepare(env, count)
    if backend == "postgresql":  # as autovacuum would after a bulk load: statistics and the visibility map
        import sqlalchemy as sa

        engine = sa.create_engine(env["KASSA_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"),
                                  isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("VACUUM ANALYZE payments"))
        engine.dispose()
    sample = _samples(env)
    email = sample["email"]
    queries = {
        "email": email,
        "email_start": email.split("@")[0][:-1],
        "name": "Greta",
        "receipt_number": f"R-{sample['receipt']:06d}",
        "card_last4": sample["last4"],
        "amount_dot": "24.50",
        "amount_comma": "24,50",
        "link_name": "barista",
    }
    (OUT_DIR / f"payments_search_plan_{backend}.txt").parent.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / f"payments_search_plan_{backend}.txt").write_text(_plans(env, backend, queries))
    baseline_path = "/payments/?" + urllib.parse.urlencode({"q": f"P-{sample['id']:06d}"})
    results = []
    with gunicorn("wsgi:app", env, workers=1) as base:
        client = Client(base)
        client.login(BENCH_EMAIL, BENCH_PASSWORD)
        baseline, _size = client.timings(baseline_path)
        measured = {name: client.timings("/payments/?" + urllib.parse.urlencode({"q": q}))
                    for name, q in queries.items()}
        baseline_again, _size = client.timings(baseline_path)  # the limit, before and after: same conditions
    base_p50 = statistics.median(baseline + baseline_again)
    results.append(emit(f"payments_search_ms_{backend}_baseline_by_primary_key", base_p50, "ms", baseline=base_p50,
                        n=len(baseline) * 2, p95=round(_p95(baseline + baseline_again), 2), payments=count))
    for name, (samples, size) in measured.items():
        results.append(emit(f"payments_search_ms_{backend}_{name}", statistics.median(samples), "ms",
                            baseline=base_p50, n=len(samples), p95=round(_p95(samples), 2), payments=count,
                            query=queries[name], page_bytes=size, target_p95_ms=TARGET_P95_MS,
                            p95_ok=_p95(samples) < TARGET_P95_MS))
    if backend == "postgresql":
        drop_pg_database("kassa_bench_search")
    return results


def main() -> list[dict]:
    count = int(os.environ.get("KASSA_BENCH_PAYMENTS", "1000000"))
    backends = os.environ.get("KASSA_BENCH_DBS", "sqlite,postgresql").split(",")
    results = []
    with tempfile.TemporaryDirectory(prefix="kassa-bench-search-") as tmp:
        for backend in backends:
            results += run_backend(backend.strip(), count, Path(tmp))
    return results


if __name__ == "__main__":
    main()
