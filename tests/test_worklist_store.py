"""The worklist and search on real SQLite files: the lists and their counts from the feed's lead-life columns, this
desk's queue laid over them, search by name in several scripts, by last digits and by UID, and a cache written by
an older desk that refills its rows from the feed."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from crm_desktop.core.cache import LIFE_COLUMNS
from crm_desktop.core.models import Op
from crm_desktop.core.outbox import unsaved_item
from crm_desktop.core.search import match_expression, query_kind
from crm_desktop.core.store import _CACHE_MIGRATIONS, FEED_COLUMNS, Store
from crm_desktop.core.worklist import WorkList, overdue_days

ME = "11111111-1111-1111-1111-111111111111"
OTHER = "22222222-2222-2222-2222-222222222222"
TODAY = date(2026, 11, 30)
COLUMNS = [*FEED_COLUMNS, *LIFE_COLUMNS]


def row(n: int, *, name: str = "Priya", cre: str = ME, status: str | None = "Interested", final: str = "Pending",
        follow: str | None = "2026-12-05", at: str | None = None, calls: int = 1, ps: str | None = None,
        won_at: str | None = None, change: int | None = None) -> list[Any]:  # fmt: skip
    phone = f"+9198765{n:05d}"
    values = {
        "change_id": change or n,
        "lead_id": n,
        "phone": phone,
        "uid": f"GA-{phone[-4:]}-{n:04d}",
        "customer_name": name,
        "sources": [{"source": "GOOGLE", "sub_source": "Google Know", "at": "2026-11-28T10:00:00+00:00"}],
        "lead_status": status,
        "final_status": final,
        "cre_name": "Asha" if cre == ME else "Imran",
        "ps_name": ps,
        "branch": "ATTAPUR",
        "created_at": f"2026-11-{1 + n % 28:02d}T10:00:00+00:00",
        "follow_up_date": follow,
        "cre_id": cre,
        "lead_category": "Warm",
        "model_interested": "450X",
        "follow_up_at": at,
        "last_call_at": "2026-11-29T10:00:00+00:00" if calls else None,
        "call_count": calls,
        "won_at": won_at,
        "lost_at": None,
        "updated_at": "2026-11-29T10:00:00+00:00",
        "test_drive_done": False,
        "ps_email": None if ps is None else "ps@demo.local",
    }
    return [values[c] for c in COLUMNS]


@pytest.fixture(params=["my_leads", "lead_cache"])
def store(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """Both ways a list is read: this desk's own CRE (my_leads, kept by triggers) and any other (lead_cache)."""
    s, _ = Store.open_or_rebuild(tmp_path / "desk.sqlite3")
    s.save_profile({"id": ME, "full_name": "Asha", "role": "cre", "email": "cre1@demo.local"})
    if request.param == "my_leads":
        assert s.set_desk_owner(ME) and not s.set_desk_owner(ME)
    yield s
    s.close()


@pytest.fixture
def day(store: Store) -> Store:
    """A CRE's cache: two fresh, one due today, one overdue by 3 days, one call-back, one with a PS, one won, and one
    lead of another CRE."""
    rows = [
        row(1, name="Fresh One", status=None, calls=0, follow=None),
        row(2, name="Fresh Two", status=None, calls=0, follow=None),
        row(3, name="Due Today", follow="2026-11-30"),
        row(4, name="Late Lead", follow="2026-11-27"),
        row(5, name="Call Back", follow="2026-12-01", at="2026-12-01T05:00:00+00:00"),
        row(6, name="With Ps", ps="Suresh"),
        row(7, name="Won Deal", final="Won", follow=None, won_at="2026-11-29T10:00:00+00:00"),
        row(8, name="Not Mine", cre=OTHER, follow="2026-11-30"),
    ]
    store.apply_changes(COLUMNS, rows, 8)
    return store


def names(leads: list[Any]) -> list[str]:
    return [lead.customer_name for lead in leads]


