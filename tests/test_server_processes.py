"""The reference server as a process among processes: restarts after any kill, no orphaned PostgreSQL, the stdin stop
channel (also the demo desk's), a private socket, and the Windows branches exercised on Linux.

Each test runs its own server on its own data directory (not the session cluster): they kill things."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from psycopg.conninfo import conninfo_to_dict
from serverproc import ServerProcess

from server_contract.embedded import PostmasterFile, processes_in

TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stopped cluster with the demo data, made once: each test starts from a copy (initdb and seeding cost more
    than the test)."""
    base = tmp_path_factory.mktemp("template")
    ServerProcess(data_dir=base / "pgdata", log_path=base / "server.log", extra_args=["--demo"]).start().stop()
    return base / "pgdata"


@pytest.fixture
def pgdata(template: Path, tmp_path: Path) -> Path:
    return _copy_cluster(template, tmp_path / "pgdata")


def _copy_cluster(template: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template, dest, symlinks=True)
    owner = template.stat()
    if sys.platform != "win32" and os.geteuid() == 0:  # PostgreSQL runs as its own OS user and must own its files
        for root, dirs, files in os.walk(dest):
            for name in [root, *(Path(root) / d for d in dirs), *(Path(root) / f for f in files)]:
                os.chown(name, owner.st_uid, owner.st_gid)
    return dest


def _server(tmp_path: Path, pgdata: Path, env: dict[str, str] | None = None) -> ServerProcess:
    return ServerProcess(data_dir=pgdata, log_path=tmp_path / "server.log", extra_args=["--demo"], env=env)


def _signs_in(server: ServerProcess) -> None:
    r = httpx.post(f"{server.url}/auth/v1/token", params={"grant_type": "password"},
                   headers={"apikey": server.anon_key}, json={"email": "cre1@demo.local", "password": "demo1234"},
                   timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text


def _postmaster(pgdata: Path) -> psutil.Process:
    info = PostmasterFile.read(pgdata)
    assert info is not None
    return psutil.Process(info.pid)


def _cleanly_shut_down(pgdata: Path) -> bool:
    """PostgreSQL wrote its shutdown checkpoint and removed its lock file: stopped, not killed."""
    log = (pgdata / "log").read_text(encoding="utf-8", errors="replace")
    return not (pgdata / "postmaster.pid").exists() and log.rstrip().endswith("database system is shut down")


def _kill_everything(server: ServerProcess, pgdata: Path) -> None:
    """A power cut: the server, the postmaster and every backend die at once; nobody cleans up."""
    procs = processes_in(pgdata)
    for p in procs:
        p.kill()
    server.stop(kill=True)
    psutil.wait_procs(procs, timeout=30)


def _wait_for_log(path: Path, text: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(encoding="utf-8", errors="replace"):
            return True
        time.sleep(0.1)
    return False


# ------------------------------------------------------------------------------------------------------ restarts


def test_restarts_when_postmaster_pid_names_another_live_process(tmp_path: Path, pgdata: Path):
    """After a reboot the PID in a stale postmaster.pid often belongs to some other live process."""
    server = _server(tmp_path, pgdata).start()
    pgdata = server.data_dir
    stale = (pgdata / "postmaster.pid").read_text(encoding="utf-8").splitlines()
    _kill_everything(server, pgdata)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        (pgdata / "postmaster.pid").write_text("\n".join([str(other.pid), *stale[1:]]) + "\n", encoding="utf-8")
        server.start()
        _signs_in(server)
        assert other.poll() is None  # the unrelated process was left alone
    finally:
        server.stop()
        other.kill()
        other.wait()


@pytest.mark.skipif(sys.platform == "win32", reason="System V shared memory held by a child: the POSIX case")
def test_restart_waits_for_an_old_postgres_still_exiting(tmp_path: Path, pgdata: Path):
    """A killed postmaster's children still hold its shared memory for a moment; a new postmaster refuses to start
    then. Here one of them is held (suspended) until the new server has said it waits for it."""
    server = _server(tmp_path, pgdata).start()
    pgdata = server.data_dir
    postmaster = _postmaster(pgdata)
    straggler = next(p for p in postmaster.children() if "checkpointer" in " ".join(p.cmdline()))
    straggler.suspend()
    try:
        postmaster.kill()
        server.stop(kill=True)
        with ThreadPoolExecutor(1) as pool:
            starting = pool.submit(server.start, 120)
            waited = _wait_for_log(server.log_path, "waiting for an old PostgreSQL")
            straggler.resume()
            starting.result(timeout=180)
        assert waited, server.log_path.read_text(encoding="utf-8")[-2000:]
        _signs_in(server)
    finally:
        if straggler.is_running():
            straggler.resume()
        server.stop()


def test_six_restarts_right_after_killing_server_and_postgres(tmp_path: Path, pgdata: Path):
    """The red team's round: kill -9 of everything, restart at once, six times; every restart must come up."""
    server = _server(tmp_path, pgdata).start()
    try:
        for _ in range(6):
            _kill_everything(server, server.data_dir)
            server.start()
            _signs_in(server)
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------ stopping and orphans


def test_sigkill_of_the_server_leaves_no_postgres_running(tmp_path: Path, pgdata: Path):
    server = _server(tmp_path, pgdata).start()
    postmaster = _postmaster(server.data_dir)
    server.stop(kill=True)
    postmaster.wait(timeout=90)  # raises TimeoutExpired if PostgreSQL is orphaned
    assert _cleanly_shut_down(server.data_dir)
    assert not processes_in(server.data_dir)


def test_the_server_stops_postgres_cleanly_when_its_stdin_closes(tmp_path: Path, pgdata: Path):
    server = _server(tmp_path, pgdata).start()
    proc = server.proc
    assert proc is not None and proc.stdin is not None
    postmaster = _postmaster(server.data_dir)
    proc.stdin.close()
    assert proc.wait(timeout=90) == 0
    postmaster.wait(timeout=30)
    assert _cleanly_shut_down(server.data_dir)
    server.stop()


_DESK = """
import json, sys, time
from pathlib import Path
from crm_desktop.ui.demo import DemoServer
demo = DemoServer.start(Path(sys.argv[1]))
print(json.dumps({"server": demo.proc.pid}), flush=True)
time.sleep(600)
"""


def _isolated_env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "data"),
                XDG_STATE_HOME=str(tmp_path / "state"), XDG_CONFIG_HOME=str(tmp_path / "config"),
                XDG_CACHE_HOME=str(tmp_path / "cache"))  # fmt: skip


