"""Workflows (W1, W2, W7): the list, create and edit (errors at the field), turn on and off after a
confirmation, a workflow's history; and the Tasks inbox (W2). Rules live in services/workflows."""

from __future__ import annotations

from flask import Blueprint, flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from wtforms import SelectField, StringField, TextAreaField

from kassa.authz import current_actor, permission_required
from kassa.blueprints.payments import FilterPanelForm
from kassa.errors import ValidationFailed
from kassa.extensions import db
from kassa.forms import FlagField, Form, arg_int, is_ascii_digits
from kassa.models import Permission, WorkflowEnrollment, WorkflowTrigger
from kassa.rendering import htmx_redirect, render_page
from kassa.services.backoffice import filter_builder, segments
from kassa.services.backoffice.payment_filters import (
    FilterError,
    describe_condition,
    dump_filter,
    parse_filter,
)
from kassa.services.workflows import definitions, subjects, tasks

bp = Blueprint("workflows", __name__, url_prefix="/workflows")
tasks_bp = Blueprint("tasks", __name__, url_prefix="/tasks")


MAX_PAGE = 10_000
BUILDER_ACTIONS = ("add_group", "add_condition:", "remove:", "refresh", "clear")


class WorkflowForm(Form):
    """A workflow; the workflows service checks every value and says which field is wrong. Its steps are
    numbered: the first step's fields have no prefix (`action`, `subject` …), later ones `s<i>_` (W6). The
    criteria are the payments index's filter builder (W5: `c-<group>-<row>-<part>`, its buttons posted in
    `editor_action`), marked by `builder`; without it (a client posting fields), `filter` is the index's filter
    as text and `min_amount` adds "amount above" to it."""

    name = StringField(default="")
    trigger = SelectField(default=WorkflowTrigger.PAYMENT_SUCCEEDED.value, validate_choice=False,
                          choices=[(t.value, t.value) for t in WorkflowTrigger])  # W6: every feed event
    abandon_hours = StringField(default="")  # W6: checkout abandoned after this many hours
    link_id = StringField(default="")
    min_amount = StringField(default="")
    filter = StringField(default="")  # the payments index's filter (its `adv` parameter), W5
    renewals_only = FlagField()  # W4
    in_segment = StringField(default="")  # W8
    steps = StringField(default="1")
    editor_action = StringField(default="")  # "add_step", "remove_step:<i>", the builder's: the editor's buttons
    builder = StringField(default="")  # "1": the criteria come from the filter builder's rows (`c`)
    c = FilterPanelForm.c

    def values(self) -> dict:
        return {name: (field.data if isinstance(field.data, bool) else field.data or "")
                for name, field in self._fields.items() if name not in ("csrf_token", "c")}


for _index in range(definitions.MAX_STEPS):
    for _field in definitions.STEP_FIELDS:
        _default = {"action": "email" if _index == 0 else "notify", "wait_unit": "days"}.get(_field, "")
        setattr(WorkflowForm, definitions.step_prefix(_index) + _field,
                TextAreaField(default=_default) if _field == "body" else StringField(default=_default))


class ToggleForm(Form):
    enabled = StringField(default="")


def _criteria_chips(workflow) -> list[list[str]]:
    """The criteria as the payments index shows its filter chips, links by name (B4: no internal ids)."""
    import json

    links = {str(link.id): link.name for link in definitions.account_links(workflow.account_id)}
    groups = parse_filter(json.dumps(workflow.criteria)) if workflow.criteria else ()
    return [[describe_condition(c, value_labels={"link": links}) for c in group] for group in groups]


def _objects(enrollments) -> dict[int, tuple[str, str]]:
    """W6: what each enrollment is about, as the history shows it (a payment as before, else the object)."""
    account = current_user.account
    found = {}
    for enrollment in enrollments:
        subject = subjects.subject_of(enrollment, account)
        if subject is not None:
            label = subject.values.get("email") or subject.values.get("name") or ""
            kind = subjects.OBJECT_LABELS[subject.object_type]
            found[enrollment.id] = (f"{kind} · {label} · {subject.values.get('amount', '')}".replace(" ·  · ", " · "),
                                    subject.url)
    return found


def _steps(values: dict) -> list[dict[str, str]]:
    """The editor's steps as dicts of unprefixed field values (with `prefix` for the names)."""
    steps = []
    for index in range(definitions.step_count(values)):
        prefix = definitions.step_prefix(index)
        steps.append({"index": index, "prefix": prefix,
                      **{field: values.get(prefix + field, "") for field in definitions.STEP_FIELDS}})
    return steps


