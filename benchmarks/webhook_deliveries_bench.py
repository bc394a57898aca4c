"""webhook_deliveries_per_s: outgoing webhooks (I6) delivered per second by one worker, on SQLite and PostgreSQL.

For each database: a fresh migrated database gets a merchant with one webhook endpoint (payment.succeeded) on a
local receiver (tests/support/webhook_receiver.py, 127.0.0.1) and N succeeded payments with their account
events. The tick task makes the N deliveries (`make_deliveries`, timed as `tick_per_s`), then one worker loop
(`outbox.run_pending(50)`, batches of 50 as before) sends them until none is due: per batch, the messages claimed
in one transaction, the deliveries read in one query, signed (HMAC-SHA256), POSTed by the bounded pool of
concurrent sends over kept-alive connections (the URL checked before each), and all outcomes recorded in one
transaction with the messages closed.

Baseline, in the same run: the same N bodies signed and POSTed directly to the same receiver with http.client,
one at a time, a new connection each — what a plain sender pays for the HTTP alone. The receiver sets
TCP_NODELAY, as production servers do (without it a kept-alive connection waits 40 ms per answer on Nagle).

KASSA_BENCH_WEBHOOK_DELIVERIES changes N (default 1,000); KASSA_BENCH_DBS picks the databases;
KASSA_BENCH_WEBHOOK_LATENCY_MS makes the receiver take that long per answer (default 0: it answers at once), as
a real endpoint across the internet does: there the pool of concurrent sends is what counts.
"""

from __future__ import annotations

import http.client
import os
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

from benchmarks.common import ROOT, drop_pg_database, emit, fresh_pg_database
from tests.support.webhook_receiver import Receiver

PG_DATABASE = "kassa_bench_webhook_deliveries"


def _seed(count: int, url: str) -> int:
    from kassa.actor import Actor
    from kassa.clock import now
    from kassa.extensions import db
    from kassa.models import AccountEvent, Payment, User
    from kassa.services.accounts.users import sign_up
    from kassa.services.webhooks.outgoing import create_endpoint

    account_id = sign_up(company_name="Bench Hooks", name="Bench", email="hooks-bench@example.com",
                         password="bench-password-2026", country="NL", currency="EUR", timezone="UTC").account_id
    user = db.session.query(User).filter_by(account_id=account_id).one()
    create_endpoint(Actor(user=user, account_id=account_id), url, ["payment.succeeded"], "live")
    at = now()
    payments = [Payment(account_id=account_id, mode="live", status="succeeded", display_status="succeeded",
                        amount_minor=1500 + i, currency="EUR", method="card", processor="sandbox",
                        settlement_currency="EUR", buyer_email=f"buyer{i}@bench.example", language="en",
                        succeeded_at=at) for i in range(count)]
    db.session.add_all(payments)
    db.session.flush()
    db.session.add_all([AccountEvent(account_id=account_id, type="payment.succeeded", object_type="payment",
                                     object_id=p.id, mode="live", occurred_at=at,
                                     data={"amount_minor": p.amount_minor, "currency": "EUR"}) for p in payments])
    db.session.commit()
    return account_id


def _direct(url: str, bodies: list[str], secret: str) -> float:
    from urllib.parse import urlsplit

    from kassa.services.webhooks.outgoing import sign

    parts = urlsplit(url)
    started = time.perf_counter()
    for body in bodies:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        connection.request("POST", parts.path, body=body.encode(),
                           headers={"Content-Type": "application/json",
                                    "Kassa-Signature": sign(secret, int(time.time()), body)})
        response = connection.getresponse()
        response.read()
        connection.close()
        if response.status != 200:
            raise RuntimeError(f"receiver answered {response.status}")
    return time.perf_counter() - started


def run(backend: str, count: int) -> dict:
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from kassa import create_app, secrets_box
    from kassa.extensions import db
    from kassa.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
    from kassa.services.platform.outbox import run_pending
    from kassa.services.webhooks.outgoing import make_deliveries

    receiver = Receiver(delay=int(os.environ.get("KASSA_BENCH_WEBHOOK_LATENCY_MS", "0")) / 1000).start()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ["KASSA_INSTANCE_PATH"] = str(workdir / "instance")
        url = f"sqlite:///{workdir / 'kassa.db'}" if backend == "sqlite" else fresh_pg_database(PG_DATABASE)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "KASSA_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
                          "KASSA_BASE_URL": "http://kassa.bench", "RATELIMIT_STORAGE_URI": "memory://",
                          "KASSA_WEBHOOK_ALLOW_LOOPBACK": True})
        try:
            with app.app_context():
                upgrade(directory=str(ROOT / "site" / "migrations"))
                _seed(count, receiver.url)
                db.session.remove()
                started = time.perf_counter()
                while make_deliveries():
                    pass
                tick_s = time.perf_counter() - started
                started = time.perf_counter()
                while run_pending(50):
                    pass
                send_s = time.perf_counter() - started
                delivered = db.session.scalar(select(func.count()).select_from(WebhookDelivery).where(
                    WebhookDelivery.status == "succeeded"))
                attempts = db.session.scalar(select(func.count()).select_from(WebhookAttempt))
                if delivered != count or len(receiver.requests) != count or attempts != count:
                    raise RuntimeError(f"{delivered} delivered, {len(receiver.requests)} received, {attempts} "
                                       f"attempts recorded, of {count}")
                bodies = list(db.session.scalars(select(WebhookDelivery.body).order_by(WebhookDelivery.id)))
                secret = secrets_box.decrypt(db.session.scalar(select(WebhookEndpoint.secret_encrypted)))
                db.session.remove()
            direct_s = _direct(receiver.url, bodies, secret)
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
            receiver.stop()
            if backend == "postgresql":
                drop_pg_database(PG_DATABASE)
    return emit(f"webhook_deliveries_per_s_{backend}", count / send_s, "deliveries/s", baseline=count / direct_s,
                n=count, receiver_latency_ms=round(receiver.delay * 1000), tick_per_s=round(count / tick_s, 1), worker_s=round(send_s, 2),
                direct_s=round(direct_s, 2))


def main() -> None:
    count = int(os.environ.get("KASSA_BENCH_WEBHOOK_DELIVERIES", "1000"))
    for backend in os.environ.get("KASSA_BENCH_DBS", "sqlite,postgresql").split(","):
        run(backend.strip(), count)


if __name__ == "__main__":
    main()
