"""Test card / bank account tables and the format checks run before a charge (SPEC T2-T4, C3, C5)."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kassa.processors.base import BankDetails, CardDetails, PaymentDetailsInvalid
from kassa.processors.testcards import (
    AUTHENTICATION_CARDS,
    BANK_ACCOUNTS,
    BLOCKED_CARDS,
    CARDS,
    FAILING_CARDS,
    SCENARIO_CARDS,
    SUCCEEDING_CARDS,
    TEST_ROUTING_NUMBER,
    card_brand,
    card_number_groups,
    expected_cvc_length,
    format_card_number,
    luhn_ok,
    normalize_card_number,
    parse_expiry,
    routing_checksum_ok,
    validate_bank,
    validate_card,
    validate_expiry,
)

TODAY = date(2026, 4, 22)

# SPEC T2, copied from the seed: number -> (brand, funding).
T2 = {
    "4242424242424242": ("visa", "credit"),
    "4000056655665556": ("visa", "debit"),
    "5555555555554444": ("mastercard", "credit"),
    "2223003122003222": ("mastercard", "credit"),
    "5200828282828210": ("mastercard", "debit"),
    "5105105105105100": ("mastercard", "prepaid"),
    "378282246310005": ("amex", "credit"),
    "371449635398431": ("amex", "credit"),
    "6011111111111117": ("discover", "credit"),
    "6011000990139424": ("discover", "credit"),
    "3056930009020004": ("diners", "credit"),
    "36227206271667": ("diners", "credit"),
    "3566002020360505": ("jcb", "credit"),
    "6200000000000005": ("unionpay", "credit"),
}
T3 = {
    "4000000000000036": ("incorrect_zip", "postal_code"),
    "4000000000000002": ("card_declined", None),
    "4000000000009995": ("insufficient_funds", None),
    "4000000000000069": ("expired_card", None),
    "4000000000000127": ("incorrect_cvc", "cvc"),
}
T4 = ["000123456789", "000111111116", "000111111113", "000222222227", "000333333335", "000444444440"]


def card(number, *, month=12, year=2030, cvc=None, name="Ada Lovelace"):
    if cvc is None:
        cvc = "1234" if card_brand(number) == "amex" else "123"
    return CardDetails(number, month, year, cvc, name, None)


def luhn_check_digit(payload: str) -> str:
    """Independent reference: the digit that makes payload + digit pass Luhn."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return str((10 - total % 10) % 10)


def test_t2_table_is_exactly_the_seed():
    assert {c.number: (c.brand, c.funding) for c in SUCCEEDING_CARDS} == T2
    assert all(c.decline_code is None and c.dispute_reason is None for c in SUCCEEDING_CARDS)


def test_t3_table_is_exactly_the_seed():
    assert {c.number: (c.decline_code, c.decline_field) for c in FAILING_CARDS} == T3


def test_t5_scenario_cards():
    by_number = {c.number: c for c in SCENARIO_CARDS}
    assert by_number["4000000000000259"].dispute_reason == "fraudulent"
    assert by_number["4000000000002685"].dispute_reason == "product_not_received"
    assert by_number["4000000000001976"].dispute_reason == "general"
    assert by_number["4000000000001976"].is_inquiry
    assert by_number["4000000000005126"].refund_failure_code == "expired_or_canceled_card"


def test_t4_table_is_exactly_the_seed():
    assert sorted(BANK_ACCOUNTS) == sorted(T4)
    assert BANK_ACCOUNTS["000123456789"].failure_code is None
    codes = {n: a.failure_code for n, a in BANK_ACCOUNTS.items() if a.failure_code}
    assert codes == {
        "000111111116": "debit_failed",
        "000111111113": "account_closed",
        "000222222227": "insufficient_funds",
        "000333333335": "debit_not_authorized",
        "000444444440": "invalid_currency",
    }


@pytest.mark.parametrize("number", list(T2))
def test_t2_card_is_well_formed_with_its_brand(number):
    assert luhn_ok(number)
    assert card_brand(number) == T2[number][0]
    assert validate_card(card(number), TODAY) == T2[number][0]


@pytest.mark.parametrize("number", [c.number for c in FAILING_CARDS + SCENARIO_CARDS])
def test_t3_t5_cards_pass_format_checks(number):
    # Declines are the processor's decision, not a format error.
    assert validate_card(card(number), TODAY) == "visa"


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("2221000000000009", "mastercard"),
        ("2720990000000000", "mastercard"),
        ("2721000000000000", None),
        ("5100000000000000", "mastercard"),
        ("5600000000000000", None),
        ("340000000000000", "amex"),
        ("6440000000000000", "discover"),
        ("6500000000000000", "discover"),
        ("3528000000000000", "jcb"),
        ("3589000000000000", "jcb"),
        ("3000000000000000", "diners"),
        ("3800000000000000", "diners"),
        ("8100000000000000", "unionpay"),
        ("9999", None),
        ("", None),
    ],
)
def test_card_brand_iin_ranges(number, brand):
    assert card_brand(number) == brand


