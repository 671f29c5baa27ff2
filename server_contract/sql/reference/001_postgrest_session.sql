-- The session rules hosted Supabase gives the API roles, so the reference server runs each RPC as PostgREST does
-- there and CI sees what Supabase would refuse. PostgREST reads the impersonated role's settings from
-- pg_db_role_setting and applies them in each transaction (the server does the same); the login role's own settings
-- apply to its sessions. Values as in Supabase's own migrations (supabase/postgres). Idempotent; reference only.

alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';
alter role authenticator set lock_timeout = '8s';

-- GoTrue-style refresh tokens: when a token was rotated (the reuse interval counts from there) and its successor,
-- sealed with the rotated token itself (server_contract/auth.py), so a retried refresh gets the token it missed.
alter table auth.refresh_tokens add column if not exists revoked_at timestamptz;
alter table auth.refresh_tokens add column if not exists successor bytea;
update auth.refresh_tokens set revoked_at = created_at where revoked and revoked_at is null;
-- Pruning revoked tokens after a day reads this (a few rows at a time).
create index if not exists refresh_tokens_revoked_at on auth.refresh_tokens (revoked_at) where revoked;
grant delete on auth.refresh_tokens to service_role;
