"""Lead-life benchmark: log_call, lead_detail, import_leads and the widened feed at 1M leads and >= 3M calls, next to
the replaced system's way of recording a call, in the same run.

    .venv/bin/python bench/bench_lead_life.py [--leads 1000000] [--calls 3000000] [--data-dir bench/out/pgdata]

Why: migration 005 makes every call an appended event that also updates the lead's state in the same transaction,
adds a per-lead history read and a campaign import. Issue 7 sets goals for each (log_call p50 <= 5 ms, lead_detail
p50 <= 10 ms, import >= 5,000 rows/s, the feed still >= 100k rows/s in the database). This prints the figures beside
the goals. It asserts nothing.

Phases:
  1. seed     `crm-server seed` up to --leads (reused when there), then extra calls up to --calls (SQL, recorded)
  2. log      sequential log_call over loopback HTTP on random existing leads (keep-alive, one CRE)
  3. legacy   the replaced system's "update lead" flow on legacy_* copies: select the lead by UID (no index), the
              call-attempt "max + 1" query (no index), insert the attempt, update lead_master, one round trip each
  4. detail   lead_detail over HTTP on random leads
  5. import   10,000 campaign rows in batches of 1,000, 10 % of the numbers already leads
  6. feed     lead_changes from 0 to the end inside the database as the same user (the server-side figure), twice:
              as before (the database also reads the answer back: x -> 'rows', json_array_length), and the answer
              only (its JSON text fetched, as PostgREST sends it; rows counted here, outside the timed part); then
              lead_changes and lead_feed from the rows 007 stores against their 005/006 bodies rendering at read
              time (created in pg_temp from the migration files), alternating on the same pages
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import (  # bench/ is not a package
    LEGACY_DDL,
    LEGACY_FILL,
    OUT,
    Server,
    as_user,
    crm_server_exe,
    fmt_lat,
    jwt_claims,
    lat_summary,
    say,
    start_seeded,
    stop_seeded,
    today_ist,
)

GOALS = {"log_call_p50_ms": 5.0, "lead_detail_p50_ms": 10.0, "import_rows_per_s": 5000.0, "feed_db_rows_per_s": 100e3}
STATUSES = ["RNR", "Call me Back", "Interested", "Booked", "Test Drive", "Busy on another Call", "Not Interested"]

# Extra calls for the seeded leads until the table holds the wanted number: attempts numbered after the lead's own,
# spread over the last week, the lead's counters kept in step. Chunked by lead id so each statement stays small.
_TOP_UP = """
with picked as (
    select l.id, l.uid, l.cre_id, l.call_count, k
      from leads l, generate_series(1, %(per_lead)s) k
     where l.id between %(lo)s and %(hi)s
), ins as (
    insert into call_attempts (lead_id, uid, call_no, attempt, lead_status, cre_id, final_status, created_at,
                               called_at, applied)
    select id, uid, least(call_count + k, 7), call_count + k,
           (array['RNR', 'Call me Back', 'Interested', 'Busy on another Call'])[1 + (id + k) %% 4], cre_id,
           'Pending', now() - make_interval(mins => ((id * 7 + k) %% 10000)::int),
           now() - make_interval(mins => ((id * 7 + k) %% 10000)::int), true
      from picked
    returning lead_id
)
update leads l set call_count = l.call_count + c.n, last_call_at = now()
  from (select lead_id, count(*) as n from ins group by lead_id) c
 where l.id = c.lead_id
