-- The RPCs of the contract. All are SECURITY DEFINER with a pinned search_path: the API roles have no table
-- privileges, so these functions are the whole surface. Each checks the caller's profile itself.

-- Raise an error PostgREST (and the reference server) turn into an HTTP answer with exactly this body and status:
-- PostgREST's documented `RAISE SQLSTATE 'PGRST'` convention, so the `code` is a stable word the client can branch on.
create function _fail(p_code text, p_message text, p_status int default 422, p_field text default null)
returns void
language plpgsql
set search_path = public, pg_temp
as $$
begin
    raise sqlstate 'PGRST' using
        message = json_build_object('code', p_code, 'message', p_message, 'details', p_field, 'hint', null)::text,
        detail = json_build_object('status', p_status, 'headers', json_build_object())::text;
end
$$;

-- The desk's clock for days and hours on the dashboard.
create function desk_tz() returns text language sql immutable as $$ select 'Asia/Kolkata'::text $$;

-- UID from the lead's number n in lead_uid_seq: source letter, letters, last four digits, four digits.
-- n = 10000 * (k - 1) + NNNN where k >= 1 is written in bijective base 26 (A..Z, AA..ZZ, AAA..): distinct n give
-- distinct (letters, NNNN), so the UID is unique by construction whatever the source letter and phone are. Plain
-- SQL (no loop) so the bulk loader can inline it; four letters cover 4.7 billion leads.
create function uid_for(p_letter text, p_phone text, p_n bigint) returns text
language sql immutable strict parallel safe
as $$
    select p_letter
        || case
               when k <= 26 then chr(64 + k::int)
               when k <= 702 then chr(65 + ((k - 27) / 26)::int) || chr(65 + ((k - 27) % 26)::int)
               when k <= 18278 then chr(65 + ((k - 703) / 676)::int) || chr(65 + ((k - 703) / 26 % 26)::int)
                                    || chr(65 + ((k - 703) % 26)::int)
               else chr(65 + ((k - 18279) / 17576)::int) || chr(65 + ((k - 18279) / 676 % 26)::int)
                    || chr(65 + ((k - 18279) / 26 % 26)::int) || chr(65 + ((k - 18279) % 26)::int)
           end
        || '-' || right(p_phone, 4) || '-' || lpad((p_n % 10000)::text, 4, '0')
      from (select p_n / 10000 + 1 as k) x
$$;

-- The caller's active profile, or an error answer. Every RPC starts here.
create function _caller(p_roles text[]) returns profiles
language plpgsql stable
set search_path = public, pg_temp
as $$
declare
    me profiles;
begin
    if auth.uid() is null then
        perform _fail('not_signed_in', 'Sign in to use the desk.', 401);
    end if;
    select * into me from profiles where id = auth.uid() and active;
    if not found then
        perform _fail('no_profile', 'This account has no active desk profile. Ask an admin to enable it.', 403);
    end if;
    if not (me.role = any (p_roles)) then
        perform _fail('not_allowed', 'Your role (' || me.role || ') cannot do this.', 403);
    end if;
    return me;
end
$$;

-- What the CRE sees about an existing lead: the "returning customer" summary.
create function lead_summary(p_lead_id bigint) returns jsonb
language sql stable
set search_path = public, pg_temp
as $$
    select jsonb_build_object(
        'lead_id', l.id, 'uid', l.uid, 'phone', l.phone, 'customer_name', l.customer_name,
        'sources', l.sources, 'lead_status', l.lead_status, 'final_status', l.final_status,
        'lead_category', l.lead_category, 'model_interested', l.model_interested,
        'branch', l.branch, 'cre_name', c.full_name, 'ps_name', p.full_name,
        'created_at', l.created_at, 'follow_up_date', l.follow_up_date)
    from leads l
    join profiles c on c.id = l.cre_id
    left join profiles p on p.id = l.ps_id
    where l.id = p_lead_id
$$;

-- Record one create_lead outcome for the dashboard: an append, so concurrent creates never wait on each other.
create function _bump_stats(
    p_branch text, p_cre uuid, p_source text, p_sub_source text, p_status text, p_outcome text,
    p_final text, p_with_ps boolean, p_first_call boolean, p_follow_up date
) returns void
language sql
set search_path = public, pg_temp
as $$
    insert into stats_events (at, branch, cre_id, source, sub_source, lead_status, outcome, final_status, with_ps,
                              first_call, follow_up)
    values (now(), coalesce(p_branch, ''), p_cre, p_source, p_sub_source, coalesce(p_status, ''), p_outcome, p_final,
            p_with_ps, p_first_call, case when p_outcome = 'created' and p_final = 'Pending' then p_follow_up end)
