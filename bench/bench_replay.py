"""A/B of the desk's first sync against the server's recorded answers (replay_server.py), variants alternated.

    .venv/bin/python bench/bench_replay.py --data-dir bench/out/pgdata                       # lo and link, 2 rounds
    .venv/bin/python bench/bench_replay.py --variants "depth=3;depth=4" --where link --rounds 2
    .venv/bin/python bench/bench_replay.py --variants "page=5000;page=10000" --where lo,link
    .venv/bin/python bench/bench_replay.py --variants "names=rebuilt;names=kept"

Why: a first sync's figures move by a third with this shared VM's load, so one run of "before" and one of "after"
say little. This runs every variant once per round, in turn, against the same recorded answers (no server CPU on the
desk's cores: see replay_server.py), and prints each run's time, how long the index build after the fill took (and
the flush to the disk after an unsynced fill), the slowest of a few name searches on the filled cache, and the host's
pace just before and after (`host_pace_us`: the decoder's µs a row on one recorded page, which moves by a third too).
The reference server runs only to sign the desk in; the answers are recorded once per page size asked for, into
bench/out/replay-<data dir's name>-<page size>-<layout> (`--rerecord` to refresh).

A variant is `key=value` pairs joined by commas:
  page=N      the desk's page size (default: the SyncEngine's)
  depth=N     pages in flight (sync.FETCH_DEPTH)
  procs=N     decoding processes (SyncEngine's decode_processes)
  names=kept  the name index kept in step during the fill (the desk's way since stop 19); names=rebuilt drops its
              triggers before the sync, as desks up to stop 18 did, so the sync rebuilds it at the end
  layout=columns  the answers recorded as a long pass asks for them: the first page by row, the others by column
              (migration 008, the desk's way since stop 20); layout=rows: every page by row, as before
  nice=N      the decoding processes' niceness above the desk's (SyncEngine.decode_nice; 0: the same priority)
  fill=synced  a first sync's pages committed as every other pass's (synchronous=NORMAL); fill=unsynced: without
              waiting for the disk until the pass ends (Store.begin_unsynced_fill, the desk's way since stop 21)
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from bench_link import desk_on_replay, first_sync, fresh_store, record_answers
from bench_server import OUT, CpuMeter, crm_server_exe, say, start_seeded, stop_seeded
from replay_server import INDEX, ReplayProcess, decoded
from shaping_proxy import LinkProcess

from crm_desktop.core import cache, sync
from crm_desktop.core.store import Store

DEFAULT_DEPTH = sync.FETCH_DEPTH
DEFAULT_NICE = sync.DECODE_NICE
# Name searches timed on each filled cache (search.py): prefixes as a CRE types them, a surname, two words.
SEARCHES = ("a", "sa", "sai", "reddy", "sai red", "vivaan reddy", "ku")


class IndexBuild(logging.Handler):
    """The seconds `finish_bulk_fill` reports for its build and `end_unsynced_fill` for its flush (their INFO lines),
    per sync."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: float | None = None
        self.flush_s: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        seconds = float(record.args[0]) if isinstance(record.args, tuple) and record.args else None
        if record.getMessage().startswith("cache indexes built after the first sync"):
            self.seconds = seconds
        elif record.getMessage().startswith("the cache's fill flushed to the disk"):
            self.flush_s = seconds


def parse_variant(text: str) -> dict[str, str]:
    out = dict(part.split("=", 1) for part in text.split(",") if part.strip())
    unknown = set(out) - {"page", "depth", "procs", "names", "layout", "nice", "fill"}
    if out.get("fill", "unsynced") not in ("synced", "unsynced"):
        raise SystemExit("fill is synced or unsynced")
    if unknown:
        raise SystemExit(f"unknown variant key(s) {sorted(unknown)}")
    return out


def run_one(api: Any, replay_pid: int, base: Path, variant: dict[str, str], default_page: int) -> dict[str, Any]:
    page = int(variant.get("page", default_page))
    sync.FETCH_DEPTH = int(variant.get("depth", DEFAULT_DEPTH))
    sync.DECODE_NICE = int(variant.get("nice", DEFAULT_NICE))  # read by each new engine
    sync.UNSYNCED_FILL = variant.get("fill", "unsynced") == "unsynced"  # so is this
    procs = int(variant["procs"]) if "procs" in variant else None
    if variant.get("names", "kept") == "rebuilt":
        store, path = fresh_store(base, "replay")
        assert store.begin_bulk_fill()
        store.close()
        with sqlite3.connect(path) as conn:  # what stop 18's begin_bulk_fill also dropped
            conn.execute("DROP TRIGGER lead_names_insert")
            conn.execute("DROP TRIGGER lead_names_update")
        keep = True
    else:
        keep = False
    built = IndexBuild()
    logging.getLogger("crm_desktop.core.cache").addHandler(built)
    cpu = CpuMeter(replay_pid, None)
    cpu.start()
    try:
        r = first_sync(api, base, "replay", page, keep_cache=keep, decode_processes=procs)
    finally:
        logging.getLogger("crm_desktop.core.cache").removeHandler(built)
    used = cpu.stop()
    return {
        "seconds": r["seconds"],
        "rows": r["rows"],
        "index_s": built.seconds and round(built.seconds, 2),
        "flush_s": built.flush_s and round(built.flush_s, 2),
        "desk_cpu_s": used["client_cpu_s"],
        "search_ms": slowest_search_ms(Path(r["path"])),
        "error": r["error"],
    }


