"""I4: `Idempotency-Key` on every POST, as Stripe's. The first response is kept 24 hours and replayed to a retry
with the same key; the same key with other parameters is 400; a retry while the first request still runs is
409 with `Retry-After`. Keys are per account and mode. Server errors are not kept: the retry runs again."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import ApiIdempotency
from kassa.services.api.resources import ApiError, Caller

KEEP = timedelta(hours=24)
MAX_KEY = 255
RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True)
class Replay:
    status: int
    body: str


def fingerprint(method: str, path: str, params: list[tuple[str, str]]) -> str:
    """The request as far as idempotency cares: the same method, path and parameters (in any order)."""
    return hashlib.sha256(json.dumps([method, path, sorted(params)]).encode()).hexdigest()


def _in_flight() -> ApiError:
    return ApiError(409, "There is currently another in-progress request using this Idempotency-Key. Retry in a "
                    "moment.", code="idempotency_key_in_use", type="idempotency_error",
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def begin(caller: Caller, key: str, request_hash: str) -> Replay | int:
    """The kept response to replay, or the id of the new claim on the key (answer it with `finish`)."""
    if not key or len(key) > MAX_KEY:
        raise ApiError(400, f"Idempotency-Key must be 1 to {MAX_KEY} characters.", type="idempotency_error")
    try:
        with write_transaction(db.session) as session:
            row = session.scalar(select(ApiIdempotency).where(
                ApiIdempotency.account_id == caller.account_id, ApiIdempotency.mode == caller.mode,
                ApiIdempotency.idempotency_key == key))
            if row is not None and row.created_at <= now() - KEEP:
                session.delete(row)  # expired: the key starts afresh
                session.flush()
                row = None
            if row is None:
                row = ApiIdempotency(account_id=caller.account_id, mode=caller.mode, idempotency_key=key,
                                     request_hash=request_hash, api_key_id=caller.actor.api_key_id)
                session.add(row)
                session.flush()
                return row.id
            if row.request_hash != request_hash:
                raise ApiError(400, "Keys for idempotent requests can only be used with the same parameters they "
                               "were first used with.", code="idempotency_key_reused", type="idempotency_error")
            if row.status_code is None:
                raise _in_flight()
            return Replay(row.status_code, row.response_body or "")
    except IntegrityError:
        # PostgreSQL: another request inserted the same key a moment ago and has just committed it.
        raise _in_flight() from None


def finish(claim_id: int, status: int, body: str) -> None:
    """Keep the answer for replay; a server error lets go of the key so a retry runs again."""
    with write_transaction(db.session) as session:
        row = session.get(ApiIdempotency, claim_id)
        if row is None:
            return
        if status >= 500:
            session.delete(row)
        else:
            row.status_code, row.response_body = status, body


def abandon(claim_id: int) -> None:
    """The request ended with no response (an exception escaped): let go of the key."""
    with write_transaction(db.session) as session:
        session.execute(delete(ApiIdempotency).where(ApiIdempotency.id == claim_id))


def prune_expired() -> int:
    """Tick task: drop the responses kept longer than 24 hours."""
    with write_transaction(db.session) as session:
        return session.execute(delete(ApiIdempotency).where(ApiIdempotency.created_at <= now() - KEEP)).rowcount
