"""Demo users and synthetic leads.

`seed_users` makes the demo accounts (password `demo1234`): in the reference server's `auth.users`, or, on a database
whose `auth` schema belongs to Supabase's auth service (GoTrue), the way that service stores a user who signed up
with e-mail and password (a confirmed `auth.users` row with a bcrypt `$2a$` hash, plus its `auth.identities` row),
so the project's own sign-in accepts them. `bulk_leads` writes N realistic leads straight into the
tables in set-based SQL (1M in about a minute on a 2-core machine), with everything create_lead would have kept
consistent: sources, call attempts, PS follow-ups, feed positions and dashboard aggregates. It is a loader for demos
and benchmarks, not a second way to create leads: the desk only ever uses create_lead."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from server_contract.auth import hash_password

DEMO_PASSWORD = "demo1234"


class SeedError(RuntimeError):
    """Users cannot be created in this database; the message says why and what to do instead."""


# (email, full name, role, branch)
DEMO_USERS: list[tuple[str, str, str, str | None]] = [
    ("cre1@demo.local", "Asha Reddy", "cre", "SOMAJIGUDA"),
    ("cre2@demo.local", "Imran Khan", "cre", "ATTAPUR"),
    ("cre3@demo.local", "Lakshmi Narayan", "cre", "KOMPALLY"),
    ("lead@demo.local", "Priya Sharma", "team_lead", None),
    ("admin@demo.local", "Desk Admin", "admin", None),
    ("ps1@demo.local", "Ravi Teja", "ps", "SOMAJIGUDA"),
    ("ps2@demo.local", "Sneha Rao", "ps", "ATTAPUR"),
    ("ps3@demo.local", "Kiran Kumar", "ps", "KOMPALLY"),
    ("ps4@demo.local", "Farah Begum", "ps", "MALAKPET"),
    ("ps5@demo.local", "Venkat Goud", "ps", "SRINAGAR COLONY"),
    ("ps6@demo.local", "Ayesha Siddiqui", "ps", "TOLICHOWKI"),
    ("ps7@demo.local", "Suresh Yadav", "ps", "VANASTHALIPURAM"),
]

FIRST_NAMES = [
    "Aarav",
    "Vivaan",
    "Aditya",
    "Sai",
    "Arjun",
    "Reyansh",
    "Mohammed",
    "Krishna",
    "Ishaan",
    "Rohan",
    "Ananya",
    "Diya",
    "Saanvi",
    "Aadhya",
    "Pari",
    "Fatima",
    "Lakshmi",
    "Sravani",
    "Harika",
    "Keerthi",
    "Naveen",
    "Srinivas",
    "Ramesh",
    "Mahesh",
    "Pavan",
    "Swathi",
    "Divya",
    "Nikhil",
    "Abdul",
    "Zoya",
]
LAST_NAMES = [
    "Reddy",
    "Rao",
    "Sharma",
    "Goud",
    "Naidu",
    "Khan",
    "Varma",
    "Chowdary",
    "Patel",
    "Iyer",
    "Yadav",
    "Shaik",
    "Kumar",
    "Prasad",
    "Gupta",
    "Siddiqui",
    "Nair",
    "Menon",
    "Das",
    "Singh",
]


def create_user(
    conn: psycopg.Connection[Any], email: str, password: str, full_name: str, role: str, branch: str | None
) -> None:
    """Create (or leave as is) a sign-in and its desk profile. Runs on the admin connection."""
    if _auth_shape(conn) == "gotrue":
        user_id = _gotrue_user(conn, email, password)
    else:
        row = conn.execute(
            "insert into auth.users (email, encrypted_password) values (lower(%s), %s)"
            " on conflict (email) do update set email = excluded.email returning id",
            (email, hash_password(password)),
        ).fetchone()
        assert row is not None
        user_id = row[0]
    _profile(conn, user_id, email, full_name, role, branch)


def _profile(conn: psycopg.Connection[Any], user_id: Any, email: str, name: str, role: str, branch: str | None) -> None:
    conn.execute(
        "insert into public.profiles (id, email, full_name, role, branch) values (%s, lower(%s), %s, %s, %s)"
        " on conflict (id) do nothing",
        (user_id, email, name, role, branch),
    )


def _columns(conn: psycopg.Connection[Any], table: str) -> set[str]:
    rows = conn.execute(
        "select a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid"
        " where c.relnamespace = 'auth'::regnamespace and c.relname = %s and a.attnum > 0 and not a.attisdropped",
        (table,),
    ).fetchall()
    return {str(r[0]) for r in rows}


def _auth_shape(conn: psycopg.Connection[Any]) -> str:
    """'reference' (the shim's auth.users), 'gotrue' (Supabase's auth service) or 'unknown' (anything else)."""
    from server_contract import db

    kind = db.auth_kind(conn)
    if kind == db.AUTH_REFERENCE:
        return "reference"
    if kind == db.AUTH_NONE:
        return "unknown"  # no auth schema at all: nothing to create a sign-in in
    users, identities = _columns(conn, "users"), _columns(conn, "identities")
    if {"id", "aud", "role", "email", "encrypted_password"} <= users and {"user_id", "provider", "identity_data"} <= (
        identities
    ):
        return "gotrue"
    return "unknown"


# Columns GoTrue reads as strings: a NULL there makes its sign-in fail ("converting NULL to string is unsupported").
_GOTRUE_EMPTY_STRINGS = (
    "confirmation_token",
    "recovery_token",
    "email_change_token_new",
    "email_change",
    "email_change_token_current",
    "phone_change",
    "phone_change_token",
    "reauthentication_token",
)


def _gotrue_user(conn: psycopg.Connection[Any], email: str, password: str) -> Any:
    """The user as GoTrue's e-mail sign-up stores it once confirmed: bcrypt cost 10 with Go's `$2a$` prefix."""
    import bcrypt

    email = email.lower()
    row = conn.execute("select id from auth.users where email = %s order by created_at limit 1", (email,)).fetchone()
    if row is not None:
        return row[0]
    users = _columns(conn, "users")
    identities = _columns(conn, "identities")
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10, prefix=b"2a")).decode()
    values: dict[str, Any] = {
        "instance_id": "00000000-0000-0000-0000-000000000000",
        "aud": "authenticated",
        "role": "authenticated",
        "email": email,
        "encrypted_password": hashed,
        "raw_app_meta_data": Jsonb({"provider": "email", "providers": ["email"]}),
        "raw_user_meta_data": Jsonb({}),
        "is_sso_user": False,
        "is_anonymous": False,
    }
    values.update({c: "" for c in _GOTRUE_EMPTY_STRINGS})
    values = {k: v for k, v in values.items() if k in users}
    names = ", ".join(values)
    marks = ", ".join(f"%({k})s" for k in values)
    now_cols = [c for c in ("email_confirmed_at", "created_at", "updated_at") if c in users]
    try:
        with conn.transaction():
            (user_id,) = conn.execute(  # type: ignore[misc]
                f"insert into auth.users (id, {names}, {', '.join(now_cols)})"
                f" values (gen_random_uuid(), {marks}, {', '.join('now()' for _ in now_cols)}) returning id",
                values,
            ).fetchone()
            identity = Jsonb({"sub": str(user_id), "email": email, "email_verified": True, "phone_verified": False})
            if "provider_id" in identities:  # GoTrue since late 2023: its own uuid id, the provider's id apart
                conn.execute(
                    "insert into auth.identities (id, provider_id, user_id, identity_data, provider, created_at,"
                    " updated_at) values (gen_random_uuid(), %s, %s, %s, 'email', now(), now())",
                    (str(user_id), user_id, identity),
                )
            else:  # older GoTrue: the identity's id is the provider's id, the user id for e-mail
                conn.execute(
                    "insert into auth.identities (id, user_id, identity_data, provider, created_at, updated_at)"
                    " values (%s, %s, %s, 'email', now(), now())",
                    (str(user_id), user_id, identity),
                )
    except psycopg.errors.InsufficientPrivilege as exc:
        raise SeedError(
            f"cannot create sign-ins in this database's auth.users ({exc.diag.message_primary}). Create the users"
            " in the Supabase dashboard (Authentication -> Users, e-mail and password), then run seed again: users"
            " that already exist get their desk profiles."
        ) from exc
    return user_id


def seed_users(conn: psycopg.Connection[Any]) -> int:
    shape = _auth_shape(conn)
    if shape == "unknown":
        raise SeedError(
            "this database's auth schema is neither the reference server's nor Supabase's auth service, so seed"
            " does not know how to create a sign-in there. Create the users with your auth service, then add their"
            " rows to public.profiles (README: Pointing the desk at a Supabase project, step 2)."
        )
    made = 0
    for email, name, role, branch in DEMO_USERS:
        exists = conn.execute("select id from auth.users where email = %s", (email,)).fetchone()
        if exists is None:
            create_user(conn, email, DEMO_PASSWORD, name, role, branch)
            made += 1
        else:
            _profile(conn, exists[0], email, name, role, branch)  # a user made in the dashboard gets a profile
    return made


# One chunk of synthetic leads. %(start)s..%(stop)s number the leads; the phone is a bijection of that number
# (104729 is prime, so coprime with 4e9), so chunks never collide with each other.
_BULK_INSERT = """
with cres as (select array_agg(id order by email) as ids from profiles where role = 'cre' and active),
     subs as (select array_agg(source order by source, sub_source) as src,
                     array_agg(sub_source order by source, sub_source) as sub,
                     array_agg(uid_letter order by source, sub_source) as letter from sub_sources where active),
     brs as (select array_agg(code order by sort) as codes from branches where active),
     sts as (select array_agg(name order by sort) as names from lead_statuses where first_call),
     mdl as (select array_agg(name order by sort) as names from models where active),
     gen as (
        select g,
               '+91' || (6000000000 + ((g::bigint * 104729) %% 4000000000))::text as phone,
               random() as r1, random() as r2, random() as r3, random() as r4, random() as r5, random() as r6,
               now() - make_interval(secs => random() * %(span)s) as at
          from generate_series(%(start)s::bigint, %(stop)s::bigint) g
     ),
     rows as (
        select gen.*,
               subs.src[1 + (g %% array_length(subs.src, 1))] as source,
               subs.sub[1 + (g %% array_length(subs.sub, 1))] as sub_source,
               subs.letter[1 + (g %% array_length(subs.letter, 1))] as letter,
               brs.codes[1 + floor(r1 * array_length(brs.codes, 1))::int] as branch,
               cres.ids[1 + (g %% array_length(cres.ids, 1))] as cre_id,
               case when r2 < 0.9 then sts.names[1 + floor(r3 * array_length(sts.names, 1))::int] end as status,
               case when r4 < 0.8 then 'Pending' when r4 < 0.9 then 'Won' else 'Lost' end as final_status,
               mdl.names[1 + floor(r5 * array_length(mdl.names, 1))::int] as model,
               (%(first)s::text[])[1 + (g %% %(n_first)s)] || ' '
                   || (%(last)s::text[])[1 + ((g / 7) %% %(n_last)s)] as name
          from gen, cres, subs, brs, sts, mdl
     )
