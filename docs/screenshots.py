"""Render the README's pictures from the real app on the embedded demo server (offscreen, no display needed).

QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots.py [--out docs/img]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from crm_desktop.core.api import ApiClient
from crm_desktop.core.sync import prepare_local_desk
from crm_desktop.ui.app import style_sheet
from crm_desktop.ui.demo import DemoServer
from crm_desktop.ui.main_window import MainWindow
from crm_desktop.ui.session import DeskSession
from crm_desktop.ui.settings import Settings


def wait(cond, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        QApplication.processEvents()
        if cond():
            return
        time.sleep(0.01)
    raise TimeoutError("condition not reached")


def open_window(demo: DemoServer, email: str, tmp: Path) -> MainWindow:
    api = ApiClient(demo.url, demo.anon_key)
    api.login(email, "demo1234")
    path = tmp / f"{email}.sqlite3"
    profile, _ = prepare_local_desk(api, path)
    session = DeskSession(api, path, profile, poll_interval=1.0)
    session.engine.backoff_max = 1.0
    window = MainWindow(session, Settings(QSettings(str(tmp / f"{email}.ini"), QSettings.Format.IniFormat)))
    loaded: list[bool] = []
    window.data_loaded.connect(lambda: loaded.append(True))
    session.start()
    window.resize(1280, 800)
    window.show()
    wait(lambda: bool(loaded))
    return window


def type_lead(window: MainWindow, phone: str, name: str, source: str, sub: str, status: str = "Interested") -> None:
    form = window.form
    form.clear_for_next()
    QTest.keyClicks(form.phone, phone)
    QTest.keyClicks(form.name, name)
    form.source.set_value(source)
    form.sub_source.set_value(sub)
    form.lead_status.set_value(status)
    form.branch.set_value("SOMAJIGUDA")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(Path(__file__).with_name("img")))
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    app.setStyleSheet(style_sheet())
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        demo = DemoServer.start(tmp / "server")
        try:
            window = open_window(demo, "cre1@demo.local", tmp)
            # A few submissions for "This shift": a new lead, a new source for a known number, an exact duplicate.
            for phone, name, src, sub in (
                ("98480 22338", "Sravani Reddy", "GOOGLE", "Google Know"),
                ("91000 12345", "Mohammed Irfan", "META", "Meta Know"),
                ("91000 12345", "Mohammed Irfan", "OEM", "Tele"),
                ("91000 12345", "Mohammed Irfan", "OEM", "Tele"),
            ):
                type_lead(window, phone, name, src, sub)
                window.form.submit()
                wait(lambda: window.form.phone.text() == "")
            wait(lambda: all(i.state.value == "done" for i in window.shift_model.items()))
            window.grab().save(str(out / "desk.png"))

            # The duplicate banner: a returning caller from another source.
            type_lead(window, "", "", "BTL", "BTL Know")
            QTest.keyClicks(window.form.phone, "+91 98480 22338")
            wait(lambda: window.form.banner.lead is not None)
            window.grab().save(str(out / "banner.png"))

            # Offline: the server goes away; leads keep queueing.
            demo.stop()
            window.session.engine.pull_now()
            wait(lambda: window.offline_banner.isVisible(), timeout=30)
            for phone, name in (("97000 11111", "Kavya Sharma"), ("97000 22222", "Rahul Varma")):
                type_lead(window, phone, name, "OEM", "Web")
                window.form.submit()
                wait(lambda: window.form.phone.text() == "")
            QTest.qWait(400)
            window.grab().save(str(out / "offline.png"))
            window.session.stop()
            window.close()

            demo = DemoServer.start(tmp / "server")
            lead = open_window(demo, "lead@demo.local", tmp)
            lead.tabs.setCurrentIndex(1)
            dash = lead.dashboard
            dash.range_combo.setCurrentIndex(2)  # last 30 days
            got: list[bool] = []
            dash.loaded.connect(lambda _: got.append(True))
            dash.refresh()
            wait(lambda: bool(got))
            QTest.qWait(300)
            lead.grab().save(str(out / "dashboard.png"))
            lead.session.stop()
            lead.close()
        finally:
            demo.stop()
    print(f"saved desk.png, banner.png, offline.png, dashboard.png in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
