"""The reference server's HTTP surface: Supabase's `/auth/v1` (GoTrue) and PostgREST's `/rest/v1/rpc/<fn>`.

Every RPC runs the way PostgREST runs it on hosted Supabase, so CI sees what Supabase would refuse: one transaction on
a pooled connection that logs in as `authenticator`, READ ONLY when the function is STABLE or IMMUTABLE, which becomes
the caller's role for that transaction (`set_config('role', ...)`) with the claims in `request.jwt.claims` and the
role's own settings from `pg_db_role_setting` (`statement_timeout` 8 s for `authenticated`, 3 s for `anon`, set in
`sql/reference/`). The functions see the same `auth.uid()` here and on Supabase.

Input that PostgreSQL would refuse (JSON nested too deeply, lone surrogates, NUL in a text argument) is answered 400
with a PostgREST body before any database work; only a lost database connection is a 503."""

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
from server_contract.compress import ZstdMiddleware
from server_contract.errors import auth_error, error_response, from_database_error

log = logging.getLogger(__name__)

# PostgREST sets no limit of its own; an import batch (1,000 rows) is 100-150 KB. Bounded, but far above that.
MAX_BODY = 4 * 1024 * 1024
# No request of this API nests deeper than 3; PostgreSQL's own limit is its stack. Deeper is refused as invalid JSON.
MAX_JSON_DEPTH = 64
# Seconds a client may take to send its body once the headers are in (slow clients hold a connection each).
BODY_TIMEOUT = 10.0
EXPOSED_SCHEMAS = ("public",)
# PostgREST's db-schemas + db-extra-search-path (Supabase: public, extensions), set in every transaction.
SEARCH_PATH = '"public", "extensions"'
API_ROLES = ("anon", "authenticated", "service_role")

# Functions the API exposes: public schema, not our private helpers (leading underscore).
_INTROSPECT = """
select p.proname,
       coalesce(p.proargnames, '{}') as argnames,
       array(select format_type(t, null) from unnest(p.proargtypes::oid[]) t) as argtypes,
       p.pronargdefaults,
       format_type(p.prorettype, null) as rettype,
       p.proretset,
       p.provolatile
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = 'public' and p.prokind = 'f' and p.proname !~ '^_'
"""

# What PostgREST applies for the role it impersonates: the role's own settings (this database's over all databases'),
# the ones a user may set. Read once at start, like PostgREST's schema cache.
_ROLE_SETTINGS = """
select r.rolname, split_part(c.cfg, '=', 1) as name, substr(c.cfg, strpos(c.cfg, '=') + 1) as value
  from pg_db_role_setting d
  join pg_roles r on r.oid = d.setrole
  cross join lateral unnest(d.setconfig) as c(cfg)
  join pg_settings s on s.name = split_part(c.cfg, '=', 1)
 where r.rolname = any(%s)
   and d.setdatabase in (0, (select oid from pg_database where datname = current_database()))
   and s.context = 'user'
 order by d.setdatabase
"""


# Failed sign-ins allowed per e-mail and per client address, as "burst/seconds": that many at once, refilled over
# that many seconds. The address limit is GoTrue's default for sign-ins (30 per 5 minutes per IP).
SIGN_IN_LIMITS = "10/300,30/300"
# A refused sign-in is answered after this pause (it costs the server a sleeping coroutine): a client that hammers the
# endpoint waits for each answer, so 64 flooders send 64 requests a second instead of the ~600 the event loop can
# refuse, and the CREs' RPCs keep their CPU (bench/bench_signin.py).
REFUSAL_DELAY = 1.0


def sign_in_limiters(spec: str) -> tuple[auth.RateLimiter, auth.RateLimiter]:
    """(per e-mail, per address) from "burst/seconds,burst/seconds"."""
    limiters = []
    for part in spec.split(","):
        burst, _, seconds = part.partition("/")
        limiters.append(auth.RateLimiter(burst=float(burst), per_second=float(burst) / float(seconds)))
    if len(limiters) != 2:
        raise ValueError(f"sign-in limits must be two burst/seconds pairs, not {spec!r}")
    return limiters[0], limiters[1]


