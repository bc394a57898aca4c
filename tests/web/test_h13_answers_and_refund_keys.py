"""H13 (races and idempotency): one answer per dispute, and refund idempotency keys bound to their payment.

The dispute race uses real threads with their own test clients on SQLite and PostgreSQL. The processor is the
sandbox behind a counting wrapper that holds every answer it receives until each of the five requests has
either reached the processor or finished: so a request that passes Kassa's check before another's answer is
recorded always overlaps it (the race is real on every run, no sleeps), and the test counts exactly how many
answers reached the processor. The control sends the five answers straight to the processor through the same
gate: all five reach it (the harness does overlap them), and the sandbox, answering each in one locked
transaction (H5), still takes exactly one.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import Dispute, Payment, Refund, SandboxRecord
from tests.factories import make_merchant
from tests.support.checkout import start_checkout, submit_checkout
from tests.support.checkout_flow import field_error, make_shop
from tests.support.payments import actor_for, login, sandbox_payment, soup_of, text_of

FRAUD_CARD = "4000000000000259"  # T5: the charge succeeds, then a dispute opens
SUBMITTERS, ACCEPTERS = 4, 1
JUST_ANSWERED = "This dispute has just been answered. Reload the page to see its status."


def _open_dispute(app) -> tuple[int, int, int]:
    """(user id, account id, dispute id) of a dispute opened by a buyer paying with the fraud card, its
    evidence drafted."""
    from kassa.services.disputes.disputes import save_draft
    from kassa.services.platform.ticks import run_tick

    owner, link = make_shop()
    buyer = app.test_client()
    assert submit_checkout(buyer, start_checkout(buyer, link.slug), card_number=FRAUD_CARD).status_code == 303
    assert not run_tick().failed
    db.session.rollback()
    dispute = db.session.scalar(select(Dispute).where(Dispute.account_id == owner.account_id))
    save_draft(actor_for(owner), dispute.id, "evidence", {"additional_information": "winning_evidence"})
    return owner.id, owner.account_id, dispute.id


class _HeldAnswers:
    """Wraps the sandbox: counts the dispute answers that reach it, and holds each until every request has
    either reached the processor or finished (waiting on that state, with a deadline)."""

    ANSWERS = ("submit_dispute_evidence", "accept_dispute")

    def __init__(self, requests: int) -> None:
        self.requests, self.calls, self.finished = requests, [], 0
        self.cond = threading.Condition()

    def finish(self) -> None:
        with self.cond:
            self.finished += 1
            self.cond.notify_all()

    def wrap(self, processor):
        gate = self

        class Held:
            def __getattr__(self, name):
                attr = getattr(processor, name)
                if name not in gate.ANSWERS:
                    return attr

                def held(*args, **kwargs):
                    deadline = time.monotonic() + 60
                    with gate.cond:
                        gate.calls.append(name)
                        gate.cond.notify_all()
                        while len(gate.calls) + gate.finished < gate.requests:
                            left = deadline - time.monotonic()
                            assert left > 0, "the other requests neither reached the processor nor finished"
                            gate.cond.wait(left)
                    return attr(*args, **kwargs)

                return held

        return Held()


def test_h13_four_submits_and_an_accept_at_once_give_one_processor_answer(app, monkeypatch):
    """4 evidence submissions and 1 accept of one dispute, in parallel through the web: exactly one answer
    reaches the processor (and the processor holds one decision); the four others get a 409 saying the
    dispute was just answered; Kassa shows the answer the processor got."""
    from kassa.models import User
    from kassa.processors import registry

    user_id, account_id, dispute_id = _open_dispute(app)
    owner = db.session.get(User, user_id)
    requests = SUBMITTERS + ACCEPTERS
    gate = _HeldAnswers(requests)
    real_sandbox = registry.sandbox
    monkeypatch.setattr(registry, "sandbox", lambda: gate.wrap(real_sandbox()))

    clients = [app.test_client() for _ in range(requests)]
    for client in clients:
        login(client, owner)
    db.session.remove()
    barrier = threading.Barrier(requests)
    answers: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def post(client, kind: str) -> None:
        try:
            barrier.wait(timeout=60)
            with app.app_context():
                response = client.post(f"/disputes/{dispute_id}/{kind}")
            alert = soup_of(response).select_one("[role=alert]")
            with lock:
                answers.append((kind, response.status_code, text_of(alert) if alert else ""))
        finally:
            gate.finish()

    kinds = ["submit"] * SUBMITTERS + ["accept"] * ACCEPTERS
    threads = [threading.Thread(target=post, args=(client, kind)) for client, kind in zip(clients, kinds,
                                                                                          strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)

    print(f"\nH13 dispute answers on {db.engine.dialect.name}: {requests} parallel requests -> "
          f"{len(gate.calls)} reached the processor; {sorted(code for _k, code, _m in answers)}")
    assert len(gate.calls) == 1, gate.calls
    won = [a for a in answers if a[1] in (303, 204)]
    refused = [a for a in answers if a[1] == 409]
    assert len(won) == 1 and len(refused) == requests - 1, answers
    assert {message for _kind, _code, message in refused} == {JUST_ANSWERED}, refused

    db.session.rollback()
    dispute = db.session.get(Dispute, dispute_id)
    ref = dispute.processor_ref
    decisions = [data for data, in db.session.execute(select(SandboxRecord.data).where(
        SandboxRecord.key.like("event:%"), SandboxRecord.account_id == account_id))
        if data["object_ref"] == ref and data["type"] in ("dispute.won", "dispute.lost")]
    assert len(decisions) == 1, decisions
    expected = "lost" if won[0][0] == "accept" else "under_review"
    assert dispute.status == expected


def test_h13_control_five_answers_sent_straight_to_the_processor_all_reach_it_and_one_is_taken(app):
    """Control for the test above: the same gate and threads, without Kassa's claim, let all five answers
    reach the processor at once; the sandbox's own transaction (row-locked on PostgreSQL) accepts one and
    refuses four as already answered, so the processor never records two answers."""
    from kassa.clock import now
    from kassa.processors.base import DisputeEvidence, ProcessorFailure
    from kassa.processors.registry import sandbox

    _user_id, account_id, dispute_id = _open_dispute(app)
    ref = db.session.get(Dispute, dispute_id).processor_ref
    at = now()
    db.session.remove()
    requests = SUBMITTERS + ACCEPTERS
    gate = _HeldAnswers(requests)
    outcomes: list[str] = []
    lock = threading.Lock()

    def answer(kind: str) -> None:
        with app.app_context():
            processor = gate.wrap(sandbox())
            try:
                if kind == "accept":
                    processor.accept_dispute(account_id, ref, at)
                else:
                    processor.submit_dispute_evidence(account_id, ref, DisputeEvidence(text="winning_evidence"), at)
                outcome = "answered"
            except ProcessorFailure as exc:
                outcome = exc.code
            finally:
                gate.finish()
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=answer, args=(kind,)) for kind in ["submit"] * SUBMITTERS + ["accept"]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert len(gate.calls) == requests  # the race is real: every answer reached the processor at once
    assert outcomes.count("answered") == 1, outcomes
    # The others are refused: already answered (evidence won the lock) or closed (the accept did).
    assert set(outcomes) - {"answered"} <= {"dispute_already_answered", "dispute_closed"}, outcomes


@pytest.fixture
def owner(client):
    owner = make_merchant()
    login(client, owner)
    return owner


def test_h13_a_refund_key_reused_on_another_payment_is_a_409_and_refunds_nothing_elsewhere(client, owner):
    """The refund form's key of payment A sent for payment B: 409 with a message that says nothing was
    refunded, B keeps its whole amount, A's refund is untouched; the form comes back with the amount typed and
    a fresh key, so submitting it again refunds B."""
    first = sandbox_payment(owner.account_id, amount_minor=5000)
    second = sandbox_payment(owner.account_id, amount_minor=7000)
    form = {"amount": "20.00", "reason": "duplicate", "note": "", "key": "refund-form-key-1"}
    assert client.post(f"/payments/{first.id}/refund", data=form).status_code == 303

    reused = client.post(f"/payments/{second.id}/refund", data={**form, "amount": "30.00"})
    assert reused.status_code == 409
    page = soup_of(reused)
    assert field_error(reused, "amount").removeprefix("Error: ") == (
        "This refund form was already used to refund another payment, so nothing was refunded. "
        "Submit the form again to refund this payment.")
    assert page.select_one("#f-amount")["value"] == "30.00"
    fresh_key = page.select_one("input[name=key]")["value"]
    assert fresh_key and fresh_key != form["key"]

    db.session.rollback()
    assert db.session.get(Payment, second.id).refund_reserved_minor == 0
    assert [(r.payment_id, r.amount_minor) for r in db.session.scalars(select(Refund).order_by(Refund.id))] == [
        (first.id, 2000)]

    again = client.post(f"/payments/{second.id}/refund", data={**form, "amount": "30.00", "key": fresh_key})
    assert again.status_code == 303
    db.session.rollback()
    assert db.session.get(Payment, second.id).refund_reserved_minor == 3000
    # The same key on the same payment is still the same refund (a double submit refunds once).
    assert client.post(f"/payments/{first.id}/refund", data=form).status_code == 303
    db.session.rollback()
    assert db.session.get(Payment, first.id).refund_reserved_minor == 2000
