"""B2 in Chromium: a buyer on a phone (390×844) pays with the 3-D Secure test card, reaches the test authentication
page and leaves without answering; the merchant's payments list (1440×900) shows the attempt as Incomplete with
why, brand and last 4 — while it waits, and once the reconciler has given up on it ("left without confirming") —
and its panel says why it is incomplete, without refund or receipt. axe clean."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
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
EMAIL = "owner@harbour.example"
BUYER = "rita.reader@example.com"
WAITING = "Waiting for the buyer to confirm the payment with their bank (3-D Secure)."
ABANDONED = "The buyer left without confirming the payment with their bank. Nothing was charged."


@pytest.fixture
def slug(live_server) -> str:
    return bookshop_link(live_server, "Harbour Books", EMAIL, PASSWORD)


def _pay(page, number: str) -> None:
    fill_card_and_pay(page, BUYER, card=number, card_name="Rita Reader")


def test_b2_a_3ds_challenge_left_on_a_phone_is_an_incomplete_row_in_the_merchants_list(
        live_server, slug, phone_page, desktop_page):
    base = live_server.url
    buyer = phone_page
    buyer.goto(signed_test_url(base, slug))
    _pay(buyer, "4000 0027 6000 3184")

    buyer.get_by_role("heading", name="Confirm your payment").wait_for()
    expect(buyer.get_by_role("button", name="Complete authentication")).to_be_visible()
    expect(buyer.get_by_role("button", name="Fail authentication")).to_be_visible()
    assert_accessible(buyer, "test authentication page (390×844)")
    screenshot(buyer, "b2-checkout-3ds-phone")
    buyer.goto("about:blank")  # the buyer leaves the challenge unanswered

    merchant = desktop_page
    log_in_page(merchant, base, EMAIL, PASSWORD)
    merchant.goto(f"{base}/payments/")
    rows = merchant.locator("table.table--payments tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Incomplete")
    expect(rows.first).to_contain_text(WAITING)
    expect(rows.first).to_contain_text("Visa •••• 3184")
    assert_accessible(merchant, "payments list with an incomplete attempt (1440×900)")
    screenshot(merchant, "b2-payments-incomplete-desktop")

    # Ten minutes on, the reconciler gives up: the sandbox cancels the charge, the row stays Incomplete.
    from kassa.clock import now
    from kassa.extensions import db
    from kassa.services.checkout import checkout as checkout_service

    with live_server.app.app_context():
        with time_machine.travel(now() + checkout_service.IN_FLIGHT_LIMIT + timedelta(seconds=5), tick=False):
            checkout_service.reconcile_attempts()
        db.session.remove()
    merchant.goto(f"{base}/payments/?status=incomplete")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Incomplete")
    expect(rows.first).to_contain_text(ABANDONED)
    expect(merchant.locator(".chip").filter(has_text="Status: Incomplete")).to_have_count(1)
    assert_accessible(merchant, "payments list filtered to incomplete (1440×900)")
    screenshot(merchant, "b2-payments-incomplete-abandoned-desktop")

    rows.first.get_by_role("link").first.click()
    wait_for_htmx_idle(merchant)
    panel = merchant.locator("#card-decline")
    expect(panel).to_contain_text("Why it's incomplete")
    expect(panel).to_contain_text(ABANDONED)
    expect(panel).to_contain_text("Visa •••• 3184")
    expect(merchant.get_by_role("link", name="Refund")).to_have_count(0)
    expect(merchant.get_by_role("link", name="Send receipt")).to_have_count(0)
    assert_accessible(merchant, "incomplete payment panel (1440×900)")
    screenshot(merchant, "b2-payment-panel-incomplete-desktop")
    assert buyer.js_errors == [] and merchant.js_errors == []
