"""The cache feed's compact page encoding (server: `lead_feed`, migration 006), decoded back into a plain page.

Why a second encoding: `lead_changes` spells every value out in every row, ~270 bytes per lead; a call centre's desks
share one office link, so a first sync of a million leads was ~270 MB per desk. `lead_feed` sends the same columns
with repeated values as indexes into a per-page dictionary, growing numbers and timestamps as differences, and
nothing rounded (see 006_compact_feed.sql for the codecs).

How a desk reads it: the store decodes a compact page straight into the cache, in the same one-statement upsert it
uses for a plain page (`compact_select` + `load_dicts`, called by `Store.apply_feed_page`): SQLite does the work
(``json_each`` + window sums, dictionaries as a temp table), with the interpreter lock released. Decoding it into a
plain page first (`decode_page`) and parsing that again made SQLite read every cell twice: ~35 us per row each way
at 24 columns on the dev VM, and the first sync was CPU-bound on it (issue 12). `decode_page` stays for tests and
tools: the plain page it gives is what `lead_changes` sends for the same rows, value for value, and the cache rows
either way are the same (tests/test_feed.py).

A page without ``"encoding"`` is a plain page and is returned as is; an encoding or codec this desk does not know
raises ValueError (the sync retries; it never misreads a newer server's page).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from functools import lru_cache

ENCODING = "compact-1"
CODECS = frozenset({"raw", "bool", "delta", "dict", "created", "at", "day", "sources"})

_local = threading.local()
_NAME = re.compile(r"[a-z_][a-z0-9_]*")

# The top level of a page, without copying the rows out (as Store.read_feed_head does).
_HEAD = "SELECT key, type, CASE WHEN key = 'rows' THEN NULL ELSE value END FROM json_each(:page)"


_DICT_TABLE = """
    CREATE TABLE feed_dict (
        name  TEXT NOT NULL,     -- the column (or "source" / "sub_source")
        i     INTEGER NOT NULL,  -- the index a row holds
        v,                       -- the value as SQL (true/false as 1/0: see t)
        t     TEXT NOT NULL,     -- its JSON type
        PRIMARY KEY (name, i)
    ) WITHOUT ROWID
"""
_LOAD_DICTS = """
    INSERT INTO feed_dict (name, i, v, t)
    SELECT c.key, e.key, e.value, e.type FROM json_each(:dicts) AS c, json_each(c.value) AS e WHERE c.type = 'array'
"""


def _db() -> sqlite3.Connection:
    """One in-memory database per thread: sqlite3 connections are not shared between threads."""
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=True)
        conn.execute(_DICT_TABLE)
        _local.conn = conn
    return conn


def _ts(us: str) -> str:
    """SQL for an ISO 8601 UTC timestamp from integer microseconds since the epoch, spelled as PostgreSQL's JSON
    spells a timestamptz in a UTC session: ``2026-11-28T10:00:00.12345+00:00`` (fraction without trailing zeros,
    none when whole). Integer arithmetic only: SQLite's date functions keep milliseconds, not microseconds."""
    # datetime() + replace() take half the time of strftime(); the fraction's six digits are the text of
    # 1000000 + fraction without its leading 1 rather than printf('%06d'): ~1 us a value on the dev VM, not ~2.
    frac = f"((({us}) % 1000000 + 1000000) % 1000000)"
    secs = f"((({us}) - {frac}) / 1000000)"
    return (
        f"CASE WHEN ({us}) IS NULL THEN NULL ELSE replace(datetime({secs}, 'unixepoch'), ' ', 'T')"
        f" || CASE WHEN {frac} = 0 THEN '' ELSE '.' || rtrim(substr(1000000 + {frac}, 2), '0') END || '+00:00' END"
    )


def _dict_value(alias: str) -> str:
    """SQL for a dictionary entry joined as `alias` (feed_dict), its JSON type kept."""
    return f"CASE {alias}.t WHEN 'true' THEN json('true') WHEN 'false' THEN json('false') ELSE {alias}.v END"


