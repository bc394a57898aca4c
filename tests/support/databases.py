"""One migrated database per backend per xdist worker; every test starts from empty tables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.support.env import IN_CI, PG_URL, database_backends


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _database_name() -> str:
    # Unique per test run and worker: two runs at once (a developer and a helper) never share a database.
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"p{os.getpid()}"
    return f"kassa_test_{run[:10]}_{_worker()}"


def _drop_postgres_database(name: str) -> None:
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _postgres_url() -> str:
    """Create this run's own database on the local PostgreSQL server."""
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = _database_name()
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        hint = (
            "PostgreSQL is required for the test suite but is not reachable at "
            f"{make_url(PG_URL).render_as_string(hide_password=True)}.\n"
            "Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
        if not IN_CI:
            hint += "\nTo run only the SQLite half locally: KASSA_TEST_DBS=sqlite make test"
        pytest.fail(f"{hint}\n({exc.__class__.__name__}: {exc})", pytrace=False)
    finally:
        admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def _migrate(url: str, instance: Path) -> None:
    """Build the schema with the real Alembic migrations, as production does."""
    from flask_migrate import upgrade

    from kassa import create_app

    os.environ["KASSA_INSTANCE_PATH"] = str(instance)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade(directory=str(Path(__file__).resolve().parents[2] / "site" / "migrations"))
        from kassa.extensions import db

        db.engine.dispose()


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory) -> dict[str, str]:
    """{backend: url} of this worker's migrated databases, created on first use."""
    return {}


@pytest.fixture(scope="session", params=database_backends())
def database_url(request, database_urls, tmp_path_factory) -> str:
    backend = request.param
    if backend not in database_urls:
        instance = tmp_path_factory.mktemp(f"migrate-{backend}")
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'kassa.db'}"
        else:
            url = _postgres_url()
            request.addfinalizer(lambda: _drop_postgres_database(make_url(url).database))
        _migrate(url, instance)
        database_urls[backend] = url
    return database_urls[backend]


_SQL: dict = {}


def _non_empty(conn, tables: list) -> list:
    """The tables that hold a row, in `tables`' order: one query instead of a DELETE for each of ~80 tables
    (a test writes to a handful). Each probe stops at the first row (EXISTS)."""
    key = (conn.dialect.name, tuple(t.name for t in tables))
    probe = _SQL.get(key)
    if probe is None:
        quote = conn.dialect.identifier_preparer.format_table
        probe = _SQL[key] = " UNION ALL ".join(
            f"SELECT {i} WHERE EXISTS (SELECT 1 FROM {quote(t)})" for i, t in enumerate(tables))
    found = {row[0] for row in conn.exec_driver_sql(probe)}
    return [t for i, t in enumerate(tables) if i in found]


def _postgres_emptying(conn, tables: list) -> str:
    key = ("postgresql-script", tuple(t.name for t in tables))
    script = _SQL.get(key)
    if script is None:
        quote = conn.dialect.identifier_preparer.format_table
        script = _SQL[key] = "; ".join([
            "SET LOCAL session_replication_role = replica",
            *(f"DELETE FROM {quote(t)}" for t in tables),
            "SELECT setval(quote_ident(schemaname) || '.' || quote_ident(sequencename), 1, false) "
            "FROM pg_sequences WHERE last_value IS NOT NULL",
        ])
    return script


def empty_all_tables(engine: sa.Engine) -> None:
    from kassa.extensions import db

    tables = [t for t in reversed(db.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Not TRUNCATE: it gives every table and index a new file on disk, ~0.5 s a test for ~60 tables
            # (minutes of a run). DELETE of a few small or empty tables costs milliseconds, and all of them go
            # in one round trip (a probe for the non-empty tables costs more to plan than the DELETEs of empty
            # ones). Replica mode skips the foreign-key triggers (payments <-> checkout_sessions refer to each
            # other; every table ends empty anyway), and the sequences restart as TRUNCATE ... RESTART IDENTITY
            # made them.
            conn.exec_driver_sql(_postgres_emptying(conn, tables))
        else:
            # payments <-> checkout_sessions/payment_attempts reference each other: check at commit, when
            # every table is empty, instead of after each DELETE.
            conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
            for table in _non_empty(conn, tables):
                conn.execute(table.delete())
            # A test that ran the maintenance ANALYZE left statistics of its own rows; the next test's query
            # plans must not follow them.
            if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first():
                conn.exec_driver_sql("DELETE FROM sqlite_stat1")


@contextmanager
def scratch_database(like_url: str, directory: Path, name: str) -> Iterator[str]:
    """A new, empty database of the same kind as `like_url` (a SQLite file in `directory`, or a PostgreSQL
    database named after this run's), dropped afterwards: for tests that build a second instance (G5, G6)."""
    if make_url(like_url).get_backend_name() == "sqlite":
        yield f"sqlite:///{directory / f'{name}.db'}"
        return
    database = f"{make_url(like_url).database}_{name}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
    finally:
        admin.dispose()
    try:
        yield make_url(like_url).set(database=database).render_as_string(hide_password=False)
    finally:
        _drop_postgres_database(database)
