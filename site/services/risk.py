"""The card-testing guard: automated scripts try stolen card numbers on public checkouts.

Three limits, each configurable (KASSA_RISK_*): declines per IP per hour, declines per link in ten
minutes (the link's card payments pause and the merchant is emailed), and uses of one card per day.
A refusal never reaches the processor.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from kassa.clock import now
from kassa.errors import TooManyRequests
from kassa.extensions import db
from kassa.models import CheckoutSession, PaymentAttempt, PaymentLink, RiskEvent

# Processor errors that look like probing: wrong numbers count like declines.
COUNTED_CODES = {"not_a_test_card", "invalid_number", "incorrect_cvc", "invalid_cvc"}

DEFAULTS = {
    "KASSA_RISK_IP_DECLINES": 5, "KASSA_RISK_IP_WINDOW": 3600,
    "KASSA_RISK_LINK_DECLINES": 10, "KASSA_RISK_LINK_WINDOW": 600, "KASSA_RISK_LINK_PAUSE": 1800,
    "KASSA_RISK_CARD_USES": 3, "KASSA_RISK_CARD_WINDOW": 86400,
}


def _limit(name: str) -> int:
    return int(current_app.config.get(name, DEFAULTS[name]))


def card_fingerprint(number: str) -> str:
    """A keyed hash to recognise the same card again without ever storing its number."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"card:{number}".encode(), hashlib.sha256).hexdigest()[:40]


def _count(kind: str, column, value, seconds: int) -> int:
    since = now() - timedelta(seconds=seconds)
    return db.session.scalar(
        select(func.count()).select_from(RiskEvent)
        .where(RiskEvent.kind == kind, column == value, RiskEvent.created_at >= since)
    )


def check(checkout: CheckoutSession, *, method: str, ip: str | None, fingerprint: str | None) -> None:
    """Refuse (429) before any processor call when a limit is reached."""
    if ip and _count("decline", RiskEvent.ip, ip, _limit("KASSA_RISK_IP_WINDOW")) >= _limit("KASSA_RISK_IP_DECLINES"):
        raise TooManyRequests(_("Too many declined payments from your connection. Try again in an hour."))
    if method != "card":
        return
    link = db.session.get(PaymentLink, checkout.link_id)
    if link.card_paused_until is not None and link.card_paused_until > now():
        raise TooManyRequests(_("Card payments on this page are paused for a few minutes for safety. "
                                "Try again later."))
    if fingerprint and _count("card_use", RiskEvent.card_fingerprint, fingerprint,
                              _limit("KASSA_RISK_CARD_WINDOW")) >= _limit("KASSA_RISK_CARD_USES"):
        raise TooManyRequests(_("This card has been used too many times today. Use another card or try tomorrow."))


def record_card_use(attempt: PaymentAttempt) -> None:
    if attempt.card_fingerprint:
        db.session.add(RiskEvent(account_id=attempt.account_id, kind="card_use", ip=attempt.ip,
                                 link_id=attempt.link_id, card_fingerprint=attempt.card_fingerprint))


def record_decline(attempt: PaymentAttempt) -> None:
    """Count a decline (in the caller's transaction); pause the link's card payments at the link limit."""
    record_card_use(attempt)
    db.session.add(RiskEvent(account_id=attempt.account_id, kind="decline", ip=attempt.ip, link_id=attempt.link_id,
                             card_fingerprint=attempt.card_fingerprint))
    db.session.flush()
    if attempt.link_id is None or attempt.method != "card":
        return
    declines = _count("decline", RiskEvent.link_id, attempt.link_id, _limit("KASSA_RISK_LINK_WINDOW"))
    link = db.session.get(PaymentLink, attempt.link_id)
    already_paused = link.card_paused_until is not None and link.card_paused_until > now()
    if declines >= _limit("KASSA_RISK_LINK_DECLINES") and not already_paused:
        link.card_paused_until = now() + timedelta(seconds=_limit("KASSA_RISK_LINK_PAUSE"))
        from kassa.services.notifications import notify_link_paused

        notify_link_paused(link, declines)
