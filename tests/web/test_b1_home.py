"""B1: the home says what needs the merchant — disputes with their countdown (most urgent first), past-due
subscriptions, failed payouts, paused links, failed exports and today's figures against last week, each
linking to where it is handled; the bell announces disputes, failed renewals and failed payouts once each;
onboarding cards go once done; test data only with the switch on; another merchant's items never show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Role, User
from tests.factories import make_merchant, make_payment, make_user
from tests.support.app import page_text
from tests.support.checkout_flow import make_link
from tests.support.home import (
    attention_items,
    bell,
    dispute_event,
    fail_payout,
    fail_renewal,
    failing_renewal,
    in_transit_payout,
    open_dispute_on,
)
from tests.support.payments import login, soup_of


def view_test_data(user: User, on: bool = True) -> None:
    with write_transaction(db.session) as session:
        session.get(User, user.id).view_test_data = on


def attention_rows(response) -> list[str]:
    return [" ".join(li.get_text(" ").split()) for li in soup_of(response).select(".attention__item")]


def test_b1_home_lists_every_kind_of_item_with_the_link_that_handles_it(client):
    owner = make_merchant()
    items = attention_items(owner)
    view_test_data(owner)
    login(client, owner)
    response = client.get("/")
    assert response.status_code == 200
    rows = attention_rows(response)
    assert len(rows) == 5
    assert "Dispute" in rows[0] and "angry@example.com" in rows[0] and "days left to respond" in rows[0]
    assert any("Past due" in row and "renewal@example.com" in row for row in rows)
    assert any("Payout failed" in row and "PO-" in row and "bank account was closed" in row for row in rows)
    assert any("Link paused" in row and "Spring concert" in row for row in rows)
    assert any("Export failed" in row and "Payments March" in row for row in rows)
    hrefs = {a["href"] for a in soup_of(response).select(".attention__item a")}
    assert hrefs == {f"/disputes/{items.dispute.id}/counter/1", f"/subscriptions/{items.subscription.id}",
                     f"/payouts/{items.payout.id}", f"/links/{items.link.id}/edit", "/exports/"}
    for href in hrefs:  # each of them opens
        assert client.get(href).status_code in (200, 302), href


def test_b1_disputes_most_urgent_first_with_a_countdown(client):
    owner = make_merchant()
    later = make_payment(owner.account_id, email="later@example.com")
    sooner = make_payment(owner.account_id, email="sooner@example.com")
    overdue = make_payment(owner.account_id, email="overdue@example.com")
    open_dispute_on(later, due_in=timedelta(days=9, hours=2))
    open_dispute_on(sooner, due_in=timedelta(days=1, hours=5, minutes=30))
    open_dispute_on(overdue, due_in=timedelta(days=1))
    view_test_data(owner)
    login(client, owner)
    with time_machine.travel(datetime.now(UTC) + timedelta(days=1, hours=1), tick=False):
        rows = attention_rows(client.get("/"))
    assert [row.split(" by ")[1].split(":")[0] for row in rows] == [
        "overdue@example.com", "sooner@example.com", "later@example.com"]
    assert "Response overdue" in rows[0]
    assert "4 hours left to respond" in rows[1]
    assert "8 days left to respond" in rows[2]


def test_b1_empty_home_says_nothing_needs_you(client):
    owner = make_merchant()
    login(client, owner)
    response = client.get("/")
    text = page_text(response)
    assert "You're all caught up." in text
    assert not attention_rows(response)


def test_b1_test_items_only_with_view_test_data_and_live_items_always(client):
    owner = make_merchant()
    open_dispute_on(make_payment(owner.account_id, mode="test", email="testbuyer@example.com"))
    open_dispute_on(make_payment(owner.account_id, mode="live", email="livebuyer@example.com"))
    fail_renewal(failing_renewal(owner.account_id, mode="test", email="testsub@example.com"))
    fail_payout(in_transit_payout(owner.account_id, mode="test").id)
    view_test_data(owner, False)
    login(client, owner)
    rows = " ".join(attention_rows(client.get("/")))
    assert "livebuyer@example.com" in rows
    assert "testbuyer@example.com" not in rows and "testsub@example.com" not in rows and "PO-" not in rows
    view_test_data(owner)
    rows = " ".join(attention_rows(client.get("/")))
    assert "testbuyer@example.com" in rows and "testsub@example.com" in rows and "PO-" in rows


def test_b1_another_merchants_items_never_show_and_their_links_are_404(client):
    other = make_merchant()
    items = attention_items(other)
    owner = make_merchant()
    view_test_data(owner)
    login(client, owner)
    response = client.get("/")
    assert not attention_rows(response)
    assert "angry@example.com" not in page_text(response)
    for href in (f"/disputes/{items.dispute.id}/counter/1", f"/subscriptions/{items.subscription.id}",
                 f"/payouts/{items.payout.id}", f"/links/{items.link.id}/edit"):
        assert client.get(href).status_code == 404, href


def test_b1_todays_figures_against_the_same_weekday_last_week(client):
    owner = make_merchant()
    monday = datetime(2027, 3, 8, 15, 0, tzinfo=UTC)  # the account's zone is UTC
    with time_machine.travel(monday, tick=False):
        for minutes, amount in ((60, 5000), (120, 2500)):
            make_payment(owner.account_id, mode="live", amount_minor=amount, created_at=monday - timedelta(minutes=minutes))
        make_payment(owner.account_id, mode="live", amount_minor=4000, created_at=monday - timedelta(days=7, hours=1))
        # Later in the day last week: not yet "up to the same time", so not compared.
        make_payment(owner.account_id, mode="live", amount_minor=9900, created_at=monday - timedelta(days=7) + timedelta(hours=2))
        make_payment(owner.account_id, mode="test", amount_minor=7777, created_at=monday - timedelta(minutes=5))
        view_test_data(owner, False)  # the test payment counts only with the switch on
        login(client, owner)
        response = client.get("/")
    stats = [" ".join(s.get_text(" ").split()) for s in soup_of(response).select("#today-title ~ .stats .stat")]
    assert stats[0].startswith("Gross volume $75.00") and "+88 %" in stats[0] and "last week: $40.00" in stats[0]
    assert stats[1].startswith("Successful payments 2") and "+100 %" in stats[1]
    assert stats[2].startswith("Refunds $0.00")
    assert "Monday" in page_text(response)


def test_b1_onboarding_cards_disappear_once_done(client):
    owner = make_merchant()
    login(client, owner)
    steps = [h.get_text() for h in soup_of(client.get("/")).select(".steps__item h3")]
    assert steps == ["Brand your checkout", "Create a payment link", "Test it"]
    make_link(owner)
    make_payment(owner.account_id, mode="test")
    steps = [h.get_text() for h in soup_of(client.get("/")).select(".steps__item h3")]
    assert steps == ["Brand your checkout"]
    page = client.get("/settings/branding")
    token = soup_of(page).select_one('input[name="csrf_token"]')["value"]
    client.post("/settings/branding", data={"csrf_token": token, "brand_color": "#2f5bd3"})
    assert not soup_of(client.get("/")).select(".steps__item")


def test_b1_disputes_are_in_the_main_menu(client):
    owner = make_merchant()
    make_payment(owner.account_id)
    login(client, owner)
    nav = soup_of(client.get("/")).select_one("nav.mainnav")
    link = next(a for a in nav.select("a") if a.get_text() == "Disputes")
    assert link["href"] == "/payments/disputes"
    page = client.get(link["href"])
    current = soup_of(page).select_one('nav.mainnav a[aria-current="page"]')
    assert current.get_text() == "Disputes"


def test_b1_bell_announces_dispute_failed_renewal_and_failed_payout_once_each(client):
    owner = make_merchant()
    manager = make_user(owner.account_id, Role.PAYMENTS_MANAGER)
    member = make_user(owner.account_id, Role.MEMBER)
    payment = make_payment(owner.account_id, amount_minor=8000, email="angry@example.com")
    open_dispute_on(payment)
    from kassa.services.events import apply_event

    assert apply_event("sandbox", dispute_event(payment)) is False  # the same event replayed
    assert apply_event("sandbox", dispute_event(payment, event_id="evt_other_delivery")) is True  # redelivered
    renewal = failing_renewal(owner.account_id)
    assert fail_renewal(renewal) == 1
    assert fail_renewal(renewal) == 0
    payout = in_transit_payout(owner.account_id)
    assert fail_payout(payout.id) is True
    assert fail_payout(payout.id) is False
    for user in (owner, manager):
        texts = [note.text for note in bell(user.id)]
        assert len(texts) == 3, texts
        assert texts[0].startswith("Test: New dispute of $80.00 from angry@example.com: respond by")
        assert texts[1] == "Test: A subscription renewal of $19.00 for renewal@example.com failed."
        assert texts[2].startswith(f"Test: Payout PO-{payout.id:06d} of $123.45 failed")
    assert bell(member.id) == []
    login(client, manager)
    page = client.get("/exports/notifications")
    assert "New dispute of $80.00" in page_text(page)
    assert soup_of(client.get("/")).select_one(".bell__count").get_text(" ").startswith("3")


def test_b1_bell_speaks_each_users_language(client):
    owner = make_merchant()
    with write_transaction(db.session) as session:
        session.get(User, owner.id).language = "nl"
    open_dispute_on(make_payment(owner.account_id, amount_minor=8000, mode="live", email="boos@example.com"))
    assert bell(owner.id)[0].text.startswith("Nieuw")
