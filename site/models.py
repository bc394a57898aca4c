"""All database tables. Money is integer minor units plus a currency code; times are aware UTC."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kassa.database import utcnow_column_default as _now
from kassa.extensions import db

# --------------------------------------------------------------------------------------------------
# Accounts, users, roles
# --------------------------------------------------------------------------------------------------


class Role(StrEnum):
    SUPER_ADMIN = "super_admin"
    PAYMENTS_MANAGER = "payments_manager"
    MEMBER = "member"

    @property
    def label(self) -> str:
        return str(ROLE_LABELS[self])


ROLE_LABELS = {
    Role.SUPER_ADMIN: _l("Super admin"),
    Role.PAYMENTS_MANAGER: _l("Payments manager"),
    Role.MEMBER: _l("Member"),
}


class Permission(StrEnum):
    """What a role may do. A1: payments, refunds, receipts, reports and subscriptions need MANAGE_PAYMENTS."""

    MANAGE_PAYMENTS = "manage_payments"
    MANAGE_LINKS = "manage_links"
    MANAGE_USERS = "manage_users"
    MANAGE_SETTINGS = "manage_settings"

    @property
    def label(self) -> str:
        return str(PERMISSION_LABELS[self])


PERMISSION_LABELS = {
    Permission.MANAGE_PAYMENTS: _l("Manage payments and subscriptions"),
    Permission.MANAGE_LINKS: _l("Manage payment links"),
    Permission.MANAGE_USERS: _l("Manage users"),
    Permission.MANAGE_SETTINGS: _l("Manage account settings"),
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.SUPER_ADMIN: frozenset(Permission),
    Role.PAYMENTS_MANAGER: frozenset({Permission.MANAGE_PAYMENTS, Permission.MANAGE_LINKS}),
    Role.MEMBER: frozenset(),
}

DEFAULT_NOTIFICATIONS: dict[str, bool] = {
    "payment_received": True,
    "dispute_opened": True,
    "dispute_won": True,
    "dispute_lost": True,
    "payout_sent": True,
    "subscription_reminders": False,
}


class Account(db.Model):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2), default="US")
    default_currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    language: Mapped[str] = mapped_column(String(5), default="en")
    address: Mapped[str] = mapped_column(Text, default="")
    support_email: Mapped[str] = mapped_column(String(254), default="")
    brand_color: Mapped[str] = mapped_column(String(7), default="#2f5bd3")
    # Logo bytes are re-encoded PNG kept under instance/uploads; the version busts caches on change.
    logo_path: Mapped[str | None] = mapped_column(String(255))
    logo_version: Mapped[int] = mapped_column(default=0)
    notifications: Mapped[dict[str, Any]] = mapped_column(default=lambda: dict(DEFAULT_NOTIFICATIONS))
    # Test clock: how far this account's test-mode time runs ahead of real time (T5).
    clock_offset_seconds: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=_now)

    users: Mapped[list[User]] = relationship(back_populates="account", order_by="User.id")

    def notification_enabled(self, key: str) -> bool:
        return bool((self.notifications or {}).get(key, DEFAULT_NOTIFICATIONS.get(key, False)))


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32), default=Role.MEMBER.value)
    language: Mapped[str | None] = mapped_column(String(5))
    view_test_data: Mapped[bool] = mapped_column(default=True)
    # Bumped on logout and password change: every session cookie carrying an older epoch stops working.
    session_epoch: Mapped[int] = mapped_column(default=1)
    is_active_user: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    last_login_at: Mapped[datetime | None]

    account: Mapped[Account] = relationship(back_populates="users")

    # Flask-Login protocol -------------------------------------------------------------------------
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.is_active_user

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        # An "alternative token" (Flask-Login docs): the epoch makes old cookies useless after logout.
        return f"{self.id}:{self.session_epoch}"

    # Roles ----------------------------------------------------------------------------------------
    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role_enum]


class Invitation(db.Model):
    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(32))
    # Only a hash of the emailed token is kept, so a database leak does not leak working invitations.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    account: Mapped[Account] = relationship()
    invited_by: Mapped[User | None] = relationship()


# --------------------------------------------------------------------------------------------------
# Audit, outbox, email log
# --------------------------------------------------------------------------------------------------


class AuditEvent(db.Model):
    """Who did what to which object, when; money-moving actions carry the amounts before and after (A2)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="")
    amount_before_minor: Mapped[int | None]
    amount_after_minor: Mapped[int | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=_now)

    actor: Mapped[User | None] = relationship()


class OutboxStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class OutboxMessage(db.Model):
    """A side effect (email, webhook, PDF, export) written in the same transaction as the change it follows."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=_now)
    # A claimed message is leased, not owned: if its worker dies, the lease runs out and another retries it.
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # Optional: the same logical side effect queued twice (a retried service call) is stored once.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    done_at: Mapped[datetime | None]


class EmailStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    STORED = "stored"  # no SMTP configured: kept in full in the email log instead of sent
    FAILED = "failed"


class EmailMessage(db.Model):
    """Every email the app sends, rendered at queue time in the recipient's language (the Email log)."""

    __tablename__ = "email_messages"
    __table_args__ = (Index("ix_email_messages_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(48))
    to_addrs: Mapped[list[str]] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(5), default="en")
    # Attachment recipes ({"renderer": "receipt", "payment_id": 5}); rendered by the worker when sending.
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), default=EmailStatus.QUEUED.value)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    related_type: Mapped[str | None] = mapped_column(String(32))
    related_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=_now)
    sent_at: Mapped[datetime | None]
