"""B10 Exports that look finished: the XLSX a person opens has money as numbers in the currency's format
beside one Currency column, dates as dates in the account's time zone, methods and statuses as the words
the app shows (in the export's language), sized columns, a frozen header row and a filter on it. CSV is
for machines and stays byte for byte what it was."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest
import xlrd
from sqlalchemy import insert, update

from kassa.actor import Actor
from kassa.extensions import db
from kassa.models import Account, Company, Contact, Deal, Export, Pipeline, Stage, User
from kassa.services.exports import exports
from tests.factories import make_merchant
from tests.support.app import run_outbox
from tests.support.checkout_flow import item, make_link
from tests.support.payments import bulk_payments

GOLDEN = Path(__file__).parent / "golden"
# Every column the export offered before B10, in the dialog's order.
OLD_COLUMNS = ["amount", "status", "date", "contact", "method", "source", "currency", "fee", "net", "refunded",
               "receipt", "email", "company", "dispute_created", "dispute_reason", "dispute_amount",
               "dispute_deadline", "dispute_closed"]


def fixed_dataset(owner: User) -> None:
    """Eight live payments whose every exported value is fixed (no database ids, no 'now'): three
    currencies with 0, 2 and 3 decimals, card and ACH, a refund, a dispute, formula-looking and accented
    text, a payment from a link and associations to a contact, a company and a deal."""
    account_id = owner.account_id
    db.session.execute(update(Account).where(Account.id == account_id).values(timezone="America/New_York"))
    db.session.commit()
    link = make_link(owner, items=[item("Lesson", "25.00")], name="Yoga — spring", currency="EUR")
    with db.engine.begin() as conn:
        pipeline_id = conn.execute(insert(Pipeline).values(account_id=account_id, name="Sales")).inserted_primary_key[0]
        stage_id = conn.execute(insert(Stage).values(account_id=account_id, pipeline_id=pipeline_id,
                                                     name="Won")).inserted_primary_key[0]
        contact_id = conn.execute(insert(Contact).values(account_id=account_id, mode="live", email="zoe@example.com",
                                                         first_name="Zoë")).inserted_primary_key[0]
        company_id = conn.execute(insert(Company).values(account_id=account_id, mode="live",
                                                         name="Café Noir")).inserted_primary_key[0]
        deal_id = conn.execute(insert(Deal).values(account_id=account_id, mode="live", name="Deal: 10 lessons",
                                                   amount_minor=2450, currency="EUR", pipeline_id=pipeline_id,
                                                   stage_id=stage_id)).inserted_primary_key[0]

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2027, 3, day, hour, minute, 5, tzinfo=UTC)

    # Every row names the same keys (one multi-row INSERT).
    live = {"mode": "live", "settlement_currency": "EUR", "link_id": None, "receipt_number": None, "contact_id": None,
            "company_id": None, "deal_id": None, "bank_last4": None, "dispute_created_at": None,
            "dispute_reason": None, "dispute_amount_minor": None, "dispute_due_by": None, "buyer_name": "",
            "buyer_company": "", "card_brand": "visa", "card_last4": "4242", "refunded_minor": 0, "refund_reserved_minor": 0,
            "method": "card", "status": "succeeded", "display_status": "succeeded"}
    bulk_payments(account_id, [
        {**live, "amount_minor": 2450, "currency": "EUR", "fee_minor": 61, "created_at": at(1, 9),
         "buyer_name": "Zoë Ünal", "buyer_email": "zoe@example.com", "link_id": link.id, "receipt_number": 1,
         "contact_id": contact_id, "company_id": company_id, "deal_id": deal_id, "buyer_company": "Café Noir"},
        {**live, "amount_minor": 120000, "currency": "EUR", "fee_minor": 1825, "created_at": at(2, 23, 30),
         "buyer_name": "=SUM(A1:A9)", "buyer_email": "formula@example.com", "refunded_minor": 50000, "refund_reserved_minor": 50000,
         "display_status": "partially_refunded", "receipt_number": 2},
        {**live, "amount_minor": 5000, "currency": "JPY", "fee_minor": 180, "created_at": at(3, 4),
         "buyer_email": "kenji@example.com", "card_brand": "jcb", "card_last4": "0000", "receipt_number": 3},
        {**live, "amount_minor": 12345, "currency": "KWD", "fee_minor": 400, "created_at": at(4, 12),
         "buyer_email": "amir@example.com", "card_brand": "mastercard", "card_last4": "4444"},
        {**live, "amount_minor": 9900, "currency": "USD", "fee_minor": 79, "created_at": at(5, 15),
         "method": "ach", "card_brand": None, "card_last4": None, "bank_last4": "6789",
         "buyer_email": "ach@example.com", "buyer_name": "Ann Bank"},
        {**live, "amount_minor": 3000, "currency": "EUR", "fee_minor": 0, "created_at": at(6, 8),
         "status": "failed", "display_status": "failed", "buyer_email": "declined@example.com"},
        {**live, "amount_minor": 7500, "currency": "EUR", "fee_minor": 230, "created_at": at(7, 10),
         "display_status": "disputed_action_required", "buyer_email": "chargeback@example.com",
         "dispute_created_at": at(20, 10), "dispute_reason": "product_not_received", "dispute_amount_minor": 7500,
         "dispute_due_by": at(28, 23, 59)},
        {**live, "amount_minor": 0, "currency": "EUR", "fee_minor": 0, "created_at": at(8, 18),
         "buyer_email": "free@example.com", "buyer_name": " leading space"},
    ])


def export_file(owner: User, file_format: str, *, columns: list[str], language: str = "en",
                associations: bool = False, association_limit: str = "1000", state: str = "") -> tuple[Export, bytes]:
    """Ask for the export as the dialog does, let the worker build it, and return the file's bytes."""
    user = db.session.get(User, owner.id)
    export = exports.request_export(
        Actor(user=user, account_id=owner.account_id), kind="payments", name="Fixed", file_format=file_format,
        language=language, params={"state": state, "tab": "payments", "columns": columns, "associations": associations,
                                   "association_limit": association_limit, "modes": ["live"]})
    run_outbox()
    db.session.rollback()
    export = db.session.get(Export, export.id)
    assert export.status == "done", export.error
    return export, exports.downloadable(owner.account_id, export.id)[1].read_bytes()


