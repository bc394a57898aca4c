"""Quotes a merchant writes (V4): the list, the draft editor (the invoice editor's, with recurring lines, an expiry
date and the deal), the quote's page, finalize, send, void, the PDF.

The editor works like the invoice editor: the draft lives in the form, every button posts the whole form back
(plain POST or htmx) and re-renders it, and only "Save draft" writes.
"""

from __future__ import annotations

from flask import Blueprint, flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import FormField, StringField

from kassa.authz import current_actor, get_owned_or_404, permission_required, scoped
from kassa.blueprints import line_editor
from kassa.blueprints.line_editor import EditorForm, LineRowForm
from kassa.clock import account_today
from kassa.errors import Conflict
from kassa.extensions import db
from kassa.forms import MAX_PAGE, Form, NumberedRows, arg_int, parse_id
from kassa.i18n import LANGUAGES, current_language
from kassa.models import (
    BillingFrequency,
    Company,
    Contact,
    Deal,
    Payment,
    Permission,
    Quote,
    QuoteStatus,
)
from kassa.order_summary import frequency_label
from kassa.pagination import numbered_page
from kassa.rendering import htmx_redirect, private_download, render_page
from kassa.services.checkout import quote_checkout, quote_sending
from kassa.services.crm.crm import pipelines_for
from kassa.services.links.link_drafts import MAX_ITEMS
from kassa.services.payments import quote_drafts, quotes
from kassa.services.payments.quote_drafts import QuoteDraft, QuoteLineDraft

bp = Blueprint("quotes", __name__, url_prefix="/quotes")

# "expired" is a filter, not a state: open quotes past their expiry date
STATUS_FILTERS = [s.value for s in QuoteStatus] + ["expired"]


class QuoteLineRowForm(LineRowForm):
    """The invoice editor's line, with its billing frequency (V4)."""

    frequency = StringField(default=BillingFrequency.ONE_TIME.value, filters=[str.strip])


class QuoteEditorForm(EditorForm):
    """The invoice editor's form (line_editor.EditorForm), with the expiry date, the deal and recurring lines."""

    expiry_date = StringField(default="", filters=[str.strip])
    deal_id = StringField(default="", filters=[parse_id])
    accept_stage_id = StringField(default="", filters=[parse_id])
    lines = NumberedRows(FormField(QuoteLineRowForm), digits=4, part="[a-z_]+", max_entries=MAX_ITEMS + 10)

    def draft(self) -> QuoteDraft:
        return QuoteDraft(
            customer_email=self.customer_email.data, customer_name=self.customer_name.data,
            company_name=self.company_name.data, language=self.language.data, currency=self.currency.data,
            issue_date=self.issue_date.data, expiry_date=self.expiry_date.data, notes=self.notes.data or "",
            terms=self.terms.data or "", deal_id=self.deal_id.data, accept_stage_id=self.accept_stage_id.data,
            lines=[QuoteLineDraft(**row) for row in self.lines.data])


class QuoteActionForm(Form):
    """finalize, send, void, delete: a button with its CSRF token."""


def _status_name(status: str) -> str:
    return {"draft": _("Draft"), "open": _("Open"), "accepted": _("Accepted"), "paid": _("Paid"),
            "declined": _("Declined"), "void": _("Void"), "expired": _("Expired")}[status]


@bp.get("/")
@permission_required(Permission.MANAGE_PAYMENTS)
def index():
    """V4: every quote, newest first, with its status (expired read from the expiry date)."""
    status = request.args.get("status", "")
    status = status if status in STATUS_FILTERS else ""
    page = arg_int("page", 1, minimum=1, maximum=MAX_PAGE)
    today = account_today(current_user.account)
    query = scoped(Quote)
    if status == "expired":
        query = query.where(Quote.status == QuoteStatus.OPEN.value, Quote.expiry_date < today)
    elif status == QuoteStatus.OPEN.value:
        query = query.where(Quote.status == status, Quote.expiry_date >= today)
    elif status:
        query = query.where(Quote.status == status)
    paged = numbered_page(query, (Quote.id.desc(),), page)
    args = {"status": status or None}
    return render_page(
        "quotes/index.html", "quote_table", quotes=paged.rows, customers=line_editor.customers(paged.rows), today=today,
        status_filter=status, page=paged.page, pages=paged.pages, total=paged.total, label=quotes.quote_label,
        badge=quote_drafts.status_label, active_nav="payments", day=line_editor.day,
        statuses=[("", _("All"))] + [(s, _status_name(s)) for s in STATUS_FILTERS],
        prev_href=url_for("quotes.index", page=paged.page - 1, **args) if paged.page > 1 else None,
        next_href=url_for("quotes.index", page=paged.page + 1, **args) if paged.page < paged.pages else None,
    )


# -- the editor --------------------------------------------------------------------------------------


