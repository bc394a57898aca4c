"""Statements for batches that run well on both databases (subscription billing writes thousands of rows a tick).

- Many rows go in with COPY on PostgreSQL, and are updated (or upserted) by one statement that reads them from
  one JSON parameter (jsonb_to_recordset): an executemany there is still a statement per row for the driver and the
  server, several times the cost. SQLite's executemany is already a tight loop.
- A long `IN (...)` list becomes one array parameter on PostgreSQL: the driver parses every query text it
  hasn't cached, and a list of 500 placeholders makes a query too long for its cache.
- New ids are taken before inserting, so the rows that refer to them go out in the same batch of statements
  (instead of an INSERT ... RETURNING whose 500-row text has the same parsing cost).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    column,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect

_POSTGRESQL = psycopg_dialect()


def among(dialect: str, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN values`, as `column = ANY(array)` on PostgreSQL."""
    values = list(values)
    if dialect == "postgresql":
        return column == any_(literal(values, ARRAY(column.type)))
    return column.in_(values)


def reserve_ids(session, table: Table, count: int) -> list[int]:
    """`count` new ids for `table`, in the caller's write transaction. PostgreSQL hands them out from the id
    column's sequence, to no one else. SQLite numbers rows from max(id) + 1 (as it does itself), and the
    caller's write transaction (BEGIN IMMEDIATE) keeps everyone else from inserting until it commits."""
    if count < 1:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return list(session.scalars(text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
                                         "FROM generate_series(1, :count)"), {"table": table.name, "count": count}))
    first = (session.scalar(select(func.max(table.c.id))) or 0) + 1
    return list(range(first, first + count))


def insert_rows(session, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT `rows` (dicts with the same keys) in the caller's transaction, with the columns' Python-side
    defaults and type conversions applied as an ORM insert would apply them."""
    if not rows:
        return
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    from psycopg import sql

    session.flush()  # what the ORM holds goes first, as before any statement the session runs
    given = list(rows[0])
    defaults = [column for column in table.columns if column.key not in rows[0] and column.default is not None]
    columns = [table.c[key] for key in given] + defaults
    convert = [column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(column.name) for column in columns))
    driver = session.connection().connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            values = [row[key] for key in given]
            values += [d.default.arg if d.default.is_scalar else d.default.arg(None) for d in defaults]
            copy.write_row([f(value) if f else value for f, value in zip(convert, values, strict=True)])


def rows_as_table(table: Table, rows: list[dict[str, Any]]):
    """PostgreSQL only: `rows` (dicts with the same keys) as a table `v` with `table`'s column types, sent as
    ONE json parameter that jsonb_to_recordset unpacks: any number of rows is one short statement. (An array
    per column was as short, but the driver escapes every quote of every JSON value it puts in a text array,
    which cost more than the statement itself.)"""
    dialect = _POSTGRESQL
    columns = [table.c[key] for key in rows[0]]
    # JSON columns keep their value as it is (it nests in the document); the others go through their type's
    # conversion first (e.g. UTCDateTime's), as a bound parameter would.
    convert = {c.key: None if isinstance(c.type, JSON) else c.type.bind_processor(dialect) for c in columns}
    document = json.dumps([{key: f(value) if (f := convert[key]) else value for key, value in row.items()}
                           for row in rows], default=_json_value, separators=(",", ":"))
    return (func.jsonb_to_recordset(cast(literal(document, Text()), JSONB))
            .table_valued(*[column(c.name, c.type) for c in columns])
            .render_derived(name="v", with_types=True))


def _json_value(value: Any) -> Any:
    """Values json can't write, written as PostgreSQL reads them back into their column's type."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"can't send a {type(value).__name__} through jsonb_to_recordset")


def update_rows(session, table: Table, rows: list[dict[str, Any]], *, key: str = "id") -> None:
    """UPDATE each row to its values (dicts with the same keys; `key` picks the row) in the caller's
    transaction."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        source = rows_as_table(table, rows)
        session.execute(update(table).where(table.c[key] == source.c[key])
                        .values({name: source.c[name] for name in rows[0] if name != key}))
        return
    session.execute(update(table).where(table.c[key] == bindparam("_row")),
                    [{"_row": row[key], **{k: v for k, v in row.items() if k != key}} for row in rows])
