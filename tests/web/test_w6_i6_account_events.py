"""W6, I6: the account event feed — every trigger type written exactly once, where its transition happens.

Each test drives the real services in test mode (the sandbox): a checkout, the subscription's test clock, the
dispute test cards, the payout tick, a refund. A repeated move (a second tick, a replayed move) writes nothing;
the set-based batch of renewal successes writes the same events as the single path (move_payment).
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import delete, select

from kassa.database import write_transaction
from kassa.event_types import AccountEventType
from kassa.extensions import db
from kassa.models import AccountEvent, Payment, PaymentStatus, Payout
from kassa.services.billing.subscriptions import cancel, set_test_card_behaviour
from kassa.services.payments.payment_states import move_payment
from kassa.services.payments.refunds import refund_payment
from kassa.services.platform.account_events import events_after
from tests.factories import make_merchant
from tests.support.billing import actor, advance, buy, frozen, renewals_of, subscription_shop
from tests.support.checkout import pay_with_card
from tests.support.checkout_flow import item, make_link
from tests.support.payments import actor_for, sandbox_payment
from tests.support.payments import advance as run_sandbox_for
from tests.web.test_disputes import FRAUD_CARD, tick, tick_at
from tests.web.test_payouts import MONDAY

E = AccountEventType


def events_of(account_id: int) -> list[AccountEvent]:
    db.session.rollback()
    return list(db.session.scalars(select(AccountEvent).where(AccountEvent.account_id == account_id)
                                   .order_by(AccountEvent.id)))


def feed(account_id: int) -> list[tuple[str, str, int]]:
    return [(event.type, event.object_type, event.object_id) for event in events_of(account_id)]


def test_w6_i6_subscription_life_writes_each_event_once(client, app):
    """payment.succeeded, subscription.started at checkout; payment.failed and subscription.past_due at a
    declined renewal (a second decline while past due: payment.failed only); payment.succeeded and
    subscription.renewed when a retry is paid (the set-based batch); subscription.cancelled. Repeats: none."""
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)
        first = sub.first_payment_id
        assert feed(owner.account_id) == [(E.SUBSCRIPTION_STARTED, "subscription", sub.id),
                                          (E.PAYMENT_SUCCEEDED, "payment", first)]

        set_test_card_behaviour(actor(owner), sub.id, decline=True)
        advance(owner, to_date=date(2027, 2, 15))
        (declined,) = renewals_of(sub)
        assert feed(owner.account_id)[2:] == [(E.PAYMENT_FAILED, "payment", declined.id),
                                              (E.SUBSCRIPTION_PAST_DUE, "subscription", sub.id)]
        advance(owner, to_date=date(2027, 2, 16))  # the first retry declines too: still past due, no news
        retry = renewals_of(sub)[1]
        assert retry.status == "failed"
        assert feed(owner.account_id)[4:] == [(E.PAYMENT_FAILED, "payment", retry.id)]

        set_test_card_behaviour(actor(owner), sub.id, decline=False)
        advance(owner, to_date=date(2027, 2, 19))  # the second retry is paid (batch path)
        paid = renewals_of(sub)[2]
        assert paid.status == "succeeded"
        assert feed(owner.account_id)[5:] == [(E.PAYMENT_SUCCEEDED, "payment", paid.id),
                                              (E.SUBSCRIPTION_RENEWED, "subscription", sub.id)]
        renewed = events_of(owner.account_id)[-1]
        assert renewed.data == {"payment_id": paid.id, "period": paid.subscription_period,
                                "amount_minor": paid.amount_minor, "currency": "USD"}
        assert renewed.mode == "test"

        cancel(actor(owner), sub.id, "now")
        assert feed(owner.account_id)[7:] == [(E.SUBSCRIPTION_CANCELLED, "subscription", sub.id)]
        cancelled = events_of(owner.account_id)[-1]
        assert cancelled.data["status"] == "cancelled"

        # Repeats are no-ops: the same moves again write nothing.
        with write_transaction(db.session):
            assert move_payment(db.session.get(Payment, paid.id), PaymentStatus.SUCCEEDED, at=paid.succeeded_at) \
                is False
        advance(owner, days=40)  # an ended subscription: no charge, no event
        assert len(events_of(owner.account_id)) == 8
        assert events_after(owner.account_id, events_of(owner.account_id)[5].id) == events_of(owner.account_id)[6:]


def test_w6_i6_batch_renewal_writes_what_the_single_path_writes(client, app):
    """The renewal recorded by the set-based batch has the same account events (type, object, mode, time,
    data) as move_payment writes for that renewal: undo the batch's success and replay it by the single path."""
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="fixed", term_count="3")
        sub = buy(client, link)
        advance(owner, days=32)
        (renewal,) = renewals_of(sub)
        assert renewal.status == "succeeded"

        def shape(events):
            return [(e.type, e.object_type, e.object_id, e.mode, e.occurred_at, e.data) for e in events]

        batch = [e for e in events_of(owner.account_id) if e.occurred_at == renewal.succeeded_at]
        assert [e.type for e in batch] == [E.PAYMENT_SUCCEEDED, E.SUBSCRIPTION_RENEWED]
        batch_shape = shape(batch)

        payment = db.session.get(Payment, renewal.id)
        db.session.execute(delete(AccountEvent).where(AccountEvent.id.in_([e.id for e in batch])))
        payment.status = PaymentStatus.PROCESSING.value
        db.session.flush()
        assert not db.session.scalars(select(AccountEvent.id).where(AccountEvent.occurred_at == renewal.succeeded_at,
                                                                    AccountEvent.account_id == owner.account_id)).all()
        assert move_payment(payment, PaymentStatus.SUCCEEDED, at=renewal.succeeded_at) is True
        db.session.flush()
        single = list(db.session.scalars(select(AccountEvent).where(
            AccountEvent.account_id == owner.account_id, AccountEvent.occurred_at == renewal.succeeded_at).order_by(AccountEvent.id)))
        assert shape(single) == batch_shape
        db.session.rollback()


