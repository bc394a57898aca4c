"""O2: when a payment's funds become available, per method, in the account's country and time zone."""

from datetime import UTC, date, datetime

import pytest

from kassa.models import Account
from kassa.services.money.ledger import AVAILABILITY_DAYS, available_on


def account(country: str = "US", timezone: str = "UTC") -> Account:
    return Account(name="Shop", country=country, timezone=timezone)


@pytest.mark.parametrize(("method", "days"), [("card", 2), ("ach", 4), ("bacs", 5), ("pad", 5), ("sepa", 14)])
def test_o2_processing_days_per_method(method, days):
    assert AVAILABILITY_DAYS[method] == days


@pytest.mark.parametrize(
    ("method", "paid_at", "expected"),
    [
        # Monday 1 Feb 2027: plain business days.
        ("card", datetime(2027, 2, 1, 12, tzinfo=UTC), date(2027, 2, 3)),
        ("ach", datetime(2027, 2, 1, 12, tzinfo=UTC), date(2027, 2, 5)),
        # Thursday: over the weekend.
        ("card", datetime(2027, 2, 4, 12, tzinfo=UTC), date(2027, 2, 8)),
        ("bacs", datetime(2027, 2, 4, 12, tzinfo=UTC), date(2027, 2, 11)),
        # Thursday 24 Dec 2026: Christmas (Friday) and the weekend don't count.
        ("card", datetime(2026, 12, 24, 12, tzinfo=UTC), date(2026, 12, 29)),
        # Three weeks of SEPA days across New Year (Friday 1 Jan 2027 is a holiday).
        ("sepa", datetime(2026, 12, 24, 12, tzinfo=UTC), date(2027, 1, 15)),
    ],
)
def test_o2_available_after_business_days_in_the_us(method, paid_at, expected):
    assert available_on(account("US"), method, paid_at) == expected


def test_o2_bank_holidays_of_the_accounts_country():
    """Tuesday 27 April 2027 is King's Day in the Netherlands, not in the US."""
    paid = datetime(2027, 4, 26, 12, tzinfo=UTC)  # Monday
    assert available_on(account("US"), "card", paid) == date(2027, 4, 28)
    assert available_on(account("NL", "Europe/Amsterdam"), "card", paid) == date(2027, 4, 29)


def test_o2_the_day_counts_in_the_accounts_time_zone():
    """23:30 UTC on a Friday is already Saturday in Amsterdam: the count starts from Saturday."""
    paid = datetime(2027, 2, 5, 23, 30, tzinfo=UTC)
    assert available_on(account("NL", "UTC"), "card", paid) == date(2027, 2, 9)  # Friday + 2 = Tuesday
    assert available_on(account("NL", "Europe/Amsterdam"), "card", paid) == date(2027, 2, 9)  # Sat + 2 = Tue
    late = datetime(2027, 2, 4, 23, 30, tzinfo=UTC)  # Thursday in UTC, Friday in Amsterdam
    assert available_on(account("NL", "UTC"), "card", late) == date(2027, 2, 8)
    assert available_on(account("NL", "Europe/Amsterdam"), "card", late) == date(2027, 2, 9)
