"""create_lead's outcomes and errors, idempotency, access rules and the HTTP error surface, against the real server."""

from __future__ import annotations

import time
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serverproc import Api, new_lead, phone_for

CRE1, CRE2, LEAD, ADMIN, PS1 = (
    "cre1@demo.local",
    "cre2@demo.local",
    "lead@demo.local",
    "admin@demo.local",
    "ps1@demo.local",
)


def count(db: psycopg.Connection[Any], table: str) -> int:
    row = db.execute(f"select count(*) from {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_created_writes_lead_source_attempt_followup_and_mail_in_one_go(api: Api, clean_db: psycopg.Connection[Any]):
    token = api.token(CRE1)
    lead = new_lead(phone_for(1), ps_email=PS1, customer_name="  Sita Devi  ")
    r = api.rpc("create_lead", token, lead=lead)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["outcome"] == "created" and answer["replayed"] is False
    assert answer["uid"].startswith("GA-0001-")
    summary = answer["lead"]
    assert summary["customer_name"] == "Sita Devi"
    assert summary["cre_name"] == "Asha Reddy" and summary["ps_name"] == "Ravi Teja"
    assert [s["source"] for s in summary["sources"]] == ["GOOGLE"]
    row = clean_db.execute(
        "select l.uid, l.cre_id = p.id, l.first_call_date is not null, l.ps_assigned_at is not null"
        " from leads l join profiles p on p.email = %s",
        (CRE1,),
    ).fetchone()
    assert row == (answer["uid"], True, True, True)
    assert count(clean_db, "lead_sources") == 1
    assert count(clean_db, "call_attempts") == 1
    assert count(clean_db, "ps_followups") == 1
    mail = clean_db.execute("select to_email, subject from email_outbox").fetchone()
    assert mail is not None and mail[0] == PS1 and answer["uid"] in mail[1]


def test_cre_comes_from_the_token_not_the_payload(api: Api, clean_db: psycopg.Connection[Any]):
    r = api.rpc("create_lead", api.token(CRE2), lead=new_lead(phone_for(2)))
    assert r.json()["lead"]["cre_name"] == "Imran Khan"
    r = api.rpc("create_lead", api.token(CRE2), lead={**new_lead(phone_for(3)), "cre_id": "someone-else"})
    assert r.status_code == 422 and r.json()["code"] == "unknown_field"


def test_added_source_then_exact_duplicate(api: Api, clean_db: psycopg.Connection[Any]):
    token = api.token(CRE1)
    first = api.rpc("create_lead", token, lead=new_lead(phone_for(4))).json()
    r = api.rpc(
        "create_lead",
        api.token(CRE2),
        lead=new_lead(phone_for(4), source="META", sub_source="Meta Know", customer_name="Other Name"),
    )
    added = r.json()
    assert added["outcome"] == "added_source"
    assert added["uid"] == first["uid"] and added["lead_id"] == first["lead_id"]
    assert added["lead"]["customer_name"] == "Ravi Kumar"  # the existing lead is kept as it was
    assert [(s["source"], s["sub_source"]) for s in added["lead"]["sources"]] == [
        ("GOOGLE", "Google Know"), ("META", "Meta Know")]  # fmt: skip
    again = api.rpc("create_lead", token, lead=new_lead(phone_for(4), source="META", sub_source="Meta Know")).json()
    assert again["outcome"] == "exact_duplicate" and again["uid"] == first["uid"]
    assert count(clean_db, "leads") == 1
    assert count(clean_db, "lead_sources") == 2
    # Every call with a status is a call attempt on the one lead, numbered in order.
    attempts = clean_db.execute("select attempt from call_attempts order by attempt").fetchall()
    assert [a[0] for a in attempts] == [1, 2, 3]


def test_exact_duplicate_without_status_stores_nothing(api: Api, clean_db: psycopg.Connection[Any]):
    token = api.token(CRE1)
    api.rpc("create_lead", token, lead=new_lead(phone_for(5)))
    before = {t: count(clean_db, t) for t in ("leads", "lead_sources", "call_attempts", "email_outbox")}
    r = api.rpc("create_lead", token, lead=new_lead(phone_for(5), lead_status=None, ps_email=PS1))
    assert r.json()["outcome"] == "exact_duplicate"
    assert {t: count(clean_db, t) for t in before} == before


def test_replay_returns_first_answer_and_mismatch_is_refused(api: Api, clean_db: psycopg.Connection[Any]):
    token = api.token(CRE1)
    lead = new_lead(phone_for(6))
    first = api.rpc("create_lead", token, lead=lead).json()
    replay = api.rpc("create_lead", token, lead=lead).json()
    assert replay == {**first, "replayed": True}
    changed = api.rpc("create_lead", token, lead={**lead, "customer_name": "Someone Else"})
    assert changed.status_code == 409 and changed.json()["code"] == "client_ref_reused"
    other_user = api.rpc("create_lead", api.token(CRE2), lead=lead)
    assert other_user.status_code == 409
    assert count(clean_db, "leads") == 1 and count(clean_db, "call_attempts") == 1


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"customer_name": "   "}, "name_required", "customer_name"),
        ({"customer_name": "x" * 121}, "too_long", "customer_name"),
        ({"phone": None}, "phone_required", "phone"),
        ({"phone": "9876543210"}, "invalid_phone", "phone"),
        ({"phone": "+915876543210"}, "invalid_phone", "phone"),
        ({"phone": "+9198765432100"}, "invalid_phone", "phone"),
        ({"phone": 919876543210}, "invalid_type", "phone"),
        ({"source": None}, "source_required", "source"),
        ({"source": "Google"}, "unknown_source", "source"),
        ({"sub_source": "Meta Know"}, "unknown_sub_source", "sub_source"),
        ({"sub_source": None}, "sub_source_required", "sub_source"),
        ({"lead_status": "Lost to Codealer"}, "unknown_status", "lead_status"),
        ({"lead_category": "Not Interested"}, "unknown_category", "lead_category"),
        ({"model_interested": "450X"}, "unknown_model", "model_interested"),
        ({"branch": "HITEC CITY"}, "unknown_branch", "branch"),
        ({"ps_email": "nobody@demo.local"}, "unknown_ps", "ps_email"),
        ({"ps_email": "cre2@demo.local"}, "unknown_ps", "ps_email"),
        ({"ps_email": "ps2@demo.local"}, "ps_not_in_branch", "ps_email"),
        ({"final_status": "Closed"}, "unknown_final_status", "final_status"),
        ({"follow_up_date": "31/12/2026"}, "invalid_date", "follow_up_date"),
        ({"follow_up_date": "2026-02-30"}, "invalid_date", "follow_up_date"),
        ({"follow_up_date": "2099-01-01"}, "follow_up_out_of_range", "follow_up_date"),
        ({"follow_up_date": None}, "follow_up_required", "follow_up_date"),
        ({"remark": "r" * 2001}, "too_long", "remark"),
        ({"test_drive_done": "yes"}, "invalid_type", "test_drive_done"),
        ({"client_ref": "not-a-uuid"}, "invalid_client_ref", "client_ref"),
        ({"client_ref": None}, "invalid_client_ref", "client_ref"),
    ],
)
def test_validation_errors_are_422_with_a_stable_code(api, clean_db, overrides, code, field):
    r = api.rpc("create_lead", api.token(CRE1), lead={**new_lead(phone_for(7)), **overrides})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == code and body["details"] == field
    assert body["message"] and set(body) == {"code", "message", "details", "hint"}
    assert count(clean_db, "leads") == 0 and count(clean_db, "lead_requests") == 0


