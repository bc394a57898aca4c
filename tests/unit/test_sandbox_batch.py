"""The sandbox's batch charge (S1, C5; issue 8): `charge_many` answers every request exactly as `charge` answers
it alone — same checks, same idempotency, same records — in a few store round trips for the whole batch."""

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
import time_machine

from kassa.processors.base import (
    CardDeclined,
    CardDetails,
    ChargeRequest,
    ChargeResult,
    ProcessorFailure,
    ProcessorUnavailable,
)
from kassa.processors.sandbox import SandboxProcessor, index_key_of
from kassa.processors.sandbox_records import IN_FLIGHT_LEASE
from tests.support.faults import FaultPlan, FaultyProcessor

NOW = datetime(2026, 4, 22, 10, 0, tzinfo=UTC)
ACCOUNT = 1
_keys = count()


@pytest.fixture
def sandbox(store):
    return SandboxProcessor(store, lambda account_id: "US")


def card(number="4242424242424242", *, key=None, amount=1000, save=False):
    return ChargeRequest(account_id=ACCOUNT, idempotency_key=key or f"key-{next(_keys)}", amount_minor=amount,
                         currency="USD", method="card", card=CardDetails(number, 12, 2030, "123", "Ada", "12345"),
                         save_payment_method=save, now=NOW)


def renewal(token, *, key=None, amount=1000, now=NOW):
    return ChargeRequest(account_id=ACCOUNT, idempotency_key=key or f"sub-{next(_keys)}", amount_minor=amount,
                         currency="USD", method="card", payment_method_token=token, now=now)


def saved_card(sandbox, number="4242424242424242") -> str:
    return sandbox.charge(card(number, save=True)).payment_method_token


def charges(store) -> list[str]:
    return [key for key in store.rows if key.startswith("charge:")]


def test_s1_each_request_gets_the_answer_charge_would_give_in_its_place(sandbox, store):
    good, declining = saved_card(sandbox), saved_card(sandbox, "5555555555554444")
    sandbox.set_payment_method_behaviour(ACCOUNT, declining, "decline")
    before = len(charges(store))

    answers = sandbox.charge_many([renewal(good), renewal(declining), renewal(good, amount=0),
                                   renewal("pm_unknown"), card("4000000000000002"), card()])

    assert isinstance(answers[0], ChargeResult) and (answers[0].status, answers[0].last4) == ("succeeded", "4242")
    assert isinstance(answers[1], CardDeclined) and answers[1].code == "card_declined"
    assert isinstance(answers[2], ProcessorFailure) and answers[2].code == "invalid_amount"
    assert isinstance(answers[3], ProcessorFailure) and answers[3].code == "no_such_payment_method"
    assert isinstance(answers[4], CardDeclined)
    assert isinstance(answers[5], ChargeResult) and answers[5].fee_minor > 0
    assert len(charges(store)) == before + 2  # declines and refusals charge nothing


def test_s1_c5_a_key_that_charged_answers_with_the_same_charge_in_a_later_batch(sandbox, store):
    token = saved_card(sandbox)
    requests = [renewal(token) for _ in range(3)]

    first = sandbox.charge_many(requests)
    again = sandbox.charge_many(requests)

    assert [a.processor_ref for a in again] == [f.processor_ref for f in first]
    assert sandbox.charge(requests[0]).processor_ref == first[0].processor_ref  # one key, one charge, either API
    assert len(charges(store)) == 1 + 3


def test_c5_a_key_charged_one_by_one_is_replayed_by_a_batch_and_a_changed_request_is_refused(sandbox):
    token = saved_card(sandbox)
    request = renewal(token, key="sub-1-p1-a1")
    charged = sandbox.charge(request)

    same, changed = sandbox.charge_many([request]), sandbox.charge_many([renewal(token, key="sub-1-p1-a1",
                                                                                 amount=999)])

    assert same[0].processor_ref == charged.processor_ref
    assert isinstance(changed[0], ProcessorFailure) and changed[0].code == "idempotency_key_reused"


