"""The local store on real SQLite files: schema, the feed's cache, the outbox's life, durability, damage, blame."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_desktop.core.models import LeadSummary, OutboxState, SourceSeen
from crm_desktop.core.store import (
    _CACHE_MIGRATIONS,
    _OUTBOX_MIGRATIONS,
    FEED_COLUMNS,
    FeedHead,
    OutboxStateError,
    Store,
    StoreError,
    classify_error,
    default_store_path,
    outbox_path_for,
)

COLUMNS = list(FEED_COLUMNS)


def feed_row(
    change_id: int,
    phone: str | None,
    *,
    name: str = "Priya",
    sources: list[dict[str, str]] | str | None = None,
    status: str | None = "Interested",
    ps: str | None = None,
    follow_up: str | None = "2026-12-05",
) -> list[Any]:
    if sources is None:
        sources = [{"source": "GOOGLE", "sub_source": "Google Know", "at": "2026-11-28T10:00:00+00:00"}]
    return [
        change_id,
        1000 + change_id,
        phone,
        f"GA-{(phone or '----')[-4:]}-{change_id:04d}",
        name,
        sources,
        status,
        "Pending",
        "Anitha Reddy",
        ps,
        "ATTAPUR",
        "2026-11-28T10:00:00.5+00:00",
        follow_up,
    ]


def lead(name: str = "Ravi Kumar", phone: str = "+919876543210", **extra: Any) -> dict[str, Any]:
    return {"customer_name": name, "phone": phone, "source": "GOOGLE", "sub_source": "Google Know", **extra}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "desk.sqlite3"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    s, recovery = Store.open_or_rebuild(path)
    assert recovery.message is None
    yield s
    s.close()


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection for looking at (or holding locks on) a file from outside the store."""
    return sqlite3.connect(path, isolation_level=None)


# -- schema -------------------------------------------------------------------------------------------------------


def test_new_files_get_every_migration_and_wal(store: Store, path: Path) -> None:
    store.sync_cursor()
    store.pending_count()
    assert store.outbox_path == outbox_path_for(path) == path.with_name("desk.outbox.sqlite3")
    for file, migrations, table in (
        (path, _CACHE_MIGRATIONS, "lead_cache"),
        (store.outbox_path, _OUTBOX_MIGRATIONS, "outbox"),
    ):
        conn = raw(file)
        try:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == len(migrations) >= 1
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = :t", {"t": table}).fetchone()[0] == 1
        finally:
            conn.close()


def test_reopening_keeps_data_and_does_not_migrate_again(store: Store, path: Path) -> None:
    store.apply_changes(COLUMNS, [feed_row(1, "+919876543210")], 1)
    store.enqueue(lead())
    store.close()
    with Store(path) as again:
        assert again.sync_cursor() == 1
        assert again.lookup("+919876543210") is not None
        assert again.pending_count() == 1


def test_stores_in_several_threads_open_and_migrate_one_file_together(path: Path) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def worker(i: int) -> None:
        try:
            start.wait()
            with Store(path) as s:
                s.enqueue(lead(name=f"caller {i}"))
                s.sync_cursor()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Store(path) as s:
        assert s.pending_count() == 4


def test_a_reader_thread_sees_what_the_writer_committed(store: Store, path: Path) -> None:
    store.apply_changes(COLUMNS, [feed_row(1, "+919876543210")], 1)
    seen: list[LeadSummary | None] = []

    def reader() -> None:
        with Store(path) as own:  # one Store per thread: its own connection
            seen.append(own.lookup("+919876543210"))

    t = threading.Thread(target=reader)
    t.start()
    t.join()
    assert seen[0] is not None and seen[0].uid == "GA-3210-0001"


def test_default_store_path_is_per_server_and_user_and_hides_the_email() -> None:
    from platformdirs import user_data_dir

    a = default_store_path("https://desk.example.com/", "Anitha@Example.com")
    assert a == default_store_path("HTTPS://desk.example.com", " anitha@example.com")
    assert a != default_store_path("https://desk.example.com", "ravi@example.com")
    assert a != default_store_path("https://other.example.com", "anitha@example.com")
    assert a.parent == Path(user_data_dir("cre-desk", appauthor=False))
    assert "anitha" not in a.name.lower() and a.suffix == ".sqlite3"


# -- lead cache ---------------------------------------------------------------------------------------------------


def test_apply_changes_fills_the_cache_and_moves_the_cursor(store: Store) -> None:
    assert store.sync_cursor() == 0
    assert store.last_synced_at() is None
    two_sources = [
        {"source": "OEM", "sub_source": "Web", "at": "2026-11-01T09:00:00+00:00"},
        {"source": "META", "sub_source": "Meta Know", "at": "2026-11-20T12:00:00+00:00"},
    ]
    applied = store.apply_changes(
        COLUMNS,
        [feed_row(7, "+919876543210", sources=two_sources, ps="Kiran Rao"), feed_row(9, "+916300000001")],
        9,
    )
    assert applied == 2
    assert store.sync_cursor() == 9
    assert store.cache_count() == 2
    assert store.last_synced_at() is not None

    hit = store.lookup("+919876543210")
    assert hit == LeadSummary(
        lead_id=1007,
        phone="+919876543210",
        uid="GA-3210-0007",
        customer_name="Priya",
        sources=(
            SourceSeen("OEM", "Web", "2026-11-01T09:00:00+00:00"),
            SourceSeen("META", "Meta Know", "2026-11-20T12:00:00+00:00"),
        ),
        lead_status="Interested",
        final_status="Pending",
        cre_name="Anitha Reddy",
        ps_name="Kiran Rao",
        branch="ATTAPUR",
        created_at="2026-11-28T10:00:00.5+00:00",
        follow_up_date="2026-12-05",
    )
    assert hit.original_source == SourceSeen("OEM", "Web", "2026-11-01T09:00:00+00:00")
    assert hit.has_source("META", "Meta Know")
    assert not hit.has_source("META", "Google Know")
    assert not hit.has_source("GOOGLE", "Google Know")


