"""The official Supabase Python client (`supabase` on PyPI) against the reference server: sign in, refresh, get the
user, call every RPC, read errors. It validates GoTrue's user object and PostgREST's error bodies, so this is what
"the same HTTP surface as Supabase" means for a client nobody here wrote (before issue 11 it could not sign in)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError
from serverproc import Api, ServerProcess, new_lead, phone_for
from supabase import Client, ClientOptions, create_client
from supabase_auth.errors import AuthApiError

CRE1, LEAD, ADMIN = "cre1@demo.local", "lead@demo.local", "admin@demo.local"
# supabase 2.34 passes postgrest-py a timeout that postgrest-py itself deprecates: their warning, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:The 'timeout' parameter is deprecated:DeprecationWarning")


@pytest.fixture
def official(server: ServerProcess) -> Iterator[Any]:
    """Clients of the official library, each on an httpx client this test closes (sessions in memory only)."""
    https: list[httpx.Client] = []

    def make() -> Client:
        http = httpx.Client(timeout=30)
        https.append(http)
        options = ClientOptions(auto_refresh_token=False, persist_session=False, httpx_client=http)
        return create_client(server.url, server.anon_key, options=options)

    yield make
    for http in https:
        http.close()


@pytest.fixture
def connect(official: Any) -> Iterator[Any]:
    clients: list[Client] = []

    def make(email: str) -> Client:
        client = official()
        client.auth.sign_in_with_password({"email": email, "password": "demo1234"})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.auth.sign_out()


def _executable_rpcs(db: psycopg.Connection[Any]) -> set[str]:
    rows = db.execute(
        "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'public' and p.proname !~ '^_'"
        "   and has_function_privilege('authenticated', p.oid, 'execute')"
    ).fetchall()
    return {r[0] for r in rows}


def test_sign_in_refresh_and_get_user(official: Any):
    client = official()
    signed = client.auth.sign_in_with_password({"email": CRE1, "password": "demo1234"})
    assert signed.user is not None and signed.user.email == CRE1 and signed.session is not None
    assert signed.user.app_metadata["provider"] == "email" and signed.user.aud == "authenticated"
    refreshed = client.auth.refresh_session()
    assert refreshed.session is not None
    assert refreshed.session.refresh_token != signed.session.refresh_token
    me = client.auth.get_user()
    assert me is not None and me.user.id == signed.user.id
    # set_session, as an app restoring a saved session does, goes through GET /auth/v1/user.
    other = official()
    restored = other.auth.set_session(refreshed.session.access_token, refreshed.session.refresh_token)
    assert restored.user is not None and restored.user.email == CRE1
    client.auth.sign_out()
    with pytest.raises(AuthApiError) as wrong:
        client.auth.sign_in_with_password({"email": CRE1, "password": "wrong"})
    assert wrong.value.code == "invalid_credentials"


def test_every_rpc_and_its_errors(api: Api, clean_db: psycopg.Connection[Any], connect: Any):
    cre, lead, admin = connect(CRE1), connect(LEAD), connect(ADMIN)
    called: set[str] = set()

    def rpc(client: Client, name: str, params: dict[str, Any] | None = None) -> Any:
        called.add(name)
        return client.rpc(name, params or {}).execute().data

    assert "sources" in rpc(cre, "catalog")
    assert rpc(cre, "my_profile")["email"] == CRE1
    created = rpc(cre, "create_lead", {"lead": new_lead(phone_for(9_100), ps_email="ps1@demo.local")})
    assert created["outcome"] == "created"
    page = rpc(cre, "lead_changes", {"since": 0, "max_rows": 3})
    assert page["rows"] and "columns" in page
    compact = rpc(cre, "lead_feed", {"since": 0, "max_rows": 3})
    assert compact["encoding"] and compact["next_since"] == page["next_since"]
    # The desk's day (the server counts days in Asia/Kolkata): from 18:30 to midnight UTC it is already tomorrow there,
    # and a lead created now is not in a range that ends on the machine's date.
    today = datetime.now(ZoneInfo("Asia/Kolkata")).date()
    summary = rpc(lead, "dashboard_summary", {"date_from": (today - timedelta(days=7)).isoformat(),
                                               "date_to": today.isoformat()})  # fmt: skip
    assert summary["totals"]["leads"] >= 1
    role, branch = clean_db.execute("select role, branch from profiles where email = 'cre3@demo.local'").fetchone()
    rpc(admin, "admin_set_profile", {"email": "cre3@demo.local", "role": role, "branch": branch, "active": True})
    # Migration 005's lead life.
    called_at = datetime.now(UTC).isoformat(timespec="seconds")
    follow_up = (today + timedelta(days=3)).isoformat()
    logged = rpc(cre, "log_call", {"call": {"client_ref": str(uuid.uuid4()), "lead_id": created["lead_id"],
                                            "called_at": called_at, "lead_status": "Interested",
                                            "follow_up_at": follow_up}})  # fmt: skip
    assert logged["outcome"] == "logged" and logged["attempt_no"] == 2
    assert len(rpc(cre, "lead_detail", {"lead_id": created["lead_id"]})["calls"]) == 2
    moved = rpc(lead, "assign_leads", {"lead_ids": [created["lead_id"]], "cre_email": "cre2@demo.local"})
    assert moved == {"assigned": 1, "unchanged": 0, "missing": 0}
    batch = {"client_ref": str(uuid.uuid4()), "source": "META", "sub_source": "Meta Know", "assign_to": None,
             "rows": [{"customer_name": "Sita Devi", "phone": phone_for(9_101)}]}  # fmt: skip
    assert rpc(lead, "import_leads", {"batch": batch})["created"] == 1
    uncovered = _executable_rpcs(clean_db) - called
    assert not uncovered, f"add a call through the official client for {sorted(uncovered)}"

    # Errors come back as the client's APIError with PostgREST's fields.
    with pytest.raises(APIError) as bad_phone:
        cre.rpc("create_lead", {"lead": new_lead("12345")}).execute()
    assert bad_phone.value.code == "invalid_phone" and bad_phone.value.details == "phone"
    with pytest.raises(APIError) as not_allowed:
        cre.rpc("dashboard_summary", {"date_from": today.isoformat(), "date_to": today.isoformat()}).execute()
    assert not_allowed.value.code == "not_allowed"
    with pytest.raises(APIError) as unknown:
        cre.rpc("no_such_function", {}).execute()
    assert unknown.value.code == "PGRST202"
    with pytest.raises(APIError) as private:
        cre.schema("private").rpc("my_profile", {}).execute()
    assert private.value.code == "PGRST106"
