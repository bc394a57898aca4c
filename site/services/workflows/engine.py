"""How account events reach workflows (W6) and how their actions run (W1, W2, W7).

Workflows read the account event feed (`account_events`, services/platform/account_events.py): every payment,
refund, subscription, dispute and payout transition is in it once, and the `workflows` tick adds
`checkout.abandoned` (a checkout session with the buyer's email unpaid an hour after it started, once per
session, so webhooks see it too). Each workflow keeps a cursor over its account's feed (account_id, id). A look
takes the next `BATCH` events and enrolls, in ONE statement, those of the workflow's trigger type whose payment
(the event's payment, a refund's or dispute's payment, a renewal's charge) matches its criteria (the payments
index's filter, W5): INSERT … SELECT … ON CONFLICT (workflow, event) DO NOTHING RETURNING id; the outbox messages
for the new rows go in with one more statement, in the same transaction. The feed holds each transition once,
so (workflow, event) is (workflow, object, trigger event): an event applied twice, read twice, or two ticks at
once enroll once — the database decides, not the code's timing.

An event id is taken before its transaction commits, so a later id can be read first: every `LATE_COMMIT` the
look re-reads the window whose ids were all committed by then (`event_settled` … `event_seen`), once.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import Integer, String, cast, exists, func, literal, null, select
from sqlalchemy.dialects import postgresql, sqlite

from kassa.clock import account_today, now
from kassa.database import dialect_name, lock_one, write_transaction
from kassa.event_types import AccountEventType as Event
from kassa.extensions import db
from kassa.models import (
    Account,
    AccountEvent,
    CheckoutSession,
    Dispute,
    OutboxMessage,
    Payment,
    PaymentAttempt,
    Workflow,
    WorkflowEnrollment,
)
from kassa.services.backoffice.payment_filters import FilterContext, filter_clause, parse_filter
from kassa.services.platform import account_events
from kassa.services.platform.ticks import each_item, for_tick_account
from kassa.services.workflows import actions
from kassa.services.workflows.criteria import extra_clause as criteria_extra
from kassa.services.workflows.subjects import WITH_PAYMENT

log = logging.getLogger(__name__)

STEP_JOB = actions.STEP_JOB
BATCH = 2000
LATE_COMMIT = timedelta(minutes=2)
ABANDON_AFTER = timedelta(hours=1)  # the feed's checkout.abandoned; a workflow's own hours (≥ 1) wait longer
ABANDON_LOOKBACK = timedelta(days=7)


def _payment_id_of(trigger: Event):
    """The SQL expression for the payment an event of `trigger` is about (None: no payment)."""
    if trigger in (Event.PAYMENT_SUCCEEDED, Event.PAYMENT_FAILED, Event.PAYMENT_REFUNDED):
        return AccountEvent.object_id
    if trigger in (Event.DISPUTE_OPENED, Event.DISPUTE_CLOSED):
        return select(Dispute.payment_id).where(Dispute.id == AccountEvent.object_id).scalar_subquery()
    if trigger is Event.SUBSCRIPTION_RENEWED:
        return cast(AccountEvent.data["payment_id"].as_integer(), Integer)
    return None


def _enroll_window(session, workflow: Workflow, account: Account, after: int, upto: int) -> list[int]:
    """Enroll the workflow's events with ids in (after, upto]: one INSERT … SELECT, then one outbox insert."""
    import json

    trigger = Event(workflow.trigger)
    payment_id = _payment_id_of(trigger)
    stamp = literal(now(), WorkflowEnrollment.enrolled_at.type)
    query = select(
        AccountEvent.account_id, literal(workflow.id), payment_id if payment_id is not None else null(),
        AccountEvent.object_type, AccountEvent.object_id, AccountEvent.id, AccountEvent.type,
        literal(workflow.version), literal("pending"), literal(0), stamp,
    ).where(AccountEvent.account_id == workflow.account_id, AccountEvent.id > after, AccountEvent.id <= upto,
            AccountEvent.type == trigger.value)
    if payment_id is not None and trigger in WITH_PAYMENT:
        criteria = parse_filter(json.dumps(workflow.criteria)) if workflow.criteria else ()
        ctx = FilterContext(timezone=account.timezone, today=account_today(account))
        query = query.join(Payment, Payment.id == payment_id).where(filter_clause(criteria, ctx),
                                                                     criteria_extra(workflow))
    insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
    columns = ["account_id", "workflow_id", "payment_id", "object_type", "object_id", "event_id", "trigger_event",
               "workflow_version", "status", "step", "enrolled_at"]
    statement = (insert(WorkflowEnrollment).from_select(columns, query)
                 .on_conflict_do_nothing(index_elements=["workflow_id", "event_id"])
                 .returning(WorkflowEnrollment.id, WorkflowEnrollment.event_id))
    new = session.execute(statement).all()
    if not new:
        return []
    if trigger is Event.CHECKOUT_ABANDONED:
        # The feed's event is an hour after the session started; this workflow waits its own hours.
        extra = timedelta(hours=max(workflow.abandon_hours or 1, 1)) - ABANDON_AFTER
        when = dict(session.execute(select(AccountEvent.id, AccountEvent.occurred_at)
                                    .where(AccountEvent.id.in_([event_id for _, event_id in new]))).all())
        for enrollment_id, event_id in new:
            if extra:
                session.get(WorkflowEnrollment, enrollment_id).run_at = when[event_id] + extra
        session.flush()
    # One outbox message per new enrollment, in one INSERT … SELECT (this statement's rows: its workflow and
    # its `enrolled_at`); a message already queued for an enrollment (its dedupe key) stays as it is.
    payload = (func.json_build_object("enrollment_id", WorkflowEnrollment.id) if dialect_name(session) == "postgresql"
               else func.json_object("enrollment_id", WorkflowEnrollment.id))
    queued = select(literal(STEP_JOB), payload, WorkflowEnrollment.account_id,
                    literal("workflow_step:") + cast(WorkflowEnrollment.id, String),
                    literal("pending"), literal(0), func.coalesce(WorkflowEnrollment.run_at, stamp), stamp
                    ).where(WorkflowEnrollment.workflow_id == workflow.id, WorkflowEnrollment.enrolled_at == stamp)
    session.execute(insert(OutboxMessage).from_select(
        ["kind", "payload", "account_id", "dedupe_key", "status", "attempts", "next_attempt_at", "created_at"], queued)
        .on_conflict_do_nothing(index_elements=["dedupe_key"]))
    return [enrollment_id for enrollment_id, _ in new]


