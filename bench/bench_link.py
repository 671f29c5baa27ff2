"""Link benchmark: what a CRE waits for behind a shared office link (20 Mbit/s, 50 ms RTT), next to loopback.

    .venv/bin/python bench/bench_link.py                       # 1M leads in bench/out/pgdata-link
    .venv/bin/python bench/bench_link.py --leads 20000 --data-dir /tmp/small --desks 3 --legacy 10   # smoke run

Why: every other figure in bench/ is measured over loopback, where bandwidth and round trips are free. The desks sit
behind one shared link to a server 20-60 ms away (issue 12). This runs the real client core (`ApiClient`, `Store`,
`SyncEngine`) and the replaced system's create pattern through `shaping_proxy.LinkProcess` (fixed one-way delay,
bandwidth cap shared by every connection through it), and the same desk code over plain loopback, in one run.

Phases (printed as they finish; everything lands in bench/out/bench_link.json):
  1. seed       as bench_client.py (`crm-server seed` until --data-dir holds --leads; reused otherwise), then serve.
  2. loopback   first sync of every lead into an empty cache over loopback: time, rows/s, body bytes per lead.
  3. link-1     the same first sync through the link: time, bytes per lead on the wire (both directions, as the
                proxy counted them), CPU seconds of uvicorn and PostgreSQL.
  3b. replay    the server's answers to a first sync recorded (bench/out/replay) and served again by replay_server.py,
                which waits each answer's recorded server time without using CPU; the desk syncs against it over
                loopback and through the link. The desk's own share: the server's latency, not its CPU on these
                cores (a desk PC does not run the server). --skip-replay leaves it out.
  4. link-10    --desks desks start a first sync at once (each its own ApiClient, store and thread), through the same
                link: time until the last finishes, per-desk times, errors, server CPU. --desk-leads caps each desk
                (the desk stops after that many rows; for the uncompressed "before" run, which would take ~20 min).
  5. inc        cre2 creates 100 leads (loopback), then one timed pull through the link brings them: --inc-runs.
  6. outbox     the desk's engine runs through the link; leads enqueued one at a time; enqueue -> server answer.
  7. create     sequential create_lead through the link (what the push thread does per lead), and
     legacy     the replaced system's create pattern (bench_server.LegacyDesk: unindexed duplicate scans, UID probe,
                separate inserts, one round trip each) on a psycopg connection through the same link, same run.
                Loopback figures of both beside them.

The proxy runs in a process of its own, as the network is not the desk: in this process its event loop waited for the
GIL behind the desks' decoding threads, and the link sat idle meanwhile. Figures on a 2-core machine shared with
other work are lower bounds for the server side.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
from bench_client import bench_incremental, bench_outbox
from bench_server import (
    OUT,
    CpuMeter,
    PhoneMaker,
    bench_legacy,
    count_leads,
    crm_server_exe,
    known_phones,
    lat_summary,
    legacy_setup,
    make_lead,
    say,
    start_seeded,
    stop_seeded,
)
from replay_server import ReplayProcess, record
from shaping_proxy import LinkProcess

from crm_desktop.core.api import ApiClient
from crm_desktop.core.store import Store
from crm_desktop.core.sync import SyncEngine

GOALS = {
    "bytes_per_lead_first_sync": 40.0,
    "link_first_sync_s": 20.0,
    "loopback_rows_per_s": 75_000.0,
}


class BodyBytes:
    """Response body bytes as received (compressed when the server compressed), per RPC, by wrapping the
    ApiClient's httpx.Client.post; for loopback, where no proxy counts."""

    def __init__(self, api: ApiClient) -> None:
        self.bytes: Counter[str] = Counter()
        self.encodings: Counter[str] = Counter()
        http = api._http  # wrapping the instance's own client is the only way to see the raw body size
        post = http.post
        lock = threading.Lock()

        def counted(url: str, *args: Any, **kwargs: Any) -> httpx.Response:
            r = post(url, *args, **kwargs)
            with lock:
                self.bytes[url.rsplit("/", 1)[-1]] += r.num_bytes_downloaded
                self.encodings[r.headers.get("content-encoding", "identity")] += 1
            return r

        http.post = counted  # type: ignore[method-assign]


