"""The sandbox processor (SPEC T, F, D, O, S; DESIGN 7.4-7.6): a real processor on an in-memory store."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest

from kassa.processors.base import (
    BankDetails,
    CardDeclined,
    CardDetails,
    ChargeRequest,
    DisputeEvidence,
    PaymentDetailsInvalid,
    Processor,
    ProcessorFailure,
    ProcessorUnavailable,
)
from kassa.processors.sandbox import (
    SandboxProcessor,
    compute_fee,
    convert_minor,
    exchange_rate,
)
from kassa.processors.testcards import CARDS, FAILING_CARDS, SUCCEEDING_CARDS, card_brand
from tests.support.faults import FaultPlan, FaultyProcessor

NOW = datetime(2026, 4, 22, 10, 0, tzinfo=UTC)  # a Wednesday; King's Day (NL) is Monday 27 April
NL, US = 1, 2  # account ids; account 1 is Dutch, account 2 American
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
_keys = count()


@pytest.fixture
def sandbox(store):
    return SandboxProcessor(store, {NL: "NL", US: "US"}.__getitem__)


def card_request(
    number="4242424242424242", *, key=None, amount=1000, currency="EUR", account_id=NL, now=NOW, **kw
):
    cvc = "1234" if card_brand(number) == "amex" else "123"
    details = CardDetails(number, 12, 2030, cvc, "Ada Lovelace", "1011 AB")
    return ChargeRequest(
        account_id=account_id,
        idempotency_key=key or f"key-{next(_keys)}",
        amount_minor=amount,
        currency=currency,
        method="card",
        card=details,
        now=now,
        **kw,
    )


def ach_request(account="000123456789", *, key=None, amount=10000, account_id=NL, now=NOW):
    return ChargeRequest(
        account_id=account_id,
        idempotency_key=key or f"key-{next(_keys)}",
        amount_minor=amount,
        currency="USD",
        method="ach",
        bank=BankDetails("110000000", account, "Ada Lovelace"),
        now=now,
    )


def token_request(token, *, account_id=NL, now=NOW, amount=1000):
    return ChargeRequest(
        account_id=account_id,
        idempotency_key=f"key-{next(_keys)}",
        amount_minor=amount,
        currency="EUR",
        method="card",
        payment_method_token=token,
        now=now,
    )


def types(events):
    return [e.type for e in events]


def test_k1_sandbox_implements_the_processor_protocol(sandbox):
    assert isinstance(sandbox, Processor)
    assert sandbox.name == "sandbox"
    assert sandbox.supports_live is False


# --- T2 / T3: cards ------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", SUCCEEDING_CARDS, ids=lambda c: c.number)
def test_t2_success_card(sandbox, profile):
    result = sandbox.charge(card_request(profile.number))
    assert result.status == "succeeded"
    assert (result.brand, result.funding, result.last4) == (
        profile.brand,
        profile.funding,
        profile.number[-4:],
    )
    assert (result.exp_month, result.exp_year, result.method) == (12, 2030, "card")
    assert result.processor_ref.startswith("ch_")
    assert result.created_at == NOW
    assert sandbox.due_events(NL, NOW + timedelta(days=30)) == []


@pytest.mark.parametrize("profile", FAILING_CARDS, ids=lambda c: c.number)
def test_t3_failing_card_declined_and_nothing_charged(sandbox, store, profile):
    req = card_request(profile.number)
    with pytest.raises(CardDeclined) as err:
        sandbox.charge(req)
    assert (err.value.code, err.value.message) == (profile.decline_code, profile.decline_message)
    assert sandbox.lookup_charge(NL, req.idempotency_key) is None
    assert not [k for k in store.rows if k.startswith("charge:")]


@pytest.mark.parametrize(
    ("number", "code", "message", "field"),
    [
        ("4000000000000036", "incorrect_zip",
         "The postal code could not be verified and the payment was declined.", "postal_code"),
        ("4000000000000002", "card_declined", "Your card was declined.", None),
        ("4000000000009995", "insufficient_funds", "The payment was declined because of insufficient funds.", None),
        ("4000000000000069", "expired_card", "The payment was declined because the card has expired.", None),
        ("4000000000000127", "incorrect_cvc", "The payment was declined because of an incorrect CVC.", "cvc"),
    ],
)  # fmt: skip
def test_t3_decline_codes_and_messages(sandbox, number, code, message, field):
    with pytest.raises(CardDeclined) as err:
        sandbox.charge(card_request(number))
    assert (err.value.code, err.value.message, err.value.field) == (code, message, field)


def test_c5_decline_does_not_burn_the_idempotency_key(sandbox):
    with pytest.raises(CardDeclined):
        sandbox.charge(card_request("4000000000000002", key="checkout-1"))
    assert sandbox.charge(card_request("4242424242424242", key="checkout-1")).status == "succeeded"


def test_t1_non_test_card_is_refused_before_charging(sandbox, store):
    with pytest.raises(PaymentDetailsInvalid) as err:
        sandbox.charge(card_request("4111111111111111"))
    assert (err.value.field, err.value.code) == ("number", "not_a_test_card")
    assert not [k for k in store.rows if k.startswith("charge:")]


# --- T4: ACH -------------------------------------------------------------------------------------

SETTLES_NL = datetime(2026, 4, 29, 10, 0, tzinfo=UTC)  # Wed + 4 business days, skipping King's Day


@pytest.mark.parametrize(
    ("account", "event_type", "code"),
    [
        ("000123456789", "charge.succeeded", None),
        ("000111111116", "charge.failed", "debit_failed"),
        ("000111111113", "charge.failed", "account_closed"),
        ("000222222227", "charge.failed", "insufficient_funds"),
        ("000333333335", "charge.failed", "debit_not_authorized"),
        ("000444444440", "charge.failed", "invalid_currency"),
    ],
)
def test_t4_ach_account_settles_after_four_business_days(sandbox, account, event_type, code):
    result = sandbox.charge(ach_request(account))
    assert (result.status, result.method, result.bank_last4) == ("processing", "ach", account[-4:])
    assert result.brand is None and result.last4 is None
    assert sandbox.due_events(NL, SETTLES_NL - SECOND) == []
    [event] = sandbox.due_events(NL, SETTLES_NL)
    assert (event.type, event.object_ref, event.occurred_at) == (event_type, result.processor_ref, SETTLES_NL)
    assert event.data["charge_ref"] == result.processor_ref
    assert (event.data["amount_minor"], event.data["currency"]) == (10000, "USD")
    assert event.data.get("code") == code
    if code:
        assert event.data["message"]


def test_o2_ach_in_the_us_skips_observed_independence_day(sandbox):
    submitted = datetime(2026, 7, 1, 15, 30, tzinfo=UTC)
    sandbox.charge(ach_request(account_id=US, now=submitted))
    settles = datetime(2026, 7, 8, 15, 30, tzinfo=UTC)
    assert sandbox.due_events(US, settles - SECOND) == []
    assert types(sandbox.due_events(US, settles)) == ["charge.succeeded"]


def test_events_are_per_account_and_acknowledged_once(sandbox):
    sandbox.charge(ach_request())
    assert sandbox.due_events(US, SETTLES_NL + timedelta(days=30)) == []
    first = sandbox.due_events(NL, SETTLES_NL)
    assert [e.id for e in sandbox.due_events(NL, SETTLES_NL)] == [e.id for e in first]  # stable ids
    sandbox.acknowledge_event(first[0].id)
    sandbox.acknowledge_event(first[0].id)  # a no-op the second time
    assert sandbox.due_events(NL, SETTLES_NL + timedelta(days=30)) == []


# --- fees and FX ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "amount", "currency", "fee"),
    [
        ("card", 10000, "EUR", 320),  # 2.9 % of 100.00 + 0.30
        ("card", 10000, "JPY", 320),  # 2.9 % of ¥10,000 + ¥30
        ("card", 10000, "KWD", 390),  # 2.9 % of 10.000 + 0.100
        ("card", 500, "EUR", 45),  # 14.5 + 30 = 44.5 rounds half up
        ("card", 10, "USD", 10),  # never more than the amount
        ("ach", 10000, "USD", 80),
        ("ach", 100000, "USD", 500),  # capped at 5.00
        ("ach", 1000000, "JPY", 500),
        ("ach", 1000000, "KWD", 1500),
        ("ach", 100_000_000, "CLF", 50000),  # 4-decimal currency: the cap scales
    ],
)
def test_fee_schedule(method, amount, currency, fee):
    assert compute_fee(method, amount, currency) == fee


@pytest.mark.parametrize(
    ("currency", "settlement", "amount", "rate", "gross", "fee", "net"),
    [
        ("EUR", "USD", 10000, Decimal("1.086956522"), 10870, 348, 10522),
        ("JPY", "EUR", 10000, Decimal("0.006133333333"), 6133, 196, 5937),
        ("EUR", "KWD", 10000, Decimal("0.3336956522"), 33370, 1068, 32302),
        ("KWD", "JPY", 10000, Decimal("488.5993485"), 4886, 191, 4695),  # 10.000 KWD; fee 0.390
        ("EUR", "EUR", 10000, Decimal(1), 10000, 320, 9680),
        ("PLN", None, 10000, Decimal(1), 10000, 320, 9680),  # same currency works outside the table
    ],
)
def test_p5_fx_and_fees_in_settlement_currency(sandbox, currency, settlement, amount, rate, gross, fee, net):
    result = sandbox.charge(card_request(amount=amount, currency=currency, settlement_currency=settlement))
    assert result.exchange_rate == rate
    assert result.settlement_currency == (settlement or currency)
    assert (result.fee_minor, result.fee_currency) == (compute_fee("card", amount, currency), currency)
    assert (result.amount_settlement_minor, result.fee_settlement_minor, result.net_settlement_minor) == (
        gross,
        fee,
        net,
    )


def test_fx_pair_outside_the_table_is_refused(sandbox):
    with pytest.raises(ProcessorFailure) as err:
        sandbox.charge(card_request(currency="PLN", settlement_currency="USD"))
    assert err.value.code == "currency_not_supported"


def test_convert_minor_rounds_half_up():
    assert convert_minor(5, "EUR", "EUR", Decimal("0.5")) == 3
    assert exchange_rate("USD", "JPY") == Decimal(150)


# --- idempotency and request checks --------------------------------------------------------------


def test_c5_same_key_twice_charges_once(sandbox, store):
    first = sandbox.charge(card_request(key="k1"))
    again = sandbox.charge(card_request(key="k1"))
    assert again == first
    assert len([k for k in store.rows if k.startswith("charge:")]) == 1
    assert sandbox.lookup_charge(NL, "k1") == first


def test_c5_same_key_with_different_amount_is_refused(sandbox):
    sandbox.charge(card_request(key="k1", amount=1000))
    with pytest.raises(ProcessorFailure) as err:
        sandbox.charge(card_request(key="k1", amount=2000))
    assert err.value.code == "idempotency_key_reused"
    assert "different parameters" in err.value.message


def test_idempotency_keys_are_per_account(sandbox):
    a = sandbox.charge(card_request(key="k1", account_id=NL))
    b = sandbox.charge(card_request(key="k1", account_id=US))
    assert a.processor_ref != b.processor_ref
    assert sandbox.lookup_charge(US, "unknown") is None


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"amount_minor": 0}, "invalid_amount"),
        ({"amount_minor": True}, "invalid_amount"),
        ({"amount_minor": 10.5}, "invalid_amount"),
        ({"currency": "eur"}, "invalid_currency"),
        ({"currency": "XYZ"}, "invalid_currency"),
        ({"card": None}, "invalid_request"),
        ({"payment_method_token": "pm_x"}, "invalid_request"),
        ({"method": "ach"}, "invalid_request"),
    ],
)
def test_malformed_requests_are_refused(sandbox, changes, code):
    from dataclasses import replace

    with pytest.raises(ProcessorFailure) as err:
        sandbox.charge(replace(card_request(), **changes))
    assert err.value.code == code


def test_naive_datetimes_are_a_programming_error(sandbox):
    with pytest.raises(ValueError):
        sandbox.charge(card_request(now=datetime(2026, 4, 22, 10)))


# --- injected faults (the test-only wrapper, tests/support/faults.py: M3) --------------------------------


def faulty(store, plan: FaultPlan) -> FaultyProcessor:
    return FaultyProcessor(SandboxProcessor(store, lambda _: "NL"), plan)


@pytest.mark.parametrize(
    ("kind", "error", "recorded"),
    [
        ("lose_response", ProcessorUnavailable, True),
        ("timeout", ProcessorUnavailable, False),
        ("error_after_success", ProcessorFailure, True),
    ],
)
def test_fault_hooks_then_lookup_charge(store, kind, error, recorded):
    plan = FaultPlan()
    plan.inject(kind)
    sandbox = faulty(store, plan)  # a new wrapper on the same plan: the script is the test's, not the instance's
    with pytest.raises(error):
        sandbox.charge(card_request(key="crash-1"))
    found = sandbox.lookup_charge(NL, "crash-1")
    assert (found is not None) is recorded
    retried = faulty(store, plan).charge(card_request(key="crash-1"))  # the fault was used up
    if recorded:
        assert retried == found
    assert len([k for k in store.rows if k.startswith("charge:")]) == 1


def test_fault_times_and_account_scope(store):
    plan = FaultPlan()
    sandbox = faulty(store, plan)
    plan.inject("timeout", times=2, account_id=US)
    sandbox.charge(card_request(account_id=NL))
    for _ in range(2):
        with pytest.raises(ProcessorUnavailable):
            sandbox.charge(card_request(account_id=US))
    sandbox.charge(card_request(account_id=US))


def test_a_refused_call_uses_up_no_fault(store):
    """A decline is the processor's answer, not a lost one: the injected fault waits for a call that succeeds."""
    plan = FaultPlan()
    sandbox = faulty(store, plan)
    plan.inject("lose_response")
    with pytest.raises(CardDeclined):
        sandbox.charge(card_request("4000000000000002"))
    with pytest.raises(ProcessorUnavailable):
        sandbox.charge(card_request())


