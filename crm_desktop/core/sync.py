"""Sync: pull the lead feed into the local cache, and push the outbox to `create_lead`. Qt-free.

Two threads, on purpose: a long first download of a million leads must never delay the send of the lead a CRE just
typed, and a server that is slow to accept leads must not freeze the duplicate cache.

- The **push** thread sends queued operations (create_lead, log_call) oldest first, each under its `client_ref` (a
  replay after a crash returns the first answer, never a second lead or call); items about one lead go in the order
  they were queued: only the first open item of a lead is ever due (`Store.next_due`). `Retry` puts the item back
  with exponential backoff and jitter and the thread sleeps exactly until the earliest due item (or until woken by a
  new item / "send now"); `Rejected` parks the item with the server's reason and moves on; `AuthExpired` pauses
  sending until `resume()` after a new sign-in.
- The **pull** thread pages the feed (`lead_feed`, compact; `lead_changes` on a server without it) from the cursor
  until caught up, one SQLite transaction per page (rows and cursor together; the next pages are fetched meanwhile;
  a long pass asks for its pages by column and decodes them in decoding processes, a short one decodes pages by row
  on a thread), reporting rows done and an estimated total, whether the pass is a long one (the cache lacks many
  leads meanwhile) and that it is building the cache's indexes at the end of a first sync; then it polls on an
  interval or on demand. It also refreshes the cached catalogue
  and profile so the desk can start offline.

Each thread opens its own `Store` (SQLite connections are per thread). Listeners are plain callables, called on the
engine's threads: the UI forwards them to Qt signals."""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from crm_desktop.core.api import ApiClient, AuthExpired, CertificateNotTrusted, Rejected, Retry
from crm_desktop.core.cache import ReadyPage, decode_ahead, stage_page, start_decoding_process
from crm_desktop.core.models import OutboxItem
from crm_desktop.core.store import OutboxStateError, Store, StoreError

log = logging.getLogger(__name__)

ConnectionState = Literal["online", "offline", "untrusted", "auth_needed"]  # untrusted: the TLS certificate
CATALOG_EVERY = 15 * 60.0  # seconds between catalogue refreshes
BULK_FILL_MIN = 50_000  # rows; see SyncEngine.bulk_fill_min
# Feed pages fetched ahead at most during a long sync: all lead_feed's page says it knows (the next page and the three
# after it). The count includes pages fetched and waiting to be decoded or applied, so with 3 only ~2 were on the wire
# at a time: a 1M first sync through 20 Mbit/s and 50 ms of RTT took 24.5 / 25.8 s with 3, 24.1 / 24.8 with 4
# (`bench/bench_replay.py --variants "depth=3;depth=4" --where link`; 25.4 / 24.0 against 23.1 / 22.4 s when the host
# was faster). The link alone needs ~16 s.
FETCH_DEPTH = 4
# Processes that decode and stage pages during a long sync (`cache.stage_page`): one core is left to the applying
# thread and the GUI. Decoding is Python (~11 us a row); on a thread of the desk's own process it was bound by the
# GIL, which it took from the applying thread, the fetching threads and the GUI (bench_apply.py, bench_ui.py).
DECODE_PROCESSES = max(1, min(3, (os.cpu_count() or 2) - 1))
# How far below the desk's own threads they run (POSIX niceness added; BELOW_NORMAL on Windows; 0: not lowered), so
# the GUI thread is not kept waiting for a core behind them (cache.start_decoding_process).
DECODE_NICE = 5
# A long pass filling the cache (a first sync) commits without waiting for the disk (Store.begin_unsynced_fill);
# False: as every other pass (a benchmark's baseline).
UNSYNCED_FILL = True