@pytest.mark.parametrize(("columns", "associations", "golden"), [
    (None, False, "b10_payments_default.csv"),
    (OLD_COLUMNS, True, "b10_payments_every_column.csv"),
])
def test_b10_csv_bytes_are_unchanged_for_a_fixed_dataset(client, columns, associations, golden):
    """The CSV written before B10 (the golden files were made by the code before this change) is what
    a machine still gets: codes, ISO dates, plain numbers, both Currency columns, same order."""
    owner = make_merchant(company="Golden Shop")
    fixed_dataset(owner)
    default = ["amount", "status", "date", "contact", "method", "source", "currency"]
    _export, data = export_file(owner, "csv", columns=columns or default, associations=associations)
    assert data == (GOLDEN / golden).read_bytes()


def read_sheet(data: bytes):
    book = openpyxl.load_workbook(io.BytesIO(data))
    return book, book.active


def describe_sheet(sheet) -> str:
    """The sheet as a person sees it, in words: header, widths, frozen pane, filter, each cell's type and format."""
    lines = [f"freeze_panes={sheet.freeze_panes} auto_filter={sheet.auto_filter.ref}"]
    for cell in sheet[1]:
        width = sheet.column_dimensions[cell.column_letter].width
        lines.append(f"{cell.column_letter} {cell.value!r} bold={cell.font.b} width={width}")
    for row in sheet.iter_rows(min_row=2):
        lines.append(" | ".join(f"{c.value!r} <{c.data_type} {c.number_format}>" for c in row))
    return "\n".join(lines)


