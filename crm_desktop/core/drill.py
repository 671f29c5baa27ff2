"""Drill-down: which cached leads a dashboard figure is made of, asked of the local lead cache (Qt-free).

A tile, a bar or a table row of the team lead's dashboard names a set of leads with a `DrillFilter`; the cache answers
it (instant and offline, like the CRE's lists): `drill_page` reads a page of `LeadSummary` rows (what the My leads list
shows and the lead view opens), `drill_count` how many there are, `drill_lead_ids` every id, to act on all of them.
The filter is data, not a query, so the dashboard does not know which list widget shows it.

Speed at 1M cached leads (bench/bench_lead_tab.py): a page is `ORDER BY ... LIMIT`, in an order an index of the cache
holds, so SQLite walks that index and stops after the page instead of sorting the whole set; the count is a separate
query (the list is painted before it is done: counting a 100k-lead date range reads every one of them).

Every SQL fragment that knows the cache's table and columns is in this module, in `_CONDITIONS`, `_ORDER` and
`_ROW_COLUMNS`: the cache's columns grow with the feed (owner id, last call, call count), and adapting the drill-down
to them is an edit here. Where the cache has no `cre_id` column yet the owner is matched by name.

Counting rule: the "overdue" and "due today" sets are the server's (`dashboard_summary.follow_ups`): final status
Pending and a follow-up date before (or on) the desk's today, whatever the dashboard's date range. So after a sync
the list's count equals the tile's."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from crm_desktop.core.cache import SUMMARY_COLUMNS, summary_from_row
from crm_desktop.core.models import LeadSummary

DESK_TZ = ZoneInfo("Asia/Kolkata")  # the server's desk_tz(): a lead's day is its day in Hyderabad
TABLE_CANDIDATES = ("leads", "lead_cache")  # the cache's lead table: `lead_cache` today; `leads` if renamed
PAGE_ROWS = 200  # rows read per page of the list: a screenful several times over, a few ms of SQLite

FollowUp = Literal["overdue", "due_today"]


def desk_today() -> date:
    return datetime.now(DESK_TZ).date()


@dataclass(frozen=True, slots=True)
class DrillFilter:
    """Which leads a figure stands for. Every field set narrows the set; None means "any".

    `title` is what the list is called on screen ("Overdue follow-ups · Asha Reddy"). `cre_name` is used only where
    the cache has no owner id (today's cache), and always as the label. `follow_up` is the server's overdue /
    due-today rule. `date_from`/`date_to` bound the lead's creation day (desk calendar). `today` pins the desk's day
    for the follow-up rule (tests, and a list opened just before midnight keeps meaning what the tile meant).
    `called_from`/`called_to` bound the day of the lead's last call (the "Calls made" tile): the cache keeps each
    lead's last call only, so see `drill_notes` for what such a list cannot show."""

    title: str = ""
    cre_id: str | None = None
    cre_name: str | None = None
    source: str | None = None
    sub_source: str | None = None
    status: str | None = None
    final_status: str | None = None
    follow_up: FollowUp | None = None
    date_from: date | None = None
    date_to: date | None = None
    branch: str | None = None
    called_from: date | None = None
    called_to: date | None = None
    today: date | None = field(default=None, compare=False)

    def with_title(self, title: str) -> DrillFilter:
        return replace(self, title=title)

    def describe(self) -> str:
        """A plain line of what the filter keeps, for the list's header and exported file names."""
        if self.title:
            return self.title
        parts: list[str] = []
        if self.called_from or self.called_to:
            parts.append("Leads called")
        if self.follow_up:
            parts.append("Overdue follow-ups" if self.follow_up == "overdue" else "Follow-ups due today")
        for value in (self.status, self.final_status, self.sub_source or self.source, self.cre_name, self.branch):
            if value:
                parts.append(value)
        if self.date_from and self.date_to:
            same = self.date_from == self.date_to
            parts.append(f"{self.date_from:%d %b}" if same else f"{self.date_from:%d %b}–{self.date_to:%d %b}")
        return " · ".join(parts) or "All leads"


# -- the SQL, in one place ------------------------------------------------------------------------------------------
# Each condition is (filter field, SQL with named placeholders). Only conditions whose field is set are used; values
# always go in as parameters. `_CONDITIONS_BY_NAME` is for a cache without `cre_id` (today's).

_CONDITIONS: tuple[tuple[str, str], ...] = (
    ("cre_id", "cre_id = :cre_id"),
    ("status", "lead_status IS :status"),
    ("final_status", "final_status = :final_status"),
    ("branch", "branch = :branch"),
    # sources is the feed's JSON array of {source, sub_source, at}; any of them counts (a duplicate from META is a
    # META inquiry even when the lead came first from GOOGLE).
    # instr() first: a plain substring test on the JSON text skips json_each for the leads that cannot match.
    (
        "source",
        "instr(sources, :source_json) > 0"
        " AND EXISTS (SELECT 1 FROM json_each(sources) s WHERE json_extract(s.value, '$.source') = :source)",
    ),
    (
        "sub_source",
        "instr(sources, :sub_source_json) > 0"
        " AND EXISTS (SELECT 1 FROM json_each(sources) s WHERE json_extract(s.value, '$.sub_source') = :sub_source)",
    ),
    # created_at is timestamptz text with an offset. First a plain text comparison on the date a day wider than the
    # range (any offset moves a day by less than one; an index on created_at serves it). Then the exact instant: a
    # value written in UTC ("…+00:00", what the server's feed sends) compares as text with the UTC bound (same
    # layout, and "." sorts after "+", so fractions of a second order right); any other offset goes through
    # julianday(), which reads it (to the millisecond) but costs ~1 µs a row.
    (
        "date_from",
        "created_at >= :date_from_loose AND CASE WHEN substr(created_at, -6) = '+00:00'"
        " THEN created_at >= :date_from ELSE julianday(created_at) >= julianday(:date_from) END",
    ),
    (
        "date_to",
        "created_at < :date_to_loose AND CASE WHEN substr(created_at, -6) = '+00:00'"
        " THEN created_at < :date_to ELSE julianday(created_at) < julianday(:date_to) END",
    ),
    # The last call's day, the same way (the feed writes last_call_at in UTC too).
    (
        "called_from",
        "last_call_at >= :called_from_loose AND CASE WHEN substr(last_call_at, -6) = '+00:00'"
        " THEN last_call_at >= :called_from ELSE julianday(last_call_at) >= julianday(:called_from) END",
    ),
    (
        "called_to",
        "last_call_at < :called_to_loose AND CASE WHEN substr(last_call_at, -6) = '+00:00'"
        " THEN last_call_at < :called_to ELSE julianday(last_call_at) < julianday(:called_to) END",
    ),
)
_CRE_BY_NAME = ("cre_name", "cre_name = :cre_name")
_FOLLOW_UP = {
    "overdue": "final_status = 'Pending' AND follow_up_date < :today",
    "due_today": "final_status = 'Pending' AND follow_up_date = :today",
}
# Follow-up lists read oldest promise first (the most overdue is the most urgent); the calls list the latest call
# first; other lists the newest lead first. Each order ends on a unique key (pages neither repeat nor skip a row) and
# is one an index holds (the cache's own, or bench/bench_lead_tab.py SUGGESTED_INDEXES), so SQLite reads the index in
# order and stops after the page instead of sorting 100k rows.
_ORDER_FOLLOW_UP = "follow_up_date, lead_id"
_ORDER_CALLED = "last_call_at DESC, rowid DESC"
_ORDER_CREATED = "created_at DESC, rowid DESC"


def lead_table(conn: sqlite3.Connection) -> str:
    """The cache's lead table, from a fixed list (never from input)."""
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for name in TABLE_CANDIDATES:
        if name in names:
            return name
    raise LookupError("the cache file has no lead table")


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}  # table is from TABLE_CANDIDATES


