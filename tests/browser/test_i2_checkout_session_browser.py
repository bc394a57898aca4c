"""I2 in Chromium (phone, 390 wide): a shop opens a checkout session for its link through the API with the buyer's
email; the buyer opens the session's `url`, finds the email filled in, pays with the sandbox's test card and is
shown as paid; the API then answers the session complete and paid. A second buyer's session shows their own email.
axe on the page; screenshots of the prefilled checkout."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import expect

from kassa.extensions import db
from kassa.services.api.keys import create_key
from tests.factories import make_merchant
from tests.support.browser import PHONE, assert_accessible, fill_card_and_pay, new_context, screenshot
from tests.support.checkout_flow import make_link
from tests.support.payments import actor_for

pytestmark = pytest.mark.browser


def _api(base: str, secret: str, path: str, data: dict | None = None) -> dict:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(f"{base}/api{path}", data=body, headers={"Authorization": f"Bearer {secret}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_i2_the_buyer_opens_the_sessions_url_with_the_email_filled_and_pays(live_server, browser):
    with live_server.app.app_context():
        owner = make_merchant(company="Fietsenmaker")
        link = make_link(owner, name="Bike service")
        secret = create_key(actor_for(owner), "Webshop", "test")[1]
        link_id = link.id
        db.session.remove()
    base = live_server.url
    session = _api(base, secret, "/v1/checkout/sessions",
                   {"payment_link": f"plink_{link_id}", "customer_email": "ann.buyer@example.com"})
    other = _api(base, secret, "/v1/checkout/sessions",
                 {"payment_link": f"plink_{link_id}", "customer_email": "bob.buyer@example.com"})
    context = new_context(browser, viewport=PHONE, locale="en-US")
    try:
        page = context.new_page()
        page.goto(other["url"])
        expect(page.get_by_label(re.compile(r"^Email"))).to_have_value("bob.buyer@example.com")
        page.goto(session["url"])
        expect(page.get_by_label(re.compile(r"^Email"))).to_have_value("ann.buyer@example.com")
        assert_accessible(page, "api session checkout")
        screenshot(page, "i2-api-checkout-session-prefilled-phone")
        fill_card_and_pay(page, "ann.buyer@example.com")  # the same address: the buyer leaves it as it is
        page.get_by_role("heading", name="Thank you! Your payment was received.").wait_for()
        screenshot(page, "i2-api-checkout-session-paid-phone")
    finally:
        context.close()
    done = _api(base, secret, f"/v1/checkout/sessions/{session['id']}")
    assert (done["status"], done["payment_status"], done["url"]) == ("complete", "paid", None)
    assert _api(base, secret, f"/v1/checkout/sessions/{other['id']}")["status"] == "open"
