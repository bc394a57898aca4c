"""P8 (issue 17): every figure of the revenue dashboard equals the ledger and the objects, to the cent.

Real money goes through the sandbox and Kassa's services — card and bank-debit checkouts, a bank debit that
bounces, partial and full refunds and one that fails, disputes lost and won (and an inquiry), subscriptions
started, renewed and cancelled, a payment in a second currency — over two periods. Then each figure of the
dashboard (the service and the page) is computed here independently: money from the ledger's entries (the
ledger itself first checked against the processor's records, tests/support/ledger.py), counts from the
objects. A payment's money (its charge, fee, refunds, disputes) belongs to the day the payment was made.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import time_machine
from sqlalchemy import func, select, update

from kassa.clock import local_midnight_utc
from kassa.extensions import db
from kassa.models import (
    Account,
    CheckoutSession,
    Dispute,
    LedgerEntry,
    LedgerType,
    Payment,
    PaymentAttempt,
    RevenueDay,
    RevenueWatermark,
    Subscription,
)
from kassa.money import Money, format_money
from kassa.services.backoffice.revenue import monthly_factor, performance
from kassa.services.billing.subscriptions import cancel
from kassa.services.disputes.disputes import save_draft, submit_evidence
from kassa.services.payments.refunds import refund_payment
from kassa.services.platform.ticks import run_tick
from tests.factories import PASSWORD, make_merchant
from tests.support.app import log_in
from tests.support.billing import actor, advance, buy
from tests.support.checkout import pay_with_ach, pay_with_card, start_checkout
from tests.support.checkout_flow import checkout_for, item, make_link, soup_of
from tests.support.ledger import assert_ledger_matches_processor
from tests.support.payments import REFUND_FAILS_CARD, bulk_payments

MODES = ("live", "test")
FRAUD_CARD = "4000000000000259"  # T5: succeeds, then a dispute opens
INQUIRY_CARD = "4000000000001976"  # T5: succeeds, then an inquiry opens (nothing withdrawn)
BOUNCING_ACCOUNT = "000111111116"  # T4: accepted, fails 4 business days later
TODAY = datetime(2027, 3, 15, 12, 0, tzinfo=UTC)  # a Monday; the 30 days: Feb 14 – Mar 15, before: Jan 15 – Feb 13
EARLIER = datetime(2027, 1, 25, 12, 0, tzinfo=UTC)  # a Monday in the period before
LATER = datetime(2027, 2, 22, 12, 0, tzinfo=UTC)  # a Monday in the period


def _tick() -> None:
    report = run_tick()
    assert not report.failed, report.failed
    db.session.rollback()


def _paid(response) -> int:
    assert response.status_code == 303, response.get_data(as_text=True)[:600]
    payment_id = checkout_for(response.checkout_path).payment_id
    assert payment_id is not None
    return payment_id


def _refund(owner, payment_id: int, amount: str) -> None:
    refund_payment(actor(owner), payment_id, amount_text=amount, reason="requested_by_customer", note="",
                   locale="en")


def _dispute_of(payment_id: int) -> int:
    db.session.rollback()
    dispute_id = db.session.scalar(select(Dispute.id).where(Dispute.payment_id == payment_id))
    assert dispute_id is not None, f"no dispute opened on payment {payment_id}"
    return dispute_id


def _answer(owner, payment_id: int, evidence: str) -> None:
    dispute_id = _dispute_of(payment_id)
    save_draft(actor(owner), dispute_id, "evidence", {"additional_information": evidence})
    submit_evidence(actor(owner), dispute_id)


def _look(owner) -> None:
    """The merchant opens the dashboard: closed days are kept from here on, and what is written later must
    reach them (the final figures are checked against the ledger)."""
    db.session.rollback()
    performance(db.session.get(Account, owner.account_id), MODES, 90)
    db.session.rollback()


def _drive_money(client, owner, clock) -> dict[str, int]:
    """Two periods of real money through the sandbox, the dashboard looked at on the way; returns the links."""
    workshop = make_link(owner, name="Workshop", items=[item("Workshop", "40.00")], allow_ach=True)
    concert = make_link(owner, name="Concert", items=[item("Concert ticket", "25.00")])
    club = make_link(owner, name="Club", items=[item("Club", "10.00", frequency="monthly", term_type="auto_renew")])
    weekly = make_link(owner, name="Weekly box", items=[item("Box", "12.00", frequency="weekly",
                                                             term_type="auto_renew")])
    euro = make_link(owner, name="Euro shop", currency="EUR", items=[item("Book", "30.00")])
    clock.move_to(EARLIER)
    # The period before: a card payment partly refunded, a bank debit, a dispute lost, a subscriber.
    first = _paid(pay_with_card(client, workshop.slug))
    _paid(pay_with_ach(client, workshop.slug))
    disputed_before = _paid(pay_with_card(client, concert.slug, card_number=FRAUD_CARD))
    old_subscriber = buy(client, club, email="old@example.com")
    _tick()
    _refund(owner, first, "15.00")
    _answer(owner, disputed_before, "losing_evidence")
    clock.shift(timedelta(days=5))
    _tick()
    _look(owner)

    clock.move_to(LATER)
    # The period: card payments refunded in full, in part, and one whose refund fails; bank debits that clear
    # and bounce; disputes won and lost and an inquiry; subscribers new, renewed and gone; visits that don't pay.
    full, part, failing = (_paid(pay_with_card(client, concert.slug)), _paid(pay_with_card(client, workshop.slug)),
                           _paid(pay_with_card(client, concert.slug, card_number=REFUND_FAILS_CARD)))
    _paid(pay_with_ach(client, workshop.slug))
    _paid(pay_with_ach(client, workshop.slug, account_number=BOUNCING_ACCOUNT))
    won, lost, inquiry = (_paid(pay_with_card(client, concert.slug, card_number=card))
                          for card in (FRAUD_CARD, FRAUD_CARD, INQUIRY_CARD))
    # Another currency: the sandbox settles it in the account's, each refund and dispute converted on its own.
    euro_paid = _paid(pay_with_card(client, euro.slug))
    euro_disputed = _paid(pay_with_card(client, euro.slug, card_number=FRAUD_CARD))
    new_subscriber = buy(client, club, email="new@example.com")
    buy(client, weekly, email="box@example.com")
    start_checkout(client, workshop.slug)  # a visit that never tries to pay
    assert pay_with_card(client, concert.slug, card_number="4000000000000002").status_code == 422  # declined
    _tick()
    clock.shift(timedelta(days=1))
    _look(owner)  # yesterday's payments kept, before their refunds, disputes and bank debits settle
    _refund(owner, full, "25.00")
    _refund(owner, part, "5.50")
    _refund(owner, failing, "10.00")
    _refund(owner, first, "20.00")  # a refund now of a payment of the period before: that payment's money
    _refund(owner, euro_paid, "7.77")
    _refund(owner, euro_paid, "3.33")
    _answer(owner, euro_disputed, "losing_evidence")
    _answer(owner, won, "winning_evidence")
    _answer(owner, lost, "losing_evidence")
    _answer(owner, inquiry, "winning_evidence")
    advance(owner, new_subscriber, days=31)  # renewed (on its own test clock)
    cancel(actor(owner), old_subscriber.id, "now")
    _look(owner)
    clock.shift(timedelta(days=5))  # bank debits settle or bounce, refunds settle or fail, disputes are decided
    _tick()
    _look(owner)
    clock.move_to(TODAY)
    _tick()
    return {"workshop": workshop.id, "concert": concert.id, "club": club.id, "weekly": weekly.id, "euro": euro.id}


# -- the figures, computed here from the ledger and the objects ------------------------------------------------


def _ledger_figures(account: Account, start: datetime, end: datetime) -> dict[str, object]:
    """Money of the payments made in [start, end) and settled in the account's currency, from their entries."""
    payments = db.session.scalars(select(Payment).where(Payment.account_id == account.id)).all()
    inside = {p.id: p for p in payments if start <= p.created_at.replace(tzinfo=UTC) < end}
    ours = {pid for pid, p in inside.items() if p.settlement_currency == account.default_currency}
    entries = db.session.execute(select(LedgerEntry.payment_id, LedgerEntry.type, LedgerEntry.amount_minor,
                                        LedgerEntry.currency).where(LedgerEntry.account_id == account.id)).all()
    by_type: Counter = Counter()
    by_day: Counter = Counter()
    for payment_id, kind, amount, currency in entries:
        if payment_id in ours:
            assert currency == account.default_currency
            by_type[kind] += amount
            if kind == LedgerType.CHARGE.value:
                by_day[_local_day(account, inside[payment_id].created_at)] += amount
    statuses = Counter(p.status for pid, p in inside.items() if pid in ours)
    return {
        "gross": by_type[LedgerType.CHARGE.value],
        "fees": -by_type[LedgerType.FEE.value],
        "refunded": -(by_type[LedgerType.REFUND.value] + by_type[LedgerType.REFUND_FAILURE.value]),
        "disputed": -(by_type[LedgerType.DISPUTE.value] + by_type[LedgerType.DISPUTE_REVERSAL.value]),
        "dispute_fees": -by_type[LedgerType.DISPUTE_FEE.value],
        "net": sum(amount for kind, amount in by_type.items()
                   if kind not in (LedgerType.PAYOUT.value, LedgerType.PAYOUT_FAILURE.value)),
        "succeeded": statuses["succeeded"], "failed": statuses["failed"],
        "other_currencies": sum(1 for pid, p in inside.items() if pid not in ours and p.status == "succeeded"),
        "daily": by_day,
    }


