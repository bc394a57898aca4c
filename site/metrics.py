"""G4: Prometheus metrics, served at GET /metrics (blueprints/health.py, behind KASSA_METRICS_TOKEN).

What is counted in the process (request latency, webhook failures, payment outcomes) lives in prometheus_client
metrics. Under gunicorn with several workers each worker counts its own requests: set PROMETHEUS_MULTIPROC_DIR
(an empty directory, before the processes start) and prometheus_client keeps the values in files there, and a
scrape of any worker adds up all of them (docs/deploy.md).

What the database knows (jobs by state, outbox lag) is read from the database at scrape time by a collector, so
it is right however many processes there are and needs no process to keep it up to date.

A request costs one histogram observation and a request id (Q12 benchmarks the checkout GET: nothing else
per request belongs here).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from kassa import logs

log = logging.getLogger(__name__)

# The metrics this code updates. Their own registry, not prometheus_client's global one: the global one also
# describes this one process (its memory, its CPU), which misleads under several workers.
REGISTRY = CollectorRegistry(auto_describe=True)

REQUEST_SECONDS = Histogram(
    "kassa_http_request_duration_seconds",
    "Time to answer a request, by route (the Flask endpoint, not the path), method and status class.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
WEBHOOK_FAILURES = Counter(
    "kassa_webhook_failures",
    "Webhooks that failed: incoming from a processor (refused signature, or its events failed to apply).",
    ["processor", "direction", "reason"],
    registry=REGISTRY,
)
PAYMENT_OUTCOMES = Counter(
    "kassa_payment_outcomes",
    "Payments that reached an outcome (succeeded, failed), by processor; counted when the outcome is committed.",
    ["processor", "outcome"],
    registry=REGISTRY,
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_CLASS = {n: f"{n}xx" for n in range(1, 6)}
_PENDING = "kassa_metrics_pending"


# -- counters that follow the transaction -----------------------------------------------------------------


def count_on_commit(session: Any, counter: Counter, amount: float = 1, **labels: str) -> None:
    """Count `amount` once the session's transaction commits; nothing if it rolls back (a payment outcome
    recorded in a transaction that then failed did not happen)."""
    if amount:
        session.info.setdefault(_PENDING, []).append((counter, labels, amount))


@event.listens_for(Session, "after_commit")
def _apply_pending(session: Session) -> None:
    for counter, labels, amount in session.info.pop(_PENDING, ()):
        counter.labels(**labels).inc(amount)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


# -- what the database knows, read at scrape time ---------------------------------------------------------


class DatabaseCollector(Collector):
    """kassa_jobs{state}: outbox messages (emails, webhooks, PDFs, exports…) by state; kassa_outbox_lag_seconds:
    how long the oldest message that is due has waited (0 when none waits). Runs in the scrape's app context."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from kassa.clock import now
        from kassa.extensions import db
        from kassa.models import OutboxMessage, OutboxStatus

        at = now()
        try:
            # Both read through ix_outbox_messages_due (status, next_attempt_at).
            counts = dict(db.session.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all())
            oldest = db.session.scalar(select(func.min(OutboxMessage.next_attempt_at)).where(
                OutboxMessage.status == OutboxStatus.PENDING.value, OutboxMessage.next_attempt_at <= at))
        except Exception:
            log.exception("metrics: could not read the outbox")
            db.session.rollback()
            return
        db.session.rollback()
        jobs = GaugeMetricFamily("kassa_jobs", "Outbox messages (the worker's jobs) by state.", labels=["state"])
        for state in OutboxStatus:
            jobs.add_metric([state.value], counts.get(state.value, 0))
        yield jobs
        lag = max((at - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        yield GaugeMetricFamily("kassa_outbox_lag_seconds",
                                "Seconds the oldest due outbox message has waited for a worker.", value=lag)


_DATABASE = CollectorRegistry(auto_describe=False)
_DATABASE.register(DatabaseCollector())


def exposition() -> Response:
    """The text exposition of every metric: this process's (or, in multiprocess mode, all processes') counters
    and histograms, then the database's gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    return Response(generate_latest(counted) + generate_latest(_DATABASE), content_type=CONTENT_TYPE_LATEST)


# -- per request: the request id and one observation ------------------------------------------------------


_series: dict[tuple[str, str, str], Any] = {}  # the labelled histograms, looked up once each (Q12)
_access = logging.getLogger(logs.ACCESS_LOGGER)
_ACCESS_LINES = "kassa.access_lines"  # app.extensions: whether this app writes access lines (its config at start)


def record_request(app: Flask, route: str, method: str, path: str, status: int, seconds: float) -> None:
    """One answered request: its histogram observation, and its access line when logs are JSON. Called by the
    after_request hook below and by the checkout's first visit (Q12), which is answered outside Flask."""
    method = method if method in _METHODS else "other"
    key = (route, method, _STATUS_CLASS.get(status // 100, "other"))
    child = _series.get(key)
    if child is None:
        child = _series[key] = REQUEST_SECONDS.labels(*key)
    child.observe(seconds)
    if app.extensions.get(_ACCESS_LINES):
        _access.info("%s %s %s", method, path, status, extra={
            "route": route, "method": method, "path": path, "status": status, "duration_ms": round(seconds * 1000, 2)})


def register(app: Flask) -> None:
    """Give every request an id (logs, the X-Request-Id response header, jobs it queues) and time it.

    The first before_request hook, so a request another hook answers early (a rate limit, refused input) has
    its id too; registered before every other after_request hook, so it runs last and times all of them."""
    from kassa.netutil import through_trusted_proxy

    app.extensions[_ACCESS_LINES] = app.config.get("KASSA_LOG_FORMAT") == "json"

    def begin_request() -> None:
        g.kassa_request = (time.perf_counter(), logs.start_request(logs.incoming_request_id(through_trusted_proxy())))

    app.before_request_funcs.setdefault(None, []).insert(0, begin_request)

    @app.after_request
    def finish_request(response: Response) -> Response:
        started = g.get("kassa_request")
        if started is None:
            return response
        seconds = time.perf_counter() - started[0]
        current = request._get_current_object()  # one proxy lookup, not one per attribute (Q12)
        rule = current.url_rule
        record_request(app, rule.endpoint if rule is not None else "unmatched", current.method, current.path,
                       response.status_code, seconds)
        request_id = logs.current_request_id()
        if request_id:
            response.headers.add("X-Request-Id", request_id)  # no view sets it: add, not a scan-and-replace
        return response

    @app.teardown_request
    def end_request(_exc: BaseException | None) -> None:
        started = g.pop("kassa_request", None)
        if started is not None:
            logs.end_request(started[1])
