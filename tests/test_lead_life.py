"""The lead after its first call (migration 005): log_call and the latest-call state rule, lead_detail, assign_leads,
import_leads, the feed's worklist columns and the dashboard's call counts — against the real server and PostgreSQL."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serverproc import Api, new_lead, phone_for

CRE1, CRE2, CRE3, LEAD, ADMIN = (
    "cre1@demo.local",
    "cre2@demo.local",
    "cre3@demo.local",
    "lead@demo.local",
    "admin@demo.local",
)
IST = timedelta(hours=5, minutes=30)


def desk_today() -> date:
    return (datetime.now(UTC) + IST).date()


def iso(t: datetime) -> str:
    return t.isoformat()


def call(lead_id: int | None = None, **overrides: Any) -> dict[str, Any]:
    c: dict[str, Any] = {
        "client_ref": str(uuid.uuid4()),
        "called_at": iso(datetime.now(UTC)),
        "lead_status": "Interested",
        "final_status": "Pending",
        "follow_up_at": (desk_today() + timedelta(days=3)).isoformat(),
    }
    if lead_id is not None:
        c["lead_id"] = lead_id
    c.update(overrides)
    return c


def create(api: Api, token: str, n: int, **overrides: Any) -> dict[str, Any]:
    """A lead whose first call was two hours ago (so calls logged since are newer)."""
    overrides.setdefault("called_at", iso(datetime.now(UTC) - timedelta(hours=2)))
    r = api.rpc("create_lead", token, lead=new_lead(phone_for(n), **overrides))
    assert r.status_code == 200, r.text
    return dict(r.json())


def log(api: Api, token: str, payload: dict[str, Any]) -> httpx.Response:
    return api.rpc("log_call", token, call=payload)


def feed(api: Api, token: str) -> list[dict[str, Any]]:
    page = api.rpc("lead_changes", token, since=0, max_rows=20000).json()
    return [dict(zip(page["columns"], row, strict=True)) for row in page["rows"]]


def test_a_later_call_sets_the_state_and_an_older_one_arriving_late_does_not(api: Api, clean_db):
    t1, t2 = api.token(CRE1), api.token(CRE2)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    lead = create(
        api, t1, 1, lead_status="Call me Back", follow_up_date=desk_today().isoformat(),
        called_at=iso(base - timedelta(hours=1)),
    )  # fmt: skip
    # Desk 2 logged "Booked" at 10:05 and got through first; desk 1's "Interested" of 10:00 arrives afterwards.
    newer = log(
        api,
        t2,
        call(
            lead["lead_id"],
            called_at=iso(base + timedelta(minutes=5)),
            lead_status="Booked",
            final_status="Won",
            follow_up_at=None,
            remark="booked the 450X",
        ),
    )
    assert newer.status_code == 200, newer.text
    assert newer.json()["applied"] is True and newer.json()["attempt_no"] == 2
    late = log(
        api,
        t1,
        call(
            lead["lead_id"],
            called_at=iso(base),
            lead_status="Interested",
            follow_up_at=(desk_today() + timedelta(days=5)).isoformat(),
            remark="call later",
        ),
    )
    assert late.status_code == 200, late.text
    answer = late.json()
    assert answer["outcome"] == "logged" and answer["applied"] is False and answer["attempt_no"] == 3
    state = answer["lead"]
    assert (state["lead_status"], state["final_status"], state["follow_up_date"]) == ("Booked", "Won", None)
    assert state["won_at"] is not None and state["call_count"] == 3
    assert state["cre_name"] == "Asha Reddy"  # a call by another CRE does not change the owner

    detail = api.rpc("lead_detail", t1, lead_id=lead["lead_id"]).json()
    calls = [(c["attempt_no"], c["lead_status"], c["applied"], c["cre_name"]) for c in detail["calls"]]
    assert calls == [(1, "Call me Back", True, "Asha Reddy"), (2, "Booked", True, "Imran Khan"),
                     (3, "Interested", False, "Asha Reddy")]  # fmt: skip
    assert detail["lead"]["remark"] == "booked the 450X"


def test_a_lost_lead_can_be_reopened_and_ties_go_to_the_later_received(api: Api, clean_db):
    t1 = api.token(CRE1)
    lead = create(api, t1, 2)
    at = iso(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10))
    lost = log(
        api,
        t1,
        call(lead["lead_id"], called_at=at, lead_status="Lost to Competition", final_status="Lost", follow_up_at=None),
    ).json()
    assert lost["lead"]["final_status"] == "Lost" and lost["lead"]["lost_at"] is not None
    same_time = log(api, t1, call(lead["lead_id"], called_at=at, lead_status="Interested")).json()
    assert same_time["applied"] is True
    assert same_time["lead"]["final_status"] == "Pending" and same_time["lead"]["lost_at"] is None


def test_a_call_in_the_future_is_clamped_to_the_servers_now(api: Api, clean_db):
    t1 = api.token(CRE1)
    lead = create(api, t1, 3)
    ahead = log(api, t1, call(lead["lead_id"], called_at=iso(datetime.now(UTC) + timedelta(hours=2)))).json()
    assert ahead["applied"] is True
    row = clean_db.execute("select called_at <= now() from call_attempts where attempt = 2").fetchone()
    assert row == (True,)  # stored as the server's now, not two hours ahead
    # So the next real call wins; unclamped, a desk two hours fast would freeze the lead's state for two hours.
    nxt = log(api, t1, call(lead["lead_id"], lead_status="Booked", final_status="Won", follow_up_at=None)).json()
    assert nxt["applied"] is True and nxt["lead"]["lead_status"] == "Booked"


def test_a_call_by_lead_ref_on_a_lead_created_offline(api: Api, clean_db):
    t1 = api.token(CRE1)
    create_payload = new_lead(phone_for(4), lead_status="RNR", follow_up_date=None)
    # The desk's drain: the create first, then the call that names it by the create's client_ref.
    created = api.rpc("create_lead", t1, lead=create_payload).json()
    r = log(api, t1, call(lead_ref=create_payload["client_ref"], lead_status="Interested"))
    assert r.status_code == 200, r.text
    assert r.json()["lead_id"] == created["lead_id"] and r.json()["attempt_no"] == 2
    unknown = log(api, t1, call(lead_ref=str(uuid.uuid4())))
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_lead"
    both = log(api, t1, call(created["lead_id"], lead_ref=create_payload["client_ref"]))
    assert both.status_code == 422 and both.json()["code"] == "lead_required"
    assert clean_db.execute("select count(*) from call_attempts").fetchone() == (2,)


def test_log_call_replay_returns_the_first_answer_and_a_changed_payload_is_refused(api: Api, clean_db):
    t1 = api.token(CRE1)
    lead = create(api, t1, 5)
    payload = call(lead["lead_id"])
    first = log(api, t1, payload).json()
    again = log(api, t1, payload).json()
    assert again["replayed"] is True and {**again, "replayed": False} == first
    changed = log(api, t1, {**payload, "remark": "something else"})
    assert changed.status_code == 409 and changed.json()["code"] == "client_ref_reused"
    other_user = log(api, api.token(CRE2), payload)
    assert other_user.status_code == 409
    assert clean_db.execute("select count(*) from call_attempts").fetchone() == (2,)


@pytest.mark.parametrize(
    ("overrides", "code", "status"),
    [
        ({"lead_status": None}, "status_required", 422),
        ({"lead_status": "Booked "}, None, 200),  # trimmed, then a catalogue status (later-call statuses included)
        ({"lead_status": "Lost to Codealer"}, "unknown_status", 422),
        ({"called_at": None}, "called_at_required", 422),
        ({"called_at": "yesterday"}, "invalid_called_at", 422),
        ({"called_at": "2026-02-30T10:00:00+05:30"}, "invalid_called_at", 422),
        ({"follow_up_at": None}, "follow_up_required", 422),
        ({"follow_up_at": "2026-13-01"}, "invalid_date", 422),
        ({"follow_up_at": "next week"}, "invalid_date", 422),
        ({"final_status": "Done"}, "unknown_final_status", 422),
        ({"ps_email": "nobody@demo.local"}, "unknown_ps", 422),
        ({"ps_email": "ps2@demo.local"}, "ps_not_in_branch", 422),
        ({"lead_id": "12"}, "invalid_type", 422),
        ({"lead_id": 999999999}, "unknown_lead", 404),
        ({"owner": "me"}, "unknown_field", 422),
        ({"client_ref": "not-a-uuid"}, "invalid_client_ref", 422),
    ],
)
def test_log_call_validation(api: Api, clean_db, overrides: dict[str, Any], code: str | None, status: int):
    t1 = api.token(CRE1)
    lead = create(api, t1, 6)
    r = log(api, t1, {**call(lead["lead_id"]), **overrides})
    assert r.status_code == status, r.text
    if code:
        assert r.json()["code"] == code


def test_a_follow_up_with_a_time_of_day_and_a_ps_hand_off(api: Api, clean_db):
    t1 = api.token(CRE1)
    lead = create(api, t1, 7)
    when = f"{(desk_today() + timedelta(days=1)).isoformat()}T16:00"
    r = log(api, t1, call(lead["lead_id"], follow_up_at=when, ps_email="ps1@demo.local", test_drive_done=True))
    assert r.status_code == 200, r.text
    state = r.json()["lead"]
    assert state["follow_up_date"] == (desk_today() + timedelta(days=1)).isoformat()
    at = datetime.fromisoformat(state["follow_up_at"])
    assert (at.astimezone(UTC) + IST).hour == 16  # 4 pm at the desk
    assert state["ps_name"] == "Ravi Teja" and state["test_drive_done"] is True
    mail = clean_db.execute("select to_email from email_outbox").fetchall()
    assert mail == [("ps1@demo.local",)]
    detail = api.rpc("lead_detail", t1, lead_id=lead["lead_id"]).json()
    assert [(h["ps_name"], h["by_name"]) for h in detail["ps_handoffs"]] == [("Ravi Teja", "Asha Reddy")]


def test_fifty_concurrent_calls_on_one_lead_are_numbered_without_gaps(server, clean_db):
    api = Api(server)
    try:
        token = api.token(CRE1)
        lead = create(api, token, 8)
        base = datetime.now(UTC) - timedelta(minutes=30)
        payloads = [call(lead["lead_id"], called_at=iso(base + timedelta(seconds=i)), remark=f"call {i}")
                    for i in range(50)]  # fmt: skip
    finally:
        api.close()

    def send(p: dict[str, Any]) -> dict[str, Any]:
        client = Api(server)
        try:
            r = log(client, token, p)
            assert r.status_code == 200, r.text
            return dict(r.json())
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(send, payloads))
    assert sorted(a["attempt_no"] for a in answers) == list(range(2, 52))
    rows = clean_db.execute("select attempt from call_attempts order by attempt").fetchall()
    assert [r[0] for r in rows] == list(range(1, 52))
    state = clean_db.execute("select remark, call_count from leads").fetchone()
    assert state == ("call 49", 51)  # the state of the latest called_at, whatever order they committed in


def test_create_lead_on_a_known_number_with_a_status_follows_the_state_rule(api: Api, clean_db):
    t1, t2 = api.token(CRE1), api.token(CRE2)
    lead = create(api, t1, 9)
    r = api.rpc(
        "create_lead",
        t2,
        lead=new_lead(
            phone_for(9),
            source="META",
            sub_source="Meta Know",
            lead_status="Booked",
            final_status="Won",
            follow_up_date=None,
        ),
    )
    answer = r.json()
    assert answer["outcome"] == "added_source" and answer["applied"] is True and answer["attempt_no"] == 2
    assert (answer["lead"]["lead_status"], answer["lead"]["final_status"]) == ("Booked", "Won")
    old = datetime.now(UTC) - timedelta(hours=3)
    r = api.rpc(
        "create_lead",
        t1,
        lead=new_lead(
            phone_for(9),
            source="BTL",
            sub_source="BTL Know",
            lead_status="RNR",
            follow_up_date=None,
            called_at=iso(old),
        ),
    )
    late = r.json()
    assert late["applied"] is False and late["lead"]["lead_status"] == "Booked"
    # The BTL call came first in time, so BTL is now the original source even though it arrived last.
    assert [s["source"] for s in late["lead"]["sources"]] == ["BTL", "GOOGLE", "META"]
    assert clean_db.execute("select source from leads where id = %s", (lead["lead_id"],)).fetchone() == ("BTL",)


def test_two_offline_sources_arriving_in_the_wrong_order_credit_the_first(api: Api, clean_db):
    t1, t2 = api.token(CRE1), api.token(CRE2)
    first_at = datetime.now(UTC) - timedelta(minutes=20)
    # Desk 2's Meta caller (10:20) reaches the server before desk 1's Web caller from 10:00.
    api.rpc(
        "create_lead",
        t2,
        lead=new_lead(
            phone_for(10), source="META", sub_source="Meta Know", called_at=iso(first_at + timedelta(minutes=20))
        ),
    )
    r = api.rpc(
        "create_lead", t1, lead=new_lead(phone_for(10), source="OEM", sub_source="Web", called_at=iso(first_at))
    )
    assert r.json()["outcome"] == "added_source"
    assert r.json()["lead"]["sources"][0]["sub_source"] == "Web"


def test_reassignment_by_a_team_lead_reaches_the_feed_and_the_history(api: Api, clean_db):
    t1, tl = api.token(CRE1), api.token(LEAD)
    ids = [create(api, t1, 20 + i)["lead_id"] for i in range(3)]
    before = {row["lead_id"]: row["change_id"] for row in feed(api, t1)}
    r = api.rpc("assign_leads", tl, lead_ids=[*ids[:2], 987654321], cre_email=CRE2)
    assert r.status_code == 200, r.text
    assert r.json() == {"assigned": 2, "unchanged": 0, "missing": 1}
    again = api.rpc("assign_leads", tl, lead_ids=ids[:2], cre_email=CRE2).json()
    assert again == {"assigned": 0, "unchanged": 2, "missing": 0}
    rows = {row["lead_id"]: row for row in feed(api, t1)}
    cre2_id = clean_db.execute("select id::text from profiles where email = %s", (CRE2,)).fetchone()[0]
    assert [rows[i]["cre_id"] for i in ids] == [cre2_id, cre2_id, rows[ids[2]]["cre_id"]]
    assert rows[ids[0]]["change_id"] > max(before.values())  # moved leads re-entered the feed
    assert rows[ids[0]]["cre_name"] == "Imran Khan"
    detail = api.rpc("lead_detail", t1, lead_id=ids[0]).json()
    assert [(o["from_name"], o["to_name"], o["by_name"]) for o in detail["owner_changes"]] == [
        ("Asha Reddy", "Imran Khan", "Priya Sharma")]  # fmt: skip
    by_cre = api.rpc("assign_leads", t1, lead_ids=ids, cre_email=CRE3)
    assert by_cre.status_code == 403 and by_cre.json()["code"] == "not_allowed"
    to_ps = api.rpc("assign_leads", tl, lead_ids=ids, cre_email="ps1@demo.local")
    assert to_ps.status_code == 422 and to_ps.json()["code"] == "unknown_cre"


def import_batch(rows: list[Any] | None = None, **overrides: Any) -> dict[str, Any]:
    batch: dict[str, Any] = {"client_ref": str(uuid.uuid4()), "source": "META", "sub_source": "Meta Know",
                             "branch": "KOMPALLY", "assign_to": None, "rows": rows}  # fmt: skip
    batch.update(overrides)
    return batch


def test_import_of_a_thousand_rows_with_every_kind_of_bad_row(api: Api, clean_db):
    t1, tl = api.token(CRE1), api.token(LEAD)
    create(api, t1, 100)  # GOOGLE: an import row with this number adds META
    create(api, t1, 101, source="META", sub_source="Meta Know")  # already META: exact duplicate
    rows: list[Any] = []
    for i in range(1000):
        rows.append({"customer_name": f"Campaign Lead {i}", "phone": phone_for(100 + i),
                     "received_at": "2026-11-29T09:30:00+05:30"})  # fmt: skip
    rows[2] = {"customer_name": "Dup In File", "phone": phone_for(103)}  # same number as row 3, earlier
    rows[10] = {"customer_name": "Bad Phone", "phone": "+9112345"}
    rows[11] = {"customer_name": "\u200b", "phone": phone_for(1111)}
    rows[12] = {"customer_name": "Junk", "phone": 9876543210}
    rows[13] = ["not", "a", "row"]
    rows[14] = {"customer_name": "Extra", "phone": phone_for(1114), "salary": "high"}
    rows[15] = {"customer_name": "Bad Model", "phone": phone_for(1115), "model_interested": "Bicycle"}
    rows[16] = {"customer_name": "Bad Date", "phone": phone_for(1116), "received_at": "2026-02-30"}
    rows[17] = {"customer_name": "Line\nBreak", "phone": phone_for(1117)}
    batch = import_batch(rows)
    r = api.rpc("import_leads", tl, batch=batch)
    assert r.status_code == 200, r.text
    answer = r.json()
    rejected = {x["row"]: x["code"] for x in answer["rejected"]}
    assert rejected == {10: "invalid_phone", 11: "invalid_name", 12: "invalid_type", 13: "invalid_row",
                        14: "unknown_field", 15: "unknown_model", 16: "invalid_row"}  # fmt: skip
    # 993 good rows: row 0 adds META to a known lead, row 1 is an exact duplicate, row 3 repeats row 2's number.
    assert (answer["created"], answer["added_source"], answer["exact_duplicate"]) == (990, 1, 2)
    assert clean_db.execute("select count(*) from leads").fetchone() == (992,)
    assert clean_db.execute("select customer_name from leads where phone = %s", (phone_for(1117),)).fetchone() == (
        "Line Break",)  # fmt: skip
    # Round robin over the three active CREs, no call yet: everyone's "fresh" leads.
    owners = clean_db.execute(
        "select p.email, count(*) from leads l join profiles p on p.id = l.cre_id"
        " where l.call_count = 0 and l.source = 'META' group by 1 order by 1"
    ).fetchall()
    assert owners == [(CRE1, 330), (CRE2, 330), (CRE3, 330)]
    replay = api.rpc("import_leads", tl, batch=batch).json()
    assert replay["replayed"] is True and {**replay, "replayed": False} == answer
    assert clean_db.execute("select count(*) from leads").fetchone() == (992,)
    as_cre = api.rpc("import_leads", t1, batch=import_batch(rows[:5]))
    assert as_cre.status_code == 403


def test_import_to_chosen_cres_and_batch_level_errors(api: Api, clean_db):
    tl = api.token(LEAD)
    rows = [{"customer_name": f"Lead {i}", "phone": phone_for(300 + i)} for i in range(4)]
    r = api.rpc("import_leads", tl, batch=import_batch(rows, assign_to=[CRE2, CRE3]))
    assert r.json()["created"] == 4
    owners = clean_db.execute(
        "select p.email from leads l join profiles p on p.id = l.cre_id order by l.phone").fetchall()  # fmt: skip
    assert [o[0] for o in owners] == [CRE2, CRE3, CRE2, CRE3]
    for overrides, code in [
        ({"assign_to": ["ps1@demo.local"]}, "unknown_cre"),
        ({"assign_to": []}, "invalid_type"),
        ({"sub_source": "Google Know"}, "unknown_sub_source"),
        ({"rows": []}, "empty_batch"),
        ({"rows": [rows[0]] * 1001}, "batch_too_large"),
        ({"extra": 1}, "unknown_field"),
    ]:
        bad = api.rpc("import_leads", tl, batch=import_batch(**{"rows": rows, **overrides}))
        assert bad.status_code == 422 and bad.json()["code"] == code, (overrides, bad.text)
    assert clean_db.execute("select count(*) from leads").fetchone() == (4,)


def test_the_feed_carries_the_worklist_columns(api: Api, clean_db):
    t1 = api.token(CRE1)
    lead = create(api, t1, 30, lead_category="Warm")
    when = f"{(desk_today() + timedelta(days=2)).isoformat()}T11:30:00+05:30"
    log(api, t1, call(lead["lead_id"], follow_up_at=when, ps_email="ps1@demo.local"))
    row = feed(api, t1)[0]
    me = api.rpc("my_profile", t1).json()
    assert row["cre_id"] == me["id"] and row["call_count"] == 2 and row["lead_category"] == "Warm"
    assert row["follow_up_at"] is not None and row["last_call_at"] is not None and row["ps_email"] == "ps1@demo.local"
    for key in ("won_at", "lost_at", "updated_at", "test_drive_done", "model_interested", "follow_up_date"):
        assert key in row


def overdue(api: Api, token: str) -> tuple[int, int]:
    today = desk_today()
    s = api.rpc("dashboard_summary", token, date_from=today.isoformat(), date_to=today.isoformat()).json()
    return s["follow_ups"]["overdue"], s["totals"]["calls"]


def test_the_dashboard_overdue_count_follows_the_calls(api: Api, clean_db):
    t1, tl = api.token(CRE1), api.token(LEAD)
    ids = [create(api, t1, 40 + i)["lead_id"] for i in range(3)]
    # Make their follow-ups three days ago, as if they had been created then (and fix the dashboard's counts).
    past = desk_today() - timedelta(days=3)
    clean_db.execute("update leads set follow_up_date = %s where true", (past,))
    clean_db.execute("delete from stats_follow_up_cre where true")
    clean_db.execute("delete from stats_follow_up_events where true")
    clean_db.execute(
        "insert into stats_follow_up_cre (day, branch, cre_id, leads)"
        " select follow_up_date, coalesce(branch, ''), cre_id, count(*) from leads group by 1, 2, 3"
    )
    assert overdue(api, tl) == (3, 3)  # overdue whatever the range: the range is only today
    log(api, t1, call(ids[0]))  # moved forward
    log(api, t1, call(ids[1], lead_status="Booked", final_status="Won", follow_up_at=None))  # closed
    assert overdue(api, tl) == (1, 5)
    api.rpc("assign_leads", tl, lead_ids=[ids[2]], cre_email=CRE2)
    s = api.rpc("dashboard_summary", tl, date_from=desk_today().isoformat(), date_to=desk_today().isoformat()).json()
    per_cre = {c["cre_name"]: c for c in s["per_cre"]}
    assert per_cre["Imran Khan"]["overdue"] == 1 and per_cre["Asha Reddy"]["overdue"] == 0
    assert per_cre["Asha Reddy"]["calls"] == 5 and per_cre["Asha Reddy"]["won_calls"] == 1
    assert s["per_day"][-1]["calls"] == 5 and s["per_day"][-1]["leads"] == 3


def test_names_and_text_are_cleaned_and_the_last_admin_stays(api: Api, clean_db):
    t1 = api.token(CRE1)
    for name, code in [("\u200b", "invalid_name"), (" \u200d\ufeff ", "invalid_name"), ("...", "invalid_name")]:
        r = api.rpc("create_lead", t1, lead=new_lead(phone_for(50), customer_name=name))
        assert r.status_code == 422 and r.json()["code"] == code, name
    ok = create(api, t1, 51, customer_name="Sita\r\nDevi\u2028 Rao", remark="line one\nline two")
    assert ok["lead"]["customer_name"] == "Sita Devi Rao"
    for name in ("సీత", "सीता", "O'Brien-Smith"):
        assert (
            api.rpc(
                "create_lead", t1, lead=new_lead(phone_for(52), customer_name=name, client_ref=str(uuid.uuid4()))
            ).status_code
            == 200
        )
    admin = api.token(ADMIN)
    r = api.rpc("admin_set_profile", admin, email=ADMIN, role="cre")
    assert r.status_code == 409 and r.json()["code"] == "last_admin"
    r = api.rpc("admin_set_profile", admin, email=ADMIN, role="admin", active=False)
    assert r.status_code == 409


def test_lead_detail_is_for_desk_roles_and_knows_unknown_leads(api: Api, clean_db):
    t1 = api.token(CRE1)
    lead = create(api, t1, 60)
    ps = api.rpc("lead_detail", api.token("ps1@demo.local"), lead_id=lead["lead_id"])
    assert ps.status_code == 403
    missing = api.rpc("lead_detail", t1, lead_id=123456789)
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_lead"
    detail = api.rpc("lead_detail", t1, lead_id=lead["lead_id"]).json()
    assert [s["source"] for s in detail["sources"]] == ["GOOGLE"] and detail["owner_changes"] == []
    assert detail["lead"]["remark"] == "asked for a test ride"


def test_catalog_lists_the_active_cres(api: Api):
    cat = api.rpc("catalog", api.token(LEAD)).json()
    assert [(c["name"], c["email"]) for c in cat["cres"]] == [
        ("Asha Reddy", CRE1), ("Imran Khan", CRE2), ("Lakshmi Narayan", CRE3)]  # fmt: skip


# Any JSON the client could send (lone surrogates cannot be encoded by httpx: the server's own tests cover them).
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=12,
)
_call_keys = st.sampled_from(
    [
        "client_ref",
        "lead_id",
        "lead_ref",
        "called_at",
        "lead_status",
        "final_status",
        "follow_up_at",
        "remark",
        "ps_email",
        "branch",
        "test_drive_done",
        "lead_category",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.dictionaries(_call_keys, _json, max_size=8), rows=st.lists(_json, max_size=5))
def test_odd_payloads_get_a_4xx_or_a_200_never_a_500(
    api: Api, clean_db: psycopg.Connection[Any], tokens: dict[str, str], payload: dict[str, Any], rows: list[Any]
):
    for name, token, args in [
        ("log_call", tokens[CRE1], {"call": payload}),
        ("import_leads", tokens[LEAD], {"batch": import_batch(rows)}),
        ("import_leads", tokens[LEAD], {"batch": {"client_ref": str(uuid.uuid4()), **payload}}),
    ]:
        r = api.rpc(name, token, **args)
        assert r.status_code == 200 or 400 <= r.status_code < 500, r.text
        if r.status_code == 200:
            assert set(r.json()) >= ({"outcome", "applied"} if name == "log_call" else {"created", "rejected"})
        else:
            assert set(r.json()) == {"code", "message", "details", "hint"}


@pytest.fixture
def tokens(api: Api) -> dict[str, str]:
    """One sign-in per user for a test that makes many calls (sign-in is rate-limited)."""
    return {email: api.token(email) for email in (CRE1, LEAD)}
