"""Test-mode card and bank account tables (SPEC T2-T5) and the format checks run before any charge."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from kassa.forms import is_ascii_digits
from kassa.processors.base import N_, BankDetails, CardDetails, PaymentDetailsInvalid

BRAND_LABELS: dict[str, str] = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
    "diners": "Diners Club",
    "jcb": "JCB",
    "unionpay": "UnionPay",
}


@dataclass(frozen=True)
class CardProfile:
    """One test card and how the sandbox treats it."""

    number: str
    brand: str
    funding: str
    label: str
    decline_code: str | None = None
    decline_message: str | None = None
    decline_field: str | None = None
    dispute_reason: str | None = None
    is_inquiry: bool = False
    refund_failure_code: str | None = None
    refund_failure_message: str | None = None
    # B2/K6: the bank asks the buyer to confirm every payment (3-D Secure), as Stripe's test card of the same number
    requires_authentication: bool = False


@dataclass(frozen=True)
class BankAccountProfile:
    """One test bank account (routing 110000000): accepted at submit, settles or fails 4 business days later."""

    account_number: str
    label: str
    failure_code: str | None = None
    failure_message: str | None = None


def _declining(number: str, code: str, message: str, field: str | None = None) -> CardProfile:
    return CardProfile(number, "visa", "credit", N_("Visa (declined)"), code, message, field)


# SPEC T2: cards that succeed.
SUCCEEDING_CARDS: tuple[CardProfile, ...] = (
    CardProfile("4242424242424242", "visa", "credit", N_("Visa")),
    CardProfile("4000056655665556", "visa", "debit", N_("Visa (debit)")),
    CardProfile("5555555555554444", "mastercard", "credit", N_("Mastercard")),
    CardProfile("2223003122003222", "mastercard", "credit", N_("Mastercard (2-series)")),
    CardProfile("5200828282828210", "mastercard", "debit", N_("Mastercard (debit)")),
    CardProfile("5105105105105100", "mastercard", "prepaid", N_("Mastercard (prepaid)")),
    CardProfile("378282246310005", "amex", "credit", N_("American Express")),
    CardProfile("371449635398431", "amex", "credit", N_("American Express")),
    CardProfile("6011111111111117", "discover", "credit", N_("Discover")),
    CardProfile("6011000990139424", "discover", "credit", N_("Discover")),
    CardProfile("3056930009020004", "diners", "credit", N_("Diners Club")),
    CardProfile("36227206271667", "diners", "credit", N_("Diners Club (14-digit)")),
    CardProfile("3566002020360505", "jcb", "credit", N_("JCB")),
    CardProfile("6200000000000005", "unionpay", "credit", N_("UnionPay")),
)

# SPEC T3: cards that are declined, with the seed's messages.
FAILING_CARDS: tuple[CardProfile, ...] = (
    _declining(
        "4000000000000036",
        "incorrect_zip",
        N_("The postal code could not be verified and the payment was declined."),
        "postal_code",
    ),
    _declining("4000000000000002", "card_declined", N_("Your card was declined.")),
    _declining(
        "4000000000009995",
        "insufficient_funds",
        N_("The payment was declined because of insufficient funds."),
    ),
    _declining(
        "4000000000000069", "expired_card", N_("The payment was declined because the card has expired.")
    ),
    _declining(
        "4000000000000127",
        "incorrect_cvc",
        N_("The payment was declined because of an incorrect CVC."),
        "cvc",
    ),
)

# H4: the card-testing guard's block, on demand. In test mode the guard refuses this card before any
# processor call, exactly as it refuses a card tester; a processor given it anyway declines it as fraud.
BLOCKED_CARD = "4100000000000019"
BLOCKED_CARDS: tuple[CardProfile, ...] = (
    CardProfile(BLOCKED_CARD, "visa", "credit", N_("Visa (blocked as fraud)"), "fraudulent",
                N_("The payment was blocked as likely fraud.")),
)

# SPEC T5 [beyond]: cards that succeed and then lead to a dispute or a failing refund.
SCENARIO_CARDS: tuple[CardProfile, ...] = (
    CardProfile(
        "4000000000000259", "visa", "credit", N_("Visa (dispute: fraudulent)"), dispute_reason="fraudulent"
    ),
    CardProfile(
        "4000000000002685",
        "visa",
        "credit",
        N_("Visa (dispute: product not received)"),
        dispute_reason="product_not_received",
    ),
    CardProfile(
        "4000000000001976", "visa", "credit", N_("Visa (inquiry)"), dispute_reason="general", is_inquiry=True
    ),
    CardProfile(
        "4000000000005126",
        "visa",
        "credit",
        N_("Visa (refunds fail)"),
        refund_failure_code="expired_or_canceled_card",
        refund_failure_message=N_("The refund failed because the card was canceled or has expired."),
    ),
)

# B2/K6: Stripe's "authentication required on all transactions" test card. On a checkout the sandbox shows its own
# test authentication page (complete or fail it, or leave); charged while the buyer is away it is declined
# (authentication_required), as Stripe declines an off-session charge that needs 3-D Secure.
AUTHENTICATION_CARDS: tuple[CardProfile, ...] = (
    CardProfile("4000002760003184", "visa", "credit", N_("Visa (3-D Secure required)"), requires_authentication=True),
)

CARDS: dict[str, CardProfile] = {
    c.number: c for c in SUCCEEDING_CARDS + FAILING_CARDS + BLOCKED_CARDS + SCENARIO_CARDS + AUTHENTICATION_CARDS
}

# SPEC T4: ACH accounts; all of them use this routing number.
TEST_ROUTING_NUMBER = "110000000"
BANK_ACCOUNTS: dict[str, BankAccountProfile] = {
    a.account_number: a
    for a in (
        BankAccountProfile("000123456789", N_("Success")),
        BankAccountProfile(
            "000111111116",
            N_("Failure on use"),
            "debit_failed",
            N_("The bank debit failed when it was used."),
        ),
        BankAccountProfile(
            "000111111113", N_("Account closed"), "account_closed", N_("The bank account is closed.")
        ),
        BankAccountProfile(
            "000222222227",
            N_("NSF / insufficient funds"),
            "insufficient_funds",
            N_("The bank debit failed because of insufficient funds."),
        ),
        BankAccountProfile(
            "000333333335",
            N_("Debit not authorized"),
            "debit_not_authorized",
            N_("The account holder did not authorize this debit."),
        ),
        BankAccountProfile(
            "000444444440",
            N_("Invalid currency"),
            "invalid_currency",
            N_("The bank account cannot be debited in this currency."),
        ),
    )
}

# Q10: SEPA Direct Debit test IBANs — Stripe's published test numbers, so the same IBAN behaves the same in the
# sandbox and in Stripe test mode. Stripe's "after three minutes" variants settle after the sandbox's clearing days
# like the others; its dispute IBANs (AT591904300235473203, DE08370400440532013003) are not modelled here.
SEPA_ACCOUNTS: dict[str, BankAccountProfile] = {
    a.account_number: a
    for a in (
        BankAccountProfile("AT611904300234573201", N_("Success")),
        BankAccountProfile("AT321904300235473204", N_("Success")),
        BankAccountProfile("DE89370400440532013000", N_("Success")),
        BankAccountProfile("DE62370400440532013001", N_("Success")),
        BankAccountProfile("NL39RABO0300065264", N_("Success")),
        BankAccountProfile("FR1420041010050500013M02606", N_("Success")),
        BankAccountProfile(
            "AT861904300235473202",
            N_("NSF / insufficient funds"),
            "insufficient_funds",
            N_("The bank debit failed because of insufficient funds."),
        ),
        BankAccountProfile(
            "AT051904300235473205",
            N_("NSF / insufficient funds"),
            "insufficient_funds",
            N_("The bank debit failed because of insufficient funds."),
        ),
        BankAccountProfile(
            "DE35370400440532013002",
            N_("NSF / insufficient funds"),
            "insufficient_funds",
            N_("The bank debit failed because of insufficient funds."),
        ),
        BankAccountProfile(
            "NL91ABNA0417164300",
            N_("NSF / insufficient funds"),
            "insufficient_funds",
            N_("The bank debit failed because of insufficient funds."),
        ),
        BankAccountProfile(
            "AT981904300000343434",
            N_("Over the account's limit"),
            "charge_exceeds_source_limit",
            N_("The bank debit failed because it is over this bank account's limit."),
        ),
        BankAccountProfile(
            "AT601904300000121212",
            N_("Over the weekly limit"),
            "charge_exceeds_weekly_limit",
            N_("The bank debit failed because it is over the weekly limit."),
        ),
    )
}

# IBAN length per country of the SEPA scheme (EPC list of countries; French overseas departments use FR).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20,
    "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26,
    "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28,
    "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "VA": 22,
}

# --- card number helpers -------------------------------------------------------------------------

# (brand, IIN prefix pattern), checked in order; mirrors the ranges Stripe.js uses for brand detection.
_BRAND_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("amex", re.compile(r"^3[47]")),
    ("diners", re.compile(r"^3(?:0[0-5]|09|[689])")),
    ("jcb", re.compile(r"^35(?:2[89]|[3-8]\d)")),
    ("visa", re.compile(r"^4")),
    ("mastercard", re.compile(r"^(?:5[1-5]|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720)")),
    ("discover", re.compile(r"^(?:6011|64[4-9]|65)")),
    ("unionpay", re.compile(r"^(?:62|81)")),
)
_LENGTHS: dict[str | None, tuple[int, ...]] = {
    "visa": (13, 16, 19),
    "mastercard": (16,),
    "amex": (15,),
    "discover": (16, 17, 18, 19),
    "diners": (14, 15, 16, 17, 18, 19),
    "jcb": (16, 17, 18, 19),
    "unionpay": (16, 17, 18, 19),
    None: tuple(range(12, 20)),
}


def normalize_card_number(s: str) -> str:
    """Drop the spaces and dashes buyers (and autofill) put between digit groups."""
    return re.sub(r"[\s-]", "", s or "")


def luhn_ok(number: str) -> bool:
    """True when ``number`` is all digits (at least two) and passes the Luhn checksum."""
    if len(number) < 2 or not is_ascii_digits(number):
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_brand(number: str) -> str | None:
    """Brand code ("visa", "mastercard", "amex", "discover", "diners", "jcb", "unionpay") from the IIN."""
    digits = normalize_card_number(number)
    for brand, pattern in _BRAND_PATTERNS:
        if pattern.match(digits):
            return brand
    return None


def expected_cvc_length(brand: str | None) -> int:
    """American Express prints a 4-digit code on the front; every other brand a 3-digit one."""
    return 4 if brand == "amex" else 3


def card_number_groups(brand: str | None, length: int | None = None) -> tuple[int, ...]:
    """Digit groups for displaying a number as the card prints it (amex 4-6-5, 14-digit diners 4-6-4)."""
    if brand == "amex":
        return (4, 6, 5)
    if brand == "diners" and length in (None, 14):
        return (4, 6, 4)
    if length and length > 16:
        return (4, 4, 4, 4, length - 16)
    return (4, 4, 4, 4)


def format_card_number(number: str) -> str:
    """The number spaced in its brand's groups, e.g. "3782 822463 10005"."""
    digits = normalize_card_number(number)
    parts, pos = [], 0
    for size in card_number_groups(card_brand(digits), len(digits)):
        if pos < len(digits):
            parts.append(digits[pos : pos + size])
        pos += size
    if pos < len(digits):
        parts.append(digits[pos:])
    return " ".join(parts)


