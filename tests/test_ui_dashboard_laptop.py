"""The team lead's tab on a laptop: rendered at 1280×720 and 1366×768 (less the window's own bars) with a busy
desk's figures — twelve statuses, eight sub-sources, long branch names — no chart label is elided, no widget gets less
than its minimum size, and the tab's minimum width fits a 1280-wide screen."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

import pytest
from PySide6.QtCharts import QChart
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QAbstractScrollArea, QWidget

from crm_desktop.ui.dashboard import DashboardTab, desk_today

# What a maximised window leaves the tab: the title bar, a taskbar (768 -> 740 on the review's laptop), and the
# main window's tab bar, message line and status bar (~80 px).
WINDOW_CHROME = 80
SIZES = [(1280, 720 - WINDOW_CHROME), (1366, 740 - WINDOW_CHROME)]

STATUSES = [
    "RNR", "Busy on another Call", "Call me Back", "Call Disconnected", "Interested", "Not Interested",
    "Did Not Inquire", "Wrong Number", "Lost to Co Dealer", "Lost to Competition", "Lead Already Assigned",
    "Customer Visited Experience Centre",
]  # fmt: skip
SUB_SOURCES = [
    ("GOOGLE", "Google Know"), ("META", "Meta Know"), ("BTL", "BTL Know"), ("OEM", "Web"), ("OEM", "Tele"),
    ("OEM", "Affiliate Bikewale"), ("OEM", "Affiliate Bikedekho"), ("OEM", "Affiliate 91 Wheels"),
]  # fmt: skip


def busy_desk(start: date, end: date) -> dict[str, Any]:
    days = (end - start).days + 1
    names = ["Asha Reddy", "Imran Khan", "Lakshmi Narayan", "Venkata Subramanyam Chakravarthy"]
    return {
        "range": {"date_from": start.isoformat(), "date_to": end.isoformat()},
        "totals": {"leads": 12_345, "added_sources": 3_210, "exact_dups": 456, "duplicate_rate": 0.2297,
                   "with_ps": 1_000, "pending": 9_000, "won": 1_200, "lost": 800, "calls": 45_678,
                   "won_calls": 1_200, "lost_calls": 800},
        "per_cre": [{"cre_id": f"id{i}", "cre_name": n, "leads": 1000 * i, "calls": 3000 * i, "due_today": i,
                     "overdue": 100 * i, "won": i, "lost": i, "pending": 5, "with_ps": 3, "added_sources": 2,
                     "exact_dups": 1} for i, n in enumerate(names, 1)],
        "per_source": [{"source": s, "sub_source": ss, "leads": 2000 - 100 * i, "added_sources": 300,
                        "exact_dups": 50} for i, (s, ss) in enumerate(SUB_SOURCES)],
        "per_status": [{"lead_status": s, "leads": 1500 - 110 * i} for i, s in enumerate(STATUSES)],
        "per_hour": [{"hour": h, "leads": h * 30} for h in range(24)],
        "per_day": [{"day": (start + timedelta(days=i)).isoformat(), "leads": 1000 + i, "calls": 3000 + 10 * i}
                    for i in range(days)],
        "follow_ups": {"due_today": 5_700, "overdue": 12_300},
    }  # fmt: skip


def chart_labels(chart: QChart) -> list[tuple[str, Any]]:
    """Every visible text item of a chart as drawn (axis labels, title, legend), with its scene rectangle."""
    out = []
    for item in chart.scene().items():
        obj = item.toGraphicsObject()
        if obj is not None and hasattr(obj, "toPlainText") and item.isVisible():
            out.append((obj.toPlainText(), item.sceneBoundingRect()))
    return out


def clipped(root: QWidget) -> list[str]:
    """Visible widgets smaller than their minimum size hint (a squeezed label cuts its text, a squeezed chart its
    labels); scroll areas may be smaller than their content, that is what they are for."""
    out = []
    for w in root.findChildren(QWidget):
        if not w.isVisible() or isinstance(w.parent(), QAbstractScrollArea) or w.objectName().startswith("qt_"):
            continue
        hint = w.minimumSizeHint()
        if (hint.width() > 0 and w.width() < hint.width()) or (hint.height() > 0 and w.height() < hint.height()):
            out.append(f"{type(w).__name__} {w.objectName()!r} {w.size().toTuple()} < {hint.toTuple()}")
    return out


@pytest.mark.parametrize("range_key", ["today", "30d"])
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_tab_fits_a_laptop_with_every_label_shown(qtbot, width: int, height: int, range_key: str) -> None:
    tab = DashboardTab(lambda f, t, b: busy_desk(f, t), ["VANASTHALIPURAM", "SRINAGAR COLONY"], refresh_interval_s=0)
    qtbot.addWidget(tab)
    tab.resize(width, height)
    with qtbot.waitSignal(tab.loaded, timeout=10_000):
        tab.show()
    if range_key != "today":  # the first load is today's
        with qtbot.waitSignal(tab.loaded, timeout=10_000):
            tab.range_combo.setCurrentIndex(tab.range_combo.findData(range_key))
    with qtbot.waitSignal(tab.loaded, timeout=10_000):
        tab.branch_combo.setCurrentIndex(tab.branch_combo.findData("VANASTHALIPURAM"))  # the widest branch name
    qtbot.waitUntil(lambda: tab.size().toTuple() == (width, height))
    # Charts lay out their labels on a later pass of the event loop.
    qtbot.waitUntil(lambda: "Google Know" in {t for t, _r in chart_labels(tab.source_chart)})

    # New figures change the tiles' size hints; the layout settles on a posted event. Then nothing may be squeezed.
    qtbot.waitUntil(lambda: not clipped(tab), timeout=5_000)
    assert clipped(tab) == []
    assert tab.minimumSizeHint().width() <= 1280
    assert tab.minimumSizeHint().height() <= height

    one_day = range_key == "today"
    time_chart = tab.hour_chart if one_day else tab.trend_chart
    assert tab.time_stack.currentWidget().chart() is time_chart
    for chart in (time_chart, tab.source_chart):
        labels = chart_labels(chart)
        texts = [t for t, _r in labels if t]
        assert texts and not [t for t in texts if "…" in t or "..." in t], chart.title()
    # Every source is either a bar with its name or named under the chart, with its count.
    shown = {t for t, _r in chart_labels(tab.source_chart)}
    rest = tab.source_rest_label.text()
    for _source, sub in SUB_SOURCES:
        assert sub in shown or sub in rest, sub
    if one_day:  # 24 hour labels, none on top of another
        drawn = [r for t, r in chart_labels(tab.hour_chart) if t.isdigit() and r.width() < 40]
        axis_y = max(r.top() for r in drawn)
        hours = sorted((r for r in drawn if r.top() == axis_y), key=lambda r: r.left())
        assert len(hours) >= 24
        assert all(a.right() <= b.left() + 1 for a, b in itertools.pairwise(hours))

    # The status chart: all twelve, sorted, each full name in the room it has.
    status = tab.status_chart
    assert [label for label, _n in status.items()] == STATUSES
    fm = QFontMetrics(status.font())
    rects = status.row_rects()
    assert len(rects) == 12 and rects[-1].bottom() <= status.height()
    assert all(fm.horizontalAdvance(label) <= status.label_column_width() for label in STATUSES)
    assert status.label_column_width() + 60 < status.width()
    assert all(r.height() >= fm.height() for r in rects)
    # The tiles' figures are not cut.
    for tile in tab.tiles.values():
        value = tile.value_label
        assert QFontMetrics(value.font()).horizontalAdvance(value.text()) <= value.width(), tile.caption_label.text()
    assert tab.title_label.width() >= QFontMetrics(tab.title_label.font()).horizontalAdvance(tab.title_label.text())


def test_no_other_bar_and_a_short_list_has_no_rest_line(qtbot) -> None:
    today = desk_today()
    answer = busy_desk(today, today)
    answer["per_source"] = answer["per_source"][:3]
    tab = DashboardTab(lambda f, t, b: answer, [], refresh_interval_s=0)
    qtbot.addWidget(tab)
    with qtbot.waitSignal(tab.loaded, timeout=10_000):
        tab.show()
    assert "Other" not in {t for t, _r in chart_labels(tab.source_chart)}
    assert not tab.source_rest_label.isVisible()
    answer["per_source"] = busy_desk(today, today)["per_source"]
    with qtbot.waitSignal(tab.loaded, timeout=10_000):
        tab.refresh()
    assert tab.source_rest_label.text() == "Also: Affiliate Bikedekho 1,750 · Affiliate 91 Wheels 1,650"
