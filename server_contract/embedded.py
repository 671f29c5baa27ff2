"""The embedded PostgreSQL of the reference server: pgserver's binaries, started and stopped here.

Why not `pgserver.get_server`: it decides "already running" from the PID in `postmaster.pid` alone, so a PID now
owned by another process (normal after a reboot) or a postmaster that is a zombie makes it hand out a dead socket
("Connection refused"); its list of users (`.handle_pids.json`) keeps the PID of every SIGKILLed user, so PostgreSQL
is never stopped again; and with a long data-dir path it moves the trust-auth socket to a directory that is 0755
(0777 as root), so other local users could connect as superuser. Here:

- the socket lives in the data directory (initdb makes it 0700) or, when that path is too long for a Unix socket, in
  a fresh `mkdtemp` directory (0700), and the socket file itself is 0700;
- a stale `postmaster.pid` (its PID dead, a zombie, or not a postgres of this data directory) is removed, but only
  once no process is still working in the data directory; a postmaster still exiting is waited for, and a start that
  fails is retried until the deadline;
- every user of the cluster is recorded as (pid, start time) in `crm_holders.json`; dead ones are pruned, and the last
  one to leave stops PostgreSQL (`pg_ctl stop -m fast`, a clean shutdown). A user that is SIGKILLed cannot leave, so a
  small watchdog process (`python -m server_contract.embedded watch ...`) waits for it to die and leaves for it.

Windows has no Unix sockets: there PostgreSQL listens on 127.0.0.1 and a free port, as pgserver does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger(__name__)

HOLDERS_FILE = "crm_holders.json"
SOCKET_DIR_PREFIX = "crm-pg-"
# sun_path is 108 bytes on Linux and 104 on macOS, NUL included; PostgreSQL adds "/.s.PGSQL.<port>" to the directory.
_SOCKET_PATH_MAX = 100
_SOCKET_FILE = ".s.PGSQL.5432"

# One process may hold several clusters, and hold one twice (a test holding the cluster its server also opens).
_held: dict[Path, int] = {}
_held_lock = threading.Lock()


class ClusterError(RuntimeError):
    """The embedded PostgreSQL could not be started; the message says why (with the tail of its log)."""


@dataclass
class PostmasterFile:
    """What `postmaster.pid` says: pid, data dir, start time, port, socket dir, listen address, shmem, status."""

    pid: int
    port: int | None
    socket_dir: Path | None
    host: str | None
    status: str

    @classmethod
    def read(cls, pgdata: Path) -> PostmasterFile | None:
        try:
            lines = (pgdata / "postmaster.pid").read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return None
        except OSError:
            return None
        if not lines or not lines[0].strip().isdigit():
            return cls(pid=0, port=None, socket_dir=None, host=None, status="")  # being written: look again
        lines += [""] * (8 - len(lines))
        port = lines[3].strip()
        sock = lines[4].strip()
        return cls(
            pid=int(lines[0]),
            port=int(port) if port.isdigit() else None,
            socket_dir=Path(sock) if sock else None,
            host=lines[5].strip() or None,
            status=lines[7].strip(),
        )


def _pg_bin_dir() -> Path:
    """The pgserver wheel's PostgreSQL build, found without importing pgserver (whose import sets up its own lock in
    the runtime directory and warns when XDG_RUNTIME_DIR is unset)."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise ClusterError("the embedded PostgreSQL is not installed: pip install 'cre-desk[server]'")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _bin(name: str) -> str:
    return str(_pg_bin_dir() / (name + (".exe" if sys.platform == "win32" else "")))


def _system_user() -> str | None:
    """PostgreSQL refuses to run as root: then it runs as the `pgserver` OS user (pgserver's convention)."""
    if sys.platform == "win32" or os.geteuid() != 0:
        return None
    return "pgserver"