def test_normalize_strips_spaces_and_dashes():
    assert normalize_card_number(" 4242 4242-4242 4242 ") == "4242424242424242"


@given(st.text(alphabet="0123456789", min_size=11, max_size=18), st.integers(min_value=1, max_value=9))
def test_luhn_accepts_valid_and_rejects_single_digit_errors(payload, delta):
    number = payload + luhn_check_digit(payload)
    assert luhn_ok(number)
    broken = number[:-1] + str((int(number[-1]) + delta) % 10)
    assert not luhn_ok(broken)


@pytest.mark.parametrize("bad", ["", "4", "4242 4242", "42424242424242a2"])
def test_luhn_refuses_non_numbers(bad):
    assert not luhn_ok(bad)


@pytest.mark.parametrize(("brand", "length"), [("amex", 4), ("visa", 3), ("diners", 3), (None, 3)])
def test_cvc_length_per_brand(brand, length):
    assert expected_cvc_length(brand) == length


@pytest.mark.parametrize(
    ("number", "cvc", "code"),
    [
        ("378282246310005", "123", "incomplete_cvc"),
        ("4242424242424242", "1234", "invalid_cvc"),
        ("4242424242424242", "12", "incomplete_cvc"),
        ("4242424242424242", "", "incomplete_cvc"),
        ("4242424242424242", "12a", "invalid_cvc"),
    ],
)
def test_cvc_checked_against_brand(number, cvc, code):
    with pytest.raises(PaymentDetailsInvalid) as err:
        validate_card(card(number, cvc=cvc), TODAY)
    assert (err.value.field, err.value.code) == ("cvc", code)
    assert err.value.message.startswith("Your card's security code is")


@pytest.mark.parametrize(
    ("number", "groups", "spaced"),
    [
        ("378282246310005", (4, 6, 5), "3782 822463 10005"),
        ("36227206271667", (4, 6, 4), "3622 720627 1667"),
        ("3056930009020004", (4, 4, 4, 4), "3056 9300 0902 0004"),
        ("4242424242424242", (4, 4, 4, 4), "4242 4242 4242 4242"),
    ],
)
def test_card_number_groups_for_the_checkout(number, groups, spaced):
    assert card_number_groups(card_brand(number), len(number)) == groups
    assert format_card_number(number) == spaced


def test_card_number_groups_default_by_brand():
    assert card_number_groups("amex") == (4, 6, 5)
    assert card_number_groups("diners") == (4, 6, 4)
    assert card_number_groups("visa") == (4, 4, 4, 4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12/27", (12, 2027)),
        ("12 / 27", (12, 2027)),
        ("1227", (12, 2027)),
        ("12/2027", (12, 2027)),
        ("01/30", (1, 2030)),
        ("3/29", (3, 2029)),
        (" 07 /2031 ", (7, 2031)),
    ],
)
def test_parse_expiry_formats(text, expected):
    assert parse_expiry(text) == expected


@pytest.mark.parametrize("text", ["13/27", "00/27", "1327"])
def test_parse_expiry_refuses_month_13_and_0(text):
    with pytest.raises(PaymentDetailsInvalid) as err:
        parse_expiry(text)
    assert (err.value.field, err.value.code) == ("expiry", "invalid_expiry_month")


@pytest.mark.parametrize("text", ["", "12", "12/", "ab/cd", "12/275", "1/2/27"])
def test_parse_expiry_refuses_incomplete(text):
    with pytest.raises(PaymentDetailsInvalid) as err:
        parse_expiry(text)
    assert err.value.code == "incomplete_expiry"


@given(
    month=st.integers(min_value=1, max_value=12),
    year=st.integers(min_value=2000, max_value=2099),
    fmt=st.sampled_from(["{m:02d}/{yy:02d}", "{m:02d} / {yy:02d}", "{m:02d}{yy:02d}", "{m:02d}/{y}"]),
)
def test_parse_expiry_round_trip(month, year, fmt):
    assert parse_expiry(fmt.format(m=month, yy=year % 100, y=year)) == (month, year)


@given(
    month=st.integers(min_value=1, max_value=12),
    year=st.integers(min_value=2000, max_value=2060),
    today=st.dates(min_value=date(2010, 1, 1), max_value=date(2050, 12, 31)),
)
def test_expiry_past_or_future_relative_to_today(month, year, today):
    in_past = (year, month) < (today.year, today.month)
    if in_past:
        with pytest.raises(PaymentDetailsInvalid) as err:
            validate_expiry(month, year, today)
        assert err.value.code == "expiry_in_past"
        assert err.value.message == "Your card's expiration date is in the past."
    else:
        validate_expiry(month, year, today)


