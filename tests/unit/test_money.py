"""DESIGN §2/§5/§7.7 money rules: integer minor units + ISO code, Babel exponents, never float."""

import dataclasses
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kassa.money import (
    MAX_PARSED_MINOR,
    CurrencyMismatch,
    Money,
    MoneyError,
    MoneyParseError,
    exponent,
    format_money,
    is_known_currency,
    parse_money,
    sum_money,
)

NBSP, NNBSP = "\u00a0", "\u202f"
CURRENCIES = ["EUR", "USD", "JPY", "KWD", "GBP"]
LOCALES = ["en", "nl", "fr"]


def eur(minor: int) -> Money:
    return Money(minor, "EUR")


# --- exponent and currency codes -------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "exp"), [("EUR", 2), ("USD", 2), ("GBP", 2), ("JPY", 0), ("KWD", 3)])
def test_money_exponent_comes_from_babel(currency, exp):
    assert exponent(currency) == exp
    assert Money(1, currency).exponent == exp


def test_money_unknown_currency_is_refused():
    assert is_known_currency("EUR")
    assert not is_known_currency("XYZ")
    assert not is_known_currency("eur")
    assert not is_known_currency(None)
    with pytest.raises(MoneyError):
        exponent("XYZ")


@pytest.mark.parametrize("currency", ["XYZ", "eur", "EURO", "EU", "", None, 978])
def test_money_currency_must_be_a_known_iso_code(currency):
    with pytest.raises(MoneyError):
        Money(100, currency)


@pytest.mark.parametrize("amount", [1.5, 1.0, Decimal("1"), True, False, "100", None])
def test_money_amount_minor_must_be_int_never_float(amount):
    with pytest.raises(MoneyError):
        Money(amount, "EUR")


def test_money_is_a_frozen_hashable_value():
    m = eur(1250)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.amount_minor = 1  # type: ignore[misc]
    assert {eur(1250), eur(1250), Money(1250, "USD")} == {eur(1250), Money(1250, "USD")}
    assert repr(m) == "Money(amount_minor=1250, currency='EUR')"


# --- major units -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [
        (Decimal("12.50"), "EUR", 1250),
        ("12.5", "EUR", 1250),
        (12, "EUR", 1200),
        ("0.01", "USD", 1),
        ("-3.10", "GBP", -310),
        (1235, "JPY", 1235),
        ("1235", "JPY", 1235),
        ("1.235", "KWD", 1235),
        (Decimal("12.500"), "EUR", 1250),  # trailing zeros need no rounding
        ("1E3", "JPY", 1000),
        (Decimal("0E-10"), "EUR", 0),
    ],
)
def test_money_from_major_is_exact(value, currency, minor):
    assert Money.from_major(value, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    ("value", "currency", "message"),
    [
        ("12.345", "EUR", "EUR amounts have at most 2 decimals"),
        (Decimal("0.001"), "USD", "USD amounts have at most 2 decimals"),
        ("12.5", "JPY", "JPY amounts have no decimals"),
        ("1.2345", "KWD", "KWD amounts have at most 3 decimals"),
        (Decimal("1E-999999"), "EUR", "EUR amounts have at most 2 decimals"),
        (Decimal("1E999999"), "EUR", "The amount is too large"),
    ],
)
def test_money_from_major_never_rounds_silently(value, currency, message):
    with pytest.raises(MoneyError) as excinfo:
        Money.from_major(value, currency)
    assert excinfo.value.message == message


@pytest.mark.parametrize(
    "value", [12.5, 0.1, True, None, "abc", "12,50", Decimal("NaN"), Decimal("Infinity")]
)
def test_money_from_major_refuses_float_and_non_numbers(value):
    with pytest.raises(MoneyError):
        Money.from_major(value, "EUR")


@pytest.mark.parametrize(
    ("money", "major", "text", "export"),
    [
        (eur(1250), Decimal("12.50"), "EUR 12.50", "12.50"),
        (eur(123450), Decimal("1234.50"), "EUR 1234.50", "1234.50"),
        (eur(5), Decimal("0.05"), "EUR 0.05", "0.05"),
        (eur(0), Decimal("0.00"), "EUR 0.00", "0.00"),
        (eur(-1250), Decimal("-12.50"), "EUR -12.50", "-12.50"),
        (Money(1235, "JPY"), Decimal("1235"), "JPY 1235", "1235"),
        (Money(1235, "KWD"), Decimal("1.235"), "KWD 1.235", "1.235"),
        (Money(1, "KWD"), Decimal("0.001"), "KWD 0.001", "0.001"),
        (eur(10**30), Decimal("1E28"), "EUR " + "1" + "0" * 28 + ".00", "1" + "0" * 28 + ".00"),
    ],
)
def test_money_major_str_and_export_keep_the_exact_exponent(money, major, text, export):
    assert money.major == major
    assert money.major.as_tuple().exponent == -money.exponent
    assert str(money) == text
    assert money.to_major_str() == export


