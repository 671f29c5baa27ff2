"""Domain types shared by the store, the sync worker and the UI.

Plain dataclasses without behaviour that needs Qt or SQLite, so a table model, a worker and a benchmark can all hold
them. The lead summary is what the CRE needs at the moment of a call (DESIGN.md, domain.md "Duplicates"): enough to
treat the caller as a returning customer, nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class SourceSeen:
    """One source/sub-source recorded against a lead; the lead's first one is where it originally came from."""

    source: str
    sub_source: str
    at: str | None = None  # ISO timestamp as the server sent it; only displayed, so it stays a string


@dataclass(frozen=True, slots=True)
class LeadSummary:
    """A cached lead, keyed by its E.164 phone: what the duplicate banner shows while the CRE is still typing."""

    lead_id: int
    phone: str
    uid: str
    customer_name: str
    sources: tuple[SourceSeen, ...]
    lead_status: str | None
    final_status: str
    cre_name: str | None
    ps_name: str | None
    branch: str | None
    created_at: str
    follow_up_date: str | None

    @property
    def original_source(self) -> SourceSeen | None:
        return self.sources[0] if self.sources else None

    def has_source(self, source: str, sub_source: str) -> bool:
        """True when submitting this source/sub-source would be an exact duplicate rather than an added source.

        Exact comparison: the catalogue is the single source of spellings, so a near-miss is a different value.
        """
        return any(s.source == source and s.sub_source == sub_source for s in self.sources)


class OutboxState(StrEnum):
    """Where a queued lead is in its life. A StrEnum so it is stored and compared as the plain word."""

    QUEUED = "queued"  # waiting to be sent (possibly in backoff until next_attempt_at)
    SENDING = "sending"  # handed to the sender; back to queued on start if the app died mid-send
    DONE = "done"  # the server answered (created / added_source / exact_duplicate); answer holds it
    PARKED = "parked"  # the server refused it; waits for the CRE to edit-and-resend or discard it
    DISCARDED = "discarded"  # the CRE chose to drop a parked lead; kept, never deleted silently
    REPLACED = "replaced"  # a parked lead edited and resent under a new client_ref (see replaced_by)


#: States of a lead still waiting to be sent.
PENDING_STATES: frozenset[OutboxState] = frozenset({OutboxState.QUEUED, OutboxState.SENDING})


@dataclass(slots=True)
class OutboxItem:
    """A lead typed by the CRE and kept locally until the server has answered for it.

    `payload` is the `lead` object for `create_lead`, with `client_ref` inside it (the server reads the idempotency key
    from there). Times are epoch seconds.
    """

    seq: int  # queue order: the order leads were typed in
    client_ref: str
    payload: dict[str, Any]
    state: OutboxState
    attempts: int
    last_error: str | None
    answer: dict[str, Any] | None
    created_at: float
    updated_at: float
    next_attempt_at: float
    label: str  # customer name + masked phone, safe to show and to log
    replaced_by: str | None = field(default=None)  # client_ref of the edited resend, when state is REPLACED