def _run(args: list[str], *, user: str | None, timeout: float) -> subprocess.CompletedProcess[str]:
    # Output to files, not pipes: a pipe inherited by the postmaster that pg_ctl leaves running would never close.
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out:
        kwargs: dict[str, Any] = {"user": user} if user else {}
        proc = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                              timeout=timeout, check=False, **kwargs)  # fmt: skip
        out.seek(0)
        proc.stdout = out.read()
    return proc


def _is_postgres(proc: psutil.Process) -> bool:
    try:
        return proc.name().lower().startswith("postgres") and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _works_in(proc: psutil.Process, pgdata: Path) -> bool:
    """A postgres process of this data directory: the postmaster has it after -D, every process has it as cwd."""
    try:
        cmd = proc.cmdline()
        if "-D" in cmd and cmd.index("-D") + 1 < len(cmd) and _same(Path(cmd[cmd.index("-D") + 1]), pgdata):
            return True
        return _same(Path(proc.cwd()), pgdata)
    except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
        return False


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def processes_in(pgdata: Path) -> list[psutil.Process]:
    """Live (not zombie) postgres processes working in `pgdata`: a running cluster, or the rest of one that died."""
    found = []
    for proc in psutil.process_iter():
        if _is_postgres(proc) and _works_in(proc, pgdata):
            found.append(proc)
    return found


def running_postmaster(pgdata: Path) -> PostmasterFile | None:
    """`postmaster.pid` if its PID is a live postgres of this data directory, else None (absent or stale)."""
    info = PostmasterFile.read(pgdata)
    if info is None or info.pid <= 0:
        return None
    try:
        proc = psutil.Process(info.pid)
    except psutil.NoSuchProcess:
        return None
    if not _is_postgres(proc) or not _works_in(proc, pgdata):
        return None
    return info


def start_options(socket_dir: Path | None, platform: str | None = None) -> list[str]:
    """The postgres options pg_ctl passes on: a private Unix socket only, or (Windows) loopback TCP on a free port."""
    platform = platform or sys.platform
    if platform == "win32" or socket_dir is None:
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return ["-o", '-h "127.0.0.1"', "-o", f"-p {port}"]
    return ["-o", '-h ""', "-o", f'-k "{socket_dir}"', "-o", "-c unix_socket_permissions=0700"]


def choose_socket_dir(pgdata: Path, user: str | None) -> Path:
    """The data directory when the socket path fits, else a new private directory under a short temp path.

    Both are 0700 and owned by PostgreSQL's OS user, whatever XDG_RUNTIME_DIR says (pgserver used
    `user_runtime_path()`, which falls back to a shared /tmp/runtime-<uid> directory)."""
    if len(os.fsencode(str(pgdata / _SOCKET_FILE))) <= _SOCKET_PATH_MAX:
        return pgdata
    base = tempfile.gettempdir()
    if len(os.fsencode(base)) > 40:
        base = "/tmp"
    path = Path(tempfile.mkdtemp(prefix=SOCKET_DIR_PREFIX, dir=base))  # mode 0700, a name nobody could pre-create
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _remove_private_socket_dir(socket_dir: Path | None, pgdata: Path) -> None:
    if socket_dir is None or _same(socket_dir, pgdata) or not socket_dir.name.startswith(SOCKET_DIR_PREFIX):
        return
    shutil.rmtree(socket_dir, ignore_errors=True)


def _log_tail(pgdata: Path) -> str:
    try:
        return (pgdata / "log").read_text(encoding="utf-8", errors="replace")[-2000:]
    except OSError:
        return ""


