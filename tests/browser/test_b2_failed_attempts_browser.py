"""B2 and B8 in Chromium: a buyer is declined on a phone (390×844) — the decline is its own message, not a field
summary — then pays; the merchant's payments list (1440×900) shows the Failed row with its reason beside the
Succeeded one, and its panel shows reason, risk, brand and last 4 without refund or receipt. axe clean."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD
from tests.support.browser import (
    assert_accessible,
    bookshop_link,
    fill_card_and_pay,
    log_in_page,
    screenshot,
    signed_test_url,
    wait_for_htmx_idle,
)

pytestmark = pytest.mark.browser
EMAIL = "owner@lantern.example"
BUYER = "rita.reader@example.com"
REASON = "The bank declined the card without giving a reason."


@pytest.fixture
def slug(live_server) -> str:
    return bookshop_link(live_server, "Lantern Books", EMAIL, PASSWORD)


def _fill(page, number: str) -> None:
    fill_card_and_pay(page, BUYER, card=number, card_name="Rita Reader")


def test_b2_declined_then_paid_on_a_phone_then_the_failed_row_in_the_merchants_list(
        live_server, slug, phone_page, desktop_page):
    base = live_server.url
    buyer = phone_page
    buyer.goto(signed_test_url(base, slug))
    _fill(buyer, "4000 0000 0000 0002")

    # B8: the decline is its own error message (role=alert), and no "Check the highlighted fields" list.
    declined = buyer.locator(".alert--error[role=alert]")
    expect(declined).to_contain_text("Your payment was declined")
    expect(declined).to_contain_text("Your card was declined.")
    expect(buyer.locator("#error-summary")).to_be_hidden()
    expect(buyer.locator("#f-card_number-error")).to_have_text("Your card was declined.")
    assert_accessible(buyer, "declined checkout (390×844)")
    screenshot(buyer, "b2-checkout-declined-phone")
    buyer.get_by_label(re.compile(r"^Card number")).fill("4242 4242 4242 4242")
    buyer.get_by_label(re.compile(r"CVC")).fill("123")
    buyer.get_by_role("button", name=re.compile(r"^Pay ")).click()
    buyer.get_by_role("heading", name="Thank you! Your payment was received.").wait_for()

    merchant = desktop_page
    log_in_page(merchant, base, EMAIL, PASSWORD)
    merchant.goto(f"{base}/payments/")
    rows = merchant.locator("table.table--payments tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Succeeded")
    failed = rows.nth(1)
    expect(failed).to_contain_text("Failed")
    expect(failed).to_contain_text(REASON)
    expect(failed).to_contain_text("Visa •••• 0002")
    assert_accessible(merchant, "payments list with a failed attempt (1440×900)")
    screenshot(merchant, "b2-payments-failed-desktop")

    failed.get_by_role("link").first.click()
    wait_for_htmx_idle(merchant)
    panel = merchant.locator("#card-decline")
    expect(panel).to_contain_text(REASON)
    expect(panel).to_contain_text("Normal risk")
    expect(panel).to_contain_text("Visa •••• 0002")
    expect(merchant.get_by_role("link", name="Refund")).to_have_count(0)
    expect(merchant.get_by_role("link", name="Send receipt")).to_have_count(0)
    assert_accessible(merchant, "failed payment panel (1440×900)")
    screenshot(merchant, "b2-payment-panel-failed-desktop")
    assert buyer.js_errors == [] and merchant.js_errors == []
