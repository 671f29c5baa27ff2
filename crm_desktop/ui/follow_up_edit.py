"""The follow-up field: a date typed as a CRE says it, one Tab stop, with a calendar on F4 / Alt+Down.

A QDateEdit has a Tab stop per section and jumps sections by itself after two digits, so a CRE could never learn a
fixed rhythm (the remark once went into the next checkbox). This is a line edit: `3`, `3/12`, `+2`, `mon`,
`tomorrow 5pm` (core/dates.py), read back beside it as "Thu 3 Dec 2026 · in 3 days". Blank means no follow-up."""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import QDate, Qt, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QCalendarWidget, QLineEdit, QWidget

from crm_desktop.core.dates import FollowUp, InvalidDate, parse_follow_up


class FollowUpEdit(QLineEdit):
    """Signals: changed() whenever what the text means changes (the form re-reads value() and the hint)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("followUpField")
        self.setMaxLength(40)
        self.setPlaceholderText("3, 3/12, +2, mon, tomorrow 5pm …  (F4: calendar)")
        self._calendar: QCalendarWidget | None = None
        self.textChanged.connect(self._on_text_changed)

    # -- value ----------------------------------------------------------------------------------------------------

    @staticmethod
    def today() -> date:
        return date.today()

    def value(self) -> FollowUp | None:
        """The follow-up typed; None when blank. Raises InvalidDate (with the sentence to show) when unreadable."""
        return parse_follow_up(self.text(), self.today())

    def error(self) -> str | None:
        try:
            self.value()
        except InvalidDate as exc:
            return str(exc)
        return None

    def hint(self) -> str:
        try:
            value = self.value()
        except InvalidDate:
            return ""
        return value.describe(self.today()) if value is not None else "no follow-up"

    def set_day(self, day: date | None) -> None:
        self.setText(f"{day.day}/{day.month}/{day.year}" if day is not None else "")

    @Slot(str)
    def _on_text_changed(self, _text: str) -> None:
        self.changed.emit()

    # -- calendar -------------------------------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        opens = event.key() == Qt.Key.Key_F4 or (
            event.key() == Qt.Key.Key_Down and event.modifiers() & Qt.KeyboardModifier.AltModifier
        )
        if opens:
            self.open_calendar()
            return
        super().keyPressEvent(event)

    def calendar_open(self) -> bool:
        return self._calendar is not None and self._calendar.isVisible()

    def open_calendar(self) -> None:
        if self._calendar is None:
            cal = QCalendarWidget(self)
            cal.setWindowFlags(Qt.WindowType.Popup)
            cal.setGridVisible(True)
            cal.activated.connect(self._on_calendar_activated)
            cal.clicked.connect(self._on_calendar_activated)
            self._calendar = cal
        try:
            current = self.value()
        except InvalidDate:
            current = None
        day = current.day if current is not None else self.today()
        self._calendar.setSelectedDate(QDate(day.year, day.month, day.day))
        self._calendar.move(self.mapToGlobal(self.rect().bottomLeft()))
        self._calendar.show()
        self._calendar.setFocus()

    def close_calendar(self) -> None:
        if self._calendar is not None and self._calendar.isVisible():
            self._calendar.hide()
            self.setFocus()

    @Slot(QDate)
    def _on_calendar_activated(self, qdate: QDate) -> None:
        self.set_day(date(qdate.year(), qdate.month(), qdate.day()))
        self.close_calendar()
