"""billing_run: one tick charging N due test subscriptions in the sandbox, on SQLite and PostgreSQL (issue 8).

For each database: a fresh migrated database gets a merchant with N due monthly test subscriptions (contacts,
items and the sandbox's saved cards inserted in bulk, as `SandboxProcessor` stores them); then ONE
`bill_due_subscriptions()` call is timed in its own process. Reported: charges per second (target ≥ 1,000/s)
against the rate of plain INSERTs of the same payment rows in the same run (the baseline), and the billing
process's peak RSS. The tick queues each receipt for the worker to write (rendering it was most of a charge's
cost); so that this cost is not hidden, the worker's rate at writing them is measured on a sample too
(`worker_receipts_per_s`; sending them, with their PDFs, was never part of the tick).

On PostgreSQL the tick bills KASSA_BILLING_WORKERS batches side by side (default 2, reported as
`batches_at_once`); SQLite takes one writer at a time, so there it bills one batch after another.

KASSA_BENCH_SUBSCRIPTIONS changes N (default 100,000); KASSA_BENCH_DBS picks the databases;
KASSA_BENCH_RECEIPTS the worker's sample (default 1,000; 0 skips it);
KASSA_BENCH_PROFILE=1 also writes a cProfile summary of the billing call to instance/bench/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import OUT_DIR, ROOT, emit, pg_admin

PG_DATABASE = "kassa_bench_billing"
BATCH = 5_000
BENCH_EMAIL = "billing-bench@example.com"
TARGET_PER_S = 1_000


# -- run inside a child process (python -m benchmarks.billing_run seed|bill) ---------------------------


def _seed(count: int) -> None:
    """The merchant and `count` subscriptions due now, each with its saved sandbox card."""
    from datetime import timedelta

    from sqlalchemy import func, insert, select

    from kassa import create_app
    from kassa.clock import now
    from kassa.extensions import db
    from kassa.models import Contact, SandboxRecord, Subscription, SubscriptionItem
    from kassa.periods import charge_date
    from kassa.services.accounts.users import sign_up

    app = create_app()
    with app.app_context():
        account_id = sign_up(company_name="Bench Subscriptions", name="Bench", email=BENCH_EMAIL,
                             password="bench-password-2026", country="US", currency="USD", timezone="UTC").account_id
        # 35 days ago: the second charge is due now, the third a month away (one charge each in this tick).
        anchor = now() - timedelta(days=35)
        due = charge_date(anchor, "monthly", 1, "UTC")
        first_contact = (db.session.scalar(select(func.max(Contact.id))) or 0) + 1
        first_sub = (db.session.scalar(select(func.max(Subscription.id))) or 0) + 1
        db.session.remove()
        card = {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2040, "funding": "credit"}
        scenario = {"dispute_reason": None, "is_inquiry": False, "refund_failure": None}
        with db.engine.begin() as conn:
            for start in range(0, count, BATCH):
                numbers = range(start, min(start + BATCH, count))
                conn.execute(insert(Contact), [
                    {"id": first_contact + i, "account_id": account_id, "mode": "test",
                     "email": f"subscriber{i}@bench.example", "first_name": "Sub", "last_name": str(i),
                     "phone": "", "language": "en", "created_at": anchor} for i in numbers])
                conn.execute(insert(Subscription), [
                    {"id": first_sub + i, "account_id": account_id, "mode": "test", "status": "active",
                     "contact_id": first_contact + i, "frequency": "monthly", "term_type": "auto_renew",
                     "amount_minor": 1800, "currency": "USD", "payments_made": 1, "anchor_at": anchor,
                     "next_charge_at": due, "payment_method_token": f"pm_bench_{i}", "card_brand": "visa",
                     "card_last4": "4242", "card_exp_month": 12, "card_exp_year": 2040, "language": "en",
                     "created_at": anchor, "failed_attempts": 0, "cancel_at_period_end": False} for i in numbers])
                conn.execute(insert(SubscriptionItem), [
                    {"subscription_id": first_sub + i, "position": 0, "name": "Coffee club", "description": "",
                     "unit_amount_minor": 1800, "currency": "USD", "quantity": 1} for i in numbers])
                # The sandbox's saved card, as SandboxProcessor._create_charge stores it for save_payment_method.
                conn.execute(insert(SandboxRecord), [
                    {"key": f"pm:pm_bench_{i}", "account_id": account_id, "due_at": None,
                     "data": {"account_id": account_id, "behaviour": "succeed", "scenario": scenario, **card}}
                    for i in numbers])
        db.engine.dispose()


def _baseline_inserts(rows: list[dict]) -> float:
    """Plain INSERTs of the billing run's own payment rows (copies), as rows per second."""
    import time

    from sqlalchemy import insert

    from kassa.extensions import db
    from kassa.models import Payment

    copies = [{**row, "id": None, "receipt_number": None, "subscription_period": None, "billing_attempt": None,
               "idempotency_key": None} for row in rows]
    for row in copies:
        row.pop("id")
    start = time.perf_counter()
    with db.engine.begin() as conn:
        for i in range(0, len(copies), BATCH):
            conn.execute(insert(Payment), copies[i:i + BATCH])
    return len(copies) / (time.perf_counter() - start)


