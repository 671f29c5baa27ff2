"""Local store benchmark: the lead cache at a realistic size, and the outbox's durable enqueue.

    .venv/bin/python bench/bench_store.py [--leads 1000000] [--dir DIR] [--keep]

Why: the duplicate banner looks the number up on every keystroke (goal: p99 <= 1 ms with 1M cached leads), a first
sync downloads the whole lead table (goal: >= 50k rows/s into an empty cache, so 1M leads is ~20 s of local work on
top of the download), and the form is cleared only after the lead is committed to the outbox (an fsync per lead:
its latency is what the CRE waits for after Enter). This prints those figures. A benchmark, not a test: it asserts
nothing.

Phases:
  1. sync     apply_changes() over pages of 5,000 synthetic feed rows, sources as parsed lists (what httpx's .json()
              gives the sync worker); only the apply_changes() calls are timed, not building the rows.
  2. lookup   10,000 lookups of random numbers, half cached (hits), half not (misses), after a warm-up.
  3. enqueue  1,000 enqueue() calls, each one committed and fsynced before it returns.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from crm_desktop.core.store import FEED_COLUMNS, Store

PAGE = 5_000
SOURCES = [
    ("GOOGLE", "Google Know"),
    ("META", "Meta Know"),
    ("BTL", "BTL Know"),
    ("OEM", "Web"),
    ("OEM", "Tele"),
    ("OEM", "Affiliate Bikewale"),
]
STATUSES = [None, "RNR", "Interested", "Call me Back", "Not Interested", "Busy on another Call"]
BRANCHES = [None, "SOMAJIGUDA", "ATTAPUR", "KOMPALLY", "MALAKPET", "SRINAGAR COLONY", "TOLICHOWKI"]
CRES = ["Anitha Reddy", "Ravi Kumar", "Sana Fatima", "Pradeep Goud", "Lakshmi Devi"]
PS = [None, "Kiran Rao", "Mahesh Babu", "Divya Sri"]
NAMES = ["Srinivas", "Lakshmi", "Mohammed Irfan", "Venkatesh", "Priya", "Rahul Sharma", "Ayesha Begum", "Naveen"]


def phones(n: int, rng: random.Random) -> list[str]:
    """n distinct Indian mobiles in E.164, in random order (the feed's order has nothing to do with the number)."""
    seen: set[str] = set()
    while len(seen) < n:
        seen.add(f"+91{rng.randint(6, 9)}{rng.randrange(10**9):09d}")
    out = list(seen)
    rng.shuffle(out)
    return out


def page_rows(start: int, numbers: list[str], rng: random.Random) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for i, phone in enumerate(numbers):
        n = start + i + 1
        src, sub = rng.choice(SOURCES)
        sources: list[dict[str, str]] = [{"source": src, "sub_source": sub, "at": "2026-11-28T10:00:00+00:00"}]
        if rng.random() < 0.1:
            src2, sub2 = rng.choice(SOURCES)
            sources.append({"source": src2, "sub_source": sub2, "at": "2026-12-01T11:30:00+00:00"})
        status = rng.choice(STATUSES)
        rows.append(
            [
                n,  # change_id
                n,  # lead_id
                phone,
                f"GA-{phone[-4:]}-{n % 10000:04d}",
                rng.choice(NAMES),
                sources,
                status,
                "Pending",
                rng.choice(CRES),
                rng.choice(PS),
                rng.choice(BRANCHES),
                "2026-11-28T10:00:00.123456+00:00",
                None if status == "RNR" else "2026-12-05",
            ]
        )
    return rows


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--dir", type=Path, default=None, help="where to put the files (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the files afterwards")
    args = ap.parse_args(argv)

    rng = random.Random(20261128)
    base = args.dir or Path(tempfile.mkdtemp(prefix="bench-store-"))
    base.mkdir(parents=True, exist_ok=True)
    path = base / "bench.sqlite3"
    for p in base.glob("bench.*"):
        p.unlink()
    print(f"files in {base}; SQLite {__import__('sqlite3').sqlite_version}; Python {sys.version.split()[0]}")

    store, _ = Store.open_or_rebuild(path)
    try:
        # 1. sync
        numbers = phones(args.leads + 5_000, rng)
        cached, absent = numbers[: args.leads], numbers[args.leads :]
        columns = list(FEED_COLUMNS)
        spent = 0.0
        page_times: list[float] = []
        for start in range(0, len(cached), PAGE):
            rows = page_rows(start, cached[start : start + PAGE], rng)
            t0 = time.perf_counter()
            store.apply_changes(columns, rows, start + len(rows))
            dt = time.perf_counter() - t0
            spent += dt
            page_times.append(dt)
        rate = len(cached) / spent
        print(
            f"sync     {len(cached):,} rows in {spent:.2f} s of apply_changes = {rate:,.0f} rows/s "
            f"(page of {PAGE:,}: median {statistics.median(page_times) * 1e3:.0f} ms, "
            f"max {max(page_times) * 1e3:.0f} ms; goal >= 50,000 rows/s)"
        )
        print(f"         cache_count {store.cache_count():,}, cursor {store.sync_cursor():,}")
        size_mb = sum(p.stat().st_size for p in base.glob("bench.sqlite3*")) / 2**20
        print(f"         cache files (db + WAL) {size_mb:,.0f} MB")

        # 2. lookup, from a fresh Store as a reader thread would have (its own connection, cold page cache)
        reader = Store(path)
        try:
            probes = [rng.choice(cached) for _ in range(5_000)] + [rng.choice(absent) for _ in range(5_000)]
            rng.shuffle(probes)
            for phone in probes[:500]:  # warm-up: statement cache, first pages
                reader.lookup(phone)
            samples: list[float] = []
            hits = 0
            for phone in probes:
                t0 = time.perf_counter()
                found = reader.lookup(phone)
                samples.append(time.perf_counter() - t0)
                hits += found is not None
            print(
                f"lookup   {len(probes):,} lookups ({hits:,} hits): p50 {pct(samples, 50) * 1e6:.1f} us, "
                f"p99 {pct(samples, 99) * 1e6:.1f} us, max {max(samples) * 1e6:.0f} us (goal p99 <= 1 ms)"
            )
        finally:
            reader.close()

        # 3. enqueue
        samples = []
        for i in range(1_000):
            payload = {
                "customer_name": rng.choice(NAMES),
                "phone": rng.choice(absent),
                "source": "GOOGLE",
                "sub_source": "Google Know",
                "lead_status": "Interested",
                "branch": "ATTAPUR",
                "final_status": "Pending",
                "follow_up_date": "2026-12-05",
                "remark": f"bench {i}",
            }
            t0 = time.perf_counter()
            store.enqueue(payload)
            samples.append(time.perf_counter() - t0)
        print(
            f"enqueue  1,000 durable enqueues (synchronous=FULL, commit + fsync each): "
            f"p50 {pct(samples, 50) * 1e3:.2f} ms, p99 {pct(samples, 99) * 1e3:.2f} ms, max {max(samples) * 1e3:.2f} ms"
        )
        samples = []
        for _ in range(100):
            t0 = time.perf_counter()
            store.next_due(time.time())
            samples.append(time.perf_counter() - t0)
        print(f"         next_due with {store.pending_count():,} queued: p50 {pct(samples, 50) * 1e6:.0f} us")
    finally:
        store.close()
        if not args.keep and args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
