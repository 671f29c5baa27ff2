"""The local store: the synced lead cache and the durable outbox, in SQLite, fronted by one `Store` object.

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

Failures, by blame (CONVENTIONS.md)
-----------------------------------
SQLite errors the environment causes — busy, read-only, disk full, corrupt, cannot open, I/O error — become a
`StoreError` with a ``kind`` and a message the CRE can act on. Anything else (a constraint violation, a misuse) is a
bug and propagates unchanged.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from crm_desktop.core import fileops
from crm_desktop.core.models import LeadSummary, OutboxItem, OutboxState, SourceSeen
from crm_desktop.core.paths import data_root
from crm_desktop.core.phone import mask as phone_mask

log = logging.getLogger(__name__)

ErrorKind = Literal["busy", "in_use", "read_only", "disk_full", "corrupt", "cannot_open", "io_error"]
Part = Literal["cache", "outbox"]

# A feed page's columns, as `lead_changes` names them. Extra columns are ignored (a newer server may add some).
FEED_COLUMNS: tuple[str, ...] = (
    "change_id",
    "lead_id",
    "phone",
    "uid",
    "customer_name",
    "sources",
    "lead_status",
    "final_status",
    "cre_name",
    "ps_name",
    "branch",
    "created_at",
    "follow_up_date",
)

DEFAULT_BUSY_TIMEOUT_MS = 5000

# -- schema -------------------------------------------------------------------------------------------------------
# Each migration is a tuple of statements, run in one transaction with the user_version bump. Statements, not a
# script: sqlite3's executescript() commits first, which would break the all-or-nothing migration.

_CACHE_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # A rowid table keyed by the phone's unique index rather than WITHOUT ROWID: a bulk sync appends rows to the
        # table b-tree in feed order and only the small (phone → rowid) index takes random inserts. A lookup is two
        # seeks, still a few microseconds.
        """
        CREATE TABLE lead_cache (
            phone           TEXT NOT NULL PRIMARY KEY,  -- E.164, the dedupe key; every keystroke seeks this index
            change_id       INTEGER NOT NULL,           -- feed position of this version: older versions never win
            lead_id         INTEGER NOT NULL,
            uid             TEXT NOT NULL,
            customer_name   TEXT NOT NULL,
            sources         TEXT NOT NULL,              -- JSON array exactly as the feed sent it; first = original
            lead_status     TEXT,
            final_status    TEXT NOT NULL,
            cre_name        TEXT,
            ps_name         TEXT,
            branch          TEXT,
            created_at      TEXT NOT NULL,
            follow_up_date  TEXT
        )
        """,
        # One row. The cursor lives in the cache file so it commits in the same transaction as its page.
        """
        CREATE TABLE sync_state (
            id         INTEGER PRIMARY KEY CHECK (id = 1),
            cursor     INTEGER NOT NULL,
            synced_at  REAL NOT NULL
        )
        """,
    ),
)

_OUTBOX_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE outbox (
            seq              INTEGER PRIMARY KEY,      -- rowid: the order leads were typed in; never reused
            client_ref       TEXT NOT NULL UNIQUE,     -- idempotency key, also inside payload
            payload          TEXT NOT NULL,            -- JSON: the `lead` object for create_lead
            state            TEXT NOT NULL
                             CHECK (state IN ('queued', 'sending', 'done', 'parked', 'discarded', 'replaced')),
            attempts         INTEGER NOT NULL DEFAULT 0,
            last_error       TEXT,
            answer           TEXT,                     -- JSON: the server's answer, when there is one
            created_at       REAL NOT NULL,
            updated_at       REAL NOT NULL,
            next_attempt_at  REAL NOT NULL,            -- backoff: not sent before this time
            label            TEXT NOT NULL DEFAULT '', -- customer name + masked phone, safe to show and log
            replaced_by      TEXT                      -- client_ref of the edited resend of a parked item
        )
        """,
        # The drain loop asks "oldest queued item that is due" and "when is the next one due" after every send;
        # the partial index holds only queued rows, so it stays tiny however long the history grows.
        "CREATE INDEX outbox_queued ON outbox (seq, next_attempt_at) WHERE state = 'queued'",
        # The "this shift" list reads by creation time.
        "CREATE INDEX outbox_created ON outbox (created_at)",
        # Catalogue and profile, kept for an offline start.
        """
        CREATE TABLE kept (
            key       TEXT PRIMARY KEY,
            value     TEXT NOT NULL,   -- JSON
            saved_at  REAL NOT NULL
        )
        """,
    ),
)

# Connection settings of the cache (per connection, so each thread's Store sets them). Measured with
# bench/bench_store.py on a 1M-lead first sync:
# * page_size 8192: only takes effect while the file is still empty (before the first table). Fewer, fuller b-tree
#   pages for the phone index, which takes a random insert for every row; ~10 % faster syncs.
# * wal_autocheckpoint 10000 pages (~80 MB) instead of 1000: a 5,000-row page dirties most leaf pages of the phone
#   index, so with the default every other page triggered a checkpoint (each an fsync with synchronous=NORMAL).
#   ~40-50 % faster syncs. journal_size_limit trims the WAL file back afterwards.
# * cache_size 32 MB: keeps the phone index of a 1M-lead cache (~25 MB) in memory during a sync.
_CACHE_TUNING = """
    PRAGMA page_size = 8192;
    PRAGMA wal_autocheckpoint = 10000;
    PRAGMA journal_size_limit = 67108864;
    PRAGMA cache_size = -32768;
"""

# -- statements ---------------------------------------------------------------------------------------------------

_LOOKUP = """
    SELECT lead_id, phone, uid, customer_name, sources, lead_status, final_status, cre_name, ps_name, branch,
           created_at, follow_up_date
      FROM lead_cache
     WHERE phone = :phone
"""