insert into leads (uid, phone, phone_raw, customer_name, source, sub_source, sources, lead_status, lead_category,
                   model_interested, branch, cre_id, ps_id, final_status, follow_up_date, created_at, updated_at,
                   cre_assigned_at, ps_assigned_at, first_call_date, first_call_at, last_call_at, call_count,
                   state_called_at, won_at, lost_at, change_id)
select uid_for(r.letter, r.phone, nextval('lead_uid_seq')), r.phone, r.phone, r.name, r.source, r.sub_source,
       jsonb_build_array(jsonb_build_object('source', r.source, 'sub_source', r.sub_source, 'at', r.at)),
       r.status, (array['Hot', 'Warm', 'Cold'])[1 + floor(r6 * 3)::int], r.model, r.branch, r.cre_id,
       case when r6 < 0.3 then ps.id end, r.final_status,
       case when r.final_status = 'Pending' and r.status is distinct from 'RNR'
            then (r.at at time zone desk_tz())::date + 1 + floor(r5 * 7)::int end,
       r.at, r.at, r.at, case when r6 < 0.3 and ps.id is not null then r.at end,
       case when r.status is not null and r.status not in ('RNR', 'Call me Back')
            then (r.at at time zone desk_tz())::date end,
       case when r.status is not null then r.at + make_interval(secs => r3 * 7200) end,
       case when r.status is not null then r.at + make_interval(secs => r3 * 7200) end,
       case when r.status is not null then 1 else 0 end,
       case when r.status is not null then r.at + make_interval(secs => r3 * 7200) end,
       case when r.final_status = 'Won' then r.at end, case when r.final_status = 'Lost' then r.at end,
       nextval('lead_change_seq')
  from rows r
  left join lateral (select id from profiles p where p.role = 'ps' and p.active and p.branch = r.branch
                      order by p.email limit 1) ps on true
