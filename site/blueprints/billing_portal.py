"""The buyer's card-update page for a subscription (S3): reached from the failed-payment email; and the buyer
portal (Q11): reached from the signed link in every receipt email."""

from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from wtforms import StringField

from kassa.blueprints.checkout_forms import CardForm
from kassa.errors import Conflict, NotFound, PaymentDeclined, TooManyRequests, ValidationFailed
from kassa.extensions import db, limiter
from kassa.forms import Form
from kassa.i18n import LANGUAGES, show_times_in
from kassa.models import Account, Mode
from kassa.netutil import client_ip
from kassa.rendering import private_download
from kassa.security import allow_stripe_js
from kassa.services.billing import buyer_portal, subscriptions
from kassa.services.payments import receipts

bp = Blueprint("billing_portal", __name__)
# Q11: as the card-update page's posts; the portal's pages and downloads count too (a token is a secret).
PORTAL_LIMIT = "20 per minute"


def _page(token: str):
    """The subscription behind the token and the card-update page's context, or None (a 404)."""
    try:
        sub = subscriptions.by_update_token(token)
    except NotFound:
        return None, None
    g.buyer_language = sub.language
    account = db.session.get(Account, sub.account_id)
    show_times_in(account.timezone)  # B7: any time shown here reads as on the buyer's receipts (refreshes too)
    context = {"sub": sub, "account": account, "test_mode": sub.mode == Mode.TEST.value, "errors": {},
               "values": {}, "done": None, "declined": None, "alert": None,
               "ended": sub.status not in ("trialing", "active", "past_due"),
               "stripe": None}
    stripe_key = None if context["ended"] else subscriptions.stripe_publishable_key(sub)
    # K8: a subscription charged through Stripe takes the new card in Stripe's Payment Element (setup mode); only
    # this page's CSP then allows Stripe's origins. The sandbox's page keeps Kassa's own card fields.
    if stripe_key is not None:
        allow_stripe_js()
        context["stripe"] = {"key": stripe_key, "js_url": current_app.config["KASSA_STRIPE_JS_URL"]}
    return sub, context


def _not_found():
    return render_template("checkout/unavailable.html", title="404", message=""), 404


def _saved(context: dict, sub, outcome: str | None) -> dict:
    context["sub"] = sub
    context["done"] = _("Thank you! Your card is saved.") + (
        " " + _("The outstanding payment went through.") if outcome == "succeeded" else "")
    return context