def test_each_list_holds_its_leads_and_counts_them(day: Store) -> None:
    counts = day.worklist_counts(ME, TODAY)
    assert counts == {
        WorkList.FRESH: 2, WorkList.DUE_TODAY: 1, WorkList.OVERDUE: 1, WorkList.CALLBACKS: 1,
        WorkList.PENDING: 6, WorkList.WITH_PS: 1, WorkList.WON_LOST: 1,
    }  # fmt: skip
    assert sorted(names(day.worklist_page(ME, WorkList.FRESH, TODAY))) == ["Fresh One", "Fresh Two"]
    assert names(day.worklist_page(ME, WorkList.DUE_TODAY, TODAY)) == ["Due Today"]
    overdue = day.worklist_page(ME, WorkList.OVERDUE, TODAY)
    assert names(overdue) == ["Late Lead"] and overdue_days(overdue[0], TODAY) == 3
    assert names(day.worklist_page(ME, WorkList.CALLBACKS, TODAY)) == ["Call Back"]
    assert names(day.worklist_page(ME, WorkList.WITH_PS, TODAY)) == ["With Ps"]
    assert names(day.worklist_page(ME, WorkList.WON_LOST, TODAY)) == ["Won Deal"]
    # Pending in follow-up order, leads without a follow-up last.
    assert names(day.worklist_page(ME, WorkList.PENDING, TODAY)) == [
        "Late Lead", "Due Today", "Call Back", "With Ps", "Fresh One", "Fresh Two",
    ]  # fmt: skip
    # The other CRE's own list (a team lead picks them).
    assert names(day.worklist_page(OTHER, WorkList.DUE_TODAY, TODAY)) == ["Not Mine"]
    # A month later the won lead is no longer "recent".
    assert day.worklist_counts(ME, date(2027, 1, 15))[WorkList.WON_LOST] == 0


def test_pages_and_sorting(day: Store) -> None:
    first = day.worklist_page(ME, WorkList.PENDING, TODAY, sort="customer_name", limit=4)
    rest = day.worklist_page(ME, WorkList.PENDING, TODAY, sort="customer_name", offset=4, limit=4)
    assert names(first + rest) == sorted(names(first + rest), key=str.casefold) and len(first + rest) == 6
    desc = day.worklist_page(ME, WorkList.PENDING, TODAY, sort="customer_name", descending=True)
    assert names(desc) == list(reversed(names(first + rest)))
    with pytest.raises(ValueError, match="cannot sort"):
        day.worklist_page(ME, WorkList.PENDING, TODAY, sort="1; DROP TABLE lead_cache")


