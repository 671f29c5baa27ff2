"""Client-core benchmark: the real sync, lookup and outbox code against the real reference server at 1M leads.

    .venv/bin/python bench/bench_client.py [--leads 1000000] [--data-dir bench/out/pgdata2]

Why: bench_store.py times the SQLite side alone and bench_server.py the server alone. What a CRE waits for is the
two together through the client core: `SyncEngine.pull` (HTTP + JSON + SQLite) filling an empty cache on the first
start, the few new leads of a poll, the duplicate lookup on the synced cache, and a queued lead's trip from the
outbox to the server's answer while the engine runs. This prints those figures beside the goals. A benchmark, not a
test: it asserts nothing.

Phases:
  1. seed         `crm-server seed` into --data-dir until it holds --leads (a dir that already does is reused), then
                  `vacuum analyze` of the desk tables; `crm-server serve --demo` on a loopback port.
  2. initial      cre1 signs in; for each --pages size, a fresh empty cache (`Store.open_or_rebuild`) and one timed
                  `SyncEngine(api, path, page_size=N).pull(store)` of every lead. The time is split (by wrapping, not
                  changing, the calls) into the HTTP request (server + transfer), text decoding, read_feed_head,
                  apply_feed_page and finish_bulk_fill (the cache indexes built after the last page).
  3. incremental  cre2 creates --inc-leads leads with create_lead over HTTP, then one timed pull brings them into the
                  synced cache; --inc-runs times.
  4. lookup       `Store.lookup` on the synced 1M cache from a fresh reader Store: hits and misses.
  5. outbox       `engine.start()`, then --outbox leads enqueued one at a time ~--outbox-gap apart; latency from
                  `store.enqueue` returning to the item's `done` (the engine's item listener), with the engine's pull
                  thread fetching the new leads meanwhile, as in the app.

Figures on a small shared machine (2 cores here, with other work on it) are lower bounds: this process, uvicorn and
PostgreSQL share the CPUs. The initial sync prints each one's CPU seconds.
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
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

# bench/ is the script's directory, hence on sys.path: reuse the server benchmark's seeding, server and helpers.
from bench_server import (
    OUT,
    CpuMeter,
    PhoneMaker,
    count_leads,
    crm_server_exe,
    lat_summary,
    make_lead,
    pct,
    say,
    start_seeded,
    stop_seeded,
)

from crm_desktop.core.api import ApiClient
from crm_desktop.core.models import OutboxItem, OutboxState
from crm_desktop.core.store import Store
from crm_desktop.core.sync import SyncEngine

GOALS = {
    "initial_rows_per_s": 50_000.0,  # PowerSync publishes 27.6k rows/s for a desktop initial sync
    "incremental_ms": 50.0,
    "lookup_p99_ms": 1.0,
    "outbox_p50_ms": None,  # no goal given; reported
}
POWERSYNC_ROWS_PER_S = 27_600


class Split:
    """Wall time spent inside wrapped calls, per call site: where a pull's time goes."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.samples: dict[str, list[float]] = {}

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                self.seconds[name] += dt
                self.calls[name] += 1
                self.samples.setdefault(name, []).append(dt * 1000)

        return timed


def instrument(api: ApiClient, store: Store) -> tuple[Split, Callable[[], None]]:
    """Time the HTTP request (`httpx.Client.post`: server + transfer, body read), the whole `rpc_text` (adds the
    body's text decoding), `read_feed_head`, `apply_feed_page` and `finish_bulk_fill`, by wrapping the instances'
    bound methods; returns an undo."""
    split = Split()
    http = api._http  # the ApiClient's own httpx.Client: wrapping its post is the only way to see the wire time
    http.post = split.wrap("http", http.post)  # type: ignore[method-assign]
    api.rpc_text = split.wrap("rpc", api.rpc_text)  # type: ignore[method-assign]
    store.apply_feed_page = split.wrap("apply", store.apply_feed_page)  # type: ignore[method-assign]
    store.read_feed_head = split.wrap("head", store.read_feed_head)  # type: ignore[method-assign]
    store.finish_bulk_fill = split.wrap("finish", store.finish_bulk_fill)  # type: ignore[method-assign]

    def undo() -> None:
        del http.post, api.rpc_text, store.apply_feed_page, store.read_feed_head, store.finish_bulk_fill

    return split, undo


