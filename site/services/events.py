"""Processor events (ACH settled or failed; later refunds and disputes) applied exactly once.

Both the sandbox (from its clock, on `flask kassa tick`) and a live processor (from signed webhooks)
deliver events here. The unique (processor, event id) row is written in the same transaction as the
change the event causes, so a replayed event, or two ticks racing, change nothing the second time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import distinct, func, select
from sqlalchemy.exc import IntegrityError

from kassa.clock import now
from kassa.database import write_transaction
from kassa.errors import EventNotReady
from kassa.extensions import db
from kassa.models import (
    Account,
    DisputeStatus,
    Mode,
    Payment,
    PaymentStatus,
    ProcessedEvent,
    Refund,
    SandboxRecord,
    Subscription,
)
from kassa.processors.base import ProcessorEvent
from kassa.processors.registry import sandbox
from kassa.services.checkout.checkout import reconcile_attempts
from kassa.services.disputes.disputes import (
    close_dispute,
    open_dispute,
    reconcile_answers,
    send_deadline_reminders,
)
from kassa.services.payments.payment_states import move_payment
from kassa.services.payments.refunds import complete_refund, fail_refund, retry_unsent_refunds
from kassa.services.platform.ticks import each_item, for_tick_account

log = logging.getLogger(__name__)

EventHandler = Callable[[ProcessorEvent], None]


_HANDLERS: dict[str, EventHandler] = {}


def handles(event_type: str) -> Callable[[EventHandler], EventHandler]:
    def decorate(fn: EventHandler) -> EventHandler:
        _HANDLERS[event_type] = fn
        return fn

    return decorate


def apply_event(processor: str, event: ProcessorEvent) -> bool:
    """Apply one event; returns False when it had already been applied (or nobody handles its type)."""
    handler = _HANDLERS.get(event.type)
    try:
        with write_transaction(db.session) as session:
            seen = session.scalar(
                select(ProcessedEvent.id).where(ProcessedEvent.processor == processor,
                                                ProcessedEvent.event_id == event.id)
            )
            if seen is not None:
                return False
            session.add(ProcessedEvent(processor=processor, event_id=event.id, account_id=event.account_id,
                                       type=event.type))
            session.flush()
            if handler is None:
                log.info("no handler for %s event %s; recorded as seen", event.type, event.id)
                return False
            handler(event)
            return True
    except IntegrityError:
        # Another tick applied it between our check and our insert: its change stands, ours rolled back.
        return False
    except EventNotReady:
        raise


def _payment_by_ref(account_id: int, charge_ref: str) -> Payment | None:
    return db.session.scalar(
        select(Payment).where(Payment.account_id == account_id, Payment.processor_ref == charge_ref)
    )


def charge_succeeded(event: ProcessorEvent) -> None:
    """An ACH debit cleared (O2): the payment succeeds (M1: receipt number, ledger, receipt, as every success)."""
    payment = _payment_by_ref(event.account_id, event.data.get("charge_ref", event.object_ref))
    if payment is None:
        log.warning("charge.succeeded for unknown charge %s", event.object_ref)
        return
    # When the bank debit cleared, on the processor's clock.
    move_payment(payment, PaymentStatus.SUCCEEDED, at=event.occurred_at, data={"event": event.id})


def charge_failed(event: ProcessorEvent) -> None:
    """An ACH debit bounced (T4): the payment is Failed with the bank's reason, and the buyer is told."""
    payment = _payment_by_ref(event.account_id, event.data.get("charge_ref", event.object_ref))
    if payment is None:
        log.warning("charge.failed for unknown charge %s", event.object_ref)
        return
    move_payment(payment, PaymentStatus.FAILED, at=now(),
                 data={"code": event.data.get("code"), "message": event.data.get("message"), "event": event.id})


def _refund_for(event: ProcessorEvent):
    refund = db.session.scalar(select(Refund).where(Refund.account_id == event.account_id,
                                                    Refund.processor_ref == event.data.get("refund_ref",
                                                                                           event.object_ref)))
    if refund is None:
        raise EventNotReady(event.id)
    return refund


def refund_succeeded(event: ProcessorEvent) -> None:
    complete_refund(_refund_for(event).id)


def refund_failed(event: ProcessorEvent) -> None:
    fail_refund(_refund_for(event).id, event.data.get("code"), event.data.get("message"))


def dispute_created(event: ProcessorEvent) -> None:
    if open_dispute(event) is None:
        raise EventNotReady(event.id)


def dispute_won(event: ProcessorEvent) -> None:
    close_dispute(event, DisputeStatus.WON)


def dispute_lost(event: ProcessorEvent) -> None:
    close_dispute(event, DisputeStatus.LOST)


def process_sandbox_events() -> int:
    """Deliver every sandbox event that is due, in order: on real time, a test subscription's renewal's events
    on that subscription's clock (B9)."""
    processor = sandbox()
    account_ids = db.session.scalars(
        # H5: a key held by a request that died (a claim: no account, due when its hold runs out) is no event.
        select(distinct(SandboxRecord.account_id)).where(SandboxRecord.due_at.is_not(None),
                                                         SandboxRecord.account_id.is_not(None),
                                                         for_tick_account(SandboxRecord.account_id))
    ).all()
    db.session.rollback()

    def deliver(event: ProcessorEvent) -> bool:
        try:
            applied = apply_event(processor.name, event)
        except EventNotReady:
            log.info("event %s not ready; will retry", event.id)
            return False
        processor.acknowledge_event(event.id)
        return applied

    def for_account(account_id: int) -> int:
        account = db.session.get(Account, account_id)
        if account is None:
            return 0
        events = _due_on_their_clocks(processor, account_id)
        db.session.rollback()
        # H1: an event that fails is not acknowledged, so it is offered again; the others still apply.
        return each_item("sandbox_events", events, deliver, describe=lambda event: f"event {event.id}")

    return each_item("sandbox_events", account_ids, for_account, describe=lambda aid: f"account {aid}")


def _due_on_their_clocks(processor, account_id: int) -> list[ProcessorEvent]:
    """The account's sandbox events due now: on real time, except those of a test subscription's renewals
    (a dispute a scenario card opens on a renewal), which are due on that subscription's own clock (B9)."""
    at = now()
    ahead = db.session.scalar(select(func.max(Subscription.clock_offset_seconds)).where(
        Subscription.account_id == account_id, Subscription.mode == Mode.TEST.value)) or 0
    if not ahead:
        return processor.due_events(account_id, at)
    events = processor.due_events(account_id, at + timedelta(seconds=ahead))
    early = [event for event in events if event.occurred_at > at]
    if not early:
        return events
    refs = {event.data.get("charge_ref") or event.object_ref for event in early}
    clocks = dict(db.session.execute(
        select(Payment.processor_ref, Subscription.clock_offset_seconds)
        .join(Subscription, Subscription.id == Payment.subscription_id)
        .where(Payment.account_id == account_id, Subscription.mode == Mode.TEST.value,
               Payment.processor_ref.in_(refs))).all())

    def due(event: ProcessorEvent) -> bool:
        if event.occurred_at <= at:
            return True
        offset = clocks.get(event.data.get("charge_ref") or event.object_ref)
        return offset is not None and event.occurred_at <= at + timedelta(seconds=offset)

    return [event for event in events if due(event)]


def reconcile_attempts_task() -> int:
    return reconcile_attempts()


def retry_refunds_task() -> int:
    return retry_unsent_refunds()


def reconcile_dispute_answers_task() -> int:
    return reconcile_answers()


def dispute_reminders_task() -> int:
    return send_deadline_reminders()
