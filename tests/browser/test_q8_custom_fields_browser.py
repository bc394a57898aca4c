"""Q8 in Chromium: the merchant adds custom fields in the link editor (1440×900; htmx add, the live preview shows
them), and a buyer on a phone (390×844) answers them, is told at the field when a number isn't one, and pays."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD
from tests.support.browser import (
    DESKTOP,
    assert_accessible,
    htmx_swap,
    log_in_page,
    screenshot,
    signed_test_url,
    wait_for_htmx_idle,
)

pytestmark = pytest.mark.browser
EMAIL = "owner@koffie.example"
SHOTS = Path("/tmp/shots/fields")


def _keep(path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


@pytest.fixture
def shop(live_server):
    from kassa.extensions import db
    from kassa.services.links.custom_fields import FieldDraft
    from tests.factories import make_merchant
    from tests.support.checkout_flow import item, make_link

    with live_server.app.app_context():
        owner = make_merchant(company="Koffie Noord", email=EMAIL, password=PASSWORD, currency="EUR", country="NL")
        link = make_link(owner, name="Beans", currency="EUR", items=[item("Espresso beans 1 kg", "24.50")],
                         custom_fields=[FieldDraft("Grind", "dropdown", "Whole beans, Filter, Espresso", "1", "1"),
                                        FieldDraft("Cups a day", "number"),
                                        FieldDraft("Gift note", receipt="1")])
        slug = link.slug
        db.session.remove()
    return slug


def test_q8_the_merchant_adds_custom_fields_and_the_preview_shows_them(live_server, shop, new_page):
    page = new_page(viewport=DESKTOP)
    base = live_server.url
    log_in_page(page, base, EMAIL, PASSWORD)
    page.goto(f"{base}/links/new")
    wait_for_htmx_idle(page)
    page.locator("#f-items-0-name").fill("Filter coffee 250 g")
    page.locator("#f-items-0-unit_price").fill("8.50")
    page.locator("#f-name").fill("Filter coffee")

    with htmx_swap(page):
        page.get_by_role("button", name="Add custom field").click()
    label = page.locator("#f-custom-0-label")
    expect(label).to_be_focused()
    label.fill("Grind")
    page.locator("#f-custom-0-type").select_option("dropdown")
    page.locator("#f-custom-0-options").fill("Whole beans\nFilter\nEspresso")
    page.get_by_label("Required").first.check()
    page.get_by_label("Show on the receipt").first.check()
    with htmx_swap(page):
        page.get_by_role("button", name="Add custom field").click()
    # What was typed in the first field survived the round trip.
    expect(page.locator("#f-custom-0-label")).to_have_value("Grind")
    expect(page.locator("#f-custom-0-options")).to_have_value("Whole beans\nFilter\nEspresso")
    expect(page.locator("#f-custom-0-required")).to_be_checked()
    page.locator("#f-custom-1-label").fill("Cups a day")
    page.locator("#f-custom-1-type").select_option("number")

    preview = page.locator("#link-preview")
    expect(preview).to_contain_text("Additional information")
    expect(preview).to_contain_text("Cups a day")
    expect(preview).to_contain_text("Grind")
    assert_accessible(page, "link editor with custom fields")
    page.locator("#custom-fields").scroll_into_view_if_needed()
    _keep(screenshot(page, "q8-editor-custom-fields-desktop"))

    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/links/\d+/created"))
    assert page.js_errors == []


def test_q8_a_buyer_on_a_phone_answers_the_fields_and_pays(live_server, shop, phone_page, new_page):
    page = phone_page
    page.goto(signed_test_url(live_server.url, shop))
    page.get_by_role("heading", name="Additional information").wait_for()
    page.get_by_label(re.compile(r"^Email")).fill("phone.buyer@example.com")
    page.get_by_label("Grind").select_option("Filter")
    page.get_by_label("Cups a day").fill("lots")
    page.get_by_label("Gift note").fill("Enjoy the beans!")
    page.get_by_label(re.compile(r"^Card number")).fill("4242424242424242")
    page.get_by_label(re.compile(r"^Expiry")).fill("12 / 34")
    page.get_by_label(re.compile(r"CVC")).fill("123")
    page.get_by_label(re.compile(r"^Name on card")).fill("Ann Reader")
    page.get_by_label(re.compile(r"^Address")).fill("Kade 1")
    page.get_by_label(re.compile(r"^Postal code")).fill("1011 AA")
    page.get_by_label(re.compile(r"^City")).fill("Amsterdam")
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()

    # Refused at the field, named by its label in the summary; nothing typed is lost.
    expect(page.locator("#f-cf_1-error")).to_have_text("Enter a number, like 12 or 3.5.")
    expect(page.locator("#error-summary")).to_contain_text("Cups a day: Enter a number, like 12 or 3.5.")
    expect(page.get_by_label("Grind")).to_have_value("Filter")
    expect(page.get_by_label("Gift note")).to_have_value("Enjoy the beans!")
    assert_accessible(page, "checkout with a custom field error")
    _keep(screenshot(page, "q8-checkout-custom-fields-error-phone"))

    page.get_by_label("Cups a day").fill("2,5")
    page.get_by_label(re.compile(r"CVC")).fill("123")  # the security code is never sent back
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.get_by_role("heading", name="Thank you! Your payment was received.").wait_for()
    assert page.js_errors == []

    from kassa.extensions import db
    from kassa.models import Payment

    with live_server.app.app_context():
        payment = db.session.query(Payment).one()
        assert [(a["label"], a["value"]) for a in payment.custom_fields] == [
            ("Grind", "Filter"), ("Cups a day", "2,5"), ("Gift note", "Enjoy the beans!")]
        payment_id = payment.id
        db.session.remove()

    # The merchant filters the payments by the answer (a chip says so) and reads every answer on the panel.
    desk = new_page(viewport=DESKTOP)
    base = live_server.url
    log_in_page(desk, base, EMAIL, PASSWORD)
    adv = json.dumps([[["custom_field", "contains", ["Grind", "filt"]]]])
    desk.goto(f"{base}/payments/?{urlencode({'adv': adv})}")
    expect(desk.locator(".chip__label", has_text="Custom field “Grind” contains “filt”")).to_be_visible()
    expect(desk.locator("main")).to_contain_text("phone.buyer@example.com")
    assert_accessible(desk, "payments filtered by a custom field")
    _keep(screenshot(desk, "q8-payments-filtered-by-custom-field-desktop"))
    desk.goto(f"{base}/payments/{payment_id}")
    card = desk.locator("#card-custom-fields")
    expect(card).to_contain_text("Gift note")
    expect(card).to_contain_text("Enjoy the beans!")
    assert_accessible(desk, "payment panel with custom fields")
    card.scroll_into_view_if_needed()
    _keep(screenshot(desk, "q8-payment-panel-custom-fields-desktop"))
    assert desk.js_errors == []


def test_q8_the_phone_checkout_with_custom_fields(live_server, shop, phone_page):
    page = phone_page
    page.goto(signed_test_url(live_server.url, shop))
    page.get_by_role("heading", name="Additional information").wait_for()
    page.get_by_label("Grind").select_option("Espresso")
    assert_accessible(page, "checkout with custom fields")
    page.get_by_role("heading", name="Additional information").scroll_into_view_if_needed()
    _keep(screenshot(page, "q8-checkout-custom-fields-phone"))