def _local_day(account: Account, at: datetime) -> date:
    from kassa.clock import zone

    return at.replace(tzinfo=UTC).astimezone(zone(account.timezone)).date()


def _dispute_objects(account: Account, start: datetime, end: datetime) -> dict[str, int]:
    disputes = db.session.scalars(select(Dispute).where(Dispute.account_id == account.id)).all()
    opened = [d for d in disputes if start <= d.created_at.replace(tzinfo=UTC) < end]
    closed = [d for d in disputes if d.closed_at and start <= d.closed_at.replace(tzinfo=UTC) < end]
    return {"opened": len(opened),
            "disputed": sum(d.amount_minor for d in opened if d.currency == account.default_currency),
            "won": sum(d.status == "won" for d in closed), "lost": sum(d.status == "lost" for d in closed)}


def _subscription_objects(account: Account, start: datetime, end: datetime) -> dict[str, int]:
    subs = db.session.scalars(select(Subscription).where(Subscription.account_id == account.id)).all()
    figures, mrr, new, churned = Counter(), Fraction(0), Fraction(0), Fraction(0)
    for sub in subs:
        created = sub.created_at.replace(tzinfo=UTC)
        ended = sub.ended_at or sub.cancelled_at if sub.status in ("completed", "cancelled") else None
        ended = ended.replace(tzinfo=UTC) if ended else None
        if sub.status not in ("active", "past_due", "completed", "cancelled") or created >= end:
            continue
        monthly = sub.amount_minor * monthly_factor(sub.frequency)
        if ended is None or ended >= end:
            figures["active"] += 1
            mrr += monthly
        if created >= start:
            new += monthly
        if ended is not None and start <= ended < end:
            churned += monthly
    return {"active": figures["active"], "mrr": int(mrr), "new_mrr": int(new), "churned_mrr": int(churned)}


