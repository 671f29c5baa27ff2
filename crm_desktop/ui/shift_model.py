"""The "This shift" list: every lead the CRE queued, with its live state. Nothing leaves it silently."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from crm_desktop.core.models import OutboxItem, OutboxState

ROW_ROLE = Qt.ItemDataRole.UserRole + 1
SPINNER = "◐◓◑◒"

COL_TIME, COL_CUSTOMER, COL_STATE, COL_RESULT = range(4)
HEADERS = ("Time", "Customer", "State", "Result")

_STATE_COLOURS = {
    "created": "#1b7f3b",
    "added_source": "#1f5fa8",
    "exact_duplicate": "#9a6700",
    "parked": "#b42318",
    "pending": "#555555",
    "closed": "#8a8a8a",
}


def describe(item: OutboxItem) -> tuple[str, str, str]:
    """(state text, result text, colour key) in the desk's words."""
    if item.state in (OutboxState.QUEUED, OutboxState.SENDING):
        waiting = "Sending…" if item.state is OutboxState.SENDING else "Queued"
        detail = f"retry {item.attempts}: {item.last_error}" if item.attempts and item.last_error else ""
        return waiting, detail, "pending"
    if item.state is OutboxState.PARKED:
        return "Refused — needs you", item.last_error or "", "parked"
    if item.state is OutboxState.DISCARDED:
        return "Discarded", item.last_error or "", "closed"
    if item.state is OutboxState.REPLACED:
        return "Edited and resent", "", "closed"
    answer = item.answer or {}
    outcome = answer.get("outcome")
    uid = answer.get("uid", "")
    replay = " (confirmed after a retry)" if answer.get("replayed") else ""
    if outcome == "created":
        return "Created", f"{uid}{replay}", "created"
    if outcome == "added_source":
        lead = answer.get("lead") or {}
        return "New source added", f"{uid} — existing lead of {lead.get('cre_name') or '?'}{replay}", "added_source"
    if outcome == "exact_duplicate":
        lead = answer.get("lead") or {}
        return "Exact duplicate", f"{uid} — already has this source ({lead.get('cre_name') or '?'})", "exact_duplicate"
    return "Done", str(uid), "created"


class ShiftModel(QAbstractTableModel):
    """Outbox items of this shift, in queue order; upserted by client_ref as their state changes."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._items: list[OutboxItem] = []
        self._row_of: dict[str, int] = {}
        self.spin = 0

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(HEADERS)
        ):
            return HEADERS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        if role == ROW_ROLE:
            return item
        state, result, colour = describe(item)
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_TIME:
                return datetime.fromtimestamp(item.created_at).strftime("%H:%M:%S")
            if col == COL_CUSTOMER:
                return item.label
            if col == COL_STATE:
                if colour == "pending":
                    return f"{SPINNER[self.spin % len(SPINNER)]} {state}"
                return state
            if col == COL_RESULT:
                return result
        if role == Qt.ItemDataRole.ForegroundRole and col in (COL_STATE, COL_RESULT):
            return QBrush(QColor(_STATE_COLOURS[colour]))
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{state}: {result}" if result else state
        return None

    def set_items(self, items: list[OutboxItem]) -> None:
        self.beginResetModel()
        self._items = list(items)
        self._row_of = {it.client_ref: i for i, it in enumerate(self._items)}
        self.endResetModel()

    def upsert(self, item: OutboxItem) -> None:
        row = self._row_of.get(item.client_ref)
        if row is None:
            row = len(self._items)
            self.beginInsertRows(QModelIndex(), row, row)
            self._items.append(item)
            self._row_of[item.client_ref] = row
            self.endInsertRows()
        else:
            self._items[row] = item
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1))

    def item(self, row: int) -> OutboxItem | None:
        return self._items[row] if 0 <= row < len(self._items) else None

    def items(self) -> list[OutboxItem]:
        return list(self._items)

    def tick(self) -> bool:
        """Advance the spinner of waiting rows; False when nothing is waiting (the timer may stop)."""
        self.spin += 1
        waiting = [i for i, it in enumerate(self._items) if it.state in (OutboxState.QUEUED, OutboxState.SENDING)]
        for row in waiting:
            idx = self.index(row, COL_STATE)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DisplayRole])
        return bool(waiting)
