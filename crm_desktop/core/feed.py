"""The cache feed's compact page encoding (server: `lead_feed`, migration 006), decoded back into a plain page.

Why a second encoding: `lead_changes` spells every value out in every row, ~270 bytes per lead; a call centre's desks
share one office link, so a first sync of a million leads was ~270 MB per desk. `lead_feed` sends the same columns
with repeated values as indexes into a per-page dictionary, growing numbers and timestamps as differences, and
nothing rounded (see 006_compact_feed.sql for the codecs).

How a desk reads it: the store decodes a compact page row by row in Python (`compact_rows`, at the end of this
module) and upserts the rows with executemany; a page holding anything off the server's shapes is left to the SQL
decoder, which reads the page straight into the cache in one statement (`compact_select` + `load_dicts`: SQLite's
``json_each`` + window sums, dictionaries as a temp table). The SQL decoder came first and is the reference: SQLite
3.40 parses a row's text again for every cell it reads, ~28 us per row at 24 columns on the dev VM against ~14-19
for the Python decoder and its upsert (issue 12; bench/bench_apply.py). Decoding into a plain page first
(`decode_page`) and parsing that again cost twice that. `decode_page` stays for tests and tools: the plain page it
gives is what `lead_changes` sends for the same rows, value for value, and the cache rows either way are the same
(tests/test_feed.py).

A page without ``"encoding"`` is a plain page and is returned as is; an encoding or codec this desk does not know
raises ValueError (the sync retries; it never misreads a newer server's page).

A compact page comes in one of two layouts: its rows one after the other (``"rows"``), or, when the desk asks for it
(``lead_feed(..., layout => 'columns')``, migration 008), column by column (``"cols"``: one array per column, each
as long as the page). Like values side by side compress a third smaller (1M leads, zstd: 39.4 -> 25.8 B/lead), so a
long sync asks for that; its decoding processes parse such a page whole and zip the columns into the same rows
(`column_rows`). The SQL decoder reads rows: a page by column goes to it as the same page by row, every cell's text
as sent (`columns_to_rows`).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import date
from functools import lru_cache
from json.scanner import make_scanner
from typing import Any

ENCODING = "compact-1"
CODECS = frozenset({"raw", "bool", "delta", "dict", "created", "at", "day", "sources"})

_local = threading.local()
_NAME = re.compile(r"[a-z_][a-z0-9_]*")

# The top level of a page, without copying the rows out (as Store.read_feed_head does).
_HEAD = "SELECT key, type, CASE WHEN key IN ('rows', 'cols') THEN NULL ELSE value END FROM json_each(:page)"


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


def top_level(conn: sqlite3.Connection, text: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A feed page's top level, read by SQLite's json_each on `conn` (no table is touched): (JSON type by key, value
    by key; the rows' value is not copied out, only its type). ValueError for text that is not JSON."""
    try:
        found = conn.execute(_HEAD, {"page": text}).fetchall()
    except sqlite3.OperationalError as exc:
        if "malformed JSON" in str(exc):
            raise ValueError("the feed page is not JSON") from exc
        raise
    return {key: typ for key, typ, _ in found}, {key: value for key, _, value in found}


def decode_feed(text: str) -> tuple[str, tuple[int, ...]]:
    """`decode_page`, plus the `since` of the pages after the next one when the page announced them ("ahead"), so
    the sync can ask for several pages at once (a plain page announces none)."""
    conn = _db()
    kind, head = top_level(conn, text)
    if "encoding" not in head:
        return text, ()  # lead_changes: already plain
    if kind.get("cols") == "array" and "rows" not in kind:  # laid out by column: the same page by row first
        text = columns_to_rows(text)
        kind, head = top_level(conn, text)
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


# -- the same decoding in Python, row by row ------------------------------------------------------------------------
# What the store applies a compact page with (`compact_rows`, staged with executemany, then one upsert: cache.py):
# ~14-19 us per row against ~28 for the SQL above (bench/bench_apply.py, minimum of 5 runs at load 1-3 on the dev
# VM), which SQLite 3.40 runs by parsing a row's text again for every cell it reads. The page is walked one row at a
# time (one C call of the json scanner each, ~2-3 us), never parsed whole: `json.loads` of a 5,000-row page held the
# interpreter lock (and so the GUI) ~12 ms, and its 65k objects woke the garbage collector. Here every row's objects
# are freed before the next is read, and executemany releases the lock around each row's insert.
#
# It gives exactly what the SQL gives, down to the text of `sources`; where that is not obviously so, it does not
# guess: anything off the shape the server sends (a float, a value of the wrong type, an index outside its dictionary,
# a timestamp outside years 1-9999, a row of the wrong width, ...) raises `NotPlain` or a TypeError / ValueError /
# KeyError / OverflowError on the way, and the store applies that page with the SQL decoder instead (which also
# says what is wrong with a broken page). tests/test_feed.py compares both on the server's pages, odd text included.


