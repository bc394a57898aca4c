"""B2: incomplete checkout attempts are visible. A charge that waits for the buyer (the sandbox's 3-D Secure test
card, Stripe's ``requires_action``: see test_k6_live_checkout) is listed in Payments as Incomplete with why
("waiting for the buyer to confirm with their bank"), brand and last 4 only. The same row becomes Succeeded or
Failed when the buyer answers; one the buyer abandons stays Incomplete ("left without confirming"), as Stripe keeps
an abandoned PaymentIntent listed. It is in the status filter, advanced filters, search and exports, and never in
gross, the ledger, receipts, payouts, the home figures, reports, link totals or the CRM.
"""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import openpyxl
import pytest
import time_machine
from sqlalchemy import select

from kassa.clock import now
from kassa.extensions import db
from kassa.models import Account, Contact, Deal, LedgerEntry, Payment, PaymentAttempt, Payout, TimelineEntry
from kassa.services.backoffice import home, revenue
from kassa.services.checkout import checkout as checkout_service
from kassa.services.platform.ticks import run_tick
from tests.support.app import run_outbox
from tests.support.checkout import buyer_form, path_of, start_checkout
from tests.support.checkout_flow import all_payments, attempts, count, item, make_shop, soup_of
from tests.support.payments import login, row_ids, table_rows, text_of
from tests.web.test_exports import csv_rows, download, export_href, request_export

THREE_DS = "4000002760003184"  # Stripe's "authentication required" test card: the sandbox asks too
GOOD = "4242424242424242"
MONDAY = datetime(2027, 3, 1, 15, tzinfo=UTC)
WAITING = "Waiting for the buyer to confirm the payment with their bank (3-D Secure)."
ABANDONED = "The buyer left without confirming the payment with their bank. Nothing was charged."


@pytest.fixture
def shop(app):
    return make_shop("Careful Shop", items=[item("Workshop", "40.00")])


def _start_3ds(client, link) -> str:
    """A buyer pays with the 3-D Secure test card and is shown the test authentication page. Returns the path."""
    path = start_checkout(client, link.slug)
    response = client.post(path, data=buyer_form(card_number=THREE_DS, email="rita@example.com"))
    assert response.status_code == 202
    assert soup_of(response).select_one("h1").get_text(strip=True) == "Confirm your payment"
    return path


def _answer(client, path: str, answer: str):
    response = client.post(f"{path}/test-authentication", data={"answer": answer})
    assert response.status_code == 303 and path_of(response.headers["Location"]) == f"{path}/return"
    return client.get(f"{path}/return")


def _abandon() -> None:
    """The buyer never answers: past the reconciler's wait, the charge is cancelled and the attempt closed."""
    with time_machine.travel(now() + checkout_service.IN_FLIGHT_LIMIT + timedelta(seconds=5)):
        checkout_service.reconcile_attempts()
    db.session.rollback()


def test_b2_a_3ds_attempt_is_listed_as_incomplete_while_waiting_and_after_it_is_abandoned(app, client, shop):
    owner, link = shop
    buyer = app.test_client()
    path = _start_3ds(buyer, link)

    [waiting] = all_payments()
    assert (waiting.status, waiting.display_status, waiting.failure_code) == ("incomplete", "incomplete",
                                                                              "requires_action")
    assert (waiting.card_brand, waiting.card_last4, waiting.receipt_number, waiting.contact_id) == (
        "visa", "3184", None, None)
    assert [a.status for a in attempts()] == ["pending"]
    login(client, owner)
    [row] = table_rows(client.get("/payments/"))
    assert row["Status"] == f"Incomplete {WAITING}"
    assert row["Payment method"] == "Visa •••• 3184"

    _abandon()
    [abandoned] = all_payments()
    assert (abandoned.id, abandoned.status, abandoned.failure_code) == (waiting.id, "incomplete", "abandoned")
    assert [a.status for a in attempts()] == ["failed"]
    [row] = table_rows(client.get("/payments/"))
    assert row["Status"] == f"Incomplete {ABANDONED}"
    # The sandbox charge was cancelled: answering now can't charge, and the buyer pays again under a new key.
    assert buyer.post(f"{path}/test-authentication", data={"answer": "complete"}).status_code == 303
    assert buyer.get(f"{path}/return").status_code == 303
    assert [p.status for p in all_payments()] == ["incomplete"]
    assert buyer.post(path, data=buyer_form(card_number=GOOD, email="rita@example.com")).status_code == 303
    assert sorted(p.status for p in all_payments()) == ["incomplete", "succeeded"]


