-- What Supabase provides and the reference server must create itself: the API roles, the `auth` schema with
-- `auth.users`, and `auth.uid()` / `auth.role()` / `auth.jwt()` reading `request.jwt.claims` the way PostgREST sets it.
-- Everything is guarded so it is a no-op where Supabase (or an earlier run) already made it. Never run on Supabase.

do $$
begin
    if not exists (select from pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls;
    end if;
    -- The role the server's pool logs in as: it can do nothing by itself, only switch to one of the three above.
    if not exists (select from pg_roles where rolname = 'authenticator') then
        create role authenticator login noinherit;
    end if;
end
$$;

grant anon, authenticated, service_role to authenticator;

create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

create table if not exists auth.users (
    id                  uuid primary key default gen_random_uuid(),
    email               text not null unique,
    encrypted_password  text not null,               -- bcrypt, as GoTrue stores it
    raw_app_meta_data   jsonb not null default '{}',
    raw_user_meta_data  jsonb not null default '{}',
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    last_sign_in_at     timestamptz
);

-- Refresh tokens of the reference server's auth endpoint. Only a hash is stored; a token is used at most once
-- (rotation) and every token of a session descends from the password sign-in that opened it.
create table if not exists auth.refresh_tokens (
    id          bigint generated always as identity primary key,
    token_hash  text not null unique,
    user_id     uuid not null references auth.users (id) on delete cascade,
    session_id  uuid not null,
    revoked     boolean not null default false,
    created_at  timestamptz not null default now()
);
create index if not exists refresh_tokens_session on auth.refresh_tokens (session_id);

-- The JWT signing secret, shared by every reference server that points at this database (they are stateless).
create table if not exists auth.server_secrets (
    name   text primary key,
    value  text not null
);

revoke all on auth.users, auth.refresh_tokens, auth.server_secrets from anon, authenticated;
grant select, insert, update on auth.users, auth.refresh_tokens to service_role;

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
    select coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable
as $$
    select nullif(auth.jwt() ->> 'sub', '')::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
    select nullif(auth.jwt() ->> 'role', '')
$$;
