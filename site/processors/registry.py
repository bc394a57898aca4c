"""Which processor moves the money for a payment: the sandbox in test mode; live needs a real one."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from kassa.extensions import db
from kassa.models import Account, Mode
from kassa.processors.base import Processor
from kassa.processors.sandbox import SandboxProcessor
from kassa.processors.sandbox_db_store import DbSandboxStore
from kassa.processors.sandbox_pricing import UNITS_PER_USD


class NoLiveProcessor(Exception):
    """The account has no live processor connected (Stripe arrives with a later capability)."""


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


def live_processor() -> Processor | None:
    """The live processor the app is set up with (the KASSA_LIVE_PROCESSOR factory), or None: nothing sets it
    today, so live checkouts answer "this merchant can't accept payments yet"."""
    factory = current_app.config.get("KASSA_LIVE_PROCESSOR")
    return factory() if factory is not None else None


def processor_for(mode: str) -> Processor:
    if mode == Mode.TEST.value:
        return sandbox()
    live = live_processor()
    if live is None:
        raise NoLiveProcessor()
    return live


def processor_name(mode: str) -> str:
    """What a payment made in `mode` records as its processor (`Payment.processor`): the processor's own name.
    A live renewal claimed while no live processor is set up can't be charged; it records the mode, "live"."""
    try:
        return processor_for(mode).name
    except NoLiveProcessor:
        return mode


def can_settle(currency: str, settlement_currency: str) -> bool:
    """H13: whether a payment in `currency` can be taken and settled in the account's currency. Links work in
    test mode and in live mode, so both processors must take it."""
    if not sandbox().can_settle(currency, settlement_currency):
        return False
    live = live_processor()
    return live is None or live.can_settle(currency, settlement_currency)


def settlement_choices(settlement_currency: str) -> list[str]:
    """The currencies a link of an account settling in `settlement_currency` can be in (for the message)."""
    codes = set(UNITS_PER_USD) if settlement_currency in UNITS_PER_USD else {settlement_currency}
    return sorted(code for code in codes if can_settle(code, settlement_currency))


def has_live_processor() -> bool:
    return current_app.config.get("KASSA_LIVE_PROCESSOR") is not None
