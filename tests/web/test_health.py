"""GET /healthz (DESIGN §4)."""

from __future__ import annotations

from sqlalchemy import create_engine


def test_healthz_reports_database_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_503_when_database_unreachable(app, client):
    from kassa.extensions import db

    # Point the app at a database that cannot be opened: the check must say so, not crash.
    broken = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    original = db.engines[None]
    db.engines[None] = broken
    try:
        db.session.remove()
        response = client.get("/healthz")
    finally:
        db.engines[None] = original
        db.session.remove()
        broken.dispose()
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"
