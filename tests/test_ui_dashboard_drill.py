"""Drill-down and reassign from the team lead's tab, driven as a person drives it (pytest-qt, offscreen), over the
real reference server and real SQLite cache files: the overdue tile opens a list (the My leads list) whose count is
the tile's, and Enter on it opens the lead view; the Calls tile lists the leads called; five of a CRE's leads go to
another CRE and, after a sync, the caches say so; "all overdue of a CRE" in one go; export of the list reads back."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel, QPushButton
from serverproc import Api, ServerProcess, new_lead, phone_for

from crm_desktop.core.api import ApiClient
from crm_desktop.core.drill import DrillFilter, drill_count, open_cache_readonly
from crm_desktop.core.importer import read_sheet
from crm_desktop.core.store import Store
from crm_desktop.core.sync import SyncEngine
from crm_desktop.ui.dashboard import DashboardTab, desk_today, summary_fetcher
from crm_desktop.ui.dashboard_models import ROW_ROLE, CreTableModel
from crm_desktop.ui.reassign import LeadListDialog
from crm_desktop.ui.workers import reader_pool
from crm_desktop.ui.worklist import COL_PHONE
from crm_desktop.ui.worklist import ROW_ROLE as LEAD_ROLE

LOAD = 20_000
ASHA, IMRAN = "Asha Reddy", "Imran Khan"


def client_for(server: ServerProcess, email: str) -> ApiClient:
    client = ApiClient(server.url, server.anon_key)
    client.login(email, "demo1234")
    return client


@pytest.fixture
def lead_client(server: ServerProcess, api: Api) -> Iterator[ApiClient]:
    client = client_for(server, "lead@demo.local")
    yield client
    reader_pool().waitForDone(30_000)
    client.close()


def sync(client: ApiClient, path: Path) -> None:
    """One full pull of the feed into the cache file, as the desk's sync thread does it."""
    store = Store(path)
    try:
        SyncEngine(client, path).pull(store)
    finally:
        store.close()


def make_leads(api: Api, email: str, first: int, count: int, *, days_ago: int, **extra: Any) -> None:
    token = api.token(email)
    follow_up = (desk_today() - timedelta(days=days_ago)).isoformat()
    for n in range(first, first + count):
        lead = new_lead(phone_for(n), **{"follow_up_date": follow_up, **extra})
        r = api.rpc("create_lead", token, lead=lead)
        assert r.status_code == 200, r.text


@pytest.fixture
def desk(api: Api) -> None:
    """cre1 (Asha): 6 overdue, 2 due today, 1 later; cre2 (Imran, ATTAPUR): 3 overdue, 1 Won."""
    make_leads(api, "cre1@demo.local", 1, 6, days_ago=3)
    make_leads(api, "cre1@demo.local", 10, 2, days_ago=0)
    make_leads(api, "cre1@demo.local", 20, 1, days_ago=-4)
    make_leads(api, "cre2@demo.local", 30, 3, days_ago=1, branch="ATTAPUR")
    make_leads(api, "cre2@demo.local", 40, 1, days_ago=-1, branch="ATTAPUR", final_status="Won", follow_up_date=None)


def open_tab(qtbot: Any, client: ApiClient, opened: list[LeadListDialog], cache: Path, cres: list[Any]) -> DashboardTab:
    """The tab wired as the main window wires it: a drill-down opens the list dialog over this desk's cache."""
    tab = DashboardTab(summary_fetcher(client), ["SOMAJIGUDA", "ATTAPUR"], refresh_interval_s=0)
    qtbot.addWidget(tab)

    def show_list(f: DrillFilter) -> None:
        dialog = LeadListDialog(f, cache, client.rpc, cres, parent=tab)
        opened.append(dialog)
        dialog.show()

    tab.drill_down_requested.connect(show_list)
    tab.resize(1280, 640)
    with qtbot.waitSignal(tab.loaded, timeout=LOAD):
        tab.show()
    return tab


def wait_list(qtbot: Any, opened: list[LeadListDialog], n: int) -> LeadListDialog:
    qtbot.waitUntil(lambda: len(opened) == n, timeout=LOAD)
    dialog = opened[-1]
    qtbot.addWidget(dialog)
    qtbot.waitUntil(dialog.model.counted, timeout=LOAD)
    return dialog


def drill_from_tile(window: Any, qtbot: Any, tile_key: str) -> LeadListDialog:
    """The team lead's dashboard, fresh: Enter on a tile (the key to the focused tile), and its list once counted."""
    dashboard = window.dashboard
    with qtbot.waitSignal(dashboard.loaded, timeout=LOAD):
        dashboard.refresh()
    tile = dashboard.tiles[tile_key]
    tile.setFocus()
    QTest.keyClick(tile, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(window.findChildren(LeadListDialog)), timeout=LOAD)
    dialog = window.findChildren(LeadListDialog)[0]
    qtbot.waitUntil(dialog.model.counted, timeout=LOAD)
    return dialog


