"""Issue 9: the intake form fits a 1280×800 screen and a maximised 1366×768 one (~1366×740 of client area) without
scrolling: the Lead desk tab's scroll area has nothing to scroll and no field, label or button of the form is cut,
also with every "required" message shown (Enter on an empty form) and with the campaign's kept note."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from intake_keys import activate, catalog_ready, press, type_text
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QApplication, QComboBox, QScrollArea, QWidget
from test_ui_desk import close_desk, open_desk

from crm_desktop.ui.main_window import MainWindow

K = Qt.Key
SIZES = [(1280, 800), (1366, 740)]


def desk_area(window: MainWindow) -> QScrollArea:
    area = window.tabs.widget(0)
    assert isinstance(area, QScrollArea)
    return area


def cut_widgets(window: MainWindow) -> list[str]:
    """Every shown widget of the form that is not wholly inside the scroll area's viewport, or is squeezed below the
    height it asks for."""
    area = desk_area(window)
    viewport = area.viewport()
    seen = QRect(viewport.mapTo(window, viewport.rect().topLeft()), viewport.size())
    form = window.form
    cut = []
    for w in [form, *form.findChildren(QWidget)]:
        if not w.isVisibleTo(window) or w.window() is not window or w.width() == 0:
            continue
        box = QRect(w.mapTo(window, w.rect().topLeft()), w.size())
        name = w.objectName() or type(w).__name__
        if not seen.contains(box):
            cut.append(f"{name} {box} outside {seen}")
        elif w.height() < w.minimumSizeHint().height() and not isinstance(w.parentWidget(), QComboBox):
            cut.append(f"{name} squeezed: {w.height()} < {w.minimumSizeHint().height()}")
    return cut


def scroll_and_cut(window: MainWindow) -> tuple[int, int, list[str]]:
    """(px to scroll down, px to scroll across, what is cut) for the Lead desk tab."""
    area = desk_area(window)
    return area.verticalScrollBar().maximum(), area.horizontalScrollBar().maximum(), cut_widgets(window)


def settle(window: MainWindow, qtbot: Any, size: tuple[int, int]) -> None:
    window.resize(*size)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size, timeout=2000)
    for _ in range(3):
        QApplication.processEvents()
        qtbot.wait(5)


@pytest.mark.usefixtures("styled")
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_the_intake_form_fits_without_scrolling(server, clean_db, tmp_path: Path, qtbot: Any, size):
    window = open_desk(server, tmp_path, qtbot, "cre1@demo.local")
    try:
        activate(window, qtbot)
        catalog_ready(window, qtbot)
        states: dict[str, tuple[int, int, list[str]]] = {}
        settle(window, qtbot, size)
        states["empty"] = scroll_and_cut(window)
        press(K.Key_Return)  # every required field says so, under the field
        assert window.form.errors["customer_name"].isVisible()
        settle(window, qtbot, size)
        states["errors"] = scroll_and_cut(window)
        press(K.Key_Escape)
        type_text("9845012366")
        press(K.Key_Tab)
        type_text("Meena")
        press(K.Key_Tab)
        type_text("goo")
        press(K.Key_Tab)
        type_text("int")
        press(K.Key_Return)
        qtbot.waitUntil(lambda: window.form.kept_note.isVisible(), timeout=2000)
        settle(window, qtbot, size)
        states["kept"] = scroll_and_cut(window)
        for state, (v, h, cut) in states.items():
            assert (v, h, cut) == (0, 0, []), f"{state} at {size}: scrolls {v} px down, {h} px across; cut: {cut}"
    finally:
        close_desk(window)
