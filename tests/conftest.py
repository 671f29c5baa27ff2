"""Fixtures mirror the architecture: one real PostgreSQL (pgserver) and one real reference server per session, data
reset per test; real SQLite files in tmp dirs; the real Qt event loop, offscreen."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from serverproc import LEAD_TABLES, Api, ServerProcess, stop_cluster


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The reference server with the demo users (leads are wiped per test by `clean_db`)."""
    from server_contract.embedded import EmbeddedCluster

    base = tmp_path_factory.mktemp("refserver")
    # This process holds the embedded cluster so it outlives server restarts and kills within the session.
    cluster = EmbeddedCluster.acquire(base / "pgdata")
    proc = ServerProcess(data_dir=base / "pgdata", log_path=base / "server.log", extra_args=["--demo"])
    proc.start()
    proc.extra_args.remove("--demo")  # restarts (outage tests) must not seed demo leads into an emptied desk
    yield proc
    proc.stop()
    stop_cluster(cluster)


@pytest.fixture
def db(server: ServerProcess) -> Iterator[psycopg.Connection[Any]]:
    """Superuser connection to the server's database, for setting up and checking what the API did."""
    with psycopg.connect(server.database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def clean_db(db: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    db.execute(f"truncate {LEAD_TABLES} restart identity cascade")
    db.execute("alter sequence lead_uid_seq restart")
    db.execute("alter sequence lead_change_seq restart")
    return db


@pytest.fixture
def api(server: ServerProcess, clean_db: psycopg.Connection[Any]) -> Iterator[Api]:
    if not server.running:
        server.start()
    client = Api(server)
    yield client
    client.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture(autouse=True)
def _no_unexpected_log_warnings(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A test fails when the project logs a warning or error it did not expect (mark: expected_log_warnings)."""
    yield
    if request.node.get_closest_marker("expected_log_warnings"):
        return
    ours = [
        r for r in caplog.get_records("call")
        if r.levelno >= 30 and r.name.split(".")[0] in ("crm_desktop", "server_contract")
    ]  # fmt: skip
    assert not ours, [f"{r.name}: {r.getMessage()}" for r in ours]


@pytest.fixture
def memory_keyring() -> Iterator[Any]:
    """The OS keyring replaced by an in-process backend (CI has no Secret Service); restored afterwards."""
    import keyring
    from keyring_backend import MemoryKeyring

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def styled(qapp: Any) -> Iterator[None]:
    """The app's style sheet, as the desk runs with it: its paddings, bold and font sizes decide what fits (open_desk
    alone runs without it). Reset afterwards, so other tests keep Qt's plain style."""
    from crm_desktop.ui.app import style_sheet

    qapp.setStyleSheet(style_sheet())
    yield
    qapp.setStyleSheet("")
