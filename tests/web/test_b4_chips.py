"""B4: every active quick and advanced filter shows as a chip, each removable with a plain link (and htmx when
present); the link filter picks a link by name and its chip says the name; filter errors are whole sentences."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.factories import make_merchant, make_payment
from tests.support.checkout_flow import make_link
from tests.support.payments import chips, login, row_ids, soup_of


@pytest.fixture
def shop(client):
    owner = make_merchant()
    concert = make_link(owner, name="Spring concert")
    make_link(owner, name="Autumn fair")
    made = {
        "ann": make_payment(owner.account_id, email="ann@example.com", amount_minor=6000, link_id=concert.id),
        "bob": make_payment(owner.account_id, email="bob@example.com", amount_minor=2000, method="ach"),
        "cy": make_payment(owner.account_id, email="cy@example.com", amount_minor=9000, status="failed"),
    }
    login(client, owner)
    return owner, concert, made


def remove_links(response) -> dict[str, str]:
    return {" ".join(chip.select_one(".chip__label").get_text(" ").split()): chip.select_one("a.chip__remove")["href"]
            for chip in soup_of(response).select(".chips .chip")}


def test_b4_every_quick_and_advanced_filter_is_a_chip(client, shop):
    _owner, concert, _made = shop
    adv = json.dumps([[["amount", "gt", ["10"]], ["link", "eq", [str(concert.id)]]], [["method", "any_of", ["ach"]]]])
    response = client.get("/payments/", query_string={
        "q": "example", "status": ["succeeded", "failed"], "date": "last_30", "amount_min": "5", "amount_max": "500",
        "method": "card", "currency": "USD", "link": str(concert.id), "email": "ann", "refunds": "no", "adv": adv})
    assert response.status_code == 200
    assert chips(response) == [
        "Search: “example”", "Status: Succeeded", "Status: Failed", "Payment date: Last 30 days",
        "Amount: 5 to 500", "Payment method: Card", "Currency: USD", "Payment link: Spring concert",
        "Contact email contains “ann”", "Has refunds: No",
        "Gross amount > 10", "Payment link is Spring concert", "Payment method is any of Bank debit (ACH)"]
    text = " ".join(soup_of(response).select_one(".chips").get_text(" ").split())
    assert "OR" in text
    assert all(str(concert.id) not in chip for chip in chips(response) if "link" in chip)


def test_b4_each_chip_removes_only_its_filter_with_a_plain_link(client, shop):
    _owner, concert, made = shop
    adv = json.dumps([[["amount", "gt", ["10"]]], [["method", "any_of", ["ach"]]]])
    response = client.get("/payments/", query_string={"status": "succeeded", "link": str(concert.id), "adv": adv})
    links = remove_links(response)
    chip = soup_of(response).select_one(".chips .chip a.chip__remove")
    assert chip["hx-get"] == chip["href"] and chip["hx-target"] == "#main"
    assert "Remove filter: Status: Succeeded" in chip.get_text(" ")

    without_status = parse_qs(urlsplit(links["Status: Succeeded"]).query)
    assert "status" not in without_status and without_status["link"] == [str(concert.id)]
    assert json.loads(without_status["adv"][0]) == json.loads(adv)

    without_link = client.get(links["Payment link: Spring concert"])
    assert "Payment link: Spring concert" not in chips(without_link)
    assert chips(without_link)[0] == "Status: Succeeded"

    without_group = parse_qs(urlsplit(links["Payment method is any of Bank debit (ACH)"]).query)
    assert json.loads(without_group["adv"][0]) == [[["amount", "gt", ["10"]]]]
    only_quick = client.get(links["Gross amount > 10"])
    assert chips(only_quick) == ["Status: Succeeded", "Payment link: Spring concert",
                                 "Payment method is any of Bank debit (ACH)"]
    assert row_ids(only_quick) == []  # Ann paid by card
    assert set(row_ids(client.get("/payments/", query_string={"link": str(concert.id)}))) == {made["ann"].id}


def test_b4_link_filter_is_chosen_by_name(client, shop):
    _owner, concert, _made = shop
    page = soup_of(client.get("/payments/"))
    select = page.select_one("select#qf-link")
    assert select.find_previous("label").get_text() == "Payment link"
    options = {o.get_text(): o["value"] for o in select.select("option")}
    assert options == {"Any": "", "Autumn fair": options["Autumn fair"], "Spring concert": str(concert.id)}


def test_b4_another_merchants_link_is_not_named(client, shop):
    stranger = make_merchant()
    their_link = make_link(stranger, name="Secret gala")
    response = client.get("/payments/", query_string={"link": str(their_link.id)})
    assert "Secret gala" not in response.get_data(as_text=True)
    assert chips(response) == ["Payment link: a link that no longer exists"]
    assert row_ids(response) == []


@pytest.mark.parametrize(("query", "sentence"), [
    ({"adv": json.dumps([[["colour", "is", ["red"]]]])},
     "Payments can't be filtered by “colour”. Choose a property from the list."),
    ({"adv": json.dumps([[["amount", "between", ["1"]]]])}, "Enter both ends of the range for Gross amount."),
    ({"adv": json.dumps([[["email", "is"]]])}, "Enter a value for Contact email."),
    ({"adv": json.dumps([[["status"]]])},
     "One of the filter's conditions could not be read. Start again from the filter panel."),
    ({"sort": "sideways"}, "That sort order doesn't exist. Choose one from the list."),
    ({"date": "yesterday"}, "That date range doesn't exist. Choose one from the list, or enter dates."),
    ({"amount_min": "ten"}, "Gross amount needs a number, like 100 or 12.50."),
])
def test_b4_filter_errors_are_whole_sentences(client, shop, query, sentence):
    response = client.get("/payments/", query_string=query)
    assert response.status_code == 400
    message = soup_of(response).select_one('.alert--error p:not(.alert__title)').get_text()
    assert message == sentence
    assert message[0].isupper() and message.endswith(".")
