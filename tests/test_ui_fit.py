"""The window on a call centre's 1366×768 screen (about 697 px of client area under the title bar and above the
taskbar): its minimum height stays ≤ 680 px for a CRE and a team lead, with and without the offline banner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from serverproc import phone_for
from test_ui_desk import close_desk, open_desk

from crm_desktop.ui.main_window import UNTRUSTED_TEXT

MAX_MIN_HEIGHT = 680


@pytest.mark.parametrize("email", ["cre1@demo.local", "lead@demo.local"])
def test_the_window_fits_a_1366x768_screen_with_and_without_the_offline_banner(
    server, clean_db, tmp_path: Path, qtbot: Any, email: str
):
    window = open_desk(server, tmp_path, qtbot, email)
    try:
        heights = {}
        for tab in range(window.tabs.count()):
            window.tabs.setCurrentIndex(tab)
            window._set_connection("online", "")
            heights[f"tab{tab}"] = window.minimumSizeHint().height()
            window._set_connection("offline", "")
            assert not window.offline_banner.isHidden()
            heights[f"tab{tab}+banner"] = window.minimumSizeHint().height()
            window._set_connection("untrusted", "")
            assert window.offline_banner.text() == UNTRUSTED_TEXT
            heights[f"tab{tab}+untrusted"] = window.minimumSizeHint().height()
            window.message_bar.show_message("x", "A message the CRE should read. " * 3, "warning")
            heights[f"tab{tab}+banner+message"] = window.minimumSizeHint().height()
            window.message_bar.clear_message("x")
        print(heights)
        assert max(heights.values()) <= MAX_MIN_HEIGHT, heights
        # The first size on a small screen is clamped to it.
        assert window.height() <= max(window.screen().availableGeometry().height(), MAX_MIN_HEIGHT)
    finally:
        close_desk(window)


class Switch(httpx.HTTPTransport):
    """Real HTTP until `down` is set; then every request fails as a dropped network does."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("network unreachable", request=request)
        return super().handle_request(request)


def _answer_next_question(button: QMessageBox.StandardButton, seen: list[str]) -> None:
    def answer() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            box.button(button).click()
        else:
            QTimer.singleShot(50, answer)

    QTimer.singleShot(50, answer)


@pytest.mark.expected_log_warnings
def test_quitting_with_unsent_leads_while_offline_warns_that_they_stay_on_this_pc(
    server, clean_db, tmp_path: Path, qtbot: Any
):
    transport = Switch()
    window = open_desk(server, tmp_path, qtbot, "cre1@demo.local", transport=transport)
    try:
        transport.down = True
        window.form.phone.setText(phone_for(993))
        window.form.name.setText("Late Caller")
        window.form.source.set_value("GOOGLE")
        window.form.sub_source.set_value("Google Know")
        window.form.submit()
        qtbot.waitUntil(lambda: window.session.engine.connection_state == "offline", timeout=10_000)
        window.session.refresh_queue_stats()
        qtbot.waitUntil(lambda: window.queue_label.text().startswith("Queue: 1"), timeout=5000)
        seen: list[str] = []
        _answer_next_question(QMessageBox.StandardButton.No, seen)
        window.close()
        assert seen and "1 lead(s) are queued on this PC and not sent yet" in seen[0]
        assert window.isVisible()  # the CRE chose to stay
        _answer_next_question(QMessageBox.StandardButton.Yes, seen)
        window.close()
        assert len(seen) == 2 and not window.isVisible()
    finally:
        close_desk(window)


@pytest.mark.parametrize("width", [800, 900])
@pytest.mark.usefixtures("styled")  # its paddings and bold decide what fits
def test_the_status_bar_shows_who_is_signed_in_whole_on_a_narrow_window(
    server, clean_db, tmp_path: Path, qtbot: Any, width: int
):
    """Who is signed in (name · role · branch), the queue and Send now stay whole; the sync line gives up its room
    first, elided, with its full text in the tooltip (at 800 px the branch was cut to "SOMAJIGUD")."""
    window = open_desk(server, tmp_path, qtbot, "cre1@demo.local")
    try:
        window.resize(width, 760)
        qtbot.waitUntil(lambda: "synced" in window.sync_label.text(), timeout=10_000)
        window.sync_label.setText("1,024,827 leads cached · synced 07:58:55")  # what a desk at 1M leads says
        QApplication.processEvents()
        bar = window.statusBar()
        right_edge = -1
        for label in (window.identity_label, window.queue_label, window.send_now_button):
            box = label.geometry()  # the status bar's children: in its coordinates
            assert label.width() >= label.sizeHint().width(), (label.text(), label.width(), label.sizeHint())
            assert box.left() > right_edge and box.right() <= bar.width(), (label.text(), box, right_edge)
            right_edge = box.right()
        sync = window.sync_label.geometry()
        assert sync.right() < window.identity_label.geometry().left(), (sync, window.identity_label.geometry())
        assert window.identity_label.text().endswith("SOMAJIGUDA")
        shown = window.sync_label.shown_text()
        assert shown == window.sync_label.toolTip() or shown.endswith("…")
    finally:
        close_desk(window)
