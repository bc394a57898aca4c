"""Sandbox processor: a stateful test-mode money mover behind the Processor protocol (SPEC T, F, D, O)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from babel.numbers import is_currency

from kassa.business_days import add_business_days
from kassa.processors import testcards
from kassa.processors.base import (
    BANK_DEBIT_METHODS,
    N_,
    ActionRequired,
    CardDeclined,
    CardDetails,
    ChargeRequest,
    ChargeResult,
    DisputeEvidence,
    DisputeResult,
    PayoutResult,
    ProcessorError,
    ProcessorEvent,
    ProcessorFailure,
    ProcessorUnavailable,
    RefundResult,
    SavedCard,
)
from kassa.processors.sandbox_batch import charge_many as batch_charge_many
from kassa.processors.sandbox_pricing import (
    FEE_SCHEDULE,
    UNITS_PER_USD,
    FeeRule,
    can_settle,
    compute_fee,
    convert_minor,
    exchange_rate,
)
from kassa.processors.sandbox_records import (
    as_utc,
    charge_fingerprint,
    charge_from_record,
    charge_to_record,
    in_flight_lease,
    index_key_of,
    parse_time,
    processor_failure,
)
from kassa.processors.sandbox_store import InMemorySandboxStore, SandboxStore

__all__ = [
    "FEE_SCHEDULE",
    "UNITS_PER_USD",
    "FeeRule",
    "InMemorySandboxStore",
    "SandboxProcessor",
    "SandboxStore",
    "compute_fee",
    "convert_minor",
    "exchange_rate",
]

# Timing: card charges succeed at once; ACH charges settle or fail 4 business days later (same time of
# day, the account's country); card refunds settle 1 minute later, ACH refunds 5 business days later;
# disputes open at once with 7 days to answer.
CARD_REFUND_DELAY = timedelta(minutes=1)
ACH_SETTLEMENT_BUSINESS_DAYS = 4
# Q10: a SEPA Direct Debit settles or fails after 5 business days (what Stripe says a SEPA debit typically takes).
SEPA_SETTLEMENT_BUSINESS_DAYS = 5
SETTLEMENT_BUSINESS_DAYS = {"ach": ACH_SETTLEMENT_BUSINESS_DAYS, "sepa": SEPA_SETTLEMENT_BUSINESS_DAYS}
ACH_REFUND_BUSINESS_DAYS = 5
ACH_REFUND_WINDOW = timedelta(days=180)  # SPEC F4
EVIDENCE_WINDOW = timedelta(days=7)
DECISION_DELAY = timedelta(minutes=1)
DEFAULT_DECISION_DELAY = timedelta(days=3)


_CARD_FIELDS = ("brand", "last4", "exp_month", "exp_year", "funding")
_DISPUTE_FIELDS = ("dispute_ref", "charge_ref", "amount_minor", "currency", "reason", "is_inquiry")


def _ref(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _outcome(failure: list[str] | None) -> dict[str, str]:
    return {"code": failure[0], "message": failure[1]} if failure else {}


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _card_scenario(profile: testcards.CardProfile) -> dict[str, Any]:
    refund_failure = profile.refund_failure_code and [
        profile.refund_failure_code,
        profile.refund_failure_message,
    ]
    scenario: dict[str, Any] = {
        "dispute_reason": profile.dispute_reason,
        "is_inquiry": profile.is_inquiry,
        "refund_failure": refund_failure,
    }
    if profile.requires_authentication:  # read (and removed) by _create_charge: the charge's, not a saved card's
        scenario["authenticate"] = True
    return scenario


class SandboxProcessor:
    """Implements Processor on a SandboxStore; never stores a full card number or a CVC."""

    name = "sandbox"
    supports_live = False
    automatic_payouts = False  # Kassa sends the daily payout (O1)

    def __init__(self, store: SandboxStore, country_for: Callable[[int], str]) -> None:
        self.store = store
        self.country_for = country_for

    def _within(self, tx: Any) -> SandboxProcessor:
        """This processor working inside one store transaction (H5): its reads and writes commit together."""
        return type(self)(tx, self.country_for)

    def _owned(self, key: str, account_id: int, missing_code: str) -> dict[str, Any]:
        # Another account's reference answers exactly like an unknown one.
        record = self.store.get(key)
        if record is None or record["account_id"] != account_id:
            raise processor_failure(missing_code)
        return record

    def _business_time(self, account_id: int, now: datetime, days: int) -> datetime:
        day = add_business_days(now.date(), days, self.country_for(account_id))
        return datetime.combine(day, now.timetz())

    # --- charges --------------------------------------------------------------------------------

    def charge(self, req: ChargeRequest) -> ChargeResult:
        now = as_utc(req.now)
        self._check_request(req)
        index_key = index_key_of(req)
        index, result = self.store.get(index_key), None
        if index is None or index["charge_ref"] is None:
            index, result = self._charge_once(req, now, index_key)
        if index is not None:  # this key already charged: the same answer again, never a second charge
            if index["fingerprint"] != charge_fingerprint(req):
                raise processor_failure("idempotency_key_reused")
            result = charge_from_record(
                self._owned(f"charge:{index['charge_ref']}", req.account_id, "no_such_charge")["result"]
            )
        return self._after_authentication(req.account_id, result)

    # B2/K6: a charge with the 3-D Secure test card waits for the buyer. Its record is written like any charge's
    # (the key is taken: a repeat of the request gets the same answer) with "action": waiting, then
    # authenticated or failed (the sandbox's test authentication page: `authenticate`), or canceled
    # (`finish_charge` while still waiting). Only an authenticated one is a charge that went through.
    ACTION_PREFIX = "sandbox_3ds:"

    def _after_authentication(self, account_id: int, result: ChargeResult) -> ChargeResult:
        action = self._owned(f"charge:{result.processor_ref}", account_id, "no_such_charge").get("action")
        if action == "waiting":
            raise ActionRequired(f"{self.ACTION_PREFIX}{result.processor_ref}", result.processor_ref)
        if action == "failed":
            raise CardDeclined("payment_intent_authentication_failure",
                               N_("We couldn't confirm your payment with your bank. Try again or use another card."))
        if action == "canceled":
            raise CardDeclined("authentication_required", N_("Your bank asks you to confirm this payment."))
        return result

    def authenticate(self, account_id: int, processor_ref: str, *, succeed: bool) -> bool:
        """The buyer's answer on the sandbox's test authentication page: complete (the charge goes through when
        ``finish_charge`` is called) or fail. False when the charge isn't waiting (already answered, cancelled,
        or another account's)."""
        key = f"charge:{processor_ref}"
        record = self.store.get(key)
        if record is None or record["account_id"] != account_id or record.get("action") != "waiting":
            return False
        self.store.put(key, {**record, "action": "authenticated" if succeed else "failed"}, account_id=account_id)
        return True

    def _charge_once(
        self, req: ChargeRequest, now: datetime, index_key: str
    ) -> tuple[dict[str, Any] | None, ChargeResult | None]:
        """Take the idempotency key, then charge: two requests with one key never both charge. One sent while
        the first is still running gets an error to retry (as a processor answers a concurrent request with
        the same key). Returns (index, None) when the other request finished in the meantime."""
        pending = {"charge_ref": None, "fingerprint": charge_fingerprint(req)}
        held_at, held_until = in_flight_lease()
        if not self.store.claim(index_key, pending, now=held_at, until=held_until):
            index = self.store.get(index_key)
            if index is not None and index["charge_ref"] is not None:
                return index, None
            raise ProcessorUnavailable()
        try:
            # H5: the charge's records (payment method, events, dispute, charge, final index) in one
            # transaction: a crash part-way leaves no charge behind that the index doesn't point to.
            with self.store.transaction() as tx:
                return None, self._within(tx)._create_charge(req, now, index_key)
        except BaseException:
            self.store.delete(index_key)  # a decline doesn't use up the key
            raise

    def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult | ProcessorError]:
        """Many charges at once (subscription renewals), each answered as `charge` answers it alone: in its
        request's place, the result, or the error `charge` would raise. Storage is batched (sandbox_batch)."""
        return batch_charge_many(self, requests)

    def lookup_charge(self, account_id: int, idempotency_key: str) -> ChargeResult | None:
        index = self.store.get(f"idem:charge:{account_id}:{idempotency_key}")
        if index is None or index["charge_ref"] is None:
            return None
        record = self._owned(f"charge:{index['charge_ref']}", account_id, "no_such_charge")
        if record.get("action", "authenticated") != "authenticated":
            return None  # B2: still waiting for the buyer, or never confirmed: nothing went through
        return charge_from_record(record["result"])

    def finish_charge(self, account_id: int, idempotency_key: str) -> ChargeResult | None:
        """A charge that went through, or None when none was made; one still waiting for the buyer's test
        authentication (B2) is cancelled first, and one whose authentication failed or was cancelled raises
        CardDeclined, as Stripe's does."""
        index = self.store.get(f"idem:charge:{account_id}:{idempotency_key}")
        if index is None or index["charge_ref"] is None:
            return None
        key = f"charge:{index['charge_ref']}"
        record = self._owned(key, account_id, "no_such_charge")
        if record.get("action") == "waiting":
            self.store.put(key, {**record, "action": "canceled"}, account_id=account_id)
        return self._after_authentication(account_id, charge_from_record(record["result"]))

    def can_settle(self, currency: str, settlement_currency: str) -> bool:
        return can_settle(currency, settlement_currency)

    @staticmethod
    def _check_request(req: ChargeRequest) -> None:
        if not _positive_int(req.amount_minor):
            raise processor_failure("invalid_amount")
        for code in (req.currency, req.settlement_currency or req.currency):
            if len(code) != 3 or not code.isupper() or not is_currency(code):
                raise processor_failure("invalid_currency")
        card_ok = req.method == "card" and (req.card is None) != (req.payment_method_token is None)
        bank_ok = req.method in BANK_DEBIT_METHODS and req.bank is not None and not req.payment_method_token
        if not (card_ok or bank_ok) or (req.method in BANK_DEBIT_METHODS and req.save_payment_method):
            raise processor_failure("invalid_request")

    def _card_source(self, req: ChargeRequest, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
        """(card fields for the result, scenario), or CardDeclined / PaymentDetailsInvalid."""
        if req.payment_method_token is not None:
            pm = self._owned(f"pm:{req.payment_method_token}", req.account_id, "no_such_payment_method")
            if pm["behaviour"] == "decline":
                raise CardDeclined("card_declined", N_("Your card was declined."))
            if (pm["exp_year"], pm["exp_month"]) < (now.year, now.month):
                raise CardDeclined(
                    "expired_card", N_("The payment was declined because the card has expired.")
                )
            return {k: pm[k] for k in _CARD_FIELDS}, pm["scenario"]
        assert req.card is not None
        testcards.validate_card(req.card, now.date())
        profile = testcards.CARDS[testcards.normalize_card_number(req.card.number)]
        if profile.decline_code:
            raise CardDeclined(profile.decline_code, profile.decline_message, field=profile.decline_field)
        exp_year = req.card.exp_year + 2000 if req.card.exp_year < 100 else req.card.exp_year
        card = (profile.brand, profile.number[-4:], req.card.exp_month, exp_year, profile.funding)
        return dict(zip(_CARD_FIELDS, card, strict=True)), _card_scenario(profile)

    def _create_charge(self, req: ChargeRequest, now: datetime, index_key: str) -> ChargeResult:
        if req.method == "card":
            source, scenario = self._card_source(req, now)
        else:
            assert req.bank is not None
            if req.method == "sepa":
                profile = testcards.validate_iban(req.bank)
            else:
                profile = testcards.validate_bank(req.bank)
            assert profile is not None
            source = {"bank_last4": profile.account_number[-4:]}
            scenario = {
                "ach_failure": profile.failure_code and [profile.failure_code, profile.failure_message]
            }
        authenticate = req.method == "card" and scenario.pop("authenticate", False)
        if authenticate and req.return_url is None:  # the buyer isn't there to confirm (a renewal)
            raise CardDeclined("authentication_required", N_("Your bank asks you to confirm this payment."))
        settlement = req.settlement_currency or req.currency
        fee, rate = (
            compute_fee(req.method, req.amount_minor, req.currency),
            exchange_rate(req.currency, settlement),
        )
        gross = convert_minor(req.amount_minor, req.currency, settlement, rate)
        fee_settlement = convert_minor(fee, req.currency, settlement, rate)
        ref, token = _ref("ch"), _ref("pm") if req.save_payment_method else None
        result = ChargeResult(
            processor_ref=ref,
            status="succeeded" if req.method == "card" else "processing",
            method=req.method,
            amount_minor=req.amount_minor,
            currency=req.currency,
            **source,
            fee_minor=fee,
            fee_currency=req.currency,
            settlement_currency=settlement,
            exchange_rate=rate,
            amount_settlement_minor=gross,
            fee_settlement_minor=fee_settlement,
            net_settlement_minor=gross - fee_settlement,
            payment_method_token=token,
            created_at=now,
        )
        if token:
            pm = {"account_id": req.account_id, "behaviour": "succeed", "scenario": scenario, **source}
            self.store.put(f"pm:{token}", pm, account_id=req.account_id)
        money = {"charge_ref": ref, "amount_minor": req.amount_minor, "currency": req.currency}
        settles_at = None
        if req.method in BANK_DEBIT_METHODS:
            settles_at = self._business_time(req.account_id, now, SETTLEMENT_BUSINESS_DAYS[req.method])
            failure = scenario["ach_failure"]
            data = {**money, "method": req.method, **_outcome(failure)}
            self._schedule(
                req.account_id, "charge.failed" if failure else "charge.succeeded", ref, settles_at, data
            )
        dispute_ref = (
            self._open_dispute(req.account_id, scenario, money, now)
            if scenario.get("dispute_reason")
            else None
        )
        record = {
            "account_id": req.account_id,
            "result": charge_to_record(result),
            "scenario": scenario,
            "settles_at": settles_at and settles_at.isoformat(),
            "refund_refs": [],
            "dispute_ref": dispute_ref,
        }
        if authenticate:
            record["action"] = "waiting"
        self.store.put(f"charge:{ref}", record, account_id=req.account_id)
        # The index is written last: it is the commit point that makes the charge visible to retries.
        self.store.put(
            index_key, {"charge_ref": ref, "fingerprint": charge_fingerprint(req)}, account_id=req.account_id
        )
        return result

    # --- refunds --------------------------------------------------------------------------------

    def refund(
        self,
        account_id: int,
        charge_ref: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        now: datetime,
    ) -> RefundResult:
        now = as_utc(now)
        index_key, fingerprint = (
            f"idem:refund:{account_id}:{idempotency_key}",
            f"{charge_ref}|{amount_minor}|{currency}",
        )
        # H5: one transaction per refund. The charge is read (and on PostgreSQL locked) first, so refunds of one
        # charge take turns and each sees the others' amounts and keys; the refund record, the charge's list of
        # refunds, the settlement event and the idempotency key are then written together or not at all.
        with self.store.transaction() as tx:
            inner = self._within(tx)
            inner._owned(f"charge:{charge_ref}", account_id, "no_such_charge")
            index, refused = tx.get(index_key), None
            if index is None:
                try:
                    refund = inner._create_refund(account_id, charge_ref, amount_minor, currency, now)
                except ProcessorFailure as exc:
                    # A refusal is kept under the key, as a processor keeps an idempotent request's answer:
                    # the same key sent again is refused again, never made later behind the caller's back.
                    refused = exc
                    tx.put(index_key, {"ref": None, "refused": [exc.code, exc.message], "fingerprint": fingerprint},
                           account_id=account_id)
                else:
                    tx.put(index_key, {"ref": refund["ref"], "fingerprint": fingerprint}, account_id=account_id)
            elif index["fingerprint"] != fingerprint:
                raise processor_failure("idempotency_key_reused")
            elif index["ref"] is None:
                refused = ProcessorFailure(*index["refused"])
            else:
                refund = inner._owned(f"refund:{index['ref']}", account_id, "no_such_charge")
        if refused is not None:
            raise refused
        return RefundResult(
            processor_ref=refund["ref"],
            charge_ref=charge_ref,
            amount_minor=amount_minor,
            currency=currency,
            created_at=parse_time(refund["created_at"]),
        )

    def lookup_refund(self, account_id: int, idempotency_key: str) -> RefundResult | None:
        """H5: the refund made under this key, or None when the processor never made one (its records are
        written in one transaction, so a key either points at a whole refund or at nothing)."""
        index = self.store.get(f"idem:refund:{account_id}:{idempotency_key}")
        if index is None or index["ref"] is None:  # never sent, or refused
            return None
        refund = self._owned(f"refund:{index['ref']}", account_id, "no_such_charge")
        charge_ref, amount, currency = index["fingerprint"].split("|")
        return RefundResult(
            processor_ref=refund["ref"],
            charge_ref=charge_ref,
            amount_minor=int(amount),
            currency=currency,
            created_at=parse_time(refund["created_at"]),
        )

    def _refundable_minor(self, charge: dict[str, Any], now: datetime) -> int:
        """What is left to refund of a charge at ``now``; raises when it cannot be refunded at all."""
        result = charge_from_record(charge["result"])
        if charge["settles_at"] and now < parse_time(charge["settles_at"]):
            raise processor_failure("charge_not_settled")
        if charge["scenario"].get("ach_failure"):
            raise processor_failure("charge_failed")
        if result.method == "ach" and now - result.created_at > ACH_REFUND_WINDOW:
            raise processor_failure("charge_too_old")
        if charge["dispute_ref"]:
            dispute = self.store.get(f"dispute:{charge['dispute_ref']}")
            if dispute and not dispute["data"]["is_inquiry"] and self._dispute_status(dispute, now) != "won":
                raise processor_failure("charge_disputed")
        left = result.amount_minor
        for ref in charge["refund_refs"]:
            earlier = self.store.get(f"refund:{ref}") or {}
            # A refund that already failed gives its amount back; a pending one still holds it.
            if not (earlier.get("failure") and now >= parse_time(earlier["settles_at"])):
                left -= earlier.get("amount_minor", 0)
        return left

    def _create_refund(
        self, account_id: int, charge_ref: str, amount_minor: int, currency: str, now: datetime
    ) -> dict[str, Any]:
        charge = self._owned(f"charge:{charge_ref}", account_id, "no_such_charge")
        if not _positive_int(amount_minor):
            raise processor_failure("invalid_amount")
        if currency != charge["result"]["currency"]:
            raise processor_failure("currency_mismatch")
        if amount_minor > self._refundable_minor(charge, now):
            raise processor_failure("amount_too_large")
        ref, failure = _ref("re"), charge["scenario"].get("refund_failure")
        if charge["result"]["method"] == "card":
            settles_at = now + CARD_REFUND_DELAY
        else:
            settles_at = self._business_time(account_id, now, ACH_REFUND_BUSINESS_DAYS)
        refund = {
            "ref": ref,
            "account_id": account_id,
            "amount_minor": amount_minor,
            "created_at": now.isoformat(),
            "settles_at": settles_at.isoformat(),
            "failure": failure,
        }
        self.store.put(f"refund:{ref}", refund, account_id=account_id)
        charge["refund_refs"].append(ref)
        self.store.put(f"charge:{charge_ref}", charge, account_id=account_id)
        data = {
            "refund_ref": ref,
            "charge_ref": charge_ref,
            "amount_minor": amount_minor,
            "currency": currency,
        }
        self._schedule(
            account_id,
            f"refund.{'failed' if failure else 'succeeded'}",
            ref,
            settles_at,
            {**data, **_outcome(failure)},
        )
        return refund

    # --- disputes -------------------------------------------------------------------------------

    def _open_dispute(
        self, account_id: int, scenario: dict[str, Any], money: dict[str, Any], now: datetime
    ) -> str:
        ref, due_by = _ref("dp"), now + EVIDENCE_WINDOW
        data = {
            "dispute_ref": ref,
            **money,
            "reason": scenario["dispute_reason"],
            "is_inquiry": scenario["is_inquiry"],
        }
        self._schedule(
            account_id, "dispute.created", ref, now, {**data, "evidence_due_by": due_by.isoformat()}
        )
        # Unanswered by the deadline -> lost; answering or accepting deletes this event.
        deadline_event = self._schedule(account_id, "dispute.lost", ref, due_by, data)
        dispute = {
            "account_id": account_id,
            "data": data,
            "status": "needs_response",
            "outcome": None,
            "evidence_due_by": due_by.isoformat(),
            "deadline_event": deadline_event,
            "decided_at": None,
        }
        self.store.put(f"dispute:{ref}", dispute, account_id=account_id)
        return ref

    @staticmethod
    def _dispute_status(dispute: dict[str, Any], now: datetime) -> str:
        if dispute["status"] == "needs_response" and now >= parse_time(dispute["evidence_due_by"]):
            return "lost"
        if dispute["status"] == "under_review" and now >= parse_time(dispute["decided_at"]):
            return dispute["outcome"]
        return dispute["status"]

    def _answerable_dispute(self, account_id: int, dispute_ref: str, now: datetime) -> dict[str, Any]:
        dispute = self._owned(f"dispute:{dispute_ref}", account_id, "no_such_dispute")
        status = self._dispute_status(dispute, now)
        if status == "under_review":
            raise processor_failure("dispute_already_answered")
        if status != "needs_response":
            raise processor_failure("dispute_closed")
        return dispute

    def _decide(
        self, account_id: int, dispute: dict[str, Any], status: str, outcome: str, at: datetime
    ) -> DisputeResult:
        data = dispute["data"]
        self.store.delete(f"event:{dispute['deadline_event']}")
        self._schedule(account_id, f"dispute.{outcome}", data["dispute_ref"], at, data)
        dispute.update(status=status, outcome=outcome, decided_at=at.isoformat())
        self.store.put(f"dispute:{data['dispute_ref']}", dispute, account_id=account_id)
        fields = {k: data[k] for k in _DISPUTE_FIELDS}
        return DisputeResult(status=status, evidence_due_by=parse_time(dispute["evidence_due_by"]), **fields)

    def submit_dispute_evidence(
        self, account_id: int, dispute_ref: str, evidence: DisputeEvidence, now: datetime
    ) -> DisputeResult:
        now = as_utc(now)
        # H5/H13: check and answer in one transaction, the dispute's row locked: a dispute gets one answer.
        with self.store.transaction() as tx:
            inner = self._within(tx)
            dispute = inner._answerable_dispute(account_id, dispute_ref, now)
            if evidence.is_empty():
                raise processor_failure("evidence_required")
            evidence_text = "\n".join([evidence.text, *evidence.fields.values()])
            # Magic words let tests and demos pick the outcome; other evidence wins after a bank's review.
            if "winning_evidence" in evidence_text:
                return inner._decide(account_id, dispute, "under_review", "won", now + DECISION_DELAY)
            if "losing_evidence" in evidence_text:
                return inner._decide(account_id, dispute, "under_review", "lost", now + DECISION_DELAY)
            return inner._decide(account_id, dispute, "under_review", "won", now + DEFAULT_DECISION_DELAY)

    def accept_dispute(self, account_id: int, dispute_ref: str, now: datetime) -> DisputeResult:
        now = as_utc(now)
        with self.store.transaction() as tx:
            inner = self._within(tx)
            dispute = inner._answerable_dispute(account_id, dispute_ref, now)
            return inner._decide(account_id, dispute, "lost", "lost", now)

    def lookup_dispute(self, account_id: int, dispute_ref: str, now: datetime) -> DisputeResult | None:
        """The dispute as the processor sees it at ``now`` (was an answer recorded?), or None if unknown."""
        dispute = self.store.get(f"dispute:{dispute_ref}")
        if dispute is None or dispute["account_id"] != account_id:
            return None
        data = dispute["data"]
        return DisputeResult(status=self._dispute_status(dispute, as_utc(now)),
                             evidence_due_by=parse_time(dispute["evidence_due_by"]),
                             **{k: data[k] for k in _DISPUTE_FIELDS})

    # --- events ---------------------------------------------------------------------------------

    def _schedule(
        self, account_id: int, type_: str, object_ref: str, due: datetime, data: dict[str, Any]
    ) -> str:
        # The nanosecond prefix orders events due at the same clock instant by creation (dispute.created
        # before an immediate dispute.lost), because scan_due breaks due_at ties by key.
        event_id = f"evt_{time.time_ns():016x}{secrets.token_hex(6)}"
        event = {
            "kind": "event",
            "id": event_id,
            "type": type_,
            "account_id": account_id,
            "object_ref": object_ref,
            "occurred_at": due.isoformat(),
            "data": data,
            "acknowledged": False,
        }
        self.store.put(f"event:{event_id}", event, account_id=account_id, due_at=due)
        return event_id

    def due_events(self, account_id: int, now: datetime) -> list[ProcessorEvent]:
        rows = self.store.scan_due(account_id, as_utc(now))
        return [
            ProcessorEvent(
                id=row["id"],
                type=row["type"],
                account_id=row["account_id"],
                object_ref=row["object_ref"],
                occurred_at=parse_time(row["occurred_at"]),
                data=row["data"],
            )
            for row in rows
            if row.get("kind") == "event" and not row["acknowledged"]
        ]

    def acknowledge_event(self, event_id: str) -> None:
        row = self.store.get(f"event:{event_id}")
        if row is not None and not row["acknowledged"]:
            row["acknowledged"] = True
            # Clearing due_at takes it out of scan_due; the row stays as the processor's history.
            self.store.put(f"event:{event_id}", row, account_id=row["account_id"], due_at=None)

    # --- saved payment methods ------------------------------------------------------------------

    def save_card(self, account_id: int, *, card: CardDetails | None = None, payment_method_token: str | None = None,
                  idempotency_key: str, now: datetime, on_session: bool = False) -> SavedCard:
        """Keep a card for later charges without charging it (a subscriber updating their card). The sandbox
        takes test card details; it makes no customer or setup object, so the key has nothing to key."""
        if card is None:
            raise processor_failure("payment_method_required")
        now = as_utc(now)
        request = ChargeRequest(account_id=account_id, idempotency_key="save-card", amount_minor=1,
                                currency="USD", method="card", card=card, now=now)
        source, scenario = self._card_source(request, now)
        scenario.pop("authenticate", None)  # B2: the test card asks for 3-D Secure at a checkout's charge only
        token = f"pm_{secrets.token_hex(12)}"
        pm = {"account_id": account_id, "behaviour": "succeed", "scenario": scenario, **source}
        self.store.put(f"pm:{token}", pm, account_id=account_id)
        return SavedCard(token=token, brand=source["brand"], last4=source["last4"],
                         exp_month=source["exp_month"], exp_year=source["exp_year"])

    def finish_save_card(self, account_id: int, setup_ref: str, idempotency_key: str, now: datetime) -> SavedCard:
        """The sandbox saves a card at once and never asks the buyer for an action: nothing waits (K8)."""
        raise ProcessorFailure("no_such_setup")

    # --- payouts --------------------------------------------------------------------------------
    # The sandbox's bank takes every transfer: a payout is in transit at the moment it is sent and paid from
    # any later moment. Kassa announces the arrival day itself (the next business day) and asks then, so
    # that is when the merchant sees it paid. (A refused transfer is a test fixture: refuse_next_payout.)

    def send_payout(
        self, account_id: int, amount_minor: int, currency: str, idempotency_key: str, now: datetime
    ) -> PayoutResult:
        now = as_utc(now)
        if not isinstance(amount_minor, int) or isinstance(amount_minor, bool):
            raise processor_failure("invalid_amount")
        if len(currency) != 3 or not currency.isupper() or not is_currency(currency):
            raise processor_failure("invalid_currency")
        index_key, fingerprint = f"idem:payout:{account_id}:{idempotency_key}", f"{amount_minor}|{currency}"
        # H5: the payout and its key in one transaction: a key points at a whole payout or at nothing.
        with self.store.transaction() as tx:
            index = tx.get(index_key)
            if index is None:
                ref = _ref("po")
                payout = {"account_id": account_id, "amount_minor": amount_minor, "currency": currency,
                          "created_at": now.isoformat()}
                tx.put(f"payout:{ref}", payout, account_id=account_id)
                tx.put(index_key, {"ref": ref, "fingerprint": fingerprint}, account_id=account_id)
            elif index["fingerprint"] != fingerprint:
                raise processor_failure("idempotency_key_reused")
            else:
                ref = index["ref"]
                payout = self._within(tx)._owned(f"payout:{ref}", account_id, "no_such_payout")
        return self._payout_result(ref, payout, now)

    def lookup_payout(self, account_id: int, idempotency_key: str, now: datetime) -> PayoutResult | None:
        index = self.store.get(f"idem:payout:{account_id}:{idempotency_key}")
        if index is None:
            return None
        return self._payout_result(index["ref"], self._owned(f"payout:{index['ref']}", account_id, "no_such_payout"),
                                   as_utc(now))

    @staticmethod
    def _payout_result(ref: str, payout: dict[str, Any], now: datetime) -> PayoutResult:
        created_at = parse_time(payout["created_at"])
        return PayoutResult(processor_ref=ref, status="paid" if now > created_at else "in_transit",
                            amount_minor=payout["amount_minor"], currency=payout["currency"], created_at=created_at)

    # --- sandbox-only controls (not in the Processor protocol) ------------------------------------

    def payment_method_behaviour(self, account_id: int, token: str) -> str:
        """B9: what a saved test card does on its next charge: "succeed" or "decline"."""
        pm = self._owned(f"pm:{token}", account_id, "no_such_payment_method")
        return pm.get("behaviour", "succeed")

    def set_payment_method_behaviour(
        self, account_id: int, token: str, behaviour: Literal["succeed", "decline"]
    ) -> None:
        """T5: a test subscription's saved card declines from its next charge (or succeeds again)."""
        if behaviour not in ("succeed", "decline"):
            raise ValueError(f"unknown behaviour {behaviour!r}")
        pm = self._owned(f"pm:{token}", account_id, "no_such_payment_method")
        pm["behaviour"] = behaviour
        self.store.put(f"pm:{token}", pm, account_id=account_id)