def _init_pgdata(pgdata: Path, user: str | None) -> None:
    if user is not None:
        _prepare_system_user(user, pgdata)
    if (pgdata / "PG_VERSION").exists():
        return
    log.info("creating the embedded PostgreSQL cluster in %s", pgdata)
    for attempt in range(3):
        if user is not None:
            _open_parents(pgdata)  # again: another program may have made a parent private meanwhile (pytest does)
        result = _run([_bin("initdb"), "-D", str(pgdata), "--auth=trust", "--auth-local=trust", "--encoding=utf8",
                       "-U", "postgres"], user=user, timeout=300)  # fmt: skip
        if result.returncode == 0:
            return
        log.info("initdb failed in %s (attempt %d): %s", pgdata, attempt + 1, result.stdout[-500:])
        for child in list(pgdata.iterdir()):  # initdb needs an empty directory to try again
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    raise ClusterError(f"initdb failed in {pgdata}:\n{result.stdout[-2000:]}")


def _open_parents(path: Path) -> None:
    for parent in path.parents:  # others may traverse (x) and list (r) the folders above, nothing more
        parent.chmod(parent.stat().st_mode | 0o055)


def _prepare_system_user(user: str, pgdata: Path) -> None:
    """Running as root: PostgreSQL runs as `user`, who must exist, reach its data directory and run the binaries
    (what pgserver does in the same case)."""
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/false", user], check=True, capture_output=True)
        entry = pwd.getpwnam(user)
    bin_dir = _pg_bin_dir()
    _open_parents(pgdata)
    _open_parents(bin_dir)
    if (bin_dir / "postgres").stat().st_mode & 0o001:
        trees: tuple[Path, ...] = ()  # done by an earlier start
    else:
        trees = (bin_dir, bin_dir.parent / "lib", bin_dir.parent / "share")
    for tree in trees:
        for root, _dirs, files in os.walk(tree):
            Path(root).chmod(Path(root).stat().st_mode | 0o055)
            for name in files:
                f = Path(root) / name
                f.chmod(f.stat().st_mode | (0o055 if tree == bin_dir else 0o044))
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)


def _lock_path(pgdata: Path) -> Path:
    return pgdata.with_name(pgdata.name + ".crm-lock")


@contextlib.contextmanager
def _cluster_lock(pgdata: Path) -> Any:
    import fasteners

    lock = fasteners.InterProcessLock(str(_lock_path(pgdata)))
    with lock:
        yield


def _holders(pgdata: Path) -> list[tuple[int, float]]:
    try:
        raw = json.loads((pgdata / HOLDERS_FILE).read_text(encoding="utf-8"))
        return [(int(p), float(t)) for p, t in raw]
    except (OSError, ValueError, TypeError):
        return []


