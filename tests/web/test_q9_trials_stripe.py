"""Q9 on Stripe: a live checkout with nothing due today (every recurring item on a free trial) saves the Payment
Element's PaymentMethod through a SetupIntent for off-session use (the K8 `save_card` operation of the processor
protocol) and charges nothing: no PaymentIntent is made. A card Stripe refuses while saving is refused at the
payment field and nothing is kept. Stripe is the recording FixtureTransport (every request checked against
Stripe's API description)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import Payment, Subscription
from tests.support.checkout import ADDRESS_FIELDS, start_checkout
from tests.support.checkout_flow import count, field_errors, item, make_link, soup_of
from tests.support.stripe_doubles import FixtureTransport
from tests.web.test_k6_live_checkout import _connect

PM, CUS, SETI = "pm_1Visa", "cus_1Trial", "seti_1Trial"


@pytest.fixture
def transport() -> FixtureTransport:
    return FixtureTransport({})


@pytest.fixture
def app_config(request, transport):
    return {"KASSA_STRIPE_HTTP_CLIENT": transport,
            "KASSA_STRIPE_BASE_ADDRESSES": {"api": "http://stripe.fixture", "files": "http://stripe.fixture",
                                            "connect": "http://stripe.fixture"}}


def _method(account_id: int, customer: str | None) -> dict:
    return {"id": PM, "object": "payment_method", "type": "card", "customer": customer,
            "metadata": {"kassa_account": str(account_id)} if customer else {},
            "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030, "funding": "credit"}}


def _setup(account_id: int, status: str, error: dict | None = None) -> dict:
    return {"id": SETI, "object": "setup_intent", "status": status, "customer": CUS,
            "payment_method": PM if status == "succeeded" else None, "client_secret": f"{SETI}_secret",
            "usage": "off_session", "last_setup_error": error, "next_action": None,
            "metadata": {"kassa_account": str(account_id), "kassa_key": "k", "kassa_request": PM}}


def _shop():
    from tests.factories import make_merchant

    owner = make_merchant("Live Roastery")
    link = make_link(owner, items=[item("Coffee club", "10.00", frequency="monthly", term_type="auto_renew")],
                     trial_days="14")
    _connect(owner.account_id)
    return owner, link


def _form() -> dict:
    return {"email": "ann.buyer@example.com", "first_name": "Ann", "last_name": "Buyer", "payment_method": PM,
            **ADDRESS_FIELDS}


def test_q9_stripe_a_trial_checkout_saves_the_card_with_a_setup_intent_and_charges_nothing(client, transport):
    owner, link = _shop()
    acct = owner.account_id
    path = start_checkout(client, link.slug, mode="live")
    mount = soup_of(client.get(path)).select_one("#f-payment_method")
    assert mount["data-mode"] == "setup" and not mount.has_attr("data-future")  # the Element in setup mode
    transport.answers.update({
        ("GET", f"/v1/payment_methods/{PM}"): [(200, _method(acct, None)), (200, _method(acct, CUS))],
        ("POST", "/v1/customers"): [(200, {"id": CUS, "object": "customer", "metadata": {}})],
        ("POST", "/v1/setup_intents"): [(200, _setup(acct, "requires_payment_method"))],
        ("POST", f"/v1/setup_intents/{SETI}/confirm"): [(200, _setup(acct, "succeeded"))],
        ("POST", f"/v1/payment_methods/{PM}"): [(200, _method(acct, CUS))],
    })
    response = client.post(path, data=_form())
    assert response.status_code == 303, response.get_data(as_text=True)[:400]
    sent = [(s.method, s.path) for s in transport.sent]
    assert ("POST", "/v1/payment_intents") not in sent  # nothing charged
    (create,) = [s for s in transport.sent if (s.method, s.path) == ("POST", "/v1/setup_intents")]
    assert dict(create.params)["usage"] == "off_session" and dict(create.params)["customer"] == CUS
    (confirm,) = [s for s in transport.sent if s.path == f"/v1/setup_intents/{SETI}/confirm"]
    assert dict(confirm.params)["payment_method"] == PM
    db.session.rollback()
    sub = db.session.scalar(select(Subscription))
    assert (sub.status, sub.payment_method_token, sub.card_last4, sub.mode) == ("trialing", PM, "4242", "live")
    assert count(Payment) == 0
    assert "Your free trial has started" in soup_of(client.get(path)).get_text()


def test_q9_stripe_a_card_refused_while_saving_is_shown_and_nothing_is_kept(client, transport):
    owner, link = _shop()
    acct = owner.account_id
    path = start_checkout(client, link.slug, mode="live")
    refused = {"code": "card_declined", "type": "card_error", "message": "Your card was declined."}
    transport.answers.update({
        ("GET", f"/v1/payment_methods/{PM}"): [(200, _method(acct, None))],
        ("POST", "/v1/customers"): [(200, {"id": CUS, "object": "customer", "metadata": {}})],
        ("POST", "/v1/setup_intents"): [(200, _setup(acct, "requires_payment_method"))],
        ("POST", f"/v1/setup_intents/{SETI}/confirm"): [(402, {"error": refused})],
    })
    response = client.post(path, data=_form())
    assert response.status_code == 422
    assert field_errors(response) == {"payment_method": "Your card was declined."}
    assert count(Subscription) == 0 and count(Payment) == 0
