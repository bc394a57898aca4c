"""O1, O3: payouts add up to the cent, whatever happens in whatever order.

Hypothesis draws sequences of payments (card or bank debit, any amount), partial refunds, failed refunds,
disputes won or lost and days passing with the payout tick; after every step:

- each payout equals the sum of the entries in it, and no entry is in two payouts;
- everything booked = everything paid out + what is left in the balance (nothing lost, nothing twice);
- at most one payout per day, and booking the same movement again changes nothing.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Account, Dispute, Payment, Refund
from kassa.services.money import ledger
from kassa.services.payouts.payouts import balance, run_payouts
from tests.factories import make_merchant, make_payment
from tests.support.ledger import check_payout_invariants

_keys = itertools.count()
START = datetime(2027, 3, 1, 14, tzinfo=UTC)  # a Monday

operations = st.lists(
    st.one_of(
        st.tuples(st.just("pay"), st.integers(50, 500_000), st.sampled_from(["card", "ach"])),
        st.tuples(st.just("refund"), st.integers(0, 20), st.integers(1, 100)),  # payment index, percent
        st.tuples(st.just("refund_fails"), st.integers(0, 20), st.integers(1, 100)),
        st.tuples(st.just("dispute"), st.integers(0, 20), st.booleans()),  # won?
        st.tuples(st.just("days"), st.integers(1, 4), st.integers(0, 3)),  # days ahead, extra ticks
    ),
    min_size=1, max_size=18,
)


def _pay(account: Account, amount: int, method: str) -> Payment:
    fee = amount * 29 // 1000 + 30 if method == "card" else min(amount * 8 // 1000, 500)
    payment = make_payment(account.id, amount_minor=amount, method=method, fee_minor=fee,
                           net_settlement_minor=amount - fee, fee_settlement_minor=fee, created_at=now())
    with write_transaction(db.session):
        ledger.book_charge(db.session.get(Payment, payment.id))
        ledger.book_charge(db.session.get(Payment, payment.id))  # a repeated event books nothing more
    return payment


def _refund(payment: Payment, percent: int, fails: bool) -> None:
    amount = max(1, payment.amount_minor * percent // 100)
    with write_transaction(db.session) as session:
        refund = Refund(account_id=payment.account_id, payment_id=payment.id, amount_minor=amount,
                        currency=payment.currency, reason="requested_by_customer",
                        idempotency_key=f"prop-{next(_keys)}")
        session.add(refund)
        session.flush()
        ledger.book_refund(refund, now())
        if fails:
            ledger.book_refund_failure(refund, now())


def _dispute(payment: Payment, won: bool) -> None:
    with write_transaction(db.session) as session:
        if session.scalar(select(Dispute.id).where(Dispute.payment_id == payment.id)):
            return
        dispute = Dispute(account_id=payment.account_id, payment_id=payment.id, processor_ref=f"dp_{payment.id}",
                          amount_minor=payment.amount_minor, currency=payment.currency, reason="fraudulent",
                          fee_minor=1500, evidence_due_by=now() + timedelta(days=7))
        session.add(dispute)
        session.flush()
        ledger.book_dispute(dispute, now())
        if won:
            ledger.book_dispute_won(dispute, now())


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_payouts_always_add_up(app, ops):
    owner = make_merchant()
    account = db.session.get(Account, owner.account_id)
    payments: list[Payment] = []
    with time_machine.travel(START, tick=False) as clock:
        for op in ops:
            kind = op[0]
            if kind == "pay":
                payments.append(_pay(account, op[1], op[2]))
            elif kind in ("refund", "refund_fails") and payments:
                _refund(payments[op[1] % len(payments)], op[2], kind == "refund_fails")
            elif kind == "dispute" and payments:
                _dispute(payments[op[1] % len(payments)], op[2])
            elif kind == "days":
                clock.shift(timedelta(days=op[1]))
                for _ in range(1 + op[2]):
                    run_payouts()
            check_payout_invariants(account.id)
        # In the end, after a quiet week, everything available has gone out: the balance is exactly the
        # entries that are not yet available (none, a week on).
        clock.shift(timedelta(days=10))
        run_payouts()
        check_payout_invariants(account.id)
        assert balance(account.id, "test", now().date())["available"] == 0
