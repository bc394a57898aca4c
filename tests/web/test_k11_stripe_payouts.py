"""K11: balance and payouts from Stripe. Stripe pays out by itself; the tick lists its payouts with their balance
transactions and records Kassa payouts whose entries add up to Stripe's own amount to the cent (refunds, a
dispute, fees, a multi-currency charge, lines Kassa never booked), with the sandbox's invariants. Through a
recording fixture transport answering Stripe-shaped objects (tests/fixtures/stripe); SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from kassa import secrets_box
from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import (
    Dispute,
    LedgerEntry,
    Payment,
    Payout,
    Refund,
    StripeConnection,
)
from kassa.processors.base import ProcessorFailure
from kassa.processors.registry import processor_for
from kassa.services.money.ledger import book_charge, book_dispute, book_refund
from kassa.services.payouts import payouts, stripe_payouts
from tests.factories import make_merchant, make_payment
from tests.support.ledger import check_payout_invariants
from tests.support.stripe_doubles import FixtureTransport

OBJECTS = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "stripe" / "stripe_objects.json")
                     .read_text(encoding="utf-8"))
SECRET = "sk_live_51Kassa0000000000000000000000000000000000000abcd"
KEY = Fernet.generate_key().decode()
LIST = {"object": "list", "has_more": False, "url": "/v1/x"}


def ts(at: datetime) -> int:
    return int(at.timestamp())


def txn(ref: str, type_: str, amount: int, fee: int, source: Any, *, category: str | None = None,
        rate: float | None = None, description: str = "") -> dict[str, Any]:
    """Stripe's example balance transaction (fixtures3.json) with these figures."""
    at = ts(now() - timedelta(days=3))
    return {**OBJECTS["balance_transaction"], "id": ref, "type": type_, "reporting_category": category or type_,
            "amount": amount, "fee": fee, "net": amount - fee, "currency": "usd", "exchange_rate": rate,
            "source": source, "created": at, "available_on": at + 86400 * 2, "description": description}


def payout(ref: str, amount: int, status: str = "paid", **kw: Any) -> dict[str, Any]:
    at = now() - timedelta(days=2)
    return {**OBJECTS["payout"], "id": ref, "amount": amount, "currency": "usd", "status": status,
            "created": ts(at), "arrival_date": ts(at + timedelta(days=2)), "balance_transaction": f"txn_{ref}",
            "automatic": True, **kw}


def payout_txn(ref: str, amount: int) -> dict[str, Any]:
    return txn(f"txn_{ref}", "payout", -amount, 0, ref)


def charge(ref: str, intent: str) -> dict[str, Any]:
    return {"id": ref, "object": "charge", "payment_intent": intent}


@pytest.fixture
def transport() -> FixtureTransport:
    return FixtureTransport({})


@pytest.fixture
def app_config(transport):
    return {"KASSA_STRIPE_HTTP_CLIENT": transport, "KASSA_ENCRYPTION_KEYS": [KEY],
            "KASSA_STRIPE_BASE_ADDRESSES": {"api": "http://stripe.fixture", "files": "http://stripe.fixture",
                                            "connect": "http://stripe.fixture"}}


@pytest.fixture
def shop(app):
    user = make_merchant(company="Acme")
    with write_transaction(db.session) as session:
        from kassa.models import Account

        account = session.get(Account, user.account_id)
        account.default_currency, account.country = "USD", "US"
        session.add(StripeConnection(
            account_id=user.account_id, mode="live", secret_key_encrypted=secrets_box.encrypt(SECRET),
            secret_key_last4="abcd", publishable_key="pk_live_51Kassa", stripe_account_id="acct_1Kassa",
            stripe_account_name="Acme", country="US", default_currency="USD", connected_at=now()))
    return user.account_id


def live_payment(account_id: int, ref: str, amount: int, fee: int, *, currency: str = "USD", rate: str = "1",
                 gross: int | None = None) -> Payment:
    gross = amount if gross is None else gross
    payment = make_payment(account_id, mode="live", amount_minor=amount, currency=currency,
                           processor="stripe", settlement_currency="USD", exchange_rate=rate, fee_minor=fee,
                           fee_settlement_minor=fee, net_settlement_minor=gross - fee,
                           created_at=now() - timedelta(days=5))
    with write_transaction(db.session) as session:
        row = session.get(Payment, payment.id)
        row.processor_ref = ref
        book_charge(row)
    return db.session.get(Payment, payment.id)


def refund_of(payment: Payment, ref: str, amount: int) -> Refund:
    with write_transaction(db.session) as session:
        refund = Refund(account_id=payment.account_id, payment_id=payment.id, amount_minor=amount,
                        currency=payment.currency, reason="requested_by_customer", status="succeeded",
                        idempotency_key=f"refund-{ref}", processor_ref=ref)
        session.add(refund)
        session.flush()
        book_refund(refund, now() - timedelta(days=4))
        return refund


