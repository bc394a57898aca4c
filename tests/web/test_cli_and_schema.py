"""CLI commands, the migrations matching the models, and the tick registry (issue 3)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from kassa.cli import DEMO_EMAIL, DEMO_PASSWORD
from kassa.extensions import db
from kassa.models import Account, User
from kassa.services.platform import ticks
from tests.support.app import log_in

# Alembic can't reflect indexes on expressions (B3's lower(...) search indexes): compared by their SQL below.
EXPRESSION_INDEXES = {"ix_payments_search_email": "buyer_email", "ix_payments_search_name": "buyer_name"}


def _not_an_expression_index(obj, name, type_, reflected, compare_to) -> bool:
    return not (type_ == "index" and name in EXPRESSION_INDEXES)


def _canonical(sql: str) -> str:
    """An index's SQL as both databases write it back: no quotes, brackets, casts, schema or method."""
    import re

    return re.sub(r'["()]|::text|public\.|payments\.|usingbtree', "", re.sub(r"\s", "", sql.lower()))


def test_migrations_build_exactly_the_models_schema(app):
    """No model change may ship without its migration (the DB here was built by the migrations)."""
    import warnings

    from sqlalchemy import text
    from sqlalchemy.schema import CreateIndex

    with db.engine.connect() as conn, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "include_object": _not_an_expression_index})
        diff = compare_metadata(context, db.metadata)
    assert diff == []
    table = db.metadata.tables["payments"]
    for name in EXPRESSION_INDEXES:
        index = next(index for index in table.indexes if index.name == name)
        wanted = " ".join(str(CreateIndex(index).compile(db.engine)).split())
        if db.engine.dialect.name == "sqlite":
            built = db.session.scalar(text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": name})
        else:
            built = db.session.scalar(text("SELECT pg_get_indexdef(CAST(:n AS regclass))"), {"n": name})
        assert _canonical(built) == _canonical(wanted), (built, wanted)


def test_seed_demo_creates_a_login_that_works_and_is_idempotent(runner, client):
    result = runner.invoke(args=["kassa", "seed-demo"])
    assert result.exit_code == 0, result.output
    assert f"{DEMO_EMAIL} / {DEMO_PASSWORD}" in result.output
    again = runner.invoke(args=["kassa", "seed-demo"])
    assert "already exists" in again.output
    assert db.session.scalar(select(db.func.count()).select_from(Account)) == 1
    log_in(client, DEMO_EMAIL, DEMO_PASSWORD)
    assert client.get("/").status_code == 200


def test_seed_demo_pays_a_month_of_test_payments_through_the_checkout_back_dated(runner, client):
    from kassa.models import Payment, Refund, Subscription

    assert runner.invoke(args=["kassa", "seed-demo"]).exit_code == 0
    assert db.session.scalar(select(Account)) is not None
    payments = db.session.scalars(select(Payment).order_by(Payment.created_at)).all()
    assert len(payments) == 9 and {p.mode for p in payments} == {"test"}
    days = {p.created_at.date() for p in payments}
    assert len(days) == 9 and (max(days) - min(days)).days == 26  # one a day, over four weeks
    assert {p.method for p in payments} == {"card", "sepa"}  # Q10: the demo links are in EUR
    assert db.session.scalar(select(db.func.count()).select_from(Subscription)) >= 2
    assert db.session.scalar(select(db.func.count()).select_from(Refund)) == 1
    log_in(client, DEMO_EMAIL, DEMO_PASSWORD)
    index = client.get("/payments/").get_data(as_text=True)
    assert "ann@example.com" in index and "9 payments" in index


def test_create_user_command(runner):
    result = runner.invoke(args=["kassa", "create-user", "--email", "cli@shop.example", "--password",
                                 "long enough pw", "--company", "CLI Shop"])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.email == "cli@shop.example"))
    assert user.account.name == "CLI Shop" and user.role == "super_admin"
    bad = runner.invoke(args=["kassa", "create-user", "--email", "x@shop.example", "--password", "short"])
    assert bad.exit_code != 0 and "at least 10" in bad.output


def test_tick_runs_registered_tasks_and_reports_failures(runner, monkeypatch):
    calls = []
    monkeypatch.setattr(ticks, "_TASKS", [])
    ticks.register_tick("counting")(lambda: calls.append(1) or 3)

    def broken() -> int:
        raise RuntimeError("boom")

    ticks.register_tick("broken")(broken)
    result = runner.invoke(args=["kassa", "tick"])
    assert "counting: 3" in result.output
    assert "broken: FAILED RuntimeError: boom" in result.output
    assert result.exit_code == 1
    assert calls == [1]