def test_lost_refund_response_is_replayed_by_key(store):
    plan = FaultPlan()
    sandbox = faulty(store, plan)
    charge = sandbox.charge(card_request(amount=1000))
    plan.inject("lose_response", operation="refund")
    with pytest.raises(ProcessorUnavailable):
        sandbox.refund(NL, charge.processor_ref, 400, "EUR", "r1", NOW)
    refund = sandbox.refund(NL, charge.processor_ref, 400, "EUR", "r1", NOW)
    assert refund.amount_minor == 400
    assert types(sandbox.due_events(NL, NOW + MINUTE)) == ["refund.succeeded"]


# --- saved payment methods (S1, T5) --------------------------------------------------------------


def test_s1_saved_card_charges_and_can_be_made_to_decline(sandbox):
    first = sandbox.charge(card_request("5555555555554444", save_payment_method=True))
    token = first.payment_method_token
    assert token.startswith("pm_")
    renewal = sandbox.charge(token_request(token, now=NOW + timedelta(days=30)))
    assert (renewal.brand, renewal.last4, renewal.funding) == ("mastercard", "4444", "credit")
    assert renewal.payment_method_token is None
    sandbox.set_payment_method_behaviour(NL, token, "decline")
    with pytest.raises(CardDeclined) as err:
        sandbox.charge(token_request(token))
    assert err.value.code == "card_declined"
    sandbox.set_payment_method_behaviour(NL, token, "succeed")
    assert sandbox.charge(token_request(token)).status == "succeeded"


