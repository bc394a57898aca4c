"""Fault injection for money flows (H5, M3): a fault-injecting wrapper around the sandbox processor and a
hook on database commits, installed by a fixture. Production code has no test switches: the wrapper is what
`processor_for` hands out while the fixture is active.

    def test_x(faults):
        faults.arm("after")             # the next money call reaches the processor, then the process "dies"
        faults.arm("write", 2)          # dies before the processor's 2nd store write of the next money call
        faults.arm("commit", 3)         # dies before the 3rd database commit from now
        with faults.crash_expected():
            refund_payment(...)

Processor faults the app must survive (it keeps running), scripted per operation and account:

        faults.inject("timeout")                      # next charge: nothing recorded, ProcessorUnavailable
        faults.inject("lose_response", operation="refund", account_id=7)  # made, then the answer is lost
        faults.inject("error_after_success", times=2) # made, then ProcessorFailure

Other test-only fixtures here (M3): `refuse_next_payout` (the bank refuses an arriving payout) and
`naive_refund_reservation` (the racy read-then-write a control run needs).

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

from kassa.processors.base import ChargeRequest, ProcessorError, ProcessorFailure, ProcessorUnavailable

MONEY_CALLS = ("charge", "charge_many", "refund", "submit_dispute_evidence", "accept_dispute", "send_payout")
FAULT_KINDS = ("lose_response", "timeout", "error_after_success")


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
        self.script: list[dict[str, Any]] = []  # injected processor faults, oldest first (see `inject`)

    def reset(self) -> None:
        with self.lock:
            self.kind, self.n, self.fired = None, 0, None
            self.calls, self.writes, self.commits = [], 0, 0

    def arm(self, kind: str, n: int = 1) -> None:
        assert kind in ("before", "after", "lost", "write", "commit"), kind
        self.reset()
        self.kind, self.n = kind, n

    def inject(self, kind: str, times: int = 1, *, operation: str = "charge", account_id: int | None = None) -> None:
        """Make the next `times` charges (or refunds) of `account_id` (None: any account) fail this way:
        timeout: not sent, ProcessorUnavailable; lose_response: made, then ProcessorUnavailable;
        error_after_success: made, then ProcessorFailure. A call the processor refuses uses up no fault."""
        assert kind in FAULT_KINDS, kind
        assert operation in ("charge", "refund"), operation
        if times < 1:
            raise ValueError("times must be at least 1")
        with self.lock:
            self.script.append({"kind": kind, "remaining": times, "operation": operation, "account_id": account_id})

    def scripted(self, operation: str) -> bool:
        with self.lock:
            return any(entry["operation"] == operation for entry in self.script)

    def take(self, operation: str, account_id: int, kinds: tuple[str, ...]) -> str | None:
        """Use up the oldest injected fault that hits this call, if any; its kind."""
        with self.lock:  # read, count down, write: one thread at a time, or two would take the same fault
            for entry in self.script:
                if entry["operation"] == operation and entry["kind"] in kinds and \
                        entry["account_id"] in (None, account_id):
                    entry["remaining"] -= 1
                    self.script = [e for e in self.script if e["remaining"] > 0]
                    return entry["kind"]
            return None

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


def _scripted(plan: FaultPlan, operation: str, account_id: int, call: Callable[[], Any]) -> Any:
    """`call` as the processor would answer it with the plan's injected faults."""
    if plan.take(operation, account_id, ("timeout",)):
        raise ProcessorUnavailable()
    result = call()  # a refusal propagates and uses up no fault, as the processor never "succeeded"
    fault = plan.take(operation, account_id, ("lose_response", "error_after_success"))
    if fault == "lose_response":
        raise ProcessorUnavailable()
    if fault == "error_after_success":
        raise ProcessorFailure()
    return result


class FaultyProcessor:
    """Wraps a processor: crash points before and after each money call, and the plan's injected faults on
    charges and refunds; every other call passes through."""

    def __init__(self, inner: Any, plan: FaultPlan) -> None:
        self.inner, self.plan = inner, plan

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in MONEY_CALLS:
            return attr
        if name == "charge":
            wrapped = attr

            def attr(req: ChargeRequest):
                return _scripted(self.plan, "charge", req.account_id, lambda: wrapped(req))
        elif name == "refund":
            wrapped = attr

            def attr(*args, **kwargs):
                account_id = kwargs["account_id"] if "account_id" in kwargs else args[0]
                return _scripted(self.plan, "refund", account_id, lambda: wrapped(*args, **kwargs))
        elif name == "charge_many" and self.plan.scripted("charge"):
            # Injected faults count charges one at a time: the batch goes one charge after another, each
            # answered in its place as `charge_many` answers it.
            def attr(requests):
                return [_answer(self.charge, req) for req in requests]

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


