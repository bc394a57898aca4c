"""K7 Webhooks: /webhooks/stripe/<account> checks Stripe's signature (300 s tolerance), stores each event once
(unique event id per account), answers 2xx at once and queues the work on the outbox; the worker re-fetches the
object and moves Kassa's state machine only forward, in any order and any number of deliveries; the tick's
poll of /v1/events catches a missed webhook. Stripe is a recording FixtureTransport here (no internet)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import time_machine
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from kassa.clock import now
from kassa.extensions import db
from kassa.models import OutboxMessage, Payment, ProcessedEvent, StripeConnection, StripeEvent
from kassa.services.platform.ticks import run_tick
from tests.factories import make_merchant
from tests.support.app import run_outbox
from tests.support.stripe_doubles import FixtureTransport
from tests.support.stripe_events import (
    StripeWorld,
    fixture_app_config,
    make_connection,
    processing_payment,
    side_effects,
    signed,
)

SECRET = "whsec_k7TestSigningSecret0001"
OTHER_SECRET = "whsec_k7OtherAccountSecret02"
KEY = Fernet.generate_key().decode()


@pytest.fixture
def transport():
    return FixtureTransport({})


@pytest.fixture
def app_config(transport):
    return fixture_app_config(transport, KEY)


@pytest.fixture
def shop(app, transport):
    owner = make_merchant(company="Acme")
    connection = make_connection(owner.account_id, SECRET)
    return owner.account_id, connection.id, StripeWorld(transport, owner.account_id)


def deliver(client, account_id: int, event: dict, secret: str = SECRET, *, timestamp: int | None = None):
    payload, header = signed(event, secret, timestamp=timestamp)
    return client.post(f"/webhooks/stripe/{account_id}", data=payload,
                       headers={"Stripe-Signature": header, "Content-Type": "application/json"})


def count(model, *where) -> int:
    db.session.rollback()  # read what other connections (requests, threads, the processor's inbox) committed
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def status_of(payment_id: int) -> str:
    db.session.rollback()
    return db.session.get(Payment, payment_id).status


def test_k7_a_signed_delivery_is_stored_answered_at_once_and_applied_by_the_worker(client, shop, transport):
    account_id, _connection_id, world = shop
    payment = processing_payment(account_id, "pi_k7_sepa")
    world.intent("pi_k7_sepa", "succeeded")

    response = deliver(client, account_id, world.event("payment_intent.succeeded", "pi_k7_sepa"))

    assert response.status_code == 200 and response.json == {"received": True, "duplicate": False}
    # 2xx fast: nothing was applied in the request, and Stripe was not called; the work is queued.
    assert status_of(payment.id) == "processing" and transport.sent == []
    assert count(StripeEvent) == 1 and count(OutboxMessage, OutboxMessage.kind == "stripe_events") == 1
    run_outbox()
    assert status_of(payment.id) == "succeeded"
    # The worker fetched the PaymentIntent again rather than trusting the delivered snapshot.
    assert [(s.method, s.path) for s in transport.sent] == [("GET", "/v1/payment_intents/pi_k7_sepa")]
    assert side_effects(payment.id)["email:receipt"] == 1


@pytest.mark.parametrize("case", ["bad_signature", "stale", "other_accounts_secret", "no_signature"])
def test_k7_an_unverifiable_delivery_is_refused_with_400_and_changes_nothing(client, shop, case):
    account_id, _connection_id, world = shop
    other = make_merchant(company="Other")
    make_connection(other.account_id, OTHER_SECRET)
    payment = processing_payment(account_id, "pi_k7_forged")
    world.intent("pi_k7_forged", "succeeded")
    event = world.event("payment_intent.succeeded", "pi_k7_forged")
    if case == "bad_signature":
        payload, header = signed(event, SECRET)
        header = header[:-4] + ("0000" if not header.endswith("0000") else "1111")
        response = client.post(f"/webhooks/stripe/{account_id}", data=payload, headers={"Stripe-Signature": header})
    elif case == "stale":  # signed 301 s ago: past Stripe's 300 s tolerance (a replayed capture)
        response = deliver(client, account_id, event, timestamp=int(time.time()) - 301)
    elif case == "other_accounts_secret":  # another merchant's secret can't speak for this account
        response = deliver(client, account_id, event, OTHER_SECRET)
    else:
        response = client.post(f"/webhooks/stripe/{account_id}", data=b"{}")
    assert response.status_code == 400
    assert "signature" in response.json["error"]
    run_outbox()
    assert count(StripeEvent) == 0 and count(OutboxMessage) == 0 and count(ProcessedEvent) == 0
    assert status_of(payment.id) == "processing"


def test_k7_a_delivery_signed_299_seconds_ago_is_accepted(client, shop):
    account_id, _connection_id, world = shop
    processing_payment(account_id, "pi_k7_late")
    world.intent("pi_k7_late", "processing")
    # The clock stands still: on a loaded machine a real second can pass between signing and checking.
    with time_machine.travel(time.time(), tick=False):
        response = deliver(client, account_id, world.event("payment_intent.processing", "pi_k7_late"),
                           timestamp=int(time.time()) - 299)
    assert response.status_code == 200


def test_k7_unknown_account_is_404_and_an_account_without_a_webhook_secret_is_400(client, shop):
    account_id, _connection_id, world = shop
    world.intent("pi_k7_x", "succeeded")
    event = world.event("payment_intent.succeeded", "pi_k7_x")
    assert deliver(client, account_id + 1000, event).status_code == 404
    bare = make_merchant(company="No webhook")
    make_connection(bare.account_id, None)  # connected, but no endpoint secret yet
    assert deliver(client, bare.account_id, event).status_code == 400
    no_stripe = make_merchant(company="No Stripe")
    assert deliver(client, no_stripe.account_id, event).status_code == 400
    assert count(StripeEvent) == 0


def test_k7_the_webhook_needs_no_csrf_token_even_with_csrf_on(app, shop):
    app.config["WTF_CSRF_ENABLED"] = True
    account_id, _connection_id, world = shop
    world.intent("pi_k7_csrf", "processing")
    response = deliver(app.test_client(), account_id, world.event("payment_intent.processing", "pi_k7_csrf"))
    assert response.status_code == 200


def test_k7_duplicate_delivery_stores_one_event_and_has_one_effect(client, shop):
    account_id, _connection_id, world = shop
    payment = processing_payment(account_id, "pi_k7_dup")
    world.intent("pi_k7_dup", "succeeded")
    event = world.event("payment_intent.succeeded", "pi_k7_dup")
    answers = [deliver(client, account_id, event).json for _ in range(3)]
    run_outbox()
    answers.append(deliver(client, account_id, event).json)  # a redelivery after it was applied
    run_outbox()
    assert [a["duplicate"] for a in answers] == [False, True, True, True]
    assert count(StripeEvent) == 1 and count(OutboxMessage, OutboxMessage.kind == "stripe_events") == 1
    assert status_of(payment.id) == "succeeded"
    effects = side_effects(payment.id)
    assert effects["email:receipt"] == 1 and effects["timeline:payment.succeeded"] == 1


def test_k7_success_delivered_before_processing_ends_succeeded_and_processing_changes_nothing(client, shop):
    account_id, _connection_id, world = shop
    payment = processing_payment(account_id, "pi_k7_order")
    world.intent("pi_k7_order", "succeeded")
    succeeded = world.event("payment_intent.succeeded", "pi_k7_order")
    world.objects["pi_k7_order"]["status"] = "processing"
    processing = world.event("payment_intent.processing", "pi_k7_order", created=succeeded["created"] - 5)
    world.intent("pi_k7_order", "succeeded")
    deliver(client, account_id, succeeded)
    run_outbox()
    before = side_effects(payment.id)
    deliver(client, account_id, processing)  # arrives last, says "processing": Kassa stays succeeded
    run_outbox()
    assert status_of(payment.id) == "succeeded"
    assert side_effects(payment.id) == before


def test_k7_a_bank_debit_that_bounces_fails_with_the_banks_reason(client, shop):
    account_id, _connection_id, world = shop
    payment = processing_payment(account_id, "pi_k7_bounce")
    world.intent("pi_k7_bounce", "requires_payment_method", error={
        "code": "payment_intent_payment_attempt_failed", "decline_code": "insufficient_funds",
        "message": "The account has insufficient funds to cover this payment."})
    deliver(client, account_id, world.event("payment_intent.payment_failed", "pi_k7_bounce"))
    run_outbox()
    row = db.session.get(Payment, payment.id)
    assert (row.status, row.failure_code) == ("failed", "insufficient_funds")
    assert row.failure_message == "The account has insufficient funds to cover this payment."
    # A late "succeeded" about the same PaymentIntent can't move a failed payment back: nothing changes.
    before = side_effects(payment.id)
    world.intent("pi_k7_bounce", "succeeded")
    deliver(client, account_id, world.event("payment_intent.succeeded", "pi_k7_bounce"))
    run_outbox()
    assert status_of(payment.id) == "failed" and side_effects(payment.id) == before
    assert count(OutboxMessage, OutboxMessage.status == "failed") == 0


def test_k7_events_about_objects_that_are_not_kassas_are_stored_and_ignored(client, shop):
    account_id, _connection_id, world = shop
    world.intent("pi_k7_foreign", "succeeded", ours=False)  # the merchant's other integration's payment
    assert deliver(client, account_id, world.event("payment_intent.succeeded", "pi_k7_foreign")).status_code == 200
    run_outbox()
    assert count(ProcessedEvent) == 0
    assert db.session.scalar(select(StripeEvent.done_at)) is not None
    assert count(OutboxMessage, OutboxMessage.status == "done") == 1


def test_k7_a_success_before_kassa_recorded_the_payment_waits_and_applies_later(client, shop):
    account_id, _connection_id, world = shop
    world.intent("pi_k7_early", "succeeded")
    deliver(client, account_id, world.event("payment_intent.succeeded", "pi_k7_early"))
    run_outbox()
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "stripe_events"))
    assert message.status == "pending" and "wait" in message.last_error  # retried with back-off
    payment = processing_payment(account_id, "pi_k7_early")  # the checkout records it (K6 / H5 reconcile)
    with time_machine.travel(now() + timedelta(minutes=1), tick=False):
        run_outbox()
    assert status_of(payment.id) == "succeeded"


def test_k7_ten_parallel_deliveries_of_one_event_store_it_once_and_apply_it_once(app, shop):
    account_id, _connection_id, world = shop
    payment = processing_payment(account_id, "pi_k7_parallel")
    world.intent("pi_k7_parallel", "succeeded")
    payload, header = signed(world.event("payment_intent.succeeded", "pi_k7_parallel"), SECRET)
    barrier = threading.Barrier(10)
    answers: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def post():
        try:
            client = app.test_client()
            with app.app_context():
                barrier.wait()
                response = client.post(f"/webhooks/stripe/{account_id}", data=payload,
                                       headers={"Stripe-Signature": header})
                answers.append((response.status_code, response.json["duplicate"]))
                db.session.remove()
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(answers) == [(200, False)] + [(200, True)] * 9
    assert count(StripeEvent) == 1 and count(OutboxMessage, OutboxMessage.kind == "stripe_events") == 1
    # Ten workers applying at once: still one success.
    apply_threads = [threading.Thread(target=_apply_in_thread, args=(app, _connection_id, errors))
                     for _ in range(10)]
    for thread in apply_threads:
        thread.start()
    for thread in apply_threads:
        thread.join(timeout=120)
    assert not errors, errors
    run_outbox()
    assert status_of(payment.id) == "succeeded"
    effects = side_effects(payment.id)
    assert effects["email:receipt"] == 1 and effects["timeline:payment.succeeded"] == 1
    # A legitimate different event after them still applies.
    refund_payment = processing_payment(account_id, "pi_k7_parallel2")
    world.intent("pi_k7_parallel2", "succeeded")
    assert deliver(app.test_client(), account_id,
                   world.event("payment_intent.succeeded", "pi_k7_parallel2")).json["duplicate"] is False
    run_outbox()
    assert status_of(refund_payment.id) == "succeeded"


def _apply_in_thread(app, connection_id: int, errors: list) -> None:
    from kassa.services.webhooks.stripe_webhooks import apply_pending

    try:
        with app.app_context():
            apply_pending(connection_id)
            db.session.remove()
    except BaseException as exc:
        errors.append(exc)


def test_k7_the_poll_catches_a_missed_webhook_and_keeps_a_cursor(app, shop, transport):
    account_id, connection_id, world = shop
    payment = processing_payment(account_id, "pi_k7_missed")
    world.intent("pi_k7_missed", "succeeded")
    missed = world.event("payment_intent.succeeded", "pi_k7_missed")
    transport.answers[("GET", "/v1/events")] = [(200, {"object": "list", "data": [missed], "has_more": False,
                                                       "url": "/v1/events"})]
    report = run_tick()
    assert not report.failed and report.done["stripe_events"] == 1
    assert status_of(payment.id) == "succeeded"
    (listing,) = [s for s in transport.sent if s.path == "/v1/events"]
    params = dict(listing.params)
    assert params["created[gte]"] and params["limit"] == "100"
    assert {value for name, value in listing.params if name.startswith("types[")} >= {
        "payment_intent.succeeded", "charge.refund.updated", "charge.dispute.closed"}
    connection = db.session.get(StripeConnection, connection_id)
    cursor = connection.events_seen_until
    assert cursor.timestamp() >= missed["created"] and cursor == max(cursor, connection.connected_at)
    # Cheap: the next tick within KASSA_STRIPE_POLL_SECONDS asks Stripe for no events (the payouts sync, K11,
    # lists payouts on every tick; it is not the poll).
    transport.sent.clear()
    run_tick()
    assert [s.path for s in transport.sent if s.path != "/v1/payouts"] == []
    # After the interval it asks again from just before the cursor; the same event again changes nothing.
    with time_machine.travel(now() + timedelta(seconds=app.config["KASSA_STRIPE_POLL_SECONDS"] + 1), tick=False):
        run_tick()
    (listing,) = [s for s in transport.sent if s.path == "/v1/events"]
    assert int(dict(listing.params)["created[gte]"]) == int(cursor.timestamp()) - 300
    assert count(StripeEvent) == 1 and side_effects(payment.id)["email:receipt"] == 1


def test_k7_a_webhook_and_the_poll_bringing_the_same_event_store_it_once(client, shop, transport):
    account_id, _connection_id, world = shop
    payment = processing_payment(account_id, "pi_k7_both")
    world.intent("pi_k7_both", "succeeded")
    event = world.event("payment_intent.succeeded", "pi_k7_both")
    deliver(client, account_id, event)
    transport.answers[("GET", "/v1/events")] = [(200, {"object": "list", "data": [event], "has_more": False,
                                                       "url": "/v1/events"})]
    run_tick()
    run_outbox()
    assert count(StripeEvent) == 1
    assert status_of(payment.id) == "succeeded" and side_effects(payment.id)["email:receipt"] == 1
