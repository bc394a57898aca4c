"""Money as integer minor units plus an ISO 4217 code: arithmetic, parsing and locale formatting."""

from __future__ import annotations

import operator
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, Inexact, InvalidOperation, localcontext
from functools import lru_cache

from babel import Locale, numbers

LocaleArg = str | Locale

# Far above any real price and far below BigInteger's 9.2e18, so totals of parsed amounts still fit.
MAX_PARSED_MINOR = 10**15
# Wide enough that the decimal context never rounds an amount a column can hold.
_EXACT_PRECISION = 100
_SPACES = " \u00a0\u202f\u2009"
_APP_LOCALES = ("en", "nl", "fr")


def N_(text: str) -> str:
    """Marks a message for translation (Babel extracts it); the UI translates `template` with `params`."""
    return text


class MoneyError(ValueError):
    """An amount or currency that cannot be a Money; `.message` is fit to show to a person.

    `template` and `params` let the UI show the message in the user's language:
    `gettext(exc.template, **exc.params)`.
    """

    def __init__(self, template: str, **params: object) -> None:
        self.template = template
        self.params = params
        self.message = template % params if params else template
        super().__init__(self.message)


class CurrencyMismatch(MoneyError):
    """Two amounts in different currencies were combined or compared."""


class MoneyParseError(MoneyError):
    """Text typed into an amount field is not an amount in that field's currency."""


@lru_cache(maxsize=1)
def _currencies() -> frozenset[str]:
    return frozenset(numbers.list_currencies())


def is_known_currency(code: object) -> bool:
    return isinstance(code, str) and code in _currencies()


@lru_cache(maxsize=512)
def exponent(currency: str) -> int:
    # Babel answers 2 for codes it doesn't know, which would quietly accept a typo like "EUT".
    if not is_known_currency(currency):
        raise MoneyError(f"Unknown currency {currency!r}")
    return numbers.get_currency_precision(currency)


def _decimals_error(currency: str) -> MoneyParseError:
    exp = exponent(currency)
    if exp == 0:
        return MoneyParseError(N_("%(currency)s amounts have no decimals"), currency=currency)
    return MoneyParseError(N_("%(currency)s amounts have at most %(n)d decimals"), currency=currency, n=exp)


def _decimal_to_minor(value: Decimal, currency: str) -> int:
    # Works on the digits rather than in a decimal context, so nothing can be rounded on the way.
    if not value.is_finite():
        raise MoneyError("An amount must be a finite number")
    if value.adjusted() > 40:
        raise MoneyError("The amount is too large")
    sign, digits, exp10 = value.as_tuple()
    coefficient = "".join(map(str, digits)).rstrip("0")
    if not coefficient:
        return 0
    shift = int(exp10) + len(digits) - len(coefficient) + exponent(currency)
    if shift < 0:
        raise _decimals_error(currency)
    return (-1 if sign else 1) * int(coefficient) * 10**shift


