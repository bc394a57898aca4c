"""B11 in Chromium: adding library products keeps the page where it was and moves focus to what came in; the
preview beside the editor is the whole checkout and follows the settings; Create leads to the share step
(address to copy, QR code, embed snippet, warning). At 1440×900 and 390×844, axe clean; and without JavaScript
the library still works and brings the page back at the line items."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD
from tests.support.browser import (
    DESKTOP,
    PHONE,
    assert_accessible,
    htmx_swap,
    log_in_page,
    new_context,
    screenshot,
    wait_for_htmx_idle,
)

pytestmark = pytest.mark.browser
EMAIL = "owner@bikes.example"


@pytest.fixture
def shop(live_server):
    from kassa.extensions import db
    from kassa.services.links import products
    from tests.factories import make_merchant
    from tests.support.checkout_flow import actor_for

    with live_server.app.app_context():
        owner = make_merchant(company="Fast Bikes", email=EMAIL, password=PASSWORD, currency="EUR", country="NL")
        for name, price, frequency in (("Helmet", "59.90", "one_time"), ("Bike lock", "24.50", "one_time"),
                                       ("Bike club", "9.00", "monthly")):
            products.create_product(actor_for(owner), {
                "name": name, "description": "", "unit_price": price, "currency": "EUR", "frequency": frequency,
                "term_type": "auto_renew", "term_count": "", "sku": ""}, "en")
        db.session.remove()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_b11_library_keeps_scroll_preview_is_the_checkout_and_create_shares(live_server, shop, new_page, size):
    page = new_page(viewport=DESKTOP if size == "desktop" else PHONE)
    base = live_server.url
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    log_in_page(page, base, EMAIL, PASSWORD)
    page.goto(f"{base}/links/new")
    wait_for_htmx_idle(page)
    page.locator("#f-items-0-name").fill("Fitting")
    page.locator("#f-items-0-unit_price").fill("10.00")

    # Open the library, scroll it into the middle of the screen, pick two products and add them.
    with htmx_swap(page):
        page.get_by_role("button", name="Add from product library").click()
    library = page.get_by_role("region", name="Product library")
    expect(library).to_be_focused()
    add = library.get_by_role("button", name="Add", exact=True)
    add.scroll_into_view_if_needed()
    page.evaluate("() => window.scrollBy(0, document.querySelector('.library').getBoundingClientRect().top - 120)")
    before = page.evaluate("() => window.scrollY")
    assert before > 0
    library.get_by_label(re.compile("^Helmet")).check()
    library.get_by_label(re.compile("^Bike club")).check()
    with htmx_swap(page):
        add.click()
    expect(page.locator("#f-items-1-name")).to_have_value("Bike club")
    expect(page.locator("#item-1-title")).to_be_focused()  # focus on the first product that came in
    assert page.evaluate("() => window.scrollY") == before  # the page did not jump
    expect(library).to_have_count(0)
    # The preview and the payment methods came along (out of band): €10 + €9 + €59.90 today, ACH explained.
    preview = page.locator("#link-preview")
    expect(preview.locator("[data-preview-pay]")).to_have_text("Pay €78.90")
    expect(page.locator("#f-payment_methods")).to_contain_text("Not available: bank debit")

    # The preview is the checkout: contact fields follow their modes as they are changed.
    expect(preview.locator(".cop__label", has_text="First name")).to_have_count(0)
    page.locator("#f-field_first_name").select_option("required")
    expect(preview.locator(".cop__label", has_text="First name")).to_have_text("First name *")
    page.get_by_label("Collect shipping address").check()
    expect(preview.locator(".cop__sub")).to_have_text(["Billing address", "Shipping address"])
    expect(preview.get_by_text("Card number")).to_be_visible()
    assert_accessible(page, f"editor with the checkout preview ({size})")
    screenshot(page, f"b11-editor-preview-{size}")

    # Create → the share step.
    page.get_by_label("Link name").fill("Spring bundle")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/links/\d+/created$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("“Spring bundle” is ready to share")
    expect(page.locator(".alert--warning")).to_contain_text("can't take payments yet")
    url = page.get_by_label("Link to share").input_value()
    assert re.fullmatch(re.escape(base) + r"/pay/[a-z0-9]{10,}", url), url
    page.get_by_role("button", name="Copy link").click()
    page.locator("#toasts").get_by_text("Copied").first.wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == url
    expect(page.locator(".qr svg")).to_be_visible()
    assert url in page.get_by_label("Embed code").input_value()
    expect(page.frame_locator("iframe.embed-preview").locator("a.kassa-button")).to_have_text("Buy now")
    wide = page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert wide
    assert_accessible(page, f"share step ({size})")
    screenshot(page, f"b11-share-step-{size}")
    page.get_by_role("link", name="Done").click()
    page.wait_for_url(re.compile(r"/links/\?highlight=\d+$"))
    expect(page.locator("tr.row--highlight")).to_contain_text("Spring bundle")
    assert page.js_errors == [], sorted(set(page.js_errors))


def test_b11_library_without_javascript_comes_back_at_the_line_items(live_server, shop, browser):
    context = new_context(browser, viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    base = live_server.url
    log_in_page(page, base, EMAIL, PASSWORD)
    page.goto(f"{base}/links/new")
    page.get_by_role("button", name="Add from product library").click()
    page.wait_for_url(f"{base}/links/new#items-title")
    library = page.get_by_role("region", name="Product library")
    library.get_by_label(re.compile("^Bike lock")).check()
    library.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#f-items-0-name")).to_have_value("Bike lock")
    assert page.url.endswith("#items-title")
    expect(page.locator("#items-title")).to_be_in_viewport()
    expect(page.locator("[data-preview-pay]")).to_have_text("Pay €24.50")
    context.close()
