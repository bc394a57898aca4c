"""The public token pages of invoices (V2, blueprints/invoice_pay.py) and quotes (V4, blueprints/quote_page.py).

Why one helper: the quote page was built as a copy of the invoice pay page (issue 21). Both load their object by a
signed token (a bad one is the same polite 404 page in the language asked for), speak the buyer's language (the one
chosen on the page, else the customer's), are branded as the checkout and never cached, open Kassa's checkout with
"Pay" (or show the page again with the reason, 409) and offer the PDF (limited as receipt downloads are, H7). Those
steps are written once, here; each page keeps its own template, texts and buttons.

Buyer-facing: this module never imports merchant views (DESIGN §7.2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import refresh
from werkzeug.wrappers import Response
from wtforms import StringField

from kassa.errors import Conflict, NotFound, TooManyRequests
from kassa.extensions import db
from kassa.forms import Form
from kassa.i18n import LANGUAGES
from kassa.models import Account, Company, Contact
from kassa.netutil import client_ip
from kassa.page_cache import compact
from kassa.rendering import private_download
from kassa.services.payments.documents import customer_language


class BuyerLanguageForm(Form):
    """A token page's button (pay, decline); the language the buyer chose on the page goes with it (C7)."""

    lang = StringField(default="")


def use_buyer_language(obj) -> Account:
    """C7: the buyer's choice (`?lang=`, posted, or remembered), else the customer's language, for this request's
    texts (g.buyer_language). Returns the object's account (the page's branding)."""
    account = db.session.get(Account, obj.account_id)
    posted = BuyerLanguageForm().lang.data if request.method == "POST" else None
    chosen = request.args.get("lang") or posted
    if chosen in LANGUAGES:
        session["buyer_lang"] = chosen
        language = chosen
    elif session.get("buyer_lang") in LANGUAGES:
        language = session["buyer_lang"]
    else:
        language = customer_language(obj, account)
    g.buyer_language = language
    refresh()
    return account


def customer_line(obj) -> str:
    """"Name · Company" of the invoice's or quote's customer, as the page shows it after "To"."""
    contact = db.session.get(Contact, obj.contact_id) if obj.contact_id else None
    company = db.session.get(Company, obj.company_id) if obj.company_id else None
    return " · ".join(part for part in ((contact.display_name if contact else ""),
                                        (company.name if company else "")) if part)


def respond(html: str, status: int) -> Response:
    response = current_app.make_response((compact(html), status))
    # Personal data (the customer's name, the lines): no shared cache keeps it.
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is the key to the page
    return response


def load(for_token: Callable[[str], Any], token: str):
    """The object a token names; NotFound (the blueprint's 404 page) in the language asked for, else English."""
    if request.args.get("lang") in LANGUAGES:
        # Before the lookup: its NotFound message is translated when raised, and Babel keeps the first locale of a
        # request, so a language set only afterwards left the 404 page in English (both pages did).
        g.buyer_language = request.args["lang"]
        refresh()
    try:
        return for_token(token)
    except NotFound as exc:
        g.buyer_language = request.args.get("lang") if request.args.get("lang") in LANGUAGES else "en"
        raise exc


def start_checkout(obj, token: str, start: Callable[..., Any], closed: type[Conflict], page: Callable[..., Response]):
    """"Pay": a checkout session of the object, then the checkout's own page (303). When it can't be paid now
    (`closed`), nothing is written and its page says why (409)."""
    form = BuyerLanguageForm()
    language = form.lang.data if form.lang.data in LANGUAGES else None
    try:
        checkout = start(token, language=language)
    except closed as exc:
        db.session.rollback()
        return page(db.session.get(type(obj), obj.id), 409, alert=exc.message)
    return redirect(url_for("checkout.page", token=checkout.token), code=303)


def pdf_download(obj, render: Callable[..., tuple[str, str, bytes]], fallback_name: str):
    """The object's PDF from its page; over the download limit, the polite "try again" page (429)."""
    try:
        filename, content_type, data = render(obj, ip=client_ip())
    except TooManyRequests as exc:
        return compact(render_template("checkout/unavailable.html", title=_("Try again in a moment"),
                                       message=exc.message)), 429
    return private_download(data, content_type, filename, fallback_name)


def not_found_page(bp: Blueprint, title: Callable[[], str]) -> None:
    """A token that names nothing: the checkout's "unavailable" page with the blueprint's `title`, 404."""

    @bp.errorhandler(NotFound)
    def _not_found(exc: NotFound):
        html = render_template("checkout/unavailable.html", title=title(), message=exc.message)
        return compact(html), 404
