"""Exports (X2, X3): Payments → Export writes exactly the rows of the filtered, sorted view (not just the
page) in CSV, XLSX or XLS, in the background, with progress, a notification and an email; the link is for
the account's members only and expires after 7 days. Reports (X1) come out of the same machinery."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import openpyxl
import pytest
import time_machine
import xlrd
from sqlalchemy import select

from kassa.clock import now
from kassa.extensions import db
from kassa.models import EmailMessage, Export, Notification, Role
from tests.factories import make_merchant, make_user
from tests.support.app import run_outbox
from tests.support.payments import bulk_payments, login, soup_of, text_of


@pytest.fixture
def merchant(client):
    owner = make_merchant(company="Export Shop")
    login(client, owner)
    return owner


def seed(account_id: int, n: int = 30) -> None:
    """`n` test payments, one a minute, amounts 10.00, 11.00, …; every third one failed."""
    start = now() - timedelta(days=1)
    bulk_payments(account_id, [
        {"amount_minor": 1000 + 100 * i, "created_at": start + timedelta(minutes=i),
         "buyer_email": f"buyer{i:03d}@example.com", "status": "failed" if i % 3 == 0 else "succeeded",
         "display_status": "failed" if i % 3 == 0 else "succeeded"}
        for i in range(n)])


def export_href(client, query: str = "") -> str:
    """The Export button on the payments index, as the merchant sees it for this view."""
    page = soup_of(client.get(f"/payments/{query}"))
    button = page.find("a", string=lambda s: s and s.strip() == "Export")
    assert button is not None, "no Export button on the payments index"
    return button["href"]


def request_export(client, href: str, **form) -> Export:
    dialog = soup_of(client.get(href))
    data = {"state": dialog.select_one('input[name="state"]')["value"],
            "tab": dialog.select_one('input[name="tab"]')["value"],
            "name": "My export", "file_format": "csv", "language": "en",
            "columns": [box["value"] for box in dialog.select('input[name="columns"][checked]')]}
    data.update(form)
    response = client.post("/exports/payments", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)[:800]
    db.session.rollback()
    return db.session.scalar(select(Export).order_by(Export.id.desc()))


def download(client, export: Export):
    response = client.get(f"/exports/{export.id}/download")
    assert response.status_code == 200, response.status_code
    return response


def csv_rows(client, export: Export) -> list[list[str]]:
    body = download(client, export).data
    assert body.startswith("\ufeff".encode())  # a BOM, so Excel reads UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_export_has_exactly_the_filtered_rows_in_the_views_order_not_just_the_page(client, merchant):
    """X3: 30 payments, 20 succeeded, the index shows a page; the export holds all 20 in the view's sort."""
    seed(merchant.account_id, 30)
    href = export_href(client, "?status=succeeded&sort=amount_asc&page_size=10")
    state = parse_qs(urlsplit(href).query)["state"][0]
    assert "status=succeeded" in state and "sort=amount_asc" in state

    export = request_export(client, href)
    assert export.status == "queued"
    assert export.rows_total == 20
    run_outbox()
    db.session.refresh(export)
    assert export.status == "done"

    rows = csv_rows(client, export)
    header, body = rows[0], rows[1:]
    assert header[:3] == ["Gross amount", "Currency", "Status"]
    assert len(body) == 20
    amounts = [float(row[0]) for row in body]
    assert amounts == sorted(amounts)
    assert {row[2] for row in body} == {"Succeeded"}
    expected = sorted(10 + i for i in range(30) if i % 3)
    assert amounts == expected


def test_xlsx_keeps_numbers_and_dates_typed_and_escapes_formulas(client, merchant):
    seed(merchant.account_id, 3)
    bulk_payments(merchant.account_id, [{"amount_minor": 4200, "buyer_name": "=HYPERLINK(\"http://x\",\"win\")",
                                         "created_at": now() - timedelta(hours=1)}])
    export = request_export(client, export_href(client), file_format="xlsx")
    run_outbox()
    response = download(client, export)
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    values = list(sheet.iter_rows(values_only=True))
    header = list(values[0])
    amount, date_col, contact = header.index("Gross amount"), header.index("Payment date"), header.index("Contact")
    assert len(values) == 5
    assert all(isinstance(row[amount], float | int) for row in values[1:])
    assert all(isinstance(row[date_col], datetime) for row in values[1:])
    assert values[1][amount] == 42  # newest first: the one-hour-old payment
    assert values[1][contact] == "'=HYPERLINK(\"http://x\",\"win\")"  # text, never a formula


