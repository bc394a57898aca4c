"""What claiming and recording renewals share: which subscriptions bill, and the timeline on the subscription's
own clock (ending a subscription is a move of its machine, subscription_states)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kassa.bulk_sql import insert_rows
from kassa.models import SubscriptionStatus, TimelineEntry
from kassa.timeline_kinds import TimelineKind

# Q9: a trialing subscription is billed at its trial's end (its next charge).
BILLABLE = (SubscriptionStatus.TRIALING.value, SubscriptionStatus.ACTIVE.value, SubscriptionStatus.PAST_DUE.value)


def subscription_subjects(sub: Any) -> list[tuple[str, int | None]]:
    """Where subscription activity shows: the subscription, its contact and its deal (a model or a row)."""
    return [("subscription", sub.id), ("contact", sub.contact_id), ("deal", sub.deal_id)]


def timeline_rows(account_id: int, kind: TimelineKind, subjects: list[tuple[str, int | None]], at: datetime, *,
                  payment_id: int | None = None, data: dict | None = None,
                  actor_id: int | None = None) -> list[dict[str, Any]]:
    """R6 entries (one per subject), dated `at`: a test subscription's activity happens on the test clock, so
    its timeline must show the test clock's date, not the real moment the tick ran."""
    kind = TimelineKind(kind).value  # M5: only a known kind is stored (as its plain string)
    return [{"account_id": account_id, "subject_type": subject_type, "subject_id": subject_id, "kind": kind,
             "payment_id": payment_id, "data": data or {}, "actor_id": actor_id, "created_at": at}
            for subject_type, subject_id in subjects if subject_id is not None]


def insert_timeline(session, rows: list[dict[str, Any]]) -> None:
    """All the entries in one statement, in the caller's transaction."""
    insert_rows(session, TimelineEntry.__table__, rows)


def add_timeline_at(session, account_id: int, kind: TimelineKind, subjects: list[tuple[str, int | None]], at: datetime,
                    **fields: Any) -> None:
    insert_timeline(session, timeline_rows(account_id, kind, subjects, at, **fields))
