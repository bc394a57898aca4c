"""Subscriptions that bill themselves (S1–S3, L6, E1, E2, E7, F2, T5): the seed's term examples, renewals,
month ends, failed charges with retries and the buyer's card update, cancelling, and reminders.

Real time is frozen (`frozen()`); the account's test clock (T5) moves forward and runs every tick that falls
due on the way, as `flask kassa tick` would on a server.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import select

from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Account, Payment, Role, Subscription, TimelineEntry
from kassa.services.billing.subscriptions import cancel, set_test_card_behaviour
from kassa.services.payments.refunds import refund_payment
from kassa.services.platform.ticks import run_tick
from tests.factories import make_user
from tests.support.app import extract_link, page_text
from tests.support.billing import (
    BUYER,
    START,
    actor,
    advance,
    buy,
    charges_of,
    emails_of,
    frozen,
    reload,
    renewals_of,
    sandbox_charge_count,
    subscription_shop,
)
from tests.support.checkout_flow import field_error, item, plain
from tests.support.payments import login, table_rows


def _days(payments: list[Payment]) -> list[str]:
    return [p.created_at.date().isoformat() for p in payments]


def _statuses(payments: list[Payment]) -> list[str]:
    return [p.status for p in payments]


def _timeline(subscription_id: int) -> list[str]:
    db.session.rollback()
    return list(db.session.scalars(
        select(TimelineEntry.kind).where(TimelineEntry.subject_type == "subscription",
                                         TimelineEntry.subject_id == subscription_id).order_by(TimelineEntry.id)))


# -- L6 / S1: the seed's two term examples ----------------------------------------------------------------


def test_l6_s1_monthly_times_seven_charges_seven_times_over_seven_months_then_completes(client, app):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="fixed", term_count="7")
        sub = buy(client, link)
        assert (sub.payments_made, sub.next_charge_at) == (1, datetime(2027, 2, 15, 10, tzinfo=UTC))

        advance(owner, to_date=date(2027, 3, 20))
        sub = reload(sub)
        assert (sub.status, sub.payments_made) == ("active", 3)
        assert sub.next_charge_at == datetime(2027, 4, 15, 10, tzinfo=UTC)

        advance(owner, to_date=date(2027, 12, 31))
        charges = charges_of(sub)
        assert _days(charges) == ["2027-01-15", "2027-02-15", "2027-03-15", "2027-04-15", "2027-05-15",
                                  "2027-06-15", "2027-07-15"]
        assert _statuses(charges) == ["succeeded"] * 7
        sub = reload(sub)
        assert (sub.status, sub.payments_made, sub.next_charge_at) == ("completed", 7, None)
        assert sub.ended_at.date() == date(2027, 7, 15)

        advance(owner, days=400)  # a completed subscription never charges again
        assert len(charges_of(sub)) == 7
        assert sandbox_charge_count(owner.account_id) == 7
        assert "subscription.completed" in _timeline(sub.id)


def test_l6_s1_quarterly_times_eight_charges_eight_times_over_twenty_four_months(client, app):
    with frozen():
        owner, link = subscription_shop(frequency="quarterly", term_type="fixed", term_count="8", price="30.00")
        sub = buy(client, link)

        advance(owner, to_date=date(2029, 6, 1))

        charges = charges_of(sub)
        assert _days(charges) == ["2027-01-15", "2027-04-15", "2027-07-15", "2027-10-15", "2028-01-15",
                                  "2028-04-15", "2028-07-15", "2028-10-15"]
        assert _statuses(charges) == ["succeeded"] * 8
        assert {p.amount_minor for p in charges} == {3000}
        # Eight charges, three months apart, the last one 21 months after the first: 24 months of service.
        assert charges[-1].created_at - charges[0].created_at < timedelta(days=24 * 31)
        sub = reload(sub)
        assert (sub.status, sub.payments_made, sub.next_charge_at) == ("completed", 8, None)


def test_l6_s1_auto_renew_keeps_charging_until_cancelled(client, app):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)

        advance(owner, to_date=date(2028, 1, 20))
        sub = reload(sub)
        assert (sub.status, sub.payments_made) == ("active", 13)
        assert sub.next_charge_at == datetime(2028, 2, 15, 10, tzinfo=UTC)
        assert _statuses(charges_of(sub)) == ["succeeded"] * 13

        cancel(actor(owner), sub.id, "now")
        advance(owner, to_date=date(2028, 12, 31))
        assert len(charges_of(sub)) == 13
        assert reload(sub).status == "cancelled"


def test_s1_anchor_on_january_31_bills_february_29_then_march_31(client, app):
    with frozen(datetime(2028, 1, 31, 15, 0, tzinfo=UTC)):
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)

        advance(owner, to_date=date(2028, 5, 1))

        assert _days(charges_of(sub)) == ["2028-01-31", "2028-02-29", "2028-03-31", "2028-04-30"]
        assert reload(sub).next_charge_at == datetime(2028, 5, 31, 15, tzinfo=UTC)


def test_s1_the_accounts_time_zone_decides_the_billing_day(client, app):
    # 20:00 UTC on January 30 is 09:00 on January 31 in Auckland: the merchant's buyer bought on the 31st.
    with frozen(datetime(2027, 1, 30, 20, 0, tzinfo=UTC)):
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        with write_transaction(db.session) as session:
            session.get(Account, owner.account_id).timezone = "Pacific/Auckland"
        sub = buy(client, link)

        assert sub.next_charge_at == datetime(2027, 2, 27, 20, 0, tzinfo=UTC)  # Feb 28, 09:00 in Auckland
        advance(owner, days=60)
        renewals = renewals_of(sub)
        assert [p.created_at.date().isoformat() for p in renewals] == ["2027-02-27", "2027-03-30"]
        assert reload(sub).next_charge_at == datetime(2027, 4, 29, 21, 0, tzinfo=UTC)  # Apr 30, 09:00 NZST


# -- S1, S3, E1, E2: what every renewal leaves behind -------------------------------------------------------


def test_s3_e2_e1_each_renewal_is_a_payment_with_a_receipt_in_the_buyers_language_and_no_merchant_email(
        client, app):
    with frozen():
        owner, link = subscription_shop("Taalschool", frequency="monthly", term_type="fixed", term_count="4",
                                        price="12.50")
        sub = buy(client, link, lang="nl")
        assert len(emails_of("payment_received", owner.email)) == 1  # E1: the first payment

        advance(owner, to_date=date(2027, 5, 1))

        renewals = renewals_of(sub)
        assert len(renewals) == 3
        for period, payment in enumerate(renewals, start=1):
            assert (payment.status, payment.source, payment.subscription_id) == ("succeeded", "subscription", sub.id)
            assert (payment.amount_minor, payment.currency, payment.method) == (1250, "USD", "card")
            assert (payment.contact_id, payment.deal_id) == (sub.contact_id, sub.deal_id)
            assert payment.subscription_period == period
            assert payment.language == "nl"
            assert payment.mode == "test"
            assert [i.name for i in payment.items] == ["Lessons"]
        receipt_numbers = [p.receipt_number for p in charges_of(sub)]
        assert len(set(receipt_numbers)) == 4 and None not in receipt_numbers

        # E2: a receipt every time, in Dutch; E1: the merchant heard about the first payment only.
        receipts = emails_of("receipt")
        assert len(receipts) == 4
        assert {r.language for r in receipts} == {"nl"}
        assert all(r.subject.startswith("Je betaalbewijs van Taalschool") for r in receipts)
        assert {r.related_id for r in receipts} == {p.id for p in charges_of(sub)}
        assert len(emails_of("payment_received", owner.email)) == 1

        # S1: the subscription's properties follow.
        sub = reload(sub)
        assert (sub.status, sub.payments_made, sub.next_charge_at) == ("completed", 4, None)
        timeline = _timeline(sub.id)
        assert timeline.count("payment.succeeded") >= 3

        # S3 / P1: the renewals are in the payments index, with Subscription as their source.
        login(client, owner)
        rows = table_rows(client.get("/payments/"))
        assert len(rows) == 4
        assert [row["Source"].split(" ")[0] for row in rows].count("Subscription") == 3  # V6: kind and name


def test_r6_s3_renewals_show_on_the_subscription_timeline_on_their_own_date_with_their_amount(client, app):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="fixed", term_count="3", price="12.50")
        sub = buy(client, link)
        advance(owner, to_date=date(2027, 4, 1))

        db.session.rollback()
        succeeded = db.session.scalars(select(TimelineEntry).where(
            TimelineEntry.subject_type == "subscription", TimelineEntry.subject_id == sub.id,
            TimelineEntry.kind == "payment.succeeded").order_by(TimelineEntry.id)).all()
        # On the test clock's day of each charge (not the real day the ticks ran), with the amount.
        assert [(e.created_at.date(), e.data["amount_minor"], e.data["currency"]) for e in succeeded] == [
            (date(2027, 1, 15), 1250, "USD"), (date(2027, 2, 15), 1250, "USD"), (date(2027, 3, 15), 1250, "USD")]
        completed = db.session.scalars(select(TimelineEntry.created_at).where(
            TimelineEntry.subject_type == "subscription", TimelineEntry.subject_id == sub.id,
            TimelineEntry.kind == "subscription.completed")).one()
        assert completed.date() == date(2027, 3, 15)

        login(client, owner)
        soup = BeautifulSoup(client.get(f"/subscriptions/{sub.id}").get_data(as_text=True), "html.parser")
        items = soup.select("#timeline-title ~ ol .timeline__item")
        paid = [(item.select_one("time")["datetime"][:10], " ".join(item.select_one(".timeline__what").text.split()))
                for item in items if "Payment succeeded" in item.text]
        assert paid == [("2027-03-15", "Payment succeeded · $12.50"), ("2027-02-15", "Payment succeeded · $12.50"),
                        ("2027-01-15", "Payment succeeded · $12.50")]


def test_s3_subscription_page_lists_every_charge(client, app):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="fixed", term_count="3")
        sub = buy(client, link)
        advance(owner, to_date=date(2027, 4, 1))

        login(client, owner)
        response = client.get(f"/subscriptions/{sub.id}")
        assert response.status_code == 200
        text = page_text(response)
        assert "3 of 3 payments" in text
        assert text.count("Succeeded") == 3


# -- S3: failed charges, retries, recovery ----------------------------------------------------------------


def _declining(client):
    """A monthly subscription whose test card declines from its second charge (Feb 15, 2027), the merchant
    logged in; the card is switched with the detail page's test-card button."""
    owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
    sub = buy(client, link)
    login(client, owner)
    response = client.post(f"/subscriptions/{sub.id}/test-card", data={"decline": "1"})
    assert response.status_code in (200, 303)
    assert "subscription.test_card_changed" in _timeline(sub.id)
    return owner, sub


