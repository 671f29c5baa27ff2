"""Export a table on screen (a dashboard table, a drill-down list) to CSV or XLSX: the file dialog, and the writing
on a pool thread (a 100k-row list takes seconds to write; the window stays responsive). The format is the core's
(`core/export.py`); this module only knows Qt models and dialogs."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QStandardPaths, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from crm_desktop.core.export import write_table
from crm_desktop.ui.workers import reader_pool, run_in

log = logging.getLogger(__name__)

FILTERS = "Excel workbook (*.xlsx);;CSV (comma-separated) (*.csv)"


def model_table(model: QAbstractItemModel) -> tuple[list[str], list[list[Any]]]:
    """The model's header and rows as shown (display text, in the view's sort order when `model` is the proxy)."""
    columns = model.columnCount(QModelIndex())
    headers = [
        str(model.headerData(c, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole) or "") for c in range(columns)
    ]
    rows: list[list[Any]] = []
    for r in range(model.rowCount(QModelIndex())):
        rows.append([_plain(model.data(model.index(r, c), Qt.ItemDataRole.DisplayRole)) for c in range(columns)])
    return headers, rows


def _plain(value: Any) -> Any:
    """A count shown as "1,234" goes to the file as the number 1234, so the report's sums work."""
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,3}(,\d{3})+|-?\d+", value):
        return int(value.replace(",", ""))
    return value


def safe_file_name(name: str) -> str:
    return re.sub(r'[\\/:*?"<>|]+', "-", name).strip(" .") or "export"


def ask_path(parent: QWidget | None, suggested: str) -> Path | None:
    """The save dialog; None when cancelled. A name typed without an extension gets the chosen format's."""
    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    start = str(Path(folder) / f"{safe_file_name(suggested)}.xlsx")
    path, chosen = QFileDialog.getSaveFileName(parent, "Export", start, FILTERS)
    if not path:
        return None
    target = Path(path)
    if target.suffix.lower() not in (".csv", ".xlsx"):
        target = target.with_suffix(".csv" if "csv" in chosen.lower() else ".xlsx")
    return target


def export_rows(
    path: Path,
    headers: Sequence[str],
    rows: Callable[[], Sequence[Sequence[Any]]],
    *,
    title: str = "",
    on_done: Callable[[int], None] | None = None,
    on_failed: Callable[[BaseException], None] | None = None,
) -> None:
    """Write on the reader pool; `rows` is called there too (a drill-down list reads its rows from the cache)."""
    run_in(reader_pool(), lambda: write_table(path, headers, rows(), title=title), on_done, on_failed)


def export_model_dialog(parent: QWidget, model: QAbstractItemModel, suggested: str) -> None:
    """Ask where, then write the model's rows as shown, and say how it went."""
    path = ask_path(parent, suggested)
    if path is None:
        return
    headers, rows = model_table(model)

    def done(count: int) -> None:
        QMessageBox.information(parent, "Exported", f"{count:,} rows saved to {path}.")

    def failed(exc: BaseException) -> None:
        log.warning("export to %s failed: %s", path, exc)
        QMessageBox.warning(parent, "Not exported", f"The file could not be written: {exc}")

    export_rows(path, headers, lambda: rows, title=suggested, on_done=done, on_failed=failed)