def _day_start_utc(day: date) -> str:
    return datetime.combine(day, time(0), DESK_TZ).astimezone(ZoneInfo("UTC")).isoformat()


def _where(conn: sqlite3.Connection, table: str, f: DrillFilter) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {
        "cre_id": f.cre_id,
        "cre_name": f.cre_name,
        "status": f.status,
        "final_status": f.final_status,
        "branch": f.branch,
        "source": f.source,
        "sub_source": f.sub_source,
        "date_from": _day_start_utc(f.date_from) if f.date_from else None,
        "date_to": _day_start_utc(f.date_to + timedelta(days=1)) if f.date_to else None,
        "today": (f.today or desk_today()).isoformat(),
        "source_json": json.dumps(f.source, ensure_ascii=False) if f.source is not None else None,
        "sub_source_json": json.dumps(f.sub_source, ensure_ascii=False) if f.sub_source is not None else None,
        "date_from_loose": (f.date_from - timedelta(days=1)).isoformat() if f.date_from else None,
        "date_to_loose": (f.date_to + timedelta(days=2)).isoformat() if f.date_to else None,
        "called_from": _day_start_utc(f.called_from) if f.called_from else None,
        "called_to": _day_start_utc(f.called_to + timedelta(days=1)) if f.called_to else None,
        "called_from_loose": (f.called_from - timedelta(days=1)).isoformat() if f.called_from else None,
        "called_to_loose": (f.called_to + timedelta(days=2)).isoformat() if f.called_to else None,
    }
    conditions = [sql for name, sql in _CONDITIONS if params[name] is not None and name != "cre_id"]
    if f.cre_id is not None and "cre_id" in _columns(conn, table):
        conditions.append(_CONDITIONS[0][1])
    elif f.cre_name is not None:
        conditions.append(_CRE_BY_NAME[1])
    elif f.cre_id is not None:
        raise LookupError("the cache has no owner id and the filter names no CRE")
    if f.follow_up is not None:
        conditions.append(_FOLLOW_UP[f.follow_up])
    text = " ".join(conditions)
    used = {k: v for k, v in params.items() if re.search(f":{k}\\b", text)}
    return (" AND ".join(conditions) or "1"), used