# The WHERE on DO UPDATE keeps a replayed older page from overwriting a newer version of the same lead.
_UPSERT_LEAD = """
    INSERT INTO lead_cache (phone, change_id, lead_id, uid, customer_name, sources, lead_status, final_status,
                            cre_name, ps_name, branch, created_at, follow_up_date)
    VALUES (:phone, :change_id, :lead_id, :uid, :customer_name, :sources, :lead_status, :final_status,
            :cre_name, :ps_name, :branch, :created_at, :follow_up_date)
    ON CONFLICT (phone) DO UPDATE SET
        change_id = excluded.change_id,
        lead_id = excluded.lead_id,
        uid = excluded.uid,
        customer_name = excluded.customer_name,
        sources = excluded.sources,
        lead_status = excluded.lead_status,
        final_status = excluded.final_status,
        cre_name = excluded.cre_name,
        ps_name = excluded.ps_name,
        branch = excluded.branch,
        created_at = excluded.created_at,
        follow_up_date = excluded.follow_up_date
    WHERE excluded.change_id > lead_cache.change_id
"""

_SET_CURSOR = """
    INSERT INTO sync_state (id, cursor, synced_at) VALUES (1, :cursor, :now)
    ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor, synced_at = excluded.synced_at
"""

# A feed page read by SQLite itself (Store.apply_feed_page). The header comes out in one statement; rows go from
# json_each straight into the upsert, so no Python object is made per row.
# SQLite's JSON functions are built in since 3.38 and compiled in by the Linux distributions before that.
_PAGE_HEAD = "SELECT key, type, CASE WHEN key = 'rows' THEN NULL ELSE value END FROM json_each(:page)"


@dataclass(frozen=True, slots=True)
class FeedHead:
    """A feed page's header (Store.read_feed_head): enough to ask for the next page before applying this one."""

    columns: tuple[str, ...]
    next_since: int
    more: bool
    remaining: int


@dataclass(frozen=True, slots=True)
class FeedPage:
    """What one applied `lead_changes` page said: its row count, rows changed, and where the feed goes on."""

    rows: int
    applied: int
    next_since: int
    more: bool
    remaining: int


def _require_feed_columns(columns: Sequence[str]) -> None:
    missing = [c for c in FEED_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"feed page lacks column(s) {missing}")


@lru_cache(maxsize=8)
def _page_upsert(columns: tuple[str, ...]) -> str:
    """The one-statement upsert of a page whose rows are arrays in `columns` order (the server names them)."""
    _require_feed_columns(columns)
    at = {c: i for i, c in enumerate(columns)}
    # json_extract gives a scalar as its SQL value and an array (sources) as JSON text. Not the ->/->> operators:
    # they need SQLite 3.38, and Ubuntu 22.04's Python links 3.37. The indexes are ours. A row that is not an array
    # of exactly the page's width gets no phone, so the NOT NULL constraint refuses the whole page.
    values = ", ".join(
        f"CASE WHEN json_array_length(r.value) = {len(columns)} THEN json_extract(r.value, '$[{at[c]}]') END"
        if c == "phone"
        else f"json_extract(r.value, '$[{at[c]}]')"
        for c in FEED_COLUMNS
    )
    conflict = _UPSERT_LEAD[_UPSERT_LEAD.index("ON CONFLICT") :]  # the same rule as apply_changes: newer wins
    # "WHERE true" keeps SQLite's parser from reading ON CONFLICT as a join constraint of the SELECT.
    return (
        f"INSERT INTO lead_cache ({', '.join(FEED_COLUMNS)}) "
        f"SELECT {values} FROM json_each(:page, '$.rows') AS r WHERE true {conflict}"
    )


_OUTBOX_COLUMNS = (
    "seq, client_ref, payload, state, attempts, last_error, answer, created_at, updated_at, next_attempt_at, label, "
    "replaced_by"
)
_SELECT_ITEM = f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE client_ref = :ref"

_INSERT_ITEM = """
    INSERT INTO outbox (client_ref, payload, state, attempts, created_at, updated_at, next_attempt_at, label)
    VALUES (:ref, :payload, 'queued', 0, :now, :now, :now, :label)
"""

# Queue order among the items that are due; an item in backoff lets later ones overtake it. Literal 'queued' so the
# planner can use the partial index.
_NEXT_DUE = f"""
    SELECT {_OUTBOX_COLUMNS} FROM outbox
     WHERE state = 'queued' AND next_attempt_at <= :now
     ORDER BY seq
     LIMIT 1
"""

# -- errors -------------------------------------------------------------------------------------------------------


class StoreError(Exception):
    """An environment problem with a local data file, told in words the CRE can act on.

    ``part`` says which file: a damaged or full *cache* never puts queued leads at risk; an *outbox* failure during
    `enqueue` means the lead was not saved and the form must be kept.
    """

    def __init__(self, kind: ErrorKind, message: str, *, part: Part, path: Path | None = None) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.part: Part = part
        self.path = path


class _NewerSchema(StoreError):
    """The file was written by a newer CRE Desk: a cache can be rebuilt, an outbox must be left alone."""


class OutboxStateError(ValueError):
    """An outbox transition that cannot happen from the item's current state (or for an unknown client_ref).

    A programming error or a UI race (e.g. "discard" on an item that was already resent), not an environment problem.
    """


