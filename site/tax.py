"""Q6 Tax / VAT: the pure parts — which of an account's rates applies to a buyer's country, the format of EU
VAT numbers, and when VAT is reverse-charged. Kassa computes tax itself (never Stripe Tax); the amounts are
computed per line in `kassa.order_summary.build_order_summary`, from these values.

Rounding, per line, in the currency's minor unit (exact in JPY and KWD alike: only integers):
exclusive tax = round_half_up(net × rate); inclusive tax = net − round_half_up(net / (1 + rate))."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

MAX_RATE_BP = 10_000  # 100 %

# The EU member states (ISO 3166 codes). Greece's VAT numbers start with "EL", not "GR".
EU_COUNTRIES = frozenset(["AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"])

# The format of each member state's VAT number after its prefix (the national part), as the EU's VIES
# service documents it. Format only: whether the number is registered is not checked here.
VAT_FORMATS: dict[str, str] = {
    "AT": r"U\d{8}",
    "BE": r"[01]\d{9}",
    "BG": r"\d{9,10}",
    "CY": r"\d{8}[A-Z]",
    "CZ": r"\d{8,10}",
    "DE": r"\d{9}",
    "DK": r"\d{8}",
    "EE": r"\d{9}",
    "EL": r"\d{9}",
    "ES": r"[A-Z0-9]\d{7}[A-Z0-9]",
    "FI": r"\d{8}",
    "FR": r"[A-HJ-NP-Z0-9]{2}\d{9}",
    "HR": r"\d{11}",
    "HU": r"\d{8}",
    "IE": r"\d{7}[A-W][A-I]?|\d[A-Z+*]\d{5}[A-W]",
    "IT": r"\d{11}",
    "LT": r"\d{9}|\d{12}",
    "LU": r"\d{8}",
    "LV": r"\d{11}",
    "MT": r"\d{8}",
    "NL": r"\d{9}B\d{2}",
    "PL": r"\d{10}",
    "PT": r"\d{9}",
    "RO": r"[1-9]\d{1,9}",
    "SE": r"\d{10}01",
    "SI": r"\d{8}",
    "SK": r"\d{10}",
}
_VAT_RE = {prefix: re.compile(pattern) for prefix, pattern in VAT_FORMATS.items()}


def normalize_vat_id(text: str | None) -> str:
    """ "nl 1234.56789 b01" → "NL123456789B01": spaces, dots and dashes dropped, upper case."""
    return re.sub(r"[\s.\-]", "", text or "").upper()[:20]


def vat_country(vat_id: str) -> str:
    """The ISO country of a (normalized) VAT number's prefix: "EL…" is Greece ("GR")."""
    prefix = vat_id[:2]
    return "GR" if prefix == "EL" else prefix


def vat_id_valid(vat_id: str) -> bool:
    """Whether a normalized VAT number has the format of an EU member state's (prefix and national part)."""
    pattern = _VAT_RE.get(vat_id[:2])
    return pattern is not None and pattern.fullmatch(vat_id[2:]) is not None


