-- Tables of the desk. Runs unchanged on Supabase (PostgreSQL 15+). Every table has row-level security on; clients
-- never touch tables directly: everything goes through the SECURITY DEFINER functions of 002_functions.sql, which
-- are the only things the `authenticated` role may execute.

create table profiles (
    id          uuid primary key references auth.users (id) on delete cascade,
    email       text not null unique,
    full_name   text not null,
    role        text not null check (role in ('cre', 'team_lead', 'admin', 'ps')),
    branch      text,
    active      boolean not null default true,
    created_at  timestamptz not null default now()
);

-- Catalogues: the single source of the spellings the form offers and the server accepts.
create table branches (
    code        text primary key,
    sort        int not null default 0,
    active      boolean not null default true
);

create table sources (
    code        text primary key,
    sort        int not null default 0,
    active      boolean not null default true
);

create table sub_sources (
    source      text not null references sources (code),
    sub_source  text not null,
    -- The first letter of a UID: G Google, M Meta, A Affiliate, K Know, W Whatsapp/Walk-in, T Tele, B BTL, X other.
    uid_letter  char(1) not null check (uid_letter ~ '^[A-Z]$'),
    sort        int not null default 0,
    active      boolean not null default true,
    primary key (source, sub_source)
);

create table models (
    name        text primary key,
    sort        int not null default 0,
    active      boolean not null default true
);

create table lead_statuses (
    name         text primary key,
    first_call   boolean not null,   -- offered on the CRE's new-lead form
    non_contact  boolean not null,   -- RNR, busy, call me back...: the customer was not really reached
    sort         int not null default 0
);

-- The lead's number in the UID sequence: UIDs are derived from it bijectively (see uid_for), so no probe is needed.
create sequence lead_uid_seq as bigint minvalue 0 start 0;
-- Positions in the cache feed. Handed out after commit by lead_changes' sequencer, never by writers (see there).
create sequence lead_change_seq as bigint;

create table leads (
    id                bigint generated always as identity primary key,
    uid               text not null unique,
    phone             text not null unique,        -- E.164; the dedupe key: this index decides every race
    phone_raw         text,
    customer_name     text not null,
    source            text not null,
    sub_source        text not null,
    sources           jsonb not null,              -- every source seen, first = original: the cache row needs it
    lead_status       text,
    lead_category     text check (lead_category in ('Hot', 'Warm', 'Cold')),
    model_interested  text,
    branch            text,
    cre_id            uuid not null references profiles (id),
    ps_id             uuid references profiles (id),
    final_status      text not null default 'Pending' check (final_status in ('Pending', 'Won', 'Lost')),
    follow_up_date    date,
    remark            text,
    test_drive_done   boolean,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    cre_assigned_at   timestamptz not null default now(),
    ps_assigned_at    timestamptz,
    first_call_date   date,
    first_call_at     timestamptz,
    change_id         bigint unique                -- null until the feed's sequencer numbers the committed change
);
-- The sequencer's work list: committed rows not yet numbered. Partial, so it stays tiny.
create index leads_unsequenced on leads (id) where change_id is null;

-- One row per source/sub-source seen for a lead (the original included): "exact duplicate" is a conflict here.
create table lead_sources (
    id          bigint generated always as identity primary key,
    lead_id     bigint not null references leads (id),
    source      text not null,
    sub_source  text not null,
    cre_id      uuid not null references profiles (id),
    created_at  timestamptz not null default now(),
    unique (lead_id, source, sub_source)
);

create table call_attempts (
    id              bigint generated always as identity primary key,
    lead_id         bigint not null references leads (id),
    uid             text not null,
    call_no         int not null,              -- 1 = first call ... 7 = seventh
    attempt         int not null,              -- running number of attempts on this lead
    lead_status     text not null,
    cre_id          uuid not null references profiles (id),
    follow_up_date  date,
    remark          text,
    final_status    text not null,
    created_at      timestamptz not null default now(),
    unique (lead_id, attempt)
);

create table ps_followups (
    id              bigint generated always as identity primary key,
    lead_id         bigint not null references leads (id),
    ps_id           uuid not null references profiles (id),
    ps_branch       text,
    customer_name   text not null,
    phone           text not null,
    source          text not null,
    cre_id          uuid not null references profiles (id),
    lead_category   text,
    model_interested text,
    final_status    text not null default 'Pending',
    ps_assigned_at  timestamptz not null default now()
);
create index ps_followups_lead on ps_followups (lead_id);

