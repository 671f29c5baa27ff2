"""The lead-entry form: one key path from the caller's number to Enter, validated as the CRE goes.

The key path, which this module owns whole (an event filter on every field and on every picker's list):
- Tab: the next field, each field one stop. A picker takes its suggestion on Tab (`goo` + Tab = GOOGLE); a
  sub-source with one choice is filled and skipped; a known caller's name is not asked. A letter typed at the end of
  a complete mobile starts a new caller's name without the Tab (no letter belongs in a phone number).
- Enter: saves whenever the form is valid, from any field, list open or not (an open list gives its suggestion
  first). When something is missing, each field says what, once, and the cursor goes to the first.
- Esc: closes an open list; only an Esc with no list open clears the form, and Ctrl+Z brings that caller back once.
- F2: the known lead's view (open_lead_requested); Ctrl+K: forget the source, status and branch kept from the last
  lead.

The order follows the call: Mobile, Name, Source, Sub-source, Call status, Follow-up, Category, Model, Branch, PS,
Remark, Final status, Test drive. For a known caller ("Call on GA-… — name") the name is the lead's, read-only, and
Tab goes from Mobile to Call status (prefilled with the lead's status), Follow-up and Remark: what a call changes.

The phone field says what the number normalises to (or why it is not a mobile) on every keystroke and asks for the
duplicate lookup on the keystroke that completes a valid number. Carried-over source, call status and branch are
marked "kept from the last lead" (a CRE on a campaign line takes many calls from one source with one outcome, so the
next caller is the number, the name and Enter; a Google caller must not be credited to META unnoticed). A known
caller's own status replaces a kept one while the banner shows that lead, and the kept one comes back after.

Why one module over 700 lines: LeadForm owns the key path across every field — one event filter decides what Tab,
Enter and Esc do wherever they land — and the rules that tie fields together (source -> sub-sources, final status ->
follow-up, the known lead -> name, status, verdict, tab order). What has a job of its own lives beside it:
pickers.py, follow_up_edit.py, banner.py and core/dates.py."""

from __future__ import annotations

import itertools
import unicodedata
from datetime import date
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal, Slot
from PySide6.QtGui import QFocusEvent, QFont, QFontMetrics, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from crm_desktop.core import phone as phones
from crm_desktop.core.dates import InvalidDate
from crm_desktop.core.models import LeadSummary
from crm_desktop.ui.banner import DuplicateBanner, verdict
from crm_desktop.ui.follow_up_edit import FollowUpEdit
from crm_desktop.ui.pickers import NONE, ChoiceBox

__all__ = ["NONE", "ChoiceBox", "DuplicateBanner", "LeadForm"]

DEFAULT_FOLLOW_UP = "tomorrow"
CLOSED = ("Won", "Lost")
KEPT_NOTE = "Source, call status and branch kept from the last lead — Ctrl+K clears them."
#: What campaign mode carries to the next caller (tinted and named in KEPT_NOTE).
KEPT = ("source", "sub_source", "lead_status", "branch")
#: A time of day typed with the follow-up goes to the server as follow_up_at (migration 005); set False for a server
#: still on 001–004, and the time goes into the remark ("Call back at 17:30.") instead.
SEND_FOLLOW_UP_AT = True

_TAB_REASONS = (Qt.FocusReason.TabFocusReason, Qt.FocusReason.BacktabFocusReason, Qt.FocusReason.ShortcutFocusReason)


def ascii_digits(text: str) -> str:
    """Devanagari, Telugu, Arabic-Indic … digits as 0–9, so the field reads back in one script."""
    out = []
    for ch in text:
        if ch.isdigit() and not ch.isascii():
            try:
                out.append(str(unicodedata.digit(ch)))
                continue
            except ValueError:
                pass
        out.append(ch)
    return "".join(out)


class _SecondLabel(QLabel):
    """The label of a row's second field: as wide as the widest such label ("Sub-source *" in bold), measured with
    the font the style sheet gave it, so the second fields of the rows line up."""

    WIDEST = "Sub-source *"

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        bold = QFont(self.font())
        bold.setWeight(QFont.Weight.DemiBold)
        return QSize(max(hint.width(), QFontMetrics(bold).horizontalAdvance(self.WIDEST) + 8), hint.height())

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()


