"""G5: a whole Kassa instance in one file, and back.

`flask kassa backup FILE` writes a gzip'd tar holding

- ``manifest.json``: archive format, when, the database kind, its migration revision, the number of rows of every
  table and the SHA-256 of every file;
- the database: ``database.sqlite`` (SQLite's online backup API: a consistent copy while the app keeps writing)
  or ``database.pgdump`` (``pg_dump --format=custom``, one snapshot);
- ``files/uploads/…`` (logos, dispute evidence) and ``files/exports/…`` (exports merchants may still download).

Receipts are not kept: they are rendered again from the database when asked for. Neither are the instance's
secrets (``secret_key``, ``encryption_key``): a backup stored apart from the keys gives nobody a merchant's
Stripe secret. Restoring therefore needs the same ``KASSA_ENCRYPTION_KEYS``; the restore checks that every stored
secret still decrypts and says so when one does not.

`flask kassa restore FILE` puts it back into the configured database and folders. It refuses a database that
already holds rows (``--force`` replaces it), an archive that is not one of ours, and files whose checksum
doesn't match, before changing anything; afterwards it compares every table's row count with the manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import sqlalchemy as sa
from cryptography.fernet import InvalidToken
from flask import current_app
from sqlalchemy.engine import URL

from kassa import secrets_box
from kassa.clock import now
from kassa.database import migration_head
from kassa.extensions import db
from kassa.models import StripeConnection

FORMAT = "kassa-backup/1"
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite"
PG_FILE = "database.pgdump"
FOLDERS = {"uploads": "KASSA_UPLOAD_DIR", "exports": "KASSA_EXPORT_DIR"}


class BackupError(Exception):
    """A backup or restore that could not be done; the message says why and what to do. Nothing was changed."""


@dataclass
class Manifest:
    format: str
    created_at: str
    dialect: str
    revision: str | None
    rows: dict[str, int]
    files: dict[str, str] = field(default_factory=dict)  # archive path -> sha256

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw)
            manifest = cls(**{name: data[name] for name in ("format", "created_at", "dialect", "revision", "rows",
                                                              "files")})
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupError("This file is not a Kassa backup: its manifest can't be read.") from exc
        if manifest.format != FORMAT:
            raise BackupError(f"This backup's format is {manifest.format!r}; this version of Kassa reads {FORMAT!r}.")
        return manifest


@dataclass(frozen=True)
class RestoreReport:
    manifest: Manifest
    files: int
    undecryptable_secrets: int  # stored Stripe secrets the configured keys can't open
    head: str | None  # the code's newest migration, when the backup is older


# -- what is in the database -------------------------------------------------------------------------------


def _tables() -> list[str]:
    return [table.name for table in db.metadata.sorted_tables]


def _counts(conn: sa.Connection) -> dict[str, int]:
    names = set(sa.inspect(conn).get_table_names())
    # Table names come from Kassa's own metadata, never from input.
    return {name: conn.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar_one()  # noqa: S608
            for name in [*_tables(), "alembic_version"] if name in names}


def _revision_of(conn: sa.Connection) -> str | None:
    if "alembic_version" not in sa.inspect(conn).get_table_names():
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def row_counts(engine: sa.Engine) -> dict[str, int]:
    """Rows of every table Kassa's models declare, plus the migration table."""
    with engine.connect() as conn:
        return _counts(conn)


# -- PostgreSQL through its own tools ------------------------------------------------------------------------


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """The libpq address of a SQLAlchemy URL and the environment carrying its password (never on the command
    line, where `ps` would show it)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    address = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return address, env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    if shutil.which(command[0]) is None:
        raise BackupError(f"{command[0]} is needed to {what} on PostgreSQL: apt-get install -y postgresql-client")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed to {what}: {done.stderr.strip()[-2000:]}")


# -- backup ----------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _instance_files() -> list[tuple[str, Path]]:
    """(archive path, file) of every uploaded and exported file."""
    found = []
    for folder, setting in FOLDERS.items():
        root = Path(current_app.config[setting])
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    found.append((f"files/{folder}/{path.relative_to(root).as_posix()}", path))
    return found


def create_backup(target: Path) -> Manifest:
    """Write the instance's backup to `target` (which must not exist yet): the file appears whole or not at all."""
    target = Path(target)
    if target.exists():
        raise BackupError(f"{target} already exists; choose a new file name (backups are never overwritten).")
    engine = db.engine
    dialect = engine.dialect.name
    with tempfile.TemporaryDirectory(prefix="kassa-backup-") as work:
        work_dir = Path(work)
        if dialect == "sqlite":
            dump = work_dir / SQLITE_FILE
            source = sqlite3.connect(f"file:{engine.url.database}?mode=ro", uri=True)
            copy = sqlite3.connect(dump)
            try:
                source.backup(copy)  # page by page, consistent even while the app writes
            finally:
                copy.close()
                source.close()
            copied = sa.create_engine(f"sqlite:///{dump}")
            try:
                with copied.connect() as conn:  # the counts of the copy itself
                    rows, revision = _counts(conn), _revision_of(conn)
            finally:
                copied.dispose()
        elif dialect == "postgresql":
            dump = work_dir / PG_FILE
            address, env = _libpq(engine.url)
            # One snapshot for the counts and the dump: a server still taking payments changes neither.
            with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
                snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
                rows, revision = _counts(conn), _revision_of(conn)
                _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
                      f"--file={dump}", address], env, "back up the database")
        else:
            raise BackupError(f"Backups of {dialect} databases are not supported.")
        files = _instance_files()
        manifest = Manifest(format=FORMAT, created_at=now().isoformat(), dialect=dialect, revision=revision,
                            rows=rows, files={name: _sha256(path) for name, path in files})
        partial = target.with_name(f".{target.name}.partial")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(partial, "w:gz") as archive:
            info = tarfile.TarInfo(MANIFEST)
            body = manifest.to_json()
            info.size, info.mtime = len(body), int(now().timestamp())
            archive.addfile(info, io.BytesIO(body))
            archive.add(dump, arcname=dump.name)
            for name, path in files:
                archive.add(path, arcname=name)
        partial.replace(target)
    return manifest


