"""M1 (b): a walk through every transition of every money state machine, with the ledger = the processor.

Each machine's walk drives its object through the real services and the sandbox — checkouts with the
sandbox's test cards and bank accounts, merchant refunds, dispute answers, the subscription test clock, the
tick's payouts — never by calling a `move_*`. Every move is recorded as it happens: each machine's `move_*`
is wrapped wherever it was imported, and the set-based billing batch (which updates statuses a statement per
table, reading the machines' tables) is watched where it writes (`bulk_sql.update_rows`). A walk must cover
its machine's TRANSITIONS exactly, so a transition added later without a driver here fails the test (as does
a new `*_states` machine without a walk). After every step, with the tick run, Kassa's ledger and statuses
equal what the sandbox's records say (tests/support/ledger.py).

Each walk has its own merchant, on its own frozen clock.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

import pytest
import time_machine
from sqlalchemy import func, select

import kassa.services
from kassa import bulk_sql
from kassa.errors import Conflict
from kassa.extensions import db
from kassa.models import (
    AttemptStatus,
    Dispute,
    DisputeStatus,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAttempt,
    PaymentStatus,
    Payout,
    PayoutStatus,
    Quote,
    QuoteStatus,
    Refund,
    RefundStatus,
    Subscription,
    SubscriptionStatus,
)
from kassa.services.billing import subscription_states
from kassa.services.billing.subscriptions import cancel, set_test_card_behaviour
from kassa.services.checkout.checkout import IN_FLIGHT_LIMIT, RECONCILE_AFTER
from kassa.services.disputes import dispute_states
from kassa.services.disputes.disputes import accept, save_draft, submit_evidence
from kassa.services.payments import (
    attempt_states,
    invoice_states,
    payment_states,
    quote_states,
    refund_states,
)
from kassa.services.payments.refunds import refund_payment
from kassa.services.payouts import payout_states
from kassa.services.platform.ticks import run_tick
from tests.factories import make_merchant
from tests.support.billing import actor, advance, buy
from tests.support.checkout import pay_with_ach, pay_with_card, start_checkout, submit_checkout
from tests.support.checkout_flow import checkout_for, item, make_link
from tests.support.ledger import assert_ledger_matches_processor
from tests.support.payments import REFUND_FAILS_CARD

MACHINES = {
    "payment": (payment_states, Payment, PaymentStatus),
    "refund": (refund_states, Refund, RefundStatus),
    "dispute": (dispute_states, Dispute, DisputeStatus),
    "subscription": (subscription_states, Subscription, SubscriptionStatus),
    "payout": (payout_states, Payout, PayoutStatus),
    "attempt": (attempt_states, PaymentAttempt, AttemptStatus),
    "invoice": (invoice_states, Invoice, InvoiceStatus),  # V1
    "quote": (quote_states, Quote, QuoteStatus),  # V4
}
# Moves a table allows that no service makes, each with why; a walk covers its table minus these.
NOT_DRIVABLE = {
    ("payment", PaymentStatus.INCOMPLETE, PaymentStatus.PROCESSING):
        "B2: only a Stripe bank debit waits for the buyer (its bank's page) and is then submitted; the sandbox's "
        "bank debits never wait. test_k6_live_checkout drives Stripe's waiting charges",
    ("attempt", AttemptStatus.UNKNOWN, AttemptStatus.DECLINED):
        "an attempt becomes unknown only when its charge call raised something other than a decline, and the "
        "reconciler settles an unknown attempt from lookup_charge: found → succeeded, absent → failed",
}

MONDAY = datetime(2027, 2, 1, 15, 0, tzinfo=UTC)  # no US holiday in the next two weeks: plain business days
SUBSCRIBED = datetime(2027, 1, 15, 10, 0, tzinfo=UTC)  # a Friday mid-month: renewals on the 15th
DECLINED_CARD = "4000000000000002"
FRAUD_CARD = "4000000000000259"  # T5: succeeds, then a dispute opens
INQUIRY_CARD = "4000000000001976"  # T5: succeeds, then an inquiry opens (nothing withdrawn)
THREE_DS_CARD = "4000002760003184"  # B2: the bank asks for 3-D Secure (the sandbox's test authentication page)
BOUNCING_ACCOUNT = "000111111116"  # T4: accepted, fails 4 business days later


class Walk:
    """The moves seen while walking, each with the step (driver) that made it; checks after each step."""

    def __init__(self) -> None:
        self.account_id: int | None = None
        self.driver: str | None = None
        self.moves: dict[tuple[str, StrEnum, StrEnum], list[str | None]] = {}
        self.lock = threading.Lock()

    def record(self, machine: str, source: StrEnum, target: StrEnum) -> None:
        with self.lock:
            self.moves.setdefault((machine, source, target), []).append(self.driver)

    def covered(self, machine: str) -> set[tuple[StrEnum, StrEnum]]:
        return {(source, target) for name, source, target in self.moves if name == machine}

    def drivers(self, machine: str) -> str:
        return "\n".join(f"{source.value} → {target.value}: {sorted(set(map(str, drivers)))}"
                         for (name, source, target), drivers in sorted(self.moves.items(), key=str)
                         if name == machine)

    @contextmanager
    def step(self, driver: str) -> Iterator[None]:
        """One driver: its body, then a tick; afterwards the ledger and statuses equal the processor's."""
        assert self.account_id is not None
        self.driver = driver
        yield
        tick()
        assert_ledger_matches_processor(self.account_id)
        self.driver = None


