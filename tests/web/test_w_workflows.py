"""Workflows (W1, W2, W5, W6, W7): a welcome email to every payer of a link, sent once even when two ticks
run at once; a task when a payment above an amount fails, done and undone in the Tasks inbox; criteria in
the payments index's own filter language; turning a workflow off stops new enrollments and pending steps;
another merchant's workflow or task is a 404; a bad form gets errors at its fields and changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select, update

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import EmailMessage, Task, Workflow, WorkflowEnrollment
from kassa.services.backoffice.payment_filters import FilterContext, filter_clause, parse_filter
from kassa.services.platform.ticks import run_tick
from kassa.services.workflows import engine
from tests.factories import PASSWORD, make_merchant, make_payment
from tests.support.app import log_in, page_text, run_outbox
from tests.support.checkout_flow import make_link
from tests.support.concurrency import at_once
from tests.support.links import errors_of, form_values, soup_of


def _create(client, **values) -> Workflow:
    data = {"name": "Welcome", "trigger": "payment.succeeded", "action": "email", "subject": "", "body": "",
            "link_id": "", "min_amount": "", "filter": "", "task_title": "", "assignee_id": "", "due_days": "",
            **values}
    response = client.post("/workflows/new", data=data)
    assert response.status_code == 303, errors_of(response)
    db.session.rollback()
    workflow = db.session.scalars(select(Workflow).order_by(Workflow.id.desc())).first()
    return workflow


def _turn(client, workflow: Workflow, state: str) -> None:
    assert "Turn " in page_text(client.get(f"/workflows/{workflow.id}/switch"))  # the confirmation first
    assert client.post(f"/workflows/{workflow.id}/switch", data={"enabled": state}).status_code == 303


def _paid(owner, **fields):
    """A payment whose event happens now (after the workflow was turned on)."""
    return make_payment(owner.account_id, created_at=now(), feed=True, **fields)


def _failed(owner, **fields):
    payment = make_payment(owner.account_id, status="failed", created_at=now(), feed=True, **fields)
    from kassa.database import write_transaction
    from kassa.models import Payment

    with write_transaction(db.session) as session:
        session.get(Payment, payment.id).failed_at = now()
    return payment


def _two_ticks_at_once(app) -> list[int]:
    """Two workers tick at the same instant, each with its own app context and database session."""
    return at_once(app, engine.enroll_due)


def _workflow_emails(account_id: int) -> list[EmailMessage]:
    db.session.rollback()
    return list(db.session.scalars(select(EmailMessage).where(EmailMessage.account_id == account_id,
                                                              EmailMessage.kind == "workflow_email")
                                   .order_by(EmailMessage.id)))


def _enrollments(workflow_id: int) -> list[WorkflowEnrollment]:
    db.session.rollback()
    return list(db.session.scalars(select(WorkflowEnrollment).where(WorkflowEnrollment.workflow_id == workflow_id)
                                   .order_by(WorkflowEnrollment.id)))


def test_w1_welcome_email_to_every_payer_of_a_link_once_even_with_two_ticks_at_once(client, app):
    owner = make_merchant(company="Concert Hall")
    link, other = make_link(owner, name="Spring concert"), make_link(owner, name="Summer concert")
    log_in(client, owner.email, PASSWORD)
    workflow = _create(client, link_id=str(link.id), subject="Welcome, {first_name}!",
                       body="Thank you for {amount} for {link_name}.\n\nSee you there, {business_name}")
    assert workflow.criteria == [[["link", "eq", [str(link.id)]]]]  # W5: the index's filter, as it stores it
    old = make_payment(owner.account_id, link_id=link.id)  # paid before the workflow was on: never enrolled
    _turn(client, workflow, "on")
    ada = _paid(owner, link_id=link.id, buyer_name="Ada Lovelace", email="ada@example.com", amount_minor=2500)
    bob = _paid(owner, link_id=link.id, buyer_name="Bob", email="bob@example.com", amount_minor=4000)
    _paid(owner, link_id=other.id, email="elsewhere@example.com")  # another link
    _failed(owner, link_id=link.id, email="declined@example.com")  # not a success

    assert sorted(_two_ticks_at_once(app)) == [0, 2]  # the database decides who enrolls: once
    with write_transaction(db.session) as session:  # the feed read again from its start: nothing new
        session.execute(update(Workflow).where(Workflow.id == workflow.id).values(event_cursor=0))
    assert engine.enroll_workflow(workflow.id) == 0
    run_outbox()
    run_tick()
    run_outbox()

    emails = _workflow_emails(owner.account_id)
    assert [(e.to_addrs, e.subject, e.status) for e in emails] == [
        (["ada@example.com"], "Welcome, Ada!", "stored"), (["bob@example.com"], "Welcome, Bob!", "stored")]
    assert "Thank you for $25.00 for Spring concert." in emails[0].text_body
    assert "See you there, Concert Hall" in emails[0].text_body and "Concert Hall" in emails[0].html_body
    enrollments = _enrollments(workflow.id)
    assert [(e.payment_id, e.status, e.trigger_event) for e in enrollments] == [
        (ada.id, "done", "payment.succeeded"), (bob.id, "done", "payment.succeeded")]
    assert old.id not in {e.payment_id for e in enrollments}
    # W7: the history lists each enrollment and its action's outcome.
    history = page_text(client.get(f"/workflows/{workflow.id}"))
    assert "ada@example.com" in history and "bob@example.com" in history and history.count("Email sent") == 2
    assert "Welcome" in page_text(client.get("/workflows/")) and "Email log" not in history


def test_w1_buyer_language_and_failed_send_shown_with_reason(client, app):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    workflow = _create(client, subject="Hi {first_name}", body="Thanks!")
    _turn(client, workflow, "on")
    payment = _paid(owner, buyer_name="Jan")
    from kassa.database import write_transaction
    from kassa.models import Payment

    with write_transaction(db.session) as session:
        session.get(Payment, payment.id).language = "nl"  # the buyer paid on the Dutch checkout
    run_tick()
    from kassa.services.platform.outbox import run_pending

    run_pending(1)  # the step only: it queues the email
    email = _workflow_emails(owner.account_id)[0]
    assert (email.language, email.subject) == ("nl", "Hi Jan")
    assert "Verzonden door" in email.html_body  # the frame in the buyer's language, the text the merchant's
    with write_transaction(db.session) as session:
        row = session.get(EmailMessage, email.id)
        row.status, row.error = "failed", "SMTPRecipientsRefused: mailbox unavailable"
    page = page_text(client.get(f"/workflows/{workflow.id}"))
    assert "Email failed" in page and "mailbox unavailable" in page


def test_w2_failed_payment_above_an_amount_creates_one_task_done_and_undone_in_the_inbox(client, app):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    empty = page_text(client.get("/tasks/"))
    assert "Nothing to do" in empty
    workflow = _create(client, name="Call failed buyers", trigger="payment.failed", min_amount="50",
                       action="task", task_title="Call {name} about {amount}", assignee_id=str(owner.id),
                       due_days="2")
    assert workflow.criteria == [[["amount", "gt", ["50"]]]]
    editor = client.get(f"/workflows/{workflow.id}/edit")
    builder = soup_of(editor).select_one("#wf-builder")  # W5: the stored filter, in the index's filter builder
    assert builder.select_one('select[name="c-0-0-prop"] option[selected]')["value"] == "amount"
    assert builder.select_one('select[name="c-0-0-op"] option[selected]')["value"] == "gt"
    assert builder.select_one('input[name="c-0-0-v1"]')["value"] == "50"
    _turn(client, workflow, "on")
    big = _failed(owner, amount_minor=8000, buyer_name="Carla Big", email="carla@example.com")
    _failed(owner, amount_minor=2000, email="small@example.com")  # not above €50
    _paid(owner, amount_minor=9000)  # not failed
    assert sorted(_two_ticks_at_once(app)) == [0, 1]
    run_outbox()
    run_tick()
    run_outbox()
    db.session.rollback()
    tasks = db.session.scalars(select(Task).where(Task.account_id == owner.account_id)).all()
    assert [(t.title, t.payment_id, t.assignee_id) for t in tasks] == [("Call Carla Big about $80.00", big.id,
                                                                         owner.id)]
    task = tasks[0]
    assert 2 * 86400 - 120 < (task.due_at - task.created_at).total_seconds() < 2 * 86400 + 120
    inbox = page_text(client.get("/tasks/"))
    assert "Call Carla Big about $80.00" in inbox and "carla@example.com" in inbox
    assert "Task created" in page_text(client.get(f"/workflows/{workflow.id}"))

    assert client.post(f"/tasks/{task.id}/done").status_code == 303
    db.session.rollback()
    assert db.session.get(Task, task.id).done_at is not None
    assert "Nothing to do" in page_text(client.get("/tasks/"))
    assert client.post(f"/tasks/{task.id}/undo").status_code == 303
    db.session.rollback()
    assert db.session.get(Task, task.id).done_at is None

    # W7: off stops new enrollments.
    _turn(client, workflow, "off")
    _failed(owner, amount_minor=9900)
    run_tick()
    run_outbox()
    assert len(_enrollments(workflow.id)) == 1
    assert db.session.scalar(select(func.count()).select_from(Task)) == 1


def test_w7_turning_off_cancels_steps_not_yet_run_and_an_edit_is_a_new_version(client, app):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    workflow = _create(client, subject="Hello", body="Thanks")
    _turn(client, workflow, "on")
    _paid(owner)
    assert engine.enroll_due() == 1
    _turn(client, workflow, "off")
    run_outbox()
    assert [e.status for e in _enrollments(workflow.id)] == ["cancelled"]
    assert _workflow_emails(owner.account_id) == []
    assert "Cancelled: the workflow was turned off" in page_text(client.get(f"/workflows/{workflow.id}"))
    response = client.post(f"/workflows/{workflow.id}/edit", data={
        "name": "Hello v2", "trigger": "payment.succeeded", "action": "email", "subject": "Hello again",
        "body": "Thanks", "link_id": "", "min_amount": "", "filter": ""})
    assert response.status_code == 303, errors_of(response)
    db.session.rollback()
    edited = db.session.get(Workflow, workflow.id)
    assert (edited.name, edited.version, edited.actions[0]["subject"]) == ("Hello v2", 2, "Hello again")
    assert [e.workflow_version for e in _enrollments(workflow.id)] == [1]


def test_w5_criteria_are_the_payments_index_filter_and_enroll_what_the_index_shows(client, app):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    adv = '[[["method","any_of",["ach"]]],[["amount","gt","100"]]]'
    make_payment(owner.account_id, method="ach")  # the payments list shows once there is a payment
    index = client.get("/payments/", query_string={"adv": adv}).get_data(as_text=True)
    assert "Create workflow from this filter" in index  # started from the filtered payments list
    prefilled = client.get("/workflows/new", query_string={"adv": adv})
    assert "method" in prefilled.get_data(as_text=True)
    workflow = _create(client, filter=adv, subject="Hi", body="Thanks")
    _turn(client, workflow, "on")
    payments = [_paid(owner, method="ach"), _paid(owner, amount_minor=15000), _paid(owner, amount_minor=500),
                _paid(owner, method="sepa", amount_minor=900)]
    engine.enroll_due()
    from kassa.models import Account, Payment

    account = db.session.get(Account, owner.account_id)
    ctx = FilterContext(timezone=account.timezone, today=now().date())
    index_ids = set(db.session.scalars(select(Payment.id).where(
        Payment.account_id == owner.account_id, Payment.id.in_([p.id for p in payments]),
        filter_clause(parse_filter(adv), ctx))))
    assert {e.payment_id for e in _enrollments(workflow.id)} == index_ids == {payments[0].id, payments[1].id}


def test_w_another_merchants_workflow_and_task_are_404(client, app):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    workflow = _create(client, trigger="payment.failed", action="task", task_title="Call")
    _turn(client, workflow, "on")
    _failed(owner)
    run_tick()
    run_outbox()
    db.session.rollback()
    task = db.session.scalar(select(Task))
    client.post("/logout")
    intruder = make_merchant()
    log_in(client, intruder.email, PASSWORD)
    for path in (f"/workflows/{workflow.id}", f"/workflows/{workflow.id}/edit", f"/workflows/{workflow.id}/switch"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/workflows/{workflow.id}/switch", data={"enabled": "off"}).status_code == 404
    assert client.post(f"/tasks/{task.id}/done").status_code == 404
    assert "Call" not in page_text(client.get("/tasks/")) and "No workflows yet" in page_text(client.get("/workflows/"))
    db.session.rollback()
    assert db.session.get(Workflow, workflow.id).enabled is True and db.session.get(Task, task.id).done_at is None


def test_w_bad_form_shows_errors_at_the_fields_and_changes_nothing(client, app):
    owner = make_merchant()
    other = make_link(make_merchant(), name="Not yours")
    log_in(client, owner.email, PASSWORD)
    response = client.post("/workflows/new", data={
        "name": "", "trigger": "payment.exploded", "link_id": str(other.id), "min_amount": "lots",
        "filter": "[[[\"nope\"", "action": "email", "subject": "Hi {nickname}", "body": ""})
    assert response.status_code == 422
    errors = errors_of(response)
    assert set(errors) >= {"name", "link_id", "filter", "subject", "body"}, errors
    assert "{nickname}" in errors["subject"]
    assert "There is a problem" in page_text(response)
    task_form = client.post("/workflows/new", data={"name": "T", "trigger": "payment.failed", "action": "task",
                                                   "task_title": "", "due_days": "-3", "assignee_id": "999999"})
    assert task_form.status_code == 422 and set(errors_of(task_form)) >= {"task_title", "due_days", "assignee_id"}
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Workflow)) == 0


def test_w6_each_tick_reads_only_events_since_its_last_look_yet_a_late_commit_is_still_enrolled(client, app):
    """The tick reads the feed from its cursor, not every event since the workflow was turned on; an event whose
    id is below the cursor (its transaction took its id first and committed after a later one was read) is
    re-read at the next checkpoint, once LATE_COMMIT has passed, and enrolls once."""
    from datetime import timedelta

    import time_machine
    from sqlalchemy import delete, update

    from kassa.database import write_transaction
    from kassa.models import AccountEvent

    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    workflow = _create(client, subject="Hi", body="Thanks")
    _turn(client, workflow, "on")
    first = _paid(owner)
    late = _paid(owner)
    second = _paid(owner)
    # The late one's event "isn't committed yet" at the first look: it is taken out, then put back with its id.
    db.session.rollback()
    late_event = db.session.scalar(select(AccountEvent).where(AccountEvent.object_id == late.id))
    row = {c.name: getattr(late_event, c.name) for c in AccountEvent.__table__.columns}
    with write_transaction(db.session) as session:
        session.execute(delete(AccountEvent).where(AccountEvent.id == row["id"]))
    assert engine.enroll_due() == 2
    db.session.rollback()
    looked = db.session.get(Workflow, workflow.id)
    assert looked.event_cursor > row["id"]  # the cursor is past the late event's id
    with write_transaction(db.session) as session:
        session.execute(AccountEvent.__table__.insert().values(**row))
    assert engine.enroll_due() == 0  # not yet re-read: the checkpoint comes LATE_COMMIT after the last
    with write_transaction(db.session) as session:  # the first look's checkpoint becomes the settled mark
        session.execute(update(Workflow).where(Workflow.id == workflow.id)
                        .values(scanned_until=now() - engine.LATE_COMMIT - timedelta(seconds=1)))
    assert engine.enroll_due() == 0  # this checkpoint settles nothing yet (the first look's mark is its cursor)
    with time_machine.travel(now() + engine.LATE_COMMIT + timedelta(seconds=5), tick=False):
        assert engine.enroll_due() == 1
        assert engine.enroll_due() == 0
    assert sorted(e.payment_id for e in _enrollments(workflow.id)) == sorted([first.id, late.id, second.id])


def _editor_post(**fields) -> dict:
    """The editor as a browser posts it (W5): the builder's rows, two steps."""
    return {"builder": "1", "name": "Big failures", "trigger": "payment.failed", "link_id": "", "steps": "2",
            "action": "task", "task_title": "Call {name}", "assignee_id": "", "due_days": "3",
            "s1_action": "email", "s1_subject": "Sorry, {first_name}", "s1_body": "We saw your payment fail.",
            "s1_wait_unit": "days", "editor_action": "", **fields}


