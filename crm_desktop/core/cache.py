"""The lead cache: phone → lead summary from the server's `lead_changes` feed, and the sync cursor.

Everything in the cache file can be downloaded again, so it is tuned for speed (``synchronous=NORMAL``: a power cut
may lose the last pages, never consistency — the cursor commits with its page) and, when damaged, it is thrown away
and rebuilt from the server. The worklist and search read it too (`worklist.py`, `search.py`).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import chain, islice
from pathlib import Path
from typing import Any

from crm_desktop.core import feed, fileops
from crm_desktop.core.db import (
    CACHE_SYNCHRONOUS,
    NewerSchema,
    StoreBase,
    StoreError,
    classify_error,
    sidecars,
    write_txn,
)
from crm_desktop.core.models import LeadSummary, SourceSeen

log = logging.getLogger(__name__)

# A feed page's columns, as `lead_changes` names them. Extra columns are ignored (a newer server may add some).
FEED_COLUMNS: tuple[str, ...] = (
    "change_id",
    "lead_id",
    "phone",
    "uid",
    "customer_name",
    "sources",
    "lead_status",
    "final_status",
    "cre_name",
    "ps_name",
    "branch",
    "created_at",
    "follow_up_date",
)

# The lead-life columns (migration 005's feed). Optional: a page from an older server lacks them and the cache keeps
# NULL (call_count 0) there. Read by name like the others.
LIFE_COLUMNS: tuple[str, ...] = (
    "cre_id",
    "lead_category",
    "model_interested",
    "follow_up_at",
    "last_call_at",
    "call_count",
    "won_at",
    "lost_at",
    "updated_at",
    "test_drive_done",
    "ps_email",
)
_STORED_COLUMNS = (*FEED_COLUMNS, *LIFE_COLUMNS)

# What a LeadSummary is read from, in `_summary`'s order; the worklist and search select the same list.
SUMMARY_COLUMNS = (
    "lead_id, phone, uid, customer_name, sources, lead_status, final_status, cre_name, ps_name, branch, created_at, "
    "follow_up_date, cre_id, lead_category, model_interested, follow_up_at, last_call_at, call_count, won_at, "
    "lost_at, updated_at, test_drive_done, ps_email"
)


# my_leads (migration 3) holds the summary columns but phone, which is its key.
_MY_COLUMN_NAMES = [c.strip() for c in SUMMARY_COLUMNS.split(",") if c.strip() != "phone"]
_MY_COLUMNS = ", ".join(_MY_COLUMN_NAMES)
_NEW_MY_COLUMNS = ", ".join(f"new.{c}" for c in _MY_COLUMN_NAMES)
_MY_COLUMNS_DDL = ", ".join(_MY_COLUMN_NAMES)  # types as in lead_cache do not matter to SQLite; values are copied

# Indexes for lists read from lead_cache itself (migration 4). Each one takes a random insert per row of a sync, which
# more than halved the first sync's rate (bench_client.py at 1M: 13.1k -> 5.8k rows/s) when kept row by row; a large
# first sync drops them with the other secondary indexes and builds them once at its end ("bulk fill" below).
LIST_INDEXES: tuple[tuple[str, str], ...] = (
    # Another CRE's lists: every list's condition and its natural order from this one index, so counting them and
    # sorting a list's keys never read the table rows, which for one CRE are spread over the whole file (one in ~33
    # at 1M; reading them took 0.7-1.2 s).
    (
        "lead_cache_cre_lists",
        "CREATE INDEX IF NOT EXISTS lead_cache_cre_lists ON lead_cache (cre_id, final_status, follow_up_date, "
        "follow_up_at, call_count, ps_name, ps_email)",
    ),
    # ... but for the two lists that need other columns: Fresh (newest first) and Won / Lost (decided in the last 30
    # days, last call first), each a small partial index whose WHERE is the list's own condition (worklist.py _WHERE,
    # word for word: SQLite uses a partial index only for a query that states its WHERE). They hold every column
    # their list reads, the WHERE's too: SQLite 3.40 reads the row for a column the index lacks, even one its WHERE
    # fixes, and cannot read a coalesce() from an expression index.
    (
        "lead_cache_cre_fresh",
        "CREATE INDEX IF NOT EXISTS lead_cache_cre_fresh ON lead_cache (cre_id, created_at, call_count, final_status) "
        "WHERE call_count = 0 AND final_status = 'Pending'",
    ),
    (
        "lead_cache_cre_decided",
        "CREATE INDEX IF NOT EXISTS lead_cache_cre_decided ON lead_cache (cre_id, final_status, won_at, lost_at, "
        "updated_at, created_at, last_call_at) WHERE final_status IN ('Won', 'Lost')",
    ),
    # The drill-down: overdue / due today (all, per branch) read a small partial index in follow-up
    # order, never the table for their ids; "new leads of the last N days" a range of created_at.
    (
        "lead_cache_pending_follow_up",
        "CREATE INDEX IF NOT EXISTS lead_cache_pending_follow_up ON lead_cache (follow_up_date, lead_id) "
        "WHERE final_status = 'Pending'",
    ),
    ("lead_cache_created", "CREATE INDEX IF NOT EXISTS lead_cache_created ON lead_cache (created_at)"),
    (
        "lead_cache_branch_follow_up",
        "CREATE INDEX IF NOT EXISTS lead_cache_branch_follow_up ON lead_cache (branch, follow_up_date, lead_id) "
        "WHERE final_status = 'Pending'",
    ),
    # The "Calls made" lists (drill.py): leads by their last call, newest first; one CRE's (a dashboard row's Calls
    # column) by owner id. One CRE's follow-up lists need no index of their own: lead_cache_cre_lists serves them.
    ("lead_cache_last_call", "CREATE INDEX IF NOT EXISTS lead_cache_last_call ON lead_cache (last_call_at)"),
    (
        "lead_cache_owner_last_call",
        "CREATE INDEX IF NOT EXISTS lead_cache_owner_last_call ON lead_cache (cre_id, last_call_at)",
    ),
)

# Who reads lead_cache through them: a team lead (another CRE's lists, the dashboard's drill-down). A CRE's desk
# reads its own leads from my_leads and searches by name, UID and last digits, never through these. So a CRE desk's
# bulk fill leaves them out (~15 s of a 1M-lead first sync on the dev VM, and a random insert per row of every pull
# after it); a team lead's desk builds whichever are missing at the end of its next pull (SyncEngine.team_indexes).
TEAM_INDEXES = frozenset(name for name, _ in LIST_INDEXES)

# -- schema -------------------------------------------------------------------------------------------------------
# Each migration is a tuple of statements, run in one transaction with the user_version bump. Statements, not a
# script: sqlite3's executescript() commits first, which would break the all-or-nothing migration.

CACHE_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # A rowid table keyed by the phone's unique index rather than WITHOUT ROWID: a bulk sync appends rows to the
        # table b-tree in feed order and only the small (phone → rowid) index takes random inserts. A lookup is two
        # seeks, still a few microseconds.
        """
        CREATE TABLE lead_cache (
            phone           TEXT NOT NULL PRIMARY KEY,  -- E.164, the dedupe key; every keystroke seeks this index
            change_id       INTEGER NOT NULL,           -- feed position of this version: older versions never win
            lead_id         INTEGER NOT NULL,
            uid             TEXT NOT NULL,
            customer_name   TEXT NOT NULL,
            sources         TEXT NOT NULL,              -- JSON array exactly as the feed sent it; first = original
            lead_status     TEXT,
            final_status    TEXT NOT NULL,
            cre_name        TEXT,
            ps_name         TEXT,
            branch          TEXT,
            created_at      TEXT NOT NULL,
            follow_up_date  TEXT
        )
        """,
        # One row. The cursor lives in the cache file so it commits in the same transaction as its page.
        """
        CREATE TABLE sync_state (
            id         INTEGER PRIMARY KEY CHECK (id = 1),
            cursor     INTEGER NOT NULL,
            synced_at  REAL NOT NULL
        )
        """,
    ),
    (
        # 2: the lead's life, for the worklist (Fresh, Due today, Overdue, Call-backs, ...) and search.
        "ALTER TABLE lead_cache ADD COLUMN cre_id TEXT",
        "ALTER TABLE lead_cache ADD COLUMN lead_category TEXT",
        "ALTER TABLE lead_cache ADD COLUMN model_interested TEXT",
        "ALTER TABLE lead_cache ADD COLUMN follow_up_at TEXT",
        "ALTER TABLE lead_cache ADD COLUMN last_call_at TEXT",
        "ALTER TABLE lead_cache ADD COLUMN call_count INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE lead_cache ADD COLUMN won_at TEXT",
        "ALTER TABLE lead_cache ADD COLUMN lost_at TEXT",
        "ALTER TABLE lead_cache ADD COLUMN updated_at TEXT",
        "ALTER TABLE lead_cache ADD COLUMN test_drive_done INTEGER",
        "ALTER TABLE lead_cache ADD COLUMN ps_email TEXT",
        # Rows cached before these columns existed read as refill = 1 (an ADD COLUMN default costs no rewrite) and
        # take the same version again from the feed, which is read from the start once more; every upsert writes 0.
        # Cheaper than emptying the cache: the banner keeps working from the old rows while the feed refills them.
        "ALTER TABLE lead_cache ADD COLUMN refill INTEGER NOT NULL DEFAULT 1",
        "UPDATE sync_state SET cursor = 0 WHERE id = 1",
        # My lists: one CRE's leads by final status and follow-up day (Due today, Overdue, Pending, Call-backs,
        # With PS, Won / Lost read a range of it); Fresh reads the second. A CRE holds ~30k of 1M rows.
        "CREATE INDEX lead_cache_owner ON lead_cache (cre_id, final_status, follow_up_date)",
        "CREATE INDEX lead_cache_fresh ON lead_cache (cre_id, call_count)",
        # Search: a UID typed or read out over the phone, and the last four digits of a number ("the one ending
        # 3210"); longer fragments are filtered among the ~100 rows that share their last four digits.
        "CREATE INDEX lead_cache_uid ON lead_cache (uid)",
        "CREATE INDEX lead_cache_last4 ON lead_cache (substr(phone, -4))",
        # Names: full-text index over the cached rows (external content: the text is stored once, in lead_cache).
        # unicode61 folds case and, with remove_diacritics 2, accents (José = jose); the categories add the marks
        # (M*) to the word characters, so a Telugu or Devanagari name is one word each, not split at every vowel
        # sign. prefix='1 2 3' keeps the short prefixes typed first as one doclist each (without the three, a
        # three-letter search over 1M names whose commonest words share their first letters took 20-62 ms, 6-10 with:
        # bench/bench_name_index.py).
        """
        CREATE VIRTUAL TABLE lead_names USING fts5(
            customer_name, content = 'lead_cache', content_rowid = 'rowid',
            tokenize = "unicode61 remove_diacritics 2 categories 'L* N* Co M*'", prefix = '1 2 3'
        )
        """,
        "INSERT INTO lead_names (lead_names) VALUES ('rebuild')",
        # Kept in step by triggers. No delete trigger: leads leave the cache only in clear_cache, which empties the
        # index itself (a delete trigger would also cost the 1M-row truncate its fast path).
        """
        CREATE TRIGGER lead_names_insert AFTER INSERT ON lead_cache BEGIN
            INSERT INTO lead_names (rowid, customer_name) VALUES (new.rowid, new.customer_name);
        END
        """,
        """
        CREATE TRIGGER lead_names_update AFTER UPDATE OF customer_name ON lead_cache
        WHEN old.customer_name IS NOT new.customer_name BEGIN
            INSERT INTO lead_names (lead_names, rowid, customer_name) VALUES ('delete', old.rowid, old.customer_name);
            INSERT INTO lead_names (rowid, customer_name) VALUES (new.rowid, new.customer_name);
        END
        """,
    ),
    (
        # 3: this desk's own leads, kept together. A CRE's 30k rows are spread over every page of a 1M-row
        # lead_cache (one in ~33 rows), so reading one CRE's list read the whole table (~1 s, bench_worklist.py).
        # my_leads holds the rows of the desk's CRE (desk_owner) only, a few MB read in milliseconds; triggers keep
        # it in step with every insert and update of lead_cache (a reassignment moves a row in or out). Lists of
        # another CRE (a team lead picking one) still read lead_cache.
        "CREATE TABLE desk_owner (id INTEGER PRIMARY KEY CHECK (id = 1), cre_id TEXT)",
        f"CREATE TABLE my_leads (phone TEXT NOT NULL PRIMARY KEY, {_MY_COLUMNS_DDL})",
        # The lists' counts, each from this index alone (Due today and Overdue are ranges of it; Fresh, Call-backs
        # and With PS are filtered inside it): a few ms, where one pass over the rows evaluating every list's
        # condition took ~100 ms for 30k rows.
        "CREATE INDEX my_leads_list ON my_leads (final_status, follow_up_date, call_count, follow_up_at, ps_name, "
        "ps_email)",
        f"""
        CREATE TRIGGER my_leads_insert AFTER INSERT ON lead_cache
        WHEN new.cre_id = (SELECT cre_id FROM desk_owner WHERE id = 1) BEGIN
            DELETE FROM my_leads WHERE phone = new.phone;
            INSERT INTO my_leads (phone, {_MY_COLUMNS}) VALUES (new.phone, {_NEW_MY_COLUMNS});
        END
        """,
        f"""
        CREATE TRIGGER my_leads_update AFTER UPDATE ON lead_cache BEGIN
            -- No INSERT OR REPLACE here: the outer upsert's conflict policy would override it.
            DELETE FROM my_leads WHERE phone IN (old.phone, new.phone);
            INSERT INTO my_leads (phone, {_MY_COLUMNS})
            SELECT new.phone, {_NEW_MY_COLUMNS} WHERE new.cre_id = (SELECT cre_id FROM desk_owner WHERE id = 1);
        END
        """,
    ),
    (
        # 4: lists read from lead_cache itself — a team lead's view of another CRE's lists (worklist.py), and the
        # dashboard's drill-down (drill.py, bench/bench_lead_tab.py's SUGGESTED_INDEXES, kept under those names).
        # The new indexes are LIST_INDEXES above: a large first sync drops and rebuilds them (bulk fill). Migration
        # 2's two owner indexes go: both are prefixes of lead_cache_cre_lists (cre_id + call_count as a filter inside
        # a final_status range).
        "DROP INDEX IF EXISTS lead_cache_owner",  # IF EXISTS: a bulk fill may have dropped them (see below)
        "DROP INDEX IF EXISTS lead_cache_fresh",
        *(create for _name, create in LIST_INDEXES),
    ),
)

# Connection settings of the cache (per connection, so each thread's Store sets them). Measured with
# bench/bench_store.py on a 1M-lead first sync:
# * page_size 8192: only takes effect while the file is still empty (before the first table). Fewer, fuller b-tree
#   pages for the phone index, which takes a random insert for every row; ~10 % faster syncs.
# * wal_autocheckpoint 10000 pages (~80 MB) instead of 1000: a 5,000-row page dirties most leaf pages of the phone
#   index, so with the default every other page triggered a checkpoint (each an fsync with synchronous=NORMAL).
#   ~40-50 % faster syncs. journal_size_limit trims the WAL file back afterwards.
# * cache_size 32 MB: keeps the phone index of a 1M-lead cache (~25 MB) in memory during a sync.
CACHE_TUNING = """
    PRAGMA page_size = 8192;
    PRAGMA wal_autocheckpoint = 10000;
    PRAGMA journal_size_limit = 67108864;
    PRAGMA cache_size = -32768;
