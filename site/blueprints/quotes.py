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
from kassa.blueprints.invoices import LineRowForm
from kassa.clock import account_today
from kassa.errors import Conflict, ValidationFailed
from kassa.extensions import db
from kassa.forms import MAX_PAGE, Form, MultiValueField, NumberedRows, arg_int, parse_id, parse_int
from kassa.i18n import LANGUAGES, current_language
from kassa.models import (
    BillingFrequency,
    Company,
    Contact,
    Deal,
    Payment,
    Permission,
    Product,
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
from kassa.timefmt import DATE, format_when

bp = Blueprint("quotes", __name__, url_prefix="/quotes")

LIBRARY_PAGE = 50
# "expired" is a filter, not a state: open quotes past their expiry date
STATUS_FILTERS = [s.value for s in QuoteStatus] + ["expired"]


class QuoteLineRowForm(LineRowForm):
    """The invoice editor's line, with its billing frequency (V4)."""

    frequency = StringField(default=BillingFrequency.ONE_TIME.value, filters=[str.strip])


class QuoteEditorForm(Form):
    customer_email = StringField(default="", filters=[str.strip])
    customer_name = StringField(default="", filters=[str.strip])
    company_name = StringField(default="", filters=[str.strip])
    language = StringField(default="en", filters=[str.strip])
    currency = StringField(default="USD", filters=[lambda v: (v or "").strip().upper()])
    issue_date = StringField(default="", filters=[str.strip])
    expiry_date = StringField(default="", filters=[str.strip])
    notes = StringField(default="")
    terms = StringField(default="")
    deal_id = StringField(default="", filters=[parse_id])
    accept_stage_id = StringField(default="", filters=[parse_id])
    lines = NumberedRows(FormField(QuoteLineRowForm), digits=4, part="[a-z_]+", max_entries=MAX_ITEMS + 10)
    action = StringField(default="save")
    library_search = StringField(default="", filters=[str.strip])
    library_product = MultiValueField()

    def draft(self) -> QuoteDraft:
        return QuoteDraft(
            customer_email=self.customer_email.data, customer_name=self.customer_name.data,
            company_name=self.company_name.data, language=self.language.data, currency=self.currency.data,
            issue_date=self.issue_date.data, expiry_date=self.expiry_date.data, notes=self.notes.data or "",
            terms=self.terms.data or "", deal_id=self.deal_id.data, accept_stage_id=self.accept_stage_id.data,
            lines=[QuoteLineDraft(**row) for row in self.lines.data])


class QuoteActionForm(Form):
    """finalize, send, void, delete: a button with its CSRF token."""


def _day(value) -> str:
    return format_when(value, DATE, locale=current_language(), timezone=None) if value else "—"


def _status_name(status: str) -> str:
    return {"draft": _("Draft"), "open": _("Open"), "accepted": _("Accepted"), "paid": _("Paid"),
            "declined": _("Declined"), "void": _("Void"), "expired": _("Expired")}[status]


def _customers(rows: list[Quote]) -> dict[int, str]:
    contact_ids = {row.contact_id for row in rows if row.contact_id}
    company_ids = {row.company_id for row in rows if row.company_id}
    contacts = {c.id: c for c in db.session.scalars(scoped(Contact).where(Contact.id.in_(contact_ids)))} \
        if contact_ids else {}
    companies = {c.id: c for c in db.session.scalars(scoped(Company).where(Company.id.in_(company_ids)))} \
        if company_ids else {}
    result = {}
    for row in rows:
        parts = [contacts[row.contact_id].display_name] if row.contact_id in contacts else []
        if row.company_id in companies:
            parts.append(companies[row.company_id].name)
        result[row.id] = " · ".join(parts) or "—"
    return result


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
        "quotes/index.html", "quote_table", quotes=paged.rows, customers=_customers(paged.rows), today=today,
        status_filter=status, page=paged.page, pages=paged.pages, total=paged.total, label=quotes.quote_label,
        badge=quote_drafts.status_label, active_nav="payments", day=_day,
        statuses=[("", _("All"))] + [(s, _status_name(s)) for s in STATUS_FILTERS],
        prev_href=url_for("quotes.index", page=paged.page - 1, **args) if paged.page > 1 else None,
        next_href=url_for("quotes.index", page=paged.page + 1, **args) if paged.page < paged.pages else None,
    )


# -- the editor --------------------------------------------------------------------------------------