def test_lookup_miss_is_none(store: Store) -> None:
    store.apply_changes(COLUMNS, [feed_row(1, "+919876543210")], 1)
    assert store.lookup("+919876543211") is None
    assert store.lookup("") is None


def test_sources_given_as_json_text_are_stored_as_received(store: Store, path: Path) -> None:
    text = '[{"source": "BTL", "sub_source": "BTL Know", "at": "2026-11-28T10:00:00+00:00"}]'
    store.apply_changes(COLUMNS, [feed_row(1, "+919876543210", sources=text, status=None, follow_up=None)], 1)
    conn = raw(path)
    try:
        assert conn.execute("SELECT sources FROM lead_cache").fetchone()[0] == text
    finally:
        conn.close()
    hit = store.lookup("+919876543210")
    assert hit is not None
    assert hit.sources == (SourceSeen("BTL", "BTL Know", "2026-11-28T10:00:00+00:00"),)
    assert hit.lead_status is None and hit.follow_up_date is None and hit.ps_name is None


def test_upsert_replaces_an_older_version_and_ignores_a_replayed_one(store: Store) -> None:
    store.apply_changes(COLUMNS, [feed_row(1, "+919876543210", name="Priya")], 1)
    newer = feed_row(
        5,
        "+919876543210",
        name="Priya Reddy",
        sources=[
            {"source": "GOOGLE", "sub_source": "Google Know", "at": "2026-11-28T10:00:00+00:00"},
            {"source": "OEM", "sub_source": "Tele", "at": "2026-11-29T10:00:00+00:00"},
        ],
    )
    assert store.apply_changes(COLUMNS, [newer], 5) == 1
    hit = store.lookup("+919876543210")
    assert hit is not None and hit.customer_name == "Priya Reddy" and hit.has_source("OEM", "Tele")
    assert store.cache_count() == 1

    # A replay of the old page (e.g. a retried request) must not roll the lead back.
    assert store.apply_changes(COLUMNS, [feed_row(1, "+919876543210", name="Priya")], 5) == 0
    hit = store.lookup("+919876543210")
    assert hit is not None and hit.customer_name == "Priya Reddy"


def test_columns_are_read_by_name_and_extra_ones_ignored(store: Store) -> None:
    row = feed_row(3, "+919876543210")
    columns = [*reversed(COLUMNS), "added_later"]
    store.apply_changes(columns, [[*reversed(row), "whatever"]], 3)
    hit = store.lookup("+919876543210")
    assert hit is not None and hit.uid == "GA-3210-0003" and hit.cre_name == "Anitha Reddy"
    with pytest.raises(ValueError, match="lacks column"):
        store.apply_changes([c for c in COLUMNS if c != "uid"], [], 4)


@pytest.mark.parametrize(
    ("bad_row", "error"),
    [
        (feed_row(12, None), sqlite3.IntegrityError),  # phone missing: a contract bug, not the environment
        (feed_row(12, "+916300000012")[:-1], ValueError),  # a value short
    ],
)
def test_a_bad_row_leaves_cache_and_cursor_as_they_were(
    store: Store, bad_row: list[Any], error: type[Exception]
) -> None:
    store.apply_changes(COLUMNS, [feed_row(1, "+919876543210", name="Before")], 1)
    page = [feed_row(10, "+916300000010"), feed_row(11, "+919876543210", name="After"), bad_row]
    with pytest.raises(error):
        store.apply_changes(COLUMNS, page, 12)
    assert store.sync_cursor() == 1
    assert store.cache_count() == 1
    assert store.lookup("+916300000010") is None
    hit = store.lookup("+919876543210")
    assert hit is not None and hit.customer_name == "Before"


def feed_page(rows: list[list[Any]], next_since: int, *, columns: list[str] = COLUMNS, **extra: Any) -> str:
    """A `lead_changes` answer as the server sends it (PostgreSQL's json: UTF-8, not ASCII-escaped)."""
    body = {"columns": columns, "rows": rows, "next_since": next_since, "more": False, "remaining": 0, **extra}
    return json.dumps(body, ensure_ascii=False)


def test_a_page_read_by_sqlite_gives_the_same_cache_as_decoded_rows(store: Store, tmp_path: Path) -> None:
    rows = [
        feed_row(1, "+919876543210", name='Anjali "Anju" D\'Souza \\ रमेश', ps="Kiran Rao"),
        feed_row(2, "+916300000002", name="Ravi", status=None, follow_up=None, sources=[]),
        feed_row(3, "+917000000003", name="Śrī ஸ்ரீ 😀", sources=[
            {"source": "OEM", "sub_source": "Web", "at": "2026-11-01T09:00:00+00:00"},
            {"source": "META", "sub_source": "Meta Know", "at": "2026-11-20T12:00:00+00:00"},
        ]),
    ]  # fmt: skip
    page = store.apply_feed_page(feed_page(rows, 3, more=True, remaining=40))
    assert (page.rows, page.applied, page.next_since, page.more, page.remaining) == (3, 3, 3, True, 40)
    assert store.sync_cursor() == 3

    decoded = Store(tmp_path / "decoded.sqlite3")
    try:
        decoded.apply_changes(COLUMNS, rows, 3)
        for row in rows:
            hit = store.lookup(row[2])
            assert hit is not None and hit == decoded.lookup(row[2])
    finally:
        decoded.close()
    hit = store.lookup("+919876543210")
    assert hit is not None and hit.customer_name == 'Anjali "Anju" D\'Souza \\ रमेश' and hit.ps_name == "Kiran Rao"
    hit = store.lookup("+917000000003")
    assert hit is not None and [s.source for s in hit.sources] == ["OEM", "META"]


