"""One desk per user and data folder.

Two desks on one outbox and one keyring entry break each other: both drain the same queue (one push thread used to
die of it), and the second one's silent sign-in rotates the shared refresh token, so at the next refresh both are
signed out. So the first desk holds a lock file in the data folder for as long as it runs (`QLockFile`: a crashed
holder's lock is recognised by its dead PID and taken over) and listens on a local socket (`QLocalServer`, a named
pipe on Windows). A second start finds the lock, asks the first to come to the front and exits; if the first does
not answer, it says plainly that CRE Desk is already running.

The key is the data folder (one per OS user unless IT moved it) plus a mode: two demo desks signed in as different
demo users may run side by side for a training session, two for one user may not."""

from __future__ import annotations

import getpass
import hashlib
import logging
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, Signal, Slot
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from crm_desktop.core import fileops

log = logging.getLogger(__name__)

_MESSAGE = b"raise\n"
ALREADY_RUNNING = (
    "CRE Desk is already running for your account on this computer. Use the open window (check the taskbar); "
    "two desks on one account would sign each other out."
)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in a stripped-down environment: the data folder alone still separates desks
        return "user"


class SingleInstance(QObject):
    """Signals: activation_requested() when another start of the desk asked this one to come to the front."""

    activation_requested = Signal()

    def __init__(self, data_dir: Path, mode: str = "desk", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.data_dir = data_dir
        key = f"{_user()}\n{data_dir.resolve()}\n{mode}"
        self.name = "cre-desk-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
        self.lock_path = data_dir / f"{mode}.lock"
        self._lock: QLockFile | None = None
        self._server: QLocalServer | None = None

    def acquire(self) -> bool:
        """True when this process is the desk; False when another one runs (it has been asked to come forward)."""
        fileops.private_dir(self.data_dir)
        lock = QLockFile(str(self.lock_path))
        lock.setStaleLockTime(0)  # held for the whole shift: never stale by age, only when its process is gone
        if not lock.tryLock(200):
            log.info("another desk holds %s", self.lock_path)
            return False
        self._lock = lock
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)  # only this OS user may knock
        QLocalServer.removeServer(self.name)  # a socket file left by a crashed desk (we hold the lock: it is ours)
        if not server.listen(self.name):
            log.warning("single-instance socket unavailable (%s); a 2nd start will only be told", server.errorString())
        server.newConnection.connect(self._on_server_new_connection)
        self._server = server
        return True

    def notify_running(self, timeout_ms: int = 2000) -> bool:
        """From a second start: ask the running desk to come to the front; False when it did not answer."""
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(timeout_ms):
            return False
        socket.write(_MESSAGE)
        delivered = socket.waitForBytesWritten(timeout_ms)
        socket.disconnectFromServer()
        return delivered

    def release(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._lock is not None:
            self._lock.unlock()
            self._lock = None

    @Slot()
    def _on_server_new_connection(self) -> None:
        assert self._server is not None
        while (socket := self._server.nextPendingConnection()) is not None:
            # The second start writes its one line right after connecting: a short wait here, once per knock, keeps
            # the sockets' lifetime simple (no per-socket slots on objects Qt may delete first).
            if not socket.bytesAvailable():
                socket.waitForReadyRead(1000)
            message = bytes(socket.readAll().data())
            socket.abort()
            socket.deleteLater()
            if message.startswith(_MESSAGE.strip()):
                log.info("a second start of the desk asked this one to come forward")
                self.activation_requested.emit()
