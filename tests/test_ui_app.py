"""Start-up paths of the app: the sign-in dialog, silent sign-in from the keyring, and starting offline."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication
from serverproc import new_lead, phone_for

from crm_desktop.core.api import KeyringTokenStore
from crm_desktop.core.models import OutboxState
from crm_desktop.ui.app import DeskApp, parse_args
from crm_desktop.ui.dialogs import DiagnosticsDialog, LoginDialog, SettingsDialog, environment_report
from crm_desktop.ui.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def isolated_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """platformdirs paths (the store, the log) under tmp."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path


def test_login_dialog_signs_in_and_shows_errors_inline(server, settings: Settings, qtbot):
    from crm_desktop.core.api import ApiClient

    clients: list[ApiClient] = []

    def attempt(url: str, key: str, email: str, password: str) -> str:
        client = ApiClient(url, key)
        clients.append(client)
        return client.login(email, password).email

    settings.set("server/url", server.url)
    settings.set("server/anon_key", server.anon_key)
    dialog = LoginDialog(settings, attempt)
    qtbot.addWidget(dialog)
    qtbot.keyClicks(dialog.email, "cre1@demo.local")
    qtbot.keyClicks(dialog.password, "wrong")
    qtbot.mouseClick(dialog.buttons.buttons()[0], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Wrong e-mail or password" in dialog.error.text(), timeout=10_000)
    assert dialog.result_value is None
    dialog.password.clear()
    qtbot.keyClicks(dialog.password, "demo1234")
    with qtbot.waitSignal(dialog.accepted, timeout=10_000):
        dialog.buttons.accepted.emit()
    assert dialog.result_value == "cre1@demo.local"
    dialog.url.setText("ftp://nowhere")
    dialog.buttons.accepted.emit()
    assert "https://" in dialog.error.text()
    for c in clients:
        c.close()


def test_offline_start_with_a_saved_sign_in_then_the_server_returns(
    server, clean_db, settings: Settings, memory_keyring, isolated_data, qtbot
):
    args = parse_args(["--server", server.url, "--anon-key", server.anon_key])
    # First run, online: sign in through the same path the dialog uses; the desk is prepared on this computer.
    first = DeskApp(args, settings, KeyringTokenStore())
    info = first._login_attempt(server.url, server.anon_key, "cre1@demo.local", "demo1234")
    assert info["online"] and info["profile"]["role"] == "cre"
    info["api"].close()
    settings.set("server/url", server.url)
    settings.set("account/email", "cre1@demo.local")

    server.stop()
    app = DeskApp(args, settings, KeyringTokenStore())
    try:
        app.start()
        qtbot.waitUntil(lambda: app.window is not None, timeout=20_000)
        window = app.window
        assert window is not None
        assert window.offline_banner.isVisible() and "Offline" in window.conn_label.text()
        # The catalogue comes from this computer's copy: the form works without the server.
        qtbot.waitUntil(lambda: "GOOGLE" in window.form.source.choices(), timeout=5000)
        window.form.phone.setText(phone_for(990))
        window.form.name.setText("Offline Caller")
        window.form.source.set_value("GOOGLE")
        window.form.sub_source.set_value("Google Know")
        window.form.submit()
        qtbot.waitUntil(lambda: window.shift_model.rowCount() == 1, timeout=5000)
        server.start()
        qtbot.waitUntil(lambda: window.shift_model.items()[0].state is OutboxState.DONE, timeout=30_000)
        assert not window.offline_banner.isVisible()
        assert clean_db.execute("select count(*) from leads").fetchone() == (1,)
    finally:
        if not server.running:
            server.start()
        app.shutdown()


def test_sign_out_forgets_the_saved_sign_in_and_ends_the_session_on_the_server(
    server, clean_db, settings: Settings, memory_keyring, isolated_data, qtbot
):
    args = parse_args(["--server", server.url, "--anon-key", server.anon_key])
    app = DeskApp(args, settings, KeyringTokenStore())
    try:
        info = app._login_attempt(server.url, server.anon_key, "cre1@demo.local", "demo1234")
        app._on_signed_in(info)
        qtbot.waitUntil(lambda: app.window is not None and app.window.isVisible(), timeout=20_000)
        key = (KeyringTokenStore.service(server.url), "cre1@demo.local")
        refresh_token = memory_keyring.items[key]
        # The login dialog comes back after signing out; the person closes it.
        QTimer.singleShot(300, lambda: QApplication.activeModalWidget().reject())
        app.sign_out()
        qtbot.waitUntil(lambda: key not in memory_keyring.items, timeout=10_000)
        answer = httpx.post(
            f"{server.url}/auth/v1/token", params={"grant_type": "refresh_token"},
            headers={"apikey": server.anon_key}, json={"refresh_token": refresh_token},
        )  # fmt: skip
        assert answer.status_code == 400  # the session was revoked on the server, not just forgotten here
        assert app.window is None and app.api is None
    finally:
        app.shutdown()


def test_lead_created_elsewhere_during_an_outage_is_shown_as_a_duplicate(
    server, clean_db, api, settings: Settings, memory_keyring, isolated_data, qtbot
):
    args = parse_args(["--server", server.url, "--anon-key", server.anon_key])
    app = DeskApp(args, settings, KeyringTokenStore())
    app._on_signed_in(app._login_attempt(server.url, server.anon_key, "cre1@demo.local", "demo1234"))
    window = app.window
    assert window is not None
    try:
        qtbot.waitUntil(lambda: window.session.engine.connection_state == "online", timeout=10_000)
        window.session.engine.stop()  # the desk is cut off (its threads paused) while the server carries on
        store_item = window.session._store().enqueue(new_lead(phone_for(991), source="BTL", sub_source="BTL Know"))
        window.shift_model.upsert(store_item)
        api.rpc("create_lead", api.token("cre2@demo.local"), lead=new_lead(phone_for(991)))  # someone else, first
        window.session.engine.start()
        ref = store_item.client_ref

        def row() -> int:
            refs = [it.client_ref for it in window.shift_model.items()]
            return refs.index(ref) if ref in refs else -1

        qtbot.waitUntil(lambda: row() >= 0 and window.shift_model.items()[row()].state is OutboxState.DONE,
                        timeout=15_000)  # fmt: skip
        assert window.shift_model.index(row(), 2).data() == "New source added"
        assert "Imran Khan" in window.shift_model.index(row(), 3).data()  # whose lead it already was
    finally:
        app.shutdown()


def test_settings_dialog_saves_declared_settings(settings: Settings, qtbot):
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    editor = dialog._editors["sync/interval_s"]
    editor.setValue(42)  # type: ignore[attr-defined]
    dialog._editors["server/url"].setText("https://example.supabase.co")  # type: ignore[attr-defined]
    dialog._on_buttons_accepted()
    assert settings.get("sync/interval_s") == 42
    assert settings.get("server/url") == "https://example.supabase.co"


def test_diagnostics_shows_versions_paths_and_log_lines(qtbot):
    report = environment_report({"Local store": "/tmp/x.sqlite3"})
    dialog = DiagnosticsDialog(report, ["line one", "line two"])
    qtbot.addWidget(dialog)
    text = dialog.text.toPlainText()
    assert "PySide6" in text and "Python" in text and "/tmp/x.sqlite3" in text and "line two" in text
    QApplication.clipboard().clear()
