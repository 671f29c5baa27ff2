-- The lead after its first call: calls as appended events with the lead's state derived from the latest one,
-- the lead's history, reassignment, campaign imports, a feed that carries the worklist, and a dashboard that follows
-- the calls. Runs unchanged on hosted Supabase: every UPDATE/DELETE has a WHERE (pg-safeupdate), stable functions
-- only read (they run READ ONLY there), nothing here touches the auth schema.

-- ---------------------------------------------------------------------------------------------------------------
-- Schema
-- ---------------------------------------------------------------------------------------------------------------

alter table leads
    add column follow_up_at     timestamptz,                 -- set only when a time of day was given ("call me at 4")
    add column last_call_at     timestamptz,
    add column call_count       int not null default 0,
    add column won_at           timestamptz,
    add column lost_at          timestamptz,
    -- called_at of the call that set the current state; null = never called (an imported lead). The state rule
    -- compares a new call's called_at with this.
    add column state_called_at  timestamptz;

-- Calls keep what they said even when a newer call's state stands (applied = false).
alter table call_attempts
    add column called_at         timestamptz,                -- when the desk logged it (created_at = received)
    add column applied           boolean not null default true,
    add column lead_category     text,
    add column model_interested  text,
    add column follow_up_at      timestamptz,
    add column test_drive_done   boolean,
    add column ps_id             uuid references profiles (id),
    add column branch            text;

update call_attempts set called_at = created_at where called_at is null;
alter table call_attempts alter column called_at set not null;

-- Leads already called: their counters, and the time their state was set.
update leads l
   set call_count = c.n, last_call_at = c.last, state_called_at = c.last
  from (select lead_id, count(*)::int as n, max(called_at) as last from call_attempts group by lead_id) c
 where c.lead_id = l.id;

-- Who owned a lead when: every reassignment (shown in lead_detail).
create table lead_owner_changes (
    id        bigint generated always as identity primary key,
    lead_id   bigint not null references leads (id),
    from_cre  uuid references profiles (id),
    to_cre    uuid not null references profiles (id),
    by_id     uuid not null references profiles (id),
    at        timestamptz not null default now()
);
create index lead_owner_changes_lead on lead_owner_changes (lead_id);
-- lead_detail reads a lead's sources and calls by lead: (lead_id, ...) indexes exist through the unique keys.

alter table lead_owner_changes enable row level security;
revoke all on lead_owner_changes from anon, authenticated;

-- Dashboard: calls per CRE and day, and the conversions they made.
alter table stats_cre
    add column calls       int not null default 0,
    add column won_calls   int not null default 0,
    add column lost_calls  int not null default 0;

-- Pending follow-ups by day, branch and owner, kept equal to the leads' current state by signed deltas: every state
-- change appends (-1 for the old day, +1 for the new) and dashboard_summary folds them. Appends never wait on each
-- other (see stats_events in 001). Replaces stats_follow_up, which only ever counted a lead's first follow-up.
create table stats_follow_up_events (
    id      bigint generated always as identity primary key,
    day     date not null,
    branch  text not null,
    cre_id  uuid not null,
    delta   int not null
);
create table stats_follow_up_cre (
    day     date not null,
    branch  text not null,
    cre_id  uuid not null,
    leads   int not null default 0,
    primary key (day, branch, cre_id)
);
alter table stats_follow_up_events enable row level security;
alter table stats_follow_up_cre enable row level security;
revoke all on stats_follow_up_events, stats_follow_up_cre from anon, authenticated;

insert into stats_follow_up_cre (day, branch, cre_id, leads)
select follow_up_date, coalesce(branch, ''), cre_id, count(*)
  from leads
 where final_status = 'Pending' and follow_up_date is not null
 group by 1, 2, 3;

-- The worklist's follow-up lists read the feed on the desk, but the server's own "overdue" reads stay indexed too.
create index call_attempts_called on call_attempts (lead_id, called_at);

-- ---------------------------------------------------------------------------------------------------------------
-- Input rules shared by every function
-- ---------------------------------------------------------------------------------------------------------------

-- Text field of a payload: a JSON string or null. Control characters and line/paragraph separators (a paste from
-- a spreadsheet or a chat keeps them; one in a name broke the PS e-mail's Subject) are replaced by a space, runs of
-- spaces become one, then trimmed; empty = null; bounded length.
create or replace function _text_field(p_lead jsonb, p_key text, p_max int) returns text
language plpgsql immutable
as $$
declare
    v text;
begin
    if not (p_lead ? p_key) or jsonb_typeof(p_lead -> p_key) = 'null' then
        return null;
    end if;
    if jsonb_typeof(p_lead -> p_key) <> 'string' then
        perform _fail('invalid_type', p_key || ' must be text.', 422, p_key);
    end if;
    v := regexp_replace(p_lead ->> p_key, '[\u0001-\u001f\u007f-\u009f\u2028\u2029]+', ' ', 'g');
    v := nullif(btrim(regexp_replace(v, ' {2,}', ' ', 'g')), '');
    if length(v) > p_max then
        perform _fail('too_long', p_key || ' is longer than ' || p_max || ' characters.', 422, p_key);
    end if;
    return v;
end
$$;

-- A person's name must contain something besides spaces, punctuation, digits and invisible characters
-- (zero-width spaces, joiners, direction marks, BOM, soft hyphen): U+200B alone is not a name.
create function _has_visible_letters(p_name text) returns boolean
language sql immutable
as $$
    select length(regexp_replace(
        p_name,
        '[[:space:]!-@\[-`{-~\u00a0\u00ad\u2000-\u200f\u2010-\u206f\u3000\ufeff\ufe00-\ufe0f]', '', 'g')) > 0
$$;

create function _name_field(p jsonb, p_key text) returns text
language plpgsql immutable
as $$
declare
    v text := _text_field(p, p_key, 120);
begin
    if v is null then
        perform _fail('name_required', 'Enter the customer''s name.', 422, p_key);
    end if;
    if not _has_visible_letters(v) then
        perform _fail('invalid_name', 'The customer''s name must contain letters.', 422, p_key);
    end if;
    return v;
end
$$;

-- A follow-up: "YYYY-MM-DD", or a date and a time of day ("YYYY-MM-DDTHH:MM[:SS][offset]", no offset = the desk's
-- time zone). Returns the day and, only when a time was given, the instant. Within a year of today either way: a
-- call logged during an outage may arrive after its follow-up day.
create function _follow_up_field(p jsonb, p_key text, out day date, out at timestamptz)
language plpgsql stable
set search_path = public, pg_temp
as $$
declare
    v text := _text_field(p, p_key, 40);
    today date := (now() at time zone desk_tz())::date;
begin
    if v is null then
        return;
    end if;
    begin
        if v ~ '^\d{4}-\d{2}-\d{2}$' then
            day := v::date;
        elsif v ~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$' then
            at := v::timestamp at time zone desk_tz();
        elsif v ~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)$' then
            at := v::timestamptz;
        else
            perform _fail('invalid_date', 'The follow-up must be a date (YYYY-MM-DD) or a date and time.', 422,
                          p_key);
        end if;
    exception when datetime_field_overflow or invalid_datetime_format or invalid_time_zone_displacement_value then
        perform _fail('invalid_date', 'The follow-up is not a real date or time.', 422, p_key);
    end;
    if at is not null then
        day := (at at time zone desk_tz())::date;
    end if;
    if day < today - 366 or day > today + 366 then
        perform _fail('follow_up_out_of_range', 'The follow-up must be within a year of today.', 422, p_key);
    end if;
end
$$;

-- When the desk logged a call: an ISO 8601 instant with its offset. Later than a few minutes from now is a desk
-- clock running fast: clamped to now. Older than 30 days is refused (a queue that old needs a person to look).
create function _called_at_field(p jsonb, p_key text, p_required boolean) returns timestamptz
language plpgsql stable
set search_path = public, pg_temp
as $$
declare
    v text := _text_field(p, p_key, 40);
    t timestamptz;
begin
    if v is null then
        if p_required then
            perform _fail('called_at_required', 'called_at (when the call was logged) is required.', 422, p_key);
        end if;
        return now();
    end if;
    if v !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)$' then
        perform _fail('invalid_called_at', 'called_at must be an ISO 8601 time with its offset.', 422, p_key);
    end if;
    begin
        t := v::timestamptz;
    exception when datetime_field_overflow or invalid_datetime_format or invalid_time_zone_displacement_value then
        perform _fail('invalid_called_at', 'called_at is not a real time.', 422, p_key);
    end;
    if t > now() + interval '5 minutes' then
        return now();
    end if;
    if t < now() - interval '30 days' then
        perform _fail('called_at_too_old', 'This call was logged more than 30 days ago; it was not recorded.', 422,
                      p_key);
    end if;
    return t;
