"""Roles and permissions (A1): what a Super admin, a Payments manager and a Member may open."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import AuditEvent, Role, User
from tests.factories import PASSWORD, make_merchant, make_payment, make_user
from tests.support.app import log_in, page_text

# (path, roles allowed). Later capabilities add their pages here.
ROLE_MATRIX = [
    ("/", {Role.SUPER_ADMIN, Role.PAYMENTS_MANAGER, Role.MEMBER}),
    ("/settings/profile", {Role.SUPER_ADMIN, Role.PAYMENTS_MANAGER, Role.MEMBER}),
    ("/settings/account", {Role.SUPER_ADMIN}),
    ("/settings/branding", {Role.SUPER_ADMIN}),
    ("/settings/notifications", {Role.SUPER_ADMIN}),
    ("/settings/users", {Role.SUPER_ADMIN}),
    ("/settings/emails", {Role.SUPER_ADMIN}),
    ("/settings/pipelines", {Role.SUPER_ADMIN}),
    # Payment links and the product library: Super admin and Payments manager (issue 4's decision).
    ("/links/", {Role.SUPER_ADMIN, Role.PAYMENTS_MANAGER}),
    ("/links/new", {Role.SUPER_ADMIN, Role.PAYMENTS_MANAGER}),
    ("/products/", {Role.SUPER_ADMIN, Role.PAYMENTS_MANAGER}),
    ("/products/new", {Role.SUPER_ADMIN, Role.PAYMENTS_MANAGER}),
    # Payments (A1: Super admin or "Manage payments and subscriptions"; issue 6). {payment} is filled in.
    ("/payments/", {Role.SUPER_ADMIN, Role.PAYMENTS_MANAGER}),
    ("/payments/setup", {Role.SUPER_ADMIN, Role.PAYMENTS_MANAGER}),
    ("/payments/filters", {Role.SUPER_ADMIN, Role.PAYMENTS_MANAGER}),
    ("/payments/{payment}", {Role.SUPER_ADMIN, Role.PAYMENTS_MANAGER}),
    ("/payments/{payment}/refund", {Role.SUPER_ADMIN, Role.PAYMENTS_MANAGER}),
    ("/payments/{payment}/send-receipt", {Role.SUPER_ADMIN, Role.PAYMENTS_MANAGER}),
    ("/payments/{payment}/associations/contact", {Role.SUPER_ADMIN, Role.PAYMENTS_MANAGER}),
]


@pytest.mark.parametrize("role", list(Role))
def test_a1_role_access_matrix(client, role):
    owner = make_merchant()
    payment = make_payment(owner.account_id)  # with none, the payments index sends everyone to setup (P7)
    user = owner if role == Role.SUPER_ADMIN else make_user(owner.account_id, role)
    log_in(client, user.email, PASSWORD)
    for path, allowed in ROLE_MATRIX:
        path = path.format(payment=payment.id)
        response = client.get(path)
        if role in allowed:
            assert response.status_code == 200, path
        else:
            assert response.status_code == 403, path
            assert "permission" in page_text(response), path


def test_a1_forbidden_page_names_the_missing_permission(client):
    owner = make_merchant()
    member = make_user(owner.account_id, Role.MEMBER)
    log_in(client, member.email, PASSWORD)
    text = page_text(client.get("/settings/users"))
    assert "Manage users" in text


def test_last_super_admin_cannot_be_demoted_or_removed(client):
    owner = make_merchant()
    log_in(client, owner.email, PASSWORD)
    client.post(f"/settings/users/{owner.id}/role", data={"role": "member"})
    assert db.session.get(User, owner.id).role == Role.SUPER_ADMIN.value
    client.post(f"/settings/users/{owner.id}/remove")
    assert db.session.get(User, owner.id).is_active_user is True


def test_role_change_and_removal_with_a_second_admin(client):
    owner = make_merchant()
    manager = make_user(owner.account_id, Role.PAYMENTS_MANAGER)
    log_in(client, owner.email, PASSWORD)
    client.post(f"/settings/users/{manager.id}/role", data={"role": "super_admin"})
    assert db.session.get(User, manager.id).role == Role.SUPER_ADMIN.value
    # Now the owner may step down: another Super admin exists.
    client.post(f"/settings/users/{owner.id}/role", data={"role": "payments_manager"})
    db.session.expire_all()
    assert db.session.get(User, owner.id).role == Role.PAYMENTS_MANAGER.value
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.action == "user.role_changed")).all()
    assert len(actions) == 2


def test_unknown_role_is_refused(client):
    owner = make_merchant()
    member = make_user(owner.account_id, Role.MEMBER)
    log_in(client, owner.email, PASSWORD)
    client.post(f"/settings/users/{member.id}/role", data={"role": "god"})
    assert db.session.get(User, member.id).role == Role.MEMBER.value


def test_removed_user_is_logged_out_and_cannot_log_in(client, app):
    owner = make_merchant()
    member = make_user(owner.account_id, Role.MEMBER)
    member_client = app.test_client()
    log_in(member_client, member.email, PASSWORD)
    log_in(client, owner.email, PASSWORD)
    assert client.post(f"/settings/users/{member.id}/remove").status_code == 303
    assert member_client.get("/").status_code == 302
    assert member_client.post("/login", data={"email": member.email, "password": PASSWORD}).status_code == 401
