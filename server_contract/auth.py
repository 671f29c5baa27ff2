"""Tokens and passwords of the reference server, shaped like Supabase's GoTrue.

Access tokens are HS256 JWTs (`role: authenticated`, `sub` = the user's id) valid for `access_ttl` seconds. Refresh
tokens are random, stored only as a SHA-256 hash, and rotate: each refresh revokes the token it used and hands out a
new one in the same session. Like GoTrue (`refresh_token_reuse_interval`, 10 s by default), a token presented again
within REUSE_INTERVAL of its rotation gets the token that rotation issued, so a client whose answer was lost on the
way (a timeout, a dropped connection) stays signed in. Presented later, reuse is treated as theft and revokes the
whole session.

The answers carry GoTrue's user object (`id, aud, role, email, email_confirmed_at, phone, app_metadata, user_metadata,
identities, created_at, updated_at, is_anonymous, ...`), which the official Supabase clients validate."""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import bcrypt
import jwt
import psycopg

ISSUER = "cre-desk-reference"
ALGORITHM = "HS256"
# Long-lived like Supabase's anon key: it identifies the project, not a person.
ANON_KEY_TTL = 10 * 365 * 24 * 3600
# PostgREST accepts tokens whose exp/iat/nbf are off by up to 30 s (servers behind a load balancer disagree on time).
JWT_LEEWAY = 30
# GoTrue's GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL default.
REUSE_INTERVAL = 10
# Revoked refresh tokens older than this are deleted (GoTrue's cleanup keeps them 24 h too), a few at a time.
PRUNE_AFTER_HOURS = 24
PRUNE_BATCH = 100
BCRYPT_ROUNDS = 10


class AuthFailure(Exception):
    """A refused sign-in or refresh; `error_code` is GoTrue's."""

    def __init__(self, status: int, error_code: str, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.error_code = error_code
        self.msg = msg


def hash_password(password: str, rounds: int = BCRYPT_ROUNDS) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def check_password(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:  # a malformed stored hash, or a password bcrypt cannot take
        return False


_dummy_hash: str | None = None
_dummy_lock = threading.Lock()


def dummy_hash() -> str:
    """A hash of a random password at the users' cost, checked for an unknown e-mail so that it takes as long as a
    wrong password for a known one: the answer time must not tell which e-mails have accounts."""
    global _dummy_hash
    with _dummy_lock:
        if _dummy_hash is None:
            _dummy_hash = hash_password(secrets.token_urlsafe(16))
        return _dummy_hash


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _seal(parent: str, child: str) -> bytes:
    """The child token XORed with a key stream derived from the parent token (which is stored only as a hash). Only
    the holder of the parent can read it back, which is exactly who may have it back within the reuse interval."""
    raw = child.encode()
    stream = hashlib.shake_256(b"cre-desk successor|" + parent.encode()).digest(len(raw))
    return bytes(a ^ b for a, b in zip(raw, stream, strict=True))


def _unseal(parent: str, sealed: bytes) -> str | None:
    stream = hashlib.shake_256(b"cre-desk successor|" + parent.encode()).digest(len(sealed))
    try:
        return bytes(a ^ b for a, b in zip(sealed, stream, strict=True)).decode("ascii")
    except UnicodeDecodeError:
        return None


def load_or_create_secret(conn: psycopg.Connection[Any]) -> str:
    """The signing secret lives in the database so that several servers behind a load balancer agree on it."""
    conn.execute(
        "insert into auth.server_secrets (name, value) values ('jwt_secret', %s) on conflict do nothing",
        (secrets.token_urlsafe(48),),
    )
    row = conn.execute("select value from auth.server_secrets where name = 'jwt_secret'").fetchone()
    assert row is not None
    return str(row[0])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass
class User:
    """The columns of auth.users the answers need (present in the reference schema and in GoTrue's)."""

    id: uuid.UUID
    email: str
    created_at: datetime
    updated_at: datetime
    last_sign_in_at: datetime | None = None
    app_meta: dict[str, Any] = field(default_factory=dict)
    user_meta: dict[str, Any] = field(default_factory=dict)

    def gotrue(self) -> dict[str, Any]:
        """GoTrue's `models.User` as JSON. The reference server has no confirmation flow: a user is confirmed from
        creation, and its only identity is the e-mail one (GoTrue gives that identity the user's id)."""
        uid = str(self.id)
        identity = {
            "identity_id": str(uuid.uuid5(self.id, "email")),
            "id": uid,
            "user_id": uid,
            "identity_data": {"sub": uid, "email": self.email, "email_verified": True, "phone_verified": False},
            "provider": "email",
            "last_sign_in_at": _iso(self.last_sign_in_at or self.created_at),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "email": self.email,
        }
        answer: dict[str, Any] = {
            "id": uid,
            "aud": "authenticated",
            "role": "authenticated",
            "email": self.email,
            "email_confirmed_at": _iso(self.created_at),
            "phone": "",
            "confirmed_at": _iso(self.created_at),
            "app_metadata": {**self.app_meta, "provider": "email", "providers": ["email"]},
            "user_metadata": dict(self.user_meta),
            "identities": [identity],
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "is_anonymous": False,
        }
        if self.last_sign_in_at is not None:
            answer["last_sign_in_at"] = _iso(self.last_sign_in_at)
        return answer


@dataclass
class TokenIssuer:
    secret: str
    access_ttl: int = 3600

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def anon_key(self) -> str:
        now = int(time.time())
        return self.sign({"iss": ISSUER, "role": "anon", "iat": now, "exp": now + ANON_KEY_TTL})

    def verify(self, token: str) -> dict[str, Any]:
        """Claims of a valid token; raises jwt.InvalidTokenError (expired, forged, malformed)."""
        claims: dict[str, Any] = jwt.decode(
            token,
            self.secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "role"], "verify_aud": False},
            leeway=JWT_LEEWAY,
        )
        if claims.get("role") not in ("anon", "authenticated", "service_role"):
            raise jwt.InvalidTokenError("unknown role")
        if claims["role"] == "authenticated" and (claims.get("aud") != "authenticated" or not claims.get("sub")):
            raise jwt.InvalidTokenError("a user token needs aud=authenticated and a subject")
        return claims

    def session_answer(self, user: User, session_id: str, refresh_token: str) -> dict[str, Any]:
        now = int(time.time())
        exp = now + self.access_ttl
        access = self.sign(
            {
                "iss": ISSUER,
                "aud": "authenticated",
                "sub": str(user.id),
                "email": user.email,
                "phone": "",
                "app_metadata": {"provider": "email", "providers": ["email"]},
                "user_metadata": user.user_meta,
                "role": "authenticated",
                "aal": "aal1",
                "session_id": session_id,
                "is_anonymous": False,
                "iat": now,
                "exp": exp,
            }
        )
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self.access_ttl,
            "expires_at": exp,
            "refresh_token": refresh_token,
            "user": user.gotrue(),
        }


