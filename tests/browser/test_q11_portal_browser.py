"""Q11, Q5, Q7 on a phone (390×844): a subscriber opens the buyer portal from the link in their receipt email,
downloads a receipt and cancels their subscription; the polite page of a link that completed its payments; the
checkout with the terms of service checkbox. Screenshots of each for a person to look at."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from kassa.extensions import db
from tests.factories import make_merchant
from tests.support.billing import buy
from tests.support.browser import assert_accessible, emailed_link, screenshot, signed_test_url
from tests.support.checkout_flow import item, make_link

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots/limits")


def _keep(path: Path, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / f"{name}.png")


def test_q11_buyer_opens_the_portal_from_the_receipt_downloads_a_receipt_and_cancels(live_server, phone_page):
    app = live_server.app
    with app.app_context():
        owner = make_merchant(company="Lesson Studio")
        link = make_link(owner, name="Lessons", items=[item("Guitar lessons", "10.00", frequency="monthly")],
                         buyer_can_cancel=True)
        app.config["WTF_CSRF_ENABLED"] = False
        try:
            sub = buy(app.test_client(), link)
        finally:
            app.config["WTF_CSRF_ENABLED"] = True
        sub_id = sub.id
        db.session.remove()
    url = emailed_link(live_server, "receipt", "/my/")
    page = phone_page
    page.goto(url if url.startswith("http") else live_server.url + url)
    page.get_by_role("heading", name="Your payments to Lesson Studio").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    _keep(screenshot(page, "q11_portal_phone"), "q11_portal_phone")
    assert_accessible(page, "buyer portal")
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile(r"^Receipt R-")).click()
    assert download.value.suggested_filename.endswith(".pdf")
    page.get_by_role("link", name="Cancel subscription").click()
    page.get_by_role("heading", name="Cancel your subscription").wait_for()
    _keep(screenshot(page, "q11_portal_cancel_phone"), "q11_portal_cancel_phone")
    page.get_by_role("button", name="Yes, cancel my subscription").click()
    page.locator(f"#sub-{sub_id} [data-state=cancelled]").wait_for()
    assert "Your subscription is cancelled" in page.locator(".alert--success").inner_text()
    assert page.get_by_role("link", name="Cancel subscription").count() == 0
    _keep(screenshot(page, "q11_portal_cancelled_phone"), "q11_portal_cancelled_phone")


def test_q5_q7_polite_page_and_terms_checkbox_on_a_phone(live_server, phone_page):
    app = live_server.app
    with app.app_context():
        owner = make_merchant(company="Bean There")
        terms = make_link(owner, name="Beans", require_terms=True, terms_url="https://beanthere.example/terms")
        closed = make_link(owner, name="Closed", ends_at="2020-01-01T00:00")
        terms_slug, closed_slug = terms.slug, closed.slug
        db.session.remove()
    page = phone_page
    page.goto(signed_test_url(live_server.url, terms_slug))
    box = page.get_by_label("I agree to the terms of service")
    box.wait_for()
    assert page.locator("label[for=f-terms] a").get_attribute("target") == "_blank"
    _keep(screenshot(page, "q7_checkout_terms_phone"), "q7_checkout_terms_phone")
    response = page.goto(f"{live_server.url}/pay/{closed_slug}")
    assert response.status == 410
    page.get_by_role("heading", name="This link is no longer accepting payments").wait_for()
    assert "Bean There" in page.locator("main").inner_text()
    _keep(screenshot(page, "q5_polite_page_phone"), "q5_polite_page_phone")
    assert_accessible(page, "polite page")