def test_w6_i6_dispute_opened_and_closed_once(client, app):
    """dispute.opened when the sandbox opens it, dispute.closed when it is decided; more ticks add nothing."""
    owner = make_merchant(company="Disputed Shop")
    link = make_link(owner, items=[item("Concert ticket", "25.00")])
    assert pay_with_card(client, link.slug, card_number=FRAUD_CARD).status_code == 303
    tick()
    tick()
    payment_id = db.session.scalar(select(Payment.id).where(Payment.link_id == link.id))
    events = events_of(owner.account_id)
    assert [(e.type, e.object_type) for e in events] == [(E.PAYMENT_SUCCEEDED, "payment"), (E.DISPUTE_OPENED, "dispute")]
    assert events[1].data["payment_id"] == payment_id and events[1].mode == "test"
    tick_at(timedelta(days=7, minutes=1))  # no answer by the deadline: lost
    tick_at(timedelta(days=7, minutes=2))
    events = [e for e in events_of(owner.account_id) if e.object_type != "payout"]  # a payout went out too
    assert [e.type for e in events] == [E.PAYMENT_SUCCEEDED, E.DISPUTE_OPENED, E.DISPUTE_CLOSED]
    assert events[2].object_id == events[1].object_id and events[2].data["status"] == "lost"


def test_w6_i6_payment_refunded_once_when_the_refund_settles(client, app):
    """payment.refunded when the processor pays the refund out (about the payment, naming the refund)."""
    owner = make_merchant(company="Refund Shop")
    payment = sandbox_payment(owner.account_id, amount_minor=3000)
    refund = refund_payment(actor_for(owner), payment.id, amount_text="10.00", reason="requested_by_customer",
                            note="", locale="en")
    assert feed(owner.account_id) == []  # created, not yet paid out
    run_sandbox_for(timedelta(minutes=2))
    run_sandbox_for(timedelta(minutes=4))
    events = events_of(owner.account_id)
    assert [(e.type, e.object_type, e.object_id) for e in events] == [(E.PAYMENT_REFUNDED, "payment", payment.id)]
    assert events[0].data["refund_id"] == refund.id and events[0].data["amount_minor"] == 1000


def test_w6_i6_payouts_paid_and_failed_once(client, app, refuse_next_payout):
    """payout.paid when a payout arrives; payout.failed when the bank refuses one (each once, however many
    ticks look at it)."""
    import time_machine

    from kassa.services.platform.ticks import run_tick

    owner = make_merchant(company="Payout Shop")
    link = make_link(owner, items=[item("Workshop", "100.00")])
    with time_machine.travel(MONDAY, tick=False) as clock:
        assert pay_with_card(client, link.slug).status_code == 303

        def tick_on(days: float) -> None:
            clock.move_to(MONDAY + timedelta(days=days, hours=1))
            assert not run_tick().failed
            db.session.rollback()

        tick_on(2)
        tick_on(3)
        tick_on(3.5)
        paid = db.session.scalars(select(Payout).where(Payout.account_id == owner.account_id)).all()
        assert [p.status for p in paid] == ["paid"]
        assert [(e.type, e.object_id) for e in events_of(owner.account_id) if e.object_type == "payout"] == \
            [(E.PAYOUT_PAID, paid[0].id)]

        assert pay_with_card(client, link.slug).status_code == 303
        refuse_next_payout(owner.account_id)
        tick_on(7)  # the next Monday's payout goes out …
        tick_on(8)  # … and is refused
        tick_on(8.5)
        payouts = db.session.scalars(select(Payout).where(Payout.account_id == owner.account_id)
                                     .order_by(Payout.id)).all()
        assert payouts[1].status == "failed"
        assert [(e.type, e.object_id) for e in events_of(owner.account_id) if e.object_type == "payout"] == \
            [(E.PAYOUT_PAID, paid[0].id), (E.PAYOUT_FAILED, payouts[1].id)]
        failed = events_of(owner.account_id)[-1]
        assert failed.mode == "test" and failed.data["status"] == "failed"


def test_w6_i6_every_trigger_type_is_declared_where_its_transition_is():
    """Each event type is recorded by a machine's transition table or at the one place its object is created."""
    from kassa.services.billing import subscription_states
    from kassa.services.disputes import dispute_states
    from kassa.services.payments import payment_states, refund_states
    from kassa.services.payouts import payout_states

    declared = {move.event for table in (payment_states.TRANSITIONS, refund_states.TRANSITIONS,
                                         dispute_states.TRANSITIONS, subscription_states.TRANSITIONS,
                                         payout_states.TRANSITIONS) for move in table.values()}
    declared |= {dispute_states.ACCEPTED.event}
    created = {E.SUBSCRIPTION_STARTED, E.DISPUTE_OPENED, E.SUBSCRIPTION_RENEWED}  # creation; a renewal's payment
    created |= {E.CHECKOUT_ABANDONED}  # no machine's move: the workflows tick records it, once per session (W6)
    assert (declared - {None}) | created == set(E)
    past_due = subscription_states.S.PAST_DUE
    assert subscription_states.TRANSITIONS[(past_due, past_due)].event is None