@dataclass(frozen=True)
class SyncProgress:
    done: int  # rows applied in this run
    total: int  # estimated rows of this run (done + what the server says remains)
    started_at: float
    finished: bool
    # Every row is in and the cache's indexes are being built: a first sync's last step (2-3 s for a CRE's 1M-lead
    # cache on the dev VM, ~11 s with a team lead's list indexes). Reported once, before the finished report.
    indexing: bool = False
    # A long pass (a first sync, or one after a long time away: SyncEngine.bulk_fill_min rows or more to go) is under
    # way, so the cache lacks many of the server's leads yet: a number it does not know may still be a lead.
    catching_up: bool = False

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(self.done / self.total, 1.0)

    def eta_seconds(self, now: float) -> float | None:
        if self.done <= 0 or self.finished:
            return None
        rate = self.done / max(now - self.started_at, 1e-6)
        return max(self.total - self.done, 0) / rate


class Listeners:
    """Callbacks the UI (or a test) subscribes to. Called from the engine's threads; must not block."""

    def __init__(self) -> None:
        self.progress: list[Callable[[SyncProgress], None]] = []
        self.item: list[Callable[[OutboxItem], None]] = []
        self.connection: list[Callable[[ConnectionState, str], None]] = []
        self.leads_changed: list[Callable[[int], None]] = []
        self.catalog: list[Callable[[dict[str, Any]], None]] = []
        self.error: list[Callable[[Exception], None]] = []

    @staticmethod
    def emit(callbacks: list[Callable[..., None]], *args: Any) -> None:
        for cb in list(callbacks):
            try:
                cb(*args)
            except Exception:  # a listener's bug must not kill the sync thread
                log.exception("sync listener failed")


def prepare_local_desk(api: ApiClient, path: Path, *, online: bool = True) -> tuple[dict[str, Any], str | None]:
    """Open (or repair) the user's store and keep what an offline start needs: returns (profile, recovery message).

    Online, the profile and the catalogue are fetched and kept; offline, the kept profile is used, and Retry says
    the desk cannot start when this computer never saw this user."""
    store, recovery = Store.open_or_rebuild(path)
    try:
        if online:
            profile = dict(api.rpc("my_profile"))
            store.save_profile(profile)
            store.save_catalog(api.rpc("catalog"))
        else:
            kept = store.load_profile()
            if kept is None:
                raise Retry(
                    "The server cannot be reached and this computer has no saved desk for this user yet. "
                    "Connect once to start working offline later."
                )
            profile = kept
        # The signed-in CRE's leads are kept together for the worklist (a cache scan only when the user changed).
        store.set_desk_owner(str(profile.get("id") or "") or None)
    finally:
        store.close()
    return profile, recovery.message