# Any text PostgreSQL can hold (no NUL, no lone surrogates), sent raw or \u-escaped.
_pg_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    names=st.lists(_pg_text, min_size=1, max_size=5),
    statuses=st.lists(st.none() | _pg_text, min_size=5, max_size=5),
    sub_source=_pg_text,
    ascii_only=st.booleans(),
)
def test_any_text_reads_back_the_same_through_sqlite_json(
    tmp_path_factory: pytest.TempPathFactory,
    names: list[str],
    statuses: list[str | None],
    sub_source: str,
    ascii_only: bool,
) -> None:
    rows = [
        feed_row(i + 1, f"+91630000{i:04d}", name=name, status=statuses[i],
                 sources=[{"source": "GOOGLE", "sub_source": sub_source, "at": "2026-11-28T10:00:00+00:00"}])
        for i, name in enumerate(names)
    ]  # fmt: skip
    text = json.dumps({"columns": COLUMNS, "rows": rows, "next_since": len(rows)}, ensure_ascii=ascii_only)
    folder = tmp_path_factory.mktemp("page")
    with Store(folder / "json.sqlite3") as via_json, Store(folder / "rows.sqlite3") as via_rows:
        assert via_json.apply_feed_page(text).rows == len(rows)
        via_rows.apply_changes(COLUMNS, rows, len(rows))
        for row in rows:
            hit = via_json.lookup(row[2])
            assert hit is not None and hit == via_rows.lookup(row[2])
            assert hit.customer_name == row[4] and hit.lead_status == row[6]
            assert hit.sources[0].sub_source == sub_source


def test_a_page_read_by_sqlite_keeps_the_newer_version_and_reads_columns_by_name(store: Store) -> None:
    store.apply_feed_page(feed_page([feed_row(5, "+919876543210", name="Priya Reddy")], 5))
    replay = store.apply_feed_page(feed_page([feed_row(1, "+919876543210", name="Priya")], 5))
    assert replay.applied == 0 and replay.rows == 1
    hit = store.lookup("+919876543210")
    assert hit is not None and hit.customer_name == "Priya Reddy"

    columns = [*reversed(COLUMNS), "added_later"]
    row = feed_row(8, "+916300000008")
    store.apply_feed_page(feed_page([[*reversed(row), {"any": "thing"}]], 8, columns=columns))
    hit = store.lookup("+916300000008")
    assert hit is not None and hit.uid == "GA-0008-0008" and hit.cre_name == "Anitha Reddy"
    assert store.sync_cursor() == 8


def test_the_head_of_a_page_is_read_without_its_rows(store: Store) -> None:
    rows = [feed_row(1, "+919876543210", name="Devi"), feed_row(4, "+916300000004", status=None)]
    text = feed_page(rows, 4, more=True, remaining=9)
    assert store.read_feed_head(text) == FeedHead(tuple(COLUMNS), 4, True, 9)
    assert store.sync_cursor() == 0  # reading the head applies nothing
    page = store.apply_feed_page(text, store.read_feed_head(text))
    assert (page.rows, page.applied, page.next_since, page.more, page.remaining) == (2, 2, 4, True, 9)


def test_an_empty_page_moves_only_the_cursor(store: Store) -> None:
    page = store.apply_feed_page(feed_page([], 17))
    assert (page.rows, page.applied, page.more) == (0, 0, False)
    assert store.sync_cursor() == 17 and store.cache_count() == 0


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("<html>502 Bad Gateway</html>", "not JSON"),
        ("", "not JSON"),
        ("null", "not a JSON object"),
        ("[1, 2]", "not a JSON object"),
        ('{"columns": [], "rows": [], "next_since": 1}', "lacks column"),
        (feed_page([], 1, columns=["phone", 3]), "not a list of names"),  # type: ignore[list-item]
        (json.dumps({"columns": COLUMNS, "rows": {}, "next_since": 4}), "not a JSON object"),
        (json.dumps({"columns": COLUMNS, "rows": [], "next_since": "4"}), "not a JSON object"),
        (json.dumps({"columns": COLUMNS, "rows": [], "next_since": True}), "not a JSON object"),
        (json.dumps({"columns": "phone", "rows": [], "next_since": 4}), "not a JSON object"),
        (feed_page([], -1), "next_since"),
        (feed_page([feed_row(10, "+916300000010"), feed_row(11, "+916300000011")[:-1]], 12), "not an array of 13"),
        (feed_page([feed_row(10, "+916300000010"), [*feed_row(11, "+916300000011"), "x"]], 12), "not an array of 13"),
        (feed_page([feed_row(10, "+916300000010"), {"phone": "+916300000011"}], 12), "not an array of 13"),  # type: ignore[list-item]
        (feed_page([feed_row(10, "+916300000010"), 7], 12), "not an array of 13"),  # type: ignore[list-item]
        (feed_page([feed_row(10, "+916300000010"), feed_row(11, None)], 12), "every required one"),
    ],
)
def test_a_bad_page_read_by_sqlite_changes_nothing(store: Store, text: str, match: str) -> None:
    store.apply_changes(COLUMNS, [feed_row(1, "+919876543210", name="Before")], 1)
    with pytest.raises(ValueError, match=match):
        store.apply_feed_page(text)
    assert store.sync_cursor() == 1
    assert store.cache_count() == 1
    hit = store.lookup("+919876543210")
    assert hit is not None and hit.customer_name == "Before"


