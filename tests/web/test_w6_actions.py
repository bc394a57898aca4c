"""Workflow actions (W6, W7): a workflow is a sequence of steps — notify the team (in the bell and by email),
wait (hours or days, on the test clock), send an email to the buyer with merge fields, add the buyer's contact
to a segment or remove it; each step's outcome shows in the history (done, waiting, skipped, retried, failed
with the reason); turning the workflow off cancels a waiting step; the editor adds and removes steps and
puts bad input at its field, changing nothing."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from sqlalchemy import select

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import (
    EmailMessage,
    Notification,
    Payment,
    Segment,
    Workflow,
    WorkflowEnrollment,
    WorkflowStepRun,
)
from kassa.services.backoffice import segments
from kassa.services.crm.crm import find_or_create_contact
from kassa.services.platform.ticks import run_tick
from kassa.services.workflows import actions
from tests.factories import PASSWORD, make_merchant, make_payment
from tests.support.app import log_in, page_text, run_outbox
from tests.support.links import errors_of

BASE = {"name": "Big payers", "trigger": "payment.succeeded", "link_id": "", "min_amount": "", "filter": ""}


def step(index: int, action: str, **fields) -> dict[str, str]:
    prefix = "" if index == 0 else f"s{index}_"
    return {prefix + "action": action, **{prefix + key: value for key, value in fields.items()}}


def save(client, *steps: dict, path: str = "/workflows/new", **values) -> Workflow:
    data = {**BASE, "steps": str(len(steps)), **values}
    for fields in steps:
        data.update(fields)
    response = client.post(path, data=data)
    assert response.status_code == 303, errors_of(response)
    db.session.rollback()
    return db.session.scalars(select(Workflow).order_by(Workflow.id.desc())).first()


def turn(client, workflow: Workflow, state: str) -> None:
    assert client.post(f"/workflows/{workflow.id}/switch", data={"enabled": state}).status_code == 303


def paid(owner, email: str = "ada@example.com", **fields) -> Payment:
    payment = make_payment(owner.account_id, email=email, created_at=now(), feed=True, buyer_name="Ada Lovelace", **fields)
    with write_transaction(db.session) as session:
        contact = find_or_create_contact(owner.account_id, payment.mode, email)
        session.get(Payment, payment.id).contact_id = contact.id
    db.session.rollback()
    return db.session.get(Payment, payment.id)


def segment_of(owner, name: str, criteria=None) -> Segment:
    with write_transaction(db.session) as session:
        segment = Segment(account_id=owner.account_id, name=name, criteria=criteria or [])
        session.add(segment)
        session.flush()
        segment_id = segment.id
    return db.session.get(Segment, segment_id)


def runs(workflow_id: int) -> list[tuple[int, str, str]]:
    db.session.rollback()
    return [(r.step, r.action, r.status) for r in db.session.scalars(
        select(WorkflowStepRun).join(WorkflowEnrollment, WorkflowEnrollment.id == WorkflowStepRun.enrollment_id)
        .where(WorkflowEnrollment.workflow_id == workflow_id).order_by(WorkflowStepRun.enrollment_id, WorkflowStepRun.step))]


def emails(kind: str) -> list[EmailMessage]:
    db.session.rollback()
    return list(db.session.scalars(select(EmailMessage).where(EmailMessage.kind == kind).order_by(EmailMessage.id)))


def test_w6_notify_wait_email_and_segment_steps_run_in_order_on_the_test_clock(client):
    owner = make_merchant(company="Concert Hall")
    log_in(client, owner.email, PASSWORD)
    vip = segment_of(owner, "VIP")
    workflow = save(client,
                    step(0, "notify", message="{name} paid {amount}"),
                    step(1, "wait", wait_amount="2", wait_unit="days"),
                    step(2, "email", subject="Thanks, {first_name}", body="From {business_name}"),
                    step(3, "segment_add", target_segment=str(vip.id)))
    assert [a["type"] for a in workflow.actions] == ["notify", "wait", "email", "segment_add"]
    assert workflow.actions[1] == {"type": "wait", "amount": 2, "unit": "days"}
    turn(client, workflow, "on")
    payment = paid(owner, amount_minor=9900)
    run_tick()
    run_outbox()

    # Step 1: the team's bell and inbox; the steps after the wait haven't run.
    notes = db.session.scalars(select(Notification).where(Notification.user_id == owner.id)).all()
    assert [n.text for n in notes if "Big payers" in n.text] == ["Big payers: Ada Lovelace paid $99.00"]
    team_mail = emails("workflow_notify")
    assert [m.to_addrs for m in team_mail] == [[owner.email]] and "Ada Lovelace paid $99.00" in team_mail[0].text_body
    assert runs(workflow.id) == [(0, "notify", "done"), (1, "wait", "waiting")]
    assert emails("workflow_email") == [] and not segments.contains(vip.id, payment.contact_id)
    history = page_text(client.get(f"/workflows/{workflow.id}"))
    assert "1 person notified" in history and "Waiting" in history and "until" in history

    with time_machine.travel(now() + timedelta(days=1, hours=23), tick=False):
        run_outbox()  # not yet: the wait is two days
        assert runs(workflow.id)[-1] == (1, "wait", "waiting")
    with time_machine.travel(now() + timedelta(days=2, minutes=1), tick=False):
        run_outbox()
        assert runs(workflow.id) == [(0, "notify", "done"), (1, "wait", "done"), (2, "email", "done"),
                                     (3, "segment_add", "done")]
        run_outbox()
    buyer_mail = emails("workflow_email")
    assert [(m.to_addrs, m.subject) for m in buyer_mail] == [(["ada@example.com"], "Thanks, Ada")]
    assert "From Concert Hall" in buyer_mail[0].text_body
    assert segments.contains(vip.id, payment.contact_id)  # the workflow added the buyer to the segment
    enrollment = db.session.scalars(select(WorkflowEnrollment).where(WorkflowEnrollment.workflow_id == workflow.id)).one()
    assert (enrollment.status, enrollment.step) == ("done", 4)
    history = page_text(client.get(f"/workflows/{workflow.id}"))
    assert "Email sent" in history and "Add to a segment" in history and "Wait 2 days" in history


def test_w7_turning_off_cancels_a_waiting_step(client):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    workflow = save(client, step(0, "wait", wait_amount="3", wait_unit="hours"),
                    step(1, "email", subject="Later", body="Hi"))
    turn(client, workflow, "on")
    paid(owner)
    run_tick()
    run_outbox()
    assert runs(workflow.id) == [(0, "wait", "waiting")]
    turn(client, workflow, "off")
    db.session.rollback()
    enrollment = db.session.scalars(select(WorkflowEnrollment)).one()
    assert enrollment.status == "cancelled"  # at once, not when the worker gets there
    with time_machine.travel(now() + timedelta(hours=4), tick=False):
        run_outbox()
    assert emails("workflow_email") == []
    assert "Cancelled: the workflow was turned off" in page_text(client.get(f"/workflows/{workflow.id}"))


def test_w6_remove_from_segment_and_a_payment_without_contact_is_skipped(client):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    cards = segment_of(owner, "Card payers", [[["method", "any_of", ["card"]]]])
    workflow = save(client, step(0, "segment_remove", target_segment=str(cards.id)), trigger="payment.succeeded")
    turn(client, workflow, "on")
    payment = paid(owner)
    assert segments.contains(cards.id, payment.contact_id)  # a card payment: in the segment by its filter
    no_contact = make_payment(owner.account_id, created_at=now(), feed=True)
    run_tick()
    run_outbox()
    assert not segments.contains(cards.id, payment.contact_id)  # removed, though its payment matches
    assert sorted(runs(workflow.id)) == [(0, "segment_remove", "done"), (0, "segment_remove", "skipped")]
    assert "The payment has no contact." in page_text(client.get(f"/workflows/{workflow.id}"))
    assert no_contact.contact_id is None


def test_w7_a_failing_step_shows_retrying_then_done_with_its_retry_count_or_failed_with_the_reason(
        client, app, monkeypatch):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    workflow = save(client, step(0, "notify", message="Paid"))
    turn(client, workflow, "on")
    real = actions.HANDLERS["notify"]
    tries = []

    def flaky(action, ctx):
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("mail relay down")
        return real(action, ctx)

    monkeypatch.setitem(actions.HANDLERS, "notify", flaky)
    paid(owner)
    run_tick()
    run_outbox()
    assert runs(workflow.id) == [(0, "notify", "retrying")]
    assert "mail relay down" in page_text(client.get(f"/workflows/{workflow.id}"))
    with time_machine.travel(now() + timedelta(minutes=5), tick=False):
        run_outbox()
    assert runs(workflow.id) == [(0, "notify", "done")]
    run = db.session.scalars(select(WorkflowStepRun)).one()
    assert run.attempts == 2
    assert "retried 1 time" in page_text(client.get(f"/workflows/{workflow.id}"))

    # Every try fails: the step and the enrollment say failed, with the reason.
    def broken(action, ctx):
        raise RuntimeError("no team mailbox")

    monkeypatch.setitem(actions.HANDLERS, "notify", broken)
    monkeypatch.setitem(app.config, "KASSA_OUTBOX_MAX_ATTEMPTS", 2)
    paid(owner, email="bob@example.com")
    run_tick()
    run_outbox()
    with time_machine.travel(now() + timedelta(minutes=5), tick=False):
        run_outbox()
    db.session.rollback()
    failed = db.session.scalars(select(WorkflowEnrollment).where(WorkflowEnrollment.status == "failed")).one()
    assert "no team mailbox" in failed.detail
    assert sorted(r[2] for r in runs(workflow.id)) == ["done", "failed"]
    history = page_text(client.get(f"/workflows/{workflow.id}"))
    assert "Failed" in history and "no team mailbox" in history


def test_w6_editor_adds_and_removes_steps_and_bad_input_changes_nothing(client):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    theirs = segment_of(make_merchant(), "Theirs")
    added = client.post("/workflows/new", data={**BASE, **step(0, "notify", message="x"), "steps": "1",
                                                "editor_action": "add_step"})
    assert added.status_code == 200 and 'name="s1_action"' in added.get_data(as_text=True)
    removed = client.post("/workflows/new", data={**BASE, **step(0, "notify", message="first"),
                                                  **step(1, "wait", wait_amount="1"),
                                                  **step(2, "notify", message="third"), "steps": "3",
                                                  "editor_action": "remove_step:1"})
    body = removed.get_data(as_text=True)
    assert 'name="s2_action"' not in body and 'value="third"' in body and 'name="s1_message"' in body
    for fields, error_field in (
            (step(0, "wait", wait_amount="0", wait_unit="days"), "wait_amount"),
            (step(0, "wait", wait_amount="2", wait_unit="weeks"), "wait_unit"),
            (step(0, "notify", message=""), "message"),
            (step(0, "notify", message="Hi {nickname}"), "message"),
            (step(0, "segment_add", target_segment=""), "target_segment"),
            (step(0, "segment_remove", target_segment=str(theirs.id)), "target_segment"),
            ({**step(0, "notify", message="ok"), **step(1, "task", task_title="")}, "s1_task_title"),
            ({**step(0, "notify", message="ok"), "in_segment": str(theirs.id)}, "in_segment"),
            (step(0, "teleport"), "action")):
        steps = "2" if "s1_action" in fields else "1"
        response = client.post("/workflows/new", data={**BASE, **fields, "steps": steps})
        assert response.status_code == 422 and error_field in errors_of(response), (fields, errors_of(response))
    wait_only = client.post("/workflows/new", data={**BASE, **step(0, "wait", wait_amount="1", wait_unit="hours")})
    assert wait_only.status_code == 422 and "action" in errors_of(wait_only)
    assert db.session.scalars(select(Workflow)).all() == []


def test_w6_editing_steps_is_a_new_version_and_the_editor_shows_them(client):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    workflow = save(client, step(0, "notify", message="Paid"), step(1, "wait", wait_amount="5", wait_unit="hours"))
    edit_page = client.get(f"/workflows/{workflow.id}/edit").get_data(as_text=True)
    assert 'name="s1_wait_amount"' in edit_page and 'value="5"' in edit_page
    saved = save(client, step(0, "notify", message="Paid"), step(1, "wait", wait_amount="6", wait_unit="hours"),
                 path=f"/workflows/{workflow.id}/edit")
    assert saved.id == workflow.id and saved.version == 2 and saved.actions[1]["amount"] == 6
