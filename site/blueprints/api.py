"""The API (I1, I3), at /api/v1/…: Stripe's paths, authentication, form-encoded parameters, list and error
envelopes, so the official `stripe` client works pointed at Kassa. Thin: the key's lookup and the parameters'
decoding here, each resource in services/api.

Key-authenticated, so CSRF-exempt (no cookie is read: a browser can't make a call on anyone's behalf)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request, send_file
from werkzeug.exceptions import HTTPException

from kassa.errors import KassaError
from kassa.extensions import csrf, db
from kassa.forms import posted_pairs, safe_filename
from kassa.netutil import client_ip
from kassa.services.api import checkout_resources, endpoints, idempotency, keys, resources
from kassa.services.api.errors import ApiError
from kassa.services.api.resources import Caller
from kassa.services.platform import throttle

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)

MAX_PARAMS = 1000  # Stripe-shaped parameters: a link's line items and their fields fit in far fewer
# I1: what each endpoint needs of a restricted key (resource, "read" | "write"), from the one description of
# every operation (services/api/endpoints.py, which also writes the OpenAPI document, I5).
ENDPOINT_SCOPES = {f"api.{endpoint.name}": endpoint.scope for endpoint in endpoints.ENDPOINTS}


def _secret() -> str | None:
    """Stripe's client sends `Authorization: Bearer sk_…`; curl's `-u sk_…:` sends Basic with the key as user."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def _unauthorized(secret: str | None) -> ApiError:
    if not secret:
        return ApiError(401, "You did not provide an API key. Send it as `Authorization: Bearer sk_…`.")
    shown = f"{secret[:8]}{'*' * 4}{secret[-4:]}" if len(secret) > 12 else "****"
    return ApiError(401, f"Invalid API Key provided: {shown}", code="api_key_invalid")


def _rate_limit(key_id: int, account_id: int, mode: str) -> None:
    """I7: calls per key (KASSA_API_LIVE_RATE_LIMIT / KASSA_API_TEST_RATE_LIMIT) and per account, all its keys of
    the mode together (KASSA_API_LIVE_ACCOUNT_RATE_LIMIT / …_TEST_…), so many keys can't multiply the key limit.
    Every answer says how many calls are left under the nearer of the two (RateLimit-* headers); a call over
    either is 429 with Retry-After and counts against neither."""
    config = current_app.config
    key_rule = (config["KASSA_API_LIVE_RATE_LIMIT" if mode == "live" else "KASSA_API_TEST_RATE_LIMIT"],
                ("api-key", str(key_id)))
    account_rule = (config[f"KASSA_API_{mode.upper()}_ACCOUNT_RATE_LIMIT"], ("api-account", str(account_id), mode))
    allowed = throttle.take(key_rule, account_rule)
    limit, remaining, reset = min((throttle.window(*rule) for rule in (key_rule, account_rule)),
                                  key=lambda stats: (stats[1], -stats[2]))
    g.api_rate_headers = {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(remaining),
                          "RateLimit-Reset": str(reset)}
    if not allowed:
        key_over = throttle.retry_after(key_rule) > 0
        message = ("Too many requests hit the API too quickly with this key. Slow down and retry." if key_over else
                   "Too many requests hit the API too quickly from this account's keys together. Slow down and "
                   "retry.")
        raise ApiError(429, message, code="rate_limit", type="rate_limit_error",
                       headers={"Retry-After": str(throttle.retry_after(key_rule, account_rule))})


