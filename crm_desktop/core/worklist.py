"""A CRE's lists — Fresh, Due today, Overdue, Call-backs, Pending, With PS, Won / Lost — as local SQL on the cache,
with this desk's own queue laid over the cached rows.

Why local: the replaced system read every row of the CRE on each load (10 s) and rolled overdue follow-ups forward
to today; here the feed already brings each lead's owner, follow-up, final status, last call and call count, so a
list is one indexed query on this computer, instant and offline. Overdue leads stay overdue ("overdue by N days").

The overlay: operations this desk queued (a call just logged, a lead created offline) change what the lists show at
once, before the server has them. They are few (tens; hundreds after a long outage), so they are folded in Python into
"overlaid" rows and handed to SQLite as one JSON parameter: each query reads the cached rows of the list minus the
overlaid phones, plus the overlaid rows that belong to the list. An answered item stays laid over the cache until the
feed has brought the lead at least that far (its call count), so a lead never jumps back for a moment.

Operations still being saved: Enter on the call form does not wait for the outbox's fsync (tens of ms, seconds on a
busy disk). Until the writer thread has committed a call, the desk holds it in memory (`saving`) and every query
here takes those items too, laid over exactly like queued ones; an item both in memory and on disk (committed while
the query ran) counts once, by client_ref. Readers take the in-memory items *before* reading the outbox, so an item
is always in one of the two: the desk drops it from memory only after its commit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from crm_desktop.core.cache import SUMMARY_COLUMNS, CacheStore, summary_from_row
from crm_desktop.core.db import encode_json
from crm_desktop.core.models import PENDING_STATES, LeadSummary, Op, OutboxItem, OutboxState
from crm_desktop.core.outbox import OutboxStore

log = logging.getLogger(__name__)


class WorkList(StrEnum):
    """The lists of the My leads tab, in the order the filter bar shows them."""

    FRESH = "fresh"
    DUE_TODAY = "due_today"
    OVERDUE = "overdue"
    CALLBACKS = "callbacks"
    PENDING = "pending"
    WITH_PS = "with_ps"
    WON_LOST = "won_lost"

    @property
    def label(self) -> str:
        return _TITLES[self]


_TITLES = {
    WorkList.FRESH: "Fresh",
    WorkList.DUE_TODAY: "Due today",
    WorkList.OVERDUE: "Overdue",
    WorkList.CALLBACKS: "Call-backs",
    WorkList.PENDING: "Pending",
    WorkList.WITH_PS: "With PS",
    WorkList.WON_LOST: "Won / Lost",
}

RECENT_DAYS = 30  # Won / Lost: decided in the last 30 days

# Each list's condition over a row of lead_cache or of the overlay (the same column names). Parameters: :today
# ('YYYY-MM-DD', the desk's local day) and :recent (ISO timestamp, RECENT_DAYS ago).
_WHERE: dict[WorkList, str] = {
    # Never called: imported campaign leads, leads reassigned to me before anyone called them.
    WorkList.FRESH: "call_count = 0 AND final_status = 'Pending'",
    WorkList.DUE_TODAY: "final_status = 'Pending' AND follow_up_date = :today",
    WorkList.OVERDUE: "final_status = 'Pending' AND follow_up_date < :today",
    # A follow-up with a time of day, today or later (an earlier one is Overdue).
    WorkList.CALLBACKS: "final_status = 'Pending' AND follow_up_at IS NOT NULL AND follow_up_date >= :today",
    WorkList.PENDING: "final_status = 'Pending'",
    WorkList.WITH_PS: "final_status = 'Pending' AND (ps_email IS NOT NULL OR ps_name IS NOT NULL)",
    WorkList.WON_LOST: (
        "final_status IN ('Won', 'Lost') AND coalesce(won_at, lost_at, updated_at, created_at) >= :recent"
    ),
}

# Sortable columns: name → SQL expression (never user text in SQL). Each list has its own natural order.
SORT_KEYS: dict[str, str] = {
    "customer_name": "customer_name COLLATE NOCASE",
    "phone": "phone",
    "uid": "uid",
    "lead_status": "lead_status",
    "follow_up": "follow_up_date, follow_up_at",
    "last_call_at": "last_call_at",
    "call_count": "call_count",
    "created_at": "created_at",
    "source": "sources",
    "final_status": "final_status",
}
DEFAULT_SORT: dict[WorkList, tuple[str, bool]] = {
    WorkList.FRESH: ("created_at", True),  # newest first: a campaign's leads are best called while warm
    WorkList.DUE_TODAY: ("follow_up", False),
    WorkList.OVERDUE: ("follow_up", False),  # the most overdue first
    WorkList.CALLBACKS: ("follow_up", False),
    WorkList.PENDING: ("follow_up", False),
    WorkList.WITH_PS: ("follow_up", False),
    WorkList.WON_LOST: ("last_call_at", True),
}

# The columns of my_leads' index (cache.py migration 3), and the list size above which a sort by any other column
# reads my_leads straight through (worklist_page).
_MY_LIST_INDEX = frozenset({"final_status", "follow_up_date", "call_count", "follow_up_at", "ps_name", "ps_email"})
SCAN_MY_LEADS_ABOVE = 2000

_COLUMN_NAMES = [c.strip() for c in SUMMARY_COLUMNS.split(",")]
# The overlay's rows as SQL: one JSON array per row, in SUMMARY_COLUMNS order, then unsent and lead_ref.
_OVERLAY_SELECT = ", ".join(
    f"json_extract(value, '$[{i}]') AS {name}" for i, name in enumerate([*_COLUMN_NAMES, "unsent", "lead_ref"])
)
_OVERLAY_CTE = f"overlay AS (SELECT {_OVERLAY_SELECT} FROM json_each(:overlay))"
_ROWS = (
    f"SELECT {SUMMARY_COLUMNS}, 0 AS unsent, NULL AS lead_ref FROM {{table}} "
    "WHERE cre_id = :cre AND ({where}) AND phone NOT IN (SELECT phone FROM overlay) "
    f"UNION ALL SELECT {SUMMARY_COLUMNS}, unsent, lead_ref FROM overlay WHERE cre_id = :cre AND ({{where}})"
)


DESK_TZ = ZoneInfo("Asia/Kolkata")  # the server's desk_tz(): follow-up days are days in India


def desk_today() -> date:
    """Today as the desk's follow-up dates count days (India), whatever this computer's time zone is."""
    return datetime.now(DESK_TZ).date()


def overdue_days(lead: LeadSummary, today: date) -> int:
    """Whole days a Pending lead's follow-up is past (0 when not overdue)."""
    if lead.final_status != "Pending" or not lead.follow_up_date:
        return 0
    try:
        due = date.fromisoformat(lead.follow_up_date[:10])
    except ValueError:
        return 0
    return max((today - due).days, 0)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _follow_up_parts(value: Any) -> tuple[str | None, str | None]:
    """A call's follow_up_at ("YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[...]") → (follow_up_date, follow_up_at)."""
    if not isinstance(value, str) or not value:
        return None, None
    return value[:10], (value if "T" in value else None)


