"""Q9 in Chromium: a buyer starts a free trial on the phone (390×844): the order summary says "Free for 14 days,
then €10.00 every month", the button "Start free trial", nothing is charged and the confirmation says when the
first payment comes. The merchant (1440×900) moves the subscription's test clock past the trial: exactly one
charge of €10.00, the subscription active. axe on the phone checkout, its confirmation and the subscription page."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from kassa.extensions import db
from tests.factories import PASSWORD, make_merchant
from tests.support.browser import assert_accessible, log_in_page, screenshot, signed_test_url
from tests.support.checkout_flow import item, make_link

pytestmark = pytest.mark.browser

MERCHANT = "Koffiebranderij Bonen"
BUYER = "trial.buyer@example.com"
SHOTS = Path("/tmp/shots/trial")


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(screenshot(page, name), SHOTS / f"{name}.png")


@pytest.fixture
def shop(live_server):
    with live_server.app.app_context():
        owner = make_merchant(MERCHANT, currency="EUR", country="NL")
        link = make_link(owner, currency="EUR", trial_days="14", items=[
            item("Coffee club", "10.00", frequency="monthly", term_type="auto_renew")])
        shop = {"email": owner.email, "slug": link.slug, "id": link.id}
        db.session.remove()
    return shop


def test_q9_a_trial_started_on_the_phone_is_charged_once_after_the_test_clock_passes_its_end(
        live_server, shop, phone_page, desktop_page):
    page = phone_page
    page.goto(signed_test_url(live_server.url, shop["slug"]))
    summary = page.locator(".summary")
    assert "Free for 14 days, then €10.00 every month" in summary.inner_text()
    assert page.locator("#summary-total").inner_text() == "€0.00"
    assert_accessible(page, "trial checkout (phone)")
    _shot(page, "q9-phone-checkout-trial")
    page.get_by_label(re.compile(r"^Email")).fill(BUYER)
    page.get_by_label(re.compile(r"^Card number")).fill("4242 4242 4242 4242")
    page.get_by_label(re.compile(r"^Expiry")).fill("12 / 34")
    page.get_by_label(re.compile(r"CVC")).fill("123")
    page.get_by_label("Name on card").fill("Tess Trial")
    page.get_by_label(re.compile(r"^Address")).fill("Main Street 1")
    page.get_by_label("Postal code").fill("1011 AB")
    page.get_by_label("City").fill("Amsterdam")
    page.get_by_role("button", name="Start free trial").click()
    page.get_by_role("heading", name="Your free trial has started").wait_for()
    assert re.search(r"Free trial until .+, then €10\.00 every month", page.locator("main").inner_text())
    assert_accessible(page, "trial confirmation (phone)")
    _shot(page, "q9-phone-trial-started")
    assert page.js_errors == []

    desk = desktop_page
    log_in_page(desk, live_server.url, shop["email"], PASSWORD)
    desk.goto(f"{live_server.url}/subscriptions/")
    desk.locator("#results tbody tr").filter(has_text=BUYER).get_by_role("link").first.click()
    desk.get_by_role("heading", name="Test clock").wait_for()
    assert "Trial" in desk.locator("h1").inner_text()
    assert re.search(r"Free trial until .+, then €10\.00 every month", desk.locator("#trial").inner_text())
    desk.get_by_role("button", name="+1 month").click()
    desk.get_by_text("Test clock moved. Charges: 1 succeeded, 0 failed.").wait_for()
    assert "Active" in desk.locator("h1").inner_text()
    rows = desk.locator("section", has=desk.locator("#payments-title")).locator("tbody tr").all_inner_texts()
    assert len(rows) == 1 and "Succeeded" in rows[0] and "€10.00" in rows[0]
    assert_accessible(desk, "subscription after the first charge")
    _shot(desk, "q9-subscription-after-first-charge")
    # The link editor: the trial field and its live preview.
    desk.goto(f"{live_server.url}/links/{shop['id']}/edit")
    assert desk.get_by_label(re.compile(r"^Free trial \(days\)")).input_value() == "14"
    assert "Free for 14 days, then €10.00 every month" in desk.locator("#link-preview").inner_text()
    _shot(desk, "q9-editor-trial")
    assert desk.js_errors == []
