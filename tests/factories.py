"""Test data builders. They go through the services where a rule matters, straight to rows otherwise."""

from __future__ import annotations

import itertools

from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Role, User
from kassa.services.users import sign_up

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