def _render(draft: QuoteDraft, quote: Quote | None, *, errors=None, status=200, show_library=False, search="",
            focus=None):
    deals = quote_drafts.deals_for(current_user.account_id)
    stages = [(str(stage.id), f"{pipeline.name} → {stage.name}")
              for pipeline in pipelines_for(current_user.account_id) for stage in pipeline.stages]
    return render_page(
        "quotes/editor.html", "editor_region", status=status, draft=draft, quote=quote, errors=errors or {},
        library=line_editor.library(search, by_sku=False) if show_library else [], show_library=show_library, search=search, focus=focus,
        languages=list(LANGUAGES.items()), active_nav="payments",
        action_url=url_for("quotes.edit", quote_id=quote.id) if quote else url_for("quotes.new"),
        discount_types=[("", _("No discount")), ("percent", _("Percentage off")),
                        ("amount", _("Amount off (%(currency)s)", currency=draft.currency))],
        frequencies=[(f.value, frequency_label(f)) for f in BillingFrequency],
        deals=[("", _("No deal"))] + [(str(d.id), d.name) for d in deals],
        stages=[("", _("Leave the deal where it is")), *stages],
    )


def _is_draft(quote: Quote) -> bool:
    return quote.status == QuoteStatus.DRAFT.value


EDITOR = line_editor.EditorKind(
    form=QuoteEditorForm, drafts=quote_drafts, render=_render, is_draft=_is_draft,
    detail_endpoint="quotes.detail", index_endpoint="quotes.index", id_arg="quote_id",
    not_editable=lambda: _("This quote was sent, so it can't be edited. Void it and write a new one instead."),
    saved=lambda: _("Draft quote saved. Finalize it to give it a number and send it."),
)


@bp.route("/new", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def new():
    if request.method == "POST":
        return line_editor.handle(EDITOR, None)
    return _render(quote_drafts.new_draft(current_user.account), None)


@bp.route("/<int:quote_id>/edit", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def edit(quote_id: int):
    quote = get_owned_or_404(Quote, quote_id)
    if request.method == "POST":
        return line_editor.handle(EDITOR, quote)
    if not _is_draft(quote):
        return line_editor.not_a_draft(EDITOR, quote)
    return _render(quote_drafts.draft_from_quote(quote, current_language()), quote)


# -- one quote ---------------------------------------------------------------------------------------


@bp.get("/<int:quote_id>")
@permission_required(Permission.MANAGE_PAYMENTS)
def detail(quote_id: int):
    quote = get_owned_or_404(Quote, quote_id)
    contact = db.session.get(Contact, quote.contact_id) if quote.contact_id else None
    company = db.session.get(Company, quote.company_id) if quote.company_id else None
    deal = db.session.get(Deal, quote.deal_id) if quote.deal_id else None
    payment = db.session.get(Payment, quote.payment_id) if quote.payment_id else None
    today = account_today(current_user.account)
    return render_page("quotes/detail.html", quote=quote, contact=contact, company=company, deal=deal,
                       payment=payment, today=today, label=quotes.quote_label, badge=quote_drafts.status_label,
                       day=line_editor.day, active_nav="payments", frequency_label=frequency_label,
                       public_url=quote_checkout.quote_url(quote) if quote.status != QuoteStatus.DRAFT.value else None,
                       sendable=quote.status == QuoteStatus.OPEN.value and not quote.is_expired(today))


def _act(quote_id: int, fn, done: str):
    get_owned_or_404(Quote, quote_id)
    QuoteActionForm()
    try:
        quote = fn(current_actor(), quote_id)
    except Conflict as exc:
        flash(exc.message, "error")
    else:
        flash(done.format(number=quotes.quote_label(quote)) if quote else done, "success")
    return htmx_redirect(url_for("quotes.detail", quote_id=quote_id))


@bp.post("/<int:quote_id>/finalize")
@permission_required(Permission.MANAGE_PAYMENTS)
def finalize(quote_id: int):
    return _act(quote_id, quote_drafts.finalize, _("Quote {number} finalized."))


@bp.post("/<int:quote_id>/send")
@permission_required(Permission.MANAGE_PAYMENTS)
def send(quote_id: int):
    """V4: email the quote (PDF attached, link to its public page) to its customer, in the customer's language."""
    return _act(quote_id, quote_sending.send_quote, _("Quote {number} sent."))


@bp.post("/<int:quote_id>/void")
@permission_required(Permission.MANAGE_PAYMENTS)
def void(quote_id: int):
    return _act(quote_id, quote_drafts.void, _("Quote {number} is void."))


@bp.post("/<int:quote_id>/delete")
@permission_required(Permission.MANAGE_PAYMENTS)
def delete(quote_id: int):
    get_owned_or_404(Quote, quote_id)
    return line_editor.delete_draft(EDITOR, quote_id)


@bp.get("/<int:quote_id>/pdf")
@permission_required(Permission.MANAGE_PAYMENTS)
def pdf(quote_id: int):
    quote = get_owned_or_404(Quote, quote_id)
    filename, content_type, data = quotes.render_quote(quote.id)
    return private_download(data, content_type, filename, "quote.pdf")
