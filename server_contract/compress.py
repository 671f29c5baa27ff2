"""Zstandard for big answers, for clients that ask for it (`Accept-Encoding: zstd`); gzip stays for the others.

Why: a first sync of 1M leads is 200 lead_feed pages of 5,000 rows (~0.7 MB each). On those pages, as the server
sent them (dev VM): gzip level 6 spent 7.8 us of server CPU per lead (~8 s per desk's first sync, all of it on the
event loop) for 40.3 B/lead; zstd level 7 spends 2.9 us for 39.1 B/lead (level 1: 0.8 us for 41.1 B; levels 3-5 are
larger than 1 here), and the desk decodes zstd in half gzip's time. Cloudflare, in front of hosted Supabase, offers
zstd too; a desk copes with any of the three (httpx decodes them).

Placed inside GZipMiddleware (which leaves an answer that already has a Content-Encoding alone). Only whole answers
are compressed (the app sends none in parts); a big one is compressed on a worker thread, since zstandard releases
the GIL, so the event loop keeps serving the other desks meanwhile.
"""

from __future__ import annotations

from typing import Any

import anyio
import zstandard
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Above this a body is compressed on a worker thread (~4 ms of zstd level 7 per 256 KB on the dev VM).
_OFF_LOOP = 256 * 1024


def accepts_zstd(accept_encoding: str) -> bool:
    """True when the header lists zstd without q=0 (RFC 9110 12.5.3; `*` is not taken as a promise of zstd)."""
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() != "zstd":
            continue
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


class ZstdMiddleware:
    def __init__(self, app: ASGIApp, minimum_size: int = 4096, level: int = 7) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.level = level

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not accepts_zstd(Headers(scope=scope).get("accept-encoding", "")):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        passing = False  # an answer left as it is (small, already encoded, or sent in parts)

        async def wrapped(message: Message) -> None:
            nonlocal start, passing
            if message["type"] == "http.response.start":
                start = message
                return
            if passing or start is None or message["type"] != "http.response.body":
                await send(message)
                return
            body: bytes = message.get("body", b"")
            headers = MutableHeaders(raw=start["headers"])
            if message.get("more_body", False) or len(body) < self.minimum_size or "content-encoding" in headers:
                passing = True
                await send(start)
                await send(message)
                return
            if len(body) > _OFF_LOOP:
                body = await anyio.to_thread.run_sync(self._compress, body)
            else:
                body = self._compress(body)
            headers["Content-Encoding"] = "zstd"
            headers["Content-Length"] = str(len(body))
            headers.add_vary_header("Accept-Encoding")
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, wrapped)

    def _compress(self, body: bytes) -> Any:
        # A compressor per call: ZstdCompressor objects are not safe to share between threads.
        return zstandard.ZstdCompressor(level=self.level).compress(body)
