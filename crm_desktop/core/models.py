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
    # The lead's life (migration 005's feed columns; None/0 from an older server or a lead not yet on the server).
    cre_id: str | None = None
    lead_category: str | None = None
    model_interested: str | None = None
    follow_up_at: str | None = None  # ISO timestamp, only when a time of day was given (a call-back)
    last_call_at: str | None = None
    call_count: int = 0
    won_at: str | None = None
    lost_at: str | None = None
    updated_at: str | None = None
    test_drive_done: bool | None = None
    ps_email: str | None = None
    # This desk's queue laid over the cached row: operations not yet answered by the server change what is shown.
    unsent: int = 0  # queued operations about this lead (0: the row is what the server said)
    lead_ref: str | None = None  # client_ref of the queued create_lead, for a lead the server does not know yet

    @property
    def on_server(self) -> bool:
        """False for a lead that exists only as a queued create_lead on this desk (lead_id is then 0)."""
        return self.lead_id > 0

    @property
    def original_source(self) -> SourceSeen | None:
        return self.sources[0] if self.sources else None

    def has_source(self, source: str, sub_source: str) -> bool:
        """True when submitting this source/sub-source would be an exact duplicate rather than an added source.

        Exact comparison: the catalogue is the single source of spellings, so a near-miss is a different value.
        """
        return any(s.source == source and s.sub_source == sub_source for s in self.sources)


class Op(StrEnum):
    """The RPC an outbox item calls. The value is the function's name; `param` is its one named parameter."""

    CREATE_LEAD = "create_lead"
    LOG_CALL = "log_call"

    @property
    def param(self) -> str:
        return _OP_PARAMS[self]


_OP_PARAMS: dict[Op, str] = {Op.CREATE_LEAD: "lead", Op.LOG_CALL: "call"}


class OutboxState(StrEnum):
    """Where a queued operation is in its life. A StrEnum so it is stored and compared as the plain word."""

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
    """An operation typed by the CRE (a new lead, a call) kept locally until the server has answered for it.

    `payload` is the RPC's one parameter (`lead` for create_lead, `call` for log_call), with `client_ref` inside it
    (the server reads the idempotency key from there). Times are epoch seconds. Items with the same `lead_key` (the
    lead's E.164 phone) are sent in `seq` order; `lead_ref` names the create_lead a call on a not-yet-created lead
    waits for. `meta` is what the desk alone needs to show the item (never sent): e.g. the PS's name.
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
    op: Op = Op.CREATE_LEAD
    lead_key: str | None = None  # the lead's phone (E.164): per-lead order
    lead_ref: str | None = None  # client_ref of the create_lead this item needs first
    meta: dict[str, Any] = field(default_factory=dict)