def test_saved_card_belongs_to_its_account(sandbox):
    token = sandbox.charge(card_request(save_payment_method=True)).payment_method_token
    with pytest.raises(ProcessorFailure) as err:
        sandbox.charge(token_request(token, account_id=US))
    assert err.value.code == "no_such_payment_method"
    with pytest.raises(ProcessorFailure):
        sandbox.set_payment_method_behaviour(US, token, "decline")


def test_saved_card_expires_on_the_test_clock(sandbox):
    token = sandbox.charge(card_request(save_payment_method=True)).payment_method_token  # expires 12/2030
    with pytest.raises(CardDeclined) as err:
        sandbox.charge(token_request(token, now=datetime(2031, 1, 1, tzinfo=UTC)))
    assert err.value.code == "expired_card"


def test_no_full_card_number_or_cvc_is_stored(sandbox, store):
    for number in CARDS:
        try:
            charge = sandbox.charge(card_request(number, save_payment_method=True))
            sandbox.charge(token_request(charge.payment_method_token))
            sandbox.refund(NL, charge.processor_ref, 100, "EUR", f"r-{number}", NOW)
        except (CardDeclined, ProcessorFailure):
            pass
    sandbox.charge(ach_request())
    dump = "\n".join(raw for raw, _, _ in store.rows.values())
    assert all(number not in dump for number in CARDS)
    assert "000123456789" not in dump
    assert '"cvc"' not in dump and '"number"' not in dump


