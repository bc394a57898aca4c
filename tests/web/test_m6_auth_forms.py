"""M6: the sign-up, login, password and invitation forms through WTForms — the options no other test posts."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import SignupRequest
from kassa.services.accounts.users import make_reset_token
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in, page_text
from tests.support.checkout_flow import field_error, soup_of

SIGNUP = {"company_name": "Acme Bikes", "name": "Ada Owner", "email": "ada@acme.example",
          "password": "a long enough password", "country": "NL", "currency": "eur", "timezone": "Europe/Amsterdam",
          "language": "nl"}


def test_m6_signup_values_are_trimmed_and_a_blank_time_zone_is_utc(client):
    response = client.post("/signup", data={**SIGNUP, "company_name": "  Acme Bikes ", "country": " NL ",
                                            "currency": " eur ", "timezone": " "})
    assert response.status_code == 200 and "Check your inbox" in page_text(response)
    pending = db.session.scalar(select(SignupRequest))
    assert (pending.company_name, pending.country, pending.currency, pending.timezone) == \
        ("Acme Bikes", "NL", "EUR", "UTC")


@pytest.mark.parametrize("language", ["de", "", None])
def test_m6_signup_in_a_language_the_page_does_not_offer_is_in_english(client, language):
    data = {**SIGNUP, "language": language} if language is not None else \
        {key: value for key, value in SIGNUP.items() if key != "language"}
    assert client.post("/signup", data=data).status_code == 200
    assert db.session.scalar(select(SignupRequest.language)) == "en"


def test_m6_signup_errors_keep_what_was_typed(client):
    response = client.post("/signup", data={**SIGNUP, "currency": "xyz", "country": "zz", "company_name": " Ac "})
    assert response.status_code == 422
    assert field_error(response, "currency") == "Error: Choose a currency."
    assert field_error(response, "country") == "Error: Choose a country."
    page = soup_of(response)
    assert page.select_one('input[name="company_name"]')["value"] == "Ac"  # trimmed, as it is saved
    assert page.select_one('input[name="name"]')["value"] == "Ada Owner"
    assert db.session.scalar(select(SignupRequest.id)) is None


def test_m6_login_without_fields_is_the_one_mismatch_answer(client):
    make_merchant(email="owner@shop.example")
    response = client.post("/login", data={})
    assert response.status_code == 401
    assert "That email and password don't match." in page_text(response)
    log_in(client, "owner@shop.example", PASSWORD)


@pytest.fixture
def reset_url():
    user = make_merchant(email="owner@shop.example")
    return f"/reset-password/{make_reset_token(user)}"


@pytest.mark.parametrize(("confirm", "missing"), [("my new password 2", False), ("", False), (None, True)])
def test_m6_a_reset_whose_passwords_differ_changes_nothing(client, reset_url, confirm, missing):
    data = {"password": "my new password 1"} if missing else {"password": "my new password 1",
                                                               "password_confirm": confirm}
    response = client.post(reset_url, data=data)
    assert response.status_code == 422
    assert field_error(response, "password") == "Error: The two passwords are not the same."
    log_in(client, "owner@shop.example", PASSWORD)


def test_m6_a_reset_to_a_short_password_is_a_field_error(client, reset_url):
    response = client.post(reset_url, data={"password": "short", "password_confirm": "short"})
    assert response.status_code == 422
    assert "at least 10" in field_error(response, "password")
    log_in(client, "owner@shop.example", PASSWORD)


@pytest.mark.parametrize("email", ["not-an-email", ""])
def test_m6_forgot_password_with_no_address_is_a_field_error(client, email):
    response = client.post("/forgot-password", data={"email": email} if email else {})
    assert response.status_code == 422
    assert field_error(response, "email")
    assert "If an account uses" not in page_text(response)