def dispute_on(payment: Payment, ref: str, amount: int, fee: int) -> Dispute:
    with write_transaction(db.session) as session:
        dispute = Dispute(account_id=payment.account_id, payment_id=payment.id, processor_ref=ref,
                          amount_minor=amount, currency=payment.currency, fee_minor=fee, reason="fraudulent",
                          evidence_due_by=now() + timedelta(days=7), created_at=now() - timedelta(days=4))
        session.add(dispute)
        session.flush()
        book_dispute(dispute, now() - timedelta(days=4))
        return dispute


def entries_of(payout_id: int) -> list[tuple[str, int]]:
    return sorted((e.type, e.amount_minor) for e in db.session.scalars(select(LedgerEntry).where(
        LedgerEntry.payout_id == payout_id, LedgerEntry.type != "payout")))


def test_k11_stripes_payouts_are_recorded_with_lines_adding_up_to_stripes_amount_to_the_cent(shop, transport):
    desk = live_payment(shop, "pi_desk", 10000, 320)
    # EUR 50.00 settled in USD at Stripe's rate 1.0862 (the charge's balance transaction): 54.31 gross.
    euro = live_payment(shop, "pi_euro", 5000, 188, currency="EUR", rate="1.0862", gross=5431)
    late = live_payment(shop, "pi_late", 3000, 0)  # its balance transaction came after it succeeded
    lamp = live_payment(shop, "pi_lamp", 2000, 88)
    refund = refund_of(euro, "re_euro", 2000)  # Kassa: -2172 at the payment's rate; Stripe: -2180 at the day's
    dispute = dispute_on(desk, "dp_desk", 10000, 1500)
    lines_1 = [
        txn("txn_desk", "charge", 10000, 320, charge("ch_desk", "pi_desk")),
        txn("txn_euro", "charge", 5431, 188, charge("ch_euro", "pi_euro"), rate=1.0862),
        txn("txn_late", "charge", 3000, 117, charge("ch_late", "pi_late")),
        txn("txn_re", "refund", -2180, 0, {"id": "re_euro", "object": "refund", "payment_intent": "pi_euro"},
            rate=1.09),
        txn("txn_dp", "adjustment", -10000, 1500, {"id": "dp_desk", "object": "dispute", "payment_intent": "pi_desk"},
            category="dispute", description="Chargeback withdrawal for ch_desk"),
        txn("txn_radar", "stripe_fee", -5, 0, None, description="Radar (2027-03-01)"),
        txn("txn_pos", "charge", 1000, 59, charge("ch_pos", "pi_pos")),  # a charge made outside Kassa
    ]
    amount_1 = sum(line["net"] for line in lines_1)
    lines_2 = [txn("txn_lamp", "charge", 2000, 88, charge("ch_lamp", "pi_lamp"))]
    failed = payout("po_2", 1912, "failed", failure_code="account_closed",
                    failure_message="The bank account has been closed.", created=ts(now() - timedelta(days=1)))
    lines_3 = [txn("txn_pf", "payout_failure", 1912, 0, {"id": "po_2", "object": "payout"})]
    third = payout("po_3", 1912, "in_transit", created=ts(now() - timedelta(hours=20)))
    transport.answers.update({
        ("GET", "/v1/payouts"): [(200, {**LIST, "data": [third, failed, payout("po_1", amount_1)]})],
        ("GET", "/v1/balance_transactions"): [
            (200, {**LIST, "data": [payout_txn("po_1", amount_1), *lines_1]}),
            (200, {**LIST, "data": [payout_txn("po_2", 1912), *lines_2]}),
            (200, {**LIST, "data": [payout_txn("po_3", 1912), *lines_3]})],
    })
    assert stripe_payouts.sync_payouts_task() == 3

    sent = [(s.method, s.path, s.params) for s in transport.sent]
    assert sent[0][:2] == ("GET", "/v1/payouts")
    assert sent[0][2][0] == ("limit", "100") and sent[0][2][1][0] == "created[gte]"
    assert [s[2] for s in sent[1:]] == [
        [("payout", ref), ("limit", "100"), ("expand[0]", "data.source")] for ref in ("po_1", "po_2", "po_3")]
    assert all(s.headers["Authorization"] == f"Bearer {SECRET}" for s in transport.sent)

    rows = {p.processor_ref: p for p in db.session.scalars(select(Payout).where(Payout.account_id == shop))}
    assert {ref: (p.amount_minor, p.currency, p.status) for ref, p in rows.items()} == {
        "po_1": (amount_1, "USD", "paid"), "po_2": (1912, "USD", "failed"), "po_3": (1912, "USD", "in_transit")}
    for ref, row in rows.items():  # to the cent: each payout is exactly its entries, and Stripe's amount
        assert sum(amount for _kind, amount in entries_of(row.id)) == row.amount_minor, ref
    assert entries_of(rows["po_1"].id) == sorted([
        ("charge", 10000), ("fee", -320), ("charge", 5431), ("fee", -188), ("charge", 3000),
        ("fee", -117),  # Stripe's fee for the late balance transaction
        ("refund", -2172), ("refund", -8),  # the refund at the payment's rate, and Stripe's day-rate difference
        ("dispute", -10000), ("dispute_fee", -1500), ("fee", -5),  # Radar
        ("charge", 1000), ("fee", -59)])  # the charge made outside Kassa
    assert rows["po_2"].failure_message == "The bank account has been closed."
    assert entries_of(rows["po_3"].id) == [("payout_failure", 1912)]  # the failed payout's funds, paid again
    db.session.refresh(late)
    assert (late.fee_minor, late.fee_settlement_minor, late.net_settlement_minor) == (117, 117, 2883)
    assert refund.id and dispute.id and lamp.id
    check_payout_invariants(shop)

    # A second sync adds nothing: one request (the list), no payout, no entry.
    before = (db.session.scalar(select(func.count()).select_from(Payout)),
              db.session.scalar(select(func.count()).select_from(LedgerEntry)))
    transport.sent.clear()
    assert stripe_payouts.sync_payouts_task() == 0
    assert [s.path for s in transport.sent] == ["/v1/payouts"]
    assert (db.session.scalar(select(func.count()).select_from(Payout)),
            db.session.scalar(select(func.count()).select_from(LedgerEntry))) == before

    # Stripe reports po_3 paid: it moves, nothing else changes.
    transport.answers[("GET", "/v1/payouts")] = [(200, {**LIST, "data": [
        {**third, "status": "paid"}, failed, payout("po_1", amount_1)]})]
    stripe_payouts.sync_payouts_task()
    assert db.session.scalar(select(Payout.status).where(Payout.processor_ref == "po_3")) == "paid"
    check_payout_invariants(shop)


