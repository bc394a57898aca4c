"""Subscription billing test helpers (issue 8): buy recurring items through the real checkout, move the
test clock, and read what the billing engine left behind (payments, emails, sandbox charges).

    with frozen():                                            # real time stands still at START
        owner, link = subscription_shop(frequency="monthly", term_type="fixed", term_count="7")
        sub = buy(client, link)                               # the first charge, at checkout
        advance(owner, days=31)                               # the T5/B9 test clocks: every tick due on the way
"""

from __future__ import annotations

from datetime import UTC, datetime

import time_machine
from sqlalchemy import select

from kassa.actor import Actor
from kassa.clock import clock_now as subscription_clock
from kassa.extensions import db
from kassa.models import EmailMessage, OutboxMessage, Payment, SandboxRecord, Subscription, User
from kassa.services.billing.subscriptions import advance_clock
from tests.support.checkout import start_checkout, submit_checkout
from tests.support.checkout_flow import count, item, make_shop

# A Friday mid-month, mid-morning UTC: far from month ends and DST changes unless a test wants them.
START = datetime(2027, 1, 15, 10, 0, tzinfo=UTC)
BUYER = "sam.subscriber@example.com"


def frozen(at: datetime = START):
    """Real time stands still (the test clock alone moves), so charge dates are exact."""
    return time_machine.travel(at, tick=False)


def subscription_shop(company: str | None = None, *, frequency: str = "monthly", term_type: str = "fixed",
                      term_count: str = "7", price: str = "10.00", name: str = "Lessons", currency: str = "USD",
                      extra_items=()):
    """A merchant (Super admin) with one link selling a recurring item."""
    return make_shop(company, currency=currency, items=[
        item(name, price, frequency=frequency, term_type=term_type,
             term_count=term_count if term_type == "fixed" else ""), *extra_items])


def buy(client, link, *, email: str = BUYER, lang: str | None = None, card_number: str | None = None) -> Subscription:
    """Pay the link in test mode through the checkout pages; returns the (first) subscription it created."""
    overrides = {"card_number": card_number} if card_number else {}
    path = start_checkout(client, link.slug, **({"lang": lang} if lang else {}))
    response = submit_checkout(client, path, email=email, **overrides)
    assert response.status_code == 303, response.get_data(as_text=True)[:600]
    db.session.rollback()
    sub = db.session.scalars(select(Subscription).where(Subscription.link_id == link.id)
                             .order_by(Subscription.id.desc())).first()
    assert sub is not None, "the checkout made no subscription"
    return sub


def actor(user: User) -> Actor:
    db.session.rollback()
    return Actor(user=db.session.get(User, user.id), account_id=user.account_id)


def advance(user: User, sub: Subscription | int | None = None, **kwargs) -> dict[str, int]:
    """T5/B9: move a test subscription's own clock (days=… or to_date=…); every charge, retry and reminder of
    it runs. Without `sub`, each test subscription of the account in turn (their counts added up)."""
    if sub is not None:
        sub_ids = [sub if isinstance(sub, int) else sub.id]
    else:
        db.session.rollback()
        sub_ids = list(db.session.scalars(select(Subscription.id).where(
            Subscription.account_id == user.account_id, Subscription.mode == "test").order_by(Subscription.id)))
    total: dict[str, int] = {}
    for sub_id in sub_ids:
        result = advance_clock(actor(user), sub_id, **kwargs)
        db.session.rollback()
        for key, value in result.items():
            total[key] = total.get(key, 0) + value
    return total


def reload(sub: Subscription | int) -> Subscription:
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(Subscription, sub if isinstance(sub, int) else sub.id)


def charges_of(sub: Subscription | int) -> list[Payment]:
    """Every payment of the subscription, the checkout's first one included, oldest first."""
    sub = reload(sub)
    return list(db.session.scalars(
        select(Payment).where((Payment.subscription_id == sub.id) | (Payment.id == sub.first_payment_id))
        .order_by(Payment.created_at, Payment.id)))


def renewals_of(sub: Subscription | int) -> list[Payment]:
    sub = reload(sub)
    return list(db.session.scalars(select(Payment).where(Payment.subscription_id == sub.id,
                                                        Payment.source == "subscription")
                                   .order_by(Payment.created_at, Payment.id)))


def write_queued_receipts() -> int:
    """The worker's part of a renewal's receipt (E2): a tick queues it, the worker writes the email. Runs just
    those jobs, as the worker would, so a test can read the Email log without sending everything."""
    from kassa.services.billing.billing_outcomes import RECEIPT_JOB
    from kassa.services.platform.outbox import claim_one, run_claimed

    db.session.rollback()
    jobs = db.session.scalars(select(OutboxMessage.id).where(OutboxMessage.kind == RECEIPT_JOB,
                                                             OutboxMessage.status == "pending")
                              .order_by(OutboxMessage.id)).all()
    for job_id in jobs:
        attempt = claim_one(job_id)
        if attempt is not None:
            run_claimed(job_id, attempt)
    db.session.rollback()
    return len(jobs)


def emails_of(kind: str, to: str = BUYER) -> list[EmailMessage]:
    """The Email log's messages of this kind to `to`, once the worker has written the queued receipts."""
    write_queued_receipts()
    rows = db.session.scalars(select(EmailMessage).where(EmailMessage.kind == kind).order_by(EmailMessage.id))
    return [row for row in rows if any(to in address for address in row.to_addrs)]


def sandbox_charge_count(account_id: int | None = None) -> int:
    """Charges the sandbox made (money that moved), from its own records."""
    where = [SandboxRecord.key.like("charge:%")]
    if account_id is not None:
        where.append(SandboxRecord.account_id == account_id)
    return count(SandboxRecord, *where)


def clock_now(sub: Subscription | int) -> datetime:
    """B9: now on the subscription's own clock."""
    return subscription_clock(reload(sub))
