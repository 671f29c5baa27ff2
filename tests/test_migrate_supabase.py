"""`crm-server` pointed at a Supabase database (`--database-url`): it must never touch the `auth` schema that
Supabase's auth service (GoTrue) owns, must recognise migrations applied in the SQL editor, and `seed` must create
users the way GoTrue stores them.

The stand-in for a Supabase database is built here, before our migrations, the way GoTrue leaves it: an `auth` schema
owned by `supabase_auth_admin` with GoTrue's `users` (no default id, a partial unique index on e-mail), `identities`,
`refresh_tokens`, `schema_migrations` and its own `auth.uid()`/`role()`/`jwt()` (jwt() is NULL without claims, where
the reference shim's is `{}`); the migrations run as a non-superuser like Supabase's `postgres`, which is a member of
`supabase_auth_admin` (so a `create or replace function auth.uid()` would succeed silently, as the audit saw)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import bcrypt
import psycopg
import pytest

from server_contract import db
from server_contract.embedded import EmbeddedCluster

ROLES = """
do $$ begin
    if not exists (select from pg_roles where rolname = 'anon') then create role anon nologin noinherit; end if;
    if not exists (select from pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit; end if;
    if not exists (select from pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls; end if;
    if not exists (select from pg_roles where rolname = 'authenticator') then
        create role authenticator login noinherit; end if;
    if not exists (select from pg_roles where rolname = 'supabase_auth_admin') then
        create role supabase_auth_admin login noinherit createrole; end if;
    -- Supabase's `postgres`: no superuser, owns the public schema, a member of the API roles and of the auth admin.
    if not exists (select from pg_roles where rolname = 'supa_postgres') then
        create role supa_postgres login createrole bypassrls; end if;
    -- A project where `postgres` may no longer write to auth (newer hosted projects).
    if not exists (select from pg_roles where rolname = 'supa_restricted') then
        create role supa_restricted login createrole bypassrls; end if;
end $$;
grant anon, authenticated, service_role to authenticator;
-- With ADMIN, as on Supabase's PostgreSQL 15 where CREATEROLE sufficed: the shim's grants would go through.
grant anon, authenticated, service_role to supa_postgres with admin option;
grant supabase_auth_admin to supa_postgres;
grant anon, authenticated, service_role to supa_restricted;
"""

GOTRUE_AUTH = """
create schema auth authorization supabase_auth_admin;
set role supabase_auth_admin;
create table auth.schema_migrations (version varchar(255) primary key);
insert into auth.schema_migrations values ('20171026211738'), ('20240806073726'), ('20241009103726');
create table auth.users (
    instance_id uuid, id uuid not null primary key, aud varchar(255), role varchar(255), email varchar(255),
    encrypted_password varchar(255), email_confirmed_at timestamptz, invited_at timestamptz,
    confirmation_token varchar(255), confirmation_sent_at timestamptz, recovery_token varchar(255),
    recovery_sent_at timestamptz, email_change_token_new varchar(255), email_change varchar(255),
    email_change_sent_at timestamptz, last_sign_in_at timestamptz, raw_app_meta_data jsonb, raw_user_meta_data jsonb,
    is_super_admin boolean, created_at timestamptz, updated_at timestamptz, phone text unique default null,
    phone_confirmed_at timestamptz, phone_change text default '', phone_change_token varchar(255) default '',
    phone_change_sent_at timestamptz,
    confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
    email_change_token_current varchar(255) default '', email_change_confirm_status smallint default 0,
    banned_until timestamptz, reauthentication_token varchar(255) default '', reauthentication_sent_at timestamptz,
    is_sso_user boolean not null default false, deleted_at timestamptz, is_anonymous boolean not null default false
);
create unique index users_email_partial_key on auth.users (email) where (is_sso_user = false);
create table auth.identities (
    provider_id text not null, user_id uuid not null references auth.users (id) on delete cascade,
    identity_data jsonb not null, provider text not null, last_sign_in_at timestamptz, created_at timestamptz,
    updated_at timestamptz, email text generated always as (lower(identity_data ->> 'email')) stored,
    id uuid not null default gen_random_uuid() primary key, unique (provider_id, provider)
);
create table auth.refresh_tokens (
    instance_id uuid, id bigserial primary key, token varchar(255) unique, user_id varchar(255), revoked boolean,
    created_at timestamptz, updated_at timestamptz, parent varchar(255), session_id uuid
);
create function auth.uid() returns uuid language sql stable as $$
    select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid
$$;
create function auth.role() returns text language sql stable as $$
    select coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'))::text
$$;
create function auth.jwt() returns jsonb language sql stable as $$
    select coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                    nullif(current_setting('request.jwt.claims', true), ''))::jsonb
$$;
reset role;
grant usage on schema auth to anon, authenticated, service_role, supa_restricted;
grant select, references on auth.users to supa_restricted;
grant select on auth.identities to supa_restricted;
-- Someone the team lead already made in the dashboard (Authentication -> Users).
insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, created_at,
                        updated_at, raw_app_meta_data, raw_user_meta_data)