$$;

-- Fold committed stats_events into the per-day tables, in one statement, and delete them. One folder at a time
-- (advisory lock); a caller that finds the lock taken just reads the tables as they are. Events of transactions
-- still in flight are invisible here and are folded next time.
create function _fold_stats() returns void
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
        returning (at at time zone desk_tz())::date as day,
                  extract(hour from at at time zone desk_tz())::smallint as hour,
                  branch, cre_id, source, sub_source, lead_status, outcome, final_status, with_ps, first_call,
                  follow_up
    ), created as (
        select * from ev where outcome = 'created'
    ), c as (
        insert into stats_cre as s (day, branch, cre_id, leads, added_sources, exact_dups, with_ps, pending, won,
                                    lost, first_calls, first_call_secs)
        select day, branch, cre_id,
               count(*) filter (where outcome = 'created'),
               count(*) filter (where outcome = 'added_source'),
               count(*) filter (where outcome = 'exact_duplicate'),
               count(*) filter (where outcome = 'created' and with_ps),
               count(*) filter (where outcome = 'created' and final_status = 'Pending'),
               count(*) filter (where outcome = 'created' and final_status = 'Won'),
               count(*) filter (where outcome = 'created' and final_status = 'Lost'),
               count(*) filter (where outcome = 'created' and first_call),
               0
          from ev group by day, branch, cre_id
        on conflict (day, branch, cre_id) do update set
            leads = s.leads + excluded.leads, added_sources = s.added_sources + excluded.added_sources,
            exact_dups = s.exact_dups + excluded.exact_dups, with_ps = s.with_ps + excluded.with_ps,
            pending = s.pending + excluded.pending, won = s.won + excluded.won, lost = s.lost + excluded.lost,
            first_calls = s.first_calls + excluded.first_calls
        returning 1
    ), so as (
        insert into stats_source as s (day, branch, source, sub_source, leads, added_sources, exact_dups)
        select day, branch, source, sub_source,
               count(*) filter (where outcome = 'created'),
               count(*) filter (where outcome = 'added_source'),
               count(*) filter (where outcome = 'exact_duplicate')
          from ev group by day, branch, source, sub_source
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
    ), fu as (
        insert into stats_follow_up as s (day, branch, leads)
        select follow_up, branch, count(*) from created where follow_up is not null group by follow_up, branch
        on conflict (day, branch) do update set leads = s.leads + excluded.leads
        returning 1
    )
    select count(*) into n from c;  -- every data-modifying CTE runs to completion whether read or not
end
$$;

-- Text field of the payload: a JSON string or null, trimmed, empty = null, bounded length.
create function _text_field(p_lead jsonb, p_key text, p_max int) returns text
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
    v := nullif(btrim(p_lead ->> p_key), '');
    if length(v) > p_max then
        perform _fail('too_long', p_key || ' is longer than ' || p_max || ' characters.', 422, p_key);
    end if;
    return v;
end
$$;