def cre_row(tab: DashboardTab, name: str) -> dict[str, Any]:
    return next(r for r in tab.cre_model.rows() if r["cre_name"] == name)


def choose_cre(dialog: LeadListDialog, name: str) -> None:
    combo = dialog.cre_combo
    combo.setCurrentIndex(next(i for i in range(combo.count()) if name in combo.itemText(i)))


def owners(path: Path, phones: list[str]) -> dict[str, str]:
    conn = open_cache_readonly(path)
    try:
        rows = conn.execute(
            "SELECT phone, cre_name FROM lead_cache WHERE phone IN (SELECT value FROM json_each(:p))",
            {"p": json.dumps(phones)},
        ).fetchall()
    finally:
        conn.close()
    return dict(rows)


def test_overdue_tile_opens_the_list_and_the_counts_agree(qtbot, qtmodeltester, server, lead_client, desk, tmp_path):
    cache = tmp_path / "lead.sqlite3"
    sync(lead_client, cache)
    opened: list[LeadListDialog] = []
    tab = open_tab(qtbot, lead_client, opened, cache, [])

    overdue = tab.tiles["overdue"]
    assert overdue.value_text() == "9"  # 6 of Asha's and 3 of Imran's; "Today" range, the server's rule
    qtbot.mouseClick(overdue, Qt.MouseButton.LeftButton)
    dialog = wait_list(qtbot, opened, 1)
    assert dialog.model.total() == 9 == int(overdue.value_text())
    assert dialog.model.rowCount() == 9 and dialog.count_label.text() == "9 leads"
    assert dialog.windowTitle() == "Overdue follow-ups"
    follow_ups = [dialog.model.data(dialog.model.index(r, 0), LEAD_ROLE).follow_up_date for r in range(9)]
    assert follow_ups == sorted(follow_ups) and follow_ups[0] < follow_ups[-1]  # oldest promise first
    qtmodeltester.check(dialog.model)

    # By keyboard too, and with a branch chosen: the tile and the list still agree.
    with qtbot.waitSignal(tab.loaded, timeout=LOAD):
        tab.branch_combo.setCurrentIndex(tab.branch_combo.findData("ATTAPUR"))
    tab.tiles["due_today"].setFocus()
    QTest.keyClick(tab.tiles["overdue"], Qt.Key.Key_Return)
    dialog = wait_list(qtbot, opened, 2)
    assert dialog.model.total() == int(tab.tiles["overdue"].value_text()) == 3

    # Due today, and a CRE row opened on its Overdue column.
    with qtbot.waitSignal(tab.loaded, timeout=LOAD):
        tab.branch_combo.setCurrentIndex(0)
    qtbot.mouseClick(tab.tiles["due_today"], Qt.MouseButton.LeftButton)
    assert wait_list(qtbot, opened, 3).model.total() == int(tab.tiles["due_today"].value_text()) == 2
    view, proxy = tab.cre_view, tab.cre_proxy
    row = next(r for r in range(proxy.rowCount()) if proxy.index(r, 0).data() == ASHA)
    index = proxy.index(row, CreTableModel.OVERDUE)
    view.setCurrentIndex(index)
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_Return)
    dialog = wait_list(qtbot, opened, 4)
    assert dialog.model.total() == proxy.data(index, ROW_ROLE)["overdue"] == 6
    assert dialog.windowTitle() == f"Overdue follow-ups · {ASHA}"