def _funnel_objects(account: Account, start: datetime, end: datetime) -> dict[int, tuple[int, int, int]]:
    sessions = db.session.scalars(select(CheckoutSession).where(CheckoutSession.account_id == account.id)).all()
    tried = set(db.session.scalars(select(PaymentAttempt.checkout_session_id)))
    funnel: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for session in sessions:
        if session.link_id is None or not start <= session.created_at.replace(tzinfo=UTC) < end:
            continue
        row = funnel[session.link_id]
        row[0] += 1
        row[1] += session.id in tried or session.payment_id is not None
        row[2] += session.payment_id is not None and db.session.get(Payment, session.payment_id).status == "succeeded"
    return {link_id: tuple(row) for link_id, row in funnel.items()}


def test_p8_every_dashboard_figure_equals_the_ledger_and_the_objects_to_the_cent(client):
    with time_machine.travel(EARLIER - timedelta(days=1), tick=False) as clock:
        owner = make_merchant(company="Ledger Shop")
        links = _drive_money(client, owner, clock)
        assert_ledger_matches_processor(owner.account_id)  # the ledger is the processor's, cent for cent
        db.session.rollback()
        account = db.session.get(Account, owner.account_id)
        perf = performance(account, MODES, 30)
        periods = {"current": (local_midnight_utc(perf.start, account.timezone),
                               local_midnight_utc(perf.end + timedelta(days=1), account.timezone)),
                   "previous": (local_midnight_utc(perf.start - timedelta(days=30), account.timezone),
                                local_midnight_utc(perf.start, account.timezone))}
        assert (perf.start, perf.end) == (date(2027, 2, 14), date(2027, 3, 15))
        wanted = {name: _ledger_figures(account, *span) for name, span in periods.items()}
        disputes = {name: _dispute_objects(account, *span) for name, span in periods.items()}
        subscriptions = {name: _subscription_objects(account, *span) for name, span in periods.items()}
        funnel = _funnel_objects(account, *periods["current"])

        for name, figures in (("current", perf.current), ("previous", perf.previous)):
            want = wanted[name]
            got = {key: getattr(figures, key) for key in want if key != "daily"}
            assert got == {key: value for key, value in want.items() if key != "daily"}, name
        # Every kind of money happened in the period, so each equality above could have failed.
        now_ = wanted["current"]
        assert all(now_[key] > 0 for key in ("gross", "fees", "refunded", "disputed", "dispute_fees",
                                             "succeeded", "failed"))
        converted = db.session.scalars(select(Payment).where(Payment.account_id == account.id,
                                                             Payment.currency != Payment.settlement_currency)).all()
        assert len(converted) == 2 and {p.settlement_currency for p in converted} == {account.default_currency}
        assert wanted["previous"]["refunded"] == 3_500 and wanted["previous"]["disputed"] > 0
        assert {day: amount for day, amount in perf.daily if amount} == dict(wanted["current"]["daily"])

        assert {k: getattr(perf.disputes, k) for k in disputes["current"]} == disputes["current"]
        assert {k: getattr(perf.previous_disputes, k) for k in disputes["previous"]} == disputes["previous"]
        assert (perf.disputes.won, perf.disputes.lost) == (2, 2)  # the inquiry won; the period before's lost
        assert perf.disputes.win_rate == 2 / 4

        for got, name in ((perf.subscriptions, "current"), (perf.previous_subscriptions, "previous")):
            assert {k: getattr(got, k) for k in subscriptions[name]} == subscriptions[name], name
        assert subscriptions["current"] == {"active": 2, "mrr": 1_000 + 5_200, "new_mrr": 1_000 + 5_200,
                                            "churned_mrr": 1_000}
        assert subscriptions["previous"]["active"] == 1

        assert {row.link_id: (row.sessions, row.attempted, row.paid) for row in perf.conversion} == funnel
        assert funnel[links["workshop"]] == (4, 3, 2) and funnel[links["concert"]] == (6, 6, 5) and funnel[links["euro"]] == (2, 2, 2)

        # The page shows the same numbers.
        log_in(client, owner.email, PASSWORD)
        page = soup_of(client.get("/reports/", query_string={"days": 30}))
        text = re.sub(r"\s+", " ", page.get_text(" "))
        for key in ("gross", "net", "refunded", "fees", "disputed", "dispute_fees"):
            assert format_money(Money(now_[key], account.default_currency)) in text, key
        assert format_money(Money(perf.subscriptions.mrr, account.default_currency)) in text


