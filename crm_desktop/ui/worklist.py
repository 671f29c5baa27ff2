"""The My leads tab: a CRE's lists (Fresh, Due today, Overdue, Call-backs, Pending, With PS, Won / Lost) with their
counts, a paged table over the local cache, and the lead view beside it.

The table is a `QAbstractTableModel` that fetches pages of 200 rows from SQLite on the reader pool
(`canFetchMore`/`fetchMore`): a list of 30k leads never builds 30k objects, only the pages scrolled to, and never on
the GUI thread. Sorting is done by SQLite (`sort()` reloads with an ORDER BY), not by a QSortFilterProxyModel, because
a proxy can only sort the rows already fetched. Keyboard: the list buttons take Alt+1…7, arrows move in the table,
Enter opens the lead in the view on the right; after a call is queued there, the focus comes back to the next lead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from functools import partial
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QBrush, QColor, QFont, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
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
from crm_desktop.core.models import LeadSummary, OutboxItem, OutboxState
from crm_desktop.core.worklist import SORT_KEYS, WorkList, desk_today, overdue_days
from crm_desktop.ui.lead_view import LeadView, scrolling_pane
from crm_desktop.ui.session import DeskSession
from crm_desktop.ui.workers import reader_pool, run_in

log = logging.getLogger(__name__)

ROW_ROLE = Qt.ItemDataRole.UserRole + 1
PAGE_SIZE = 200

# (sort key in core.worklist.SORT_KEYS, header)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("customer_name", "Customer"),
    ("phone", "Phone"),
    ("uid", "UID"),
    ("lead_status", "Status"),
    ("follow_up", "Follow-up"),
    ("last_call_at", "Last call"),
    ("call_count", "Calls"),
    ("source", "Source"),
)
COL_NAME, COL_PHONE, COL_UID, COL_STATUS, COL_FOLLOW, COL_LAST, COL_CALLS, COL_SOURCE = range(len(COLUMNS))
OVERDUE_COLOUR = "#b42318"
UNSENT_COLOUR = "#555555"


def _when(text: str | None) -> str:
    """An ISO timestamp as the desk's local 'dd Mon HH:MM' (or the date alone); '' when absent."""
    if not text:
        return ""
    try:
        if len(text) <= 10:
            return date.fromisoformat(text).strftime("%d %b")
        return datetime.fromisoformat(text).astimezone().strftime("%d %b %H:%M")
    except ValueError:
        return text


#: What must show whole in whatever font the style sheet sets (it applies after the pixel widths below are chosen):
#: the number a CRE dials and a follow-up "overdue by N days". The other columns elide.
WHOLE_SAMPLES = {COL_PHONE: "+91 99999 99999", COL_FOLLOW: "30 Nov — overdue by 99 days"}


def fit_whole_columns(table: QTableView) -> None:
    """Widen the phone and follow-up columns of a lead table to their samples in the table's own (polished) font."""
    table.ensurePolished()
    fm = table.fontMetrics()
    for col, sample in WHOLE_SAMPLES.items():
        table.setColumnWidth(col, max(table.columnWidth(col), fm.horizontalAdvance(sample) + 16))


def follow_up_text(lead: LeadSummary, today: date) -> str:
    """'02 Dec 17:30' for a call-back, '02 Dec' for a day, and 'overdue by N days' for a Pending lead past it."""
    days = overdue_days(lead, today)
    shown = _when(lead.follow_up_at) if lead.follow_up_at else _when(lead.follow_up_date)
    if days:
        return f"{shown} — overdue by {days} day{'s' if days != 1 else ''}"
    return shown


