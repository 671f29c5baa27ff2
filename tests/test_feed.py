"""The compact feed (lead_feed, 006) against the plain one (lead_changes), on the real server, through the real
decoder and store: every column comes back exactly, odd text included; an old server's page still applies; a zstd, a
gzipped and a plain answer give the same cache; a desk talking to a server without lead_feed falls back; the server
compresses as the client's Accept-Encoding asks."""

from __future__ import annotations

import json
import sqlite3
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serverproc import Api, new_lead, phone_for
from test_store import _pg_text

from crm_desktop.core import feed
from crm_desktop.core.api import ApiClient
from crm_desktop.core.cache import _STORED_COLUMNS, FeedHead, decode_ahead
from crm_desktop.core.feed import decode_page
from crm_desktop.core.store import Store
from crm_desktop.core.sync import SyncEngine


def cache_rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM lead_cache ORDER BY phone").fetchall()


def by_phone(row: tuple[Any, ...]) -> tuple[bool, str, Any]:
    """Sort key of decoded rows by their phone, which an odd page may give as a number, a text or NULL."""
    phone = row[2]
    return (phone is None, type(phone).__name__, "" if phone is None else phone)


def sql_decoded(page: str, head: FeedHead) -> list[tuple[Any, ...]]:
    """A compact page's rows as the SQL decoder gives them to the cache's upsert (the path before the Python one,
    and still its fallback), ordered by phone."""
    conn = sqlite3.connect(":memory:")
    try:
        feed.load_dicts(conn, head.dicts)
        rows = conn.execute(feed.compact_select(head.columns, head.codecs, _STORED_COLUMNS), {"page": page})
        return sorted(rows.fetchall(), key=by_phone)
    finally:
        conn.close()


def python_decoded(page: str, head: FeedHead) -> list[tuple[Any, ...]]:
    """The same rows from the Python decoder the store applies compact pages with, as SQLite binds them (raises where
    the store would leave the page to the SQL decoder, e.g. a list sqlite3 cannot bind)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(f"CREATE TABLE bound ({', '.join(_STORED_COLUMNS)})")  # no types: values are kept as bound
        marks = ", ".join("?" for _ in _STORED_COLUMNS)
        conn.executemany(
            f"INSERT INTO bound VALUES ({marks})",
            feed.compact_rows(page, head.columns, head.codecs, head.dicts, _STORED_COLUMNS),
        )
        rows = conn.execute("SELECT * FROM bound").fetchall()
    finally:
        conn.close()
    return sorted(rows, key=by_phone)


def staged_decoded(page: str) -> list[tuple[Any, ...]] | None:
    """The rows the sync's decoding thread stages for the store (cache.decode_ahead's database image), read back as
    the store's upsert reads them; None when it left the page to the SQL decoder."""
    ready = decode_ahead(page)
    if ready.staged is None:
        return None
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(ready.staged)
        rows = conn.execute("SELECT * FROM feed_rows").fetchall()
    finally:
        conn.close()
    assert ready.rows == len(rows)
    return sorted(rows, key=by_phone)


def both_pages(api: Api, token: str, since: int, max_rows: int) -> tuple[str, str]:
    plain = api.rpc("lead_changes", token, since=since, max_rows=max_rows)
    # lead_feed says where the next pages start; lead_changes does not: compare the rest.
    compact = api.rpc("lead_feed", token, since=since, max_rows=max_rows)
    assert plain.status_code == 200 and compact.status_code == 200, (plain.text, compact.text)
    return plain.text, compact.text


def by_name(page: dict[str, Any]) -> dict[str, Any]:
    """A page with its rows as {column: value}: a compact page may list its columns in another order (it names them;
    lead_feed puts the three that are differences first)."""
    return page | {
        "columns": sorted(page["columns"]),
        "rows": [dict(zip(page["columns"], r, strict=True)) for r in page["rows"]],
    }


