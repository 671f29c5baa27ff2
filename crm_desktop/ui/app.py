"""Start-up and wiring: arguments, logging, the error presenter, one desk per user (instance.py), sign-in (or offline
start), the demo server, and the main window. `run()` is `crm-desktop`; `--self-test` checks an installed or frozen
build (resources, phone metadata, keyring, TLS, SQLite, charts) and exits non-zero when anything is missing."""

from __future__ import annotations

import argparse
import collections
import faulthandler
import gc
import json
import logging
import logging.handlers
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

from crm_desktop.core import fileops, paths
from crm_desktop.core.api import (
    ApiClient,
    CertificateNotTrusted,
    KeyringTokenStore,
    Retry,
    TokenStore,
    system_ssl_context,
)
from crm_desktop.core.store import default_store_path
from crm_desktop.core.sync import prepare_local_desk
from crm_desktop.ui.demo import DemoServer
from crm_desktop.ui.dialogs import (
    DiagnosticsDialog,
    LoginDialog,
    SettingsDialog,
    environment_report,
    show_unexpected_error,
)
from crm_desktop.ui.instance import ALREADY_RUNNING, SingleInstance
from crm_desktop.ui.main_window import MainWindow
from crm_desktop.ui.server_config import ServerConfig, resolve_server
from crm_desktop.ui.session import DeskSession
from crm_desktop.ui.settings import Settings
from crm_desktop.ui.workers import reader_pool, run_in, wait_for_pools

log = logging.getLogger(__name__)
DEMO_PASSWORD = "demo1234"
RECENT_LOG = collections.deque[str](maxlen=500)
APP_NAME = "CRE Desk"
APP_USER_MODEL_ID = "CREDesk.Desk"  # Windows: taskbar grouping and pinning as CRE Desk, not python.exe
# What a build must carry (resources/ installs as the package crm_desktop.resources; the spec collects it).
REQUIRED_RESOURCES = ("style.qss", "cre-desk.svg")


