"""Ledger checks shared by tests (O1, O3, M1): the payout invariants, and the ledger against the processor.

    check_payout_invariants(account_id)        # each payout = its entries; booked = paid out + balance
    check_manual_payments(account_id)          # V3: manual payments: their entries = their amounts, never paid out
    assert_ledger_matches_processor(account_id)  # every entry and status is what the sandbox's records say

The processor side is read from the sandbox's own records (its charges, refunds, disputes and the events it
scheduled, due by the account's clock) and through the Processor protocol's lookups (lookup_charge by an
attempt's or renewal's key, lookup_refund, lookup_dispute), never from Kassa's tables.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import func, select

from kassa.clock import now
from kassa.extensions import db
from kassa.models import (
    MANUAL_METHOD,
    UNPAID_STATUSES,
    AttemptStatus,
    Dispute,
    DisputeStatus,
    LedgerEntry,
    LedgerType,
    Payment,
    PaymentAttempt,
    PaymentStatus,
    Payout,
    PayoutStatus,
    Refund,
    RefundStatus,
    SandboxRecord,
)
from kassa.processors.registry import sandbox
from kassa.services.disputes.disputes import dispute_fee
from kassa.services.money.ledger import to_settlement
from kassa.services.payouts.payouts import balance, payout_key


def check_payout_invariants(account_id: int) -> None:
    """O1, O3: each payout equals the sum of its entries, no two payouts on one day, and everything booked =
    everything paid out + what is left in the balance."""
    db.session.rollback()
    payouts = db.session.scalars(select(Payout).where(Payout.account_id == account_id)).all()
    for payout in payouts:
        inside = db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
            LedgerEntry.payout_id == payout.id, LedgerEntry.type != "payout"))
        assert payout.amount_minor == inside, f"payout {payout.id} is {payout.amount_minor}, its entries {inside}"
    # One a day is Kassa's own rule; a processor paying out by itself (Stripe, K11) may pay out more often.
    days = [(p.mode, p.payout_date) for p in payouts if p.processor_ref is None]
    assert len(days) == len(set(days)), "two payouts on one day"
    # V3: manual payments are booked but never paid out nor in the balance: money the merchant already has.
    booked = db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
        LedgerEntry.account_id == account_id, LedgerEntry.type.not_in(("payout", LedgerType.MANUAL.value))))
    # A failed payout's funds come back as an entry, so what really left is the paid/in-transit payouts.
    paid_out = sum(p.amount_minor for p in payouts)
    left = sum(balance(account_id, mode, now().date() + timedelta(days=365))["total"] for mode in ("test", "live"))
    assert booked == paid_out + left


class _Sandbox:
    """The sandbox's records of one account as of `at` (its clock): what the processor says happened."""

    def __init__(self, account_id: int, at: datetime) -> None:
        rows = dict(db.session.execute(select(SandboxRecord.key, SandboxRecord.data)
                                       .where(SandboxRecord.account_id == account_id)).all())
        self.rows = rows
        # B2: a 3-D Secure charge still waiting for the buyer, failed or cancelled there never went through
        self.charges = {data["result"]["processor_ref"]: data for key, data in rows.items()
                        if key.startswith("charge:") and data.get("action", "authenticated") == "authenticated"}
        self.outcomes: dict[str, set[str]] = {}  # object ref -> types of its events due by `at`
        for key, data in rows.items():
            if key.startswith("event:") and datetime.fromisoformat(data["occurred_at"]) <= at:
                self.outcomes.setdefault(data["object_ref"], set()).add(data["type"])

    def happened(self, ref: str, event_type: str) -> bool:
        return event_type in self.outcomes.get(ref, set())

    def charge_status(self, ref: str) -> str:
        """A card charge succeeds at once; a bank debit when its settlement event is due."""
        if self.charges[ref]["result"]["method"] == "card" or self.happened(ref, "charge.succeeded"):
            return PaymentStatus.SUCCEEDED.value
        return PaymentStatus.FAILED.value if self.happened(ref, "charge.failed") else PaymentStatus.PROCESSING.value

    def refund_status(self, ref: str) -> str:
        if self.happened(ref, "refund.succeeded"):
            return RefundStatus.SUCCEEDED.value
        return RefundStatus.FAILED.value if self.happened(ref, "refund.failed") else RefundStatus.PENDING.value

    def entries(self) -> Counter:
        """(charge ref, ledger type, amount) for every money movement the processor's records show."""
        want: Counter = Counter()
        for ref, charge in self.charges.items():
            result = charge["result"]

            def settled(amount: int, result=result) -> int:
                """An amount in the charge's currency in its settlement currency, at the charge's own rate."""
                return to_settlement(SimpleNamespace(**result), amount)
            if self.charge_status(ref) == PaymentStatus.SUCCEEDED.value:
                want[ref, LedgerType.CHARGE.value, result["amount_settlement_minor"]] += 1
                if result["fee_settlement_minor"]:
                    want[ref, LedgerType.FEE.value, -result["fee_settlement_minor"]] += 1
            for refund_ref in charge["refund_refs"]:
                amount = settled(self.rows[f"refund:{refund_ref}"]["amount_minor"])
                want[ref, LedgerType.REFUND.value, -amount] += 1
                if self.happened(refund_ref, "refund.failed"):
                    want[ref, LedgerType.REFUND_FAILURE.value, amount] += 1
            dispute_ref = charge["dispute_ref"]
            if dispute_ref and self.happened(dispute_ref, "dispute.created"):
                data = self.rows[f"dispute:{dispute_ref}"]["data"]
                if not data["is_inquiry"]:  # an inquiry withdraws nothing, so winning it returns nothing
                    want[ref, LedgerType.DISPUTE.value, -settled(data["amount_minor"])] += 1
                    want[ref, LedgerType.DISPUTE_FEE.value, -settled(dispute_fee(data["currency"]))] += 1
                    if self.happened(dispute_ref, "dispute.won"):
                        want[ref, LedgerType.DISPUTE_REVERSAL.value, settled(data["amount_minor"])] += 1
        return want


