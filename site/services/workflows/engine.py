"""How account events reach workflows (W6) and how their actions run (W1, W2, W7).

Workflows read the account event feed (`account_events`, services/platform/account_events.py): every payment,
refund, subscription, dispute and payout transition is in it once, and the `workflows` tick adds
`checkout.abandoned` (a checkout session with the buyer's email unpaid an hour after it started, once per
session, so webhooks see it too). Each workflow keeps a cursor over its account's feed (account_id, id). The tick
looks at each account's feed once for all its workflows that are on (their rows locked): each takes the next
`BATCH` events after its cursor, and all of them enroll in ONE statement those events of their trigger type whose
payment (the event's payment, a refund's or dispute's payment, a renewal's charge) matches their criteria (the
payments index's filter, W5): INSERT … SELECT … UNION ALL … ON CONFLICT (workflow, event) DO NOTHING, the
outbox messages of the new rows going in with it (PostgreSQL: the same statement; SQLite: one more, same
transaction). The criteria are built once and kept, so the statement compiles once. The feed holds each
transition once, so (workflow, event) is (workflow, object, trigger event): an event applied twice, read twice,
or two ticks at once enroll once — the database decides, not the code's timing.

An event id is taken before its transaction commits, so a later id can be read first: every `LATE_COMMIT` the
look re-reads the window whose ids were all committed by then (`event_settled` … `event_seen`), once.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    cast,
    exists,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite

from kassa.clock import account_today, now
from kassa.database import dialect_name, lock_one, locked, write_transaction
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
BATCH = 5000
LATE_COMMIT = timedelta(minutes=2)
ABANDON_AFTER = timedelta(hours=1)  # the feed's checkout.abandoned; a workflow's own hours (≥ 1) wait longer
ABANDON_LOOKBACK = timedelta(days=7)
PARTS_PER_STATEMENT = 50  # workflows in one INSERT … SELECT … UNION ALL (SQLite: ≤ 500 selects, ≤ 32,766 values)
ENROLL_COLUMNS = ["account_id", "workflow_id", "payment_id", "object_type", "object_id", "event_id",
                  "trigger_event", "workflow_version", "status", "step", "enrolled_at"]
QUEUE_COLUMNS = ["kind", "payload", "account_id", "dedupe_key", "status", "attempts", "next_attempt_at", "created_at"]
_CRITERIA_CACHE: dict[tuple, ColumnElement] = {}
_CRITERIA_CACHE_SIZE = 2000


def _payment_id_of(trigger: Event):
    """The SQL expression for the payment an event of `trigger` is about (None: no payment)."""
    if trigger in (Event.PAYMENT_SUCCEEDED, Event.PAYMENT_FAILED, Event.PAYMENT_REFUNDED):
        return AccountEvent.object_id
    if trigger in (Event.DISPUTE_OPENED, Event.DISPUTE_CLOSED):
        return select(Dispute.payment_id).where(Dispute.id == AccountEvent.object_id).scalar_subquery()
    if trigger is Event.SUBSCRIPTION_RENEWED:
        return cast(AccountEvent.data["payment_id"].as_integer(), Integer)
    return None


def _filter_of(workflow: Workflow, ctx: FilterContext) -> ColumnElement:
    """The workflow's criteria (the payments index's filter, W5) as SQL, built once per criteria, time zone and
    day (a relative date moves with the day) and kept: its values are bound, so the statements that use it
    compile once too (SQLAlchemy's compiled cache)."""
    key = (json.dumps(workflow.criteria, sort_keys=True), ctx.timezone, ctx.today)
    clause = _CRITERIA_CACHE.get(key)
    if clause is None:
        clause = filter_clause(parse_filter(json.dumps(workflow.criteria)) if workflow.criteria else (), ctx)
        if len(_CRITERIA_CACHE) >= _CRITERIA_CACHE_SIZE:
            _CRITERIA_CACHE.clear()
        _CRITERIA_CACHE[key] = clause
    return clause


def _select_part(workflow: Workflow, ctx: FilterContext, after: int, upto: int, stamp) -> Select:
    """The workflow's enrollments among the events with ids in (after, upto]: the events of its trigger whose
    payment matches its criteria, as rows of `workflow_enrollments` (ENROLL_COLUMNS)."""
    trigger = Event(workflow.trigger)
    payment_id = _payment_id_of(trigger)
    query = select(
        AccountEvent.account_id, literal(workflow.id), payment_id if payment_id is not None else cast(null(), Integer),
        AccountEvent.object_type, AccountEvent.object_id, AccountEvent.id, AccountEvent.type,
        literal(workflow.version), literal("pending"), literal(0), stamp,
    ).where(AccountEvent.account_id == workflow.account_id, AccountEvent.id > after, AccountEvent.id <= upto,
            AccountEvent.type == trigger.value)
    if payment_id is not None and trigger in WITH_PAYMENT:
        query = query.join(Payment, Payment.id == payment_id).where(_filter_of(workflow, ctx),
                                                                     criteria_extra(workflow))
    return query


def _queue_select(ids, account_id, run_at, stamp, postgresql_: bool) -> Select:
    """One outbox message per enrollment (its dedupe key: `workflow_step:<id>`), due at its `run_at` or now."""
    payload = (func.json_build_object("enrollment_id", ids) if postgresql_ else func.json_object("enrollment_id", ids))
    return select(literal(STEP_JOB), payload, account_id, literal("workflow_step:") + cast(ids, String),
                  literal("pending"), literal(0), func.coalesce(run_at, stamp), stamp)


def _enroll_set(session, ctx: FilterContext, parts: list[tuple[Workflow, int, int]], stamp, queue: bool) -> int:
    """Enroll the parts' workflows (each over its own event window) in ONE statement: INSERT … SELECT … UNION
    ALL … ON CONFLICT (workflow, event) DO NOTHING. With `queue`, the outbox messages of the new rows go in with
    it: on PostgreSQL in the same statement (the insert is a CTE whose RETURNING feeds the outbox insert), on
    SQLite in one more INSERT … SELECT of the rows this transaction stamped. Returns how many rows were new."""
    postgresql_ = dialect_name(session) == "postgresql"
    insert = postgresql.insert if postgresql_ else sqlite.insert
    selects = [_select_part(workflow, ctx, after, upto, stamp) for workflow, after, upto in parts]
    rows = selects[0] if len(selects) == 1 else union_all(*selects)
    enroll = (insert(WorkflowEnrollment.__table__).from_select(ENROLL_COLUMNS, rows)
              .on_conflict_do_nothing(index_elements=["workflow_id", "event_id"]))
    if postgresql_:  # (the driver reports no row count for INSERT … SELECT: the CTE's RETURNING is counted)
        new = enroll.returning(WorkflowEnrollment.id, WorkflowEnrollment.account_id,
                               WorkflowEnrollment.run_at).cte("new_enrollments")
        counted = select(func.count()).select_from(new)
        if queue:
            counted = counted.add_cte(
                insert(OutboxMessage.__table__)
                .from_select(QUEUE_COLUMNS, _queue_select(new.c.id, new.c.account_id, new.c.run_at, stamp, True))
                .on_conflict_do_nothing(index_elements=["dedupe_key"]).cte("queued_steps"))
        return session.scalar(counted)
    count = session.execute(enroll).rowcount
    if count and queue:
        _queue(session, [workflow.id for workflow, _, _ in parts], stamp)
    return count


def _queue(session, workflow_ids: list[int], stamp) -> None:
    """The outbox messages of the enrollments of these workflows stamped `stamp` (this transaction's: their
    rows are locked); a message already queued for an enrollment (its dedupe key) stays as it is."""
    insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
    queued = _queue_select(WorkflowEnrollment.id, WorkflowEnrollment.account_id, WorkflowEnrollment.run_at, stamp,
                           dialect_name(session) == "postgresql"
                           ).where(WorkflowEnrollment.workflow_id.in_(workflow_ids),
                                   WorkflowEnrollment.enrolled_at == stamp)
    session.execute(insert(OutboxMessage.__table__).from_select(QUEUE_COLUMNS, queued)
                    .on_conflict_do_nothing(index_elements=["dedupe_key"]))


def _enroll(session, account: Account, parts: list[tuple[Workflow, int, int]]) -> int:
    """Enroll each (workflow, after, upto) part's matching events (one statement per PARTS_PER_STATEMENT
    workflows); a checkout-abandoned workflow's rows wait its own hours (their `run_at`) before they are queued."""
    parts = [part for part in parts if part[2] > part[1]]
    if not parts:
        return 0
    stamp = literal(now(), WorkflowEnrollment.enrolled_at.type)
    ctx = FilterContext(timezone=account.timezone, today=account_today(account))
    plain = [part for part in parts if part[0].trigger != Event.CHECKOUT_ABANDONED.value]
    count = 0
    for start in range(0, len(plain), PARTS_PER_STATEMENT):
        count += _enroll_set(session, ctx, plain[start:start + PARTS_PER_STATEMENT], stamp, queue=True)
    for workflow, after, upto in parts:
        if workflow.trigger != Event.CHECKOUT_ABANDONED.value:
            continue
        new = _enroll_set(session, ctx, [(workflow, after, upto)], stamp, queue=False)
        if new:
            count += new
            _wait_abandoned(session, workflow, stamp.value)
            _queue(session, [workflow.id], stamp)
    return count


def _wait_abandoned(session, workflow: Workflow, stamp) -> None:
    """The feed's checkout.abandoned is an hour after the session started; this workflow waits its own hours
    (the `run_at` of its rows stamped `stamp` that have none yet)."""
    extra = timedelta(hours=max(workflow.abandon_hours or 1, 1)) - ABANDON_AFTER
    if not extra:
        return
    for enrollment, occurred_at in session.execute(
            select(WorkflowEnrollment, AccountEvent.occurred_at)
            .join(AccountEvent, AccountEvent.id == WorkflowEnrollment.event_id)
            .where(WorkflowEnrollment.workflow_id == workflow.id, WorkflowEnrollment.enrolled_at == stamp,
                   WorkflowEnrollment.run_at.is_(None))).all():
        enrollment.run_at = occurred_at + extra
    session.flush()


def _look(session, account: Account, workflows: list[Workflow], batch: int) -> int:
    """One look at the account's feed for these workflows (their rows locked): each reads the next `batch`
    events after its cursor (workflows at the same cursor, the usual case, share one window) and all of them
    enroll in one statement; then the late-commit checkpoint of those whose LATE_COMMIT has passed."""
    upto_of: dict[int, int | None] = {}
    for cursor in sorted({workflow.event_cursor for workflow in workflows}):
        window = select(AccountEvent.id).where(AccountEvent.account_id == account.id, AccountEvent.id > cursor
                                               ).order_by(AccountEvent.id).limit(batch).subquery()
        upto_of[cursor] = session.scalar(select(func.max(window.c.id)))
    parts = [(workflow, workflow.event_cursor, upto_of[workflow.event_cursor]) for workflow in workflows
             if upto_of[workflow.event_cursor] is not None]
    count = _enroll(session, account, parts)
    for workflow, _, upto in parts:
        workflow.event_cursor = upto
    moment = now()
    late = []
    for workflow in workflows:
        if workflow.scanned_until is None or moment - workflow.scanned_until >= LATE_COMMIT:
            if workflow.event_seen > workflow.event_settled:  # ids up to event_seen have all committed by now
                late.append((workflow, workflow.event_settled, workflow.event_seen))
            workflow.event_settled, workflow.event_seen = workflow.event_seen, workflow.event_cursor
            workflow.scanned_until = moment
    return count + _enroll(session, account, late)


def enroll_workflow(workflow_id: int, batch: int = BATCH) -> int:
    """One look at the feed for one workflow (one transaction): returns how many enrollments were new. Safe to
    run twice or at once (the workflow's row is locked for its cursor; the unique key holds regardless)."""
    with write_transaction(db.session) as session:
        workflow = lock_one(session, Workflow, workflow_id)
        if workflow is None or not workflow.enabled:
            return 0
        return _look(session, session.get(Account, workflow.account_id), [workflow], batch)


def enroll_account(account_id: int, batch: int = BATCH) -> int:
    """One look at the feed for every workflow of the account that is on, in one pass (one transaction, one
    enrollment statement for all of them). Safe to run twice or at once: the workflows' rows are locked in id
    order; the unique key holds regardless."""
    with write_transaction(db.session) as session:
        workflows = list(session.scalars(locked(session, select(Workflow).where(
            Workflow.account_id == account_id, Workflow.enabled.is_(True)).order_by(Workflow.id))
            .execution_options(populate_existing=True)))
        if not workflows:
            return 0
        return _look(session, session.get(Account, account_id), workflows, batch)


def _enroll_account_or_each(item: tuple[int, list[int]]) -> int:
    """The account's workflows in one pass; if that fails, each on its own, so one workflow that can't be
    evaluated (a broken criterion) skips only itself (H1)."""
    account_id, workflow_ids = item
    try:
        return enroll_account(account_id)
    except Exception:
        db.session.rollback()
        log.warning("workflows of account %s: the one-pass look failed; each workflow on its own", account_id,
                    exc_info=True)
        return each_item("workflows", workflow_ids, enroll_workflow, describe=lambda wid: f"workflow {wid}")


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
    """Tick task: record abandoned checkouts, then let every account's workflows that are on read its feed, one
    pass per account (one account failing skips only it; within it, one workflow failing skips only it)."""
    record_abandoned()
    rows = db.session.execute(
        select(Workflow.account_id, Workflow.id).where(Workflow.enabled.is_(True), for_tick_account(Workflow.account_id))
        .order_by(Workflow.account_id, Workflow.id)).all()
    db.session.rollback()
    accounts: dict[int, list[int]] = {}
    for account_id, workflow_id in rows:
        accounts.setdefault(account_id, []).append(workflow_id)
    return each_item("workflows", list(accounts.items()), _enroll_account_or_each,
                     describe=lambda item: f"account {item[0]}'s workflows")


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
