"""K12: a merchant connects Stripe test keys beside (or without) live keys and chooses, in Settings → Payments,
whether test mode uses Kassa's built-in sandbox or Stripe test mode; Stripe's test cards then work as in Stripe.
Test payments made through Stripe are test payments (mode "test") recorded with processor "stripe"; K8's
renewals run through it too, off-session, under the sandbox's per-period keys. Stripe is localstripe."""

from __future__ import annotations

from datetime import date

from bs4 import BeautifulSoup
from sqlalchemy import select

from kassa.clock import now
from kassa.extensions import db
from kassa.models import Account, Payment, StripeConnection, Subscription
from kassa.processors.registry import processor_for, processor_name
from kassa.processors.sandbox import SandboxProcessor
from kassa.processors.stripe import StripeProcessor
from kassa.services.checkout.checkout import checkout_view
from kassa.services.payouts.payouts import pays_out_itself
from tests.support.app import page_text
from tests.support.billing import advance, frozen, reload, renewals_of, subscription_shop
from tests.support.checkout import start_checkout, submit_checkout
from tests.support.checkout_flow import field_error
from tests.support.localstripe import fresh_localstripe, localstripe_url  # noqa: F401  (fixtures)
from tests.support.payments import login
from tests.support.stripe_doubles import client_for
from tests.web.test_k8_renewals_off_session import (
    _connect_stripe,
    _payment_method,
    app_config,  # noqa: F401  (localstripe as Stripe's hosts)
)

TEST_PK = "pk_test_kassa0000000000"


def _choose(client, choice: str, retry_days: str = "1, 3, 5"):
    return client.post("/settings/payments", data={"retry_days": retry_days, "test_processor": choice})


def _test_processor(account_id: int) -> str:
    db.session.rollback()
    return db.session.get(Account, account_id).test_processor


def _radio_labels(response) -> list[str]:
    soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    return [soup.find("label", attrs={"for": radio["id"]}).get_text(strip=True)
            for radio in soup.select('input[name="test_processor"]')]


def test_k12_choosing_stripe_test_mode_persists_and_test_payments_then_go_through_stripe(client, app):
    owner, _link = subscription_shop()
    login(client, owner)
    assert _radio_labels(client.get("/settings/payments")) == ["Kassa's built-in sandbox"]
    _connect_stripe(owner.account_id, "test")
    assert _radio_labels(client.get("/settings/payments")) == ["Kassa's built-in sandbox", "Stripe test mode"]

    response = _choose(client, "stripe")

    assert response.status_code == 303
    assert _test_processor(owner.account_id) == "stripe"
    page = client.get("/settings/payments")
    assert BeautifulSoup(page.get_data(as_text=True), "html.parser").select_one(
        'input[name="test_processor"][value="stripe"]').has_attr("checked")
    assert isinstance(processor_for("test", owner.account_id), StripeProcessor)
    assert processor_name("test", owner.account_id) == "stripe"
    # Stripe pays its test balance out by itself: Kassa makes no daily test payout of its own (K11).
    assert pays_out_itself(owner.account_id, "test")
    # Saving the other settings without the field (an older form) keeps the choice.
    assert client.post("/settings/payments", data={"retry_days": "2"}).status_code == 303
    assert _test_processor(owner.account_id) == "stripe"

    assert _choose(client, "sandbox").status_code == 303
    assert isinstance(processor_for("test", owner.account_id), SandboxProcessor)
    assert processor_name("test", owner.account_id) == "sandbox"
    assert not pays_out_itself(owner.account_id, "test")


def test_k12_choosing_stripe_without_test_keys_is_refused_at_the_field(client, app):
    owner, _link = subscription_shop()
    login(client, owner)
    _connect_stripe(owner.account_id, "live")  # live keys are not test keys

    response = _choose(client, "stripe", retry_days="2, 4")

    assert response.status_code == 422
    assert "Connect Stripe with test keys" in field_error(response, "test_processor")
    assert _test_processor(owner.account_id) == "sandbox"
    assert db.session.get(Account, owner.account_id).retry_days == [1, 3, 5]  # nothing saved
    assert _choose(client, "paypal").status_code == 422
    assert _test_processor(owner.account_id) == "sandbox"