def _dict_lookup(table: str, name: str, index: str) -> str:
    """SQL for one dictionary entry by (name, index), for the few lookups that cannot be a join (sources)."""
    return f"(SELECT {_dict_value('x')} FROM {table} AS x WHERE x.name = '{name}' AND x.i = ({index}))"


def _check(columns: tuple[str, ...], codecs: tuple[str, ...]) -> None:
    if len(columns) != len(codecs):
        raise ValueError("the feed page has a codec per column")
    unknown = sorted(set(codecs) - CODECS)
    if unknown:
        raise ValueError(f"the feed page uses codec(s) {unknown} this desk does not know")
    if codecs.count("created") != 1:
        raise ValueError("a compact feed page has exactly one 'created' column")
    for col, codec in zip(columns, codecs, strict=True):
        if codec == "dict" and not _NAME.fullmatch(col):  # it is spelled into the statement
            raise ValueError(f"the feed column name {col!r} is not a plain name")


def _rows_sql(columns: tuple[str, ...], codecs: tuple[str, ...], table: str, *, as_json: bool) -> tuple[list[str], str]:
    """The value of every column of a compact page's rows as SQL, and the FROM clause they read (one row per page row,
    in page order as `q.k`; `q.v` is the row). `as_json`: values for a JSON array (true/false as JSON, sources as
    JSON); otherwise the SQL values `json_extract` gives for the same cell of a plain page (true/false as 1/0,
    sources as JSON text), which is what the cache stores. `table` holds the page's dictionaries (feed_dict)."""
    _check(columns, codecs)
    sums: list[str] = []  # running sums over the page, in row order: the delta and created codecs
    cells: list[str] = []  # cells read once below, because their SQL uses them several times (no CSE in SQLite)
    ci = codecs.index("created")
    for i, codec in enumerate(codecs):
        if codec in ("delta", "created"):
            sums.append(f"sum(json_extract(r.value, '$[{i}]')) OVER w AS s{i}")
        elif codec in ("at", "day"):
            cells.append(f"json_extract(r.value, '$[{i}]') AS c{i}")
    created_us = f"q.s{ci}"
    # SQLite caches a parsed row per call site only, so every json_extract below parses the (short) row again;
    # still cheaper than json_each per row with a CASE per cell (measured). created_at is formatted once per row and
    # reused for the timestamps equal to it (updated_at, a source's "at": often the same instant).
    joins: list[str] = []  # one dictionary join per dict column: a primary-key seek
    out: list[str] = []
    for i, (col, codec) in enumerate(zip(columns, codecs, strict=True)):
        cell = f"json_extract(q.v, '$[{i}]')"
        if codec == "raw":
            out.append(cell)
        elif codec == "bool":
            out.append(f"CASE {cell} WHEN 1 THEN json('true') WHEN 0 THEN json('false') END" if as_json else cell)
        elif codec == "delta":
            out.append(f"q.s{i}")
        elif codec == "created":
            out.append("q.created")
        elif codec == "at":
            out.append(f"CASE q.c{i} WHEN 0 THEN q.created ELSE {_ts(f'q.a{i}')} END")
        elif codec == "day":
            out.append(f"CASE WHEN q.c{i} IS NULL THEN NULL ELSE date((q.day + q.c{i}) * 86400, 'unixepoch') END")
        elif codec == "dict":
            joins.append(f"LEFT JOIN {table} AS d{i} ON d{i}.name = '{col}' AND d{i}.i = {cell}")
            out.append(_dict_value(f"d{i}") if as_json else f"d{i}.v")
        else:  # sources: [[source id, sub_source id, microseconds after created_at], ...]
            source = _dict_lookup(table, "source", "json_extract(s.value, '$[0]')")
            sub_source = _dict_lookup(table, "sub_source", "json_extract(s.value, '$[1]')")
            delta = "json_extract(s.value, '$[2]')"
            seen_at = f"CASE {delta} WHEN 0 THEN q.created ELSE {_ts(f'{created_us} + {delta}')} END"
            agg = f"json_group_array(json_object('at', {seen_at}, 'source', {source}, 'sub_source', {sub_source}))"
            many = f"(SELECT {agg} FROM json_each(q.v, '$[{i}]') AS s)"
            # Nearly every lead has one source: the same text spelled out, without json_each and an aggregate per
            # row (~7 us of ~30 per row). json_quote spells a value as json_object does.
            first_delta = f"json_extract(q.v, '$[{i}][0][2]')"
            first_at = f"CASE {first_delta} WHEN 0 THEN q.created ELSE {_ts(f'{created_us} + {first_delta}')} END"
            first_source = _dict_lookup(table, "source", f"json_extract(q.v, '$[{i}][0][0]')")
            first_sub_source = _dict_lookup(table, "sub_source", f"json_extract(q.v, '$[{i}][0][1]')")
            single = (
                f"""'[{{"at":' || json_quote({first_at}) || ',"source":' || json_quote({first_source})"""
                f""" || ',"sub_source":' || json_quote({first_sub_source}) || '}}]'"""
            )
            one = f"json_array_length(q.v, '$[{i}]') = 1 AND json_type(q.v, '$[{i}][0]') = 'array'"
            text = f"CASE WHEN {one} THEN {single} ELSE {many} END"
            out.append(f"json({text})" if as_json else text)
    window = ", ".join([*sums, *cells])
    passed = [f"s{i}" for i, c in enumerate(codecs) if c in ("delta", "created")]
    passed += [f"c{i}" for i, c in enumerate(codecs) if c in ("at", "day")]
    passed += [f"s{ci} + c{i} AS a{i}" for i, c in enumerate(codecs) if c == "at"]
    day = f"((s{ci} - ((s{ci} % 86400000000 + 86400000000) % 86400000000)) / 86400000000)"
    source = (
        f"(SELECT k, v, {', '.join(passed)}, {_ts(f's{ci}')} AS created, {day} AS day FROM ("
        f" SELECT r.key AS k, r.value AS v, {window} FROM json_each(:page, '$.rows') AS r"
        " WINDOW w AS (ORDER BY r.key ROWS UNBOUNDED PRECEDING))"
        # The plain page lists rows in page order; the cache does not care (no sort of a 5,000-row page then).
        f"{' ORDER BY k' if as_json else ''}) AS q " + " ".join(joins)
    )
    return out, source