def test_xls_is_refused_with_a_clear_message_over_its_row_limit(client, merchant, monkeypatch):
    """X3: XLS holds at most 65,535 rows plus the header; a bigger export says so and changes nothing."""
    from kassa.services.exports import exports

    seed(merchant.account_id, 5)
    monkeypatch.setattr(exports, "XLS_MAX_ROWS", 4)
    href = export_href(client)
    dialog = soup_of(client.get(href))
    response = client.post("/exports/payments", data={
        "state": dialog.select_one('input[name="state"]')["value"], "tab": "payments", "name": "Too big",
        "file_format": "xls", "language": "en"})
    assert response.status_code == 422
    error = text_of(soup_of(response).select_one("#f-file_format-error"))
    assert "XLS files hold at most 4 rows and this export has 5" in error
    assert db.session.scalar(select(Export.id)) is None

    monkeypatch.setattr(exports, "XLS_MAX_ROWS", 5)
    export = request_export(client, href, file_format="xls")
    run_outbox()
    book = xlrd.open_workbook(file_contents=download(client, export).data)
    assert book.sheet_by_index(0).nrows == 6


def test_ready_export_notifies_in_the_app_and_by_email(client, merchant):
    """X2: the bell shows it, the notification links to the file, and an email carries the link."""
    seed(merchant.account_id, 4)
    export = request_export(client, export_href(client), name="April payments")
    progress = soup_of(client.get("/exports/?started=1"))
    assert progress.select_one("progress") is not None  # queued: a progress bar, and the page polls
    assert progress.select_one("#export-table[hx-trigger]") is not None
    run_outbox()

    page = soup_of(client.get("/exports/"))
    assert page.select_one("#export-table[hx-trigger]") is None  # done: polling stops
    assert page.select_one(".bell__count") is not None
    assert text_of(page.select_one(".bell__count")).startswith("1")
    [note] = db.session.scalars(select(Notification)).all()
    assert "April payments" in note.text and "4 rows" in note.text
    notes = soup_of(client.get("/exports/notifications"))
    assert f"/exports/{export.id}/download" in notes.select_one(".notifications a")["href"]
    # M5: looking doesn't mark anything read; the page's "Mark all as read" form (a POST) does.
    assert soup_of(client.get("/exports/")).select_one(".bell__count") is not None
    form = notes.select_one("form[action='/exports/notifications/read']")
    assert client.post(form["action"], data={"up_to": form.select_one("[name=up_to]")["value"]}).status_code == 303
    assert soup_of(client.get("/exports/")).select_one(".bell__count") is None  # read now

    [email] = db.session.scalars(select(EmailMessage).where(EmailMessage.kind == "export_ready")).all()
    assert email.to_addrs == [merchant.email]
    assert f"/exports/{export.id}/download" in email.text_body


def test_download_is_for_members_of_the_account_only_and_expires_after_7_days(client, merchant):
    seed(merchant.account_id, 2)
    export = request_export(client, export_href(client))
    run_outbox()
    download(client, export)

    member = make_user(merchant.account_id, Role.MEMBER)
    other_client = client.application.test_client()
    login(other_client, member)
    assert other_client.get(f"/exports/{export.id}/download").status_code == 403

    stranger = make_merchant(company="Not Yours")
    other_client = client.application.test_client()
    login(other_client, stranger)
    assert other_client.get(f"/exports/{export.id}/download").status_code == 404
    assert other_client.post(f"/exports/{export.id}/cancel").status_code == 404

    with time_machine.travel(now() + timedelta(days=7, minutes=1), tick=False):
        response = client.get(f"/exports/{export.id}/download")
        assert response.status_code == 410
        assert "expired" in response.get_data(as_text=True)


