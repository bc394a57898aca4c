"""I6: outgoing webhooks — endpoints in Settings → Webhooks, deliveries made from the account event feed by the
tick and sent by the worker through the outbox, signed, retried with back-off for 3 days, logged, resent, and
endpoints turned off (with an email) when they keep failing. A local HTTP receiver plays the merchant's shop."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from kassa.clock import now
from kassa.extensions import db
from kassa.models import EmailMessage, WebhookDelivery, WebhookEndpoint
from tests.factories import make_merchant
from tests.support.app import run_outbox
from tests.support.checkout import pay_with_card
from tests.support.checkout_flow import item, make_link
from tests.support.concurrency import at_once
from tests.support.payments import login, soup_of, text_of
from tests.support.webhook_fixtures import *  # noqa: F403 (app_config, receiver, owner: pytest finds them here)
from tests.support.webhook_verify import verify  # the snippet of docs/api.md, as a merchant pastes it


def add_endpoint(client, url: str, events=("payment.succeeded",), mode: str = "test", description: str = ""):
    response = client.post("/settings/webhooks", data={"url": url, "mode": mode, "description": description,
                                                       "event_types": list(events)})
    return response


def new_endpoint(client, url: str, **kwargs) -> tuple[WebhookEndpoint, str]:
    response = add_endpoint(client, url, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)[:600]
    assert response.headers["Cache-Control"] == "no-store"
    secret = text_of(soup_of(response).select_one("[data-webhook-secret]"))
    db.session.rollback()
    endpoint = db.session.scalar(select(WebhookEndpoint).order_by(WebhookEndpoint.id.desc()))
    return endpoint, secret


def pay(app, owner, price: str = "25.00", mode: str = "test") -> None:
    link = make_link(owner, items=[item("Lesson", price)])
    response = pay_with_card(app.test_client(), link.slug, mode=mode)
    assert response.status_code == 303, response.get_data(as_text=True)[:600]


def tick() -> None:
    from kassa.services.platform.ticks import run_tick

    report = run_tick()
    assert not report.failed, report.failed
    db.session.rollback()


def deliveries() -> list[WebhookDelivery]:
    db.session.rollback()
    return list(db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_i6_a_payment_is_posted_signed_as_a_stripe_shaped_event(client, app, owner, receiver):
    """The tick makes the delivery, the worker POSTs it: the documented snippet verifies `Kassa-Signature`,
    the body is {id, object: "event", type, created, data.object}; no delivery inside the web request."""
    endpoint, secret = new_endpoint(client, receiver.url, description="Shop")
    assert secret.startswith("whsec_") and endpoint.description == "Shop" and endpoint.mode == "test"
    pay(app, owner)
    assert deliveries() == [] and receiver.requests == []  # nothing sent by the checkout's request
    tick()
    run_outbox()
    (request,) = receiver.requests
    assert verify(secret, request.headers["Kassa-Signature"], request.body)
    assert not verify(secret + "x", request.headers["Kassa-Signature"], request.body)
    assert not verify(secret, request.headers["Kassa-Signature"], request.body.replace("25", "26", 1))
    event = json.loads(request.body)
    assert event["object"] == "event" and event["type"] == "payment.succeeded" and event["livemode"] is False
    assert event["id"].startswith("evt_") and isinstance(event["created"], int)
    assert event["data"]["object"]["id"].startswith("pi_") and event["data"]["object"]["amount"] == 2500
    (delivery,) = deliveries()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("succeeded", 1, 200)
    assert delivery.body == request.body and delivery.duration_ms is not None
    tick()
    run_outbox()
    assert len(receiver.requests) == 1  # one delivery per (endpoint, event)


def test_i6_failures_are_retried_with_exponential_back_off_then_delivered(client, app, owner, receiver):
    """500, 500, 500, then 200: the retries wait 1, 2 and 4 minutes; the log keeps the last answer."""
    receiver.statuses = [500, 500, 500, 200]
    new_endpoint(client, receiver.url)
    pay(app, owner)
    tick()
    run_outbox()
    gaps = []
    for _attempt in range(3):
        (delivery,) = deliveries()
        assert delivery.status == "pending" and delivery.response_status == 500
        assert delivery.response_body == "Internal error in the shop"
        gaps.append(delivery.next_attempt_at - delivery.last_attempt_at)
        with time_machine.travel(delivery.next_attempt_at - timedelta(seconds=1), tick=False):
            assert run_outbox() == 0  # not due yet
        with time_machine.travel(delivery.next_attempt_at, tick=False):
            run_outbox()
    assert gaps == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    (delivery,) = deliveries()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("succeeded", 4, 200)
    assert len(receiver.requests) == 4
    assert len({r.body for r in receiver.requests}) == 1  # the same event each time
    endpoint = db.session.scalar(select(WebhookEndpoint))
    assert endpoint.enabled and endpoint.consecutive_failures == 0


def test_i6_an_endpoint_failing_for_three_days_is_turned_off_and_the_admins_emailed(client, app, owner, receiver):
    """Every attempt 500 for 3 days: the delivery gives up, the endpoint is turned off, its admins emailed."""
    receiver.statuses = [500]
    new_endpoint(client, receiver.url)
    pay(app, owner)
    started = now()
    tick()
    run_outbox()
    for _ in range(40):
        (delivery,) = deliveries()
        if delivery.status != "pending":
            break
        with time_machine.travel(delivery.next_attempt_at, tick=False):
            run_outbox()
    (delivery,) = deliveries()
    assert delivery.status == "failed" and delivery.last_attempt_at - started <= timedelta(days=3)
    assert delivery.last_attempt_at - started >= timedelta(days=2)
    assert all(b - a <= 12 * 3600 + 1 for a, b in zip(
        [r.at for r in receiver.requests], [r.at for r in receiver.requests[1:]], strict=False))
    endpoint = db.session.scalar(select(WebhookEndpoint))
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "failing")
    emails = db.session.scalars(select(EmailMessage).where(EmailMessage.kind == "webhook_disabled")).all()
    assert [e.to_addrs for e in emails] == [[owner.email]]
    assert receiver.url in emails[0].subject
    page = soup_of(client.get(f"/settings/webhooks/{endpoint.id}"))
    assert "turned off by Kassa" in text_of(page.select_one("[data-endpoint-status]"))


def test_i6_too_many_failures_in_a_row_turn_the_endpoint_off_and_pending_ones_are_cancelled(
        client, app, owner, receiver):
    """KASSA_WEBHOOK_DISABLE_AFTER failures in a row turn it off; its other pending deliveries are not sent."""
    app.config["KASSA_WEBHOOK_DISABLE_AFTER"] = 3
    receiver.statuses = [500]
    new_endpoint(client, receiver.url)
    pay(app, owner)
    pay(app, owner, price="30.00")
    tick()
    run_outbox()  # two failures
    first = deliveries()[0]
    with time_machine.travel(first.next_attempt_at, tick=False):
        run_outbox()  # the third: off
    endpoint = db.session.scalar(select(WebhookEndpoint))
    assert (endpoint.enabled, endpoint.disabled_reason, endpoint.consecutive_failures) == (False, "failing", 3)
    sent = len(receiver.requests)
    with time_machine.travel(now() + timedelta(hours=1), tick=False):
        run_outbox()
    assert len(receiver.requests) == sent == 3
    assert {d.status for d in deliveries()} <= {"cancelled", "pending", "failed"}
    assert db.session.scalar(select(func.count()).select_from(EmailMessage).where(
        EmailMessage.kind == "webhook_disabled")) == 1
    # Turning it on again: events from now on only, the count starts again.
    assert client.post(f"/settings/webhooks/{endpoint.id}/enabled", data={"enabled": "1"}).status_code == 303
    db.session.rollback()
    endpoint = db.session.get(WebhookEndpoint, endpoint.id)
    assert endpoint.enabled and endpoint.consecutive_failures == 0 and endpoint.disabled_reason is None


def test_i6_resend_posts_the_same_event_again_and_the_log_counts_it(client, app, owner, receiver):
    new_endpoint(client, receiver.url)
    pay(app, owner)
    tick()
    run_outbox()
    (delivery,) = deliveries()
    page = soup_of(client.get(f"/settings/webhooks/{delivery.endpoint_id}"))
    row = page.select_one(f'[data-delivery="{delivery.id}"]')
    assert "payment.succeeded" in text_of(row) and "Delivered" in text_of(row)
    assert json.loads(row.select_one("pre").get_text()) == json.loads(delivery.body)
    assert client.post(f"/settings/webhooks/deliveries/{delivery.id}/resend").status_code == 303
    assert len(receiver.requests) == 1  # queued, not sent by the web request
    run_outbox()
    assert len(receiver.requests) == 2 and receiver.requests[0].body == receiver.requests[1].body
    (delivery,) = deliveries()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)


def test_i6_only_the_chosen_event_types_and_mode_are_sent(client, app, owner, receiver):
    """An endpoint for subscription events gets no payment; a live endpoint gets no test payment; events from
    before an endpoint was added are not sent to it."""
    pay(app, owner)  # before any endpoint
    new_endpoint(client, receiver.url, events=("subscription.started", "subscription.cancelled"))
    new_endpoint(client, receiver.url + "?live=1", events=("payment.succeeded",), mode="live")
    both, _secret = new_endpoint(client, receiver.url + "?both=1", events=("payment.succeeded", "payment.failed"))
    pay(app, owner)
    tick()
    run_outbox()
    assert [r.path for r in receiver.requests] == ["/kassa/webhooks?both=1"]
    assert [d.endpoint_id for d in deliveries()] == [both.id]


def test_i6_editing_an_endpoint_changes_what_it_gets(client, app, owner, receiver):
    endpoint, _secret = new_endpoint(client, receiver.url, events=("payout.paid",))
    response = client.post(f"/settings/webhooks/{endpoint.id}",
                           data={"url": receiver.url + "?v=2", "description": "Accounting",
                                 "event_types": ["payment.succeeded"]})
    assert response.status_code == 303
    pay(app, owner)
    tick()
    run_outbox()
    assert [r.path for r in receiver.requests] == ["/kassa/webhooks?v=2"]
    db.session.rollback()
    assert db.session.get(WebhookEndpoint, endpoint.id).description == "Accounting"


def test_i6_turning_an_endpoint_off_stops_its_deliveries(client, app, owner, receiver):
    endpoint, _secret = new_endpoint(client, receiver.url)
    pay(app, owner)
    tick()
    assert client.post(f"/settings/webhooks/{endpoint.id}/enabled", data={}).status_code == 303
    run_outbox()
    assert receiver.requests == []
    assert [d.status for d in deliveries()] == ["cancelled"]
    pay(app, owner)
    tick()
    assert len(deliveries()) == 1


def test_i6_the_secret_can_be_revealed_again(client, app, owner, receiver):
    endpoint, secret = new_endpoint(client, receiver.url)
    response = client.post(f"/settings/webhooks/{endpoint.id}/secret")
    assert response.headers["Cache-Control"] == "no-store"
    assert text_of(soup_of(response).select_one("[data-webhook-secret]")) == secret
    assert secret not in client.get(f"/settings/webhooks/{endpoint.id}").get_data(as_text=True)
    assert secret not in client.get("/settings/webhooks").get_data(as_text=True)


HOSTILE = ["http://10.0.0.5/hook", "https://192.168.1.10/hook", "https://169.254.169.254/latest/meta-data",
           "https://[fd00::1]/hook", "https://[::ffff:10.0.0.1]/hook", "https://0.0.0.0/hook",
           "https://100.64.0.1/hook", "https://user:secret@example.com/hook", "ftp://example.com/hook",
           "javascript:alert(1)", "https://", "not a url", "https://example.com:99999/hook"]


@pytest.mark.parametrize("url", HOSTILE)
def test_i6_a_hostile_or_private_url_is_refused_at_the_field(client, app, owner, url):
    """SSRF: private, link-local, carrier-grade NAT and unspecified addresses, credentials, other schemes."""
    response = add_endpoint(client, url)
    assert response.status_code == 422
    error = soup_of(response).select_one("#f-url-error")
    assert error is not None and text_of(error)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0


def test_i6_the_loopback_is_refused_unless_the_configuration_allows_it(client, app, owner, receiver):
    app.config["KASSA_WEBHOOK_ALLOW_LOOPBACK"] = False
    response = add_endpoint(client, receiver.url)
    assert response.status_code == 422 and soup_of(response).select_one("#f-url-error") is not None
    assert add_endpoint(client, "http://[::1]:8000/hook").status_code == 422


def test_i6_an_endpoint_needs_an_event_type(client, app, owner, receiver):
    response = add_endpoint(client, receiver.url, events=())
    assert response.status_code == 422
    assert text_of(soup_of(response).select_one("#f-event_types-error")) == "Choose at least one event type."
    assert add_endpoint(client, receiver.url, events=("payment.exploded",)).status_code == 422
    assert add_endpoint(client, receiver.url, mode="staging").status_code == 422


def test_i6_two_ticks_at_once_make_one_delivery(client, app, owner, receiver):
    new_endpoint(client, receiver.url)
    pay(app, owner)
    pay(app, owner, price="40.00")
    from kassa.services.webhooks.outgoing import make_deliveries

    made = at_once(app, make_deliveries)
    assert sum(made) == 2
    assert len(deliveries()) == 2
    run_outbox()
    assert len(receiver.requests) == 2


def test_i6_another_merchant_gets_404(client, app, owner, receiver):
    endpoint, _secret = new_endpoint(client, receiver.url)
    pay(app, owner)
    tick()
    run_outbox()
    (delivery,) = deliveries()
    other = make_merchant(company="Other Shop")
    client = app.test_client()
    login(client, other)
    assert client.get(f"/settings/webhooks/{endpoint.id}").status_code == 404
    assert client.post(f"/settings/webhooks/{endpoint.id}", data={"url": "https://example.com/x"}).status_code == 404
    assert client.post(f"/settings/webhooks/{endpoint.id}/secret").status_code == 404
    assert client.post(f"/settings/webhooks/{endpoint.id}/enabled", data={}).status_code == 404
    assert client.post(f"/settings/webhooks/deliveries/{delivery.id}/resend").status_code == 404
    assert receiver.url not in client.get("/settings/webhooks").get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(WebhookEndpoint, endpoint.id).enabled