def test_w5_the_editor_builds_criteria_with_the_payments_index_filter_builder(client, app):
    """W5: the same builder as the payments index (groups AND'ed inside, OR'ed together; dispute properties
    too): its buttons work without JavaScript, and saving stores exactly the index's filter."""
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    blank = soup_of(client.get("/workflows/new"))
    assert blank.select("#wf-builder .filters__group") == []  # no conditions: every payment of the trigger
    added = client.post("/workflows/new", data=_editor_post(editor_action="add_group"))
    assert added.status_code == 200
    page = soup_of(added)
    options = {o["value"] for o in page.select('select[name="c-0-0-prop"] option')}
    assert {"amount", "status", "method", "dispute_reason", "dispute_amount", "link"} <= options
    values = form_values(added, "workflow-editor")
    assert (values["s1_subject"], values["task_title"]) == ("Sorry, {first_name}", "Call {name}")  # steps kept
    values.update({"c-0-0-prop": "amount", "editor_action": "refresh"})
    refreshed = client.post("/workflows/new", data=values)  # what "Update the form" (or htmx) does
    ops = {o["value"] for o in soup_of(refreshed).select('select[name="c-0-0-op"] option')}
    assert "gt" in ops and "any_of" not in ops
    values = {**form_values(refreshed, "workflow-editor"), "c-0-0-op": "gt", "c-0-0-v1": "50",
              "editor_action": "add_group"}
    two_groups = form_values(client.post("/workflows/new", data=values), "workflow-editor")
    two_groups.update({"c-1-0-prop": "dispute_reason", "editor_action": "refresh"})
    two_groups = form_values(client.post("/workflows/new", data=two_groups), "workflow-editor")
    two_groups.update({"c-1-0-vals": "fraudulent", "editor_action": ""})
    saved = client.post("/workflows/new", data=two_groups)
    assert saved.status_code == 303, errors_of(saved)
    db.session.rollback()
    workflow = db.session.scalars(select(Workflow).where(Workflow.account_id == owner.account_id)).one()
    assert workflow.criteria == [[["amount", "gt", ["50"]]], [["dispute_reason", "any_of", ["fraudulent"]]]]
    assert [a["type"] for a in workflow.actions] == ["task", "email"]
    shown = page_text(client.get(f"/workflows/{workflow.id}"))
    assert "Gross amount" in shown and "Dispute reason" in shown
    # Removing the last condition of the editor leaves no criteria: every payment.
    editor = form_values(client.get(f"/workflows/{workflow.id}/edit"), "workflow-editor")
    assert editor["c-0-0-v1"] == "50" and editor["c-1-0-vals"] == "fraudulent"
    editor = form_values(client.post(f"/workflows/{workflow.id}/edit", data={**editor, "editor_action": "remove:1-0"}),
                         "workflow-editor")
    editor = form_values(client.post(f"/workflows/{workflow.id}/edit", data={**editor, "editor_action": "remove:0-0"}),
                         "workflow-editor")
    assert not any(name.startswith("c-") for name in editor)
    assert client.post(f"/workflows/{workflow.id}/edit", data={**editor, "editor_action": ""}).status_code == 303
    db.session.rollback()
    assert db.session.get(Workflow, workflow.id).criteria == []


