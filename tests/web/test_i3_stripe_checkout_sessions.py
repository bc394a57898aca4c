"""I3: the official `stripe` package (pinned), pointed at a running Kassa, opens a checkout session for a payment
link with the buyer's email, reads it, lists sessions with its cursor and expires one — the calls a shop that sends
its buyers to Stripe Checkout makes. Retrieve, list and expire are checked against Stripe's own API description
(K13's checker): requests the real Stripe takes. Create names the link in Kassa's own `payment_link` parameter
(Stripe's sessions take line items instead), so that one call goes through the SDK's plain transport."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import stripe

from kassa.services.api.keys import create_key
from tests.factories import make_merchant
from tests.support.checkout import buyer_form
from tests.support.checkout_flow import field_value, make_link
from tests.support.payments import actor_for
from tests.web.test_i3_stripe_client import kassa_url, stripe_client  # noqa: F401 (kassa_url: the fixture)


@pytest.fixture
def owner(app):
    return make_merchant("Bikes")


@pytest.fixture
def clients(owner, kassa_url) -> tuple[stripe.StripeClient, stripe.StripeClient]:  # noqa: F811
    """(checked, plain): the same test key through Stripe's checker and through the SDK's plain transport."""
    _key, secret = create_key(actor_for(owner), "Shop", "test")
    return stripe_client(secret, kassa_url), stripe_client(secret, kassa_url, checked=False)


def test_i3_stripe_client_opens_reads_lists_and_expires_checkout_sessions(app, owner, clients):
    checked, plain = clients
    link = make_link(owner, name="Bike service")
    session = plain.v1.checkout.sessions.create(params={
        "payment_link": f"plink_{link.id}", "customer_email": "ann@example.com",
        "success_url": "https://bikes.example/thanks?cs={CHECKOUT_SESSION_ID}", "metadata": {"order_id": "1042"}})
    assert session.object == "checkout.session" and session.id.startswith("cs_")
    assert (session.status, session.payment_status, session.customer_email) == ("open", "unpaid", "ann@example.com")
    assert session.amount_total == 2500 and session.currency == "usd" and session.metadata.order_id == "1042"
    assert session.success_url == f"https://bikes.example/thanks?cs={session.id}"
    buyer = app.test_client()
    page = buyer.get(urlsplit(session.url).path)
    assert page.status_code == 200 and field_value(page, "email") == "ann@example.com"

    assert checked.v1.checkout.sessions.retrieve(session.id).to_dict() == session.to_dict()
    second = plain.v1.checkout.sessions.create(params={"payment_link": f"plink_{link.id}"})
    listed = checked.v1.checkout.sessions.list(params={"limit": 1})
    assert listed.object == "list" and listed.has_more is True and [s.id for s in listed.data] == [second.id]
    assert [s.id for s in listed.auto_paging_iter()] == [second.id, session.id]

    expired = checked.v1.checkout.sessions.expire(second.id)
    assert (expired.status, expired.url) == ("expired", None)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        checked.v1.checkout.sessions.expire(second.id)
    assert caught.value.http_status == 400 and caught.value.code == "checkout_session_not_open"

    paid = buyer.post(urlsplit(session.url).path, data=buyer_form(email="ann@example.com"))
    assert paid.status_code == 303 and paid.headers["Location"] == session.success_url
    done = checked.v1.checkout.sessions.retrieve(session.id)
    assert (done.status, done.payment_status) == ("complete", "paid")
    intent = checked.v1.payment_intents.retrieve(done.payment_intent)
    assert intent.receipt_email == "ann@example.com" and intent.amount == done.amount_total


def test_i3_an_unknown_checkout_session_is_stripes_resource_missing(clients):
    checked, _plain = clients
    with pytest.raises(stripe.InvalidRequestError) as caught:
        checked.v1.checkout.sessions.retrieve("cs_999999")
    assert caught.value.http_status == 404 and caught.value.code == "resource_missing"
