"""B2: failed checkout attempts are visible. A card the bank declines becomes a failed payment: in the payments
list (with the decline reason and the risk signal), its filters, search and exports, and its own panel (reason,
risk, brand and last 4, no refund or receipt). It never counts in gross volume, refund limits, receipts,
payouts, the ledger, the home figures, reports, link totals or the CRM.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
import time_machine
from sqlalchemy import func, select

from kassa.extensions import db
from kassa.models import (
    Account,
    AttemptStatus,
    Contact,
    Deal,
    LedgerEntry,
    Payment,
    PaymentAttempt,
    Payout,
    TimelineEntry,
)
from kassa.processors import registry
from kassa.services.backoffice import home, revenue
from kassa.services.backoffice.associations import set_association
from kassa.services.payments.refunds import refund_payment
from kassa.services.platform.ticks import run_tick
from tests.support.app import run_outbox
from tests.support.checkout import buyer_form, start_checkout
from tests.support.checkout_flow import all_payments, count, item, make_shop
from tests.support.payments import actor_for, login, row_ids, soup_of, table_rows, text_of
from tests.web.test_exports import csv_rows, export_href, request_export

DECLINED = "4000000000000002"  # "Your card was declined." (card_declined)
NO_FUNDS = "4000000000009995"  # insufficient_funds
GOOD = "4242424242424242"
MONDAY = datetime(2027, 3, 1, 15, tzinfo=UTC)


@pytest.fixture
def shop(app):
    return make_shop("Failing Shop", items=[item("Workshop", "40.00")])


def _pay(client, path: str, number: str, ip: str = "198.51.100.20", **fields):
    return client.post(path, data=buyer_form(card_number=number, email="rita@example.com", **fields),
                       environ_base={"REMOTE_ADDR": ip})


def _decline_then_pay(app, link) -> tuple[Payment, Payment]:
    """One buyer: declined, then pays on the same checkout. Returns (failed, succeeded)."""
    buyer = app.test_client()
    path = start_checkout(buyer, link.slug)
    assert _pay(buyer, path, DECLINED, card_cvc="734").status_code == 422
    assert _pay(buyer, path, GOOD).status_code == 303
    failed, succeeded = all_payments()
    return failed, succeeded


def test_b2_a_decline_then_a_payment_shows_one_failed_and_one_succeeded_row_with_reason(app, client, shop):
    owner, link = shop
    failed, succeeded = _decline_then_pay(app, link)

    assert (failed.status, failed.display_status, succeeded.status) == ("failed", "failed", "succeeded")
    assert (failed.amount_minor, failed.currency, failed.buyer_email) == (4000, "USD", "rita@example.com")
    assert (failed.card_brand, failed.card_last4, failed.card_exp_month, failed.card_exp_year) == (
        "visa", "0002", None, None)
    assert (failed.failure_code, failed.risk_level, failed.link_id) == ("card_declined", "normal", link.id)
    assert [a.status for a in db.session.scalars(select(PaymentAttempt).order_by(PaymentAttempt.id))] == [
        AttemptStatus.DECLINED.value, AttemptStatus.SUCCEEDED.value]
    login(client, owner)

    response = client.get("/payments/")

    assert row_ids(response) == [succeeded.id, failed.id]
    rows = table_rows(response)
    assert rows[0]["Status"] == "Succeeded"
    assert rows[1]["Status"] == "Failed The bank declined the card without giving a reason."
    assert rows[1]["Payment method"] == "Visa •••• 0002"
    assert rows[1]["Contact"] == "Ann Buyer rita@example.com"


def test_b2_the_failed_payment_panel_shows_reason_risk_and_card_and_offers_no_refund_or_receipt(app, client, shop):
    owner, link = shop
    failed, _succeeded = _decline_then_pay(app, link)
    login(client, owner)

    panel = soup_of(client.get(f"/payments/{failed.id}"))

    decline = text_of(panel.select_one("#card-decline"))
    assert "Reason The bank declined the card without giving a reason." in decline
    assert "Risk Normal risk Card" in decline  # no counter raised it: the level alone
    assert "Card Visa •••• 0002" in decline
    assert panel.select_one(".pp__actions") is None
    assert panel.find(string="Refund") is None and panel.find(string="Send receipt") is None
    for hidden in ("#card-amounts", "#card-invoice", "#card-refunds", "#card-associations"):
        assert panel.select_one(hidden) is None, hidden
    # Brand and last 4 only: nothing else of the card anywhere on the panel.
    assert DECLINED not in panel.get_text() and "12/34" not in panel.get_text()


@pytest.mark.parametrize(("language", "reason", "risk"), [
    ("nl", "De bank heeft de kaart geweigerd zonder reden op te geven.", "Normaal risico"),
    ("fr", "La banque a refusé la carte sans donner de raison.", "Risque normal"),
])
def test_b2_the_decline_reason_and_risk_are_in_the_merchants_language(app, client, shop, language, reason, risk):
    owner, link = shop
    failed, _succeeded = _decline_then_pay(app, link)
    login(client, owner)
    client.post("/preferences/language", data={"language": language, "next": "/"})

    panel = text_of(soup_of(client.get(f"/payments/{failed.id}")).select_one("#card-decline"))
    row = table_rows(client.get("/payments/"))[1]

    assert reason in panel and risk in panel
    assert reason in " ".join(row.values())


def test_b2_a_failed_payment_never_counts_in_volume_ledger_receipts_payouts_reports_links_or_crm(app, client, shop):
    owner, link = shop
    with time_machine.travel(MONDAY, tick=False) as clock:
        failed, succeeded = _decline_then_pay(app, link)
        second = start_checkout(app.test_client(), link.slug)
        assert _pay(app.test_client(), second, NO_FUNDS, ip="198.51.100.21").status_code == 422
        db.session.rollback()
        account = db.session.get(Account, owner.account_id)
        clock.shift(timedelta(minutes=1))  # "today so far" ends now: a minute after the payments

        # Ledger and receipts: only the success books and gets a number.
        assert {entry.payment_id for entry in db.session.scalars(select(LedgerEntry))} == {succeeded.id}
        assert (succeeded.receipt_number, failed.receipt_number) == (1, None)
        # Home figures and the revenue report: one payment of 40.00, while three attempts were made.
        today = home.figures(account, ("live", "test"))
        assert (today.gross[0].today, today.payments.today) == (4000, 1)
        report = revenue.performance(account, ("live", "test"))
        assert (report.current.succeeded, report.current.failed) == (1, 2)
        assert report.current.gross == succeeded.net_settlement_minor + succeeded.fee_settlement_minor
        # CRM: one contact and one deal, for the payment that went through; nothing points at a failed one.
        assert count(Contact) == 1 and count(Deal) == 1
        assert failed.contact_id is None and failed.deal_id is None and failed.subscription_id is None
        with pytest.raises(Exception, match="declined checkout attempt"):
            set_association(actor_for(owner), failed.id, "contact", succeeded.contact_id)
        # Refunds: nothing was collected, so nothing can be refunded, whatever the amount.
        with pytest.raises(Exception, match="Failed payments can't be refunded"):
            refund_payment(actor_for(owner), failed.id, amount_text="1.00", reason="requested_by_customer",
                           note="", locale="en")
        # The link's payments count and revenue in the links list.
        login(client, owner)
        cells = [text_of(td) for td in soup_of(client.get("/links/")).select("table tbody tr td.num")]
        assert cells[1:] == ["1", "$40.00"]
        # The timeline says it failed; the failed payment's only entry is on the payment itself.
        kinds = db.session.scalars(select(TimelineEntry.kind).where(TimelineEntry.subject_type == "payment",
                                                                    TimelineEntry.subject_id == failed.id)).all()
        assert kinds == ["payment.failed"]

        # Payouts: Wednesday's payout carries the one success, not the failed attempts.
        clock.move_to(MONDAY + timedelta(days=2, hours=1))
        assert not run_tick().failed
        db.session.rollback()
        payouts = db.session.scalars(select(Payout).where(Payout.account_id == owner.account_id)).all()
        assert sum(p.amount_minor for p in payouts) == succeeded.net_settlement_minor


def test_b2_fifteen_parallel_declines_make_fifteen_failed_rows_and_count_nowhere(app, client, shop):
    """Fifteen buyers declined at once (test decline cards: the guard lets them all through): fifteen failed
    payments, one per attempt, and no money counted anywhere."""
    owner, link = shop
    n = 15
    paths = [start_checkout(client, link.slug) for _ in range(n)]
    start = threading.Barrier(n)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def submit(path: str, i: int) -> None:
        try:
            buyer = app.test_client()
            with app.app_context():
                start.wait()
                statuses.append(_pay(buyer, path, DECLINED, ip=f"198.51.100.{i + 30}").status_code)
                db.session.remove()
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(path, i)) for i, path in enumerate(paths)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    assert statuses == [422] * n
    assert count(PaymentAttempt, PaymentAttempt.status == "declined") == n
    assert count(Payment, Payment.status == "failed") == n
    failed_ids = db.session.scalars(select(PaymentAttempt.payment_id)).all()
    assert len(set(failed_ids)) == n  # each attempt its own failed payment
    assert count(Payment, Payment.status != "failed") == 0 and count(LedgerEntry) == 0
    account = db.session.get(Account, owner.account_id)
    assert home.figures(account, ("live", "test")).payments.today == 0
    login(client, owner)
    assert len(row_ids(client.get("/payments/?status=failed"))) == n


def test_b2_the_risk_signal_rises_with_declines_from_one_connection(app, client, shop):
    """Live mode (the guard counts there): declines from one address raise the risk signal from normal to
    elevated to high, then the guard refuses before the processor (H4 unchanged)."""
    owner, link = shop
    app.config["KASSA_LIVE_PROCESSOR"] = registry.sandbox
    levels = []
    for _ in range(5):
        path = start_checkout(client, link.slug, mode="live")
        assert _pay(client, path, DECLINED, ip="203.0.113.50").status_code == 422
        levels.append(db.session.scalar(select(Payment.risk_level).order_by(Payment.id.desc())))
    path = start_checkout(client, link.slug, mode="live")
    assert _pay(client, path, DECLINED, ip="203.0.113.50").status_code == 429  # the guard still blocks
    assert levels == ["normal", "elevated", "elevated", "high", "high"]
    assert count(Payment, Payment.status == "failed") == 5  # a refusal before the processor is no attempt
    latest = db.session.scalar(select(Payment).order_by(Payment.id.desc()))
    assert latest.risk_scope == "ip"
    login(client, owner)
    row = table_rows(client.get("/payments/"))[0]
    assert row["Status"] == "Failed High risk The bank declined the card without giving a reason."
    panel = text_of(soup_of(client.get(f"/payments/{latest.id}")).select_one("#card-decline"))
    assert "High risk High: many declines from the buyer's connection" in panel


def test_b2_status_filter_advanced_filters_search_and_export_include_failed_attempts(app, client, shop):
    owner, link = shop
    failed, succeeded = _decline_then_pay(app, link)
    login(client, owner)

    assert row_ids(client.get("/payments/?status=failed")) == [failed.id]
    assert row_ids(client.get("/payments/?status=succeeded")) == [succeeded.id]
    for condition, expected in ((["risk", "any_of", ["normal"]], [failed.id]),
                                (["risk", "any_of", ["high"]], []),
                                (["decline_reason", "any_of", ["card_declined"]], [failed.id]),
                                (["decline_reason", "any_of", ["insufficient_funds"]], [])):
        assert row_ids(client.get(f"/payments/?adv={quote(json.dumps([[condition]]))}")) == expected, condition
    # B3 search: by last 4 and by email, newest first.
    assert row_ids(client.get("/payments/?q=0002")) == [failed.id]
    assert row_ids(client.get("/payments/?q=rita%40example.com")) == [succeeded.id, failed.id]
    # The columns for the reason and the risk, in the list and in an export.
    rows = table_rows(client.get("/payments/?cols=amount,status,decline,risk"))
    assert [(r["Decline reason"], r["Risk"]) for r in rows] == [
        ("—", "—"), ("The bank declined the card without giving a reason.", "Normal risk")]
    export = request_export(client, export_href(client, "?status=failed"),
                            columns=["amount", "status", "method", "decline", "risk"])
    run_outbox()
    header, *data = csv_rows(client, export)
    assert header == ["Gross amount", "Currency", "Status", "Payment method", "Card brand", "Last 4",
                      "Decline reason", "Risk"]
    assert data == [["40.00", "USD", "Failed", "card", "visa", "0002", "card_declined", "normal"]]


def test_b2_the_failed_payment_keeps_only_brand_and_last4_of_the_card(app, client, shop):
    _owner, link = shop
    _decline_then_pay(app, link)
    failed = db.session.scalar(select(Payment).where(Payment.status == "failed"))
    attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.payment_id == failed.id))
    stored = json.dumps(attempt.buyer) + json.dumps([getattr(failed, c.key) for c in Payment.__table__.columns],
                                                    default=str)
    assert DECLINED not in stored and "734" not in stored
    assert {k for k in attempt.buyer if k.startswith("card")} == {"card_brand", "card_last4"}
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.card_last4 == "0002")) == 1
