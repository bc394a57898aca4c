"""I2: checkout sessions (Stripe-shaped, for shops that send their buyers to Kassa), exports (Kassa's own) and
Stripe's metadata on payment links and checkout sessions. A key sees its own account's objects in its own mode
only: anything else is `resource_missing`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select

from kassa.clock import now
from kassa.errors import Conflict, Gone, NotFound, ValidationFailed
from kassa.extensions import db
from kassa.forms import parse_int
from kassa.models import CheckoutSession, CheckoutStatus, Export, Payment
from kassa.services.accounts.emails import normalize_email
from kassa.services.api import stripe_objects
from kassa.services.api.errors import ApiError
from kassa.services.api.metadata import metadata
from kassa.services.api.resources import Caller, cursor_param, limit_param, list_page, missing, scalar_param
from kassa.services.backoffice.payment_filters import FilterError, dump_filter, parse_filter
from kassa.services.backoffice.payment_index import DEFAULT_COLUMNS
from kassa.services.checkout import api_sessions
from kassa.services.exports import exports as export_service
from kassa.services.links.links import owned_link
from kassa.urls import web_origin

# -- checkout sessions -------------------------------------------------------------------------------------


def _visible_session(caller: Caller, number: int | None) -> CheckoutSession | None:
    row = db.session.get(CheckoutSession, number) if number else None
    if row is None or row.account_id != caller.account_id or row.mode != caller.mode or row.link_id is None:
        return None
    return row


def _session_object(row: CheckoutSession) -> dict[str, Any]:
    payment = db.session.get(Payment, row.payment_id) if row.payment_id else None
    return stripe_objects.checkout_session(row, payment)


def _payment_link(caller: Caller, params: dict[str, Any]):
    """The caller's payment link named by `payment_link` (`plink_…`); another account's or an unknown one is
    `resource_missing`, as in Stripe."""
    link_text = scalar_param(params, "payment_link")
    number = stripe_objects.parse_object_id("payment_link", link_text)
    try:
        link = owned_link(db.session, caller.account_id, number) if number else None
    except NotFound:
        link = None
    if link is None:
        raise missing("payment_link", link_text, "payment_link")
    return link


def create_checkout_session(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/checkout/sessions: a checkout session of `payment_link`, in the key's mode, its form starting
    with `customer_email`; the buyer opens its `url`."""
    link = _payment_link(caller, params)
    email = None
    if params.get("customer_email"):
        try:
            email = normalize_email(scalar_param(params, "customer_email"), field="customer_email")
        except ValidationFailed as exc:
            raise ApiError(400, exc.message, param="customer_email", code="email_invalid") from None
    success_url = scalar_param(params, "success_url") or None
    # H11: an http(s) address that parses cleanly (the checkout's CSP allows its origin)
    if success_url is not None and web_origin(success_url.replace("{CHECKOUT_SESSION_ID}", "cs_0")) is None:
        raise ApiError(400, "Invalid URL: success_url must be a full http(s) address without spaces, quotes, "
                       "commas or semicolons.", param="success_url", code="url_invalid")
    expires_at = None
    if "expires_at" in params:
        stamp = parse_int(scalar_param(params, "expires_at"), minimum=0, maximum=2**40)
        if stamp is None:
            raise ApiError(400, "Invalid integer: expires_at", param="expires_at")
        expires_at = datetime.fromtimestamp(stamp, UTC)
    kept = metadata(params["metadata"]) if "metadata" in params else None
    try:
        row = api_sessions.open_for_link(
            link, mode=caller.mode, api_key_id=caller.actor.api_key_id, email=email, success_url=success_url,
            expires_at=expires_at, metadata=kept,
            success_url_of=lambda checkout: success_url.replace(
                "{CHECKOUT_SESSION_ID}", stripe_objects.object_id("checkout_session", checkout.id)))
    except ValidationFailed as exc:
        raise ApiError(400, exc.message, param=exc.field) from None
    return _session_object(row)


def retrieve_checkout_session(caller: Caller, session_id: str) -> dict[str, Any]:
    row = _visible_session(caller, stripe_objects.parse_object_id("checkout_session", session_id))
    if row is None:
        raise missing("checkout_session", session_id, "id")
    return _session_object(row)


