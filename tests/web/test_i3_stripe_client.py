"""I3: the official `stripe` package (pinned), pointed at a running Kassa, creates a payment link, lists
payments, refunds (a refund beyond what was paid refused with Stripe's error) and reads a dispute, unchanged.
Every request it sends is also checked against Stripe's own API description (K13's checker), so these are
requests the real Stripe takes. Both databases: the server runs the test's own app."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe
from sqlalchemy import select
from werkzeug.serving import make_server

from kassa.clock import now
from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Dispute, LinkItem, PaymentLink
from kassa.services.api.keys import create_key
from tests.factories import make_merchant
from tests.support.app import page_text
from tests.support.browser import serving
from tests.support.checkout import signed_test_path
from tests.support.payments import actor_for, refunds_of, reload, sandbox_payment
from tests.support.stripe_params import check_request


class StripeCheckedClient(stripe.RequestsClient):
    """The SDK's own HTTP transport, refusing first any request the real Stripe API would refuse."""

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        parts = urlsplit(url)
        body = post_data.decode() if isinstance(post_data, bytes) else post_data or parts.query
        check_request(method.upper(), parts.path.removeprefix("/api"), parse_qsl(body or "", keep_blank_values=True))
        return super().request(method, url, headers, post_data)


@pytest.fixture
def kassa_url(app) -> Iterator[str]:
    """Kassa on a real port, on the test's database (SQLite or PostgreSQL)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    with serving(server):
        yield f"http://127.0.0.1:{server.server_port}"


def stripe_client(secret: str, kassa_url: str, checked: bool = True) -> stripe.StripeClient:
    """The official client pointed at Kassa; `checked=False` for a call that uses a Kassa-only parameter."""
    base = f"{kassa_url}/api"
    return stripe.StripeClient(secret, base_addresses={"api": base, "files": base, "connect": base},
                               http_client=StripeCheckedClient() if checked else stripe.RequestsClient(),
                               max_network_retries=0)


@pytest.fixture
def owner(app):
    return make_merchant("Bikes")


@pytest.fixture
def client_of(owner, kassa_url):
    _key, secret = create_key(actor_for(owner), "Shop", "test")
    return stripe_client(secret, kassa_url)


def test_i3_stripe_client_creates_and_reads_a_payment_link(app, client, owner, client_of):
    link = client_of.v1.payment_links.create(params={
        "line_items": [{"price_data": {"currency": "eur", "unit_amount": 2500,
                                       "product_data": {"name": "Bike service"}}, "quantity": 2}],
        "after_completion": {"type": "redirect", "redirect": {"url": "https://bikes.example/thanks"}},
    })
    assert link.object == "payment_link" and link.id.startswith("plink_")
    assert link.active is True and link.currency == "eur" and link.livemode is False
    assert link.after_completion.redirect.url == "https://bikes.example/thanks"
    row = db.session.scalar(select(PaymentLink).where(PaymentLink.account_id == owner.account_id))
    assert urlsplit(link.url).path == signed_test_path(row.slug, app)  # a test key's link makes test payments
    checkout = client.get(urlsplit(link.url).path, follow_redirects=True)  # the buyer's test checkout opens
    assert checkout.status_code == 200 and "Bike service" in page_text(checkout)
    item = db.session.scalar(select(LinkItem).where(LinkItem.link_id == row.id))
    assert (item.name, item.unit_amount_minor, item.quantity, item.currency) == ("Bike service", 2500, 2, "EUR")

    again = client_of.v1.payment_links.retrieve(link.id)
    assert again.to_dict() == link.to_dict()
    # A monthly price makes a subscription link, as Stripe's recurring price does.
    monthly = client_of.v1.payment_links.create(params={"line_items": [{"price_data": {
        "currency": "eur", "unit_amount": 900, "product_data": {"name": "Club"},
        "recurring": {"interval": "month"}}, "quantity": 1}]})
    db.session.rollback()  # end the test's read snapshot: the server committed since
    assert db.session.get(PaymentLink, int(monthly.id.removeprefix("plink_"))).items[0].frequency == "monthly"


def test_i3_a_bad_price_is_stripes_invalid_request_error_with_the_param(client_of):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client_of.v1.payment_links.create(params={"line_items": [{"price_data": {
            "currency": "eur", "unit_amount": 0, "product_data": {"name": "Nothing"}}, "quantity": 1}]})
    assert caught.value.http_status == 400
    assert caught.value.param.startswith("line_items[0]")
    assert caught.value.error.type == "invalid_request_error" and caught.value.user_message


def test_i3_stripe_client_lists_payments_newest_first_with_a_cursor(owner, client_of):
    ids = [sandbox_payment(owner.account_id, amount_minor=1000 + n, created_at=now() - timedelta(minutes=n)).id
           for n in range(3)]
    first = client_of.v1.payment_intents.list(params={"limit": 2})
    assert first.object == "list" and first.url == "/v1/payment_intents" and first.has_more is True
    assert [p.id for p in first.data] == [f"pi_{ids[0]}", f"pi_{ids[1]}"]
    assert first.data[0].amount == 1000 and first.data[0].status == "succeeded"
    assert first.data[0].currency == "usd" and first.data[0].latest_charge == f"ch_{ids[0]}"
    rest = client_of.v1.payment_intents.list(params={"limit": 2, "starting_after": first.data[-1].id})
    assert [p.id for p in rest.data] == [f"pi_{ids[2]}"] and rest.has_more is False
    # The SDK's auto-pagination walks the same cursor.
    assert [p.id for p in first.auto_paging_iter()] == [f"pi_{i}" for i in ids]
    assert client_of.v1.payment_intents.retrieve(f"pi_{ids[1]}").amount == 1001


def test_i3_stripe_client_refunds_and_a_refund_beyond_the_amount_is_refused(owner, client_of):
    payment = sandbox_payment(owner.account_id, amount_minor=5000)
    refund = client_of.v1.refunds.create(params={"payment_intent": f"pi_{payment.id}", "amount": 3000},
                                         options={"idempotency_key": "order-77-refund"})
    assert refund.object == "refund" and refund.id.startswith("re_")
    assert (refund.amount, refund.currency, refund.charge) == (3000, "usd", f"ch_{payment.id}")
    assert refund.reason == "requested_by_customer" and refund.status in ("pending", "succeeded")
    # The same request again (a retry with its idempotency key) is the same refund: money never moves twice.
    again = client_of.v1.refunds.create(params={"payment_intent": f"pi_{payment.id}", "amount": 3000},
                                        options={"idempotency_key": "order-77-refund"})
    assert again.id == refund.id

    with pytest.raises(stripe.InvalidRequestError) as caught:
        client_of.v1.refunds.create(params={"charge": f"ch_{payment.id}", "amount": 3000})
    assert caught.value.http_status == 400 and caught.value.param == "amount"
    assert caught.value.code == "amount_too_large" and "20.00" in caught.value.user_message
    assert [r.amount_minor for r in refunds_of(payment.id)] == [3000]
    assert reload(payment.id).refund_reserved_minor == 3000

    rest = client_of.v1.refunds.create(params={"charge": f"ch_{payment.id}"})  # no amount: what is left
    assert rest.amount == 2000
    assert reload(payment.id).refund_reserved_minor == 5000


def test_i3_stripe_client_reads_a_dispute(owner, client_of):
    payment = sandbox_payment(owner.account_id, amount_minor=4200)
    with write_transaction(db.session) as session:
        row = Dispute(account_id=owner.account_id, payment_id=payment.id, processor_ref=f"dp_bank_{payment.id}",
                      amount_minor=4200, currency="USD", reason="product_not_received",
                      evidence_due_by=now() + timedelta(days=7))
        session.add(row)
        session.flush()
        dispute_id = row.id
    dispute = client_of.v1.disputes.retrieve(f"dp_{dispute_id}")
    assert dispute.object == "dispute" and dispute.status == "needs_response"
    assert (dispute.amount, dispute.currency, dispute.reason) == (4200, "usd", "product_not_received")
    assert dispute.payment_intent == f"pi_{payment.id}" and dispute.evidence_details.has_evidence is False
    assert dispute.evidence_details.due_by > now().timestamp()


def test_i3_an_unknown_id_is_stripes_resource_missing(client_of):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client_of.v1.disputes.retrieve("dp_999999")
    assert caught.value.http_status == 404 and caught.value.code == "resource_missing"


def test_i4_stripe_client_retry_with_its_idempotency_key_gets_the_same_link(owner, client_of):
    params = {"line_items": [{"price_data": {"currency": "usd", "unit_amount": 1200,
                                            "product_data": {"name": "Lock"}}, "quantity": 1}]}
    first = client_of.v1.payment_links.create(params=params, options={"idempotency_key": "shop-order-5"})
    again = client_of.v1.payment_links.create(params=params, options={"idempotency_key": "shop-order-5"})
    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    db.session.rollback()
    assert len(db.session.scalars(select(PaymentLink).where(PaymentLink.account_id == owner.account_id)).all()) == 1


def test_i2_stripe_client_deactivates_and_reactivates_a_link(owner, client_of):
    link = client_of.v1.payment_links.create(params={"line_items": [{"price_data": {
        "currency": "usd", "unit_amount": 700, "product_data": {"name": "Bell"}}, "quantity": 1}]})
    off = client_of.v1.payment_links.update(link.id, params={"active": False})
    assert off.active is False
    db.session.rollback()
    assert db.session.get(PaymentLink, int(link.id.removeprefix("plink_"))).status == "inactive"
    assert client_of.v1.payment_links.update(link.id, params={"active": True}).active is True


def test_i2_stripe_client_lists_charges_and_refunds(owner, client_of):
    older = sandbox_payment(owner.account_id, amount_minor=3000, created_at=now() - timedelta(hours=1))
    newer = sandbox_payment(owner.account_id, amount_minor=4000, created_at=now() - timedelta(minutes=1))
    charges = client_of.v1.charges.list()
    assert [c.id for c in charges.data] == [f"ch_{newer.id}", f"ch_{older.id}"]
    charge = client_of.v1.charges.retrieve(f"ch_{older.id}")
    assert (charge.amount, charge.paid, charge.status, charge.payment_intent) == (3000, True, "succeeded",
                                                                                   f"pi_{older.id}")
    assert charge.payment_method_details.card.last4 == "4242" and charge.refunded is False

    first = client_of.v1.refunds.create(params={"charge": f"ch_{older.id}", "amount": 1000})
    second = client_of.v1.refunds.create(params={"payment_intent": f"pi_{newer.id}"})
    assert [r.id for r in client_of.v1.refunds.list().data] == [second.id, first.id]
    only_older = client_of.v1.refunds.list(params={"charge": f"ch_{older.id}"})
    assert [r.id for r in only_older.data] == [first.id] and only_older.url == "/v1/refunds"
    assert client_of.v1.refunds.retrieve(first.id).amount == 1000
    page = client_of.v1.refunds.list(params={"limit": 1})
    assert page.has_more is True and [r.id for r in page.auto_paging_iter()] == [second.id, first.id]


def test_i1_stripe_client_with_a_restricted_key_gets_permission_error(owner, kassa_url):
    payment = sandbox_payment(owner.account_id, amount_minor=2000)
    _key, secret = create_key(actor_for(owner), "Reports", "test", {"payments": "read"})
    reports = stripe_client(secret, kassa_url)
    assert [p.id for p in reports.v1.payment_intents.list().data] == [f"pi_{payment.id}"]
    with pytest.raises(stripe.PermissionError) as caught:
        reports.v1.refunds.create(params={"payment_intent": f"pi_{payment.id}"})
    assert caught.value.http_status == 403 and reload(payment.id).refund_reserved_minor == 0


def test_i1_stripe_client_with_a_revoked_key_gets_authentication_error(owner, kassa_url):
    from kassa.services.api.keys import revoke_key

    key, secret = create_key(actor_for(owner), "Old", "test")
    revoke_key(actor_for(owner), key.id)
    with pytest.raises(stripe.AuthenticationError):
        stripe_client(secret, kassa_url).v1.payment_intents.list()


def test_i2_stripe_client_uses_the_new_resources_unchanged(owner, client_of):
    """I2 through the official package (each request checked against Stripe's description): products, payouts,
    balance transactions, expand, a dispute's evidence and acceptance, a subscription's cancellation."""
    from kassa.models import Contact, LedgerEntry, Payout, Subscription

    product = client_of.v1.products.create(params={
        "name": "Bike service", "default_price_data": {"currency": "eur", "unit_amount": 4500}})
    assert product.id.startswith("prod_") and product.active is True
    assert [p.id for p in client_of.v1.products.list(params={"active": True}).auto_paging_iter()] == [product.id]
    assert client_of.v1.products.retrieve(product.id).name == "Bike service"

    day = now().date()
    with write_transaction(db.session) as session:
        payout = Payout(account_id=owner.account_id, mode="test", amount_minor=7000, currency="USD",
                        status="paid", payout_date=day - timedelta(days=1), arrival_date=day)
        session.add(payout)
        session.flush()
        session.add(LedgerEntry(account_id=owner.account_id, mode="test", type="charge", amount_minor=7000,
                                currency="USD", payout_id=payout.id, source_key="t-1", available_on=day))
        contact = Contact(account_id=owner.account_id, mode="test", email="rita@example.com")
        session.add(contact)
        session.flush()
        sub = Subscription(account_id=owner.account_id, mode="test", contact_id=contact.id, frequency="monthly",
                           term_type="auto_renew", amount_minor=1900, currency="USD", payments_made=1,
                           anchor_at=now(), next_charge_at=now() + timedelta(days=30))
        session.add(sub)
        session.flush()
        payout_id, sub_id = payout.id, sub.id
    assert [p.id for p in client_of.v1.payouts.list(params={"limit": 5}).data] == [f"po_{payout_id}"]
    assert client_of.v1.payouts.retrieve(f"po_{payout_id}").status == "paid"
    entries = client_of.v1.balance_transactions.list(params={"payout": f"po_{payout_id}"}).data
    assert [(e.amount, e.type) for e in entries] == [(7000, "charge")]

    payment = sandbox_payment(owner.account_id, amount_minor=3000, mode="test", contact_id=contact.id)
    client_of.v1.refunds.create(params={"payment_intent": f"pi_{payment.id}", "amount": 500})
    expanded = client_of.v1.payment_intents.retrieve(f"pi_{payment.id}", params={"expand": ["customer", "refunds"]})
    assert expanded.customer.email == "rita@example.com" and expanded.refunds.data[0].amount == 500

    later = client_of.v1.subscriptions.update(f"sub_{sub_id}", params={"cancel_at_period_end": True})
    assert later.cancel_at_period_end is True
    assert client_of.v1.subscriptions.cancel(f"sub_{sub_id}").status == "canceled"

    disputed = sandbox_payment(owner.account_id, amount_minor=2500, mode="test", card="4000000000000259")
    from kassa.services.platform.ticks import run_tick

    assert not run_tick().failed
    db.session.rollback()
    first = db.session.scalar(select(Dispute).where(Dispute.payment_id == disputed.id))
    answered = client_of.v1.disputes.update(f"dp_{first.id}", params={
        "evidence": {"uncategorized_text": "Serviced on 2 Dec; the buyer collected the bike."}, "submit": True})
    assert answered.status == "under_review" and answered.evidence_details.has_evidence is True
    other = sandbox_payment(owner.account_id, amount_minor=1500, mode="test", card="4000000000000259")
    assert not run_tick().failed
    db.session.rollback()
    second = db.session.scalar(select(Dispute).where(Dispute.payment_id == other.id))
    assert client_of.v1.disputes.close(f"dp_{second.id}").status == "lost"
