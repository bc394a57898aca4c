"""GET /healthz: 200 when the app can reach its database, 503 when it cannot (DESIGN §4).
GET /readyz (G4): 200 only when this server can serve: the database answers, Redis answers (when configured) and
the database is at the migration this code ships. A load balancer takes a server that says 503 out of rotation,
e.g. during an upgrade whose migrations haven't run yet.
GET /metrics (G4): Prometheus' text format (kassa.metrics), for a scraper holding KASSA_METRICS_TOKEN."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, abort, current_app, jsonify, request
from sqlalchemy import text

from kassa import metrics as kassa_metrics
from kassa.database import migration_head
from kassa.extensions import csrf, db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@csrf.exempt
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except Exception:
        db.session.rollback()
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", database="ok")


def _database_revision() -> tuple[str, str | None]:
    """("ok", revision) or ("unreachable", None)."""
    try:
        revision = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        db.session.rollback()
    except Exception:
        db.session.rollback()
        return "unreachable", None
    return "ok", revision


def _redis() -> str:
    url = current_app.config.get("KASSA_REDIS_URL")
    if not url:
        return "not configured"
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except (RedisError, OSError):
        return "unreachable"
    finally:
        client.close()
    return "ok"


@bp.get("/readyz")
@csrf.exempt
def readyz():
    database, revision = _database_revision()
    head = migration_head()
    if database != "ok":
        migrations = "unknown"
    else:
        migrations = "ok" if revision == head else f"at {revision or 'none'}, expected {head}"
    redis = _redis()
    ready = database == "ok" and migrations == "ok" and redis in ("ok", "not configured")
    body = {"status": "ok" if ready else "error", "database": database, "redis": redis, "migrations": migrations}
    return jsonify(body), 200 if ready else 503


@bp.get("/metrics")
@csrf.exempt
def metrics():
    """404 while no KASSA_METRICS_TOKEN is set (nothing to find), 401 without the right bearer token. The token
    is compared in constant time, so the time of a refusal says nothing about how much of a guess was right."""
    token = current_app.config.get("KASSA_METRICS_TOKEN")
    if not token:
        abort(404)
    scheme, _space, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(offered.strip().encode(), token.encode()):
        return Response("A bearer token is needed.\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'},
                        content_type="text/plain")
    return kassa_metrics.exposition()
