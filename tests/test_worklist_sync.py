"""The worklist against the real reference server (migration 005) with real SQLite files and the real sync engine:
a CRE's day, an outage with calls and new leads queued, the out-of-order sources of one caller, a reassignment."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from serverproc import Api, new_lead, phone_for
from serverproc import import_campaign as import_for

from crm_desktop.core.api import ApiClient
from crm_desktop.core.models import Op, OutboxState
from crm_desktop.core.store import Store
from crm_desktop.core.sync import SyncEngine, prepare_local_desk
from crm_desktop.core.worklist import WorkList, overdue_days

IST = ZoneInfo("Asia/Kolkata")


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def today() -> date:
    return datetime.now(IST).date()


def now_iso(minutes: int = 0) -> str:
    return (datetime.now(IST) + timedelta(minutes=minutes)).isoformat(timespec="seconds")


class Desk:
    """A CRE's desk without the UI: signed in, its store, its engine."""

    def __init__(self, server: Any, tmp_path: Path, email: str, *, backoff_base: float = 0.05) -> None:
        self.api = ApiClient(server.url, server.anon_key)
        self.api.login(email, "demo1234")
        self.path = tmp_path / f"{email}.sqlite3"
        self.profile, _ = prepare_local_desk(self.api, self.path)
        self.me = str(self.profile["id"])
        self.engine = SyncEngine(self.api, self.path, poll_interval=0.2, page_size=50, backoff_base=backoff_base,
                                 backoff_max=backoff_base * 2)  # fmt: skip
        self.store = Store(self.path)

    def synced(self, cond: Callable[[Store], bool], what: str) -> None:
        def check() -> bool:
            self.engine.pull_now()
            return cond(self.store)

        wait_for(check, what=what)

    def list_names(self, which: WorkList, cre: str | None = None) -> list[str]:
        return [x.customer_name for x in self.store.worklist_page(cre or self.me, which, today())]

    def call(self, phone: str, **call: Any) -> Any:
        lead = self.store.lookup_desk(phone)
        assert lead is not None
        body = {"called_at": now_iso(), **call}
        if lead.on_server:
            body["lead_id"] = lead.lead_id
        else:
            body["lead_ref"] = lead.lead_ref
        item = self.store.enqueue_call(body, phone, {"customer_name": lead.customer_name})
        self.engine.wake_push()
        return item

    def close(self) -> None:
        self.engine.stop()
        self.store.close()
        self.api.close()


@pytest.fixture
def desk(server: Any, clean_db: Any, tmp_path: Path) -> Iterator[Desk]:
    d = Desk(server, tmp_path, "cre1@demo.local")
    yield d
    d.close()


def assign(api: Api, lead_ids: list[int], email: str) -> dict[str, Any]:
    """assign_leads as the team lead (lead_ids as a JSON array, bound to bigint[] as PostgREST does)."""
    r = api.rpc("assign_leads", api.token("lead@demo.local"), lead_ids=lead_ids, cre_email=email)
    assert r.status_code == 200, r.text
    return dict(r.json())


def server_lead(db: Any, phone: str) -> dict[str, Any]:
    cur = db.execute(
        "select lead_status, final_status, follow_up_date, call_count, sources from leads where phone = %s", (phone,)
    )
    row = cur.fetchone()
    assert row is not None, phone
    return dict(zip(("lead_status", "final_status", "follow_up_date", "call_count", "sources"), row, strict=True))