def test_clear_cache_empties_it_and_resets_the_cursor(store: Store) -> None:
    store.apply_changes(COLUMNS, [feed_row(i, f"+91630000{i:04d}") for i in range(1, 51)], 50)
    store.enqueue(lead())
    store.clear_cache()
    assert store.cache_count() == 0
    assert store.sync_cursor() == 0
    assert store.lookup("+916300000001") is None
    assert store.pending_count() == 1  # the outbox is not the cache


def test_catalog_and_profile_are_kept(store: Store, path: Path) -> None:
    assert store.load_catalog() is None and store.load_profile() is None and store.catalog_saved_at() is None
    catalog = {"branches": ["ATTAPUR", "KOMPALLY"], "models": ["Rizta Z Duo (3.7 kWh)"], "version": "002"}
    before = time.time()
    store.save_catalog(catalog)
    store.save_profile({"email": "anitha@example.com", "full_name": "Anitha Reddy", "role": "cre"})
    store.save_catalog({**catalog, "branches": ["ATTAPUR"]})
    store.close()
    with Store(path) as again:
        assert again.load_catalog() == {**catalog, "branches": ["ATTAPUR"]}
        saved_at = again.catalog_saved_at()
        assert saved_at is not None and saved_at >= before
        profile = again.load_profile()
        assert profile is not None and profile["full_name"] == "Anitha Reddy"


# -- outbox -------------------------------------------------------------------------------------------------------


def test_enqueue_puts_the_client_ref_in_the_payload_and_masks_the_label(store: Store) -> None:
    item = store.enqueue(lead(remark="wants a test ride"))
    assert uuid.UUID(item.client_ref)
    assert item.payload == {**lead(remark="wants a test ride"), "client_ref": item.client_ref}
    assert item.state is OutboxState.QUEUED and item.attempts == 0 and item.answer is None
    assert item.label == "Ravi Kumar · +91******3210"
    assert "9876543210" not in item.label
    assert store.get(item.client_ref) == item

    ref = str(uuid.uuid4())
    assert store.enqueue(lead(phone="+916300000001"), client_ref=ref).payload["client_ref"] == ref
    ref2 = str(uuid.uuid4())
    assert store.enqueue({**lead(phone="+916300000002"), "client_ref": ref2}).client_ref == ref2
    with pytest.raises(ValueError):
        store.enqueue(lead(), client_ref="not-a-uuid")
    with pytest.raises(ValueError):
        store.enqueue({**lead(), "client_ref": str(uuid.uuid4())}, client_ref=str(uuid.uuid4()))
    assert store.pending_count() == 3


def test_next_due_is_oldest_first_and_walks_the_lifecycle(store: Store) -> None:
    assert store.next_due(time.time()) is None
    assert store.earliest_due() is None and store.oldest_pending_at() is None
    a = store.enqueue(lead(name="A"))
    b = store.enqueue(lead(name="B", phone="+919876500001"))  # another lead: not held behind A (test_outbox_ops.py)
    now = time.time()
    assert store.oldest_pending_at() == a.created_at
    due = store.next_due(now)
    assert due is not None and due.client_ref == a.client_ref

    store.mark_sending(a.client_ref)
    assert store.get(a.client_ref).state is OutboxState.SENDING  # type: ignore[union-attr]
    nxt = store.next_due(now)
    assert nxt is not None and nxt.client_ref == b.client_ref  # a claimed item is not handed out twice
    assert store.pending_count() == 2

    answer = {"outcome": "created", "uid": "GA-3210-0001", "replayed": False}
    store.mark_done(a.client_ref, answer)
    done = store.get(a.client_ref)
    assert done is not None and done.state is OutboxState.DONE and done.answer == answer and done.attempts == 1
    assert store.pending_count() == 1
    assert store.oldest_pending_at() == b.created_at

    with pytest.raises(OutboxStateError):
        store.mark_done(b.client_ref, answer)  # never claimed
    with pytest.raises(OutboxStateError):
        store.mark_sending(a.client_ref)  # already done
    with pytest.raises(OutboxStateError, match="no outbox item"):
        store.mark_sending(str(uuid.uuid4()))


def test_backoff_lets_later_items_of_other_leads_pass_and_earliest_due_says_when(store: Store) -> None:
    a = store.enqueue(lead(name="A"))
    b = store.enqueue(lead(name="B", phone="+919876500001"))
    now = time.time()
    store.mark_sending(a.client_ref)
    store.mark_retry(a.client_ref, "server unreachable", now + 30)
    retried = store.get(a.client_ref)
    assert retried is not None
    assert retried.state is OutboxState.QUEUED and retried.attempts == 1 and retried.last_error == "server unreachable"

    due = store.next_due(now)
    assert due is not None and due.client_ref == b.client_ref
    store.mark_sending(b.client_ref)
    store.mark_retry(b.client_ref, "503", now + 10)
    assert store.next_due(now) is None
    assert store.earliest_due() == pytest.approx(now + 10)
    due = store.next_due(now + 10)
    assert due is not None and due.client_ref == b.client_ref
    due = store.next_due(now + 30)
    assert due is not None and due.client_ref == a.client_ref  # both due: queue order again
    assert store.pending_count() == 2