def test_a_long_list_sorted_by_a_column_outside_the_index_reads_the_same_rows(
    day: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above SCAN_MY_LEADS_ABOVE rows a re-sort reads my_leads straight through instead of its index: same rows,
    same order, page by page (and another CRE's lists, in lead_cache, are not affected)."""
    import crm_desktop.core.worklist as worklist

    def pages(sort: str, descending: bool) -> list[str]:
        got: list[str] = []
        for offset in range(0, 8, 3):
            got += names(day.worklist_page(ME, WorkList.PENDING, TODAY, sort=sort, descending=descending,
                                           offset=offset, limit=3))  # fmt: skip
        return got

    wanted = {(sort, desc): pages(sort, desc) for sort in ("customer_name", "uid", "last_call_at") for desc in (0, 1)}
    monkeypatch.setattr(worklist, "SCAN_MY_LEADS_ABOVE", 0)
    for (sort, desc), shown in wanted.items():
        assert len(shown) == 6 and pages(sort, bool(desc)) == shown, (sort, desc)


def test_a_queued_call_moves_the_lead_at_once_marked_not_sent(day: Store) -> None:
    fresh = day.lookup("+919876500001")
    assert fresh is not None and fresh.call_count == 0
    day.enqueue_call(
        {"lead_id": fresh.lead_id, "called_at": "2026-11-30T11:00:00+05:30", "lead_status": "Interested",
         "follow_up_at": "2026-12-01"}, fresh.phone, {"customer_name": fresh.customer_name},
    )  # fmt: skip
    counts = day.worklist_counts(ME, TODAY)
    assert counts[WorkList.FRESH] == 1 and counts[WorkList.PENDING] == 6
    pending = {lead.customer_name: lead for lead in day.worklist_page(ME, WorkList.PENDING, TODAY)}
    moved = pending["Fresh One"]
    assert moved.unsent == 1 and moved.call_count == 1 and moved.lead_status == "Interested"
    assert moved.follow_up_date == "2026-12-01"
    banner = day.lookup_desk(fresh.phone)
    assert banner is not None and banner.unsent == 1 and banner.lead_status == "Interested"

    # Won, logged on the overdue lead: it leaves Overdue and shows under Won / Lost.
    late = day.lookup("+919876500004")
    assert late is not None
    day.enqueue_call({"lead_id": late.lead_id, "called_at": "2026-11-30T11:05:00+05:30", "lead_status": "Interested",
                      "final_status": "Won"}, late.phone)  # fmt: skip
    counts = day.worklist_counts(ME, TODAY)
    assert counts[WorkList.OVERDUE] == 0 and counts[WorkList.WON_LOST] == 2


def test_a_call_still_being_saved_is_laid_over_and_counted_once_when_it_is_on_disk(day: Store) -> None:
    """Enter on the call form does not wait for the commit: until it is on disk, the desk hands the call to every
    read as `saving`. Read while it commits, the same call is both in memory and in the outbox: it counts once."""
    fresh = day.lookup("+919876500001")
    assert fresh is not None
    body = {"lead_id": fresh.lead_id, "called_at": "2026-11-30T11:00:00+05:30", "lead_status": "Interested",
            "follow_up_at": "2026-12-01", "client_ref": "0b7c3f52-8a59-4a8e-9d0e-6f1f0a2b3c4d"}  # fmt: skip
    saving = [unsaved_item(Op.LOG_CALL, body, lead_key=fresh.phone, meta={"customer_name": fresh.customer_name})]
    assert day.pending_count() == 0
    # Not handed over (a commit that failed is let go of): the lead is as the cache has it.
    assert day.worklist_counts(ME, TODAY)[WorkList.FRESH] == 2
    for reads in ("in memory only", "in memory and on disk", "on disk only"):
        if reads == "in memory and on disk":
            day.enqueue_call(body, fresh.phone, {"customer_name": fresh.customer_name})
        given = [] if reads == "on disk only" else saving
        counts = day.worklist_counts(ME, TODAY, given)
        assert (counts[WorkList.FRESH], counts[WorkList.PENDING]) == (1, 6), reads
        pending = {lead.customer_name: lead for lead in day.worklist_page(ME, WorkList.PENDING, TODAY, saving=given)}
        moved = pending["Fresh One"]
        assert (moved.unsent, moved.call_count, moved.lead_status) == (1, 1, "Interested"), reads
        banner = day.lookup_desk(fresh.phone, given)
        assert banner is not None and banner.unsent == 1 and banner.call_count == 1, reads
        found = day.search("fresh on", saving=given)
        assert [(x.customer_name, x.unsent) for x in found] == [("Fresh One", 1)], reads


def test_an_older_queued_call_counts_but_does_not_set_the_state(day: Store) -> None:
    lead = day.lookup("+919876500003")  # last call 2026-11-29 10:00 UTC
    assert lead is not None
    day.enqueue_call({"lead_id": lead.lead_id, "called_at": "2026-11-28T09:00:00+00:00", "lead_status": "RNR"},
                     lead.phone)  # fmt: skip
    shown = day.lookup_desk(lead.phone)
    assert shown is not None and shown.lead_status == "Interested" and shown.call_count == 2 and shown.unsent == 1


def test_an_answered_call_stays_laid_over_until_the_feed_brings_it(day: Store) -> None:
    lead = day.lookup("+919876500001")
    assert lead is not None
    item = day.enqueue_call({"lead_id": lead.lead_id, "called_at": "2026-11-30T11:00:00+05:30",
                             "lead_status": "Interested", "follow_up_at": "2026-12-02"}, lead.phone)  # fmt: skip
    day.mark_sending(item.client_ref)
    answered = dict(zip(COLUMNS, row(1, name="Fresh One", follow="2026-12-02", calls=1, change=20), strict=True))
    day.mark_done(item.client_ref, {"outcome": "logged", "applied": True, "lead": answered})
    shown = day.lookup_desk(lead.phone)
    assert shown is not None and shown.call_count == 1 and shown.unsent == 0 and shown.follow_up_date == "2026-12-02"
    assert day.worklist_counts(ME, TODAY)[WorkList.FRESH] == 1
    day.apply_changes(COLUMNS, [row(1, name="Fresh One", follow="2026-12-03", calls=1, change=21)], 21)
    shown = day.lookup_desk(lead.phone)  # the feed's newer version wins from now on
    assert shown is not None and shown.follow_up_date == "2026-12-03" and shown.unsent == 0


def test_a_lead_queued_offline_is_listed_found_and_known_to_the_banner(day: Store) -> None:
    phone = "+919812345678"
    assert day.lookup_desk(phone) is None
    created = day.enqueue({"customer_name": "Ramesh Babu", "phone": phone, "source": "META",
                           "sub_source": "Meta Know"})  # fmt: skip
    banner = day.lookup_desk(phone)
    assert banner is not None and not banner.on_server and banner.lead_ref == created.client_ref
    assert banner.customer_name == "Ramesh Babu" and banner.unsent == 1
    assert "Ramesh Babu" in names(day.worklist_page(ME, WorkList.FRESH, TODAY))
    assert names(day.search("rame")) == ["Ramesh Babu"]
    assert names(day.search("5678")) == ["Ramesh Babu"]
    # Called again before it was sent: the call names the create, and the lead leaves Fresh.
    day.enqueue_call({"lead_ref": created.client_ref, "called_at": "2026-11-30T12:00:00+05:30",
                      "lead_status": "Call me Back", "follow_up_at": "2026-11-30T18:00:00+05:30"}, phone)  # fmt: skip
    callbacks = {lead.customer_name: lead for lead in day.worklist_page(ME, WorkList.CALLBACKS, TODAY)}
    assert callbacks["Ramesh Babu"].unsent == 2
    assert "Ramesh Babu" not in names(day.worklist_page(ME, WorkList.FRESH, TODAY))


@pytest.fixture
def people(store: Store) -> Store:
    rows = [
        row(1, name="Ravi Kumar"),
        row(2, name="Ramesh Babu"),
        row(3, name="José Álvarez"),
        row(4, name="रमेश कुमार"),
        row(5, name="రమేష్ బాబు"),
        row(6, name="Kumari Devi"),
        row(7, name="Aravind Rao"),
    ]
    store.apply_changes(COLUMNS, rows, 7)
    return store


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("ra", ["Ramesh Babu", "Ravi Kumar", "Aravind Rao"]),  # "Rao" starts with ra
        ("kum", ["Kumari Devi", "Ravi Kumar"]),  # word-start, not substring: "Aravind" is not found by "ravi"
        ("RAVI", ["Ravi Kumar"]),
        ("ravi ku", ["Ravi Kumar"]),
        ("jose", ["José Álvarez"]),
        ("álv", ["José Álvarez"]),
        ("रमे", ["रमेश कुमार"]),
        ("कुमा", ["रमेश कुमार"]),
        ("రమే", ["రమేష్ బాబు"]),
        ("బాబు", ["రమేష్ బాబు"]),
        ('"ra', ["Ramesh Babu", "Ravi Kumar", "Aravind Rao"]),  # a stray quote is text, not FTS syntax
    ],
)
def test_search_by_name_in_any_script(people: Store, typed: str, expected: list[str]) -> None:
    assert sorted(names(people.search(typed))) == sorted(expected)


