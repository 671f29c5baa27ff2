"""The team lead's dashboard tab, driven as a person drives it (pytest-qt, offscreen), on the real client core and the
real reference server: the figures just created, filters, a failed refresh, a stale answer, self-refresh."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from PySide6.QtCore import QDate, QPoint, QSortFilterProxyModel, Qt
from PySide6.QtWidgets import QLabel
from serverproc import Api, ServerProcess, new_lead, phone_for

from crm_desktop.core.api import ApiClient, Retry
from crm_desktop.ui.dashboard import DATE_EDIT_SETTLE_MS, DashboardTab, desk_today, summary_fetcher
from crm_desktop.ui.dashboard_models import ROW_ROLE, SORT_ROLE, CreTableModel, SourceTableModel, human_duration
from crm_desktop.ui.workers import reader_pool

BRANCHES = ["SOMAJIGUDA", "ATTAPUR", "KOMPALLY"]
LOAD_TIMEOUT = 20_000

Fetch = Callable[[date, date, str | None], dict[str, Any]]


@pytest.fixture
def lead_client(server: ServerProcess, api: Api) -> Iterator[ApiClient]:
    """The team lead's own client (the app's ApiClient, not the test helper)."""
    client = ApiClient(server.url, server.anon_key)
    client.login("lead@demo.local", "demo1234")
    yield client
    reader_pool().waitForDone(30_000)  # a superseded fetch may still be using it
    client.close()


@pytest.fixture
def desk_leads(api: Api) -> dict[str, Any]:
    """Three new leads and one new source on an existing lead, made by two CREs in two branches:

    cre1 (Asha Reddy, SOMAJIGUDA): phone 1 GOOGLE Interested, follow-up today; phone 2 META RNR, follow-up 2 days ago.
    cre2 (Imran Khan, ATTAPUR): phone 3 OEM/Web Interested, Won; phone 1 again from META -> added_source."""
    cre1, cre2 = api.token("cre1@demo.local"), api.token("cre2@demo.local")
    today = desk_today()
    made = [
        (cre1, new_lead(phone_for(1), follow_up_date=today.isoformat()), "created"),
        (
            cre1,
            new_lead(
                phone_for(2),
                source="META",
                sub_source="Meta Know",
                lead_status="RNR",
                follow_up_date=(today - timedelta(days=2)).isoformat(),
            ),
            "created",
        ),
        (
            cre2,
            new_lead(
                phone_for(3), branch="ATTAPUR", source="OEM", sub_source="Web", final_status="Won", follow_up_date=None
            ),
            "created",
        ),
        # The added source is a later call on phone 1: it sets the lead's state (migration 005), so it keeps today's
        # follow-up.
        (
            cre2,
            new_lead(
                phone_for(1), branch="ATTAPUR", source="META", sub_source="Meta Know", follow_up_date=today.isoformat()
            ),
            "added_source",
        ),
    ]
    for token, lead, outcome in made:
        r = api.rpc("create_lead", token, lead=lead)
        assert r.status_code == 200, r.text
        assert r.json()["outcome"] == outcome
    return {"cre1": cre1, "cre2": cre2}


def open_tab(qtbot: Any, fetch: Fetch, interval_s: int = 600) -> DashboardTab:
    tab = DashboardTab(fetch, BRANCHES, refresh_interval_s=interval_s)
    qtbot.addWidget(tab)
    tab.resize(1400, 900)
    with qtbot.waitSignal(tab.loaded, timeout=LOAD_TIMEOUT):
        tab.show()  # the first showing loads
    return tab


def tile(tab: DashboardTab, name: str) -> str:
    return tab.tiles[name].value_text()


def cre_rows(tab: DashboardTab) -> dict[str, dict[str, Any]]:
    model = tab.cre_model
    rows = [model.data(model.index(r, 0), ROW_ROLE) for r in range(model.rowCount())]
    return {row["cre_name"]: row for row in rows}


def creators(tab: DashboardTab) -> set[str]:
    """The CREs with new leads in the figures (a CRE row may also be there for follow-ups alone)."""
    return {name for name, row in cre_rows(tab).items() if row.get("leads")}


def bars(chart: Any) -> dict[str, float]:
    """Category -> bar length (summed over stacked sets) as the chart shows them."""
    series = chart.series()[0]
    categories = next(a for a in chart.axes() if hasattr(a, "categories")).categories()
    sets = series.barSets()
    return {c: sum(s.at(i) for s in sets) for i, c in enumerate(categories)}


def choose(qtbot: Any, tab: DashboardTab, combo: Any, data: Any) -> dict[str, Any]:
    """Pick an entry in a filter combo as the user would and wait for the figures it asked for."""
    with qtbot.waitSignal(tab.loaded, timeout=LOAD_TIMEOUT) as blocker:
        combo.setCurrentIndex(0 if data is None else combo.findData(data))
    summary: dict[str, Any] = blocker.args[0]
    return summary


def click_header(qtbot: Any, tab: DashboardTab, column: int) -> None:
    header = tab.cre_view.horizontalHeader()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))


# -- the figures ---------------------------------------------------------------------------------------------------


def test_team_lead_sees_the_figures_just_created(qtbot, qtmodeltester, lead_client, desk_leads):
    tab = open_tab(qtbot, summary_fetcher(lead_client))

    assert tile(tab, "leads") == "3"
    assert tile(tab, "duplicate_rate") == "25.0 %"  # 1 added source of 4 calls
    assert tab.tiles["duplicate_rate"].detail_text() == "1 of 4 inquiries"
    assert tile(tab, "due_today") == "1"
    assert tile(tab, "overdue") == "1"  # the server's rule: pending with a follow-up before today, whatever the range
    assert tile(tab, "won_lost") == "1 / 0"
    assert tile(tab, "calls") == "4"  # every create_lead with a status is a call, the added source too
    assert tab.title_label.text().endswith("All branches") and tab.title_label.text().startswith("Today")
    assert tab.status_label.text().startswith("Updated ")
    assert not tab.loading and not tab.busy_bar.isVisible() and not tab.error_label.isVisible()

    rows = cre_rows(tab)
    assert set(rows) == {"Asha Reddy", "Imran Khan"}
    assert (rows["Asha Reddy"]["leads"], rows["Asha Reddy"]["added_sources"]) == (2, 0)
    assert (rows["Imran Khan"]["leads"], rows["Imran Khan"]["added_sources"], rows["Imran Khan"]["won"]) == (1, 1, 1)

    hours = bars(tab.hour_chart)
    assert len(hours) == 24 and sum(hours.values()) == 3
    assert tab.status_chart.items() == [("Interested", 2), ("RNR", 1)]  # biggest first
    assert bars(tab.source_chart) == {"Web": 1, "Google Know": 1, "Meta Know": 2}  # Meta: 1 lead + 1 new source
    assert tab.source_model.rowCount() == 3

    for model in (tab.cre_model, tab.cre_proxy, tab.source_model, tab.source_proxy):
        qtmodeltester.check(model)


def test_per_cre_table_sorts_by_the_clicked_column(qtbot, lead_client, desk_leads):
    tab = open_tab(qtbot, summary_fetcher(lead_client))
    proxy = tab.cre_proxy

    def column(col: int) -> list[Any]:
        return [proxy.data(proxy.index(r, col), SORT_ROLE) for r in range(proxy.rowCount())]

    assert column(CreTableModel.LEADS) == [2, 1]  # opens with the busiest CRE on top
    click_header(qtbot, tab, CreTableModel.NEW_SOURCES)
    first = column(CreTableModel.NEW_SOURCES)
    click_header(qtbot, tab, CreTableModel.NEW_SOURCES)
    second = column(CreTableModel.NEW_SOURCES)
    assert sorted([first, second]) == [[0, 1], [1, 0]]  # one click each way
    assert proxy.data(proxy.index(0, CreTableModel.CRE)) == ("Imran Khan" if second == [1, 0] else "Asha Reddy")


def test_filters_refetch_and_show_the_filtered_figures(qtbot, lead_client, desk_leads):
    tab = open_tab(qtbot, summary_fetcher(lead_client))

    summary = choose(qtbot, tab, tab.branch_combo, "SOMAJIGUDA")
    assert summary["range"]["branch"] == "SOMAJIGUDA"
    # Phone 1's latest call (the added source) moved it to ATTAPUR, so its follow-up today counts there (005).
    assert (tile(tab, "leads"), tile(tab, "duplicate_rate"), tile(tab, "due_today")) == ("2", "0.0 %", "0")
    assert set(cre_rows(tab)) == {"Asha Reddy"}
    assert tab.title_label.text().endswith("SOMAJIGUDA")

    choose(qtbot, tab, tab.branch_combo, "ATTAPUR")
    assert (tile(tab, "leads"), tile(tab, "duplicate_rate"), tile(tab, "won_lost")) == ("1", "50.0 %", "1 / 0")
    assert creators(tab) == {"Imran Khan"}
    assert tile(tab, "due_today") == "1" and cre_rows(tab)["Asha Reddy"]["due_today"] == 1  # her lead, now there
    assert sum(bars(tab.hour_chart).values()) == 1

    choose(qtbot, tab, tab.branch_combo, None)
    summary = choose(qtbot, tab, tab.range_combo, "7d")
    today = desk_today()
    assert summary["range"]["date_from"] == (today - timedelta(days=6)).isoformat()
    assert tile(tab, "leads") == "3"
    assert tile(tab, "overdue") == "1"  # the RNR lead's follow-up two days ago falls inside the week
    assert tab.tiles["overdue"].property("alert") is True
    assert not tab.from_edit.isVisible()  # dates are only for a custom range


def test_custom_range_asks_for_the_chosen_days_and_refuses_a_backwards_one(qtbot, lead_client, desk_leads):
    tab = open_tab(qtbot, summary_fetcher(lead_client))
    today = desk_today()

    choose(qtbot, tab, tab.range_combo, "custom")
    assert tab.from_edit.isVisible() and tab.to_edit.isVisible()
    with qtbot.waitSignal(tab.loaded, timeout=LOAD_TIMEOUT) as blocker:
        tab.from_edit.setDate(QDate(today - timedelta(days=3)))
    assert blocker.args[0]["range"] == {
        "date_from": (today - timedelta(days=3)).isoformat(),
        "date_to": today.isoformat(),
        "branch": None,
    }
    assert tile(tab, "leads") == "3"

    # A start after the end is refused next to the dates, before anything is sent; the figures stay.
    with qtbot.assertNotEmitted(tab.loaded, wait=DATE_EDIT_SETTLE_MS + 400):
        tab.from_edit.setDate(QDate(today + timedelta(days=1)))
    assert tab.range_error_label.isVisible() and "Start after end" in tab.range_error_label.text()
    assert tile(tab, "leads") == "3"

    with qtbot.waitSignal(tab.loaded, timeout=LOAD_TIMEOUT):
        tab.from_edit.setDate(QDate(today))
    assert not tab.range_error_label.isVisible()


# -- trouble -------------------------------------------------------------------------------------------------------


@pytest.mark.expected_log_warnings
def test_failed_refresh_shows_one_error_line_and_keeps_the_last_figures(qtbot, lead_client, desk_leads):
    real = summary_fetcher(lead_client)
    offline = threading.Event()

    def fetch(date_from: date, date_to: date, branch: str | None) -> dict[str, Any]:
        if offline.is_set():
            raise Retry("Cannot reach the server (offline).")
        return real(date_from, date_to, branch)

    tab = open_tab(qtbot, fetch)
    assert tile(tab, "leads") == "3"

    offline.set()
    for _attempt in range(2):
        with qtbot.waitSignal(tab.failed, timeout=LOAD_TIMEOUT) as blocker:
            qtbot.mouseClick(tab.refresh_button, Qt.MouseButton.LeftButton)
        assert "offline" in blocker.args[0]
        assert tab.error_label.isVisible()
        assert tab.error_label.text().count("offline") == 1  # replaced, not stacked
        assert "Showing the figures from" in tab.error_label.text()
        assert len(tab.findChildren(QLabel, "dashboardError")) == 1
        assert tile(tab, "leads") == "3" and set(cre_rows(tab)) == {"Asha Reddy", "Imran Khan"}
        assert not tab.loading and not tab.busy_bar.isVisible()

    # A filter change that cannot be fetched leaves the old figures, still named as what they are.
    with qtbot.waitSignal(tab.failed, timeout=LOAD_TIMEOUT):
        tab.branch_combo.setCurrentIndex(tab.branch_combo.findData("ATTAPUR"))
    assert tile(tab, "leads") == "3" and tab.title_label.text().endswith("All branches")

    offline.clear()
    with qtbot.waitSignal(tab.loaded, timeout=LOAD_TIMEOUT):
        qtbot.mouseClick(tab.refresh_button, Qt.MouseButton.LeftButton)
    assert not tab.error_label.isVisible()
    assert tile(tab, "leads") == "1" and tab.title_label.text().endswith("ATTAPUR")


@pytest.mark.expected_log_warnings
def test_a_bug_in_the_fetch_goes_to_the_error_presenter_and_a_plain_line(qtbot, lead_client, desk_leads):
    real = summary_fetcher(lead_client)
    broken = threading.Event()

    def fetch(date_from: date, date_to: date, branch: str | None) -> dict[str, Any]:
        if broken.is_set():
            raise KeyError("totals")
        return real(date_from, date_to, branch)

    tab = open_tab(qtbot, fetch)
    broken.set()
    with qtbot.captureExceptions() as exceptions, qtbot.waitSignal(tab.failed, timeout=LOAD_TIMEOUT):
        qtbot.mouseClick(tab.refresh_button, Qt.MouseButton.LeftButton)
    assert [type(e[1]) for e in exceptions] == [KeyError]
    assert "KeyError" not in tab.error_label.text() and "in the log" in tab.error_label.text()
    assert tile(tab, "leads") == "3"


def test_an_answer_to_a_superseded_request_is_dropped(qtbot, caplog, lead_client, desk_leads):
    caplog.set_level(logging.DEBUG, logger="crm_desktop.ui.dashboard")
    real = summary_fetcher(lead_client)
    release = threading.Event()
    slow_done = threading.Event()

    def fetch(date_from: date, date_to: date, branch: str | None) -> dict[str, Any]:
        if branch == "SOMAJIGUDA":  # this answer is slow: it arrives after the user moved on
            release.wait(30)
            try:
                return real(date_from, date_to, branch)
            finally:
                slow_done.set()
        return real(date_from, date_to, branch)

    tab = open_tab(qtbot, fetch)
    applied: list[dict[str, Any]] = []
    tab.loaded.connect(applied.append)
    try:
        tab.branch_combo.setCurrentIndex(tab.branch_combo.findData("SOMAJIGUDA"))
        assert tab.loading and tab.busy_bar.isVisible() and tab.status_label.text().startswith("Updating")
        summary = choose(qtbot, tab, tab.branch_combo, "ATTAPUR")  # the GUI kept going while the first one hangs
        assert summary["range"]["branch"] == "ATTAPUR"
    finally:
        release.set()
    qtbot.waitUntil(lambda: "dropped a stale dashboard answer" in caplog.text, timeout=LOAD_TIMEOUT)
    assert slow_done.is_set()
    assert [s["range"]["branch"] for s in applied] == ["ATTAPUR"]
    assert tile(tab, "leads") == "1" and creators(tab) == {"Imran Khan"}
    assert tab.summary is not None and tab.summary["range"]["branch"] == "ATTAPUR"
    assert not tab.loading and tab.status_label.text().startswith("Updated")


def test_refresh_requests_during_a_fetch_cost_one_more_fetch_not_one_each(qtbot, lead_client, desk_leads):
    real = summary_fetcher(lead_client)
    gate = threading.Event()
    gate.set()
    calls: list[str | None] = []

    def fetch(date_from: date, date_to: date, branch: str | None) -> dict[str, Any]:
        calls.append(branch)
        gate.wait(30)
        return real(date_from, date_to, branch)

    tab = open_tab(qtbot, fetch)
    applied: list[dict[str, Any]] = []
    tab.loaded.connect(applied.append)
    calls.clear()
    gate.clear()
    try:
        for _submission in range(5):  # the main window refreshes after each of the user's own leads
            tab.refresh()
        assert tab.loading
    finally:
        gate.set()
    # The running fetch lands, and exactly one more follows it, so leads created meanwhile are counted.
    qtbot.waitUntil(lambda: len(applied) == 2 and not tab.loading, timeout=LOAD_TIMEOUT)
    assert len(calls) == 2


def test_it_refreshes_itself_while_visible_and_catches_up_when_shown(qtbot, lead_client, api, desk_leads):
    tab = open_tab(qtbot, summary_fetcher(lead_client), interval_s=1)
    assert tile(tab, "leads") == "3"
    r = api.rpc("create_lead", desk_leads["cre2"], lead=new_lead(phone_for(4), branch="ATTAPUR"))
    assert r.json()["outcome"] == "created"
    qtbot.waitUntil(lambda: tile(tab, "leads") == "4", timeout=LOAD_TIMEOUT)

    tab.hide()  # on another tab: nobody looks, nothing is fetched
    with qtbot.assertNotEmitted(tab.loaded, wait=1500):
        pass
    with qtbot.waitSignal(tab.loaded, timeout=LOAD_TIMEOUT):
        tab.show()  # the missed refresh happens as soon as it is looked at
    tab.set_refresh_interval(0)
    assert tab.refresh_interval() == 0

    # The desk's own submissions: hidden, they cost nothing until the tab is shown; shown, they refresh at once.
    tab.hide()
    with qtbot.assertNotEmitted(tab.loaded, wait=500):
        tab.figures_changed()
    with qtbot.waitSignal(tab.loaded, timeout=LOAD_TIMEOUT):
        tab.show()
    with qtbot.waitSignal(tab.loaded, timeout=LOAD_TIMEOUT):
        tab.figures_changed()


# -- pieces without the server ---------------------------------------------------------------------------------------


def _fake_summary(branch: str | None = None) -> dict[str, Any]:
    return {
        "range": {"date_from": "2026-01-01", "date_to": "2026-01-01", "branch": branch},
        "totals": {"leads": 0, "added_sources": 0, "exact_dups": 0, "duplicate_rate": 0},
        "per_cre": [],
        "per_source": [],
        "per_status": [],
        "per_hour": [],
        "follow_ups": {"due_today": 0, "overdue": 0},
    }


def test_new_branch_list_keeps_the_chosen_branch_or_falls_back_to_all(qtbot):
    asked: list[str | None] = []

    def fetch(date_from: date, date_to: date, branch: str | None) -> dict[str, Any]:
        asked.append(branch)
        return _fake_summary(branch)

    tab = open_tab(qtbot, fetch)
    choose(qtbot, tab, tab.branch_combo, "ATTAPUR")
    with qtbot.assertNotEmitted(tab.loaded, wait=200):
        tab.set_branches(["ATTAPUR", "MALAKPET"])
    assert tab.branch_combo.currentData() == "ATTAPUR"
    assert [tab.branch_combo.itemText(i) for i in range(tab.branch_combo.count())] == [
        "All branches",
        "ATTAPUR",
        "MALAKPET",
    ]
    with qtbot.waitSignal(tab.loaded, timeout=LOAD_TIMEOUT) as blocker:
        tab.set_branches(["MALAKPET"])  # the chosen branch was closed
    assert blocker.args[0]["range"]["branch"] is None and tab.branch_combo.currentData() is None
    assert asked == [None, "ATTAPUR", None]


def test_a_malformed_answer_shows_dashes_not_a_crash(qtbot, qtmodeltester):
    answer: dict[str, Any] = {
        "totals": {"leads": "12", "duplicate_rate": None, "calls": "NaN"},
        "per_cre": [{"cre_name": None, "leads": "x"}, "not a row", {"leads": 10**7, "first_call_avg_secs": 3900}],
        "per_source": [{"source": "A", "sub_source": "Web"}, {"source": "B", "sub_source": "Web"}],
        "per_status": None,
        "per_hour": [{"hour": 99, "leads": 5}, {"hour": "3", "leads": 2}],
        "follow_ups": [],
    }
    tab = open_tab(qtbot, lambda f, t, b: answer)
    assert tile(tab, "leads") == "12" and tile(tab, "calls") == "0" and tile(tab, "duplicate_rate") == "0.0 %"
    assert sum(bars(tab.hour_chart).values()) == 2
    assert bars(tab.source_chart) == {"Web": 0, "Web (2)": 0}  # a repeated label must not lose its bar
    model = tab.cre_model
    assert model.rowCount() == 2
    assert model.data(model.index(0, CreTableModel.CRE)) == "(unknown CRE)"
    assert model.data(model.index(0, CreTableModel.LEADS)) == "0"
    assert model.data(model.index(1, CreTableModel.LEADS)) == "10,000,000"
    for m in (tab.cre_model, tab.cre_proxy, tab.source_model, tab.source_proxy):
        qtmodeltester.check(m)


def test_cre_model_sorts_numbers_as_numbers(qtmodeltester):
    model = CreTableModel()
    model.set_rows(
        [
            {"cre_name": "b", "leads": 9, "overdue": None},
            {"cre_name": "A", "leads": 10, "overdue": 30},
            {"cre_name": "c", "leads": 100, "overdue": 7200},
        ]
    )
    proxy = QSortFilterProxyModel()
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)

    def names(column: int, order: Qt.SortOrder) -> list[str]:
        proxy.sort(column, order)
        return [proxy.data(proxy.index(r, CreTableModel.CRE)) for r in range(proxy.rowCount())]

    assert names(CreTableModel.LEADS, Qt.SortOrder.DescendingOrder) == ["c", "A", "b"]  # not "9" > "100"
    assert names(CreTableModel.OVERDUE, Qt.SortOrder.AscendingOrder) == ["b", "A", "c"]  # none first
    assert names(CreTableModel.CRE, Qt.SortOrder.AscendingOrder) == ["A", "b", "c"]  # case does not split names
    align = model.data(model.index(0, CreTableModel.LEADS), Qt.ItemDataRole.TextAlignmentRole)
    assert align & Qt.AlignmentFlag.AlignRight
    assert model.data(model.index(5, 0)) is None
    assert model.data(model.index(0, 0), Qt.ItemDataRole.DecorationRole) is None
    assert model.headerData(CreTableModel.EXACT_DUPS, Qt.Orientation.Horizontal) == "Exact dups"
    qtmodeltester.check(model)
    qtmodeltester.check(proxy)
    sources = SourceTableModel()
    sources.set_rows([{"source": "GOOGLE", "sub_source": "Google Know", "leads": 3}])
    assert sources.data(sources.index(0, SourceTableModel.EXACT_DUPS)) == "0"
    qtmodeltester.check(sources)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "—"), ("", "—"), (-5, "—"), (0, "0 s"), (45.4, "45 s"), (180, "3 min"), (3900, "1 h 5 min"), (7200, "2 h")],
)
def test_turnaround_reads_as_a_person_says_it(seconds: Any, text: str) -> None:
    assert human_duration(seconds) == text