end
$$;

create function _status_field(p jsonb, p_key text, p_required boolean) returns text
language plpgsql stable
set search_path = public, pg_temp
as $$
declare
    v text := _text_field(p, p_key, 60);
begin
    if v is null then
        if p_required then
            perform _fail('status_required', 'Choose the call''s status.', 422, p_key);
        end if;
        return null;
    end if;
    if not exists (select from lead_statuses where name = v) then
        perform _fail('unknown_status', 'Unknown lead status: ' || v || '.', 422, p_key);
    end if;
    return v;
end
$$;

create function _uuid_field(p jsonb, p_key text, p_code text, p_message text) returns uuid
language plpgsql immutable
as $$
declare
    v text := _text_field(p, p_key, 64);
begin
    if v is null then
        return null;
    end if;
    if v !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
        perform _fail(p_code, p_message, 422, p_key);
    end if;
    return v::uuid;
end
$$;

-- The idempotency ledger for any operation: the first answer for a client_ref is the answer. Returns null when
-- this call is the first (carry on and record the answer with _ledger_answer), or the stored answer marked replayed.
-- A concurrent twin blocks on the insert until the first commits, then finds its row.
create function _ledger_claim(p_ref uuid, p_user uuid, p_payload jsonb) returns jsonb
language plpgsql
set search_path = public, pg_temp
as $$
declare
    v_hash text := md5(p_payload::text);
    v_prev lead_requests;
begin
    insert into lead_requests (client_ref, user_id, payload_hash) values (p_ref, p_user, v_hash)
    on conflict (client_ref) do nothing;
    if found then
        return null;
    end if;
    select * into v_prev from lead_requests where client_ref = p_ref;
    if v_prev.user_id <> p_user or v_prev.payload_hash <> v_hash then
        perform _fail('client_ref_reused', 'This submission id was already used for something else; nothing was '
                      'saved.', 409, 'client_ref');
    end if;
    return v_prev.answer || jsonb_build_object('replayed', true);
end
$$;

create function _ledger_answer(p_ref uuid, p_answer jsonb) returns jsonb
language sql
set search_path = public, pg_temp
as $$
    update lead_requests set answer = p_answer where client_ref = p_ref;
    select p_answer;
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- The state rule
-- ---------------------------------------------------------------------------------------------------------------

-- One pending follow-up counted or uncounted for the dashboard (an append; folded by _fold_stats).
create function _follow_up_delta(p_lead leads, p_delta int) returns void
language sql
set search_path = public, pg_temp
as $$
    insert into stats_follow_up_events (day, branch, cre_id, delta)
    select p_lead.follow_up_date, coalesce(p_lead.branch, ''), p_lead.cre_id, p_delta
     where p_lead.final_status = 'Pending' and p_lead.follow_up_date is not null
$$;

-- The PS hand-off: a PS follow-up row and the e-mail to the PS (sent later by the mail worker).
create function _hand_off(p_lead leads, p_ps profiles, p_by profiles, p_at timestamptz) returns void
language plpgsql
set search_path = public, pg_temp
as $$
begin
    insert into ps_followups (lead_id, ps_id, ps_branch, customer_name, phone, source, cre_id, lead_category,
                              model_interested, final_status, ps_assigned_at)
    values (p_lead.id, p_ps.id, p_ps.branch, p_lead.customer_name, p_lead.phone, p_lead.source, p_by.id,
            p_lead.lead_category, p_lead.model_interested, p_lead.final_status, p_at);
    insert into email_outbox (lead_id, to_email, subject, body)
    values (p_lead.id, p_ps.email,
            'Lead ' || p_lead.uid || ': ' || p_lead.customer_name,
            'Hello ' || p_ps.full_name || E',\n\n' || p_by.full_name || ' assigned you a lead.' || E'\n\n'
            || 'UID: ' || p_lead.uid || E'\nCustomer: ' || p_lead.customer_name || E'\nMobile: ' || p_lead.phone
            || E'\nSource: ' || p_lead.source || ' / ' || p_lead.sub_source
            || E'\nStatus: ' || coalesce(p_lead.lead_status, '-')
            || E'\nModel: ' || coalesce(p_lead.model_interested, '-')
            || E'\nCategory: ' || coalesce(p_lead.lead_category, '-')
            || E'\nFollow-up: ' || coalesce(p_lead.follow_up_date::text, '-')
            || E'\nRemark: ' || coalesce(p_lead.remark, '-')
            || E'\n\nCRE Desk');
end
$$;

-- One call on a lead the caller has locked (FOR UPDATE): appended and numbered; it sets the lead's state only when
-- no call with a later called_at already did (ties: this later-received one wins). Returns the attempt number and
-- whether the state was applied. Fields the call leaves out (null category, model, test drive, branch, PS) keep
-- the lead's values; status, final status and follow-up are always the call's.
create function _apply_call(
    p_lead leads, p_by profiles, p_called_at timestamptz, p_status text, p_category text, p_model text,
    p_final text, p_follow date, p_follow_at timestamptz, p_remark text, p_ps profiles, p_test_drive boolean,
    p_branch text, out attempt_no int, out applied boolean, out lead leads
)
language plpgsql
set search_path = public, pg_temp
as $$
declare
    v_now timestamptz := now();
    v_old leads := p_lead;
begin
    attempt_no := p_lead.call_count + 1;
    applied := p_lead.state_called_at is null or p_called_at >= p_lead.state_called_at;
    insert into call_attempts (lead_id, uid, call_no, attempt, lead_status, cre_id, follow_up_date, remark,
                               final_status, created_at, called_at, applied, lead_category, model_interested,
                               follow_up_at, test_drive_done, ps_id, branch)
    values (p_lead.id, p_lead.uid, least(attempt_no, 7), attempt_no, p_status, p_by.id, p_follow, p_remark,
            p_final, v_now, p_called_at, applied, p_category, p_model, p_follow_at, p_test_drive, p_ps.id, p_branch);

    if applied then
        update leads set
            lead_status = p_status,
            lead_category = coalesce(p_category, lead_category),
            model_interested = coalesce(p_model, model_interested),
            final_status = p_final,
            follow_up_date = p_follow,
            follow_up_at = p_follow_at,
            remark = coalesce(p_remark, remark),
            test_drive_done = coalesce(p_test_drive, test_drive_done),
            branch = coalesce(p_branch, p_ps.branch, branch),
            ps_id = coalesce(p_ps.id, ps_id),
            ps_assigned_at = case when p_ps.id is not null and p_ps.id is distinct from ps_id then v_now
                                  else ps_assigned_at end,
            won_at = case when p_final <> 'Won' then null when final_status = 'Won' then won_at else p_called_at end,
            lost_at = case when p_final <> 'Lost' then null when final_status = 'Lost' then lost_at else p_called_at end,
            state_called_at = p_called_at,
            call_count = attempt_no,
            last_call_at = greatest(last_call_at, p_called_at),
            first_call_at = coalesce(first_call_at, p_called_at),
            first_call_date = coalesce(first_call_date, case when p_status not in ('RNR', 'Call me Back')
                                                             then (p_called_at at time zone desk_tz())::date end),
            updated_at = v_now,
            change_id = null  -- the feed's sequencer numbers this change after commit
         where id = p_lead.id
        returning * into lead;
        perform _follow_up_delta(v_old, -1);
        perform _follow_up_delta(lead, 1);
        if p_ps.id is not null and p_ps.id is distinct from v_old.ps_id then
            perform _hand_off(lead, p_ps, p_by, v_now);
        end if;
    else
        update leads set call_count = attempt_no, last_call_at = greatest(last_call_at, p_called_at),
                         updated_at = v_now, change_id = null
         where id = p_lead.id
        returning * into lead;
    end if;

    -- The dashboard counts every call, and the conversions an applied call made.
    insert into stats_events (at, branch, cre_id, source, sub_source, lead_status, outcome, final_status, with_ps,
                              first_call, follow_up)
    values (p_called_at, coalesce(lead.branch, ''), p_by.id, lead.source, lead.sub_source, p_status, 'call',
            case when applied and p_final = 'Won' and v_old.final_status <> 'Won' then 'Won'
                 when applied and p_final = 'Lost' and v_old.final_status <> 'Lost' then 'Lost'
                 else 'Pending' end,
            false, false, null);
end
$$;

