"""I6: rolling an endpoint's signing secret. Settings → Webhooks → endpoint → Roll secret asks when the old
secret should stop working (now, in 1 hour, in 24 hours), then shows the new one once. During the overlap every
delivery carries both signatures (`v1=` twice); a receiver checking with docs/api.md's snippet verifies with the
old secret until the overlap ends and with the new secret at once."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from sqlalchemy import select

from kassa.clock import now
from kassa.extensions import db
from kassa.models import AuditEvent, WebhookEndpoint
from tests.factories import make_merchant
from tests.support.app import run_outbox
from tests.support.payments import login, soup_of, text_of
from tests.support.webhook_fixtures import *  # noqa: F403 (app_config, receiver, owner: pytest finds them here)
from tests.support.webhook_verify import verify
from tests.web.test_i6_webhooks import new_endpoint, pay, tick


def roll(client, endpoint_id: int, overlap: str):
    return client.post(f"/settings/webhooks/{endpoint_id}/roll", data={"overlap": overlap})


def rolled_secret(response) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)[:600]
    assert response.headers["Cache-Control"] == "no-store"
    page = soup_of(response)
    assert page.select_one("[data-secret-rolled]") is not None
    return text_of(page.select_one("[data-webhook-secret]"))


def signatures(header: str) -> list[str]:
    return [part for part in header.split(",") if part.startswith("v1=")]


def test_i6_roll_asks_first_and_shows_the_new_secret_once(client, app, owner, receiver):
    endpoint, old = new_endpoint(client, receiver.url)
    dialog = client.get(f"/settings/webhooks/{endpoint.id}/roll")
    assert dialog.status_code == 200
    choices = [radio["value"] for radio in soup_of(dialog).select('input[name="overlap"]')]
    assert choices == ["none", "1h", "24h"]
    db.session.rollback()
    assert db.session.get(WebhookEndpoint, endpoint.id).previous_secret_encrypted is None  # asking changes nothing
    new = rolled_secret(roll(client, endpoint.id, "24h"))
    assert new.startswith("whsec_") and new != old
    page = soup_of(client.get(f"/settings/webhooks/{endpoint.id}"))
    assert page.select_one("[data-webhook-secret]") is None  # shown once; Reveal shows it again on demand
    assert "previous secret also signs events until" in text_of(page.select_one("[data-previous-secret]"))
    assert text_of(soup_of(client.post(f"/settings/webhooks/{endpoint.id}/secret"))
                   .select_one("[data-webhook-secret]")) == new
    db.session.rollback()
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "webhook_endpoint.secret_rolled"))
    assert audit is not None and audit.object_id == str(endpoint.id)


def test_i6_during_the_overlap_both_secrets_verify_and_after_it_only_the_new_one(client, app, owner, receiver):
    """1 hour overlap: the old secret's receiver verifies until then, fails after; the new one works at once."""
    endpoint, old = new_endpoint(client, receiver.url)
    new = rolled_secret(roll(client, endpoint.id, "1h"))
    pay(app, owner)
    tick()
    run_outbox()
    (during,) = receiver.requests
    header = during.headers["Kassa-Signature"]
    assert len(signatures(header)) == 2
    assert verify(old, header, during.body) and verify(new, header, during.body)
    assert not verify("whsec_someone_else", header, during.body)
    with time_machine.travel(now() + timedelta(hours=1, seconds=1), tick=False):
        pay(app, owner, price="31.00")
        tick()
        run_outbox()
        after = receiver.requests[-1]
        header = after.headers["Kassa-Signature"]
        assert len(receiver.requests) == 2 and len(signatures(header)) == 1
        assert verify(new, header, after.body)
        assert not verify(old, header, after.body)


def test_i6_rolling_with_no_overlap_ends_the_old_secret_at_once(client, app, owner, receiver):
    endpoint, old = new_endpoint(client, receiver.url)
    new = rolled_secret(roll(client, endpoint.id, "none"))
    pay(app, owner)
    tick()
    run_outbox()
    (request,) = receiver.requests
    header = request.headers["Kassa-Signature"]
    assert len(signatures(header)) == 1 and verify(new, header, request.body) and not verify(old, header, request.body)


def test_i6_rolling_again_during_an_overlap_keeps_one_previous_secret(client, app, owner, receiver):
    endpoint, first = new_endpoint(client, receiver.url)
    second = rolled_secret(roll(client, endpoint.id, "24h"))
    third = rolled_secret(roll(client, endpoint.id, "1h"))
    pay(app, owner)
    tick()
    run_outbox()
    (request,) = receiver.requests
    header = request.headers["Kassa-Signature"]
    assert len(signatures(header)) == 2
    assert verify(third, header, request.body) and verify(second, header, request.body)
    assert not verify(first, header, request.body)


def test_i6_a_bad_overlap_is_refused_and_nothing_changes(client, app, owner, receiver):
    endpoint, _old = new_endpoint(client, receiver.url)
    before = db.session.get(WebhookEndpoint, endpoint.id).secret_encrypted
    for overlap in ("forever", "", "3600", "1H"):
        response = roll(client, endpoint.id, overlap)
        assert response.status_code == 422
        assert "Choose when the old secret stops working." in response.get_data(as_text=True)
    db.session.rollback()
    endpoint = db.session.get(WebhookEndpoint, endpoint.id)
    assert endpoint.secret_encrypted == before and endpoint.previous_secret_encrypted is None


def test_i6_another_merchants_endpoint_cannot_be_rolled(client, app, owner, receiver):
    endpoint, _secret = new_endpoint(client, receiver.url)
    before = db.session.get(WebhookEndpoint, endpoint.id).secret_encrypted
    client = app.test_client()
    login(client, make_merchant(company="Other Shop"))
    assert client.get(f"/settings/webhooks/{endpoint.id}/roll").status_code == 404
    assert roll(client, endpoint.id, "1h").status_code == 404
    db.session.rollback()
    assert db.session.get(WebhookEndpoint, endpoint.id).secret_encrypted == before