def tick() -> None:
    report = run_tick()
    assert not report.failed, report.failed
    db.session.rollback()


def _replace_everywhere(monkeypatch, original: Callable, replacement: Callable) -> int:
    """Replace `original` in every kassa module that holds it (where it is defined and where imported)."""
    replaced = 0
    for module in list(sys.modules.values()):
        name = getattr(module, "__name__", "")
        if name != "kassa" and not name.startswith("kassa."):
            continue
        for attribute, value in list(vars(module).items()):
            if value is original:
                monkeypatch.setattr(module, attribute, replacement)
                replaced += 1
    return replaced


def _move_function(module) -> Callable:
    """The machine's one `move_*` (M1)."""
    [move] = [value for name, value in vars(module).items()
              if name.startswith("move_") and getattr(value, "__module__", None) == module.__name__]
    return move


def _spied_move(walk: Walk, machine: str, move: Callable) -> Callable:
    _module, model, states = MACHINES[machine]

    def spied(*args, **kwargs):
        moved_object = next(arg for arg in args if isinstance(arg, model))
        target = kwargs.get("target") or next(arg for arg in args if isinstance(arg, states))
        source = states(moved_object.status)
        moved = move(*args, **kwargs)
        if moved:
            walk.record(machine, source, states(target))
        return moved

    return spied


def _spied_update_rows(walk: Walk, update_rows: Callable) -> Callable:
    """The set-based batch's status changes: each row's status before the UPDATE and after it."""
    tables = {model.__table__.name: (machine, states) for machine, (_m, model, states) in MACHINES.items()}

    def spied(session, table, rows, *, key: str = "id") -> None:
        if table.name not in tables or not rows or "status" not in rows[0]:
            return update_rows(session, table, rows, key=key)
        machine, states = tables[table.name]
        before = dict(session.execute(select(table.c[key], table.c.status)
                                      .where(table.c[key].in_([row[key] for row in rows]))).all())
        update_rows(session, table, rows, key=key)
        for row in rows:
            if before[row[key]] != row["status"]:  # an unchanged status (a renewal staying active) is no move
                walk.record(machine, states(before[row[key]]), states(row["status"]))
        return None

    return spied


@pytest.fixture
def walk(app, monkeypatch) -> Walk:
    walk = Walk()
    for machine, (module, _model, _states) in MACHINES.items():
        move = _move_function(module)
        assert _replace_everywhere(monkeypatch, move, _spied_move(walk, machine, move)) >= 2  # defined, used
    assert _replace_everywhere(monkeypatch, bulk_sql.update_rows, _spied_update_rows(walk, bulk_sql.update_rows))
    return walk


