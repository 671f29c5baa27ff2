"""A first sync's feed pages recorded from the reference server and served again: the desk's side of a first sync
without the server's work on the desk's cores.

    .venv/bin/python bench/replay_server.py --pages bench/out/replay   # prints {"port": N}; ends when stdin closes

Why: bench_link.py runs the reference server, its PostgreSQL and the desk on one machine (2 cores on the dev VM), so a
first sync's figure there is the desk's CPU and the server's CPU (~12-15 CPU-s per 1M leads) sharing two cores. A call
centre's desk PC runs only the desk; its server is 20-60 ms away on CPUs of its own. `record` fetches every page of a
first sync from the real server once (over loopback, one at a time, `lead_feed` at the desk's page size, asking for
zstd as the desk does), keeping each answer's bytes exactly as they came (compressed) and how long the server took
to give it. The server here answers the same requests with the same bytes, after waiting the recorded time
(asyncio.sleep: no CPU), so the desk sees the server's answers and its latency, not its CPU use.

What it is not: a server. It knows one RPC (`lead_feed`), answers only the `since` values it recorded (500 otherwise;
the desk asks for exactly those when the database has not changed since the recording), in the layout recorded
whatever the desk asks (a long pass's first page by row, the others by column, as the desk asks; the desk reads
either), checks no token, and answers requests side by side (the real server's answers to the desk's fetch-ahead
requests shared its 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import zstandard
from shaping_proxy import start_child, stop_child

INDEX = "index.json"


def decoded(raw: bytes, encoding: str) -> bytes:
    if encoding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "identity":
        return raw
    raise ValueError(f"an answer in {encoding!r}")


def record(url: str, anon_key: str, token: str, page_size: int, out: Path, by_column: bool = True) -> dict[str, Any]:
    """Fetch a first sync's pages from the server at `url` into `out` (emptied first); returns the index written.
    `by_column`: the pages after the first by column, as a desk's long pass asks; False: every page by row."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    headers = {"apikey": anon_key, "Authorization": f"Bearer {token}", "Accept-Encoding": "zstd, gzip"}
    pages: list[dict[str, Any]] = []
    since, rows = 0, 0
    with httpx.Client(base_url=url, headers=headers, timeout=120.0) as http:
        while True:
            t0 = time.perf_counter()
            # As a desk's long pass asks: its first page by row, the pages after it by column (migration 008).
            layout = "columns" if by_column and since else "rows"
            ask = {"since": since, "max_rows": page_size, "layout": layout}
            with http.stream("POST", "/rest/v1/rpc/lead_feed", json=ask) as r:
                raw = b"".join(r.iter_raw())
                encoding = r.headers.get("content-encoding", "identity")
                if r.status_code != 200:
                    raise RuntimeError(f"lead_feed since {since}: HTTP {r.status_code}")
            server_ms = (time.perf_counter() - t0) * 1000
            page = json.loads(decoded(raw, encoding))
            name = f"{since}.body"
            (out / name).write_bytes(raw)
            pages.append({"since": since, "file": name, "encoding": encoding, "server_ms": round(server_ms, 2),
                          "layout": layout})  # fmt: skip
            rows += len(page["rows"]) if "rows" in page else len(page["cols"][0])
            if not page["more"]:
                break
            since = int(page["next_since"])
    index = {"page_size": page_size, "rows": rows, "bytes": sum((out / p["file"]).stat().st_size for p in pages)}
    index["pages"] = pages
    (out / INDEX).write_text(json.dumps(index, indent=1), encoding="utf-8")
    return index


class Replay:
    """The recorded answers by `since`, served over HTTP/1.1 with keep-alive (what httpx speaks)."""

    def __init__(self, pages_dir: Path) -> None:
        index = json.loads((pages_dir / INDEX).read_text(encoding="utf-8"))
        self.pages: dict[int, tuple[bytes, str, float]] = {
            int(p["since"]): ((pages_dir / p["file"]).read_bytes(), p["encoding"], float(p["server_ms"]) / 1000)
            for p in index["pages"]
        }

    async def answer(self, path: str, body: bytes) -> tuple[int, bytes, str]:
        if path.split("?", 1)[0] != "/rest/v1/rpc/lead_feed":
            return 404, b'{"message": "only lead_feed is recorded"}', "identity"
        since = int(json.loads(body or b"{}").get("since", -1))
        found = self.pages.get(since)
        if found is None:
            return 500, json.dumps({"message": f"no recorded page starts after {since}"}).encode(), "identity"
        raw, encoding, wait = found
        await asyncio.sleep(wait)
        return 200, raw, encoding

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while line := await reader.readline():
                _method, path, _version = line.decode("latin-1").split(" ", 2)
                length, close = 0, False
                while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    key, _, value = header.decode("latin-1").partition(":")
                    if key.strip().lower() == "content-length":
                        length = int(value)
                    elif key.strip().lower() == "connection" and value.strip().lower() == "close":
                        close = True
                status, payload, encoding = await self.answer(path, await reader.readexactly(length))
                head = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}", "Content-Type: application/json"]
                if encoding != "identity":
                    head.append(f"Content-Encoding: {encoding}")
                head.append(f"Content-Length: {len(payload)}")
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
                await writer.drain()
                if close:
                    break
        writer.close()


async def _serve(pages_dir: Path) -> None:
    replay = Replay(pages_dir)
    server = await asyncio.start_server(replay.connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port, "pages": len(replay.pages)}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin (or dies)
    server.close()


class ReplayProcess:
    """`replay_server.py` as a child process: `port`, `pid`; ends when `stop()` closes its stdin."""

    def __init__(self, pages_dir: Path) -> None:
        self.pages_dir = pages_dir
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> ReplayProcess:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--pages", str(self.pages_dir)]
        self._proc, ready = start_child(cmd, "replay server")
        self.port = int(ready["port"])
        return self

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_child(proc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=Path, required=True, help="a directory `record` wrote")
    args = ap.parse_args(argv)
    asyncio.run(_serve(args.pages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
