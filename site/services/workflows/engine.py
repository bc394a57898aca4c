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
from kassa.database import dialect_name, lock_one, write_transaction
from kassa.extensions import db
from kassa.models import (
    Account,
    Payment,
    PaymentLink,
    Task,
    Workflow,
    WorkflowEnrollment,
    WorkflowTrigger,
)
from kassa.money import Money
from kassa.services.backoffice.payment_filters import FilterContext, filter_clause, parse_filter
from kassa.services.platform import outbox
from kassa.services.platform.mail import queue_email
from kassa.services.platform.ticks import each_item, for_tick_account

log = logging.getLogger(__name__)

STEP_JOB = "workflow_step"
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
               filter_clause(criteria, ctx), ~enrolled)
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


# -- the step the worker runs -------------------------------------------------------------------------


def merge_values(payment: Payment, account: Account) -> dict[str, str]:
    name = (payment.buyer_name or "").strip()
    link = db.session.get(PaymentLink, payment.link_id) if payment.link_id else None
    return {
        "first_name": name.split()[0] if name else "",
        "name": name,
        "email": payment.buyer_email,
        "amount": Money(payment.amount_minor, payment.currency).format(payment.language or account.language),
        "link_name": link.name if link else "",
        "business_name": account.name,
    }


def merge(text: str, values: dict[str, str]) -> str:
    return _MERGE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def run_step(payload: dict[str, Any]) -> None:
    """Outbox handler: carry out an enrollment's action once. Idempotent: a step already done is not redone
    (its row is locked, and the email or task it made is recorded in the same transaction)."""
    with write_transaction(db.session) as session:
        enrollment = lock_one(session, WorkflowEnrollment, payload["enrollment_id"])
        if enrollment is None or enrollment.status != "pending":
            return
        workflow = session.get(Workflow, enrollment.workflow_id)
        if workflow is None or not workflow.enabled:
            enrollment.status, enrollment.detail, enrollment.done_at = "cancelled", "workflow turned off", now()
            return
        payment = session.get(Payment, enrollment.payment_id)
        account = session.get(Account, enrollment.account_id)
        for action in workflow.actions:
            if action["type"] == "email":
                values = merge_values(payment, account)
                email = queue_email(
                    kind="workflow_email", to=[payment.buyer_email], template="email/workflow.html",
                    language=payment.language or account.language,
                    context={"account": account, "brand_color": account.brand_color,
                             "subject": merge(action["subject"], values), "body": merge(action["body"], values)},
                    account_id=account.id, related=("payment", payment.id))
                enrollment.email_id = email.id
            elif action["type"] == "task":
                due = action.get("due_days")
                task = Task(account_id=account.id, title=merge(action["title"], merge_values(payment, account)),
                            payment_id=payment.id, workflow_id=workflow.id, assignee_id=action.get("assignee_id"),
                            due_at=now() + timedelta(days=due) if due is not None else None)
                session.add(task)
                session.flush()
                enrollment.task_id = task.id
        enrollment.status, enrollment.done_at = "done", now()


def step_gave_up(payload: dict[str, Any], error: str) -> None:
    """The step failed on every attempt: the history says so, with the reason."""
    enrollment = db.session.get(WorkflowEnrollment, payload["enrollment_id"])
    if enrollment is not None and enrollment.status == "pending":
        enrollment.status, enrollment.detail, enrollment.done_at = "failed", error[:2000], now()


def history(workflow: Workflow, limit: int = 100) -> list[WorkflowEnrollment]:
    return list(db.session.scalars(select(WorkflowEnrollment).where(WorkflowEnrollment.workflow_id == workflow.id)
                                   .order_by(WorkflowEnrollment.enrolled_at.desc(), WorkflowEnrollment.id.desc())
                                   .limit(limit)))