class _RecentLines(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        RECENT_LOG.append(self.format(record))


def setup_logging() -> Path:
    log_dir = fileops.private_dir(paths.log_dir())  # under the one data root (IT's override included)
    path = fileops.private_file(log_dir / "cre-desk.log")
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s")
    root = logging.getLogger()
    if not any(isinstance(h, logging.handlers.RotatingFileHandler) for h in root.handlers):
        file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
        file_handler.setFormatter(fmt)
        recent = _RecentLines()
        recent.setFormatter(fmt)
        root.addHandler(file_handler)
        root.addHandler(recent)
        root.setLevel(logging.INFO)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry URLs, not needed
    return path


def resource_path(name: str) -> Path | None:
    """A packaged resource: the installed package `crm_desktop.resources` (also inside a PyInstaller bundle), or the
    source tree's resources/ folder."""
    candidates = []
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:  # a PyInstaller bundle: packaging/cre-desk.spec puts them here
        candidates.append(Path(frozen_root) / "crm_desktop" / "resources" / name)
    try:
        from importlib.resources import files

        candidates.append(Path(str(files("crm_desktop.resources") / name)))
    except (ModuleNotFoundError, TypeError):
        pass
    candidates.append(Path(__file__).resolve().parents[2] / "resources" / name)
    return next((p for p in candidates if p.is_file()), None)


def style_sheet() -> str:
    path = resource_path("style.qss")
    if path is None:
        log.warning("style sheet missing from this build; the desk runs unstyled (run crm-desktop --self-test)")
        return ""
    return path.read_text(encoding="utf-8")


def set_app_user_model_id(platform: str = sys.platform, shell32: Any = None) -> bool:
    """On Windows, name this process for the taskbar (grouping, pinning, the icon) as CRE Desk, not python.exe."""
    if platform != "win32":
        return False
    if shell32 is None:
        import ctypes

        shell32 = ctypes.windll.shell32  # type: ignore[attr-defined]
    shell32.SetCurrentProcessExplicitAppUserModelID(APP_USER_MODEL_ID)
    return True


def app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cre-desk")
    except PackageNotFoundError:
        return "0+unknown"


def set_identity(app: QApplication) -> None:
    """Organisation, name, version, icon: the settings location (HKCU\\Software\\CRE Desk), the title bar and the
    taskbar all say CRE Desk."""
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setApplicationVersion(app_version())
    app.setDesktopFileName("cre-desk")
    icon = resource_path("cre-desk.svg")
    if icon is not None:
        app.setWindowIcon(QIcon(str(icon)))
    try:
        set_app_user_model_id()
    except (AttributeError, OSError) as exc:  # an old or locked-down Windows: the desk works, grouped as Python
        log.warning("could not set the Windows app id: %s", exc)


class _ErrorPresenter(QObject):
    """Carries an unexpected error from the thread it happened on to the GUI thread, where its dialog may open (a
    slot of this object: a signal connected to a plain function would call it on the emitting thread)."""

    report = Signal(str, str)

    def __init__(self, app: QCoreApplication, parent_getter: Any, interactive: Callable[[], bool]) -> None:
        super().__init__(app)  # lives on the GUI thread; the app owns it
        self._parent_getter = parent_getter
        self._interactive = interactive
        self._quitting = False
        app.aboutToQuit.connect(self._on_quitting)
        self.report.connect(self._show)  # queued when emitted from another thread

    @Slot()
    def _on_quitting(self) -> None:
        self._quitting = True

    @Slot(str, str)
    def _show(self, summary: str, details: str) -> None:
        if not self._quitting and self._interactive() and not QCoreApplication.closingDown():
            show_unexpected_error(self._parent_getter(), summary, details)


def install_error_presenter(parent_getter: Any, interactive: Callable[[], bool] = lambda: True) -> None:
    """Tier 3: unexpected exceptions go to the log and to a dialog with "Copy details".

    The dialog opens on the GUI thread only: an error on another thread (a pool job) is passed there through a
    queued signal. A dialog made on a pool thread ran its own event loop there, which nobody could close, and the
    pool waited for it at exit. No dialog when nobody can answer it (`interactive()` false: --screenshot) or the app is
    quitting; the log has it all."""
    app = QApplication.instance()
    if app is None:
        raise RuntimeError("install_error_presenter needs the QApplication")
    presenter = _ErrorPresenter(app, parent_getter, interactive)

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        details = getattr(exc, "__traceback_text__", None) or "".join(traceback.format_exception(kind, exc, tb))
        log.error("unexpected error: %s", details)
        if shiboken6.isValid(presenter):
            presenter.report.emit(f"{kind.__name__}: {exc}", details)

    sys.excepthook = hook


class DeskApp:
    """Owns what the app started (demo server, session, window) and stops it all on exit."""

    def __init__(self, args: argparse.Namespace, settings: Settings, token_store: TokenStore | None = None) -> None:
        self.args = args
        self.settings = settings
        self.tokens: TokenStore = token_store or KeyringTokenStore()
        self.demo: DemoServer | None = None
        self.api: ApiClient | None = None
        self.session: DeskSession | None = None
        self.window: MainWindow | None = None
        self.splash: QLabel | None = None
        self.exit_code = 0

    # -- start ----------------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.args.demo:
            self._show_splash("Starting the demo server (embedded PostgreSQL)…")
            run_in(reader_pool(), self._start_demo_and_sign_in, self._on_signed_in, self._on_start_failed)
            return
        server = self._server()
        url, key = server.url, server.anon_key
        email = str(self.settings.get("account/email"))
        if url and key and self.args.as_user and self.args.password:
            # Unattended (a build's smoke test, a kiosk script): sign in with what the command line gave.
            self._show_splash("Signing in…")
            attempt = lambda: self._login_attempt(url, key, self.args.as_user, self.args.password)  # noqa: E731
            run_in(reader_pool(), attempt, self._on_signed_in, self._on_start_failed)
            return
        if url and key and email and self.tokens.load(url, email):
            self._show_splash("Signing in…")
            run_in(reader_pool(), lambda: self._silent_sign_in(url, key, email), self._on_signed_in,
                   lambda exc: self._ask_login(str(exc)))  # fmt: skip
            return
        self._ask_login(self.tokens.why_unavailable if not self.tokens.available else "")

    def _server(self) -> ServerConfig:
        """Command line, then IT's cre-desk.ini (or --config FILE), then this desk's settings (server_config.py)."""
        return resolve_server(self.settings, self.args.server, self.args.anon_key, getattr(self.args, "config", None))

    def _show_splash(self, text: str) -> None:
        if self.splash is None:
            self.splash = QLabel()
            self.splash.setObjectName("splash")
            self.splash.setMinimumSize(420, 120)
            self.splash.setWindowTitle("CRE Desk")
        self.splash.setText(text)
        self.splash.show()

    def _close_splash(self) -> None:
        if self.splash is not None:
            self.splash.close()
            self.splash = None

    def _start_demo_and_sign_in(self) -> dict[str, Any]:
        self.demo = DemoServer.start(Path(self.args.demo_dir) if self.args.demo_dir else None)
        email = self.args.as_user or "cre1@demo.local"
        api = ApiClient(self.demo.url, self.demo.anon_key)
        api.login(email, self.args.password or DEMO_PASSWORD)
        return self._prepare(api, email, online=True)

    def _client(self, url: str, key: str) -> ApiClient:
        """An ApiClient with this PC's network settings (proxy, IT's http:// allowance)."""
        return ApiClient(
            url,
            key,
            token_store=self.tokens,
            proxy=str(self.settings.get("network/proxy")) or None,
            allow_http=bool(self.settings.get("server/allow_http")),
        )

    def _silent_sign_in(self, url: str, key: str, email: str) -> dict[str, Any]:
        api = self._client(url, key)
        try:
            if api.restore(email) is None:
                raise RuntimeError("No saved sign-in.")
        except Retry:
            # Offline: start from what this computer knows, sign in once the server answers.
            api.sign_in_later(email)
            return {**self._prepare(api, email, online=False), "anon_key": key}
        return {**self._prepare(api, email, online=True), "anon_key": key}

    def _login_attempt(self, url: str, key: str, email: str, password: str) -> dict[str, Any]:
        api = self._client(url, key)
        try:
            api.login(email, password)
        except Retry as exc:
            api.sign_in_later(email, None if self.tokens.available else password)
            try:
                return {**self._prepare(api, email, online=False), "anon_key": key}
            except Retry as offline:
                if isinstance(exc, CertificateNotTrusted):
                    raise exc from offline  # the reason to give IT, not "cannot be reached"
                raise
        return {**self._prepare(api, email, online=True), "anon_key": key}

    def _prepare(self, api: ApiClient, email: str, *, online: bool) -> dict[str, Any]:
        """Worker thread: open (or repair) the local store and get the profile; nothing here touches widgets."""
        path = default_store_path(api.base_url, email)
        profile, recovery = prepare_local_desk(api, path, online=online)
        return {"api": api, "email": email, "path": path, "profile": profile, "online": online, "recovery": recovery}

    def _ask_login(self, note: str = "") -> None:
        self._close_splash()
        dialog = LoginDialog(self.settings, self._login_attempt, note, server=self._server())
        if dialog.exec() and dialog.result_value is not None:
            self._on_signed_in(dialog.result_value)
        else:
            QApplication.quit()

    def _on_start_failed(self, exc: BaseException) -> None:
        self._close_splash()
        show_unexpected_error(None, f"The desk could not start: {exc}", getattr(exc, "__traceback_text__", ""))
        self.exit_code = 1
        QApplication.quit()

    def _on_signed_in(self, info: dict[str, Any]) -> None:
        self._close_splash()
        api: ApiClient = info["api"]
        self.api = api
        if not self.args.demo:
            self.settings.set("server/url", api.base_url)
            self.settings.set("account/email", info["email"])
            if info.get("anon_key"):  # a desk without a keyring must not ask for it at every start
                self.settings.set("server/anon_key", info["anon_key"])
            self.settings.sync()
        session = DeskSession(
            api, info["path"], info["profile"], poll_interval=float(self.settings.get("sync/interval_s"))
        )
        self.session = session
        window = MainWindow(session, self.settings, offline_start=not info["online"])
        self.window = window
        window.sign_out_requested.connect(self.sign_out)
        window.settings_requested.connect(lambda: SettingsDialog(self.settings, window).exec())
        window.diagnostics_requested.connect(self.show_diagnostics)
        if info.get("recovery"):
            window.message_bar.show_message("recovery", info["recovery"], "warning")
        if not self.tokens.available and not self.args.demo:
            window.message_bar.show_message("keyring", self.tokens.why_unavailable, "info")
        window.data_loaded.connect(settle_heap)
        if self.args.screenshot:
            window.data_loaded.connect(self._take_screenshot)
            QTimer.singleShot(int(self.args.screenshot_timeout * 1000), self._screenshot_timed_out)
        session.start()
        window.show()

    # -- actions --------------------------------------------------------------------------------------------------

    def _screenshot_timed_out(self) -> None:
        if self.window is None or not self.args.screenshot:
            return  # taken already
        log.error(
            "the desk did not finish loading in %g s; the screenshot shows it unfinished", self.args.screenshot_timeout
        )
        self.exit_code = 1
        self._take_screenshot()

    def _take_screenshot(self) -> None:
        if self.window is None or not self.args.screenshot:
            return
        target = self.args.screenshot
        self.args.screenshot = None
        QTimer.singleShot(300, lambda: self._save_and_quit(target))  # let the last signals paint

    def _save_and_quit(self, target: str) -> None:
        assert self.window is not None
        self.window.grab().save(target)
        log.info("screenshot saved to %s", target)
        self.window.close()
        QApplication.quit()

    def show_diagnostics(self) -> None:
        extra = {
            "Settings file": self.settings.path,
            "Log file": str(paths.log_dir() / "cre-desk.log"),
            "Data folder": str(paths.data_root()),
            "Machine config": str(paths.machine_config_path()),
        }
        if self.session is not None:
            extra["Server"] = self.session.api.base_url
            extra["Local store"] = str(self.session.store_path)
            extra["Signed in as"] = f"{self.session.profile.get('email')} ({self.session.profile.get('role')})"
            extra["Connection"] = str(self.session.engine.connection_state)
        extra["Keyring"] = "available" if self.tokens.available else self.tokens.why_unavailable
        DiagnosticsDialog(environment_report(extra), list(RECENT_LOG), self.window).exec()

    def bring_to_front(self) -> None:
        """Another start of the desk asked for this one (instance.py): show what the CRE is working in."""
        target = QApplication.activeModalWidget() or self.window or self.splash
        if target is None:
            return
        if target.isMinimized():
            target.showNormal()
        target.show()
        target.raise_()
        target.activateWindow()

    def sign_out(self) -> None:
        api, self.api = self.api, None
        self._stop_session()  # the engine's threads are done with the client first
        if api is not None:
            # Forget the tokens and revoke on the server off the GUI thread: offline, the call waits for a timeout.
            run_in(reader_pool(), api.logout, on_finished=api.close)
        if self.demo is not None:
            self._ask_login("Signed out. The demo server is still running for this window.")
        else:
            self._ask_login("Signed out.")

    def _stop_session(self) -> None:
        if self.window is not None:
            self.window.save_window_state()
            self.window.hide()
            self.window.deleteLater()
            self.window = None
        if self.session is not None:
            self.session.stop()
            self.session = None
        gc.unfreeze()  # what settle_heap froze for that window may be garbage now; the next sign-in settles again

    def shutdown(self) -> None:
        self._stop_session()
        wait_for_pools()  # a sign-out's logout still running must finish forgetting the tokens
        if self.api is not None:
            self.api.close()
        if self.demo is not None:
            self.demo.stop()
            self.demo = None


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="crm-desktop", description="CRE Desk: the lead-entry desk for call centres.")
    p.add_argument("--demo", action="store_true", help="start the embedded demo server and sign in to it")
    p.add_argument("--as", dest="as_user", metavar="EMAIL",
                   help="the user: with --demo, a demo user (default cre1@demo.local)")  # fmt: skip
    p.add_argument("--password", help=argparse.SUPPRESS)
    p.add_argument("--demo-dir", help="with --demo: where the demo server keeps its data")
    p.add_argument("--server", help="server URL (overrides the saved setting)")
    p.add_argument("--anon-key", help="the server's anon key (overrides the saved setting)")
    p.add_argument("--config", metavar="FILE",
                   help="the setup file to use instead of the machine-wide cre-desk.ini (same format: [desk] "
                   "server_url, anon_key, data_dir, proxy, allow_http)")  # fmt: skip
    p.add_argument("--screenshot", metavar="FILE", help="render the main window to a PNG once data has loaded, exit")
    p.add_argument("--screenshot-timeout", type=float, default=90.0, help=argparse.SUPPRESS)
    p.add_argument("--watchdog-s", type=float, default=None, help=argparse.SUPPRESS)  # tests: --screenshot gives up
    p.add_argument("--self-test", action="store_true", help="check this installation (resources, TLS, keyring, "
                   "SQLite, charts), print a JSON report and exit non-zero when something is missing")  # fmt: skip
    return p.parse_args(argv)