"""

# -- bulk fill ----------------------------------------------------------------------------------------------------
# A first sync writes ~1M rows into an empty cache. Keeping every secondary index of lead_cache in step row by row
# cost about a third of the desk's work per row: each row is a random insert into each index, and every page's commit
# then writes most of their b-tree pages to the WAL again. Built once at the end from the full table they cost a
# fraction of that. So a large first sync drops them and builds them again when it has caught up: every index on
# lead_cache with SQL of its own (indexes added by later migrations are included without a change here; the phone
# key stays). What to build again is read from the schema the migrations make (`_deferrable`), so nothing is recorded
# in the file: a desk closed halfway continues the fill on its next pass and builds them when that pass catches up.
# The name index (FTS5) is kept in step during the fill, by its triggers: it appends one small segment per page (one
# upsert statement, one flush of its pending terms) and merges them as it goes, on the applying thread, which waits
# for pages much of a first sync. Rebuilding it at the end took 2-3.5 s of a 1M first sync in which the desk did
# nothing else (`bench/bench_replay.py --variants "names=rebuilt;names=kept"`: the build after the fill 4.7-5.8 ->
# 2.2-3.3 s, the sync 0-4.5 s shorter). Name searches on a cache filled so are as quick (slowest ~5 ms either way).
# It is still rebuilt by `finish_bulk_fill` when its triggers are missing: a cache a desk of stop 18 or older left
# halfway through a bulk fill, with its name triggers dropped.
#
# Unsynced fill: the pages of a bulk fill are committed with synchronous=OFF (`begin_unsynced_fill`), so the WAL's
# checkpoints during it (one per ~80 MB written) do not wait for the disk; the pass ends with both files flushed to
# the disk and NORMAL again (`end_unsynced_fill`). A 1M first sync, three alternated pairs each way
# (`bench/bench_replay.py --variants "fill=synced;fill=unsynced" --where lo,link --rounds 3`): over loopback 12.72 /
# 12.74 / 12.79 -> 12.75 / 12.21 / 12.73 s, through the link 15.33 / 15.24 / 15.35 -> 15.38 / 14.44 / 14.32 s; the
# flush at the end takes 0.25-0.6 s of that. What OFF risks is not the last pages (NORMAL risks those too) but the
# file: after a power cut or an OS crash mid-fill it may be damaged. So the fill is marked by a file beside the cache
# (`<cache>.filling`), made (and flushed) before the first unsynced write and removed once everything is on the disk.
# A start that finds it checks the cache (quick_check, ~0.6 s at 1M leads) and rebuilds it from the server when
# damaged (`_recover_cache`); a desk closed or killed halfway still continues its fill where it stopped.
_NAME_TRIGGERS = ("lead_names_insert", "lead_names_update")
_REBUILD_NAMES = "INSERT INTO lead_names (lead_names) VALUES ('rebuild')"


@lru_cache(maxsize=1)
def _deferrable() -> tuple[tuple[str, str, str], ...]:
    """(type, name, sql) of the objects a bulk fill may leave missing, as the cache migrations create them: the
    indexes it drops, and the name index's triggers an older desk's bulk fill dropped (`begin_bulk_fill`)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for migration in CACHE_MIGRATIONS:
            for statement in migration:
                conn.execute(statement)
        found = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'lead_cache' AND sql IS NOT NULL"
            " AND (type = 'index' OR (type = 'trigger' AND name IN (?, ?))) ORDER BY type, name",
            _NAME_TRIGGERS,
        ).fetchall()
    finally:
        conn.close()
    return tuple((str(t), str(n), str(q)) for t, n, q in found)