@bp.before_request
def _authenticate():
    secret = _secret()
    key = keys.authenticate(secret) if secret else None
    if key is None:
        raise _unauthorized(secret)
    g.api_caller = caller = Caller(actor=keys.key_actor(key, client_ip()), mode=key.mode)
    g.api_key_last_used = key.last_used_at
    resource, access = ENDPOINT_SCOPES.get(request.endpoint, ("", "write"))
    if not keys.allows(key, resource, access):
        raise ApiError(403, f"The provided key '{key.prefix}…' does not have the required permissions for this "
                       f"endpoint. Having the '{resource or 'unknown'}' {access} permission would allow this "
                       "request to continue.", code="insufficient_permissions")
    _rate_limit(key.id, key.account_id, key.mode)
    idempotency_key = request.headers.get("Idempotency-Key")
    if request.method == "POST" and idempotency_key is not None:  # I4
        request_hash = idempotency.fingerprint(request.method, request.path, posted_pairs())
        outcome = idempotency.begin(caller, idempotency_key, request_hash)
        if isinstance(outcome, idempotency.Replay):
            response = current_app.response_class(outcome.body, status=outcome.status, mimetype="application/json")
            response.headers["Idempotent-Replayed"] = "true"
            return response
        g.api_idempotency_claim = outcome
    return None


@bp.after_request
def _record(response):
    for name, value in g.pop("api_rate_headers", {}).items():
        response.headers.setdefault(name, value)
    claim = g.pop("api_idempotency_claim", None)
    if claim is not None:
        idempotency.finish(claim, response.status_code, response.get_data(as_text=True))
    caller = g.pop("api_caller", None)
    if caller is not None:
        keys.record_call(caller.actor, request.method, request.path, response.status_code,
                         g.pop("api_key_last_used", None))
    return response


@bp.teardown_request
def _let_go(exc):
    claim = g.pop("api_idempotency_claim", None)
    if claim is not None:  # no response was made (an exception escaped): a retry may run again
        db.session.rollback()
        idempotency.abandon(claim)


