"""G2: periodic jobs run once per period however many workers there are.

Every worker looks often (a few times per period) whether the current period of a job is still free, and the
one whose conditional UPDATE moves the job's `period_start` forward runs it. The UPDATE is the lock: on
PostgreSQL a second worker's UPDATE waits for the first to commit, then re-reads the row, finds the period taken
and changes nothing; on SQLite writers take the database lock one after another (BEGIN IMMEDIATE). A worker that
dies during its period costs that period only: the next one is taken by whoever looks first, and every tick task
catches up on what fell due meanwhile (ticks.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from kassa.clock import now
from kassa.database import dialect_name, write_transaction
from kassa.extensions import db
from kassa.models import PeriodicClaim
from kassa.services.platform.outbox import worker_identity

_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def period_start(every_seconds: float, at: datetime) -> datetime:
    """The start of the period of `every_seconds` that holds `at`, counted from the Unix epoch, so every worker
    cuts time into the same periods whatever moment it started at."""
    if every_seconds <= 0:
        raise ValueError("a period lasts more than 0 seconds")
    seconds = at.timestamp()
    return datetime.fromtimestamp(seconds - seconds % every_seconds, UTC)


def claim_period(name: str, every_seconds: float, at: datetime | None = None) -> bool:
    """True when this worker takes the current period of job `name` (and so runs it); False when another worker
    already took this period (or a later one)."""
    at = at or now()
    start = period_start(every_seconds, at)
    with write_transaction(db.session) as session:
        insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
        session.execute(insert(PeriodicClaim).values(name=name, period_start=_NEVER, claimed_by="",
                                                      claimed_at=_NEVER).on_conflict_do_nothing())
        taken = session.execute(
            update(PeriodicClaim)
            .where(PeriodicClaim.name == name, PeriodicClaim.period_start < start)
            .values(period_start=start, claimed_by=worker_identity(), claimed_at=at)
        ).rowcount
    return taken == 1
