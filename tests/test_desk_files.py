"""The desk's files on a real PC: private permissions, one data root IT can move, renames and deletes that survive
Windows' sharing violations (told apart from "read-only"), and no customer name in the log at INFO."""

from __future__ import annotations

import ast
import logging
import os
import stat
import sys
from pathlib import Path

import pytest
from serverproc import new_lead, phone_for

from crm_desktop.core import fileops, paths
from crm_desktop.core.store import Store, StoreError, classify_error, default_store_path, outbox_path_for

ROOT = Path(__file__).resolve().parents[1]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes; on Windows the profile's ACLs keep files private")
def test_store_files_are_0600_in_a_0700_folder_whatever_the_umask(tmp_path: Path):
    old = os.umask(0o022)
    try:
        folder = tmp_path / "data" / "cre-desk"
        store = Store(folder / "desk.sqlite3")
        store.enqueue(new_lead(phone_for(4001)))
        store.lookup(phone_for(4001))
        files = sorted(p for p in folder.iterdir())
        assert {p.name for p in files} >= {"desk.sqlite3", "desk.outbox.sqlite3", "desk.outbox.sqlite3-wal"}
        assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
        assert _mode(folder) == 0o700
        store.close()
        # A file left 0644 by an older version is tightened when opened.
        os.chmod(outbox_path_for(folder / "desk.sqlite3"), 0o644)
        os.chmod(folder, 0o755)
        Store(folder / "desk.sqlite3").pending_count()
        assert _mode(outbox_path_for(folder / "desk.sqlite3")) == 0o600 and _mode(folder) == 0o700
    finally:
        os.umask(old)


