"""Background work for the UI: a `QRunnable` per operation, its signals on a small `QObject`, and the two pools.

Pools are sized on purpose:
- `writer_pool`: ONE thread. Outbox writes (enqueue, requeue, discard) run here in submission order, so two quick
  Enters can never commit out of order and no two UI writes race for SQLite's write lock.
- `reader_pool`: two threads for lookups and RPC reads (dashboard, catalogue). The as-you-type duplicate lookup runs
  here, so a slow dashboard refresh never delays the caller-facing lookup by more than one job.
- `network_pool`: two threads for the RPC reads a view starts for itself as it opens (a lead's history). A request
  waits for the server; on the reader pool it held a thread the list reloading behind it needed (bench_worklist:
  open a lead, press Enter at once: the list's page queued behind lead_detail and the counts).
Workers never touch widgets; results come back through queued signals on the GUI thread."""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)


class WorkerSignals(QObject):
    """Signals: succeeded(object) with the job's result, failed(object) with the exception (its traceback text in
    `exc.__traceback_text__`), finished() after either."""

    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()


class Worker(QRunnable):
    """Runs `fn()` on a pool thread and ends in exactly one of succeeded/failed, then finished."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = WorkerSignals()
        self.setAutoDelete(True)

    def run(self) -> None:
        delivered = True
        try:
            result = self.fn()
        except BaseException as exc:  # reported to the GUI thread, never swallowed
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            delivered = self._emit(self.signals.failed, exc)
            if not delivered:  # nobody is left to show it: the log is where it goes
                log.warning("a background job failed after the desk closed: %s", exc.__traceback_text__)  # type: ignore[attr-defined]
        else:
            delivered = self._emit(self.signals.succeeded, result)
            if not delivered:
                log.info("a background job ended after the desk closed; its result is dropped")
        finally:
            if delivered:
                self._emit(self.signals.finished)

    def _emit(self, signal: Any, *args: Any) -> bool:
        """Emit, or False when the signals object is gone: at exit PySide deletes every QObject Python owns, and a
        job still running (a slow request) then emitted into a deleted object. The RuntimeError went to the error
        presenter on this pool thread, whose dialog waited there forever: the demo's --screenshot run never exited."""
        try:
            signal.emit(*args)
        except RuntimeError:
            if shiboken6.isValid(self.signals):
                raise
            return False
        return True


_writer: QThreadPool | None = None
_reader: QThreadPool | None = None
_network: QThreadPool | None = None


def writer_pool() -> QThreadPool:
    global _writer
    if _writer is None:
        _writer = QThreadPool()
        _writer.setMaxThreadCount(1)  # ordering: see module docstring
        _writer.setExpiryTimeout(-1)  # the thread keeps its SQLite connection for the whole run
    return _writer


def reader_pool() -> QThreadPool:
    global _reader
    if _reader is None:
        _reader = QThreadPool()
        _reader.setMaxThreadCount(2)  # a lookup never waits behind more than one slow read
        _reader.setExpiryTimeout(-1)
    return _reader


def network_pool() -> QThreadPool:
    global _network
    if _network is None:
        _network = QThreadPool()
        _network.setMaxThreadCount(2)  # leads opened one after the other: the newest history need not queue long
    return _network


class _Relay(QObject):
    """Receives a worker's signals on the thread that started it (the GUI thread) and calls the plain callables
    there. Connecting a signal straight to a lambda would run the lambda on the pool thread."""

    def __init__(
        self,
        on_success: Callable[[Any], None] | None,
        on_failure: Callable[[BaseException], None] | None,
        on_finished: Callable[[], None] | None,
    ) -> None:
        super().__init__()
        self._on_success_cb = on_success
        self._on_failure_cb = on_failure or _unhandled
        self._on_finished_cb = on_finished
        self.signals: WorkerSignals | None = None

    @Slot(object)
    def _on_worker_succeeded(self, result: Any) -> None:
        if self._on_success_cb is not None and _alive(self._on_success_cb):
            self._on_success_cb(result)

    @Slot(object)
    def _on_worker_failed(self, exc: BaseException) -> None:
        if _alive(self._on_failure_cb):
            self._on_failure_cb(exc)

    @Slot()
    def _on_worker_finished(self) -> None:
        try:
            if self._on_finished_cb is not None:
                self._on_finished_cb()
        finally:
            signals, self.signals = self.signals, None
            if signals is not None:
                signals.deleteLater()  # on this (the GUI) thread, after every queued delivery
            _live.discard(self)


def _alive(callback: Callable[..., Any]) -> bool:
    """False when the callback is a method of a widget that was deleted while the job ran (a closed window), also
    behind functools.partial (callbacks that carry a request id or a client_ref)."""
    while isinstance(callback, functools.partial):
        callback = callback.func
    owner = getattr(callback, "__self__", None)
    return not isinstance(owner, QObject) or shiboken6.isValid(owner)


_live: set[_Relay] = set()  # relays of running jobs, kept alive until their job finished


def run_in(
    pool: QThreadPool,
    fn: Callable[[], Any],
    on_success: Callable[[Any], None] | None = None,
    on_failure: Callable[[BaseException], None] | None = None,
    on_finished: Callable[[], None] | None = None,
) -> Worker:
    """One line per operation: what runs, what happens on success, on failure, when done. Call from the GUI thread;
    the callbacks run there. A failure without a handler goes to the shared error presenter (sys.excepthook)."""
    worker = Worker(fn)
    relay = _Relay(on_success, on_failure, on_finished)
    # The relay owns the signals object until `finished` has been delivered here: otherwise it dies with the
    # auto-deleted runnable on the pool thread while this thread may still be delivering its signals (a segfault
    # bench/bench_ui.py --stress-workers reproduced 5 times out of 5).
    relay.signals = worker.signals
    _live.add(relay)
    worker.signals.succeeded.connect(relay._on_worker_succeeded)
    worker.signals.failed.connect(relay._on_worker_failed)
    worker.signals.finished.connect(relay._on_worker_finished)
    pool.start(worker)
    return worker


def _unhandled(exc: BaseException) -> None:
    import sys

    sys.excepthook(type(exc), exc, exc.__traceback__)


def wait_for_pools(msecs: int = 10_000) -> None:
    """On shutdown: let queued writes finish (a typed lead must reach the disk)."""
    for which, pool in (("writer", _writer), ("reader", _reader), ("network", _network)):
        if pool is not None and not pool.waitForDone(msecs):
            log.warning("the %s pool still has %d job(s) running after %d ms", which, pool.activeThreadCount(), msecs)
