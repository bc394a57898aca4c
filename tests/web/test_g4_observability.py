"""G4 Observability: JSON log lines with a request id that follows the request into the jobs it queued; the
id taken from X-Request-Id only behind a trusted proxy; /metrics behind a bearer token (404 unset, 401 wrong)
with latency by route, jobs by state, outbox lag, webhook failures and payment outcomes; /readyz naming each
dependency that fails. On SQLite and PostgreSQL (the database fixture)."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import timedelta

import pytest
import time_machine
from cryptography.fernet import Fernet
from sqlalchemy import select

from kassa.clock import now
from kassa.extensions import db
from kassa.models import OutboxMessage
from tests.support.app import run_outbox
from tests.support.checkout import pay_with_card
from tests.support.checkout_flow import cvc_for, make_shop
from tests.support.stripe_doubles import FixtureTransport
from tests.support.stripe_events import fixture_app_config, make_connection, signed

TOKEN = "g4-metrics-token-0123456789abcdef"
KEY = Fernet.generate_key().decode()


@pytest.fixture
def app_config() -> dict:
    return {"KASSA_LOG_FORMAT": "json", "KASSA_METRICS_TOKEN": TOKEN,
            **fixture_app_config(FixtureTransport({}), KEY)}


@pytest.fixture(autouse=True)
def _plain_logging_afterwards():
    """KASSA_LOG_FORMAT=json sets up the root logger, which outlives this test's app: put it back afterwards, so
    the tests that run next in this process log as before."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if h.get_name() == "kassa-json"]:
        root.removeHandler(handler)
    root.setLevel(level)
    logging.getLogger("werkzeug").setLevel(logging.NOTSET)


