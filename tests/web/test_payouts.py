"""Balance and payouts (O1–O3, E8, F5): payments become available after their delay, one payout a day
takes exactly what became available, refunds and disputes net out, a negative day is a debit, a failed
payout returns its funds, and the payout page adds up to the cent.

Money comes in the way a merchant gets it: a buyer pays a test-mode link through the real checkout;
time moves with time-machine and `flask kassa tick` runs there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from kassa.extensions import db
from kassa.models import EmailMessage, LedgerEntry, Payment, Payout, Role
from tests.factories import make_merchant, make_user
from tests.support.checkout import pay_with_card
from tests.support.checkout_flow import item, make_link
from tests.support.payments import login, soup_of, text_of

# Monday 1 February 2027, 15:00 UTC: no US holiday in the next two weeks, so business days are plain.
MONDAY = datetime(2027, 2, 1, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(MONDAY, tick=False) as traveller:
        yield traveller


def tick_on(clock, days: float, hours: float = 1) -> None:
    """Move the clock to `days` (and `hours`) after Monday 15:00 UTC and stay there; run one tick."""
    from kassa.services.platform.ticks import run_tick

    clock.move_to(MONDAY + timedelta(days=days, hours=hours))
    report = run_tick()
    assert not report.failed, report.failed
    db.session.rollback()


@pytest.fixture
def shop():
    owner = make_merchant(company="Payout Shop")
    link = make_link(owner, items=[item("Workshop", "100.00")])
    return owner, link


def payouts_of(account_id: int) -> list[Payout]:
    db.session.rollback()
    return list(db.session.scalars(select(Payout).where(Payout.account_id == account_id)
                                   .order_by(Payout.payout_date, Payout.id)))


def entries_of(payout: Payout) -> list[LedgerEntry]:
    return list(db.session.scalars(select(LedgerEntry).where(LedgerEntry.payout_id == payout.id,
                                                             LedgerEntry.type != "payout")))


def pay(client, link, amount: str | None = None) -> Payment:
    response = pay_with_card(client, link.slug)
    assert response.status_code == 303, response.status_code
    db.session.rollback()
    return db.session.scalar(select(Payment).order_by(Payment.id.desc()))


def refund(client, payment: Payment, amount: str) -> None:
    page = soup_of(client.get(f"/payments/{payment.id}/refund"))
    key = page.select_one('input[name="key"]')["value"]
    response = client.post(f"/payments/{payment.id}/refund",
                           data={"amount": amount, "reason": "requested_by_customer", "note": "", "key": key})
    assert response.status_code in (200, 204, 303), response.get_data(as_text=True)[:500]


def test_a_card_payment_is_paid_out_two_business_days_later_net_of_its_fee(client, shop, clock):
    """O1, O2: gross minus the processing fee, available after 2 business days, paid out once that day."""
    owner, link = shop
    payment = pay(client, link)
    assert payment.fee_minor > 0
    login(client, owner)

    balance = text_of(soup_of(client.get("/reports/")).select_one("#balance-title").parent)
    assert "$0.00" in balance  # nothing available yet
    net = payment.amount_minor - payment.fee_minor
    assert f"${net / 100:,.2f}" in balance  # pending: gross minus fee

    tick_on(clock, 1)  # Tuesday: still pending
    assert payouts_of(owner.account_id) == []

    tick_on(clock, 2)  # Wednesday: available, paid out
    [payout] = payouts_of(owner.account_id)
    assert payout.payout_date == date(2027, 2, 3)
    assert payout.amount_minor == net
    assert payout.status == "in_transit"
    assert payout.arrival_date == date(2027, 2, 4)
    assert sorted(e.type for e in entries_of(payout)) == ["charge", "fee"]

    tick_on(clock, 3)  # Thursday: the payout arrives; nothing new to pay out
    [payout] = payouts_of(owner.account_id)
    assert payout.status == "paid"


def test_one_payout_per_day_however_often_the_tick_runs(client, shop, clock):
    owner, link = shop
    pay(client, link)
    pay(client, link)
    for hours in (1, 2, 3):
        tick_on(clock, 2, hours)
    payouts = payouts_of(owner.account_id)
    assert len(payouts) == 1
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
        LedgerEntry.account_id == owner.account_id, LedgerEntry.payout_id.is_(None))) == 0


def test_refund_nets_out_and_a_negative_day_is_a_debit_with_an_email(client, shop, clock):
    """F5, O3: the refund is taken from the next payout; when it is larger, the bank account is debited."""
    owner, link = shop
    payment = pay(client, link)
    tick_on(clock, 2)
    [first] = payouts_of(owner.account_id)
    assert first.amount_minor == payment.amount_minor - payment.fee_minor

    login(client, owner)
    refund(client, payment, "100.00")
    tick_on(clock, 3)
    debit = payouts_of(owner.account_id)[-1]
    assert debit.id != first.id
    assert debit.amount_minor == -10000  # the fee isn't returned, so the whole refund is a debit
    emails = db.session.scalars(select(EmailMessage).where(EmailMessage.kind == "payout_debit")).all()
    assert [m.to_addrs for m in emails] == [[owner.email]]

    page = client.get(f"/payouts/{debit.id}")
    assert page.status_code == 200
    assert "Debit of $100.00" in text_of(soup_of(page).select_one("h1"))


def test_payout_page_lists_its_transactions_and_adds_up_to_the_cent(client, shop, clock):
    owner, link = shop
    payments = [pay(client, link) for _ in range(3)]
    login(client, owner)
    refund(client, payments[0], "12.34")
    tick_on(clock, 2)
    [payout] = payouts_of(owner.account_id)
    expected = sum(p.amount_minor - p.fee_minor for p in payments) - 1234
    assert payout.amount_minor == expected

    page = soup_of(client.get(f"/payouts/{payout.id}"))
    rows = page.select("table tbody tr")
    assert len(rows) == 7  # three payments, three fees, one refund
    cells = [text_of(row.select("td")[-1]) for row in rows]
    cents = [round(float(c.replace("$", "").replace(",", "").replace("−", "-")) * 100) for c in cells]
    assert sum(cents) == payout.amount_minor
    assert text_of(page.select_one("tfoot td")) == f"${expected / 100:,.2f}"

    listing = soup_of(client.get("/payouts/"))
    assert f"PO-{payout.id:06d}" in text_of(listing.select_one("table"))


def test_a_failed_payout_returns_its_funds_to_the_next_one(client, shop, clock, refuse_next_payout):
    owner, link = shop
    payment = pay(client, link)
    refuse_next_payout(owner.account_id)
    tick_on(clock, 2)  # Wednesday's payout goes out
    tick_on(clock, 3)  # Thursday it should have arrived: it fails
    assert payouts_of(owner.account_id)[0].status == "failed"
    tick_on(clock, 4)  # Friday: the returned funds go out again
    payouts = payouts_of(owner.account_id)
    assert payouts[0].status == "failed"
    net = payment.amount_minor - payment.fee_minor
    # The returned funds went out again in the next payout.
    assert payouts[-1].id != payouts[0].id
    assert payouts[-1].amount_minor == net

    login(client, owner)
    page = soup_of(client.get(f"/payouts/{payouts[0].id}"))
    assert "This payout failed" in text_of(page.select_one('[role="alert"]'))


def test_every_payout_equals_the_sum_of_its_entries_and_the_balance_is_what_is_left(client, shop, clock):
    """O1: at any moment, all entries = all payouts + the balance; each payout = its entries."""
    from kassa.services.payouts.payouts import balance

    owner, link = shop
    payments = [pay(client, link) for _ in range(4)]
    login(client, owner)
    refund(client, payments[1], "40.00")
    tick_on(clock, 2)
    pay(client, link)
    refund(client, payments[2], "100.00")
    tick_on(clock, 3)
    pay(client, link)

    for payout in payouts_of(owner.account_id):
        assert payout.amount_minor == sum(e.amount_minor for e in entries_of(payout))
    entries = db.session.scalars(select(LedgerEntry).where(LedgerEntry.account_id == owner.account_id,
                                                           LedgerEntry.type.not_in(("payout",)))).all()
    paid = sum(p.amount_minor for p in payouts_of(owner.account_id))
    left = balance(owner.account_id, "test", date(2027, 2, 4))["total"]
    assert sum(e.amount_minor for e in entries) == paid + left
    assert left > 0


def test_members_cannot_see_payouts_and_other_merchants_get_404(client, shop, clock):
    """A1: reports need the payments permission; one merchant never sees another's payout."""
    owner, link = shop
    pay(client, link)
    tick_on(clock, 2)
    [payout] = payouts_of(owner.account_id)

    member = make_user(owner.account_id, Role.MEMBER)
    client = client.application.test_client()
    login(client, member)
    assert client.get(f"/payouts/{payout.id}").status_code == 403
    assert client.get("/reports/").status_code == 403

    stranger = make_merchant(company="Someone Else")
    client = client.application.test_client()
    login(client, stranger)
    assert client.get(f"/payouts/{payout.id}").status_code == 404
    assert f"PO-{payout.id:06d}" not in client.get("/payouts/").get_data(as_text=True)


def test_payout_email_says_the_amount_and_can_be_switched_off(client, shop, clock):
    """E8: a daily email with the payout total, for the payments team; Settings → Notifications turns it off."""
    from kassa.database import write_transaction
    from kassa.models import Account

    owner, link = shop
    payment = pay(client, link)
    tick_on(clock, 2)
    [message] = db.session.scalars(select(EmailMessage).where(EmailMessage.kind == "payout_sent")).all()
    net = payment.amount_minor - payment.fee_minor
    assert f"${net / 100:,.2f}" in message.subject

    with write_transaction(db.session) as session:
        account = session.get(Account, owner.account_id)
        account.notifications = {**account.notifications, "payout_sent": False}
    pay(client, link)
    tick_on(clock, 4)
    assert len(payouts_of(owner.account_id)) == 2
    assert len(db.session.scalars(select(EmailMessage).where(EmailMessage.kind == "payout_sent")).all()) == 1