# --- expiry --------------------------------------------------------------------------------------

_EXPIRY_SEPARATED = re.compile(r"^\s*([0-9]{1,2})\s*[/-]\s*([0-9]{2}|[0-9]{4})\s*$")
_EXPIRY_COMPACT = re.compile(r"^\s*([0-9]{2})([0-9]{2}|[0-9]{4})\s*$")


def parse_expiry(text: str) -> tuple[int, int]:
    """(month, four-digit year) from "MM/YY", "MM / YY", "MMYY" or "MM/YYYY"; raises PaymentDetailsInvalid."""
    match = _EXPIRY_SEPARATED.match(text or "") or _EXPIRY_COMPACT.match(text or "")
    if not match:
        raise PaymentDetailsInvalid(
            "expiry", "incomplete_expiry", N_("Your card's expiration date is incomplete.")
        )
    month, year = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        raise PaymentDetailsInvalid(
            "expiry", "invalid_expiry_month", N_("Your card's expiration month is invalid.")
        )
    return month, (2000 + year if year < 100 else year)


def validate_expiry(exp_month: int, exp_year: int, today: date) -> None:
    """A card is valid through the last day of its expiry month; refuse past and absurd dates."""
    if not 1 <= exp_month <= 12:
        raise PaymentDetailsInvalid(
            "expiry", "invalid_expiry_month", N_("Your card's expiration month is invalid.")
        )
    if exp_year < 100:
        exp_year += 2000
    if (exp_year, exp_month) < (today.year, today.month):
        raise PaymentDetailsInvalid(
            "expiry", "expiry_in_past", N_("Your card's expiration date is in the past.")
        )
    if exp_year > today.year + 50:
        raise PaymentDetailsInvalid(
            "expiry", "invalid_expiry_year", N_("Your card's expiration year is invalid.")
        )