def assert_same_pages(plain: str, compact: str, tmp: Path) -> None:
    """The decoded compact page is the plain page, value for value, and applies to the same cache rows."""
    decoded = decode_page(compact)
    page = json.loads(compact)
    assert page["encoding"] == "compact-1"
    if page["more"]:  # the starts of the next pages: every max_rows-th change_id after this page
        ids = sorted(r[0] for r in json.loads(plain)["rows"])
        assert page["ahead"] and page["ahead"][0] > ids[-1]
    assert by_name(json.loads(decoded)) == by_name(json.loads(plain))
    with (
        Store(tmp / "plain.sqlite3") as a,
        Store(tmp / "compact.sqlite3") as b,
        Store(tmp / "direct.sqlite3") as c,
        Store(tmp / "staged.sqlite3") as d,
    ):
        a.apply_feed_page(plain)
        b.apply_feed_page(decoded)
        # The compact page decoded by the store itself, no plain page between.
        head = c.read_feed_head(compact)
        assert head.encoding == "compact-1" and head.codecs == tuple(page["codecs"])
        assert head.ahead == tuple(page.get("ahead", ()))
        applied = c.apply_feed_page(compact, head)
        assert (applied.rows, applied.next_since, applied.more) == (len(page["rows"]), page["next_since"], page["more"])
        # What the sync does: decoded and staged on its decoding thread, then applied in one statement.
        ready = decode_ahead(compact)
        assert ready.head == head and ready.staged is not None
        assert d.apply_feed_page(compact, head, ready) == applied
    rows = cache_rows(tmp / "plain.sqlite3")
    assert rows == cache_rows(tmp / "compact.sqlite3") == cache_rows(tmp / "direct.sqlite3")
    assert rows == cache_rows(tmp / "staged.sqlite3")
    # ... and the store took its Python decoder for the server's page (no fallback to the SQL one), value for value.
    assert python_decoded(compact, head) == sql_decoded(compact, head)


def test_every_column_of_a_compact_page_decodes_to_what_lead_changes_sends(api: Api, clean_db, tmp_path: Path):
    cre = api.token("cre1@demo.local")
    lead_ids = []
    for i in range(12):
        extra: dict[str, Any] = {"ps_email": "ps1@demo.local"} if i % 3 == 0 else {}
        if i % 4 == 1:
            extra |= {"lead_status": "RNR", "final_status": "Pending", "follow_up_date": None, "lead_category": None}
        r = api.rpc("create_lead", cre, lead=new_lead(phone_for(i), customer_name=f"Lead {i}", **extra))
        assert r.status_code == 200, r.text
        lead_ids.append(r.json()["lead_id"])
    # A second source, calls that set a time of day, a Won and a Lost: every kind of column gets a value.
    api.rpc("create_lead", cre, lead=new_lead(phone_for(0), source="META", sub_source="Meta Know"))
    for n, (lead_id, final) in enumerate(zip(lead_ids[:3], ["Won", "Lost", "Pending"], strict=True)):
        call = {"client_ref": str(uuid.uuid4()), "lead_id": lead_id, "called_at": f"2026-11-2{n}T10:1{n}:0{n}.5+05:30",
                "lead_status": "Interested", "final_status": final, "follow_up_at": "2026-12-01T16:30",
                "test_drive_done": n == 1}  # fmt: skip
        r = api.rpc("log_call", cre, call=call)
        assert r.status_code == 200, r.text
    plain, compact = both_pages(api, cre, 0, 5000)
    assert len(json.loads(plain)["rows"]) == 12
    assert_same_pages(plain, compact, tmp_path)
    # Paging: the same boundaries, `more` and `remaining` as lead_changes.
    plain, compact = both_pages(api, cre, 3, 4)
    assert json.loads(plain)["more"] is True
    (tmp_path / "p2").mkdir()
    assert_same_pages(plain, compact, tmp_path / "p2")