# --- F: refunds ----------------------------------------------------------------------------------


def test_f3_card_refund_settles_one_minute_later(sandbox):
    charge = sandbox.charge(card_request(amount=1000))
    refund = sandbox.refund(NL, charge.processor_ref, 1000, "EUR", "r1", NOW)
    assert (refund.status, refund.amount_minor, refund.currency) == ("pending", 1000, "EUR")
    assert refund.processor_ref.startswith("re_") and refund.charge_ref == charge.processor_ref
    assert sandbox.due_events(NL, NOW + MINUTE - SECOND) == []
    [event] = sandbox.due_events(NL, NOW + MINUTE)
    assert (event.type, event.object_ref) == ("refund.succeeded", refund.processor_ref)
    assert event.data == {"refund_ref": refund.processor_ref, "charge_ref": charge.processor_ref,
                          "amount_minor": 1000, "currency": "EUR"}  # fmt: skip


def test_f6_refunds_never_exceed_the_charge(sandbox):
    charge = sandbox.charge(card_request(amount=1000))
    sandbox.refund(NL, charge.processor_ref, 600, "EUR", "r1", NOW)
    with pytest.raises(ProcessorFailure) as err:
        sandbox.refund(NL, charge.processor_ref, 401, "EUR", "r2", NOW)
    assert err.value.code == "amount_too_large"
    sandbox.refund(NL, charge.processor_ref, 400, "EUR", "r3", NOW)
    with pytest.raises(ProcessorFailure):
        sandbox.refund(NL, charge.processor_ref, 1, "EUR", "r4", NOW)


