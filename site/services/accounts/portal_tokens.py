"""Q11: the buyer portal's signed link — one per (account, buyer email), long-lived, revocable.

The token is the account id and the buyer's email signed (itsdangerous) with the app secret under a salt that
holds the account's `portal_key`: rotating that key (`rotate_portal_key`) revokes every portal link the
account ever sent. A changed, truncated or another account's token does not verify: the portal answers 404.
"""

from __future__ import annotations

import secrets

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from kassa.actor import Actor
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Account
from kassa.services.platform.audit import record_audit
from kassa.urls import absolute_url


def _serializer(account: Account) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=f"kassa.buyer-portal:{account.portal_key}")


def portal_token(account: Account, email: str) -> str:
    """The buyer's portal token (call inside a write the first time: it gives the account its key)."""
    if not account.portal_key:
        account.portal_key = secrets.token_urlsafe(12)
    return _serializer(account).dumps([account.id, email.strip().lower()])


def portal_url(account: Account, email: str, *, create: bool = False) -> str | None:
    """The portal's absolute URL for this buyer; None while the account has no key yet (unless `create`, which
    gives it one: call inside a write)."""
    if not account.portal_key and not create:
        return None
    return absolute_url("billing_portal.portal", token=portal_token(account, email))


def read_portal_token(token: str) -> tuple[Account, str] | None:
    """(account, buyer email) of a valid token, else None."""
    try:
        _ok, payload = URLSafeSerializer(current_app.config["SECRET_KEY"]).loads_unsafe(token or "")
        account_id, email = payload
    except (BadSignature, TypeError, ValueError):
        return None
    if type(account_id) is not int or not 0 < account_id < 2**31:
        return None
    account = db.session.get(Account, account_id)
    if account is None or not account.portal_key or not isinstance(email, str):
        return None
    try:
        verified = _serializer(account).loads(token)
    except BadSignature:
        return None
    if verified != [account.id, email]:
        return None
    return account, email


def rotate_portal_key(actor: Actor) -> None:
    """Revoke every portal link the account sent (new ones go out with the next receipts)."""
    with write_transaction(db.session) as session:
        account = session.get(Account, actor.account_id)
        account.portal_key = secrets.token_urlsafe(12)
        record_audit(actor, "account.portal_links_revoked", object_type="account", object_id=account.id)
