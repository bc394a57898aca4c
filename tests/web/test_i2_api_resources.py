"""I2: the API's resources beyond the first ones — cursor pagination both ways, `expand[]`, Kassa's payment filter,
subscriptions, dispute answers, payouts and balance transactions, products. Every answer here is also held to the
operation's schema in the OpenAPI document (I5, `endpoints.response_errors`). Each resource: another account's
id (and the other mode's) is Stripe's `resource_missing` 404, and a restricted key without the scope is 403."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Contact, Dispute, LedgerEntry, Payout, Product, Subscription
from kassa.services.api import endpoints
from kassa.services.api.keys import create_key
from tests.factories import make_merchant, make_payment
from tests.support.payments import actor_for, sandbox_payment


@pytest.fixture
def app_config() -> dict:
    return {"KASSA_API_TEST_RATE_LIMIT": "1000 per second", "KASSA_API_TEST_ACCOUNT_RATE_LIMIT": "1000 per second"}


@pytest.fixture
def owner(app):
    return make_merchant(company="Mine")


@pytest.fixture
def other(app):
    return make_merchant(company="Theirs")


@pytest.fixture
def api(client, owner):
    """Calls with a full-access test key; each answer checked against its operation's schema."""
    secret = create_key(actor_for(owner), "Shop", "test")[1]
    return Api(client, secret)


