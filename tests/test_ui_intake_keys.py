"""Issue 9, items 1–5 and the one key path: keys typed through the window land where the CRE means them to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from intake_keys import ALT, CTRL, activate, catalog_ready, focused, press, type_text
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
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


def submitted(window: MainWindow) -> list[dict[str, Any]]:
    return [it.payload for it in window.shift_model.items()]


def test_1_the_first_digits_of_a_shift_land_in_mobile(desk: MainWindow):
    assert focused() is desk.form.phone
    type_text("98480")
    assert desk.form.phone.text().replace(" ", "") == "98480"


def test_1_ctrl_1_back_from_the_dashboard_puts_the_focus_in_mobile(server, clean_db, tmp_path, qtbot):
    window = open_desk(server, tmp_path, qtbot, "lead@demo.local")
    try:
        activate(window, qtbot)
        press(K.Key_1, CTRL)
        assert window.tabs.currentIndex() == 0
        type_text("98480")
        assert window.form.phone.text().replace(" ", "") == "98480"
    finally:
        close_desk(window)


def fill_new_caller(phone: str = "9845012345", name: str = "Meena Kumari") -> None:
    type_text(phone)
    press(K.Key_Tab)
    type_text(name)
    press(K.Key_Tab)


@pytest.mark.parametrize("to_list", [False, True], ids=["key-to-field", "key-to-open-list"])
def test_2_esc_with_a_list_open_closes_the_list_and_keeps_the_caller(desk: MainWindow, to_list: bool):
    form = desk.form
    fill_new_caller()
    type_text("meta")
    assert QApplication.activePopupWidget() is not None  # the suggestion list is open
    press(K.Key_Escape, to_list=to_list)
    assert QApplication.activePopupWidget() is None and not form.source.list_open()
    assert form.phone.text() == "98450 12345" and form.name.text() == "Meena Kumari"
    assert focused() is form.source
    # Only an Esc with no list open clears; Ctrl+Z brings the caller back, once.
    press(K.Key_Escape)
    assert form.phone.text() == "" and form.name.text() == "" and focused() is form.phone
    press(K.Key_Z, CTRL)
    assert form.phone.text() == "98450 12345" and form.name.text() == "Meena Kumari"
    assert form.source.currentText() == "META"
    press(K.Key_Escape)
    press(K.Key_Z, CTRL)
    assert form.name.text() == "Meena Kumari"  # the second clear can be undone too: one Ctrl+Z per clear
    press(K.Key_Escape)
    type_text("9")  # a new caller: the cleared one is gone for good
    press(K.Key_Z, CTRL)
    assert form.name.text() == ""


@pytest.mark.parametrize("to_list", [False, True], ids=["key-to-field", "key-to-open-list"])
def test_3_enter_with_a_list_open_saves_and_the_next_digits_go_to_mobile(desk: MainWindow, qtbot, to_list: bool):
    form = desk.form
    fill_new_caller()
    type_text("goo")
    press(K.Key_Tab)
    type_text("interested")
    assert QApplication.activePopupWidget() is not None
    press(K.Key_Return, to_list=to_list)
    qtbot.waitUntil(lambda: len(submitted(desk)) == 1, timeout=2000)
    assert submitted(desk)[0]["lead_status"] == "Interested"
    assert focused() is form.phone
    type_text("93966")
    assert form.phone.text().replace(" ", "") == "93966"
    # The status is the one kept for the next caller (campaign mode), untouched by the digits.
    assert form.lead_status.currentText() == "Interested" and form.lead_status.property("kept") is True


def test_4_the_follow_up_is_one_tab_stop_and_the_remark_lands_in_remark(desk: MainWindow, qtbot, clean_db):
    form = desk.form
    fill_new_caller("9845012346")
    type_text("goo")
    press(K.Key_Tab)
    type_text("int")
    press(K.Key_Tab)
    assert focused() is form.follow_up
    type_text("3")  # replaces the default (selected on Tab)
    press(K.Key_Tab)
    assert focused() is form.category
    for _ in range(4):  # category, model, branch, PS: one stop each
        press(K.Key_Tab)
    assert focused() is form.remark
    type_text("wants test ride Sunday")
    press(K.Key_Return)
    qtbot.waitUntil(lambda: any(it.state is OutboxState.DONE for it in desk.shift_model.items()), timeout=10_000)
    row = clean_db.execute("select remark, test_drive_done, follow_up_date from leads").fetchone()
    assert row[0] == "wants test ride Sunday" and row[1] is False
    assert row[2].day == 3


def test_4_a_date_and_a_time_typed_or_picked_from_the_calendar(desk: MainWindow, qtbot):
    form = desk.form
    fill_new_caller("9845012347")
    type_text("goo")
    press(K.Key_Tab)
    type_text("call m")
    press(K.Key_Tab)
    type_text("+2 5pm")
    assert "in 2 days · 17:00" in form.follow_up_hint.text()
    press(K.Key_F4)  # the calendar, on the typed date
    cal = QApplication.activePopupWidget()
    assert cal is not None and cal.isVisible()
    press(K.Key_Right, to_list=True)
    press(K.Key_Return, to_list=True)
    assert not cal.isVisible() and focused() is form.follow_up
    assert "in 3 days" in form.follow_up_hint.text()
    press(K.Key_Escape)  # nothing open now: Esc clears
    assert form.follow_up.text() == "tomorrow"
    press(K.Key_Z, CTRL)
    assert form.name.text() == "Meena Kumari"


def test_5_a_picker_takes_its_suggestion_on_tab_and_marks_nonsense_red(desk: MainWindow):
    form = desk.form
    fill_new_caller()
    type_text("goo")
    press(K.Key_Tab)
    assert form.source.currentText() == "GOOGLE" and form.sub_source.currentText() == "Google Know"
    assert focused() is form.lead_status  # the only sub-source is filled and skipped
    type_text("ca")  # starts-with beats contains ("Busy on another Call")
    press(K.Key_Tab)
    assert form.lead_status.currentText() == "Call me Back"
    assert focused() is form.follow_up
    type_text("zzz")
    press(K.Key_Tab)  # category
    assert form.follow_up.property("invalid") is True
    assert form.errors["follow_up_date"].isVisible() and "Type a date" in form.errors["follow_up_date"].text()
    type_text("qq")
    press(K.Key_Tab)
    assert form.category.currentText() == "qq" and form.category.property("invalid") is True
    assert form.errors["lead_category"].isVisible()
    press(K.Key_Tab, Qt.KeyboardModifier.ShiftModifier)  # back, fix it
    assert focused() is form.category
    type_text("h")
    press(K.Key_Tab)
    assert form.category.currentText() == "Hot" and not form.errors["lead_category"].isVisible()
    assert not form.category.property("invalid")


def test_enter_on_an_incomplete_form_says_what_is_missing_once_and_goes_there(desk: MainWindow):
    form = desk.form
    type_text("9845012348")
    press(K.Key_Return)
    assert form.errors["customer_name"].isVisible() and focused() is form.name
    assert form.labels["customer_name"].property("required") is True
    messages = [lbl.text() for lbl in form.findChildren(type(form.phone_status)) if lbl.isVisible()]
    assert messages.count("Enter the customer's name.") == 1
    assert desk.shift_model.rowCount() == 0
    press(K.Key_W, ALT)  # Alt+underlined letter still jumps
    assert focused() is form.follow_up


def test_a_follow_up_time_is_stored_as_a_time(desk: MainWindow, qtbot, clean_db):
    fill_new_caller("9845012349")
    type_text("goo")
    press(K.Key_Tab)
    type_text("call m")
    press(K.Key_Tab)
    type_text("tomorrow 5:30pm")
    press(K.Key_Return)
    qtbot.waitUntil(lambda: any(it.state is OutboxState.DONE for it in desk.shift_model.items()), timeout=10_000)
    row = clean_db.execute(
        "select follow_up_date, to_char(follow_up_at at time zone 'Asia/Kolkata', 'HH24:MI'), remark from leads"
    ).fetchone()
    assert row[1] == "17:30" and row[2] is None


def type_as_a_person(text: str) -> None:
    """Each key to whatever has the focus when it is pressed (type_text sends a whole string to one widget)."""
    for ch in text:
        QTest.keyClicks(focused(), ch)
        QApplication.processEvents()


def test_a_letter_after_a_complete_mobile_starts_the_name(desk: MainWindow, qtbot):
    """The next caller is digits, name, Enter: a letter typed at the end of a valid mobile goes to the empty name
    (no letter belongs in a phone number), the number stays as it was."""
    form = desk.form
    type_as_a_person("9845012345Meena K")
    assert form.phone.text().replace(" ", "") == "9845012345"
    assert form.name.text() == "Meena K"
    assert focused() is form.name
    type_text("goo")  # the picker takes its suggestion on Tab, as before: the path after the name is unchanged
    assert form.name.text() == "Meena Kgoo"


def test_a_letter_in_an_incomplete_or_edited_mobile_stays_there(desk: MainWindow):
    form = desk.form
    type_as_a_person("98450a")  # not a number yet: the key is the CRE's to correct, not a name
    assert form.name.text() == ""
    assert focused() is form.phone
    press(K.Key_Backspace)
    type_as_a_person("12345")
    press(K.Key_Home)  # correcting the number somewhere in the middle: keys stay in Mobile
    type_as_a_person("x")
    assert form.name.text() == "" and focused() is form.phone