def test_p8_kept_days_take_in_what_is_written_to_them_later(client):
    """P8: closed days are kept after a view; a payment written into a past day later (an import, a backdated
    row), a payment that fails later, and a change of time zone all reach the next view."""
    with time_machine.travel(TODAY, tick=False) as clock:
        owner = make_merchant(company="Kept Shop")
        bulk_payments(owner.account_id, [{"created_at": TODAY - timedelta(days=3), "amount_minor": 1_000,
                                          "net_settlement_minor": 1_000}])
        db.session.rollback()
        account = db.session.get(Account, owner.account_id)
        assert performance(account, MODES, 30).current.gross == 1_000
        assert _kept_days(owner.account_id) == 0  # the first look keeps nothing: a transaction may still be open
        clock.shift(timedelta(minutes=2))
        assert performance(db.session.get(Account, owner.account_id), MODES, 30).current.gross == 1_000
        assert _kept_days(owner.account_id) == 2 * 59  # both modes; today is never kept
        bulk_payments(owner.account_id, [
            {"created_at": TODAY - timedelta(days=3), "amount_minor": 500, "net_settlement_minor": 500},
            {"created_at": TODAY - timedelta(days=40), "amount_minor": 700, "net_settlement_minor": 700},
            {"created_at": TODAY - timedelta(days=5), "amount_minor": 900, "status": "processing"}])
        db.session.rollback()
        perf = performance(db.session.get(Account, owner.account_id), MODES, 30)
        assert (perf.current.gross, perf.previous.gross, perf.current.failed) == (1_500, 700, 0)
        clock.shift(timedelta(minutes=5))
        with db.engine.begin() as conn:  # the bank debit bounces (as the payment's state machine writes it)
            conn.execute(update(Payment).where(Payment.account_id == owner.account_id,
                                               Payment.status == "processing")
                         .values(status="failed", failed_at=TODAY + timedelta(minutes=5)))
        db.session.rollback()
        perf = performance(db.session.get(Account, owner.account_id), MODES, 30)
        assert (perf.current.gross, perf.current.failed) == (1_500, 1)
        with db.engine.begin() as conn:
            conn.execute(update(Account).where(Account.id == owner.account_id).values(timezone="Pacific/Kiritimati"))
        db.session.rollback()
        kiritimati = db.session.get(Account, owner.account_id)
        perf = performance(kiritimati, MODES, 30)
        assert db.session.get(RevenueWatermark, owner.account_id).timezone == "Pacific/Kiritimati"
        assert (perf.current.gross, perf.previous.gross, perf.current.failed) == (1_500, 700, 1)


