"""The drill-down list and the team lead's reassign action on it.

A dashboard figure opened (`DrillFilter`) is listed here from the local cache: the whole answer is one scan on the
reader pool (two integers per lead, so a 200k-lead list is cheap to hold), and rows are read a page at a time as the
list scrolls. This is the simple list for now: the lead engineer swaps in the CRE's "My leads" list widget (issue 8)
once both are merged; the reassign bar and the export stay.

Reassign: the selected leads, or all the list's leads ("all overdue of Asha"), go to one CRE through `assign_leads`,
after an inline confirmation that says how many and to whom (Enter confirms, Esc goes back). The call runs on the
reader pool; the CREs' lists follow at their next sync, and so does this list."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from crm_desktop.core import phone as phones
from crm_desktop.core.api import ApiError
from crm_desktop.core.drill import (
    PAGE_ROWS,
    DrillFilter,
    DrillResult,
    DrillRow,
    drill,
    drill_lead_ids,
    drill_page,
    open_cache_readonly,
)
from crm_desktop.ui.export import ask_path, export_rows
from crm_desktop.ui.workers import reader_pool, run_in

log = logging.getLogger(__name__)

ROW_ROLE = Qt.ItemDataRole.UserRole + 1
ASSIGN_MAX = 10_000  # assign_leads takes at most 10,000 ids a call
Rpc = Callable[[str, dict[str, Any]], Any]
AnyIndex = QModelIndex | QPersistentModelIndex

_local = threading.local()


def cache_connection(path: Path) -> Any:
    """This pool thread's drill-down connection to the cache file (SQLite connections are per thread)."""
    conns: dict[str, Any] = getattr(_local, "conns", None) or {}
    _local.conns = conns
    key = str(path)
    if key not in conns:
        conns[key] = open_cache_readonly(path)
    return conns[key]


def load_drill(path: Path, f: DrillFilter) -> DrillResult:
    """Runs on the reader pool: the count and the first page."""
    return drill(cache_connection(path), f)


class DrillListModel(QAbstractTableModel):
    """The leads of one drill-down answer; rows arrive a page at a time (canFetchMore/fetchMore read the next page
    on the reader pool, never on the GUI thread). ROW_ROLE gives the `DrillRow`."""

    COLUMNS: tuple[tuple[str, str], ...] = (
        ("UID", "uid"),
        ("Customer", "customer_name"),
        ("Mobile", "phone"),
        ("CRE", "cre_name"),
        ("Status", "lead_status"),
        ("Final", "final_status"),
        ("Follow-up", "follow_up_date"),
        ("Created", "created_at"),
        ("Branch", "branch"),
        ("Source", "source"),
    )

    def __init__(self, cache_path: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._path = cache_path
        self._result: DrillResult | None = None
        self._rows: list[DrillRow] = []
        self._fetching = False
        self._generation = 0  # a page read for an older answer is dropped

    @property
    def result(self) -> DrillResult | None:
        return self._result

    def total(self) -> int:
        return self._result.count if self._result is not None else 0

    def set_result(self, result: DrillResult) -> None:
        self.beginResetModel()
        self._generation += 1
        self._result = result
        self._rows = list(result.first)
        self._fetching = False
        self.endResetModel()

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's own default
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        horizontal = orientation == Qt.Orientation.Horizontal
        if horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(self.COLUMNS):
            return self.COLUMNS[section][0]
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows) or not 0 <= index.column() < len(self.COLUMNS):
            return None
        row = self._rows[index.row()]
        if role == ROW_ROLE:
            return row
        if role == Qt.ItemDataRole.DisplayRole:
            return display_value(row, self.COLUMNS[index.column()][1])
        return None

    def canFetchMore(self, parent: AnyIndex) -> bool:
        return not parent.isValid() and not self._fetching and len(self._rows) < self.total()

    def fetchMore(self, parent: AnyIndex) -> None:
        if not self.canFetchMore(parent) or self._result is None:
            return
        self._fetching = True
        path, generation, f, offset = self._path, self._generation, self._result.filter, len(self._rows)
        run_in(
            reader_pool(),
            lambda: drill_page(cache_connection(path), f, offset, PAGE_ROWS),
            lambda rows: self._on_page_loaded(generation, rows),
            self._on_page_failed,
        )

    def _on_page_loaded(self, generation: int, rows: list[DrillRow]) -> None:
        if generation != self._generation:
            return
        self._fetching = False
        if not rows:
            return
        start = len(self._rows)
        self.beginInsertRows(QModelIndex(), start, start + len(rows) - 1)
        self._rows.extend(rows)
        self.endInsertRows()

    def _on_page_failed(self, exc: BaseException) -> None:
        self._fetching = False
        log.warning("drill-down page not read: %s", exc)

    def lead_ids(self, rows: Sequence[int]) -> list[int]:
        return [self._rows[r].lead_id for r in rows if 0 <= r < len(self._rows)]