create function create_lead(lead jsonb) returns jsonb
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    me profiles;
    allowed_keys constant text[] := array[
        'client_ref', 'customer_name', 'phone', 'phone_raw', 'source', 'sub_source', 'lead_status', 'lead_category',
        'model_interested', 'branch', 'ps_email', 'final_status', 'follow_up_date', 'remark', 'test_drive_done'];
    bad_key text;
    v_ref_text text;
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
    v_follow_text text;
    v_follow date;
    v_remark text;
    v_test_drive boolean;
    v_hash text;
    v_prev lead_requests;
    v_lead leads;
    v_outcome text;
    v_attempt int;
    v_answer jsonb;
    v_non_contact boolean;
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

    v_ref_text := _text_field(lead, 'client_ref', 64);
    if v_ref_text is null
       or v_ref_text !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
        perform _fail('invalid_client_ref', 'client_ref must be a UUID made when the lead was queued.', 422,
                      'client_ref');
    end if;
    v_ref := v_ref_text::uuid;

    v_name := _text_field(lead, 'customer_name', 120);
    if v_name is null then
        perform _fail('name_required', 'Enter the customer''s name.', 422, 'customer_name');
    end if;

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

    v_status := _text_field(lead, 'lead_status', 60);
    if v_status is not null then
        select non_contact into v_non_contact from lead_statuses where name = v_status;
        if not found then
            perform _fail('unknown_status', 'Unknown lead status: ' || v_status || '.', 422, 'lead_status');
        end if;
    end if;

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

    v_follow_text := _text_field(lead, 'follow_up_date', 10);
    if v_follow_text is not null then
        if v_follow_text !~ '^\d{4}-\d{2}-\d{2}$' then
            perform _fail('invalid_date', 'Follow-up date must be a date (YYYY-MM-DD).', 422, 'follow_up_date');
        end if;
        begin
            v_follow := v_follow_text::date;
        exception when others then
            perform _fail('invalid_date', 'Follow-up date is not a real date.', 422, 'follow_up_date');
        end;
        -- Not "in the past": a lead typed during an outage may arrive after its follow-up day. A year each way.
        if v_follow < (v_now at time zone desk_tz())::date - 366
           or v_follow > (v_now at time zone desk_tz())::date + 366 then
            perform _fail('follow_up_out_of_range', 'Follow-up date must be within a year of today.', 422,
                          'follow_up_date');
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

    -- 2. Idempotency: the first answer for a client_ref is the answer. A concurrent twin blocks on this insert
    -- until the first commits, then finds its row.
    v_hash := md5(lead::text);
    insert into lead_requests (client_ref, user_id, payload_hash) values (v_ref, me.id, v_hash)
    on conflict (client_ref) do nothing;
    if not found then
        select * into v_prev from lead_requests where client_ref = v_ref;
        if v_prev.user_id <> me.id or v_prev.payload_hash <> v_hash then
            perform _fail('client_ref_reused', 'This submission id was already used for a different lead; '
                          'nothing was saved.', 409, 'client_ref');
        end if;
        return v_prev.answer || jsonb_build_object('replayed', true);
    end if;

    -- 3. Insert; the unique phone index decides races. No check-then-insert.
    insert into leads (uid, phone, phone_raw, customer_name, source, sub_source, sources, lead_status, lead_category,
                       model_interested, branch, cre_id, ps_id, final_status, follow_up_date, remark, test_drive_done,
                       created_at, updated_at, cre_assigned_at, ps_assigned_at, first_call_date, first_call_at)
    values (uid_for(v_letter, v_phone, nextval('lead_uid_seq')), v_phone, v_phone_raw, v_name, v_source, v_sub,
            jsonb_build_array(jsonb_build_object('source', v_source, 'sub_source', v_sub, 'at', v_now)),
            v_status, v_category, v_model, v_branch, me.id, v_ps.id, v_final, v_follow, v_remark, v_test_drive,
            v_now, v_now, v_now, case when v_ps.id is not null then v_now end,
            case when v_status is not null and v_status not in ('RNR', 'Call me Back')
                 then (v_now at time zone desk_tz())::date end,
            case when v_status is not null then v_now end)
    on conflict (phone) do nothing
    returning * into v_lead;

    if found then
        v_outcome := 'created';
        insert into lead_sources (lead_id, source, sub_source, cre_id, created_at)
        values (v_lead.id, v_source, v_sub, me.id, v_now);
        if v_ps.id is not null then
            insert into ps_followups (lead_id, ps_id, ps_branch, customer_name, phone, source, cre_id, lead_category,
                                      model_interested, ps_assigned_at)
            values (v_lead.id, v_ps.id, v_ps.branch, v_name, v_phone, v_source, me.id, v_category, v_model, v_now);
            insert into email_outbox (lead_id, to_email, subject, body)
            values (v_lead.id, v_ps.email,
                    'New lead ' || v_lead.uid || ': ' || v_name,
                    'Hello ' || v_ps.full_name || E',\n\n' || me.full_name || ' assigned you a new lead.' || E'\n\n'
                    || 'UID: ' || v_lead.uid || E'\nCustomer: ' || v_name || E'\nMobile: ' || v_phone
                    || E'\nSource: ' || v_source || ' / ' || v_sub
                    || E'\nModel: ' || coalesce(v_model, '-') || E'\nCategory: ' || coalesce(v_category, '-')
                    || E'\nFollow-up: ' || coalesce(v_follow::text, '-') || E'\nRemark: ' || coalesce(v_remark, '-')
                    || E'\n\nCRE Desk');
        end if;
    else
        -- The number is already a lead (committed: ON CONFLICT waited for it). Lock it: sources and attempt
        -- numbers of one lead change one transaction at a time.
        select * into v_lead from leads where phone = v_phone for update;
        insert into lead_sources (lead_id, source, sub_source, cre_id, created_at)
        values (v_lead.id, v_source, v_sub, me.id, v_now)
        on conflict (lead_id, source, sub_source) do nothing;
        if found then
            v_outcome := 'added_source';
            -- change_id back to null: the feed's sequencer numbers this change after commit.
            update leads set sources = sources || jsonb_build_object('source', v_source, 'sub_source', v_sub,
                                                                     'at', v_now),
                             updated_at = v_now, change_id = null
             where id = v_lead.id
            returning * into v_lead;
        else
            v_outcome := 'exact_duplicate';
        end if;
    end if;

    if v_status is not null then
        select coalesce(max(attempt), 0) + 1 into v_attempt from call_attempts where lead_id = v_lead.id;
        insert into call_attempts (lead_id, uid, call_no, attempt, lead_status, cre_id, follow_up_date, remark,
                                   final_status, created_at)
        values (v_lead.id, v_lead.uid, least(v_attempt, 7), v_attempt, v_status, me.id, v_follow, v_remark, v_final,
                v_now);
    end if;

    v_answer := jsonb_build_object('outcome', v_outcome, 'uid', v_lead.uid, 'lead_id', v_lead.id,
                                   'replayed', false, 'lead', lead_summary(v_lead.id));
    update lead_requests set answer = v_answer where client_ref = v_ref;

    perform _bump_stats(coalesce(v_branch, v_lead.branch), me.id, v_source, v_sub, v_status, v_outcome, v_final,
                        v_ps.id is not null, v_status is not null, v_follow);
    return v_answer;
