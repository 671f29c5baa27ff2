"""The main window: the lead desk tab (form, duplicate banner, this shift's list), the dashboard tab for team leads,
the message bar for expected trouble, the offline banner and the status bar."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any

from PySide6.QtCore import QCoreApplication, QItemSelectionModel, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QSystemTrayIcon,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from crm_desktop.core.models import PENDING_STATES, LeadSummary, Op, OutboxItem, OutboxState
from crm_desktop.core.outbox import unsaved_item
from crm_desktop.core.store import StoreError, outbox_label
from crm_desktop.core.sync import SyncProgress
from crm_desktop.ui.lead_form import LeadForm
from crm_desktop.ui.reminders import CallbackReminder, ReminderBar
from crm_desktop.ui.search import SearchDialog
from crm_desktop.ui.session import DeskSession
from crm_desktop.ui.settings import Settings
from crm_desktop.ui.shift_model import COL_CUSTOMER, COL_RESULT, COL_STATE, COL_TIME, ROW_ROLE, ShiftModel
from crm_desktop.ui.workers import writer_pool
from crm_desktop.ui.worklist import MyLeadsTab

log = logging.getLogger(__name__)

SHIFT_EMPTY_TEXT = (
    "No leads yet this shift.\n\nType the caller's mobile in the form and press Enter: each lead is listed here at "
    "once, then Queued, then Created with its UID (or who already has the caller).\n\nF1 lists the keys."
)
OFFLINE_TEXT = "Offline — leads are saved on this computer and will be sent automatically."
UNTRUSTED_TEXT = (
    "Certificate not trusted — the server's certificate is not trusted on this computer, so nothing can be sent. "
    "Leads are saved here and go out once IT fixes it (see the status bar's tooltip)."
)
SHORTCUTS = [
    ("Enter", "Save the lead (from any field, list open or not)"),
    ("Tab", "Next field; in a list, take the suggestion (goo + Tab = GOOGLE)"),
    ("Letters after the mobile", "A new caller's name: a letter after a complete number starts Name (no Tab needed)"),
    ("Esc", "Close the open list; with no list open, clear the form for the next caller"),
    ("Ctrl+Z", "Right after Esc: bring the cleared caller back"),
    ("F4 / Alt+Down", "In Follow-up: the calendar (or type 3, 3/12, +2, mon, tomorrow 5pm)"),
    ("Ctrl+K", "Forget the source, call status and branch kept from the last lead"),
    ("F2", "Open the known lead shown in the banner"),
    ("Alt+underlined letter", "Jump to that field"),
    ("Ctrl+1 / Ctrl+2 / Ctrl+3", "Lead desk / My leads / Dashboard tab"),
    ("Ctrl+F", "Find a lead by name, last digits of the number or UID"),
    ("F2", "On the intake form, when the banner shows a known caller: open that lead to log the call"),
    ("Alt+1 … Alt+7", "My leads: Fresh, Due today, Overdue, Call-backs, Pending, With PS, Won / Lost"),
    ("Enter / Esc", "My leads: open the lead / back to the list (Enter in the call form logs the call)"),
    ("Ctrl+R", "Open the call-back that is due"),
    ("Ctrl+Shift+S", "Send queued leads now"),
    ("F5", "Fetch new leads from the server now"),
    ("Ctrl+I", "Import campaign leads (team leads)"),
    ("F1", "This list"),
]


class MessageBar(QFrame):
    """Expected operational trouble, non-modal. A message with the same key replaces its earlier line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        self._lines: dict[str, QWidget] = {}
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(2)
        self.hide()

    def show_message(self, key: str, text: str, level: str = "warning") -> None:
        self.clear_message(key)
        row = QFrame()
        row.setObjectName("messageLine")
        row.setProperty("level", level)
        lay = QHBoxLayout(row)
        lay.setContentsMargins(10, 4, 4, 4)
        label = QLabel(text)
        label.setWordWrap(True)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.clicked.connect(lambda: self.clear_message(key))
        lay.addWidget(label, 1)
        lay.addWidget(close)
        self._layout.addWidget(row)
        self._lines[key] = row
        self.show()

    def clear_message(self, key: str) -> None:
        row = self._lines.pop(key, None)
        if row is not None:
            row.deleteLater()
        if not self._lines:
            self.hide()

    def text_of(self, key: str) -> str | None:
        row = self._lines.get(key)
        if row is None:
            return None
        label = row.findChild(QLabel)
        return label.text() if label else None


