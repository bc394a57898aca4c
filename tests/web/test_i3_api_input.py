"""I3 (and I7's "no 5xx on any input"): malformed Stripe-style parameters — wrong shapes, huge numbers, nesting
clashes, unknown names — are each a 4xx in Stripe's error envelope naming the parameter, never a server error."""

from __future__ import annotations

import pytest

from kassa.services.api.keys import create_key
from tests.factories import make_merchant
from tests.support.payments import actor_for

ITEM = ("line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100"
        "&line_items[0][price_data][product_data][name]=x")
# (method, path, form body, the status, the param Stripe's envelope names)
CASES = [
    ("POST", "/api/v1/payment_links", "line_items=abc", 400, "line_items"),
    ("POST", "/api/v1/payment_links", "line_items[0]=x", 400, "line_items[0]"),
    ("POST", "/api/v1/payment_links", "line_items[a][price_data][currency]=usd", 400, "line_items"),
    ("POST", "/api/v1/payment_links", "line_items[999999999999][price_data][currency]=usd", 400, "line_items"),
    ("POST", "/api/v1/payment_links", "line_items[0][price_data]=1", 400, "line_items[0][price_data]"),
    ("POST", "/api/v1/payment_links", "line_items[0][price_data][currency]=usd"
     "&line_items[0][price_data][unit_amount]=99999999999999999999999", 400,
     "line_items[0][price_data][unit_amount]"),
    ("POST", "/api/v1/payment_links", ITEM + "&line_items[0][quantity]=abc", 400, "line_items[0][quantity]"),
    ("POST", "/api/v1/payment_links", ITEM.replace("=x", "") + "&line_items[0][price_data][product_data]=x", 400,
     "line_items[0][price_data][product_data]"),
    ("POST", "/api/v1/payment_links", ITEM + "&line_items[0][price_data][recurring][interval]=day", 400,
     "line_items[0][price_data][recurring][interval]"),
    ("POST", "/api/v1/payment_links", ITEM + "&line_items[1][price_data][currency]=eur&line_items[1][price_data]"
     "[unit_amount]=5&line_items[1][price_data][product_data][name]=y", 400, "line_items"),  # two currencies
    ("POST", "/api/v1/payment_links", ITEM + "&after_completion=x", 400, "after_completion"),
    ("POST", "/api/v1/payment_links", ITEM + "&after_completion[type]=x", 400, "after_completion[type]"),
    ("POST", "/api/v1/payment_links", ITEM + "&after_completion[type]=redirect", 400,
     "after_completion[redirect][url]"),
    ("POST", "/api/v1/payment_links", "a=1&a[b]=2", 400, "a[b]"),
    ("POST", "/api/v1/payment_links", "a[b]=2&a=1", 400, "a"),
    ("POST", "/api/v1/payment_links", "a[[[]]]=1&]]=2&[=3", 400, "a"),
    ("POST", "/api/v1/refunds", "", 400, "payment_intent"),
    ("POST", "/api/v1/refunds", "payment_intent=pi_abc", 404, "payment_intent"),
    ("POST", "/api/v1/refunds", "payment_intent=pi_99999999999999999999999", 404, "payment_intent"),
    ("POST", "/api/v1/refunds", "payment_intent[x]=1", 400, "payment_intent"),
    ("POST", "/api/v1/refunds", "charge=ch_1&amount=abc", 400, "amount"),  # I5: the schema checks first
    ("POST", "/api/v1/refunds", "charge=ch_1&amount=5", 404, "charge"),
    ("POST", "/api/v1/payment_links/plink_1", "active=true", 404, "id"),
    ("GET", "/api/v1/refunds?charge=ch_1", "", 404, "charge"),
    ("GET", "/api/v1/refunds?starting_after=re_1", "", 404, "starting_after"),
    ("GET", "/api/v1/charges?limit=101", "", 400, "limit"),
    ("GET", "/api/v1/charges/ch_x", "", 404, "id"),
    ("GET", "/api/v1/payment_intents?limit=abc", "", 400, "limit"),
    ("GET", "/api/v1/payment_intents?limit=0", "", 400, "limit"),
    ("GET", "/api/v1/payment_intents?limit[x]=1", "", 400, "limit"),
    ("GET", "/api/v1/payment_intents?starting_after[x]=1", "", 400, "starting_after"),
    ("GET", "/api/v1/payment_intents?starting_after=pi_-1", "", 404, "starting_after"),
    ("GET", "/api/v1/payment_intents?ending_before=pi_1", "", 404, "ending_before"),
    ("GET", "/api/v1/payment_intents?ending_before=pi_1&starting_after=pi_2", "", 400, "ending_before"),
    ("GET", "/api/v1/payment_intents?expand[]=colour", "", 400, "expand"),
    ("GET", "/api/v1/payment_intents?expand[x][]=refunds", "", 400, "expand[x]"),
    ("GET", "/api/v1/payment_intents/pi_99999999999999999999", "", 404, "id"),
    ("GET", "/api/v1/disputes/dp_%F0%9F%98%80", "", 404, "id"),
    ("GET", "/api/v1/payment_links/plink_", "", 404, "id"),
]


@pytest.fixture
def app_config() -> dict:
    return {"KASSA_API_TEST_RATE_LIMIT": "1000 per second",  # one key makes every call here at once (I7 apart)
            "KASSA_API_TEST_ACCOUNT_RATE_LIMIT": "1000 per second"}


@pytest.fixture
def secret(app):
    return create_key(actor_for(make_merchant()), "Shop", "test")[1]


def test_i3_malformed_parameters_are_4xx_in_stripes_envelope_never_5xx(client, secret):
    wrong = []
    for method, path, body, status, param in CASES:
        response = client.open(path, method=method, data=body, content_type="application/x-www-form-urlencoded",
                               headers={"Authorization": f"Bearer {secret}"})
        error = response.json.get("error", {}) if response.is_json else {}
        if (response.status_code, error.get("param")) != (status, param) or not error.get("message"):
            wrong.append((method, path, body, response.status_code, response.get_data(as_text=True)[:200]))
    assert wrong == []


def test_i2_a_link_update_takes_only_a_boolean_active(client, app):
    owner = make_merchant()
    secret = create_key(actor_for(owner), "Shop", "test")[1]
    headers = {"Authorization": f"Bearer {secret}"}
    link = client.post("/api/v1/payment_links", headers=headers, data={
        "line_items[0][price_data][currency]": "usd", "line_items[0][price_data][unit_amount]": "500",
        "line_items[0][price_data][product_data][name]": "Bell", "line_items[0][quantity]": "1"}).json
    for body, param in (({"active": "maybe"}, "active"), ({"active[x]": "1"}, "active"), ({"name": "x"}, "name")):
        response = client.post(f"/api/v1/payment_links/{link['id']}", data=body, headers=headers)
        assert (response.status_code, response.json["error"]["param"]) == (400, param)
