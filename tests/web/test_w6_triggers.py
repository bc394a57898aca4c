"""W6 triggers, driving the real services: each trigger of the account event feed enrolls its object once in the
workflows that are on — subscription started / renewed / past due / cancelled, payment failed, dispute opened /
closed (criteria on the disputed payment), payment refunded, payout paid / failed, and checkout abandoned (a
session with the buyer's email unpaid N hours later: one `checkout.abandoned` event per session, the workflow's
own hours, cancelled when paid meanwhile). Merge fields per object in the emails and tasks. The editor offers
every trigger and says which criteria apply."""

from __future__ import annotations

from datetime import date, timedelta

import time_machine
from sqlalchemy import select

from kassa.clock import now
from kassa.extensions import db
from kassa.models import AccountEvent, EmailMessage, Payment, Payout, Task, Workflow, WorkflowEnrollment
from kassa.services.billing.subscriptions import cancel, set_test_card_behaviour
from kassa.services.payments.refunds import refund_payment
from kassa.services.workflows import definitions, engine
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in, page_text, run_outbox
from tests.support.billing import actor, advance, buy, frozen, renewals_of, subscription_shop
from tests.support.checkout import pay_with_card, submit_checkout
from tests.support.checkout_flow import item, make_link
from tests.support.links import errors_of
from tests.support.payments import actor_for, sandbox_payment
from tests.support.payments import advance as run_sandbox_for
from tests.web.test_disputes import FRAUD_CARD, tick, tick_at
from tests.web.test_payouts import MONDAY


def workflow(owner, trigger: str, *, title: str = "{name} {amount}", **values) -> Workflow:
    """A workflow on `trigger` with one create-task step (its title shows the merge fields), turned on."""
    fields = {"name": trigger, "trigger": trigger, "action": "task", "task_title": title, **values}
    made = definitions.create_workflow(actor(owner), fields)
    return definitions.set_enabled(actor(owner), made.id, True)


def enrolled(workflow_id: int) -> list[tuple[str, int, int | None]]:
    db.session.rollback()
    return [(e.object_type, e.object_id, e.payment_id) for e in db.session.scalars(
        select(WorkflowEnrollment).where(WorkflowEnrollment.workflow_id == workflow_id).order_by(WorkflowEnrollment.id))]


def task_titles(account_id: int, workflow_id: int) -> list[str]:
    db.session.rollback()
    return list(db.session.scalars(select(Task.title).where(Task.account_id == account_id,
                                                            Task.workflow_id == workflow_id).order_by(Task.id)))


def settle() -> None:
    """The workflows tick twice (the second finds nothing new), then the worker runs the steps."""
    engine.enroll_due()
    assert engine.enroll_due() == 0
    run_outbox()


def test_w6_subscription_started_renewed_past_due_cancelled_and_payment_failed_each_enroll_once(client, app):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        flows = {trigger: workflow(owner, trigger, title="{name} · {amount} · {period}")
                 for trigger in ("subscription.started", "subscription.renewed", "subscription.past_due",
                                 "subscription.cancelled")}
        failed = workflow(owner, "payment.failed", title="Failed: {email} {amount}")
        sub = buy(client, link)
        settle()
        set_test_card_behaviour(actor(owner), sub.id, decline=True)
        advance(owner, to_date=date(2027, 2, 15))
        advance(owner, to_date=date(2027, 2, 16))  # a second decline: payment.failed again, not past due again
        settle()
        set_test_card_behaviour(actor(owner), sub.id, decline=False)
        advance(owner, to_date=date(2027, 2, 19))  # paid: renewed (the set-based batch)
        settle()
        cancel(actor(owner), sub.id, "now")
        settle()
        settle()
        declined, retry, paid = renewals_of(sub)[:3]
        for trigger in ("subscription.started", "subscription.past_due", "subscription.cancelled"):
            assert enrolled(flows[trigger].id) == [("subscription", sub.id, None)], trigger
        assert enrolled(flows["subscription.renewed"].id) == [("subscription", sub.id, paid.id)]
        assert enrolled(failed.id) == [("payment", declined.id, declined.id), ("payment", retry.id, retry.id)]
        renewed = task_titles(owner.account_id, flows["subscription.renewed"].id)
        assert len(renewed) == 1 and "$10.00" in renewed[0] and "monthly" in renewed[0]
        assert task_titles(owner.account_id, failed.id)[0].startswith("Failed: ")


