"""Exports and reports, built in the worker (X1–X3): exactly the rows the view shows, as CSV, XLS or XLSX.

A request writes an Export row and an outbox message; the worker streams the rows from the database
into the file (constant memory), reports progress, then notifies the merchant in the app and by email.
Files live under instance/exports/ and are served only to members of the account, for 7 days.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select, update

from kassa.actor import Actor
from kassa.clock import now
from kassa.database import write_transaction
from kassa.errors import Forbidden, Gone, NotFound, ValidationFailed
from kassa.extensions import db
from kassa.forms import parse_date
from kassa.i18n import LANGUAGES
from kassa.models import Account, Export, ExportStatus, Permission, User
from kassa.services.exports.export_sources import ASSOCIATION_LIMITS, count_rows, headers_and_rows
from kassa.services.exports.export_writers import WRITERS, XLS_MAX_ROWS, Cancelled
from kassa.services.platform import outbox
from kassa.services.platform.mail import queue_email
from kassa.services.platform.notifications import notify_in_app
from kassa.urls import absolute_url

FORMATS = ("csv", "xlsx", "xls")
LIFETIME = timedelta(days=7)
KINDS = ("payments", "payout_reconciliation", "balance", "payout_details", "ar_aging", "invoices", "segment")


def export_dir() -> Path:
    path = Path(current_app.config["KASSA_EXPORT_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def _require(actor: Actor) -> None:
    """A member with the permission, or (I2) an API key, whose permissions include it."""
    if not actor.can(Permission.MANAGE_PAYMENTS):
        raise Forbidden(_("You need the “%(permission)s” permission.", permission=Permission.MANAGE_PAYMENTS.label))


def request_export(actor: Actor, *, kind: str, name: str, file_format: str, language: str,
                   params: dict[str, Any]) -> Export:
    """Queue an export; refuse at once what can't work (unknown format, XLS over its row limit)."""
    _require(actor)
    errors: dict[str, str] = {}
    name = " ".join((name or "").split()) or _("Export")  # H9: no CR/LF or tabs (the name becomes a file name)
    if len(name) > 120:
        errors["name"] = _("Use at most 120 characters.")
    if file_format not in FORMATS:
        errors["file_format"] = _("Choose CSV, XLS or XLSX.")
    if language not in LANGUAGES:
        errors["language"] = _("Choose a language.")
    if kind not in KINDS:
        raise NotFound(_("Unknown export."))
    if params.get("associations") and str(params.get("association_limit") or "1000") not in ASSOCIATION_LIMITS:
        errors["association_limit"] = _("Choose up to 1,000 associated records or all of them.")
    for key in ("from", "to"):  # the report kinds' date range (H9): a real date or left empty
        if params.get(key) and parse_date(params[key]) is None:
            errors[key] = _("Enter a real date as YYYY-MM-DD.")
    if errors:
        raise ValidationFailed(_("Check the highlighted fields."), errors=errors)
    total = count_rows(actor.account_id, actor.user, kind, params)
    if file_format == "xls" and total > XLS_MAX_ROWS:
        raise ValidationFailed(
            _("XLS files hold at most %(max)s rows and this export has %(n)s. Choose XLSX or CSV.",
              max=f"{XLS_MAX_ROWS:,}", n=f"{total:,}"),
            field="file_format")
    with write_transaction(db.session) as session:
        # I2: requested by the member, or by the API key (then user_id is None: exactly one of the two)
        export = Export(account_id=actor.account_id, user_id=actor.user_id,
                        api_key_id=None if actor.user is not None else actor.api_key_id, kind=kind, name=name,
                        file_format=file_format, language=language, params=params, rows_total=total,
                        download_token=secrets.token_urlsafe(24))
        session.add(export)
        session.flush()
        outbox.enqueue("export", {"export_id": export.id}, account_id=actor.account_id)
        return export


def _progress(export_id: int):
    def report(done: int) -> bool:
        """Save the row count; False when the merchant cancelled (the writer then stops)."""
        with write_transaction(db.session) as session:
            session.execute(update(Export).where(Export.id == export_id).values(rows_done=done))
            status = session.scalar(select(Export.status).where(Export.id == export_id))
        return status != ExportStatus.CANCELLED.value

    return report