def _comparison(op: Callable[[int, int], bool]) -> Callable[[Money, object], bool]:
    def compare(self: Money, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return op(self.amount_minor, other.amount_minor)

    return compare


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        # bool is an int subclass and Decimal/float look numeric; each would hide a unit mistake.
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise MoneyError(f"amount_minor must be an int, not {type(self.amount_minor).__name__}")
        if not (isinstance(self.currency, str) and re.fullmatch(r"[A-Z]{3}", self.currency)):
            raise MoneyError(f"Currency must be three capital letters, not {self.currency!r}")
        if not is_known_currency(self.currency):
            raise MoneyError(f"Unknown currency {self.currency!r}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_major(cls, value: Decimal | str | int, currency: str) -> Money:
        """Exact: more decimals than the currency has raise MoneyError instead of being rounded."""
        if isinstance(value, bool | float) or not isinstance(value, Decimal | str | int):
            raise MoneyError(f"Money.from_major takes Decimal, str or int, not {type(value).__name__}")
        try:
            decimal = Decimal(value)
        except InvalidOperation:
            raise MoneyError(f"{value!r} is not a number") from None
        return cls(_decimal_to_minor(decimal, currency), currency)

    @property
    def exponent(self) -> int:
        return exponent(self.currency)

    @property
    def major(self) -> Decimal:
        digits = tuple(int(c) for c in str(abs(self.amount_minor)))
        return Decimal((int(self.amount_minor < 0), digits, -self.exponent))

    @property
    def is_zero(self) -> bool:
        return self.amount_minor == 0

    @property
    def is_positive(self) -> bool:
        return self.amount_minor > 0

    @property
    def is_negative(self) -> bool:
        return self.amount_minor < 0

    def __bool__(self) -> bool:
        return self.amount_minor != 0

    def _same_currency(self, other: Money, verb: str) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"Can't {verb} {self.currency} and {other.currency} amounts")

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "add")
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "subtract")
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.amount_minor), self.currency)

    def __mul__(self, other: object) -> Money:
        # Quantities only: a fractional factor needs a rounding decision, which is percent()'s job.
        if isinstance(other, bool) or not isinstance(other, int):
            return NotImplemented
        return Money(self.amount_minor * other, self.currency)

    __rmul__ = __mul__
    __lt__ = _comparison(operator.lt)
    __le__ = _comparison(operator.le)
    __gt__ = _comparison(operator.gt)
    __ge__ = _comparison(operator.ge)

    def percent(self, rate: Decimal | int, rounding: str = ROUND_HALF_UP) -> Money:
        """`rate` percent of this amount (Decimal("2.9") is 2.9 %), rounded once to the minor unit."""
        if isinstance(rate, bool | float) or not isinstance(rate, Decimal | int):
            raise MoneyError(f"A rate must be a Decimal or int, not {type(rate).__name__}")
        with localcontext() as ctx:
            ctx.prec, ctx.traps[Inexact] = _EXACT_PRECISION, True
            exact = Decimal(self.amount_minor) * Decimal(rate) / 100
            ctx.traps[Inexact] = False  # from here on the rounding is the point
            return Money(int(exact.quantize(Decimal(1), rounding=rounding)), self.currency)

    def format(self, locale: LocaleArg = "en") -> str:
        return _format(self.amount_minor, self.currency, str(locale))

    def to_major_str(self) -> str:
        return format(self.major, "f")

    def to_input(self, locale: LocaleArg = "en") -> str:
        """The amount as it goes back into a price field: "1234.50" (en), "1234,50" (nl); parse_money reads it."""
        return self.to_major_str().replace(".", numbers.get_decimal_symbol(locale))

    def __str__(self) -> str:
        return f"{self.currency} {self.to_major_str()}"


@lru_cache(maxsize=16384)
def _format(amount_minor: int, currency: str, locale: str) -> str:
    # Cached: an index page formats the same few prices over and over, and Babel's formatting is slow.
    major = Money(amount_minor, currency).major
    with localcontext() as ctx:  # Babel quantizes in the current context, 28 digits by default
        ctx.prec = _EXACT_PRECISION
        text = numbers.format_currency(major, currency, locale=locale, currency_digits=True)
    return _space_letter_symbol(text, numbers.get_currency_symbol(currency, locale))


def _space_letter_symbol(text: str, symbol: str) -> str:
    # CLDR currency spacing, which ICU applies and Babel doesn't: a symbol ending in a letter must not
    # touch the digits, or "KWD1.235" reads as one word.
    def apart(symbol_edge: str, neighbour: str) -> bool:
        return neighbour.isdigit() and unicodedata.category(symbol_edge)[0] not in "SZ"

    at, end = text.find(symbol), text.find(symbol) + len(symbol)
    if at < 0 or not symbol:
        return text
    if end < len(text) and apart(symbol[-1], text[end]):
        return f"{text[:end]}\u00a0{text[end:]}"
    if at > 0 and apart(symbol[0], text[at - 1]):
        return f"{text[:at]}\u00a0{text[at:]}"
    return text


def format_money(money: Money, locale: LocaleArg = "en") -> str:
    return money.format(locale)


def sum_money(items: Iterable[Money], currency: str) -> Money:
    total = Money.zero(currency)
    for item in items:
        total += item
    return total


@lru_cache(maxsize=1024)
def _markers(currency: str, locale: LocaleArg = "en") -> tuple[str, ...]:
    found = {currency.casefold()}
    for loc in dict.fromkeys((locale, *_APP_LOCALES)):
        symbol = numbers.get_currency_symbol(currency, loc)
        found.add(symbol.casefold())
        # Without its letters "US$"/"CA$"/"JP¥" is CLDR's narrow symbol, which is what people type.
        narrow = re.sub(r"[A-Za-z]", "", symbol)
        if narrow and all(unicodedata.category(c) == "Sc" for c in narrow):
            found.add(narrow)
    # Longest first so "us$" is stripped whole instead of leaving "us" behind.
    return tuple(sorted(found, key=len, reverse=True))


