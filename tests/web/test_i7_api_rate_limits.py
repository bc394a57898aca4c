"""I7: API calls are limited per key (test and live limits apart), every answer carries RateLimit-* headers, and
a call over the limit is 429 `rate_limit_error` with Retry-After — another key is not held back. Both databases."""

from __future__ import annotations

import pytest

from kassa.services.api.keys import create_key
from tests.factories import make_merchant
from tests.support.payments import actor_for


@pytest.fixture
def app_config() -> dict:
    return {"KASSA_API_TEST_RATE_LIMIT": "3 per minute", "KASSA_API_LIVE_RATE_LIMIT": "5 per minute"}


def test_i7_a_key_over_its_limit_is_429_with_retry_after_and_others_go_on(client, app):
    owner = make_merchant()
    _k, secret = create_key(actor_for(owner), "Shop", "test")
    _k, other = create_key(actor_for(owner), "Accounting", "test")
    _k, live = create_key(actor_for(owner), "Live", "live")
    headers = {"Authorization": f"Bearer {secret}"}

    answers = [client.get("/api/v1/payment_intents", headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert answers[0].headers["RateLimit-Limit"] == "3" and int(answers[0].headers["RateLimit-Reset"]) <= 60

    over = client.get("/api/v1/payment_intents", headers=headers)
    assert over.status_code == 429 and over.json["error"]["type"] == "rate_limit_error"
    assert 1 <= int(over.headers["Retry-After"]) <= 60 and over.headers["RateLimit-Remaining"] == "0"
    assert client.post("/api/v1/refunds", data={"charge": "ch_1"}, headers=headers).status_code == 429

    assert client.get("/api/v1/payment_intents", headers={"Authorization": f"Bearer {other}"}).status_code == 200
    live_answer = client.get("/api/v1/payment_intents", headers={"Authorization": f"Bearer {live}"})
    assert live_answer.status_code == 200 and live_answer.headers["RateLimit-Limit"] == "5"