def test_b2_a_finished_3ds_attempt_becomes_one_succeeded_payment_not_a_second_row(app, client, shop):
    owner, link = shop
    buyer = app.test_client()
    path = _start_3ds(buyer, link)
    [waiting] = all_payments()

    response = _answer(buyer, path, "complete")

    assert response.status_code == 303 and path_of(response.headers["Location"]) == path
    [payment] = all_payments()
    assert (payment.id, payment.status, payment.display_status) == (waiting.id, "succeeded", "succeeded")
    assert (payment.failure_code, payment.receipt_number, payment.card_last4) == (None, 1, "3184")
    assert payment.contact_id is not None and payment.deal_id is not None  # a real payment now: the CRM has it
    assert {e.payment_id for e in db.session.scalars(select(LedgerEntry))} == {payment.id}
    assert [a.status for a in attempts()] == ["succeeded"]
    # Back again (a reload): the same one payment.
    assert buyer.get(f"{path}/return").status_code == 303 and len(all_payments()) == 1
    login(client, owner)
    [row] = table_rows(client.get("/payments/"))
    assert row["Status"] == "Succeeded"


def test_b2_a_failed_3ds_check_turns_the_incomplete_row_into_a_failed_one(app, client, shop):
    owner, link = shop
    buyer = app.test_client()
    path = _start_3ds(buyer, link)
    [waiting] = all_payments()

    response = _answer(buyer, path, "fail")

    assert response.status_code == 422  # the checkout again, with the bank's no
    assert "Your payment was declined" in response.get_data(as_text=True)
    [failed] = all_payments()
    assert (failed.id, failed.status, failed.failure_code) == (waiting.id, "failed",
                                                              "payment_intent_authentication_failure")
    assert failed.risk_level == "normal" and failed.receipt_number is None
    assert [a.status for a in attempts()] == ["declined"]
    login(client, owner)
    [row] = table_rows(client.get("/payments/"))
    assert row["Status"] == "Failed The buyer didn't pass the bank's 3-D Secure check."


def test_b2_two_returns_at_once_record_one_payment(app, client, shop):
    """The buyer's browser comes back twice at once (a double redirect): one succeeded row, one receipt number."""
    _owner, link = shop
    buyer = app.test_client()
    path = _start_3ds(buyer, link)
    assert buyer.post(f"{path}/test-authentication", data={"answer": "complete"}).status_code == 303
    n = 4
    start = threading.Barrier(n)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def back() -> None:
        try:
            with app.app_context():
                start.wait()
                statuses.append(app.test_client().get(f"{path}/return").status_code)
                db.session.remove()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=back) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    assert sorted(statuses) == [303] * n
    db.session.rollback()
    [payment] = all_payments()
    assert (payment.status, payment.receipt_number) == ("succeeded", 1)
    assert count(Contact) == 1 and count(Deal) == 1


def test_b2_status_filter_advanced_filter_search_and_exports_include_incomplete_attempts(app, client, shop):
    owner, link = shop
    _start_3ds(app.test_client(), link)
    paid = app.test_client()
    assert paid.post(start_checkout(paid, link.slug), data=buyer_form(card_number=GOOD)).status_code == 303
    incomplete, succeeded = all_payments()
    assert incomplete.status == "incomplete"
    login(client, owner)

    assert row_ids(client.get("/payments/?status=incomplete")) == [incomplete.id]
    assert row_ids(client.get("/payments/?status=succeeded")) == [succeeded.id]
    chips = [text_of(chip) for chip in soup_of(client.get("/payments/?status=incomplete")).select(".chip")]
    assert any("Status: Incomplete" in chip for chip in chips), chips
    condition = ["status", "any_of", ["incomplete"]]
    assert row_ids(client.get(f"/payments/?adv={quote(json.dumps([[condition]]))}")) == [incomplete.id]
    # B3 search: by last 4 and by email.
    assert row_ids(client.get("/payments/?q=3184")) == [incomplete.id]
    assert row_ids(client.get("/payments/?q=rita%40example.com")) == [incomplete.id]
    rows = table_rows(client.get("/payments/?cols=amount,status,decline"))
    assert [(r["Status"].split()[0], r["Decline reason"]) for r in rows] == [("Succeeded", "—"),
                                                                            ("Incomplete", WAITING)]

    export = request_export(client, export_href(client, "?status=incomplete"),
                            columns=["amount", "status", "method", "decline"])
    run_outbox()
    header, *data = csv_rows(client, export)
    assert header == ["Gross amount", "Currency", "Status", "Payment method", "Card brand", "Last 4",
                      "Decline reason"]
    assert data == [["40.00", "USD", "Incomplete", "card", "visa", "3184", "requires_action"]]
    # B10: the spreadsheet says it in words.
    xlsx = request_export(client, export_href(client, "?status=incomplete"), file_format="xlsx",
                          columns=["amount", "status", "method", "decline"])
    run_outbox()
    sheet = openpyxl.load_workbook(io.BytesIO(download(client, xlsx).data)).active
    values = list(sheet.iter_rows(values_only=True))
    header = list(values[0])
    assert len(values) == 2
    assert values[1][header.index("Status")] == "Incomplete"
    assert values[1][header.index("Decline reason")] == WAITING


