"""API keys (I1): created by a Super admin, secret shown once and stored as a SHA-256, test or live, revoked at
once. Every call made with a key is an audit row naming it."""

from __future__ import annotations

import hashlib
import secrets
import string
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import insert, or_, select, text, update

from kassa.actor import Actor
from kassa.clock import now
from kassa.database import lock_one, write_transaction
from kassa.errors import Forbidden, NotFound, ValidationFailed
from kassa.extensions import db
from kassa.models import ApiKey, AuditEvent, Mode, Permission
from kassa.services.platform.audit import record_audit

# Letters and digits only, as Stripe's keys: a double-click selects the whole key. 40 of 62 symbols ≈ 238 bits
# from the OS's CSPRNG, so a plain SHA-256 is enough to store it (nothing to brute-force, unlike a password).
SECRET_ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 40
PREFIX_RANDOM = 4  # random characters kept in the clear after "sk_test_", to tell keys apart
MAX_NAME = 100
# What a key may do in the services; a restricted key's scopes narrow it per resource, checked before the call.
KEY_PERMISSIONS = frozenset({Permission.MANAGE_PAYMENTS.value, Permission.MANAGE_LINKS.value})
# The API's resources a restricted key is given access to (none, read or write), as Stripe's restricted keys.
SCOPE_RESOURCES = ("payment_links", "payments", "refunds", "disputes", "subscriptions", "payouts", "products",
                   "checkout_sessions", "exports")
ACCESS_LEVELS = ("none", "read", "write")


def scope_labels() -> dict[str, str]:
    return {"payment_links": _("Payment links"), "payments": _("Payments and charges"), "refunds": _("Refunds"),
            "disputes": _("Disputes"), "subscriptions": _("Subscriptions"), "payouts": _("Payouts"),
            "products": _("Products"), "checkout_sessions": _("Checkout sessions"), "exports": _("Exports")}


def allows(key: ApiKey, resource: str, access: str) -> bool:
    """I1: whether the key may `access` ("read" or "write") the resource; a full-access key may do all."""
    if key.scopes is None:
        return True
    granted = key.scopes.get(resource, "none")
    return granted == "write" or (granted == "read" and access == "read")


def _clean_scopes(scopes: dict[str, str] | None, errors: dict[str, str]) -> dict[str, str] | None:
    if scopes is None:
        return None
    kept = {}
    for resource in SCOPE_RESOURCES:
        level = scopes.get(resource) or "none"
        if level not in ACCESS_LEVELS:
            errors[f"scope_{resource}"] = _("Choose none, read or write.")
        elif level != "none":
            kept[resource] = level
    if not kept and not errors:
        errors["access"] = _("Give the restricted key access to at least one resource.")
    return kept


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _require_admin(actor: Actor) -> None:
    if actor.user is None or not actor.user.can(Permission.MANAGE_SETTINGS):
        raise Forbidden(_("You need the “%(permission)s” permission.", permission=Permission.MANAGE_SETTINGS.label))


def list_keys(account_id: int) -> list[ApiKey]:
    return list(db.session.scalars(select(ApiKey).where(ApiKey.account_id == account_id)
                                   .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())))


def create_key(actor: Actor, name: str, mode: str, scopes: dict[str, str] | None = None) -> tuple[ApiKey, str]:
    """A new key and its secret: the only time the secret exists outside the caller's hands. `scopes` makes
    a restricted key ({resource: "none" | "read" | "write"}); None, a full-access one."""
    _require_admin(actor)
    name = (name or "").replace("\x00", "").strip()
    errors = {}
    if not name:
        errors["name"] = _("Name the key, like “Shop” or “Accounting”.")
    elif len(name) > MAX_NAME:
        errors["name"] = _("Use at most %(n)d characters.", n=MAX_NAME)
    if mode not in (Mode.TEST.value, Mode.LIVE.value):
        errors["mode"] = _("Choose test or live.")
    scopes = _clean_scopes(scopes, errors)
    if errors:
        raise ValidationFailed(_("Check the highlighted fields."), errors=errors)
    kind = "sk" if scopes is None else "rk"
    secret = f"{kind}_{mode}_" + "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
    with write_transaction(db.session) as session:
        key = ApiKey(account_id=actor.account_id, name=name, mode=mode, scopes=scopes,
                     prefix=secret[:len(f"{kind}_{mode}_") + PREFIX_RANDOM], secret_hash=secret_hash(secret),
                     created_by_id=actor.user_id)
        session.add(key)
        session.flush()
        record_audit(actor, "api_key.created", object_type="api_key", object_id=key.id,
                     data={"name": name, "mode": mode, "prefix": key.prefix, "scopes": scopes})
        return key, secret


def owned_key(account_id: int, key_id: int) -> ApiKey:
    key = db.session.get(ApiKey, key_id)
    if key is None or key.account_id != account_id:
        raise NotFound(_("API key not found."))
    return key


def revoke_key(actor: Actor, key_id: int) -> ApiKey:
    """Revoked at once: the next call with the key is refused (the key is looked up on every call)."""
    _require_admin(actor)
    with write_transaction(db.session) as session:
        key = lock_one(session, ApiKey, key_id)
        if key is None or key.account_id != actor.account_id:
            raise NotFound(_("API key not found."))
        if key.revoked_at is None:
            key.revoked_at = now()
            record_audit(actor, "api_key.revoked", object_type="api_key", object_id=key.id,
                         data={"name": key.name, "mode": key.mode, "prefix": key.prefix})
        return key


def authenticate(secret: str) -> ApiKey | None:
    """The active key with this secret, or None (unknown, malformed or revoked)."""
    if not secret.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")) or len(secret) > 200:
        return None
    return db.session.scalar(select(ApiKey).where(ApiKey.secret_hash == secret_hash(secret),
                                                  ApiKey.revoked_at.is_(None)))


def key_actor(key: ApiKey, ip: str | None) -> Actor:
    """Who acts on an API call: the account, through this key (no user), with the key's permissions."""
    return Actor(user=None, account_id=key.account_id, ip=ip, api_key_id=key.id, api_permissions=KEY_PERMISSIONS)


# "Last used" moves at most once a minute: a busy key's calls don't all write (and on PostgreSQL queue for) its row.
LAST_USED_STEP = timedelta(minutes=1)


def record_call(actor: Actor, method: str, path: str, status: int, last_used_at: datetime | None = None) -> None:
    """I1: every API call in the audit log with its key; the key's "last used" moves with it (to the minute).
    Plain statements in one short write transaction, no objects loaded, committed without waiting for the disk on
    PostgreSQL: every call pays for it. `last_used_at`, as the key read when the call began: when it is under a
    minute old, the key's row isn't written at all."""
    stamp = now()
    with write_transaction(db.session) as session:
        if session.get_bind().dialect.name == "postgresql":
            # The commit doesn't wait for the WAL to reach the disk (on a busy disk most of the call's time): a
            # crash of PostgreSQL itself may lose the last fraction of a second of these rows, never make them
            # inconsistent. What the call did was committed by its service, synchronously, with its own audit row.
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        if last_used_at is None or stamp - last_used_at >= LAST_USED_STEP:
            session.execute(update(ApiKey).where(
                ApiKey.id == actor.api_key_id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= stamp - LAST_USED_STEP),
            ).values(last_used_at=stamp).execution_options(synchronize_session=False))
        session.execute(insert(AuditEvent).values(
            account_id=actor.account_id, actor_id=None, action="api.request", object_type="api_key",
            object_id=str(actor.api_key_id), ip=actor.ip, created_at=stamp,
            data={"method": method, "path": path[:200], "status": status, "api_key_id": actor.api_key_id}))