def test_s3_declined_renewal_is_a_failed_payment_and_past_due_and_the_buyer_gets_a_card_update_link(client, app):
    with frozen():
        owner, sub = _declining(client)

        advance(owner, to_date=date(2027, 2, 15))

        (failed,) = renewals_of(sub)
        assert (failed.status, failed.display_status) == ("failed", "failed")
        assert failed.failure_message == "Your card was declined."
        sub = reload(sub)
        assert (sub.status, sub.payments_made, sub.failed_attempts) == ("past_due", 1, 1)
        assert sub.next_charge_at.date() == date(2027, 2, 16)  # first retry a day later
        assert len(emails_of("receipt")) == 1  # the checkout's only

        (email,) = emails_of("subscription_payment_failed")
        assert email.language == "en"
        assert "We'll try again on Feb 16, 2027." in plain(email.text_body)
        page = client.get(extract_link(email.text_body, "/billing/"))
        assert page.status_code == 200
        assert "Update your card" in page_text(page)
        assert "$10.00" in plain(page_text(page))

        # S3: shown as Failed on the subscription and in the payments index.
        assert "Failed" in page_text(client.get(f"/subscriptions/{sub.id}"))
        statuses = [row["Status"] for row in table_rows(client.get("/payments/"))]
        assert sorted(statuses) == ["Failed The bank declined the card without giving a reason.", "Succeeded"]