def check_manual_payments(account_id: int) -> None:
    """V3: every manual payment has no processor and is succeeded or deleted; its MANUAL entries add up to its
    amount (0 once deleted), none is in a payout, and no other payment has a MANUAL entry."""
    db.session.rollback()
    manual = {p.id: p for p in db.session.scalars(select(Payment).where(Payment.account_id == account_id,
                                                                        Payment.method == MANUAL_METHOD))}
    sums = dict(db.session.execute(
        select(LedgerEntry.payment_id, func.sum(LedgerEntry.amount_minor))
        .where(LedgerEntry.account_id == account_id, LedgerEntry.type == LedgerType.MANUAL.value)
        .group_by(LedgerEntry.payment_id)).all())
    assert set(sums) <= set(manual), "a MANUAL ledger entry of a payment that isn't manual"
    for payment in manual.values():
        assert payment.processor_ref is None and payment.fee_minor == 0, payment.id
        assert payment.status in (PaymentStatus.SUCCEEDED.value, PaymentStatus.DELETED.value), payment.status
        want = payment.amount_minor if payment.status == PaymentStatus.SUCCEEDED.value else 0
        assert int(sums.get(payment.id, 0)) == want, (payment.id, sums.get(payment.id), want)
        other = db.session.scalar(select(func.count()).where(LedgerEntry.payment_id == payment.id,
                                                             LedgerEntry.type != LedgerType.MANUAL.value))
        assert other == 0, f"manual payment {payment.id} has processor entries"
    paid_out = db.session.scalar(select(func.count()).where(LedgerEntry.account_id == account_id,
                                                            LedgerEntry.type == LedgerType.MANUAL.value,
                                                            LedgerEntry.payout_id.is_not(None)))
    assert paid_out == 0, "a manual payment is in a payout"