def display_value(row: DrillRow, key: str) -> str:
    value = getattr(row, key)
    if value in (None, ""):
        return "—"
    if key == "phone":
        return phones.display(str(value))
    if key == "created_at":
        return str(value)[:16].replace("T", " ")
    return str(value)


def assign(rpc: Rpc, lead_ids: Sequence[int], cre_email: str) -> dict[str, int]:
    """Blocking (a pool thread runs it): `assign_leads` in calls of at most 10,000 ids, counts summed."""
    total = {"assigned": 0, "unchanged": 0, "missing": 0}
    for start in range(0, len(lead_ids), ASSIGN_MAX):
        answer = rpc("assign_leads", {"lead_ids": list(lead_ids[start : start + ASSIGN_MAX]), "cre_email": cre_email})
        if not isinstance(answer, dict):
            raise ValueError("The server sent an unreadable answer to the reassignment.")
        for key in total:
            value = answer.get(key)
            total[key] += len(value) if isinstance(value, list) else int(value or 0)
    return total


class LeadListDialog(QDialog):
    """A drill-down list with reassign and export.

    Signals: loaded(int) with the number of leads once the answer is on screen; assigned(object) with the summed
    `assign_leads` answer; failed(str) with the line shown when loading or assigning did not work.

    `cres` are the catalogue's active CREs ({id, email, name, branch}); without them (an older server) the reassign
    bar is hidden. `rpc` is the signed-in client's `rpc`."""

    loaded = Signal(int)
    assigned = Signal(object)
    failed = Signal(str)

    def __init__(
        self,
        drill: DrillFilter,
        cache_path: Path,
        rpc: Rpc | None,
        cres: Sequence[dict[str, Any]] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.filter = drill
        self._path = cache_path
        self._rpc = rpc
        self._pending: tuple[list[int], dict[str, Any]] | None = None  # the reassignment awaiting confirmation
        self.setWindowTitle(drill.describe())
        self.setObjectName("leadListDialog")
        self.resize(1100, 600)

        self.title_label = QLabel(drill.describe())
        font = self.title_label.font()
        font.setPointSizeF(font.pointSizeF() + 3)
        font.setBold(True)
        self.title_label.setFont(font)
        self.count_label = QLabel("Loading…")
        self.model = DrillListModel(cache_path, self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.verticalHeader().setVisible(False)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.view.horizontalHeader().setStretchLastSection(True)
        self.view.setColumnWidth(0, 120)
        self.view.setColumnWidth(1, 200)
        self.view.setColumnWidth(2, 140)
        self.view.setColumnWidth(3, 140)
        self.view.setColumnWidth(4, 150)

        self.cre_combo = QComboBox()
        self.cre_combo.setAccessibleName("Assign to CRE")
        for cre in cres:
            email = str(cre.get("email") or "")
            if email:
                self.cre_combo.addItem(f"{cre.get('name') or email} ({cre.get('branch') or 'no branch'})", dict(cre))
        self.assign_selected_button = QPushButton("Assign &selected…")
        self.assign_all_button = QPushButton("Assign &all…")
        self.export_button = QPushButton("&Export…")
        self.close_button = QPushButton("Close")
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)

        # The confirmation: inline, so it is reachable by keyboard and the list stays in view.
        self.confirm_frame = QFrame()
        self.confirm_frame.setObjectName("confirmAssign")
        self.confirm_frame.setStyleSheet(
            "QFrame#confirmAssign { background: #fff4e5; border: 1px solid #f0c36d; border-radius: 4px; }"
        )
        self.confirm_label = QLabel()
        self.confirm_button = QPushButton("Assign")
        self.confirm_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        confirm = QHBoxLayout(self.confirm_frame)
        confirm.addWidget(self.confirm_label, 1)
        confirm.addWidget(self.confirm_button)
        confirm.addWidget(self.cancel_button)
        self.confirm_frame.setVisible(False)

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Assign to:"))
        bar.addWidget(self.cre_combo, 1)
        bar.addWidget(self.assign_selected_button)
        bar.addWidget(self.assign_all_button)
        bar.addStretch(1)
        bar.addWidget(self.export_button)
        bar.addWidget(self.close_button)
        head = QHBoxLayout()
        head.addWidget(self.title_label, 1)
        head.addWidget(self.count_label)
        root = QVBoxLayout(self)
        root.addLayout(head)
        root.addWidget(self.view, 1)
        root.addWidget(self.confirm_frame)
        root.addWidget(self.message_label)
        root.addLayout(bar)

        can_assign = rpc is not None and self.cre_combo.count() > 0
        for widget in (self.cre_combo, self.assign_selected_button, self.assign_all_button):
            widget.setVisible(can_assign)
        self.assign_selected_button.clicked.connect(self._on_assign_selected_clicked)
        self.assign_all_button.clicked.connect(self._on_assign_all_clicked)
        self.confirm_button.clicked.connect(self._on_confirm_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.export_button.clicked.connect(self._on_export_clicked)
        self.close_button.clicked.connect(self.reject)
        self.view.selectionModel().selectionChanged.connect(self._update_buttons)
        QShortcut(QKeySequence("Ctrl+E"), self, self._on_export_clicked)
        self._update_buttons()
        self.reload()

    # -- loading --------------------------------------------------------------------------------------------------

    def reload(self) -> None:
        """Ask the cache again (after a sync: a reassignment shows once the feed brought it back)."""
        run_in(reader_pool(), lambda: load_drill(self._path, self.filter), self._on_loaded, self._on_load_failed)

    def _on_loaded(self, result: DrillResult) -> None:
        self.model.set_result(result)
        self.count_label.setText(f"{result.count:,} lead" + ("" if result.count == 1 else "s"))
        self.assign_all_button.setText(f"Assign &all {result.count:,}…")
        self._update_buttons()
        if result.count and not self.view.currentIndex().isValid():
            self.view.setCurrentIndex(self.model.index(0, 0))
        self.view.setFocus()
        self.loaded.emit(result.count)

    def _on_load_failed(self, exc: BaseException) -> None:
        self._say(f"The list could not be read from this computer's cache: {exc}")
        log.warning("drill-down list not loaded: %s", exc)

    # -- reassign -------------------------------------------------------------------------------------------------

    def selected_lead_ids(self) -> list[int]:
        rows = sorted({i.row() for i in self.view.selectionModel().selectedRows()})
        return self.model.lead_ids(rows)

    @Slot()
    def _update_buttons(self, *_args: Any) -> None:
        n = len(self.view.selectionModel().selectedRows())
        self.assign_selected_button.setText(f"Assign &selected ({n:,})…")
        self.assign_selected_button.setEnabled(n > 0)
        self.assign_all_button.setEnabled(self.model.total() > 0)

    def _ask(self, lead_ids: list[int]) -> None:
        cre = self.cre_combo.currentData()
        if not lead_ids or not isinstance(cre, dict):
            return
        self._pending = (lead_ids, cre)
        n = len(lead_ids)
        name = cre.get("name") or cre.get("email")
        self.confirm_label.setText(f"Assign {n:,} lead{'' if n == 1 else 's'} to {name} ({cre.get('email')})?")
        self.confirm_frame.setVisible(True)
        self.confirm_button.setFocus()

    @Slot()
    def _on_assign_selected_clicked(self) -> None:
        self._ask(self.selected_lead_ids())

    @Slot()
    def _on_assign_all_clicked(self) -> None:
        """Every lead of the list, not only the rows read so far: the ids are read on the pool, then asked about."""
        path, f = self._path, self.filter
        self.assign_all_button.setEnabled(False)
        run_in(
            reader_pool(),
            lambda: drill_lead_ids(cache_connection(path), f),
            self._on_all_ids_read,
            self._on_load_failed,
            lambda: self._update_buttons(),
        )

    def _on_all_ids_read(self, lead_ids: list[int]) -> None:
        self._ask(lead_ids)

    @Slot()
    def _on_cancel_clicked(self) -> None:
        self._pending = None
        self.confirm_frame.setVisible(False)
        self.view.setFocus()

    def keyPressEvent(self, event: Any) -> None:
        if event.key() == Qt.Key.Key_Escape and self.confirm_frame.isVisible():
            self._on_cancel_clicked()  # Esc backs out of the question, not out of the list
            return
        super().keyPressEvent(event)

    @Slot()
    def _on_confirm_clicked(self) -> None:
        if self._pending is None or self._rpc is None:
            return
        lead_ids, cre = self._pending
        self._pending = None
        self.confirm_frame.setVisible(False)
        for widget in (self.assign_selected_button, self.assign_all_button, self.confirm_button):
            widget.setEnabled(False)
        name = cre.get("name") or cre.get("email")
        self._say(f"Assigning {len(lead_ids):,} leads to {name}…")
        rpc, email = self._rpc, str(cre["email"])
        run_in(
            reader_pool(),
            lambda: assign(rpc, lead_ids, email),
            lambda answer: self._on_assigned(str(name), answer),
            self._on_assign_failed,
        )

    def _on_assigned(self, name: str, answer: dict[str, int]) -> None:
        self.confirm_button.setEnabled(True)
        self._update_buttons()
        parts = [f"{answer['assigned']:,} assigned to {name}"]
        if answer["unchanged"]:
            parts.append(f"{answer['unchanged']:,} were already theirs")
        if answer["missing"]:
            parts.append(f"{answer['missing']:,} no longer exist")
        self._say("; ".join(parts) + ". The CREs' lists (and this one) follow at their next sync.")
        self.assigned.emit(answer)

    def _on_assign_failed(self, exc: BaseException) -> None:
        self.confirm_button.setEnabled(True)
        self._update_buttons()
        if not isinstance(exc, ApiError | ValueError):
            sys.excepthook(type(exc), exc, exc.__traceback__)  # a bug: the shared error presenter
            return
        message = f"Not reassigned: {str(exc).strip() or 'the server did not answer.'} Nothing was changed."
        log.warning("reassignment failed: %s", exc)
        self._say(message)
        self.failed.emit(message)

    def _say(self, text: str) -> None:
        self.message_label.setText(text)

    # -- export ---------------------------------------------------------------------------------------------------

    @Slot()
    def _on_export_clicked(self) -> None:
        path = ask_path(self, self.filter.describe())
        if path is not None:
            self.export_to(path)

    def export_to(self, path: Path) -> None:
        """Every lead of the list (not only the rows read so far), read from the cache on the pool thread."""
        if self.model.result is None:
            return
        keys = [key for _h, key in DrillListModel.COLUMNS]
        headers = [h for h, _k in DrillListModel.COLUMNS]
        cache, f = self._path, self.filter

        def rows() -> list[list[str]]:
            conn = cache_connection(cache)
            out: list[list[str]] = []
            while True:
                page = drill_page(conn, f, len(out), 5000)
                out.extend(
                    [getattr(row, k) if k != "phone" else phones.display(row.phone) for k in keys] for row in page
                )
                if len(page) < 5000:
                    return out

        export_rows(
            path,
            headers,
            rows,
            title=self.filter.describe(),
            on_done=lambda n: self._say(f"{n:,} leads saved to {path}."),
            on_failed=lambda exc: self._say(f"Not exported: {exc}"),
        )
