"""`flask kassa …` commands: serve, run-prod, create-database, worker, tick, seed-demo, create-user, rotate-keys,
backup, restore."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import func, select
from werkzeug.serving import run_simple

from kassa import production
from kassa.bench_data import BENCH_EMAIL, BENCH_PASSWORD, generate
from kassa.errors import ValidationFailed
from kassa.extensions import db
from kassa.models import Account, User
from kassa.seed import seed_demo
from kassa.services.accounts import stripe_connect
from kassa.services.accounts.users import sign_up
from kassa.services.platform import backups
from kassa.services.platform.ticks import run_tick
from kassa.supervisor import WorkerSupervisor
from kassa.worker import run_worker

kassa_cli = AppGroup("kassa", help="Kassa commands.")

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "kassa-demo-2026"  # noqa: S105 - printed on purpose: it is the public demo login


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def _handler(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return stop


@kassa_cli.command("worker")
@click.option("--tick-every", type=float, default=None, help="Also run the periodic tick every N seconds.")
@click.option("--poll", type=float, default=1.0, help="Seconds to wait when there is nothing to do.")
def worker_command(tick_every: float | None, poll: float) -> None:
    """Deliver outbox messages (emails, …) until stopped. Run as many as you like: they share the queue, and
    with --tick-every the tick runs once per period across all of them (G2)."""
    click.echo("Kassa worker started. Ctrl-C to stop.")
    run_worker(current_app._get_current_object(), stop=_stop_on_signals(), poll_seconds=poll, tick_seconds=tick_every)
    click.echo("Kassa worker stopped.")


@kassa_cli.command("tick")
def tick_command() -> None:
    """Run periodic work once (settlements, billing, payouts …). Safe to run on several machines."""
    report = run_tick()
    for name, count in report.done.items():
        click.echo(f"{name}: {count}")
    for name, error in report.failed.items():
        click.echo(f"{name}: FAILED {error}", err=True)
    for name, skipped in report.skipped.items():
        click.echo(f"{name}: {skipped} item(s) failed and were skipped; a later tick retries them", err=True)
    if report.failed:
        sys.exit(1)


@kassa_cli.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@click.option("--tick-every", default=30.0, type=float)
def serve_command(host: str, port: int, tick_every: float) -> None:
    """Web server and worker together, one process group: Ctrl-C stops both. A worker that dies is restarted
    (H6, with back-off) and the messages it held are queued again at once."""
    worker = WorkerSupervisor(
        current_app._get_current_object(),
        [sys.executable, "-m", "flask", "--app", "wsgi", "kassa", "worker", "--tick-every", str(tick_every)],
        env=dict(os.environ), say=lambda line: click.echo(f"  {line}", err=True),
    )
    worker.start()
    base_url = current_app.config["KASSA_BASE_URL"]
    click.echo(f"\n  Kassa is running on {base_url}")
    if db.session.scalar(select(func.count()).select_from(_user_model()).where(_user_model().email == DEMO_EMAIL)):
        click.echo(f"  Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}")
    click.echo("  Press Ctrl-C to stop the server and the worker.\n")
    db.session.remove()
    # Ctrl-C (SIGINT) and `kill`/systemd (SIGTERM) stop the server, and with it the worker. Set explicitly: a
    # shell that starts `make run &` in the background hands us SIGINT ignored, and the worker (which sets its
    # own handlers) would stop while the server went on and restarted it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        # Werkzeug's server directly: Flask ignores app.run() inside a `flask` command (it expects `flask run`),
        # which would return at once and take the worker down with it.
        run_simple(host, port, current_app._get_current_object(), threaded=True, use_reloader=False)
    finally:
        worker.stop()


@kassa_cli.command("run-prod")
@click.option("--port", default=8080, type=int, help="nginx's port on 127.0.0.1: the address to open.")
@click.option("--servers", default=2, type=click.IntRange(1, 16), help="gunicorn servers behind nginx.")
@click.option("--server-port", default=8001, type=int, help="The first server's port; the others follow it.")
@click.option("--workers", default=2, type=click.IntRange(1, 16), help="Worker processes.")
@click.option("--tick-every", default=60.0, type=click.FloatRange(min=1), help="Seconds between ticks.")
@click.option("--tls-cert", default=None, help="PEM certificate (chain): nginx then speaks HTTPS only (G7).")
@click.option("--tls-key", default=None, help="The certificate's PEM private key.")
def run_prod_command(port: int, servers: int, server_port: int, workers: int, tick_every: float,
                     tls_cert: str | None, tls_key: str | None) -> None:
    """G1: nginx in front of several gunicorn servers, and several workers, on PostgreSQL and Redis, on this
    machine (make run-prod). Ctrl-C stops everything."""
    app = current_app._get_current_object()
    profile = production.Profile(port=port, servers=servers, first_server_port=server_port, workers=workers,
                                 tick_every=tick_every, tls_cert=tls_cert, tls_key=tls_key)
    found = production.problems(app, profile)
    if found:
        raise click.ClickException("\n".join(found))
    db.session.remove()
    production.run(app, profile, stop=_stop_on_signals(), say=lambda line: click.echo(f"  {line}", err=True))
    click.echo("Kassa stopped.")


@kassa_cli.command("systemd-units")
@click.argument("target", type=click.Path(file_okay=False, path_type=Path))
@click.option("--user", default="kassa", help="The system user the processes run as.")
def systemd_units_command(target: Path, user: str) -> None:
    """G7: write the systemd units (web servers, workers, kassa.target) for this checkout into TARGET, e.g.
    /etc/systemd/system (docs/deploy.md)."""
    root = Path(current_app.root_path).parent
    target.mkdir(parents=True, exist_ok=True)
    for name, text in production.systemd_units(root, user).items():
        (target / name).write_text(text, encoding="utf-8")
        click.echo(f"Wrote {target / name}")


@kassa_cli.command("create-database")
def create_database_command() -> None:
    """Create the PostgreSQL database KASSA_DATABASE_URL names, if it does not exist (SQLite makes its own)."""
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    created = production.create_database(url)
    click.echo("Database created." if created else "Database already there (or SQLite): nothing to create.")


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # Werkzeug's serve_forever ends on it, then `finally` stops the worker


def _user_model():
    return User


@kassa_cli.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Only seed when the database has no accounts yet.")
def seed_demo_command(if_empty: bool) -> None:
    """Create the demo merchant (and its sample data) if it is not there yet."""
    if if_empty and db.session.scalar(select(func.count()).select_from(Account)):
        click.echo("Database already has accounts; demo not seeded.")
        return
    created = seed_demo(DEMO_EMAIL, DEMO_PASSWORD)
    click.echo("Demo merchant created." if created else "Demo merchant already exists.")
    click.echo(f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}")


@kassa_cli.command("create-user")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--company", default=None, help="Create a new account with this company name.")
@click.option("--name", default="")
def create_user_command(email: str, password: str, company: str | None, name: str) -> None:
    """Create a merchant account and its Super admin."""
    try:
        user = sign_up(company_name=company or email.split("@")[-1], name=name, email=email, password=password)
    except ValidationFailed as exc:
        raise click.ClickException("; ".join(exc.errors.values()) or exc.message) from None
    click.echo(f"Created {user.email} (Super admin of account {user.account_id}).")


@kassa_cli.command("rotate-keys")
def rotate_keys_command() -> None:
    """Re-encrypt stored processor secrets with the first key of KASSA_ENCRYPTION_KEYS (K5). Add the new key
    in front, run this, then remove the old key (docs/stripe.md)."""
    count = stripe_connect.rotate_encryption()
    click.echo(f"Re-encrypted {count} stored secret(s) with the newest key.")


@kassa_cli.command("backup")
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(target: Path) -> None:
    """Write the database and the uploaded and exported files to TARGET (a new .tar.gz), while Kassa runs (G5).
    The instance's keys are not in it: keep KASSA_ENCRYPTION_KEYS apart from the backups."""
    try:
        manifest = backups.create_backup(target)
    except backups.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    rows = sum(count for name, count in manifest.rows.items() if name != "alembic_version")
    click.echo(f"Backed up {rows:,} rows in {len(manifest.rows) - 1} tables and {len(manifest.files)} file(s) "
               f"to {target} (migration {manifest.revision}).")


