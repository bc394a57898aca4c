"""W6 property: random event streams — each transition applied once or several times (duplicated), objects in
any order (reordered), workflows' ticks run alone, two at once, or after their cursor was moved back (a feed
read again) — enroll each object in each workflow at most once per trigger event, and exactly once for every
event that matches the workflow's trigger and criteria. Both databases; a bounded number of examples (< 60 s)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import AccountEvent, OutboxMessage, Payment, PaymentStatus, Workflow, WorkflowEnrollment
from kassa.services.payments.payment_states import move_payment
from kassa.services.workflows import engine
from tests.factories import make_merchant, make_payment
from tests.support.concurrency import at_once

PAYMENTS = 5
AMOUNTS = (2000, 8000)  # €20 and €80: the "above €50" workflow takes only the second
# (trigger, criteria, which (status, amount) it takes)
WORKFLOWS = (
    ("payment.succeeded", [], lambda status, amount: status == "succeeded"),
    ("payment.succeeded", [[["amount", "gt", ["50"]]]], lambda status, amount: status == "succeeded" and amount > 5000),
    ("payment.failed", [[["amount", "gt", ["50"]]]], lambda status, amount: status == "failed" and amount > 5000),
    ("payment.failed", [], lambda status, amount: status == "failed"),
)

apply_op = st.tuples(st.just("apply"), st.integers(0, PAYMENTS - 1), st.sampled_from(("succeeded", "failed")))
tick_op = st.tuples(st.sampled_from(("tick", "two_ticks", "rewind")), st.integers(0, len(WORKFLOWS) - 1), st.just(""))
streams = st.lists(st.one_of(apply_op, tick_op), min_size=1, max_size=20)


def _setup():
    owner = make_merchant()
    payments = [make_payment(owner.account_id, status="processing", amount_minor=AMOUNTS[i % 2], created_at=now())
                for i in range(PAYMENTS)]
    workflow_ids = []
    with write_transaction(db.session) as session:
        for trigger, criteria, _ in WORKFLOWS:
            workflow = Workflow(account_id=owner.account_id, name=trigger, trigger=trigger, criteria=criteria,
                                actions=[{"type": "notify", "message": "x"}], enabled=True, enabled_at=now(),
                                scanned_until=now(), version=1)
            session.add(workflow)
            session.flush()
            workflow_ids.append(workflow.id)
    return owner, [p.id for p in payments], workflow_ids


def _apply(payment_id: int, outcome: str) -> None:
    """The transition applied (again): a repeat, or a move the machine refuses, records nothing."""
    with write_transaction(db.session) as session:
        payment = session.get(Payment, payment_id)
        if payment.status == "processing":
            assert move_payment(payment, PaymentStatus(outcome), at=now())
        elif payment.status == outcome:
            assert move_payment(payment, PaymentStatus(outcome), at=now()) is False


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(stream=streams)
def test_w6_property_random_event_streams_enroll_each_object_once_per_trigger_event(app, stream):
    owner, payment_ids, workflow_ids = _setup()
    for op, index, outcome in stream:
        if op == "apply":
            _apply(payment_ids[index], outcome)
        elif op == "tick":
            engine.enroll_workflow(workflow_ids[index])
        elif op == "two_ticks":
            at_once(app, lambda wid=workflow_ids[index]: engine.enroll_workflow(wid))
        else:  # the feed read again from the start: nothing already enrolled enrolls again
            with write_transaction(db.session) as session:
                session.execute(update(Workflow).where(Workflow.id == workflow_ids[index]).values(event_cursor=0))
        db.session.rollback()
    for _ in range(2):
        engine.enroll_due()
    db.session.rollback()

    events = db.session.execute(select(AccountEvent.id, AccountEvent.type, AccountEvent.object_id)
                                .where(AccountEvent.account_id == owner.account_id)).all()
    assert len({(e.type, e.object_id) for e in events}) == len(events)  # the feed: each transition once
    amounts = dict(db.session.execute(select(Payment.id, Payment.amount_minor)
                                      .where(Payment.id.in_(payment_ids))).all())
    for workflow_id, (trigger, _, takes) in zip(workflow_ids, WORKFLOWS, strict=True):
        expected = sorted((e.object_id, e.id) for e in events
                          if e.type == trigger and takes(trigger.split(".")[1], amounts[e.object_id]))
        enrolled = db.session.execute(select(WorkflowEnrollment.object_id, WorkflowEnrollment.event_id)
                                      .where(WorkflowEnrollment.workflow_id == workflow_id)).all()
        assert sorted(tuple(row) for row in enrolled) == expected
        queued = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.kind == engine.STEP_JOB, OutboxMessage.dedupe_key.in_(
                [f"workflow_step:{i}" for i in db.session.scalars(select(WorkflowEnrollment.id).where(
                    WorkflowEnrollment.workflow_id == workflow_id))])))
        assert queued == len(expected)  # one step queued per enrollment
