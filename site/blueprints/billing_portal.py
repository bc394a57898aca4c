"""The buyer's card-update page for a subscription (S3): reached from the failed-payment email."""

from __future__ import annotations

from flask import Blueprint, current_app, g, render_template, request

from kassa.blueprints.checkout_forms import CardForm
from kassa.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from kassa.extensions import db, limiter
from kassa.models import Account, Mode
from kassa.netutil import client_ip
from kassa.security import allow_stripe_js
from kassa.services.billing import subscriptions

bp = Blueprint("billing_portal", __name__)


@bp.route("/billing/<token>", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def update_card(token: str):
    try:
        sub = subscriptions.by_update_token(token)
    except NotFound:
        return render_template("checkout/unavailable.html", title="404", message=""), 404
    g.buyer_language = sub.language
    from flask_babel import gettext as _
    from flask_babel import refresh

    refresh()
    account = db.session.get(Account, sub.account_id)
    context = {"sub": sub, "account": account, "test_mode": sub.mode == Mode.TEST.value, "errors": {},
               "values": {}, "done": None, "ended": sub.status not in ("active", "past_due"),
               "stripe": None}
    stripe_key = None if context["ended"] else subscriptions.stripe_publishable_key(sub)
    # K8: a subscription charged through Stripe takes the new card in Stripe's Payment Element (setup mode); only
    # this page's CSP then allows Stripe's origins. The sandbox's page keeps Kassa's own card fields.
    card_field = "card_number"
    if stripe_key is not None:
        allow_stripe_js()
        context["stripe"] = {"key": stripe_key, "js_url": current_app.config["KASSA_STRIPE_JS_URL"]}
        card_field = "payment_method"
    if request.method == "POST" and not context["ended"]:
        card = CardForm().posted()
        try:
            sub, outcome = subscriptions.update_card(token, card, ip=client_ip())
        except TooManyRequests as exc:
            # H4: the card-testing guard refused before the processor saw the card. The name on the card is
            # kept; the number and CVC are not put back into a page shown to a suspected card tester.
            values = {k: v for k, v in card.items() if k not in ("card_number", "card_cvc")}
            context.update(errors={card_field: exc.message}, values=values)
            return render_template("billing/update_card.html", **context), 429
        except ValidationFailed as exc:
            context.update(errors=exc.errors, values=card)
            return render_template("billing/update_card.html", **context), 422
        except Conflict as exc:
            context.update(errors={card_field: exc.message}, values=card)
            return render_template("billing/update_card.html", **context), 409
        context["sub"] = sub
        if outcome == "failed":
            context.update(errors={card_field: _("The new card was declined. Try another card.")})
            return render_template("billing/update_card.html", **context), 422
        context["done"] = _("Thank you! Your card is saved.") + (
            " " + _("The outstanding payment went through.") if outcome == "succeeded" else "")
    return render_template("billing/update_card.html", **context)
