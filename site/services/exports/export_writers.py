"""Writing rows to CSV, XLS and XLSX (X3, B10): streamed, typed, and safe to open in a spreadsheet.

Renderers are pure: they take the columns (header label and how a spreadsheet shows them) and an iterator
of rows and write a file. CSV is for machines and stays exactly as it was: codes ("card", "charge"),
plain numbers, ISO dates, every column. The spreadsheets are for people: money as numbers in the
currency's format (two decimals for EUR, none for JPY — one Currency column beside them), dates as dates,
codes as the words the app shows, columns sized to their content, a frozen header row and a filter on it.
Text that a spreadsheet would run as a formula is escaped in every format.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from itertools import chain, islice
from pathlib import Path
from typing import Any

XLS_MAX_ROWS = 65_535  # an XLS sheet has 65,536 rows and one of them is the header
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FORMULA_CHARS = "=+-@\t\r"
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xls": "application/vnd.ms-excel",
}


@dataclass(frozen=True)
class Column:
    """One export column. CSV reads only the label; spreadsheets also use the rest.

    kind: text | money | datetime | date | number (money values are Decimals in major units, their
    exponent is the currency's: Decimal("24.50") for EUR, Decimal("500") for JPY).
    words: a stored code → the word the app shows for it, in the export's language ("card" → "Card").
    in_sheets: False for a column that only repeats another (the view's Currency beside Gross amount's).
    """

    label: str
    kind: str = "text"
    words: Mapping[str, str] | None = None
    in_sheets: bool = True


def as_column(header: Column | str) -> Column:
    return header if isinstance(header, Column) else Column(str(header))


def safe_text(value: str) -> str:
    """Cells starting with = + - @ tab or CR would be formulas in Excel: make them plain text."""
    return f"'{value}" if value.startswith(FORMULA_START) else value


Progress = Callable[[int], bool]  # called every few thousand rows with the count; False means "cancel"


class Cancelled(Exception):
    pass


def write_csv(path: Path, headers: Sequence[Column | str], rows: Iterable[Sequence[Any]], progress: Progress,
              every: int = 5000) -> int:
    count = 0
    # UTF-8 with a BOM, so Excel opens accents and € correctly.
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow([safe_text(as_column(h).label) for h in headers])
        for row in rows:
            # csv writes None as "" and numbers as they are; only text and dates need a look.
            cells = []
            for value in row:
                kind = type(value)
                if kind is str:
                    if value and value[0] in FORMULA_CHARS:
                        value = "'" + value
                elif kind is datetime:
                    value = value.isoformat(timespec="seconds")
                elif kind is date:
                    value = value.isoformat()
                cells.append(value)
            writer.writerow(cells)
            count += 1
            if count % every == 0 and not progress(count):
                raise Cancelled
    return count


class _Sheet:
    """What both spreadsheet writers share: which columns to show, and codes turned into words."""

    def __init__(self, headers: Sequence[Column | str]):
        columns = [as_column(h) for h in headers]
        keep = [i for i, column in enumerate(columns) if column.in_sheets]
        self.columns = [columns[i] for i in keep]
        self.keep = keep if len(keep) < len(columns) else None
        self.words = [column.words for column in self.columns]
        self.translated = [(i, words) for i, words in enumerate(self.words) if words]

    def values(self, rows: Iterable[Sequence[Any]]) -> Iterator[list]:
        keep, translated = self.keep, self.translated
        for row in rows:
            values = [row[i] for i in keep] if keep is not None else list(row)
            for i, words in translated:
                value = values[i]
                if value is not None:
                    values[i] = words.get(value, value)
            yield values


def _display_width(value: Any) -> int:
    """About how many characters a spreadsheet needs to show the value (Calibri 11, default zoom)."""
    kind = type(value)
    if kind is Decimal:
        return len(f"{value:,}") + 1
    if kind is datetime:
        return 19
    if kind is date:
        return 10
    return max((len(line) for line in str(value).splitlines()), default=0)


WIDTH_SAMPLE = 500  # rows read ahead to size the columns (the header row comes before the data)


def column_widths(columns: Sequence[Column], sample: Sequence[Sequence[Any]]) -> list[float]:
    """Each column as wide as its header (plus the filter button) or its widest sampled value, within 8–60."""
    widths = []
    for i, column in enumerate(columns):
        longest = max((_display_width(row[i]) for row in sample if row[i] is not None), default=0)
        widths.append(float(min(60, max(8, len(column.label) + 4, longest + 2))))
    return widths


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


# -- XLSX ---------------------------------------------------------------------------------------------
# Written directly as the few XML parts an XLSX file needs, streamed into the zip row by row: about five
# times faster than a general spreadsheet library, and memory stays flat however many rows there are.
# Strings are inline (no shared-string table to keep in memory); dates are Excel serial numbers with a
# date format, so they sort and filter as dates. The column widths come from the first rows (read ahead,
# since <cols> precedes the data); the filter's range, known only at the end, goes after the data, and the
# workbook part that names it is written last.

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
SHEET_NAME = "Export"
_XLSX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>'),
    "_rels/.rels": (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="{_PKG}">'
        f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
    "xl/_rels/workbook.xml.rels": (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="{_PKG}">'
        f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_REL}/styles" Target="styles.xml"/></Relationships>'),
    # Cell styles: 0 plain, 1 date and time, 2 date, 3 the header row (bold, shaded, a line under it),
    # 4–8 money with 0–4 decimals and thousands separators (Excel shows them in the reader's locale:
    # 1,234.50 in English, 1.234,50 in Dutch).
    "xl/styles.xml": (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><styleSheet xmlns="{_NS}">'
        '<numFmts count="5"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/>'
        '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/><numFmt numFmtId="166" formatCode="#,##0.0"/>'
        '<numFmt numFmtId="167" formatCode="#,##0.000"/><numFmt numFmtId="168" formatCode="#,##0.0000"/>'
        '</numFmts>'
        '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="3"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill>'
        '<fill><patternFill patternType="solid"><fgColor rgb="FFF2F2F2"/><bgColor indexed="64"/></patternFill></fill>'
        '</fills>'
        '<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border>'
        '<border><left/><right/><top/><bottom style="thin"><color rgb="FF999999"/></bottom><diagonal/></border>'
        '</borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="9"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="0" fontId="1" fillId="2" borderId="1" xfId="0" applyFont="1" applyFill="1" applyBorder="1"/>'
        '<xf numFmtId="3" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="4" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="167" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="168" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'),
}
MONEY_FORMATS = {0: "#,##0", 1: "#,##0.0", 2: "#,##0.00", 3: "#,##0.000", 4: "#,##0.0000"}
# A money cell's opening tag by the Decimal's exponent (-2 for cents): the currency's decimals.
_MONEY_OPEN = {-decimals: f'<c s="{4 + decimals}"><v>' for decimals in MONEY_FORMATS}
_EXCEL_EPOCH = datetime(1899, 12, 30)  # noqa: DTZ001 - Excel's day zero, a calendar value
_EXCEL_EPOCH_DAYS = _EXCEL_EPOCH.toordinal()
# XML 1.0 can't hold most control characters; escape the markup ones and drop the rest.
_XML_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;",
                           **{chr(c): None for c in range(32) if c not in (9, 10, 13)}})


_NEEDS_ESCAPE = re.compile(r"[&<>\x00-\x08\x0b\x0c\x0e-\x1f]")


def _xlsx_text(value: str) -> str:
    if value and value[0] in FORMULA_CHARS:
        value = "'" + value
    if _NEEDS_ESCAPE.search(value):
        value = value.translate(_XML_TEXT)
    space = ' xml:space="preserve"' if value != value.strip() else ""
    return f'<c t="inlineStr"><is><t{space}>{value}</t></is></c>'


def _xlsx_cell(value: Any) -> str:
    kind = type(value)
    if kind is Decimal:
        return _money_cell(value)
    if kind is int or kind is float:
        return f"<c><v>{value}</v></c>"
    if kind is datetime:
        if value.tzinfo is not None:
            value = value.replace(tzinfo=None)
        return f'<c s="1"><v>{(value - _EXCEL_EPOCH).total_seconds() / 86400:.10f}</v></c>'
    if kind is date:
        return f'<c s="2"><v>{value.toordinal() - _EXCEL_EPOCH_DAYS}</v></c>'
    if kind is bool:
        return f'<c t="b"><v>{int(value)}</v></c>'
    return _xlsx_text(str(value))


def _xlsx_sheet_start(columns: Sequence[Column], widths: Sequence[float]) -> str:
    cols = "".join(f'<col min="{i}" max="{i}" width="{width:g}" customWidth="1"/>'
                   for i, width in enumerate(widths, start=1))
    header = "".join(_xlsx_text(column.label).replace("<c ", '<c s="3" ', 1) for column in columns)
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="{_NS}">'
            # The header row stays in view while scrolling (frozen pane under row 1).
            '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" '
            'state="frozen"/><selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
            '<sheetFormatPr defaultRowHeight="15"/>'
            f'{f"<cols>{cols}</cols>" if cols else ""}<sheetData><row r="1">{header}</row>')


def _xlsx_workbook(filter_ref: str | None) -> str:
    # Excel keeps an autofilter's range in this hidden name; without it, some versions drop the filter.
    names = (f'<definedNames><definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'
             f"{SHEET_NAME}!{filter_ref}</definedName></definedNames>" if filter_ref else "")
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="{_NS}" xmlns:r="{_REL}">'
            f'<sheets><sheet name="{SHEET_NAME}" sheetId="1" r:id="rId1"/></sheets>{names}</workbook>')


def _money_cell(value: Decimal) -> str:
    """A money cell styled with its currency's decimals, read off the Decimal's text ("24.50" → two)."""
    text = str(value)
    dot = text.find(".")
    opening = _MONEY_OPEN.get(dot - len(text) + 1 if dot >= 0 else 0) if "E" not in text else None
    return f"{opening or '<c><v>'}{text}</v></c>"


def write_xlsx(path: Path, headers: Sequence[Column | str], rows: Iterable[Sequence[Any]], progress: Progress,
               every: int = 5000) -> int:
    layout = _Sheet(headers)
    rows = iter(rows)
    head = list(islice(rows, WIDTH_SAMPLE))
    widths = column_widths(layout.columns, list(layout.values(head)))
    # This loop runs once per exported row, so the layout is applied in place, not through another
    # generator: columns left out of sheets are cut off (the usual one, the view's second Currency, is
    # last) or picked out, and the few columns with words get them by one dict lookup each.
    shown = len(layout.columns)
    keep = layout.keep
    cut = shown if keep is not None and keep == list(range(shown)) else None
    pick = keep if keep is not None and cut is None else None
    translated = layout.translated
    money_open = _MONEY_OPEN
    # Text repeats a lot (statuses, currencies, methods, returning buyers): its XML is kept in a bounded
    # dict, cleared when full so memory stays flat.
    texts: dict[str, str] = {}
    count = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for name, xml in _XLSX_PARTS.items():
            book.writestr(name, xml)
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as raw:
            sheet = io.TextIOWrapper(raw, encoding="utf-8", write_through=False)
            sheet.write(_xlsx_sheet_start(layout.columns, widths))
            for number, row in enumerate(chain(head, rows), start=2):
                if translated:
                    row = list(row[:cut]) if pick is None else [row[i] for i in pick]
                    for i, words in translated:
                        value = row[i]
                        if value is not None:
                            row[i] = words.get(value, value)
                elif pick is not None:
                    row = [row[i] for i in pick]
                elif cut is not None:
                    row = row[:cut]
                cells = []
                for value in row:
                    kind = type(value)
                    if kind is str:
                        xml = texts.get(value)
                        if xml is None:
                            if len(texts) > 50_000:
                                texts.clear()
                            xml = texts[value] = _xlsx_text(value)
                        cells.append(xml)
                    elif value is None:
                        cells.append("<c/>")  # cells carry no reference: an empty one keeps the columns in place
                    elif kind is Decimal:
                        # Money: styled with its currency's decimals, read off its text ("24.50" → two).
                        text = str(value)
                        dot = text.find(".")
                        opening = (money_open.get(dot - len(text) + 1 if dot >= 0 else 0, "<c><v>")
                                   if "E" not in text else "<c><v>")
                        cells.append(f"{opening}{text}</v></c>")
                    else:
                        cells.append(_xlsx_cell(value))
                sheet.write(f'<row r="{number}">{"".join(cells)}</row>')
                count += 1
                if count % every == 0 and not progress(count):
                    raise Cancelled
            filter_ref = f"$A$1:${column_letter(shown - 1)}${count + 1}" if shown else None
            sheet.write("</sheetData>")
            if filter_ref:
                sheet.write(f'<autoFilter ref="{filter_ref.replace("$", "")}"/>')
            sheet.write("</worksheet>")
            sheet.flush()
            sheet.detach()
        book.writestr("xl/workbook.xml", _xlsx_workbook(filter_ref))
    return count


def write_xls(path: Path, headers: Sequence[Column | str], rows: Iterable[Sequence[Any]], progress: Progress,
              every: int = 5000) -> int:
    """The same sheet as XLSX for old Excel (at most 65,535 rows, so it is built in memory by xlwt)."""
    import xlwt

    layout = _Sheet(headers)
    values = layout.values(rows)
    sample = list(islice(values, WIDTH_SAMPLE))
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet(SHEET_NAME)
    datetime_style = xlwt.easyxf(num_format_str="yyyy-mm-dd hh:mm:ss")
    date_style = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    money_styles = {-decimals: xlwt.easyxf(num_format_str=fmt) for decimals, fmt in MONEY_FORMATS.items()}
    plain = xlwt.Style.default_style
    header_style = xlwt.easyxf("font: bold on; pattern: pattern solid, fore_colour gray25; "
                               "borders: bottom thin")
    for col, (column, width) in enumerate(zip(layout.columns, column_widths(layout.columns, sample), strict=True)):
        sheet.write(0, col, safe_text(column.label), header_style)
        sheet.col(col).width = int(width * 256)  # xlwt counts 1/256ths of a character
    sheet.set_panes_frozen(True)  # the header row stays in view
    sheet.set_horz_split_pos(1)
    sheet.set_remove_splits(True)
    count = 0
    for r, row in enumerate(chain(sample, values), start=1):
        if r > XLS_MAX_ROWS:
            raise ValueError(f"XLS holds at most {XLS_MAX_ROWS:,} data rows")
        for col, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, datetime):
                sheet.write(r, col, value.replace(tzinfo=None), datetime_style)
            elif isinstance(value, date):
                sheet.write(r, col, value, date_style)
            elif isinstance(value, Decimal):
                sheet.write(r, col, float(value), money_styles.get(value.as_tuple().exponent, plain))
            elif isinstance(value, str):
                sheet.write(r, col, safe_text(value))
            else:
                sheet.write(r, col, value)
        count += 1
        if count % every == 0 and not progress(count):
            raise Cancelled
    # xlwt can't write an autofilter: XLS gets the frozen, bold header only (XLSX has both).
    book.save(str(path))
    return count


WRITERS = {"csv": write_csv, "xlsx": write_xlsx, "xls": write_xls}
