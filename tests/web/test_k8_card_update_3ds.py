"""K8: a card the bank wants confirmed (3-D Secure) while a subscriber saves it on the card-update page: Stripe.js
runs the SetupIntent's next action, the page comes back to /billing/<token>/return and Stripe's answer decides.
Saved (a past-due period charged at once), or Stripe's message at the payment field with nothing changed. Another
subscription's page or another account's SetupIntent changes nothing. Stripe is the recording FixtureTransport
(every request checked against Stripe's API description); nothing leaves the machine."""

from __future__ import annotations

from datetime import timedelta

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Subscription
from kassa.processors.stripe import StripeProcessor
from tests.support.billing import buy, reload, renewals_of, subscription_shop
from tests.support.checkout_flow import field_error, soup_of
from tests.support.stripe_doubles import FixtureTransport, client_for
from tests.web.test_k8_card_update_payment_element import _connect

HOST = "http://stripe.fixture"
PM, CUS, SETI = "pm_1New3ds", "cus_1Kassa", "seti_1Auth"
EMPTY = {"object": "list", "data": [], "has_more": False, "url": "/v1/payment_intents"}


def _method(account_id: int, customer: str | None) -> dict:
    return {"id": PM, "object": "payment_method", "type": "card", "customer": customer,
            "metadata": {"kassa_account": str(account_id)} if customer else {},
            "card": {"brand": "visa", "last4": "3184", "exp_month": 12, "exp_year": 2030, "funding": "credit"}}


def _setup(account_id: int, status: str, key: str = "", error: dict | None = None) -> dict:
    return {"id": SETI, "object": "setup_intent", "status": status, "customer": CUS, "payment_method": PM,
            "client_secret": f"{SETI}_secret_abc", "usage": "off_session", "last_setup_error": error,
            "next_action": {"type": "use_stripe_sdk"} if status == "requires_action" else None,
            "metadata": {"kassa_account": str(account_id), "kassa_key": key, "kassa_request": PM}}


def _past_due(client, token: str) -> Subscription:
    _owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
    sub = buy(client, link)
    with write_transaction(db.session) as session:
        row = session.get(Subscription, sub.id)
        row.mode, row.status, row.failed_attempts, row.update_token = "live", "past_due", 1, token
        row.next_charge_at = now() + timedelta(days=3)
    _connect(sub.account_id, "live")
    client.post("/logout")
    return reload(sub)


def _stripe(app, account_id: int, answers: dict) -> FixtureTransport:
    transport = FixtureTransport(answers)
    app.config["KASSA_LIVE_PROCESSOR"] = lambda: StripeProcessor(client_for(HOST, transport), account_id)
    return transport


def _post_needing_action(client, app, sub: Subscription, token: str, after: tuple) -> tuple[FixtureTransport, str]:
    """The page posts the PaymentMethod; the bank wants it confirmed: the next-action page, nothing saved."""
    acct = sub.account_id
    transport = _stripe(app, acct, {
        ("GET", f"/v1/payment_methods/{PM}"): [(200, _method(acct, None)), (200, _method(acct, CUS))],
        ("POST", "/v1/customers"): [(200, {"id": CUS, "object": "customer", "metadata": {}})],
        ("POST", "/v1/setup_intents"): [(200, _setup(acct, "requires_payment_method"))],
        ("POST", f"/v1/setup_intents/{SETI}/confirm"): [(200, _setup(acct, "requires_action"))],
        ("GET", f"/v1/setup_intents/{SETI}"): [after],
        ("POST", f"/v1/payment_methods/{PM}"): [(200, _method(acct, CUS))],
        ("GET", "/v1/payment_intents"): [(200, EMPTY)],
    })
    before = reload(sub).payment_method_token
    response = client.post(f"/billing/{token}", data={"payment_method": PM})
    assert response.status_code == 202
    assert response.headers["Cache-Control"] == "private, no-store"
    action = soup_of(response).select_one("#next-action")
    assert action["data-client-secret"] == f"{SETI}_secret_abc"
    assert reload(sub).payment_method_token == before and renewals_of(sub) == []
    (create,) = [s for s in transport.sent if (s.method, s.path) == ("POST", "/v1/setup_intents")]
    key = dict(create.params)["metadata[kassa_key]"]
    assert key.startswith(f"sub-{sub.id}-card-")
    return transport, action["data-finish-url"]


