"""The lead-entry form: keyboard-first, catalogue-driven, validated inline before anything is sent.

Tab order follows the call: phone, name, source, sub-source, status, category, model, branch, PS, final status,
follow-up, remark, test drive. Enter submits from anywhere in the form; Esc clears it. The phone field shows what
the number normalises to (or why it is not a mobile) on every keystroke, and asks for the duplicate lookup on the
keystroke that completes a valid number."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from typing import Any

from PySide6.QtCore import QDate, QEvent, QObject, Qt, Signal, Slot
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QDateEdit,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from crm_desktop.core import phone as phones
from crm_desktop.core.models import LeadSummary

NONE = ""  # the blank choice of an optional combo


class ChoiceBox(QComboBox):
    """A combo with type-to-filter (substring, case-insensitive) whose value must be one of its items."""

    def __init__(self, optional: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._optional = optional
        self.setEditable(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(12)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        completer = QCompleter(self.model(), self)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.setCompleter(completer)

    def set_choices(self, values: list[str]) -> None:
        current = self.value()
        self.blockSignals(True)
        self.clear()
        if self._optional:
            self.addItem(NONE)
        self.addItems(values)
        self.blockSignals(False)
        self.set_value(current if current in values else None)

    def choices(self) -> list[str]:
        return [self.itemText(i) for i in range(self.count()) if self.itemText(i) != NONE]

    def value(self) -> str | None:
        """The chosen value; None when blank. Text that is not a choice is returned as typed (validation says so)."""
        text = self.currentText().strip()
        if not text:
            return None
        for v in self.choices():
            if v.casefold() == text.casefold():
                return v
        return text

    def is_valid(self) -> bool:
        v = self.value()
        return (v is None and self._optional) or (v is not None and v in self.choices())

    def set_value(self, value: str | None) -> None:
        index = self.findText(value or NONE, Qt.MatchFlag.MatchFixedString) if (value or self._optional) else -1
        self.setCurrentIndex(index)
        if index < 0:
            self.setEditText(value or "")


class DuplicateBanner(QFrame):
    """What the cache knows about the number being typed: the returning customer, at a glance."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("duplicateBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        self.title = QLabel()
        self.title.setObjectName("bannerTitle")
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verdict = QLabel()
        self.verdict.setObjectName("bannerVerdict")
        self.verdict.setWordWrap(True)
        for w in (self.title, self.details, self.verdict):
            layout.addWidget(w)
        self.lead: LeadSummary | None = None
        self.hide()

    def show_lead(self, lead: LeadSummary, source: str | None, sub_source: str | None) -> None:
        self.lead = lead
        self.title.setText(f"Already a lead: {lead.uid} — {lead.customer_name}")
        sources = ", ".join(f"{s.source} / {s.sub_source}" for s in lead.sources) or "—"
        created = _human_date(lead.created_at)
        follow = _human_date(lead.follow_up_date) if lead.follow_up_date else "none"
        status = " / ".join(x for x in (lead.lead_status, lead.final_status) if x)
        self.details.setText(
            f"Sources: {sources}\nOwner CRE: {lead.cre_name or '—'}   ·   PS: {lead.ps_name or '—'}   ·   "
            f"Branch: {lead.branch or '—'}\nStatus: {status}   ·   Created {created}   ·   Next follow-up: {follow}"
        )
        self.update_verdict(source, sub_source)
        self.show()

    def update_verdict(self, source: str | None, sub_source: str | None) -> None:
        if self.lead is None:
            return
        if source and sub_source and self.lead.has_source(source, sub_source):
            self.setProperty("kind", "exact")
            self.verdict.setText(
                "Exact duplicate: this source is already recorded. Submitting stores only the call attempt."
            )
        elif source and sub_source:
            self.setProperty("kind", "new_source")
            self.verdict.setText(f"New source for this lead: {source} / {sub_source} will be added to {self.lead.uid}.")
        else:
            self.setProperty("kind", "new_source")
            self.verdict.setText("Choose the source to see whether it is new for this lead.")
        self.style().unpolish(self)
        self.style().polish(self)

    def clear(self) -> None:
        self.lead = None
        self.hide()


def _human_date(text: str | None) -> str:
    if not text:
        return "—"
    try:
        if len(text) == 10:
            return date.fromisoformat(text).strftime("%d %b %Y")
        return datetime.fromisoformat(text).astimezone().strftime("%d %b %Y %H:%M")
    except ValueError:
        return text