def test_the_data_root_follows_the_environment_then_the_machine_config(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(paths.ENV_DATA_DIR, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    config = tmp_path / "machine" / "cre-desk.ini"
    monkeypatch.setenv(paths.ENV_MACHINE_CONFIG, str(config))
    assert default_store_path("https://x.supabase.co", "a@b.c").parent == tmp_path / "xdg" / "cre-desk"
    config.parent.mkdir()
    config.write_text(
        "[desk]\ndata_dir = " + str(tmp_path / "persistent" / "{user}") + "\nserver_url = https://x.supabase.co\n"
        "anon_key = ключ\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("USER", "asha")
    monkeypatch.setenv("USERNAME", "asha")
    assert default_store_path("https://x.supabase.co", "a@b.c").parent == tmp_path / "persistent" / "asha"
    assert paths.machine_config()["anon_key"] == "ключ"  # UTF-8, whatever the locale
    assert paths.log_dir() == tmp_path / "persistent" / "asha" / "logs"
    monkeypatch.setenv(paths.ENV_DATA_DIR, str(tmp_path / "env"))
    assert default_store_path("https://x.supabase.co", "a@b.c").parent == tmp_path / "env"


def _sharing_violation(name: str) -> PermissionError:
    exc = PermissionError(13, "The process cannot access the file because it is being used by another process", name)
    exc.winerror = 32  # type: ignore[attr-defined]  # what Windows sets; POSIX OSError has no such argument
    return exc


def _corrupt(path: Path) -> None:
    with path.open("r+b") as f:
        f.seek(0)
        f.write(b"this is not a database at all" * 100)


@pytest.mark.expected_log_warnings
def test_setting_a_damaged_outbox_aside_waits_for_a_scanner_to_let_go(tmp_path: Path, monkeypatch):
    path = tmp_path / "desk.sqlite3"
    with Store(path) as store:
        store.enqueue(new_lead(phone_for(4002)))
    _corrupt(outbox_path_for(path))
    real_replace = os.replace
    refused: list[str] = []

    def busy_twice(src, dst):  # type: ignore[no-untyped-def]
        if len(refused) < 2:
            refused.append(str(src))
            raise _sharing_violation(str(src))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", busy_twice)
    store, recovery = Store.open_or_rebuild(path)
    store.close()
    assert len(refused) == 2 and recovery.outbox_rebuilt and recovery.set_aside is not None
    assert recovery.set_aside.exists()


@pytest.mark.expected_log_warnings
def test_a_file_that_stays_in_use_is_named_so_not_read_only(tmp_path: Path, monkeypatch):
    path = tmp_path / "desk.sqlite3"
    with Store(path) as store:
        store.lookup(phone_for(1))  # the cache file exists
    _corrupt(path)
    monkeypatch.setattr(fileops, "RETRY_SECONDS", 0.3)
    real_unlink = Path.unlink

    def always_busy(self: Path, missing_ok: bool = False) -> None:
        if self == path:
            raise _sharing_violation(str(self))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", always_busy)
    with pytest.raises(StoreError) as caught:
        Store.open_or_rebuild(path)
    assert caught.value.kind == "in_use"
    assert "Another program has the local lead cache open" in str(caught.value)
    assert "read-only" not in str(caught.value)
    # A real permission problem is still one.
    denied = classify_error(PermissionError(13, "Permission denied", str(path)), "outbox", path)
    assert denied is not None and denied.kind == "read_only"


def test_customer_names_never_reach_the_log_at_info(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    with Store(tmp_path / "desk.sqlite3") as store:
        item = store.enqueue(new_lead(phone_for(4003), customer_name="Zeenat Qureshi"))
        store.mark_sending(item.client_ref)
        store.mark_parked(item.client_ref, "refused")
        store.requeue(item.client_ref, {**item.payload, "customer_name": "Zeenat Q"})
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert lines and not [line for line in lines if "Zeenat" in line or phone_for(4003) in line]


_NAMEY = {"label", "labels", "lost", "customer_name", "full_name", "not_saved_labels", "name"}


def test_no_log_call_at_info_or_above_is_given_a_customer_name():
    """Every log call of the desk, read from the source: its arguments must not name a label or a customer name."""
    offenders = []
    for file in sorted((ROOT / "crm_desktop").rglob("*.py")):
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in ("info", "warning", "error", "exception", "critical"):
                continue
            if not (isinstance(node.func.value, ast.Name) and node.func.value.id in ("log", "logger", "logging")):
                continue
            for arg in node.args[1:]:
                if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id == "len":
                    continue  # a count of leads names nobody
                names = {n.id for n in ast.walk(arg) if isinstance(n, ast.Name)}
                names |= {n.attr for n in ast.walk(arg) if isinstance(n, ast.Attribute)}
                if names & _NAMEY:
                    offenders.append(f"{file.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


@pytest.mark.skipif(sys.platform == "win32", reason="the check itself is portable; one run is enough")
def test_every_text_read_and_write_names_its_encoding():
    """open()/read_text()/write_text() without encoding= use the locale's (cp1252 on Windows)."""
    offenders = []
    for folder in ("crm_desktop", "server_contract", "tests", "bench", "docs", "packaging"):
        for file in sorted((ROOT / folder).rglob("*.py")) + sorted((ROOT / folder).rglob("*.spec")):
            tree = ast.parse(file.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
                if name not in ("open", "read_text", "write_text"):
                    continue
                if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in (
                    "os", "tarfile", "zipfile", "webbrowser", "socket", "gzip",
                ):  # fmt: skip
                    continue
                modes = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                modes += [k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)]
                if any("b" in str(m) for m in modes):
                    continue
                if name == "open" and isinstance(func, ast.Attribute) and not modes and node.keywords:
                    continue  # e.g. a connection pool's open(wait=True): not a file
                if not any(k.arg == "encoding" for k in node.keywords):
                    offenders.append(f"{file.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_the_log_is_0600_in_a_0700_folder_under_the_data_root(tmp_path: Path, monkeypatch):
    import logging.handlers

    from crm_desktop.ui.app import setup_logging

    monkeypatch.setenv(paths.ENV_DATA_DIR, str(tmp_path / "root"))
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    for h in before:
        if isinstance(h, logging.handlers.RotatingFileHandler):
            root.removeHandler(h)
    old = os.umask(0o022)
    try:
        path = setup_logging()
        logging.getLogger("crm_desktop.test").info("a line")
        assert path == tmp_path / "root" / "logs" / "cre-desk.log"
        assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    finally:
        os.umask(old)
        for h in list(root.handlers):
            if h not in before:
                root.removeHandler(h)
                h.close()
        for h in before:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(level)
