"""Writing a table (a drill-down list, a dashboard table) to CSV or XLSX, Qt-free: what a team lead pastes into the
weekly report.

CSV is UTF-8 with a BOM, because Excel on Windows reads a BOM-less CSV in the machine's code page and turns Telugu or
Hindi names into mojibake. XLSX keeps numbers as numbers (so the report's sums work) and phone numbers as text (so
Excel never shows +919876543210 as 9.19876543210E+11, the mangling the importer has to undo)."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

FORMATS = {".csv": "CSV (comma-separated)", ".xlsx": "Excel workbook"}


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return value


def write_table(path: Path | str, headers: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str = "") -> int:
    """Write `headers` and `rows` to `path` (.csv or .xlsx by its suffix), atomically: a temp file renamed over the
    target, so a failure never leaves half a report where the old one was. Returns the number of rows written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"Choose a .csv or .xlsx file name (not {suffix or 'no extension'}).")
    tmp = path.with_name(f".{path.name}.part")
    count = 0
    try:
        if suffix == ".csv":
            with tmp.open("w", encoding="utf-8-sig", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(list(headers))
                for row in rows:
                    writer.writerow([_cell(v) for v in row])
                    count += 1
        else:
            import openpyxl

            book = openpyxl.Workbook(write_only=True)
            sheet = book.create_sheet(title=(title or "Export")[:31].replace("/", "-"))
            sheet.append(list(headers))
            for row in rows:
                # A string cell stays a string: openpyxl only makes numbers of int/float values, so a phone number
                # given as text is written as text.
                sheet.append([_cell(v) for v in row])
                count += 1
            book.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return count