# -- statements ---------------------------------------------------------------------------------------------------

_LOOKUP = f"SELECT {SUMMARY_COLUMNS} FROM lead_cache WHERE phone = :phone"


def _conflict_clause() -> str:
    """Newer wins: the WHERE keeps a replayed older page from overwriting a newer version of the same lead; a row
    cached before the lead-life columns existed (refill) takes its own version again to fill them."""
    sets = ",\n        ".join(f"{c} = excluded.{c}" for c in _STORED_COLUMNS if c != "phone")
    return (
        f"ON CONFLICT (phone) DO UPDATE SET\n        {sets},\n        refill = 0\n"
        "    WHERE excluded.change_id > lead_cache.change_id OR lead_cache.refill"
    )


_CONFLICT = _conflict_clause()
_UPSERT_LEAD = (
    f"INSERT INTO lead_cache ({', '.join(_STORED_COLUMNS)}, refill) "
    f"VALUES ({', '.join(':' + c for c in _STORED_COLUMNS)}, 0) {_CONFLICT}"
)

# Rows decoded in Python (a compact page: `decode_ahead`) are staged in a table first, then go into the cache in one
# statement with the same upsert. Not executemany of the upsert itself: each of those statements opens a statement
# savepoint (triggers), and FTS5 writes its pending terms out as a new segment at every savepoint, so a 100-row page
# on a 1M cache took ~50 ms instead of ~15. Staged, a page is one statement, as in the SQL decoder. The staging table
# has no key and no types: values stay as bound.
# Positional, against the house habit of named placeholders: sqlite3 binds a tuple of 24 values in about half the
# time of a dict of 24 names (it looks every name up; ~10 us a row on the dev VM); feed.compact_rows gives them in
# _STORED_COLUMNS order.
_STAGE_ROW = f"INSERT INTO feed_rows VALUES ({', '.join('?' for _ in _STORED_COLUMNS)})"

