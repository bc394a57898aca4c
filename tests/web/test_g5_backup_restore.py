"""G5: `flask kassa backup` and `flask kassa restore`. A fresh instance restored from a backup holds every row of
every table and every uploaded file of the instance that was backed up (SQLite and PostgreSQL), and a restore
that can't be done is refused before anything changes."""

from __future__ import annotations

import io
import json
import tarfile
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from kassa import secrets_box
from kassa.actor import Actor
from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Account, StripeConnection, User
from kassa.services.accounts.accounts import update_branding
from tests.support.databases import scratch_database


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 40, 10)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def populated(app, runner):
    """The demo merchant's month of payments, links, subscriptions and disputes, a logo, an export file and an
    encrypted Stripe secret."""
    result = runner.invoke(args=["kassa", "seed-demo"])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(sa.select(User))
    update_branding(Actor(user=user, account_id=user.account_id), brand_color="#aa3300", logo=_png())
    exports = Path(app.config["KASSA_EXPORT_DIR"])
    exports.mkdir(parents=True, exist_ok=True)
    (exports / "payments-1.csv").write_text("id,amount\n1,10.00\n")
    with write_transaction(db.session) as session:
        session.add(StripeConnection(
            account_id=user.account_id, mode="test", secret_key_encrypted=secrets_box.encrypt("sk_test_g5"),
            secret_key_last4="t_g5", publishable_key="pk_test_g5", stripe_account_id="acct_g5",
            stripe_account_name="G5", country="NL", default_currency="EUR", connected_at=now()))
    return user


