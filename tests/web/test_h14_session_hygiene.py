"""H14: no caching of signed-in pages, idle and absolute session lifetimes, a test clock that only runs its
own account's work, and checkout GETs that write nothing but the checkout session they start."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine
from sqlalchemy import update

from kassa.clock import now
from kassa.extensions import db
from kassa.models import Payment, Subscription
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in, page_text
from tests.support.billing import buy, frozen, renewals_of, subscription_shop
from tests.support.checkout import start_checkout, submit_checkout
from tests.support.checkout_flow import make_shop


def test_h14_signed_in_pages_are_no_store_public_assets_keep_caching(client):
    """Every page a signed-in user gets says no-store; the logo and static assets stay cacheable."""
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    for path in ("/", "/payments/", "/links/", "/settings/account", "/settings/emails", "/subscriptions/"):
        response = client.get(path)
        assert response.status_code in (200, 302), path
        assert response.headers.get("Cache-Control") == "no-store", path
    from flask import url_for

    with client.application.test_request_context():
        asset = url_for("assets.bundle", name="checkout.css")
    assert "immutable" in client.get(asset).headers["Cache-Control"]
    client.post("/logout")
    assert "no-store" not in (client.get("/login").headers.get("Cache-Control") or "")


def _expect_logged_out(client):
    response = client.get("/settings/profile")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "session ended" in page_text(client.get(response.headers["Location"]))


@pytest.fixture
def app_config(tmp_path):
    from kassa.config import build_config

    # The production defaults (the shared test fixture relaxes them for tests that move time by days).
    defaults = build_config(tmp_path / "defaults")
    assert (defaults["KASSA_SESSION_IDLE_HOURS"], defaults["KASSA_SESSION_MAX_DAYS"]) == (12, 30)
    return {"KASSA_SESSION_IDLE_HOURS": 12, "KASSA_SESSION_MAX_DAYS": 30}


def test_h14_idle_session_ends_after_the_idle_timeout(client):
    """Active within 12 h: still signed in; 12 h and a minute without a request: logged out."""
    owner = make_merchant()
    start = now()
    with time_machine.travel(start, tick=False):
        log_in(client, owner.email, PASSWORD)
    with time_machine.travel(start + timedelta(hours=11, minutes=59), tick=False):
        assert client.get("/settings/profile").status_code == 200
    with time_machine.travel(start + timedelta(hours=23, minutes=58), tick=False):
        assert client.get("/settings/profile").status_code == 200  # 11 h 59 since the last request
    with time_machine.travel(start + timedelta(hours=36), tick=False):
        _expect_logged_out(client)


def test_h14_busy_session_ends_after_its_absolute_lifetime(client):
    """A session used every few hours still ends 30 days after its login."""
    owner = make_merchant()
    start = now()
    with time_machine.travel(start, tick=False):
        log_in(client, owner.email, PASSWORD)
    at = start
    while at < start + timedelta(days=29, hours=20):
        at += timedelta(hours=6)
        with time_machine.travel(at, tick=False):
            assert client.get("/settings/profile").status_code == 200, at - start
    with time_machine.travel(start + timedelta(days=30, minutes=1), tick=False):
        _expect_logged_out(client)


def test_h14_session_limits_are_configurable(app, client):
    app.config["KASSA_SESSION_IDLE_HOURS"] = 1
    owner = make_merchant()
    start = now()
    with time_machine.travel(start, tick=False):
        log_in(client, owner.email, PASSWORD)
    with time_machine.travel(start + timedelta(minutes=61), tick=False):
        _expect_logged_out(client)


def test_h14_test_clock_runs_only_its_own_accounts_work(client):
    """Merchant A moves their test clock in a web request; merchant B's subscription, due at that moment,
    is not charged inside A's request. The next regular tick charges it (the control)."""
    from kassa.services.platform.ticks import run_tick

    with frozen():
        owner_a, link_a = subscription_shop("Shop A")
        _owner_b, link_b = subscription_shop("Shop B")
        sub_a = buy(client, link_a, email="a@buyer.example")
        sub_b = buy(client, link_b, email="b@buyer.example")
        with db.engine.begin() as conn:  # B's next charge is due now (say its worker was stopped a while)
            conn.execute(update(Subscription).where(Subscription.id == sub_b.id)
                         .values(next_charge_at=now() - timedelta(hours=1)))
        log_in(client, owner_a.email, PASSWORD)
        response = client.post(f"/subscriptions/{sub_a.id}/test-clock", data={"step": "month"})
        assert response.status_code == 303
        assert len(renewals_of(sub_a)) == 1
        assert renewals_of(sub_b) == []
        assert run_tick().failed == {}
        assert len(renewals_of(sub_b)) == 1


def _table_states() -> dict[str, tuple[int, str]]:
    """(row count, digest of every row's values) per table: any insert, update or delete shows."""
    import hashlib

    states = {}
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            rows = sorted(repr(tuple(row)) for row in conn.execute(sa.select(table)))
            states[table.name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    return states


def _changes(before: dict[str, tuple[int, str]]) -> dict[str, int]:
    """{table: rows added} for every table whose rows changed in any way."""
    after = _table_states()
    return {name: after[name][0] - before[name][0] for name in after if after[name] != before[name]}


def test_h14_checkout_gets_write_nothing_but_the_session_they_start(client):
    """GET /pay/<slug> adds one checkout session and changes nothing else; GETs of the checkout page (open,
    switched to another language, completed) change no row of any table. The language the buyer picked
    still reaches their payment (saved when they pay)."""
    _owner, link = make_shop()
    before = _table_states()
    path = start_checkout(client, link.slug)
    assert _changes(before) == {"checkout_sessions": 1}
    before = _table_states()
    for query in ("", "?lang=fr", "?lang=nl", "?mode=test&lang=de"):
        assert client.get(path + query).status_code == 200
    assert _changes(before) == {}
    assert client.get(path + "?lang=fr").status_code == 200
    assert submit_checkout(client, path, lang="fr").status_code == 303
    assert db.session.scalar(sa.select(Payment.language)) == "fr"
    before = _table_states()
    assert client.get(path).status_code == 200
    assert client.get(path + "?lang=fr").status_code == 200
    assert _changes(before) == {}