def _fold_call(row: dict[str, Any], call: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    """What a queued call does to the lead, by the server's state rule: the call with the latest called_at sets the
    state; an older one only counts (it is stored and numbered, applied: false)."""
    called_at = str(call.get("called_at") or _now_iso())
    row["call_count"] = int(row.get("call_count") or 0) + 1
    newest = not row.get("last_call_at") or called_at >= str(row["last_call_at"])
    if not newest:
        return
    row["last_call_at"] = called_at
    row["lead_status"] = call.get("lead_status", row.get("lead_status"))
    for key in ("lead_category", "model_interested"):
        if key in call:
            row[key] = call[key]
    row["final_status"] = call.get("final_status") or "Pending"
    row["follow_up_date"], row["follow_up_at"] = _follow_up_parts(call.get("follow_up_at"))
    if call.get("ps_email"):
        row["ps_email"] = call["ps_email"]
        row["ps_name"] = meta.get("ps_name") or row.get("ps_name")
    if "test_drive_done" in call:
        row["test_drive_done"] = bool(call["test_drive_done"])
    if call.get("branch"):
        row["branch"] = call["branch"]
    if row["final_status"] == "Won":
        row["won_at"] = called_at
    elif row["final_status"] == "Lost":
        row["lost_at"] = called_at


def _new_lead_row(item: OutboxItem, me: Mapping[str, Any]) -> dict[str, Any]:
    """A lead that exists only as this desk's queued create_lead: lead_id 0, no UID yet, owned by this desk."""
    p = item.payload
    created = datetime.fromtimestamp(item.created_at, UTC).isoformat(timespec="seconds")
    return {
        "lead_id": 0,
        "phone": p.get("phone"),
        "uid": "",
        "customer_name": p.get("customer_name") or "",
        "sources": encode_json([{"source": p.get("source"), "sub_source": p.get("sub_source"), "at": created}]),
        "lead_status": None,
        "final_status": "Pending",
        "cre_name": me.get("full_name"),
        "ps_name": item.meta.get("ps_name"),
        "branch": p.get("branch"),
        "created_at": created,
        "follow_up_date": None,
        "cre_id": me.get("id"),
        "call_count": 0,
        "lead_ref": item.client_ref,
    }


def _create_as_call(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A create_lead's call part (status, follow-up, ...), as a log_call payload would say it."""
    call = {k: payload[k] for k in ("lead_status", "lead_category", "model_interested", "final_status",
                                    "ps_email", "test_drive_done", "branch", "called_at") if k in payload}  # fmt: skip
    follow = payload.get("follow_up_at") or payload.get("follow_up_date")
    if follow:
        call["follow_up_at"] = follow
    return call


def _row_dict(lead: LeadSummary) -> dict[str, Any]:
    row = {name: getattr(lead, name) for name in _COLUMN_NAMES if name != "sources"}
    row["sources"] = encode_json([{"source": s.source, "sub_source": s.sub_source, "at": s.at} for s in lead.sources])
    row["lead_ref"] = lead.lead_ref
    return row


def _server_row(row: dict[str, Any], lead: Mapping[str, Any]) -> None:
    """An answered item's `lead` summary (the server's state after it) over the row."""
    for name in _COLUMN_NAMES:
        if name in lead:
            value = lead[name]
            row[name] = encode_json(value) if name == "sources" and not isinstance(value, str) else value


class WorklistStore(CacheStore, OutboxStore):
    """The lists and the overlay; see the module docstring."""

    def _me(self) -> dict[str, Any]:
        return self.load_profile() or {}

    def overlay(self, lead_key: str | None = None, saving: Sequence[OutboxItem] = ()) -> dict[str, dict[str, Any]]:
        """phone → the lead as this desk's open and recently answered items make it (a dict of SUMMARY columns
        plus unsent and lead_ref). Only leads some item is about. `saving`: items not committed yet (the module
        docstring), after the stored ones; one already stored is not counted twice."""
        items = self.open_items(lead_key)
        if saving:
            stored = {i.client_ref for i in items}
            items = [*items, *(i for i in saving if i.client_ref not in stored
                               and (lead_key is None or i.lead_key == lead_key))]  # fmt: skip
        if not items:
            return {}
        me = self._me()
        rows: dict[str, dict[str, Any]] = {}
        for item in items:
            phone = item.lead_key
            if not phone:
                continue
            row = rows.get(phone)
            cached: LeadSummary | None = None
            if row is None:
                cached = self.lookup(phone)
                row = _row_dict(cached) if cached is not None else None
            if item.state is OutboxState.DONE:
                lead = (item.answer or {}).get("lead")
                if not isinstance(lead, dict):
                    continue
                if cached is not None and cached.call_count >= int(lead.get("call_count") or 0):
                    continue  # the feed has brought this lead at least this far
                if row is None:
                    row = {"lead_ref": None}
                _server_row(row, lead)
                row.setdefault("unsent", 0)
                rows[phone] = row
                continue
            if item.state not in PENDING_STATES:
                continue
            if item.op is Op.CREATE_LEAD:
                if row is None:
                    row = _new_lead_row(item, me)
                else:
                    sources = json.loads(row.get("sources") or "[]")
                    source = {"source": item.payload.get("source"), "sub_source": item.payload.get("sub_source")}
                    if not any(s.get("source") == source["source"] and s.get("sub_source") == source["sub_source"]
                               for s in sources):  # fmt: skip
                        sources.append({**source, "at": _now_iso()})
                        row["sources"] = encode_json(sources)
                if item.payload.get("lead_status"):
                    _fold_call(row, _create_as_call(item.payload), item.meta)
            elif item.op is Op.LOG_CALL:
                if row is None:
                    continue  # a call on a lead neither cached nor queued here: nothing to show it on
                _fold_call(row, item.payload, item.meta)
            row["unsent"] = int(row.get("unsent") or 0) + 1
            rows[phone] = row
        return rows

    @staticmethod
    def _overlay_param(rows: Mapping[str, dict[str, Any]]) -> str:
        return encode_json([[r.get(n) for n in (*_COLUMN_NAMES, "unsent", "lead_ref")] for r in rows.values()])

    @staticmethod
    def _lead(row: Sequence[Any]) -> LeadSummary:
        lead = summary_from_row(row)
        unsent, lead_ref = row[len(_COLUMN_NAMES)], row[len(_COLUMN_NAMES) + 1]
        if unsent or lead_ref:
            lead = replace(lead, unsent=int(unsent or 0), lead_ref=lead_ref)
        return lead

    def lookup_desk(self, e164: str, saving: Sequence[OutboxItem] = ()) -> LeadSummary | None:
        """The duplicate banner's lookup: the cached lead with this desk's queue laid over it, or a lead this desk
        queued and the server has not answered yet (a number queued two minutes ago is not a "new number")."""
        cached = self.lookup(e164)
        rows = self.overlay(e164, saving)
        row = rows.get(e164)
        if row is None:
            return cached
        return self.lead_from_overlay(row)

    def lead_from_overlay(self, row: dict[str, Any]) -> LeadSummary:
        """A LeadSummary from one of `overlay()`'s rows."""
        return self._lead([row.get(n) for n in (*_COLUMN_NAMES, "unsent", "lead_ref")])

    def worklist_counts(self, cre_id: str, today: date, saving: Sequence[OutboxItem] = ()) -> dict[WorkList, int]:
        """How many leads each list holds for this CRE, with the overlay.

        Per list: the cached rows that meet its condition (an index-only count on my_leads), minus the cached
        versions of the overlaid leads that meet it, plus the overlaid versions that meet it — so no count walks
        the rows themselves to exclude the few leads the queue changes."""
        table = self._table(cre_id)
        # my_leads holds only the owner's rows, and cre_id is not in its index: no owner condition there.
        owner = "" if table == "my_leads" else "cre_id = :cre AND "
        # The cached versions of the overlaid leads, found by phone first (CROSS JOIN keeps that order): the few
        # rows the queue changes are read, where "phone IN (...)" beside the list's condition had the planner walk
        # the list's index range and read every row of the list for its phone.
        overlaid = f"SELECT rowid AS overlaid FROM {table} WHERE phone IN (SELECT phone FROM overlay)"
        parts = []
        for w in WorkList:
            cond = _WHERE[w]
            parts.append(
                f"(SELECT count(*) FROM {table} WHERE {owner}({cond}))"
                f" - (SELECT count(*) FROM ({overlaid}) CROSS JOIN {table} ON {table}.rowid = overlaid"
                f" WHERE {owner}({cond}))"
                f" + (SELECT count(*) FROM overlay WHERE cre_id = :cre AND ({cond}))"
            )
        sql = f"WITH {_OVERLAY_CTE} SELECT {', '.join(parts)}"
        params = self._params(cre_id, today, self.overlay(saving=saving))
        with self._blame("cache"):
            row = self._cache_db().execute(sql, params).fetchone()
        return {w: int(n) for w, n in zip(WorkList, row, strict=True)}

    def worklist_page(
        self,
        cre_id: str,
        which: WorkList,
        today: date,
        *,
        sort: str | None = None,
        descending: bool | None = None,
        offset: int = 0,
        limit: int = 200,
        saving: Sequence[OutboxItem] = (),
    ) -> list[LeadSummary]:
        """One page of a list, sorted (by a key of SORT_KEYS; the list's natural order by default). `saving`: see
        `overlay`."""
        key, desc = DEFAULT_SORT[which]
        if sort is not None:
            if sort not in SORT_KEYS:
                raise ValueError(f"cannot sort by {sort!r}")
            key = sort
        if descending is not None:
            desc = descending
        direction = " DESC" if desc else ""
        # Two steps: sort only the keys (rowid + the sort columns) of the whole list, then read the page's full rows
        # by rowid. Sorting whole rows (sources JSON and all) of a 27k-row list was most of a page's time. The first
        # step names cached rows by rowid, not phone: an index entry holds the rowid, so a list whose condition and
        # order are in an index (every list's natural order but Fresh's and Won / Lost's; lead_cache_cre_lists and
        # my_leads_list) never reads a table row for the keys — for another CRE's list in lead_cache, whose rows
        # are spread over the whole file, that read was ~1 s at 1M.
        keys, order = [], []
        for i, part in enumerate(SORT_KEYS[key].split(",")):
            column, _, collate = part.strip().partition(" COLLATE ")
            keys.append(f"{column} AS k{i}")
            # NULLS LAST: a lead without a follow-up (RNR) or without a call yet sorts after the dated ones.
            order.append(f"k{i}{' COLLATE ' + collate if collate else ''}{direction} NULLS LAST")
        where = _WHERE[which]
        table = self._table(cre_id)
        # my_leads holds only the desk owner's rows, and cre_id is not in its index: no owner condition there.
        owner = "" if table == "my_leads" else "cre_id = :cre AND "
        overlay = self.overlay(saving=saving)
        params = {**self._params(cre_id, today, overlay), "limit": int(limit), "offset": int(offset)}
        sorted_by = {part.strip().partition(" COLLATE ")[0] for part in SORT_KEYS[key].split(",")}
        with self._blame("cache"):
            conn = self._cache_db()
            # One read transaction: a sync committing between the two steps moves a row of my_leads to a new rowid
            # (its trigger deletes and inserts), so both must see the same snapshot.
            conn.execute("BEGIN")
            try:
                keys_from = table
                if table == "my_leads" and which is not WorkList.WON_LOST and not sorted_by <= _MY_LIST_INDEX:
                    # Sorted by a column my_leads_list lacks: the planner still takes the list's range of that index
                    # and then seeks every row, ~4x slower than reading the small table straight through once the
                    # list is more than a few thousand of its ~30k rows (Pending, 27k: 35-45 ms against 10). The
                    # list's size is an index-only count of a few ms.
                    size = conn.execute(f"SELECT count(*) FROM my_leads WHERE {where}", params).fetchone()[0]
                    if size > SCAN_MY_LEADS_ABOVE:
                        keys_from = "my_leads NOT INDEXED"
                sql = (
                    f"WITH {_OVERLAY_CTE} "
                    f"SELECT rowid AS id, 0 AS src, {', '.join(keys)} FROM {keys_from} WHERE {owner}({where}) "
                    f"AND rowid NOT IN (SELECT rowid FROM {table} WHERE phone IN (SELECT phone FROM overlay)) "
                    f"UNION ALL SELECT phone, 1 AS src, {', '.join(keys)} FROM overlay "
                    f"WHERE cre_id = :cre AND ({where}) "
                    f"ORDER BY {', '.join(order)}, src, id LIMIT :limit OFFSET :offset"
                )
                picked = conn.execute(sql, params).fetchall()
                cached = [rowid for rowid, src, *_ in picked if not src]
                rows = conn.execute(
                    f"SELECT rowid, {SUMMARY_COLUMNS}, 0, NULL FROM {table} "
                    "WHERE rowid IN (SELECT value FROM json_each(:ids))",
                    {"ids": encode_json(cached)},
                ).fetchall()
            finally:
                conn.execute("COMMIT")
        by_rowid = {r[0]: self._lead(r[1:]) for r in rows}
        out = []
        for ident, src, *_ in picked:
            lead = self.lead_from_overlay(overlay[ident]) if src else by_rowid.get(ident)
            if lead is not None:
                out.append(lead)
        return out

    def _table(self, cre_id: str) -> str:
        """my_leads (this desk's CRE, kept together: cache.py migration 3) or lead_cache (any other CRE)."""
        return "my_leads" if cre_id == self.desk_owner() else "lead_cache"

    def _params(self, cre_id: str, today: date, overlay: Mapping[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        recent = datetime.combine(today - timedelta(days=RECENT_DAYS), datetime.min.time(), UTC)
        return {
            "cre": cre_id,
            "today": today.isoformat(),
            "recent": recent.isoformat(),
            "overlay": self._overlay_param(self.overlay() if overlay is None else overlay),
        }