@lru_cache(maxsize=1)
def _all_markers() -> frozenset[str]:
    return frozenset(m for code in _currencies() for m in _markers(code))


def _strip_markers(text: str, currency: str, locale: LocaleArg) -> tuple[str, bool]:
    s, negative, markers = text.strip(), False, _markers(currency, locale)
    for _ in range(2):  # locales put the minus before ("-€5") or after ("€ -5") the symbol
        if s[:1] in ("-", "\u2212") and not negative:
            s, negative = s[1:].strip(), True
        elif s[:1] == "+":
            s = s[1:].strip()
        prefix = next((m for m in markers if s.casefold().startswith(m)), "")
        s = s[len(prefix) :].strip()
    suffix = next((m for m in markers if s.casefold().endswith(m)), "")
    return s[: len(s) - len(suffix)].strip(), negative


def parse_money(text: str, currency: str, locale: LocaleArg = "en", *, allow_negative: bool = False) -> Money:
    """Read an amount as a merchant types it in `locale`, forgiving only where the reading is unambiguous."""
    exp = exponent(currency)
    dec, group = numbers.get_decimal_symbol(locale), numbers.get_group_symbol(locale)
    frac_example = "5".ljust(exp, "0") if exp else ""
    example = f"12{dec}{frac_example}" if exp else "1250"
    bad_grouping = MoneyParseError(N_("Enter an amount like %(example)s"),
                                   example=f"1{group}234{dec if exp else ''}{frac_example}")

    core, negative = _strip_markers(text or "", currency, locale)
    if not core:
        raise MoneyParseError(N_("Enter an amount"))
    core = re.sub(f"[{_SPACES}]", " ", core)
    groupers = re.escape(" " + (group if group not in ".," + _SPACES else ""))
    if not re.fullmatch(f"[0-9.,{groupers}]*[0-9][0-9.,{groupers}]*", core):
        edges = {m.strip().casefold() for m in (re.match(r"\D*", core)[0], re.search(r"\D*$", core)[0])}
        if edges & _all_markers():
            raise MoneyParseError(N_("Enter the amount in %(currency)s"), currency=currency)
        raise MoneyParseError(N_("Enter an amount like %(example)s"), example=example)

    parts = re.split(f"([.,{groupers}])", core)
    runs, seps = parts[0::2], parts[1::2]
    marks = [(i, s) for i, s in enumerate(seps) if s in ".,"]
    decimal_at = None
    if len({s for _, s in marks}) == 2:
        # Both "." and "," typed: the last one is the decimal separator, whatever the locale.
        decimal_at = marks[-1][0]
        if [s for _, s in marks].count(marks[-1][1]) > 1:
            raise bad_grouping
    elif len(marks) == 1 and marks[0][0] == len(seps) - 1 and (len(runs[-1]) != 3 or marks[0][1] == dec):
        # A lone mark before exactly three digits could be thousands; only then does the locale decide.
        decimal_at = marks[0][0]
    if decimal_at is not None and decimal_at != len(seps) - 1:
        raise bad_grouping
    whole_runs, group_seps, fraction = (
        (runs, seps, "") if decimal_at is None else (runs[:-1], seps[:-1], runs[-1])
    )
    if group_seps and (
        len(set(group_seps)) > 1
        or not 1 <= len(whole_runs[0]) <= 3
        or whole_runs[0].startswith("0")
        or any(len(run) != 3 for run in whole_runs[1:])
    ):
        raise bad_grouping

    whole = "".join(whole_runs).lstrip("0")
    if len(fraction) > exp:
        raise _decimals_error(currency)
    if len(whole) + exp > len(str(MAX_PARSED_MINOR)):
        raise MoneyParseError(N_("The amount is too large"))
    minor = int(whole or "0") * 10**exp + int(fraction.ljust(exp, "0") or "0")
    if minor > MAX_PARSED_MINOR:
        raise MoneyParseError(N_("The amount is too large"))
    if negative and minor and not allow_negative:
        raise MoneyParseError(N_("The amount can't be negative"))
    return Money(-minor if negative else minor, currency)
