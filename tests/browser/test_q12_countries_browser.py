"""Q12 on a phone (390×844): a checkout with billing and shipping addresses sends its countries once. With
checkout.js both country fields are <select>s built from that one list; without it they are text fields the
buyer types the country into. Either way the buyer pays with a separate shipping country, and the page passes axe."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import assert_accessible, screenshot, signed_test_url
from tests.support.checkout_flow import make_shop, only_payment

pytestmark = pytest.mark.browser


@pytest.fixture
def slug(live_server) -> str:
    from kassa.extensions import db

    with live_server.app.app_context():
        _owner, link = make_shop("Koffiebranderij Noord", currency="EUR", collect_shipping_address=True)
        slug = link.slug
        db.session.remove()
    return slug


@pytest.fixture(params=["with-script", "script-blocked"])
def phone(request, phone_page):
    if request.param == "script-blocked":
        phone_page.route("**/checkout*.js*", lambda route: route.abort())
    phone_page.with_script = request.param == "with-script"  # type: ignore[attr-defined]
    return phone_page


def test_q12_billing_and_shipping_countries_from_one_list_on_a_phone(live_server, phone, slug):
    phone.goto(signed_test_url(live_server.url, slug) + "?lang=nl")
    billing, shipping = phone.locator("#f-billing_country"), phone.locator("#f-shipping_country")
    tag = "select" if phone.with_script else "input"
    expect(phone.locator(f"{tag}#f-billing_country")).to_have_count(1)
    expect(phone.locator("#countries[data-names]")).to_have_count(1)

    phone.get_by_label(re.compile(r"^E-mail")).fill("koper@example.com")
    phone.get_by_label(re.compile(r"^Kaartnummer")).fill("4242 4242 4242 4242")
    phone.get_by_label(re.compile(r"^Vervaldatum")).fill("12 / 34")
    phone.get_by_label(re.compile(r"CVC")).fill("123")
    phone.get_by_label(re.compile(r"^Naam op")).fill("Pim Koper")
    phone.locator("#f-billing_line1").fill("Damrak 1")
    phone.locator("#f-billing_postal_code").fill("1012 LG")
    phone.locator("#f-billing_city").fill("Amsterdam")
    if phone.with_script:
        billing.select_option("Nederland")
    else:
        billing.fill("Nederland")
    phone.locator("#f-shipping_same").uncheck()
    expect(shipping).to_be_visible()
    phone.locator("#f-shipping_line1").fill("Hauptstraße 5")
    phone.locator("#f-shipping_postal_code").fill("10115")
    phone.locator("#f-shipping_city").fill("Berlin")
    if phone.with_script:
        shipping.select_option("Duitsland")
        expect(shipping).to_have_value("Duitsland")
        screenshot(phone, "q12_countries_phone")
    else:
        shipping.fill("duitsland")
        screenshot(phone, "q12_countries_phone_nojs")
    assert_accessible(phone)

    phone.get_by_role("button", name=re.compile(r"^Betaal ")).click()
    expect(phone.get_by_role("heading", level=1)).to_contain_text(re.compile(r"Bedankt|Dank"))
    with live_server.app.app_context():
        payment = only_payment()
        assert (payment.billing_address["country"], payment.shipping_address["country"]) == ("NL", "DE")