class LeadForm(QWidget):
    """Signals: submitted(dict payload) when Enter is pressed on a valid form; lookup_requested(str e164) on the
    keystroke that completes a valid mobile; phone_cleared() when the number stops being valid;
    open_lead_requested(LeadSummary) on F2 while the banner shows a known lead."""

    submitted = Signal(dict)
    lookup_requested = Signal(str)
    phone_cleared = Signal()
    open_lead_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("leadForm")
        self.region = "IN"
        self._catalog: dict[str, Any] = {}
        self._e164: str | None = None
        self._editing_ref: str | None = None  # set while a parked lead is being edited for resend
        self._restoring_ref: str | None = None  # set while a "Not saved" lead is back in the form
        self._known: LeadSummary | None = None  # the known lead this call is on (banner), None for a new caller
        self._prefilled: dict[str, str | None] = {}  # field key -> value before the known lead's prefill
        self._undo: dict[str, Any] | None = None  # the caller an Esc cleared, for one Ctrl+Z
        self._verdict_held = False  # while several fields change at once: one verdict at the end
        self._unknown: str | None = None  # the number the cache last said it does not know
        self._cache_note: str | None = None  # why the cache may not know a number yet (set_cache_note)

        self.phone = QLineEdit()
        self.phone.setObjectName("phoneField")
        self.phone.setPlaceholderText("Caller's mobile — type or paste")
        self.phone_status = QLabel(" ")
        self.phone_status.setObjectName("phoneStatus")
        self.phone_status.setWordWrap(True)
        self.banner = DuplicateBanner()
        self.name = QLineEdit()
        self.name.setMaxLength(120)
        self.name.setPlaceholderText("Required")
        self.source = ChoiceBox(placeholder="Required — type to choose")
        self.sub_source = ChoiceBox(placeholder="Required")
        self.lead_status = ChoiceBox(optional=True, placeholder="What the call was — type to choose")
        self.category = ChoiceBox(optional=True, placeholder="Hot / Warm / Cold")
        self.model_box = ChoiceBox(optional=True)
        self.branch = ChoiceBox(optional=True)
        self.ps = ChoiceBox(optional=True, placeholder="Gets the e-mail")
        self.final_status = ChoiceBox()
        self.follow_up = FollowUpEdit()
        self.follow_up_hint = QLabel()
        self.follow_up_hint.setObjectName("followUpHint")
        self.remark = QLineEdit()
        self.remark.setMaxLength(2000)
        self.test_drive = QCheckBox("Test drive done")
        self.submit_button = QPushButton("Save lead  (Enter)")
        self.submit_button.setObjectName("submitButton")
        self.clear_button = QPushButton("Clear  (Esc)")
        self.edit_note = QLabel()
        self.edit_note.setObjectName("editNote")
        self.edit_note.setWordWrap(True)
        self.edit_note.hide()
        self.kept_note = QLabel(KEPT_NOTE)
        self.kept_note.setObjectName("keptNote")
        self.kept_note.setWordWrap(True)
        self.kept_note.hide()

        self.errors: dict[str, QLabel] = {}
        self.labels: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        phone_box = QVBoxLayout()
        phone_box.setSpacing(2)
        phone_box.addWidget(self.phone)
        phone_box.addWidget(self.phone_status)  # the phone's one message line: its error label stays unused
        self._row(form, "&Mobile *", phone_box, "phone")
        form.addRow(self.banner)
        # Fields that go together share a row (the second one with its label beside it), so the whole form fits a
        # 1280×800 or a maximised 1366×768 screen without scrolling, error lines shown (tests/test_ui_intake_fit.py).
        self._row(form, "&Name *", self.name, "customer_name")
        self._pair(form, ("&Source *", self.source, "source"), ("S&ub-source *", self.sub_source, "sub_source"))
        self._row(form, "Call s&tatus", self.lead_status, "lead_status")
        follow = QHBoxLayout()
        follow.addWidget(self.follow_up, 1)
        follow.addWidget(self.follow_up_hint, 1)
        self._row(form, "Follo&w-up", follow, "follow_up_date")
        self._pair(form, ("Cate&gory", self.category, "lead_category"), ("M&odel", self.model_box, "model_interested"))
        self._pair(form, ("&Branch", self.branch, "branch"), ("&PS", self.ps, "ps_email"))
        self._row(form, "&Remark", self.remark, "remark")
        self._pair(form, ("Final st&atus", self.final_status, "final_status"), ("", self.test_drive, ""))

        buttons = QHBoxLayout()
        buttons.addWidget(self.edit_note, 1)
        buttons.addWidget(self.kept_note, 1)  # beside the buttons: the form stays short enough for 768 px screens
        buttons.addStretch(0)
        buttons.addWidget(self.clear_button)
        buttons.addWidget(self.submit_button)
        outer = QVBoxLayout(self)
        outer.addLayout(form)
        outer.addLayout(buttons)
        outer.addStretch(1)

        self._pickers = (self.source, self.sub_source, self.lead_status, self.category, self.model_box, self.branch,
                         self.ps, self.final_status)  # fmt: skip
        self._list_owner: dict[QObject, ChoiceBox] = {}
        for box in self._pickers:
            completer = box.completer()
            assert completer is not None
            for lst in (completer.popup(), box.view()):
                assert lst is not None
                self._list_owner[lst] = box
                lst.installEventFilter(self)
        self._new_order: list[QWidget] = [
            self.phone, self.name, self.source, self.sub_source, self.lead_status, self.follow_up, self.category,
            self.model_box, self.branch, self.ps, self.remark, self.final_status, self.test_drive, self.submit_button,
        ]  # fmt: skip
        self._call_order: list[QWidget] = [
            self.phone, self.lead_status, self.follow_up, self.remark, self.source, self.sub_source, self.category,
            self.model_box, self.branch, self.ps, self.final_status, self.test_drive, self.submit_button,
        ]  # fmt: skip
        self._apply_order(self._new_order)
        for w in (*self._new_order, self.clear_button):
            w.installEventFilter(self)

        self.phone.textEdited.connect(self._on_phone_edited)
        self.source.currentTextChanged.connect(self._on_source_changed)
        self.sub_source.currentTextChanged.connect(self._on_sub_source_changed)
        self.branch.currentTextChanged.connect(self._on_branch_changed)
        self.lead_status.currentTextChanged.connect(self._on_rules_changed)
        self.final_status.currentTextChanged.connect(self._on_final_status_changed)
        self.follow_up.changed.connect(self._on_rules_changed)
        for box in (self.source, self.sub_source, self.branch, self.lead_status):
            line = box.lineEdit()
            assert line is not None
            line.textEdited.connect(lambda _t, b=box: self._unmark(b))
            box.activated.connect(lambda _i, b=box: self._unmark(b))
        self.submit_button.clicked.connect(self.submit)
        self.clear_button.clicked.connect(self.clear_with_undo)
        ctx = Qt.ShortcutContext.WidgetWithChildrenShortcut
        QShortcut(QKeySequence(Qt.Key.Key_F2), self, self._on_open_lead_key, context=ctx)
        QShortcut(QKeySequence("Ctrl+K"), self, self.clear_kept, context=ctx)
        self.clear_for_next()

    def _row(self, form: QFormLayout, label: str, field: Any, key: str) -> None:
        lbl = self._label(label, field, key, first=True)
        form.addRow(lbl, self._with_error(field, key))

    def _pair(self, form: QFormLayout, first: tuple[str, Any, str], second: tuple[str, Any, str]) -> None:
        """Two fields on one row: the first under the form's labels, the second with its label beside it (labels
        of a width, so the second fields line up). Each keeps its error line under it."""
        label, field, key = first
        lbl = self._label(label, field, key, first=True)
        row = QHBoxLayout()
        row.setSpacing(12)
        # 2:3 — the second side holds its label too, and the longer values (sub-source, model, PS name).
        row.addLayout(self._with_error(field, key), 2)
        label2, field2, key2 = second
        beside = QHBoxLayout()
        if key2:
            beside.addWidget(self._label(label2, field2, key2, first=False))
            beside.addWidget(field2, 1)
            row.addLayout(self._with_error(beside, key2), 3)
        else:
            beside.addWidget(field2, 1)
            row.addLayout(beside, 3)
        form.addRow(lbl, row)

    def _with_error(self, field: Any, key: str) -> QVBoxLayout:
        box = QVBoxLayout()
        box.setSpacing(1)
        if isinstance(field, QWidget):
            box.addWidget(field)
        else:
            box.addLayout(field)
        err = QLabel()
        err.setObjectName("fieldError")
        err.setWordWrap(True)
        err.hide()
        box.addWidget(err)
        self.errors[key] = err
        return box

    def _label(self, label: str, field: Any, key: str, first: bool) -> QLabel:
        lbl = QLabel(label) if first else _SecondLabel(label)
        if label.endswith("*"):
            lbl.setProperty("required", True)
            lbl.setToolTip("Required")
        self.labels[key] = lbl
        buddy = {"phone": self.phone, "follow_up_date": self.follow_up}.get(key, field)
        if isinstance(buddy, QWidget):
            lbl.setBuddy(buddy)
        return lbl

    def _apply_order(self, order: list[QWidget]) -> None:
        for a, b in itertools.pairwise(order):
            QWidget.setTabOrder(a, b)

    def _field(self, key: str) -> QWidget:
        return {
            "phone": self.phone, "customer_name": self.name, "source": self.source, "sub_source": self.sub_source,
            "lead_status": self.lead_status, "lead_category": self.category, "model_interested": self.model_box,
            "branch": self.branch, "ps_email": self.ps, "final_status": self.final_status,
            "follow_up_date": self.follow_up, "remark": self.remark,
        }[key]  # fmt: skip

    # -- catalogue ------------------------------------------------------------------------------------------------

    def set_catalog(self, catalog: dict[str, Any]) -> None:
        self._catalog = catalog
        self.source.set_choices([s["code"] for s in catalog.get("sources", [])])
        statuses = [s["name"] for s in catalog.get("lead_statuses", []) if s.get("first_call", True)]
        self.lead_status.set_choices(statuses)
        self.category.set_choices(list(catalog.get("lead_categories", ["Hot", "Warm", "Cold"])))
        self.model_box.set_choices(list(catalog.get("models", [])))
        self.branch.set_choices(list(catalog.get("branches", [])))
        self.final_status.set_choices(list(catalog.get("final_statuses", ["Pending", "Won", "Lost"])))
        if self.final_status.value() is None:
            self.final_status.set_value("Pending")
        self._on_source_changed(self.source.currentText())
        self._on_branch_changed(self.branch.currentText())

    def _ps_entries(self) -> list[dict[str, Any]]:
        return list(self._catalog.get("ps", []))

    def _ps_labels(self, entries: list[dict[str, Any]]) -> dict[str, str]:
        """PS e-mail -> what the picker shows: the name (the e-mail only tells two PSs of one name apart)."""
        names = [p["name"] for p in entries]
        return {p["email"]: p["name"] if names.count(p["name"]) == 1 else f"{p['name']} <{p['email']}>"
                for p in entries}  # fmt: skip

    def _ps_label_of(self, email: str | None) -> str | None:
        if email is None:
            return None
        return self._ps_labels(self._ps_entries()).get(email, email)

    # -- phone ----------------------------------------------------------------------------------------------------

    @Slot(str)
    def _on_phone_edited(self, text: str) -> None:
        at_end = self.phone.cursorPosition() == len(text)
        clean = ascii_digits(text)
        formatted = phones.format_as_you_type(clean, self.region) if at_end else clean
        if formatted != text:
            self.phone.setText(formatted)
        self._undo = None  # a new caller is being typed: the cleared one is gone for good
        self._validate_phone(quiet=True)

    def _validate_phone(self, quiet: bool) -> bool:
        text = self.phone.text()
        try:
            e164 = phones.normalize(text, self.region)
        except phones.InvalidPhone as exc:
            was = self._e164
            self._e164 = None
            complete_enough = len([c for c in text if c.isdigit()]) >= 10 or exc.reason not in ("too_short", "empty")
            shown = (complete_enough or not quiet) and bool(text.strip())
            self.phone_status.setText(str(exc) if shown else " ")
            self.phone_status.setProperty("state", "invalid" if shown else "")
            self._mark(self.phone, "invalid", shown)
            self._repolish(self.phone_status)
            if was is not None:
                self._leave_known_lead()
                self.phone_cleared.emit()
            return False
        self.phone_status.setText(f"✓ {phones.display(e164)}")
        self.phone_status.setProperty("state", "valid")
        self._mark(self.phone, "invalid", False)
        self._repolish(self.phone_status)
        if e164 != self._e164:
            self._e164 = e164
            self._leave_known_lead()
            self.lookup_requested.emit(e164)
        return True

    @staticmethod
    def _repolish(w: QWidget) -> None:
        w.style().unpolish(w)
        w.style().polish(w)

    def _mark(self, w: QWidget, prop: str, on: bool) -> None:
        if bool(w.property(prop)) != on:
            w.setProperty(prop, on)
            self._repolish(w)

    def refresh_lookup(self) -> None:
        """The cache changed: ask again for the number in the field (a lead created elsewhere shows up)."""
        if self._e164 is not None:
            self.lookup_requested.emit(self._e164)

    def show_lookup(self, e164: str, lead: LeadSummary | None) -> None:
        """The cache's answer for `e164` (ignored when the field has moved on)."""
        if e164 != self._e164:
            return
        if lead is None:
            self._leave_known_lead()
            self._unknown = e164
            self._say_unknown()
            return
        self._unknown = None
        self._enter_known_lead(lead)

    def _showing_unknown(self) -> bool:
        """The number in the field is one the cache said it does not know."""
        return self._e164 is not None and self._unknown == self._e164

    def recheck_unknown(self) -> None:
        """A page came in while the cache is filling: ask again for a number it did not know (the banner comes as soon
        as its lead's page does, not at the end of the sync)."""
        if self._showing_unknown():
            self.lookup_requested.emit(self._e164)

    def set_cache_note(self, note: str | None) -> None:
        """Why the cache may not know a number yet (a first sync under way: "sync at 40 %"), or None when it is
        complete. A number it does not know is then "not among the leads on this PC yet", not a "new number"."""
        if note == self._cache_note:
            return
        self._cache_note = note
        if self._showing_unknown():
            self._say_unknown()

    def _say_unknown(self) -> None:
        shown = phones.display(self._unknown or "")
        if self._cache_note is None:
            self.phone_status.setText(f"✓ {shown} — new number")
        else:
            self.phone_status.setText(
                f"✓ {shown} — not among the leads on this PC yet ({self._cache_note}); the server checks it on Enter"
            )

    # -- the known caller ------------------------------------------------------------------------------------------

    @property
    def known_lead(self) -> LeadSummary | None:
        return self._known

    def _enter_known_lead(self, lead: LeadSummary) -> None:
        first = self._known is None
        self._known = lead
        self.banner.show_lead(lead)
        self._verdict_held = True
        try:
            self._prefill_from(lead, first)
        finally:
            self._verdict_held = False
        self._update_verdict()

    def _prefill_from(self, lead: LeadSummary, first: bool) -> None:
        if first and self._editing_ref is None:
            kept_status = bool(self.lead_status.property("kept"))
            self._prefilled = {"customer_name": self.name.text(), "lead_status": self.lead_status.currentText(),
                               "source": None, "lead_status_kept": "1" if kept_status else None}  # fmt: skip
            # The lead's own status, over a campaign's kept one (this caller's story is the lead's, not the campaign's).
            own = lead.lead_status if lead.lead_status in self.lead_status.choices() else None
            if kept_status or (own is not None and not self.lead_status.currentText().strip()):
                self.lead_status.set_value(own)
                self._mark(self.lead_status, "kept", False)
                self._mark(self.lead_status, "prefilled", True)  # Esc, Backspace on the number: the kept one is back
                self._update_kept_note()
            if self.source.value() is None and lead.sources:
                latest = lead.sources[-1]
                self._prefilled["source"] = ""
                self.source.set_value(latest.source)
                self._on_source_changed(self.source.currentText())
                self.sub_source.set_value(latest.sub_source)
                self._mark(self.source, "prefilled", True)
        self.name.setText(lead.customer_name)
        self.name.setReadOnly(True)
        self.name.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # looks read-only through the style sheet's :read-only
        self.labels["customer_name"].setText("&Name")
        self._set_error("customer_name", None)
        self._apply_order(self._call_order)

    def _leave_known_lead(self) -> None:
        if self._known is None:
            self.banner.clear()
            return
        self._known = None
        self.banner.clear()
        self.name.setReadOnly(False)
        self.name.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.name.setText(str(self._prefilled.get("customer_name") or ""))
        self.labels["customer_name"].setText("&Name *")
        if self.lead_status.property("prefilled"):
            self.lead_status.set_value(self._prefilled.get("lead_status") or None)
            self._mark(self.lead_status, "prefilled", False)
            self._mark(self.lead_status, "kept", bool(self._prefilled.get("lead_status_kept")))
            self._update_kept_note()
        if self.source.property("prefilled"):
            self.source.set_value(None)
            self._on_source_changed("")
            self._mark(self.source, "prefilled", False)
        self._prefilled = {}
        self._apply_order(self._new_order)

    @Slot()
    def _on_open_lead_key(self) -> None:
        if self._known is not None:
            self.open_lead_requested.emit(self._known)

    def _update_verdict(self) -> None:
        """The banner's last line: exactly what Enter will store for this caller."""
        lead = self._known
        if lead is None or self._verdict_held:
            return
        source = self.source.value() if self.source.is_valid() else None
        sub = self.sub_source.value() if self.sub_source.is_valid() else None
        status = self.lead_status.value() if self.lead_status.is_valid() else None
        follow = self._follow_up_words() if status is not None else ""
        self.banner.set_verdict(*verdict(lead, source, sub, status, follow, bool(self.remark.text().strip())))

    def _follow_up_words(self) -> str:
        try:
            value = self.follow_up.value()
        except InvalidDate:
            return ""
        if value is None:
            return "no follow-up"
        when = value.day.strftime("%d %b %Y") + (value.at.strftime(" %H:%M") if value.at else "")
        return f"follow-up {when}"

    # -- campaign: kept fields --------------------------------------------------------------------------------------

    def _unmark(self, box: ChoiceBox) -> None:
        """The CRE chose this value: no longer "kept" or "from the lead"."""
        changed = bool(box.property("kept") or box.property("prefilled"))
        self._mark(box, "kept", False)
        self._mark(box, "prefilled", False)
        if box is self.source:
            self._mark(self.sub_source, "kept", False)
        if changed:
            self._update_kept_note()

    def _kept_boxes(self) -> list[ChoiceBox]:
        return [b for b in (self._field(k) for k in KEPT) if isinstance(b, ChoiceBox)]

    def _update_kept_note(self) -> None:
        """Names what is kept now (a known caller's own status is not the campaign's)."""
        words = {self.source: "source", self.sub_source: "source", self.lead_status: "call status",
                 self.branch: "branch"}  # fmt: skip
        kept = list(dict.fromkeys(words[b] for b in self._kept_boxes() if b.property("kept")))
        if kept:
            names = kept[0] if len(kept) == 1 else ", ".join(kept[:-1]) + " and " + kept[-1]
            self.kept_note.setText(KEPT_NOTE.replace("Source, call status and branch", names.capitalize(), 1))
        self.kept_note.setVisible(bool(kept))

    @Slot()
    def clear_kept(self) -> None:
        """Ctrl+K: a new campaign (or none): forget the source, status and branch kept from the last lead."""
        for box in self._kept_boxes():
            if box.property("kept"):
                box.set_value(None)
                self._mark(box, "kept", False)
        self._on_source_changed("")
        self._update_kept_note()

    # -- slots ----------------------------------------------------------------------------------------------------

    @Slot(str)
    def _on_source_changed(self, text: str) -> None:
        source = self.source.value()
        subs: list[str] = []
        for s in self._catalog.get("sources", []):
            if s["code"] == source:
                subs = list(s.get("sub_sources", []))
        self.sub_source.set_choices(subs)
        if len(subs) == 1:
            self.sub_source.set_value(subs[0])
        # One choice: filled, and Tab skips it (a click still reaches it).
        one = len(subs) == 1
        self.sub_source.setFocusPolicy(Qt.FocusPolicy.ClickFocus if one else Qt.FocusPolicy.StrongFocus)
        self._update_verdict()

    @Slot(str)
    def _on_sub_source_changed(self, text: str) -> None:
        self._update_verdict()

    @Slot(str)
    def _on_branch_changed(self, text: str) -> None:
        branch = self.branch.value()
        entries = [p for p in self._ps_entries() if branch is None or p.get("branch") == branch]
        self.ps.set_choices(list(self._ps_labels(entries).values()))

    @Slot(str)
    def _on_final_status_changed(self, text: str) -> None:
        # Won/Lost: no follow-up by default (a closed lead is not called again); back to Pending: tomorrow again.
        closed = self.final_status.value() in CLOSED
        if closed and self.follow_up.text() == DEFAULT_FOLLOW_UP:
            self.follow_up.clear()
        elif not closed and not self.follow_up.text().strip():
            self.follow_up.setText(DEFAULT_FOLLOW_UP)
        self._on_rules_changed()

    @Slot()
    def _on_rules_changed(self, *_: Any) -> None:
        needs = self._follow_up_needed()
        self.labels["follow_up_date"].setText("Follo&w-up *" if needs else "Follo&w-up")
        self.labels["follow_up_date"].setProperty("required", needs)
        self.follow_up_hint.setText(self.follow_up.hint())
        if self.errors["follow_up_date"].isVisible() and not self._follow_up_error():
            self._set_error("follow_up_date", None)
        self._update_verdict()

    def _follow_up_needed(self) -> bool:
        return (self.final_status.value() or "Pending") == "Pending" and self.lead_status.value() != "RNR"

    def _follow_up_error(self) -> str | None:
        err = self.follow_up.error()
        if err:
            return err
        if self._follow_up_needed() and not self.follow_up.text().strip():
            return "A pending lead needs a follow-up date (except RNR)."
        return None

    # -- keyboard -------------------------------------------------------------------------------------------------

    def list_open(self) -> bool:
        return any(b.list_open() for b in self._pickers) or self.follow_up.calendar_open()

    def close_lists(self) -> bool:
        """Close whatever list is open; True when one was."""
        was = False
        for b in self._pickers:
            if b.list_open():
                b.close_list()
                was = True
        if self.follow_up.calendar_open():
            self.follow_up.close_calendar()
            was = True
        return was

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            return self._on_key(watched, event)
        if kind == QEvent.Type.FocusOut and isinstance(event, QFocusEvent) and isinstance(watched, QWidget):
            self._on_field_left(watched, event.reason())
        return super().eventFilter(watched, event)

    def _on_key(self, watched: QObject, event: QKeyEvent) -> bool:
        key = event.key()
        box = self._list_owner.get(watched) or (watched if isinstance(watched, ChoiceBox) else None)
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if box is not None:
                box.accept_suggestion()
            self.close_lists()
            self.submit()
            return True
        if key == Qt.Key.Key_Escape:
            if not self.close_lists():
                self.clear_with_undo()
            return True
        if key in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab) and box is not None:
            box.accept_suggestion()
            if watched is not box:  # the key went to the open list: move on from the picker itself
                QApplication.sendEvent(box, QKeyEvent(QEvent.Type.KeyPress, key, event.modifiers()))
                return True
            return False
        if watched is self.phone and self._types_through_to_name(event):
            self.name.setFocus(Qt.FocusReason.TabFocusReason)
            QApplication.sendEvent(self.name, QKeyEvent(event.type(), key, event.modifiers(), event.text()))
            return True
        if event.matches(QKeySequence.StandardKey.Undo) and self._undo is not None and self.is_pristine():
            self._restore(self._undo)
            self._undo = None
            return True
        return False

    def _types_through_to_name(self, event: QKeyEvent) -> bool:
        """A letter typed at the end of a complete, valid mobile starts the name: no letter belongs in a phone number
        (it would only spoil the valid one), and the CRE saves the Tab between the two. Only into an empty name the
        CRE could type (not a known caller's), only for plain or shifted letters: Ctrl/Alt chords keep their
        meaning, and a number being corrected mid-text (cursor not at its end) keeps the key."""
        text = event.text()
        plain = not (event.modifiers() & ~Qt.KeyboardModifier.ShiftModifier & ~Qt.KeyboardModifier.KeypadModifier)
        return (
            plain
            and len(text) == 1
            and text.isalpha()
            and self._e164 is not None
            and self._known is None
            and not self.name.text()
            and self.phone.cursorPosition() == len(self.phone.text())
        )

    def _on_field_left(self, w: QWidget, reason: Qt.FocusReason) -> None:
        if reason == Qt.FocusReason.PopupFocusReason or w is self.submit_button:
            return
        if isinstance(w, ChoiceBox):
            if reason in _TAB_REASONS:
                w.accept_suggestion()
            key = next(k for k in self.errors if k not in ("phone", "follow_up_date") and self._field(k) is w)
            bad = bool(w.currentText().strip()) and not w.is_valid()
            self._set_error(key, self._picker_error(key) if bad else None)
        elif w is self.phone and self.phone.text().strip():
            self._validate_phone(quiet=False)
        elif w is self.follow_up:
            err = self.follow_up.error()
            self._mark(self.follow_up, "invalid", err is not None)
            self._set_error("follow_up_date", err)

    @staticmethod
    def _picker_error(key: str) -> str:
        return {"source": "Choose a source from the list.", "sub_source": "Choose a sub-source of that source."}.get(
            key, "Choose a value from the list (or leave it blank)."
        )

    # -- submit ---------------------------------------------------------------------------------------------------

    def _set_error(self, key: str, message: str | None) -> None:
        if key == "phone":
            if message:  # the phone's one line under the field says it; never a second copy
                self.phone_status.setText(message)
                self.phone_status.setProperty("state", "invalid")
                self._repolish(self.phone_status)
                self._mark(self.phone, "invalid", True)
            return
        label = self.errors[key]
        label.setText(message or "")
        label.setVisible(bool(message))
        field = self._field(key)
        self._mark(field, "invalid", bool(message))

    def validate(self) -> dict[str, str]:
        """Field errors (key -> message) in the form's words; empty when the lead can be queued."""
        errs: dict[str, str] = {}
        try:
            phones.normalize(self.phone.text(), self.region)
        except phones.InvalidPhone as exc:
            errs["phone"] = str(exc)
        if not self.name.text().strip():
            errs["customer_name"] = "Enter the customer's name."
        for key in ("source", "sub_source", "lead_status", "follow_up_date", "lead_category", "model_interested",
                    "branch", "ps_email", "remark", "final_status"):  # fmt: skip
            field = self._field(key)
            if isinstance(field, ChoiceBox) and not field.is_valid():
                errs[key] = self._picker_error(key)
            elif key == "follow_up_date" and (err := self._follow_up_error()):
                errs[key] = err
        return errs

    def payload(self) -> dict[str, Any]:
        e164 = phones.normalize(self.phone.text(), self.region)
        ps_label = self.ps.value()
        ps_email = next((e for e, label in self._ps_labels(self._ps_entries()).items() if label == ps_label), None)
        follow = self.follow_up.value()
        remark = self.remark.text().strip()
        if follow is not None and follow.at is not None and not SEND_FOLLOW_UP_AT:
            remark = f"Call back at {follow.at.strftime('%H:%M')}." + (f" {remark}" if remark else "")
        body: dict[str, Any] = {
            "customer_name": self.name.text().strip(),
            "phone": e164,
            "phone_raw": self.phone.text().strip()[:64],
            "source": self.source.value(),
            "sub_source": self.sub_source.value(),
            "lead_status": self.lead_status.value(),
            "lead_category": self.category.value(),
            "model_interested": self.model_box.value(),
            "branch": self.branch.value(),
            "ps_email": ps_email,
            "final_status": self.final_status.value() or "Pending",
            "follow_up_date": follow.day.isoformat() if follow is not None else None,
            "remark": remark or None,
            "test_drive_done": self.test_drive.isChecked(),
        }
        if SEND_FOLLOW_UP_AT and follow is not None and follow.at is not None:
            body["follow_up_at"] = f"{follow.day.isoformat()}T{follow.at.strftime('%H:%M')}"
        return body

    @Slot()
    def submit(self) -> None:
        errs = self.validate()
        for key in self.errors:
            self._set_error(key, errs.get(key))
        if errs:
            self._field(next(iter(errs))).setFocus(Qt.FocusReason.OtherFocusReason)
            return
        self.submitted.emit(self.payload())

    @property
    def editing_ref(self) -> str | None:
        return self._editing_ref

    @property
    def restoring_ref(self) -> str | None:
        """The "Not saved" row whose lead is in the form (see load_unsaved), until it is sent or the form cleared."""
        return self._restoring_ref

    def is_pristine(self) -> bool:
        """Nothing typed for a caller yet: putting a lead back into the form would overwrite nothing."""
        typed = (self.phone.text(), "" if self._known else self.name.text(), self.remark.text())
        return self._editing_ref is None and self._restoring_ref is None and not any(t.strip() for t in typed)

    def load_for_edit(self, client_ref: str, payload: dict[str, Any], reason: str) -> None:
        """Put a parked lead back in the form; the next Enter resends it (edited or not)."""
        self._load(payload, f"Editing a lead the server refused: {reason}")
        self._editing_ref = client_ref

    def load_unsaved(self, payload: dict[str, Any], reason: str, client_ref: str | None = None) -> None:
        """Put back a lead that could not be saved on this computer; the next Enter queues it as a new lead.
        `client_ref`: the "Not saved" row it came from, dropped once the lead is queued."""
        self._load(payload, f"Not saved on this computer: {reason} Press Enter to try again.")
        self._restoring_ref = client_ref

    def _load(self, payload: dict[str, Any], note: str) -> None:
        self.clear_for_next()
        for box in self._kept_boxes():
            self._mark(box, "kept", False)
        self._update_kept_note()
        self.edit_note.setText(note)
        self.edit_note.show()
        self.phone.setText(str(payload.get("phone_raw") or payload.get("phone") or ""))
        self.name.setText(str(payload.get("customer_name") or ""))
        self.source.set_value(payload.get("source"))
        self._on_source_changed(self.source.currentText())
        self.sub_source.set_value(payload.get("sub_source"))
        self.lead_status.set_value(payload.get("lead_status"))
        self.category.set_value(payload.get("lead_category"))
        self.model_box.set_value(payload.get("model_interested"))
        self.branch.set_value(payload.get("branch"))
        self._on_branch_changed(self.branch.currentText())
        self.ps.set_value(self._ps_label_of(payload.get("ps_email")))
        self.final_status.set_value(payload.get("final_status") or "Pending")
        follow = payload.get("follow_up_date")
        self.follow_up.set_day(date.fromisoformat(str(follow)) if follow else None)
        self.remark.setText(str(payload.get("remark") or ""))
        self.test_drive.setChecked(bool(payload.get("test_drive_done")))
        self._validate_phone(quiet=False)

    # -- clear and undo ---------------------------------------------------------------------------------------------

    def _snapshot(self) -> dict[str, Any]:
        return {
            "phone": self.phone.text(), "name": "" if self._known else self.name.text(),
            "pickers": [b.currentText() for b in self._pickers], "follow_up": self.follow_up.text(),
            "remark": self.remark.text(), "test_drive": self.test_drive.isChecked(),
        }  # fmt: skip

    def _restore(self, snap: dict[str, Any]) -> None:
        self.clear_for_next()
        self.phone.setText(snap["phone"])
        self.name.setText(snap["name"])
        for box, text in zip(self._pickers, snap["pickers"], strict=True):
            box.set_value(text or None)
            if box is self.source:
                self._on_source_changed(text)
            if box is self.branch:
                self._on_branch_changed(text)
        self.follow_up.setText(snap["follow_up"])
        self.remark.setText(snap["remark"])
        self.test_drive.setChecked(snap["test_drive"])
        if self.phone.text():
            self._validate_phone(quiet=True)

    @Slot()
    def clear_with_undo(self) -> None:
        """Esc: the form cleared for the next caller; Ctrl+Z (before anything new is typed) brings this one back."""
        if not self.is_pristine() or self._known is not None:
            self._undo = self._snapshot()
        self.clear_for_next()

    @Slot()
    def clear_for_next(self) -> None:
        """Ready for the next caller: empty, defaults set, cursor in the phone field. Source, call status and branch
        are kept, and marked so: a CRE on a campaign line takes many calls from the same source with one outcome. The
        status kept after a call on a known lead is the one from before that call (the known lead's is its own)."""
        if self._known is None:
            kept_status = self.lead_status.value() if self.lead_status.is_valid() else None
        elif self._prefilled.get("lead_status_kept"):  # a call on a known lead leaves the campaign's status alone
            kept_status = self._prefilled.get("lead_status") or None
        else:
            kept_status = None
        self._editing_ref = None
        self._restoring_ref = None
        self.close_lists()
        self.edit_note.hide()
        self.phone.clear()
        self.phone_status.setText(" ")
        self.phone_status.setProperty("state", "")
        self._repolish(self.phone_status)
        self._e164 = None
        self._leave_known_lead()
        self.name.clear()
        self.lead_status.set_value(kept_status)
        self._mark(self.lead_status, "prefilled", False)
        self.category.set_value(None)
        self.model_box.set_value(None)
        self.ps.set_value(None)
        self.final_status.set_value("Pending")
        self.follow_up.setText(DEFAULT_FOLLOW_UP)
        self.remark.clear()
        self.test_drive.setChecked(False)
        for key in self.errors:
            self._set_error(key, None)
        self._mark(self.phone, "invalid", False)
        for box in self._kept_boxes():
            self._mark(box, "kept", box.value() is not None)
        self._update_kept_note()
        self._on_rules_changed()
        self.phone.setFocus(Qt.FocusReason.OtherFocusReason)
