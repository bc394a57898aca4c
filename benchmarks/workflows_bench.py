"""workflows_bench: account events evaluated by workflows per second, 20 workflows on, SQLite and PostgreSQL (W6).

For each database: a fresh migrated database gets a merchant with two payment links, N payments and their N
account events (a mix: 80 % payment.succeeded, 20 % payment.failed, amounts and links varying), and 20 workflows
that are on: payment succeeded on link A, on link B, above €50, renewals only, any (…), payment failed above
€50, refunded, dispute opened, subscription and payout triggers (which match none of these events). Then the
`workflows` tick task runs (`engine.enroll_due`) until every workflow's cursor is at the feed's end.

Reported: events per second = N / the ticks' time (each event evaluated by all 20 workflows: their criteria, the
INSERT … SELECT … ON CONFLICT DO NOTHING of the matching ones, one outbox message per enrollment inserted
set-based; the engine does this in one pass per account and batch: one statement for all 20 workflows, with the
outbox insert), against the baseline measured in the same run: the same N events read by one plain
SELECT (what any consumer of the feed pays to see them once). Also the enrollments made per second. The
steps the worker runs afterwards (emails, tasks) are not counted: they are the outbox's (see webhooks_bench).

KASSA_BENCH_WORKFLOW_EVENTS changes N (default 10,000); KASSA_BENCH_DBS picks the databases.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet

from benchmarks.common import ROOT, drop_pg_database, emit, fresh_pg_database

PG_DATABASE = "kassa_bench_workflows"
WORKFLOWS = 20


def _database_url(backend: str, workdir: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'kassa.db'}"
    return fresh_pg_database(PG_DATABASE)


def _workflow_specs(link_a: int, link_b: int) -> list[tuple[str, list, bool]]:
    """(trigger, criteria, renewals_only) for the 20 workflows."""
    email = [{"type": "email", "subject": "Hi {first_name}", "body": "Thanks for {amount}"}]
    task = [{"type": "task", "title": "Call {email}", "assignee_id": None, "due_days": 1}]
    specs = [
        ("payment.succeeded", [[["link", "eq", [str(link_a)]]]], False, email),
        ("payment.succeeded", [[["link", "eq", [str(link_b)]]]], False, email),
        ("payment.succeeded", [[["amount", "gt", ["50"]]]], False, email),
        ("payment.succeeded", [], False, email),
        ("payment.succeeded", [[["method", "any_of", ["card"]]]], False, email),
        ("payment.succeeded", [[["amount", "gt", ["10"]], ["link", "eq", [str(link_a)]]]], False, email),
        ("payment.succeeded", [], True, email),
        ("payment.failed", [[["amount", "gt", ["50"]]]], False, task),
        ("payment.failed", [], False, task),
        ("payment.failed", [[["link", "eq", [str(link_b)]]]], False, task),
        ("payment.refunded", [], False, task),
        ("dispute.opened", [], False, task),
        ("dispute.closed", [], False, task),
        ("subscription.started", [], False, task),
        ("subscription.renewed", [], False, task),
        ("subscription.past_due", [], False, task),
        ("subscription.cancelled", [], False, task),
        ("payout.paid", [], False, task),
        ("payout.failed", [], False, task),
        ("checkout.abandoned", [], False, email),
    ]
    assert len(specs) == WORKFLOWS
    return specs


def _seed(count: int) -> tuple[int, int]:
    """The merchant, its links, `count` payments with their events and the 20 workflows (on from the start)."""
    from kassa.bulk_sql import insert_rows
    from kassa.clock import now
    from kassa.event_types import AccountEventType
    from kassa.extensions import db
    from kassa.models import Payment, PaymentLink, Workflow
    from kassa.services.accounts.users import sign_up
    from kassa.services.platform.account_events import event_row, insert_events

    account_id = sign_up(company_name="Bench Workflows", name="Bench", email="workflows-bench@example.com",
                         password="bench-password-2026", country="NL", currency="EUR",
                         timezone="UTC").account_id
    links = []
    for name in ("Link A", "Link B"):
        link = PaymentLink(account_id=account_id, name=name, slug=f"bench-{name[-1].lower()}", currency="EUR")
        db.session.add(link)
        db.session.flush()
        links.append(link.id)
    at = now()
    for trigger, criteria, renewals_only, actions in _workflow_specs(*links):
        db.session.add(Workflow(account_id=account_id, name=trigger, trigger=trigger, criteria=criteria,
                                actions=actions, enabled=True, enabled_at=at, renewals_only=renewals_only,
                                abandon_hours=2 if trigger == "checkout.abandoned" else None, version=1,
                                scanned_until=at))
    db.session.commit()
    step = 5000
    for start in range(0, count, step):
        rows = []
        for i in range(start, min(count, start + step)):
            failed = i % 5 == 4
            rows.append({"account_id": account_id, "mode": "live", "status": "failed" if failed else "succeeded",
                         "display_status": "failed" if failed else "succeeded",
                         "amount_minor": 1000 + (i % 13) * 1000, "currency": "EUR", "method": "card",
                         "processor": "sandbox", "processor_ref": f"ch_bench_{i}", "settlement_currency": "EUR",
                         "buyer_email": f"buyer{i}@bench.example", "buyer_name": f"Buyer {i}", "language": "en",
                         "link_id": links[i % 3] if i % 3 < 2 else None, "source": "payment_link",
                         "created_at": at, "succeeded_at": None if failed else at, "failed_at": at if failed else None,
                         "refund_reserved_minor": 0, "refunded_minor": 0, "fee_minor": 0})
        insert_rows(db.session, Payment.__table__, rows)
        db.session.commit()
    payments = db.session.execute(sa.select(Payment.id, Payment.status).where(Payment.account_id == account_id)
                                  .order_by(Payment.id)).all()
    for start in range(0, len(payments), step):
        insert_events(db.session, [event_row(account_id, AccountEventType(f"payment.{status}"), object_type="payment",
                                             object_id=pid, mode="live", at=at)
                                   for pid, status in payments[start:start + step]])
        db.session.commit()
    return account_id, len(payments)


def run(backend: str, count: int) -> dict:
    from flask_migrate import upgrade

    from kassa import create_app
    from kassa.extensions import db
    from kassa.models import AccountEvent, OutboxMessage, Workflow, WorkflowEnrollment
    from kassa.services.workflows import engine

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ["KASSA_INSTANCE_PATH"] = str(workdir / "instance")
        url = _database_url(backend, workdir)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "KASSA_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
                          "KASSA_BASE_URL": "http://kassa.bench", "RATELIMIT_STORAGE_URI": "memory://"})
        try:
            with app.app_context():
                upgrade(directory=str(ROOT / "site" / "migrations"))
                account_id, events = _seed(count)
                if backend == "postgresql":  # as autovacuum would after a load this size: the planner's statistics
                    db.session.execute(sa.text("ANALYZE"))
                    db.session.commit()
                last = db.session.scalar(sa.select(sa.func.max(AccountEvent.id)))
                db.session.remove()

                # Baseline: the same events read once by one plain SELECT, every column, in the feed's order.
                started = time.perf_counter()
                rows = db.session.execute(sa.select(AccountEvent.__table__).where(
                    AccountEvent.account_id == account_id, AccountEvent.id > 0).order_by(AccountEvent.id)).all()
                baseline_s = time.perf_counter() - started
                db.session.remove()
                assert len(rows) == events

                started = time.perf_counter()
                ticks = 0
                while True:
                    engine.enroll_due()
                    ticks += 1
                    behind = db.session.scalar(sa.select(sa.func.count()).select_from(Workflow)
                                               .where(Workflow.event_cursor < last))
                    db.session.remove()
                    if not behind:
                        break
                evaluate_s = time.perf_counter() - started
                enrolled = db.session.scalar(sa.select(sa.func.count()).select_from(WorkflowEnrollment))
                queued = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                                           .where(OutboxMessage.kind == engine.STEP_JOB))
                db.session.remove()
                if enrolled != queued or not enrolled:
                    raise RuntimeError(f"{enrolled} enrollments, {queued} steps queued")
                db.engine.dispose()
        finally:
            if backend == "postgresql":
                drop_pg_database(PG_DATABASE)
    return {"baseline_per_s": events / baseline_s, "events_per_s": events / evaluate_s,
            "enrollments_per_s": enrolled / evaluate_s, "enrolled": enrolled, "ticks": ticks, "events": events}


def main() -> None:
    count = int(os.environ.get("KASSA_BENCH_WORKFLOW_EVENTS", "10000"))
    for backend in os.environ.get("KASSA_BENCH_DBS", "sqlite,postgresql").split(","):
        figures = run(backend, count)
        emit(f"workflow_events_per_s_{backend}", figures["events_per_s"], "events/s",
             baseline=figures["baseline_per_s"], n=figures["events"], database=backend, workflows=WORKFLOWS,
             enrollments=figures["enrolled"], enrollments_per_s=round(figures["enrollments_per_s"], 1),
             ticks=figures["ticks"], target_per_s=1000,
             baseline_is="the same events read once by one plain SELECT")


if __name__ == "__main__":
    main()
