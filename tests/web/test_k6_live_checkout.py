"""K6 Live checkout on Kassa's own page: a live checkout of an account connected to Stripe shows Stripe's Payment
Element instead of Kassa's card and bank fields, posts only a PaymentMethod id, and waits for Stripe's answer
(3-D Secure and bank redirects included) before it shows anything as paid. Stripe is answered here by the
recording fixture transport (tests/support/stripe_doubles.py): every request Kassa sends is checked."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from kassa import secrets_box
from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import PaymentAttempt, StripeConnection
from kassa.services.checkout import checkout as checkout_service
from tests.support.checkout import ADDRESS_FIELDS, path_of, start_checkout
from tests.support.checkout_flow import all_payments, attempts, field_errors, make_shop, soup_of
from tests.support.payments import login, text_of
from tests.support.stripe_doubles import FixtureTransport

SECRET = "sk_live_51KassaShop0000000000000000000000000000000000abcd"
PUBLISHABLE = "pk_live_51KassaShop000000000000000000000000000000000000001"
OTHER_SECRET = "sk_live_51OtherShop000000000000000000000000000000000wxyz"
OTHER_PUBLISHABLE = "pk_live_51OtherShop00000000000000000000000000000000000002"
CREATED = 1_804_075_200
EMPTY_LIST = {"object": "list", "data": [], "has_more": False, "url": "/v1/payment_intents"}
CARD_PM = {"id": "pm_1Visa", "object": "payment_method", "type": "card", "customer": None, "metadata": {},
           "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030, "funding": "credit"}}
TXN = {"id": "txn_1", "object": "balance_transaction", "amount": 2500, "currency": "usd", "fee": 103, "net": 2397,
       "exchange_rate": None, "type": "charge"}
CHARGE = {"id": "ch_1", "object": "charge", "amount": 2500, "amount_refunded": 0, "currency": "usd",
          "disputed": False, "status": "succeeded", "balance_transaction": TXN}
AUTH_FAILED = {"code": "payment_intent_authentication_failure", "type": "card_error",
               "message": "We are unable to authenticate your payment method. Please choose a different payment "
                          "method and try again."}
DECLINE = {"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
                     "message": "Your card has insufficient funds."}}
STRIPE_ORIGINS = {"https://js.stripe.com", "https://api.stripe.com", "https://hooks.stripe.com", "https://*.js.stripe.com"}


@pytest.fixture
def transport() -> FixtureTransport:
    return FixtureTransport({})


@pytest.fixture
def app_config(request, transport):
    return {**getattr(request, "param", {}), "KASSA_STRIPE_HTTP_CLIENT": transport,
            "KASSA_STRIPE_BASE_ADDRESSES": {"api": "http://stripe.fixture", "files": "http://stripe.fixture",
                                            "connect": "http://stripe.fixture"}}


def _connect(account_id: int, secret: str = SECRET, publishable: str = PUBLISHABLE) -> None:
    with write_transaction(db.session) as session:
        session.add(StripeConnection(account_id=account_id, mode="live", secret_key_encrypted=secrets_box.encrypt(secret),
                                     secret_key_last4=secret[-4:], publishable_key=publishable,
                                     stripe_account_id=f"acct_{account_id}"))


@pytest.fixture
def shop(app):
    owner, link = make_shop("Live Shop")
    _connect(owner.account_id)
    return owner, link


def _intent(key: str, account_id: int, status: str, **extra) -> dict:
    return {"id": "pi_1", "object": "payment_intent", "amount": 2500, "currency": "usd", "status": status,
            "created": CREATED, "payment_method": "pm_1Visa", "client_secret": "pi_1_secret_abc",
            "latest_charge": CHARGE if status == "succeeded" else None, "last_payment_error": None,
            "metadata": {"kassa_account": str(account_id), "kassa_key": key, "kassa_request": "2500|USD|pm_1Visa|0"},
            **extra}


def _listing(*intents: dict) -> dict:
    return {**EMPTY_LIST, "data": list(intents)}


def _form(**overrides) -> dict:
    form = {"email": "ann.buyer@example.com", "first_name": "Ann", "last_name": "Buyer", "payment_method": "pm_1Visa",
            **ADDRESS_FIELDS}
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def _csp(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in policy.split(";")) if part}


def _third_party(response) -> set[str]:
    """Every origin the page's CSP allows besides its own (a nonce or a keyword is not an origin)."""
    return {source for sources in _csp(response).values() for source in sources
            if re.match(r"^(https?:)?//|^https?://|^\*\.", source) or "://" in source}


