"""Exports (X2, X3): export the payments view, follow the progress, download; in-app notifications."""

from __future__ import annotations

from urllib.parse import parse_qsl

from flask import Blueprint, abort, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from wtforms import IntegerField, SelectMultipleField, StringField
from wtforms.validators import NumberRange, Optional

from kassa.authz import current_actor, get_owned_or_404, permission_required, visible_modes
from kassa.clock import now
from kassa.errors import KassaError, ValidationFailed
from kassa.extensions import db
from kassa.forms import MAX_ID, FlagField, Form, safe_filename
from kassa.i18n import LANGUAGES, current_language
from kassa.models import Export, Permission
from kassa.rendering import htmx_redirect, render_page
from kassa.services.backoffice.payment_filters import FilterError
from kassa.services.backoffice.payment_index import IndexState
from kassa.services.exports import exports
from kassa.services.exports.export_sources import EXPORT_COLUMNS
from kassa.services.exports.export_writers import CONTENT_TYPES
from kassa.services.platform import notifications as notifications_service

bp = Blueprint("exports", __name__, url_prefix="/exports")


@bp.get("/")
@permission_required(Permission.MANAGE_PAYMENTS)
def index():
    rows = list(db.session.scalars(select(Export).where(Export.account_id == current_user.account_id)
                                   .order_by(Export.created_at.desc(), Export.id.desc()).limit(50)))
    running = any(row.status in ("queued", "running") for row in rows)
    return render_page("exports/index.html", "export_table", rows=rows, running=running, current_time=now(),
                       active_nav="reports")


TABS = ("payments", "disputes")


class ExportViewForm(Form):
    """The view being exported (X3): its tab and its filters and sort as a query string."""

    tab = StringField(default="payments", filters=[lambda tab: tab if tab in TABS else "payments"])
    state = StringField(default="")


class PaymentsExportForm(ExportViewForm):
    """X3: the Export dialog. Name, format and language are checked by the export service; columns the
    table doesn't have are left out."""

    name = StringField(default="")
    file_format = StringField(default="")
    language = StringField(default="")
    columns = SelectMultipleField(choices=list(EXPORT_COLUMNS),
                                  filters=[lambda keys: [key for key in keys or () if key in EXPORT_COLUMNS]])
    associations = FlagField()
    association_limit = StringField(default="1000")


@bp.route("/payments", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def payments():
    """X3: Payments → Export: the rows of the current view (filters and sort), not just the page."""
    # The index's Export button names the view in its query string; the dialog posts it back with the rest.
    form = PaymentsExportForm() if request.method == "POST" else ExportViewForm(request.args)
    tab, state_args = form.tab.data, form.state.data
    try:
        state = IndexState.from_args(MultiDict(parse_qsl(state_args)), tab)
    except FilterError:
        abort(400)
    values = {"name": _("Payments export"), "file_format": "xlsx", "language": current_language(),
              "columns": list(state.columns), "associations": False, "association_limit": "1000"}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = {key: form[key].data for key in values}
        values["columns"] = values["columns"] or list(state.columns)
        try:
            exports.request_export(current_actor(), kind="payments", name=values["name"],
                                   file_format=values["file_format"], language=values["language"],
                                   params={"state": state_args, "tab": tab, "columns": values["columns"],
                                           "associations": values["associations"],
                                           "association_limit": values["association_limit"],
                                           "modes": list(visible_modes())})
        except ValidationFailed as exc:
            errors = exc.errors or {"name": exc.message}
        else:
            return htmx_redirect(url_for("exports.index", started=1))
    return render_page("exports/payments.html", "dialog", status=422 if errors else 200, values=values,
                       errors=errors, columns=EXPORT_COLUMNS, languages=LANGUAGES, state_args=state_args, tab=tab,
                       back_url=_index_url(tab, state_args), active_nav="payments")


def _index_url(tab: str, state_args: str) -> str:
    base = url_for("payments.disputes_tab" if tab == "disputes" else "payments.index")
    return f"{base}?{state_args}" if state_args else base


@bp.get("/<int:export_id>/download")
@permission_required(Permission.MANAGE_PAYMENTS)
def download(export_id: int):
    get_owned_or_404(Export, export_id)
    export, path = exports.downloadable(current_user.account_id, export_id)
    filename = f"{safe_filename(export.name, 'export')}.{export.file_format}"
    return send_file(path, mimetype=CONTENT_TYPES[export.file_format], as_attachment=True, download_name=filename,
                     max_age=0)


@bp.post("/<int:export_id>/cancel")
@permission_required(Permission.MANAGE_PAYMENTS)
def cancel(export_id: int):
    get_owned_or_404(Export, export_id)
    try:
        exports.cancel_export(current_actor(), export_id)
    except KassaError as exc:
        from flask import flash

        flash(exc.message, "error")
    return htmx_redirect(url_for("exports.index"))


class MarkReadForm(Form):
    """Mark notifications read, up to the newest one the page showed (M5)."""

    up_to = IntegerField(validators=[Optional(), NumberRange(min=1, max=MAX_ID)])


@bp.get("/notifications")
@login_required
def notifications():
    """M5: looking writes nothing — notifications are marked read by the POST below."""
    rows = notifications_service.recent(current_user.id)
    return render_page("exports/notifications.html", rows=rows, active_nav=None,
                       unread_ids=[note.id for note in rows if note.read_at is None])


@bp.post("/notifications/read")
@login_required
def mark_notifications_read():
    form = MarkReadForm()
    if form.validate():
        notifications_service.mark_read(current_user.id, form.up_to.data)
    return htmx_redirect(url_for("exports.notifications"))
