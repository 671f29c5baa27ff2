"""Search from anywhere (Ctrl+F): a small window with a field and the results as the CRE types; Enter opens the lead.

The search runs on the reader pool (core/search.py: names in any script by word start, last digits, UID); only the
newest answer is shown, so typing fast never shows an older result after a newer one. Down moves from the field into
the results; Enter opens the chosen lead (the first one when none is chosen); Esc closes.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QEvent, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from crm_desktop.core import phone as phones
from crm_desktop.core.models import LeadSummary
from crm_desktop.core.search import query_kind
from crm_desktop.ui.session import DeskSession

ROW_ROLE = Qt.ItemDataRole.UserRole + 1
HEADERS = ("Customer", "Phone", "UID", "Owner", "Status")


class SearchModel(QAbstractTableModel):
    """The newest search's results (at most 50 rows, so a plain list)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[LeadSummary] = []

    def set_results(self, rows: list[LeadSummary]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        horizontal = orientation == Qt.Orientation.Horizontal
        if horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(HEADERS):
            return HEADERS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        lead = self._rows[index.row()]
        if role == ROW_ROLE:
            return lead
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        col = index.column()
        if col == 0:
            return lead.customer_name + ("  ⟳ not sent" if lead.unsent else "")
        if col == 1:
            return phones.display(lead.phone)
        if col == 2:
            return lead.uid or "(not on the server yet)"
        if col == 3:
            return lead.cre_name or ""
        if col == 4:
            return " / ".join(x for x in (lead.lead_status, lead.final_status) if x)
        return None


class SearchDialog(QDialog):
    """Signals: lead_chosen(object LeadSummary) on Enter or double-click; results_shown(str text, int rows) when the
    newest answer is on screen."""

    lead_chosen = Signal(object)
    results_shown = Signal(str, int)

    def __init__(self, session: DeskSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Find a lead")
        self.setModal(False)
        self.resize(720, 420)
        self.session = session
        self.field = QLineEdit()
        self.field.setObjectName("searchField")
        self.field.setPlaceholderText("Name (any script), last 4+ digits of the number, or UID")
        self.hint = QLabel()
        self.model = SearchModel(self)
        self.table = QTableView()
        self.table.setObjectName("searchResults")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        layout = QVBoxLayout(self)
        layout.addWidget(self.field)
        layout.addWidget(self.hint)
        layout.addWidget(self.table, 1)
        self.field.textChanged.connect(self._on_field_text_changed)
        session.search_done.connect(self._on_session_search_done)
        self.field.installEventFilter(self)
        self.table.installEventFilter(self)
        self.table.doubleClicked.connect(lambda _i: self.choose())

    def open_search(self) -> None:
        self.show()
        self.raise_()
        self.activateWindow()
        self.field.setFocus()
        self.field.selectAll()

    @Slot(str)
    def _on_field_text_changed(self, text: str) -> None:
        kind = query_kind(text)
        if kind == "none":
            self.session.search("")  # makes any answer still in flight stale
            self.model.set_results([])
            self.hint.setText("Type 4 or more digits to search by number." if text.strip() else "")
            return
        self.hint.setText("")
        self.session.search(text)

    @Slot(str, object)
    def _on_session_search_done(self, text: str, rows: list[LeadSummary]) -> None:
        if text != self.field.text():
            return
        self.model.set_results(rows)
        if rows:
            self.table.setCurrentIndex(self.model.index(0, 0))
        self.hint.setText("" if rows else "No lead found.")
        self.results_shown.emit(text, len(rows))

    def choose(self) -> None:
        index = self.table.currentIndex()
        if not index.isValid() and self.model.rowCount():
            index = self.model.index(0, 0)
        lead = index.data(ROW_ROLE) if index.isValid() else None
        if isinstance(lead, LeadSummary):
            self.hide()
            self.lead_chosen.emit(lead)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            key = event.key()
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.choose()
                return True
            if watched is self.field and key == Qt.Key.Key_Down and self.model.rowCount():
                self.table.setFocus()
                row = self.table.currentIndex().row()
                self.table.setCurrentIndex(self.model.index(min(row + 1, self.model.rowCount() - 1), 0))
                return True
        return False