# What leaves a compact page to the SQL decoder (see feed.py): the Python decoder's refusals, a value sqlite3 cannot
# bind (a list, an integer over 64 bits, a lone surrogate) and a row the table refuses (the SQL path then says why).
_LEFT_TO_SQL = (ValueError, TypeError, KeyError, OverflowError, sqlite3.IntegrityError, sqlite3.InterfaceError,
                sqlite3.ProgrammingError)  # fmt: skip

_SET_CURSOR = """
    INSERT INTO sync_state (id, cursor, synced_at) VALUES (1, :cursor, :now)
    ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor, synced_at = excluded.synced_at
"""

# A feed page read by SQLite itself (Store.apply_feed_page). The header comes out in one statement (feed.top_level);
# rows go from json_each straight into the upsert, so no Python object is made per row.
# SQLite's JSON functions are built in since 3.38 and compiled in by the Linux distributions before that.


@dataclass(frozen=True, slots=True)
class FeedHead:
    """A feed page's header (Store.read_feed_head): enough to ask for the next page before applying this one."""

    columns: tuple[str, ...]
    next_since: int
    more: bool
    remaining: int
    # A compact page (`lead_feed`, core/feed.py) says its encoding, a codec per column and its dictionaries (JSON
    # text), and where the pages after the next one start; a plain `lead_changes` page has none of these.
    encoding: str | None = None
    codecs: tuple[str, ...] = ()
    dicts: str | None = None
    ahead: tuple[int, ...] = ()
    # "rows" (the rows one after the other) or "columns" (a compact page's "cols": one array per column, migration
    # 008, what a long sync asks for: a third fewer bytes on the link).
    layout: str = "rows"


@dataclass(frozen=True, slots=True)
class FeedPage:
    """What one applied `lead_changes` page said: its row count, rows changed, and where the feed goes on."""

    rows: int
    applied: int
    next_since: int
    more: bool
    remaining: int


def _require_feed_columns(columns: Sequence[str]) -> None:
    missing = [c for c in FEED_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"feed page lacks column(s) {missing}")


@lru_cache(maxsize=8)
def _page_upsert(columns: tuple[str, ...]) -> str:
    """The one-statement upsert of a page whose rows are arrays in `columns` order (the server names them)."""
    _require_feed_columns(columns)
    at = {c: i for i, c in enumerate(columns)}
    # json_extract gives a scalar as its SQL value and an array (sources) as JSON text. Not the ->/->> operators:
    # they need SQLite 3.38, and Ubuntu 22.04's Python links 3.37. The indexes are ours. A row that is not an array
    # of exactly the page's width gets no phone, so the NOT NULL constraint refuses the whole page.

    def value(c: str) -> str:
        if c not in at:  # a lead-life column an older server does not send
            return "0" if c == "call_count" else "NULL"
        if c == "phone":
            return f"CASE WHEN json_array_length(r.value) = {len(columns)} THEN json_extract(r.value, '$[{at[c]}]') END"
        if c == "call_count":
            return f"coalesce(json_extract(r.value, '$[{at[c]}]'), 0)"
        return f"json_extract(r.value, '$[{at[c]}]')"

    values = ", ".join(value(c) for c in _STORED_COLUMNS)
    # "WHERE true" keeps SQLite's parser from reading ON CONFLICT as a join constraint of the SELECT.
    return (
        f"INSERT INTO lead_cache ({', '.join(_STORED_COLUMNS)}, refill) "
        f"SELECT {values}, 0 FROM json_each(:page, '$.rows') AS r WHERE true {_CONFLICT}"
    )


@lru_cache(maxsize=8)
def _compact_upsert(columns: tuple[str, ...], codecs: tuple[str, ...]) -> str:
    """The one-statement upsert of a compact page (`lead_feed`): its rows decoded by SQLite straight into the cache
    (core/feed.py), the same values a plain page of the same rows gives. Decoding it into a plain page first and
    parsing that again cost twice the SQLite work per row (~35 us per row each at 24 columns on the dev VM)."""
    _require_feed_columns(columns)
    select = feed.compact_select(columns, codecs, _STORED_COLUMNS)
    return (
        f"INSERT INTO lead_cache ({', '.join(_STORED_COLUMNS)}, refill) "
        f"SELECT *, 0 FROM ({select}) WHERE true {_CONFLICT}"
    )