def _everything(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every row of every table (the models' tables and the migration table), in primary-key order. The tables
    the database has are those the models declare (test_cli_and_schema checks it)."""
    out = {}
    with engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) == {t.name for t in db.metadata.sorted_tables} | {
            "alembic_version"}
        for table in db.metadata.sorted_tables:
            out[table.name] = [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key))]
        out["alembic_version"] = [tuple(row) for row in conn.execute(sa.text("SELECT * FROM alembic_version"))]
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def fresh(app, database_url, tmp_path, monkeypatch):
    """A second, empty instance (its own database and folders) with the first one's keys; yields a factory
    so a test can also build one with other keys."""
    with ExitStack() as stack:
        made = []

        def make(encryption_keys=None):
            from kassa import create_app

            n = len(made)
            url = stack.enter_context(scratch_database(database_url, tmp_path, f"restored_{n}"))
            monkeypatch.setenv("KASSA_INSTANCE_PATH", str(tmp_path / f"restored-instance-{n}"))
            second = create_app({**{k: app.config[k] for k in ("TESTING", "KASSA_PASSWORD_HASH_PROFILE",
                                                                "RATELIMIT_STORAGE_URI", "SECRET_KEY")},
                                 "SQLALCHEMY_DATABASE_URI": url,
                                 "KASSA_ENCRYPTION_KEYS": encryption_keys or app.config["KASSA_ENCRYPTION_KEYS"]})
            made.append(second)
            return second

        yield make
        for second in made:
            with second.app_context():
                db.engine.dispose()


def _restore(instance, *args: str):
    """`flask kassa restore` on another instance (a CLI command runs in the app context already pushed)."""
    with instance.app_context():
        return instance.test_cli_runner().invoke(args=["kassa", "restore", *args])


def _backup(app, runner, path: Path) -> None:
    result = runner.invoke(args=["kassa", "backup", str(path)])
    assert result.exit_code == 0, result.output
    assert "Backed up" in result.output


def test_g5_a_fresh_instance_restored_from_a_backup_has_every_row_and_every_file(app, runner, populated, fresh,
                                                                                  tmp_path):
    backup = tmp_path / "kassa.tar.gz"
    _backup(app, runner, backup)
    original_rows = _everything(db.engine)
    original_uploads = _files(Path(app.config["KASSA_UPLOAD_DIR"]))
    assert original_rows["payments"] and original_rows["subscriptions"] and original_rows["stripe_connections"]
    assert sum(1 for rows in original_rows.values() if rows) >= 15  # a real instance's spread of tables
    assert any(name.startswith("logos/") for name in original_uploads)

    second = fresh()
    result = _restore(second, str(backup))
    assert result.exit_code == 0, result.output
    assert "every table's row count matches the backup" in result.output
    assert "Warning" not in result.output  # the same keys: the Stripe secret opens
    with second.app_context():
        assert _everything(db.engine) == original_rows
        assert _files(Path(second.config["KASSA_UPLOAD_DIR"])) == original_uploads
        assert _files(Path(second.config["KASSA_EXPORT_DIR"])) == {"payments-1.csv": b"id,amount\n1,10.00\n"}
        assert secrets_box.decrypt(db.session.scalar(sa.select(StripeConnection)).secret_key_encrypted) == "sk_test_g5"
        # The restored instance goes on: new rows get new ids (PostgreSQL's sequences came back too).
        with write_transaction(db.session) as session:
            session.add(Account(name="After restore"))
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)) == 2
        db.session.remove()


def test_g5_restore_refuses_a_database_with_data_unless_forced_and_force_replaces_it(app, runner, populated,
                                                                                    tmp_path):
    backup = tmp_path / "kassa.tar.gz"
    _backup(app, runner, backup)
    before = _everything(db.engine)
    with write_transaction(db.session) as session:
        session.add(Account(name="Made after the backup"))
    db.session.remove()
    changed = _everything(db.engine)

    refused = runner.invoke(args=["kassa", "restore", str(backup)])
    assert refused.exit_code != 0
    assert "already holds data" in refused.output and "--force" in refused.output
    assert _everything(db.engine) == changed

    forced = runner.invoke(args=["kassa", "restore", "--force", str(backup)])
    assert forced.exit_code == 0, forced.output
    assert _everything(db.engine) == before


def test_g5_a_backup_never_overwrites_a_file(app, runner, populated, tmp_path):
    existing = tmp_path / "kassa.tar.gz"
    existing.write_bytes(b"an older backup")
    result = runner.invoke(args=["kassa", "backup", str(existing)])
    assert result.exit_code != 0 and "already exists" in result.output
    assert existing.read_bytes() == b"an older backup"


def _rewrite(source: Path, target: Path, change) -> None:
    """Copy a backup archive member by member, letting `change(name, bytes)` alter each member's bytes."""
    with tarfile.open(source, "r:gz") as old, tarfile.open(target, "w:gz") as new:
        for member in old.getmembers():
            data = change(member.name, old.extractfile(member).read())
            for name, body in (data if isinstance(data, list) else [(member.name, data)]):
                info = tarfile.TarInfo(name)
                info.size = len(body)
                new.addfile(info, io.BytesIO(body))


def _with_manifest(edit):
    def change(name, body):
        if name == "manifest.json":
            manifest = json.loads(body)
            edit(manifest)
            return json.dumps(manifest).encode()
        return body
    return change


def _outside(manifest):
    manifest["files"]["files/uploads/../../escaped.txt"] = next(iter(manifest["files"].values()))


@pytest.mark.parametrize(("change", "message"), [
    (lambda name, body: body + b"x" if name.startswith("files/uploads/") else body, "checksum doesn't match"),
    (_with_manifest(lambda m: m.update(format="other/9")), "this version of Kassa reads"),
    (_with_manifest(_outside), "outside Kassa's folders"),
    (lambda name, body: [(name, body), ("files/uploads/extra.txt", b"?")] if name == "manifest.json" else body,
     "doesn't list"),
])
def test_g5_a_damaged_or_foreign_backup_is_refused_and_changes_nothing(app, runner, populated, fresh, tmp_path,
                                                                      change, message):
    backup = tmp_path / "kassa.tar.gz"
    _backup(app, runner, backup)
    damaged = tmp_path / "damaged.tar.gz"
    _rewrite(backup, damaged, change)

    second = fresh()
    result = _restore(second, str(damaged))
    assert result.exit_code != 0
    assert message in result.output
    with second.app_context():
        assert not sa.inspect(db.engine).get_table_names()  # nothing was restored
        db.engine.dispose()
    assert not (tmp_path / "escaped.txt").exists()


def test_g5_a_file_that_is_no_backup_is_refused(app, fresh, tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a backup at all")
    result = _restore(fresh(), str(junk))
    assert result.exit_code != 0 and "can't be read" in result.output


def test_g5_restore_with_other_keys_says_the_stripe_secrets_cant_be_opened(app, runner, populated, fresh, tmp_path):
    from cryptography.fernet import Fernet

    backup = tmp_path / "kassa.tar.gz"
    _backup(app, runner, backup)
    second = fresh(encryption_keys=[Fernet.generate_key().decode()])
    result = _restore(second, str(backup))
    assert result.exit_code == 0, result.output
    assert "1 stored Stripe secret(s) can't be decrypted" in result.output
