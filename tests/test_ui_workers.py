"""The UI's worker plumbing: every job ends in exactly one callback on the GUI thread, even by the thousand."""

from __future__ import annotations

import functools
import logging
import sys
import threading

import pytest
import shiboken6
from PySide6.QtCore import QObject

from crm_desktop.ui.workers import reader_pool, run_in, writer_pool


def test_thousands_of_jobs_deliver_each_result_once_on_the_gui_thread(qtbot):
    gui = threading.get_ident()
    results: list[int] = []
    threads: set[int] = set()
    failures: list[BaseException] = []
    n = 5000

    def done(value: int) -> None:
        threads.add(threading.get_ident())
        results.append(value)

    for i in range(n):
        pool = writer_pool() if i % 2 else reader_pool()
        run_in(pool, lambda i=i: i * 2, done, failures.append)
    qtbot.waitUntil(lambda: len(results) == n, timeout=30_000)
    assert sorted(results) == [i * 2 for i in range(n)]
    assert threads == {gui} and not failures


def test_a_failing_job_reaches_its_failure_handler(qtbot):
    failures: list[BaseException] = []

    def boom() -> None:
        raise ValueError("disk said no")

    run_in(reader_pool(), boom, lambda _: None, failures.append)
    qtbot.waitUntil(lambda: bool(failures), timeout=5000)
    assert isinstance(failures[0], ValueError) and "disk said no" in failures[0].__traceback_text__


def test_a_callback_of_a_deleted_widget_is_not_called_even_behind_a_partial(qtbot):
    """A window closed while its job ran: its methods must not run on a deleted C++ object."""

    class Owner(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[tuple[str, int]] = []

        def done(self, tag: str, value: int) -> None:
            self.calls.append((tag, value))

    gone, alive = Owner(), Owner()
    release = threading.Event()
    finished: list[bool] = []
    for owner in (gone, alive):
        run_in(reader_pool(), lambda: release.wait(5) and 7, functools.partial(owner.done, "result"),
               on_finished=lambda: finished.append(True))  # fmt: skip
    calls = gone.calls
    shiboken6.delete(gone)
    release.set()
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=5000)
    assert calls == [] and alive.calls == [("result", 7)]


@pytest.mark.expected_log_warnings  # the failed job's traceback is logged: nothing else can show it
def test_a_job_still_running_when_its_signals_are_deleted_ends_quietly(qtbot, caplog, monkeypatch):
    """At exit PySide deletes every QObject Python owns; a job still running then emitted into a deleted object, and
    the RuntimeError reached the error presenter on the pool thread (a demo --screenshot run that never exited)."""
    hooked: list[BaseException] = []
    monkeypatch.setattr(sys, "excepthook", lambda kind, exc, tb: hooked.append(exc))
    release = threading.Event()
    ran: list[bool] = []
    caplog.set_level(logging.INFO, logger="crm_desktop.ui.workers")
    pool = reader_pool()
    for outcome in ("result", "failure"):
        ran.clear()

        def job(outcome: str = outcome) -> int:
            release.wait(5)
            ran.append(True)
            if outcome == "failure":
                raise ValueError("the server went away")
            return 7

        worker = run_in(pool, job, lambda _: None, lambda _: None)
        shiboken6.delete(worker.signals)  # what PySide's teardown does to it
        release.set()
        assert pool.waitForDone(5000) and ran
        release.clear()
    assert hooked == []
    text = caplog.text
    assert text.count("a background job ended after the desk closed") == 1  # said once, for the result's job
    assert text.count("a background job failed after the desk closed") == 1 and "the server went away" in text


@pytest.mark.expected_log_warnings  # the presenter logs each unexpected error
def test_an_error_on_a_pool_thread_opens_its_dialog_on_the_gui_thread(qtbot, monkeypatch):
    """The error presenter's dialog is a widget: made on a pool thread, it ran an event loop there that nobody could
    close. It must open on the GUI thread, and not at all in an unattended run."""
    from PySide6.QtWidgets import QApplication

    from crm_desktop.ui import app as app_module

    shown: list[tuple[int, str]] = []
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    monkeypatch.setattr(app_module, "show_unexpected_error", lambda parent, summary, details: shown.append(
        (threading.get_ident(), summary)))  # fmt: skip
    gui = threading.get_ident()
    unattended = [False]
    app_module.install_error_presenter(lambda: None, interactive=lambda: not unattended[0])

    def boom() -> None:
        raise KeyError("odd")

    run_in(reader_pool(), boom)  # no failure handler: the shared presenter
    qtbot.waitUntil(lambda: bool(shown), timeout=5000)
    assert shown == [(gui, "KeyError: 'odd'")]
    unattended[0] = True
    done: list[bool] = []
    run_in(reader_pool(), boom, on_finished=lambda: done.append(True))
    qtbot.waitUntil(lambda: bool(done), timeout=5000)
    QApplication.processEvents()
    assert len(shown) == 1
