"""Which processor moves the money for a payment: the sandbox in test mode; live needs a real one."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from kassa.models import Account, Mode
from kassa.processors.base import Processor
from kassa.processors.sandbox import SandboxProcessor
from kassa.processors.sandbox_db_store import DbSandboxStore


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
    from kassa.extensions import db

    return SandboxProcessor(DbSandboxStore(db.engine), _country_lookup(db.engine))


def processor_for(mode: str) -> Processor:
    if mode == Mode.TEST.value:
        return sandbox()
    factory = current_app.config.get("KASSA_LIVE_PROCESSOR")
    if factory is None:
        raise NoLiveProcessor()
    return factory()


def has_live_processor() -> bool:
    return current_app.config.get("KASSA_LIVE_PROCESSOR") is not None