def _paid(response) -> int:
    """The payment a checkout made."""
    assert response.status_code == 303, response.get_data(as_text=True)[:600]
    payment_id = checkout_for(response.checkout_path).payment_id
    assert payment_id is not None
    return payment_id


def _dispute_of(payment_id: int) -> int:
    db.session.rollback()
    dispute_id = db.session.scalar(select(Dispute.id).where(Dispute.payment_id == payment_id))
    assert dispute_id is not None, f"no dispute opened on payment {payment_id}"
    return dispute_id


# -- the walks, one per machine ---------------------------------------------------------------------------------


def walk_payments(walk: Walk, client, request) -> None:
    """processing → succeeded: a card checkout, and a bank debit clearing (charge.succeeded);
    processing → failed: a bank debit bouncing (charge.failed). (Renewals: the subscription walk.)
    B2: incomplete → succeeded | failed: the 3-D Secure test card, its test authentication completed or failed."""
    with time_machine.travel(MONDAY, tick=False) as clock:
        owner = make_merchant()
        link = make_link(owner, items=[item("Workshop", "40.00")], allow_ach=True)
        walk.account_id = owner.account_id
        with walk.step("card checkout (4242…): succeeds at once"):
            _paid(pay_with_card(client, link.slug))
        with walk.step("bank debit checkouts (T4 …6789 and …1116): processing"):
            _paid(pay_with_ach(client, link.slug))
            _paid(pay_with_ach(client, link.slug, account_number=BOUNCING_ACCOUNT))
        with walk.step("4 business days on: the sandbox's charge.succeeded / charge.failed at the tick"):
            clock.shift(timedelta(days=4, minutes=1))
        for answer, ends in (("complete", 303), ("fail", 422)):
            with walk.step(f"3-D Secure test card (4000…3184): incomplete, then authentication {answer}d"):
                path = start_checkout(client, link.slug)
                assert submit_checkout(client, path, card_number=THREE_DS_CARD).status_code == 202
                assert client.post(f"{path}/test-authentication", data={"answer": answer}).status_code == 303
                assert client.get(f"{path}/return").status_code == ends
        # V3: succeeded → deleted: a manual payment recorded on an invoice, deleted by the Super admin.
        from tests.support.payments import login

        login(client, owner)
        with walk.step("a manual payment recorded on an invoice, then deleted by the Super admin (V3)"):
            invoice_id = _open_invoice(client, owner)
            manual_id = _record_manual(client, invoice_id, "10.00")
            assert client.post(f"/invoices/manual-payments/{manual_id}/delete").status_code == 303
        db.session.rollback()
        statuses = sorted(db.session.scalars(select(Payment.status).where(Payment.account_id == owner.account_id)))
        assert statuses == ["deleted", "failed", "failed", "succeeded", "succeeded", "succeeded"]


def _open_invoice(client, owner) -> int:
    """V1: a finalized invoice of 93.50 EUR (tests/support/invoices.py)."""
    from tests.support.invoices import editor_form

    assert client.post("/invoices/new", data=editor_form()).status_code == 303
    db.session.rollback()
    invoice_id = db.session.scalar(select(func.max(Invoice.id)).where(Invoice.account_id == owner.account_id))
    assert client.post(f"/invoices/{invoice_id}/finalize").status_code == 303
    return invoice_id


def _record_manual(client, invoice_id: int, amount: str) -> int:
    """V3: "Record a payment" on the invoice's page (a bank transfer, today); the payment's id."""
    from kassa.clock import account_today
    from kassa.models import Account

    db.session.rollback()
    invoice = db.session.get(Invoice, invoice_id)
    today = account_today(db.session.get(Account, invoice.account_id)).isoformat()
    response = client.post(f"/invoices/{invoice_id}/payments/new",
                           data={"method": "bank_transfer", "date": today, "amount": amount, "reference": "TRF"})
    assert response.status_code == 303, response.get_data(as_text=True)[:600]
    db.session.rollback()
    return db.session.scalar(select(func.max(Payment.id)).where(Payment.invoice_id == invoice_id))


