"""The drill-down list and the team lead's reassign action on it.

A dashboard figure opened (`DrillFilter`) is listed in the CRE's My leads list: the same model class (`WorklistModel`,
pages of `LeadSummary` read on the reader pool as the list scrolls) and the same table set-up, with the owner, branch
and creation day after the My leads columns, and the lead view beside it (Enter or a double-click opens the current
lead; Esc in its call form comes back to the list). The first page is painted before the leads are counted: counting
a 100k-lead date range reads every one of them, a page reads 200.

Reassign: the selected leads, or all the list's leads ("all overdue of Asha"), go to one CRE through `assign_leads`,
after an inline confirmation that says how many and to whom (Enter confirms, Esc goes back). The call runs on the
reader pool; the CREs' lists follow at their next sync, and so does this list."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt, Signal, Slot
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
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from crm_desktop.core import phone as phones
from crm_desktop.core.api import ApiError
from crm_desktop.core.drill import (
    DrillFilter,
    drill_count,
    drill_lead_ids,
    drill_notes,
    drill_page,
    open_cache_readonly,
)
from crm_desktop.core.models import LeadSummary, OutboxItem
from crm_desktop.core.worklist import WorkList
from crm_desktop.ui.export import ask_path, export_rows
from crm_desktop.ui.workers import reader_pool, run_in
from crm_desktop.ui.worklist import COL_FOLLOW, ROW_ROLE, EnterOpens, WorklistModel, fit_whole_columns
from crm_desktop.ui.worklist import COLUMNS as LIST_COLUMNS

log = logging.getLogger(__name__)

ASSIGN_MAX = 10_000  # assign_leads takes at most 10,000 ids a call
Rpc = Callable[[str, dict[str, Any]], Any]
AnyIndex = QModelIndex | QPersistentModelIndex

# What an exported list holds (a team lead pastes it into the weekly report): the lead's fields as the cache has them.
EXPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("UID", "uid"),
    ("Customer", "customer_name"),
    ("Mobile", "phone"),
    ("CRE", "cre_name"),
    ("Status", "lead_status"),
    ("Final", "final_status"),
    ("Follow-up", "follow_up_date"),
    ("Created", "created_at"),
    ("Last call", "last_call_at"),
    ("Calls", "call_count"),
    ("Branch", "branch"),
    ("Source", "source"),
)

_local = threading.local()


def cache_connection(path: Path) -> Any:
    """This pool thread's drill-down connection to the cache file (SQLite connections are per thread)."""
    conns: dict[str, Any] = getattr(_local, "conns", None) or {}
    _local.conns = conns
    key = str(path)
    if key not in conns:
        conns[key] = open_cache_readonly(path)
    return conns[key]


def export_value(lead: LeadSummary, key: str) -> Any:
    if key == "phone":
        return phones.display(lead.phone)
    if key == "source":
        first = lead.original_source
        return f"{first.source} / {first.sub_source}" if first else None
    return getattr(lead, key)