def feed_head(conn: sqlite3.Connection, text: str) -> FeedHead:
    """`Store.read_feed_head` on any SQLite connection: json_each reads the page, no table is touched. A thread
    fetching pages ahead reads their heads on a connection of its own (`decode_ahead`)."""
    kind, head = feed.top_level(conn, text)  # one parse of the top level
    layout = "columns" if "encoding" in head and "rows" not in kind and kind.get("cols") == "array" else "rows"
    if (kind.get("rows" if layout == "rows" else "cols"), kind.get("columns"), kind.get("next_since")) != (
        "array",
        "array",
        "integer",
    ):
        raise ValueError("the feed page is not a JSON object with columns, rows and next_since")
    next_since = int(head["next_since"])
    if next_since < 0:
        raise ValueError("next_since must be >= 0")
    cols = json.loads(head["columns"])
    if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
        raise ValueError("the feed page's columns are not a list of names")
    remaining = int(head["remaining"]) if kind.get("remaining") == "integer" else 0
    more = kind.get("more") == "true"
    if "encoding" not in head:
        return FeedHead(tuple(cols), next_since, more, remaining)
    codecs = json.loads(head["codecs"]) if kind.get("codecs") == "array" else None
    if not isinstance(codecs, list) or not all(isinstance(c, str) for c in codecs):
        raise ValueError("the compact feed page's codecs are not a list of names")
    feed.check_compact(head["encoding"], tuple(cols), tuple(codecs))
    ahead = json.loads(head["ahead"]) if kind.get("ahead") == "array" else []
    return FeedHead(
        tuple(cols),
        next_since,
        more,
        remaining,
        encoding=str(head["encoding"]),
        codecs=tuple(codecs),
        dicts=head["dicts"] if kind.get("dicts") == "object" else None,
        ahead=tuple(int(x) for x in ahead if isinstance(x, int)),
        layout=layout,
    )


@dataclass(frozen=True, slots=True)
class ReadyPage:
    """A feed page as the sync's decoding thread leaves it (`decode_ahead`): its text, its head (None when it did not
    read: the apply reads it again and says why) and, for a compact page the Python decoder took, its rows staged in a
    SQLite database image (`staged`, a table feed_rows of `rows` rows; None when the page is left to SQLite's
    decoder, or this SQLite cannot serialize)."""

    text: str
    head: FeedHead | None
    staged: bytes | None = None
    rows: int = 0


_AHEAD = threading.local()
# sqlite3 has Connection.serialize / deserialize when the SQLite it links was built with them (the default).
_CAN_STAGE = hasattr(sqlite3.Connection, "serialize") and hasattr(sqlite3.Connection, "deserialize")
_STAGE_DB = "feed_stage"
_CREATE_STAGED = f"CREATE TABLE feed_rows ({', '.join(_STORED_COLUMNS)})"
# 40 rows of 24 values: 960 parameters, under the 999 older SQLite builds allow per statement. Also ~12 % faster than
# one row per statement (4.4 against 5.0 us a row on the dev VM).
_STAGE_ROWS = 40
_STAGE_GROUP = "INSERT INTO feed_rows VALUES " + ", ".join(
    ["(" + ", ".join("?" for _ in _STORED_COLUMNS) + ")"] * _STAGE_ROWS
)
_UPSERT_FROM_IMAGE = (
    f"INSERT INTO lead_cache ({', '.join(_STORED_COLUMNS)}, refill) "
    f"SELECT *, 0 FROM {_STAGE_DB}.feed_rows WHERE true {_CONFLICT}"
)


def decode_ahead(text: str, head: FeedHead | None = None) -> ReadyPage:
    """Read a page's head, decode its rows and stage them in a fresh in-memory database, returned as its image: the
    work of a page that needs the GIL, done while the syncing thread applies the page before it (on one decoding
    thread; in decoding processes on a long pass, `stage_page`; on the caller's thread when `Store.apply_feed_page`
    is given no ready page). That apply is then one statement (`_UPSERT_FROM_IMAGE`), which SQLite runs with the GIL
    released, so on two cores the decoding (~12 us a row) and SQLite's writing (~8 at 1M) overlap instead of adding
    up (bench/bench_client.py). Handing over the decoded rows instead was no faster: binding them row by row on the
    syncing thread gives the GIL back at every row, and waiting for it again behind the decoding thread took as long
    as the overlap saved. `head`: the page's head when the caller has read it already (`Store.apply_feed_page`)."""
    if head is None:
        conn = getattr(_AHEAD, "conn", None)
        if conn is None:
            conn = _AHEAD.conn = sqlite3.connect(":memory:", isolation_level=None)
        try:
            head = feed_head(conn, text)
        except (ValueError, sqlite3.Error):
            return ReadyPage(text, None)
    if head.encoding is None or not _CAN_STAGE:
        return ReadyPage(text, head)
    image = sqlite3.connect(":memory:", isolation_level=None)
    try:
        tally = [-1]
        decode = feed.column_rows if head.layout == "columns" else feed.compact_rows
        rows = decode(text, head.columns, head.codecs, head.dicts, _STORED_COLUMNS, tally)
        last: list[tuple[Any, ...]] = []

        def groups() -> Iterator[tuple[Any, ...]]:
            # Streamed, never a page's rows all at once: 5,000 live tuples would each count towards the garbage
            # collector's next pass, and its full passes over the desk's heap hold the GIL.
            while len(group := list(islice(rows, _STAGE_ROWS))) == _STAGE_ROWS:
                yield tuple(chain.from_iterable(group))
            last.extend(group)

        image.execute(_CREATE_STAGED)
        image.execute("BEGIN")
        # _STAGE_ROWS rows per statement: sqlite3 gives the GIL back at every statement it steps, and each time the
        # other threads (the GUI, the applying thread, ten desks in one benchmark process) may keep it up to 5 ms.
        image.executemany(_STAGE_GROUP, groups())
        image.executemany(_STAGE_ROW, last)
        image.execute("COMMIT")
        return ReadyPage(text, head, image.serialize(), tally[0])
    except _LEFT_TO_SQL as exc:
        # The apply leaves it to the SQL decoder, which says what is wrong. Not at INFO with its text: a refused value
        # may be a customer's name.
        log.info("a compact feed page is applied by the SQL decoder (%s)", type(exc).__name__)
        log.debug("the Python decoder left it: %s", exc)
        return ReadyPage(text, head)
    finally:
        image.close()