def _rows_of(filter_text: str) -> list[list[dict]]:
    """The builder's rows for a filter as text (stored criteria, or `?adv=` from a filtered payments list)."""
    try:
        groups = parse_filter(filter_text or "")
    except FilterError:
        groups = ()
    return filter_builder.rows_from_filter(groups, empty_ok=True)


def _editor(template_values: dict, rows, errors: dict[str, str], workflow=None, status: int = 200,
            block: str | None = None):
    account_id = current_user.account_id
    post_url = url_for("workflows.edit", workflow_id=workflow.id) if workflow else url_for("workflows.new")
    return render_page("workflows/form.html", block, status=status, values=template_values, errors=errors,
                       workflow=workflow, rows=rows, props=filter_builder.property_choices(), post_url=post_url, triggers=[(t.value, t.label) for t in WorkflowTrigger],
                       steps=_steps(template_values), max_steps=definitions.MAX_STEPS,
                       link_options=[(str(link.id), link.name) for link in definitions.account_links(account_id)],
                       user_options=[(str(user.id), user.name or user.email)
                                     for user in definitions.account_users(account_id)],
                       segment_options=[(str(seg.id), seg.name) for seg in segments.list_segments(account_id)],
                       action_options=action_options(),
                       merge_fields=subjects.merge_fields(template_values.get("trigger") or ""),
                       payment_triggers=sorted(t.value for t in subjects.WITH_PAYMENT),
                       active_nav="workflows")


def action_options() -> list[tuple[str, str]]:
    return [("email", _("Send an email to the buyer")), ("task", _("Create a task")),
            ("notify", _("Notify the team")), ("wait", _("Wait")), ("segment_add", _("Add to a segment")),
            ("segment_remove", _("Remove from a segment"))]


def _posted(workflow=None):
    """The editor's POST: a button of the builder or of the steps re-renders the editor with everything typed;
    saving checks it all at once (the builder's rows and the service's fields) and keeps every value on an error."""
    form = WorkflowForm()
    values = form.values()
    from_builder = values.get("builder") == "1"
    rows = filter_builder.rows_from_form(form.c.data, empty_ok=True) if from_builder else _rows_of(values["filter"])
    values["builder"] = "1"
    action = values.get("editor_action") or ""
    if action.startswith(BUILDER_ACTIONS):
        rows, _errors, _parsed = filter_builder.apply_action(rows, action, empty_ok=True)
        return _editor(values, rows, {}, workflow, block="builder" if action == "refresh" else None)
    if _edited(values) is not None:
        return _editor(values, rows, {}, workflow)
    builder_errors: dict[str, str] = {}
    if from_builder:
        rows, builder_errors, parsed = filter_builder.apply_action(rows, "apply", empty_ok=True)
        values["filter"], values["min_amount"] = dump_filter(parsed) if parsed else "", ""
    try:
        if builder_errors:  # every other field is checked too, so all the errors show at once
            definitions.check_values(current_user.account_id, values)
            raise ValidationFailed(_("Check the highlighted fields."), errors={})
        if workflow is None:
            saved = definitions.create_workflow(current_actor(), values)
        else:
            saved = definitions.update_workflow(current_actor(), workflow.id, values)
    except ValidationFailed as exc:
        errors = {**builder_errors, **(exc.errors or {})}
        if "min_amount" in errors:  # a client's own "amount above" field: the editor has it in the builder
            errors.setdefault("filter", errors.pop("min_amount"))
        return _editor(values, rows, errors, workflow, status=422)
    if workflow is None:
        flash(_("Workflow %(name)s created. Turn it on when it is ready.", name=saved.name), "success")
    else:
        flash(_("Workflow saved."), "success")
    return htmx_redirect(url_for("workflows.show", workflow_id=saved.id))


def _edited(values: dict) -> dict | None:
    """An editor button (add or remove a step): the values with the steps changed; None when saving."""
    action = values.get("editor_action") or ""
    count = definitions.step_count(values)
    if action == "add_step" and count < definitions.MAX_STEPS:
        values["steps"] = str(count + 1)
        return values
    if action.startswith("remove_step:"):
        index = action.partition(":")[2]
        if is_ascii_digits(index) and 0 < int(index) < count:
            steps = _steps(values)
            del steps[int(index)]
            for new_index, step in enumerate(steps):
                values.update({definitions.step_prefix(new_index) + field: step[field]
                               for field in definitions.STEP_FIELDS})
            values["steps"] = str(count - 1)
        return values
    return values if action else None


