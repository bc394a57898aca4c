"""Writing rows to CSV, XLS and XLSX (X3): streamed, typed, and safe to open in a spreadsheet.

Renderers are pure: they take header labels and an iterator of rows and write a file. Numbers stay
numbers and dates stay dates (XLSX), text that a spreadsheet would run as a formula is escaped.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
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


def safe_text(value: str) -> str:
    """Cells starting with = + - @ tab or CR would be formulas in Excel: make them plain text."""
    return f"'{value}" if value.startswith(FORMULA_START) else value


Progress = Callable[[int], bool]  # called every few thousand rows with the count; False means "cancel"


class Cancelled(Exception):
    pass


def write_csv(path: Path, headers: Sequence[str], rows: Iterable[Sequence[Any]], progress: Progress,
              every: int = 5000) -> int:
    count = 0
    # UTF-8 with a BOM, so Excel opens accents and € correctly.
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow([safe_text(h) for h in headers])
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


# -- XLSX ---------------------------------------------------------------------------------------------
# Written directly as the few XML parts an XLSX file needs, streamed into the zip row by row: about five
# times faster than a general spreadsheet library, and memory stays flat however many rows there are.
# Strings are inline (no shared-string table to keep in memory); dates are Excel serial numbers with a
# date format, so they sort and filter as dates.

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
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
    "xl/workbook.xml": (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="{_NS}" xmlns:r="{_REL}">'
        '<sheets><sheet name="Export" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="{_PKG}">'
        f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_REL}/styles" Target="styles.xml"/></Relationships>'),
    # Cell styles: 0 plain, 1 date and time, 2 date, 3 bold (the header row).
    "xl/styles.xml": (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><styleSheet xmlns="{_NS}">'
        '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/>'
        '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/></numFmts>'
        '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'),
}
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
    if kind is int or kind is float or kind is Decimal:
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


def write_xlsx(path: Path, headers: Sequence[str], rows: Iterable[Sequence[Any]], progress: Progress,
               every: int = 5000) -> int:
    count = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for name, xml in _XLSX_PARTS.items():
            book.writestr(name, xml)
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as raw:
            sheet = io.TextIOWrapper(raw, encoding="utf-8", write_through=False)
            sheet.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="{_NS}">'
                        '<sheetData><row r="1">')
            sheet.write("".join(_xlsx_text(str(h)).replace("<c ", '<c s="3" ', 1) for h in headers))
            sheet.write("</row>")
            # Text repeats a lot (statuses, currencies, methods, returning buyers): its XML is kept in a
            # bounded dict, cleared when full so memory stays flat.
            texts: dict[str, str] = {}
            for number, row in enumerate(rows, start=2):
                cells = []
                for value in row:
                    if value is None:
                        cells.append("<c/>")  # cells carry no reference: an empty one keeps the columns in place
                    elif type(value) is str:
                        xml = texts.get(value)
                        if xml is None:
                            if len(texts) > 50_000:
                                texts.clear()
                            xml = texts[value] = _xlsx_text(value)
                        cells.append(xml)
                    else:
                        cells.append(_xlsx_cell(value))
                sheet.write(f'<row r="{number}">{"".join(cells)}</row>')
                count += 1
                if count % every == 0 and not progress(count):
                    raise Cancelled
            sheet.write("</sheetData></worksheet>")
            sheet.flush()
            sheet.detach()
    return count


def write_xls(path: Path, headers: Sequence[str], rows: Iterable[Sequence[Any]], progress: Progress,
              every: int = 5000) -> int:
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Export")
    datetime_style = xlwt.easyxf(num_format_str="yyyy-mm-dd hh:mm:ss")
    date_style = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    for col, header in enumerate(headers):
        sheet.write(0, col, safe_text(str(header)))
    count = 0
    for r, row in enumerate(rows, start=1):
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
                sheet.write(r, col, float(value))
            elif isinstance(value, str):
                sheet.write(r, col, safe_text(value))
            else:
                sheet.write(r, col, value)
        count += 1
        if count % every == 0 and not progress(count):
            raise Cancelled
    book.save(str(path))
    return count


WRITERS = {"csv": write_csv, "xlsx": write_xlsx, "xls": write_xls}
