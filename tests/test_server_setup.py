"""One setup file: which server a desk uses (command line > IT's cre-desk.ini or --config FILE > this desk's
settings > none), and the old server.json read once so no desk loses its server. Real files: a QSettings INI for the
desk's settings, the machine-wide file where CRE_DESK_MACHINE_CONFIG points, server.json in the XDG directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from crm_desktop.core import paths
from crm_desktop.ui.app import parse_args
from crm_desktop.ui.server_config import MIGRATED_NOTE, resolve_server
from crm_desktop.ui.settings import Settings

FILE_URL, FILE_KEY = "https://it-file.supabase.co", "key-from-the-file"
SAVED_URL, SAVED_KEY = "https://saved.supabase.co", "key-saved"
CLI_URL, CLI_KEY = "https://cli.supabase.co", "key-from-the-shortcut"
OLD_URL, OLD_KEY = "https://old-json.supabase.co", "key-from-server-json"


@pytest.fixture
def setup_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "etc"))
    monkeypatch.setenv(paths.ENV_MACHINE_CONFIG, str(tmp_path / "etc" / "cre-desk" / "cre-desk.ini"))
    monkeypatch.delenv("CRE_DESK_CONFIG", raising=False)
    return tmp_path


def desk_settings(tmp_path: Path) -> Settings:
    """This desk's settings as a start reads them: its own file, and the machine-wide file as it is now."""
    return Settings(QSettings(str(tmp_path / "desk.ini"), QSettings.Format.IniFormat), machine=paths.machine_config())


def write_ini(path: Path, url: str, key: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"[desk]\nserver_url = {url}\nanon_key = {key}\n", encoding="utf-8")
    return path


def write_old_json(path: Path, url: str, key: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"server_url": url, "anon_key": key}), encoding="utf-8")
    return path


def test_the_command_line_wins_then_its_file_then_the_desks_settings_then_nothing(setup_dirs: Path):
    settings = desk_settings(setup_dirs)
    assert resolve_server(settings) == resolve_server(settings)  # nothing anywhere: nothing
    assert not resolve_server(settings).complete and resolve_server(settings).url == ""
    settings.set("server/url", SAVED_URL)
    settings.set("server/anon_key", SAVED_KEY)
    got = resolve_server(settings)
    assert (got.url, got.anon_key, got.origin) == (SAVED_URL, SAVED_KEY, "from this desk's settings")
    machine = write_ini(Path(paths.machine_config_path()), FILE_URL + "/", FILE_KEY)
    settings = desk_settings(setup_dirs)  # the next start
    got = resolve_server(settings)
    assert (got.url, got.anon_key) == (FILE_URL, FILE_KEY)  # IT's file wins over what the desk remembers
    assert got.origin == f"from IT's config file ({machine})"
    got = resolve_server(settings, CLI_URL, CLI_KEY)
    assert (got.url, got.anon_key, got.origin) == (CLI_URL, CLI_KEY, "from the command line")
    # --config FILE stands in for the machine-wide file.
    other = write_ini(setup_dirs / "shortcut.ini", "https://other.supabase.co", "key-other")
    got = resolve_server(settings, config_file=str(other))
    assert (got.url, got.anon_key) == ("https://other.supabase.co", "key-other")


def test_a_key_goes_with_its_own_url(setup_dirs: Path):
    settings = desk_settings(setup_dirs)
    settings.set("server/url", SAVED_URL)
    settings.set("server/anon_key", SAVED_KEY)
    got = resolve_server(settings, CLI_URL)  # a URL on the shortcut, no key: the saved key is another server's
    assert (got.url, got.anon_key, got.complete) == (CLI_URL, "", False)
    got = resolve_server(settings, SAVED_URL)  # the same server as saved: its key
    assert got.anon_key == SAVED_KEY
    write_ini(Path(paths.machine_config_path()), FILE_URL, FILE_KEY)
    # A key alone on the shortcut goes with the file's URL.
    got = resolve_server(desk_settings(setup_dirs), cli_key=CLI_KEY)
    assert (got.url, got.anon_key) == (FILE_URL, CLI_KEY)


