"""K13 (with K8, K9, K11): the exact requests StripeProcessor sends, through a recording fixture transport
answering Stripe-shaped JSON, and the bounds of what the Stripe contract run leaves out."""

from __future__ import annotations

import ast
import inspect
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import stripe

from kassa.processors.base import (
    CardDeclined,
    CardDetails,
    ChargeRequest,
    ProcessorFailure,
    ProcessorUnavailable,
)
from kassa.processors.stripe import StripeProcessor
from tests.contract import test_m2_processor_contract as contract
from tests.contract.conftest import STRIPE_NOT_YET
from tests.support.stripe_doubles import FixtureTransport, client_for

NOW = datetime(2027, 3, 3, 12, 0, tzinfo=UTC)
SHOP = 101
CREATED = 1_804_075_200
EMPTY_LIST = {"object": "list", "data": [], "has_more": False, "url": "/v1/x"}
CARD_PM = {"id": "pm_1Visa", "object": "payment_method", "type": "card", "customer": None, "metadata": {},
           "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030, "funding": "credit"}}
TXN = {"id": "txn_1", "object": "balance_transaction", "amount": 2500, "currency": "usd", "fee": 103,
       "net": 2397, "exchange_rate": None, "type": "charge"}
CHARGE = {"id": "ch_1", "object": "charge", "amount": 2500, "amount_refunded": 0, "currency": "usd",
          "disputed": False, "status": "succeeded", "balance_transaction": TXN}
INTENT = {"id": "pi_1", "object": "payment_intent", "amount": 2500, "currency": "usd", "status": "succeeded",
          "created": CREATED, "payment_method": "pm_1Visa", "latest_charge": CHARGE,
          "metadata": {"kassa_account": str(SHOP), "kassa_key": "order-7", "kassa_request": "2500|USD|pm_1Visa|0"}}
REFUND = {"id": "re_1", "object": "refund", "amount": 1000, "currency": "usd", "status": "succeeded",
          "created": CREATED, "payment_intent": "pi_1",
          "metadata": {"kassa_account": str(SHOP), "kassa_key": "refund-7", "kassa_request": "pi_1|1000|USD"}}

# The contract tests Stripe was left out of when this list was made; STRIPE_NOT_YET may only lose entries.
STRIPE_NOT_YET_AT_K13 = frozenset({
    "test_m2_a_test_card_is_charged_and_the_money_adds_up_to_the_cent",
    "test_m2_a_charge_in_another_currency_settles_in_the_account_currency_to_the_minor_unit",
    "test_m2_malformed_card_details_raise_payment_details_invalid_naming_the_field",
    "test_m2_a_bank_debit_answers_processing_and_settles_by_an_event",
    "test_m2_charge_many_answers_each_request_as_charge_would_alone",
    "test_m2_a_saved_card_is_charged_later_by_its_token",
    "test_m2_a_card_saved_by_its_first_charge_is_charged_again_by_its_token",
    "test_m2_a_card_that_cannot_be_saved_raises_and_another_accounts_token_is_unknown",
    "test_m2_a_full_refund_is_pending_found_by_its_key_and_made_once",
    "test_m2_a_dispute_arrives_as_an_event_and_is_countered_once",
    "test_m2_an_accepted_dispute_closes_as_lost",
    "test_m2_an_unknown_or_another_accounts_dispute_is_not_found",
    "test_m2_due_events_come_oldest_first_until_acknowledged",
    "test_m2_a_payout_is_sent_once_per_key_and_arrives_to_the_cent",
    "test_m2_a_negative_payout_is_a_debit_of_the_bank_account",
})


def processor_on(answers: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]]) -> tuple[StripeProcessor,
                                                                                           FixtureTransport]:
    transport = FixtureTransport(answers)
    return StripeProcessor(client_for("http://stripe.fixture", transport), SHOP), transport


def charge_request(**kw: Any) -> ChargeRequest:
    return ChargeRequest(**{"account_id": SHOP, "idempotency_key": "order-7", "amount_minor": 2500,
                            "currency": "USD", "method": "card", "payment_method_token": "pm_1Visa", "now": NOW,
                            **kw})