class WorklistModel(QAbstractTableModel):
    """One list of one CRE, paged from the cache. Signals: page_loaded(int rows_now) after each page arrives.

    `loader(offset, limit)` runs on the reader pool and returns LeadSummary rows; a reload (list, CRE, sort or data
    changed) drops pages still in flight (their generation is old)."""

    page_loaded = Signal(int)

    def __init__(self, loader: Callable[[WorkList, str | None, bool | None, int, int], list[LeadSummary]],
                 parent: QObject | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self._loader = loader
        self._rows: list[LeadSummary] = []
        self._which = WorkList.FRESH
        self._sort: str | None = None
        self._descending: bool | None = None
        self._generation = 0
        self._loading = False
        self._exhausted = True
        self.today = desk_today()

    # -- query ----------------------------------------------------------------------------------------------------

    @property
    def which(self) -> WorkList:
        return self._which

    def set_list(self, which: WorkList) -> None:
        self._which = which
        self._sort = None
        self._descending = None
        self.reload()

    def reload(self) -> None:
        """Start again from the first page (the list, the CRE, the sort or the data changed)."""
        self._generation += 1
        self.today = desk_today()
        self.beginResetModel()
        self._rows = []
        self._exhausted = False
        self._loading = False
        self.endResetModel()
        self._fetch()

    def _fetch(self) -> None:
        if self._loading or self._exhausted:
            return
        self._loading = True
        gen, offset = self._generation, len(self._rows)
        job = partial(self._loader, self._which, self._sort, self._descending, offset, PAGE_SIZE)
        run_in(reader_pool(), job, partial(self._on_page, gen), partial(self._on_page_failed, gen))

    def _on_page(self, gen: int, rows: list[LeadSummary]) -> None:
        if gen != self._generation:
            return  # a page of a list no longer shown
        self._loading = False
        if len(rows) < PAGE_SIZE:
            self._exhausted = True
        if rows:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
            self._rows.extend(rows)
            self.endInsertRows()
        self.page_loaded.emit(len(self._rows))

    def _on_page_failed(self, gen: int, exc: BaseException) -> None:
        if gen == self._generation:
            self._loading = False
            self._exhausted = True
        log.warning("worklist page not loaded: %s", exc)

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and not self._exhausted and not self._loading

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> None:  # noqa: B008
        if not parent.isValid():
            self._fetch()

    def is_loading(self) -> bool:
        return self._loading

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(COLUMNS) or COLUMNS[column][0] not in SORT_KEYS:
            return
        self._sort = COLUMNS[column][0]
        self._descending = order == Qt.SortOrder.DescendingOrder
        self.reload()

    # -- model ----------------------------------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        horizontal = orientation == Qt.Orientation.Horizontal
        if horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(COLUMNS):
            return COLUMNS[section][1]
        return None

    def lead_at(self, row: int) -> LeadSummary | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, phone: str) -> int:
        for i, lead in enumerate(self._rows):
            if lead.phone == phone:
                return i
        return -1

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        lead = self._rows[index.row()]
        col = index.column()
        try:
            if role == ROW_ROLE:
                return lead
            if role == Qt.ItemDataRole.DisplayRole:
                return self._display(lead, col)
            if role == Qt.ItemDataRole.ForegroundRole:
                if col == COL_FOLLOW and overdue_days(lead, self.today):
                    return QBrush(QColor(OVERDUE_COLOUR))
                if lead.unsent:
                    return QBrush(QColor(UNSENT_COLOUR))
            if role == Qt.ItemDataRole.FontRole and lead.unsent:
                font = QFont()
                font.setItalic(True)
                return font
            if role == Qt.ItemDataRole.ToolTipRole and lead.unsent:
                return f"{lead.unsent} change(s) made here are not on the server yet; they will be sent."
        except Exception:  # data() never raises (CONVENTIONS.md): a bad row shows blank, the log says why
            log.exception("worklist row %d not shown", index.row())
        return None

    def _display(self, lead: LeadSummary, col: int) -> str:
        if col == COL_NAME:
            return lead.customer_name + ("  ⟳ not sent" if lead.unsent else "")
        if col == COL_PHONE:
            return phones.display(lead.phone)
        if col == COL_UID:
            return lead.uid or "(not on the server yet)"
        if col == COL_STATUS:
            return " / ".join(x for x in (lead.lead_status, lead.final_status) if x)
        if col == COL_FOLLOW:
            return follow_up_text(lead, self.today)
        if col == COL_LAST:
            return _when(lead.last_call_at)
        if col == COL_CALLS:
            return str(lead.call_count)
        if col == COL_SOURCE:
            first = lead.original_source
            return f"{first.source} / {first.sub_source}" if first else ""
        return ""


class _EnterOpens(QObject):
    """Enter on the table opens the current lead (a QTableView eats Return for editing otherwise)."""

    def __init__(self, on_enter: Callable[[], None], parent: QObject) -> None:
        super().__init__(parent)
        self._on_enter = on_enter

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        key_press = event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent)
        if key_press and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):  # type: ignore[attr-defined]
            self._on_enter()
            return True
        return False


EnterOpens = _EnterOpens  # for the other lists of leads (the dashboard's drill-down) that open the lead view on Enter