def test_reassign_five_leads_from_cre1_to_cre2_follows_after_a_sync(qtbot, server, lead_client, desk, tmp_path):
    cache = tmp_path / "lead.sqlite3"
    sync(lead_client, cache)
    cres = lead_client.rpc("catalog", {})["cres"]
    opened: list[LeadListDialog] = []
    tab = open_tab(qtbot, lead_client, opened, cache, cres)
    f = tab.drill_filter("cre_overdue", cre_row(tab, ASHA))
    assert f is not None
    tab.drill_down_requested.emit(f)
    dialog = wait_list(qtbot, opened, 1)
    assert dialog.model.total() == 6
    moved = [dialog.model.data(dialog.model.index(r, COL_PHONE)) for r in range(5)]

    # Five rows by keyboard: the first, then Shift+Down four times.
    dialog.view.setFocus()
    QTest.keyClick(dialog.view, Qt.Key.Key_Home)
    for _ in range(4):
        QTest.keyClick(dialog.view, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    assert len(dialog.selected_lead_ids()) == 5
    dialog.cre_combo.setCurrentIndex(
        next(i for i in range(dialog.cre_combo.count()) if IMRAN in dialog.cre_combo.itemText(i))
    )
    qtbot.mouseClick(dialog.assign_selected_button, Qt.MouseButton.LeftButton)
    assert dialog.confirm_frame.isVisible()
    assert dialog.confirm_label.text() == f"Assign 5 leads to {IMRAN} (cre2@demo.local)?"
    with qtbot.waitSignal(dialog.assigned, timeout=LOAD) as answer:
        QTest.keyClick(dialog.confirm_button, Qt.Key.Key_Return)
    assert answer.args[0] == {"assigned": 5, "unchanged": 0, "missing": 0}
    assert "5 assigned to Imran Khan" in dialog.message_label.text()

    # After a sync, each CRE's cache has the five as Imran's, not Asha's; the team lead's list follows too.
    phones = [phone_for(n) for n in range(1, 7)]
    for email in ("cre1@demo.local", "cre2@demo.local"):
        client = client_for(server, email)
        path = tmp_path / f"{email}.sqlite3"
        try:
            sync(client, path)
        finally:
            client.close()
        seen = owners(path, phones)
        assert sorted(seen.values()) == sorted([IMRAN] * 5 + [ASHA]), email
        by_display = {p: seen[p] for p in phones}
        assert sum(1 for owner in by_display.values() if owner == ASHA) == 1
    sync(lead_client, cache)
    with qtbot.waitSignal(dialog.loaded, timeout=LOAD) as reloaded:
        dialog.reload()
    assert reloaded.args[0] == 1
    assert moved  # the phones shown were the ones moved (display form)


@pytest.mark.expected_log_warnings  # the refused reassignment is logged
def test_all_overdue_of_a_cre_in_one_go_and_a_refused_one_changes_nothing(qtbot, server, lead_client, desk, tmp_path):
    cache = tmp_path / "lead.sqlite3"
    sync(lead_client, cache)
    cres = lead_client.rpc("catalog", {})["cres"]
    opened: list[LeadListDialog] = []
    tab = open_tab(qtbot, lead_client, opened, cache, cres)
    tab.drill_down_requested.emit(
        tab.drill_filter("cre_overdue", next(r for r in tab.cre_model.rows() if r["cre_name"] == IMRAN))
    )
    dialog = wait_list(qtbot, opened, 1)
    assert dialog.model.total() == 3
    dialog.cre_combo.setCurrentIndex(
        next(i for i in range(dialog.cre_combo.count()) if ASHA in dialog.cre_combo.itemText(i))
    )

    # Esc backs out of the question; nothing is sent.
    qtbot.mouseClick(dialog.assign_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.confirm_frame.isVisible, timeout=LOAD)  # every id of the list is read first
    assert dialog.confirm_label.text() == f"Assign 3 leads to {ASHA} (cre1@demo.local)?"
    QTest.keyClick(dialog.confirm_button, Qt.Key.Key_Escape)
    assert not dialog.confirm_frame.isVisible()

    # A CRE who has left in the meantime: the server refuses, the dialog says so, nothing moved.
    dialog.cre_combo.setItemData(dialog.cre_combo.currentIndex(), {"email": "gone@demo.local", "name": "Gone"})
    qtbot.mouseClick(dialog.assign_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.confirm_frame.isVisible, timeout=LOAD)  # every id of the list is read first
    with qtbot.waitSignal(dialog.failed, timeout=LOAD) as failed:
        qtbot.mouseClick(dialog.confirm_button, Qt.MouseButton.LeftButton)
    assert "Nothing was changed" in failed.args[0] and "gone@demo.local" in failed.args[0]

    dialog.cre_combo.setItemData(dialog.cre_combo.currentIndex(), next(c for c in cres if c["name"] == ASHA))
    qtbot.mouseClick(dialog.assign_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.confirm_frame.isVisible, timeout=LOAD)  # every id of the list is read first
    with qtbot.waitSignal(dialog.assigned, timeout=LOAD) as answer:
        qtbot.mouseClick(dialog.confirm_button, Qt.MouseButton.LeftButton)
    assert answer.args[0]["assigned"] == 3
    sync(lead_client, cache)
    conn = open_cache_readonly(cache)
    try:
        assert drill_count(conn, DrillFilter(cre_name=IMRAN, follow_up="overdue")) == 0
        assert drill_count(conn, DrillFilter(cre_name=ASHA, follow_up="overdue")) == 9
    finally:
        conn.close()


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_of_a_drill_down_list_reads_back(qtbot, server, lead_client, desk, tmp_path, suffix):
    cache = tmp_path / "lead.sqlite3"
    sync(lead_client, cache)
    dialog = LeadListDialog(DrillFilter(title="All of Asha", cre_name=ASHA), cache, None)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.loaded, timeout=LOAD):
        dialog.show()
    target = tmp_path / f"asha{suffix}"
    dialog.export_to(target)
    qtbot.waitUntil(lambda: "saved to" in dialog.message_label.text(), timeout=LOAD)
    sheet = read_sheet(target)
    assert sheet.headers[:3] == ("UID", "Customer", "Mobile")
    assert len(sheet.rows) == 9 == dialog.model.total()
    shown = {dialog.model.data(dialog.model.index(r, COL_PHONE)) for r in range(dialog.model.rowCount())}
    assert {cells[2] for _n, cells in sheet.rows} == shown  # "+91 99000 00001" stays text, not 9.19E+11
    assert not dialog.assign_all_button.isVisible()  # no client: no reassign