def test_k13_k11_a_charge_is_one_confirmed_payment_intent_under_kassas_key_with_stripes_fees():
    processor, transport = processor_on({
        ("GET", "/v1/payment_intents"): [(200, EMPTY_LIST)],
        ("GET", "/v1/payment_methods/pm_1Visa"): [(200, CARD_PM)],
        ("POST", "/v1/payment_intents"): [(200, INTENT)],
    })
    result = processor.charge(charge_request())

    assert [(sent.method, sent.path) for sent in transport.sent] == [
        ("GET", "/v1/payment_intents"), ("GET", "/v1/payment_methods/pm_1Visa"), ("POST", "/v1/payment_intents")]
    assert transport.sent[0].params == [("limit", "100")]
    create = transport.sent[-1]
    assert create.headers["Idempotency-Key"] == "order-7"
    assert create.params == [
        ("amount", "2500"), ("currency", "usd"), ("payment_method", "pm_1Visa"), ("confirm", "true"),
        ("metadata[kassa_account]", str(SHOP)), ("metadata[kassa_key]", "order-7"),
        ("metadata[kassa_request]", "2500|USD|pm_1Visa|0"), ("expand[0]", "latest_charge.balance_transaction")]
    assert (result.processor_ref, result.status, result.amount_minor, result.currency) == ("pi_1", "succeeded",
                                                                                           2500, "USD")
    assert (result.brand, result.last4, result.funding) == ("visa", "4242", "credit")
    # Fees are Stripe's, from the balance transaction, not Kassa's fee table (K11).
    assert (result.fee_minor, result.fee_settlement_minor, result.net_settlement_minor) == (103, 103, 2397)
    assert result.created_at == datetime.fromtimestamp(CREATED, UTC)


def test_k13_k9_a_refund_is_one_refund_of_the_payment_intent_under_kassas_key():
    processor, transport = processor_on({
        ("GET", "/v1/refunds"): [(200, EMPTY_LIST)],
        ("GET", "/v1/payment_intents/pi_1"): [(200, INTENT)],
        ("POST", "/v1/refunds"): [(200, REFUND)],
    })
    refund = processor.refund(SHOP, "pi_1", 1000, "USD", "refund-7", NOW)

    assert [(sent.method, sent.path) for sent in transport.sent] == [
        ("GET", "/v1/refunds"), ("GET", "/v1/payment_intents/pi_1"), ("POST", "/v1/refunds")]
    assert transport.sent[1].params == [("expand[0]", "latest_charge")]
    create = transport.sent[-1]
    assert create.headers["Idempotency-Key"] == "refund-7"
    assert create.params == [
        ("payment_intent", "pi_1"), ("amount", "1000"), ("metadata[kassa_account]", str(SHOP)),
        ("metadata[kassa_key]", "refund-7"), ("metadata[kassa_request]", "pi_1|1000|USD")]
    assert (refund.processor_ref, refund.charge_ref, refund.amount_minor, refund.status) == ("re_1", "pi_1", 1000,
                                                                                            "pending")


def test_k13_k9_a_refund_already_made_under_the_key_is_found_not_sent_again():
    """Stripe forgets idempotency keys after 24 hours (localstripe at once); Kassa's key finds the refund."""
    processor, transport = processor_on({("GET", "/v1/refunds"): [(200, {**EMPTY_LIST, "data": [REFUND]})]})
    assert processor.refund(SHOP, "pi_1", 1000, "USD", "refund-7", NOW).processor_ref == "re_1"
    assert processor.lookup_refund(SHOP, "refund-7").processor_ref == "re_1"
    assert [sent.method for sent in transport.sent] == ["GET", "GET"]
    with pytest.raises(ProcessorFailure) as reused:
        processor.refund(SHOP, "pi_1", 999, "USD", "refund-7", NOW)
    assert reused.value.code == "idempotency_key_reused"


