"""H5: the sandbox makes a refund, a charge and a dispute answer in one store transaction: cut off at any of
its writes, it leaves nothing behind, and the same request again does it exactly once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from kassa.processors.base import DisputeEvidence, ProcessorFailure
from kassa.processors.sandbox import InMemorySandboxStore, SandboxProcessor
from tests.support.faults import Crash, FaultPlan, FaultyStore
from tests.unit.test_sandbox import NL, NOW, card_request, open_dispute


def _faulty(plan: FaultPlan):
    store = InMemorySandboxStore()
    return store, SandboxProcessor(FaultyStore(store, plan), {NL: "NL"}.__getitem__)


def _crash_at_write(plan: FaultPlan, n: int, call) -> bool:
    """Run `call` with a crash before the sandbox's n-th store write; True when the crash happened."""
    plan.arm("write", n)
    plan.local.in_call = True
    try:
        call()
    except Crash:
        return True
    finally:
        plan.local.in_call = False
        plan.reset()
    return False


def _keys(store: InMemorySandboxStore, prefix: str) -> list[str]:
    return sorted(key for key in store.rows if key.startswith(prefix))


@pytest.mark.parametrize("amount", [400, 1000])
def test_h5_a_refund_cut_off_at_any_write_leaves_nothing_and_its_retry_refunds_once(amount):
    """The reported case: the old sandbox wrote the refund, then the charge's list, the event and the key one
    by one; a crash in between left a refund without its key, so the retry refunded again (partial) or was
    refused as too large while the first refund stood (full)."""
    n, crashed = 1, True
    while crashed:
        plan = FaultPlan()
        store, sandbox = _faulty(plan)
        charge = sandbox.charge(card_request(amount=1000))
        before = dict(store.rows)

        def refund(sandbox=sandbox, charge=charge):
            return sandbox.refund(NL, charge.processor_ref, amount, "EUR", "r1", NOW)

        crashed = _crash_at_write(plan, n, refund)
        if crashed:
            assert store.rows == before, f"write {n}: a crashed refund left {set(store.rows) - set(before)}"
            assert sandbox.lookup_refund(NL, "r1") is None
        made = refund()
        assert _keys(store, "refund:") == [f"refund:{made.processor_ref}"]
        assert store.get(f"charge:{charge.processor_ref}")["refund_refs"] == [made.processor_ref]
        assert sandbox.lookup_refund(NL, "r1") == made
        n += 1
    assert n > 2  # the refund has several writes, and each was a crash point


def test_h5_a_charge_cut_off_at_any_write_leaves_no_charge_behind():
    """Cut off inside its transaction, a charge leaves no charge, event or dispute: only the held key, which
    runs out, and the retry makes one charge."""
    from kassa.processors.sandbox_records import IN_FLIGHT_LEASE

    n, crashed = 1, True
    while crashed:
        plan = FaultPlan()
        store, sandbox = _faulty(plan)
        request = card_request("4000000000000259", key="c1")  # opens a dispute too: several records
        crashed = _crash_at_write(plan, n, lambda sandbox=sandbox, request=request: sandbox.charge(request))
        if crashed:
            assert _keys(store, "charge:") == _keys(store, "dispute:") == _keys(store, "event:") == []
            assert sandbox.lookup_charge(NL, "c1") is None
        later = card_request("4000000000000259", key="c1", now=NOW + IN_FLIGHT_LEASE)
        with time_machine.travel(datetime.now(UTC) + IN_FLIGHT_LEASE):  # the hold runs out on real time
            made = sandbox.charge(later)
        assert _keys(store, "charge:") == [f"charge:{made.processor_ref}"] and len(_keys(store, "dispute:")) == 1
        assert sandbox.lookup_charge(NL, "c1") == made
        n += 1


@pytest.mark.parametrize("answer", ["submit", "accept"])
def test_h5_a_dispute_answer_cut_off_at_any_write_leaves_the_dispute_unanswered(answer):
    n = 1
    while True:
        plan = FaultPlan()
        store, sandbox = _faulty(plan)
        _charge, created = open_dispute(sandbox)
        dispute_ref = created.object_ref
        before = dict(store.rows)

        def send(sandbox=sandbox, dispute_ref=dispute_ref):
            if answer == "accept":
                return sandbox.accept_dispute(NL, dispute_ref, NOW)
            return sandbox.submit_dispute_evidence(NL, dispute_ref, DisputeEvidence(text="winning_evidence"), NOW)

        crashed = _crash_at_write(plan, n, send)
        if not crashed:
            break  # past the last write: answered in one go
        assert store.rows == before
        assert sandbox.lookup_dispute(NL, dispute_ref, NOW).status == "needs_response"
        result = send()
        assert sandbox.lookup_dispute(NL, dispute_ref, NOW).status == result.status
        with pytest.raises(ProcessorFailure):
            send()  # one answer per dispute
        n += 1
    assert n > 2  # the answer has several writes (the deadline event, the decision event, the dispute)


def test_h5_a_refused_refund_key_stays_refused_and_is_not_found():
    """A refusal is the key's answer: the same key is refused again (never made later behind Kassa's back,
    after Kassa released the reservation), and lookup_refund finds no refund under it."""
    sandbox = SandboxProcessor(InMemorySandboxStore(), {NL: "NL"}.__getitem__)
    charge = sandbox.charge(card_request(amount=1000))
    sandbox.refund(NL, charge.processor_ref, 1000, "EUR", "full", NOW)
    for _ in range(2):
        with pytest.raises(ProcessorFailure) as refused:
            sandbox.refund(NL, charge.processor_ref, 1, "EUR", "more", NOW)
        assert refused.value.code == "amount_too_large"
    assert sandbox.lookup_refund(NL, "more") is None
    assert sandbox.lookup_refund(NL, "full").amount_minor == 1000
