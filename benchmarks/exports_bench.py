"""Exports and payouts at scale (issue 9).

- export_csv_rows_per_s / export_xlsx_rows_per_s: the worker's export of the whole payments view (default
  columns) at 100,000 and 1,000,000 payments, against a baseline measured in the same run: the same rows
  read with a bare DB cursor and written with a bare csv.writer (no conversion, no app) — the floor for
  Python. Each run is its own process, so its peak RSS (VmHWM) is the worker's memory for that export.
- payout_run_ms: one account's daily payout over 100,000 available ledger entries, against a bare
  `SELECT sum(...)` over the same rows.

KASSA_BENCH_EXPORT_SIZES changes the sizes (default "100000,1000000"); the database is SQLite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, emit

WORKER = r"""
import json, sys, time
from kassa import create_app
from kassa.extensions import db
app = create_app()
kind, fmt = sys.argv[1], sys.argv[2]

def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

with app.app_context():
    from kassa.bench_data import BENCH_EMAIL
    from kassa.models import User
    user = db.session.query(User).filter_by(email=BENCH_EMAIL).one()
    if kind == "app":
        from kassa.actor import Actor
        from kassa.services.exports import exports
        export = exports.request_export(Actor(user=user, account_id=user.account_id), kind="payments",
                                        name="bench", file_format=fmt, language="en",
                                        params={"state": "", "tab": "payments", "modes": ["live", "test"]})
        started = time.perf_counter()
        exports.run_export({"export_id": export.id})
        seconds = time.perf_counter() - started
        db.session.refresh(export)
        rows, size = export.rows_done, export.size_bytes
    else:  # the baseline: a bare cursor into a bare csv.writer
        import csv
        from sqlalchemy import text
        sql = ("SELECT p.amount_minor, p.currency, p.display_status, p.created_at, p.buyer_name, p.buyer_email, "
               "p.method, p.card_brand, p.card_last4, l.name FROM payments p LEFT JOIN payment_links l "
               "ON l.id = p.link_id WHERE p.account_id = :a ORDER BY p.created_at DESC, p.id DESC")
        started = time.perf_counter()
        raw = db.engine.raw_connection()
        cursor = raw.cursor()
        cursor.execute(sql.replace(":a", str(int(user.account_id))))
        rows = 0
        with open(app.instance_path + "/baseline.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            while True:
                chunk = cursor.fetchmany(5000)
                if not chunk:
                    break
                writer.writerows(chunk)
                rows += len(chunk)
        seconds = time.perf_counter() - started
        size = 0
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_mb(), "size": size}))
"""

PAYOUT = r"""
import json, time
from datetime import date, timedelta
from kassa import create_app
from kassa.extensions import db
app = create_app()
with app.app_context():
    from sqlalchemy import func, insert, select
    from kassa.bench_data import ensure_bench_account
    from kassa.clock import now
    from kassa.models import Account, LedgerEntry
    from kassa.services.payouts.payouts import create_payout
    account_id, _user = ensure_bench_account()
    db.session.commit()
    account = db.session.get(Account, account_id)
    day = date(2031, 6, 2)
    with db.engine.begin() as conn:
        conn.execute(insert(LedgerEntry), [
            {"account_id": account_id, "mode": "live", "type": "charge" if i % 2 == 0 else "fee",
             "amount_minor": 2500 if i % 2 == 0 else -103, "currency": "EUR", "source_key": f"bench-payout:{i}",
             "description": "", "occurred_at": now(), "available_on": day - timedelta(days=i % 3)}
            for i in range(100_000)])
    db.session.rollback()  # a fresh snapshot that sees the rows just inserted
    started = time.perf_counter()
    total = db.session.execute(select(func.sum(LedgerEntry.amount_minor), func.count()).where(
        LedgerEntry.account_id == account_id, LedgerEntry.mode == "live", LedgerEntry.payout_id.is_(None),
        LedgerEntry.available_on <= day)).one()
    baseline = time.perf_counter() - started
    db.session.rollback()
    started = time.perf_counter()
    payout = create_payout(account, "live", day)
    seconds = time.perf_counter() - started
    assert payout.amount_minor == total[0] and payout.entry_count == total[1] == 100_000, (payout.amount_minor, total)
    print(json.dumps({"seconds": seconds, "baseline": baseline, "entries": payout.entry_count}))
"""


def _run(code: str, env: dict[str, str], *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env={**os.environ, **env}, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _prepare(env: dict[str, str], count: int) -> None:
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    full = {**os.environ, **env}
    subprocess.run([*flask, "db", "upgrade", "-d", "site/migrations"], cwd=ROOT, env=full, check=True,
                   capture_output=True)
    subprocess.run([*flask, "kassa", "bench-data", "--payments", str(count)], cwd=ROOT, env=full, check=True,
                   capture_output=True)


def main() -> list[dict]:
    sizes = [int(s) for s in os.environ.get("KASSA_BENCH_EXPORT_SIZES", "100000,1000000").split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="kassa-bench-export-") as tmp:
        for count in sizes:
            instance = Path(tmp) / f"instance-{count}"
            instance.mkdir()
            env = {"KASSA_INSTANCE_PATH": str(instance)}
            _prepare(env, count)
            baseline = _run(WORKER, env, "baseline", "csv")
            base_rate = baseline["rows"] / baseline["seconds"]
            for fmt, target in (("csv", 100_000), ("xlsx", 30_000)):
                run = _run(WORKER, env, "app", fmt)
                assert run["rows"] == count, run
                results.append(emit(f"export_{fmt}_rows_per_s_{count}", run["rows"] / run["seconds"], "rows/s",
                                    baseline=base_rate, n=count, target=target, peak_rss_mb=round(run["peak_mb"], 1),
                                    baseline_peak_rss_mb=round(baseline["peak_mb"], 1), file_bytes=run["size"]))
        instance = Path(tmp) / "instance-payout"
        instance.mkdir()
        env = {"KASSA_INSTANCE_PATH": str(instance)}
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade", "-d", "site/migrations"],
                       cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True)
        payout = _run(PAYOUT, env)
        results.append(emit("payout_run_ms", payout["seconds"] * 1000, "ms", baseline=payout["baseline"] * 1000,
                            n=payout["entries"]))
    return results


if __name__ == "__main__":
    main()
