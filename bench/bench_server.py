"""Server benchmark: the reference server at a realistic lead-table size, next to the replaced system's pattern.

    .venv/bin/python bench/bench_server.py [--leads 1000000] [--data-dir bench/out/pgdata] [--quick]

Why: DESIGN.md promises that one lead is one round trip and one transaction, that the dashboard's cost does not grow
with the lead table, and that the cache feed streams fast. This prints the figures behind those promises, at 1M leads,
beside the goals, and beside an emulation of the system we replace (two unindexed duplicate scans, a UID probe loop
and separate inserts, one round trip each). It is a benchmark, not a test: it asserts nothing, it reports.

Phases (each printed as it finishes, then a summary table; everything also lands in bench/out/bench_server.json):
  1. seed    `crm-server seed` up to --leads rows (skipped when --data-dir already holds that many)
  2. create  sequential create_lead over loopback HTTP (keep-alive), ~10 % of phones already known
  3. legacy  the replaced pattern against legacy_* copies of the tables, one psycopg round trip per step
  4. load    50 concurrent clients (asyncio + httpx) creating distinct leads for a fixed time
  5. dash    dashboard_summary over 30 days, all branches and one branch
  6. feed    lead_changes read from change id 0 to the end, over HTTP and in the database

The machine running this is usually small (2 cores here): client, uvicorn and PostgreSQL share the CPUs, so the
load figures are lower bounds for a server that has a machine to itself. CPU seconds per process group are printed
for the load phase so the split is visible.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psutil
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
DESK_TZ = ZoneInfo("Asia/Kolkata")
PASSWORD = "demo1234"

SOURCE_PAIRS = [
    ("GOOGLE", "Google Know"),
    ("META", "Meta Know"),
    ("BTL", "BTL Know"),
    ("OEM", "Web"),
    ("OEM", "Tele"),
]
# The replaced system's UID letters for those pairs (domain.md: G Google, M Meta, B BTL, X other, T Tele).
UID_LETTER = {"Google Know": "G", "Meta Know": "M", "BTL Know": "B", "Web": "X", "Tele": "T"}
NAMES = ["Ravi Kumar", "Ananya Reddy", "Mohammed Imran", "Sravani Goud", "Pavan Naidu", "Fatima Shaik", "Arjun Rao"]
MODELS = ["450 X (2.9 kWh)", "Rizta Z Duo (3.7 kWh)", "Rizta S Mono (2.9 kWh)", None]

GOALS = {
    "create_p50_ms": 10.0,
    "speedup_vs_legacy": 10.0,
    "load_leads_per_s": 500.0,
    "load_errors": 0,
    "dashboard_p50_ms": 50.0,
    "feed_db_rows_per_s": 100_000.0,
}


# ---------------------------------------------------------------------------------------------------------- helpers


def pct(values: list[float], q: float) -> float:
    """Percentile q (0-100) by linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def lat_summary(ms: list[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 50), 2),
        "p95_ms": round(pct(ms, 95), 2),
        "p99_ms": round(pct(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else float("nan"),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
    }


def fmt_lat(s: dict[str, float]) -> str:
    return f"p50 {s['p50_ms']:.2f}  p95 {s['p95_ms']:.2f}  p99 {s['p99_ms']:.2f}  max {s['max_ms']:.2f} ms (n={s['n']})"


def say(msg: str) -> None:
    print(msg, flush=True)


class PhoneMaker:
    """Fresh random Indian mobiles (E.164), never the same twice in a run. The seed's numbers are spread over the
    same 6000000000-9999999999 range, so about n_leads / 4e9 of these (0.025 % at 1M) already exist: noise."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def __call__(self) -> str:
        while True:
            phone = f"+91{self._rng.randint(6_000_000_000, 9_999_999_999)}"
            if phone not in self._used:
                self._used.add(phone)
                return phone


def today_ist() -> date:
    return datetime.now(DESK_TZ).date()


def make_lead(rng: random.Random, phone: str, *, with_ps: bool) -> dict[str, Any]:
    source, sub = rng.choice(SOURCE_PAIRS)
    lead: dict[str, Any] = {
        "client_ref": str(uuid.uuid4()),
        "customer_name": rng.choice(NAMES),
        "phone": phone,
        "source": source,
        "sub_source": sub,
        "lead_status": "Interested",
        "lead_category": rng.choice(["Hot", "Warm", "Cold"]),
        "model_interested": rng.choice(MODELS),
        "branch": "SOMAJIGUDA",
        "final_status": "Pending",
        "follow_up_date": (today_ist() + timedelta(days=rng.randint(1, 5))).isoformat(),
    }
    if with_ps:
        lead["ps_email"] = "ps1@demo.local"  # ps1 works at SOMAJIGUDA
    return lead


# ---------------------------------------------------------------------------------------------- cluster and server


def crm_server_exe() -> str:
    here = Path(sys.executable).with_name("crm-server")
    return str(here if here.exists() else ROOT / ".venv" / "bin" / "crm-server")


def count_leads(admin_uri: str) -> int:
    """Leads already in the desk's database (0 when the database or the table is not there yet)."""
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = 'crm'").fetchone():
            return 0
    with psycopg.connect(admin_uri, dbname="crm", autocommit=True) as conn:
        if conn.execute("select to_regclass('public.leads')").fetchone() == (None,):
            return 0
        row = conn.execute("select count(*) from leads").fetchone()
        return int(row[0]) if row else 0


def seed(exe: str, data_dir: Path, admin_uri: str, want: int) -> dict[str, Any]:
    have = count_leads(admin_uri)
    sidecar = data_dir.with_name(data_dir.name + ".seed.json")
    if have >= want:
        last = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else None
        say(f"[seed] reusing {data_dir}: {have:,} leads already (>= {want:,})")
        return {"reused": True, "leads_before": have, "last_seed": last}
    todo = want - have
    say(f"[seed] {have:,} leads in {data_dir}; seeding {todo:,} more with `crm-server seed` ...")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [exe, "seed", "--leads", str(todo), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=None,  # progress lines go straight to the terminal
        text=True,
        check=True,
    )
    wall = time.perf_counter() - t0
    reported = json.loads(proc.stdout.strip().splitlines()[-1])
    result = {
        "reused": False,
        "leads_before": have,
        "requested": todo,
        "inserted": reported["inserted"],
        "seed_seconds": reported["seconds"],
        "seed_rows_per_s": reported["rows_per_second"],
        "wall_seconds_incl_startup": round(wall, 2),
    }
    sidecar.write_text(json.dumps(result), encoding="utf-8")
    say(
        f"[seed] {reported['inserted']:,} leads in {reported['seconds']:.1f} s = {reported['rows_per_second']:,} rows/s"
        f" ({wall:.1f} s wall incl. cluster start/stop)"
    )
    return result


# Tables the seed fills. It only analyzes leads; without a vacuum, autovacuum wakes up on ~1M fresh rows in the
# middle of the first timed phase (seen: load throughput halved) and index-only scans still visit the heap.
DESK_TABLES = ("leads", "lead_sources", "call_attempts", "ps_followups", "lead_requests", "stats_cre", "stats_source",
               "stats_status", "stats_hour")  # fmt: skip


def vacuum_desk(admin_uri: str) -> float:
    """Vacuum + analyze the desk's tables before anything is timed (quick when nothing changed since last time)."""
    t0 = time.perf_counter()
    with psycopg.connect(admin_uri, dbname="crm", autocommit=True) as conn:
        conn.execute(sql.SQL("vacuum (analyze) {}").format(sql.SQL(", ").join(map(sql.Identifier, DESK_TABLES))))
    dt = round(time.perf_counter() - t0, 1)
    say(f"[seed] vacuum analyze of the desk tables: {dt} s (not part of the seed figure)")
    return dt


def start_seeded(exe: str, data_dir: Path, leads: int, report: dict[str, Any]) -> tuple[Any, Server]:
    """Hold the embedded PostgreSQL in `data_dir` for the whole run (pgserver ref-counts its users, so the seed and
    serve children join one running cluster instead of each starting and stopping it), seed it to `leads`, vacuum,
    and start `crm-server serve`. Sets report["seed"]. Undo with `stop_seeded`; on failure here, nothing is left."""
    import pgserver  # the embedded PostgreSQL the reference server uses

    data_dir.mkdir(parents=True, exist_ok=True)
    cluster = pgserver.get_server(data_dir, cleanup_mode="stop")
    server = Server(exe, data_dir)
    try:
        report["seed"] = seed(exe, data_dir, cluster.get_uri(), leads)
        report["seed"]["vacuum_seconds"] = vacuum_desk(cluster.get_uri())
        server.start()
    except BaseException:
        stop_seeded(cluster, server)
        raise
    return cluster, server


def stop_seeded(cluster: Any, server: Server) -> None:
    server.stop()
    cluster.cleanup()


def _die_with_parent() -> None:
    """In the server child: get SIGTERM when the benchmark dies (Linux), so a crashed run does not leave the server
    and its PostgreSQL running."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Server:
    """`crm-server serve` as a child process; stderr goes to bench/out/server.log."""

    def __init__(self, exe: str, data_dir: Path) -> None:
        self.exe = exe
        self.data_dir = data_dir
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.anon_key = ""
        self.database_url = ""

    def start(self) -> None:
        cmd = [
            self.exe,
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            "0",
            "--demo",
        ]
        with (OUT / "server.log").open("a", encoding="utf-8") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=log, text=True, preexec_fn=_die_with_parent
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"server did not start; see {OUT / 'server.log'}")
        info = json.loads(line)
        self.url, self.anon_key, self.database_url = info["url"], info["anon_key"], info["database_url"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server never became healthy")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def sign_in(self, email: str) -> dict[str, Any]:
        r = httpx.post(
            f"{self.url}/auth/v1/token",
            params={"grant_type": "password"},
            headers={"apikey": self.anon_key},
            json={"email": email, "password": PASSWORD},
            timeout=30,
        )
        r.raise_for_status()
        return dict(r.json())

    def headers(self, token: str) -> dict[str, str]:
        return {"apikey": self.anon_key, "Authorization": f"Bearer {token}"}


def jwt_claims(token: str) -> dict[str, Any]:
    """The token's payload, unverified: only to become the same user over psycopg, as app.py's _BECOME does."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


@contextmanager
def as_user(conn: psycopg.Connection[Any], claims: dict[str, Any]) -> Iterator[None]:
    """One transaction as the signed-in user, exactly like the reference server's RPC path (minus HTTP)."""
    with conn.transaction():
        conn.execute(
            "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
            (claims["role"], json.dumps(claims)),
        )
        yield


class CpuMeter:
    """CPU seconds used by this process, the uvicorn process and the PostgreSQL processes between start and stop.
    This process's figure includes its children that ended meanwhile: a long sync's decoding processes (sync.py)."""

    def __init__(self, server_pid: int, postmaster_pid: int | None) -> None:
        self._server = psutil.Process(server_pid)
        self._postmaster = psutil.Process(postmaster_pid) if postmaster_pid else None
        self._me = psutil.Process()

    def _pg(self) -> dict[int, float]:
        if self._postmaster is None:
            return {}
        out: dict[int, float] = {}
        for p in [self._postmaster, *self._postmaster.children(recursive=True)]:
            try:
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return out

    @staticmethod
    def _cpu(p: psutil.Process) -> float:
        t = p.cpu_times()
        return t.user + t.system

    def _children(self) -> float:
        t = self._me.cpu_times()
        return t.children_user + t.children_system

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._c0 = (self._cpu(self._me), self._cpu(self._server), self._pg(), self._children())

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._t0
        me, srv, pg, kids = self._cpu(self._me), self._cpu(self._server), self._pg(), self._children()
        pg0 = self._c0[2]
        pg_used = sum(v - pg0.get(pid, 0.0) for pid, v in pg.items())
        decoders = kids - self._c0[3]
        return {
            "wall_s": round(wall, 2),
            "client_cpu_s": round(me - self._c0[0] + decoders, 2),
            "client_decoders_cpu_s": round(decoders, 2),
            "uvicorn_cpu_s": round(srv - self._c0[1], 2),
            "postgres_cpu_s": round(pg_used, 2),
            "cores": psutil.cpu_count() or 0,
        }


class WaitSampler:
    """What the API's database sessions are doing, sampled 20 times a second on a separate connection: the average
    number of sessions per wait event says whether a load is bound by CPU, locks or I/O."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._stop = threading.Event()
        self._counts: Counter[str] = Counter()
        self._samples = 0
        self._thread = threading.Thread(target=self._run, name="wait-sampler", daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "select state, wait_event_type, wait_event from pg_stat_activity"
                    " where usename = 'authenticator' and state <> 'idle'"
                ).fetchall()
                for state, etype, event in rows:
                    key = "on CPU" if etype is None else f"{etype}:{event}"
                    self._counts[f"{state} / {key}"] += 1
                self._samples += 1
                self._stop.wait(0.05)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        n = max(self._samples, 1)
        return {k: round(v / n, 2) for k, v in self._counts.most_common(8)}


# --------------------------------------------------------------------------------------------- 2. create_lead (ours)


def known_phones(conn: psycopg.Connection[Any], n: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """(phone, source, sub_source) of n random existing leads: the "returning caller" share of the workload."""
    row = conn.execute("select max(id) from leads").fetchone()
    top = int(row[0]) if row and row[0] else 0
    ids = [rng.randint(1, top) for _ in range(n * 2)] if top else []
    rows = conn.execute("select phone, source, sub_source from leads where id = any(%s)", (ids,)).fetchall()
    rng.shuffle(rows)
    return [(str(a), str(b), str(c)) for a, b, c in rows[:n]]


def bench_create(
    server: Server, token: str, n: int, rng: random.Random, phones: PhoneMaker, known: list[tuple[str, str, str]]
) -> dict[str, Any]:
    url = f"{server.url}/rest/v1/rpc/create_lead"
    outcomes: Counter[str] = Counter()
    errors: list[str] = []
    with httpx.Client(headers=server.headers(token), timeout=30) as client:
        # HTTP + auth + transaction floor: the cheapest RPC, same path.
        floor: list[float] = []
        for i in range(220):
            t0 = time.perf_counter()
            r = client.post(f"{server.url}/rest/v1/rpc/my_profile", json={})
            r.json()
            if i >= 20:
                floor.append((time.perf_counter() - t0) * 1000)
        lat: list[float] = []
        warmup = 20
        for i in range(warmup + n):
            if known and rng.random() < 0.10:
                phone, _, _ = known.pop()
                lead = make_lead(rng, phone, with_ps=rng.random() < 0.3)
            else:
                lead = make_lead(rng, phones(), with_ps=rng.random() < 0.3)
            t0 = time.perf_counter()
            r = client.post(url, json={"lead": lead})
            body = r.json()
            dt = (time.perf_counter() - t0) * 1000
            if i < warmup:
                continue
            lat.append(dt)
            if r.status_code == 200:
                outcomes[body["outcome"]] += 1
            else:
                errors.append(f"{r.status_code} {str(body)[:200]}")
    return {
        "latency": lat_summary(lat),
        "warmup_calls": warmup,
        "outcomes": dict(outcomes),
        "errors": len(errors),
        "error_samples": errors[:5],
        "http_floor_my_profile": lat_summary(floor),
    }


# ------------------------------------------------------------------------------------------- 3. the legacy pattern

# Their tables, approximately (domain.md): narrower than theirs (their lead_master also carried per-call remark and
# follow-up columns), which only makes their scans cheaper. Primary keys like any Supabase table; no index on the
# phone column (the documented root cause) and, by assumption, none on uid either.
LEGACY_DDL = """
drop table if exists legacy_lead_master, legacy_duplicate_leads, legacy_ps_followup, legacy_call_attempts;
create table legacy_lead_master (
    id bigint generated by default as identity primary key,
    uid text, date date, customer_name text, customer_mobile_number text, source text, sub_source text,
    lead_status text, lead_category text, model_interested text, branch text, cre_name text, ps_name text,
    final_status text, follow_up_date date, first_remark text, first_call_date date, cre_assigned_at timestamptz,
    ps_assigned_at timestamptz, created_at timestamptz default now(), updated_at timestamptz default now()
);
create table legacy_duplicate_leads (
    id bigint generated by default as identity primary key,
    uid text, customer_mobile_number text, customer_name text, original_lead_id bigint,
    source1 text, sub_source1 text, date1 date, source2 text, sub_source2 text, date2 date,
    source3 text, sub_source3 text, date3 date, source4 text, sub_source4 text, date4 date,
    source5 text, sub_source5 text, date5 date, source6 text, sub_source6 text, date6 date,
    source7 text, sub_source7 text, date7 date, source8 text, sub_source8 text, date8 date,
    source9 text, sub_source9 text, date9 date, source10 text, sub_source10 text, date10 date,
    duplicate_count int, created_at timestamptz default now(), updated_at timestamptz default now()
);
create table legacy_ps_followup (
    id bigint generated by default as identity primary key,
    lead_uid text, ps_name text, ps_branch text, customer_name text, customer_mobile_number text, source text,
    cre_name text, lead_category text, model_interested text, final_status text, ps_assigned_at timestamptz,
    created_at timestamptz default now()
);
create table legacy_call_attempts (
    id bigint generated by default as identity primary key,
    uid text, call_no text, attempt int, status text, cre_name text, call_was_recorded boolean,
    follow_up_date date, remarks text, final_status text, created_at timestamptz default now()
);
"""

LEGACY_FILL = [
    """insert into legacy_lead_master (id, uid, date, customer_name, customer_mobile_number, source, sub_source,
            lead_status, lead_category, model_interested, branch, cre_name, ps_name, final_status, follow_up_date,
            first_remark, first_call_date, cre_assigned_at, ps_assigned_at, created_at, updated_at)
       select l.id, l.uid, (l.created_at at time zone 'Asia/Kolkata')::date, l.customer_name,
              right(l.phone, 10), l.source, l.sub_source, l.lead_status, l.lead_category, l.model_interested,
              l.branch, c.full_name, p.full_name, l.final_status, l.follow_up_date, l.remark, l.first_call_date,
              l.cre_assigned_at, l.ps_assigned_at, l.created_at, l.updated_at
         from leads l join profiles c on c.id = l.cre_id left join profiles p on p.id = l.ps_id""",
    # One returning customer in twenty has a duplicate_leads row (a second source), so that scan is not empty.
    """insert into legacy_duplicate_leads (uid, customer_mobile_number, customer_name, original_lead_id,
            source1, sub_source1, date1, source2, sub_source2, date2, duplicate_count)
       select uid, customer_mobile_number, customer_name, id, source, sub_source, date,
              case when source = 'META' then 'GOOGLE' else 'META' end,
              case when source = 'META' then 'Google Know' else 'Meta Know' end, date + 1, 2
         from legacy_lead_master where id % 20 = 0""",
    """insert into legacy_ps_followup (lead_uid, ps_name, ps_branch, customer_name, customer_mobile_number, source,
            cre_name, lead_category, model_interested, final_status, ps_assigned_at)
       select l.uid, p.full_name, f.ps_branch, f.customer_name, right(f.phone, 10), f.source, c.full_name,
              f.lead_category, f.model_interested, f.final_status, f.ps_assigned_at
         from ps_followups f join leads l on l.id = f.lead_id join profiles p on p.id = f.ps_id
         join profiles c on c.id = f.cre_id""",
    """insert into legacy_call_attempts (uid, call_no, attempt, status, cre_name, call_was_recorded, follow_up_date,
            remarks, final_status, created_at)
       select a.uid, 'first', a.attempt, a.lead_status, c.full_name, false, a.follow_up_date, a.remark,
              a.final_status, a.created_at
         from call_attempts a join profiles c on c.id = a.cre_id""",
    "select setval(pg_get_serial_sequence('legacy_lead_master', 'id'), (select max(id) from legacy_lead_master))",
]


class LegacyDesk:
    """The replaced create-lead flow (domain.md, seeds/*.txt), each step one autocommit statement = one round trip.

    Their steps went over HTTPS to PostgREST; here each is a direct local psycopg round trip, which favours them."""

    def __init__(self, conn: psycopg.Connection[Any], cre_name: str) -> None:
        self.conn = conn
        self.cre_name = cre_name
        self.round_trips = 0
        self.probes = 0

    def _q(self, query: str | sql.Composed, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        self.round_trips += 1
        cur = self.conn.execute(query, params)
        return cur.fetchall() if cur.description else []

    def create(self, lead: dict[str, Any]) -> str:
        mobile = lead["phone"][-10:]  # theirs: last 10 digits
        source, sub = lead["source"], lead["sub_source"]
        today = today_ist()
        # 1-2. Duplicate checks, whole rows, no index on the number.
        master = self._q("select * from legacy_lead_master where customer_mobile_number = %s", (mobile,))
        dups = self._q("select * from legacy_duplicate_leads where customer_mobile_number = %s", (mobile,))
        if master:
            row = master[0]
            seen = {(row[5], row[6])}
            slot_free = 1
            if dups:
                d = dups[0]
                for k in range(10):
                    s, ss = d[5 + 3 * k], d[6 + 3 * k]
                    if s is not None:
                        seen.add((s, ss))
                        slot_free = k + 2
            if (source, sub) in seen:
                return "exact_duplicate"
            if dups:
                if slot_free > 10:
                    return "full"
                self._q(
                    sql.SQL(
                        "update legacy_duplicate_leads set {} = %s, {} = %s, {} = %s,"
                        " duplicate_count = duplicate_count + 1, updated_at = now() where id = %s"
                    ).format(*(sql.Identifier(f"{col}{slot_free}") for col in ("source", "sub_source", "date"))),
                    (source, sub, today, dups[0][0]),
                )
            else:
                self._q(
                    "insert into legacy_duplicate_leads (uid, customer_mobile_number, customer_name, original_lead_id,"
                    " source1, sub_source1, date1, source2, sub_source2, date2, duplicate_count)"
                    " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 2)",
                    (row[1], mobile, row[3], row[0], row[5], row[6], row[2], source, sub, today),
                )
            return "added_source"
        # 3. UID probe loop: generate, ask whether it is taken, bump the sequence until it is free.
        seq = 1
        while True:
            uid = f"{UID_LETTER[sub]}A-{mobile[-4:]}-{seq:04d}"
            self.probes += 1
            if not self._q("select uid from legacy_lead_master where uid = %s", (uid,)):
                break
            seq += 1
        # 4. The lead (PostgREST returns the representation).
        first_call = today if lead.get("lead_status") not in (None, "RNR", "Call me Back") else None
        ps_name = "Ravi Teja" if lead.get("ps_email") else None
        self._q(
            "insert into legacy_lead_master (uid, date, customer_name, customer_mobile_number, source, sub_source,"
            " lead_status, lead_category, model_interested, branch, cre_name, ps_name, final_status, follow_up_date,"
            " first_call_date, cre_assigned_at, ps_assigned_at)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(),"
            " case when %s::text is not null then now() end) returning *",
            (
                uid,
                today,
                lead["customer_name"],
                mobile,
                source,
                sub,
                lead.get("lead_status"),
                lead.get("lead_category"),
                lead.get("model_interested"),
                lead.get("branch"),
                self.cre_name,
                ps_name,
                lead.get("final_status", "Pending"),
                lead.get("follow_up_date"),
                first_call,
                ps_name,
            ),
        )
        # 5. Call attempt: last attempt number (another query), then the row.
        if lead.get("lead_status"):
            last = self._q("select max(attempt) from legacy_call_attempts where uid = %s", (uid,))
            attempt = (last[0][0] or 0) + 1
            self._q(
                "insert into legacy_call_attempts (uid, call_no, attempt, status, cre_name, call_was_recorded,"
                " follow_up_date, remarks, final_status) values (%s, 'first', %s, %s, %s, false, %s, %s, %s)",
                (
                    uid,
                    attempt,
                    lead["lead_status"],
                    self.cre_name,
                    lead.get("follow_up_date"),
                    lead.get("remark"),
                    lead.get("final_status", "Pending"),
                ),
            )
        # 6. PS follow-up. (7. their e-mail ran as a background task of the web server: not timed here.)
        if ps_name:
            self._q(
                "insert into legacy_ps_followup (lead_uid, ps_name, ps_branch, customer_name, customer_mobile_number,"
                " source, cre_name, lead_category, model_interested, final_status, ps_assigned_at)"
                " values (%s, %s, 'SOMAJIGUDA', %s, %s, %s, %s, %s, %s, 'Pending', now())",
                (
                    uid,
                    ps_name,
                    lead["customer_name"],
                    mobile,
                    source,
                    self.cre_name,
                    lead.get("lead_category"),
                    lead.get("model_interested"),
                ),
            )
        return "created"


def legacy_setup(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    conn.execute(LEGACY_DDL)
    for stmt in LEGACY_FILL:
        conn.execute(stmt)
    for t in ("legacy_lead_master", "legacy_duplicate_leads", "legacy_ps_followup", "legacy_call_attempts"):
        conn.execute(sql.SQL("vacuum analyze {}").format(sql.Identifier(t)))
    sizes = {
        str(name): int(n)
        for name, n in conn.execute(
            "select relname, n_live_tup from pg_stat_user_tables where relname like 'legacy%%' order by relname"
        ).fetchall()
    }
    mb = conn.execute(
        "select pg_total_relation_size('legacy_lead_master') / 1048576, "
        "pg_total_relation_size('legacy_call_attempts') / 1048576"
    ).fetchone()
    return {
        "setup_seconds": round(time.perf_counter() - t0, 1),
        "rows": sizes,
        "lead_master_mb": mb[0] if mb else 0,
        "call_attempts_mb": mb[1] if mb else 0,
    }


def bench_legacy(
    conn: psycopg.Connection[Any],
    n: int,
    rng: random.Random,
    phones: PhoneMaker,
    known: list[tuple[str, str, str]],
    *,
    warmup: int = 3,
) -> dict[str, Any]:
    desk = LegacyDesk(conn, "Asha Reddy")
    lat: list[float] = []
    outcomes: Counter[str] = Counter()
    trips: list[int] = []
    desk_probes0 = 0
    for i in range(warmup + n):
        if known and rng.random() < 0.10:
            phone, _, _ = known.pop()
        else:
            phone = phones()
        lead = make_lead(rng, phone, with_ps=rng.random() < 0.3)
        rt0 = desk.round_trips
        if i == warmup:
            desk_probes0 = desk.probes
        t0 = time.perf_counter()
        outcome = desk.create(lead)
        dt = (time.perf_counter() - t0) * 1000
        if i < warmup:
            continue
        lat.append(dt)
        outcomes[outcome] += 1
        trips.append(desk.round_trips - rt0)
    return {
        "latency": lat_summary(lat),
        "outcomes": dict(outcomes),
        "round_trips_mean": round(statistics.fmean(trips), 2),
        "uid_probes_per_new_lead": round((desk.probes - desk_probes0) / max(outcomes["created"], 1), 2),
    }


# ------------------------------------------------------------------------------------------------------- 4. load


async def _create_one(
    client: httpx.AsyncClient, url: str, lead: dict[str, Any], errors: list[str], outcomes: Counter[str]
) -> None:
    try:
        r = await client.post(url, json={"lead": lead})
        body = r.json()
        if r.status_code == 200:
            outcomes[body["outcome"]] += 1
        else:
            errors.append(f"{r.status_code} {str(body)[:200]}")
    except (httpx.HTTPError, ValueError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}"[:200])


def bench_load(
    server: Server,
    tokens: list[str],
    clients: int,
    seconds: float,
    rng: random.Random,
    phones: PhoneMaker,
    cpu: CpuMeter,
) -> dict[str, Any]:
    """`clients` independent keep-alive connections (one AsyncClient each, like 50 desks), each sending its next
    lead as soon as the previous answer arrives, for `seconds`. CRE accounts are shared round-robin."""
    url = f"{server.url}/rest/v1/rpc/create_lead"
    lat: list[float] = []
    errors: list[str] = []
    outcomes: Counter[str] = Counter()

    def make() -> dict[str, Any]:
        return make_lead(rng, phones(), with_ps=rng.random() < 0.3)

    async def desk(client: httpx.AsyncClient, deadline: float) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            await _create_one(client, url, make(), errors, outcomes)
            lat.append((time.perf_counter() - t0) * 1000)

    async def main() -> float:
        pool = [httpx.AsyncClient(headers=server.headers(tokens[i % len(tokens)]), timeout=60) for i in range(clients)]
        try:
            # Every connection opened and used once (not counted), so the window measures steady state.
            await asyncio.gather(*(_create_one(c, url, make(), errors, outcomes) for c in pool))
            errors.clear()
            outcomes.clear()
            cpu.start()
            waits.start()
            t0 = time.perf_counter()
            await asyncio.gather(*(desk(c, t0 + seconds) for c in pool))
            return time.perf_counter() - t0
        finally:
            await asyncio.gather(*(c.aclose() for c in pool))

    waits = WaitSampler(server.database_url)
    elapsed = asyncio.run(main())
    used = cpu.stop()
    db_sessions = waits.stop()
    ok = sum(outcomes.values())
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": len(lat),
        "ok": ok,
        "leads_per_s": round(ok / elapsed, 1),
        "errors": len(errors),
        "error_samples": errors[:5],
        "outcomes": dict(outcomes),
        "latency": lat_summary(lat),
        "cpu": used,
        "db_sessions_avg_by_wait": db_sessions,
    }


# -------------------------------------------------------------------------------------------------- 5. dashboard


def bench_dashboard(
    server: Server, token: str, calls: int, conn: psycopg.Connection[Any], branch: str | None
) -> dict[str, Any]:
    today = today_ist()
    body = {"date_from": (today - timedelta(days=29)).isoformat(), "date_to": today.isoformat(), "branch": branch}
    lat: list[float] = []
    errors = 0
    last: dict[str, Any] = {}
    # Contracts that fold stats events at read time do it in the first call after writes: timed on its own.
    has_events = conn.execute("select to_regclass('public.stats_events') is not null").fetchone() == (True,)
    pending = conn.execute("select count(*) from stats_events").fetchone() if has_events else None
    first_ms = float("nan")
    with httpx.Client(headers=server.headers(token), timeout=30) as client:
        for i in range(10 + calls):
            t0 = time.perf_counter()
            r = client.post(f"{server.url}/rest/v1/rpc/dashboard_summary", json=body)
            last = r.json()
            dt = (time.perf_counter() - t0) * 1000
            if r.status_code != 200:
                errors += 1
            if i == 0:
                first_ms = dt
            if i >= 10:
                lat.append(dt)
    # The same call inside the database (no HTTP, no JSON parse), to split server time from transport.
    claims = jwt_claims(token)
    db_lat: list[float] = []
    for _ in range(50):
        t0 = time.perf_counter()
        with as_user(conn, claims):
            conn.execute(
                "select length(dashboard_summary(%s::date, %s::date, %s)::text)",
                (body["date_from"], body["date_to"], branch),
            ).fetchone()
        db_lat.append((time.perf_counter() - t0) * 1000)
    totals = last.get("totals", {}) if isinstance(last, dict) else {}
    return {
        "branch": branch,
        "first_call_ms": round(first_ms, 2),
        "stats_events_folded_by_first_call": int(pending[0]) if pending else None,
        "http": lat_summary(lat),
        "in_db": lat_summary(db_lat),
        "errors": errors,
        "leads_in_window": totals.get("leads"),
        "overdue": (last.get("follow_ups") or {}).get("overdue") if isinstance(last, dict) else None,
    }


# ------------------------------------------------------------------------------------------------------- 6. feed


def bench_feed_http(server: Server, token: str, max_rows: int) -> dict[str, Any]:
    rows = 0
    pages = 0
    nbytes = 0
    cursors: list[int] = []
    since = 0
    page_ms: list[float] = []
    with httpx.Client(headers=server.headers(token), timeout=120) as client:
        t0 = time.perf_counter()
        while True:
            cursors.append(since)
            p0 = time.perf_counter()
            r = client.post(f"{server.url}/rest/v1/rpc/lead_changes", json={"since": since, "max_rows": max_rows})
            r.raise_for_status()
            nbytes += len(r.content)
            page = r.json()
            page_ms.append((time.perf_counter() - p0) * 1000)
            rows += len(page["rows"])
            pages += 1
            since = int(page["next_since"])
            if not page["more"]:
                break
        elapsed = time.perf_counter() - t0
    return {
        "rows": rows,
        "pages": pages,
        "seconds": round(elapsed, 2),
        "rows_per_s": round(rows / elapsed),
        "mb": round(nbytes / 1e6, 1),
        "bytes_per_row": round(nbytes / max(rows, 1)),
        "page": lat_summary(page_ms),
        "_cursors": cursors,
    }


def bench_feed_db(
    conn: psycopg.Connection[Any], claims: dict[str, Any], cursors: list[int], max_rows: int
) -> dict[str, Any]:
    """The same pages as the HTTP read, called inside the database as the same user: the function's own cost plus
    one local round trip, no transfer of the page (only its length comes back)."""
    page_ms: list[float] = []
    chars = 0
    t0 = time.perf_counter()
    for since in cursors:
        p0 = time.perf_counter()
        with as_user(conn, claims):
            row = conn.execute("select length(lead_changes(%s, %s)::text)", (since, max_rows)).fetchone()
        chars += int(row[0]) if row else 0
        page_ms.append((time.perf_counter() - p0) * 1000)
    elapsed = time.perf_counter() - t0
    return {"seconds": round(elapsed, 2), "page": lat_summary(page_ms), "_elapsed": elapsed}


# --------------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leads", type=int, default=1_000_000, help="leads in the table (seeded when fewer)")
    ap.add_argument("--data-dir", type=Path, default=OUT / "pgdata", help="embedded PostgreSQL dir, reused")
    ap.add_argument("--creates", type=int, default=1000, help="sequential create_lead calls")
    ap.add_argument("--legacy", type=int, default=200, help="legacy-pattern creates (slow: full scans)")
    ap.add_argument("--legacy-indexed", type=int, default=100, help="legacy creates with uid indexed (0 = skip)")
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients in the load phase")
    ap.add_argument("--load-seconds", type=float, default=10.0)
    ap.add_argument("--dashboard-calls", type=int, default=200)
    ap.add_argument("--feed-page", type=int, default=20000, help="max_rows per lead_changes page")
    ap.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random seed of the workload (default: fresh each run; a fixed seed on a reused --data-dir replays the"
        " previous run's phones, which then all exist)",
    )
    ap.add_argument("--quick", action="store_true", help="small counts for a smoke run")
    ap.add_argument("--server-exe", default=crm_server_exe(), help="the crm-server to run (e.g. to A/B a fix)")
    ap.add_argument("--json", type=Path, default=OUT / "bench_server.json", help="where the JSON report goes")
    args = ap.parse_args(argv)
    if args.quick:
        args.creates, args.legacy, args.legacy_indexed = 100, 20, 10
        args.load_seconds, args.dashboard_calls = 3.0, 30
    OUT.mkdir(parents=True, exist_ok=True)
    data_dir: Path = args.data_dir.resolve()
    workload_seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    rng = random.Random(workload_seed)
    phones = PhoneMaker(rng)
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "cores": psutil.cpu_count(),
            "logical": psutil.cpu_count(logical=True),
            "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        },
        "goals": GOALS,
        "workload_seed": workload_seed,
        # Other work on the machine skews every figure; the load averages before and after say whether there was any.
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    t_all = time.perf_counter()
    cluster, server = start_seeded(args.server_exe, data_dir, args.leads, report)
    legacy_made = False
    try:
        say(f"[server] {server.url} (log: {OUT / 'server.log'})")
        conn = psycopg.connect(server.database_url, autocommit=True)
        n_leads = conn.execute("select count(*) from leads").fetchone()
        report["leads_at_start"] = int(n_leads[0]) if n_leads else 0
        pg_version = conn.execute("show server_version").fetchone()
        report["postgres"] = {
            "version": pg_version[0] if pg_version else "",
            **{
                k: str(conn.execute(sql.SQL("show {}").format(sql.Identifier(k))).fetchone()[0])  # type: ignore[index]
                for k in ("shared_buffers", "work_mem", "max_parallel_workers_per_gather")
            },
        }
        say(f"[server] {report['leads_at_start']:,} leads; PostgreSQL {report['postgres']}")

        cre_tokens = [str(server.sign_in(f"cre{i}@demo.local")["access_token"]) for i in (1, 2, 3)]
        lead_token = str(server.sign_in("lead@demo.local")["access_token"])

        # Returning callers for both sides, drawn before either side writes: the legacy tables are a snapshot.
        known = known_phones(conn, (args.creates + 20 + args.legacy + args.legacy_indexed + 10) // 5 + 50, rng)
        known_ours, known_legacy = known[: len(known) // 2], known[len(known) // 2 :]

        # 3a. Legacy tables first, so their copy time and I/O are not inside any timed phase.
        say("[legacy] copying leads into legacy_* tables (no index on the phone or uid columns) ...")
        legacy_made = True
        report["legacy_setup"] = legacy_setup(conn)
        say(f"[legacy] ready in {report['legacy_setup']['setup_seconds']} s: {report['legacy_setup']['rows']}")
        conn.execute("checkpoint")

        # 2. Ours, sequential.
        say(f"[create] {args.creates} sequential create_lead calls over HTTP ...")
        report["create"] = bench_create(server, cre_tokens[0], args.creates, rng, phones, known_ours)
        c = report["create"]
        say(f"[create] {fmt_lat(c['latency'])}; outcomes {c['outcomes']}; errors {c['errors']}")
        say(f"[create] HTTP+auth+txn floor (my_profile): {fmt_lat(c['http_floor_my_profile'])}")
        if c["http_floor_my_profile"]["p50_ms"] >= 35:
            say(
                "[create] NOTE: a ~40 ms floor on loopback is Nagle + delayed ACK: the server's accepted sockets lack"
                " TCP_NODELAY (asyncio sets it only on sockets created with proto=IPPROTO_TCP)."
            )

        # 3b. Theirs, sequential.
        say(f"[legacy] {args.legacy} legacy-pattern creates (several full scans each) ...")
        report["legacy"] = bench_legacy(conn, args.legacy, rng, phones, known_legacy)
        lg = report["legacy"]
        say(f"[legacy] {fmt_lat(lg['latency'])}; outcomes {lg['outcomes']}; {lg['round_trips_mean']} round trips")
        if args.legacy_indexed:
            conn.execute("create index on legacy_lead_master (uid)")
            conn.execute("create index on legacy_call_attempts (uid)")
            report["legacy_uid_indexed"] = bench_legacy(conn, args.legacy_indexed, rng, phones, known_legacy)
            li = report["legacy_uid_indexed"]
            say(f"[legacy+uid index] {fmt_lat(li['latency'])}; outcomes {li['outcomes']}")
        conn.execute("drop table legacy_lead_master, legacy_duplicate_leads, legacy_ps_followup, legacy_call_attempts")
        legacy_made = False
        ours, theirs = c["latency"]["p50_ms"], lg["latency"]["p50_ms"]
        floor = c["http_floor_my_profile"]["p50_ms"]
        report["comparison"] = {
            "ours_p50_ms": ours,
            "legacy_p50_ms": theirs,
            "ratio_ours_over_legacy": round(ours / theirs, 4),
            "speedup": round(theirs / ours, 2),
            "speedup_vs_legacy_uid_indexed": (
                round(report["legacy_uid_indexed"]["latency"]["p50_ms"] / ours, 2) if args.legacy_indexed else None
            ),
            # What theirs would cost if each of its round trips paid our loopback HTTP+auth floor (an estimate).
            "legacy_p50_if_each_trip_paid_http_floor_ms": round(theirs + lg["round_trips_mean"] * floor, 1),
        }
        say(f"[compare] {report['comparison']}")

        # 4. Load. (Checkpoint first: the legacy phase wrote ~1 GB of WAL, which would otherwise start one mid-window.)
        conn.execute("checkpoint")
        say(f"[load] {args.clients} concurrent clients for {args.load_seconds:g} s ...")
        cpu = CpuMeter(server.proc.pid if server.proc else 0, cluster.get_pid())
        report["load"] = bench_load(server, cre_tokens, args.clients, args.load_seconds, rng, phones, cpu)
        ld = report["load"]
        say(
            f"[load] {ld['leads_per_s']} leads/s, {ld['errors']} errors, {fmt_lat(ld['latency'])}; cpu {ld['cpu']}"
            + (f"; errors e.g. {ld['error_samples'][:2]}" if ld["errors"] else "")
        )
        say(f"[load] API database sessions, average count by state / wait event: {ld['db_sessions_avg_by_wait']}")

        # 5. Dashboard.
        conn.execute("checkpoint")
        report["dashboard"] = bench_dashboard(server, lead_token, args.dashboard_calls, conn, None)
        report["dashboard_branch"] = bench_dashboard(server, lead_token, args.dashboard_calls, conn, "SOMAJIGUDA")
        for key in ("dashboard", "dashboard_branch"):
            d = report[key]
            say(
                f"[{key}] branch={d['branch']}: HTTP {fmt_lat(d['http'])}; in db p50 {d['in_db']['p50_ms']} ms;"
                f" {d['leads_in_window']} leads in window, overdue {d['overdue']}; first call {d['first_call_ms']} ms"
                f" (folded {d['stats_events_folded_by_first_call']} stats events)"
            )

        # 6. Feed.
        say("[feed] lead_changes from 0 to the end over HTTP ...")
        feed = bench_feed_http(server, cre_tokens[0], args.feed_page)
        cursors = feed.pop("_cursors")
        db = bench_feed_db(conn, jwt_claims(cre_tokens[0]), cursors, args.feed_page)
        db["rows_per_s"] = round(feed["rows"] / db.pop("_elapsed"))
        report["feed_http"], report["feed_db"] = feed, db
        say(
            f"[feed] HTTP: {feed['rows']:,} rows in {feed['pages']} pages, {feed['seconds']} s = {feed['rows_per_s']:,}"
            f" rows/s ({feed['mb']} MB, {feed['bytes_per_row']} B/row); in db: {db['seconds']} s ="
            f" {db['rows_per_s']:,} rows/s (page p50 {db['page']['p50_ms']} ms)"
        )
        conn.close()
    finally:
        if legacy_made:
            with psycopg.connect(server.database_url, autocommit=True) as c2:
                c2.execute(
                    "drop table if exists legacy_lead_master, legacy_duplicate_leads, legacy_ps_followup,"
                    " legacy_call_attempts"
                )
        stop_seeded(cluster, server)
    report["total_seconds"] = round(time.perf_counter() - t_all, 1)
    report["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    summary = summarise(report)
    report["summary"] = summary
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print_summary(summary, report, args.json)
    return 0


def summarise(r: dict[str, Any]) -> list[dict[str, Any]]:
    def row(name: str, value: Any, unit: str, goal: str, ok: bool | None) -> dict[str, Any]:
        return {"metric": name, "value": value, "unit": unit, "goal": goal, "met": ok}

    rows = []
    s = r.get("seed", {})
    if s.get("reused"):
        last = s.get("last_seed") or {}
        rows.append(row("seed (dir reused; its last seed)", last.get("seed_rows_per_s", "-"), "rows/s", "-", None))
    else:
        rows.append(row(f"seed of {s.get('inserted', 0):,} leads", s.get("seed_rows_per_s"), "rows/s", "-", None))
        rows.append(row("seed time", s.get("seed_seconds"), "s", "-", None))
    c = r["create"]["latency"]
    rows.append(row("create_lead p50 (HTTP, seq.)", c["p50_ms"], "ms", "<= 10", c["p50_ms"] <= GOALS["create_p50_ms"]))
    rows.append(row("create_lead p95 / p99 / max", f"{c['p95_ms']} / {c['p99_ms']} / {c['max_ms']}", "ms", "-", None))
    lg = r["legacy"]["latency"]
    rows.append(row("legacy pattern p50 / p99", f"{lg['p50_ms']} / {lg['p99_ms']}", "ms", "-", None))
    cmp_ = r["comparison"]
    rows.append(row("ours / legacy p50", cmp_["ratio_ours_over_legacy"], "ratio", "<= 0.1", cmp_["speedup"] >= 10))
    rows.append(row("speedup vs legacy p50", cmp_["speedup"], "x", ">= 10", cmp_["speedup"] >= 10))
    if cmp_.get("speedup_vs_legacy_uid_indexed") is not None:
        sp = cmp_["speedup_vs_legacy_uid_indexed"]
        rows.append(row("speedup vs legacy (uid indexed)", sp, "x", ">= 10", sp >= 10))
    ld = r["load"]
    rows.append(row(f"load: {ld['clients']} clients", ld["leads_per_s"], "leads/s", ">= 500", ld["leads_per_s"] >= 500))
    rows.append(row("load: errors", ld["errors"], "count", "0", ld["errors"] == 0))
    rows.append(row("load: p50 / p99", f"{ld['latency']['p50_ms']} / {ld['latency']['p99_ms']}", "ms", "-", None))
    for key, label in (("dashboard", "all branches"), ("dashboard_branch", "one branch")):
        d = r[key]["http"]
        rows.append(row(f"dashboard 30 d p50 ({label})", d["p50_ms"], "ms", "<= 50", d["p50_ms"] <= 50))
        rows.append(row(f"dashboard 30 d p99 ({label})", d["p99_ms"], "ms", "-", None))
        rows.append(row(f"dashboard 30 d in-db p50 ({label})", r[key]["in_db"]["p50_ms"], "ms", "-", None))
    folded = r["dashboard"].get("stats_events_folded_by_first_call")
    if folded is not None:
        rows.append(row(f"dashboard 1st call, folds {folded} events", r["dashboard"]["first_call_ms"], "ms", "-", None))
    f, fdb = r["feed_http"], r["feed_db"]
    rows.append(row("lead_changes HTTP end to end", f["rows_per_s"], "rows/s", "-", None))
    rows.append(row("lead_changes in database", fdb["rows_per_s"], "rows/s", ">= 100k", fdb["rows_per_s"] >= 100_000))
    return rows


def print_summary(rows: list[dict[str, Any]], r: dict[str, Any], path: Path) -> None:
    print()
    print(
        f"CRE Desk server benchmark: {r.get('leads_at_start', 0):,} leads at start, {r['machine']['cores']} cores,"
        f" total {r['total_seconds']} s"
    )
    w = max(len(x["metric"]) for x in rows)
    print(f"{'metric':<{w}}  {'value':>26}  {'unit':<8} {'goal':<8} met")
    print("-" * (w + 52))
    for x in rows:
        met = "-" if x["met"] is None else ("yes" if x["met"] else "NO")
        print(f"{x['metric']:<{w}}  {x['value']!s:>26}  {x['unit']:<8} {x['goal']:<8} {met}")
    cpu = r["load"]["cpu"]
    print(
        f"load-phase CPU over {cpu['wall_s']} s on {cpu['cores']} cores: client {cpu['client_cpu_s']} s,"
        f" uvicorn {cpu['uvicorn_cpu_s']} s, postgres {cpu['postgres_cpu_s']} s (the client competes with the server)"
    )
    print("legacy emulation: direct psycopg round trips (no HTTP/PostgREST/auth per step) and no e-mail: favours it.")
    floor = r["create"]["http_floor_my_profile"]["p50_ms"]
    if floor >= 35:
        print(
            f"NOTE: HTTP floor (my_profile) p50 {floor} ms: Nagle + delayed ACK on the server's sockets; every"
            " sequential HTTP figure above carries ~40 ms of it."
        )
    print(f"load average (1/5/15 min) at start {r['loadavg_at_start']}, at end {r['loadavg_at_end']}")
    print(f"written: {path}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