# --- arithmetic --------------------------------------------------------------------------------------


def test_money_arithmetic_in_one_currency():
    assert eur(1250) + eur(75) == eur(1325)
    assert eur(1250) - eur(1300) == eur(-50)
    assert -eur(1250) == eur(-1250)
    assert abs(eur(-1250)) == eur(1250)
    assert eur(1250) * 3 == eur(3750)
    assert 3 * eur(1250) == eur(3750)
    assert eur(1250) * 0 == eur(0)
    assert Money.zero("JPY") == Money(0, "JPY")


def test_money_truthiness_and_sign():
    assert not eur(0) and eur(0).is_zero
    assert eur(1) and eur(1).is_positive and not eur(1).is_negative
    assert eur(-1) and eur(-1).is_negative and not eur(-1).is_positive


@pytest.mark.parametrize("factor", [1.5, 2.0, Decimal("2"), True, "2", None])
def test_money_multiplies_only_by_int_quantities(factor):
    with pytest.raises(TypeError):
        eur(100) * factor
    with pytest.raises(TypeError):
        factor * eur(100)


@pytest.mark.parametrize("other", [5, 5.0, Decimal("5"), None])
def test_money_adds_and_compares_only_money(other):
    with pytest.raises(TypeError):
        eur(100) + other
    with pytest.raises(TypeError):
        eur(100) - other
    with pytest.raises(TypeError):
        _ = eur(100) < other
    assert eur(100) != other


def test_money_comparisons_in_one_currency():
    assert eur(100) < eur(101) <= eur(101) < eur(200)
    assert eur(200) > eur(101) >= eur(101)
    assert sorted([eur(3), eur(-1), eur(2)]) == [eur(-1), eur(2), eur(3)]
    assert max(eur(3), eur(7)) == eur(7)


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
        lambda a, b: sum_money([a, b], "EUR"),
    ],
)
def test_money_mixed_currencies_are_refused(operation):
    with pytest.raises(CurrencyMismatch) as excinfo:
        operation(eur(100), Money(100, "USD"))
    assert isinstance(excinfo.value, MoneyError)


def test_money_equality_across_currencies_is_false_not_an_error():
    assert eur(100) != Money(100, "USD")
    assert not eur(100) == Money(100, "USD")  # noqa: SIM201
    assert eur(0) != Money(0, "JPY")


def test_money_sum_money():
    assert sum_money([], "KWD") == Money(0, "KWD")
    assert sum_money([eur(1), eur(2), eur(-4)], "EUR") == eur(-1)
    assert sum_money((eur(n) for n in range(5)), "EUR") == eur(10)
    with pytest.raises(CurrencyMismatch):
        sum_money([eur(1)], "USD")


# --- percent -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "rate", "rounding", "expected"),
    [
        (eur(1000), Decimal("2.9"), None, eur(29)),
        (eur(1234), Decimal("2.9"), None, eur(36)),  # 35.786 cents
        (eur(50), Decimal("1"), None, eur(1)),  # exactly half a cent rounds up
        (eur(-50), Decimal("1"), None, eur(-1)),  # and away from zero when negative
        (eur(50), Decimal("1"), ROUND_HALF_EVEN, eur(0)),
        (eur(1299), Decimal("2.9"), ROUND_DOWN, eur(37)),  # 37.671 cents
        (eur(1000), 25, None, eur(250)),
        (eur(1000), Decimal("0"), None, eur(0)),
        (Money(1234, "JPY"), Decimal("3.6"), None, Money(44, "JPY")),  # 44.424 yen
        (Money(12345, "KWD"), Decimal("2.5"), None, Money(309, "KWD")),  # 308.625 fils
        (eur(10**20 + 1), Decimal("50"), None, eur(5 * 10**19 + 1)),  # no 28-digit context rounding
    ],
)
def test_money_percent_rounds_once_to_the_minor_unit(money, rate, rounding, expected):
    result = money.percent(rate) if rounding is None else money.percent(rate, rounding=rounding)
    assert result == expected


@pytest.mark.parametrize("rate", [2.9, True, "2.9"])
def test_money_percent_refuses_float_rates(rate):
    with pytest.raises(MoneyError):
        eur(1000).percent(rate)


