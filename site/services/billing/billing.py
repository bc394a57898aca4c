"""Subscriptions that bill themselves (S1–S3): one charge per period, exactly once, on the subscription's clock.

A tick bills what is due in batches, each in the checkout's three steps: the batch's payment rows are
written first (billing_claims: unique per subscription, period and attempt, so two ticks racing can't both
create one), then the saved cards are charged with those rows' idempotency keys, then the answers are
recorded (billing_outcomes). If a tick dies in between, the next one finds the rows still processing and
charges again with the same keys: the processor returns the charges it already made instead of new ones.
"""

from __future__ import annotations

import logging
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import String, case, cast, func, literal, literal_column, select, tuple_
from sqlalchemy.exc import IntegrityError

from kassa.clock import now
from kassa.database import UTCDateTime, dialect_name
from kassa.extensions import db
from kassa.models import Mode, Subscription
from kassa.processors.base import CardDeclined, ChargeResult, ProcessorError, ProcessorUnavailable
from kassa.processors.registry import NoLiveProcessor, processor_for
from kassa.services.billing.billing_claims import Charge, claim_charges
from kassa.services.billing.billing_outcomes import record_failures, record_successes
from kassa.services.billing.billing_rows import BILLABLE, subscription_subjects
from kassa.services.platform.ticks import for_tick_account, item_failed

__all__ = ["BATCH", "BILLABLE", "bill", "bill_batch", "bill_due_subscriptions", "billing_workers", "clock_due_by",
           "due_subscriptions", "moved", "subscription_subjects"]

log = logging.getLogger(__name__)
BATCH = 500


# -- what is due --------------------------------------------------------------------------------------


def due_subscriptions(after: tuple[datetime, int] | None = None, limit: int | None = None) -> list[tuple[datetime, int]]:
    """(next charge, id) of due subscriptions, oldest first, after the `after` position: one query for every
    account, each subscription on its own clock (B9: a test subscription on its own test clock, live ones on
    real time)."""
    at = now()
    sub = Subscription
    due_by = clock_due_by(at)
    # The latest any subscription's clock can be (the largest offset, read off its index): an index range to
    # scan instead of every subscription's future. With no test clock moved it is real time itself.
    horizon = moved(at, select(func.max(sub.clock_offset_seconds)).scalar_subquery())
    query = (select(sub.next_charge_at, sub.id)
             .where(sub.status.in_(BILLABLE), sub.next_charge_at <= horizon, sub.next_charge_at <= due_by,
                    for_tick_account(sub.account_id))
             .order_by(sub.next_charge_at, sub.id).limit(limit or BATCH))
    if after is not None:
        # A row-value comparison: both databases seek ix_subscriptions_next_charge straight to the position.
        query = query.where(sub.next_charge_at >= after[0], tuple_(sub.next_charge_at, sub.id) > tuple_(*after))
    rows = db.session.execute(query).tuples().all()
    db.session.rollback()  # hold no snapshot (nor, on SQLite, a read lock) while the batch is billed
    return rows


def clock_due_by(at: datetime):
    """SQL for `at` on each subscription's own clock (B9): `at` plus a test subscription's offset; `at` itself
    for a live one, whatever its column says."""
    sub = Subscription
    return case((sub.mode == Mode.TEST.value, moved(at, sub.clock_offset_seconds)), else_=literal(at, UTCDateTime()))


def moved(at: datetime, seconds):
    """`at` plus an SQL number of seconds, comparable with a UTCDateTime column on both databases."""
    if dialect_name(db.session) == "postgresql":
        return literal(at, UTCDateTime()) + func.coalesce(seconds, 0) * literal_column("interval '1 second'")
    # SQLite keeps these columns as 'YYYY-MM-DD HH:MM:SS.ffffff' text in UTC: move the whole seconds with
    # strftime and keep the microseconds as they are, so the text compares exactly.
    whole = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    modifier = cast(func.coalesce(seconds, 0), String).op("||")(" seconds")
    return func.strftime("%Y-%m-%d %H:%M:%S", whole, modifier).op("||")(f".{at.microsecond:06d}")


# -- the tick ---------------------------------------------------------------------------------------------


def bill_due_subscriptions() -> int:
    """Charge everything due, until nothing due is left: a tick catches up on several periods at once.
    Returns the charges made (succeeded or declined)."""
    charged, waiting = 0, set()
    while made := _billing_pass(waiting):
        charged += made
    return charged


def _billing_pass(waiting: set[int]) -> int:
    """One scan over what is due, oldest first, batch after batch. The scan moves forward past every batch,
    so subscriptions whose charges are pending (the processor didn't answer; they go into `waiting` and wait
    for the next tick) can never hold up the ones after them, however many they are. Returns the charges
    made: when there were any, a period charged may be due again (catching up), so another pass follows."""
    charged, position = 0, None
    with _Batches(billing_workers()) as batches:
        while batch := due_subscriptions(after=position):
            position = batch[-1]
            sub_ids = [sub_id for _due, sub_id in batch if sub_id not in waiting]
            if sub_ids:
                batches.bill(sub_ids)
    for outcomes in batches.outcomes:
        waiting |= {sub_id for sub_id, outcome in outcomes.items() if outcome == "pending"}
        charged += sum(outcome in ("succeeded", "failed") for outcome in outcomes.values())
    return charged