_MESSAGES: dict[tuple[ErrorKind, Part], str] = {
    ("busy", "cache"): (
        "The local lead cache is busy (is CRE Desk open twice on this account?) — try again in a moment."
    ),
    ("busy", "outbox"): (
        "The local queue is busy (is CRE Desk open twice on this account?) — try again in a moment; queued leads "
        "are safe."
    ),
    # Windows: a scanner, a backup agent or a second desk holds a file that must be renamed or deleted (fileops).
    ("in_use", "cache"): (
        "Another program has the local lead cache open ({path}) — often a virus scanner or a backup; close a second "
        "CRE Desk if one is open, wait a moment and restart CRE Desk. Queued leads are safe."
    ),
    ("in_use", "outbox"): (
        "Another program has the local queue file open ({path}) — often a virus scanner or a backup; close a second "
        "CRE Desk if one is open, wait a moment and restart CRE Desk. Queued leads are kept."
    ),
    ("read_only", "cache"): (
        "The local data folder is read-only ({path}) — ask IT to give your account write access to it."
    ),
    ("read_only", "outbox"): (
        "The local data folder is read-only ({path}), so leads cannot be queued — ask IT to give your account write "
        "access to it."
    ),
    ("disk_full", "cache"): (
        "The disk is full, so the lead cache cannot be updated — free some disk space; queued leads are safe."
    ),
    ("disk_full", "outbox"): (
        "The disk is full, so nothing new can be saved in the local queue — free some disk space; leads already "
        "queued are safe."
    ),
    ("corrupt", "cache"): (
        "The local lead cache is damaged — restart CRE Desk to rebuild it from the server; queued leads are safe."
    ),
    ("corrupt", "outbox"): (
        "The local queue file is damaged — restart CRE Desk: it recovers what it can and keeps the damaged file for IT."
    ),
    ("cannot_open", "cache"): (
        "CRE Desk cannot open its local data file ({path}) — check that the folder exists and is writable, or ask IT."
    ),
    ("cannot_open", "outbox"): (
        "CRE Desk cannot open its local queue file ({path}) — check that the folder exists and is writable, or ask IT."
    ),
    ("io_error", "cache"): (
        "The disk reported an error reading or writing local data ({path}) — check the drive, or ask IT."
    ),
    ("io_error", "outbox"): (
        "The disk reported an error reading or writing the local queue ({path}) — check the drive, or ask IT."
    ),
}

# SQLite primary result codes (the low byte of extended codes) → whose fault.
_SQLITE_KINDS: dict[int, ErrorKind] = {
    3: "read_only",  # SQLITE_PERM
    5: "busy",  # SQLITE_BUSY
    6: "busy",  # SQLITE_LOCKED
    8: "read_only",  # SQLITE_READONLY
    10: "io_error",  # SQLITE_IOERR
    11: "corrupt",  # SQLITE_CORRUPT
    13: "disk_full",  # SQLITE_FULL
    14: "cannot_open",  # SQLITE_CANTOPEN
    15: "busy",  # SQLITE_PROTOCOL: WAL lock race that outlived the retries
    26: "corrupt",  # SQLITE_NOTADB
}

_OS_KINDS: dict[int, ErrorKind] = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EACCES: "read_only",
    errno.EPERM: "read_only",
    errno.EROFS: "read_only",
}


def store_error(kind: ErrorKind, part: Part, path: Path | None = None) -> StoreError:
    return StoreError(kind, _MESSAGES[kind, part].format(path=path or "?"), part=part, path=path)


def classify_error(exc: BaseException, part: Part, path: Path | None = None) -> StoreError | None:
    """The `StoreError` for an environment failure, or None when the failure is a bug and must propagate as is."""
    if isinstance(exc, StoreError):
        return exc
    kind: ErrorKind | None = None
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            kind = _SQLITE_KINDS.get(code & 0xFF)
    elif fileops.is_sharing_violation(exc):
        kind = "in_use"  # errno says EACCES, but nothing is read-only: another program holds the file
    elif isinstance(exc, OSError):
        kind = _OS_KINDS.get(exc.errno or 0, "cannot_open")
    return None if kind is None else store_error(kind, part, path)


# -- paths --------------------------------------------------------------------------------------------------------


def default_store_path(server_url: str, email: str) -> Path:
    """The cache file for this server and user in the platform data dir.

    Hashed, so the file name is safe on every filesystem and does not show the e-mail address; the URL is normalised
    so ``https://X/`` and ``https://x`` share one cache.
    """
    url = urlsplit(server_url.strip())
    key = f"{url.scheme.lower()}://{url.netloc.lower()}{url.path.rstrip('/')}\n{email.strip().lower()}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return data_root() / f"desk-{digest}.sqlite3"


def outbox_path_for(path: Path) -> Path:
    """``x.sqlite3`` → ``x.outbox.sqlite3``: the outbox file always sits next to its cache."""
    suffix = path.suffix or ".sqlite3"
    return path.with_name(f"{path.stem if path.suffix else path.name}.outbox{suffix}")


def _sidecars(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


# -- small helpers ------------------------------------------------------------------------------------------------

# Payloads, answers and kept blobs: readable UTF-8, compact. Built once (json.dumps with options builds one per call).
_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _sources_encoder() -> Callable[[Any], str]:
    """The encoder for a feed row's `sources` list, the one per-row cost of a sync that is ours rather than SQLite's.

    `JSONEncoder.encode` builds a C encoder on every call (~2.4 us for a one-source list, ~15 % of a row's whole
    apply time); building it once and calling it directly costs ~0.7 us. `c_make_encoder` is the stdlib's own
    accelerator (absent on some interpreters: then the plain encoder). ASCII escaping keeps the fast C string path;
    the text is only ever read back by json.loads. No circular-reference check: the lists come from json.loads.
    """
    from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]

    if c_make_encoder is None:  # pragma: no cover - CPython always has it
        return json.JSONEncoder(separators=(",", ":")).encode

    def refuse(o: object) -> Any:
        raise TypeError(f"{type(o).__name__} in a feed row's sources is not JSON")

    chunks = c_make_encoder(None, refuse, encode_basestring_ascii, None, ":", ",", False, False, True)

    def encode(obj: Any) -> str:
        return "".join(chunks(obj, 0))

    return encode


_encode_sources = _sources_encoder()


