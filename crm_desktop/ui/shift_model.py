"""The "This shift" list: every lead the CRE queued and every call logged, with its live state. Nothing leaves it
silently.

A lead appears here the moment Enter is pressed, as "Saving…", while the writer thread commits it to the outbox;
the stored item then takes its row. If the commit fails, the row stays as "Not saved" (with the reason) until the
CRE sends it again or discards it: the form was already cleared for the next caller, so this row holds the lead."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from crm_desktop.core.models import PENDING_STATES, Op, OutboxItem, OutboxState

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
    if item.state in PENDING_STATES:
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
    if item.op is Op.LOG_CALL:
        status = item.payload.get("lead_status") or ""
        attempt = f"call #{answer['attempt_no']}" if answer.get("attempt_no") else "call"
        if answer.get("applied") is False:
            # An older call (logged offline, sent late): kept in the history, the lead's state is a newer call's.
            return (
                "Call recorded",
                f"{answer.get('uid', '')} {attempt}: {status} — recorded; a newer update stands",
                "closed",
            )
        return "Call logged", f"{answer.get('uid', '')} {attempt}: {status}", "created"
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
    """Outbox items of this shift, in queue order; upserted by client_ref as their state changes.

    Rows not (yet) in the outbox are marked: `add_unsaved` (being saved), `mark_not_saved` (the save failed)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._items: list[OutboxItem] = []
        self._row_of: dict[str, int] = {}
        self._unsaved: dict[str, str | None] = {}  # client_ref -> None while saving, the reason once it failed
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
        state, result, colour = self._describe(item)
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

    def _describe(self, item: OutboxItem) -> tuple[str, str, str]:
        if item.client_ref in self._unsaved:
            reason = self._unsaved[item.client_ref]
            if reason is None:
                return "Saving…", "", "pending"
            return "Not saved — needs you", reason, "parked"
        return describe(item)

    def set_items(self, items: list[OutboxItem]) -> None:
        """Lay a snapshot of the stored items over the list; the snapshot never takes the list back in time.

        The snapshot was read on a reader thread, and rows may have been upserted here after it was read but before
        it arrived (a lead queued in the window's first moments, a state change from the sender). So a shown row
        missing from the snapshot stays (at the end, in its order), and a shown row newer than its snapshot copy
        keeps the shown state. Rows not in the outbox (saving, not saved) stay too: a load must not hide a lead."""
        shown = {it.client_ref: it for it in self._items}
        merged: list[OutboxItem] = []
        for item in items:
            mine = shown.pop(item.client_ref, None)
            newer = mine is not None and mine.seq > 0 and mine.updated_at > item.updated_at
            merged.append(mine if newer and mine is not None else item)
        stored = {it.client_ref for it in items}
        kept = [it for it in self._items if it.client_ref in shown]  # upserted after the snapshot was read
        self.beginResetModel()
        self._items = [*merged, *kept]
        self._row_of = {it.client_ref: i for i, it in enumerate(self._items)}
        self._unsaved = {ref: why for ref, why in self._unsaved.items() if ref not in stored}
        self.endResetModel()

    def add_unsaved(self, item: OutboxItem) -> None:
        """A lead being committed to the outbox: listed at once as "Saving…" (a "Not saved" row sent again turns
        back into it); `upsert` of the stored item ends it."""
        self._unsaved[item.client_ref] = None
        self.upsert(item)

    def mark_not_saved(self, client_ref: str, reason: str) -> None:
        """The commit failed: the row says so and keeps the lead (see is_not_saved)."""
        if client_ref not in self._row_of:
            return
        self._unsaved[client_ref] = reason
        self._changed(self._row_of[client_ref])

    def is_saving(self, client_ref: str) -> bool:
        return client_ref in self._unsaved and self._unsaved[client_ref] is None

    def has_saving(self) -> bool:
        return any(reason is None for reason in self._unsaved.values())

    def not_saved_labels(self) -> list[str]:
        """Leads listed as "Not saved": they exist only in this window."""
        return [it.label for it in self._items if self._unsaved.get(it.client_ref) is not None]

    def is_not_saved(self, client_ref: str) -> bool:
        return self._unsaved.get(client_ref) is not None

    def remove(self, client_ref: str) -> None:
        """Drop a row that never reached the outbox (discarded after asking). Stored items are never removed: their
        history is the shift's record."""
        row = self._row_of.get(client_ref)
        if row is None or client_ref not in self._unsaved:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._items[row]
        del self._unsaved[client_ref]
        self._row_of = {it.client_ref: i for i, it in enumerate(self._items)}
        self.endRemoveRows()

    def _changed(self, row: int) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1))

    def upsert(self, item: OutboxItem) -> None:
        if item.seq > 0:  # a stored item: whatever was unsaved about this row is over
            self._unsaved.pop(item.client_ref, None)
        row = self._row_of.get(item.client_ref)
        if row is None:
            row = len(self._items)
            self.beginInsertRows(QModelIndex(), row, row)
            self._items.append(item)
            self._row_of[item.client_ref] = row
            self.endInsertRows()
        else:
            shown = self._items[row]
            if shown.seq > 0 and item.seq > 0 and shown.updated_at > item.updated_at:
                return  # an older state delivered late (the writer's "queued" after the sender's "sending")
            self._items[row] = item
            self._changed(row)

    def items(self) -> list[OutboxItem]:
        return list(self._items)

    def tick(self) -> bool:
        """Advance the spinner of waiting rows; False when nothing is waiting (the timer may stop)."""
        self.spin += 1
        waiting = [i for i, it in enumerate(self._items)
                   if self._describe(it)[2] == "pending"]  # fmt: skip
        for row in waiting:
            idx = self.index(row, COL_STATE)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DisplayRole])
        return bool(waiting)
