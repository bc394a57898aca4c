"""All database tables. Money is integer minor units plus a currency code; times are aware UTC.

Tables are grouped by domain, each under a banner below; within a domain, enums and labels come first:

- Accounts and people: live and test mode (used by every table), accounts, users, roles, sign-up requests, invitations (A1–A4)
- Platform: audit history, the outbox, the email log, gap-free counters, processed events, in-app notifications
- CRM: pipelines and stages, contacts, companies, deals, the timeline every record keeps
- Catalogue: products, payment links and their line items (L1–L19)
- Checkout: checkout sessions and payment attempts, the card-testing counters (C1–C16, H4)
- Payments: payments, what they sold, bank-debit mandates, refunds, invoices (P, R, F, E4)
- Disputes: disputes and inquiries, their evidence files (D1–D6)
- Subscriptions: recurring billing (S1–S8)
- Balance and payouts: the ledger and payouts (O1–O3)
- Back office: saved views of the indexes, exports (P3, X1)
- Processor connections: a merchant's own Stripe account, its secret key encrypted (K5), the Stripe events it sent (K7)
- Sandbox processor: the built-in test processor's storage (T1)
- API: the account's API keys (I1), the responses kept for idempotent requests (I4)
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kassa.database import search_key
from kassa.database import utcnow_column_default as _now
from kassa.event_types import AccountEventType
from kassa.extensions import db
from kassa.logs import current_request_id

# --------------------------------------------------------------------------------------------------
# Accounts and people: live and test mode (used by every table), accounts, users, roles, sign-up requests, invitations (A1–A4)
# --------------------------------------------------------------------------------------------------


class Mode(StrEnum):
    TEST = "test"
    LIVE = "live"


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
    # Shown with dispute evidence (D4) and on the checkout's fine print.
    refund_policy: Mapped[str] = mapped_column(Text, default="")
    # R5: create an invoice for every payment from a link or a subscription.
    create_invoices: Mapped[bool] = mapped_column(default=False)
    # V2: email an open invoice's customer this many days before / after its due date (0: no reminder)
    invoice_reminder_days_before: Mapped[int] = mapped_column(default=0, server_default="0")
    invoice_reminder_days_after: Mapped[int] = mapped_column(default=0, server_default="0")
    # Failed subscription charges are retried after these many days, then the subscription is cancelled.
    retry_days: Mapped[list[int]] = mapped_column(default=lambda: [1, 3, 5])
    brand_color: Mapped[str] = mapped_column(String(7), default="#2f5bd3")
    # Logo bytes are re-encoded PNG kept under instance/uploads; the version busts caches on change.
    logo_path: Mapped[str | None] = mapped_column(String(255))
    logo_version: Mapped[int] = mapped_column(default=0)
    notifications: Mapped[dict[str, Any]] = mapped_column(default=lambda: dict(DEFAULT_NOTIFICATIONS))
    # K12: what moves test-mode money: Kassa's built-in sandbox, or Stripe test mode on the account's test-mode
    # StripeConnection (used only while one is connected; without it the sandbox again).
    test_processor: Mapped[str] = mapped_column(String(16), default="sandbox", server_default="sandbox")
    # Q2: which links offer the "Add promo code" field: "" (no active code), "*" (a code for every link) or the
    # ids of the links the active codes are limited to (",12,15,"). Kept here by the promo codes service, so
    # the cached checkout page (keyed by this row) knows without a query.
    promo_links: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Q6: the merchant's own VAT number (printed on receipts), checked against its EU country's format
    vat_number: Mapped[str] = mapped_column(String(20), default="", server_default="")
    # Q7: the merchant's terms of service (an https address), for links that ask buyers to agree to them.
    terms_url: Mapped[str] = mapped_column(String(2000), default="", server_default="")
    # Q11: part of what every buyer-portal link signs; a new value revokes all portal links handed out before.
    portal_key: Mapped[str] = mapped_column(String(32), default="", server_default="")
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


class SignupRequest(db.Model):
    """H12: a sign-up waits here until its address is confirmed, so the sign-up form answers the same whether
    or not the address already has a login. The emailed link's token is derived (never stored)."""

    __tablename__ = "signup_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    company_name: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    country: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


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
# Platform: audit history, the outbox, the email log, gap-free counters, processed events, in-app notifications
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
    # H6: who holds the lease ("host:pid"), so a worker known dead (its process is gone) loses its leases at
    # once instead of after LEASE; a worker on another host can't be checked, so its lease simply runs out.
    locked_by: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    # Optional: the same logical side effect queued twice (a retried service call) is stored once.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    done_at: Mapped[datetime | None]
    # G4: the request (or the job, and so the request) that queued it, for the worker's log lines. A column
    # default, so the set-based inserts (a billing batch's receipts) get it as the ORM's do.
    request_id: Mapped[str | None] = mapped_column(String(128), default=current_request_id)


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


class Counter(db.Model):
    """Gap-free sequences per account (receipt numbers, later invoice numbers), taken under a row lock."""

    __tablename__ = "counters"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


class PeriodicClaim(db.Model):
    """G2: the latest period of a periodic job (the tick) that a worker took. However many workers run, the
    one whose update moves `period_start` forward runs that period; the others find it taken."""

    __tablename__ = "periodic_claims"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    period_start: Mapped[datetime]
    claimed_by: Mapped[str] = mapped_column(String(200))
    claimed_at: Mapped[datetime]


class ProcessedEvent(db.Model):
    """Processor events already applied; the unique id makes replays and concurrent ticks no-ops."""

    __tablename__ = "processed_events"
    __table_args__ = (UniqueConstraint("processor", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    processor: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(120))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    type: Mapped[str] = mapped_column(String(48))
    applied_at: Mapped[datetime] = mapped_column(default=_now)


class Notification(db.Model):
    """An in-app notification (the bell in the top bar): exports ready, payouts, …"""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user", "user_id", "read_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(String(300))
    url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    read_at: Mapped[datetime | None]


# --------------------------------------------------------------------------------------------------
# CRM: pipelines and stages, contacts, companies, deals, the timeline every record keeps
# --------------------------------------------------------------------------------------------------


class Pipeline(db.Model):
    """A deal pipeline (minimal CRM, L9)."""

    __tablename__ = "pipelines"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=_now)

    stages: Mapped[list[Stage]] = relationship(back_populates="pipeline", order_by="Stage.position")


class Stage(db.Model):
    __tablename__ = "stages"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    probability: Mapped[int] = mapped_column(default=0)  # win probability, 0–100 %
    position: Mapped[int] = mapped_column(default=0)

    pipeline: Mapped[Pipeline] = relationship(back_populates="stages")


class Contact(db.Model):
    """A buyer, found or created by email (R2). Test payments make test contacts (T1)."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("account_id", "mode", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    mode: Mapped[str] = mapped_column(String(8), default=Mode.LIVE.value)
    email: Mapped[str] = mapped_column(String(254))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    language: Mapped[str] = mapped_column(String(5), default="en")
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"))
    created_at: Mapped[datetime] = mapped_column(default=_now)

    @property
    def display_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part) or self.email


class Company(db.Model):
    __tablename__ = "companies"
    __table_args__ = (Index("ix_companies_account_name", "account_id", "mode", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    mode: Mapped[str] = mapped_column(String(8), default=Mode.LIVE.value)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=_now)


class Deal(db.Model):
    """A deal per successful link payment, in the link's pipeline and stage (R3)."""

    __tablename__ = "deals"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    mode: Mapped[str] = mapped_column(String(8), default=Mode.LIVE.value)
    name: Mapped[str] = mapped_column(String(300))
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"))
    created_at: Mapped[datetime] = mapped_column(default=_now)

    pipeline: Mapped[Pipeline] = relationship()
    stage: Mapped[Stage] = relationship()