def outbox_label(payload: Mapping[str, Any]) -> str:
    """Customer name + masked phone: how a queued lead is named in lists and logs."""
    name = str(payload.get("customer_name") or "").strip()
    phone = str(payload.get("phone") or "").strip()
    return " · ".join(p for p in (name, phone_mask(phone) if phone else "") if p)


def _sources(text: str) -> tuple[SourceSeen, ...]:
    try:
        items = json.loads(text)
    except ValueError:
        return ()
    if not isinstance(items, list):
        return ()
    return tuple(
        SourceSeen(str(s.get("source", "")), str(s.get("sub_source", "")), s.get("at"))
        for s in items
        if isinstance(s, dict)
    )


def _summary(row: Sequence[Any]) -> LeadSummary:
    return LeadSummary(
        lead_id=row[0],
        phone=row[1],
        uid=row[2],
        customer_name=row[3],
        sources=_sources(row[4]),
        lead_status=row[5],
        final_status=row[6],
        cre_name=row[7],
        ps_name=row[8],
        branch=row[9],
        created_at=row[10],
        follow_up_date=row[11],
    )


def _item(row: Sequence[Any]) -> OutboxItem:
    return OutboxItem(
        seq=row[0],
        client_ref=row[1],
        payload=json.loads(row[2]),
        state=OutboxState(row[3]),
        attempts=row[4],
        last_error=row[5],
        answer=None if row[6] is None else json.loads(row[6]),
        created_at=row[7],
        updated_at=row[8],
        next_attempt_at=row[9],
        label=row[10],
        replaced_by=row[11],
    )


def _without_ref(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != "client_ref"}


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: all of it commits, or none of it.

    IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout instead of one of them failing
    with SQLITE_BUSY when it tries to upgrade a read lock mid-transaction.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        # SQLite may already have rolled back (e.g. after SQLITE_FULL); a failing ROLLBACK must not hide the cause.
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.debug("rollback failed", exc_info=True)
        raise


def _connect(path: Path, *, synchronous: str, busy_timeout_ms: int) -> sqlite3.Connection:
    # isolation_level=None: sqlite3 issues no implicit BEGIN/COMMIT; transactions are exactly the `_write` blocks.
    # check_same_thread=False: a Store is used by one thread at a time, but a Qt pool thread may end (QThreadPool's
    # waitForDone retires its threads) before the Store is closed; sign-out must still close it (Windows file locks).
    conn = sqlite3.connect(
        path, timeout=busy_timeout_ms / 1000, isolation_level=None, cached_statements=64, check_same_thread=False
    )
    try:
        # PRAGMAs take no bound parameters; these values are constants of this module, never input.
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
    except BaseException:
        conn.close()
        raise
    return conn


def _ensure_wal(conn: sqlite3.Connection, part: Part) -> None:
    """Switch the file to WAL; persistent, but checked on every open: a file copied in from elsewhere may not be WAL.

    The switch needs the file to itself, and SQLite answers SQLITE_BUSY at once, without the busy handler, when
    another connection opens the same new file at that moment (several Stores starting together). So the switch is
    retried here for up to the busy timeout; once any connection has switched, the mode reads back as "wal".
    """
    timeout_ms = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    deadline = time.monotonic() + timeout_ms / 1000
    delay = 0.002
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal":
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", 0)  # extended codes (BUSY_RECOVERY, ...): the low byte is the kind
            if _SQLITE_KINDS.get(code & 0xFF) != "busy" or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    if mode != "wal":
        log.warning("%s file stays in %s journal mode (no WAL on this filesystem?)", part, mode)


def _migrate(conn: sqlite3.Connection, migrations: tuple[tuple[str, ...], ...], part: Part, path: Path) -> None:
    """Bring the file to the newest schema. Cheap when it is current: one header read, no lock."""
    latest = len(migrations)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > latest:
        raise _NewerSchema(
            "cannot_open",
            f"The local data file {path} was written by a newer CRE Desk — update CRE Desk on this computer.",
            part=part,
            path=path,
        )
    _ensure_wal(conn, part)
    if version == latest:
        return
    with _write(conn):
        # Re-read under the write lock: another thread's Store may have migrated meanwhile.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for number in range(version, latest):
            for statement in migrations[number]:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {int(latest)}")  # an int of ours: PRAGMAs take no parameters
    if version < latest:
        log.info("%s schema migrated from version %d to %d", part, version, latest)


# -- the store ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    """What `Store.open_or_rebuild` had to repair, so the app can re-sync and tell the CRE."""

    cache_rebuilt: bool = False  # the cache was thrown away: sync again from cursor 0
    outbox_rebuilt: bool = False  # the outbox file was damaged and replaced
    rescued: int = 0  # outbox items carried over from the damaged file
    set_aside: Path | None = None  # the damaged outbox file, kept for IT (never deleted)

    @property
    def message(self) -> str | None:
        """One line for the message bar, or None when nothing happened worth telling."""
        if self.outbox_rebuilt:
            return (
                f"The local queue file was damaged: {self.rescued} queued lead(s) were recovered and the damaged file "
                f"was kept for IT at {self.set_aside}. Check this shift's list."
            )
        if self.cache_rebuilt:
            return "The local lead cache was rebuilt and is downloading again; queued leads are safe."
        return None