_INSERT = """
    insert into leads (uid, phone, customer_name, source, sub_source, sources, lead_status, lead_category,
                       model_interested, branch, cre_id, final_status, follow_up_date, created_at, updated_at,
                       last_call_at, call_count, test_drive_done)
    select %(uid)s, %(phone)s, %(name)s, 'GOOGLE', %(sub)s,
           jsonb_build_array(jsonb_build_object('source', 'GOOGLE', 'sub_source', %(sub)s::text,
                                                'at', %(at)s::timestamptz - interval '1 microsecond' * %(seen)s)),
           %(status)s, 'Warm', %(model)s, %(branch)s, id, 'Pending', %(follow)s::date, %(at)s::timestamptz,
           %(at)s::timestamptz + interval '1 microsecond' * %(later)s, null, %(calls)s, %(drive)s
      from profiles where email = 'cre1@demo.local'
"""


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    names=st.lists(_pg_text, min_size=1, max_size=4),
    texts=st.lists(_pg_text, min_size=4, max_size=4),
    micros=st.integers(0, 10**12),
)
def test_odd_text_and_any_microsecond_round_trip(
    api: Api,
    db: psycopg.Connection[Any],
    tmp_path_factory: pytest.TempPathFactory,
    names: list[str],
    texts: list[str],
    micros: int,
):
    db.execute("truncate leads restart identity cascade")
    for i, name in enumerate(names):
        db.execute(
            _INSERT,
            {"uid": f"GA-{i:04d}-{texts[0][:8]}", "phone": phone_for(500 + i), "name": name, "sub": texts[1],
             "status": texts[2] or None, "model": texts[3], "branch": texts[i % 4], "follow": "2026-12-0" + str(i + 1),
             "at": f"2026-11-2{i}T0{i}:00:00+00:00", "later": micros * (i + 1) % 10**12, "calls": i,
             "drive": [None, True, False][i % 3], "seen": [0, micros, 10**12 - micros][i % 3]},
        )  # fmt: skip
    cre = api.token("cre1@demo.local")
    plain, compact = both_pages(api, cre, 0, 100)
    assert_same_pages(plain, compact, tmp_path_factory.mktemp("odd"))


# lead_feed's layout (migration 006): the 24 columns of lead_changes with their codecs.
_LAYOUT = (
    ("change_id", "delta"), ("lead_id", "delta"), ("phone", "raw"), ("uid", "raw"), ("customer_name", "raw"),
    ("sources", "sources"), ("lead_status", "dict"), ("final_status", "dict"), ("cre_name", "dict"),
    ("ps_name", "dict"), ("branch", "dict"), ("created_at", "created"), ("follow_up_date", "day"), ("cre_id", "dict"),
    ("lead_category", "dict"), ("model_interested", "dict"), ("follow_up_at", "at"), ("last_call_at", "at"),
    ("call_count", "raw"), ("won_at", "at"), ("lost_at", "at"), ("updated_at", "at"), ("test_drive_done", "bool"),
    ("ps_email", "dict"),
)  # fmt: skip
_US = 10**6
_dict_value = st.none() | _pg_text | st.integers(-3, 3) | st.booleans()
# Cells a server never sends but a page could hold: the Python decoder must leave them to the SQL one, or give
# exactly what it gives.
_odd_cell = st.sampled_from(
    [2.5, -1, 10**6, 10**20, -(10**20), "7", "", [], [[0, 0, 0]], [[0, 0]], [["0", 0, 0]], {"a": 1}, True, False, None]
)