def test_b10_xlsx_has_money_formats_dates_words_widths_frozen_header_and_filter(client, tmp_path):
    owner = make_merchant(company="Sheet Shop")
    fixed_dataset(owner)
    columns = ["amount", "status", "date", "contact", "method", "source", "currency", "fee", "refunded", "email",
               "dispute_reason", "dispute_deadline"]
    _export, data = export_file(owner, "xlsx", columns=columns)
    _book, sheet = read_sheet(data)
    (tmp_path / "b10_sheet.txt").write_text(describe_sheet(sheet))
    header = [cell.value for cell in sheet[1]]
    col = {name: header.index(name) for name in header}
    rows = list(sheet.iter_rows(min_row=2))

    # One Currency column (CSV keeps the view's second one), the header frozen, a filter over every row.
    assert header.count("Currency") == 1
    assert header == ["Gross amount", "Currency", "Status", "Payment date", "Contact", "Payment method",
                      "Card brand", "Last 4", "Source", "Fee", "Refunded", "Contact email", "Dispute reason",
                      "Dispute deadline"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:N{len(rows) + 1}"
    workbook_xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/workbook.xml").decode()
    assert f'name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">Export!$A$1:$N${len(rows) + 1}<' in workbook_xml
    assert all(cell.font.b for cell in sheet[1])

    # Money: numbers, with the currency's decimals (newest first: the free EUR one, …, the JPY and EUR ones).
    by_email = {row[col["Contact email"]].value: row for row in rows}
    expected = {"zoe@example.com": ("EUR", 24.5, "#,##0.00"), "kenji@example.com": ("JPY", 5000, "#,##0"),
                "amir@example.com": ("KWD", 12.345, "#,##0.000"), "formula@example.com": ("EUR", 1200, "#,##0.00"),
                "free@example.com": ("EUR", 0, "#,##0.00")}
    for email, (currency, amount, number_format) in expected.items():
        row = by_email[email]
        gross, fee = row[col["Gross amount"]], row[col["Fee"]]
        assert row[col["Currency"]].value == currency
        assert gross.data_type == "n" and gross.value == pytest.approx(amount)
        assert gross.number_format == number_format and fee.number_format == number_format
    assert by_email["formula@example.com"][col["Refunded"]].value == 500

    # Dates: real dates, in the account's time zone (New York: 09:00:05 UTC is 04:00:05 there).
    zoe_date = by_email["zoe@example.com"][col["Payment date"]]
    assert zoe_date.is_date and zoe_date.value == datetime(2027, 3, 1, 4, 0, 5)
    assert by_email["chargeback@example.com"][col["Dispute deadline"]].is_date

    # Words, as the app shows them; text that looks like a formula stays text.
    assert by_email["zoe@example.com"][col["Payment method"]].value == "Card"
    assert by_email["ach@example.com"][col["Payment method"]].value == "Bank debit (ACH)"
    assert by_email["kenji@example.com"][col["Card brand"]].value == "JCB"
    assert by_email["chargeback@example.com"][col["Dispute reason"]].value == "Product not received"
    assert by_email["declined@example.com"][col["Status"]].value == "Failed"
    assert by_email["formula@example.com"][col["Contact"]].value == "'=SUM(A1:A9)"
    assert by_email["zoe@example.com"][col["Source"]].value == "Yoga — spring"

    # Widths: each column fits its header and its content; the emails' column is wider than the currency's.
    widths = {name: sheet.column_dimensions[openpyxl.utils.get_column_letter(i + 1)].width
              for name, i in col.items()}
    assert all(widths[name] >= len(name) + 2 for name in header)
    assert widths["Contact email"] >= len("chargeback@example.com")
    assert widths["Contact email"] > widths["Currency"]


def test_b10_xlsx_words_follow_the_export_language(client):
    owner = make_merchant(company="Taal Shop")
    fixed_dataset(owner)
    _export, data = export_file(owner, "xlsx", columns=["amount", "status", "method"], language="nl")
    _book, sheet = read_sheet(data)
    header = [cell.value for cell in sheet[1]]
    assert header[0] == "Brutobedrag"
    values = {row[header.index("Betaalmethode")] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert values == {"Kaart", "Bankafschrijving (ACH)"}
    statuses = {row[header.index("Status")] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert "Mislukt" in statuses


def test_b10_xls_gets_the_same_words_formats_and_one_currency_column(client):
    owner = make_merchant(company="Old Excel Shop")
    fixed_dataset(owner)
    _export, data = export_file(owner, "xls", columns=["amount", "method", "currency"])
    book = xlrd.open_workbook(file_contents=data, formatting_info=True)
    sheet = book.sheet_by_index(0)
    header = sheet.row_values(0)
    assert header == ["Gross amount", "Currency", "Payment method", "Card brand", "Last 4"]
    methods = {sheet.cell_value(r, 2) for r in range(1, sheet.nrows)}
    assert methods == {"Card", "Bank debit (ACH)"}
    formats = {}
    for r in range(1, sheet.nrows):
        xf = book.xf_list[sheet.cell_xf_index(r, 0)]
        formats[sheet.cell_value(r, 1)] = book.format_map[xf.format_key].format_str
    assert formats["JPY"] == "#,##0" and formats["EUR"] == "#,##0.00" and formats["KWD"] == "#,##0.000"
    assert sheet.horz_split_pos == 1  # the header row is frozen