def _key_of(path: str) -> str:
    checkout = checkout_service.get_session(path.rsplit("/", 1)[-1])
    return f"checkout-{checkout.id}-{checkout.attempt_seq}"


def _sent(transport) -> list[tuple[str, str]]:
    return [(sent.method, sent.path) for sent in transport.sent]


# -- the page ---------------------------------------------------------------------------------------------


def test_k6_live_page_shows_stripes_payment_element_and_its_csp_allows_exactly_stripes_origins(client, shop):
    _owner, link = shop
    response = client.get(start_checkout(client, link.slug, mode="live"))
    html = soup_of(response)

    assert response.status_code == 200
    mount = html.select_one("#f-payment_method")
    assert mount["data-stripe-key"] == PUBLISHABLE
    assert (mount["data-amount"], mount["data-currency"]) == ("2500", "usd")
    assert html.select_one("input[type=hidden][name=payment_method]") is not None
    # Kassa's own card and bank fields are gone: card data can't be typed into Kassa's page.
    assert not html.select("input[name=card_number], input[name=card_cvc], input[name=account_number]")
    # The rest of Kassa's form stays: email, names, language, order summary.
    assert html.select_one("input[name=email]") and html.select_one("select[name=lang]")
    assert html.select_one("input[name=first_name]") and "Concert ticket" in response.get_data(as_text=True)
    # Without JavaScript: a clear note, and no Pay button that would post nothing.
    assert "needs JavaScript" in html.select_one("[data-needs-js]").get_text()
    assert html.select_one("#pay-button").has_attr("disabled")
    scripts = [tag["src"] for tag in html.select("script[src]")]
    assert "https://js.stripe.com/v3/" in scripts and any("checkout-stripe.js" in src for src in scripts)

    csp = _csp(response)
    assert csp["script-src"][1:] == ["https://js.stripe.com", "https://*.js.stripe.com"]
    assert "'strict-dynamic'" not in csp["script-src"]  # it would let Stripe.js load scripts from anywhere
    assert csp["frame-src"] == ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"]
    assert csp["connect-src"] == ["'self'", "https://api.stripe.com"]
    assert _third_party(response) == STRIPE_ORIGINS