def start_decoding_process(nice: int) -> None:
    """Initializer of a decoding process (sync.py): it ends with the desk (`end_with_parent`) and, when `nice` > 0,
    runs below the desk's own threads: `nice` added to its POSIX niceness, BELOW_NORMAL priority on Windows. It is
    CPU-bound for a whole first sync; at the same priority, on 2 cores, the GUI thread waking up queued behind it
    and the applying thread (the OS's scheduling, not the GIL: bench_ui's stall phase). Below them it runs on whatever
    CPU they leave, which on an idle core is all of it."""
    end_with_parent()
    if nice > 0:
        lower_priority(nice)


def lower_priority(nice: int) -> None:
    """This process below normal priority (see `start_decoding_process`); nothing where the OS refuses."""
    try:
        if os.name == "nt":
            import ctypes

            kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]  # Windows only
            kernel32.GetCurrentProcess.restype = ctypes.c_void_p  # a HANDLE: pointer-sized, not ctypes' default int
            kernel32.SetPriorityClass.argtypes = (ctypes.c_void_p, ctypes.c_uint32)
            if not kernel32.SetPriorityClass(kernel32.GetCurrentProcess(), 0x00004000):  # BELOW_NORMAL_PRIORITY_CLASS
                raise OSError("SetPriorityClass refused BELOW_NORMAL")
        else:
            os.nice(nice)
    except (OSError, AttributeError) as exc:
        log.debug("the decoding process keeps its priority: %s", exc)


def end_with_parent() -> None:
    """A decoding process (sync.py) ends when the desk's process does, also when that is killed.
    A pool's process otherwise waits for work forever: its own end of the work queue keeps the queue open. The
    parent's sentinel is a pipe (POSIX) or a process handle (Windows) that signals when the parent is gone."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def wait() -> None:
        parent.join()
        os._exit(0)

    threading.Thread(target=wait, name="end-with-parent", daemon=True).start()


def stage_page(text: str) -> tuple[FeedHead | None, bytes | None, int]:
    """`decode_ahead` in a decoding process (sync.py): (head, staged image, rows) go back, not the page's text, which
    the syncing process still holds (`ReadyPage(text, *stage_page(text))`)."""
    ready = decode_ahead(text)
    return ready.head, ready.staged, ready.rows


def _apply_image(conn: sqlite3.Connection, rows: int) -> tuple[int, int] | None:
    """Upsert the `rows` rows `decode_ahead` staged (its image attached as feed_stage), inside the caller's
    transaction: (rows, rows changed), or None, with nothing written, when the cache refuses a row (the SQL decoder
    then says why)."""
    try:
        applied = conn.execute(_UPSERT_FROM_IMAGE).rowcount  # one statement: all rows or none
    except sqlite3.IntegrityError as exc:
        log.info("a compact feed page is applied by the SQL decoder (%s)", type(exc).__name__)
        return None
    return rows, applied


def _apply_in_sql(conn: sqlite3.Connection, text: str, head: FeedHead) -> tuple[int, int]:
    """Upsert a page's rows in one statement, SQLite reading the page's text (a plain page; a compact page the Python
    decoder leaves to it), inside the caller's transaction: (rows, rows changed)."""
    if head.layout == "columns":  # the SQL decoder reads rows: the same page by row, each cell's text as sent
        text, head = feed.columns_to_rows(text), replace(head, layout="rows")
    upsert = _page_upsert(head.columns) if head.encoding is None else _compact_upsert(head.columns, head.codecs)
    count = conn.execute("SELECT json_array_length(:page, '$.rows')", {"page": text}).fetchone()[0]
    if head.encoding is not None:
        feed.load_dicts(conn, head.dicts)
    try:
        applied = conn.execute(upsert, {"page": text}).rowcount
    except sqlite3.IntegrityError as exc:  # a short row, or one without phone, UID or created_at
        raise ValueError(
            f"a feed row is not an array of {len(head.columns)} values with every required one ({exc})"
        ) from exc
    return int(count), applied


def _sources_encoder() -> Callable[[Any], str]:
    """The encoder for a feed row's `sources` list, the one per-row cost of a sync that is ours rather than SQLite's.

    `JSONEncoder.encode` builds a C encoder on every call (~2.4 us for a one-source list, ~15 % of a row's whole
    apply time); building it once and calling it directly costs ~0.7 us. `c_make_encoder` is the stdlib's own
    accelerator (absent on some interpreters: then the plain encoder). ASCII escaping keeps the fast C string path;
    the text is only ever read back by json.loads. No circular-reference check: the lists come from json.loads.
    """
    from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]

    if c_make_encoder is None:  # pragma: no cover - CPython always has it
        return json.JSONEncoder(separators=(",", ":")).encode

    def refuse(o: object) -> Any:
        raise TypeError(f"{type(o).__name__} in a feed row's sources is not JSON")

    chunks = c_make_encoder(None, refuse, encode_basestring_ascii, None, ":", ",", False, False, True)

    def encode(obj: Any) -> str:
        return "".join(chunks(obj, 0))

    return encode


_encode_sources = _sources_encoder()


def _sources(text: str) -> tuple[SourceSeen, ...]:
    try:
        items = json.loads(text)
    except ValueError:
        return ()
    if not isinstance(items, list):
        return ()
    return tuple(
        SourceSeen(str(s.get("source", "")), str(s.get("sub_source", "")), s.get("at"))
        for s in items
        if isinstance(s, dict)
    )


def summary_from_row(row: Sequence[Any]) -> LeadSummary:
    return LeadSummary(
        lead_id=row[0],
        phone=row[1],
        uid=row[2],
        customer_name=row[3],
        sources=_sources(row[4]),
        lead_status=row[5],
        final_status=row[6],
        cre_name=row[7],
        ps_name=row[8],
        branch=row[9],
        created_at=row[10],
        follow_up_date=row[11],
        cre_id=row[12],
        lead_category=row[13],
        model_interested=row[14],
        follow_up_at=row[15],
        last_call_at=row[16],
        call_count=row[17] or 0,
        won_at=row[18],
        lost_at=row[19],
        updated_at=row[20],
        test_drive_done=None if row[21] is None else bool(row[21]),
        ps_email=row[22],
    )