def test_rules_that_allow_a_missing_follow_up(api: Api, clean_db: psycopg.Connection[Any]):
    token = api.token(CRE1)
    rnr = api.rpc("create_lead", token, lead=new_lead(phone_for(8), lead_status="RNR", follow_up_date=None))
    won = api.rpc("create_lead", token, lead=new_lead(phone_for(9), final_status="Won", follow_up_date=None))
    assert rnr.json()["outcome"] == won.json()["outcome"] == "created"
    # RNR / Call me Back: no first-call date.
    rows = clean_db.execute("select phone, first_call_date is null from leads order by phone").fetchall()
    assert rows == [(phone_for(8), True), (phone_for(9), False)]


def test_ps_sets_the_branch_when_none_given(api: Api, clean_db: psycopg.Connection[Any]):
    r = api.rpc("create_lead", api.token(CRE1), lead=new_lead(phone_for(10), branch=None, ps_email="PS2@demo.local"))
    assert r.json()["lead"]["branch"] == "ATTAPUR"


def test_uids_are_distinct_readable_and_need_no_probe(api: Api, clean_db: psycopg.Connection[Any]):
    token = api.token(CRE1)
    uids = [
        api.rpc("create_lead", token, lead=new_lead(phone_for(100 + i), source="OEM", sub_source="Tele")).json()["uid"]
        for i in range(5)
    ]
    assert len(set(uids)) == 5
    assert all(u.startswith("TA-") and len(u) == len("TA-0100-0000") for u in uids)
    assert [u[-4:] for u in uids] == ["0000", "0001", "0002", "0003", "0004"]


