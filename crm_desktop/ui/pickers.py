"""The form's pickers: a catalogue value chosen by typing a few letters, one Tab stop each.

What a CRE types is matched against the choices ranked for that text — the exact value, then values that start with
it, then values with a word that starts with it, then any that contain it — so `goo`, `g` or `know` all offer the
obvious value first, and Tab or Enter takes the first suggestion (or the one highlighted with the arrow keys).
The ranking lives in a proxy model under the completer, so the list the CRE sees is in the order Tab would take.
The keys themselves (Tab, Enter, Esc) are handled by the form, which owns the whole key path; this module only says
what a picker would accept and whether its list is open."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtWidgets import QComboBox, QCompleter, QSizePolicy, QWidget

NONE = ""  # the blank choice of an optional picker


def match_rank(value: str, needle: str) -> int | None:
    """0 exact, 1 starts with, 2 a word starts with, 3 contains; None when `value` does not match `needle`."""
    v, n = value.casefold(), needle.casefold().strip()
    if not n:
        return 3
    if v == n:
        return 0
    if v.startswith(n):
        return 1
    if any(word.startswith(n) for word in v.replace("(", " ").replace("/", " ").split()):
        return 2
    if n in v:
        return 3
    return None


class RankedChoices(QSortFilterProxyModel):
    """The picker's choices ordered for the text being typed (see match_rank); catalogue order breaks ties."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._needle = ""
        self.setDynamicSortFilter(True)

    def set_needle(self, text: str) -> None:
        if text != self._needle:
            self._needle = text
            self.invalidate()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        text = self.sourceModel().index(source_row, 0, source_parent).data() or ""
        return bool(text) and match_rank(str(text), self._needle) is not None

    def lessThan(self, left: QModelIndex | QPersistentModelIndex, right: QModelIndex | QPersistentModelIndex) -> bool:
        lr = match_rank(str(left.data() or ""), self._needle)
        rr = match_rank(str(right.data() or ""), self._needle)
        key_l = (4 if lr is None else lr, left.row())
        key_r = (4 if rr is None else rr, right.row())
        return key_l < key_r


class ChoiceBox(QComboBox):
    """A catalogue picker whose value must be one of its items (blank allowed when optional). One Tab stop.

    Marks the form styles: `invalid` (red, set when the focus leaves with text that is not a choice), `kept` (carried
    over from the last lead), `prefilled` (taken from the known lead)."""

    def __init__(self, optional: bool = False, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._optional = optional
        self.setEditable(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        # Room for 7 letters at the least: two pickers share a row of the form, and at 900 px the form still leaves
        # "This shift" room for the owner's name; wider windows give them more.
        self.setMinimumContentsLength(7)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self._choices: list[str] = []
        self._by_fold: dict[str, str] = {}
        self._ranked = RankedChoices(self)
        self._ranked.setSourceModel(self.model())
        self._ranked.sort(0)
        completer = QCompleter(self._ranked, self)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        completer.setMaxVisibleItems(8)
        self.setCompleter(completer)
        line = self.lineEdit()
        assert line is not None
        line.setPlaceholderText(placeholder)
        line.textEdited.connect(self._ranked.set_needle)
        self.setProperty("optional", optional)

    @property
    def optional(self) -> bool:
        return self._optional

    def set_choices(self, values: list[str]) -> None:
        current = self.value()
        self.blockSignals(True)
        self.clear()
        if self._optional:
            self.addItem(NONE)
        self.addItems(values)
        self._choices = [v for v in values if v != NONE]
        self._by_fold = {v.casefold(): v for v in self._choices}
        self.blockSignals(False)
        self.set_value(current if current in values else None)

    def choices(self) -> list[str]:
        return list(self._choices)

    def value(self) -> str | None:
        """The chosen value; None when blank. Text that is not a choice is returned as typed (validation says so)."""
        text = self.currentText().strip()
        if not text:
            return None
        return self._by_fold.get(text.casefold(), text)

    def is_valid(self) -> bool:
        v = self.value()
        return (v is None and self._optional) or (v is not None and self._by_fold.get(v.casefold()) == v)

    def set_value(self, value: str | None) -> None:
        index = self.findText(value or NONE, Qt.MatchFlag.MatchFixedString) if (value or self._optional) else -1
        self.setCurrentIndex(index)
        if index < 0:
            self.setEditText(value or "")

    # -- the suggestion list ----------------------------------------------------------------------------------------

    def list_open(self) -> bool:
        completer = self.completer()
        popup = completer.popup() if completer is not None else None
        return bool((popup is not None and popup.isVisible()) or self.view().isVisible())

    def close_list(self) -> None:
        completer = self.completer()
        popup = completer.popup() if completer is not None else None
        if popup is not None and popup.isVisible():
            popup.hide()
        if self.view().isVisible():
            self.hidePopup()

    def suggestion(self) -> str | None:
        """What Tab or Enter would take now: the highlighted row of an open list, else the best match for the text."""
        completer = self.completer()
        popup = completer.popup() if completer is not None else None
        if popup is not None and popup.isVisible() and popup.currentIndex().isValid():
            return str(popup.currentIndex().data())
        if self.view().isVisible() and self.view().currentIndex().isValid():
            return str(self.view().currentIndex().data()) or None
        text = self.currentText().strip()
        if not text:
            return None
        ranked = [(r, i, v) for i, v in enumerate(self.choices()) if (r := match_rank(v, text)) is not None]
        return min(ranked)[2] if ranked else None

    def accept_suggestion(self) -> bool:
        """Take the suggestion (if the text is not a choice already) and close the list; True when it changed."""
        choice = self.suggestion()
        self.close_list()
        if choice is None or choice == self.currentText():
            return False
        self.set_value(choice)
        self._ranked.set_needle("")
        return True
