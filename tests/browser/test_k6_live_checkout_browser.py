"""K6/K13: a buyer pays a live link on a phone, end to end, through the Payment Element flow against localstripe.

Stripe.js is the test-only stand-in tests/browser/fixtures/stripe-standin.js (localstripe's own has no Payment
Element), served from its own origin like js.stripe.com (tests/support/stripe_standin.py); the PaymentMethod it makes and
every API call Kassa makes go to localstripe. The page may reach only its own origin and those two."""

from __future__ import annotations

import re
import urllib.request
from urllib.parse import urlsplit

import pytest

from kassa import secrets_box
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import StripeConnection
from tests.factories import PASSWORD
from tests.support.browser import log_in_page, new_context, screenshot
from tests.support.checkout_flow import make_shop
from tests.support.localstripe import localstripe_url  # noqa: F401  (the fixture)
from tests.support.stripe_standin import standin_config, stripe_js  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser

MERCHANT = "Bakkerij Live"
BUYER = "live.buyer@example.com"


@pytest.fixture
def app_config(localstripe_url, stripe_js):  # noqa: F811
    return standin_config(localstripe_url, stripe_js)


@pytest.fixture
def shop(live_server, localstripe_url):  # noqa: F811
    # Kassa's database starts empty for each test, so its ids (and idempotency keys) start over; localstripe's
    # store must too, as a real Stripe account would never see a key again.
    urllib.request.urlopen(urllib.request.Request(f"{localstripe_url}/_config/data", method="DELETE"), timeout=10)
    with live_server.app.app_context():
        owner, link = make_shop(MERCHANT)
        with write_transaction(db.session) as session:
            session.add(StripeConnection(
                account_id=owner.account_id, mode="live", secret_key_encrypted=secrets_box.encrypt("sk_test_kassa"),
                secret_key_last4="assa", publishable_key="pk_test_kassa", stripe_account_id="acct_local"))
        shop = (owner.email, link.slug)
        db.session.remove()
    return shop


def _origins(page) -> set[str]:
    seen: set[str] = set()
    page.on("request", lambda request: seen.add("{0.scheme}://{0.netloc}".format(urlsplit(request.url)))
            if request.url.startswith("http") else None)
    return seen


def _fill(page, card: str) -> None:
    page.get_by_label(re.compile(r"^Email")).fill(BUYER)
    page.get_by_label(re.compile(r"^Address")).fill("Damrak 1")
    page.get_by_label("Postal code").fill("1012 LG")
    page.get_by_label("City").fill("Amsterdam")
    page.get_by_label("Card number (Stripe)").fill(card)


def test_k6_a_buyer_pays_a_live_link_on_a_phone_through_the_payment_element(browser, live_server, shop,
                                                                               localstripe_url, stripe_js):  # noqa: F811
    email, slug = shop
    context = new_context(browser, viewport={"width": 390, "height": 844})
    page = context.new_page()
    origins = _origins(page)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)

    page.goto(f"{live_server.url}/pay/{slug}")
    pay = page.get_by_role("button", name=re.compile(r"^Pay "))
    pay.wait_for()
    page.wait_for_function("() => !document.querySelector('#pay-button').disabled")  # the element is ready
    assert page.locator("[data-needs-js]").is_hidden()
    assert page.locator("input[name=card_number]").count() == 0
    _fill(page, "4242 4242 4242 4242")
    screenshot(page, "k6-live-checkout-phone")
    pay.click()
    page.get_by_role("heading", name="Thank you! Your payment was received.").wait_for()

    assert origins == {live_server.url, f"http://{urlsplit(stripe_js).netloc}", localstripe_url}
    assert violations == []

    merchant = context.new_page()
    log_in_page(merchant, live_server.url, email, PASSWORD)
    merchant.goto(f"{live_server.url}/payments")
    row = merchant.get_by_role("row").filter(has_text=BUYER)
    row.wait_for()
    assert "4242" in row.inner_text()
    with live_server.app.app_context():
        from kassa.models import Payment

        payment = db.session.query(Payment).one()
        assert (payment.processor, payment.card_brand, payment.card_last4) == ("stripe", "visa", "4242")
        assert payment.processor_ref.startswith("pi_")
        db.session.remove()
    context.close()


def test_k6_3d_secure_runs_in_the_browser_and_the_page_waits_for_stripes_answer(browser, live_server, shop):
    """localstripe's 4000002500003155 asks for authentication: the page runs the next action (the stand-in says
    yes at the bank), comes back to /return, and only then shows the payment as received."""
    _email, slug = shop
    context = new_context(browser, viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{live_server.url}/pay/{slug}")
    page.wait_for_function("() => !document.querySelector('#pay-button').disabled")
    _fill(page, "4000 0025 0000 3155")
    with page.expect_response(lambda r: r.url.endswith("/return")):
        page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.get_by_role("heading", name="Thank you! Your payment was received.").wait_for()
    with live_server.app.app_context():
        from kassa.models import Payment, PaymentAttempt

        assert [p.status for p in db.session.query(Payment)] == ["succeeded"]
        assert [a.status for a in db.session.query(PaymentAttempt)] == ["succeeded"]
        db.session.remove()
    context.close()