def test_s3_failed_payment_email_and_card_update_page_are_in_the_buyers_language(client, app):
    with frozen():
        owner, link = subscription_shop("Bakkerij Bol", frequency="monthly", term_type="auto_renew", price="8.00")
        sub = buy(client, link, lang="nl")
        set_test_card_behaviour(actor(owner), sub.id, True)

        advance(owner, to_date=date(2027, 2, 15))

        (email,) = emails_of("subscription_payment_failed")
        assert email.language == "nl"
        assert email.subject == "Je betaling aan Bakkerij Bol is niet gelukt"
        text = plain(email.text_body)
        assert "Kaart is geweigerd." in text and "16 feb 2027" in text and "$ 8,00" in text
        page = client.get(extract_link(email.text_body, "/billing/"), headers={"Accept-Language": "en"})
        assert 'lang="nl"' in page.get_data(as_text=True)
        assert "Werk je kaart bij" in page_text(page)

        advance(owner, to_date=date(2027, 3, 1))
        (ended,) = emails_of("subscription_ended")
        assert ended.subject == "Je abonnement bij Bakkerij Bol is beëindigd"


def test_s3_retries_after_one_three_and_five_days_then_cancels_and_tells_the_buyer(client, app):
    with frozen():
        owner, sub = _declining(client)

        advance(owner, to_date=date(2027, 4, 30))

        attempts = renewals_of(sub)
        assert _days(attempts) == ["2027-02-15", "2027-02-16", "2027-02-19", "2027-02-24"]
        assert _statuses(attempts) == ["failed"] * 4
        assert [p.billing_attempt for p in attempts] == [1, 2, 3, 4]
        assert {p.subscription_period for p in attempts} == {1}
        sub = reload(sub)
        assert (sub.status, sub.cancel_reason, sub.next_charge_at) == ("cancelled", "payment_failed", None)
        assert sub.ended_at.date() == date(2027, 2, 24)
        assert len(emails_of("subscription_payment_failed")) == 3
        (ended,) = emails_of("subscription_ended")
        assert "was cancelled because the payments didn't go through" in ended.text_body
        assert sandbox_charge_count(owner.account_id) == 1  # declines move no money


