"""K7/K13 property: random sequences (1,000 with `make test-properties`) of Stripe events (a bank debit settling or bouncing, a refund settling
or failing, a dispute won or lost), each event delivered 1–3 times, shuffled, with the worker applying at random
points in between, end in the same final state as the same events delivered once in order, with the same side
effects: emails, ledger rows and timeline entries, none twice. Seeded (hypothesis, derandomized): reproducible.

Stripe's objects change state when their outcome event is created, so an outcome event is never delivered
before the state it reports; everything else (duplicates, order, delays) is free."""

from __future__ import annotations

import itertools
import os
import random
import time

import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kassa.extensions import db
from kassa.models import Dispute, Payment, Refund
from kassa.services.webhooks import stripe_webhooks
from tests.factories import make_merchant
from tests.support.stripe_doubles import FixtureTransport
from tests.support.stripe_events import (
    StripeWorld,
    fixture_app_config,
    make_connection,
    paid_payment,
    pending_refund,
    processing_payment,
    side_effects,
    signed,
)

SECRET = "whsec_k7PropertySecret000001"
KEY = Fernet.generate_key().decode()
# `make test` plays 100 sequences per database (under a minute each on a 2-core machine); `make test-properties`
# plays the full 1,000 (K7_SEQ=1000), about 9 minutes on SQLite and 13 on PostgreSQL.
SEQUENCES = int(os.environ.get("K7_SEQ", "100"))
_ids = itertools.count(1)


@pytest.fixture
def transport():
    return FixtureTransport({})


@pytest.fixture
def app_config(transport):
    return fixture_app_config(transport, KEY)


class Scenario:
    """One sequence's three objects: their Kassa rows, Stripe's states, and the events Stripe sends."""

    def __init__(self, world: StripeWorld, account_id: int, debit_ok: bool, refund_ok: bool, dispute_won: bool):
        n = next(_ids)
        self.world = world
        self.ids = {"debit": f"pi_p{n}_a", "paid": f"pi_p{n}_b", "refund": f"re_p{n}", "disputed": f"pi_p{n}_c",
                    "dispute": f"du_p{n}"}
        self.debit = processing_payment(account_id, self.ids["debit"])
        self.paid = paid_payment(account_id, self.ids["paid"])
        self.refund = pending_refund(self.paid, self.ids["refund"], key=f"refund-p{n}")
        self.disputed = paid_payment(account_id, self.ids["disputed"])
        self.final = {"debit": ("succeeded",) if debit_ok else ("requires_payment_method", {
                          "code": "payment_intent_payment_attempt_failed", "decline_code": "insufficient_funds",
                          "message": "Insufficient funds."}),
                      "refund": ("succeeded", None) if refund_ok else ("failed", "declined"),
                      "dispute": "won" if dispute_won else "lost"}
        self.due_by = int(time.time()) + 7 * 86400
        self.intermediate()
        self.events = [  # (event type, object key, reports the final state)
            ("payment_intent.processing", "debit", False),
            ("payment_intent.succeeded" if debit_ok else "payment_intent.payment_failed", "debit", True),
            ("refund.updated", "refund", False),
            ("charge.refund.updated", "refund", True),
            ("refund.updated" if refund_ok else "refund.failed", "refund", True),
            ("charge.dispute.created", "dispute", False),
            ("charge.dispute.updated", "dispute", False),
            ("charge.dispute.closed", "dispute", True),
        ]

    def intermediate(self) -> None:
        w, ids = self.world, self.ids
        w.intent(ids["debit"], "processing")
        w.intent(ids["paid"], "succeeded")
        w.intent(ids["disputed"], "succeeded")
        w.refund(ids["refund"], "pending", intent_id=ids["paid"])
        w.dispute(ids["dispute"], "needs_response", intent_id=ids["disputed"], due_by=self.due_by)

    def reveal(self, key: str) -> None:
        """The object reaches its outcome at Stripe (just before its outcome event is created)."""
        w, ids = self.world, self.ids
        if key == "debit":
            status, *error = self.final["debit"]
            w.intent(ids["debit"], status, error=error[0] if error else None)
        elif key == "refund":
            status, reason = self.final["refund"]
            w.refund(ids["refund"], status, intent_id=ids["paid"], failure_reason=reason)
        else:
            w.dispute(ids["dispute"], self.final["dispute"], intent_id=ids["disputed"], due_by=self.due_by)

    def outcome(self) -> tuple:
        db.session.rollback()
        dispute = db.session.query(Dispute).filter_by(payment_id=self.disputed.id).one_or_none()
        return (db.session.get(Payment, self.debit.id).status, db.session.get(Refund, self.refund.id).status,
                dispute.status if dispute else None)

    def effects(self) -> tuple:
        return tuple(side_effects(p.id) for p in (self.debit, self.paid, self.disputed))