# --- formatting --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "locale", "expected"),
    [
        (eur(123450), "en", "€1,234.50"),
        (eur(123450), "nl", f"€{NBSP}1.234,50"),
        (eur(123450), "fr", f"1{NNBSP}234,50{NBSP}€"),
        (eur(-123450), "en", "-€1,234.50"),
        (eur(-123450), "nl", f"€{NBSP}-1.234,50"),
        (eur(5), "en", "€0.05"),
        (Money(1235, "JPY"), "en", "¥1,235"),
        (Money(1235, "JPY"), "nl", f"JP¥{NBSP}1.235"),
        (Money(1235, "JPY"), "fr", f"1{NNBSP}235{NBSP}JPY"),
        (Money(1235, "KWD"), "en", f"KWD{NBSP}1.235"),
        (Money(-1235, "KWD"), "en", f"-KWD{NBSP}1.235"),
        (Money(1234500, "KWD"), "nl", f"KWD{NBSP}1.234,500"),
        (Money(1235, "KWD"), "fr", f"1,235{NBSP}KWD"),
        (Money(100, "USD"), "en", "$1.00"),
        (Money(100, "USD"), "nl", f"US${NBSP}1,00"),
        (Money(100, "USD"), "fr", f"1,00{NBSP}$US"),
        (Money(1999, "GBP"), "en", "£19.99"),
        (Money(1999, "GBP"), "fr", f"19,99{NBSP}£GB"),
        (Money(100, "CHF"), "en", f"CHF{NBSP}1.00"),
    ],
)
def test_money_format_uses_babel_and_the_currency_precision(money, locale, expected):
    assert money.format(locale) == expected
    assert format_money(money, locale) == expected


def test_money_format_defaults_to_english_and_handles_huge_amounts():
    assert eur(1250).format() == "€12.50"
    assert eur(10**30).format("en") == f"€{10**28:,}.00"


# --- parsing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "locale", "minor"),
    [
        # en
        ("1,234.50", "EUR", "en", 123450),
        ("1234.50", "EUR", "en", 123450),
        ("1,234", "EUR", "en", 123400),
        ("1,234,567.89", "EUR", "en", 123456789),
        ("12", "EUR", "en", 1200),
        ("12.5", "EUR", "en", 1250),
        ("0.05", "EUR", "en", 5),
        (".5", "EUR", "en", 50),
        ("12.", "EUR", "en", 1200),
        ("007", "EUR", "en", 700),
        ("0", "EUR", "en", 0),
        # nl
        ("1.234,50", "EUR", "nl", 123450),
        ("1234,50", "EUR", "nl", 123450),
        ("1.234", "EUR", "nl", 123400),
        ("1.234.567", "EUR", "nl", 123456700),
        ("12,5", "EUR", "nl", 1250),
        # fr, with every space people paste as a thousands separator
        ("1 234,50", "EUR", "fr", 123450),
        (f"1{NBSP}234,50", "EUR", "fr", 123450),
        (f"1{NNBSP}234,50", "EUR", "fr", 123450),
        (f"1{NNBSP}234{NNBSP}567,89", "EUR", "fr", 123456789),
        ("1234,5", "EUR", "fr", 123450),
    ],
)
def test_money_parse_locale_notation(text, currency, locale, minor):
    assert parse_money(text, currency, locale) == Money(minor, currency)


@pytest.mark.parametrize(
    ("text", "locale", "minor"),
    [
        ("12.50", "nl", 1250),  # one mark then 1-2 digits is a decimal separator in any locale
        ("12.5", "fr", 1250),
        ("12,50", "en", 1250),
        ("1,234.50", "nl", 123450),  # both marks: the last one is the decimal separator
        ("1.234,50", "en", 123450),
        ("1 234.50", "en", 123450),
        ("1.234", "fr", 123400),  # "." is not French decimal notation, so it groups
    ],
)
def test_money_parse_forgiving_where_unambiguous(text, locale, minor):
    assert parse_money(text, "EUR", locale) == eur(minor)


def test_money_parse_nl_grouping():
    # Three digits after a lone mark are ambiguous; the locale decides.
    assert parse_money("1,234", "EUR", "en") == eur(123400)
    assert parse_money("1.234", "EUR", "nl") == eur(123400)
    with pytest.raises(MoneyParseError, match="EUR amounts have at most 2 decimals"):
        parse_money("1,234", "EUR", "nl")
    with pytest.raises(MoneyParseError, match="EUR amounts have at most 2 decimals"):
        parse_money("1.234", "EUR", "en")