def walk_attempts(walk: Walk, client, request) -> None:
    """pending → succeeded | declined at checkout; pending → unknown when the answer is lost or times out;
    unknown → succeeded (the lookup finds the charge), unknown → failed (the reconciler finds none);
    pending → failed (the request died before charging; the reconciler, once no call can still run)."""
    faults = request.getfixturevalue("faults")
    with time_machine.travel(MONDAY, tick=False) as clock:
        owner = make_merchant()
        link = make_link(owner, items=[item("Workshop", "40.00")])
        walk.account_id = owner.account_id
        with walk.step("card checkout (4242…): succeeds"):
            _paid(pay_with_card(client, link.slug))
        with walk.step("declined card (T3 4000…0002): declined at the field"):
            assert pay_with_card(client, link.slug, card_number=DECLINED_CARD).status_code == 422
        with walk.step("charged, answer lost (fault lose_response): unknown, then the lookup finds it"):
            faults.inject("lose_response", account_id=owner.account_id)
            _paid(pay_with_card(client, link.slug))
        with walk.step("charge timed out (fault timeout): unknown; 30 s on the reconciler finds none: failed"):
            faults.inject("timeout", account_id=owner.account_id)
            assert pay_with_card(client, link.slug).status_code == 202
            clock.shift(RECONCILE_AFTER + timedelta(seconds=5))
        with walk.step("request died before the charge (crash): pending; 10 min on the reconciler: failed"):
            path = start_checkout(client, link.slug)
            faults.arm("before")
            with faults.crash_expected():
                submit_checkout(client, path)
            assert faults.fired
            faults.reset()
            db.session.remove()
            clock.shift(IN_FLIGHT_LIMIT + timedelta(seconds=5))
        db.session.rollback()
        statuses = sorted(db.session.scalars(select(PaymentAttempt.status)
                                             .where(PaymentAttempt.account_id == walk.account_id)))
        assert statuses == ["declined", "failed", "failed", "succeeded", "succeeded"]


def walk_refunds(walk: Walk, client, request) -> None:
    """pending → succeeded (refund.succeeded a minute on); pending → failed (T5's refund-failing card)."""
    with time_machine.travel(MONDAY, tick=False) as clock:
        owner = make_merchant()
        link = make_link(owner, items=[item("Workshop", "40.00")])
        walk.account_id = owner.account_id
        with walk.step("card checkouts: 4242… and the refund-failing card 4000…5126"):
            payments = [_paid(pay_with_card(client, link.slug)),
                        _paid(pay_with_card(client, link.slug, card_number=REFUND_FAILS_CARD))]
        with walk.step("the merchant refunds part of each (F1): pending at the sandbox"):
            for payment_id in payments:
                refund_payment(actor(owner), payment_id, amount_text="15.00", reason="requested_by_customer",
                               note="", locale="en")
        with walk.step("a minute on: refund.succeeded / refund.failed at the tick"):
            clock.shift(timedelta(minutes=2))
        db.session.rollback()
        statuses = [db.session.scalar(select(Refund.status).where(Refund.payment_id == p)) for p in payments]
        assert statuses == ["succeeded", "failed"]


def _answer(owner, dispute_id: int, evidence: str) -> None:
    save_draft(actor(owner), dispute_id, "evidence", {"additional_information": evidence})
    submit_evidence(actor(owner), dispute_id)


