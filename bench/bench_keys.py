"""Keystrokes from ring to Enter, counted on the real desk window driven as a CRE drives it.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_keys.py [--abbrev 2]

Why: issue 9 asks for fewer keys per caller (today 74 / 28 / 33 for a full new lead, the next caller on the same
campaign, and a known caller's follow-up call; goal <= 55 / 20 / 15). This opens a real MainWindow on a fresh demo
reference server and types every key into QApplication.focusWidget() (or the open list), counting each key press or
chord (Alt+T, Ctrl+K) as one. Text a CRE must type whatever the design — the 10 digits, the name (10 letters), the
remark (13) — counts, as in the review. Picker values are typed as their first --abbrev letters (2 by default: what a
CRE learns within a shift; 3 for a newcomer), and the script checks that each stored lead has exactly the intended
values, so a count is never bought with a wrong lead. A benchmark, not a test: it prints figures and asserts nothing
about them. Each count is split into what a person must type whatever the design (the digits and the free text:
name, remark, a typed follow-up), the letters typed into pickers, and every other key (Tab, Enter, Alt+T …): only
the last two are the design's.

B's floor: the review drove B with a 10-letter name ("10 digits, Tab, name, Alt+T, `int`, Down, Enter, Enter" = 28,
free text 10), and so does this script; the text alone is then 20, the goal. What the design can still cut it has
cut: the campaign keeps the call status with the source and branch (marked "kept from the last lead"), and Enter
saves from the name field, and a letter typed at the end of a complete mobile starts the name (no letter belongs in
a number), so B is the text + Enter = 21: one key to save is the floor, 20 cannot be reached with this text. Mobile
never moves on by itself after the tenth digit (a CRE's habitual Tab would land in Source, a pasted or corrected
number would jump away mid-edit); the Tab simply stops being needed, and still works.

The cases, as the review counted them:
  A  full new lead, first caller of the shift: phone, name, GOOGLE, Interested, default follow-up, Hot, 450 X,
     SOMAJIGUDA, PS Ravi Teja, remark.
  B  the next caller on the same campaign (source, call status and branch kept from A): phone, name, Enter.
  C  a known caller calls back (a lead of another CRE, in the cache): phone, Call me Back, default follow-up.
  C+ as C with a follow-up typed ("+2").
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from bench_server import OUT, Server, crm_server_exe, say
from PySide6.QtCore import QEventLoop, QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from crm_desktop.core.api import ApiClient
from crm_desktop.core.models import OutboxState
from crm_desktop.core.store import Store
from crm_desktop.core.sync import prepare_local_desk
from crm_desktop.ui.main_window import MainWindow
from crm_desktop.ui.session import DeskSession
from crm_desktop.ui.settings import Settings

K = Qt.Key
NO = Qt.KeyboardModifier.NoModifier
TODAY_74_28_33 = {"A": 74, "B": 28, "C": 33}
GOALS = {"A": 55, "B": 20, "C": 15}


#: The kinds a count is split into: what any design needs typed, and what this design adds.
KINDS = ("digits", "free text", "picker letters", "other keys")


class Keys:
    """Types into whatever has the focus (or the open list) and counts what a person would press, by kind."""

    def __init__(self) -> None:
        self.count = 0
        self.log: list[str] = []
        self.by_kind = dict.fromkeys(KINDS, 0)

    @staticmethod
    def _target() -> QWidget:
        popup = QApplication.activePopupWidget()
        if popup is not None:
            inner = popup.focusWidget()
            return inner if inner is not None and inner.window() is popup else popup
        w = QApplication.focusWidget()
        if w is None:
            raise RuntimeError("nothing has the keyboard focus")
        return w

    def text(self, s: str, what: str, kind: str = "free text") -> None:
        for ch in s:  # each key to whatever has the focus when it is pressed, as a person's keys go
            QTest.keyClicks(QApplication.focusWidget(), ch)
            QApplication.processEvents()  # a person's next key comes milliseconds later: what was posted is done
        self.count += len(s)
        self.by_kind[kind] += len(s)
        self.log.append(f"{what} '{s}' ({len(s)})")

    def digits(self, s: str) -> None:
        self.text(s, "mobile", "digits")

    def pick(self, s: str, what: str) -> None:
        self.text(s, what, "picker letters")

    def breakdown(self) -> str:
        return " + ".join(f"{self.by_kind[k]} {k}" for k in KINDS)

    def key(self, key: Qt.Key, what: str, modifier: Qt.KeyboardModifier = NO) -> None:
        QTest.keyClick(self._target(), key, modifier)
        QApplication.processEvents()
        self.count += 1
        self.by_kind["other keys"] += 1
        self.log.append(what)


def wait_until(cond: Callable[[], bool], timeout: float) -> bool:
    app = QApplication.instance()
    assert app is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
    return cond()


def open_window(server: Server, work: Path) -> MainWindow:
    api = ApiClient(server.url, server.anon_key)
    api.login("cre1@demo.local", "demo1234")
    path = work / "cre1.sqlite3"
    profile, _ = prepare_local_desk(api, path)
    settings = Settings(QSettings(str(work / "cre1.ini"), QSettings.Format.IniFormat))
    session = DeskSession(api, path, profile, poll_interval=1.0)
    window = MainWindow(session, settings)
    loaded: list[bool] = []
    window.data_loaded.connect(lambda: loaded.append(True))
    session.start()
    window.show()
    window.activateWindow()
    if not wait_until(lambda: bool(loaded) and window.isActiveWindow(), 60):
        raise RuntimeError("the window never finished loading")
    return window


def ab(value: str, n: int) -> str:
    return value[:n]


def case_a(keys: Keys, n: int) -> dict[str, Any]:
    keys.digits("9845012399")
    keys.text("Meena Kuma", "name (its first letter leaves the complete mobile: no Tab)")
    keys.key(K.Key_Tab, "Tab")
    keys.pick(ab("GOOGLE", n).lower(), "source")
    keys.key(K.Key_Tab, "Tab (the one sub-source is filled and skipped)")
    keys.pick(ab("Interested", n).lower(), "status")
    keys.key(K.Key_Tab, "Tab")
    keys.key(K.Key_Tab, "Tab over the default follow-up (tomorrow)")
    keys.pick(ab("Hot", n).lower(), "category")
    keys.key(K.Key_Tab, "Tab")
    keys.pick(ab("450 X", n).lower(), "model")
    keys.key(K.Key_Tab, "Tab")
    keys.pick(ab("SOMAJIGUDA", n).lower(), "branch")
    keys.key(K.Key_Tab, "Tab")
    keys.pick(ab("Ravi Teja", n).lower(), "PS")
    keys.key(K.Key_Tab, "Tab")
    keys.text("test ride sun", "remark")
    keys.key(K.Key_Return, "Enter")
    return {"phone": "+919845012399", "customer_name": "Meena Kuma", "source": "GOOGLE", "sub_source": "Google Know",
            "lead_status": "Interested", "lead_category": "Hot", "model_interested": "450 X (2.9 kWh)",
            "branch": "SOMAJIGUDA", "ps_email": "ps1@demo.local", "remark": "test ride sun"}  # fmt: skip


def case_b(keys: Keys, n: int) -> dict[str, Any]:
    keys.digits("9845012398")
    keys.text("Gopal Raoo", "name (its first letter leaves the complete mobile: no Tab)")
    keys.key(K.Key_Return, "Enter from the name (source, call status and branch kept from A)")
    return {"phone": "+919845012398", "customer_name": "Gopal Raoo", "source": "GOOGLE", "branch": "SOMAJIGUDA",
            "lead_status": "Interested"}  # fmt: skip


def case_c(keys: Keys, n: int, phone: str, follow: str | None, window: MainWindow) -> dict[str, Any]:
    keys.digits(phone.removeprefix("+91"))
    wait_until(lambda: window.form.banner.lead is not None, 5)  # the banner on the completing keystroke
    keys.key(K.Key_Tab, "Tab (the known lead's name is not asked: straight to Call status)")
    keys.pick(ab("Call me Back", n).lower(), "status")
    expected: dict[str, Any] = {"phone": phone, "customer_name": "Sravani Reddy", "lead_status": "Call me Back"}
    if follow is not None:
        keys.key(K.Key_Tab, "Tab")
        keys.text(follow, "follow-up")
    keys.key(K.Key_Return, "Enter")
    return expected


def run_cases(window: MainWindow, known: str, n: int) -> dict[str, Keys]:
    counts: dict[str, Keys] = {}
    cases: list[tuple[str, Callable[[Keys], dict[str, Any]]]] = [
        ("A", lambda k: case_a(k, n)),
        ("B", lambda k: case_b(k, n)),
        ("C", lambda k: case_c(k, n, known, None, window)),
        ("C+", lambda k: case_c(k, n, known, "+2", window)),
    ]
    for name, run in cases:
        keys = Keys()
        before = len(window.shift_model.items())
        expected = run(keys)
        done = wait_until(lambda b=before: len(window.shift_model.items()) > b
                          and window.shift_model.items()[-1].state is OutboxState.DONE, 15)  # fmt: skip
        payload = window.shift_model.items()[-1].payload if done else {}
        wrong = {f: (payload.get(f), v) for f, v in expected.items() if payload.get(f) != v}
        counts[name] = keys
        errors = {k: lbl.text() for k, lbl in window.form.errors.items() if lbl.text()}
        status = "stored as intended" if done and not wrong else f"NOT STORED AS INTENDED {wrong} {errors}"
        say(f"[{n} letters] {name}: {keys.count} keys = {keys.breakdown()} ({status}): " + " · ".join(keys.log))
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--abbrev", type=int, nargs="+", default=[2, 3], help="letters typed per picker value")
    ap.add_argument("--server-exe", default=crm_server_exe())
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    results: dict[int, dict[str, Keys]] = {}
    for n in args.abbrev:
        work = Path(tempfile.mkdtemp(prefix="bench-keys-", dir=OUT)).resolve()
        server = Server(args.server_exe, work / "pgdata")
        (work / "pgdata").mkdir(parents=True)
        window: MainWindow | None = None
        try:
            server.start()
            other = ApiClient(server.url, server.anon_key)
            other.login("cre2@demo.local", "demo1234")
            known = "+919845012397"
            other.rpc("create_lead", {"lead": {
                "client_ref": "5b7f0a36-1111-4c6e-9f55-0123456789ab", "customer_name": "Sravani Reddy",
                "phone": known, "source": "GOOGLE", "sub_source": "Google Know", "lead_status": "Interested",
                "final_status": "Pending", "follow_up_date": time.strftime("%Y-%m-%d"),
            }})  # fmt: skip
            other.close()
            window = open_window(server, work)
            store_path = window.session.store_path
            wait_until(lambda p=store_path, k=known: Store(p).lookup(k) is not None, 20)
            results[n] = run_cases(window, known, n)
        finally:
            if window is not None:
                window.session.stop()
                window.session.api.close()
                window.close()
            server.stop()
            app.processEvents()
            shutil.rmtree(work, ignore_errors=True)
    print()
    print("keys ring -> Enter   today   goal   " + "   ".join(f"{n} letters/picker" for n in results))
    for case in ("A", "B", "C", "C+"):
        base = TODAY_74_28_33.get(case[0]) if case != "C+" else None
        goal = GOALS.get(case) if case != "C+" else None
        row = "   ".join(f"{results[n][case].count if case in results[n] else 0:>16}" for n in results)
        print(f"{case:<18} {base if base else '':>6} {goal if goal else '':>6}   {row}")
    print()
    print("where the keys go (digits and free text: any design; picker letters and other keys: this design's)")
    for n in results:
        for case, keys in results[n].items():
            print(f"  {n} letters/picker  {case:<3} {keys.count:>3} = {keys.breakdown()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