def test_f_refund_is_idempotent_by_key(sandbox):
    charge = sandbox.charge(card_request(amount=1000))
    first = sandbox.refund(NL, charge.processor_ref, 500, "EUR", "r1", NOW)
    assert sandbox.refund(NL, charge.processor_ref, 500, "EUR", "r1", NOW) == first
    assert len(sandbox.due_events(NL, NOW + MINUTE)) == 1
    with pytest.raises(ProcessorFailure) as err:
        sandbox.refund(NL, charge.processor_ref, 300, "EUR", "r1", NOW)
    assert err.value.code == "idempotency_key_reused"


@pytest.mark.parametrize(
    ("account_id", "ref", "amount", "currency", "code"),
    [
        (NL, None, 100, "USD", "currency_mismatch"),
        (NL, None, 0, "EUR", "invalid_amount"),
        (NL, "ch_unknown", 100, "EUR", "no_such_charge"),
        (US, None, 100, "EUR", "no_such_charge"),  # another account's charge looks unknown
    ],
)
def test_f_bad_refunds_are_refused(sandbox, account_id, ref, amount, currency, code):
    charge = sandbox.charge(card_request(amount=1000))
    with pytest.raises(ProcessorFailure) as err:
        sandbox.refund(account_id, ref or charge.processor_ref, amount, currency, "r1", NOW)
    assert err.value.code == code


