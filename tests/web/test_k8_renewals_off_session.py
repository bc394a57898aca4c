"""K8: renewals of a subscription whose card Stripe keeps are charged off-session by Kassa's own billing engine,
under the same per-period idempotency keys as the sandbox's; a bank that wants the buyer to confirm gets them an
email (in their language) with the card-update page, where a PaymentMethod from Stripe's Payment Element in setup
mode replaces the card. Retries and cancellation are the sandbox's.

Stripe is localstripe (tests/support/localstripe.py) or the recording FixtureTransport; nothing leaves the
machine."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from kassa import secrets_box
from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import StripeConnection, Subscription
from kassa.processors.stripe import StripeProcessor
from kassa.services.platform.ticks import run_tick
from tests.support.app import extract_link, page_text
from tests.support.billing import START, buy, emails_of, frozen, reload, renewals_of, subscription_shop
from tests.support.checkout_flow import plain
from tests.support.localstripe import fresh_localstripe, localstripe_url  # noqa: F401  (fixtures)
from tests.support.stripe_doubles import FixtureTransport, client_for

FIXTURE_HOST = "http://stripe.fixture"
SAVED = "pm_1SavedVisa"
CUSTOMER = "cus_1Kassa"
EMPTY_LIST = {"object": "list", "data": [], "has_more": False, "url": "/v1/payment_intents"}
AUTH_ERROR = {"error": {
    "type": "card_error", "code": "authentication_required", "decline_code": "authentication_required",
    "message": "Your card was declined. This transaction requires authentication.",
    "payment_intent": {"id": "pi_1Auth", "object": "payment_intent", "status": "requires_payment_method"}}}


def _saved_method(account_id: int) -> dict:
    return {"id": SAVED, "object": "payment_method", "type": "card", "customer": CUSTOMER,
            "metadata": {"kassa_account": str(account_id)},
            "card": {"brand": "visa", "last4": "3184", "exp_month": 12, "exp_year": 2030, "funding": "credit"}}


def _requires_action_intent(account_id: int) -> dict:
    return {"id": "pi_1Action", "object": "payment_intent", "amount": 1000, "currency": "usd",
            "status": "requires_action", "created": int(START.timestamp()), "payment_method": SAVED,
            "customer": CUSTOMER, "latest_charge": None, "next_action": {"type": "use_stripe_sdk"},
            "metadata": {"kassa_account": str(account_id)}}


def _live_on_stripe(app, sub: Subscription, transport: FixtureTransport) -> None:
    """The subscription becomes a live one whose card Stripe keeps (the first payment saved it, K6/K8)."""
    with write_transaction(db.session) as session:
        live = session.get(Subscription, sub.id)
        live.mode, live.payment_method_token = "live", SAVED
        live.next_charge_at = now() - timedelta(hours=1)  # due on real time
    account_id = sub.account_id
    app.config["KASSA_LIVE_PROCESSOR"] = lambda: StripeProcessor(client_for(FIXTURE_HOST, transport), account_id)


@pytest.mark.parametrize("answer", ["402_authentication_required", "200_requires_action"])
def test_k8_a_renewal_the_bank_wants_confirmed_emails_the_card_update_page_and_retries_as_before(client, app,
                                                                                                 answer):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)
        create = (402, AUTH_ERROR) if answer.startswith("402") else (200, _requires_action_intent(owner.account_id))
        transport = FixtureTransport({
            ("GET", "/v1/payment_intents"): [(200, EMPTY_LIST)],
            ("GET", f"/v1/payment_methods/{SAVED}"): [(200, _saved_method(owner.account_id))],
            ("POST", "/v1/payment_intents"): [create],
        })
        _live_on_stripe(app, sub, transport)

        run_tick()

        (failed,) = renewals_of(sub)
        assert (failed.status, failed.failure_code, failed.processor) == ("failed", "authentication_required",
                                                                          "stripe")
        sub = reload(sub)
        assert (sub.status, sub.failed_attempts) == ("past_due", 1)
        assert sub.next_charge_at.date() == (START + timedelta(days=1)).date()  # the first retry, as before
        # The charge Kassa asked for: the saved card, off-session, under the period's own key.
        (create_call,) = [s for s in transport.sent if (s.method, s.path) == ("POST", "/v1/payment_intents")]
        params = dict(create_call.params)
        assert (params["payment_method"], params["customer"], params["off_session"], params["confirm"]) == (
            SAVED, CUSTOMER, "true", "true")
        assert create_call.headers["Idempotency-Key"] == failed.idempotency_key == f"sub-{sub.id}-p1-a1"

        assert emails_of("subscription_payment_failed") == []  # not called a decline
        (email,) = emails_of("subscription_authentication_required")
        assert email.subject == f"Confirm your card for your subscription with {owner.account.name}"
        text = plain(email.text_body)
        assert "Your bank asked you to confirm the payment of $10.00" in text
        assert "nothing was charged" in text
        page = client.get(extract_link(email.text_body, "/billing/"))
        assert page.status_code == 200 and "Update your card" in page_text(page)


def test_k8_retries_then_cancellation_are_unchanged_when_the_bank_keeps_asking(client, app):
    with frozen() as traveller:
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)
        transport = FixtureTransport({
            ("GET", "/v1/payment_intents"): [(200, EMPTY_LIST)],
            ("GET", f"/v1/payment_methods/{SAVED}"): [(200, _saved_method(owner.account_id))],
            ("POST", "/v1/payment_intents"): [(402, AUTH_ERROR)],
        })
        _live_on_stripe(app, sub, transport)

        run_tick()
        for _retry in range(3):  # the account's retry days, 1, 3 and 5, on real time
            traveller.move_to(reload(sub).next_charge_at + timedelta(minutes=1))
            run_tick()

        attempts = renewals_of(sub)
        assert [p.status for p in attempts] == ["failed"] * 4
        assert [p.failure_code for p in attempts] == ["authentication_required"] * 4
        sent_keys = [s.headers["Idempotency-Key"] for s in transport.sent if s.method == "POST"]
        assert sent_keys == [f"sub-{sub.id}-p1-a{n}" for n in (1, 2, 3, 4)]
        sub = reload(sub)
        assert (sub.status, sub.cancel_reason) == ("cancelled", "payment_failed")
        assert len(emails_of("subscription_authentication_required")) == 3
        (ended,) = emails_of("subscription_ended")
        assert "was cancelled because the payments didn't go through" in ended.text_body


@pytest.mark.parametrize(("lang", "subject", "phrases"), [
    ("nl", "Bevestig je kaart voor je abonnement bij Bakkerij Bol",
     ("Je bank vroeg je de betaling van US$ 8,00 voor je abonnement bij Bakkerij Bol te bevestigen",
      "er is niets afgeschreven", "Bevestig je kaart")),
    ("fr", "Confirmez votre carte pour votre abonnement chez Bakkerij Bol",
     ("Votre banque vous a demandé de confirmer le paiement de 8,00", "rien n'a été débité",
      "Confirmez votre carte")),
])
def test_k8_the_confirm_your_card_email_is_in_the_buyers_language(client, app, lang, subject, phrases):
    with frozen():
        owner, link = subscription_shop("Bakkerij Bol", frequency="monthly", term_type="auto_renew", price="8.00")
        sub = buy(client, link, lang=lang)
        transport = FixtureTransport({
            ("GET", "/v1/payment_intents"): [(200, EMPTY_LIST)],
            ("GET", f"/v1/payment_methods/{SAVED}"): [(200, _saved_method(owner.account_id))],
            ("POST", "/v1/payment_intents"): [(402, AUTH_ERROR)],
        })
        _live_on_stripe(app, sub, transport)

        run_tick()

        (email,) = emails_of("subscription_authentication_required")
        assert (email.language, email.subject) == (lang, subject)
        text = plain(email.text_body)
        for phrase in phrases:
            assert phrase in text or phrase in plain(email.html_body), phrase
        assert "/billing/" in email.text_body


# -- the card-update page with a PaymentMethod (Payment Element in setup mode) --------------------------------


@pytest.fixture
def app_config(localstripe_url):  # noqa: F811
    return {"KASSA_STRIPE_BASE_ADDRESSES": {"api": localstripe_url, "files": localstripe_url,
                                            "connect": localstripe_url}}


def _connect_stripe(account_id: int, mode: str = "live") -> None:
    with write_transaction(db.session) as session:
        session.add(StripeConnection(
            account_id=account_id, mode=mode, secret_key_encrypted=secrets_box.encrypt(f"sk_{mode}_kassa0000000000"),
            secret_key_last4="0000", publishable_key=f"pk_{mode}_kassa0000000000", stripe_account_id="acct_1Local",
            stripe_account_name="Local Stripe", country="US", default_currency="USD", connected_at=now()))


def _payment_method(url: str, number: str) -> str:
    """What Stripe.js's Payment Element makes in the buyer's browser: a PaymentMethod id."""
    return client_for(url).v1.payment_methods.create(params={"type": "card", "card": {
        "number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}).id


def test_k8_the_card_update_page_saves_a_payment_method_on_stripe_and_charges_the_outstanding_period(
        fresh_localstripe, client, app):  # noqa: F811
    url = fresh_localstripe
    with time_machine.travel(now(), tick=False):
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)
        _connect_stripe(owner.account_id)
        with write_transaction(db.session) as session:
            live = session.get(Subscription, sub.id)
            live.mode, live.status, live.failed_attempts = "live", "past_due", 1
            live.update_token = "k8-update-token"
        client.post("/logout")
        method = _payment_method(url, "4242424242424242")

        response = client.post("/billing/k8-update-token", data={"payment_method": method})

        assert response.status_code == 200, page_text(response)
        assert "Your card is saved." in page_text(response)
        assert "The outstanding payment went through." in page_text(response)
        sub = reload(sub)
        assert (sub.status, sub.payment_method_token, sub.card_last4) == ("active", method, "4242")
        (renewal,) = renewals_of(sub)
        assert (renewal.status, renewal.processor, renewal.mode) == ("succeeded", "stripe", "live")
        stripe = client_for(url)
        intent = stripe.v1.payment_intents.retrieve(renewal.processor_ref)
        assert intent.metadata["kassa_key"] == renewal.idempotency_key
        saved = stripe.v1.payment_methods.retrieve(method)
        assert saved.customer and intent.customer == saved.customer  # charged off-session as a saved card


def test_k8_a_card_the_bank_wants_confirmed_is_not_saved_until_the_buyer_confirms_it(
        fresh_localstripe, client, app):  # noqa: F811
    url = fresh_localstripe
    owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
    sub = buy(client, link)
    _connect_stripe(owner.account_id)
    with write_transaction(db.session) as session:
        live = session.get(Subscription, sub.id)
        live.mode, live.update_token = "live", "k8-update-3ds"
        before = live.payment_method_token
    method = _payment_method(url, "4000002760003184")  # Stripe's "always authenticate" card

    response = client.post("/billing/k8-update-3ds", data={"payment_method": method})

    # The page hands the SetupIntent to Stripe.js for 3-D Secure (tests/web/test_k8_card_update_3ds.py).
    assert response.status_code == 202
    assert "Your bank asks you to confirm this card." in page_text(response)
    assert reload(sub).payment_method_token == before
    assert renewals_of(sub) == []  # nothing charged