def test_k12_disconnecting_the_test_keys_falls_back_to_the_sandbox(client, app):
    owner, link = subscription_shop()
    login(client, owner)
    _connect_stripe(owner.account_id, "test")
    assert _choose(client, "stripe").status_code == 303
    connection = db.session.scalar(select(StripeConnection).where(StripeConnection.account_id == owner.account_id))
    path = start_checkout(client, link.slug)
    assert checkout_view(path.rsplit("/", 1)[-1]).stripe_publishable_key == TEST_PK

    response = client.post(f"/settings/payments/stripe/{connection.id}/disconnect")

    assert response.status_code in (200, 204, 303)
    assert isinstance(processor_for("test", owner.account_id), SandboxProcessor)
    assert processor_name("test", owner.account_id) == "sandbox"
    assert checkout_view(path.rsplit("/", 1)[-1]).stripe_publishable_key is None
    assert _radio_labels(client.get("/settings/payments")) == ["Kassa's built-in sandbox"]
    # The sandbox's own test cards work again at once.
    assert submit_checkout(client, start_checkout(client, link.slug), email="ann@example.com").status_code == 303


def test_k12_a_test_checkout_shows_the_stripe_key_only_when_stripe_test_mode_is_chosen(client, app):
    owner, link = subscription_shop()
    login(client, owner)
    _connect_stripe(owner.account_id, "test")
    token = start_checkout(client, link.slug).rsplit("/", 1)[-1]
    assert checkout_view(token).stripe_publishable_key is None  # connected, but the sandbox is chosen
    _choose(client, "stripe")
    assert checkout_view(token).stripe_publishable_key == TEST_PK


def test_k12_k8_a_stripe_test_checkout_charges_through_stripe_and_renews_off_session_on_the_test_clock(
        fresh_localstripe, client, app):  # noqa: F811
    url = fresh_localstripe
    with frozen(now()):
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        login(client, owner)
        _connect_stripe(owner.account_id, "test")
        assert _choose(client, "stripe").status_code == 303
        client.post("/logout")
        method = _payment_method(url, "4242424242424242")  # Stripe.js's part, in the buyer's browser

        path = start_checkout(client, link.slug)
        response = submit_checkout(client, path, email="sam@example.com", payment_method=method, card_number=None,
                                   card_expiry=None, card_cvc=None)

        assert response.status_code == 303, page_text(response)
        first = db.session.scalar(select(Payment).where(Payment.account_id == owner.account_id))
        assert (first.mode, first.processor, first.status, first.card_last4) == ("test", "stripe", "succeeded",
                                                                                 "4242")
        stripe = client_for(url)
        first_intent = stripe.v1.payment_intents.retrieve(first.processor_ref)
        assert first_intent.status == "succeeded" and first_intent.customer  # saved for later (K8)
        sub = db.session.scalars(select(Subscription).where(Subscription.link_id == link.id)).one()
        assert sub.payment_method_token == method and sub.mode == "test"

        today = sub.next_charge_at.date()
        advance(owner, to_date=date(today.year + (today.month == 12), today.month % 12 + 1, 1))

        (renewal,) = renewals_of(sub)
        assert (renewal.status, renewal.mode, renewal.processor) == ("succeeded", "test", "stripe")
        assert renewal.idempotency_key == f"sub-{sub.id}-p1-a1"  # the sandbox's per-period key
        intent = stripe.v1.payment_intents.retrieve(renewal.processor_ref)
        assert intent.metadata["kassa_key"] == renewal.idempotency_key
        assert (intent.customer, intent.payment_method, intent.amount) == (first_intent.customer, method, 1000)
        assert reload(sub).payments_made == 2


def test_k12_the_sandbox_controls_say_so_and_the_test_card_buttons_hide_with_stripe_test_mode(client, app):
    from tests.support.billing import buy

    owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
    sub = buy(client, link)
    login(client, owner)
    page = page_text(client.get(f"/subscriptions/{sub.id}"))
    assert "Test card from the next charge" in page and "tests with Stripe test mode" not in page

    _connect_stripe(owner.account_id, "test")
    _choose(client, "stripe")
    page = page_text(client.get(f"/subscriptions/{sub.id}"))
    assert "Test card from the next charge" not in page
    assert "the test clock moves Kassa's renewals, retries and reminders only" in page
    refused = client.post(f"/subscriptions/{sub.id}/test-card", data={"decline": "1"}, follow_redirects=True)
    assert "apply to Kassa's sandbox only" in page_text(refused)