def cache_files_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20, 1)


# ------------------------------------------------------------------------------------------------------ 2. initial


def bench_initial(
    api: ApiClient, base: Path, page_size: int, cpu: CpuMeter, *, team_indexes: bool = False
) -> tuple[dict[str, Any], Path]:
    path = base / f"desk-{page_size}.sqlite3"
    for p in base.glob(path.name + "*"):
        p.unlink()
    store, _ = Store.open_or_rebuild(path)
    # cre1's desk, as the app makes it for a CRE: without the team lead's cache indexes unless asked for.
    engine = SyncEngine(api, path, page_size=page_size, team_indexes=team_indexes)
    split, undo = instrument(api, store)
    try:
        cpu.start()
        t0 = time.perf_counter()
        rows = engine.pull(store)
        elapsed = time.perf_counter() - t0
        used = cpu.stop()
    finally:
        undo()
    cached = store.cache_count()
    store.close()
    s = split.seconds
    result = {
        "page_size": page_size,
        "team_indexes": team_indexes,
        "rows": rows,
        "cached": cached,
        "pages": split.calls["rpc"],
        "seconds": round(elapsed, 2),
        "rows_per_s": round(rows / elapsed),
        "split_s": {
            "http_request (server + transfer)": round(s["http"], 2),
            "text_decode": round(s["rpc"] - s["http"], 2),
            "read_feed_head": round(s["head"], 2),
            "apply_feed_page": round(s["apply"], 2),
            # Building the cache indexes a first sync deferred (Store.finish_bulk_fill), after the last page.
            "finish_bulk_fill": round(s["finish"], 2),
            # The sync fetches the next page while it applies this one: this much of the two overlapped.
            "overlapped": round(max(s["rpc"] + s["head"] + s["apply"] + s["finish"] - elapsed, 0.0), 2),
        },
        "page_ms": {
            "http": lat_summary(split.samples.get("http", [])),
            "apply": lat_summary(split.samples.get("apply", [])),
        },
        "cpu": used,
        "cache_mb": cache_files_mb(path),
    }
    return result, path


# -------------------------------------------------------------------------------------------------- 3. incremental


def bench_incremental(
    api: ApiClient,
    other: ApiClient,
    path: Path,
    runs: int,
    per_run: int,
    rng: random.Random,
    phones: PhoneMaker,
    *,
    team_indexes: bool = False,
) -> dict[str, Any]:
    store = Store(path)
    # The app's default page size; the same desk as the first sync (a CRE's builds no team lead's index here).
    engine = SyncEngine(api, path, team_indexes=team_indexes)
    ms: list[float] = []
    pulled: list[int] = []
    create_ms: list[float] = []
    outcomes: Counter[str] = Counter()
    split, undo = instrument(api, store)
    try:
        engine.pull(store)  # catch up first (nothing should be new): the timed pulls then see only their leads
        split.seconds.clear()
        split.calls.clear()
        split.samples.clear()
        for _ in range(runs):
            created = 0
            while created < per_run:  # a random phone may already exist (~0.025 % at 1M): then one more
                t0 = time.perf_counter()
                answer = other.rpc("create_lead", {"lead": make_lead(rng, phones(), with_ps=rng.random() < 0.3)})
                create_ms.append((time.perf_counter() - t0) * 1000)
                outcomes[str(answer.get("outcome"))] += 1
                created += answer.get("outcome") == "created"
            t0 = time.perf_counter()
            n = engine.pull(store)
            ms.append((time.perf_counter() - t0) * 1000)
            pulled.append(n)
    finally:
        undo()
        store.close()
    return {
        "runs": runs,
        "leads_per_run": per_run,
        "rows_pulled_per_run": sorted(Counter(pulled).items()),
        "pull_ms": lat_summary(ms),
        "pull_ms_all": [round(x, 2) for x in ms],
        "http_ms": lat_summary(split.samples.get("http", [])),
        "rpc_calls_per_pull": round(split.calls["rpc"] / max(runs, 1), 2),
        "apply_ms": lat_summary(split.samples.get("apply", [])),
        "create_lead_ms_as_cre2": lat_summary(create_ms),
        "create_outcomes": dict(outcomes),
    }