def test_search_by_last_digits_and_uid(people: Store) -> None:
    assert names(people.search("00002")) == ["Ramesh Babu"]
    assert names(people.search("0002")) == ["Ramesh Babu"]
    assert names(people.search("+91 98765 00003")) == ["José Álvarez"]
    assert people.search("002") == []  # fewer than four digits: too many to be useful
    assert names(people.search("GA-0004")) == ["रमेश कुमार"]
    assert names(people.search("ga-0004-0004")) == ["रमेश कुमार"]
    assert len(people.search("GA-000")) == 7 and people.search("GB-") == []


def test_query_kinds_and_match_expressions() -> None:
    assert query_kind("98765 43210") == "phone" and query_kind("321") == "none" and query_kind("") == "none"
    assert query_kind("GA-3210") == "uid" and query_kind("Ravi") == "name"
    assert match_expression('ra "x') == '"ra"* "x"*'
    assert match_expression("  ") is None


def test_a_cache_of_an_older_desk_keeps_its_rows_and_refills_them_from_the_feed(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _CACHE_MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO lead_cache (phone, change_id, lead_id, uid, customer_name, sources, final_status, created_at) "
        "VALUES ('+919876500001', 5, 1, 'GA-0001-0001', 'Ravi Kumar', '[]', 'Pending', '2026-11-01')"
    )
    conn.execute("INSERT INTO sync_state (id, cursor, synced_at) VALUES (1, 5, 0)")
    conn.close()

    store, recovery = Store.open_or_rebuild(path)
    try:
        assert not recovery.cache_rebuilt
        assert store.sync_cursor() == 0  # the feed is read again from the start
        assert store.lookup("+919876500001") is not None  # the banner keeps working meanwhile
        assert names(store.search("rav")) == ["Ravi Kumar"]  # old rows are in the name index
        # The same version again (change_id 5) fills the new columns of a row cached before them.
        applied = store.apply_changes(COLUMNS, [row(1, name="Ravi Kumar", change=5, calls=0, status=None)], 5)
        assert applied == 1
        refilled = store.lookup("+919876500001")
        assert refilled is not None and refilled.cre_id == ME and refilled.call_count == 0
        # ... once: a replay of it is ignored again.
        assert store.apply_changes(COLUMNS, [row(1, name="Ravi Kumar", change=5)], 5) == 0
    finally:
        store.close()


