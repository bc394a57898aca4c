"""V1 (Q6): tax on the lines of a merchant's invoice, computed as Q6 computes a checkout's (kassa.tax: per line,
on the net after its discount, half up in minor units; exclusive tax is added, inclusive tax is the part of the price
that is tax), and the invoice's tax per rate."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from kassa.tax import TaxRateSpec, exclusive_tax, inclusive_tax


def line_tax(net_minor: int, rate: TaxRateSpec | None) -> int:
    """Q6's computation per line (kassa.tax): exclusive = round_half_up(net × rate), inclusive = net −
    round_half_up(net / (1 + rate)), in the currency's minor unit."""
    if rate is None:
        return 0
    return inclusive_tax(net_minor, rate.percentage_bp) if rate.inclusive else exclusive_tax(net_minor,
                                                                                            rate.percentage_bp)


@dataclass(frozen=True)
class TaxRow:
    """One rate's part of an invoice: the amount it applied to (the lines' net) and the tax."""

    name: str
    percentage_bp: int
    inclusive: bool
    taxable_minor: int
    tax_minor: int

    @property
    def percent(self) -> Decimal:
        return (Decimal(self.percentage_bp) / 100).normalize()


def tax_breakdown(lines) -> list[TaxRow]:
    """The tax per rate of saved InvoiceLines (name, percentage and inclusive together make a rate), in the order
    the rates first appear."""
    rows: dict[tuple[str, int, bool], list[int]] = {}
    for line in lines:
        if not line.tax_name:
            continue
        row = rows.setdefault((line.tax_name, line.tax_percentage_bp, line.tax_inclusive), [0, 0])
        row[0] += line.amount_minor
        row[1] += line.tax_minor
    return [TaxRow(name, bp, inclusive, taxable, tax) for (name, bp, inclusive), (taxable, tax) in rows.items()]


def line_rate(line) -> TaxRow:
    """A saved line's rate, for its label ("VAT (21%)", "Incl. VAT (21%)")."""
    return TaxRow(line.tax_name, line.tax_percentage_bp, line.tax_inclusive, line.amount_minor, line.tax_minor)
