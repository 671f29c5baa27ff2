"""Pull and push against the real server with real SQLite files: the full flow, an outage, crashes, a rejected item,
an expired token, a corrupt cache."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serverproc import Api, new_lead, phone_for

from crm_desktop.core.api import ApiClient, Retry
from crm_desktop.core.models import OutboxState
from crm_desktop.core.store import Store
from crm_desktop.core.sync import SyncEngine, SyncProgress


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def desk(server, clean_db, tmp_path: Path) -> Iterator[tuple[ApiClient, Path, SyncEngine]]:
    """A CRE's client: signed in, with a store path and a (not yet started) engine."""
    api = ApiClient(server.url, server.anon_key)
    api.login("cre1@demo.local", "demo1234")
    path = tmp_path / "desk.sqlite3"
    Store.open_or_rebuild(path)[0].close()
    engine = SyncEngine(api, path, poll_interval=0.3, page_size=50, backoff_base=0.05, backoff_max=0.5)
    yield api, path, engine
    engine.stop()
    api.close()


def server_count(db: Any, sql: str, *args: Any) -> int:
    return int(db.execute(sql, args).fetchone()[0])


def test_full_flow_sync_lookup_and_a_hundred_queued_leads(desk, api: Api, clean_db):
    _client, path, engine = desk
    other = api.token("cre2@demo.local")
    for i in range(120):  # more than two pages
        api.rpc("create_lead", other, lead=new_lead(phone_for(800 + i), customer_name=f"Caller {i}"))
    progress: list[SyncProgress] = []
    engine.listeners.progress.append(progress.append)
    engine.start()
    store = Store(path)
    wait_for(lambda: store.cache_count() == 120, what="initial sync")
    found = store.lookup(phone_for(805))
    assert found is not None and found.customer_name == "Caller 5" and found.cre_name == "Imran Khan"
    # The pass reports itself finished after its last page is in the cache (and the indexes checked): wait for it.
    wait_for(lambda: any(p.finished and p.done == 120 for p in progress), what="the finished report")
    assert any(not p.finished and p.total >= 120 for p in progress)  # pages reported on the way

    refs = [store.enqueue(new_lead(phone_for(2000 + i))).client_ref for i in range(100)]
    engine.wake_push()
    wait_for(lambda: store.pending_count() == 0, what="drain")
    items = {i.client_ref: i for i in store.items()}
    assert all(items[r].state is OutboxState.DONE for r in refs)
    assert len({items[r].answer["uid"] for r in refs}) == 100
    assert server_count(clean_db, "select count(*) from leads where phone like '+919900002%%'") == 100
    # Sent leads come back through the feed, so the banner knows them too.
    wait_for(lambda: store.lookup(phone_for(2099)) is not None, what="own leads in cache")
    store.close()


def test_outage_mid_drain_every_lead_lands_once(desk, server, clean_db):
    _client, path, engine = desk
    store = Store(path)
    states: list[str] = []
    engine.listeners.connection.append(lambda s, d: states.append(s))
    for i in range(40):
        store.enqueue(new_lead(phone_for(3000 + i)))
    engine.start()
    wait_for(lambda: store.pending_count() < 35, what="some sent")
    server.stop()
    try:
        for i in range(40, 60):
            store.enqueue(new_lead(phone_for(3000 + i)))
        engine.wake_push()
        wait_for(lambda: "offline" in states, what="offline state")
        assert store.pending_count() > 0
    finally:
        server.start()
    wait_for(lambda: store.pending_count() == 0, timeout=60, what="drain after restart")
    assert states[-1] == "online"
    assert server_count(clean_db, "select count(*) from leads where phone like '+91990000%%'") == 60
    answers = [i.answer for i in store.items()]
    assert all(a is not None and a["outcome"] == "created" for a in answers)
    assert server_count(clean_db, "select count(*) from call_attempts") == 60
    store.close()


def test_a_rejected_item_is_parked_and_does_not_block_the_queue(desk, clean_db):
    _client, path, engine = desk
    store = Store(path)
    good1 = store.enqueue(new_lead(phone_for(4000)))
    bad = store.enqueue(new_lead(phone_for(4001), source="Google"))  # misspelt: the catalogue refuses it
    good2 = store.enqueue(new_lead(phone_for(4002)))
    engine.start()
    wait_for(lambda: store.pending_count() == 0, what="drain")
    parked = store.get(bad.client_ref)
    assert parked is not None and parked.state is OutboxState.PARKED
    assert "unknown_source" in (parked.last_error or "")
    assert store.get(good1.client_ref).state is OutboxState.DONE
    assert store.get(good2.client_ref).state is OutboxState.DONE
    # Edit and resend: a new client_ref, sent, and the parked one kept as replaced.
    fixed = store.requeue(bad.client_ref, {**parked.payload, "source": "GOOGLE"})
    engine.wake_push()
    wait_for(lambda: store.get(fixed.client_ref).state is OutboxState.DONE, what="resend")
    assert store.get(bad.client_ref).state is OutboxState.REPLACED
    assert server_count(clean_db, "select count(*) from leads") == 3
    store.close()