def _kept_days(account_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(RevenueDay).where(RevenueDay.account_id == account_id))


def test_p8_a_row_committed_after_the_first_look_with_a_lower_id_is_counted(client):
    """P8: a payment whose transaction took its id before the first dashboard look but committed after it (here
    an explicit lower id inserted after the look, as two PostgreSQL transactions can interleave) is in the figures
    of every later look: no day is kept until a minute after the first look."""
    with time_machine.travel(TODAY, tick=False) as clock:
        owner = make_merchant(company="Late Commit Shop")
        bulk_payments(owner.account_id, [{"id": 900_000, "created_at": TODAY - timedelta(days=3),
                                          "amount_minor": 1_000, "net_settlement_minor": 1_000}])
        db.session.rollback()
        assert performance(db.session.get(Account, owner.account_id), MODES, 30).current.gross == 1_000
        bulk_payments(owner.account_id, [{"id": 899_000, "created_at": TODAY - timedelta(days=3),
                                          "amount_minor": 250, "net_settlement_minor": 250}])
        db.session.rollback()
        for _ in range(3):  # the look that keeps the days, and two that read them back
            clock.shift(timedelta(minutes=2))
            assert performance(db.session.get(Account, owner.account_id), MODES, 30).current.gross == 1_250
        assert _kept_days(owner.account_id) == 2 * 59
