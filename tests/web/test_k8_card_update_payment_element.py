"""K8/K12: the card-update page of a subscription charged through Stripe takes the new card in Stripe's Payment
Element in setup mode (the page the `authentication_required` email links to); only that page's CSP allows
Stripe's origins. The sandbox's card-update page keeps Kassa's own card fields and reaches no other origin."""

from __future__ import annotations

import re

from kassa import secrets_box
from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Account, StripeConnection, Subscription
from tests.support.billing import buy, reload, subscription_shop
from tests.support.checkout_flow import soup_of

STRIPE_ORIGINS = {"https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com",
                  "https://api.stripe.com"}


def _connect(account_id: int, mode: str) -> None:
    with write_transaction(db.session) as session:
        session.add(StripeConnection(
            account_id=account_id, mode=mode, secret_key_encrypted=secrets_box.encrypt(f"sk_{mode}_kassa0000000000"),
            secret_key_last4="0000", publishable_key=f"pk_{mode}_kassa0000000000", stripe_account_id="acct_1Local",
            stripe_account_name="Local Stripe", country="US", default_currency="USD", connected_at=now()))


def _subscription(client, *, mode: str, token: str, status: str = "active") -> Subscription:
    _owner, link = subscription_shop(frequency="monthly", term_type="auto_renew", currency="EUR")
    sub = buy(client, link)
    with write_transaction(db.session) as session:
        row = session.get(Subscription, sub.id)
        row.mode, row.update_token, row.status = mode, token, status
    client.post("/logout")
    return reload(sub)


def _csp(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in policy.split(";")) if part}


def _third_party(response) -> set[str]:
    """Every origin the CSP allows besides the page's own, and every other origin the HTML names."""
    allowed = {source for sources in _csp(response).values() for source in sources if "://" in source
               or source.startswith("*.")}
    named = {m.group(1) for m in re.finditer(r'(?:src|href|action)="((?:https?:)?//[^/"]+)',
                                             response.get_data(as_text=True))}
    return allowed | named


def test_k8_the_card_update_page_of_a_live_stripe_subscription_runs_the_payment_element_in_setup_mode(client, app):
    sub = _subscription(client, mode="live", token="k8-pe-live")
    _connect(sub.account_id, "live")

    response = client.get("/billing/k8-pe-live")

    assert response.status_code == 200
    html = soup_of(response)
    mount = html.select_one("#f-payment_method")
    assert (mount["data-mode"], mount["data-currency"], mount["data-stripe-key"]) == (
        "setup", "eur", "pk_live_kassa0000000000")
    assert not mount.has_attr("data-amount")  # setup mode: nothing is charged by the element
    assert html.select_one("form#checkout-form input[type=hidden][name=payment_method]") is not None
    assert not html.select("input[name=card_number], input[name=card_cvc], input[name=card_expiry]")
    # Without JavaScript: a clear note, and a Save button that stays off (it would post no card).
    assert "needs JavaScript" in html.select_one("[data-needs-js]").get_text()
    assert html.select_one("#pay-button").has_attr("disabled")
    scripts = [s["src"] for s in html.select("script[src]")]
    assert scripts[0] == app.config["KASSA_STRIPE_JS_URL"] and "checkout-stripe" in scripts[1]
    csp = _csp(response)
    assert "https://js.stripe.com" in csp["script-src"] and "'strict-dynamic'" not in csp["script-src"]
    assert "https://api.stripe.com" in csp["connect-src"] and "https://hooks.stripe.com" in csp["frame-src"]
    assert _third_party(response) == STRIPE_ORIGINS


def test_k12_a_subscription_on_stripe_test_mode_gets_the_payment_element_too(client, app):
    sub = _subscription(client, mode="test", token="k12-pe-test")
    _connect(sub.account_id, "test")
    with write_transaction(db.session) as session:
        session.get(Account, sub.account_id).test_processor = "stripe"

    html = soup_of(client.get("/billing/k12-pe-test"))

    assert html.select_one("#f-payment_method")["data-stripe-key"] == "pk_test_kassa0000000000"


def test_k8_the_sandbox_card_update_page_is_unchanged_and_reaches_no_other_origin(client, app):
    sub = _subscription(client, mode="test", token="k8-pe-sandbox")
    _connect(sub.account_id, "live")  # a live connection does not put Stripe on a sandbox subscription's page
    _connect(sub.account_id, "test")  # nor does a test connection the account did not choose (K12)

    response = client.get("/billing/k8-pe-sandbox")

    assert response.status_code == 200
    html = soup_of(response)
    assert {i["name"] for i in html.select("form#checkout-form input")} == {
        "csrf_token", "card_number", "card_expiry", "card_cvc", "card_name"}
    assert html.select_one("#f-payment_method") is None and html.select("script[src]") == []
    assert _third_party(response) == set()


def test_k8_an_ended_live_subscription_loads_no_stripe_js(client, app):
    sub = _subscription(client, mode="live", token="k8-pe-ended", status="cancelled")
    _connect(sub.account_id, "live")

    response = client.get("/billing/k8-pe-ended")

    assert "This subscription has ended" in response.get_data(as_text=True)
    assert soup_of(response).select("script[src]") == [] and _third_party(response) == set()