def test_export_of_a_dashboard_table_reads_back(qtbot, lead_client, desk, tmp_path):
    from crm_desktop.core.export import write_table
    from crm_desktop.ui.export import model_table

    tab = DashboardTab(summary_fetcher(lead_client), [], refresh_interval_s=0)
    qtbot.addWidget(tab)
    with qtbot.waitSignal(tab.loaded, timeout=LOAD):
        tab.show()
    headers, rows = model_table(tab.cre_proxy)
    for suffix in (".csv", ".xlsx"):
        path = tmp_path / f"cre{suffix}"
        assert write_table(path, headers, rows) == len(rows) == 2
        sheet = read_sheet(path)
        assert sheet.headers == tuple(headers)
        assert [list(cells) for _n, cells in sheet.rows] == [[str(v) for v in row] for row in rows]
    assert headers[:3] == ["CRE", "Calls", "New leads"]


def dashboard_tab_index(window: Any) -> int:
    """The Dashboard tab's index (its page is the dashboard inside a scroll area, so look it up by title)."""
    return next(i for i in range(window.tabs.count()) if window.tabs.tabText(i).replace("&", "") == "Dashboard")


def test_the_team_leads_window_fits_1280_and_a_tile_opens_its_list(qtbot, server, api, desk, tmp_path):
    """The app as wired: the main window (desk tab and dashboard tab) is at most 1280 px wide at its minimum, and
    the overdue tile opens the list of this desk's cache, with the tile's count."""
    from test_ui_desk import close_desk, open_desk

    window = open_desk(server, tmp_path, qtbot, "lead@demo.local")
    try:
        assert window.minimumSizeHint().width() <= 1280 and window.minimumSize().width() <= 1280
        window.resize(1280, 720)
        dashboard = window.dashboard
        assert window.tabs.tabText(window.tabs.currentIndex()) == "Dashboard"  # a team lead opens on it (issue 9)
        with qtbot.waitSignal(dashboard.loaded, timeout=LOAD):
            dashboard.refresh()
        qtbot.waitUntil(lambda: window.minimumSizeHint().width() <= 1280)
        qtbot.mouseClick(dashboard.tiles["overdue"], Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(window.findChildren(LeadListDialog)), timeout=LOAD)
        dialog = window.findChildren(LeadListDialog)[0]
        qtbot.waitUntil(dialog.model.counted, timeout=LOAD)
        assert dialog.model.total() == int(dashboard.tiles["overdue"].value_text()) == 9
        assert dialog.cre_combo.count() == 3  # the catalogue's active CREs
        dialog.close()
    finally:
        close_desk(window)