class CacheStore(StoreBase):
    """The cache file's half of `Store`."""

    def _recover_cache(self, *, force: bool) -> bool:
        if not force:
            try:
                conn = self._cache_db()
                with self._blame("cache"):
                    # Touch both tables: a damaged header or schema page fails here rather than mid-shift.
                    conn.execute("SELECT phone FROM lead_cache LIMIT 1").fetchall()
                    conn.execute("SELECT cursor FROM sync_state").fetchall()
                    if self._fill_mark().exists():  # an unsynced fill did not end: a power cut may have damaged it
                        problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check(5)").fetchall()]
                        if problems != ["ok"]:
                            raise StoreError("corrupt", "; ".join(problems), part="cache", path=self._path)
                        self._flush_cache_files()
                        fileops.unlink(self._fill_mark())
                return False
            except StoreError as exc:
                if exc.kind != "corrupt" and not isinstance(exc, NewerSchema):
                    raise
                log.warning("cache file unusable (%s); rebuilding it from the server", exc.message)
        self._close_cache()
        # Only downloaded data lives here, so the damaged file is removed rather than kept (it can be 100s of MB).
        # The -wal must go with it: a stale WAL would be replayed into the new file.
        with self._blame("cache"):
            for p in (self._path, *sidecars(self._path), self._fill_mark()):
                fileops.unlink(p, missing_ok=True)
        self._cache_db()
        return True

    def _fill_mark(self) -> Path:
        """The file that says an unsynced fill is under way (see "unsynced fill" above)."""
        return self._path.with_name(self._path.name + ".filling")

    def _flush_cache_files(self) -> None:
        """The cache file and its WAL flushed to the disk, whoever wrote them."""
        for p in (self._path, sidecars(self._path)[0]):
            if p.exists():
                fileops.flush_to_disk(p)

    # -- lead cache -----------------------------------------------------------------------------------------------

    def lookup(self, e164: str) -> LeadSummary | None:
        """The cached lead for a normalised number; runs on every keystroke, so it is one indexed seek."""
        try:
            row = self._cache_db().execute(_LOOKUP, {"phone": e164}).fetchone()
        except (sqlite3.Error, OSError) as exc:
            err = classify_error(exc, "cache", self._path)
            if err is None or err is exc:
                raise
            raise err from exc
        return None if row is None else summary_from_row(row)

    def apply_changes(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], next_since: int) -> int:
        """Upsert one feed page and move the cursor to `next_since`, in one transaction.

        The cursor never gets ahead of the data: a crash or a bad row leaves both as they were, and the page is
        fetched again. `sources` may be the feed's JSON text (stored as is) or the parsed list (encoded once).
        Returns the number of rows inserted or changed (an older version of a lead already cached counts as 0).
        """
        cols = list(columns)
        _require_feed_columns(cols)
        if next_since < 0:
            raise ValueError("next_since must be >= 0")
        width = len(cols)
        at_sources = cols.index("sources")
        encode = _encode_sources

        def params() -> Iterator[dict[str, Any]]:
            for row in rows:
                if len(row) != width:
                    raise ValueError(f"feed row has {len(row)} values for {width} columns")
                values = dict.fromkeys(LIFE_COLUMNS)
                values.update(zip(cols, row, strict=True))
                values["call_count"] = values["call_count"] or 0
                sources = row[at_sources]
                if not isinstance(sources, str):
                    values["sources"] = encode(sources)
                yield values

        with self._blame("cache"):
            conn = self._cache_db()
            with write_txn(conn):
                applied = conn.executemany(_UPSERT_LEAD, params()).rowcount
                conn.execute(_SET_CURSOR, {"cursor": int(next_since), "now": time.time()})
        return max(applied, 0)

    def read_feed_head(self, text: str) -> FeedHead:
        """What a `lead_changes` answer (JSON text) says besides its rows: columns, next_since, more, remaining.

        Lets the sync ask for the next page while this one is applied. One parse, in SQLite, with the GIL released.
        Raises ValueError for a page that is not a well-formed feed page.
        """
        with self._blame("cache"):
            return feed_head(self._cache_db(), text)

    def apply_feed_page(self, text: str, head: FeedHead | None = None, ready: ReadyPage | None = None) -> FeedPage:
        """Apply one `lead_changes` answer as the server sent it (JSON text), in one transaction, like `apply_changes`.

        SQLite reads the page itself (``json_each``) with the GIL released, so a 5,000-row page costs the GUI thread
        nothing; decoding it with ``json.loads`` first held the GIL ~12 ms per page and fed the garbage collector
        65k objects (bench_ui.py's stall phase). `head` is `read_feed_head(text)` when the caller already has it;
        `ready` is the page as the sync's decoding thread left it (`decode_ahead`: its text is used, and its staged
        rows go into the cache in one statement).
        Raises ValueError for a page that is not a well-formed feed page; nothing is applied then.
        """
        if ready is not None:
            text, head = ready.text, head or ready.head
        if head is None:
            head = self.read_feed_head(text)
        if ready is None and head.encoding is not None:
            ready = decode_ahead(text, head)  # decoded and staged on this thread; the sync does it ahead on another
        # A page decode_ahead did not stage (plain, or its decoder refused it, or no serialize) is SQLite's to decode.
        image = ready.staged if ready is not None else None
        with self._blame("cache"):
            conn = self._cache_db()
            if image is not None:
                conn.execute(f"ATTACH ':memory:' AS {_STAGE_DB}")  # not inside a transaction: SQLite refuses that
            try:
                if image is not None:
                    conn.deserialize(image, name=_STAGE_DB)
                with write_txn(conn):
                    done = None
                    if image is not None:
                        done = _apply_image(conn, ready.rows if ready is not None else 0)
                    if done is None:
                        done = _apply_in_sql(conn, text, head)
                    count, applied = done
                    conn.execute(_SET_CURSOR, {"cursor": head.next_since, "now": time.time()})
            finally:
                if image is not None:
                    conn.execute(f"DETACH {_STAGE_DB}")
        return FeedPage(count, max(applied, 0), head.next_since, head.more, head.remaining)

    def begin_bulk_fill(self) -> bool:
        """Before the first page of a large first sync: drop the secondary indexes of an *empty* cache (see "bulk
        fill" above; the name index stays, kept in step by its triggers). True when the cache was empty (and they
        are dropped now)."""
        with self._blame("cache"):
            conn = self._cache_db()
            with write_txn(conn):
                if conn.execute("SELECT 1 FROM lead_cache LIMIT 1").fetchone() is not None:
                    return False
                present = {n for (n,) in conn.execute("SELECT name FROM sqlite_master").fetchall()}
                for kind, name, _ in _deferrable():
                    if kind == "index" and name in present:
                        conn.execute(f'DROP INDEX "{name}"')
        log.info("first sync: cache indexes are built when it has caught up")
        return True

    def finish_bulk_fill(self, *, team_indexes: bool = True, on_build: Callable[[], None] | None = None) -> bool:
        """Build whatever a bulk fill dropped (indexes; and the name index from the cached rows, then its triggers,
        where an older desk's bulk fill dropped them), in one transaction; the team lead's indexes (TEAM_INDEXES)
        only when `team_indexes`. Cheap when nothing is missing (one read of the schema). True when something was
        built. `on_build` is called before building, only when something is missing (the sync tells the window)."""
        with self._blame("cache"):
            conn = self._cache_db()
            missing = self._missing(conn, team_indexes=team_indexes)
            if not missing:
                return False
            if on_build is not None:
                on_build()
            started = time.monotonic()
            with write_txn(conn):
                for kind, _name, sql in missing:
                    if kind == "index":
                        conn.execute(sql)
                if any(name in _NAME_TRIGGERS for _, name, _ in missing):
                    conn.execute(_REBUILD_NAMES)  # before the triggers: the rows are indexed once
                    for kind, _name, sql in missing:
                        if kind == "trigger":
                            conn.execute(sql)
        log.info("cache indexes built after the first sync in %.1f s", time.monotonic() - started)
        return True

    @staticmethod
    def _missing(conn: sqlite3.Connection, *, team_indexes: bool) -> list[tuple[str, str, str]]:
        """What a bulk fill left out (`_deferrable`) and is not there yet; the team lead's indexes only when asked."""
        present = {n for (n,) in conn.execute("SELECT name FROM sqlite_master").fetchall()}
        return [
            (kind, name, sql)
            for kind, name, sql in _deferrable()
            if name not in present and (team_indexes or name not in TEAM_INDEXES)
        ]

    @classmethod
    def _filling(cls, conn: sqlite3.Connection) -> bool:
        """A bulk fill is under way: what a CRE's desk keeps of the indexes it drops is still missing."""
        return bool(cls._missing(conn, team_indexes=False))

    def begin_unsynced_fill(self) -> bool:
        """During a bulk fill (the indexes a CRE's desk keeps are left for its end: a first sync, or one resumed after
        a close), commit without waiting for the disk (synchronous=OFF on this store's connection) until
        `end_unsynced_fill`, the fill marked as under way ("unsynced fill" above). True when so; False, and nothing
        changed, when the cache is not being filled."""
        with self._blame("cache"):
            conn = self._cache_db()
            if not self._filling(conn):
                return False
            fileops.create_on_disk(self._fill_mark())  # before the first unsynced write
            conn.execute("PRAGMA synchronous = OFF")
        return True

    def end_unsynced_fill(self) -> None:
        """After `begin_unsynced_fill`: back to the cache's usual setting, everything written so far flushed to the
        disk, and the fill's mark removed. A failure leaves the mark: the next start checks the file."""
        started = time.monotonic()
        with self._blame("cache"):
            self._cache_db().execute(f"PRAGMA synchronous = {CACHE_SYNCHRONOUS}")
            self._flush_cache_files()
            fileops.unlink(self._fill_mark())
        log.info("the cache's fill flushed to the disk in %.2f s", time.monotonic() - started)

    def desk_owner(self) -> str | None:
        """The CRE whose leads my_leads holds (the signed-in user), or None before the first sign-in."""
        with self._blame("cache"):
            row = self._cache_db().execute("SELECT cre_id FROM desk_owner WHERE id = 1").fetchone()
        return None if row is None else row[0]

    def set_desk_owner(self, cre_id: str | None) -> bool:
        """Keep `cre_id`'s leads together in my_leads (once per user and cache file: a scan of the cache when it
        changes, ~1 s at 1M; run off the GUI thread, at sign-in). Returns True when it changed."""
        if cre_id == self.desk_owner():
            return False
        with self._blame("cache"):
            conn = self._cache_db()
            with write_txn(conn):
                conn.execute(
                    "INSERT INTO desk_owner (id, cre_id) VALUES (1, :cre) "
                    "ON CONFLICT (id) DO UPDATE SET cre_id = excluded.cre_id",
                    {"cre": cre_id},
                )
                conn.execute("DELETE FROM my_leads")
                conn.execute(
                    f"INSERT INTO my_leads (phone, {_MY_COLUMNS}) "
                    f"SELECT phone, {_MY_COLUMNS} FROM lead_cache WHERE cre_id = :cre",
                    {"cre": cre_id},
                )
        return True

    def sync_cursor(self) -> int:
        """The feed position the next `lead_changes` call starts after; 0 for an empty cache."""
        with self._blame("cache"):
            row = self._cache_db().execute("SELECT cursor FROM sync_state WHERE id = 1").fetchone()
        return 0 if row is None else int(row[0])

    def last_synced_at(self) -> float | None:
        """When the last page was applied (epoch seconds), for "cache as of …" in the status bar."""
        with self._blame("cache"):
            row = self._cache_db().execute("SELECT synced_at FROM sync_state WHERE id = 1").fetchone()
        return None if row is None else float(row[0])

    def first_sync_pending(self) -> bool:
        """Whether this cache has not caught up with the server even once: no page applied yet, or a first sync's
        bulk fill still under way (its indexes are built when it catches up; a desk closed or cut off halfway). A
        number such a cache does not know may still be a lead."""
        if self.last_synced_at() is None:
            return True
        with self._blame("cache"):
            return self._filling(self._cache_db())

    def cache_count(self) -> int:
        """Number of cached leads. A count over the phone index: tens of ms at 1M, so not for every keystroke."""
        with self._blame("cache"):
            return int(self._cache_db().execute("SELECT count(*) FROM lead_cache").fetchone()[0])

    def clear_cache(self) -> None:
        """Empty the cache and reset the cursor together, for a full re-sync (e.g. the server's feed was reset)."""
        with self._blame("cache"):
            conn = self._cache_db()
            with write_txn(conn):
                # No WHERE: SQLite's truncate optimisation drops the pages instead of deleting 1M rows one by one.
                conn.execute("DELETE FROM lead_cache")
                conn.execute("DELETE FROM my_leads")
                conn.execute("INSERT INTO lead_names (lead_names) VALUES ('delete-all')")
                conn.execute("DELETE FROM sync_state")
