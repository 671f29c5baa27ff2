"""Worklist benchmark: My leads, search, the call form and the lead view over a 1M-lead cache, 30k of them this CRE's.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_worklist.py [--cache-leads 1000000] [--mine 30000]

Why: issue 8's goals — open My leads / switch list / re-sort → painted ≤ 50 ms, search as you type p99 per
keystroke ≤ 16 ms, Enter on the call form → list ready ≤ 50 ms, lead view open → history shown ≤ 100 ms with the
server on loopback, cold start to a usable form ≤ 1.5 s and its resident memory ≤ 250 MB. A benchmark, not a test:
it asserts nothing and prints figures.

Set-up: a reference server (`crm-server serve --demo`, a fresh data dir: a few hundred demo leads); cre1 signs in
and its store is prepared as the app does; then the cache file is filled **directly with SQL** (a recursive CTE
inserting --cache-leads synthetic rows through the real schema, so the FTS triggers and every index are paid for):
seeding 1M leads through the server and syncing them would take minutes on this shared 2-core machine and measure
the sync, which bench_client.py already does. --mine of them belong to cre1 (id from my_profile), spread over the
lists: ~10 % never called (Fresh), follow-ups from 30 days back to 30 days ahead, ~5 % with a time (call-backs),
~10 % Won / Lost. Names mix Latin, Telugu and Devanagari. The sync cursor stays at 0, so the server's own demo
leads (real lead_ids, with history) come in through the feed: those are the ones the lead-view phase opens.

Phases:
  1. core    Store.worklist_counts and the first page of every list, re-sorted by name; Store.search for every
             prefix of typed names, last-4 digits and UIDs (no Qt); the same counts and pages for another CRE
             (what a team lead picking a CRE reads: lead_cache, not my_leads), first read and again.
  2. ui      the real MainWindow: My leads shown → first page painted; each list button → painted; header sort →
             painted; search dialog keystrokes (QTest key events) → results shown, per keystroke; Enter in the
             call form → the list reloaded and repainted with the call laid over, and (its own clock from the
             same key press) → the call on disk; lead view open → lead_detail's history drawn.
  3. cold    a child process: interpreter start → sign-in → the window shown with the form usable; its RSS then
             and after My leads has its counts (the cache file is the one built above).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from bench_server import Server, crm_server_exe, lat_summary, say

ROOT = Path(__file__).resolve().parent.parent

LATIN_FIRST = ["Ravi", "Ramesh", "Suresh", "Anitha", "Priya", "Kiran", "Lakshmi", "Venkat", "Srinivas", "Meena",
               "Farooq", "Imran", "Sai", "Divya", "Harish", "Naveen", "Swathi", "Prakash", "Ajay", "José"]  # fmt: skip
LATIN_LAST = ["Kumar", "Reddy", "Rao", "Sharma", "Naidu", "Khan", "Babu", "Devi", "Varma", "Goud", "Álvarez"]
TELUGU = ["రమేష్ బాబు", "సురేష్ రెడ్డి", "లక్ష్మి దేవి", "కిరణ్ కుమార్"]
DEVANAGARI = ["रमेश कुमार", "सुरेश शर्मा", "प्रिया देवी", "अजय वर्मा"]


OTHER = "00000000-0000-0000-0000-000000000005"  # one of build_cache's 32 other owners


def build_cache(path: Path, n: int, mine: int, me: str, seed: int) -> float:
    """Fill the (already migrated) cache file with n synthetic leads, `mine` of them owned by `me`; seconds taken."""
    rng = random.Random(seed)
    names = [f"{f} {last}" for f in LATIN_FIRST for last in LATIN_LAST] + TELUGU * 8 + DEVANAGARI * 8
    others = [f"00000000-0000-0000-0000-{i:012d}" for i in range(1, 33)]
    today = date.today()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("CREATE TEMP TABLE names (i INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO temp.names VALUES (?, ?)", list(enumerate(names)))
    conn.execute("CREATE TEMP TABLE owners (i INTEGER PRIMARY KEY, id TEXT)")
    conn.executemany("INSERT INTO temp.owners VALUES (?, ?)", list(enumerate(others)))
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    # Every mine_every-th row is cre1's. Phones +9170000000000 + a scrambled n, unique; lead_ids 10M+ (not on the
    # server: the lead-view phase opens the server's own leads instead).
    mine_every = max(n // max(mine, 1), 1)
    conn.execute(
        """
        WITH RECURSIVE seq(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM seq WHERE k < :n - 1),
        r AS (SELECT k, (k * 7919 + 13) % 1000003 AS h, abs(random()) % 1000 AS r1, abs(random()) % 61 AS r2
                FROM seq)
        INSERT INTO lead_cache (phone, change_id, lead_id, uid, customer_name, sources, lead_status, final_status,
                                cre_name, ps_name, branch, created_at, follow_up_date, cre_id, lead_category,
                                model_interested, follow_up_at, last_call_at, call_count, won_at, lost_at,
                                updated_at, test_drive_done, ps_email, refill)
        SELECT printf('+917%09d', k), 0, 10000000 + k, printf('GA-%04d-%07d', k % 10000, k),
               (SELECT name FROM temp.names WHERE i = h % :names), '[{"source":"META","sub_source":"Meta Know"}]',
               CASE WHEN r1 < 100 THEN NULL ELSE 'Interested' END,
               CASE WHEN r1 BETWEEN 100 AND 149 THEN 'Won' WHEN r1 BETWEEN 150 AND 199 THEN 'Lost' ELSE 'Pending' END,
               CASE WHEN k % :every = 0 THEN 'Asha (bench)' ELSE 'Other CRE' END,
               CASE WHEN r1 % 7 = 0 THEN 'Suresh PS' END, 'ATTAPUR',
               date(:today, printf('-%d days', 30 + r2)) || 'T10:00:00+00:00',
               CASE WHEN r1 >= 100 THEN date(:today, printf('%+d days', r2 - 30)) END,
               CASE WHEN k % :every = 0 THEN :me ELSE (SELECT id FROM temp.owners WHERE i = k % 32) END,
               'Warm', '450X',
               CASE WHEN r1 >= 200 AND r1 < 250 THEN date(:today, printf('%+d days', r2 - 30)) || 'T11:30:00+00:00'
               END,
               CASE WHEN r1 >= 100 THEN date(:today, '-31 days') || 'T10:00:00+00:00' END,
               CASE WHEN r1 < 100 THEN 0 ELSE 1 + r1 % 4 END,
               CASE WHEN r1 BETWEEN 100 AND 149 THEN date(:today, printf('-%d days', r2 % 20)) || 'T10:00:00+00:00'
               END,
               CASE WHEN r1 BETWEEN 150 AND 199 THEN date(:today, printf('-%d days', r2 % 20)) || 'T10:00:00+00:00'
               END,
               date(:today, '-1 days') || 'T10:00:00+00:00', 0, NULL, 0
          FROM r
        """,
        {"n": n, "names": len(names), "every": mine_every, "today": today.isoformat(), "me": me},
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA optimize")
    conn.close()
    _ = rng
    return time.perf_counter() - t0


def time_list(store: Any, cre: str, which: Any, today: date) -> tuple[list[float], float]:
    """One of a CRE's lists, its first page three times in its natural order, then once by name: (ms each, ms)."""
    first = []
    for _ in range(3):
        t0 = time.perf_counter()
        store.worklist_page(cre, which, today, limit=200)
        first.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    store.worklist_page(cre, which, today, sort="customer_name", limit=200)
    return first, (time.perf_counter() - t0) * 1000


