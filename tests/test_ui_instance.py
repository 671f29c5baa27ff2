"""One desk per user and data folder; the app's identity and its self-test; IT's machine-wide settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from crm_desktop.core import paths
from crm_desktop.ui import app as app_module
from crm_desktop.ui.instance import SingleInstance
from crm_desktop.ui.settings import Settings


def _desk_env(data_dir: Path, tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, QT_QPA_PLATFORM="offscreen", CRE_DESK_DATA_DIR=str(data_dir),
                HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"),
                CRE_DESK_MACHINE_CONFIG=str(tmp_path / "no-machine.ini"))  # fmt: skip


def test_a_second_start_brings_the_running_desk_forward_and_exits(tmp_path: Path, qtbot: Any):
    data = tmp_path / "data"
    first = SingleInstance(data)  # this process is the running desk
    assert first.acquire()
    try:
        with qtbot.waitSignal(first.activation_requested, timeout=60_000):
            second = subprocess.Popen(
                [sys.executable, "-m", "crm_desktop", "--server", "https://desk.example.com", "--anon-key", "k"],
                env=_desk_env(data, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
        _out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err[-2000:]
    finally:
        first.release()
    # Released (the desk quit): the next start is the desk.
    again = SingleInstance(data)
    assert again.acquire()
    again.release()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_the_lock_of_a_killed_desk_is_taken_over(tmp_path: Path):
    data = tmp_path / "data"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
         "from PySide6.QtCore import QCoreApplication\nfrom crm_desktop.ui.instance import SingleInstance\n"
         "app = QCoreApplication([])\n"
         "i = SingleInstance(Path(sys.argv[1]))\nprint(i.acquire(), flush=True)\ntime.sleep(60)\n", str(data)],
        env=_desk_env(data, tmp_path), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
    assert not SingleInstance(data).acquire()  # held by a live desk
    holder.kill()  # SIGKILL on POSIX
    holder.wait(10)
    holder.stdout.close()
    taken = SingleInstance(data)
    assert taken.acquire()  # a dead holder's lock is stale
    taken.release()


def test_a_second_start_that_gets_no_answer_says_the_desk_is_running(tmp_path: Path):
    data = tmp_path / "data"
    # A desk that holds the lock but does not answer (no event loop here: hung, or a second desk of another build).
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom PySide6.QtCore import QLockFile\n"
         "lock = QLockFile(str(Path(sys.argv[1]) / 'desk.lock'))\nlock.setStaleLockTime(0)\n"
         "Path(sys.argv[1]).mkdir(parents=True)\nprint(lock.tryLock(1000), flush=True)\ntime.sleep(60)\n", str(data)],
        env=_desk_env(data, tmp_path), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        second = subprocess.run(
            [sys.executable, "-m", "crm_desktop", "--screenshot", str(tmp_path / "x.png")],
            env=_desk_env(data, tmp_path), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 3
        assert "CRE Desk is already running for your account on this computer" in second.stdout
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_self_test_passes_here_and_fails_when_a_resource_is_missing(monkeypatch, qapp):
    report = app_module.self_test()
    assert report["ok"], json.dumps(report, indent=2)
    assert report["checks"]["style_sheet_chars"]["value"] > 1000
    monkeypatch.setattr(app_module, "REQUIRED_RESOURCES", (*app_module.REQUIRED_RESOURCES, "missing.png"))
    report = app_module.self_test()
    assert not report["ok"] and not report["checks"]["resource:missing.png"]["ok"]


def test_self_test_exit_code_of_the_installed_entry_point(tmp_path: Path):
    env = _desk_env(tmp_path / "d", tmp_path)
    result = subprocess.run([sys.executable, "-m", "crm_desktop", "--self-test"], env=env, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    checks = json.loads(result.stdout)["checks"]
    assert checks["resource:cre-desk.svg"]["ok"] and checks["decoding_process"]["value"] == 7


class Shell32:
    def __init__(self) -> None:
        self.ids: list[str] = []

    def SetCurrentProcessExplicitAppUserModelID(self, app_id: str) -> int:  # the Win32 name
        self.ids.append(app_id)
        return 0


def test_windows_gets_an_app_user_model_id_other_systems_need_none():
    shell = Shell32()
    assert app_module.set_app_user_model_id("win32", shell) and shell.ids == ["CREDesk.Desk"]
    assert not app_module.set_app_user_model_id("linux", shell) and shell.ids == ["CREDesk.Desk"]


def test_identity_names_the_app_and_gives_it_an_icon(qapp):
    app_module.set_identity(qapp)
    assert qapp.applicationName() == "CRE Desk" and qapp.organizationName() == "CRE Desk"
    assert not qapp.windowIcon().isNull()
    assert qapp.applicationVersion() not in ("", "0+unknown")


def test_gui_entry_point_is_declared_so_windows_opens_no_console():
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["gui-scripts"]["crm-desktop"] == "crm_desktop.__main__:main"
    assert "crm-desktop" not in project["project"].get("scripts", {})


def test_machine_wide_settings_are_defaults_a_user_value_overrides(tmp_path: Path, monkeypatch):
    config = tmp_path / "cre-desk.ini"
    config.write_text("[desk]\nserver_url = https://acme.supabase.co\nanon_key = anon-123\nproxy = http://proxy:3128\n"
                      "allow_http = true\nunknown = x\n", encoding="utf-8")  # fmt: skip
    monkeypatch.setenv(paths.ENV_MACHINE_CONFIG, str(config))
    machine = paths.machine_config()
    assert "unknown" not in machine
    settings = Settings(QSettings(str(tmp_path / "user.ini"), QSettings.Format.IniFormat), machine=machine)
    assert settings.get("server/url") == "https://acme.supabase.co"
    assert settings.get("network/proxy") == "http://proxy:3128" and settings.get("server/allow_http") is True
    settings.set("server/url", "https://other.supabase.co")
    settings.set("server/allow_http", "False")  # what the settings dialog's line edit hands over
    assert settings.get("server/url") == "https://other.supabase.co" and settings.get("server/allow_http") is False