def login(url: str, anon_key: str, email: str) -> ApiClient:
    api = ApiClient(url, anon_key, timeout=httpx.Timeout(connect=10.0, read=120.0, write=30.0, pool=30.0))
    api.login(email, "demo1234")
    return api


def fresh_store(base: Path, name: str) -> tuple[Store, Path]:
    path = base / f"{name}.sqlite3"
    for p in base.glob(path.name + "*"):
        p.unlink()
    store, _ = Store.open_or_rebuild(path)
    return store, path


# The desks sign in as CREs; the app's CRE desk leaves the team lead's cache indexes out (cache.TEAM_INDEXES).
# --team-indexes builds them too, as a team lead's desk does.
TEAM_INDEXES = False


def first_sync(
    api: ApiClient,
    base: Path,
    name: str,
    page_size: int,
    cap: int | None = None,
    *,
    keep_cache: bool = False,
    decode_processes: int | None = None,
) -> dict[str, Any]:
    """One desk's first sync into an empty cache (stops after `cap` rows when given). `keep_cache`: into the cache
    file already there (one a caller has prepared), not a fresh one. `decode_processes`: the engine's, when given."""
    if keep_cache:
        path = base / f"{name}.sqlite3"
        store, _ = Store.open_or_rebuild(path)
    else:
        store, path = fresh_store(base, name)
    options = {} if decode_processes is None else {"decode_processes": decode_processes}
    engine = SyncEngine(api, path, page_size=page_size, team_indexes=TEAM_INDEXES, **options)
    if cap:

        def stop_at_cap(p: Any) -> None:
            if p.done >= cap:
                engine._stop.set()  # what stop() does, without joining threads this engine never started

        engine.listeners.progress.append(stop_at_cap)
    t0 = time.perf_counter()
    error = ""
    rows = 0
    try:
        rows = engine.pull(store)
    except Exception as exc:  # reported, not raised: one desk's failure is a figure of the run
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - t0
    cached = store.cache_count()
    store.close()
    return {"rows": rows, "cached": cached, "seconds": round(seconds, 2), "error": error, "path": str(path)}


def bench_loopback_sync(server_url: str, anon: str, base: Path, page_size: int, cpu: CpuMeter) -> dict[str, Any]:
    api = login(server_url, anon, "cre1@demo.local")
    counted = BodyBytes(api)
    cpu.start()
    r = first_sync(api, base, "loopback", page_size)
    r["cpu"] = cpu.stop()
    api.close()
    feed = sum(counted.bytes.values())
    r["rows_per_s"] = round(r["rows"] / r["seconds"]) if r["seconds"] else 0
    r["body_bytes"] = feed
    r["body_bytes_per_lead"] = round(feed / max(r["rows"], 1), 1)
    r["content_encodings"] = dict(counted.encodings)
    return r


def bench_link_sync(
    proxy: LinkProcess, anon: str, base: Path, page_size: int, desks: int, cap: int | None, cpu: CpuMeter
) -> dict[str, Any]:
    apis = [login(proxy.url(), anon, f"cre{1 + i % 3}@demo.local") for i in range(desks)]
    up0, down0 = proxy.counters()
    results: list[dict[str, Any]] = [{} for _ in range(desks)]

    def run(i: int) -> None:
        results[i] = first_sync(apis[i], base, f"link{desks}-{i}", page_size, cap)

    threads = [threading.Thread(target=run, args=(i,), name=f"desk-{i}") for i in range(desks)]
    cpu.start()
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    used = cpu.stop()
    up1, down1 = proxy.counters()
    for api in apis:
        api.close()
    rows = sum(r["rows"] for r in results)
    wire = (up1 - up0) + (down1 - down0)
    return {
        "desks": desks,
        "cap_per_desk": cap,
        "seconds": round(wall, 2),
        "per_desk_seconds": [r["seconds"] for r in results],
        "rows": rows,
        "rows_per_desk": [r["rows"] for r in results],
        "errors": [r["error"] for r in results if r["error"]],
        "wire_bytes_down": down1 - down0,
        "wire_bytes_up": up1 - up0,
        "wire_bytes_per_lead": round(wire / max(rows, 1), 1),
        "link_mbit_used": round(wire * 8 / wall / 1e6, 2) if wall else 0,
        "cpu": used,
        "paths": [r["path"] for r in results],
    }


