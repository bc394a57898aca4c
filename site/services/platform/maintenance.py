"""Database upkeep on the tick: SQLite's query planner needs table statistics to pick good plans.

PostgreSQL's autovacuum keeps its statistics fresh by itself. SQLite has none until ANALYZE runs, and
without them it may walk an index row by row where a plain scan is ten times faster (counting a filtered
view of a million payments: 80 ms instead of 15 ms). So the tick analyzes when the statistics are missing
or the payments table has grown by a fifth since; `analysis_limit` samples each index, keeping it quick.
"""

from __future__ import annotations

from sqlalchemy import text

from kassa.database import dialect_name
from kassa.extensions import db

GROWTH = 1.2
SAMPLE_ROWS = 2000


def _stale() -> bool:
    has_stats = db.session.scalar(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"))
    if not has_stats:
        return True
    # Each index's row starts with the rows it covered; a partial index covers fewer, so take the largest.
    rows_then = db.session.scalar(text("SELECT max(CAST(stat AS INTEGER)) FROM sqlite_stat1 WHERE tbl = 'payments'"))
    rows_now = db.session.scalar(text("SELECT coalesce(max(rowid), 0) FROM payments")) or 0
    if rows_then is None:
        return rows_now > 0
    return rows_now > rows_then * GROWTH + 100


def refresh_statistics() -> int:
    if dialect_name(db.session) != "sqlite":
        return 0
    db.session.rollback()  # read the table as it is now, not an older snapshot
    stale = _stale()
    db.session.rollback()
    if not stale:
        return 0
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"PRAGMA analysis_limit = {SAMPLE_ROWS}")
        conn.exec_driver_sql("ANALYZE")
    return 1
