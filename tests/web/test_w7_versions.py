"""W7 versions and history: every version of a workflow is kept as it was saved (trigger, criteria, steps) and
shown readable on the workflow's page, with which version each enrollment ran; a rename is no new version; two
edits at once make two versions, never one number twice; the history is paged with the one numbered_page (M5);
migration 0044 gives existing workflows their current version."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import delete, func, select

from kassa.actor import Actor
from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Payment, User, Workflow, WorkflowEnrollment, WorkflowVersion
from kassa.pagination import NUMBERED_PAGE_SIZE
from kassa.services.workflows import definitions, engine
from tests.factories import PASSWORD, make_merchant, make_payment
from tests.support.app import IsolatedClient, log_in, page_text
from tests.support.billing import actor
from tests.support.concurrency import at_once
from tests.support.databases import scratch_database
from tests.support.links import errors_of, form_values, soup_of

MIGRATIONS = "site/migrations"


def _failed(owner, amount_minor: int) -> Payment:
    payment = make_payment(owner.account_id, status="failed", created_at=now(), feed=True, amount_minor=amount_minor)
    with write_transaction(db.session) as session:
        session.get(Payment, payment.id).failed_at = now()
    return payment


def _task_workflow(client, amount: str, title: str) -> Workflow:
    """Failed payments above `amount` → a task, built in the editor (the builder's rows) and turned on."""
    data = {"builder": "1", "name": "Big failures", "trigger": "payment.failed", "link_id": "", "steps": "1",
            "action": "task", "task_title": title, "assignee_id": "", "due_days": "", "editor_action": "",
            "c-0-0-prop": "amount", "c-0-0-op": "gt", "c-0-0-v1": amount}
    response = client.post("/workflows/new", data=data)
    assert response.status_code == 303, errors_of(response)
    db.session.rollback()
    workflow = db.session.scalars(select(Workflow).order_by(Workflow.id.desc())).first()
    assert client.post(f"/workflows/{workflow.id}/switch", data={"enabled": "on"}).status_code == 303
    return workflow


def _save(client, workflow: Workflow, **changes) -> None:
    values = {**form_values(client.get(f"/workflows/{workflow.id}/edit"), "workflow-editor"), **changes,
              "editor_action": ""}
    response = client.post(f"/workflows/{workflow.id}/edit", data=values)
    assert response.status_code == 303, errors_of(response)


def _versions(workflow_id: int) -> list[tuple[int, str, list, list]]:
    db.session.rollback()
    return [(v.version, v.trigger, v.criteria, [a.get("title") for a in v.actions]) for v in db.session.scalars(
        select(WorkflowVersion).where(WorkflowVersion.workflow_id == workflow_id).order_by(WorkflowVersion.version))]


def test_w7_each_version_is_kept_readable_and_the_history_says_which_version_each_enrollment_ran(client, app):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    workflow = _task_workflow(client, "50", "Call {name}")
    big = _failed(owner, 8000)
    assert engine.enroll_due() == 1
    _save(client, workflow, **{"c-0-0-v1": "10", "task_title": "Email {name}"})  # a new version
    _save(client, workflow, name="Failures")  # a rename only: no new version
    small = _failed(owner, 2000)
    assert engine.enroll_due() == 1
    assert _versions(workflow.id) == [
        (1, "payment.failed", [[["amount", "gt", ["50"]]]], ["Call {name}"]),
        (2, "payment.failed", [[["amount", "gt", ["10"]]]], ["Email {name}"])]
    assert db.session.get(Workflow, workflow.id).version == 2

    page = client.get(f"/workflows/{workflow.id}")
    versions = soup_of(page).select(".wf-versions > li")
    assert [li["id"] for li in versions] == ["version-2", "version-1"]  # newest first
    newest, oldest = (" ".join(li.get_text(" ").split()) for li in versions)
    assert "Version 2" in newest and "Current" in newest  # what it does is the page's "What it does", not repeated
    assert versions[0].select_one('a[href="#wf-def"]') is not None and versions[0].select_one("details") is None
    current = " ".join(soup_of(page).select_one('section[aria-labelledby="wf-def"]').get_text(" ").split())
    assert "Gross amount > 10" in current and "Create a task: “Email {name}”" in current
    assert "Version 1" in oldest and "Current" not in oldest and "Payment failed" in oldest
    assert "Gross amount > 50" in oldest and "Create a task: “Call {name}”" in oldest
    assert versions[1].select_one("details summary") is not None  # a disclosure: keyboard and screen readers
    rows = soup_of(page).select("#history-caption ~ tbody tr")
    ran = {e.payment_id: e.workflow_version for e in db.session.scalars(
        select(WorkflowEnrollment).where(WorkflowEnrollment.workflow_id == workflow.id))}
    assert ran == {big.id: 1, small.id: 2}
    assert [row.select("td")[2].select_one("a")["href"] for row in rows] == ["#version-2", "#version-1"]


def test_w7_two_edits_at_once_make_two_versions_each_kept_once(client, app):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    workflow = _task_workflow(client, "50", "Call {name}")
    base = {"name": "Big failures", "trigger": "payment.failed", "action": "task", "filter": ""}
    chosen = ["First edit", "Second edit"]
    calls = iter(chosen)
    owner_id, account_id, workflow_id = owner.id, owner.account_id, workflow.id

    def edit():
        editor = Actor(user=db.session.get(User, owner_id), account_id=account_id)
        definitions.update_workflow(editor, workflow_id, {**base, "task_title": next(calls)})

    at_once(app, edit)
    kept = _versions(workflow.id)
    assert [v[0] for v in kept] == [1, 2, 3] and sorted(v[3][0] for v in kept[1:]) == sorted(chosen)
    assert db.session.get(Workflow, workflow.id).actions[0]["title"] == kept[-1][3][0]  # the latest is current
    # Legitimate reuse: saving the same definition again is no new version, and editing again is the next one.
    definitions.update_workflow(actor(owner), workflow.id, {**base, "task_title": kept[-1][3][0]})
    definitions.update_workflow(actor(owner), workflow.id, {**base, "task_title": "Third edit"})
    assert [v[0] for v in _versions(workflow.id)] == [1, 2, 3, 4]


def test_w7_the_history_is_paged_with_numbered_pages(client, app):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    workflow = _task_workflow(client, "5", "Call {name}")
    count = NUMBERED_PAGE_SIZE + 2
    for _ in range(count):
        _failed(owner, 1000)
    assert engine.enroll_due() == count
    first = client.get(f"/workflows/{workflow.id}")
    assert len(soup_of(first).select("#history-caption ~ tbody tr")) == NUMBERED_PAGE_SIZE
    assert f"{count} enrollments" in page_text(first) and "page 1 of 2" in page_text(first)
    next_href = soup_of(first).select_one('nav.pagination a[rel="next"]')["href"]
    second = client.get(next_href)
    assert len(soup_of(second).select("#history-caption ~ tbody tr")) == 2
    shown = {row.select_one("td a")["href"] for page in (first, second)
             for row in soup_of(page).select("#history-caption ~ tbody tr")}
    assert len(shown) == count  # every enrollment once, none on two pages
    past_end = client.get(f"/workflows/{workflow.id}", query_string={"page": "9999"})
    assert len(soup_of(past_end).select("#history-caption ~ tbody tr")) == 2  # the last page
    junk = client.get(f"/workflows/{workflow.id}", query_string={"page": "²"})
    assert junk.status_code == 200 and len(soup_of(junk).select("#history-caption ~ tbody tr")) == NUMBERED_PAGE_SIZE


def test_w7_migration_0044_gives_existing_workflows_their_current_version(app, database_url, tmp_path, monkeypatch):
    from kassa import create_app

    before = ScriptDirectory(MIGRATIONS).get_revision("0044_w_versions").down_revision
    with scratch_database(database_url, tmp_path, "w7") as url:
        monkeypatch.setenv("KASSA_INSTANCE_PATH", str(tmp_path / "w7-instance"))
        other = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "KASSA_PASSWORD_HASH_PROFILE": "fast",
                            "RATELIMIT_STORAGE_URI": "memory://", "WTF_CSRF_ENABLED": False,
                            "KASSA_BASE_URL": "http://kassa.test"})
        other.test_client_class = IsolatedClient
        with other.app_context():
            try:
                upgrade(directory=MIGRATIONS)
                owner = make_merchant()
                made = definitions.create_workflow(actor(owner), {"name": "Old", "trigger": "payment.failed",
                                                                  "action": "task", "task_title": "Call",
                                                                  "min_amount": "50"})
                made_id = made.id
                definitions.update_workflow(actor(owner), made_id, {"name": "Old", "trigger": "payment.failed",
                                                                    "action": "task", "task_title": "Call back",
                                                                    "min_amount": "50"})
                db.session.remove()
                downgrade(directory=MIGRATIONS, revision=before)
                assert "workflow_versions" not in sa.inspect(db.engine).get_table_names()
                upgrade(directory=MIGRATIONS)
                db.session.remove()
                kept = db.session.scalars(select(WorkflowVersion)).all()
                assert [(v.workflow_id, v.version, v.trigger, v.criteria, v.actions[0]["title"]) for v in kept] == [
                    (made_id, 2, "payment.failed", [[["amount", "gt", ["50"]]]], "Call back")]
                assert db.session.scalar(select(func.count()).select_from(WorkflowVersion)) == 1
                db.session.execute(delete(WorkflowVersion))
                db.session.commit()
            finally:
                db.session.remove()
                db.engine.dispose()