def bench_core(path: Path, me: str, rng: random.Random) -> dict[str, Any]:
    from crm_desktop.core.search import query_kind
    from crm_desktop.core.store import Store
    from crm_desktop.core.worklist import WorkList

    out: dict[str, Any] = {}
    store = Store(path)
    try:
        today = date.today()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            counts = store.worklist_counts(me, today)
            times.append((time.perf_counter() - t0) * 1000)
        out["counts"] = {w.value: counts[w] for w in WorkList}
        out["counts_ms"] = lat_summary(times)
        for w in WorkList:
            first, sorted_ms = time_list(store, me, w, today)
            out[f"page_{w.value}"] = {"first_page_ms": round(min(first), 2), "by_name_ms": round(sorted_ms, 2)}
        # Search: every prefix of typed names, last-4 digits, UID prefixes.
        typed = ["Ravi Kumar", "sures", "lakshmi", "José Álv", "రమేష్", "रमेश कु", "Swathi Goud"]
        per_key = []
        for text in typed:
            for i in range(1, len(text) + 1):
                t0 = time.perf_counter()
                store.search(text[:i])
                per_key.append((time.perf_counter() - t0) * 1000)
        out["search_name_per_keystroke_ms"] = lat_summary(per_key)
        digits = []
        for _ in range(200):
            last4 = f"{rng.randrange(10000):04d}"
            t0 = time.perf_counter()
            store.search(last4)
            digits.append((time.perf_counter() - t0) * 1000)
        out["search_last4_ms"] = lat_summary(digits)
        uids = []
        for _ in range(200):
            prefix = f"GA-{rng.randrange(10000):04d}"
            assert query_kind(prefix) == "uid"
            t0 = time.perf_counter()
            store.search(prefix)
            uids.append((time.perf_counter() - t0) * 1000)
        out["search_uid_ms"] = lat_summary(uids)
        # A team lead looking at another CRE's lists: read from lead_cache itself (my_leads holds the desk's own
        # CRE only). OTHER owns ~1/32 of the other rows, as many as cre1. The first read of each is timed too: a
        # list that reads the rows of one CRE reads pages from all over the file.
        other_counts = []
        for _ in range(5):
            t0 = time.perf_counter()
            store.worklist_counts(OTHER, today)
            other_counts.append((time.perf_counter() - t0) * 1000)
        out["other_cre_counts_ms"] = lat_summary(other_counts)
        for w in WorkList:
            first, sorted_ms = time_list(store, OTHER, w, today)
            out[f"other_cre_page_{w.value}"] = {"first_ms": round(first[0], 2), "again_ms": round(min(first[1:]), 2),
                                                "by_name_ms": round(sorted_ms, 2)}  # fmt: skip
    finally:
        store.close()
    return out