values ('00000000-0000-0000-0000-000000000000', '5b0c3c2e-0000-4000-8000-000000000001', 'authenticated',
        'authenticated', 'lead@demo.local', '$2a$10$abcdefghijklmnopqrstuu1234567890123456789012345678901',
        now(), now(), now(), '{"provider": "email", "providers": ["email"]}', '{}');
"""

# Everything about the auth schema that a migration, a shim or a seed could change, short of its rows.
AUTH_SHAPE = """
select 'schema', nspname, pg_get_userbyid(nspowner), coalesce(nspacl::text, '') from pg_namespace
 where nspname = 'auth'
union all
select 'relation', relname, relkind::text || ' ' || pg_get_userbyid(relowner), coalesce(relacl::text, '')
  from pg_class where relnamespace = 'auth'::regnamespace
union all
select 'column', attrelid::regclass::text || '.' || attname, format_type(atttypid, atttypmod), ''
  from pg_attribute where attnum > 0 and not attisdropped
   and attrelid in (select oid from pg_class where relnamespace = 'auth'::regnamespace)
union all
select 'function', oid::regprocedure::text, md5(prosrc) || ' ' || pg_get_userbyid(proowner), coalesce(proacl::text, '')
  from pg_proc where pronamespace = 'auth'::regnamespace
union all
select 'constraint', conname, pg_get_constraintdef(oid), '' from pg_constraint where connamespace = 'auth'::regnamespace
union all
select 'trigger', tgname, tgrelid::regclass::text, '' from pg_trigger
 where not tgisinternal and tgrelid in (select oid from pg_class where relnamespace = 'auth'::regnamespace)
order by 1, 2
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    """A PostgreSQL of its own: the stand-in's roles must not meet the session cluster's."""
    held = EmbeddedCluster.acquire(tmp_path_factory.mktemp("supabase") / "pgdata")
    with psycopg.connect(held.conninfo(), autocommit=True) as conn:
        conn.execute(ROLES)
    yield held
    held.release()


def _database(cluster: EmbeddedCluster, owner: str, gotrue: bool = True) -> str:
    name = f"supa_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        conn.execute(f"create database {name} owner {owner}")
    if gotrue:
        with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
            conn.execute(GOTRUE_AUTH)
    return cluster.conninfo(name, user=owner)


@pytest.fixture
def supabase(cluster: EmbeddedCluster) -> str:
    """A Supabase-shaped database; the URL logs in as its non-superuser `postgres`."""
    return _database(cluster, "supa_postgres")


