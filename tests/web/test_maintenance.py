"""The tick keeps SQLite's planner statistics fresh (PostgreSQL's autovacuum does it there)."""

from __future__ import annotations

from sqlalchemy import text

from kassa.database import dialect_name
from kassa.extensions import db
from kassa.services.platform.maintenance import refresh_statistics
from tests.factories import make_merchant
from tests.support.payments import bulk_payments


def test_statistics_are_gathered_when_missing_and_again_when_payments_grow(app):
    if dialect_name(db.session) != "sqlite":
        assert refresh_statistics() == 0  # PostgreSQL: nothing to do
        return
    owner = make_merchant()
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS sqlite_stat1")
    bulk_payments(owner.account_id, [{"amount_minor": 100 + i} for i in range(200)])

    assert refresh_statistics() == 1
    db.session.rollback()
    rows = db.session.scalar(text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'payments' LIMIT 1"))
    assert int(rows.split()[0]) == 200
    assert refresh_statistics() == 0  # fresh: nothing to do

    bulk_payments(owner.account_id, [{"amount_minor": 5} for _ in range(300)])
    assert refresh_statistics() == 1
    db.session.rollback()
    rows = db.session.scalar(text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'payments' LIMIT 1"))
    assert int(rows.split()[0]) == 500
