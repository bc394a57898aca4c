"""Segments (W3, W8): the list with live counts, a segment's contacts with their payments' properties, create and
edit with the payments index's own filter builder (W5), delete after a confirmation, export as CSV or XLSX
through the export machinery. Rules live in services/backoffice/segments."""

from __future__ import annotations

from flask import Blueprint, flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import StringField

from kassa.authz import current_actor, permission_required
from kassa.blueprints.payments import FilterPanelForm
from kassa.errors import ValidationFailed
from kassa.forms import FlagField, Form, arg_int
from kassa.i18n import current_language
from kassa.models import Permission
from kassa.rendering import htmx_redirect, is_htmx, render_page
from kassa.services.backoffice import filter_builder, segments
from kassa.services.backoffice.payment_filters import (
    PROPERTIES,
    FilterError,
    describe_condition,
    parse_filter,
)
from kassa.services.exports import exports

bp = Blueprint("segments", __name__, url_prefix="/segments")

MAX_PAGE = 10_000


class SegmentForm(FilterPanelForm):
    """A segment: its name, and either the filter builder's groups (`c-<group>-<row>-<part>`, the button pressed
    in `action`) or "only contacts workflows add"."""

    name = StringField(default="", filters=[lambda text: (text or "")[:500]])
    manual_only = FlagField()


class ExportForm(Form):
    file_format = StringField(default="xlsx")


def _chips(segment) -> list[list[str]]:
    from kassa.services.workflows import definitions

    links = {str(link.id): link.name for link in definitions.account_links(segment.account_id)}
    return [[describe_condition(c, value_labels={"link": links}) for c in group] for group in segments.groups_of(segment)]


def _editor(values: dict, rows, errors: dict[str, str], segment=None, status: int = 200):
    return render_page("segments/form.html", "builder" if request.method == "POST" and is_htmx() else None,
                       status=status, values=values, rows=rows, errors=errors, segment=segment,
        props=filter_builder.property_choices(), active_nav="workflows")


def _save(segment=None):
    """The editor's POST: a builder button re-renders the form; "apply" saves."""
    form = SegmentForm()
    values = {"name": form.name.data or "", "manual_only": form.manual_only.data}
    action = form.action.data or "apply"
    rows, errors, parsed = filter_builder.apply_action(filter_builder.rows_from_form(form.c.data), action)
    if action != "apply":
        return _editor(values, rows, {}, segment)
    if values["manual_only"]:
        errors, parsed = {}, ()
    try:
        if errors:
            raise ValidationFailed(_("Check the highlighted fields."), errors=errors)
        if segment is None:
            segment = segments.create_segment(current_actor(), values["name"], parsed)
            flash(_("Segment %(name)s created.", name=segment.name), "success")
        else:
            segment = segments.update_segment(current_actor(), segment.id, values["name"], parsed)
            flash(_("Segment saved."), "success")
    except ValidationFailed as exc:
        return _editor(values, rows, {**errors, **(exc.errors or {})}, segment, status=422)
    return htmx_redirect(url_for("segments.show", segment_id=segment.id))


@bp.get("/")
@permission_required(Permission.MANAGE_PAYMENTS)
def index():
    rows = [(segment, segments.count_members(segment)) for segment in segments.list_segments(current_user.account_id)]
    return render_page("segments/index.html", rows=rows, active_nav="workflows")


@bp.route("/new", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def new():
    if request.method == "POST":
        return _save()
    try:  # "Create a segment from this filter" on a filtered payments list
        groups = parse_filter(request.args.get("adv", ""))
    except FilterError:
        groups = ()
    return _editor({"name": "", "manual_only": False}, filter_builder.rows_from_filter(groups), {})


@bp.get("/<int:segment_id>")
@permission_required(Permission.MANAGE_PAYMENTS)
def show(segment_id: int):
    segment = segments.get_segment(current_user.account_id, segment_id)
    page = arg_int("page", 1, minimum=1, maximum=MAX_PAGE)
    members, total = segments.member_page(segment, page)
    pages = max((total + segments.PAGE_SIZE - 1) // segments.PAGE_SIZE, 1)
    if page > pages:
        page = pages
        members, total = segments.member_page(segment, page)
    return render_page(
        "segments/show.html", segment=segment, members=members, total=total, chips=_chips(segment),
        prev_href=url_for("segments.show", segment_id=segment.id, page=page - 1) if page > 1 else None,
        next_href=url_for("segments.show", segment_id=segment.id, page=page + 1) if page < pages else None,
        errors={}, method_words=dict(PROPERTIES["method"].options()), active_nav="workflows")


@bp.route("/<int:segment_id>/edit", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def edit(segment_id: int):
    segment = segments.get_segment(current_user.account_id, segment_id)
    if request.method == "POST":
        return _save(segment)
    groups = segments.groups_of(segment)
    return _editor({"name": segment.name, "manual_only": not groups}, filter_builder.rows_from_filter(groups), {},
                   segment)


@bp.route("/<int:segment_id>/delete", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def delete(segment_id: int):
    """After a confirmation; refused (with the reason) while a workflow uses the segment."""
    segment = segments.get_segment(current_user.account_id, segment_id)
    error = None
    if request.method == "POST":
        try:
            name = segments.delete_segment(current_actor(), segment.id)
        except ValidationFailed as exc:
            error = exc.message
        else:
            flash(_("Segment %(name)s deleted.", name=name), "success")
            return htmx_redirect(url_for("segments.index"))
    return render_page("segments/delete.html", "dialog", status=422 if error else 200, segment=segment,
                       error=error, active_nav="workflows")


@bp.post("/<int:segment_id>/export")
@permission_required(Permission.MANAGE_PAYMENTS)
def export(segment_id: int):
    """W8: every member (not just this page) as CSV or XLSX, built in the background like any export."""
    segment = segments.get_segment(current_user.account_id, segment_id)
    file_format = ExportForm().file_format.data
    try:
        if file_format not in ("csv", "xlsx"):
            raise ValidationFailed(_("Choose CSV or XLSX."), field="file_format")
        exports.request_export(current_actor(), kind="segment", name=segment.name, file_format=file_format,
                               language=current_language(), params={"segment_id": segment.id})
    except ValidationFailed as exc:
        members, total = segments.member_page(segment, 1)
        return render_page("segments/show.html", status=422, segment=segment, members=members, total=total,
                           chips=_chips(segment), prev_href=None, next_href=None,
                           errors=exc.errors or {"file_format": exc.message},
                           method_words=dict(PROPERTIES["method"].options()), active_nav="workflows")
    return htmx_redirect(url_for("exports.index", started=1))