class Api:
    def __init__(self, client, secret: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {secret}"}

    def call(self, operation: str, method: str, path: str, **kwargs):
        response = self.client.open(f"/api{path}", method=method, headers=self.headers, **kwargs)
        errors = endpoints.response_errors(operation, response.status_code, response.json)
        assert errors == [], (path, response.status_code, errors)
        return response


def assert_missing(response, param: str = "id") -> None:
    assert response.status_code == 404
    assert response.json["error"]["code"] == "resource_missing" and response.json["error"]["param"] == param


def restricted(owner, scopes: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(actor_for(owner), 'Narrow', 'test', scopes)[1]}"}


# -- payments: both cursors, expand, the filter ------------------------------------------------------------


def test_i2_payments_page_forwards_and_back_with_starting_after_and_ending_before(api, owner):
    ids = [make_payment(owner.account_id, created_at=now() - timedelta(minutes=m)).id for m in range(5)]
    make_payment(owner.account_id, mode="live")  # a test key never sees it
    first = api.call("payment_intents", "GET", "/v1/payment_intents?limit=2").json
    assert [p["id"] for p in first["data"]] == [f"pi_{ids[0]}", f"pi_{ids[1]}"] and first["has_more"] is True
    second = api.call("payment_intents", "GET", f"/v1/payment_intents?limit=2&starting_after=pi_{ids[1]}").json
    assert [p["id"] for p in second["data"]] == [f"pi_{ids[2]}", f"pi_{ids[3]}"]
    last = api.call("payment_intents", "GET", f"/v1/payment_intents?limit=2&starting_after=pi_{ids[3]}").json
    assert [p["id"] for p in last["data"]] == [f"pi_{ids[4]}"] and last["has_more"] is False
    back = api.call("payment_intents", "GET", f"/v1/payment_intents?limit=2&ending_before=pi_{ids[4]}").json
    assert [p["id"] for p in back["data"]] == [f"pi_{ids[2]}", f"pi_{ids[3]}"] and back["has_more"] is True
    top = api.call("payment_intents", "GET", f"/v1/payment_intents?limit=2&ending_before=pi_{ids[1]}").json
    assert [p["id"] for p in top["data"]] == [f"pi_{ids[0]}"] and top["has_more"] is False
    refunds = api.call("refunds", "GET", f"/v1/refunds?ending_before=re_{ids[0]}")
    assert_missing(refunds, "ending_before")


def test_i2_expand_returns_a_payments_customer_and_refunds_as_objects(api, owner, other):
    with write_transaction(db.session) as session:
        contact = Contact(account_id=owner.account_id, mode="test", email="ann@example.com", first_name="Ann",
                          last_name="Buyer")
        session.add(contact)
        session.flush()
        contact_id = contact.id
    payment = sandbox_payment(owner.account_id, amount_minor=5000, mode="test", contact_id=contact_id)
    refund = api.call("create_refund", "POST", "/v1/refunds", data={"payment_intent": f"pi_{payment.id}",
                                                                  "amount": "1200"})
    assert refund.status_code == 200
    plain = api.call("payment_intent", "GET", f"/v1/payment_intents/pi_{payment.id}").json
    assert plain["customer"] == f"cus_{contact_id}" and "refunds" not in plain
    full = api.call("payment_intent", "GET",
                    f"/v1/payment_intents/pi_{payment.id}?expand[]=customer&expand[]=refunds").json
    assert full["customer"]["email"] == "ann@example.com" and full["customer"]["name"] == "Ann Buyer"
    assert [r["id"] for r in full["refunds"]["data"]] == [refund.json["id"]] and full["refunds"]["has_more"] is False
    listed = api.call("payment_intents", "GET", "/v1/payment_intents?expand[]=customer").json
    assert listed["data"][0]["customer"]["id"] == f"cus_{contact_id}"
    bad = api.call("payment_intent", "GET", f"/v1/payment_intents/pi_{payment.id}?expand[]=invoice")
    assert bad.status_code == 400 and bad.json["error"]["param"] == "expand"
    theirs = make_payment(other.account_id)
    assert_missing(api.call("payment_intent", "GET", f"/v1/payment_intents/pi_{theirs.id}?expand[]=refunds"))


def test_i2_kassa_payments_filter_uses_the_index_filter_language(api, owner, other):
    failed = make_payment(owner.account_id, status="failed", amount_minor=900)
    big = make_payment(owner.account_id, amount_minor=90_000)
    small = make_payment(owner.account_id, amount_minor=500)
    make_payment(other.account_id, status="failed")
    make_payment(owner.account_id, status="failed", mode="live")

    def ids(groups) -> list[str]:
        response = api.call("kassa_payments", "GET", "/kassa/payments", query_string={"filter": json.dumps(groups)})
        assert response.status_code == 200, response.json
        return [p["id"] for p in response.json["data"]]

    assert ids([[["status", "any_of", ["failed"]]]]) == [f"pi_{failed.id}"]
    assert ids([[["amount", "gt", ["100"]]]]) == [f"pi_{big.id}"]
    # OR between groups, newest first
    assert set(ids([[["amount", "gt", ["100"]]], [["amount", "lt", ["6"]]]])) == {f"pi_{big.id}", f"pi_{small.id}"}
    everything = api.call("kassa_payments", "GET", "/kassa/payments?limit=1").json
    assert len(everything["data"]) == 1 and everything["has_more"] is True
    for bad in ("not json", json.dumps([[["colour", "is", ["red"]]]]), json.dumps([[["amount", "gt", ["x"]]]])):
        response = api.call("kassa_payments", "GET", "/kassa/payments", query_string={"filter": bad})
        assert response.status_code == 400 and response.json["error"]["param"] == "filter"
    narrow = restricted(owner, {"refunds": "read"})
    assert api.client.get("/api/kassa/payments", headers=narrow).status_code == 403


# -- subscriptions ---------------------------------------------------------------------------------------------


def _subscription(account_id: int, mode: str = "test") -> int:
    with write_transaction(db.session) as session:
        count = session.scalar(select(db.func.count()).select_from(Contact))
        contact = Contact(account_id=account_id, mode=mode, email=f"sub{count}@example.com")
        session.add(contact)
        session.flush()
        sub = Subscription(account_id=account_id, mode=mode, contact_id=contact.id, frequency="monthly",
                           term_type="auto_renew", amount_minor=1900, currency="USD", payments_made=1,
                           anchor_at=now() - timedelta(days=3), next_charge_at=now() + timedelta(days=27))
        session.add(sub)
        session.flush()
        return sub.id


def test_i2_subscriptions_retrieve_cancel_at_period_end_and_now(api, owner, other):
    sub_id = _subscription(owner.account_id)
    got = api.call("subscription", "GET", f"/v1/subscriptions/sub_{sub_id}").json
    assert (got["status"], got["amount"], got["interval"], got["cancel_at_period_end"]) == ("active", 1900, "month",
                                                                                           False)
    later = api.call("update_subscription", "POST", f"/v1/subscriptions/sub_{sub_id}",
                     data={"cancel_at_period_end": "true"}).json
    assert later["cancel_at_period_end"] is True and later["status"] == "active" and later["canceled_at"]
    ended = api.call("cancel_subscription", "DELETE", f"/v1/subscriptions/sub_{sub_id}").json
    assert ended["status"] == "canceled" and ended["kassa_status"] == "cancelled"
    again = api.call("cancel_subscription", "DELETE", f"/v1/subscriptions/sub_{sub_id}")
    assert again.status_code == 400 and again.json["error"]["param"] == "id"
    assert db.session.get(Subscription, sub_id).status == "cancelled"
    assert_missing(api.call("subscription", "GET", f"/v1/subscriptions/sub_{_subscription(other.account_id)}"))
    theirs = _subscription(other.account_id)
    assert_missing(api.call("cancel_subscription", "DELETE", f"/v1/subscriptions/sub_{theirs}"))
    assert db.session.get(Subscription, theirs).status == "active"
    live = _subscription(owner.account_id, mode="live")
    assert_missing(api.call("subscription", "GET", f"/v1/subscriptions/sub_{live}"))
    reader = restricted(owner, {"subscriptions": "read"})
    assert api.client.get(f"/api/v1/subscriptions/sub_{sub_id}", headers=reader).status_code == 200
    assert api.client.delete(f"/api/v1/subscriptions/sub_{live}", headers=reader).status_code == 403


# -- disputes ----------------------------------------------------------------------------------------------------


FRAUD_CARD = "4000000000000259"  # T5: the sandbox opens a dispute on it


def open_dispute_on(payment) -> Dispute:
    """The sandbox's own dispute on a payment made with its dispute card, delivered by the tick."""
    from kassa.services.platform.ticks import run_tick

    report = run_tick()
    assert not report.failed, report.failed
    db.session.rollback()
    dispute = db.session.scalar(select(Dispute).where(Dispute.payment_id == payment.id))
    assert dispute is not None
    return dispute


def test_i2_dispute_evidence_is_saved_then_submitted_once(api, owner, other):
    dispute = open_dispute_on(sandbox_payment(owner.account_id, amount_minor=4000, mode="test", card=FRAUD_CARD))
    saved = api.call("update_dispute", "POST", f"/v1/disputes/dp_{dispute.id}",
                     data={"evidence[uncategorized_text]": "Delivered on 2 Dec, signed for."}).json
    assert saved["status"] == "needs_response"
    db.session.expire_all()
    assert db.session.get(Dispute, dispute.id).draft["evidence"]["uncategorized_text"].startswith("Delivered")
    submitted = api.call("update_dispute", "POST", f"/v1/disputes/dp_{dispute.id}", data={"submit": "true"}).json
    assert "error" not in submitted, submitted
    assert submitted["status"] == "under_review" and submitted["evidence_details"]["has_evidence"] is True
    twice = api.call("update_dispute", "POST", f"/v1/disputes/dp_{dispute.id}", data={"submit": "true"})
    assert twice.status_code == 400 and twice.json["error"]["param"] == "submit"
    unknown = api.call("update_dispute", "POST", f"/v1/disputes/dp_{dispute.id}", data={"evidence[colour]": "red"})
    assert unknown.status_code == 400 and unknown.json["error"]["param"] == "evidence[colour]"
    theirs = open_dispute_on(sandbox_payment(other.account_id, mode="test", card=FRAUD_CARD))
    assert_missing(api.call("update_dispute", "POST", f"/v1/disputes/dp_{theirs.id}", data={"submit": "true"}))
    assert db.session.get(Dispute, theirs.id).status == "needs_response"


def test_i2_dispute_accept_closes_it_as_lost(api, owner, other):
    dispute = open_dispute_on(sandbox_payment(owner.account_id, amount_minor=3000, mode="test", card=FRAUD_CARD))
    theirs = open_dispute_on(sandbox_payment(other.account_id, mode="test", card=FRAUD_CARD))
    reader = restricted(owner, {"disputes": "read"})
    assert api.client.post(f"/api/v1/disputes/dp_{dispute.id}/close", headers=reader).status_code == 403
    closed = api.call("close_dispute", "POST", f"/v1/disputes/dp_{dispute.id}/close").json
    assert "error" not in closed, closed
    assert closed["status"] == "lost"
    again = api.call("close_dispute", "POST", f"/v1/disputes/dp_{dispute.id}/close")
    assert again.status_code == 400
    assert_missing(api.call("close_dispute", "POST", f"/v1/disputes/dp_{theirs.id}/close"))
    db.session.expire_all()
    assert db.session.get(Dispute, theirs.id).status == "needs_response"


# -- payouts and balance transactions ------------------------------------------------------------------------------


def in_transit_payout(account_id: int, *, day: date, mode: str = "test", amount_minor: int = 12_345) -> Payout:
    with write_transaction(db.session) as session:
        payout = Payout(account_id=account_id, mode=mode, amount_minor=amount_minor, currency="USD",
                        status="in_transit", payout_date=day, arrival_date=day + timedelta(days=1))
        session.add(payout)
        session.flush()
        return payout


def _entry(account_id: int, payout_id: int | None, amount: int, kind: str = "charge", mode: str = "test") -> int:
    with write_transaction(db.session) as session:
        row = LedgerEntry(account_id=account_id, mode=mode, type=kind, amount_minor=amount, currency="USD",
                          payout_id=payout_id, source_key=f"t-{account_id}-{amount}-{kind}-{payout_id}",
                          available_on=date(2027, 1, 5), occurred_at=now() - timedelta(minutes=amount % 97))
        session.add(row)
        session.flush()
        return row.id


def test_i2_payouts_and_their_balance_transactions(api, owner, other):
    payout = in_transit_payout(owner.account_id, amount_minor=7000, day=now().date() - timedelta(days=1))
    older = in_transit_payout(owner.account_id, amount_minor=100, day=now().date() - timedelta(days=2))
    in_charge = _entry(owner.account_id, payout.id, 7300)
    in_fee = _entry(owner.account_id, payout.id, -300, "fee")
    _entry(owner.account_id, None, 999)
    listed = api.call("payouts", "GET", "/v1/payouts").json
    assert {p["id"] for p in listed["data"]} == {f"po_{payout.id}", f"po_{older.id}"}
    one = api.call("payout", "GET", f"/v1/payouts/po_{payout.id}").json
    assert (one["amount"], one["status"], one["currency"]) == (7000, "in_transit", "usd")
    assert api.call("payouts", "GET", "/v1/payouts?status=paid").json["data"] == []
    entries = api.call("balance_transactions", "GET", f"/v1/balance_transactions?payout=po_{payout.id}").json
    assert {e["id"] for e in entries["data"]} == {f"txn_{in_charge}", f"txn_{in_fee}"}
    assert sum(e["amount"] for e in entries["data"]) == 7000
    fee = api.call("balance_transaction", "GET", f"/v1/balance_transactions/txn_{in_fee}").json
    assert (fee["type"], fee["reporting_category"], fee["amount"]) == ("stripe_fee", "fee", -300)
    fees = api.call("balance_transactions", "GET", "/v1/balance_transactions?type=fee").json
    assert [e["id"] for e in fees["data"]] == [f"txn_{in_fee}"]
    theirs = in_transit_payout(other.account_id, day=now().date() - timedelta(days=1))
    assert_missing(api.call("payout", "GET", f"/v1/payouts/po_{theirs.id}"))
    assert_missing(api.call("balance_transactions", "GET", f"/v1/balance_transactions?payout=po_{theirs.id}"),
                   "payout")
    assert_missing(api.call("balance_transaction", "GET",
                            f"/v1/balance_transactions/txn_{_entry(other.account_id, None, 5)}"))
    live = in_transit_payout(owner.account_id, mode="live", day=now().date() - timedelta(days=1))
    assert_missing(api.call("payout", "GET", f"/v1/payouts/po_{live.id}"))
    narrow = restricted(owner, {"payments": "read"})
    assert api.client.get("/api/v1/payouts", headers=narrow).status_code == 403
    assert api.client.get("/api/v1/balance_transactions", headers=narrow).status_code == 403


# -- products ------------------------------------------------------------------------------------------------------


def test_i2_products_create_list_and_retrieve(api, owner, other):
    made = api.call("create_product", "POST", "/v1/products", data={
        "name": "Bike service", "description": "A full check", "default_price_data[currency]": "eur",
        "default_price_data[unit_amount]": "4500"})
    assert made.status_code == 200, made.json
    assert (made.json["name"], made.json["unit_amount"], made.json["currency"], made.json["recurring"]) == (
        "Bike service", 4500, "eur", None)
    monthly = api.call("create_product", "POST", "/v1/products", data={
        "name": "Club", "default_price_data[currency]": "eur", "default_price_data[unit_amount]": "900",
        "default_price_data[recurring][interval]": "month"}).json
    assert "error" not in monthly, monthly
    assert monthly["recurring"] == {"interval": "month", "interval_count": 1}
    product = db.session.get(Product, int(monthly["id"].removeprefix("prod_")))
    assert (product.frequency, product.term_type) == ("monthly", "auto_renew")
    for data, param in (({"default_price_data[currency]": "eur", "default_price_data[unit_amount]": "1"}, "name"),
                        ({"name": "x", "default_price_data[currency]": "eur",
                          "default_price_data[unit_amount]": "0"}, "default_price_data[unit_amount]"),
                        ({"name": "x", "default_price_data[currency]": "zzz",
                          "default_price_data[unit_amount]": "5"}, "default_price_data[currency]"),
                        ({"name": "x", "default_price_data[currency]": "eur", "default_price_data[unit_amount]": "5",
                          "default_price_data[recurring][interval]": "day"}, "default_price_data[recurring][interval]")):
        response = api.call("create_product", "POST", "/v1/products", data=data)
        assert (response.status_code, response.json["error"]["param"]) == (400, param)
    assert db.session.scalar(select(db.func.count()).select_from(Product)
                             .where(Product.account_id == owner.account_id)) == 2
    listed = api.call("products", "GET", "/v1/products?active=true").json
    assert [p["id"] for p in listed["data"]] == [monthly["id"], made.json["id"]]
    assert api.call("products", "GET", "/v1/products?active=false").json["data"] == []
    assert api.call("product", "GET", f"/v1/products/{made.json['id']}").json["description"] == "A full check"
    with write_transaction(db.session) as session:
        theirs = Product(account_id=other.account_id, name="Theirs", unit_amount_minor=100, currency="USD")
        session.add(theirs)
        session.flush()
        theirs_id = theirs.id
    assert_missing(api.call("product", "GET", f"/v1/products/prod_{theirs_id}"))
    assert theirs_id not in {p["id"] for p in api.call("products", "GET", "/v1/products").json["data"]}
    reader = restricted(owner, {"products": "read"})
    assert api.client.get("/api/v1/products", headers=reader).status_code == 200
    assert api.client.post("/api/v1/products", data={"name": "x"}, headers=reader).status_code == 403


def test_i2_settings_gives_a_restricted_key_the_new_resources_scopes(client, owner):
    """The Settings form's subscriptions, payouts and products scopes, each used, and what they open."""
    from kassa.models import ApiKey
    from tests.support.app import page_text
    from tests.support.payments import login

    login(client, owner)
    client.post("/settings/api-keys", data={
        "name": "Books", "mode": "test", "access": "restricted", "scope_payment_links": "none",
        "scope_payments": "none", "scope_refunds": "none", "scope_disputes": "none",
        "scope_subscriptions": "write", "scope_payouts": "read", "scope_products": "read"})
    key = db.session.scalar(select(ApiKey).where(ApiKey.name == "Books"))
    assert key.scopes == {"subscriptions": "write", "payouts": "read", "products": "read"}
    text = page_text(client.get("/settings/api-keys"))
    assert "Subscriptions: write" in text and "Payouts: read" in text and "Products: read" in text
    bad = client.post("/settings/api-keys", data={"name": "Odd", "mode": "test", "access": "restricted",
                                                  "scope_products": "admin"})
    assert bad.status_code == 422 and "Choose none, read or write." in page_text(bad)
    assert db.session.scalar(select(ApiKey).where(ApiKey.name == "Odd")) is None


def test_i2_a_payment_links_items_and_settings_change_through_the_editors_service(api, owner, other):
    from kassa.models import LinkItem, PaymentLink

    item = {"line_items[0][price_data][currency]": "eur", "line_items[0][price_data][unit_amount]": "2500",
            "line_items[0][price_data][product_data][name]": "Bike service"}
    made = api.call("create_payment_link", "POST", "/v1/payment_links", data=item).json
    link_id = int(made["id"].removeprefix("plink_"))
    changed = api.call("update_payment_link", "POST", f"/v1/payment_links/{made['id']}", data={
        "line_items[0][price_data][currency]": "eur", "line_items[0][price_data][unit_amount]": "3000",
        "line_items[0][price_data][product_data][name]": "Full service", "line_items[0][quantity]": "2",
        "line_items[1][price_data][currency]": "eur", "line_items[1][price_data][unit_amount]": "500",
        "line_items[1][price_data][product_data][name]": "Chain oil",
        "after_completion[type]": "redirect", "after_completion[redirect][url]": "https://bikes.example/thanks",
        "billing_address_collection": "auto"})
    assert changed.status_code == 200, changed.json
    assert changed.json["url"] == made["url"]  # the same link, edited in place (L19)
    assert changed.json["after_completion"]["redirect"]["url"] == "https://bikes.example/thanks"
    assert changed.json["billing_address_collection"] == "auto"
    db.session.expire_all()
    rows = db.session.scalars(select(LinkItem).where(LinkItem.link_id == link_id).order_by(LinkItem.position)).all()
    assert [(r.name, r.unit_amount_minor, r.quantity) for r in rows] == [("Full service", 3000, 2),
                                                                        ("Chain oil", 500, 1)]
    assert db.session.get(PaymentLink, link_id).version == 2
    for data, param in (({"line_items[0][price_data][currency]": "usd", "line_items[0][price_data][unit_amount]":
                          "5", "line_items[0][price_data][product_data][name]": "x"}, "line_items"),
                        ({"line_items[0][price_data][currency]": "eur", "line_items[0][price_data][unit_amount]":
                          "0", "line_items[0][price_data][product_data][name]": "x"},
                         "line_items[0][price_data][unit_amount]"),
                        ({"after_completion[type]": "redirect"}, "after_completion[redirect][url]"),
                        ({"billing_address_collection": "never"}, "billing_address_collection")):
        response = api.call("update_payment_link", "POST", f"/v1/payment_links/{made['id']}", data=data)
        assert (response.status_code, response.json["error"]["param"]) == (400, param), response.json
    assert db.session.get(PaymentLink, link_id).version == 2  # nothing changed
    theirs = Api(api.client, create_key(actor_for(other), "Theirs", "test")[1]).call(
        "create_payment_link", "POST", "/v1/payment_links", data=item).json
    assert_missing(api.call("update_payment_link", "POST", f"/v1/payment_links/{theirs['id']}",
                            data={"billing_address_collection": "auto"}))
