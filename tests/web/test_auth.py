"""Sign-up, login, throttling, logout and password reset (issue 3; A1, A2)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from bs4 import BeautifulSoup
from sqlalchemy import select

from kassa.clock import now
from kassa.extensions import db
from kassa.models import Account, AuditEvent, Role, User
from tests.factories import PASSWORD, make_merchant
from tests.support.app import extract_link, log_in, page_text, run_outbox


def _signup(client, **overrides):
    data = {
        "company_name": "Acme Bikes",
        "name": "Ada Owner",
        "email": "ada@acme.example",
        "password": "a long enough password",
        "country": "NL",
        "currency": "eur",
        "timezone": "Europe/Amsterdam",
        "language": "nl",
    }
    data.update(overrides)
    return client.post("/signup", data=data)


def _field_error(html: str, field: str) -> str:
    node = BeautifulSoup(html, "html.parser").find(id=f"f-{field}-error")
    return node.get_text(" ", strip=True) if node else ""


def test_signup_creates_account_and_super_admin(client, mailbox):
    # H12: the form answers "check your inbox"; the emailed link creates the account (one click more).
    response = _signup(client)
    assert response.status_code == 200
    assert "Check your inbox" in page_text(response)
    assert db.session.scalar(select(db.func.count()).select_from(Account)) == 0
    run_outbox()
    link = extract_link(mailbox.text_of(mailbox.to("ada@acme.example")[0]), "/signup/confirm/")
    assert "Acme Bikes" in page_text(client.get(link))
    response = client.post(link)
    assert response.status_code == 303
    user = db.session.scalar(select(User).where(User.email == "ada@acme.example"))
    assert user.role == Role.SUPER_ADMIN.value
    account = db.session.get(Account, user.account_id)
    assert (account.name, account.country, account.default_currency, account.timezone) == (
        "Acme Bikes", "NL", "EUR", "Europe/Amsterdam",
    )
    # Logged in right away: the dashboard greets the new owner.
    home = client.get("/")
    assert home.status_code == 200
    assert "Ada Owner" in page_text(home)
    assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.account_id == account.id)) == "account.created"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"email": ""}, "email", "Enter an email"),
        ({"password": "short"}, "password", "at least 10"),
        ({"password": "x" * 300}, "password", "at most 256"),
        ({"company_name": "   "}, "company_name", "company name"),
        ({"company_name": "C" * 201}, "company_name", "at most 200"),
        ({"currency": "XYZ"}, "currency", "currency"),
        ({"country": "ZZ"}, "country", "country"),
    ],
)
def test_signup_rejects_bad_input_at_the_field_and_creates_nothing(client, overrides, field, message):
    response = _signup(client, **overrides)
    assert response.status_code == 422
    assert message.lower() in _field_error(response.get_data(as_text=True), field).lower()
    assert db.session.scalar(select(db.func.count()).select_from(Account)) == 0


def test_signup_with_taken_email_is_refused(client, mailbox):
    # H12: refused by email to the address, not on the page (which would tell anyone the address has a login).
    make_merchant(email="taken@shop.example")
    response = _signup(client, email="TAKEN@shop.example")
    assert response.status_code == 200
    assert "Check your inbox" in page_text(response)
    assert db.session.scalar(select(db.func.count()).select_from(Account)) == 1
    run_outbox()
    [message] = mailbox.to("taken@shop.example")
    assert "already have a Kassa account" in message["Subject"]


def test_login_and_wrong_password_message(client):
    make_merchant(email="owner@shop.example")
    bad = client.post("/login", data={"email": "owner@shop.example", "password": "wrong password!"})
    assert bad.status_code == 401
    assert "don't match" in page_text(bad)
    assert client.get("/").status_code == 302  # still logged out
    good = client.post("/login", data={"email": "Owner@Shop.example ", "password": PASSWORD})
    assert good.status_code == 303
    assert client.get("/").status_code == 200


def test_login_redirect_only_to_own_site(client):
    make_merchant(email="owner@shop.example")
    response = client.post(
        "/login", data={"email": "owner@shop.example", "password": PASSWORD, "next": "https://evil.example/x"}
    )
    assert response.headers["Location"] == "/"
    client.post("/logout")
    response = client.post(
        "/login", data={"email": "owner@shop.example", "password": PASSWORD, "next": "//evil.example"}
    )
    assert response.headers["Location"] == "/"


def test_login_throttled_after_ten_failures_per_email_and_ip(client):
    make_merchant(email="owner@shop.example")
    for _ in range(10):
        assert client.post("/login", data={"email": "owner@shop.example", "password": "nope nope"}).status_code == 401
    blocked = client.post("/login", data={"email": "owner@shop.example", "password": PASSWORD})
    assert blocked.status_code == 429
    assert "Too many failed attempts" in page_text(blocked)
    # Another address (another IP) is not blocked by this IP's failures.
    other = client.post(
        "/login", data={"email": "owner@shop.example", "password": PASSWORD}, environ_base={"REMOTE_ADDR": "10.0.0.9"}
    )
    assert other.status_code == 303


def test_login_throttle_per_account_from_any_ip(app, client):
    app.config["KASSA_LOGIN_ACCOUNT_LIMIT"] = "5 per hour"
    make_merchant(email="owner@shop.example")
    for i in range(5):
        client.post("/login", data={"email": "owner@shop.example", "password": "bad password"},
                    environ_base={"REMOTE_ADDR": f"10.1.0.{i}"})
    blocked = client.post("/login", data={"email": "owner@shop.example", "password": PASSWORD},
                          environ_base={"REMOTE_ADDR": "10.2.0.1"})
    assert blocked.status_code == 429


def test_successful_logins_do_not_count_towards_the_throttle(client):
    make_merchant(email="owner@shop.example")
    for _ in range(12):
        log_in(client, "owner@shop.example", PASSWORD)
        client.post("/logout")


def test_logout_really_ends_the_session(client):
    make_merchant(email="owner@shop.example")
    log_in(client, "owner@shop.example", PASSWORD)
    with client.session_transaction() as sess:
        stolen = dict(sess)
    client.post("/logout")
    # Replaying the cookie contents from before the logout must not log anyone in.
    with client.session_transaction() as sess:
        sess.update(stolen)
    assert client.get("/").status_code == 302


def test_session_cookie_flags(client):
    make_merchant(email="owner@shop.example")
    response = client.post("/login", data={"email": "owner@shop.example", "password": PASSWORD})
    cookie = response.headers.get("Set-Cookie")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


def test_password_reset_through_email_works_once(client, mailbox):
    make_merchant(email="owner@shop.example")
    response = client.post("/forgot-password", data={"email": "owner@shop.example"})
    assert response.status_code == 200
    run_outbox()
    [message] = mailbox.to("owner@shop.example")
    link = extract_link(mailbox.text_of(message), "/reset-password/")
    assert client.get(link).status_code == 200
    done = client.post(link, data={"password": "my new password 1", "password_confirm": "my new password 1"})
    assert done.status_code == 303
    log_in(client, "owner@shop.example", "my new password 1")
    client.post("/logout")
    # The same link a second time: refused, and the password is not changed again.
    again = client.post(link, data={"password": "another password 2", "password_confirm": "another password 2"})
    assert again.status_code == 400
    assert "already been used" in page_text(again)
    log_in(client, "owner@shop.example", "my new password 1")


def test_password_reset_link_expires_after_an_hour(client, mailbox):
    make_merchant(email="owner@shop.example")
    client.post("/forgot-password", data={"email": "owner@shop.example"})
    run_outbox()
    link = extract_link(mailbox.text_of(mailbox.to("owner@shop.example")[0]), "/reset-password/")
    with time_machine.travel(now() + timedelta(hours=1, minutes=1)):
        response = client.post(link, data={"password": "my new password 1", "password_confirm": "my new password 1"})
    assert response.status_code == 400
    assert "expired" in page_text(response)
    log_in(client, "owner@shop.example", PASSWORD)


def test_password_reset_does_not_reveal_unknown_emails(client, mailbox):
    known = client.post("/forgot-password", data={"email": "nobody@shop.example"})
    assert known.status_code == 200
    assert "If an account uses" in page_text(known)
    run_outbox()
    # H12: the address gets an email either way (this one has no link in it).
    [message] = mailbox.to("nobody@shop.example")
    assert "/reset-password/" not in mailbox.text_of(message)


def test_tampered_reset_link_refused(client):
    response = client.get("/reset-password/not-a-real-token")
    assert response.status_code == 400
    assert "not valid" in page_text(response)