def list_checkout_sessions(caller: Caller, params: dict[str, Any], url: str) -> dict[str, Any]:
    """GET /v1/checkout/sessions: the key's mode's sessions of payment links (the shop's and its buyers' visits),
    newest first; `payment_link` for one link's, `status` for open, complete or expired ones."""
    limit = limit_param(params)
    query = select(CheckoutSession).where(CheckoutSession.account_id == caller.account_id,
                                          CheckoutSession.mode == caller.mode, CheckoutSession.link_id.is_not(None))
    if "payment_link" in params:
        link = _payment_link(caller, params)
        query = query.where(CheckoutSession.link_id == link.id)
    status = scalar_param(params, "status")
    moment = now()
    if status == "complete":
        query = query.where(CheckoutSession.status == CheckoutStatus.COMPLETED.value)
    elif status == "open":
        query = query.where(CheckoutSession.status == CheckoutStatus.OPEN.value, CheckoutSession.expires_at > moment)
    elif status == "expired":
        query = query.where((CheckoutSession.status == CheckoutStatus.EXPIRED.value)
                            | ((CheckoutSession.status == CheckoutStatus.OPEN.value)
                               & (CheckoutSession.expires_at <= moment)))
    cursor, before = cursor_param(params, lambda text: _visible_session(
        caller, stripe_objects.parse_object_id("checkout_session", text)))
    rows, more = list_page(query, CheckoutSession, cursor, limit, before)
    return stripe_objects.list_envelope(url, [_session_object(row) for row in rows], more)


def expire_checkout_session(caller: Caller, session_id: str) -> dict[str, Any]:
    row = _visible_session(caller, stripe_objects.parse_object_id("checkout_session", session_id))
    if row is None:
        raise missing("checkout_session", session_id, "id")
    try:
        row = api_sessions.expire(caller.account_id, caller.mode, row.id)
    except Conflict as exc:
        raise ApiError(400, exc.message, param="id", code="checkout_session_not_open") from None
    return _session_object(row)


# -- exports (Kassa's own) ----------------------------------------------------------------------------------


def _export_mode(row: Export) -> str | None:
    modes = row.params.get("modes") or []
    return modes[0] if len(modes) == 1 else None


def _visible_export(caller: Caller, export_id: str) -> Export:
    number = stripe_objects.parse_object_id("export", export_id)
    row = db.session.get(Export, number) if number else None
    # I1: the API's exports (a member's stay on the exports page), of this account and this key's mode
    if row is None or row.account_id != caller.account_id or row.api_key_id is None \
            or row.kind != "payments" or _export_mode(row) != caller.mode:
        raise missing("export", export_id, "id")
    return row


def create_export(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    """POST /api/kassa/exports: the payments the filter selects, of the key's account and mode only, as CSV or
    XLSX, built by the worker as the exports page's (X1); poll the export, then download its file."""
    text = scalar_param(params, "filter")
    try:
        groups = parse_filter(text)
    except FilterError as exc:
        raise ApiError(400, exc.message, param="filter") from None
    file_format = scalar_param(params, "format") or "csv"
    state = urlencode({"adv": dump_filter(groups)}) if groups else ""
    try:
        row = export_service.request_export(
            caller.actor, kind="payments", name="API export", file_format=file_format, language="en",
            params={"tab": "payments", "state": state, "modes": [caller.mode], "filter": text or None,
                    "columns": [*DEFAULT_COLUMNS, "email"]})
    except ValidationFailed as exc:
        field, message = next(iter(exc.errors.items()), (exc.field, exc.message))
        raise ApiError(400, message, param={"file_format": "format"}.get(field or "", field)) from None
    return stripe_objects.export(row, caller.mode)


def retrieve_export(caller: Caller, export_id: str) -> dict[str, Any]:
    return stripe_objects.export(_visible_export(caller, export_id), caller.mode)


def export_file(caller: Caller, export_id: str) -> tuple[Export, Path]:
    row = _visible_export(caller, export_id)
    try:
        return export_service.downloadable(caller.account_id, row.id)
    except Gone as exc:
        raise ApiError(400, exc.message, param="id", code="export_expired") from None
    except NotFound as exc:
        raise ApiError(400, exc.message, param="id", code="export_not_ready") from None
