"""I6: every attempt of a webhook delivery is kept (time, the request's headers, the HTTP status or the network
error, an excerpt of the answer, the duration) and shown in the endpoint's delivery log; Resend adds one. The
worker sends the deliveries it claimed together — a bounded pool of concurrent POSTs, the URL checked before
each — and each delivery once, also when two workers run at once."""

from __future__ import annotations

import json
from datetime import timedelta

import time_machine
from sqlalchemy import func, select

from kassa.extensions import db
from kassa.models import OutboxMessage, WebhookAttempt, WebhookDelivery
from tests.support.app import run_outbox
from tests.support.concurrency import at_once
from tests.support.payments import soup_of, text_of
from tests.support.webhook_fixtures import *  # noqa: F403 (app_config, receiver, owner: pytest finds them here)
from tests.support.webhook_receiver import Receiver
from tests.support.webhook_verify import verify
from tests.web.test_i6_webhooks import deliveries, new_endpoint, pay, tick


def attempts_of(delivery_id: int) -> list[WebhookAttempt]:
    db.session.rollback()
    return list(db.session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
                                   .order_by(WebhookAttempt.number)))


def log_row(client, delivery: WebhookDelivery):
    page = soup_of(client.get(f"/settings/webhooks/{delivery.endpoint_id}"))
    return page.select_one(f'[data-delivery="{delivery.id}"]')


def test_i6_every_attempt_is_kept_and_the_log_shows_each_request_and_answer(client, app, owner, receiver):
    """500 then 200: two attempts, each with its signed request headers, status, answer and duration."""
    receiver.statuses = [500, 200]
    _endpoint, secret = new_endpoint(client, receiver.url)
    pay(app, owner)
    tick()
    run_outbox()
    (delivery,) = deliveries()
    with time_machine.travel(delivery.next_attempt_at, tick=False):
        run_outbox()
    (delivery,) = deliveries()
    first, second = attempts_of(delivery.id)
    assert (first.number, first.response_status, first.response_body, first.error) == (
        1, 500, "Internal error in the shop", None)
    assert (second.number, second.response_status, second.response_body) == (2, 200, '{"received": true}')
    assert second.attempted_at - first.attempted_at == timedelta(minutes=1)  # the back-off, as attempted
    assert not first.resend and first.duration_ms >= 0 and second.duration_ms >= 0
    for attempt, request in zip((first, second), receiver.requests, strict=True):
        assert attempt.request_headers["Kassa-Signature"] == request.headers["Kassa-Signature"]
        assert verify(secret, attempt.request_headers["Kassa-Signature"], request.body)
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)

    row = log_row(client, delivery)
    shown = [item["data-attempt"] for item in row.select("[data-attempt]")]
    assert shown == ["2", "1"]  # newest first
    older = text_of(row.select_one('[data-attempt="1"]'))
    assert "HTTP 500" in older and "Internal error in the shop" in older and "Kassa-Signature: t=" in older
    assert "HTTP 200" in text_of(row.select_one('[data-attempt="2"]'))
    assert json.loads(row.select_one("pre").get_text()) == json.loads(delivery.body)  # the request body

    # Resend adds an attempt, marked as such; the earlier ones stay.
    assert client.post(f"/settings/webhooks/deliveries/{delivery.id}/resend").status_code == 303
    assert len(attempts_of(delivery.id)) == 2  # queued, not sent by the web request
    run_outbox()
    *_earlier, third = attempts_of(delivery.id)
    assert (third.number, third.resend, third.response_status) == (3, True, 200)
    assert "resent" in text_of(log_row(client, delivery).select_one('[data-attempt="3"]'))


def test_i6_a_network_error_is_an_attempt_without_an_answer(client, app, owner):
    """Nobody listening: the attempt keeps the error and how long it took; the log says there was no answer."""
    gone = Receiver().start()
    url = gone.url
    gone.stop()
    new_endpoint(client, url)
    pay(app, owner)
    tick()
    run_outbox()
    (delivery,) = deliveries()
    (attempt,) = attempts_of(delivery.id)
    assert attempt.response_status is None and attempt.response_body is None
    assert "Connection" in attempt.error and attempt.duration_ms >= 0
    assert delivery.status == "pending" and delivery.error == attempt.error
    row = text_of(log_row(client, delivery).select_one('[data-attempt="1"]'))
    assert "No answer" in row and attempt.error in row


def test_i6_the_address_is_checked_before_every_post_of_a_batch(client, app, owner, receiver):
    """SSRF: the loopback is allowed when the endpoint is saved, not any more when the batch is sent: nothing
    reaches it, and each attempt says why."""
    new_endpoint(client, receiver.url)
    pay(app, owner)
    pay(app, owner, price="30.00")
    tick()
    app.config["KASSA_WEBHOOK_ALLOW_LOOPBACK"] = False
    run_outbox()
    assert receiver.requests == []
    for delivery in deliveries():
        (attempt,) = attempts_of(delivery.id)
        assert attempt.response_status is None and "public internet addresses" in attempt.error


def test_i6_a_batch_is_posted_concurrently_at_most_the_configured_number_at_once(client, app, owner, receiver):
    """KASSA_WEBHOOK_CONCURRENCY=3 and six deliveries: the receiver sees three POSTs in flight together (it
    answers a group of three at once), never more; each delivery is posted once, all recorded."""
    app.config["KASSA_WEBHOOK_CONCURRENCY"] = 3
    receiver.hold = 3
    new_endpoint(client, receiver.url)
    for cents in range(6):
        pay(app, owner, price=f"20.0{cents}")
    tick()
    run_outbox()
    assert receiver.max_in_flight == 3
    assert len(receiver.requests) == 6 and len({r.body for r in receiver.requests}) == 6
    assert {(d.status, d.attempts) for d in deliveries()} == {("succeeded", 1)}
    assert db.session.scalar(select(func.count()).select_from(WebhookAttempt)) == 6
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.kind == "webhook_delivery", OutboxMessage.status != "done")) == 0


def test_i6_two_workers_at_once_post_each_delivery_once(client, app, owner, receiver):
    """Two worker loops claim at the same moment: every delivery is POSTed exactly once; a Resend afterwards
    (legitimate reuse of the same delivery) still sends it again."""
    from kassa.services.platform.outbox import run_pending

    new_endpoint(client, receiver.url)
    for cents in range(5):
        pay(app, owner, price=f"40.0{cents}")
    tick()
    at_once(app, lambda: run_pending(100))
    run_outbox()
    assert len(receiver.requests) == 5 and len({r.body for r in receiver.requests}) == 5
    assert {(d.status, d.attempts) for d in deliveries()} == {("succeeded", 1)}
    assert db.session.scalar(select(func.count()).select_from(WebhookAttempt)) == 5
    delivery = deliveries()[0]
    assert client.post(f"/settings/webhooks/deliveries/{delivery.id}/resend").status_code == 303
    at_once(app, lambda: run_pending(100))
    assert len(receiver.requests) == 6
    assert [a.number for a in attempts_of(delivery.id)] == [1, 2]