class NotPlain(ValueError):
    """The compact page holds something the Python decoder leaves to the SQL one (see above)."""


def _no_float(text: str) -> Any:
    # SQLite and Python may round a decimal differently in the last bit; the feed sends integers only.
    raise NotPlain(f"a float in a compact page ({text})")


def _no_constant(text: str) -> Any:
    raise NotPlain(f"{text} in a compact page")


def _each_key_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):  # SQLite and Python might take different ones
        raise NotPlain("a key twice in an object")
    return found


_JSON = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_constant)
# A page parsed whole (`column_rows`): its objects are the top level and the dictionaries; checking keys costs nothing.
_JSON_PAGE = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_constant, object_pairs_hook=_each_key_once)
_SPACE = re.compile(r"[ \t\n\r]*")

Scan = Callable[[str, int], tuple[Any, int]]


def _scanner() -> Scan:
    """The json module's scanner: (text, index) -> (value, end), StopIteration when no value starts there. What
    JSONDecoder.raw_decode calls; called directly, ~0.4 us a row cheaper (a Python frame and a try less). One per
    page: it keeps a memo of object keys between calls, so threads do not share one."""
    return make_scanner(_JSON)  # type: ignore[arg-type]  # typeshed types the class, not the call


def _skip(text: str, at: int) -> int:
    return _SPACE.match(text, at).end()  # type: ignore[union-attr]  # it matches the empty string too


def _value(scan: Scan, text: str, at: int) -> tuple[Any, int]:
    try:
        return scan(text, at)
    except StopIteration:
        raise NotPlain(f"no JSON value at {at}") from None


def _rows_start(scan: Scan, text: str) -> int:
    """Where the first row of a page's top-level "rows" array starts (or its "]"), the keys before it read over."""
    at = _skip(text, 0)
    if text[at : at + 1] != "{":
        raise NotPlain("the page is not a JSON object")
    at = _skip(text, at + 1)
    seen: set[str] = set()
    while text[at : at + 1] == '"':
        key, at = _value(scan, text, at)
        if key in seen:  # SQLite and Python might take different ones
            raise NotPlain(f"the key {key!r} twice")
        seen.add(key)
        at = _skip(text, at)
        if text[at : at + 1] != ":":
            raise NotPlain("no ':' after a key")
        at = _skip(text, at + 1)
        if key == "rows":
            if text[at : at + 1] != "[":
                raise NotPlain("rows is not an array")
            return _skip(text, at + 1)
        _, at = _value(scan, text, at)  # the head: a few small values
        at = _skip(text, at)
        if text[at : at + 1] == ",":
            at = _skip(text, at + 1)
    raise NotPlain("the page has no rows array")


def columns_to_rows(text: str) -> str:
    """A page laid out by column ("cols": one array per column, migration 008) as the same page laid out by row, every
    cell's text and every other key's value exactly as the server sent them: what the SQL decoder (and `decode_page`)
    reads. ValueError for a page that is not an object, whose cols are not arrays of one length, or with a key twice.
    Any JSON value passes as it is (a float too): the SQL decoder decides about it."""
    scan: Scan = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # as in _scanner
    parts: list[str] = []
    seen: set[str] = set()
    try:
        at = _skip(text, 0)
        if text[at : at + 1] != "{":
            raise NotPlain("the page is not a JSON object")
        at = _skip(text, at + 1)
        while text[at : at + 1] == '"':
            key, end = _value(scan, text, at)
            key = "rows" if key == "cols" else key
            if key in seen:
                raise NotPlain(f"the key {key!r} twice")
            seen.add(key)
            at = _skip(text, end)
            if text[at : at + 1] != ":":
                raise NotPlain("no ':' after a key")
            at = _skip(text, at + 1)
            if key == "rows":
                value, at = _transposed(scan, text, at)
            else:
                start = at
                _, at = _value(scan, text, at)
                value = text[start:at]
            parts.append(f"{json.dumps(key)}:{value}")
            at = _skip(text, at)
            if text[at : at + 1] == ",":
                at = _skip(text, at + 1)
        if text[at : at + 1] != "}":
            raise NotPlain("the page's object does not end")
    except NotPlain as exc:
        raise ValueError(f"the feed page cannot be read by column ({exc})") from None
    return "{" + ",".join(parts) + "}"