def _alive(pid: int, started: float) -> bool:
    """The same process still runs (a PID reused after a reboot has another start time)."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and abs(proc.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False


def _pgserver_users(pgdata: Path) -> list[int]:
    """Live processes holding this cluster through pgserver itself (e.g. the benchmarks): they count as holders."""
    try:
        pids = json.loads((pgdata / ".handle_pids.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [p for p in pids if isinstance(p, int) and p != os.getpid() and psutil.pid_exists(p)]


def _write_holders(pgdata: Path, holders: list[tuple[int, float]]) -> None:
    tmp = pgdata / (HOLDERS_FILE + ".tmp")
    tmp.write_text(json.dumps(holders), encoding="utf-8")
    os.replace(tmp, pgdata / HOLDERS_FILE)


def _me() -> tuple[int, float]:
    return os.getpid(), psutil.Process().create_time()


class EmbeddedCluster:
    """One process's hold on the embedded PostgreSQL in `pgdata` (see the module docstring)."""

    def __init__(self, pgdata: Path, info: PostmasterFile, user: str | None) -> None:
        self.pgdata = pgdata
        self.info = info
        self.system_user = user
        self._released = False
        self._watchdog: subprocess.Popen[bytes] | None = None

    @classmethod
    def acquire(cls, pgdata: Path, *, timeout: float = 90.0, watchdog: bool = True) -> EmbeddedCluster:
        """Start PostgreSQL in `pgdata` (creating the cluster if needed) or join the one running there."""
        pgdata = Path(pgdata).expanduser().resolve()
        pgdata.mkdir(parents=True, exist_ok=True)
        user = _system_user()
        with _cluster_lock(pgdata):
            _init_pgdata(pgdata, user)
            info = _ensure_running(pgdata, user, timeout)
            holders = [h for h in _holders(pgdata) if _alive(*h)]
            me = _me()
            if me not in holders:
                holders.append(me)
            _write_holders(pgdata, holders)
        with _held_lock:
            _held[pgdata] = _held.get(pgdata, 0) + 1
        cluster = cls(pgdata, info, user)
        if watchdog:
            cluster._watchdog = start_watchdog(pgdata, *me)
        return cluster

    @property
    def pid(self) -> int:
        return self.info.pid

    def conninfo(self, dbname: str = "postgres", user: str = "postgres") -> str:
        from psycopg.conninfo import make_conninfo  # not at the top: the watchdog process needs no psycopg

        if self.info.socket_dir is not None:
            return make_conninfo("", host=str(self.info.socket_dir), port=self.info.port or 5432, user=user,
                                 dbname=dbname)  # fmt: skip
        return make_conninfo("", host=self.info.host or "127.0.0.1", port=self.info.port, user=user, dbname=dbname)

    def release(self) -> None:
        """Drop this hold; the last holder stops PostgreSQL cleanly."""
        if self._released:
            return
        self._released = True
        with _held_lock:
            left = _held.get(self.pgdata, 1) - 1
            if left > 0:
                _held[self.pgdata] = left
                return
            _held.pop(self.pgdata, None)
        leave(self.pgdata, *_me())
        if self._watchdog is not None:
            # It would leave for us once we exit; we have left, so it has nothing more to do.
            with contextlib.suppress(OSError):
                self._watchdog.kill()
            self._watchdog.wait()
            self._watchdog = None


def _ensure_running(pgdata: Path, user: str | None, timeout: float) -> PostmasterFile:
    """Join the running postmaster, or clear what a dead one left and start a new one; retry until `timeout`."""
    deadline = time.monotonic() + timeout
    waited_for: set[int] = set()
    last_error = ""
    while True:
        info = running_postmaster(pgdata)
        if info is not None:
            if info.status == "ready":
                return info
            last_error = f"PostgreSQL (PID {info.pid}) is {info.status or 'starting'}"
        else:
            leftovers = processes_in(pgdata)
            if leftovers:
                # A killed postmaster's children still hold its shared memory: a new postmaster would refuse.
                new = {p.pid for p in leftovers} - waited_for
                if new:
                    log.warning("waiting for an old PostgreSQL of %s to exit (PIDs %s)", pgdata,
                                ", ".join(str(p.pid) for p in leftovers))  # fmt: skip
                    waited_for |= new
                last_error = f"old PostgreSQL processes still running: {sorted(p.pid for p in leftovers)}"
            else:
                stale = PostmasterFile.read(pgdata)
                if stale is not None:
                    log.info("removing a stale postmaster.pid (PID %s is not a PostgreSQL of %s)", stale.pid, pgdata)
                    with contextlib.suppress(FileNotFoundError):
                        (pgdata / "postmaster.pid").unlink()
                    _remove_private_socket_dir(stale.socket_dir, pgdata)
                if user is not None:
                    _open_parents(pgdata)  # again: another program may have made a parent private meanwhile
                socket_dir = None if sys.platform == "win32" else choose_socket_dir(pgdata, user)
                args = [_bin("pg_ctl"), "-D", str(pgdata), "-w", "-t", "60", "-l", str(pgdata / "log"),
                        *start_options(socket_dir), "start"]  # fmt: skip
                try:
                    result = _run(args, user=user, timeout=90)
                except subprocess.TimeoutExpired:
                    result = None
                if result is not None and result.returncode == 0:
                    started = running_postmaster(pgdata)
                    if started is not None and started.status == "ready":
                        return started
                    continue  # look again
                if socket_dir is not None:
                    _remove_private_socket_dir(socket_dir, pgdata)
                last_error = (result.stdout if result is not None else "pg_ctl timed out") + _log_tail(pgdata)
        if time.monotonic() > deadline:
            raise ClusterError(f"the embedded PostgreSQL in {pgdata} did not start: {last_error[-3000:]}")
        time.sleep(0.2)