@st.composite
def compact_pages(draw: st.DrawFn, odd: bool, rows_between: tuple[int, int] = (0, 6)) -> tuple[str, FeedHead]:
    """A compact page (JSON text as the server spells it, or indented, ASCII-escaped or not) and its head."""
    dicts = {c: draw(st.lists(_dict_value, max_size=4)) for c, k in _LAYOUT if k == "dict"}
    dicts["source"] = draw(st.lists(_dict_value, min_size=1, max_size=3))
    dicts["sub_source"] = draw(st.lists(_dict_value, min_size=1, max_size=3))

    def index(name: str) -> st.SearchStrategy[int | None]:
        return st.none() | st.integers(0, len(dicts[name]) - 1) if dicts[name] else st.none()

    seen = st.tuples(index("source"), index("sub_source"), st.just(0) | st.integers(-(10**12), 10**12)).map(list)
    cell = {
        "raw": st.none() | st.integers(0, 60) | _pg_text,
        "bool": st.sampled_from([None, 0, 1]),
        "delta": st.integers(-1000, 10**6),
        "created": st.integers(-(10**14), 10**14),
        "day": st.none() | st.integers(-800, 800),
        "at": st.none() | st.just(0) | st.integers(-(10**12), 10**13),
        "sources": st.lists(seen, max_size=3),
    }
    rows: list[list[Any]] = []
    for i in range(draw(st.integers(*rows_between))):
        if i >= 6:  # a long page repeats its first rows but the first (their created_at is a difference): the
            # drawn data stays within hypothesis' budget, and the rows still fill groups of 40 and a rest
            row = list(rows[1 + i % 5])
        else:
            row = [draw(index(c)) if k == "dict" else draw(cell[k]) for c, k in _LAYOUT]
            row[3] = draw(_pg_text)  # uid, customer_name: NOT NULL text
            row[4] = draw(_pg_text)
        row[2] = f"+9163{i:08d}"  # phone: the cache's key, one per row
        if i == 0:
            row[11] = 1_764_000_000 * _US + draw(
                st.integers(-(10**15), 10**15)
            )  # created_at: absolute, years ~1938-2039
        rows.append(row)
    if odd and rows:
        row = draw(st.sampled_from(rows))
        if draw(st.booleans()):
            row[draw(st.integers(0, len(row) - 1))] = draw(_odd_cell)
        else:
            del row[draw(st.integers(0, len(row) - 1))]  # a row of the wrong width
    page = {"encoding": "compact-1", "columns": [c for c, _ in _LAYOUT], "codecs": [k for _, k in _LAYOUT],
            "dicts": dicts, "rows": rows, "next_since": 1, "more": False, "remaining": 0}  # fmt: skip
    style = draw(st.sampled_from([{}, {"ensure_ascii": False}, {"indent": 1}, {"separators": (",", ":")}]))
    head = FeedHead(tuple(page["columns"]), 1, False, 0, "compact-1", tuple(page["codecs"]), json.dumps(dicts))
    return json.dumps(page, **style), head


def by_column(text: str) -> str | None:
    """The same page laid out by column (lead_feed's layout 'columns', migration 008), spelled in the page's style as
    far as json.dumps goes; None when its rows are not all of the page's width (no such page by column exists)."""
    page = json.loads(text)
    rows = page.pop("rows")
    if any(type(r) is not list or len(r) != len(page["columns"]) for r in rows):
        return None
    page["cols"] = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in page["columns"]]
    return json.dumps(page)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page=st.one_of(compact_pages(odd=False), compact_pages(odd=True)))
def test_a_page_by_column_gives_what_the_same_page_by_row_gives(page: tuple[str, FeedHead], tmp_path: Path):
    """Any page in the server's shapes or with one cell off them, laid out by column: read back by row it is the same
    page, the sync's decoding stages the same rows (or leaves both to the SQL decoder), and the store gives the same
    cache from either (through its SQL decoder when the Python one leaves the page)."""
    text, _ = page
    columns = by_column(text)
    if columns is None:
        return
    assert json.loads(feed.columns_to_rows(columns)) == json.loads(text)
    assert json.loads(decode_page(columns)) == json.loads(decode_page(text))
    ready = decode_ahead(columns)
    assert ready.head is not None and ready.head.layout == "columns"
    assert staged_decoded(columns) == staged_decoded(text)
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    with Store(folder / "rows.sqlite3") as a, Store(folder / "cols.sqlite3") as b:
        assert applied(a, text) == applied(b, columns, ready)  # the same page applied, or both refused
    assert cache_rows(folder / "rows.sqlite3") == cache_rows(folder / "cols.sqlite3")


def applied(store: Store, text: str, ready: Any = None) -> Any:
    """What the store says of a page: its FeedPage, or "refused" (ValueError: a page it cannot read)."""
    try:
        return store.apply_feed_page(text, None, ready)
    except ValueError:
        return "refused"


