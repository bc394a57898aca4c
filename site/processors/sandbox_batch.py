"""The sandbox's batch charge (subscription renewals): many charges in a few store round trips.

Each request is answered exactly as `SandboxProcessor.charge` answers it alone: the same checks, the same
idempotency (a key that charged answers with that charge; a key still in flight gets "unavailable, retry"),
the same charge built by `_create_charge`. Only the storage is batched: the keys are read, claimed and
released with one statement each, and every charge of the batch is written in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kassa.processors.base import ChargeRequest, ChargeResult, ProcessorError, ProcessorUnavailable
from kassa.processors.sandbox_records import (
    as_utc,
    charge_fingerprint,
    charge_from_record,
    in_flight_lease,
    index_key_of,
    processor_failure,
)
from kassa.processors.sandbox_store import StoreWrite

if TYPE_CHECKING:
    from kassa.processors.sandbox import SandboxProcessor

Answer = ChargeResult | ProcessorError


def charge_many(processor: SandboxProcessor, requests: Sequence[ChargeRequest]) -> list[Answer]:
    keys = [index_key_of(req) for req in requests]
    if len(set(keys)) < len(keys):
        # A key twice in a batch must see its own first charge: rare (a caller's mistake), so such a batch
        # goes one charge after another.
        return [_one(processor, req) for req in requests]
    answers: list[Answer | None] = [None] * len(requests)
    for i, req in enumerate(requests):
        try:
            processor._check_request(req)
        except ProcessorError as exc:
            answers[i] = exc
    valid = [i for i in range(len(requests)) if answers[i] is None]
    if not valid:
        return answers  # type: ignore[return-value]  # every request was refused
    index = processor.store.get_many(keys[i] for i in valid)
    fresh = [i for i in valid if (index.get(keys[i]) or {}).get("charge_ref") is None]
    claimed = _claim(processor, requests, keys, fresh)
    # A key someone else holds: still in flight (retry later), or finished meanwhile (its charge is the answer).
    lost = [i for i in fresh if keys[i] not in claimed]
    if lost:
        index.update(processor.store.get_many(keys[i] for i in lost))
    for i in lost:
        if (index.get(keys[i]) or {}).get("charge_ref") is None:
            answers[i] = ProcessorUnavailable()
    _replay(processor, requests, keys, index, [i for i in valid if keys[i] not in claimed and answers[i] is None],
            answers)
    _create(processor, requests, keys, [i for i in fresh if keys[i] in claimed], answers)
    return answers  # type: ignore[return-value]  # every slot is filled


def _one(processor: SandboxProcessor, req: ChargeRequest) -> Answer:
    try:
        return processor.charge(req)
    except ProcessorError as exc:
        return exc


def _claim(processor: SandboxProcessor, requests: Sequence[ChargeRequest], keys: list[str],
           todo: list[int]) -> set[str]:
    """Take the idempotency keys in one statement, held on real time (`in_flight_lease` says why)."""
    if not todo:
        return set()
    values = {keys[i]: {"charge_ref": None, "fingerprint": charge_fingerprint(requests[i])} for i in todo}
    held_at, held_until = in_flight_lease()
    return processor.store.claim_many(values, now=held_at, until=held_until)


def _replay(processor: SandboxProcessor, requests: Sequence[ChargeRequest], keys: list[str],
            index: dict[str, dict[str, Any]], todo: list[int], answers: list[Answer | None]) -> None:
    """Keys that already charged: the same answer again, never a second charge."""
    refs = {i: index[keys[i]]["charge_ref"] for i in todo}
    if not refs:
        return
    records = processor.store.get_many(f"charge:{ref}" for ref in refs.values())
    for i, ref in refs.items():
        record = records.get(f"charge:{ref}")
        if index[keys[i]]["fingerprint"] != charge_fingerprint(requests[i]):
            answers[i] = processor_failure("idempotency_key_reused")
        elif record is None or record["account_id"] != requests[i].account_id:
            answers[i] = processor_failure("no_such_charge")
        else:
            answers[i] = charge_from_record(record["result"])


def _create(processor: SandboxProcessor, requests: Sequence[ChargeRequest], keys: list[str], todo: list[int],
            answers: list[Answer | None]) -> None:
    """Charge the keys this batch claimed, then write every charge in one transaction."""
    if not todo:
        return
    tokens = [f"pm:{requests[i].payment_method_token}" for i in todo if requests[i].payment_method_token]
    fetched = processor.store.get_many(tokens) if tokens else {}
    known = {key: fetched.get(key) for key in tokens}
    writes: list[StoreWrite] = []
    released: list[str] = []
    try:
        for i in todo:
            staged = _StagedStore(processor.store, known)
            try:
                answers[i] = type(processor)(staged, processor.country_for)._create_charge(
                    requests[i], as_utc(requests[i].now), keys[i])
            except ProcessorError as exc:  # a decline doesn't use up the key
                answers[i] = exc
                released.append(keys[i])
            else:
                writes += staged.writes
    except BaseException:
        processor.store.delete_many(keys[i] for i in todo)  # nothing was written: give every key back
        raise
    # If this write fails, the keys stay held until their lease runs out rather than being given back: the
    # write may have gone through, and a key given back could charge a second time.
    if writes:
        processor.store.put_many(writes)
    if released:
        processor.store.delete_many(released)


class _StagedStore:
    """The store as one charge being built sees it: reads from what the batch fetched (else the store), writes
    kept to go out with the batch's others."""

    def __init__(self, store: Any, fetched: dict[str, dict[str, Any] | None]) -> None:
        self.store, self.fetched, self.writes = store, fetched, []

    def get(self, key: str) -> dict[str, Any] | None:
        return self.fetched[key] if key in self.fetched else self.store.get(key)

    def put(self, key: str, value: dict[str, Any], *, account_id: int | None = None,
            due_at: datetime | None = None) -> None:
        self.writes.append(StoreWrite(key, value, account_id, due_at))