def walk_disputes(walk: Walk, client, request) -> None:
    """needs response → under review (evidence submitted) → won | lost (the sandbox's magic evidence);
    needs response → lost (accepted by the merchant; and unanswered by the deadline); needs response → won
    (the decision arrives while the answer's reply was lost); an inquiry answered and won (books nothing)."""
    faults = request.getfixturevalue("faults")
    with time_machine.travel(MONDAY, tick=False) as clock:
        owner = make_merchant()
        link = make_link(owner, items=[item("Concert ticket", "25.00")])
        walk.account_id = owner.account_id
        with walk.step("dispute cards (T5 4000…0259 ×5, inquiry 4000…1976): disputes open at the tick"):
            payments = [_paid(pay_with_card(client, link.slug, card_number=card))
                        for card in [FRAUD_CARD] * 5 + [INQUIRY_CARD]]
        won, lost, accepted, lost_reply, unanswered, inquiry = map(_dispute_of, payments)
        with walk.step("evidence submitted (winning_evidence, losing_evidence, inquiry: winning_evidence)"):
            _answer(owner, won, "winning_evidence")
            _answer(owner, lost, "losing_evidence")
            _answer(owner, inquiry, "winning_evidence")
        with walk.step("the merchant accepts a dispute (D5)"):
            accept(actor(owner), accepted)
        with walk.step("evidence reached the sandbox but its reply was lost: still needs response"):
            faults.arm("lost")
            with pytest.raises(Conflict):
                _answer(owner, lost_reply, "winning_evidence")
            assert faults.fired
        with walk.step("two minutes on: the sandbox's dispute.won / dispute.lost at the tick"):
            clock.shift(timedelta(minutes=2))
        with walk.step("eight days on: the unanswered dispute's deadline passed (dispute.lost)"):
            clock.shift(timedelta(days=8))
        db.session.rollback()
        assert [db.session.get(Dispute, d).status for d in (won, lost, accepted, lost_reply, unanswered, inquiry)] \
            == ["won", "lost", "lost", "won", "lost", "won"]


def walk_subscriptions(walk: Walk, client, request) -> None:
    """On the account's test clock (T5), with the saved test card set to decline or succeed: active → past due
    (a declined renewal), past due → past due (a declined retry), past due → active (a retry paid), active →
    completed and past due → completed (a fixed term's last period paid, on time or by a retry), past due →
    cancelled (the retries ran out), active → cancelled (the merchant cancels, S2). Q9: free trials: trialing →
    active (the first charge at the trial's end), trialing → past due (declined), trialing → cancelled (the
    merchant cancels during the trial)."""
    with time_machine.travel(SUBSCRIBED, tick=False):
        owner = make_merchant()
        fixed = make_link(owner, items=[item("Lessons", "10.00", frequency="monthly", term_type="fixed",
                                             term_count="2")])
        renewing = make_link(owner, items=[item("Club", "8.00", frequency="monthly", term_type="auto_renew")])
        trial = make_link(owner, items=[item("Club", "8.00", frequency="monthly", term_type="auto_renew")],
                          trial_days="7")
        walk.account_id = owner.account_id
        with walk.step("subscription checkouts: two of a two-month term, two renewing"):
            retried, on_time = buy(client, fixed), buy(client, fixed)
            exhausted, recovered = buy(client, renewing), buy(client, renewing)
        with walk.step("Q9 trial checkouts (nothing charged); one cancelled during its trial"):
            trial_paid, trial_declined, trial_cancelled = (buy(client, trial), buy(client, trial),
                                                           buy(client, trial))
            cancel(actor(owner), trial_cancelled.id, "now")
        with walk.step("Q9: the trials end (Jan 22): one first charge paid, one declined"):
            set_test_card_behaviour(actor(owner), trial_declined.id, True)
            advance(owner, trial_paid, to_date=date(2027, 1, 22))
            advance(owner, trial_declined, to_date=date(2027, 1, 22))
        with walk.step("cards set to decline; the renewals fall due (Feb 15)"):
            for sub in (retried, exhausted, recovered):
                set_test_card_behaviour(actor(owner), sub.id, True)
            advance(owner, to_date=date(2027, 2, 15))
        with walk.step("one card succeeds again; the first retries fall due (Feb 16)"):
            set_test_card_behaviour(actor(owner), recovered.id, False)
            advance(owner, to_date=date(2027, 2, 16))
        with walk.step("the fixed term's card succeeds again; the second retries fall due (Feb 19)"):
            set_test_card_behaviour(actor(owner), retried.id, False)
            advance(owner, to_date=date(2027, 2, 19))
        with walk.step("the last retry is declined too (Feb 24)"):
            advance(owner, to_date=date(2027, 2, 24))
        with walk.step("the merchant cancels a subscription now (S2)"):
            cancel(actor(owner), recovered.id, "now")
        db.session.rollback()
        assert [db.session.get(Subscription, s.id).status for s in (retried, on_time, exhausted, recovered)] == [
            "completed", "completed", "cancelled", "cancelled"]
        assert [db.session.get(Subscription, s.id).status for s in (trial_paid, trial_declined, trial_cancelled)] \
            == ["active", "cancelled", "cancelled"]  # the declined trial ran out of retries by Feb 24


