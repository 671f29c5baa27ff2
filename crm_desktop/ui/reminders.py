"""Call-backs remind: a follow-up with a time of day raises a desk notification when that time comes — a line in the
window with an Open button (Enter or a click opens the lead with its call form) and, where the platform has a system
tray, a tray message (a click on it opens the lead too).

The due call-backs come from the local cache (the Call-backs list, with this desk's queue laid over), checked every
30 s and whenever leads change; each (lead, time) reminds once per run of the desk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSystemTrayIcon, QWidget

from crm_desktop.core.models import LeadSummary
from crm_desktop.core.worklist import desk_today
from crm_desktop.ui.session import DeskSession

log = logging.getLogger(__name__)

CHECK_EVERY_MS = 30_000


def is_due(lead: LeadSummary, now: datetime) -> bool:
    """The call-back's time has come (and it is still Pending)."""
    if lead.final_status != "Pending" or not lead.follow_up_at:
        return False
    try:
        at = datetime.fromisoformat(lead.follow_up_at)
    except ValueError:
        return False
    if at.tzinfo is None:
        at = at.astimezone()  # no offset: the desk's local time
    return at <= now


class CallbackReminder(QObject):
    """Signals: due(object LeadSummary) once per call-back whose time has come."""

    due = Signal(object)

    def __init__(self, session: DeskSession, cre_id: Callable[[], str], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._cre_id = cre_id
        self._reminded: set[tuple[str, str]] = set()
        self.timer = QTimer(self)
        self.timer.setInterval(CHECK_EVERY_MS)
        self.timer.timeout.connect(self.check)
        session.bridge.leads_changed.connect(self.check)

    def start(self) -> None:
        self.timer.start()
        self.check()

    @Slot()
    def check(self, *_: object) -> None:
        self.session.due_callbacks(self._cre_id(), desk_today(), self._on_callbacks_loaded)

    def _on_callbacks_loaded(self, leads: list[LeadSummary]) -> None:
        now = datetime.now().astimezone()
        for lead in leads:
            key = (lead.phone, lead.follow_up_at or "")
            if key in self._reminded or not is_due(lead, now):
                continue
            self._reminded.add(key)
            log.info("call-back due: %s", lead.uid or lead.customer_name)
            self.due.emit(lead)


class ReminderBar(QFrame):
    """The in-app notification: one line per due call-back with an Open button (focusable: Enter opens).
    Signals: open_requested(object LeadSummary)."""

    open_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reminderBar")
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(8, 4, 8, 4)
        self.label = QLabel()
        self.open_button = QPushButton("Open")
        self.open_button.setObjectName("openCallback")
        self.dismiss_button = QPushButton("Later")
        self._layout.addWidget(self.label, 1)
        self._layout.addWidget(self.open_button)
        self._layout.addWidget(self.dismiss_button)
        self.open_button.clicked.connect(self._on_open_clicked)
        self.dismiss_button.clicked.connect(self._on_dismiss_clicked)
        self._queue: list[LeadSummary] = []
        self.tray: QSystemTrayIcon | None = None
        self.hide()

    def use_tray(self, tray: QSystemTrayIcon | None) -> None:
        self.tray = tray
        if tray is not None:
            tray.messageClicked.connect(self._on_open_clicked)

    @property
    def current(self) -> LeadSummary | None:
        return self._queue[0] if self._queue else None

    def remind(self, lead: LeadSummary) -> None:
        self._queue.append(lead)
        self._show_current()
        if self.tray is not None and QSystemTrayIcon.supportsMessages():
            when = lead.follow_up_at or ""
            self.tray.showMessage("Call-back due", f"{lead.customer_name} ({when[11:16]}) — click to open",
                                  QSystemTrayIcon.MessageIcon.Information, 30_000)  # fmt: skip

    def _show_current(self) -> None:
        lead = self.current
        if lead is None:
            self.hide()
            return
        more = f"   (+{len(self._queue) - 1} more)" if len(self._queue) > 1 else ""
        when = lead.follow_up_at or ""
        try:
            when = datetime.fromisoformat(when).astimezone().strftime("%H:%M")
        except ValueError:
            pass
        self.label.setText(f"Call-back due: {lead.customer_name} at {when}{more}")
        self.show()  # never takes the focus: the CRE may be typing a caller's number (Ctrl+R or Tab + Enter opens)

    @Slot()
    def _on_open_clicked(self) -> None:
        lead = self.current
        if lead is None:
            return
        self._queue.pop(0)
        self._show_current()
        self.open_requested.emit(lead)

    @Slot()
    def _on_dismiss_clicked(self) -> None:
        if self._queue:
            self._queue.pop(0)
        self._show_current()
