"""PostgREST-shaped errors: the body `{"code","message","details","hint"}` and its SQLSTATE -> HTTP status mapping, so
the client classifies answers from the reference server and from Supabase the same way."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

# Exact codes first, then two-character classes (PostgREST's table, the entries this contract can meet).
_EXACT = {
    "23503": 409,  # foreign key violation
    "23505": 409,  # unique violation
    "25006": 405,  # read only transaction
    "P0001": 400,  # raise exception
    "42883": 404,  # undefined function
    "42P01": 404,  # undefined table
    "42501": 403,  # insufficient privilege (401 when the caller is anonymous, see status_for)
    "53400": 500,
    "57014": 500,  # query canceled (statement timeout)
    "40001": 500,  # serialization failure: retryable
    "40P01": 500,  # deadlock: retryable
}
_CLASS = {
    "08": 503,  # connection exception
    "09": 500,
    "0L": 403,
    "0P": 403,
    "22": 400,  # data exception (bad cast, bad JSON text, untranslatable character)
    "23": 400,
    "25": 500,
    "28": 403,
    "2D": 500,
    "38": 500,
    "39": 500,
    "3B": 500,
    "40": 500,
    "53": 503,
    "54": 500,
    "55": 500,
    "57": 500,
    "58": 500,
    "F0": 500,
    "HV": 500,
    "P0": 500,
    "XX": 500,
    "42": 400,
}


def status_for(sqlstate: str, anonymous: bool = False) -> int:
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    if sqlstate == "42501" and anonymous:
        return 401
    if sqlstate in _EXACT:
        return _EXACT[sqlstate]
    return _CLASS.get(sqlstate[:2], 400)


def error_response(
    status: int, code: str, message: str, details: Any = None, hint: Any = None, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps({"code": code, "message": message, "details": details, "hint": hint})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


# GoTrue answers errors in this shape to clients that send `X-Supabase-Api-Version: 2024-01-01` or later (the
# official clients do); without the header, in the older `{code: <status>, error_code, msg}` shape (the desk's).
API_VERSION_2024 = "2024-01-01"


def auth_error(
    status: int, error_code: str, msg: str, api_version: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """GoTrue's error shape for /auth/v1 endpoints, in the version the client asked for."""
    out = {"x-sb-error-code": error_code, **(headers or {})}
    if api_version is not None and _is_date(api_version) and api_version >= API_VERSION_2024:
        body = json.dumps({"code": error_code, "message": msg})
        out["X-Supabase-Api-Version"] = API_VERSION_2024
    else:
        body = json.dumps({"code": status, "error_code": error_code, "msg": msg})
    return Response(body, status_code=status, media_type="application/json", headers=out)


def _is_date(text: str) -> bool:
    parts = text.split("-")
    return len(parts) == 3 and all(p.isdigit() for p in parts) and [len(p) for p in parts] == [4, 2, 2]


def from_database_error(sqlstate: str, message: str, detail: str | None, hint: str | None, anonymous: bool) -> Response:
    """Turn a PostgreSQL error into the answer PostgREST would give.

    `RAISE SQLSTATE 'PGRST'` carries the whole body in the message and `{"status", "headers"}` in the detail."""
    if sqlstate == "PGRST":
        try:
            body = json.loads(message)
            meta = json.loads(detail or "{}")
            status = int(meta.get("status", 400))
            headers = {str(k): str(v) for k, v in (meta.get("headers") or {}).items()}
            return error_response(
                status, str(body.get("code")), str(body.get("message")), body.get("details"), body.get("hint"), headers
            )
        except (ValueError, TypeError, AttributeError):
            return error_response(500, "PGRST121", "Could not parse the RAISE SQLSTATE 'PGRST' error.", message)
    return error_response(status_for(sqlstate, anonymous), sqlstate, message, detail, hint)