def test_s3_retry_days_come_from_settings_payments(client, app):
    with frozen():
        owner, sub = _declining(client)
        response = client.post("/settings/payments", data={"retry_days": "2, 4"})
        assert response.status_code == 303
        assert db.session.get(Account, owner.account_id).retry_days == [2, 4]

        advance(owner, to_date=date(2027, 4, 30))

        assert _days(renewals_of(sub)) == ["2027-02-15", "2027-02-17", "2027-02-21"]
        assert reload(sub).status == "cancelled"


def test_s3_settings_payments_refuses_bad_retry_days(client, app):
    owner, _link = subscription_shop()
    login(client, owner)
    response = client.post("/settings/payments", data={"retry_days": "1, 0, 99"})
    assert response.status_code == 422
    assert "1 to 6 numbers of days" in field_error(response, "retry_days")
    assert db.session.get(Account, owner.account_id).retry_days == [1, 3, 5]


def test_s3_a_retry_that_succeeds_brings_the_subscription_back_to_active_on_its_schedule(client, app):
    with frozen():
        owner, sub = _declining(client)
        advance(owner, to_date=date(2027, 2, 15))
        assert reload(sub).status == "past_due"

        response = client.post(f"/subscriptions/{sub.id}/test-card", data={"decline": "0"})
        assert response.status_code in (200, 303)
        advance(owner, to_date=date(2027, 2, 16))

        assert _statuses(renewals_of(sub)) == ["failed", "succeeded"]
        sub = reload(sub)
        assert (sub.status, sub.payments_made, sub.failed_attempts, sub.past_due_since) == ("active", 2, 0, None)
        assert sub.next_charge_at == datetime(2027, 3, 15, 10, tzinfo=UTC)  # the schedule didn't move
        assert len(emails_of("receipt")) == 2

        advance(owner, to_date=date(2027, 3, 16))
        assert _statuses(renewals_of(sub)) == ["failed", "succeeded", "succeeded"]