class TimelineEntry(db.Model):
    """Payment activity on the timelines of contacts, companies and deals (R6)."""

    __tablename__ = "timeline_entries"
    __table_args__ = (Index("ix_timeline_subject", "account_id", "subject_type", "subject_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    subject_type: Mapped[str] = mapped_column(String(16))  # payment | contact | company | deal | subscription
    subject_id: Mapped[int]
    kind: Mapped[str] = mapped_column(String(48))  # payment.submitted, payment.succeeded, ...
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=_now)


class AccountEvent(db.Model):
    """The account event feed (W6, I6): one row per money object's transition that a workflow or a webhook can
    react to (``kassa.event_types.AccountEventType``), written in the transition's own transaction, once (a
    repeated move is a no-op and writes nothing). Consumers read "the events after id N" per account."""

    __tablename__ = "account_events"
    __table_args__ = (Index("ix_account_events_account_id", "account_id", "id"),
                      Index("ix_account_events_object", "object_type", "object_id", "type"))

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    type: Mapped[str] = mapped_column(String(40))  # AccountEventType: payment.succeeded, dispute.opened, …
    object_type: Mapped[str] = mapped_column(String(20))  # payment | subscription | dispute | payout
    object_id: Mapped[int]
    mode: Mapped[str] = mapped_column(String(8), default=Mode.LIVE.value)  # the object's (Mode)
    occurred_at: Mapped[datetime] = mapped_column(default=_now)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


# --------------------------------------------------------------------------------------------------
# Catalogue: products, payment links and their line items (L1–L19)
# --------------------------------------------------------------------------------------------------


class BillingFrequency(StrEnum):
    ONE_TIME = "one_time"
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    SEMIANNUAL = "semiannual"
    YEARLY = "yearly"
    BIENNIAL = "biennial"

    @property
    def is_recurring(self) -> bool:
        return self is not BillingFrequency.ONE_TIME

    @property
    def interval(self) -> tuple[str, int]:
        """(unit, count) of one billing period: weeks or months."""
        return FREQUENCY_INTERVALS[self]


FREQUENCY_INTERVALS = {
    BillingFrequency.ONE_TIME: ("months", 0),
    BillingFrequency.WEEKLY: ("weeks", 1),
    BillingFrequency.BIWEEKLY: ("weeks", 2),
    BillingFrequency.MONTHLY: ("months", 1),
    BillingFrequency.QUARTERLY: ("months", 3),
    BillingFrequency.SEMIANNUAL: ("months", 6),
    BillingFrequency.YEARLY: ("months", 12),
    BillingFrequency.BIENNIAL: ("months", 24),
}


class TermType(StrEnum):
    FIXED = "fixed"  # a fixed number of payments (L6)
    AUTO_RENEW = "auto_renew"  # until cancelled


class FieldMode(StrEnum):
    OFF = "off"
    OPTIONAL = "optional"
    REQUIRED = "required"


class LinkStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"

    @property
    def label(self) -> str:
        return str(_l("Active") if self is LinkStatus.ACTIVE else _l("Inactive"))

    @property
    def tone(self) -> str:
        return "success" if self is LinkStatus.ACTIVE else "neutral"


class Confirmation(StrEnum):
    DEFAULT = "default"
    REDIRECT = "redirect"


CONTACT_FIELDS = ("company", "first_name", "last_name", "phone")


class Product(db.Model):
    """The product library. Links copy a product's values; editing the link never changes the product (L4)."""

    __tablename__ = "products"
    __table_args__ = (Index("ix_products_account_name", "account_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    unit_amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    frequency: Mapped[str] = mapped_column(String(16), default=BillingFrequency.ONE_TIME.value)
    term_type: Mapped[str | None] = mapped_column(String(16))
    term_count: Mapped[int | None]
    sku: Mapped[str | None] = mapped_column(String(64))
    archived_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now, onupdate=_now)


class PromoCode(db.Model):
    """Q2: a code a buyer types at checkout for a percentage (basis points) or an amount off what is due today.
    Per account (products and links aren't split by mode either); the code is unique per account in upper case."""

    __tablename__ = "promo_codes"
    __table_args__ = (UniqueConstraint("account_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    code: Mapped[str] = mapped_column(String(32))  # upper case: A-Z 0-9 - _
    kind: Mapped[str] = mapped_column(String(8))  # "percent" (value in basis points) | "amount" (minor units)
    value: Mapped[int]
    currency: Mapped[str | None] = mapped_column(String(3))  # an amount's currency
    expires_at: Mapped[datetime | None]
    max_redemptions: Mapped[int | None]
    # Reserved before the charge with one conditional UPDATE, given back when the charge doesn't go through.
    redeemed: Mapped[int] = mapped_column(default=0)
    first_time_only: Mapped[bool] = mapped_column(default=False)
    link_ids: Mapped[list[int] | None] = mapped_column(JSON)  # None: every link
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)


class TaxRate(db.Model):
    """Q6: one of the account's tax rates: the buyer's country picks it on links that collect tax."""

    __tablename__ = "tax_rates"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))  # "BTW hoog"
    percentage_bp: Mapped[int]  # basis points: 2100 = 21 %
    inclusive: Mapped[bool] = mapped_column(default=False)  # the price already includes it
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)  # ISO codes; empty: every country
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)


