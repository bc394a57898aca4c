"""K7 setup: connecting Stripe creates the webhook endpoint through the API (URL, events) and keeps its signing
secret encrypted; a key that may not (a restricted key) gets the page telling the merchant exactly what to add
in the Dashboard and a field for the signing secret; disconnecting deletes the endpoint, best-effort."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from kassa import secrets_box
from kassa.extensions import db
from kassa.models import StripeConnection
from kassa.processors.stripe import WEBHOOK_EVENTS
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in, page_text
from tests.support.stripe_doubles import FixtureTransport
from tests.support.stripe_events import fixture_app_config

SECRET = "sk_live_51Kassa0000000000000000000000000000000000000abcd"
PUBLISHABLE = "pk_live_51Kassa00000000000000000000000000000000000000001"
KEY = Fernet.generate_key().decode()
ACCOUNT = {"id": "acct_1K7", "object": "account", "country": "NL", "default_currency": "eur",
           "business_profile": {"name": "Acme Coffee BV"}}
ENDPOINT = {"id": "we_1K7", "object": "webhook_endpoint", "secret": "whsec_k7CreatedByTheApi000001",
            "url": "http://kassa.test/webhooks/stripe/1", "enabled_events": list(WEBHOOK_EVENTS), "status": "enabled"}
NO_PERMISSION = {"error": {"type": "invalid_request_error", "message": (
    "The provided key 'rk_live_*****abcd' does not have the required permissions for this endpoint. Having the "
    "'rak_webhook_write' permission would allow this request to continue.")}}


@pytest.fixture
def transport():
    return FixtureTransport({("GET", "/v1/account"): [(200, ACCOUNT)]})


@pytest.fixture
def app_config(transport):
    return fixture_app_config(transport, KEY)


@pytest.fixture
def owner(client):
    user = make_merchant(company="Acme")
    log_in(client, user.email, PASSWORD)
    return user


def connect(client):
    return client.post("/settings/payments/stripe", data={"secret_key": SECRET, "publishable_key": PUBLISHABLE})


def connection() -> StripeConnection:
    db.session.rollback()
    return db.session.scalar(select(StripeConnection))


def test_k7_connecting_creates_the_webhook_endpoint_and_keeps_its_secret_encrypted(client, owner, transport):
    transport.answers[("POST", "/v1/webhook_endpoints")] = [(200, ENDPOINT)]
    assert connect(client).status_code == 303
    (create,) = [s for s in transport.sent if s.path == "/v1/webhook_endpoints"]
    params = create.params
    assert ("url", f"http://kassa.test/webhooks/stripe/{owner.account_id}") in params
    assert sorted(v for k, v in params if k.startswith("enabled_events[")) == sorted(WEBHOOK_EVENTS)
    assert create.headers["Authorization"] == f"Bearer {SECRET}"
    row = connection()
    assert row.webhook_endpoint_id == "we_1K7"
    assert "whsec_" not in row.webhook_secret_encrypted
    assert secrets_box.decrypt(row.webhook_secret_encrypted) == ENDPOINT["secret"]
    text = page_text(client.get("/settings/payments"))
    assert "Set up by Kassa (endpoint we_1K7)" in text and "Add the webhook in Stripe" not in text
    # Disconnect deletes the endpoint it created.
    transport.answers[("DELETE", "/v1/webhook_endpoints/we_1K7")] = [(200, {"id": "we_1K7", "deleted": True})]
    client.post(f"/settings/payments/stripe/{row.id}/disconnect")
    assert [s.method for s in transport.sent if s.path == "/v1/webhook_endpoints/we_1K7"] == ["DELETE"]
    assert connection().disconnected_at is not None


def test_k7_disconnect_succeeds_when_stripe_cant_delete_the_endpoint(client, owner, transport):
    transport.answers[("POST", "/v1/webhook_endpoints")] = [(200, ENDPOINT)]
    connect(client)
    transport.answers[("DELETE", "/v1/webhook_endpoints/we_1K7")] = [(500, {"error": {"type": "api_error",
                                                                                     "message": "down"}})]
    response = client.post(f"/settings/payments/stripe/{connection().id}/disconnect")
    assert response.status_code in (200, 204, 303)
    assert connection().disconnected_at is not None


def test_k7_a_key_that_may_not_create_endpoints_gets_the_manual_steps_and_a_secret_field(client, owner, transport):
    transport.answers[("POST", "/v1/webhook_endpoints")] = [(403, NO_PERMISSION)]
    assert connect(client).status_code == 303  # the connection stands
    row = connection()
    assert row.webhook_endpoint_id is None and row.webhook_secret_encrypted is None
    text = page_text(client.get("/settings/payments"))
    assert "Add the webhook in Stripe" in text
    assert f"http://kassa.test/webhooks/stripe/{owner.account_id}" in text
    assert all(name in text for name in WEBHOOK_EVENTS)
    # A wrong value is refused with a clear message at the field, and nothing is saved.
    bad = client.post(f"/settings/payments/stripe/{row.id}/webhook", data={"signing_secret": "sk_live_nope"})
    assert bad.status_code == 422 and "starts with whsec_" in page_text(bad)
    assert connection().webhook_secret_encrypted is None
    ok = client.post(f"/settings/payments/stripe/{row.id}/webhook",
                     data={"signing_secret": " whsec_PastedFromTheDashboard01 "})
    assert ok.status_code == 303
    assert secrets_box.decrypt(connection().webhook_secret_encrypted) == "whsec_PastedFromTheDashboard01"
    assert "Signing secret saved" in page_text(client.get("/settings/payments"))


def test_k7_another_merchants_connection_secret_form_is_404(client, owner, transport):
    transport.answers[("POST", "/v1/webhook_endpoints")] = [(403, NO_PERMISSION)]
    connect(client)
    row_id = connection().id
    other = make_merchant(company="Other")
    other_client = client.application.test_client()
    log_in(other_client, other.email, PASSWORD)
    response = other_client.post(f"/settings/payments/stripe/{row_id}/webhook",
                                 data={"signing_secret": "whsec_Intruder000000000001"})
    assert response.status_code == 404
    assert connection().webhook_secret_encrypted is None