def test_k6_sandbox_checkout_and_every_other_page_keep_zero_third_party_origins(client, shop):
    """The same connected account's test checkout (the sandbox), a live checkout of an account without Stripe,
    the merchant's pages and the public pages load no Stripe.js and allow no origin but their own."""
    _owner, link = shop
    _other, unconnected = make_shop("Plain Shop")
    pages = {
        "sandbox checkout": client.get(start_checkout(client, link.slug, mode="test")),
        "live, no Stripe": client.get(start_checkout(client, unconnected.slug, mode="live")),
        "login": client.get("/login"),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        assert _third_party(response) == set(), name
        assert "'strict-dynamic'" in _csp(response)["script-src"], name
        assert "stripe.com" not in response.get_data(as_text=True), name
        assert "checkout-stripe.js" not in response.get_data(as_text=True), name
    sandbox = soup_of(pages["sandbox checkout"])
    assert sandbox.select_one("input[name=card_number]") and not sandbox.select("#f-payment_method")


def test_k6_a_second_account_without_stripe_still_cant_accept_payments(client, shop, transport):
    _other, link = make_shop("Plain Shop")
    path = start_checkout(client, link.slug, mode="live")
    assert "isn't taking online payments yet" in soup_of(client.get(path)).get_text()

    response = client.post(path, data=_form())
    assert response.status_code == 409
    assert "isn't taking online payments yet" in soup_of(response).get_text()
    assert transport.sent == [] and all_payments() == [] and attempts() == []


def test_k6_the_page_cache_follows_the_publishable_key(client, shop):
    _owner, link = shop
    first = soup_of(client.get(start_checkout(client, link.slug, mode="live")))
    assert first.select_one("#f-payment_method")["data-stripe-key"] == PUBLISHABLE
    with write_transaction(db.session) as session:
        session.scalar(select(StripeConnection)).publishable_key = OTHER_PUBLISHABLE
    again = soup_of(client.get(start_checkout(client, link.slug, mode="live")))
    assert again.select_one("#f-payment_method")["data-stripe-key"] == OTHER_PUBLISHABLE


# -- paying ---------------------------------------------------------------------------------------------


def test_k6_paying_sends_only_the_payment_method_and_records_stripes_card(app, client, shop, transport):
    owner, link = shop
    path = start_checkout(client, link.slug, mode="live")
    key = _key_of(path)
    transport.answers.update({
        ("GET", "/v1/payment_intents"): [(200, EMPTY_LIST)],
        ("GET", "/v1/payment_methods/pm_1Visa"): [(200, CARD_PM)],
        ("POST", "/v1/payment_intents"): [(200, _intent(key, owner.account_id, "succeeded"))],
    })
    response = client.post(path, data=_form())

    assert response.status_code == 303 and path_of(response.headers["Location"]) == path
    create = transport.sent[-1]
    assert (create.method, create.path, create.headers["Idempotency-Key"]) == ("POST", "/v1/payment_intents", key)
    params = dict(create.params)
    assert params["payment_method"] == "pm_1Visa" and params["confirm"] == "true"
    assert params["return_url"] == f"{app.config['KASSA_BASE_URL']}{path}/return"
    assert params["metadata[kassa_key]"] == key
    assert create.headers["Authorization"] == f"Bearer {SECRET}"  # the account's own key
    [payment] = all_payments()
    assert (payment.status, payment.card_brand, payment.card_last4, payment.processor) == ("succeeded", "visa",
                                                                                          "4242", "stripe")
    assert "4242" in soup_of(client.get(path)).get_text()  # the buyer's confirmation, with Stripe's card


def test_k6_a_missing_or_malformed_payment_method_is_a_field_error_and_nothing_is_sent(client, shop, transport):
    _owner, link = shop
    path = start_checkout(client, link.slug, mode="live")
    for value in (None, "", "4242424242424242", "pm_bad value"):
        response = client.post(path, data=_form(payment_method=value, card_number="4242424242424242"))
        assert response.status_code == 422
        assert field_errors(response) == {"payment_method": "Enter your payment details."}
    assert transport.sent == [] and attempts() == []


def test_k6_a_decline_is_shown_at_the_payment_field_and_the_buyer_can_try_again(app, client, shop, transport):
    owner, link = shop
    path = start_checkout(client, link.slug, mode="live")
    transport.answers.update({
        ("GET", "/v1/payment_intents"): [(200, EMPTY_LIST)],
        ("GET", "/v1/payment_methods/pm_1Visa"): [(200, CARD_PM)],
        ("POST", "/v1/payment_intents"): [(402, DECLINE)],
    })
    response = client.post(path, data=_form())

    assert response.status_code == 422
    assert field_errors(response) == {"payment_method": "Your card has insufficient funds."}
    assert soup_of(response).select_one("input[name=email]")["value"] == "ann.buyer@example.com"
    # B2: the decline is a failed payment for the merchant with the bank's reason (Stripe's decline_code, not
    # its generic code) and the card's brand and last 4 from the PaymentMethod the Payment Element gave.
    assert [a.status for a in attempts()] == ["declined"]
    assert [(p.status, p.failure_code, p.card_brand, p.card_last4) for p in all_payments()] == [
        ("failed", "insufficient_funds", "visa", "4242")]
    merchant = app.test_client()
    login(merchant, owner)
    decline = text_of(soup_of(merchant.get(f"/payments/{all_payments()[0].id}")).select_one("#card-decline"))
    assert "Reason The card doesn't have enough funds." in decline and "Card Visa •••• 4242" in decline
    transport.answers[("POST", "/v1/payment_intents")] = [(200, _intent(_key_of(path), owner.account_id,
                                                                        "succeeded"))]
    assert client.post(path, data=_form()).status_code == 303
    assert [p.status for p in all_payments()] == ["failed", "succeeded"]


def test_k6_another_accounts_checkout_cant_be_paid_with_the_first_accounts_payment_method(client, shop, transport):
    """A PaymentMethod made with shop A's publishable key, posted to shop B's checkout: B's processor asks
    Stripe with B's own key, Stripe doesn't know it there, nothing is created and the buyer is told."""
    _owner, _link = shop
    other, other_link = make_shop("Other Shop")
    _connect(other.account_id, OTHER_SECRET, OTHER_PUBLISHABLE)
    transport.answers.update({("GET", "/v1/payment_intents"): [(200, EMPTY_LIST)]})  # pm_1Visa: unknown at B
    path = start_checkout(client, other_link.slug, mode="live")
    response = client.post(path, data=_form())

    assert response.status_code == 422
    assert "payment_method" in field_errors(response)
    assert ("POST", "/v1/payment_intents") not in _sent(transport)
    assert {sent.headers["Authorization"] for sent in transport.sent} == {f"Bearer {OTHER_SECRET}"}
    assert all_payments() == [] and [a.status for a in attempts()] == ["failed"]


# -- next actions (3-D Secure, bank redirects) -------------------------------------------------------------


def _ask_for_action(client, shop, transport) -> tuple[str, str]:
    owner, link = shop
    path = start_checkout(client, link.slug, mode="live")
    key = _key_of(path)
    transport.answers.update({
        ("GET", "/v1/payment_intents"): [(200, EMPTY_LIST)],
        ("GET", "/v1/payment_methods/pm_1Visa"): [(200, CARD_PM)],
        ("POST", "/v1/payment_intents"): [(200, _intent(key, owner.account_id, "requires_action"))],
    })
    response = client.post(path, data=_form())
    assert response.status_code == 202
    action = soup_of(response).select_one("#next-action")
    assert action["data-client-secret"] == "pi_1_secret_abc" and action["data-stripe-key"] == PUBLISHABLE
    assert action["data-finish-url"] == f"{path}/return"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert 'http-equiv="refresh"' not in response.get_data(as_text=True)  # nothing reloads under 3-D Secure
    assert _third_party(response) == STRIPE_ORIGINS
    [attempt] = attempts()
    assert (attempt.status, attempt.processor_ref) == ("pending", "pi_1")  # in flight, waiting for the buyer
    # Meanwhile the page says it is confirming, never paid; a second submit charges nothing.
    assert "Confirming your payment" in client.get(path).get_data(as_text=True)
    assert client.post(path, data=_form()).status_code == 202
    assert _sent(transport).count(("POST", "/v1/payment_intents")) == 1
    return path, key


def test_k6_requires_action_then_return_records_the_payment_once_stripe_says_succeeded(client, shop, transport):
    owner, _link = shop
    path, key = _ask_for_action(client, shop, transport)
    # B2: meanwhile the merchant sees the attempt as incomplete, waiting for the buyer's bank
    [waiting] = all_payments()
    assert (waiting.status, waiting.failure_code, waiting.receipt_number) == ("incomplete", "requires_action", None)
    transport.answers.update({
        ("GET", "/v1/payment_intents"): [(200, _listing(_intent(key, owner.account_id, "succeeded")))],
        ("GET", "/v1/payment_intents/pi_1"): [(200, _intent(key, owner.account_id, "succeeded"))],
    })
    response = client.get(f"{path}/return")

    assert response.status_code == 303 and path_of(response.headers["Location"]) == path
    assert ("POST", "/v1/payment_intents/pi_1/cancel") not in _sent(transport)
    [payment] = all_payments()
    assert (payment.status, payment.card_last4, payment.processor_ref) == ("succeeded", "4242", "pi_1")
    assert payment.id == waiting.id and payment.failure_code is None  # B2: the incomplete row, now paid
    assert [a.status for a in attempts()] == ["succeeded"]
    # Back again (a reload): the same payment, nothing asked of Stripe twice over.
    assert client.get(f"{path}/return").status_code == 303 and len(all_payments()) == 1


def test_k6_requires_action_then_failure_closes_the_attempt_with_stripes_message(client, shop, transport):
    owner, _link = shop
    path, key = _ask_for_action(client, shop, transport)
    failed = _intent(key, owner.account_id, "requires_payment_method", last_payment_error=AUTH_FAILED)
    transport.answers.update({
        ("GET", "/v1/payment_intents"): [(200, _listing(failed))],
        ("POST", "/v1/payment_intents/pi_1/cancel"): [(200, {**failed, "status": "canceled"})],
    })
    response = client.get(f"{path}/return")

    assert response.status_code == 422
    assert field_errors(response) == {"payment_method": AUTH_FAILED["message"]}
    assert soup_of(response).select_one("input[name=email]")["value"] == "ann.buyer@example.com"
    # Cancelled at Stripe first, so a late answer can't charge after the buyer pays again.
    assert ("POST", "/v1/payment_intents/pi_1/cancel") in _sent(transport)
    assert [a.status for a in attempts()] == ["declined"]
    assert [p.status for p in all_payments()] == ["failed"]  # B2: the merchant sees the failed attempt
    # They can pay again, under a new key.
    assert _key_of(path) != key


def test_k6_return_without_a_waiting_charge_changes_nothing(client, shop, transport):
    _owner, link = shop
    path = start_checkout(client, link.slug, mode="live")
    response = client.get(f"{path}/return")
    assert response.status_code == 303 and path_of(response.headers["Location"]) == path
    assert transport.sent == []
    assert client.get("/checkout/not-a-token/return").status_code == 404


def test_k6_the_reconciler_cancels_an_intent_left_waiting_before_it_fails_the_attempt(client, shop, transport):
    owner, _link = shop
    _path, key = _ask_for_action(client, shop, transport)
    waiting = _intent(key, owner.account_id, "requires_action")
    transport.answers.update({
        ("GET", "/v1/payment_intents"): [(200, _listing(waiting))],
        ("POST", "/v1/payment_intents/pi_1/cancel"): [(200, {**waiting, "status": "canceled"})],
    })
    checkout_service.reconcile_attempts()  # within IN_FLIGHT_LIMIT: the buyer may still be at their bank
    assert [a.status for a in attempts()] == ["pending"]
    assert ("POST", "/v1/payment_intents/pi_1/cancel") not in _sent(transport)

    with time_machine.travel(now() + checkout_service.IN_FLIGHT_LIMIT + timedelta(seconds=5)):
        checkout_service.reconcile_attempts()
    assert ("POST", "/v1/payment_intents/pi_1/cancel") in _sent(transport)
    # B2: abandoned: still listed as incomplete (as Stripe lists it), now saying the buyer left; nothing charged
    assert [a.status for a in attempts()] == ["failed"]
    assert [(p.status, p.failure_code) for p in all_payments()] == [("incomplete", "abandoned")]


# -- the card-testing guard (H4) with tokens --------------------------------------------------------------


@pytest.mark.parametrize("app_config", [{"KASSA_RISK_IP_DECLINES": 2}], indirect=True)
def test_k6_card_testing_guard_counts_payment_element_declines_per_ip(client, shop, transport):
    _owner, link = shop
    transport.answers.update({
        ("GET", "/v1/payment_intents"): [(200, EMPTY_LIST)],
        ("POST", "/v1/payment_intents"): [(402, DECLINE)],
    })
    statuses = []
    for n in range(3):
        pm = f"pm_1Try{n}"
        transport.answers[("GET", f"/v1/payment_methods/{pm}")] = [(200, {**CARD_PM, "id": pm})]
        path = start_checkout(client, link.slug, mode="live")
        statuses.append(client.post(path, data=_form(payment_method=pm),
                                    environ_base={"REMOTE_ADDR": "203.0.113.7"}).status_code)
    assert statuses == [422, 422, 429]
    assert _sent(transport).count(("POST", "/v1/payment_intents")) == 2  # the third never reached Stripe
    # Another IP still pays.
    path = start_checkout(client, link.slug, mode="live")
    assert client.post(path, data=_form(payment_method="pm_1Try0"),
                       environ_base={"REMOTE_ADDR": "198.51.100.4"}).status_code == 422
    assert db.session.scalar(select(PaymentAttempt).order_by(PaymentAttempt.id.desc())).card_fingerprint is None


# -- page weight ------------------------------------------------------------------------------------------


def _own_bytes(client, path: str) -> dict[str, int]:
    """Kassa's own bytes of a page, as benchmarks/checkout_bench.py counts them (uncompressed): its HTML and
    every /assets/ file it loads. Stripe.js is Stripe's (and cached across every site that uses it)."""
    html = client.get(path).get_data()
    sizes = {"html": len(html)}
    for kind, pattern in (("css", rb'href="(/assets/[^"]+)"'), ("js", rb'src="(/assets/[^"]+)"')):
        sizes[kind] = sum(len(client.get(asset.decode().replace("&amp;", "&")).get_data())
                          for asset in re.findall(pattern, html))
    return sizes


def test_k6_the_live_page_ships_under_30_kb_of_kassas_own_html_css_and_js(client, shop, capsys):
    _owner, link = shop
    live = _own_bytes(client, start_checkout(client, link.slug, mode="live"))
    sandbox = _own_bytes(client, start_checkout(client, link.slug, mode="test"))
    with capsys.disabled():
        print(f"\nK6 page bytes (html/css/js): live {live} = {sum(live.values())}, "
              f"sandbox {sandbox} = {sum(sandbox.values())}")
    assert sum(live.values()) < 30 * 1024
    assert sum(sandbox.values()) < 30 * 1024


def test_q10_a_live_sepa_debit_through_the_payment_element_is_recorded_as_sepa_not_ach(app, client, transport):
    """Q10: Stripe's Payment Element offers SEPA Direct Debit on a EUR link; the payment is Kassa's "sepa" method
    (shown as SEPA Direct Debit with the IBAN's last 4), processing until Stripe's event settles it."""
    owner, link = make_shop("Live Koffie", currency="EUR", allow_ach=True)
    _connect(owner.account_id)
    path = start_checkout(client, link.slug, mode="live")
    key = _key_of(path)
    sepa_pm = {"id": "pm_1Sepa", "object": "payment_method", "type": "sepa_debit", "customer": None, "metadata": {},
               "sepa_debit": {"last4": "3000", "country": "DE"}}
    processing = {**_intent(key, owner.account_id, "processing"), "currency": "eur", "payment_method": "pm_1Sepa",
                  "latest_charge": {**CHARGE, "currency": "eur", "status": "pending", "balance_transaction": None},
                  "metadata": {"kassa_account": str(owner.account_id), "kassa_key": key,
                               "kassa_request": "2500|EUR|pm_1Sepa|0"}}
    transport.answers.update({
        ("GET", "/v1/payment_intents"): [(200, EMPTY_LIST)],
        ("GET", "/v1/payment_methods/pm_1Sepa"): [(200, sepa_pm)],
        ("POST", "/v1/payment_intents"): [(200, processing)],
    })
    response = client.post(path, data=_form(payment_method="pm_1Sepa"), headers={"User-Agent": "Mozilla/5.0 Q10"})

    assert response.status_code == 303, field_errors(response)
    params = dict(transport.sent[-1].params)
    assert params["mandate_data[customer_acceptance][online][user_agent]"] == "Mozilla/5.0 Q10"
    [payment] = all_payments()
    assert (payment.method, payment.bank_last4, payment.status, payment.card_last4) == ("sepa", "3000", "processing",
                                                                                        None)
    assert "SEPA Direct Debit •••• 3000" in soup_of(client.get(path)).get_text()