class Store:
    """The lead cache and the outbox of one server+user. One per thread; see the module docstring."""

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        self._path = Path(path)
        self._outbox_path = outbox_path_for(self._path)
        self._busy_timeout_ms = busy_timeout_ms
        self._cache: sqlite3.Connection | None = None
        self._outbox: sqlite3.Connection | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def outbox_path(self) -> Path:
        return self._outbox_path

    def close(self) -> None:
        for conn in (self._cache, self._outbox):
            if conn is not None:
                conn.close()
        self._cache = self._outbox = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    def _recover_outbox(self) -> Recovery:
        try:
            conn = self._outbox_db()
            with self._blame("outbox"):
                problems = [r[0] for r in conn.execute("PRAGMA quick_check")]
        except StoreError as exc:
            if exc.kind != "corrupt" or isinstance(exc, _NewerSchema):
                raise
            problems = [str(exc.__cause__ or exc)]
        if problems == ["ok"]:
            return Recovery()
        log.warning("outbox file is damaged (%s); setting it aside and rescuing what is readable", problems[:3])
        self._close_outbox()
        with self._blame("outbox"):
            aside = _set_aside(self._outbox_path)
        items, kept = _read_damaged_outbox(aside)
        conn = self._outbox_db()  # a fresh file
        with self._blame("outbox"), _write(conn):
            for row in items:
                conn.execute(
                    f"INSERT INTO outbox ({_OUTBOX_COLUMNS}) VALUES (:seq, :client_ref, :payload, :state, :attempts, "
                    ":last_error, :answer, :created_at, :updated_at, :next_attempt_at, :label, :replaced_by)",
                    row,
                )
            for row in kept:
                conn.execute("INSERT INTO kept (key, value, saved_at) VALUES (:key, :value, :saved_at)", row)
        log.warning("outbox rebuilt: %d item(s) rescued, damaged file kept at %s", len(items), aside)
        return Recovery(outbox_rebuilt=True, rescued=len(items), set_aside=aside)

    def _recover_cache(self, *, force: bool) -> bool:
        if not force:
            try:
                conn = self._cache_db()
                with self._blame("cache"):
                    # Touch both tables: a damaged header or schema page fails here rather than mid-shift.
                    conn.execute("SELECT phone FROM lead_cache LIMIT 1").fetchall()
                    conn.execute("SELECT cursor FROM sync_state").fetchall()
                return False
            except StoreError as exc:
                if exc.kind != "corrupt" and not isinstance(exc, _NewerSchema):
                    raise
                log.warning("cache file unusable (%s); rebuilding it from the server", exc.message)
        self._close_cache()
        # Only downloaded data lives here, so the damaged file is removed rather than kept (it can be 100s of MB).
        # The -wal must go with it: a stale WAL would be replayed into the new file.
        with self._blame("cache"):
            for p in (self._path, *_sidecars(self._path)):
                fileops.unlink(p, missing_ok=True)
        self._cache_db()
        return True

    # -- connections ----------------------------------------------------------------------------------------------

    @contextmanager
    def _blame(self, part: Part) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            err = classify_error(exc, part, self._path if part == "cache" else self._outbox_path)
            if err is None or err is exc:
                raise
            raise err from exc

    def _open(self, part: Part) -> sqlite3.Connection:
        path = self._path if part == "cache" else self._outbox_path
        migrations = _CACHE_MIGRATIONS if part == "cache" else _OUTBOX_MIGRATIONS
        # The cache can be re-downloaded: NORMAL may lose the last commits on power loss, never consistency.
        # The outbox holds leads nobody else has: FULL fsyncs the WAL on every commit.
        synchronous = "NORMAL" if part == "cache" else "FULL"
        with self._blame(part):
            fileops.private_file(path)  # 0600 in a 0700 folder: the cache is the whole customer list
            conn = _connect(path, synchronous=synchronous, busy_timeout_ms=self._busy_timeout_ms)
            try:
                if part == "cache":
                    conn.executescript(_CACHE_TUNING)  # no transaction is open yet, so the implicit COMMIT is moot
                _migrate(conn, migrations, part, path)
            except BaseException:
                conn.close()
                raise
        return conn

    def _cache_db(self) -> sqlite3.Connection:
        if self._cache is None:
            self._cache = self._open("cache")
        return self._cache

    def _outbox_db(self) -> sqlite3.Connection:
        if self._outbox is None:
            self._outbox = self._open("outbox")
        return self._outbox

    def _close_cache(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def _close_outbox(self) -> None:
        if self._outbox is not None:
            self._outbox.close()
            self._outbox = None

    # -- lead cache -----------------------------------------------------------------------------------------------

    def lookup(self, e164: str) -> LeadSummary | None:
        """The cached lead for a normalised number; runs on every keystroke, so it is one indexed seek."""
        try:
            row = self._cache_db().execute(_LOOKUP, {"phone": e164}).fetchone()
        except (sqlite3.Error, OSError) as exc:
            err = classify_error(exc, "cache", self._path)
            if err is None or err is exc:
                raise
            raise err from exc
        return None if row is None else _summary(row)

    def apply_changes(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], next_since: int) -> int:
        """Upsert one feed page and move the cursor to `next_since`, in one transaction.

        The cursor never gets ahead of the data: a crash or a bad row leaves both as they were, and the page is
        fetched again. `sources` may be the feed's JSON text (stored as is) or the parsed list (encoded once).
        Returns the number of rows inserted or changed (an older version of a lead already cached counts as 0).
        """
        cols = list(columns)
        _require_feed_columns(cols)
        if next_since < 0:
            raise ValueError("next_since must be >= 0")
        width = len(cols)
        at_sources = cols.index("sources")
        encode = _encode_sources

        def params() -> Iterator[dict[str, Any]]:
            for row in rows:
                if len(row) != width:
                    raise ValueError(f"feed row has {len(row)} values for {width} columns")
                values = dict(zip(cols, row, strict=True))
                sources = row[at_sources]
                if not isinstance(sources, str):
                    values["sources"] = encode(sources)
                yield values

        with self._blame("cache"):
            conn = self._cache_db()
            with _write(conn):
                applied = conn.executemany(_UPSERT_LEAD, params()).rowcount
                conn.execute(_SET_CURSOR, {"cursor": int(next_since), "now": time.time()})
        return max(applied, 0)

    def read_feed_head(self, text: str) -> FeedHead:
        """What a `lead_changes` answer (JSON text) says besides its rows: columns, next_since, more, remaining.

        Lets the sync ask for the next page while this one is applied. One parse, in SQLite, with the GIL released.
        Raises ValueError for a page that is not a well-formed feed page.
        """
        with self._blame("cache"):
            try:
                # One parse of the top level; the rows' value is not copied out, only its type.
                found = self._cache_db().execute(_PAGE_HEAD, {"page": text}).fetchall()
            except sqlite3.OperationalError as exc:
                if "malformed JSON" in str(exc):
                    raise ValueError("the feed page is not JSON") from exc
                raise
        kind = {key: typ for key, typ, _ in found}
        head: dict[str, Any] = {key: value for key, _, value in found}
        if (kind.get("rows"), kind.get("columns"), kind.get("next_since")) != ("array", "array", "integer"):
            raise ValueError("the feed page is not a JSON object with columns, rows and next_since")
        next_since = int(head["next_since"])
        if next_since < 0:
            raise ValueError("next_since must be >= 0")
        cols = json.loads(head["columns"])
        if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
            raise ValueError("the feed page's columns are not a list of names")
        remaining = int(head["remaining"]) if kind.get("remaining") == "integer" else 0
        return FeedHead(tuple(cols), next_since, kind.get("more") == "true", remaining)

    def apply_feed_page(self, text: str, head: FeedHead | None = None) -> FeedPage:
        """Apply one `lead_changes` answer as the server sent it (JSON text), in one transaction, like `apply_changes`.

        SQLite reads the page itself (``json_each``) with the GIL released, so a 5,000-row page costs the GUI thread
        nothing; decoding it with ``json.loads`` first held the GIL ~12 ms per page and fed the garbage collector
        65k objects (bench_ui.py's stall phase). `head` is `read_feed_head(text)` when the caller already has it.
        Raises ValueError for a page that is not a well-formed feed page; nothing is applied then.
        """
        if head is None:
            head = self.read_feed_head(text)
        upsert = _page_upsert(head.columns)
        with self._blame("cache"):
            conn = self._cache_db()
            with _write(conn):
                count = conn.execute("SELECT json_array_length(:page, '$.rows')", {"page": text}).fetchone()[0]
                try:
                    applied = conn.execute(upsert, {"page": text}).rowcount
                except sqlite3.IntegrityError as exc:  # a short row, or one without phone, UID or created_at
                    raise ValueError(
                        f"a feed row is not an array of {len(head.columns)} values with every required one ({exc})"
                    ) from exc
                conn.execute(_SET_CURSOR, {"cursor": head.next_since, "now": time.time()})
        return FeedPage(int(count), max(applied, 0), head.next_since, head.more, head.remaining)

    def sync_cursor(self) -> int:
        """The feed position the next `lead_changes` call starts after; 0 for an empty cache."""
        with self._blame("cache"):
            row = self._cache_db().execute("SELECT cursor FROM sync_state WHERE id = 1").fetchone()
        return 0 if row is None else int(row[0])

    def last_synced_at(self) -> float | None:
        """When the last page was applied (epoch seconds), for "cache as of …" in the status bar."""
        with self._blame("cache"):
            row = self._cache_db().execute("SELECT synced_at FROM sync_state WHERE id = 1").fetchone()
        return None if row is None else float(row[0])

    def cache_count(self) -> int:
        """Number of cached leads. A count over the phone index: tens of ms at 1M, so not for every keystroke."""
        with self._blame("cache"):
            return int(self._cache_db().execute("SELECT count(*) FROM lead_cache").fetchone()[0])

    def clear_cache(self) -> None:
        """Empty the cache and reset the cursor together, for a full re-sync (e.g. the server's feed was reset)."""
        with self._blame("cache"):
            conn = self._cache_db()
            with _write(conn):
                # No WHERE: SQLite's truncate optimisation drops the pages instead of deleting 1M rows one by one.
                conn.execute("DELETE FROM lead_cache")
                conn.execute("DELETE FROM sync_state")

    # -- kept catalogue and profile -------------------------------------------------------------------------------

    def _save_kept(self, key: str, data: Mapping[str, Any]) -> None:
        value = _encode_json(data)
        with self._blame("outbox"):
            conn = self._outbox_db()
            with _write(conn):
                conn.execute(
                    "INSERT INTO kept (key, value, saved_at) VALUES (:key, :value, :now) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, saved_at = excluded.saved_at",
                    {"key": key, "value": value, "now": time.time()},
                )

    def _load_kept(self, key: str) -> tuple[dict[str, Any], float] | None:
        with self._blame("outbox"):
            row = (
                self._outbox_db().execute("SELECT value, saved_at FROM kept WHERE key = :key", {"key": key}).fetchone()
            )
        return None if row is None else (json.loads(row[0]), float(row[1]))

    def save_catalog(self, data: Mapping[str, Any]) -> None:
        """Keep the last catalogue so the form's choices work offline."""
        self._save_kept("catalog", data)

    def load_catalog(self) -> dict[str, Any] | None:
        kept = self._load_kept("catalog")
        return None if kept is None else kept[0]

    def catalog_saved_at(self) -> float | None:
        """When the kept catalogue was fetched, so the UI can say how old offline choices are."""
        kept = self._load_kept("catalog")
        return None if kept is None else kept[1]

    def save_profile(self, data: Mapping[str, Any]) -> None:
        """Keep the signed-in user's profile for an offline start (name, role, branch)."""
        self._save_kept("profile", data)

    def load_profile(self) -> dict[str, Any] | None:
        kept = self._load_kept("profile")
        return None if kept is None else kept[0]

    # -- outbox ---------------------------------------------------------------------------------------------------

    def enqueue(self, payload: Mapping[str, Any], client_ref: str | None = None) -> OutboxItem:
        """Queue a typed lead; returns once it is committed to disk, so the form may be cleared.

        The client_ref goes inside the payload because create_lead reads it from the lead object: the store owns
        the idempotency key, so a sender cannot send a lead under a ref other than the one it was queued with.
        """
        inside = payload.get("client_ref")
        if client_ref is not None and inside is not None and inside != client_ref:
            raise ValueError("client_ref differs from the payload's client_ref")
        given = client_ref if client_ref is not None else inside
        if given is None:
            ref = str(uuid.uuid4())
        else:
            ref = str(given)
            uuid.UUID(ref)  # the server refuses anything else; fail here, while the CRE still has the form
        body = {**payload, "client_ref": ref}
        label = outbox_label(body)
        now = time.time()
        with self._blame("outbox"):
            conn = self._outbox_db()
            with _write(conn):
                cur = conn.execute(
                    _INSERT_ITEM, {"ref": ref, "payload": _encode_json(body), "now": now, "label": label}
                )
        log.info("queued lead %s (%s)", ref, phone_mask(str(body.get("phone") or "")))  # no name at INFO
        assert cur.lastrowid is not None
        return OutboxItem(
            seq=cur.lastrowid,
            client_ref=ref,
            payload=body,
            state=OutboxState.QUEUED,
            attempts=0,
            last_error=None,
            answer=None,
            created_at=now,
            updated_at=now,
            next_attempt_at=now,
            label=label,
        )

    def get(self, client_ref: str) -> OutboxItem | None:
        with self._blame("outbox"):
            row = self._outbox_db().execute(_SELECT_ITEM, {"ref": client_ref}).fetchone()
        return None if row is None else _item(row)

    def next_due(self, now: float) -> OutboxItem | None:
        """The oldest queued item whose backoff has expired. Parked items are not queued, so they never block."""
        with self._blame("outbox"):
            row = self._outbox_db().execute(_NEXT_DUE, {"now": now}).fetchone()
        return None if row is None else _item(row)

    def earliest_due(self) -> float | None:
        """When the next queued item becomes due, so the drain loop sleeps exactly that long (None: nothing queued)."""
        with self._blame("outbox"):
            row = self._outbox_db().execute("SELECT min(next_attempt_at) FROM outbox WHERE state = 'queued'").fetchone()
        return None if row[0] is None else float(row[0])

    def _transition(self, client_ref: str, sql: str, params: dict[str, Any], allowed: tuple[OutboxState, ...]) -> None:
        """Run one guarded UPDATE; when it matched nothing, say why (unknown ref or wrong state)."""
        with self._blame("outbox"):
            conn = self._outbox_db()
            with _write(conn):
                changed = conn.execute(sql, {**params, "ref": client_ref, "now": time.time()}).rowcount
                if changed:
                    return
                row = conn.execute("SELECT state FROM outbox WHERE client_ref = :ref", {"ref": client_ref}).fetchone()
        if row is None:
            raise OutboxStateError(f"no outbox item {client_ref}")
        raise OutboxStateError(
            f"outbox item {client_ref} is {row[0]}, expected {' or '.join(s.value for s in allowed)}"
        )

    def mark_sending(self, client_ref: str) -> None:
        """Claim a queued item for one send; `reset_sending` undoes claims a crash left behind."""
        self._transition(
            client_ref,
            "UPDATE outbox SET state = 'sending', updated_at = :now WHERE client_ref = :ref AND state = 'queued'",
            {},
            (OutboxState.QUEUED,),
        )

    def mark_done(self, client_ref: str, answer: Mapping[str, Any]) -> None:
        self._transition(
            client_ref,
            "UPDATE outbox SET state = 'done', answer = :answer, last_error = NULL, attempts = attempts + 1, "
            "updated_at = :now WHERE client_ref = :ref AND state = 'sending'",
            {"answer": _encode_json(answer)},
            (OutboxState.SENDING,),
        )

    def mark_retry(self, client_ref: str, error: str, next_attempt_at: float) -> None:
        """A send failed for a reason that may pass (network, 5xx): back in the queue, not before next_attempt_at."""
        self._transition(
            client_ref,
            "UPDATE outbox SET state = 'queued', last_error = :error, attempts = attempts + 1, "
            "next_attempt_at = :next, updated_at = :now WHERE client_ref = :ref AND state = 'sending'",
            {"error": error, "next": next_attempt_at},
            (OutboxState.SENDING,),
        )

    def mark_parked(self, client_ref: str, error: str, answer: Mapping[str, Any] | None = None) -> None:
        """The server refused the lead (or it cannot be sent as is): keep it, with the reason, for the CRE."""
        self._transition(
            client_ref,
            # attempts counts finished sends: parking a queued item (refused before sending) is not one.
            "UPDATE outbox SET state = 'parked', last_error = :error, answer = :answer, "
            "attempts = attempts + (state = 'sending'), updated_at = :now "
            "WHERE client_ref = :ref AND state IN ('queued', 'sending')",
            {"error": error, "answer": None if answer is None else _encode_json(answer)},
            (OutboxState.QUEUED, OutboxState.SENDING),
        )

    def requeue(self, client_ref: str, payload: Mapping[str, Any] | None = None) -> OutboxItem:
        """Resend a parked lead, edited or not; returns the item that will be sent.

        Unchanged payload: the same item goes back in the queue under the same client_ref (a replay is harmless).
        Changed payload: the server refuses a known client_ref with a different payload, so the edit is queued as a
        new item with a new client_ref, and the parked one is marked `replaced` (kept, pointing at its successor).
        """
        now = time.time()
        with self._blame("outbox"):
            conn = self._outbox_db()
            with _write(conn):
                row = conn.execute(_SELECT_ITEM, {"ref": client_ref}).fetchone()
                if row is None:
                    raise OutboxStateError(f"no outbox item {client_ref}")
                old = _item(row)
                if old.state is not OutboxState.PARKED:
                    raise OutboxStateError(f"outbox item {client_ref} is {old.state.value}, expected parked")
                if payload is None or _without_ref(payload) == _without_ref(old.payload):
                    conn.execute(
                        "UPDATE outbox SET state = 'queued', attempts = 0, last_error = NULL, answer = NULL, "
                        "next_attempt_at = :now, updated_at = :now WHERE client_ref = :ref",
                        {"ref": client_ref, "now": now},
                    )
                    new_ref = client_ref
                else:
                    new_ref = str(uuid.uuid4())
                    body = {**_without_ref(payload), "client_ref": new_ref}
                    conn.execute(
                        _INSERT_ITEM,
                        {"ref": new_ref, "payload": _encode_json(body), "now": now, "label": outbox_label(body)},
                    )
                    conn.execute(
                        "UPDATE outbox SET state = 'replaced', replaced_by = :new, updated_at = :now "
                        "WHERE client_ref = :ref",
                        {"ref": client_ref, "new": new_ref, "now": now},
                    )
                item = _item(conn.execute(_SELECT_ITEM, {"ref": new_ref}).fetchone())
        log.info("requeued lead %s as %s", client_ref, new_ref)
        return item

    def discard(self, client_ref: str) -> None:
        """The CRE drops a parked lead. Kept as `discarded`: nothing typed is deleted silently."""
        self._transition(
            client_ref,
            "UPDATE outbox SET state = 'discarded', updated_at = :now WHERE client_ref = :ref AND state = 'parked'",
            {},
            (OutboxState.PARKED,),
        )

    def reset_sending(self) -> int:
        """On start: items a crash left `sending` go back to the queue (the server dedupes a replay by client_ref)."""
        with self._blame("outbox"):
            conn = self._outbox_db()
            with _write(conn):
                n = conn.execute(
                    "UPDATE outbox SET state = 'queued', updated_at = :now WHERE state = 'sending'",
                    {"now": time.time()},
                ).rowcount
        if n:
            log.info("%d outbox item(s) left sending by the last run are queued again", n)
        return n

    def items(self, since: float | None = None) -> list[OutboxItem]:
        """Items for the "this shift" list, in queue order.

        Items created at or after `since`, plus every item still open (queued, sending, parked) however old: a lead
        from yesterday that still waits for the server or for the CRE's decision belongs on today's list.
        """
        with self._blame("outbox"):
            if since is None:
                rows = self._outbox_db().execute(f"SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY seq").fetchall()
            else:
                rows = (
                    self._outbox_db()
                    .execute(
                        f"SELECT {_OUTBOX_COLUMNS} FROM outbox "
                        "WHERE created_at >= :since OR state IN ('queued', 'sending', 'parked') ORDER BY seq",
                        {"since": since},
                    )
                    .fetchall()
                )
        return [_item(r) for r in rows]

    def pending_count(self) -> int:
        """Leads waiting to be sent (queued or sending) — the status bar's queue count."""
        with self._blame("outbox"):
            row = self._outbox_db().execute("SELECT count(*) FROM outbox WHERE state IN ('queued', 'sending')")
            return int(row.fetchone()[0])

    def parked_count(self) -> int:
        """Leads the server refused that wait for the CRE."""
        with self._blame("outbox"):
            return int(self._outbox_db().execute("SELECT count(*) FROM outbox WHERE state = 'parked'").fetchone()[0])

    def oldest_pending_at(self) -> float | None:
        """Creation time of the oldest lead still waiting to be sent, for "oldest queued 12 min ago"."""
        with self._blame("outbox"):
            row = (
                self._outbox_db()
                .execute("SELECT min(created_at) FROM outbox WHERE state IN ('queued', 'sending')")
                .fetchone()
            )
        return None if row[0] is None else float(row[0])


