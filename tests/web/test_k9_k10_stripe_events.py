"""K9 refunds and K10 disputes from Stripe's events: pending refunds settle on charge.refund.updated /
refund.updated, a refund Stripe fails shows its reason, a refund whose answer was lost is found by its key;
charge.dispute.created/updated/closed open and close Kassa disputes with Stripe's reason, amount and
evidence_details.due_by, in any order. Stripe is the recording FixtureTransport (no internet)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import Dispute, Payment, Refund
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in, page_text, run_outbox
from tests.support.stripe_doubles import FixtureTransport
from tests.support.stripe_events import (
    StripeWorld,
    fixture_app_config,
    make_connection,
    paid_payment,
    pending_refund,
    side_effects,
    signed,
)

SECRET = "whsec_k9k10SigningSecret0001"
KEY = Fernet.generate_key().decode()


@pytest.fixture
def transport():
    return FixtureTransport({})


@pytest.fixture
def app_config(transport):
    return fixture_app_config(transport, KEY)


@pytest.fixture
def shop(app, transport):
    owner = make_merchant(company="Acme")
    make_connection(owner.account_id, SECRET)
    return owner, StripeWorld(transport, owner.account_id)


def deliver(client, account_id: int, event: dict):
    payload, header = signed(event, SECRET)
    response = client.post(f"/webhooks/stripe/{account_id}", data=payload, headers={"Stripe-Signature": header})
    assert response.status_code == 200
    return response


def refund_row(refund_id: int) -> Refund:
    db.session.rollback()
    return db.session.get(Refund, refund_id)


def dispute_of(payment_id: int) -> Dispute | None:
    db.session.rollback()
    return db.session.scalar(select(Dispute).where(Dispute.payment_id == payment_id))


# -- K9 refunds ---------------------------------------------------------------------------------------


def test_k9_a_pending_refund_settles_once_when_stripe_says_so_even_updated_twice(client, shop):
    owner, world = shop
    payment = paid_payment(owner.account_id, "pi_k9_paid")
    world.intent("pi_k9_paid", "succeeded")
    refund = pending_refund(payment, "re_k9_1", key="refund-key-1")
    world.refund("re_k9_1", "pending", intent_id="pi_k9_paid")
    deliver(client, owner.account_id, world.event("refund.updated", "re_k9_1"))  # still pending: nothing
    run_outbox()
    assert refund_row(refund.id).status == "pending"
    world.refund("re_k9_1", "succeeded", intent_id="pi_k9_paid")
    for event_type in ("charge.refund.updated", "refund.updated", "charge.refund.updated"):
        deliver(client, owner.account_id, world.event(event_type, "re_k9_1"))
    run_outbox()
    assert refund_row(refund.id).status == "succeeded"
    db.session.rollback()
    assert db.session.get(Payment, payment.id).refunded_minor == 1000
    effects = side_effects(payment.id)
    assert effects["timeline:refund.succeeded"] == 1
    assert sum(n for kind, n in effects.items() if kind.startswith("email:refund")) == 1


def test_k9_a_refund_stripe_fails_shows_its_reason_and_frees_the_amount(client, shop):
    owner, world = shop
    payment = paid_payment(owner.account_id, "pi_k9_fail")
    world.intent("pi_k9_fail", "succeeded")
    refund = pending_refund(payment, "re_k9_fail", key="refund-key-2")
    world.refund("re_k9_fail", "failed", intent_id="pi_k9_fail", failure_reason="expired_or_canceled_card")
    deliver(client, owner.account_id, world.event("refund.failed", "re_k9_fail"))
    deliver(client, owner.account_id, world.event("charge.refund.updated", "re_k9_fail"))
    run_outbox()
    row = refund_row(refund.id)
    assert (row.status, row.failure_code) == ("failed", "expired_or_canceled_card")
    assert row.failure_message == "The card has expired or was canceled, so the refund could not be sent to it."
    assert db.session.get(Payment, payment.id).refund_reserved_minor == 0  # refundable again (F6)
    log_in(client, owner.email, PASSWORD)
    assert "The card has expired or was canceled" in page_text(client.get(f"/payments/{payment.id}"))
    assert side_effects(payment.id)["timeline:refund.failed"] == 1


def test_k9_a_refund_whose_answer_was_lost_is_found_by_its_key_and_settles(client, shop):
    owner, world = shop
    payment = paid_payment(owner.account_id, "pi_k9_lost")
    world.intent("pi_k9_lost", "succeeded")
    refund = pending_refund(payment, None, key="refund-key-lost")  # H5: Kassa never got Stripe's answer
    world.refund("re_k9_lost", "succeeded", intent_id="pi_k9_lost", key="refund-key-lost")
    deliver(client, owner.account_id, world.event("charge.refund.updated", "re_k9_lost"))
    run_outbox()
    row = refund_row(refund.id)
    assert (row.status, row.processor_ref) == ("succeeded", "re_k9_lost")


# -- K10 disputes -------------------------------------------------------------------------------------


def test_k10_dispute_created_opens_a_kassa_dispute_with_stripes_reason_amount_and_due_date(client, shop):
    owner, world = shop
    payment = paid_payment(owner.account_id, "pi_k10_open")
    world.intent("pi_k10_open", "succeeded")
    due_by = int(time.time()) + 7 * 86400
    world.dispute("du_k10_open", "needs_response", intent_id="pi_k10_open", amount=4200, reason="fraudulent",
                  due_by=due_by)
    deliver(client, owner.account_id, world.event("charge.dispute.created", "du_k10_open"))
    deliver(client, owner.account_id, world.event("charge.dispute.updated", "du_k10_open"))
    run_outbox()
    dispute = dispute_of(payment.id)
    assert (dispute.status, dispute.reason, dispute.amount_minor, dispute.currency) == (
        "needs_response", "fraudulent", 4200, "EUR")
    assert dispute.evidence_due_by == datetime.fromtimestamp(due_by, UTC)
    assert dispute.processor_ref == "du_k10_open" and not dispute.is_inquiry
    effects = side_effects(payment.id)
    assert effects["timeline:dispute.opened"] == 1 and effects.get("email:dispute_opened", 0) >= 1
    # Closed as lost: moved once, however many times Stripe says so.
    world.dispute("du_k10_open", "lost", intent_id="pi_k10_open", amount=4200, reason="fraudulent", due_by=due_by)
    for _ in range(2):
        deliver(client, owner.account_id, world.event("charge.dispute.closed", "du_k10_open"))
    run_outbox()
    assert dispute_of(payment.id).status == "lost"
    assert side_effects(payment.id)["timeline:dispute.lost"] == 1


def test_k10_dispute_closed_delivered_before_created_opens_then_closes_it_once(client, shop):
    owner, world = shop
    payment = paid_payment(owner.account_id, "pi_k10_order")
    world.intent("pi_k10_order", "succeeded")
    world.dispute("du_k10_order", "needs_response", intent_id="pi_k10_order", due_by=int(time.time()) + 86400)
    created = world.event("charge.dispute.created", "du_k10_order")
    world.dispute("du_k10_order", "won", intent_id="pi_k10_order", due_by=int(time.time()) + 86400)
    closed = world.event("charge.dispute.closed", "du_k10_order")
    deliver(client, owner.account_id, closed)
    run_outbox()
    deliver(client, owner.account_id, created)  # late: Stripe's object is won now, Kassa stays won
    run_outbox()
    dispute = dispute_of(payment.id)
    assert dispute.status == "won"
    effects = side_effects(payment.id)
    assert effects["timeline:dispute.opened"] == 1 and effects["timeline:dispute.won"] == 1
    # Withdrawal booked, and returned by the win: the ledger rows come in pairs.
    assert effects["ledger"] >= 2


def test_k10_an_inquiry_is_opened_as_an_inquiry_without_a_fee(client, shop):
    owner, world = shop
    payment = paid_payment(owner.account_id, "pi_k10_inq")
    world.intent("pi_k10_inq", "succeeded")
    world.dispute("du_k10_inq", "warning_needs_response", intent_id="pi_k10_inq", due_by=int(time.time()) + 86400)
    deliver(client, owner.account_id, world.event("charge.dispute.created", "du_k10_inq"))
    run_outbox()
    dispute = dispute_of(payment.id)
    assert dispute.is_inquiry and dispute.fee_minor == 0
