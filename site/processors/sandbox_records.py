"""How the sandbox stores a charge and recognises a request again (H5, T1): shared by the one-by-one
path (sandbox.py) and the batch path (sandbox_batch.py), so neither reaches into the other's private names
and the two modules don't import each other."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from kassa import clock
from kassa.processors import testcards
from kassa.processors.base import N_, ChargeRequest, ChargeResult, ProcessorFailure

# A request that died while charging frees its idempotency key after this long.
IN_FLIGHT_LEASE = timedelta(minutes=1)


def in_flight_lease() -> tuple[datetime, datetime]:
    """(now, until) for holding an idempotency key while its charge is made, on real time.

    Not on the request's `now`: a test subscription's charge carries its test clock's time (B9), which another
    request for the same key may read days later once the clock has moved on, and would then take the key as
    abandoned while the first charge is still being made, and charge a second time."""
    moment = clock.now()
    return moment, moment + IN_FLIGHT_LEASE


# ProcessorFailure codes the sandbox answers with, and their user-facing messages.
ERRORS: dict[str, str] = {
    "invalid_amount": N_("The amount must be greater than zero."),
    "invalid_currency": N_("This currency is not supported."),
    "invalid_request": N_("The payment request is incomplete or contradictory."),
    "idempotency_key_reused": N_("Idempotency key reused with different parameters."),
    "no_such_charge": N_("This payment does not exist at the processor."),
    "no_such_payment_method": N_("This saved payment method does not exist."),
    "payment_method_required": N_("Enter the card's details."),
    "no_such_dispute": N_("This dispute does not exist at the processor."),
    "no_such_payout": N_("This payout does not exist at the processor."),
    "currency_mismatch": N_("A refund must be in the payment's currency."),
    "charge_not_settled": N_("A bank debit can be refunded once it has succeeded."),
    "charge_failed": N_("A failed payment cannot be refunded."),
    "charge_too_old": N_("Bank debits can only be refunded within 180 days."),
    "charge_disputed": N_("A disputed payment cannot be refunded."),
    "amount_too_large": N_("The refund is larger than the amount left to refund."),
    "dispute_already_answered": N_("Evidence was already submitted for this dispute."),
    "dispute_closed": N_("This dispute is closed."),
    "evidence_required": N_("Add evidence before submitting."),
}


def index_key_of(req: ChargeRequest) -> str:
    """The store key of a charge's idempotency key (keys are per account)."""
    return f"idem:charge:{req.account_id}:{req.idempotency_key}"


def processor_failure(code: str) -> ProcessorFailure:
    return ProcessorFailure(code, ERRORS[code])


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("the sandbox needs aware datetimes (UTC)")
    return moment.astimezone(UTC)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def charge_fingerprint(req: ChargeRequest) -> str:
    # Enough to tell "same request" from "different request" without keeping the card number.
    if req.card is not None:
        digits = testcards.normalize_card_number(req.card.number)
        source = f"card:{digits[-4:]}:{req.card.exp_month}:{req.card.exp_year}"
    elif req.bank is not None and req.method == "sepa":
        iban = testcards.normalize_iban(req.bank.iban)
        source = f"iban:{iban[:2]}:{iban[-4:]}"
    elif req.bank is not None:
        account = testcards.normalize_card_number(req.bank.account_number)
        source = f"bank:{testcards.normalize_card_number(req.bank.routing_number)}:{account[-4:]}"
    else:
        source = f"token:{req.payment_method_token}"
    # None and the payment currency mean the same settlement, so they must not look like different requests.
    settlement = req.settlement_currency or req.currency
    parts = (req.method, req.amount_minor, req.currency, settlement, source, req.save_payment_method)
    return "|".join(map(str, parts))


def charge_from_record(data: dict[str, Any]) -> ChargeResult:
    return ChargeResult(
        **{**data, "exchange_rate": Decimal(data["exchange_rate"]), "created_at": parse_time(data["created_at"])}
    )


def charge_to_record(result: ChargeResult) -> dict[str, Any]:
    return {
        # Shallow: every field is a flat, immutable value (asdict's deep copies cost a batch dearly).
        **{f.name: getattr(result, f.name) for f in fields(result)},
        "exchange_rate": str(result.exchange_rate),
        "created_at": result.created_at.isoformat(),
    }