def settle_heap() -> None:
    """Once the desk is up: collect, then move every object alive now (Qt wrappers, modules, phone metadata, the
    catalogue) out of the collector's sight. A full collection walked them all while holding the GIL, ~55 ms on
    this machine about once per 200 leads typed; landing on an Enter, it held the form that long (bench_ui.py,
    submit phase). Objects made later are collected as usual."""
    gc.collect()
    gc.freeze()


def self_test() -> dict[str, Any]:
    """What a fresh install or a frozen build needs, each check on its own: {"ok": bool, "checks": {name: ...}}.

    Run by IT after installing (`crm-desktop --self-test`) and by CI on the bundle. Needs a QApplication."""
    checks: dict[str, Any] = {}

    def check(name: str, fn: Callable[[], Any]) -> None:
        try:
            checks[name] = {"ok": True, "value": fn()}
        except Exception as exc:  # every failure is reported, none stops the others
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def resource(name: str) -> Callable[[], Any]:
        def find() -> Any:
            path = resource_path(name)
            if path is None:
                raise FileNotFoundError(f"{name} is not in this build")
            return {"path": str(path), "bytes": path.stat().st_size}

        return find

    for name in REQUIRED_RESOURCES:
        check(f"resource:{name}", resource(name))
    check("style_sheet_chars", lambda: _nonzero(len(style_sheet())))
    check("icon", lambda: not QIcon(str(resource_path("cre-desk.svg"))).pixmap(32, 32).isNull() or _fail("blank"))
    check("version", app_version)

    def phone() -> Any:
        from crm_desktop.core.phone import normalize

        result = normalize("098450 12345")
        return result if result == "+919845012345" else _fail(f"normalize gave {result!r}")

    check("phone_metadata", phone)
    check("keyring", lambda: type(__import__("keyring").get_keyring()).__module__)
    check("tls_system_store", lambda: type(system_ssl_context()).__name__)

    def sqlite_round_trip() -> Any:
        from crm_desktop.core.store import Store

        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "self-test.sqlite3") as store:
            item = store.enqueue({"phone": "+919845012345", "customer_name": "రవి कुमार", "source": "GOOGLE"})
            got = store.get(item.client_ref)
            if got is None or got.payload["customer_name"] != "రవి कुमार":
                _fail("the round trip lost text")
            return True

    check("sqlite_outbox", sqlite_round_trip)

    def decoding_process() -> Any:
        # A long first sync decodes pages in processes started as this program (sync.py): a frozen build must
        # answer as one (multiprocessing.freeze_support in __main__), not open a second desk.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from crm_desktop.core.cache import stage_page

        page = '{"columns": ["phone"], "rows": [], "next_since": 7}'
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            head, _staged, _rows = pool.submit(stage_page, page).result(timeout=60)
        return head.next_since if head is not None and head.next_since == 7 else _fail(f"the process gave {head!r}")

    check("decoding_process", decoding_process)

    def charts() -> Any:
        from PySide6.QtCharts import QChart, QChartView

        view = QChartView(QChart())
        view.resize(200, 120)
        return not view.grab().isNull() or _fail("blank chart")

    check("qtcharts", charts)
    check("data_root", lambda: str(paths.data_root()))
    return {"ok": all(c["ok"] for c in checks.values()), "frozen": bool(getattr(sys, "frozen", False)),
            "checks": checks}  # fmt: skip


