"""I3: Stripe's metadata where Kassa keeps it (payment links, checkout sessions): up to 50 keys of at most 40
characters, string values of at most 500; on an update an empty value removes its key, as Stripe's."""

from __future__ import annotations

from typing import Any

from kassa.database import lock_one, write_transaction
from kassa.extensions import db
from kassa.models import PaymentLink
from kassa.services.api.errors import ApiError

MAX_METADATA_KEYS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 50, 40, 500


def metadata(value: Any, current: dict[str, str] | None = None) -> dict[str, str] | None:
    """`metadata[key]=value` merged into `current` (an empty value removes its key, as Stripe's): at most 50
    keys of at most 40 characters, values of at most 500. None when nothing is left."""
    if not isinstance(value, dict):
        raise ApiError(400, "Invalid object: metadata", param="metadata")
    merged = dict(current or {})
    for key, item in value.items():
        param = f"metadata[{key}]"
        if not key or len(key) > MAX_METADATA_KEY:
            raise ApiError(400, f"Metadata keys are 1 to {MAX_METADATA_KEY} characters long.", param=param)
        if not isinstance(item, str):
            raise ApiError(400, f"Invalid string: {param}", param=param)
        if len(item) > MAX_METADATA_VALUE:
            raise ApiError(400, f"Metadata values can be at most {MAX_METADATA_VALUE} characters long.", param=param)
        if item == "":
            merged.pop(key, None)
        else:
            merged[key] = item
    if len(merged) > MAX_METADATA_KEYS:
        raise ApiError(400, f"An object can have at most {MAX_METADATA_KEYS} metadata keys.", param="metadata")
    return merged or None


def set_link_metadata(link_id: int, value: Any) -> None:
    """Merge `metadata[…]` into the link's, under its lock (the editor's version is not bumped: buyers never see
    it). The caller checked `value` with `metadata()` before it changed anything."""
    with write_transaction(db.session) as session:
        link = lock_one(session, PaymentLink, link_id)
        link.metadata_json = metadata(value, link.metadata_json)
