"""How payment events reach workflows (W6) and how their actions run (W1, W2, W7).

A tick task (`enroll_due`) looks, per workflow that is on, for payments whose trigger event (succeeded or
failed) happened since the workflow was turned on, that match its criteria (the payments index's filter,
W5) and have no enrollment yet. It inserts their enrollments with INSERT … ON CONFLICT DO NOTHING on the
unique (workflow, payment, trigger event) and queues one outbox message per row it actually inserted, in the
same transaction. Two ticks at once, or the same event applied twice, therefore enroll a payment once and
queue its actions once: the database, not the code's timing, decides. The worker runs the step (retried with
back-off like any outbox message); it checks the workflow is still on first, so turning it off cancels the
steps that haven't run.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.dialects import postgresql, sqlite

from kassa.clock import account_today, now
from kassa.database import dialect_name, write_transaction
from kassa.extensions import db
from kassa.models import (
    Account,
    Payment,
    Workflow,
    WorkflowEnrollment,
    WorkflowTrigger,
)
from kassa.services.backoffice.payment_filters import FilterContext, filter_clause, parse_filter
from kassa.services.platform import outbox
from kassa.services.platform.ticks import each_item, for_tick_account
from kassa.services.workflows import actions
from kassa.services.workflows.criteria import extra_clause as criteria_extra

log = logging.getLogger(__name__)

STEP_JOB = actions.STEP_JOB
BATCH = 500
# A payment's event time is stamped inside its transaction, which commits a moment later: each look goes back
# this far before the previous one, so an event committed late is still seen (the unique key drops repeats).
LATE_COMMIT = timedelta(minutes=10)
_MERGE = re.compile(r"\{([a-z_]+)\}")


def _event_column(trigger: str):
    return Payment.succeeded_at if trigger == WorkflowTrigger.PAYMENT_SUCCEEDED.value else Payment.failed_at


def due_payment_ids(workflow: Workflow, account: Account, limit: int = BATCH) -> list[int]:
    """Payments that this workflow should enroll and hasn't: the trigger event at or after it was turned
    on (and not before its last look, less `LATE_COMMIT`: an index range, not every payment since), the
    criteria true, no enrollment for this (workflow, payment, event)."""
    import json

    event_at = _event_column(workflow.trigger)
    since = workflow.enabled_at
    if workflow.scanned_until is not None:
        since = max(since, workflow.scanned_until - LATE_COMMIT)
    criteria = parse_filter(json.dumps(workflow.criteria)) if workflow.criteria else ()
    ctx = FilterContext(timezone=account.timezone, today=account_today(account))
    enrolled = exists().where(WorkflowEnrollment.workflow_id == workflow.id,
                              WorkflowEnrollment.payment_id == Payment.id,
                              WorkflowEnrollment.trigger_event == workflow.trigger)
    return list(db.session.scalars(
        select(Payment.id)
        .where(Payment.account_id == workflow.account_id, event_at.is_not(None), event_at >= since,
               filter_clause(criteria, ctx), criteria_extra(workflow), ~enrolled)
        .order_by(Payment.id).limit(limit)
    ))


def enroll(workflow_id: int, payment_ids: list[int], *, scanned_until=None) -> int:
    """Enroll these payments (one transaction); returns how many were new. Safe to run twice or at once.
    `scanned_until`: every event before it has now been looked at (the next look starts there)."""
    with write_transaction(db.session) as session:
        workflow = session.get(Workflow, workflow_id)
        if workflow is None or not workflow.enabled:
            return 0
        if scanned_until is not None and (workflow.scanned_until is None or workflow.scanned_until < scanned_until):
            workflow.scanned_until = scanned_until
        if not payment_ids:
            return 0
        insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
        rows = [{"account_id": workflow.account_id, "workflow_id": workflow.id, "payment_id": payment_id,
                 "trigger_event": workflow.trigger, "workflow_version": workflow.version, "status": "pending",
                 "enrolled_at": now()} for payment_id in dict.fromkeys(payment_ids)]
        new_ids = session.scalars(
            insert(WorkflowEnrollment).values(rows).on_conflict_do_nothing(
                index_elements=["workflow_id", "payment_id", "trigger_event"]).returning(WorkflowEnrollment.id)
        ).all()
        for enrollment_id in new_ids:
            outbox.enqueue(STEP_JOB, {"enrollment_id": enrollment_id}, account_id=workflow.account_id,
                           dedupe_key=f"workflow_step:{enrollment_id}")
        return len(new_ids)


def _enroll_workflow(workflow_id: int) -> int:
    started = now()
    workflow = db.session.get(Workflow, workflow_id)
    account = db.session.get(Account, workflow.account_id)
    ids = due_payment_ids(workflow, account)
    db.session.rollback()  # end the read before the write transaction
    # A full batch leaves the rest for the next tick: the look only moves on when it saw everything.
    return enroll(workflow_id, ids, scanned_until=started if len(ids) < BATCH else None)


def enroll_due() -> int:
    """Tick task: enroll every due payment in every workflow that is on (one workflow failing skips only it)."""
    workflow_ids = list(db.session.scalars(
        select(Workflow.id).where(Workflow.enabled.is_(True), Workflow.enabled_at.is_not(None),
                                  for_tick_account(Workflow.account_id)).order_by(Workflow.id)))
    db.session.rollback()
    return each_item("workflows", workflow_ids, _enroll_workflow, describe=lambda wid: f"workflow {wid}")


# -- the step the worker runs (the actions themselves: actions.py) -------------------------------------

merge_values, merge = actions.merge_values, actions.merge


def run_step(payload: dict[str, Any]) -> None:
    """Outbox handler: run an enrollment's steps from where it stands (W6, W7). Idempotent: the enrollment's
    row is locked and a step already done is not redone. A try that raises is noted before the retry."""
    at_step: list[int] = []
    try:
        actions.run_enrollment(payload["enrollment_id"], at_step)
    except Exception as exc:
        db.session.rollback()
        actions.note_retry(payload["enrollment_id"], at_step[0] if at_step else None, f"{type(exc).__name__}: {exc}")
        raise


def step_gave_up(payload: dict[str, Any], error: str) -> None:
    """The step failed on every attempt: the history says so, with the reason."""
    actions.gave_up(payload["enrollment_id"], error)


def history(workflow: Workflow, limit: int = 100) -> list[WorkflowEnrollment]:
    return list(db.session.scalars(select(WorkflowEnrollment).where(WorkflowEnrollment.workflow_id == workflow.id)
                                   .order_by(WorkflowEnrollment.enrolled_at.desc(), WorkflowEnrollment.id.desc())
                                   .limit(limit)))
