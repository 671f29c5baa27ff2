"""File operations on the desk's own files that hold up on Windows, and keep the files private.

On Windows a file that any process holds open (a virus scanner mid-scan, a backup agent, a second desk, this
process's own connection not yet closed) cannot be renamed or deleted: `os.replace`/`unlink` fail at once with
WinError 32 (sharing violation) or 33 (lock violation), which Python reports as a PermissionError with errno EACCES.
SQLite's own win32 layer retries such locks; Python does not. So renames and deletes here retry for a few seconds,
and a lock that outlasts them is told apart from a real permission problem (`is_sharing_violation`): "another
program has the file open", not "the folder is read-only".

Files are created 0600 in 0700 folders on POSIX (the cache is the whole customer list); on Windows the profile's
ACLs already keep them private, and chmod there only toggles the read-only flag, so it is skipped. Qt-free."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

SHARING_VIOLATION = 32  # ERROR_SHARING_VIOLATION
LOCK_VIOLATION = 33  # ERROR_LOCK_VIOLATION
RETRY_SECONDS = 5.0  # how long a rename/delete waits for a scanner or backup agent to let go
_FIRST_DELAY = 0.05

T = TypeVar("T")


def is_sharing_violation(exc: BaseException) -> bool:
    """True for Windows' "the file is in use by another process" (not a permission problem)."""
    return isinstance(exc, PermissionError) and getattr(exc, "winerror", None) in (SHARING_VIOLATION, LOCK_VIOLATION)


def _retrying(what: str, op: Callable[[], T]) -> T:
    deadline = time.monotonic() + RETRY_SECONDS
    delay = _FIRST_DELAY
    while True:
        try:
            return op()
        except PermissionError as exc:
            if not is_sharing_violation(exc) or time.monotonic() + delay > deadline:
                raise
            log.info("%s: the file is in use by another program; retrying in %.2f s", what, delay)
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def replace(src: Path, dst: Path) -> None:
    """`os.replace`, retried while another program holds either file (Windows)."""
    _retrying(f"renaming {src.name}", lambda: os.replace(src, dst))


def unlink(path: Path, *, missing_ok: bool = True) -> None:
    """`Path.unlink`, retried while another program holds the file (Windows)."""
    _retrying(f"deleting {path.name}", lambda: path.unlink(missing_ok=missing_ok))


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def flush_to_disk(path: Path) -> None:
    """What the OS holds of the file written so far, on the disk (`os.fsync` on a handle of our own: whoever wrote
    it). A writable handle: Windows flushes only those."""
    _fsync(path, os.O_RDWR | getattr(os, "O_BINARY", 0))


def create_on_disk(path: Path) -> None:
    """An empty file that is there after a power cut from now on: the file flushed and, on POSIX, its folder's entry
    for it too (an fsync of the file alone may leave a new name only in memory). NTFS journals its entries itself."""
    with open(path, "wb") as f:
        os.fsync(f.fileno())
    if os.name == "posix":
        _fsync(path.parent, os.O_RDONLY)


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) if needed; the folder itself is made 0700 on POSIX."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name == "posix" and path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    """Make sure `path` exists as a 0600 file in a 0700 folder before anything else (SQLite) opens it: SQLite creates
    a database's -wal and -shm files with the database file's mode."""
    private_dir(path.parent)
    if os.name == "posix":
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    return path
