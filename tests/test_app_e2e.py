"""End to end: the real `crm-desktop --demo` entry point in a child process (embedded server included)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
from PySide6.QtGui import QImage


def run_app(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path / "home"),
               XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_STATE_HOME=str(tmp_path / "state"), XDG_CACHE_HOME=str(tmp_path / "cache"))  # fmt: skip
    cmd = [sys.executable, "-m", "crm_desktop", "--demo", "--demo-dir", str(tmp_path / "demo"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)


def _servers_for(demo_dir: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info.get("cmdline") or []
        if ("server_contract" in cmd or "postgres" in " ".join(cmd[:1])) and str(demo_dir) in " ".join(cmd):
            found.append(p)
    return found


def test_demo_opens_the_desk_renders_a_screenshot_and_stops_its_server(tmp_path: Path):
    shot = tmp_path / "desk.png"
    result = run_app(tmp_path, "--screenshot", str(shot))
    assert result.returncode == 0, result.stderr[-3000:]
    image = QImage(str(shot))
    assert not image.isNull() and image.width() >= 800 and image.height() >= 500
    assert not _servers_for(tmp_path / "demo")  # closing the app stopped what it started, PostgreSQL included


def test_demo_as_team_lead(tmp_path: Path):
    shot = tmp_path / "lead.png"
    result = run_app(tmp_path, "--as", "lead@demo.local", "--screenshot", str(shot))
    assert result.returncode == 0, result.stderr[-3000:]
    assert not QImage(str(shot)).isNull()


def test_an_unattended_run_that_hangs_is_ended_by_its_watchdog_with_every_threads_stack(tmp_path: Path):
    """--screenshot is for CI and a build's smoke test: nobody is there when it hangs. No server is configured here,
    so the desk waits at its sign-in dialog, as a hung run waits forever; the watchdog ends it, saying where each
    thread was."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path / "home"),
               XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_STATE_HOME=str(tmp_path / "state"), XDG_CACHE_HOME=str(tmp_path / "cache"))  # fmt: skip
    env.pop("CRE_DESK_DATA_DIR", None)
    # Its own temp folder, removed after: a process ended so leaves its single-instance socket behind (the next start
    # removes it, ui/instance.py), which in the shared /tmp added one file per run of the suite. A short path: a Unix
    # socket's must fit in ~100 bytes, which one under tmp_path may not.
    own_tmp = Path(tempfile.mkdtemp(prefix="cre-wd-"))
    env["TMPDIR"] = str(own_tmp)
    try:
        cmd = [sys.executable, "-m", "crm_desktop", "--screenshot", str(tmp_path / "x.png"), "--watchdog-s", "8"]
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 1, result.stderr[-3000:]
        assert "Timeout (0:00:08)!" in result.stderr and "most recent call first" in result.stderr
        assert not (tmp_path / "x.png").exists()
        if sys.platform != "win32":  # a named pipe there, gone with its process
            assert [p.name for p in own_tmp.iterdir() if p.name.startswith("cre-desk-")]
    finally:
        shutil.rmtree(own_tmp, ignore_errors=True)