# --- whole-form validation -----------------------------------------------------------------------


def validate_card_number(number: str, *, test_mode: bool = True) -> str | None:
    """Check length, characters and Luhn (and, in test mode, that it is a test card); returns the brand."""
    digits = normalize_card_number(number)
    if not is_ascii_digits(digits):
        code = "incomplete_number" if not digits else "invalid_number"
        message = N_("Your card number is incomplete.") if not digits else N_("Your card number is invalid.")
        raise PaymentDetailsInvalid("number", code, message)
    brand = card_brand(digits)
    lengths = _LENGTHS[brand]
    if len(digits) < min(lengths):
        raise PaymentDetailsInvalid("number", "incomplete_number", N_("Your card number is incomplete."))
    if len(digits) not in lengths or not luhn_ok(digits):
        raise PaymentDetailsInvalid("number", "invalid_number", N_("Your card number is invalid."))
    if test_mode and digits not in CARDS:
        raise PaymentDetailsInvalid("number", "not_a_test_card", N_("Use a test card in test mode."))
    return brand


def validate_card(card: CardDetails, today: date, *, test_mode: bool = True) -> str | None:
    """Format checks in the order the checkout shows them; returns the brand code.

    Raises PaymentDetailsInvalid with field "number", "expiry", "cvc" or "name". Declines are not
    decided here: a failing test card is well-formed and passes.
    """
    brand = validate_card_number(card.number, test_mode=test_mode)
    validate_expiry(card.exp_month, card.exp_year, today)
    cvc = (card.cvc or "").strip()
    wanted = expected_cvc_length(brand)
    if not is_ascii_digits(cvc) and cvc:
        raise PaymentDetailsInvalid("cvc", "invalid_cvc", N_("Your card's security code is invalid."))
    if len(cvc) < wanted:
        raise PaymentDetailsInvalid("cvc", "incomplete_cvc", N_("Your card's security code is incomplete."))
    if len(cvc) > wanted:
        raise PaymentDetailsInvalid("cvc", "invalid_cvc", N_("Your card's security code is invalid."))
    if not (card.name or "").strip():
        raise PaymentDetailsInvalid("name", "incomplete_name", N_("Enter the name on your card."))
    return brand