on conflict (phone) do nothing
"""

_BULK_FOLLOW_ON = [
    """insert into lead_sources (lead_id, source, sub_source, cre_id, created_at)
       select id, source, sub_source, cre_id, created_at from leads where id > %(after)s""",
    """insert into call_attempts (lead_id, uid, call_no, attempt, lead_status, cre_id, follow_up_date, final_status,
                                  created_at, called_at, lead_category, model_interested)
       select id, uid, 1, 1, lead_status, cre_id, follow_up_date, final_status, first_call_at, first_call_at,
              lead_category, model_interested
         from leads where id > %(after)s and lead_status is not null""",
    """insert into ps_followups (lead_id, ps_id, ps_branch, customer_name, phone, source, cre_id, lead_category,
                                 model_interested, ps_assigned_at)
       select id, ps_id, branch, customer_name, phone, source, cre_id, lead_category, model_interested, ps_assigned_at
         from leads where id > %(after)s and ps_id is not null""",
]

# Dashboard aggregates of the loaded leads: computed once after the last chunk (per chunk they bloat the tables).
_BULK_STATS = [
    """insert into stats_cre as s (day, branch, cre_id, leads, with_ps, pending, won, lost, first_calls,
                                   first_call_secs, calls, won_calls, lost_calls)
       select (created_at at time zone desk_tz())::date, coalesce(branch, ''), cre_id, count(*), count(ps_id),
              count(*) filter (where final_status = 'Pending'), count(*) filter (where final_status = 'Won'),
              count(*) filter (where final_status = 'Lost'), count(first_call_at),
              coalesce(sum(extract(epoch from first_call_at - created_at))::bigint, 0), count(first_call_at),
              count(*) filter (where final_status = 'Won' and first_call_at is not null),
              count(*) filter (where final_status = 'Lost' and first_call_at is not null)
         from leads where id > %(after)s group by 1, 2, 3
       on conflict (day, branch, cre_id) do update set
           leads = s.leads + excluded.leads, with_ps = s.with_ps + excluded.with_ps,
           pending = s.pending + excluded.pending, won = s.won + excluded.won, lost = s.lost + excluded.lost,
           first_calls = s.first_calls + excluded.first_calls,
           first_call_secs = s.first_call_secs + excluded.first_call_secs, calls = s.calls + excluded.calls,
           won_calls = s.won_calls + excluded.won_calls, lost_calls = s.lost_calls + excluded.lost_calls""",
    """insert into stats_source as s (day, branch, source, sub_source, leads)
       select (created_at at time zone desk_tz())::date, coalesce(branch, ''), source, sub_source, count(*)
         from leads where id > %(after)s group by 1, 2, 3, 4
       on conflict (day, branch, source, sub_source) do update set leads = s.leads + excluded.leads""",
    """insert into stats_status as s (day, branch, lead_status, leads)
       select (created_at at time zone desk_tz())::date, coalesce(branch, ''), coalesce(lead_status, ''), count(*)
         from leads where id > %(after)s group by 1, 2, 3
       on conflict (day, branch, lead_status) do update set leads = s.leads + excluded.leads""",
    """insert into stats_hour as s (day, branch, hour, leads)
       select (created_at at time zone desk_tz())::date, coalesce(branch, ''),
              extract(hour from created_at at time zone desk_tz())::smallint, count(*)
         from leads where id > %(after)s group by 1, 2, 3
       on conflict (day, branch, hour) do update set leads = s.leads + excluded.leads""",
    """insert into stats_follow_up_cre as s (day, branch, cre_id, leads)
       select follow_up_date, coalesce(branch, ''), cre_id, count(*)
         from leads where id > %(after)s and final_status = 'Pending' and follow_up_date is not null
        group by 1, 2, 3
       on conflict (day, branch, cre_id) do update set leads = s.leads + excluded.leads""",
]
_VACUUM = [
    "leads",
    "lead_sources",
    "call_attempts",
    "ps_followups",
    "stats_cre",
    "stats_source",
    "stats_status",
    "stats_hour",
    "stats_follow_up_cre",
]


def bulk_leads(
    conn: psycopg.Connection[Any],
    n: int,
    *,
    days: float = 365.0,
    chunk: int = 100_000,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Insert about `n` synthetic leads created over the last `days` days; returns how many were inserted.

    Runs on the admin connection (autocommit); one transaction per chunk, each holding the feed sequencer's lock so
    the positions it hands out are ordered exactly like the sequencer's own (see lead_changes)."""
    if n <= 0:
        return 0
    if conn.execute("select count(*) from profiles where role = 'cre' and active").fetchone() == (0,):
        raise RuntimeError("no active CRE to own the leads: seed users first")
    row = conn.execute("select coalesce(max(id), 0) from leads").fetchone()
    base = int(row[0]) if row else 0
    first_base = base
    start = base + 1  # numbering after every earlier seed keeps phones distinct across runs
    # A crash mid-seed loses only the seed: no need to wait for each chunk's WAL flush.
    conn.execute("set synchronous_commit = off")
    inserted = 0
    params_common: dict[str, Any] = {
        "span": days * 86400,
        "first": FIRST_NAMES,
        "last": LAST_NAMES,
        "n_first": len(FIRST_NAMES),
        "n_last": len(LAST_NAMES),
    }
    done = 0
    while done < n:
        size = min(chunk, n - done)
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(hashtext('crm.lead_changes.sequencer'))")
            cur = conn.execute(_BULK_INSERT, {**params_common, "start": start + done, "stop": start + done + size - 1})
            inserted += cur.rowcount
            for stmt in _BULK_FOLLOW_ON:
                conn.execute(stmt, {"after": base})
            # The seed numbers its leads itself, so the sequencer never renders their feed rows (migration 007):
            # rendered here, as a desk would otherwise find them on its first read.
            filled: tuple[Any, ...] | None = (0,)
            while filled is not None and filled[0] is not None:
                filled = conn.execute("select _feed_fill(%s, 20000)", filled).fetchone()
            last = conn.execute("select coalesce(max(id), 0) from leads").fetchone()
            base = int(last[0]) if last else base
        done += size
        if progress is not None:
            progress(done, n)
    with conn.transaction():
        for stmt in _BULK_STATS:
            conn.execute(stmt, {"after": first_base})
    conn.execute("set synchronous_commit = on")
    for table in _VACUUM:
        conn.execute(f"vacuum analyze {table}")  # fresh visibility map and statistics before anyone measures
    return inserted


def seed_demo(conn: psycopg.Connection[Any], leads: int = 400) -> dict[str, int]:
    """Demo users plus, on an empty desk, a few hundred leads spread over the last 30 days."""
    users = seed_users(conn)
    row = conn.execute("select count(*) from leads").fetchone()
    made = 0
    if row is not None and row[0] == 0:
        made = bulk_leads(conn, leads, days=30)
    return {"users": users, "leads": made}