class LeadForm(QWidget):
    """Signals: submitted(dict payload) when Enter is pressed on a valid form; lookup_requested(str e164) on the
    keystroke that completes a valid mobile; phone_cleared() when the number stops being valid."""

    submitted = Signal(dict)
    lookup_requested = Signal(str)
    phone_cleared = Signal()
    open_lead_requested = Signal(object)  # F2 while the banner shows a known caller: the banner's LeadSummary

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("leadForm")
        self.region = "IN"
        self._catalog: dict[str, Any] = {}
        self._e164: str | None = None
        self._editing_ref: str | None = None  # set while a parked lead is being edited for resend
        self._restoring_ref: str | None = None  # set while a "Not saved" lead is back in the form

        self.phone = QLineEdit()
        self.phone.setObjectName("phoneField")
        self.phone.setPlaceholderText("Caller's mobile — type or paste")
        self.phone_status = QLabel(" ")
        self.phone_status.setObjectName("phoneStatus")
        self.banner = DuplicateBanner()
        self.name = QLineEdit()
        self.name.setMaxLength(120)
        self.source = ChoiceBox()
        self.sub_source = ChoiceBox()
        self.lead_status = ChoiceBox(optional=True)
        self.category = ChoiceBox(optional=True)
        self.model_box = ChoiceBox(optional=True)
        self.branch = ChoiceBox(optional=True)
        self.ps = ChoiceBox(optional=True)
        self.final_status = ChoiceBox()
        self.follow_up = QDateEdit()
        self.follow_up.setCalendarPopup(True)
        self.follow_up.setDisplayFormat("dd MMM yyyy")
        self.no_follow_up = QCheckBox("No follow-up")
        self.remark = QLineEdit()
        self.remark.setMaxLength(2000)
        self.test_drive = QCheckBox("Test drive done")
        self.submit_button = QPushButton("Save lead  (Enter)")
        self.submit_button.setObjectName("submitButton")
        self.clear_button = QPushButton("Clear  (Esc)")
        self.edit_note = QLabel()
        self.edit_note.setObjectName("editNote")
        self.edit_note.hide()

        self.errors: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        phone_box = QVBoxLayout()
        phone_box.setSpacing(2)
        phone_box.addWidget(self.phone)
        phone_box.addWidget(self.phone_status)
        self._row(form, "&Mobile", phone_box, "phone")
        form.addRow(self.banner)
        self._row(form, "&Name", self.name, "customer_name")
        self._row(form, "&Source", self.source, "source")
        self._row(form, "S&ub-source", self.sub_source, "sub_source")
        self._row(form, "Call s&tatus", self.lead_status, "lead_status")
        self._row(form, "Cate&gory", self.category, "lead_category")
        self._row(form, "M&odel", self.model_box, "model_interested")
        self._row(form, "&Branch", self.branch, "branch")
        self._row(form, "&PS", self.ps, "ps_email")
        self._row(form, "&Final status", self.final_status, "final_status")
        follow = QHBoxLayout()
        follow.addWidget(self.follow_up, 1)
        follow.addWidget(self.no_follow_up)
        self._row(form, "Follow-&up", follow, "follow_up_date")
        self._row(form, "&Remark", self.remark, "remark")
        form.addRow("", self.test_drive)

        buttons = QHBoxLayout()
        buttons.addWidget(self.edit_note, 1)
        buttons.addStretch(0)
        buttons.addWidget(self.clear_button)
        buttons.addWidget(self.submit_button)
        outer = QVBoxLayout(self)
        outer.addLayout(form)
        outer.addLayout(buttons)
        outer.addStretch(1)

        order = [self.phone, self.name, self.source, self.sub_source, self.lead_status, self.category, self.model_box,
                 self.branch, self.ps, self.final_status, self.follow_up, self.no_follow_up, self.remark,
                 self.test_drive, self.submit_button]  # fmt: skip
        for a, b in itertools.pairwise(order):
            QWidget.setTabOrder(a, b)

        self.phone.textEdited.connect(self._on_phone_edited)
        self.source.currentTextChanged.connect(self._on_source_changed)
        self.sub_source.currentTextChanged.connect(self._on_sub_source_changed)
        self.branch.currentTextChanged.connect(self._on_branch_changed)
        self.lead_status.currentTextChanged.connect(self._on_rules_changed)
        self.final_status.currentTextChanged.connect(self._on_rules_changed)
        self.no_follow_up.toggled.connect(self._on_rules_changed)
        self.submit_button.clicked.connect(self.submit)
        self.clear_button.clicked.connect(self.clear_for_next)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.clear_for_next,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)  # fmt: skip
        QShortcut(QKeySequence(Qt.Key.Key_F2), self, self._on_open_lead_shortcut,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)  # fmt: skip
        for w in order:
            w.installEventFilter(self)
        self.clear_for_next()

    def _on_open_lead_shortcut(self) -> None:
        if self.banner.isVisible() and self.banner.lead is not None:
            self.open_lead_requested.emit(self.banner.lead)

    def _row(self, form: QFormLayout, label: str, field: Any, key: str) -> None:
        box = QVBoxLayout()
        box.setSpacing(1)
        if isinstance(field, QWidget):
            box.addWidget(field)
        else:
            box.addLayout(field)
        err = QLabel()
        err.setObjectName("fieldError")
        err.hide()
        box.addWidget(err)
        self.errors[key] = err
        lbl = QLabel(label)
        buddy = field if isinstance(field, QWidget) else None
        if key == "phone":
            buddy = self.phone
        elif key == "follow_up_date":
            buddy = self.follow_up
        if buddy is not None:
            lbl.setBuddy(buddy)
        form.addRow(lbl, box)

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

    def _ps_label(self, p: dict[str, Any]) -> str:
        return f"{p['name']} <{p['email']}>"

    # -- slots ----------------------------------------------------------------------------------------------------

    @Slot(str)
    def _on_phone_edited(self, text: str) -> None:
        at_end = self.phone.cursorPosition() == len(text)
        formatted = phones.format_as_you_type(text, self.region) if at_end else text
        if formatted != text:
            self.phone.setText(formatted)
        self._validate_phone(quiet=True)

    def _validate_phone(self, quiet: bool) -> bool:
        text = self.phone.text()
        try:
            e164 = phones.normalize(text, self.region)
        except phones.InvalidPhone as exc:
            was = self._e164
            self._e164 = None
            complete_enough = len([c for c in text if c.isdigit()]) >= 10 or exc.reason not in ("too_short", "empty")
            self.phone_status.setText(str(exc) if (complete_enough or not quiet) and text.strip() else " ")
            self.phone_status.setProperty("state", "invalid" if complete_enough else "")
            self._repolish(self.phone_status)
            if was is not None:
                self.banner.clear()
                self.phone_cleared.emit()
            return False
        self.phone_status.setText(f"✓ {phones.display(e164)}")
        self.phone_status.setProperty("state", "valid")
        self._repolish(self.phone_status)
        self._set_error("phone", None)
        if e164 != self._e164:
            self._e164 = e164
            self.banner.clear()
            self.lookup_requested.emit(e164)
        return True

    @staticmethod
    def _repolish(w: QWidget) -> None:
        w.style().unpolish(w)
        w.style().polish(w)

    def refresh_lookup(self) -> None:
        """The cache changed: ask again for the number in the field (a lead created elsewhere shows up)."""
        if self._e164 is not None:
            self.lookup_requested.emit(self._e164)

    def show_lookup(self, e164: str, lead: LeadSummary | None) -> None:
        """The cache's answer for `e164` (ignored when the field has moved on)."""
        if e164 != self._e164:
            return
        if lead is None:
            self.banner.clear()
            self.phone_status.setText(f"✓ {phones.display(e164)} — new number")
        else:
            self.banner.show_lead(lead, self.source.value(), self.sub_source.value())

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
        self.banner.update_verdict(source, self.sub_source.value())

    @Slot(str)
    def _on_sub_source_changed(self, text: str) -> None:
        self.banner.update_verdict(self.source.value(), self.sub_source.value())

    @Slot(str)
    def _on_branch_changed(self, text: str) -> None:
        branch = self.branch.value()
        entries = [p for p in self._ps_entries() if branch is None or p.get("branch") == branch]
        self.ps.set_choices([self._ps_label(p) for p in entries])

    @Slot()
    def _on_rules_changed(self, *_: Any) -> None:
        needs = self._follow_up_needed()
        self.follow_up.setEnabled(not self.no_follow_up.isChecked())
        self.no_follow_up.setEnabled(not needs or self.no_follow_up.isChecked())
        if needs and self.no_follow_up.isChecked():
            self.no_follow_up.setChecked(False)

    def _follow_up_needed(self) -> bool:
        return (self.final_status.value() or "Pending") == "Pending" and self.lead_status.value() != "RNR"

    # -- keyboard -------------------------------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        is_enter = (
            event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        )
        if is_enter:
            if isinstance(watched, QComboBox):
                completer = watched.completer()
                popup = completer.popup() if completer is not None else None
                open_lists = [w for w in (watched.view(), popup) if w is not None]
                if any(w.isVisible() for w in open_lists):
                    return False  # Enter picks the highlighted choice first
            self.submit()
            return True
        return super().eventFilter(watched, event)

    # -- submit ---------------------------------------------------------------------------------------------------

    def _set_error(self, key: str, message: str | None) -> None:
        label = self.errors[key]
        label.setText(message or "")
        label.setVisible(bool(message))

    def validate(self) -> dict[str, str]:
        """Field errors (key -> message) in the form's words; empty when the lead can be queued."""
        errs: dict[str, str] = {}
        try:
            phones.normalize(self.phone.text(), self.region)
        except phones.InvalidPhone as exc:
            errs["phone"] = str(exc)
        if not self.name.text().strip():
            errs["customer_name"] = "Enter the customer's name."
        if not self.source.is_valid():
            errs["source"] = "Choose a source from the list."
        if not self.sub_source.is_valid():
            errs["sub_source"] = "Choose a sub-source of that source."
        for key, box in (("lead_status", self.lead_status), ("lead_category", self.category),
                         ("model_interested", self.model_box), ("branch", self.branch), ("ps_email", self.ps),
                         ("final_status", self.final_status)):  # fmt: skip
            if not box.is_valid():
                errs[key] = "Choose a value from the list (or leave it blank)."
        if self._follow_up_needed() and self.no_follow_up.isChecked():
            errs["follow_up_date"] = "A pending lead needs a follow-up date (except RNR)."
        return errs

    def payload(self) -> dict[str, Any]:
        e164 = phones.normalize(self.phone.text(), self.region)
        ps_label = self.ps.value()
        ps_email = next((p["email"] for p in self._ps_entries() if self._ps_label(p) == ps_label), None)
        follow: str | None = None
        if not self.no_follow_up.isChecked():
            follow = self.follow_up.date().toString(Qt.DateFormat.ISODate)
        return {
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
            "follow_up_date": follow,
            "remark": self.remark.text().strip() or None,
            "test_drive_done": self.test_drive.isChecked(),
        }

    @Slot()
    def submit(self) -> None:
        errs = self.validate()
        for key in self.errors:
            self._set_error(key, errs.get(key))
        if errs:
            first = next(iter(errs))
            target = {"phone": self.phone, "customer_name": self.name, "source": self.source,
                      "sub_source": self.sub_source}.get(first)  # fmt: skip
            if target is not None:
                target.setFocus()
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
        typed = (self.phone.text(), self.name.text(), self.remark.text())
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
        email = payload.get("ps_email")
        self.ps.set_value(next((self._ps_label(p) for p in self._ps_entries() if p["email"] == email), email))
        self.final_status.set_value(payload.get("final_status") or "Pending")
        if payload.get("follow_up_date"):
            self.follow_up.setDate(QDate.fromString(str(payload["follow_up_date"]), Qt.DateFormat.ISODate))
            self.no_follow_up.setChecked(False)
        else:
            self.no_follow_up.setChecked(True)
        self.remark.setText(str(payload.get("remark") or ""))
        self.test_drive.setChecked(bool(payload.get("test_drive_done")))
        self._validate_phone(quiet=False)

    @Slot()
    def clear_for_next(self) -> None:
        """Ready for the next caller: empty, defaults set, cursor in the phone field. Source and branch are kept:
        a CRE on a campaign line takes many calls from the same source."""
        self._editing_ref = None
        self._restoring_ref = None
        self.edit_note.hide()
        self.phone.clear()
        self.phone_status.setText(" ")
        self.phone_status.setProperty("state", "")
        self._e164 = None
        self.banner.clear()
        self.name.clear()
        self.lead_status.set_value(None)
        self.category.set_value(None)
        self.model_box.set_value(None)
        self.ps.set_value(None)
        self.final_status.set_value("Pending")
        self.follow_up.setDate(QDate.currentDate().addDays(1))
        self.no_follow_up.setChecked(False)
        self.remark.clear()
        self.test_drive.setChecked(False)
        for key in self.errors:
            self._set_error(key, None)
        self.phone.setFocus()
