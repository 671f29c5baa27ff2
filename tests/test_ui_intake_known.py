"""Issue 9, items 6–8: the known caller. The banner shows the lead without moving the form, the form switches to
"Call on GA-… — name", and the verdict says exactly what Enter stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from intake_keys import activate, catalog_ready, focused, press, type_text
from PySide6.QtCore import Qt
from serverproc import Api, new_lead, phone_for
from test_ui_desk import close_desk, open_desk

from crm_desktop.core.models import OutboxState
from crm_desktop.core.store import Store
from crm_desktop.ui.main_window import MainWindow

K = Qt.Key
CALLER = phone_for(900)
OVERDUE_DAYS = 15


@pytest.fixture
def known(server, clean_db, api: Api, tmp_path: Path, qtbot: Any) -> Iterator[MainWindow]:
    """A desk whose cache knows Sravani Reddy (cre2's lead from META, Interested, follow-up 15 days ago)."""
    other = api.token("cre2@demo.local")
    due = (date.today() - timedelta(days=OVERDUE_DAYS)).isoformat()
    api.rpc("create_lead", other, lead=new_lead(CALLER, customer_name="Sravani Reddy", source="META",
                                                 sub_source="Meta Know", lead_status="Interested",
                                                 follow_up_date=due))  # fmt: skip
    window = open_desk(server, tmp_path, qtbot, "cre1@demo.local")
    qtbot.waitUntil(lambda: Store(window.session.store_path).lookup(CALLER) is not None, timeout=10_000)
    activate(window, qtbot)
    catalog_ready(window, qtbot)
    yield window
    close_desk(window)


def national(e164: str) -> str:
    return e164[3:]


def test_6_a_known_caller_is_not_asked_a_name_and_enter_logs_the_call(known: MainWindow, qtbot, clean_db):
    form = known.form
    type_text(national(CALLER))
    qtbot.waitUntil(lambda: form.banner.lead is not None, timeout=2000)
    uid = form.banner.lead.uid
    assert form.banner.title.text() == f"Call on {uid} — Sravani Reddy"
    assert form.name.text() == "Sravani Reddy" and form.name.isReadOnly()
    assert form.lead_status.currentText() == "Interested"  # the lead's status, prefilled
    assert form.source.currentText() == "META" and form.sub_source.currentText() == "Meta Know"
    press(K.Key_Tab)
    assert focused() is form.lead_status  # the name is not a stop: Mobile -> Call status
    type_text("ca")
    assert "Call me Back" in form.banner.verdict.text() or form.lead_status.suggestion() == "Call me Back"
    press(K.Key_Return)
    qtbot.waitUntil(lambda: known.shift_model.rowCount() == 1
                    and known.shift_model.items()[0].state is OutboxState.DONE, timeout=10_000)  # fmt: skip
    item = known.shift_model.items()[0]
    assert item.payload["customer_name"] == "Sravani Reddy" and item.payload["lead_status"] == "Call me Back"
    assert item.answer["outcome"] == "exact_duplicate"
    assert known.shift_model.index(0, 1).data() == "Sravani Reddy"
    rows = clean_db.execute("select lead_status from call_attempts order by attempt").fetchall()
    assert rows[-1] == ("Call me Back",)
    # The next caller is new again: the name is asked, and typed.
    assert not form.name.isReadOnly() and form.name.text() == ""


def test_6_leaving_the_known_number_gives_the_form_back(known: MainWindow, qtbot):
    form = known.form
    type_text(national(CALLER))
    qtbot.waitUntil(lambda: form.banner.lead is not None, timeout=2000)
    press(K.Key_Backspace)
    assert form.banner.lead is None
    assert form.name.text() == "" and not form.name.isReadOnly()
    assert form.lead_status.currentText() == "" and form.source.currentText() == ""
    press(K.Key_Tab)
    assert focused() is form.name


def test_7_an_exact_duplicate_without_a_status_says_nothing_will_be_stored(known: MainWindow, qtbot, clean_db):
    form = known.form
    type_text(national(CALLER))
    qtbot.waitUntil(lambda: form.banner.lead is not None, timeout=2000)
    assert "Enter stores only this call (Interested, follow-up" in form.banner.verdict.text()
    press(K.Key_Tab)
    press(K.Key_Backspace)  # the prefilled status was selected on Tab: gone
    assert form.lead_status.currentText() == ""
    verdict = form.banner.verdict.text()
    assert "no call status: Enter stores nothing" in verdict and "stores only" not in verdict
    press(K.Key_Return)
    qtbot.waitUntil(lambda: known.shift_model.rowCount() == 1
                    and known.shift_model.items()[0].state is OutboxState.DONE, timeout=10_000)  # fmt: skip
    assert clean_db.execute("select count(*) from call_attempts").fetchone() == (1,)  # only the creating call


def test_7_a_new_source_says_it_is_added_and_the_call_stored(known: MainWindow, qtbot):
    form = known.form
    type_text(national(CALLER))
    qtbot.waitUntil(lambda: form.banner.lead is not None, timeout=2000)
    press(K.Key_Tab)  # status
    press(K.Key_Tab)  # follow-up
    press(K.Key_Tab)  # remark
    press(K.Key_Tab)  # source
    assert focused() is form.source
    type_text("goo")
    press(K.Key_Tab)
    assert form.banner.verdict.text().startswith("New source: Enter adds GOOGLE / Google Know to ")
    assert "and stores this call (Interested" in form.banner.verdict.text()


def test_8_the_banner_never_moves_the_form_and_shows_what_matters(known: MainWindow, qtbot):
    form = known.form
    name_y = form.name.mapTo(known, form.name.rect().topLeft()).y()
    banner_h = form.banner.height()
    type_text(national(CALLER))
    qtbot.waitUntil(lambda: form.banner.lead is not None, timeout=2000)
    qtbot.wait(1)  # one turn of the event loop for the layout
    assert form.name.mapTo(known, form.name.rect().topLeft()).y() == name_y
    assert form.banner.height() == banner_h
    details = form.banner.details.text()
    due = date.today() - timedelta(days=OVERDUE_DAYS)
    assert due.strftime("%d %b %Y") in details  # the year is there
    assert f"overdue by {OVERDUE_DAYS} days" in details
    assert "Owner: Imran Khan" in details
    for width in (1280, 900):
        known.resize(width, 760)
        qtbot.waitUntil(lambda w=width: known.width() == w, timeout=2000)
        assert form.banner.isVisible()
        assert form.banner.content_height() <= form.banner.height(), f"banner text cut at {width} px"


def test_f2_asks_for_the_known_lead_view(known: MainWindow, qtbot):
    form = known.form
    type_text(national(CALLER))
    qtbot.waitUntil(lambda: form.banner.lead is not None, timeout=2000)
    with qtbot.waitSignal(form.open_lead_requested, timeout=1000) as blocker:
        press(K.Key_F2)
    assert blocker.args[0].phone == CALLER and blocker.args[0].customer_name == "Sravani Reddy"


def test_a_known_callers_own_status_replaces_the_campaigns_kept_one_which_comes_back_after(known: MainWindow, qtbot):
    form = known.form
    type_text(national(phone_for(901)))  # a new caller on a campaign line: Call me Back, kept for the next one
    press(K.Key_Tab)
    type_text("Meena")
    press(K.Key_Tab)
    type_text("goo")
    press(K.Key_Tab)
    type_text("call m")
    press(K.Key_Return)
    qtbot.waitUntil(lambda: known.shift_model.rowCount() == 1, timeout=2000)
    assert form.lead_status.currentText() == "Call me Back" and form.lead_status.property("kept") is True
    type_text(national(CALLER))
    qtbot.waitUntil(lambda: form.banner.lead is not None, timeout=2000)
    assert form.lead_status.currentText() == "Interested"  # the lead's, not the campaign's
    assert not form.lead_status.property("kept") and form.lead_status.property("prefilled") is True
    assert form.kept_note.text().startswith("Source kept from the last lead")  # the status shown is the lead's
    press(K.Key_Return)
    qtbot.waitUntil(lambda: known.shift_model.rowCount() == 2
                    and known.shift_model.items()[-1].state is OutboxState.DONE, timeout=10_000)  # fmt: skip
    assert known.shift_model.items()[-1].payload["lead_status"] == "Interested"
    # The call on the known lead did not change the campaign: its status is back, marked.
    assert form.lead_status.currentText() == "Call me Back" and form.lead_status.property("kept") is True
    type_text(national(CALLER))
    qtbot.waitUntil(lambda: form.banner.lead is not None, timeout=2000)
    press(K.Key_Backspace)  # not that number after all
    assert form.banner.lead is None
    assert form.lead_status.currentText() == "Call me Back" and form.lead_status.property("kept") is True
    assert form.kept_note.text().startswith("Source and call status kept from the last lead")


def test_a_letter_after_a_known_callers_number_stays_out_of_the_name(known: MainWindow, qtbot):
    """A letter at the end of a complete number starts a new caller's name (test_ui_intake_keys); a known caller's
    name is the lead's, read-only, and never typed into."""
    form = known.form
    type_text(national(CALLER))
    qtbot.waitUntil(lambda: form.banner.lead is not None, timeout=2000)
    type_text("z")
    assert form.name.text() == "Sravani Reddy" and form.name.isReadOnly()
    assert focused() is form.phone