def test_s3_card_update_on_the_hosted_page_charges_the_outstanding_period_at_once(client, app):
    with frozen():
        owner, sub = _declining(client)
        advance(owner, to_date=date(2027, 2, 15))
        link = extract_link(emails_of("subscription_payment_failed")[0].text_body, "/billing/")
        client.post("/logout")

        page = client.get(link)
        assert "The last payment didn't go through" in page_text(page)
        response = client.post(link, data={"card_number": "5555 5555 5555 4444", "card_expiry": "12 / 34",
                                           "card_cvc": "123", "card_name": "Sam Subscriber"})

        assert response.status_code == 200
        assert "The outstanding payment went through." in page_text(response)
        assert _statuses(renewals_of(sub)) == ["failed", "succeeded"]
        sub = reload(sub)
        assert (sub.status, sub.payments_made, sub.card_brand, sub.card_last4) == ("active", 2, "mastercard", "4444")
        assert sub.next_charge_at == datetime(2027, 3, 15, 10, tzinfo=UTC)
        assert renewals_of(sub)[-1].card_last4 == "4444"
        assert len(emails_of("receipt")) == 2
        assert "subscription.card_updated" in _timeline(sub.id)

        # The new card is used from now on.
        advance(owner, to_date=date(2027, 3, 16))
        assert _statuses(renewals_of(sub)) == ["failed", "succeeded", "succeeded"]


def test_s3_declined_card_on_the_hosted_page_shows_the_message_at_the_field_and_charges_nothing(client, app):
    with frozen():
        owner, sub = _declining(client)
        advance(owner, to_date=date(2027, 2, 15))
        link = extract_link(emails_of("subscription_payment_failed")[0].text_body, "/billing/")

        response = client.post(link, data={"card_number": "4000000000000002", "card_expiry": "12 / 34",
                                           "card_cvc": "123", "card_name": "Sam Subscriber"})

        assert response.status_code == 422
        assert field_error(response, "card_number") == "Your card was declined."
        assert _statuses(renewals_of(sub)) == ["failed"]
        assert reload(sub).status == "past_due"

        bad = client.post(link, data={"card_number": "4242 4242 4242 4241", "card_expiry": "12 / 34",
                                      "card_cvc": "123", "card_name": "Sam Subscriber"})
        assert bad.status_code == 422
        assert field_error(bad, "card_number")


def test_s3_unknown_card_update_token_is_404(client, app):
    assert client.get("/billing/not-a-real-token").status_code == 404
    assert client.post("/billing/not-a-real-token", data={"card_number": "4242424242424242"}).status_code == 404


