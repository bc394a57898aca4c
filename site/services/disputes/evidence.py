"""Dispute evidence files (D4): PDF, PNG or JPEG by their content, within the networks' size and page limits."""

from __future__ import annotations

import io
import secrets
from pathlib import Path

from flask_babel import gettext as _
from sqlalchemy import func, select

from kassa.actor import Actor
from kassa.database import write_transaction
from kassa.errors import NotFound, ValidationFailed
from kassa.extensions import db
from kassa.forms import safe_filename
from kassa.models import Account, DisputeFile, Payment
from kassa.services.crm.crm import add_timeline, payment_subjects
from kassa.services.disputes.disputes import (
    ensure_answerable,
    evidence_dir,
    owned,
    require_dispute_rights,
    save_draft,
)
from kassa.timeline_kinds import TimelineKind

MAX_TOTAL_BYTES = int(4.5 * 1024 * 1024)  # Stripe's limit for all of a dispute's files together
MAX_PAGES = 50  # card networks reject longer evidence packs
SIGNATURES = {b"%PDF-": "application/pdf", b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def sniff(data: bytes) -> str | None:
    """The file's real type from its first bytes; the name and the browser's claim are not trusted."""
    for signature, content_type in SIGNATURES.items():
        if data.startswith(signature):
            return content_type
    return None


def count_pages(data: bytes, content_type: str) -> int:
    if content_type != "application/pdf":
        return 1
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        return len(PdfReader(io.BytesIO(data)).pages)
    # PyPdfError covers LimitReachedError (H9: a deeply nested PDF was a 500); RecursionError, TypeError and
    # the rest are how pypdf fails on other malformed files. Any of them means the same to the merchant.
    except (PyPdfError, RecursionError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError):
        raise ValidationFailed(_("This PDF can't be read. Save it again as a PDF and upload that."),
                               field="file") from None


def budget(dispute_id: int) -> tuple[int, int]:
    """(bytes used, pages used) by a dispute's files so far."""
    used, pages = db.session.execute(
        select(func.coalesce(func.sum(DisputeFile.size_bytes), 0), func.coalesce(func.sum(DisputeFile.pages), 0))
        .where(DisputeFile.dispute_id == dispute_id)
    ).one()
    return int(used), int(pages)


def add_file(actor: Actor, dispute_id: int, filename: str, data: bytes) -> DisputeFile:
    file = save_evidence_step(actor, dispute_id, None, filename, data, require_file=True)
    assert file is not None  # require_file: no file is an error
    return file


def save_evidence_step(actor: Actor, dispute_id: int, values: dict[str, str] | None, filename: str, data: bytes,
                       *, require_file: bool = False) -> DisputeFile | None:
    """D4 step 3 saved as one (B5): the text the merchant typed (`values`, None to leave it as it is) and the
    file they chose, uploaded now rather than dropped. A refused file raises ValidationFailed at the file's
    field only after the text is kept, so a wrong file never costs the merchant what they wrote."""
    require_dispute_rights(actor)
    refused: ValidationFailed | None = None
    checked: tuple[str, int] | None = None
    if data or require_file:
        try:
            checked = _check_content(filename, data)
        except ValidationFailed as exc:
            refused = exc
    file = None
    with write_transaction(db.session) as session:
        if values is not None:
            save_draft(actor, dispute_id, "evidence", values)  # joins this transaction
        dispute = owned(session, actor, dispute_id)
        ensure_answerable(dispute, session.get(Account, dispute.account_id))
        if checked is not None:
            try:
                file = _store(session, actor, dispute, filename, data, *checked)
            except ValidationFailed as exc:  # raised before anything of the file was written
                refused = exc
    if refused is not None:
        raise refused
    return file


def _check_content(filename: str, data: bytes) -> tuple[str, int]:
    """(content type, pages) of an evidence file, or ValidationFailed at the file's field."""
    if not data:
        raise ValidationFailed(_("Choose a file to upload."), field="file")
    content_type = sniff(data)
    if content_type is None:
        raise ValidationFailed(_("Upload a PDF, PNG or JPEG file. “%(name)s” is none of these, whatever its "
                                 "name says.", name=(filename or "")[:80]), field="file")
    return content_type, count_pages(data, content_type)


def _store(session, actor: Actor, dispute, filename: str, data: bytes, content_type: str,
           pages: int) -> DisputeFile:
    """Keep a checked file within the dispute's budget (the dispute's row is locked by the caller)."""
    used, used_pages = budget(dispute.id)
    if used + len(data) > MAX_TOTAL_BYTES:
        left = max(MAX_TOTAL_BYTES - used, 0)
        raise ValidationFailed(_("All files together may be at most 4.5 MB; %(left)s is left.",
                                 left=format_size(left)), field="file")
    if used_pages + pages > MAX_PAGES:
        raise ValidationFailed(_("All files together may have at most %(max)d pages; %(left)d are left.",
                                 max=MAX_PAGES, left=MAX_PAGES - used_pages), field="file")
    stored = f"{secrets.token_urlsafe(18)}.bin"
    (evidence_dir() / stored).write_bytes(data)
    file = DisputeFile(account_id=dispute.account_id, dispute_id=dispute.id,
                       filename=safe_filename(Path(filename or "evidence").name, "evidence")[:200],
                       content_type=content_type, size_bytes=len(data), pages=pages, stored_name=stored)
    session.add(file)
    session.flush()
    add_timeline(dispute.account_id, TimelineKind.DISPUTE_FILE_ADDED,
                 subjects=payment_subjects(session.get(Payment, dispute.payment_id)),
                 payment_id=dispute.payment_id, data={"file": file.filename}, actor_id=actor.user_id)
    return file


def remove_file(actor: Actor, dispute_id: int, file_id: int, values: dict[str, str] | None = None) -> None:
    """Remove one file; B5: with step 3's text when the page sends it along, kept in the same save."""
    require_dispute_rights(actor)
    with write_transaction(db.session) as session:
        if values is not None:
            save_draft(actor, dispute_id, "evidence", values)  # joins this transaction
        dispute = owned(session, actor, dispute_id)
        ensure_answerable(dispute, session.get(Account, dispute.account_id))
        file = session.get(DisputeFile, file_id)
        if file is None or file.dispute_id != dispute.id:
            raise NotFound(_("File not found."))
        stored = file.stored_name
        session.delete(file)
    (evidence_dir() / stored).unlink(missing_ok=True)


def file_path(file: DisputeFile) -> Path:
    return evidence_dir() / file.stored_name


def format_size(n: int) -> str:
    from flask_babel import format_decimal

    return f"{format_decimal(n / 1024 / 1024, '#,##0.0')} MB"