def _auth_shape(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(AUTH_SHAPE).fetchall()


def _sql_editor(url: str, versions: list[str]) -> None:
    """What README's step 1 does: each file pasted into the SQL editor, run as `postgres`, nothing recorded."""
    for path in db.migration_files():
        if path.stem in versions:
            with psycopg.connect(url) as conn:  # one transaction per file, like the editor's run
                conn.execute(db.read_sql(path))


def crm_server(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server_contract", *args], capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def _versions(url: str) -> dict[str, str | None]:
    with psycopg.connect(url) as conn:  # before the runner's first run the table (001's) has no checksum column
        rows = conn.execute("select to_jsonb(m) from schema_migrations m").fetchall()
        return {r[0]["version"]: r[0].get("checksum") for r in rows}


ALL = [p.stem for p in db.migration_files()]
# Data-only migrations (003's catalogue rows) have nothing to recognise them by: they are written to be re-run.
OBJECTLESS = [p.stem for p in db.migration_files() if db.footprint(db.read_sql(p)).empty()]


def test_migrate_applies_the_contract_and_leaves_supabase_auth_alone(supabase: str):
    before = _auth_shape(supabase)
    result = crm_server("migrate", "--database-url", supabase)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["auth"] == "foreign" and plan["applied"] == ALL and plan["recognised"] == []
    assert _auth_shape(supabase) == before  # no replaced auth.uid()/jwt()/role(), no new object, no grant
    with psycopg.connect(supabase) as conn:
        assert conn.execute("select auth.jwt() is null").fetchone() == (True,)  # GoTrue's, not the shim's '{}'
        assert conn.execute("select to_regclass('auth.server_secrets')").fetchone() == (None,)
    checksums = {p.stem: db.checksum(db.read_sql(p)) for p in db.migration_files()}
    assert _versions(supabase) == checksums
    again = json.loads(crm_server("migrate", "--database-url", supabase).stdout)
    assert again["applied"] == [] and again["recognised"] == []


def test_migrate_recognises_what_the_sql_editor_applied_and_adds_only_the_rest(supabase: str):
    _sql_editor(supabase, ALL[:-1])  # all but the newest, e.g. a project set up before it was written
    before = _auth_shape(supabase)
    recognised = [v for v in ALL[:-1] if v not in OBJECTLESS]
    applied = [v for v in ALL if v not in recognised]
    assert "001_schema" in recognised and ALL[-1] in applied
    dry = crm_server("migrate", "--database-url", supabase, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["recognised"] == recognised and json.loads(dry.stdout)["applied"] == applied
    assert _versions(supabase) == {}  # a dry run records nothing

    result = crm_server("migrate", "--database-url", supabase)
    assert result.returncode == 0, result.stderr  # not "relation profiles already exists"
    plan = json.loads(result.stdout)
    assert plan["recognised"] == recognised and plan["applied"] == applied
    newest = db.footprint(db.read_sql(db.migration_files()[-1]))
    with psycopg.connect(supabase) as conn:
        for name, body in newest.functions.items():  # the newest migration's functions are the ones in place
            rows = conn.execute("select prosrc from pg_proc where proname = %s", (name,)).fetchall()
            assert [r[0] for r in rows] == [body]
    assert set(_versions(supabase)) == set(ALL)
    assert _auth_shape(supabase) == before


def test_a_partly_applied_migration_is_reported_not_guessed(supabase: str):
    with psycopg.connect(supabase) as conn:  # someone ran the first statements of 001 only
        conn.execute("create table profiles (id uuid primary key); create table branches (code text primary key)")
    result = crm_server("migrate", "--database-url", supabase)
    assert result.returncode == 1
    assert "partly applied" in result.stderr and "relation profiles" in result.stderr, result.stderr
    with psycopg.connect(supabase) as conn:
        assert conn.execute("select to_regclass('public.leads')").fetchone() == (None,)


def test_serve_refuses_a_supabase_database_and_changes_nothing(supabase: str):
    _sql_editor(supabase, ALL)
    before = _auth_shape(supabase)
    result = crm_server("serve", "--database-url", supabase, "--port", "0", timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert "Supabase's auth service" in result.stderr and "crm-server migrate" in result.stderr
    assert _auth_shape(supabase) == before
    assert _versions(supabase) == {}  # serve did not migrate either


def test_seed_creates_users_the_way_supabase_auth_stores_them(supabase: str):
    _sql_editor(supabase, ALL)  # README's route; seed must not re-run 001 over it
    before = _auth_shape(supabase)
    result = crm_server("seed", "--leads", "30", "--database-url", supabase)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["inserted"] == 30
    assert _auth_shape(supabase) == before
    with psycopg.connect(supabase) as conn:
        row = conn.execute(
            "select u.id, u.instance_id::text, u.aud, u.role, u.encrypted_password, u.email_confirmed_at is not null,"
            " u.raw_app_meta_data, u.confirmation_token, u.recovery_token, u.email_change, u.email_change_token_new,"
            " i.provider, i.provider_id, i.identity_data, i.email"
            " from auth.users u join auth.identities i on i.user_id = u.id where u.email = 'cre1@demo.local'"
        ).fetchone()
        assert row is not None
        # The seed numbers its leads itself; their feed rows (007) are rendered too.
        assert conn.execute("select count(*), count(feed_row), count(feed_cols) from leads").fetchone() == (
            30, 30, 30)  # fmt: skip
        uid, instance, aud, role, hashed, confirmed, app_meta, *tokens, provider, provider_id, identity, i_email = row
        assert (instance, aud, role, confirmed) == ("00000000-0000-0000-0000-000000000000", "authenticated",
                                                    "authenticated", True)  # fmt: skip
        assert hashed.startswith("$2a$10$") and bcrypt.checkpw(b"demo1234", hashed.encode())
        assert app_meta == {"provider": "email", "providers": ["email"]}
        assert tokens == ["", "", "", ""]  # GoTrue cannot read NULL there
        assert (provider, provider_id, i_email) == ("email", str(uid), "cre1@demo.local")
        assert identity == {"sub": str(uid), "email": "cre1@demo.local", "email_verified": True,
                            "phone_verified": False}  # fmt: skip
        # The user made in the dashboard kept its sign-in and got a desk profile; nobody got two.
        assert conn.execute("select count(*) from auth.users where email = 'lead@demo.local'").fetchone() == (1,)
        lead = conn.execute("select p.role from profiles p join auth.users u using (id)"
                            " where u.email = 'lead@demo.local'").fetchone()  # fmt: skip
        assert lead == ("team_lead",)
        assert conn.execute("select count(*) from profiles").fetchone() == (12,)
        # The desk's SQL sees them as Supabase's auth.uid() does.
        conn.execute("select set_config('request.jwt.claims', %s, false)", (json.dumps({"sub": str(uid)}),))
        assert conn.execute("select auth.uid() = %s", (uid,)).fetchone() == (True,)


def test_seed_says_clearly_when_it_cannot_create_sign_ins(cluster: EmbeddedCluster):
    url = _database(cluster, "supa_restricted")
    result = crm_server("seed", "--leads", "0", "--database-url", url)
    assert result.returncode == 1
    assert "cannot create sign-ins" in result.stderr and "Authentication -> Users" in result.stderr, result.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from auth.users").fetchone() == (1,)


def test_a_plain_postgresql_gets_the_reference_auth(cluster: EmbeddedCluster):
    """No auth schema at all (a dealership's own PostgreSQL): the shim creates it, and applying it again is a no-op."""
    url = _database(cluster, "postgres", gotrue=False)
    first = json.loads(crm_server("migrate", "--database-url", url).stdout)
    assert first == {"auth": "none", "recognised": [], "applied": ALL, "dry_run": False}
    second = json.loads(crm_server("migrate", "--database-url", url).stdout)
    assert second == {"auth": "reference", "recognised": [], "applied": [], "dry_run": False}
    with psycopg.connect(url) as conn:
        assert conn.execute("select auth.jwt()").fetchone() == ({},)  # the shim's
