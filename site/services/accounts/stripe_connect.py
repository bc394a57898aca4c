"""Settings → Payments → Stripe (K5): connect a merchant account's own Stripe account, disconnect it.

Each Kassa account connects its own Stripe account. The keys are checked with one API call (GET /v1/account)
through a `StripeClient` built for that account and call; the SDK's global `stripe.api_key` is never set, so
one merchant's key can't serve another's request. The secret key is stored Fernet-encrypted
(kassa.secrets_box) and only its last 4 characters are ever shown again.

The processor that charges through a connection is built by kassa.processors.registry (K6).

K7: once connected, Kassa creates the webhook endpoint in the Stripe account through the API and keeps its
signing secret encrypted. A restricted key without the "Webhook Endpoints" write permission can't: the page
then shows the merchant the URL and events to add in the Dashboard and a field for the signing secret.
Disconnecting deletes the endpoint Kassa created, best-effort.
"""

from __future__ import annotations

import logging
import re

import stripe
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kassa import clock, secrets_box
from kassa.actor import Actor
from kassa.database import write_transaction
from kassa.errors import NotFound, ValidationFailed
from kassa.extensions import db
from kassa.models import Mode, StripeConnection
from kassa.processors.base import ProcessorError
from kassa.processors.registry import stripe_processor
from kassa.processors.stripe import WEBHOOK_EVENTS, stripe_client
from kassa.services.accounts.accounts import require_settings
from kassa.services.platform.audit import record_audit
from kassa.urls import absolute_url

log = logging.getLogger(__name__)

# Stripe's key shapes: secret (sk_) or restricted (rk_) keys and publishable (pk_) keys, each live or test.
SECRET_KEY = re.compile(r"(sk|rk)_(live|test)_[A-Za-z0-9]{8,240}")
PUBLISHABLE_KEY = re.compile(r"pk_(live|test)_[A-Za-z0-9]{8,240}")
WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9]{8,240}")


def active_connections(account_id: int) -> list[StripeConnection]:
    """The account's connected Stripe keys, live first (at most one per mode)."""
    rows = db.session.scalars(select(StripeConnection).where(
        StripeConnection.account_id == account_id, StripeConnection.disconnected_at.is_(None)))
    return sorted(rows, key=lambda row: row.mode != Mode.LIVE.value)


def has_live_connection(account_id: int) -> bool:
    return any(row.mode == Mode.LIVE.value for row in active_connections(account_id))


def _check_shapes(secret_key: str, publishable_key: str) -> str:
    """The keys' mode (live/test); ValidationFailed naming each wrong field."""
    errors: dict[str, str] = {}
    secret = SECRET_KEY.fullmatch(secret_key)
    publishable = PUBLISHABLE_KEY.fullmatch(publishable_key)
    if not secret:
        errors["secret_key"] = _("Paste a Stripe secret key (sk_live_… or sk_test_…) or restricted key "
                                 "(rk_live_… or rk_test_…).")
    if not publishable:
        errors["publishable_key"] = _("Paste a Stripe publishable key (pk_live_… or pk_test_…).")
    if secret and publishable and secret[2] != publishable[1]:
        errors["publishable_key"] = _("This is a %(mode)s key but the secret key is a %(other)s key: paste "
                                      "both keys from the same mode.",
                                      mode=publishable[1], other=secret[2])
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors=errors)
    return secret[2]


def _account_name(account: dict) -> str:
    profile = account.get("business_profile") or {}
    dashboard = (account.get("settings") or {}).get("dashboard") or {}
    return (profile.get("name") or dashboard.get("display_name") or account.get("email") or account["id"])[:200]


def _fetch_account(secret_key: str) -> dict:
    """The one API call that checks the key (Stripe's account object as a dict); Stripe's refusals become
    messages at the secret key field."""
    try:
        return stripe_client(secret_key).v1.accounts.retrieve_current().to_dict()
    except stripe.AuthenticationError:
        message = _("Stripe didn't accept this key: it may be mistyped, rolled or deleted. Copy it again from "
                    "Developers → API keys in your Stripe Dashboard.")
    except stripe.PermissionError:
        message = _("This restricted key can't read your Stripe account. In the Stripe Dashboard give it "
                    "Read access to “Account”, or paste the secret key.")
    except stripe.APIConnectionError:
        message = _("Kassa couldn't reach Stripe to check this key. Nothing was saved; try again in a minute.")
    except stripe.StripeError as exc:
        message = _("Stripe refused the keys: %(reason)s", reason=exc.user_message or exc.__class__.__name__)
    raise ValidationFailed(message, field="secret_key")


def connect(actor: Actor, secret_key: str, publishable_key: str) -> StripeConnection:
    """Check the keys (shape, same mode, one call to Stripe) and store them; nothing is stored on an error.
    Then set up the webhook endpoint (K7); when Stripe refuses that, the connection stands and the Payments page
    says what to add by hand."""
    connection = _store_connection(actor, secret_key, publishable_key)
    create_webhook(connection)
    return connection


def webhook_url(account_id: int) -> str:
    """Where Stripe sends this account's events (K7)."""
    return absolute_url("webhooks.stripe_webhook", account_id=account_id)


def webhook_events() -> tuple[str, ...]:
    return WEBHOOK_EVENTS


