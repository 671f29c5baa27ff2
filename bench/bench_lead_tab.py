"""The team lead's actions, end to end: a drill-down at 1M cached leads, and a 10k-row XLSX import.

Why: the dashboard's numbers now open lists (from the local cache, so they must be instant at the desk's real size)
and the morning's campaign file is loaded from the tab (most of its time is the server's batches).

What it does:
  1. cache    a cache file of --cached synthetic leads (Store.apply_changes, feed pages of 5,000; reused when the
              file already holds them): ~12 % overdue, ~3 % due today, 8 CREs, 7 branches, 60 days of creation.
  2. drill    a real QApplication (offscreen) and the app's `LeadListDialog` (the My leads list and the lead view)
              for each case (overdue; overdue of one CRE; due today in one branch; new leads of the last 7 days; one
              sub-source; leads called today; one CRE's calls): the clock starts when the dialog is made (what a
              tile click does), stops after the list's first page is on screen and a synchronous repaint of the
              dialog (the goal), and again when the count is on screen (counted after the paint). --repeats times
              each, after one warm-up. Also the page and count queries alone.
  3. import   `crm-server serve` with --server-leads seeded leads; a 10,000-row XLSX (9,500 new numbers, 500 bad
              rows of every kind) written with openpyxl; the app's `ImportDialog` over the same 1M-lead cache, signed
              in as lead@demo.local: the clock starts at `open_file` and stops on the summary page (read, map,
              preview with every verdict, 10 batches of <= 1,000 through `import_leads`, the rejected rows saved).

Figures on a small shared machine (2 cores here) are what this machine gives: client, uvicorn and PostgreSQL share
the CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_server import OUT, count_leads, crm_server_exe, say, start_seeded, stop_seeded
from PySide6.QtWidgets import QApplication

from crm_desktop.core.drill import DrillFilter, desk_today, drill_count, drill_page, open_cache_readonly
from crm_desktop.core.store import FEED_COLUMNS, Store

DRILL_GOAL_MS = 100.0
IMPORT_GOAL_S = 10.0
CRES = ["Asha Reddy", "Imran Khan", "Lakshmi Narayan", "Sana Fatima", "Pradeep Goud", "Ravi Kumar", "Divya Sri",
        "Naveen Rao"]  # fmt: skip
BRANCHES = ["SOMAJIGUDA", "ATTAPUR", "KOMPALLY", "MALAKPET", "SRINAGAR COLONY", "TOLICHOWKI", "VANASTHALIPURAM"]
SOURCES = [("GOOGLE", "Google Know"), ("META", "Meta Know"), ("BTL", "BTL Know"), ("OEM", "Web"),
           ("OEM", "Affiliate Bikewale")]  # fmt: skip
STATUSES = ["RNR", "Interested", "Call me Back", "Not Interested", "Busy on another Call"]


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return round(s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))], 1)


CRE_IDS = {name: f"00000000-0000-4000-8000-{i:012d}" for i, name in enumerate(CRES, 1)}
# The feed's columns the synthetic cache fills: the lead-life ones (owner id, last call, calls) too, as migration 005's
# feed sends them, so the owner and the calls drill-downs read what a real cache holds.
BENCH_COLUMNS = (*FEED_COLUMNS, "cre_id", "call_count", "last_call_at")


def feed_rows(start: int, count: int, rng: random.Random, today: date) -> list[list[Any]]:
    rows = []
    now = datetime(today.year, today.month, today.day, 6, 0)  # 11:30 in Hyderabad, as UTC
    for i in range(count):
        n = start + i + 1
        phone = f"+91{6 + n % 4}{n:09d}"
        src, sub = rng.choice(SOURCES)
        created = datetime(today.year, today.month, today.day, 4, 30) - timedelta(days=rng.randrange(60))
        final = "Pending" if rng.random() < 0.85 else rng.choice(["Won", "Lost"])
        r = rng.random()
        follow = today - timedelta(days=1 + rng.randrange(20)) if r < 0.14 else today if r < 0.175 else None
        if follow is None and final == "Pending":
            follow = today + timedelta(days=1 + rng.randrange(10))
        # ~70 % called at least once; the last call between the lead's creation and now.
        calls = 0 if rng.random() < 0.3 else 1 + rng.randrange(6)
        last_call = created + (now - created) * rng.random() if calls else None
        cre = rng.choice(CRES)
        values = {
            "change_id": n, "lead_id": n, "phone": phone, "uid": f"GA-{phone[-4:]}-{n % 10000:04d}",
            "customer_name": f"Lead {n}", "sources": [{"source": src, "sub_source": sub, "at": created.isoformat()}],
            "lead_status": rng.choice(STATUSES), "final_status": final, "cre_name": cre,
            "ps_name": None, "branch": rng.choice(BRANCHES), "created_at": created.isoformat() + "+00:00",
            "follow_up_date": follow.isoformat() if follow else None, "cre_id": CRE_IDS[cre], "call_count": calls,
            "last_call_at": last_call.isoformat(timespec="seconds") + "+00:00" if last_call else None,
        }  # fmt: skip
        rows.append([values[c] for c in BENCH_COLUMNS])
    return rows


def build_cache(path: Path, leads: int) -> dict[str, Any]:
    store = Store(path)
    try:
        have = store.cache_count()
        has_owner_ids = store._cache_db().execute("SELECT 1 FROM lead_cache WHERE cre_id IS NOT NULL LIMIT 1")
        if have >= leads and has_owner_ids.fetchone():  # an older bench's file (no owner ids) is made again
            say(f"[cache] reusing {path}: {have:,} leads")
            return {"reused": True, "leads": have}
        store.clear_cache()
        rng = random.Random(7)
        today = desk_today()
        t0 = time.perf_counter()
        for start in range(0, leads, 5000):
            store.apply_changes(BENCH_COLUMNS, feed_rows(start, min(5000, leads - start), rng, today), start + 5000)
        took = time.perf_counter() - t0
        say(f"[cache] {leads:,} leads written in {took:.1f} s")
        return {"reused": False, "leads": leads, "seconds": round(took, 1)}
    finally:
        store.close()


# What the drill-down needs from the cache at 1M leads. Since cache migration 4 the cache makes these itself (cache.py
# LIST_INDEXES); the bench's modes still drop and remake them to measure with and without. Each serves one
# kind of list in the order drill.py reads it, so a page stops after 200 index entries, and its count is a range of
# the same index. Partial on Pending: the follow-up lists read a small index and never the table for their ids.
# One CRE's follow-ups need none: the cache's lead_cache_cre_lists (cre_id, final_status, follow_up_date, ...)
# serves them (a CRE row gives the owner's id); a first version's lead_cache_owner_follow_up, by cre_name, served no
# list once the feed sent owner ids. Measured without each: see bench/README.md.
SUGGESTED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS lead_cache_pending_follow_up ON lead_cache (follow_up_date, lead_id)"
    " WHERE final_status = 'Pending'",
    "CREATE INDEX IF NOT EXISTS lead_cache_created ON lead_cache (created_at)",
    "CREATE INDEX IF NOT EXISTS lead_cache_branch_follow_up ON lead_cache (branch, follow_up_date, lead_id)"
    " WHERE final_status = 'Pending'",
    # The "Calls made" lists: leads by their last call, newest first; one CRE's (a row's Calls column) by owner.
    "CREATE INDEX IF NOT EXISTS lead_cache_last_call ON lead_cache (last_call_at)",
    "CREATE INDEX IF NOT EXISTS lead_cache_owner_last_call ON lead_cache (cre_id, last_call_at)",
)


def migration_indexes() -> dict[str, str]:
    """The indexes the cache's own migrations make (a fresh cache file's), name -> SQL: these are in every mode."""
    import sqlite3

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "fresh.sqlite3")
        store.cache_count()  # the cache file is made (and migrated) on first use
        store.close()
        conn = sqlite3.connect(Path(tmp) / "fresh.sqlite3")
        try:
            rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            return dict(rows.fetchall())
        finally:
            conn.close()


def set_indexes(path: Path, wanted: bool) -> list[str]:
    """The cache's migration indexes (made again if an older bench dropped them), with SUGGESTED_INDEXES only when
    `wanted` (the cache as migrated) and without them otherwise (what they buy). Any other index is dropped, so an
    edit of SUGGESTED_INDEXES takes effect."""
    import sqlite3

    keep = migration_indexes()
    if not wanted:  # the cache makes them itself since migration 4: "without" takes them out to show what they buy
        suggested_names = {sql.split(" ON ")[0].split()[-1] for sql in SUGGESTED_INDEXES}
        keep = {name: sql for name, sql in keep.items() if name not in suggested_names}
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")]
        for name in names:
            if name not in keep:
                conn.execute(f"DROP INDEX {name}")  # names from sqlite_master, ours
        t0 = time.perf_counter()
        for name, sql in keep.items():
            if name not in names:
                conn.execute(sql)  # the cache's own SQL, from a freshly migrated file
        if wanted:
            for sql in SUGGESTED_INDEXES:
                conn.execute(sql)
        suggested = " with SUGGESTED_INDEXES" if wanted else ""
        say(f"[cache] indexes in place{suggested} ({time.perf_counter() - t0:.1f} s)")
        conn.commit()
        conn.execute("ANALYZE")
        conn.commit()
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
    finally:
        conn.close()


def drill_cases() -> list[tuple[str, DrillFilter]]:
    today = desk_today()
    return [
        ("overdue (all)", DrillFilter(title="Overdue", follow_up="overdue")),
        ("overdue of one CRE", DrillFilter(title="Overdue · Asha", follow_up="overdue", cre_id=CRE_IDS["Asha Reddy"],
                                           cre_name="Asha Reddy")),  # as a CRE row gives it: the owner's id
        ("due today, one branch", DrillFilter(title="Due today", follow_up="due_today", branch="ATTAPUR")),
        ("new leads, 7 days", DrillFilter(title="New", date_from=today - timedelta(days=6), date_to=today)),
        ("one sub-source, 7 days",
         DrillFilter(sub_source="Meta Know", date_from=today - timedelta(days=6), date_to=today)),
        ("leads called, today", DrillFilter(title="Called", called_from=today, called_to=today)),
        ("calls of one CRE, 7 days",
         DrillFilter(called_from=today - timedelta(days=6), called_to=today, cre_id=CRE_IDS["Asha Reddy"],
                     cre_name="Asha Reddy")),
    ]  # fmt: skip


def bench_drill(app: QApplication, cache: Path, repeats: int) -> list[dict[str, Any]]:
    """Each case as a tile click does it in the app: the drill-down dialog made (with the lead view, over a desk
    session that is never started), shown, until its first page is painted; then until the count is on screen."""
    from crm_desktop.core.api import ApiClient
    from crm_desktop.ui.reassign import LeadListDialog
    from crm_desktop.ui.session import DeskSession
    from crm_desktop.ui.workers import reader_pool

    out = []
    conn = open_cache_readonly(cache)
    api = ApiClient("http://127.0.0.1:9", "bench")  # never called: no lead is opened
    session = DeskSession(api, cache, {"id": "bench", "role": "team_lead"})
    for name, f in drill_cases():
        page_ms, count_ms, ui_ms, counted_ms, count = [], [], [], [], 0
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            drill_page(conn, f, 0)
            page = (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            count = drill_count(conn, f)
            counting = (time.perf_counter() - t0) * 1000

            t0 = time.perf_counter()
            dialog = LeadListDialog(f, cache, None, session=session)
            dialog.resize(1200, 640)
            shown: list[int] = []
            dialog.page_shown.connect(shown.append)
            dialog.show()
            while not shown:
                app.processEvents()
                time.sleep(0.0005)
            dialog.repaint()  # the list painted with its first page
            ui = (time.perf_counter() - t0) * 1000
            while not dialog.model.counted():
                app.processEvents()
                time.sleep(0.0005)
            dialog.count_label.repaint()
            counted = (time.perf_counter() - t0) * 1000
            assert dialog.model.total() == count, (name, dialog.model.total(), count)
            dialog.close()
            dialog.deleteLater()
            app.processEvents()
            reader_pool().waitForDone(10_000)
            if i:  # the first run warms the page cache and the pool thread's connection
                page_ms.append(page)
                count_ms.append(counting)
                ui_ms.append(ui)
                counted_ms.append(counted)
        row = {
            "case": name, "leads": count, "page_p50_ms": pct(page_ms, 50), "count_p50_ms": pct(count_ms, 50),
            "tile_to_painted_p50_ms": pct(ui_ms, 50), "tile_to_painted_max_ms": round(max(ui_ms), 1),
            "tile_to_count_p50_ms": pct(counted_ms, 50), "tile_to_count_max_ms": round(max(counted_ms), 1),
        }  # fmt: skip
        out.append(row)
        say(
            f"[drill] {name:>24}: {count:>7,} leads; tile -> painted list p50 {row['tile_to_painted_p50_ms']} / max "
            f"{row['tile_to_painted_max_ms']} ms; count shown p50 {row['tile_to_count_p50_ms']} / max "
            f"{row['tile_to_count_max_ms']} ms (queries alone p50: page {row['page_p50_ms']} ms, count "
            f"{row['count_p50_ms']} ms) (goal <= {DRILL_GOAL_MS:g} ms to the painted list)"
        )
    conn.close()
    session.deleteLater()
    api.close()
    return out


def write_xlsx(path: Path, rows: int) -> dict[str, int]:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Leads")
    sheet.append(["id", "created_time", "campaign_name", "full_name", "phone_number", "Vehicle"])
    bad = ["9.19877E+11", "022 2345 6789", "1800 123 4567", "98765", "not given"]
    n_bad = 0
    # 85xxxxxxxx: outside the synthetic cache's numbers; a new range each run, so every run creates its leads.
    base = 500_000_000 + random.randrange(400_000_000)
    for i in range(rows):
        mobile = f"8{base + i:09d}"
        if i % 20 == 19:
            phone: Any = bad[i % len(bad)]
            n_bad += 1
        elif i % 2:
            phone = float("91" + mobile)  # an Excel number cell
        else:
            phone = f"+91 {mobile[:5]}-{mobile[5:]}"
        sheet.append([i, "2026-11-29T10:15:00+0530", "Rizta Nov", f"Campaign Lead {i}", phone, "Rizta"])
    book.save(path)
    return {"rows": rows, "bad": n_bad}


def bench_import(app: QApplication, cache: Path, server: Any, rows: int, work: Path) -> dict[str, Any]:
    from crm_desktop.core.api import ApiClient
    from crm_desktop.ui.importer import ImportDialog
    from crm_desktop.ui.workers import reader_pool

    path = work / "campaign.xlsx"
    t0 = time.perf_counter()
    made = write_xlsx(path, rows)
    say(f"[import] {path.name}: {rows:,} rows ({made['bad']} bad) written in {time.perf_counter() - t0:.1f} s")
    client = ApiClient(server.url, server.anon_key)
    client.login("lead@demo.local", "demo1234")
    try:
        catalog = client.rpc("catalog", {})
        dialog = ImportDialog(client.rpc, cache, catalog, work / "journal")
        dialog.show()
        dialog.set_source("META", "Meta Know")
        marks: dict[str, float] = {}
        t0 = time.perf_counter()
        dialog.open_file(path)
        while not dialog.preview_button.isEnabled():
            app.processEvents()
            time.sleep(0.001)
        marks["read"] = time.perf_counter() - t0
        dialog.preview()
        while dialog.pages.currentIndex() != 1:
            app.processEvents()
            time.sleep(0.001)
        marks["preview"] = time.perf_counter() - t0
        dialog.start_import()
        while dialog.pages.currentIndex() != 3:
            app.processEvents()
            time.sleep(0.001)
            if dialog.resume_button.isVisible():
                raise RuntimeError(dialog.progress_label.text())
        marks["summary"] = time.perf_counter() - t0
        summary = dialog.summary
        assert summary is not None
        dialog.close()
        reader_pool().waitForDone(30_000)
    finally:
        client.close()
    result = {
        "rows": rows, "bad_rows": made["bad"], "created": summary.created, "rejected": len(summary.rejected),
        "batches": summary.batches_total, "read_s": round(marks["read"], 2), "preview_s": round(marks["preview"], 2),
        "open_to_summary_s": round(marks["summary"], 2),
    }  # fmt: skip
    say(
        f"[import] {rows:,} rows: file read {result['read_s']} s, preview {result['preview_s']} s, summary "
        f"{result['open_to_summary_s']} s ({summary.created:,} created, {len(summary.rejected)} not imported, "
        f"{summary.batches_total} batches) (goal <= {IMPORT_GOAL_S:g} s)"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cached", type=int, default=1_000_000, help="leads in the local cache")
    ap.add_argument("--cache", type=Path, default=OUT / "lead_tab_cache.sqlite3", help="cache file, reused")
    ap.add_argument("--repeats", type=int, default=10, help="timed drill-downs per case")
    ap.add_argument("--import-rows", type=int, default=10_000)
    ap.add_argument("--server-leads", type=int, default=20_000, help="leads seeded on the server for the import")
    ap.add_argument("--data-dir", type=Path, default=OUT / "pgdata_lead_tab", help="embedded PostgreSQL dir")
    ap.add_argument("--skip-import", action="store_true")
    ap.add_argument(
        "--indexes", action="store_true",
        help="add SUGGESTED_INDEXES to the cache file first (the cache has none of them today; see the report)",
    )  # fmt: skip
    ap.add_argument("--server-exe", default=crm_server_exe())
    ap.add_argument("--json", type=Path, default=OUT / "bench_lead_tab.json")
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    OUT.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    say(f"[start] load average {report['loadavg_at_start']} (2 cores, shared)")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    cache = args.cache.resolve()
    report["cache"] = build_cache(cache, args.cached)
    report["indexes"] = set_indexes(cache, args.indexes)
    report["drill"] = bench_drill(app, cache, args.repeats)
    if not args.skip_import:
        data_dir = args.data_dir.resolve()
        cluster, server = start_seeded(args.server_exe, data_dir, args.server_leads, report)
        try:
            say(f"[server] {server.url}: {count_leads(cluster.get_uri()):,} leads")
            with tempfile.TemporaryDirectory() as work:
                report["import"] = bench_import(app, cache, server, args.import_rows, Path(work))
        finally:
            stop_seeded(cluster, server)
    report["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    worst = max(r["tile_to_painted_max_ms"] for r in report["drill"])
    worst_p50 = max(r["tile_to_painted_p50_ms"] for r in report["drill"])
    say("")
    say(f"Summary (load avg start {report['loadavg_at_start']}, end {report['loadavg_at_end']}):")
    say(
        f"  drill-down tile -> painted list at {report['cache']['leads']:,} cached leads"
        f"{' (with the suggested indexes)' if args.indexes else ''}, worst case: p50 {worst_p50} ms, max {worst} ms"
        f"   goal <= {DRILL_GOAL_MS:g} ms ({'met' if worst_p50 <= DRILL_GOAL_MS else 'MISSED'} at p50)"
    )
    if "import" in report:
        s = report["import"]["open_to_summary_s"]
        say(f"  import {args.import_rows:,}-row XLSX, open -> summary: {s} s   goal <= {IMPORT_GOAL_S:g} s "
            f"({'met' if s <= IMPORT_GOAL_S else 'MISSED'})")  # fmt: skip
    say(f"  details: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