def test_the_demo_server_stops_when_the_desk_that_started_it_is_killed(tmp_path: Path):
    demo_dir = tmp_path / "demo"
    desk = subprocess.Popen([sys.executable, "-c", _DESK, str(demo_dir)], stdout=subprocess.PIPE, text=True,
                            env=_isolated_env(tmp_path))  # fmt: skip
    assert desk.stdout is not None
    try:
        line = desk.stdout.readline()
        assert line, "the desk could not start its demo server"
        server = psutil.Process(json.loads(line)["server"])
        postmaster = _postmaster(demo_dir / "pgdata")
        desk.kill()  # a crash: the desk's DemoServer.stop() never runs
        desk.wait()
        _, alive = psutil.wait_procs([server, postmaster], timeout=90)
        assert not alive, alive
        assert _cleanly_shut_down(demo_dir / "pgdata")
    finally:
        if desk.poll() is None:
            desk.kill()
            desk.wait()
        desk.stdout.close()


# ------------------------------------------------------------------------------------------------- the socket


def _psql(sockdir: Path, port: int, user: str | None) -> subprocess.CompletedProcess[str]:
    from server_contract.embedded import _bin

    kwargs: dict[str, Any] = {"user": user} if user else {}
    return subprocess.run([_bin("psql"), "-X", "-h", str(sockdir), "-p", str(port), "-U", "postgres", "-d", "crm",
                           "-Atc", "select current_user"], capture_output=True, text=True, cwd="/", timeout=60,
                          env={"PATH": "/usr/bin:/bin"}, **kwargs)  # fmt: skip


