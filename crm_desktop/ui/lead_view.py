"""The lead view: who the lead is (summary, sources, owner, PS), what happened to it (calls, hand-offs, owner changes)
and the call form that logs the next call.

The summary comes from the cache at once (with this desk's queued calls laid over); the history is fetched from the
server in the background (`lead_detail`) and replaces the local part when it arrives. Offline, the view shows the
cached summary and this desk's own calls, and says that the history needs the connection.

The call form is keyboard-first like the intake form: it opens prefilled with the lead's current state, Tab walks
the fields in the order of the call, Enter queues a `log_call` from any field (validated inline first), Esc goes back
to the list. Every status of the catalogue is offered (the intake form offers only the first-call ones).
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from PySide6.QtCore import QDate, QEvent, QObject, QSize, Qt, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QFormLayout,
    QFrame,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from crm_desktop.core import phone as phones
from crm_desktop.core.api import AuthExpired, Retry
from crm_desktop.core.models import LeadSummary, Op, OutboxItem, OutboxState
from crm_desktop.core.store import StoreError
from crm_desktop.core.worklist import desk_today
from crm_desktop.ui.session import DeskSession

log = logging.getLogger(__name__)

DESK_TZ = ZoneInfo("Asia/Kolkata")  # the server reads a follow-up time without an offset in this zone
HISTORY_OFFLINE = "History needs the connection — showing what this desk knows."
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _local(text: str | None) -> str:
    if not text:
        return "—"
    try:
        if len(text) <= 10:
            return date.fromisoformat(text).strftime("%d %b %Y")
        return datetime.fromisoformat(text).astimezone().strftime("%d %b %Y %H:%M")
    except ValueError:
        return text


class Choice(QComboBox):
    """An editable combo whose value must be one of its items (blank allowed when optional)."""

    def __init__(self, optional: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._optional = optional
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._data: list[Any] = []

    def set_choices(self, values: list[str], data: list[Any] | None = None) -> None:
        current = self.value()
        self.blockSignals(True)
        self.clear()
        self._data = []
        if self._optional:
            self.addItem("")
            self._data.append(None)
        self.addItems(values)
        self._data.extend(data if data is not None else values)
        self.blockSignals(False)
        self.set_value(current)

    def value(self) -> str | None:
        text = self.currentText().strip()
        if not text:
            return None
        for i in range(self.count()):
            if self.itemText(i).casefold() == text.casefold():
                return self.itemText(i)
        return text

    def value_data(self) -> Any:
        text = self.value()
        for i in range(self.count()):
            if self.itemText(i) == text:
                return self._data[i] if i < len(self._data) else text
        return None

    def is_valid(self) -> bool:
        v = self.value()
        return (v is None and self._optional) or (v is not None and self.findText(v) >= 0)

    def set_value(self, value: str | None) -> None:
        at = self.findText(value or "", Qt.MatchFlag.MatchFixedString) if value or self._optional else -1
        self.setCurrentIndex(at)
        if at < 0:
            self.setEditText(value or "")

    def set_by_data(self, data: Any) -> None:
        for i, d in enumerate(self._data):
            if d == data and data is not None:
                self.setCurrentIndex(i)
                return
        self.set_value(None)


class CallForm(QWidget):
    """The call's fields. Signals: submitted(dict call, dict meta) on Enter with a valid form; cancelled() on Esc."""

    submitted = Signal(dict, dict)
    cancelled = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._catalog: dict[str, Any] = {}
        self.lead_status = Choice()
        self.category = Choice(optional=True)
        self.model_box = Choice(optional=True)
        self.final_status = Choice()
        self.follow_date = QDateEdit()
        self.follow_date.setCalendarPopup(True)
        self.follow_date.setDisplayFormat("dd MMM yyyy")
        self.follow_time = QLineEdit()
        self.follow_time.setPlaceholderText("HH:MM (optional: a call-back)")
        self.follow_time.setMaxLength(5)
        self.remark = QLineEdit()
        self.ps = Choice(optional=True)
        self.test_drive = QCheckBox("Test drive done")
        self.error = QLabel()
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        self.error.hide()
        self.log_button = QPushButton("Log call (Enter)")
        self.log_button.setObjectName("logCall")
        self.log_button.clicked.connect(self.submit)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        for label, field in (
            ("&Status", self.lead_status), ("Cate&gory", self.category), ("&Model", self.model_box),
            ("Fi&nal status", self.final_status), ("Follow-&up date", self.follow_date),
            ("Call-back &time", self.follow_time), ("&Remark", self.remark), ("&PS hand-off", self.ps),
        ):  # fmt: skip
            lbl = QLabel(label)
            lbl.setBuddy(field)
            form.addRow(lbl, field)
        form.addRow("", self.test_drive)
        form.addRow(self.error)
        form.addRow(self.log_button)
        self.final_status.currentTextChanged.connect(self._on_rules_changed)
        self.lead_status.currentTextChanged.connect(self._on_rules_changed)
        for w in self.fields():
            w.installEventFilter(self)
            edit = w.lineEdit() if isinstance(w, QComboBox) else None
            if edit is not None:
                edit.installEventFilter(self)
        self._branch: str | None = None
        self._current_ps: str | None = None

    def fields(self) -> list[QWidget]:
        return [self.lead_status, self.category, self.model_box, self.final_status, self.follow_date,
                self.follow_time, self.remark, self.ps, self.test_drive, self.log_button]  # fmt: skip

    def set_catalog(self, catalog: dict[str, Any]) -> None:
        self._catalog = catalog
        # Every status: the later ones of a lead's life (Booked, Retailed, Test Drive, ...) belong to this form.
        self.lead_status.set_choices([s["name"] for s in catalog.get("lead_statuses", [])])
        self.category.set_choices(list(catalog.get("lead_categories", ["Hot", "Warm", "Cold"])))
        self.model_box.set_choices(list(catalog.get("models", [])))
        self.final_status.set_choices(list(catalog.get("final_statuses", ["Pending", "Won", "Lost"])))
        self._set_ps_choices()

    def _set_ps_choices(self) -> None:
        people = [p for p in self._catalog.get("ps", []) if self._branch is None or p.get("branch") == self._branch]
        self.ps.set_choices([f"{p['name']} ({p.get('branch') or '—'})" for p in people], [p for p in people])

    def prefill(self, lead: LeadSummary) -> None:
        """The lead's current state, so an unchanged field stays as it is."""
        self._branch = lead.branch
        self._set_ps_choices()
        # A value the catalogue no longer offers (a retired model) is left blank rather than blocking Enter.
        current = (
            (self.lead_status, lead.lead_status),
            (self.category, lead.lead_category),
            (self.model_box, lead.model_interested),
            (self.final_status, lead.final_status or "Pending"),
        )
        for box, value in current:
            box.set_value(value if value and box.findText(value) >= 0 else None)
        if self.final_status.value() is None:
            self.final_status.set_value("Pending")
        today = desk_today()
        follow = today + timedelta(days=1)
        if lead.follow_up_date:
            try:
                follow = max(date.fromisoformat(lead.follow_up_date[:10]), today)
            except ValueError:
                pass
        self.follow_date.setDate(QDate(follow.year, follow.month, follow.day))
        self.follow_time.setText("")
        if lead.follow_up_at:
            try:
                at = datetime.fromisoformat(lead.follow_up_at).astimezone(DESK_TZ)
                if at.date() >= today:
                    self.follow_time.setText(at.strftime("%H:%M"))
            except ValueError:
                pass
        self.remark.clear()
        self.ps.set_value(None)
        self.ps.set_by_data(next((p for p in self._catalog.get("ps", []) if p.get("email") == lead.ps_email), None))
        self._current_ps = lead.ps_email
        self.test_drive.setChecked(bool(lead.test_drive_done))
        self.error.hide()
        self._on_rules_changed()

    def _on_rules_changed(self, *_: Any) -> None:
        pending = (self.final_status.value() or "Pending") == "Pending"
        self.follow_date.setEnabled(pending)
        self.follow_time.setEnabled(pending)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                popup = isinstance(watched, QComboBox) and watched.view().isVisible()
                if not popup:
                    self.submit()
                    return True
            if event.key() == Qt.Key.Key_Escape:
                self.cancelled.emit()
                return True
        return False

    def validate(self) -> str | None:
        if not self.lead_status.is_valid():
            return "Choose the call's status from the list."
        for box, what in ((self.category, "category"), (self.model_box, "model"), (self.final_status, "final status"),
                          (self.ps, "PS")):  # fmt: skip
            if not box.is_valid():
                return f"Choose the {what} from the list (or leave it blank)."
        time_text = self.follow_time.text().strip()
        if time_text and not _TIME.match(time_text):
            return "Call-back time is HH:MM (24-hour), or blank."
        return None

    def call(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(log_call payload without the lead, meta for the desk's own display)."""
        final = self.final_status.value() or "Pending"
        call: dict[str, Any] = {
            "called_at": datetime.now(DESK_TZ).isoformat(timespec="seconds"),
            "lead_status": self.lead_status.value(),
            "final_status": final,
            "test_drive_done": self.test_drive.isChecked(),
        }
        if self.category.value():
            call["lead_category"] = self.category.value()
        if self.model_box.value():
            call["model_interested"] = self.model_box.value()
        if final == "Pending":
            d = self.follow_date.date()
            day = date(d.year(), d.month(), d.day()).isoformat()
            time_text = self.follow_time.text().strip()
            if time_text:
                hh, mm = time_text.split(":")
                call["follow_up_at"] = f"{day}T{int(hh):02d}:{mm}:00+05:30"
            else:
                call["follow_up_at"] = day
        if self.remark.text().strip():
            call["remark"] = self.remark.text().strip()
        meta: dict[str, Any] = {}
        person = self.ps.value_data()
        if isinstance(person, dict) and person.get("email") != self._current_ps:
            call["ps_email"] = person["email"]  # a hand-off: only when the PS changes
            meta["ps_name"] = person.get("name")
        return call, meta

    @Slot()
    def submit(self) -> None:
        problem = self.validate()
        if problem:
            self.error.setText(problem)
            self.error.show()
            return
        self.error.hide()
        call, meta = self.call()
        self.submitted.emit(call, meta)


class _Timeline(QListWidget):
    """The history list: it takes the room left over and asks for no more than its minimum. Where the lead view
    scrolls (beside the drill-down list) its usual wish for 190 px pushed the call form out of sight."""

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), self.minimumSizeHint().height())


