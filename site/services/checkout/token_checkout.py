"""What an invoice's pay page (V2, invoice_checkout) and a quote's page (V4, quote_checkout) do alike: a token that is
the object's id signed with the app secret, the checkout session of the object (its snapshot a link's, with nothing
the buyer can change), the "being processed" guard of its attempts, and the PDF download limit.

Why shared: quote_checkout was written as a copy of invoice_checkout (issue 21), and the copies had begun to differ
where they must not (a guard added to one and not the other). Each module keeps its own rules (what is payable, the
refusals, the amounts); the mechanics are written once, here.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer

from kassa.clock import now
from kassa.errors import TooManyRequests
from kassa.models import CONTACT_FIELDS, CheckoutSession, Confirmation, FieldMode, Mode
from kassa.services.platform import throttle

SESSION_LIFETIME = timedelta(hours=24)  # as a link's checkout (checkout.SESSION_LIFETIME)


def sign_id(salt: str, object_id: int) -> str:
    """A page's token: the id signed with the app secret (HMAC), so no other object's page can be reached by changing
    it and none can be guessed. `salt` keeps an invoice's token from opening the quote of the same id."""
    return URLSafeSerializer(current_app.secret_key, salt=salt).dumps(object_id)


def signed_id(salt: str, token: str) -> int | None:
    """The id a token names, or None for a bad signature (or anything that isn't an id)."""
    try:
        object_id = URLSafeSerializer(current_app.secret_key, salt=salt).loads(token or "")
    except BadSignature:
        return None
    return object_id if isinstance(object_id, int) else None


def fixed_snapshot(source: dict[str, int], *, currency: str, items: list[dict[str, Any]], email: str,
                   start_url: str) -> dict[str, Any]:
    """A checkout snapshot as a link's (snapshots.link_snapshot) that the buyer can't change: no questions, no
    address, no custom fields, no redirect; card and the bank debit of the currency (Q10). `source` names the object
    (`{"invoice_id": 7}`); `email` starts the page's email field; "Start again" goes to `start_url`."""
    return {
        "link_id": None,
        **source,
        "version": 1,
        "currency": currency,
        "items": items,
        "fields": {field: FieldMode.OFF.value for field in CONTACT_FIELDS},
        "allow_card": True,
        "allow_ach": True,  # the bank debit of the currency, when there is one (Q10)
        "collect_billing_address": False,
        "collect_shipping_address": False,
        "confirmation": Confirmation.DEFAULT.value,
        "redirect_url": None,
        "terms_url": None,
        "pipeline_id": None,
        "stage_id": None,
        "custom_fields": [],
        "trial_days": 0,
        "email": email,
        "start_url": start_url,
    }


def open_session(session, account_id: int, source: dict[str, int], snapshot: dict[str, Any],
                 language: str | None) -> CheckoutSession:
    """Inside the caller's write, with the object's row locked: a live checkout session of it (`source`, e.g.
    `{"quote_id": 3}`), which the checkout's own page, attempt and payment record then serve as a link's."""
    checkout = CheckoutSession(
        account_id=account_id, link_id=None, **source, token=secrets.token_urlsafe(32), mode=Mode.LIVE.value,
        link_version=1, snapshot=snapshot, language=language, expires_at=now() + SESSION_LIFETIME,
    )
    session.add(checkout)
    session.flush()
    return checkout


def limited_render(kind: str, object_id: int, ip: str | None,
                   render: Callable[[int], tuple[str, str, bytes]]) -> tuple[str, str, bytes]:
    """A PDF from a public page. Renders are limited per object and per client address, as the checkout's receipt
    downloads are (H7): each takes a second or two of the one PDF renderer everyone shares."""
    rules = ((current_app.config["KASSA_RECEIPT_RENDER_LINK_LIMIT"], (f"{kind}-render", kind, str(object_id))),
             (current_app.config["KASSA_RECEIPT_RENDER_IP_LIMIT"], ("receipt-render", "ip", ip or "-")))
    if not throttle.allow(*rules):
        minutes = -(-throttle.retry_after(*rules) // 60)
        raise TooManyRequests(_("Too many downloads right now. Try again in %(minutes)d min.", minutes=minutes))
    return render(object_id)