def _nonzero(n: int) -> int:
    return n or _fail("empty")


def _fail(why: str) -> Any:
    raise RuntimeError(why)


def run(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.config:  # one setup file: --config stands in for the machine-wide cre-desk.ini (data_dir, proxy too)
        os.environ[paths.ENV_MACHINE_CONFIG] = str(Path(args.config).resolve())
    if os.name == "posix":
        os.umask(0o077)  # every file this process makes (logs, settings, demo data) is the user's alone
    log_path = setup_logging()
    log.info("starting; log at %s", log_path)
    if args.screenshot:
        _arm_watchdog(args.watchdog_s or args.screenshot_timeout + WATCHDOG_GRACE_S)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    set_identity(app)
    if args.self_test:
        report = self_test()
        text = json.dumps(report, indent=2, ensure_ascii=False)
        _print(text)
        # Also a file: a windowed build on Windows has no stdout to print to.
        (paths.log_dir() / "self-test.json").write_text(text, encoding="utf-8")
        return 0 if report["ok"] else 1
    app.setStyleSheet(style_sheet())
    mode = f"demo-{args.as_user or 'cre1@demo.local'}" if args.demo else "desk"
    instance = SingleInstance(paths.data_root(), mode)
    if not instance.acquire():
        if instance.notify_running():
            log.info("CRE Desk is already running here; brought its window to the front")
            return 0
        _print(ALREADY_RUNNING)
        if not args.screenshot:
            QMessageBox.information(None, APP_NAME, ALREADY_RUNNING)
        return 3
    try:
        desk = DeskApp(args, Settings(machine=paths.machine_config()))
        instance.activation_requested.connect(desk.bring_to_front)
        unattended = bool(args.screenshot)  # nobody at the screen to close a dialog
        install_error_presenter(lambda: desk.window, interactive=lambda: not unattended)
        app.aboutToQuit.connect(desk.shutdown)
        QTimer.singleShot(0, desk.start)
        code = app.exec()
        wait_for_pools()  # a job started while shutting down must not run into PySide's teardown at exit
        return desk.exit_code or int(code)
    finally:
        instance.release()


# An unattended run (--screenshot) that has not ended this long after its screenshot deadline is stuck.
WATCHDOG_GRACE_S = 60.0
_watchdog_file: Any = None


def _arm_watchdog(seconds: float) -> None:
    """Unattended runs (--screenshot: a build's smoke test, CI) must end: past `seconds`, every thread's stack goes to
    stderr (or watchdog.txt in the log folder when there is none: a windowed build) and the process exits 1. Not
    cancelled at the end of run(): a hang in the interpreter's teardown is caught too."""
    global _watchdog_file
    out: Any = sys.stderr
    try:
        out.fileno()  # faulthandler writes to the descriptor
    except (AttributeError, OSError, ValueError):  # none, or not a file (io.UnsupportedOperation is an OSError)
        out = _watchdog_file = open(paths.log_dir() / "watchdog.txt", "w", encoding="utf-8")  # noqa: SIM115
    faulthandler.dump_traceback_later(seconds, exit=True, file=out)


def _print(text: str) -> None:
    """stdout when there is one: a GUI-subsystem process on Windows has none (sys.stdout is None)."""
    if sys.stdout is not None:
        print(text, flush=True)