@pytest.mark.parametrize(
    ("text", "currency", "locale", "minor"),
    [
        ("1,235", "JPY", "en", 1235),
        ("1.235", "JPY", "nl", 1235),
        (f"1{NNBSP}235", "JPY", "fr", 1235),
        ("¥1,235", "JPY", "en", 1235),
        ("1.234", "KWD", "en", 1234),  # KWD has 3 decimals, so "." reads as en decimal
        ("1,234", "KWD", "nl", 1234),
        ("1,234", "KWD", "en", 1234000),
        ("1,234.5", "KWD", "en", 1234500),
        ("1.234,567", "KWD", "nl", 1234567),
        ("0.001", "KWD", "en", 1),
    ],
)
def test_money_parse_jpy_and_kwd_exponents(text, currency, locale, minor):
    assert parse_money(text, currency, locale) == Money(minor, currency)


@pytest.mark.parametrize(
    ("text", "currency", "locale", "minor"),
    [
        ("€ 12,50", "EUR", "nl", 1250),
        ("€12.50", "EUR", "en", 1250),
        ("12,50 €", "EUR", "fr", 1250),
        ("12.50 EUR", "EUR", "nl", 1250),
        ("eur 12.50", "EUR", "en", 1250),
        ("EUR12.50", "EUR", "en", 1250),
        ("$5", "USD", "en", 500),
        ("US$ 5", "USD", "nl", 500),
        ("5 $US", "USD", "fr", 500),
        ("$5", "USD", "fr", 500),
        ("CA$5", "CAD", "en", 500),
        ("$5", "CAD", "en", 500),  # the narrow symbol
        ("£19.99", "GBP", "en", 1999),
        ("19,99 £GB", "GBP", "fr", 1999),
        ("KWD 1.235", "KWD", "en", 1235),
        ("  12.50  ", "EUR", "en", 1250),
        (f"{NBSP}12,50{NBSP}€{NBSP}", "EUR", "fr", 1250),
        ("+12.50", "EUR", "en", 1250),
        ("-0", "EUR", "en", 0),
    ],
)
def test_money_parse_strips_whitespace_symbol_and_code(text, currency, locale, minor):
    assert parse_money(text, currency, locale) == Money(minor, currency)


@pytest.mark.parametrize(
    ("text", "locale", "minor"),
    [
        ("-12.50", "en", -1250),
        ("-€12.50", "en", -1250),
        ("€ -12,50", "nl", -1250),
        (f"€{NBSP}-1.234,50", "nl", -123450),
        ("-12,50 €", "fr", -1250),
        ("\u221212,50", "fr", -1250),  # the Unicode minus sign
    ],
)
def test_money_parse_negative_only_when_allowed(text, locale, minor):
    assert parse_money(text, "EUR", locale, allow_negative=True) == eur(minor)
    with pytest.raises(MoneyParseError) as excinfo:
        parse_money(text, "EUR", locale)
    assert excinfo.value.message == "The amount can't be negative"


@pytest.mark.parametrize(
    ("text", "currency", "locale", "message"),
    [
        ("", "EUR", "en", "Enter an amount"),
        ("   ", "EUR", "en", "Enter an amount"),
        ("€", "EUR", "en", "Enter an amount"),
        ("-", "EUR", "en", "Enter an amount"),
        ("abc", "EUR", "en", "Enter an amount like 12.50"),
        ("abc", "EUR", "nl", "Enter an amount like 12,50"),
        ("douze", "EUR", "fr", "Enter an amount like 12,50"),
        ("12,50abc", "EUR", "nl", "Enter an amount like 12,50"),
        ("1e5", "EUR", "en", "Enter an amount like 12.50"),
        ("--5", "EUR", "en", "Enter an amount like 12.50"),
        ("(5)", "EUR", "en", "Enter an amount like 12.50"),
        (".", "EUR", "en", "Enter an amount like 12.50"),
        ("١٢", "EUR", "en", "Enter an amount like 12.50"),  # only ASCII digits
        ("x", "JPY", "en", "Enter an amount like 1250"),
        ("x", "KWD", "en", "Enter an amount like 12.500"),
        ("$5", "EUR", "en", "Enter the amount in EUR"),
        ("5 USD", "EUR", "en", "Enter the amount in EUR"),
        ("€5", "USD", "en", "Enter the amount in USD"),
        ("1,23,4", "EUR", "en", "Enter an amount like 1,234.50"),
        ("1.23.4", "EUR", "nl", "Enter an amount like 1.234,50"),
        ("12 50", "EUR", "fr", f"Enter an amount like 1{NNBSP}234,50"),
        ("1,,234", "EUR", "en", "Enter an amount like 1,234.50"),
        (",500", "EUR", "en", "Enter an amount like 1,234.50"),
        ("0,123", "EUR", "en", "Enter an amount like 1,234.50"),
        ("1,234.567.8", "EUR", "en", "Enter an amount like 1,234.50"),
        ("1.234,5,6", "EUR", "nl", "Enter an amount like 1.234,50"),
        ("1,234 567", "EUR", "en", "Enter an amount like 1,234.50"),
        ("1.234 567,5", "EUR", "nl", "Enter an amount like 1.234,50"),
        ("12,3 4", "EUR", "en", "Enter an amount like 1,234.50"),
        ("1,23,4", "JPY", "en", "Enter an amount like 1,234"),
        ("12.345", "EUR", "en", "EUR amounts have at most 2 decimals"),
        ("12,345", "EUR", "nl", "EUR amounts have at most 2 decimals"),
        ("12,5000", "EUR", "en", "EUR amounts have at most 2 decimals"),
        ("12.500", "EUR", "en", "EUR amounts have at most 2 decimals"),  # never read "1.500" as 1.5
        ("1.2345", "KWD", "en", "KWD amounts have at most 3 decimals"),
        ("12.5", "JPY", "en", "JPY amounts have no decimals"),
        ("12,50", "JPY", "nl", "JPY amounts have no decimals"),
        ("1.234", "JPY", "en", "JPY amounts have no decimals"),
        ("10000000000000.01", "EUR", "en", "The amount is too large"),
        ("1" + "0" * 4000, "EUR", "en", "The amount is too large"),
        ("1,000,000,000,000,001", "JPY", "en", "The amount is too large"),
    ],
)
def test_money_parse_error_messages(text, currency, locale, message):
    with pytest.raises(MoneyParseError) as excinfo:
        parse_money(text, currency, locale)
    assert excinfo.value.message == message
    assert str(excinfo.value) == message