@lru_cache(maxsize=4)
def pace_page(pages_dir: Path) -> str:
    """The recorded page `host_pace_us` decodes (read once per run)."""
    index = json.loads((pages_dir / INDEX).read_text(encoding="utf-8"))
    entry = index["pages"][1 if len(index["pages"]) > 1 else 0]
    return decoded((pages_dir / entry["file"]).read_bytes(), entry["encoding"]).decode("utf-8")


def host_pace_us(pages_dir: Path) -> float:
    """The host's pace this minute, as µs a row of the decoding process's own work (`cache.stage_page`) on the
    second recorded page (the first one a long sync asks by column), best of 3. The same code's first sync on this
    2-core VM took 13-18 s from one run to the next, its CPU-s varying as much (not steal time, which stays ~0.2 %),
    and this figure 9-14 µs a few seconds apart. Taken before and after each sync and printed beside it, it helps to
    tell a variant's effect from the host's minute."""
    text = pace_page(pages_dir)
    best, rows = float("inf"), 1
    for _ in range(3):
        t0 = time.perf_counter()
        _head, _image, rows = cache.stage_page(text)
        best = min(best, time.perf_counter() - t0)
    return round(best / max(rows, 1) * 1e6, 2)


def slowest_search_ms(path: Path) -> float:
    """The slowest of SEARCHES on the filled cache, each the best of 5 (the name index as the fill left it)."""
    with Store(path) as store:
        worst = 0.0
        for text in SEARCHES:
            best = min(timed(store.search, text) for _ in range(5))
            worst = max(worst, best)
    return round(worst * 1000, 2)


def timed(fn: Any, *args: Any) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=OUT / "pgdata")
    ap.add_argument("--leads", type=int, default=1_000_000, help="seed the data dir up to this many first")
    ap.add_argument("--variants", default="", help="variants separated by ';' (default: the desk as it is)")
    ap.add_argument("--where", default="lo,link", help="lo (loopback), link (the shaped link), or both")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rtt-ms", type=float, default=50.0)
    ap.add_argument("--mbit", type=float, default=20.0)
    ap.add_argument("--rerecord", action="store_true", help="record the answers again even when present")
    ap.add_argument("--cache-dir", type=Path, default=OUT / "replay-cache")
    args = ap.parse_args(argv)
    logging.getLogger("crm_desktop.core.cache").setLevel(logging.INFO)  # finish_bulk_fill's timing line
    variants = [parse_variant(v) for v in args.variants.split(";")] if args.variants else [{}]
    wheres = [w.strip() for w in args.where.split(",") if w.strip()]
    default_page = sync.SyncEngine.__init__.__kwdefaults__["page_size"]
    answers = sorted({(int(v.get("page", default_page)), v.get("layout", "columns")) for v in variants})
    base = args.cache_dir.resolve()
    base.mkdir(parents=True, exist_ok=True)
    cluster, server = start_seeded(crm_server_exe(), args.data_dir.resolve(), args.leads, {})
    replays: dict[tuple[int, str], ReplayProcess] = {}
    links: dict[tuple[int, str], LinkProcess] = {}
    try:
        for page, layout in answers:
            where = OUT / f"replay-{args.data_dir.resolve().name}-{page}-{layout}"
            if args.rerecord or not (where / INDEX).exists():
                say(f"[record] the server's answers to a first sync, {page}-row pages by {layout} -> {where}")
                index = record_answers(server.url, server.anon_key, page, where, layout == "columns")
                say(f"[record] {index['rows']:,} rows in {len(index['pages'])} pages, {index['bytes']:,} bytes")
            key = (page, layout)
            replays[key] = ReplayProcess(where).start()
            links[key] = LinkProcess([replays[key].host_port], rtt_ms=args.rtt_ms, mbit=args.mbit).start()
        say(f"[start] variants {variants or ['as is']}; {args.rounds} rounds; {wheres}")
        for rnd in range(1, args.rounds + 1):
            for where in wheres:
                for variant in variants:
                    key = (int(variant.get("page", default_page)), variant.get("layout", "columns"))
                    url = f"http://{replays[key].host_port}" if where == "lo" else links[key].url()
                    api = desk_on_replay(server.url, server.anon_key, url)
                    pace = [host_pace_us(replays[key].pages_dir)]
                    r = run_one(api, replays[key].pid, base, variant, default_page)
                    pace.append(host_pace_us(replays[key].pages_dir))
                    api.close()
                    label = ",".join(f"{k}={v}" for k, v in variant.items()) or "as is"
                    say(
                        f"round {rnd} {where:4s} {label:28s} {r['rows']:,} rows in {r['seconds']:6.2f} s; index"
                        f" build {r['index_s']} s; flush {r['flush_s']} s; desk CPU {r['desk_cpu_s']} s; slowest name"
                        f" search {r['search_ms']} ms; host pace {pace[0]} / {pace[1]} µs/row {r['error']}"
                    )
                    time.sleep(1)
    finally:
        for link in links.values():
            link.stop()
        for replay in replays.values():
            replay.stop()
        stop_seeded(cluster, server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