def _worker_receipts(sample: int) -> float | None:
    """Receipts written per second by the worker's loop (outbox.run_pending), on the first `sample` queued."""
    import time

    from kassa.services.platform.outbox import run_pending

    if sample <= 0:
        return None
    done, start = 0, time.perf_counter()
    while done < sample:
        claimed = run_pending(min(20, sample - done))  # the worker's batch size; receipt jobs come first (ids)
        if not claimed:
            break
        done += claimed
    return done / (time.perf_counter() - start)


def _bill(profile_to: str | None) -> None:
    """Time one bill_due_subscriptions() call; print one JSON line with the figures."""
    import resource
    import time

    from sqlalchemy import func, select

    from kassa import create_app
    from kassa.extensions import db
    from kassa.models import OutboxMessage, Payment, SandboxRecord
    from kassa.services.billing.billing import bill_due_subscriptions, billing_workers
    from kassa.services.billing.billing_outcomes import RECEIPT_JOB

    app = create_app()
    with app.app_context():
        db.session.execute(select(1))
        workers = billing_workers()
        db.session.remove()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        profiler = None
        if profile_to:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        start, cpu_start = time.perf_counter(), time.process_time()
        charged = bill_due_subscriptions()
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        if profiler is not None:
            import io
            import pstats

            profiler.disable()
            profiler.dump_stats(profile_to.removesuffix(".txt") + ".prof")
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
            stats.print_stats(45)
            stats.sort_stats("tottime").print_stats(30)
            Path(profile_to).write_text(out.getvalue())
        peak_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        db.session.remove()
        succeeded = db.session.scalar(select(func.count()).select_from(Payment).where(
            Payment.source == "subscription", Payment.status == "succeeded"))
        sandbox_charges = db.session.scalar(select(func.count()).select_from(SandboxRecord).where(
            SandboxRecord.key.like("charge:%")))
        rows = [dict(row._mapping) for row in db.session.execute(
            select(Payment.__table__).where(Payment.source == "subscription"))]
        db.session.remove()
        receipts_queued = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.kind == RECEIPT_JOB))
        db.session.remove()
        baseline = _baseline_inserts(rows)
        del rows
        receipts_per_s = _worker_receipts(int(os.environ.get("KASSA_BENCH_RECEIPTS", "1000")))
    print(json.dumps({"charged": charged, "succeeded": succeeded, "sandbox_charges": sandbox_charges,
                      "receipts_queued": receipts_queued, "seconds": seconds, "cpu_seconds": cpu_seconds,
                      "rss_before_kb": rss_before, "peak_rss_kb": peak_rss_kb, "baseline_inserts_per_s": baseline,
                      "worker_receipts_per_s": receipts_per_s, "batches_at_once": workers}))


# -- the orchestration ------------------------------------------------------------------------------------


def _child(env: dict[str, str], *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "benchmarks.billing_run", *args], cwd=ROOT,
                          env={**os.environ, **env}, check=True, capture_output=True, text=True).stdout


def run_backend(backend: str, count: int, workdir: Path) -> dict:
    instance = workdir / f"instance-{backend}"
    instance.mkdir(parents=True, exist_ok=True)
    env = {"KASSA_INSTANCE_PATH": str(instance)}
    if backend == "postgresql":
        pg_admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        pg_admin(f"CREATE DATABASE {PG_DATABASE}")
        env["KASSA_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{PG_DATABASE}"
    try:
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade", "-d", "site/migrations"],
                       cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True)
        _child(env, "seed", str(count))
        profile = str(OUT_DIR / f"billing_run_profile_{backend}.txt") if os.environ.get("KASSA_BENCH_PROFILE") \
            else ""
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        result = json.loads(_child(env, "bill", profile).strip().splitlines()[-1])
    finally:
        if backend == "postgresql":
            pg_admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
    if not result["succeeded"] == result["sandbox_charges"] == result["receipts_queued"] == count:
        raise RuntimeError(f"billing_run on {backend}: {result['succeeded']} payments, "
                           f"{result['sandbox_charges']} sandbox charges and {result['receipts_queued']} receipts "
                           f"for {count} due subscriptions")
    per_s = count / result["seconds"]
    return emit(f"billing_run_charges_per_s_{backend}", per_s, "charges/s",
                baseline=result["baseline_inserts_per_s"], n=count, seconds=round(result["seconds"], 2),
                # CPU time of the billing process alone: on a busy machine wall time also counts waiting.
                cpu_seconds=round(result["cpu_seconds"], 2),
                peak_rss_mb=round(result["peak_rss_kb"] / 1024, 1),
                rss_before_mb=round(result["rss_before_kb"] / 1024, 1), target_per_s=TARGET_PER_S,
                baseline_is="plain INSERTs of the same payment rows, rows/s", batches_at_once=result["batches_at_once"],
                worker_receipts_per_s=result["worker_receipts_per_s"] and round(result["worker_receipts_per_s"], 1))


def main() -> list[dict]:
    count = int(os.environ.get("KASSA_BENCH_SUBSCRIPTIONS", "100000"))
    backends = [b.strip() for b in os.environ.get("KASSA_BENCH_DBS", "sqlite,postgresql").split(",") if b.strip()]
    with tempfile.TemporaryDirectory(prefix="kassa-bench-billing-") as tmp:
        return [run_backend(backend, count, Path(tmp)) for backend in backends]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "seed":
        _seed(int(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "bill":
        _bill(sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None)
    else:
        main()
