"""Invitations: a Super admin invites by email with a role; the invitee joins that account (A1)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from kassa.clock import now
from kassa.extensions import db
from kassa.models import Invitation, Role, User
from tests.factories import PASSWORD, make_merchant, make_user
from tests.support.app import extract_link, log_in, page_text, run_outbox


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


def _invite(client, owner, email="new.person@team.example", role="payments_manager"):
    log_in(client, owner.email, PASSWORD)
    response = client.post("/settings/users/invite", data={"email": email, "role": role})
    client.post("/logout")
    return response


def test_invitation_accept_joins_the_account_with_the_role(client, mailbox):
    owner = make_merchant(company="Acme")
    assert _invite(client, owner).status_code == 303
    run_outbox()
    [message] = mailbox.to("new.person@team.example")
    assert "Acme" in message["Subject"]
    link = extract_link(mailbox.text_of(message), "/invitations/")
    assert "Payments manager" in page_text(client.get(link))
    response = client.post(link, data={"name": "New Person", "password": "a good password 9"})
    assert response.status_code == 303
    user = db.session.scalar(select(User).where(User.email == "new.person@team.example"))
    assert (user.account_id, user.role) == (owner.account_id, Role.PAYMENTS_MANAGER.value)
    assert client.get("/").status_code == 200
    # The link works once.
    client.post("/logout")
    assert client.get(link).status_code == 409


def test_invitation_expires_after_seven_days(client, mailbox):
    owner = make_merchant()
    _invite(client, owner)
    run_outbox()
    link = extract_link(mailbox.text_of(mailbox.messages[0]), "/invitations/")
    with time_machine.travel(now() + timedelta(days=7, minutes=1)):
        response = client.post(link, data={"name": "Late", "password": "a good password 9"})
    assert response.status_code == 422
    assert "expired" in page_text(response)
    assert db.session.scalar(select(User).where(User.email == "new.person@team.example")) is None


def test_invitation_input_errors(client):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    bad_email = client.post("/settings/users/invite", data={"email": "nope", "role": "member"})
    assert bad_email.status_code == 422
    bad_role = client.post("/settings/users/invite", data={"email": "x@team.example", "role": "owner"})
    assert bad_role.status_code == 422
    existing = make_user(owner.account_id)
    taken = client.post("/settings/users/invite", data={"email": existing.email, "role": "member"})
    assert taken.status_code == 422
    assert "already has a Kassa login" in page_text(taken)
    assert db.session.scalar(select(db.func.count()).select_from(Invitation)) == 0


def test_only_super_admin_can_invite(client):
    owner = make_merchant()
    manager = make_user(owner.account_id, Role.PAYMENTS_MANAGER)
    log_in(client, manager.email, PASSWORD)
    assert client.post("/settings/users/invite", data={"email": "x@team.example", "role": "super_admin"}).status_code == 403


def test_revoked_invitation_no_longer_works(client, mailbox):
    owner = make_merchant()
    _invite(client, owner)
    run_outbox()
    link = extract_link(mailbox.text_of(mailbox.messages[0]), "/invitations/")
    invitation = db.session.scalar(select(Invitation))
    log_in(client, owner.email, PASSWORD)
    client.post(f"/settings/invitations/{invitation.id}/revoke")
    client.post("/logout")
    assert client.get(link).status_code == 404


def test_invite_form_errors_come_back_as_an_htmx_fragment(client):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    response = client.post("/settings/users/invite", data={"email": "bad", "role": "member"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith("<form") and "<html" not in html
    assert "valid email" in page_text(response)
    assert "HX-Request" in response.headers["Vary"]


def test_remove_dialog_fragment_for_htmx_and_full_page_without_js(client):
    owner = make_merchant()
    member = make_user(owner.account_id)
    log_in(client, owner.email, PASSWORD)
    fragment = client.get(f"/settings/users/{member.id}/remove", headers={"HX-Request": "true"})
    assert fragment.get_data(as_text=True).lstrip().startswith("<dialog")
    page = client.get(f"/settings/users/{member.id}/remove")
    assert "<html" in page.get_data(as_text=True) and "Remove user" in page_text(page)