-- E-mails are written inside create_lead's transaction and sent later by a worker (never inline).
create table email_outbox (
    id               bigint generated always as identity primary key,
    lead_id          bigint references leads (id),
    to_email         text not null,
    subject          text not null,
    body             text not null,
    status           text not null default 'pending' check (status in ('pending', 'sent', 'failed')),
    attempts         int not null default 0,
    next_attempt_at  timestamptz not null default now(),
    last_error       text,
    created_at       timestamptz not null default now(),
    sent_at          timestamptz
);
-- The worker's claim query: due pending mails, oldest first.
create index email_outbox_due on email_outbox (next_attempt_at, id) where status = 'pending';

-- Idempotency ledger: one row per client_ref, holding the first answer given for it.
create table lead_requests (
    client_ref    uuid primary key,
    user_id       uuid not null,
    payload_hash  text not null,
    answer        jsonb,
    created_at    timestamptz not null default now()
);

-- Dashboard aggregates. create_lead appends one row to stats_events (an insert never waits for another
-- transaction); dashboard_summary folds the pending events into the narrow per-day tables below before reading them.
-- Updating the per-day rows inside create_lead instead would make every concurrent create of the same branch and
-- hour queue on one row lock until commit. Days and hours are the desk's local time (Asia/Kolkata). Four narrow
-- tables rather than one wide one: a row per combination of every dimension would be nearly as many rows as leads.
create table stats_events (
    id            bigint generated always as identity primary key,
    at            timestamptz not null,
    branch        text not null,              -- '' = no branch
    cre_id        uuid not null,
    source        text not null,
    sub_source    text not null,
    lead_status   text not null,              -- '' = no status given
    outcome       text not null,
    final_status  text not null,
    with_ps       boolean not null,
    first_call    boolean not null,
    follow_up     date                        -- a new pending lead's follow-up day
);
create table stats_cre (
    day              date not null,
    branch           text not null,              -- '' = no branch
    cre_id           uuid not null,
    leads            int not null default 0,
    added_sources    int not null default 0,
    exact_dups       int not null default 0,
    with_ps          int not null default 0,
    pending          int not null default 0,
    won              int not null default 0,
    lost             int not null default 0,
    first_calls      int not null default 0,
    first_call_secs  bigint not null default 0,
    primary key (day, branch, cre_id)
);
create table stats_source (
    day            date not null,
    branch         text not null,
    source         text not null,
    sub_source     text not null,
    leads          int not null default 0,
    added_sources  int not null default 0,
    exact_dups     int not null default 0,
    primary key (day, branch, source, sub_source)
);
create table stats_status (
    day          date not null,
    branch       text not null,
    lead_status  text not null,                  -- '' = no status given
    leads        int not null default 0,
    primary key (day, branch, lead_status)
);
-- Pending follow-ups per follow-up day, so "due today" and "overdue" are a range of small rows, not a count over
-- the leads table.
create table stats_follow_up (
    day     date not null,
    branch  text not null,
    leads   int not null default 0,
    primary key (day, branch)
);
create table stats_hour (
    day     date not null,
    branch  text not null,
    hour    smallint not null,
    leads   int not null default 0,
    primary key (day, branch, hour)
);

-- Applied migrations (the reference server's runner records them here).
create table if not exists schema_migrations (
    version     text primary key,
    applied_at  timestamptz not null default now()
);

-- Row-level security everywhere. The API roles get no table privileges at all; with RLS on and no policy for them,
-- even a stray grant would show nothing. A user may read their own profile row.
alter table profiles enable row level security;
alter table branches enable row level security;
alter table sources enable row level security;
alter table sub_sources enable row level security;
alter table models enable row level security;
alter table lead_statuses enable row level security;
alter table leads enable row level security;
alter table lead_sources enable row level security;
alter table call_attempts enable row level security;
alter table ps_followups enable row level security;
alter table email_outbox enable row level security;
alter table lead_requests enable row level security;
alter table stats_events enable row level security;
alter table stats_cre enable row level security;
alter table stats_source enable row level security;
alter table stats_status enable row level security;
alter table stats_hour enable row level security;
alter table stats_follow_up enable row level security;
alter table schema_migrations enable row level security;

revoke all on all tables in schema public from anon, authenticated;
revoke all on all sequences in schema public from anon, authenticated;
grant select on profiles to authenticated;
create policy profiles_self on profiles for select to authenticated using (id = auth.uid());
