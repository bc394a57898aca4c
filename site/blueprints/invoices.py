"""Invoices a merchant writes (V1): the list, the draft editor, the invoice's page, finalize, void, the PDF.

The editor works like the link editor: the draft lives in the form, every button ("Add line", "Remove", the
product library) posts the whole form back (plain POST or htmx) and re-renders it, and only "Save draft" writes.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, abort, flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import BooleanField, FormField, StringField

from kassa.authz import current_actor, get_owned_or_404, permission_required, scoped
from kassa.blueprints import line_editor
from kassa.blueprints.line_editor import EditorForm, LineRowForm
from kassa.clock import account_today
from kassa.errors import Conflict, Forbidden, ValidationFailed
from kassa.extensions import db
from kassa.forms import (
    MAX_PAGE,
    FlagField,
    Form,
    IsoDateField,
    NumberedRows,
    parse_id,
    parse_int,
)
from kassa.i18n import LANGUAGES, current_language
from kassa.models import (
    MANUAL_METHOD,
    Company,
    Contact,
    CreditNote,
    Invoice,
    InvoiceStatus,
    ManualMethod,
    Payment,
    Permission,
)
from kassa.money import Money
from kassa.order_summary import tax_label
from kassa.pagination import numbered_page
from kassa.rendering import htmx_redirect, private_download, render_page
from kassa.services.backoffice import saved_views
from kassa.services.checkout import invoice_checkout, invoice_sending
from kassa.services.exports import exports
from kassa.services.links.link_drafts import MAX_ITEMS
from kassa.services.payments import (
    credit_notes,
    invoice_drafts,
    invoice_filters,
    invoice_tax,
    invoices,
    manual_payments,
)
from kassa.services.payments.invoice_drafts import InvoiceDraft, LineDraft
from kassa.services.payments.manual_payments import ManualEntry

bp = Blueprint("invoices", __name__, url_prefix="/invoices")

class InvoiceEditorForm(EditorForm):
    """The whole editor as every button posts it (line_editor.EditorForm), with the due date and partial payments."""

    due_date = StringField(default="", filters=[str.strip])
    allow_partial = BooleanField(default=False)  # V2
    # A hostile form can't make us build thousands of rows: the first MAX_ITEMS + 10 by number.
    lines = NumberedRows(FormField(LineRowForm), digits=4, part="[a-z_]+", max_entries=MAX_ITEMS + 10)

    def draft(self) -> InvoiceDraft:
        return InvoiceDraft(
            customer_email=self.customer_email.data, customer_name=self.customer_name.data,
            company_name=self.company_name.data, language=self.language.data, currency=self.currency.data,
            issue_date=self.issue_date.data, due_date=self.due_date.data, notes=self.notes.data or "",
            terms=self.terms.data or "", allow_partial=bool(self.allow_partial.data), lines=[LineDraft(**row) for row in self.lines.data])


class VoidForm(Form):
    reason = StringField(default="", filters=[str.strip])


class ManualPaymentForm(Form):
    """V3: a payment received outside Kassa. Every value is checked by manual_payments (errors at the field)."""

    method = StringField(default=ManualMethod.BANK_TRANSFER.value, filters=[str.strip])
    date = IsoDateField()
    amount = StringField(default="", filters=[str.strip])
    reference = StringField(default="")

    def entry(self) -> ManualEntry:
        return ManualEntry(method=self.method.data or "", day=self.date.date, amount=self.amount.data or "",
                           reference=self.reference.data or "")


# -- the list ----------------------------------------------------------------------------------------


class InvoiceFilterForm(Form):
    """V7: the index's filters, read from the page address (GET: bookmarkable, and what a saved view stores).
    Checked by invoice_filters.check, each problem at its field."""

    status = StringField(default="")
    q = StringField(default="")
    due_from = StringField(default="")
    due_to = StringField(default="")
    amount_min = StringField(default="")
    amount_max = StringField(default="")
    view = StringField(default="")
    page = StringField(default="")


class InvoiceViewForm(Form):
    """V7: save the index's filters as a view (name, shared), or delete one (action "delete")."""

    name = StringField(default="")
    shared = FlagField()
    state_args = StringField(default="")
    action = StringField(default="")


VIEW_TAB = "invoices"