@pytest.mark.parametrize(("code", "decline_code", "reason"), [
    ("card_declined", "insufficient_funds", "insufficient_funds"),  # the bank's reason, not the generic code
    ("card_declined", None, "card_declined"),
    ("expired_card", "expired_card", "expired_card"),
    ("incorrect_cvc", None, "incorrect_cvc"),
])
def test_k13_b2_a_decline_carries_the_banks_reason_the_message_and_the_card(code, decline_code, reason):
    error = {"type": "card_error", "code": code, "message": "Your card has insufficient funds.",
             "payment_intent": {"id": "pi_2"}}
    if decline_code:
        error["decline_code"] = decline_code
    processor, _transport = processor_on({
        ("GET", "/v1/payment_intents"): [(200, EMPTY_LIST)],
        ("GET", "/v1/payment_methods/pm_1Visa"): [(200, CARD_PM)],
        ("POST", "/v1/payment_intents"): [(402, {"error": error})],
    })
    with pytest.raises(CardDeclined) as raised:
        processor.charge(charge_request())
    assert (raised.value.code, raised.value.message) == (reason, "Your card has insufficient funds.")
    assert (raised.value.brand, raised.value.last4) == (CARD_PM["card"]["brand"], CARD_PM["card"]["last4"])


def test_k13_a_lost_answer_is_processor_unavailable():
    class Unreachable(FixtureTransport):
        def request(self, method, url, headers, post_data=None, *, _usage=None):
            raise stripe.APIConnectionError("connection reset")

    processor = StripeProcessor(client_for("http://stripe.fixture", Unreachable({})), SHOP)
    with pytest.raises(ProcessorUnavailable):
        processor.charge(charge_request())


def test_k6_card_details_never_reach_stripe_through_kassa():
    processor, transport = processor_on({})
    card = CardDetails("4242424242424242", 12, 2030, "123", "Ada Lovelace")
    with pytest.raises(ProcessorFailure) as refused:
        processor.charge(charge_request(card=card, payment_method_token=None))
    assert "Payment Element" in refused.value.message
    with pytest.raises(ProcessorFailure):
        processor.save_card(SHOP, card=card, idempotency_key="card-update-0", now=NOW)
    assert transport.sent == []


def test_k13_the_stripe_contract_run_leaves_out_only_fewer_tests_and_only_real_ones():
    contract_tests = {name for name, member in inspect.getmembers(contract, inspect.isfunction)
                      if name.startswith("test_")}
    assert set(STRIPE_NOT_YET) <= STRIPE_NOT_YET_AT_K13, "STRIPE_NOT_YET may only shrink"
    assert set(STRIPE_NOT_YET) <= contract_tests
    assert all(reason.strip() for reason in STRIPE_NOT_YET.values())


def test_k13_localstripe_and_the_doubles_never_reach_the_app():
    """localstripe is GPL and test-only: nothing under site/ imports it or the test doubles."""
    site = Path(__file__).resolve().parents[2] / "site"
    for path in site.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.startswith(("localstripe", "tests"))], path


