"""Q12: a buyer's first visit to a checkout page (no cookie, no query, the page in the page cache) is answered by
blueprints/checkout_first_visit.py below Flask's request machinery. These tests hold it to Flask's own answer:
the same status, headers (names, order, values) and body, each with its own random values; a CSRF token and
session cookie the POST accepts; the same request id, metrics and access line; and Flask still answering
everything else, including any request once the app has a hook the first visit doesn't know."""

from __future__ import annotations

import logging
import re
import sqlite3
import time

import pytest
from flask import request_started
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from kassa import secrets_box
from kassa.blueprints import checkout_first_visit
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.metrics import REGISTRY
from kassa.models import Payment, StripeConnection
from kassa.security import _signer_once
from kassa.services.checkout import checkout as checkout_service
from tests.support.checkout import buyer_form, start_checkout
from tests.support.checkout_flow import count, make_shop

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
NONCE = re.compile(r"'nonce-([^']+)'")


@pytest.fixture
def app_config() -> dict:
    return {"WTF_CSRF_ENABLED": True}


@pytest.fixture
def flask_requests(app):
    """The paths Flask's own request handling answered (the first visit sends no request_started)."""
    seen: list[str] = []

    def record(_sender, **_extra):
        from flask import request

        seen.append(request.path)

    request_started.connect(record, app)
    yield seen
    request_started.disconnect(record, app)


def _first_visit(app, path: str, *, through_flask: bool = False, **kwargs):
    """GET `path` from a new browser (no cookie); `through_flask`: with the first-visit path turned off."""
    app.wsgi_app.enabled = not through_flask
    try:
        return app.test_client().get(path, **kwargs)
    finally:
        app.wsgi_app.enabled = True


def _opened(app, client, link, **kwargs) -> str:
    """A checkout of `link` whose page is in the cache (a first view renders it through Flask)."""
    path = start_checkout(client, link.slug, **kwargs)
    assert client.get(path).status_code == 200
    return start_checkout(client, link.slug, **kwargs)


def _normalized(app, response) -> tuple:
    """The response with its random values (nonce, CSRF token, request id, cookie, timing) named instead."""
    body = response.get_data(as_text=True)
    nonce = NONCE.search(response.headers["Content-Security-Policy"]).group(1)
    csrf = CSRF_FIELD.search(body).group(1)
    headers = []
    for name, value in response.headers:
        value = value.replace(nonce, "NONCE")
        if name == "X-Request-Id":
            value = "ID"
        elif name == "Server-Timing":
            value = re.sub(r"dur=[\d.]+", "dur=T", value)
        elif name == "Set-Cookie":
            cookie_name, rest = value.split("=", 1)
            signed, attributes = rest.split(";", 1)
            session = SecureCookieSessionInterface().get_signing_serializer(app).loads(signed)
            assert set(session) == {"csrf_token"}  # the raw token behind the page's form token
            assert URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").loads(csrf) == session["csrf_token"]
            value = f"{cookie_name}=COOKIE;{attributes}"
        headers.append((name, value))
    return response.status_code, headers, body.replace(nonce, "NONCE").replace(csrf, "CSRF")


def _same_as_flask(app, path: str, flask_requests: list[str], **kwargs) -> None:
    before = len(flask_requests)
    fast = _first_visit(app, path, **kwargs)
    assert len(flask_requests) == before, "the first visit went through Flask"
    slow = _first_visit(app, path, through_flask=True, **kwargs)
    assert flask_requests[before:] == [path]
    assert _normalized(app, fast) == _normalized(app, slow)
    assert fast.status_code == 200 and "Set-Cookie" in fast.headers


def test_q12_a_first_visit_sends_what_flask_sends(app, client, flask_requests):
    _owner, link = make_shop()
    path = _opened(app, client, link)
    _same_as_flask(app, path, flask_requests)
    _same_as_flask(app, path, flask_requests, headers={"Accept-Language": "nl-BE,nl;q=0.9"})  # C7: the browser's
    _same_as_flask(app, path, flask_requests, headers={"Accept-Language": "fr"})


def test_q12_a_first_visit_of_a_thank_you_link_allows_its_origin_as_flask_does(app, client, flask_requests):
    """L13/H11: the thank-you page's origin in form-action, from what the page cache keeps beside the page."""
    _owner, link = make_shop(confirmation="redirect", redirect_url="https://shop.example/thanks")
    path = _opened(app, client, link)
    _same_as_flask(app, path, flask_requests)
    assert "form-action 'self' https://shop.example;" in _first_visit(app, path).headers["Content-Security-Policy"]


def test_q12_a_first_visit_of_a_live_stripe_page_allows_stripe_as_flask_does(app, client, flask_requests):
    """K6: a live page of an account connected to Stripe: the Payment Element's origins in its CSP."""
    owner, link = make_shop("Live Shop")
    with write_transaction(db.session) as session:
        secret = "sk_live_51KassaShop0000000000000000000000000000000000abcd"
        session.add(StripeConnection(account_id=owner.account_id, mode="live",
                                     secret_key_encrypted=secrets_box.encrypt(secret), secret_key_last4=secret[-4:],
                                     publishable_key="pk_live_51KassaShop000000000000000000000000000000000000001",
                                     stripe_account_id=f"acct_{owner.account_id}"))
    path = _opened(app, client, link, mode="live")
    _same_as_flask(app, path, flask_requests)
    assert "https://js.stripe.com" in _first_visit(app, path).headers["Content-Security-Policy"]


