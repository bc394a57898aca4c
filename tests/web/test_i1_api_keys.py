"""I1: API keys — a key works until revoked, a test key sees test data only and a live key live data only,
another account's object is Stripe's 404 `resource_missing`, and every call is an audit row naming its key.
Plain HTTP (the app's test client), both databases."""

from __future__ import annotations

import base64
import re

import pytest
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import ApiKey, AuditEvent, Role
from kassa.services.api.keys import create_key, revoke_key
from tests.factories import make_merchant, make_payment, make_user
from tests.support.app import page_text
from tests.support.payments import actor_for


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def owner(app):
    return make_merchant("Bikes")


def test_i1_a_key_is_stored_hashed_and_shown_once(owner):
    key, secret = create_key(actor_for(owner), "Shop", "live")
    assert secret.startswith("sk_live_") and len(secret) == len("sk_live_") + 40
    row = db.session.get(ApiKey, key.id)
    assert secret not in (row.secret_hash, row.prefix, row.name) and row.prefix == secret[:12]
    assert secret not in str([(e.data, e.object_id) for e in db.session.scalars(select(AuditEvent))])


def test_i1_only_a_super_admin_creates_keys(owner):
    from kassa.errors import Forbidden

    manager = make_user(owner.account_id, Role.PAYMENTS_MANAGER)
    with pytest.raises(Forbidden):
        create_key(actor_for(manager), "Shop", "test")


def test_i1_no_key_a_bad_key_and_a_revoked_key_are_401_in_stripes_envelope(client, owner):
    key, secret = create_key(actor_for(owner), "Shop", "test")
    assert client.get("/api/v1/payment_intents", headers=bearer(secret)).status_code == 200

    missing = client.get("/api/v1/payment_intents")
    assert missing.status_code == 401 and missing.json["error"]["type"] == "invalid_request_error"
    wrong = client.get("/api/v1/payment_intents", headers=bearer(secret[:-1] + ("x" if secret[-1] != "x" else "y")))
    assert wrong.status_code == 401 and "Invalid API Key" in wrong.json["error"]["message"]
    assert secret[12:-4] not in wrong.json["error"]["message"]  # the message never echoes the secret

    revoke_key(actor_for(owner), key.id)
    revoked = client.get("/api/v1/payment_intents", headers=bearer(secret))  # at once: looked up on every call
    assert revoked.status_code == 401 and revoked.json["error"]["code"] == "api_key_invalid"


