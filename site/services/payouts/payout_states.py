"""The payout state machine (M1, O1–O3): pending → in transit → paid | failed.

Creating a payout (payouts.create_payout) books its total out of the balance; a failed payout books it back,
so its funds go out with the next one. Payouts show on no timeline and send no email on a move (the daily
payout email goes out when the payout is made).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import get_locale
from flask_babel import gettext as _

from kassa.clock import now
from kassa.display_ids import display_id
from kassa.event_types import AccountEventType as Event
from kassa.models import Payout, PayoutStatus
from kassa.money import Money
from kassa.services.money.ledger import book_payout_failure
from kassa.services.money.machines import Transition, transition
from kassa.services.platform.account_events import record_move
from kassa.services.platform.notifications import notify_team_in_app
from kassa.urls import absolute_url


def announce_failed_payout(payout: Payout, _at: datetime | None = None) -> None:
    """B1: the bell says a payout failed — once, as the move to failed happens once (a repeat is refused)."""
    amount = Money(abs(payout.amount_minor), payout.currency)

    def text() -> str:
        said = _("Payout %(number)s of %(amount)s failed; its funds go out with the next payout.",
                 number=display_id("payout", payout.id), amount=amount.format(str(get_locale() or 'en')))
        return _("Test: %(text)s", text=said) if payout.mode == "test" else said

    notify_team_in_app(payout.account_id, text, absolute_url("payouts.detail", payout_id=payout.id))

TRANSITIONS: dict[tuple[PayoutStatus, PayoutStatus], Transition] = {
    (PayoutStatus.PENDING, PayoutStatus.IN_TRANSIT): Transition(),
    (PayoutStatus.IN_TRANSIT, PayoutStatus.PAID): Transition(event=Event.PAYOUT_PAID),
    (PayoutStatus.IN_TRANSIT, PayoutStatus.FAILED): Transition(books=book_payout_failure,
                                                               emails=announce_failed_payout,
                                                               event=Event.PAYOUT_FAILED),
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
    record_move(move.event, payout, at, {"amount_minor": payout.amount_minor, "currency": payout.currency,
                                         "status": payout.status, "failure_message": payout.failure_message})
    if move.emails:
        move.emails(payout, at)
    return True