def test_a_renamed_lead_is_found_by_its_new_name_only(people: Store) -> None:
    people.apply_changes(COLUMNS, [row(1, name="Raghav Kumar", change=30)], 30)
    assert names(people.search("ravi")) == []
    assert names(people.search("ragh")) == ["Raghav Kumar"]
    people.clear_cache()
    assert people.search("ragh") == []


def test_the_feed_page_path_fills_the_life_columns(store: Store) -> None:
    import json

    page = json.dumps({"columns": COLUMNS, "rows": [row(1, cre=ME, calls=3, at="2026-12-01T05:00:00+00:00")],
                       "next_since": 1, "more": False})  # fmt: skip
    store.apply_feed_page(page)
    lead = store.lookup("+919876500001")
    assert lead is not None and lead.call_count == 3 and lead.cre_id == ME
    assert lead.follow_up_at == "2026-12-01T05:00:00+00:00" and lead.test_drive_done is False


def test_my_leads_follows_inserts_updates_reassignments_and_a_new_owner(store: Store) -> None:
    store.set_desk_owner(ME)
    store.apply_changes(COLUMNS, [row(1, name="Mine"), row(2, name="Theirs", cre=OTHER)], 2)

    def mine() -> list[str]:
        return [r[0] for r in store._cache_db().execute("SELECT customer_name FROM my_leads ORDER BY 1")]

    assert mine() == ["Mine"]
    store.apply_changes(COLUMNS, [row(2, name="Theirs", cre=ME, change=10)], 10)  # reassigned to me
    store.apply_changes(COLUMNS, [row(1, name="Mine", cre=OTHER, change=11)], 11)  # and one away from me
    assert mine() == ["Theirs"]
    store.apply_changes(COLUMNS, [row(2, name="Theirs Renamed", cre=ME, change=12, status="RNR")], 12)
    assert mine() == ["Theirs Renamed"]
    assert names(store.worklist_page(ME, WorkList.PENDING, TODAY)) == ["Theirs Renamed"]
    assert store.set_desk_owner(OTHER)  # another user signs in on this computer
    assert mine() == ["Mine"]
    store.clear_cache()
    assert mine() == []


