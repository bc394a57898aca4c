"""`flask kassa bench-data`: a realistic merchant with many payments, inserted in bulk, for benchmarks.

Two years of payments with a believable mix: mostly card, some bank debits; mostly succeeded, some
refunded (fully or partly, with their refund rows), failed, processing; a few currencies; contacts that
pay more than once. Rows go in with multi-row INSERTs in large batches — no ORM objects — so a million
payments take minutes, not hours.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, text

from kassa.actor import Actor
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Contact, Counter, Payment, PaymentItem, PaymentLink, Refund, User
from kassa.services.accounts.users import sign_up
from kassa.services.links.link_drafts import ItemDraft, LinkDraft
from kassa.services.links.links import create_link

BATCH = 10_000
BENCH_EMAIL = "bench@example.com"
BENCH_PASSWORD = "bench-password-2026"  # noqa: S105 - a local benchmark login

BRANDS = ["visa"] * 6 + ["mastercard"] * 3 + ["amex", "discover"]
NAMES = ["Ann", "Bob", "Chloé", "Daan", "Eva", "Finn", "Greta", "Hugo", "Iris", "Jan", "Kim", "Lars", "Mila",
         "Noah", "Olga", "Piet", "Quinn", "Rosa", "Sem", "Tess"]
PRODUCTS = [("House blend, 1 kg", 2450), ("Single origin sampler", 3200), ("Coffee club", 1800),
            ("Barista course", 4500), ("Espresso machine service", 8900), ("Gift card", 5000)]


def ensure_bench_account() -> tuple[int, int]:
    """The benchmark merchant (account id, user id), created once."""
    user = db.session.scalar(select(User).where(User.email == BENCH_EMAIL))
    if user is None:
        user = sign_up(company_name="Bench Coffee", name="Bench", email=BENCH_EMAIL, password=BENCH_PASSWORD,
                       country="NL", currency="EUR", timezone="Europe/Amsterdam")
    account_id, user_id = user.account_id, user.id
    if db.session.scalar(select(PaymentLink.id).where(PaymentLink.account_id == account_id).limit(1)) is None:
        actor = Actor(user=db.session.get(User, user_id), account_id=account_id)
        for name, price in PRODUCTS:
            create_link(actor, LinkDraft(name=name, currency="EUR", items=[
                ItemDraft(name=name, unit_price=f"{price / 100:.2f}", quantity="1")]), "en")
    return account_id, user_id


def _batches(rows: Iterator[dict], size: int = BATCH) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def generate(count: int, *, seed: int = 7, progress: Callable[[int], None] | None = None) -> int:
    """Insert `count` payments (plus contacts, items and refunds) for the bench account."""
    account_id, _user_id = ensure_bench_account()
    rng = random.Random(seed)
    engine = db.engine
    link_ids = list(db.session.scalars(select(PaymentLink.id).where(PaymentLink.account_id == account_id)))
    db.session.remove()
    start_id = (db.session.scalar(select(db.func.max(Payment.id))) or 0) + 1
    first_contact = (db.session.scalar(select(db.func.max(Contact.id))) or 0) + 1
    receipt_start = (db.session.scalar(select(db.func.max(Payment.receipt_number))
                                       .where(Payment.account_id == account_id)) or 0) + 1
    db.session.remove()
    contacts = max(count // 4, 1)
    end = datetime.now(UTC)
    span = timedelta(days=730).total_seconds()

    with engine.begin() as conn:
        for batch in _batches(
            {"id": first_contact + i, "account_id": account_id, "mode": "live",
             "email": f"buyer{first_contact + i}@example.com", "first_name": rng.choice(NAMES),
             "last_name": rng.choice(NAMES) + "sen", "phone": "", "language": rng.choice(["en", "en", "nl", "fr"]),
             "created_at": end - timedelta(seconds=rng.random() * span)}
            for i in range(contacts)
        ):
            conn.execute(insert(Contact), batch)

    created = 0
    receipt = receipt_start
    for batch_start in range(0, count, BATCH):
        n = min(BATCH, count - batch_start)
        payments, items, refunds = [], [], []
        for i in range(n):
            pid = start_id + batch_start + i
            created_at = end - timedelta(seconds=span * (1 - (batch_start + i) / count) + rng.random() * 60)
            method = "ach" if rng.random() < 0.15 else "card"
            currency = "USD" if rng.random() < 0.1 else "EUR"
            product, price = rng.choice(PRODUCTS)
            quantity = rng.choice([1, 1, 1, 2, 3])
            amount = price * quantity
            roll = rng.random()
            status, display, reserved, refunded = "succeeded", "succeeded", 0, 0
            if roll < 0.02:
                status = display = "failed" if method == "ach" else "succeeded"
            elif roll < 0.04:
                status = display = "processing" if method == "ach" else "succeeded"
            elif roll < 0.08:
                display, reserved, refunded = "refunded", amount, amount
            elif roll < 0.11:
                part = amount // 2
                display, reserved, refunded = "partially_refunded", part, part
            elif roll < 0.12:
                display, reserved = "refund_processing", amount
            contact_id = first_contact + rng.randrange(contacts)
            fee = amount * 29 // 1000 + 30 if method == "card" else min(amount * 8 // 1000, 500)
            payments.append({
                "id": pid, "account_id": account_id, "mode": "test" if rng.random() < 0.03 else "live",
                "status": status, "display_status": display, "amount_minor": amount, "currency": currency,
                "method": method, "card_brand": rng.choice(BRANDS) if method == "card" else None,
                "card_last4": f"{rng.randrange(10000):04d}" if method == "card" else None,
                "bank_last4": "6789" if method == "ach" else None, "processor": "sandbox",
                "processor_ref": f"ch_bench_{pid}", "fee_minor": fee, "settlement_currency": "EUR",
                "exchange_rate": "1", "fee_settlement_minor": fee, "net_settlement_minor": amount - fee,
                "source": "payment_link", "link_id": rng.choice(link_ids), "contact_id": contact_id,
                "buyer_email": f"buyer{contact_id}@example.com", "buyer_name": rng.choice(NAMES),
                "buyer_phone": "", "buyer_company": "", "language": "en", "receipt_number": None,
                "refund_reserved_minor": reserved, "refunded_minor": refunded, "created_at": created_at,
                "succeeded_at": created_at if status == "succeeded" else None,
                "failed_at": created_at if status == "failed" else None,
                "failure_message": "The bank debit failed because of insufficient funds." if status == "failed"
                else None,
            })
            if status == "succeeded":
                payments[-1]["receipt_number"] = receipt
                receipt += 1
            items.append({"payment_id": pid, "position": 0, "name": product, "description": "",
                          "unit_amount_minor": price, "currency": currency, "quantity": quantity,
                          "frequency": "one_time"})
            if reserved:
                refunds.append({"account_id": account_id, "payment_id": pid, "amount_minor": reserved,
                                "currency": currency, "reason": "requested_by_customer", "note": "",
                                "status": "succeeded" if refunded else "pending",
                                "idempotency_key": f"bench-refund-{pid}", "processor_ref": f"re_bench_{pid}",
                                "created_at": created_at + timedelta(days=2),
                                "settled_at": created_at + timedelta(days=3) if refunded else None})
        with engine.begin() as conn:
            conn.execute(insert(Payment), payments)
            conn.execute(insert(PaymentItem), items)
            if refunds:
                conn.execute(insert(Refund), refunds)
        created += n
        if progress:
            progress(created)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Keep sequences ahead of the ids we chose, then refresh the planner's statistics.
            for table in ("payments", "contacts", "payment_items", "refunds"):  # fixed names, not input
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                                  f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))
    # Fresh planner statistics for the new rows (in a committed transaction: SQLite's is ours, see database.py).
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    _set_counter(account_id, receipt - 1)
    return created


def _set_counter(account_id: int, value: int) -> None:
    with write_transaction(db.session) as session:
        counter = session.get(Counter, (account_id, "receipt"))
        if counter is None:
            session.add(Counter(account_id=account_id, name="receipt", value=value))
        else:
            counter.value = max(counter.value, value)