def _transposed(scan: Scan, text: str, at: int) -> tuple[str, int]:
    """The rows of the "cols" value at `at` (arrays of cells' text), and where that value ends."""
    columns: list[list[str]] = []

    def items(at: int, item: Callable[[int], int]) -> int:  # a JSON array at `at`; item(start) -> its end
        if text[at : at + 1] != "[":
            raise NotPlain(f"no array at {at}")
        at = _skip(text, at + 1)
        if text[at : at + 1] == "]":
            return at + 1
        while True:
            at = _skip(text, item(at))
            if text[at : at + 1] == "]":
                return at + 1
            if text[at : at + 1] != ",":
                raise NotPlain(f"no ',' or ']' at {at}")
            at = _skip(text, at + 1)

    def column(start: int) -> int:
        cells: list[str] = []
        columns.append(cells)

        def cell(start: int) -> int:
            _, end = _value(scan, text, start)
            cells.append(text[start:end])
            return end

        return items(start, cell)

    end = items(at, column)
    if len({len(c) for c in columns}) > 1:
        raise NotPlain("the page's columns are not all as long")
    return "[" + ",".join("[" + ",".join(row) + "]" for row in zip(*columns, strict=True)) + "]", end


def page_rows(text: str, tally: list[int] | None = None) -> Iterator[Any]:
    """The rows of a feed page (JSON text): its top-level "rows" array, one parsed row at a time. When the array has
    been read to its end, `tally` (if given) holds [number of rows]."""
    scan = _scanner()
    at = _rows_start(scan, text)
    n = 0
    if text[at : at + 1] != "]":
        try:
            while True:
                row, at = scan(text, at)
                n += 1
                yield row
                # PostgreSQL separates the rows with ", ": test that before the general case.
                if text[at : at + 2] == ", ":
                    at += 2
                    continue
                at = _skip(text, at)
                if text[at : at + 1] == "]":
                    break
                if text[at : at + 1] != ",":
                    raise NotPlain(f"no ',' or ']' after a row at {at}")
                at = _skip(text, at + 1)
        except StopIteration:  # not let out of a generator (it would become a RuntimeError)
            raise NotPlain(f"no JSON value at {at}") from None
    if tally is not None:
        tally[:] = [n]


# NULL as the rows carry it to executemany: a NaN float, which SQLite binds as NULL (it never stores a NaN). sqlite3
# (3.11) binds None only after looking for an adapter for it, ~0.4 us per None, and a row holds ~6: binding a row's
# 24 values took ~3.7 us with NaN, 6-8 with None (dev VM). No real float reaches a row: the decoder refuses them.
NULL = float("nan")


def _sql_value(v: object) -> object:
    """A dictionary entry as the SQL value json_each gives for it (the cache stores that)."""
    if v is None:
        return NULL
    if isinstance(v, (str, int)):
        return int(v) if isinstance(v, bool) else v
    raise NotPlain(f"a {type(v).__name__} in a page dictionary")