def test_t5_refund_of_5126_fails_and_frees_the_amount(sandbox):
    charge = sandbox.charge(card_request("4000000000005126", amount=1000))
    refund = sandbox.refund(NL, charge.processor_ref, 1000, "EUR", "r1", NOW)
    with pytest.raises(ProcessorFailure):  # still pending: the amount is held
        sandbox.refund(NL, charge.processor_ref, 1, "EUR", "r2", NOW)
    [event] = sandbox.due_events(NL, NOW + MINUTE)
    assert (event.type, event.object_ref) == ("refund.failed", refund.processor_ref)
    assert event.data["code"] == "expired_or_canceled_card"
    assert event.data["message"]
    assert sandbox.refund(NL, charge.processor_ref, 1000, "EUR", "r3", NOW + MINUTE).amount_minor == 1000


def test_f3_ach_refund_only_after_settlement_and_takes_five_business_days(sandbox):
    charge = sandbox.charge(ach_request(amount=10000))
    with pytest.raises(ProcessorFailure) as err:
        sandbox.refund(NL, charge.processor_ref, 10000, "USD", "r1", NOW)
    assert err.value.code == "charge_not_settled"
    for event in sandbox.due_events(NL, SETTLES_NL):
        sandbox.acknowledge_event(event.id)
    sandbox.refund(NL, charge.processor_ref, 10000, "USD", "r2", SETTLES_NL)
    refunded = datetime(2026, 5, 6, 10, 0, tzinfo=UTC)  # Wed 29 Apr + 5 business days
    assert sandbox.due_events(NL, refunded - SECOND) == []
    assert types(sandbox.due_events(NL, refunded)) == ["refund.succeeded"]


def test_f_failed_ach_cannot_be_refunded(sandbox):
    charge = sandbox.charge(ach_request("000111111113"))
    with pytest.raises(ProcessorFailure) as err:
        sandbox.refund(NL, charge.processor_ref, 100, "USD", "r1", SETTLES_NL)
    assert err.value.code == "charge_failed"


def test_f4_ach_refund_window_is_180_days(sandbox):
    charge = sandbox.charge(ach_request())
    sandbox.refund(NL, charge.processor_ref, 100, "USD", "r1", NOW + timedelta(days=180))
    with pytest.raises(ProcessorFailure) as err:
        sandbox.refund(NL, charge.processor_ref, 100, "USD", "r2", NOW + timedelta(days=181))
    assert err.value.code == "charge_too_old"


# --- D: disputes ---------------------------------------------------------------------------------

DUE_BY = NOW + timedelta(days=7)


def open_dispute(sandbox, number="4000000000000259", amount=2500):
    charge = sandbox.charge(card_request(number, amount=amount))
    [created] = sandbox.due_events(NL, NOW)
    sandbox.acknowledge_event(created.id)
    return charge, created


@pytest.mark.parametrize(
    ("number", "reason", "is_inquiry"),
    [
        ("4000000000000259", "fraudulent", False),
        ("4000000000002685", "product_not_received", False),
        ("4000000000001976", "general", True),
    ],
)
def test_t5_dispute_cards_open_a_dispute(sandbox, number, reason, is_inquiry):
    charge = sandbox.charge(card_request(number, amount=2500))
    assert charge.status == "succeeded"
    [event] = sandbox.due_events(NL, NOW)
    assert (event.type, event.occurred_at) == ("dispute.created", NOW)
    assert event.object_ref == event.data["dispute_ref"] and event.object_ref.startswith("dp_")
    assert event.data == {
        "dispute_ref": event.object_ref,
        "charge_ref": charge.processor_ref,
        "amount_minor": 2500,
        "currency": "EUR",
        "reason": reason,
        "is_inquiry": is_inquiry,
        "evidence_due_by": DUE_BY.isoformat(),
    }


def test_d_deadline_passes_and_the_dispute_is_lost(sandbox):
    _, created = open_dispute(sandbox)
    assert sandbox.due_events(NL, DUE_BY - SECOND) == []
    [lost] = sandbox.due_events(NL, DUE_BY)
    assert (lost.type, lost.object_ref, lost.data["amount_minor"]) == (
        "dispute.lost",
        created.object_ref,
        2500,
    )
    with pytest.raises(ProcessorFailure) as err:
        sandbox.submit_dispute_evidence(NL, created.object_ref, DisputeEvidence(text="winning_evidence"), DUE_BY)
    assert err.value.code == "dispute_closed"


