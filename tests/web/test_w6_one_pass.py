"""W6 throughput: the workflows tick reads an account's event feed once for all its workflows that are on (one
pass, one enrollment statement with the outbox messages). Each workflow still enrolls only the events after its
own cursor, matching its own criteria, once per (workflow, event) with two ticks at once; a workflow whose
criteria can't be evaluated skips only itself; criteria edited take effect at the next look (the built criteria
are kept by their content, never by the workflow alone)."""

from __future__ import annotations

from sqlalchemy import func, select, update

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import OutboxMessage, Workflow, WorkflowEnrollment
from kassa.services.platform.ticks import item_failures
from kassa.services.workflows import engine
from tests.factories import make_merchant, make_payment
from tests.support.concurrency import at_once


def _workflow(account_id: int, trigger: str, criteria: list | None = None) -> int:
    """A workflow that is on from now: it reads the feed after its current end (as turning it on does)."""
    end = engine.feed_end(account_id)
    db.session.rollback()
    with write_transaction(db.session) as session:
        workflow = Workflow(account_id=account_id, name=trigger, trigger=trigger, criteria=criteria or [],
                            actions=[{"type": "notify", "message": "x"}], enabled=True, enabled_at=now(),
                            scanned_until=now(), event_cursor=end, event_seen=end, event_settled=end, version=1)
        session.add(workflow)
        session.flush()
        return workflow.id


def _paid(account_id: int, amount_minor: int, status: str = "succeeded") -> int:
    return make_payment(account_id, amount_minor=amount_minor, status=status, created_at=now(), feed=True).id


def _enrolled(workflow_id: int) -> list[int]:
    db.session.rollback()
    return sorted(db.session.scalars(select(WorkflowEnrollment.payment_id)
                                     .where(WorkflowEnrollment.workflow_id == workflow_id)))


def _queued(workflow_id: int) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.kind == engine.STEP_JOB, OutboxMessage.dedupe_key.in_(
            [f"workflow_step:{i}" for i in db.session.scalars(select(WorkflowEnrollment.id).where(
                WorkflowEnrollment.workflow_id == workflow_id))])))


def test_w6_one_pass_enrolls_every_workflow_of_the_account_from_its_own_cursor_with_its_own_criteria(app):
    owner = make_merchant()
    other = make_merchant()
    anyone = _workflow(owner.account_id, "payment.succeeded")
    above_50 = _workflow(owner.account_id, "payment.succeeded", [[["amount", "gt", ["50"]]]])
    failed = _workflow(owner.account_id, "payment.failed")
    small, big = _paid(owner.account_id, 2000), _paid(owner.account_id, 8000)
    declined = _paid(owner.account_id, 9000, status="failed")
    later = _workflow(owner.account_id, "payment.succeeded")  # turned on after those: it never sees them
    last = _paid(owner.account_id, 6000)
    elsewhere = _workflow(other.account_id, "payment.succeeded")  # another account: its own pass, its own feed
    theirs = _paid(other.account_id, 3000)

    assert engine.enroll_due() == 3 + 2 + 1 + 1 + 1
    assert engine.enroll_due() == 0  # read once: the next look finds nothing new
    assert _enrolled(anyone) == sorted([small, big, last])
    assert _enrolled(above_50) == sorted([big, last])
    assert _enrolled(failed) == [declined]
    assert _enrolled(later) == [last]
    assert _enrolled(elsewhere) == [theirs]
    for workflow_id, count in ((anyone, 3), (above_50, 2), (failed, 1), (later, 1), (elsewhere, 1)):
        assert _queued(workflow_id) == count  # one step queued per enrollment, with it
    db.session.rollback()
    cursors = set(db.session.scalars(select(Workflow.event_cursor).where(Workflow.account_id == owner.account_id)))
    assert cursors == {engine.feed_end(owner.account_id)}


def test_w6_two_ticks_at_once_over_an_accounts_workflows_enroll_each_event_once(app):
    owner = make_merchant()
    workflows = [_workflow(owner.account_id, "payment.succeeded"),
                 _workflow(owner.account_id, "payment.succeeded", [[["amount", "gt", ["50"]]]]),
                 _workflow(owner.account_id, "payment.failed")]
    payments = [_paid(owner.account_id, 2000), _paid(owner.account_id, 8000), _paid(owner.account_id, 7000, "failed")]

    assert sorted(at_once(app, engine.enroll_due)) == [0, 4]  # the workflows' rows are locked: one tick enrolls
    with write_transaction(db.session) as session:  # the feed read again from its start: nothing enrolls twice
        session.execute(update(Workflow).where(Workflow.id.in_(workflows)).values(event_cursor=0))
    assert sorted(at_once(app, engine.enroll_due)) == [0, 0]
    assert _enrolled(workflows[0]) == sorted(payments[:2])
    assert _enrolled(workflows[1]) == [payments[1]]
    assert _enrolled(workflows[2]) == [payments[2]]
    assert [_queued(workflow_id) for workflow_id in workflows] == [2, 1, 1]


def test_w6_a_workflow_whose_criteria_cant_be_evaluated_skips_only_itself(app):
    owner = make_merchant()
    good = _workflow(owner.account_id, "payment.succeeded")
    broken = _workflow(owner.account_id, "payment.succeeded")
    with write_transaction(db.session) as session:  # a criterion no longer in the filter language
        session.execute(update(Workflow).where(Workflow.id == broken)
                        .values(criteria=[[["no_such_property", "eq", ["1"]]]]))
    paid = _paid(owner.account_id, 2000)
    before = item_failures().get("workflows", 0)

    assert engine.enroll_due() == 1
    assert _enrolled(good) == [paid] and _enrolled(broken) == []
    assert item_failures().get("workflows", 0) == before + 1  # logged and counted; retried on a later tick
    db.session.rollback()
    assert db.session.get(Workflow, broken).event_cursor < engine.feed_end(owner.account_id)  # still due
    with write_transaction(db.session) as session:  # fixed: it reads what it missed, once
        session.execute(update(Workflow).where(Workflow.id == broken).values(criteria=[]))
    assert engine.enroll_due() == 1
    assert _enrolled(broken) == [paid] and _enrolled(good) == [paid]


def test_w6_criteria_edited_take_effect_at_the_next_look(app):
    owner = make_merchant()
    workflow = _workflow(owner.account_id, "payment.succeeded", [[["amount", "gt", ["50"]]]])
    _paid(owner.account_id, 2000)
    assert engine.enroll_due() == 0  # €20 is not above €50
    with write_transaction(db.session) as session:
        session.execute(update(Workflow).where(Workflow.id == workflow)
                        .values(criteria=[[["amount", "gt", ["10"]]]]))
    second = _paid(owner.account_id, 2000)
    assert engine.enroll_due() == 1  # the edited criteria, not the ones built for the first look
    assert _enrolled(workflow) == [second]
