"""auth hardening: canonical stored emails (H3); no working links in stored reset/invitation emails (H10);
sign-ups wait for their address to be confirmed (H12)

Revision ID: 0011_auth
Revises: 0010_guard
Create Date: 2026-12-06 09:30:00

The normalisation is copied here (not imported) so the migration keeps doing what it did when it was written.
"""
import logging
import re
import unicodedata

import sqlalchemy as sa
from alembic import op
from email_validator import EmailNotValidError, validate_email

import kassa.database

# revision identifiers, used by Alembic.
revision = '0011_auth'
down_revision = '0010_guard'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

REDACTED = "redacted"
SECRET_LINK = re.compile(r"(/(?:reset-password|invitations)/)[A-Za-z0-9._~%-]+")


def _canonical(raw):
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", (raw or "").strip()).casefold())
    try:
        result = validate_email(text, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError:
        return None
    return f"{result.local_part}@{result.ascii_domain}".lower()


def _renormalise(conn, table, unique):
    rows = conn.execute(sa.text(f"SELECT id, email FROM {table} ORDER BY id")).all()
    taken = {email for _id, email in rows}
    for row_id, email in rows:
        canonical = _canonical(email)
        if canonical is None or canonical == email:
            continue
        if unique and canonical in taken:
            # Two logins that are one address once normalised: the first keeps the address, this one is left
            # as stored (an operator must merge or rename it) and logged, rather than failing the upgrade.
            log.warning("%s %s: %r collides with another login once normalised; left as is", table, row_id, email)
            continue
        conn.execute(sa.text(f"UPDATE {table} SET email = :email WHERE id = :id"), {"email": canonical, "id": row_id})
        taken.add(canonical)


def upgrade():
    op.create_table(
        'signup_requests',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('company_name', sa.String(length=200), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('password_hash', sa.String(length=255), nullable=False),
        sa.Column('country', sa.String(length=2), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('timezone', sa.String(length=64), nullable=False),
        sa.Column('language', sa.String(length=5), nullable=False),
        sa.Column('created_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column('used_at', kassa.database.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_signup_requests')),
    )
    with op.batch_alter_table('signup_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signup_requests_email'), ['email'], unique=False)
    conn = op.get_bind()
    _renormalise(conn, "users", unique=True)
    _renormalise(conn, "invitations", unique=False)
    rows = conn.execute(sa.text(
        "SELECT id, text_body, html_body FROM email_messages WHERE kind IN ('password_reset', 'invitation')"
    )).all()
    for row_id, text_body, html_body in rows:
        conn.execute(
            sa.text("UPDATE email_messages SET text_body = :t, html_body = :h WHERE id = :id"),
            {"t": SECRET_LINK.sub(rf"\g<1>{REDACTED}", text_body or ""),
             "h": SECRET_LINK.sub(rf"\g<1>{REDACTED}", html_body or ""), "id": row_id},
        )


def downgrade():
    # Canonical addresses and redacted copies are valid under the old code too: only the table goes.
    with op.batch_alter_table('signup_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signup_requests_email'))
    op.drop_table('signup_requests')
