"""Business-day arithmetic (SPEC O2, F3): weekends and national public holidays are skipped."""

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kassa.business_days import _holiday_dates, add_business_days, is_business_day


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 4, 24), True),  # Friday
        (date(2026, 4, 25), False),  # Saturday
        (date(2026, 4, 26), False),  # Sunday
        (date(2026, 4, 28), True),  # Tuesday
    ],
)
def test_o2_weekends_are_not_business_days(day, expected):
    assert is_business_day(day, "NL") is expected
    assert is_business_day(day, "US") is expected


def test_o2_friday_plus_one_is_monday():
    assert add_business_days(date(2026, 5, 8), 1, "US") == date(2026, 5, 11)


def test_o2_kings_day_is_not_a_dutch_business_day():
    kings_day = date(2026, 4, 27)  # a Monday
    assert kings_day.weekday() == 0
    assert not is_business_day(kings_day, "NL")
    assert is_business_day(kings_day, "US")
    # Friday 24 April + 1 skips the weekend and King's Day.
    assert add_business_days(date(2026, 4, 24), 1, "NL") == date(2026, 4, 28)
    assert add_business_days(date(2026, 4, 24), 1, "US") == date(2026, 4, 27)


def test_o2_us_observed_independence_day_and_weekend():
    observed = date(2026, 7, 3)  # Friday; 4 July is a Saturday
    assert not is_business_day(observed, "US")
    assert is_business_day(observed, "NL")
    # Thursday 2 July + 1 skips the observed holiday and the weekend.
    assert add_business_days(date(2026, 7, 2), 1, "US") == date(2026, 7, 6)
    assert add_business_days(date(2026, 7, 1), 4, "US") == date(2026, 7, 8)


def test_o2_ach_four_business_days_across_kings_day():
    assert add_business_days(date(2026, 4, 22), 4, "NL") == date(2026, 4, 29)


def test_zero_days_returns_start_even_on_a_weekend():
    assert add_business_days(date(2026, 4, 25), 0, "NL") == date(2026, 4, 25)


def test_negative_days_count_backwards():
    assert add_business_days(date(2026, 4, 28), -1, "NL") == date(2026, 4, 24)
    assert add_business_days(date(2026, 7, 6), -1, "US") == date(2026, 7, 2)


def test_country_code_is_case_insensitive():
    assert not is_business_day(date(2026, 4, 27), "nl")


def test_unknown_country_still_skips_weekends():
    assert is_business_day(date(2026, 12, 25), "XX")
    assert not is_business_day(date(2026, 12, 26), "XX")  # Saturday


def test_holidays_are_cached_per_country_and_year():
    is_business_day(date(2026, 1, 2), "DE")
    before = _holiday_dates.cache_info().hits
    is_business_day(date(2026, 3, 2), "DE")
    assert _holiday_dates.cache_info().hits == before + 1


def test_datetime_is_refused_by_add_but_accepted_by_is_business_day():
    with pytest.raises(TypeError):
        add_business_days(datetime(2026, 4, 24, 12), 1, "NL")
    assert not is_business_day(datetime(2026, 4, 27, 12), "NL")


# No deadline: the first lookup of a (country, year) builds its holiday calendar.
@settings(deadline=None)
@given(
    start=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
    n=st.integers(min_value=1, max_value=30),
    country=st.sampled_from(["NL", "US", "FR", "GB"]),
)
def test_result_is_the_nth_business_day_after_start(start, n, country):
    result = add_business_days(start, n, country)
    assert is_business_day(result, country)
    days = [start + timedelta(days=i) for i in range(1, (result - start).days + 1)]
    assert sum(is_business_day(d, country) for d in days) == n
