"""Stripe webhooks and the events poll (K7), with the refund (K9) and dispute (K10) outcomes they carry.

A delivery to /webhooks/stripe/<account> is checked against the signing secret of each of the account's active
connections (live and test may both be connected, K12), stored in the connection's inbox (unique event id per
account: a redelivery or ten parallel ones store one row) and answered 2xx; an outbox message queues the work,
so the answer never waits for Stripe or for the state machines. The worker then applies the connection's pending
events: `StripeProcessor.due_events` re-fetches each object and says what it is now, and `apply_event` applies
each outcome once. Events only move Kassa forward: an outcome Kassa already has, or can't reach from where an
object stands (a payment failed before a late success), is acknowledged and changes nothing.

Webhooks can be missed (Kassa down, an endpoint the merchant forgot): the tick polls each connection's recent
events (GET /v1/events since a cursor, every KASSA_STRIPE_POLL_SECONDS) into the same inbox.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import or_, select

from kassa import secrets_box
from kassa.clock import now
from kassa.database import write_transaction
from kassa.errors import EventNotReady, KassaError, NotFound
from kassa.extensions import db
from kassa.metrics import WEBHOOK_FAILURES
from kassa.models import Account, Payment, PaymentStatus, Refund, RefundStatus, StripeConnection
from kassa.processors.base import ProcessorError, ProcessorEvent
from kassa.processors.registry import stripe_inbox, stripe_processor
from kassa.processors.stripe import InvalidWebhook, StripeProcessor, handled, verify_webhook
from kassa.services.events import apply_event
from kassa.services.platform import outbox
from kassa.services.platform.ticks import each_item, for_tick_account

log = logging.getLogger(__name__)

JOB = "stripe_events"


class WebhookRefused(KassaError):
    """A delivery Kassa can't trust (no connection with a signing secret, a bad or stale signature): 400, and
    nothing is stored."""

    status_code = 400


class EventsWaiting(Exception):
    """Some events name Kassa objects not recorded yet (a refund whose answer is in flight): the job is retried."""


def receive(account_id: int, payload: bytes, signature: str) -> bool:
    """Verify and store one delivery, and queue its application. True when the event was new to Kassa.
    NotFound for an unknown account; WebhookRefused when no connection's secret verifies it."""
    secrets = db.session.execute(select(StripeConnection.id, StripeConnection.webhook_secret_encrypted).where(
        StripeConnection.account_id == account_id, StripeConnection.disconnected_at.is_(None),
        StripeConnection.webhook_secret_encrypted.is_not(None)).order_by(StripeConnection.id)).all()
    known = bool(secrets) or db.session.scalar(select(Account.id).where(Account.id == account_id)) is not None
    db.session.rollback()  # no transaction is held while the signature is checked
    if not known:
        raise NotFound(_("No such account."))
    if not secrets:
        WEBHOOK_FAILURES.labels(processor="stripe", direction="incoming", reason="no_secret").inc()  # G4
        raise WebhookRefused(_("This account has no Stripe webhook signing secret."))
    for connection_id, secret in secrets:
        try:
            event = verify_webhook(payload, signature, secrets_box.decrypt(secret))
        except InvalidWebhook:
            continue
        # Stored on the processor's own connection (committed before the 2xx), then the work is queued.
        new = stripe_inbox(account_id, connection_id).add(handled([event]), "webhook", now())
        if new:
            with write_transaction(db.session):
                outbox.enqueue(JOB, {"connection_id": connection_id}, account_id=account_id)
        return bool(new)
    WEBHOOK_FAILURES.labels(processor="stripe", direction="incoming", reason="signature").inc()  # G4
    raise WebhookRefused(_("The Stripe signature is missing, wrong or more than 5 minutes old."))


