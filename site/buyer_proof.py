"""H8: what lets a buyer's browser, and only it, see a finished checkout's personal data for a while.

A completed `/checkout/<token>` URL gets copied (merchants paste it from the address bar, browsers sync
history), so the token alone must not show the buyer's email, name or receipt. The browser that paid gets
a signed cookie naming the checkout and when it paid; the confirmation page shows personal data only with
that cookie, for `KASSA_CONFIRMATION_SECONDS`, and its receipt download link is signed and expires as well.
Both are signed with the app secret (itsdangerous) and dated by `kassa.clock.now()`.
"""

from __future__ import annotations

from flask import current_app, request
from itsdangerous import (
    BadSignature,
    SignatureExpired,
    TimestampSigner,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)

from kassa.clock import now

COOKIE = "kassa_paid"
_COOKIE_SALT = "kassa.paid-checkouts"
_RECEIPT_SALT = "kassa.receipt-download"
_REMEMBERED = 5  # checkouts one browser keeps proof of; a buyer rarely pays more within the hour


class _ClockSigner(TimestampSigner):
    """itsdangerous' timestamps from the app's one clock, so tests move them like everything else."""

    def get_timestamp(self) -> int:
        return int(now().timestamp())


def _lifetime() -> int:
    return int(current_app.config["KASSA_CONFIRMATION_SECONDS"])


def _paid() -> list[tuple[int, int]]:
    """(checkout id, paid at) from this browser's cookie, still within the time limit."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return []
    try:
        entries = URLSafeSerializer(current_app.secret_key, salt=_COOKIE_SALT).loads(raw)
    except BadSignature:
        return []
    oldest = now().timestamp() - _lifetime()
    try:
        return [(int(cid), int(at)) for cid, at in entries if int(at) >= oldest][-_REMEMBERED:]
    except (TypeError, ValueError):
        return []


def paid_here(checkout_id: int) -> bool:
    """Did this browser pay the checkout, within the time limit?"""
    return any(cid == checkout_id for cid, _at in _paid())


def remember_payment(response, checkout_id: int):
    """Mark this browser as the one that paid `checkout_id` (on the response to its payment)."""
    entries = [e for e in _paid() if e[0] != checkout_id] + [(checkout_id, int(now().timestamp()))]
    value = URLSafeSerializer(current_app.secret_key, salt=_COOKIE_SALT).dumps(entries[-_REMEMBERED:])
    response.set_cookie(COOKIE, value, max_age=_lifetime(), path="/checkout/", httponly=True, samesite="Lax",
                        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
    return response


def receipt_signature(checkout_id: int) -> str:
    """The `sig` of a checkout's receipt download link: works for `KASSA_CONFIRMATION_SECONDS`."""
    return URLSafeTimedSerializer(current_app.secret_key, salt=_RECEIPT_SALT, signer=_ClockSigner).dumps(checkout_id)


def receipt_signature_valid(checkout_id: int, signature: str | None) -> bool:
    if not signature:
        return False
    serializer = URLSafeTimedSerializer(current_app.secret_key, salt=_RECEIPT_SALT, signer=_ClockSigner)
    try:
        return serializer.loads(signature, max_age=_lifetime()) == checkout_id
    except (SignatureExpired, BadSignature):
        return False
