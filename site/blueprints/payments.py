"""Commerce → Payments: the index with filters and saved views, and each payment's panel (P1–P7)."""

from __future__ import annotations

from functools import partial

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from jinja2_fragments.flask import render_block
from werkzeug.datastructures import MultiDict
from wtforms import Form as RowForm
from wtforms import FormField, StringField

from kassa.authz import current_actor, get_owned_or_404, permission_required, visible_modes
from kassa.clock import account_today
from kassa.errors import KassaError, TooManyRequests, ValidationFailed
from kassa.extensions import db
from kassa.forms import FlagField, Form, MultiValueField, NumberedRows, is_ascii_digits, parse_id
from kassa.i18n import current_language
from kassa.models import DisplayStatus, Invoice, Payment, Permission
from kassa.money import Money
from kassa.rendering import htmx_redirect, htmx_update, is_htmx, private_download, render_page
from kassa.services.backoffice import associations, filter_builder, payment_details, saved_views
from kassa.services.backoffice.payment_filters import FilterContext, FilterError
from kassa.services.backoffice.payment_index import (
    COLUMNS,
    DATE_PRESETS,
    SORTS,
    IndexState,
    account_has_payments,
    chip_link_ids,
    chips,
    fetch_page,
    link_names,
    status_options,
)
from kassa.services.payments import invoices, mandates, receipts, refunds

bp = Blueprint("payments", __name__, url_prefix="/payments")
TAB = "payments"


def filter_context() -> FilterContext:
    account = current_user.account
    return FilterContext(timezone=account.timezone, today=account_today(account))


def _state_args() -> MultiDict:
    """The request's view state: its query string without the saved view's id."""
    args = MultiDict(request.args)
    args.pop("view", None)
    return args


def _active_view(tab: str, default):
    """The saved view on screen: `?view=<id>`, or the user's default one on a bare URL (no query at all).

    `?view=` (empty) is the plain tab even when a default view exists; a URL with only filters, sort or a page
    cursor is never taken over by the default view either.
    """
    if not request.args:
        return default
    wanted = parse_id(request.args.get("view", ""))
    if wanted is None:
        return None
    try:
        view = saved_views.get_view(current_user.account_id, current_user.id, wanted)
    except KassaError:
        abort(404)
    if view.tab != tab:
        abort(404)
    return view


def index_url(state: IndexState, endpoint: str | None = None, *, view=None, **extra) -> str:
    """The index URL for `state`; inside a saved view (`view`, a SavedView or id) the view stays selected."""
    args = state.to_args(page=True)
    view_id = getattr(view, "id", view)
    if view_id:
        args["view"] = str(view_id)
    for key, value in extra.items():
        if value is not None:
            args[key] = value
    return url_for(endpoint or request.endpoint, **args.to_dict(flat=False))


def plain_tab_url(tab: str, defaults: dict) -> str:
    """The tab without any saved view: `?view=` keeps a user's default view (`defaults`, by tab) from taking over."""
    return _tab_url(tab, **({"view": ""} if tab in defaults else {}))


TAB_OPTIONS = {
    "payments": lambda: status_options(),
    "disputes": lambda: [(s.value, s.label) for s in DisplayStatus if s.is_dispute],
}
TAB_FILTERS = {"payments": None, "disputes": lambda: Payment.dispute_created_at.is_not(None)}


def render_index(tab: str):
    """P1–P3 and D3: one index, two tabs; the Disputes tab is the same machinery with its own columns."""
    views, defaults = saved_views.index_views(current_user.account_id, current_user.id, tab)
    default_view = defaults.get(tab)
    active_view = _active_view(tab, default_view)
    args = _state_args()
    error = None
    links = link_names(current_user.account_id)
    extra = TAB_FILTERS[tab]() if TAB_FILTERS[tab] else None
    try:
        # The view's own URL shows what it saved; with more in the query string (a page, another sort, a
        # changed filter) the query string holds the whole state and the view stays selected around it.
        state = IndexState.from_saved(active_view.state, tab) if active_view and not args else \
            IndexState.from_args(args, tab)
        page = fetch_page(current_user.account_id, visible_modes(), state, filter_context(), extra, links)
    except FilterError as exc:
        state, page, error = IndexState.from_args(MultiDict(), tab), None, exc.message
    # P7: with no payments at all, the setup page. A page with rows answers that already (one query less).
    if not (page and page.rows) and not account_has_payments(current_user.account_id):
        return redirect(url_for("payments.setup"))
    view_args = {"view": active_view.id} if active_view else {}
    named = {**links, **link_names(current_user.account_id, chip_link_ids(state) - set(links))}
    context = dict(
        state=state, page=page, error=error, views=views, active_view=active_view, chips=chips(state, named),
        link_options=links,
        columns=COLUMNS, default_columns=state.default_columns, date_presets=DATE_PRESETS, sorts=SORTS,
        statuses=TAB_OPTIONS[tab](), index_url=partial(index_url, view=active_view), view_args=view_args,
        search_query=state.q, active_nav="disputes" if tab == "disputes" else "payments", tab=tab, default_view=default_view,
        tab_urls={name: plain_tab_url(name, defaults) for name in TAB_OPTIONS},
        reset_url=_tab_url(tab, **view_args) if active_view else plain_tab_url(tab, defaults),
        filters_href=url_for("payments.filters", tab=tab, **view_args, **state.to_args().to_dict(flat=False)),
    )
    # A chip's × (B4) swaps the whole main part, filters form included, so it gets the page; the rest the results.
    block = None if request.headers.get("HX-Target") == "main" else "results"
    return render_page("payments/index.html", block, status=400 if error else 200, **context)