def test_s3_card_update_page_of_an_active_subscription_saves_the_card_without_charging(client, app):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)
        with write_transaction(db.session):
            from kassa.services.billing.notices import update_url_token

            token = update_url_token(sub.id)

        response = client.post(f"/billing/{token}", data={"card_number": "5555555555554444", "card_expiry": "12/34",
                                                          "card_cvc": "123", "card_name": "Sam Subscriber"})

        assert response.status_code == 200
        assert "Your card is saved." in page_text(response)
        assert renewals_of(sub) == []
        assert reload(sub).card_last4 == "4444"
        advance(owner, to_date=date(2027, 2, 16))
        assert [p.card_last4 for p in renewals_of(sub)] == ["4444"]


# -- S2: cancel ---------------------------------------------------------------------------------------------


def test_s2_cancel_now_stops_billing_at_once_and_emails_the_buyer(client, app):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)
        advance(owner, to_date=date(2027, 2, 20))
        login(client, owner)

        response = client.post(f"/subscriptions/{sub.id}/cancel", data={"when": "now"})

        assert response.status_code in (200, 303)
        sub = reload(sub)
        assert (sub.status, sub.next_charge_at, sub.cancel_reason) == ("cancelled", None, "cancelled_by_merchant")
        assert sub.cancelled_at.date() == date(2027, 2, 20)
        (email,) = emails_of("subscription_ended")
        assert "has been cancelled" in email.text_body
        advance(owner, to_date=date(2027, 12, 1))
        assert len(charges_of(sub)) == 2
        assert "Cancelled" in page_text(client.get(f"/subscriptions/{sub.id}"))


def test_s2_cancel_at_period_end_charges_nothing_more_and_ends_on_the_paid_through_date(client, app):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)
        login(client, owner)

        response = client.post(f"/subscriptions/{sub.id}/cancel", data={"when": "period_end"})

        assert response.status_code in (200, 303)
        sub = reload(sub)
        assert (sub.status, sub.cancel_at_period_end) == ("active", True)
        assert sub.next_charge_at == datetime(2027, 2, 15, 10, tzinfo=UTC)
        (scheduled,) = emails_of("subscription_cancel_scheduled")
        assert "ends on Feb 15, 2027" in plain(scheduled.text_body)

        advance(owner, to_date=date(2027, 2, 14))
        assert reload(sub).status == "active"  # paid until the end of the period

        advance(owner, to_date=date(2027, 6, 1))
        sub = reload(sub)
        assert (sub.status, sub.next_charge_at) == ("cancelled", None)
        assert sub.ended_at == datetime(2027, 2, 15, 10, tzinfo=UTC)
        assert len(charges_of(sub)) == 1
        assert sandbox_charge_count(owner.account_id) == 1


def test_s2_cancel_twice_is_refused_and_a_bad_choice_is_a_message(client, app):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)
        login(client, owner)

        client.post(f"/subscriptions/{sub.id}/cancel", data={"when": "sometime"})
        assert reload(sub).status == "active"
        assert "Choose when the subscription ends." in page_text(client.get(f"/subscriptions/{sub.id}"))

        client.post(f"/subscriptions/{sub.id}/cancel", data={"when": "now"})
        client.post(f"/subscriptions/{sub.id}/cancel", data={"when": "now"})
        assert len(emails_of("subscription_ended")) == 1
        assert "already ended" in page_text(client.get(f"/subscriptions/{sub.id}"))


@pytest.mark.parametrize(("role", "allowed"), [(Role.MEMBER, False), (Role.PAYMENTS_MANAGER, True),
                                              (Role.SUPER_ADMIN, True)])
def test_s2_a1_only_super_admin_and_payments_manager_cancel(client, app, role, allowed):
    owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
    sub = buy(client, link)
    user = make_user(owner.account_id, role)
    login(client, user)

    dialog = client.get(f"/subscriptions/{sub.id}/cancel")
    response = client.post(f"/subscriptions/{sub.id}/cancel", data={"when": "now"})

    if allowed:
        assert dialog.status_code == 200
        assert reload(sub).status == "cancelled"
    else:
        assert (dialog.status_code, response.status_code) == (403, 403)
        assert reload(sub).status == "active"
        assert client.get(f"/subscriptions/{sub.id}").status_code == 403
        assert client.post(f"/subscriptions/{sub.id}/test-clock", data={"step": "day"}).status_code == 403
        assert client.post(f"/subscriptions/{sub.id}/test-card", data={"decline": "1"}).status_code == 403


