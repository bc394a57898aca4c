"""B9: a test clock per test subscription, and a way back.

Advancing a test subscription's clock bills that subscription only (through the same billing run as real
time), dates its payments on its clock, and moves nothing else: other test subscriptions, test payments, the
home figures and the reports stay on real time; live subscriptions never move. "Back to real time" resets it.
The test card switches show which one is on."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select, update

from kassa.clock import clock_now as subscription_clock
from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Account, Subscription, TimelineEntry
from kassa.services.backoffice import home, revenue
from kassa.services.billing import billing
from kassa.services.billing.subscriptions import advance_clock
from kassa.services.platform.ticks import run_tick
from tests.factories import make_merchant
from tests.support.billing import (
    START,
    actor,
    advance,
    buy,
    charges_of,
    clock_now,
    frozen,
    reload,
    renewals_of,
    sandbox_charge_count,
    subscription_shop,
)
from tests.support.checkout_flow import plain
from tests.support.payments import login


def _soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def _flash(response) -> str:
    return " ".join(plain(node.get_text(" ")) for node in _soup(response).select("#toasts .toast"))


def _two_subscriptions(client):
    owner, link = subscription_shop("Clock Shop", frequency="monthly", term_type="auto_renew")
    first = buy(client, link, email="first@example.com")
    second = buy(client, link, email="second@example.com")
    login(client, owner)
    return owner, link, first, second


def test_b9_advancing_one_subscriptions_clock_bills_it_and_not_another_test_subscription(client):
    with frozen():
        _owner, _link, first, second = _two_subscriptions(client)
        response = client.post(f"/subscriptions/{first.id}/test-clock", data={"step": "month"})
        assert "Test clock moved. Charges: 1 succeeded, 0 failed." in _flash(client.get(response.headers["Location"]))

        (renewal,) = renewals_of(first)
        assert renewal.created_at.date() == date(2027, 2, 15)  # dated on the subscription's own clock
        assert clock_now(first).date() == date(2027, 2, 15)
        # The other test subscription of the same account: its clock and its billing did not move.
        assert renewals_of(second) == [] and reload(second).clock_offset_seconds == 0
        assert clock_now(second) == now() and reload(second).payments_made == 1
        # A regular tick on real time bills nothing more (the other subscription is not due on real time).
        run_tick()
        assert renewals_of(second) == [] and len(renewals_of(first)) == 1
        # Its page shows its own clock; the other's shows real time.
        assert "ahead of real time" in plain(_soup(client.get(f"/subscriptions/{first.id}")).select_one(
            "#clock-reading").get_text(" "))
        assert "reads real time" in plain(_soup(client.get(f"/subscriptions/{second.id}")).select_one(
            "#clock-reading").get_text(" "))


def test_b9_a_live_subscription_never_moves(client):
    with frozen():
        owner, _link, test_sub, live = _two_subscriptions(client)
        with write_transaction(db.session) as session:  # a live one, with an offset written by hand
            row = session.get(Subscription, live.id)
            row.mode, row.clock_offset_seconds = "live", 90 * 86400
        assert subscription_clock(reload(live)) == now()  # live records always read real time
        advance(owner, test_sub, days=70)
        assert len(renewals_of(test_sub)) == 2
        # The billing run's selection ignores a live subscription's offset: nothing is due on real time.
        assert billing.due_subscriptions() == []
        assert renewals_of(live) == [] and reload(live).next_charge_at.date() == date(2027, 2, 15)


def test_b9_test_payments_outside_the_subscription_keep_their_real_dates(client):
    with frozen():
        owner, link, first, _second = _two_subscriptions(client)
        advance(owner, first, days=65)
        assert clock_now(first).date() == date(2027, 3, 21)
        third = buy(client, link, email="third@example.com")  # a new test checkout after the advance
        (payment,) = charges_of(third)
        assert payment.created_at == START  # real time, not the advanced clock
        assert reload(third).anchor_at == START and reload(third).clock_offset_seconds == 0
        # The first payments made at checkout kept their real dates too.
        assert charges_of(first)[0].created_at == START


def test_b9_reports_and_home_figures_are_unchanged_by_an_advance(client):
    with frozen():
        owner, _link, first, _second = _two_subscriptions(client)
        account = db.session.get(Account, owner.account_id)
        modes = ("live", "test")
        figures_before = home.figures(account, modes)
        report_before = revenue.performance(account, modes, days=30)
        index_before = plain(_soup(client.get("/payments/?mode=test")).get_text(" "))
        assert figures_before.day == date(2027, 1, 15)

        advance(owner, first, days=62)  # two renewals, dated in March on the subscription's clock
        assert len(renewals_of(first)) == 2
        db.session.rollback()
        account = db.session.get(Account, owner.account_id)
        assert home.figures(account, modes) == figures_before
        assert revenue.performance(account, modes, days=30) == report_before
        # The payments index still reads "today" as real time (the quick filter's today has both checkouts).
        assert "Today" in index_before


def test_b9_back_to_real_time_resets_the_clock_and_keeps_what_was_billed(client):
    with frozen():
        owner, _link, first, _second = _two_subscriptions(client)
        client.post(f"/subscriptions/{first.id}/test-clock", data={"step": "month"})
        client.post(f"/subscriptions/{first.id}/test-clock", data={"step": "month"})
        billed = [(p.id, p.created_at) for p in renewals_of(first)]
        assert len(billed) == 2 and reload(first).next_charge_at.date() == date(2027, 4, 15)

        page = _soup(client.get(f"/subscriptions/{first.id}"))
        assert page.select_one("form[action$='/test-clock/reset'] button").get_text(strip=True) == "Back to real time"
        response = client.post(f"/subscriptions/{first.id}/test-clock/reset")
        assert response.status_code == 303
        page = client.get(response.headers["Location"])
        assert "The test clock is back to real time." in _flash(page)
        assert "reads real time" in plain(_soup(page).select_one("#clock-reading").get_text(" "))
        assert _soup(page).select_one("form[action$='/test-clock/reset']") is None

        sub = reload(first)
        assert sub.clock_offset_seconds == 0 and clock_now(first) == now()
        # Kept: the periods billed ahead, with their dates; the next charge comes from the subscription's state.
        assert [(p.id, p.created_at) for p in renewals_of(first)] == billed
        assert sub.next_charge_at.date() == date(2027, 4, 15) and sub.payments_made == 3
        assert db.session.scalar(select(TimelineEntry.id).where(
            TimelineEntry.subject_type == "subscription", TimelineEntry.subject_id == first.id,
            TimelineEntry.kind == "subscription.test_clock_reset")) is not None

        # Nothing is billed again on real time; the clock can be advanced again from real time.
        run_tick()
        assert len(renewals_of(first)) == 2
        assert advance(owner, first, days=1)["succeeded"] == 0
        assert clock_now(first).date() == date(2027, 1, 16)
        advance(owner, first, to_date=date(2027, 4, 16))
        assert [p.created_at.date() for p in renewals_of(first)][-1] == date(2027, 4, 15)

        # Legitimate repeat use: a second reset right after says there is nothing to reset.
        client.post(f"/subscriptions/{first.id}/test-clock/reset")
        response = client.post(f"/subscriptions/{first.id}/test-clock/reset")
        assert "already reads real time" in _flash(client.get(response.headers["Location"]))


def test_b9_the_test_card_switches_show_which_one_is_on(client):
    with frozen():
        owner, _link, first, _second = _two_subscriptions(client)

        def pressed() -> dict[str, str]:
            page = _soup(client.get(f"/subscriptions/{first.id}"))
            group = page.select_one("[role=group][aria-labelledby=test-card-label]")
            state = plain(page.select_one("#test-card-state").get_text(" "))
            return {**{plain(b.get_text(" ")): b["aria-pressed"] for b in group.select("button")}, "state": state}

        assert pressed() == {"Succeeds": "true", "Declines": "false", "state": "Now on: the test card succeeds."}
        client.post(f"/subscriptions/{first.id}/test-card", data={"decline": "1"})
        assert pressed() == {"Succeeds": "false", "Declines": "true", "state": "Now on: the test card declines."}
        assert advance(owner, first, days=31)["failed"] == 1  # what the switch says is what happens
        client.post(f"/subscriptions/{first.id}/test-card", data={"decline": "0"})
        assert pressed() == {"Succeeds": "true", "Declines": "false", "state": "Now on: the test card succeeds."}


def test_b9_two_advances_at_once_bill_each_period_once(client, app):
    with frozen():
        owner, _link, first, second = _two_subscriptions(client)
        barrier = threading.Barrier(4)

        def move(sub_id: int) -> dict[str, int]:
            with app.app_context():
                try:
                    barrier.wait(timeout=30)
                    return advance_clock(actor(owner), sub_id, days=65)
                finally:
                    db.session.remove()

        # Two requests for each subscription at the same instant (a double click, two tabs).
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = [future.result(timeout=240) for future in
                       [pool.submit(move, sub_id) for sub_id in (first.id, first.id, second.id, second.id)]]
        assert all(result["failed"] == 0 for result in results)
        for sub in (first, second):
            # A clock never goes back: the later request may start where the first had got to, up to its end
            # on a loaded machine (then up to 130 days pass: periods 1-4), but every period is charged once, in
            # order, with no gap or double.
            periods = [p.subscription_period for p in renewals_of(sub)]
            assert periods in ([1, 2], [1, 2, 3], [1, 2, 3, 4]), periods
            assert reload(sub).payments_made == 1 + len(periods)
            assert clock_now(sub).date() >= date(2027, 3, 21)
        assert sandbox_charge_count(owner.account_id) == 2 + sum(len(renewals_of(s)) for s in (first, second))
        # Legitimate repeat use: advancing again later bills the next period.
        before = len(renewals_of(first))
        advance(owner, first, days=31)
        assert [p.subscription_period for p in renewals_of(first)] == list(range(1, before + 2))


def test_b9_another_merchants_subscription_is_not_found(client):
    with frozen():
        _owner, _link, first, _second = _two_subscriptions(client)
        client.post("/logout")
        login(client, make_merchant("Other Shop"))
        assert client.post(f"/subscriptions/{first.id}/test-clock", data={"step": "month"}).status_code == 404
        assert client.post(f"/subscriptions/{first.id}/test-clock/reset").status_code == 404
        assert renewals_of(first) == [] and reload(first).clock_offset_seconds == 0


def test_b9_a_live_subscription_refuses_a_clock_with_a_clear_error(client):
    with frozen():
        _owner, _link, first, _second = _two_subscriptions(client)
        with db.engine.begin() as conn:
            conn.execute(update(Subscription).where(Subscription.id == first.id).values(mode="live"))
        response = client.post(f"/subscriptions/{first.id}/test-clock", data={"step": "month"})
        assert ("Only test subscriptions have a test clock. A live subscription always runs on real time."
                in _flash(client.get(response.headers["Location"])))
        response = client.post(f"/subscriptions/{first.id}/test-clock/reset")
        assert "Only test subscriptions have a test clock." in _flash(client.get(response.headers["Location"]))
        sub = reload(first)
        assert sub.clock_offset_seconds == 0 and renewals_of(first) == [] and sub.payments_made == 1
        assert _soup(client.get(f"/subscriptions/{first.id}")).select_one("#test-clock") is None


def test_b9_the_billing_run_selects_each_subscription_on_its_own_clock(client):
    """The set-based selection: one query for every subscription, each compared with its own offset."""
    with frozen():
        _owner, _link, first, second = _two_subscriptions(client)
        with write_transaction(db.session) as session:  # first's clock exactly at its renewal, second's a day short
            session.get(Subscription, first.id).clock_offset_seconds = int(timedelta(days=31).total_seconds())
            session.get(Subscription, second.id).clock_offset_seconds = int(timedelta(days=30).total_seconds())
        assert [sub_id for _due, sub_id in billing.due_subscriptions()] == [first.id]
        assert billing.bill_due_subscriptions() == 1
        assert len(renewals_of(first)) == 1 and renewals_of(second) == []
        assert renewals_of(first)[0].created_at == START + timedelta(days=31)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=False)
def test_b9_migration_moves_the_account_offset_onto_its_test_subscriptions(database_url, tmp_path, monkeypatch):
    """Migration 0018, on both databases: an account's test clock offset becomes each of its test subscriptions'
    own (live ones stay on real time, other accounts keep theirs), the account column goes; the downgrade brings
    it back."""
    import sqlalchemy as sa
    from flask_migrate import downgrade, upgrade
    from sqlalchemy.engine import make_url

    from kassa import create_app
    from tests.support.databases import PG_URL

    monkeypatch.setenv("KASSA_INSTANCE_PATH", str(tmp_path / "instance"))
    url = f"sqlite:///{tmp_path / 'm.db'}"
    scratch = f"kassa_b9_migration_{__import__('os').getpid()}"
    if database_url == "postgresql":
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{scratch}"'))
        url = make_url(PG_URL).set(database=scratch).render_as_string(hide_password=False)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    directory = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "site" / "migrations")
    created = "'2026-01-01 00:00:00.000000'"
    with app.app_context():
        upgrade(directory=directory, revision="0020_qprice")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            for account_id, offset in ((1, 86400 * 40), (2, 0)):
                conn.execute(sa.text(
                    "INSERT INTO accounts (id, name, country, default_currency, timezone, language, support_email,"
                    " address, brand_color, logo_version, clock_offset_seconds, notifications, created_at)"
                    f" VALUES ({account_id}, 'A', 'NL', 'EUR', 'UTC', 'en', '', '', '#000000', 0, {offset}, '{{}}',"
                    f" {created})"))
                conn.execute(sa.text(
                    "INSERT INTO contacts (id, account_id, mode, email, first_name, last_name, phone, language,"
                    f" created_at) VALUES ({account_id}, {account_id}, 'test', 'c@example.com', '', '', '', 'en',"
                    f" {created})"))
            for sub_id, account_id, mode in ((1, 1, "test"), (2, 1, "live"), (3, 1, "test"), (4, 2, "test")):
                conn.execute(sa.text(
                    "INSERT INTO subscriptions (id, account_id, mode, status, contact_id, frequency, term_type,"
                    " amount_minor, currency, payments_made, anchor_at, language, created_at) VALUES"
                    f" ({sub_id}, {account_id}, '{mode}', 'active', {account_id}, 'monthly', 'auto_renew', 1000,"
                    f" 'EUR', 1, {created}, 'en', {created})"))
        upgrade(directory=directory, revision="0021_b9_subscription_clock")
        with engine.connect() as conn:
            offsets = dict(conn.execute(sa.text("SELECT id, clock_offset_seconds FROM subscriptions")).all())
            columns = {c["name"] for c in sa.inspect(conn).get_columns("accounts")}
        assert offsets == {1: 86400 * 40, 2: 0, 3: 86400 * 40, 4: 0}
        assert "clock_offset_seconds" not in columns
        downgrade(directory=directory, revision="0020_qprice")
        with engine.connect() as conn:
            accounts = dict(conn.execute(sa.text("SELECT id, clock_offset_seconds FROM accounts")).all())
        assert accounts == {1: 86400 * 40, 2: 0}
        engine.dispose()
    if database_url == "postgresql":
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        admin.dispose()


def test_b9_a_renewals_sandbox_dispute_opens_on_its_subscriptions_clock(client):
    """A scenario card that opens a dispute: the renewal billed on the subscription's clock gets its dispute
    during the advance (its event is due on that clock), not only once real time gets there."""
    from kassa.models import Dispute

    with frozen():
        owner, link = subscription_shop("Dispute Shop", frequency="monthly", term_type="auto_renew")
        sub = buy(client, link, card_number="4000000000000259")  # succeeds, then a dispute opens
        advance(owner, sub, days=31)
        (renewal,) = renewals_of(sub)
        assert renewal.status == "succeeded"
        assert db.session.scalar(select(Dispute.id).where(Dispute.payment_id == renewal.id)) is not None
        # Another account's (or a real-time) view is unchanged: the events tick on real time opens nothing more.
        run_tick()
        assert db.session.scalar(select(func.count()).select_from(Dispute).where(
            Dispute.payment_id == renewal.id)) == 1
