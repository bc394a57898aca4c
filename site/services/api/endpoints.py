"""Every API operation, described once (I5): its path, the scope a restricted key needs (I1), its query and body
parameters and its answer, in the schema language of `schema.py`. The blueprint validates each request against
these before the resource runs, tests and schemathesis hold each answer to them, and `openapi()` writes the
OpenAPI 3.1 document from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kassa.services.api.schema import (
    COMPONENTS,
    Arr,
    Bool,
    Int,
    Obj,
    OneOf,
    Ref,
    Schema,
    Str,
    component,
    list_of,
)

NStr = Str(nullable=True)
NInt = Int(nullable=True)
Metadata = Obj(additional=Str(max_length=500), description="Kassa keeps no metadata here: always {}.")
# I3: Stripe's metadata where Kassa keeps it (payment links, checkout sessions): up to 50 keys of at most 40
# characters, values of at most 500; on an update an empty value removes its key.
KEPT_METADATA = Obj(additional=Str(max_length=500), description="Up to 50 keys (at most 40 characters each), "
                    "string values of at most 500 characters. Updating: an empty value removes the key.")
ID_TEXT = Str(max_length=255)
EVIDENCE_FIELDS = ("uncategorized_text", "product_description", "customer_name", "customer_email_address",
                   "shipping_tracking_number", "refund_refusal_explanation", "cancellation_rebuttal")

ERROR = component("Error", Obj(
    properties={"error": Obj(properties={
        "type": Str(enum=("invalid_request_error", "idempotency_error", "rate_limit_error", "api_error")),
        "message": Str(max_length=None), "param": Str(max_length=None), "code": Str()},
        required=("type", "message"))},
    required=("error",), description="Stripe's error envelope: the parameter at fault in `param`."))

PAYMENT_LINK = component("PaymentLink", Obj(properties={
    "id": Str(), "object": Str(enum=("payment_link",)), "active": Bool(), "url": Str(max_length=None),
    "currency": Str(), "livemode": Bool(), "metadata": KEPT_METADATA,
    "after_completion": Obj(properties={
        "type": Str(enum=("redirect", "hosted_confirmation")),
        "redirect": Obj(properties={"url": Str(max_length=None)}),
        "hosted_confirmation": Obj(properties={"custom_message": NStr})}, required=("type",)),
    "allow_promotion_codes": Bool(), "billing_address_collection": Str(enum=("auto", "required")),
}, required=("id", "object", "active", "url", "currency", "livemode"), description="A payment link (Stripe's PaymentLink)."))

REFUND = component("Refund", Obj(properties={
    "id": Str(), "object": Str(enum=("refund",)), "amount": Int(minimum=0), "currency": Str(),
    "charge": Str(), "payment_intent": Str(), "status": Str(), "reason": Str(
        enum=("duplicate", "fraudulent", "requested_by_customer"), nullable=True),
    "created": Int(), "metadata": Metadata, "failure_reason": NStr,
}, required=("id", "object", "amount", "currency", "payment_intent", "status"), description="A refund (Stripe's Refund)."))

CUSTOMER = component("Customer", Obj(properties={
    "id": Str(), "object": Str(enum=("customer",)), "email": NStr, "name": NStr, "phone": NStr,
    "created": Int(), "livemode": Bool(), "metadata": Metadata,
}, required=("id", "object", "email"), description="The buyer of a payment, as Stripe's Customer (Kassa's contact)."))

PAYMENT_INTENT = component("PaymentIntent", Obj(properties={
    "id": Str(), "object": Str(enum=("payment_intent",)), "amount": Int(minimum=0),
    "amount_received": Int(minimum=0), "currency": Str(),
    "status": Str(enum=("succeeded", "processing", "requires_payment_method", "requires_action", "canceled")),
    "created": Int(), "livemode": Bool(), "latest_charge": Str(), "receipt_email": NStr,
    "payment_method_types": Arr(items=Str()), "description": NStr, "metadata": Metadata,
    "last_payment_error": Obj(properties={"code": NStr, "message": NStr}, nullable=True),
    "amount_refunded": Int(minimum=0, description="Kassa's: what was refunded of it."),
    "customer": OneOf(choices=(NStr, Ref(name="Customer")), description="`cus_…`; the object with `expand[]=customer`."),
    "refunds": list_of(REFUND, "/v1/refunds"),
}, required=("id", "object", "amount", "currency", "status", "created", "livemode"),
    description="A payment (Stripe's PaymentIntent; `pi_42` is Kassa's payment 42)."))

CARD = Obj(properties={"brand": NStr, "last4": NStr, "exp_month": NInt, "exp_year": NInt, "funding": NStr})
CHARGE = component("Charge", Obj(properties={
    "id": Str(), "object": Str(enum=("charge",)), "amount": Int(minimum=0), "amount_captured": Int(minimum=0),
    "amount_refunded": Int(minimum=0), "refunded": Bool(), "captured": Bool(), "paid": Bool(), "currency": Str(),
    "status": Str(enum=("succeeded", "pending", "failed")), "payment_intent": Str(), "created": Int(),
    "livemode": Bool(), "disputed": Bool(), "receipt_email": NStr, "receipt_number": NStr,
    "billing_details": Obj(properties={"email": NStr, "name": NStr, "phone": NStr}),
    "payment_method_details": Obj(properties={"type": Str(), "card": CARD}, additional=Obj(
        properties={"last4": NStr})),
    "failure_code": NStr, "failure_message": NStr, "description": NStr, "metadata": Metadata,
}, required=("id", "object", "amount", "currency", "status"), description="A payment as its charge (`ch_42`)."))

DISPUTE = component("Dispute", Obj(properties={
    "id": Str(), "object": Str(enum=("dispute",)), "amount": Int(minimum=0), "currency": Str(), "charge": Str(),
    "payment_intent": Str(), "reason": Str(), "status": Str(), "created": Int(), "livemode": Bool(),
    "is_charge_refundable": Bool(), "metadata": Metadata, "balance_transactions": Arr(items=Obj(additional=True)),
    "evidence_details": Obj(properties={"due_by": NInt, "has_evidence": Bool(), "past_due": Bool(),
                                        "submission_count": Int(minimum=0)}),
}, required=("id", "object", "amount", "currency", "status"), description="A dispute (Stripe's Dispute)."))

SUBSCRIPTION = component("Subscription", Obj(properties={
    "id": Str(), "object": Str(enum=("subscription",)),
    "status": Str(enum=("trialing", "active", "past_due", "canceled")), "kassa_status": Str(
        enum=("trialing", "active", "past_due", "completed", "cancelled"), description="Kassa's own status."),
    "customer": Str(), "currency": Str(), "amount": Int(minimum=0, description="Per period, minor units."),
    "interval": Str(), "interval_count": Int(minimum=1), "created": Int(), "livemode": Bool(),
    "cancel_at_period_end": Bool(), "canceled_at": NInt, "ended_at": NInt, "current_period_end": NInt,
    "latest_invoice": NStr, "metadata": Metadata,
}, required=("id", "object", "status", "customer", "currency"), description="A subscription (Stripe's Subscription)."))

PAYOUT = component("Payout", Obj(properties={
    "id": Str(), "object": Str(enum=("payout",)), "amount": Int(description="Negative: a debit from the bank."),
    "currency": Str(), "status": Str(enum=("pending", "in_transit", "paid", "failed", "canceled")),
    "arrival_date": NInt, "created": Int(), "livemode": Bool(), "failure_message": NStr,
    "method": Str(enum=("standard",)), "type": Str(enum=("bank_account",)), "automatic": Bool(), "metadata": Metadata,
}, required=("id", "object", "amount", "currency", "status"), description="A payout (Stripe's Payout)."))

BALANCE_TRANSACTION = component("BalanceTransaction", Obj(properties={
    "id": Str(), "object": Str(enum=("balance_transaction",)), "amount": Int(), "net": Int(), "fee": Int(),
    "currency": Str(), "type": Str(), "reporting_category": Str(description="Kassa's ledger type."),
    "created": Int(), "available_on": NInt, "status": Str(enum=("available", "pending")), "description": NStr,
    "source": NStr,
}, required=("id", "object", "amount", "currency", "type"), description="A ledger entry (Stripe's BalanceTransaction)."))

PRODUCT = component("Product", Obj(properties={
    "id": Str(), "object": Str(enum=("product",)), "name": Str(), "description": NStr, "active": Bool(),
    "created": Int(), "updated": Int(), "livemode": Bool(), "metadata": Metadata,
    "unit_amount": Int(minimum=0, description="Kassa's: the product's price, minor units."), "currency": Str(),
    "recurring": Obj(properties={"interval": Str(), "interval_count": Int()}, nullable=True),
}, required=("id", "object", "name", "active"), description="A product (Stripe's Product, with Kassa's one price)."))

CHECKOUT_SESSION = component("CheckoutSession", Obj(properties={
    "id": Str(), "object": Str(enum=("checkout.session",)),
    "url": Str(max_length=None, nullable=True, description="The page the buyer opens; null once the session is "
                                                           "complete or expired."),
    "payment_link": NStr, "customer_email": NStr,
    "status": Str(enum=("open", "complete", "expired")),
    "payment_status": Str(enum=("paid", "unpaid", "no_payment_required")),
    "amount_total": Int(minimum=0, description="Minor units: the link's total until paid, then what was paid."),
    "currency": Str(), "payment_intent": NStr, "success_url": Str(max_length=None, nullable=True),
    "created": Int(), "expires_at": Int(), "livemode": Bool(), "mode": Str(enum=("payment", "subscription")),
    "metadata": KEPT_METADATA,
}, required=("id", "object", "url", "status", "payment_status", "amount_total", "currency", "expires_at"),
    description="A checkout session for one of the account's payment links (Stripe's Checkout Session)."))

EXPORT = component("Export", Obj(properties={
    "id": Str(), "object": Str(enum=("kassa.export",)),
    "status": Str(enum=("queued", "running", "done", "failed", "cancelled")),
    "format": Str(enum=("csv", "xlsx", "xls")), "filter": NStr,
    "rows_done": Int(minimum=0), "rows_total": NInt, "progress": Int(minimum=0, description="Percent, 0–100."),
    "size_bytes": NInt, "created": Int(), "finished_at": NInt, "expires_at": NInt,
    "file": Str(max_length=None, nullable=True, description="Where to download the file (under /api) once done, "
                                                            "for 7 days."),
    "livemode": Bool(),
}, required=("id", "object", "status", "format", "rows_done", "progress"),
    description="Kassa's own: a payments export built in the background, as the exports page's."))

PAGE_QUERY = {
    "limit": Int(minimum=1, maximum=100, description="1–100, 10 by default."),
    "starting_after": Str(max_length=255, description="An id: the page after it (older objects)."),
    "ending_before": Str(max_length=255, description="An id: the page before it (newer objects)."),
}
INTENT_EXPAND = Arr(items=Str(enum=("customer", "refunds")), max_items=2,
                    description="Relations returned as objects instead of ids: `customer`, `refunds`.")

PRICE_DATA = Obj(properties={
    "currency": Str(max_length=3), "unit_amount": Int(minimum=0),
    "product_data": Obj(properties={"name": Str(max_length=200), "description": Str(max_length=2000)}),
    "recurring": Obj(properties={"interval": Str(enum=("week", "month", "year")),
                                 "interval_count": Int(minimum=1, maximum=12)}),
}, required=("currency", "unit_amount"))
LINE_ITEM = Obj(properties={"price_data": PRICE_DATA, "quantity": Int(minimum=1, maximum=1000)},
                required=("price_data",))
AFTER_COMPLETION = Obj(properties={"type": Str(enum=("redirect", "hosted_confirmation")),
                                   "redirect": Obj(properties={"url": Str(max_length=2000)})}, required=("type",))


@dataclass(frozen=True)
class Endpoint:
    """One operation: `name` is the view's name in the `api` blueprint and the document's operationId."""

    name: str
    method: str
    path: str  # OpenAPI's, under /api: "/v1/payment_links/{link_id}"
    scope: tuple[str, str]  # I1: (resource, "read" | "write") a restricted key needs
    summary: str
    response: Schema
    query: Obj | None = None
    body: Obj | None = None
    tag: str = ""
    files: tuple[str, ...] = ()  # a file download: its 200 is one of these media types, not JSON

    @property
    def rule(self) -> str:
        """Flask's rule inside the blueprint (/api prefix): "/v1/payment_links/<link_id>"."""
        return self.path.replace("{", "<").replace("}", ">")


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("create_payment_link", "POST", "/v1/payment_links", ("payment_links", "write"),
             "Create a payment link", PAYMENT_LINK, tag="Payment links",
             body=Obj(properties={"line_items": Arr(items=LINE_ITEM, max_items=50),
                                  "after_completion": AFTER_COMPLETION, "metadata": KEPT_METADATA},
                      required=("line_items",))),
    Endpoint("payment_link", "GET", "/v1/payment_links/{link_id}", ("payment_links", "read"),
             "Retrieve a payment link", PAYMENT_LINK, tag="Payment links"),
    Endpoint("update_payment_link", "POST", "/v1/payment_links/{link_id}", ("payment_links", "write"),
             "Update a payment link", PAYMENT_LINK, tag="Payment links",
             body=Obj(properties={
                 "active": Bool(description="false deactivates the link, true brings it back."),
                 "line_items": Arr(items=LINE_ITEM, max_items=50, description="Replaces the items (same currency)."),
                 "after_completion": AFTER_COMPLETION,
                 "billing_address_collection": Str(enum=("auto", "required")), "metadata": KEPT_METADATA})),
    Endpoint("payment_intents", "GET", "/v1/payment_intents", ("payments", "read"),
             "List payments", list_of(PAYMENT_INTENT, "/v1/payment_intents"), tag="Payments",
             query=Obj(properties={**PAGE_QUERY, "expand": INTENT_EXPAND})),
    Endpoint("payment_intent", "GET", "/v1/payment_intents/{intent_id}", ("payments", "read"),
             "Retrieve a payment", PAYMENT_INTENT, tag="Payments", query=Obj(properties={"expand": INTENT_EXPAND})),
    Endpoint("charges", "GET", "/v1/charges", ("payments", "read"),
             "List payments as charges", list_of(CHARGE, "/v1/charges"), tag="Payments",
             query=Obj(properties=PAGE_QUERY)),
    Endpoint("charge", "GET", "/v1/charges/{charge_id}", ("payments", "read"),
             "Retrieve a payment as its charge", CHARGE, tag="Payments"),
    Endpoint("create_refund", "POST", "/v1/refunds", ("refunds", "write"),
             "Refund a payment", REFUND, tag="Refunds",
             body=Obj(properties={"payment_intent": ID_TEXT, "charge": ID_TEXT,
                                  "amount": Int(minimum=1, description="Minor units; what is left by default."),
                                  "reason": Str(enum=("duplicate", "fraudulent", "requested_by_customer"))})),
    Endpoint("refunds", "GET", "/v1/refunds", ("refunds", "read"),
             "List refunds", list_of(REFUND, "/v1/refunds"), tag="Refunds",
             query=Obj(properties={**PAGE_QUERY, "payment_intent": ID_TEXT, "charge": ID_TEXT})),
    Endpoint("refund", "GET", "/v1/refunds/{refund_id}", ("refunds", "read"),
             "Retrieve a refund", REFUND, tag="Refunds"),
    Endpoint("dispute", "GET", "/v1/disputes/{dispute_id}", ("disputes", "read"),
             "Retrieve a dispute", DISPUTE, tag="Disputes"),
    Endpoint("update_dispute", "POST", "/v1/disputes/{dispute_id}", ("disputes", "write"),
             "Add evidence to a dispute, or submit it", DISPUTE, tag="Disputes",
             body=Obj(properties={
                 "evidence": Obj(properties={name: Str(max_length=2000) for name in EVIDENCE_FIELDS}),
                 "submit": Bool(description="true submits the evidence (once)."), "metadata": Metadata})),
    Endpoint("close_dispute", "POST", "/v1/disputes/{dispute_id}/close", ("disputes", "write"),
             "Accept a dispute (it closes as lost)", DISPUTE, tag="Disputes", body=Obj()),
    Endpoint("subscription", "GET", "/v1/subscriptions/{subscription_id}", ("subscriptions", "read"),
             "Retrieve a subscription", SUBSCRIPTION, tag="Subscriptions"),
    Endpoint("update_subscription", "POST", "/v1/subscriptions/{subscription_id}", ("subscriptions", "write"),
             "Cancel a subscription at the end of its paid period", SUBSCRIPTION, tag="Subscriptions",
             body=Obj(properties={"cancel_at_period_end": Bool()})),
    Endpoint("cancel_subscription", "DELETE", "/v1/subscriptions/{subscription_id}", ("subscriptions", "write"),
             "Cancel a subscription now", SUBSCRIPTION, tag="Subscriptions"),
    Endpoint("payouts", "GET", "/v1/payouts", ("payouts", "read"), "List payouts", list_of(PAYOUT, "/v1/payouts"),
             tag="Payouts", query=Obj(properties={**PAGE_QUERY, "status": Str(
                 enum=("pending", "in_transit", "paid", "failed"))})),
    Endpoint("payout", "GET", "/v1/payouts/{payout_id}", ("payouts", "read"), "Retrieve a payout", PAYOUT,
             tag="Payouts"),
    Endpoint("balance_transactions", "GET", "/v1/balance_transactions", ("payouts", "read"),
             "List balance transactions", list_of(BALANCE_TRANSACTION, "/v1/balance_transactions"), tag="Payouts",
             query=Obj(properties={**PAGE_QUERY, "payout": ID_TEXT, "type": Str(max_length=40)})),
    Endpoint("balance_transaction", "GET", "/v1/balance_transactions/{txn_id}", ("payouts", "read"),
             "Retrieve a balance transaction", BALANCE_TRANSACTION, tag="Payouts"),
    Endpoint("products", "GET", "/v1/products", ("products", "read"), "List products",
             list_of(PRODUCT, "/v1/products"), tag="Products",
             query=Obj(properties={**PAGE_QUERY, "active": Bool()})),
    Endpoint("create_product", "POST", "/v1/products", ("products", "write"), "Create a product", PRODUCT,
             tag="Products", body=Obj(properties={
                 "name": Str(max_length=200), "description": Str(max_length=2000),
                 "default_price_data": Obj(properties={
                     "currency": Str(max_length=3), "unit_amount": Int(minimum=0),
                     "recurring": Obj(properties={"interval": Str(enum=("week", "month", "year")),
                                                  "interval_count": Int(minimum=1, maximum=12)},
                                      required=("interval",))}, required=("currency", "unit_amount"))},
                 required=("name", "default_price_data"))),
    Endpoint("product", "GET", "/v1/products/{product_id}", ("products", "read"), "Retrieve a product", PRODUCT,
             tag="Products"),
    Endpoint("create_checkout_session", "POST", "/v1/checkout/sessions", ("checkout_sessions", "write"),
             "Create a checkout session for a payment link", CHECKOUT_SESSION, tag="Checkout sessions",
             body=Obj(properties={
                 "payment_link": Str(max_length=255, description="Kassa's: the `plink_…` whose checkout the buyer "
                                                                 "gets (Stripe's sessions take line items instead)."),
                 "customer_email": Str(max_length=254, description="Filled into the checkout's email field."),
                 "success_url": Str(max_length=2000, description="Where the buyer goes after paying, instead of "
                                                                 "the link's; `{CHECKOUT_SESSION_ID}` becomes the id."),
                 "expires_at": Int(minimum=0, description="Unix time, 30 minutes to 24 hours from now (24 h "
                                                          "by default)."),
                 "metadata": KEPT_METADATA}, required=("payment_link",))),
    Endpoint("checkout_sessions", "GET", "/v1/checkout/sessions", ("checkout_sessions", "read"),
             "List checkout sessions", list_of(CHECKOUT_SESSION, "/v1/checkout/sessions"), tag="Checkout sessions",
             query=Obj(properties={**PAGE_QUERY, "payment_link": ID_TEXT,
                                   "status": Str(enum=("open", "complete", "expired"))})),
    Endpoint("checkout_session", "GET", "/v1/checkout/sessions/{session_id}", ("checkout_sessions", "read"),
             "Retrieve a checkout session", CHECKOUT_SESSION, tag="Checkout sessions"),
    Endpoint("expire_checkout_session", "POST", "/v1/checkout/sessions/{session_id}/expire",
             ("checkout_sessions", "write"), "Expire an open checkout session", CHECKOUT_SESSION,
             tag="Checkout sessions", body=Obj()),
    Endpoint("create_export", "POST", "/kassa/exports", ("exports", "write"),
             "Export payments, chosen with the payments index's filter language (Kassa's own)", EXPORT,
             tag="Exports", body=Obj(properties={
                 "filter": Str(max_length=20000, description="As /kassa/payments' `filter`; every payment of the "
                                                             "key's mode when left out."),
                 "format": Str(enum=("csv", "xlsx"), description="csv by default.")})),
    Endpoint("export", "GET", "/kassa/exports/{export_id}", ("exports", "read"),
             "Retrieve an export: its status and progress", EXPORT, tag="Exports"),
    Endpoint("export_file", "GET", "/kassa/exports/{export_id}/file", ("exports", "read"),
             "Download an export's file once it is done", EXPORT, tag="Exports",
             files=("text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")),
    Endpoint("kassa_payments", "GET", "/kassa/payments", ("payments", "read"),
             "Filter payments with the payments index's filter language (Kassa's own)",
             list_of(PAYMENT_INTENT, "/kassa/payments"), tag="Payments",
             query=Obj(properties={**PAGE_QUERY, "filter": Str(
                 max_length=20000, description='JSON groups of [property, operator, values], e.g. '
                 '[[["status","any_of",["failed"]],["amount","gt",["10"]]]]: OR between groups, AND inside.')})),
)
BY_NAME = {endpoint.name: endpoint for endpoint in ENDPOINTS}