# ------------------------------------------------------------------------------------------------------- 4. lookup


def bench_lookup(path: Path, n: int, rng: random.Random) -> dict[str, Any]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        top = conn.execute("select max(rowid) from lead_cache").fetchone()[0]
        ids = [rng.randint(1, top) for _ in range(n // 2 + 100)]
        hits = [r[0] for r in conn.execute(f"select phone from lead_cache where rowid in ({','.join(map(str, ids))})")]
    hits = hits[: n // 2]
    misses = [f"+91{rng.randint(6_000_000_000, 9_999_999_999)}" for _ in range(n - len(hits))]
    probes = [(p, True) for p in hits] + [(p, False) for p in misses]
    rng.shuffle(probes)
    reader = Store(path)  # as a reader thread has it: its own connection
    try:
        for phone, _ in probes[:500]:  # warm-up: statement cache, first pages
            reader.lookup(phone)
        hit_ms: list[float] = []
        miss_ms: list[float] = []
        for phone, _ in probes:
            t0 = time.perf_counter()
            found = reader.lookup(phone)
            dt = (time.perf_counter() - t0) * 1000
            (hit_ms if found is not None else miss_ms).append(dt)
    finally:
        reader.close()

    def us(v: list[float]) -> dict[str, float]:
        return {
            "n": len(v),
            "p50_us": round(pct(v, 50) * 1000, 1),
            "p99_us": round(pct(v, 99) * 1000, 1),
            "max_us": round(max(v) * 1000, 1) if v else float("nan"),
        }

    return {"hits": us(hit_ms), "misses": us(miss_ms), "all": us(hit_ms + miss_ms)}


# ------------------------------------------------------------------------------------------------------- 5. outbox


def bench_outbox(
    api: ApiClient,
    path: Path,
    n: int,
    gap: float,
    rng: random.Random,
    phones: PhoneMaker,
    *,
    team_indexes: bool = False,
) -> dict[str, Any]:
    engine = SyncEngine(api, path, team_indexes=team_indexes)
    queued_at: dict[str, float] = {}
    done_at: dict[str, float] = {}
    states: Counter[str] = Counter()
    all_done = threading.Event()
    lock = threading.Lock()

    def on_item(item: OutboxItem) -> None:  # on the engine's push thread
        now = time.perf_counter()
        with lock:
            states[item.state.value] += 1
            if item.state is OutboxState.DONE:
                done_at[item.client_ref] = now
                if len(done_at) >= n:
                    all_done.set()

    pulls: list[int] = []
    engine.listeners.item.append(on_item)
    engine.listeners.progress.append(lambda p: pulls.append(p.done) if p.finished else None)
    store = Store(path)
    enqueue_ms: list[float] = []
    engine.start()
    try:
        time.sleep(1.0)  # let the pull thread's start-up catalogue + catch-up pass finish
        start = time.perf_counter()
        for i in range(n):
            payload = make_lead(rng, phones(), with_ps=rng.random() < 0.3)
            t0 = time.perf_counter()
            item = store.enqueue(payload)
            t1 = time.perf_counter()
            with lock:
                queued_at[item.client_ref] = t1
            engine.wake_push()  # what DeskSession.enqueue does right after the commit
            enqueue_ms.append((t1 - t0) * 1000)
            pause = start + (i + 1) * gap - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        finished = all_done.wait(timeout=120)
        drained = time.perf_counter() - start
    finally:
        engine.stop()
        store.close()
    lat = [(done_at[ref] - t) * 1000 for ref, t in queued_at.items() if ref in done_at]
    return {
        "leads": n,
        "gap_ms": gap * 1000,
        "all_done": finished,
        "done": len(lat),
        "item_events": dict(states),
        "enqueue_to_done_ms": lat_summary(lat),
        "enqueue_commit_ms": lat_summary(enqueue_ms),
        "wall_s": round(drained, 2),
        "pull_passes_meanwhile": len(pulls),
        "rows_pulled_meanwhile": sum(pulls),
    }


# --------------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leads", type=int, default=1_000_000, help="leads on the server (seeded when fewer)")
    ap.add_argument("--data-dir", type=Path, default=OUT / "pgdata2", help="embedded PostgreSQL dir, reused")
    ap.add_argument("--pages", default="5000,10000,20000", help="page sizes of the initial sync, comma-separated")
    ap.add_argument("--inc-runs", type=int, default=20)
    ap.add_argument("--inc-leads", type=int, default=100)
    ap.add_argument("--lookups", type=int, default=10_000)
    ap.add_argument("--outbox", type=int, default=500)
    ap.add_argument("--outbox-gap", type=float, default=0.010, help="seconds between enqueues")
    ap.add_argument("--cache-dir", type=Path, default=OUT / "client-cache", help="where the caches are built")
    ap.add_argument("--keep", action="store_true", help="keep the synced cache files afterwards")
    ap.add_argument("--seed", type=int, default=None, help="workload RNG seed (default: fresh each run)")
    ap.add_argument("--server-exe", default=crm_server_exe())
    ap.add_argument("--json", type=Path, default=OUT / "bench_client.json")
    ap.add_argument("--team-indexes", action="store_true", help="the first sync also builds the team lead's indexes")
    args = ap.parse_args(argv)
    pages = [int(x) for x in args.pages.split(",") if x.strip()]
    OUT.mkdir(parents=True, exist_ok=True)
    data_dir: Path = args.data_dir.resolve()
    workload_seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    rng = random.Random(workload_seed)
    phones = PhoneMaker(rng)
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "cores": psutil.cpu_count(),
            "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "note": "shared with other work",
        },
        "sqlite": sqlite3.sqlite_version,
        "python": sys.version.split()[0],
        "goals": GOALS,
        "workload_seed": workload_seed,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    say(f"[start] load average {report['loadavg_at_start']} on {report['machine']['cores']} cores (shared machine)")
    t_all = time.perf_counter()
    base: Path = args.cache_dir.resolve()
    base.mkdir(parents=True, exist_ok=True)
    cluster, server = start_seeded(args.server_exe, data_dir, args.leads, report)
    try:
        report["leads_at_start"] = count_leads(cluster.get_uri())
        say(f"[server] {server.url}: {report['leads_at_start']:,} leads")
        api = ApiClient(server.url, server.anon_key)
        api.login("cre1@demo.local", "demo1234")
        other = ApiClient(server.url, server.anon_key)
        other.login("cre2@demo.local", "demo1234")

        # 2. initial sync, a fresh cache per page size; the app's default (10,000) cache is kept for the rest.
        report["initial"] = []
        keep_size = 10_000 if 10_000 in pages else pages[-1]
        keep_path = base / "none"
        for size in pages:
            say(f"[initial] page_size {size:,}: pull of every lead into an empty cache ...")
            cpu = CpuMeter(server.proc.pid if server.proc else 0, cluster.get_pid())
            r, path = bench_initial(api, base, size, cpu, team_indexes=args.team_indexes)
            report["initial"].append(r)
            say(
                f"[initial] page_size {size:,}: {r['rows']:,} rows in {r['seconds']} s = {r['rows_per_s']:,} rows/s"
                f" ({r['pages']} pages; goal >= 50,000; PowerSync 27,600); split {r['split_s']}; cpu {r['cpu']};"
                f" cache {r['cache_mb']} MB"
            )
            if size == keep_size:
                keep_path = path
            else:
                for p in base.glob(path.name + "*"):
                    p.unlink()
        with Store(keep_path) as s:
            report["synced_cache"] = {"path": str(keep_path), "page_size": keep_size, "rows": s.cache_count()}

        # 3. incremental
        say(f"[incremental] {args.inc_runs} x ({args.inc_leads} create_lead as cre2, then one timed pull) ...")
        inc = bench_incremental(
            api, other, keep_path, args.inc_runs, args.inc_leads, rng, phones, team_indexes=args.team_indexes
        )
        report["incremental"] = inc
        say(
            f"[incremental] pull of {args.inc_leads} new leads: p50 {inc['pull_ms']['p50_ms']} ms, p99"
            f" {inc['pull_ms']['p99_ms']} ms, max {inc['pull_ms']['max_ms']} ms (goal <= 50 ms); rows per pull"
            f" {inc['rows_pulled_per_run']}; HTTP p50 {inc['http_ms']['p50_ms']} ms, apply p50"
            f" {inc['apply_ms']['p50_ms']} ms, {inc['rpc_calls_per_pull']} RPC/pull"
        )

        # 4. lookup
        lk = bench_lookup(keep_path, args.lookups, rng)
        with Store(keep_path) as s:
            lk["cached_leads"] = s.cache_count()
        report["lookup"] = lk
        say(
            f"[lookup] {lk['all']['n']:,} on {lk['cached_leads']:,} cached leads: hits p50"
            f" {lk['hits']['p50_us']} us p99 {lk['hits']['p99_us']} us; misses p50 {lk['misses']['p50_us']} us p99"
            f" {lk['misses']['p99_us']} us; max {lk['all']['max_us']} us (goal p99 <= 1 ms)"
        )

        # 5. outbox
        say(f"[outbox] engine running; {args.outbox} leads enqueued {args.outbox_gap * 1000:g} ms apart ...")
        ob = bench_outbox(api, keep_path, args.outbox, args.outbox_gap, rng, phones, team_indexes=args.team_indexes)
        report["outbox"] = ob
        e = ob["enqueue_to_done_ms"]
        say(
            f"[outbox] enqueue -> done: p50 {e['p50_ms']} ms, p99 {e['p99_ms']} ms, max {e['max_ms']} ms"
            f" ({ob['done']}/{ob['leads']} done; events {ob['item_events']}); enqueue commit p50"
            f" {ob['enqueue_commit_ms']['p50_ms']} ms p99 {ob['enqueue_commit_ms']['p99_ms']} ms;"
            f" {ob['pull_passes_meanwhile']} pulls brought {ob['rows_pulled_meanwhile']} rows meanwhile"
        )
        api.close()
        other.close()
    finally:
        stop_seeded(cluster, server)
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    report["total_seconds"] = round(time.perf_counter() - t_all, 1)
    report["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print_summary(report, args.json)
    return 0


def print_summary(r: dict[str, Any], path: Path) -> None:
    def ok(flag: bool) -> str:
        return "met" if flag else "MISSED"

    say("")
    say(f"Summary (2-core machine shared with other work; load avg start {r['loadavg_at_start']}, "
        f"end {r['loadavg_at_end']}):")  # fmt: skip
    for i in r["initial"]:
        rate = i["rows_per_s"]
        say(f"  initial sync, page {i['page_size']:>6,}: {rate:>9,} rows/s   goal >= 50,000 ({ok(rate >= 50_000)});"
            f" {rate / POWERSYNC_ROWS_PER_S:.1f}x PowerSync's 27,600")  # fmt: skip
    inc = r["incremental"]["pull_ms"]
    say(f"  incremental pull of 100: p50 {inc['p50_ms']} ms, p99 {inc['p99_ms']} ms   goal <= 50 ms "
        f"(p50 {ok(inc['p50_ms'] <= 50)}, p99 {ok(inc['p99_ms'] <= 50)})")  # fmt: skip
    lk = r["lookup"]
    say(f"  lookup on {lk['cached_leads']:,}-lead cache: hits p50/p99 {lk['hits']['p50_us']}/"
        f"{lk['hits']['p99_us']} us, misses "
        f"{lk['misses']['p50_us']}/{lk['misses']['p99_us']} us   goal p99 <= 1 ms "
        f"({ok(lk['all']['p99_us'] <= 1000)})")  # fmt: skip
    ob = r["outbox"]["enqueue_to_done_ms"]
    say(f"  outbox enqueue -> done: p50 {ob['p50_ms']} ms, p99 {ob['p99_ms']} ms (no goal set)")
    say(f"  details: {path}; total {r['total_seconds']} s")


if __name__ == "__main__":
    sys.exit(main())
