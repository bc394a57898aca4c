"""W4: internal notifications for a subscription's payments after the first are done with a workflow: criterion
"Renewal payments only" (source subscription, not the subscription's first payment) + "Notify the team".
W8: "Buyer in segment" as a workflow criterion."""

from __future__ import annotations

from sqlalchemy import select

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import EmailMessage, Notification, Payment, Segment, Workflow, WorkflowEnrollment
from kassa.services.crm.crm import find_or_create_contact
from kassa.services.platform.ticks import run_tick
from tests.factories import PASSWORD, make_merchant, make_payment
from tests.support.app import log_in, page_text, run_outbox
from tests.support.billing import advance, buy, charges_of, frozen, renewals_of, subscription_shop
from tests.support.links import errors_of


def create(client, **values) -> Workflow:
    data = {"name": "Renewals", "trigger": "payment.succeeded", "link_id": "", "min_amount": "", "filter": "",
            "steps": "1", "action": "notify", "message": "{email} renewed: {amount}", **values}
    response = client.post("/workflows/new", data=data)
    assert response.status_code == 303, errors_of(response)
    db.session.rollback()
    workflow = db.session.scalars(select(Workflow).order_by(Workflow.id.desc())).first()
    assert client.post(f"/workflows/{workflow.id}/switch", data={"enabled": "on"}).status_code == 303
    return workflow


def test_w4_renewal_payments_only_notify_the_team_of_each_renewal_not_the_first_payment(client):
    with frozen():
        owner, link = subscription_shop(company="Piano School", price="30.00")
        log_in(client, owner.email, PASSWORD)
        workflow = create(client, renewals_only="1")
        assert workflow.renewals_only is True
        sub = buy(client, link)  # the first payment, at checkout: E1's "payment received" covers it
        run_tick()
        run_outbox()
        advance(owner, sub, days=31)
        advance(owner, sub, days=31)
        run_tick()
        run_outbox()
        renewals = renewals_of(sub)
        first = [p for p in charges_of(sub) if p not in renewals]
        assert len(renewals) == 2 and len(first) == 1
        db.session.rollback()
        enrolled = db.session.scalars(select(WorkflowEnrollment.payment_id).where(
            WorkflowEnrollment.workflow_id == workflow.id).order_by(WorkflowEnrollment.payment_id)).all()
        assert enrolled == sorted(p.id for p in renewals)  # each renewal once, never the first payment
        notes = [n.text for n in db.session.scalars(select(Notification).where(Notification.user_id == owner.id))
                 if n.text.startswith("Renewals:")]
        assert notes == ["Renewals: sam.subscriber@example.com renewed: $30.00"] * 2
        team_mail = db.session.scalars(select(EmailMessage).where(EmailMessage.kind == "workflow_notify")).all()
        assert len(team_mail) == 2 and all(m.to_addrs == [owner.email] for m in team_mail)
        assert "Renewal payments only" in page_text(client.get(f"/workflows/{workflow.id}"))


def test_w4_without_the_option_the_first_payment_enrolls_too(client):
    with frozen():
        owner, link = subscription_shop()
        log_in(client, owner.email, PASSWORD)
        workflow = create(client)
        sub = buy(client, link)
        advance(owner, sub, days=31)
        run_tick()
        db.session.rollback()
        count = len(db.session.scalars(select(WorkflowEnrollment).where(
            WorkflowEnrollment.workflow_id == workflow.id)).all())
        assert count == len(charges_of(sub)) == 2


def test_w8_buyer_in_segment_as_a_workflow_criterion(client):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    with write_transaction(db.session) as session:
        vip = Segment(account_id=owner.account_id, name="Big spenders", criteria=[[["amount", "gt", ["100"]]]])
        session.add(vip)
        session.flush()
        vip_id = vip.id

    def pay(email: str, amount_minor: int) -> Payment:
        payment = make_payment(owner.account_id, email=email, amount_minor=amount_minor, created_at=now(), feed=True)
        with write_transaction(db.session) as session:
            contact = find_or_create_contact(owner.account_id, payment.mode, email)
            session.get(Payment, payment.id).contact_id = contact.id
        return payment

    pay("big@example.com", 50_000)  # before the workflow: makes the contact a member
    workflow = create(client, in_segment=str(vip_id), message="A big spender paid again")
    assert workflow.segment_id == vip_id
    again = pay("big@example.com", 1_000)  # a small payment, but its buyer is in the segment
    pay("small@example.com", 1_000)
    run_tick()
    db.session.rollback()
    enrolled = db.session.scalars(select(WorkflowEnrollment.payment_id).where(
        WorkflowEnrollment.workflow_id == workflow.id)).all()
    assert enrolled == [again.id]
    page = page_text(client.get(f"/workflows/{workflow.id}"))
    assert "Buyer in segment" in page and "Big spenders" in page
    # A segment in use can't be deleted.
    assert client.post(f"/segments/{vip_id}/delete").status_code == 422
