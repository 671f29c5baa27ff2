"""A sorted bar list: one row per category, its full name, a bar and the count, biggest first.

Why not a QtCharts bar chart: a chart's category axis gets a fixed share of the chart's width and elides every label
that does not fit ("Customer Visited Experience Centre", and then all of them, to "..."), and twelve statuses do not
fit a third of a laptop screen as chart categories. Here the names set the widget's minimum width, so the layout
never gives it less room than its longest name: nothing is elided, every status is shown, and the bars answer "which
status is the biggest" at a glance."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFocusEvent,
    QFont,
    QFontMetrics,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

_PAD = 6
_GAP = 6
_MIN_BAR = 60  # the shortest room a bar gets: below that differences no longer read


class BarList(QWidget):
    """Signals: activated(str) with a row's label when it is clicked or, focused, gets Enter (its leads open)."""

    activated = Signal(str)

    def __init__(self, title: str, colour: QColor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._title = title
        self._colour = colour
        self._items: list[tuple[str, int]] = []
        self._current = -1
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName(title)
        font = self.font()
        font.setPointSize(8)
        self.setFont(font)
        self._title_font = QFont(self.font())
        self._title_font.setPointSize(12)
        self._title_font.setBold(True)

    # -- data -----------------------------------------------------------------------------------------------------

    def set_items(self, items: Sequence[tuple[str, int]]) -> None:
        """Rows biggest first (ties by name); the widget's size hints follow the new names."""
        self._items = sorted(((str(label), int(count)) for label, count in items), key=lambda it: (-it[1], it[0]))
        self._current = min(self._current, len(self._items) - 1)
        self.updateGeometry()
        self.update()

    def items(self) -> list[tuple[str, int]]:
        return list(self._items)

    def title(self) -> str:
        return self._title

    def set_title(self, title: str) -> None:
        self._title = title
        self.update()

    # -- geometry -------------------------------------------------------------------------------------------------

    def _row_height(self) -> int:
        return QFontMetrics(self.font()).height() + 2

    def _title_height(self) -> int:
        return QFontMetrics(self._title_font).height() + _PAD

    def label_column_width(self) -> int:
        fm = QFontMetrics(self.font())
        return max((fm.horizontalAdvance(label) for label, _count in self._items), default=0)

    def _value_width(self) -> int:
        fm = QFontMetrics(self.font())
        return max((fm.horizontalAdvance(f"{count:,}") for _label, count in self._items), default=0)

    def minimumSizeHint(self) -> QSize:
        fm = QFontMetrics(self._title_font)
        width = max(
            fm.horizontalAdvance(self._title) + 2 * _PAD,
            self.label_column_width() + _MIN_BAR + self._value_width() + 2 * _GAP + 2 * _PAD,
        )
        return QSize(width, self._title_height() + max(1, len(self._items)) * self._row_height() + _PAD)

    def sizeHint(self) -> QSize:
        hint = self.minimumSizeHint()
        return QSize(hint.width() + 120, self._title_height() + max(1, len(self._items)) * 20 + _PAD)

    def row_rects(self) -> list[QRect]:
        """Each row's rectangle, top to bottom (rows share the height, never below a line of text)."""
        top = self._title_height()
        n = len(self._items)
        if not n:
            return []
        step = max(self._row_height(), min(24, (self.height() - top - _PAD) // n))
        return [QRect(_PAD, top + i * step, self.width() - 2 * _PAD, step) for i in range(n)]

    def row_at(self, y: int) -> int:
        for i, rect in enumerate(self.row_rects()):
            if rect.top() <= y < rect.bottom() + 1:
                return i
        return -1

    # -- painting -------------------------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text = self.palette().color(QPalette.ColorRole.WindowText)
        painter.setPen(text)
        painter.setFont(self._title_font)
        painter.drawText(
            QRect(0, 0, self.width(), self._title_height()), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
            self._title,
        )  # fmt: skip
        painter.setFont(self.font())
        if not self._items:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No leads")
            return
        label_w, value_w = self.label_column_width(), self._value_width()
        top = max(count for _label, count in self._items) or 1
        for i, (rect, (label, count)) in enumerate(zip(self.row_rects(), self._items, strict=True)):
            if i == self._current and self.hasFocus():
                painter.fillRect(rect, self.palette().color(QPalette.ColorRole.Highlight).lighter(170))
            painter.setPen(text)
            label_rect = QRect(rect.left(), rect.top(), label_w, rect.height())
            painter.drawText(label_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)
            bar_left = rect.left() + label_w + _GAP
            room = max(1, rect.right() - bar_left - _GAP - value_w)
            bar_w = max(1 if count else 0, round(room * count / top))
            bar = QRect(bar_left, rect.top() + 2, bar_w, max(2, rect.height() - 4))
            painter.fillRect(bar, self._colour)
            painter.drawText(
                QRect(bar.right() + _GAP, rect.top(), value_w + _GAP, rect.height()),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"{count:,}",
            )

    # -- input ----------------------------------------------------------------------------------------------------

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        row = self.row_at(event.position().toPoint().y())
        if event.button() == Qt.MouseButton.LeftButton and row >= 0:
            self._current = row
            self.update()
            self.activated.emit(self._items[row][0])
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Down, Qt.Key.Key_Up) and self._items:
            step = 1 if key == Qt.Key.Key_Down else -1
            self._current = max(0, min(len(self._items) - 1, self._current + step))
            self.setToolTip(f"{self._items[self._current][0]}: {self._items[self._current][1]:,}")
            self.update()
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and 0 <= self._current < len(self._items):
            self.activated.emit(self._items[self._current][0])
            return
        super().keyPressEvent(event)

    def focusInEvent(self, event: QFocusEvent) -> None:
        if self._current < 0 and self._items:
            self._current = 0
        super().focusInEvent(event)
        self.update()