end
$$;

-- The cache feed. Positions (change_id) are handed out by a sequencer *after* the change committed, so numbering
-- order is visibility order: a page never has a hole that a late commit could fill later, and a client that has
-- read up to N has seen every change numbered <= N. Writers leave change_id null; whichever lead_changes call gets
-- the advisory lock numbers the committed, unnumbered rows (rows locked by an in-flight writer are skipped: that
-- writer sets change_id null again, so they are numbered after it commits). Concurrent callers that miss the lock
-- just read: every number they can see belongs to a committed sequencer run, and later runs only hand out larger
-- numbers.
create function lead_changes(since bigint, max_rows int default 5000) returns json
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
    if pg_try_advisory_xact_lock(hashtext('crm.lead_changes.sequencer')) then
        update leads set change_id = nextval('lead_change_seq')
         where id in (select id from leads where change_id is null order by id for update skip locked limit 100000);
    end if;

    with page as (
        select l.change_id, l.id, l.phone, l.uid, l.customer_name, l.sources, l.lead_status, l.final_status,
               l.cre_id, l.ps_id, l.branch, l.created_at, l.follow_up_date
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
                                    'follow_up_date'),
        'rows', coalesce((select json_agg(json_build_array(p.change_id, p.id, p.phone, p.uid, p.customer_name,
                                                           p.sources, p.lead_status, p.final_status, c.full_name,
                                                           s.full_name, p.branch, p.created_at, p.follow_up_date)
                                          order by p.change_id)
                            from page p
                            left join profiles c on c.id = p.cre_id
                            left join profiles s on s.id = p.ps_id), '[]'::json),
        'next_since', coalesce(seen.last, since),
        'more', seen.rows = n,
        -- Progress estimate: numbers handed out after this page (an upper bound; renumbered rows leave gaps).
        'remaining', case when seen.rows = n
                          then greatest((select last_value from lead_change_seq) - seen.last, 0) else 0 end)
      into result
      from seen;
    return result;
end
$$;

-- Everything the form's choices need, in one call. Small; the client caches it for offline use.
create function catalog() returns json
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
        'version', (select coalesce(max(version), '') from schema_migrations));
end
$$;

create function my_profile() returns json
language plpgsql stable
security definer
set search_path = public, pg_temp
as $$
declare
    me profiles := _caller(array['cre', 'team_lead', 'admin', 'ps']);
