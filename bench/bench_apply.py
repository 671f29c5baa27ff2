"""Desk-side micro benchmark: what applying one feed page costs per row, on pages captured from the real server.

    .venv/bin/python bench/bench_apply.py --capture 10 --data-dir DIR     # capture pages once (seeded server)
    .venv/bin/python bench/bench_apply.py [--pages-dir bench/out/pages] [--runs 3]

Why: bench_client.py times a whole first sync, where the desk, uvicorn and PostgreSQL share the machine's two cores
and the figure moves with the load. This times the desk's own work per row on fixed pages, each mode into a fresh
cache file as a first sync makes it (`begin_bulk_fill`: secondary indexes dropped), so a change to the decoder or the
upsert shows up as microseconds per row. A benchmark, not a test: it asserts nothing, except that every mode left
the same cache rows (it says so).

Modes (each --runs times; the minimum and median per row, wall and CPU of this process):
  head      `Store.read_feed_head` of every compact page (the sync reads it before applying, to fetch ahead)
  python    `apply_feed_page` of the compact pages: decoded and staged (`cache.decode_ahead`) on this thread, then
            upserted in one statement: the same work as `ahead`, one page after the other
  sql       the same pages through the one-statement SQL decoder (the path before; still the fallback)
  decode    `feed.compact_rows` alone, no SQLite write
  plain     `apply_feed_page` of the captured `lead_changes` pages (an old server's), per row
  ahead     `cache.decode_ahead` of each page on one decoding thread (head, decode, staged image) while this
            thread applies the page before it (`apply_feed_page(..., ready)`): what a short sync does; wall per row
            is the pipeline's rate with no server on the machine
  procs     the same with --processes decoding processes (`cache.stage_page`): what a long sync does (sync.py)
Then `finish_bulk_fill` of the python, ahead and procs modes' caches (what a first sync ends with; a CRE's desk unless
--team-indexes), and the last run's apply plus it as rows/s. --replay 10 makes the 10 captured pages a 1M-lead first
sync (the phones changed on each replay): the desk's rate at 1M with no server on the machine.

--capture N: start the seeded reference server on --data-dir (bench_server.start_seeded; seeds it to --leads first
when it holds fewer), sign in as cre1 and save the first N pages of lead_feed (10,000 rows each) and of lead_changes
(20,000 each) as lead_feed-<i>.json / lead_changes-<i>.json in --pages-dir.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from bench_server import OUT, crm_server_exe, say, start_seeded, stop_seeded

from crm_desktop.core import cache, feed
from crm_desktop.core.api import ApiClient
from crm_desktop.core.cache import FeedHead
from crm_desktop.core.db import write_txn
from crm_desktop.core.store import Store
from crm_desktop.core.sync import DECODE_PROCESSES

PROCESSES = DECODE_PROCESSES  # --processes


def capture(pages_dir: Path, data_dir: Path, leads: int, n: int) -> None:
    pages_dir.mkdir(parents=True, exist_ok=True)
    cluster, server = start_seeded(crm_server_exe(), data_dir, leads, {})
    try:
        api = ApiClient(server.url, server.anon_key)
        api.login("cre1@demo.local", "demo1234")
        for rpc, size in (("lead_feed", 10_000), ("lead_changes", 20_000)):
            since = 0
            for i in range(n):
                text = api.rpc_text(rpc, {"since": since, "max_rows": size})
                (pages_dir / f"{rpc}-{i}.json").write_text(text, encoding="utf-8")
                since = json.loads(text)["next_since"]
            say(f"[capture] {n} pages of {rpc} in {pages_dir}")
    finally:
        stop_seeded(cluster, server)


def load(pages_dir: Path, rpc: str) -> list[str]:
    found = sorted(pages_dir.glob(f"{rpc}-*.json"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    return [p.read_text(encoding="utf-8") for p in found]


def fresh_store(work: Path, name: str) -> Store:
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    store, _ = Store.open_or_rebuild(folder / "cache.sqlite3")
    store.begin_bulk_fill()
    return store


def timed(fn: Callable[[], int]) -> tuple[float, float, int]:
    w0, c0 = time.perf_counter(), time.process_time()
    rows = fn()
    return time.perf_counter() - w0, time.process_time() - c0, rows


def rows_of(store: Store) -> list[tuple[object, ...]]:
    return store._cache_db().execute("SELECT * FROM lead_cache ORDER BY phone").fetchall()


def run_mode(mode: str, store: Store, compact: list[str], heads: list[FeedHead], plain: list[str]) -> int:
    """One mode over every page (see the docstring); returns the rows it covered."""
    conn = store._cache_db()
    n = 0
    if mode == "head":
        for text in compact:  # per row of the pages read: counted by the caller, outside the timing
            store.read_feed_head(text)
    elif mode == "python":
        n = sum(store.apply_feed_page(t, h).rows for t, h in zip(compact, heads, strict=True))
    elif mode == "sql":  # the store's fallback, called as apply_feed_page calls it
        for text, head in zip(compact, heads, strict=True):
            with write_txn(conn):
                n += cache._apply_in_sql(conn, text, head)[0]
    elif mode == "decode":
        for text, head in zip(compact, heads, strict=True):
            for _ in feed.compact_rows(text, head.columns, head.codecs, head.dicts, cache._STORED_COLUMNS):
                n += 1
    elif mode == "plain":
        n = sum(store.apply_feed_page(t).rows for t in plain)
    elif mode == "ahead":
        with ThreadPoolExecutor(max_workers=1) as decoder:
            for ready in decoder.map(cache.decode_ahead, compact):  # map submits every page at once: fine for 10
                n += store.apply_feed_page(ready.text, ready.head, ready).rows
    elif mode == "procs":
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(PROCESSES, mp_context=spawn) as decoders:  # started inside the timing, as a sync does
            for text, staged in zip(compact, decoders.map(cache.stage_page, compact), strict=True):
                ready = cache.ReadyPage(text, *staged)
                n += store.apply_feed_page(ready.text, ready.head, ready).rows
    else:
        raise SystemExit(f"unknown mode {mode}")
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages-dir", type=Path, default=OUT / "pages")
    ap.add_argument("--capture", type=int, default=0, metavar="N", help="capture N pages of each feed and exit")
    ap.add_argument("--data-dir", type=Path, default=OUT / "pgdata2", help="seeded PostgreSQL dir (--capture)")
    ap.add_argument("--leads", type=int, default=1_000_000, help="leads on the server (--capture)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--modes", default="head,python,sql,decode,plain,ahead,procs")
    ap.add_argument("--processes", type=int, default=DECODE_PROCESSES, help="decoding processes of the procs mode")
    ap.add_argument("--owner", default=None, help="desk owner (cre_id) of the caches: my_leads is kept too")
    ap.add_argument("--replay", type=int, default=1, metavar="N",
                    help="apply the captured compact pages N times, the phones changed each time (10 x 10 pages of "
                         "10,000 rows: a 1M-lead first sync with no server on the machine)")  # fmt: skip
    ap.add_argument("--team-indexes", action="store_true", help="finish as a team lead's desk (all ten indexes)")
    args = ap.parse_args(argv)
    global PROCESSES
    PROCESSES = args.processes
    if args.capture:
        capture(args.pages_dir, args.data_dir, args.leads, args.capture)
        return 0
    compact, plain = load(args.pages_dir, "lead_feed"), load(args.pages_dir, "lead_changes")
    if not compact:
        say(f"no lead_feed-*.json in {args.pages_dir}: capture some first (--capture 10 --data-dir DIR)")
        return 2
    # Each replay another set of numbers ("+91..." -> "+80...", "+81..."...): new leads, same rows otherwise.
    compact = [t if r == 0 else t.replace('"+91', f'"+8{r - 1}') for r in range(args.replay) for t in compact]
    modes = [m.strip() for m in args.modes.split(",") if m.strip() and (m.strip() != "plain" or plain)]
    load_avg = [round(x, 2) for x in os.getloadavg()]
    say(f"[start] load average {load_avg}; {len(compact)} compact, {len(plain)} plain pages")
    work = Path(tempfile.mkdtemp(prefix="bench-apply-"))
    results: dict[str, list[tuple[float, float, int]]] = {m: [] for m in modes}
    kept: dict[str, list[tuple[object, ...]]] = {}
    finish: dict[str, float] = {}
    try:
        probe = fresh_store(work, "probe")
        heads = [probe.read_feed_head(t) for t in compact]
        probe.close()
        compact_count = sum(1 for t in compact for _ in feed.page_rows(t))
        for run in range(args.runs):
            for mode in modes:
                store = fresh_store(work, mode)
                if args.owner:
                    store.set_desk_owner(args.owner)
                wall, cpu, rows = timed(lambda mode=mode, store=store: run_mode(mode, store, compact, heads, plain))
                results[mode].append((wall, cpu, compact_count if mode == "head" else rows))
                if mode in ("python", "sql", "plain", "ahead", "procs") and run == 0:
                    kept[mode] = rows_of(store)
                if mode in ("python", "ahead", "procs") and run == args.runs - 1:
                    w0 = time.perf_counter()
                    store.finish_bulk_fill(team_indexes=args.team_indexes)
                    finish[mode] = time.perf_counter() - w0
                store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for mode, got in results.items():
        rows = got[0][2]
        walls = sorted(w / rows * 1e6 for w, _, _ in got)
        cpus = sorted(c / rows * 1e6 for _, c, _ in got)
        say(
            f"[{mode:6}] {rows:,} rows: wall min {walls[0]:.2f} / median {statistics.median(walls):.2f} us/row;"
            f" cpu min {cpus[0]:.2f} / median {statistics.median(cpus):.2f} us/row"
        )
    for mode, seconds in finish.items():
        rows = results[mode][-1][2]
        whole = results[mode][-1][0] + seconds
        say(
            f"[finish] {mode}: finish_bulk_fill of {rows:,} rows {seconds:.2f} s; with the last run's apply "
            f"{whole:.1f} s = {rows / whole:,.0f} rows/s"
        )
    for other in ("sql", "ahead", "procs"):
        if "python" in kept and other in kept:
            same = kept["python"] == kept[other]
            say(f"[check ] python and {other} modes left the same cache rows: {same}")
    if "python" in kept and "plain" in kept:
        common = {r[0] for r in kept["plain"]} & {r[0] for r in kept["python"]}
        a = [r for r in kept["python"] if r[0] in common]
        b = [r for r in kept["plain"] if r[0] in common]
        say(f"[check ] python and plain modes agree on the {len(common):,} leads both hold: {a == b}")
    say(f"[end] load average {[round(x, 2) for x in os.getloadavg()]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