def _nested(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (`line_items[0][price_data][currency]=usd`) as nested dicts; list indexes stay keys."""
    if len(pairs) > MAX_PARAMS:
        raise ApiError(400, "Too many parameters.")
    params: dict[str, Any] = {}
    for name, value in pairs:
        if name.endswith("[]"):  # `expand[]=a&expand[]=b`: a list
            values = params.setdefault(name[:-2], [])
            if not isinstance(values, list) or "[" in name[:-2]:
                raise ApiError(400, f"Invalid parameter: {name}", param=name[:-2])
            values.append(value)
            continue
        head, _, rest = name.partition("[")
        path = [head] + ([part.rstrip("]") for part in rest.split("[")] if rest else [])
        node = params
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ApiError(400, f"Invalid parameter: {name}", param=name)
            node = child
        if isinstance(node.get(path[-1]), dict):
            raise ApiError(400, f"Invalid parameter: {name}", param=name)
        node[path[-1]] = value
    return params


def _query() -> dict[str, Any]:
    return _nested(list(request.args.items(multi=True)))


def _body() -> dict[str, Any]:
    return _nested(posted_pairs())


def _caller() -> Caller:
    return g.api_caller


def _operation(name: str):
    """Registers the view of the operation `name` at its path and method (endpoints.py), and checks its query and
    body against the operation's schema before the view runs (I5): a wrong parameter is a 400 naming it."""
    endpoint = endpoints.BY_NAME[name]

    def register(view):
        def checked(**kwargs):
            (endpoint.query or endpoints.Obj()).check_fields(_query())
            if endpoint.method == "POST":
                (endpoint.body or endpoints.Obj()).check_fields(_body())
            return view(**kwargs)

        checked.__name__ = name
        bp.add_url_rule(endpoint.rule, endpoint=name, view_func=checked, methods=[endpoint.method])
        return view

    return register


def _url() -> str:
    return request.path.removeprefix("/api")


@_operation("create_payment_link")
def create_payment_link():
    return jsonify(resources.create_payment_link(_caller(), _body()))


@_operation("payment_link")
def payment_link(link_id: str):
    return jsonify(resources.retrieve_payment_link(_caller(), link_id))


@_operation("update_payment_link")
def update_payment_link(link_id: str):
    return jsonify(resources.update_payment_link(_caller(), link_id, _body()))


@_operation("charges")
def charges():
    return jsonify(resources.list_charges(_caller(), _query(), url=_url()))


@_operation("charge")
def charge(charge_id: str):
    return jsonify(resources.retrieve_charge(_caller(), charge_id))


@_operation("refunds")
def refunds():
    return jsonify(resources.list_refunds(_caller(), _query(), url=_url()))


@_operation("refund")
def refund(refund_id: str):
    return jsonify(resources.retrieve_refund(_caller(), refund_id))


@_operation("payment_intents")
def payment_intents():
    return jsonify(resources.list_payment_intents(_caller(), _query(), url=_url()))


@_operation("payment_intent")
def payment_intent(intent_id: str):
    return jsonify(resources.retrieve_payment_intent(_caller(), intent_id, _query()))


@_operation("create_refund")
def create_refund():
    return jsonify(resources.create_refund(_caller(), _body(), request.headers.get("Idempotency-Key")))


@_operation("dispute")
def dispute(dispute_id: str):
    return jsonify(resources.retrieve_dispute(_caller(), dispute_id))


@_operation("update_dispute")
def update_dispute(dispute_id: str):
    return jsonify(resources.update_dispute(_caller(), dispute_id, _body()))


@_operation("close_dispute")
def close_dispute(dispute_id: str):
    return jsonify(resources.close_dispute(_caller(), dispute_id))


@_operation("subscription")
def subscription(subscription_id: str):
    return jsonify(resources.retrieve_subscription(_caller(), subscription_id))


@_operation("update_subscription")
def update_subscription(subscription_id: str):
    return jsonify(resources.update_subscription(_caller(), subscription_id, _body()))


@_operation("cancel_subscription")
def cancel_subscription(subscription_id: str):
    return jsonify(resources.cancel_subscription(_caller(), subscription_id, "now"))


@_operation("payouts")
def payouts():
    return jsonify(resources.list_payouts(_caller(), _query(), url=_url()))


@_operation("payout")
def payout(payout_id: str):
    return jsonify(resources.retrieve_payout(_caller(), payout_id))


@_operation("balance_transactions")
def balance_transactions():
    return jsonify(resources.list_balance_transactions(_caller(), _query(), url=_url()))


@_operation("balance_transaction")
def balance_transaction(txn_id: str):
    return jsonify(resources.retrieve_balance_transaction(_caller(), txn_id))


@_operation("products")
def products():
    return jsonify(resources.list_products(_caller(), _query(), url=_url()))


@_operation("create_product")
def create_product():
    return jsonify(resources.create_product(_caller(), _body()))


@_operation("product")
def product(product_id: str):
    return jsonify(resources.retrieve_product(_caller(), product_id))


@_operation("kassa_payments")
def kassa_payments():
    return jsonify(resources.filter_payments(_caller(), _query(), url=_url()))


@_operation("create_checkout_session")
def create_checkout_session():
    return jsonify(checkout_resources.create_checkout_session(_caller(), _body()))


@_operation("checkout_sessions")
def checkout_sessions():
    return jsonify(checkout_resources.list_checkout_sessions(_caller(), _query(), url=_url()))


@_operation("checkout_session")
def checkout_session(session_id: str):
    return jsonify(checkout_resources.retrieve_checkout_session(_caller(), session_id))


@_operation("expire_checkout_session")
def expire_checkout_session(session_id: str):
    return jsonify(checkout_resources.expire_checkout_session(_caller(), session_id))


@_operation("create_export")
def create_export():
    return jsonify(checkout_resources.create_export(_caller(), _body()))


@_operation("export")
def export(export_id: str):
    return jsonify(checkout_resources.retrieve_export(_caller(), export_id))


@_operation("export_file")
def export_file(export_id: str):
    row, path = checkout_resources.export_file(_caller(), export_id)
    content_type = endpoints.BY_NAME["export_file"].files[0 if row.file_format == "csv" else 1]
    response = send_file(path, mimetype=content_type, as_attachment=True, max_age=0,
                         download_name=f"{safe_filename(row.name, 'export')}.{row.file_format}")
    response.headers["Cache-Control"] = "private, no-store"  # the account's payments
    return response


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return jsonify(exc.body()), exc.status, exc.headers


@bp.errorhandler(KassaError)
def _kassa_error(exc: KassaError):
    error = resources.api_error_of(exc)
    return jsonify(error.body()), error.status


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    code = exc.code or 500
    if code < 400:
        return exc
    return jsonify(ApiError(code, exc.description or exc.name).body()), code


def api_error_response(exc: HTTPException):
    """An unknown path or method under /api/v1 (no view, so no blueprint handler): Stripe's envelope too."""
    code = exc.code or 404
    if code >= 500:  # I7: Stripe's api_error, in its envelope too
        return jsonify(ApiError(code, "Something went wrong on Kassa's side. Retry the request; it was not "
                                "completed.", type="api_error").body()), code
    if code == 404:
        message = f"Unrecognized request URL ({request.method}: {request.path.removeprefix('/api')})."
    else:
        message = exc.description or exc.name
    return jsonify(ApiError(code, message).body()), code


# -- I5: the OpenAPI document and the reference page, both from services/api/endpoints.py (no key needed) --

docs_bp = Blueprint("api_docs", __name__, url_prefix="/api")


@docs_bp.get("/openapi.json")
def openapi_document():
    return jsonify(endpoints.openapi())


def _type_text(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_type_text(choice) for choice in schema["anyOf"])
    kind = schema.get("type", "object")
    kind = " | ".join(kind) if isinstance(kind, list) else kind
    if kind == "array":
        return f"array of {_type_text(schema.get('items', {}))}"
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"] if v is not None) + (" | null" if None in schema["enum"] else "")
    return kind


def _fields(schema: dict[str, Any], prefix: str = "") -> list[dict[str, str]]:
    rows = []
    for name, sub in schema.get("properties", {}).items():
        rows.append({"name": f"{prefix}{name}", "type": _type_text(sub), "notes": sub.get("description", "")})
        if sub.get("type") == "object" and sub.get("properties"):
            rows += _fields(sub, f"{prefix}{name}.")
        if sub.get("type") == "array" and sub.get("items", {}).get("properties"):
            rows += _fields(sub["items"], f"{prefix}{name}[].")
    return rows


def _answer_text(content: dict[str, Any]) -> str:
    if "application/json" in content:
        return _type_text(content["application/json"]["schema"])
    return "a file: " + " or ".join(content)  # a download (an export's file)


@docs_bp.get("/docs")
def reference():
    """The API reference, rendered on the server from the same document (no script, no CDN)."""
    from flask import render_template

    doc = endpoints.openapi()
    operations = []
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            params = [{"name": p["name"], "where": p["in"], "required": p.get("required"), "type": _type_text(p["schema"]),
                       "notes": p.get("description") or p["schema"].get("description", "")} for p in op["parameters"]]
            body = op.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded")
            if body:
                required = set(body["schema"].get("required", []))
                params += [{"name": f["name"], "where": "body", "required": f["name"] in required, "type": f["type"],
                            "notes": f["notes"]} for f in _fields(body["schema"])]
            operations.append({"id": op["operationId"], "method": method.upper(), "path": path, "summary": op["summary"],
                               "description": op.get("description", ""), "params": params,
                               "answer": _answer_text(op["responses"]["200"]["content"]),
                               "errors": ", ".join(s for s in op["responses"] if s != "200")})
    objects = [(name, _fields(schema)) for name, schema in doc["components"]["schemas"].items()]
    return render_template("api/reference.html", doc=doc, operations=operations, objects=objects,
                           base=request.host_url.rstrip("/") + "/api")
