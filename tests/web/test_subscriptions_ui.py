"""The subscription screens (S1–S3, T5, A1): the list with its columns and filters, a subscription's page
(payments, schedule, timeline, actions), the cancel dialog and the test clock form."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from bs4 import BeautifulSoup

from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Role, Subscription
from kassa.services.billing.subscriptions import cancel, set_test_card_behaviour
from tests.factories import make_user
from tests.support.app import page_text
from tests.support.billing import actor, advance, buy, clock_now, frozen, reload, subscription_shop
from tests.support.checkout_flow import item, make_link, plain
from tests.support.payments import login


def _soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def _text(node) -> str:
    return plain(node.get_text(" ")) if node is not None else ""


def _rows(response) -> list[dict[str, str]]:
    soup = _soup(response)
    table = soup.select_one("#results table")
    if table is None:
        return []
    headers = [_text(th) for th in table.select("thead th")]
    return [dict(zip(headers, [_text(cell) for cell in tr.find_all(["th", "td"], recursive=False)], strict=True))
            for tr in table.select("tbody tr")]


def _emails(response) -> list[str]:
    return sorted(row["Contact"].split()[-1] for row in _rows(response))


def _flash(response) -> str:
    return " ".join(_text(node) for node in _soup(response).select("#toasts .toast"))


@pytest.fixture
def shop(client, app):
    """One account with subscriptions in every state, the clock at March 16, 2027, noon (UTC):

    ann  monthly × 7, $10      3 of 7 paid, active, next Apr 15
    bob  quarterly, $30        auto-renew, 1 paid, next Apr 15
    cy   monthly, $20          auto-renew, Mar 15 declined: past due, retry Mar 19
    dee  weekly × 2, $5        completed
    eve  monthly, $12          cancelled
    """
    with frozen():
        owner, ann_link = subscription_shop("Screens Shop", frequency="monthly", term_type="fixed", term_count="7",
                                            name="Piano lessons")
        links = {
            "bob": make_link(owner, items=[item("Magazine", "30.00", frequency="quarterly")], name="Magazine"),
            "cy": make_link(owner, items=[item("Gym", "20.00", frequency="monthly")], name="Gym"),
            "dee": make_link(owner, items=[item("Trial box", "5.00", frequency="weekly", term_type="fixed",
                                                term_count="2")], name="Trial"),
            "eve": make_link(owner, items=[item("Wine club", "12.00", frequency="monthly")], name="Wine"),
        }
        cards = {"ann": "4242424242424242", "bob": "4000056655665556", "cy": "5555555555554444",
                 "dee": "2223003122003222", "eve": "5200828282828210"}
        subs = {"ann": buy(client, ann_link, email="ann@example.com", card_number=cards["ann"])}
        for name, link in links.items():
            subs[name] = buy(client, link, email=f"{name}@example.com", card_number=cards[name])
        cancel(actor(owner), subs["eve"].id, "now")
        advance(owner, to_date=date(2027, 3, 10))
        set_test_card_behaviour(actor(owner), subs["cy"].id, True)
        advance(owner, to_date=date(2027, 3, 16))
        login(client, owner)
        yield owner, {name: sub.id for name, sub in subs.items()}


# -- the list ---------------------------------------------------------------------------------------------


def test_s1_list_shows_status_contact_amount_frequency_progress_and_next_charge(client, shop):
    _owner, subs = shop
    with frozen():
        response = client.get("/subscriptions/")

    assert response.status_code == 200
    rows = {row["Contact"].split()[-1]: row for row in _rows(response)}
    assert set(rows) == {"ann@example.com", "bob@example.com", "cy@example.com", "dee@example.com",
                         "eve@example.com"}
    ann = rows["ann@example.com"]
    assert (ann["Status"], ann["Amount per period"], ann["Billing frequency"], ann["Progress"],
            ann["Next charge"]) == ("Active", "$10.00", "Monthly", "3 of 7", "Apr 15, 2027")
    assert "Test" in ann["Contact"]
    assert rows["bob@example.com"]["Progress"] == "1 payment · until cancelled"
    assert rows["bob@example.com"]["Billing frequency"].startswith("Quarterly")
    assert (rows["cy@example.com"]["Status"], rows["cy@example.com"]["Next charge"]) == ("Past due", "Mar 19, 2027")
    assert (rows["dee@example.com"]["Status"], rows["dee@example.com"]["Progress"],
            rows["dee@example.com"]["Next charge"]) == ("Completed", "2 of 2", "—")
    assert rows["eve@example.com"]["Status"] == "Cancelled"
    links = [a["href"] for a in _soup(response).select("#results tbody a")]
    assert f"/subscriptions/{subs['ann']}" in links


FILTERS = [
    ({"status": "past_due"}, ["cy@example.com"]),
    ({"status": ["active", "past_due"]}, ["ann@example.com", "bob@example.com", "cy@example.com"]),
    ({"frequency": "quarterly"}, ["bob@example.com"]),
    ({"email": "DEE@"}, ["dee@example.com"]),
    ({"status": "active", "frequency": "monthly"}, ["ann@example.com"]),
    ({"adv": json.dumps([[["payments_made", "gt", ["2"]]]])}, ["ann@example.com"]),
    ({"adv": json.dumps([[["amount", "gt", ["25"]]]])}, ["bob@example.com"]),
    ({"adv": json.dumps([[["amount", "between", ["10", "12"]]]])}, ["ann@example.com", "eve@example.com"]),
    ({"adv": json.dumps([[["next_charge", "before", ["2027-04-01"]]]])}, ["cy@example.com"]),
    ({"adv": json.dumps([[["status", "any_of", ["completed"]]], [["frequency", "any_of", ["quarterly"]]]])},
     ["bob@example.com", "dee@example.com"]),
    ({"adv": json.dumps([[["frequency", "none_of", ["monthly"]], ["status", "none_of", ["completed"]]]])},
     ["bob@example.com"]),
    ({"status": "cancelled", "adv": json.dumps([[["email", "contains", ["eve"]]]])}, ["eve@example.com"]),
]


def test_s1_list_filters_on_status_frequency_email_and_any_subscription_property(client, shop):
    with frozen():
        for query, expected in FILTERS:
            response = client.get("/subscriptions/", query_string=query)
            assert response.status_code == 200, query
            assert _emails(response) == expected, query


def test_s1_list_filter_with_htmx_returns_only_the_results(client, shop):
    with frozen():
        response = client.get("/subscriptions/", query_string={"status": "completed"},
                              headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html and 'id="results"' in html
    assert _emails(response) == ["dee@example.com"]


BAD_FILTERS = [
    ({"adv": "not json"}, "The filter could not be read."),
    ({"adv": json.dumps([[["password", "is", ["x"]]]])}, "Payments can't be filtered by “password”."),
    ({"adv": json.dumps([[["amount", "gt", ["lots"]]]])}, "Amount per period needs a number"),
    ({"adv": json.dumps([[["next_charge", "before", ["someday"]]]])}, "Next charge needs a date"),
    ({"status": "sleeping"}, "Choose values of Status from the list."),
    ({"frequency": "hourly"}, "Choose values of Billing frequency from the list."),
    ({"after": "yesterday~x"}, "That page link is out of date."),
]


def test_s1_bad_list_filters_are_a_400_with_a_message(client, shop):
    with frozen():
        for query, message in BAD_FILTERS:
            response = client.get("/subscriptions/", query_string=query)
            assert response.status_code == 400, query
            assert message in _text(_soup(response).select_one('#results [role="alert"]')), query
            assert _rows(response) == [], query


def test_s1_list_pages_through_many_subscriptions(client, app):
    owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
    sub = buy(client, link)
    with write_transaction(db.session) as session:
        original = session.get(Subscription, sub.id)
        for n in range(55):
            session.add(Subscription(account_id=owner.account_id, mode="test", contact_id=original.contact_id,
                                     frequency="monthly", term_type="auto_renew", amount_minor=100 + n,
                                     currency="USD", payments_made=1, anchor_at=original.anchor_at,
                                     created_at=original.created_at - timedelta(minutes=n + 1)))
    login(client, owner)

    first = client.get("/subscriptions/")
    assert len(_rows(first)) == 50
    next_link = _soup(first).select_one('nav.pagination a[rel="next"]')
    second = client.get(next_link["href"])
    assert second.status_code == 200
    assert len(_rows(second)) == 6


def test_s1_empty_list_points_to_payment_links(client, app):
    owner, _link = subscription_shop()
    login(client, owner)
    response = client.get("/subscriptions/")
    assert response.status_code == 200
    assert "No subscriptions yet" in page_text(response)


def test_a1_members_cannot_see_subscriptions(client, app):
    owner, link = subscription_shop()
    sub = buy(client, link)
    login(client, make_user(owner.account_id, Role.MEMBER))
    assert client.get("/subscriptions/").status_code == 403
    assert client.get(f"/subscriptions/{sub.id}").status_code == 403


# -- a subscription's page ------------------------------------------------------------------------------


def test_s3_detail_shows_payments_the_full_remaining_schedule_timeline_and_actions(client, shop):
    _owner, subs = shop
    with frozen():
        response = client.get(f"/subscriptions/{subs['ann']}")

    assert response.status_code == 200
    soup = _soup(response)
    heading = _text(soup.select_one("h1"))
    assert "$10.00" in heading and "Active" in heading and "Test" in heading
    assert "3 of 7 payments" in _text(soup.select_one(".pagehead"))
    payments = soup.select_one("#payments-title").find_parent("section").select("tbody tr")
    assert len(payments) == 3
    assert all("Succeeded" in _text(row) for row in payments)
    schedule = [_text(li) for li in soup.select_one("#schedule-title").find_parent("section").select("li")]
    assert schedule == ["Apr 15, 2027 · $10.00", "May 15, 2027 · $10.00", "Jun 15, 2027 · $10.00",
                        "Jul 15, 2027 · $10.00"]
    timeline = _text(soup.select_one("#timeline-title").find_parent("section"))
    assert "Subscription created" in timeline and "Payment succeeded" in timeline
    assert "subscription." not in timeline and "payment." not in timeline  # labels, never raw keys
    actions = soup.select_one(".pagehead__actions")
    assert "Cancel subscription" in _text(actions)
    clock = soup.select_one("#clock-title").find_parent("section")
    assert [_text(b) for b in clock.select("button[name=step]")] == ["+1 day", "+1 week", "+1 month",
                                                                      "Advance to date"]
    assert clock.select_one("label[for=clock-date]") is not None


def test_s3_detail_of_a_past_due_subscription_shows_the_failed_charge_and_the_retry(client, shop):
    _owner, subs = shop
    with frozen():
        soup = _soup(client.get(f"/subscriptions/{subs['cy']}"))

    assert "Past due" in _text(soup.select_one("h1"))
    rows = [_text(tr) for tr in soup.select_one("#payments-title").find_parent("section").select("tbody tr")]
    # Newest first: the Mar 16 retry and the Mar 15 charge declined, the two before succeeded.
    assert all("Failed" in row and "Your card was declined." in row for row in rows[:2])
    assert all("Succeeded" in row for row in rows[2:]) and len(rows) == 4
    schedule = [_text(li) for li in soup.select_one("#schedule-title").find_parent("section").select("li")]
    assert schedule[0] == "Mar 19, 2027 · $20.00"  # the retry
    assert "…and so on until cancelled." in _text(soup)
    assert "Failed attempts 2" in _text(soup.select_one(".deflist"))
    timeline = _text(soup.select_one("#timeline-title").find_parent("section"))
    assert "Payment failed" in timeline and "subscription." not in timeline


def test_s2_ended_subscriptions_have_no_schedule_and_no_cancel_action(client, shop):
    _owner, subs = shop
    for name in ("dee", "eve"):
        with frozen():
            soup = _soup(client.get(f"/subscriptions/{subs[name]}"))
        assert "No more payments." in _text(soup)
        assert soup.select_one(".pagehead__actions a") is None
        timeline = _text(soup.select_one("#timeline-title").find_parent("section"))
        assert "subscription." not in timeline


def test_s2_cancel_dialog_asks_when_and_confirms(client, shop):
    _owner, subs = shop
    with frozen():
        page = client.get(f"/subscriptions/{subs['ann']}/cancel")
        fragment = client.get(f"/subscriptions/{subs['ann']}/cancel", headers={"HX-Request": "true"})

    assert page.status_code == fragment.status_code == 200
    dialog = _soup(fragment).select_one("dialog#cancel-dialog")
    assert dialog is not None and "<html" not in fragment.get_data(as_text=True)
    assert _text(dialog.select_one("h2")) == "Cancel this subscription?"
    options = {radio["value"]: _text(dialog.select_one(f"label[for={radio['id']}]"))
               for radio in dialog.select("input[type=radio][name=when]")}
    assert options == {"period_end": "At the end of the paid period (Apr 15, 2027)",
                       "now": "Now: no more charges from today"}
    assert dialog.select_one("input[value=period_end]").has_attr("checked")  # the gentler choice first
    assert "Keep subscription" in _text(dialog) and "Cancel subscription" in _text(dialog.select_one("button"))
    assert dialog.select_one("form")["action"] == f"/subscriptions/{subs['ann']}/cancel"


def test_s2_cancel_at_period_end_shows_on_the_page_and_the_list(client, shop):
    _owner, subs = shop
    with frozen():
        response = client.post(f"/subscriptions/{subs['ann']}/cancel", data={"when": "period_end"})
        assert response.status_code == 303
        page = client.get(response.headers["Location"])
        assert "The subscription ends at the end of the paid period." in _flash(page)
        assert "the subscription ends then instead" in page_text(page)
        assert _soup(page).select_one(".pagehead__actions a") is None
        rows = {row["Contact"].split()[-1]: row for row in _rows(client.get("/subscriptions/"))}
    assert "ends at period end" in rows["ann@example.com"]["Status"]


# -- the test clock (T5) --------------------------------------------------------------------------------


def test_t5_b9_test_clock_buttons_move_the_subscriptions_own_test_clock(client, shop):
    _owner, subs = shop
    with frozen():
        for step, days in [("day", 1), ("week", 7), ("month", 31)]:
            before = clock_now(subs["dee"])
            response = client.post(f"/subscriptions/{subs['dee']}/test-clock", data={"step": step})
            assert response.status_code == 303
            moved = clock_now(subs["dee"]) - before
            assert timedelta(days=days) <= moved <= timedelta(days=days, seconds=5), step
            assert _flash(client.get(response.headers["Location"])).startswith("Test clock moved.")


def test_t5_advance_to_a_date_runs_the_charges_in_between_and_says_so(client, shop):
    _owner, subs = shop
    with frozen():
        response = client.post(f"/subscriptions/{subs['ann']}/test-clock",
                               data={"step": "date", "to_date": "2027-04-20"})
        page = client.get(response.headers["Location"])

    # B9: only ann's clock moved: ann renewed on Apr 15; bob (due Apr 15 too) and cy (retries due) did not.
    assert "Test clock moved. Charges: 1 succeeded, 0 failed." in _flash(page)
    assert "4 of 7 payments" in page_text(page)
    assert clock_now(subs["ann"]).date() == date(2027, 4, 20)
    assert clock_now(subs["bob"]).date() == date(2027, 3, 16) and reload(subs["bob"]).payments_made == 1


CLOCK_REFUSALS = [
    ({"step": "fortnight"}, "Choose how far to move the test clock."),
    ({"step": "date", "to_date": "soon"}, "Choose how far to move the test clock."),
    ({"step": "date", "to_date": "2027-03-01"}, "Choose a moment after the test clock's current time."),
    ({"step": "date", "to_date": "2047-03-01"}, "The test clock moves at most ten years at once."),
]


def test_t5_test_clock_refuses_a_bad_step_with_a_message(client, shop):
    _owner, subs = shop
    with frozen():
        before = clock_now(subs["ann"])
        for data, message in CLOCK_REFUSALS:
            response = client.post(f"/subscriptions/{subs['ann']}/test-clock", data=data)
            assert message in _flash(client.get(response.headers["Location"])), data
            assert clock_now(subs["ann"]) == before, data


def test_t5_the_test_clock_is_only_on_test_subscriptions(client, app):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)
        with write_transaction(db.session) as session:
            session.get(Subscription, sub.id).mode = "live"
        login(client, owner)

        page = _soup(client.get(f"/subscriptions/{sub.id}"))
        assert page.select_one("#clock-title") is None
        assert page.select("button[name=step]") == []
        assert "Test card from the next charge" not in _text(page)

        response = client.post(f"/subscriptions/{sub.id}/test-clock", data={"step": "month"})
        assert ("Only test subscriptions have a test clock. A live subscription always runs on real time."
                in _flash(client.get(response.headers["Location"])))
        assert reload(sub).clock_offset_seconds == 0
        assert reload(sub).payments_made == 1
