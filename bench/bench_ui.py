"""UI benchmark: what a CRE feels, measured on the real desk window (offscreen) over a 1M-lead cache.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_ui.py [--cache-leads 1000000]

Why: DESIGN.md says the GUI thread never waits on the network or a disk write and that the duplicate banner appears
on the keystroke that completes the number. This drives a real QApplication, DeskSession and MainWindow (as
tests/test_ui_desk.py does) against a real reference server and prints how long the CRE waits, beside the goals. A
benchmark, not a test: it asserts nothing.

Set-up: a small reference server (`crm-server serve --demo` on a fresh data dir; a later `crm-server seed` joins its
running PostgreSQL); cre1's cache file filled with --cache-leads synthetic leads straight through
`Store.apply_changes` (bench_store.py's rows) before the window opens, with the sync cursor left at 0 so the server's
own leads still arrive through the feed; then the window, with the sync engine running (poll every 15 s, the app's
default).

Phases (--phases picks some):
  1. banner   --banner numbers, half cached, half new. The form is cleared, all digits but the last typed with
              `QTest.keyClicks` into the phone field and the events drained; then the clock runs from sending the
              last keystroke until the banner is visible (cached number) or the phone status says "new number".
              Measured twice: waiting in a busy `processEvents()` loop, and with `processEvents(WaitForMoreEvents)`,
              which sleeps until an event arrives as the app's event loop does.
  2. submit   --submits valid leads typed into the form; the clock runs from Enter (in the name field) until the
              phone field is empty and the form enabled (the desk lists the lead as "Saving…" and clears the form
              before the commit), and on until the lead is on disk and its row shows the stored item. The engine
              runs against the live server, so earlier leads are being sent meanwhile. The time to "saved" is split
              into the Enter handler, the hop to the writer thread, the commit, the hop back and the GUI slot.
  3. stall    the engine is stopped; `crm-server seed --leads --stall-sync` adds leads on the server; the transport
              is made slow (every request sleeps --slow-ms first); --stall-leads leads are queued; then, with a 5 ms
              QTimer on the GUI thread recording the gap between ticks, the engine is started and the window's
              event loop runs until every queued lead is done and the sync brought the new leads. Gaps over 16 ms
              are matched against what the engine threads were doing (decoding an answer, apply_feed_page,
              full garbage collections), recorded by wrapping (not changing) those calls and with gc.callbacks; a
              watchdog thread samples every thread's Python stack during long gaps (--no-watch: off).

A/B switches: --stall-page-size (the sync's page size in the stall phase), --stall-decode-processes (the sync's
decoding processes; 0: a decoding thread, as before), --switch-interval (Python's GIL switch interval).
--stress-workers N only pushes N trivial jobs through run_in (the worker crash found here, fixed in
crm_desktop/ui/workers.py; see README).

The machine is small (2 cores here) and shared with other work; client, uvicorn and PostgreSQL share the CPUs.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import httpx
import psutil

# bench/ is the script's directory, hence on sys.path: reuse the other benchmarks' helpers.
from bench_server import PhoneMaker, Server, crm_server_exe, lat_summary, make_lead, pct, say
from bench_store import page_rows
from bench_store import phones as random_phones
from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from crm_desktop.core import phone as phonelib
from crm_desktop.core.api import ApiClient
from crm_desktop.core.models import OutboxItem, OutboxState
from crm_desktop.core.store import FEED_COLUMNS, Store
from crm_desktop.core.sync import SyncProgress, prepare_local_desk
from crm_desktop.ui.app import settle_heap
from crm_desktop.ui.main_window import MainWindow
from crm_desktop.ui.session import DeskSession
from crm_desktop.ui.settings import Settings
from crm_desktop.ui.workers import wait_for_pools

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
GOALS = {"banner_ms": 16.0, "submit_ms": 50.0, "stall_max_ms": 50.0}
PREFILL_PAGE = 5_000


class SlowTransport(httpx.HTTPTransport):
    """A real HTTP transport that sleeps `delay` seconds before each request (0 = a normal transport): a server that
    answers slowly, switched on for the stall phase only."""

    def __init__(self) -> None:
        super().__init__()
        self.delay = 0.0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.delay:
            time.sleep(self.delay)
        return super().handle_request(request)


class Activity:
    """(start, end, what) intervals of the engine threads' work, for matching GUI stalls to their cause."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float, str]] = []
        self._lock = threading.Lock()
        self._gc_start = 0.0
        self.on = False

    def add(self, t0: float, t1: float, what: str) -> None:
        if self.on:
            with self._lock:
                self.spans.append((t0, t1, what))

    def gc_callback(self, phase: str, info: dict[str, Any]) -> None:
        """gc.callbacks hook: a collection of the oldest generation walks every tracked object while holding the
        GIL, whichever thread triggered it."""
        if phase == "start":
            self._gc_start = time.perf_counter()
        elif info.get("generation") == 2:
            self.add(self._gc_start, time.perf_counter(), f"gc gen2 ({threading.current_thread().name})")

    def overlapping(self, t0: float, t1: float) -> list[str]:
        with self._lock:
            return [w for a, b, w in self.spans if a < t1 and b > t0]


