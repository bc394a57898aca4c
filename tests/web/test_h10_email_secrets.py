"""H10: password-reset and invitation links are never readable in the Email log or the database."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import EmailMessage, EmailStatus, Invitation, Role
from tests.factories import PASSWORD, make_merchant, make_user
from tests.support.app import extract_link, log_in, page_text, run_outbox


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


def _database_text() -> str:
    """Every value of every row of every table, as text: what someone reading the database would see."""
    chunks = []
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                chunks.append(" ".join(str(value) for value in row))
    return "\n".join(chunks)


def _token(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[1]


def _email_log_text(client, email_ids) -> str:
    pages = [client.get("/settings/emails")]
    for email_id in email_ids:
        pages += [client.get(f"/settings/emails/{email_id}"), client.get(f"/settings/emails/{email_id}/body")]
    return "\n".join(page.get_data(as_text=True) for page in pages)


def test_h10_reset_and_invitation_links_only_in_the_sent_email(client, mailbox):
    """A colleague's reset link and an invitee's link reach them through SMTP and work; the Email log (list,
    detail, body) and every database row hold only a stand-in, which opens nothing."""
    owner = make_merchant(company="Acme")
    colleague = make_user(owner.account_id, Role.SUPER_ADMIN, email="colleague@acme.example")
    log_in(client, owner.email, PASSWORD)
    assert client.post("/settings/users/invite", data={"email": "new@acme.example", "role": "member"}
                       ).status_code == 303
    client.post("/logout")
    assert client.post("/forgot-password", data={"email": colleague.email}).status_code == 200
    run_outbox()
    reset_link = extract_link(mailbox.text_of(mailbox.to(colleague.email)[0]), "/reset-password/")
    invite_link = extract_link(mailbox.text_of(mailbox.to("new@acme.example")[0]), "/invitations/")
    # The HTML part of the real email carries the same working links.
    html = next(part.get_payload(decode=True).decode() for part in mailbox.to(colleague.email)[0].walk()
                if part.get_content_type() == "text/html")
    assert _token(reset_link) in html

    # A (malicious) Super admin of the account reads the Email log.
    log_in(client, owner.email, PASSWORD)
    email_ids = db.session.scalars(select(EmailMessage.id).where(EmailMessage.account_id == owner.account_id)).all()
    assert len(email_ids) == 2
    log_text = _email_log_text(client, email_ids)
    stored = _database_text()
    for secret in (_token(reset_link), _token(invite_link)):
        assert secret not in log_text
        assert secret not in stored
    assert "hidden here" in page_text(client.get(f"/settings/emails/{email_ids[0]}"))
    # What the log does show leads nowhere.
    shown = set(re.findall(r"/(?:reset-password|invitations)/[^\s\"'<>&]+", log_text))
    assert shown, "the log still shows where the links go"
    client.post("/logout")
    for path in shown:
        assert client.get(path).status_code in (400, 404)

    # The recipients' own links work.
    done = client.post(reset_link, data={"password": "colleague pass 12", "password_confirm": "colleague pass 12"})
    assert done.status_code == 303
    log_in(client, colleague.email, "colleague pass 12")
    client.post("/logout")
    joined = client.post(invite_link, data={"name": "New Person", "password": "a good password 9"})
    assert joined.status_code == 303


def test_h10_retry_from_the_log_sends_a_working_link(app, client, mailbox):
    """A reset email that failed to send is retried from the Email log; the copy sent then has a working link
    although the stored copy never had one. A withdrawn invitation's email is not sent at all."""
    app.config["KASSA_OUTBOX_MAX_ATTEMPTS"] = 1
    owner = make_merchant()
    mailbox.refuse_next = 1
    mailbox.refuse_with = "550 5.1.1 Mailbox unavailable"
    client.post("/forgot-password", data={"email": owner.email})
    run_outbox()
    email = db.session.scalar(select(EmailMessage).where(EmailMessage.kind == "password_reset"))
    assert email.status == EmailStatus.FAILED.value
    log_in(client, owner.email, PASSWORD)
    assert client.post(f"/settings/emails/{email.id}/retry").status_code == 303
    client.post("/logout")
    run_outbox()
    link = extract_link(mailbox.text_of(mailbox.to(owner.email)[0]), "/reset-password/")
    assert _token(link) not in _database_text()
    assert client.get(link).status_code == 200

    # An invitation withdrawn before its email went out: the retry does not send a link to it.
    log_in(client, owner.email, PASSWORD)
    mailbox.refuse_next = 1
    client.post("/settings/users/invite", data={"email": "late@acme.example", "role": "member"})
    run_outbox()
    invitation = db.session.scalar(select(Invitation))
    client.post(f"/settings/invitations/{invitation.id}/revoke")
    invite_email = db.session.scalar(select(EmailMessage).where(EmailMessage.kind == "invitation"))
    client.post(f"/settings/emails/{invite_email.id}/retry")
    run_outbox()
    db.session.expire_all()
    assert mailbox.to("late@acme.example") == []
    assert db.session.get(EmailMessage, invite_email.id).status == EmailStatus.FAILED.value
    assert "withdrawn" in db.session.get(EmailMessage, invite_email.id).error


def test_h10_invitation_from_before_the_fix_gets_a_working_link_on_resend(client, mailbox):
    """An invitation made before H10 (random token, only in its now redacted stored email) is re-sent from the
    log with a link that works; the old token's hash no longer opens it."""
    from kassa.database import write_transaction

    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    mailbox.refuse_next = 1
    client.post("/settings/users/invite", data={"email": "old@acme.example", "role": "member"})
    run_outbox()
    with write_transaction(db.session) as session:
        session.scalar(select(Invitation)).token_hash = "0" * 64  # as if made with a random token
    email = db.session.scalar(select(EmailMessage).where(EmailMessage.kind == "invitation"))
    assert client.post(f"/settings/emails/{email.id}/retry").status_code == 303
    client.post("/logout")
    run_outbox()
    link = extract_link(mailbox.text_of(mailbox.to("old@acme.example")[0]), "/invitations/")
    assert client.get(link).status_code == 200
