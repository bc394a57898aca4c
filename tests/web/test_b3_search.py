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


@pytest.mark.parametrize("sort", ["date_desc", "amount_desc"])
def test_b3_a_name_matched_past_the_walk_threshold_pages_the_same_from_one_count(client, monkeypatch, sort):
    """B3 (PostgreSQL speed): each reading is counted once, as far as choosing how to read it needs (past
    SCAN_OVER a name prefix is walked newest first). Shrunk thresholds: the pages, the order and the "N+" count
    stay what they are for a small result, a capped one and a walked one."""
    from kassa.services.backoffice import payment_index

    monkeypatch.setattr(payment_index, "SEARCH_COUNT_CAP", 3)
    monkeypatch.setattr(payment_index, "SCAN_OVER", 5)
    owner = make_merchant()
    base = now() - timedelta(days=1)
    gretas = [make_payment(owner.account_id, email=f"g{i}@example.com", buyer_name=f"Greta {i}", amount_minor=100 + i,
                           created_at=base + timedelta(minutes=i)) for i in range(8)]
    make_payment(owner.account_id, email="other@example.com", buyer_name="Gregor", amount_minor=5000,
                 created_at=base + timedelta(minutes=30))
    login(client, owner)
    newest = [p.id for p in reversed(gretas)]  # newest first is also largest first here
    for typed, expected, count in (("Greta 7", newest[:1], "1 payment"), ("Greta", newest, "3+ payments")):
        response = client.get("/payments/", query_string={"q": typed, "sort": sort})
        assert row_ids(response) == expected, typed
        assert count in response.get_data(as_text=True), typed
    # Between the two thresholds (4 matches): counted past the cap, read by its index, the same rows.
    response = client.get("/payments/", query_string={"q": "greta", "sort": sort, "amount_max": "1.03"})
    assert row_ids(response) == newest[4:]
    assert "3+ payments" in response.get_data(as_text=True)


def test_b3_counting_a_name_or_email_prefix_reads_the_index_alone(app):
    """B3 on PostgreSQL: the name and email search indexes hold their column (migration 0030), so counting a
    prefix's matches is an index-only scan, not a visit to the table per match (SQLite: its index by rowid)."""
    owner = make_merchant()
    for i in range(30):
        make_payment(owner.account_id, email=f"greta{i}@example.com", buyer_name=f"Greta {i}")
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM FULL ANALYZE payments"))  # fresh pages and the visibility map
            conn.execute(text("VACUUM ANALYZE payments"))
    for column, index in (("buyer_name", "ix_payments_search_name"), ("buyer_email", "ix_payments_search_email")):
        branch = payment_search._prefix(getattr(Payment, column), "greta")
        query = select(Payment.id).where(Payment.account_id == owner.account_id, Payment.mode.in_(["test"]),
                                         branch.clause).limit(5001)
        sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
        if dialect == "postgresql":
            db.session.execute(text("SET enable_seqscan = off"))
            db.session.execute(text("SET enable_bitmapscan = off"))
            plan = " ".join(str(r[0]) for r in db.session.execute(text("EXPLAIN " + sql)))
            assert f"Index Only Scan using {index}" in plan, plan
        else:
            plan = " ".join(str(r[-1]) for r in db.session.execute(text("EXPLAIN QUERY PLAN " + sql)))
            assert f"USING INDEX {index}" in plan, plan
        db.session.rollback()
