"""Emails: rendered in the recipient's language when queued, sent (or stored) by the worker."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flask import current_app, render_template
from flask_babel import force_locale
from flask_mail import Message
from jinja2_fragments.flask import render_block

from kassa.clock import now
from kassa.database import write_transaction
from kassa.errors import NotFound
from kassa.extensions import db, mail
from kassa.models import Account, EmailMessage, EmailStatus
from kassa.services.platform import outbox

log = logging.getLogger(__name__)

Attachment = tuple[str, str, bytes]  # (filename, content type, bytes)
AttachmentRenderer = Callable[[dict[str, Any]], Attachment]
_RENDERERS: dict[str, AttachmentRenderer] = {}

# H10: emails that carry a secret link (password reset, invitation) are rendered and stored with this
# stand-in for the token, so the Email log and the database never hold a working link. The worker asks the
# kind's registered function for the real link when it sends, so the recipient's copy works, and a retry
# from the log needs nothing from the stored copy.
REDACTED_TOKEN = "redacted"  # noqa: S105 - the stand-in, not a secret
SecretLinks = Callable[["EmailMessage"], dict[str, str]]
_SECRET_LINKS: dict[str, SecretLinks] = {}


class LinkNoLongerValid(Exception):
    """The secret link can't be made any more (invitation revoked, user removed): don't send the email."""


def register_secret_links(kind: str) -> Callable[[SecretLinks], SecretLinks]:
    """`fn(email)` returns {stand-in URL: real URL} for an email of this kind, at send time."""

    def decorate(fn: SecretLinks) -> SecretLinks:
        _SECRET_LINKS[kind] = fn
        return fn

    return decorate


def has_secret_links(email: EmailMessage) -> bool:
    return email.kind in _SECRET_LINKS


def recipient_copy(email: EmailMessage) -> tuple[str, str, str]:
    """(subject, text, html) as the recipient gets them: stand-ins replaced by the real links (the worker's
    copy; tests read it too, as a recipient would)."""
    subject, text, html = email.subject, email.text_body, email.html_body
    fill = _SECRET_LINKS.get(email.kind)
    if fill is None:
        return subject, text, html
    for stand_in, real in fill(email).items():
        text, html = text.replace(stand_in, real), html.replace(stand_in, real)
    return subject, text, html


def register_attachment(name: str) -> Callable[[AttachmentRenderer], AttachmentRenderer]:
    """Later issues register PDF renderers (receipt, invoice, mandate) that the worker calls at send time."""

    def decorate(fn: AttachmentRenderer) -> AttachmentRenderer:
        _RENDERERS[name] = fn
        return fn

    return decorate


def render_attachment(spec: dict[str, Any]) -> Attachment:
    return _RENDERERS[spec["renderer"]](spec)


def render_email(template: str, language: str, context: dict[str, Any],
                 timezone: str | None = None) -> tuple[str, str, str]:
    """(subject, text, html) of one template in `language` (dates in `timezone`): two blocks and the page."""
    from flask import g
    from flask_babel import refresh

    previous = g.get("display_timezone")
    g.display_timezone = timezone or previous
    refresh()
    try:
        with force_locale(language):
            subject = " ".join(render_block(template, "subject", **context).split())
            text = render_block(template, "text", **context).strip() + "\n"
            html = render_template(template, **context)
    finally:
        g.display_timezone = previous
        refresh()
    return subject, text, html


def queue_email(
    *,
    kind: str,
    to: Iterable[str],
    template: str,
    language: str,
    context: dict[str, Any],
    account_id: int | None,
    attachments: Iterable[dict[str, Any]] = (),
    related: tuple[str, int] | None = None,
    dedupe_key: str | None = None,
) -> EmailMessage:
    """Add an email and its outbox message to the caller's transaction."""
    recipients = [addr.strip() for addr in to if addr and addr.strip()]
    if not recipients:
        raise ValueError("an email needs at least one recipient")
    timezone = None
    if account_id is not None:
        account = db.session.get(Account, account_id)
        timezone = account.timezone if account else None
    subject, text, html = render_email(template, language, context, timezone)
    email = EmailMessage(
        account_id=account_id,
        kind=kind,
        to_addrs=recipients,
        subject=subject,
        text_body=text,
        html_body=html,
        language=language,
        attachments=list(attachments),
        related_type=related[0] if related else None,
        related_id=related[1] if related else None,
    )
    db.session.add(email)
    db.session.flush()
    outbox.enqueue("email", {"email_id": email.id}, account_id=account_id, dedupe_key=dedupe_key)
    return email


