"""P8: the revenue dashboard on Reports — volume, refunds, fees, net, success rate and a daily chart,
against the previous period, in the merchant's days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from kassa.extensions import db
from kassa.models import Account, Role
from kassa.services.backoffice.revenue import performance
from tests.factories import make_merchant, make_user
from tests.support.payments import bulk_payments, login, soup_of, text_of

NOW = datetime(2027, 3, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def payment(days_ago: float, amount: int, *, status: str = "succeeded", fee: int = 0, refunded: int = 0,
            mode: str = "test") -> dict:
    return {"created_at": NOW - timedelta(days=days_ago), "amount_minor": amount, "status": status,
            "display_status": status, "mode": mode, "fee_minor": fee, "fee_settlement_minor": fee,
            "net_settlement_minor": amount - fee, "refunded_minor": refunded, "refund_reserved_minor": refunded}


@pytest.fixture
def shop(client):
    owner = make_merchant(company="Revenue Shop")
    bulk_payments(owner.account_id, [
        # this period (the last 30 days)
        payment(0.1, 10_000, fee=320), payment(1, 5_000, fee=175, refunded=2_000), payment(29.4, 2_000, fee=88),
        payment(2, 7_000, status="failed"),
        # the 30 days before
        payment(31, 8_000, fee=262), payment(45, 4_000, fee=146),
        # outside both, and another account's
        payment(70, 99_999, fee=1),
    ])
    other = make_merchant(company="Someone Else")
    bulk_payments(other.account_id, [payment(1, 50_000, fee=1)])
    login(client, owner)
    return owner


def test_p8_figures_for_the_last_30_days_against_the_30_before(shop):
    perf = performance(db.session.get(Account, shop.account_id), ("live", "test"), 30)
    assert perf.current.gross == 17_000
    assert perf.current.fees == 583
    assert perf.current.refunded == 2_000
    assert perf.current.net == 17_000 - 583 - 2_000
    assert (perf.current.succeeded, perf.current.failed) == (3, 1)
    assert perf.current.success_rate == 0.75
    assert perf.previous.gross == 12_000
    assert perf.change("gross") == pytest.approx(17_000 / 12_000 - 1)
    assert len(perf.daily) == 30
    assert sum(amount for _day, amount in perf.daily) == 17_000
    assert perf.daily[-1] == (NOW.date(), 10_000)
    assert perf.peak == 10_000


def test_p8_days_are_the_merchants_days(shop):
    """23:30 UTC on the 14th is already the 15th in Amsterdam (UTC+1 in March before DST)."""
    bulk_payments(shop.account_id, [payment(0.5 + 0.02, 1_000)])  # 14 March, 23:31 UTC
    db.session.rollback()
    account = db.session.get(Account, shop.account_id)
    utc_days = dict(performance(account, ("test",), 7).daily)
    db.session.expunge(account)  # a what-if: the same account in Amsterdam, not saved
    account.timezone = "Europe/Amsterdam"
    local_days = dict(performance(account, ("test",), 7).daily)
    march_14, march_15 = NOW.date() - timedelta(days=1), NOW.date()
    assert utc_days[march_14] == 6_000 and utc_days[march_15] == 10_000
    assert local_days[march_14] == 5_000 and local_days[march_15] == 11_000


def test_p8_the_reports_page_shows_the_figures_the_chart_and_its_table(client, shop):
    page = soup_of(client.get("/reports/"))
    section = page.select_one("#performance-title").find_parent("section")
    text = text_of(section)
    assert "$170.00" in text  # gross
    assert "$144.17" in text  # net: 170.00 − 20.00 refunded − 5.83 fees
    assert "+42%" in text  # 170 against 120
    assert "75%" in text  # success rate
    assert len(section.select("svg rect")) == 30
    rows = section.select("details table tbody tr")
    assert len(rows) == 30 and text_of(rows[0].select_one("td")) == "$100.00"

    week = soup_of(client.get("/reports/?days=7")).select_one("#performance-title").find_parent("section")
    assert len(week.select("svg rect")) == 7
    assert week.select_one('a[aria-current="true"]').get_text(strip=True) == "7 days"
    assert soup_of(client.get("/reports/?days=12345")).select("#performance-title")  # unknown period → 30


def test_p8_a_period_without_payments_says_so_instead_of_an_empty_chart(client):
    """A new merchant's week without payments: no blank chart, a line that says what to do."""
    owner = make_merchant(company="New Shop")
    bulk_payments(owner.account_id, [payment(20, 5_000)])  # before this week
    login(client, owner)
    section = soup_of(client.get("/reports/?days=7")).select_one("#performance-title").find_parent("section")
    assert not section.select("svg") and not section.select("details table")
    empty = section.select_one(".empty-inline")
    assert "No payments in these 7 days yet" in text_of(empty)
    assert empty.select_one("a")["href"] == "/links/"


def test_p8_test_data_switch_and_roles(client, shop):
    bulk_payments(shop.account_id, [payment(1, 40_000, mode="live", fee=10)])
    assert "$570.00" in text_of(soup_of(client.get("/reports/")).select_one("#performance-title").parent.parent)
    client.post("/preferences/test-data", data={"value": "0"})
    assert "$400.00" in text_of(soup_of(client.get("/reports/")).select_one("#performance-title").parent.parent)

    member = make_user(shop.account_id, Role.MEMBER)
    other = client.application.test_client()
    login(other, member)
    assert other.get("/reports/").status_code == 403
