"""Q9: free trials on a link's recurring items.

A link-level trial of N days (1–730, only with a recurring item) makes every recurring group free until the
trial's end: the order summary says "Free for 14 days, then €10.00 every month", due today is the one-time
items only. With nothing due the card is saved (the sandbox checks it as a charge would) and no payment is
recorded; the subscription starts trialing and its first period is charged off-session at the trial's end, by
the same billing run (and B9 test clock) as every renewal: exactly once, however often or in parallel it runs.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from kassa.errors import ValidationFailed
from kassa.extensions import db
from kassa.models import (
    CheckoutSession,
    Contact,
    LedgerEntry,
    Payment,
    PaymentLink,
    Subscription,
)
from kassa.order_summary import OrderItem, build_order_summary, group_sentence
from kassa.services.billing.subscriptions import advance_clock, cancel, set_test_card_behaviour
from kassa.services.links.snapshots import link_snapshot
from tests.factories import make_merchant
from tests.support.billing import (
    START,
    actor,
    advance,
    buy,
    frozen,
    reload,
    renewals_of,
    sandbox_charge_count,
)
from tests.support.checkout import start_checkout, submit_checkout
from tests.support.checkout_flow import (
    count,
    emails,
    field_error,
    item,
    make_link,
    plain,
    soup_of,
)
from tests.support.ledger import assert_ledger_matches_processor
from tests.support.payments import login

DECLINED = "4000000000000002"


def _trial_shop(*, trial_days: str = "14", one_time: bool = False, term_type: str = "auto_renew",
                term_count: str = ""):
    owner = make_merchant("Roastery", currency="EUR", country="NL")
    items = [item("Coffee club", "10.00", frequency="monthly", term_type=term_type, term_count=term_count)]
    if one_time:
        items.append(item("Grinder", "25.00"))
    link = make_link(owner, items=items, currency="EUR", trial_days=trial_days)
    return owner, link


def _text(response) -> str:
    return plain(soup_of(response).get_text(" "))


# -- the one pricing function -------------------------------------------------------------------------


def test_q9_order_summary_puts_trial_groups_after_today_and_says_so():
    lines = [OrderItem("Club", "", 1000, "EUR", 1, "monthly", "auto_renew", None),
             OrderItem("Mug", "", 1500, "EUR", 2, "one_time", None, None)]
    summary = build_order_summary(lines, "EUR", trial_days=14)
    assert summary.due_today.amount_minor == 3000  # the one-time lines only
    assert [line.name for line in summary.lines_today] == ["Mug"]
    assert summary.gross_today.amount_minor == 3000 and summary.trial_days == 14
    (group,) = summary.groups
    assert group.amount.amount_minor == 1000 and group.on_trial
    assert group_sentence(group, "en") == "Free for 14 days, then €10.00 every month"
    one_day = build_order_summary(lines[:1], "EUR", trial_days=1)
    assert one_day.due_today.amount_minor == 0
    assert group_sentence(one_day.groups[0], "en") == "Free for 1 day, then €10.00 every month"
    # Without a trial nothing changes: the first period is due today.
    assert build_order_summary(lines, "EUR").due_today.amount_minor == 4000


# -- the link editor ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("days", "message"), [
    ("0", "Enter a number of days from 1 to 730, or leave it empty for no trial."),
    ("731", "Enter a number of days from 1 to 730, or leave it empty for no trial."),
    ("two weeks", "Enter a number of days from 1 to 730, or leave it empty for no trial."),
])
def test_q9_a_bad_trial_is_refused_at_its_field_and_nothing_is_saved(app, days, message):
    owner = make_merchant()
    with pytest.raises(ValidationFailed) as refused:
        make_link(owner, items=[item("Club", "10.00", frequency="monthly", term_type="auto_renew")],
                  trial_days=days)
    assert refused.value.errors["trial_days"] == message
    assert count(PaymentLink) == 0


def test_q9_a_trial_needs_a_recurring_item(app):
    owner = make_merchant()
    with pytest.raises(ValidationFailed) as refused:
        make_link(owner, items=[item("Ticket", "10.00")], trial_days="14")
    assert refused.value.errors["trial_days"] == (
        "A free trial needs a recurring item. Make an item recurring, or leave the trial empty.")
    assert count(PaymentLink) == 0


def test_q9_the_trial_is_stored_in_the_link_and_its_snapshot_and_the_editor_shows_it(client):
    owner, link = _trial_shop()
    assert link.trial_days == 14 and link_snapshot(link)["trial_days"] == 14
    login(client, owner)
    page = client.get(f"/links/{link.id}/edit")
    assert soup_of(page).find(id="f-trial_days")["value"] == "14"
    assert "Free for 14 days, then €10.00 every month" in _text(page)
    # The live preview follows what is typed, before saving.
    preview = client.post("/links/preview", data={
        "name": "Club", "currency": "EUR", "items-0-name": "Coffee club", "items-0-unit_price": "10.00",
        "items-0-quantity": "1", "items-0-frequency": "monthly", "items-0-term_type": "auto_renew",
        "trial_days": "30", "allow_card": "1"})
    assert "Free for 30 days, then €10.00 every month" in _text(preview)
    assert "Start free trial" in _text(preview)


# -- checkout with nothing due: the card is saved, nothing charged ----------------------------------


def test_q9_a_trial_checkout_saves_the_card_charges_nothing_and_records_no_payment(client):
    with frozen():
        owner, link = _trial_shop()
        path = start_checkout(client, link.slug)
        page = client.get(path)
        text = _text(page)
        assert "Free for 14 days, then €10.00 every month" in text
        assert soup_of(page).find(id="summary-total").get_text(strip=True) == "€0.00"
        assert soup_of(page).find(id="pay-label").get_text(strip=True) == "Start free trial"
        response = submit_checkout(client, path)
        assert response.status_code == 303
        confirmation = client.get(path)
        assert "Your free trial has started" in _text(confirmation)
        assert "Free trial until Jan 29, 2027, then €10.00 every month" in _text(confirmation)
        db.session.rollback()
        sub = db.session.scalar(select(Subscription).where(Subscription.link_id == link.id))
        assert sub.status == "trialing" and sub.payments_made == 0 and sub.first_payment_id is None
        assert sub.trial_ends_at == START + timedelta(days=14) == sub.next_charge_at
        assert sub.card_last4 == "4242" and sub.payment_method_token
        checkout = db.session.scalar(select(CheckoutSession).where(CheckoutSession.link_id == link.id))
        assert checkout.status == "completed" and checkout.payment_id is None
        assert sub.started_by_checkout_id == checkout.id
        # Nothing paid: no payment, no ledger entry, no sandbox charge; the contact and the email are there.
        assert count(Payment) == 0 and count(LedgerEntry) == 0 and sandbox_charge_count(owner.account_id) == 0
        assert count(Contact) == 1
        (mail,) = emails("subscription_trial_started")
        assert "Free trial until Jan 29, 2027, then €10.00 every month" in plain(mail.text_body)
        # The merchant's subscription page says it, and a double submit changes nothing.
        assert submit_checkout(client, path).status_code == 303
        assert count(Subscription) == 1
        login(client, owner)
        detail = client.get(f"/subscriptions/{sub.id}")
        assert "Free trial until Jan 29, 2027, then €10.00 every month" in _text(detail)
        assert "Trial" in _text(detail)
        assert client.get("/payments/", follow_redirects=True).status_code == 200


def test_q9_a_declined_card_is_refused_and_nothing_is_saved(client):
    with frozen():
        _owner, link = _trial_shop()
        path = start_checkout(client, link.slug)
        response = submit_checkout(client, path, card_number=DECLINED)
        assert response.status_code == 422
        assert field_error(response, "card_number") == "Your card was declined."
        assert count(Subscription) == 0 and count(Payment) == 0 and count(Contact) == 0
        # The buyer tries another card on the same checkout: that works.
        assert submit_checkout(client, path).status_code == 303
        assert reload(db.session.scalar(select(Subscription.id))).status == "trialing"


def test_q9_one_time_items_with_a_trial_charge_only_the_one_time_part(client):
    with frozen():
        owner, link = _trial_shop(one_time=True)
        path = start_checkout(client, link.slug)
        assert soup_of(client.get(path)).find(id="summary-total").get_text(strip=True) == "€25.00"
        assert submit_checkout(client, path).status_code == 303
        confirmation = _text(client.get(path))
        assert "You paid €25.00" in confirmation
        assert "Free trial until Jan 29, 2027, then €10.00 every month" in confirmation
        db.session.rollback()
        (payment,) = db.session.scalars(select(Payment)).all()
        assert payment.amount_minor == 2500 and payment.net_minor == 2500 and payment.gross_minor == 2500
        assert [line.name for line in payment.items] == ["Grinder"]
        sub = db.session.scalar(select(Subscription))
        assert sub.status == "trialing" and sub.payments_made == 0 and sub.payment_method_token
        assert_ledger_matches_processor(owner.account_id)


# -- the first charge at the trial's end (B9 test clock) --------------------------------------------


def test_q9_advancing_past_the_trial_charges_the_first_period_once(client):
    with frozen():
        owner, link = _trial_shop()
        sub = buy(client, link)
        advance(owner, sub, days=13)
        assert renewals_of(sub) == [] and reload(sub).status == "trialing"
        advance(owner, sub, days=2)
        (first,) = renewals_of(sub)
        assert (first.amount_minor, first.currency, first.status) == (1000, "EUR", "succeeded")
        assert first.created_at.date() == date(2027, 1, 29) and first.subscription_period == 0
        after = reload(sub)
        assert after.status == "active" and after.payments_made == 1
        assert after.next_charge_at.date() == date(2027, 2, 28)
        # Advancing again before the next period charges nothing more; the next period then follows normally.
        advance(owner, sub, days=10)
        assert len(renewals_of(sub)) == 1
        advance(owner, sub, days=25)
        assert [p.amount_minor for p in renewals_of(sub)] == [1000, 1000]
        assert sandbox_charge_count(owner.account_id) == 2
        assert_ledger_matches_processor(owner.account_id)


def test_q9_two_advances_at_once_charge_the_first_period_once(client, app):
    with frozen():
        owner, link = _trial_shop()
        sub = buy(client, link)
        barrier = threading.Barrier(3)

        def move() -> dict[str, int]:
            with app.app_context():
                try:
                    barrier.wait(timeout=30)
                    return advance_clock(actor(owner), sub.id, days=15)
                finally:
                    db.session.remove()

        with ThreadPoolExecutor(max_workers=3) as pool:
            results = [f.result(timeout=240) for f in [pool.submit(move) for _ in range(3)]]
        assert all(result["failed"] == 0 for result in results)
        # Each click moves the clock 15 days from where it finds it: on a loaded machine they may run one
        # after another (45 days: the month after the trial falls due too). Each period is charged once.
        periods = [p.subscription_period for p in renewals_of(sub)]
        assert periods in ([0], [0, 1]), periods
        assert sandbox_charge_count(owner.account_id) == len(periods)
        assert reload(sub).payments_made == len(periods) and reload(sub).status == "active"


def test_q9_cancelled_during_the_trial_is_never_charged(client):
    with frozen():
        owner, link = _trial_shop()
        now_sub, later_sub = buy(client, link), buy(client, link, email="later@example.com")
        cancel(actor(owner), now_sub.id, "now")
        cancel(actor(owner), later_sub.id, "period_end")
        advance(owner, days=90)
        assert renewals_of(now_sub) == [] and renewals_of(later_sub) == []
        assert sandbox_charge_count(owner.account_id) == 0
        assert reload(now_sub).status == "cancelled" and reload(later_sub).status == "cancelled"
        assert reload(later_sub).ended_at == START + timedelta(days=14)  # ended at the trial's end


def test_q9_a_declined_first_charge_after_the_trial_goes_past_due_and_is_retried(client):
    with frozen():
        owner, link = _trial_shop()
        sub = buy(client, link)
        set_test_card_behaviour(actor(owner), sub.id, True)
        advance(owner, sub, days=14)
        (failed,) = renewals_of(sub)
        assert failed.status == "failed" and failed.amount_minor == 1000
        after = reload(sub)
        assert after.status == "past_due" and after.payments_made == 0
        assert after.next_charge_at.date() == date(2027, 1, 30)  # retried after the first retry day (1)
        assert emails("subscription_payment_failed")
        set_test_card_behaviour(actor(owner), sub.id, False)
        advance(owner, sub, days=1)
        assert [p.status for p in renewals_of(sub)] == ["failed", "succeeded"]
        assert reload(sub).status == "active" and reload(sub).payments_made == 1


def test_q9_a_fixed_term_of_two_after_a_trial_charges_twice_then_completes(client):
    with frozen():
        owner, link = _trial_shop(term_type="fixed", term_count="2")
        sub = buy(client, link)
        advance(owner, sub, days=80)
        assert [p.amount_minor for p in renewals_of(sub)] == [1000, 1000]
        assert reload(sub).status == "completed"


def test_q9_another_merchant_gets_404_for_a_trial_subscription(client):
    with frozen():
        _owner, link = _trial_shop()
        sub = buy(client, link)
        login(client, make_merchant("Other"))
        assert client.get(f"/subscriptions/{sub.id}").status_code == 404
        assert client.post(f"/subscriptions/{sub.id}/test-clock", data={"step": "month"}).status_code == 404
        assert renewals_of(sub) == []


def test_q9_the_dutch_checkout_says_it_in_dutch(client):
    _owner, link = _trial_shop()
    path = start_checkout(client, link.slug, lang="nl")
    text = _text(client.get(path))
    assert "Gratis gedurende 14 dagen, daarna € 10,00 elke maand" in text
