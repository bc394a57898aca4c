"""Sandbox pricing: the fixed fee schedule and FX rate table, and the fee and conversion maths."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal

from babel.numbers import get_currency_precision

from kassa.processors.base import N_, ProcessorFailure

__all__ = ["FEE_SCHEDULE", "UNITS_PER_USD", "FeeRule", "can_settle", "compute_fee", "convert_minor", "exchange_rate"]


@dataclass(frozen=True)
class FeeRule:
    """One method's price: a percentage plus a fixed part, optionally capped; minor units by exponent."""

    percent: Decimal
    fixed_minor: dict[int, int]
    cap_minor: dict[int, int] | None = None


# Fee schedule (``FEE_SCHEDULE``), charged in the payment currency and rounded half up to the minor unit:
#
#     method  percent  fixed part                       cap
#     card    2.9 %    0.30 (JPY 30, KWD 0.100)         none
#     ach     0.8 %    none                             5.00 (JPY 500, KWD 1.500)
#     sepa    none     0.35 (flat, Q10)                 none
#
# The fixed part and cap are kept per currency exponent (2 decimals: 30 / 500 minor units; 0 decimals:
# 30 / 500 units; 3 decimals: 100 / 1500), roughly the same value as USD 0.30 / 5.00. A fee never
# exceeds the amount charged.
FEE_SCHEDULE: dict[str, FeeRule] = {
    "card": FeeRule(Decimal("2.9"), {0: 30, 2: 30, 3: 100}),
    "ach": FeeRule(Decimal("0.8"), {0: 0, 2: 0, 3: 0}, {0: 500, 2: 500, 3: 1500}),
    "sepa": FeeRule(Decimal("0"), {0: 35, 2: 35, 3: 350}),
}

# Exchange rates (``UNITS_PER_USD``) are fixed so tests and demos are reproducible: payment -> settlement
# rate = units_per_usd[settlement] / units_per_usd[payment], kept to 10 significant digits; settlement
# amounts are rounded half up. Same currency -> rate 1 (any ISO currency works then).
# Value of one USD in each currency (approximate mid-market rates, fixed on purpose).
UNITS_PER_USD: dict[str, Decimal] = {
    code: Decimal(rate)
    for code, rate in (
        ("USD", "1"),
        ("EUR", "0.92"),
        ("GBP", "0.79"),
        ("JPY", "150"),
        ("KWD", "0.307"),
        ("CAD", "1.36"),
        ("CHF", "0.88"),
        ("SEK", "10.50"),
        ("DKK", "6.86"),
        ("NOK", "10.60"),
        ("AUD", "1.52"),
    )
}
_RATE_CONTEXT = Context(prec=10, rounding=ROUND_HALF_UP)


def _half_up(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def _per_exponent(table: dict[int, int], exponent: int) -> int:
    # Exponents outside the table scale the two-decimal value (e.g. CLF, 4 decimals).
    return table.get(exponent, _half_up(Decimal(table[2]).scaleb(exponent - 2)))


def compute_fee(method: str, amount_minor: int, currency: str) -> int:
    """The sandbox's fee for a charge, in minor units of the payment currency (see FEE_SCHEDULE)."""
    rule, exponent = FEE_SCHEDULE[method], get_currency_precision(currency)
    fee = _half_up(Decimal(amount_minor) * rule.percent / 100 + _per_exponent(rule.fixed_minor, exponent))
    if rule.cap_minor is not None:
        fee = min(fee, _per_exponent(rule.cap_minor, exponent))
    return min(fee, amount_minor)


def exchange_rate(from_currency: str, to_currency: str) -> Decimal:
    """Fixed payment -> settlement rate (major units); ProcessorFailure for a pair outside the table."""
    if from_currency == to_currency:
        return Decimal(1)
    if from_currency not in UNITS_PER_USD or to_currency not in UNITS_PER_USD:
        raise ProcessorFailure(
            "currency_not_supported",
            N_("This currency cannot be settled in the account's settlement currency."),
        )
    return _RATE_CONTEXT.divide(UNITS_PER_USD[to_currency], UNITS_PER_USD[from_currency])


def can_settle(currency: str, settlement_currency: str) -> bool:
    """Whether the sandbox takes a payment in `currency` for an account settling in `settlement_currency`:
    the same currency (any ISO code Babel knows), or two currencies of the rate table."""
    from babel.numbers import is_currency

    if len(currency) != 3 or not currency.isupper() or not is_currency(currency):
        return False
    return currency == settlement_currency or (currency in UNITS_PER_USD and settlement_currency in UNITS_PER_USD)


def convert_minor(amount_minor: int, from_currency: str, to_currency: str, rate: Decimal) -> int:
    """Convert minor units across currencies with different exponents, rounding half up."""
    major = Decimal(amount_minor).scaleb(-get_currency_precision(from_currency)) * rate
    return _half_up(major.scaleb(get_currency_precision(to_currency)))
