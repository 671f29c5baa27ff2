"""Issue 9, item 13: start of shift. The server is setup (command line, IT's cre-desk.ini, this desk's settings);
the CRE gives e-mail and password; what the next start needs is remembered; settings take only what the desk can
use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from intake_keys import activate, focused, press, type_text
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication, QComboBox
from test_ui_desk import close_desk, open_desk

from crm_desktop.core.api import ApiClient, KeyringTokenStore
from crm_desktop.core.paths import machine_config
from crm_desktop.ui.app import DeskApp, parse_args
from crm_desktop.ui.dialogs import LoginDialog, SettingsDialog
from crm_desktop.ui.server_config import resolve_server
from crm_desktop.ui.settings import Settings

K = Qt.Key


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def isolated_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "etc"))
    monkeypatch.delenv("CRE_DESK_CONFIG", raising=False)
    monkeypatch.setenv("CRE_DESK_MACHINE_CONFIG", str(tmp_path / "no-machine.ini"))
    return tmp_path


def test_13_a_cre_signs_in_with_e_mail_and_password_and_sees_the_server(server, settings: Settings, isolated_data,
                                                                         qtbot):  # fmt: skip
    settings.set("server/url", server.url)
    settings.set("server/anon_key", server.anon_key)
    clients: list[ApiClient] = []

    def attempt(url: str, key: str, email: str, password: str) -> str:
        clients.append(ApiClient(url, key))
        return clients[-1].login(email, password).email

    dialog = LoginDialog(settings, attempt, server=resolve_server(settings))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=5000)
    assert not dialog.url.isVisible() and not dialog.anon_key.isVisible()  # not the CRE's business
    assert dialog.server_label.text() == f"Server: {server.url} (from this desk's settings)"
    assert focused() is dialog.email
    type_text("cre1@demo.local")
    press(K.Key_Tab)
    assert focused() is dialog.password
    type_text("demo1234")
    with qtbot.waitSignal(dialog.accepted, timeout=10_000):
        press(K.Key_Return)
    assert dialog.result_value == "cre1@demo.local"
    for c in clients:
        c.close()


def sign_in_through_the_dialog(app: DeskApp, seen: dict[str, Any]) -> None:
    """Inside the modal dialog's loop: read what it shows, then type as the CRE does."""
    dialog = QApplication.activeModalWidget()
    assert isinstance(dialog, LoginDialog)
    seen["server"] = dialog.server_label.text()
    seen["asks_server"] = dialog.url.isVisible()
    dialog.activateWindow()
    type_text("cre1@demo.local")
    press(K.Key_Tab)
    type_text("demo1234")
    press(K.Key_Return)


@pytest.mark.parametrize("where", ["command line", "config file"])
def test_13_setup_gives_the_server_and_the_key_is_remembered_after_sign_in(
    server, clean_db, settings: Settings, memory_keyring, isolated_data, qtbot, where: str
):
    if where == "command line":
        args = parse_args(["--server", server.url, "--anon-key", server.anon_key])
        origin = "from the command line"
    else:
        config = isolated_data / "cre-desk.ini"  # IT's one setup file, here named on the command line
        config.write_text(f"[desk]\nserver_url = {server.url}\nanon_key = {server.anon_key}\n", encoding="utf-8")
        args = parse_args(["--config", str(config)])
        origin = "from IT's config file"
    assert settings.get("server/anon_key") == ""
    app = DeskApp(args, settings, KeyringTokenStore())
    seen: dict[str, Any] = {}
    try:
        QTimer.singleShot(200, lambda: sign_in_through_the_dialog(app, seen))
        app.start()
        qtbot.waitUntil(lambda: app.window is not None, timeout=20_000)
        assert seen["server"].startswith(f"Server: {server.url} ({origin}") and not seen["asks_server"]
        # What the next start needs is on this desk now: a desk without a keyring must not ask for the key again.
        assert settings.get("server/url") == server.url
        assert settings.get("server/anon_key") == server.anon_key
        reread = Settings(QSettings(settings.path, QSettings.Format.IniFormat))
        assert resolve_server(reread).complete
    finally:
        app.shutdown()


def test_13_a_region_is_chosen_from_a_list_and_a_bad_one_never_breaks_typing(server, clean_db, tmp_path, qtbot):
    raw = QSettings(str(tmp_path / "cre1@demo.local.ini"), QSettings.Format.IniFormat)
    raw.setValue("phone/region", "India")  # what the old free-text setting accepted
    raw.sync()
    window = open_desk(server, tmp_path, qtbot, "cre1@demo.local")
    try:
        assert window.settings.get("phone/region") == "IN"
        activate(window, qtbot)
        type_text("9845012370")
        assert window.form.phone_status.text().startswith("✓ +91 98450 12370")
        with pytest.raises(ValueError):
            window.settings.set("phone/region", "India")
        dialog = SettingsDialog(window.settings, window)
        qtbot.addWidget(dialog)
        editor = next(c for c in dialog.findChildren(QComboBox) if c.toolTip().startswith("Country"))
        assert editor.currentData() == "IN" and editor.count() > 1
    finally:
        close_desk(window)


def test_13_the_machine_wide_file_is_named_as_it_s(tmp_path: Path, qtbot, monkeypatch):
    machine_file = tmp_path / "cre-desk.ini"
    machine_file.write_text("[desk]\nserver_url = https://desk.example.supabase.co\nanon_key = anon-from-it\n",
                            encoding="utf-8")  # fmt: skip
    monkeypatch.setenv("CRE_DESK_MACHINE_CONFIG", str(machine_file))
    settings = Settings(QSettings(str(tmp_path / "user.ini"), QSettings.Format.IniFormat), machine=machine_config())
    dialog = LoginDialog(settings, lambda *a: None)
    qtbot.addWidget(dialog)
    dialog.show()
    expected = f"Server: https://desk.example.supabase.co (from IT's config file ({machine_file}))"
    assert dialog.server_label.text() == expected
    assert not dialog.url.isVisible()
