"""A first sync survives the desk being closed halfway: a desk process killed after a few pages continues from its
cursor at the next start, never asks for a finished page again, and ends with the server's leads exactly.

Run as a script, this file is that desk: it syncs and, after each applied page, says how far it got and waits for a
line on stdin, so the test kills it at a known page (not at a moment chosen by a timer)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import psutil
from serverproc import Api, new_lead, phone_for
from test_feed import EdgeTransport, cache_rows, synced_desk
from test_sync_processes import leads_and_a_desk

from crm_desktop.core.api import ApiClient
from crm_desktop.core.cache import _deferrable
from crm_desktop.core.store import Store
from crm_desktop.core.sync import SyncEngine

PAGE = 10


def desk_main(url: str, anon_key: str, path: str) -> None:
    client = ApiClient(url, anon_key)
    client.login("cre1@demo.local", "demo1234")
    store, _ = Store.open_or_rebuild(Path(path))
    engine = SyncEngine(client, Path(path), page_size=PAGE)
    engine.bulk_fill_min = 1  # a "large" first sync: the cache's secondary indexes are built when it catches up

    def report(progress: object) -> None:
        print(f"applied {progress.done}", flush=True)  # type: ignore[attr-defined]
        sys.stdin.readline()  # hold here until the test says go on (or kills this process)

    engine.listeners.progress.append(report)
    engine.pull(store)
    print("finished", flush=True)


def test_a_first_sync_killed_halfway_resumes_from_its_cursor_and_ends_identical(
    server, api: Api, clean_db, tmp_path: Path
):
    cre = api.token("cre2@demo.local")
    for i in range(120):
        assert api.rpc("create_lead", cre, lead=new_lead(phone_for(5000 + i), customer_name=f"Caller {i}")).is_success
    path = tmp_path / "desk.sqlite3"
    child = subprocess.Popen(
        [sys.executable, __file__, server.url, server.anon_key, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        for pages in range(1, 6):
            assert child.stdout.readline().strip() == f"applied {pages * PAGE}"
            if pages < 5:
                child.stdin.write("go\n")
                child.stdin.flush()
        # A long pass: the desk decodes in a process of its own (sync.py), which must not outlive the desk.
        decoders = [p for p in psutil.Process(child.pid).children() if "spawn_main" in " ".join(p.cmdline())]
        child.kill()  # closed halfway (SIGKILL; TerminateProcess on Windows): page 6 was being fetched ahead
        child.wait(timeout=30)
        assert decoders
        _, alive = psutil.wait_procs(decoders, timeout=15)
        assert not alive, f"decoding processes outlived the killed desk: {alive}"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdin.close()
        child.stdout.close()

    # The killed desk was filling in bulk: its secondary indexes were not there yet; the name index was kept in step.
    deferred = {name for kind, name, _ in _deferrable() if kind == "index"}
    assert deferred and not deferred & set(schema(path))
    assert {"lead_names_insert", "lead_names_update"} <= set(schema(path))
    # It was filling without waiting for the disk (cache.py, "unsynced fill"): its mark stayed. The next start checks
    # the file, finds it intact and keeps it; the resumed pass (long, as the killed one) marks its own fill while it
    # runs and ends unmarked.
    mark = path.with_name(path.name + ".filling")
    assert mark.exists()
    store, recovery = Store.open_or_rebuild(path)
    with store:
        assert not recovery.cache_rebuilt and not mark.exists()
        cursor = store.sync_cursor()
        assert store.cache_count() == 5 * PAGE and cursor > 0
        edge = EdgeTransport()
        client = ApiClient(server.url, server.anon_key, transport=edge)
        client.login("cre1@demo.local", "demo1234")
        try:
            engine = SyncEngine(client, path, page_size=PAGE)
            engine.bulk_fill_min = 1
            marked: list[bool] = []
            engine.listeners.progress.append(lambda _: marked.append(mark.exists()))  # on this thread, page by page
            assert engine.pull(store) == 120 - 5 * PAGE
        finally:
            client.close()
        assert marked[0] and not marked[-1] and not mark.exists()
    asked = sorted(since for _, since, _ in edge.calls)  # pages in flight at once may complete in any order
    assert asked[0] == cursor and len(asked) == len(set(asked))  # from the cursor on; no page fetched twice
    assert len(asked) == (120 - 5 * PAGE) // PAGE + 1  # the rest, and the empty page that says "caught up"
    fresh = synced_desk(server, tmp_path, "fresh", EdgeTransport(), page_size=500)
    assert cache_rows(path) == cache_rows(fresh) and len(cache_rows(path)) == 120
    # The resumed pass built what the bulk fill had dropped, as the migrations define it, and the name index holds
    # every row: those of the killed pass's committed pages and the resumed pass's, and it follows changes.
    assert schema(path) == schema(fresh)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO lead_names (lead_names, rank) VALUES ('integrity-check', 1)")
        assert conn.execute("SELECT count(*) FROM lead_names WHERE lead_names MATCH 'caller'").fetchone()[0] == 120
        conn.execute("UPDATE lead_cache SET customer_name = 'Zed Q' WHERE phone = ?", (phone_for(5007),))
        assert conn.execute("SELECT count(*) FROM lead_names WHERE lead_names MATCH 'zed'").fetchone()[0] == 1


def schema(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall())


if __name__ == "__main__":
    desk_main(*sys.argv[1:4])


def test_a_cre_desks_first_sync_skips_the_team_leads_indexes_and_a_team_leads_pull_builds_them(
    server, api: Api, clean_db, tmp_path: Path
):
    """SyncEngine.team_indexes, as the session sets it by role: a CRE's large first sync ends without the team
    lead's cache indexes (and with everything else); the same cache pulled by a team lead's desk gets them."""
    from crm_desktop.core.cache import TEAM_INDEXES

    client, store, path = leads_and_a_desk(server, api, tmp_path, 30, 6000)
    try:
        engine = SyncEngine(client, path, page_size=PAGE, team_indexes=False)
        engine.bulk_fill_min = 1
        assert engine.pull(store) == 30
        with sqlite3.connect(path) as conn:
            have = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE sql IS NOT NULL")}
        assert {name for _, name, _ in _deferrable()} - TEAM_INDEXES <= have and not TEAM_INDEXES & have
        assert SyncEngine(client, path, page_size=PAGE, team_indexes=True).pull(store) == 0
        with sqlite3.connect(path) as conn:
            have = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE sql IS NOT NULL")}
        assert {name for _, name, _ in _deferrable()} <= have
    finally:
        store.close()
        client.close()