# -- rescuing a damaged outbox ------------------------------------------------------------------------------------


def _set_aside(path: Path) -> Path:
    """Rename a damaged file (and its WAL, which may hold the newest commits) out of the way; never delete it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    wal, shm = _sidecars(path)
    aside_wal, _ = _sidecars(aside)
    fileops.replace(path, aside)
    if wal.exists():
        fileops.replace(wal, aside_wal)
    fileops.unlink(shm, missing_ok=True)  # only an index of the WAL, rebuilt on open
    return aside


def _read_damaged_outbox(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Whatever outbox and kept rows can still be read; row by row when a whole-table read fails."""
    names = [c.strip() for c in _OUTBOX_COLUMNS.split(",")]
    items: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=1)
    except sqlite3.Error:
        log.warning("damaged outbox cannot be opened at all; nothing rescued", exc_info=True)
        return items, kept
    try:
        try:
            rows = conn.execute(f"SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY seq").fetchall()
        except sqlite3.Error:
            rows = []
            try:
                top = conn.execute("SELECT max(seq) FROM outbox").fetchone()[0] or 0
            except sqlite3.Error:
                top = 0
            for seq in range(1, top + 1):
                try:
                    one = conn.execute(
                        f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE seq = :seq", {"seq": seq}
                    ).fetchone()
                except sqlite3.Error:
                    continue
                if one is not None:
                    rows.append(one)
        for row in rows:
            values = dict(zip(names, row, strict=True))
            try:
                json.loads(values["payload"])
                OutboxState(values["state"])
            except (TypeError, ValueError):
                log.warning("outbox row %s unreadable; left in the damaged file", values.get("seq"))
                continue
            if values["state"] == OutboxState.SENDING:
                values["state"] = OutboxState.QUEUED.value
            items.append(values)
        try:
            for key, value, saved_at in conn.execute("SELECT key, value, saved_at FROM kept"):
                kept.append({"key": key, "value": value, "saved_at": saved_at})
        except sqlite3.Error:
            kept.clear()  # the catalogue comes back from the server; not worth a partial copy
    finally:
        conn.close()
    return items, kept
