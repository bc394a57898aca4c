"""B12 in the HTML (both databases): the menu button is a disclosure that starts hidden (the menu works without
JavaScript) and controls the menu and the search; every table's scroll frame is a labelled, focusable region."""

from __future__ import annotations

import pytest

from tests.factories import PASSWORD, make_merchant, make_payment, make_user
from tests.support.app import log_in
from tests.support.checkout_flow import make_link
from tests.support.home import failed_export, failing_renewal
from tests.support.links import create_product, soup_of


@pytest.fixture
def owner(client):
    user = make_merchant(company="Fast Bikes", currency="EUR", country="NL")
    log_in(client, user.email, PASSWORD)
    return user


def test_b12_menu_button_is_a_hidden_disclosure_for_the_menu_and_search(client, owner):
    soup = soup_of(client.get("/"))
    button = soup.select_one("button[data-navtoggle]")
    assert button is not None and button.get_text(strip=True) == "Menu"
    assert button["type"] == "button" and button["aria-expanded"] == "false"
    assert button.has_attr("hidden")  # app.js shows it; without JavaScript the menu is simply there
    controlled = button["aria-controls"].split()
    assert [soup.find(id=i).name for i in controlled] == ["nav", "form"]
    nav = soup.find(id=controlled[0])
    assert nav["aria-label"] == "Main" and nav.find("a", string="Subscriptions") is not None


@pytest.mark.parametrize("path", ["/links/", "/products/", "/payments/", "/exports/", "/settings/users",
                                  "/settings/emails", "/subscriptions/"])
def test_b12_every_table_scrolls_in_a_labelled_focusable_region(client, owner, path):
    create_product(client, name="Helmet", unit_price="59.90")
    make_link(owner)
    make_payment(owner.account_id, amount_minor=2500, currency="EUR")
    failed_export(owner)
    failing_renewal(owner.account_id)
    make_user(owner.account_id)
    client.post("/settings/users/invite", data={"email": "new@bikes.example", "role": "member"})  # invitation + email
    soup = soup_of(client.get(path))
    frames = soup.select(".table-wrap")
    assert frames, f"no table on {path}"
    for frame in frames:
        assert frame["role"] == "region" and frame["tabindex"] == "0"
        label = soup.find(id=frame["aria-labelledby"])
        assert label is not None and label.get_text(strip=True), (path, frame["aria-labelledby"])
