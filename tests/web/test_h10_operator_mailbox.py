"""H10 without SMTP: a secret link is not readable in the Email log, yet whoever runs the server can still
finish a sign-up or a password reset: the working copy goes to a file only the server's user can read."""

from __future__ import annotations

import stat
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import EmailMessage, EmailStatus
from kassa.services.platform.mail import operator_mailbox
from tests.factories import make_merchant
from tests.support.app import extract_link, run_outbox


def _operator_files() -> list[Path]:
    folder = operator_mailbox()
    return sorted(folder.glob("*.txt")) if folder.exists() else []


def test_h10_without_smtp_a_reset_link_reaches_the_operator_file_not_the_log(client):
    assert not current_app.config.get("MAIL_SERVER")  # the default: no SMTP server configured
    owner = make_merchant(company="Acme")
    before = set(_operator_files())
    assert client.post("/forgot-password", data={"email": owner.email}).status_code == 200
    run_outbox()

    email = db.session.scalar(select(EmailMessage).where(EmailMessage.kind == "password_reset"))
    assert email.status == EmailStatus.STORED.value
    new = [path for path in _operator_files() if path not in before]
    assert [path.name for path in new] == [f"{email.id}-password_reset.txt"]
    assert stat.S_IMODE(new[0].stat().st_mode) == 0o600
    link = extract_link(new[0].read_text(encoding="utf-8"), "/reset-password/")
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert token not in email.text_body and token not in email.html_body  # the log's copy stays redacted
    # The operator's link works: it opens the reset form.
    assert client.get(link).status_code == 200


def test_h10_emails_without_secrets_are_not_copied_to_the_operator_file(client):
    owner = make_merchant(company="Acme")
    before = set(_operator_files())
    # Sign-up for an address that already has a login: "you already have an account", no secret link.
    client.post("/signup", data={"company_name": "Acme 2", "name": "Ann", "email": owner.email,
                                 "password": "a long enough password", "country": "NL", "currency": "EUR",
                                 "timezone": "Europe/Amsterdam", "language": "en"})
    run_outbox()
    assert db.session.scalar(select(EmailMessage.kind).where(EmailMessage.kind == "signup_existing"))
    assert set(_operator_files()) == before