def test_a_parked_item_does_not_block_the_queue_and_can_be_discarded(store: Store) -> None:
    a = store.enqueue(lead(name="A"))
    b = store.enqueue(lead(name="B"))
    store.mark_sending(a.client_ref)
    refusal = {"code": "unknown_sub_source", "message": "Unknown sub-source."}
    store.mark_parked(a.client_ref, "Unknown sub-source.", refusal)
    parked = store.get(a.client_ref)
    assert parked is not None and parked.state is OutboxState.PARKED and parked.answer == refusal
    assert parked.attempts == 1
    due = store.next_due(time.time())
    assert due is not None and due.client_ref == b.client_ref
    assert store.pending_count() == 1 and store.parked_count() == 1

    with pytest.raises(OutboxStateError):
        store.discard(b.client_ref)  # only parked items can be dropped
    store.discard(a.client_ref)
    dropped = store.get(a.client_ref)
    assert dropped is not None and dropped.state is OutboxState.DISCARDED  # kept, not deleted
    assert [i.client_ref for i in store.items()] == [a.client_ref, b.client_ref]
    assert store.parked_count() == 0
    with pytest.raises(OutboxStateError):
        store.requeue(a.client_ref)


def test_parking_an_item_refused_before_sending_is_not_an_attempt(store: Store) -> None:
    a = store.enqueue(lead())
    store.mark_parked(a.client_ref, "The number is not an Indian mobile.")
    parked = store.get(a.client_ref)
    assert parked is not None and parked.state is OutboxState.PARKED and parked.attempts == 0


def test_requeue_unchanged_keeps_the_client_ref(store: Store) -> None:
    a = store.enqueue(lead())
    store.mark_sending(a.client_ref)
    store.mark_parked(a.client_ref, "Branch is closed.")
    again = store.requeue(a.client_ref, payload=dict(a.payload))
    assert again.client_ref == a.client_ref and again.payload == a.payload
    assert again.state is OutboxState.QUEUED and again.last_error is None
    due = store.next_due(time.time())
    assert due is not None and due.client_ref == a.client_ref
    with pytest.raises(OutboxStateError):
        store.requeue(a.client_ref)  # queued, not parked

    store.mark_sending(a.client_ref)
    store.mark_parked(a.client_ref, "Branch is closed.")
    assert store.requeue(a.client_ref).client_ref == a.client_ref  # no payload given: resend as is


def test_requeue_with_an_edit_gets_a_new_client_ref(store: Store) -> None:
    a = store.enqueue(lead(branch="CLOSED BRANCH"))
    b = store.enqueue(lead(name="B"))
    store.mark_sending(a.client_ref)
    store.mark_parked(a.client_ref, "Unknown branch.")
    edited = {**a.payload, "branch": "ATTAPUR"}  # still carries the old client_ref, as a UI copy would

    new = store.requeue(a.client_ref, edited)
    assert new.client_ref != a.client_ref
    assert new.payload == {**lead(branch="ATTAPUR"), "client_ref": new.client_ref}
    assert new.state is OutboxState.QUEUED and new.seq > b.seq
    old = store.get(a.client_ref)
    assert old is not None and old.state is OutboxState.REPLACED and old.replaced_by == new.client_ref
    assert old.payload["branch"] == "CLOSED BRANCH"  # the refused version is kept as it was
    assert [i.client_ref for i in store.items()] == [a.client_ref, b.client_ref, new.client_ref]
    assert store.pending_count() == 2 and store.parked_count() == 0


def test_reset_sending_requeues_what_a_crash_left_claimed(store: Store, path: Path) -> None:
    a = store.enqueue(lead(name="A"))
    b = store.enqueue(lead(name="B"))
    store.mark_sending(a.client_ref)
    store.close()
    with Store(path) as again:
        assert again.reset_sending() == 1
        assert again.reset_sending() == 0
        due = again.next_due(time.time())
        assert due is not None and due.client_ref == a.client_ref and due.state is OutboxState.QUEUED
        assert again.get(b.client_ref).state is OutboxState.QUEUED  # type: ignore[union-attr]


def test_items_since_keeps_older_items_that_still_need_attention(store: Store) -> None:
    old_done = store.enqueue(lead(name="old done"))
    old_parked = store.enqueue(lead(name="old parked"))
    old_queued = store.enqueue(lead(name="old queued"))
    store.mark_sending(old_done.client_ref)
    store.mark_done(old_done.client_ref, {"outcome": "created"})
    store.mark_parked(old_parked.client_ref, "refused")
    shift_start = time.time()
    while time.time() <= shift_start:  # created_at must be strictly later than the shift start
        pass
    new = store.enqueue(lead(name="this shift"))

    refs = [i.client_ref for i in store.items(since=shift_start)]
    assert refs == [old_parked.client_ref, old_queued.client_ref, new.client_ref]
    assert len(store.items()) == 4


# -- durability ---------------------------------------------------------------------------------------------------

_CHILD = """
import sys, time
from crm_desktop.core.store import Store
store = Store(sys.argv[1])
item = store.enqueue({"customer_name": "Killed Mid Shift", "phone": "+919876543210"})
print("ok", item.client_ref, flush=True)
time.sleep(60)
"""


