"""The team lead's dashboard tab: tiles, charts and a per-CRE table of one `dashboard_summary` answer.

The server does the counting (aggregates, never raw rows); this tab only asks, on a reader-pool thread, and shows. It
is read across the room, so the figures are large and the layout stays put between refreshes: a refresh replaces
numbers in place, a failure leaves the last good numbers up with one line saying what went wrong, and an answer to a
request that has since been superseded (the filter changed while it ran) is dropped, never shown."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from PySide6.QtCharts import (
    QAbstractAxis,
    QBarCategoryAxis,
    QBarSeries,
    QBarSet,
    QChart,
    QChartView,
    QDateTimeAxis,
    QHorizontalBarSeries,
    QHorizontalStackedBarSeries,
    QLineSeries,
    QValueAxis,
)
from PySide6.QtCore import (
    QDate,
    QDateTime,
    QMargins,
    QModelIndex,
    QPointF,
    QSortFilterProxyModel,
    Qt,
    QTime,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPainter, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from crm_desktop.core.api import ApiClient, ApiError, Retry
from crm_desktop.core.drill import DrillFilter
from crm_desktop.ui.bar_list import BarList
from crm_desktop.ui.dashboard_models import (
    ROW_ROLE,
    SORT_ROLE,
    CreTableModel,
    SourceTableModel,
    as_count,
    as_number,
    format_count,
)
from crm_desktop.ui.workers import reader_pool, run_in

log = logging.getLogger(__name__)

Fetch = Callable[[date, date, str | None], dict[str, Any]]
Query = tuple[date, date, str | None]

# The server counts a lead on the desk's calendar day (`desk_tz()` in the SQL), so "today" here must be that day
# too, not the day of whatever time zone this computer is set to.
DESK_TZ = ZoneInfo("Asia/Kolkata")
MAX_RANGE_DAYS = 366  # the server refuses longer ranges (`range_too_long`); say so before asking
DATE_EDIT_SETTLE_MS = 400  # typing a date changes it per keystroke; ask once the typing has settled
SOURCE_BARS = 6  # bars in the source chart; the rest are named in a line under it (the table has them all)
CHART_LABEL_PT = 8  # axis labels: small enough for a sub-source name beside its bar at 1280 px

RANGES: tuple[tuple[str, str], ...] = (
    ("Today", "today"),
    ("Last 7 days", "7d"),
    ("Last 30 days", "30d"),
    ("Custom…", "custom"),
)
ALL_BRANCHES = "All branches"
NO_STATUS = "(no status)"  # leads created without a call status; not a status the cache can be asked for

# Bar colours: new leads in the desk's blue; duplicates in warm colours so they read as "not new" at a glance.
LEADS_COLOUR = QColor("#2f6fde")
ADDED_COLOUR = QColor("#e8a33d")
EXACT_COLOUR = QColor("#d9534f")
STATUS_COLOUR = QColor("#1f9e89")
CALLS_COLOUR = QColor("#7b4fd6")

_STYLE = """
QFrame#dashboardTile {
    border: 1px solid palette(mid);
    border-radius: 8px;
    background: palette(base);
}
QLabel#tileCaption { font-size: 10pt; font-weight: 600; color: palette(placeholder-text); }
QLabel#tileValue { font-size: 26pt; font-weight: 700; }
QFrame#dashboardTile[drillable="true"]:hover { border-color: palette(highlight); }
QFrame#dashboardTile:focus { border: 2px solid palette(highlight); }
QLabel#chartRest { font-size: 9pt; color: palette(placeholder-text); }
QFrame#dashboardTile[alert="true"] QLabel#tileValue { color: #c62828; }
QLabel#tileDetail { font-size: 9pt; color: palette(placeholder-text); }
QLabel#dashboardTitle { font-size: 16pt; font-weight: 600; }
QLabel#dashboardError {
    background: #fff4e5;
    color: #663c00;
    border: 1px solid #f0c36d;
    border-radius: 4px;
    padding: 6px 10px;
}
QLabel#rangeError { color: #c62828; }
"""


def desk_today() -> date:
    return datetime.now(DESK_TZ).date()


def summary_fetcher(client: ApiClient) -> Fetch:
    """The fetch the app gives the tab: `dashboard_summary` over the signed-in client (blocking; runs in a worker)."""

    def fetch(date_from: date, date_to: date, branch: str | None) -> dict[str, Any]:
        params = {"date_from": date_from.isoformat(), "date_to": date_to.isoformat(), "branch": branch}
        result: dict[str, Any] = client.rpc("dashboard_summary", params)
        return result

    return fetch


def _fetch_checked(fetch: Fetch, query: Query) -> dict[str, Any]:
    """Runs on the pool thread: the fetch, and a shape check so the GUI thread only ever gets a dict."""
    result = fetch(*query)
    if not isinstance(result, dict):
        raise Retry("The server sent an unreadable dashboard answer.")
    return result


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _source_label(row: dict[str, Any]) -> str:
    """The sub-source alone ("Google Know", "Affiliate Bikewale") names a source well and fits beside a bar."""
    return str(row.get("sub_source") or row.get("source") or "(no source)")


def _top(
    items: Sequence[tuple[str, Sequence[int]]], keep: int
) -> tuple[list[tuple[str, list[int]]], list[tuple[str, int]]]:
    """The `keep` biggest (label, values) items by total as bars, and the rest as (label, total) to list under the
    chart. Never an "Other" bar: summed, the small ones made the biggest bar of the chart and answered nothing."""
    ranked = sorted(items, key=lambda item: (-sum(item[1]), item[0]))
    if len(ranked) == keep + 1:  # one more bar costs less room than a line naming one status
        keep += 1
    shown = [(label, list(values)) for label, values in ranked[:keep]]
    rest = [(label, sum(values)) for label, values in ranked[keep:]]
    return shown, rest


def _rest_line(rest: list[tuple[str, int]]) -> str:
    return ("Also: " + " · ".join(f"{label} {count:,}" for label, count in rest)) if rest else ""


def _unique(labels: list[str]) -> list[str]:
    """A category axis silently drops a repeated label (and its bar would land on the wrong row): number repeats."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def _integer_axis(axis: QValueAxis, top: float) -> None:
    """Whole-number ticks (counts of leads have no halves), at most about five of them."""
    step = 1
    for candidate in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000):
        step = candidate
        if top / candidate <= 5:
            break
    else:
        while top / step > 5:
            step *= 10
    ticks = max(1, -(-int(top) // step))
    axis.setRange(0, ticks * step)
    axis.setTickCount(ticks + 1)


_CRE_COLUMN_DRILL: dict[int, str] = {
    CreTableModel.CALLS: "cre_calls",
    CreTableModel.OVERDUE: "cre_overdue",
    CreTableModel.DUE_TODAY: "cre_due_today",
    CreTableModel.WON: "cre_won",
    CreTableModel.LOST: "cre_lost",
}  # a CRE row opened on one of these columns lists those leads; elsewhere, the CRE's new leads


class Tile(QFrame):
    """One figure to read across the room: a caption, a big value, a small line of context.

    Signals: clicked() when a drillable tile is clicked or, focused, gets Enter / Space (it opens the leads it
    counts)."""

    clicked = Signal()

    def __init__(self, caption: str, parent: QWidget | None = None, *, drillable: bool = False) -> None:
        super().__init__(parent)
        self.setObjectName("dashboardTile")
        self.setProperty("alert", False)
        self.setProperty("drillable", drillable)
        self.drillable = drillable
        if drillable:
            self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # Tab reaches it; Enter opens the list
            self.setCursor(Qt.CursorShape.PointingHandCursor)
            self.setToolTip("Click (or Enter) to list these leads")
            self.setAccessibleName(caption)
        self.caption_label = QLabel(caption.upper())
        self.caption_label.setObjectName("tileCaption")
        self.value_label = QLabel("—")
        self.value_label.setObjectName("tileValue")
        self.value_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail_label = QLabel(" ")
        self.detail_label.setObjectName("tileDetail")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.setSpacing(2)
        layout.addWidget(self.caption_label)
        layout.addWidget(self.value_label)
        layout.addWidget(self.detail_label)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        # The caption wraps rather than widening the tile: six tiles must fit a 1280 px window.
        self.caption_label.setWordWrap(True)
        self.detail_label.setWordWrap(True)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        inside = self.rect().contains(event.position().toPoint())
        if self.drillable and event.button() == Qt.MouseButton.LeftButton and inside:
            self.clicked.emit()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self.drillable and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.clicked.emit()
            return
        super().keyPressEvent(event)

    def set_value(self, value: str, detail: str = "", *, alert: bool = False) -> None:
        self.value_label.setText(value)
        self.detail_label.setText(detail or " ")  # a space keeps the tile's height steady
        if bool(self.property("alert")) != alert:
            self.setProperty("alert", alert)
            for widget in (self, self.value_label):  # a dynamic property only restyles after a re-polish
                widget.style().unpolish(widget)
                widget.style().polish(widget)

    def value_text(self) -> str:
        return self.value_label.text()

    def detail_text(self) -> str:
        return self.detail_label.text()


class DashboardTab(QWidget):
    """The team lead's view of the desk for a date range and branch.

    Signals: loaded(object) with the `dashboard_summary` dict once it is on screen; failed(str) with the sentence
    shown in the error line when a refresh did not work (the previous figures stay up); drill_down_requested(object)
    with a `DrillFilter` when a tile, a bar or a table row is opened (the main window shows the leads; the tab does
    not know which list widget does it).

    `fetch(date_from, date_to, branch)` blocks (it is an RPC) and always runs on the reader pool. The tab loads when
    first shown, refreshes itself every `refresh_interval_s` while visible, and on `refresh()`."""

    loaded = Signal(object)
    failed = Signal(str)
    drill_down_requested = Signal(object)

    def __init__(
        self,
        fetch: Fetch,
        branches: Sequence[str],
        refresh_interval_s: int = 60,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._fetch = fetch
        self._request = 0  # id of the newest request; an answer with an older id is stale and dropped
        self._in_flight: Query | None = None  # the newest request's query while it runs
        self._again = False  # a refresh was asked for while the same query ran: run once more after it
        self._stale = False  # a refresh fell due while the tab was hidden: catch up when it is shown
        self._summary: dict[str, Any] | None = None
        self._shown: Query | None = None  # the filters of the figures on screen (what a drill-down must match)
        self._updated_at: datetime | None = None

        self.setObjectName("dashboardTab")
        self.setStyleSheet(_STYLE)
        self._build_controls(branches)
        self._build_tiles()
        self._build_charts()
        self._build_tables()
        self._lay_out()

        self._timer = QTimer(self)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._date_settle = QTimer(self)
        self._date_settle.setSingleShot(True)
        self._date_settle.setInterval(DATE_EDIT_SETTLE_MS)
        self._date_settle.timeout.connect(self._on_date_settle_timeout)

        self.range_combo.currentIndexChanged.connect(self._on_range_combo_changed)
        self.branch_combo.currentIndexChanged.connect(self._on_branch_combo_changed)
        self.from_edit.dateChanged.connect(self._on_date_edit_changed)
        self.to_edit.dateChanged.connect(self._on_date_edit_changed)
        self.refresh_button.clicked.connect(self._on_refresh_button_clicked)

        self._update_title(self.current_query() or (desk_today(), desk_today(), None))  # what the first load shows
        self.set_refresh_interval(refresh_interval_s)

    # -- building -------------------------------------------------------------------------------------------------

    def _build_controls(self, branches: Sequence[str]) -> None:
        self.title_label = QLabel()
        self.title_label.setObjectName("dashboardTitle")
        self.range_combo = QComboBox()
        self.range_combo.setAccessibleName("Date range")
        for label, key in RANGES:
            self.range_combo.addItem(label, key)
        d = desk_today()
        today = QDate(d.year, d.month, d.day)
        self.from_edit = QDateEdit(today.addDays(-6))
        self.to_edit = QDateEdit(today)
        for edit, name in ((self.from_edit, "From"), (self.to_edit, "To")):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("dd MMM yyyy")
            edit.setAccessibleName(name)
            edit.setVisible(False)
        self._to_dash = QLabel("–")
        self._to_dash.setVisible(False)
        self.range_error_label = QLabel()
        self.range_error_label.setObjectName("rangeError")
        self.range_error_label.setVisible(False)
        self.branch_combo = QComboBox()
        self.branch_combo.setAccessibleName("Branch")
        self.branch_combo.addItem(ALL_BRANCHES, None)
        for branch in branches:
            self.branch_combo.addItem(branch, branch)
        self.branch_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Fetch the figures again (they also refresh by themselves)")
        self.status_label = QLabel("Not loaded yet")
        self.status_label.setMinimumWidth(150)
        self.status_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)  # busy: a fetch has no meaningful percentage
        self.busy_bar.setTextVisible(False)
        self.busy_bar.setFixedHeight(4)
        policy = self.busy_bar.sizePolicy()
        policy.setRetainSizeWhenHidden(True)  # the page must not jump when loading starts and stops
        self.busy_bar.setSizePolicy(policy)
        self.busy_bar.setVisible(False)
        self.error_label = QLabel()
        self.error_label.setObjectName("dashboardError")
        self.error_label.setWordWrap(True)
        self.error_label.setVisible(False)

    def _build_tiles(self) -> None:
        # "Avg first-call turnaround" is gone: a desk lead is created by its first call, so it read 0 s by
        # construction. Calls made is what a team lead can act on.
        self.tiles: dict[str, Tile] = {
            "leads": Tile("New leads", drillable=True),
            "calls": Tile("Calls made", drillable=True),
            "duplicate_rate": Tile("Duplicate rate"),
            "due_today": Tile("Follow-ups due today", drillable=True),
            "overdue": Tile("Overdue follow-ups", drillable=True),
            "won_lost": Tile("Won / Lost", drillable=True),
        }
        self.tiles["calls"].setToolTip(
            "Every call logged in the range (first calls and follow-up calls). Click (or Enter) to list the leads"
            " called (by each lead's last call)"
        )
        for key, tile in self.tiles.items():
            if tile.drillable:
                tile.clicked.connect(partial(self._on_tile_clicked, key))

    def _build_charts(self) -> None:
        # One day: leads by hour. Several days: calls and new leads per day, as lines (a date axis spaces its own
        # labels, where 30 day categories would not fit a third of a laptop screen).
        self.hour_chart = self._new_chart("Leads by hour of day")
        self._hour_set = QBarSet("Leads")
        self._hour_set.setColor(LEADS_COLOUR)
        self._hour_set.append([0] * 24)
        hour_series = QBarSeries()
        hour_series.setBarWidth(0.8)
        hour_series.append(self._hour_set)
        self._hour_axis_y = QValueAxis()
        hour_axis_x = QBarCategoryAxis()
        self._attach(self.hour_chart, hour_series, hour_axis_x, [str(h) for h in range(24)], self._hour_axis_y)
        small = hour_axis_x.labelsFont()
        small.setPointSize(7)  # 24 labels under a third of a 1280 px window...
        hour_axis_x.setLabelsFont(small)
        hour_axis_x.setTruncateLabels(False)  # ...but Qt elides "10" to "…" long before they touch
        _integer_axis(self._hour_axis_y, 0)

        self.trend_chart = self._new_chart("Calls and new leads per day")
        self._trend_calls = QLineSeries()
        self._trend_calls.setName("Calls")
        self._trend_calls.setColor(CALLS_COLOUR)
        self._trend_leads = QLineSeries()
        self._trend_leads.setName("New leads")
        self._trend_leads.setColor(LEADS_COLOUR)
        self._trend_axis_x = QDateTimeAxis()
        self._trend_axis_x.setFormat("dd MMM")
        self._trend_axis_y = QValueAxis()
        self._trend_axis_y.setLabelFormat("%d")
        text = self.palette().color(QPalette.ColorRole.WindowText)
        trend_axes: tuple[tuple[QAbstractAxis, Qt.AlignmentFlag], ...] = (
            (self._trend_axis_x, Qt.AlignmentFlag.AlignBottom),
            (self._trend_axis_y, Qt.AlignmentFlag.AlignLeft),
        )
        for axis, alignment in trend_axes:
            axis.setLabelsBrush(text)
            font = axis.labelsFont()
            font.setPointSize(CHART_LABEL_PT)
            axis.setLabelsFont(font)
            self.trend_chart.addAxis(axis, alignment)
        for series in (self._trend_calls, self._trend_leads):
            pen = series.pen()
            pen.setWidth(2)
            series.setPen(pen)
            series.setPointsVisible(True)
            self.trend_chart.addSeries(series)
            series.attachAxis(self._trend_axis_x)
            series.attachAxis(self._trend_axis_y)
        self.trend_chart.legend().setVisible(True)
        self.trend_chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        _integer_axis(self._trend_axis_y, 0)

        self.source_chart = self._new_chart("Inquiries by source")
        self._source_sets = [QBarSet("New leads"), QBarSet("New source"), QBarSet("Exact duplicate")]
        source_series = QHorizontalStackedBarSeries()
        for bar_set, colour in zip(self._source_sets, (LEADS_COLOUR, ADDED_COLOUR, EXACT_COLOUR), strict=True):
            bar_set.setColor(colour)
            source_series.append(bar_set)
            bar_set.clicked.connect(self._on_source_bar_clicked)
        self._source_axis_cat = QBarCategoryAxis()
        self._source_axis_val = QValueAxis()
        self._attach(self.source_chart, source_series, self._source_axis_cat, [], self._source_axis_val)
        self.source_chart.legend().setVisible(True)
        self.source_chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        legend_font = self.source_chart.legend().font()
        legend_font.setPointSize(CHART_LABEL_PT)
        self.source_chart.legend().setFont(legend_font)
        self.trend_chart.legend().setFont(legend_font)

        # Every status, sorted, with its full name: a BarList, not a chart (see bar_list.py for why).
        self.status_chart = BarList("New leads by status", STATUS_COLOUR)
        self.status_chart.setToolTip("Click a bar (or Enter) to list those leads")
        self.status_chart.activated.connect(self._on_status_bar_activated)
        source_axes: tuple[QAbstractAxis, ...] = (self._source_axis_cat, self._source_axis_val)
        for axis in source_axes:
            font = axis.labelsFont()
            font.setPointSize(CHART_LABEL_PT)
            axis.setLabelsFont(font)
        self._source_labels: list[str] = []  # category order on screen (reversed: biggest on top)
        self._source_rows: list[dict[str, Any]] = []

        self.hour_chart_view, self.trend_chart_view, self.source_chart_view = (
            self._new_chart_view(chart) for chart in (self.hour_chart, self.trend_chart, self.source_chart)
        )
        self.time_stack = QStackedWidget()
        self.time_stack.addWidget(self.hour_chart_view)
        self.time_stack.addWidget(self.trend_chart_view)
        self.source_rest_label = QLabel()
        self.source_rest_label.setObjectName("chartRest")
        self.source_rest_label.setWordWrap(True)
        self.source_rest_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.source_rest_label.setVisible(False)
        self.source_box = self._chart_box(self.source_chart_view, self.source_rest_label)

    @staticmethod
    def _chart_box(view: QChartView, rest: QLabel) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(view, 1)
        layout.addWidget(rest)
        return box

    def _new_chart(self, title: str) -> QChart:
        chart = QChart()
        chart.setTitle(title)
        font = chart.titleFont()
        font.setPointSize(12)
        font.setBold(True)
        chart.setTitleFont(font)
        chart.legend().setVisible(False)
        chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)  # numbers move in place, no bouncing bars
        chart.setMargins(QMargins(4, 4, 4, 4))
        chart.setBackgroundVisible(False)
        text = self.palette().color(QPalette.ColorRole.WindowText)
        chart.setTitleBrush(text)
        chart.legend().setLabelColor(text)
        return chart

    def _attach(
        self,
        chart: QChart,
        series: QBarSeries | QHorizontalBarSeries | QHorizontalStackedBarSeries,
        category_axis: QBarCategoryAxis,
        categories: list[str],
        value_axis: QValueAxis,
    ) -> None:
        chart.addSeries(series)
        category_axis.append(categories)
        value_axis.setLabelFormat("%d")
        horizontal = not isinstance(series, QBarSeries)
        text = self.palette().color(QPalette.ColorRole.WindowText)
        axes: tuple[tuple[QAbstractAxis, Qt.AlignmentFlag], ...] = (
            (category_axis, Qt.AlignmentFlag.AlignLeft if horizontal else Qt.AlignmentFlag.AlignBottom),
            (value_axis, Qt.AlignmentFlag.AlignBottom if horizontal else Qt.AlignmentFlag.AlignLeft),
        )
        for axis, alignment in axes:
            axis.setLabelsBrush(text)
            axis.setGridLineVisible(axis is value_axis)
            chart.addAxis(axis, alignment)
            series.attachAxis(axis)

    def _new_chart_view(self, chart: QChart) -> QChartView:
        view = QChartView(chart)
        view.setRenderHint(QPainter.RenderHint.Antialiasing)
        view.setMinimumHeight(200)
        view.setMinimumWidth(220)  # three charts and the margins fit a 1280 px window
        view.setFrameShape(QFrame.Shape.NoFrame)
        view.setStyleSheet("background: transparent")
        return view

    def _build_tables(self) -> None:
        self.cre_model = CreTableModel(self)
        self.cre_proxy = QSortFilterProxyModel(self)
        self.cre_proxy.setSourceModel(self.cre_model)
        self.cre_proxy.setSortRole(SORT_ROLE)
        self.cre_view = self._new_table(self.cre_proxy, CreTableModel.CRE)
        self.cre_view.sortByColumn(CreTableModel.LEADS, Qt.SortOrder.DescendingOrder)

        self.source_model = SourceTableModel(self)
        self.source_proxy = QSortFilterProxyModel(self)
        self.source_proxy.setSourceModel(self.source_model)
        self.source_proxy.setSortRole(SORT_ROLE)
        self.source_view = self._new_table(self.source_proxy, SourceTableModel.SUB_SOURCE)
        self.source_view.sortByColumn(SourceTableModel.LEADS, Qt.SortOrder.DescendingOrder)

        self.cre_view.activated.connect(self._on_cre_view_activated)  # Enter or double-click: that CRE's leads
        self.source_view.activated.connect(self._on_source_view_activated)
        for view in (self.cre_view, self.source_view):
            view.setToolTip(
                "Enter or double-click a row to list its leads (the Calls, Overdue, Due today, Won and Lost "
                "columns list those leads of the CRE)"
            )

        self.table_tabs = QTabWidget()
        self.table_tabs.setDocumentMode(True)
        self.table_tabs.addTab(self.cre_view, "By CRE")
        self.table_tabs.addTab(self.source_view, "By source")
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the table on show as CSV or Excel")
        self.export_button.clicked.connect(self._on_export_button_clicked)
        self.table_tabs.setCornerWidget(self.export_button, Qt.Corner.TopRightCorner)

    def _new_table(self, proxy: QSortFilterProxyModel, stretch_column: int) -> QTableView:
        view = QTableView()
        view.setModel(proxy)
        view.setSortingEnabled(True)
        view.setAlternatingRowColors(True)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        view.verticalHeader().setVisible(False)
        header = view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(stretch_column, QHeaderView.ResizeMode.Stretch)
        header.setHighlightSections(False)
        font = view.font()
        font.setPointSizeF(font.pointSizeF() + 1)
        view.setFont(font)
        return view

    def _lay_out(self) -> None:
        controls = QHBoxLayout()
        controls.setSpacing(8)
        controls.addWidget(self.title_label, 1)
        for widget in (self.range_combo, self.from_edit, self._to_dash, self.to_edit, self.range_error_label):
            controls.addWidget(widget)
        controls.addSpacing(12)
        controls.addWidget(self.branch_combo)
        controls.addWidget(self.refresh_button)
        controls.addWidget(self.status_label)

        tiles = QHBoxLayout()
        tiles.setSpacing(8)
        for tile in self.tiles.values():
            tiles.addWidget(tile)

        self.charts = QWidget()
        charts = QHBoxLayout(self.charts)
        charts.setContentsMargins(0, 0, 0, 0)
        charts.setSpacing(8)
        charts.addWidget(self.time_stack, 3)
        charts.addWidget(self.source_box, 3)
        charts.addWidget(self.status_chart, 3)
        # Charts and tables share the height the window has: the team lead drags the line between them (a 720 px
        # laptop screen cannot show both at their best at once).
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.charts)
        self.splitter.addWidget(self.table_tabs)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.table_tabs.setMinimumHeight(120)
        self.title_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title_label.setMinimumWidth(160)

        root = QVBoxLayout(self)
        root.setContentsMargins(12, 8, 12, 8)
        root.setSpacing(8)
        root.addLayout(controls)
        root.addWidget(self.busy_bar)
        root.addWidget(self.error_label)
        root.addLayout(tiles)
        root.addWidget(self.splitter, 1)

    # -- public ---------------------------------------------------------------------------------------------------

    @property
    def loading(self) -> bool:
        """True while the newest request runs (older, superseded ones may still be finishing; they do not count)."""
        return self._in_flight is not None

    @property
    def summary(self) -> dict[str, Any] | None:
        """The answer on screen (the last good one), or None before the first."""
        return self._summary

    def current_query(self) -> Query | None:
        """(date_from, date_to, branch) the controls describe; None when a custom range is not valid."""
        key = self.range_combo.currentData()
        today = desk_today()
        if key == "custom":
            start, end = self.from_edit.date().toPython(), self.to_edit.date().toPython()
            assert isinstance(start, date) and isinstance(end, date)
        else:
            days = {"today": 1, "7d": 7, "30d": 30}.get(str(key), 1)
            start, end = today - timedelta(days=days - 1), today
        if start > end or (end - start).days > MAX_RANGE_DAYS:
            return None
        branch = self.branch_combo.currentData()
        return start, end, (str(branch) if branch else None)

    def set_branches(self, branches: Sequence[str]) -> None:
        """Offer these branches (the catalogue changed). The chosen one stays chosen while it still exists; if it
        went away the tab falls back to all branches and fetches again."""
        names = [str(b) for b in branches if b]
        if names == [self.branch_combo.itemData(i) for i in range(1, self.branch_combo.count())]:
            return
        chosen = self.branch_combo.currentData()
        self.branch_combo.blockSignals(True)  # rebuilding the list is not the user choosing a branch
        self.branch_combo.clear()
        self.branch_combo.addItem(ALL_BRANCHES, None)
        for name in names:
            self.branch_combo.addItem(name, name)
        self.branch_combo.setCurrentIndex(max(0, self.branch_combo.findData(chosen)) if chosen else 0)
        self.branch_combo.blockSignals(False)
        if self.branch_combo.currentData() != chosen:
            self._on_branch_combo_changed(self.branch_combo.currentIndex())

    def set_refresh_interval(self, seconds: int) -> None:
        """Refresh by itself every `seconds` while visible; 0 or less switches that off."""
        if seconds <= 0:
            self._timer.stop()
            return
        self._timer.start(seconds * 1000)

    def refresh_interval(self) -> int:
        return self._timer.interval() // 1000 if self._timer.isActive() else 0

    @Slot()
    def refresh(self) -> None:
        """Fetch the figures again for the current filters (the main window calls this after the user's own
        submissions). While the same query is already running, one more fetch follows it instead of a second one
        running beside it: a burst of submissions costs two fetches, not one each."""
        query = self._validated_query()
        if query is None:
            return
        if query == self._in_flight:
            self._again = True
            return
        self._start(query)

    def figures_changed(self) -> None:
        """The figures may have moved (the desk's own submissions, the clock): refresh now if the tab is on screen,
        else once it is shown. A team lead typing leads on the desk tab costs no dashboard calls."""
        if not self.isVisible():
            self._stale = True
            return
        self.refresh()

    # -- fetching -------------------------------------------------------------------------------------------------

    def _validated_query(self) -> Query | None:
        """The query, or None with the reason shown next to the date fields (tier 1: nothing is sent)."""
        query = self.current_query()
        if query is None:
            start, end = self.from_edit.date(), self.to_edit.date()
            self.range_error_label.setText("Start after end" if start > end else f"At most {MAX_RANGE_DAYS} days")
        self.range_error_label.setVisible(query is None)
        return query

    def _start(self, query: Query) -> None:
        self._request += 1
        self._in_flight = query
        self._again = False
        self._show_loading()
        run_in(
            reader_pool(),
            partial(_fetch_checked, self._fetch, query),
            partial(self._on_fetch_succeeded, self._request),
            partial(self._on_fetch_failed, self._request),
        )

    def _is_current(self, request: int) -> bool:
        # (A tab closed while the request ran never gets here: run_in checks the callback's owner.)
        if request != self._request:
            log.debug("dropped a stale dashboard answer (request %d, newest %d)", request, self._request)
            return False
        return True

    @Slot(int, object)
    def _on_fetch_succeeded(self, request: int, summary: dict[str, Any]) -> None:
        if not self._is_current(request):
            return
        query, self._in_flight = self._in_flight, None
        self._summary = summary
        self._updated_at = datetime.now()
        self._apply(summary, query or self.current_query() or (desk_today(), desk_today(), None))
        self.error_label.setVisible(False)
        self._show_loading()
        self.loaded.emit(summary)
        if self._again:
            self.refresh()

    @Slot(int, object)
    def _on_fetch_failed(self, request: int, exc: BaseException) -> None:
        if not self._is_current(request):
            return
        self._in_flight = None
        if isinstance(exc, ApiError):
            reason = str(exc).strip() or "The server did not answer."
            log.warning("dashboard refresh failed: %s", reason)
        else:  # a bug, not trouble on the line: tier 3 gets the details, the tab still says something plain
            reason = "Something went wrong on this computer; the details are in the log."
            log.error("dashboard refresh failed", exc_info=(type(exc), exc, exc.__traceback__))
            sys.excepthook(type(exc), exc, exc.__traceback__)
        if self._updated_at is not None:
            kept = f"Showing the figures from {self._updated_at:%H:%M:%S}."
        else:
            kept = "It will try again by itself."
        message = f"Dashboard not refreshed: {reason} {kept}"
        self.error_label.setText(message)  # one line, replaced each time: repeated trouble never stacks up
        self.error_label.setVisible(True)
        self._show_loading()
        self.failed.emit(message)
        if self._again:
            self.refresh()

    def _show_loading(self) -> None:
        loading = self.loading
        self.busy_bar.setVisible(loading)
        if loading:
            text = "Loading…" if self._updated_at is None else f"Updating… (from {self._updated_at:%H:%M:%S})"
        else:
            text = "Not loaded yet" if self._updated_at is None else f"Updated {self._updated_at:%H:%M:%S}"
        self.status_label.setText(text)

    # -- showing --------------------------------------------------------------------------------------------------

    def _apply(self, summary: dict[str, Any], query: Query) -> None:
        totals = _dict(summary.get("totals"))
        follow_ups = _dict(summary.get("follow_ups"))
        leads, added, exact = (as_count(totals.get(k)) for k in ("leads", "added_sources", "exact_dups"))
        self.tiles["leads"].set_value(format_count(leads), f"{as_count(totals.get('with_ps')):,} assigned to a PS")
        calls = as_count(totals.get("calls"))
        self.tiles["calls"].set_value(
            f"{calls:,}", f"{as_count(totals.get('won_calls')):,} won · {as_count(totals.get('lost_calls')):,} lost"
        )
        rate = as_number(totals.get("duplicate_rate")) or 0.0
        self.tiles["duplicate_rate"].set_value(
            f"{rate * 100:.1f} %", f"{added + exact:,} of {leads + added + exact:,} inquiries"
        )
        self.tiles["due_today"].set_value(format_count(follow_ups.get("due_today")), "pending leads")
        overdue = as_count(follow_ups.get("overdue"))
        self.tiles["overdue"].set_value(f"{overdue:,}", "pending, date passed", alert=overdue > 0)
        self.tiles["won_lost"].set_value(
            f"{as_count(totals.get('won')):,} / {as_count(totals.get('lost')):,}",
            f"{as_count(totals.get('pending')):,} pending",
        )

        hours = [0] * 24
        for row in _list(summary.get("per_hour")):
            hour = as_count(row.get("hour"))
            if 0 <= hour < 24:
                hours[hour] += as_count(row.get("leads"))
        for hour, count in enumerate(hours):
            self._hour_set.replace(hour, count)
        _integer_axis(self._hour_axis_y, max(hours))
        self._apply_trend(_list(summary.get("per_day")), query)

        rows = _list(summary.get("per_source"))
        sources = [
            (_source_label(r), [as_count(r.get(k)) for k in ("leads", "added_sources", "exact_dups")]) for r in rows
        ]
        shown, rest = _top(sources, SOURCE_BARS)
        self._source_labels = self._set_bars(self._source_axis_cat, self._source_axis_val, self._source_sets, shown)
        self._source_rows = rows
        self.source_rest_label.setText(_rest_line(rest))
        self.source_rest_label.setVisible(bool(rest))

        statuses = [
            (str(r.get("lead_status") or NO_STATUS), [as_count(r.get("leads"))])
            for r in _list(summary.get("per_status"))
        ]
        self.status_chart.set_items([(label, values[0]) for label, values in statuses])

        self.cre_model.set_rows(_list(summary.get("per_cre")))
        self.source_model.set_rows(_list(summary.get("per_source")))
        self._update_title(query)
        self._shown = query

    def _apply_trend(self, days: list[dict[str, Any]], query: Query) -> None:
        start, end, _branch = query
        self.time_stack.setCurrentWidget(self.hour_chart_view if start == end else self.trend_chart_view)
        points: list[tuple[float, int, int]] = []
        for row in days:
            try:
                day = date.fromisoformat(str(row.get("day"))[:10])
            except ValueError:
                continue
            at = QDateTime(QDate(day.year, day.month, day.day), QTime(12, 0)).toMSecsSinceEpoch()
            points.append((float(at), as_count(row.get("calls")), as_count(row.get("leads"))))
        self._trend_calls.replace([QPointF(at, c) for at, c, _l in points])
        self._trend_leads.replace([QPointF(at, n) for at, _c, n in points])
        first, last = QDate(start.year, start.month, start.day), QDate(end.year, end.month, end.day)
        self._trend_axis_x.setRange(QDateTime(first, QTime(0, 0)), QDateTime(last, QTime(23, 59)))
        # A tick per day up to a week; beyond, five: "dd MMM" labels need ~70 px each in a third of a laptop screen.
        n_days = (end - start).days + 1
        self._trend_axis_x.setTickCount(max(2, n_days) if n_days <= 7 else 5)
        _integer_axis(self._trend_axis_y, max((max(c, n) for _a, c, n in points), default=0))

    @staticmethod
    def _set_bars(
        category_axis: QBarCategoryAxis,
        value_axis: QValueAxis,
        bar_sets: Sequence[QBarSet],
        items: list[tuple[str, list[int]]],
    ) -> list[str]:
        """Show the bars; returns the category labels in axis order (what a bar's clicked(index) counts in)."""
        items = items[::-1]  # horizontal bars grow upwards from the first category; the biggest belongs on top
        category_axis.clear()
        labels = [label for label, _values in items]
        category_axis.append(_unique(labels))
        for i, bar_set in enumerate(bar_sets):
            bar_set.remove(0, bar_set.count())
            bar_set.append([values[i] for _label, values in items])
        _integer_axis(value_axis, max((sum(values) for _label, values in items), default=0))
        return labels

    def _update_title(self, query: Query) -> None:
        """Name the figures on screen (not the filters being fetched: after a failed fetch they differ)."""
        start, end, branch = query
        days = (end - start).days + 1
        label = {1: "Today", 7: "Last 7 days", 30: "Last 30 days"}.get(days) if end == desk_today() else None
        if start == end:
            span = f"{start:%a %d %b}"
        elif start.year == end.year:
            span = f"{start:%d %b} – {end:%d %b}"
        else:
            span = f"{start:%d %b %Y} – {end:%d %b %Y}"
        self.title_label.setText(f"{label + ', ' if label else ''}{span} · {branch or ALL_BRANCHES}")
        self.hour_chart.setTitle("Leads by hour" if start == end else "Leads by hour of day (all days)")

    # -- drill-down -----------------------------------------------------------------------------------------------

    def drill_filter(self, key: str, row: dict[str, Any] | None = None) -> DrillFilter | None:
        """The leads behind a figure on screen: `key` is a tile name, or for a CRE row (`row` = its per_cre dict)
        one of "cre", "cre_calls", "cre_overdue", "cre_due_today", "cre_won", "cre_lost". None before the first
        figures. The calls lists are the leads whose last call is in the range (what the cache holds; `drill_notes`
        says what that leaves out)."""
        if self._shown is None:
            return None
        start, end, branch = self._shown
        where = f" · {branch}" if branch else ""
        span = self._span(start, end)
        in_range = DrillFilter(date_from=start, date_to=end, branch=branch)
        anytime = DrillFilter(branch=branch)  # the follow-up lists: the server's rule, whatever the range
        called = DrillFilter(called_from=start, called_to=end, branch=branch)
        if key == "leads":
            return replace(in_range, title=f"New leads, {span}{where}")
        if key == "overdue":
            return replace(anytime, title=f"Overdue follow-ups{where}", follow_up="overdue")
        if key == "due_today":
            return replace(anytime, title=f"Follow-ups due today{where}", follow_up="due_today")
        if key == "won_lost":
            return replace(in_range, title=f"Won, {span}{where}", final_status="Won")
        if key == "calls":
            return replace(called, title=f"Leads called, {span}{where}")
        if row is not None and key.startswith("cre"):
            name = str(row.get("cre_name") or "(unknown CRE)")
            cre_id = str(row["cre_id"]) if row.get("cre_id") else None
            if key == "cre_overdue":
                f = replace(anytime, title=f"Overdue follow-ups · {name}{where}", follow_up="overdue")
            elif key == "cre_due_today":
                f = replace(anytime, title=f"Due today · {name}{where}", follow_up="due_today")
            elif key == "cre_calls":
                f = replace(called, title=f"Leads called · {name}, {span}{where}")
            elif key in ("cre_won", "cre_lost"):
                final = "Won" if key == "cre_won" else "Lost"
                f = replace(in_range, title=f"{final} · {name}, {span}{where}", final_status=final)
            else:
                f = replace(in_range, title=f"Leads of {name}, {span}{where}")
            return replace(f, cre_id=cre_id, cre_name=name)
        return None

    @staticmethod
    def _span(start: date, end: date) -> str:
        return f"{start:%d %b}" if start == end else f"{start:%d %b} – {end:%d %b}"

    def _drill(self, f: DrillFilter | None) -> None:
        if f is not None:
            self.drill_down_requested.emit(f)

    @Slot(str)
    def _on_tile_clicked(self, key: str) -> None:
        self._drill(self.drill_filter(key))

    @Slot(str)
    def _on_status_bar_activated(self, status: str) -> None:
        if self._shown is None or status == NO_STATUS:
            return
        start, end, branch = self._shown
        title = f"{status}, {self._span(start, end)}" + (f" · {branch}" if branch else "")
        self._drill(DrillFilter(title=title, status=status, date_from=start, date_to=end, branch=branch))

    @Slot(int)
    def _on_source_bar_clicked(self, index: int) -> None:
        if 0 <= index < len(self._source_labels):
            label = self._source_labels[index]
            row = next((r for r in self._source_rows if _source_label(r) == label), None)
            if row is not None:
                self._drill(self._source_filter(row))

    def _source_filter(self, row: dict[str, Any]) -> DrillFilter | None:
        if self._shown is None:
            return None
        start, end, branch = self._shown
        sub = str(row["sub_source"]) if row.get("sub_source") else None
        source = str(row["source"]) if row.get("source") else None
        title = f"{sub or source or '(no source)'}, {self._span(start, end)}" + (f" · {branch}" if branch else "")
        return DrillFilter(title=title, source=source, sub_source=sub, date_from=start, date_to=end, branch=branch)

    @Slot(QModelIndex)
    def _on_cre_view_activated(self, index: QModelIndex) -> None:
        row = self.cre_proxy.data(index, ROW_ROLE)
        if isinstance(row, dict):
            key = _CRE_COLUMN_DRILL.get(self.cre_proxy.mapToSource(index).column(), "cre")
            self._drill(self.drill_filter(key, row))

    @Slot(QModelIndex)
    def _on_source_view_activated(self, index: QModelIndex) -> None:
        row = self.source_proxy.data(index, ROW_ROLE)
        if isinstance(row, dict):
            self._drill(self._source_filter(row))

    @Slot()
    def _on_export_button_clicked(self) -> None:
        from crm_desktop.ui.export import export_model_dialog

        view = self.table_tabs.currentWidget()
        if isinstance(view, QTableView):
            name = "per CRE" if view is self.cre_view else "per source"
            export_model_dialog(self, view.model(), f"Dashboard {name} {self.title_label.text()}")

    # -- slots ----------------------------------------------------------------------------------------------------

    @Slot(int)
    def _on_range_combo_changed(self, _index: int) -> None:
        custom = self.range_combo.currentData() == "custom"
        if custom:
            # Start the custom range from the range that was on screen, so a small change is a small edit.
            shown = self._summary_range()
            if shown is not None:
                for edit, day in zip((self.from_edit, self.to_edit), shown, strict=True):
                    edit.blockSignals(True)
                    edit.setDate(QDate(day.year, day.month, day.day))
                    edit.blockSignals(False)
        for widget in (self.from_edit, self._to_dash, self.to_edit):
            widget.setVisible(custom)
        if not custom:
            self.range_error_label.setVisible(False)
        self._date_settle.stop()
        self.refresh()

    def _summary_range(self) -> tuple[date, date] | None:
        span = _dict((self._summary or {}).get("range"))
        try:
            return date.fromisoformat(str(span["date_from"])), date.fromisoformat(str(span["date_to"]))
        except (KeyError, ValueError):
            return None

    @Slot(int)
    def _on_branch_combo_changed(self, _index: int) -> None:
        self.refresh()

    @Slot(QDate)
    def _on_date_edit_changed(self, _day: QDate) -> None:
        self._date_settle.start()

    @Slot()
    def _on_date_settle_timeout(self) -> None:
        self.refresh()

    @Slot()
    def _on_refresh_button_clicked(self) -> None:
        self.refresh()

    @Slot()
    def _on_timer_timeout(self) -> None:
        if self._in_flight is None:  # a slow answer is not hurried along by asking again
            self.figures_changed()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale or (self._updated_at is None and not self.loading):
            self._stale = False
            self.refresh()