begin
    return json_build_object('id', me.id, 'email', me.email, 'full_name', me.full_name, 'role', me.role,
                             'branch', me.branch);
end
$$;

-- Team-lead dashboard. Folds pending stats events, then reads only the aggregate tables (sized by days x branches x CREs/sources/statuses/hours)
-- and a range of the pending-follow-up index, so its cost does not grow with the lead table.
create function dashboard_summary(date_from date, date_to date, branch text default null) returns json
language plpgsql volatile
security definer
set search_path = public, pg_temp
-- A generic plan (chosen after five calls on a pooled connection) cannot use the indexes through
-- "(b is null or branch = b)"; custom plans keep a one-branch call at ~4 ms instead of ~12 ms.
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

    with cre as (
        select cre_id, sum(leads) as leads, sum(added_sources) as added_sources, sum(exact_dups) as exact_dups,
               sum(with_ps) as with_ps, sum(pending) as pending, sum(won) as won, sum(lost) as lost,
               sum(first_calls) as first_calls, sum(first_call_secs) as first_call_secs
          from stats_cre
         where day between f and t and (b is null or branch = b)
         group by cre_id
    ), tot as (
        select coalesce(sum(leads), 0) as leads, coalesce(sum(added_sources), 0) as added_sources,
               coalesce(sum(exact_dups), 0) as exact_dups, coalesce(sum(with_ps), 0) as with_ps,
               coalesce(sum(pending), 0) as pending, coalesce(sum(won), 0) as won, coalesce(sum(lost), 0) as lost,
               coalesce(sum(first_calls), 0) as first_calls, coalesce(sum(first_call_secs), 0) as first_call_secs
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
                       'first_call_avg_secs', case when first_calls > 0
                           then round(first_call_secs::numeric / first_calls, 1) end)
                     from tot),
        'per_cre', (select coalesce(json_agg(json_build_object(
                        'cre_id', c.cre_id, 'cre_name', p.full_name, 'leads', c.leads,
                        'added_sources', c.added_sources, 'exact_dups', c.exact_dups, 'with_ps', c.with_ps,
                        'pending', c.pending, 'won', c.won, 'lost', c.lost,
                        'first_call_avg_secs', case when c.first_calls > 0
                            then round(c.first_call_secs::numeric / c.first_calls, 1) end)
                        order by c.leads desc, p.full_name), '[]')
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
        'per_day', (select json_agg(json_build_object('day', d::date, 'leads', coalesce(x.leads, 0)) order by d)
                      from generate_series(f::timestamp, t::timestamp, interval '1 day') d
                      left join (select day, sum(leads) as leads from stats_hour
                                  where day between f and t and (b is null or branch = b)
                                  group by day) x on x.day = d::date),
        -- Follow-ups of pending leads: due today, and overdue ones whose date falls inside the chosen range.
        'follow_ups', json_build_object(
            'due_today', (select coalesce(sum(leads), 0) from stats_follow_up
                           where day = today and (b is null or branch = b)),
            'overdue', (select coalesce(sum(leads), 0) from stats_follow_up
                         where day >= f and day < least(today, t + 1) and (b is null or branch = b))),
        'generated_at', now())
      into result;
    return result;
end
$$;

-- Admin only: change a user's desk profile (role, branch, active).
create function admin_set_profile(email text, role text, branch text default null, active boolean default true)
returns json
language plpgsql
security definer
set search_path = public, pg_temp
as $$
#variable_conflict use_column
declare
    target profiles;
begin
    perform _caller(array['admin']);
    if admin_set_profile.role not in ('cre', 'team_lead', 'admin', 'ps') then
        perform _fail('unknown_role', 'Role must be cre, team_lead, admin or ps.', 422, 'role');
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

-- Only the RPCs are callable, and only by signed-in users. (Supabase grants EXECUTE on new functions to anon and
-- authenticated by default; take it back everywhere first.)
revoke execute on all functions in schema public from public, anon, authenticated;
grant execute on function create_lead(jsonb), lead_changes(bigint, int), catalog(), my_profile(),
      dashboard_summary(date, date, text), admin_set_profile(text, text, text, boolean) to authenticated;
-- The mail worker runs as service_role (Supabase's scheduled function would too).
grant select, update on email_outbox to service_role;
grant select on profiles to service_role;