class GuiWatch:
    """A watchdog thread: once the GUI thread's timer has not ticked for `threshold` seconds, it records where every
    thread's Python stack is (the GUI thread inside a slot, or in Qt's C++ / waiting for the GIL when its innermost
    Python frame is the event loop call). It needs the GIL itself, so a sample lands when the holder lets go."""

    def __init__(self, ticks: list[float], threshold: float = 0.015) -> None:
        self._ticks = ticks
        self._threshold = threshold
        self._stop = threading.Event()
        self._gui = threading.get_ident()
        self.samples: Counter[str] = Counter()
        self._thread = threading.Thread(target=self._run, name="gui-watch", daemon=True)

    @staticmethod
    def _where(frame: Any, depth: int = 3) -> str:
        out: list[str] = []
        while frame is not None and len(out) < depth:
            code = frame.f_code
            out.append(f"{Path(code.co_filename).stem}.{code.co_name}:{frame.f_lineno}")
            frame = frame.f_back
        return " < ".join(out)

    def _run(self) -> None:
        sampled_for = -1.0
        names = {t.ident: t.name for t in threading.enumerate()}
        while not self._stop.wait(0.002):
            last = self._ticks[-1] if self._ticks else None
            if last is None or last == sampled_for or time.perf_counter() - last < self._threshold:
                continue
            sampled_for = last
            frames = sys._current_frames()
            for ident, frame in frames.items():
                if ident == threading.get_ident():
                    continue
                if ident not in names:
                    names = {t.ident: t.name for t in threading.enumerate()}
                who = "GUI" if ident == self._gui else names.get(ident, str(ident))
                if who == "GUI" or who in ("outbox-push", "cache-pull") or who.startswith("Thread"):
                    self.samples[f"{who}: {self._where(frame)}"] += 1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def instrument(api: ApiClient, activity: Activity) -> Callable[[], None]:
    """Record when the engine threads decode answers and write the cache. Wraps the ApiClient instance's calls and
    `Store.apply_feed_page` (the class: the engine's threads make their own Store objects); returns an undo."""
    http = api._http
    real_post, real_rpc, real_text, real_apply = http.post, api.rpc, api.rpc_text, Store.apply_feed_page
    local = threading.local()

    def post(*args: Any, **kwargs: Any) -> Any:
        try:
            return real_post(*args, **kwargs)
        finally:
            local.http_end = time.perf_counter()

    def timed_call(real: Callable[..., Any], decoding: str) -> Callable[..., Any]:
        def call(name: str, *args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            local.http_end = None
            try:
                return real(name, *args, **kwargs)
            finally:
                t1 = time.perf_counter()
                end = getattr(local, "http_end", None) or t0
                activity.add(t0, end, f"http {name}")
                activity.add(end, t1, f"{decoding} {name}")

        return call

    def apply_feed_page(self: Store, text: str, *args: Any) -> Any:
        t0 = time.perf_counter()
        page = None
        try:
            page = real_apply(self, text, *args)
            return page
        finally:
            rows = f"{page.rows:,} rows" if page is not None else "failed"
            activity.add(t0, time.perf_counter(), f"apply_feed_page ({rows})")

    http.post = post  # type: ignore[method-assign]
    api.rpc = timed_call(real_rpc, "json decode")  # type: ignore[method-assign]
    api.rpc_text = timed_call(real_text, "text decode")  # type: ignore[method-assign]
    Store.apply_feed_page = apply_feed_page  # type: ignore[method-assign]

    def undo() -> None:
        del http.post, api.rpc, api.rpc_text
        Store.apply_feed_page = real_apply  # type: ignore[method-assign]

    return undo


def stress_workers(n: int) -> int:
    """n trivial jobs through `run_in` on the reader pool while the GUI thread processes events (no server, no window):
    the pattern that crashed the desk. Returns the results delivered; a crash ends the process (faulthandler prints
    the threads' stacks)."""
    import crm_desktop.ui.workers as workers

    app = QApplication.instance()
    assert app is not None
    got = [0]

    def count(_: Any) -> None:
        got[0] += 1

    t0 = time.perf_counter()
    for i in range(n):
        workers.run_in(workers.reader_pool(), lambda i=i: i * 2, count)
        if i % 4 == 0:
            app.processEvents()
    wait_until(lambda: got[0] >= n, 30.0, spin=True)
    workers.wait_for_pools()
    say(f"[stress] {got[0]:,} of {n:,} run_in results delivered in {time.perf_counter() - t0:.1f} s, no crash")
    return got[0]


def ms_summary(values: list[float]) -> dict[str, float]:
    s = lat_summary(values)
    return {k: s[k] for k in ("n", "p50_ms", "p99_ms", "max_ms", "mean_ms")}


def wait_until(cond: Callable[[], bool], timeout: float, *, spin: bool) -> float | None:
    """Process events until cond() holds; returns perf_counter() at that moment, None on timeout. `spin`: a busy
    loop of processEvents(); otherwise processEvents(WaitForMoreEvents), which sleeps until an event arrives."""
    app = QApplication.instance()
    assert app is not None
    deadline = time.perf_counter() + timeout
    flags = QEventLoop.ProcessEventsFlag.AllEvents
    if not spin:
        flags |= QEventLoop.ProcessEventsFlag.WaitForMoreEvents
    while True:
        if cond():
            return time.perf_counter()
        if time.perf_counter() > deadline:
            return None
        QApplication.processEvents(flags)


def settle(seconds: float = 0.02) -> None:
    """Drain pending events for a moment (the previous step's lookups and repaints)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.001)


# ----------------------------------------------------------------------------------------------------------- setup


def prefill(path: Path, n: int, extra: int, rng: random.Random) -> tuple[list[str], list[str], float]:
    """Fill the cache with n synthetic leads (bench_store.py's rows), cursor left at 0; returns (cached numbers,
    numbers known to be absent, seconds)."""
    numbers = random_phones(n + extra, rng)
    cached, absent = numbers[:n], numbers[n:]
    columns = list(FEED_COLUMNS)
    t0 = time.perf_counter()
    store, _ = Store.open_or_rebuild(path)
    try:
        for start in range(0, n, PREFILL_PAGE):
            rows = page_rows(start, cached[start : start + PREFILL_PAGE], rng)
            store.apply_changes(columns, rows, 0)
    finally:
        store.close()
    return cached, absent, time.perf_counter() - t0


def open_window(server: Server, work: Path, transport: SlowTransport, freeze_heap: bool = True) -> MainWindow:
    api = ApiClient(server.url, server.anon_key, transport=transport)
    api.login("cre1@demo.local", "demo1234")
    path = work / "cre1.sqlite3"
    profile, _ = prepare_local_desk(api, path)
    settings = Settings(QSettings(str(work / "cre1.ini"), QSettings.Format.IniFormat))
    session = DeskSession(api, path, profile, poll_interval=float(settings.get("sync/interval_s")))
    window = MainWindow(session, settings)
    loaded: list[bool] = []
    window.data_loaded.connect(lambda: loaded.append(True))
    session.start()
    window.show()
    if wait_until(lambda: bool(loaded), 120, spin=False) is None:
        raise RuntimeError("the window never finished loading (catalogue + first sync)")
    if freeze_heap:
        settle_heap()  # as DeskApp does when the window has loaded
    return window


def national(e164: str) -> str:
    return e164.removeprefix("+91")


def typeable(e164: str) -> bool:
    """True when the form takes the number as a mobile: random +91[6-9]... numbers include landline ranges
    (080... is Bengaluru), which the phone field rightly refuses."""
    try:
        return phonelib.normalize(national(e164), "IN") == e164
    except phonelib.InvalidPhone:
        return False


# ---------------------------------------------------------------------------------------------------------- banner


def bench_banner(window: MainWindow, numbers: list[tuple[str, bool]], *, spin: bool) -> dict[str, Any]:
    form = window.form
    lat: dict[str, list[float]] = {"existing": [], "new": []}
    key_ms: list[float] = []
    wrong: list[str] = []
    timeouts = 0
    for e164, cached in numbers:
        form.clear_for_next()
        digits = national(e164)
        QTest.keyClicks(form.phone, digits[:-1])
        settle()

        def shown(e164: str = e164, cached: bool = cached) -> bool:
            if cached:
                return form.banner.isVisible() and form.banner.lead is not None and form.banner.lead.phone == e164
            return "new number" in form.phone_status.text()

        t0 = time.perf_counter()
        QTest.keyClicks(form.phone, digits[-1])
        t_key = time.perf_counter()
        t1 = wait_until(shown, 5.0, spin=spin)
        if t1 is None:
            timeouts += 1
            wrong.append(f"{phonelib.display(e164)} cached={cached}: status {form.phone_status.text()!r}")
            continue
        lat["existing" if cached else "new"].append((t1 - t0) * 1000)
        key_ms.append((t_key - t0) * 1000)
    both = lat["existing"] + lat["new"]
    return {
        "wait": "busy processEvents() loop" if spin else "processEvents(WaitForMoreEvents)",
        "all_ms": ms_summary(both),
        "existing_ms": ms_summary(lat["existing"]),
        "new_ms": ms_summary(lat["new"]),
        "keystroke_handler_ms": ms_summary(key_ms),
        "timeouts": timeouts,
        "timeouts_sample": wrong[:5],
    }


# ---------------------------------------------------------------------------------------------------------- submit


def fill(window: MainWindow, e164: str, name: str) -> None:
    form = window.form
    form.clear_for_next()
    QTest.keyClicks(form.phone, national(e164))
    QTest.keyClicks(form.name, name)
    form.source.set_value("GOOGLE")
    form.sub_source.set_value("Google Know")
    form.lead_status.set_value("Interested")
    form.branch.set_value("SOMAJIGUDA")


def bench_submit(window: MainWindow, numbers: list[str], rng: random.Random) -> dict[str, Any]:
    form = window.form
    done_at: dict[str, float] = {}
    sent_at: dict[str, float] = {}

    def on_item(item: OutboxItem) -> None:
        if item.state is OutboxState.DONE:
            done_at.setdefault(item.payload["phone"], time.perf_counter())

    # Where the time goes, by wrapping (not changing) the two steps: the commit on the writer thread
    # (Store.enqueue, the class: the pool thread has its own Store) and the GUI slot that lists the stored item.
    # The form is cleared in the Enter handler itself, before the commit; "saved" is when the row shows the stored
    # item (the lead on disk).
    marks: dict[str, dict[str, float]] = {}
    real_enqueue, real_queued = Store.enqueue, window._on_item_queued

    def enqueue(self: Store, payload: Any, client_ref: str | None = None) -> OutboxItem:
        m = marks.setdefault(str(payload.get("phone")), {})
        m["commit0"] = time.perf_counter()
        try:
            return real_enqueue(self, payload, client_ref)
        finally:
            m["commit1"] = time.perf_counter()

    def on_item_queued(item: OutboxItem) -> None:
        m = marks.setdefault(str(item.payload.get("phone")), {})
        m["slot0"] = time.perf_counter()
        try:
            real_queued(item)
        finally:
            m["slot1"] = time.perf_counter()

    # Full (generation-2) collections, from any thread: they hold the GIL for their whole walk.
    collections: list[tuple[float, float]] = []
    gc_started: list[float] = []

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            gc_started.append(time.perf_counter())
        elif gc_started:
            collections.append((gc_started.pop(), time.perf_counter()))

    gc.callbacks.append(on_gc)
    Store.enqueue = enqueue  # type: ignore[method-assign]
    window._on_item_queued = on_item_queued  # type: ignore[method-assign]
    window.session.bridge.item_changed.connect(on_item)
    lat: list[float] = []
    spans: list[tuple[float, float]] = []
    saved: list[float] = []
    timeouts: list[str] = []
    steps: dict[str, list[float]] = {"enter_handler": [], "to_writer": [], "commit": [], "to_gui_slot": [],
                                     "gui_slot": []}  # fmt: skip
    for e164 in numbers:
        fill(window, e164, rng.choice(["Ravi Kumar", "Ananya Reddy", "Mohammed Imran", "Sravani Goud"]))
        # The CRE reads the phone status before pressing Enter: the lookup of the typed number has answered.
        wait_until(lambda: "new number" in form.phone_status.text() or form.banner.isVisible(), 5.0, spin=False)

        def ready() -> bool:
            return form.phone.text() == "" and form.isEnabled()

        t0 = time.perf_counter()
        QTest.keyClick(form.name, Qt.Key.Key_Return)
        t_key = time.perf_counter()
        t1 = wait_until(ready, 5.0, spin=True)
        if t1 is None:
            timeouts.append(f"{phonelib.display(e164)}: errors {[k for k, v in form.errors.items() if v.text()]}")
            continue
        lat.append((t1 - t0) * 1000)
        spans.append((t0, t1))
        sent_at[e164] = t0
        wait_until(lambda: len(marks.get(e164, {})) == 4, 10.0, spin=True)  # noqa: B023 (used at once)
        m = marks.get(e164, {})
        if len(m) == 4:
            saved.append((m["slot1"] - t0) * 1000)
            for name, a, b in (("enter_handler", t0, t_key), ("to_writer", t0, m["commit0"]),
                               ("commit", m["commit0"], m["commit1"]), ("to_gui_slot", m["commit1"], m["slot0"]),
                               ("gui_slot", m["slot0"], m["slot1"])):  # fmt: skip
                steps[name].append((b - a) * 1000)
    Store.enqueue = real_enqueue  # type: ignore[method-assign]
    del window._on_item_queued
    gc.callbacks.remove(on_gc)
    slow = [(a, b) for a, b in spans if (b - a) * 1000 > 16]
    slow_with_gc = sum(1 for a, b in slow if any(ga < b and gb > a for ga, gb in collections))
    # Every lead reaches the server (the engine ran throughout); how long after Enter, for the record.
    wait_until(lambda: all(p in done_at for p in sent_at), 60.0, spin=False)
    window.session.bridge.item_changed.disconnect(on_item)
    to_done = [(done_at[p] - t) * 1000 for p, t in sent_at.items() if p in done_at]
    return {
        "engine": "running, live server (sends run concurrently)",
        "enter_to_form_ready_ms": ms_summary(lat),
        "enter_to_saved_ms": ms_summary(saved),
        "gen2_collections": {
            "count": len(collections),
            "max_ms": round(max(((b - a) * 1000 for a, b in collections), default=0.0), 2),
        },
        "form_ready_over_16ms": {"count": len(slow), "during_a_gen2_collection": slow_with_gc},
        "steps_ms": {k: ms_summary(v) for k, v in steps.items()},
        "timeouts": len(timeouts),
        "timeouts_sample": timeouts[:5],
        "enter_to_server_answer_ms": ms_summary(to_done),
        "answered": len(to_done),
    }


# ----------------------------------------------------------------------------------------------------------- stall


def bench_stall(
    window: MainWindow,
    server: Server,
    exe: str,
    data_dir: Path,
    transport: SlowTransport,
    args: argparse.Namespace,
    rng: random.Random,
    phones: PhoneMaker,
) -> dict[str, Any]:
    session = window.session
    engine = session.engine
    engine.stop()
    say(f"[stall] engine stopped; `crm-server seed --leads {args.stall_sync}` on the running server ...")
    t0 = time.perf_counter()
    subprocess.run(
        [exe, "seed", "--leads", str(args.stall_sync), "--data-dir", str(data_dir)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seeded_s = time.perf_counter() - t0
    store = Store(session.store_path)
    refs = {store.enqueue(make_lead(rng, phones(), with_ps=rng.random() < 0.3)).client_ref
            for _ in range(args.stall_leads)}  # fmt: skip
    store.close()
    transport.delay = args.slow_ms / 1000
    if args.stall_page_size:
        engine.page_size = args.stall_page_size
    if args.stall_decode_processes is not None:
        engine.decode_processes = args.stall_decode_processes
    if args.stall_layout is not None:
        engine.by_column = args.stall_layout == "columns"
    if args.stall_decode_nice is not None:
        engine.decode_nice = args.stall_decode_nice
    say(
        f"[stall] a long sync: {engine.decode_processes} decoding process(es) at nice +{engine.decode_nice}, pages by"
        f" column: {engine.by_column}"
    )

    done: set[str] = set()
    pulled = [0]
    pages: list[tuple[float, int, bool]] = []

    def on_item(item: OutboxItem) -> None:
        if item.state is OutboxState.DONE and item.client_ref in refs:
            done.add(item.client_ref)

    def on_progress(p: SyncProgress) -> None:
        pages.append((time.perf_counter(), p.done, p.finished))
        if p.finished:
            pulled[0] += p.done

    session.bridge.item_changed.connect(on_item)
    session.bridge.progress.connect(on_progress)
    activity = Activity()
    undo = instrument(session.api, activity)
    gc.callbacks.append(activity.gc_callback)
    tracked = len(gc.get_objects())
    ticks: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    loop = QEventLoop()
    check = QTimer()
    check.setInterval(50)
    check.timeout.connect(lambda: loop.quit() if len(done) >= len(refs) and pulled[0] >= args.stall_sync else None)
    give_up = QTimer()
    give_up.setSingleShot(True)
    give_up.timeout.connect(loop.quit)
    cpu = psutil.Process()
    watch = GuiWatch(ticks) if args.watch else None
    try:
        activity.on = True
        if watch is not None:
            watch.start()
        timer.start()
        check.start()
        give_up.start(int(args.stall_timeout * 1000))
        c0 = cpu.cpu_times()
        t_start = time.perf_counter()
        engine.start()
        loop.exec()  # the window's real event loop: the GUI thread sleeps between events, as in the app
        t_end = time.perf_counter()
        c1 = cpu.cpu_times()
    finally:
        if watch is not None:
            watch.stop()
        timer.stop()
        check.stop()
        give_up.stop()
        activity.on = False
        gc.callbacks.remove(activity.gc_callback)
        undo()
        transport.delay = 0.0
        session.bridge.item_changed.disconnect(on_item)
        session.bridge.progress.disconnect(on_progress)
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(ticks)]
    worst = sorted(range(len(gaps)), key=lambda i: gaps[i], reverse=True)[:10]
    # HTTP waits release the GIL (socket I/O, the slow transport's sleep): only the CPU-bound steps can hold the GUI.
    causes: Counter[str] = Counter()
    for i in range(len(gaps)):
        if gaps[i] > 16:
            busy = {w.split(" (")[0] for w in activity.overlapping(ticks[i], ticks[i + 1]) if not w.startswith("http")}
            causes[" + ".join(sorted(busy)) or "no answer decoding or cache writing in flight"] += 1
    return {
        "slow_transport_ms": args.slow_ms,
        "page_size": engine.page_size,
        "leads_queued": len(refs),
        "leads_done": len(done),
        "rows_pulled": pulled[0],
        "server_seed_s": round(seeded_s, 1),
        "wall_s": round(t_end - t_start, 2),
        "client_cpu_s": round((c1.user + c1.system) - (c0.user + c0.system), 2),
        "ticks": len(ticks),
        "gap_ms": {
            "p50": round(pct(gaps, 50), 2),
            "p99": round(pct(gaps, 99), 2),
            "max": round(max(gaps), 2) if gaps else float("nan"),
            "over_16ms": sum(g > 16 for g in gaps),
            "over_50ms": sum(g > 50 for g in gaps),
        },
        "gaps_over_16ms_by_cpu_work_in_engine": dict(causes.most_common()),
        "worst_gaps": [
            {
                "gap_ms": round(gaps[i], 1),
                "at_s": round(ticks[i] - t_start, 3),
                "engine_activity": sorted(set(activity.overlapping(ticks[i], ticks[i + 1]))),
            }
            for i in worst
        ],
        "feed_pages": len(pages),
        "gc_tracked_objects_at_start": tracked,
        "gc_gen2_ms": [round((b - a) * 1000, 1) for a, b, w in activity.spans if w.startswith("gc gen2")],
        "progress_delivered_at_s": [(round(t - t_start, 3), done, fin) for t, done, fin in pages],
        "stacks_during_gaps_over_15ms": dict(watch.samples.most_common(25)) if watch is not None else None,
    }


# ------------------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache-leads", type=int, default=1_000_000, help="synthetic leads in cre1's cache")
    ap.add_argument("--banner", type=int, default=300, help="numbers typed (half cached, half new)")
    ap.add_argument("--submits", type=int, default=200)
    ap.add_argument("--stall-leads", type=int, default=200, help="leads drained during the stall phase")
    ap.add_argument("--stall-sync", type=int, default=50_000, help="leads seeded on the server for the stall sync")
    ap.add_argument("--slow-ms", type=float, default=20.0, help="delay before every request in the stall phase")
    ap.add_argument("--stall-timeout", type=float, default=300.0)
    ap.add_argument(
        "--stall-page-size", type=int, default=None, help="the engine's feed page size in the stall phase (A/B)"
    )
    ap.add_argument("--stall-decode-processes", type=int, default=None,
                    help="the engine's decoding processes in the stall phase (A/B; 0: a thread)")  # fmt: skip
    ap.add_argument("--stall-decode-nice", type=int, default=None,
                    help="decoding processes' niceness above the desk's in the stall phase (A/B)")  # fmt: skip
    ap.add_argument("--stall-layout", choices=("rows", "columns"), default=None,
                    help="how a long sync asks for its pages in the stall phase (A/B)")  # fmt: skip
    ap.add_argument("--phases", default="banner,submit,stall", help="which phases to run, comma-separated")
    ap.add_argument("--no-watch", dest="watch", action="store_false", help="no stack sampling during stalls")
    ap.add_argument(
        "--no-settle-heap", action="store_true", help="A/B: skip the app's gc.collect() + gc.freeze() after loading"
    )
    ap.add_argument(
        "--stress-workers",
        type=int,
        default=0,
        metavar="N",
        help="only run N trivial jobs through run_in (no server, no window) and exit: reproduces the worker crash",
    )
    ap.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval() in seconds (default: Python's 0.005), to see how much waiting is GIL hand-off",
    )
    ap.add_argument("--work-dir", type=Path, default=None, help="server data + cache (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    ap.add_argument("--seed", type=int, default=None, help="workload RNG seed (default: fresh each run)")
    ap.add_argument("--server-exe", default=crm_server_exe())
    ap.add_argument("--json", type=Path, default=OUT / "bench_ui.json")
    args = ap.parse_args(argv)
    phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    OUT.mkdir(parents=True, exist_ok=True)
    faulthandler.enable()  # a crash in Qt or a worker thread prints every thread's Python stack
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    if args.stress_workers:
        stress_workers(args.stress_workers)
        return 0
    workload_seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    rng = random.Random(workload_seed)
    phones = PhoneMaker(rng)
    work = (args.work_dir or Path(tempfile.mkdtemp(prefix="bench-ui-", dir=OUT))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cores": psutil.cpu_count(), "note": "shared with other work"},
        "qt_platform": os.environ.get("QT_QPA_PLATFORM"),
        "goals": GOALS,
        "workload_seed": workload_seed,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "switch_interval_s": sys.getswitchinterval(),
        "settle_heap": not args.no_settle_heap,
    }
    say(f"[start] load average {report['loadavg_at_start']} on {psutil.cpu_count()} cores (shared); work dir {work}")
    data_dir = work / "pgdata"
    data_dir.mkdir(parents=True, exist_ok=True)
    # The serve child holds the embedded PostgreSQL while it runs; the stall phase's `crm-server seed` joins it.
    server = Server(args.server_exe, data_dir)
    transport = SlowTransport()
    window: MainWindow | None = None
    t_all = time.perf_counter()
    try:
        server.start()
        say(f"[server] {server.url}")
        desk = work / "desk"
        desk.mkdir(exist_ok=True)
        say(f"[setup] filling cre1's cache with {args.cache_leads:,} synthetic leads via Store.apply_changes ...")
        n_new = 2 * (args.banner + args.submits)  # spare: not every random number is a mobile
        cached, absent, dt = prefill(desk / "cre1.sqlite3", args.cache_leads, n_new, rng)
        absent = [p for p in absent if typeable(p)]
        report["prefill"] = {"leads": args.cache_leads, "seconds": round(dt, 1)}
        say(f"[setup] {args.cache_leads:,} leads cached in {dt:.1f} s; opening the window (engine running) ...")
        t0 = time.perf_counter()
        window = open_window(server, desk, transport, freeze_heap=not args.no_settle_heap)
        report["window_open_s"] = round(time.perf_counter() - t0, 2)
        settle(0.5)

        # 1. banner
        if "banner" in phases:
            half = args.banner // 2
            known = [p for p in rng.sample(cached, 2 * half) if typeable(p)][:half]
            numbers = [(p, True) for p in known] + [(p, False) for p in absent[: args.banner - half]]
            rng.shuffle(numbers)
            report["banner"] = bench_banner(window, numbers, spin=True)
            report["banner_wait"] = bench_banner(window, numbers, spin=False)
            for key in ("banner", "banner_wait"):
                b = report[key]
                say(
                    f"[{key}] last keystroke -> banner / 'new number' ({b['wait']}): all {fmt(b['all_ms'])};"
                    f" cached {fmt(b['existing_ms'])}; new {fmt(b['new_ms'])}; keystroke handler p50"
                    f" {b['keystroke_handler_ms']['p50_ms']} ms; timeouts {b['timeouts']} (goal <= 16 ms)"
                )

        # 2. submit
        if "submit" in phases:
            report["submit"] = bench_submit(window, absent[args.banner : args.banner + args.submits], rng)
            s = report["submit"]
            say(
                f"[submit] Enter -> form ready: {fmt(s['enter_to_form_ready_ms'])} (goal <= 50 ms); timeouts"
                f" {s['timeouts']}; engine {s['engine']}; Enter -> server answer p50"
                f" {s['enter_to_server_answer_ms']['p50_ms']} ms ({s['answered']} answered)"
            )
            say(f"[submit] Enter -> lead on disk and its row showing the stored item: {fmt(s['enter_to_saved_ms'])}")
            say(f"[submit]   form ready > 16 ms: {s['form_ready_over_16ms']}; gen2 collections {s['gen2_collections']}")
            steps = ", ".join(f"{k} p50 {v['p50_ms']} / p99 {v['p99_ms']}" for k, v in s["steps_ms"].items())
            say(f"[submit]   steps (ms): {steps}")

        # 3. stall
        if "stall" in phases:
            report["stall"] = bench_stall(window, server, args.server_exe, data_dir, transport, args, rng, phones)
            st = report["stall"]
            say(
                f"[stall] {st['leads_done']}/{st['leads_queued']} leads drained ({st['slow_transport_ms']:g} ms slower"
                f" per request) + {st['rows_pulled']:,} rows synced in {st['wall_s']} s: GUI tick gap p50"
                f" {st['gap_ms']['p50']} ms, p99 {st['gap_ms']['p99']} ms, max {st['gap_ms']['max']} ms (goal max <= 50"
                f" ms); gaps > 16 ms by CPU work in the engine then {st['gaps_over_16ms_by_cpu_work_in_engine']}"
            )
            for g in st["worst_gaps"][:5]:
                say(f"[stall]   gap {g['gap_ms']} ms at +{g['at_s']} s during {g['engine_activity']}")
            for where, n in list((st["stacks_during_gaps_over_15ms"] or {}).items())[:12]:
                say(f"[stall]   stack sampled in a gap x{n}: {where}")
    finally:
        if window is not None:
            # As the app ends a session (app.py _stop_session): the window first, then the session, whose stop waits
            # for the pools and closes their stores. Work queued after that (the engine's last reports) opened the
            # files again while the work dir was being removed, and left them behind in bench/out.
            session = window.session
            window.hide()
            window.deleteLater()
            app.processEvents()
            session.stop()
            session.api.close()
        transport.close()
        server.stop()
        app.processEvents()
        wait_for_pools()  # what those last events queued, before its files go
        if not args.keep and args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    report["total_seconds"] = round(time.perf_counter() - t_all, 1)
    report["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print_summary(report, args.json)
    return 0


def fmt(s: dict[str, float]) -> str:
    return f"p50 {s['p50_ms']} / p99 {s['p99_ms']} / max {s['max_ms']} ms (n={s['n']})"


def print_summary(r: dict[str, Any], path: Path) -> None:
    def ok(flag: bool) -> str:
        return "met" if flag else "MISSED"

    say("")
    say(f"Summary (2-core machine shared with other work; load avg start {r['loadavg_at_start']}, "
        f"end {r['loadavg_at_end']}; cache {r['prefill']['leads']:,} leads):")  # fmt: skip
    for key in ("banner", "banner_wait"):
        if key in r:
            b = r[key]["all_ms"]
            say(f"  banner [{r[key]['wait']}]: {fmt(b)}   goal <= 16 ms (p99 {ok(b['p99_ms'] <= 16)},"
                f" max {ok(b['max_ms'] <= 16)})")  # fmt: skip
    if "submit" in r:
        s = r["submit"]["enter_to_form_ready_ms"]
        say(f"  submit -> form ready: {fmt(s)}   goal <= 50 ms (p99 {ok(s['p99_ms'] <= 50)},"
            f" max {ok(s['max_ms'] <= 50)})")  # fmt: skip
        say(f"  submit -> lead on disk, row updated: {fmt(r['submit']['enter_to_saved_ms'])}")
    if "stall" in r:
        g = r["stall"]["gap_ms"]
        say(f"  GUI stall (5 ms timer, feed page {r['stall']['page_size']:,}): p99 gap {g['p99']} ms, max gap"
            f" {g['max']} ms   goal max <= 50 ms ({ok(g['max'] <= 50)})")  # fmt: skip
    say(f"  details: {path}; total {r['total_seconds']} s")


if __name__ == "__main__":
    sys.exit(main())
