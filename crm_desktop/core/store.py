"""The local store: the synced lead cache and the durable outbox, in SQLite, fronted by one `Store` object.

Split by what is stored: `db.py` (SQLite base: connections, WAL, migrations, error blame), `cache.py` (the feed's
leads), `outbox.py` (operations waiting for the server), `worklist.py` and `search.py` (the CRE's lists and search,
local SQL over the cache with this desk's queue laid over it). This module puts them together and re-exports the
names the rest of the desk uses.

Two files, one object
---------------------
`Store(path)` opens two SQLite files side by side:

* ``<name>.sqlite3`` — the **cache**: phone → lead summary (from the server's `lead_changes` feed) and the sync
  cursor. Everything in it can be downloaded again, so it is tuned for speed (``synchronous=NORMAL``: a power cut
  may lose the last pages, never consistency — the cursor commits with its page) and, when damaged, it is thrown
  away and rebuilt from the server.
* ``<name>.outbox.sqlite3`` — what only this machine has or needs to start offline: the **outbox** of typed leads
  and the kept catalogue and profile. ``synchronous=FULL``: `enqueue` returns after the commit reached the disk
  (fsync of the WAL), because the form is cleared on return and the typed lead must survive a crash or power cut.
  It is never deleted: when damaged it is renamed aside and whatever rows are readable are carried into a new file.

Why two files rather than one: a damaged 1M-lead cache must not put queued leads at risk, and the fix for a damaged
cache (delete, re-sync) is the wrong fix for an outbox. Splitting also means a long sync page transaction never makes
an `enqueue` wait for the write lock, and the outbox fsync stays small (its WAL never holds cache pages). Nothing
needs to commit atomically across the two files. The catalogue and profile sit in the outbox file so a CRE can still
start and queue leads offline after the cache had to be rebuilt.

Threads
-------
One `Store` per thread (the writer thread, the sync thread, reader threads): connections are never shared, and are
opened lazily, so a lookup-only `Store` opens only the cache. WAL lets readers run beside a writer; ``busy_timeout``
covers the short waits between writers. `Store.open_or_rebuild` is the start-up entry point: it runs before any other
`Store` is open on the same files, because rebuilding replaces files underneath open connections.

Failures are sorted by blame in `db.py`: environment problems become a `StoreError` the CRE can act on.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from crm_desktop.core.cache import (
    CACHE_MIGRATIONS,
    CACHE_TUNING,
    FEED_COLUMNS,
    FeedHead,
    FeedPage,
)
from crm_desktop.core.db import (
    DEFAULT_BUSY_TIMEOUT_MS,
    ErrorKind,
    Migrations,
    Part,
    Recovery,
    StoreError,
    classify_error,
    default_store_path,
    outbox_path_for,
    store_error,
)
from crm_desktop.core.outbox import OUTBOX_MIGRATIONS, OutboxStateError, outbox_label
from crm_desktop.core.search import SearchStore

# The names tests and tools knew before the split.
_CACHE_MIGRATIONS = CACHE_MIGRATIONS
_OUTBOX_MIGRATIONS = OUTBOX_MIGRATIONS

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "FEED_COLUMNS",
    "ErrorKind",
    "FeedHead",
    "FeedPage",
    "OutboxStateError",
    "Part",
    "Recovery",
    "Store",
    "StoreError",
    "classify_error",
    "default_store_path",
    "outbox_label",
    "outbox_path_for",
    "store_error",
]


class Store(SearchStore):
    """The lead cache and the outbox of one server+user. One per thread; see the module docstring."""

    _MIGRATIONS: ClassVar[dict[Part, Migrations]] = {"cache": CACHE_MIGRATIONS, "outbox": OUTBOX_MIGRATIONS}
    _TUNING: ClassVar[dict[Part, str]] = {"cache": CACHE_TUNING}

    def __enter__(self) -> Store:
        return self

    @classmethod
    def open_or_rebuild(
        cls, path: Path | str, *, rebuild_cache: bool = False, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
    ) -> tuple[Store, Recovery]:
        """Open both files at start-up, repairing what is damaged.

        The outbox is checked in full (``quick_check``: it is small); the cache only as far as opening and reading
        it, because checking a 1M-lead file would delay every start. Damage found later shows up as
        ``StoreError(kind="corrupt", part="cache")``; the app then reopens with ``rebuild_cache=True``.
        Call this before any other `Store` is open on the same path.
        """
        store = cls(path, busy_timeout_ms=busy_timeout_ms)
        try:
            outbox = store._recover_outbox()
            cache_rebuilt = store._recover_cache(force=rebuild_cache)
        except BaseException:
            store.close()
            raise
        return store, Recovery(
            cache_rebuilt=cache_rebuilt,
            outbox_rebuilt=outbox.outbox_rebuilt,
            rescued=outbox.rescued,
            set_aside=outbox.set_aside,
        )
