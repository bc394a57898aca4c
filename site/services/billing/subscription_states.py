"""The subscription state machine (M1, S1–S3, Q9): (trialing →) active ⇄ past due, then completed or cancelled.

Q9: a free trial starts in `trialing` (nothing charged, the card saved); the first charge at the trial's end
makes it active (or past due when declined); it can be cancelled during the trial, and then it is never charged.
(A fixed term has at least two payments, so the first charge after a trial never completes one.)

A declined renewal makes it past due (again, at each failed retry: the move onto itself is listed), a paid
one active again; the last period of a fixed term completes it; the merchant, or the retries running out,
cancels it. Its timeline is dated on the subscription's own clock (a test clock in test mode). The batch of
renewal successes (billing_outcomes) stays set-based but takes its allowed moves and timeline kinds from here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kassa.event_types import AccountEventType as Event
from kassa.models import Subscription, SubscriptionStatus
from kassa.services.billing.billing_rows import add_timeline_at, subscription_subjects
from kassa.services.billing.notices import notify_subscription_ended, notify_subscription_payment_failed
from kassa.services.money.machines import Transition, can_move, transition
from kassa.services.platform.account_events import record_move
from kassa.timeline_kinds import TimelineKind

S = SubscriptionStatus
PAST_DUE = Transition(TimelineKind.SUBSCRIPTION_PAST_DUE,
                      emails=lambda sub, payment: notify_subscription_payment_failed(sub, payment),
                      event=Event.SUBSCRIPTION_PAST_DUE)
# W6: failing again while past due is a move (its timeline entry and email) but not news: no second event.
STILL_PAST_DUE = Transition(PAST_DUE.timeline, emails=PAST_DUE.emails)
COMPLETED = Transition(TimelineKind.SUBSCRIPTION_COMPLETED)
CANCELLED = Transition(TimelineKind.SUBSCRIPTION_CANCELLED, emails=lambda sub, payment: notify_subscription_ended(sub),
                       event=Event.SUBSCRIPTION_CANCELLED)
TRANSITIONS: dict[tuple[SubscriptionStatus, SubscriptionStatus], Transition] = {
    (S.TRIALING, S.ACTIVE): Transition(),  # the first charge after the trial: shown by the payment's own entry
    (S.TRIALING, S.PAST_DUE): PAST_DUE,
    (S.TRIALING, S.CANCELLED): CANCELLED,
    (S.ACTIVE, S.PAST_DUE): PAST_DUE,
    (S.PAST_DUE, S.PAST_DUE): STILL_PAST_DUE,
    (S.PAST_DUE, S.ACTIVE): Transition(),  # a retry paid: shown by the payment's own entry
    (S.ACTIVE, S.COMPLETED): COMPLETED,
    (S.PAST_DUE, S.COMPLETED): COMPLETED,
    (S.ACTIVE, S.CANCELLED): CANCELLED,
    (S.PAST_DUE, S.CANCELLED): CANCELLED,
}


def can_move_subscription(status: str, target: SubscriptionStatus) -> bool:
    return can_move(TRANSITIONS, SubscriptionStatus(status), target)


def move_subscription(session, sub: Subscription, target: SubscriptionStatus, *, at: datetime,
                      data: dict[str, Any] | None = None, actor_id: int | None = None, reason: str | None = None,
                      payment=None) -> bool:
    """Move `sub` (ORM, in the caller's transaction): status and its time, the timeline dated `at`, the emails
    (`payment`: the declined one a past-due email names). An ended subscription charges nothing more; a
    cancellation keeps its `reason`. False for a repeat; Conflict for an illegal move (an ended one stays)."""
    move = transition(TRANSITIONS, "subscription", sub.id, SubscriptionStatus(sub.status), target)
    if move is None:
        return False
    sub.status = target.value
    if target is S.PAST_DUE:
        sub.past_due_since = sub.past_due_since or at
    elif target in (S.COMPLETED, S.CANCELLED):
        sub.next_charge_at = None
        sub.ended_at = at
    if target is S.CANCELLED:
        sub.cancelled_at = sub.cancelled_at or at
        sub.cancel_reason = reason
    if move.timeline:
        add_timeline_at(session, sub.account_id, move.timeline, subscription_subjects(sub), at, actor_id=actor_id,
                        payment_id=payment.id if payment is not None else None, data=data)
    record_move(move.event, sub, at, event_data(sub, payment))
    if move.emails:
        move.emails(sub, payment)
    return True


def event_data(sub: Subscription, payment=None) -> dict[str, Any]:
    """What a subscription's account event (W6, I6) carries besides the subscription itself."""
    data = {"status": sub.status, "amount_minor": sub.amount_minor, "currency": sub.currency}
    if payment is not None:
        data["payment_id"] = payment.id
    if sub.cancel_reason:
        data["reason"] = sub.cancel_reason
    return data
