"""A workflow's actions (W1, W2, W4, W6) and how an enrollment's steps run (W7).

A workflow's actions are a sequence of steps: send an email to the buyer, create a task, notify the team (in
the app and by email), wait (hours or days: the next step runs later), add the buyer's contact to a segment or
remove it. The worker runs an enrollment's steps from `enrollment.step` on, in one transaction, until the end
or a wait: a wait stores when to go on (`run_at`) and queues the next run for then (outbox `not_before`).
Every step leaves a `WorkflowStepRun` with its outcome (done, waiting, skipped, failed with the reason), and a
try that raised is noted as "retrying" with its error before the outbox retries it, so the history shows
what was retried and how often. A workflow turned off cancels its waiting and pending enrollments at once,
and the worker checks again before each run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import select

from kassa.clock import now
from kassa.database import lock_one, write_transaction
from kassa.extensions import db
from kassa.models import (
    Account,
    CheckoutSession,
    Payment,
    Segment,
    Task,
    Workflow,
    WorkflowEnrollment,
    WorkflowStepRun,
)
from kassa.services.backoffice import segments
from kassa.services.platform import outbox
from kassa.services.platform.mail import queue_email
from kassa.services.platform.notifications import notify_in_app, payment_team
from kassa.services.workflows.subjects import Subject, subject_of

STEP_JOB = "workflow_step"
TYPES = ("email", "task", "notify", "wait", "segment_add", "segment_remove")
_MERGE = re.compile(r"\{([a-z_]+)\}")


@dataclass
class Outcome:
    status: str  # done | waiting | skipped
    detail: str | None = None
    email_id: int | None = None
    task_id: int | None = None
    wait_until: datetime | None = None


@dataclass
class Context:
    workflow: Workflow
    enrollment: WorkflowEnrollment
    subject: Subject  # what the trigger event is about (payment, subscription, dispute, payout, checkout)
    account: Account

    @property
    def payment(self) -> Payment | None:
        return self.subject.payment


def merge_values(payment: Payment, account: Account) -> dict[str, str]:
    """A payment's merge fields (the payment triggers' Subject values)."""
    enrollment = WorkflowEnrollment(object_type="payment", object_id=payment.id, payment_id=payment.id,
                                    trigger_event="payment.succeeded")
    return subject_of(enrollment, account).values


def merge(text: str, values: dict[str, str]) -> str:
    return _MERGE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _email(action: dict[str, Any], ctx: Context) -> Outcome:
    """To the buyer, in the buyer's language (the frame; the merchant's text as written), in the account's
    colour and name."""
    subject, account = ctx.subject, ctx.account
    if not subject.email:
        return Outcome("skipped", detail=_("There is no buyer to email."))
    values = subject.values
    email = queue_email(
        kind="workflow_email", to=[subject.email], template="email/workflow.html", language=subject.language,
        context={"account": account, "brand_color": account.brand_color,
                 "subject": merge(action["subject"], values), "body": merge(action["body"], values)},
        account_id=account.id, related=(subject.object_type, subject.object_id))
    return Outcome("done", email_id=email.id)


def _task(action: dict[str, Any], ctx: Context) -> Outcome:
    due = action.get("due_days")
    task = Task(account_id=ctx.account.id, title=merge(action["title"], ctx.subject.values)[:200],
                payment_id=ctx.payment.id if ctx.payment is not None else None, workflow_id=ctx.workflow.id, assignee_id=action.get("assignee_id"),
                due_at=now() + timedelta(days=due) if due is not None else None)
    db.session.add(task)
    db.session.flush()
    return Outcome("done", task_id=task.id)


def _notify(action: dict[str, Any], ctx: Context) -> Outcome:
    """W4, W6: everyone who handles payments hears it, in the bell and by email, each in their own language
    (the merchant's message as written, merge fields filled in)."""
    subject, account = ctx.subject, ctx.account
    message = merge(action["message"], subject.values)
    url = subject.url
    team = payment_team(account.id)
    first_email = None
    for user in team:
        language = user.language or account.language
        with force_locale(language):
            text = _("%(workflow)s: %(message)s", workflow=ctx.workflow.name, message=message)
        notify_in_app(account.id, user.id, text[:300], url)
        email = queue_email(kind="workflow_notify", to=[user.email], template="email/workflow_notify.html",
                            language=language,
                            context={"account": account, "brand_color": account.brand_color, "message": message,
                                     "workflow_name": ctx.workflow.name, "url": url,
                                     "amount_text": subject.values.get("amount", "")},
                            account_id=account.id, related=(subject.object_type, subject.object_id))
        first_email = first_email or email.id
    if not team:
        return Outcome("skipped", detail=_("Nobody on the team handles payments."))
    return Outcome("done", detail=ngettext("%(num)d person notified", "%(num)d people notified", len(team)),
                   email_id=first_email)


def _wait(action: dict[str, Any], ctx: Context) -> Outcome:
    unit = timedelta(hours=1) if action.get("unit") == "hours" else timedelta(days=1)
    return Outcome("waiting", wait_until=now() + unit * int(action["amount"]))


def _segment(state: str):
    def run(action: dict[str, Any], ctx: Context) -> Outcome:
        if ctx.subject.contact_id is None:
            return Outcome("skipped", detail=_("The payment has no contact."))
        segment = db.session.get(Segment, action.get("segment_id") or 0)
        if segment is None or segment.account_id != ctx.account.id:
            return Outcome("skipped", detail=_("The segment no longer exists."))
        segments.mark(segment.id, ctx.subject.contact_id, state, ctx.workflow.id)
        return Outcome("done")

    return run


HANDLERS = {"email": _email, "task": _task, "notify": _notify, "wait": _wait,
            "segment_add": _segment("added"), "segment_remove": _segment("removed")}
ACTIVE = ("pending", "waiting")


def _run_row(enrollment: WorkflowEnrollment, step: int, action: str) -> WorkflowStepRun:
    row = db.session.scalar(select(WorkflowStepRun).where(WorkflowStepRun.enrollment_id == enrollment.id,
                                                          WorkflowStepRun.step == step))
    if row is None:
        row = WorkflowStepRun(account_id=enrollment.account_id, enrollment_id=enrollment.id, step=step, action=action,
                              status="running", attempts=0)
        db.session.add(row)
    return row


def run_enrollment(enrollment_id: int, at_step: list[int]) -> None:
    """Run the enrollment's steps from where it stands, in one transaction (a failure undoes them all and the
    outbox retries). `at_step` receives the step being run, for the retry note."""
    with write_transaction(db.session) as session:
        enrollment = lock_one(session, WorkflowEnrollment, enrollment_id)
        if enrollment is None or enrollment.status not in ACTIVE:
            return
        if enrollment.run_at is not None and enrollment.run_at > now():
            return  # an early copy: the run queued for `run_at` carries on
        workflow = session.get(Workflow, enrollment.workflow_id)
        if workflow is None or not workflow.enabled:
            enrollment.status, enrollment.detail, enrollment.done_at = "cancelled", "workflow turned off", now()
            return
        if enrollment.status == "waiting":  # the wait is over: its step is done
            waited = _run_row(enrollment, enrollment.step - 1, "wait")
            waited.status, waited.detail, waited.at = "done", None, now()
            enrollment.status, enrollment.run_at = "pending", None
        account = session.get(Account, enrollment.account_id)
        subject = subject_of(enrollment, account)
        if subject is None or _paid_since(enrollment):
            enrollment.status, enrollment.done_at = "cancelled", now()
            enrollment.detail = "paid meanwhile" if subject is not None else "object deleted"
            return
        ctx = Context(workflow, enrollment, subject, account)
        actions = workflow.actions or []
        step = enrollment.step
        while step < len(actions):
            action = actions[step]
            at_step[:] = [step]
            outcome = HANDLERS[action["type"]](action, ctx)
            row = _run_row(enrollment, step, action["type"])
            row.status, row.detail, row.attempts, row.at = outcome.status, outcome.detail, row.attempts + 1, now()
            row.email_id, row.task_id = outcome.email_id, outcome.task_id
            if action["type"] == "email" and enrollment.email_id is None:
                enrollment.email_id = outcome.email_id
            if outcome.task_id and enrollment.task_id is None:
                enrollment.task_id = outcome.task_id
            step += 1
            enrollment.step = step
            if outcome.wait_until is not None:
                enrollment.status, enrollment.run_at = "waiting", outcome.wait_until
                outbox.enqueue(STEP_JOB, {"enrollment_id": enrollment.id}, account_id=enrollment.account_id,
                               dedupe_key=f"workflow_step:{enrollment.id}:{step}", not_before=outcome.wait_until)
                return
        enrollment.status, enrollment.run_at, enrollment.done_at = "done", None, now()


def _paid_since(enrollment: WorkflowEnrollment) -> bool:
    """W6: an abandoned checkout paid before its workflow's hours ran out is not abandoned after all."""
    if enrollment.object_type != "checkout_session":
        return False
    session = db.session.get(CheckoutSession, enrollment.object_id)
    return session is not None and session.status == "completed"


def note_retry(enrollment_id: int, step: int | None, error: str) -> None:
    """A try raised: the step's row says "retrying" with the error (its own transaction: the try's rolled back)."""
    if step is None:
        return
    with write_transaction(db.session) as session:
        enrollment = session.get(WorkflowEnrollment, enrollment_id)
        if enrollment is None or enrollment.status not in ACTIVE:
            return
        action = (session.get(Workflow, enrollment.workflow_id).actions or [{}])[step].get("type", "?")
        row = _run_row(enrollment, step, action)
        row.status, row.detail, row.attempts, row.at = "retrying", error[:2000], row.attempts + 1, now()


def gave_up(enrollment_id: int, error: str) -> None:
    """Every try failed: the enrollment and its step say so, with the reason."""
    enrollment = db.session.get(WorkflowEnrollment, enrollment_id)
    if enrollment is not None and enrollment.status in ACTIVE:
        enrollment.status, enrollment.detail, enrollment.done_at = "failed", error[:2000], now()
        for row in db.session.scalars(select(WorkflowStepRun).where(WorkflowStepRun.enrollment_id == enrollment_id,
                                                                    WorkflowStepRun.status == "retrying")):
            row.status = "failed"


def cancel_active(workflow_id: int) -> int:
    """W7: turning a workflow off cancels what hasn't run (waiting steps included), in the caller's transaction."""
    enrollments = list(db.session.scalars(select(WorkflowEnrollment).where(
        WorkflowEnrollment.workflow_id == workflow_id, WorkflowEnrollment.status.in_(ACTIVE))))
    for enrollment in enrollments:
        enrollment.status, enrollment.detail, enrollment.done_at = "cancelled", "workflow turned off", now()
        enrollment.run_at = None
    return len(enrollments)
