"""I7: beside each key's limit, an account's keys of one mode share one limit, so many keys can't multiply it:
parallel calls from two keys of one account get exactly the account's limit through, the rest are 429
`rate_limit_error` with Retry-After and nothing done; another account, and the account's other mode, go on.
Both databases."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from kassa.clock import now
from kassa.extensions import db
from kassa.models import ApiKey, AuditEvent
from kassa.services.api.keys import create_key
from tests.factories import make_merchant
from tests.support.payments import actor_for

ACCOUNT_LIMIT = 6
CALLS_PER_KEY = 8


@pytest.fixture
def app_config() -> dict:
    # The keys' own limits are far away: only the account's can refuse here.
    return {"KASSA_API_TEST_RATE_LIMIT": "1000 per minute", "KASSA_API_LIVE_RATE_LIMIT": "1000 per minute",
            "KASSA_API_TEST_ACCOUNT_RATE_LIMIT": f"{ACCOUNT_LIMIT} per minute",
            "KASSA_API_LIVE_ACCOUNT_RATE_LIMIT": "2 per minute"}


def _api_calls(account_id: int) -> int:
    """The audit rows of API calls that got through (I1: every call is one)."""
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.account_id == account_id, AuditEvent.action == "api.request",
        AuditEvent.data["status"].as_integer() == 200))


def test_i7_parallel_calls_from_two_keys_of_one_account_get_exactly_the_account_limit_through(app):
    owner = make_merchant()
    secrets = [create_key(actor_for(owner), name, "test")[1] for name in ("Shop", "CRM")]
    account_id = owner.account_id
    db.session.remove()
    calls = [secret for secret in secrets for _ in range(CALLS_PER_KEY)]
    barrier = threading.Barrier(len(calls))
    answers: list[tuple[int, dict, dict]] = []
    lock = threading.Lock()

    def call(secret: str) -> None:
        client = app.test_client()
        barrier.wait(timeout=60)
        with app.app_context():
            response = client.get("/api/v1/payment_intents", headers={"Authorization": f"Bearer {secret}"})
        with lock:
            answers.append((response.status_code, dict(response.headers), response.get_json()))

    threads = [threading.Thread(target=call, args=(secret,)) for secret in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)

    codes = sorted(code for code, _h, _b in answers)
    print(f"\nI7 account limit on {db.engine.dialect.name}: {len(calls)} parallel calls from 2 keys, limit "
          f"{ACCOUNT_LIMIT} -> {codes}")
    assert codes == [200] * ACCOUNT_LIMIT + [429] * (len(calls) - ACCOUNT_LIMIT)
    for code, headers, body in answers:
        assert headers["RateLimit-Limit"] == str(ACCOUNT_LIMIT)
        if code == 429:
            assert body["error"]["type"] == "rate_limit_error" and body["error"]["code"] == "rate_limit"
            assert "account" in body["error"]["message"]
            assert 1 <= int(headers["Retry-After"]) <= 60 and headers["RateLimit-Remaining"] == "0"
    assert _api_calls(account_id) == ACCOUNT_LIMIT  # a refused call did nothing, not even its audit row


def test_i7_the_account_limit_is_shared_by_its_keys_and_holds_back_no_one_else(client, app):
    owner = make_merchant()
    shop = create_key(actor_for(owner), "Shop", "test")[1]
    crm = create_key(actor_for(owner), "CRM", "test")[1]
    live = create_key(actor_for(owner), "Live", "live")[1]
    other = create_key(actor_for(make_merchant()), "Elsewhere", "test")[1]

    def get(secret: str):
        return client.get("/api/v1/payment_intents", headers={"Authorization": f"Bearer {secret}"})

    first = [get(shop) for _ in range(ACCOUNT_LIMIT // 2)] + [get(crm) for _ in range(ACCOUNT_LIMIT // 2)]
    assert [a.status_code for a in first] == [200] * ACCOUNT_LIMIT
    # The headers count the nearer limit (the account's here), down across both keys.
    assert [a.headers["RateLimit-Remaining"] for a in first] == [str(n) for n in range(ACCOUNT_LIMIT - 1, -1, -1)]

    over = get(shop)
    assert over.status_code == 429 and over.json["error"]["type"] == "rate_limit_error"
    assert "account" in over.json["error"]["message"] and 1 <= int(over.headers["Retry-After"]) <= 60
    # A brand-new key of the account is held back too; a POST is refused before it does anything.
    fresh = create_key(actor_for(owner), "New", "test")[1]
    assert get(fresh).status_code == 429
    refused = client.post("/api/v1/refunds", data={"charge": "ch_1"}, headers={"Authorization": f"Bearer {crm}"})
    assert refused.status_code == 429
    assert _api_calls(owner.account_id) == ACCOUNT_LIMIT

    # Legitimate use elsewhere goes on: another account's key, and this account's live key (its own limit).
    assert get(other).status_code == 200
    live_answers = [get(live) for _ in range(3)]
    assert [a.status_code for a in live_answers] == [200, 200, 429]
    assert live_answers[0].headers["RateLimit-Limit"] == "2"


def test_i7_a_key_over_its_own_limit_says_so_and_leaves_the_account_its_room(client, app):
    """The key's limit still applies under the account's, and a call it refuses takes no place in the
    account's limit: the account's other key gets every remaining call."""
    app.config["KASSA_API_TEST_RATE_LIMIT"] = "4 per minute"
    owner = make_merchant()
    shop = create_key(actor_for(owner), "Shop", "test")[1]
    crm = create_key(actor_for(owner), "CRM", "test")[1]
    shop_answers = [client.get("/api/v1/payment_intents", headers={"Authorization": f"Bearer {shop}"})
                    for _ in range(6)]
    assert [a.status_code for a in shop_answers] == [200] * 4 + [429] * 2
    assert "this key" in shop_answers[4].json["error"]["message"]
    crm_answers = [client.get("/api/v1/payment_intents", headers={"Authorization": f"Bearer {crm}"})
                   for _ in range(3)]
    # The account had 2 of its 6 left: the key's refused calls took none of them.
    assert [a.status_code for a in crm_answers] == [200, 200, 429]
    assert "account" in crm_answers[2].json["error"]["message"]
    assert _api_calls(owner.account_id) == ACCOUNT_LIMIT


def test_i1_last_used_moves_once_a_minute_and_every_call_is_still_audited(client, app):
    """I1 with the audit row made cheap: every call is an audit row, while the key's "last used" is written at
    most once a minute (a busy key's calls don't all write its row)."""
    owner = make_merchant()
    key, secret = create_key(actor_for(owner), "Shop", "test")
    headers = {"Authorization": f"Bearer {secret}"}
    start = now()
    with time_machine.travel(start, tick=False):
        assert client.get("/api/v1/payment_intents", headers=headers).status_code == 200
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        assert client.get("/api/v1/payment_intents", headers=headers).status_code == 200
    db.session.rollback()
    assert db.session.get(ApiKey, key.id).last_used_at == start
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        assert client.get("/api/v1/payment_intents", headers=headers).status_code == 200
    db.session.rollback()
    assert db.session.get(ApiKey, key.id).last_used_at == start + timedelta(seconds=61)
    assert _api_calls(owner.account_id) == 3
