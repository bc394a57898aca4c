"""Q12: the checkout GET's per-request work made cheaper without changing what it sends or checks: the CSRF token
(Flask-WTF's, from a serializer and derived key kept per secret key), the session cookie (signed with keys
derived once), the security headers (the same set, what a view set itself still wins)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import g, session
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import generate_csrf as flask_wtf_generate_csrf
from flask_wtf.csrf import validate_csrf
from itsdangerous import URLSafeTimedSerializer
from wtforms import ValidationError

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Account, CheckoutSession, Payment, PaymentLink
from kassa.security import generate_csrf
from kassa.services.checkout import checkout as checkout_service
from tests.support.checkout import buyer_form, start_checkout
from tests.support.checkout_flow import checkout_for, count, deactivate, make_shop

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app_config() -> dict:
    return {"WTF_CSRF_ENABLED": True}


def test_q12_the_csrf_token_is_flask_wtfs_own_and_checked_by_it(app):
    with app.test_request_context("/"):
        token = generate_csrf()
        assert generate_csrf() == token == flask_wtf_generate_csrf()  # one token per request, shared with forms
        raw = session["csrf_token"]
        assert re.fullmatch(r"[0-9a-f]{40}", raw)
        validate_csrf(token)  # Flask-WTF accepts it
        plain = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token")
        assert plain.loads(token) == raw  # signed exactly as Flask-WTF signs
    with app.test_request_context("/"):
        g.pop("csrf_token", None)  # the tests' app context outlives a request's: as a new request starts
        session["csrf_token"] = "another session's raw token"
        with pytest.raises(ValidationError):
            validate_csrf(token)  # another browser's token is refused
        assert plain.loads(generate_csrf()) == "another session's raw token"  # a session's own token is reused


def test_q12_the_checkout_session_cookie_loads_with_flasks_own_serializer(app, client):
    _owner, link = make_shop()
    page = client.get(start_checkout(client, link.slug))
    assert page.status_code == 200
    cookie = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    assert cookie is not None
    plain = SecureCookieSessionInterface().get_signing_serializer(app)
    assert plain.loads(cookie.value)["csrf_token"] == URLSafeTimedSerializer(
        app.secret_key, salt="wtf-csrf-token").loads(CSRF_FIELD.search(page.get_data(as_text=True)).group(1))


def test_q12_the_cached_checkout_page_still_needs_its_own_csrf_token_to_pay(app, client):
    _owner, link = make_shop()
    path = start_checkout(client, link.slug)
    token = CSRF_FIELD.search(client.get(path).get_data(as_text=True)).group(1)

    stranger = app.test_client()  # another browser, holding this page's token but not its session
    refused = stranger.post(path, data={**buyer_form(), "csrf_token": token})
    missing = client.post(path, data=buyer_form())
    assert refused.status_code == 400 and missing.status_code == 400
    assert count(Payment) == 0

    paid = client.post(path, data={**buyer_form(), "csrf_token": token})  # the legitimate buyer still pays
    assert paid.status_code == 303 and count(Payment) == 1


def test_q12_the_checkout_page_sends_every_security_header_once(client):
    _owner, link = make_shop()
    response = client.get(start_checkout(client, link.slug))
    headers = response.headers
    for name in ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options",
                 "Cross-Origin-Opener-Policy", "Permissions-Policy"):
        assert len(headers.getlist(name)) == 1, name
    csp = headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'nonce="{nonce}"' in response.get_data(as_text=True) or f"nonce={nonce}" in response.get_data(as_text=True)
    assert "frame-ancestors 'none'" in csp and headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"


STRING_LITERAL = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`""")


def test_q12_the_bundles_js_rewrites_touch_no_string(app):
    """assets._jsmin drops a lone arrow parameter's parentheses and writes `const` as `let`: safe only while no
    string of the buyer scripts holds such text (their regular expressions hold neither)."""
    from kassa.assets import BUNDLES, STATIC, bundle_bytes

    for name, (content_type, sources) in BUNDLES.items():
        if content_type != "text/javascript":
            continue
        for source in sources:
            text = (STATIC / source).read_text()
            code = "\n".join(line.split("//", 1)[0] if "://" not in line else line for line in text.splitlines())
            for literal in STRING_LITERAL.findall(code):
                assert "=>" not in literal and "const" not in literal, (source, literal)
        built = bundle_bytes(name).decode()
        assert "const " not in built and not re.search(r"(?<![\w$])\(\w+\)=>", built)