def test_w6_dispute_opened_and_closed_with_criteria_on_the_disputed_payment(client, app):
    owner = make_merchant(company="Disputed Shop")
    link = make_link(owner, items=[item("Concert ticket", "25.00")])
    opened = workflow(owner, "dispute.opened", title="Dispute {dispute_reason} {amount} by {email}", min_amount="20")
    too_high = workflow(owner, "dispute.opened", min_amount="30")  # the disputed payment is $25: not above 30
    closed = workflow(owner, "dispute.closed", action="email", subject="About your {amount} payment",
                      body="Dear {first_name}, the dispute ({dispute_reason}) is closed.")
    assert pay_with_card(client, link.slug, card_number=FRAUD_CARD).status_code == 303
    tick()
    tick()
    settle()
    payment_id = db.session.scalar(select(Payment.id).where(Payment.link_id == link.id))
    dispute_id = db.session.scalar(select(AccountEvent.object_id).where(AccountEvent.type == "dispute.opened",
                                                                        AccountEvent.account_id == owner.account_id))
    assert enrolled(opened.id) == [("dispute", dispute_id, payment_id)]
    assert enrolled(too_high.id) == []
    buyer = db.session.get(Payment, payment_id).buyer_email
    assert task_titles(owner.account_id, opened.id) == [f"Dispute fraudulent $25.00 by {buyer}"]
    tick_at(timedelta(days=7, minutes=1))  # no answer by the deadline: lost, closed
    with time_machine.travel(now() + timedelta(days=7, minutes=2), tick=False):
        settle()
        settle()
    assert enrolled(closed.id) == [("dispute", dispute_id, payment_id)]
    email = db.session.scalars(select(EmailMessage).where(EmailMessage.account_id == owner.account_id,
                                                          EmailMessage.kind == "workflow_email")).one()
    assert email.subject == "About your $25.00 payment"


def test_w6_payment_refunded_emails_the_buyer_the_refunded_amount_once(client, app):
    owner = make_merchant(company="Refund Shop")
    refunded = workflow(owner, "payment.refunded", action="email", subject="Refunded: {refund_amount}",
                        body="Hello {name}, {refund_amount} of {amount} is on its way back.")
    payment = sandbox_payment(owner.account_id, amount_minor=3000)
    refund_payment(actor_for(owner), payment.id, amount_text="10.00", reason="requested_by_customer", note="",
                   locale="en")
    settle()
    assert enrolled(refunded.id) == []  # created, not yet paid out
    run_sandbox_for(timedelta(minutes=2))
    run_sandbox_for(timedelta(minutes=4))  # its tick enrolls the refund there: the worker runs the step then
    with time_machine.travel(now() + timedelta(minutes=5), tick=False):
        settle()
    assert enrolled(refunded.id) == [("payment", payment.id, payment.id)]
    runs = [(r.action, r.status, r.detail) for e in db.session.scalars(select(WorkflowEnrollment).where(
        WorkflowEnrollment.workflow_id == refunded.id)) for r in e.runs]
    assert runs == [("email", "done", None)], runs
    email = db.session.scalars(select(EmailMessage).where(EmailMessage.kind == "workflow_email",
                                                          EmailMessage.account_id == owner.account_id)).one()
    assert (email.subject, email.to_addrs) == ("Refunded: $10.00", [payment.buyer_email])
    assert "$10.00 of $30.00 is on its way back" in email.text_body


def test_w6_payouts_paid_and_failed_notify_the_team_and_skip_an_email_with_no_buyer(client, app, refuse_next_payout):
    from kassa.services.platform.ticks import run_tick

    owner = make_merchant(company="Payout Shop")
    link = make_link(owner, items=[item("Workshop", "100.00")])
    paid_flow = workflow(owner, "payout.paid", title="Payout {amount} arrives {arrival_date}")
    failed_flow = workflow(owner, "payout.failed", action="email", subject="x", body="{amount}")
    with time_machine.travel(MONDAY, tick=False) as clock:
        assert pay_with_card(client, link.slug).status_code == 303

        def tick_on(days: float) -> None:
            clock.move_to(MONDAY + timedelta(days=days, hours=1))
            assert not run_tick().failed
            db.session.rollback()
            run_outbox()

        tick_on(2)
        tick_on(3)
        tick_on(3.5)
        assert pay_with_card(client, link.slug).status_code == 303
        refuse_next_payout(owner.account_id)
        tick_on(7)
        tick_on(8)
        tick_on(8.5)
        payouts = db.session.scalars(select(Payout).where(Payout.account_id == owner.account_id)
                                     .order_by(Payout.id)).all()
        assert [p.status for p in payouts] == ["paid", "failed"]
        assert enrolled(paid_flow.id) == [("payout", payouts[0].id, None)]
        assert enrolled(failed_flow.id) == [("payout", payouts[1].id, None)]
        (title,) = task_titles(owner.account_id, paid_flow.id)
        assert title.startswith("Payout $") and "arrives" in title
        failed_enrollment = db.session.scalars(select(WorkflowEnrollment)
                                               .where(WorkflowEnrollment.workflow_id == failed_flow.id)).one()
        assert [(r.action, r.status, r.detail) for r in failed_enrollment.runs] == \
            [("email", "skipped", "There is no buyer to email.")]