def round_half_up_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, in integers (both ≥ 0, denominator > 0)."""
    return (2 * numerator + denominator) // (2 * denominator)


def exclusive_tax(net_minor: int, rate_bp: int) -> int:
    """Tax added on top of a net amount: round_half_up(net × rate)."""
    return round_half_up_div(max(net_minor, 0) * rate_bp, MAX_RATE_BP)


def inclusive_tax(net_minor: int, rate_bp: int) -> int:
    """The tax part of an amount that already includes it: net − round_half_up(net / (1 + rate))."""
    net_minor = max(net_minor, 0)
    return net_minor - round_half_up_div(net_minor * MAX_RATE_BP, MAX_RATE_BP + rate_bp)


@dataclass(frozen=True)
class TaxRateSpec:
    """One of an account's tax rates as pricing sees it (frozen into a checkout's snapshot)."""

    id: int
    name: str
    percentage_bp: int  # 2100 = 21 %
    inclusive: bool
    countries: tuple[str, ...] = ()  # empty: every country

    @property
    def percent(self) -> Decimal:
        return (Decimal(self.percentage_bp) / 100).normalize()

    def applies_to(self, country: str) -> bool:
        return not self.countries or country in self.countries

    def stored(self) -> dict:
        return {"id": self.id, "name": self.name, "percentage_bp": self.percentage_bp, "inclusive": self.inclusive,
                "countries": list(self.countries)}

    @classmethod
    def from_stored(cls, data: Mapping) -> TaxRateSpec:
        return cls(id=int(data.get("id") or 0), name=str(data.get("name") or ""),
                   percentage_bp=int(data.get("percentage_bp") or 0), inclusive=bool(data.get("inclusive")),
                   countries=tuple(data.get("countries") or ()))


@dataclass(frozen=True)
class TaxContext:
    """What pricing needs to apply tax: the account's active rates and the merchant's country (reverse charge).
    A link without "Collect tax" prices with no context (no tax)."""

    rates: tuple[TaxRateSpec, ...] = ()
    merchant_country: str = ""

    def rate_for(self, country: str) -> TaxRateSpec | None:
        """The rate for a buyer's country: one naming the country first, else one for every country."""
        if not country:
            return None
        named = [rate for rate in self.rates if rate.countries and country in rate.countries]
        if named:
            return named[0]
        return next((rate for rate in self.rates if not rate.countries), None)

    def reverse_charge(self, vat_id: str) -> bool:
        """B2B across EU borders: a format-valid EU VAT number of another member state than the merchant's."""
        if not vat_id or not vat_id_valid(vat_id):
            return False
        buyer = vat_country(vat_id)
        return buyer in EU_COUNTRIES and self.merchant_country in EU_COUNTRIES and buyer != self.merchant_country

    def named_countries(self) -> list[str]:
        """The countries the rates name, in order, once each (the checkout's small "Country" select)."""
        seen: list[str] = []
        for rate in self.rates:
            for country in rate.countries:
                if country not in seen:
                    seen.append(country)
        return seen

    def stored(self) -> dict:
        return {"rates": [rate.stored() for rate in self.rates], "merchant_country": self.merchant_country}

    @classmethod
    def from_stored(cls, data: Mapping | None) -> TaxContext | None:
        if not data:
            return None
        return cls(rates=tuple(TaxRateSpec.from_stored(rate) for rate in data.get("rates") or ()),
                   merchant_country=str(data.get("merchant_country") or ""))


@dataclass(frozen=True)
class TaxBreakdownRow:
    """One rate's part of an order: the taxable amounts (net of the lines it applied to) and the tax."""

    name: str
    percentage_bp: int
    inclusive: bool
    taxable_minor: int
    tax_minor: int

    @property
    def percent(self) -> Decimal:
        return (Decimal(self.percentage_bp) / 100).normalize()

    def stored(self) -> dict:
        return {"name": self.name, "percentage_bp": self.percentage_bp, "inclusive": self.inclusive,
                "taxable_minor": self.taxable_minor, "tax_minor": self.tax_minor}

    @classmethod
    def from_stored(cls, data: Mapping) -> TaxBreakdownRow:
        return cls(name=str(data.get("name") or ""), percentage_bp=int(data.get("percentage_bp") or 0),
                   inclusive=bool(data.get("inclusive")), taxable_minor=int(data.get("taxable_minor") or 0),
                   tax_minor=int(data.get("tax_minor") or 0))


def parse_countries(text: str | Iterable[str] | None) -> list[str]:
    """ "nl, BE de" → ["NL", "BE", "DE"] (duplicates dropped, order kept)."""
    parts = re.split(r"[\s,;]+", text) if isinstance(text, str) else list(text or ())
    out: list[str] = []
    for part in parts:
        code = part.strip().upper()
        if code and code not in out:
            out.append(code)
    return out