@bp.get("/")
@permission_required(Permission.MANAGE_PAYMENTS)
def index():
    workflows = definitions.list_workflows(current_user.account_id)
    counts = dict(db.session.execute(
        select(WorkflowEnrollment.workflow_id, func.count()).where(
            WorkflowEnrollment.account_id == current_user.account_id).group_by(WorkflowEnrollment.workflow_id)).all())
    return render_page("workflows/index.html", workflows=workflows, counts=counts, active_nav="workflows",
                       trigger_labels={t.value: t.label for t in WorkflowTrigger})


@bp.route("/new", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def new():
    if request.method == "POST":
        return _posted()
    values = {**WorkflowForm(formdata=None).values(), "builder": "1"}
    return _editor(values, _rows_of(request.args.get("adv", "")), {})  # W5: from a filtered payments list


@bp.get("/<int:workflow_id>")
@permission_required(Permission.MANAGE_PAYMENTS)
def show(workflow_id: int):
    workflow = definitions.get_workflow(current_user.account_id, workflow_id)
    segment = segments.get_segment(workflow.account_id, workflow.segment_id) if workflow.segment_id else None
    names = {seg.id: seg.name for seg in segments.list_segments(workflow.account_id)}
    paged = definitions.history_page(workflow, arg_int("page", 1, minimum=1, maximum=MAX_PAGE))
    versions = definitions.list_versions(workflow)
    page, pages = paged.page, paged.pages
    return render_page("workflows/show.html", workflow=workflow, chips=_criteria_chips(workflow),
                       enrollments=paged.rows, objects=_objects(paged.rows), segment=segment, segment_names=names,
                       total=paged.total, versions=versions,
                       version_chips={v.version: _criteria_chips(v) for v in versions},
                       version_segments={v.version: names.get(v.segment_id) for v in versions if v.segment_id},
                       prev_href=url_for("workflows.show", workflow_id=workflow.id, page=page - 1) if page > 1 else None,
                       next_href=url_for("workflows.show", workflow_id=workflow.id, page=page + 1)
                       if page < pages else None, page=page, pages=pages,
                       action_labels=dict(action_options()), trigger_labels={t.value: t.label for t in WorkflowTrigger},
                       trigger_label=WorkflowTrigger(workflow.trigger).label, active_nav="workflows")


@bp.route("/<int:workflow_id>/edit", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def edit(workflow_id: int):
    workflow = definitions.get_workflow(current_user.account_id, workflow_id)
    if request.method == "POST":
        return _posted(workflow)
    values = {**definitions.form_values(workflow), "builder": "1"}
    return _editor(values, _rows_of(values["filter"]), {}, workflow)


@bp.route("/<int:workflow_id>/switch", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_PAYMENTS)
def switch(workflow_id: int):
    """On or off, after a confirmation (W7: off stops new enrollments and steps not yet run)."""
    workflow = definitions.get_workflow(current_user.account_id, workflow_id)
    if request.method == "GET":
        return render_page("workflows/switch.html", "dialog", workflow=workflow, active_nav="workflows")
    enabled = ToggleForm().enabled.data == "on"
    definitions.set_enabled(current_actor(), workflow.id, enabled)
    flash(_("Workflow %(name)s is on.", name=workflow.name) if enabled
          else _("Workflow %(name)s is off.", name=workflow.name), "success")
    return htmx_redirect(url_for("workflows.show", workflow_id=workflow.id))


# -- Tasks inbox ------------------------------------------------------------------------------------------


@tasks_bp.get("/")
@permission_required(Permission.MANAGE_PAYMENTS)
def inbox():
    account_id = current_user.account_id
    return render_page("workflows/tasks.html", open_tasks=tasks.open_tasks(account_id),
                       done_tasks=tasks.done_tasks(account_id), active_nav="workflows")


@tasks_bp.post("/<int:task_id>/done")
@permission_required(Permission.MANAGE_PAYMENTS)
def done(task_id: int):
    task = tasks.set_done(current_actor(), task_id, True)
    flash(_("Task “%(title)s” done.", title=task.title), "success")
    return htmx_redirect(url_for("tasks.inbox"))


@tasks_bp.post("/<int:task_id>/undo")
@permission_required(Permission.MANAGE_PAYMENTS)
def undo(task_id: int):
    task = tasks.set_done(current_actor(), task_id, False)
    flash(_("Task “%(title)s” is open again.", title=task.title), "success")
    return htmx_redirect(url_for("tasks.inbox"))
