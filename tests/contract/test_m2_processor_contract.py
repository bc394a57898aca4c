"""M2: what every processor promises (`Processor` in site/processors/base.py), tested the same way on each.

Only the Protocol is used here, with the documented test cards and bank accounts (the sandbox's and Stripe's
test numbers are the same; each processor entry in conftest.py says how a number reaches it), so a processor passes by behaving as the Protocol says, not as the sandbox does
inside. Amounts are minor units throughout; "to the cent" means every figure is an exact integer sum.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from kassa.processors.base import (
    BankDetails,
    CardDeclined,
    CardDetails,
    ChargeRequest,
    ChargeResult,
    DisputeEvidence,
    DisputeResult,
    PaymentDetailsInvalid,
    PayoutResult,
    ProcessorError,
    ProcessorFailure,
    RefundResult,
    SavedCard,
)
from tests.contract.conftest import payment_of, processor_under_test

NOW = datetime(2027, 3, 3, 12, 0, tzinfo=UTC)  # a Wednesday with no US holiday near it
SHOP, OTHER = 101, 202  # two merchant accounts: one never sees the other's charges, refunds, disputes or payouts

GOOD = "4242424242424242"
DECLINED = "4000000000000002"
DISPUTED = "4000000000000259"  # succeeds, then the buyer's bank opens a fraud dispute
INQUIRY = "4000000000001976"  # succeeds, then the bank asks questions (an inquiry withdraws nothing)
LUHN_INVALID = "4242424242424241"
BANK_OK = "000123456789"

_keys = count()


def key(label: str = "key") -> str:
    return f"contract-{label}-{next(_keys)}"


def card(number: str = GOOD) -> CardDetails:
    return CardDetails(number, 12, 2030, "123", "Ada Lovelace", "10115")


def card_charge(number: str = GOOD, *, account_id: int = SHOP, amount: int = 2500, currency: str = "USD",
                idempotency_key: str | None = None, **kw) -> ChargeRequest:
    """A card charge; the processor under test says how a test card number reaches it (`payment_of`)."""
    return ChargeRequest(account_id=account_id, idempotency_key=idempotency_key or key("charge"),
                         amount_minor=amount, currency=currency, method="card", now=NOW,
                         **payment_of.get()(number), **kw)


def save(number: str = GOOD, *, account_id: int = SHOP) -> SavedCard:
    """A card kept without a charge (a subscriber's card update): the processor under test says how a test card
    number reaches it when it is saved (`payment_of(..., setup=True)`)."""
    return processor_under_test.get().save_card(account_id, **payment_of.get()(number, setup=True),
                                                idempotency_key=key("save"), now=NOW)


def token_charge(token: str, *, account_id: int = SHOP, amount: int = 1500) -> ChargeRequest:
    return ChargeRequest(account_id=account_id, idempotency_key=key("renewal"), amount_minor=amount, currency="USD",
                         method="card", payment_method_token=token, now=NOW)


def same_charge(a: ChargeResult, b: ChargeResult) -> bool:
    """Two charges of the same request: equal in everything but their own reference, token and moment."""
    own = {"processor_ref", "payment_method_token", "created_at"}
    return all(getattr(a, f.name) == getattr(b, f.name) for f in fields(ChargeResult) if f.name not in own)


# -- charges -----------------------------------------------------------------------------------------------------


def test_m2_a_test_card_is_charged_and_the_money_adds_up_to_the_cent(processor):
    result = processor.charge(card_charge(amount=2500))
    assert isinstance(result, ChargeResult)
    assert (result.status, result.method, result.amount_minor, result.currency) == ("succeeded", "card", 2500, "USD")
    assert (result.brand, result.last4, result.exp_month, result.exp_year) == ("visa", "4242", 12, 2030)
    assert result.fee_currency == "USD" and 0 < result.fee_minor < result.amount_minor
    assert result.settlement_currency == "USD" and result.amount_settlement_minor == 2500
    assert result.net_settlement_minor == result.amount_settlement_minor - result.fee_settlement_minor


@pytest.mark.parametrize(("currency", "amount"), [("EUR", 1999), ("JPY", 1999), ("KWD", 1999)])
def test_m2_a_charge_in_another_currency_settles_in_the_account_currency_to_the_minor_unit(processor, currency, amount):
    """Two-, zero- and three-decimal currencies, settled in USD: every figure an integer, net = gross - fee."""
    result = processor.charge(card_charge(amount=amount, currency=currency, settlement_currency="USD"))
    assert (result.amount_minor, result.currency, result.fee_currency) == (amount, currency, currency)
    assert result.settlement_currency == "USD" and result.exchange_rate > 0
    for figure in (result.fee_minor, result.amount_settlement_minor, result.fee_settlement_minor,
                   result.net_settlement_minor):
        assert isinstance(figure, int) and not isinstance(figure, bool)
    assert result.net_settlement_minor == result.amount_settlement_minor - result.fee_settlement_minor
    assert processor.can_settle(currency, "USD")


def test_m2_can_settle_takes_the_account_currency_and_refuses_what_is_no_currency(processor):
    assert processor.can_settle("USD", "USD")
    assert not processor.can_settle("ZZZ", "USD")
    assert not processor.can_settle("usd", "USD")


def test_m2_a_declined_test_card_raises_card_declined_and_nothing_is_charged(processor):
    request = card_charge(DECLINED)
    with pytest.raises(CardDeclined) as declined:
        processor.charge(request)
    assert declined.value.code and declined.value.message
    assert processor.lookup_charge(SHOP, request.idempotency_key) is None


def test_m2_malformed_card_details_raise_payment_details_invalid_naming_the_field(processor):
    request = card_charge(LUHN_INVALID)
    with pytest.raises(PaymentDetailsInvalid) as invalid:
        processor.charge(request)
    assert invalid.value.field == "number"
    assert processor.lookup_charge(SHOP, request.idempotency_key) is None
    with pytest.raises(PaymentDetailsInvalid) as not_saved:
        save(LUHN_INVALID)
    assert not_saved.value.field == "number"


def test_m2_a_bank_debit_answers_processing_and_settles_by_an_event(processor):
    request = ChargeRequest(account_id=SHOP, idempotency_key=key("ach"), amount_minor=10000, currency="USD",
                            method="ach", bank=BankDetails("110000000", BANK_OK, "Ada Lovelace"), now=NOW)
    result = processor.charge(request)
    assert (result.status, result.method, result.bank_last4) == ("processing", "ach", "6789")
    later = processor.due_events(SHOP, NOW + timedelta(days=14))
    [settled] = [event for event in later if event.object_ref == result.processor_ref]
    assert settled.type == "charge.succeeded"
    assert (settled.data["charge_ref"], settled.data["amount_minor"], settled.data["currency"]) == (
        result.processor_ref, 10000, "USD")


def test_m2_the_same_key_charges_once_and_answers_the_same(processor):
    """Idempotency: the same request again is the same charge (no second one); lookup_charge finds it; the
    same key with a different request is refused; an unknown key, or another account's, finds nothing."""
    request = card_charge(amount=4200)
    first = processor.charge(request)
    again = processor.charge(request)
    assert again.processor_ref == first.processor_ref and same_charge(again, first)
    assert processor.lookup_charge(SHOP, request.idempotency_key) == first
    with pytest.raises(ProcessorFailure) as reused:
        processor.charge(card_charge(amount=4300, idempotency_key=request.idempotency_key))
    assert reused.value.code == "idempotency_key_reused"
    assert processor.lookup_charge(SHOP, key("never-sent")) is None
    assert processor.lookup_charge(OTHER, request.idempotency_key) is None


def test_m2_a_refused_request_is_a_processor_failure(processor):
    with pytest.raises(ProcessorFailure) as refused:
        processor.charge(card_charge(amount=0))
    assert refused.value.code == "invalid_amount"


def test_m2_charge_many_answers_each_request_as_charge_would_alone(processor):
    """A batch: in each place the result or the error `charge` gives for that request alone; sending the batch
    again charges nothing twice."""
    token = save().token
    batch = [card_charge(amount=1000), card_charge(DECLINED), token_charge(token, amount=1500),
             card_charge(amount=0), card_charge(amount=999, currency="EUR", settlement_currency="USD")]
    answers = processor.charge_many(batch)
    assert len(answers) == len(batch)

    alone_token = save(account_id=OTHER).token
    for request, answer in zip(batch, answers, strict=True):
        alone_request = ChargeRequest(**{f.name: getattr(request, f.name) for f in fields(ChargeRequest)} | {
            "account_id": OTHER, "idempotency_key": key("alone"),
            # The saved card is the other account's own; a card typed at a checkout stays what it was.
            "payment_method_token": alone_token if request.payment_method_token == token
            else request.payment_method_token})
        try:
            alone: ChargeResult | ProcessorError = processor.charge(alone_request)
        except ProcessorError as exc:
            alone = exc
        assert type(answer) is type(alone), (request, answer, alone)
        if isinstance(answer, ChargeResult):
            assert same_charge(answer, alone)
            assert processor.lookup_charge(SHOP, request.idempotency_key) == answer
        else:
            assert answer.code == alone.code
            assert processor.lookup_charge(SHOP, request.idempotency_key) is None
    assert [type(a) for a in answers] == [ChargeResult, CardDeclined, ChargeResult, ProcessorFailure, ChargeResult]

    again = processor.charge_many(batch)
    made = [(i, a.processor_ref) for i, a in enumerate(answers) if isinstance(a, ChargeResult)]
    assert [(i, again[i].processor_ref) for i, _ref in made] == made


# -- saved payment methods ------------------------------------------------------------------------------------------


def test_m2_a_saved_card_is_charged_later_by_its_token(processor):
    saved = save()
    assert isinstance(saved, SavedCard) and saved.token
    assert (saved.brand, saved.last4, saved.exp_month, saved.exp_year) == ("visa", "4242", 12, 2030)
    result = processor.charge(token_charge(saved.token, amount=1500))
    assert (result.status, result.amount_minor, result.last4, result.brand) == ("succeeded", 1500, "4242", "visa")


def test_m2_a_card_saved_by_its_first_charge_is_charged_again_by_its_token(processor):
    first = processor.charge(card_charge(save_payment_method=True))
    assert first.payment_method_token
    renewal = processor.charge(token_charge(first.payment_method_token))
    assert (renewal.status, renewal.last4) == ("succeeded", "4242")
    assert renewal.processor_ref != first.processor_ref


def test_m2_a_card_that_cannot_be_saved_raises_and_another_accounts_token_is_unknown(processor):
    with pytest.raises(CardDeclined):
        save(DECLINED)
    theirs = save(account_id=OTHER)
    with pytest.raises(ProcessorFailure):
        processor.charge(token_charge(theirs.token))


def test_m2_q9_saving_a_card_for_a_free_trial_charges_nothing_and_the_trials_end_charges_it(processor):
    """Q9: a checkout with nothing due saves the card (save_card); no charge exists under its key; the first
    period is charged off-session by the token at the trial's end, once per key."""
    trial_key = key("trial")
    saved = processor.save_card(SHOP, **payment_of.get()(GOOD, setup=True), idempotency_key=trial_key, now=NOW)
    assert processor.lookup_charge(SHOP, trial_key) is None
    first = token_charge(saved.token, amount=1000)
    result = processor.charge(first)
    assert (result.status, result.amount_minor, result.last4) == ("succeeded", 1000, "4242")
    assert processor.charge(first).processor_ref == result.processor_ref  # the same key charges once


# -- refunds -----------------------------------------------------------------------------------------------------------


def test_m2_a_full_refund_is_pending_found_by_its_key_and_made_once(processor):
    charge = processor.charge(card_charge(amount=5000))
    refund_key = key("refund")
    refund = processor.refund(SHOP, charge.processor_ref, 5000, "USD", refund_key, NOW)
    assert isinstance(refund, RefundResult)
    assert (refund.status, refund.charge_ref, refund.amount_minor, refund.currency) == (
        "pending", charge.processor_ref, 5000, "USD")
    assert processor.refund(SHOP, charge.processor_ref, 5000, "USD", refund_key, NOW).processor_ref == \
        refund.processor_ref
    assert processor.lookup_refund(SHOP, refund_key) == refund
    assert processor.lookup_refund(SHOP, key("never-sent")) is None
    assert processor.lookup_refund(OTHER, refund_key) is None
    [settled] = [event for event in processor.due_events(SHOP, NOW + timedelta(days=14))
                 if event.object_ref == refund.processor_ref]
    assert settled.type == "refund.succeeded" and settled.data["amount_minor"] == 5000


def test_m2_partial_refunds_add_up_to_the_cent_and_no_further(processor):
    charge = processor.charge(card_charge(amount=1000))
    for amount in (333, 333, 334):
        assert processor.refund(SHOP, charge.processor_ref, amount, "USD", key("part"), NOW).amount_minor == amount
    refused_key = key("one-cent-more")
    with pytest.raises(ProcessorFailure) as refused:
        processor.refund(SHOP, charge.processor_ref, 1, "USD", refused_key, NOW)
    assert refused.value.code == "amount_too_large"
    assert processor.lookup_refund(SHOP, refused_key) is None
    with pytest.raises(ProcessorFailure):  # the same key is refused again, never made later
        processor.refund(SHOP, charge.processor_ref, 1, "USD", refused_key, NOW)


def test_m2_an_over_refund_a_wrong_currency_and_an_unknown_charge_are_refused(processor):
    charge = processor.charge(card_charge(amount=1000))
    with pytest.raises(ProcessorFailure) as over:
        processor.refund(SHOP, charge.processor_ref, 1001, "USD", key("over"), NOW)
    assert over.value.code == "amount_too_large"
    with pytest.raises(ProcessorFailure) as currency:
        processor.refund(SHOP, charge.processor_ref, 100, "EUR", key("eur"), NOW)
    assert currency.value.code == "currency_mismatch"
    with pytest.raises(ProcessorFailure) as unknown:
        processor.refund(OTHER, charge.processor_ref, 100, "USD", key("theirs"), NOW)
    assert unknown.value.code == "no_such_charge"
    # None of these used up any of the charge: the whole amount can still be refunded.
    assert processor.refund(SHOP, charge.processor_ref, 1000, "USD", key("all"), NOW).amount_minor == 1000


# -- disputes and events -----------------------------------------------------------------------------------------------


def _dispute_of(processor, number: str = DISPUTED):
    charge = processor.charge(card_charge(number, amount=3000))
    [opened] = [event for event in processor.due_events(SHOP, NOW) if event.data.get("charge_ref") ==
                charge.processor_ref]
    return charge, opened


def test_m2_a_dispute_arrives_as_an_event_and_is_countered_once(processor):
    charge, opened = _dispute_of(processor)
    assert opened.type == "dispute.created" and opened.account_id == SHOP
    data = opened.data
    assert (data["amount_minor"], data["currency"], data["is_inquiry"]) == (3000, "USD", False)
    assert data["reason"] and datetime.fromisoformat(data["evidence_due_by"]) > NOW
    ref = data["dispute_ref"]
    found = processor.lookup_dispute(SHOP, ref, NOW)
    assert isinstance(found, DisputeResult)
    assert (found.status, found.charge_ref, found.amount_minor) == ("needs_response", charge.processor_ref, 3000)
    with pytest.raises(ProcessorFailure) as disputed:
        processor.refund(SHOP, charge.processor_ref, 100, "USD", key("disputed"), NOW)
    assert disputed.value.code == "charge_disputed"

    with pytest.raises(ProcessorFailure) as empty:
        processor.submit_dispute_evidence(SHOP, ref, DisputeEvidence(text="  "), NOW)
    assert empty.value.code == "evidence_required"
    answered = processor.submit_dispute_evidence(SHOP, ref, DisputeEvidence(text="winning_evidence: signed delivery receipt"), NOW)
    assert (answered.dispute_ref, answered.status) == (ref, "under_review")
    assert processor.lookup_dispute(SHOP, ref, NOW).status == "under_review"
    with pytest.raises(ProcessorFailure) as twice:
        processor.submit_dispute_evidence(SHOP, ref, DisputeEvidence(text="winning_evidence again"), NOW)
    assert twice.value.code == "dispute_already_answered"
    with pytest.raises(ProcessorFailure):
        processor.accept_dispute(SHOP, ref, NOW)
    decided = [event for event in processor.due_events(SHOP, NOW + timedelta(days=14)) if event.object_ref == ref]
    assert [event.type for event in decided] == ["dispute.created", "dispute.won"]


def test_m2_an_accepted_dispute_closes_as_lost(processor):
    _charge, opened = _dispute_of(processor)
    ref = opened.data["dispute_ref"]
    assert processor.accept_dispute(SHOP, ref, NOW).status == "lost"
    assert processor.lookup_dispute(SHOP, ref, NOW).status == "lost"
    with pytest.raises(ProcessorFailure) as closed:
        processor.submit_dispute_evidence(SHOP, ref, DisputeEvidence(text="winning_evidence"), NOW)
    assert closed.value.code == "dispute_closed"
    assert "dispute.lost" in [event.type for event in processor.due_events(SHOP, NOW) if event.object_ref == ref]


def test_m2_an_unknown_or_another_accounts_dispute_is_not_found(processor):
    _charge, opened = _dispute_of(processor, INQUIRY)
    assert opened.data["is_inquiry"] is True
    ref = opened.data["dispute_ref"]
    assert processor.lookup_dispute(OTHER, ref, NOW) is None
    assert processor.lookup_dispute(SHOP, "dp_unknown", NOW) is None
    with pytest.raises(ProcessorFailure) as theirs:
        processor.accept_dispute(OTHER, ref, NOW)
    assert theirs.value.code == "no_such_dispute"


def test_m2_due_events_come_oldest_first_until_acknowledged(processor):
    """Events are the account's own, in the order they happened, offered until acknowledged; acknowledging
    again changes nothing."""
    processor.charge(card_charge(DISPUTED))
    charge = processor.charge(card_charge(amount=800))
    processor.refund(SHOP, charge.processor_ref, 800, "USD", key("refund"), NOW)
    events = processor.due_events(SHOP, NOW + timedelta(days=1))
    assert [event.type for event in events] == ["dispute.created", "refund.succeeded"]
    assert [event.occurred_at for event in events] == sorted(event.occurred_at for event in events)
    assert len({event.id for event in events}) == 2
    assert processor.due_events(OTHER, NOW + timedelta(days=1)) == []

    processor.acknowledge_event(events[0].id)
    processor.acknowledge_event(events[0].id)
    assert [event.id for event in processor.due_events(SHOP, NOW + timedelta(days=1))] == [events[1].id]


# -- payouts -----------------------------------------------------------------------------------------------------------


def test_m2_a_payout_is_sent_once_per_key_and_arrives_to_the_cent(processor):
    charge = processor.charge(card_charge(amount=10000))
    refund = processor.refund(SHOP, charge.processor_ref, 1234, "USD", key("refund"), NOW)
    amount = charge.net_settlement_minor - refund.amount_minor  # what the day left the account, to the cent
    payout_key = key("payout")
    sent = processor.send_payout(SHOP, amount, "USD", payout_key, NOW)
    assert isinstance(sent, PayoutResult)
    assert (sent.amount_minor, sent.currency, sent.status) == (amount, "USD", "in_transit")
    assert processor.send_payout(SHOP, amount, "USD", payout_key, NOW).processor_ref == sent.processor_ref
    with pytest.raises(ProcessorFailure) as reused:
        processor.send_payout(SHOP, amount + 1, "USD", payout_key, NOW)
    assert reused.value.code == "idempotency_key_reused"
    assert processor.lookup_payout(SHOP, payout_key, NOW).processor_ref == sent.processor_ref
    arrived = processor.lookup_payout(SHOP, payout_key, NOW + timedelta(days=7))
    assert (arrived.processor_ref, arrived.amount_minor, arrived.status) == (sent.processor_ref, amount, "paid")
    assert processor.lookup_payout(SHOP, key("never-sent"), NOW) is None
    assert processor.lookup_payout(OTHER, payout_key, NOW) is None


def test_m2_a_negative_payout_is_a_debit_of_the_bank_account(processor):
    """O3: a day whose refunds exceed its income debits the bank account; the sign is kept exactly."""
    debit_key = key("debit")
    debit = processor.send_payout(SHOP, -10000, "USD", debit_key, NOW)
    assert (debit.amount_minor, debit.currency) == (-10000, "USD")
    assert processor.lookup_payout(SHOP, debit_key, NOW + timedelta(days=7)).amount_minor == -10000