def test_w5_bad_input_in_one_field_keeps_every_step_and_condition(client, app):
    """W5: one bad value (an amount of "lots" in the builder, a merge field that doesn't exist in step 2) is
    shown at its field; every step and condition comes back as typed, nothing is saved, and fixing the two
    fields saves it all."""
    owner = make_merchant()
    link = make_link(owner, name="Coffee")
    log_in(client, owner.email, PASSWORD)
    response = client.post("/workflows/new", data=_editor_post(**{
        "link_id": str(link.id), "s1_subject": "Hi {nickname}",
        "c-0-0-prop": "amount", "c-0-0-op": "gt", "c-0-0-v1": "lots",
        "c-0-1-prop": "method", "c-0-1-op": "any_of", "c-0-1-vals": ["card", "ach"],
        "c-1-0-prop": "dispute_amount", "c-1-0-op": "between", "c-1-0-v1": "10", "c-1-0-v2": "99"}))
    assert response.status_code == 422
    page = soup_of(response)
    assert "s1_subject" in errors_of(response) and page.select_one("#c-0-0-error") is not None
    assert page.select_one('.error-summary a[href="#c-0-0"]') is not None  # the summary leads to the row
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Workflow)) == 0
    kept = form_values(response, "workflow-editor")
    assert (kept["c-0-0-prop"], kept["c-0-0-op"], kept["c-0-0-v1"]) == ("amount", "gt", "lots")
    assert kept["c-0-1-vals"] == ["card", "ach"]
    assert (kept["c-1-0-prop"], kept["c-1-0-op"], kept["c-1-0-v1"], kept["c-1-0-v2"]) == (
        "dispute_amount", "between", "10", "99")
    assert (kept["link_id"], kept["action"], kept["task_title"], kept["due_days"]) == (
        str(link.id), "task", "Call {name}", "3")
    assert (kept["s1_action"], kept["s1_subject"], kept["s1_body"].strip()) == (
        "email", "Hi {nickname}", "We saw your payment fail.")
    fixed = client.post("/workflows/new", data={**kept, "c-0-0-v1": "50", "s1_subject": "Hi {first_name}",
                                                "editor_action": ""})
    assert fixed.status_code == 303, errors_of(fixed)
    db.session.rollback()
    workflow = db.session.scalars(select(Workflow)).one()
    assert workflow.criteria == [
        [["amount", "gt", ["50"]], ["method", "any_of", ["card", "ach"]], ["link", "eq", [str(link.id)]]],
        [["dispute_amount", "between", ["10", "99"]], ["link", "eq", [str(link.id)]]]]
    assert [a["type"] for a in workflow.actions] == ["task", "email"]
    # Editing shows the link in its menu again (not as a condition with an id, B4) and the rest in the builder.
    editor = form_values(client.get(f"/workflows/{workflow.id}/edit"), "workflow-editor")
    assert editor["link_id"] == str(link.id)
    assert not any(value == "link" for name, value in editor.items() if name.endswith("-prop"))
