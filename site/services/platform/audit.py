"""Audit history: one row per action worth answering "who did that, and when?" for (A2)."""

from __future__ import annotations

from typing import Any

from kassa.actor import Actor
from kassa.extensions import db
from kassa.models import AuditEvent


def record_audit(
    actor: Actor,
    action: str,
    *,
    account_id: int | None = None,
    object_type: str = "",
    object_id: int | str = "",
    amount_before_minor: int | None = None,
    amount_after_minor: int | None = None,
    currency: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit row to the caller's transaction. `action` is dotted: "payment.refunded"."""
    if actor.api_key_id is not None:  # I1: an API call names the key that made it
        data = {**(data or {}), "api_key_id": actor.api_key_id}
    event = AuditEvent(
        account_id=account_id if account_id is not None else actor.account_id,
        actor_id=actor.user_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        amount_before_minor=amount_before_minor,
        amount_after_minor=amount_after_minor,
        currency=currency,
        data=data or {},
        ip=actor.ip,
    )
    db.session.add(event)
    return event
