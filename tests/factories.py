"""Test data builders. They go through the services where a rule matters, straight to rows otherwise."""

from __future__ import annotations

import itertools

from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Role, User
from kassa.services.accounts.users import sign_up

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


def make_merchant(company: str | None = None, email: str | None = None, **kwargs) -> User:
    """A new account with its Super admin (through the real sign-up service)."""
    n = next(_counter)
    return sign_up(
        company_name=company or f"Merchant {n}",
        name=kwargs.pop("name", f"Owner {n}"),
        email=email or f"owner{n}@merchant{n}.example",
        password=kwargs.pop("password", PASSWORD),
        **kwargs,
    )


def make_user(account_id: int, role: Role = Role.MEMBER, email: str | None = None) -> User:
    """Another user in an existing account."""
    from kassa.passwords import hash_password

    n = next(_counter)
    with write_transaction(db.session) as session:
        user = User(
            account_id=account_id,
            email=email or f"user{n}@team.example",
            name=f"User {n}",
            password_hash=hash_password(PASSWORD),
            role=role.value,
        )
        session.add(user)
        session.flush()
        return user


def make_payment(account_id: int, *, amount_minor: int = 2500, currency: str = "USD", status: str = "succeeded",
                 method: str = "card", mode: str = "test", email: str | None = None, created_at=None,
                 feed: bool = False, **fields):
    """A payment row as checkout would leave it (straight to the table: for index, refund and panel tests).
    `feed`: also its account event (payment.succeeded / payment.failed), as its transition records it (W6)."""
    from datetime import timedelta

    from kassa.clock import now
    from kassa.models import Payment, PaymentItem
    from kassa.services.money.display_status import refresh_display_status
    from kassa.services.platform.counters import next_number

    n = next(_counter)
    with write_transaction(db.session) as session:
        payment = Payment(
            account_id=account_id, mode=mode, status=status, amount_minor=amount_minor, currency=currency,
            method=method, card_brand="visa" if method == "card" else None, card_last4="4242" if method == "card"
            else None, bank_last4="6789" if method == "ach" else None, processor_ref=f"ch_test_{n}",
            fee_minor=fields.pop("fee_minor", amount_minor * 29 // 1000 + 30),
            settlement_currency=fields.pop("settlement_currency", currency),
            buyer_email=email or f"buyer{n}@example.com", buyer_name=fields.pop("buyer_name", f"Buyer {n}"),
            created_at=created_at or now() - timedelta(minutes=n), language="en",
            refund_reserved_minor=0, refunded_minor=0, **fields,
        )
        payment.items = [PaymentItem(name="Thing", unit_amount_minor=amount_minor, currency=currency, quantity=1,
                                     frequency="one_time")]
        if status == "succeeded":
            payment.succeeded_at = payment.created_at
            payment.receipt_number = next_number(account_id, "receipt")
        refresh_display_status(payment)
        session.add(payment)
        session.flush()
        if feed and status in ("succeeded", "failed"):
            from kassa.event_types import AccountEventType
            from kassa.services.platform.account_events import record

            record(account_id, AccountEventType(f"payment.{status}"), payment, payment.created_at)
        return payment
