"""The reference server as hosted Supabase runs it, and against bad input, abuse and slow clients (issue 11).

Each test reproduces a finding of the Supabase audit or the red-team report against the real server: RPC sessions
as PostgREST opens them (READ ONLY for STABLE functions, the role's own statement_timeout), 406 for an unexposed
schema, 400 (never 500/503) for JSON PostgreSQL would refuse, GoTrue's user object, /user and logout scopes, the
refresh-token reuse interval, sign-in limits, JWT leeway, refresh-token pruning, and slow or idle connections."""

from __future__ import annotations

import concurrent.futures
import hashlib
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import jwt
import psutil
import psycopg
import pytest
from psycopg import sql
from serverproc import Api, ServerProcess

from crm_desktop.core.api import ApiClient
from server_contract import auth

CRE1, CRE2, LEAD = "cre1@demo.local", "cre2@demo.local", "lead@demo.local"
SHAPE = {"code", "message", "details", "hint"}

# What a function sees of its session: the transaction mode, the timeout, the role and the search path.
_PROBE_BODY = """
select json_build_object('read_only', current_setting('transaction_read_only'),
                         'timeout', current_setting('statement_timeout'),
                         'role', current_user, 'search_path', current_setting('search_path'))
"""
PROBES = {
    "hardening_probe_stable": f"create function public.hardening_probe_stable() returns json language sql stable "
    f"as $${_PROBE_BODY}$$",
    "hardening_probe_volatile": f"create function public.hardening_probe_volatile() returns json language sql volatile "
    f"as $${_PROBE_BODY}$$",
}


# Sign-in buckets that hardly refill during a test (1 per 2 minutes), so what they allow is exact.
PROBE_ARGS = ["--header-timeout", "1", "--sign-in-limits", "10/1200,30/3600"]


def _admin(server: ServerProcess) -> psycopg.Connection[Any]:
    return psycopg.connect(server.database_url, autocommit=True)