@lru_cache(maxsize=8)
def _decoder(columns: tuple[str, ...], codecs: tuple[str, ...]) -> str:
    """The one statement that turns a compact page into a plain one (after the page's dictionaries are loaded)."""
    out, source = _rows_sql(columns, codecs, "feed_dict", as_json=True)
    return (
        "SELECT json_object('columns', json(:columns), 'rows', json_group_array(json_array("
        + ", ".join(out)
        + ")), 'next_since', :next_since, 'more', json(:more), 'remaining', :remaining) FROM "
        + source
    )


@lru_cache(maxsize=8)
def compact_select(columns: tuple[str, ...], codecs: tuple[str, ...], wanted: tuple[str, ...]) -> str:
    """A SELECT of a compact page's rows (`:page`) as the SQL values a plain page's rows give (see `_rows_sql`), the
    columns in `wanted` order (a column the page lacks is NULL; call_count 0), after the page's dictionaries are in
    temp.feed_dict (`load_dicts`). For the store, which inserts them into the cache in the same statement: no plain
    page is built and parsed again. A row that is not an array of the page's width has no phone (NULL)."""
    out, source = _rows_sql(columns, codecs, "temp.feed_dict", as_json=False)
    at = {c: i for i, c in enumerate(columns)}
    values = []
    for c in wanted:
        if c not in at:
            values.append("0" if c == "call_count" else "NULL")
        elif c == "phone":
            values.append(f"CASE WHEN json_array_length(q.v) = {len(columns)} THEN {out[at[c]]} END")
        elif c == "call_count":
            values.append(f"coalesce({out[at[c]]}, 0)")
        else:
            values.append(out[at[c]])
    return f"SELECT {', '.join(values)} FROM {source}"


