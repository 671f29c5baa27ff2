"""A link-shaping TCP proxy on loopback: what a call centre's shared office link does to the desks behind it.

    .venv/bin/python bench/shaping_proxy.py --upstream 127.0.0.1:8000 --rtt-ms 50 --mbit 20   # prints its port

Why: every other figure in bench/ is measured over loopback, where a round trip and a byte are free. A call centre
reaches its server over one shared link (tens of Mbit/s) 20-60 ms away. This proxy puts such a link between a client
and a server on one machine:

* a fixed one-way delay (half the RTT) on every byte, both directions;
* a bandwidth cap per direction (the link is full duplex), **shared by every connection through the proxy**: each
  direction is one serial link with a "free at" time; a chunk of n bytes occupies it for n * 8 / rate seconds, in the
  order chunks arrive, so ten desks syncing at once share the 20 Mbit/s as they would on the office link;
* a new connection's first bytes leave one RTT after it was accepted (the TCP handshake a real link would cost; TLS
  is not modelled, so a real HTTPS link pays one or two RTTs more per new connection).

Reading stops while a connection's chunk is still waiting for the link (backpressure through the sockets, like a
router queue that holds one chunk per flow), so a fast sender cannot pile up unbounded memory here. Not modelled: TCP
congestion control, loss, and the window limit of a long fat pipe (at 20 Mbit/s x 50 ms the window needed is 125 KB,
which Linux autotuning reaches quickly).

The upstream may be host:port or a unix socket path (the embedded PostgreSQL listens on a socket only), so the same
proxy carries the desk's HTTP and the replaced system's PostgreSQL round trips. Counts bytes per direction.

Usable in-process (`ShapingProxy(...).start()` runs it on its own event-loop thread), as a script, or as a process of
its own driven from Python (`LinkProcess`: what bench_link.py uses). A benchmark whose client is Python should use the
process: in the client's process the proxy's event loop waits for the GIL behind the client's busy threads, and the
link sits idle meanwhile, which no office link does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHUNK = 16 * 1024  # bytes read per step: 6.5 ms of a 20 Mbit/s link, so flows interleave finely


@dataclass
class Link:
    """One direction of the shared link: serialises chunks at `bits_per_s`, then delays them by `delay_s`."""

    bits_per_s: float
    delay_s: float
    free_at: float = 0.0
    bytes: int = 0

    def reserve(self, n: int, now: float) -> tuple[float, float]:
        """Book the link for n bytes; returns (when the last bit leaves, when it arrives on the far side)."""
        start = max(now, self.free_at)
        done = start + (n * 8 / self.bits_per_s if self.bits_per_s > 0 else 0.0)
        self.free_at = done
        self.bytes += n
        return done, done + self.delay_s


@dataclass
class Stats:
    connections: int = 0
    open_connections: int = 0
    up: Link = field(default_factory=lambda: Link(0, 0))
    down: Link = field(default_factory=lambda: Link(0, 0))


class ShapingProxy:
    """Listens on 127.0.0.1:`port` (0 = any free port) and relays to `upstream` through the shaped link."""

    def __init__(
        self, upstream: str, *, rtt_ms: float, mbit: float, port: int = 0, share_with: ShapingProxy | None = None
    ) -> None:
        """`share_with`: another proxy whose link this one uses too (one office link carrying the desk's HTTP and
        the replaced system's database round trips: both count against the same bandwidth)."""
        self.upstream = upstream
        self.rtt_s = rtt_ms / 1000
        rate = mbit * 1_000_000
        self.stats = (
            share_with.stats if share_with else Stats(up=Link(rate, self.rtt_s / 2), down=Link(rate, self.rtt_s / 2))
        )
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- life cycle (any thread) ----------------------------------------------------------------------------------

    def start(self) -> ShapingProxy:
        self._thread = threading.Thread(target=self._run, name="shaping-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("shaping proxy did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def counters(self) -> tuple[int, int]:
        """(bytes client -> server, bytes server -> client) so far."""
        return self.stats.up.bytes, self.stats.down.bytes

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._server = loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", self.port))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.gather(*self._tasks, return_exceptions=True))
            loop.close()

    # -- relaying (the proxy's loop) ------------------------------------------------------------------------------

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.upstream.startswith("/"):
            return await asyncio.open_unix_connection(self.upstream)
        host, _, port = self.upstream.rpartition(":")
        return await asyncio.open_connection(host.strip("[]"), int(port))

    async def _accept(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.stats.connections += 1
        self.stats.open_connections += 1
        opened = time.monotonic()
        try:
            s_reader, s_writer = await self._open_upstream()
        except OSError:
            c_writer.close()
            self.stats.open_connections -= 1
            self._tasks.discard(task)
            return
        # The handshake's round trip: nothing the client sends leaves before one RTT after the accept.
        not_before = opened + self.rtt_s
        try:
            await asyncio.gather(
                self._pipe(c_reader, s_writer, self.stats.up, not_before),
                self._pipe(s_reader, c_writer, self.stats.down, not_before),
            )
        finally:
            for w in (c_writer, s_writer):
                w.close()
            self.stats.open_connections -= 1
            self._tasks.discard(task)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link, not_before: float
    ) -> None:
        """Read chunks, book them on the shared link, deliver each when it arrives; in order, per connection."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(maxsize=8)  # a slow reader stops us

        async def deliver() -> None:
            while True:
                item = await queue.get()
                if item is None:
                    break
                at, data = item
                wait = at - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                try:
                    writer.write(data)
                    await writer.drain()
                except (ConnectionError, OSError):
                    break
            with contextlib.suppress(Exception):
                if writer.can_write_eof():
                    writer.write_eof()

        sender = asyncio.create_task(deliver())
        try:
            while True:
                try:
                    data = await reader.read(CHUNK)
                except (ConnectionError, OSError):
                    break
                if not data:
                    break
                now = max(time.monotonic(), not_before)
                leaves, arrives = link.reserve(len(data), now)
                await queue.put((arrives, data))
                # Hold the next read until this chunk is nearly on the wire: the flow keeps one chunk queued.
                wait = leaves - time.monotonic() - 0.002
                if wait > 0:
                    await asyncio.sleep(wait)
        finally:
            await queue.put(None)
            await sender


class LinkProcess:
    """The shaped link in a child process: one listening port per upstream (`ports`, in order), all through one shared
    link, as `ShapingProxy(..., share_with=...)` in-process. The child answers `counters()` over its stdin/stdout and
    ends when its stdin closes (`stop()`, or this process dying)."""

    def __init__(self, upstreams: Sequence[str], *, rtt_ms: float, mbit: float) -> None:
        self.upstreams = list(upstreams)
        self.rtt_ms = rtt_ms
        self.mbit = mbit
        self.ports: list[int] = []
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def start(self) -> LinkProcess:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--control", "--rtt-ms", str(self.rtt_ms)]
        cmd += ["--mbit", str(self.mbit)]
        for upstream in self.upstreams:
            cmd += ["--upstream", upstream]
        self._proc, ready = start_child(cmd, "link process")
        self.ports = [int(p) for p in ready["ports"]]
        return self

    def url(self, i: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    def counters(self) -> tuple[int, int]:
        """(bytes client -> server, bytes server -> client) so far, over every upstream."""
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        with self._lock:
            proc.stdin.write("counters\n")
            proc.stdin.flush()
            up, down = proc.stdout.readline().split()
        return int(up), int(down)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_child(proc)


def start_child(cmd: list[str], what: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start a bench helper process that prints one JSON line when it is ready and ends when its stdin closes
    (this one, and replay_server.py): (the process, that line)."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(10)
        raise RuntimeError(f"the {what} ended at start (exit {proc.returncode})")
    return proc, json.loads(line)


def stop_child(proc: subprocess.Popen[str]) -> None:
    """End a `start_child` process: close its stdin, wait, kill it after 10 s."""
    with contextlib.suppress(OSError):
        assert proc.stdin is not None
        proc.stdin.close()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _serve_control(proxies: list[ShapingProxy]) -> None:
    """`--control`: the ports as one JSON line, then a line "up down" per "counters" line read; ends at EOF."""
    print(json.dumps({"ports": [p.port for p in proxies]}), flush=True)
    for line in sys.stdin:
        if line.strip() == "counters":
            up, down = proxies[0].counters()
            print(up, down, flush=True)
    for proxy in proxies:
        proxy.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", required=True, action="append",
                    help="host:port or a unix socket path; several: one port each, one shared link")  # fmt: skip
    ap.add_argument("--rtt-ms", type=float, default=50.0)
    ap.add_argument("--mbit", type=float, default=20.0, help="per direction, shared by all connections; 0 = no cap")
    ap.add_argument("--port", type=int, default=0, help="the first upstream's port (the others: any free one)")
    ap.add_argument("--control", action="store_true", help=argparse.SUPPRESS)  # driven by LinkProcess
    args = ap.parse_args(argv)
    proxy = ShapingProxy(args.upstream[0], rtt_ms=args.rtt_ms, mbit=args.mbit, port=args.port).start()
    proxies = [proxy] + [
        ShapingProxy(u, rtt_ms=args.rtt_ms, mbit=args.mbit, share_with=proxy).start() for u in args.upstream[1:]
    ]
    if args.control:
        _serve_control(proxies)
        return 0
    if len(proxies) > 1:
        print(json.dumps({"ports": [p.port for p in proxies]}), file=sys.stderr, flush=True)
    print(f'{{"url": "{proxy.url}", "port": {proxy.port}}}', flush=True)
    try:
        while True:
            time.sleep(5)
            up, down = proxy.counters()
            print(f"up {up:,} B, down {down:,} B, connections {proxy.stats.connections}", file=sys.stderr)
    except KeyboardInterrupt:
        proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