class DrillListModel(WorklistModel):
    """The My leads model over a drill-down filter: the My leads columns, then the owner, branch and creation day a
    team lead needs. Pages come from `drill_page` on the reader pool (the worklist's paging, generation and
    page_loaded); `total()` is the count, read separately (None until it is in)."""

    EXTRA_COLUMNS: tuple[tuple[str, str], ...] = (("CRE", "cre_name"), ("Branch", "branch"), ("Created", "created_at"))

    def __init__(self, cache_path: Path, f: DrillFilter, parent: QObject | None = None) -> None:
        super().__init__(self._load_page, parent)
        self._path = cache_path
        self.filter = f
        self._total: int | None = None

    def _load_page(self, _which: WorkList, _sort: str | None, _descending: bool | None, offset: int,
                   limit: int) -> list[LeadSummary]:  # fmt: skip
        # Runs on the reader pool. The list's order is the filter's (drill.py), read in index order.
        return drill_page(cache_connection(self._path), self.filter, offset, limit)

    def total(self) -> int:
        return self._total or 0

    def counted(self) -> bool:
        return self._total is not None

    def set_total(self, n: int | None) -> None:
        self._total = n

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """The list keeps its figure's order (the one an index serves); headers do not sort it."""

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's own default
        return 0 if parent.isValid() else len(LIST_COLUMNS) + len(self.EXTRA_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        extra = section - len(LIST_COLUMNS)
        horizontal = orientation == Qt.Orientation.Horizontal
        if horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= extra < len(self.EXTRA_COLUMNS):
            return self.EXTRA_COLUMNS[extra][0]
        return super().headerData(section, orientation, role)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        extra = index.column() - len(LIST_COLUMNS) if index.isValid() else -1
        if extra >= 0 and role == Qt.ItemDataRole.DisplayRole:
            lead = self.lead_at(index.row())
            if lead is None or extra >= len(self.EXTRA_COLUMNS):
                return None
            value = getattr(lead, self.EXTRA_COLUMNS[extra][1])
            if not value:
                return "—"
            return str(value)[:16].replace("T", " ") if self.EXTRA_COLUMNS[extra][1] == "created_at" else str(value)
        return super().data(index, role)

    def lead_ids(self, rows: Sequence[int]) -> list[int]:
        leads = (self.lead_at(r) for r in rows)
        return [lead.lead_id for lead in leads if lead is not None]


def lead_list_view(model: DrillListModel, on_open: Callable[[], None]) -> QTableView:
    """The My leads table as the drill-down uses it: rows, no editing, Enter and double-click open the current lead;
    several rows can be selected (to reassign them)."""
    view = QTableView()
    view.setObjectName("drillListView")
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setSortingEnabled(False)
    view.verticalHeader().hide()
    view.setWordWrap(False)
    view.setAlternatingRowColors(True)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(True)
    for col, width in enumerate((160, 125, 115, 150, 190, 100, 45, 150, 130, 120)):
        view.setColumnWidth(col, width)
    fit_whole_columns(view)
    view.installEventFilter(EnterOpens(on_open, view))
    view.doubleClicked.connect(lambda _index: on_open())
    return view


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
    """A drill-down list with the lead view, reassign and export.

    Signals: loaded(int) with the number of leads once the first page is on screen and the leads are counted;
    page_shown(int) with the rows on screen after each page; lead_opened(object LeadSummary) when Enter or a
    double-click opened a lead; assigned(object) with the summed `assign_leads` answer; failed(str) with the line
    shown when loading or assigning did not work.

    `cres` are the catalogue's active CREs ({id, email, name, branch}); without them (an older server) the reassign
    bar is hidden. `rpc` is the signed-in client's `rpc`. `session` (the desk's) gives the lead view and its call
    form; without one (a benchmark, an export) the list is shown alone. `catalog` fills the call form's choices."""

    loaded = Signal(int)
    page_shown = Signal(int)
    lead_opened = Signal(object)
    assigned = Signal(object)
    failed = Signal(str)

    def __init__(
        self,
        drill: DrillFilter,
        cache_path: Path,
        rpc: Rpc | None,
        cres: Sequence[dict[str, Any]] = (),
        parent: QWidget | None = None,
        *,
        session: Any = None,
        catalog: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(parent)
        self.filter = drill
        self._path = cache_path
        self._rpc = rpc
        self._pending: tuple[list[int], dict[str, Any]] | None = None  # the reassignment awaiting confirmation
        self._count_generation = 0  # a count read for an older reload is dropped
        self._closed = False  # answers arriving after the dialog closed (it is deleted on close) are dropped
        self._keep: str | None = None  # phone of the lead to keep current across a reload
        self._focused_once = False
        self._split_once = False
        self.setWindowTitle(drill.describe())
        self.setObjectName("leadListDialog")
        # Beside the lead view: the list up to its Follow-up column plus the lead view's minimum (see showEvent).
        self.resize(1260 if session is not None else 1100, 640)

        self.title_label = QLabel(drill.describe())
        font = self.title_label.font()
        font.setPointSizeF(font.pointSizeF() + 3)
        font.setBold(True)
        self.title_label.setFont(font)
        self.count_label = QLabel("Loading…")
        self.notes_label = QLabel("\n".join(drill_notes(drill)))
        self.notes_label.setObjectName("drillNotes")
        self.notes_label.setWordWrap(True)
        self.notes_label.setVisible(bool(self.notes_label.text()))
        self.model = DrillListModel(cache_path, drill, self)
        self.view = lead_list_view(self.model, self.open_current)
        self.empty_label = QLabel("")

        self.lead_view: Any = None
        if session is not None:
            from crm_desktop.ui.lead_view import LeadView, scrolling_pane  # the desk's lead view, as in My leads

            self.lead_view = LeadView(session)
            if catalog:
                self.lead_view.set_catalog(catalog)
            self.lead_view.call_queued.connect(self._on_lead_view_call_queued)
            self.lead_view.closed.connect(self._on_lead_view_closed)

        self.cre_combo = QComboBox()
        self.cre_combo.setAccessibleName("Assign to CRE")
        for cre in cres:
            email = str(cre.get("email") or "")
            if email:
                self.cre_combo.addItem(f"{cre.get('name') or email} ({cre.get('branch') or 'no branch'})", dict(cre))
        # Alt keys of their own: beside the lead view, Alt+S is the call form's "&Status" (a shared letter only
        # cycles the focus, so Enter for the confirmation logged a call instead); Alt+I picks the CRE.
        self.assign_selected_button = QPushButton("Assign se&lected…")
        self.assign_all_button = QPushButton("Assign &all…")
        self.export_button = QPushButton("&Export…")
        self.close_button = QPushButton("Close")
        for button in (self.assign_selected_button, self.assign_all_button, self.export_button, self.close_button):
            button.setAutoDefault(False)  # Enter belongs to the list (open the lead) and to the confirmation
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
        self.cancel_button.setAutoDefault(False)
        confirm = QHBoxLayout(self.confirm_frame)
        confirm.addWidget(self.confirm_label, 1)
        confirm.addWidget(self.confirm_button)
        confirm.addWidget(self.cancel_button)
        self.confirm_frame.setVisible(False)

        bar = QHBoxLayout()
        assign_to = QLabel("Ass&ign to:")
        assign_to.setBuddy(self.cre_combo)
        bar.addWidget(assign_to)
        bar.addWidget(self.cre_combo, 1)
        bar.addWidget(self.assign_selected_button)
        bar.addWidget(self.assign_all_button)
        bar.addStretch(1)
        bar.addWidget(self.export_button)
        bar.addWidget(self.close_button)
        head = QHBoxLayout()
        head.addWidget(self.title_label, 1)
        head.addWidget(self.count_label)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.view, 1)
        left_layout.addWidget(self.empty_label)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        if self.lead_view is not None:
            self.lead_scroll = scrolling_pane(self.lead_view)
            self.splitter.addWidget(self.lead_scroll)
            self.splitter.setStretchFactor(0, 3)
            self.splitter.setStretchFactor(1, 2)
        root = QVBoxLayout(self)
        root.addLayout(head)
        root.addWidget(self.notes_label)
        root.addWidget(self.splitter, 1)
        root.addWidget(self.confirm_frame)
        root.addWidget(self.message_label)
        root.addLayout(bar)

        self._default_to_another_cre()
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
        self.model.page_loaded.connect(self._on_model_page_loaded)
        QShortcut(QKeySequence("Ctrl+E"), self, self._on_export_clicked)
        self._update_buttons()
        self.reload()

    def showEvent(self, event: Any) -> None:
        """First shown: the list gets its columns up to the follow-up ("overdue by N days"), the lead view the rest
        (at least its minimum). The splitter's own split follows size hints: the empty lead view took half."""
        super().showEvent(event)
        if self.lead_view is None or self._split_once:
            return
        self._split_once = True
        total = sum(self.splitter.sizes())
        view = self.view
        need = sum(view.columnWidth(c) for c in range(COL_FOLLOW + 1))
        need += view.verticalScrollBar().sizeHint().width() + 2 * view.frameWidth() + 2
        least = self.lead_view.minimumSizeHint().width() + self.lead_scroll.verticalScrollBar().sizeHint().width()
        self.splitter.setSizes([min(need, max(total - least, 0)), max(total - need, least)])

    # -- loading --------------------------------------------------------------------------------------------------

    def reload(self) -> None:
        """Ask the cache again (after a sync: a reassignment shows once the feed brought it back): the first page,
        then the count."""
        self._count_generation += 1
        self._first_page = True
        current = self.current_lead()
        self._keep = current.phone if current is not None else None  # the lead in hand stays current if still listed
        self.model.reload()

    @Slot(int)
    def _on_model_page_loaded(self, rows: int) -> None:
        self.empty_label.setText("" if rows else "No leads in this list.")
        kept = self.model.row_of(self._keep) if self._keep else -1
        if kept >= 0:
            self.view.setCurrentIndex(self.model.index(kept, 0))
        elif rows and not self.view.currentIndex().isValid():
            self.view.setCurrentIndex(self.model.index(0, 0))
        if kept >= 0 or not self.model.canFetchMore():
            self._keep = None
        self.page_shown.emit(rows)
        if not self._first_page:
            return
        self._first_page = False
        if not self._focused_once:  # the list opens focused; a reload (each sync page) never moves the focus
            self._focused_once = True
            self.view.setFocus()
        if not self.model.canFetchMore() and not self.model.is_loading():
            self._on_counted(self._count_generation, rows)  # one page holds the whole list: it is the count
            return
        if not self.model.counted():
            self.count_label.setText(f"{rows:,}+ leads, counting…")
        generation, path, f = self._count_generation, self._path, self.filter
        run_in(
            reader_pool(),
            lambda: drill_count(cache_connection(path), f),
            partial(self._on_counted, generation),  # a bound method: dropped if the dialog is gone (workers._alive)
            self._on_load_failed,
        )

    def _on_counted(self, generation: int, n: int) -> None:
        if generation != self._count_generation or self._closed:
            return
        self.model.set_total(n)
        self.count_label.setText(f"{n:,} lead" + ("" if n == 1 else "s"))
        self.assign_all_button.setText(f"Assign &all {n:,}…")
        self._update_buttons()
        self.loaded.emit(n)

    def _on_load_failed(self, exc: BaseException) -> None:
        self._say(f"The list could not be read from this computer's cache: {exc}")
        log.warning("drill-down list not loaded: %s", exc)

    # -- the lead view --------------------------------------------------------------------------------------------

    def current_lead(self) -> LeadSummary | None:
        index = self.view.currentIndex()
        lead = index.data(ROW_ROLE) if index.isValid() else None
        return lead if isinstance(lead, LeadSummary) else None

    def open_current(self) -> None:
        """Enter or a double-click on the list: the current lead in the lead view, its call form ready."""
        lead = self.current_lead()
        if lead is None:
            return
        if self.lead_view is not None:
            self.lead_view.show_lead(lead)
            self.lead_view.focus_call_form()
        self.lead_opened.emit(lead)

    @Slot(object)
    def _on_lead_view_call_queued(self, _item: OutboxItem) -> None:
        row = self.view.currentIndex().row()
        if self.model.lead_at(row + 1) is not None:
            self.view.setCurrentIndex(self.model.index(row + 1, 0))
        self.view.setFocus()

    @Slot()
    def _on_lead_view_closed(self) -> None:
        self.view.setFocus()

    def done(self, result: int) -> None:
        """Closed (Close, Esc on the list, the window's X): the dialog is deleted soon after, so every answer still
        on its way is dropped: this dialog's by its generation, the lead view's by the workers (its callbacks are
        bound methods, skipped once it is deleted)."""
        self._closed = True
        self._count_generation += 1
        super().done(result)

    # -- reassign -------------------------------------------------------------------------------------------------

    def selected_lead_ids(self) -> list[int]:
        rows = sorted({i.row() for i in self.view.selectionModel().selectedRows()})
        return self.model.lead_ids(rows)

    def _default_to_another_cre(self) -> None:
        """A list of one CRE's leads (drilled from their row) is moved to someone else: the choice starts on the next
        CRE, never on the owner (the first CRE by name, who could be the owner, made the Enter a no-op "already
        theirs")."""
        owner_id, owner_name = self.filter.cre_id, self.filter.cre_name
        if owner_id is None and owner_name is None:
            return
        for i in range(self.cre_combo.count()):
            cre = self.cre_combo.itemData(i)
            if not isinstance(cre, dict):
                continue
            if (owner_id is not None and str(cre.get("id")) == owner_id) or (
                owner_id is None and cre.get("name") == owner_name
            ):
                if self.cre_combo.currentIndex() == i and self.cre_combo.count() > 1:
                    self.cre_combo.setCurrentIndex((i + 1) % self.cre_combo.count())
                return

    @Slot()
    def _update_buttons(self, *_args: Any) -> None:
        if self._closed:
            return
        n = len(self.view.selectionModel().selectedRows())
        self.assign_selected_button.setText(f"Assign se&lected ({n:,})…")
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
        self.view.setFocus()  # as after Cancel: not the next widget of the hidden question (Down would change the CRE)
        for widget in (self.assign_selected_button, self.assign_all_button, self.confirm_button):
            widget.setEnabled(False)
        name = cre.get("name") or cre.get("email")
        self._say(f"Assigning {len(lead_ids):,} leads to {name}…")
        rpc, email = self._rpc, str(cre["email"])
        run_in(
            reader_pool(),
            lambda: assign(rpc, lead_ids, email),
            partial(self._on_assigned, str(name)),
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
        if not self._closed:
            self.message_label.setText(text)

    # -- export ---------------------------------------------------------------------------------------------------

    @Slot()
    def _on_export_clicked(self) -> None:
        path = ask_path(self, self.filter.describe())
        if path is not None:
            self.export_to(path)

    def export_to(self, path: Path) -> None:
        """Every lead of the list (not only the rows read so far), read from the cache on the pool thread."""
        keys = [key for _h, key in EXPORT_COLUMNS]
        headers = [h for h, _k in EXPORT_COLUMNS]
        cache, f = self._path, self.filter

        def rows() -> list[list[Any]]:
            conn = cache_connection(cache)
            out: list[list[Any]] = []
            while True:
                page = drill_page(conn, f, len(out), 5000)
                out.extend([export_value(lead, k) for k in keys] for lead in page)
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