def test_token_expiry_mid_drain_is_refreshed_without_losing_anything(desk, clean_db):
    client, path, engine = desk
    store = Store(path)
    for i in range(30):
        store.enqueue(new_lead(phone_for(5000 + i)))
    engine.start()
    wait_for(lambda: store.pending_count() < 25, what="some sent")
    assert client.session is not None
    client.session.access_token = "expired-token"  # the server now answers 401
    wait_for(lambda: store.pending_count() == 0, what="drain")
    assert server_count(clean_db, "select count(*) from leads") == 30
    assert engine.connection_state == "online"
    store.close()


def test_a_dead_session_pauses_sending_until_sign_in(desk, server, clean_db):
    client, path, engine = desk
    store = Store(path)
    states: list[str] = []
    engine.listeners.connection.append(lambda s, d: states.append(s))
    engine.start()
    wait_for(lambda: engine.connection_state == "online", what="online")
    assert client.session is not None
    client.session.access_token = "expired"
    client.session.refresh_token = "revoked"  # refresh will be refused: the user must sign in
    for i in range(5):
        store.enqueue(new_lead(phone_for(5500 + i)))
    engine.wake_push()
    wait_for(lambda: "auth_needed" in states, what="auth needed")
    assert store.pending_count() == 5  # nothing dropped, nothing parked
    client.login("cre1@demo.local", "demo1234")
    engine.resume()
    wait_for(lambda: store.pending_count() == 0, what="drain after sign-in")
    assert server_count(clean_db, "select count(*) from leads") == 5
    store.close()