def backoff_delay(attempts: int, base: float, cap: float, rnd: random.Random) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, so a desk full of clients coming back from
    the same outage does not retry in lockstep."""
    ceiling = min(cap, base * (2 ** max(attempts - 1, 0)))
    return ceiling / 2 + rnd.uniform(0, ceiling / 2)


class SyncEngine:
    """Runs the push and pull threads for one signed-in user and one store path."""

    def __init__(
        self,
        api: ApiClient,
        store_path: Path,
        *,
        poll_interval: float = 15.0,
        # lead_feed's largest page. Through 20 Mbit/s and 50 ms of RTT each page in flight pays a round trip and the
        # server's time: a 1M first sync took 24.6 / 25.6 s with 10k pages against 25.2 / 26.0 with 5k, 21.5 / 21.4
        # against 23.2 / 23.3 when the host was faster (`bench/bench_replay.py --variants "page=5000;page=10000"`);
        # over loopback page size made no difference. An incremental pull asks for as many and gets what is new.
        page_size: int = 10_000,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        rng: random.Random | None = None,
        team_indexes: bool = True,
        decode_processes: int = DECODE_PROCESSES,
    ) -> None:
        self.api = api
        self.store_path = Path(store_path)
        self.poll_interval = poll_interval
        self.page_size = page_size
        # A first sync into an empty cache at least this large builds the cache's secondary indexes once at the end
        # instead of row by row (Store.begin_bulk_fill): smaller ones are not worth the rebuild.
        self.bulk_fill_min = BULK_FILL_MIN
        # Whether this desk keeps the team lead's indexes of the cache (cache.TEAM_INDEXES): the session says so by
        # the signed-in role. False: a bulk fill leaves them out; True: a pull builds any that are missing.
        self.team_indexes = team_indexes
        # A pass with at least bulk_fill_min rows to go decodes its pages in this many processes (0: on a thread of
        # this process, as every shorter pass does).
        self.decode_processes = decode_processes
        self.decode_nice = DECODE_NICE  # their priority below this process's (DECODE_NICE)
        self.unsynced_fill = UNSYNCED_FILL
        self._decoders_failed = False  # this pass's decoding processes failed once: it decodes on a thread
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.listeners = Listeners()
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._push_wake = threading.Condition()
        self._push_flag = False
        self._force_send = False
        self._pull_wake = threading.Condition()
        self._pull_flag = False
        self._auth_paused = False
        self._state: ConnectionState | None = None
        self._threads: list[threading.Thread] = []
        self._last_catalog = 0.0
        self._feed_rpc = "lead_feed"  # the compact feed (006); "lead_changes" once a server says it has none
        # A long pass asks lead_feed for its pages by column (008); False from the first server that has no such layout.
        self.by_column = True
        self._pull_failures = 0  # consecutive busy answers (429/503) of the pull side, for its backoff
        self.last_sync_at: float | None = None

    # -- control (any thread) -------------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._push_loop, name="outbox-push", daemon=True),
            threading.Thread(target=self._pull_loop, name="cache-pull", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wake_push()
        self.pull_now()
        for t in self._threads:
            t.join(timeout)
        self._threads = []

    @property
    def connection_state(self) -> ConnectionState | None:
        return self._state

    def wake_push(self, *, force: bool = False) -> None:
        """A new lead was queued (or "Send now": `force` ignores backoff for this pass)."""
        with self._push_wake:
            self._push_flag = True
            self._force_send = self._force_send or force
            self._push_wake.notify()

    def send_now(self) -> None:
        self.wake_push(force=True)

    def pull_now(self) -> None:
        with self._pull_wake:
            self._pull_flag = True
            self._pull_wake.notify()

    def resume(self) -> None:
        """After a new sign-in: sending may continue."""
        self._auth_paused = False
        self._set_state("online", "")
        self.wake_push(force=True)
        self.pull_now()

    # -- state ----------------------------------------------------------------------------------------------------

    def _set_state(self, state: ConnectionState, detail: str) -> None:
        if state != self._state:
            was = self._state
            self._state = state
            log.info("connection: %s %s", state, detail)
            Listeners.emit(self.listeners.connection, state, detail)
            if was in ("offline", "untrusted") and state == "online":
                self.wake_push(force=True)  # the server is back: send what waited, without waiting out backoff

    def _on_api_error(self, exc: Exception) -> None:
        if isinstance(exc, AuthExpired):
            self._auth_paused = True
            self._set_state("auth_needed", str(exc))
        elif isinstance(exc, CertificateNotTrusted):
            self._set_state("untrusted", str(exc))  # not "offline": IT must act, waiting will not help
        elif isinstance(exc, Retry):
            self._set_state("offline", str(exc))

    # -- push -----------------------------------------------------------------------------------------------------

    def _wait_push(self, until: float | None) -> bool:
        """Sleep until `until` (epoch seconds), a wake-up or stop; returns the force flag taken."""
        with self._push_wake:
            if not self._push_flag and not self._stop.is_set():
                timeout = None if until is None else max(until - time.time(), 0.0)
                self._push_wake.wait(timeout)
            self._push_flag = False
            force, self._force_send = self._force_send, False
        return force

    def send_one(self, store: Store, item: OutboxItem) -> OutboxItem:
        """Send one item and record the outcome; returns the item as stored afterwards."""
        store.mark_sending(item.client_ref)
        try:
            answer = self.api.rpc(item.op.value, store.rpc_params(item))
        except Rejected as exc:
            reason = str(exc) if not exc.code else f"{exc} [{exc.code}]"
            store.mark_parked(item.client_ref, reason, {"code": exc.code, "status": exc.status, "details": exc.details})
            self._set_state("online", "")
        except (Retry, AuthExpired) as exc:
            delay = 0.0 if isinstance(exc, AuthExpired) else self._retry_delay(item.attempts + 1)
            store.mark_retry(item.client_ref, str(exc), time.time() + delay)
            self._on_api_error(exc)
        else:
            store.mark_done(item.client_ref, answer if isinstance(answer, dict) else {"answer": answer})
            self._set_state("online", "")
        after = store.get(item.client_ref)
        assert after is not None
        return after

    def _retry_delay(self, attempts: int) -> float:
        return backoff_delay(attempts, self.backoff_base, self.backoff_max, self._rng)

    def drain(self, store: Store, *, force: bool = False) -> int:
        """Send every due item (all queued items with `force`) until none is due or the server is unreachable."""
        sent = 0
        skip: set[str] = set()
        while not self._stop.is_set() and not self._auth_paused:
            now = float("inf") if force else time.time()
            item = store.next_due(now)
            if item is None or item.client_ref in skip:
                break
            try:
                after = self.send_one(store, item)
            except OutboxStateError as exc:
                # Someone else moved the item meanwhile (another desk process on this outbox, a UI action): its
                # stored state is the truth. Show that and go on; ending the thread would stop all sending.
                log.warning("outbox item %s changed under the sender (%s); re-read, going on", item.client_ref, exc)
                skip.add(item.client_ref)
                now_stored = store.get(item.client_ref)
                if now_stored is not None:
                    Listeners.emit(self.listeners.item, now_stored)
                continue
            Listeners.emit(self.listeners.item, after)
            if after.state.value == "done":
                sent += 1
            elif after.state.value == "queued":
                if self._state in ("offline", "untrusted") or self._auth_paused:
                    break  # the server is away: do not walk the whole queue into the same wall
                skip.add(item.client_ref)
        if sent:
            self.pull_now()  # bring the new leads into the cache for the duplicate banner
        return sent

    def _push_loop(self) -> None:
        store = Store(self.store_path)
        try:
            store.reset_sending()  # logs what it re-queued
            force = True
            while not self._stop.is_set():
                try:
                    if not self._auth_paused:
                        self.drain(store, force=force)
                    due = None if self._auth_paused else store.earliest_due()
                except StoreError as exc:
                    Listeners.emit(self.listeners.error, exc)
                    due = time.time() + 5.0
                force = self._wait_push(due)
        except Exception as exc:  # unexpected: report, never die silently
            log.exception("outbox push thread stopped")
            Listeners.emit(self.listeners.error, exc)
        finally:
            store.close()

    # -- pull -----------------------------------------------------------------------------------------------------

    def refresh_catalog(self, store: Store) -> dict[str, Any]:
        catalog = self.api.rpc("catalog")
        profile = self.api.rpc("my_profile")
        store.save_catalog(catalog)
        store.save_profile(profile)
        self._last_catalog = time.time()
        Listeners.emit(self.listeners.catalog, catalog)
        return dict(catalog)

    def _fetch_page(self, since: int, by_column: bool = False) -> str:
        """One feed page as the JSON text the server sent (a compact lead_feed page, or a plain lead_changes one).
        `by_column`: ask lead_feed for the page laid out by column (migration 008), a third fewer bytes on the link;
        the pages of a long pass, which decoding processes parse whole. A server without that layout is asked for rows.

        The page stays text: decoding it in Python held the GIL (and so the GUI) ~12 ms per 5,000 rows. The store
        reads either kind in SQLite (a compact page is decoded straight into the cache: core/feed.py)."""
        params: dict[str, object] = {"since": since, "max_rows": self.page_size}
        if self._feed_rpc == "lead_feed" and by_column and self.by_column:
            text = self._rpc_unless_missing("lead_feed", {**params, "layout": "columns"})
            if text is not None:
                return text
            log.info("the server's lead_feed has no layout (an older server): pages come by row")
            self.by_column = False
        if self._feed_rpc == "lead_feed":
            text = self._rpc_unless_missing("lead_feed", params)
            if text is not None:
                return text
            log.info("the server has no lead_feed (an older server): syncing with lead_changes")
            self._feed_rpc = "lead_changes"
        return self.api.rpc_text("lead_changes", params)

    def _rpc_unless_missing(self, name: str, params: dict[str, object]) -> str | None:
        """An RPC's answer as text, or None when the server has no such function, or none taking these parameters
        (PostgREST's 404 PGRST202: an older server)."""
        try:
            return self.api.rpc_text(name, params)
        except Rejected as exc:
            if (exc.status, exc.code) != (404, "PGRST202"):
                raise
            return None

    def _decode_fetched(self, fetched: Future[str], procs: ProcessPoolExecutor | None) -> ReadyPage:
        """A page fetched ahead, decoded and staged: in a decoding process when the pass has them (`procs`), else on
        this thread (cache.decode_ahead). Without processes there is one such thread: several decoding at once only
        took the GIL from each other and from the applying thread."""
        text = fetched.result()
        if procs is not None and not self._decoders_failed:
            try:
                return ReadyPage(text, *procs.submit(stage_page, text).result())
            except Exception as exc:  # a broken pool, one shut down meanwhile, a child that failed: decode here
                if not self._decoders_failed:  # said once a pass; the pass's other pages are decoded here too
                    self._decoders_failed = True
                    log.warning("a decoding process failed (%s: %s); pages are decoded here", type(exc).__name__, exc)
        return decode_ahead(text)

    def _decoding_processes(self) -> ProcessPoolExecutor | None:
        """The processes of a long pass, or None (none asked for, or they cannot start here: the pass decodes on a
        thread). Spawned, on every OS: a forked child of a process with threads (Qt's, the engine's) may inherit a
        lock held at the fork. Children start as pages arrive and end with the pass."""
        if self.decode_processes <= 0:
            return None
        try:
            return ProcessPoolExecutor(
                self.decode_processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_decoding_process,
                initargs=(self.decode_nice,),
            )
        except (OSError, ValueError, NotImplementedError) as exc:
            log.warning("pages are decoded on a thread: no decoding process (%s)", exc)
            return None

    def pull(self, store: Store) -> int:
        """Page the feed from the stored cursor until caught up; returns rows applied.

        While a page is written to the cache, the following ones are already being fetched on helper threads (made
        only when the feed says there is more): one ahead with lead_changes, up to FETCH_DEPTH with lead_feed, whose
        pages say where the next ones start. On a link with 50 ms of RTT, one request at a time left the link idle
        for a round trip and the server's time on every page. One more thread decodes the fetched pages in order, so
        the Python decoding of the next page overlaps SQLite writing this one. Pages are applied in order, each with
        its cursor.
        """
        since = store.sync_cursor()
        started = time.time()
        done = 0
        self._decoders_failed = False
        ahead: ThreadPoolExecutor | None = None
        decoder: ThreadPoolExecutor | None = None
        procs: ProcessPoolExecutor | None = None
        pending: deque[Future[ReadyPage]] = deque()
        asked = since
        finished = False
        unsynced = False  # committing without waiting for the disk: a long pass filling the cache (cache.py)
        long_pass = False
        try:
            ready = decode_ahead(self._fetch_page(since))
            first = True  # the pass's first page: is it a long pass?
            while True:
                try:
                    head = ready.head or store.read_feed_head(ready.text)
                    if first and head.more and head.remaining + self.page_size >= self.bulk_fill_min:
                        long_pass = True
                        if since == 0:
                            store.begin_bulk_fill()
                        unsynced = self.unsynced_fill and store.begin_unsynced_fill()
                        procs = self._decoding_processes()
                    first = False
                    if head.more and not self._stop.is_set():
                        ahead = ahead or ThreadPoolExecutor(max_workers=FETCH_DEPTH, thread_name_prefix="feed-ahead")
                        # With processes, a thread per process waits for its page (holding no GIL meanwhile).
                        width = self.decode_processes if procs is not None else 1
                        decoder = decoder or ThreadPoolExecutor(max_workers=width, thread_name_prefix="feed-decode")
                        # Rows renumbered meanwhile only make a page reach further (overlap: newer wins) or leave a
                        # gap whose rows have moved above it, so a planned start never loses a lead.
                        for start in (head.next_since, *head.ahead):
                            if len(pending) < FETCH_DEPTH and start > asked:
                                # By column only for decoding processes: parsing a page whole holds the GIL.
                                by_column = procs is not None and not self._decoders_failed
                                fetched = ahead.submit(self._fetch_page, start, by_column)
                                pending.append(decoder.submit(self._decode_fetched, fetched, procs))
                                asked = start
                    page = store.apply_feed_page(ready.text, head, ready)
                except ValueError as exc:
                    log.warning("unreadable feed page after %d: %s", since, exc)
                    raise Retry("The server sent an unreadable answer. It will be retried.") from exc
                done += page.rows
                since = page.next_since
                if not head.more or self._stop.is_set():
                    break
                Listeners.emit(
                    self.listeners.progress,
                    SyncProgress(done, done + page.remaining, started, False, catching_up=long_pass),
                )
                # Nothing fetched ahead reaches this far (the pages' plans ran out): ask for the next page now rather
                # than end the pass early and report a first sync "finished" halfway through.
                ready = pending.popleft().result() if pending else decode_ahead(self._fetch_page(since))
            finished = True
            if not self._stop.is_set():
                # Caught up: a first sync's deferred indexes are built now (also when it was resumed after a close).
                store.finish_bulk_fill(
                    team_indexes=self.team_indexes,
                    on_build=lambda: Listeners.emit(
                        self.listeners.progress, SyncProgress(done, done, started, False, indexing=True)
                    ),
                )
        finally:
            for pool in (decoder, ahead, procs):  # the decoder first: it may be waiting on a fetch or a process
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)
            if unsynced:
                try:
                    store.end_unsynced_fill()
                except StoreError as exc:  # its mark stays: the next start checks the file
                    log.warning("the cache could not be flushed after its fill: %s", exc.message)
            if done and not finished:
                # The pages before the failure are in the cache: a banner on screen may describe one of them.
                Listeners.emit(self.listeners.leads_changed, done)
        self.last_sync_at = time.time()
        self._set_state("online", "")
        # Every pass ends with one finished report (also when nothing was new): "synced at hh:mm".
        Listeners.emit(self.listeners.progress, SyncProgress(done, done, started, True))
        if done:
            Listeners.emit(self.listeners.leads_changed, done)
        return done

    def _pull_retry_delay(self, exc: Exception) -> float:
        """A busy server (429/503, or one that says Retry-After) gets exponential backoff with jitter, so a shift of
        desks starting at 09:00 spreads out instead of retrying in lockstep; other trouble (offline) is retried
        after the usual few seconds. Finished pages are kept, so the next pass continues where this one stopped."""
        status = getattr(exc, "status", 0)
        hint = getattr(exc, "retry_after", None)
        if status not in (429, 503) and hint is None:
            return min(self.poll_interval, 5.0)
        self._pull_failures += 1
        delay = backoff_delay(self._pull_failures, max(self.backoff_base, 1.0), self.backoff_max, self._rng)
        return max(delay, hint or 0.0)

    def _pull_loop(self) -> None:
        store = Store(self.store_path)
        try:
            while not self._stop.is_set():
                delay = self.poll_interval
                if not self._auth_paused:
                    try:
                        if time.time() - self._last_catalog > CATALOG_EVERY:
                            self.refresh_catalog(store)
                        self.pull(store)
                        self._pull_failures = 0
                    except (Retry, AuthExpired) as exc:
                        self._on_api_error(exc)
                        delay = self._pull_retry_delay(exc)
                    except StoreError as exc:
                        Listeners.emit(self.listeners.error, exc)
                with self._pull_wake:
                    if not self._pull_flag and not self._stop.is_set():
                        self._pull_wake.wait(delay)
                    self._pull_flag = False
        except Exception as exc:  # unexpected: report, never die silently
            log.exception("cache pull thread stopped")
            Listeners.emit(self.listeners.error, exc)
        finally:
            store.close()