class MainWindow(QMainWindow):
    """Signals: sign_out_requested(), settings_requested(), diagnostics_requested(), data_loaded() once the
    catalogue and the first sync are in (used by --screenshot)."""

    sign_out_requested = Signal()
    settings_requested = Signal()
    diagnostics_requested = Signal()
    data_loaded = Signal()

    def __init__(self, session: DeskSession, settings: Settings, *, offline_start: bool = False) -> None:
        super().__init__()
        self.session = session
        self.settings = settings
        profile = session.profile
        self.setWindowTitle(f"CRE Desk — {profile.get('full_name', '')} ({profile.get('role', '')})")
        self._catalog_ready = False
        self._pending = 0  # queued leads not sent yet, as last counted (queue_stats)
        self._first_sync_done = False
        self._sync_reported = False  # a sync report came in this session (it, not the cache at start, says the state)
        self._loaded_emitted = False

        # -- desk tab
        self.form = LeadForm()
        self.form.region = str(settings.get("phone/region"))
        self.offline_banner = QLabel(OFFLINE_TEXT)
        self.offline_banner.setObjectName("offlineBanner")
        self.offline_banner.setWordWrap(True)
        self.offline_banner.setVisible(offline_start)
        self.shift_model = ShiftModel(self)
        self.shift_view = QTableView()
        self.shift_view.setObjectName("shiftView")
        self.shift_view.setModel(self.shift_model)
        self.shift_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.shift_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.shift_view.verticalHeader().hide()
        header = self.shift_view.horizontalHeader()
        # Fixed widths measured once: a column sized to its contents re-measures every row (word-wrapped, so dearly)
        # on each insert and each spinner tick.
        fm = self.shift_view.fontMetrics()
        header.setSectionResizeMode(COL_TIME, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(COL_CUSTOMER, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(COL_STATE, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(COL_RESULT, QHeaderView.ResizeMode.Stretch)
        self.shift_view.setColumnWidth(COL_TIME, fm.horizontalAdvance("00:00:00") + 16)
        self.shift_view.setColumnWidth(COL_STATE, fm.horizontalAdvance("◐ Exact duplicate") + 12)  # longer ones wrap
        self.shift_view.setColumnWidth(COL_CUSTOMER, 96)  # a caller's name; the full label is in the tooltip
        # A narrow window wraps the UID and the owner onto a second line rather than cutting the owner's name. Rows
        # have a fixed height of two lines: sizing rows to their contents re-measured every row on each insert and
        # spinner tick (~150 ms per Enter with 200 rows, bench_ui.py).
        self.shift_view.setWordWrap(True)
        rows = self.shift_view.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(2 * self.shift_view.fontMetrics().lineSpacing() + 8)
        self.shift_empty = QLabel(SHIFT_EMPTY_TEXT)
        self.shift_empty.setObjectName("shiftEmpty")
        self.shift_empty.setWordWrap(True)
        self.shift_empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.shift_stack = QStackedWidget()
        self.shift_stack.addWidget(self.shift_empty)
        self.shift_stack.addWidget(self.shift_view)
        for signal in (self.shift_model.rowsInserted, self.shift_model.rowsRemoved, self.shift_model.modelReset):
            signal.connect(self._on_shift_rows_changed)
        self.resend_button = QPushButton("Edit and resend")
        self.discard_button = QPushButton("Discard…")
        for b in (self.resend_button, self.discard_button):
            b.setEnabled(False)
        shift_box = QWidget()
        shift_layout = QVBoxLayout(shift_box)
        shift_layout.setContentsMargins(0, 0, 0, 0)
        title = QLabel("This shift")
        title.setObjectName("sectionTitle")
        shift_layout.addWidget(title)
        shift_layout.addWidget(self.shift_stack, 1)
        actions = QHBoxLayout()
        actions.addStretch(1)
        actions.addWidget(self.resend_button)
        actions.addWidget(self.discard_button)
        shift_layout.addLayout(actions)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        form_box = QWidget()
        form_layout = QVBoxLayout(form_box)
        form_layout.setContentsMargins(0, 0, 0, 0)
        form_title = QLabel("New lead")
        form_title.setObjectName("sectionTitle")
        form_layout.addWidget(form_title)
        form_layout.addWidget(self.form, 1)
        self.splitter.addWidget(form_box)
        self.splitter.addWidget(shift_box)
        self.splitter.setStretchFactor(0, 3)  # the form (and its banner) gets the room; the list elides
        self.splitter.setStretchFactor(1, 2)
        desk = QWidget()
        desk_layout = QVBoxLayout(desk)
        desk_layout.addWidget(self.offline_banner)
        desk_layout.addWidget(self.splitter, 1)

        self.tabs = QTabWidget()
        self.tabs.addTab(_scrolling(desk), "Lead desk")
        self.my_leads = MyLeadsTab(session)
        self.tabs.addTab(self.my_leads, "My leads")
        self.search = SearchDialog(session, self)
        self.dashboard: Any = None
        if profile.get("role") in ("team_lead", "admin"):
            from crm_desktop.ui.dashboard import DashboardTab

            self.dashboard = DashboardTab(session.fetch_dashboard, [], int(settings.get("dashboard/refresh_s")))
            self.dashboard.drill_down_requested.connect(self._on_dashboard_drill_down_requested)
            self.tabs.addTab(_scrolling(self.dashboard), "Dashboard")
        self._catalog: dict[str, Any] = {}
        self._leaving = False  # set once a close was accepted (see closeEvent)

        self.message_bar = MessageBar()
        self.reminder_bar = ReminderBar()
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(8, 8, 8, 0)
        central_layout.addWidget(self.message_bar)
        central_layout.addWidget(self.reminder_bar)
        central_layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        # -- status bar
        self.conn_label = QLabel()
        self.conn_label.setObjectName("connLabel")
        self.sync_label = ElidedLabel("Not synced yet")  # gives up its room first on a narrow window
        self.sync_bar = QProgressBar()
        self.sync_bar.setMaximumWidth(320)
        self.sync_bar.setTextVisible(True)
        self.sync_bar.hide()
        self.queue_label = QLabel("Queue: 0")
        self.identity_label = QLabel(identity_text(profile))
        self.identity_label.setObjectName("identityLabel")
        self.send_now_button = QPushButton("Send now")
        self.send_now_button.setObjectName("sendNow")
        sb = self.statusBar()
        sb.addWidget(self.conn_label)
        sb.addWidget(self.sync_label, 1)  # the room left over; elided when there is little
        sb.addWidget(self.sync_bar)
        sb.addPermanentWidget(self.identity_label)
        sb.addPermanentWidget(self.queue_label)
        sb.addPermanentWidget(self.send_now_button)
        self._set_connection("offline" if offline_start else "connecting", "")

        self._build_menus()

        # -- wiring
        self.form.submitted.connect(self._on_form_submitted)
        self.form.lookup_requested.connect(session.lookup)
        self.form.phone_cleared.connect(session.cancel_lookup)
        self.form.open_lead_requested.connect(self.open_lead)
        self.search.lead_chosen.connect(self.open_lead)
        lead_view = self.my_leads.lead_view
        lead_view.call_submitted.connect(self._on_call_submitted)
        lead_view.call_queued.connect(self._on_item_queued)
        lead_view.call_not_saved.connect(self._on_call_not_saved)
        self.reminder = CallbackReminder(session, lambda: self.my_leads.cre_id, self)
        self.reminder.due.connect(self.reminder_bar.remind)
        self.reminder_bar.open_requested.connect(self.open_lead)
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray: QSystemTrayIcon | None = QSystemTrayIcon(self.windowIcon(), self)
            self.tray.show()
        else:
            self.tray = None
        self.reminder_bar.use_tray(self.tray)
        session.lookup_done.connect(self._on_session_lookup_done)
        session.queue_stats.connect(self._on_session_queue_stats)
        br = session.bridge
        br.item_changed.connect(self._on_sync_item_changed)
        br.connection_changed.connect(self._on_sync_connection_changed)
        br.progress.connect(self._on_sync_progress)
        br.leads_changed.connect(self._on_sync_leads_changed)
        br.catalog_changed.connect(self._on_sync_catalog_changed)
        br.error.connect(self._on_sync_error)
        self.send_now_button.clicked.connect(self._on_send_now_clicked)
        self.resend_button.clicked.connect(self._on_resend_clicked)
        self.discard_button.clicked.connect(self._on_discard_clicked)
        self.shift_view.selectionModel().selectionChanged.connect(self._on_shift_selection_changed)
        self.shift_view.doubleClicked.connect(self._on_resend_clicked)

        self._spinner = QTimer(self)
        self._spinner.setInterval(150)
        self._spinner.timeout.connect(self._on_spinner_timeout)
        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(5000)  # "oldest item 4 min ago" ages even when nothing happens
        self._stats_timer.timeout.connect(session.refresh_queue_stats)
        self._stats_timer.start()

        self.tabs.currentChanged.connect(self._on_tabs_current_changed)
        self._restore_window_state()
        self._on_shift_rows_changed()
        # Set once the pages are inside this window: the first digits of a shift go to Mobile (a team lead's keys to
        # the dashboard's first tile), not the tab bar.
        self._on_tabs_current_changed(self.tabs.currentIndex())
        session.load_catalog(self._on_cached_catalog)
        session.load_items(self._on_items_loaded)
        session.cache_info(self._on_cache_info)
        session.refresh_queue_stats()
        self.reminder.start()

    # -- leads ----------------------------------------------------------------------------------------------------

    @Slot(object)
    def open_lead(self, lead: LeadSummary) -> None:
        """From the banner (F2), search, a reminder: the lead in My leads with its call form ready."""
        self.tabs.setCurrentWidget(self.my_leads)
        self.my_leads.open_lead(lead)

    @Slot()
    def _on_open_due_callback(self) -> None:
        self.reminder_bar.open_button.click()

    # -- menus ----------------------------------------------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        send = QAction("Send queued leads now", self, shortcut=QKeySequence("Ctrl+Shift+S"))
        send.triggered.connect(self._on_send_now_clicked)
        pull = QAction("Fetch new leads now", self, shortcut=QKeySequence("F5"))
        pull.triggered.connect(self.session.engine.pull_now)
        settings = QAction("Settings…", self, shortcut=QKeySequence("Ctrl+,"))
        settings.triggered.connect(self.settings_requested)
        sign_out = QAction("Sign out", self)
        sign_out.triggered.connect(self._on_sign_out_triggered)
        quit_action = QAction("Quit", self, shortcut=QKeySequence("Ctrl+Q"))
        quit_action.triggered.connect(self.close)
        for a in (send, pull, settings, sign_out, quit_action):
            file_menu.addAction(a)
        view_menu = self.menuBar().addMenu("&View")
        find = QAction("Find a lead…", self, shortcut=QKeySequence("Ctrl+F"))
        find.triggered.connect(self.search.open_search)
        view_menu.addAction(find)
        due = QAction("Open the due call-back", self, shortcut=QKeySequence("Ctrl+R"))
        due.triggered.connect(self._on_open_due_callback)
        view_menu.addAction(due)
        for i in range(self.tabs.count()):
            act = QAction(self.tabs.tabText(i), self, shortcut=QKeySequence(f"Ctrl+{i + 1}"))
            act.triggered.connect(lambda _=False, i=i: self.tabs.setCurrentIndex(i))
            view_menu.addAction(act)
        if self.dashboard is not None:  # the team lead's jobs
            import_action = QAction("Import campaign leads…", self, shortcut=QKeySequence("Ctrl+I"))
            import_action.triggered.connect(self.open_importer)
            file_menu.insertAction(file_menu.actions()[0], import_action)
        help_menu = self.menuBar().addMenu("&Help")
        keys = QAction("Keyboard shortcuts", self, shortcut=QKeySequence("F1"))
        keys.triggered.connect(self.show_shortcuts)
        about = QAction("About / Diagnostics", self)
        about.triggered.connect(self.diagnostics_requested)
        help_menu.addAction(keys)
        help_menu.addAction(about)

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{k}</b></td><td>&nbsp;&nbsp;{v}</td></tr>" for k, v in SHORTCUTS)
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{rows}</table>")

    # -- window state ---------------------------------------------------------------------------------------------

    def _restore_window_state(self) -> None:
        geometry = self.settings.window_state("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            # 1280×800, but never more than the screen (1366×768 call-centre PCs have ~697 px under the title bar).
            available = self.screen().availableGeometry()
            self.resize(min(1280, available.width()), min(800, available.height()))
        splitter = self.settings.window_state("splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)
        # Team leads open on the dashboard (their job); CREs on the desk.
        self.tabs.setCurrentIndex(self.tabs.count() - 1 if self.dashboard is not None else 0)  # the last tab

    def save_window_state(self) -> None:
        self.settings.set_window_state("geometry", self.saveGeometry())
        self.settings.set_window_state("splitter", self.splitter.saveState())
        self.settings.sync()

    def may_leave(self) -> bool:
        """False when the CRE chose to stay: leads listed as "Not saved" exist only in this window."""
        if self.shift_model.has_saving():
            # A commit still in flight decides whether its lead is lost: wait for it and take its answer now.
            writer_pool().waitForDone(10_000)
            QCoreApplication.sendPostedEvents()
        lost = self.shift_model.not_saved_labels()
        if not lost:
            return True
        answer = QMessageBox.question(
            self, "Leads not saved",
            f"{len(lost)} lead(s) could not be saved on this computer and would be lost: {', '.join(lost)}. "
            "Leave anyway? (No: stay, select them in This shift and press Edit and resend.)",
        )  # fmt: skip
        if answer == QMessageBox.StandardButton.Yes:
            log.warning("left the desk with %d unsaved lead(s) after asking", len(lost))  # names not logged
            return True
        return False

    @Slot()
    def _on_sign_out_triggered(self) -> None:
        if self.may_leave():
            self.sign_out_requested.emit()

    def may_quit_with_unsent(self) -> bool:
        """Quitting while the server cannot be reached leaves queued leads on this PC: say so (a pooled or VDI
        profile may be wiped at logoff), and let the CRE stay. Online, the sender is about to send them."""
        pending = self._pending
        if not pending or self.session.engine.connection_state == "online":
            return True
        answer = QMessageBox.question(
            self, "Leads not sent yet",
            f"{pending} lead(s) are queued on this PC and not sent yet: the server cannot be reached. They stay on "
            "this PC and are sent the next time CRE Desk runs here under your account. On a shared or pooled PC "
            "they can be lost when you log off. Quit anyway? (No: keep the desk open until the queue is empty.)",
        )  # fmt: skip
        if answer == QMessageBox.StandardButton.Yes:
            log.warning("quit with %d unsent lead(s) left on this PC, after asking", pending)
            return True
        return False

    def closeEvent(self, event: QCloseEvent) -> None:
        # Asked once: a window the CRE already agreed to close (or that had nothing to ask about) does not ask again
        # when something closes it a second time on the way out.
        if not self._leaving and (not self.may_leave() or not self.may_quit_with_unsent()):
            event.ignore()
            return
        self._leaving = True
        self.save_window_state()
        super().closeEvent(event)

    @Slot(int)
    def _on_tabs_current_changed(self, index: int) -> None:
        if index == 0:  # Ctrl+1 back from the dashboard: ready for the next caller's digits
            self.form.phone.setFocus(Qt.FocusReason.OtherFocusReason)
        elif self.tabs.widget(index) is self.my_leads:  # Ctrl+2: arrows and Enter on the list, not its first button
            self.my_leads.table.setFocus(Qt.FocusReason.OtherFocusReason)
        elif self.dashboard is not None and (page := self.tabs.widget(index)) and page.isAncestorOf(self.dashboard):
            # Ctrl+3: Tab walks the tiles, Enter opens one (not the page's scroll area, where keys only scroll)
            first = next((t for t in self.dashboard.tiles.values() if t.drillable), None)
            if first is not None:
                first.setFocus(Qt.FocusReason.OtherFocusReason)

    @Slot()
    def _on_shift_rows_changed(self, *_: Any) -> None:
        self.shift_stack.setCurrentWidget(self.shift_view if self.shift_model.rowCount() else self.shift_empty)
        for b in (self.resend_button, self.discard_button):
            b.setVisible(self.shift_model.rowCount() > 0)

    # -- submit ---------------------------------------------------------------------------------------------------

    @Slot(dict)
    def _on_form_submitted(self, payload: dict[str, Any]) -> None:
        editing = self.form.editing_ref
        if editing is not None:
            # Resending a refused lead changes stored rows: the form waits the few ms until that is on disk.
            self.session.requeue(editing, payload, self._on_items_requeued, self._on_requeue_failed)
            self.form.setEnabled(False)
            return
        # A new lead: listed as "Saving…" and the form cleared for the next caller at once, while the writer thread
        # commits it to the outbox (fsync'd: milliseconds, or much more on a busy disk). The row holds the lead until
        # the stored item takes its place; if the commit fails, it stays as "Not saved" (see _on_enqueue_failed).
        # A lead sent again from its "Not saved" row keeps that row and its client_ref.
        ref = self.form.restoring_ref or str(uuid.uuid4())
        # called_at: when the caller was taken, so the server credits the source that came first and orders the
        # call among others even when this lead reaches it late (migration 005).
        body = {"called_at": datetime.now(UTC).isoformat(timespec="seconds"), **payload, "client_ref": ref}
        self.shift_model.add_unsaved(unsaved_item(Op.CREATE_LEAD, body, lead_key=body.get("phone")))
        self.shift_view.scrollToBottom()
        self._spinner.start()
        self.form.clear_for_next()
        self.session.enqueue(body, self._on_item_queued, partial(self._on_enqueue_failed, ref, body))
        self._on_shift_selection_changed()  # a row sent again is "Saving…": nothing to decide about it now

    def _on_item_queued(self, item: OutboxItem) -> None:
        self.shift_model.upsert(item)
        self.message_bar.clear_message("store")
        self._on_shift_selection_changed()
        self.session.refresh_queue_stats()

    @Slot(object)
    def _on_call_submitted(self, item: OutboxItem) -> None:
        """A call logged in the lead view, on its way to the disk: listed as "Saving…" like a new lead."""
        self.shift_model.add_unsaved(item)
        self.shift_view.scrollToBottom()
        self._spinner.start()
        self._on_shift_selection_changed()

    @Slot(object, object)
    def _on_call_not_saved(self, item: OutboxItem, exc: BaseException) -> None:
        # The lead view raises a call's bug itself (after this): here only the row and the message.
        self._on_enqueue_failed(item.client_ref, item.payload, exc, label=item.label, call=True, raise_bug=False)

    def _resend_unsaved_call(self, item: OutboxItem) -> None:
        """A "Not saved" call sent again as it was, under its client_ref: the same path as in the lead view."""
        self.shift_model.add_unsaved(item)
        self._spinner.start()
        self.session.enqueue_call(
            item.payload, item.lead_key or "", item.meta, self._on_item_queued,
            partial(self._on_enqueue_failed, item.client_ref, item.payload, label=item.label, call=True),
        )  # fmt: skip
        self._on_shift_selection_changed()

    def _on_enqueue_failed(
        self,
        ref: str,
        body: dict[str, Any],
        exc: BaseException,
        *,
        label: str | None = None,
        call: bool = False,
        raise_bug: bool = True,
    ) -> None:
        reason = str(exc) if isinstance(exc, StoreError) else "Something went wrong on this computer."
        label = label or outbox_label(body)
        log.warning("%s %s not saved to the outbox: %s", "call" if call else "lead", ref, reason)  # never the name
        self.shift_model.mark_not_saved(ref, reason)  # the row holds it until it is sent again or discarded
        if call:
            where = "Select it in This shift and press Edit and resend."
        elif self.form.is_pristine():
            # Nothing typed since Enter (the usual case: a failing disk answers in milliseconds): back in the form.
            self.form.load_unsaved(body, reason, ref)
            where = "It is back in the form: press Enter to try again."
        else:
            where = "Select it in This shift and press Edit and resend."
        self.message_bar.show_message("store", f"{label} was NOT saved: {reason} {where}", "error")
        self._on_shift_selection_changed()
        if not isinstance(exc, StoreError) and raise_bug:
            raise exc  # a bug, not the disk: the error dialog gets the details (the lead is safe above)

    def _on_items_requeued(self, items: list[OutboxItem]) -> None:
        self.form.setEnabled(True)
        self.form.clear_for_next()
        for item in items:
            self.shift_model.upsert(item)
        self.shift_view.scrollToBottom()
        self._spinner.start()
        self.message_bar.clear_message("parked")
        self.session.refresh_queue_stats()

    def _on_call_requeued(self, items: list[OutboxItem]) -> None:
        for item in items:  # the intake form is left alone: the CRE may be typing the next caller
            self.shift_model.upsert(item)
        self._spinner.start()
        self.message_bar.clear_message("parked")
        self.session.refresh_queue_stats()

    def _on_requeue_failed(self, exc: BaseException) -> None:
        self.form.setEnabled(True)
        if isinstance(exc, StoreError):
            # Nothing was changed: the edited lead stays in the form.
            self.message_bar.show_message("store", f"The lead was not saved: {exc} The form keeps what you typed.",
                                          "error")  # fmt: skip
            return
        raise exc

    # -- shift list -----------------------------------------------------------------------------------------------

    def _on_items_loaded(self, items: list[OutboxItem]) -> None:
        self.shift_model.set_items(items)
        self.shift_view.scrollToBottom()
        if any(i.state in PENDING_STATES for i in items):
            self._spinner.start()

    @Slot(object)
    def _on_sync_item_changed(self, item: OutboxItem) -> None:
        self.shift_model.upsert(item)
        self.session.refresh_queue_stats()
        if item.state is OutboxState.PARKED:
            self.message_bar.show_message(
                "parked", f"The server refused {item.label}: {item.last_error} Select it in This shift to edit and "
                "resend, or discard it.", "error")  # fmt: skip
        if item.state is OutboxState.DONE and self.dashboard is not None:
            self.dashboard.figures_changed()
        self._on_shift_selection_changed()

    @Slot()
    def _on_spinner_timeout(self) -> None:
        if not self.shift_model.tick():
            self._spinner.stop()

    def _selected_item(self) -> OutboxItem | None:
        rows = self.shift_view.selectionModel().selectedRows()
        if not rows:
            return None
        item = rows[0].data(ROW_ROLE)
        return item if isinstance(item, OutboxItem) else None

    def _needs_action(self, item: OutboxItem | None) -> bool:
        """A row the CRE must decide about: refused by the server, or not saved on this computer."""
        if item is None:
            return False
        return self.shift_model.is_not_saved(item.client_ref) or item.state is OutboxState.PARKED

    @Slot()
    def _on_shift_selection_changed(self, *_: Any) -> None:
        actionable = self._needs_action(self._selected_item())
        self.resend_button.setEnabled(actionable)
        self.discard_button.setEnabled(actionable)

    @Slot()
    def _on_resend_clicked(self, *_: Any) -> None:
        item = self._selected_item()
        if item is None or not self._needs_action(item):
            return
        if item.op is Op.LOG_CALL and self.shift_model.is_not_saved(item.client_ref):
            self._resend_unsaved_call(item)
            return
        if item.op is Op.LOG_CALL:
            # A refused call is sent again as it was (the lead view logs a new one when something must change).
            self.session.requeue(item.client_ref, None, self._on_call_requeued, self._on_requeue_failed)
            return
        if self.shift_model.is_not_saved(item.client_ref):
            self.form.load_unsaved(item.payload, "it could not be saved before.", item.client_ref)
        else:
            self.form.load_for_edit(item.client_ref, item.payload, item.last_error or "")
        self.tabs.setCurrentIndex(0)

    @Slot()
    def _on_discard_clicked(self) -> None:
        item = self._selected_item()
        if item is None or not self._needs_action(item):
            return
        unsaved = self.shift_model.is_not_saved(item.client_ref)
        answer = QMessageBox.question(
            self, "Discard this lead?",
            f"Discard {item.label}? It was never saved on this computer and will be gone." if unsaved else
            f"Discard {item.label}? It will not be sent. (It stays in the list as discarded.)",
        )  # fmt: skip
        if answer != QMessageBox.StandardButton.Yes:
            return
        if unsaved:
            log.info("discarded the unsaved lead %s after asking", item.client_ref)
            self.shift_model.remove(item.client_ref)
            self.message_bar.clear_message("store")
            self._on_shift_selection_changed()
            return
        self.session.discard(item.client_ref, self._on_discarded, self._on_discard_failed)

    def _on_discard_failed(self, exc: BaseException) -> None:
        if isinstance(exc, StoreError):
            self.message_bar.show_message("store", f"The lead was not discarded: {exc}", "error")
            return
        raise exc

    def _on_discarded(self, item: OutboxItem | None) -> None:
        if item is not None:
            self.shift_model.upsert(item)
        self.message_bar.clear_message("parked")
        self._on_shift_selection_changed()

    def select_item(self, client_ref: str) -> None:
        for row, it in enumerate(self.shift_model.items()):
            if it.client_ref == client_ref:
                self.shift_view.selectionModel().select(
                    self.shift_model.index(row, 0),
                    QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
                )

    # -- lookup ---------------------------------------------------------------------------------------------------

    @Slot(str, object)
    def _on_session_lookup_done(self, e164: str, lead: LeadSummary | None) -> None:
        self.form.show_lookup(e164, lead)

    # -- status ---------------------------------------------------------------------------------------------------

    def _set_connection(self, state: str, detail: str) -> None:
        text = {"online": "● Online", "offline": "● Offline", "auth_needed": "● Sign-in needed",
                "connecting": "● Connecting…", "untrusted": "● Certificate not trusted"}.get(state, state)  # fmt: skip
        self.conn_label.setText(text)
        self.conn_label.setProperty("state", state)
        self.conn_label.setToolTip(detail)
        self.conn_label.style().unpolish(self.conn_label)
        self.conn_label.style().polish(self.conn_label)
        self.offline_banner.setText(UNTRUSTED_TEXT if state == "untrusted" else OFFLINE_TEXT)
        self.offline_banner.setVisible(state in ("offline", "untrusted"))

    @Slot(str, str)
    def _on_sync_connection_changed(self, state: str, detail: str) -> None:
        self._set_connection(state, detail)
        if state == "auth_needed":
            self.message_bar.show_message(
                "auth", "Your sign-in has ended. Use File → Sign out and sign in again; queued leads are kept "
                "and will be sent after you sign in.", "error")  # fmt: skip
        else:
            self.message_bar.clear_message("auth")

    @Slot(int, int, object)
    def _on_session_queue_stats(self, pending: int, parked: int, oldest: float | None) -> None:
        self._pending = pending
        text = f"Queue: {pending}"
        if oldest is not None and pending:
            text += f" · oldest {_age(time.time() - oldest)}"
        if parked:
            text += f" · {parked} refused"
        self.queue_label.setText(text)

    @Slot(object)
    def _on_sync_progress(self, p: SyncProgress) -> None:
        # While a long pass fills the cache, a number it does not know may be a lead on a page still to come: the form
        # says so instead of "new number". All rows in (indexing) or the pass over: the cache knows again. A pass that
        # fails halfway sends no finished report, so the note stays until one does.
        self._sync_reported = True
        catching_up = p.catching_up and not p.finished and not p.indexing
        self.form.set_cache_note(f"sync at {int(p.fraction * 100)} %" if catching_up else None)
        if catching_up:
            self.form.recheck_unknown()  # its page may be the one just written
        if p.finished:
            self.sync_bar.hide()
            self.session.cache_info(self._on_cache_info)
            if not self._first_sync_done:
                self._first_sync_done = True
                self._maybe_loaded()
            return
        self.sync_bar.show()
        self.sync_bar.setMaximum(1000)
        if p.indexing:  # the last step of a first sync: seconds in which no page comes, so say what is going on
            self.sync_bar.setValue(1000)
            self.sync_bar.setFormat(f"All {p.done:,} leads in — preparing search…")
            self.sync_bar.setToolTip(
                "Every lead is on this PC; its search and lists are being set up (a first sync's last step)."
            )
            return
        self.sync_bar.setToolTip("")
        self.sync_bar.setValue(int(p.fraction * 1000))
        eta = p.eta_seconds(time.time())
        eta_text = f" — {int(eta)} s left" if eta is not None else ""
        self.sync_bar.setFormat(f"Syncing {p.done:,} / {p.total:,} leads{eta_text}")

    @Slot(int)
    def _on_sync_leads_changed(self, n: int) -> None:
        # A banner on screen may describe a lead that just changed: look the number up again.
        self.form.refresh_lookup()
        from crm_desktop.ui.reassign import LeadListDialog

        for dialog in self.findChildren(LeadListDialog):  # a reassignment shows once the feed brought it back
            dialog.reload()

    @Slot(object)
    def _on_dashboard_drill_down_requested(self, drill: Any) -> None:
        """A dashboard figure opened: its leads, from this desk's cache, in the My leads list with the lead view."""
        from crm_desktop.ui.reassign import LeadListDialog

        session, catalog = self.session, self._catalog
        cres = list(catalog.get("cres") or [])
        rpc = session.api.rpc
        dialog = LeadListDialog(drill, session.store_path, rpc, cres, self, session=session, catalog=catalog)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    @Slot()
    def open_importer(self) -> None:
        from crm_desktop.ui.importer import ImportDialog, SettingsMemory

        journal_dir = self.session.store_path.parent / "imports"  # unfinished imports, to resume later
        memory = SettingsMemory(self.settings)
        dialog = ImportDialog(self.session.api.rpc, self.session.store_path, self._catalog, journal_dir, memory, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    def _on_cache_info(self, info: tuple[int, float | None, bool]) -> None:
        count, stored_at, first_sync_pending = info
        if first_sync_pending and not self._sync_reported:
            # At start, before this session's sync says anything (offline, or not yet): a cache that never caught up
            # may lack the caller's lead. The sync's own reports say more from their first one on.
            self.form.set_cache_note("the first sync has not finished")
        synced_at = self.session.engine.last_sync_at or stored_at
        if synced_at is not None:
            when = time.strftime("%H:%M:%S", time.localtime(synced_at))
            self.sync_label.setText(f"{count:,} leads cached · synced {when}")
        else:
            self.sync_label.setText(f"{count:,} leads cached · not synced yet")

    def _on_cached_catalog(self, catalog: dict[str, Any] | None) -> None:
        if catalog:
            self._apply_catalog(catalog)

    @Slot(object)
    def _on_sync_catalog_changed(self, catalog: dict[str, Any]) -> None:
        self._apply_catalog(catalog)

    def _apply_catalog(self, catalog: dict[str, Any]) -> None:
        self._catalog = dict(catalog)
        self.form.set_catalog(catalog)
        self.my_leads.set_catalog(catalog)
        self.my_leads.lead_view.set_catalog(catalog)
        if self.dashboard is not None and hasattr(self.dashboard, "set_branches"):
            self.dashboard.set_branches(list(catalog.get("branches", [])))
        if not self._catalog_ready:
            self._catalog_ready = True
            self._maybe_loaded()

    def _maybe_loaded(self) -> None:
        if self._catalog_ready and self._first_sync_done and not self._loaded_emitted:
            self._loaded_emitted = True
            self.data_loaded.emit()

    @Slot(object)
    def _on_sync_error(self, exc: Exception) -> None:
        if isinstance(exc, StoreError):
            self.message_bar.show_message(f"store-{exc.kind}", str(exc), "error")
            return
        import sys

        sys.excepthook(type(exc), exc, exc.__traceback__)

    @Slot()
    def _on_send_now_clicked(self) -> None:
        self.session.engine.send_now()
        self.session.engine.pull_now()


class ElidedLabel(QLabel):
    """A one-line label that shrinks before its neighbours: its text elided with "…" when short of room, the whole
    text in the tooltip."""

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setToolTip(text)

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:
        return QSize(0, super().minimumSizeHint().height())

    def shown_text(self) -> str:
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, self.contentsRect().width())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(self.contentsRect(), int(self.alignment()), self.shown_text())


def identity_text(profile: dict[str, Any]) -> str:
    """ "Asha Reddy · CRE · SOMAJIGUDA": who is signed in at this desk, always in sight."""
    role = {"cre": "CRE", "team_lead": "Team lead", "admin": "Admin", "ps": "PS"}.get(
        str(profile.get("role") or ""), str(profile.get("role") or "")
    )
    parts = [str(profile.get("full_name") or profile.get("email") or ""), role, str(profile.get("branch") or "")]
    return " · ".join(p for p in parts if p)


def _scrolling(page: QWidget) -> QScrollArea:
    """A tab page that scrolls instead of forcing the window taller than a 1366×768 screen (issue 13)."""
    area = QScrollArea()
    area.setWidget(page)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
