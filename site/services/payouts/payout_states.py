"""The payout state machine (M1, O1–O3): pending → in transit → paid | failed.

Creating a payout (payouts.create_payout) books its total out of the balance; a failed payout books it back,
so its funds go out with the next one. Payouts show on no timeline and send no email on a move (the daily
payout email goes out when the payout is made).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kassa.clock import now
from kassa.models import Payout, PayoutStatus
from kassa.services.money.ledger import book_payout_failure
from kassa.services.money.machines import Transition, transition

TRANSITIONS: dict[tuple[PayoutStatus, PayoutStatus], Transition] = {
    (PayoutStatus.PENDING, PayoutStatus.IN_TRANSIT): Transition(),
    (PayoutStatus.IN_TRANSIT, PayoutStatus.PAID): Transition(),
    (PayoutStatus.IN_TRANSIT, PayoutStatus.FAILED): Transition(books=book_payout_failure),
}


def move_payout(payout: Payout, target: PayoutStatus, *, at: datetime, data: dict[str, Any] | None = None) -> bool:
    """Move `payout` in the caller's transaction (`at`: on the account's clock, for the ledger). False for a
    repeat; Conflict for an illegal move."""
    move = transition(TRANSITIONS, "payout", payout.id, PayoutStatus(payout.status), target)
    if move is None:
        return False
    payout.status = target.value
    if target is PayoutStatus.PAID:
        payout.paid_at = now()
    elif target is PayoutStatus.FAILED:
        payout.failure_message = (data or {}).get("message")
    if move.books:
        move.books(payout, at)
    return True
