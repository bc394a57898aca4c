"""An invoice's public pay page (V2): phone-first, branded as the checkout, in the customer's language.

The URL is the one in the invoice email (signed, unguessable: invoice_checkout.pay_token). "Pay" opens Kassa's
checkout for exactly the amount due (a checkout session of the invoice, then the checkout's own page, attempt and
payment). A paid or void invoice's page says so and has no button. The steps it shares with the quote page (token,
language, headers, pay, PDF) are token_page's.

Buyer-facing: this module never imports merchant views (DESIGN §7.2).
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, render_template, request, url_for
from flask_babel import gettext as _

from kassa.blueprints import token_page
from kassa.extensions import limiter
from kassa.i18n import LANGUAGES
from kassa.models import Invoice
from kassa.money import Money
from kassa.services.checkout import invoice_checkout
from kassa.services.payments.invoices import invoice_label

bp = Blueprint("invoice_pay", __name__)


def _page(invoice: Invoice, status: int = 200, alert: str | None = None):
    account = token_page.use_buyer_language(invoice)
    payable = invoice_checkout.is_payable(invoice)
    money = lambda minor: Money(minor, invoice.currency)  # noqa: E731
    html = render_template(
        "invoice_pay/page.html", account=account, invoice=invoice, number=invoice_label(invoice),
        customer=token_page.customer_line(invoice),
        lines=invoice.lines, total=money(invoice.amount_minor), paid=money(invoice.amount_paid_minor),
        due=money(invoice.amount_due_minor), payable=payable, alert=alert or (
            None if payable else invoice_checkout.refusal(invoice)),
        language=g.buyer_language, languages=list(LANGUAGES.items()), form_url=request.path,
        pay_url=url_for("invoice_pay.pay", token=request.view_args["token"]),
        pdf_url=url_for("invoice_pay.pdf", token=request.view_args["token"]),
    )
    return token_page.respond(html, status)


def _invoice(token: str) -> Invoice:
    return token_page.load(invoice_checkout.invoice_for_token, token)


@bp.get("/invoice/<token>")
def page(token: str):
    return _page(_invoice(token))


@bp.post("/invoice/<token>/pay")
@limiter.limit(lambda: current_app.config["KASSA_CHECKOUT_START_LIMIT"])
def pay(token: str):
    """Open the checkout for the amount due now; a paid or void invoice's page again, saying so (409)."""
    return token_page.start_checkout(_invoice(token), token, invoice_checkout.start_checkout,
                                     invoice_checkout.InvoiceNotPayable, _page)


@bp.get("/invoice/<token>/pdf")
def pdf(token: str):
    """The invoice as a PDF, in its customer's language (the same file as in the email)."""
    return token_page.pdf_download(_invoice(token), invoice_checkout.public_invoice_pdf, "invoice.pdf")


token_page.not_found_page(bp, lambda: _("Invoice not found"))