def _answer(charge: Callable[[ChargeRequest], Any], req: ChargeRequest) -> Any:
    try:
        return charge(req)
    except ProcessorError as exc:
        return exc


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


# --- payouts ------------------------------------------------------------------------------------------------


@pytest.fixture
def refuse_next_payout(monkeypatch) -> Callable[[int], None]:
    """`refuse_next_payout(account_id)`: the bank refuses the next payout sent to that account after the call.
    The sandbox's `lookup_payout` answers it failed from the moment it would have been paid (M2, M3: the
    sandbox's bank accepts every transfer and has no switch for this; the test replaces its answer). Tied to
    the payout sent next, not to the next lookup, so reading earlier payouts back changes nothing."""
    from dataclasses import replace

    from kassa.processors.sandbox import SandboxProcessor

    lock, armed, refused = threading.Lock(), set(), set()
    send, lookup = SandboxProcessor.send_payout, SandboxProcessor.lookup_payout

    def send_payout(self, account_id: int, *args, **kwargs):
        result = send(self, account_id, *args, **kwargs)
        with lock:
            if account_id in armed:
                armed.discard(account_id)
                refused.add(result.processor_ref)
        return result

    def lookup_payout(self, account_id: int, idempotency_key: str, now):
        result = lookup(self, account_id, idempotency_key, now)
        if result is None or result.status != "paid":
            return result
        with lock:
            if result.processor_ref in refused:
                return replace(result, status="failed", failure_code="account_closed",
                               failure_message="The bank account refused the transfer.")
        return result

    def arm(account_id: int) -> None:
        with lock:
            armed.add(account_id)

    monkeypatch.setattr(SandboxProcessor, "send_payout", send_payout)
    monkeypatch.setattr(SandboxProcessor, "lookup_payout", lookup_payout)
    return arm


# --- the refund race's control run --------------------------------------------------------------------------


class _StaleReservation:
    """A payment as a request that read its reservation earlier sees it: that old value, everything else now."""

    def __init__(self, payment: Any, reserved_minor: int) -> None:
        self._payment, self.refund_reserved_minor = payment, reserved_minor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._payment, name)


class NaiveRefundReservation:
    """The refund reservation done the naive way, to show the race the real one prevents (F6 control, M3).

    A worker calls `read(payment_id)` when its request starts (before any lock or transaction); the refund's
    check then uses that value and the reservation writes `value read + amount`, as a read-then-write would.
    Calls from threads that read nothing go to the real code."""

    def __init__(self, monkeypatch) -> None:
        from kassa.services.payments import refunds

        self.local = threading.local()
        refundable, reserve = refunds.refundable, refunds._reserve

        def stale() -> tuple[int, int] | None:
            return getattr(self.local, "read", None)

        def naive_refundable(payment, account):
            read = stale()
            if read is None or read[0] != payment.id:
                return refundable(payment, account)
            return refundable(_StaleReservation(payment, read[1]), account)

        def naive_reserve(payment_id: int, amount_minor: int) -> bool:
            read = stale()
            if read is None or read[0] != payment_id:
                return reserve(payment_id, amount_minor)
            _payment_id, reserved, total = read
            if reserved + amount_minor > total:
                return False
            from sqlalchemy import update

            from kassa.extensions import db
            from kassa.models import Payment

            db.session.execute(update(Payment).where(Payment.id == payment_id)
                               .values(refund_reserved_minor=reserved + amount_minor))
            return True

        monkeypatch.setattr(refunds, "refundable", naive_refundable)
        monkeypatch.setattr(refunds, "_reserve", naive_reserve)

    def read(self, payment_id: int) -> None:
        """Read the payment's reservation now, on a connection of its own, for this thread's next refund."""
        from sqlalchemy import select

        from kassa.extensions import db
        from kassa.models import Payment

        with db.engine.connect() as conn:
            reserved, total = conn.execute(select(Payment.refund_reserved_minor, Payment.amount_minor)
                                           .where(Payment.id == payment_id)).one()
        self.local.read = (payment_id, reserved, total)


@pytest.fixture
def naive_refund_reservation(monkeypatch) -> NaiveRefundReservation:
    return NaiveRefundReservation(monkeypatch)
