"""A sign-in flood against the reference server, next to a CRE creating leads (red-team finding 8).

    .venv/bin/python bench/bench_signin.py                        # this checkout's crm-server
    .venv/bin/python bench/bench_signin.py --server-exe OTHER     # A/B: another crm-server (e.g. main's, before)

Phases, each on the same demo server:

1. **quiet** — sequential `create_lead` calls by cre1 for `--seconds`: p50/p95/max.
2. **timing** — one wrong password for each of the 12 demo users and for 12 unknown e-mails, sequentially, from a
   source address of their own: the medians show whether the answer time tells which e-mails have accounts.
3. **flood, one address** — `--flooders` threads (64) sending wrong passwords for cre1 from 127.0.0.1, as fast as
   answered; meanwhile the same `create_lead` loop, and one right-password sign-in from another address (127.0.0.2).
4. **flood, many addresses** — the same with each flooder on its own loopback address (127.0.1.N) and a new e-mail
   for each guess, so no limit stops them (each address may fail 30 times) and the bcrypt pool is what keeps the
   RPCs going.

Prints the figures and writes them to bench/out/bench_signin.json. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import OUT, PASSWORD, Server, crm_server_exe, fmt_lat, lat_summary, say

DEMO_USERS = [f"cre{i}@demo.local" for i in (1, 2, 3)] + ["lead@demo.local", "admin@demo.local"]
DEMO_USERS += [f"ps{i}@demo.local" for i in range(1, 8)]


def lead(n: int) -> dict[str, Any]:
    return {
        "client_ref": str(uuid.uuid4()),
        "customer_name": "Ravi Kumar",
        "phone": f"+9170{n:08d}",
        "source": "GOOGLE",
        "sub_source": "Google Know",
        "lead_status": "Interested",
        "follow_up_date": time.strftime("%Y-%m-%d", time.localtime(time.time() + 2 * 86400)),
    }


def client(server: Server, address: str = "127.0.0.1") -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, headers={"apikey": server.anon_key}, timeout=60, transport=transport)


def sign_in(http: httpx.Client, email: str, password: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    r = http.post("/auth/v1/token", params={"grant_type": "password"}, json={"email": email, "password": password})
    return r.status_code, (time.perf_counter() - t0) * 1000


class Creator(threading.Thread):
    """Sequential create_lead calls until stopped; latencies in ms."""

    counter = 0

    def __init__(self, server: Server, token: str) -> None:
        super().__init__(daemon=True)
        self.http = client(server)
        self.token = token
        self.stop = threading.Event()
        self.ms: list[float] = []
        self.errors = 0

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        while not self.stop.is_set():
            Creator.counter += 1
            t0 = time.perf_counter()
            r = self.http.post("/rest/v1/rpc/create_lead", json={"lead": lead(Creator.counter)}, headers=headers)
            self.ms.append((time.perf_counter() - t0) * 1000)
            self.errors += r.status_code != 200
        self.http.close()


def creates_for(server: Server, token: str, seconds: float) -> dict[str, Any]:
    creator = Creator(server, token)
    creator.start()
    time.sleep(seconds)
    creator.stop.set()
    creator.join()
    return {**lat_summary(creator.ms), "errors": creator.errors}


def flood(server: Server, token: str, flooders: int, seconds: float, many_addresses: bool) -> dict[str, Any]:
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def attacker(i: int) -> None:
        address = f"127.0.1.{i + 1}" if many_addresses else "127.0.0.1"
        with client(server, address) as http:
            n = 0
            while not stop.is_set():
                # Many addresses: a distributed attack also spreads over e-mails, so no limit stops it.
                email = f"guess{i}-{n}@demo.local" if many_addresses else "cre1@demo.local"
                status, _ = sign_in(http, email, f"guess-{i}-{n}")
                n += 1
                with lock:
                    statuses[status] += 1

    threads = [threading.Thread(target=attacker, args=(i,), daemon=True) for i in range(flooders)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # let the flood build up
    with lock:
        statuses.clear()
    t0 = time.perf_counter()
    creator = Creator(server, token)
    creator.start()
    time.sleep(seconds / 2)
    with client(server, "127.0.0.2") as http:
        legit_status, legit_ms = sign_in(http, "cre2@demo.local", PASSWORD)
    time.sleep(seconds / 2)
    creator.stop.set()
    creator.join()
    elapsed = time.perf_counter() - t0
    stop.set()
    for t in threads:
        t.join(timeout=120)
    with lock:
        counts = dict(statuses)
    return {
        "create_lead": {**lat_summary(creator.ms), "errors": creator.errors},
        "flood_answers": counts,
        "wrong_passwords_checked_per_s": round(counts.get(400, 0) / elapsed, 1),
        "legit_sign_in": {"status": legit_status, "ms": round(legit_ms, 1)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server-exe", default=None, help="crm-server to run (default: this checkout's)")
    parser.add_argument("--flooders", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each measured phase")
    parser.add_argument("--label", default="this checkout")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"label": args.label, "flooders": args.flooders}
    with tempfile.TemporaryDirectory(prefix="bench-signin-") as tmp:
        Path(tmp).chmod(0o755)  # pgserver runs PostgreSQL as its own user when started as root
        server = Server(args.server_exe or crm_server_exe(), Path(tmp) / "pgdata")
        server.start()
        try:
            token = server.sign_in("cre1@demo.local")["access_token"]
            say(f"[{args.label}] quiet: create_lead ...")
            report["quiet"] = creates_for(server, token, args.seconds)
            say(f"  {fmt_lat(report['quiet'])}")

            known, unknown = [], []
            with client(server, "127.0.0.3") as http:
                for email in DEMO_USERS:
                    known.append(sign_in(http, email, "not-the-password")[1])
                    unknown.append(sign_in(http, f"nobody-{uuid.uuid4().hex[:8]}@demo.local", "x")[1])
            report["timing"] = {
                "known_email_wrong_password": lat_summary(known),
                "unknown_email": lat_summary(unknown),
            }
            say(
                f"  wrong password, known e-mail p50 {report['timing']['known_email_wrong_password']['p50_ms']:.1f} ms;"
                f" unknown e-mail p50 {report['timing']['unknown_email']['p50_ms']:.1f} ms"
            )
            for name, many in (("flood_one_address", False), ("flood_many_addresses", True)):
                say(f"[{args.label}] {name}: {args.flooders} flooders ...")
                report[name] = flood(server, token, args.flooders, args.seconds, many)
                r = report[name]
                say(f"  create_lead {fmt_lat(r['create_lead'])}, errors {r['create_lead']['errors']}")
                say(
                    f"  flood answers {r['flood_answers']}, {r['wrong_passwords_checked_per_s']} wrong passwords"
                    f" checked/s; a right sign-in from elsewhere: HTTP {r['legit_sign_in']['status']}"
                    f" in {r['legit_sign_in']['ms']} ms"
                )
        finally:
            server.stop()
    (OUT / "bench_signin.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    say("")
    say(f"| {args.label} | quiet | flood, one address | flood, 64 addresses |")
    say("|---|---|---|---|")
    q, one, many = report["quiet"], report["flood_one_address"], report["flood_many_addresses"]
    say(
        f"| create_lead p50 / p95 ms | {q['p50_ms']:.1f} / {q['p95_ms']:.1f} | {one['create_lead']['p50_ms']:.1f} /"
        f" {one['create_lead']['p95_ms']:.1f} | {many['create_lead']['p50_ms']:.1f} /"
        f" {many['create_lead']['p95_ms']:.1f} |"
    )
    say(f"| right sign-in during the flood | - | {one['legit_sign_in']['ms']} ms | {many['legit_sign_in']['ms']} ms |")
    say(
        f"| wrong passwords checked/s | - | {one['wrong_passwords_checked_per_s']} |"
        f" {many['wrong_passwords_checked_per_s']} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
