"""The UI's worker plumbing: every job ends in exactly one callback on the GUI thread, even by the thousand."""

from __future__ import annotations

import functools
import threading

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