def test_k8_a_card_confirmed_with_3ds_is_saved_on_return_and_the_past_due_period_charged(client, app):
    sub = _past_due(client, "k8-3ds-ok")
    acct = sub.account_id
    key = f"sub-{sub.id}-card-"
    intent = {"id": "pi_1Renew", "object": "payment_intent", "amount": sub.amount_minor,
              "currency": sub.currency.lower(), "status": "succeeded", "created": int(now().timestamp()),
              "payment_method": PM, "customer": CUS, "latest_charge": None, "metadata": {}}
    transport, finish = _post_needing_action(client, app, sub, "k8-3ds-ok", (200, {}))
    metadata_key = next(dict(s.params)["metadata[kassa_key]"] for s in transport.sent
                        if s.path == "/v1/setup_intents")
    assert metadata_key.startswith(key)
    transport.answers[("GET", f"/v1/setup_intents/{SETI}")] = [(200, _setup(acct, "succeeded", metadata_key))]
    transport.answers[("POST", "/v1/payment_intents")] = [(200, intent)]

    response = client.get(finish)

    assert response.status_code == 200, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    assert "Your card is saved." in text and "The outstanding payment went through." in text
    sub = reload(sub)
    assert (sub.status, sub.payment_method_token, sub.card_last4) == ("active", PM, "3184")
    (renewal,) = renewals_of(sub)
    assert (renewal.status, renewal.processor_ref) == ("succeeded", "pi_1Renew")
    tagged = [s for s in transport.sent if (s.method, s.path) == ("POST", f"/v1/payment_methods/{PM}")]
    assert dict(tagged[0].params) == {"metadata[kassa_account]": str(acct)}
    # A reload of the return page saves nothing twice and charges nothing again.
    assert client.get(finish).status_code == 200 and len(renewals_of(sub)) == 1


def test_k8_a_card_the_bank_did_not_confirm_shows_stripes_message_and_nothing_changes(client, app):
    sub = _past_due(client, "k8-3ds-fail")
    acct = sub.account_id
    transport, finish = _post_needing_action(client, app, sub, "k8-3ds-fail", (200, {}))
    metadata_key = next(dict(s.params)["metadata[kassa_key]"] for s in transport.sent
                        if s.path == "/v1/setup_intents")
    error = {"code": "setup_intent_authentication_failure", "type": "invalid_request_error",
             "message": "We are unable to authenticate your payment method."}
    failed = _setup(acct, "requires_payment_method", metadata_key, error)
    transport.answers[("GET", f"/v1/setup_intents/{SETI}")] = [(200, failed)]
    before = len(transport.sent)

    response = client.get(finish)

    assert response.status_code == 422
    assert field_error(response, "payment_method") == "We are unable to authenticate your payment method."
    assert soup_of(response).select_one("#f-payment_method") is not None  # the element is there to try again
    sub = reload(sub)
    assert (sub.status, sub.payment_method_token) == ("past_due", reload(sub).payment_method_token)
    assert sub.payment_method_token != PM and renewals_of(sub) == []
    assert [(s.method, s.path) for s in transport.sent[before:]] == [("GET", f"/v1/setup_intents/{SETI}")]


def test_k8_another_subscriptions_page_or_another_accounts_setup_intent_changes_nothing(client, app):
    sub = _past_due(client, "k8-3ds-mine")
    acct = sub.account_id
    transport, finish = _post_needing_action(client, app, sub, "k8-3ds-mine", (200, {}))
    metadata_key = next(dict(s.params)["metadata[kassa_key]"] for s in transport.sent
                        if s.path == "/v1/setup_intents")
    other = _past_due(client, "k8-3ds-other")
    app.config["KASSA_LIVE_PROCESSOR"] = lambda: StripeProcessor(client_for(HOST, transport), acct)
    transport.answers[("GET", f"/v1/setup_intents/{SETI}")] = [(200, _setup(acct, "succeeded", metadata_key))]

    # Another subscription's token with this SetupIntent: its key is not this SetupIntent's.
    stolen = client.get(finish.replace("k8-3ds-mine", "k8-3ds-other"))
    # This subscription's page with another account's SetupIntent.
    transport.answers[("GET", f"/v1/setup_intents/{SETI}")] = [(200, _setup(acct + 1000, "succeeded", metadata_key))]
    foreign = client.get(finish)
    # A made-up card key, and an unknown token.
    forged = client.get(finish.replace("card=", "card=0"))
    unknown = client.get(finish.replace("k8-3ds-mine", "k8-no-such-token"))

    assert [r.status_code for r in (stolen, foreign, forged, unknown)] == [404, 404, 404, 404]
    for row in (reload(sub), reload(other)):
        assert row.payment_method_token != PM and row.status == "past_due" and renewals_of(row) == []
    assert not [s for s in transport.sent if s.path in ("/v1/payment_intents", f"/v1/payment_methods/{PM}")
                and s.method == "POST"]