def test_a_cre_day_fresh_pending_overdue_won(desk: Desk, api: Api, clean_db: Any) -> None:
    import_for(api, "cre1@demo.local", ["Anil Fresh", "Bina Fresh", "Chandra Fresh"], 100)
    desk.engine.start()
    desk.synced(lambda s: s.worklist_counts(desk.me, today())[WorkList.FRESH] == 3, "imported leads under Fresh")
    assert sorted(desk.list_names(WorkList.FRESH)) == ["Anil Fresh", "Bina Fresh", "Chandra Fresh"]

    tomorrow = (today() + timedelta(days=1)).isoformat()
    item = desk.call(phone_for(100), lead_status="Interested", follow_up_at=tomorrow)
    # At once, before the server answered: out of Fresh, into Pending, marked as not yet sent.
    assert "Anil Fresh" not in desk.list_names(WorkList.FRESH)
    wait_for(lambda: desk.store.get(item.client_ref).state is OutboxState.DONE, what="call sent")  # type: ignore[union-attr]
    desk.synced(lambda s: (x := s.lookup(phone_for(100))) is not None and x.call_count == 1, "the call in the feed")
    assert "Anil Fresh" in desk.list_names(WorkList.PENDING) and "Anil Fresh" not in desk.list_names(WorkList.FRESH)
    banner = desk.store.lookup_desk(phone_for(100))
    assert banner is not None and banner.lead_status == "Interested" and banner.unsent == 0
    assert banner.follow_up_date == tomorrow

    yesterday = (today() - timedelta(days=1)).isoformat()
    desk.call(phone_for(101), lead_status="Call me Back", follow_up_at=yesterday)
    desk.synced(lambda s: (x := s.lookup(phone_for(101))) is not None and x.call_count == 1, "overdue call")
    overdue = desk.store.worklist_page(desk.me, WorkList.OVERDUE, today())
    assert [x.customer_name for x in overdue] == ["Bina Fresh"] and overdue_days(overdue[0], today()) == 1

    desk.call(phone_for(101), lead_status="Interested", final_status="Won")
    desk.synced(lambda s: (x := s.lookup(phone_for(101))) is not None and x.final_status == "Won", "won")
    assert desk.list_names(WorkList.WON_LOST) == ["Bina Fresh"]
    assert desk.list_names(WorkList.OVERDUE) == []


def test_offline_calls_and_new_leads_reach_the_server_once_in_per_lead_order(
    desk: Desk, api: Api, server: Any, clean_db: Any
) -> None:
    cre1 = api.token("cre1@demo.local")
    for i in range(3):
        r = api.rpc("create_lead", cre1, lead=new_lead(phone_for(200 + i), customer_name=f"Known {i}"))
        assert r.status_code == 200, r.text
    desk.engine.start()
    desk.synced(lambda s: s.lookup(phone_for(202)) is not None, "known leads cached")
    server.stop()
    try:
        follow = (today() + timedelta(days=3)).isoformat()
        calls = [
            desk.call(phone_for(200 + i), lead_status="Busy on another Call", follow_up_at=follow) for i in range(3)
        ]
        new = [desk.store.enqueue(new_lead(phone_for(300 + i), customer_name=f"New {i}", called_at=now_iso()))
               for i in range(2)]  # fmt: skip
        desk.engine.wake_push()
        again = desk.call(phone_for(300), lead_status="Interested", follow_up_at=follow, called_at=now_iso(1))
        assert again.lead_ref == new[0].client_ref
        # The lists and the banner show all of it at once, offline.
        pending = {x.customer_name: x for x in desk.store.worklist_page(desk.me, WorkList.PENDING, today())}
        assert {f"Known {i}" for i in range(3)} | {"New 0", "New 1"} <= set(pending)
        assert pending["Known 0"].lead_status == "Busy on another Call" and pending["Known 0"].unsent == 1
        assert pending["New 0"].unsent == 2 and pending["New 0"].lead_status == "Interested"
        assert not pending["New 0"].on_server
        wait_for(lambda: desk.engine.connection_state == "offline", what="the desk to notice the outage")
    finally:
        server.start()
    wait_for(lambda: desk.store.pending_count() == 0, what="the queue to drain")
    items = {i.client_ref: i for i in desk.store.items()}
    assert all(i.state is OutboxState.DONE for i in items.values()), [(i.label, i.last_error) for i in items.values()]
    # Per-lead order: the call on New 0 was answered after its creation, on the lead it created.
    assert items[again.client_ref].answer["lead_id"] == items[new[0].client_ref].answer["lead_id"]  # type: ignore[index]
    assert items[again.client_ref].updated_at >= items[new[0].client_ref].updated_at
    # Once each: one call per known lead, two for New 0 (its creation's and the call), one for New 1.
    db = clean_db
    assert [server_lead(db, phone_for(200 + i))["call_count"] for i in range(3)] == [2, 2, 2]
    assert server_lead(db, phone_for(300))["call_count"] == 2 and server_lead(db, phone_for(301))["call_count"] == 1
    assert db.execute("select count(*) from lead_requests").fetchone()[0] == 3 + len(items)
    # What the desk shows is what the server holds, once the feed has come back.
    desk.synced(lambda s: (x := s.lookup(phone_for(300))) is not None and x.call_count == 2, "the feed")
    for phone in [phone_for(200 + i) for i in range(3)] + [phone_for(300), phone_for(301)]:
        shown = desk.store.lookup_desk(phone)
        held = server_lead(db, phone)
        assert shown is not None and shown.unsent == 0
        assert (shown.lead_status, shown.final_status, shown.call_count) == (
            held["lead_status"],
            held["final_status"],
            held["call_count"],
        )
        assert shown.follow_up_date == (held["follow_up_date"].isoformat() if held["follow_up_date"] else None)
    assert all(i.op in (Op.CREATE_LEAD, Op.LOG_CALL) for i in items.values())
    assert len(calls) == 3


