"""Q10: IBAN checks for SEPA Direct Debit — country, its length, characters, ISO 13616 mod-97; spaces and lower case
accepted; Stripe's published test IBANs known to the sandbox."""

from __future__ import annotations

import pytest

from kassa.processors import testcards
from kassa.processors.base import BankDetails, PaymentDetailsInvalid, bank_debit_for


def _check(iban: str, *, test_mode: bool = False, name: str = "Ann Buyer"):
    return testcards.validate_iban(BankDetails(iban=iban, account_holder_name=name), test_mode=test_mode)


@pytest.mark.parametrize("iban", ["NL39RABO0300065264", "nl39 rabo 0300 0652 64", "DE89 3704 0044 0532 0130 00",
                                  "FR14 2004 1010 0505 0001 3M02 606", "BE62-5100-0754-7061"])
def test_q10_valid_ibans_pass_with_spaces_dashes_and_lower_case(iban):
    assert _check(iban) is None  # well-formed; outside test mode there is no test profile


@pytest.mark.parametrize(("iban", "code", "message"), [
    ("", "incomplete_iban", "Enter your IBAN."),
    ("NL39RABO0300065265", "invalid_iban", "Your IBAN is invalid. Check it for typos."),  # checksum off by one
    ("NL39RABO030006526", "incomplete_iban", "Your IBAN is incomplete."),  # NL is 18 long
    ("NL39RABO03000652641", "invalid_iban_length", "Your IBAN is too long for its country."),
    ("US64SVBKUS6S3300958879", "invalid_iban_country",
     "Your IBAN must start with the code of a SEPA country, like NL, BE, DE or FR."),
    ("NL39RABO03000652€4", "invalid_iban", "Your IBAN is invalid: use only letters and digits."),
    ("NLXXRABO0300065264", "invalid_iban", "Your IBAN is invalid. Check it for typos."),
])
def test_q10_invalid_ibans_are_refused_at_the_iban_field_with_a_clear_reason(iban, code, message):
    with pytest.raises(PaymentDetailsInvalid) as refused:
        _check(iban)
    assert (refused.value.field, refused.value.code, refused.value.message) == ("iban", code, message)


def test_q10_the_account_holders_name_is_required():
    with pytest.raises(PaymentDetailsInvalid) as refused:
        _check("NL39RABO0300065264", name=" ")
    assert refused.value.field == "account_holder_name"


def test_q10_stripes_test_ibans_are_valid_and_only_they_pass_in_test_mode():
    for iban, profile in testcards.SEPA_ACCOUNTS.items():
        assert testcards.iban_checksum_ok(iban) and len(iban) == testcards.IBAN_LENGTHS[iban[:2]]
        assert _check(iban, test_mode=True) == profile
    assert testcards.SEPA_ACCOUNTS["DE89370400440532013000"].failure_code is None
    assert testcards.SEPA_ACCOUNTS["NL39RABO0300065264"].failure_code is None
    assert testcards.SEPA_ACCOUNTS["AT861904300235473202"].failure_code == "insufficient_funds"
    with pytest.raises(PaymentDetailsInvalid) as refused:
        _check("BE62510007547061", test_mode=True)  # valid, but not a test IBAN
    assert refused.value.code == "not_a_test_account"


def test_q10_the_bank_debit_follows_the_currency():
    assert (bank_debit_for("EUR"), bank_debit_for("usd"), bank_debit_for("GBP")) == ("sepa", "ach", None)
    assert testcards.format_iban("nl39rabo0300065264") == "NL39 RABO 0300 0652 64"
