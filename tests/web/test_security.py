"""Security: CSRF on unsafe requests, strict headers, client IPs behind proxies (issue 3)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import Account
from tests.factories import PASSWORD, make_merchant


@pytest.fixture
def app_config():
    return {"WTF_CSRF_ENABLED": True}


def _token(client, path="/login") -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_csrf_refused_without_token(client):
    make_merchant(email="owner@shop.example")
    response = client.post("/login", data={"email": "owner@shop.example", "password": PASSWORD})
    assert response.status_code == 400
    assert "expired or was sent from another site" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # not logged in


def test_csrf_accepted_with_form_token_and_htmx_header(client):
    owner = make_merchant(email="owner@shop.example")
    token = _token(client)
    response = client.post("/login", data={"email": "owner@shop.example", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303
    # htmx sends the token in a header (hx-headers on <body>), not in the form.
    page = client.get("/settings/branding").get_data(as_text=True)
    header_token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    saved = client.post("/settings/branding", data={"brand_color": "#112233"}, headers={"X-CSRFToken": header_token})
    assert saved.status_code == 303
    assert db.session.get(Account, owner.account_id).brand_color == "#112233"
    refused = client.post("/settings/branding", data={"brand_color": "#445566"})
    assert refused.status_code == 400
    assert db.session.get(Account, owner.account_id).brand_color == "#112233"


def test_security_headers_on_every_page(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'nonce-" in csp and "'unsafe-inline'" not in csp.split("style-src")[0]
    assert "object-src 'none'" in csp
    assert "base-uri 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    # Every script tag carries this response's nonce; there is no inline script at all.
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    html = response.get_data(as_text=True)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts
    for attrs, body in scripts:
        assert f'nonce="{nonce}"' in attrs
        assert "src=" in attrs and body.strip() == ""
    assert "nonce" in html and nonce != re.search(r"'nonce-([^']+)'", client.get("/login").headers["Content-Security-Policy"]).group(1)


def test_no_inline_event_handlers_or_style_attributes_on_foundation_pages(client):
    make_merchant(email="owner@shop.example")
    client.post("/login", data={"email": "owner@shop.example", "password": PASSWORD, "csrf_token": _token(client)})
    for path in ["/", "/settings/account", "/settings/branding", "/settings/users", "/settings/emails", "/login"]:
        html = client.get(path).get_data(as_text=True)
        assert not re.search(r"\son[a-z]+=", html), path
        assert not re.search(r"\sstyle=", html), path


def test_hsts_and_secure_cookie_behind_https(database_url, tmp_path, monkeypatch):
    from kassa import create_app

    monkeypatch.setenv("KASSA_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("KASSA_BASE_URL", "https://pay.example.com")
    monkeypatch.setenv("KASSA_SECRET_KEY", "a production secret key " * 3)  # G8: required with https
    monkeypatch.setenv("KASSA_ENCRYPTION_KEYS", "n0HqeGG7C8yKGS-wZuPMM6yKKgW3Rt7y6L1v8Y1nQ0M=")
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-kassa"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    with app.test_client() as client:
        assert "max-age=31536000" in client.get("/login").headers["Strict-Transport-Security"]
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(
    ("trusted", "header", "remote", "expected"),
    [
        (0, "1.2.3.4", "10.0.0.1", "10.0.0.1"),  # no proxies trusted: header ignored
        (1, "1.2.3.4", "10.0.0.1", "1.2.3.4"),
        (1, "6.6.6.6, 1.2.3.4", "10.0.0.1", "1.2.3.4"),  # the client can't forge past our proxy
        (2, "6.6.6.6, 1.2.3.4, 10.0.0.2", "10.0.0.1", "1.2.3.4"),
    ],
)
def test_client_ip_from_trusted_proxies_only(app, trusted, header, remote, expected):
    from kassa.netutil import client_ip

    app.config["KASSA_TRUSTED_PROXIES"] = trusted
    with app.test_request_context(headers={"X-Forwarded-For": header}, environ_base={"REMOTE_ADDR": remote}):
        assert client_ip() == expected


def test_unknown_page_is_404_with_a_message(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)
    assert db.session.scalar(select(db.func.count()).select_from(Account)) == 0
