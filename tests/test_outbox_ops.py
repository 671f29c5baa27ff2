"""The outbox of operations on real SQLite files: per-lead order, calls on leads still being created, and an outbox
written by an older desk (schema version 1) whose queued leads must still go out."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crm_desktop.core.models import Op, OutboxState
from crm_desktop.core.store import _OUTBOX_MIGRATIONS, Store, outbox_path_for

WEB = {"source": "OEM", "sub_source": "Web"}
META = {"source": "META", "sub_source": "Meta Know"}


def lead(phone: str, name: str = "Ravi Kumar", **extra: Any) -> dict[str, Any]:
    return {"customer_name": name, "phone": phone, **WEB, **extra}


def call(**extra: Any) -> dict[str, Any]:
    return {"called_at": "2026-11-30T10:00:00+05:30", "lead_status": "Interested", "follow_up_at": "2026-12-01",
            **extra}  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s, _ = Store.open_or_rebuild(tmp_path / "desk.sqlite3")
    yield s
    s.close()


def test_a_later_item_never_overtakes_an_earlier_one_of_the_same_lead_in_backoff(store: Store) -> None:
    web = store.enqueue(lead("+919876543210", **WEB))
    meta = store.enqueue(lead("+919876543210", **META))
    other = store.enqueue(lead("+919800000001", name="Other caller"))
    now = time.time()
    assert store.next_due(now).client_ref == web.client_ref  # type: ignore[union-attr]
    store.mark_sending(web.client_ref)
    # While the first is being sent, the second of its lead is not due; another lead's is.
    assert store.next_due(now).client_ref == other.client_ref  # type: ignore[union-attr]
    store.mark_retry(web.client_ref, "server unreachable", now + 30)
    # The Web item is in backoff: the Meta item of the same caller waits for it, the other lead does not.
    assert store.next_due(now).client_ref == other.client_ref  # type: ignore[union-attr]
    store.mark_sending(other.client_ref)
    store.mark_done(other.client_ref, {"outcome": "created"})
    assert store.next_due(now) is None
    assert store.earliest_due() == pytest.approx(now + 30)  # the held Meta item is not "due" on its own
    assert store.next_due(now + 30).client_ref == web.client_ref  # type: ignore[union-attr]
    store.mark_sending(web.client_ref)
    store.mark_done(web.client_ref, {"outcome": "created", "lead_id": 7})
    assert store.next_due(now).client_ref == meta.client_ref  # type: ignore[union-attr]


def test_a_parked_item_does_not_hold_its_lead(store: Store) -> None:
    first = store.enqueue(lead("+919876543210"))
    second = store.enqueue(lead("+919876543210", **META))
    store.mark_parked(first.client_ref, "Unknown sub-source.")
    assert store.next_due(time.time()).client_ref == second.client_ref  # type: ignore[union-attr]


def test_a_call_on_a_lead_being_created_waits_for_it_and_then_names_its_lead_id(store: Store) -> None:
    created = store.enqueue(lead("+919876543210"))
    c = store.enqueue_call(call(lead_ref=created.client_ref), "+919876543210", {"customer_name": "Ravi Kumar"})
    assert c.op is Op.LOG_CALL and c.lead_ref == created.client_ref and c.label == "Ravi Kumar · +91******3210"
    now = time.time()
    store.mark_sending(created.client_ref)
    store.mark_retry(created.client_ref, "503", now)
    assert store.next_due(now).client_ref == created.client_ref  # type: ignore[union-attr]
    store.mark_sending(created.client_ref)
    store.mark_done(created.client_ref, {"outcome": "created", "lead_id": 41, "uid": "TW-3210-0001"})
    due = store.next_due(now)
    assert due is not None and due.client_ref == c.client_ref
    params = store.rpc_params(due)
    assert set(params) == {"call"}
    assert params["call"]["lead_id"] == 41 and "lead_ref" not in params["call"]
    assert params["call"]["client_ref"] == c.client_ref
    assert store.get(c.client_ref).payload["lead_ref"] == created.client_ref  # type: ignore[union-attr]  # kept


def test_a_call_waits_while_its_create_is_parked_and_follows_the_edited_resend(store: Store) -> None:
    created = store.enqueue(lead("+919876543210", sub_source="Nope"))
    c = store.enqueue_call(call(lead_ref=created.client_ref), "+919876543210")
    store.mark_parked(created.client_ref, "Unknown sub-source.")
    assert store.next_due(time.time()) is None and store.earliest_due() is None
    edited = store.requeue(created.client_ref, lead("+919876543210"))
    assert edited.client_ref != created.client_ref
    waiting = store.get(c.client_ref)
    assert waiting is not None and waiting.lead_ref == edited.client_ref
    assert waiting.payload["lead_ref"] == edited.client_ref
    assert store.next_due(time.time()).client_ref == edited.client_ref  # type: ignore[union-attr]


def test_discarding_a_create_parks_the_calls_that_waited_for_it(store: Store) -> None:
    created = store.enqueue(lead("+919876543210"))
    c = store.enqueue_call(call(lead_ref=created.client_ref), "+919876543210")
    store.mark_parked(created.client_ref, "Refused.")
    store.discard(created.client_ref)
    parked = store.get(c.client_ref)
    assert parked is not None and parked.state is OutboxState.PARKED
    assert parked.last_error == "The new lead this call was about was discarded."


def test_a_call_names_its_lead_one_way(store: Store) -> None:
    with pytest.raises(ValueError, match="lead_id or by lead_ref"):
        store.enqueue_call(call(), "+919876543210")
    with pytest.raises(ValueError, match="lead_id or by lead_ref"):
        store.enqueue_call(call(lead_id=1, lead_ref=str(uuid.uuid4())), "+919876543210")
    c = store.enqueue_call(call(lead_id=5), "+919876543210", {"ps_name": "Suresh"})
    again = store.get(c.client_ref)
    assert again is not None and again.meta == {"ps_name": "Suresh"} and again.lead_key == "+919876543210"
    assert store.rpc_params(again) == {"call": {**call(lead_id=5), "client_ref": c.client_ref}}


def test_an_outbox_of_an_older_desk_is_migrated_and_its_leads_still_go_out(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    ob = outbox_path_for(path)
    conn = sqlite3.connect(ob, isolation_level=None)
    for statement in _OUTBOX_MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    refs = [str(uuid.uuid4()) for _ in range(3)]
    phones = ["+919876543210", "+919800000001", "+919876543210"]
    for i, (ref, phone) in enumerate(zip(refs, phones, strict=True)):
        payload = json.dumps({**lead(phone, name=f"Caller {i}"), "client_ref": ref})
        state = "sending" if i == 0 else "queued"  # the old desk died mid-send
        conn.execute(
            "INSERT INTO outbox (client_ref, payload, state, created_at, updated_at, next_attempt_at, label) "
            "VALUES (?, ?, ?, ?, ?, ?, '')",
            (ref, payload, state, i, i, i),
        )
    conn.close()

    store, _ = Store.open_or_rebuild(path)
    try:
        assert store._outbox_db().execute("PRAGMA user_version").fetchone()[0] == len(_OUTBOX_MIGRATIONS)
        store.reset_sending()
        items = store.items()
        assert [i.op for i in items] == [Op.CREATE_LEAD] * 3
        assert [i.lead_key for i in items] == phones
        sent = []
        while (item := store.next_due(time.time())) is not None:
            assert store.rpc_params(item) == {"lead": item.payload}
            store.mark_sending(item.client_ref)
            store.mark_done(item.client_ref, {"outcome": "created"})
            sent.append(item.client_ref)
        assert sent == refs  # all of them, in their order
    finally:
        store.close()
