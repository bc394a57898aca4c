"""The checkout attempt state machine (M1, H4, H5): pending → succeeded | declined | failed | unknown, and
unknown → succeeded | declined | failed once the reconciler hears the processor's answer.

An attempt moves no money by itself: the payment it makes does (payments/payment_states). So no move here
books, shows on a timeline or sends email; the table is what keeps a settled attempt settled. It lives in
payments, below checkout, because recording the processor's "yes" (payment_records) settles the attempt too.
"""

from __future__ import annotations

from datetime import datetime

from kassa.models import AttemptStatus, PaymentAttempt
from kassa.services.money.machines import Transition, transition

A = AttemptStatus
TRANSITIONS: dict[tuple[AttemptStatus, AttemptStatus], Transition] = {
    (source, target): Transition()
    for source in (A.PENDING, A.UNKNOWN) for target in (A.SUCCEEDED, A.DECLINED, A.FAILED)
} | {(A.PENDING, A.UNKNOWN): Transition()}


def move_attempt(attempt: PaymentAttempt, target: AttemptStatus, *, at: datetime) -> bool:
    """Move `attempt` in the caller's transaction; a settled one (`target` reached) gets its finish time.
    False for a repeat; Conflict for an illegal move (a settled attempt never changes)."""
    if transition(TRANSITIONS, "attempt", attempt.id, AttemptStatus(attempt.status), target) is None:
        return False
    attempt.status = target.value
    if target is not A.UNKNOWN:
        attempt.finished_at = at
    return True