def test_expiry_valid_through_end_of_month():
    validate_expiry(4, 2026, date(2026, 4, 30))
    with pytest.raises(PaymentDetailsInvalid):
        validate_expiry(4, 2026, date(2026, 5, 1))


def test_expiry_two_digit_year_and_absurd_year():
    validate_expiry(12, 27, TODAY)
    with pytest.raises(PaymentDetailsInvalid) as err:
        validate_expiry(12, 2099, TODAY)
    assert err.value.code == "invalid_expiry_year"
    with pytest.raises(PaymentDetailsInvalid) as err:
        validate_expiry(13, 2030, TODAY)
    assert err.value.code == "invalid_expiry_month"


@pytest.mark.parametrize(
    ("number", "code", "message"),
    [
        ("", "incomplete_number", "Your card number is incomplete."),
        ("4242 4242", "incomplete_number", "Your card number is incomplete."),
        ("4242424242424241", "invalid_number", "Your card number is invalid."),
        ("4242-4242-4242-424x", "invalid_number", "Your card number is invalid."),
        ("42424242424242424242", "invalid_number", "Your card number is invalid."),
        ("4111111111111111", "not_a_test_card", "Use a test card in test mode."),
    ],
)
def test_c5_card_number_errors(number, code, message):
    with pytest.raises(PaymentDetailsInvalid) as err:
        validate_card(card(number, cvc="123"), TODAY)
    assert (err.value.field, err.value.code, err.value.message) == ("number", code, message)


def test_live_mode_skips_the_test_card_table():
    assert validate_card(card("4111111111111111"), TODAY, test_mode=False) == "visa"


def test_spaced_number_is_accepted():
    assert validate_card(card("4242 4242 4242 4242"), TODAY) == "visa"


def test_card_in_the_past_is_refused():
    with pytest.raises(PaymentDetailsInvalid) as err:
        validate_card(card("4242424242424242", month=3, year=2026), TODAY)
    assert (err.value.field, err.value.code) == ("expiry", "expiry_in_past")


def test_name_on_card_is_required():
    with pytest.raises(PaymentDetailsInvalid) as err:
        validate_card(card("4242424242424242", name="  "), TODAY)
    assert err.value.field == "name"


def test_card_details_repr_hides_number_and_cvc():
    text = repr(card("4242424242424242", cvc="987"))
    assert "4242424242424242" not in text
    assert "987" not in text


# --- bank accounts -------------------------------------------------------------------------------


def bank(account, routing=TEST_ROUTING_NUMBER, name="Ada Lovelace"):
    return BankDetails(routing, account, name)


@pytest.mark.parametrize("account", T4)
def test_t4_accounts_are_accepted(account):
    assert validate_bank(bank(account)).account_number == account


def test_routing_checksum():
    assert routing_checksum_ok("110000000")
    assert routing_checksum_ok("021000021")
    assert not routing_checksum_ok("110000001")
    assert not routing_checksum_ok("11000000")


@pytest.mark.parametrize(
    ("routing", "account", "field", "code"),
    [
        ("11000000", "000123456789", "routing_number", "incomplete_routing_number"),
        ("110000001", "000123456789", "routing_number", "invalid_routing_number"),
        ("021000021", "000123456789", "routing_number", "not_a_test_account"),
        ("110000000", "123", "account_number", "incomplete_account_number"),
        ("110000000", "123456789012345678", "account_number", "invalid_account_number"),
        ("110000000", "00012345678x", "account_number", "invalid_account_number"),
        ("110000000", "000123456780", "account_number", "not_a_test_account"),
    ],
)
def test_c3_bank_details_errors(routing, account, field, code):
    with pytest.raises(PaymentDetailsInvalid) as err:
        validate_bank(bank(account, routing))
    assert (err.value.field, err.value.code) == (field, code)


def test_unknown_account_message():
    with pytest.raises(PaymentDetailsInvalid) as err:
        validate_bank(bank("000123456780"))
    assert err.value.message == "Use a test bank account in test mode."


def test_live_mode_accepts_any_well_formed_account():
    assert validate_bank(bank("000123456780", "021000021"), test_mode=False) is None


def test_account_holder_name_required():
    with pytest.raises(PaymentDetailsInvalid) as err:
        validate_bank(bank("000123456789", name=""))
    assert err.value.field == "account_holder_name"


def test_every_table_number_is_unique_and_luhn_valid():
    assert len(CARDS) == (len(SUCCEEDING_CARDS) + len(FAILING_CARDS) + len(BLOCKED_CARDS) + len(SCENARIO_CARDS)
                          + len(AUTHENTICATION_CARDS))
    assert all(luhn_ok(n) for n in CARDS)