def test_drill_query_over_the_cache_file(tmp_path):
    """The core query alone (no Qt): day bounds on the desk's calendar whatever offset the feed wrote, any source of
    a lead, status and final status, owner by name where the cache has no owner id, and rows in list order."""
    from datetime import date

    from crm_desktop.core.drill import drill_lead_ids, drill_notes, drill_page
    from crm_desktop.core.store import FEED_COLUMNS

    def row(n: int, created: str, **kw: Any) -> list[Any]:
        values = {
            "change_id": n, "lead_id": 100 + n, "phone": phone_for(n), "uid": f"GK-{n:04d}", "customer_name": f"L{n}",
            "sources": [{"source": "GOOGLE", "sub_source": "Google Know", "at": created}], "lead_status": "RNR",
            "final_status": "Pending", "cre_name": ASHA, "ps_name": None, "branch": "SOMAJIGUDA",
            "created_at": created, "follow_up_date": None, **kw,
        }  # fmt: skip
        return [values.get(c) for c in columns]

    columns = (*FEED_COLUMNS, "cre_id", "last_call_at")  # lead-life columns, as the feed (005) sends them
    meta = [{"source": "GOOGLE", "sub_source": "Google Know", "at": "x"}, {"source": "META", "sub_source": "Meta Know"}]
    IST_10AM, UTC_7PM = "2026-11-30T10:00:00+05:30", "2026-11-30T19:00:00+00:00"  # two fixed instants
    rows = [
        # 23:59:59.5 on 29 Nov in Hyderabad (julianday: ms); last call 23:59 on 30 Nov there
        row(1, "2026-11-29T18:29:59.5+00:00", last_call_at="2026-11-30T18:29:00+00:00"),
        row(2, "2026-11-29T18:30:00+00:00", final_status="Won"),  # midnight: 30 Nov; never called
        # 30 Nov, desk offset; called on 30 Nov (desk offset too)
        row(3, "2026-11-30T23:59:00+05:30", sources=meta, cre_name=IMRAN, cre_id="imran-id", last_call_at=IST_10AM),
        # 1 Dec; called at 00:30 on 1 Dec in Hyderabad
        row(
            4, "2026-12-01T00:10:00+05:30", lead_status="Interested", follow_up_date="2026-11-28", last_call_at=UTC_7PM
        ),
        row(5, "2026-11-20T10:00:00+00:00", follow_up_date="2026-12-01", branch="ATTAPUR"),
    ]
    store = Store(tmp_path / "c.sqlite3")
    store.apply_changes(columns, rows, 5)
    store.close()
    conn = open_cache_readonly(tmp_path / "c.sqlite3")
    today = date(2026, 12, 1)

    def leads(**kw: Any) -> list[int]:
        return drill_lead_ids(conn, DrillFilter(today=today, **kw))

    try:
        assert leads(date_from=date(2026, 11, 30), date_to=date(2026, 11, 30)) == [103, 102]  # newest first
        assert leads(date_from=date(2026, 11, 29), date_to=date(2026, 11, 29)) == [101]
        assert leads(source="META") == [103] and leads(sub_source="Google Know") == [104, 103, 102, 101, 105]
        assert leads(status="Interested") == [104] and leads(final_status="Won") == [102]
        assert leads(cre_name=IMRAN) == [103] and leads(cre_id="imran-id", cre_name=IMRAN) == [103]
        assert leads(cre_id="someone-else", cre_name=IMRAN) == []  # the cache has owner ids: the id decides
        assert leads(follow_up="overdue") == [104] and leads(follow_up="due_today") == [105]
        assert leads(follow_up="due_today", branch="SOMAJIGUDA") == []
        assert drill_count(conn, DrillFilter(today=today)) == 5
        # The calls lists: by the last call's day on the desk's calendar, the latest call first.
        assert leads(called_from=date(2026, 11, 30), called_to=date(2026, 11, 30)) == [101, 103]
        assert leads(called_from=date(2026, 12, 1), called_to=date(2026, 12, 1)) == [104]
        assert leads(called_from=date(2026, 11, 30), called_to=date(2026, 12, 1), cre_name=IMRAN) == [103]
        past = DrillFilter(called_from=date(2026, 11, 30), called_to=date(2026, 11, 30), cre_id="imran-id")
        notes = " ".join(drill_notes(past, today))
        assert "dashboard counts every call" in notes and "called again after 30 Nov are not listed" in notes
        assert "owner now" in notes
        assert drill_notes(DrillFilter(follow_up="overdue")) == []  # a follow-up list is what its tile counts
        three_days = DrillFilter(today=today, date_from=date(2026, 11, 29), date_to=date(2026, 12, 1))
        assert drill_count(conn, three_days) == 4
        assert [r.lead_id for r in drill_page(conn, three_days, 0, 3)] == [104, 103, 102]
        assert [r.lead_id for r in drill_page(conn, three_days, 3)] == [101]  # the next page
        assert drill_page(conn, three_days, 4) == []
        with pytest.raises(sqlite3_error()):
            conn.execute("DELETE FROM lead_cache")  # the drill-down connection cannot change the cache
    finally:
        conn.close()


def sqlite3_error() -> type[Exception]:
    import sqlite3

    return sqlite3.OperationalError


def test_a_status_bar_and_a_source_row_open_their_leads(qtbot, server, lead_client, desk, tmp_path):
    cache = tmp_path / "lead.sqlite3"
    sync(lead_client, cache)
    opened: list[LeadListDialog] = []
    tab = open_tab(qtbot, lead_client, opened, cache, [])
    status = tab.status_chart
    assert status.items() == [("Interested", 13)]
    with qtbot.waitSignal(tab.drill_down_requested, timeout=LOAD) as asked:
        qtbot.mouseClick(status, Qt.MouseButton.LeftButton, pos=status.row_rects()[0].center())
    f: DrillFilter = asked.args[0]
    assert (f.status, f.date_from, f.date_to) == ("Interested", desk_today(), desk_today())
    assert wait_list(qtbot, opened, 1).model.total() == 13

    tab.table_tabs.setCurrentWidget(tab.source_view)
    view = tab.source_view
    view.setFocus()
    view.setCurrentIndex(tab.source_proxy.index(0, 0))
    with qtbot.waitSignal(tab.drill_down_requested, timeout=LOAD) as asked:
        QTest.keyClick(view, Qt.Key.Key_Return)
    f = asked.args[0]
    assert (f.source, f.sub_source) == ("GOOGLE", "Google Know")
    row = tab.source_proxy.data(tab.source_proxy.index(0, 0), ROW_ROLE)
    assert wait_list(qtbot, opened, 2).model.total() == row["leads"] == 13

    # The "New leads" and "Won / Lost" tiles too: the list's count is the tile's.
    qtbot.mouseClick(tab.tiles["leads"], Qt.MouseButton.LeftButton)
    assert wait_list(qtbot, opened, 3).model.total() == int(tab.tiles["leads"].value_text()) == 13
    qtbot.mouseClick(tab.tiles["won_lost"], Qt.MouseButton.LeftButton)
    assert wait_list(qtbot, opened, 4).model.total() == int(tab.tiles["won_lost"].value_text().split(" / ")[0]) == 1