def _plans(store: Store, read: Any) -> list[tuple[str, list[str]]]:
    """(statement, its query plan) of every lead_cache / my_leads statement `read(store)` runs."""
    conn = store._cache_db()
    ran: list[str] = []
    conn.set_trace_callback(ran.append)
    try:
        read(store)
    finally:
        conn.set_trace_callback(None)
    out = []
    for sql in ran:
        if "lead_cache" in sql or "my_leads" in sql:
            out.append((sql, [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]))
    return out


def test_another_cres_lists_read_an_index_not_the_whole_cache(day: Store) -> None:
    """A team lead's view of another CRE: that CRE's rows are spread over the whole cache file, so counting a list
    or sorting its keys must come from an index (lead_cache_cre_lists, migration 4), never from the rows; only the
    page's own rows are read. With a queued call laid over too: the leads it changes are found by phone."""
    lead = day.lookup("+919876500008")
    assert lead is not None
    day.enqueue_call({"lead_id": lead.lead_id, "called_at": "2026-11-30T11:00:00+05:30", "lead_status": "RNR"},
                     lead.phone)  # fmt: skip
    read = _plans(day, lambda s: s.worklist_counts(OTHER, TODAY))
    for which in WorkList:
        read += _plans(day, lambda s, which=which: s.worklist_page(OTHER, which, TODAY))
    for sql, plan in read:
        assert not any(step.startswith("SCAN lead_cache") for step in plan), (sql, plan)
    # The counts, and the keys of each list (the other statements read rows by phone or rowid).
    lists = [plan for sql, plan in read if sql.lstrip().startswith("WITH")]
    assert len(lists) == 1 + len(WorkList)
    for plan in lists:
        ranges = [step for step in plan if "INDEX lead_cache_cre_" in step]
        assert ranges and all("COVERING INDEX" in step for step in ranges), plan
    assert names(day.worklist_page(OTHER, WorkList.PENDING, TODAY)) == ["Not Mine"]
    assert day.worklist_counts(OTHER, TODAY)[WorkList.DUE_TODAY] == 0  # the RNR call left no follow-up