@kassa_cli.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already holds data.")
def restore_command(source: Path, force: bool) -> None:
    """Restore a backup written by `flask kassa backup` into this instance's (empty) database and folders (G5)."""
    try:
        report = backups.restore_backup(source, force=force)
    except backups.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    rows = sum(count for name, count in report.manifest.rows.items() if name != "alembic_version")
    click.echo(f"Restored {rows:,} rows and {report.files} file(s) from the backup of {report.manifest.created_at}; "
               "every table's row count matches the backup.")
    if report.head:
        click.echo(f"The backup is at migration {report.manifest.revision}: run `flask --app wsgi db upgrade -d "
                   f"site/migrations` to bring it to {report.head}.")
    if report.undecryptable_secrets:
        click.echo(f"Warning: {report.undecryptable_secrets} stored Stripe secret(s) can't be decrypted with this "
                   "instance's KASSA_ENCRYPTION_KEYS: set the keys of the instance the backup came from.", err=True)


@kassa_cli.command("bench-data")
@click.option("--payments", "count", type=int, default=100_000, show_default=True)
@click.option("--seed", type=int, default=7)
def bench_data_command(count: int, seed: int) -> None:
    """Generate a merchant with COUNT realistic payments (bulk inserts) for benchmarks."""
    import time


    started = time.monotonic()

    def progress(done: int) -> None:
        if done % 100_000 == 0 or done == count:
            click.echo(f"  {done:,} payments ({time.monotonic() - started:.0f} s)")

    generate(count, seed=seed, progress=progress)
    click.echo(f"Created {count:,} payments in {time.monotonic() - started:.0f} s. Login: {BENCH_EMAIL} / {BENCH_PASSWORD}")


def register(app: Flask) -> None:
    app.cli.add_command(kassa_cli)
