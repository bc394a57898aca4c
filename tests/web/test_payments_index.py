"""The payments index (P1, P7): columns, status values, sort, test data, URL state, keyset pages, counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kassa.clock import now
from kassa.models import Role
from kassa.services.payments.refunds import refund_payment
from tests.factories import make_merchant, make_payment, make_user
from tests.support.payments import (
    actor_for,
    advance,
    bulk_payments,
    login,
    page_link,
    result_count,
    row_ids,
    sandbox_payment,
    soup_of,
    table_rows,
)


def _refund(owner, payment, amount: str) -> None:
    refund_payment(actor_for(owner), payment.id, amount_text=amount, reason="requested_by_customer", note="",
                   locale="en")


def test_p1_columns_and_every_status_value(client):
    owner = make_merchant()
    processing = make_payment(owner.account_id, status="processing", method="ach", amount_minor=1100)
    failed = make_payment(owner.account_id, status="failed", method="ach", amount_minor=1200)
    succeeded = make_payment(owner.account_id, amount_minor=1300)
    partial = sandbox_payment(owner.account_id, amount_minor=1400)
    full = sandbox_payment(owner.account_id, amount_minor=1500)
    _refund(owner, partial, "4.00")
    _refund(owner, full, "15.00")
    advance(timedelta(minutes=2))  # F3: card refunds settle at the next tick
    pending = sandbox_payment(owner.account_id, amount_minor=1600)
    _refund(owner, pending, "1.00")
    login(client, owner)

    response = client.get("/payments/")

    assert response.status_code == 200
    headers = [th.get_text(strip=True) for th in soup_of(response).select("table.table--payments thead th")]
    assert headers == ["Gross amount", "Status", "Payment date", "Contact", "Payment method", "Source", "Currency"]
    status_by_id = dict(zip(row_ids(response), (row["Status"] for row in table_rows(response)), strict=True))
    assert status_by_id == {
        processing.id: "Processing", failed.id: "Failed", succeeded.id: "Succeeded",
        partial.id: "Partially refunded", full.id: "Refunded", pending.id: "Refund processing",
    }
    row = next(r for r in table_rows(response) if r["Gross amount"].startswith("$13.00"))
    assert row["Currency"] == "USD"
    assert row["Payment method"] == "Visa •••• 4242"
    assert succeeded.buyer_email in row["Contact"]
    ach = next(r for r in table_rows(response) if r["Gross amount"].startswith("$11.00"))
    assert ach["Payment method"] == "Bank account •••• 6789"


def test_p1_v6_source_column_names_the_link(client):
    from tests.support.checkout_flow import make_link

    owner = make_merchant()
    link = make_link(owner, name="Spring concert")
    make_payment(owner.account_id, link_id=link.id)
    login(client, owner)
    # V6: the kind of source, then its name
    assert [row["Source"] for row in table_rows(client.get("/payments/"))] == ["Payment link Spring concert"]


@pytest.mark.parametrize("sort", ["date_desc", "date_asc", "amount_desc", "amount_asc"])
def test_p1_sort_by_date_and_amount_both_directions(client, sort):
    owner = make_merchant()
    base = now() - timedelta(days=1)
    # Amounts do not follow dates, so a date sort and an amount sort give different orders.
    specs = [(3000, 4), (1000, 1), (5000, 3), (2000, 5), (4000, 2)]
    payments = [make_payment(owner.account_id, amount_minor=amount, created_at=base + timedelta(hours=h))
                for amount, h in specs]
    login(client, owner)

    response = client.get("/payments/", query_string={"sort": sort})

    key = (lambda p: p.created_at) if sort.startswith("date") else (lambda p: p.amount_minor)
    expected = [p.id for p in sorted(payments, key=key, reverse=sort.endswith("desc"))]
    assert row_ids(response) == expected
    if sort == "date_desc":
        assert row_ids(client.get("/payments/")) == expected  # newest first is the default


def test_p1_test_data_hidden_unless_view_test_data_is_on(client):
    owner = make_merchant()
    live = make_payment(owner.account_id, mode="live")
    test = make_payment(owner.account_id, mode="test")
    login(client, owner)
    shown = client.get("/payments/")
    assert set(row_ids(shown)) == {live.id, test.id}
    assert "Test" in [b.get_text(strip=True) for b in soup_of(shown).select("td .badge--test")]

    # The "View test data" switch in the top bar, as the user flips it.
    assert client.post("/preferences/test-data", data={"value": "0", "next": "/payments/"}).status_code == 303
    hidden = client.get("/payments/")
    assert row_ids(hidden) == [live.id]
    assert result_count(hidden) == "1 payment"
    # Not reachable through a filter either.
    assert row_ids(client.get("/payments/", query_string={"adv": '[[["mode","any_of",["test"]]]]'})) == []

    client.post("/preferences/test-data", data={"value": "1", "next": "/payments/"})
    assert set(row_ids(client.get("/payments/"))) == {live.id, test.id}


def test_p7_account_without_payments_is_sent_to_setup(client):
    owner = make_merchant()
    other = make_merchant()
    make_payment(other.account_id)  # someone else's payments don't count
    login(client, owner)

    response = client.get("/payments/")

    assert response.status_code == 302
    assert response.headers["Location"].endswith("/payments/setup")
    setup = client.get("/payments/setup")
    assert setup.status_code == 200
    action = soup_of(setup).find("a", string=lambda s: s and "Create a payment link" in s)
    assert action is not None and action["href"].endswith("/links/")


def test_p2_url_holds_the_whole_state_and_htmx_gets_the_results_fragment(client):
    owner = make_merchant()
    make_payment(owner.account_id, status="failed", amount_minor=900)
    wanted = make_payment(owner.account_id, status="failed", amount_minor=9900)
    make_payment(owner.account_id, amount_minor=9900)
    login(client, owner)
    url = "/payments/?status=failed&amount_min=50&sort=amount_desc&cols=amount,status,email"

    full = client.get(url)
    again = client.get(url)
    fragment = client.get(url, headers={"HX-Request": "true"})

    # Without JavaScript: a whole page, the same rows each time.
    assert full.status_code == 200 and soup_of(full).find("html") is not None
    assert row_ids(full) == row_ids(again) == [wanted.id]
    assert [th.get_text(strip=True) for th in soup_of(full).select("thead th")] == [
        "Gross amount", "Status", "Contact email"]
    # The filter form shows the state it came from.
    form = soup_of(full)
    assert form.select_one("#qs-failed").has_attr("checked")
    assert form.select_one("#qf-amin")["value"] == "50"
    assert form.select_one("#qf-sort option[selected]")["value"] == "amount_desc"
    # htmx: only the #results block, and caches keep the two apart.
    body = soup_of(fragment)
    assert body.find("html") is None and body.find("nav", class_="tabs") is None
    assert body.find(id="results") is not None
    assert row_ids(fragment) == [wanted.id]
    for response in (full, fragment):
        assert "HX-Request" in response.headers["Vary"]


# -- keyset pagination ------------------------------------------------------------------------------


def _walk(client, first_url: str) -> tuple[list[list[int]], list[list[int]]]:
    """Follow Next to the end, then Previous back to the start; the pages seen each way."""
    forward, url = [], first_url
    while url:
        response = client.get(url)
        assert response.status_code == 200
        forward.append(row_ids(response))
        last, url = response, page_link(response, "next")
    backward, url = [row_ids(last)], page_link(last, "prev")
    while url:
        response = client.get(url)
        backward.append(row_ids(response))
        url = page_link(response, "prev")
    return forward, backward[::-1]


@pytest.mark.parametrize("sort", ["date_desc", "date_asc", "amount_desc", "amount_asc"])
def test_p2_keyset_pages_of_50_with_ties_lose_and_repeat_nothing(app, client, sort):
    owner = make_merchant()
    tie_a = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    tie_b = datetime(2026, 1, 11, 12, 0, tzinfo=UTC)
    rows = []
    for i in range(120):
        # 50 payments share one instant and 40 another (a page boundary falls inside each tie);
        # amounts repeat too: only 4 distinct values.
        created = tie_a if i < 50 else tie_b if i < 90 else tie_b + timedelta(minutes=i)
        rows.append({"amount_minor": 1000 * (1 + i % 4), "created_at": created, "buyer_email": f"b{i}@x.example"})
    bulk_payments(owner.account_id, rows)
    login(client, owner)

    forward, backward = _walk(client, f"/payments/?sort={sort}")

    assert [len(page) for page in forward] == [50, 50, 20]
    seen = [pid for page in forward for pid in page]
    assert len(seen) == len(set(seen)) == 120
    from kassa.extensions import db
    from kassa.models import Payment

    payments = db.session.scalars(db.select(Payment).where(Payment.account_id == owner.account_id)).all()
    column = (lambda p: p.created_at) if sort.startswith("date") else (lambda p: p.amount_minor)
    expected = [p.id for p in sorted(payments, key=lambda p: (column(p), p.id), reverse=sort.endswith("desc"))]
    assert seen == expected
    assert backward == forward  # Previous walks back through exactly the same pages
    first = client.get(f"/payments/?sort={sort}")
    assert page_link(first, "prev") is None
    assert result_count(first) == "120 payments"
    # Later pages count the whole result too, not what is left after their cursor.
    second = client.get(page_link(first, "next"))
    assert result_count(second) == result_count(client.get(page_link(second, "next"))) == "120 payments"


def test_p2_a_stale_or_forged_page_cursor_is_a_400_with_a_message(client):
    owner = make_merchant()
    make_payment(owner.account_id)
    login(client, owner)
    for cursor in ("nonsense", "2026-01-01T00:00:00~1", "~", "2026-01-01T00:00:00+00:00~x"):
        response = client.get("/payments/", query_string={"after": cursor})
        assert response.status_code == 400, cursor
        assert "page link is out of date" in response.get_data(as_text=True)


def test_p2_count_is_exact_up_to_10000_then_10000_plus(client):
    owner = make_merchant()
    start = now() - timedelta(days=30)
    rows = [{"amount_minor": 100 + i, "created_at": start + timedelta(seconds=i)} for i in range(10_050)]
    bulk_payments(owner.account_id, rows[:10_000])
    login(client, owner)

    exact = client.get("/payments/")
    # Grouped like every other number on the page, so "10,000" and "10,000+" read alike.
    assert result_count(exact) == "10,000 payments"
    assert len(row_ids(exact)) == 50

    bulk_payments(owner.account_id, rows[10_000:])
    capped = client.get("/payments/")
    assert result_count(capped) == "10,000+ payments"
    # A filter narrows the count back below the cap: exact again.
    narrowed = client.get("/payments/", query_string={"amount_max": "1.49"})
    assert result_count(narrowed) == "50 payments"
    assert result_count(client.get("/payments/", query_string={"amount_max": "100.99"})) == "10,000 payments"


@pytest.mark.parametrize(("language", "exact", "capped"), [
    ("en", "1,234 payments", "1,000+ payments"),
    ("nl", "1.234 betalingen", "1.000+ betalingen"),
    # French groups with a narrow no-break space; the page reader folds it into a plain one.
    ("fr", "1 234 paiements", "Plus de 1 000 paiements"),
])
def test_p1_counts_use_the_languages_digit_grouping(client, monkeypatch, language, exact, capped):
    from kassa.services.backoffice import payment_index

    owner = make_merchant()
    start = now() - timedelta(days=30)
    bulk_payments(owner.account_id, [{"amount_minor": 100 + i, "created_at": start + timedelta(seconds=i)}
                                     for i in range(1_234)])
    login(client, owner)
    client.post("/preferences/language", data={"language": language, "next": "/"})

    assert result_count(client.get("/payments/")) == exact
    monkeypatch.setattr(payment_index, "COUNT_CAP", 1_000)  # the capped wording, without 10,001 rows
    assert result_count(client.get("/payments/")) == capped


def test_a1_member_cannot_open_the_index(client):
    owner = make_merchant()
    make_payment(owner.account_id)
    member = make_user(owner.account_id, Role.MEMBER)
    login(client, member)
    assert client.get("/payments/").status_code == 403