def load_dicts(conn: sqlite3.Connection, dicts: str | None) -> None:
    """Put a compact page's dictionaries (its "dicts" object as JSON text, or None) into temp.feed_dict of `conn`,
    for `compact_select`. A temp table: per connection, never in the cache file or its schema."""
    conn.execute(_DICT_TABLE.replace("CREATE TABLE feed_dict", "CREATE TEMP TABLE IF NOT EXISTS feed_dict"))
    conn.execute("DELETE FROM temp.feed_dict")
    if dicts is not None:
        conn.execute(_LOAD_DICTS.replace("INTO feed_dict", "INTO temp.feed_dict"), {"dicts": dicts})


def check_compact(encoding: object, columns: tuple[str, ...], codecs: tuple[str, ...]) -> None:
    """Raise ValueError for a compact page this desk cannot read (encoding, codecs)."""
    if encoding != ENCODING:
        raise ValueError(f"the feed page's encoding {encoding!r} is not one this desk reads")
    _check(columns, codecs)


def decode_page(text: str) -> str:
    """A feed page as JSON text → the plain page (columns + rows) as JSON text; a plain page comes back unchanged.

    Raises ValueError for a page that is not JSON, not a feed page, or in an encoding this desk does not know."""
    return decode_feed(text)[0]


def decode_feed(text: str) -> tuple[str, tuple[int, ...]]:
    """`decode_page`, plus the `since` of the pages after the next one when the page announced them ("ahead"), so
    the sync can ask for several pages at once (a plain page announces none)."""
    conn = _db()
    try:
        found = conn.execute(_HEAD, {"page": text}).fetchall()
    except sqlite3.OperationalError as exc:
        if "malformed JSON" in str(exc):
            raise ValueError("the feed page is not JSON") from exc
        raise
    kind = {key: typ for key, typ, _ in found}
    head = {key: value for key, _, value in found}
    if "encoding" not in head:
        return text, ()  # lead_changes: already plain
    if head["encoding"] != ENCODING:
        raise ValueError(f"the feed page's encoding {head['encoding']!r} is not one this desk reads")
    if (kind.get("rows"), kind.get("columns"), kind.get("codecs"), kind.get("next_since")) != (
        "array",
        "array",
        "array",
        "integer",
    ):
        raise ValueError("the compact feed page lacks rows, columns, codecs or next_since")
    columns = json.loads(head["columns"])
    codecs = json.loads(head["codecs"])
    if not all(isinstance(c, str) for c in [*columns, *codecs]):
        raise ValueError("the feed page's columns and codecs are not names")
    sql = _decoder(tuple(columns), tuple(codecs))
    params: dict[str, object] = {
        "page": text,
        "columns": head["columns"],
        "next_since": head["next_since"],
        "more": "true" if kind.get("more") == "true" else "false",
        "remaining": head.get("remaining") if kind.get("remaining") == "integer" else 0,
    }
    try:
        # The page's dictionaries as a keyed table: a lookup per row and column is then a b-tree seek. (As JSON,
        # eleven dictionaries and the row overflowed SQLite's cache of parsed JSON: ~1 s per 5,000 rows.)
        conn.execute("DELETE FROM feed_dict")
        if kind.get("dicts") == "object":
            conn.execute(_LOAD_DICTS, {"dicts": head["dicts"]})
        row = conn.execute(sql, params).fetchone()
    except sqlite3.OperationalError as exc:
        raise ValueError(f"the compact feed page cannot be decoded ({exc})") from exc
    ahead = json.loads(head["ahead"]) if kind.get("ahead") == "array" else []
    return str(row[0]), tuple(int(x) for x in ahead if isinstance(x, int))
