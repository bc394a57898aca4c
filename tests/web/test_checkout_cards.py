"""Card checkout with the sandbox processor: every test card of the seed, and the format checks (T1–T3, C3, C5)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kassa.models import Payment, PaymentAttempt, PaymentStatus
from kassa.processors.testcards import card_brand
from kassa.services.checkout.checkout_form import read_buyer_form
from tests.support.app import page_text
from tests.support.checkout import buyer_form, pay_with_card, start_checkout, submit_checkout
from tests.support.checkout_flow import (
    BRAND_NAMES,
    T2_CARDS,
    T3_CARDS,
    alert,
    all_payments,
    attempts,
    count,
    cvc_for,
    field_error,
    field_errors,
    field_value,
    make_shop,
    only_payment,
    sandbox_charges,
    soup_of,
)


@pytest.fixture
def link(app):
    _owner, link = make_shop("Gouden Korst")
    return link


# -- T2: every succeeding card ----------------------------------------------------------------------


@pytest.mark.parametrize(("number", "brand", "funding"), T2_CARDS, ids=[c[0] for c in T2_CARDS])
def test_t2_succeeding_card_pays_and_shows_confirmation(client, link, number, brand, funding):
    response = pay_with_card(client, link.slug, card_number=number, card_cvc=cvc_for(number))

    assert response.status_code == 303, field_errors(response) or alert(response)
    assert response.headers["Location"].endswith(response.checkout_path)
    payment = only_payment()
    assert payment.status == PaymentStatus.SUCCEEDED.value
    assert (payment.card_brand, payment.card_last4, payment.card_funding) == (brand, number[-4:], funding)
    assert (payment.card_exp_month, payment.card_exp_year) == (12, 2034)
    assert payment.mode == "test"  # T1: flagged as a test payment
    assert payment.is_test
    assert payment.amount_minor == 2500 and payment.currency == "USD"
    assert sandbox_charges() == 1

    confirmation = client.get(response.checkout_path)
    assert confirmation.status_code == 200
    text = page_text(confirmation)
    assert "Thank you! Your payment was received." in text
    assert f"{BRAND_NAMES[brand]} •••• {number[-4:]}" in text
    assert "Test mode" in text
    assert soup_of(confirmation).find("form", id="checkout-form") is None  # no second payment form


def test_t2_card_number_typed_with_spaces_is_accepted(client, link):
    response = pay_with_card(client, link.slug, card_number="4242 4242 4242 4242", card_expiry="0934")

    assert response.status_code == 303
    assert only_payment().card_last4 == "4242"


# -- T3: every failing card, then a retry (C5) ------------------------------------------------------


@pytest.mark.parametrize(("number", "field", "message"), T3_CARDS, ids=[c[0] for c in T3_CARDS])
def test_t3_failing_card_shows_its_message_at_the_field_charges_nothing_and_retry_pays(
        client, link, number, field, message):
    path = start_checkout(client, link.slug)
    declined = submit_checkout(client, path, card_number=number, card_cvc="734", billing_line2="Apt 4",
                               email="Ann.Buyer@Example.com")

    assert declined.status_code == 422
    assert field_error(declined, field) == message
    assert set(field_errors(declined)) == {field}
    # B8: at the field and in its own "declined" message at the top, not under "Check the highlighted fields".
    assert page_text(declined).count(message) == 2
    assert alert(declined) == f"Your payment was declined {message} Nothing was charged. Try again or use another card."
    assert soup_of(declined).select("#error-summary a") == [] and "Check the highlighted fields" not in alert(declined)
    # Nothing was charged; the attempt is closed as declined, and (B2) the merchant sees it as a failed payment
    # with the card's brand and last 4 only.
    [failed] = all_payments()
    assert (failed.status, failed.card_brand, failed.card_last4, failed.receipt_number) == (
        "failed", "visa", number[-4:], None)
    assert sandbox_charges() == 0
    assert [a.status for a in attempts()] == ["declined"]
    # The form keeps what the buyer typed, except the security code.
    assert field_value(declined, "email") == "Ann.Buyer@Example.com"
    assert field_value(declined, "card_number") == number
    assert field_value(declined, "card_expiry") == "12 / 34"
    assert field_value(declined, "card_name") == "Ann Buyer"
    assert field_value(declined, "billing_line1") == "Main Street 1"
    assert field_value(declined, "billing_line2") == "Apt 4"
    assert field_value(declined, "billing_postal_code") == "12345"
    assert field_value(declined, "first_name") == "Ann"
    assert field_value(declined, "card_cvc") == ""

    retry = submit_checkout(client, path, card_number="4242424242424242")

    assert retry.status_code == 303
    assert [(p.status, p.card_last4) for p in all_payments()] == [("failed", number[-4:]), ("succeeded", "4242")]
    assert sandbox_charges() == 1
    assert [a.status for a in attempts()] == ["declined", "succeeded"]
    assert "Thank you! Your payment was received." in page_text(client.get(path))


def test_t1_a_well_formed_card_that_is_not_a_test_card_is_refused_in_test_mode(client, link):
    response = pay_with_card(client, link.slug, card_number="4111111111111111")

    assert response.status_code == 422
    assert field_error(response, "card_number") == "Use a test card in test mode."
    assert all_payments() == [] and sandbox_charges() == 0


def test_t1_checkout_in_test_mode_shows_the_test_banner(client, link):
    page = client.get(start_checkout(client, link.slug))

    assert page.status_code == 200
    banner = soup_of(page).select_one(".testmode")
    assert banner is not None and "Test mode" in banner.get_text()


# -- format checks before any charge (C3) -----------------------------------------------------------


FORMAT_CASES = [
    # (overrides, field, message)
    ({"card_number": "4242424242424241"}, "card_number", "Your card number is invalid."),
    ({"card_number": "4242 4242 4242"}, "card_number", "Your card number is incomplete."),
    ({"card_number": ""}, "card_number", "Your card number is incomplete."),
    ({"card_number": "4242-4242-abcd-4242"}, "card_number", "Your card number is invalid."),
    ({"card_expiry": "01 / 20"}, "card_expiry", "Your card's expiration date is in the past."),
    ({"card_expiry": "13 / 30"}, "card_expiry", "Your card's expiration month is invalid."),
    ({"card_expiry": "12"}, "card_expiry", "Your card's expiration date is incomplete."),
    ({"card_expiry": ""}, "card_expiry", "Your card's expiration date is incomplete."),
    ({"card_number": "378282246310005", "card_cvc": "123"}, "card_cvc", "Your card's security code is incomplete."),
    ({"card_number": "4242424242424242", "card_cvc": "1234"}, "card_cvc", "Your card's security code is invalid."),
    ({"card_cvc": "12"}, "card_cvc", "Your card's security code is incomplete."),
    ({"card_cvc": "1a3"}, "card_cvc", "Your card's security code is invalid."),
    ({"card_name": "  "}, "card_name", "Enter the name on your card."),
]


@pytest.mark.parametrize(("overrides", "field", "message"), FORMAT_CASES,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(FORMAT_CASES)])
def test_c3_card_format_error_is_shown_at_its_field_and_the_processor_is_never_called(
        client, link, overrides, field, message):
    response = pay_with_card(client, link.slug, **overrides)

    assert response.status_code == 422
    assert field_error(response, field) == message
    assert count(PaymentAttempt) == 0  # no attempt: the processor was never asked
    assert sandbox_charges() == 0
    assert count(Payment) == 0


def test_c3_amex_with_four_digit_cvc_pays(client, link):
    assert pay_with_card(client, link.slug, card_number="378282246310005", card_cvc="1234").status_code == 303
    assert only_payment().card_brand == "amex"


def test_c2_missing_email_and_address_are_each_reported_at_their_field(client, link):
    response = pay_with_card(client, link.slug, email="", billing_line1="", billing_city="", billing_postal_code="")

    assert response.status_code == 422
    errors = field_errors(response)
    assert {"email", "billing_line1", "billing_city", "billing_postal_code"} <= set(errors)
    assert count(PaymentAttempt) == 0


def test_c2_required_contact_field_must_be_filled(client, app):
    _owner, link = make_shop(fields={"phone": "required"})

    response = pay_with_card(client, link.slug, phone="")

    assert response.status_code == 422
    assert field_error(response, "phone") == "Enter your phone number."
    assert count(PaymentAttempt) == 0


# -- the parser itself, for any input (hypothesis) --------------------------------------------------

SNAPSHOT = {"fields": {}, "allow_card": True, "allow_ach": False, "collect_billing_address": False,
            "collect_shipping_address": False}
TODAY = date(2026, 6, 15)


def _card_errors(**fields) -> dict[str, str]:
    form = {"email": "a@b.example", "method": "card", "card_number": "4242424242424242",
            "card_expiry": "12 / 34", "card_cvc": "123", "card_name": "A B", **fields}
    return read_buyer_form(SNAPSHOT, form, TODAY)[1]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(card=st.sampled_from([c[0] for c in T2_CARDS]), position=st.integers(0, 18), digit=st.integers(0, 9))
def test_c3_any_single_digit_typo_in_a_test_card_fails_luhn(app, card, position, digit):
    position %= len(card)
    assume(int(card[position]) != digit)
    typo = card[:position] + str(digit) + card[position + 1:]

    errors = _card_errors(card_number=typo, card_cvc=cvc_for(typo))

    # Never accepted. A typo in the first digits can turn it into another brand with other lengths
    # (37… Amex, 15 digits → 35… JCB, 16+), and then it reads as incomplete rather than invalid.
    if card_brand(typo) == card_brand(card):
        assert errors.get("card_number") == "Your card number is invalid."
    else:
        assert errors.get("card_number") in ("Your card number is invalid.", "Your card number is incomplete.")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(month=st.integers(1, 12), year=st.integers(2000, 2076),
       layout=st.sampled_from(["{m:02d}/{y2:02d}", "{m:02d} / {y2:02d}", "{m:02d}{y2:02d}", "{m}/{y4}", "{m:02d}-{y4}"]))
def test_c3_expiry_is_valid_exactly_through_the_end_of_its_month(app, month, year, layout):
    text = layout.format(m=month, y2=year % 100, y4=year)

    error = _card_errors(card_expiry=text).get("card_expiry")

    if (year, month) < (TODAY.year, TODAY.month):
        assert error == "Your card's expiration date is in the past."
    else:
        assert error is None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(month=st.integers(13, 99), year=st.integers(0, 99))
def test_c3_expiry_month_above_12_is_invalid(app, month, year):
    assert _card_errors(card_expiry=f"{month:02d} / {year:02d}")["card_expiry"] == \
        "Your card's expiration month is invalid."


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(card=st.sampled_from([c[0] for c in T2_CARDS]), cvc=st.text("0123456789", min_size=1, max_size=4))
def test_c3_cvc_needs_exactly_four_digits_for_amex_and_three_otherwise(app, card, cvc):
    wanted = 4 if card.startswith(("34", "37")) else 3

    error = _card_errors(card_number=card, card_cvc=cvc).get("card_cvc")

    if len(cvc) == wanted:
        assert error is None
    elif len(cvc) < wanted:
        assert error == "Your card's security code is incomplete."
    else:
        assert error == "Your card's security code is invalid."


def test_c3_the_parsed_buyer_never_keeps_card_number_or_cvc(app):
    buyer, errors = read_buyer_form(SNAPSHOT, {"email": "a@b.example", "method": "card",
                                               "card_number": "4242424242424242", "card_expiry": "12/34",
                                               "card_cvc": "987", "card_name": "A B"}, TODAY)
    stored = repr(buyer.stored()) + repr(buyer.card)

    assert errors == {}
    assert "4242424242424242" not in stored and "987" not in stored


def test_c6_form_uses_autocomplete_tokens_and_numeric_keyboards(client, link):
    page = soup_of(client.get(start_checkout(client, link.slug)))

    expected = {"email": "email", "card_number": "cc-number", "card_expiry": "cc-exp", "card_cvc": "cc-csc",
                "card_name": "cc-name", "billing_postal_code": "billing postal-code"}
    for name, token in expected.items():
        node = page.find(attrs={"name": name})
        assert node is not None and node.get("autocomplete") == token, name
        assert page.find("label", attrs={"for": node["id"]}) is not None, f"{name} has no label"
    for name in ("card_number", "card_expiry", "card_cvc"):
        assert page.find(attrs={"name": name})["inputmode"] == "numeric"
    assert "Pay $25.00" in page.find("button", id="pay-button").get_text()
    assert buyer_form()["card_number"] not in str(page)  # nothing pre-filled
