"""M7: handlers, tick tasks and template filters are registered explicitly, each kind in one place
(`kassa.wiring`), and SQLite settings attach to the app's own engine only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from kassa.extensions import db
from kassa.services.platform import ticks

# The order the tick ran before M7 (printed from `registered_tasks()` on main); M7 keeps it.
# K11 added "stripe_payouts" right after Kassa's own payouts; K7 the Stripe events poll after the sandbox's events;
# V2 the invoice reminders after the subscription reminders; I4 the pruning of API idempotency responses before
# the statistics.
TICK_ORDER = ["risk_counters", "subscription_billing", "subscription_reminders", "invoice_reminders", "payouts",
              "stripe_payouts",
              "sandbox_events", "stripe_events",
              "reconcile_attempts", "retry_refunds", "reconcile_dispute_answers", "dispute_reminders",
              "workflows", "webhooks", "api_idempotency", "database_statistics"]
ALL_ACCOUNTS_ONLY = {"risk_counters", "reconcile_dispute_answers", "api_idempotency", "database_statistics"}
SERVICE_MODULES = ["billing.billing", "events", "exports.exports", "payments.invoices", "platform.mail",
                   "platform.maintenance", "payments.mandates", "payouts.payouts", "payments.receipts",
                   "payments.risk", "billing.subscriptions", "accounts.users", "billing.billing_outcomes",
                   "payouts.stripe_payouts", "webhooks.stripe_webhooks", "checkout.invoice_sending",
                   "webhooks.outgoing"]
ROOT = Path(__file__).resolve().parents[2]


def _pragmas(engine: sa.Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("foreign_keys", "busy_timeout", "journal_mode", "synchronous")}


def test_m7_the_tick_runs_the_declared_tasks_in_the_declared_order(app, monkeypatch):
    """The tick runs exactly `wiring.tick_tasks()`, in that order, with each task's per-account flag; a
    one-account tick (H14) runs only the per-account ones."""
    from kassa import wiring

    declared = wiring.tick_tasks()
    assert [task.name for task in declared] == TICK_ORDER
    assert {task.name for task in declared if not task.per_account} == ALL_ACCOUNTS_ONLY
    assert ticks.registered_tasks() == TICK_ORDER

    ran: list[str] = []
    monkeypatch.setattr(ticks, "_TASKS", [(name, lambda name=name: ran.append(name) or 0)
                                          for name in ticks.registered_tasks()])
    ticks.run_tick()
    assert ran == TICK_ORDER
    ran.clear()
    ticks.run_tick(account_id=1)
    assert ran == [name for name in TICK_ORDER if name not in ALL_ACCOUNTS_ONLY]


def test_m7_building_the_app_twice_registers_nothing_twice(app, database_url):
    """A second `create_app` (the worker, the CLI, tests) leaves one of everything: the same tick tasks,
    handlers and filters, and the app's engine has Kassa's listeners once."""
    from kassa import create_app
    from kassa.database import _sqlite_begin, _tune_sqlite
    from kassa.services import events
    from kassa.services.platform import mail, outbox

    def snapshot():
        return (ticks.registered_tasks(), sorted(ticks._PER_ACCOUNT), sorted(outbox._HANDLERS),
                sorted(outbox._GIVE_UP_HOOKS), sorted(events._HANDLERS), sorted(mail._RENDERERS),
                sorted(mail._SECRET_LINKS))

    before = snapshot()
    second = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})
    assert snapshot() == before
    assert ticks.registered_tasks() == TICK_ORDER
    assert {"money", "recipients", "subscription_status", "text_on"} <= set(second.jinja_env.filters)
    with second.app_context():
        engine = db.engine
        for name, listener in (("connect", _tune_sqlite), ("begin", _sqlite_begin)):
            assert sa.event.contains(engine, name, listener)
            assert not sa.event.contains(sa.Engine, name, listener)  # not on every engine in the process
        engine.dispose()


def test_m7_an_engine_outside_the_app_gets_no_kassa_sqlite_settings(app, tmp_path):
    """A plain `create_engine` in the same process keeps SQLite's defaults (no WAL, no foreign keys, no
    30 s busy timeout, no BEGIN IMMEDIATE) while the app's own SQLite engine has Kassa's settings."""
    outside = sa.create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        assert _pragmas(outside) == {"foreign_keys": 0, "busy_timeout": 5000, "journal_mode": "delete",
                                     "synchronous": 2}
        with outside.connect() as conn:
            # Kassa's connect hook hands BEGIN to its own listener by clearing the driver's isolation level.
            assert conn.connection.dbapi_connection.isolation_level == ""
    finally:
        outside.dispose()
    if db.engine.dialect.name == "sqlite":
        assert _pragmas(db.engine) == {"foreign_keys": 1, "busy_timeout": 30000, "journal_mode": "wal",
                                       "synchronous": 1}


def test_m7_import_order_does_not_change_the_tick_order(tmp_path):
    """Importing the service modules in any order before building the app gives the same tick: the order
    is the declared list, not the order in which modules happened to be imported."""
    script = (
        "import importlib, json, sys\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module('kassa.services.' + name)\n"
        "from kassa import create_app\n"
        "from kassa.services.platform import ticks\n"
        "create_app({'SQLALCHEMY_DATABASE_URI': 'sqlite://'})\n"
        "print(json.dumps([ticks.registered_tasks(), sorted(ticks._PER_ACCOUNT)]))\n"
    )
    env = {**os.environ, "KASSA_INSTANCE_PATH": str(tmp_path / "instance")}
    env.pop("KASSA_DATABASE_URL", None)
    orders = []
    for modules in (SERVICE_MODULES, list(reversed(SERVICE_MODULES))):
        done = subprocess.run([sys.executable, "-c", script, *modules], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120, check=True)
        orders.append(json.loads(done.stdout.strip().splitlines()[-1]))
    expected = [TICK_ORDER, sorted(set(TICK_ORDER) - ALL_ACCOUNTS_ONLY)]
    assert orders == [expected, expected]