def test_enter_on_a_drill_down_list_opens_the_lead_view(qtbot, server, api, desk, tmp_path):
    """The app as wired: the overdue tile (Enter) opens the My leads list of its leads; Down and Enter, keys sent to
    the focused widget, open the second lead in the lead view with its history from the server and the call form
    ready; Esc there comes back to the list (the list stays open); a double-click opens a lead too."""
    from test_ui_desk import close_desk, open_desk

    window = open_desk(server, tmp_path, qtbot, "lead@demo.local")
    try:
        dialog = drill_from_tile(window, qtbot, "overdue")
        assert dialog.model.total() == 9 and dialog.lead_view is not None
        hint = dialog.minimumSizeHint()  # list, lead view and bars fit a 1280x720 laptop under a title bar and taskbar
        assert hint.width() <= 1280 and hint.height() <= 660, hint
        dialog.activateWindow()
        qtbot.waitUntil(lambda: QApplication.focusWidget() is dialog.view, timeout=LOAD)

        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Down)
        second = dialog.model.lead_at(1)
        assert second is not None and dialog.current_lead() == second
        view = dialog.lead_view
        with qtbot.waitSignal(view.history_shown, timeout=LOAD, check_params_cb=lambda from_server: from_server):
            QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
        assert view.lead is not None and view.lead.phone == second.phone
        assert second.uid in view.title.text() and view.form.isEnabled()
        qtbot.waitUntil(lambda: view.form.isAncestorOf(QApplication.focusWidget()), timeout=LOAD)  # call form ready
        with qtbot.waitSignal(dialog.loaded, timeout=LOAD):
            dialog.reload()  # what each sync page does: the list is read again ...
        assert view.form.isAncestorOf(QApplication.focusWidget())  # ... and the team lead's typing stays where it was
        assert dialog.current_lead() == second  # on the same lead

        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Escape)
        assert dialog.isVisible() and QApplication.focusWidget() is dialog.view

        first = dialog.model.lead_at(0)
        assert first is not None
        rect = dialog.view.visualRect(dialog.model.index(0, 0))
        # A click then a double-click, as a hand does it (an item view opens on a double-click of the row it pressed).
        qtbot.mouseClick(dialog.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        with qtbot.waitSignal(dialog.lead_opened, timeout=LOAD) as opened:
            qtbot.mouseDClick(dialog.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        assert opened.args[0].phone == first.phone and view.lead is not None and view.lead.phone == first.phone
        dialog.close()
    finally:
        close_desk(window)


def test_the_calls_tile_lists_the_leads_called(qtbot, server, api, lead_client, desk, tmp_path):
    """The "Calls made" tile opens the leads called in the range (from the cache: each lead's last call), per CRE
    from the CRE row's Calls column; the list says what it cannot show (a lead called twice is one row)."""
    cache = tmp_path / "lead.sqlite3"
    sync(lead_client, cache)
    conn = open_cache_readonly(cache)
    try:
        lead_id = conn.execute("SELECT lead_id FROM lead_cache WHERE phone = ?", (phone_for(1),)).fetchone()[0]
    finally:
        conn.close()
    call = {
        "client_ref": str(uuid.uuid4()), "lead_id": lead_id, "called_at": datetime.now(UTC).isoformat(),
        "lead_status": "Interested", "final_status": "Pending",
        "follow_up_at": (desk_today() + timedelta(days=3)).isoformat(),
    }  # fmt: skip
    r = api.rpc("log_call", api.token("cre1@demo.local"), call=call)  # a second call on one of Asha's leads
    assert r.status_code == 200, r.text
    sync(lead_client, cache)
    opened: list[LeadListDialog] = []
    tab = open_tab(qtbot, lead_client, opened, cache, [])

    calls = tab.tiles["calls"]
    assert calls.drillable and calls.value_text() == "14"  # 13 first calls (each lead made with a status) + 1
    calls.setFocus()
    QTest.keyClick(calls, Qt.Key.Key_Return)
    dialog = wait_list(qtbot, opened, 1)
    assert dialog.model.total() == 13 == dialog.model.rowCount()  # the leads called today, each once
    assert dialog.windowTitle().startswith("Leads called, ")
    assert dialog.notes_label.isVisibleTo(dialog) and "dashboard counts every call" in dialog.notes_label.text()
    assert dialog.model.lead_at(0).phone == phone_for(1)  # the latest call first

    view, proxy = tab.cre_view, tab.cre_proxy
    row = next(r for r in range(proxy.rowCount()) if proxy.index(r, 0).data() == ASHA)
    index = proxy.index(row, CreTableModel.CALLS)
    assert proxy.data(index, ROW_ROLE)["calls"] == 10
    view.setCurrentIndex(index)
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_Return)
    dialog = wait_list(qtbot, opened, 2)
    assert dialog.model.total() == 9  # Asha's nine leads, one of them called twice
    assert {dialog.model.lead_at(r).cre_name for r in range(9)} == {ASHA}
    assert dialog.windowTitle().startswith(f"Leads called · {ASHA}") and "owner now" in dialog.notes_label.text()


def _mnemonic(text: str) -> str:
    at = text.replace("&&", "").index("&")
    return text.replace("&&", "")[at + 1].upper()


def test_reassign_by_keys_beside_the_lead_view(qtbot, server, api, db, desk, tmp_path):
    """The app as wired (the lead view beside the list): the reassign bar's Alt keys are its own. "Assign &selected"
    once shared Alt+S with the call form's "&Status": Alt+S went to Status, and the team lead's Enter for the
    confirmation logged a call on the open lead instead of reassigning. Keys go to the focused widget."""
    from test_ui_desk import close_desk, open_desk

    window = open_desk(server, tmp_path, qtbot, "lead@demo.local")
    try:
        dialog = drill_from_tile(window, qtbot, "overdue")
        dialog.activateWindow()
        qtbot.waitUntil(lambda: QApplication.focusWidget() is dialog.view, timeout=LOAD)
        view = dialog.lead_view
        with qtbot.waitSignal(view.history_shown, timeout=LOAD, check_params_cb=lambda from_server: from_server):
            QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)  # a lead open beside the list
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Escape)
        assert QApplication.focusWidget() is dialog.view
        calls_before = db.execute("select count(*) from call_attempts").fetchone()[0]

        alt = Qt.KeyboardModifier.AltModifier
        labels = [w.text() for w in dialog.findChildren(QLabel) + dialog.findChildren(QPushButton) if w.isVisible()]
        letters = [_mnemonic(t) for t in labels if "&" in t.replace("&&", "")]
        assert len(letters) == len(set(letters)), sorted(letters)  # no Alt key means two things in this window

        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
        assert len(dialog.selected_lead_ids()) == 2
        to = next(w for w in dialog.findChildren(QLabel) if w.buddy() is dialog.cre_combo)  # Alt+letter: the CRE
        QTest.keyClick(QApplication.focusWidget(), getattr(Qt.Key, f"Key_{_mnemonic(to.text())}"), alt)
        assert QApplication.focusWidget() is dialog.cre_combo
        QTest.keyClicks(QApplication.focusWidget(), "Imran")
        assert IMRAN in dialog.cre_combo.currentText()
        letter = _mnemonic(dialog.assign_selected_button.text())
        QTest.keyClick(QApplication.focusWidget(), getattr(Qt.Key, f"Key_{letter}"), alt)
        qtbot.waitUntil(dialog.confirm_frame.isVisible, timeout=2000)  # a button's Alt key clicks it (animated)
        assert QApplication.focusWidget() is dialog.confirm_button
        assert dialog.confirm_label.text() == f"Assign 2 leads to {IMRAN} (cre2@demo.local)?"
        with qtbot.waitSignal(dialog.assigned, timeout=LOAD) as answer:
            QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
        assert answer.args[0] == {"assigned": 2, "unchanged": 0, "missing": 0}
        qtbot.wait(500)  # a call logged by mistake would be on its way to the server by now
        assert db.execute("select count(*) from call_attempts").fetchone()[0] == calls_before
        assert QApplication.focusWidget() is dialog.view  # the list again, for the next selection or Esc
        dialog.close()
    finally:
        close_desk(window)