def walk_payouts(walk: Walk, client, request) -> None:
    """pending → in transit (the day's payout is sent), in transit → paid (it arrives the next business day),
    in transit → failed (the bank refuses it: its funds return to the balance and go out again)."""
    refuse_next_payout = request.getfixturevalue("refuse_next_payout")
    with time_machine.travel(MONDAY, tick=False) as clock:
        owner = make_merchant()
        link = make_link(owner, items=[item("Workshop", "100.00")])
        walk.account_id = owner.account_id
        with walk.step("card checkout on Monday"):
            _paid(pay_with_card(client, link.slug))
        with walk.step("Wednesday: available, the day's payout is made and sent"):
            clock.move_to(MONDAY + timedelta(days=2, hours=1))
        with walk.step("Thursday: it arrives"):
            clock.move_to(MONDAY + timedelta(days=3, hours=1))
        with walk.step("card checkout on Thursday; the bank will refuse the next payout"):
            _paid(pay_with_card(client, link.slug))
            refuse_next_payout(owner.account_id)
        with walk.step("next Monday: its payout is sent"):
            clock.move_to(MONDAY + timedelta(days=7, hours=1))
        with walk.step("Tuesday: the bank refuses it; its funds are back in the balance"):
            clock.move_to(MONDAY + timedelta(days=8, hours=1))
        with walk.step("Wednesday: the returned funds go out again"):
            clock.move_to(MONDAY + timedelta(days=9, hours=1))
        db.session.rollback()
        statuses = list(db.session.scalars(select(Payout.status).where(Payout.account_id == owner.account_id)
                                           .order_by(Payout.id)))
        assert statuses == ["paid", "failed", "in_transit"]