def test_i1_basic_auth_with_the_key_as_user_works_as_curl_u_sends_it(client, owner):
    _key, secret = create_key(actor_for(owner), "Shop", "test")
    token = base64.b64encode(f"{secret}:".encode()).decode()
    response = client.get("/api/v1/payment_intents", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 200 and response.json["object"] == "list"


def test_i1_a_test_key_sees_test_data_only_and_a_live_key_live_data_only(client, owner):
    test_payment = make_payment(owner.account_id, mode="test")
    live_payment = make_payment(owner.account_id, mode="live")
    _k, test_secret = create_key(actor_for(owner), "Test", "test")
    _k, live_secret = create_key(actor_for(owner), "Live", "live")

    listed = client.get("/api/v1/payment_intents", headers=bearer(test_secret)).json
    assert [p["id"] for p in listed["data"]] == [f"pi_{test_payment.id}"] and listed["data"][0]["livemode"] is False
    live_listed = client.get("/api/v1/payment_intents", headers=bearer(live_secret)).json
    assert [p["id"] for p in live_listed["data"]] == [f"pi_{live_payment.id}"]

    hidden = client.get(f"/api/v1/payment_intents/pi_{live_payment.id}", headers=bearer(test_secret))
    assert hidden.status_code == 404 and hidden.json["error"]["code"] == "resource_missing"
    refund = client.post("/api/v1/refunds", data={"payment_intent": f"pi_{live_payment.id}"},
                         headers=bearer(test_secret))
    assert refund.status_code == 404 and refund.json["error"]["param"] == "payment_intent"
    assert db.session.get(type(live_payment), live_payment.id).refund_reserved_minor == 0


def test_i1_another_accounts_objects_are_resource_missing(client, owner):
    other = make_merchant("Boats")
    theirs = make_payment(other.account_id)
    _k, secret = create_key(actor_for(owner), "Shop", "test")
    _k, their_secret = create_key(actor_for(other), "Theirs", "test")
    link = client.post("/api/v1/payment_links", headers=bearer(their_secret), data={
        "line_items[0][price_data][currency]": "usd", "line_items[0][price_data][unit_amount]": "500",
        "line_items[0][price_data][product_data][name]": "Boat trip", "line_items[0][quantity]": "1"}).json

    for path in (f"/api/v1/payment_intents/pi_{theirs.id}", f"/api/v1/payment_links/{link['id']}",
                 "/api/v1/disputes/dp_1", "/api/v1/payment_links/nonsense"):
        response = client.get(path, headers=bearer(secret))
        assert response.status_code == 404, path
        assert response.json["error"]["code"] == "resource_missing"
    refund = client.post("/api/v1/refunds", data={"charge": f"ch_{theirs.id}", "amount": "100"},
                         headers=bearer(secret))
    assert refund.status_code == 404 and db.session.get(type(theirs), theirs.id).refund_reserved_minor == 0
    cursor = client.get(f"/api/v1/payment_intents?starting_after=pi_{theirs.id}", headers=bearer(secret))
    assert cursor.status_code == 404 and cursor.json["error"]["param"] == "starting_after"


def test_i1_every_call_is_an_audit_row_with_its_key_and_last_used_moves(client, owner):
    key, secret = create_key(actor_for(owner), "Shop", "test")
    payment = make_payment(owner.account_id, mode="test")
    assert db.session.get(ApiKey, key.id).last_used_at is None
    client.get("/api/v1/payment_intents", headers=bearer(secret))
    client.get("/api/v1/payment_intents/pi_0", headers=bearer(secret))
    client.post("/api/v1/payment_links", headers=bearer(secret), data={
        "line_items[0][price_data][currency]": "usd", "line_items[0][price_data][unit_amount]": "500",
        "line_items[0][price_data][product_data][name]": "Tune-up", "line_items[0][quantity]": "1"})

    calls = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "api.request")
                                    .order_by(AuditEvent.id)))
    assert [(c.data["method"], c.data["path"], c.data["status"]) for c in calls] == [
        ("GET", "/api/v1/payment_intents", 200), ("GET", "/api/v1/payment_intents/pi_0", 404),
        ("POST", "/api/v1/payment_links", 200)]
    assert {(c.account_id, c.object_id, c.data["api_key_id"]) for c in calls} == {
        (owner.account_id, str(key.id), key.id)}
    # What the call did is audited as the page's action is, naming the key too.
    created = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "link.created"))
    assert created.data["api_key_id"] == key.id and created.actor_id is None
    assert db.session.get(ApiKey, key.id).last_used_at is not None
    assert payment.id  # the list call above read it


def test_i1_errors_are_json_in_stripes_envelope(client, owner):
    _k, secret = create_key(actor_for(owner), "Shop", "test")
    unknown = client.get("/api/v1/customers", headers=bearer(secret))
    assert unknown.status_code == 404 and unknown.json["error"]["type"] == "invalid_request_error"
    bad_param = client.post("/api/v1/refunds", data={"payment_intent": "pi_1", "colour": "red"},
                            headers=bearer(secret))
    assert bad_param.status_code == 400 and bad_param.json["error"]["param"] == "colour"
    bad_limit = client.get("/api/v1/payment_intents?limit=1000", headers=bearer(secret))
    assert bad_limit.status_code == 400 and bad_limit.json["error"]["param"] == "limit"
    no_items = client.post("/api/v1/payment_links", headers=bearer(secret))
    assert no_items.status_code == 400 and no_items.json["error"]["param"] == "line_items"
    wrong_method = client.delete("/api/v1/payment_links/plink_1", headers=bearer(secret))
    assert wrong_method.status_code == 405 and "error" in wrong_method.json


# -- the Settings page ----------------------------------------------------------------------------------


def test_i1_settings_creates_a_key_shows_the_secret_once_then_only_its_prefix(client, owner):
    from tests.support.payments import login

    login(client, owner)
    created = client.post("/settings/api-keys", data={"name": "Shop", "mode": "live"})
    assert created.status_code == 200 and created.headers["Cache-Control"] == "no-store"
    secret = re.search(r"sk_live_[A-Za-z0-9]{40}", created.get_data(as_text=True)).group(0)
    listing = client.get("/settings/api-keys")
    text = page_text(listing)
    assert secret not in listing.get_data(as_text=True)
    assert "Shop" in text and f"{secret[:12]}…" in text and "Live" in text and "Never" in text
    # The key works, and the page then says when it was last used.
    assert client.get("/api/v1/payment_intents", headers=bearer(secret)).status_code == 200
    assert "Never" not in page_text(client.get("/settings/api-keys"))


def test_i1_settings_refuses_a_key_without_a_name(client, owner):
    from tests.support.payments import login

    login(client, owner)
    response = client.post("/settings/api-keys", data={"name": " ", "mode": "test"})
    assert response.status_code == 422 and "Name the key" in page_text(response)
    assert db.session.scalar(select(ApiKey)) is None