@pytest.fixture
def log_lines(app):
    """What the JSON handler KASSA_LOG_FORMAT=json installed writes, read back as dicts."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "kassa-json")
    buffer = io.StringIO()
    handler.setStream(buffer)

    def lines() -> list[dict]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    return lines


def metrics_text(client) -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.status_code
    assert response.content_type.startswith("text/plain")
    return response.get_data(as_text=True)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in the exposition (0 when it is not there yet)."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(match.group(3))
    return 0.0


# -- logs and request ids -------------------------------------------------------------------------------------


def test_g4_json_access_line_has_the_request_id_and_the_job_it_queued_logs_the_same_id(app, client, log_lines):
    _owner, link = make_shop()
    response = pay_with_card(client, link.slug)
    assert response.status_code == 303
    request_id = response.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)

    access = [line for line in log_lines() if line["logger"] == "kassa.access" and line["request_id"] == request_id]
    assert len(access) == 1
    line = access[0]
    assert line["method"] == "POST" and line["status"] == 303 and line["route"] == "checkout.submit"
    assert line["level"] == "INFO" and isinstance(line["duration_ms"], float) and line["time"].endswith("Z")
    assert line["message"] == f"POST {response.checkout_path} 303"

    # The receipt the payment queued carries the id, and the worker's lines for it name the request again.
    queued = db.session.scalars(select(OutboxMessage).where(OutboxMessage.request_id == request_id)).all()
    assert queued, "the payment queued no job with its request id"
    assert run_outbox() >= len(queued)
    job_lines = [line for line in log_lines() if line.get("job") in {m.id for m in queued}]
    assert {line["job"] for line in job_lines} == {m.id for m in queued}
    assert all(line["request_id"] == request_id and line["account_id"] == link.account_id for line in job_lines)


def test_g4_spoofed_request_id_from_a_client_is_ignored_and_a_trusted_proxys_is_kept(app, client, log_lines):
    spoofed = client.get("/healthz", headers={"X-Request-Id": "someone-elses-request"})
    assert spoofed.headers["X-Request-Id"] != "someone-elses-request"
    assert re.fullmatch(r"[0-9a-f]{32}", spoofed.headers["X-Request-Id"])

    app.config["KASSA_TRUSTED_PROXIES"] = 1
    # Behind the proxy, but this request did not come through it (no X-Forwarded-For entry): still ignored.
    direct = client.get("/healthz", headers={"X-Request-Id": "direct-not-proxied"})
    assert direct.headers["X-Request-Id"] != "direct-not-proxied"
    proxied = client.get("/healthz", headers={"X-Request-Id": "nginx-7f3a", "X-Forwarded-For": "203.0.113.9"})
    assert proxied.headers["X-Request-Id"] == "nginx-7f3a"
    # Even from the proxy, an id that could break a log line is replaced.
    broken = client.get("/healthz", headers={"X-Request-Id": "a b\"{}", "X-Forwarded-For": "203.0.113.9"})
    assert re.fullmatch(r"[0-9a-f]{32}", broken.headers["X-Request-Id"])
    ids = [line["request_id"] for line in log_lines() if line["logger"] == "kassa.access"]
    assert "someone-elses-request" not in ids and "direct-not-proxied" not in ids and "nginx-7f3a" in ids


def test_g4_text_log_format_is_the_default_and_installs_no_json_handler(database_url, tmp_path, monkeypatch):
    from kassa import create_app

    monkeypatch.setenv("KASSA_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.delenv("KASSA_LOG_FORMAT", raising=False)
    before = [h for h in logging.getLogger().handlers if h.get_name() == "kassa-json"]
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url})
    assert app.config["KASSA_LOG_FORMAT"] == "text"
    assert [h for h in logging.getLogger().handlers if h.get_name() == "kassa-json"] == before


# -- /metrics -------------------------------------------------------------------------------------------------


def test_g4_metrics_is_404_without_a_token_configured_and_401_with_a_wrong_one(app, client):
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert "kassa_" not in wrong.get_data(as_text=True)
    app.config["KASSA_METRICS_TOKEN"] = None
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


def test_g4_metrics_latency_by_route_and_payment_outcomes_change_after_payments(app, client):
    _owner, link = make_shop()
    before = metrics_text(client)
    for family in ("kassa_http_request_duration_seconds", "kassa_jobs", "kassa_outbox_lag_seconds",
                   "kassa_webhook_failures_total", "kassa_payment_outcomes_total"):
        assert f"# TYPE {family.removesuffix('_total')}" in before, family

    assert pay_with_card(client, link.slug).status_code == 303
    declined = "4000000000000002"
    assert pay_with_card(client, link.slug, card_number=declined, card_cvc=cvc_for(declined)).status_code == 422
    after = metrics_text(client)

    for outcome in ("succeeded", "failed"):
        assert sample(after, "kassa_payment_outcomes_total", processor="sandbox", outcome=outcome) == \
            sample(before, "kassa_payment_outcomes_total", processor="sandbox", outcome=outcome) + 1
    # Latency by route (the endpoint, not the path with its token), method and status class.
    count = "kassa_http_request_duration_seconds_count"
    assert sample(after, count, route="checkout.submit", method="POST", status="3xx") == \
        sample(before, count, route="checkout.submit", method="POST", status="3xx") + 1
    assert sample(after, count, route="checkout.submit", method="POST", status="4xx") == \
        sample(before, count, route="checkout.submit", method="POST", status="4xx") + 1
    assert "/checkout/" not in after


def test_g4_metrics_jobs_by_state_and_outbox_lag_are_read_from_the_database(app, client):
    _owner, link = make_shop()
    assert run_outbox() >= 0  # whatever setting up the shop queued is done
    start = metrics_text(client)
    assert sample(start, "kassa_jobs", state="pending") == 0 and sample(start, "kassa_outbox_lag_seconds") == 0

    assert pay_with_card(client, link.slug).status_code == 303
    queued = len(db.session.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")).all())
    assert queued >= 1
    with time_machine.travel(now() + timedelta(seconds=90), tick=False):
        waiting = metrics_text(client)
    assert sample(waiting, "kassa_jobs", state="pending") == queued
    assert 90 <= sample(waiting, "kassa_outbox_lag_seconds") < 100

    run_outbox()
    done = metrics_text(client)
    assert sample(done, "kassa_jobs", state="pending") == 0 and sample(done, "kassa_outbox_lag_seconds") == 0
    assert sample(done, "kassa_jobs", state="done") == sample(start, "kassa_jobs", state="done") + queued


def test_g4_metrics_count_a_stripe_webhook_that_failed(app, client):
    _owner, link = make_shop()
    make_connection(link.account_id, "whsec_g4SigningSecret000001")
    before = metrics_text(client)
    payload, header = signed({"id": "evt_g4", "type": "payment_intent.succeeded", "object": "event",
                              "data": {"object": {"id": "pi_g4", "object": "payment_intent"}}},
                             "whsec_a_different_secret_0000")
    refused = client.post(f"/webhooks/stripe/{link.account_id}", data=payload,
                          headers={"Stripe-Signature": header, "Content-Type": "application/json"})
    assert refused.status_code == 400
    after = metrics_text(client)
    labels = {"processor": "stripe", "direction": "incoming", "reason": "signature"}
    assert sample(after, "kassa_webhook_failures_total", **labels) == \
        sample(before, "kassa_webhook_failures_total", **labels) + 1


# -- /readyz --------------------------------------------------------------------------------------------------


def test_g4_readyz_names_redis_when_redis_is_down(app, client):
    app.config["KASSA_REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "ok", "redis": "unreachable", "migrations": "ok"}


def test_g4_metrics_add_up_every_process_in_multiprocess_mode(database_url, tmp_path):
    """PROMETHEUS_MULTIPROC_DIR (gunicorn -w N plus the worker): what two other processes counted is in the
    scrape a third one answers. Separate interpreters: prometheus_client reads the variable at import."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"), "KASSA_INSTANCE_PATH": str(tmp_path / "i"),
           "KASSA_DATABASE_URL": database_url, "KASSA_METRICS_TOKEN": TOKEN}
    (tmp_path / "prom").mkdir()
    count = ("from kassa.metrics import PAYMENT_OUTCOMES as P; "
             "P.labels(processor='sandbox', outcome='succeeded').inc(); P.labels(processor='stripe', outcome='failed').inc(2)")
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True, timeout=120)
    scrape = ("from kassa import create_app; c = create_app().test_client(); "
              f"r = c.get('/metrics', headers={{'Authorization': 'Bearer {TOKEN}'}}); "
              "assert r.status_code == 200, r.status_code; print(r.get_data(as_text=True))")
    text = subprocess.run([sys.executable, "-c", scrape], env=env, check=True, timeout=120, capture_output=True,
                          text=True).stdout
    assert sample(text, "kassa_payment_outcomes_total", processor="sandbox", outcome="succeeded") == 2
    assert sample(text, "kassa_payment_outcomes_total", processor="stripe", outcome="failed") == 4
    assert "kassa_jobs{" in text and "kassa_outbox_lag_seconds" in text
