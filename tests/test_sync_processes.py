"""A long first sync decodes its pages in decoding processes (sync.DECODE_PROCESSES, cache.stage_page): the cache it
makes is the one a desk decoding on a thread makes, and a decoding process that dies mid-sync costs nothing but
speed (the pages left are decoded on a thread of the desk)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psutil
import pytest
from serverproc import Api, new_lead, phone_for
from test_feed import EdgeTransport, cache_rows, synced_desk

from crm_desktop.core.api import ApiClient
from crm_desktop.core.store import Store
from crm_desktop.core.sync import DECODE_NICE, SyncEngine

PAGE = 10
LEADS = 120


def decoding_children() -> list[psutil.Process]:
    """This process's decoding processes: spawned pool workers, not multiprocessing's resource tracker (which stays
    for the life of this process once a pool has started)."""
    found = []
    for child in psutil.Process().children():
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def leads_and_a_desk(server, api: Api, tmp_path: Path, n: int, first: int) -> tuple[ApiClient, Store, Path]:
    """`n` leads made by cre2 (phones from `first` on) and cre1's empty desk: its signed-in client, store and path."""
    cre = api.token("cre2@demo.local")
    for i in range(n):
        assert api.rpc("create_lead", cre, lead=new_lead(phone_for(first + i), customer_name=f"Caller {i}")).is_success
    path = tmp_path / "desk.sqlite3"
    client = ApiClient(server.url, server.anon_key)
    client.login("cre1@demo.local", "demo1234")
    store, _ = Store.open_or_rebuild(path)
    return client, store, path


@pytest.mark.expected_log_warnings  # the dead decoding process is logged
def test_a_long_sync_decodes_in_a_process_and_a_killed_one_loses_nothing(
    server, api: Api, clean_db, tmp_path: Path, caplog
):
    client, store, path = leads_and_a_desk(server, api, tmp_path, LEADS, 7000)
    engine = SyncEngine(client, path, page_size=PAGE, decode_processes=1)
    engine.bulk_fill_min = 1  # a long pass, as a first sync of a million leads is
    seen: list[int] = []
    killed: list[int] = []
    nices: list[int] = []

    def kill_the_decoder(progress: object) -> None:
        children = decoding_children()
        seen.append(len(children))
        if progress.done >= 3 * PAGE and not killed and children:  # type: ignore[attr-defined]
            for child in children:
                # Read once it has decoded pages (its initializer has run by then; a child just spawned has not).
                nices.append(child.nice())
                child.kill()
                killed.append(child.pid)

    engine.listeners.progress.append(kill_the_decoder)
    caplog.set_level(logging.WARNING, logger="crm_desktop.core.sync")
    try:
        assert engine.pull(store) == LEADS
    finally:
        store.close()
        client.close()
    assert killed and max(seen) == 1  # one decoding process did the pages until it was killed
    # ... below the desk's own threads (POSIX niceness; Windows: BELOW_NORMAL), so the GUI thread is not kept waiting
    below = psutil.BELOW_NORMAL_PRIORITY_CLASS if os.name == "nt" else min(psutil.Process().nice() + DECODE_NICE, 19)
    assert nices and set(nices) == {below}
    assert caplog.text.count("a decoding process failed") == 1  # said once; the pages after it decoded here
    assert not decoding_children()  # the pass ended its pool
    # Pages decoded in the process, then on a thread, give the cache a desk decoding on a thread alone makes.
    fresh = synced_desk(server, tmp_path, "thread", EdgeTransport(), page_size=500)
    assert cache_rows(path) == cache_rows(fresh) and len(cache_rows(path)) == LEADS


def test_a_short_pass_starts_no_process(server, api: Api, clean_db, tmp_path: Path):
    client, store, path = leads_and_a_desk(server, api, tmp_path, 30, 7200)
    seen: list[int] = []
    engine = SyncEngine(client, path, page_size=PAGE, decode_processes=1)  # bulk_fill_min stays 50,000 rows
    engine.listeners.progress.append(lambda _: seen.append(len(decoding_children())))
    try:
        assert engine.pull(store) == 30
    finally:
        store.close()
        client.close()
    assert seen and max(seen) == 0
