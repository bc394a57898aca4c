"""GET /healthz (DESIGN §4)."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import create_engine


def test_healthz_reports_database_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


@contextmanager
def database_unreachable():
    """Point the app at a database that cannot be opened: the checks must say so, not crash."""
    from kassa.extensions import db

    broken = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    original = db.engines[None]
    db.engines[None] = broken
    try:
        db.session.remove()
        yield
    finally:
        db.engines[None] = original
        db.session.remove()
        broken.dispose()


def test_healthz_503_when_database_unreachable(app, client):
    with database_unreachable():
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


# -- G4: /readyz ----------------------------------------------------------------------------------------------


def test_g4_readyz_is_ok_when_database_and_migrations_are_and_redis_is_not_configured(client):
    from kassa.database import migration_head

    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "redis": "not configured", "migrations": "ok"}
    assert migration_head()  # the code ships a head the database is at


def test_g4_readyz_checks_redis_when_configured(app, client):
    app.config["KASSA_REDIS_URL"] = "redis://127.0.0.1:6379/0"
    assert client.get("/readyz").get_json()["redis"] == "ok"
    app.config["KASSA_REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["redis"] == "unreachable" and response.get_json()["status"] == "error"


def test_g4_readyz_is_503_while_the_database_is_behind_the_codes_migrations(app, client):
    from sqlalchemy import text

    from kassa.extensions import db

    head = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    db.session.execute(text("UPDATE alembic_version SET version_num = '0020_qprice'"))
    db.session.commit()
    try:
        response = client.get("/readyz")
    finally:
        db.session.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
        db.session.commit()
    assert response.status_code == 503
    assert response.get_json()["migrations"] == f"at 0020_qprice, expected {head}"
    assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_g4_readyz_is_503_when_the_database_is_unreachable(app, client):
    with database_unreachable():
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable" and response.get_json()["migrations"] == "unknown"
