"""Issue 9, items 9–12 and 14: campaign marks, "This shift", phone messages, Won/Lost, identity and empty states."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from intake_keys import CTRL, activate, catalog_ready, focused, press, type_text
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel
from serverproc import Api, new_lead, phone_for
from test_ui_desk import close_desk, open_desk

from crm_desktop.core.models import OutboxState
from crm_desktop.ui.main_window import MainWindow

K = Qt.Key


@pytest.fixture
def desk(server, clean_db, tmp_path: Path, qtbot: Any) -> Iterator[MainWindow]:
    window = open_desk(server, tmp_path, qtbot, "cre1@demo.local")
    activate(window, qtbot)
    catalog_ready(window, qtbot)
    yield window
    close_desk(window)


def new_caller(phone: str, name: str, source: str | None = "goo", status: str = "int") -> None:
    type_text(phone)
    press(K.Key_Tab)
    type_text(name)
    press(K.Key_Tab)
    if source is not None:
        type_text(source)
    press(K.Key_Tab)
    type_text(status)
    press(K.Key_Return)


def test_9_source_and_branch_kept_from_the_last_lead_are_marked_and_one_key_clears_them(desk: MainWindow, qtbot):
    form = desk.form
    type_text("9845012360")
    press(K.Key_Tab)
    type_text("Meena")
    press(K.Key_Tab)
    type_text("meta")
    for _ in range(5):  # status, follow-up, category, model, branch
        press(K.Key_Tab)
    assert focused() is form.branch
    type_text("som")
    press(K.Key_Return)
    qtbot.waitUntil(lambda: desk.shift_model.rowCount() == 1, timeout=2000)
    assert form.source.currentText() == "META" and form.branch.currentText() == "SOMAJIGUDA"
    assert form.source.property("kept") is True and form.branch.property("kept") is True
    assert form.kept_note.isVisible() and "kept from the last lead" in form.kept_note.text()
    press(K.Key_K, CTRL)
    assert form.source.currentText() == "" and form.branch.currentText() == ""
    assert not form.kept_note.isVisible() and not form.source.property("kept")
    assert focused() is form.phone


def test_9_the_next_campaign_caller_is_number_name_enter_with_the_status_kept_and_marked(desk: MainWindow, qtbot):
    """bench_keys' case B: the status is kept like source and branch, so the next caller on the line is the number,
    Tab, the name and Enter (from the name field)."""
    form = desk.form
    new_caller("9845012363", "Meena", status="int")
    qtbot.waitUntil(lambda: desk.shift_model.rowCount() == 1, timeout=2000)
    assert form.lead_status.currentText() == "Interested" and form.lead_status.property("kept") is True
    assert "call status" in form.kept_note.text() and form.kept_note.isVisible()
    type_text("9845012364")
    press(K.Key_Tab)
    assert focused() is form.name
    type_text("Gopal Raoo")
    press(K.Key_Return)
    qtbot.waitUntil(lambda: desk.shift_model.rowCount() == 2
                    and desk.shift_model.items()[-1].state is OutboxState.DONE, timeout=10_000)  # fmt: skip
    stored = desk.shift_model.items()[-1].payload
    assert (stored["customer_name"], stored["source"], stored["lead_status"]) == ("Gopal Raoo", "GOOGLE", "Interested")
    # A different outcome is typed over the kept one, which then stops being "kept".
    type_text("9845012365")
    press(K.Key_Tab)
    type_text("Ravi")
    for _ in range(2):  # source (kept), call status (the one sub-source is skipped)
        press(K.Key_Tab)
    assert focused() is form.lead_status
    type_text("rnr")
    assert not form.lead_status.property("kept")
    press(K.Key_Return)
    qtbot.waitUntil(lambda: desk.shift_model.rowCount() == 3, timeout=2000)
    assert desk.shift_model.items()[-1].payload["lead_status"] == "RNR"
    assert form.lead_status.currentText() == "RNR" and form.lead_status.property("kept") is True
    press(K.Key_K, CTRL)
    assert form.lead_status.currentText() == "" and not form.lead_status.property("kept")


def test_9_choosing_the_source_again_removes_the_mark(desk: MainWindow, qtbot):
    form = desk.form
    new_caller("9845012361", "Meena")
    qtbot.waitUntil(lambda: desk.shift_model.rowCount() == 1, timeout=2000)
    assert form.source.property("kept") is True
    type_text("9845012362")
    press(K.Key_Tab)
    type_text("Gopal")
    press(K.Key_Tab)
    type_text("btl")
    press(K.Key_Tab)
    assert form.source.currentText() == "BTL" and not form.source.property("kept")
    assert form.kept_note.isVisible() and form.lead_status.property("kept") is True  # the status still is
    type_text("int")
    assert not form.lead_status.property("kept") and not form.kept_note.isVisible()


class SwitchableTransport(httpx.HTTPTransport):
    """A real transport whose network can be pulled out (connection refused) and put back."""

    down = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("Cannot reach the server (test: cable out)", request=request)
        return super().handle_request(request)


@pytest.mark.expected_log_warnings
def test_10_this_shift_names_the_caller_and_the_owner_and_speaks_plainly(server, clean_db, api: Api, tmp_path,
                                                                          qtbot):  # fmt: skip
    api.rpc("create_lead", api.token("cre2@demo.local"), lead=new_lead(phone_for(910), customer_name="Anil Yadav"))
    transport = SwitchableTransport()
    window = open_desk(server, tmp_path, qtbot, "cre1@demo.local", transport=transport)
    try:
        activate(window, qtbot)
        catalog_ready(window, qtbot)
        window.resize(900, 760)
        type_text(phone_for(910)[3:])  # a known caller: the name is the lead's
        qtbot.waitUntil(lambda: window.form.banner.lead is not None, timeout=2000)
        press(K.Key_Return)
        qtbot.waitUntil(lambda: window.shift_model.rowCount() == 1
                        and window.shift_model.items()[0].state is OutboxState.DONE, timeout=10_000)  # fmt: skip
        model = window.shift_model
        assert model.index(0, 1).data() == "Anil Yadav"  # the name, not +91******0910
        result = model.index(0, 3).data()
        assert "Imran Khan" in result and result.startswith(window.shift_model.items()[0].answer["uid"])
        view = window.shift_view  # at 900 px the whole result is readable: inside the view, wrapped if need be
        assert view.columnViewportPosition(3) + view.columnWidth(3) <= view.viewport().width()
        needed = view.fontMetrics().boundingRect(QRect(0, 0, view.columnWidth(3) - 8, 1000),
                                                 Qt.TextFlag.TextWordWrap, result)  # fmt: skip
        assert needed.height() <= view.rowHeight(0)
        assert view.fontMetrics().horizontalAdvance("Imran Khan") <= view.columnWidth(3) - 8
        transport.down = True
        new_caller("9845012363", "Gopal Rao")
        qtbot.waitUntil(lambda: model.rowCount() == 2 and model.items()[1].attempts >= 1, timeout=10_000)
        qtbot.waitUntil(lambda: model.index(1, 3).data() == "Waiting for the server", timeout=5000)
        assert "retry" not in model.index(1, 3).data()
        assert "Cannot reach" in model.index(1, 3).data(Qt.ItemDataRole.ToolTipRole)  # the detail, for IT
        transport.down = False
        window.session.engine.send_now()
        qtbot.waitUntil(lambda: model.items()[1].state is OutboxState.DONE, timeout=15_000)
    finally:
        close_desk(window)
        transport.close()


def visible_texts(window: MainWindow) -> list[str]:
    return [lbl.text() for lbl in window.findChildren(QLabel) if lbl.isVisible() and lbl.text().strip()]


def test_11_a_landline_is_said_once(desk: MainWindow):
    type_text("022 2345 6789")
    press(K.Key_Tab)
    said = [t for t in visible_texts(desk) if "landline" in t.lower()]
    assert len(said) == 1
    press(K.Key_Return)
    said = [t for t in visible_texts(desk) if "landline" in t.lower()]
    assert len(said) == 1


def test_11_a_short_number_is_explained_when_the_cre_tabs_out(desk: MainWindow):
    form = desk.form
    type_text("12345")
    assert form.phone_status.text().strip() == ""  # still typing: no nagging
    press(K.Key_Tab)
    assert focused() is form.name
    assert form.phone_status.property("state") == "invalid" and form.phone_status.text().strip()
    assert form.phone.property("invalid") is True


def test_11_a_devanagari_paste_reads_back_in_latin_digits(desk: MainWindow, qtbot):
    QGuiApplication.clipboard().setText("९८७६५४३२१०")
    press(K.Key_V, CTRL)
    assert desk.form.phone.text() == "98765 43210"
    assert "+91 98765 43210" in desk.form.phone_status.text()


def test_12_won_or_lost_gets_no_follow_up(desk: MainWindow, qtbot, clean_db):
    form = desk.form
    type_text("9845012364")
    press(K.Key_Tab)
    type_text("Ritu")
    press(K.Key_Tab)
    type_text("goo")
    press(K.Key_Tab)
    type_text("not int")
    press(K.Key_Tab)
    assert form.follow_up.text() == "tomorrow"
    for _ in range(6):  # category, model, branch, PS, remark, final status
        press(K.Key_Tab)
    assert focused() is form.final_status
    type_text("lost")
    press(K.Key_Tab)
    assert form.follow_up.text() == "" and form.follow_up_hint.text() == "no follow-up"
    press(K.Key_Return)
    qtbot.waitUntil(lambda: desk.shift_model.rowCount() == 1
                    and desk.shift_model.items()[0].state is OutboxState.DONE, timeout=10_000)  # fmt: skip
    assert clean_db.execute("select final_status, follow_up_date from leads").fetchone() == ("Lost", None)


def test_14_who_is_signed_in_and_a_helpful_empty_shift(desk: MainWindow, qtbot):
    assert desk.identity_label.text() == "Asha Reddy · CRE · SOMAJIGUDA"
    assert desk.identity_label.isVisible()
    assert desk.shift_empty.isVisible() and "No leads yet this shift" in desk.shift_empty.text()
    assert not desk.shift_view.isVisible() and not desk.resend_button.isVisible()
    new_caller("9845012365", "Kiran")
    qtbot.waitUntil(lambda: desk.shift_model.rowCount() == 1, timeout=2000)
    assert desk.shift_view.isVisible() and not desk.shift_empty.isVisible()


def test_14_a_team_lead_opens_on_the_dashboard(server, clean_db, tmp_path, qtbot):
    window = open_desk(server, tmp_path, qtbot, "lead@demo.local")
    try:
        assert window.tabs.tabText(window.tabs.currentIndex()) == "Dashboard"
        assert window.identity_label.text() == "Priya Sharma · Team lead"
    finally:
        close_desk(window)