def smtp_configured() -> bool:
    return bool(current_app.config.get("MAIL_SERVER"))


def deliver_email(payload: dict[str, Any]) -> None:
    """Send one queued email. Idempotent: an email already sent or stored is not sent again."""
    email = db.session.get(EmailMessage, payload["email_id"])
    if email is None or email.status in (EmailStatus.SENT.value, EmailStatus.STORED.value):
        return
    email_id = email.id
    try:
        files = [render_attachment(spec) for spec in email.attachments]
        try:
            subject, text, html = recipient_copy(email)
        except LinkNoLongerValid as exc:
            # Nothing to retry: the invitation or login the link was for is gone.
            _record_attempt(email_id, EmailStatus.FAILED, str(exc))
            return
        if smtp_configured():
            message = Message(
                subject=subject,
                recipients=list(email.to_addrs),
                body=text,
                html=html,
                sender=current_app.config["KASSA_MAIL_FROM"],
            )
            for filename, content_type, data in files:
                message.attach(filename, content_type, data)
            db.session.rollback()  # hold no transaction while talking to the SMTP server
            mail.send(message)
            status = EmailStatus.SENT
        else:
            status = EmailStatus.STORED
            if has_secret_links(email):
                _keep_for_operator(email, subject, text)
    except Exception as exc:
        _record_attempt(email_id, EmailStatus.QUEUED, f"{type(exc).__name__}: {exc}")
        raise
    _record_attempt(email_id, status, None)


def operator_mailbox() -> Path:
    return Path(current_app.instance_path) / "mail"


def _keep_for_operator(email: EmailMessage, subject: str, text: str) -> None:
    """Without SMTP, an email with a secret link (sign-up confirmation, reset, invitation) would be lost: the
    Email log shows it redacted (H10). Its working copy goes to a file under the instance folder instead,
    which only whoever runs the server can read (mode 0600), and the log says where."""
    folder = operator_mailbox()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{email.id}-{email.kind}.txt"
    body = f"To: {', '.join(email.to_addrs)}\nSubject: {subject}\n\n{text}\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(body)
    log.warning("No SMTP server is configured: the %s email to %s, with its link, is in %s", email.kind,
                ", ".join(email.to_addrs), path)


def _record_attempt(email_id: int, status: EmailStatus, error: str | None) -> None:
    with write_transaction(db.session) as session:
        email = session.get(EmailMessage, email_id)
        email.attempts += 1
        email.status = status.value
        email.error = error
        if status in (EmailStatus.SENT, EmailStatus.STORED):
            email.sent_at = now()


def mark_email_failed(payload: dict[str, Any], error: str) -> None:
    email = db.session.get(EmailMessage, payload["email_id"])
    if email is not None:
        email.status = EmailStatus.FAILED.value
        email.error = error


def retry_email(account_id: int, email_id: int) -> EmailMessage:
    """Queue a failed email again (Email log → Retry)."""
    with write_transaction(db.session) as session:
        email = session.get(EmailMessage, email_id)
        if email is None or email.account_id != account_id:
            raise NotFound("Email not found.")
        if email.status in (EmailStatus.SENT.value, EmailStatus.STORED.value):
            return email
        email.status = EmailStatus.QUEUED.value
        email.error = None
        outbox.enqueue("email", {"email_id": email.id}, account_id=account_id)
        return email
