"""B8: messages look like what they are. The checkout's error summary names each field it lists; a decline is its
own message, not under "Check the highlighted fields"; a success is a success (green, role=status), never an
error box; every buyer-facing message has a kind (error, warning, success, info) with its own style and role.
"""

from __future__ import annotations

import re

import pytest

from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Subscription
from kassa.services.billing.notices import update_url_token
from tests.support.billing import buy, subscription_shop
from tests.support.checkout import buyer_form, start_checkout
from tests.support.checkout_flow import make_shop, soup_of

DECLINED = "4000000000000002"


def _text(node) -> str:
    return " ".join(node.get_text(" ").split()) if node is not None else ""


def _summary(response) -> list[str]:
    return [_text(a) for a in soup_of(response).select("#error-summary a")]


def test_b8_the_checkout_error_summary_names_each_field_it_lists(client):
    _owner, link = make_shop("Named Fields", fields={"first_name": "required", "last_name": "required"})
    path = start_checkout(client, link.slug)

    response = client.post(path, data=buyer_form(email="", first_name="", last_name="", card_number="",
                                                 card_expiry="", card_cvc="", billing_line1="", billing_city=""))

    assert response.status_code == 422
    lines = _summary(response)
    assert len(lines) >= 7
    assert len(set(lines)) == len(lines)  # never ten times the same sentence
    named = dict(line.split(": ", 1) for line in lines)
    assert {"Email", "First name", "Last name", "Card number", "Expiry (MM/YY)", "Billing address · Address",
            "Billing address · City"} <= set(named)
    # Each line still links to its field.
    hrefs = [a["href"] for a in soup_of(response).select("#error-summary a")]
    assert "#f-billing_line1" in hrefs and "#f-email" in hrefs
    assert _text(soup_of(response).select_one("#error-summary h2")) == "Check the highlighted fields"


def test_b8_the_summary_names_fields_in_the_buyers_language(client):
    _owner, link = make_shop("Benoemd")
    path = start_checkout(client, link.slug, lang="nl")

    response = client.post(path, data=buyer_form(email="", card_number="", lang="nl"))

    lines = _summary(response)
    assert any(line.startswith("E-mail: ") or line.startswith("E-mailadres: ") for line in lines), lines
    assert any(line.startswith("Kaartnummer: ") for line in lines), lines


def test_b8_a_decline_is_its_own_error_message_not_a_field_summary(client):
    _owner, link = make_shop("Declines")
    path = start_checkout(client, link.slug)

    response = client.post(path, data=buyer_form(card_number=DECLINED))

    page = soup_of(response)
    alerts = page.select('[role="alert"]')
    assert len(alerts) == 1
    assert "alert--error" in alerts[0]["class"]
    assert _text(alerts[0].select_one(".alert__title")) == "Your payment was declined"
    assert "Your card was declined." in _text(alerts[0])
    assert page.select_one("#error-summary").has_attr("hidden")
    assert "Check the highlighted fields" not in _text(page.select_one("form"))
    # The card number is still marked, so the buyer sees which detail to change.
    assert page.select_one("#f-card_number")["aria-invalid"] == "true"
    # Retrying with a typing mistake afterwards shows the field summary again (the kinds don't mix).
    again = client.post(path, data=buyer_form(email=""))
    assert _summary(again) and _summary(again)[0].startswith("Email: ")
    assert soup_of(again).select_one(".alert__title") is None


@pytest.fixture
def subscriber(app, client):
    _owner, link = subscription_shop("Card Updates")
    sub = buy(client, link)
    with write_transaction(db.session):
        token = update_url_token(sub.id)
    return db.session.get(Subscription, sub.id), token


def _card(number: str, **fields) -> dict:
    return {"card_number": number, "card_expiry": "12 / 34", "card_cvc": "123", "card_name": "Ann Buyer", **fields}


def test_b8_the_card_update_success_is_a_success_message_not_a_red_box(client, subscriber):
    _sub, token = subscriber

    response = client.post(f"/billing/{token}", data=_card("5555555555554444"))

    assert response.status_code == 200
    page = soup_of(response)
    done = page.select_one(".alert")
    assert done["role"] == "status" and "alert--success" in done["class"]
    assert "alert--error" not in done["class"]
    assert _text(done.select_one(".alert__title")) == "Card saved"
    assert "Thank you! Your card is saved." in _text(done)
    assert page.select('[role="alert"]') == []


def test_b8_the_card_update_decline_and_typing_mistakes_are_told_apart(client, subscriber):
    _sub, token = subscriber

    declined = soup_of(client.post(f"/billing/{token}", data=_card(DECLINED)))
    mistake = soup_of(client.post(f"/billing/{token}", data=_card("4242", card_expiry="")))

    box = declined.select_one('[role="alert"]')
    assert "alert--error" in box["class"] and _text(box.select_one(".alert__title")) == "Your new card wasn't saved"
    assert "Your current card stays as it is." in _text(box)
    assert declined.select_one("#error-summary") is None
    names = {"#f-card_number": "Card number", "#f-card_expiry": "Expiry (MM/YY)"}
    lines = [(a["href"], _text(a)) for a in mistake.select("#error-summary a")]
    assert {href for href, _line in lines} == set(names)
    for href, line in lines:
        assert line == f"{names[href]}: {_text(mistake.select_one(href + '-error'))}"


def test_b8_each_message_kind_has_its_own_style(client):
    """The buyer pages' stylesheets give error, warning, success and info their own colours (Q12: the checkout's
    own has the error style it shows; the kinds no checkout shows are in checkout-more.css, which the buyer pages
    that show them load)."""
    _owner, link = make_shop("Styles")
    page = client.get(start_checkout(client, link.slug)).get_data(as_text=True)
    css_path = re.search(r'href="?(/assets/checkout\.css[^"> ]+)', page).group(1).replace("&amp;", "&")
    css = client.get(css_path).get_data(as_text=True) + client.get("/assets/checkout-more.css").get_data(
        as_text=True)
    backgrounds = {kind: re.search(rf"\.alert--{kind}[^{{]*{{[^}}]*background:([^;}}]+)", css).group(1)
                   for kind in ("error", "warning", "success", "info")}
    assert len(set(backgrounds.values())) == 4, backgrounds