def test_i1_settings_revokes_after_confirmation(client, owner):
    from tests.support.payments import login

    key, secret = create_key(actor_for(owner), "Shop", "test")
    login(client, owner)
    confirm = client.get(f"/settings/api-keys/{key.id}/revoke")
    assert confirm.status_code == 200 and "Revoke Shop?" in page_text(confirm)
    assert client.get("/api/v1/payment_intents", headers=bearer(secret)).status_code == 200  # not yet
    done = client.post(f"/settings/api-keys/{key.id}/revoke")
    assert done.status_code in (200, 303)
    assert client.get("/api/v1/payment_intents", headers=bearer(secret)).status_code == 401
    assert "Revoked" in page_text(client.get("/settings/api-keys"))
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "api_key.revoked")).object_id == str(key.id)


def test_i1_settings_keys_are_for_super_admins_and_their_own_account(client, owner):
    from tests.support.payments import login

    other = make_merchant("Boats")
    theirs, _secret = create_key(actor_for(other), "Theirs", "live")
    login(client, owner)
    assert client.get(f"/settings/api-keys/{theirs.id}/revoke").status_code == 404
    assert client.post(f"/settings/api-keys/{theirs.id}/revoke").status_code == 404
    assert db.session.get(ApiKey, theirs.id).revoked_at is None
    assert "Theirs" not in page_text(client.get("/settings/api-keys"))

    client.post("/logout")
    manager = make_user(owner.account_id, Role.PAYMENTS_MANAGER)
    login(client, manager)
    assert client.get("/settings/api-keys").status_code == 403
    assert client.post("/settings/api-keys", data={"name": "Mine", "mode": "live"}).status_code == 403


# -- scopes: restricted keys ----------------------------------------------------------------------------


def test_i1_every_api_endpoint_names_the_scope_it_needs(app):
    from kassa.blueprints.api import ENDPOINT_SCOPES

    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("api.")}
    assert endpoints == set(ENDPOINT_SCOPES)


def test_i1_a_restricted_key_reads_and_writes_only_what_it_was_given(client, owner):
    payment = make_payment(owner.account_id, mode="test")
    key, secret = create_key(actor_for(owner), "Reports", "test", {"payments": "read", "refunds": "none",
                                                                   "payment_links": "write"})
    assert secret.startswith("rk_test_") and key.scopes == {"payments": "read", "payment_links": "write"}
    assert client.get("/api/v1/payment_intents", headers=bearer(secret)).status_code == 200
    assert client.get(f"/api/v1/charges/ch_{payment.id}", headers=bearer(secret)).status_code == 200
    refused = client.post("/api/v1/refunds", data={"charge": f"ch_{payment.id}"}, headers=bearer(secret))
    assert refused.status_code == 403 and refused.json["error"]["code"] == "insufficient_permissions"
    assert "refunds" in refused.json["error"]["message"]
    assert db.session.get(type(payment), payment.id).refund_reserved_minor == 0
    assert client.get("/api/v1/refunds", headers=bearer(secret)).status_code == 403
    assert client.get("/api/v1/disputes/dp_1", headers=bearer(secret)).status_code == 403
    link = client.post("/api/v1/payment_links", headers=bearer(secret), data={
        "line_items[0][price_data][currency]": "usd", "line_items[0][price_data][unit_amount]": "500",
        "line_items[0][price_data][product_data][name]": "Bell", "line_items[0][quantity]": "1"})
    assert link.status_code == 200  # write includes read
    assert client.get(f"/api/v1/payment_links/{link.json['id']}", headers=bearer(secret)).status_code == 200


def test_i1_a_restricted_key_needs_some_access_and_known_levels(owner):
    from kassa.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as nothing:
        create_key(actor_for(owner), "Empty", "test", {"payments": "none"})
    assert "access" in nothing.value.errors
    with pytest.raises(ValidationFailed) as odd:
        create_key(actor_for(owner), "Odd", "test", {"payments": "admin"})
    assert "scope_payments" in odd.value.errors


def test_i1_settings_creates_a_restricted_key(client, owner):
    from tests.support.payments import login

    login(client, owner)
    created = client.post("/settings/api-keys", data={
        "name": "Accounting", "mode": "live", "access": "restricted", "scope_payments": "read",
        "scope_refunds": "write", "scope_payment_links": "none", "scope_disputes": "none"})
    secret = re.search(r"rk_live_[A-Za-z0-9]{40}", created.get_data(as_text=True)).group(0)
    assert db.session.scalar(select(ApiKey).where(ApiKey.name == "Accounting")).scopes == {
        "payments": "read", "refunds": "write"}
    text = page_text(client.get("/settings/api-keys"))
    assert "Payments and charges: read" in text and "Refunds: write" in text and secret[:12] in text
