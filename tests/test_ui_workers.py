"""The UI's worker plumbing: every job ends in exactly one callback on the GUI thread, even by the thousand."""

from __future__ import annotations

import threading

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