@pytest.mark.parametrize("where", ["user config dir", "site config dir", "CRE_DESK_CONFIG"])
def test_the_old_server_json_is_read_once_into_the_desks_settings(setup_dirs: Path, monkeypatch, where: str):
    old = {"user config dir": setup_dirs / "config" / "cre-desk" / "server.json",
           "site config dir": setup_dirs / "etc" / "cre-desk" / "server.json",
           "CRE_DESK_CONFIG": setup_dirs / "somewhere" / "it.json"}[where]  # fmt: skip
    if where == "CRE_DESK_CONFIG":
        monkeypatch.setenv("CRE_DESK_CONFIG", str(old))
    write_old_json(old, OLD_URL + "/", OLD_KEY)
    settings = desk_settings(setup_dirs)
    got = resolve_server(settings)
    assert (got.url, got.anon_key, got.origin) == (OLD_URL, OLD_KEY, "from this desk's settings")
    assert settings.note(MIGRATED_NOTE) == str(old)
    # On disk: a new start (a new Settings on the same file) has the server without the old file.
    old.unlink()
    reread = Settings(QSettings(settings.path, QSettings.Format.IniFormat))
    got = resolve_server(reread)
    assert (got.url, got.anon_key) == (OLD_URL, OLD_KEY)
    # Read once: a later old file changes nothing.
    write_old_json(old, "https://later.supabase.co", "key-later")
    assert resolve_server(reread).url == OLD_URL


def test_the_old_server_json_never_overrides_a_server_the_desk_has(setup_dirs: Path):
    settings = desk_settings(setup_dirs)
    settings.set("server/url", SAVED_URL)
    settings.set("server/anon_key", SAVED_KEY)
    old = write_old_json(setup_dirs / "config" / "cre-desk" / "server.json", OLD_URL, OLD_KEY)
    got = resolve_server(settings)
    assert (got.url, got.anon_key) == (SAVED_URL, SAVED_KEY)
    assert settings.note(MIGRATED_NOTE) == str(old)  # looked at once, and not again


@pytest.mark.expected_log_warnings
def test_config_naming_an_old_json_file_still_gives_its_server(setup_dirs: Path, caplog):
    old = write_old_json(setup_dirs / "shortcut-server.json", OLD_URL, OLD_KEY)  # an old shortcut's --config
    got = resolve_server(desk_settings(setup_dirs), config_file=str(old))
    assert (got.url, got.anon_key) == (OLD_URL, OLD_KEY)
    assert any("old JSON server file" in r.getMessage() for r in caplog.records)  # IT is told to rewrite it


def test_config_on_the_command_line_is_the_machine_file_for_the_whole_desk(setup_dirs: Path, monkeypatch):
    from crm_desktop.ui import app

    config = setup_dirs / "kiosk.ini"
    config.write_text(f"[desk]\nserver_url = {FILE_URL}\nanon_key = {FILE_KEY}\ndata_dir = {setup_dirs / 'data'}\n",
                      encoding="utf-8")  # fmt: skip
    seen: dict[str, object] = {}

    def stop_after_args(*_a: object, **_k: object) -> None:
        seen["machine"] = paths.machine_config()
        seen["root"] = paths.data_root()
        raise SystemExit(0)

    monkeypatch.setattr(app, "setup_logging", stop_after_args)
    with pytest.raises(SystemExit):
        app.run(["--config", str(config)])
    assert seen["root"] == setup_dirs / "data"
    assert seen["machine"] == {"server_url": FILE_URL, "anon_key": FILE_KEY, "data_dir": str(setup_dirs / "data")}
    assert parse_args(["--config", str(config)]).config == str(config)
