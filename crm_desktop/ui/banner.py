"""The returning-caller banner: what the cache knows about the number being typed, in a place that never moves.

It used to appear on the completing keystroke and push the whole form down by ~130 px, so the next Tab target moved
under the CRE's eyes; on an exact duplicate its verdict wrapped and cut the status line in half; at 900 px it was
squeezed away. Now it is an area of fixed height, always there (a quiet hint while no known lead is shown), tall
enough for its longest content at the narrowest supported window (900 px): the form below it never moves. Lines are
ordered by what the CRE acts on: who, status and next follow-up (overdue flagged), owner/PS/branch, sources, and the
verdict that says what Enter will store."""

from __future__ import annotations

from datetime import date, datetime

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout, QWidget

from crm_desktop.core.models import LeadSummary

#: Rich text, so the hint is grey without a style rule on the labels (those would need a re-polish per lookup).
HINT = "<span style='color:#98a2b3'>A returning caller shows here as the number is completed.</span>"
LINES = 6  # under the title: status, people, sources (one wraps at 900 px) + the verdict (2)


class DuplicateBanner(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("duplicateBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 6, 12, 6)
        layout.setSpacing(2)
        self.title = QLabel()
        self.title.setObjectName("bannerTitle")
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verdict = QLabel()
        self.verdict.setObjectName("bannerVerdict")
        self.verdict.setWordWrap(True)
        for w in (self.title, self.details, self.verdict):
            w.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # wrap, never widen the form
            layout.addWidget(w)
        layout.addStretch(1)
        self.lead: LeadSummary | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._fix_height()
        self.clear()

    def _fix_height(self) -> None:
        line = self.fontMetrics().lineSpacing()
        title = self.title.fontMetrics().lineSpacing()
        height = title + LINES * line + 6 * 2 + 2 * 3 + 4
        if height != getattr(self, "_fixed", None):  # FontChange comes often (each re-polish); a resize rarely
            self._fixed = height
            self.setFixedHeight(height)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange and getattr(self, "verdict", None) is not None:
            self._fix_height()  # a style sheet applied later changes the font metrics

    @property
    def showing_lead(self) -> bool:
        return self.lead is not None

    def content_height(self) -> int:
        """The height its text needs at the current width (tests compare it with height())."""
        layout = self.layout()
        assert layout is not None
        margins = layout.contentsMargins()
        width = self.width() - margins.left() - margins.right()
        needed = margins.top() + margins.bottom()
        shown = [w for w in (self.title, self.details, self.verdict) if w.text()]
        for w in shown:
            needed += w.heightForWidth(width) if w.wordWrap() else w.sizeHint().height()
        return needed + layout.spacing() * (len(shown) - 1)

    def show_lead(self, lead: LeadSummary, today: date | None = None) -> None:
        self.lead = lead
        today = today or date.today()
        self.title.setText(f"Call on {lead.uid} — {lead.customer_name}")
        status = " / ".join(x for x in (lead.lead_status, lead.final_status) if x) or "—"
        follow = "no follow-up"
        if lead.follow_up_date:
            follow = f"next follow-up {_human_date(lead.follow_up_date)}"
            try:
                due = date.fromisoformat(lead.follow_up_date[:10])
            except ValueError:
                due = None
            if due is not None and due < today and lead.final_status == "Pending":
                days = (today - due).days
                follow += f" — overdue by {days} day{'s' if days != 1 else ''}"
        sources = ", ".join(f"{s.source} / {s.sub_source}" for s in lead.sources) or "—"
        self.details.setTextFormat(Qt.TextFormat.PlainText)  # names and sources are data, never markup
        self.details.setText(
            f"Status: {status} · {follow}\n"
            f"Owner: {lead.cre_name or '—'} · PS: {lead.ps_name or '—'} · {lead.branch or 'no branch'}\n"
            f"Sources: {sources} · since {_human_date(lead.created_at)}"
        )
        # The look ("kind") is set once, with the verdict the form writes next (one re-polish per lookup).

    def set_verdict(self, text: str, kind: str) -> None:
        """What Enter will store for this caller (the form decides; it knows the status and the source)."""
        if self.lead is None:
            return
        self.verdict.setText(text)
        self._set_kind(kind)

    def clear(self) -> None:
        self.lead = None
        self.title.setText("")  # empty labels keep their place: showing and hiding them cost ~8 ms a lookup
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setText(HINT)
        self.verdict.setText("")
        self._set_kind("empty")

    def _set_kind(self, kind: str) -> None:
        if self.property("kind") != kind:  # a re-polish costs about a millisecond: only when the look changes
            self.setProperty("kind", kind)
            self.style().unpolish(self)
            self.style().polish(self)


def verdict(
    lead: LeadSummary, source: str | None, sub: str | None, status: str | None, follow: str, remark: bool
) -> tuple[str, str]:
    """(the banner's last line, its kind): exactly what Enter will store for this known caller, as create_lead
    stores it — a new source adds it and the call when a status is given; an exact duplicate stores only the call,
    and without a call status nothing at all (the CRE must not believe the call was logged)."""
    if source is None or sub is None:
        return "Choose the source: then this line says what Enter will store.", "new_source"
    call = ""
    if status is not None:
        call = f"this call ({status}{', ' + follow if follow else ''}{', remark' if remark else ''})"
    if lead.has_source(source, sub):
        if status is None:
            return (f"Exact duplicate ({source} / {sub} is already recorded) and no call status: Enter stores "
                    "nothing. Choose a call status to log this call."), "exact"  # fmt: skip
        return (
            f"Exact duplicate ({source} / {sub} is already recorded): Enter stores only {call} on {lead.uid}.",
            "exact",
        )
    text = f"New source: Enter adds {source} / {sub} to {lead.uid}"
    text += f" and stores {call}." if call else " (no call status: no call is logged)."
    return text, "new_source"


def _human_date(text: str | None) -> str:
    if not text:
        return "—"
    try:
        if len(text) == 10:
            return date.fromisoformat(text).strftime("%d %b %Y")
        return datetime.fromisoformat(text).astimezone().strftime("%d %b %Y")
    except ValueError:
        return text
