"""M1: one state machine per money object — payment, refund, dispute, subscription, payout, checkout attempt,
invoice (V1).

Each declares its allowed transitions as data; its one ``move_*`` refuses every other move (Conflict) and
changes nothing, and the set-based billing batch books exactly what the single path books for a success.
"""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from kassa.errors import Conflict
from kassa.extensions import db
from kassa.models import (
    Account,
    AttemptStatus,
    Dispute,
    DisputeStatus,
    Invoice,
    InvoiceStatus,
    LedgerEntry,
    Payment,
    PaymentAttempt,
    PaymentStatus,
    Payout,
    PayoutStatus,
    Quote,
    QuoteStatus,
    Refund,
    RefundStatus,
    Subscription,
    SubscriptionStatus,
    TimelineEntry,
)
from kassa.services.billing import subscription_states
from kassa.services.disputes import dispute_states
from kassa.services.money.ledger import book_charge, charge_available_on, charge_rows
from kassa.services.payments import (
    attempt_states,
    invoice_states,
    payment_states,
    quote_states,
    refund_states,
)
from kassa.services.payouts import payout_states
from kassa.timeline_kinds import TimelineKind
from tests.support.billing import advance, buy, frozen, renewals_of, subscription_shop

MACHINES = {
    "payment": (payment_states.TRANSITIONS, PaymentStatus, Payment,
                lambda obj, target, at: payment_states.move_payment(obj, target, at=at)),
    "refund": (refund_states.TRANSITIONS, RefundStatus, Refund,
               lambda obj, target, at: refund_states.move_refund(obj, target, at=at)),
    "dispute": (dispute_states.TRANSITIONS, DisputeStatus, Dispute,
                lambda obj, target, at: dispute_states.move_dispute(obj, target, at=at)),
    "subscription": (subscription_states.TRANSITIONS, SubscriptionStatus, Subscription,
                     lambda obj, target, at: subscription_states.move_subscription(db.session, obj, target, at=at)),
    "payout": (payout_states.TRANSITIONS, PayoutStatus, Payout,
               lambda obj, target, at: payout_states.move_payout(obj, target, at=at)),
    "attempt": (attempt_states.TRANSITIONS, AttemptStatus, PaymentAttempt,
                lambda obj, target, at: attempt_states.move_attempt(obj, target, at=at)),
    "invoice": (invoice_states.TRANSITIONS, InvoiceStatus, Invoice,
                lambda obj, target, at: invoice_states.move_invoice(obj, target, at=at)),
    "quote": (quote_states.TRANSITIONS, QuoteStatus, Quote,  # V4
              lambda obj, target, at: quote_states.move_quote(obj, target, at=at)),
}
ILLEGAL = [(name, source, target) for name, (table, states, _model, _move_fn) in MACHINES.items()
           for source, target in itertools.product(states, states)
           if source is not target and (source, target) not in table]


@pytest.mark.parametrize(("name", "source", "target"), ILLEGAL,
                         ids=[f"{n}:{s.value}->{t.value}" for n, s, t in ILLEGAL])
def test_m1_every_move_not_in_a_machines_table_is_refused_and_changes_nothing(app, name, source, target):
    """M1 (a): for every machine, each (from, to) its TRANSITIONS lacks raises Conflict, before any write."""
    _table, _states, model, move = MACHINES[name]
    obj = model(id=1, status=source.value)
    with app.app_context():
        with pytest.raises(Conflict):
            move(obj, target, None)
        assert obj.status == source.value
        assert not db.session.new and not db.session.dirty


def test_m1_v3_a_payment_taken_back_moves_its_invoice_back_through_the_table(app):
    """M1, V3: reverse_payment (a manual payment deleted or made smaller, a payment refunded) moves a paid invoice
    to partially paid, then open once nothing is paid; a written-off invoice stays uncollectible (owing more);
    a draft or void one has nothing to take back. Only a manual payment can move to deleted."""
    invoice = Invoice(id=1, status="paid", amount_minor=1000, amount_paid_minor=1000)
    with app.app_context():
        assert invoice_states.reverse_payment(invoice, 400, at=None)
        assert (invoice.status, invoice.amount_paid_minor) == ("partially_paid", 600)
        assert invoice_states.reverse_payment(invoice, 100, at=None)  # partially paid, listed as its own move
        assert invoice_states.reverse_payment(invoice, 500, at=None)
        assert (invoice.status, invoice.amount_paid_minor) == ("open", 0)
        written_off = Invoice(id=2, status="uncollectible", amount_minor=1000, amount_paid_minor=300)
        assert not invoice_states.reverse_payment(written_off, 300, at=None)
        assert (written_off.status, written_off.amount_paid_minor) == ("uncollectible", 0)
        for status in ("draft", "void", "open"):
            other = Invoice(id=3, status=status, amount_minor=1000, amount_paid_minor=0)
            assert not invoice_states.reverse_payment(other, 100, at=None) and other.status == status
        card = Payment(id=1, status="succeeded", method="card")
        with pytest.raises(Conflict):
            payment_states.move_payment(card, PaymentStatus.DELETED, at=None)
        assert card.status == "succeeded" and not db.session.new and not db.session.dirty


def test_m1_every_machine_has_a_table_and_only_known_states():
    """M1, V1, V4: eight machines, each with at least one move, every state in its table one of its enum's."""
    assert set(MACHINES) == {"payment", "refund", "dispute", "subscription", "payout", "attempt", "invoice", "quote"}
    for table, states, _model, _move_fn in MACHINES.values():
        assert table
        assert all(isinstance(s, states) and isinstance(t, states) for s, t in table)


def _ledger_of(payment_id: int) -> list[tuple]:
    return sorted(db.session.execute(select(
        LedgerEntry.type, LedgerEntry.source_key, LedgerEntry.amount_minor, LedgerEntry.currency,
        LedgerEntry.available_on, LedgerEntry.occurred_at, LedgerEntry.description)
        .where(LedgerEntry.payment_id == payment_id)).all())


def test_m1_batch_renewals_book_what_the_single_path_books(client, app):
    """M1 (c): a renewal recorded by the set-based batch has the ledger rows and timeline entry the payment
    machine's single path defines — booking it again through ledger.book_charge adds nothing and the rows
    equal ledger.charge_rows; the checkout's first payment (single path) books the same shape."""
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="fixed", term_count="3")
        sub = buy(client, link)
        advance(owner, days=32)
        renewal = renewals_of(sub)[0]
        first = db.session.get(Payment, db.session.get(Subscription, sub.id).first_payment_id)
        assert renewal.status == PaymentStatus.SUCCEEDED.value
        for payment in (first, renewal):
            before = _ledger_of(payment.id)
            account = db.session.get(Account, payment.account_id)
            expected = sorted((row["type"], row["source_key"], row["amount_minor"], row["currency"],
                               row["available_on"], row["occurred_at"], row["description"])
                              for row in charge_rows(payment, charge_available_on(
                                  account, payment.method, payment.succeeded_at)))
            assert before == expected
            book_charge(payment)
            db.session.flush()
            assert _ledger_of(payment.id) == before  # same source keys: the single path books nothing new
            db.session.rollback()
            kinds = db.session.scalars(select(TimelineEntry.kind).where(
                TimelineEntry.payment_id == payment.id, TimelineEntry.subject_type == "payment")).all()
            assert kinds.count(payment_states.SUCCEEDED.timeline.value) == 1
            assert TimelineKind.PAYMENT_SUCCEEDED.value in kinds
