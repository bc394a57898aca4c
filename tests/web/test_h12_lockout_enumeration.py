"""H12: strangers' failed logins don't lock out a browser that has logged in before (OWASP device cookies);
sign-up and forgot-password answer the same whether or not the address has a login; no Server-Timing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from kassa.extensions import db
from kassa.models import Account, EmailMessage, User
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in, page_text, run_outbox


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


def _strangers_fail(client, email: str, n: int) -> None:
    for i in range(n):
        response = client.post("/login", data={"email": email, "password": f"guess number {i}"},
                               environ_base={"REMOTE_ADDR": f"10.{i // 250}.{i % 250}.9"})
        assert response.status_code in (401, 429)


def test_h12_known_browser_is_not_locked_out_by_strangers(app, client):
    """100 wrong passwords from 100 IPs lock the address for strangers (429), but the owner's browser, which
    logged in before, still logs in. The device cookie is HttpOnly."""
    owner = make_merchant(email="owner@shop.example")
    response = client.post("/login", data={"email": owner.email, "password": PASSWORD})
    assert "HttpOnly" in next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("kassa_device="))
    client.post("/logout")
    stranger = app.test_client()
    _strangers_fail(stranger, owner.email, 100)
    assert stranger.post("/login", data={"email": owner.email, "password": PASSWORD},
                         environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 429
    assert client.post("/login", data={"email": owner.email, "password": PASSWORD}).status_code == 303


def test_h12_known_browser_own_failures_are_limited_separately(app, client):
    """A known browser gets KASSA_LOGIN_DEVICE_LIMIT failures of its own; then it is throttled too, while the
    address is not locked for anyone else by them."""
    app.config["KASSA_LOGIN_DEVICE_LIMIT"] = "4 per 15 minutes"
    owner = make_merchant(email="owner@shop.example")
    log_in(client, owner.email, PASSWORD)
    client.post("/logout")
    for _ in range(4):
        assert client.post("/login", data={"email": owner.email, "password": "not it at all"}).status_code == 401
    assert client.post("/login", data={"email": owner.email, "password": PASSWORD}).status_code == 429
    other = app.test_client()
    assert other.post("/login", data={"email": owner.email, "password": PASSWORD},
                      environ_base={"REMOTE_ADDR": "10.8.8.8"}).status_code == 303


def test_h12_device_cookie_counts_only_for_its_own_address(app, client):
    """A browser known for one address gets no exemption for another address strangers have locked."""
    app.config["KASSA_LOGIN_ACCOUNT_LIMIT"] = "5 per hour"
    mine = make_merchant(email="me@shop.example")
    theirs = make_merchant(email="them@shop.example")
    log_in(client, mine.email, PASSWORD)
    client.post("/logout")
    _strangers_fail(app.test_client(), theirs.email, 5)
    assert client.post("/login", data={"email": theirs.email, "password": PASSWORD}).status_code == 429
    forged = app.test_client()
    forged.set_cookie("kassa_device", "eyJlIjoiMTIzIiwibiI6IjEyMyJ9.forged")
    assert forged.post("/login", data={"email": theirs.email, "password": PASSWORD},
                       environ_base={"REMOTE_ADDR": "10.7.7.7"}).status_code == 429


def _answer(response, email: str) -> tuple[int, str]:
    return response.status_code, page_text(response).replace(email, "<email>")


def _signup(client, email: str):
    return client.post("/signup", data={
        "company_name": "Probe Ltd", "name": "P", "email": email, "password": "a long enough password",
        "country": "NL", "currency": "EUR", "timezone": "UTC", "language": "en",
    })


def _emails_to(address: str) -> list[tuple[str | None, int]]:
    return [(e.account_id, len(e.to_addrs)) for e in db.session.scalars(select(EmailMessage)) if address in e.to_addrs]


def test_h12_signup_answers_the_same_whether_the_email_has_a_login(client, mailbox):
    """Same status, same page, one email to the address either way; the existing login's email says "you
    already have an account" and no second account is made."""
    make_merchant(email="known@shop.example")
    known = _answer(_signup(client, "known@shop.example"), "known@shop.example")
    unknown = _answer(_signup(client, "fresh@shop.example"), "fresh@shop.example")
    assert known == unknown
    assert known[0] == 200
    assert _emails_to("known@shop.example") == _emails_to("fresh@shop.example") == [(None, 1)]
    assert db.session.scalar(select(func.count()).select_from(Account)) == 1
    run_outbox()
    assert "already have a Kassa account" in mailbox.to("known@shop.example")[0]["Subject"]
    assert "/signup/confirm/" in mailbox.text_of(mailbox.to("fresh@shop.example")[0])


def test_h12_signup_confirmation_creates_the_account_once(client, mailbox):
    """The emailed link (GET shows, POST creates) makes the account and logs in; a second use is refused."""
    from tests.support.app import extract_link

    _signup(client, "fresh@shop.example")
    run_outbox()
    link = extract_link(mailbox.text_of(mailbox.to("fresh@shop.example")[0]), "/signup/confirm/")
    assert client.get(link).status_code == 200
    assert db.session.scalar(select(func.count()).select_from(User)) == 0
    assert client.post(link).status_code == 303
    assert client.get("/").status_code == 200
    client.post("/logout")
    again = client.post(link)
    assert again.status_code == 400 and "already been created" in page_text(again)
    assert db.session.scalar(select(func.count()).select_from(User)) == 1
    assert client.get(link[:-3] + "abc").status_code == 400


def test_h12_forgot_password_answers_the_same_whether_the_email_has_a_login(client):
    make_merchant(email="known@shop.example")
    known = _answer(client.post("/forgot-password", data={"email": "known@shop.example"}), "known@shop.example")
    unknown = _answer(client.post("/forgot-password", data={"email": "nobody@shop.example"}), "nobody@shop.example")
    assert known == unknown
    assert known[0] == 200
    assert len(_emails_to("known@shop.example")) == len(_emails_to("nobody@shop.example")) == 1


def test_h12_no_server_timing_header_outside_benchmarks(app, client):
    """No response carries Server-Timing (it would time the password check); the benchmarks switch it on."""
    owner = make_merchant(email="owner@shop.example")
    responses = [client.get("/login"), client.post("/login", data={"email": "x@y.example", "password": "nope nope"}),
                 client.post("/forgot-password", data={"email": "x@y.example"}), _signup(client, "z@y.example")]
    log_in(client, owner.email, PASSWORD)
    responses.append(client.get("/"))
    assert [r.headers.get("Server-Timing") for r in responses] == [None] * len(responses)
    app.config["KASSA_SERVER_TIMING"] = True
    assert client.get("/").headers.get("Server-Timing", "").startswith("app;dur=")
