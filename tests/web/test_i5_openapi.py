"""I5: /api/openapi.json is an OpenAPI 3.1 document written from the same schema objects that check every
request (services/api/endpoints.py): each API route is in it and nothing else is; a parameter the document
doesn't list is refused with Stripe's 400 naming it; the reference page at /api/docs is rendered on the server
from the same document, with no script and nothing from another host."""

from __future__ import annotations

import re

import pytest

from kassa.services.api import endpoints
from kassa.services.api.keys import create_key
from tests.factories import make_merchant
from tests.support.payments import actor_for, soup_of


@pytest.fixture
def app_config() -> dict:
    return {"KASSA_API_TEST_RATE_LIMIT": "1000 per second", "KASSA_API_TEST_ACCOUNT_RATE_LIMIT": "1000 per second"}


def _operations(doc: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, methods in doc["paths"].items() for method in methods}


def test_i5_openapi_document_lists_every_api_route_and_only_those(app, client):
    response = client.get("/api/openapi.json")  # public, as Stripe's is: no key needed
    assert response.status_code == 200 and response.mimetype == "application/json"
    doc = response.json
    assert doc["openapi"] == "3.1.0" and doc["servers"] == [{"url": "/api"}]
    routes = {(method, re.sub(r"<(\w+)>", r"{\1}", rule.rule).removeprefix("/api"))
              for rule in app.url_map.iter_rules() if rule.endpoint.startswith("api.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == _operations(doc)
    # every $ref points at a component that exists, and every component is used
    text = response.get_data(as_text=True)
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', text))
    assert refs == set(doc["components"]["schemas"])
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            assert {"200", "400", "401", "403", "404", "429"} <= set(operation["responses"]), (method, path)
            names = [p["name"] for p in operation["parameters"] if p["in"] == "path"]
            assert names == re.findall(r"{(\w+)}", path)


def test_i5_the_document_and_the_request_check_are_one_definition(app, client, monkeypatch):
    """Adding a parameter to an operation's schema object adds it to the document and makes the API take it:
    there is no second list to keep in step."""
    secret = create_key(actor_for(make_merchant()), "Shop", "test")[1]
    headers = {"Authorization": f"Bearer {secret}"}
    refused = client.get("/api/v1/payouts?colour=red", headers=headers)
    assert refused.status_code == 400 and refused.json["error"]["param"] == "colour"
    assert "colour" not in {p["name"] for p in client.get("/api/openapi.json").json["paths"]["/v1/payouts"]["get"]
                            ["parameters"]}
    query = endpoints.BY_NAME["payouts"].query
    monkeypatch.setitem(query.properties, "colour", endpoints.Str(enum=("red", "blue")))
    listed = client.get("/api/openapi.json").json["paths"]["/v1/payouts"]["get"]["parameters"]
    assert {"name": "colour", "in": "query", "schema": {"type": "string", "enum": ["red", "blue"]},
            "required": False} in listed
    assert client.get("/api/v1/payouts?colour=red", headers=headers).status_code == 200
    wrong = client.get("/api/v1/payouts?colour=green", headers=headers)
    assert wrong.status_code == 400 and wrong.json["error"]["param"] == "colour"


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/api/v1/payment_links", {"line_items[0][price_data][currency]": "usd", "line_items[0][price_data][unit_amount]": "5",
                               "line_items[0][colour]": "x"},
     "line_items[0][colour]"),
    ("/api/v1/refunds", {"payment_intent": "pi_1", "amount": "-5"}, "amount"),
    ("/api/v1/refunds", {"payment_intent": "pi_1", "reason": "bored"}, "reason"),
    ("/api/v1/payment_links/plink_1", {"active": "yes"}, "active"),
    ("/api/v1/products", {"name": "x", "default_price_data[unit_amount]": "1"}, "default_price_data[currency]"),
    ("/api/v1/subscriptions/sub_1", {"cancel_at_period_end": "soon"}, "cancel_at_period_end"),
    ("/api/v1/disputes/dp_1", {"submit": "1"}, "submit"),
])
def test_i5_requests_are_checked_against_the_schema_before_anything_runs(client, path, body, param):
    secret = create_key(actor_for(make_merchant()), "Shop", "test")[1]
    response = client.post(path, data=body, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 400 and response.json["error"]["param"] == param, response.json
    assert endpoints.response_errors("create_refund", 400, response.json) == []


def test_i5_reference_page_is_rendered_from_the_document_without_scripts(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    page = soup_of(response)
    doc = client.get("/api/openapi.json").json
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            section = page.select_one(f"section#{operation['operationId']}")
            assert section is not None and f"{method.upper()} {path}" in section.get_text(), operation["operationId"]
    assert page.select_one("section#object-PaymentIntent") is not None
    refund_section = page.select_one("section#create_refund").get_text()
    assert "payment_intent" in refund_section and "idempotency-key" in refund_section.lower()
    assert not [s for s in page.select("script[src]") if "//" in s["src"]]
    assert not [link for link in page.select("link[href]") if link["href"].startswith(("http:", "https:", "//"))]
