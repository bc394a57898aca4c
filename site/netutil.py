"""Client addresses, read from proxy headers only when KASSA_TRUSTED_PROXIES says there are proxies."""

from __future__ import annotations

from flask import current_app, request


def client_ip() -> str:
    """The buyer's or user's IP. X-Forwarded-For is trusted for exactly as many hops as configured.

    Each trusted proxy appends the address it saw, so the client is the entry that many places from the
    right; anything further left was written by the client itself and could be forged.
    """
    trusted = current_app.config.get("KASSA_TRUSTED_PROXIES", 0)
    if trusted > 0:
        forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
        if len(forwarded) >= trusted:
            return forwarded[-trusted]
    return request.remote_addr or "0.0.0.0"  # noqa: S104 - a placeholder address, not a bind


def through_trusted_proxy() -> bool:
    """Whether this request came through the configured proxies (each added its X-Forwarded-For entry), so
    headers the nearest proxy sets (X-Request-Id, G4) are its, not the client's. With KASSA_TRUSTED_PROXIES=0
    nothing a request says about itself is believed."""
    trusted = current_app.config.get("KASSA_TRUSTED_PROXIES", 0)
    return trusted > 0 and forwarded_through(trusted, request.headers.get("X-Forwarded-For", ""))


def forwarded_through(trusted: int, forwarded_for: str) -> bool:
    """through_trusted_proxy() from the setting and the header (the checkout's first visit, Q12, has no Flask
    request to read them from)."""
    if trusted <= 0:
        return False
    forwarded = [part for part in forwarded_for.split(",") if part.strip()]
    return len(forwarded) >= trusted
