"""The push thread survives an outbox item that changed under it (redteam.md #2: a second desk process on the same
outbox re-queued and finished an item mid-send; the first desk's `mark_done` raised OutboxStateError and its push
thread died for good)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from serverproc import new_lead, phone_for
from test_sync import wait_for

from crm_desktop.core.api import ApiClient
from crm_desktop.core.models import OutboxState
from crm_desktop.core.store import Store
from crm_desktop.core.sync import SyncEngine


class OtherDeskTakesOver(httpx.HTTPTransport):
    """Real HTTP, but while the first create_lead is on the wire another desk on the same outbox re-queues the item
    (its start-up `reset_sending`), sends it itself and marks it done."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.done = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/rpc/create_lead") and not self.done:
            self.done = True
            other = Store(self.path)
            try:
                other.reset_sending()
                item = other.next_due(float("inf"))
                assert item is not None
                other.mark_sending(item.client_ref)
                other.mark_done(item.client_ref, {"outcome": "created", "uid": "by the other desk"})
            finally:
                other.close()
        return super().handle_request(request)


@pytest.mark.expected_log_warnings
def test_push_thread_goes_on_when_another_desk_finished_its_item(server, clean_db, tmp_path: Path):
    path = tmp_path / "desk.sqlite3"
    Store.open_or_rebuild(path)[0].close()
    transport = OtherDeskTakesOver(path)
    client = ApiClient(server.url, server.anon_key, transport=transport)
    client.login("cre1@demo.local", "demo1234")
    engine = SyncEngine(client, path, poll_interval=0.3, backoff_base=0.05, backoff_max=0.5)
    errors: list[Exception] = []
    engine.listeners.error.append(errors.append)
    store = Store(path)
    try:
        first = store.enqueue(new_lead(phone_for(3001)))
        engine.start()
        wait_for(lambda: transport.done, what="the first send")
        wait_for(lambda: store.pending_count() == 0, what="the first item settled")
        assert store.get(first.client_ref).state is OutboxState.DONE  # type: ignore[union-attr]
        # The thread is still there: a lead queued now is sent.
        second = store.enqueue(new_lead(phone_for(3002)))
        engine.wake_push()
        wait_for(lambda: store.get(second.client_ref).state is OutboxState.DONE,  # type: ignore[union-attr]
                 what="the next lead sent")  # fmt: skip
        assert [t.name for t in engine._threads if t.is_alive()] == ["outbox-push", "cache-pull"]
        assert errors == []
    finally:
        store.close()
        engine.stop()
        client.close()
