"""Outbox and worker: at-least-once delivery with back-off, never twice at once (issue 3)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import EmailMessage, EmailStatus, OutboxMessage, OutboxStatus
from kassa.services.platform import outbox
from kassa.services.platform.mail import queue_email
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in, page_text, run_outbox


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


def _queue(n: int, account_id: int | None = None) -> list[int]:
    with write_transaction(db.session):
        emails = [
            queue_email(kind="test", to=[f"r{i}@buyer.example"], template="email/password_reset.html", language="en",
                        context={"user": type("U", (), {"email": f"r{i}@buyer.example"})(), "reset_url": "http://x"},
                        account_id=account_id)
            for i in range(n)
        ]
        return [e.id for e in emails]


def test_outbox_message_is_written_with_the_change_and_lost_with_its_rollback(app):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), write_transaction(db.session):
        queue_email(kind="test", to=["a@b.example"], template="email/password_reset.html", language="en",
                    context={"user": type("U", (), {"email": "a@b.example"})(), "reset_url": "http://x"},
                    account_id=None)
        raise Boom
    assert db.session.scalar(select(db.func.count()).select_from(OutboxMessage)) == 0
    assert db.session.scalar(select(db.func.count()).select_from(EmailMessage)) == 0


def test_outbox_retries_after_smtp_failure_with_backoff(app, mailbox):
    [email_id] = _queue(1)
    mailbox.refuse_next = 1
    assert run_outbox() == 1
    email = db.session.get(EmailMessage, email_id)
    message = db.session.scalar(select(OutboxMessage))
    assert email.status == EmailStatus.QUEUED.value
    assert "451" in email.error
    assert message.status == OutboxStatus.PENDING.value
    assert message.next_attempt_at > now() + timedelta(seconds=20)
    assert mailbox.messages == []
    # Not due yet: nothing is attempted.
    assert run_outbox() == 0
    with time_machine.travel(now() + timedelta(seconds=31)):
        assert run_outbox() == 1
    db.session.expire_all()
    assert db.session.get(EmailMessage, email_id).status == EmailStatus.SENT.value
    assert len(mailbox.messages) == 1


def test_outbox_gives_up_after_max_attempts_and_email_log_shows_failure_with_retry(app, client, mailbox):
    owner = make_merchant()
    app.config["KASSA_OUTBOX_MAX_ATTEMPTS"] = 2
    [email_id] = _queue(1, owner.account_id)
    mailbox.refuse_next = 5
    mailbox.refuse_with = "550 5.1.1 Mailbox unavailable"
    run_outbox()
    with time_machine.travel(now() + timedelta(minutes=5)):
        run_outbox()
    db.session.expire_all()
    email = db.session.get(EmailMessage, email_id)
    assert email.status == EmailStatus.FAILED.value
    assert "550" in email.error
    log_in(client, owner.email, PASSWORD)
    text = page_text(client.get("/settings/emails"))
    assert "Failed" in text and "550" in text
    # Retry from the email log: queued again, and sent once the server accepts mail.
    mailbox.refuse_next = 0
    assert client.post(f"/settings/emails/{email_id}/retry").status_code == 303
    run_outbox()
    db.session.expire_all()
    assert db.session.get(EmailMessage, email_id).status == EmailStatus.SENT.value
    assert len(mailbox.messages) == 1


def test_without_smtp_emails_are_stored_and_readable_in_full(app, client):
    app.config["MAIL_SERVER"] = None
    owner = make_merchant()
    [email_id] = _queue(1, owner.account_id)
    run_outbox()
    assert db.session.get(EmailMessage, email_id).status == EmailStatus.STORED.value
    log_in(client, owner.email, PASSWORD)
    detail = client.get(f"/settings/emails/{email_id}")
    assert "Reset your Kassa password" in page_text(detail)
    body = client.get(f"/settings/emails/{email_id}/body")
    assert "Choose a new password" in body.get_data(as_text=True)
    assert "default-src 'none'" in body.headers["Content-Security-Policy"]


def test_delivered_email_is_not_sent_again_when_the_message_is_replayed(app, mailbox):
    [email_id] = _queue(1)
    run_outbox()
    with write_transaction(db.session):
        outbox.enqueue("email", {"email_id": email_id})
    run_outbox()
    assert len(mailbox.messages) == 1


def test_two_workers_never_deliver_a_message_twice(app, mailbox):
    ids = _queue(30)
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work():
        try:
            with app.app_context():
                barrier.wait()
                while outbox.run_pending(5):
                    pass
                db.session.remove()
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    recipients = [m["To"] for m in mailbox.messages]
    assert len(recipients) == len(ids) == len(set(recipients))
    db.session.expire_all()
    statuses = set(db.session.scalars(select(OutboxMessage.status)).all())
    assert statuses == {OutboxStatus.DONE.value}


def test_expired_lease_is_claimed_again(app, mailbox):
    """A worker that died mid-delivery leaves a leased message; after the lease it is retried."""
    _queue(1)
    claimed = outbox.claim_batch(10)
    assert len(claimed) == 1  # ... and this "worker" dies here.
    assert outbox.claim_batch(10) == []
    with time_machine.travel(now() + outbox.LEASE + timedelta(seconds=1)):
        assert run_outbox() == 1
    assert len(mailbox.messages) == 1
    # The dead worker's late finish changes nothing.
    assert outbox.run_claimed(*claimed[0]) is False
    assert len(mailbox.messages) == 1
