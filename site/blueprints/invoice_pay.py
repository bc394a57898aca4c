"""An invoice's public pay page (V2): phone-first, branded as the checkout, in the customer's language.

The URL is the one in the invoice email (signed, unguessable: invoice_checkout.pay_token). "Pay" opens Kassa's
checkout for exactly the amount due (a checkout session of the invoice, then the checkout's own page, attempt and
payment). A paid or void invoice's page says so and has no button.

Buyer-facing: this module never imports merchant views (DESIGN §7.2).
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import refresh
from wtforms import StringField

from kassa.errors import NotFound, TooManyRequests
from kassa.extensions import db, limiter
from kassa.forms import Form
from kassa.i18n import LANGUAGES
from kassa.models import Account, Company, Contact, Invoice
from kassa.money import Money
from kassa.netutil import client_ip
from kassa.page_cache import compact
from kassa.rendering import private_download
from kassa.services.checkout import invoice_checkout
from kassa.services.payments.invoices import invoice_label

bp = Blueprint("invoice_pay", __name__)


class PayInvoiceForm(Form):
    """The pay page's one button; the language the buyer chose on the page goes with it (C7)."""

    lang = StringField(default="")


def _language(invoice: Invoice, account: Account, posted: str | None = None) -> str:
    """The buyer's choice (`?lang=`, posted, or remembered), else the invoice's customer's language."""
    chosen = request.args.get("lang") or posted
    if chosen in LANGUAGES:
        session["buyer_lang"] = chosen
        return chosen
    remembered = session.get("buyer_lang")
    if remembered in LANGUAGES:
        return remembered
    return invoice_checkout.customer_language(invoice, account)


def _page(invoice: Invoice, status: int = 200, alert: str | None = None):
    account = db.session.get(Account, invoice.account_id)
    g.buyer_language = _language(invoice, account, PayInvoiceForm().lang.data if request.method == "POST" else None)
    refresh()
    contact = db.session.get(Contact, invoice.contact_id) if invoice.contact_id else None
    company = db.session.get(Company, invoice.company_id) if invoice.company_id else None
    payable = invoice_checkout.is_payable(invoice)
    money = lambda minor: Money(minor, invoice.currency)  # noqa: E731
    html = render_template(
        "invoice_pay/page.html", account=account, invoice=invoice, number=invoice_label(invoice),
        customer=" · ".join(part for part in ((contact.display_name if contact else ""),
                                             (company.name if company else "")) if part),
        lines=invoice.lines, total=money(invoice.amount_minor), paid=money(invoice.amount_paid_minor),
        due=money(invoice.amount_due_minor), payable=payable, alert=alert or (
            None if payable else invoice_checkout.refusal(invoice)),
        language=g.buyer_language, languages=list(LANGUAGES.items()), form_url=request.path,
        pay_url=url_for("invoice_pay.pay", token=request.view_args["token"]),
        pdf_url=url_for("invoice_pay.pdf", token=request.view_args["token"]),
    )
    response = current_app.make_response((compact(html), status))
    # Personal data (the customer's name, the lines): no shared cache keeps it.
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is the key to the page
    return response


def _invoice(token: str) -> Invoice:
    try:
        return invoice_checkout.invoice_for_token(token)
    except NotFound as exc:
        g.buyer_language = request.args.get("lang") if request.args.get("lang") in LANGUAGES else "en"
        raise exc


@bp.get("/invoice/<token>")
def page(token: str):
    return _page(_invoice(token))


@bp.post("/invoice/<token>/pay")
@limiter.limit(lambda: current_app.config["KASSA_CHECKOUT_START_LIMIT"])
def pay(token: str):
    """Open the checkout for the amount due now; a paid or void invoice's page again, saying so (409)."""
    invoice = _invoice(token)
    form = PayInvoiceForm()
    language = form.lang.data if form.lang.data in LANGUAGES else None
    try:
        checkout = invoice_checkout.start_checkout(token, language=language)
    except invoice_checkout.InvoiceNotPayable as exc:
        db.session.rollback()
        return _page(db.session.get(Invoice, invoice.id), 409, alert=exc.message)
    return redirect(url_for("checkout.page", token=checkout.token), code=303)


@bp.get("/invoice/<token>/pdf")
def pdf(token: str):
    """The invoice as a PDF, in its customer's language (the same file as in the email)."""
    try:
        filename, content_type, data = invoice_checkout.public_invoice_pdf(_invoice(token), ip=client_ip())
    except TooManyRequests as exc:
        return compact(render_template("checkout/unavailable.html", title=_("Try again in a moment"),
                                       message=exc.message)), 429
    return private_download(data, content_type, filename, "invoice.pdf")


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound):
    html = render_template("checkout/unavailable.html", title=_("Invoice not found"), message=exc.message)
    return compact(html), 404