class MyLeadsTab(QWidget):
    """The tab. Signals: counts_loaded(object dict[WorkList, int]) each time the filter bar's counts are refreshed."""

    counts_loaded = Signal(object)

    def __init__(self, session: DeskSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        role = str(session.profile.get("role") or "")
        self._cre_id = session.cre_id
        self.counts: dict[WorkList, int] = {}

        # CRE picker: team leads and admins see any CRE's lists (the catalogue's active CREs).
        self.cre_picker = QComboBox()
        self.cre_picker.setObjectName("crePicker")
        self._picks_cre = role in ("team_lead", "admin")
        self.cre_picker.setVisible(self._picks_cre)
        self.cre_picker.currentIndexChanged.connect(self._on_cre_picker_changed)

        self.buttons: dict[WorkList, QPushButton] = {}
        self._group = QButtonGroup(self)
        self._group.setExclusive(True)
        bar = QHBoxLayout()
        bar.addWidget(self.cre_picker)
        for i, which in enumerate(WorkList):
            button = QPushButton(which.label)
            button.setCheckable(True)
            button.setObjectName(f"list_{which.value}")
            button.setShortcut(f"Alt+{i + 1}")
            button.setToolTip(f"Alt+{i + 1}")
            self._group.addButton(button)
            self.buttons[which] = button
            button.clicked.connect(partial(self.show_list, which))
            bar.addWidget(button)
        bar.addStretch(1)
        self.buttons[WorkList.FRESH].setChecked(True)

        self.model = WorklistModel(self._load_page, self)
        self.table = QTableView()
        self.table.setObjectName("worklistView")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(False)  # the header click sorts in SQL; see sort() and _on_header_clicked
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setSectionsClickable(True)
        header.setSortIndicatorShown(True)
        # Names and "overdue by N days" must stay readable; the rest elide.
        for col, width in ((COL_NAME, 170), (COL_PHONE, 125), (COL_UID, 115), (COL_STATUS, 150), (COL_FOLLOW, 200),
                           (COL_LAST, 100), (COL_CALLS, 45)):  # fmt: skip
            self.table.setColumnWidth(col, width)
        fit_whole_columns(self.table)
        header.sectionClicked.connect(self._on_header_clicked)
        self.table.installEventFilter(_EnterOpens(self.open_current, self.table))
        self.table.doubleClicked.connect(lambda _i: self.open_current())
        self.model.page_loaded.connect(self._on_model_page_loaded)

        self.lead_view = LeadView(session)
        self.lead_view.call_submitted.connect(self._on_lead_view_call_submitted)
        self.lead_view.closed.connect(self._back_to_list)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        self.empty_label = QLabel("")
        self.empty_label.setObjectName("worklistEmpty")
        left_layout.addWidget(self.table, 1)
        left_layout.addWidget(self.empty_label)
        self.splitter.addWidget(left)
        self.splitter.addWidget(scrolling_pane(self.lead_view))
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.splitter, 1)

        # Changes (a sync page, a call queued here, an answer) come in bursts: one reload per quiet 300 ms.
        self._refresh = QTimer(self)
        self._refresh.setSingleShot(True)
        self._refresh.setInterval(300)
        self._refresh.timeout.connect(self.refresh)
        session.leads_changed.connect(self.schedule_refresh)
        session.bridge.leads_changed.connect(self.schedule_refresh)
        session.bridge.item_changed.connect(self._on_sync_item_changed)
        self._select_after_reload: tuple[str | None, int] | None = None
        self._counts_wanted = False
        self._counts_timer = QTimer(self)
        self._counts_timer.setSingleShot(True)
        self._counts_timer.setInterval(250)  # a page that never comes (a failed read) does not hold the counts up
        self._counts_timer.timeout.connect(self._load_counts)
        self.refresh()

    # -- data -----------------------------------------------------------------------------------------------------

    @property
    def cre_id(self) -> str:
        return self._cre_id

    def _load_page(self, which: WorkList, sort: str | None, descending: bool | None, offset: int,
                   limit: int) -> list[LeadSummary]:  # fmt: skip
        # Runs on the reader pool.
        return self.session.load_worklist_page(self._cre_id, which, desk_today(), sort, descending, offset, limit)

    def set_catalog(self, catalog: dict[str, Any]) -> None:
        """The CRE picker's choices (team leads): every active CRE, this user's own list first when a CRE."""
        cres = list(catalog.get("cres", []))
        self.cre_picker.blockSignals(True)
        self.cre_picker.clear()
        for cre in cres:
            self.cre_picker.addItem(f"{cre.get('name')} ({cre.get('branch') or '—'})", str(cre.get("id")))
        at = self.cre_picker.findData(self._cre_id)
        if at < 0 and self.cre_picker.count() and self._picks_cre:
            at = 0
        self.cre_picker.setCurrentIndex(at)
        self.cre_picker.blockSignals(False)
        if at >= 0 and self.cre_picker.itemData(at) != self._cre_id:
            self.set_cre(str(self.cre_picker.itemData(at)))

    def set_cre(self, cre_id: str) -> None:
        """Whose lists are shown (a team lead picks a CRE)."""
        self._cre_id = cre_id
        at = self.cre_picker.findData(cre_id)
        if at >= 0 and at != self.cre_picker.currentIndex():
            self.cre_picker.blockSignals(True)
            self.cre_picker.setCurrentIndex(at)
            self.cre_picker.blockSignals(False)
        self.refresh()

    @Slot(int)
    def _on_cre_picker_changed(self, at: int) -> None:
        data = self.cre_picker.itemData(at)
        if data:
            self.set_cre(str(data))

    @Slot()
    def schedule_refresh(self, *_: Any) -> None:
        self._refresh.start()

    @Slot(object)
    def _on_sync_item_changed(self, item: OutboxItem) -> None:
        # An answer (or a refusal) changes what the overlay shows; "sending" does not.
        if item.state in (OutboxState.DONE, OutboxState.PARKED):
            self.schedule_refresh()

    def refresh(self) -> None:
        """Counts and the shown list again, keeping the selected lead selected when it is still listed."""
        current = self.current_lead()
        self._select_after_reload = (current.phone if current else None, self.table.currentIndex().row())
        self.model.reload()
        # The counts after the list's first page: on the two reader threads they competed with it for this 2-core
        # PC (the page after Enter on the call form is what a CRE waits for). A timer asks for them in any case.
        self._counts_wanted = True
        self._counts_timer.start()

    @Slot()
    def _load_counts(self) -> None:
        if not self._counts_wanted:
            return
        self._counts_wanted = False
        self._counts_timer.stop()
        self.session.worklist_counts(self._cre_id, desk_today(), self._on_counts_loaded)

    def _on_counts_loaded(self, counts: dict[WorkList, int]) -> None:
        self.counts = counts
        for which, button in self.buttons.items():
            button.setText(f"{which.label} ({counts.get(which, 0):,})")
        self.counts_loaded.emit(counts)

    def show_list(self, which: WorkList, *_: Any) -> None:
        self.buttons[which].setChecked(True)
        self._select_after_reload = None
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.model.set_list(which)
        self.table.setFocus()

    @Slot(int)
    def _on_header_clicked(self, section: int) -> None:
        """A click sorts by that column; a second click on it reverses the order (SQLite sorts: see the docstring)."""
        header = self.table.horizontalHeader()
        same = header.sortIndicatorSection() == section
        ascending = Qt.SortOrder.AscendingOrder
        descending = Qt.SortOrder.DescendingOrder
        order = (descending if header.sortIndicatorOrder() == ascending else ascending) if same else ascending
        header.setSortIndicator(section, order)
        self.model.sort(section, order)

    @Slot(int)
    def _on_model_page_loaded(self, rows: int) -> None:
        self._load_counts()
        self.empty_label.setText("" if rows else f"No leads in {self.model.which.label}.")
        wanted = self._select_after_reload
        if wanted is None:
            if not self.table.currentIndex().isValid() and rows:
                self.table.setCurrentIndex(self.model.index(0, 0))
            return
        phone, row = wanted
        at = self.model.row_of(phone) if phone else -1
        if at < 0 and not self.model.canFetchMore() and not self.model.is_loading():
            at = min(max(row, 0), rows - 1) if rows else -1
        if at >= 0:
            self._select_after_reload = None
            self.table.setCurrentIndex(self.model.index(at, 0))

    # -- leads ----------------------------------------------------------------------------------------------------

    def current_lead(self) -> LeadSummary | None:
        index = self.table.currentIndex()
        lead = index.data(ROW_ROLE) if index.isValid() else None
        return lead if isinstance(lead, LeadSummary) else None

    def open_current(self) -> None:
        lead = self.current_lead()
        if lead is not None:
            self.open_lead(lead)

    def open_lead(self, lead: LeadSummary) -> None:
        """Show the lead with its call form ready (from the list, search, the intake banner or a reminder)."""
        self.lead_view.show_lead(lead)
        self.lead_view.focus_call_form()

    @Slot(object)
    def _on_lead_view_call_submitted(self, item: OutboxItem) -> None:
        # Back to the list, on the lead after the one just called (it may leave this list on the reload). The call
        # is not on disk yet: the session lays it over the lists meanwhile (DeskSession.saving).
        row = self.table.currentIndex().row()
        current = self.current_lead()
        nxt = self.model.lead_at(row + 1) if current is not None and current.phone == item.lead_key else None
        if nxt is not None:
            self.table.setCurrentIndex(self.model.index(row + 1, 0))
        self.table.setFocus()
        # The list reloads now (not after the 300 ms quiet time of sync bursts): the called lead moves at once.
        self._refresh.stop()
        self.refresh()
        self._select_after_reload = (nxt.phone if nxt else None, row)

    @Slot()
    def _back_to_list(self) -> None:
        self.table.setFocus()
