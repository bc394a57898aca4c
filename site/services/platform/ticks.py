"""Periodic work run by `flask kassa tick`. The tasks and their order are declared in one list,
`kassa.wiring.TICK_TASKS`, which `create_app` installs here (M7).

A tick must be safe to run on several machines at once and to repeat: every task claims its work with
row locks or unique keys and skips what another tick already did.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import true

from kassa.extensions import db

log = logging.getLogger(__name__)

TickTask = Callable[[], int]
_TASKS: list[tuple[str, TickTask]] = []
T = TypeVar("T")

# H1: items skipped because they failed, per task, since the process started (billing counts from threads).
_ITEM_FAILURES: Counter[str] = Counter()
_FAILURES_LOCK = threading.Lock()
# H14: tasks that limit themselves to the account being ticked (`for_tick_account`); only these run on a
# one-account tick (the test clock, inside that merchant's web request).
_PER_ACCOUNT: set[str] = set()
_TICK_ACCOUNT: ContextVar[int | None] = ContextVar("tick_account", default=None)


@dataclass(frozen=True)
class TickSpec:
    """One tick task: `fn` returns how many things it did (for the log). `per_account`: every query that
    picks its work is filtered with `for_tick_account`, so it also runs on a one-account tick (H14)."""

    name: str
    fn: TickTask
    per_account: bool = False


def install(tasks: Iterable[TickSpec]) -> None:
    """Make `tasks`, in this order, the tasks every tick runs (M7). Replaces what was installed before, so
    building the app again registers nothing twice, and the order never depends on import order."""
    tasks = list(tasks)
    _TASKS[:] = [(task.name, task.fn) for task in tasks]
    _PER_ACCOUNT.clear()
    _PER_ACCOUNT.update(task.name for task in tasks if task.per_account)


def register_tick(name: str, *, per_account: bool = False) -> Callable[[TickTask], TickTask]:
    """Append one task after the installed ones (tests use it; production tasks come from `install`)."""

    def decorate(fn: TickTask) -> TickTask:
        if all(existing != name for existing, _fn in _TASKS):
            _TASKS.append((name, fn))
        if per_account:
            _PER_ACCOUNT.add(name)
        return fn

    return decorate


def for_tick_account(account_id_column):
    """WHERE clause: everything on a full tick; only the ticked account's rows on a one-account tick."""
    account_id = _TICK_ACCOUNT.get()
    return true() if account_id is None else account_id_column == account_id


def registered_tasks() -> list[str]:
    return [name for name, _fn in _TASKS]


def item_failed(task: str, item: Any) -> None:
    """Log and count one item a task skipped; the item is still due, so a later tick retries it."""
    log.exception("tick task %s: %s failed; skipped, retried on a later tick", task, item)
    with _FAILURES_LOCK:
        _ITEM_FAILURES[task] += 1


def item_failures() -> dict[str, int]:
    with _FAILURES_LOCK:
        return dict(_ITEM_FAILURES)


def each_item(task: str, items: Iterable[T], fn: Callable[[T], int | bool | None],
              describe: Callable[[T], Any] = lambda item: item) -> int:
    """Run `fn` on every item, each on its own: one bad item (a merchant's broken setting, a row the code
    can't handle) is logged, counted and skipped, and every other item is still processed (H1). Before,
    the first error ended the whole task, so one merchant could stall every merchant's reconciliation,
    billing or payouts. Returns the sum of what `fn` returned (True counts as 1)."""
    done = 0
    for item in items:
        try:
            result = fn(item)
        except Exception:
            db.session.rollback()  # nothing half-written by the failed item stays in the session
            item_failed(task, describe(item))
            continue
        done += int(result or 0)
    return done


@dataclass
class TickReport:
    done: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # items that failed and wait for a later tick


def run_tick(account_id: int | None = None) -> TickReport:
    """Run every registered task once. One task failing does not stop the others, and within a task one
    item failing does not stop the other items (`each_item`). With `account_id`, only that account's work
    (H14: a merchant's test clock never runs other merchants' jobs in their request)."""
    report = TickReport()
    before = item_failures()
    scope = _TICK_ACCOUNT.set(account_id)
    try:
        for name, task in list(_TASKS):
            if account_id is not None and name not in _PER_ACCOUNT:
                continue
            try:
                report.done[name] = task()
            except Exception as exc:
                db.session.rollback()
                log.exception("tick task %s failed", name)
                report.failed[name] = f"{type(exc).__name__}: {exc}"
    finally:
        _TICK_ACCOUNT.reset(scope)
    after = item_failures()
    report.skipped = {name: after[name] - before.get(name, 0) for name in after if after[name] > before.get(name, 0)}
    return report