def test_a_page_by_column_that_does_not_add_up_is_refused_and_changes_nothing(tmp_path: Path):
    """Columns of different lengths, or cols that are not arrays: neither decoder guesses; the cache and its cursor
    stay as they were (the sync retries the page)."""
    columns = [c for c, _ in _LAYOUT]
    rows = [[3 + i, 9, f"+91980000000{i}", f"WI-{i}", "Asha", [[0, 0, 0]], None, 0, None, None, None,
             1_764_000_000_000_000, 3, None, None, None, None, 1_000_000, 2, None, None, 0, 1, None]
            for i in range(2)]  # fmt: skip
    good = {"encoding": "compact-1", "columns": columns, "codecs": [k for _, k in _LAYOUT],
            "dicts": {"final_status": ["Pending"], "source": ["WALK-IN"], "sub_source": ["Showroom"]},
            "cols": [list(c) for c in zip(*rows, strict=True)], "next_since": 4, "more": False,
            "remaining": 0}  # fmt: skip
    with Store(tmp_path / "c.sqlite3") as store:
        assert store.apply_feed_page(json.dumps(good)).rows == 2
        before = cache_rows(tmp_path / "c.sqlite3")
        short = [c if i != 7 else c[:1] for i, c in enumerate(good["cols"])]
        for bad in (good | {"cols": short, "next_since": 9}, good | {"cols": [1] * 24, "next_since": 9}):
            text = json.dumps(bad)
            assert decode_ahead(text).staged is None  # the Python decoder leaves it ...
            with pytest.raises(ValueError):  # ... and the SQL decoder refuses it
                store.apply_feed_page(text)
        assert cache_rows(tmp_path / "c.sqlite3") == before and store.sync_cursor() == 4


@settings(max_examples=300, deadline=None)
@given(page=compact_pages(odd=False))
def test_the_python_decoder_gives_what_the_sql_decoder_gives(page: tuple[str, FeedHead]):
    """Any page in the server's shapes, odd text and any microsecond included: the store's Python decoder reads it
    itself (no fallback) and gives the SQL decoder's values, `sources`' JSON text byte for byte."""
    text, head = page
    assert python_decoded(text, head) == sql_decoded(text, head) == staged_decoded(text)


@settings(max_examples=15, deadline=None)
@given(page=st.one_of(*(compact_pages(odd=odd, rows_between=(41, 125)) for odd in (False, True))))
def test_the_decoding_thread_stages_long_pages_in_groups_of_rows_as_the_decoder_gives_them(page: tuple[str, FeedHead]):
    """decode_ahead stages 40 rows per INSERT and the rest one by one: a page of 41-125 rows, in the server's shapes
    or with one cell off them, is staged with every row as the Python decoder gives it, or left to SQLite's."""
    from crm_desktop.core.cache import _LEFT_TO_SQL

    text, head = page
    staged = staged_decoded(text)
    try:
        mine = python_decoded(text, head)
    except _LEFT_TO_SQL:
        assert staged is None
        return
    assert staged == mine == sql_decoded(text, head) and len(mine) > 40


@settings(max_examples=300, deadline=None)
@given(page=compact_pages(odd=True))
def test_a_cell_off_the_servers_shapes_is_left_to_the_sql_decoder_or_read_the_same(page: tuple[str, FeedHead]):
    """A float, an index outside its dictionary, a string for a number, a short row...: the Python decoder never
    gives other values than the SQL decoder; it either gives the same or raises, and the store then applies the page
    with the SQL decoder (which says what is wrong, or reads it as before)."""
    from crm_desktop.core.cache import _LEFT_TO_SQL

    text, head = page
    staged = staged_decoded(text)  # the sync's decoding thread: the same choice and values
    try:
        mine = python_decoded(text, head)
    except _LEFT_TO_SQL:
        assert staged is None
        return
    assert mine == sql_decoded(text, head) == staged


def test_the_store_applies_a_page_its_python_decoder_leaves_with_the_sql_one(tmp_path: Path, caplog):
    """Through the store: a page with an index outside its dictionary (the SQL decoder reads NULL) and a float is
    applied exactly as before this decoder existed (the plain page decode_page makes from it), and said in the log."""
    columns = [c for c, _ in _LAYOUT]
    row = [3, 9, "+919800000001", "WI-1", "Asha", [[0, 5, 0]], 7, 0, None, None, None, 1_764_000_000_000_000, 3,
           None, None, None, None, 1_000_000, 2.0, None, None, 0, 1, None]  # fmt: skip
    page = json.dumps({"encoding": "compact-1", "columns": columns, "codecs": [k for _, k in _LAYOUT],
                       "dicts": {"final_status": ["Pending"], "source": ["WALK-IN"], "sub_source": ["Showroom"]},
                       "rows": [row], "next_since": 3, "more": False, "remaining": 0})  # fmt: skip
    with Store(tmp_path / "direct.sqlite3") as direct, Store(tmp_path / "plain.sqlite3") as plain:
        with caplog.at_level("INFO", logger="crm_desktop.core.cache"):
            applied = direct.apply_feed_page(page)
        assert (applied.rows, applied.applied, direct.sync_cursor()) == (1, 1, 3)
        assert "applied by the SQL decoder" in caplog.text
        plain.apply_feed_page(decode_page(page))
    with Store(tmp_path / "ahead.sqlite3") as ahead:  # as the sync does: its decoding thread left the page too
        ready = decode_ahead(page)
        assert ready.head is not None and ready.staged is None
        assert ahead.apply_feed_page(page, ready.head, ready) == applied
    rows = cache_rows(tmp_path / "direct.sqlite3")
    assert rows == cache_rows(tmp_path / "plain.sqlite3") == cache_rows(tmp_path / "ahead.sqlite3")
    assert json.loads(rows[0][5]) == [{"at": "2025-11-24T16:00:00+00:00", "source": "WALK-IN", "sub_source": None}]
    assert rows[0][6] is None and rows[0][18] == 2.0  # lead_status index 7 of none; call_count 2.0 as SQLite read it