@pytest.mark.parametrize("app_config", [{
    "WTF_CSRF_ENABLED": True, "KASSA_HTTPS": True, "SESSION_COOKIE_SECURE": True, "SESSION_COOKIE_NAME": "__Host-kassa",
    "KASSA_SERVER_TIMING": True, "KASSA_TRUSTED_PROXIES": 1}])
def test_q12_a_first_visit_over_https_behind_a_proxy_sends_what_flask_sends(app, client, flask_requests):
    """HSTS, the __Host- cookie with Secure, Server-Timing (benchmarks), and G4's request id from the proxy."""
    _owner, link = make_shop()
    path = _opened(app, client, link)
    proxied = {"X-Forwarded-For": "203.0.113.9", "X-Request-Id": "nginx-7f3a"}
    _same_as_flask(app, path, flask_requests, headers=proxied)
    response = _first_visit(app, path, headers=proxied)
    assert response.headers["X-Request-Id"] == "nginx-7f3a"
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert response.headers["Set-Cookie"].startswith("__Host-kassa=") and "Secure" in response.headers["Set-Cookie"]
    spoofed = _first_visit(app, path, headers={"X-Request-Id": "nginx-7f3a"})  # not through the proxy
    assert re.fullmatch(r"[0-9a-f]{32}", spoofed.headers["X-Request-Id"])


def test_q12_a_first_visits_csrf_token_pays_only_in_its_own_browser(app, client, flask_requests):
    _owner, link = make_shop()
    path = _opened(app, client, link)
    buyer = app.test_client()
    before = len(flask_requests)
    token = CSRF_FIELD.search(buyer.get(path).get_data(as_text=True)).group(1)
    assert len(flask_requests) == before  # answered as a first visit

    refused = app.test_client().post(path, data={**buyer_form(), "csrf_token": token})  # no session: refused
    assert refused.status_code == 400 and count(Payment) == 0
    paid = buyer.post(path, data={**buyer_form(), "csrf_token": token})
    assert paid.status_code == 303 and count(Payment) == 1


def test_q12_flask_answers_everything_but_a_cached_first_visit(app, client, flask_requests):
    _owner, link = make_shop()
    fresh = start_checkout(client, link.slug)
    assert _first_visit(app, fresh).status_code == 200 and flask_requests[-1] == fresh  # not cached yet: renders
    path = start_checkout(client, link.slug)
    browser = app.test_client()
    assert browser.get(path).status_code == 200 and flask_requests[-1] != path  # cached: the first visit
    assert browser.get(path).status_code == 200 and flask_requests[-1] == path  # with its cookie: Flask
    for query in ({"lang": "nl"}, {"x": "1"}):
        flask_requests.clear()
        assert _first_visit(app, path, query_string=query).status_code == 200 and flask_requests == [path]
    flask_requests.clear()
    assert app.test_client().head(path).status_code == 200 and flask_requests == [path]
    flask_requests.clear()
    assert _first_visit(app, "/checkout/no-such-token").status_code == 404 and flask_requests == ["/checkout/no-such-token"]