def play(scenario: Scenario, account_id: int, connection_id: int, rng: random.Random | None) -> None:
    """Deliver the scenario's events through the webhook service: in order once (rng None), or each 1–3 times,
    shuffled, with the worker applying at random points; then the worker finishes."""
    deliveries = list(scenario.events)
    if rng is not None:
        deliveries = [d for d in deliveries for _ in range(rng.randint(1, 3))]
        rng.shuffle(deliveries)
    made: dict[tuple[str, str], dict] = {}
    revealed: set[str] = set()
    for event_type, key, is_outcome in deliveries:
        if is_outcome and key not in revealed:
            scenario.reveal(key)
            revealed.add(key)
        # A duplicate is the same event (same id) delivered again.
        event = made.setdefault((event_type, key), scenario.world.event(event_type, scenario.ids[key]))
        payload, header = signed(event, SECRET)
        stripe_webhooks.receive(account_id, payload, header)
        if rng is None or rng.random() < 0.3:
            stripe_webhooks.apply_pending(connection_id)
    # The worker's last run (its queued job does exactly this); emails stay queued: they are counted, not sent.
    stripe_webhooks.apply_pending(connection_id)


@pytest.mark.slow
def test_k7_k13_shuffled_duplicated_event_sequences_end_in_one_state_with_no_duplicate_side_effect(app, transport):
    owner = make_merchant(company="Acme")
    connection = make_connection(owner.account_id, SECRET)
    world = StripeWorld(transport, owner.account_id)
    account_id, connection_id = owner.account_id, connection.id
    references: dict[tuple[bool, bool, bool], tuple[tuple, tuple]] = {}
    played = []

    def reference(variant: tuple[bool, bool, bool]) -> tuple[tuple, tuple]:
        if variant not in references:
            scenario = Scenario(world, account_id, *variant)
            play(scenario, account_id, connection_id, None)
            references[variant] = (scenario.outcome(), scenario.effects())
        return references[variant]

    @settings(max_examples=SEQUENCES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(variant=st.tuples(st.booleans(), st.booleans(), st.booleans()), seed=st.integers(0, 2**32 - 1))
    def sequence(variant, seed):
        expected_outcome, expected_effects = reference(variant)
        scenario = Scenario(world, account_id, *variant)
        play(scenario, account_id, connection_id, random.Random(seed))
        assert scenario.outcome() == expected_outcome
        assert scenario.effects() == expected_effects
        played.append(seed)

    sequence()
    assert len(played) == SEQUENCES
    # The eight combinations of outcomes all occurred, and each reference is the real end state.
    assert len(references) == 8
    assert references[(True, True, True)][0] == ("succeeded", "succeeded", "won")
    assert references[(False, False, False)][0] == ("failed", "failed", "lost")
    print(f"\nK7 property [{db.engine.dialect.name}]: {len(played)} shuffled, duplicated sequences "
          f"({len(references)} outcome combinations) -> one final state each, no duplicate side effect")
