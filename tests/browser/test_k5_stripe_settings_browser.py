"""K5 in Chromium: Settings → Payments → Connect Stripe with live keys (checked by one call to a fixture Stripe,
no internet), the connected account shown with its name, country and currency; the page passes axe."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.browser import assert_accessible, screenshot, sign_up
from tests.web.test_k5_connect import PUBLISHABLE, SECRET, FixtureStripe

pytestmark = pytest.mark.browser


@pytest.fixture
def app_config():
    return {"KASSA_STRIPE_HTTP_CLIENT": FixtureStripe(),
            "KASSA_STRIPE_BASE_ADDRESSES": {"api": "http://stripe.fixture", "files": "http://stripe.fixture",
                                            "connect": "http://stripe.fixture"}}


def test_k5_connect_stripe_in_settings_and_see_the_account(live_server, desktop_page):
    page = desktop_page
    sign_up(page, live_server)
    page.goto(f"{live_server.url}/settings/payments")
    expect(page.get_by_text("No live payment processor")).to_be_visible()
    page.get_by_label("Secret key").fill(SECRET)
    page.get_by_label("Publishable key").fill(PUBLISHABLE)
    page.get_by_role("button", name="Connect Stripe").click()

    panel = page.locator(".stripe-connection")
    expect(panel.get_by_role("heading", name="Acme Coffee BV")).to_be_visible()
    expect(panel).to_contain_text("acct_1KassaFixture")
    expect(panel).to_contain_text("NL")
    expect(panel).to_contain_text("EUR")
    expect(panel).to_contain_text("Ends in abcd")
    expect(page.get_by_text(SECRET)).to_have_count(0)  # the secret is never shown again
    assert SECRET not in page.content()
    assert_accessible(page, "settings, payments, Stripe connected")
    screenshot(page, "k5-settings-payments-connected-desktop")
