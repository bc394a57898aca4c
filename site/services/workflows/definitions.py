"""Creating, editing and switching workflows (W1, W2, W5, W7). The enrollment criteria are the payments
index's filter (W5): the same groups of conditions, parsed and checked by `payment_filters.parse_filter`
and stored as it dumps them, never a second filter language."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from kassa.actor import Actor
from kassa.clock import now
from kassa.database import lock_one, parse_id, write_transaction
from kassa.errors import NotFound, ValidationFailed
from kassa.extensions import db
from kassa.forms import is_ascii_digits
from kassa.models import (
    PaymentLink,
    User,
    Workflow,
    WorkflowEnrollment,
    WorkflowStepRun,
    WorkflowTrigger,
    WorkflowVersion,
)
from kassa.pagination import NumberedPage, numbered_page
from kassa.services.backoffice.payment_filters import Condition, FilterError, dump_filter, parse_filter
from kassa.services.platform.audit import record_audit
from kassa.services.workflows import subjects
from kassa.services.workflows.actions import cancel_active
from kassa.services.workflows.engine import feed_end

MERGE_FIELDS = subjects.ALL_FIELDS
_MERGE = re.compile(r"\{([a-z_]+)\}")
MAX_WORKFLOWS = 100


def list_workflows(account_id: int) -> list[Workflow]:
    return list(db.session.scalars(select(Workflow).where(Workflow.account_id == account_id)
                                   .order_by(Workflow.name, Workflow.id)))


def get_workflow(account_id: int, workflow_id: Any) -> Workflow:
    key = parse_id(workflow_id)
    workflow = db.session.get(Workflow, key) if key else None
    if workflow is None or workflow.account_id != account_id:
        raise NotFound(_("Workflow not found."))
    return workflow


def account_links(account_id: int) -> list[PaymentLink]:
    return list(db.session.scalars(select(PaymentLink).where(PaymentLink.account_id == account_id)
                                   .order_by(PaymentLink.name, PaymentLink.id)))


def account_users(account_id: int) -> list[User]:
    return list(db.session.scalars(select(User).where(User.account_id == account_id).order_by(User.name, User.id)))


def _unknown_merge_fields(text: str, fields: tuple[str, ...] = MERGE_FIELDS) -> list[str]:
    return sorted({name for name in _MERGE.findall(text) if name not in fields})


def _amount(text: str) -> Decimal | None:
    try:
        value = Decimal(text.replace(",", ".").strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() and 0 <= value < 10**12 else None


def _criteria(account_id: int, values: dict[str, str], errors: dict[str, str]) -> list[Any]:
    """The small form (source link, amount above) and the index's filter (`adv`), as one filter: the small
    form's conditions are added to every group of the index's filter (AND distributes over OR)."""
    extra: list[Condition] = []
    link_id = (values.get("link_id") or "").strip()
    if link_id:
        link = db.session.get(PaymentLink, parse_id(link_id)) if parse_id(link_id) else None
        if link is None or link.account_id != account_id:
            errors["link_id"] = _("Choose one of your payment links.")
        else:
            extra.append(Condition("link", "eq", (str(link.id),)))
    min_amount = (values.get("min_amount") or "").strip()
    if min_amount:
        amount = _amount(min_amount)
        if amount is None:
            errors["min_amount"] = _("Enter an amount like 50 or 12.50.")
        else:
            extra.append(Condition("amount", "gt", (str(amount),)))
    try:
        groups = parse_filter((values.get("filter") or "").strip())
    except FilterError as exc:
        errors["filter"] = str(exc)
        groups = ()
    if extra:
        groups = tuple(tuple(group) + tuple(extra) for group in groups) or (tuple(extra),)
    return json.loads(dump_filter(groups))


def simple_fields(criteria: list[Any]) -> dict[str, str]:
    """The editor's values for stored criteria (W5): the payment link every group asks for as `link_id` (the
    editor's link menu, the inverse of `_criteria` adding it to every group), the rest as the index's filter
    (`filter`, which the editor shows in the payments index's filter builder)."""
    groups = [list(group) for group in criteria]
    firsts = [next((c for c in group if c[0] == "link" and c[1] == "eq" and len(c[2]) == 1), None) for group in groups]
    link_id = ""
    if groups and all(firsts) and len({c[2][0] for c in firsts}) == 1:
        rest = [[c for c in group if c is not first] for group, first in zip(groups, firsts, strict=True)]
        if all(rest) or not any(rest):  # (link) OR (link AND x) is just the link: left as the builder's groups
            link_id, groups = str(firsts[0][2][0]), [group for group in rest if group]
    return {"link_id": link_id, "min_amount": "", "filter": json.dumps(groups, ensure_ascii=False) if groups else ""}


MAX_STEPS = 10
STEP_FIELDS = ("action", "subject", "body", "task_title", "assignee_id", "due_days", "message", "wait_amount",
               "wait_unit", "target_segment")


def step_prefix(index: int) -> str:
    """The form's names for step `index`: the first step's fields have no prefix, later ones `s<i>_`."""
    return "" if index == 0 else f"s{index}_"


def step_values(action: dict[str, Any]) -> dict[str, str]:
    kind = action.get("type", "email")
    return {"action": kind, "subject": action.get("subject", ""), "body": action.get("body", ""),
            "task_title": action.get("title", ""), "assignee_id": str(action.get("assignee_id") or ""),
            "due_days": "" if action.get("due_days") is None else str(action.get("due_days")),
            "message": action.get("message", ""),
            "wait_amount": str(action.get("amount", "")) if kind == "wait" else "",
            "wait_unit": action.get("unit", "days"),
            "target_segment": str(action.get("segment_id") or "")}


def form_values(workflow: Workflow) -> dict[str, str]:
    values = {"name": workflow.name, "trigger": workflow.trigger, "steps": str(max(len(workflow.actions or []), 1)),
              "abandon_hours": str(workflow.abandon_hours or ""),
              "renewals_only": workflow.renewals_only, "in_segment": str(workflow.segment_id or ""),
              **simple_fields(workflow.criteria or [])}
    for index, action in enumerate(workflow.actions or [{}]):
        values.update({step_prefix(index) + key: value for key, value in step_values(action).items()})
    return values


def step_count(values: dict[str, Any]) -> int:
    text = str(values.get("steps") or "1").strip()
    return min(max(int(text), 1), MAX_STEPS) if is_ascii_digits(text) and len(text) < 4 else 1


def _segment_id(account_id: int, text: str, field: str, errors: dict[str, str], required: bool) -> int | None:
    from kassa.models import Segment

    text = (text or "").strip()
    if not text:
        if required:
            errors[field] = _("Choose a segment.")
        return None
    segment = db.session.get(Segment, parse_id(text)) if parse_id(text) else None
    if segment is None or segment.account_id != account_id:
        errors[field] = _("Choose one of your segments.")
        return None
    return segment.id


def _text(values: dict[str, str], name: str, errors: dict[str, str], missing: str, limit: int,
          merge_fields: bool = True) -> str:
    text = (values.get(name) or "").strip()
    fields = subjects.merge_fields(values.get("trigger") or "")
    if not text:
        errors[name] = missing
    elif len(text) > limit:
        errors[name] = _("Use at most %(n)d characters.", n=limit)
    elif merge_fields and (unknown := _unknown_merge_fields(text, fields)):
        errors[name] = _("Unknown merge field {%(name)s}. Use one of: %(fields)s.", name=unknown[0],
                         fields=", ".join("{" + f + "}" for f in fields))
    return text


def _step(account_id: int, values: dict[str, str], p: str, errors: dict[str, str]) -> dict[str, Any] | None:
    """One step from the form's fields with prefix `p` (errors keyed by the prefixed field name)."""
    kind = values.get(p + "action")
    if kind == "email":
        subject = _text(values, p + "subject", errors, _("Write the email's subject."), 200)
        body = _text(values, p + "body", errors, _("Write the email."), 5000)
        return {"type": "email", "subject": subject, "body": body}
    if kind == "task":
        title = _text(values, p + "task_title", errors, _("Give the task a title."), 200)
        assignee = None
        if (values.get(p + "assignee_id") or "").strip():
            key = parse_id(values[p + "assignee_id"])
            user = db.session.get(User, key) if key else None
            if user is None or user.account_id != account_id:
                errors[p + "assignee_id"] = _("Choose someone on your team.")
            else:
                assignee = user.id
        due_text = (values.get(p + "due_days") or "").strip()
        due_days = None
        if due_text:
            if not is_ascii_digits(due_text) or not 0 <= int(due_text) <= 365:
                errors[p + "due_days"] = _("Enter a number of days from 0 to 365.")
            else:
                due_days = int(due_text)
        return {"type": "task", "title": title, "assignee_id": assignee, "due_days": due_days}
    if kind == "notify":
        message = _text(values, p + "message", errors, _("Write what the team should know."), 300)
        return {"type": "notify", "message": message}
    if kind == "wait":
        unit = values.get(p + "wait_unit") or "days"
        amount_text = (values.get(p + "wait_amount") or "").strip()
        if unit not in ("hours", "days"):
            errors[p + "wait_unit"] = _("Choose hours or days.")
        limit = 24 * 365 if unit == "hours" else 365
        if not is_ascii_digits(amount_text) or not 1 <= int(amount_text) <= limit:
            errors[p + "wait_amount"] = _("Enter a whole number from 1 to %(n)d.", n=limit)
            return {"type": "wait", "amount": 1, "unit": unit}
        return {"type": "wait", "amount": int(amount_text), "unit": unit}
    if kind in ("segment_add", "segment_remove"):
        segment_id = _segment_id(account_id, values.get(p + "target_segment", ""), p + "target_segment", errors, True)
        return {"type": kind, "segment_id": segment_id}
    errors[p + "action"] = _("Choose what the workflow does.")
    return None


def _actions(account_id: int, values: dict[str, str], errors: dict[str, str]) -> list[dict[str, Any]]:
    steps = [_step(account_id, values, step_prefix(i), errors) for i in range(step_count(values))]
    found = [step for step in steps if step is not None]
    if found and all(step["type"] == "wait" for step in found):
        errors["action"] = _("Add a step that does something besides waiting.")
    return found


def _checked(account_id: int, values: dict[str, str]) -> tuple[str, str, list[Any], list[dict[str, Any]], dict]:
    errors: dict[str, str] = {}
    name = (values.get("name") or "").replace("\x00", "").strip()
    if not name:
        errors["name"] = _("Give the workflow a name.")
    elif len(name) > 120:
        errors["name"] = _("Use at most %(n)d characters.", n=120)
    trigger = values.get("trigger") or ""
    if trigger not in {t.value for t in WorkflowTrigger}:
        errors["trigger"] = _("Choose when the workflow starts.")
    criteria = _criteria(account_id, values, errors)
    extra = {"renewals_only": bool(values.get("renewals_only")),
             "segment_id": _segment_id(account_id, values.get("in_segment", ""), "in_segment", errors, False),
             "abandon_hours": None}
    if (trigger in {t.value for t in WorkflowTrigger} and WorkflowTrigger(trigger) not in subjects.WITH_PAYMENT
            and (criteria or extra["renewals_only"] or extra["segment_id"])):
        # W6: the payments index's filter is about a payment; this trigger's object has none.
        errors["filter"] = _("Payment criteria apply only to payment, refund, dispute and renewal triggers.")
    if trigger == WorkflowTrigger.CHECKOUT_ABANDONED.value:
        hours = (values.get("abandon_hours") or "").strip()
        if not is_ascii_digits(hours) or not 1 <= int(hours) <= 24 * 30:
            errors["abandon_hours"] = _("Enter a whole number of hours from 1 to %(n)d.", n=24 * 30)
        else:
            extra["abandon_hours"] = int(hours)
    actions = _actions(account_id, values, errors)
    if errors:
        raise ValidationFailed(_("Check the highlighted fields."), errors=errors)
    return name, trigger, criteria, actions, extra


def check_values(account_id: int, values: dict[str, str]) -> None:
    """Raise ValidationFailed with every wrong field, as saving would; nothing is saved."""
    _checked(account_id, values)


def create_workflow(actor: Actor, values: dict[str, str]) -> Workflow:
    name, trigger, criteria, actions, extra = _checked(actor.account_id, values)
    with write_transaction(db.session) as session:
        if len(list_workflows(actor.account_id)) >= MAX_WORKFLOWS:
            raise ValidationFailed(_("You have %(n)d workflows already; delete one first.", n=MAX_WORKFLOWS),
                                   field="name")
        workflow = Workflow(account_id=actor.account_id, name=name, trigger=trigger, criteria=criteria,
                            actions=actions, enabled=False, version=1, **extra)
        session.add(workflow)
        session.flush()
        _keep_version(session, actor, workflow)
        record_audit(actor, "workflow.created", object_type="workflow", object_id=workflow.id)
        return workflow


def update_workflow(actor: Actor, workflow_id: int, values: dict[str, str]) -> Workflow:
    """W7: an edit is a new version; enrollments keep the version they ran."""
    name, trigger, criteria, actions, extra = _checked(actor.account_id, values)
    with write_transaction(db.session) as session:
        get_workflow(actor.account_id, workflow_id)
        workflow = lock_one(session, Workflow, workflow_id)
        changed = ((workflow.trigger, workflow.criteria, workflow.actions, workflow.renewals_only, workflow.segment_id,
                    workflow.abandon_hours)
                   != (trigger, criteria, actions, extra["renewals_only"], extra["segment_id"], extra["abandon_hours"]))
        workflow.name = name
        if changed:
            workflow.trigger, workflow.criteria, workflow.actions = trigger, criteria, actions
            workflow.renewals_only, workflow.segment_id = extra["renewals_only"], extra["segment_id"]
            workflow.abandon_hours = extra["abandon_hours"]
            workflow.version += 1
            _keep_version(session, actor, workflow)
        record_audit(actor, "workflow.updated", object_type="workflow", object_id=workflow.id,
                     data={"version": workflow.version})
        return workflow


def _keep_version(session, actor: Actor, workflow: Workflow) -> None:
    """W7: the workflow's definition as saved, under its version number (one row per version)."""
    session.add(WorkflowVersion(account_id=workflow.account_id, workflow_id=workflow.id, version=workflow.version,
                                trigger=workflow.trigger, criteria=workflow.criteria, actions=workflow.actions,
                                renewals_only=workflow.renewals_only, segment_id=workflow.segment_id,
                                abandon_hours=workflow.abandon_hours, created_by=actor.user_id))


def list_versions(workflow: Workflow) -> list[WorkflowVersion]:
    """W7: every kept version of the workflow, newest first (workflows edited before versions were kept have
    their versions from then on)."""
    return list(db.session.scalars(select(WorkflowVersion).where(WorkflowVersion.workflow_id == workflow.id)
                                   .order_by(WorkflowVersion.version.desc())))


def history_page(workflow: Workflow, page: int) -> NumberedPage:
    """W7: one numbered page of the workflow's enrollments, newest first, with their steps' outcomes."""
    query = (select(WorkflowEnrollment).where(WorkflowEnrollment.workflow_id == workflow.id)
             .options(selectinload(WorkflowEnrollment.runs).selectinload(WorkflowStepRun.email),
                      selectinload(WorkflowEnrollment.email)))
    return numbered_page(query, (WorkflowEnrollment.enrolled_at.desc(), WorkflowEnrollment.id.desc()), page)


def set_enabled(actor: Actor, workflow_id: int, enabled: bool) -> Workflow:
    """On: payments whose trigger event happens from now on enroll (never older ones). Off: no new
    enrollments, and steps not yet run, waiting ones included, are cancelled at once (W7)."""
    with write_transaction(db.session) as session:
        get_workflow(actor.account_id, workflow_id)
        workflow = lock_one(session, Workflow, workflow_id)
        if workflow.enabled != enabled:
            workflow.enabled = enabled
            if enabled:  # W6: it reads the feed from its end: events from now on, never older ones
                end = feed_end(workflow.account_id)
                workflow.enabled_at, workflow.scanned_until = now(), now()
                workflow.event_cursor = workflow.event_seen = workflow.event_settled = end
            else:
                cancel_active(workflow.id)
            record_audit(actor, "workflow.turned_on" if enabled else "workflow.turned_off",
                         object_type="workflow", object_id=workflow.id)
        return workflow