# -- restore ---------------------------------------------------------------------------------------------


def _read_archive(source: Path, work_dir: Path) -> Manifest:
    """Unpack `source` into `work_dir` and check it against its manifest, before anything else is touched."""
    try:
        with tarfile.open(source, "r:gz") as archive:
            try:
                manifest = Manifest.from_json(archive.extractfile(MANIFEST).read())
            except KeyError as exc:
                raise BackupError("This file is not a Kassa backup: it has no manifest.") from exc
            for member in archive.getmembers():
                name = PurePosixPath(member.name)
                if member.name != MANIFEST and name.name not in (SQLITE_FILE, PG_FILE) \
                        and member.name not in manifest.files:
                    raise BackupError(f"The backup holds a file its manifest doesn't list: {member.name}")
            archive.extractall(work_dir, filter="data")  # no absolute paths, no "..", no links out, no devices
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"The backup can't be read ({exc}); it may be incomplete or damaged.") from exc
    for name in manifest.files:  # where each file goes comes from the manifest: only into our two folders
        parts = PurePosixPath(name).parts
        if len(parts) < 3 or parts[0] != "files" or parts[1] not in FOLDERS or any(p in ("", ".", "..")
                                                                                     for p in parts):
            raise BackupError(f"The backup's manifest names a file outside Kassa's folders: {name}")
    dump = work_dir / (SQLITE_FILE if manifest.dialect == "sqlite" else PG_FILE)
    if not dump.is_file():
        raise BackupError("The backup has no database in it.")
    for name, digest in manifest.files.items():
        path = work_dir / name
        if not path.is_file() or _sha256(path) != digest:
            raise BackupError(f"The backup's file {name} is missing or damaged (its checksum doesn't match).")
    return manifest


def _holds_rows(engine: sa.Engine) -> bool:
    return any(count for name, count in row_counts(engine).items() if name != "alembic_version")


def _restore_sqlite(dump: Path, engine: sa.Engine) -> None:
    target = engine.url.database
    engine.dispose()
    source = sqlite3.connect(dump)
    destination = sqlite3.connect(target)
    try:
        source.backup(destination)  # replaces every page of the target, WAL included
    finally:
        destination.close()
        source.close()


def _restore_postgres(dump: Path, engine: sa.Engine) -> None:
    address, env = _libpq(engine.url)
    engine.dispose()  # pg_restore --clean drops the tables: no pooled connection may hold a lock on one
    _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
          "--exit-on-error", f"--dbname={address}", str(dump)], env, "restore the database")


def _restore_files(work_dir: Path, manifest: Manifest) -> int:
    for setting in FOLDERS.values():
        root = Path(current_app.config[setting])
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True, exist_ok=True)
    for name in manifest.files:
        _files, folder, rest = name.split("/", 2)
        destination = Path(current_app.config[FOLDERS[folder]]) / rest
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work_dir / name, destination)
    return len(manifest.files)


def _undecryptable_secrets() -> int:
    failures = 0
    for connection in db.session.scalars(sa.select(StripeConnection)):
        try:
            secrets_box.decrypt(connection.secret_key_encrypted)
        except InvalidToken:
            failures += 1
    return failures


def restore_backup(source: Path, *, force: bool = False) -> RestoreReport:
    """Put the backup at `source` into this instance's database and folders. Refuses, changing nothing: a
    damaged or foreign archive, one from another kind of database, and a database that holds rows (unless
    `force`)."""
    engine = db.engine
    with tempfile.TemporaryDirectory(prefix="kassa-restore-") as work:
        work_dir = Path(work)
        manifest = _read_archive(Path(source), work_dir)
        if manifest.dialect != engine.dialect.name:
            raise BackupError(f"This backup is of a {manifest.dialect} database and this instance uses "
                              f"{engine.dialect.name}: restore it into a {manifest.dialect} instance.")
        if not force and _holds_rows(engine):
            raise BackupError("This instance's database already holds data. Restore into a new, empty database, "
                              "or pass --force to replace everything in it with the backup.")
        db.session.remove()
        if manifest.dialect == "sqlite":
            _restore_sqlite(work_dir / SQLITE_FILE, engine)
        else:
            _restore_postgres(work_dir / PG_FILE, engine)
        files = _restore_files(work_dir, manifest)
    restored = row_counts(engine)
    if restored != manifest.rows:
        different = sorted(name for name in set(restored) | set(manifest.rows)
                           if restored.get(name) != manifest.rows.get(name))
        raise BackupError(f"The restored database doesn't match the backup's manifest (tables: {', '.join(different)}).")
    head = migration_head()
    return RestoreReport(manifest=manifest, files=files, undecryptable_secrets=_undecryptable_secrets(),
                         head=head if head != manifest.revision else None)