def _json_text(v: object) -> str:
    """A dictionary entry spelled as SQLite's json_quote spells it (sources' text): same escapes as json.dumps
    without ensure_ascii (\\" \\\\ \\b \\f \\n \\r \\t, other controls as \\u00xx, the rest as is)."""
    if v is None or isinstance(v, (str, int)):
        return json.dumps(v, ensure_ascii=False)
    raise NotPlain(f"a {type(v).__name__} in a page dictionary")


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_LAST_ORDINAL = date.max.toordinal()
_HH_MM = [f"T{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]  # by minute of the day
_SS = [f"{s:02d}" for s in range(60)]


def _clock() -> tuple[Callable[[int], str], Callable[[int], str]]:
    """(ts, day) for one page: integer microseconds since the epoch → the text of the SQL decoder's `_ts`
    (``2026-11-28T10:00:00.12345+00:00``: fraction without trailing zeros, none when whole); a day number → the
    date text of the day codec. A day's text is made once per page (a page spans a few hundred days). ~1 us a
    timestamp on the dev VM; `datetime` arithmetic and isoformat() take longer and keep trailing zeros."""
    days: dict[int, str] = {}

    def day(n: int) -> str:
        text = days.get(n)
        if text is None:
            if not 1 <= _EPOCH_ORDINAL + n <= _LAST_ORDINAL:  # beyond years 1-9999 SQLite gives NULL or year 0
                raise NotPlain(f"day {n} is outside years 1-9999")
            text = days[n] = date.fromordinal(_EPOCH_ORDINAL + n).isoformat()
        return text

    def ts(us: int) -> str:
        secs, frac = divmod(us, 1_000_000)
        n, sod = divmod(secs, 86_400)
        minute, sec = divmod(sod, 60)
        d = days.get(n) or day(n)
        if not frac:
            return f"{d}{_HH_MM[minute]}{_SS[sec]}+00:00"
        if frac % 10:
            return f"{d}{_HH_MM[minute]}{_SS[sec]}.{frac:06d}+00:00"
        return f"{d}{_HH_MM[minute]}{_SS[sec]}.{frac:06d}".rstrip("0") + "+00:00"

    return ts, day


def _sources_text(
    sources: dict[Any, str], subs: dict[Any, str], ts: Callable[[int], str]
) -> Callable[[Any, int, str], str]:
    """The `sources` codec: [[source, sub_source, microseconds after created_at], ...] → the JSON text the SQL
    decoder builds (json_object per entry in json_group_array, or the same text spelled out for one entry)."""

    def text(cell: Any, created_us: int, created: str) -> str:
        if type(cell) is not list:
            raise NotPlain("a sources cell that is not a list")
        if len(cell) == 1 and type(entry := cell[0]) is list:  # nearly every lead: one source
            a, b, dt = entry  # ValueError for another width
            at = created if dt == 0 else ts(created_us + dt)
            return f'[{{"at":"{at}","source":{sources[a]},"sub_source":{subs[b]}}}]'
        parts = []
        for entry in cell:
            if type(entry) is not list:
                raise NotPlain("a sources entry that is not a list")
            a, b, dt = entry
            at = created if dt == 0 else ts(created_us + dt)
            parts.append(f'{{"at":"{at}","source":{sources[a]},"sub_source":{subs[b]}}}')
        return "[" + ",".join(parts) + "]"

    return text


@lru_cache(maxsize=8)
def _row_function(
    columns: tuple[str, ...], codecs: tuple[str, ...], wanted: tuple[str, ...], zipped: bool = False
) -> Callable[..., Any]:
    """A generator function, made for one page layout: (rows, dictionaries by column position, ts, day, sources) →
    a tuple per row in `wanted` order with the SQL values `compact_select` gives (NULL as `NULL`; a column the page
    lacks is NULL, call_count 0). `zipped`: the rows are tuples zipped from a page's columns, of its width by
    construction (`column_rows`), so they are not checked for it.

    Its source is built from the layout only (names and codecs checked by `_check`, column positions as integers;
    no value of a page is ever spelled into it), so each cell is one inline expression and a row one tuple display,
    with no call per cell but the timestamps and sources."""
    _check(columns, codecs)
    at = {c: i for i, c in enumerate(columns)}
    ci = codecs.index("created")
    sums = [i for i, c in enumerate(codecs) if c in ("delta", "created")]
    lines = [
        "def rows(page, D, ts, day, source_text):",
        *[f"    d{i} = D[{i}]" for i, c in enumerate(codecs) if c == "dict"],
        *[f"    s{i} = 0" for i in sums],
        "    for r in page:",
        *(
            []
            if zipped
            else [
                f"        if type(r) is not list or len(r) != {len(columns)}:",
                "            raise NotPlain('a row that is not an array of the page width')",
            ]
        ),
        *[f"        s{i} += r[{i}]" for i in sums],
        f"        created = ts(s{ci})",
        f"        cday = s{ci} // {24 * 3600 * 1_000_000}",
    ]
    cells = []
    for c in wanted:
        i = at.get(c)
        if i is None:
            cells.append("0" if c == "call_count" else "NULL")
            continue
        codec = codecs[i]
        if c == "call_count":  # coalesce(..., 0)
            cell = f"(0 if (v := r[{i}]) is None else v)" if codec in ("raw", "bool") else None
        elif codec == "raw":
            cell = f"r[{i}]"  # None binds as NULL too, only slower; the server sends none here but call_count
        elif codec == "bool":
            cell = f"(NULL if (v := r[{i}]) is None else v)"
        elif codec == "delta":
            cell = f"s{i}"
        elif codec == "created":
            cell = "created"
        elif codec == "dict":
            cell = f"d{i}[r[{i}]]"
        elif codec == "at":
            cell = f"(NULL if (v := r[{i}]) is None else created if v == 0 else ts(s{ci} + v))"
        elif codec == "day":
            cell = f"(NULL if (v := r[{i}]) is None else day(cday + v))"
        else:  # sources
            cell = f"source_text(r[{i}], s{ci}, created)"
        if cell is None:  # call_count with another codec: a layout no server sends; the SQL decoder reads it
            raise NotPlain(f"call_count as {codec}")
        cells.append(cell)
    lines.append(f"        yield ({', '.join(cells)},)")
    namespace: dict[str, Any] = {"NotPlain": NotPlain, "NULL": NULL}
    exec(compile("\n".join(lines), f"<compact rows {len(columns)} columns>", "exec"), namespace)
    rows: Callable[..., Any] = namespace["rows"]
    return rows


def compact_rows(
    text: str,
    columns: tuple[str, ...],
    codecs: tuple[str, ...],
    dicts: str | None,
    wanted: tuple[str, ...],
    tally: list[int] | None = None,
) -> Iterator[tuple[Any, ...]]:
    """A compact page's rows (`text`: the page; `dicts`: its "dicts" object as JSON text, or None), decoded one at a
    time into tuples in `wanted` order for executemany: the values `compact_select` gives, NULL as `NULL` (a NaN:
    bind them, do not compare them). Raises NotPlain (or TypeError, ValueError, KeyError, OverflowError) where the
    SQL decoder must decide (see above), also while iterating. `tally`: as for `page_rows`."""
    rows = page_rows(text, tally)
    return _row_function(columns, codecs, wanted)(rows, *_decoding_tables(columns, codecs, dicts))


def column_rows(
    text: str,
    columns: tuple[str, ...],
    codecs: tuple[str, ...],
    dicts: str | None,
    wanted: tuple[str, ...],
    tally: list[int] | None = None,
) -> Iterator[tuple[Any, ...]]:
    """`compact_rows` for a page laid out by column (`lead_feed(..., layout => 'columns')`, migration 008: "cols", one
    array per column). The page is parsed whole (in a decoding process, where the interpreter lock is its own) and
    its columns zipped into rows, which go through the same row function. Raises NotPlain (or the errors
    `compact_rows` raises) where the SQL decoder must decide: it reads the page as rows (`columns_to_rows`)."""
    page = _JSON_PAGE.decode(text)
    cols = page.get("cols") if isinstance(page, dict) else None
    if type(cols) is not list or len(cols) != len(columns) or any(type(c) is not list for c in cols):
        raise NotPlain("cols is not an array of one array per column")
    n = len(cols[0]) if cols else 0
    if any(len(c) != n for c in cols):
        raise NotPlain("the page's columns are not all as long")
    if tally is not None:
        tally[:] = [n]
    return _row_function(columns, codecs, wanted, True)(
        zip(*cols, strict=True), *_decoding_tables(columns, codecs, dicts)
    )


def _decoding_tables(columns: tuple[str, ...], codecs: tuple[str, ...], dicts: str | None) -> tuple[Any, ...]:
    """What a row function takes after the rows, for one page: its dictionaries by column position, ts, day and the
    sources codec."""
    found = _JSON.decode(dicts) if dicts is not None else {}
    if not isinstance(found, dict):
        raise NotPlain("dicts is not an object")
    lists = {k: v for k, v in found.items() if isinstance(v, list)}  # as the SQL: other entries are ignored

    def lookup(name: str, spell: Callable[[object], Any], null: object) -> dict[Any, Any]:
        table: dict[Any, Any] = {None: null}
        table.update((i, spell(v)) for i, v in enumerate(lists.get(name, ())))
        return table

    # By column position; an index outside its dictionary is a KeyError (the SQL gives NULL: it decides then).
    tables = {
        i: lookup(c, _sql_value, NULL) for i, (c, k) in enumerate(zip(columns, codecs, strict=True)) if k == "dict"
    }
    ts, day = _clock()
    source_text = _sources_text(lookup("source", _json_text, "null"), lookup("sub_source", _json_text, "null"), ts)
    return tables, ts, day, source_text
