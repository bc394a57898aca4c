"""The quote state machine (M1, V4): draft → open (sent) → accepted → paid, or declined / void.

A draft is the only state that can be edited; finalizing (draft → open) takes the quote's number from the account's
gap-free quote series (the R5 counter). The buyer accepts an open quote on its public page; it is paid there, at
once or later (accepted → paid, by the payment's success), and can go straight from open to paid when the buyer
accepts and pays in one go. "Expired" is not a state: it is read from the expiry date (Quote.is_expired).
"""

from __future__ import annotations

from datetime import datetime

from kassa.models import Quote, QuoteStatus
from kassa.services.money.machines import Transition, transition
from kassa.services.platform.counters import next_number

S = QuoteStatus
TRANSITIONS: dict[tuple[QuoteStatus, QuoteStatus], Transition] = {
    (S.DRAFT, S.OPEN): Transition(),
    (S.OPEN, S.ACCEPTED): Transition(),
    (S.OPEN, S.DECLINED): Transition(),
    (S.OPEN, S.VOID): Transition(),
    (S.ACCEPTED, S.PAID): Transition(),
    (S.ACCEPTED, S.VOID): Transition(),
}
EDITABLE = (S.DRAFT.value,)
PAYABLE = (S.ACCEPTED.value,)


def move_quote(quote: Quote, target: QuoteStatus, *, at: datetime | None) -> bool:
    """Move `quote` in the caller's write transaction. False for a repeat; Conflict (before any write) for a move
    the table lacks. Finalizing takes the next number of the account's quote series: the counter row stays locked
    until the caller commits, so two quotes finalized at once get consecutive numbers."""
    move = transition(TRANSITIONS, "quote", quote.id, QuoteStatus(quote.status), target)
    if move is None:
        return False
    if target is S.OPEN:
        quote.number = next_number(quote.account_id, "quote")
        quote.finalized_at = at
    elif target is S.ACCEPTED:
        quote.accepted_at = at
    elif target is S.DECLINED:
        quote.declined_at = at
    elif target is S.VOID:
        quote.voided_at = at
    elif target is S.PAID:
        quote.paid_at = at
    quote.status = target.value
    return True