def test_k8_k13_a_payment_method_saved_with_a_setup_intent_is_charged_off_session_on_localstripe(localstripe_url):
    """The card update's Stripe half: a PaymentMethod the Payment Element made is kept (customer + SetupIntent)
    and charged later while the buyer is away; another account's processor doesn't know it."""
    client = client_for(localstripe_url)
    shop, other = StripeProcessor(client, SHOP), StripeProcessor(client_for(localstripe_url), SHOP + 1)
    made = client.v1.payment_methods.create(params={"type": "card", "card": {
        "number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}})  # Stripe.js's part
    saved = shop.save_card(SHOP, payment_method_token=made.id, idempotency_key="card-update-1", now=NOW)
    assert (saved.token, saved.brand, saved.last4, saved.exp_month, saved.exp_year) == (made.id, "visa", "4242",
                                                                                        12, 2030)
    renewal = shop.charge(charge_request(idempotency_key="renewal-1", amount_minor=1500,
                                         payment_method_token=saved.token))
    assert (renewal.status, renewal.amount_minor, renewal.last4, renewal.payment_method_token) == (
        "succeeded", 1500, "4242", saved.token)
    assert shop.lookup_charge(SHOP, "renewal-1") == renewal
    with pytest.raises(ProcessorFailure) as theirs:
        other.charge(charge_request(account_id=SHOP + 1, idempotency_key="renewal-2",
                                    payment_method_token=saved.token))
    assert theirs.value.code == "no_such_payment_method"


# -- K6: bank debits under a mandate (SEPA Direct Debit, US bank account…) --------------------------------------

UA = "Mozilla/5.0 (Linux; Android 14) Chrome/131.0"


def _debit_pm(kind: str, last4: str) -> dict[str, Any]:
    return {"id": "pm_1Debit", "object": "payment_method", "type": kind, "customer": None, "metadata": {},
            kind: {"last4": last4}}


def _processing(currency: str) -> dict[str, Any]:
    """A bank debit confirmed: processing, its charge not settled yet (no balance transaction)."""
    charge = {**CHARGE, "currency": currency, "status": "pending", "balance_transaction": None}
    return {**INTENT, "currency": currency, "status": "processing", "payment_method": "pm_1Debit",
            "latest_charge": charge}


@pytest.mark.parametrize(("kind", "currency", "last4"), [("sepa_debit", "eur", "3000"),
                                                          ("us_bank_account", "usd", "6789")])
def test_k6_a_bank_debit_is_confirmed_with_the_buyers_online_mandate_and_answers_processing(kind, currency, last4):
    processor, transport = processor_on({
        ("GET", "/v1/payment_intents"): [(200, EMPTY_LIST)],
        ("GET", "/v1/payment_methods/pm_1Debit"): [(200, _debit_pm(kind, last4))],
        ("POST", "/v1/payment_intents"): [(200, _processing(currency))],
    })
    result = processor.charge(charge_request(currency=currency.upper(), payment_method_token="pm_1Debit",
                                             return_url="https://kassa.test/checkout/t/return",
                                             ip_address="203.0.113.9", user_agent=UA))

    create = transport.sent[-1]
    assert create.params == [
        ("amount", "2500"), ("currency", currency), ("payment_method", "pm_1Debit"), ("confirm", "true"),
        ("metadata[kassa_account]", str(SHOP)), ("metadata[kassa_key]", "order-7"),
        ("metadata[kassa_request]", f"2500|{currency.upper()}|pm_1Debit|0"),
        ("expand[0]", "latest_charge.balance_transaction"),
        ("return_url", "https://kassa.test/checkout/t/return"),
        ("mandate_data[customer_acceptance][type]", "online"),
        ("mandate_data[customer_acceptance][online][ip_address]", "203.0.113.9"),
        ("mandate_data[customer_acceptance][online][user_agent]", UA)]
    # Settles by Stripe's event (K7); recorded as Kassa's bank debit with the account's last 4 digits.
    assert (result.status, result.method, result.bank_last4, result.last4, result.brand) == (
        "processing", "sepa" if kind == "sepa_debit" else "ach", last4, None, None)  # Q10
    assert (result.fee_minor, result.amount_settlement_minor) == (0, 2500)


def test_k6_a_card_carries_no_mandate_and_a_bank_debit_without_the_buyers_browser_is_refused_unsent():
    processor, transport = processor_on({
        ("GET", "/v1/payment_intents"): [(200, EMPTY_LIST)],
        ("GET", "/v1/payment_methods/pm_1Visa"): [(200, CARD_PM)],
        ("GET", "/v1/payment_methods/pm_1Debit"): [(200, _debit_pm("sepa_debit", "3000"))],
        ("POST", "/v1/payment_intents"): [(200, INTENT)],
    })
    processor.charge(charge_request(ip_address="203.0.113.9", user_agent=UA))
    assert not any(name.startswith("mandate_data") for name, _ in transport.sent[-1].params)

    with pytest.raises(ProcessorFailure) as refused:
        processor.charge(charge_request(idempotency_key="order-8", payment_method_token="pm_1Debit",
                                        currency="EUR", ip_address="203.0.113.9"))
    assert refused.value.code == "mandate_acceptance_required"
    assert [s.method for s in transport.sent].count("POST") == 1  # nothing sent to Stripe for the second
