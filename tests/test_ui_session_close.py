"""Sign-out closes every SQLite connection the desk opened, each on its own thread: a file left open cannot be
renamed or deleted on Windows (the next sign-in's cache rebuild or outbox set-aside), and sqlite3 refuses to close a
connection from another thread (the old cross-thread close failed silently and left them open)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import psutil
from serverproc import phone_for
from test_ui_desk import open_desk

from crm_desktop.core.worklist import WorkList
from crm_desktop.ui.workers import reader_pool, run_in


def _open_store_files(folder: Path) -> list[str]:
    return sorted(f.path for f in psutil.Process().open_files() if Path(f.path).parent == folder)


def test_sign_out_closes_each_threads_store_files(server, clean_db, tmp_path: Path, qtbot: Any):
    window = open_desk(server, tmp_path, qtbot, "cre1@demo.local")
    session = window.session
    try:
        # Both reader threads and the writer thread open their own Store.
        for i in range(6):
            session.lookup(phone_for(700 + i))
            session.refresh_queue_stats()
        done: list[Any] = []
        session.enqueue({"phone": phone_for(994), "customer_name": "Tara", "source": "GOOGLE",
                         "sub_source": "Google Know"}, done.append, done.append)  # fmt: skip
        qtbot.waitUntil(lambda: bool(done), timeout=10_000)
        reader_pool().waitForDone(10_000)
        assert _open_store_files(session.store_path.parent)  # the files are open now
        assert len(session._stores) >= 2
        session.stop()
        assert _open_store_files(session.store_path.parent) == []
        assert session._stores == {}
    finally:
        session.api.close()
        window.close()


def test_work_queued_before_sign_out_runs_after_it_and_leaves_no_file_open(server, clean_db, tmp_path: Path, qtbot):
    """The engine's last reports (a pass ending as the session stops) queue refreshes that run after stop(): each
    opened a Store on a pool thread that nothing closed any more."""
    window = open_desk(server, tmp_path, qtbot, "cre1@demo.local")
    session = window.session
    try:
        session.stop()
        assert _open_store_files(session.store_path.parent) == []
        answers: list[Any] = []
        session.refresh_queue_stats()  # as a queued report's slot does, after the stop
        run_in(reader_pool(), session.with_store(lambda s: s.cache_count()), answers.append)
        # ... and a page of a list the worklist model asks for (it calls the session on the reader pool itself)
        today = date.today()
        run_in(reader_pool(), lambda: session.load_worklist_page(session.cre_id, WorkList.PENDING, today, None, None,
                                                                0, 50), answers.append)  # fmt: skip
        qtbot.waitUntil(lambda: len(answers) == 2, timeout=10_000)
        reader_pool().waitForDone(10_000)
        assert {type(a) for a in answers} == {int, list}  # the work was done (two reader threads: in either order)
        assert _open_store_files(session.store_path.parent) == []
        assert session._stores == {}
    finally:
        session.api.close()
        window.close()
