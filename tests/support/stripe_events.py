"""A Stripe account as the webhook tests see it (K7, K9, K10): objects whose state the test moves, the events
Stripe would send about them, signed like Stripe signs them, on the recording FixtureTransport (no internet).

    world = StripeWorld(transport, account_id)
    world.intent("pi_1", "processing")                     # GET /v1/payment_intents/pi_1 answers this now
    payload, header = world.signed(world.event("payment_intent.processing", "pi_1"), SECRET)
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import stripe
from sqlalchemy import func, select

from kassa import secrets_box
from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import (
    EmailMessage,
    LedgerEntry,
    Payment,
    Refund,
    RefundStatus,
    StripeConnection,
    TimelineEntry,
)
from tests.factories import make_payment
from tests.support.stripe_doubles import FixtureTransport

FIXTURE_HOST = "http://stripe.fixture"
FIXTURE_CONFIG = {"api": FIXTURE_HOST, "files": FIXTURE_HOST, "connect": FIXTURE_HOST}
_events = itertools.count(1)


def fixture_app_config(transport: FixtureTransport, encryption_key: str) -> dict[str, Any]:
    return {"KASSA_STRIPE_HTTP_CLIENT": transport, "KASSA_ENCRYPTION_KEYS": [encryption_key],
            "KASSA_STRIPE_BASE_ADDRESSES": FIXTURE_CONFIG}


def make_connection(account_id: int, webhook_secret: str | None, *, mode: str = "live",
                    endpoint_id: str | None = None) -> StripeConnection:
    """An active connection as Settings → Payments leaves it (keys encrypted, the webhook secret too)."""
    with write_transaction(db.session) as session:
        connection = StripeConnection(
            account_id=account_id, mode=mode, secret_key_encrypted=secrets_box.encrypt(f"sk_{mode}_k7{account_id}"),
            secret_key_last4="k7k7", publishable_key=f"pk_{mode}_k7", stripe_account_id=f"acct_k7_{account_id}",
            stripe_account_name="Acme", country="NL", default_currency="EUR", connected_at=now(),
            webhook_endpoint_id=endpoint_id,
            webhook_secret_encrypted=secrets_box.encrypt(webhook_secret) if webhook_secret else None)
        session.add(connection)
        session.flush()
        return connection


def signed(event: dict[str, Any], secret: str, *, timestamp: int | None = None) -> tuple[bytes, str]:
    """The body and Stripe-Signature header of a delivery, made with the SDK's own signer."""
    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)
    return payload.encode(), header


class StripeWorld:
    """Stripe's side: the objects of one connected account, answered by GET as they are now."""

    def __init__(self, transport: FixtureTransport, account_id: int):
        self.transport = transport
        self.account_id = account_id
        self.objects: dict[str, dict[str, Any]] = {}

    def _put(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[obj["id"]] = obj
        self.transport.answers[("GET", f"/v1/{path}/{obj['id']}")] = [(200, obj)]
        return obj

    def _metadata(self, key: str) -> dict[str, str]:
        return {"kassa_account": str(self.account_id), "kassa_key": key, "kassa_request": "x"}

    def intent(self, intent_id: str, status: str, *, amount: int = 5000, currency: str = "eur",
               error: dict[str, Any] | None = None, ours: bool = True) -> dict[str, Any]:
        return self._put("payment_intents", {
            "id": intent_id, "object": "payment_intent", "status": status, "amount": amount, "currency": currency,
            "created": int(time.time()) - 60, "last_payment_error": error, "payment_method": None,
            "metadata": self._metadata(f"key-{intent_id}") if ours else {}})

    def refund(self, refund_id: str, status: str, *, intent_id: str, amount: int = 1000, key: str | None = None,
               failure_reason: str | None = None, currency: str = "eur") -> dict[str, Any]:
        return self._put("refunds", {
            "id": refund_id, "object": "refund", "status": status, "amount": amount, "currency": currency,
            "payment_intent": intent_id, "created": int(time.time()) - 30, "failure_reason": failure_reason,
            "metadata": self._metadata(key or f"key-{refund_id}")})

    def dispute(self, dispute_id: str, status: str, *, intent_id: str, amount: int = 5000,
                reason: str = "product_not_received", due_by: int | None = None,
                currency: str = "eur") -> dict[str, Any]:
        intent = self.objects[intent_id]
        return self._put("disputes", {
            "id": dispute_id, "object": "dispute", "status": status, "amount": amount, "currency": currency,
            "reason": reason, "payment_intent": intent, "charge": f"ch_{intent_id}",
            "created": int(time.time()) - 3600, "evidence_details": {"due_by": due_by, "has_evidence": False}})

    def event(self, event_type: str, object_id: str, *, created: int | None = None) -> dict[str, Any]:
        """A Stripe event about the object as it is now (Stripe's snapshot; Kassa fetches the object again)."""
        return {"id": f"evt_k7_{next(_events)}", "object": "event", "type": event_type,
                "created": created or int(time.time()), "livemode": True, "api_version": "2026-11-17",
                "data": {"object": dict(self.objects[object_id])}}


def processing_payment(account_id: int, intent_id: str, *, amount_minor: int = 5000) -> Payment:
    """A bank debit (SEPA) Stripe is still processing, as the live checkout records it."""
    payment = make_payment(account_id, amount_minor=amount_minor, currency="EUR", status="processing", mode="live",
                           processor="stripe")
    with write_transaction(db.session) as session:
        session.get(Payment, payment.id).processor_ref = intent_id
    return db.session.get(Payment, payment.id)


def paid_payment(account_id: int, intent_id: str, *, amount_minor: int = 5000) -> Payment:
    payment = make_payment(account_id, amount_minor=amount_minor, currency="EUR", status="succeeded", mode="live",
                           processor="stripe")
    with write_transaction(db.session) as session:
        session.get(Payment, payment.id).processor_ref = intent_id
    return db.session.get(Payment, payment.id)


def pending_refund(payment: Payment, refund_id: str | None, *, amount_minor: int = 1000, key: str) -> Refund:
    """A refund Kassa sent to Stripe (its amount reserved on the payment), waiting for Stripe to settle it;
    ``refund_id`` None: the answer was lost (H5), only the key in Stripe's metadata can find it."""
    with write_transaction(db.session) as session:
        refund = Refund(account_id=payment.account_id, payment_id=payment.id, amount_minor=amount_minor,
                        currency=payment.currency, reason="requested_by_customer", status=RefundStatus.PENDING.value,
                        idempotency_key=key, processor_ref=refund_id)
        session.add(refund)
        session.get(Payment, payment.id).refund_reserved_minor += amount_minor
        session.flush()
        return refund


def side_effects(payment_id: int) -> dict[str, int]:
    """What a payment's events left behind, counted: emails by kind, ledger rows, timeline entries by kind."""
    counts: dict[str, int] = {}
    for kind, n in db.session.execute(select(EmailMessage.kind, func.count()).where(
            EmailMessage.related_type == "payment", EmailMessage.related_id == payment_id)
            .group_by(EmailMessage.kind)):
        counts[f"email:{kind}"] = n
    counts["ledger"] = db.session.scalar(select(func.count()).select_from(LedgerEntry)
                                         .where(LedgerEntry.payment_id == payment_id))
    for kind, n in db.session.execute(select(TimelineEntry.kind, func.count()).where(
            TimelineEntry.payment_id == payment_id).group_by(TimelineEntry.kind)):
        counts[f"timeline:{kind}"] = n
    return counts