def walk_invoices(walk: Walk, client, request) -> None:
    """V1: draft → open (finalize: its number), open → void (with a reason), open → uncollectible, and
    uncollectible → void, each through the merchant's pages. V3: every paying move and its way back, by
    manual payments recorded and deleted on the invoice's page."""
    from tests.support.invoices import editor_form
    from tests.support.payments import login

    owner = make_merchant()
    login(client, owner)
    walk.account_id = owner.account_id
    ids = []
    for _ in range(2):
        assert client.post("/invoices/new", data=editor_form()).status_code == 303
        db.session.rollback()
        ids.append(db.session.scalar(select(func.max(Invoice.id)).where(Invoice.account_id == owner.account_id)))
    with walk.step("finalize two drafts"):
        for invoice_id in ids:
            assert client.post(f"/invoices/{invoice_id}/finalize").status_code == 303
    with walk.step("void the first with a reason"):
        assert client.post(f"/invoices/{ids[0]}/void", data={"reason": "Wrong customer"}).status_code == 303
    with walk.step("mark the second uncollectible, then void it"):
        assert client.post(f"/invoices/{ids[1]}/uncollectible").status_code == 303
        assert client.post(f"/invoices/{ids[1]}/void", data={"reason": "Written off"}).status_code == 303
    db.session.rollback()
    assert list(db.session.scalars(select(Invoice.number).where(Invoice.id.in_(ids)).order_by(Invoice.id))) == [1, 2]
    # V3: manual payments (of 93.50 EUR invoices) pay them, in part or in full; deleting them moves them back.
    with walk.step("three more invoices finalized"):
        paid_in_parts, paid_at_once, written_off = (_open_invoice(client, owner) for _ in range(3))
    with walk.step("manual payments: open → partially paid → partially paid → paid"):
        parts = [_record_manual(client, paid_in_parts, amount) for amount in ("30.00", "20.00", "43.50")]
    with walk.step("deleting them: paid → partially paid → partially paid → open"):
        for payment_id in parts:
            assert client.post(f"/invoices/manual-payments/{payment_id}/delete").status_code == 303
    with walk.step("a manual payment of the whole amount (open → paid), deleted (paid → open)"):
        whole = _record_manual(client, paid_at_once, "93.50")
        assert client.post(f"/invoices/manual-payments/{whole}/delete").status_code == 303
    with walk.step("partially paid → uncollectible → partially paid → paid"):
        _record_manual(client, written_off, "10.00")
        assert client.post(f"/invoices/{written_off}/uncollectible").status_code == 303
        _record_manual(client, written_off, "10.00")
        assert client.post(f"/invoices/{written_off}/uncollectible").status_code == 303
        _record_manual(client, written_off, "73.50")
    db.session.rollback()
    assert [db.session.get(Invoice, i).status for i in (paid_in_parts, paid_at_once, written_off)] == [
        "open", "open", "paid"]
    # Back to open is no new finalize: each keeps the number it was given (the series has no gap, no repeat).
    assert [db.session.get(Invoice, i).number for i in (paid_in_parts, paid_at_once, written_off)] == [3, 4, 5]


def _quote(client, owner) -> int:
    """V4: a draft quote of one line, 120.00 USD (a bank debit can pay it), written on the merchant's editor."""
    form = {"customer_email": "anna@example.com", "customer_name": "Anna de Vries", "company_name": "",
            "language": "en", "currency": "USD", "issue_date": "2027-02-01", "expiry_date": "2027-03-01",
            "notes": "", "terms": "", "lines-0-description": "Website setup", "lines-0-quantity": "1",
            "lines-0-unit_price": "120.00", "lines-0-frequency": "one_time", "action": "save"}
    response = client.post("/quotes/new", data=form)
    assert response.status_code == 303, response.get_data(as_text=True)[:600]
    db.session.rollback()
    return db.session.scalar(select(func.max(Quote.id)).where(Quote.account_id == owner.account_id))


def _quote_page(quote_id: int) -> str:
    from kassa.services.checkout.quote_checkout import quote_token

    return f"/quote/{quote_token(db.session.get(Quote, quote_id))}"


def _pay_quote(buyer, quote_id: int, method: str) -> None:
    """V4: "Pay now" on the accepted quote's page, then the buyer's form on Kassa's checkout."""
    from tests.support.checkout import buyer_form, path_of

    response = buyer.post(f"{_quote_page(quote_id)}/pay")
    assert response.status_code == 303, response.get_data(as_text=True)[:600]
    paid = buyer.post(path_of(response.headers["Location"]), data=buyer_form(method))
    assert paid.status_code == 303, paid.get_data(as_text=True)[:600]


