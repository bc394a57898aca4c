"""B6 Invoices you can see (R1): the payment panel shows the payment's invoice with a PDF download (for the
account's own invoices only), exports carry the invoice number, and the X3 option "associated records:
up to 1,000 or all" is in the export dialog and changes what the file holds."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import insert, select

from kassa.extensions import db
from kassa.models import Contact, Export, Invoice, Payment, Role
from tests.factories import make_merchant, make_user
from tests.support.app import run_outbox
from tests.support.checkout import pay_with_card
from tests.support.checkout_flow import item, make_link, pdf_text
from tests.support.payments import bulk_payments, login, soup_of, text_of

PDF_COPY = Path("/tmp/b6-invoice.pdf")  # a copy to look at (pdftoppm), written by the panel test


def invoiced_payment(client) -> tuple:
    """A merchant with invoices on, and one paid link payment with its invoice (R5)."""
    owner = make_merchant(company="Invoice Panel Shop")
    login(client, owner)
    assert client.post("/settings/payments", data={"create_invoices": "1", "retry_days": "1, 3"}).status_code == 303
    link = make_link(owner, items=[item("Workshop", "15.00")], name="Workshop")
    buyer = client.application.test_client()
    assert pay_with_card(buyer, link.slug, email="walk.in@example.com").status_code == 303
    db.session.rollback()
    payment = db.session.scalar(select(Payment).where(Payment.link_id == link.id))
    invoice = db.session.scalar(select(Invoice).where(Invoice.payment_id == payment.id))
    assert invoice is not None and invoice.number == 1
    return owner, payment, invoice


def test_b6_payment_panel_shows_its_invoice_with_a_pdf_download(client):
    owner, payment, invoice = invoiced_payment(client)

    card = soup_of(client.get(f"/payments/{payment.id}")).select_one("#card-invoice")
    assert card is not None, "no Invoice card on the payment panel"
    assert "INV-000001" in text_of(card) and "$15.00" in text_of(card) and "Paid" in text_of(card)
    href = card.select_one("a[download]")["href"]
    assert href == f"/payments/invoices/{invoice.id}.pdf"

    response = client.get(href)
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert 'filename="invoice-INV-000001.pdf"' in response.headers["Content-Disposition"]
    assert "no-store" in response.headers["Cache-Control"]
    text = pdf_text(response.data)
    assert "Invoice number INV-000001" in text and "$15.00" in text and "Workshop" in text
    PDF_COPY.write_bytes(response.data)

    # Someone else's invoice is not there at all; a member without the payments permission may not.
    stranger = client.application.test_client()
    login(stranger, make_merchant(company="Somebody Else"))
    assert stranger.get(href).status_code == 404
    assert stranger.get("/payments/invoices/99999999999999999999.pdf").status_code == 404
    member = client.application.test_client()
    login(member, make_user(owner.account_id, Role.MEMBER))
    assert member.get(href).status_code == 403


def test_b6_a_payment_without_an_invoice_says_so(client):
    owner = make_merchant(company="No Invoices")
    login(client, owner)
    bulk_payments(owner.account_id, [{"amount_minor": 1000}])
    db.session.rollback()
    payment_id = db.session.scalar(select(Payment.id).where(Payment.account_id == owner.account_id))
    response = client.get(f"/payments/{payment_id}")
    assert response.status_code == 200
    card = soup_of(response).select_one("#card-invoice")
    assert "No invoice for this payment." in text_of(card)
    assert "Create an invoice for every payment" in text_of(card)  # how to get them
    assert card.select_one("a[download]") is None


def _dialog_data(client, **form) -> dict:
    page = soup_of(client.get("/exports/payments?tab=payments&state="))
    data = {"state": page.select_one('input[name="state"]')["value"], "tab": "payments", "name": "Assoc",
            "file_format": "csv", "language": "en"}
    data.update(form)
    return data


def _export(client, **form) -> tuple[Export, list[list[str]]]:
    response = client.post("/exports/payments", data=_dialog_data(client, **form))
    assert response.status_code == 303, response.get_data(as_text=True)[:800]
    run_outbox()
    db.session.rollback()
    export = db.session.scalar(select(Export).order_by(Export.id.desc()))
    assert export.status == "done", export.error
    body = client.get(f"/exports/{export.id}/download").data
    if export.file_format == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(body)).active
        return export, [["" if v is None else v for v in row] for row in sheet.iter_rows(values_only=True)]
    return export, list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_b6_exports_have_an_invoice_number_column(client, file_format):
    owner, _payment, _invoice = invoiced_payment(client)
    bulk_payments(owner.account_id, [{"amount_minor": 700, "buyer_email": "no.invoice@example.com"}])
    offered = [box["value"] for box in soup_of(client.get("/exports/payments?tab=payments&state="))
               .select('input[name="columns"]')]
    assert "invoice" in offered

    _export_row, rows = _export(client, columns=["amount", "email", "invoice"], file_format=file_format)
    header, body = rows[0], rows[1:]
    assert header == ["Gross amount", "Currency", "Contact email", "Invoice number"]
    numbers = {row[2]: row[3] for row in body}
    assert numbers == {"walk.in@example.com": "INV-000001", "no.invoice@example.com": ""}


def test_b6_x3_associated_records_up_to_1000_or_all(client):
    owner = make_merchant(company="Many Contacts")
    login(client, owner)
    account_id = owner.account_id
    count = 1003
    with db.engine.begin() as conn:
        conn.execute(insert(Contact), [{"account_id": account_id, "mode": "test", "email": f"c{i:04d}@example.com"}
                                       for i in range(count)])
    db.session.rollback()
    contacts = dict(db.session.execute(select(Contact.email, Contact.id).where(Contact.account_id == account_id)).all())
    bulk_payments(account_id, [{"amount_minor": 100 + i, "buyer_email": f"c{i:04d}@example.com",
                                "contact_id": contacts[f"c{i:04d}@example.com"]} for i in range(count)])

    # The dialog offers both, "up to 1,000" chosen, under "Include associated records".
    dialog = soup_of(client.get("/exports/payments?tab=payments&state="))
    radios = dialog.select('input[name="association_limit"]')
    assert [r["value"] for r in radios] == ["1000", "all"]
    assert [r["value"] for r in radios if r.has_attr("checked")] == ["1000"]

    columns = ["amount", "email"]
    first, rows = _export(client, columns=columns, associations="1", association_limit="1000")
    header, body = rows[0], rows[1:]
    contact = header.index("Associated contact")
    named = [row[contact] for row in body if row[contact]]
    assert len(body) == count and len(named) == 1000
    assert all(row[contact] == row[header.index("Contact email")] for row in body[:1000])  # the first 1,000 rows
    assert all(row[contact] == "" for row in body[1000:])
    note = text_of(soup_of(client.get("/exports/")).select_one(".export-note"))
    assert "first 1,000" in note and "3 more were left out" in note

    every, rows = _export(client, columns=columns, associations="1", association_limit="all")
    body = rows[1:]
    assert all(row[contact] == row[header.index("Contact email")] for row in body)
    assert len([row for row in body if row[contact]]) == count
    assert (every.params.get("notes") or {}) == {}
    assert first.params["notes"] == {"associations_left_out": 3}

    # Anything else is refused at the field, and nothing is queued.
    before = db.session.scalar(select(Export.id).order_by(Export.id.desc()))
    response = client.post("/exports/payments", data=_dialog_data(client, associations="1", association_limit="500"))
    assert response.status_code == 422
    assert "up to 1,000" in text_of(soup_of(response).select_one("#f-association_limit-error"))
    db.session.rollback()
    assert db.session.scalar(select(Export.id).order_by(Export.id.desc())) == before