def test_the_source_that_came_first_is_credited_when_its_item_was_in_backoff(
    server: Any, clean_db: Any, tmp_path: Path
) -> None:
    # Long backoff: the Web item would still be waiting when the Meta one is due.
    desk = Desk(server, tmp_path, "cre1@demo.local", backoff_base=60.0)
    phone = phone_for(400)
    try:
        server.stop()
        web = desk.store.enqueue(new_lead(phone, source="OEM", sub_source="Web", called_at=now_iso()))
        desk.engine.drain(desk.store)  # fails: the server is away; the Web item goes into backoff
        assert desk.store.get(web.client_ref).attempts == 1  # type: ignore[union-attr]
        meta = desk.store.enqueue(new_lead(phone, source="META", sub_source="Meta Know", called_at=now_iso(1)))
        server.start()
        desk.engine.drain(desk.store)  # the Meta item is due, but held behind the Web one of the same caller
        assert desk.store.get(meta.client_ref).state is OutboxState.QUEUED  # type: ignore[union-attr]
        desk.engine.drain(desk.store, force=True)  # "Send now" / back online: both, in their order
        assert desk.store.get(web.client_ref).answer["outcome"] == "created"  # type: ignore[union-attr]
        assert desk.store.get(meta.client_ref).answer["outcome"] == "added_source"  # type: ignore[union-attr]
        sources = server_lead(clean_db, phone)["sources"]
        assert (sources[0]["source"], sources[0]["sub_source"]) == ("OEM", "Web")
    finally:
        if not server.running:
            server.start()
        desk.close()


def test_a_reassignment_moves_the_lead_between_cres_lists(desk: Desk, api: Api, server: Any, tmp_path: Path) -> None:
    import_for(api, "cre1@demo.local", ["Moving Lead", "Staying Lead"], 500)
    desk.engine.start()
    desk.synced(lambda s: s.worklist_counts(desk.me, today())[WorkList.FRESH] == 2, "fresh leads")
    other = Desk(server, tmp_path, "cre2@demo.local")
    try:
        moving = desk.store.lookup(phone_for(500))
        assert moving is not None
        assert assign(api, [moving.lead_id], "cre2@demo.local")["assigned"] == 1
        desk.synced(lambda s: s.worklist_counts(desk.me, today())[WorkList.FRESH] == 1, "the lead to leave cre1")
        assert desk.list_names(WorkList.FRESH) == ["Staying Lead"]
        # The other CRE's desk lists it after its own sync; a team lead picking cre2 sees the same from any cache.
        other.engine.start()
        other.synced(lambda s: s.worklist_counts(other.me, today())[WorkList.FRESH] == 1, "the lead to reach cre2")
        assert other.list_names(WorkList.FRESH) == ["Moving Lead"]
        assert desk.list_names(WorkList.FRESH, cre=other.me) == ["Moving Lead"]
    finally:
        other.close()
