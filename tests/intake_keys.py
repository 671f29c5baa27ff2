"""Driving the desk's window with the keyboard, as a CRE does: every key goes to the widget that has the focus
(QApplication.focusWidget()), or — `to_list=True` — to the open suggestion list, as a desktop's window system
delivers keys while a popup is open. No widget value is ever set directly."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from crm_desktop.ui.main_window import MainWindow

NO = Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier
ALT = Qt.KeyboardModifier.AltModifier


def focused() -> QWidget:
    w = QApplication.focusWidget()
    assert w is not None, "nothing has the keyboard focus: typed keys would go nowhere"
    return w


def target(to_list: bool = False) -> QWidget:
    """Where a desktop delivers a key: the focus widget, or while a popup is open, the popup's focus widget."""
    popup = QApplication.activePopupWidget()
    if to_list and popup is not None:
        inner = popup.focusWidget()
        return inner if inner is not None and inner.window() is popup else popup
    return focused()


def type_text(text: str, to_list: bool = False) -> None:
    QTest.keyClicks(target(to_list), text)
    QApplication.processEvents()  # a person's next key comes milliseconds later: what the keys posted is done


def press(key: Qt.Key, modifier: Qt.KeyboardModifier = NO, to_list: bool = False) -> None:
    QTest.keyClick(target(to_list), key, modifier)
    QApplication.processEvents()


def activate(window: MainWindow, qtbot: Any) -> None:
    """The window in front with the keyboard, as after sign-in on a desktop."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)


def catalog_ready(window: MainWindow, qtbot: Any) -> None:
    qtbot.waitUntil(lambda: "GOOGLE" in window.form.source.choices(), timeout=10_000)