@bp.get("/")
@permission_required(Permission.MANAGE_PAYMENTS)
def index():
    """V1, V7: the invoices a merchant wrote, newest first, with their status (overdue read from the due date),
    filtered by status, customer, due date and amount; saved views of those filters; pages of 50."""
    form = InvoiceFilterForm(formdata=request.args)
    account = current_user.account
    views = saved_views.visible_views(account.id, current_user.id, VIEW_TAB)
    active_view = None
    view_id = parse_id(form.view.data or "")
    if view_id is not None:
        active_view = next((v for v in views if v.id == view_id), None)
        if active_view is None:
            abort(404)  # another account's view, or one not shared with this user
    given = {name: getattr(form, name).data for name in invoice_filters.FIELDS}
    filters = invoice_filters.read_filters(active_view.state if active_view and not any(given.values()) else given)
    checked, errors = invoice_filters.check(filters, account.default_currency, current_language())
    page = parse_int(form.page.data or "1", minimum=1, maximum=MAX_PAGE) or 1
    today = account_today(account)
    query = invoice_filters.apply(scoped(Invoice).where(Invoice.payment_id.is_(None)), checked, account.id, today)
    paged = numbered_page(query, (Invoice.id.desc(),), page)
    customers = line_editor.customers(paged.rows)
    args = {**filters.to_args(), **({"view": str(active_view.id)} if active_view else {})}
    return render_page(
        "invoices/index.html", "invoice_table", invoices=paged.rows,
        customers=customers, today=today, filters=filters, errors=errors, filtered=filters.active,
        page=paged.page, pages=paged.pages, total=paged.total, views=views, active_view=active_view,
        state_args=urlencode(filters.to_args()), currency=account.default_currency,
        label=invoices.invoice_label_or_draft, badge=invoice_drafts.status_label, active_nav="payments", day=line_editor.day,
        statuses=[("", _("All"))] + [(s, _status_name(s)) for s in invoice_filters.STATUSES],
        prev_href=url_for("invoices.index", page=paged.page - 1, **args) if paged.page > 1 else None,
        next_href=url_for("invoices.index", page=paged.page + 1, **args) if paged.page < paged.pages else None,
    )


class InvoiceExportForm(Form):
    """V7: export the index as it is filtered (the page's query string), in a format."""

    state_args = StringField(default="")
    file_format = StringField(default="csv")


@bp.post("/export")
@permission_required(Permission.MANAGE_PAYMENTS)
def export():
    """V7: the filtered invoices as CSV/XLSX/XLS, built in the background by the export machinery."""
    form = InvoiceExportForm()
    filters = invoice_filters.read_filters(dict(parse_qsl(form.state_args.data or "")[:50]))
    try:
        exports.request_export(current_actor(), kind="invoices", name=_("Invoices"),
                               file_format=form.file_format.data, language=current_language(),
                               params={"filters": filters.to_args(), "locale": current_language()})
    except ValidationFailed as exc:
        flash(exc.message if not exc.errors else next(iter(exc.errors.values())), "error")
        return htmx_redirect(url_for("invoices.index", **filters.to_args()))
    return htmx_redirect(url_for("exports.index", started=1))


@bp.post("/views")
@permission_required(Permission.MANAGE_PAYMENTS)
def save_view():
    """V7: the current filters saved under a name, private or shared with the account (P3's saved views)."""
    form = InvoiceViewForm()
    filters = invoice_filters.read_filters(dict(parse_qsl(form.state_args.data or "")[:50]))
    try:
        view = saved_views.save_view(current_actor(), tab=VIEW_TAB, name=form.name.data, shared=form.shared.data,
                                     state=filters.to_args())
    except ValidationFailed as exc:
        flash(exc.message, "error")
        return htmx_redirect(url_for("invoices.index", **filters.to_args()))
    flash(_("View “%(name)s” saved.", name=view.name), "success")
    return htmx_redirect(url_for("invoices.index", view=view.id))


@bp.post("/views/<int:view_id>/delete")
@permission_required(Permission.MANAGE_PAYMENTS)
def delete_view(view_id: int):
    view = saved_views.get_view(current_user.account_id, current_user.id, view_id)  # 404: not theirs to see
    if view.tab != VIEW_TAB:
        abort(404)
    try:
        saved_views.delete_view(current_actor(), view_id)
    except Forbidden as exc:
        flash(exc.message, "error")
        return htmx_redirect(url_for("invoices.index", view=view_id))
    flash(_("View deleted."), "success")
    return htmx_redirect(url_for("invoices.index"))


def _status_name(status: str) -> str:
    return {"overdue": _("Overdue"), "draft": _("Draft"), "open": _("Open"), "partially_paid": _("Partially paid"), "paid": _("Paid"),
            "void": _("Void"), "uncollectible": _("Uncollectible")}[status]


