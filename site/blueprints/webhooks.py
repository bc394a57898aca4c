"""POST /webhooks/stripe/<account_id> (K7): Stripe's signed deliveries, stored and answered at once.

No session, no CSRF token (Stripe can't send one): the Stripe-Signature header, checked against the account's
webhook signing secret, is what authenticates a delivery. The work is queued, so the answer is fast."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from kassa.errors import NotFound
from kassa.extensions import csrf
from kassa.services.webhooks import stripe_webhooks

bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks/stripe/<int:account_id>")
@csrf.exempt
def stripe_webhook(account_id: int):
    try:
        new = stripe_webhooks.receive(account_id, request.get_data(cache=False),
                                      request.headers.get("Stripe-Signature", ""))
    except NotFound as exc:
        return jsonify(error=exc.message), 404
    except stripe_webhooks.WebhookRefused as exc:
        return jsonify(error=exc.message), 400
    return jsonify(received=True, duplicate=not new), 200