def routing_checksum_ok(routing: str) -> bool:
    """ABA routing number checksum: 3·(d1+d4+d7) + 7·(d2+d5+d8) + (d3+d6+d9) is a multiple of 10."""
    if len(routing) != 9 or not is_ascii_digits(routing):
        return False
    d = [int(c) for c in routing]
    return (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + d[2] + d[5] + d[8]) % 10 == 0


def validate_bank(bank: BankDetails, *, test_mode: bool = True) -> BankAccountProfile | None:
    """Format checks for an ACH debit; in test mode returns the test account's profile (else None)."""
    routing = normalize_card_number(bank.routing_number)
    account = normalize_card_number(bank.account_number)
    if (is_ascii_digits(routing) and len(routing) < 9) or not routing:
        raise PaymentDetailsInvalid(
            "routing_number", "incomplete_routing_number", N_("Your routing number is incomplete.")
        )
    if not routing_checksum_ok(routing):
        raise PaymentDetailsInvalid(
            "routing_number", "invalid_routing_number", N_("Your routing number is invalid.")
        )
    if test_mode and routing != TEST_ROUTING_NUMBER:
        raise PaymentDetailsInvalid(
            "routing_number", "not_a_test_account", N_("Use the test routing number 110000000 in test mode.")
        )
    if (is_ascii_digits(account) and len(account) < 4) or not account:
        raise PaymentDetailsInvalid(
            "account_number", "incomplete_account_number", N_("Your account number is incomplete.")
        )
    if not is_ascii_digits(account) or len(account) > 17:
        raise PaymentDetailsInvalid(
            "account_number", "invalid_account_number", N_("Your account number is invalid.")
        )
    if test_mode and account not in BANK_ACCOUNTS:
        raise PaymentDetailsInvalid(
            "account_number", "not_a_test_account", N_("Use a test bank account in test mode.")
        )
    if not (bank.account_holder_name or "").strip():
        raise PaymentDetailsInvalid(
            "account_holder_name", "incomplete_account_holder_name", N_("Enter the account holder's name.")
        )
    return BANK_ACCOUNTS.get(account) if test_mode else None