def test_an_enqueued_lead_survives_the_process_being_killed(path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        child.kill()  # right after enqueue returned: no close, no checkpoint (SIGKILL; TerminateProcess)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()  # type: ignore[union-attr]
        child.stderr.close()  # type: ignore[union-attr]
    assert line[0] == "ok", line
    assert child.returncode != 0  # killed, not exited

    store, recovery = Store.open_or_rebuild(path)
    try:
        assert recovery.message is None
        item = store.get(line[1])
        assert item is not None and item.state is OutboxState.QUEUED
        assert item.payload["customer_name"] == "Killed Mid Shift"
    finally:
        store.close()


# -- damage -------------------------------------------------------------------------------------------------------


def fill(store: Store) -> list[str]:
    store.apply_changes(COLUMNS, [feed_row(i, f"+91630000{i:04d}") for i in range(1, 21)], 20)
    store.save_catalog({"branches": ["ATTAPUR"]})
    refs = [store.enqueue(lead(name=f"caller {i}")).client_ref for i in range(3)]
    store.mark_sending(refs[0])  # the app died mid-send
    return refs


@pytest.mark.expected_log_warnings
def test_a_cache_overwritten_with_garbage_is_rebuilt_and_the_outbox_kept(store: Store, path: Path) -> None:
    refs = fill(store)
    store.close()
    path.write_bytes(b"this is not a database, it was overwritten by something else " * 100)

    with pytest.raises(StoreError) as err:
        Store(path).lookup("+916300000001")
    assert err.value.kind == "corrupt" and err.value.part == "cache"
    assert "queued leads are safe" in err.value.message

    again, recovery = Store.open_or_rebuild(path)
    try:
        assert recovery.cache_rebuilt and not recovery.outbox_rebuilt
        assert recovery.message is not None and "rebuilt" in recovery.message
        assert again.sync_cursor() == 0 and again.cache_count() == 0
        assert [i.client_ref for i in again.items()] == refs
        assert again.load_catalog() == {"branches": ["ATTAPUR"]}  # offline start still works
        again.apply_changes(COLUMNS, [feed_row(1, "+916300000001")], 1)
        assert again.lookup("+916300000001") is not None
    finally:
        again.close()


def test_rebuild_cache_on_request_after_damage_found_mid_shift(store: Store, path: Path) -> None:
    fill(store)
    store.close()
    again, recovery = Store.open_or_rebuild(path, rebuild_cache=True)
    try:
        assert recovery.cache_rebuilt and again.cache_count() == 0 and again.pending_count() == 3
    finally:
        again.close()


@pytest.mark.expected_log_warnings
def test_a_garbage_outbox_is_set_aside_never_deleted(store: Store, path: Path) -> None:
    fill(store)
    store.close()
    garbage = b"\x00garbage\xff" * 1000
    store.outbox_path.write_bytes(garbage)

    again, recovery = Store.open_or_rebuild(path)
    try:
        assert recovery.outbox_rebuilt and not recovery.cache_rebuilt and recovery.rescued == 0
        assert recovery.set_aside is not None and recovery.set_aside.read_bytes() == garbage
        assert recovery.message is not None and str(recovery.set_aside) in recovery.message
        assert again.items() == []
        assert again.cache_count() == 20  # the cache was fine and stays
        assert again.enqueue(lead()).state is OutboxState.QUEUED
    finally:
        again.close()


@pytest.mark.expected_log_warnings
def test_readable_outbox_rows_are_rescued_from_a_damaged_file(store: Store, path: Path) -> None:
    refs = fill(store)
    # A large kept blob lands on the last pages of the file, away from the outbox table's pages.
    store.save_catalog({"models": [f"model {i}" for i in range(20_000)]})
    store.close()  # checkpoints: everything is in the main file
    data = bytearray(store.outbox_path.read_bytes())
    page = 4096
    assert len(data) > 40 * page
    at = len(data) - 3 * page
    data[at : at + page] = b"\xde\xad\xbe\xef" * (page // 4)
    store.outbox_path.write_bytes(bytes(data))

    again, recovery = Store.open_or_rebuild(path)
    try:
        assert recovery.outbox_rebuilt and recovery.rescued == 3
        assert recovery.set_aside is not None and recovery.set_aside.read_bytes() == bytes(data)
        items = again.items()
        assert [i.client_ref for i in items] == refs
        assert all(i.state is OutboxState.QUEUED for i in items)  # the one left sending is queued again
    finally:
        again.close()


@pytest.mark.expected_log_warnings
def test_files_from_a_newer_version(store: Store, path: Path) -> None:
    fill(store)
    store.close()
    for file in (path, outbox_path_for(path)):
        conn = raw(file)
        conn.execute("PRAGMA user_version = 99")
        conn.close()
    # The outbox is never thrown away: the CRE must run the newer version.
    with pytest.raises(StoreError) as err:
        Store.open_or_rebuild(path)
    assert err.value.kind == "cannot_open" and err.value.part == "outbox" and "newer" in err.value.message

    conn = raw(outbox_path_for(path))
    conn.execute(f"PRAGMA user_version = {len(_OUTBOX_MIGRATIONS)}")
    conn.close()
    # A newer cache is only downloaded data: rebuilt.
    again, recovery = Store.open_or_rebuild(path)
    try:
        assert recovery.cache_rebuilt and again.pending_count() == 3
    finally:
        again.close()


# -- failures sorted by blame -------------------------------------------------------------------------------------


def test_a_held_write_lock_is_busy_not_a_bug(path: Path) -> None:
    with Store(path, busy_timeout_ms=50) as s:
        s.pending_count()
        s.sync_cursor()
        for file, act, part in (
            (s.outbox_path, lambda: s.enqueue(lead()), "outbox"),
            (path, lambda: s.apply_changes(COLUMNS, [feed_row(1, "+919876543210")], 1), "cache"),
        ):
            other = raw(file)  # e.g. a second CRE Desk on the same account
            other.execute("BEGIN IMMEDIATE")
            try:
                with pytest.raises(StoreError) as err:
                    act()
            finally:
                other.execute("ROLLBACK")
                other.close()
            assert err.value.kind == "busy" and err.value.part == part
            assert isinstance(err.value.__cause__, sqlite3.OperationalError)
        assert s.pending_count() == 0 and s.sync_cursor() == 0  # nothing half-written
        s.enqueue(lead())  # and it works once the lock is gone
        assert s.pending_count() == 1


def test_a_full_disk_is_disk_full_and_the_lead_is_not_half_saved(store: Store) -> None:
    store.enqueue(lead())
    # A real SQLITE_FULL without filling the disk: cap this connection's file at its current size. (The one reach
    # into the store's connection: there is no other way to make SQLite report a full disk on demand.)
    conn = store._outbox_db()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreError) as err:
        store.enqueue(lead(remark="x" * 20_000))
    assert err.value.kind == "disk_full" and err.value.part == "outbox"
    assert "free some disk space" in err.value.message
    assert store.pending_count() == 1


def test_classification_of_real_sqlite_failures(tmp_path: Path) -> None:
    db = tmp_path / "plain.sqlite3"
    conn = raw(db)
    conn.execute("CREATE TABLE t (x PRIMARY KEY)")
    conn.close()

    # Read-only: we run as root, where chmod does not stop writes; a read-only open gives the same SQLite error.
    ro = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as caught:
            ro.execute("INSERT INTO t VALUES (1)")
    finally:
        ro.close()
    err = classify_error(caught.value, "outbox", db)
    assert err is not None and err.kind == "read_only" and str(db) in err.message

    full = raw(db)
    full.execute("PRAGMA max_page_count = 2")
    with pytest.raises(sqlite3.OperationalError) as caught:
        full.execute("INSERT INTO t VALUES (zeroblob(100000))")
    full.close()
    err = classify_error(caught.value, "cache")
    assert err is not None and err.kind == "disk_full"

    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"x" * 4096)
    bad = raw(junk)
    with pytest.raises(sqlite3.DatabaseError) as caught_db:
        bad.execute("SELECT * FROM sqlite_master")
    bad.close()
    err = classify_error(caught_db.value, "cache")
    assert err is not None and err.kind == "corrupt"

    # Bugs are not the environment's fault: they propagate unchanged.
    dup = raw(db)
    dup.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError) as caught_bug:
        dup.execute("INSERT INTO t VALUES (1)")
    dup.close()
    assert classify_error(caught_bug.value, "cache") is None
    assert classify_error(sqlite3.ProgrammingError("Cannot operate on a closed database."), "cache") is None