def test_f2_refunding_a_renewal_never_cancels_the_subscription(client, app):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew", price="18.00")
        sub = buy(client, link)
        advance(owner, to_date=date(2027, 2, 16))
        (renewal,) = renewals_of(sub)

        refund_payment(actor(owner), renewal.id, amount_text="18.00", reason="requested_by_customer", note="",
                       locale="en")
    with frozen(START + timedelta(days=3)):  # B9: the refund settles on real time, not on a test clock
        run_tick()
        db.session.rollback()
        assert db.session.get(Payment, renewal.id).display_status == "refunded"
        sub = reload(sub)
        assert (sub.status, sub.cancelled_at, sub.payments_made) == ("active", None, 2)
        advance(owner, to_date=date(2027, 3, 16))
        assert _statuses(renewals_of(sub)) == ["succeeded", "succeeded"]


# -- E7: reminders ------------------------------------------------------------------------------------------


def _reminders_on(client, owner) -> None:
    login(client, owner)
    response = client.post("/settings/notifications", data={"enabled": ["payment_received",
                                                                         "subscription_reminders"]})
    assert response.status_code == 303


def test_e7_reminder_fourteen_days_before_the_next_payment_once_per_period(client, app):
    with frozen():
        owner, link = subscription_shop("Koffieclub", frequency="monthly", term_type="auto_renew", price="9.95")
        sub = buy(client, link)
        _reminders_on(client, owner)

        advance(owner, to_date=date(2027, 1, 31))  # Feb 1 10:00 is 14 days before Feb 15 10:00
        assert emails_of("subscription_reminder") == []

        advance(owner, to_date=date(2027, 2, 1))
        (reminder,) = emails_of("subscription_reminder")
        text = plain(reminder.text_body)
        assert "$9.95" in text and "Feb 15, 2027" in text  # B7: the same date style as the subject
        assert "$9.95" in plain(reminder.subject) and "Feb 15, 2027" in plain(reminder.subject)

        run_tick()
        run_tick()
        assert len(emails_of("subscription_reminder")) == 1  # once per period
        assert reload(sub).reminded_period == 1

        advance(owner, to_date=date(2027, 3, 2))  # charged Feb 15, next reminder Mar 1 for Mar 15
        reminders = emails_of("subscription_reminder")
        assert len(reminders) == 2
        assert "Mar 15, 2027" in plain(reminders[1].text_body)
        assert _timeline(sub.id).count("subscription.reminder_sent") == 2


def test_e7_reminder_is_in_the_buyers_language(client, app):
    with frozen():
        owner, link = subscription_shop("Boulangerie", frequency="monthly", term_type="auto_renew", price="20.00")
        buy(client, link, lang="fr")
        _reminders_on(client, owner)

        advance(owner, to_date=date(2027, 2, 2))

        (reminder,) = emails_of("subscription_reminder")
        assert reminder.language == "fr"
        text = plain(reminder.text_body)
        assert "15 févr. 2027" in text  # B7: the one date style
        assert "20,00 $US" in text
        assert "Boulangerie" in reminder.subject and "paiement" in reminder.subject.lower()


def test_e7_no_reminder_when_switched_off_or_for_the_last_payment_or_a_cancelled_renewal(client, app):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="fixed", term_count="2")
        buy(client, link)
        other_link = subscription_shop(frequency="monthly", term_type="auto_renew")[1]
        buy(client, other_link, email="other@example.com")

        advance(owner, to_date=date(2027, 5, 1))  # reminders are off by default
        assert emails_of("subscription_reminder") == []

        _reminders_on(client, owner)
        advance(owner, to_date=date(2027, 9, 1))  # the fixed term has ended: nothing left to remind of
        assert emails_of("subscription_reminder") == []