class RateLimiter:
    """Token buckets per key (an e-mail, a client address): `burst` attempts at once, then `per_second`.

    A sign-in takes a token before the password is checked and gets it back when the password was right, so only
    failures count, and 64 parallel guesses cannot all get past the check before the first one fails. Single
    event-loop thread: no lock needed. Full buckets are forgotten so the table stays small."""

    def __init__(self, burst: float, per_second: float, clock: Any = time.monotonic) -> None:
        self.burst = burst
        self.per_second = per_second
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.per_second)

    def take(self, key: str) -> float:
        """0 when allowed (a token taken), else the seconds until one is back."""
        now = self._clock()
        level = self._level(key, now)
        if level < 1:
            return math.ceil((1 - level) / self.per_second)
        self._buckets[key] = (level - 1, now)
        if len(self._buckets) > 50_000:
            self._forget_full(now)
        return 0

    def give_back(self, key: str) -> None:
        now = self._clock()
        level = min(self.burst, self._level(key, now) + 1)
        if level >= self.burst:
            self._buckets.pop(key, None)
        else:
            self._buckets[key] = (level, now)

    def _forget_full(self, now: float) -> None:
        for key in [k for k in self._buckets if self._level(k, now) >= self.burst]:
            del self._buckets[key]


# The SQL below runs as service_role on the pool (authenticator switches to it for the transaction).

_USER_COLUMNS = "id, email, created_at, updated_at, last_sign_in_at, raw_app_meta_data, raw_user_meta_data"
_FIND_USER = f"select encrypted_password, {_USER_COLUMNS} from auth.users where email = lower(%s)"
_USER_BY_ID = f"select {_USER_COLUMNS} from auth.users where id = %s"
_INSERT_REFRESH = "insert into auth.refresh_tokens (token_hash, user_id, session_id) values (%s, %s, %s)"
# Rotation in one statement: exactly one caller can flip a token from live to revoked, and the child is born with it.
_ROTATE = """
with used as (
    update auth.refresh_tokens
       set revoked = true, revoked_at = now(), successor = %(sealed)s
     where token_hash = %(hash)s and not revoked
    returning user_id, session_id
)
insert into auth.refresh_tokens (token_hash, user_id, session_id)
select %(child_hash)s, user_id, session_id from used
returning user_id, session_id
"""
_FIND_REVOKED = """
select session_id, user_id, successor, revoked_at > now() - make_interval(secs => %s)
  from auth.refresh_tokens where token_hash = %s
"""
_IS_LIVE = "select not revoked from auth.refresh_tokens where token_hash = %s"
_REVOKE_SESSION = """
update auth.refresh_tokens set revoked = true, revoked_at = now() where session_id = %s and not revoked
"""
_REVOKE_USER = """
update auth.refresh_tokens set revoked = true, revoked_at = now()
 where user_id = %s and not revoked and (%s::uuid is null or session_id <> %s::uuid)
"""
_SESSION_LIVE = "select exists (select from auth.refresh_tokens where session_id = %s and not revoked)"
# GoTrue's cleanup does the same piecemeal: a bounded batch, skipping rows another transaction holds.
_PRUNE = """
delete from auth.refresh_tokens
 where id in (select id from auth.refresh_tokens
               where revoked and revoked_at < now() - make_interval(hours => %s)
               limit %s for update skip locked)
"""


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def _user(row: tuple[Any, ...]) -> User:
    uid, email, created, updated, last_sign_in, app_meta, user_meta = row
    return User(uid, email, created, updated, last_sign_in, dict(app_meta or {}), dict(user_meta or {}))