def test_catalog_and_profile(api: Api):
    token = api.token(CRE1)
    cat = api.rpc("catalog", token).json()
    assert "SOMAJIGUDA" in cat["branches"]
    oem = next(s for s in cat["sources"] if s["code"] == "OEM")
    assert "Affiliate 91 Wheels" in oem["sub_sources"]
    assert {"email": PS1, "name": "Ravi Teja", "branch": "SOMAJIGUDA"} in cat["ps"]
    assert any(s["name"] == "Lost to Co Dealer" and s["first_call"] for s in cat["lead_statuses"])
    me = api.rpc("my_profile", token).json()
    assert me["role"] == "cre" and me["email"] == CRE1


def desk_today() -> date:
    """The server counts days in the desk's time zone, not the test machine's."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Asia/Kolkata")).date()


def test_dashboard_is_for_team_leads_only(api: Api, clean_db: psycopg.Connection[Any]):
    today = desk_today().isoformat()
    cre_token = api.token(CRE1)
    api.rpc("create_lead", cre_token, lead=new_lead(phone_for(11)))
    api.rpc("create_lead", cre_token, lead=new_lead(phone_for(11), source="BTL", sub_source="BTL Know"))
    r = api.rpc("dashboard_summary", cre_token, date_from=today, date_to=today)
    assert r.status_code == 403 and r.json()["code"] == "not_allowed"
    r = api.rpc("dashboard_summary", api.token(LEAD), date_from=today, date_to=today)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totals"]["leads"] == 1 and body["totals"]["added_sources"] == 1
    assert body["totals"]["duplicate_rate"] == 0.5
    assert body["per_cre"][0]["cre_name"] == "Asha Reddy"
    assert sum(h["leads"] for h in body["per_hour"]) == 1 and len(body["per_hour"]) == 24
    assert body["follow_ups"]["due_today"] == 0
    # A pending lead whose follow-up is today is due today; one dated yesterday is overdue.
    yesterday = (desk_today() - timedelta(days=1)).isoformat()
    api.rpc("create_lead", cre_token, lead=new_lead(phone_for(14), follow_up_date=today))
    api.rpc("create_lead", cre_token, lead=new_lead(phone_for(15), follow_up_date=yesterday))
    api.rpc("create_lead", cre_token, lead=new_lead(phone_for(16), follow_up_date=yesterday, final_status="Won"))
    follow = api.rpc("dashboard_summary", api.token(LEAD), date_from=yesterday, date_to=today).json()["follow_ups"]
    assert follow == {"due_today": 1, "overdue": 1}
    bad = api.rpc("dashboard_summary", api.token(LEAD), date_from=today, date_to="2020-01-01")
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_range"


def test_admin_functions_refuse_other_roles(api: Api):
    for email in (CRE1, LEAD):
        r = api.rpc("admin_set_profile", api.token(email), email=CRE2, role="admin")
        assert r.status_code == 403
    r = api.rpc("admin_set_profile", api.token(ADMIN), email=CRE2, role="cre", branch="ATTAPUR", active=True)
    assert r.status_code == 200 and r.json()["role"] == "cre"


def test_api_roles_cannot_touch_tables(server, db: psycopg.Connection[Any]):
    """Through the same login role the server uses, as `authenticated`: no table is readable or writable."""
    user_id = db.execute("select id from profiles where email = %s", (CRE1,)).fetchone()[0]
    conninfo = psycopg.conninfo.make_conninfo(server.database_url, user="authenticator")
    with psycopg.connect(conninfo) as conn:
        conn.execute("select set_config('role', 'authenticated', true)")
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)", (f'{{"sub": "{user_id}", "role": "authenticated"}}',)
        )
        for stmt in (
            "select * from leads",
            "insert into leads (uid) values ('x')",
            "select * from stats_cre",
            "select * from email_outbox",
            "select * from auth.users",
            "delete from lead_sources",
            "select public.uid_for('G', '+919876543210', 1)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(stmt)
        # Own profile only, through RLS.
        assert [r[0] for r in conn.execute("select email from profiles").fetchall()] == [CRE1]


def test_http_errors_have_the_postgrest_shape(api: Api, server):
    token = api.token(CRE1)
    shape = {"code", "message", "details", "hint"}
    no_token = httpx.post(server.url + "/rest/v1/rpc/catalog", json={})
    assert no_token.status_code == 401 and set(no_token.json()) == shape
    anon = api.rpc("catalog", None)  # apikey only: the anon role may execute nothing
    assert anon.status_code == 401 and set(anon.json()) == shape
    assert api.rpc("catalog", "forged.token.value").status_code == 401
    unknown = api.rpc("no_such_function", token)
    assert unknown.status_code == 404 and unknown.json()["code"] == "PGRST202"
    private = api.rpc("_fail", token, p_code="x", p_message="y")
    assert private.status_code == 404
    bad_json = api.http.post("/rest/v1/rpc/catalog", content=b"{not json", headers={"Authorization": f"Bearer {token}"})
    assert bad_json.status_code == 400 and bad_json.json()["code"] == "PGRST102"
    big = api.http.post(
        "/rest/v1/rpc/create_lead",
        content=b'{"lead": "' + b"x" * 4_200_000 + b'"}',
        headers={"Authorization": f"Bearer {token}"},
    )
    assert big.status_code == 413 and set(big.json()) == shape
    wrong_args = api.rpc("lead_changes", token, since="abc")
    assert wrong_args.status_code == 400 and wrong_args.json()["code"] == "22P02"
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}


def _secret(db: psycopg.Connection[Any]) -> str:
    return str(db.execute("select value from auth.server_secrets where name = 'jwt_secret'").fetchone()[0])


def test_expired_and_forged_tokens_are_401(api: Api, db: psycopg.Connection[Any]):
    claims = jwt.decode(api.token(CRE1), options={"verify_signature": False})
    expired = jwt.encode({**claims, "exp": int(time.time()) - 60}, _secret(db), algorithm="HS256")
    r = api.rpc("catalog", expired)
    assert r.status_code == 401 and r.json()["code"] == "PGRST303"
    forged = jwt.encode(
        {**claims, "exp": int(time.time()) + 600},
        "not-the-secret-but-long-enough-for-hs256-0123456789",
        algorithm="HS256",
    )
    assert api.rpc("catalog", forged).status_code == 401


def test_refresh_tokens_rotate_and_reuse_revokes_the_session(api: Api):
    session = api.login(CRE1)
    r1 = api.http.post(
        "/auth/v1/token", params={"grant_type": "refresh_token"}, json={"refresh_token": session["refresh_token"]}
    )
    assert r1.status_code == 200 and r1.json()["refresh_token"] != session["refresh_token"]
    assert api.rpc("my_profile", r1.json()["access_token"]).status_code == 200
    reuse = api.http.post(
        "/auth/v1/token", params={"grant_type": "refresh_token"}, json={"refresh_token": session["refresh_token"]}
    )
    assert reuse.status_code == 400 and reuse.json()["error_code"] == "refresh_token_already_used"
    # Reuse is treated as theft: the newer token of that session is dead too.
    after = api.http.post(
        "/auth/v1/token", params={"grant_type": "refresh_token"}, json={"refresh_token": r1.json()["refresh_token"]}
    )
    assert after.status_code == 400
    bad = api.http.post("/auth/v1/token", params={"grant_type": "password"}, json={"email": CRE1, "password": "wrong"})
    assert bad.status_code == 400 and bad.json()["error_code"] == "invalid_credentials"


def test_logout_revokes_the_refresh_token(api: Api):
    session = api.login(CRE2)
    r = api.http.post("/auth/v1/logout", headers={"Authorization": f"Bearer {session['access_token']}"})
    assert r.status_code == 204
    again = api.http.post(
        "/auth/v1/token", params={"grant_type": "refresh_token"}, json={"refresh_token": session["refresh_token"]}
    )
    assert again.status_code == 400


junk = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=300),
    st.sampled_from(["'; drop table leads; --", "Robert'); DELETE FROM leads;--", "\u202e\u0000x", "😀" * 50,
                     "a" * 5000, "+919876543210", "GOOGLE", "2026-13-45", "<script>"]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)  # fmt: skip
FIELDS = [
    "client_ref",
    "customer_name",
    "phone",
    "source",
    "sub_source",
    "lead_status",
    "lead_category",
    "model_interested",
    "branch",
    "ps_email",
    "final_status",
    "follow_up_date",
    "remark",
    "test_drive_done",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), junk, max_size=len(FIELDS)),
    st.builds(lambda f, v: {**new_lead("+919999999999"), f: v}, st.sampled_from(FIELDS), junk),
    junk,
))  # fmt: skip
def test_junk_payloads_get_a_4xx_and_leave_nothing(api: Api, clean_db: psycopg.Connection[Any], payload: Any):
    token = getattr(test_junk_payloads_get_a_4xx_and_leave_nothing, "_token", None) or api.token(CRE1)
    test_junk_payloads_get_a_4xx_and_leave_nothing._token = token  # type: ignore[attr-defined]
    before = {t: count(clean_db, t) for t in ("leads", "lead_requests", "lead_sources", "call_attempts")}
    r = api.rpc("create_lead", token, lead=payload)
    assert r.status_code < 500, r.text
    if r.status_code == 200:  # a junk value that happens to be valid (e.g. a null optional field)
        assert r.json()["outcome"] in ("created", "added_source", "exact_duplicate")
        return
    assert 400 <= r.status_code < 500
    body = r.json()
    assert set(body) == {"code", "message", "details", "hint"}
    assert {t: count(clean_db, t) for t in before} == before  # nothing partial


def test_payload_must_be_a_json_object_of_named_arguments(api: Api):
    token = api.token(CRE1)
    r = api.http.post("/rest/v1/rpc/create_lead", json=[1, 2], headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400
    r = api.rpc("create_lead", token, lead=new_lead(phone_for(12)), extra=1)
    assert r.status_code == 404 and r.json()["code"] == "PGRST202"
    r = api.rpc("create_lead", token)
    assert r.status_code == 404


def test_uuid_of_client_ref_is_case_insensitive_but_exact(api: Api, clean_db):
    token = api.token(CRE1)
    ref = str(uuid.uuid4())
    a = api.rpc("create_lead", token, lead=new_lead(phone_for(13), client_ref=ref)).json()
    b = api.rpc("create_lead", token, lead=new_lead(phone_for(13), client_ref=ref.upper()))
    # Same UUID, different spelling = different payload text: refused, never a second lead.
    assert b.status_code == 409 and a["outcome"] == "created"