class PaymentLink(db.Model):
    """A shareable link to a checkout. The slug never changes, whatever is edited (L19)."""

    __tablename__ = "payment_links"
    __table_args__ = (Index("ix_payment_links_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))  # internal only, never shown to buyers (L8)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=LinkStatus.ACTIVE.value)
    pipeline_id: Mapped[int | None] = mapped_column(ForeignKey("pipelines.id"))
    stage_id: Mapped[int | None] = mapped_column(ForeignKey("stages.id"))
    # Checkout form (L10): each contact field is off, optional or required; email is always asked.
    field_company: Mapped[str] = mapped_column(String(16), default=FieldMode.OFF.value)
    field_first_name: Mapped[str] = mapped_column(String(16), default=FieldMode.OFF.value)
    field_last_name: Mapped[str] = mapped_column(String(16), default=FieldMode.OFF.value)
    field_phone: Mapped[str] = mapped_column(String(16), default=FieldMode.OFF.value)
    allow_card: Mapped[bool] = mapped_column(default=True)
    allow_ach: Mapped[bool] = mapped_column(default=False)
    collect_billing_address: Mapped[bool] = mapped_column(default=True)
    collect_shipping_address: Mapped[bool] = mapped_column(default=False)
    # Q6: the buyer's country picks one of the account's tax rates
    collect_tax: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    confirmation: Mapped[str] = mapped_column(String(16), default=Confirmation.DEFAULT.value)
    redirect_url: Mapped[str | None] = mapped_column(String(2000))
    # Q8: up to 5 questions the checkout asks, in order: [{"label", "type" (text | number | dropdown), "options"
    # (a dropdown's), "required", "receipt" (printed on the receipt)}]. NULL: none. Frozen into each snapshot.
    custom_fields: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Q9: a free trial of this many days on the link's recurring items (None: none), as Stripe's
    # subscription_data.trial_period_days.
    trial_days: Mapped[int | None]
    # Bumped on every edit; checkout sessions record which version they were started from.
    version: Mapped[int] = mapped_column(default=1)
    # Set by the card-testing guard: card payments on this link pause until then (issue 5).
    card_paused_until: Mapped[datetime | None]
    # H7: part of what the link's test URL signs; a new value revokes every test URL handed out before.
    test_link_key: Mapped[str | None] = mapped_column(String(32))
    # Q5: stop after this many completed payments (None: no limit) or at this instant (None: never).
    # usage_reserved counts the seats taken (completed payments and payments with the processor right now),
    # usage_count the completed ones; limit_reached_at is when the last seat's payment completed.
    usage_limit: Mapped[int | None]
    usage_count: Mapped[int] = mapped_column(default=0, server_default="0")
    usage_reserved: Mapped[int] = mapped_column(default=0, server_default="0")
    ends_at: Mapped[datetime | None]
    limit_reached_at: Mapped[datetime | None]
    # Q7: buyers must tick "I agree to the terms of service" (this link's terms_url, else the account's).
    require_terms: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    terms_url: Mapped[str | None] = mapped_column(String(2000))
    # Q11: buyers may cancel this link's subscriptions from their portal.
    buyer_can_cancel: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    # I3: Stripe-shaped metadata set through the API (up to 50 keys); None when none was set. Never on the checkout.
    metadata_json: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now, onupdate=_now)
    deleted_at: Mapped[datetime | None]

    items: Mapped[list[LinkItem]] = relationship(
        back_populates="link", order_by="LinkItem.position", cascade="all, delete-orphan"
    )
    account: Mapped[Account] = relationship()
    pipeline: Mapped[Pipeline | None] = relationship()
    stage: Mapped[Stage | None] = relationship()

    def field_mode(self, name: str) -> FieldMode:
        return FieldMode(getattr(self, f"field_{name}"))

    @property
    def has_recurring(self) -> bool:
        return any(BillingFrequency(item.frequency).is_recurring for item in self.items)

    @property
    def is_active(self) -> bool:
        return self.status == LinkStatus.ACTIVE.value and self.deleted_at is None

    @property
    def limit_reached(self) -> bool:
        """Q5: every seat under the usage limit is taken (completed, or with the processor right now)."""
        return self.usage_limit is not None and self.usage_reserved >= self.usage_limit

    def has_ended(self, at: datetime) -> bool:
        """Q5: the link's end date has passed."""
        return self.ends_at is not None and self.ends_at <= at

    def accepting_payments(self, at: datetime) -> bool:
        return self.is_active and not self.limit_reached and not self.has_ended(at)


class LinkItem(db.Model):
    """A line item on a link: a copy of a library product's values, or a custom item (L2)."""

    __tablename__ = "link_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("payment_links.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    unit_amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    quantity: Mapped[int] = mapped_column(default=1)
    frequency: Mapped[str] = mapped_column(String(16), default=BillingFrequency.ONE_TIME.value)
    term_type: Mapped[str | None] = mapped_column(String(16))
    term_count: Mapped[int | None]
    # Q1: a discount on this line: "" (none), "percent" (value in basis points) or "amount" (minor units)
    discount_type: Mapped[str] = mapped_column(String(8), default="", server_default="")
    discount_value: Mapped[int] = mapped_column(default=0, server_default="0")
    # Q3: the buyer may change the quantity, within [quantity_min, quantity_max] (quantity is the default)
    quantity_adjustable: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    quantity_min: Mapped[int] = mapped_column(default=1, server_default="1")
    quantity_max: Mapped[int] = mapped_column(default=1, server_default="1")
    # Q4: pay what you want: the buyer types the unit price (unit_amount_minor is the suggested one)
    custom_amount: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    amount_min_minor: Mapped[int | None]
    amount_max_minor: Mapped[int | None]

    link: Mapped[PaymentLink] = relationship(back_populates="items")


# --------------------------------------------------------------------------------------------------
# Checkout: checkout sessions and payment attempts, the card-testing counters (C1–C16, H4)
# --------------------------------------------------------------------------------------------------


class CheckoutStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    EXPIRED = "expired"


class CheckoutSession(db.Model):
    """One buyer visit to a link (L17): its own token, a frozen copy of the link, one payment at most."""

    __tablename__ = "checkout_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    # V2: a checkout of an invoice has no link (None) but its invoice: the snapshot is the invoice's amount due
    link_id: Mapped[int | None] = mapped_column(ForeignKey("payment_links.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", use_alter=True), index=True)
    # V4: a checkout of an accepted quote (no link either): the snapshot is the quote's lines, recurring ones too
    quote_id: Mapped[int | None] = mapped_column(ForeignKey("quotes.id", use_alter=True), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    mode: Mapped[str] = mapped_column(String(8), default=Mode.LIVE.value)
    link_version: Mapped[int] = mapped_column(default=1)
    snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=CheckoutStatus.OPEN.value)
    language: Mapped[str | None] = mapped_column(String(5))
    # Each definitive decline moves to the next attempt number, so a retry with another card gets a
    # fresh idempotency key while a double submit of the same attempt reuses the old one.
    attempt_seq: Mapped[int] = mapped_column(default=1)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id", use_alter=True))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    expires_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    # I2: the API key that opened this session for a shop (POST /api/v1/checkout/sessions); None for a visit
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    # I3: Stripe-shaped metadata the shop set (up to 50 keys); None when it set none
    metadata_json: Mapped[dict[str, str] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_checkout_sessions_open_created", "status", "created_at"),)


class AttemptStatus(StrEnum):
    PENDING = "pending"  # written before the processor is called
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    UNKNOWN = "unknown"  # the processor's answer was lost: the reconciler asks it later
    FAILED = "failed"


class PaymentAttempt(db.Model):
    """A call to the processor, written (with its idempotency key) before the call and finished after."""

    __tablename__ = "payment_attempts"
    __table_args__ = (UniqueConstraint("account_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    checkout_session_id: Mapped[int | None] = mapped_column(ForeignKey("checkout_sessions.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default=AttemptStatus.PENDING.value)
    method: Mapped[str] = mapped_column(String(8))
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    # What the buyer entered besides the card/bank numbers, kept so a reconciled attempt can still
    # create the payment, contact and receipt (never a card number or CVC).
    buyer: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    processor_ref: Mapped[str | None] = mapped_column(String(120))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id", use_alter=True))
    ip: Mapped[str | None] = mapped_column(String(64))
    card_fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("payment_links.id"))
    # The card-testing guard's slots this attempt holds (H4), given back if it succeeds; None once settled.
    risk_hold: Mapped[list[Any] | None] = mapped_column(JSON)
    # Q5: this attempt holds one of its link's usage-limit seats (given back if it is declined or fails).
    holds_seat: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    created_at: Mapped[datetime] = mapped_column(default=_now)
    finished_at: Mapped[datetime | None]


class RiskCounter(db.Model):
    """One card-testing guard counter (H4): failed card entries per scope and key in a rolling window.

    A slot is taken with one atomic UPDATE before the processor is called and given back when the payment
    succeeds, so parallel requests can never all slip past the limit. `generation` changes whenever the window
    starts over, so a slot taken in an old window is never given back to the new one.
    """

    __tablename__ = "risk_counters"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime]
    used: Mapped[int] = mapped_column(default=0)
    generation: Mapped[int] = mapped_column(default=0)


# --------------------------------------------------------------------------------------------------
# Payments: payments, what they sold, bank-debit mandates, refunds, invoices (P, R, F, E4)
# --------------------------------------------------------------------------------------------------


class PaymentStatus(StrEnum):
    """The payment's own life; refunds and disputes are their own rows and are shown on top of it."""

    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # B2: a checkout attempt waiting for the buyer (3-D Secure, a bank's page): nothing charged yet. It becomes
    # succeeded / processing / failed when the buyer finishes; one they abandon stays incomplete (as Stripe lists
    # an abandoned PaymentIntent), with why in failure_code. Never money: no receipt number, ledger or totals.
    INCOMPLETE = "incomplete"
    # V3: a manual payment a Super admin deleted (recorded by mistake): kept for the audit trail and the receipt
    # series, its ledger entries reversed, its invoice owing the amount again. Never money.
    DELETED = "deleted"


# B2: payments that collected nothing and never will (a declined or unfinished checkout attempt): never counted as
# a payment made (home, links, CRM, buyer portal), as `status == succeeded` already keeps them out of money sums.
UNPAID_STATUSES = (PaymentStatus.FAILED.value, PaymentStatus.INCOMPLETE.value, PaymentStatus.DELETED.value)

# V3: a payment recorded by hand on an invoice (paid outside Kassa): Payment.method, and how it was paid.
MANUAL_METHOD = "manual"


class ManualMethod(StrEnum):
    BANK_TRANSFER = "bank_transfer"
    CASH = "cash"
    CHEQUE = "cheque"
    OTHER = "other"

    @property
    def label(self) -> str:
        return str(MANUAL_METHOD_LABELS[self])


MANUAL_METHOD_LABELS = {
    ManualMethod.BANK_TRANSFER: _l("Bank transfer"),
    ManualMethod.CASH: _l("Cash"),
    ManualMethod.CHEQUE: _l("Cheque"),
    ManualMethod.OTHER: _l("Other"),
}


class PaymentSource(StrEnum):
    """V6: where a payment came from, as the index shows and filters it (`Payment.source`, with a manual payment
    of an invoice shown as its own source). QUOTE is listed ahead of quotes (V4) so filters and views work
    when they land."""

    LINK = "payment_link"
    INVOICE = "invoice"
    QUOTE = "quote"
    SUBSCRIPTION = "subscription"
    MANUAL = "manual"

    @property
    def label(self) -> str:
        return str(PAYMENT_SOURCE_LABELS[self])


PAYMENT_SOURCE_LABELS = {
    PaymentSource.LINK: _l("Payment link"),
    PaymentSource.INVOICE: _l("Invoice"),
    PaymentSource.QUOTE: _l("Quote"),
    PaymentSource.SUBSCRIPTION: _l("Subscription"),
    PaymentSource.MANUAL: _l("Manual payment"),
}


class RiskLevel(StrEnum):
    """B2: the risk signal of a declined checkout attempt, from the card-testing guard's counters (risk.py)."""

    NORMAL = "normal"
    ELEVATED = "elevated"
    HIGH = "high"

    @property
    def label(self) -> str:
        return str({RiskLevel.NORMAL: _l("Normal"), RiskLevel.ELEVATED: _l("Elevated"),
                    RiskLevel.HIGH: _l("High")}[self])

    @property
    def tone(self) -> str:
        return {RiskLevel.NORMAL: "neutral", RiskLevel.ELEVATED: "warning", RiskLevel.HIGH: "danger"}[self]


class DisplayStatus(StrEnum):
    """The Status column of the payments index (P1, D2): the payment's status, or refunds/disputes on top."""

    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INCOMPLETE = "incomplete"  # B2: waiting for (or abandoned by) the buyer's 3-D Secure / bank step
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    REFUND_PROCESSING = "refund_processing"
    # D2: a disputed payment shows its dispute's state instead.
    DISPUTED_ACTION_REQUIRED = "disputed_action_required"
    DISPUTED_AWAITING_DECISION = "disputed_awaiting_decision"
    DISPUTED_WON = "disputed_won"
    DISPUTED_LOST = "disputed_lost"
    DELETED = "deleted"  # V3: a manual payment deleted by a Super admin

    @property
    def label(self) -> str:
        return str(DISPLAY_STATUS_LABELS[self])

    @property
    def is_dispute(self) -> bool:
        return self.value.startswith("disputed_")

    @property
    def tone(self) -> str:
        return DISPLAY_STATUS_TONES[self]


DISPLAY_STATUS_LABELS = {
    DisplayStatus.PROCESSING: _l("Processing"),
    DisplayStatus.SUCCEEDED: _l("Succeeded"),
    DisplayStatus.FAILED: _l("Failed"),
    DisplayStatus.INCOMPLETE: _l("Incomplete"),
    DisplayStatus.PARTIALLY_REFUNDED: _l("Partially refunded"),
    DisplayStatus.REFUNDED: _l("Refunded"),
    DisplayStatus.REFUND_PROCESSING: _l("Refund processing"),
    DisplayStatus.DISPUTED_ACTION_REQUIRED: _l("Disputed (action required)"),
    DisplayStatus.DISPUTED_AWAITING_DECISION: _l("Disputed (awaiting decision)"),
    DisplayStatus.DISPUTED_WON: _l("Disputed (won)"),
    DisplayStatus.DISPUTED_LOST: _l("Disputed (lost)"),
    DisplayStatus.DELETED: _l("Deleted"),
}


DISPLAY_STATUS_TONES = {
    DisplayStatus.PROCESSING: "info",
    DisplayStatus.SUCCEEDED: "success",
    DisplayStatus.FAILED: "danger",
    DisplayStatus.INCOMPLETE: "neutral",
    DisplayStatus.PARTIALLY_REFUNDED: "neutral",
    DisplayStatus.REFUNDED: "neutral",
    DisplayStatus.REFUND_PROCESSING: "warning",
    DisplayStatus.DISPUTED_ACTION_REQUIRED: "danger",
    DisplayStatus.DISPUTED_AWAITING_DECISION: "warning",
    DisplayStatus.DISPUTED_WON: "success",
    DisplayStatus.DISPUTED_LOST: "neutral",
    DisplayStatus.DELETED: "neutral",
}


class Payment(db.Model):
    """A payment record (R1): an immutable copy of what was sold, and how it was paid."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("account_id", "receipt_number"),
        # The payments index: newest first (keyset on created_at, id), by status, by amount (issue 6).
        Index("ix_payments_account_created", "account_id", "created_at", "id"),
        Index("ix_payments_account_status_created", "account_id", "display_status", "created_at", "id"),
        Index("ix_payments_account_amount", "account_id", "amount_minor", "id"),
        Index("ix_payments_account_disputed", "account_id", "dispute_created_at", "id"),
        # W6: the workflows tick reads the payments that succeeded or failed since its last look.
        Index("ix_payments_account_succeeded", "account_id", "succeeded_at"),
        Index("ix_payments_account_failed", "account_id", "failed_at"),
        # B3 search: each way of finding a payment is an index that also returns matches newest first, with
        # the mode last so the "View test data" check is read from the index too.
        # (By email and by name: after the class, as their expressions need its columns.)
        Index("ix_payments_search_card_last4", "account_id", "card_last4", "created_at", "id", "mode"),
        Index("ix_payments_search_bank_last4", "account_id", "bank_last4", "created_at", "id", "mode"),
        # (The currency too: an amount means different minor units in JPY, USD or KWD.)
        Index("ix_payments_search_amount", "account_id", "amount_minor", "created_at", "id", "mode", "currency"),
        Index("ix_payments_search_link", "account_id", "link_id", "created_at", "id", "mode"),
        # S1: one charge per subscription period and attempt — two ticks at once can't both bill a period.
        UniqueConstraint("subscription_id", "subscription_period", "billing_attempt"),
        # F6's backstop: whatever the code does, refunds can never add up to more than was paid.
        CheckConstraint(
            "refund_reserved_minor >= 0 AND refund_reserved_minor <= amount_minor"
            " AND refunded_minor >= 0 AND refunded_minor <= refund_reserved_minor",
            name="refunds_within_amount",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    mode: Mapped[str] = mapped_column(String(8), default=Mode.LIVE.value)
    status: Mapped[str] = mapped_column(String(16), default=PaymentStatus.PROCESSING.value)
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    # Q1: before and after the line discounts (amount_minor is what was charged). Payments from before Q1
    # (and renewals without a discount) have NULL: read them through `gross` / `net`, which fall back to amount.
    gross_minor: Mapped[int | None]
    discount_minor: Mapped[int] = mapped_column(default=0, server_default="0")
    net_minor: Mapped[int | None]
    # Q2: the promo code the buyer applied and what it took off today's charge (net = gross − discount − promo)
    promo_code: Mapped[str | None] = mapped_column(String(32), index=True)
    promo_discount_minor: Mapped[int] = mapped_column(default=0, server_default="0")
    # Q6: the tax in amount_minor (inclusive and exclusive), the buyer's country and VAT number, whether VAT was
    # reverse-charged, and what pricing needs again: {"rate": …, "breakdown": [{name, percentage_bp, inclusive,
    # taxable_minor, tax_minor}], "exclusive_minor": …} (NULL: no tax collected)
    tax_minor: Mapped[int] = mapped_column(default=0, server_default="0")
    buyer_country: Mapped[str] = mapped_column(String(2), default="", server_default="")
    buyer_vat_id: Mapped[str] = mapped_column(String(20), default="", server_default="")
    reverse_charge: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    tax_details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    method: Mapped[str] = mapped_column(String(8))  # card | ach | sepa (SEPA Direct Debit, Q10) | manual (V3)
    # V3: a manual payment's way (ManualMethod) and the merchant's reference (a transfer's, a cheque number)
    manual_method: Mapped[str | None] = mapped_column(String(16))
    manual_reference: Mapped[str | None] = mapped_column(String(120))
    card_brand: Mapped[str | None] = mapped_column(String(32))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    card_exp_month: Mapped[int | None]
    card_exp_year: Mapped[int | None]
    card_funding: Mapped[str | None] = mapped_column(String(16))
    bank_last4: Mapped[str | None] = mapped_column(String(4))
    processor: Mapped[str] = mapped_column(String(32), default="sandbox")
    processor_ref: Mapped[str | None] = mapped_column(String(120), index=True)
    payment_method_token: Mapped[str | None] = mapped_column(String(120))
    fee_minor: Mapped[int] = mapped_column(default=0)
    settlement_currency: Mapped[str] = mapped_column(String(3))
    exchange_rate: Mapped[str] = mapped_column(String(32), default="1")  # a Decimal kept exactly, as text
    fee_settlement_minor: Mapped[int] = mapped_column(default=0)
    net_settlement_minor: Mapped[int] = mapped_column(default=0)
    source: Mapped[str] = mapped_column(String(32), default="payment_link")
    link_id: Mapped[int | None] = mapped_column(ForeignKey("payment_links.id"), index=True)
    checkout_session_id: Mapped[int | None] = mapped_column(ForeignKey("checkout_sessions.id"))
    # V2: the merchant's invoice this payment pays (source "invoice"); the R5 per-payment invoice is
    # Invoice.payment_id instead
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", use_alter=True), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"), index=True)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id", use_alter=True), index=True)
    buyer_email: Mapped[str] = mapped_column(String(254))
    buyer_name: Mapped[str] = mapped_column(String(200), default="")
    buyer_phone: Mapped[str] = mapped_column(String(40), default="")
    buyer_company: Mapped[str] = mapped_column(String(200), default="")
    billing_address: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Q8: the buyer's answers to the link's custom fields, in the link's order: [{"label", "value", "receipt"}]
    # (NULL: none asked or none answered). Each answer is also a PaymentFieldValue row, for the index filter.
    custom_fields: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    language: Mapped[str] = mapped_column(String(5), default="en")
    ip: Mapped[str | None] = mapped_column(String(64))
    receipt_number: Mapped[int | None]
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    # B2: a declined checkout attempt is a failed payment with the card-testing guard's view of it: how risky
    # (RiskLevel) and which of its counters said so (a risk.py scope). NULL on every other payment.
    risk_level: Mapped[str | None] = mapped_column(String(16))
    risk_scope: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=_now)  # the payment date
    succeeded_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    # What the index shows and filters on: the payment's own status, or the refund / dispute state on top
    # of it. Recomputed by services from the refund and dispute rows whenever one of them changes.
    display_status: Mapped[str] = mapped_column(String(32), default=PaymentStatus.PROCESSING.value)
    # Refunds not failed (pending + succeeded), reserved atomically before the processor is called (F6),
    # and the part of them that has settled.
    refund_reserved_minor: Mapped[int] = mapped_column(default=0)
    refunded_minor: Mapped[int] = mapped_column(default=0)
    # Association labels (P6): a free label on each of the payment's four associations.
    contact_label: Mapped[str | None] = mapped_column(String(60))
    company_label: Mapped[str | None] = mapped_column(String(60))
    deal_label: Mapped[str | None] = mapped_column(String(60))
    subscription_label: Mapped[str | None] = mapped_column(String(60))
    # For subscription charges: which period (1 = the first renewal) and which try at it.
    subscription_period: Mapped[int | None]
    billing_attempt: Mapped[int | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(120))
    # The latest dispute's properties, kept on the payment so they can be columns, filters and a tab (D3, D7).
    dispute_created_at: Mapped[datetime | None]
    dispute_amount_minor: Mapped[int | None]
    dispute_reason: Mapped[str | None] = mapped_column(String(40))
    dispute_due_by: Mapped[datetime | None]
    dispute_closed_at: Mapped[datetime | None]
    # Q7: when the buyer ticked "I agree to the terms of service" (UTC) and the terms address they were shown.
    terms_accepted_at: Mapped[datetime | None]
    terms_url: Mapped[str | None] = mapped_column(String(2000))

    items: Mapped[list[PaymentItem]] = relationship(
        back_populates="payment", order_by="PaymentItem.position", cascade="all, delete-orphan"
    )
    link: Mapped[PaymentLink | None] = relationship()
    contact: Mapped[Contact | None] = relationship(foreign_keys=[contact_id])
    company: Mapped[Company | None] = relationship(foreign_keys=[company_id])
    deal: Mapped[Deal | None] = relationship(foreign_keys=[deal_id])

    @property
    def gross_amount_minor(self) -> int:
        """Q1: the total before discounts (payments from before Q1: the amount)."""
        return self.amount_minor if self.gross_minor is None else self.gross_minor

    @property
    def net_amount_minor(self) -> int:
        """Q1: the total after discounts (payments from before Q1: the amount)."""
        return self.amount_minor if self.net_minor is None else self.net_minor

    @property
    def is_test(self) -> bool:
        return self.mode == Mode.TEST.value


# On PostgreSQL they also carry the column itself (INCLUDE, migration 0030): PostgreSQL reads an expression index
# alone (an index-only scan) only when it holds the columns the expression is made of, so without it counting the
# matches of "Greta" visited a table page per match. SQLite reads the expression from the index already.
Index("ix_payments_search_email", Payment.account_id, search_key(Payment.buyer_email), Payment.created_at, Payment.id,
      Payment.mode, postgresql_include=["buyer_email"])
Index("ix_payments_search_name", Payment.account_id, search_key(Payment.buyer_name), Payment.created_at, Payment.id,
      Payment.mode, postgresql_include=["buyer_name"])


class PaymentItem(db.Model):
    __tablename__ = "payment_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    product_id: Mapped[int | None]
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    unit_amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    quantity: Mapped[int] = mapped_column(default=1)
    frequency: Mapped[str] = mapped_column(String(16))
    term_type: Mapped[str | None] = mapped_column(String(16))
    term_count: Mapped[int | None]
    # Q1: the line's discount as charged (unit_amount_minor × quantity − discount_minor = the line's net)
    discount_type: Mapped[str] = mapped_column(String(8), default="", server_default="")
    discount_value: Mapped[int] = mapped_column(default=0, server_default="0")
    discount_minor: Mapped[int] = mapped_column(default=0, server_default="0")
    promo_minor: Mapped[int] = mapped_column(default=0, server_default="0")  # Q2: the line's share of the promo

    payment: Mapped[Payment] = relationship(back_populates="items")


class PaymentFieldValue(db.Model):
    """Q8: one answer to a custom field, as the payment's `custom_fields` holds it, in a row of its own so the
    payments index can filter "Custom field <label> contains <text>" with an indexed EXISTS per payment."""

    __tablename__ = "payment_field_values"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    position: Mapped[int] = mapped_column(default=0)
    label: Mapped[str] = mapped_column(String(50))
    value: Mapped[str] = mapped_column(String(255))


class Mandate(db.Model):
    """The bank-debit authorization the buyer accepted (ACH, or a SEPA Core mandate, Q10), kept for E6."""

    __tablename__ = "mandates"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), unique=True)
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(5))
    accepted_at: Mapped[datetime]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    account_holder_name: Mapped[str] = mapped_column(String(200))
    bank_last4: Mapped[str] = mapped_column(String(4))
    routing_number: Mapped[str] = mapped_column(String(9))  # ACH; "" for SEPA
    # Q10: "ach" or "sepa"; which wording the buyer accepted (mandates.MANDATE_TEXT_VERSIONS); the SEPA mandate
    # reference the bank statement shows; the IBAN's country.
    scheme: Mapped[str] = mapped_column(String(8), default="ach", server_default="ach")
    text_version: Mapped[str] = mapped_column(String(32), default="", server_default="")
    reference: Mapped[str] = mapped_column(String(35), default="", server_default="")
    iban_country: Mapped[str] = mapped_column(String(2), default="", server_default="")


class RefundStatus(StrEnum):
    PENDING = "pending"  # "Refund processing" until the processor settles it (F3)
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RefundReason(StrEnum):
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    REQUESTED_BY_CUSTOMER = "requested_by_customer"
    OTHER = "other"


class Refund(db.Model):
    """A refund of all or part of a payment (F1–F6). Its amount is reserved on the payment when created."""

    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("account_id", "idempotency_key"),
        CheckConstraint("amount_minor > 0", name="positive_amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=RefundStatus.PENDING.value)
    idempotency_key: Mapped[str] = mapped_column(String(120))
    processor_ref: Mapped[str | None] = mapped_column(String(120), index=True)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    settled_at: Mapped[datetime | None]

    created_by: Mapped[User | None] = relationship()


class InvoiceStatus(StrEnum):
    """V1: an invoice's life (payments/invoice_states.py). "Overdue" is not a status: an open or partially
    paid invoice past its due date is shown as overdue (Invoice.is_overdue), so nothing has to move at midnight."""

    DRAFT = "draft"
    OPEN = "open"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


class Invoice(db.Model):
    """An invoice (R5, V1), numbered without gaps per account from one series. Two kinds share it: the invoice a
    link or subscription payment gets (payment_id set, paid from birth, rendered from its payment), and one a
    merchant writes (lines, customer, dates; a draft has no number until it is finalized)."""

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("account_id", "number"), UniqueConstraint("payment_id"),
                      Index("ix_invoices_account_status", "account_id", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    number: Mapped[int | None]  # V1: taken at finalize; a draft has none
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    amount_minor: Mapped[int]  # the total (V1: the lines' net sum, kept at every save)
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[datetime] = mapped_column(default=_now)
    status: Mapped[str] = mapped_column(String(16), default=InvoiceStatus.PAID.value)
    # V1: a merchant's invoice
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"))
    issue_date: Mapped[date | None]
    due_date: Mapped[date | None]
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    terms: Mapped[str] = mapped_column(Text, default="", server_default="")
    amount_paid_minor: Mapped[int] = mapped_column(default=0, server_default="0")
    finalized_at: Mapped[datetime | None]
    voided_at: Mapped[datetime | None]
    void_reason: Mapped[str] = mapped_column(String(500), default="", server_default="")
    sent_at: Mapped[datetime | None]  # V2: last emailed to the customer with its pay link
    # V2: the customer may pay part of the amount due on the pay page (any amount up to it)
    allow_partial: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    reminded_before_at: Mapped[datetime | None]  # V2: the reminder before the due date went (once)
    reminded_after_at: Mapped[datetime | None]  # V2: the reminder after it (once)
    # V1 (Q6): the lines' tax in total (amount_minor includes it: exclusive tax is added, inclusive is in the price)
    tax_minor: Mapped[int] = mapped_column(default=0, server_default="0")

    lines: Mapped[list[InvoiceLine]] = relationship(order_by="InvoiceLine.position", cascade="all, delete-orphan",
                                                    lazy="selectin")

    @property
    def amount_due_minor(self) -> int:
        return max(self.amount_minor - self.amount_paid_minor, 0)

    def is_overdue(self, today: date) -> bool:
        """V1: shown, never stored: still owed after its due date."""
        return (self.status in (InvoiceStatus.OPEN.value, InvoiceStatus.PARTIALLY_PAID.value)
                and self.due_date is not None and self.due_date < today)


class InvoiceLine(db.Model):
    """V1: one line of a merchant's invoice: typed, or copied from the product library (product_id), with the
    Q1 line discount (percent in basis points, or an amount in minor units)."""

    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    description: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[int] = mapped_column(default=1)
    unit_amount_minor: Mapped[int]
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    discount_type: Mapped[str] = mapped_column(String(8), default="")
    discount_value: Mapped[int] = mapped_column(default=0)
    amount_minor: Mapped[int]  # quantity × unit amount − discount
    # V1 (Q6): the line's tax rate as it was when saved (a snapshot: archiving or editing the rate changes no
    # invoice), and its tax: exclusive is added to amount_minor, inclusive is the part of it that is tax.
    tax_rate_id: Mapped[int | None]
    tax_name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    tax_percentage_bp: Mapped[int] = mapped_column(default=0, server_default="0")
    tax_inclusive: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    tax_minor: Mapped[int] = mapped_column(default=0, server_default="0")


class CreditNote(db.Model):
    """V1: a refund of an invoice's payment credits the invoice: one credit note per refund (unique), numbered
    from the account's own gap-free series (counter "credit_note"), rendered as a PDF referencing the invoice."""

    __tablename__ = "credit_notes"
    __table_args__ = (UniqueConstraint("account_id", "number"), UniqueConstraint("refund_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    number: Mapped[int]
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    refund_id: Mapped[int] = mapped_column(ForeignKey("refunds.id"))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"))
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[datetime] = mapped_column(default=_now)


class QuoteStatus(StrEnum):
    """V4: a quote's life (payments/quote_states.py). "Expired" is not stored: an open quote past its expiry date
    reads as expired (Quote.is_expired), so nothing has to move at midnight."""

    DRAFT = "draft"
    OPEN = "open"
    ACCEPTED = "accepted"
    PAID = "paid"
    DECLINED = "declined"
    VOID = "void"


class Quote(db.Model):
    """V4: a quote a merchant sends; the buyer accepts it on its public page (name, checkbox, time, IP) and pays it
    there, at once or later. Numbered from the account's quote series when it is finalized (sent)."""

    __tablename__ = "quotes"
    __table_args__ = (UniqueConstraint("account_id", "number"), Index("ix_quotes_account_status", "account_id", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    number: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(16), default=QuoteStatus.DRAFT.value)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(default=0)  # what is due at acceptance (one-time + first periods)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"))
    issue_date: Mapped[date | None]
    expiry_date: Mapped[date | None]
    notes: Mapped[str] = mapped_column(Text, default="")
    terms: Mapped[str] = mapped_column(Text, default="")
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id"))
    accept_stage_id: Mapped[int | None] = mapped_column(ForeignKey("stages.id"))  # the deal moves here on accept
    created_at: Mapped[datetime] = mapped_column(default=_now)
    finalized_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    accepted_name: Mapped[str] = mapped_column(String(200), default="")
    accepted_ip: Mapped[str | None] = mapped_column(String(45))
    declined_at: Mapped[datetime | None]
    voided_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id", use_alter=True))

    lines: Mapped[list[QuoteLine]] = relationship(order_by="QuoteLine.position", cascade="all, delete-orphan",
                                                  lazy="selectin")

    def is_expired(self, today: date) -> bool:
        """Shown, never stored: an open quote not accepted by its expiry date (the date itself still counts)."""
        return self.status == QuoteStatus.OPEN.value and self.expiry_date is not None and self.expiry_date < today


class QuoteLine(db.Model):
    """V4: one line of a quote, typed or from the product library, one-time or recurring (its frequency) with the
    Q1 line discount. A recurring line becomes a subscription's item when the quote is paid, as a link's does."""

    __tablename__ = "quote_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    quote_id: Mapped[int] = mapped_column(ForeignKey("quotes.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    description: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[int] = mapped_column(default=1)
    unit_amount_minor: Mapped[int]
    frequency: Mapped[str] = mapped_column(String(16), default=BillingFrequency.ONE_TIME.value)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    discount_type: Mapped[str] = mapped_column(String(8), default="")
    discount_value: Mapped[int] = mapped_column(default=0)
    amount_minor: Mapped[int]  # quantity × unit amount − discount (one period for a recurring line)


# --------------------------------------------------------------------------------------------------
# Disputes: disputes and inquiries, their evidence files (D1–D6)
# --------------------------------------------------------------------------------------------------


class DisputeStatus(StrEnum):
    NEEDS_RESPONSE = "needs_response"  # Disputed (action required)
    UNDER_REVIEW = "under_review"  # Disputed (awaiting decision)
    WON = "won"
    LOST = "lost"


class DisputeReason(StrEnum):
    FRAUDULENT = "fraudulent"
    PRODUCT_NOT_RECEIVED = "product_not_received"
    PRODUCT_UNACCEPTABLE = "product_unacceptable"
    DUPLICATE = "duplicate"
    SUBSCRIPTION_CANCELED = "subscription_canceled"
    CREDIT_NOT_PROCESSED = "credit_not_processed"
    GENERAL = "general"


class Dispute(db.Model):
    """A buyer's bank disputing a payment (D1–D7). Evidence is drafted here step by step, then submitted."""

    __tablename__ = "disputes"
    __table_args__ = (UniqueConstraint("account_id", "processor_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    processor_ref: Mapped[str] = mapped_column(String(120))
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    fee_minor: Mapped[int] = mapped_column(default=0)
    reason: Mapped[str] = mapped_column(String(40))
    is_inquiry: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(20), default=DisputeStatus.NEEDS_RESPONSE.value)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    evidence_due_by: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    # The counter-dispute draft, saved at every wizard step (D4): answers, details, free text.
    draft: Mapped[dict[str, Any]] = mapped_column(default=dict)
    submitted_at: Mapped[datetime | None]
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    evidence_text: Mapped[str | None] = mapped_column(Text)
    reminders_sent: Mapped[list[str]] = mapped_column(default=list)
    # The answer sent to the processor ("evidence" or "accept"), taken under the row lock before the call
    # (H13: one answer per dispute); while the dispute still needs a response, its reply hasn't been recorded
    # yet, and the tick settles it from the processor after a crash or a lost reply (H5).
    answer: Mapped[str | None] = mapped_column(String(16))
    answer_sent_at: Mapped[datetime | None]

    payment: Mapped[Payment] = relationship()
    files: Mapped[list[DisputeFile]] = relationship(back_populates="dispute", order_by="DisputeFile.id",
                                                    cascade="all, delete-orphan")

    @property
    def is_open(self) -> bool:
        return self.status in (DisputeStatus.NEEDS_RESPONSE.value, DisputeStatus.UNDER_REVIEW.value)


class DisputeFile(db.Model):
    """An evidence file (PDF, PNG, JPEG) kept under instance/ and served only to the account."""

    __tablename__ = "dispute_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    dispute_id: Mapped[int] = mapped_column(ForeignKey("disputes.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int]
    pages: Mapped[int] = mapped_column(default=1)
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)

    dispute: Mapped[Dispute] = relationship(back_populates="files")


# --------------------------------------------------------------------------------------------------
# Subscriptions: recurring billing (S1–S8)
# --------------------------------------------------------------------------------------------------


class SubscriptionStatus(StrEnum):
    TRIALING = "trialing"  # Q9: a free trial: the card is saved, the first period is charged at trial end
    ACTIVE = "active"
    PAST_DUE = "past_due"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    # M5: a status's label and tone live on its enum, as for every other status (they were in the blueprint).
    @property
    def label(self) -> str:
        return str(SUBSCRIPTION_STATUS_LABELS[self])

    @property
    def tone(self) -> str:
        return SUBSCRIPTION_STATUS_TONES[self]


SUBSCRIPTION_STATUS_LABELS = {
    SubscriptionStatus.TRIALING: _l("Trial"),
    SubscriptionStatus.ACTIVE: _l("Active"), SubscriptionStatus.PAST_DUE: _l("Past due"),
    SubscriptionStatus.COMPLETED: _l("Completed"), SubscriptionStatus.CANCELLED: _l("Cancelled"),
}


SUBSCRIPTION_STATUS_TONES = {
    SubscriptionStatus.TRIALING: "info",
    SubscriptionStatus.ACTIVE: "success", SubscriptionStatus.PAST_DUE: "danger",
    SubscriptionStatus.COMPLETED: "neutral", SubscriptionStatus.CANCELLED: "neutral",
}


class Subscription(db.Model):
    """Recurring items with the same frequency and term, bought together (R4)."""

    __tablename__ = "subscriptions"
    # The billing tick walks what is due in (next charge, id) order, batch after batch from the last one's
    # position: with the id in the index, each batch starts where the last ended instead of rereading it.
    # B9: the largest test clock offset bounds the billing run's index range (a max read off this index).
    __table_args__ = (Index("ix_subscriptions_next_charge", "next_charge_at", "id"),
                      Index("ix_subscriptions_clock_offset", "clock_offset_seconds"))

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    mode: Mapped[str] = mapped_column(String(8), default=Mode.LIVE.value)
    status: Mapped[str] = mapped_column(String(16), default=SubscriptionStatus.ACTIVE.value)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id"))
    link_id: Mapped[int | None] = mapped_column(ForeignKey("payment_links.id"))
    first_payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    frequency: Mapped[str] = mapped_column(String(16))
    term_type: Mapped[str] = mapped_column(String(16))
    term_count: Mapped[int | None]
    amount_minor: Mapped[int]  # per period
    currency: Mapped[str] = mapped_column(String(3))
    payments_made: Mapped[int] = mapped_column(default=0)
    anchor_at: Mapped[datetime]
    next_charge_at: Mapped[datetime | None]
    payment_method_token: Mapped[str | None] = mapped_column(String(120))
    card_brand: Mapped[str | None] = mapped_column(String(32))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    card_exp_month: Mapped[int | None]
    card_exp_year: Mapped[int | None]
    language: Mapped[str] = mapped_column(String(5), default="en")
    created_at: Mapped[datetime] = mapped_column(default=_now)
    cancelled_at: Mapped[datetime | None]
    # Billing engine state (issue 8).
    failed_attempts: Mapped[int] = mapped_column(default=0)  # on the current period, reset by a success
    past_due_since: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    cancel_reason: Mapped[str | None] = mapped_column(String(40))
    ended_at: Mapped[datetime | None]
    reminded_period: Mapped[int | None]  # the last period whose 14-day reminder went out (E7)
    update_token: Mapped[str | None] = mapped_column(String(64), unique=True)  # the buyer's card-update page
    # B9: this test subscription's own test clock: how far its time runs ahead of real time (always 0 in live
    # mode). Only its renewals, retries, reminders and timeline follow it; nothing else of the account does.
    clock_offset_seconds: Mapped[int] = mapped_column(default=0, server_default="0")
    # Q6: every renewal charges the tax of the checkout: the tax part of amount_minor, and the payment's tax
    # fields to copy onto each renewal ({"tax_minor", "exclusive_minor", "buyer_country", "buyer_vat_id",
    # "reverse_charge", "details"}; NULL: no tax)
    tax_minor: Mapped[int] = mapped_column(default=0, server_default="0")
    tax_details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Q9: the end of a free trial (the first period is charged then), and the checkout that started a
    # subscription with nothing to pay that day (it has no first payment: its confirmation page finds it here).
    trial_ends_at: Mapped[datetime | None]
    started_by_checkout_id: Mapped[int | None] = mapped_column(index=True)  # no foreign key: see migration 0026_trial

    items: Mapped[list[SubscriptionItem]] = relationship(
        back_populates="subscription", order_by="SubscriptionItem.position", cascade="all, delete-orphan"
    )
    contact: Mapped[Contact] = relationship()


class SubscriptionItem(db.Model):
    __tablename__ = "subscription_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    unit_amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    quantity: Mapped[int] = mapped_column(default=1)
    # Q1: the line's discount, every period (copied onto each renewal's payment item)
    discount_type: Mapped[str] = mapped_column(String(8), default="", server_default="")
    discount_value: Mapped[int] = mapped_column(default=0, server_default="0")
    discount_minor: Mapped[int] = mapped_column(default=0, server_default="0")

    subscription: Mapped[Subscription] = relationship(back_populates="items")


# --------------------------------------------------------------------------------------------------
# Balance and payouts: the ledger and payouts (O1–O3)
# --------------------------------------------------------------------------------------------------


class LedgerType(StrEnum):
    CHARGE = "charge"
    FEE = "fee"
    REFUND = "refund"
    REFUND_FAILURE = "refund_failure"  # a refund that didn't go through: the money comes back
    DISPUTE = "dispute"  # the disputed amount, withdrawn
    DISPUTE_FEE = "dispute_fee"
    DISPUTE_REVERSAL = "dispute_reversal"  # a won dispute returns the amount
    PAYOUT = "payout"
    PAYOUT_FAILURE = "payout_failure"  # a failed payout returns its funds to the balance
    ADJUSTMENT = "adjustment"  # what the processor's balance shows and Kassa booked no other way (K11)
    # V3: money an invoice was paid outside Kassa (signed: recorded +, edited ±, deleted −). Never in the balance
    # Kassa pays out, never in a payout: the merchant already has it.
    MANUAL = "manual_payment"

    @property
    def label(self) -> str:
        return str(LEDGER_TYPE_LABELS[self])


LEDGER_TYPE_LABELS = {
    LedgerType.CHARGE: _l("Payment"),
    LedgerType.FEE: _l("Processing fee"),
    LedgerType.REFUND: _l("Refund"),
    LedgerType.REFUND_FAILURE: _l("Failed refund returned"),
    LedgerType.DISPUTE: _l("Dispute withdrawal"),
    LedgerType.DISPUTE_FEE: _l("Dispute fee"),
    LedgerType.DISPUTE_REVERSAL: _l("Won dispute returned"),
    LedgerType.PAYOUT: _l("Payout"),
    LedgerType.PAYOUT_FAILURE: _l("Failed payout returned"),
    LedgerType.ADJUSTMENT: _l("Processor adjustment"),
    LedgerType.MANUAL: _l("Manual payment"),
}


class LedgerEntry(db.Model):
    """One money movement on the merchant's balance, in the settlement currency (O1, O2).

    `available_on` is the day the funds can be paid out; the daily payout takes every entry available by
    then and not yet paid out, so a payout always equals the sum of its entries.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_unpaid", "account_id", "mode", "payout_id", "available_on"),
        Index("ix_ledger_payout", "payout_id"),
        UniqueConstraint("account_id", "source_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    mode: Mapped[str] = mapped_column(String(8), default=Mode.LIVE.value)
    type: Mapped[str] = mapped_column(String(24))
    amount_minor: Mapped[int]  # signed: money in is positive, money out negative
    currency: Mapped[str] = mapped_column(String(3))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refunds.id"))
    dispute_id: Mapped[int | None] = mapped_column(ForeignKey("disputes.id"))
    payout_id: Mapped[int | None] = mapped_column(ForeignKey("payouts.id"))
    # What caused the entry, unique per account: the same movement can't be booked twice.
    source_key: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(String(300), default="")
    occurred_at: Mapped[datetime] = mapped_column(default=_now)
    available_on: Mapped[date]


class PayoutStatus(StrEnum):
    PENDING = "pending"
    IN_TRANSIT = "in_transit"
    PAID = "paid"
    FAILED = "failed"

    @property
    def label(self) -> str:
        return str(PAYOUT_STATUS_LABELS[self])

    @property
    def tone(self) -> str:
        return PAYOUT_STATUS_TONES[self]


PAYOUT_STATUS_LABELS = {
    PayoutStatus.PENDING: _l("Pending"),
    PayoutStatus.IN_TRANSIT: _l("In transit"),
    PayoutStatus.PAID: _l("Paid"),
    PayoutStatus.FAILED: _l("Failed"),
}


PAYOUT_STATUS_TONES = {
    PayoutStatus.PENDING: "neutral", PayoutStatus.IN_TRANSIT: "info",
    PayoutStatus.PAID: "success", PayoutStatus.FAILED: "danger",
}


class Payout(db.Model):
    """The day's available funds sent to the merchant's bank account (or debited from it when negative, O3)."""

    __tablename__ = "payouts"
    __table_args__ = (
        # One payout a day is Kassa's own rule (O1); a processor that pays out itself (Stripe, K11) may make
        # several, each recorded once by its reference.
        Index("uq_payouts_daily", "account_id", "mode", "payout_date", unique=True,
              sqlite_where=text("processor_ref IS NULL"), postgresql_where=text("processor_ref IS NULL")),
        UniqueConstraint("account_id", "processor_ref"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    mode: Mapped[str] = mapped_column(String(8), default=Mode.LIVE.value)
    amount_minor: Mapped[int]  # negative: a debit from the bank account
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=PayoutStatus.PENDING.value)
    payout_date: Mapped[date]  # the merchant's day it covers
    arrival_date: Mapped[date]
    entry_count: Mapped[int] = mapped_column(default=0)
    failure_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    paid_at: Mapped[datetime | None]
    # The processor's own payout (Stripe's po_…) when the processor made it; None for Kassa's daily payout.
    processor_ref: Mapped[str | None] = mapped_column(String(120))


# --------------------------------------------------------------------------------------------------
# Back office: saved views of the indexes, exports (P3, X1)
# --------------------------------------------------------------------------------------------------


class SavedView(db.Model):
    """A named set of filters, columns and sort on the payments index (P3), private or shared."""

    __tablename__ = "saved_views"
    __table_args__ = (Index("ix_saved_views_account_tab", "account_id", "tab"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    tab: Mapped[str] = mapped_column(String(16), default="payments")
    name: Mapped[str] = mapped_column(String(80))
    shared: Mapped[bool] = mapped_column(default=False)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the index's query string, as a dict
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now, onupdate=_now)

    owner: Mapped[User] = relationship()


class UserViewDefault(db.Model):
    """Which saved view opens first for a user on an index tab ("a default view")."""

    __tablename__ = "user_view_defaults"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    tab: Mapped[str] = mapped_column(String(16), primary_key=True)
    view_id: Mapped[int] = mapped_column(ForeignKey("saved_views.id", ondelete="CASCADE"))


class ExportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return str(EXPORT_STATUS_LABELS[self])


EXPORT_STATUS_LABELS = {
    ExportStatus.QUEUED: _l("Queued"),
    ExportStatus.RUNNING: _l("Building"),
    ExportStatus.DONE: _l("Ready"),
    ExportStatus.FAILED: _l("Failed"),
    ExportStatus.CANCELLED: _l("Cancelled"),
}


class Export(db.Model):
    """A file built in the background (X1–X3): a payments export or a report, with its progress."""

    __tablename__ = "exports"
    __table_args__ = (Index("ix_exports_account_created", "account_id", "created_at"),
                      # I2: requested by a member (the exports page) or by an API key, exactly one of the two
                      CheckConstraint("(user_id IS NULL) <> (api_key_id IS NULL)", name="one_requester"))

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    kind: Mapped[str] = mapped_column(String(32))  # payments | payout_reconciliation | balance | payout_details | ar_aging
    name: Mapped[str] = mapped_column(String(120))
    file_format: Mapped[str] = mapped_column(String(8))  # csv | xls | xlsx
    language: Mapped[str] = mapped_column(String(5), default="en")
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the view's query string, columns, dates …
    status: Mapped[str] = mapped_column(String(16), default=ExportStatus.QUEUED.value)
    rows_done: Mapped[int] = mapped_column(default=0)
    rows_total: Mapped[int | None]
    stored_name: Mapped[str | None] = mapped_column(String(120))
    size_bytes: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    download_token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    finished_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]

    user: Mapped[User | None] = relationship()
    api_key: Mapped[ApiKey | None] = relationship()


# --------------------------------------------------------------------------------------------------
# Processor connections: a merchant's own Stripe account, its secret key encrypted (K5)
# --------------------------------------------------------------------------------------------------


class StripeConnection(db.Model):
    """One merchant account's Stripe keys (K5). Disconnecting sets disconnected_at and keeps the row, so the
    history (who connected which Stripe account, when) stays readable; at most one active row per mode."""

    __tablename__ = "stripe_connections"
    __table_args__ = (
        Index("uq_stripe_connections_active", "account_id", "mode", unique=True,
              sqlite_where=text("disconnected_at IS NULL"), postgresql_where=text("disconnected_at IS NULL")),
        CheckConstraint("mode IN ('live', 'test')", name="mode"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    # live for sk_live_/rk_live_ keys, test for sk_test_/rk_test_ (K12 uses test connections).
    mode: Mapped[str] = mapped_column(String(4))
    # The secret (or restricted) key, Fernet-encrypted (kassa.secrets_box); only its last 4 are ever shown.
    secret_key_encrypted: Mapped[str] = mapped_column(Text)
    secret_key_last4: Mapped[str] = mapped_column(String(4))
    publishable_key: Mapped[str] = mapped_column(String(255))
    stripe_account_id: Mapped[str] = mapped_column(String(64))
    stripe_account_name: Mapped[str] = mapped_column(String(200), default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    default_currency: Mapped[str] = mapped_column(String(3), default="")
    connected_at: Mapped[datetime] = mapped_column(default=_now)
    connected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    disconnected_at: Mapped[datetime | None]
    disconnected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # K7: the webhook endpoint Kassa created in the Stripe account (None when the key may not create one and
    # the merchant added it by hand), and its signing secret, Fernet-encrypted like the key.
    webhook_endpoint_id: Mapped[str | None] = mapped_column(String(64))
    webhook_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    # K7: the poll of GET /v1/events: the newest event time seen (the next poll starts a little before it)
    # and when it last ran (polled every KASSA_STRIPE_POLL_SECONDS, not on every tick).
    events_seen_until: Mapped[datetime | None]
    events_polled_at: Mapped[datetime | None]


class StripeEvent(db.Model):
    """A Stripe event Kassa received (signed webhook or the catch-up poll), stored before it is applied, so the
    webhook answers at once and the worker applies it (K7). Unique per account: a redelivery stores nothing."""

    __tablename__ = "stripe_events"
    __table_args__ = (
        UniqueConstraint("account_id", "event_id"),
        Index("ix_stripe_events_pending", "connection_id", "done_at", "created"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    connection_id: Mapped[int] = mapped_column(ForeignKey("stripe_connections.id"))
    event_id: Mapped[str] = mapped_column(String(64))  # Stripe's evt_…
    type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(120))  # the object it is about: pi_…, re_…, du_…
    created: Mapped[datetime]  # when Stripe created the event
    source: Mapped[str] = mapped_column(String(8))  # webhook | poll
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the verified event as Stripe sent it
    received_at: Mapped[datetime] = mapped_column(default=_now)
    # Set when every Kassa change the object's state implies is applied (or there was none to apply).
    done_at: Mapped[datetime | None]


# --------------------------------------------------------------------------------------------------
# Sandbox processor: the built-in test processor's storage (T1)
# --------------------------------------------------------------------------------------------------


class SandboxRecord(db.Model):
    """The sandbox processor's own memory (charges, refunds, scheduled events), like a remote processor's."""

    __tablename__ = "sandbox_records"
    __table_args__ = (Index("ix_sandbox_due", "account_id", "due_at"),)

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    account_id: Mapped[int | None]
    due_at: Mapped[datetime | None]
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


# --------------------------------------------------------------------------------------------------
# API: the account's API keys (I1), the responses kept for idempotent requests (I4)
# --------------------------------------------------------------------------------------------------


class ApiKey(db.Model):
    """A secret key for the API (I1), test or live, as Stripe's: `sk_test_…` / `sk_live_…` (restricted:
    `rk_…`). Only a SHA-256 of the secret is kept (shown once, when created); `prefix` is its first characters,
    to tell keys apart."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(100))
    mode: Mapped[str] = mapped_column(String(8))  # Mode: a test key sees only test data, a live key only live
    prefix: Mapped[str] = mapped_column(String(24))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # A restricted key (`rk_…`, as Stripe's): {resource: "read" | "write"} for the resources it may use (a
    # resource left out: none). NULL: a full-access key (`sk_…`).
    scopes: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    created_by: Mapped[User | None] = relationship()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ApiIdempotency(db.Model):
    """I4: a POST's `Idempotency-Key`, per account and mode, with the request's fingerprint and, once answered,
    the response: a retry within 24 hours gets the same response replayed, and nothing is done twice. No status
    yet means the first request is still running (a retry then is 409)."""

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("account_id", "mode", "idempotency_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    mode: Mapped[str] = mapped_column(String(8))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of method, path and parameters
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    status_code: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=_now, index=True)

# --------------------------------------------------------------------------------------------------
# Outgoing webhooks (I6): the account's endpoints and one delivery per (endpoint, account event)
# --------------------------------------------------------------------------------------------------


class WebhookEndpoint(db.Model):
    """A URL of the merchant's that gets the account's events of the chosen types (I6), test or live, signed
    with its own secret (kept encrypted, K5: the Super admin can reveal it). `cursor`: the last account event
    the delivering tick has looked at. Disabled by hand, or by Kassa after repeated failure (`disabled_reason`)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_account", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    mode: Mapped[str] = mapped_column(String(8))  # Mode: test events or live events
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # A rolled secret: the one before stays valid (deliveries carry both signatures) until it expires.
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(20))  # "manual" | "failing"
    disabled_at: Mapped[datetime | None]
    cursor: Mapped[int] = mapped_column(default=0)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    failing_since: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=_now)


class WebhookDelivery(db.Model):
    """One account event sent to one endpoint (I6): the signed body, its attempts and the last answer. The
    unique (endpoint, event) is what makes two ticks at once create one delivery."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("account_events.id"))
    event_type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    # pending → succeeded | failed (gave up after 3 days) | cancelled (its endpoint was disabled)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    delivered_at: Mapped[datetime | None]

    endpoint: Mapped[WebhookEndpoint] = relationship()
    attempts_made: Mapped[list[WebhookAttempt]] = relationship(order_by="WebhookAttempt.id.desc()", viewonly=True)

    @property
    def body_for_reading(self) -> str:
        """The body as sent, indented for the delivery log (what was signed is `body` itself)."""
        import json

        try:
            return json.dumps(json.loads(self.body), indent=2, sort_keys=True)
        except ValueError:
            return self.body


class WebhookAttempt(db.Model):
    """One POST of a delivery (I6): when, the request's headers (the signature), the receiver's status and an
    excerpt of its answer, or the network error, and how long it took. Resend adds one (`resend`)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    number: Mapped[int]  # 1 for the first attempt of the delivery, 2 for the next …
    resend: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    attempted_at: Mapped[datetime]
    request_headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int]

    @property
    def ok(self) -> bool:
        return self.response_status is not None and 200 <= self.response_status < 300


# --------------------------------------------------------------------------------------------------
# Workflows (W1, W2, W5–W7): what happens after a payment, run once per (workflow, payment, trigger event)
# --------------------------------------------------------------------------------------------------


# W6: a workflow starts on an account event (the feed's types, kassa.event_types), checkout abandoned included.
WorkflowTrigger = AccountEventType


class Workflow(db.Model):
    """A trigger, enrollment criteria in the payments index's filter language (W5: its groups as
    `dump_filter` writes them) and actions. Only events at or after `enabled_at` enroll, so turning a
    workflow on never acts on old payments; `version` counts edits (W7)."""

    __tablename__ = "workflows"
    __table_args__ = (Index("ix_workflows_account", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(120))
    trigger: Mapped[str] = mapped_column(String(32))
    criteria: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[[prop, op, [values]], …], …]
    actions: Mapped[list[dict[str, Any]]] = mapped_column(default=list)  # [{"type": "email", …}]
    enabled: Mapped[bool] = mapped_column(default=False)
    # W4: only subscription renewals (a subscription's charges after its first payment).
    renewals_only: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    # W8: only payments whose contact is in this segment (a segment in use can't be deleted).
    segment_id: Mapped[int | None]
    enabled_at: Mapped[datetime | None]
    # W6: the enrolling tick looked at every event before this time (less a margin for late commits).
    scanned_until: Mapped[datetime | None]
    # W6: the account event feed read so far. `event_cursor`: the next look reads the events after it.
    # `event_seen`: the cursor at the checkpoint stamped `scanned_until`; `event_settled`: every event up to it
    # has surely been read (an event whose transaction committed after a later id was read is re-read once).
    event_cursor: Mapped[int] = mapped_column(default=0, server_default="0")
    event_seen: Mapped[int] = mapped_column(default=0, server_default="0")
    event_settled: Mapped[int] = mapped_column(default=0, server_default="0")
    # W6: checkout abandoned: a session with an email unpaid this many hours after it started.
    abandon_hours: Mapped[int | None]
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now, onupdate=_now)


class WorkflowVersion(db.Model):
    """W7: what a workflow did in one of its versions (its trigger, criteria and steps as saved), kept when an edit
    makes a new version, so the history can show what each enrollment ran (`WorkflowEnrollment.workflow_version`)."""

    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("workflow_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    version: Mapped[int]
    trigger: Mapped[str] = mapped_column(String(32))
    criteria: Mapped[list[Any]] = mapped_column(JSON, default=list)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    renewals_only: Mapped[bool] = mapped_column(default=False)
    segment_id: Mapped[int | None]
    abandon_hours: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=_now)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class WorkflowEnrollment(db.Model):
    """One object (payment, subscription, dispute, payout, checkout session) entering one workflow for one trigger
    event of the account event feed (W6). The feed holds each transition once, so the unique (workflow, event) is
    (workflow, object, trigger event): an event applied twice, a feed read twice or two ticks at once enroll once
    (the insert is ON CONFLICT DO NOTHING). `payment_id`: the payment the object is or has (a dispute's, a
    renewal's charge), for criteria, merge fields and the history; None for a payout or a checkout session."""

    __tablename__ = "workflow_enrollments"
    __table_args__ = (
        UniqueConstraint("workflow_id", "event_id"),
        Index("ix_workflow_enrollments_workflow_enrolled", "workflow_id", "enrolled_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    object_type: Mapped[str] = mapped_column(String(20), default="payment", server_default="payment")
    object_id: Mapped[int]
    event_id: Mapped[int | None] = mapped_column(ForeignKey("account_events.id"))  # None: enrolled before the feed
    trigger_event: Mapped[str] = mapped_column(String(32))
    workflow_version: Mapped[int] = mapped_column(default=1)
    # pending → done | cancelled (workflow turned off before the step ran) | failed (detail says why)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    detail: Mapped[str | None] = mapped_column(Text)
    email_id: Mapped[int | None] = mapped_column(ForeignKey("email_messages.id"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    # W6: the next action to run (steps are a sequence) and, after a wait, when it runs.
    step: Mapped[int] = mapped_column(default=0, server_default="0")
    run_at: Mapped[datetime | None]
    enrolled_at: Mapped[datetime] = mapped_column(default=_now)
    done_at: Mapped[datetime | None]

    payment: Mapped[Payment | None] = relationship()
    email: Mapped[EmailMessage | None] = relationship()
    runs: Mapped[list[WorkflowStepRun]] = relationship(order_by="WorkflowStepRun.step", viewonly=True)


class WorkflowStepRun(db.Model):
    """W7: one action of one enrollment and its outcome: done, waiting (until `enrollment.run_at`), failed
    (detail says why), cancelled (the workflow was turned off); `attempts` counts the worker's tries (more than
    one: it was retried). An email's own delivery (sent, failed, retrying) is its Email log row's."""

    __tablename__ = "workflow_step_runs"
    __table_args__ = (UniqueConstraint("enrollment_id", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("workflow_enrollments.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(default=0)
    action: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=1)
    email_id: Mapped[int | None] = mapped_column(ForeignKey("email_messages.id"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    at: Mapped[datetime] = mapped_column(default=_now)

    email: Mapped[EmailMessage | None] = relationship()


class Segment(db.Model):
    """W3, W8: a named group of contacts. A contact is in it when at least one of its payments matches
    `criteria` (the payments index's filter, W5; empty: no payment matches) or a workflow added it, and no
    workflow removed it since (`SegmentMember`)."""

    __tablename__ = "segments"
    __table_args__ = (Index("ix_segments_account", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(120))
    criteria: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[[prop, op, [values]], …], …]
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now, onupdate=_now)


class SegmentMember(db.Model):
    """W6: a workflow's add-to / remove-from segment action on one contact. "added": in the segment whatever its
    payments; "removed": out of it even when its payments match. The latest action wins (one row per pair)."""

    __tablename__ = "segment_members"

    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    state: Mapped[str] = mapped_column(String(8))  # added | removed
    workflow_id: Mapped[int | None] = mapped_column(ForeignKey("workflows.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(default=_now)


class Task(db.Model):
    """A to-do for the team (W2), made by a workflow's create-task action; the Tasks inbox lists open ones."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_account_done", "account_id", "done_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    title: Mapped[str] = mapped_column(String(200))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    workflow_id: Mapped[int | None] = mapped_column(ForeignKey("workflows.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    due_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=_now)

    payment: Mapped[Payment | None] = relationship()
    assignee: Mapped[User | None] = relationship()


class RevenueDay(db.Model):
    """P8: the revenue dashboard's figures of one closed day (the account's time zone) in one mode, kept so the
    dashboard doesn't sum a quarter's payments on every view. Recomputed from the payments whenever something
    that changes them is written (services/backoffice/revenue_days.py); today is never kept."""

    __tablename__ = "revenue_days"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(8), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    gross: Mapped[int] = mapped_column(default=0)
    refunded: Mapped[int] = mapped_column(default=0)
    fees: Mapped[int] = mapped_column(default=0)
    succeeded: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    tax: Mapped[int] = mapped_column(default=0)
    disputed: Mapped[int] = mapped_column(default=0)
    dispute_fees: Mapped[int] = mapped_column(default=0)
    other_currencies: Mapped[int] = mapped_column(default=0)


class RevenueWatermark(db.Model):
    """P8: what the kept days of an account have seen. Rows written after `since_*` (ledger entries, payments,
    disputes; payments failed after `since_failed_at`) mark their payment's day to recompute. The marks move on
    in two steps, a minute apart (`next_*` taken at `next_at`), so a row whose transaction was still open when
    a day was computed is seen after it commits."""

    __tablename__ = "revenue_watermarks"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    since_ledger_id: Mapped[int] = mapped_column(default=0)
    since_payment_id: Mapped[int] = mapped_column(default=0)
    since_dispute_id: Mapped[int] = mapped_column(default=0)
    since_failed_at: Mapped[datetime | None]
    next_ledger_id: Mapped[int] = mapped_column(default=0)
    next_payment_id: Mapped[int] = mapped_column(default=0)
    next_dispute_id: Mapped[int] = mapped_column(default=0)
    next_at: Mapped[datetime | None]