# -- the editor --------------------------------------------------------------------------------------


def _render(draft: InvoiceDraft, invoice: Invoice | None, *, errors=None, status=200, show_library=False,
            search="", focus=None):
    account = current_user.account
    rates = invoice_drafts.account_tax_rates(account.id)
    return render_page(
        "invoices/editor.html", "editor_region", status=status, draft=draft, invoice=invoice,
        errors=errors or {}, library=line_editor.library(search) if show_library else [], show_library=show_library,
        search=search, focus=focus, languages=list(LANGUAGES.items()), active_nav="payments",
        action_url=url_for("invoices.edit", invoice_id=invoice.id) if invoice else url_for("invoices.new"),
        discount_types=[("", _("No discount")), ("percent", _("Percentage off")),
                        ("amount", _("Amount off (%(currency)s)", currency=draft.currency))],
        tax_choices=[("", _("No tax"))] + [(str(rate.id), tax_label(rate)) for rate in rates.values()],
        totals=invoice_drafts.draft_totals(draft, account, current_language()), tax_label=tax_label,
    )


def _is_draft(invoice: Invoice) -> bool:
    return invoice.status == InvoiceStatus.DRAFT.value


EDITOR = line_editor.EditorKind(
    form=InvoiceEditorForm, drafts=invoice_drafts, render=_render, is_draft=_is_draft,
    detail_endpoint="invoices.detail", index_endpoint="invoices.index", id_arg="invoice_id",
    not_editable=lambda: _("This invoice is no longer a draft, so it can't be edited. Void it and write a new one "
                           "instead."),
    saved=lambda: _("Draft invoice saved. Finalize it to give it a number."),
)