def _order(f: DrillFilter) -> str:
    if f.follow_up is not None:
        return _ORDER_FOLLOW_UP
    if f.called_from is not None or f.called_to is not None:
        return _ORDER_CALLED
    return _ORDER_CREATED


def _select(conn: sqlite3.Connection, f: DrillFilter, what: str, *, ordered: bool) -> tuple[str, dict[str, Any]]:
    table = lead_table(conn)
    where, params = _where(conn, table, f)
    order = f" ORDER BY {_order(f)}" if ordered else ""
    return f"SELECT {what} FROM {table} WHERE {where}{order}", params


def drill_count(conn: sqlite3.Connection, f: DrillFilter) -> int:
    sql, params = _select(conn, f, "count(*)", ordered=False)
    return int(conn.execute(sql, params).fetchone()[0])


def drill_page(conn: sqlite3.Connection, f: DrillFilter, offset: int, limit: int = PAGE_ROWS) -> list[LeadSummary]:
    """Rows `offset`..`offset + limit` of the list, in list order, as the My leads list and the lead view take them
    (the order has a unique last key, so pages neither repeat nor skip a row while the cache stands still; the list
    is read afresh after each sync)."""
    sql, params = _select(conn, f, SUMMARY_COLUMNS, ordered=True)
    rows = conn.execute(f"{sql} LIMIT :limit OFFSET :offset", {**params, "limit": limit, "offset": offset})
    return [summary_from_row(r) for r in rows]


def drill_lead_ids(conn: sqlite3.Connection, f: DrillFilter) -> list[int]:
    """Every lead id the filter keeps, in list order: for acting on all of them ("all overdue of Asha")."""
    sql, params = _select(conn, f, "lead_id", ordered=True)
    return [r[0] for r in conn.execute(sql, params)]


def drill_notes(f: DrillFilter, today: date | None = None) -> list[str]:
    """What a list cannot show that its figure counts, in the desk's words (shown under the list's title).

    Only the calls lists have such limits: the server counts calls (`stats_cre.calls`, by the CRE who made each), the
    cache has one row per lead with its owner now and its last call. So a lead called three times is one row; a lead
    called in a past range and again since is not in that range's list; a call made before a reassignment is listed
    under the lead's owner now. The full answer needs the calls themselves in the feed (per call: when, by whom)."""
    if f.called_from is None and f.called_to is None:
        return []
    day = today or f.today or desk_today()
    notes = ["Each lead called in the range once, by its last call (the dashboard counts every call)."]
    if f.called_to is not None and f.called_to < day:
        notes.append(
            f"Leads called again after {f.called_to:%d %b} are not listed: this computer keeps each lead's last "
            "call only."
        )
    if f.cre_id is not None or f.cre_name is not None:
        notes.append("Listed by the lead's owner now: a call on a lead since reassigned is under its new owner.")
    return notes


def open_cache_readonly(path: str | Path) -> sqlite3.Connection:
    """A connection to the cache file for drill-down queries (one per reader thread; the sync thread keeps writing
    through its own). `query_only`, so a bug here can never change the cache; not `mode=ro`, which cannot open a WAL
    file whose -shm is missing."""
    conn = sqlite3.connect(str(path), check_same_thread=True)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA query_only = ON")
    return conn
