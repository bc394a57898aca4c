"""I4: an `Idempotency-Key` on a POST — the first response is kept 24 hours and replayed, the same key with
other parameters is 400, a retry while the first request still runs is 409 with `Retry-After`. Both databases."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from kassa.clock import now
from kassa.extensions import db
from kassa.models import ApiIdempotency, PaymentLink
from kassa.services.api import idempotency
from kassa.services.api.keys import create_key, key_actor
from kassa.services.api.resources import ApiError, Caller
from tests.factories import make_merchant
from tests.support.payments import actor_for, advance, reload, sandbox_payment

LINK = {"line_items[0][price_data][currency]": "usd", "line_items[0][price_data][unit_amount]": "500",
        "line_items[0][price_data][product_data][name]": "Tune-up", "line_items[0][quantity]": "1"}


@pytest.fixture
def owner(app):
    return make_merchant("Bikes")


@pytest.fixture
def key_and_secret(owner):
    return create_key(actor_for(owner), "Shop", "test")


def headers(secret: str, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", "Idempotency-Key": key}


def links() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(PaymentLink))


def test_i4_a_retry_replays_the_first_response_and_creates_nothing_more(client, key_and_secret):
    _key, secret = key_and_secret
    first = client.post("/api/v1/payment_links", data=LINK, headers=headers(secret, "link-1"))
    again = client.post("/api/v1/payment_links", data=dict(reversed(list(LINK.items()))),
                        headers=headers(secret, "link-1"))
    assert first.status_code == again.status_code == 200
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers and links() == 1
    other = client.post("/api/v1/payment_links", data=LINK, headers=headers(secret, "link-2"))
    assert other.json["id"] != first.json["id"] and links() == 2


def test_i4_a_refund_retried_moves_money_once(client, owner, key_and_secret):
    _key, secret = key_and_secret
    payment = sandbox_payment(owner.account_id, amount_minor=5000)
    body = {"payment_intent": f"pi_{payment.id}", "amount": "1500"}
    answers = [client.post("/api/v1/refunds", data=body, headers=headers(secret, "refund-9")) for _ in range(3)]
    assert {a.json["id"] for a in answers} == {answers[0].json["id"]}
    assert reload(payment.id).refund_reserved_minor == 1500


def test_i4_the_same_key_with_other_parameters_is_400(client, key_and_secret):
    _key, secret = key_and_secret
    client.post("/api/v1/payment_links", data=LINK, headers=headers(secret, "link-1"))
    changed = client.post("/api/v1/payment_links", data={**LINK, "line_items[0][quantity]": "2"},
                          headers=headers(secret, "link-1"))
    assert changed.status_code == 400 and changed.json["error"]["type"] == "idempotency_error"
    assert links() == 1


def test_i4_an_error_is_kept_too_and_a_key_too_long_is_refused(client, key_and_secret):
    _key, secret = key_and_secret
    bad = {**LINK, "line_items[0][price_data][unit_amount]": "-1"}
    first = client.post("/api/v1/payment_links", data=bad, headers=headers(secret, "bad-1"))
    again = client.post("/api/v1/payment_links", data=bad, headers=headers(secret, "bad-1"))
    assert first.status_code == again.status_code == 400 and again.json == first.json
    too_long = client.post("/api/v1/payment_links", data=LINK, headers=headers(secret, "k" * 256))
    assert too_long.status_code == 400 and links() == 0


def test_i4_a_retry_while_the_first_still_runs_is_409_with_retry_after(client, key_and_secret):
    key, secret = key_and_secret
    caller = Caller(actor=key_actor(key, None), mode="test")
    fingerprint = idempotency.fingerprint("POST", "/api/v1/payment_links", list(LINK.items()))
    claim = idempotency.begin(caller, "link-1", fingerprint)  # the first request, not answered yet
    assert isinstance(claim, int)
    busy = client.post("/api/v1/payment_links", data=LINK, headers=headers(secret, "link-1"))
    assert busy.status_code == 409 and busy.headers["Retry-After"] == "1"
    assert busy.json["error"]["code"] == "idempotency_key_in_use" and links() == 0
    with pytest.raises(ApiError):
        idempotency.begin(caller, "link-1", fingerprint)


def test_i4_keys_are_per_mode_and_expire_after_24_hours(client, owner, key_and_secret):
    _key, secret = key_and_secret
    _live, live_secret = create_key(actor_for(owner), "Live", "live")
    first = client.post("/api/v1/payment_links", data=LINK, headers=headers(secret, "link-1"))
    live = client.post("/api/v1/payment_links", data=LINK, headers=headers(live_secret, "link-1"))
    assert live.json["id"] != first.json["id"] and links() == 2
    with time_machine.travel(now() + timedelta(hours=24, minutes=1), tick=False):
        later = client.post("/api/v1/payment_links", data=LINK, headers=headers(secret, "link-1"))
    assert later.json["id"] not in (first.json["id"], live.json["id"]) and links() == 3


def test_i4_the_tick_drops_responses_older_than_24_hours(client, key_and_secret):
    _key, secret = key_and_secret
    client.post("/api/v1/payment_links", data=LINK, headers=headers(secret, "link-1"))
    advance(timedelta(hours=23))
    assert db.session.scalar(select(func.count()).select_from(ApiIdempotency)) == 1
    advance(timedelta(hours=24, minutes=1))
    assert db.session.scalar(select(func.count()).select_from(ApiIdempotency)) == 0


def test_i4_the_same_key_sent_at_once_makes_one_link(app, key_and_secret):
    """Requests racing on one key: each is answered the first's response or 409 (in flight); one link is made."""
    import threading
    import urllib.error
    import urllib.parse
    import urllib.request

    from werkzeug.serving import make_server

    from tests.support.browser import serving

    _key, secret = key_and_secret
    server = make_server("127.0.0.1", 0, app, threaded=True)
    answers: list[tuple[int, str]] = []
    start = threading.Barrier(6)

    def send(url: str) -> None:
        request = urllib.request.Request(f"{url}/api/v1/payment_links", data=urllib.parse.urlencode(LINK).encode(),
                                         headers=headers(secret, "race-1"), method="POST")
        start.wait()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answers.append((response.status, json.loads(response.read())["id"]))
        except urllib.error.HTTPError as exc:
            answers.append((exc.code, exc.headers.get("Retry-After", "")))

    with serving(server):
        url = f"http://127.0.0.1:{server.server_port}"
        threads = [threading.Thread(target=send, args=(url,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert len(answers) == 6 and links() == 1
    created = {value for status, value in answers if status == 200}
    assert len(created) == 1 and {status for status, _v in answers} <= {200, 409}
    assert all(value == "1" for status, value in answers if status == 409)  # Retry-After