_ERRORS = {
    "400": "A parameter is missing or invalid (`param` names it).",
    "401": "No key, a wrong key or a revoked key.",
    "403": "A restricted key without this endpoint's scope.",
    "404": "No such object for this key: another account's or the other mode's ids too (`resource_missing`).",
    "409": "The same Idempotency-Key is still in flight (`Retry-After`).",
    "429": "The key's rate limit (`Retry-After`).",
}
_RATE_HEADERS = {name: {"schema": {"type": "string"}, "description": text} for name, text in (
    ("RateLimit-Limit", "Calls the key may make per window."),
    ("RateLimit-Remaining", "Calls left in this window."),
    ("RateLimit-Reset", "Seconds until the window resets."))}


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name in endpoint.path.split("{")[1:]:
        params.append({"name": name.partition("}")[0], "in": "path", "required": True,
                       "schema": {"type": "string", "maxLength": 255}})
    if endpoint.query is not None:
        for name, schema in endpoint.query.properties.items():
            param = {"name": f"{name}[]" if isinstance(schema, Arr) else name, "in": "query",
                     "schema": schema.json(), "required": name in endpoint.query.required}
            if isinstance(schema, Arr):
                param.update(style="form", explode=True)
            params.append(param)
    if endpoint.method == "POST":
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "schema": {"type": "string", "maxLength": 255},
                       "description": "I4: the first answer is replayed for 24 h."})
    return params