def record_answers(
    server_url: str, anon: str, page_size: int, pages_dir: Path, by_column: bool = True
) -> dict[str, Any]:
    """Record the server's answers to a first sync (replay_server.record) as cre1 sees them; returns its index."""
    recorder = login(server_url, anon, "cre1@demo.local")
    try:
        return record(server_url, anon, recorder._access_token(), page_size, pages_dir, by_column)
    finally:
        recorder.close()


def desk_on_replay(server_url: str, anon: str, replay_url: str) -> ApiClient:
    """cre1's client, signed in at the real server, whose RPCs (the feed pages) go to a replay server."""
    api = login(server_url, anon, "cre1@demo.local")
    api._http.base_url = httpx.URL(replay_url)  # the instance's own client: the only way to point it elsewhere
    return api


def bench_replayed(
    server_url: str, anon: str, base: Path, page_size: int, pages_dir: Path, rtt_ms: float, mbit: float
) -> dict[str, Any]:
    """The first sync once more, over loopback and through the link, against the server's recorded answers
    (replay_server.py): the desk's own CPU and the link, with the server's latency but not its CPU on these cores."""
    index = record_answers(server_url, anon, page_size, pages_dir)
    out: dict[str, Any] = {
        "recorded": {
            "rows": index["rows"],
            "pages": len(index["pages"]),
            "bytes_per_lead": round(index["bytes"] / max(index["rows"], 1), 1),
            "server_ms_total": round(sum(p["server_ms"] for p in index["pages"])),
            "encodings": dict(Counter(p["encoding"] for p in index["pages"])),
        }
    }
    replay = ReplayProcess(pages_dir).start()
    link = LinkProcess([replay.host_port], rtt_ms=rtt_ms, mbit=mbit).start()
    try:
        for where, url in (("loopback", f"http://{replay.host_port}"), ("link", link.url())):
            api = desk_on_replay(server_url, anon, url)
            up0, down0 = link.counters()
            cpu = CpuMeter(replay.pid, None)
            cpu.start()
            r = first_sync(api, base, f"replay-{where}", page_size)
            used = cpu.stop()
            up1, down1 = link.counters()
            api.close()
            used["replay_server_cpu_s"] = used.pop("uvicorn_cpu_s")
            used.pop("postgres_cpu_s", None)
            r["cpu"] = used
            r["rows_per_s"] = round(r["rows"] / r["seconds"]) if r["seconds"] else 0
            if where == "link":
                r["wire_bytes_per_lead"] = round(((up1 - up0) + (down1 - down0)) / max(r["rows"], 1), 1)
            for f in base.glob(Path(r.pop("path")).name + "*"):
                f.unlink()
            out[where] = r
    finally:
        link.stop()
        replay.stop()
    return out