@dataclass
class RpcFunction:
    name: str
    params: list[tuple[str, str]]  # (name, type) in declaration order
    n_defaults: int
    returns: str
    volatility: str = "v"  # pg_proc.provolatile: i(mmutable), s(table), v(olatile)

    @property
    def read_only(self) -> bool:
        return self.volatility in ("i", "s")

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
    role_settings: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    # Sign-in limits (GoTrue answers 429 over_request_rate_limit): failed attempts per e-mail and per client address.
    email_limiter: auth.RateLimiter = field(default_factory=lambda: sign_in_limiters(SIGN_IN_LIMITS)[0])
    address_limiter: auth.RateLimiter = field(default_factory=lambda: sign_in_limiters(SIGN_IN_LIMITS)[1])
    # bcrypt on one thread: a flood of sign-ins can take one core, never the event loop or the database's.
    hash_threads: int = 1
    max_hash_waiting: int = 16
    hash_waiting: int = 0
    hash_limiter: anyio.CapacityLimiter | None = None


class RequestError(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__()
        self.response = response


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # PostgreSQL's json refuses NaN/Infinity; so does PostgREST


def _too_deep(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class BodyError(Exception):
    """A body that cannot be read: each endpoint answers it in its own shape (PostgREST's or GoTrue's)."""

    def __init__(self, status: int, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail

    def postgrest(self) -> Response:
        code = {413: "PGRST413", 408: "PGRST408"}.get(self.status, "PGRST102")
        return error_response(self.status, code, self.message, self.detail)


async def _read_body(request: Request) -> Any:
    """The body as JSON ({} when empty), read within BODY_TIMEOUT and MAX_BODY."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY:
        raise BodyError(413, "Payload too large (4 MiB at most).")
    chunks: list[bytes] = []
    size = 0
    try:
        with anyio.fail_after(BODY_TIMEOUT):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    raise BodyError(413, "Payload too large (4 MiB at most).")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyError(408, f"The request body did not arrive within {BODY_TIMEOUT:.0f} s.") from None
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise BodyError(400, "Empty or invalid json", "nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(400, "Empty or invalid json", str(exc)[:200]) from None
    if _too_deep(value, MAX_JSON_DEPTH):
        raise BodyError(400, "Empty or invalid json", f"nested deeper than {MAX_JSON_DEPTH} levels")
    return value


async def _read_json(request: Request) -> Any:
    try:
        return await _read_body(request)
    except BodyError as exc:
        raise RequestError(exc.postgrest()) from None


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
        settings = await (await conn.execute(_ROLE_SETTINGS, (list(API_ROLES),))).fetchall()
    functions: dict[str, RpcFunction] = {}
    for name, argnames, argtypes, n_defaults, rettype, retset, volatility in rows:
        if retset or (len(argnames) != len(argtypes) and argtypes):
            continue
        params = list(zip(argnames, argtypes, strict=True))
        functions[name] = RpcFunction(name, params, n_defaults, rettype, str(volatility))
    state.functions = functions
    by_role: dict[str, dict[str, str]] = {}
    for role, key, value in settings:  # this database's settings come last and win
        by_role.setdefault(role, {})[key] = value
    state.role_settings = {role: sorted(values.items()) for role, values in by_role.items()}


def _become(state: ServerState, claims: dict[str, Any]) -> tuple[sql.Composed, list[Any]]:
    """PostgREST's pre-request `set_config` calls, all transaction-local, in one statement."""
    role = str(claims["role"])
    settings = state.role_settings.get(role, [])
    calls = [sql.SQL("set_config(%s, %s, true)")] * (3 + len(settings))
    values: list[Any] = ["search_path", SEARCH_PATH, "role", role, "request.jwt.claims", json.dumps(claims)]
    for key, value in settings:
        values += [key, value]
    return sql.SQL("select {}").format(sql.SQL(", ").join(calls)), values


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
            values.append(Jsonb(value))  # json.dumps escapes NUL and surrogates: PostgreSQL refuses them with a 22xxx
        elif typ.endswith("[]") and isinstance(value, list):
            # PostgREST binds a JSON array to an array parameter the way jsonb_to_record converts it (a bad element
            # is 22P02 -> 400), so `assign_leads(lead_ids => [1, 2])` works here as on Supabase. Through jsonb, so a
            # NUL or lone surrogate in an element is PostgreSQL's 22xxx too.
            values.append(Jsonb({"v": value}))
            parts.append(
                sql.SQL("{} => (select _r.v from jsonb_to_record({}) as _r(v {}))").format(
                    sql.Identifier(name), sql.Placeholder(), sql.SQL(typ)
                )
            )
            continue
        elif value is None:
            values.append(None)
        elif isinstance(value, str):
            values.append(_text_argument(value))
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


def _text_argument(value: str) -> str:
    """A text argument PostgreSQL can take, or the 400 PostgREST gives for it (it passes the body to PostgreSQL as
    json, whose parser refuses both). Checked here because psycopg refuses them client-side, without a SQLSTATE."""
    if "\x00" in value:
        raise RequestError(
            error_response(400, "22P05", "unsupported Unicode escape sequence", "\\u0000 cannot be converted to text.")
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        detail = "Unicode low surrogate must follow a high surrogate."
        raise RequestError(error_response(400, "22P02", "invalid input syntax for type json", detail)) from None
    return value


async def _call_in_one_round_trip(
    conn: psycopg.AsyncConnection[Any],
    read_only: bool,
    become: tuple[sql.Composed, list[Any]],
    call: sql.Composed,
    values: list[Any],
) -> Any:
    """BEGIN, become the caller, call, COMMIT: pipelined, so the database sees one round trip and no session sits
    idle in a transaction while the event loop serves other requests. The row is read after the pipeline: a fetch
    inside it would flush and wait for the call's result before COMMIT is even sent (a second round trip, with the
    transaction's locks held across an event-loop turn). COMMIT goes on its own cursor so the call's result stays
    on `cur`; an error anywhere is raised when the pipeline ends."""
    cur = conn.cursor()
    try:
        async with conn.pipeline():
            await cur.execute(_BEGIN_READ_ONLY if read_only else _BEGIN)
            await cur.execute(*become)
            await cur.execute(call, values)
            await conn.execute("commit")
        row = await cur.fetchone()
    except BaseException:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE and not conn.closed:
            await conn.execute("rollback")
        raise
    return row


# PostgREST's transaction modes (Plan.hs): READ ONLY for STABLE and IMMUTABLE functions.
_BEGIN = "begin isolation level read committed"
_BEGIN_READ_ONLY = "begin isolation level read committed read only"


def _profile_error(request: Request) -> Response | None:
    """PostgREST picks the schema from Content-Profile on POST (Accept-Profile on GET/HEAD) and refuses one it does
    not expose with 406 instead of serving `public`."""
    header = "accept-profile" if request.method in ("GET", "HEAD") else "content-profile"
    profile = request.headers.get(header)
    if profile is None or profile in EXPOSED_SCHEMAS:
        return None
    return error_response(
        406, "PGRST106", f"Invalid schema: {profile}", hint="Only the following schemas are exposed: public"
    )


async def rpc(request: Request) -> Response:
    state: ServerState = request.app.state.server
    name = request.path_params["name"]
    try:
        claims = _claims(state, request)
        profile_error = _profile_error(request)
        if profile_error is not None:
            return profile_error
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
            row = await _call_in_one_round_trip(conn, fn.read_only, _become(state, claims), call, values)
    except psycopg.errors.Error as exc:
        if exc.sqlstate is None:
            if isinstance(exc, psycopg.OperationalError):  # the connection or the pool: PostgREST answers 503
                log.warning("database unavailable: %s", exc)
                return error_response(503, "PGRST000", "Database connection error. Retry later.")
            # Refused by psycopg before it reached PostgreSQL: the request's fault, not an outage.
            log.info("rpc %s: argument refused client-side: %s", name, exc)
            return error_response(400, "PGRST102", "Invalid argument", str(exc)[:200])
        diag = exc.diag
        return from_database_error(
            exc.sqlstate, diag.message_primary or str(exc), diag.message_detail, diag.message_hint, anonymous
        )
    if fn.returns == "void":
        return Response(status_code=204)
    text = row[0] if row else None
    return Response(text if text is not None else "null", media_type="application/json")


def _auth_text(value: Any, max_len: int = 1024) -> str | None:
    """A credential the database and bcrypt can take (no NUL, encodable, bounded), else None."""
    if not isinstance(value, str) or not value or len(value) > max_len or "\x00" in value:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


class _Gotrue:
    """Answers of one /auth/v1 request in the error shape its client asked for (X-Supabase-Api-Version)."""

    def __init__(self, request: Request) -> None:
        self.version = request.headers.get("x-supabase-api-version")

    def error(self, status: int, code: str, msg: str, headers: dict[str, str] | None = None) -> Response:
        return auth_error(status, code, msg, self.version, headers)

    def rate_limited(self, retry_after: float) -> Response:
        headers = {"Retry-After": f"{retry_after:.0f}"}
        return self.error(429, "over_request_rate_limit", "Request rate limit reached", headers)


async def _check_password(state: ServerState, password: str, hashed: str) -> bool | None:
    """bcrypt on the bounded hashing pool; None when too many are already waiting for it."""
    if state.hash_waiting >= state.max_hash_waiting:
        return None
    if state.hash_limiter is None:
        state.hash_limiter = anyio.CapacityLimiter(state.hash_threads)
    state.hash_waiting += 1
    try:
        return await anyio.to_thread.run_sync(auth.check_password, password, hashed, limiter=state.hash_limiter)
    finally:
        state.hash_waiting -= 1


async def _password_grant(state: ServerState, request: Request, body: dict[str, Any], out: _Gotrue) -> Response:
    email, password = _auth_text(body.get("email")), _auth_text(body.get("password"))
    if email is None or password is None:
        return out.error(400, "validation_failed", "Email and password are required")
    email_key = email.strip().lower()
    address = request.client.host if request.client else "unknown"
    wait = state.address_limiter.take(address)
    if not wait:
        wait = state.email_limiter.take(email_key)
        if wait:
            state.address_limiter.give_back(address)
    if wait:
        await anyio.sleep(REFUSAL_DELAY)
        return out.rate_limited(wait)
    async with _as_service(state) as cur:
        found = await auth.password_grant_lookup(cur, email)
    # bcrypt is slow on purpose: off the event loop, on its bounded pool, with no pooled connection held meanwhile.
    # An unknown e-mail is checked against a dummy hash, so both take the same time.
    ok = await _check_password(state, password, found[1] if found is not None else auth.dummy_hash())
    if ok is None or (ok and found is not None):
        state.address_limiter.give_back(address)
        state.email_limiter.give_back(email_key)
    if ok is None:
        await anyio.sleep(REFUSAL_DELAY)
        return out.rate_limited(1)
    if not ok or found is None:
        return out.error(400, "invalid_credentials", "Invalid login credentials")
    user = found[0]
    async with _as_service(state) as cur:
        session_id, refresh = await auth.open_session(cur, user)
        await auth.prune(cur)
    return JSONResponse(state.issuer.session_answer(user, session_id, refresh))


async def _refresh_grant(state: ServerState, body: dict[str, Any], out: _Gotrue) -> Response:
    refresh_token = _auth_text(body.get("refresh_token"), max_len=256)
    if refresh_token is None:
        if body.get("refresh_token"):
            return out.error(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
        return out.error(400, "validation_failed", "refresh_token is required")
    failure: auth.AuthFailure | None = None
    async with _as_service(state) as cur:
        try:
            user, session_id, new_token = await auth.rotate(cur, refresh_token)
            await auth.prune(cur)
        except auth.AuthFailure as exc:
            failure = exc  # caught inside the transaction: a revoked session stays revoked
    if failure is not None:
        return out.error(failure.status, failure.error_code, failure.msg)
    return JSONResponse(state.issuer.session_answer(user, session_id, new_token))


async def token(request: Request) -> Response:
    state: ServerState = request.app.state.server
    out = _Gotrue(request)
    grant = request.query_params.get("grant_type")
    apikey = request.headers.get("apikey")
    if not apikey:
        return out.error(401, "no_authorization", "No API key found in request")
    try:
        state.issuer.verify(apikey)
    except jwt.InvalidTokenError:
        return out.error(401, "bad_jwt", "Invalid API key")
    try:
        body = await _read_body(request)
    except BodyError as exc:
        code = {413: "request_too_large", 408: "request_timeout"}.get(exc.status, "bad_json")
        return out.error(exc.status, code, f"Could not read the request body: {exc.message}")
    if not isinstance(body, dict):
        return out.error(400, "bad_json", "Body must be a JSON object")
    if grant == "password":
        return await _password_grant(state, request, body, out)
    if grant == "refresh_token":
        return await _refresh_grant(state, body, out)
    return out.error(400, "unsupported_grant_type", "grant_type must be password or refresh_token")


def _user_claims(state: ServerState, request: Request, out: _Gotrue) -> dict[str, Any] | Response:
    """The verified claims of a user's bearer token, or GoTrue's refusal."""
    if not request.headers.get("apikey"):
        return out.error(401, "no_authorization", "No API key found in request")
    bearer = request.headers.get("authorization", "")
    token_text = bearer[7:].strip() if bearer.lower().startswith("bearer ") else ""
    if not token_text:
        return out.error(401, "no_authorization", "This endpoint requires a valid Bearer token")
    try:
        claims = state.issuer.verify(token_text)
    except jwt.InvalidTokenError as exc:
        return out.error(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {exc}")
    if claims.get("role") != "authenticated" or not claims.get("session_id"):
        return out.error(403, "bad_jwt", "invalid claim: missing sub or session_id claim")
    return claims


async def get_user(request: Request) -> Response:
    state: ServerState = request.app.state.server
    out = _Gotrue(request)
    claims = _user_claims(state, request, out)
    if isinstance(claims, Response):
        return claims
    async with _as_service(state) as cur:
        live = await auth.session_is_live(cur, str(claims["session_id"]))
        user = await auth.user_by_id(cur, str(claims["sub"])) if live else None
    if not live:
        return out.error(403, "session_not_found", "Session from session_id claim in JWT does not exist")
    if user is None:
        return out.error(403, "user_not_found", "User from sub claim in JWT does not exist")
    return JSONResponse(user.gotrue())


async def logout(request: Request) -> Response:
    state: ServerState = request.app.state.server
    out = _Gotrue(request)
    claims = _user_claims(state, request, out)
    if isinstance(claims, Response):
        return claims
    scope = request.query_params.get("scope", "global")
    if scope not in ("global", "local", "others"):
        return out.error(400, "validation_failed", "scope must be global, local or others")
    async with _as_service(state) as cur:
        await auth.logout(cur, str(claims["sub"]), str(claims["session_id"]), scope)
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
        # The dummy hash for unknown e-mails costs one bcrypt: made now, on a thread, not in the first such request.
        await anyio.to_thread.run_sync(auth.dummy_hash)
        try:
            yield
        finally:
            await state.pool.close()

    app = Starlette(
        routes=[
            Route("/rest/v1/rpc/{name}", rpc, methods=["POST"]),
            Route("/auth/v1/token", token, methods=["POST"]),
            Route("/auth/v1/logout", logout, methods=["POST"]),
            Route("/auth/v1/user", get_user, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
        # Big answers (feed pages) are compressed for clients that ask, as Supabase's gateway can: the shared office
        # link is what a first sync waits for (issue 12). zstd when the client takes it (compress.py: 3% fewer bytes
        # than gzip for 37% of its CPU), else gzip. gzip level 6 on a lead_feed page: 39.5 B/lead for 30 ms of CPU
        # per 5,000 rows; level 5 40.8 B for 18 ms, level 9 38.2 B for 165 ms.
        middleware=[
            Middleware(GZipMiddleware, minimum_size=4096, compresslevel=6),
            Middleware(ZstdMiddleware, minimum_size=4096, level=7),
        ],
    )
    app.state.server = state
    return app
