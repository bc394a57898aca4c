"""Billing dates (S1, L5, L6): the n-th charge of a subscription, counted from its anchor in the merchant's
time zone. Pure functions, no app and no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kassa.periods import charge_date


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz))


def schedule(anchor: datetime, frequency: str, count: int, tz: str = "UTC") -> list[datetime]:
    return [charge_date(anchor, frequency, n, tz) for n in range(count)]


def days(dates: list[datetime], tz: str = "UTC") -> list[str]:
    return [d.astimezone(ZoneInfo(tz)).date().isoformat() for d in dates]


# -- month ends --------------------------------------------------------------------------------------


def test_s1_anchor_on_the_31st_bills_on_the_last_day_of_shorter_months_and_returns_to_the_31st():
    dates = schedule(utc(2027, 1, 31, 9, 30), "monthly", 8)

    assert days(dates) == ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31", "2027-06-30",
                           "2027-07-31", "2027-08-31"]
    assert {d.time().isoformat() for d in dates} == {"09:30:00"}  # the time of day never drifts


def test_s1_anchor_on_the_31st_bills_on_february_29_in_a_leap_year():
    assert days(schedule(utc(2028, 1, 31, 12), "monthly", 4)) == ["2028-01-31", "2028-02-29", "2028-03-31",
                                                                  "2028-04-30"]


@pytest.mark.parametrize(
    ("anchor_day", "expected"),
    [
        (30, ["2027-01-30", "2027-02-28", "2027-03-30", "2027-04-30", "2027-05-30"]),
        (29, ["2027-01-29", "2027-02-28", "2027-03-29", "2027-04-29", "2027-05-29"]),
        (28, ["2027-01-28", "2027-02-28", "2027-03-28", "2027-04-28", "2027-05-28"]),
    ],
)
def test_s1_anchors_on_the_30th_and_29th_come_back_after_february(anchor_day, expected):
    assert days(schedule(utc(2027, 1, anchor_day, 8), "monthly", 5)) == expected


def test_s1_quarterly_from_november_30_uses_the_last_day_of_february_then_returns():
    assert days(schedule(utc(2027, 11, 30, 8), "quarterly", 5)) == ["2027-11-30", "2028-02-29", "2028-05-30",
                                                                    "2028-08-30", "2028-11-30"]


def test_s1_semiannual_and_biennial_count_months_from_the_anchor():
    assert days(schedule(utc(2027, 8, 31), "semiannual", 3)) == ["2027-08-31", "2028-02-29", "2028-08-31"]
    assert days(schedule(utc(2027, 3, 15), "biennial", 3)) == ["2027-03-15", "2029-03-15", "2031-03-15"]


def test_s1_yearly_from_february_29_bills_february_28_and_february_29_again_in_the_next_leap_year():
    assert days(schedule(utc(2028, 2, 29, 10), "yearly", 6)) == ["2028-02-29", "2029-02-28", "2030-02-28",
                                                                 "2031-02-28", "2032-02-29", "2033-02-28"]


def test_s1_twelve_months_is_one_year_and_december_rolls_into_the_next_year():
    anchor = utc(2027, 12, 31, 23, 0)
    assert charge_date(anchor, "monthly", 1, "UTC") == utc(2028, 1, 31, 23, 0)
    assert charge_date(anchor, "monthly", 12, "UTC") == charge_date(anchor, "yearly", 1, "UTC") == utc(2028, 12,
                                                                                                      31, 23, 0)
    assert charge_date(anchor, "monthly", 14, "UTC") == utc(2029, 2, 28, 23, 0)


# -- weeks -------------------------------------------------------------------------------------------


def test_l5_weekly_and_biweekly_keep_the_weekday():
    anchor = utc(2027, 2, 24, 7, 45)  # a Wednesday
    weekly = schedule(anchor, "weekly", 4)
    biweekly = schedule(anchor, "biweekly", 4)

    assert days(weekly) == ["2027-02-24", "2027-03-03", "2027-03-10", "2027-03-17"]
    assert days(biweekly) == ["2027-02-24", "2027-03-10", "2027-03-24", "2027-04-07"]
    assert {d.weekday() for d in weekly + biweekly} == {2}


def test_s1_first_date_is_the_anchor_itself():
    anchor = utc(2027, 5, 5, 5, 5, 5)
    for frequency in ("weekly", "biweekly", "monthly", "quarterly", "semiannual", "yearly", "biennial"):
        assert charge_date(anchor, frequency, 0, "Europe/Amsterdam") == anchor


# -- time zones ----------------------------------------------------------------------------------------


def test_s1_dst_change_keeps_the_local_time_of_day():
    # 10:00 in Amsterdam in winter (CET, UTC+1) stays 10:00 after the clocks go forward on 28 March (CEST).
    anchor = local("Europe/Amsterdam", 2027, 3, 15, 10, 0).astimezone(UTC)
    dates = schedule(anchor, "monthly", 3, "Europe/Amsterdam")

    assert [d.astimezone(ZoneInfo("Europe/Amsterdam")).strftime("%m-%d %H:%M") for d in dates] == [
        "03-15 10:00", "04-15 10:00", "05-15 10:00"]
    assert dates[0] == utc(2027, 3, 15, 9, 0)
    assert dates[1] == utc(2027, 4, 15, 8, 0)  # one hour earlier in UTC
    assert all(d.tzinfo is not None and d.utcoffset() == timedelta(0) for d in dates)


def test_s1_weekly_across_the_autumn_change_keeps_the_local_time_in_new_york():
    anchor = local("America/New_York", 2027, 10, 30, 9, 0).astimezone(UTC)  # EDT, UTC-4
    dates = schedule(anchor, "weekly", 2, "America/New_York")

    assert dates[1] == utc(2027, 11, 6, 13, 0)  # Nov 6 is still EDT
    third = charge_date(anchor, "weekly", 2, "America/New_York")
    assert third == utc(2027, 11, 13, 14, 0)  # EST from Nov 7: 09:00 local is 14:00 UTC
    assert third.astimezone(ZoneInfo("America/New_York")).hour == 9


def test_s1_the_accounts_time_zone_decides_the_day():
    # 20:00 UTC on January 30 is already 09:00 on January 31 in Auckland (NZDT, UTC+13).
    anchor = utc(2027, 1, 30, 20, 0)

    in_auckland = schedule(anchor, "monthly", 3, "Pacific/Auckland")
    in_utc = schedule(anchor, "monthly", 3, "UTC")

    assert days(in_auckland, "Pacific/Auckland") == ["2027-01-31", "2027-02-28", "2027-03-31"]
    assert in_auckland[1] == utc(2027, 2, 27, 20, 0)  # Feb 28, 09:00 NZDT
    # From March 31 Auckland is still on NZDT (DST ends April 4): the charge stays at 09:00 local.
    assert in_auckland[2] == utc(2027, 3, 30, 20, 0)
    assert days(in_utc) == ["2027-01-30", "2027-02-28", "2027-03-30"]  # in UTC the anchor is the 30th


def test_s1_anchor_given_in_another_offset_is_the_same_instant():
    anchor_utc = utc(2027, 6, 30, 22, 0)
    anchor_other = anchor_utc.astimezone(ZoneInfo("Asia/Tokyo"))
    assert schedule(anchor_utc, "monthly", 4, "Europe/Paris") == schedule(anchor_other, "monthly", 4, "Europe/Paris")


def test_l5_one_time_is_not_a_billing_period():
    with pytest.raises((KeyError, ValueError)):
        charge_date(utc(2027, 1, 1), "daily", 1, "UTC")


# -- properties ----------------------------------------------------------------------------------------

FREQUENCY_MONTHS = {"monthly": 1, "quarterly": 3, "semiannual": 6, "yearly": 12, "biennial": 24}


@given(
    anchor=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)),
    frequency=st.sampled_from(sorted(FREQUENCY_MONTHS)),
    n=st.integers(min_value=0, max_value=60),
    tz=st.sampled_from(["UTC", "Europe/Amsterdam", "Pacific/Auckland", "America/New_York"]),
)
def test_s1_month_based_dates_never_drift_from_the_anchor(anchor, frequency, n, tz):
    """The n-th date is the anchor's day of month (or the month's last day), in the right month, strictly later
    than the previous date."""
    zone = ZoneInfo(tz)
    start = anchor.astimezone(zone)
    when = charge_date(anchor, frequency, n, tz).astimezone(zone)
    months = start.month - 1 + FREQUENCY_MONTHS[frequency] * n
    assert (when.year, when.month) == (start.year + months // 12, months % 12 + 1)
    next_month_first = (when.replace(day=28) + timedelta(days=4)).replace(day=1)
    last_day = (next_month_first - timedelta(days=1)).day
    assert when.day == min(start.day, last_day)
    if n:
        assert charge_date(anchor, frequency, n - 1, tz) < charge_date(anchor, frequency, n, tz)
