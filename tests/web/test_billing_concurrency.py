"""Exactly once (S1, issue 8): one charge per subscription period even when two ticks run at the same moment,
and no lost or doubled charge when a tick dies between the processor's "yes" and the database commit.

Both run on SQLite and PostgreSQL (the `app` fixture is parametrized over both).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Payment, SandboxRecord, Subscription
from kassa.processors.registry import sandbox
from kassa.processors.sandbox import SandboxProcessor
from kassa.services.billing import billing
from kassa.services.platform.ticks import run_tick
from tests.support.billing import (
    BUYER,
    buy,
    emails_of,
    frozen,
    reload,
    renewals_of,
    sandbox_charge_count,
    subscription_shop,
)
from tests.support.checkout_flow import count
from tests.support.concurrency import at_once

CARDS = ["4242424242424242", "4000056655665556", "5555555555554444", "2223003122003222", "5200828282828210",
         "5105105105105100"]


def _clock_to(account_id: int, moment: datetime) -> None:
    """Put the test clocks of the account's test subscriptions (B9) at `moment` without running anything (a
    tick runs later)."""
    with write_transaction(db.session) as session:
        session.execute(update(Subscription).where(Subscription.account_id == account_id,
                                                   Subscription.mode == "test")
                        .values(clock_offset_seconds=int((moment - now()).total_seconds())))


def _two_ticks_at_once(app) -> list[int]:
    """Two workers tick at the same instant, each with its own app context and database session."""
    return at_once(app, billing.bill_due_subscriptions)


def _payments_per_period(subscription_ids: list[int]) -> dict[tuple[int, int], list[str]]:
    db.session.rollback()
    found: dict[tuple[int, int], list[str]] = {}
    for payment in db.session.scalars(select(Payment).where(Payment.subscription_id.in_(subscription_ids),
                                                            Payment.source == "subscription")):
        found.setdefault((payment.subscription_id, payment.subscription_period), []).append(payment.status)
    return found


def test_s1_two_ticks_at_the_same_time_never_charge_a_period_twice(client, app):
    buyers = 6
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew", price="7.00")
        # One card each: the card-testing guard allows a card three uses a day.
        subs = [buy(client, link, email=f"buyer{n}@example.com", card_number=card).id
                for n, card in enumerate(CARDS[:buyers])]
        assert sandbox_charge_count(owner.account_id) == buyers

        for month, due in enumerate([datetime(2027, 2, 15, 10, 0, 30, tzinfo=UTC),
                                     datetime(2027, 3, 15, 10, 0, 30, tzinfo=UTC),
                                     datetime(2027, 4, 15, 10, 0, 30, tzinfo=UTC)], start=1):
            _clock_to(owner.account_id, due)

            _two_ticks_at_once(app)

            periods = _payments_per_period(subs)
            assert set(periods) == {(sub_id, period) for sub_id in subs for period in range(1, month + 1)}
            assert all(statuses == ["succeeded"] for statuses in periods.values()), periods
            # The processor moved money once per period: its own records say so.
            assert sandbox_charge_count(owner.account_id) == buyers * (month + 1)
            assert count(SandboxRecord, SandboxRecord.key.like(f"idem:charge:{owner.account_id}:sub-%")) == \
                buyers * month
            assert len([e for e in emails_of("receipt", "@example.com")]) == buyers * (month + 1)
            for sub_id in subs:
                sub = reload(sub_id)
                assert (sub.status, sub.payments_made) == ("active", month + 1)
        receipt_numbers = db.session.scalars(select(Payment.receipt_number).where(
            Payment.account_id == owner.account_id)).all()
        assert sorted(receipt_numbers) == list(range(1, buyers * 4 + 1))  # gap-free, no duplicates


def test_s1_a_tick_started_while_another_is_charging_does_not_charge_again(client, app, monkeypatch):
    """The second tick arrives while the first is inside the processor call for the same period."""
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)
        _clock_to(owner.account_id, datetime(2027, 2, 15, 10, 0, 30, tzinfo=UTC))

        inside, release = threading.Event(), threading.Event()
        create_charge = SandboxProcessor._create_charge
        second: dict[str, object] = {}

        def slow_create_charge(self, request, *args):
            # The first tick stops inside the processor, after it took the request and before it answered.
            if request.idempotency_key.startswith("sub-") and not inside.is_set():
                inside.set()
                assert release.wait(timeout=60)
            return create_charge(self, request, *args)

        monkeypatch.setattr(SandboxProcessor, "_create_charge", slow_create_charge)

        def first_tick() -> int:
            with app.app_context():
                try:
                    return billing.bill_due_subscriptions()
                finally:
                    db.session.remove()

        def second_tick() -> None:
            with app.app_context():
                try:
                    second["done"] = billing.bill_due_subscriptions()
                finally:
                    db.session.remove()

        with ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(first_tick)
            assert inside.wait(timeout=60)
            later = pool.submit(second_tick)
            try:
                later.result(timeout=60)
            finally:
                release.set()
            first.result(timeout=60)

        assert second["done"] == 0  # the second tick was told to retry later, and charged nothing
        assert _payments_per_period([sub.id]) == {(sub.id, 1): ["succeeded"]}
        assert sandbox_charge_count(owner.account_id) == 2
        assert len(emails_of("receipt")) == 2
        assert reload(sub).payments_made == 2


# -- a crash between the charge and the commit ------------------------------------------------------------


def _one_renewal_after_restart(owner, sub) -> None:
    report = run_tick()  # the next tick (a restarted worker) finishes the job
    assert not report.failed, report.failed
    run_tick()  # and one more changes nothing

    assert _payments_per_period([sub.id]) == {(sub.id, 1): ["succeeded"]}
    assert sandbox_charge_count(owner.account_id) == 2  # the checkout's and this period's: none lost, none doubled
    receipts = emails_of("receipt")
    assert len(receipts) == 2
    (renewal,) = renewals_of(sub)
    assert receipts[-1].related_id == renewal.id
    sub = reload(sub)
    assert (sub.status, sub.payments_made) == ("active", 2)
    assert sub.next_charge_at == datetime(2027, 3, 15, 10, tzinfo=UTC)


def test_s1_crash_between_charge_and_commit_then_next_tick_records_the_same_charge_once(client, app, monkeypatch):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)
        _clock_to(owner.account_id, datetime(2027, 2, 15, 10, 0, 30, tzinfo=UTC))
        real_record_successes = billing.record_successes
        crashing = [True]

        def crash_during_the_first_tick(successes):
            if crashing[0]:
                raise RuntimeError("worker killed after the processor said yes")
            return real_record_successes(successes)

        monkeypatch.setattr(billing, "record_successes", crash_during_the_first_tick)

        report = run_tick()
        crashing[0] = False

        # H1: the failure is the subscription's, not the whole task's: it is skipped (the batch and then the
        # subscription alone both failed), counted, and left for the next tick.
        assert report.skipped == {"subscription_billing": 1} and not report.failed
        assert _payments_per_period([sub.id]) == {(sub.id, 1): ["processing"]}
        assert sandbox_charge_count(owner.account_id) == 2  # the money moved
        assert len(emails_of("receipt")) == 1
        assert reload(sub).payments_made == 1

        _one_renewal_after_restart(owner, sub)


@pytest.mark.parametrize("fault", ["error_after_success", "lose_response", "timeout"])
def test_s1_processor_fault_on_a_renewal_is_retried_by_the_next_tick_without_a_second_charge(
        client, app, faults, fault):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)
        _clock_to(owner.account_id, datetime(2027, 2, 15, 10, 0, 30, tzinfo=UTC))
        faults.inject(fault, account_id=owner.account_id)

        report = run_tick()

        assert not report.failed, report.failed
        assert _payments_per_period([sub.id]) == {(sub.id, 1): ["processing"]}
        assert sandbox_charge_count(owner.account_id) == (1 if fault == "timeout" else 2)
        assert reload(sub).status == "active"  # an unknown outcome is not a decline

        _one_renewal_after_restart(owner, sub)


def test_s1_crash_while_recording_a_decline_then_next_tick_fails_it_once(client, app, monkeypatch):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)
        with write_transaction(db.session) as session:
            token = session.get(Subscription, sub.id).payment_method_token
        sandbox().set_payment_method_behaviour(owner.account_id, token, "decline")
        _clock_to(owner.account_id, datetime(2027, 2, 15, 10, 0, 30, tzinfo=UTC))
        real_record_failures = billing.record_failures
        crashes = []

        def crash_once(failures):
            if not crashes:
                crashes.append(failures)
                raise RuntimeError("worker killed after the decline")
            return real_record_failures(failures)

        monkeypatch.setattr(billing, "record_failures", crash_once)

        run_tick()
        run_tick()
        run_tick()

        assert _payments_per_period([sub.id]) == {(sub.id, 1): ["failed"]}
        assert len(emails_of("subscription_payment_failed")) == 1
        sub = reload(sub)
        assert (sub.status, sub.failed_attempts) == ("past_due", 1)
        assert db.session.scalar(select(func.count()).select_from(Payment).where(
            Payment.buyer_email == BUYER)) == 2


# -- a tick always gets through what is due -----------------------------------------------------------------


def test_s1_a_tick_gets_past_a_whole_batch_whose_charges_get_no_answer(client, app, faults, monkeypatch):
    """Issue 8: a batch of subscriptions the processor keeps answering "unavailable" must not stop a tick
    before the subscriptions after it (with batches of 2, the first batch gets no answer)."""
    monkeypatch.setattr(billing, "BATCH", 2)
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        subs = [buy(client, link, email=f"buyer{n}@example.com", card_number=card).id
                for n, card in enumerate(CARDS[:4])]
        _clock_to(owner.account_id, datetime(2027, 2, 15, 10, 0, 30, tzinfo=UTC))
        faults.inject("timeout", times=2, account_id=owner.account_id)

        assert billing.bill_due_subscriptions() == 2

        statuses = sorted(s for found in _payments_per_period(subs).values() for s in found)
        assert statuses == ["processing", "processing", "succeeded", "succeeded"]
        assert billing.bill_due_subscriptions() == 2  # the next tick charges the two left waiting
        assert all(found == ["succeeded"] for found in _payments_per_period(subs).values())
        assert sandbox_charge_count(owner.account_id) == 8


def test_s1_one_tick_catches_up_on_every_period_that_fell_due_while_no_tick_ran(client, app, monkeypatch):
    monkeypatch.setattr(billing, "BATCH", 2)
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        subs = [buy(client, link, email=f"buyer{n}@example.com", card_number=card).id
                for n, card in enumerate(CARDS[:3])]
        _clock_to(owner.account_id, datetime(2027, 4, 15, 10, 0, 30, tzinfo=UTC))

        assert billing.bill_due_subscriptions() == 9

        assert _payments_per_period(subs) == {(sub_id, period): ["succeeded"] for sub_id in subs
                                              for period in (1, 2, 3)}
        assert {(reload(sub_id).payments_made, reload(sub_id).next_charge_at) for sub_id in subs} == {
            (4, datetime(2027, 5, 15, 10, 0, tzinfo=UTC))}


@pytest.mark.parametrize("workers", [1, 3])
def test_s1_r5_batches_billed_side_by_side_charge_each_period_once_with_gap_free_receipt_numbers(
        client, app, monkeypatch, workers):
    """On PostgreSQL a tick bills several batches at once (KASSA_BILLING_WORKERS); the outcome must be the same
    as one batch after another: every period charged once, receipt numbers 1..n without a gap or a repeat."""
    monkeypatch.setattr(billing, "BATCH", 2)
    monkeypatch.setitem(app.config, "KASSA_BILLING_WORKERS", workers)
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        subs = [buy(client, link, email=f"buyer{n}@example.com", card_number=card).id
                for n, card in enumerate(CARDS)]
        _clock_to(owner.account_id, datetime(2027, 3, 15, 10, 0, 30, tzinfo=UTC))

        assert billing.bill_due_subscriptions() == 2 * len(CARDS)

        assert _payments_per_period(subs) == {(sub_id, period): ["succeeded"] for sub_id in subs
                                              for period in (1, 2)}
        assert sandbox_charge_count(owner.account_id) == 3 * len(CARDS)
        numbers = sorted(db.session.scalars(select(Payment.receipt_number).where(
            Payment.account_id == owner.account_id, Payment.receipt_number.is_not(None))))
        assert numbers == list(range(1, 3 * len(CARDS) + 1))


def test_s1_due_subscriptions_of_every_account_come_from_one_query_each_on_its_own_test_clock(client, app):
    from sqlalchemy import event

    with frozen():
        shops = [subscription_shop(f"Shop {n}", frequency="monthly", term_type="auto_renew") for n in range(3)]
        subs = [buy(client, link, email=f"buyer{n}@example.com", card_number=CARDS[n]).id
                for n, (_owner, link) in enumerate(shops)]
        # Each subscription's test clock (B9): exactly at the renewal (due), a day short of it, months past it.
        for (owner, _link), moment in zip(shops, [datetime(2027, 2, 15, 10, 0, tzinfo=UTC),
                                                  datetime(2027, 2, 14, 10, 0, tzinfo=UTC),
                                                  datetime(2027, 6, 1, 12, 0, tzinfo=UTC)], strict=True):
            _clock_to(owner.account_id, moment)
        statements: list[str] = []

        def record(conn, cursor, statement, *args):
            if "subscriptions" in statement:
                statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            due = billing.due_subscriptions()
        finally:
            event.remove(db.engine, "before_cursor_execute", record)

        assert [sub_id for _at, sub_id in due] == [subs[0], subs[2]]
        assert len(statements) == 1


# -- receipts are written by the worker, once -------------------------------------------------------------


def test_e2_a_renewals_receipt_is_queued_once_and_written_once_even_if_its_job_runs_twice(client, app):
    from kassa.models import OutboxMessage
    from kassa.services.billing.billing_outcomes import RECEIPT_JOB, write_renewal_receipt

    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)
        _clock_to(owner.account_id, datetime(2027, 2, 15, 10, 0, 30, tzinfo=UTC))
        run_tick()
        run_tick()
        (renewal,) = renewals_of(sub)

        # A worker that wrote it and died before marking the job done; then the job runs again.
        write_renewal_receipt({"payment_id": renewal.id})
        write_renewal_receipt({"payment_id": renewal.id})

        receipts = emails_of("receipt")
        assert [r.related_id for r in receipts] == [sub.first_payment_id, renewal.id]
        assert count(OutboxMessage, OutboxMessage.kind == RECEIPT_JOB) == 1
