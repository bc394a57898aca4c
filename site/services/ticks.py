"""Periodic work run by `flask kassa tick`: each capability registers its task here.

A tick must be safe to run on several machines at once and to repeat: every task claims its work with
row locks or unique keys and skips what another tick already did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

from sqlalchemy import true

log = logging.getLogger(__name__)

TickTask = Callable[[], int]
_TASKS: list[tuple[str, TickTask]] = []
# H14: tasks that limit themselves to the account being ticked (`for_tick_account`); only these run on a
# one-account tick (the test clock, inside that merchant's web request).
_PER_ACCOUNT: set[str] = set()
_TICK_ACCOUNT: ContextVar[int | None] = ContextVar("tick_account", default=None)


def register_tick(name: str, *, per_account: bool = False) -> Callable[[TickTask], TickTask]:
    """Register `fn` to run on every tick; it returns how many things it did (for the log). `per_account`:
    every query that picks its work is filtered with `for_tick_account`."""

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


@dataclass
class TickReport:
    done: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def run_tick(account_id: int | None = None) -> TickReport:
    """Run every registered task once. One task failing does not stop the others. With `account_id`, only
    that account's work (H14: a merchant's test clock never runs other merchants' jobs in their request)."""
    report = TickReport()
    scope = _TICK_ACCOUNT.set(account_id)
    try:
        for name, task in list(_TASKS):
            if account_id is not None and name not in _PER_ACCOUNT:
                continue
            try:
                report.done[name] = task()
            except Exception as exc:
                log.exception("tick task %s failed", name)
                report.failed[name] = f"{type(exc).__name__}: {exc}"
    finally:
        _TICK_ACCOUNT.reset(scope)
    return report