def test_a_plain_page_passes_the_decoder_unchanged_and_unknown_encodings_are_refused():
    plain = json.dumps({"columns": ["change_id"], "rows": [[1]], "next_since": 1})
    assert decode_page(plain) is plain
    with pytest.raises(ValueError, match="encoding"):
        decode_page(json.dumps({"encoding": "compact-9", "columns": [], "codecs": [], "rows": [], "next_since": 0}))
    with pytest.raises(ValueError, match="codec"):
        decode_page(
            json.dumps({"encoding": "compact-1", "columns": ["a"], "codecs": ["zip"], "rows": [], "next_since": 0})
        )
    with pytest.raises(ValueError, match="not JSON"):
        decode_page('{"encoding": "compact-1", "rows": [')


def test_a_compact_page_the_store_cannot_read_changes_nothing(tmp_path: Path):
    """The store applies compact pages itself: an unknown encoding or codec, or a row of the wrong width, is refused
    and leaves the cache and its cursor as they were (the sync retries the page)."""
    good = {"encoding": "compact-1", "columns": ["change_id", "lead_id", "phone", "uid", "customer_name", "sources",
            "lead_status", "final_status", "cre_name", "ps_name", "branch", "created_at", "follow_up_date"],
            "codecs": ["delta", "delta", "raw", "raw", "raw", "sources", "dict", "dict", "dict", "dict", "dict",
                       "created", "day"],
            "dicts": {"final_status": ["Pending"], "source": ["WALK-IN"], "sub_source": ["Showroom"]},
            "rows": [[5, 7, "+919800000001", "WI-1", "Asha", [[0, 0, 0]], None, 0, None, None, None,
                      1764000000000000, 3]],
            "next_since": 5, "more": False, "remaining": 0}  # fmt: skip
    with Store(tmp_path / "c.sqlite3") as store:
        page = store.apply_feed_page(json.dumps(good))
        assert (page.rows, page.applied, store.sync_cursor()) == (1, 1, 5)
        before = cache_rows(tmp_path / "c.sqlite3")
        assert before[0][:5] == ("+919800000001", 5, 7, "WI-1", "Asha")
        assert json.loads(before[0][5]) == [{"at": "2025-11-24T16:00:00+00:00", "source": "WALK-IN",
                                             "sub_source": "Showroom"}]  # fmt: skip
        bad = [
            good | {"encoding": "compact-9"},
            good | {"codecs": [*good["codecs"][:-1], "zip"]},
            good | {"rows": [[6, 1, "+919800000002", "WI-2", "Ravi"]], "next_since": 6},  # a short row
            good | {"codecs": good["codecs"][:-1]},
        ]
        for page_ in bad:
            with pytest.raises(ValueError):
                store.apply_feed_page(json.dumps(page_))
        assert cache_rows(tmp_path / "c.sqlite3") == before and store.sync_cursor() == 5


