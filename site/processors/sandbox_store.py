"""Sandbox storage: the SandboxStore protocol and the process-local InMemorySandboxStore."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, NamedTuple, Protocol

__all__ = ["InMemorySandboxStore", "SandboxStore", "SandboxTransaction", "StoreWrite"]


class StoreWrite(NamedTuple):
    """One `put`, kept to be written together with others (put_many)."""

    key: str
    value: dict[str, Any]
    account_id: int | None = None
    due_at: datetime | None = None


class SandboxTransaction(Protocol):
    """Reads and writes that commit together or not at all (H5): what the sandbox does for one request.

    `get` locks the key's row for the rest of the transaction, so two transactions that read the same key
    take turns; a transaction that raises (or whose process dies) writes nothing."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(
        self,
        key: str,
        value: dict[str, Any],
        *,
        account_id: int | None = None,
        due_at: datetime | None = None,
    ) -> None: ...

    def delete(self, key: str) -> None: ...


class SandboxStore(Protocol):
    """Durable key -> JSON-able dict storage, committed independently of the caller (like a remote processor)."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(
        self,
        key: str,
        value: dict[str, Any],
        *,
        account_id: int | None = None,
        due_at: datetime | None = None,
    ) -> None: ...

    def scan_due(self, account_id: int, now: datetime) -> list[dict[str, Any]]:
        """Values with due_at <= now for that account, ordered by due_at then key."""
        ...

    def claim(self, key: str, value: dict[str, Any], *, now: datetime, until: datetime) -> bool:
        """Atomically store `key`, held until `until`, unless it exists: True when this call got it. A key
        whose hold ran out by `now` (its holder died) can be taken again; one stored by `put` never."""
        ...

    def delete(self, key: str) -> None: ...

    # Batches (subscription renewals): the same operations, a round trip for many keys.

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored values of those keys that exist."""
        ...

    def put_many(self, writes: Iterable[StoreWrite]) -> None:
        """All the writes or none (one transaction); for a key written twice, the later write wins."""
        ...

    def claim_many(self, values: dict[str, dict[str, Any]], *, now: datetime, until: datetime) -> set[str]:
        """`claim` for each key, atomically each: returns the keys this call got."""
        ...

    def delete_many(self, keys: Iterable[str]) -> None: ...

    def transaction(self) -> AbstractContextManager[SandboxTransaction]:
        """One atomic unit of work (H5): a refund, a charge or a dispute answer is one write, never several."""
        ...


class _BufferedTransaction:
    """The in-memory store's transaction: writes wait in a buffer until the whole unit of work is done."""

    _DELETED = object()

    def __init__(self, store: InMemorySandboxStore) -> None:
        self.store, self.writes = store, {}

    def get(self, key: str) -> dict[str, Any] | None:
        if key in self.writes:
            row = self.writes[key]
            return None if row is self._DELETED else json.loads(row[0])
        return self.store.get(key)

    def put(self, key: str, value: dict[str, Any], *, account_id: int | None = None,
            due_at: datetime | None = None) -> None:
        self.writes[key] = (json.dumps(value, sort_keys=True), account_id, due_at)

    def delete(self, key: str) -> None:
        self.writes[key] = self._DELETED

    def apply(self) -> None:
        for key, row in self.writes.items():
            if row is self._DELETED:
                self.store.rows.pop(key, None)
            else:
                self.store.rows[key] = row


class InMemorySandboxStore:
    """Process-local SandboxStore; values round-trip through JSON so tests catch what a database can't hold."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, int | None, datetime | None]] = {}
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[_BufferedTransaction]:
        with self._lock:  # one unit of work at a time, as row locks would order them
            tx = _BufferedTransaction(self)
            yield tx
            tx.apply()

    def get(self, key: str) -> dict[str, Any] | None:
        row = self.rows.get(key)
        return json.loads(row[0]) if row else None

    def put(
        self,
        key: str,
        value: dict[str, Any],
        *,
        account_id: int | None = None,
        due_at: datetime | None = None,
    ) -> None:
        self.rows[key] = (json.dumps(value, sort_keys=True), account_id, due_at)

    def claim(self, key: str, value: dict[str, Any], *, now: datetime, until: datetime) -> bool:
        held = self.rows.get(key)
        if held is not None and (held[2] is None or held[2] > now):
            return False
        self.rows[key] = (json.dumps(value, sort_keys=True), None, until)
        return True

    def scan_due(self, account_id: int, now: datetime) -> list[dict[str, Any]]:
        hits = sorted(
            (due, key, raw)
            for key, (raw, acc, due) in self.rows.items()
            if acc == account_id and due is not None and due <= now
        )
        return [json.loads(raw) for _, _, raw in hits]

    def delete(self, key: str) -> None:
        self.rows.pop(key, None)

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        found = {key: self.get(key) for key in keys}
        return {key: value for key, value in found.items() if value is not None}

    def put_many(self, writes: Iterable[StoreWrite]) -> None:
        encoded = [(w.key, (json.dumps(w.value, sort_keys=True), w.account_id, w.due_at)) for w in writes]
        self.rows.update(encoded)  # encoded first: a value JSON can't hold writes nothing

    def claim_many(self, values: dict[str, dict[str, Any]], *, now: datetime, until: datetime) -> set[str]:
        return {key for key, value in values.items() if self.claim(key, value, now=now, until=until)}

    def delete_many(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.delete(key)