def test_k11_a_payout_waits_for_a_line_whose_event_kassa_has_not_applied_then_books_it_as_stripe_has_it(
        shop, transport):
    live_payment(shop, "pi_desk", 10000, 320)
    lines = [txn("txn_desk", "charge", 10000, 320, charge("ch_desk", "pi_desk")),
             txn("txn_re", "refund", -4000, 0, {"id": "re_new", "object": "refund", "payment_intent": "pi_desk"})]
    fresh = payout("po_9", 5680, created=ts(now() - timedelta(hours=2)))
    transport.answers.update({
        ("GET", "/v1/payouts"): [(200, {**LIST, "data": [fresh]})],
        ("GET", "/v1/balance_transactions"): [(200, {**LIST, "data": [payout_txn("po_9", 5680), *lines]})],
    })
    assert stripe_payouts.sync_payouts_task() == 0  # the refund's event hasn't been applied: wait
    assert db.session.scalar(select(func.count()).select_from(Payout)) == 0
    transport.answers[("GET", "/v1/payouts")] = [(200, {**LIST, "data": [
        {**fresh, "created": ts(now() - timedelta(hours=25))}]})]
    assert stripe_payouts.sync_payouts_task() == 1  # a day on, the refund is booked as Stripe has it
    row = db.session.scalar(select(Payout))
    assert entries_of(row.id) == [("charge", 10000), ("fee", -320), ("refund", -4000)]
    check_payout_invariants(shop)


def test_k11_lines_that_dont_add_up_to_stripes_amount_record_nothing(shop, transport):
    transport.answers.update({
        ("GET", "/v1/payouts"): [(200, {**LIST, "data": [payout("po_bad", 999)]})],
        ("GET", "/v1/balance_transactions"): [(200, {**LIST, "data": [
            txn("txn_x", "charge", 1000, 0, charge("ch_x", "pi_x"))]})],
    })
    assert stripe_payouts.sync_payouts_task() == 0
    assert db.session.scalar(select(func.count()).select_from(Payout)) == 0
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == 0


def test_k11_kassa_makes_no_daily_payout_for_a_stripe_account_and_stripe_refuses_one(shop, transport):
    live_payment(shop, "pi_desk", 10000, 320, )
    with write_transaction(db.session) as session:
        session.execute(LedgerEntry.__table__.update().values(available_on=now().date() - timedelta(days=1)))
    assert payouts.run_payouts() == 0
    assert db.session.scalar(select(func.count()).select_from(Payout)) == 0
    processor = processor_for("live", shop)
    assert processor.automatic_payouts is True
    with pytest.raises(ProcessorFailure) as refused:
        processor.send_payout(shop, 9680, "USD", "payout-1", now())
    assert refused.value.code == "automatic_payouts"
    assert processor.lookup_payout(shop, "payout-1", now()) is None
    assert transport.sent == []
    assert datetime.now(UTC)  # (time-zone aware clock in use)