@pytest.mark.skipif(sys.platform == "win32", reason="Unix sockets; Windows listens on loopback TCP")
@pytest.mark.parametrize("path_length", ["short", "too long for a socket"])
def test_the_embedded_postgres_socket_is_reachable_only_by_its_user(tmp_path: Path, template: Path, path_length: str):
    """Trust auth is safe only behind a socket nobody else can open, whatever the path and XDG_RUNTIME_DIR."""
    pgdata = _copy_cluster(template, tmp_path / ("d" * 90 if path_length != "short" else "d") / "pgdata")
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    server = _server(tmp_path, pgdata, env=env).start()
    try:
        params = conninfo_to_dict(server.database_url)
        sockdir, port = Path(str(params["host"])), int(params.get("port") or 5432)
        if path_length == "short":
            assert sockdir == pgdata.resolve()
        assert sockdir.stat().st_mode & 0o077 == 0, oct(sockdir.stat().st_mode)
        assert (sockdir / f".s.PGSQL.{port}").stat().st_mode & 0o077 == 0
        if os.geteuid() == 0:  # try it as another local user
            assert _psql(sockdir, port, None).stdout.strip() == "postgres"  # the command itself works
            other = _psql(sockdir, port, "nobody")
            assert other.returncode != 0 and "Permission denied" in other.stderr, other
    finally:
        server.stop()
    if path_length != "short":
        assert not sockdir.exists()  # the private directory goes with the cluster


# ------------------------------------------------------------------------------ Windows branches, run on Linux


def test_on_windows_the_server_runs_on_a_selector_event_loop(monkeypatch: pytest.MonkeyPatch):
    """uvicorn hands out a ProactorEventLoop on Windows, which psycopg's async pool refuses."""
    import uvicorn

    from server_contract.__main__ import _bind, event_loop_factory, run_server

    assert event_loop_factory("linux") is None  # elsewhere uvicorn's own choice (uvloop where installed)
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                seen["loop"] = type(asyncio.get_running_loop())
                server.should_exit = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    sock = _bind("127.0.0.1", 0)
    monkeypatch.setattr(sys, "platform", "win32")
    try:
        run_server(server, sock)
    finally:
        monkeypatch.undo()
        sock.close()
    assert seen["loop"] is asyncio.SelectorEventLoop


def test_windows_process_and_socket_options():
    from crm_desktop.ui.demo import popen_kwargs
    from server_contract.__main__ import reuse_option
    from server_contract.embedded import start_options, watchdog_popen_kwargs

    create_no_window, new_group = 0x08000000, 0x00000200
    assert popen_kwargs("win32")["creationflags"] & create_no_window  # no console window beside the desk
    assert popen_kwargs("linux") == {}
    flags = watchdog_popen_kwargs("win32")["creationflags"]
    assert flags & create_no_window and flags & new_group  # a Ctrl-C to the server's group spares the watchdog
    assert watchdog_popen_kwargs("linux") == {"start_new_session": True}
    # No Unix sockets on Windows: loopback TCP on a free port.
    options = " ".join(start_options(None, "win32"))
    assert '-h "127.0.0.1"' in options and "-p " in options and "-k" not in options
    assert "unix_socket_permissions=0700" in " ".join(start_options(Path("/x"), "linux"))
    # SO_REUSEADDR on Windows lets another socket take a port in use.
    assert reuse_option("win32") != socket.SO_REUSEADDR
    assert reuse_option("linux") == socket.SO_REUSEADDR


def test_the_tests_stop_and_kill_processes_portably():
    """No POSIX-only signal or call in the tests: Popen.kill/terminate, psutil, or closing the server's stdin."""
    forbidden_calls = {"kill", "killpg", "getuid", "getpgid", "setsid"}
    found = []
    for path in sorted(TESTS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == "signal" and node.attr.startswith("SIG") and node.attr != "SIGTERM":
                    found.append(f"{path.name}:{node.lineno} signal.{node.attr}")
                if node.value.id == "os" and node.attr in forbidden_calls:
                    found.append(f"{path.name}:{node.lineno} os.{node.attr}")
                if node.attr == "send_signal":
                    found.append(f"{path.name}:{node.lineno} .send_signal")
            if isinstance(node, ast.keyword) and node.arg == "preexec_fn":
                found.append(f"{path.name}:{node.lineno} preexec_fn")
    assert not found, found
