"""webhooks_bench: Stripe webhook events applied per second, on SQLite and PostgreSQL (K7).

For each database: a fresh migrated database gets a merchant with a Stripe connection (its webhook signing
secret encrypted) and N bank-debit payments Stripe is still processing. N signed `payment_intent.succeeded`
deliveries are POSTed to /webhooks/stripe/<account> (in process, through the Flask test client: the request
path, not the network, is measured), then the worker runs the queue until every payment has succeeded: each
event's PaymentIntent is fetched again (from a fixture transport answering like Stripe, no network) and
the payment moves through its state machine (receipt number, ledger, timeline, receipt email queued).

Reported: events applied per second end to end (delivery + application), against the baseline measured in the
same run: the same deliveries through the bare signature check (`stripe.Webhook.construct_event`), which is
the limit of any endpoint that verifies Stripe's signature. Also `deliveries_per_s` (the 2xx answer: check,
store, queue), `apply_per_s` (the worker alone: re-fetch, inbox, state machine) and `direct_apply_per_s` (the
same outcome handed straight to `apply_event`, as the sandbox's events are: what a payment's success itself
costs — receipt number, ledger rows, timeline, two emails queued — and so the ceiling of `apply_per_s`).

KASSA_BENCH_WEBHOOKS changes N (default 1,000); KASSA_BENCH_DBS picks the databases (sqlite,postgresql).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
import stripe
from cryptography.fernet import Fernet

from benchmarks.common import ROOT, drop_pg_database, emit, fresh_pg_database
from tests.support.stripe_doubles import FixtureTransport

PG_DATABASE = "kassa_bench_webhooks"
SECRET = "whsec_benchWebhookSecret00001"
HOST = "http://stripe.fixture"


def _database_url(backend: str, workdir: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'kassa.db'}"
    return fresh_pg_database(PG_DATABASE)


def _drop(backend: str) -> None:
    if backend == "postgresql":
        drop_pg_database(PG_DATABASE)


def _seed(count: int, transport: FixtureTransport) -> tuple[int, list[bytes]]:
    """The merchant, its connection and `count` processing payments; returns the account and the event bodies."""
    from kassa import secrets_box
    from kassa.clock import now
    from kassa.extensions import db
    from kassa.models import Payment, StripeConnection
    from kassa.services.accounts.users import sign_up

    account_id = sign_up(company_name="Bench Webhooks", name="Bench", email="webhooks-bench@example.com",
                         password="bench-password-2026", country="NL", currency="EUR",
                         timezone="UTC").account_id
    db.session.add(StripeConnection(
        account_id=account_id, mode="live", secret_key_encrypted=secrets_box.encrypt("sk_live_bench0000"),
        secret_key_last4="0000", publishable_key="pk_live_bench", stripe_account_id="acct_bench",
        connected_at=now(), webhook_secret_encrypted=secrets_box.encrypt(SECRET)))
    created = int(time.time())
    bodies = []
    for i in range(count):
        intent = {"id": f"pi_bench_{i}", "object": "payment_intent", "status": "succeeded", "amount": 1500,
                  "currency": "eur", "created": created, "last_payment_error": None,
                  "metadata": {"kassa_account": str(account_id), "kassa_key": f"k{i}", "kassa_request": "x"}}
        transport.answers[("GET", f"/v1/payment_intents/pi_bench_{i}")] = [(200, intent)]
        db.session.add(Payment(
            account_id=account_id, mode="live", status="processing", display_status="processing",
            amount_minor=1500, currency="EUR", method="card", processor="stripe", processor_ref=intent["id"],
            settlement_currency="EUR", buyer_email=f"buyer{i}@bench.example", language="en"))
        bodies.append(json.dumps({"id": f"evt_bench_{i}", "object": "event", "type": "payment_intent.succeeded",
                                  "created": created, "livemode": True, "data": {"object": intent}}).encode())
    db.session.commit()
    return account_id, bodies


def run(backend: str, count: int) -> dict:
    from flask_migrate import upgrade

    from kassa import create_app
    from kassa.clock import now
    from kassa.extensions import db
    from kassa.models import OutboxMessage, Payment
    from kassa.processors.base import ProcessorEvent
    from kassa.services.events import apply_event
    from kassa.services.platform.outbox import claim_one, run_claimed
    from kassa.services.webhooks.stripe_webhooks import JOB

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ["KASSA_INSTANCE_PATH"] = str(workdir / "instance")
        url = _database_url(backend, workdir)
        transport = FixtureTransport({})
        app = create_app({
            "SQLALCHEMY_DATABASE_URI": url, "KASSA_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
            "KASSA_STRIPE_HTTP_CLIENT": transport, "KASSA_BASE_URL": "http://kassa.bench",
            "KASSA_STRIPE_BASE_ADDRESSES": {"api": HOST, "files": HOST, "connect": HOST},
            "RATELIMIT_STORAGE_URI": "memory://"})
        try:
            with app.app_context():
                upgrade(directory=str(ROOT / "site" / "migrations"))
                account_id, bodies = _seed(count, transport)
                headers = [stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET)
                           for body in bodies]
                db.session.remove()

                # Baseline: the signature check alone, the floor of any endpoint that verifies Stripe's HMAC.
                started = time.perf_counter()
                for body, header in zip(bodies, headers, strict=True):
                    stripe.Webhook.construct_event(body, header, SECRET, tolerance=300)
                baseline_s = time.perf_counter() - started

                client = app.test_client()
                started = time.perf_counter()
                for body, header in zip(bodies, headers, strict=True):
                    answer = client.post(f"/webhooks/stripe/{account_id}", data=body,
                                         headers={"Stripe-Signature": header})
                    if answer.status_code != 200:
                        raise RuntimeError(f"webhook answered {answer.status_code}: {answer.get_data()[:200]}")
                deliver_s = time.perf_counter() - started

                # The worker runs the queued webhook jobs (the receipt emails they queue are sent later, with
                # their PDFs, as for every payment: that is measured by receipt_pdf_ms, not here).
                jobs = db.session.scalars(sa.select(OutboxMessage.id).where(OutboxMessage.kind == JOB)
                                          .order_by(OutboxMessage.id)).all()
                db.session.remove()
                started = time.perf_counter()
                for job in jobs:
                    attempt = claim_one(job)
                    if attempt is not None:
                        run_claimed(job, attempt)
                apply_s = time.perf_counter() - started

                # For scale: the same outcome applied straight to the state machine (no webhook, no re-fetch,
                # no inbox), as the sandbox's own events are: what the payment's success itself costs.
                direct = [Payment(account_id=account_id, mode="live", status="processing",
                                  display_status="processing", amount_minor=1500, currency="EUR", method="card",
                                  processor="stripe", processor_ref=f"pi_direct_{i}", settlement_currency="EUR",
                                  buyer_email=f"direct{i}@bench.example", language="en") for i in range(count)]
                db.session.add_all(direct)
                db.session.commit()
                events = [ProcessorEvent(id=f"pi_direct_{i}:charge.succeeded", type="charge.succeeded",
                                         account_id=account_id, object_ref=f"pi_direct_{i}", occurred_at=now(),
                                         data={"charge_ref": f"pi_direct_{i}", "method": "card",
                                               "amount_minor": 1500, "currency": "EUR"}) for i in range(count)]
                db.session.remove()
                started = time.perf_counter()
                for event in events:
                    apply_event("stripe", event)
                direct_s = time.perf_counter() - started
                succeeded = db.session.scalar(sa.select(sa.func.count()).select_from(Payment)
                                              .where(Payment.status == "succeeded"))
                db.session.remove()
                if succeeded != 2 * count:
                    raise RuntimeError(f"{succeeded} of {count} payments succeeded")
                db.engine.dispose()
        finally:
            _drop(backend)
    return {"baseline_per_s": count / baseline_s, "deliveries_per_s": count / deliver_s,
            "apply_per_s": count / apply_s, "applied_per_s": count / (deliver_s + apply_s),
            "direct_apply_per_s": count / direct_s}


def main() -> None:
    count = int(os.environ.get("KASSA_BENCH_WEBHOOKS", "1000"))
    for backend in os.environ.get("KASSA_BENCH_DBS", "sqlite,postgresql").split(","):
        figures = run(backend, count)
        emit(f"webhooks_applied_per_s_{backend}", figures["applied_per_s"], "events/s",
             baseline=figures["baseline_per_s"], n=count, database=backend,
             deliveries_per_s=round(figures["deliveries_per_s"], 1), apply_per_s=round(figures["apply_per_s"], 1),
             direct_apply_per_s=round(figures["direct_apply_per_s"], 1),
             baseline_is="stripe.Webhook.construct_event alone on the same deliveries")


if __name__ == "__main__":
    main()
