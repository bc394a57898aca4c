"""V7 (issue 21): the accounts receivable aging report: every open or partially paid invoice with what is still
due, in the column of its age as of today (Current, 1–30, 31–60, 61–90, over 90 days past due), CSV and XLSX
through the export machinery; its columns add up to the open invoices to the cent."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from decimal import Decimal

import openpyxl
import time_machine
from sqlalchemy import select, update

from kassa.actor import Actor
from kassa.clock import UTC
from kassa.extensions import db
from kassa.models import Export, Invoice, User
from kassa.services.exports import exports
from kassa.services.exports.export_sources import AGING_BUCKETS, aging_bucket
from tests.factories import make_merchant
from tests.support.app import run_outbox
from tests.support.invoices import editor_form
from tests.support.payments import login, soup_of

TODAY = date(2027, 5, 20)
BUCKETS = ["Current", "1–30 days", "31–60 days", "61–90 days", "Over 90 days"]


def _invoice(client, owner, *, due: date, price: str = "45.00", finalize: bool = True) -> Invoice:
    response = client.post("/invoices/new", data=editor_form(
        due_date=due.isoformat(), issue_date=(due - timedelta(days=30)).isoformat(), **{
            "lines-0-unit_price": price, "lines-0-quantity": "1", "lines-0-discount_type": "", "lines-0-discount_value": "",
            "lines-1-description": None, "lines-1-quantity": None, "lines-1-unit_price": None}))
    assert response.status_code == 303, [e.get_text(" ", strip=True) for e in soup_of(response).select(".error-summary, .field__error, [role=alert]")]
    db.session.rollback()
    invoice = db.session.scalars(select(Invoice).where(Invoice.account_id == owner.account_id)
                                 .order_by(Invoice.id.desc())).first()
    if finalize:
        assert client.post(f"/invoices/{invoice.id}/finalize").status_code in (200, 303)
    return invoice


def _aging(owner, file_format: str) -> bytes:
    user = db.session.get(User, owner.id)
    export = exports.request_export(Actor(user=user, account_id=owner.account_id), kind="ar_aging",
                                    name="Aging", file_format=file_format, language="en", params={"modes": ["live"]})
    run_outbox()
    db.session.rollback()
    export = db.session.get(Export, export.id)
    assert export.status == "done", export.error
    return exports.downloadable(owner.account_id, export.id)[1].read_bytes()


def test_v7_buckets_are_the_accountants_ones():
    assert [aging_bucket(days) for days in (-5, 0, 1, 30, 31, 60, 61, 90, 91, 400)] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert len(AGING_BUCKETS) == len(BUCKETS)


def test_v7_every_unpaid_invoice_in_the_column_of_its_age_adding_up_to_the_cent(client):
    with time_machine.travel(datetime(2027, 5, 20, 10, tzinfo=UTC), tick=False):
        owner = make_merchant(company="Fietsenmaker")
        login(client, owner)
        due_days = {"not due": -3, "due today": 0, "1 day": 1, "30 days": 30, "45 days": 45, "75 days": 75,
                    "120 days": 120}
        invoices = {name: _invoice(client, owner, due=TODAY - timedelta(days=days), price=f"{100 + n}.10")
                    for n, (name, days) in enumerate(due_days.items())}
        # Partly paid: only what is still due counts. Paid, void and draft invoices owe nothing.
        with db.engine.begin() as conn:
            conn.execute(update(Invoice).where(Invoice.id == invoices["45 days"].id)
                         .values(amount_paid_minor=5_000, status="partially_paid"))
        paid = _invoice(client, owner, due=TODAY - timedelta(days=10))
        voided = _invoice(client, owner, due=TODAY - timedelta(days=10))
        with db.engine.begin() as conn:
            conn.execute(update(Invoice).where(Invoice.id == paid.id).values(status="paid",
                                                                              amount_paid_minor=paid.amount_minor))
            conn.execute(update(Invoice).where(Invoice.id == voided.id).values(status="void"))
        _invoice(client, owner, due=TODAY - timedelta(days=10), finalize=False)
        stranger = make_merchant(company="Someone Else")  # one merchant never sees another's receivables
        other_browser = client.application.test_client()
        login(other_browser, stranger)
        _invoice(other_browser, stranger, due=TODAY - timedelta(days=200))

        rows = list(csv.DictReader(io.StringIO(_aging(owner, "csv").decode("utf-8-sig"))))
        sheet = openpyxl.load_workbook(io.BytesIO(_aging(owner, "xlsx")), read_only=True).active
        sheet_rows = list(sheet.iter_rows(values_only=True))

    db.session.rollback()
    expected_due = {name: db.session.get(Invoice, inv.id).amount_minor - (5_000 if name == "45 days" else 0)
                    for name, inv in invoices.items()}
    assert len(rows) == len(invoices) == len(sheet_rows) - 1
    by_due_date = {row["Due date"]: row for row in rows}
    expected_bucket = {"not due": 0, "due today": 0, "1 day": 1, "30 days": 1, "45 days": 2, "75 days": 3,
                       "120 days": 4}
    for name, days in due_days.items():
        row = by_due_date[(TODAY - timedelta(days=days)).isoformat()]
        assert int(row["Days past due"]) == max(days, 0), name
        due = Decimal(expected_due[name]) / 100
        assert Decimal(row["Amount due"]) == due, name
        assert [Decimal(row[column]) for column in BUCKETS] == [
            due if index == expected_bucket[name] else Decimal("0.00") for index in range(5)], name
    # The columns' totals are the receivables by age: together, every open invoice's amount due.
    assert sum(Decimal(row[column]) for row in rows for column in BUCKETS) == Decimal(sum(expected_due.values())) / 100
    assert sum(Decimal(row["Amount due"]) for row in rows) == Decimal(sum(expected_due.values())) / 100
    assert {row["Currency"] for row in rows} == {"EUR"}
    header = sheet_rows[0]
    assert list(header[7:12]) == BUCKETS
    assert sum(Decimal(str(value)) for row in sheet_rows[1:] for value in row[7:12]) == \
        Decimal(sum(expected_due.values())) / 100