def test_q12_the_js_rewrites_keep_the_program():
    from kassa.assets import _jsmin

    assert _jsmin("const f = (x) => x, g = async (e) => e, h = (a, b) => a;\nF.on(\"submit\", async (e) => f(e));") == (
        'let f=x=>x,g=async(e)=>e,h=(a,b)=>a;F.on("submit",async(e)=>f(e));')


# -- the cached form without ORM objects (page_state, PrecompiledRead) --------------------------------------


def _token_of(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def test_q12_a_cached_form_is_served_without_loading_the_checkout(app, client, monkeypatch):
    """The second page view of a link is filled from the cached copy by one precompiled read: the view that
    loads the session's ORM objects is never called (and would fail the request if it were)."""
    _owner, link = make_shop()
    first = client.get(start_checkout(client, link.slug))
    assert first.status_code == 200

    def no_orm(_token):
        raise AssertionError("the cached form loaded the checkout's ORM objects")

    monkeypatch.setattr(checkout_service, "checkout_view", no_orm)
    second_path = start_checkout(client, link.slug)
    second = client.get(second_path)
    assert second.status_code == 200
    assert f'action="/checkout/{_token_of(second_path)}"' in second.get_data(as_text=True)


def test_q12_page_state_shows_the_form_only_when_the_page_would(app, client):
    """page_state decides alone whether the cached form may be served: exactly when the session is open, not
    expired, has no attempt with the processor and its link takes payments (L19, Q5); otherwise the full view
    decides and shows the right page."""
    owner, link = make_shop()
    path = start_checkout(client, link.slug)
    token = _token_of(path)
    with app.test_request_context("/"):
        assert checkout_service.page_state(token).shows_form
        assert checkout_service.page_state("no-such-token") is None

    checkout = checkout_for(path)
    with write_transaction(db.session) as session:  # past its expiry
        session.get(CheckoutSession, checkout.id).expires_at = now() - timedelta(seconds=1)
    with app.test_request_context("/"):
        assert not checkout_service.page_state(token).shows_form
    assert client.get(path).status_code == 410

    fresh = start_checkout(client, link.slug)
    with write_transaction(db.session) as session:  # the link's end date has passed (Q5)
        session.get(PaymentLink, link.id).ends_at = now() - timedelta(seconds=1)
    with app.test_request_context("/"):
        assert not checkout_service.page_state(_token_of(fresh)).shows_form
    assert client.get(fresh).status_code == 410

    with write_transaction(db.session) as session:  # open again, then deactivated (L19)
        session.get(PaymentLink, link.id).ends_at = None
    again = start_checkout(client, link.slug)
    assert client.get(again).status_code == 200
    deactivate(owner, link)
    with app.test_request_context("/"):
        assert not checkout_service.page_state(_token_of(again)).shows_form
    assert client.get(again).status_code == 410


def test_q12_a_cached_form_follows_every_edit_of_the_account(app, client):
    """The cache key holds the whole account row as the database has it: a renamed business shows at once on
    the next page view, from the same session (the link snapshot is frozen; the account is not)."""
    _owner, link = make_shop("Old Name Roasters")
    path = start_checkout(client, link.slug)
    assert "Old Name Roasters" in client.get(path).get_data(as_text=True)
    with write_transaction(db.session) as session:
        session.get(Account, link.account_id).name = "New Name Roasters"
    page = client.get(path).get_data(as_text=True)
    assert "New Name Roasters" in page and "Old Name Roasters" not in page


@pytest.mark.parametrize("value", [
    {"csrf_token": "a" * 40},
    {"csrf_token": "b" * 40, "buyer_lang": "nl", "seen": 1733500000.25, "n": 3, "none": None},
    {},
    {"_fresh": True, "flag": False},  # booleans take Flask's own path
    {" t": "looks like a tag"},  # a key that could be read as a tag
    {"bytes": b"raw", "when": datetime(2026, 12, 6, tzinfo=UTC)},  # tagged values
    {"nested": {"a": [1, "x"]}},
    {"unicode": "café ☕"},
])
def test_q12_the_session_serializer_writes_what_flasks_writes(app, value):
    """security._SessionJSON's shortcut writes, for the plain sessions a buyer has, exactly the JSON Flask's
    TaggedJSONSerializer writes, and everything else through Flask's own path: cookies stay interchangeable."""
    from flask.json.tag import TaggedJSONSerializer

    from kassa.security import SessionInterface

    with app.app_context():
        ours, flasks = SessionInterface.serializer, TaggedJSONSerializer()
        assert ours.dumps(value) == flasks.dumps(value)
        assert flasks.loads(ours.dumps(value)) == value