def leave(pgdata: Path, pid: int, started: float) -> bool:
    """Remove holder (pid, started) and every dead one; stop PostgreSQL when none is left. True if it was stopped."""
    with _cluster_lock(pgdata):
        holders = [h for h in _holders(pgdata) if h != (pid, started) and _alive(*h)]
        _write_holders(pgdata, holders)
        if holders or _pgserver_users(pgdata):
            return False
        info = running_postmaster(pgdata)
        if info is None:
            return False
        if not stop_postmaster(pgdata, info):
            return False
        _remove_private_socket_dir(info.socket_dir, pgdata)
        return True


def stop_postmaster(pgdata: Path, info: PostmasterFile, timeout: float = 60.0) -> bool:
    """A clean "fast" shutdown: running transactions are rolled back, a shutdown checkpoint is written.

    POSIX: SIGINT to the postmaster, which is all `pg_ctl stop -m fast` does, but without pg_ctl's need to reach the
    data directory as PostgreSQL's OS user (a parent folder another program made private again, e.g. pytest's
    /tmp/pytest-of-<user>, would stop it). Windows: pg_ctl, which signals through an event there."""
    if sys.platform == "win32":
        result = _run([_bin("pg_ctl"), "-D", str(pgdata), "-w", "-t", str(int(timeout)), "-m", "fast", "stop"],
                      user=None, timeout=timeout + 30)  # fmt: skip
        if result.returncode != 0:
            log.warning("pg_ctl stop failed in %s: %s", pgdata, result.stdout.strip()[-500:])
        return result.returncode == 0
    import signal

    try:
        proc = psutil.Process(info.pid)
        proc.send_signal(signal.SIGINT)
    except psutil.NoSuchProcess:
        return True
    if not wait_gone(proc, timeout):
        log.warning("PostgreSQL in %s did not stop within %.0f s", pgdata, timeout)
        return False
    return True


def wait_gone(proc: psutil.Process, timeout: float | None = None) -> bool:
    """Wait until `proc` has ended; a zombie (dead, not yet reaped by its parent) counts as ended."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            proc.wait(timeout=0.5)
            return True
        except psutil.TimeoutExpired:
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    return True
            except psutil.NoSuchProcess:
                return True
        except psutil.NoSuchProcess:
            return True
        if deadline is not None and time.monotonic() > deadline:
            return False


def watchdog_popen_kwargs(platform: str | None = None) -> dict[str, Any]:
    """Detach the watchdog: a Ctrl-C or a kill of the server's process group must not take it along."""
    if (platform or sys.platform) == "win32":
        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200)
        flags |= getattr(subprocess, "CREATE_NO_WINDOW", 0x8000000)
        return {"creationflags": flags}
    return {"start_new_session": True}


def start_watchdog(pgdata: Path, pid: int, started: float) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "server_contract.embedded", "watch", str(pgdata), str(pid), repr(started)]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, **watchdog_popen_kwargs())


def watch(pgdata: Path, pid: int, started: float) -> int:
    """Wait for holder `pid` to end however it ends (a SIGKILL included), then leave the cluster for it."""
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - started) < 1.0:
            wait_gone(proc)
    except psutil.NoSuchProcess:
        pass
    stopped = leave(pgdata, pid, started)
    if stopped:
        log.info("stopped the embedded PostgreSQL of %s after its last user (PID %s) ended", pgdata, pid)
    return 0


def _main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "watch":
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return watch(Path(argv[1]), int(argv[2]), float(argv[3]))
    print("usage: python -m server_contract.embedded watch PGDATA PID START_TIME", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
