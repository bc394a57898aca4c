"""B10: the writers alone (no database). CSV ignores everything but the header labels; the spreadsheets
show words, one copy of a repeated column, money formats by the amount's decimals, sized columns, a
frozen header and a filter over exactly the rows written — however many rows are streamed."""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal

import openpyxl

from kassa.services.exports.export_writers import Column, column_letter, write_csv, write_xlsx

COLUMNS = [Column("Amount", "money"), Column("Currency"), Column("Method", words={"card": "Card"}),
           Column("Day", "date"), Column("Currency", in_sheets=False), Column("Note")]
ROWS = [
    (Decimal("24.50"), "EUR", "card", date(2027, 3, 1), "EUR", "=1+1"),
    (Decimal("5000"), "JPY", "sepa", date(2027, 3, 2), "JPY", None),
    (Decimal("12.345"), "KWD", None, None, "KWD", "x" * 200),
]


def never_cancel(_count: int) -> bool:
    return True


def test_b10_csv_reads_only_the_labels(tmp_path):
    with_columns, with_labels = tmp_path / "a.csv", tmp_path / "b.csv"
    write_csv(with_columns, COLUMNS, ROWS, never_cancel)
    write_csv(with_labels, [c.label for c in COLUMNS], ROWS, never_cancel)
    assert with_columns.read_bytes() == with_labels.read_bytes()
    text = with_columns.read_text(encoding="utf-8-sig")
    assert text.splitlines()[1] == "24.50,EUR,card,2027-03-01,EUR,'=1+1"  # codes, every column


def test_b10_xlsx_layout(tmp_path):
    path = tmp_path / "a.xlsx"
    assert write_xlsx(path, COLUMNS, ROWS, never_cancel) == 3
    sheet = openpyxl.load_workbook(path).active
    rows = list(sheet.iter_rows())
    assert [c.value for c in rows[0]] == ["Amount", "Currency", "Method", "Day", "Note"]
    assert [c.number_format for c in (rows[1][0], rows[2][0], rows[3][0])] == ["#,##0.00", "#,##0", "#,##0.000"]
    assert [rows[1][2].value, rows[2][2].value] == ["Card", "sepa"]  # unknown codes stay as they are
    assert rows[1][3].is_date and rows[1][3].number_format == "yyyy-mm-dd"
    assert rows[1][4].value == "'=1+1"
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:E4"
    widths = [sheet.column_dimensions[column_letter(i)].width for i in range(5)]
    assert widths[4] == 60  # the 200-character note is capped
    assert min(widths) >= 8


def test_b10_xlsx_streams_many_rows_and_filters_all_of_them(tmp_path):
    """Rows come from a generator (never a list in memory); the sample that sizes columns is written too."""
    count = 20_000
    rows = ((Decimal(i).scaleb(-2), "EUR", datetime(2027, 1, 1, 12, 0), f"buyer{i}@example.com")
            for i in range(count))
    path = tmp_path / "big.xlsx"
    columns = [Column("Amount", "money"), Column("Currency"), Column("When", "datetime"), Column("Email")]
    assert write_xlsx(path, columns, rows, never_cancel, every=5000) == count
    sheet = openpyxl.load_workbook(path, read_only=True).active
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == count + 1
    assert values[1][0] == 0 and values[-1][0] == (count - 1) / 100
    book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()))
    assert book.active.auto_filter.ref == f"A1:D{count + 1}"


def test_b10_column_letters():
    assert [column_letter(i) for i in (0, 25, 26, 51, 52, 701, 702)] == ["A", "Z", "AA", "AZ", "BA", "ZZ", "AAA"]