-- What a desk shows about a lead (answers, the banner's summary): the feed's row as an object.
create or replace function lead_summary(p_lead_id bigint) returns jsonb
language sql stable
set search_path = public, pg_temp
as $$
    select jsonb_build_object(
        'lead_id', l.id, 'uid', l.uid, 'phone', l.phone, 'customer_name', l.customer_name,
        'sources', l.sources, 'lead_status', l.lead_status, 'final_status', l.final_status,
        'lead_category', l.lead_category, 'model_interested', l.model_interested,
        'branch', l.branch, 'cre_id', l.cre_id, 'cre_name', c.full_name, 'ps_name', p.full_name,
        'ps_email', p.email, 'created_at', l.created_at, 'follow_up_date', l.follow_up_date,
        'follow_up_at', l.follow_up_at, 'last_call_at', l.last_call_at, 'call_count', l.call_count,
        'won_at', l.won_at, 'lost_at', l.lost_at, 'updated_at', l.updated_at, 'test_drive_done', l.test_drive_done)
    from leads l
    join profiles c on c.id = l.cre_id
    left join profiles p on p.id = l.ps_id
    where l.id = p_lead_id
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- create_lead: as in 002, plus called_at / follow_up_at, the state rule on a known number, and the original source
-- being the one first called about.
-- ---------------------------------------------------------------------------------------------------------------

create or replace function create_lead(lead jsonb) returns jsonb
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    me profiles;
    allowed_keys constant text[] := array[
        'client_ref', 'customer_name', 'phone', 'phone_raw', 'source', 'sub_source', 'lead_status', 'lead_category',
        'model_interested', 'branch', 'ps_email', 'final_status', 'follow_up_date', 'follow_up_at', 'remark',
        'test_drive_done', 'called_at'];
    bad_key text;
    v_ref uuid;
    v_name text;
    v_phone text;
    v_phone_raw text;
    v_source text;
    v_sub text;
    v_letter text;
    v_status text;
    v_category text;
    v_model text;
    v_branch text;
    v_ps_email text;
    v_ps profiles;
    v_final text;
    v_follow date;
    v_follow_at timestamptz;
    v_remark text;
    v_test_drive boolean;
    v_called_at timestamptz;
    v_prev jsonb;
    v_lead leads;
    v_outcome text;
    v_call record;
    v_attempt int;
    v_applied boolean;
    v_answer jsonb;
    v_now timestamptz := now();
begin
    me := _caller(array['cre', 'team_lead', 'admin']);

    -- 1. Shape and catalogue checks: all before anything is written.
    if lead is null or jsonb_typeof(lead) <> 'object' then
        perform _fail('invalid_payload', 'The lead must be a JSON object.', 422);
    end if;
    select k into bad_key from jsonb_object_keys(lead) as k where k <> all (allowed_keys) limit 1;
    if bad_key is not null then
        perform _fail('unknown_field', 'Unknown field: ' || left(bad_key, 60) || '.', 422, left(bad_key, 60));
    end if;

    v_ref := _uuid_field(lead, 'client_ref', 'invalid_client_ref',
                         'client_ref must be a UUID made when the lead was queued.');
    if v_ref is null then
        perform _fail('invalid_client_ref', 'client_ref must be a UUID made when the lead was queued.', 422,
                      'client_ref');
    end if;

    v_name := _name_field(lead, 'customer_name');

    v_phone := _text_field(lead, 'phone', 32);
    if v_phone is null then
        perform _fail('phone_required', 'Enter the customer''s mobile number.', 422, 'phone');
    end if;
    if v_phone !~ '^\+91[6-9][0-9]{9}$' then
        perform _fail('invalid_phone', 'The mobile number must be an Indian mobile in E.164 form (+91 and 10 digits '
                      'starting 6-9).', 422, 'phone');
    end if;
    v_phone_raw := _text_field(lead, 'phone_raw', 64);

    v_source := _text_field(lead, 'source', 60);
    v_sub := _text_field(lead, 'sub_source', 60);
    if v_source is null then
        perform _fail('source_required', 'Choose a source.', 422, 'source');
    end if;
    if v_sub is null then
        perform _fail('sub_source_required', 'Choose a sub-source.', 422, 'sub_source');
    end if;
    select ss.uid_letter into v_letter from sub_sources ss join sources s on s.code = ss.source
     where ss.source = v_source and ss.sub_source = v_sub and ss.active and s.active;
    if v_letter is null then
        if not exists (select from sources where code = v_source and active) then
            perform _fail('unknown_source', 'Unknown source: ' || v_source || '.', 422, 'source');
        end if;
        perform _fail('unknown_sub_source', v_sub || ' is not a sub-source of ' || v_source || '.', 422, 'sub_source');
    end if;

    v_status := _status_field(lead, 'lead_status', false);

    v_category := _text_field(lead, 'lead_category', 20);
    if v_category is not null and v_category not in ('Hot', 'Warm', 'Cold') then
        perform _fail('unknown_category', 'Lead category must be Hot, Warm or Cold.', 422, 'lead_category');
    end if;

    v_model := _text_field(lead, 'model_interested', 80);
    if v_model is not null and not exists (select from models where name = v_model and active) then
        perform _fail('unknown_model', 'Unknown model: ' || v_model || '.', 422, 'model_interested');
    end if;

    v_branch := _text_field(lead, 'branch', 60);
    if v_branch is not null and not exists (select from branches where code = v_branch and active) then
        perform _fail('unknown_branch', 'Unknown branch: ' || v_branch || '.', 422, 'branch');
    end if;

    v_ps_email := _text_field(lead, 'ps_email', 254);
    if v_ps_email is not null then
        select * into v_ps from profiles where email = lower(v_ps_email) and role = 'ps' and active;
        if not found then
            perform _fail('unknown_ps', 'No active product specialist with e-mail ' || v_ps_email || '.', 422,
                          'ps_email');
        end if;
        if v_branch is not null and v_ps.branch is distinct from v_branch then
            perform _fail('ps_not_in_branch', v_ps.full_name || ' does not work at ' || v_branch || '.', 422,
                          'ps_email');
        end if;
        v_branch := coalesce(v_branch, v_ps.branch);
    end if;

    v_final := coalesce(_text_field(lead, 'final_status', 20), 'Pending');
    if v_final not in ('Pending', 'Won', 'Lost') then
        perform _fail('unknown_final_status', 'Final status must be Pending, Won or Lost.', 422, 'final_status');
    end if;

    select f.day, f.at into v_follow, v_follow_at from _follow_up_field(lead, 'follow_up_at') f;
    if v_follow is null then
        select f.day into v_follow from _follow_up_field(lead, 'follow_up_date') f;
        if v_follow is not null and (lead ->> 'follow_up_date') !~ '^\d{4}-\d{2}-\d{2}$' then
            perform _fail('invalid_date', 'Follow-up date must be a date (YYYY-MM-DD).', 422, 'follow_up_date');
        end if;
    end if;
    if v_final = 'Pending' and v_follow is null and v_status is distinct from 'RNR' then
        perform _fail('follow_up_required', 'A pending lead needs a follow-up date (except RNR).', 422,
                      'follow_up_date');
    end if;

    v_remark := _text_field(lead, 'remark', 2000);
    if (lead ? 'test_drive_done') and jsonb_typeof(lead -> 'test_drive_done') not in ('boolean', 'null') then
        perform _fail('invalid_type', 'test_drive_done must be true, false or null.', 422, 'test_drive_done');
    end if;
    v_test_drive := (lead ->> 'test_drive_done')::boolean;
    v_called_at := _called_at_field(lead, 'called_at', false);

    -- 2. Idempotency.
    v_prev := _ledger_claim(v_ref, me.id, lead);
    if v_prev is not null then
        return v_prev;
    end if;

    -- 3. Insert; the unique phone index decides races. No check-then-insert.
    insert into leads (uid, phone, phone_raw, customer_name, source, sub_source, sources, lead_status, lead_category,
                       model_interested, branch, cre_id, ps_id, final_status, follow_up_date, follow_up_at, remark,
                       test_drive_done, created_at, updated_at, cre_assigned_at, ps_assigned_at, first_call_date,
                       first_call_at, last_call_at, call_count, state_called_at, won_at, lost_at)
    values (uid_for(v_letter, v_phone, nextval('lead_uid_seq')), v_phone, v_phone_raw, v_name, v_source, v_sub,
            jsonb_build_array(jsonb_build_object('source', v_source, 'sub_source', v_sub, 'at', v_called_at)),
            v_status, v_category, v_model, v_branch, me.id, v_ps.id, v_final, v_follow, v_follow_at, v_remark,
            v_test_drive, v_now, v_now, v_now, case when v_ps.id is not null then v_now end,
            case when v_status is not null and v_status not in ('RNR', 'Call me Back')
                 then (v_called_at at time zone desk_tz())::date end,
            case when v_status is not null then v_called_at end,
            case when v_status is not null then v_called_at end,
            case when v_status is not null then 1 else 0 end,
            case when v_status is not null then v_called_at end,
            case when v_final = 'Won' then v_called_at end,
            case when v_final = 'Lost' then v_called_at end)
    on conflict (phone) do nothing
    returning * into v_lead;

    if found then
        v_outcome := 'created';
        insert into lead_sources (lead_id, source, sub_source, cre_id, created_at)
        values (v_lead.id, v_source, v_sub, me.id, v_called_at);
        if v_status is not null then
            v_attempt := 1;
            v_applied := true;
            insert into call_attempts (lead_id, uid, call_no, attempt, lead_status, cre_id, follow_up_date, remark,
                                       final_status, created_at, called_at, applied, lead_category, model_interested,
                                       follow_up_at, test_drive_done, ps_id, branch)
            values (v_lead.id, v_lead.uid, 1, 1, v_status, me.id, v_follow, v_remark, v_final, v_now, v_called_at,
                    true, v_category, v_model, v_follow_at, v_test_drive, v_ps.id, v_branch);
        end if;
        perform _follow_up_delta(v_lead, 1);
        if v_ps.id is not null then
            perform _hand_off(v_lead, v_ps, me, v_now);
        end if;
    else
        -- The number is already a lead (committed: ON CONFLICT waited for it). Lock it: sources, state and attempt
        -- numbers of one lead change one transaction at a time.
        select * into v_lead from leads where phone = v_phone for update;
        insert into lead_sources (lead_id, source, sub_source, cre_id, created_at)
        values (v_lead.id, v_source, v_sub, me.id, v_called_at)
        on conflict (lead_id, source, sub_source) do nothing;
        if found then
            v_outcome := 'added_source';
            -- Sources in the order they were called about; the first is the lead's original source, so two
            -- offline desks whose calls arrive in the wrong order still credit the one that really came first.
            update leads l set
                sources = s.sorted,
                source = s.sorted -> 0 ->> 'source',
                sub_source = s.sorted -> 0 ->> 'sub_source',
                updated_at = v_now,
                change_id = null
              from (select jsonb_agg(e order by (e ->> 'at')::timestamptz, n) as sorted
                      from jsonb_array_elements(v_lead.sources || jsonb_build_object(
                               'source', v_source, 'sub_source', v_sub, 'at', v_called_at))
                           with ordinality as x(e, n)) s
             where l.id = v_lead.id
            returning l.* into v_lead;
        else
            v_outcome := 'exact_duplicate';
        end if;
        if v_status is not null then
            select * into v_call
              from _apply_call(v_lead, me, v_called_at, v_status, v_category, v_model, v_final, v_follow,
                               v_follow_at, v_remark, v_ps, v_test_drive, v_branch);
            v_attempt := v_call.attempt_no;
            v_applied := v_call.applied;
            v_lead := v_call.lead;
        end if;
    end if;

    v_answer := jsonb_build_object('outcome', v_outcome, 'uid', v_lead.uid, 'lead_id', v_lead.id,
                                   'replayed', false, 'lead', lead_summary(v_lead.id));
    if v_attempt is not null then
        v_answer := v_answer || jsonb_build_object('attempt_no', v_attempt, 'applied', v_applied);
    end if;
    perform _ledger_answer(v_ref, v_answer);

    -- A call on a known number is counted by _apply_call; the creation (or the added source) here. The status is
    -- given only for a new lead: stats_status counts new leads by their first status.
    perform _bump_stats(coalesce(v_branch, v_lead.branch), me.id, v_source, v_sub,
                        case when v_outcome = 'created' then v_status end, v_outcome, v_final,
                        v_outcome = 'created' and v_ps.id is not null, v_outcome = 'created' and v_status is not null,
                        null);
    return v_answer;
end
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- log_call
-- ---------------------------------------------------------------------------------------------------------------

create function log_call(call jsonb) returns jsonb
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    me profiles;
    allowed_keys constant text[] := array[
        'client_ref', 'lead_id', 'lead_ref', 'called_at', 'lead_status', 'lead_category', 'model_interested',
        'final_status', 'follow_up_at', 'remark', 'ps_email', 'test_drive_done', 'branch'];
    bad_key text;
    v_ref uuid;
    v_lead_ref uuid;
    v_lead_id bigint;
    v_called_at timestamptz;
    v_status text;
    v_category text;
    v_model text;
    v_final text;
    v_follow date;
    v_follow_at timestamptz;
    v_remark text;
    v_ps_email text;
    v_ps profiles;
    v_test_drive boolean;
    v_branch text;
    v_prev jsonb;
    v_lead leads;
    v_call record;
    v_answer jsonb;
begin
    me := _caller(array['cre', 'team_lead', 'admin']);

    if call is null or jsonb_typeof(call) <> 'object' then
        perform _fail('invalid_payload', 'The call must be a JSON object.', 422);
    end if;
    select k into bad_key from jsonb_object_keys(call) as k where k <> all (allowed_keys) limit 1;
    if bad_key is not null then
        perform _fail('unknown_field', 'Unknown field: ' || left(bad_key, 60) || '.', 422, left(bad_key, 60));
    end if;
    v_ref := _uuid_field(call, 'client_ref', 'invalid_client_ref', 'client_ref must be a UUID made when the call '
                         'was queued.');
    if v_ref is null then
        perform _fail('invalid_client_ref', 'client_ref must be a UUID made when the call was queued.', 422,
                      'client_ref');
    end if;

    -- The lead: by id, or by the client_ref of the create_lead that made it (a lead created offline has no id yet).
    if (call ? 'lead_id') and jsonb_typeof(call -> 'lead_id') <> 'null' then
        if jsonb_typeof(call -> 'lead_id') <> 'number' or (call ->> 'lead_id') !~ '^[0-9]{1,18}$' then
            perform _fail('invalid_type', 'lead_id must be a lead''s id.', 422, 'lead_id');
        end if;
        v_lead_id := (call ->> 'lead_id')::bigint;
    end if;
    v_lead_ref := _uuid_field(call, 'lead_ref', 'invalid_lead_ref', 'lead_ref must be the client_ref of the lead''s '
                              'creation.');
    if (v_lead_id is null) = (v_lead_ref is null) then
        perform _fail('lead_required', 'Name the lead by lead_id or by lead_ref (one of them).', 422, 'lead_id');
    end if;

    v_called_at := _called_at_field(call, 'called_at', true);
    v_status := _status_field(call, 'lead_status', true);
    v_category := _text_field(call, 'lead_category', 20);
    if v_category is not null and v_category not in ('Hot', 'Warm', 'Cold') then
        perform _fail('unknown_category', 'Lead category must be Hot, Warm or Cold.', 422, 'lead_category');
    end if;
    v_model := _text_field(call, 'model_interested', 80);
    if v_model is not null and not exists (select from models where name = v_model and active) then
        perform _fail('unknown_model', 'Unknown model: ' || v_model || '.', 422, 'model_interested');
    end if;
    v_final := coalesce(_text_field(call, 'final_status', 20), 'Pending');
    if v_final not in ('Pending', 'Won', 'Lost') then
        perform _fail('unknown_final_status', 'Final status must be Pending, Won or Lost.', 422, 'final_status');
    end if;
    select f.day, f.at into v_follow, v_follow_at from _follow_up_field(call, 'follow_up_at') f;
    if v_final = 'Pending' and v_follow is null and v_status <> 'RNR' then
        perform _fail('follow_up_required', 'A pending lead needs a follow-up (except RNR).', 422, 'follow_up_at');
    end if;
    v_remark := _text_field(call, 'remark', 2000);
    if (call ? 'test_drive_done') and jsonb_typeof(call -> 'test_drive_done') not in ('boolean', 'null') then
        perform _fail('invalid_type', 'test_drive_done must be true, false or null.', 422, 'test_drive_done');
    end if;
    v_test_drive := (call ->> 'test_drive_done')::boolean;
    v_branch := _text_field(call, 'branch', 60);
    if v_branch is not null and not exists (select from branches where code = v_branch and active) then
        perform _fail('unknown_branch', 'Unknown branch: ' || v_branch || '.', 422, 'branch');
    end if;
    v_ps_email := _text_field(call, 'ps_email', 254);
    if v_ps_email is not null then
        select * into v_ps from profiles where email = lower(v_ps_email) and role = 'ps' and active;
        if not found then
            perform _fail('unknown_ps', 'No active product specialist with e-mail ' || v_ps_email || '.', 422,
                          'ps_email');
        end if;
    end if;

    v_prev := _ledger_claim(v_ref, me.id, call);
    if v_prev is not null then
        return v_prev;
    end if;

    if v_lead_id is null then
        select (answer ->> 'lead_id')::bigint into v_lead_id
          from lead_requests where client_ref = v_lead_ref and answer ? 'outcome' and answer ? 'lead_id';
    end if;
    select * into v_lead from leads where id = v_lead_id for update;
    if not found then
        perform _fail('unknown_lead', case when v_lead_ref is not null
                                           then 'The lead this call is about has not reached the server.'
                                           else 'No lead with that id.' end, 404, 'lead_id');
    end if;
    if v_ps.id is not null and v_ps.branch is distinct from coalesce(v_branch, v_lead.branch, v_ps.branch) then
        perform _fail('ps_not_in_branch', v_ps.full_name || ' does not work at '
                      || coalesce(v_branch, v_lead.branch) || '.', 422, 'ps_email');
    end if;

    select * into v_call
      from _apply_call(v_lead, me, v_called_at, v_status, v_category, v_model, v_final, v_follow, v_follow_at,
                       v_remark, v_ps, v_test_drive, v_branch);
    v_answer := jsonb_build_object('outcome', 'logged', 'lead_id', v_lead.id, 'uid', v_lead.uid,
                                   'attempt_no', v_call.attempt_no, 'applied', v_call.applied, 'replayed', false,
                                   'lead', lead_summary(v_lead.id));
    return _ledger_answer(v_ref, v_answer);
end
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- lead_detail: the lead view's whole history in one call; every part is read by the lead's id (indexed).
-- ---------------------------------------------------------------------------------------------------------------

create function lead_detail(lead_id bigint) returns json
language plpgsql stable
security definer
set search_path = public, pg_temp
as $$
#variable_conflict use_variable
declare
    v_id bigint := lead_detail.lead_id;
    result json;
begin
    perform _caller(array['cre', 'team_lead', 'admin']);
    if not exists (select from leads l where l.id = v_id) then
        perform _fail('unknown_lead', 'No lead with that id.', 404, 'lead_id');
    end if;
    select json_build_object(
        'lead', lead_summary(l.id) || jsonb_build_object(
                    'phone_raw', l.phone_raw, 'remark', l.remark, 'first_call_date', l.first_call_date,
                    'cre_assigned_at', l.cre_assigned_at, 'ps_assigned_at', l.ps_assigned_at),
        'sources', (select coalesce(json_agg(json_build_object(
                                'source', s.source, 'sub_source', s.sub_source, 'at', s.created_at,
                                'cre_name', p.full_name) order by s.created_at, s.id), '[]')
                      from lead_sources s left join profiles p on p.id = s.cre_id
                     where s.lead_id = l.id),
        'calls', (select coalesce(json_agg(json_build_object(
                              'attempt_no', c.attempt, 'called_at', c.called_at, 'received_at', c.created_at,
                              'cre_name', p.full_name, 'lead_status', c.lead_status,
                              'lead_category', c.lead_category, 'model_interested', c.model_interested,
                              'final_status', c.final_status, 'follow_up_date', c.follow_up_date,
                              'follow_up_at', c.follow_up_at, 'remark', c.remark,
                              'test_drive_done', c.test_drive_done, 'applied', c.applied) order by c.attempt), '[]')
                    from call_attempts c left join profiles p on p.id = c.cre_id
                   where c.lead_id = l.id),
        'ps_handoffs', (select coalesce(json_agg(json_build_object(
                                    'ps_name', ps.full_name, 'ps_email', ps.email, 'branch', f.ps_branch,
                                    'at', f.ps_assigned_at, 'by_name', by.full_name) order by f.ps_assigned_at, f.id),
                                  '[]')
                          from ps_followups f
                          join profiles ps on ps.id = f.ps_id
                          left join profiles by on by.id = f.cre_id
                         where f.lead_id = l.id),
        'owner_changes', (select coalesce(json_agg(json_build_object(
                                      'from_name', fr.full_name, 'to_name', t.full_name, 'by_name', by.full_name,
                                      'at', o.at) order by o.at, o.id), '[]')
                            from lead_owner_changes o
                            left join profiles fr on fr.id = o.from_cre
                            join profiles t on t.id = o.to_cre
                            join profiles by on by.id = o.by_id
                           where o.lead_id = l.id))
      into result
      from leads l
     where l.id = v_id;
    return result;
end
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- assign_leads: a team lead moves leads to another CRE (a sick colleague's list, a rebalanced day).
-- ---------------------------------------------------------------------------------------------------------------

create function assign_leads(lead_ids bigint[], cre_email text) returns json
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    me profiles;
    target profiles;
    v_now timestamptz := now();
    v_wanted int;
    v_found int;
    v_moved int;
begin
    me := _caller(array['team_lead', 'admin']);
    if lead_ids is null or cardinality(lead_ids) = 0 then
        perform _fail('no_leads', 'Choose the leads to assign.', 422, 'lead_ids');
    end if;
    if cardinality(lead_ids) > 10000 then
        perform _fail('too_many', 'Assign at most 10,000 leads at once.', 422, 'lead_ids');
    end if;
    select * into target from profiles p where p.email = lower(btrim(cre_email)) and p.role = 'cre' and p.active;
    if not found then
        perform _fail('unknown_cre', 'No active CRE with e-mail ' || coalesce(left(cre_email, 254), '') || '.', 422,
                      'cre_email');
    end if;

    select count(distinct x) into v_wanted from unnest(lead_ids) x where x is not null;
    -- Locked in id order, so two team leads moving overlapping sets cannot deadlock.
    with was as (
        select l.id, l.cre_id, l.final_status, l.follow_up_date, l.branch
          from leads l where l.id = any (lead_ids) order by l.id for update
    ), moved as (
        update leads l set cre_id = target.id, cre_assigned_at = v_now, updated_at = v_now, change_id = null
          from was w
         where l.id = w.id and w.cre_id <> target.id
        returning w.id, w.cre_id as from_cre, w.final_status, w.follow_up_date, w.branch
    ), history as (
        insert into lead_owner_changes (lead_id, from_cre, to_cre, by_id, at)
        select m.id, m.from_cre, target.id, me.id, v_now from moved m
        returning 1
    ), follow_ups as (
        -- a pending follow-up moves from the old owner's count to the new one's
        insert into stats_follow_up_events (day, branch, cre_id, delta)
        select m.follow_up_date, coalesce(m.branch, ''), d.cre, d.delta
          from moved m cross join lateral (values (m.from_cre, -1), (target.id, 1)) d(cre, delta)
         where m.final_status = 'Pending' and m.follow_up_date is not null
        returning 1
    )
    select (select count(*) from was), (select count(*) from moved) into v_found, v_moved;
    return json_build_object('assigned', v_moved, 'unchanged', v_found - v_moved, 'missing', v_wanted - v_found);
end
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- import_leads: campaign leads from a file, one batch (<= 1,000 rows) per call and per transaction. Rows are
-- checked one by one (a bad row is reported, never fails the batch), then written set-wise.
-- ---------------------------------------------------------------------------------------------------------------

create function import_leads(batch jsonb) returns json
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    me profiles;
    allowed_keys constant text[] := array['client_ref', 'source', 'sub_source', 'branch', 'assign_to', 'rows'];
    row_keys constant text[] := array['customer_name', 'phone', 'model_interested', 'remark', 'received_at'];
    bad_key text;
    v_ref uuid;
    v_source text;
    v_sub text;
    v_letter text;
    v_branch text;
    v_cres uuid[];
    v_email text;
    v_cre uuid;
    v_prev jsonb;
    v_now timestamptz := now();
    r record;
    v_name text;
    v_phone text;
    v_model text;
    v_remark text;
    v_received timestamptz;
    v_text text;
    v_rejected jsonb := '[]';
    v_idx int[] := '{}';
    v_names text[] := '{}';
    v_phones text[] := '{}';
    v_models text[] := '{}';
    v_remarks text[] := '{}';
    v_received_ats timestamptz[] := '{}';
    v_created int;
    v_added int;
    v_exact int;
    v_answer jsonb;
begin
    me := _caller(array['team_lead', 'admin']);
    if batch is null or jsonb_typeof(batch) <> 'object' then
        perform _fail('invalid_payload', 'The batch must be a JSON object.', 422);
    end if;
    select k into bad_key from jsonb_object_keys(batch) as k where k <> all (allowed_keys) limit 1;
    if bad_key is not null then
        perform _fail('unknown_field', 'Unknown field: ' || left(bad_key, 60) || '.', 422, left(bad_key, 60));
    end if;
    v_ref := _uuid_field(batch, 'client_ref', 'invalid_client_ref', 'client_ref must be a UUID made for the batch.');
    if v_ref is null then
        perform _fail('invalid_client_ref', 'client_ref must be a UUID made for the batch.', 422, 'client_ref');
    end if;
    v_source := _text_field(batch, 'source', 60);
    v_sub := _text_field(batch, 'sub_source', 60);
    select ss.uid_letter into v_letter from sub_sources ss join sources s on s.code = ss.source
     where ss.source = v_source and ss.sub_source = v_sub and ss.active and s.active;
    if v_letter is null then
        perform _fail('unknown_sub_source', coalesce(v_sub, '(none)') || ' is not a sub-source of '
                      || coalesce(v_source, '(none)') || '.', 422, 'sub_source');
    end if;
    v_branch := _text_field(batch, 'branch', 60);
    if v_branch is not null and not exists (select from branches where code = v_branch and active) then
        perform _fail('unknown_branch', 'Unknown branch: ' || v_branch || '.', 422, 'branch');
    end if;

    -- Who gets the leads: the chosen CREs, or every active CRE; round robin in row order.
    if not (batch ? 'assign_to') or jsonb_typeof(batch -> 'assign_to') = 'null' then
        select array_agg(id order by email) into v_cres from profiles where role = 'cre' and active;
        if v_cres is null then
            perform _fail('no_cres', 'There is no active CRE to give the leads to.', 422, 'assign_to');
        end if;
    elsif jsonb_typeof(batch -> 'assign_to') <> 'array' or jsonb_array_length(batch -> 'assign_to') = 0
          or jsonb_array_length(batch -> 'assign_to') > 500 then
        perform _fail('invalid_type', 'assign_to must be a list of CRE e-mails, or null for all CREs.', 422,
                      'assign_to');
    else
        v_cres := '{}';
        for v_email in select e from jsonb_array_elements(batch -> 'assign_to') a(e_json),
                                   lateral (select case when jsonb_typeof(a.e_json) = 'string'
                                                        then a.e_json #>> '{}' end as e) x
        loop
            select id into v_cre from profiles where email = lower(btrim(v_email)) and role = 'cre' and active;
            if v_cre is null then
                perform _fail('unknown_cre', 'No active CRE with e-mail ' || coalesce(left(v_email, 254), '?') || '.',
                              422, 'assign_to');
            end if;
            v_cres := v_cres || v_cre;
        end loop;
    end if;

    if not (batch ? 'rows') or jsonb_typeof(batch -> 'rows') <> 'array' then
        perform _fail('invalid_type', 'rows must be a list of leads.', 422, 'rows');
    end if;
    if jsonb_array_length(batch -> 'rows') = 0 then
        perform _fail('empty_batch', 'The batch has no rows.', 422, 'rows');
    end if;
    if jsonb_array_length(batch -> 'rows') > 1000 then
        perform _fail('batch_too_large', 'Send at most 1,000 rows per batch.', 422, 'rows');
    end if;

    v_prev := _ledger_claim(v_ref, me.id, batch);
    if v_prev is not null then
        return v_prev;
    end if;

    -- Row checks: each error is caught and reported with the row's index; the batch goes on.
    for r in select (x.n - 1)::int as idx, x.v from jsonb_array_elements(batch -> 'rows') with ordinality x(v, n)
    loop
        begin
            if jsonb_typeof(r.v) <> 'object' then
                perform _fail('invalid_row', 'The row is not a lead.', 422);
            end if;
            select k into bad_key from jsonb_object_keys(r.v) as k where k <> all (row_keys) limit 1;
            if bad_key is not null then
                perform _fail('unknown_field', 'Unknown field: ' || left(bad_key, 60) || '.', 422);
            end if;
            v_name := _name_field(r.v, 'customer_name');
            v_phone := _text_field(r.v, 'phone', 32);
            if v_phone is null or v_phone !~ '^\+91[6-9][0-9]{9}$' then
                perform _fail('invalid_phone', 'Not an Indian mobile number in E.164 form.', 422);
            end if;
            v_model := _text_field(r.v, 'model_interested', 80);
            if v_model is not null and not exists (select from models where name = v_model and active) then
                perform _fail('unknown_model', 'Unknown model: ' || v_model || '.', 422);
            end if;
            v_remark := _text_field(r.v, 'remark', 2000);
            -- When the campaign received the lead (a date, or a time; no offset = the desk's zone). Not after now.
            v_received := null;
            v_text := _text_field(r.v, 'received_at', 40);
            if v_text is not null then
                if v_text ~ '^\d{4}-\d{2}-\d{2}$' then
                    v_received := v_text::date::timestamp at time zone desk_tz();
                elsif v_text ~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$' then
                    v_received := v_text::timestamp at time zone desk_tz();
                elsif v_text ~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)$' then
                    v_received := v_text::timestamptz;
                else
                    perform _fail('invalid_received_at', 'received_at must be a date or a date and time.', 422);
                end if;
                v_received := least(v_received, v_now);
            end if;
            v_idx := v_idx || r.idx;
            v_names := v_names || v_name;
            v_phones := v_phones || v_phone;
            v_models := v_models || v_model;
            v_remarks := v_remarks || v_remark;
            v_received_ats := v_received_ats || coalesce(v_received, v_now);
        exception when sqlstate 'PGRST' then
            -- _fail's message is the PostgREST body as JSON: keep its code and message for the row.
            v_rejected := v_rejected || jsonb_build_object(
                'row', r.idx,
                'code', (sqlerrm::jsonb) ->> 'code',
                'message', (sqlerrm::jsonb) ->> 'message');
        when data_exception then
            v_rejected := v_rejected || jsonb_build_object('row', r.idx, 'code', 'invalid_row',
                                                           'message', 'The row has a value that could not be read.');
        end;
    end loop;

    -- Valid rows, in order; a number repeated inside the batch counts from its second row on as an exact duplicate.
    create temporary table if not exists _import_rows (
        idx int, customer_name text, phone text, model text, remark text, received_at timestamptz, first boolean,
        ord int, cre_id uuid, lead_id bigint, outcome text
    ) on commit drop;
    insert into _import_rows (idx, customer_name, phone, model, remark, received_at, first, ord)
    select u.idx, u.customer_name, u.phone, u.model, u.remark, u.received_at,
           row_number() over (partition by u.phone order by u.idx) = 1, 0
      from unnest(v_idx, v_names, v_phones, v_models, v_remarks, v_received_ats)
           as u(idx, customer_name, phone, model, remark, received_at);
    -- Round robin over the first rows of each number, in file order.
    update _import_rows t set ord = s.ord, cre_id = v_cres[1 + (s.ord % cardinality(v_cres))]
      from (select idx, (row_number() over (order by idx) - 1)::int as ord from _import_rows where first) s
     where t.idx = s.idx;

    -- New numbers: inserted in phone order (concurrent imports lock the unique index in one order).
    with ins as (
        insert into leads (uid, phone, phone_raw, customer_name, source, sub_source, sources, model_interested,
                           branch, cre_id, final_status, remark, created_at, updated_at, cre_assigned_at)
        select uid_for(v_letter, t.phone, nextval('lead_uid_seq')), t.phone, t.phone, t.customer_name, v_source,
               v_sub, jsonb_build_array(jsonb_build_object('source', v_source, 'sub_source', v_sub,
                                                           'at', t.received_at)),
               t.model, v_branch, t.cre_id, 'Pending', t.remark, v_now, v_now, v_now
          from _import_rows t where t.first order by t.phone
        on conflict (phone) do nothing
        returning id, phone
    )
    update _import_rows t set lead_id = ins.id, outcome = 'created' from ins where t.phone = ins.phone and t.first;
    insert into lead_sources (lead_id, source, sub_source, cre_id, created_at)
    select t.lead_id, v_source, v_sub, me.id, t.received_at from _import_rows t where t.outcome = 'created';

    -- Numbers already leads: lock them in id order, then record the source where it is new.
    update _import_rows t set lead_id = l.id
      from leads l where l.phone = t.phone and t.first and t.outcome is null;
    perform 1 from leads l where l.id in (select lead_id from _import_rows where first and outcome is null)
     order by l.id for update;
    with added as (
        insert into lead_sources (lead_id, source, sub_source, cre_id, created_at)
        select t.lead_id, v_source, v_sub, me.id, t.received_at from _import_rows t
         where t.first and t.outcome is null
        on conflict (lead_id, source, sub_source) do nothing
        returning lead_id
    )
    update _import_rows t set outcome = 'added_source' from added a where t.lead_id = a.lead_id and t.first;
    update leads l set
        sources = s.sorted,
        source = s.sorted -> 0 ->> 'source',
        sub_source = s.sorted -> 0 ->> 'sub_source',
        updated_at = v_now,
        change_id = null
      from (select t.lead_id,
                   (select jsonb_agg(e order by (e ->> 'at')::timestamptz, n)
                      from jsonb_array_elements(o.sources || jsonb_build_object(
                               'source', v_source, 'sub_source', v_sub, 'at', t.received_at))
                           with ordinality as x(e, n)) as sorted
              from _import_rows t join leads o on o.id = t.lead_id
             where t.outcome = 'added_source') s
     where l.id = s.lead_id;
    update _import_rows t set outcome = 'exact_duplicate' where t.outcome is null;

    select count(*) filter (where outcome = 'created'), count(*) filter (where outcome = 'added_source'),
           count(*) filter (where outcome = 'exact_duplicate')
      into v_created, v_added, v_exact
      from _import_rows;

    insert into stats_events (at, branch, cre_id, source, sub_source, lead_status, outcome, final_status, with_ps,
                              first_call, follow_up)
    select v_now, coalesce(v_branch, ''), case when t.outcome = 'created' then t.cre_id else me.id end, v_source, v_sub, '', t.outcome, 'Pending',
           false, false, null
      from _import_rows t;

    v_answer := jsonb_build_object('created', v_created, 'added_source', v_added, 'exact_duplicate', v_exact,
                                   'rejected', v_rejected, 'replayed', false);
    return _ledger_answer(v_ref, v_answer);
end
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- The feed carries the worklist.
-- ---------------------------------------------------------------------------------------------------------------

create or replace function lead_changes(since bigint, max_rows int default 5000) returns json
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    n int := least(greatest(coalesce(max_rows, 5000), 1), 20000);
    result json;
begin
    perform _caller(array['cre', 'team_lead', 'admin']);
    if since is null or since < 0 then
        perform _fail('invalid_cursor', 'since must be a change id >= 0.', 422, 'since');
    end if;
    -- The sequencer of 002: numbers committed, unnumbered rows after commit (see there).
    if pg_try_advisory_xact_lock(hashtext('crm.lead_changes.sequencer')) then
        update leads set change_id = nextval('lead_change_seq')
         where id in (select id from leads where change_id is null order by id for update skip locked limit 100000);
    end if;

    with page as (
        select l.change_id, l.id, l.phone, l.uid, l.customer_name, l.sources, l.lead_status, l.final_status,
               l.cre_id, l.ps_id, l.branch, l.created_at, l.follow_up_date, l.lead_category, l.model_interested,
               l.follow_up_at, l.last_call_at, l.call_count, l.won_at, l.lost_at, l.updated_at, l.test_drive_done
          from leads l
         where l.change_id > since
         order by l.change_id
         limit n
    ), seen as (
        select count(*) as rows, max(change_id) as last from page
    )
    select json_build_object(
        'columns', json_build_array('change_id', 'lead_id', 'phone', 'uid', 'customer_name', 'sources',
                                    'lead_status', 'final_status', 'cre_name', 'ps_name', 'branch', 'created_at',
                                    'follow_up_date', 'cre_id', 'lead_category', 'model_interested', 'follow_up_at',
                                    'last_call_at', 'call_count', 'won_at', 'lost_at', 'updated_at',
                                    'test_drive_done', 'ps_email'),
        'rows', coalesce((select json_agg(json_build_array(p.change_id, p.id, p.phone, p.uid, p.customer_name,
                                                           p.sources, p.lead_status, p.final_status, c.full_name,
                                                           s.full_name, p.branch, p.created_at, p.follow_up_date,
                                                           p.cre_id, p.lead_category, p.model_interested,
                                                           p.follow_up_at, p.last_call_at, p.call_count, p.won_at,
                                                           p.lost_at, p.updated_at, p.test_drive_done, s.email)
                                          order by p.change_id)
                            from page p
                            left join profiles c on c.id = p.cre_id
                            left join profiles s on s.id = p.ps_id), '[]'::json),
        'next_since', coalesce(seen.last, since),
        'more', seen.rows = n,
        'remaining', case when seen.rows = n
                          then greatest((select last_value from lead_change_seq) - seen.last, 0) else 0 end)
      into result
      from seen;
    return result;
end
$$;

-- The catalogue gains the active CREs (reassign and import choosers).
create or replace function catalog() returns json
language plpgsql stable
security definer
set search_path = public, pg_temp
as $$
begin
    perform _caller(array['cre', 'team_lead', 'admin', 'ps']);
    return json_build_object(
        'branches', (select coalesce(json_agg(code order by sort, code), '[]') from branches where active),
        'sources', (select coalesce(json_agg(json_build_object(
                        'code', s.code,
                        'sub_sources', (select coalesce(json_agg(ss.sub_source order by ss.sort, ss.sub_source), '[]')
                                          from sub_sources ss where ss.source = s.code and ss.active))
                        order by s.sort, s.code), '[]')
                      from sources s where s.active),
        'models', (select coalesce(json_agg(name order by sort, name), '[]') from models where active),
        'lead_statuses', (select coalesce(json_agg(json_build_object('name', name, 'first_call', first_call,
                                                                     'non_contact', non_contact)
                                                   order by sort, name), '[]') from lead_statuses),
        'lead_categories', json_build_array('Hot', 'Warm', 'Cold'),
        'final_statuses', json_build_array('Pending', 'Won', 'Lost'),
        'ps', (select coalesce(json_agg(json_build_object('email', email, 'name', full_name, 'branch', branch)
                                        order by branch, full_name), '[]')
                 from profiles where role = 'ps' and active),
        'cres', (select coalesce(json_agg(json_build_object('id', id, 'email', email, 'name', full_name,
                                                            'branch', branch) order by full_name, email), '[]')
                   from profiles where role = 'cre' and active),
        'version', (select coalesce(max(version), '') from schema_migrations));
end
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- The dashboard follows the calls.
-- ---------------------------------------------------------------------------------------------------------------

create or replace function _fold_stats() returns void
language plpgsql
set search_path = public, pg_temp
as $$
declare
    n bigint;
begin
    if not pg_try_advisory_xact_lock(hashtext('crm.stats.fold')) then
        return;
    end if;
    with ev as (
        delete from stats_events
         where id is not null  -- all visible events; pg-safeupdate wants a WHERE clause
        returning (at at time zone desk_tz())::date as day,
                  extract(hour from at at time zone desk_tz())::smallint as hour,
                  branch, cre_id, source, sub_source, lead_status, outcome, final_status, with_ps, first_call
    ), created as (
        select * from ev where outcome = 'created'
    ), c as (
        insert into stats_cre as s (day, branch, cre_id, leads, added_sources, exact_dups, with_ps, pending, won,
                                    lost, first_calls, first_call_secs, calls, won_calls, lost_calls)
        select day, branch, cre_id,
               count(*) filter (where outcome = 'created'),
               count(*) filter (where outcome = 'added_source'),
               count(*) filter (where outcome = 'exact_duplicate'),
               count(*) filter (where outcome = 'created' and with_ps),
               count(*) filter (where outcome = 'created' and final_status = 'Pending'),
               count(*) filter (where outcome = 'created' and final_status = 'Won'),
               count(*) filter (where outcome = 'created' and final_status = 'Lost'),
               count(*) filter (where outcome = 'created' and first_call),
               0,
               -- a call: every 'call' event, and a new lead created with a status (its first call)
               count(*) filter (where outcome = 'call' or (outcome = 'created' and first_call)),
               count(*) filter (where final_status = 'Won' and (outcome = 'call' or outcome = 'created')),
               count(*) filter (where final_status = 'Lost' and (outcome = 'call' or outcome = 'created'))
          from ev group by day, branch, cre_id
        on conflict (day, branch, cre_id) do update set
            leads = s.leads + excluded.leads, added_sources = s.added_sources + excluded.added_sources,
            exact_dups = s.exact_dups + excluded.exact_dups, with_ps = s.with_ps + excluded.with_ps,
            pending = s.pending + excluded.pending, won = s.won + excluded.won, lost = s.lost + excluded.lost,
            first_calls = s.first_calls + excluded.first_calls, calls = s.calls + excluded.calls,
            won_calls = s.won_calls + excluded.won_calls, lost_calls = s.lost_calls + excluded.lost_calls
        returning 1
    ), so as (
        insert into stats_source as s (day, branch, source, sub_source, leads, added_sources, exact_dups)
        select day, branch, source, sub_source,
               count(*) filter (where outcome = 'created'),
               count(*) filter (where outcome = 'added_source'),
               count(*) filter (where outcome = 'exact_duplicate')
          from ev where outcome <> 'call' group by day, branch, source, sub_source
        on conflict (day, branch, source, sub_source) do update set
            leads = s.leads + excluded.leads, added_sources = s.added_sources + excluded.added_sources,
            exact_dups = s.exact_dups + excluded.exact_dups
        returning 1
    ), st as (
        insert into stats_status as s (day, branch, lead_status, leads)
        select day, branch, lead_status, count(*) from created group by day, branch, lead_status
        on conflict (day, branch, lead_status) do update set leads = s.leads + excluded.leads
        returning 1
    ), h as (
        insert into stats_hour as s (day, branch, hour, leads)
        select day, branch, hour, count(*) from created group by day, branch, hour
        on conflict (day, branch, hour) do update set leads = s.leads + excluded.leads
        returning 1
    )
    select count(*) into n from c;  -- every data-modifying CTE runs to completion whether read or not

    with fe as (
        delete from stats_follow_up_events where id is not null
        returning day, branch, cre_id, delta
    )
    insert into stats_follow_up_cre as s (day, branch, cre_id, leads)
    select day, branch, cre_id, sum(delta) from fe group by day, branch, cre_id having sum(delta) <> 0
    on conflict (day, branch, cre_id) do update set leads = s.leads + excluded.leads;
    delete from stats_follow_up_cre where leads = 0;
end
$$;

create or replace function dashboard_summary(date_from date, date_to date, branch text default null) returns json
language plpgsql volatile
security definer
set search_path = public, pg_temp
set plan_cache_mode = force_custom_plan
as $$
#variable_conflict use_column
declare
    f date := dashboard_summary.date_from;
    t date := dashboard_summary.date_to;
    b text := nullif(dashboard_summary.branch, '');
    today date := (now() at time zone desk_tz())::date;
    result json;
begin
    perform _caller(array['team_lead', 'admin']);
    if f is null or t is null or f > t then
        perform _fail('invalid_range', 'Choose a start date on or before the end date.', 422, 'date_from');
    end if;
    if t - f > 366 then
        perform _fail('range_too_long', 'Choose a range of at most a year.', 422, 'date_to');
    end if;
    perform _fold_stats();

    with days as (
        select day, cre_id, leads, added_sources, exact_dups, with_ps, pending, won, lost, first_calls,
               first_call_secs, calls, won_calls, lost_calls
          from stats_cre
         where day between f and t and (b is null or branch = b)
    ), fu as (
        -- Pending follow-ups by owner as they stand now: due today, and overdue whatever the chosen range.
        select cre_id, sum(leads) filter (where day = today) as due_today,
               sum(leads) filter (where day < today) as overdue
          from stats_follow_up_cre
         where day <= today and (b is null or branch = b)
         group by cre_id
    ), cre as (
        select coalesce(d.cre_id, fu.cre_id) as cre_id, coalesce(d.leads, 0) as leads,
               coalesce(d.added_sources, 0) as added_sources, coalesce(d.exact_dups, 0) as exact_dups,
               coalesce(d.with_ps, 0) as with_ps, coalesce(d.pending, 0) as pending, coalesce(d.won, 0) as won,
               coalesce(d.lost, 0) as lost, coalesce(d.first_calls, 0) as first_calls,
               coalesce(d.first_call_secs, 0) as first_call_secs, coalesce(d.calls, 0) as calls,
               coalesce(d.won_calls, 0) as won_calls, coalesce(d.lost_calls, 0) as lost_calls,
               coalesce(fu.due_today, 0) as due_today, coalesce(fu.overdue, 0) as overdue
          from (select cre_id, sum(leads) as leads, sum(added_sources) as added_sources,
                       sum(exact_dups) as exact_dups, sum(with_ps) as with_ps, sum(pending) as pending,
                       sum(won) as won, sum(lost) as lost, sum(first_calls) as first_calls,
                       sum(first_call_secs) as first_call_secs, sum(calls) as calls, sum(won_calls) as won_calls,
                       sum(lost_calls) as lost_calls
                  from days group by cre_id) d
          full join fu on fu.cre_id = d.cre_id
    ), tot as (
        select coalesce(sum(leads), 0) as leads, coalesce(sum(added_sources), 0) as added_sources,
               coalesce(sum(exact_dups), 0) as exact_dups, coalesce(sum(with_ps), 0) as with_ps,
               coalesce(sum(pending), 0) as pending, coalesce(sum(won), 0) as won, coalesce(sum(lost), 0) as lost,
               coalesce(sum(first_calls), 0) as first_calls, coalesce(sum(first_call_secs), 0) as first_call_secs,
               coalesce(sum(calls), 0) as calls, coalesce(sum(won_calls), 0) as won_calls,
               coalesce(sum(lost_calls), 0) as lost_calls, coalesce(sum(due_today), 0) as due_today,
               coalesce(sum(overdue), 0) as overdue
          from cre
    )
    select json_build_object(
        'range', json_build_object('date_from', f, 'date_to', t, 'branch', b),
        'totals', (select json_build_object(
                       'leads', leads, 'added_sources', added_sources, 'exact_dups', exact_dups,
                       'duplicate_rate', case when leads + added_sources + exact_dups > 0
                           then round((added_sources + exact_dups)::numeric / (leads + added_sources + exact_dups), 4)
                           else 0 end,
                       'with_ps', with_ps, 'pending', pending, 'won', won, 'lost', lost,
                       'calls', calls, 'won_calls', won_calls, 'lost_calls', lost_calls,
                       'first_call_avg_secs', case when first_calls > 0
                           then round(first_call_secs::numeric / first_calls, 1) end)
                     from tot),
        'per_cre', (select coalesce(json_agg(json_build_object(
                        'cre_id', c.cre_id, 'cre_name', p.full_name, 'leads', c.leads,
                        'added_sources', c.added_sources, 'exact_dups', c.exact_dups, 'with_ps', c.with_ps,
                        'pending', c.pending, 'won', c.won, 'lost', c.lost, 'calls', c.calls,
                        'won_calls', c.won_calls, 'lost_calls', c.lost_calls, 'due_today', c.due_today,
                        'overdue', c.overdue,
                        'first_call_avg_secs', case when c.first_calls > 0
                            then round(c.first_call_secs::numeric / c.first_calls, 1) end)
                        order by c.leads desc, c.calls desc, p.full_name), '[]')
                      from cre c left join profiles p on p.id = c.cre_id),
        'per_source', (select coalesce(json_agg(x order by x.leads desc, x.source, x.sub_source), '[]') from (
                          select source, sub_source, sum(leads) as leads, sum(added_sources) as added_sources,
                                 sum(exact_dups) as exact_dups
                            from stats_source
                           where day between f and t and (b is null or branch = b)
                           group by source, sub_source) x),
        'per_status', (select coalesce(json_agg(x order by x.leads desc, x.lead_status), '[]') from (
                          select nullif(lead_status, '') as lead_status, sum(leads) as leads
                            from stats_status
                           where day between f and t and (b is null or branch = b)
                           group by lead_status) x),
        'per_hour', (select json_agg(json_build_object('hour', h, 'leads', coalesce(x.leads, 0)) order by h)
                       from generate_series(0, 23) h
                       left join (select hour, sum(leads) as leads from stats_hour
                                   where day between f and t and (b is null or branch = b)
                                   group by hour) x on x.hour = h),
        'per_day', (select json_agg(json_build_object('day', d::date, 'leads', coalesce(x.leads, 0),
                                                      'calls', coalesce(x.calls, 0)) order by d)
                      from generate_series(f::timestamp, t::timestamp, interval '1 day') d
                      left join (select day, sum(leads) as leads, sum(calls) as calls from days group by day) x
                        on x.day = d::date),
        'follow_ups', (select json_build_object('due_today', due_today, 'overdue', overdue) from tot),
        'generated_at', now())
      into result;
    return result;
end
$$;

-- The only active admin cannot demote or deactivate itself: nobody would be left to undo it.
create or replace function admin_set_profile(email text, role text, branch text default null, active boolean default true)
returns json
language plpgsql
security definer
set search_path = public, pg_temp
as $$
#variable_conflict use_column
declare
    me profiles;
    target profiles;
begin
    me := _caller(array['admin']);
    if admin_set_profile.role not in ('cre', 'team_lead', 'admin', 'ps') then
        perform _fail('unknown_role', 'Role must be cre, team_lead, admin or ps.', 422, 'role');
    end if;
    if lower(admin_set_profile.email) = me.email
       and (admin_set_profile.role <> 'admin' or not admin_set_profile.active)
       and not exists (select from profiles p where p.role = 'admin' and p.active and p.id <> me.id) then
        perform _fail('last_admin', 'You are the only active admin; make someone else admin first.', 409, 'email');
    end if;
    update profiles p set role = admin_set_profile.role, branch = admin_set_profile.branch,
                          active = admin_set_profile.active
     where p.email = lower(admin_set_profile.email)
    returning * into target;
    if not found then
        perform _fail('unknown_user', 'No user with that e-mail.', 404, 'email');
    end if;
    return json_build_object('email', target.email, 'role', target.role, 'branch', target.branch,
                             'active', target.active);
end
$$;

-- Only the RPCs are callable, and only by signed-in users; new helpers are private. (Supabase grants EXECUTE on new
-- functions to anon and authenticated by default; take it back first.)
revoke execute on all functions in schema public from public, anon, authenticated;
grant execute on function create_lead(jsonb), log_call(jsonb), lead_detail(bigint), assign_leads(bigint[], text),
      import_leads(jsonb), lead_changes(bigint, int), catalog(), my_profile(),
      dashboard_summary(date, date, text), admin_set_profile(text, text, text, boolean) to authenticated;
