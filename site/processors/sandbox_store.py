"""Sandbox storage: the SandboxStore protocol and the process-local InMemorySandboxStore."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

__all__ = ["InMemorySandboxStore", "SandboxStore"]


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


class InMemorySandboxStore:
    """Process-local SandboxStore; values round-trip through JSON so tests catch what a database can't hold."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, int | None, datetime | None]] = {}

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