def test_a_cancelled_export_is_never_built(client, merchant):
    seed(merchant.account_id, 3)
    export = request_export(client, export_href(client))
    response = client.post(f"/exports/{export.id}/cancel")
    assert response.status_code == 303
    run_outbox()
    db.session.refresh(export)
    assert export.status == "cancelled"
    assert export.stored_name is None
    assert client.get(f"/exports/{export.id}/download").status_code == 404


def test_export_validation_errors_are_shown_at_the_field_and_nothing_is_queued(client, merchant):
    seed(merchant.account_id, 2)
    href = export_href(client)
    state = soup_of(client.get(href)).select_one('input[name="state"]')["value"]
    response = client.post("/exports/payments", data={"state": state, "tab": "payments", "name": "x" * 121,
                                                      "file_format": "pdf", "language": "xx"})
    assert response.status_code == 422
    page = soup_of(response)
    assert "120 characters" in text_of(page.select_one("#f-name-error"))
    assert "CSV, XLS or XLSX" in text_of(page.select_one("#f-file_format-error"))
    assert db.session.scalar(select(Export.id)) is None


def test_headers_follow_the_chosen_language(client, merchant):
    seed(merchant.account_id, 2)
    export = request_export(client, export_href(client), language="nl")
    run_outbox()
    header = csv_rows(client, export)[0]
    assert header[0] == "Brutobedrag"


def test_payout_reconciliation_report_lists_each_payout_with_its_transactions(client, merchant):
    """X1: a report built in the background, with each payout's payments and fees."""
    from kassa.services.platform.ticks import run_tick
    from tests.support.checkout import pay_with_card
    from tests.support.checkout_flow import item, make_link

    link = make_link(merchant, items=[item("Class", "30.00")])
    monday = datetime(2027, 2, 1, 15, tzinfo=UTC)
    with time_machine.travel(monday, tick=False) as clock:
        buyer = client.application.test_client()
        assert pay_with_card(buyer, link.slug).status_code == 303
        clock.move_to(monday + timedelta(days=2, hours=1))
        assert not run_tick().failed
        db.session.rollback()
        login(client, merchant)  # the session from before the trip has expired
        response = client.post("/reports/", data={"kind": "payout_reconciliation", "file_format": "csv",
                                                  "from": "2027-02-01", "to": "2027-02-28", "language": "en"})
        assert response.status_code == 303
        run_outbox()
        export = db.session.scalar(select(Export).order_by(Export.id.desc()))
        rows = csv_rows(client, export)
    header, body = rows[0], rows[1:]
    assert header[:5] == ["Payout", "Payout date", "Arrival date", "Payout status", "Payout amount"]
    assert sorted(row[5] for row in body) == ["charge", "fee"]
    assert float(body[0][4]) == pytest.approx(sum(float(row[6]) for row in body))


def read_back(client, export: Export) -> tuple[list[str], list[list]]:
    """The file as a spreadsheet user gets it: csv module, openpyxl or xlrd."""
    data = download(client, export).data
    if export.file_format == "csv":
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    elif export.file_format == "xlsx":
        rows = [list(r) for r in openpyxl.load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True)]
    else:
        sheet = xlrd.open_workbook(file_contents=data).sheet_by_index(0)
        rows = [sheet.row_values(i) for i in range(sheet.nrows)]
    return [str(h) for h in rows[0]], rows[1:]


def cents(value) -> int:
    return round(float(value) * 100)