def test_money_parse_largest_amount_and_zero_are_accepted():
    assert parse_money("10,000,000,000,000", "EUR", "en") == eur(MAX_PARSED_MINOR)
    assert parse_money("1,000,000,000,000,000", "JPY", "en") == Money(MAX_PARSED_MINOR, "JPY")
    assert parse_money("-1,000,000,000,000,000", "JPY", "en", allow_negative=True) == Money(-(10**15), "JPY")
    assert parse_money("0.00", "EUR", "en") == eur(0)  # "greater than zero" is the form's rule


def test_money_parse_unknown_currency_is_a_money_error():
    with pytest.raises(MoneyError):
        parse_money("12.50", "XYZ", "en")


# --- properties --------------------------------------------------------------------------------------

amounts = st.integers(min_value=-MAX_PARSED_MINOR, max_value=MAX_PARSED_MINOR)
currencies = st.sampled_from(CURRENCIES)


@given(amounts, currencies, st.sampled_from(LOCALES))
def test_money_format_parse_round_trip(minor, currency, locale):
    money = Money(minor, currency)
    assert parse_money(money.format(locale), currency, locale, allow_negative=True) == money


# KWD's "1.235" is excluded outside en: a lone mark before three digits is thousands there, by design.
EXPORT_PAIRS = [(c, loc) for c in CURRENCIES for loc in LOCALES if c != "KWD" or loc == "en"]


@given(amounts, st.sampled_from(EXPORT_PAIRS))
def test_money_export_string_parses_back(minor, pair):
    # Exports write "1234.50"; reading one back must not move the decimal point.
    currency, locale = pair
    money = Money(minor, currency)
    assert parse_money(money.to_major_str(), currency, locale, allow_negative=True) == money


@given(amounts, currencies)
def test_money_from_major_of_major_is_identity(minor, currency):
    money = Money(minor, currency)
    assert Money.from_major(money.major, currency) == money
    assert Money.from_major(money.to_major_str(), currency) == money
    assert Money.from_major(str(money).split(" ")[1], currency) == money


@given(st.integers(), st.integers(), st.integers(), currencies)
def test_money_addition_is_associative_and_commutative(a, b, c, currency):
    x, y, z = Money(a, currency), Money(b, currency), Money(c, currency)
    assert (x + y) + z == x + (y + z)
    assert x + y == y + x
    assert x - y == x + (-y)
    assert (x + y).amount_minor == a + b


@given(st.lists(st.integers()), currencies)
def test_money_sum_money_equals_the_int_sum(values, currency):
    assert sum_money([Money(v, currency) for v in values], currency) == Money(sum(values), currency)


@given(amounts, st.decimals(min_value=0, max_value=100, places=3))
def test_money_percent_is_within_half_a_minor_unit(minor, rate):
    exact = Decimal(minor) * rate / 100
    assert abs(Decimal(eur(minor).percent(rate).amount_minor) - exact) <= Decimal("0.5")