def test_q12_a_failing_first_visit_is_answered_by_flask(app, client, flask_requests, monkeypatch):
    """Whatever goes wrong (here: the database read) is Flask's to answer, with its error page and log line."""
    _owner, link = make_shop()
    path = _opened(app, client, link)

    def broken(_token, _engine=None):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(checkout_service, "page_state", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = _first_visit(app, path)
    assert response.status_code == 500 and flask_requests[-1] == path


def test_q12_a_first_visit_is_counted_and_timed_like_any_request(app, client, flask_requests):
    """G4: the latency histogram of checkout.page counts it, under the same labels as Flask's path."""
    _owner, link = make_shop()
    path = _opened(app, client, link)
    labels = {"route": "checkout.page", "method": "GET", "status": "2xx"}

    def counted() -> float:
        return REGISTRY.get_sample_value("kassa_http_request_duration_seconds_count", labels) or 0.0

    before = counted()
    _first_visit(app, path)
    assert counted() == before + 1
    _first_visit(app, path, through_flask=True)
    assert counted() == before + 2


@pytest.fixture
def _json_logs_restored():
    """KASSA_LOG_FORMAT=json sets up the root logger, which outlives this test's app: put it back afterwards."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if h.get_name() == "kassa-json"]:
        root.removeHandler(handler)
    root.setLevel(level)
    logging.getLogger("werkzeug").setLevel(logging.NOTSET)


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True, "KASSA_LOG_FORMAT": "json"}])
def test_q12_a_first_visit_writes_flasks_access_line(app, client, flask_requests, caplog, _json_logs_restored):
    _owner, link = make_shop()
    path = _opened(app, client, link)
    lines = []
    for through_flask in (False, True):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="kassa.access"):
            _first_visit(app, path, through_flask=through_flask)
        (record,) = [r for r in caplog.records if r.name == "kassa.access"]
        lines.append((record.getMessage(), record.route, record.method, record.path, record.status))
    assert lines[0] == lines[1] == (f"GET {path} 200", "checkout.page", "GET", path, 200)


def test_q12_an_unknown_hook_turns_the_first_visit_off(app, client, flask_requests):
    """A hook the first visit doesn't account for would be skipped by it: Flask answers instead, and
    `unknown_setup` names the hook (this test then tells whoever added it to account for it in KNOWN_HOOKS)."""
    assert checkout_first_visit.unknown_setup(app) == []  # the app as built: every hook accounted for
    _owner, link = make_shop()
    path = _opened(app, client, link)
    app.before_request_funcs.setdefault(None, []).append(_a_new_hook)
    try:
        assert checkout_first_visit.unknown_setup(app) == [
            f"before_request_funcs[None]: {__name__}._a_new_hook"]
        flask_requests.clear()
        assert _first_visit(app, path).status_code == 200 and flask_requests == [path]
    finally:
        app.before_request_funcs[None].remove(_a_new_hook)
    flask_requests.clear()
    assert _first_visit(app, path).status_code == 200 and flask_requests == []


def _a_new_hook() -> None:
    return None


# Fixed values (a token's shape): random ones would give each xdist worker other test ids, which xdist refuses.
_TOKEN = "5f3a9c1e7b2d4086af19c3e5d7b90a2c4e6f8a1b"


@pytest.mark.parametrize("value", [_TOKEN, {"csrf_token": _TOKEN}, {"buyer_lang": "nl", "csrf_token": _TOKEN[::-1]},
                                   "a" * 200, {"k": "x" * 300}, [1, "two"], "café ☕"])
def test_q12_the_lean_signing_writes_itsdangerous_bytes(app, value, monkeypatch):
    """security._signer_once writes tokens in one function: byte for byte what itsdangerous writes, compressed
    payloads included (the long values), so Flask-WTF and Flask read them unchanged."""
    monkeypatch.setattr(time, "time", lambda: 1_796_600_000.75)
    for make in (lambda: URLSafeTimedSerializer("k" * 32, salt="wtf-csrf-token"),
                 lambda: SecureCookieSessionInterface().get_signing_serializer(app)):
        lean, plain = _signer_once(make()), make()
        token = lean.dumps(value)
        assert token == plain.dumps(value)
        assert plain.loads(token) == value


@pytest.mark.parametrize("value", ["a" * 60, {"k": "b" * 50}, "0" * 40])
def test_q12_a_short_payload_is_signed_uncompressed_and_reads_the_same(app, value, monkeypatch):
    """Up to UNCOMPRESSED_UP_TO bytes zlib is not tried (these compressible values would shrink): the token is
    the uncompressed form itsdangerous also writes and reads, so Flask-WTF and Flask check it unchanged."""
    monkeypatch.setattr(time, "time", lambda: 1_796_600_000.75)
    for make in (lambda: URLSafeTimedSerializer("k" * 32, salt="wtf-csrf-token"),
                 lambda: SecureCookieSessionInterface().get_signing_serializer(app)):
        lean, plain = _signer_once(make()), make()
        token = lean.dumps(value)
        assert plain.dumps(value).startswith(".") and not token.startswith(".")  # itsdangerous would compress
        assert plain.loads(token) == value  # its signature checked by itsdangerous itself


def test_q12_precompiled_reads_on_sqlite_use_one_connection_per_thread_and_see_every_commit(app, client):
    """database._sqlite_reader: on SQLite each thread reads the checkout's state on its own connection, taken
    from the pool once (no pool round trip per read), which sees what was committed since, holds no read
    snapshot between reads, and is closed with the engine. Other databases keep the pool (None here)."""
    import threading

    from kassa.database import _sqlite_reader

    engine = db.engine
    reader = _sqlite_reader(engine)
    if engine.dialect.name != "sqlite":
        assert reader is None
        return
    assert _sqlite_reader(engine) is reader
    other = []
    thread = threading.Thread(target=lambda: other.append(_sqlite_reader(engine)))
    thread.start()
    thread.join()
    assert other[0] is not reader

    _owner, link = make_shop("Before Roasters")
    path = _opened(app, client, link)
    token = path.rsplit("/", 1)[-1]
    assert checkout_service.page_state(token, engine).shows_form
    from datetime import timedelta

    from kassa.clock import now
    from kassa.models import CheckoutSession

    with write_transaction(db.session) as session:  # a write after the reader's last read: seen at once
        checkout = session.query(CheckoutSession).filter_by(token=token).one()
        checkout.expires_at = now() - timedelta(seconds=1)
    assert not checkout_service.page_state(token, engine).shows_form
    assert not reader.in_transaction  # nothing held between reads (a writer's checkpoint isn't kept waiting)

    engine.dispose()
    with pytest.raises(sqlite3.ProgrammingError):  # closed with the engine
        reader.execute("SELECT 1")
    assert _sqlite_reader(engine) is not reader