def test_w6_checkout_abandoned_once_per_session_after_the_workflows_hours_and_not_when_paid(client, app):
    owner = make_merchant(company="Abandon Shop")
    link = make_link(owner, items=[item("Course", "40.00")])
    flow = workflow(owner, "checkout.abandoned", abandon_hours="3", action="email",
                    subject="Still want {link_name}?", body="Hi {first_name}, finish at {checkout_url} ({amount}).")
    gone = pay_with_card(client, link.slug, card_number="4000000000000002", email="gone@example.com")
    back = pay_with_card(client, link.slug, card_number="4000000000000002", email="back@example.com")
    assert submit_checkout(client, back.checkout_path, email="back@example.com").status_code == 303  # paid after all
    late = pay_with_card(client, link.slug, card_number="4000000000000002", email="late@example.com")
    assert pay_with_card(client, link.slug).status_code == 303  # paid at once
    assert gone.status_code != 303 and late.status_code != 303
    engine.enroll_due()
    db.session.rollback()
    assert db.session.scalar(select(AccountEvent.id).where(AccountEvent.type == "checkout.abandoned")) is None
    with time_machine.travel(now() + timedelta(hours=1, minutes=5), tick=False):
        engine.enroll_due()
        engine.enroll_due()
        db.session.rollback()
        events = db.session.scalars(select(AccountEvent).where(AccountEvent.account_id == owner.account_id,
                                                               AccountEvent.type == "checkout.abandoned")).all()
        assert len(events) == 2  # gone@ and late@: never a paid session
        run_outbox()
        assert not db.session.scalars(select(EmailMessage).where(EmailMessage.kind == "workflow_email")).all()
        # late@ comes back and pays before the workflow's 3 hours are over
        assert submit_checkout(client, late.checkout_path, email="late@example.com").status_code == 303
    with time_machine.travel(now() + timedelta(hours=3, minutes=5), tick=False):
        engine.enroll_due()
        run_outbox()
        db.session.rollback()
        emails = db.session.scalars(select(EmailMessage).where(EmailMessage.kind == "workflow_email",
                                                               EmailMessage.account_id == owner.account_id)).all()
        assert [(e.to_addrs, e.subject) for e in emails] == [(["gone@example.com"], "Still want Spring concert?")]
        assert "Hi Ann, finish at http" in emails[0].text_body and "($40.00)" in emails[0].text_body
    statuses = sorted((e.status, e.detail) for e in db.session.scalars(
        select(WorkflowEnrollment).where(WorkflowEnrollment.workflow_id == flow.id)))
    assert statuses == [("cancelled", "paid meanwhile"), ("done", None)]


def test_w6_editor_offers_every_trigger_and_says_which_criteria_apply(client, app):
    from kassa.event_types import AccountEventType

    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    page = client.get("/workflows/new").get_data(as_text=True)
    for trigger in AccountEventType:
        assert f'value="{trigger.value}"' in page, trigger
    assert "Leave them empty for the other subscription triggers" in page_text(client.get("/workflows/new"))
    base = {"name": "Payouts", "action": "task", "task_title": "Look", "link_id": "", "min_amount": "",
            "filter": ""}
    refused = client.post("/workflows/new", data={**base, "trigger": "payout.paid", "min_amount": "50"})
    assert refused.status_code == 422 and "filter" in errors_of(refused)
    no_hours = client.post("/workflows/new", data={**base, "trigger": "checkout.abandoned"})
    assert no_hours.status_code == 422 and "abandon_hours" in errors_of(no_hours)
    wrong_field = client.post("/workflows/new", data={**base, "trigger": "payment.succeeded",
                                                      "task_title": "{dispute_reason}"})
    assert wrong_field.status_code == 422 and "task_title" in errors_of(wrong_field)
    db.session.rollback()
    assert db.session.scalar(select(Workflow.id).where(Workflow.account_id == owner.account_id)) is None
    made = client.post("/workflows/new", data={**base, "trigger": "checkout.abandoned", "abandon_hours": "4"})
    assert made.status_code == 303, errors_of(made)
    db.session.rollback()
    saved = db.session.scalars(select(Workflow).where(Workflow.account_id == owner.account_id)).one()
    assert (saved.trigger, saved.abandon_hours) == ("checkout.abandoned", 4)
