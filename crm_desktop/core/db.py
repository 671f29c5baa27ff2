"""The SQLite base of the local store: connections, WAL, ordered migrations, write transactions, error blame.

`crm_desktop.core.store.Store` is built from three layers, split by what is stored (CONVENTIONS.md; Anki splits its
collection the same way): this base (two files, one connection per file per thread, errors sorted by blame), the
cache (`cache.py`: leads from the feed, worklist and search) and the outbox (`outbox.py`: operations, their states and
per-lead order). The module docstring of `store.py` explains why there are two files.

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from crm_desktop.core import fileops
from crm_desktop.core.paths import data_root

log = logging.getLogger(__name__)

ErrorKind = Literal["busy", "in_use", "read_only", "disk_full", "corrupt", "cannot_open", "io_error"]
Part = Literal["cache", "outbox"]
Migrations = tuple[tuple[str, ...], ...]

DEFAULT_BUSY_TIMEOUT_MS = 5000

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


class NewerSchema(StoreError):
    """The file was written by a newer CRE Desk: a cache can be rebuilt, an outbox must be left alone."""


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


# The cache's usual setting (see `_open`); a bulk fill writes with OFF for a while (cache.py, "unsynced fill").
CACHE_SYNCHRONOUS = "NORMAL"


def sidecars(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


# Payloads, answers and kept blobs: readable UTF-8, compact. Built once (json.dumps with options builds one per call).
encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@contextmanager
def write_txn(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
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


def connect(path: Path, *, synchronous: str, busy_timeout_ms: int) -> sqlite3.Connection:
    # isolation_level=None: sqlite3 issues no implicit BEGIN/COMMIT; transactions are exactly the `write_txn` blocks.
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


def migrate(conn: sqlite3.Connection, migrations: tuple[tuple[str, ...], ...], part: Part, path: Path) -> None:
    """Bring the file to the newest schema. Cheap when it is current: one header read, no lock."""
    latest = len(migrations)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > latest:
        raise NewerSchema(
            "cannot_open",
            f"The local data file {path} was written by a newer CRE Desk — update CRE Desk on this computer.",
            part=part,
            path=path,
        )
    _ensure_wal(conn, part)
    if version == latest:
        return
    with write_txn(conn):
        # Re-read under the write lock: another thread's Store may have migrated meanwhile.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for number in range(version, latest):
            for statement in migrations[number]:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {int(latest)}")  # an int of ours: PRAGMAs take no parameters
    if version < latest:
        log.info("%s schema migrated from version %d to %d", part, version, latest)


def set_aside(path: Path) -> Path:
    """Rename a damaged file (and its WAL, which may hold the newest commits) out of the way; never delete it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    wal, shm = sidecars(path)
    aside_wal, _ = sidecars(aside)
    fileops.replace(path, aside)
    if wal.exists():
        fileops.replace(wal, aside_wal)
    fileops.unlink(shm, missing_ok=True)  # only an index of the WAL, rebuilt on open
    return aside


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


class StoreBase:
    """Two SQLite files of one server+user, one connection each, opened lazily on the thread that uses them.

    Subclasses say which migrations and connection settings each file gets (`_MIGRATIONS`, `_TUNING`)."""

    _MIGRATIONS: ClassVar[dict[Part, Migrations]] = {"cache": (), "outbox": ()}
    _TUNING: ClassVar[dict[Part, str]] = {}

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

    def __enter__(self) -> StoreBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        migrations = self._MIGRATIONS[part]
        # The cache can be re-downloaded: NORMAL may lose the last commits on power loss, never consistency.
        # The outbox holds leads nobody else has: FULL fsyncs the WAL on every commit.
        synchronous = CACHE_SYNCHRONOUS if part == "cache" else "FULL"
        with self._blame(part):
            fileops.private_file(path)  # 0600 in a 0700 folder: the cache is the whole customer list
            conn = connect(path, synchronous=synchronous, busy_timeout_ms=self._busy_timeout_ms)
            try:
                tuning = self._TUNING.get(part)
                if tuning:
                    conn.executescript(tuning)  # no transaction is open yet, so the implicit COMMIT is moot
                migrate(conn, migrations, part, path)
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