@pytest.fixture(scope="module")
def probe(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A second reference server on the session's database, started after two probe functions were created (the
    server reads the functions and role settings once, at start, like PostgREST's schema cache) and with limits of
    its own (rate limiter, connections), so tests that exhaust them leave the session's server alone."""
    with _admin(server) as conn:
        for name, ddl in PROBES.items():
            conn.execute(f"drop function if exists public.{name}()")
            conn.execute(ddl)
            conn.execute(f"grant execute on function public.{name}() to anon, authenticated")
    base = tmp_path_factory.mktemp("probe")
    proc = ServerProcess(data_dir=server.data_dir, log_path=base / "probe.log", extra_args=PROBE_ARGS)
    proc.start()
    yield proc
    proc.stop()
    with _admin(server) as conn:
        for name in PROBES:
            conn.execute(f"drop function if exists public.{name}()")


@pytest.fixture
def papi(probe: ServerProcess) -> Iterator[Api]:
    client = Api(probe)
    yield client
    client.close()


def _restart(proc: ServerProcess, *extra: str) -> None:
    proc.stop()
    proc.extra_args = list(extra)
    proc.start()


def _session_of(api_like: Api, name: str, token: str | None) -> dict[str, Any]:
    r = api_like.rpc(name, token)
    assert r.status_code == 200, r.text
    return dict(r.json())


# --- PostgREST's session rules -------------------------------------------------------------------------------------


def test_stable_functions_run_read_only_as_the_callers_role(papi: Api):
    api = papi
    token = api.token(CRE1)
    stable = _session_of(api, "hardening_probe_stable", token)
    volatile = _session_of(api, "hardening_probe_volatile", token)
    assert stable["read_only"] == "on" and volatile["read_only"] == "off"
    assert stable["role"] == volatile["role"] == "authenticated"
    assert stable["search_path"] == '"public", "extensions"'


def test_statement_timeout_is_the_impersonated_roles_setting(papi: Api, probe: ServerProcess, server: ServerProcess):
    assert _session_of(papi, "hardening_probe_volatile", papi.token(CRE1))["timeout"] == "8s"
    assert _session_of(papi, "hardening_probe_volatile", None)["timeout"] == "3s"  # anon
    # Taken from pg_db_role_setting, not a constant: a setting for this database wins over the all-databases one
    # (which the server's reference SQL sets at every start), as in PostgreSQL itself.
    with _admin(server) as conn:
        db = sql.Identifier(conn.info.dbname)
        conn.execute(sql.SQL("alter role anon in database {} set statement_timeout = '2500ms'").format(db))
    try:
        _restart(probe, *probe.extra_args)
        assert _session_of(papi, "hardening_probe_volatile", None)["timeout"] == "2500ms"
    finally:
        with _admin(server) as conn:
            conn.execute(sql.SQL("alter role anon in database {} reset statement_timeout").format(db))
        _restart(probe, *probe.extra_args)


def test_a_write_under_a_stable_function_is_refused_as_on_supabase(papi: Api, server: ServerProcess):
    """What the READ ONLY transaction is for: a STABLE function that reaches a write (through a volatile helper, which
    PostgreSQL's own non-volatile check does not see) fails here as it would on Supabase."""
    with _admin(server) as conn:
        conn.execute(
            "create function public.hardening_probe_write() returns json language sql volatile"
            " as $$ create temp table if not exists hardening_t (x int); select '{}'::json $$"
        )
        conn.execute(
            "create or replace function public.hardening_probe_stable() returns json language sql stable"
            " as $$ select public.hardening_probe_write() $$"
        )
    try:
        r = papi.rpc("hardening_probe_stable", papi.token(CRE1))
        assert r.status_code == 405 and r.json()["code"] == "25006", r.text  # read_only_sql_transaction
    finally:
        with _admin(server) as conn:
            conn.execute(f"drop function public.hardening_probe_stable(); {PROBES['hardening_probe_stable']}")
            conn.execute("grant execute on function public.hardening_probe_stable() to anon, authenticated")
            conn.execute("drop function public.hardening_probe_write()")


def test_an_unexposed_schema_is_406_not_public(api: Api):
    token = api.token(CRE1)
    headers = {"Authorization": f"Bearer {token}"}
    private = api.http.post("/rest/v1/rpc/my_profile", json={}, headers={**headers, "Content-Profile": "private"})
    assert private.status_code == 406 and set(private.json()) == SHAPE
    assert private.json()["code"] == "PGRST106" and private.json()["message"] == "Invalid schema: private"
    public = api.http.post("/rest/v1/rpc/my_profile", json={}, headers={**headers, "Content-Profile": "public"})
    assert public.status_code == 200
    # PostgREST takes a POST's schema from Content-Profile; Accept-Profile is for GET and HEAD.
    accept = api.http.post("/rest/v1/rpc/my_profile", json={}, headers={**headers, "Accept-Profile": "public"})
    assert accept.status_code == 200


# --- Input PostgreSQL would refuse: 400, never 500 or 503 ----------------------------------------------------------


def _new_log(path: Path, before: int) -> str:
    return path.read_bytes()[before:].decode("utf-8", "replace")


@pytest.mark.parametrize("depth", [1_000, 30_000])
def test_deeply_nested_json_is_a_400(api: Api, server: ServerProcess, depth: int):
    token = api.token(CRE1)
    body = b'{"lead": ' + b"[" * depth + b"]" * depth + b"}"
    r = api.http.post("/rest/v1/rpc/create_lead", content=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400 and set(r.json()) == SHAPE and r.json()["code"] == "PGRST102", r.text
    t = api.http.post("/auth/v1/token", params={"grant_type": "password"}, content=b'{"email": ' + body[9:])
    assert t.status_code == 400 and t.json()["error_code"] == "bad_json", t.text


@pytest.mark.parametrize(
    ("fn", "raw", "code"),
    [
        ("lead_changes", rb'{"since": "\ud800"}', "22P02"),
        ("dashboard_summary", rb'{"date_from": "\u0000", "date_to": "x"}', "22P05"),
        ("dashboard_summary", rb'{"date_from": "2026-01-01", "date_to": "2026-01-02", "branch": "a\u0000"}', "22P05"),
        ("lead_changes", rb'{"since": "\u0000"}', "22P05"),
        ("admin_set_profile", rb'{"email": "x\u0000@y", "role": "cre"}', "22P05"),
        ("lead_changes", rb'{"since": NaN}', "PGRST102"),
        # Inside a jsonb argument PostgreSQL refused them before too: kept as guards.
        ("create_lead", rb'{"lead": {"customer_name": "\udc00"}}', "22P02"),
        ("create_lead", rb'{"lead": {"customer_name": "a\u0000"}}', "22P05"),
    ],
)
def test_nul_and_lone_surrogates_are_a_400_and_no_outage(api: Api, server: ServerProcess, fn, raw, code):
    token = api.token(LEAD if fn == "dashboard_summary" else CRE1)
    before = server.log_path.stat().st_size
    r = api.http.post(f"/rest/v1/rpc/{fn}", content=raw, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400 and set(r.json()) == SHAPE and r.json()["code"] == code, r.text
    anon = api.http.post(f"/rest/v1/rpc/{fn}", content=raw)  # with the anon key only: refused, not 5xx
    assert anon.status_code in (400, 401), anon.text
    assert api.rpc("my_profile", token).status_code == 200
    assert "database unavailable" not in _new_log(server.log_path, before)


@pytest.mark.parametrize(
    ("grant", "raw"),
    [
        ("password", rb'{"email": "\ud800", "password": "x"}'),
        ("password", rb'{"email": "a\u0000", "password": "x"}'),
        ("password", rb'{"email": "cre1@demo.local", "password": "\udfff"}'),
        ("refresh_token", rb'{"refresh_token": "\ud800"}'),
        ("refresh_token", rb'{"refresh_token": "a\u0000"}'),
    ],
)
def test_bad_characters_in_credentials_are_a_400(api: Api, grant: str, raw: bytes):
    r = api.http.post("/auth/v1/token", params={"grant_type": grant}, content=raw)
    assert r.status_code == 400 and set(r.json()) == {"code", "error_code", "msg"}, r.text


# --- GoTrue's shapes -----------------------------------------------------------------------------------------------

USER_FIELDS = {
    "id", "aud", "role", "email", "email_confirmed_at", "phone", "app_metadata", "user_metadata", "identities",
    "created_at", "updated_at", "is_anonymous",
}  # fmt: skip


def test_token_answer_carries_gotrues_user_and_user_endpoint_agrees(api: Api):
    session = api.login(CRE2)
    user = session["user"]
    assert set(user) >= USER_FIELDS
    assert user["app_metadata"] == {"provider": "email", "providers": ["email"]} and user["is_anonymous"] is False
    assert user["aud"] == user["role"] == "authenticated" and user["email"] == CRE2
    assert user["identities"][0]["provider"] == "email" and user["identities"][0]["user_id"] == user["id"]
    me = api.http.get("/auth/v1/user", headers={"Authorization": f"Bearer {session['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == user["id"] and set(me.json()) >= USER_FIELDS
    assert api.http.get("/auth/v1/user").status_code == 401  # no bearer token
    forged = api.http.get("/auth/v1/user", headers={"Authorization": "Bearer x.y.z"})
    assert forged.status_code == 403 and forged.json()["error_code"] == "bad_jwt"
    # After logout the access token still verifies, but its session is gone (GoTrue: 403 session_not_found).
    assert (
        api.http.post("/auth/v1/logout", headers={"Authorization": f"Bearer {session['access_token']}"}).status_code
        == 204
    )
    gone = api.http.get("/auth/v1/user", headers={"Authorization": f"Bearer {session['access_token']}"})
    assert gone.status_code == 403 and gone.json()["error_code"] == "session_not_found"


def _refresh(api: Api, token: str) -> httpx.Response:
    return api.http.post("/auth/v1/token", params={"grant_type": "refresh_token"}, json={"refresh_token": token})


def test_logout_scopes_as_gotrue(api: Api):
    a, b, c = api.login(CRE2), api.login(CRE2), api.login(CRE2)
    local = api.http.post(
        "/auth/v1/logout", params={"scope": "local"}, headers={"Authorization": f"Bearer {a['access_token']}"}
    )
    assert local.status_code == 204
    assert _refresh(api, a["refresh_token"]).status_code == 400
    b_live = _refresh(api, b["refresh_token"])
    assert b_live.status_code == 200
    # The default scope is global: every session of the user ends, b's too.
    assert api.http.post("/auth/v1/logout", headers={"Authorization": f"Bearer {c['access_token']}"}).status_code == 204
    assert _refresh(api, c["refresh_token"]).status_code == 400
    assert _refresh(api, b_live.json()["refresh_token"]).status_code == 400
    # And `others` keeps the caller's own session.
    d, e = api.login(CRE2), api.login(CRE2)
    others = api.http.post(
        "/auth/v1/logout", params={"scope": "others"}, headers={"Authorization": f"Bearer {d['access_token']}"}
    )
    assert others.status_code == 204
    assert _refresh(api, e["refresh_token"]).status_code == 400 and _refresh(api, d["refresh_token"]).status_code == 200


def test_error_shape_follows_the_api_version_header(api: Api):
    wrong = {"email": CRE1, "password": "wrong"}
    old = api.http.post("/auth/v1/token", params={"grant_type": "password"}, json=wrong)
    assert old.json() == {"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"}
    new = api.http.post(
        "/auth/v1/token",
        params={"grant_type": "password"},
        json=wrong,
        headers={"X-Supabase-Api-Version": "2024-01-01"},
    )
    assert new.json() == {"code": "invalid_credentials", "message": "Invalid login credentials"}
    assert new.headers["x-sb-error-code"] == "invalid_credentials"


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_a_refresh_retried_within_the_reuse_interval_gets_the_token_already_issued(api: Api, db):
    first = api.login(CRE1)["refresh_token"]
    r1 = _refresh(api, first)
    assert r1.status_code == 200
    retry = _refresh(api, first)  # the answer to r1 was lost: the client tries again with the same token
    assert retry.status_code == 200 and retry.json()["refresh_token"] == r1.json()["refresh_token"]
    assert api.rpc("my_profile", retry.json()["access_token"]).status_code == 200
    # Eight at once with one token: one rotation, and every caller gets its result.
    second = r1.json()["refresh_token"]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _refresh(api, second), range(8)))
    assert {r.status_code for r in answers} == {200}
    assert len({r.json()["refresh_token"] for r in answers}) == 1
    third = answers[0].json()["refresh_token"]
    # The chain is followed: the first token, still within the interval, gets the live one at its end.
    assert _refresh(api, first).json()["refresh_token"] == third
    # Past the interval, reuse is theft: refused, and the live token of the session dies with it.
    db.execute(
        "update auth.refresh_tokens set revoked_at = revoked_at - interval '1 minute' where token_hash = %s",
        (_sha(second),),
    )
    late = _refresh(api, second)
    assert late.status_code == 400 and late.json()["error_code"] == "refresh_token_already_used"
    assert _refresh(api, third).status_code == 400


class _LoseFirstRefreshAnswer(httpx.HTTPTransport):
    """The real server answers; the client never hears the first refresh answer (a timeout after the commit)."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if b"refresh_token" in request.url.query and self.lost == 0:
            response.read()
            response.close()
            self.lost += 1
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def test_a_lost_refresh_answer_does_not_sign_the_desk_out(server: ServerProcess):
    """The red-team's finding 4 with the desk's own client: Retry, then the retry succeeds (was: AuthExpired)."""
    from crm_desktop.core.api import Retry

    transport = _LoseFirstRefreshAnswer()
    client = ApiClient(server.url, server.anon_key, transport=transport)
    client.login(CRE1, "demo1234")
    with pytest.raises(Retry):
        client.refresh()
    assert transport.lost == 1
    client.refresh()
    assert client.signed_in and client.rpc("my_profile")["email"] == CRE1
    client.close()


def test_jwt_leeway_is_postgrests_30_seconds(api: Api, db):
    secret = str(db.execute("select value from auth.server_secrets where name = 'jwt_secret'").fetchone()[0])
    claims = jwt.decode(api.token(CRE1), options={"verify_signature": False})
    now = int(time.time())
    ahead = jwt.encode({**claims, "iat": now + 20, "nbf": now + 20}, secret, algorithm="HS256")
    assert api.rpc("my_profile", ahead).status_code == 200  # another server's clock, 20 s ahead
    just_expired = jwt.encode({**claims, "exp": now - 20}, secret, algorithm="HS256")
    assert api.rpc("my_profile", just_expired).status_code == 200
    expired = jwt.encode({**claims, "exp": now - 60}, secret, algorithm="HS256")
    assert api.rpc("my_profile", expired).json()["code"] == "PGRST303"


def test_revoked_refresh_tokens_are_pruned_after_a_day(api: Api, db):
    user_id = db.execute("select id from auth.users where email = %s", (CRE2,)).fetchone()[0]
    old, recent = f"old-{uuid.uuid4()}", f"recent-{uuid.uuid4()}"
    for token, age in ((old, "2 days"), (recent, "1 hour")):
        db.execute(
            "insert into auth.refresh_tokens (token_hash, user_id, session_id, revoked, revoked_at)"
            " values (%s, %s, gen_random_uuid(), true, now() - %s::interval)",
            (_sha(token), user_id, age),
        )
    api.login(CRE2)
    left = {r[0] for r in db.execute("select token_hash from auth.refresh_tokens where token_hash in (%s, %s)",
                                      (_sha(old), _sha(recent)))}  # fmt: skip
    assert left == {_sha(recent)}


def test_an_unknown_email_costs_the_same_bcrypt_work(db):
    """No timing here (bench/bench_signin.py measures it): the dummy hash has the users' cost, and is a real hash."""
    costs = {h.split("$")[2] for (h,) in db.execute("select encrypted_password from auth.users")}
    dummy = auth.dummy_hash()
    assert costs == {dummy.split("$")[2]}
    assert bcrypt.checkpw(b"x", dummy.encode()) is False


# --- Sign-in limits ------------------------------------------------------------------------------------------------


def _sign_in(api: Api, email: str, password: str, **headers: str) -> httpx.Response:
    return api.http.post(
        "/auth/v1/token",
        params={"grant_type": "password"},
        json={"email": email, "password": password},
        headers=headers,
    )


def test_failed_sign_ins_are_limited_per_email_and_per_address(papi: Api, probe: ServerProcess):
    api = papi
    try:
        victim = f"nobody-{uuid.uuid4().hex[:8]}@demo.local"
        codes = [_sign_in(api, victim, f"guess{i}").status_code for i in range(10)]
        assert codes == [400] * 10
        limited = _sign_in(api, victim, "guess10")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.json() == {
            "code": 429,
            "error_code": "over_request_rate_limit",
            "msg": "Request rate limit reached",
        }
        v2024 = _sign_in(api, victim, "guess11", **{"X-Supabase-Api-Version": "2024-01-01"})
        assert v2024.status_code == 429 and v2024.json()["code"] == "over_request_rate_limit"
        # Another account is not locked by someone guessing at this one; a right password costs nothing.
        for _ in range(5):
            assert _sign_in(api, CRE2, "demo1234").status_code == 200
        # The address: 30 failures (10 above, 20 more over other e-mails), then even a right password waits.
        for i in range(20):
            assert _sign_in(api, f"other{i}-{uuid.uuid4().hex[:6]}@x.local", "nope").status_code == 400
        assert _sign_in(api, CRE2, "demo1234").status_code == 429
    finally:
        _restart(probe, *probe.extra_args)  # its limiter is in memory: a fresh one for the tests after this


def test_a_parallel_flood_of_wrong_passwords_is_cut_short(papi: Api, probe: ServerProcess):
    """64 at once: at most the address's 30 reach bcrypt; the rest are 429 (was: 64 x 400 and every RPC waiting)."""
    api = papi
    try:
        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            codes = list(pool.map(lambda i: _sign_in(api, CRE1, f"guess{i}").status_code, range(64)))
        assert set(codes) <= {400, 429} and codes.count(400) <= 30 and codes.count(429) >= 34
    finally:
        _restart(probe, *probe.extra_args)


# --- Slow and idle clients -----------------------------------------------------------------------------------------


def _half_sent(url: str, n: int) -> list[socket.socket]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, int(port)))
        s.sendall(b"POST /rest/v1/rpc/catalog HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n")  # headers never end
        socks.append(s)
    return socks


def test_half_sent_headers_are_closed_after_the_header_timeout(probe: ServerProcess):
    socks = _half_sent(probe.url, 20)
    try:
        for s in socks:
            s.settimeout(30)  # a deadline for the wait, not a measurement: the server closes at ~1 s
            assert s.recv(1024) == b""
    finally:
        for s in socks:
            s.close()


def test_a_body_that_never_finishes_is_answered_408(probe: ServerProcess):
    """Headers complete, half a body, then nothing: the server answers within its body timeout (10 s) instead of
    holding the connection for ever (the red-team's 3,000 half-sent create_lead bodies stayed open)."""
    host, port = probe.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as s:
        s.sendall(
            b"POST /rest/v1/rpc/create_lead HTTP/1.1\r\nHost: x\r\napikey: " + probe.anon_key.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n" + b'{"lead": {"customer_'
        )  # fmt: skip
        s.settimeout(60)  # a deadline for the wait, not a measurement
        answer = b""
        while b"}" not in answer.partition(b"\r\n\r\n")[2] and (chunk := s.recv(4096)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"PGRST408"' in answer


def test_idle_connections_cannot_take_health_down(probe: ServerProcess):
    """The red-team's 1,100 idle sockets against `ulimit -n 1024`, scaled down: a descriptor limit of 128, 150
    half-sent requests that never time out (header timeout 60 s). The cap closes the oldest idle connection."""
    _restart(probe, "--header-timeout", "60", "--max-connections", "40", *PROBE_ARGS[2:])
    assert probe.proc is not None
    psutil.Process(probe.proc.pid).rlimit(psutil.RLIMIT_NOFILE, (128, 128))
    socks = _half_sent(probe.url, 150)
    try:
        health = httpx.get(probe.url + "/health", timeout=10)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        with httpx.Client(base_url=probe.url, headers={"apikey": probe.anon_key}, timeout=10) as http:
            assert http.post("/rest/v1/rpc/catalog", json={}).status_code == 401  # served (anon may call nothing)
    finally:
        for s in socks:
            s.close()
        _restart(probe, *PROBE_ARGS)
