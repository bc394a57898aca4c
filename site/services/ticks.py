"""Periodic work run by `flask kassa tick`: each capability registers its task here.

A tick must be safe to run on several machines at once and to repeat: every task claims its work with
row locks or unique keys and skips what another tick already did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

TickTask = Callable[[], int]
_TASKS: list[tuple[str, TickTask]] = []


def register_tick(name: str) -> Callable[[TickTask], TickTask]:
    """Register `fn` to run on every tick; it returns how many things it did (for the log)."""

    def decorate(fn: TickTask) -> TickTask:
        if all(existing != name for existing, _fn in _TASKS):
            _TASKS.append((name, fn))
        return fn

    return decorate


def registered_tasks() -> list[str]:
    return [name for name, _fn in _TASKS]


@dataclass
class TickReport:
    done: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def run_tick() -> TickReport:
    """Run every registered task once. One task failing does not stop the others."""
    report = TickReport()
    for name, task in list(_TASKS):
        try:
            report.done[name] = task()
        except Exception as exc:
            log.exception("tick task %s failed", name)
            report.failed[name] = f"{type(exc).__name__}: {exc}"
    return report
