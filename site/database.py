"""The declarative base, the UTC column type, SQLite tuning and the one way services open a write transaction."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Date, DateTime, Engine, Integer, MetaData, Select, event, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, registry
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import JSON, TypeDecorator

from kassa.clock import now

# Ids typed into forms and URLs are parsed by the one input layer (H9): ASCII digits, within a signed
# 64-bit integer. Re-exported here for the services that already import them from the database layer.
from kassa.forms import MAX_ID, parse_id

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Always stores and returns aware UTC datetimes; SQLite would otherwise hand back naive ones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use kassa.clock.now()")
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text: store them without an offset so ordering is lexical.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class search_key(FunctionElement):  # lower case: it reads like the SQL function it renders
    """B3: a text column lowercased and compared byte by byte, for prefix search by index range.

    SQLite compares text byte by byte already; PostgreSQL sorts by the database's collation, where a prefix
    range can miss rows ("jane.doe" between "jane" and "janf" isn't guaranteed), so there it is COLLATE "C".
    The indexes (models.Payment) and the queries (services/backoffice/payment_search) use this same
    expression, which is what lets the database use the index."""

    inherit_cache = True
    name = "search_key"


@compiles(search_key)
def _search_key_default(element: search_key, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(search_key, "postgresql")
def _search_key_postgresql(element: search_key, compiler: Any, **kw: Any) -> str:
    return f'(lower({compiler.process(element.clauses, **kw)}) COLLATE "C")'


class Base(DeclarativeBase):
    # BigInteger ids and money, except on SQLite where only INTEGER PRIMARY KEY auto-increments.
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={
            datetime: UTCDateTime(),
            dict: JSON(),
            dict[str, Any]: JSON(),
            dict[str, bool]: JSON(),
            list: JSON(),
            list[str]: JSON(),
            list[int]: JSON(),
            date: Date(),
            list[dict[str, Any]]: JSON(),
            int: BigInteger().with_variant(Integer(), "sqlite"),
        },
    )


def tune_engine(engine: Engine) -> None:
    """Attach Kassa's SQLite settings to the app's own engine only (M7): before, they listened on every
    `Engine` in the process, so any other engine (a test's, a tool's) got Kassa's WAL and BEGIN too."""
    for name, listener in (("connect", _tune_sqlite), ("begin", _sqlite_begin)):
        if not event.contains(engine, name, listener):
            event.listen(engine, name, listener)


def _tune_sqlite(dbapi_connection: Any, connection_record: Any) -> None:
    """WAL lets readers run beside one writer; the busy timeout makes writers queue instead of failing."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # SQLAlchemy's pysqlite recipe: stop the driver from issuing its own BEGIN so ours (below) is used.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    """Write transactions take SQLite's write lock up front (BEGIN IMMEDIATE).

    A deferred transaction that reads first and writes later cannot wait for the lock: SQLite fails it
    at once with "database is locked". Taking the lock at BEGIN makes concurrent writers queue on the
    busy timeout instead, which is what the locking guarantees of refunds and payments rely on.
    """
    if conn.dialect.name != "sqlite":
        return
    mode = conn.get_execution_options().get("kassa_sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def write_transaction(session: Session) -> Iterator[Session]:
    """One use case, one transaction: commit on success, roll back on any error.

    Nested calls join the outer transaction, so a service may call another service. Any read snapshot
    the request held is ended first, so the write sees current data (and on SQLite starts with the lock).
    """
    if session.info.get("kassa_write"):
        yield session
        return
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("objects were changed outside a write transaction")
    session.rollback()
    session.connection(execution_options={"kassa_sqlite_begin": "IMMEDIATE"})
    session.info["kassa_write"] = True
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.info.pop("kassa_write", None)


def utcnow_column_default() -> datetime:
    # Deferred import: clock imports nothing from the database layer, but keep this module import-light.

    return now()


__all__ = ["MAX_ID", "Base", "BigInteger", "UTCDateTime", "lock_one", "locked", "parse_id", "utcnow_column_default",
           "write_transaction"]


def dialect_name(session: Session) -> str:
    """"postgresql" or "sqlite": the few places that differ (row locks, SKIP LOCKED) ask this."""
    return session.get_bind().dialect.name


# -- row locks (M5: the one home; services used to carry five helpers of their own) --------------------


def locked(session: Session, query: Select, *, skip_locked: bool = False, of: Any = None) -> Select:
    """`query` taking row locks on PostgreSQL (SQLite's write transaction already serializes writers).
    ``skip_locked``: rows another transaction holds are left out instead of waited for."""
    if dialect_name(session) == "postgresql":
        return query.with_for_update(skip_locked=skip_locked, of=of)
    return query


def lock_one(session: Session, model: type, object_id: int) -> Any:
    """One row by id, locked for the rest of the write transaction, with its current values (not a copy the
    session loaded before the lock was taken). None if there is no such row."""
    query = locked(session, select(model).where(model.id == object_id))
    return session.scalar(query.execution_options(populate_existing=True))


@lru_cache(maxsize=1)
def migration_head() -> str | None:
    """The newest migration this code ships (site/migrations): what a database must be at to be served."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head()


class PrecompiledRead:
    """Q12: one read statement compiled once per dialect and run straight on a pooled DBAPI connection.

    SQLAlchemy spends far more than the database on a small query: the statement's cache key is computed on
    every execution, the session begins and rolls back a transaction (SQLite: its own BEGIN statement), and
    each column goes through its result processor. For the busiest read (the checkout page's state, about a
    third of that page's time) this runs the SQL SQLAlchemy compiled, with the parameters through their
    types' bind processors, and hands back the driver's row as is. So the statement should select what
    needs no result processing: comparisons (to a bound time) instead of timestamps, JSON cast to text.
    Used outside any session: it reads committed data only, which a GET that writes nothing needs."""

    def __init__(self, statement: Select) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple] = {}

    def _compile(self, engine: Engine, params: dict[str, Any]) -> tuple:
        dialect = engine.dialect
        compiled = self.statement.compile(dialect=dialect)
        processors = {name: process for name, bind in compiled.binds.items()
                      if (process := bind.type.bind_processor(dialect)) is not None}
        # Every parameter but the caller's is a constant of the statement (a status, a LIMIT): bound once.
        constants = compiled.construct_params(params)
        for name in params:
            del constants[name]
        for name, process in processors.items():
            if name in constants:
                constants[name] = process(constants[name])
        built = (compiled.string, constants, {name: processors.get(name) for name in params}, compiled.positiontup)
        self._compiled[dialect.name] = built
        return built

    def one_or_none(self, engine: Engine, **params: Any) -> tuple | None:
        built = self._compiled.get(engine.dialect.name) or self._compile(engine, params)
        sql, constants, processors, positions = built
        values = dict(constants)
        for name, value in params.items():
            process = processors[name]
            values[name] = value if process is None else process(value)
        args = [values[name] for name in positions] if positions is not None else values
        reader = _sqlite_reader(engine)
        if reader is not None:
            rows = _fetch(reader, sql, args)
        else:
            connection = engine.raw_connection()
            try:
                rows = _fetch(connection, sql, args)
            finally:
                connection.close()  # back to the pool, which rolls back whatever the driver began
        if len(rows) > 1:
            raise ValueError("PrecompiledRead.one_or_none: more than one row")
        return tuple(rows[0]) if rows else None


def _fetch(connection: Any, sql: str, args: Any) -> list:
    cursor = connection.cursor()
    try:
        cursor.execute(sql, args)
        return cursor.fetchmany(2)
    finally:
        cursor.close()  # ends the statement, and with it SQLite's read snapshot


# engine → (each thread's (pid, detached connection), the ones still alive: closed together on dispose). A
# thread's connection goes with the thread (nothing else holds it): a server that starts a thread per request
# (the development server) opens one per request, where the pool would reuse one; gunicorn's workers keep theirs.
_sqlite_readers: weakref.WeakKeyDictionary[Engine, tuple[threading.local, weakref.WeakSet] | None] = weakref.WeakKeyDictionary()
_readers_lock = threading.Lock()
_UNSEEN = object()


def _sqlite_reader(engine: Engine) -> Any | None:
    """SQLite on a file: this thread's own DBAPI connection for PrecompiledRead (None on any other database).

    It is taken from the engine's pool once and detached from it, so it was opened and tuned as every pooled
    connection is (`_tune_sqlite`: WAL, the busy timeout, and autocommit: no BEGIN). In autocommit each
    SELECT is its own read transaction, ended when its cursor closes, and sees every commit made before it:
    between reads the connection holds nothing, needs no rollback and no pool. Checking a connection out of
    SQLAlchemy's pool and back in cost about as much as the checkout page's whole query (Q12). Made again in a
    forked process; closed when the engine is disposed. PostgreSQL keeps the pool (and its rollback, which
    ends the transaction psycopg begins)."""
    if engine.dialect.name != "sqlite":
        return None
    readers = _sqlite_readers.get(engine, _UNSEEN)
    if readers is _UNSEEN:
        with _readers_lock:
            readers = _sqlite_readers.get(engine, _UNSEEN)
            if readers is _UNSEEN:
                in_memory = engine.url.database in (None, "", ":memory:") or "mode=memory" in str(engine.url)
                # An in-memory database lives in its one pooled connection: it keeps the pool.
                readers = _sqlite_readers[engine] = None if in_memory else (threading.local(), weakref.WeakSet())
                event.listen(engine, "engine_disposed", _close_sqlite_readers)
    if readers is None:
        return None
    local, made = readers
    held = getattr(local, "held", None)
    if held is None or held[0] != os.getpid():
        fairy = engine.raw_connection()
        fairy.detach()
        held = local.held = (os.getpid(), fairy)
        with _readers_lock:
            made.add(fairy)
    return held[1].dbapi_connection


def _close_sqlite_readers(engine: Engine) -> None:
    readers = _sqlite_readers.pop(engine, None)
    if not readers:
        return
    with _readers_lock:
        fairies = list(readers[1])
        readers[1].clear()
    for fairy in fairies:
        try:
            fairy.close()  # detached: closes the DBAPI connection itself
        except Exception:  # a connection another thread made, which SQLite may refuse to close here: GC closes it
            log.debug("could not close a PrecompiledRead connection", exc_info=True)