@pytest.fixture
def paid_out(client, merchant):
    """Three payments and a partial refund on Monday; Wednesday's payout takes them."""
    from kassa.services.platform.ticks import run_tick
    from tests.support.checkout import pay_with_card
    from tests.support.checkout_flow import item, make_link

    link = make_link(merchant, items=[item("Class", "30.00")])
    monday = datetime(2027, 2, 1, 15, tzinfo=UTC)
    with time_machine.travel(monday, tick=False) as clock:
        buyer = client.application.test_client()
        for _ in range(3):
            assert pay_with_card(buyer, link.slug).status_code == 303
        db.session.rollback()
        login(client, merchant)
        payment_id = _first_payment(merchant.account_id)
        dialog = soup_of(client.get(f"/payments/{payment_id}/refund"))
        response = client.post(f"/payments/{payment_id}/refund", data={
            "amount": "7.50", "reason": "requested_by_customer", "note": "",
            "key": dialog.select_one('input[name="key"]')["value"]})
        assert response.status_code in (200, 204, 303)
        clock.move_to(monday + timedelta(days=2, hours=1))
        assert not run_tick().failed
        db.session.rollback()
        yield clock


def _first_payment(account_id: int) -> int:
    from kassa.models import Payment

    return db.session.scalar(select(Payment.id).where(Payment.account_id == account_id).order_by(Payment.id))


def _report(client, kind: str, fmt: str) -> Export:
    response = client.post("/reports/", data={"kind": kind, "file_format": fmt, "from": "2027-02-01",
                                              "to": "2027-02-28", "language": "en"})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    run_outbox()
    db.session.rollback()
    export = db.session.scalar(select(Export).order_by(Export.id.desc()))
    assert export.status == "done", export.error
    return export


def _ledger(account_id: int, *types: str) -> list:
    from kassa.models import LedgerEntry

    query = select(LedgerEntry).where(LedgerEntry.account_id == account_id)
    if types:
        query = query.where(LedgerEntry.type.in_(types))
    return db.session.scalars(query).all()


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "xls"])
def test_x1_reports_read_back_match_the_ledger(client, merchant, paid_out, fmt):
    """X1: each report, in each format, read back with the spreadsheet libraries, adds up to the ledger."""
    from kassa.models import Payout

    [payout] = db.session.scalars(select(Payout).where(Payout.account_id == merchant.account_id)).all()
    money_types = ("charge", "fee", "refund")

    from kassa.models import LedgerType

    # B10: CSV keeps the codes for machines; spreadsheets show the words the balance page uses.
    shown = (lambda code: code) if fmt == "csv" else (lambda code: LedgerType(code).label)
    header, rows = read_back(client, _report(client, "payout_reconciliation", fmt))
    assert sorted(r[header.index("Transaction type")] for r in rows) == sorted(
        shown(e.type) for e in _ledger(merchant.account_id, *money_types))
    assert sum(cents(r[header.index("Amount")]) for r in rows) == payout.amount_minor
    assert {cents(r[header.index("Payout amount")]) for r in rows} == {payout.amount_minor}

    header, rows = read_back(client, _report(client, "balance", fmt))
    ledger = _ledger(merchant.account_id, *money_types)
    assert len(rows) == len(ledger) == 7  # three payments, three fees, one refund
    assert sum(cents(r[header.index("Amount")]) for r in rows) == sum(e.amount_minor for e in ledger)

    header, rows = read_back(client, _report(client, "payout_details", fmt))
    charges = _ledger(merchant.account_id, "charge")
    assert len(rows) == 3
    assert sum(cents(r[header.index("Settled amount")]) for r in rows) == sum(e.amount_minor for e in charges)
    assert {r[header.index("Payout")] for r in rows} == {f"PO-{payout.id:06d}"}


def test_x3_properties_to_include_default_to_the_views_columns_and_can_be_changed(client, merchant):
    seed(merchant.account_id, 3)
    dialog = soup_of(client.get(export_href(client, "?cols=amount,status")))
    checked = [box["value"] for box in dialog.select('input[name="columns"][checked]')]
    offered = [box["value"] for box in dialog.select('input[name="columns"]')]
    assert checked == ["amount", "status"]
    assert {"fee", "net", "email", "dispute_reason"} <= set(offered)

    export = request_export(client, export_href(client, "?cols=amount,status"), columns=["amount", "fee", "email"])
    run_outbox()
    header, body = csv_rows(client, export)[0], csv_rows(client, export)[1:]
    assert header == ["Gross amount", "Currency", "Fee", "Contact email"]
    assert len(body) == 3 and all(row[3].endswith("@example.com") for row in body)
