"""P8 (issue 17): the revenue dashboard's disputes (count, amount, win rate), subscriptions (MRR, new and churned
MRR, active subscribers), checkouts started and paid per link, and any period the merchant chooses, each
against the period of the same length before it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select

from kassa.extensions import db
from kassa.models import Account, Dispute, Payment
from kassa.services.backoffice.revenue import monthly_factor, performance
from kassa.services.billing.subscriptions import cancel
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in
from tests.support.billing import START, actor, buy, frozen, subscription_shop
from tests.support.checkout import start_checkout
from tests.support.payments import bulk_payments, soup_of

MODES = ("live", "test")


def _account(user) -> Account:
    db.session.rollback()
    return db.session.get(Account, user.account_id)


def _dispute(account_id: int, payment_id: int, *, opened_days_ago: float, amount: int, currency: str = "USD",
             status: str = "needs_response", closed_days_ago: float | None = None) -> None:
    opened = START - timedelta(days=opened_days_ago)
    with db.engine.begin() as conn:
        conn.execute(insert(Dispute).values(
            account_id=account_id, payment_id=payment_id, processor_ref=f"dp_{payment_id}_{opened_days_ago}",
            amount_minor=amount, currency=currency, reason="fraudulent", status=status, created_at=opened,
            evidence_due_by=opened + timedelta(days=7),
            closed_at=None if closed_days_ago is None else START - timedelta(days=closed_days_ago)))


def _payments(account_id: int, count: int) -> list[int]:
    bulk_payments(account_id, [{"created_at": START - timedelta(days=40), "amount_minor": 9_000,
                                "net_settlement_minor": 9_000} for _ in range(count)])
    db.session.rollback()  # a fresh snapshot: the rows were written on another connection
    return list(db.session.scalars(select(Payment.id).where(Payment.account_id == account_id).order_by(Payment.id)))


def test_p8_disputes_opened_disputed_amount_and_win_rate_in_the_period(client):
    with frozen():
        owner = make_merchant(company="Disputed Shop")
        ids = _payments(owner.account_id, 6)
        _dispute(owner.account_id, ids[0], opened_days_ago=3, amount=5_000)
        _dispute(owner.account_id, ids[1], opened_days_ago=10, amount=3_000, currency="EUR")  # counted, not summed
        _dispute(owner.account_id, ids[2], opened_days_ago=50, amount=1_000, status="won", closed_days_ago=5)
        _dispute(owner.account_id, ids[3], opened_days_ago=45, amount=1_000, status="won", closed_days_ago=2)
        _dispute(owner.account_id, ids[4], opened_days_ago=40, amount=1_000, status="lost", closed_days_ago=1)
        _dispute(owner.account_id, ids[5], opened_days_ago=35, amount=2_500, status="lost", closed_days_ago=33)
        other = make_merchant(company="Someone Else")  # one merchant never counts another's
        _dispute(other.account_id, _payments(other.account_id, 1)[0], opened_days_ago=1, amount=7_777)

        perf = performance(_account(owner), MODES, 30)
    assert (perf.disputes.opened, perf.disputes.disputed) == (2, 5_000)
    assert (perf.disputes.won, perf.disputes.lost) == (2, 1) and perf.disputes.win_rate == 2 / 3
    # The 30 days before: opened 50, 45, 40 and 35 days ago; the one lost 33 days ago was decided then.
    assert (perf.previous_disputes.opened, perf.previous_disputes.disputed) == (4, 5_500)
    assert (perf.previous_disputes.won, perf.previous_disputes.lost) == (0, 1)


def test_p8_mrr_new_and_churned_mrr_and_active_subscribers(client):
    assert monthly_factor("yearly") * 12_000 == 1_000 and monthly_factor("weekly") * 1_200 == 5_200
    with frozen():
        owner, monthly = subscription_shop("Lessons Shop", price="10.00", term_type="auto_renew")
        log_in(client, owner.email, PASSWORD)
        first, second = buy(client, monthly, email="ann@example.com"), buy(client, monthly, email="bo@example.com")
        _second_owner, yearly = subscription_shop("Yearly Shop", frequency="yearly", price="120.00",
                                                  term_type="auto_renew")
        cancel(actor(owner), second.id, "now")
        perf = performance(_account(owner), MODES, 30)
    subs = perf.subscriptions
    assert subs.active == 1 and subs.mrr == 1_000  # ann's; bo's ended today
    assert (subs.new_mrr, subs.churned_mrr) == (2_000, 1_000)
    assert perf.previous_subscriptions.active == 0 and perf.previous_subscriptions.mrr == 0
    assert first.id != second.id and yearly.account_id != owner.account_id


def test_p8_checkouts_started_and_paid_per_link(client):
    with frozen():
        owner, link = subscription_shop("Funnel Shop", term_type="auto_renew")
        log_in(client, owner.email, PASSWORD)
        buy(client, link, email="ann@example.com")
        start_checkout(client, link.slug)  # opened, never paid
        start_checkout(client, link.slug)
        perf = performance(_account(owner), MODES, 7)
    (row,) = perf.conversion
    assert (row.link_id, row.sessions, row.paid, row.rate) == (link.id, 3, 1, 1 / 3)


def test_p8_any_period_against_the_one_before_on_the_page(client):
    with frozen():
        owner = make_merchant(company="Period Shop")
        bulk_payments(owner.account_id, [
            {"created_at": START - timedelta(days=d), "amount_minor": a, "net_settlement_minor": a}
            for d, a in ((2, 1_000), (12, 2_000), (25, 4_000))])
        log_in(client, owner.email, PASSWORD)
        start, end = (START - timedelta(days=13)).date(), (START - timedelta(days=1)).date()
        response = client.get("/reports/", query_string={"start": start.isoformat(), "end": end.isoformat()})
        assert response.status_code == 200
        perf = performance(_account(owner), MODES, start_day=start, end_day=end)
    assert (perf.days, perf.current.gross, perf.previous.gross) == (13, 3_000, 4_000)
    page = soup_of(response)
    assert page.find(id="p8-stats") is not None
    assert page.find("input", attrs={"name": "start"})["value"] == start.isoformat()  # the period stays shown


def test_p8_a_period_that_cannot_be_is_refused_at_its_field(client):
    with frozen():
        owner = make_merchant(company="Careful Shop")
        log_in(client, owner.email, PASSWORD)
        today = START.date()
        cases = [({"start": today.isoformat(), "end": (today - timedelta(days=3)).isoformat()},
                  "Choose an end date on or after the start date."),
                 ({"start": today.isoformat(), "end": (today + timedelta(days=1)).isoformat()},
                  "Choose an end date up to today."),
                 ({"start": "2027-02-30", "end": today.isoformat()}, "Enter a real date as YYYY-MM-DD."),
                 ({"start": today.isoformat()}, "Choose both dates of the period."),
                 ({"start": "2010-01-01", "end": today.isoformat()}, "Choose a period of at most 3660 days.")]
        for query, message in cases:
            response = client.get("/reports/", query_string=query)
            assert response.status_code == 422, query
            assert message in response.get_data(as_text=True), query
