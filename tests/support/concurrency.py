"""Several workers doing the same thing at the same instant, as a guard must be tested (wave 1's lesson)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def at_once(app, fn: Callable[[], T], count: int = 2) -> list[T]:
    """Run `fn` in `count` threads released together by a barrier, each with its own app context and database
    session (as separate workers have); their results, in submission order."""
    from kassa.extensions import db

    barrier = threading.Barrier(count)

    def run() -> T:
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                return fn()
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(run) for _ in range(count)]
        return [future.result(timeout=120) for future in futures]