class LeadView(QFrame):
    """Signals: call_submitted(OutboxItem, seq 0) on Enter, before the call is on disk (the lists show it at once;
    the form is ready for the next lead); call_queued(OutboxItem) once it is on disk; call_not_saved(OutboxItem,
    object exc) when the commit failed (the item holds the call: This shift lists it as "Not saved"); closed() on
    Esc; history_shown(bool from_server) each time the timeline was drawn (from the server's lead_detail, or from
    this desk alone)."""

    call_submitted = Signal(object)
    call_queued = Signal(object)
    call_not_saved = Signal(object, object)
    closed = Signal()
    history_shown = Signal(bool)

    def __init__(self, session: DeskSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("leadView")
        self.session = session
        self.lead: LeadSummary | None = None
        self._generation = 0
        self._saving_ref: str | None = None  # the last call logged here, until its commit's outcome is shown
        self.title = QLabel("Select a lead and press Enter")
        self.title.setObjectName("sectionTitle")
        self.title.setWordWrap(True)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.history_note = QLabel()
        self.history_note.setObjectName("historyNote")
        self.history_note.setWordWrap(True)
        self.timeline = _Timeline()
        self.timeline.setObjectName("timeline")
        self.timeline.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.form = CallForm()
        self.form.submitted.connect(self._on_form_submitted)
        self.form.cancelled.connect(self.closed)
        self.status = QLabel()
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.summary)
        layout.addWidget(self.history_note)
        layout.addWidget(self.timeline, 1)
        call_title = QLabel("Log this call")
        call_title.setObjectName("sectionTitle")
        layout.addWidget(call_title)
        layout.addWidget(self.form)
        layout.addWidget(self.status)
        self.form.setEnabled(False)

    def set_catalog(self, catalog: dict[str, Any]) -> None:
        self.form.set_catalog(catalog)

    # -- showing a lead -------------------------------------------------------------------------------------------

    def show_lead(self, lead: LeadSummary) -> None:
        """Summary at once; this desk's calls and the server's history as they arrive."""
        self._generation += 1
        gen = self._generation
        self.lead = lead
        self._render_summary(lead)
        self.form.prefill(lead)
        self.form.setEnabled(True)
        self.status.clear()
        self.timeline.clear()
        self.history_note.setText("Loading the history…" if lead.on_server else
                                  "Not on the server yet: queued on this desk.")  # fmt: skip
        self._local_items: list[OutboxItem] = []
        self._detail: dict[str, Any] | None = None
        # Bound methods behind partial (not lambdas): the workers drop an answer for a lead view already deleted (a
        # closed drill-down dialog), and a generation drops one for a lead no longer shown.
        self.session.lead_local(lead.phone, partial(self._on_local, gen))
        if lead.on_server:
            self.session.fetch_lead_detail(
                lead.lead_id, partial(self._on_detail, gen), partial(self._on_detail_failed, gen)
            )

    def focus_call_form(self) -> None:
        self.form.lead_status.setFocus()
        edit = self.form.lead_status.lineEdit()
        if edit is not None:
            edit.selectAll()

    def _render_summary(self, lead: LeadSummary) -> None:
        self.title.setText(f"{lead.customer_name} — {lead.uid or 'not on the server yet'}")
        sources = ", ".join(f"{s.source} / {s.sub_source}" for s in lead.sources) or "—"
        status = " / ".join(x for x in (lead.lead_status, lead.lead_category, lead.final_status) if x)
        follow = _local(lead.follow_up_at) if lead.follow_up_at else _local(lead.follow_up_date)
        unsent = f"\n{lead.unsent} change(s) from this desk not sent yet." if lead.unsent else ""
        self.summary.setText(
            f"{phones.display(lead.phone)}   ·   {status or 'no call yet'}   ·   model {lead.model_interested or '—'}\n"
            f"Owner: {lead.cre_name or '—'}   ·   PS: {lead.ps_name or '—'}   ·   Branch: {lead.branch or '—'}\n"
            f"Sources: {sources}\n"
            f"Created {_local(lead.created_at)}   ·   calls {lead.call_count}   ·   last {_local(lead.last_call_at)}"
            f"   ·   next follow-up {follow}{unsent}"
        )

    def _on_local(self, gen: int, result: tuple[LeadSummary | None, list[OutboxItem]]) -> None:
        if gen != self._generation:
            return
        lead, items = result
        if lead is not None:
            self.lead = lead
            self._render_summary(lead)
        self._local_items = [i for i in items if i.op is Op.LOG_CALL or (i.op is Op.CREATE_LEAD)]
        self._render_timeline()

    def _on_detail(self, gen: int, detail: dict[str, Any]) -> None:
        if gen != self._generation:
            return
        self._detail = detail
        self.history_note.setText("")
        self._render_timeline()

    def _on_detail_failed(self, gen: int, exc: BaseException) -> None:
        if gen != self._generation:
            return
        if isinstance(exc, Retry | AuthExpired):
            self.history_note.setText(HISTORY_OFFLINE)
        else:
            log.warning("lead_detail failed: %s", exc)
            self.history_note.setText(f"The history could not be loaded: {exc}")
        self._render_timeline()

    def _render_timeline(self) -> None:
        """Server history (when there) + this desk's items the server has not answered yet, oldest first."""
        events: list[tuple[str, str]] = []
        detail = self._detail
        if detail is not None:
            for s in detail.get("sources", []):
                events.append((str(s.get("at") or ""), f"Source {s.get('source')} / {s.get('sub_source')}"
                               f" ({s.get('cre_name') or '—'})"))  # fmt: skip
            for c in detail.get("calls", []):
                applied = "" if c.get("applied", True) else " — recorded; a newer update stands"
                follow = _local(c.get("follow_up_at") or c.get("follow_up_date"))
                events.append((str(c.get("called_at") or ""),
                               f"Call #{c.get('attempt_no')} by {c.get('cre_name') or '—'}: {c.get('lead_status')}"
                               f" / {c.get('final_status')}, follow-up {follow}"
                               f"{'; ' + c['remark'] if c.get('remark') else ''}{applied}"))  # fmt: skip
            for h in detail.get("ps_handoffs", []):
                events.append((str(h.get("at") or ""), f"Handed to PS {h.get('ps_name')} ({h.get('branch') or '—'})"
                               f" by {h.get('by_name') or '—'}"))  # fmt: skip
            for o in detail.get("owner_changes", []):
                events.append((str(o.get("at") or ""), f"Owner {o.get('from_name') or '—'} → {o.get('to_name')}"
                               f" by {o.get('by_name') or '—'}"))  # fmt: skip
        for item in self._local_items:
            if item.state is OutboxState.DONE and detail is not None:
                continue  # the server's history holds it
            if item.op is Op.LOG_CALL:
                what = f"{item.payload.get('lead_status')} / {item.payload.get('final_status', 'Pending')}"
                when = str(item.payload.get("called_at") or "")
                state = {OutboxState.DONE: "sent", OutboxState.PARKED: f"refused: {item.last_error}"}.get(
                    item.state, "not sent yet"
                )
                events.append((when, f"Call from this desk: {what} ({state})"))
            elif item.state is not OutboxState.DONE:
                events.append((datetime.fromtimestamp(item.created_at).astimezone().isoformat(),
                               "Lead created on this desk (not sent yet)"))  # fmt: skip
        events.sort(key=lambda e: _sort_key(e[0]))
        self.timeline.clear()
        for when, text in events:
            self.timeline.addItem(f"{_local(when)}  {text}")
        self.history_shown.emit(detail is not None)

    # -- logging a call -------------------------------------------------------------------------------------------

    @Slot(dict, dict)
    def _on_form_submitted(self, call: dict[str, Any], meta: dict[str, Any]) -> None:
        lead = self.lead
        if lead is None:
            return
        body = dict(call)
        if lead.on_server:
            body["lead_id"] = lead.lead_id
        else:
            body["lead_ref"] = lead.lead_ref
        meta = {**meta, "customer_name": lead.customer_name, "phone": lead.phone}
        # Enter does not wait for the outbox's fsync (the intake form's path): the call is laid over the lists at
        # once and the list takes the focus; the commit's outcome comes back below.
        item = self.session.enqueue_call(
            body, lead.phone, meta, self._on_call_queued, lambda exc: self._on_call_failed(item, exc)
        )
        self.status.setText("Saving the call…")
        self._saving_ref = item.client_ref
        self.call_submitted.emit(item)

    def _on_call_queued(self, item: OutboxItem) -> None:
        if self._saving_ref == item.client_ref:
            self.status.setText("Call queued — it is sent in the background.")
        self.call_queued.emit(item)

    def _on_call_failed(self, item: OutboxItem, exc: BaseException) -> None:
        if isinstance(exc, StoreError):  # logged where This shift marks it (main_window)
            self.status.setText(f"The call to {item.label} was NOT saved: {exc} It is listed in This shift as "
                                "Not saved: select it there and press Edit and resend.")  # fmt: skip
        self.call_not_saved.emit(item, exc)
        if not isinstance(exc, StoreError):
            raise exc  # a bug, not the disk: the error dialog gets the details (the call is safe in This shift)


def _sort_key(when: str) -> float:
    try:
        return datetime.fromisoformat(when).timestamp()
    except ValueError:
        return 0.0


def scrolling_pane(view: LeadView) -> QScrollArea:
    """The lead view as a splitter pane beside a list: it scrolls rather than squeezes. A lead's wrapped summary made
    the window taller than a 720 px laptop (747 px in My leads, 741 in the drill list) and still cut the call form's
    fields; Tab scrolls the next field into sight."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(view)
    area.setMinimumWidth(view.minimumSizeHint().width() + area.verticalScrollBar().sizeHint().width())
    return area