def walk_quotes(walk: Walk, client, request) -> None:
    """V4: draft → open (the merchant finalizes: its number), open → accepted (the buyer accepts on the quote's
    page), open → declined (the buyer declines there), open → void and accepted → void (the merchant voids),
    accepted → paid (paid through Kassa's checkout: by card at once, and by a bank debit when it clears at the
    tick; while that debit is on its way the quote can't be voided)."""
    from kassa.processors import registry
    from tests.support.payments import login

    request.getfixturevalue("app").config["KASSA_LIVE_PROCESSOR"] = registry.sandbox  # quotes are paid live
    with time_machine.travel(MONDAY, tick=False) as clock:
        owner = make_merchant()
        login(client, owner)
        walk.account_id = owner.account_id
        buyer = request.getfixturevalue("app").test_client()
        by_card, by_debit, declined, voided_open, voided_accepted = (_quote(client, owner) for _ in range(5))
        ids = (by_card, by_debit, declined, voided_open, voided_accepted)
        with walk.step("the merchant finalizes five drafts"):
            for quote_id in ids:
                assert client.post(f"/quotes/{quote_id}/finalize").status_code == 303
        with walk.step("the buyer accepts three on the quote's page (name and the ticked box)"):
            for quote_id in (by_card, by_debit, voided_accepted):
                accepted = buyer.post(f"{_quote_page(quote_id)}/accept", data={"name": "Anna", "agree": "y"})
                assert accepted.status_code == 200, accepted.get_data(as_text=True)[:600]
        with walk.step("the buyer declines one"):
            assert buyer.post(f"{_quote_page(declined)}/decline").status_code == 200
        with walk.step("the merchant voids an open quote and an accepted one"):
            for quote_id in (voided_open, voided_accepted):
                assert client.post(f"/quotes/{quote_id}/void").status_code == 303
        with walk.step("paid by card through the checkout: paid at once"):
            _pay_quote(buyer, by_card, "card")
        with walk.step("paid by bank debit (T4 …6789): processing, so the merchant can't void it"):
            _pay_quote(buyer, by_debit, "ach")
            assert client.post(f"/quotes/{by_debit}/void").status_code == 303  # refused: a flash, nothing moves
            db.session.rollback()
            assert db.session.get(Quote, by_debit).status == "accepted"
        with walk.step("4 business days on: the sandbox's charge.succeeded at the tick pays the quote"):
            clock.shift(timedelta(days=4, minutes=1))
        db.session.rollback()
        assert [db.session.get(Quote, q).status for q in ids] == ["paid", "paid", "declined", "void", "void"]
        assert sorted(db.session.get(Quote, q).number for q in ids) == [1, 2, 3, 4, 5]


WALKS = {
    "payment": walk_payments,
    "attempt": walk_attempts,
    "refund": walk_refunds,
    "dispute": walk_disputes,
    "subscription": walk_subscriptions,
    "payout": walk_payouts,
    "invoice": walk_invoices,
    "quote": walk_quotes,
}


@pytest.mark.parametrize("machine", list(WALKS))
def test_m1_every_transition_is_driven_through_the_services_with_the_ledger_equal_to_the_processor(
        machine, walk, client, request):
    """M1 (b): the machine's walk makes every move its TRANSITIONS allows (except those no service makes,
    NOT_DRIVABLE), through the services and the sandbox, and after each step the ledger = the processor."""
    WALKS[machine](walk, client, request)
    table, _model, _states = MACHINES[machine]
    expected = set(table.TRANSITIONS) - {(s, t) for m, s, t in NOT_DRIVABLE if m == machine}
    assert walk.covered(machine) == expected, walk.drivers(machine)
    assert None not in {d for (m, _s, _t), drivers in walk.moves.items() for d in drivers}, "a move outside a step"


def test_m1_every_money_machine_has_a_walk():
    """M1: every `*_states` module under kassa.services is a machine here, walked; what can't be driven is
    still in its table (so NOT_DRIVABLE can't go stale)."""
    found = set()
    for info in pkgutil.walk_packages(kassa.services.__path__, "kassa.services."):
        if info.name.rsplit(".", 1)[-1].endswith("_states"):
            module = importlib.import_module(info.name)
            assert getattr(module, "TRANSITIONS", None), info.name
            found.add(module)
    assert found == {module for module, _model, _states in MACHINES.values()}
    assert set(WALKS) == set(MACHINES)
    for machine, source, target in NOT_DRIVABLE:
        assert (source, target) in MACHINES[machine][0].TRANSITIONS