def test_the_drill_down_and_list_indexes_come_with_the_cache(tmp_path: Path) -> None:
    """Migration 4 on a cache of an older desk (migration 3): the dashboard's drill-down finds its indexes under the
    names it asks for (bench/bench_lead_tab.py's SUGGESTED_INDEXES), the owner lists theirs."""
    path = tmp_path / "v3.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in _CACHE_MIGRATIONS[:3]:
        for statement in migration:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    store, recovery = Store.open_or_rebuild(path)
    try:
        assert not recovery.cache_rebuilt
        indexes = {r[0] for r in store._cache_db().execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        store.close()
    assert {"lead_cache_pending_follow_up", "lead_cache_created", "lead_cache_branch_follow_up",
            "lead_cache_last_call", "lead_cache_owner_last_call", "lead_cache_cre_lists"} <= indexes  # fmt: skip
    assert not {"lead_cache_owner", "lead_cache_fresh"} & indexes  # prefixes of lead_cache_cre_lists


def test_the_lists_are_right_while_a_first_sync_fills_without_its_indexes(store: Store) -> None:
    """Migration 4's indexes cost every row of a sync a random insert each; a large first sync drops them (bulk
    fill, the sync decides when) and builds them when the feed has caught up. The lists are right all along."""
    import json

    from crm_desktop.core.cache import LIST_INDEXES

    def indexes() -> set[str]:
        return {r[0] for r in store._cache_db().execute("SELECT name FROM sqlite_master WHERE type = 'index'")}

    def page(rows: list[list[Any]], next_since: int, more: bool) -> str:
        return json.dumps({"columns": COLUMNS, "rows": rows, "next_since": next_since, "more": more})

    wanted = {name for name, _ in LIST_INDEXES}
    assert wanted <= indexes()
    assert store.begin_bulk_fill()  # an empty cache
    assert not wanted & indexes()
    store.apply_feed_page(page([row(1, name="First Page", follow="2026-11-27")], 1, True))
    assert names(store.worklist_page(ME, WorkList.OVERDUE, TODAY)) == ["First Page"]
    assert not store.begin_bulk_fill()  # not an empty cache any more: nothing dropped mid-way
    store.apply_feed_page(page([row(2, name="Second Page", follow="2026-11-26", cre=OTHER)], 2, True))
    store.apply_feed_page(page([row(3, name="Last Page", follow="2026-11-25", cre=OTHER)], 3, False))
    assert names(store.worklist_page(OTHER, WorkList.OVERDUE, TODAY)) == ["Last Page", "Second Page"]
    assert store.finish_bulk_fill()
    assert wanted <= indexes()
    assert names(store.worklist_page(OTHER, WorkList.OVERDUE, TODAY)) == ["Last Page", "Second Page"]
    assert not store.finish_bulk_fill()  # nothing missing: a check of the schema


def test_a_cre_desk_fills_without_the_team_leads_indexes_and_a_team_lead_desk_builds_them(store: Store) -> None:
    """A CRE's desk reads its own leads from my_leads and searches by name, UID and last digits: its bulk fill leaves
    the team lead's indexes out (~15 s of a 1M-lead first sync) and keeps its own; the same cache on a team lead's
    desk (the user promoted) builds them at the next pull's end. The lists are right either way."""
    import json

    from crm_desktop.core.cache import LIST_INDEXES, TEAM_INDEXES

    def objects() -> set[str]:
        return {r[0] for r in store._cache_db().execute("SELECT name FROM sqlite_master WHERE sql IS NOT NULL")}

    assert {name for name, _ in LIST_INDEXES} == TEAM_INDEXES
    assert store.begin_bulk_fill()
    rows = [row(1, name="Asha Lead", follow="2026-11-27"), row(2, name="Other Lead", follow="2026-11-26", cre=OTHER)]
    store.apply_feed_page(json.dumps({"columns": COLUMNS, "rows": rows, "next_since": 2, "more": False}))
    assert store.finish_bulk_fill(team_indexes=False)
    built = objects()
    assert {"lead_cache_uid", "lead_cache_last4", "lead_names_insert", "lead_names_update"} <= built
    assert not TEAM_INDEXES & built
    assert not store.finish_bulk_fill(team_indexes=False)  # nothing a CRE desk wants is missing
    assert [r.customer_name for r in store.search("asha")] == ["Asha Lead"]
    assert names(store.worklist_page(OTHER, WorkList.OVERDUE, TODAY)) == ["Other Lead"]  # right, if unindexed
    assert store.finish_bulk_fill(team_indexes=True)
    assert objects() >= TEAM_INDEXES
    assert names(store.worklist_page(OTHER, WorkList.OVERDUE, TODAY)) == ["Other Lead"]
