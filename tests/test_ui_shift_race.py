"""The "This shift" list must never lose a row to a list snapshot that arrives late (redteam.md #16: the window's first
`load_items()` answer, read before a lead was queued, landed after it and wiped its row)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication
from serverproc import new_lead, phone_for
from test_ui_desk import close_desk, open_desk

from crm_desktop.core.models import OutboxItem, OutboxState
from crm_desktop.ui.shift_model import ShiftModel
from crm_desktop.ui.workers import reader_pool


def _item(ref: str, seq: int, state: OutboxState, updated_at: float) -> OutboxItem:
    return OutboxItem(
        seq=seq, client_ref=ref, payload={"client_ref": ref}, state=state, attempts=0, last_error=None, answer=None,
        created_at=100.0, updated_at=updated_at, next_attempt_at=100.0, label=ref,
    )  # fmt: skip


def test_a_snapshot_read_before_an_upsert_neither_hides_the_row_nor_takes_its_state_back(qtmodeltester):
    model = ShiftModel()
    qtmodeltester.check(model)
    model.upsert(_item("a", 1, OutboxState.QUEUED, 101.0))
    model.upsert(_item("b", 2, OutboxState.DONE, 105.0))
    # The snapshot was read when "b" was still queued and "a" was not stored yet.
    model.set_items([_item("b", 2, OutboxState.QUEUED, 102.0), _item("c", 3, OutboxState.DONE, 90.0)])
    states = {it.client_ref: it.state for it in model.items()}
    assert states == {"a": OutboxState.QUEUED, "b": OutboxState.DONE, "c": OutboxState.DONE}
    # A newer snapshot still wins over an older shown state.
    model.set_items([_item("a", 1, OutboxState.DONE, 110.0)])
    assert next(it for it in model.items() if it.client_ref == "a").state is OutboxState.DONE


def test_the_windows_first_list_load_landing_after_a_queued_lead_keeps_its_row(
    server, clean_db, tmp_path: Path, qtbot: Any
):
    window = open_desk(server, tmp_path, qtbot, "cre1@demo.local")
    try:
        window.session.engine.stop()  # nothing else changes the list meanwhile
        # On purpose, the race's order: a list snapshot is read (empty) on the reader pool ...
        window.session.load_items(window._on_items_loaded)
        reader_pool().waitForDone(10_000)
        # ... a lead is queued and shown before that answer is delivered to the GUI thread ...
        item = window.session._store().enqueue(new_lead(phone_for(992)))
        window.shift_model.upsert(item)
        # ... and only now the stale snapshot lands.
        QCoreApplication.sendPostedEvents()
        refs = [it.client_ref for it in window.shift_model.items()]
        assert item.client_ref in refs
    finally:
        close_desk(window)