@pytest.mark.usefixtures("styled")
def test_the_drill_list_shows_its_follow_up_column_beside_the_lead_view(qtbot, server, api, desk, tmp_path):
    """The app as wired, in the app's style sheet: the overdue list opened from the tile shows each lead's follow-up
    ("overdue by N days") without scrolling, at the dialog's own size and on a 1280 px laptop. The splitter once
    split by size hints: the empty lead view took half the dialog and the Follow-up column was out of sight."""
    from test_ui_desk import close_desk, open_desk

    from crm_desktop.ui.worklist import COL_FOLLOW

    window = open_desk(server, tmp_path, qtbot, "lead@demo.local")
    try:
        dialog = drill_from_tile(window, qtbot, "overdue")
        view = dialog.view
        for size in (None, (1280, 660)):
            if size is not None:
                dialog.resize(*size)
            qtbot.waitUntil(lambda: view.viewport().width() > 100)
            QApplication.processEvents()
            right = view.columnViewportPosition(COL_FOLLOW) + view.columnWidth(COL_FOLLOW)
            assert right <= view.viewport().width(), (size, dialog.width(), dialog.splitter.sizes())
            assert dialog.lead_view.width() >= dialog.lead_view.minimumSizeHint().width()
        assert dialog.width() <= 1280
        dialog.close()
    finally:
        close_desk(window)