class EdgeTransport(httpx.HTTPTransport):
    """The real server behind an edge that can play an older server (no lead_feed: PostgREST's 404 PGRST202) and
    can rewrite Accept-Encoding (`accept`: "identity" for a gateway that never compresses, "gzip" for one without
    zstd); records what went through."""

    def __init__(self, *, old_server: bool = False, accept: str | None = None, no_layout: bool = False) -> None:
        super().__init__()
        self.old_server = old_server
        self.no_layout = no_layout  # a server with lead_feed before 008: no layout parameter
        self.accept = accept
        self.calls: list[tuple[str, int, str]] = []  # (rpc, since, content-encoding)
        self.layouts: list[str] = []  # of lead_feed calls answered

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        name = request.url.path.rsplit("/", 1)[-1]
        if self.accept is not None:
            request.headers["Accept-Encoding"] = self.accept
        if name == "lead_feed" and self.old_server:
            body = {"code": "PGRST202", "message": "Could not find the function public.lead_feed", "details": None,
                    "hint": None}  # fmt: skip
            self.calls.append((name, -1, ""))
            return httpx.Response(404, json=body)
        if name == "lead_feed" and self.no_layout and "layout" in json.loads(request.content):
            body = {"code": "PGRST202", "message": "Could not find the function public.lead_feed(layout, max_rows, "
                    "since)", "details": None, "hint": None}  # fmt: skip
            return httpx.Response(404, json=body)
        response = super().handle_request(request)
        if name == "lead_feed":
            self.layouts.append(json.loads(request.content).get("layout", "rows"))
        if name in ("lead_feed", "lead_changes"):
            since = json.loads(request.content)["since"]
            self.calls.append((name, since, response.headers.get("content-encoding", "")))
        return response


def synced_desk(
    server, tmp_path: Path, name: str, transport: EdgeTransport, page_size: int = 40, long_pass: bool = False
) -> Path:
    """A desk synced from nothing through `transport`; `long_pass`: as a first sync of a million leads is (pages
    decoded in a process, asked for by column)."""
    client = ApiClient(server.url, server.anon_key, transport=transport)
    client.login("cre1@demo.local", "demo1234")
    path = tmp_path / f"{name}.sqlite3"
    store, _ = Store.open_or_rebuild(path)
    try:
        engine = SyncEngine(client, path, page_size=page_size, decode_processes=1)
        if long_pass:
            engine.bulk_fill_min = 1
        engine.pull(store)
    finally:
        store.close()
        client.close()
    return path


def test_zstd_gzipped_and_plain_answers_and_an_old_server_give_the_same_cache(
    server, api: Api, clean_db, tmp_path: Path
):
    cre = api.token("cre2@demo.local")
    for i in range(150):
        assert api.rpc("create_lead", cre, lead=new_lead(phone_for(3000 + i), customer_name=f"Caller {i}")).is_success

    zs = EdgeTransport()  # the desk's own Accept-Encoding
    gz = EdgeTransport(accept="gzip")
    plain = EdgeTransport(accept="identity")
    old = EdgeTransport(old_server=True)
    desks = (("zs", zs), ("gz", gz), ("plain", plain), ("old", old))
    caches = [cache_rows(synced_desk(server, tmp_path, n, t)) for n, t in desks]

    assert len(caches[0]) == 150 and caches[0] == caches[1] == caches[2] == caches[3]
    # Pages of 40 rows are over the server's 4 KB threshold: compressed as asked (zstd first), plain when not.
    assert {(n, e) for n, _, e in zs.calls} == {("lead_feed", "zstd")}
    assert {(n, e) for n, _, e in gz.calls} == {("lead_feed", "gzip")}
    assert {(n, e) for n, _, e in plain.calls} == {("lead_feed", "")}
    # The old server is asked for lead_feed once; then the desk stays on lead_changes.
    assert old.calls[0] == ("lead_feed", -1, "") and {n for n, _, _ in old.calls[1:]} == {"lead_changes"}
    # The same pages (lead_feed asks for up to three at once, so they may complete out of order).
    assert sorted(s for _, s, _ in gz.calls) == sorted(s for _, s, _ in old.calls[1:])


