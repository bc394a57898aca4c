"""A quote's public page (V4): phone-first, branded as the checkout (its layout and CSS), in the buyer's language
with the language switch, never cached. The buyer reads the quote, accepts it (name and a ticked box: time and IP
stored), then pays at once ("Pay now" opens Kassa's checkout for exactly the quote) or later from the same page.
An expired, declined or void quote says so politely, with no button (a forged POST gets 409).

Buyer-facing: this module never imports merchant views (DESIGN §7.2).
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import refresh
from wtforms import BooleanField, StringField

from kassa.errors import NotFound, TooManyRequests, ValidationFailed
from kassa.extensions import db, limiter
from kassa.forms import Form
from kassa.i18n import LANGUAGES
from kassa.models import Account, BillingFrequency, Company, Contact, Quote
from kassa.money import Money
from kassa.netutil import client_ip
from kassa.order_summary import every_label, group_sentence
from kassa.page_cache import compact
from kassa.rendering import private_download
from kassa.services.checkout import quote_checkout
from kassa.services.links.snapshots import snapshot_summary
from kassa.services.payments.quotes import customer_language, quote_label

bp = Blueprint("quote_page", __name__)


class AcceptQuoteForm(Form):
    """The buyer's acceptance: their full name and the ticked box (C7: the language chosen on the page)."""

    name = StringField(default="")
    agree = BooleanField(default=False)
    lang = StringField(default="")


class PayQuoteForm(Form):
    lang = StringField(default="")


def _language(quote: Quote, account: Account, posted: str | None = None) -> str:
    chosen = request.args.get("lang") or posted
    if chosen in LANGUAGES:
        session["buyer_lang"] = chosen
        return chosen
    remembered = session.get("buyer_lang")
    if remembered in LANGUAGES:
        return remembered
    return customer_language(quote, account)


def _page(quote: Quote, status: int = 200, *, alert: str | None = None, errors=None, values=None,
          accepted_now: bool = False):
    account = db.session.get(Account, quote.account_id)
    g.buyer_language = _language(quote, account, PayQuoteForm().lang.data if request.method == "POST" else None)
    refresh()
    contact = db.session.get(Contact, quote.contact_id) if quote.contact_id else None
    company = db.session.get(Company, quote.company_id) if quote.company_id else None
    token = request.view_args["token"]
    # what recurs after today, worded as a link's order summary words it ("Then €25.00 every month until cancelled")
    summary = snapshot_summary(quote_checkout.quote_snapshot(quote, "", ""))
    recurring = [group_sentence(group, g.buyer_language) for group in summary.groups]
    acceptable = quote_checkout.can_accept(quote)
    payable = quote_checkout.can_pay(quote)
    html = render_template(
        "quote_page/page.html", account=account, quote=quote, number=quote_label(quote),
        customer=" · ".join(part for part in ((contact.display_name if contact else ""),
                                             (company.name if company else "")) if part),
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
    response = current_app.make_response((compact(html), status))
    response.headers["Cache-Control"] = "private, no-store"  # the customer's name and the lines
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is the key to the page
    return response


def _quote(token: str) -> Quote:
    try:
        return quote_checkout.quote_for_token(token)
    except NotFound as exc:
        g.buyer_language = request.args.get("lang") if request.args.get("lang") in LANGUAGES else "en"
        raise exc


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
    PayQuoteForm()
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
    quote = _quote(token)
    form = PayQuoteForm()
    language = form.lang.data if form.lang.data in LANGUAGES else None
    try:
        checkout = quote_checkout.start_checkout(token, language=language)
    except quote_checkout.QuoteClosed as exc:
        db.session.rollback()
        return _page(db.session.get(Quote, quote.id), 409, alert=exc.message)
    return redirect(url_for("checkout.page", token=checkout.token), code=303)


@bp.get("/quote/<token>/pdf")
def pdf(token: str):
    try:
        filename, content_type, data = quote_checkout.public_quote_pdf(_quote(token), ip=client_ip())
    except TooManyRequests as exc:
        return compact(render_template("checkout/unavailable.html", title=_("Try again in a moment"),
                                       message=exc.message)), 429
    return private_download(data, content_type, filename, "quote.pdf")


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound):
    html = render_template("checkout/unavailable.html", title=_("Quote not found"), message=exc.message)
    return compact(html), 404