def run_job(payload: dict) -> None:
    """The outbox handler: apply the connection's pending events; retried (back-off) while some must wait."""
    try:
        waiting = apply_pending(int(payload["connection_id"])) < 0
    except Exception:
        # G4: the delivery was stored but its events could not be applied (the outbox retries it).
        WEBHOOK_FAILURES.labels(processor="stripe", direction="incoming", reason="processing").inc()
        raise
    if waiting:
        raise EventsWaiting("some Stripe events wait for Kassa objects not recorded yet")


def apply_pending(connection_id: int) -> int:
    """Apply every pending event of a connection: how many changed something, or -1 when some must wait."""
    connection = db.session.get(StripeConnection, connection_id)
    if connection is None or connection.disconnected_at is not None:
        db.session.rollback()
        return 0
    processor = stripe_processor(connection)
    account_id = connection.account_id
    events = processor.due_events(account_id, now())
    db.session.rollback()
    applied, waiting = 0, False
    for event in events:
        try:
            if _forward(event):
                applied += int(apply_event(processor.name, event))
        except EventNotReady:
            log.info("Stripe event %s waits for its Kassa object", event.id)
            waiting = True
            continue
        processor.acknowledge_event(event.id)
    return -1 if waiting else applied


def _forward(event: ProcessorEvent) -> bool:
    """Whether the outcome still moves Kassa forward. EventNotReady when the Kassa object isn't recorded yet."""
    if event.type.startswith("charge."):
        payment = db.session.scalar(select(Payment).where(Payment.account_id == event.account_id,
                                                          Payment.processor_ref == event.object_ref))
        if payment is None:
            if event.type == "charge.failed":
                return False  # a declined checkout attempt: Kassa never recorded a payment for it
            raise EventNotReady(event.id)  # a success the checkout is still recording (or reconciling, H5)
        return payment.status == PaymentStatus.PROCESSING.value
    if event.type.startswith("refund."):
        return _pending_refund(event)
    return True  # disputes: opening is idempotent and a closed dispute never reopens (disputes.py)


def _pending_refund(event: ProcessorEvent) -> bool:
    """Whether the refund is still pending in Kassa. A refund whose answer was lost (H5) has no processor
    reference yet: it is found by its idempotency key, which Kassa put in the refund's metadata."""
    with write_transaction(db.session) as session:
        refund = session.scalar(select(Refund).where(
            Refund.account_id == event.account_id,
            or_(Refund.processor_ref == event.object_ref, Refund.idempotency_key == event.data.get("kassa_key"))))
        if refund is None:
            raise EventNotReady(event.id)
        if refund.processor_ref is None:
            refund.processor_ref = event.object_ref
        return refund.status == RefundStatus.PENDING.value


def poll() -> int:
    """Tick task: catch up on missed webhooks, for each connection not polled for KASSA_STRIPE_POLL_SECONDS,
    then apply what is pending. Returns the events applied."""
    due = now() - timedelta(seconds=current_app.config.get("KASSA_STRIPE_POLL_SECONDS", 300))
    connection_ids = db.session.scalars(select(StripeConnection.id).where(
        StripeConnection.disconnected_at.is_(None), for_tick_account(StripeConnection.account_id),
        or_(StripeConnection.events_polled_at.is_(None), StripeConnection.events_polled_at <= due))).all()
    db.session.rollback()
    return each_item("stripe_events", connection_ids, poll_connection, describe=lambda cid: f"connection {cid}")


def poll_connection(connection_id: int) -> int:
    connection = db.session.get(StripeConnection, connection_id)
    processor: StripeProcessor = stripe_processor(connection)
    since = connection.events_seen_until or connection.connected_at
    db.session.rollback()
    try:
        seen_until = processor.poll_events(since, now())
    except ProcessorError as exc:
        log.warning("Stripe events poll of connection %s failed: %s", connection_id, exc)
        return 0
    with write_transaction(db.session) as session:
        row = session.get(StripeConnection, connection_id)
        row.events_seen_until, row.events_polled_at = seen_until, now()
    return max(apply_pending(connection_id), 0)
