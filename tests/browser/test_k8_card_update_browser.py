"""K8: a buyer whose live subscription is past due updates the card on a phone through Stripe's Payment Element in
setup mode, against localstripe: the PaymentMethod the (stand-in) Stripe.js makes is saved on Stripe for off-session
charges, the outstanding period is charged at once, and the page reaches only its own origin, Stripe.js's and
Stripe's API (tests/support/stripe_standin.py)."""

from __future__ import annotations

import re
import urllib.request
from urllib.parse import urlsplit

import pytest

from kassa import secrets_box
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Payment, StripeConnection, Subscription
from tests.support.billing import buy, subscription_shop
from tests.support.browser import new_context
from tests.support.localstripe import localstripe_url  # noqa: F401  (the fixture)
from tests.support.stripe_standin import standin_config, stripe_js  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser


@pytest.fixture
def app_config(localstripe_url, stripe_js):  # noqa: F811
    return standin_config(localstripe_url, stripe_js)


@pytest.fixture
def past_due(live_server, localstripe_url):  # noqa: F811
    """A live monthly subscription on a Stripe-connected account whose last renewal failed."""
    urllib.request.urlopen(urllib.request.Request(f"{localstripe_url}/_config/data", method="DELETE"), timeout=10)
    with live_server.app.app_context():
        owner, link = subscription_shop("Muziekschool Live", frequency="monthly", term_type="auto_renew",
                                        price="15.00")
        # Bought in test mode through the checkout pages by a test client (no CSRF token: switched off for it).
        live_server.app.config["WTF_CSRF_ENABLED"] = False
        try:
            sub = buy(live_server.app.test_client(), link)
        finally:
            live_server.app.config["WTF_CSRF_ENABLED"] = True
        with write_transaction(db.session) as session:
            session.add(StripeConnection(
                account_id=owner.account_id, mode="live", secret_key_encrypted=secrets_box.encrypt("sk_test_kassa"),
                secret_key_last4="assa", publishable_key="pk_test_kassa", stripe_account_id="acct_local"))
            row = session.get(Subscription, sub.id)
            row.mode, row.status, row.failed_attempts, row.update_token = "live", "past_due", 1, "k8-browser"
        sub_id = sub.id
        db.session.remove()
    return sub_id


def test_k8_a_buyer_updates_the_card_of_a_past_due_live_subscription_through_the_payment_element(
        browser, live_server, past_due, localstripe_url, stripe_js):  # noqa: F811
    context = new_context(browser, viewport={"width": 390, "height": 844})
    page = context.new_page()
    origins: set[str] = set()
    page.on("request", lambda r: origins.add("{0.scheme}://{0.netloc}".format(urlsplit(r.url)))
            if r.url.startswith("http") else None)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)

    page.goto(f"{live_server.url}/billing/k8-browser")
    page.get_by_role("heading", name="Update your card").wait_for()
    page.wait_for_function("() => !document.querySelector('#pay-button').disabled")  # the element is ready
    assert page.locator("[data-needs-js]").is_hidden()
    assert page.evaluate("() => window.__stripeElementsOptions") == {"mode": "setup", "currency": "usd"}
    page.get_by_label("Card number (Stripe)").fill("5555 5555 5555 4444")
    page.get_by_role("button", name="Save card").click()
    page.get_by_text("Thank you! Your card is saved. The outstanding payment went through.").wait_for()

    assert origins == {live_server.url, f"http://{urlsplit(stripe_js).netloc}", localstripe_url}
    assert violations == []
    with live_server.app.app_context():
        sub = db.session.get(Subscription, past_due)
        assert (sub.status, sub.card_last4) == ("active", "4444")  # (localstripe calls every card a Visa)
        assert sub.payment_method_token.startswith("pm_")
        (renewal,) = db.session.query(Payment).filter(Payment.mode == "live").all()
        assert (renewal.status, renewal.processor, renewal.card_last4) == ("succeeded", "stripe", "4444")
        db.session.remove()
    # Back on the page later: the new card is the current one.
    page.goto(f"{live_server.url}/billing/k8-browser")
    assert re.search(r"Current card: \w+ •••• 4444", page.locator("main").inner_text())
    context.close()


def test_k8_a_declined_card_leaves_the_saved_card_and_says_so_under_the_element(
        browser, live_server, past_due):
    context = new_context(browser, viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{live_server.url}/billing/k8-browser")
    page.wait_for_function("() => !document.querySelector('#pay-button').disabled")
    page.get_by_label("Card number (Stripe)").fill("4000 0000 0000 0341")  # localstripe: attaches, then declines
    page.get_by_role("button", name="Save card").click()
    error = page.locator("#f-payment_method-error")
    error.wait_for()
    assert error.inner_text()
    with live_server.app.app_context():
        sub = db.session.get(Subscription, past_due)
        assert sub.status == "past_due"
        db.session.remove()
    context.close()