def create_webhook(connection: StripeConnection) -> bool:
    """Create the endpoint in the Stripe account and keep its id and secret; False when Stripe refused (a
    restricted key without permission, a URL Stripe can't reach such as localhost)."""
    try:
        endpoint_id, secret = stripe_processor(connection).create_webhook_endpoint(webhook_url(connection.account_id))
    except ProcessorError as exc:
        log.info("webhook endpoint for connection %s not created: %s", connection.id, exc)
        db.session.rollback()
        return False
    with write_transaction(db.session) as session:
        row = session.get(StripeConnection, connection.id)
        row.webhook_endpoint_id = endpoint_id
        row.webhook_secret_encrypted = secrets_box.encrypt(secret)
    return True


def save_webhook_secret(actor: Actor, connection_id: int, secret: str) -> StripeConnection:
    """The signing secret of an endpoint the merchant added in the Stripe Dashboard (K7 fallback)."""
    require_settings(actor)
    secret = (secret or "").strip()
    if not WEBHOOK_SECRET.fullmatch(secret):
        raise ValidationFailed(_("Paste the endpoint's signing secret: it starts with whsec_ (Stripe Dashboard → "
                                 "Developers → Webhooks → your endpoint → Signing secret → Reveal)."),
                               field="signing_secret")
    with write_transaction(db.session) as session:
        connection = session.get(StripeConnection, connection_id)
        if connection is None or connection.account_id != actor.account_id or connection.disconnected_at:
            raise NotFound(_("This Stripe connection doesn't exist."))
        connection.webhook_secret_encrypted = secrets_box.encrypt(secret)
        record_audit(actor, "stripe.webhook_secret_saved", object_type="stripe_connection",
                     object_id=connection.id, data={"mode": connection.mode})
        return connection


def _store_connection(actor: Actor, secret_key: str, publishable_key: str) -> StripeConnection:
    require_settings(actor)
    secret_key, publishable_key = (secret_key or "").strip(), (publishable_key or "").strip()
    mode = _check_shapes(secret_key, publishable_key)
    if _connected_in(actor.account_id, mode):
        raise _already_connected(mode)
    account = _fetch_account(secret_key)  # outside the transaction: no lock is held while Stripe answers
    try:
        with write_transaction(db.session) as session:
            if _connected_in(actor.account_id, mode):  # connected meanwhile (another tab, a double click)
                raise _already_connected(mode)
            connection = StripeConnection(
                account_id=actor.account_id, mode=mode, secret_key_encrypted=secrets_box.encrypt(secret_key),
                secret_key_last4=secret_key[-4:], publishable_key=publishable_key, stripe_account_id=account["id"],
                stripe_account_name=_account_name(account), country=(account.get("country") or "").upper()[:2],
                default_currency=(account.get("default_currency") or "").upper()[:3],
                connected_at=clock.now(), connected_by_id=actor.user_id,
            )
            session.add(connection)
            session.flush()
            record_audit(actor, "stripe.connected", object_type="stripe_connection", object_id=connection.id,
                         data={"mode": mode, "stripe_account_id": account["id"], "key_last4": secret_key[-4:]})
            return connection
    except IntegrityError:
        # Two connects at the same moment both passed the check: the partial unique index (one active
        # connection per account and mode) lets one in; the other gets the same answer as a later one.
        raise _already_connected(mode) from None


def _connected_in(account_id: int, mode: str) -> bool:
    return any(row.mode == mode for row in active_connections(account_id))


def _already_connected(mode: str) -> ValidationFailed:
    return ValidationFailed(_("Stripe is already connected in %(mode)s mode. Disconnect it first to use other "
                              "keys.", mode=mode), field="secret_key")


def disconnect(actor: Actor, connection_id: int) -> StripeConnection:
    """Stop using the keys; the row stays (disconnected_at) so who connected what, and when, stays readable."""
    require_settings(actor)
    with write_transaction(db.session) as session:
        connection = session.get(StripeConnection, connection_id)
        if connection is None or connection.account_id != actor.account_id or connection.disconnected_at:
            raise NotFound(_("This Stripe connection doesn't exist."))
        connection.disconnected_at = clock.now()
        connection.disconnected_by_id = actor.user_id
        record_audit(actor, "stripe.disconnected", object_type="stripe_connection", object_id=connection.id,
                     data={"mode": connection.mode, "stripe_account_id": connection.stripe_account_id})
    if connection.webhook_endpoint_id:
        # Best-effort: Stripe stops sending; if it can't be reached, deliveries are refused (no active secret).
        try:
            stripe_processor(connection).delete_webhook_endpoint(connection.webhook_endpoint_id)
        except ProcessorError as exc:
            log.info("webhook endpoint %s not deleted: %s", connection.webhook_endpoint_id, exc)
    return connection


def decrypt_secret(connection: StripeConnection) -> str:
    """The decrypted secret key, for the one request that uses it (K6)."""
    return secrets_box.decrypt(connection.secret_key_encrypted)


def rotate_encryption() -> int:
    """Re-encrypt every stored secret with the newest KASSA_ENCRYPTION_KEYS key (`flask kassa rotate-keys`);
    disconnected rows too, so removing the old key leaves no secret unreadable. Returns the rows rewritten.
    Only the encrypted column is written, so a disconnect at the same time is not undone."""
    with write_transaction(db.session) as session:
        rows = session.scalars(select(StripeConnection)).all()
        for row in rows:
            row.secret_key_encrypted = secrets_box.rotate(row.secret_key_encrypted)
            if row.webhook_secret_encrypted:
                row.webhook_secret_encrypted = secrets_box.rotate(row.webhook_secret_encrypted)
        return len(rows)