def test_killed_mid_drain_twenty_times_no_lead_lost_or_doubled(server, clean_db, tmp_path: Path):
    path = tmp_path / "crash.sqlite3"
    per_run = 40
    driver = Path(__file__).with_name("outbox_driver.py")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(driver.parent), *sys.path]))

    def command(n: int) -> list[str]:
        return [sys.executable, str(driver), server.url, server.anon_key, str(path), "cre1@demo.local", str(n), "6000"]

    rnd = random.Random(20261128)
    kills = 0
    for _ in range(20):
        proc = subprocess.Popen(command(per_run), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "draining"
        time.sleep(rnd.uniform(0.0, 0.08))  # a few sends in: mid-request, between send and mark, mid-commit
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.wait()
        proc.stdout.close()
    final = subprocess.run(command(0), capture_output=True, text=True, env=env, timeout=120)
    assert final.stdout.split()[-1] == "drained", final.stderr[-2000:]
    assert kills >= 12  # the test really interrupted drains (each run queues 40, a kill lands within 80 ms)
    store = Store(path)
    items = store.items()
    n = 20 * per_run
    assert len(items) == n
    assert all(i.state is OutboxState.DONE for i in items)
    # A replay after a kill returns the first answer: every item says "created", none "exact_duplicate".
    assert {i.answer["outcome"] for i in items} == {"created"}
    assert server_count(clean_db, "select count(*) from leads") == n
    assert server_count(clean_db, "select count(*) from call_attempts") == n  # no doubled call attempt
    replays = sum(1 for i in items if i.answer.get("replayed"))
    store.close()
    print(f"{kills} kills, {replays} replayed answers")


@pytest.mark.expected_log_warnings
def test_corrupt_cache_is_rebuilt_and_the_outbox_kept(desk, api: Api, clean_db):
    _client, path, engine = desk
    api.rpc("create_lead", api.token("cre2@demo.local"), lead=new_lead(phone_for(7000)))
    store = Store(path)
    queued = store.enqueue(new_lead(phone_for(7001)))
    engine.pull(store)
    assert store.cache_count() == 1
    store.close()
    path.write_bytes(b"this is not a database" * 500)  # the cache file is destroyed
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    store, recovery = Store.open_or_rebuild(path)
    assert recovery.cache_rebuilt and store.cache_count() == 0 and store.sync_cursor() == 0
    assert store.get(queued.client_ref) is not None
    assert engine.pull(store) == 1 and store.lookup(phone_for(7000)) is not None
    assert engine.drain(store, force=True) == 1
    store.close()


class GarblingTransport(httpx.HTTPTransport):
    """The real server behind a proxy that cuts the feed answers numbered in `garble` (1 = the first) short, still
    HTTP 200."""

    def __init__(self, garble: set[int]) -> None:
        super().__init__()
        self.garble = garble
        self.seen = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path.endswith(("/rpc/lead_changes", "/rpc/lead_feed")):
            self.seen += 1
            if self.seen in self.garble:
                body = response.read()
                return httpx.Response(200, content=body[: len(body) // 2], headers={"Content-Type": "application/json"})
        return response


@pytest.mark.expected_log_warnings
@pytest.mark.parametrize(
    "garble",
    [pytest.param({1, 2}, id="first-pages"), pytest.param({2}, id="a-page-fetched-ahead")],
)
def test_a_garbled_feed_page_is_retried_and_the_cache_completes(
    server, api: Api, clean_db, tmp_path: Path, garble: set[int]
):
    other = api.token("cre2@demo.local")
    for i in range(60):
        api.rpc("create_lead", other, lead=new_lead(phone_for(900 + i)))
    client = ApiClient(server.url, server.anon_key, transport=GarblingTransport(garble))
    client.login("cre1@demo.local", "demo1234")
    path = tmp_path / "desk.sqlite3"
    engine = SyncEngine(client, path, poll_interval=0.2, page_size=25)
    events: list[tuple[str, Any]] = []
    errors: list[BaseException] = []
    engine.listeners.connection.append(lambda state, detail: events.append((state, detail)))
    engine.listeners.leads_changed.append(lambda n: events.append(("changed", n)))
    engine.listeners.error.append(errors.append)
    store = Store(path)
    try:
        engine.start()
        wait_for(lambda: store.cache_count() == 60, what="sync after garbled pages")
        wait_for(lambda: engine.connection_state == "online", what="online again")
        offline = next(i for i, (state, detail) in enumerate(events) if state == "offline")
        assert "unreadable" in events[offline][1]
        if garble == {2}:
            # Page 1 (and page 2, when the garbled answer is page 3's: lead_feed keeps pages in flight, so
            # which answer comes second varies) was applied before a page fetched ahead turned out garbled: the desk
            # hears of it at once.
            assert events[:offline] in ([("changed", 25)], [("changed", 50)])
        assert errors == []  # a bad page is the network's fault, not a crash of the pull thread
    finally:
        engine.stop()
        store.close()
        client.close()


def test_a_first_sync_commits_without_waiting_for_the_disk_until_its_pass_ends(desk, api: Api, clean_db):
    """A long pass filling the cache commits with synchronous=OFF, marked by the fill's file; the pass ends with the
    cache's usual NORMAL and no mark, also when it ends on an error. A short pass never changes it."""
    client, path, _ = desk
    other = api.token("cre2@demo.local")
    for i in range(120):
        assert api.rpc("create_lead", other, lead=new_lead(phone_for(1700 + i))).is_success
    mark = path.with_name(path.name + ".filling")
    store = Store(path)

    def durability() -> tuple[int, bool]:
        return store._cache_db().execute("PRAGMA synchronous").fetchone()[0], mark.exists()

    seen: list[tuple[int, bool]] = []
    try:
        engine = SyncEngine(client, path, page_size=50, decode_processes=0)
        engine.bulk_fill_min = 1  # a long first pass: a bulk fill
        engine.listeners.progress.append(lambda p: seen.append(durability()))  # on the pull's thread, between pages
        assert engine.pull(store) == 120
        *during, _indexing, _finished = seen
        assert during and set(during) == {(0, True)}  # OFF, marked, page after page
        assert durability() == (1, False)  # NORMAL, flushed, unmarked

        seen.clear()
        for i in range(120):
            assert api.rpc("create_lead", other, lead=new_lead(phone_for(1900 + i))).is_success
        assert engine.pull(store) == 120  # the cache is filled: a pass of pages, not a fill
        assert set(seen) == {(1, False)}
    finally:
        store.close()


def fill_cut_off_at_its_second_page(
    server: Any, api: Api, path: Path, first: int, leads: int = 120, page: int = 50
) -> tuple[ApiClient, SyncEngine]:
    """`leads` new leads on the server (phones from `first`), and cre1's engine for a desk at `path` whose long first
    sync, in pages of `page`, will have its second answer cut short (the first page applied, then Retry)."""
    other = api.token("cre2@demo.local")
    for i in range(leads):
        assert api.rpc("create_lead", other, lead=new_lead(phone_for(first + i))).is_success
    client = ApiClient(server.url, server.anon_key, transport=GarblingTransport({2}))
    client.login("cre1@demo.local", "demo1234")
    engine = SyncEngine(client, path, page_size=page, decode_processes=0)
    engine.bulk_fill_min = 1  # a long first pass: a bulk fill
    return client, engine


@pytest.mark.expected_log_warnings
def test_a_fill_that_fails_halfway_ends_synced_and_unmarked(server, api: Api, clean_db, tmp_path: Path):
    path = tmp_path / "desk.sqlite3"
    client, engine = fill_cut_off_at_its_second_page(server, api, path, 2100)
    store = Store(path)
    try:
        with pytest.raises(Retry):
            engine.pull(store)  # the second answer is cut short
        assert store._cache_db().execute("PRAGMA synchronous").fetchone()[0] == 1
        assert not path.with_name(path.name + ".filling").exists()
    finally:
        store.close()
        client.close()


def test_a_long_pass_says_the_cache_is_catching_up_and_a_short_one_does_not(desk, api: Api, clean_db):
    """While a long pass fills the cache (a first sync), a number the cache does not know may be a lead on a page still
    to come: its page reports say so (the form then does not call the number new). Its index-build and finished
    reports do not, and a short pass (a few new leads) never does."""
    client, path, _ = desk
    other = api.token("cre2@demo.local")
    for i in range(120):
        assert api.rpc("create_lead", other, lead=new_lead(phone_for(2400 + i))).is_success
    engine = SyncEngine(client, path, page_size=50, decode_processes=0)
    engine.bulk_fill_min = 100  # 120 to go: a long pass
    progress: list[SyncProgress] = []
    engine.listeners.progress.append(progress.append)
    store = Store(path)
    try:
        assert engine.pull(store) == 120
        *pages, indexing, finished = progress
        assert [(p.done, p.catching_up) for p in pages] == [(50, True), (100, True)]
        assert indexing.indexing and not indexing.catching_up
        assert finished.finished and not finished.catching_up

        progress.clear()
        for i in range(60):
            assert api.rpc("create_lead", other, lead=new_lead(phone_for(2600 + i))).is_success
        assert engine.pull(store) == 60  # 60 to go, under bulk_fill_min: a short pass, in two pages
        assert [(p.done, p.catching_up, p.finished) for p in progress] == [(50, False, False), (60, False, True)]
    finally:
        store.close()


@pytest.mark.expected_log_warnings
def test_a_cache_says_its_first_sync_is_pending_until_it_has_caught_up(server, api: Api, clean_db, tmp_path: Path):
    """What a desk starting offline tells the form: a cache that never caught up (nothing applied, or a first sync cut
    off halfway) may lack the caller's lead; one that caught up once does not say so, nor does a short first sync."""
    path = tmp_path / "desk.sqlite3"
    client, engine = fill_cut_off_at_its_second_page(server, api, path, 2700)
    store = Store(path)
    short = Store(tmp_path / "short.sqlite3")
    try:
        assert store.first_sync_pending()  # nothing applied yet
        with pytest.raises(Retry):
            engine.pull(store)  # the second answer is cut short: the first page is in
        assert 0 < store.cache_count() < 120 and store.first_sync_pending()
        engine.pull(store)  # the server answers again: caught up
        assert store.cache_count() == 120 and not store.first_sync_pending()

        assert short.first_sync_pending()
        SyncEngine(client, tmp_path / "short.sqlite3", page_size=50, decode_processes=0).pull(short)  # 120 < 50,000
        assert short.cache_count() == 120 and not short.first_sync_pending()
    finally:
        store.close()
        short.close()
        client.close()


def test_a_first_sync_says_when_its_rows_are_in_and_its_indexes_are_being_built(desk, api: Api, clean_db):
    """The index build after a first sync's last page takes seconds at 1M leads (~11 s on a team lead's desk) with no
    page arriving: the pass reports it once, between its last page and its finished report, and never when there is
    nothing to build."""
    client, path, _ = desk
    other = api.token("cre2@demo.local")
    for i in range(120):
        assert api.rpc("create_lead", other, lead=new_lead(phone_for(1300 + i))).is_success
    engine = SyncEngine(client, path, page_size=50, decode_processes=0)
    engine.bulk_fill_min = 1  # a long first pass: the cache's secondary indexes are built when it has caught up
    progress: list[SyncProgress] = []
    engine.listeners.progress.append(progress.append)
    store = Store(path)
    try:
        assert engine.pull(store) == 120
        *pages, indexing, finished = progress
        assert pages and not any(p.indexing or p.finished for p in pages)
        assert indexing.indexing and not indexing.finished and indexing.done == indexing.total == 120
        assert finished.finished and not finished.indexing and finished.done == 120
        schema = {n for (n,) in store._cache_db().execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"lead_cache_uid", "lead_cache_last4"} <= schema  # built after that report

        progress.clear()
        assert api.rpc("create_lead", other, lead=new_lead(phone_for(1500))).is_success
        assert engine.pull(store) == 1  # nothing left to build: no such report
        assert [(p.done, p.indexing, p.finished) for p in progress] == [(1, False, True)]
    finally:
        store.close()
