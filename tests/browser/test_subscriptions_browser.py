"""A subscription from the buyer's checkout to its last charge, in Chromium (S1–S3, E2, T5): buy a monthly × 3
item, move the test clock on the subscription's page, see three payments and Completed, and three receipts
in the SMTP mailbox. axe on the subscriptions list, the subscription page, the cancel dialog and the buyer's
card-update page (phone)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from kassa.database import write_transaction
from kassa.extensions import db
from tests.factories import PASSWORD
from tests.support.app import run_outbox
from tests.support.billing import subscription_shop
from tests.support.browser import (
    PHONE,
    assert_accessible,
    htmx_swap,
    log_in_page,
    screenshot,
    signed_test_url,
)
from tests.support.checkout_flow import subject_of

pytestmark = pytest.mark.browser

MERCHANT = "Muziekschool Do-Re-Mi"
BUYER = "monthly.buyer@example.com"


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


@pytest.fixture
def shop(live_server):
    with live_server.app.app_context():
        owner, link = subscription_shop(MERCHANT, frequency="monthly", term_type="fixed", term_count="3",
                                        price="15.00", name="Guitar lessons")
        shop = {"email": owner.email, "slug": link.slug}
        db.session.remove()
    return shop


def _buy(page, base: str, slug: str) -> None:
    page.goto(signed_test_url(base, slug))
    assert "Then $15.00 every month" in page.locator("main").inner_text()
    page.get_by_label(re.compile(r"^Email")).fill(BUYER)
    page.get_by_label(re.compile(r"^Card number")).fill("4242 4242 4242 4242")
    page.get_by_label(re.compile(r"^Expiry")).fill("12 / 34")
    page.get_by_label(re.compile(r"CVC")).fill("123")
    page.get_by_label("Name on card").fill("Mo Buyer")
    page.get_by_label(re.compile(r"^Address")).fill("Main Street 1")
    page.get_by_label("Postal code").fill("12345")
    page.get_by_label("City").fill("Springfield")
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.get_by_role("heading", name="Thank you! Your payment was received.").wait_for()


def _log_in(page, base: str, email: str) -> None:
    log_in_page(page, base, email, PASSWORD)


def _payment_rows(page) -> list[str]:
    section = page.locator("section", has=page.locator("#payments-title"))
    return section.locator("tbody tr").all_inner_texts()


def test_s1_t5_buy_monthly_times_three_then_advance_the_test_clock_to_completed_with_three_receipts(
        live_server, shop, desktop_page, mailbox):
    page = desktop_page
    _buy(page, live_server.url, shop["slug"])
    _log_in(page, live_server.url, shop["email"])

    page.goto(f"{live_server.url}/subscriptions/")
    row = page.locator("#results tbody tr").filter(has_text=BUYER)
    assert "1 of 3" in row.inner_text() and "Active" in row.inner_text()
    assert_accessible(page, "subscriptions list")
    screenshot(page, "subscriptions-list")

    row.get_by_role("link").first.click()
    page.get_by_role("heading", name="Test clock").wait_for()
    assert "1 of 3 payments" in page.locator(".pagehead").inner_text()
    assert_accessible(page, "subscription page")
    screenshot(page, "subscription-detail")

    with htmx_swap(page):  # the dialog comes over htmx and opens once it has settled
        page.get_by_role("link", name="Cancel subscription").click()
    dialog = page.get_by_role("dialog", name="Cancel this subscription?")
    expect(dialog).to_be_visible()
    assert dialog.get_by_label(re.compile("At the end of the paid period")).is_checked()
    assert_accessible(page, "cancel dialog")
    screenshot(page, "subscription-cancel-dialog")
    dialog.get_by_role("link", name="Keep subscription").click()
    dialog.wait_for(state="hidden")

    for payments in (2, 3):
        page.get_by_role("button", name="+1 month").click()
        page.get_by_text(f"{payments} of 3 payments").wait_for()
        assert "Test clock moved. Charges: 1 succeeded, 0 failed." in page.locator("#toasts").inner_text()

    rows = _payment_rows(page)
    assert len(rows) == 3 and all("Succeeded" in r and "$15.00" in r for r in rows)
    assert "Completed" in page.locator("h1").inner_text()
    assert "No more payments." in page.locator("section", has=page.locator("#schedule-title")).inner_text()
    assert page.get_by_role("link", name="Cancel subscription").count() == 0
    screenshot(page, "subscription-completed")

    with live_server.app.app_context():
        run_outbox()
    receipts = [m for m in mailbox.to(BUYER) if subject_of(m).startswith(f"Your receipt from {MERCHANT}")]
    assert len(receipts) == 3
    assert len({subject_of(m) for m in receipts}) == 3  # three receipt numbers
    assert page.js_errors == []


def test_s3_card_update_page_on_a_phone_is_accessible_and_takes_a_new_card(live_server, shop, new_page):
    from sqlalchemy import select

    from kassa.models import Subscription
    from kassa.services.billing.notices import update_url_token

    page = new_page(PHONE)
    _buy(page, live_server.url, shop["slug"])
    with live_server.app.app_context():
        sub_id = db.session.scalar(select(Subscription.id))
        with write_transaction(db.session):
            token = update_url_token(sub_id)
        db.session.remove()

    page.goto(f"{live_server.url}/billing/{token}")
    page.get_by_role("heading", name="Update your card").wait_for()
    assert "Visa •••• 4242" in page.locator("main").inner_text()
    assert_accessible(page, "card update page")
    screenshot(page, "billing-update-card-phone")

    page.get_by_label(re.compile(r"^Card number")).fill("4000 0000 0000 0002")
    page.get_by_label(re.compile(r"^Expiry")).fill("12 / 34")
    page.get_by_label(re.compile(r"CVC")).fill("123")
    page.get_by_label(re.compile(r"^Name on card")).fill("Mo Buyer")
    page.get_by_role("button", name="Save card").click()
    error = page.locator("#f-card_number-error")
    error.wait_for()
    assert error.inner_text() == "Your card was declined."
    assert_accessible(page, "card update page with an error")
    screenshot(page, "billing-update-card-declined-phone")

    page.get_by_label(re.compile(r"^Card number")).fill("5555 5555 5555 4444")
    page.get_by_label(re.compile(r"CVC")).fill("123")
    page.get_by_role("button", name="Save card").click()
    page.get_by_text("Thank you! Your card is saved.").wait_for()
    # B8: the success is a success (green, role=status), not the red box it used to be.
    expect(page.locator(".alert--success[role=status]")).to_contain_text("Card saved")
    expect(page.locator(".alert--error")).to_have_count(0)
    assert_accessible(page, "card update page, card saved")
    screenshot(page, "b8-billing-update-card-saved-phone")
    with live_server.app.app_context():
        assert db.session.get(Subscription, sub_id).card_last4 == "4444"
        db.session.remove()
    assert page.js_errors == []


def test_b9_a_subscriptions_own_test_clock_advances_goes_back_to_real_time_and_the_switch_shows_its_state(
        live_server, shop, desktop_page):
    """B9 at 1440×900: the test card switch shows which is on (aria-pressed and a visible tick), +1 month bills
    this subscription on its own clock (declined, as switched), "Back to real time" resets it; axe 0."""
    page = desktop_page
    _buy(page, live_server.url, shop["slug"])
    _log_in(page, live_server.url, shop["email"])
    page.goto(f"{live_server.url}/subscriptions/")
    page.locator("#results tbody tr").filter(has_text=BUYER).get_by_role("link").first.click()
    page.get_by_role("heading", name="Test clock").wait_for()

    switch = page.get_by_role("group", name="Test card from the next charge")
    succeeds, declines = switch.get_by_role("button", name="Succeeds"), switch.get_by_role("button", name="Declines")
    expect(succeeds).to_have_attribute("aria-pressed", "true")
    expect(declines).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#clock-reading")).to_contain_text("reads real time")
    assert page.get_by_role("button", name="Back to real time").count() == 0

    declines.click()
    expect(page.get_by_role("group", name="Test card from the next charge").get_by_role(
        "button", name="Declines")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#test-card-state")).to_have_text("Now on: the test card declines.")

    page.get_by_role("button", name="+1 month").click()
    expect(page.locator("#toasts")).to_contain_text("Test clock moved. Charges: 0 succeeded, 1 failed.")
    expect(page.locator("#clock-reading")).to_contain_text("ahead of real time")
    assert "Past due" in page.locator("h1").inner_text()
    assert_accessible(page, "subscription page, clock advanced")
    screenshot(page, "subscription-b9-clock-advanced")

    page.get_by_role("button", name="Back to real time").click()
    expect(page.locator("#toasts")).to_contain_text("The test clock is back to real time.")
    expect(page.locator("#clock-reading")).to_contain_text("reads real time")
    expect(page.get_by_role("button", name="Back to real time")).to_have_count(0)
    rows = _payment_rows(page)
    assert len(rows) == 2 and "Failed" in rows[0]  # the declined renewal stays, with its date
    assert_accessible(page, "subscription page, back to real time")
    screenshot(page, "subscription-b9-back-to-real-time")
    assert page.js_errors == []