def _pump_until(cond: Any, timeout: float = 30.0) -> float | None:
    from PySide6.QtWidgets import QApplication

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        QApplication.processEvents()
        if cond():
            return (time.perf_counter() - t0) * 1000
    return None


def bench_ui(server: Server, work: Path, me: str) -> dict[str, Any]:
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from crm_desktop.core.api import ApiClient
    from crm_desktop.core.store import Store
    from crm_desktop.core.sync import prepare_local_desk
    from crm_desktop.core.worklist import WorkList
    from crm_desktop.ui.main_window import MainWindow
    from crm_desktop.ui.session import DeskSession
    from crm_desktop.ui.settings import Settings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    api = ApiClient(server.url, server.anon_key)
    api.login("cre1@demo.local", "demo1234")
    path = work / "cre1.sqlite3"
    profile, _ = prepare_local_desk(api, path)
    settings = Settings(QSettings(str(work / "cre1.ini"), QSettings.Format.IniFormat))
    session = DeskSession(api, path, profile, poll_interval=15.0)
    window = MainWindow(session, settings)
    loaded: list[bool] = []
    window.data_loaded.connect(lambda: loaded.append(True))
    session.start()
    window.show()
    _pump_until(lambda: bool(loaded), 120)
    tab = window.my_leads
    out: dict[str, Any] = {}

    def painted_after(action: Any) -> float | None:
        got: list[int] = []
        tab.model.page_loaded.connect(got.append)
        t0 = time.perf_counter()
        action()
        ok = _pump_until(lambda: bool(got), 10)
        tab.table.viewport().repaint()
        ms = (time.perf_counter() - t0) * 1000
        tab.model.page_loaded.disconnect(got.append)
        return ms if ok is not None else None

    window.tabs.setCurrentWidget(tab)
    _pump_until(lambda: not tab.model.is_loading(), 10)
    opens = [painted_after(lambda: tab.show_list(WorkList.FRESH)) for _ in range(5)]
    out["open_my_leads_ms"] = lat_summary([x for x in opens if x is not None])
    switches = []
    for _ in range(3):
        for w in WorkList:
            switches.append(painted_after(lambda w=w: tab.show_list(w)))
    out["switch_list_ms"] = lat_summary([x for x in switches if x is not None])
    tab.show_list(WorkList.PENDING)
    _pump_until(lambda: not tab.model.is_loading(), 10)
    sorts = []
    for col in range(8):
        for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
            sorts.append(painted_after(lambda col=col, order=order: tab.model.sort(col, order)))
    out["resort_ms"] = lat_summary([x for x in sorts if x is not None])
    out["pending_rows"] = tab.counts.get(WorkList.PENDING)

    # Search, per keystroke, through the dialog (real key events for ASCII; others as input-method text events).
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QKeyEvent

    dialog = window.search
    dialog.open_search()
    keys: list[float] = []
    for text in ["Ravi Kumar", "sures", "lakshmi", "Swathi Goud", "Prakash Naidu", "రమేష్", "रमेश कु"]:
        dialog.field.clear()
        _pump_until(lambda: True, 0.01)
        for i, ch in enumerate(text):
            shown: list[str] = []
            want = text[: i + 1]

            def on_shown(t: str, _n: int, shown: list[str] = shown) -> None:
                shown.append(t)

            dialog.results_shown.connect(on_shown)
            t0 = time.perf_counter()
            if ch.isascii():
                QTest.keyClick(dialog.field, ch)
            else:
                QApplication.sendEvent(dialog.field, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_unknown,
                                                               Qt.KeyboardModifier.NoModifier, ch))  # fmt: skip
            ok = _pump_until(lambda want=want, shown=shown: want in shown or not want.strip(), 5)
            if ok is not None and want.strip():
                keys.append((time.perf_counter() - t0) * 1000)
            dialog.results_shown.disconnect(on_shown)
    out["search_keystroke_ms"] = lat_summary(keys)
    dialog.hide()

    # Enter on the call form → the list reloaded with the call laid over it (repainted), and → the call on disk.
    # Two clocks from the same key press: the list does not wait for the disk (the call is laid over from memory
    # until its commit), so neither is measured after the other. Each call is on disk before the next Enter.
    tab.show_list(WorkList.PENDING)
    _pump_until(lambda: not tab.model.is_loading(), 10)
    enters, on_disk, shown_unsent = [], [], 0
    for i in range(20):
        tab.table.setCurrentIndex(tab.model.index(i, 0))
        tab.open_current()
        called = tab.current_lead()
        form = tab.lead_view.form
        form.lead_status.set_value("Interested")
        queued: list[float] = []
        reloaded: list[float] = []

        def on_queued(_item: Any, queued: list[float] = queued) -> None:
            queued.append(time.perf_counter())

        def on_page(_rows: int, reloaded: list[float] = reloaded) -> None:
            if not reloaded:
                tab.table.viewport().repaint()  # painted with the page, before anything else runs
                reloaded.append(time.perf_counter())

        tab.lead_view.call_queued.connect(on_queued)
        tab.model.page_loaded.connect(on_page)
        t0 = time.perf_counter()
        QTest.keyClick(form.remark, Qt.Key.Key_Return)
        _pump_until(lambda queued=queued, reloaded=reloaded: bool(queued) and bool(reloaded), 10)
        if reloaded:
            enters.append((reloaded[0] - t0) * 1000)
        if queued:
            on_disk.append((queued[0] - t0) * 1000)
        # The called lead's follow-up moved (to today at the earliest): it left its place in the first page, or is
        # still there marked not sent. Without the call laid over, it would be where it was, unmarked.
        at = tab.model.row_of(called.phone) if called is not None else -1
        lead = tab.model.lead_at(at) if at >= 0 else None
        shown_unsent += bool(lead is None or lead.unsent)
        tab.lead_view.call_queued.disconnect(on_queued)
        tab.model.page_loaded.disconnect(on_page)
    out["enter_to_list_ready_ms"] = lat_summary(enters)
    out["enter_to_call_on_disk_ms"] = lat_summary(on_disk)
    out["enter_list_showed_the_call"] = f"{shown_unsent}/20"  # the called lead moved, or is marked "not sent"

    # Lead view → history: the server's own leads (real ids, with calls).
    with Store(path) as s:
        real = [x[0] for x in s._cache_db().execute("SELECT phone FROM lead_cache WHERE lead_id < 10000000 LIMIT 40")]
        leads = [s.lookup(p) for p in real]
    histories = []
    view = tab.lead_view
    for lead in leads:
        if lead is None:
            continue
        got: list[bool] = []
        view.history_shown.connect(got.append)
        t0 = time.perf_counter()
        window.open_lead(lead)
        ok = _pump_until(lambda got=got: True in got, 10)
        view.timeline.viewport().repaint()
        if ok is not None:
            histories.append((time.perf_counter() - t0) * 1000)
        view.history_shown.disconnect(got.append)
    out["lead_view_history_ms"] = lat_summary(histories)
    session.stop()
    api.close()
    window.close()
    app.processEvents()
    return out