# --- IBAN (Q10) ----------------------------------------------------------------------------------

_IBAN_CHARS = re.compile(r"[A-Z0-9]*")


def normalize_iban(text: str) -> str:
    """Upper case without spaces or dashes: "nl39 rabo 0300 0652 64" → "NL39RABO0300065264"."""
    return re.sub(r"[\s-]", "", text or "").upper()


def iban_checksum_ok(iban: str) -> bool:
    """ISO 13616 mod-97: the first four characters moved to the end, letters as 10–35, the number mod 97 is 1."""
    if len(iban) < 5 or not _IBAN_CHARS.fullmatch(iban) or not iban.isascii():
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def format_iban(iban: str) -> str:
    """In groups of four, as banks print it."""
    digits = normalize_iban(iban)
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def validate_iban(bank: BankDetails, *, test_mode: bool = True) -> BankAccountProfile | None:
    """Format checks for a SEPA Direct Debit (country, its length, characters, mod-97, holder's name); in test
    mode returns the test IBAN's profile (else None)."""
    iban = normalize_iban(bank.iban)
    if not iban:
        raise PaymentDetailsInvalid("iban", "incomplete_iban", N_("Enter your IBAN."))
    if not _IBAN_CHARS.fullmatch(iban) or not iban.isascii():
        raise PaymentDetailsInvalid("iban", "invalid_iban", N_("Your IBAN is invalid: use only letters and digits."))
    length = IBAN_LENGTHS.get(iban[:2])
    if length is None:
        raise PaymentDetailsInvalid(
            "iban", "invalid_iban_country",
            N_("Your IBAN must start with the code of a SEPA country, like NL, BE, DE or FR."),
        )
    if len(iban) < length:
        raise PaymentDetailsInvalid("iban", "incomplete_iban", N_("Your IBAN is incomplete."))
    if len(iban) > length:
        raise PaymentDetailsInvalid("iban", "invalid_iban_length", N_("Your IBAN is too long for its country."))
    if not iban[2:4].isdigit() or not iban_checksum_ok(iban):
        raise PaymentDetailsInvalid("iban", "invalid_iban", N_("Your IBAN is invalid. Check it for typos."))
    if test_mode and iban not in SEPA_ACCOUNTS:
        raise PaymentDetailsInvalid("iban", "not_a_test_account", N_("Use a test IBAN in test mode."))
    if not (bank.account_holder_name or "").strip():
        raise PaymentDetailsInvalid(
            "account_holder_name", "incomplete_account_holder_name", N_("Enter the account holder's name.")
        )
    return SEPA_ACCOUNTS.get(iban) if test_mode else None
