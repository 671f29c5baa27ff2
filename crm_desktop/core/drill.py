"""Drill-down: which cached leads a dashboard figure is made of, asked of the local lead cache (Qt-free).

A tile, a bar or a table row of the team lead's dashboard names a set of leads with a `DrillFilter`; `drill` answers
it from the cache (instant and offline, like the CRE's lists) with the count and the first page, `drill_page` reads
the next pages as the list scrolls and `drill_lead_ids` every id, to act on all of them. The filter is data, not a
query, so the list widget that shows it can change (the CRE's "My leads" list will take it over) without the
dashboard knowing.

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
    for the follow-up rule (tests, and a list opened just before midnight keeps meaning what the tile meant)."""

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
    today: date | None = field(default=None, compare=False)

    def with_title(self, title: str) -> DrillFilter:
        return replace(self, title=title)

    def describe(self) -> str:
        """A plain line of what the filter keeps, for the list's header and exported file names."""
        if self.title:
            return self.title
        parts: list[str] = []
        if self.follow_up:
            parts.append("Overdue follow-ups" if self.follow_up == "overdue" else "Follow-ups due today")
        for value in (self.status, self.final_status, self.sub_source or self.source, self.cre_name, self.branch):
            if value:
                parts.append(value)
        if self.date_from and self.date_to:
            same = self.date_from == self.date_to
            parts.append(f"{self.date_from:%d %b}" if same else f"{self.date_from:%d %b}–{self.date_to:%d %b}")
        return " · ".join(parts) or "All leads"


@dataclass(frozen=True, slots=True)
class DrillRow:
    """One lead of a drill-down list, as the cache has it."""

    lead_id: int
    uid: str
    customer_name: str
    phone: str
    cre_name: str | None
    lead_status: str | None
    final_status: str
    follow_up_date: str | None
    created_at: str
    branch: str | None
    source: str | None


@dataclass(frozen=True, slots=True)
class DrillResult:
    """The answer to a filter as the list needs it first: how many leads, and the first page of them. Further pages
    are read with `drill_page` as the list scrolls; every lead id (to act on all of them) with `drill_lead_ids`.
    Counting reads an index at most; building 100k Python tuples for a list that shows 20 rows cost 10x more."""

    filter: DrillFilter
    count: int
    first: tuple[DrillRow, ...]


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
)
_CRE_BY_NAME = ("cre_name", "cre_name = :cre_name")
_FOLLOW_UP = {
    "overdue": "final_status = 'Pending' AND follow_up_date < :today",
    "due_today": "final_status = 'Pending' AND follow_up_date = :today",
}
# Overdue lists read oldest promise first (the most overdue is the most urgent); other lists newest lead first. The
# orders are those of the indexes a 1M-lead cache needs (bench/bench_lead_tab.py SUGGESTED_INDEXES), so SQLite reads
# an index in order instead of sorting 100k rows.
_ORDER = {
    "overdue": "follow_up_date, lead_id",
    "due_today": "follow_up_date, lead_id",
    None: "created_at DESC, rowid DESC",
}
_ROW_COLUMNS = (
    "rowid, lead_id, uid, customer_name, phone, cre_name, lead_status, final_status, follow_up_date, created_at, "
    "branch, json_extract(sources, '$[0].source')"
)


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


def _select(conn: sqlite3.Connection, f: DrillFilter, what: str, *, ordered: bool) -> tuple[str, dict[str, Any]]:
    table = lead_table(conn)
    where, params = _where(conn, table, f)
    order = f" ORDER BY {_ORDER[f.follow_up]}" if ordered else ""
    return f"SELECT {what} FROM {table} WHERE {where}{order}", params


def drill_count(conn: sqlite3.Connection, f: DrillFilter) -> int:
    sql, params = _select(conn, f, "count(*)", ordered=False)
    return int(conn.execute(sql, params).fetchone()[0])


def drill_page(conn: sqlite3.Connection, f: DrillFilter, offset: int, limit: int = PAGE_ROWS) -> list[DrillRow]:
    """Rows `offset`..`offset + limit` of the list, in list order (the order has a unique last key, so pages neither
    repeat nor skip a row while the cache stands still; the list is read afresh after each sync)."""
    sql, params = _select(conn, f, _ROW_COLUMNS, ordered=True)
    rows = conn.execute(f"{sql} LIMIT :limit OFFSET :offset", {**params, "limit": limit, "offset": offset})
    return [DrillRow(*r[1:]) for r in rows]


def drill(conn: sqlite3.Connection, f: DrillFilter, first_page: int = PAGE_ROWS) -> DrillResult:
    """What a list shows first: the count and the first page."""
    return DrillResult(f, drill_count(conn, f), tuple(drill_page(conn, f, 0, first_page)))


def drill_lead_ids(conn: sqlite3.Connection, f: DrillFilter) -> list[int]:
    """Every lead id the filter keeps, in list order: for acting on all of them ("all overdue of Asha")."""
    sql, params = _select(conn, f, "lead_id", ordered=True)
    return [r[0] for r in conn.execute(sql, params)]


def open_cache_readonly(path: str | Path) -> sqlite3.Connection:
    """A connection to the cache file for drill-down queries (one per reader thread; the sync thread keeps writing
    through its own). `query_only`, so a bug here can never change the cache; not `mode=ro`, which cannot open a WAL
    file whose -shm is missing."""
    conn = sqlite3.connect(str(path), check_same_thread=True)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA query_only = ON")
    return conn