CHILD = r"""
import os, sys, time, json
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
import psutil
t_start = psutil.Process().create_time()
url, key, path, ini = sys.argv[1:5]
from pathlib import Path
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from crm_desktop.core.api import ApiClient
from crm_desktop.core.sync import prepare_local_desk
from crm_desktop.ui.main_window import MainWindow
from crm_desktop.ui.session import DeskSession
from crm_desktop.ui.settings import Settings
app = QApplication(sys.argv[:1])
t_imported = time.time()
api = ApiClient(url, key)
api.login("cre1@demo.local", "demo1234")
profile, _ = prepare_local_desk(api, Path(path))
t_signed = time.time()
session = DeskSession(api, Path(path), profile, poll_interval=15.0)
window = MainWindow(session, Settings(QSettings(ini, QSettings.Format.IniFormat)))
session.start()
window.show()
app.processEvents()
window.form.phone.setFocus()
app.processEvents()
t_form = time.time()
rss_form = psutil.Process().memory_info().rss
tab = window.my_leads
deadline = time.time() + 30
while (not tab.counts or tab.model.is_loading()) and time.time() < deadline:
    app.processEvents()
t_lists = time.time()
rss_lists = psutil.Process().memory_info().rss
session.stop()
print(json.dumps({"start_to_imported_s": t_imported - t_start, "start_to_signed_in_s": t_signed - t_start,
                  "start_to_form_s": t_form - t_start, "start_to_my_leads_counts_s": t_lists - t_start,
                  "rss_at_form_mb": rss_form / 2**20, "rss_with_my_leads_mb": rss_lists / 2**20}))
os._exit(0)
"""


