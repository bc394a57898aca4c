"""stripe_confirmation_bench: from Stripe's "succeeded" to the buyer's confirmation page (K6, K7).

A live checkout on an account connected to Stripe (answered by the recording fixture transport, no network),
served in process through the Flask test client on SQLite:

- **card** (`confirm_after_succeeded_ms`): the buyer presses Pay with a PaymentMethod from the Payment Element;
  Kassa creates and confirms the PaymentIntent and Stripe answers `succeeded`. Measured from the moment that
  answer leaves the transport to the moment the confirmation page (after the 303) has been served: recording the
  payment, the redirect and the page. Baseline in the same run: the same confirmation page served alone (GET),
  which is the limit — the page can't appear before it is rendered.
- **bank debit** (`webhook_to_confirmation_ms`): the payment is `processing`; Stripe sends
  `payment_intent.succeeded`. Measured from the webhook's POST to the confirmation page showing "succeeded":
  delivery, the worker's job (the PaymentIntent fetched again, the state machine), and the page. The buyer's
  processing page reloads itself every 3 s, which comes on top for a buyer who is watching.

KASSA_BENCH_CONFIRMATIONS changes the number of checkouts (default 100).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
import stripe
from cryptography.fernet import Fernet

from benchmarks.common import ROOT, emit
from tests.support.stripe_doubles import FixtureTransport

HOST = "http://stripe.fixture"
SECRET = "whsec_benchConfirmationSecret1"
CARD_PM = {"id": "pm_1Visa", "object": "payment_method", "type": "card", "customer": None, "metadata": {},
           "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030, "funding": "credit"}}
TXN = {"id": "txn_1", "object": "balance_transaction", "amount": 2500, "currency": "usd", "fee": 103, "net": 2397,
       "exchange_rate": None, "type": "charge"}
ADDRESS = {"billing_line1": "Damrak 1", "billing_city": "Amsterdam", "billing_postal_code": "1012 LG",
           "billing_country": "NL"}


class TimedTransport(FixtureTransport):
    """The fixture transport, noting when it hands over Stripe's answer to a PaymentIntent's creation."""

    answered_at = 0.0

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        answer = super().request(method, url, headers, post_data, _usage=_usage)
        if method.upper() == "POST" and url.endswith("/v1/payment_intents"):
            self.answered_at = time.perf_counter()
        return answer


def _intent(n: int, account_id: int, status: str) -> dict:
    return {"id": f"pi_bench_{n}", "object": "payment_intent", "amount": 2500, "currency": "usd", "status": status,
            "created": int(time.time()), "payment_method": "pm_1Visa", "client_secret": f"pi_bench_{n}_secret",
            "latest_charge": {"id": f"ch_{n}", "object": "charge", "amount": 2500, "currency": "usd",
                              "status": "succeeded", "balance_transaction": TXN} if status == "succeeded" else None,
            "last_payment_error": None,
            "metadata": {"kassa_account": str(account_id), "kassa_key": f"bench-{n}", "kassa_request": "x"}}


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(count: int) -> dict[str, list[float]]:
    from flask_migrate import upgrade

    from kassa import create_app, secrets_box
    from kassa.clock import now
    from kassa.extensions import db
    from kassa.models import OutboxMessage, Payment, StripeConnection
    from kassa.services.platform.outbox import claim_one, run_claimed
    from kassa.services.webhooks.stripe_webhooks import JOB
    from tests.support.checkout import start_checkout
    from tests.support.checkout_flow import make_shop

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ["KASSA_INSTANCE_PATH"] = str(workdir / "instance")
        transport = TimedTransport({})
        app = create_app({
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'kassa.db'}",
            "KASSA_ENCRYPTION_KEYS": [Fernet.generate_key().decode()], "KASSA_STRIPE_HTTP_CLIENT": transport,
            "KASSA_STRIPE_BASE_ADDRESSES": {"api": HOST, "files": HOST, "connect": HOST},
            "RATELIMIT_ENABLED": False, "WTF_CSRF_ENABLED": False})
        figures: dict[str, list[float]] = {"card": [], "page_alone": [], "webhook": []}
        with app.app_context():
            upgrade(directory=str(ROOT / "site" / "migrations"))
            owner, link = make_shop("Bench Live Shop")
            account_id, slug = owner.account_id, link.slug
            db.session.add(StripeConnection(
                account_id=account_id, mode="live", secret_key_encrypted=secrets_box.encrypt("sk_live_bench0000"),
                secret_key_last4="0000", publishable_key="pk_live_bench", stripe_account_id="acct_bench",
                connected_at=now(), webhook_secret_encrypted=secrets_box.encrypt(SECRET)))
            db.session.commit()
            transport.answers[("GET", "/v1/payment_intents")] = [
                (200, {"object": "list", "data": [], "has_more": False, "url": "/v1/payment_intents"})]
            transport.answers[("GET", "/v1/payment_methods/pm_1Visa")] = [(200, CARD_PM)]
            client = app.test_client()
            for n in range(count):
                # Card: Stripe answers succeeded to the server-side confirmation.
                transport.answers[("POST", "/v1/payment_intents")] = [(200, _intent(n, account_id, "succeeded"))]
                path = start_checkout(client, slug, mode="live")
                paid = client.post(path, data={"email": f"b{n}@bench.example", "first_name": "Ann",
                                               "last_name": "Buyer", "payment_method": "pm_1Visa", **ADDRESS})
                if paid.status_code != 303:
                    raise RuntimeError(f"pay answered {paid.status_code}")
                page = client.get(paid.headers["Location"])
                done = time.perf_counter()
                if page.status_code != 200 or "4242" not in page.get_data(as_text=True):
                    raise RuntimeError("no confirmation page with the card")
                figures["card"].append((done - transport.answered_at) * 1000)
                started = time.perf_counter()
                client.get(paid.headers["Location"])
                figures["page_alone"].append((time.perf_counter() - started) * 1000)

                # Bank debit: the payment was processing; Stripe's webhook says it succeeded.
                transport.answers[("POST", "/v1/payment_intents")] = [(200, _intent(10_000 + n, account_id,
                                                                                     "processing"))]
                path = start_checkout(client, slug, mode="live")
                paid = client.post(path, data={"email": f"d{n}@bench.example", "first_name": "Ann",
                                               "last_name": "Buyer", "payment_method": "pm_1Visa", **ADDRESS})
                intent = _intent(10_000 + n, account_id, "succeeded")
                transport.answers[("GET", f"/v1/payment_intents/{intent['id']}")] = [(200, intent)]
                body = json.dumps({"id": f"evt_bench_{n}", "object": "event", "type": "payment_intent.succeeded",
                                   "created": int(time.time()), "livemode": True,
                                   "data": {"object": intent}})
                header = stripe.WebhookSignature.generate_signature_header(body, SECRET)
                started = time.perf_counter()
                delivered = client.post(f"/webhooks/stripe/{account_id}", data=body,
                                        headers={"Stripe-Signature": header})
                if delivered.status_code != 200:
                    raise RuntimeError(f"webhook answered {delivered.status_code}")
                for job in db.session.scalars(sa.select(OutboxMessage.id).where(
                        OutboxMessage.kind == JOB, OutboxMessage.status == "pending")).all():
                    db.session.remove()
                    attempt = claim_one(job)
                    if attempt is not None:
                        run_claimed(job, attempt)
                page = client.get(paid.headers["Location"])
                figures["webhook"].append((time.perf_counter() - started) * 1000)
                status = db.session.scalar(sa.select(Payment.status).where(Payment.processor_ref == intent["id"]))
                db.session.remove()
                if status != "succeeded" or page.status_code != 200:
                    raise RuntimeError(f"bank debit is {status} after the webhook")
            db.engine.dispose()
    return figures


def main() -> None:
    count = int(os.environ.get("KASSA_BENCH_CONFIRMATIONS", "100"))
    figures = run(count)
    page = statistics.median(figures["page_alone"])
    emit("stripe_succeeded_to_confirmation_ms", statistics.median(figures["card"]), "ms", baseline=page, n=count,
         database="sqlite", p95_ms=round(_p(figures["card"], 0.95), 1),
         baseline_is="the same confirmation page served alone (GET)")
    emit("stripe_webhook_to_confirmation_ms", statistics.median(figures["webhook"]), "ms", baseline=page, n=count,
         database="sqlite", p95_ms=round(_p(figures["webhook"], 0.95), 1),
         baseline_is="the same confirmation page served alone (GET)")


if __name__ == "__main__":
    main()