@bp.route("/new", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def new():
    if request.method == "POST":
        return line_editor.handle(EDITOR, None)
    return _render(invoice_drafts.new_draft(current_user.account), None)


def _merchant_invoice_or_404(invoice_id: int) -> Invoice:
    invoice = get_owned_or_404(Invoice, invoice_id)
    if invoice.payment_id is not None:
        abort(404)  # a payment's own invoice lives on its payment (payments.invoice_pdf)
    return invoice


@bp.route("/<int:invoice_id>/edit", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def edit(invoice_id: int):
    invoice = _merchant_invoice_or_404(invoice_id)
    if request.method == "POST":
        return line_editor.handle(EDITOR, invoice)
    if not _is_draft(invoice):
        return line_editor.not_a_draft(EDITOR, invoice)
    return _render(invoice_drafts.draft_from_invoice(invoice, current_language()), invoice)


# -- one invoice -------------------------------------------------------------------------------------


@bp.get("/<int:invoice_id>")
@permission_required(Permission.MANAGE_PAYMENTS)
def detail(invoice_id: int):
    invoice = _merchant_invoice_or_404(invoice_id)
    contact = db.session.get(Contact, invoice.contact_id) if invoice.contact_id else None
    company = db.session.get(Company, invoice.company_id) if invoice.company_id else None
    # V2: the payments made for it (newest first), its pay page's address while something is due
    payments = list(db.session.scalars(scoped(Payment).where(Payment.invoice_id == invoice.id)
                                       .order_by(Payment.created_at.desc(), Payment.id.desc()).limit(50)))
    tax_rows = invoice_tax.tax_breakdown(invoice.lines)
    return render_page("invoices/detail.html", invoice=invoice, contact=contact, company=company,
                       tax_rows=tax_rows, net_minor=sum(line.amount_minor for line in invoice.lines),
                       tax_label=lambda row: tax_label(invoice_tax.line_rate(row) if hasattr(row, "tax_name")
                                                       else row),
                       credit_notes=credit_notes.invoice_credit_notes(invoice),
                       today=account_today(current_user.account), label=invoices.invoice_label_or_draft,
                       badge=invoice_drafts.status_label, day=line_editor.day, active_nav="payments", payments=payments,
                       sendable=invoice.status in invoice_sending.SENDABLE and invoice.amount_due_minor > 0,
                       pay_url=invoice_checkout.pay_url(invoice) if invoice_checkout.is_payable(invoice) else None,
                       sent_at=invoice.sent_at, recordable=invoice_checkout.is_payable(invoice),
                       can_change_manual=manual_payments.can_change(current_actor()), manual_method=MANUAL_METHOD,
                       manual_words=_manual_words())


@bp.post("/<int:invoice_id>/finalize")
@permission_required(Permission.MANAGE_PAYMENTS)
def finalize(invoice_id: int):
    _merchant_invoice_or_404(invoice_id)
    try:
        invoice = invoice_drafts.finalize(current_actor(), invoice_id)
    except Conflict as exc:
        flash(exc.message, "error")
    else:
        flash(_("Invoice %(number)s finalized.", number=invoices.invoice_label(invoice)), "success")
    return htmx_redirect(url_for("invoices.detail", invoice_id=invoice_id))


@bp.route("/<int:invoice_id>/void", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def void(invoice_id: int):
    """V1: void with a reason, after a confirmation step (this page, or a dialog over the invoice's page)."""
    invoice = _merchant_invoice_or_404(invoice_id)
    form = VoidForm()
    error = None
    if request.method == "POST":
        try:
            invoice_drafts.void(current_actor(), invoice_id, form.reason.data)
        except ValidationFailed as exc:
            error = exc.errors.get("reason") or exc.message
        except Conflict as exc:
            flash(exc.message, "error")
            return htmx_redirect(url_for("invoices.detail", invoice_id=invoice_id))
        else:
            flash(_("Invoice %(number)s is void.", number=invoices.invoice_label_or_draft(invoice)), "success")
            return htmx_redirect(url_for("invoices.detail", invoice_id=invoice_id))
    return render_page("invoices/void.html", "dialog", status=422 if error else 200, invoice=invoice,
                       reason=form.reason.data or "", error=error, label=invoices.invoice_label_or_draft,
                       active_nav="payments")


@bp.post("/<int:invoice_id>/send")
@permission_required(Permission.MANAGE_PAYMENTS)
def send(invoice_id: int):
    """V2: email the invoice (PDF attached, pay link) to its customer, in the customer's language."""
    _merchant_invoice_or_404(invoice_id)
    try:
        invoice = invoice_sending.send_invoice(current_actor(), invoice_id)
    except Conflict as exc:
        flash(exc.message, "error")
    else:
        contact = db.session.get(Contact, invoice.contact_id)
        flash(_("Invoice %(number)s sent to %(email)s.", number=invoices.invoice_label(invoice), email=contact.email),
              "success")
    return htmx_redirect(url_for("invoices.detail", invoice_id=invoice_id))


@bp.post("/<int:invoice_id>/uncollectible")
@permission_required(Permission.MANAGE_PAYMENTS)
def uncollectible(invoice_id: int):
    invoice = _merchant_invoice_or_404(invoice_id)
    try:
        invoice_drafts.mark_uncollectible(current_actor(), invoice_id)
    except Conflict as exc:
        flash(exc.message, "error")
    else:
        flash(_("Invoice %(number)s marked uncollectible.", number=invoices.invoice_label_or_draft(invoice)),
              "success")
    return htmx_redirect(url_for("invoices.detail", invoice_id=invoice_id))


@bp.post("/<int:invoice_id>/delete")
@permission_required(Permission.MANAGE_PAYMENTS)
def delete(invoice_id: int):
    _merchant_invoice_or_404(invoice_id)
    return line_editor.delete_draft(EDITOR, invoice_id)


@bp.get("/<int:invoice_id>/credit-notes/<int:note_id>/pdf")
@permission_required(Permission.MANAGE_PAYMENTS)
def credit_note_pdf(invoice_id: int, note_id: int):
    """V1: a credit note of this invoice, as a PDF (another invoice's or another account's note: 404)."""
    invoice = _merchant_invoice_or_404(invoice_id)
    note = get_owned_or_404(CreditNote, note_id)
    if note.invoice_id != invoice.id:
        abort(404)
    filename, content_type, data = credit_notes.render_credit_note(note.id)
    return private_download(data, content_type, filename, "credit-note.pdf")


@bp.get("/<int:invoice_id>/pdf")
@permission_required(Permission.MANAGE_PAYMENTS)
def pdf(invoice_id: int):
    invoice = _merchant_invoice_or_404(invoice_id)
    filename, content_type, data = invoices.render_invoice(invoice.id)
    return private_download(data, content_type, filename, "invoice.pdf")


# -- manual payments (V3) ----------------------------------------------------------------------------


def _manual_words() -> dict[str, str]:
    return {m.value: m.label for m in ManualMethod}


def _manual_dialog(invoice: Invoice, form: ManualPaymentForm, *, payment: Payment | None, errors: dict[str, str],
                   status: int):
    action = url_for("invoices.edit_manual_payment", payment_id=payment.id) if payment else \
        url_for("invoices.record_payment", invoice_id=invoice.id)
    return render_page("invoices/manual_payment.html", "dialog", status=status, invoice=invoice, payment=payment,
                       values=form.value_dict(), errors=errors, action=action, label=invoices.invoice_label_or_draft,
                       methods=list(_manual_words().items()), today=account_today(current_user.account).isoformat(),
                       active_nav="payments")


@bp.route("/<int:invoice_id>/payments/new", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def record_payment(invoice_id: int):
    """V3: record a payment received outside Kassa (bank transfer, cash, cheque, other) on the invoice."""
    invoice = _merchant_invoice_or_404(invoice_id)
    if request.method == "GET":
        form = ManualPaymentForm(formdata=None, date=account_today(current_user.account).isoformat(),
                                 amount=Money(invoice.amount_due_minor, invoice.currency).to_input(current_language()))
        return _manual_dialog(invoice, form, payment=None, errors={}, status=200)
    form = ManualPaymentForm()
    form.validate()
    errors = form.error_dict()
    if not errors:
        try:
            payment = manual_payments.record(current_actor(), invoice_id, form.entry(), current_language())
        except ValidationFailed as exc:
            errors = exc.errors or {"amount": exc.message}
        except Conflict as exc:
            flash(exc.message, "error")
            return htmx_redirect(url_for("invoices.detail", invoice_id=invoice_id))
        else:
            flash(_("Manual payment of %(amount)s recorded.",
                    amount=_money_text(payment.amount_minor, payment.currency)), "success")
            return htmx_redirect(url_for("invoices.detail", invoice_id=invoice_id))
    return _manual_dialog(invoice, form, payment=None, errors=errors, status=422)


def _money_text(amount_minor: int, currency: str) -> str:
    return Money(amount_minor, currency).format(current_language())


def _manual_or_404(payment_id: int) -> tuple[Payment, Invoice]:
    payment = get_owned_or_404(Payment, payment_id)
    if payment.method != MANUAL_METHOD or payment.invoice_id is None:
        abort(404)
    if not manual_payments.can_change(current_actor()):
        abort(403)  # V3: only a Super admin changes or deletes a manual payment
    return payment, _merchant_invoice_or_404(payment.invoice_id)


@bp.route("/manual-payments/<int:payment_id>/edit", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def edit_manual_payment(payment_id: int):
    """V3: a Super admin corrects a manual payment (audit entry)."""
    payment, invoice = _manual_or_404(payment_id)
    if request.method == "GET":
        form = ManualPaymentForm(formdata=None, method=payment.manual_method,
                                 date=manual_payments.local_date(payment, current_user.account).isoformat(),
                                 amount=_amount_input(payment), reference=payment.manual_reference or "")
        return _manual_dialog(invoice, form, payment=payment, errors={}, status=200)
    form = ManualPaymentForm()
    form.validate()
    errors = form.error_dict()
    if not errors:
        try:
            manual_payments.edit(current_actor(), payment_id, form.entry(), current_language())
        except ValidationFailed as exc:
            errors = exc.errors or {"amount": exc.message}
        except Forbidden:
            abort(403)
        except Conflict as exc:
            flash(exc.message, "error")
            return htmx_redirect(url_for("invoices.detail", invoice_id=invoice.id))
        else:
            flash(_("Manual payment changed."), "success")
            return htmx_redirect(url_for("invoices.detail", invoice_id=invoice.id))
    return _manual_dialog(invoice, form, payment=payment, errors=errors, status=422)


def _amount_input(payment: Payment) -> str:
    return Money(payment.amount_minor, payment.currency).to_input(current_language())


@bp.route("/manual-payments/<int:payment_id>/delete", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def delete_manual_payment(payment_id: int):
    """V3: a Super admin deletes a manual payment recorded by mistake, after a confirmation (audit entry)."""
    payment, invoice = _manual_or_404(payment_id)
    if request.method == "POST":
        try:
            manual_payments.delete(current_actor(), payment_id)
        except Forbidden:
            abort(403)
        except Conflict as exc:
            flash(exc.message, "error")
        else:
            flash(_("Manual payment deleted. The invoice owes its amount again."), "success")
        return htmx_redirect(url_for("invoices.detail", invoice_id=invoice.id))
    return render_page("invoices/manual_payment_delete.html", "dialog", invoice=invoice, payment=payment,
                       label=invoices.invoice_label_or_draft, active_nav="payments")