def bench_cold(server: Server, work: Path, runs: int) -> dict[str, Any]:
    results = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, server.url, server.anon_key, str(work / "cre1.sqlite3"),
             str(work / "cold.ini")],
            capture_output=True, text=True, timeout=180, cwd=ROOT,
        )  # fmt: skip
        line = [x for x in proc.stdout.splitlines() if x.startswith("{")]
        if not line:
            say(f"cold start child failed: {proc.stderr[-2000:]}")
            continue
        results.append(json.loads(line[-1]))
    if not results:
        return {}
    keys = results[0].keys()
    return {k: round(sorted(r[k] for r in results)[len(results) // 2], 3) for k in keys} | {"runs": len(results)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache-leads", type=int, default=1_000_000)
    p.add_argument("--mine", type=int, default=30_000)
    p.add_argument("--cold-runs", type=int, default=3)
    p.add_argument("--phases", default="core,ui,cold")
    p.add_argument("--seed", type=int, default=8)
    args = p.parse_args(argv)
    phases = set(args.phases.split(","))
    rng = random.Random(args.seed)
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-worklist-"))
    server = Server(crm_server_exe(), work / "pgdata")
    result: dict[str, Any] = {"cache_leads": args.cache_leads, "mine": args.mine}
    try:
        say("starting the reference server (--demo) …")
        server.start()
        from crm_desktop.core.api import ApiClient
        from crm_desktop.core.sync import prepare_local_desk

        api = ApiClient(server.url, server.anon_key)
        api.login("cre1@demo.local", "demo1234")
        profile, _ = prepare_local_desk(api, work / "cre1.sqlite3")
        api.close()
        me = str(profile["id"])
        say(f"building the cache: {args.cache_leads:,} leads, {args.mine:,} of cre1's, directly with SQL …")
        result["build_cache_s"] = round(build_cache(work / "cre1.sqlite3", args.cache_leads, args.mine, me,
                                                    args.seed), 1)  # fmt: skip
        result["cache_file_mb"] = round((work / "cre1.sqlite3").stat().st_size / 2**20, 1)
        say(f"  {result['build_cache_s']} s, {result['cache_file_mb']} MB")
        if "core" in phases:
            say("core: counts, pages, search …")
            result["core"] = bench_core(work / "cre1.sqlite3", me, rng)
            say(json.dumps(result["core"], indent=1))
        if "ui" in phases:
            say("ui: My leads, search dialog, call form, lead view …")
            result["ui"] = bench_ui(server, work, me)
            say(json.dumps(result["ui"], indent=1))
        if "cold" in phases:
            say("cold start (child processes) …")
            result["cold"] = bench_cold(server, work, args.cold_runs)
            say(json.dumps(result["cold"], indent=1))
    finally:
        server.stop() if hasattr(server, "stop") else None
        shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "bench" / "out" / f"worklist-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    say(f"written {out}")
    _ = timedelta
    return 0


if __name__ == "__main__":
    sys.exit(main())