@bp.route("/billing/<token>", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def update_card(token: str):
    sub, context = _page(token)
    if sub is None:
        return _not_found()
    card_field = "payment_method" if context["stripe"] else "card_number"
    if request.method == "POST" and not context["ended"]:
        card = CardForm().posted()
        try:
            sub, outcome = subscriptions.update_card(token, card, ip=client_ip())
        except subscriptions.CardNeedsConfirmation as exc:
            return _confirm_page(context, token, exc)
        except TooManyRequests as exc:
            # H4: the card-testing guard refused before the processor saw the card. The name on the card is
            # kept; the number and CVC are not put back into a page shown to a suspected card tester.
            values = {k: v for k, v in card.items() if k not in ("card_number", "card_cvc")}
            context.update(alert=exc.message, values=values)
            return render_template("billing/update_card.html", **context), 429
        except PaymentDeclined as exc:
            context.update(errors=exc.errors, values=card, declined=exc.message)
            return render_template("billing/update_card.html", **context), 422
        except ValidationFailed as exc:
            context.update(errors=exc.errors, values=card)
            return render_template("billing/update_card.html", **context), 422
        except Conflict as exc:
            context.update(alert=exc.message, values=card)
            return render_template("billing/update_card.html", **context), 409
        context["sub"] = sub
        if outcome == "failed":
            message = _("The new card was declined. Try another card.")
            context.update(errors={card_field: message}, declined=message)
            return render_template("billing/update_card.html", **context), 422
        _saved(context, sub, outcome)
    return render_template("billing/update_card.html", **context)


def _confirm_page(context: dict, token: str, need: subscriptions.CardNeedsConfirmation):
    """K8: the bank wants the buyer to confirm the new card: Stripe.js runs 3-D Secure with the SetupIntent's
    client secret (static/js/checkout-stripe.js), then the browser goes to `finish`. Nothing is saved yet."""
    finish_url = url_for("billing_portal.finish", token=token, setup_intent=need.setup_ref, card=need.card_key)
    html = render_template("billing/confirm_card.html", **context, client_secret=need.client_secret,
                           finish_url=finish_url)
    response = current_app.make_response((html, 202))
    response.headers["Cache-Control"] = "private, no-store"  # the client secret belongs to this buyer only
    return response


@bp.get("/billing/<token>/return")
def finish(token: str):
    """K8: back from confirming the new card with the bank. Stripe's answer decides: saved (and a past-due
    period charged), or its reason at the payment field with nothing changed. A GET, as Stripe.js's redirect."""
    sub, context = _page(token)
    if sub is None or context["ended"]:
        return _not_found() if sub is None else render_template("billing/update_card.html", **context)
    try:
        sub, outcome = subscriptions.finish_card_update(token, request.args.get("setup_intent", ""),
                                                        request.args.get("card", ""))
    except NotFound:
        return _not_found()
    except ValidationFailed as exc:
        context.update(errors=exc.errors, declined=exc.message if isinstance(exc, PaymentDeclined) else None)
        return render_template("billing/update_card.html", **context), 422
    except Conflict as exc:
        context.update(alert=exc.message)
        return render_template("billing/update_card.html", **context), 409
    if outcome == "failed":
        message = _("The new card was declined. Try another card.")
        context.update(sub=sub, errors={"payment_method": message}, declined=message)
        return render_template("billing/update_card.html", **context), 422
    return render_template("billing/update_card.html", **_saved(context, sub, outcome))


# -- Q11: the buyer portal ------------------------------------------------------------------------------


class PortalForm(Form):
    """The portal's buttons post nothing but their CSRF token (and "confirm" on the cancellation page)."""

    confirm = StringField()


def _portal_context(found: buyer_portal.Portal | None = None, token: str = "") -> dict:
    account = found.account
    g.buyer_language = _portal_language(found)
    show_times_in(account.timezone)
    return {"account": account, "portal": found, "token": token}


def _portal_language(found: buyer_portal.Portal) -> str:
    """The buyer's language: their latest payment's (the one their receipts are in), else the account's."""
    requested = request.args.get("lang")
    if requested in LANGUAGES:
        return requested
    return found.payments[0].language if found.payments else found.account.language


def _portal_page(template: str, status: int = 200, **context):
    response = current_app.make_response((render_template(template, **context), status))
    response.headers["Cache-Control"] = "private, no-store"  # one buyer's payments
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    return response


@bp.get("/my/<token>")
@limiter.limit(PORTAL_LIMIT)
def portal(token: str):
    try:
        found = buyer_portal.portal(token)
    except NotFound:
        return _not_found()
    return _portal_page("billing/portal.html", **_portal_context(found, token), cancelled=request.args.get("done"))


@bp.get("/my/<token>/receipts/<int:payment_id>.pdf")
@limiter.limit(PORTAL_LIMIT)
def portal_receipt(token: str, payment_id: int):
    try:
        payment = buyer_portal.portal_payment(token, payment_id)
        filename, content_type, pdf = receipts.public_receipt_pdf(payment, ip=client_ip())
    except NotFound:
        return _not_found()
    except TooManyRequests as exc:
        return render_template("checkout/unavailable.html", title=exc.message, message=""), 429
    return private_download(pdf, content_type, filename, "receipt.pdf")


@bp.post("/my/<token>/subscriptions/<int:subscription_id>/card")
@limiter.limit(PORTAL_LIMIT)
def portal_card(token: str, subscription_id: int):
    """"Update payment method": on to the subscription's S3 card-update page."""
    PortalForm()
    try:
        update_token = buyer_portal.card_update_token(token, subscription_id)
    except NotFound:
        return _not_found()
    return redirect(url_for("billing_portal.update_card", token=update_token), code=303)


@bp.route("/my/<token>/subscriptions/<int:subscription_id>/cancel", methods=["GET", "POST"])
@limiter.limit(PORTAL_LIMIT)
def portal_cancel(token: str, subscription_id: int):
    """"Cancel": a confirmation page, then the cancellation at the end of the paid period."""
    try:
        found = buyer_portal.portal(token)
        item = buyer_portal.portal_subscription(token, subscription_id)
    except NotFound:
        return _not_found()
    context = {**_portal_context(found, token), "item": item, "alert": None}
    if request.method == "POST" and PortalForm().validate():
        try:
            buyer_portal.cancel_from_portal(token, subscription_id)
        except Conflict as exc:
            context["alert"] = exc.message
            return _portal_page("billing/portal_cancel.html", 409, **context)
        return redirect(url_for("billing_portal.portal", token=token, done=subscription_id), code=303)
    if not item.can_cancel:
        context["alert"] = _("This subscription can't be cancelled here. Contact %(merchant)s to cancel it.",
                             merchant=found.account.name)
    return _portal_page("billing/portal_cancel.html", **context)