def test_a_long_sync_asks_for_pages_by_column_and_an_older_server_for_rows(server, api: Api, clean_db, tmp_path: Path):
    """A long pass (a first sync) asks lead_feed for the pages after its first by column (008: a third fewer bytes);
    a server whose lead_feed has no layout (404 PGRST202 for it) is asked for rows from then on; a short pass asks for
    rows. All give the cache the short pass gives."""
    cre = api.token("cre2@demo.local")
    for i in range(150):
        assert api.rpc("create_lead", cre, lead=new_lead(phone_for(3300 + i), customer_name=f"Caller {i}")).is_success
    by_col, older, short = EdgeTransport(), EdgeTransport(no_layout=True), EdgeTransport()
    caches = [
        cache_rows(synced_desk(server, tmp_path, "columns", by_col, long_pass=True)),
        cache_rows(synced_desk(server, tmp_path, "older", older, long_pass=True)),
        cache_rows(synced_desk(server, tmp_path, "short", short)),
    ]
    assert len(caches[0]) == 150 and caches[0] == caches[1] == caches[2]
    assert by_col.layouts[0] == "rows" and set(by_col.layouts[1:]) == {"columns"} and len(by_col.layouts) == 4
    assert older.layouts == ["rows"] * 4  # asked once by column (refused), then by row for every page
    assert set(short.layouts) == {"rows"}


@pytest.mark.parametrize(
    ("accept", "expected"),
    [("zstd, gzip", "zstd"), ("gzip, zstd;q=0", "gzip"), ("ZSTD;Q=0.5", "zstd"), ("br, gzip", "gzip"), ("*", ""),
     ("identity", "")],
)  # fmt: skip
def test_the_server_compresses_as_the_client_asks(server, api: Api, clean_db, accept: str, expected: str):
    cre = api.token("cre2@demo.local")
    for i in range(60):
        assert api.rpc("create_lead", cre, lead=new_lead(phone_for(3300 + i), customer_name=f"Caller {i}")).is_success
    headers = {"apikey": server.anon_key, "Authorization": f"Bearer {cre}", "Accept-Encoding": accept}
    with httpx.Client(base_url=server.url, headers=headers) as http:
        big = http.post("/rest/v1/rpc/lead_feed", json={"since": 0, "max_rows": 60})
        small = http.get("/health")
    assert big.status_code == 200 and len(big.json()["rows"]) == 60  # decoded by httpx whatever the encoding
    assert big.headers.get("content-encoding", "") == expected
    assert "accept-encoding" in big.headers.get("vary", "").lower() or not expected
    assert small.headers.get("content-encoding") is None  # under 4 KB: not worth it


def test_a_busy_server_is_backed_off_with_jitter_and_its_retry_after_is_kept(tmp_path: Path):
    import random

    from crm_desktop.core.api import Retry

    api = ApiClient("http://127.0.0.1:9", "anon")  # never called: only the engine's arithmetic is exercised
    engine = SyncEngine(api, tmp_path / "d.sqlite3", poll_interval=15.0, backoff_base=1.0, backoff_max=60.0,
                        rng=random.Random(7))  # fmt: skip
    try:
        assert engine._pull_retry_delay(Retry("offline")) == 5.0  # not busy: the usual retry
        busy = [engine._pull_retry_delay(Retry("busy", status=503)) for _ in range(8)]
        # Exponential with "equal jitter": attempt k waits between half and all of min(60, 2^(k-1)) seconds.
        for k, delay in enumerate(busy, start=1):
            ceiling = min(60.0, 2.0 ** (k - 1))
            assert ceiling / 2 <= delay <= ceiling
        assert len({round(d, 6) for d in busy[3:]}) == len(busy[3:])  # jittered, not lockstep
        assert engine._pull_retry_delay(Retry("slow down", status=429, retry_after=90.0)) >= 90.0
    finally:
        api.close()


def test_a_page_is_bounded_whatever_the_desk_asks(api: Api, db: psycopg.Connection[Any]):
    db.execute("truncate leads restart identity cascade")
    db.execute(
        "insert into leads (uid, phone, customer_name, source, sub_source, sources, cre_id)"
        " select 'GA-' || g, '+9170' || lpad(g::text, 8, '0'), 'Lead ' || g, 'GOOGLE', 'Google Know', '[]', p.id"
        "   from generate_series(1, 10050) g, profiles p where p.email = 'cre1@demo.local'"
    )
    r = api.rpc("lead_feed", api.token("cre1@demo.local"), since=0, max_rows=50_000)
    assert r.status_code == 200, r.text
    page = r.json()
    assert len(page["rows"]) == 10_000 and page["more"] is True  # 10,000 rows at most per call