@pytest.mark.usefixtures("styled")
def test_a_lead_opened_in_the_calls_list_fits_a_laptop_and_its_call_form_is_whole(qtbot, server, api, desk, tmp_path):
    """The app as wired, in the app's style sheet: the Calls-made list (a notes line over it) with a lead opened by
    Enter stays within a 1280x720 laptop's 660 px, and the call form keeps its rows' height (the lead view scrolls).
    The lead's summary once grew the dialog to 741 px and still squeezed the form: its fields were cut."""
    from test_ui_desk import close_desk, open_desk

    window = open_desk(server, tmp_path, qtbot, "lead@demo.local")
    try:
        dialog = drill_from_tile(window, qtbot, "calls")
        dialog.resize(1280, 660)
        dialog.activateWindow()
        qtbot.waitUntil(lambda: QApplication.focusWidget() is dialog.view, timeout=LOAD)
        view = dialog.lead_view
        with qtbot.waitSignal(view.history_shown, timeout=LOAD):
            QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
        QApplication.processEvents()
        assert dialog.minimumSizeHint().height() <= 660 and dialog.height() <= 660, dialog.size()
        form = view.form
        assert form.height() >= form.minimumSizeHint().height(), (form.height(), form.minimumSizeHint())
        assert form.isAncestorOf(QApplication.focusWidget())
        for _ in range(12):  # Tab through the form: each field it reaches is in sight
            QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
            focused = QApplication.focusWidget()
            if not form.isAncestorOf(focused):
                break
            port = dialog.lead_scroll.viewport()
            top = focused.mapTo(port, focused.rect().topLeft()).y()
            bottom = focused.mapTo(port, focused.rect().bottomLeft()).y()
            assert top >= 0 and bottom <= port.height(), (type(focused).__name__, top, bottom, port.height())
        dialog.close()
    finally:
        close_desk(window)


def test_the_dashboard_tab_puts_the_keys_on_its_first_tile(qtbot, server, api, desk, tmp_path):
    """A team lead's window opens on the dashboard, and Ctrl+3 comes back to it, with the keys on the first tile
    (Tab walks the tiles, Enter opens one): they were on the tab bar or the page's scroll area, where Enter did
    nothing and arrows switched tabs or scrolled. Keys go to the focused widget."""
    from test_ui_desk import close_desk, open_desk

    window = open_desk(server, tmp_path, qtbot, "lead@demo.local")
    try:
        dashboard = window.dashboard
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow, timeout=5000)
        first = dashboard.tiles["leads"]
        assert QApplication.focusWidget() is first
        ctrl = Qt.KeyboardModifier.ControlModifier
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_1, ctrl)
        assert QApplication.focusWidget() is window.form.phone
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_3, ctrl)
        assert QApplication.focusWidget() is first
        with qtbot.waitSignal(dashboard.loaded, timeout=LOAD):
            dashboard.refresh()
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: bool(window.findChildren(LeadListDialog)), timeout=LOAD)
        dialog = window.findChildren(LeadListDialog)[0]
        assert dialog.windowTitle().startswith("New leads")
        dialog.close()
    finally:
        close_desk(window)


def test_a_cres_list_offers_another_cre_to_assign_to(qtbot, server, lead_client, desk, tmp_path):
    """Drilled from Asha's row (Asha is first by name), "Assign to" starts on someone else: Enter on the confirmation
    moves the leads instead of answering that they are already hers. From a tile (many owners) it stays as listed."""
    cache = tmp_path / "lead.sqlite3"
    sync(lead_client, cache)
    cres = lead_client.rpc("catalog", {})["cres"]
    assert cres[0]["name"] == ASHA
    opened: list[LeadListDialog] = []
    tab = open_tab(qtbot, lead_client, opened, cache, cres)
    tab.drill_down_requested.emit(tab.drill_filter("cre_overdue", cre_row(tab, ASHA)))
    dialog = wait_list(qtbot, opened, 1)
    assert dialog.model.total() == 6
    assert ASHA not in dialog.cre_combo.currentText()
    tab.drill_down_requested.emit(tab.drill_filter("cre_overdue", cre_row(tab, IMRAN)))
    other = wait_list(qtbot, opened, 2)
    assert ASHA in other.cre_combo.currentText()  # Imran's leads: the first CRE is not their owner