def test_a_path_that_cannot_be_a_database_is_cannot_open(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.sqlite3"
    folder.mkdir()
    with pytest.raises(StoreError) as err:
        Store(folder).lookup("+919876543210")
    assert err.value.kind == "cannot_open" and str(folder) in err.value.message


def test_a_bug_in_the_caller_is_not_dressed_up_as_an_environment_problem(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.apply_changes(COLUMNS, [feed_row(1, None)], 1)
    item = store.enqueue(lead())
    with pytest.raises(sqlite3.IntegrityError):
        store.enqueue(lead(), client_ref=item.client_ref)  # the same key twice is the caller's bug


def test_json_in_the_outbox_is_readable_by_other_tools(store: Store) -> None:
    item = store.enqueue(lead(name="ಕನ್ನಡ ಹೆಸರು"))
    conn = raw(store.outbox_path)
    try:
        stored = conn.execute("SELECT payload FROM outbox WHERE client_ref = :r", {"r": item.client_ref}).fetchone()[0]
    finally:
        conn.close()
    assert "ಕನ್ನಡ ಹೆಸರು" in stored and json.loads(stored) == item.payload


def test_a_bulk_fill_drops_indexes_only_of_an_empty_cache_and_builds_them_back(store: Store, path: Path) -> None:
    def objects() -> set[str]:
        with raw(path) as conn:
            return {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE sql IS NOT NULL").fetchall()}

    full = objects()
    assert {"lead_cache_uid", "lead_cache_cre_lists", "lead_names_insert"} <= full
    assert store.begin_bulk_fill() is True
    assert {"lead_cache_uid", "lead_cache_cre_lists"}.isdisjoint(objects())
    assert {"lead_names_insert", "lead_names_update"} <= objects()  # the name index is kept in step meanwhile
    rows = [feed_row(i, f"+9163000{i:05d}", name=f"Bulk Name {i}") for i in range(1, 40)]
    store.apply_feed_page(feed_page(rows, 39))
    with raw(path) as conn:
        assert conn.execute("SELECT count(*) FROM lead_names WHERE lead_names MATCH 'bulk'").fetchone()[0] == 39
    assert store.finish_bulk_fill() is True
    assert objects() == full and store.finish_bulk_fill() is False
    with raw(path) as conn:  # the name index holds the rows filled meanwhile, and follows changes again
        assert conn.execute("SELECT count(*) FROM lead_names WHERE lead_names MATCH 'bulk'").fetchone()[0] == 39
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT phone FROM lead_cache WHERE uid = 'x'").fetchall()
        assert "lead_cache_uid" in str(plan)
    store.apply_feed_page(feed_page([feed_row(40, "+916300000001", name="Other Person")], 40))
    with raw(path) as conn:
        assert conn.execute("SELECT count(*) FROM lead_names WHERE lead_names MATCH 'bulk'").fetchone()[0] == 38
    # A cache that holds leads is never bulk-filled: its indexes stay.
    assert store.begin_bulk_fill() is False and objects() == full


def test_a_cache_an_older_desk_left_halfway_through_a_bulk_fill_gets_its_name_index_rebuilt(
    store: Store, path: Path
) -> None:
    """Desks of stop 18 and older dropped the name index's triggers too for a bulk fill. A cache closed halfway by one
    holds rows the name index lacks; the pass that catches up rebuilds it from the rows and puts the triggers back."""

    def objects() -> set[str]:
        with raw(path) as conn:
            return {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE sql IS NOT NULL").fetchall()}

    full = objects()
    assert store.begin_bulk_fill() is True
    with raw(path) as conn:  # what the older desk's begin_bulk_fill also did
        conn.execute("DROP TRIGGER lead_names_insert")
        conn.execute("DROP TRIGGER lead_names_update")
    store.apply_feed_page(feed_page([feed_row(i, f"+9163100{i:05d}", name=f"Halfway {i}") for i in range(1, 30)], 29))
    with raw(path) as conn:
        assert conn.execute("SELECT count(*) FROM lead_names WHERE lead_names MATCH 'halfway'").fetchone()[0] == 0
    assert store.finish_bulk_fill() is True
    assert objects() == full
    with raw(path) as conn:
        conn.execute("INSERT INTO lead_names (lead_names, rank) VALUES ('integrity-check', 1)")
        assert conn.execute("SELECT count(*) FROM lead_names WHERE lead_names MATCH 'halfway'").fetchone()[0] == 29


def unsynced_fill_left_halfway(path: Path, rows: int = 3000) -> Path:
    """A cache as a desk leaves it when it stops in the middle of a first sync's unsynced fill without ending it (a
    killed process, a power cut): rows in, the secondary indexes not built, the fill's mark beside the file."""
    store, _ = Store.open_or_rebuild(path)
    try:
        assert store.begin_bulk_fill()
        assert store.begin_unsynced_fill()
        assert store._cache_db().execute("PRAGMA synchronous").fetchone()[0] == 0  # OFF
        for start in range(0, rows, 500):
            page = [feed_row(i, f"+9163{i:08d}") for i in range(start + 1, start + 501)]
            store.apply_changes(COLUMNS, page, start + 500)
    finally:
        store.close()  # no end_unsynced_fill: the mark stays
    mark = path.with_name(path.name + ".filling")
    assert mark.exists()
    return mark


def damage_a_table_page(path: Path) -> None:
    """Zero the last leaf page of lead_cache's rows (its newest rows): the header, the schema and the first rows still
    read. Found by walking the table's b-tree down its right-most children (SQLite's file format; not the dbstat
    table, which Python's SQLite on Windows lacks)."""
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (page,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'lead_cache'").fetchone()
    conn.close()
    data = path.read_bytes()
    while data[(at := (page - 1) * page_size + (100 if page == 1 else 0))] == 0x05:  # an interior table page
        page = int.from_bytes(data[at + 8 : at + 12], "big")  # its right-most child
    assert data[at] == 0x0D  # a table leaf
    with open(path, "r+b") as f:
        f.seek((page - 1) * page_size)
        f.write(bytes(page_size))


def test_a_cache_not_being_filled_keeps_its_usual_durability(store: Store, path: Path) -> None:
    store.apply_changes(COLUMNS, [feed_row(1, "+916300000001")], 1)
    assert not store.begin_unsynced_fill()  # nothing left out by a bulk fill: not a fill
    assert store._cache_db().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert not path.with_name(path.name + ".filling").exists()


def test_a_fill_that_ended_unsynced_is_checked_at_start_and_kept_when_intact(tmp_path: Path) -> None:
    path = tmp_path / "desk.sqlite3"
    mark = unsynced_fill_left_halfway(path)
    again, recovery = Store.open_or_rebuild(path)
    try:
        assert not recovery.cache_rebuilt and again.cache_count() == 3000 and again.sync_cursor() == 3000
        assert not mark.exists()  # checked and on the disk: the next pass continues the fill where it stopped
        assert again.begin_unsynced_fill()  # still a fill (its indexes are built when it catches up)
        again.end_unsynced_fill()
        assert again._cache_db().execute("PRAGMA synchronous").fetchone()[0] == 1 and not mark.exists()
    finally:
        again.close()


@pytest.mark.expected_log_warnings
def test_a_fill_that_ended_unsynced_and_was_damaged_is_rebuilt_at_start(tmp_path: Path) -> None:
    path = tmp_path / "desk.sqlite3"
    mark = unsynced_fill_left_halfway(path)
    damage_a_table_page(path)
    again, recovery = Store.open_or_rebuild(path)
    try:
        assert recovery.cache_rebuilt and again.cache_count() == 0 and again.sync_cursor() == 0
        assert not mark.exists()
    finally:
        again.close()


def test_the_same_damage_without_the_fill_mark_is_not_looked_for_at_start(tmp_path: Path) -> None:
    """What the mark buys: without it a start only opens and touches the cache (a full check would delay every
    start), so damage deep in the file shows up later, mid-shift."""
    path = tmp_path / "desk.sqlite3"
    unsynced_fill_left_halfway(path).unlink()
    damage_a_table_page(path)
    again, recovery = Store.open_or_rebuild(path)
    try:
        assert not recovery.cache_rebuilt
        assert again.lookup("+916300000001") is not None
        with pytest.raises(StoreError) as err:
            again.lookup("+916300003000")  # the last row in: on the damaged page
        assert err.value.kind == "corrupt"
    finally:
        again.close()