@pytest.mark.parametrize(
    ("text", "outcome", "delay"),
    [
        ("Receipt attached. winning_evidence", "dispute.won", MINUTE),
        ("losing_evidence", "dispute.lost", MINUTE),
        ("Tracking number 1Z999 shows delivery.", "dispute.won", timedelta(days=3)),
    ],
)
def test_d4_counter_dispute_with_evidence(sandbox, text, outcome, delay):
    _, created = open_dispute(sandbox, "4000000000002685")
    answered = sandbox.submit_dispute_evidence(NL, created.object_ref, DisputeEvidence(text=text), NOW + SECOND)
    assert (answered.status, answered.reason, answered.evidence_due_by) == (
        "under_review",
        "product_not_received",
        DUE_BY,
    )
    assert sandbox.due_events(NL, NOW + SECOND + delay - SECOND) == []
    assert types(sandbox.due_events(NL, NOW + SECOND + delay)) == [outcome]
    # The deadline's "lost" event was cancelled.
    assert types(sandbox.due_events(NL, NOW + timedelta(days=30))) == [outcome]


def test_d4_evidence_only_once_and_not_empty(sandbox):
    _, created = open_dispute(sandbox)
    with pytest.raises(ProcessorFailure) as err:
        sandbox.submit_dispute_evidence(NL, created.object_ref, DisputeEvidence(text="   "), NOW)
    assert err.value.code == "evidence_required"
    sandbox.submit_dispute_evidence(NL, created.object_ref, DisputeEvidence(text="winning_evidence"), NOW)
    with pytest.raises(ProcessorFailure) as err:
        sandbox.submit_dispute_evidence(NL, created.object_ref, DisputeEvidence(text="winning_evidence"), NOW)
    assert err.value.code == "dispute_already_answered"
    with pytest.raises(ProcessorFailure):
        sandbox.accept_dispute(NL, created.object_ref, NOW)


def test_d5_accept_dispute_is_lost_immediately(sandbox):
    _, created = open_dispute(sandbox)
    result = sandbox.accept_dispute(NL, created.object_ref, NOW)
    assert result.status == "lost"
    assert types(sandbox.due_events(NL, NOW)) == ["dispute.lost"]
    assert types(sandbox.due_events(NL, NOW + timedelta(days=30))) == ["dispute.lost"]  # no deadline event
    with pytest.raises(ProcessorFailure) as err:
        sandbox.accept_dispute(NL, created.object_ref, NOW)
    assert err.value.code == "dispute_closed"


def test_d_events_for_the_same_instant_come_in_creation_order(sandbox):
    charge = sandbox.charge(card_request("4000000000000259"))
    [created] = sandbox.due_events(NL, NOW)
    sandbox.accept_dispute(NL, created.object_ref, NOW)
    events = sandbox.due_events(NL, NOW)
    assert types(events) == ["dispute.created", "dispute.lost"]
    assert all(e.data["charge_ref"] == charge.processor_ref for e in events)
    assert len({e.id for e in events}) == 2


def test_d_dispute_of_another_account_is_unknown(sandbox):
    _, created = open_dispute(sandbox)
    with pytest.raises(ProcessorFailure) as err:
        sandbox.accept_dispute(US, created.object_ref, NOW)
    assert err.value.code == "no_such_dispute"


def test_d_disputed_charge_cannot_be_refunded_but_an_inquiry_can(sandbox):
    charge, _ = open_dispute(sandbox, "4000000000000259")
    with pytest.raises(ProcessorFailure) as err:
        sandbox.refund(NL, charge.processor_ref, 100, "EUR", "r1", NOW)
    assert err.value.code == "charge_disputed"
    inquiry = sandbox.charge(card_request("4000000000001976"))
    assert sandbox.refund(NL, inquiry.processor_ref, 100, "EUR", "r2", NOW).amount_minor == 100


def test_s1_saved_dispute_card_keeps_its_behaviour(sandbox):
    token = sandbox.charge(card_request("4000000000000259", save_payment_method=True)).payment_method_token
    sandbox.charge(token_request(token))
    assert types(sandbox.due_events(NL, NOW)) == ["dispute.created", "dispute.created"]
