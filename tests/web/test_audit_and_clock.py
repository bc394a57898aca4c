"""Audit history (A2) and the clock (B9: a test clock per test subscription, real time for the rest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from kassa.clock import account_today, clock_now, local_midnight_utc, now
from kassa.database import UTCDateTime, write_transaction
from kassa.extensions import db
from kassa.models import Account, AuditEvent
from tests.factories import PASSWORD, make_merchant


def test_a2_audit_events_record_who_what_when_and_ip(client):
    owner = make_merchant()
    client.post("/login", data={"email": owner.email, "password": PASSWORD}, environ_base={"REMOTE_ADDR": "203.0.113.7"})
    client.post("/settings/users/invite", data={"email": "new@team.example", "role": "member"},
                environ_base={"REMOTE_ADDR": "203.0.113.7"})
    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    actions = [e.action for e in events]
    assert actions == ["account.created", "user.logged_in", "user.invited"]
    invited = events[-1]
    assert invited.actor_id == owner.id
    assert invited.ip == "203.0.113.7"
    assert invited.data == {"email": "new@team.example", "role": "member"}
    assert invited.created_at.tzinfo is not None


def test_utc_column_refuses_naive_datetimes_and_returns_aware_ones(app):
    owner = make_merchant()
    with pytest.raises(Exception, match="naive datetime"), write_transaction(db.session):
        db.session.get(Account, owner.account_id).created_at = datetime(2026, 1, 1)
        db.session.flush()
    value = db.session.get(Account, owner.account_id).created_at
    assert value.tzinfo == UTC
    assert UTCDateTime().process_result_value(datetime(2026, 1, 1), None).tzinfo == UTC


def test_b9_a_test_subscriptions_clock_runs_ahead_by_its_offset_and_the_account_day_is_real(app):
    from types import SimpleNamespace

    owner = make_merchant(timezone="Pacific/Auckland")
    test_sub = SimpleNamespace(mode="test", clock_offset_seconds=86400 * 3)
    live_sub = SimpleNamespace(mode="live", clock_offset_seconds=86400 * 3)
    at = now()
    assert clock_now(test_sub, at) == at + timedelta(days=3)
    assert clock_now(live_sub, at) == at  # live records always run on real time
    account = db.session.get(Account, owner.account_id)
    assert account_today(account) == now().astimezone(__import__("zoneinfo").ZoneInfo("Pacific/Auckland")).date()


def test_local_midnight_in_account_time_zone():
    from datetime import date

    assert local_midnight_utc(date(2026, 7, 1), "Europe/Amsterdam") == datetime(2026, 6, 30, 22, 0, tzinfo=UTC)
    assert local_midnight_utc(date(2026, 1, 1), "America/New_York") == datetime(2026, 1, 1, 5, 0, tzinfo=UTC)


def test_login_page_in_buyer_language_from_header_and_switch(client):
    response = client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert 'lang="fr"' in response.get_data(as_text=True)
    client.get("/language?lang=nl&next=/login")
    assert 'lang="nl"' in client.get("/login", headers={"Accept-Language": "fr"}).get_data(as_text=True)