def billing_workers() -> int:
    """Batches billed side by side: on PostgreSQL one batch's database work overlaps another's Python work
    (claims skip rows another batch holds, so they never share a subscription); SQLite takes one writer at a
    time, so there a second batch would only wait."""
    if dialect_name(db.session) != "postgresql":
        return 1
    return max(1, int(current_app.config.get("KASSA_BILLING_WORKERS", 1)))


class _Batches:
    """Bills batches in the calling thread (one worker) or on a few threads, each in its own app context and
    so its own session; at most two batches per thread wait their turn, so the scan can't run far ahead."""

    def __init__(self, workers: int) -> None:
        self.workers, self.outcomes = workers, []
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="billing") if workers > 1 else None
        self._pending: list[Future] = []

    def bill(self, sub_ids: list[int]) -> None:
        if self._pool is None:
            self.outcomes.append(bill_batch_isolated(sub_ids))
            return
        while len(self._pending) >= 2 * self.workers:
            self._collect(wait(self._pending, return_when=FIRST_COMPLETED).done)
        self._pending.append(self._pool.submit(_in_app_context, current_app._get_current_object(), sub_ids))

    def _collect(self, done) -> None:
        for future in done:
            self._pending.remove(future)
            self.outcomes.append(future.result())  # bill_batch_isolated keeps item errors inside the batch

    def __enter__(self) -> _Batches:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._pool is not None:
            try:
                self._collect(wait(self._pending).done)
            finally:
                self._pool.shutdown(wait=True)


def _in_app_context(app, sub_ids: list[int]) -> dict[int, str]:
    with app.app_context():
        try:
            return bill_batch_isolated(sub_ids)
        finally:
            db.session.remove()


def bill_batch_isolated(sub_ids: list[int]) -> dict[int, str]:
    """`bill_batch`, but one subscription that can't be billed doesn't stop the others (H1): when the batch
    fails, each of its subscriptions is billed on its own; one that fails alone is logged, counted and left
    "pending", so this tick passes it by and the next one retries it. Retrying is safe: claims and charges
    are keyed per period, so a period already claimed or charged is found again, never made twice."""
    try:
        return bill_batch(sub_ids)
    except Exception:
        db.session.rollback()
        if len(sub_ids) == 1:
            item_failed("subscription_billing", f"subscription {sub_ids[0]}")
            return {sub_ids[0]: "pending"}
    outcomes: dict[int, str] = {}
    for sub_id in sub_ids:
        outcomes.update(bill_batch_isolated([sub_id]))
    return outcomes


def bill(sub_id: int) -> str | None:
    """Charge one due subscription (the buyer's card update). Returns "succeeded", "failed", "pending" or
    None (nothing was due)."""
    return bill_batch([sub_id]).get(sub_id)


def bill_batch(sub_ids: list[int]) -> dict[int, str]:
    """Claim, charge and record these subscriptions' due periods: {subscription id: "succeeded", "failed" or
    "pending"}; subscriptions with nothing due (any more) are left out."""
    charges = _claim(sub_ids)
    answers = _charge(charges)
    successes = [(c.payment_id, a) for c, a in zip(charges, answers, strict=True) if isinstance(a, ChargeResult)]
    declines = [(c.payment_id, a.code, a.message)
                for c, a in zip(charges, answers, strict=True) if isinstance(a, CardDeclined)]
    if successes:
        record_successes(successes)
    if declines:
        record_failures(declines)
    return {c.subscription_id: _outcome(a) for c, a in zip(charges, answers, strict=True)}


def _claim(sub_ids: list[int]) -> list[Charge]:
    try:
        return claim_charges(sub_ids)
    except IntegrityError:
        # Another tick created one of these periods' charges first (it holds no lock we'd wait on): the rows
        # are there now, so claiming again finds them instead of making them.
        db.session.rollback()
        return claim_charges(sub_ids)


def _charge(charges: list[Charge]) -> list[ChargeResult | Exception]:
    """Step 2: the processor's answer to each charge, in order; one call per account and mode for the batch
    (each account has its own live processor)."""
    answers: dict[int, ChargeResult | Exception] = {}
    for mode, account_id in {(charge.mode, charge.request.account_id) for charge in charges}:
        group = [charge for charge in charges if (charge.mode, charge.request.account_id) == (mode, account_id)]
        try:
            processor = processor_for(mode, account_id)
        except NoLiveProcessor as exc:
            answers.update((charge.payment_id, exc) for charge in group)
            continue
        requests = [charge.request for charge in group]
        try:
            results = processor.charge_many(requests)
        except ProcessorError as exc:
            # H5: the batch's answer was lost as a whole (a timeout): every charge's outcome is unknown, so
            # they stay processing and the next tick asks again with the same keys.
            results = [exc] * len(requests)
        answers.update(zip((charge.payment_id for charge in group), results, strict=True))
    return [answers[charge.payment_id] for charge in charges]


def _outcome(answer: ChargeResult | Exception) -> str:
    if isinstance(answer, ChargeResult):
        return "succeeded"
    if isinstance(answer, CardDeclined):
        return "failed"
    if not isinstance(answer, ProcessorUnavailable | NoLiveProcessor):
        log.warning("subscription charge not made, retried by the next tick: %s", answer)
    return "pending"  # unknown outcome: the next tick retries with the same key
