"""Races the database must decide: one phone from 50 callers, 1,000 distinct leads at once, and the cache feed under
transactions that commit out of order."""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
from serverproc import Api, ServerProcess, new_lead, phone_for

SOURCES = [("GOOGLE", "Google Know"), ("META", "Meta Know"), ("BTL", "BTL Know"), ("OEM", "Web"), ("OEM", "Tele")]


def _post_many(server: ServerProcess, token: str, leads: list[dict[str, Any]], workers: int) -> list[httpx.Response]:
    barrier = threading.Barrier(min(workers, len(leads)))
    local = threading.local()
    clients: list[httpx.Client] = []

    def send(lead: dict[str, Any]) -> httpx.Response:
        if not hasattr(local, "client"):
            local.client = httpx.Client(
                base_url=server.url, headers={"apikey": server.anon_key, "Authorization": f"Bearer {token}"},
                timeout=60,
            )  # fmt: skip
            clients.append(local.client)
            try:
                barrier.wait(timeout=30)  # start together: the point is the race
            except threading.BrokenBarrierError:
                pass
        return local.client.post("/rest/v1/rpc/create_lead", json={"lead": lead})

    try:
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(send, leads))
    finally:
        for client in clients:
            client.close()


def test_fifty_concurrent_creates_of_one_phone_make_one_lead(api: Api, server, clean_db: psycopg.Connection[Any]):
    token = api.token("cre1@demo.local")
    phone = phone_for(500)
    leads = [new_lead(phone, source=SOURCES[i % 5][0], sub_source=SOURCES[i % 5][1]) for i in range(50)]
    answers = _post_many(server, token, leads, workers=50)
    assert [r.status_code for r in answers] == [200] * 50, [r.text for r in answers if r.status_code != 200]
    outcomes = [r.json()["outcome"] for r in answers]
    assert outcomes.count("created") == 1
    assert outcomes.count("added_source") == 4  # the other four sources, once each
    assert outcomes.count("exact_duplicate") == 45
    assert len({r.json()["uid"] for r in answers}) == 1
    assert clean_db.execute("select count(*) from leads").fetchone() == (1,)
    assert clean_db.execute("select count(*) from lead_sources").fetchone() == (5,)
    # Every caller's call attempt was kept, numbered without gaps or repeats.
    attempts = [r[0] for r in clean_db.execute("select attempt from call_attempts order by attempt")]
    assert attempts == list(range(1, 51))


def test_a_thousand_concurrent_distinct_creates_get_distinct_uids(api: Api, server, clean_db):
    token = api.token("cre2@demo.local")
    leads = [new_lead(phone_for(10_000 + i)) for i in range(1000)]
    answers = _post_many(server, token, leads, workers=25)
    assert all(r.status_code == 200 for r in answers)
    assert {r.json()["outcome"] for r in answers} == {"created"}
    assert len({r.json()["uid"] for r in answers}) == 1000
    assert clean_db.execute("select count(distinct uid) from leads").fetchone() == (1000,)


def _as_user(server: ServerProcess, db: psycopg.Connection[Any], email: str) -> tuple[str, str]:
    """Conninfo of the server's own powerless login role, and the claims PostgREST would set for `email`."""
    user_id = db.execute("select id from profiles where email = %s", (email,)).fetchone()[0]
    conninfo = psycopg.conninfo.make_conninfo(server.database_url, user="authenticator")
    return conninfo, json.dumps({"sub": str(user_id), "role": "authenticated", "aud": "authenticated"})


def _begin_create(conninfo: str, claims: str, lead: dict[str, Any]) -> psycopg.Connection[Any]:
    """create_lead in an open transaction: the row exists but is not committed until the caller says so."""
    conn = psycopg.connect(conninfo)
    conn.execute("select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                 (claims,))  # fmt: skip
    conn.execute("select create_lead(%s::jsonb)", (json.dumps(lead),))
    return conn


def _read_feed(api: Api, token: str, since: int, max_rows: int) -> tuple[list[int], int]:
    seen: list[int] = []
    while True:
        page = api.rpc("lead_changes", token, since=since, max_rows=max_rows).json()
        idx = page["columns"].index("lead_id")
        seen.extend(row[idx] for row in page["rows"])
        since = page["next_since"]
        if not page["more"]:
            return seen, since


def test_feed_does_not_skip_a_lead_that_commits_after_a_later_one(api: Api, server, clean_db):
    conninfo, claims = _as_user(server, clean_db, "cre1@demo.local")
    token = api.token("cre2@demo.local")
    early = _begin_create(conninfo, claims, new_lead(phone_for(600)))  # gets the smaller lead id, commits last
    late = _begin_create(conninfo, claims, new_lead(phone_for(601)))
    late.commit()
    seen, cursor = _read_feed(api, token, 0, 10)
    assert len(seen) == 1
    early.commit()
    more, cursor = _read_feed(api, token, cursor, 10)
    assert len(more) == 1 and more[0] < seen[0]  # the late committer is delivered after the reader moved on
    early.close()
    late.close()


def test_feed_reader_sees_every_row_while_writers_commit_out_of_order(api: Api, server, clean_db):
    conninfo, claims = _as_user(server, clean_db, "cre1@demo.local")
    token = api.token("lead@demo.local")
    writers, per_writer = 6, 25
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        rnd = random.Random(w)
        try:
            for i in range(per_writer):
                conn = _begin_create(conninfo, claims, new_lead(phone_for(20_000 + w * 1000 + i)))
                time.sleep(rnd.uniform(0, 0.03))  # hold the transaction open: commits land out of id order
                conn.commit()
                conn.close()
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        since = 0
        try:
            while not stop.is_set():
                got, since = _read_feed(api_reader, token, since, 7)
                seen.extend(got)
            got, since = _read_feed(api_reader, token, since, 7)  # final catch-up after all commits
            seen.extend(got)
        except BaseException as exc:
            errors.append(exc)

    api_reader = Api(server)
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    read_thread = threading.Thread(target=reader)
    read_thread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    read_thread.join()
    api_reader.close()
    assert not errors, errors
    ids = {r[0] for r in clean_db.execute("select id from leads")}
    assert len(ids) == writers * per_writer
    assert set(seen) == ids  # nothing skipped
    assert len(seen) == len(ids)  # and nothing delivered twice (no lead changed after its creation here)