def test_s1_a_key_another_request_is_charging_gets_retry_later_until_its_lease_runs_out(sandbox, store):
    token = saved_card(sandbox)
    request = renewal(token)
    with time_machine.travel(NOW, tick=False):
        assert store.claim(index_key_of(request), {"charge_ref": None, "fingerprint": "x"}, now=NOW,
                           until=NOW + IN_FLIGHT_LEASE)  # a request that died while charging
        (busy,) = sandbox.charge_many([request])
    with time_machine.travel(NOW + 2 * IN_FLIGHT_LEASE, tick=False):
        (later,) = sandbox.charge_many([renewal(token, key=request.idempotency_key)])

    assert isinstance(busy, ProcessorUnavailable)
    assert isinstance(later, ChargeResult)


@pytest.mark.parametrize("path", ["one by one", "batch"])
def test_s1_b9_a_charge_in_flight_is_not_taken_over_by_a_request_on_a_test_clock_days_ahead(sandbox, store, path):
    """CI found two sandbox charges for one trial's first period: two "advance the clock" clicks, the second
    sent the same key with the test clock's time, days after the first's hold, and took the key as
    abandoned while the first was still charging. The hold is on real time, whatever the request's clock."""
    token = saved_card(sandbox)
    request = renewal(token)
    with time_machine.travel(NOW, tick=False):
        assert store.claim(index_key_of(request), {"charge_ref": None, "fingerprint": "x"}, now=NOW,
                           until=NOW + IN_FLIGHT_LEASE)  # the first click's charge, being made
        ahead = renewal(token, key=request.idempotency_key, now=NOW + timedelta(days=30))
        before = charges(store)
        if path == "batch":
            (answer,) = sandbox.charge_many([ahead])
            assert isinstance(answer, ProcessorUnavailable)
        else:
            with pytest.raises(ProcessorUnavailable):
                sandbox.charge(ahead)
    assert charges(store) == before


def test_c5_a_decline_in_a_batch_does_not_use_up_its_key(sandbox):
    token = saved_card(sandbox)
    sandbox.set_payment_method_behaviour(ACCOUNT, token, "decline")
    request = renewal(token)
    assert isinstance(sandbox.charge_many([request])[0], CardDeclined)

    sandbox.set_payment_method_behaviour(ACCOUNT, token, "succeed")

    assert isinstance(sandbox.charge_many([request])[0], ChargeResult)


def test_s1_a_saved_dispute_card_opens_a_dispute_from_a_batch_as_from_a_single_charge(sandbox):
    token = saved_card(sandbox, "4000000000000259")
    later = NOW + timedelta(days=30)

    (charge,) = sandbox.charge_many([renewal(token, now=later)])

    disputed = [e.data["charge_ref"] for e in sandbox.due_events(ACCOUNT, later) if e.type == "dispute.created"]
    assert len(disputed) == 2 and disputed[-1] == charge.processor_ref  # the first charge's, then the renewal's


def test_fault_hooks_hit_the_charges_they_would_hit_one_by_one(sandbox, store):
    """Faults injected by the test-only wrapper (M3) hit a batch's charges as they would hit them one by one."""
    token = saved_card(sandbox)
    plan = FaultPlan()
    sandbox = FaultyProcessor(sandbox, plan)
    plan.inject("timeout", times=1, account_id=ACCOUNT)
    plan.inject("lose_response", times=1, account_id=ACCOUNT)

    answers = sandbox.charge_many([renewal(token), renewal(token), renewal(token)])

    assert [type(a) for a in answers] == [ProcessorUnavailable, ProcessorUnavailable, ChargeResult]
    assert len(charges(store)) == 1 + 2  # the lost response was charged; the timeout was not


def test_s1_a_batch_takes_a_handful_of_store_round_trips_whatever_its_size(sandbox, store):
    token = saved_card(sandbox)
    calls = []

    class Counting:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(store, name)

    batch = SandboxProcessor(Counting(), sandbox.country_for)

    answers = batch.charge_many([renewal(token) for _ in range(200)])

    assert all(isinstance(a, ChargeResult) for a in answers)
    # The keys, claiming them, the saved cards, then every charge written at once (M3: no read of armed
    # faults any more: faults are injected by a test-only wrapper).
    assert calls == ["get_many", "claim_many", "get_many", "put_many"]
