"""A quote's public page (V4): phone-first, branded as the checkout (its layout and CSS), in the buyer's language
with the language switch, never cached. The buyer reads the quote, accepts it (name and a ticked box: time and IP
stored), then pays at once ("Pay now" opens Kassa's checkout for exactly the quote) or later from the same page.
An expired, declined or void quote says so politely, with no button (a forged POST gets 409). The steps it shares
with the invoice pay page (token, language, headers, pay, PDF) are token_page's.

Buyer-facing: this module never imports merchant views (DESIGN §7.2).
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, render_template, request, url_for
from flask_babel import gettext as _
from wtforms import BooleanField, StringField

from kassa.blueprints import token_page
from kassa.errors import ValidationFailed
from kassa.extensions import db, limiter
from kassa.forms import Form
from kassa.i18n import LANGUAGES
from kassa.models import BillingFrequency, Quote
from kassa.money import Money
from kassa.netutil import client_ip
from kassa.order_summary import every_label, group_sentence
from kassa.services.checkout import quote_checkout
from kassa.services.links.snapshots import snapshot_summary
from kassa.services.payments.quotes import quote_label

bp = Blueprint("quote_page", __name__)


class AcceptQuoteForm(Form):
    """The buyer's acceptance: their full name and the ticked box (C7: the language chosen on the page)."""

    name = StringField(default="")
    agree = BooleanField(default=False)
    lang = StringField(default="")


def _page(quote: Quote, status: int = 200, *, alert: str | None = None, errors=None, values=None,
          accepted_now: bool = False):
    account = token_page.use_buyer_language(quote)
    token = request.view_args["token"]
    # what recurs after today, worded as a link's order summary words it ("Then €25.00 every month until cancelled")
    summary = snapshot_summary(quote_checkout.quote_snapshot(quote, "", ""))
    recurring = [group_sentence(group, g.buyer_language) for group in summary.groups]
    acceptable = quote_checkout.can_accept(quote)
    payable = quote_checkout.can_pay(quote)
    html = render_template(
        "quote_page/page.html", account=account, quote=quote, number=quote_label(quote),
        customer=token_page.customer_line(quote),
        lines=[(line, every_label(line.frequency) if line.frequency != BillingFrequency.ONE_TIME.value else None)
               for line in quote.lines],
        total=Money(quote.amount_minor, quote.currency), recurring=recurring, acceptable=acceptable, payable=payable,
        closed=None if acceptable or payable else quote_checkout.refusal(quote), alert=alert,
        errors=errors or {}, values=values or {}, accepted_now=accepted_now,
        language=g.buyer_language, languages=list(LANGUAGES.items()), form_url=request.path,
        accept_url=url_for("quote_page.accept", token=token), decline_url=url_for("quote_page.decline", token=token),
        pay_url=url_for("quote_page.pay", token=token),
        pdf_url=url_for("quote_page.pdf", token=token),
    )
    return token_page.respond(html, status)


def _quote(token: str) -> Quote:
    return token_page.load(quote_checkout.quote_for_token, token)


@bp.get("/quote/<token>")
def page(token: str):
    return _page(_quote(token))


@bp.post("/quote/<token>/accept")
@limiter.limit(lambda: current_app.config["KASSA_CHECKOUT_START_LIMIT"])
def accept(token: str):
    """Accept with a name and the ticked box; an expired, void or declined quote: its page again, 409."""
    quote = _quote(token)
    form = AcceptQuoteForm()
    try:
        quote, _first = quote_checkout.accept(token, name=form.name.data or "", agreed=bool(form.agree.data),
                                              ip=client_ip())
    except quote_checkout.QuoteClosed as exc:
        db.session.rollback()
        return _page(db.session.get(Quote, quote.id), 409, alert=exc.message)
    except ValidationFailed as exc:
        db.session.rollback()
        return _page(quote, 422, errors=exc.errors, values={"name": form.name.data or ""})
    return _page(quote, accepted_now=True)


@bp.post("/quote/<token>/decline")
@limiter.limit(lambda: current_app.config["KASSA_CHECKOUT_START_LIMIT"])
def decline(token: str):
    """The buyer declines the quote; one that can't be declined any more: its page again, 409."""
    quote = _quote(token)
    token_page.BuyerLanguageForm()
    try:
        quote = quote_checkout.decline(token, ip=client_ip())
    except quote_checkout.QuoteClosed as exc:
        db.session.rollback()
        return _page(db.session.get(Quote, quote.id), 409, alert=exc.message)
    return _page(quote)


@bp.post("/quote/<token>/pay")
@limiter.limit(lambda: current_app.config["KASSA_CHECKOUT_START_LIMIT"])
def pay(token: str):
    """Open the checkout for exactly the accepted quote; not accepted, paid or void: its page again (409)."""
    return token_page.start_checkout(_quote(token), token, quote_checkout.start_checkout, quote_checkout.QuoteClosed,
                                     _page)


@bp.get("/quote/<token>/pdf")
def pdf(token: str):
    return token_page.pdf_download(_quote(token), quote_checkout.public_quote_pdf, "quote.pdf")


token_page.not_found_page(bp, lambda: _("Quote not found"))