def _library(search: str) -> list[Product]:
    query = scoped(Product).where(Product.archived_at.is_(None))
    if search:
        needle = search.lower()
        query = query.where(db.func.lower(Product.name).contains(needle, autoescape=True))
    return list(db.session.scalars(query.order_by(Product.name).limit(LIBRARY_PAGE)))


def _render(draft: QuoteDraft, *, quote: Quote | None, errors=None, status=200, show_library=False, search="",
            focus=None):
    deals = quote_drafts.deals_for(current_user.account_id)
    stages = [(str(stage.id), f"{pipeline.name} → {stage.name}")
              for pipeline in pipelines_for(current_user.account_id) for stage in pipeline.stages]
    return render_page(
        "quotes/editor.html", "editor_region", status=status, draft=draft, quote=quote, errors=errors or {},
        library=_library(search) if show_library else [], show_library=show_library, search=search, focus=focus,
        languages=list(LANGUAGES.items()), active_nav="payments",
        action_url=url_for("quotes.edit", quote_id=quote.id) if quote else url_for("quotes.new"),
        discount_types=[("", _("No discount")), ("percent", _("Percentage off")),
                        ("amount", _("Amount off (%(currency)s)", currency=draft.currency))],
        frequencies=[(f.value, frequency_label(f)) for f in BillingFrequency],
        deals=[("", _("No deal"))] + [(str(d.id), d.name) for d in deals],
        stages=[("", _("Leave the deal where it is")), *stages],
    )


def _index(action: str) -> int:
    _name, _sep, number = action.partition(":")
    index = parse_int(number, minimum=0)
    return -1 if index is None else index


def _handle(quote: Quote | None):
    locale = current_language()
    form = QuoteEditorForm()
    draft = form.draft()
    action = form.action.data
    focus = None
    if quote is not None and quote.status != QuoteStatus.DRAFT.value:
        flash(_("This quote was sent, so it can't be edited. Void it and write a new one instead."), "error")
        return htmx_redirect(url_for("quotes.detail", quote_id=quote.id))
    if action == "add_line":
        draft = quote_drafts.add_line(draft)
        focus = f"f-lines-{len(draft.lines) - 1}-description"
    elif action.startswith("remove:"):
        draft = quote_drafts.remove_line(draft, _index(action))
    elif action in ("open_library", "search_library"):
        return _render(draft, quote=quote, show_library=True, search=form.library_search.data)
    elif action == "add_products":
        ids = [i for i in map(parse_id, form.library_product.data) if i is not None]
        chosen = list(db.session.scalars(scoped(Product).where(Product.id.in_(ids)).order_by(Product.name))) \
            if ids else []
        draft = quote_drafts.add_products(draft, chosen, locale)
    elif action == "save":
        try:
            saved = quote_drafts.save_draft(current_actor(), quote.id if quote else None, draft, locale)
        except ValidationFailed as exc:
            return _render(draft, quote=quote, errors=exc.errors, status=422)
        flash(_("Draft quote saved. Finalize it to give it a number and send it."), "success")
        return htmx_redirect(url_for("quotes.detail", quote_id=saved.id))
    return _render(draft, quote=quote, focus=focus)


@bp.route("/new", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def new():
    if request.method == "POST":
        return _handle(None)
    return _render(quote_drafts.new_draft(current_user.account), quote=None)


@bp.route("/<int:quote_id>/edit", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def edit(quote_id: int):
    quote = get_owned_or_404(Quote, quote_id)
    if request.method == "POST":
        return _handle(quote)
    if quote.status != QuoteStatus.DRAFT.value:
        flash(_("This quote was sent, so it can't be edited. Void it and write a new one instead."), "error")
        return htmx_redirect(url_for("quotes.detail", quote_id=quote.id))
    return _render(quote_drafts.draft_from_quote(quote, current_language()), quote=quote)


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
                       day=_day, active_nav="payments", frequency_label=frequency_label,
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
    try:
        quote_drafts.delete_draft(current_actor(), quote_id)
    except Conflict as exc:
        flash(exc.message, "error")
        return htmx_redirect(url_for("quotes.detail", quote_id=quote_id))
    flash(_("Draft deleted."), "success")
    return htmx_redirect(url_for("quotes.index"))


@bp.get("/<int:quote_id>/pdf")
@permission_required(Permission.MANAGE_PAYMENTS)
def pdf(quote_id: int):
    quote = get_owned_or_404(Quote, quote_id)
    filename, content_type, data = quotes.render_quote(quote.id)
    return private_download(data, content_type, filename, "quote.pdf")
