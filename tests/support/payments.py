"""Payments index, panel and refund test helpers (issue 6): payments the sandbox knows, and page readers.

    payment = sandbox_payment(owner.account_id, amount_minor=5000)     # charged in the sandbox, then recorded
    response = client.get("/payments/?status=failed")
    row_ids(response)                                                  # payment ids in table order
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import time_machine
from bs4 import BeautifulSoup
from sqlalchemy import insert, select

from kassa.actor import Actor
from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Payment, PaymentItem, Refund, User
from kassa.processors.base import BankDetails, CardDetails, ChargeRequest
from kassa.processors.registry import sandbox
from tests.factories import PASSWORD, make_payment
from tests.support.app import log_in

TEST_CARD = "4242424242424242"
REFUND_FAILS_CARD = "4000000000005126"  # succeeds, but its refunds fail (T5)


def login(client, user: User) -> None:
    log_in(client, user.email, PASSWORD)


def actor_for(user: User) -> Actor:
    return Actor(user=db.session.get(User, user.id), account_id=user.account_id)


def sandbox_payment(account_id: int, *, amount_minor: int = 5000, currency: str = "USD", method: str = "card",
                    card: str = TEST_CARD, settlement_currency: str | None = None, **fields) -> Payment:
    """A succeeded payment whose charge the sandbox processor knows, so refunds really go through it.

    The charge is made through the processor protocol (as checkout does); the row is a factory payment
    carrying the charge's reference, fee and settlement figures.
    """
    at = fields.get("created_at") or now()
    request = ChargeRequest(
        account_id=account_id, idempotency_key=f"test-{secrets.token_hex(8)}", amount_minor=amount_minor,
        currency=currency, method=method, settlement_currency=settlement_currency,
        card=CardDetails(number=card, exp_month=12, exp_year=2040, cvc="123", name="Ann Buyer")
        if method == "card" else None,
        bank=BankDetails(routing_number="110000000", account_number="000123456789", account_holder_name="Ann Buyer")
        if method == "ach" else None,
        now=at,
    )
    result = sandbox().charge(request)
    db.session.rollback()
    payment = make_payment(account_id, amount_minor=amount_minor, currency=currency, method=method,
                           fee_minor=result.fee_minor, settlement_currency=result.settlement_currency,
                           exchange_rate=str(result.exchange_rate), fee_settlement_minor=result.fee_settlement_minor,
                           net_settlement_minor=result.net_settlement_minor, **fields)
    with write_transaction(db.session) as session:
        row = session.get(Payment, payment.id)
        row.processor_ref = result.processor_ref
    return db.session.get(Payment, payment.id)


def bulk_payments(account_id: int, rows: list[dict]) -> None:
    """Insert many payment rows at once (Core INSERT, like kassa.bench_data), without factories."""
    defaults = {
        "account_id": account_id, "mode": "test", "status": "succeeded", "display_status": "succeeded",
        "currency": "USD", "method": "card", "card_brand": "visa", "card_last4": "4242", "processor": "sandbox",
        "fee_minor": 0, "settlement_currency": "USD", "exchange_rate": "1", "fee_settlement_minor": 0,
        "net_settlement_minor": 0, "source": "payment_link", "buyer_email": "bulk@example.com",
        "buyer_name": "", "buyer_phone": "", "buyer_company": "", "language": "en", "refund_reserved_minor": 0,
        "refunded_minor": 0,
    }
    with db.engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(insert(Payment), [{**defaults, **row} for row in rows[start:start + 5000]])


def refunds_of(payment_id: int) -> list[Refund]:
    db.session.rollback()
    return list(db.session.scalars(select(Refund).where(Refund.payment_id == payment_id).order_by(Refund.id)))


def reload(payment_id: int) -> Payment:
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(Payment, payment_id)


def advance(delta: timedelta) -> None:
    """Let the sandbox's clock run: travel `delta` ahead and run one tick there."""
    from kassa.services.platform.ticks import run_tick

    with time_machine.travel(now() + delta, tick=False):
        report = run_tick()
    assert not report.failed, report.failed
    db.session.rollback()


def add_items(payment_id: int, *items: tuple[str, int, int]) -> None:
    with write_transaction(db.session) as session:
        for position, (name, unit, quantity) in enumerate(items, start=1):
            session.add(PaymentItem(payment_id=payment_id, position=position, name=name, unit_amount_minor=unit,
                                    currency=session.get(Payment, payment_id).currency, quantity=quantity,
                                    frequency="one_time"))


# -- reading pages ----------------------------------------------------------------------------------


def soup_of(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def text_of(node) -> str:
    return " ".join(node.get_text(" ").split()) if node is not None else ""


def row_ids(response) -> list[int]:
    """Payment ids of the table rows, in order (each gross amount links to its panel)."""
    return [int(a["href"].rstrip("/").rsplit("/", 1)[-1]) for a in soup_of(response).select("table a.amount-link")]


def table_rows(response) -> list[dict[str, str]]:
    """Each row as {column header: cell text}."""
    soup = soup_of(response)
    headers = [text_of(th) for th in soup.select("table.table--payments thead th")]
    return [dict(zip(headers, (text_of(td) for td in tr.select("td")), strict=True))
            for tr in soup.select("table.table--payments tbody tr")]


def result_count(response) -> str:
    return text_of(soup_of(response).select_one(".results__count"))


def page_link(response, rel: str) -> str | None:
    """The href of the Next (rel="next") or Previous (rel="prev") page link, as a path, or None."""
    node = soup_of(response).select_one(f'nav.pagination a[rel="{rel}"]')
    if node is None:
        return None
    parts = urlsplit(node["href"])
    return parts.path + (f"?{parts.query}" if parts.query else "")


def error_alert(response) -> str:
    return text_of(soup_of(response).select_one('[role="alert"]'))


def chips(response) -> list[str]:
    return [text_of(chip) for chip in soup_of(response).select(".chips .chip__label")]


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, *,
          tz: str) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(tz))