def test_e7_no_reminder_for_a_subscription_cancelled_at_period_end(client, app):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)
        _reminders_on(client, owner)
        cancel(actor(owner), sub.id, "period_end")

        advance(owner, to_date=date(2027, 3, 1))

        assert emails_of("subscription_reminder") == []
        assert reload(sub).status == "cancelled"


# -- live subscriptions live on real time, whatever the test clock says ------------------------------------


def _make_live(sub_id: int) -> None:
    with write_transaction(db.session) as session:
        session.get(Subscription, sub_id).mode = "live"


def test_e7_t5_moving_the_test_clock_never_reminds_live_subscribers_early(client, app):
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        test_sub = buy(client, link, email="test.buyer@example.com")
        live_sub = buy(client, link, email="live.buyer@example.com", card_number="5555555555554444")
        _make_live(live_sub.id)
        _reminders_on(client, owner)

        advance(owner, to_date=date(2027, 2, 2))  # the test clock is 14 days before Feb 15; real time is not

        assert len(emails_of("subscription_reminder", "test.buyer@example.com")) == 1
        assert emails_of("subscription_reminder", "live.buyer@example.com") == []
        assert reload(live_sub).reminded_period is None
        assert reload(test_sub).reminded_period == 1


def test_s3_t5_card_update_charges_a_past_due_live_subscription_at_once_even_after_the_test_clock_moved(
        client, app):
    from kassa.processors.registry import sandbox

    app.config["KASSA_LIVE_PROCESSOR"] = sandbox  # a live processor that behaves like the sandbox
    with frozen():
        owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
        sub = buy(client, link)
        _make_live(sub.id)
        with write_transaction(db.session) as session:
            live = session.get(Subscription, sub.id)
            live.next_charge_at = START - timedelta(hours=1)  # due on real time
            token = live.payment_method_token
        sandbox().set_payment_method_behaviour(owner.account_id, token, "decline")
        run_tick()
        assert (reload(sub).status, _statuses(renewals_of(sub))) == ("past_due", ["failed"])
        advance(owner, days=40)  # the merchant plays with the test clock meanwhile
        link_path = extract_link(emails_of("subscription_payment_failed")[0].text_body, "/billing/")

        response = client.post(link_path, data={"card_number": "4242424242424242", "card_expiry": "12 / 34",
                                                 "card_cvc": "123", "card_name": "Sam Subscriber"})

        assert response.status_code == 200
        assert "The outstanding payment went through." in page_text(response)
        assert _statuses(renewals_of(sub)) == ["failed", "succeeded"]
        assert renewals_of(sub)[-1].created_at == START  # a live payment, on real time
        assert reload(sub).status == "active"


# -- T5: the test card -----------------------------------------------------------------------------------


def test_t5_only_test_subscriptions_have_a_test_card(client, app):
    owner, link = subscription_shop(frequency="monthly", term_type="auto_renew")
    sub = buy(client, link)
    with write_transaction(db.session) as session:
        session.get(Subscription, sub.id).mode = "live"

    from kassa.errors import Conflict

    with pytest.raises(Conflict):
        set_test_card_behaviour(actor(owner), sub.id, True)


def test_s1_renewals_charge_only_the_recurring_items_to_the_subscriptions_contact(client, app):
    with frozen():
        owner, link = subscription_shop(extra_items=[item("Welcome pack", "5.00")])
        sub = buy(client, link)
        advance(owner, days=40)

        first, renewal = charges_of(sub)
        assert (first.amount_minor, first.created_at) == (1500, START)  # the one-time item, paid once
        assert (renewal.amount_minor, renewal.buyer_email) == (1000, BUYER)
        assert [i.name for i in renewal.items] == ["Lessons"]
