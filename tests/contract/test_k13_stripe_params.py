"""K13: the requests Kassa sends to Stripe are checked against Stripe's API description as the pinned SDK carries
it (tests/support/stripe_params.py). Every StripeClient the tests build — on localstripe and on the fixture
transport — checks each request before it leaves; these tests show the check refuses what Stripe would refuse
and takes what Stripe takes."""

from __future__ import annotations

import pytest

from kassa.processors.stripe import StripeProcessor
from tests.support.stripe_doubles import FixtureTransport, client_for
from tests.support.stripe_params import StripeRequestInvalid, check_request, routes

CREATE = "/v1/payment_intents"
GOOD_CHARGE = [("amount", "1250"), ("currency", "eur"), ("payment_method", "pm_1"), ("confirm", "true"),
               ("metadata[kassa_key]", "checkout-1-0"), ("expand[0]", "latest_charge.balance_transaction"),
               ("setup_future_usage", "off_session"), ("customer", "cus_1")]


def test_k13_the_api_description_covers_the_endpoints_the_processor_uses():
    templates = {(route.method, route.template) for route in routes()}
    assert len(templates) > 250  # the whole v1 API, read from the installed SDK
    for endpoint in [("POST", "/v1/payment_intents"), ("GET", "/v1/payment_intents/{intent}"),
                     ("POST", "/v1/refunds"), ("GET", "/v1/refunds"), ("POST", "/v1/disputes/{dispute}"),
                     ("POST", "/v1/disputes/{dispute}/close"), ("POST", "/v1/files"), ("GET", "/v1/events"),
                     ("GET", "/v1/balance_transactions"), ("GET", "/v1/payouts"), ("POST", "/v1/webhook_endpoints"),
                     ("POST", "/v1/setup_intents/{intent}/confirm"), ("GET", "/v1/account")]:
        assert endpoint in templates


def test_k13_a_request_stripe_takes_passes():
    assert check_request("POST", CREATE, GOOD_CHARGE).params == "PaymentIntentCreateParams"
    assert check_request("GET", CREATE, [("limit", "100"), ("starting_after", "pi_9")]).template == CREATE
    assert check_request("POST", "/v1/payment_intents/pi_1/confirm", []).template.endswith("/{intent}/confirm")
    # Free text that may be cleared ("Literal[''] | str" in the SDK) takes any text.
    assert check_request("POST", "/v1/webhook_endpoints", [("url", "https://shop.example/webhooks/stripe/1"),
                                                           ("enabled_events[0]", "refund.updated"),
                                                           ("description", "Kassa account 1")])


@pytest.mark.parametrize(("params", "why"), [
    ([("amuont", "1250")], "no parameter 'amuont'"),  # misspelt
    ([("amount", "12.50")], "amount='12.50'"),  # an amount in major units
    ([("setup_future_usage", "always")], "setup_future_usage='always'"),  # not one of the enum's values
    ([("confirm", "yes")], "confirm='yes'"),  # booleans are true/false
    ([("metadata[kassa][key]", "x")], "metadata[kassa][key]"),  # metadata is flat
    ([("payment_method_options[card][request_three_d_secure]", "sometimes")], "request_three_d_secure"),
    ([("api_key", "sk_test_x")], "no parameter 'api_key'"),  # a client option, never a body parameter
])
def test_k13_a_request_stripe_would_refuse_fails_the_test(params, why):
    with pytest.raises(StripeRequestInvalid, match=why.replace("[", r"\[").replace("]", r"\]")):
        check_request("POST", CREATE, params)


def test_k13_an_endpoint_stripe_does_not_have_fails_the_test():
    with pytest.raises(StripeRequestInvalid, match="no endpoint DELETE /v1/payment_intents/pi_1"):
        check_request("DELETE", "/v1/payment_intents/pi_1", [])
    with pytest.raises(StripeRequestInvalid, match="no endpoint"):
        check_request("GET", "/v1/charges/ch_1/disputes/dp_1", [])


def test_k13_the_fixture_transport_refuses_before_answering(app):
    """The processor's own call through the fixture transport is checked too: a call with a made-up parameter
    never reaches the fixture (nothing recorded), so a test can't pass on a request Stripe would reject."""
    transport = FixtureTransport({("GET", "/v1/refunds"): [(200, {"object": "list", "data": [], "has_more": False,
                                                                  "url": "/v1/refunds"})]})
    client = client_for("http://stripe.fixture", transport)
    with pytest.raises(StripeRequestInvalid, match="no parameter 'newest_first'"):
        client.v1.refunds.list(params={"limit": 100, "newest_first": True})
    assert transport.sent == []
    with app.app_context():
        assert StripeProcessor(client, 1).lookup_refund(1, "refund-1") is None  # the processor's real call passes
    assert [(s.method, s.path, s.params) for s in transport.sent] == [("GET", "/v1/refunds", [("limit", "100")])]