def run_export(payload: dict[str, Any]) -> None:
    """The worker's job: stream the rows into the file, then tell the merchant it's ready."""
    export_id = payload["export_id"]
    with write_transaction(db.session) as session:
        export = session.get(Export, export_id)
        if export is None or export.status in (ExportStatus.DONE.value, ExportStatus.CANCELLED.value):
            return
        export.status = ExportStatus.RUNNING.value
        export.rows_done = 0
        stored = export.stored_name or f"{secrets.token_urlsafe(18)}.{export.file_format}"
        export.stored_name = stored
        kind, fmt, language, params, account_id, user_id = (export.kind, export.file_format, export.language,
                                                            dict(export.params), export.account_id, export.user_id)
    path = export_dir() / stored
    notes: dict[str, Any] = {}
    try:
        with force_locale(language):
            headers, rows = headers_and_rows(account_id, user_id, kind, params, language, notes)
            count = WRITERS[fmt](path, headers, rows, _progress(export_id))
    except Cancelled:
        path.unlink(missing_ok=True)
        return
    except Exception as exc:
        path.unlink(missing_ok=True)
        with write_transaction(db.session) as session:
            export = session.get(Export, export_id)
            export.status = ExportStatus.FAILED.value
            export.error = f"{type(exc).__name__}: {exc}"[:1000]
            export.finished_at = now()
        raise
    with write_transaction(db.session) as session:
        export = session.get(Export, export_id)
        if export.status == ExportStatus.CANCELLED.value:
            path.unlink(missing_ok=True)
            return
        export.status = ExportStatus.DONE.value
        # What the merchant should know about this file (a re-run replaces an earlier run's notes); a new
        # dict, so the JSON column is written.
        export.params = {**{k: v for k, v in export.params.items() if k != "notes"}, **({"notes": notes} if notes else {})}
        export.rows_done = count
        export.rows_total = count
        export.size_bytes = path.stat().st_size
        export.finished_at = now()
        export.expires_at = now() + LIFETIME
        _announce(export)


def _announce(export: Export) -> None:
    """X2: an in-app notification and an email with the download link. An API key's export (I2) tells nobody:
    the shop polls GET /api/kassa/exports/<id> and downloads it there."""
    if export.user_id is None:
        return
    user = db.session.get(User, export.user_id)
    account = db.session.get(Account, export.account_id)
    url = absolute_url("exports.download", export_id=export.id)
    with force_locale(user.language or account.language):
        text = _("Your export “%(name)s” is ready (%(rows)s rows).", name=export.name, rows=f"{export.rows_done:,}")
    notify_in_app(export.account_id, user.id, text, url)
    queue_email(kind="export_ready", to=[user.email], template="email/export_ready.html",
                language=user.language or account.language,
                context={"export": export, "account": account, "url": url, "brand_color": account.brand_color},
                account_id=account.id, related=("export", export.id))


def cancel_export(actor: Actor, export_id: int) -> Export:
    _require(actor)
    with write_transaction(db.session) as session:
        export = session.get(Export, export_id)
        if export is None or export.account_id != actor.account_id:
            raise NotFound(_("Export not found."))
        if export.status in (ExportStatus.QUEUED.value, ExportStatus.RUNNING.value):
            export.status = ExportStatus.CANCELLED.value
            export.finished_at = now()
        return export


def downloadable(account_id: int, export_id: int) -> tuple[Export, Path]:
    """The file, for members of the account only, and only while the link is valid (7 days)."""
    export = db.session.get(Export, export_id)
    if export is None or export.account_id != account_id:
        raise NotFound(_("Export not found."))
    if export.status != ExportStatus.DONE.value or not export.stored_name:
        raise NotFound(_("This export isn't ready."))
    if export.expires_at is not None and export.expires_at <= now():
        raise Gone(_("This download link has expired. Export again."))
    return export, export_dir() / export.stored_name
