"""Table models behind the dashboard tab: one row per CRE (and per source) of a `dashboard_summary` answer.

The rows are the server's JSON objects, kept as they came, so a field the server adds later needs no model change.
Nothing here trusts the shape: a missing or odd value shows as "—" and sorts as -1, and `data()` never raises."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

ROW_ROLE = Qt.ItemDataRole.UserRole + 1  # the row's dict, for views and tests that need the whole row
SORT_ROLE = Qt.ItemDataRole.UserRole + 2  # raw numbers (or the folded name), so 10 sorts after 9
NO_VALUE = "—"

_NUMBER_ALIGN = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_TEXT_ALIGN = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter

AnyIndex = QModelIndex | QPersistentModelIndex


def as_number(value: Any) -> float | None:
    """A JSON number (int, float or a numeric string from PostgreSQL) as a float; None when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def as_count(value: Any) -> int:
    """A count from the server; 0 when missing or unreadable (a count the server did not send is no leads)."""
    number = as_number(value)
    return int(number) if number is not None else 0


def format_count(value: Any) -> str:
    return f"{as_count(value):,}"


def human_duration(seconds: Any) -> str:
    """Seconds as a desk person says them: "45 s", "3 min", "1 h 5 min"; "—" when there is no figure."""
    secs = as_number(seconds)
    if secs is None or secs < 0:
        return NO_VALUE
    if secs < 59.5:
        return f"{round(secs)} s"
    minutes = round(secs / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


class _RowsModel(QAbstractTableModel):
    """Read-only table of dicts. Subclasses declare COLUMNS as (header, key, kind) with kind "text", "count" or
    "duration"; the column constants index into it."""

    COLUMNS: tuple[tuple[str, str, str], ...] = ()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[dict[str, Any]] = []

    def set_rows(self, rows: Sequence[Any]) -> None:
        """Replace every row (a refresh is a new snapshot, so a reset is the honest signal)."""
        self.beginResetModel()
        self._rows = [dict(r) for r in rows if isinstance(r, dict)]
        self.endResetModel()

    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's own default
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.COLUMNS):
            return None
        kind = self.COLUMNS[section][2]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section][0]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _TEXT_ALIGN if kind == "text" else _NUMBER_ALIGN
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows) or not 0 <= index.column() < len(self.COLUMNS):
            return None
        row = self._rows[index.row()]
        if role == ROW_ROLE:
            return row
        _header, key, kind = self.COLUMNS[index.column()]
        value = row.get(key)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, key, kind, value)
        if role == SORT_ROLE:
            if kind == "text":
                return self._display(row, key, kind, value).casefold()
            number = as_number(value)
            return number if number is not None else -1.0
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _TEXT_ALIGN if kind == "text" else _NUMBER_ALIGN
        if role == Qt.ItemDataRole.ToolTipRole and kind == "duration":
            secs = as_number(value)
            return f"{secs:.0f} seconds on average" if secs is not None else "No first calls in this range"
        return None

    def _display(self, row: dict[str, Any], key: str, kind: str, value: Any) -> str:
        if kind == "count":
            return format_count(value)
        if kind == "duration":
            return human_duration(value)
        return str(value) if value not in (None, "") else NO_VALUE


class CreTableModel(_RowsModel):
    """One row per CRE of `dashboard_summary.per_cre`: what each CRE did in the range (calls, new leads, wins) and
    what waits for them (follow-ups due today and overdue, whatever the range). "Avg first call" is gone: a desk lead
    is created by its first call, so it read 0 s by construction."""

    CRE, CALLS, LEADS, DUE_TODAY, OVERDUE, WON, LOST, PENDING, WITH_PS, NEW_SOURCES, EXACT_DUPS = range(11)
    COLUMNS = (
        ("CRE", "cre_name", "text"),
        ("Calls", "calls", "count"),
        ("New leads", "leads", "count"),
        ("Due today", "due_today", "count"),
        ("Overdue", "overdue", "count"),
        ("Won", "won", "count"),
        ("Lost", "lost", "count"),
        ("Pending", "pending", "count"),
        ("With PS", "with_ps", "count"),
        ("New sources", "added_sources", "count"),
        ("Exact dups", "exact_dups", "count"),
    )

    def _display(self, row: dict[str, Any], key: str, kind: str, value: Any) -> str:
        if key == "cre_name" and not value:
            return "(unknown CRE)"  # a profile deleted since: the counts are still real
        return super()._display(row, key, kind, value)


class SourceTableModel(_RowsModel):
    """One row per source / sub-source of `dashboard_summary.per_source`: the exact figures behind the source
    chart, which only shows the biggest few."""

    SOURCE, SUB_SOURCE, LEADS, NEW_SOURCES, EXACT_DUPS = range(5)
    COLUMNS = (
        ("Source", "source", "text"),
        ("Sub-source", "sub_source", "text"),
        ("Leads", "leads", "count"),
        ("New sources", "added_sources", "count"),
        ("Exact dups", "exact_dups", "count"),
    )
