"""The API (I1, I3), at /api/v1/…: Stripe's paths, authentication, form-encoded parameters, list and error
envelopes, so the official `stripe` client works pointed at Kassa. Thin: the key's lookup and the parameters'
decoding here, each resource in services/api.

Key-authenticated, so CSRF-exempt (no cookie is read: a browser can't make a call on anyone's behalf)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from kassa.errors import KassaError
from kassa.extensions import csrf, db
from kassa.forms import posted_pairs
from kassa.netutil import client_ip
from kassa.services.api import idempotency, keys, resources
from kassa.services.api.resources import ApiError, Caller
from kassa.services.platform import throttle

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

MAX_PARAMS = 1000  # Stripe-shaped parameters: a link's line items and their fields fit in far fewer
# I1: what each endpoint needs of a restricted key (resource, "read" | "write"). An endpoint missing here is
# refused to every restricted key (tests/web/test_i1_api_keys.py checks that each one is listed).
ENDPOINT_SCOPES = {
    "api.create_payment_link": ("payment_links", "write"),
    "api.update_payment_link": ("payment_links", "write"),
    "api.payment_link": ("payment_links", "read"),
    "api.payment_intents": ("payments", "read"),
    "api.payment_intent": ("payments", "read"),
    "api.charges": ("payments", "read"),
    "api.charge": ("payments", "read"),
    "api.create_refund": ("refunds", "write"),
    "api.refunds": ("refunds", "read"),
    "api.refund": ("refunds", "read"),
    "api.dispute": ("disputes", "read"),
}


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


def _rate_limit(key_id: int, mode: str) -> None:
    """I7: calls per key (KASSA_API_LIVE_RATE_LIMIT / KASSA_API_TEST_RATE_LIMIT); every answer says how many are
    left (RateLimit-* headers), and a call over the limit is 429 with Retry-After."""
    rule = current_app.config["KASSA_API_LIVE_RATE_LIMIT" if mode == "live" else "KASSA_API_TEST_RATE_LIMIT"]
    bucket = ("api-key", str(key_id))
    allowed = throttle.allow((rule, bucket))
    limit, remaining, reset = throttle.window(rule, bucket)
    g.api_rate_headers = {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(remaining),
                          "RateLimit-Reset": str(reset)}
    if not allowed:
        raise ApiError(429, "Too many requests hit the API too quickly with this key. Slow down and retry.",
                       code="rate_limit", type="rate_limit_error",
                       headers={"Retry-After": str(throttle.retry_after((rule, bucket)))})


@bp.before_request
def _authenticate():
    secret = _secret()
    key = keys.authenticate(secret) if secret else None
    if key is None:
        raise _unauthorized(secret)
    g.api_caller = caller = Caller(actor=keys.key_actor(key, client_ip()), mode=key.mode)
    resource, access = ENDPOINT_SCOPES.get(request.endpoint, ("", "write"))
    if not keys.allows(key, resource, access):
        raise ApiError(403, f"The provided key '{key.prefix}…' does not have the required permissions for this "
                       f"endpoint. Having the '{resource or 'unknown'}' {access} permission would allow this "
                       "request to continue.", code="insufficient_permissions")
    _rate_limit(key.id, key.mode)
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
        keys.record_call(caller.actor, request.method, request.path, response.status_code)
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


@bp.post("/payment_links")
def create_payment_link():
    return jsonify(resources.create_payment_link(_caller(), _body()))


@bp.get("/payment_links/<link_id>")
def payment_link(link_id: str):
    return jsonify(resources.retrieve_payment_link(_caller(), link_id))


@bp.post("/payment_links/<link_id>")
def update_payment_link(link_id: str):
    return jsonify(resources.update_payment_link(_caller(), link_id, _body()))


@bp.get("/charges")
def charges():
    return jsonify(resources.list_charges(_caller(), _query(), url=request.path.removeprefix("/api")))


@bp.get("/charges/<charge_id>")
def charge(charge_id: str):
    return jsonify(resources.retrieve_charge(_caller(), charge_id))


@bp.get("/refunds")
def refunds():
    return jsonify(resources.list_refunds(_caller(), _query(), url=request.path.removeprefix("/api")))


@bp.get("/refunds/<refund_id>")
def refund(refund_id: str):
    return jsonify(resources.retrieve_refund(_caller(), refund_id))


@bp.get("/payment_intents")
def payment_intents():
    return jsonify(resources.list_payment_intents(_caller(), _query(), url=request.path.removeprefix("/api")))


@bp.get("/payment_intents/<intent_id>")
def payment_intent(intent_id: str):
    return jsonify(resources.retrieve_payment_intent(_caller(), intent_id))


@bp.post("/refunds")
def create_refund():
    return jsonify(resources.create_refund(_caller(), _body(), request.headers.get("Idempotency-Key")))


@bp.get("/disputes/<dispute_id>")
def dispute(dispute_id: str):
    return jsonify(resources.retrieve_dispute(_caller(), dispute_id))


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
    if code == 404:
        message = f"Unrecognized request URL ({request.method}: {request.path.removeprefix('/api')})."
    else:
        message = exc.description or exc.name
    return jsonify(ApiError(code, message).body()), code