def bench_creates(api: ApiClient, n: int, rng: random.Random, phones: PhoneMaker) -> dict[str, Any]:
    """Sequential create_lead calls (the push thread's work per lead), as in bench_server's create phase."""
    ms: list[float] = []
    for i in range(n + 3):
        lead = make_lead(rng, phones(), with_ps=rng.random() < 0.3)
        t0 = time.perf_counter()
        api.rpc("create_lead", {"lead": lead})
        if i >= 3:  # warm-up: connection set-up, statement caches
            ms.append((time.perf_counter() - t0) * 1000)
    return lat_summary(ms)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--data-dir", type=Path, default=OUT / "pgdata-link")
    ap.add_argument("--rtt-ms", type=float, default=50.0)
    ap.add_argument("--mbit", type=float, default=20.0)
    ap.add_argument("--page-size", type=int, default=None, help="default: the SyncEngine's default")
    ap.add_argument("--desks", type=int, default=10)
    ap.add_argument("--desk-leads", type=int, default=None, help="stop each of the --desks desks after this many")
    ap.add_argument("--skip-link-sync", action="store_true", help="skip phase 3 (one desk through the link)")
    ap.add_argument("--skip-replay", action="store_true", help="skip phase 3b (the first sync against a replay)")
    ap.add_argument("--inc-runs", type=int, default=10)
    ap.add_argument("--inc-leads", type=int, default=100)
    ap.add_argument("--outbox", type=int, default=100)
    ap.add_argument("--outbox-gap", type=float, default=0.25, help="seconds between enqueues")
    ap.add_argument("--creates", type=int, default=100)
    ap.add_argument("--legacy", type=int, default=50)
    ap.add_argument("--cache-dir", type=Path, default=OUT / "link-cache")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--server-exe", default=crm_server_exe())
    ap.add_argument("--label", default="", help="free text saved with the figures (e.g. before/after)")
    ap.add_argument("--json", type=Path, default=OUT / "bench_link.json")
    ap.add_argument("--team-indexes", action="store_true", help="desks build the team lead's cache indexes too")
    args = ap.parse_args(argv)
    global TEAM_INDEXES
    TEAM_INDEXES = args.team_indexes
    OUT.mkdir(parents=True, exist_ok=True)
    workload_seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    rng = random.Random(workload_seed)
    phones = PhoneMaker(rng)
    page_size = args.page_size or SyncEngine.__init__.__kwdefaults__["page_size"]
    report: dict[str, Any] = {
        "label": args.label,
        "team_indexes": args.team_indexes,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cores": psutil.cpu_count(), "note": "shared with other work"},
        "link": {"rtt_ms": args.rtt_ms, "mbit_per_direction": args.mbit},
        "page_size": page_size,
        "sqlite": sqlite3.sqlite_version,
        "goals": GOALS,
        "workload_seed": workload_seed,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    say(f"[start] load average {report['loadavg_at_start']}; link {args.mbit} Mbit/s, {args.rtt_ms} ms RTT")
    t_all = time.perf_counter()
    base: Path = args.cache_dir.resolve()
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    cluster, server = start_seeded(args.server_exe, args.data_dir.resolve(), args.leads, report)
    host_port = server.url.removeprefix("http://")
    pg_socket = next(Path(args.data_dir).resolve().glob(".s.PGSQL.*"))
    # The desk's HTTP (port 0) and the replaced system's PostgreSQL (port 1) through one link.
    proxy = LinkProcess([host_port, str(pg_socket)], rtt_ms=args.rtt_ms, mbit=args.mbit).start()
    try:
        report["leads_at_start"] = count_leads(cluster.get_uri())
        say(f"[server] {server.url}: {report['leads_at_start']:,} leads; link proxy {proxy.url()}")

        def meter() -> CpuMeter:
            return CpuMeter(server.proc.pid if server.proc else 0, cluster.get_pid())

        # 2. loopback first sync
        say("[loopback] first sync of every lead, one desk ...")
        lb = bench_loopback_sync(server.url, server.anon_key, base, page_size, meter())
        report["loopback_first_sync"] = lb
        say(
            f"[loopback] {lb['rows']:,} rows in {lb['seconds']} s = {lb['rows_per_s']:,} rows/s; body"
            f" {lb['body_bytes_per_lead']} B/lead {lb['content_encodings']}; cpu {lb['cpu']} {lb['error']}"
        )

        # 3. one desk through the link
        keep_path = Path(lb["path"])
        if not args.skip_link_sync:
            say(f"[link-1] first sync through {args.mbit} Mbit/s, {args.rtt_ms} ms RTT, one desk ...")
            one = bench_link_sync(proxy, server.anon_key, base, page_size, 1, None, meter())
            report["link_first_sync_1"] = one
            keep_path = Path(one["paths"][0])
            say(
                f"[link-1] {one['rows']:,} rows in {one['seconds']} s; {one['wire_bytes_per_lead']} B/lead on the"
                f" wire ({one['link_mbit_used']} Mbit/s used); errors {one['errors']}; cpu {one['cpu']}"
            )

        # 3b. the same first sync against the server's recorded answers: the desk's own share of it
        if not args.skip_replay:
            say("[replay] recording the server's answers, then a first sync against them, over loopback and the link")
            rp = bench_replayed(server.url, server.anon_key, base, page_size, OUT / "replay", args.rtt_ms, args.mbit)
            report["replayed_first_sync"] = rp
            for where in ("loopback", "link"):
                x = rp[where]
                say(
                    f"[replay] {where}: {x['rows']:,} rows in {x['seconds']} s = {x['rows_per_s']:,} rows/s;"
                    f" cpu {x['cpu']} {x['error']}"
                )

        # 4. many desks at once
        cap = args.desk_leads
        say(f"[link-{args.desks}] {args.desks} desks start a first sync at once (cap per desk: {cap}) ...")
        many = bench_link_sync(proxy, server.anon_key, base, page_size, args.desks, cap, meter())
        report["link_first_sync_many"] = many
        say(
            f"[link-{args.desks}] {many['rows']:,} rows in {many['seconds']} s (per desk {many['per_desk_seconds']});"
            f" {many['wire_bytes_per_lead']} B/lead; {many['link_mbit_used']} Mbit/s; errors {many['errors']};"
            f" cpu {many['cpu']}"
        )
        for p in many["paths"]:
            for f in base.glob(Path(p).name + "*"):
                f.unlink()

        # 5. incremental through the link (leads made by cre2 over loopback)
        link_api = login(proxy.url(), server.anon_key, "cre1@demo.local")
        other = login(server.url, server.anon_key, "cre2@demo.local")
        say(f"[inc] {args.inc_runs} x ({args.inc_leads} create_lead as cre2, then one timed pull via the link) ...")
        up0, down0 = proxy.counters()
        inc = bench_incremental(
            link_api, other, keep_path, args.inc_runs, args.inc_leads, rng, phones, team_indexes=TEAM_INDEXES
        )
        up1, down1 = proxy.counters()
        inc["wire_bytes_per_pull"] = round(((up1 - up0) + (down1 - down0)) / max(args.inc_runs + 1, 1))
        report["link_incremental"] = inc
        say(
            f"[inc] pull of {args.inc_leads} new leads via the link: p50 {inc['pull_ms']['p50_ms']} ms, p99"
            f" {inc['pull_ms']['p99_ms']} ms; {inc['rpc_calls_per_pull']} RPC/pull; ~{inc['wire_bytes_per_pull']:,}"
            " B on the wire per pull"
        )

        # 6. queued lead -> server answer through the link, engine running
        say(f"[outbox] engine through the link; {args.outbox} leads {args.outbox_gap * 1000:g} ms apart ...")
        ob = bench_outbox(link_api, keep_path, args.outbox, args.outbox_gap, rng, phones, team_indexes=TEAM_INDEXES)
        report["link_outbox"] = ob
        e = ob["enqueue_to_done_ms"]
        say(f"[outbox] enqueue -> answer via the link: p50 {e['p50_ms']} ms, p99 {e['p99_ms']} ms ({ob['done']} done)")

        # 7. create_lead vs the replaced pattern, through the link and over loopback
        say(f"[create] {args.creates} sequential create_lead, via the link and over loopback ...")
        report["create_link_ms"] = bench_creates(link_api, args.creates, rng, phones)
        report["create_loopback_ms"] = bench_creates(other, args.creates, rng, phones)
        link_api.close()
        other.close()
        say(
            f"[create] link p50 {report['create_link_ms']['p50_ms']} ms,"
            f" loopback {report['create_loopback_ms']['p50_ms']} ms"
        )
        db_uri = server.database_url
        with psycopg.connect(db_uri, autocommit=True) as conn:
            say("[legacy] copying the leads into legacy_* tables (once) ...")
            report["legacy_setup"] = legacy_setup(conn)
            known = known_phones(conn, args.legacy * 2, rng)
        try:
            info = psycopg.conninfo.conninfo_to_dict(db_uri)
            info.update(host="127.0.0.1", port=str(proxy.ports[1]))
            with psycopg.connect(psycopg.conninfo.make_conninfo(**info), autocommit=True) as conn:
                say(f"[legacy] {args.legacy} creates through the link ...")
                report["legacy_link"] = bench_legacy(conn, args.legacy, rng, phones, known[: args.legacy])
            with psycopg.connect(db_uri, autocommit=True) as conn:
                say(f"[legacy] {args.legacy} creates over the local socket ...")
                report["legacy_loopback"] = bench_legacy(conn, args.legacy, rng, phones, known[args.legacy :])
        finally:
            with psycopg.connect(db_uri, autocommit=True) as conn:
                conn.execute(
                    "drop table if exists legacy_lead_master, legacy_duplicate_leads, legacy_ps_followup,"
                    " legacy_call_attempts"
                )
        ll, lo = report["legacy_link"], report["legacy_loopback"]
        report["ratio_link"] = round(ll["latency"]["p50_ms"] / report["create_link_ms"]["p50_ms"], 1)
        report["ratio_outbox_link"] = round(ll["latency"]["p50_ms"] / e["p50_ms"], 1)
        report["ratio_loopback"] = round(lo["latency"]["p50_ms"] / report["create_loopback_ms"]["p50_ms"], 1)
        say(
            f"[legacy] via the link p50 {ll['latency']['p50_ms']} ms ({ll['round_trips_mean']} round trips) vs"
            f" create_lead {report['create_link_ms']['p50_ms']} ms = {report['ratio_link']}x; loopback"
            f" {lo['latency']['p50_ms']} vs {report['create_loopback_ms']['p50_ms']} ms = {report['ratio_loopback']}x"
        )
    finally:
        proxy.stop()
        stop_seeded(cluster, server)
        shutil.rmtree(base, ignore_errors=True)
    report["total_seconds"] = round(time.perf_counter() - t_all, 1)
    report["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print_summary(report, args.json)
    return 0


def print_summary(r: dict[str, Any], path: Path) -> None:
    link = r["link"]
    say("")
    say(f"Summary ({r['label'] or 'no label'}; {link['mbit_per_direction']} Mbit/s, {link['rtt_ms']} ms RTT;"
        f" load avg start {r['loadavg_at_start']}, end {r['loadavg_at_end']}):")  # fmt: skip
    lb = r["loopback_first_sync"]
    say(f"  loopback first sync: {lb['rows']:,} rows, {lb['seconds']} s, {lb['rows_per_s']:,} rows/s (goal >= 75k),"
        f" {lb['body_bytes_per_lead']} B/lead body")  # fmt: skip
    if "link_first_sync_1" in r:
        one = r["link_first_sync_1"]
        say(f"  link first sync, 1 desk: {one['seconds']} s (goal <= 20 s), {one['wire_bytes_per_lead']} B/lead"
            f" (goal <= 40), uvicorn {one['cpu']['uvicorn_cpu_s']} s + PostgreSQL {one['cpu']['postgres_cpu_s']} s"
            " CPU")  # fmt: skip
    if "replayed_first_sync" in r:
        rp = r["replayed_first_sync"]
        lo, li = rp["loopback"], rp["link"]
        say(f"  against the server's recorded answers (its latency, not its CPU): loopback {lo['seconds']} s ="
            f" {lo['rows_per_s']:,} rows/s; link {li['seconds']} s, {li.get('wire_bytes_per_lead')} B/lead; desk CPU"
            f" {lo['cpu']['client_cpu_s']} / {li['cpu']['client_cpu_s']} s")  # fmt: skip
    many = r["link_first_sync_many"]
    say(f"  link first sync, {many['desks']} desks at once: {many['seconds']} s for {many['rows']:,} rows"
        f" (cap/desk {many['cap_per_desk']}), {many['wire_bytes_per_lead']} B/lead, errors {len(many['errors'])},"
        f" uvicorn {many['cpu']['uvicorn_cpu_s']} s + PostgreSQL {many['cpu']['postgres_cpu_s']} s CPU")  # fmt: skip
    inc = r["link_incremental"]["pull_ms"]
    say(f"  link incremental pull of 100: p50 {inc['p50_ms']} ms, p99 {inc['p99_ms']} ms")
    ob = r["link_outbox"]["enqueue_to_done_ms"]
    say(f"  link queued lead -> answer: p50 {ob['p50_ms']} ms, p99 {ob['p99_ms']} ms")
    say(f"  link create_lead p50 {r['create_link_ms']['p50_ms']} ms vs replaced pattern"
        f" {r['legacy_link']['latency']['p50_ms']} ms: {r['ratio_link']}x (outbox answer: {r['ratio_outbox_link']}x);"
        f" loopback {r['ratio_loopback']}x")  # fmt: skip
    say(f"  details: {path}; total {r['total_seconds']} s")


if __name__ == "__main__":
    sys.exit(main())
