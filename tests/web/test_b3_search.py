"""B3: one search box on Payments, and a global one in the top bar, that finds a payment by email, name,
receipt / invoice / payout / payment number, card or bank last 4, amount ("12.50" or "12,50") and payment link
name — only the merchant's own payments, in the modes they see; exports take the search along."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from kassa.clock import now
from kassa.database import write_transaction
from kassa.display_ids import display_id
from kassa.extensions import db
from kassa.models import Invoice, LedgerEntry, Payment, Payout, User
from kassa.services.backoffice import payment_search
from tests.factories import make_merchant, make_payment
from tests.support.checkout_flow import make_link
from tests.support.payments import login, row_ids, soup_of


@pytest.fixture
def shop():
    owner = make_merchant()
    link = make_link(owner, name="Barista course spring")
    p = {
        "jane": make_payment(owner.account_id, email="jane.doe@example.com", buyer_name="Jane Doe", amount_minor=1250),
        "john": make_payment(owner.account_id, email="john@example.org", buyer_name="John Smith", amount_minor=4400,
                             link_id=link.id),
        "yen": make_payment(owner.account_id, email="kenji@example.jp", buyer_name="Kenji", amount_minor=1250,
                            currency="JPY"),
        "ach": make_payment(owner.account_id, email="bank@example.com", buyer_name="Bank Payer", method="ach",
                            amount_minor=9900),
        "live": make_payment(owner.account_id, email="live@example.com", buyer_name="Jane Live", mode="live"),
    }
    with write_transaction(db.session) as session:
        session.get(type(p["jane"]), p["jane"].id).card_last4 = "1881"
        session.add(Invoice(account_id=owner.account_id, number=77, payment_id=p["john"].id, amount_minor=4400,
                            currency="USD"))
        payout = Payout(account_id=owner.account_id, mode="test", amount_minor=9000, currency="USD",
                        payout_date=now().date(), arrival_date=now().date() + timedelta(days=1))
        session.add(payout)
        session.flush()
        session.add(LedgerEntry(account_id=owner.account_id, mode="test", type="charge", amount_minor=9900,
                                currency="USD", payment_id=p["ach"].id, payout_id=payout.id, source_key="c-ach",
                                available_on=now().date()))
        payout_id = payout.id
    other = make_merchant()
    make_payment(other.account_id, email="jane.doe@example.com", buyer_name="Jane Doe", amount_minor=1250)
    return owner, p, payout_id, link


def found(client, q: str, **extra) -> list[int]:
    response = client.get("/payments/", query_string={"q": q, **extra})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return row_ids(response)


def test_b3_finds_by_every_kind_of_thing_typed(client, shop):
    owner, p, payout_id, _link = shop
    login(client, owner)
    ids = {name: payment.id for name, payment in p.items()}
    assert found(client, "jane.doe@example.com") == [ids["jane"]]
    assert found(client, "JANE.DOE@") == [ids["jane"]]
    assert sorted(found(client, "jane")) == sorted([ids["jane"], ids["live"]])  # name or email start
    assert found(client, "john smith") == [ids["john"]]
    assert found(client, "Smith") == []  # names match from their start
    assert found(client, display_id("receipt", p["yen"].receipt_number)) == [ids["yen"]]
    assert found(client, "INV-000077") == [ids["john"]]
    assert ids["john"] in found(client, "77")  # a bare number: receipt, invoice or payout number
    assert found(client, display_id("payout", payout_id)) == [ids["ach"]]
    assert found(client, display_id("payment", ids["yen"])) == [ids["yen"]]
    assert found(client, "1881") == [ids["jane"]]
    assert found(client, "6789") == [ids["ach"]]  # bank last 4
    assert found(client, "12.50") == [ids["jane"]]  # $12.50, not ¥1,250
    assert found(client, "12,50") == [ids["jane"]]
    assert found(client, "1250") == [ids["yen"]]  # ¥1,250
    assert found(client, "barista") == [ids["john"]]  # the payment link's name
    assert found(client, "nobody-at-all") == []


def test_b3_search_combines_with_filters_and_keeps_the_test_switch(client, shop):
    owner, p, _payout, _link = shop
    login(client, owner)
    assert found(client, "jane", method="ach") == []
    assert found(client, "jane", currency="USD") != []
    with write_transaction(db.session) as session:
        session.get(User, owner.id).view_test_data = False
    assert found(client, "jane") == [p["live"].id]


def test_b3_another_merchants_payments_are_never_found(client, shop):
    owner, p, _payout, _link = shop
    login(client, owner)
    ids = found(client, "jane.doe@example.com")
    assert ids == [p["jane"].id]


def test_b3_global_search_in_the_top_bar_opens_payments_with_the_query(client, shop):
    owner, p, _payout, _link = shop
    login(client, owner)
    form = soup_of(client.get("/")).select_one("form.topsearch")
    assert form["action"] == "/payments/" and form.select_one("input")["name"] == "q"
    response = client.get(form["action"], query_string={"q": "jane.doe@example.com"})
    assert row_ids(response) == [p["jane"].id]
    assert soup_of(response).select_one("#qf-q")["value"] == "jane.doe@example.com"
    assert soup_of(response).select_one("#top-search")["value"] == "jane.doe@example.com"


def test_b3_search_pages_newest_first_across_readings(client):
    owner = make_merchant()
    base = now() - timedelta(days=1)
    made = [make_payment(owner.account_id, email=f"many{i:03d}@example.com", amount_minor=1000 + i,
                         created_at=base + timedelta(minutes=i)) for i in range(60)]
    login(client, owner)
    first = client.get("/payments/", query_string={"q": "many"})
    ids = row_ids(first)
    assert ids == [payment.id for payment in reversed(made)][:50]
    assert "60 payments" in first.get_data(as_text=True)
    older = soup_of(first).select_one('a[rel="next"]')["href"]
    assert row_ids(client.get(older)) == [payment.id for payment in reversed(made)][50:]


def test_b3_search_queries_use_the_search_indexes(app, shop):
    """The plan of each reading names its index: no full scan of the payments table."""
    owner, _p, _payout, _link = shop
    expected = {"jane.doe@": "ix_payments_search_email", "1881": "ix_payments_search_card_last4",
                "12.50": "ix_payments_search_amount", "barista": "ix_payments_search_link"}
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        # The test reset deletes rows, it doesn't truncate: indexes keep the pages earlier tests' rows filled,
        # and the planner prices an index scan by its pages. Rewrite the table and its indexes to this test's
        # rows (as a real instance's would be sized), then fresh statistics.
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM FULL ANALYZE payments"))
    for q, index in expected.items():
        plans = []
        for branch in payment_search.branches(owner.account_id, q):
            query = select(Payment.id).where(Payment.account_id == owner.account_id, Payment.mode.in_(["test"]),
                                             branch.clause).order_by(Payment.created_at.desc(), Payment.id.desc()).limit(51)
            sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
            if dialect == "postgresql":
                db.session.execute(text("SET enable_seqscan = off"))
                plans.append(" ".join(str(r[0]) for r in db.session.execute(text("EXPLAIN " + sql))))
            else:
                plans.append(" ".join(str(r[-1]) for r in db.session.execute(text("EXPLAIN QUERY PLAN " + sql))))
        db.session.rollback()
        assert any(index in plan for plan in plans), (q, plans)
