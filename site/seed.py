"""Demo data for `make run`: a merchant you can log in as and click through."""

from __future__ import annotations

from sqlalchemy import select

from kassa.extensions import db
from kassa.models import User
from kassa.services.users import sign_up

DEMO_COMPANY = "Northwind Coffee Roasters"


def seed_demo(email: str, password: str) -> bool:
    """Create the demo merchant once; returns False when it already exists."""
    if db.session.scalar(select(User).where(User.email == email)) is not None:
        return False
    user = sign_up(
        company_name=DEMO_COMPANY,
        name="Demo Merchant",
        email=email,
        password=password,
        country="NL",
        currency="EUR",
        timezone="Europe/Amsterdam",
        language="en",
    )
    _seed_account_details(user.account_id)
    return True


def _seed_account_details(account_id: int) -> None:
    from kassa.database import write_transaction
    from kassa.models import Account

    with write_transaction(db.session) as session:
        account = session.get(Account, account_id)
        account.address = "Prinsengracht 263\n1016 GV Amsterdam\nNetherlands"
        account.brand_color = "#7c3a12"
