"""B1 in Chromium: the home with one of every kind of item that needs attention and today's figures, at
1440×900 and 390×844, axe clean, each item's button opening where it is handled; B3/B4: a search from the top
bar lands on Payments with its chips, and a chip's × removes it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD
from tests.support.browser import assert_accessible, log_in_page, screenshot

pytestmark = pytest.mark.browser
EMAIL = "owner@harbour.example"


def _shot(page, name: str) -> None:
    screenshot(page, name)


@pytest.fixture
def busy_shop(live_server):
    from kassa.extensions import db
    from tests.factories import make_merchant, make_payment
    from tests.support.home import attention_items

    with live_server.app.app_context():
        owner = make_merchant(company="Harbour Books", email=EMAIL, password=PASSWORD)
        attention_items(owner)
        for email, amount, method in (("ann@readers.example", 2500, "card"), ("bob@readers.example", 6000, "ach"),
                                      ("cy@readers.example", 1250, "card")):
            make_payment(owner.account_id, amount_minor=amount, email=email, method=method)
        db.session.remove()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_b1_home_shows_every_kind_of_attention_item_axe_clean(live_server, busy_shop, desktop_page, phone_page, size):
    page = desktop_page if size == "desktop" else phone_page
    base = live_server.url
    log_in_page(page, base, EMAIL, PASSWORD)
    items = page.locator(".attention .attention__item")
    expect(items).to_have_count(5)
    expect(items.nth(0)).to_contain_text("days left to respond")
    for kind in ("Dispute", "Past due", "Payout failed", "Link paused", "Export failed"):
        expect(page.locator(".attention")).to_contain_text(kind)
    expect(page.locator("#today-title")).to_be_visible()
    expect(page.locator(".bell__count")).to_contain_text("3")
    wide = page.evaluate("""[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right
        > window.innerWidth + 1).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).slice(0, 12)""")
    assert not wide, wide  # nothing sideways
    assert_accessible(page, f"home with attention items ({size})")
    _shot(page, f"b1-home-attention-{size}")
    page.get_by_role("link", name="Respond").first.click()
    page.wait_for_url(f"{base}/disputes/*/counter/1")
    assert page.js_errors == [], sorted(set(page.js_errors))


def test_b1_empty_home_is_axe_clean(live_server, desktop_page):
    from kassa.extensions import db
    from tests.factories import make_merchant

    with live_server.app.app_context():
        make_merchant(company="Quiet Shop", email=EMAIL, password=PASSWORD)
        db.session.remove()
    page = desktop_page
    log_in_page(page, live_server.url, EMAIL, PASSWORD)
    expect(page.get_by_text("You're all caught up.")).to_be_visible()
    assert_accessible(page, "empty home")
    _shot(page, "b1-home-empty-desktop")


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_b4_search_from_the_top_bar_then_remove_a_chip(live_server, busy_shop, desktop_page, phone_page, size):
    page = desktop_page if size == "desktop" else phone_page
    base = live_server.url
    log_in_page(page, base, EMAIL, PASSWORD)
    if size == "phone":  # B12: on a phone the search sits behind the menu button with the main menu
        page.get_by_role("button", name="Menu").click()
        expect(page.get_by_role("button", name="Menu")).to_have_attribute("aria-expanded", "true")
    page.locator("#top-search").fill("buyer")
    page.locator("form.topsearch").get_by_role("button", name="Search").click()  # the magnifier
    page.wait_for_url(f"{base}/payments/?q=buyer")
    expect(page.locator("table.table--payments tbody tr")).to_have_count(5)  # names start "Buyer"
    page.goto(f"{base}/payments/?q=buyer&method=card&date=last_30&status=succeeded")
    labels = page.locator(".chips .chip__label")
    expect(labels).to_have_count(4)
    assert labels.all_inner_texts() == ["Search: “buyer”", "Status: Succeeded", "Payment date: Last 30 days",
                                        "Payment method: Card"]
    expect(page.locator("table.table--payments tbody tr")).to_have_count(2)
    assert_accessible(page, f"payments with chips ({size})")
    _shot(page, f"b4-payments-chips-{size}")
    page.reload()  # a screenshot leaves empty style="" attributes that the CSP reports once htmx copies them
    page.get_by_role("link", name="Remove filter: Payment method: Card").click()
    expect(labels).to_have_count(3)
    expect(page.locator("table.table--payments tbody tr")).to_have_count(3)
    assert "method=" not in page.url
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.js_errors == [], sorted(set(page.js_errors))
