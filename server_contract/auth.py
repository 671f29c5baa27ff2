"""Tokens and passwords of the reference server, shaped like Supabase's GoTrue.

Access tokens are HS256 JWTs (`role: authenticated`, `sub` = the user's id) valid for `access_ttl` seconds. Refresh
tokens are random, stored only as a SHA-256 hash, and single use: each refresh revokes the token it used and hands
out a new one in the same session. Presenting a revoked token again is treated as theft and revokes the whole
session (the client must never run two refreshes at once; see crm_desktop.core.api)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import bcrypt
import jwt
import psycopg

ISSUER = "cre-desk-reference"
ALGORITHM = "HS256"
# Long-lived like Supabase's anon key: it identifies the project, not a person.
ANON_KEY_TTL = 10 * 365 * 24 * 3600


class AuthFailure(Exception):
    """A refused sign-in or refresh; `error_code` is GoTrue's."""

    def __init__(self, status: int, error_code: str, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.error_code = error_code
        self.msg = msg


def hash_password(password: str, rounds: int = 10) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def check_password(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:
        return False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_or_create_secret(conn: psycopg.Connection[Any]) -> str:
    """The signing secret lives in the database so that several servers behind a load balancer agree on it."""
    conn.execute(
        "insert into auth.server_secrets (name, value) values ('jwt_secret', %s) on conflict do nothing",
        (secrets.token_urlsafe(48),),
    )
    row = conn.execute("select value from auth.server_secrets where name = 'jwt_secret'").fetchone()
    assert row is not None
    return str(row[0])


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
            leeway=5,
        )
        if claims.get("role") not in ("anon", "authenticated", "service_role"):
            raise jwt.InvalidTokenError("unknown role")
        if claims["role"] == "authenticated" and (claims.get("aud") != "authenticated" or not claims.get("sub")):
            raise jwt.InvalidTokenError("a user token needs aud=authenticated and a subject")
        return claims

    def session_answer(self, user: dict[str, Any], session_id: str, refresh_token: str) -> dict[str, Any]:
        now = int(time.time())
        exp = now + self.access_ttl
        access = self.sign(
            {
                "iss": ISSUER,
                "aud": "authenticated",
                "sub": str(user["id"]),
                "email": user["email"],
                "role": "authenticated",
                "session_id": session_id,
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
            "user": {"id": str(user["id"]), "email": user["email"], "aud": "authenticated", "role": "authenticated"},
        }


# The SQL below runs as service_role on the pool (authenticator switches to it for the transaction).

_FIND_USER = "select id, email, encrypted_password from auth.users where email = lower(%s)"
_INSERT_REFRESH = "insert into auth.refresh_tokens (token_hash, user_id, session_id) values (%s, %s, %s)"
# Rotation: exactly one caller can flip a token from live to revoked.
_USE_REFRESH = """
update auth.refresh_tokens set revoked = true
 where token_hash = %s and not revoked
returning user_id, session_id
"""
_FIND_REFRESH = "select session_id from auth.refresh_tokens where token_hash = %s"
_REVOKE_SESSION = "update auth.refresh_tokens set revoked = true where session_id = %s and not revoked"
_USER_BY_ID = "select id, email from auth.users where id = %s"


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


async def password_grant_lookup(cur: psycopg.AsyncCursor[Any], email: str) -> tuple[dict[str, Any], str] | None:
    row = await (await cur.execute(_FIND_USER, (email,))).fetchone()
    if row is None:
        return None
    return {"id": row[0], "email": row[1]}, str(row[2])


async def open_session(cur: psycopg.AsyncCursor[Any], user: dict[str, Any]) -> tuple[str, str]:
    session_id = str(uuid.uuid4())
    token = new_refresh_token()
    await cur.execute(_INSERT_REFRESH, (_token_hash(token), user["id"], session_id))
    await cur.execute("update auth.users set last_sign_in_at = now() where id = %s", (user["id"],))
    return session_id, token


async def rotate(cur: psycopg.AsyncCursor[Any], token: str) -> tuple[dict[str, Any], str, str]:
    """Use a refresh token once; returns (user, session_id, new refresh token)."""
    row = await (await cur.execute(_USE_REFRESH, (_token_hash(token),))).fetchone()
    if row is None:
        seen = await (await cur.execute(_FIND_REFRESH, (_token_hash(token),))).fetchone()
        if seen is None:
            raise AuthFailure(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
        await cur.execute(_REVOKE_SESSION, (seen[0],))
        raise AuthFailure(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used")
    user_id, session_id = row
    user_row = await (await cur.execute(_USER_BY_ID, (user_id,))).fetchone()
    if user_row is None:
        raise AuthFailure(400, "user_not_found", "User not found")
    token_new = new_refresh_token()
    await cur.execute(_INSERT_REFRESH, (_token_hash(token_new), user_id, session_id))
    return {"id": user_row[0], "email": user_row[1]}, str(session_id), token_new


async def revoke_session(cur: psycopg.AsyncCursor[Any], session_id: str) -> None:
    await cur.execute(_REVOKE_SESSION, (session_id,))
