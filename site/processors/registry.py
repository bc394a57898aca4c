"""Which processor moves the money for an account: in live mode the account's own connected Stripe account
(K5/K6), one `StripeProcessor` on its own `StripeClient` per call; in test mode the built-in sandbox, or Stripe
test mode on the account's test-mode connection when the merchant chose it (K12, Account.test_processor)."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from kassa import secrets_box
from kassa.extensions import db
from kassa.models import Account, Mode, StripeConnection
from kassa.processors.base import Processor
from kassa.processors.sandbox import SandboxProcessor
from kassa.processors.sandbox_db_store import DbSandboxStore
from kassa.processors.sandbox_pricing import UNITS_PER_USD
from kassa.processors.stripe import StripeProcessor, stripe_client
from kassa.processors.stripe_inbox import StripeInbox


class NoLiveProcessor(Exception):
    """The account has no live processor connected (Settings → Payments → Connect Stripe)."""


def _country_lookup(engine):
    cache: dict[int, str] = {}

    def country_for(account_id: int) -> str:
        if account_id not in cache:
            with engine.connect() as conn:
                cache[account_id] = conn.scalar(select(Account.country).where(Account.id == account_id)) or "US"
        return cache[account_id]

    return country_for


def sandbox() -> SandboxProcessor:
    """The test-mode processor. Services reach it by this name only for what is inherently test mode: the
    sandbox's T5 controls and its clock-driven events; everything else goes through `processor_for`."""
    return SandboxProcessor(DbSandboxStore(db.engine), _country_lookup(db.engine))


def stripe_connection(account_id: int, mode: str) -> StripeConnection | None:
    """The account's active Stripe connection in `mode` (at most one: a partial unique index)."""
    return db.session.scalar(select(StripeConnection).where(
        StripeConnection.account_id == account_id, StripeConnection.mode == mode,
        StripeConnection.disconnected_at.is_(None)))


def stripe_processor(connection: StripeConnection) -> StripeProcessor:
    """A processor on the connection's own key: the secret is decrypted for this call and not kept. Its event
    inbox is the connection's received Stripe events (K7)."""
    return StripeProcessor(stripe_client(secrets_box.decrypt(connection.secret_key_encrypted)),
                           connection.account_id, inbox=stripe_inbox(connection.account_id, connection.id))


def stripe_inbox(account_id: int, connection_id: int) -> StripeInbox:
    """The Stripe events a connection received (K7): a webhook stores into it without building a client."""
    return StripeInbox(db.engine, account_id, connection_id)


def live_processor(account_id: int) -> Processor | None:
    """The account's live processor, or None (its live checkouts then say "can't accept payments yet").

    KASSA_LIVE_PROCESSOR (a factory, tests only) stands in for every account's connection: tests run live mode
    on a counted sandbox or on Stripe doubles through it."""
    factory = current_app.config.get("KASSA_LIVE_PROCESSOR")
    if factory is not None:
        return factory()
    connection = stripe_connection(account_id, Mode.LIVE.value)
    return stripe_processor(connection) if connection is not None else None


def stripe_payout_source(account_id: int) -> StripeProcessor | None:
    """The account's live Stripe processor when Stripe pays the account out (K11): the payouts sync lists its
    payouts. None for an account without a live Stripe connection (its live processor, if any, is not
    Stripe: a test stand-in)."""
    live = live_processor(account_id)
    return live if isinstance(live, StripeProcessor) else None


def test_stripe_connection(account_id: int) -> StripeConnection | None:
    """K12: the test-mode connection test payments go through, when the account chose Stripe test mode and such a
    connection is active; None means the sandbox (disconnecting the test keys falls back to it at once)."""
    chosen = db.session.scalar(select(Account.test_processor).where(Account.id == account_id))
    return stripe_connection(account_id, Mode.TEST.value) if chosen == StripeProcessor.name else None


def uses_sandbox(account_id: int) -> bool:
    """Whether the account's test mode runs on the built-in sandbox (its T5 controls only apply then)."""
    return test_stripe_connection(account_id) is None


def processor_for(mode: str, account_id: int) -> Processor:
    if mode == Mode.TEST.value:
        connection = test_stripe_connection(account_id)
        return stripe_processor(connection) if connection is not None else sandbox()
    live = live_processor(account_id)
    if live is None:
        raise NoLiveProcessor()
    return live


def processor_name(mode: str, account_id: int) -> str:
    """What a payment made in `mode` records as its processor (`Payment.processor`): the processor's own name.
    A live renewal claimed while no live processor is connected can't be charged; it records the mode, "live"."""
    if mode == Mode.TEST.value:
        return StripeProcessor.name if test_stripe_connection(account_id) is not None else SandboxProcessor.name
    if current_app.config.get("KASSA_LIVE_PROCESSOR") is not None:
        return live_processor(account_id).name
    return StripeProcessor.name if stripe_connection(account_id, mode) is not None else mode


def has_live_processor(account_id: int) -> bool:
    return current_app.config.get("KASSA_LIVE_PROCESSOR") is not None or \
        stripe_connection(account_id, Mode.LIVE.value) is not None


def can_settle(currency: str, settlement_currency: str, account_id: int) -> bool:
    """H13: whether a payment in `currency` can be taken and settled in the account's currency. Links work in
    test mode and in live mode, so both processors must take it."""
    if not sandbox().can_settle(currency, settlement_currency):
        return False
    live = live_processor(account_id)
    return live is None or live.can_settle(currency, settlement_currency)


def settlement_choices(settlement_currency: str, account_id: int) -> list[str]:
    """The currencies a link of an account settling in `settlement_currency` can be in (for the message)."""
    codes = set(UNITS_PER_USD) if settlement_currency in UNITS_PER_USD else {settlement_currency}
    return sorted(code for code in codes if can_settle(code, settlement_currency, account_id))