def assert_ledger_matches_processor(account_id: int) -> None:
    """M1, O1: Kassa has applied every event the processor has due, and its ledger and statuses are exactly
    what the processor's records say — charges and fees, refunds and failed refunds, disputes, their fees and
    reversals — with payouts booked as the payouts that were made (and given back when they failed)."""
    db.session.rollback()
    at = now()
    processor = sandbox()
    assert processor.due_events(account_id, at) == [], "events due at the processor that Kassa hasn't applied"
    side = _Sandbox(account_id, at)

    payments = db.session.scalars(select(Payment).where(Payment.account_id == account_id)).all()
    check_manual_payments(account_id)
    payments = [p for p in payments if p.method != MANUAL_METHOD]  # V3: no processor: checked above
    by_ref = {p.processor_ref: p for p in payments if p.processor_ref}
    refs = {p.id: p.processor_ref for p in payments}
    assert sorted(by_ref) == sorted(side.charges), "Kassa's payments and the processor's charges differ"
    assert len(by_ref) == len([p for p in payments if p.processor_ref]), "two payments for one charge"
    for ref, payment in by_ref.items():
        result = side.charges[ref]["result"]
        assert (payment.amount_minor, payment.currency, payment.fee_settlement_minor) == (
            result["amount_minor"], result["currency"], result["fee_settlement_minor"]), ref
        assert payment.status == side.charge_status(ref), (payment.id, payment.status, side.charge_status(ref))
    for payment in payments:
        if payment.idempotency_key:  # a renewal: charged under its own key, or declined and never charged
            found = processor.lookup_charge(account_id, payment.idempotency_key)
            assert (found.processor_ref if found else None) == payment.processor_ref, payment.id
        if not payment.processor_ref:  # a declined attempt, or (B2) one the buyer didn't finish
            assert payment.status in UNPAID_STATUSES, (payment.id, payment.status)

    for attempt in db.session.scalars(select(PaymentAttempt).where(PaymentAttempt.account_id == account_id)):
        found = processor.lookup_charge(account_id, attempt.idempotency_key)
        if attempt.status == AttemptStatus.SUCCEEDED.value and attempt.amount_minor == 0:
            # Q9: a free trial with nothing due saved the card: no charge, no payment.
            assert found is None and attempt.payment_id is None, attempt.id
        elif attempt.status == AttemptStatus.SUCCEEDED.value:
            assert found is not None and found.processor_ref == attempt.processor_ref, attempt.id
            assert by_ref[found.processor_ref].id == attempt.payment_id, attempt.id
        elif attempt.status in (AttemptStatus.DECLINED.value, AttemptStatus.FAILED.value):
            assert found is None, f"attempt {attempt.id} is {attempt.status} but the processor charged it"

    for refund in db.session.scalars(select(Refund).where(Refund.account_id == account_id)):
        found = processor.lookup_refund(account_id, refund.idempotency_key)
        assert found is not None and found.processor_ref == refund.processor_ref, refund.id
        assert (found.amount_minor, found.charge_ref) == (refund.amount_minor, refs[refund.payment_id])
        assert refund.status == side.refund_status(refund.processor_ref), (refund.id, refund.status)

    disputes = db.session.scalars(select(Dispute).where(Dispute.account_id == account_id)).all()
    opened = sorted(ref for ref in side.outcomes if side.happened(ref, "dispute.created"))
    assert sorted(d.processor_ref for d in disputes) == opened, "Kassa's disputes and the processor's differ"
    for dispute in disputes:
        found = processor.lookup_dispute(account_id, dispute.processor_ref, at)
        assert (found.amount_minor, found.is_inquiry, found.charge_ref) == (
            dispute.amount_minor, dispute.is_inquiry, refs[dispute.payment_id]), dispute.id
        decided = [s.value for s in (DisputeStatus.WON, DisputeStatus.LOST)
                   if side.happened(dispute.processor_ref, f"dispute.{s.value}")]
        if decided:
            assert [dispute.status] == decided, (dispute.id, dispute.status, decided)
        else:
            assert dispute.status in (DisputeStatus.NEEDS_RESPONSE.value, DisputeStatus.UNDER_REVIEW.value)

    entries = db.session.execute(select(LedgerEntry.type, LedgerEntry.amount_minor, LedgerEntry.payment_id,
                                        LedgerEntry.payout_id).where(LedgerEntry.account_id == account_id)).all()
    payout_types = (LedgerType.PAYOUT.value, LedgerType.PAYOUT_FAILURE.value)
    booked = Counter((refs[e.payment_id], e.type, e.amount_minor) for e in entries
                     if e.type not in payout_types and e.type != LedgerType.MANUAL.value)
    assert booked == side.entries(), f"ledger {sorted(booked - side.entries())} processor " \
                                     f"{sorted(side.entries() - booked)}"
    payouts = db.session.scalars(select(Payout).where(Payout.account_id == account_id)).all()
    want = Counter((LedgerType.PAYOUT.value, -p.amount_minor) for p in payouts)
    want += Counter((LedgerType.PAYOUT_FAILURE.value, p.amount_minor) for p in payouts
                    if p.status == PayoutStatus.FAILED.value)
    assert Counter((e.type, e.amount_minor) for e in entries if e.type in payout_types) == want
    for payout in payouts:  # M2: each payout as the processor has it — none sent while pending, same amount after
        found = processor.lookup_payout(account_id, payout_key(payout.id), at)
        if payout.status == PayoutStatus.PENDING.value:
            assert found is None, payout.id
        else:
            assert found is not None and (found.amount_minor, found.currency) == (
                payout.amount_minor, payout.currency), payout.id
            if payout.status != PayoutStatus.IN_TRANSIT.value:
                assert str(found.status) == payout.status, (payout.id, payout.status, found.status)
    check_payout_invariants(account_id)
