"""K5 Connect: Settings → Payments → Stripe. Keys checked with one API call through a per-request StripeClient
(answered here by a fixture transport, no internet), the secret stored encrypted, disconnect keeps history,
each merchant sees only its own connection, and Share/Embed warn while no live processor is connected."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import stripe
from bs4 import BeautifulSoup
from cryptography.fernet import Fernet
from sqlalchemy import func, select, text

from kassa import secrets_box
from kassa.config import build_config
from kassa.extensions import db
from kassa.models import AuditEvent, Role, StripeConnection
from kassa.services.accounts import stripe_connect
from tests.factories import PASSWORD, make_merchant, make_user
from tests.support.app import log_in, page_text
from tests.support.checkout_flow import make_link

SECRET = "sk_live_51Kassa0000000000000000000000000000000000000abcd"
PUBLISHABLE = "pk_live_51Kassa00000000000000000000000000000000000000001"
TEST_SECRET = "sk_test_51Kassa0000000000000000000000000000000000000wxyz"
TEST_PUBLISHABLE = "pk_test_51Kassa00000000000000000000000000000000000000001"
REVOKED = "sk_live_51Revoked000000000000000000000000000000000000dead"
RESTRICTED = "rk_live_51Restricted0000000000000000000000000000000000noac"
UNREACHABLE = "sk_live_51Offline00000000000000000000000000000000000000off"
OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()

# Shaped like Stripe's own objects (GET /v1/account, and its error bodies).
ACCOUNT = {
    "id": "acct_1KassaFixture", "object": "account", "country": "NL", "default_currency": "eur",
    "email": "finance@acme.example", "business_profile": {"name": "Acme Coffee BV"},
    "settings": {"dashboard": {"display_name": "Acme", "timezone": "Europe/Amsterdam"}},
    "charges_enabled": True, "payouts_enabled": True, "type": "standard",
}
INVALID_KEY = {"error": {"code": "api_key_invalid", "type": "invalid_request_error",
                         "message": "Invalid API Key provided: sk_live_*****dead"}}
NO_PERMISSION = {"error": {"type": "invalid_request_error", "message": (
    "The provided key 'rk_live_*****noac' does not have the required permissions for this endpoint on account "
    "'acct_1KassaFixture'. Having the 'rak_account_read' permission would allow this request to continue.")}}


class FixtureStripe(stripe.HTTPClient):
    """A StripeClient transport (STRIPE_NOTE.md): records each request, answers from the canned objects above."""

    name = "fixture"

    def __init__(self):
        super().__init__()
        self.requests: list[tuple[str, str, str]] = []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        key = headers["Authorization"].removeprefix("Bearer ")
        self.requests.append((method, url, key))
        if key == UNREACHABLE:
            raise stripe.APIConnectionError("Connection refused")
        status, body = {REVOKED: (401, INVALID_KEY), RESTRICTED: (403, NO_PERMISSION)}.get(key, (200, ACCOUNT))
        return json.dumps(body), status, {"request-id": "req_fixture"}

    def request_stream(self, method, url, headers, post_data=None, *, _usage=None):
        raise AssertionError("no streaming call expected")

    def close(self):
        pass


@pytest.fixture
def transport():
    return FixtureStripe()


@pytest.fixture
def app_config(transport):
    return {"KASSA_STRIPE_HTTP_CLIENT": transport, "KASSA_ENCRYPTION_KEYS": [OLD_KEY],
            "KASSA_STRIPE_BASE_ADDRESSES": {"api": "http://stripe.fixture", "files": "http://stripe.fixture",
                                            "connect": "http://stripe.fixture"}}


@pytest.fixture
def owner(client):
    user = make_merchant(company="Acme")
    log_in(client, user.email, PASSWORD)
    return user


def _connect(client, secret=SECRET, publishable=PUBLISHABLE):
    return client.post("/settings/payments/stripe", data={"secret_key": secret, "publishable_key": publishable})


def _field_errors(response) -> dict[str, str]:
    soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    return {node["id"][2:-6]: node.get_text(" ", strip=True) for node in soup.select(".field__error")}


def _connections() -> list[StripeConnection]:
    return db.session.scalars(select(StripeConnection).order_by(StripeConnection.id)).all()


def test_k5_connect_checks_keys_with_one_call_and_shows_the_stripe_account(client, owner, transport):
    response = _connect(client)
    assert response.status_code == 303
    # One API call checks the key: GET /v1/account with the pasted key, through the per-request client; then
    # (K7) one call asks Stripe for the webhook endpoint (this fixture can't make one: the page says what to add).
    assert transport.requests == [("get", "http://stripe.fixture/v1/account", SECRET),
                                  ("post", "http://stripe.fixture/v1/webhook_endpoints", SECRET)]
    page = client.get("/settings/payments")
    text_ = page_text(page)
    for shown in ("Acme Coffee BV", "acct_1KassaFixture", "NL", "EUR", "Live keys", "Ends in abcd"):
        assert shown in text_
    assert SECRET not in page.get_data(as_text=True)
    (row,) = _connections()
    assert (row.account_id, row.mode, row.stripe_account_name, row.country, row.default_currency) == (
        owner.account_id, "live", "Acme Coffee BV", "NL", "EUR")
    assert row.publishable_key == PUBLISHABLE and row.connected_by_id == owner.id
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "stripe.connected"))
    assert audit.actor_id == owner.id and audit.data["key_last4"] == "abcd" and SECRET not in json.dumps(audit.data)


def test_k5_secret_is_encrypted_at_rest_not_with_the_session_secret(app, client, owner):
    _connect(client)
    raw = db.session.execute(text("SELECT secret_key_encrypted FROM stripe_connections")).scalar_one()
    assert SECRET not in raw and "abcd" not in raw
    assert Fernet(OLD_KEY.encode()).decrypt(raw.encode()).decode() == SECRET
    assert stripe_connect.decrypt_secret(_connections()[0]) == SECRET
    assert app.config["SECRET_KEY"] not in app.config["KASSA_ENCRYPTION_KEYS"]


@pytest.mark.parametrize(
    ("secret", "publishable", "field", "message", "calls"),
    [
        ("sk_live_short", PUBLISHABLE, "secret_key", "Paste a Stripe secret key", 0),
        ("pk_live_51Kassa0000000000000000000000000000000000001", PUBLISHABLE, "secret_key", "secret key", 0),
        (SECRET, "sk_live_51Kassa000000000000000000000000000000", "publishable_key", "publishable key", 0),
        (SECRET, TEST_PUBLISHABLE, "publishable_key", "same mode", 0),
        (REVOKED, PUBLISHABLE, "secret_key", "didn't accept this key", 1),
        (RESTRICTED, PUBLISHABLE, "secret_key", "restricted key can't read", 1),
        (UNREACHABLE, PUBLISHABLE, "secret_key", "couldn't reach Stripe", 1),
    ],
    ids=["short-secret", "publishable-as-secret", "bad-publishable", "live-test-mismatch", "401-invalid-key",
         "403-restricted-key", "network"],
)
def test_k5_bad_keys_give_a_field_error_and_store_nothing(client, owner, transport, secret, publishable, field,
                                                          message, calls):
    response = _connect(client, secret, publishable)
    assert response.status_code == 422
    errors = _field_errors(response)
    assert message in errors[field]
    assert _connections() == [] and len(transport.requests) == calls
    # The secret key is never echoed back into the page; the publishable one is kept for another try.
    body = response.get_data(as_text=True)
    assert secret not in body
    assert f'value="{publishable}"' in body


def test_k5_test_keys_connect_in_test_mode_and_a_second_connection_per_mode_is_refused(client, owner):
    assert _connect(client, TEST_SECRET, TEST_PUBLISHABLE).status_code == 303
    assert "Test keys" in page_text(client.get("/settings/payments"))
    again = _connect(client, TEST_SECRET, TEST_PUBLISHABLE)
    assert again.status_code == 422 and "already connected in test mode" in _field_errors(again)["secret_key"]
    assert _connect(client).status_code == 303
    assert sorted(row.mode for row in _connections()) == ["live", "test"]


def test_k5_each_merchant_sees_and_changes_only_its_own_connection(app, owner):
    first = app.test_client()
    log_in(first, owner.email, PASSWORD)
    _connect(first)
    (row,) = _connections()
    other = make_merchant(company="Other")
    second = app.test_client()
    log_in(second, other.email, PASSWORD)
    page = page_text(second.get("/settings/payments"))
    assert "Acme Coffee BV" not in page and "Connect Stripe" in page
    assert second.get(f"/settings/payments/stripe/{row.id}/disconnect").status_code == 404
    assert second.post(f"/settings/payments/stripe/{row.id}/disconnect").status_code == 404
    db.session.refresh(row)
    assert row.disconnected_at is None


def test_k5_only_users_who_manage_settings_connect(app, owner):
    member = make_user(owner.account_id, Role.MEMBER)
    client = app.test_client()
    log_in(client, member.email, PASSWORD)
    assert _connect(client).status_code == 403
    assert _connections() == []


def test_k5_disconnect_asks_then_keeps_the_row_and_shows_connect_again(client, owner):
    _connect(client)
    (row,) = _connections()
    confirm = client.get(f"/settings/payments/stripe/{row.id}/disconnect")
    assert confirm.status_code == 200 and "Disconnect Acme Coffee BV?" in page_text(confirm)
    assert client.post(f"/settings/payments/stripe/{row.id}/disconnect").status_code in (200, 303)
    db.session.refresh(row)
    assert row.disconnected_at is not None and row.disconnected_by_id == owner.id
    assert row.stripe_account_name == "Acme Coffee BV"  # history stays readable
    page = page_text(client.get("/settings/payments"))
    assert "Connect Stripe" in page and "Acme Coffee BV" not in page
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "stripe.disconnected")) == 1
    # Disconnected rows don't block connecting again.
    assert _connect(client).status_code == 303
    assert len(_connections()) == 2
    assert client.post(f"/settings/payments/stripe/{row.id}/disconnect").status_code == 404


def test_k5_share_and_embed_warn_without_a_live_processor_and_offer_the_test_link(client, owner):
    link = make_link(owner)
    for path in (f"/links/{link.id}/share", f"/links/{link.id}/embed", f"/links/{link.id}/created"):  # B11 too
        response = client.get(path)
        soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
        warning = soup.select_one(".alert--warning")
        assert warning is not None and "can't take payments yet" in warning.get_text()
        assert warning.find("a", string="Open test checkout")["href"].startswith(f"/pay/{link.slug}/test")
    _connect(client, TEST_SECRET, TEST_PUBLISHABLE)  # test keys are no live processor
    assert "can't take payments yet" in page_text(client.get(f"/links/{link.id}/share"))
    _connect(client)
    for path in (f"/links/{link.id}/share", f"/links/{link.id}/embed", f"/links/{link.id}/created"):  # B11 too
        assert "can't take payments yet" not in page_text(client.get(path))


def test_k5_rotate_keys_reencrypts_with_the_newest_key(app, client, owner, runner):
    _connect(client)
    before = db.session.execute(text("SELECT secret_key_encrypted FROM stripe_connections")).scalar_one()
    app.config["KASSA_ENCRYPTION_KEYS"] = [NEW_KEY, OLD_KEY]
    result = runner.invoke(args=["kassa", "rotate-keys"])
    assert result.exit_code == 0 and "Re-encrypted 1 stored secret" in result.output
    db.session.rollback()
    after = db.session.execute(text("SELECT secret_key_encrypted FROM stripe_connections")).scalar_one()
    assert after != before
    app.config["KASSA_ENCRYPTION_KEYS"] = [NEW_KEY]
    assert secrets_box.decrypt(after) == SECRET
    app.config["KASSA_ENCRYPTION_KEYS"] = [OLD_KEY]
    with pytest.raises(secrets_box.InvalidToken):
        secrets_box.decrypt(after)


def test_k5_encryption_keys_from_the_environment_or_generated_once_in_instance(tmp_path, monkeypatch):
    monkeypatch.delenv("KASSA_SECRET_KEY", raising=False)
    monkeypatch.setenv("KASSA_ENCRYPTION_KEYS", f" {NEW_KEY}, {OLD_KEY} ")
    assert build_config(tmp_path / "a")["KASSA_ENCRYPTION_KEYS"] == [NEW_KEY, OLD_KEY]
    monkeypatch.delenv("KASSA_ENCRYPTION_KEYS")
    config = build_config(tmp_path / "b")
    (generated,) = config["KASSA_ENCRYPTION_KEYS"]
    Fernet(generated.encode())  # a valid Fernet key
    assert generated != config["SECRET_KEY"]
    assert build_config(tmp_path / "b")["KASSA_ENCRYPTION_KEYS"] == [generated]
    assert oct((tmp_path / "b" / "encryption_key").stat().st_mode & 0o777) == "0o600"


def test_k5_no_global_stripe_api_key(client, owner):
    _connect(client)
    assert stripe.api_key is None
    site = Path(__file__).resolve().parents[2] / "site"
    offenders = [str(path) for path in site.rglob("*.py") if re.search(r"stripe\.api_key\s*=", path.read_text())]
    assert offenders == []


def test_k5_ten_connects_at_once_store_one_connection_and_tell_the_rest(app, owner):
    """K5 under concurrency: ten submits of the same keys at the same moment (a double click, two tabs) leave
    exactly one active connection; every other gets the "already connected" answer, none a server error."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from kassa.actor import Actor
    from kassa.errors import ValidationFailed
    from kassa.models import User

    barrier = threading.Barrier(10)
    user_id, account_id = owner.id, owner.account_id  # read here: `owner` belongs to this thread's session
    db.session.rollback()  # and this thread holds no transaction while the others write

    def connect_once() -> str:
        with app.app_context():
            try:
                actor = Actor(user=db.session.get(User, user_id), account_id=account_id)
                barrier.wait(timeout=30)
                try:
                    stripe_connect.connect(actor, SECRET, PUBLISHABLE)
                    return "connected"
                except ValidationFailed as exc:
                    return exc.message
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = [f.result(timeout=120) for f in [pool.submit(connect_once) for _ in range(10)]]

    assert answers.count("connected") == 1, answers
    assert all("already connected in live mode" in a for a in answers if a != "connected")
    db.session.rollback()
    assert [row.mode for row in _connections()] == ["live"]
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "stripe.connected")) == 1


def test_k5_the_same_merchant_reconnects_after_disconnecting(client, owner):
    """Legitimate repeat use: disconnect, then connect the same keys again works; both rows stay."""
    assert _connect(client).status_code == 303
    (row,) = _connections()
    client.post(f"/settings/payments/stripe/{row.id}/disconnect")
    assert _connect(client).status_code == 303
    rows = _connections()
    assert len(rows) == 2 and rows[0].disconnected_at is not None and rows[1].disconnected_at is None
    assert "Acme Coffee BV" in page_text(client.get("/settings/payments"))
