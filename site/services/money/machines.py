"""What every money state machine shares (M1): a transition as data, and the one check that refuses a move.

Each money object has its machine next to its domain (payments/payment_states.py, payments/refund_states.py,
disputes/dispute_states.py, billing/subscription_states.py, payouts/payout_states.py,
payments/attempt_states.py). Each declares ``TRANSITIONS``: for every allowed (from, to) what it books in the
ledger, the timeline entry it writes, the emails it queues and the account event it records (W6, I6: the feed
workflows and webhooks read, services/platform/account_events.py); and one ``move_<object>`` that applies it.
Single-row paths call ``move_<object>``; a set-based batch path reads the same table (``transition``) and the
same ledger rows, so what a move books is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kassa.errors import Conflict
from kassa.event_types import AccountEventType
from kassa.timeline_kinds import TimelineKind


@dataclass(frozen=True)
class Transition:
    """One allowed move: the timeline kind it writes (None: it shows on no timeline), what it books in the
    ledger and the emails it queues (each called with the moved object and its machine's context, or None), and
    the account event it records (None: none)."""

    timeline: TimelineKind | None = None
    books: Callable[..., None] | None = None
    emails: Callable[..., None] | None = None
    event: AccountEventType | None = None


def transition(transitions: Mapping[tuple[StrEnum, StrEnum], Transition], what: str, object_id: Any,
               current: StrEnum, target: StrEnum) -> Transition | None:
    """The transition from `current` to `target`; None for a repeat (a no-op, unless the table lists the move
    onto itself, e.g. a subscription failing again while past due); Conflict for a move the table lacks."""
    found = transitions.get((current, target))
    if found is None and current is target:
        return None
    if found is None:
        raise Conflict(f"{what} {object_id} cannot go from {current.value} to {target.value}")
    return found


def can_move(transitions: Mapping[tuple[StrEnum, StrEnum], Transition], current: StrEnum, target: StrEnum) -> bool:
    """For set-based paths: whether a row in `current` can still move to `target` (a repeat can't)."""
    return (current, target) in transitions