"""


def top_up_calls(conn: psycopg.Connection[Any], want: int) -> dict[str, Any]:
    have = int(conn.execute("select count(*) from call_attempts").fetchone()[0])  # type: ignore[index]
    if have >= want:
        say(f"[seed] {have:,} calls already (>= {want:,})")
        return {"calls_before": have, "added": 0}
    top = int(conn.execute("select coalesce(max(id), 0) from leads").fetchone()[0])  # type: ignore[index]
    per_lead = max(1, -(-(want - have) // max(top, 1)))
    say(f"[seed] {have:,} calls; adding about {want - have:,} ({per_lead} per lead) ...")
    t0 = time.perf_counter()
    conn.execute("set synchronous_commit = off")
    chunk = 50_000
    for lo in range(1, top + 1, chunk):
        conn.execute(_TOP_UP, {"per_lead": per_lead, "lo": lo, "hi": lo + chunk - 1})
    conn.execute("vacuum (analyze) call_attempts, leads")
    total = int(conn.execute("select count(*) from call_attempts").fetchone()[0])  # type: ignore[index]
    dt = time.perf_counter() - t0
    say(f"[seed] {total:,} calls now ({dt:.0f} s)")
    return {"calls_before": have, "added": total - have, "seconds": round(dt, 1)}


def random_lead_ids(conn: psycopg.Connection[Any], n: int, rng: random.Random) -> list[int]:
    """n random ids of existing leads (the seed's skipped duplicate phones leave gaps in the ids)."""
    top = int(conn.execute("select max(id) from leads").fetchone()[0])  # type: ignore[index]
    found: list[int] = []
    while len(found) < n:
        drawn = [rng.randint(1, top) for _ in range(2 * (n - len(found)))]
        there = {int(r[0]) for r in conn.execute("select id from leads where id = any(%s)", (drawn,)).fetchall()}
        found += [i for i in drawn if i in there][: n - len(found)]
    return found


def bench_log_call(server: Server, token: str, ids: list[int], rng: random.Random) -> dict[str, Any]:
    lat: list[float] = []
    applied = 0
    with httpx.Client(base_url=server.url, headers=server.headers(token), timeout=30) as http:
        for i, lead_id in enumerate([*ids[:5], *ids]):
            status = rng.choice(STATUSES)
            body = {
                "client_ref": str(uuid.uuid4()),
                "lead_id": lead_id,
                "called_at": datetime.now(UTC).isoformat(),
                "lead_status": status,
                "final_status": "Won" if status == "Booked" and rng.random() < 0.3 else "Pending",
                "follow_up_at": (today_ist() + timedelta(days=rng.randint(1, 7))).isoformat(),
                "remark": "bench call",
            }
            if body["final_status"] == "Won":
                body["follow_up_at"] = None
            t0 = time.perf_counter()
            r = http.post("/rest/v1/rpc/log_call", json={"call": body})
            dt = (time.perf_counter() - t0) * 1000
            if r.status_code != 200:
                raise RuntimeError(f"log_call {r.status_code}: {r.text[:300]}")
            if i >= 5:  # the first five warm the connection and the plan cache
                lat.append(dt)
                applied += bool(r.json()["applied"])
    return {"calls": len(lat), "applied": applied, "latency": lat_summary(lat)}


def bench_legacy_log_call(conn: psycopg.Connection[Any], ids: list[int], rng: random.Random) -> dict[str, Any]:
    """The replaced system's update_lead: each step its own autocommit round trip, no index on uid (seeds/*.txt)."""
    uids = [r[0] for r in conn.execute("select uid from leads where id = any(%s)", (ids,)).fetchall()]
    lat: list[float] = []
    for uid in uids:
        status = rng.choice(STATUSES)
        t0 = time.perf_counter()
        conn.execute("select * from legacy_lead_master where uid = %s", (uid,)).fetchall()
        row = conn.execute("select coalesce(max(attempt), 0) from legacy_call_attempts where uid = %s", (uid,))
        attempt = int(row.fetchone()[0]) + 1  # type: ignore[index]
        conn.execute(
            "insert into legacy_call_attempts (uid, call_no, attempt, status, cre_name, call_was_recorded,"
            " follow_up_date, remarks, final_status) values (%s, %s, %s, %s, 'Asha Reddy', false, %s, 'bench',"
            " 'Pending')",
            (uid, "second", attempt, status, today_ist() + timedelta(days=2)),
        )
        conn.execute(
            "update legacy_lead_master set lead_status = %s, follow_up_date = %s, updated_at = now() where uid = %s",
            (status, today_ist() + timedelta(days=2), uid),
        )
        lat.append((time.perf_counter() - t0) * 1000)
    return {"calls": len(lat), "round_trips": 4, "latency": lat_summary(lat)}


def bench_detail(server: Server, token: str, ids: list[int]) -> dict[str, Any]:
    lat: list[float] = []
    calls: list[int] = []
    with httpx.Client(base_url=server.url, headers=server.headers(token), timeout=30) as http:
        for i, lead_id in enumerate([*ids[:5], *ids]):
            t0 = time.perf_counter()
            r = http.post("/rest/v1/rpc/lead_detail", json={"lead_id": lead_id})
            dt = (time.perf_counter() - t0) * 1000
            if r.status_code != 200:
                raise RuntimeError(f"lead_detail {r.status_code}: {r.text[:300]}")
            if i >= 5:
                lat.append(dt)
                calls.append(len(r.json()["calls"]))
    return {"reads": len(lat), "calls_per_lead_mean": round(statistics.fmean(calls), 2), "latency": lat_summary(lat)}


def bench_import(server: Server, token: str, conn: psycopg.Connection[Any], rows: int, rng: random.Random) -> dict:
    sample = random_lead_ids(conn, rows // 10, rng)
    known = [r[0] for r in conn.execute("select phone from leads where id = any(%s)", (sample,)).fetchall()]
    fresh = {f"+917{rng.randrange(10**9):09d}" for _ in range(rows)}
    phones = (known + sorted(fresh))[:rows]
    rng.shuffle(phones)
    totals = {"created": 0, "added_source": 0, "exact_duplicate": 0, "rejected": 0}
    batch_ms: list[float] = []
    t_all = time.perf_counter()
    with httpx.Client(base_url=server.url, headers=server.headers(token), timeout=60) as http:
        for start in range(0, len(phones), 1000):
            batch = {
                "client_ref": str(uuid.uuid4()),
                "source": "META",
                "sub_source": "Meta Know",
                "branch": "KOMPALLY",
                "assign_to": None,
                "rows": [
                    {"customer_name": f"Campaign {start + i}", "phone": p, "received_at": "2026-11-29"}
                    for i, p in enumerate(phones[start : start + 1000])
                ],
            }
            t0 = time.perf_counter()
            r = http.post("/rest/v1/rpc/import_leads", json={"batch": batch})
            batch_ms.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"import_leads {r.status_code}: {r.text[:300]}")
            a = r.json()
            for k in ("created", "added_source", "exact_duplicate"):
                totals[k] += a[k]
            totals["rejected"] += len(a["rejected"])
    elapsed = time.perf_counter() - t_all
    return {"rows": len(phones), "seconds": round(elapsed, 2), "rows_per_s": round(len(phones) / elapsed),
            "batch": lat_summary(batch_ms), **totals}  # fmt: skip


MIGRATIONS = Path(__file__).resolve().parent.parent / "server_contract" / "sql" / "migrations"


def read_time_feeds(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Create, in this session's pg_temp, the feeds as 005 (lead_changes) and 006 (lead_feed) rendered them at read
    time, from their migration files, for an A/B against the stored rows of 007 on the same database and pages.
    Returns {current function: its read-time twin}."""
    twins = {}
    for name, migration, create in [
        ("lead_changes", "005_lead_life.sql", "create or replace function lead_changes("),
        ("lead_feed", "006_compact_feed.sql", "create function lead_feed("),
    ]:
        text = (MIGRATIONS / migration).read_text(encoding="utf-8")
        start = text.index(create)
        body = text[start : text.index("$$;", text.index("as $$", start)) + 3]
        conn.execute(body.replace(create, f"create or replace function pg_temp.{name}_read_time("))
        twins[name] = f"pg_temp.{name}_read_time"
    return twins


def bench_feed_ab(conn: psycopg.Connection[Any], claims: dict[str, Any], rounds: int = 4) -> dict[str, Any]:
    """Each feed's page (lead_changes 20,000 rows, lead_feed 10,000) rendered in the database, the current function
    and its read-time twin alternately on the same pages spread over the feed; only the answer's length leaves the
    database. The CPU the database spends per page served, both ways, under the same load."""
    twins = read_time_feeds(conn)
    top = int(conn.execute("select max(change_id) from leads").fetchone()[0])  # type: ignore[index]
    out: dict[str, Any] = {}
    for name, twin in twins.items():
        n = 20_000 if name == "lead_changes" else 10_000
        starts = [top * k // 6 for k in range(1, 5)]
        ms: dict[str, list[float]] = {"stored": [], "read_time": []}
        lengths: dict[str, list[int]] = {"stored": [], "read_time": []}
        for _ in range(rounds):
            for since in starts:
                for kind, fn in (("read_time", twin), ("stored", name)):
                    t0 = time.perf_counter()
                    with as_user(conn, claims):
                        length = conn.execute(f"select length({fn}(%s, %s)::text)", (since, n)).fetchone()[0]  # type: ignore[index]
                    ms[kind].append((time.perf_counter() - t0) * 1000)
                    lengths[kind].append(int(length))
        out[name] = {
            "page_rows": n,
            **{
                kind: {
                    "page_ms_p50": round(statistics.median(v), 1),
                    "rows_per_s": round(n / statistics.median(v) * 1000),
                    "bytes_per_page": round(statistics.mean(lengths[kind])),
                }
                for kind, v in ms.items()
            },
        }
    return out


def bench_feed_db(
    conn: psycopg.Connection[Any], claims: dict[str, Any], page: int, *, answer_only: bool = False
) -> dict[str, Any]:
    """lead_changes from 0 to the end as the same user. By default the database also reads the answer back
    (`x -> 'rows'`, json_array_length: the figure of earlier runs, kept comparable). `answer_only`: the answer as
    PostgREST sends it (the function's JSON text, fetched), rows counted by this process outside the timed part."""
    since, rows, chars = 0, 0, 0
    page_ms: list[float] = []
    elapsed = 0.0
    while True:
        p0 = time.perf_counter()
        with as_user(conn, claims):
            if answer_only:
                text = conn.execute("select lead_changes(%s, %s)::text", (since, page)).fetchone()[0]  # type: ignore[index]
            else:
                r = conn.execute(
                    "select (x ->> 'next_since')::bigint, json_array_length(x -> 'rows'), length(x::text)"
                    " from (select lead_changes(%s, %s) as x) s",
                    (since, page),
                ).fetchone()
        page_ms.append((time.perf_counter() - p0) * 1000)
        elapsed += page_ms[-1] / 1000
        if answer_only:
            answer = json.loads(text)
            r = (answer["next_since"], len(answer["rows"]), len(text))
        assert r is not None
        nxt, n, c = int(r[0]), int(r[1]), int(r[2])
        rows += n
        chars += c
        if n < page:
            break
        since = nxt
    return {"rows": rows, "seconds": round(elapsed, 2), "rows_per_s": round(rows / elapsed),
            "bytes_per_row": round(chars / max(rows, 1)), "page": lat_summary(page_ms)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=3_000_000, help="call_attempts rows before the timed phases")
    ap.add_argument("--data-dir", type=Path, default=OUT / "pgdata")
    ap.add_argument("--log-calls", type=int, default=1000)
    ap.add_argument("--legacy-calls", type=int, default=50)
    ap.add_argument("--details", type=int, default=500)
    ap.add_argument("--import-rows", type=int, default=10_000)
    ap.add_argument("--feed-page", type=int, default=20_000)
    ap.add_argument("--json", type=Path, default=OUT / "bench_lead_life.json")
    # Fresh each run by default: with a fixed seed a reused data dir already holds the import's "new" numbers, and
    # the import phase then measures 10,000 exact duplicates.
    ap.add_argument("--seed", type=int, default=None, help="workload RNG seed (default: fresh each run)")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    workload_seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(workload_seed)
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "goals": GOALS,
        "workload_seed": workload_seed,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    cluster, server = start_seeded(crm_server_exe(), args.data_dir.resolve(), args.leads, report)
    conn = psycopg.connect(server.database_url, autocommit=True)
    try:
        report["calls_seed"] = top_up_calls(conn, args.calls)
        report["leads"] = int(conn.execute("select count(*) from leads").fetchone()[0])  # type: ignore[index]
        report["calls"] = int(conn.execute("select count(*) from call_attempts").fetchone()[0])  # type: ignore[index]
        cre = str(server.sign_in("cre1@demo.local")["access_token"])
        lead = str(server.sign_in("lead@demo.local")["access_token"])

        say(f"[log] {args.log_calls} sequential log_call over HTTP ...")
        report["log_call"] = bench_log_call(server, cre, random_lead_ids(conn, args.log_calls, rng), rng)
        say(f"[log] {fmt_lat(report['log_call']['latency'])}; applied {report['log_call']['applied']}")

        say("[legacy] copying into legacy_* tables ...")
        conn.execute(LEGACY_DDL)
        for stmt in LEGACY_FILL:
            conn.execute(stmt)
        conn.execute("vacuum analyze legacy_lead_master, legacy_call_attempts")
        report["legacy_log_call"] = bench_legacy_log_call(conn, random_lead_ids(conn, args.legacy_calls, rng), rng)
        say(f"[legacy] {fmt_lat(report['legacy_log_call']['latency'])}")
        report["speedup_vs_legacy"] = round(
            report["legacy_log_call"]["latency"]["p50_ms"] / report["log_call"]["latency"]["p50_ms"], 1
        )

        say(f"[detail] {args.details} lead_detail reads ...")
        report["lead_detail"] = bench_detail(server, cre, random_lead_ids(conn, args.details, rng))
        say(f"[detail] {fmt_lat(report['lead_detail']['latency'])}")

        say(f"[import] {args.import_rows} rows in batches of 1,000 ...")
        report["import"] = bench_import(server, lead, conn, args.import_rows, rng)
        say(f"[import] {report['import']}")

        say("[feed] lead_changes in the database, from 0 to the end ...")
        report["feed_db"] = bench_feed_db(conn, jwt_claims(cre), args.feed_page)
        say(f"[feed] {report['feed_db']}")
        say("[feed] the same, the answer only (no read-back in the database) ...")
        report["feed_db_answer"] = bench_feed_db(conn, jwt_claims(cre), args.feed_page, answer_only=True)
        say(f"[feed] {report['feed_db_answer']}")
        say("[feed] stored rows (007) against rendering at read time (005/006), same pages, alternating ...")
        report["feed_ab"] = bench_feed_ab(conn, jwt_claims(cre))
        say(f"[feed] {report['feed_ab']}")
    finally:
        for t in ("legacy_lead_master", "legacy_duplicate_leads", "legacy_ps_followup", "legacy_call_attempts"):
            conn.execute(f"drop table if exists {t}")
        conn.close()
        stop_seeded(cluster, server)
    args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    lc, ld = report["log_call"]["latency"], report["lead_detail"]["latency"]
    print()
    print(f"at {report['leads']:,} leads and {report['calls']:,} calls")
    print(f"  log_call over HTTP        p50 {lc['p50_ms']:.2f} / p99 {lc['p99_ms']:.2f} ms   (goal p50 <= 5)")
    print(f"  replaced pattern (4 trips) p50 {report['legacy_log_call']['latency']['p50_ms']:.1f} ms:"
          f" {report['speedup_vs_legacy']}x slower")  # fmt: skip
    print(f"  lead_detail over HTTP     p50 {ld['p50_ms']:.2f} / p99 {ld['p99_ms']:.2f} ms   (goal p50 <= 10)")
    print(f"  import_leads              {report['import']['rows_per_s']:,} rows/s   (goal >= 5,000)")
    print(f"  lead_changes in database  {report['feed_db']['rows_per_s']:,} rows/s,"
          f" {report['feed_db']['bytes_per_row']} B/row   (goal >= 100k)")  # fmt: skip
    print(f"  ... the answer only        {report['feed_db_answer']['rows_per_s']:,} rows/s"
          "   (not read back by the database)")  # fmt: skip
    for name, ab in report["feed_ab"].items():
        print(f"  {name + ' in database':<25} {ab['stored']['rows_per_s']:,} rows/s from stored rows,"
              f" {ab['read_time']['rows_per_s']:,} rendered at read time (same pages, alternating)")  # fmt: skip
    print(f"report: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
