"""H3: one canonical form of an email address (NFKC, casefold, IDNA domain) for logins, sign-up,
invitations, password resets and the login limits."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from kassa.extensions import db
from kassa.models import Invitation, User
from kassa.services.accounts.emails import email_key, normalize_email
from tests.factories import PASSWORD, make_merchant
from tests.support.app import extract_link, log_in, run_outbox


@pytest.fixture
def app_config(smtp_app_config):
    return smtp_app_config


@pytest.mark.parametrize("variant", ["c@ｃ.example", "Ｃ@c.example", "c＠c.example", " C@C.EXAMPLE ", "c@ｃ．ｅｘａｍｐｌｅ"])
def test_h3_spellings_of_one_address_have_one_canonical_form(app, variant):
    """Full-width letters, the full-width @ and dot, case and spaces all fold to the stored form."""
    assert normalize_email(variant) == "c@c.example"
    assert email_key(variant) == "c@c.example"


def test_h3_idna_domain_and_casefold(app):
    assert normalize_email("STRASSE@Bücher.example") == "strasse@xn--bcher-kva.example"
    assert normalize_email("straße@bücher.example") == normalize_email("STRASSE@BÜCHER.EXAMPLE")


def test_h3_lockout_holds_for_full_width_spellings(app, client):
    """After the per-address lockout, the full-width spelling of the domain (or of the name) is still 429."""
    app.config["KASSA_LOGIN_ACCOUNT_LIMIT"] = "5 per hour"
    make_merchant(email="c@c.example")
    for i in range(5):
        client.post("/login", data={"email": "c@c.example", "password": "wrong password"},
                    environ_base={"REMOTE_ADDR": f"10.3.0.{i}"})
    for variant in ("c@ｃ.example", "Ｃ@c.example", "c@c.example"):
        blocked = client.post("/login", data={"email": variant, "password": PASSWORD},
                              environ_base={"REMOTE_ADDR": "10.4.0.1"})
        assert blocked.status_code == 429, variant


def test_h3_per_ip_lockout_holds_for_full_width_spellings(client):
    make_merchant(email="c@c.example")
    for _ in range(10):
        client.post("/login", data={"email": "c@c.example", "password": "wrong password"})
    assert client.post("/login", data={"email": "c@ｃ.example", "password": PASSWORD}).status_code == 429


def test_h3_signup_with_a_variant_of_an_existing_email_creates_no_second_user(client):
    """`Ｃ@ｃ.example` is `c@c.example`: sign-up makes no second login for it."""
    make_merchant(email="c@c.example")
    client.post("/signup", data={
        "company_name": "Copycat", "name": "X", "email": "Ｃ@ｃ.example", "password": "a long enough password",
        "country": "NL", "currency": "EUR", "timezone": "UTC", "language": "en",
    })
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


def test_h3_login_reset_and_invitation_by_any_spelling(client, mailbox):
    """A login by a full-width spelling works; a reset asked by one reaches the stored address; an
    invitation is stored in the canonical form."""
    owner = make_merchant(email="c@c.example")
    log_in(client, "Ｃ@ｃ.example", PASSWORD)
    client.post("/settings/users/invite", data={"email": "Ｎｅｗ@Team.example", "role": "member"})
    assert db.session.scalar(select(Invitation.email)) == "new@team.example"
    client.post("/logout")
    client.post("/forgot-password", data={"email": "C@ｃ.EXAMPLE"})
    run_outbox()
    link = extract_link(mailbox.text_of(mailbox.to(owner.email)[0]), "/reset-password/")
    assert client.get(link).status_code == 200


@pytest.mark.parametrize("database_url", ["none"], indirect=False)
def test_h3_h10_migration_normalises_stored_emails_and_redacts_stored_links(database_url, tmp_path, monkeypatch):
    """Migration 0011_auth: logins and invitations stored before H3 get their canonical address (a collision is left
    alone, not failed on); reset and invitation emails stored before H10 lose their working links."""
    import sqlalchemy as sa
    from flask_migrate import downgrade, upgrade

    from kassa import create_app

    monkeypatch.setenv("KASSA_INSTANCE_PATH", str(tmp_path / "instance"))
    url = f"sqlite:///{tmp_path / 'm.db'}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    directory = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "site" / "migrations")
    with app.app_context():
        upgrade(directory=directory, revision="0007_subscriptions_next_charge")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO accounts (id, name, country, default_currency, timezone, language,"
                                 " support_email, address, brand_color, logo_version, clock_offset_seconds,"
                                 " notifications, create_invoices, retry_days, refund_policy, created_at)"
                                 " VALUES (1, 'A', 'NL', 'EUR', 'UTC', 'en', '', '', '#000000', 0, 0, '{}', 0,"
                                 " '[1]', '', '2026-01-01 00:00:00.000000')"))
            for uid, email in ((1, "ｃ@bücher.example"), (2, "c@xn--bcher-kva.example"), (3, "Ｄ@d.example")):
                conn.execute(sa.text(
                    "INSERT INTO users (id, account_id, email, name, password_hash, role, is_active_user,"
                    " session_epoch, view_test_data, language, created_at) VALUES (:id, 1, :e, '', 'x',"
                    " 'super_admin', 1, 0, 0, 'en', '2026-01-01 00:00:00.000000')"), {"id": uid, "e": email})
            conn.execute(sa.text(
                "INSERT INTO email_messages (id, account_id, kind, to_addrs, subject, text_body, html_body,"
                " language, attachments, status, attempts, created_at) VALUES (1, 1, 'password_reset', '[]', 's',"
                " 'go to http://k/reset-password/eyJ1.abc-_x now', '<a href=\"http://k/invitations/Zm9v_-x\">',"
                " 'en', '[]', 'sent', 1, '2026-01-01 00:00:00.000000')"))
        upgrade(directory=directory)
        with engine.connect() as conn:
            emails = dict(conn.execute(sa.text("SELECT id, email FROM users")).all())
            bodies = conn.execute(sa.text("SELECT text_body, html_body FROM email_messages")).one()
        assert emails == {1: "ｃ@bücher.example", 2: "c@xn--bcher-kva.example", 3: "d@d.example"}
        assert bodies == ("go to http://k/reset-password/redacted now", '<a href="http://k/invitations/redacted">')
        downgrade(directory=directory, revision="0007_subscriptions_next_charge")
        engine.dispose()
