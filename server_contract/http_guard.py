"""uvicorn for the reference server, guarded against slow and idle clients.

uvicorn times out idle keep-alive connections, but not a request whose headers never finish, and it accepts
connections until the process runs out of file descriptors, at which point /health cannot connect either (the
red-team's 1,100 half-sent requests under `ulimit -n 1024`). The protocol below closes a connection whose headers
take longer than `header_timeout`, and past `max_connections` it makes room by closing the oldest connection that has
no request in progress (a half-sent or idle one). The body has its own timeout in app.py."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette

# uvicorn times out idle keep-alive connections, but not a request whose headers never finish, and it accepts
# connections until the process runs out of file descriptors, at which point /health cannot connect either. The
# protocol below closes a connection whose headers take longer than `header_timeout`, and past `max_connections` it
# makes room by closing the oldest connection that has no request in progress (a half-sent or idle one).

HEADER_TIMEOUT = 10.0
MAX_CONNECTIONS = 1000
# File descriptors kept for the database pool, the log, the mail worker and the listening socket.
_FD_RESERVE = 64


def _guarded_protocol(header_timeout: float, max_connections: int) -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _headers_done = False
        _opened_at = 0.0
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._opened_at = self.loop.time()
            self._arm(header_timeout)
            if len(self.connections) > max_connections:
                self._make_room()

        def _arm(self, delay: float) -> None:
            self._disarm()
            self._headers_done = False
            self._header_timer = self.loop.call_later(delay, self._on_header_timeout)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _on_header_timeout(self) -> None:
            self._header_timer = None
            if not self._headers_done and not self.transport.is_closing():
                self.transport.close()

        def _make_room(self) -> None:
            idle = [c for c in self.connections if isinstance(c, GuardedHttpToolsProtocol) and not c._headers_done]
            victim = min(idle, key=lambda c: c._opened_at, default=self)
            victim.transport.close()

        def on_headers_complete(self) -> None:
            self._headers_done = True
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                # The next request on this keep-alive connection gets the idle time plus the header time.
                self._opened_at = self.loop.time()
                self._arm(self.timeout_keep_alive + header_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return GuardedHttpToolsProtocol


def connection_cap(requested: int = MAX_CONNECTIONS) -> int:
    """`requested`, lowered to what the process's file-descriptor limit leaves room for."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    return max(16, min(requested, soft - _FD_RESERVE))


def uvicorn_config(
    app: Starlette,
    log_level: str = "warning",
    header_timeout: float = HEADER_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        http=_guarded_protocol(header_timeout, connection_cap(max_connections)),
        timeout_keep_alive=5,
    )
