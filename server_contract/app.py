"""The reference server's HTTP surface: Supabase's `/auth/v1/token` and PostgREST's `/rest/v1/rpc/<fn>`.

Every RPC runs in one transaction on a pooled connection that logs in as `authenticator` and becomes the caller's
role for that transaction (`set_config('role', ...)` + `request.jwt.claims`), exactly as PostgREST does, so the SQL
functions see the same `auth.uid()` here and on Supabase."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import jwt
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server_contract import auth
from server_contract.errors import auth_error, error_response, from_database_error

log = logging.getLogger(__name__)

# PostgREST sets no limit of its own; an import batch (1,000 rows) is 100-150 KB. Bounded, but far above that.
MAX_BODY = 4 * 1024 * 1024
STATEMENT_TIMEOUT = "15s"

# The roles a transaction may become and the claims PostgREST would expose, in one round trip.
_BECOME = (
    "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true),"
    " set_config('statement_timeout', %s, true)"
)

# Functions the API exposes: public schema, not our private helpers (leading underscore).
_INTROSPECT = """
select p.proname,
       coalesce(p.proargnames, '{}') as argnames,
       array(select format_type(t, null) from unnest(p.proargtypes::oid[]) t) as argtypes,
       p.pronargdefaults,
       format_type(p.prorettype, null) as rettype,
       p.proretset
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = 'public' and p.prokind = 'f' and p.proname !~ '^_'
"""


@dataclass
class RpcFunction:
    name: str
    params: list[tuple[str, str]]  # (name, type) in declaration order
    n_defaults: int
    returns: str

    @property
    def required(self) -> set[str]:
        return {n for n, _ in self.params[: len(self.params) - self.n_defaults]}


@dataclass
class ServerState:
    conninfo: str
    issuer: auth.TokenIssuer
    anon_key: str
    pool_min: int = 4
    pool_max: int = 16
    pool: AsyncConnectionPool | None = None
    functions: dict[str, RpcFunction] = field(default_factory=dict)


class RequestError(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__()
        self.response = response


async def _read_json(request: Request) -> Any:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY:
        raise RequestError(error_response(413, "PGRST413", "Payload too large (4 MiB at most)."))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise RequestError(error_response(413, "PGRST413", "Payload too large (4 MiB at most)."))
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(error_response(400, "PGRST102", "Empty or invalid json", str(exc)[:200])) from None


def _claims(state: ServerState, request: Request) -> dict[str, Any]:
    """Verify apikey and bearer token as the Supabase gateway + PostgREST would."""
    apikey = request.headers.get("apikey")
    bearer = request.headers.get("authorization", "")
    token = bearer[7:].strip() if bearer.lower().startswith("bearer ") else None
    if not apikey and not token:
        raise RequestError(
            error_response(401, "PGRST301", "No API key found in request", hint="Send apikey and Authorization.")
        )
    if apikey:
        try:
            state.issuer.verify(apikey)
        except jwt.InvalidTokenError:
            raise RequestError(error_response(401, "PGRST301", "Invalid API key")) from None
    try:
        return state.issuer.verify(token or apikey or "")
    except jwt.ExpiredSignatureError:
        raise RequestError(error_response(401, "PGRST303", "JWT expired")) from None
    except jwt.InvalidTokenError:
        raise RequestError(error_response(401, "PGRST301", "JWT could not be verified")) from None


@asynccontextmanager
async def _as_service(state: ServerState) -> AsyncIterator[psycopg.AsyncCursor[Any]]:
    """One transaction as service_role (the auth tables), on a pooled connection; the role ends with it."""
    assert state.pool is not None
    async with state.pool.connection() as conn, conn.transaction():
        cur = conn.cursor()
        await cur.execute("select set_config('role', 'service_role', true)")
        yield cur


async def _load_functions(state: ServerState) -> None:
    assert state.pool is not None
    async with state.pool.connection() as conn:  # pg_proc is readable by the login role itself
        rows = await (await conn.execute(_INTROSPECT)).fetchall()
    functions: dict[str, RpcFunction] = {}
    for name, argnames, argtypes, n_defaults, rettype, retset in rows:
        if retset or (len(argnames) != len(argtypes) and argtypes):
            continue
        functions[name] = RpcFunction(name, list(zip(argnames, argtypes, strict=True)), n_defaults, rettype)
    state.functions = functions


def _bind(fn: RpcFunction, body: dict[str, Any]) -> tuple[sql.Composed, list[Any]]:
    """`select public.fn(a => $1::type, ...)::text` for the keys of the body (named parameters, like PostgREST)."""
    types = dict(fn.params)
    unknown = set(body) - set(types)
    missing = fn.required - set(body)
    if unknown or missing:
        raise RequestError(
            error_response(
                404,
                "PGRST202",
                f"Could not find the function public.{fn.name}({', '.join(sorted(body))}) in the schema cache",
                {"unknown": sorted(unknown), "missing": sorted(missing)},
            )
        )
    parts: list[sql.Composable] = []
    values: list[Any] = []
    for name, typ in fn.params:
        if name not in body:
            continue
        value = body[name]
        if typ in ("jsonb", "json"):
            values.append(Jsonb(value))
        elif typ.endswith("[]") and isinstance(value, list):
            # PostgREST binds a JSON array to an array parameter the way jsonb_to_record converts it (a bad element
            # is 22P02 -> 400), so `assign_leads(lead_ids => [1, 2])` works here as on Supabase.
            values.append(Jsonb({"v": value}))
            parts.append(
                sql.SQL("{} => (select _r.v from jsonb_to_record({}) as _r(v {}))").format(
                    sql.Identifier(name), sql.Placeholder(), sql.SQL(typ)
                )
            )
            continue
        elif value is None or isinstance(value, str):
            values.append(value)
        elif isinstance(value, bool):
            values.append("true" if value else "false")
        elif isinstance(value, int | float):
            values.append(str(value))
        else:
            values.append(json.dumps(value))  # a list/object for a scalar parameter: PostgreSQL will refuse the cast
        parts.append(sql.SQL("{} => {}::{}").format(sql.Identifier(name), sql.Placeholder(), sql.SQL(typ)))
    call = sql.SQL("select public.{}({})").format(sql.Identifier(fn.name), sql.SQL(", ").join(parts))
    if fn.returns != "void":
        call = sql.SQL("{}::text").format(call)
    return call, values


async def _call_in_one_round_trip(
    conn: psycopg.AsyncConnection[Any], claims: dict[str, Any], call: sql.Composed, values: list[Any]
) -> Any:
    """BEGIN, become the caller, call, COMMIT: pipelined, so the database sees one round trip and no session sits
    idle in a transaction while the event loop serves other requests. The row is read after the pipeline: a fetch
    inside it would flush and wait for the call's result before COMMIT is even sent (a second round trip, with the
    transaction's locks held across an event-loop turn). COMMIT goes on its own cursor so the call's result stays
    on `cur`; an error anywhere is raised when the pipeline ends."""
    cur = conn.cursor()
    try:
        async with conn.pipeline():
            await cur.execute("begin")
            await cur.execute(_BECOME, (claims["role"], json.dumps(claims), STATEMENT_TIMEOUT))
            await cur.execute(call, values)
            await conn.execute("commit")
        row = await cur.fetchone()
    except BaseException:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE and not conn.closed:
            await conn.execute("rollback")
        raise
    return row


async def rpc(request: Request) -> Response:
    state: ServerState = request.app.state.server
    name = request.path_params["name"]
    try:
        claims = _claims(state, request)
        body = await _read_json(request)
        if not isinstance(body, dict):
            raise RequestError(error_response(400, "PGRST102", "The body must be a JSON object of named arguments."))
        fn = state.functions.get(name)
        if fn is None:
            raise RequestError(
                error_response(404, "PGRST202", f"Could not find the function public.{name} in the schema cache")
            )
        call, values = _bind(fn, body)
    except RequestError as err:
        return err.response
    anonymous = claims.get("role") == "anon"
    assert state.pool is not None
    try:
        async with state.pool.connection() as conn:
            row = await _call_in_one_round_trip(conn, claims, call, values)
    except psycopg.errors.Error as exc:
        if exc.sqlstate is None:  # connection-level trouble: PostgREST answers 503
            log.warning("database unavailable: %s", exc)
            return error_response(503, "PGRST000", "Database connection error. Retry later.")
        diag = exc.diag
        return from_database_error(
            exc.sqlstate, diag.message_primary or str(exc), diag.message_detail, diag.message_hint, anonymous
        )
    if fn.returns == "void":
        return Response(status_code=204)
    text = row[0] if row else None
    return Response(text if text is not None else "null", media_type="application/json")


async def token(request: Request) -> Response:
    state: ServerState = request.app.state.server
    grant = request.query_params.get("grant_type")
    try:
        apikey = request.headers.get("apikey")
        if not apikey:
            return auth_error(401, "no_authorization", "No API key found in request")
        try:
            state.issuer.verify(apikey)
        except jwt.InvalidTokenError:
            return auth_error(401, "bad_jwt", "Invalid API key")
        body = await _read_json(request)
    except RequestError as err:
        return err.response
    if not isinstance(body, dict):
        return auth_error(400, "validation_failed", "Body must be a JSON object")
    if grant == "password":
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
            return auth_error(400, "validation_failed", "Email and password are required")
        async with _as_service(state) as cur:
            found = await auth.password_grant_lookup(cur, email)
        # bcrypt is slow on purpose: off the event loop, and with no pooled connection held meanwhile.
        ok = found is not None and await anyio.to_thread.run_sync(auth.check_password, password, found[1])
        if not ok or found is None:
            return auth_error(400, "invalid_credentials", "Invalid login credentials")
        async with _as_service(state) as cur:
            session_id, refresh = await auth.open_session(cur, found[0])
        return JSONResponse(state.issuer.session_answer(found[0], session_id, refresh))
    if grant == "refresh_token":
        refresh_token = body.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            return auth_error(400, "validation_failed", "refresh_token is required")
        failure: auth.AuthFailure | None = None
        async with _as_service(state) as cur:
            try:
                user, session_id, new_token = await auth.rotate(cur, refresh_token)
            except auth.AuthFailure as exc:
                failure = exc  # caught inside the transaction: a revoked session stays revoked
        if failure is not None:
            return auth_error(failure.status, failure.error_code, failure.msg)
        return JSONResponse(state.issuer.session_answer(user, session_id, new_token))
    return auth_error(400, "unsupported_grant_type", "grant_type must be password or refresh_token")


async def logout(request: Request) -> Response:
    state: ServerState = request.app.state.server
    try:
        claims = _claims(state, request)
    except RequestError as err:
        return err.response
    session_id = claims.get("session_id")
    if claims.get("role") != "authenticated" or not session_id:
        return auth_error(401, "no_authorization", "Sign in first")
    async with _as_service(state) as cur:
        await auth.revoke_session(cur, session_id)
    return Response(status_code=204)


async def health(request: Request) -> Response:
    state: ServerState = request.app.state.server
    assert state.pool is not None
    try:
        async with state.pool.connection(timeout=5) as conn:
            await conn.execute("select 1")
    except Exception as exc:  # any failure here means "not healthy", which is the answer
        return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ok"})


def create_app(state: ServerState) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.pool = AsyncConnectionPool(
            state.conninfo,
            min_size=state.pool_min,
            max_size=state.pool_max,
            kwargs={"autocommit": True, "prepare_threshold": 0},
            open=False,
        )
        await state.pool.open(wait=True, timeout=30)
        await _load_functions(state)
        try:
            yield
        finally:
            await state.pool.close()

    app = Starlette(
        routes=[
            Route("/rest/v1/rpc/{name}", rpc, methods=["POST"]),
            Route("/auth/v1/token", token, methods=["POST"]),
            Route("/auth/v1/logout", logout, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
        # Big answers (feed pages) are gzipped for clients that ask, as Supabase's gateway can: the shared office
        # link is what a first sync waits for (issue 12). Level 6 on a lead_feed page: 39.5 B/lead for 30 ms of CPU
        # per 5,000 rows; level 5 40.8 B for 18 ms, level 9 38.2 B for 165 ms.
        middleware=[Middleware(GZipMiddleware, minimum_size=4096, compresslevel=6)],
    )
    app.state.server = state
    return app
