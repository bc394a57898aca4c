"""Crash injection for money flows (H5, M3): a fault-injecting wrapper around the sandbox processor and a
hook on database commits, installed by a fixture. Production code has no test switches: the wrapper is what
`processor_for` hands out while the fixture is active.

    def test_x(faults):
        faults.arm("after")             # the next money call reaches the processor, then the process "dies"
        faults.arm("write", 2)          # dies before the processor's 2nd store write of the next money call
        faults.arm("commit", 3)         # dies before the 3rd database commit from now
        with faults.crash_expected():
            refund_payment(...)

A crash is `Crash`, a BaseException: no `except Exception` / `except ProcessorError` in the app catches it,
so it stops the flow where it is raised, as `kill -9` would; transactions in progress roll back.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from kassa.processors.base import ProcessorUnavailable

MONEY_CALLS = ("charge", "charge_many", "refund", "submit_dispute_evidence", "accept_dispute")


class Crash(BaseException):
    """The process died here (simulated)."""


class FaultPlan:
    """One armed fault at a time, shared by every thread; counts what a dry run needs to enumerate points.
    With `kill=True` a crash is a real `kill -9` of this process instead of a raised Crash."""

    def __init__(self, *, kill: bool = False) -> None:
        self.kill = kill
        self.lock = threading.Lock()
        self.kind: str | None = None
        self.n = 0
        self.fired: str | None = None
        self.calls: list[str] = []  # money calls that reached the processor
        self.writes = 0  # processor store writes during money calls since reset
        self.commits = 0  # database commits since reset
        self.local = threading.local()

    def reset(self) -> None:
        with self.lock:
            self.kind, self.n, self.fired = None, 0, None
            self.calls, self.writes, self.commits = [], 0, 0

    def arm(self, kind: str, n: int = 1) -> None:
        assert kind in ("before", "after", "lost", "write", "commit"), kind
        self.reset()
        self.kind, self.n = kind, n

    def _fire(self, kind: str, where: str) -> bool:
        """Count an occurrence of `kind`; True (and disarmed) when it is the armed one."""
        with self.lock:
            if self.kind != kind:
                return False
            self.n -= 1
            if self.n > 0:
                return False
            self.kind, self.fired = None, where
            return True

    def crash(self) -> None:
        if self.kill:
            os.kill(os.getpid(), signal.SIGKILL)
        raise Crash(self.fired)

    def on_write(self, what: str) -> None:
        if not getattr(self.local, "in_call", False):
            return
        with self.lock:
            self.writes += 1
        if self._fire("write", f"processor store write {what}"):
            self.crash()

    def on_commit(self) -> None:
        with self.lock:
            self.commits += 1
        if self._fire("commit", "database commit"):
            self.crash()

    @contextmanager
    def crash_expected(self) -> Iterator[None]:
        """Run a flow that may be cut short by the armed crash; a crash that fired is swallowed here."""
        try:
            yield
        except Crash:
            assert self.fired, "a Crash without an armed fault"


class _FaultyTransaction:
    def __init__(self, tx: Any, plan: FaultPlan) -> None:
        self.tx, self.plan = tx, plan

    def get(self, key: str):
        return self.tx.get(key)

    def put(self, key: str, value, **kwargs) -> None:
        self.plan.on_write(f"put {key.split(':')[0]}")
        self.tx.put(key, value, **kwargs)

    def delete(self, key: str) -> None:
        self.plan.on_write(f"delete {key.split(':')[0]}")
        self.tx.delete(key)


class FaultyStore:
    """The sandbox's store with a crash point before each write (inside a transaction, the crash rolls it back)."""

    def __init__(self, store: Any, plan: FaultPlan) -> None:
        self.store, self.plan = store, plan

    def __getattr__(self, name: str) -> Any:  # reads: get, get_many, scan_due
        return getattr(self.store, name)

    def _write(self, name: str, *args, **kwargs):
        self.plan.on_write(name)
        return getattr(self.store, name)(*args, **kwargs)

    def put(self, *args, **kwargs):
        return self._write("put", *args, **kwargs)

    def put_many(self, *args, **kwargs):
        return self._write("put_many", *args, **kwargs)

    def claim(self, *args, **kwargs):
        return self._write("claim", *args, **kwargs)

    def claim_many(self, *args, **kwargs):
        return self._write("claim_many", *args, **kwargs)

    def delete(self, *args, **kwargs):
        return self._write("delete", *args, **kwargs)

    def delete_many(self, *args, **kwargs):
        return self._write("delete_many", *args, **kwargs)

    @contextmanager
    def transaction(self):
        with self.store.transaction() as tx:
            yield _FaultyTransaction(tx, self.plan)


class FaultyProcessor:
    """Wraps a processor: crash points before and after each money call; every other call passes through."""

    def __init__(self, inner: Any, plan: FaultPlan) -> None:
        self.inner, self.plan = inner, plan

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in MONEY_CALLS:
            return attr

        def call(*args, **kwargs):
            plan = self.plan
            with plan.lock:
                plan.calls.append(name)
            if plan._fire("before", f"before {name}"):
                plan.crash()
            plan.local.in_call = True
            try:
                result = attr(*args, **kwargs)
            finally:
                plan.local.in_call = False
            if plan._fire("after", f"after {name}"):
                plan.crash()
            if plan._fire("lost", f"answer of {name} lost"):
                raise ProcessorUnavailable()
            return result

        return call


def install(plan: FaultPlan, setattr=None) -> Callable[[], None]:
    """Make every processor the app asks for the sandbox on a FaultyStore behind a FaultyProcessor, and pass
    every database commit through the plan's commit hook. Returns the function that undoes the hook (the
    processor is undone by `setattr`'s owner, e.g. pytest's monkeypatch)."""
    from kassa.extensions import db
    from kassa.processors import registry
    from kassa.processors.sandbox import SandboxProcessor
    from kassa.processors.sandbox_db_store import DbSandboxStore

    def faulty_sandbox():
        store = FaultyStore(DbSandboxStore(db.engine), plan)
        return FaultyProcessor(SandboxProcessor(store, registry._country_lookup(db.engine)), plan)

    (setattr or builtins.setattr)(registry, "sandbox", faulty_sandbox)

    def before_commit(session) -> None:
        plan.on_commit()

    event.listen(Session, "before_commit", before_commit)
    return lambda: event.remove(Session, "before_commit", before_commit)


@pytest.fixture
def faults(app, monkeypatch) -> Iterator[FaultPlan]:
    """A FaultPlan installed for the test (see `install`)."""
    from kassa.extensions import db

    plan = FaultPlan()
    uninstall = install(plan, monkeypatch.setattr)
    try:
        yield plan
    finally:
        uninstall()
        with contextlib.suppress(Exception):
            db.session.remove()