async def password_grant_lookup(cur: psycopg.AsyncCursor[Any], email: str) -> tuple[User, str] | None:
    row = await (await cur.execute(_FIND_USER, (email,))).fetchone()
    if row is None:
        return None
    return _user(row[1:]), str(row[0] or "")


async def user_by_id(cur: psycopg.AsyncCursor[Any], user_id: str) -> User | None:
    row = await (await cur.execute(_USER_BY_ID, (user_id,))).fetchone()
    return _user(row) if row is not None else None


async def open_session(cur: psycopg.AsyncCursor[Any], user: User) -> tuple[str, str]:
    session_id = str(uuid.uuid4())
    token = new_refresh_token()
    await cur.execute(_INSERT_REFRESH, (_token_hash(token), user.id, session_id))
    row = await (
        await cur.execute("update auth.users set last_sign_in_at = now() where id = %s returning now()", (user.id,))
    ).fetchone()
    if row is not None:
        user.last_sign_in_at = row[0]
    return session_id, token


async def rotate(cur: psycopg.AsyncCursor[Any], token: str) -> tuple[User, str, str]:
    """Use a refresh token; returns (user, session_id, refresh token to hand out).

    A token rotated less than REUSE_INTERVAL ago gets the token its rotation issued (followed down the chain if that
    one was rotated too), not a new one; older reuse revokes the session."""
    child = new_refresh_token()
    row = await (
        await cur.execute(
            _ROTATE, {"sealed": _seal(token, child), "hash": _token_hash(token), "child_hash": _token_hash(child)}
        )
    ).fetchone()
    if row is not None:
        user_id, session_id = row
        issued = child
    else:
        user_id, session_id, issued_or_none = await _reuse(cur, token)
        issued = issued_or_none
    user = await user_by_id(cur, user_id)
    if user is None:
        raise AuthFailure(400, "user_not_found", "User not found")
    return user, str(session_id), issued


async def _reuse(cur: psycopg.AsyncCursor[Any], token: str) -> tuple[Any, Any, str]:
    seen = await (await cur.execute(_FIND_REVOKED, (REUSE_INTERVAL, _token_hash(token)))).fetchone()
    if seen is None:
        raise AuthFailure(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
    session_id, user_id, sealed, within = seen
    current = token
    for _ in range(16):  # a chain this long within 10 s is not a lost answer any more
        if not within or sealed is None:
            break
        successor = _unseal(current, bytes(sealed))
        if successor is None:
            break
        live = await (await cur.execute(_IS_LIVE, (_token_hash(successor),))).fetchone()
        if live is None:
            break
        if live[0]:
            return user_id, session_id, successor
        nxt = await (await cur.execute(_FIND_REVOKED, (REUSE_INTERVAL, _token_hash(successor)))).fetchone()
        if nxt is None:
            break
        current, sealed = successor, nxt[2]
    await cur.execute(_REVOKE_SESSION, (session_id,))
    raise AuthFailure(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used")


async def revoke_session(cur: psycopg.AsyncCursor[Any], session_id: str) -> None:
    await cur.execute(_REVOKE_SESSION, (session_id,))


async def logout(cur: psycopg.AsyncCursor[Any], user_id: str, session_id: str, scope: str) -> None:
    """GoTrue's scopes: `global` (the default) ends every session of the user, `local` this one, `others` the rest."""
    if scope == "local":
        await cur.execute(_REVOKE_SESSION, (session_id,))
    else:
        keep = session_id if scope == "others" else None
        await cur.execute(_REVOKE_USER, (user_id, keep, keep))


async def session_is_live(cur: psycopg.AsyncCursor[Any], session_id: str) -> bool:
    row = await (await cur.execute(_SESSION_LIVE, (session_id,))).fetchone()
    return bool(row and row[0])


async def prune(cur: psycopg.AsyncCursor[Any]) -> int:
    await cur.execute(_PRUNE, (PRUNE_AFTER_HOURS, PRUNE_BATCH))
    return cur.rowcount