def openapi(server_url: str = "/api") -> dict[str, Any]:
    """The OpenAPI 3.1 document, from the endpoints and components above."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS:
        operation: dict[str, Any] = {
            "operationId": endpoint.name, "summary": endpoint.summary, "tags": [endpoint.tag],
            "description": f"Restricted keys need `{endpoint.scope[0]}` {endpoint.scope[1]}.",
            "parameters": _parameters(endpoint),
            "responses": {"200": {"description": "OK", "headers": _RATE_HEADERS,
                                  "content": ({media: {"schema": {"type": "string", "format": "binary"}}
                                               for media in endpoint.files} if endpoint.files else
                                              {"application/json": {"schema": endpoint.response.json()}})},
                          **{status: {"description": text,
                                      "content": {"application/json": {"schema": ERROR.json()}}}
                             for status, text in _ERRORS.items()}},
        }
        if endpoint.body is not None:
            operation["requestBody"] = {"required": bool(endpoint.body.required), "content": {
                "application/x-www-form-urlencoded": {
                    "schema": endpoint.body.json(),
                    "encoding": {name: {"style": "deepObject", "explode": True}
                                 for name, schema in endpoint.body.properties.items()
                                 if isinstance(schema, (Obj, Arr))}}}}
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Kassa API", "version": "1",
                 "description": "Stripe-shaped where the objects are shared: Stripe's paths, form-encoded "
                                "parameters, list and error envelopes. See docs/api.md."},
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}, {"basic": []}],
        "paths": paths,
        "components": {
            "schemas": {name: schema.json() for name, schema in sorted(COMPONENTS.items())},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer sk_…`"},
                "basic": {"type": "http", "scheme": "basic", "description": "curl's `-u sk_…:`"}},
        },
    }


def response_errors(name: str, status: int, body: Any) -> list[str]:
    """What in an answer of this operation doesn't match its schema (tests use it on every answer)."""
    if status == 200 and BY_NAME[name].files:
        return []  # a file, not JSON
    schema = BY_NAME[name].response if status == 200 else COMPONENTS["Error"]
    return schema.errors(body)