def enroll_workflow(workflow_id: int, batch: int = BATCH) -> int:
    """One look at the feed for one workflow (one transaction): returns how many enrollments were new. Safe to
    run twice or at once (the workflow's row is locked for its cursor; the unique key holds regardless)."""
    with write_transaction(db.session) as session:
        workflow = lock_one(session, Workflow, workflow_id)
        if workflow is None or not workflow.enabled:
            return 0
        account = session.get(Account, workflow.account_id)
        window = select(AccountEvent.id).where(AccountEvent.account_id == workflow.account_id,
                                               AccountEvent.id > workflow.event_cursor
                                               ).order_by(AccountEvent.id).limit(batch).subquery()
        upto = session.scalar(select(func.max(window.c.id)))
        count = 0
        if upto is not None:
            count += len(_enroll_window(session, workflow, account, workflow.event_cursor, upto))
            workflow.event_cursor = upto
        moment = now()
        if workflow.scanned_until is None or moment - workflow.scanned_until >= LATE_COMMIT:
            if workflow.event_seen > workflow.event_settled:  # ids up to event_seen have all committed by now
                count += len(_enroll_window(session, workflow, account, workflow.event_settled, workflow.event_seen))
            workflow.event_settled, workflow.event_seen = workflow.event_seen, workflow.event_cursor
            workflow.scanned_until = moment
        return count


def feed_end(account_id: int) -> int:
    """The account's last event id (a workflow turned on reads from after it: never older events)."""
    return db.session.scalar(select(func.max(AccountEvent.id)).where(AccountEvent.account_id == account_id)) or 0


def record_abandoned(limit: int = 500) -> int:
    """W6: each checkout session with the buyer's email (an attempt was made) that isn't paid an hour after it
    started gets one `checkout.abandoned` event in the feed (one transaction; a repeat finds it recorded)."""
    moment = now()
    recorded = exists().where(AccountEvent.object_type == "checkout_session",
                              AccountEvent.object_id == CheckoutSession.id,
                              AccountEvent.type == Event.CHECKOUT_ABANDONED.value)
    attempted = exists().where(PaymentAttempt.checkout_session_id == CheckoutSession.id)
    with write_transaction(db.session) as session:
        rows = session.execute(
            select(CheckoutSession.id, CheckoutSession.account_id, CheckoutSession.mode, CheckoutSession.created_at,
                   CheckoutSession.link_id)
            .where(CheckoutSession.status.in_(("open", "expired")),
                   CheckoutSession.created_at <= moment - ABANDON_AFTER,
                   CheckoutSession.created_at >= moment - ABANDON_LOOKBACK,
                   for_tick_account(CheckoutSession.account_id), attempted, ~recorded)
            .order_by(CheckoutSession.id).limit(limit)).all()
        paid = set(session.scalars(select(Payment.checkout_session_id).where(
            Payment.checkout_session_id.in_([row.id for row in rows]), Payment.status == "succeeded"))) if rows else set()
        events = [account_events.event_row(row.account_id, Event.CHECKOUT_ABANDONED, object_type="checkout_session",
                                           object_id=row.id, mode=row.mode, at=row.created_at + ABANDON_AFTER,
                                           data={"link_id": row.link_id})
                  for row in rows if row.id not in paid]
        account_events.insert_events(session, events)
        return len(events)


def enroll_due() -> int:
    """Tick task: record abandoned checkouts, then let every workflow that is on read its feed (one workflow
    failing skips only it)."""
    record_abandoned()
    workflow_ids = list(db.session.scalars(
        select(Workflow.id).where(Workflow.enabled.is_(True), for_tick_account(Workflow.account_id))
        .order_by(Workflow.id)))
    db.session.rollback()
    return each_item("workflows", workflow_ids, enroll_workflow, describe=lambda wid: f"workflow {wid}")


def trigger_takes_criteria(trigger: str) -> bool:
    return Event(trigger) in WITH_PAYMENT


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
