"""One signed-in desk: the API client, the store files, the sync engine and the UI-side access to the store.

The GUI thread never touches SQLite itself: lookups run on the reader pool, outbox writes on the one-thread writer
pool (see workers.py). Each pool thread keeps its own `Store` (SQLite connections are per thread)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from crm_desktop.core.api import ApiClient
from crm_desktop.core.models import LeadSummary, Op, OutboxItem
from crm_desktop.core.outbox import unsaved_item
from crm_desktop.core.store import DEFAULT_BUSY_TIMEOUT_MS, Store
from crm_desktop.core.sync import SyncEngine
from crm_desktop.core.worklist import WorkList
from crm_desktop.ui.bridge import SyncBridge
from crm_desktop.ui.workers import network_pool, reader_pool, run_in, wait_for_pools, writer_pool


class DeskSession(QObject):
    """Signals: lookup_done(str e164, object LeadSummary|None) for the newest lookup only;
    queue_stats(int pending, int parked, object oldest_created_at|None);
    search_done(str text, object list[LeadSummary]) for the newest search only;
    leads_changed() after this desk queued something that changes a lead, or a call it was saving could not be
    saved (views reload; the sync's own leads_changed comes through the bridge).

    Calls being saved (`enqueue_call`) are held in `saving` until the writer thread has committed them; every read
    of the lists, the banner and the lead view lays them over the cache like queued ones (core/worklist.py)."""

    lookup_done = Signal(str, object)
    queue_stats = Signal(int, int, object)
    search_done = Signal(str, object)
    leads_changed = Signal()

    def __init__(
        self,
        api: ApiClient,
        store_path: Path,
        profile: dict[str, Any],
        *,
        poll_interval: float = 15.0,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.api = api
        self.store_path = store_path
        self.busy_timeout_ms = busy_timeout_ms  # how long a pool thread's Store waits for a file another holds
        self.profile = profile
        # A CRE's desk never reads the cache the way a team lead's lists and drill-downs do: it skips their indexes.
        team = profile.get("role") in ("team_lead", "admin")
        self.engine = SyncEngine(api, store_path, poll_interval=poll_interval, team_indexes=team)
        self.bridge = SyncBridge(self.engine, self)
        # Keyed by thread id, not threading.local: a QThreadPool thread gets a fresh Python thread state for each job,
        # so a threading.local forgot its Store after every lookup and each job opened (and leaked) a new connection.
        self._stores: dict[int, Store] = {}
        self._stores_lock = threading.Lock()
        self._ended = False  # stop() was called: a job still queued runs on a Store it closes (with_store)
        self._lookup_seq = 0
        self._search_seq = 0
        # Calls between Enter and their commit. Replaced as a whole (never mutated) on the GUI thread, so a reader
        # thread that takes it sees one consistent tuple; readers take it before they read the outbox.
        self._saving: tuple[OutboxItem, ...] = ()
        self.shift_started = time.time() - 12 * 3600  # "this shift": the last 12 hours plus anything still open

    # -- per-thread store ---------------------------------------------------------------------------------------

    def _store(self) -> Store:
        ident = threading.get_ident()
        with self._stores_lock:
            store = self._stores.get(ident)
        if store is None:
            store = Store(self.store_path, busy_timeout_ms=self.busy_timeout_ms)
            with self._stores_lock:
                self._stores[ident] = store
        return store

    def with_store(self, fn: Callable[[Store], Any]) -> Callable[[], Any]:
        def job() -> Any:
            if not self._ended:
                return fn(self._store())
            # The session has ended: work queued before that (a refresh the engine's last reports asked for) still
            # runs, on a Store of its own that it closes, so no connection outlives the session. One left open holds
            # its files, which on Windows the next sign-in's cache rebuild or outbox set-aside cannot rename.
            with Store(self.store_path, busy_timeout_ms=self.busy_timeout_ms) as store:
                return fn(store)

        return job

    # -- lifecycle ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.engine.start()

    def stop(self) -> None:
        self.engine.stop()
        self._ended = True
        self.close_thread_stores()  # queued behind the jobs still pending, on the threads that ran them
        wait_for_pools()

    def close_thread_stores(self, timeout: float = 10.0) -> int:
        """Close every Store the pools opened, each on its own thread while that thread lives; returns how many.

        A connection left open holds its files: on Windows the next sign-in's cache rebuild or outbox set-aside then
        cannot rename them (sharing violation). A pool cannot be told which thread runs a job, so each pool gets one
        job per thread, all held at a barrier until every thread has one: n jobs that all wait for each other run on
        n different threads. A Store whose thread already ended (QThreadPool.waitForDone retires threads) is closed
        here, which its connection allows (store._connect: check_same_thread=False) since nothing else can use it."""
        closed: list[Store] = []
        for pool in (writer_pool(), reader_pool()):
            n = pool.maxThreadCount()
            barrier = threading.Barrier(n, timeout=timeout)

            def close_mine(barrier: threading.Barrier = barrier) -> None:
                try:
                    barrier.wait()
                except threading.BrokenBarrierError:
                    pass  # a thread stayed busy: its store is reported below, not closed from here
                with self._stores_lock:
                    store = self._stores.pop(threading.get_ident(), None)
                if store is not None:
                    store.close()
                    closed.append(store)

            for _ in range(n):
                pool.start(close_mine)
            pool.waitForDone(int(timeout * 1000) + 1000)
        with self._stores_lock:
            left = list(self._stores.values())
            self._stores.clear()
        for store in left:  # their threads are gone
            store.close()
        return len(closed) + len(left)

    # -- operations (call from the GUI thread) --------------------------------------------------------------------

    def lookup(self, e164: str) -> None:
        """Look the number up in the cache; only the newest request's answer is delivered (lookup_done)."""
        self._lookup_seq += 1
        seq = self._lookup_seq

        def deliver(result: LeadSummary | None) -> None:
            if seq == self._lookup_seq:
                self.lookup_done.emit(e164, result)

        # The desk's lookup: a number this desk queued a moment ago is not a "new number".
        run_in(reader_pool(), self.with_store(lambda s: s.lookup_desk(e164, self._saving)), deliver)

    def cancel_lookup(self) -> None:
        self._lookup_seq += 1

    def enqueue(
        self,
        payload: dict[str, Any],
        on_queued: Callable[[OutboxItem], None],
        on_failed: Callable[[BaseException], None],
    ) -> None:
        def work(store: Store) -> OutboxItem:
            item = store.enqueue(payload)
            self.engine.wake_push()
            return item

        run_in(writer_pool(), self.with_store(work), on_queued, on_failed)

    @property
    def saving(self) -> tuple[OutboxItem, ...]:
        """Calls this desk is committing to the outbox right now (see the class docstring)."""
        return self._saving

    def enqueue_call(
        self,
        call: dict[str, Any],
        phone: str,
        meta: dict[str, Any],
        on_queued: Callable[[OutboxItem], None],
        on_failed: Callable[[BaseException], None],
    ) -> OutboxItem:
        """Queue a log_call without waiting for the disk, as the intake form does with a new lead.

        Returns at once with the item as it will be stored (seq 0; its client_ref is `call`'s, or a new one): the
        lists show the call from now on (leads_changed is emitted before this returns), while the writer thread
        commits it (fsync'd) and wakes the sender. `on_queued(stored item)` once it is on disk; `on_failed(exc)`
        when the commit failed: the call is then no longer laid over the lists, and the caller holds it (This
        shift's "Not saved" row) until it is sent again with the same client_ref."""
        ref = str(call.get("client_ref") or uuid.uuid4())
        body = {**call, "client_ref": ref}
        item = unsaved_item(Op.LOG_CALL, body, lead_key=phone, lead_ref=body.get("lead_ref"), meta=meta)
        self._saving = (*(i for i in self._saving if i.client_ref != ref), item)

        def work(store: Store) -> OutboxItem:
            stored = store.enqueue_call(body, phone, meta, client_ref=ref)
            self.engine.wake_push()
            return stored

        def queued(stored: OutboxItem) -> None:
            self._forget_saving(ref)  # on disk now: the stored item is laid over in its place
            on_queued(stored)

        def failed(exc: BaseException) -> None:
            self._forget_saving(ref)
            self.leads_changed.emit()  # the lists stop showing a call that is not saved
            on_failed(exc)

        self.leads_changed.emit()
        run_in(writer_pool(), self.with_store(work), queued, failed)
        return item

    def _forget_saving(self, client_ref: str) -> None:
        self._saving = tuple(i for i in self._saving if i.client_ref != client_ref)

    # -- worklist, search, lead view ------------------------------------------------------------------------------

    @property
    def cre_id(self) -> str:
        return str(self.profile.get("id") or "")

    def worklist_counts(self, cre_id: str, today: date, on_loaded: Callable[[dict[WorkList, int]], None]) -> None:
        run_in(reader_pool(), self.with_store(lambda s: s.worklist_counts(cre_id, today, self._saving)), on_loaded)

    def load_worklist_page(self, cre_id: str, which: WorkList, today: date, sort: str | None,
                           descending: bool | None, offset: int, limit: int) -> list[LeadSummary]:  # fmt: skip
        """Blocking: the worklist model runs it on the reader pool (a page of LeadSummary made off the GUI thread)."""
        saving = self._saving  # before the store reads the outbox (see the class docstring)
        page = self.with_store(
            lambda s: s.worklist_page(
                cre_id, which, today, sort=sort, descending=descending, offset=offset, limit=limit, saving=saving
            )
        )
        return page()

    def search(self, text: str) -> None:
        """Search the cache; only the newest request's answer is delivered (search_done)."""
        self._search_seq += 1
        seq = self._search_seq

        def deliver(result: list[LeadSummary]) -> None:
            if seq == self._search_seq:
                self.search_done.emit(text, result)

        run_in(reader_pool(), self.with_store(lambda s: s.search(text, saving=self._saving)), deliver)

    def lead_local(self, phone: str, on_loaded: Callable[[tuple[LeadSummary | None, list[OutboxItem]]], None]) -> None:
        """The lead as this desk knows it (cache + queue) and this desk's items about it, for the lead view."""

        def work(store: Store) -> tuple[LeadSummary | None, list[OutboxItem]]:
            saving = self._saving
            stored = store.items_for_lead(phone)
            refs = {i.client_ref for i in stored}
            own = [i for i in saving if i.lead_key == phone and i.client_ref not in refs]
            return store.lookup_desk(phone, saving), [*stored, *own]

        run_in(reader_pool(), self.with_store(work), on_loaded)

    def fetch_lead_detail(
        self, lead_id: int, on_loaded: Callable[[dict[str, Any]], None], on_failed: Callable[[BaseException], None]
    ) -> None:
        """The lead's whole history from the server (lead_detail), on the network pool (not a reader thread the
        lists need meanwhile)."""
        run_in(network_pool(), lambda: dict(self.api.rpc("lead_detail", {"lead_id": lead_id})), on_loaded, on_failed)

    def due_callbacks(self, cre_id: str, today: date, on_loaded: Callable[[list[LeadSummary]], None]) -> None:
        """This CRE's call-backs of today and later (the reminder timer picks the ones whose time has come)."""
        run_in(
            reader_pool(),
            self.with_store(lambda s: s.worklist_page(cre_id, WorkList.CALLBACKS, today, limit=500)),
            on_loaded,
        )

    def requeue(
        self,
        client_ref: str,
        payload: dict[str, Any] | None,
        on_queued: Callable[[list[OutboxItem]], None],
        on_failed: Callable[[BaseException], None],
    ) -> None:
        def work(store: Store) -> list[OutboxItem]:
            item = store.requeue(client_ref, payload)
            self.engine.wake_push()
            old = store.get(client_ref)
            # The edited lead, and the refused one (now "replaced" when the edit got a new client_ref).
            return [item] if old is None or old.client_ref == item.client_ref else [old, item]

        run_in(writer_pool(), self.with_store(work), on_queued, on_failed)

    def discard(
        self, client_ref: str, on_done: Callable[[Any], None], on_failed: Callable[[BaseException], None]
    ) -> None:
        def work(store: Store) -> OutboxItem | None:
            store.discard(client_ref)
            return store.get(client_ref)

        run_in(writer_pool(), self.with_store(work), on_done, on_failed)

    def load_items(self, on_loaded: Callable[[list[OutboxItem]], None]) -> None:
        run_in(reader_pool(), self.with_store(lambda s: s.items(self.shift_started)), on_loaded)

    def refresh_queue_stats(self) -> None:
        def work(store: Store) -> tuple[int, int, float | None]:
            return store.pending_count(), store.parked_count(), store.oldest_pending_at()

        run_in(reader_pool(), self.with_store(work), lambda r: self.queue_stats.emit(*r))

    def load_catalog(self, on_loaded: Callable[[dict[str, Any] | None], None]) -> None:
        run_in(reader_pool(), self.with_store(lambda s: s.load_catalog()), on_loaded)

    def cache_info(self, on_loaded: Callable[[tuple[int, float | None, bool]], None]) -> None:
        """(leads cached, when a page was last applied, whether the first sync has not caught up yet), off the GUI."""
        run_in(
            reader_pool(),
            self.with_store(lambda s: (s.cache_count(), s.last_synced_at(), s.first_sync_pending())),
            on_loaded,
        )

    def fetch_dashboard(self, date_from: Any, date_to: Any, branch: str | None) -> dict[str, Any]:
        """Blocking; the dashboard runs it on the reader pool."""
        return dict(
            self.api.rpc(
                "dashboard_summary",
                {"date_from": date_from.isoformat(), "date_to": date_to.isoformat(), "branch": branch},
            )
        )