@bp.get("/")
@permission_required(Permission.MANAGE_PAYMENTS)
def index():
    return render_index("payments")


@bp.get("/disputes")
@permission_required(Permission.MANAGE_PAYMENTS)
def disputes_tab():
    return render_index("disputes")


@bp.get("/setup")
@permission_required(Permission.MANAGE_PAYMENTS)
def setup():
    """P7: with no payments yet, the index sends the merchant here."""
    return render_page("payments/setup.html", active_nav="payments")


# -- saved views ------------------------------------------------------------------------------------


def _parse_qs(text: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(text, keep_blank_values=False)[:200]


class SavedViewForm(Form):
    """P4: save, change or clear a saved view. `state_args` is the index's query string as the page had it;
    a tab other than the two there are is the Payments tab."""

    tab = StringField(default=TAB, filters=[lambda tab: tab if tab in TAB_OPTIONS else TAB])
    name = StringField(default="")
    shared = FlagField()
    state_args = StringField(default="")
    action = StringField(default="")

    def state(self, tab: str) -> IndexState:
        """The filters, sort and columns to save (FilterError when they don't read)."""
        return IndexState.from_args(MultiDict(_parse_qs(self.state_args.data) if self.state_args.data else []), tab)


def _tab_url(tab: str, **values) -> str:
    return url_for("payments.disputes_tab" if tab == "disputes" else "payments.index", **values)


@bp.post("/views")
@permission_required(Permission.MANAGE_PAYMENTS)
def save_view():
    form = SavedViewForm()
    tab = form.tab.data
    try:
        state = form.state(tab)
        view = saved_views.save_view(current_actor(), tab=tab, name=form.name.data, shared=form.shared.data,
                                     state=state.saved_state())
    except (ValidationFailed, FilterError) as exc:
        flash(exc.message, "error")
        return htmx_redirect(_tab_url(tab))
    flash(_("View “%(name)s” saved.", name=view.name), "success")
    return htmx_redirect(_tab_url(tab, view=view.id))


@bp.post("/views/<int:view_id>")
@permission_required(Permission.MANAGE_PAYMENTS)
def change_view(view_id: int):
    form = SavedViewForm()
    action = form.action.data
    actor = current_actor()
    tab = saved_views.get_view(current_user.account_id, current_user.id, view_id).tab  # 404 before anything else
    try:
        if action == "delete":
            saved_views.delete_view(actor, view_id)
            flash(_("View deleted."), "success")
            return htmx_redirect(_tab_url(tab))
        if action == "default":
            saved_views.set_default(actor, tab, view_id)
            flash(_("This view now opens first."), "success")
        elif action == "update":
            saved_views.update_view(actor, view_id, state=form.state(tab).saved_state())
            flash(_("View updated with the current filters."), "success")
        elif action == "rename":
            saved_views.update_view(actor, view_id, name=form.name.data, shared=form.shared.data)
            flash(_("View renamed."), "success")
        else:
            abort(400)
    except (ValidationFailed, FilterError) as exc:
        flash(exc.message, "error")
    return htmx_redirect(_tab_url(tab, view=view_id))


@bp.post("/views/default/clear")
@permission_required(Permission.MANAGE_PAYMENTS)
def clear_default_view():
    tab = SavedViewForm().tab.data
    saved_views.set_default(current_actor(), tab, None)
    flash(_("The tab opens without a saved view again."), "success")
    return htmx_redirect(_tab_url(tab))


# -- advanced filters panel -------------------------------------------------------------------------

CONDITION_PARTS = "prop|op|v1|v2|vals"
CONDITION_NUMBER = "(?:0|[1-9][0-9]?)"


class ConditionForm(RowForm):
    """One condition of the panel, posted as `c-<group>-<row>-<part>`; values are cut to 200 characters."""

    prop = StringField(default="", filters=[lambda text: text[:200]])
    op = StringField(default="", filters=[lambda text: text[:200]])
    v1 = StringField(default="", filters=[lambda text: text[:200]])
    v2 = StringField(default="", filters=[lambda text: text[:200]])
    vals = MultiValueField(limit=50)


class FilterPanelForm(Form):
    """P3: the groups of conditions (at most 10 groups, ORed; conditions in a group ANDed), the button pressed
    (`action`) and the index's query string to go back to (`base_args`)."""

    c = NumberedRows(NumberedRows(FormField(ConditionForm), digits=2, part=CONDITION_PARTS),
                     digits=2, part=f"{CONDITION_NUMBER}-(?:{CONDITION_PARTS})", max_entries=10)
    action = StringField(default="apply")
    base_args = StringField(default="")
    tab = StringField(default="")



@bp.route("/filters", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def filters():
    """P3: the side panel to build AND/OR filter groups; "Apply" goes back to the index with them."""
    # The tab comes in the query string (opening the panel) or with the posted panel (applying it).
    asked = request.args.get("tab") or (FilterPanelForm().tab.data if request.method == "POST" else None)
    tab = asked if asked in TAB_OPTIONS else TAB
    endpoint = "payments.disputes_tab" if tab == "disputes" else "payments.index"
    base_args = MultiDict(request.args)
    base_args.pop("tab", None)
    if request.method == "GET":
        try:
            state = IndexState.from_args(base_args, tab)
        except FilterError:
            state = IndexState.from_args(MultiDict(), tab)
        rows = filter_builder.rows_from_filter(state.advanced)
        return render_page("payments/filters.html", "panel", rows=rows, errors={}, base_args=base_args, tab=tab,
                           endpoint=endpoint, props=filter_builder.property_choices(), active_nav="payments")
    form = FilterPanelForm()
    action = form.action.data
    rows, errors, parsed = filter_builder.apply_action(filter_builder.rows_from_form(form.c.data), action)
    base_args = MultiDict(_parse_qs(form.base_args.data))
    if action in ("apply", "clear") and not errors:
        try:
            state = IndexState.from_args(base_args, tab)
        except FilterError:
            state = IndexState.from_args(MultiDict(), tab)
        state.advanced = parsed
        view = base_args.get("view", "")  # filters changed inside a saved view keep the view selected
        return htmx_redirect(index_url(state.first_page(), endpoint, view=view if parse_id(view) else None))
    return render_page("payments/filters.html", "panel", status=400 if errors else 200, rows=rows, errors=errors,
                       base_args=base_args, tab=tab, endpoint=endpoint, props=filter_builder.property_choices(),
                       active_nav="payments")


# -- one payment ------------------------------------------------------------------------------------


@bp.get("/<int:payment_id>")
@permission_required(Permission.MANAGE_PAYMENTS)
def detail(payment_id: int):
    payment = get_owned_or_404(Payment, payment_id)
    context = payment_details.panel_context(payment, current_language())
    return render_page("payments/detail.html", "panel", active_nav="payments", **context)


def _done(payment: Payment, message: str, kind: str = "success"):
    """After an action in a dialog: htmx refreshes the open panel; without JavaScript, back to the page."""
    if is_htmx():
        db.session.expire_all()
        context = payment_details.panel_context(db.session.get(Payment, payment.id), current_language())
        html = render_block("payments/detail.html", "panel", active_nav="payments", **context)
        response = htmx_update("#payment-panel", html, message=message, kind=kind, also=("kassa:payments-changed",))
        # Replace the open panel itself: it is in #panel-slot over the index, or the body of /payments/<id>.
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    flash(message, kind)
    return redirect(url_for("payments.detail", payment_id=payment.id), code=303)


def _dialog(template: str, payment: Payment, status: int = 200, **context):
    return render_page(template, "dialog", status=status, payment=payment, active_nav="payments",
                       back_url=url_for("payments.detail", payment_id=payment.id), **context)


class RefundForm(Form):
    """P5: a refund as typed (the amount in the account's locale); `key` makes submitting the same dialog
    twice one refund (H13). The refunds service checks every field."""

    amount = StringField(default="")
    reason = StringField(default="")
    note = StringField(default="")
    key = StringField(default="")


@bp.route("/<int:payment_id>/refund", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def refund(payment_id: int):
    payment = get_owned_or_404(Payment, payment_id)
    check = refunds.refundable(payment, current_user.account)
    form = RefundForm()
    values = {"amount": check.remaining.to_input(current_language()), "reason": "requested_by_customer", "note": "",
              "key": form.key.data or refunds.new_refund_key()}
    errors: dict[str, str] = {}
    status = 422
    if request.method == "POST":
        values.update(amount=form.amount.data, reason=form.reason.data, note=form.note.data)
        try:
            made = refunds.refund_payment(current_actor(), payment.id, amount_text=values["amount"],
                                          reason=values["reason"], note=values["note"], locale=current_language(),
                                          idempotency_key=values["key"])
        except ValidationFailed as exc:
            errors = exc.errors or {"amount": exc.message}
        except refunds.RefundKeyReused as exc:  # H13: 409, and a fresh key so that submitting again refunds
            errors, status, values["key"] = {"amount": exc.message}, exc.status_code, refunds.new_refund_key()
        except KassaError as exc:
            errors = {"amount": exc.message}
        else:
            return _done(payment, _("Refund of %(amount)s submitted. It shows as “Refund processing” until the "
                                    "bank confirms it.", amount=_money(made)))
    context = payment_details.refund_dialog_context(payment, check)
    return _dialog("payments/refund.html", payment, status=status if errors else 200, values=values, errors=errors,
                   **context)


def _money(refund) -> str:
    return Money(refund.amount_minor, refund.currency).format(current_language())


class SendReceiptForm(Form):
    """P5: who gets a copy of which receipt (the receipts service reads and checks both)."""

    recipients = StringField(default="")
    receipt = StringField(default="")


@bp.route("/<int:payment_id>/send-receipt", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def send_receipt(payment_id: int):
    payment = get_owned_or_404(Payment, payment_id)
    choices = receipts.receipt_choices(payment)
    values = {"recipients": payment.buyer_email, "receipt": str(choices[0].id) if choices else ""}
    errors: dict[str, str] = {}
    status = 422
    if request.method == "POST":
        form = SendReceiptForm()
        values = {"recipients": form.recipients.data, "receipt": form.receipt.data}
        try:
            sent = receipts.send_receipt(current_actor(), payment.id, parse_id(values["receipt"]) or 0,
                                         values["recipients"])
        except ValidationFailed as exc:
            errors = exc.errors or {"recipients": exc.message}
        except TooManyRequests as exc:
            # H13: said at the field, with what was typed kept; 429, except to htmx, which swaps only 2xx/422.
            errors, status = {"recipients": exc.message}, 422 if is_htmx() else 429
        else:
            return _done(payment, _("Receipt sent to %(to)s.", to=", ".join(sent)))
    return _dialog("payments/send_receipt.html", payment, status=status if errors else 200, values=values,
                   errors=errors, choices=choices, receipt_number=receipts.receipt_number)


@bp.route("/<int:payment_id>/authorization", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def authorization(payment_id: int):
    payment = get_owned_or_404(Payment, payment_id)
    if request.method == "POST":
        try:
            to = mandates.send_authorization_copy(current_actor(), payment.id)
        except KassaError as exc:
            return _done(payment, exc.message, "error")
        return _done(payment, _("The authorization is on its way to %(email)s.", email=to))
    return _dialog("payments/authorization.html", payment, email=current_user.email)


# -- associations -----------------------------------------------------------------------------------


class AssociationForm(Form):
    """P6: add a record (`record_id`, with an optional label), change the label, or remove the association."""

    action = StringField(default="set")
    record_id = StringField(default="", filters=[str.strip])
    label = StringField(default="")


@bp.route("/<int:payment_id>/associations/<kind>", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def association(payment_id: int, kind: str):
    """P6: + Add (search and pick), Remove, or edit the label of one association."""
    payment = get_owned_or_404(Payment, payment_id)
    if kind not in associations.KINDS:
        abort(404)
    if request.method == "GET":
        results = associations.search(current_user.account_id, payment.mode, kind, request.args.get("q", ""))
        return _dialog("payments/association.html", payment, kind=kind, results=results,
                       q=request.args.get("q", ""), errors={})
    form = AssociationForm()
    action = form.action.data
    try:
        if action == "remove":
            associations.set_association(current_actor(), payment.id, kind, None)
            message = _("Association removed.")
        elif action == "label":
            associations.set_label(current_actor(), payment.id, kind, form.label.data)
            message = _("Label saved.")
        else:
            raw_id = form.record_id.data
            record_id = parse_id(raw_id)
            if record_id is None and is_ascii_digits(raw_id):
                abort(404)  # a number no row can have is an unknown record, like any other
            if record_id is None:
                raise ValidationFailed(_("Choose a record."), field="record_id")
            associations.set_association(current_actor(), payment.id, kind, record_id, form.label.data)
            message = _("Association saved.")
    except ValidationFailed as exc:
        return _done(payment, exc.message, "error")
    return _done(payment, message)


# -- invoices ---------------------------------------------------------------------------------------


@bp.get("/invoices/<int:invoice_id>.pdf")
@permission_required(Permission.MANAGE_PAYMENTS)
def invoice_pdf(invoice_id: int):
    """R1, B6: the payment's invoice as the buyer got it (their language), from the payment panel. Another
    account's invoice is a 404, like any other object."""
    invoice = get_owned_or_404(Invoice, invoice_id)
    filename, content_type, data = invoices.render_invoice(invoice.id)
    return private_download(data, content_type, filename, "invoice.pdf")