def test_b2_an_incomplete_attempt_never_counts_in_volume_ledger_receipts_payouts_reports_links_or_crm(
        app, client, shop):
    owner, link = shop
    with time_machine.travel(MONDAY, tick=False) as clock:
        _start_3ds(app.test_client(), link)
        second = app.test_client()
        path = _start_3ds(second, link)
        paid = app.test_client()
        assert paid.post(start_checkout(paid, link.slug), data=buyer_form(card_number=GOOD)).status_code == 303
        db.session.rollback()
        clock.shift(timedelta(minutes=11))
        checkout_service.reconcile_attempts()  # the first two are abandoned
        db.session.rollback()
        waiting, abandoned, succeeded = sorted(all_payments(), key=lambda p: p.id)
        assert [p.status for p in (waiting, abandoned, succeeded)] == ["incomplete", "incomplete", "succeeded"]
        account = db.session.get(Account, owner.account_id)

        assert {entry.payment_id for entry in db.session.scalars(select(LedgerEntry))} == {succeeded.id}
        assert (succeeded.receipt_number, waiting.receipt_number, abandoned.receipt_number) == (1, None, None)
        today = home.figures(account, ("live", "test"))
        assert (today.gross[0].today, today.payments.today) == (4000, 1)
        report = revenue.performance(account, ("live", "test"))
        assert (report.current.succeeded, report.current.failed) == (1, 0)
        assert count(Contact) == 1 and count(Deal) == 1
        assert waiting.contact_id is None and abandoned.deal_id is None
        login(client, owner)
        cells = [text_of(td) for td in soup_of(client.get("/links/")).select("table tbody tr td.num")]
        assert cells[1:] == ["1", "$40.00"]
        kinds = db.session.scalars(select(TimelineEntry.kind).where(TimelineEntry.subject_type == "payment",
                                                                    TimelineEntry.subject_id == waiting.id)).all()
        assert kinds == []  # nothing happened to money: no "payment failed" or "succeeded"
        assert second.get(path).status_code == 200

        clock.move_to(MONDAY + timedelta(days=2, hours=1))
        assert not run_tick().failed
        db.session.rollback()
        payouts = db.session.scalars(select(Payout).where(Payout.account_id == owner.account_id)).all()
        assert sum(p.amount_minor for p in payouts) == succeeded.net_settlement_minor


def test_b2_the_incomplete_panel_says_why_shows_brand_and_last4_only_and_is_404_to_another_merchant(
        app, client, shop):
    owner, link = shop
    _start_3ds(app.test_client(), link)
    [waiting] = all_payments()
    login(client, owner)

    panel = soup_of(client.get(f"/payments/{waiting.id}"))

    decline = text_of(panel.select_one("#card-decline"))
    assert decline.startswith("Why it's incomplete")
    assert f"Reason {WAITING}" in decline and "Card Visa •••• 3184" in decline
    assert panel.select_one(".pp__actions") is None
    for hidden in ("#card-amounts", "#card-refunds", "#card-associations"):
        assert panel.select_one(hidden) is None, hidden
    assert THREE_DS not in panel.get_text()
    stored = json.dumps([getattr(waiting, c.key) for c in Payment.__table__.columns], default=str)
    attempt = db.session.scalar(select(PaymentAttempt))
    assert THREE_DS not in stored + json.dumps(attempt.buyer) and "734" not in json.dumps(attempt.buyer)

    other, _other_link = make_shop("Other Shop")
    intruder = app.test_client()
    login(intruder, other)
    assert intruder.get(f"/payments/{waiting.id}").status_code == 404
    assert waiting.id not in row_ids(intruder.get("/payments/?status=incomplete"))


@pytest.mark.parametrize(("language", "status"), [("nl", "Onvolledig"), ("fr", "Incomplet")])
def test_b2_incomplete_is_said_in_the_merchants_language(app, client, shop, language, status):
    owner, link = shop
    _start_3ds(app.test_client(), link)
    login(client, owner)
    client.post("/preferences/language", data={"language": language, "next": "/"})

    [row] = table_rows(client.get("/payments/"))
    cells = " ".join(row.values())
    assert status in cells and WAITING not in cells


def test_b2_the_test_authentication_page_refuses_an_unknown_answer_and_changes_nothing(app, shop):
    _owner, link = shop
    buyer = app.test_client()
    path = _start_3ds(buyer, link)

    response = buyer.post(f"{path}/test-authentication", data={"answer": "maybe"})

    assert response.status_code == 422
    assert "Choose Complete or Fail" in response.get_data(as_text=True)
    assert [p.status for p in all_payments()] == ["incomplete"] and [a.status for a in attempts()] == ["pending"]


def test_b2_reloading_the_checkout_while_the_test_authentication_waits_shows_that_page_again(app, shop):
    _owner, link = shop
    buyer = app.test_client()
    path = _start_3ds(buyer, link)

    again = buyer.get(path)

    assert again.status_code == 202
    assert soup_of(again).select_one("h1").get_text(strip=True) == "Confirm your payment"
    assert again.headers["Cache-Control"] == "private, no-store"
    assert _answer(buyer, path, "complete").status_code == 303
    assert [p.status for p in all_payments()] == ["succeeded"]
