-- The feed's rows built once per change, not every time a desk reads them (issues 7 and 12).
--
-- A lead changes a few times in its life; every desk reads it through the feed: once in its first sync (a whole
-- shift of desks at 09:00, or after a cache rebuild) and again after each change. lead_changes and lead_feed built
-- each row at read time (24 values rendered as JSON, per-page dictionaries, timestamps as microseconds): ~16 and
-- ~22 us per row of the database's CPU, times every desk. Here each lead keeps its feed rows ready:
--   * leads.feed_row: the lead's row as lead_changes sends it (`[<change_id>, <lead_id>, ..., <ps_email>]`, exactly the
--     text of 005's json_build_array in a UTC session; it holds the change_id, set in the same UPDATE). Of type json:
--     checked once when written, so a page is json_agg of stored values, never parsed again when read;
--   * leads.feed_compact: the lead in lead_feed's compact-1 encoding after the three columns whose codec depends on
--     the previous row (change_id, lead_id, created_at: differences), every dictionary value as its id in
--     feed_values (below).
-- Who builds them: the feed's sequencer (002), which already rewrites every changed lead once to number it; it now
-- writes the two rows in the same UPDATE, for the whole batch in one statement. So the writers (create_lead,
-- log_call, assign_leads, import_leads) pay nothing more; a change is rendered once, by the first desk that pulls
-- after it, and every other desk reads text. A lead whose CRE or PS is renamed goes back into the feed (change_id
-- null): desks learn the new name, which lead_changes' read-time join showed only to rows fetched afterwards.
-- Cost: ~550 bytes per lead of storage (1M leads: ~0.55 GB) for ~3x less database CPU per row served.
--
-- lead_feed's dictionaries: compact-1 lets a page's dictionary be any array a row's index points into (the desk
-- looks a value up by position) and lets a page order its columns as it likes (the page names them and their
-- codecs). So the rows hold ids from one append-only table, feed_values (an id never changes meaning), and every page
-- carries the whole table: statuses, models, branches, sources and staff, ~1-3 KB per page of 10,000 rows before
-- compression. Every value that enters it is checked against the catalogue or is a staff member, so it stays small.

create table feed_values (
    kind   text not null,  -- the dictionary: a compact-1 column name, or source / sub_source (in sources)
    value  text not null,
    id     int  not null,  -- 0, 1, 2, ... per kind: the position in the page's array
    primary key (kind, value),
    unique (kind, id)
);
alter table feed_values enable row level security;
revoke all on feed_values from anon, authenticated;

alter table leads add column feed_row json, add column feed_compact text;
-- Numbered leads without their rows: the seed's (it numbers its leads itself) and, until the backfill below, every
-- lead. Empty in the steady state, so looking for them costs one probe.
create index leads_feed_missing on leads (change_id) where feed_row is null and change_id is not null;

-- The dictionary entries the given leads' rows use: the nine dictionary columns and each source's two names.
-- plpgsql, not sql, here and in _feed_rows_of: plpgsql keeps a statement's plan for the session, where an sql
-- function called once per batch plans its query every time (~5-10 ms: more than rendering a 100-lead batch).
create function _feed_values_used(p_ids bigint[]) returns table (kind text, value text)
language plpgsql stable
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan  -- the same plan for every batch
as $$
begin
    return query
    select distinct w.kind, w.value
      from leads l
      left join profiles c on c.id = l.cre_id
      left join profiles s on s.id = l.ps_id
     cross join lateral (
           select * from unnest(array['lead_status', 'final_status', 'cre_name', 'ps_name', 'branch', 'cre_id',
                                      'lead_category', 'model_interested', 'ps_email'],
                                array[l.lead_status, l.final_status, c.full_name, s.full_name, l.branch,
                                      l.cre_id::text, l.lead_category, l.model_interested, s.email])
           union all
           select k.kind, e.v->>k.kind
             from jsonb_array_elements(l.sources) as e (v), unnest(array['source', 'sub_source']) as k (kind)
       ) as w (kind, value)
     where l.id = any (p_ids) and w.value is not null;
end
$$;

-- Add what the given leads' rows need and feed_values lacks. New values are rare (a new model, status, staff
-- member), so adding them takes a transaction-long lock: ids stay dense (0..n-1) and two sequencers never give one
-- value two ids. An id rolled back was used only by rows rolled back with it.
create function _feed_values_add(p_ids bigint[]) returns void
language plpgsql
set search_path = public, pg_temp
as $$
begin
    if not exists (select from _feed_values_used(p_ids) u
                    where not exists (select from feed_values f where f.kind = u.kind and f.value = u.value)) then
        return;
    end if;
    perform pg_advisory_xact_lock(hashtext('crm.feed_values'));
    insert into feed_values (kind, value, id)
    select u.kind, u.value,
           coalesce((select max(f.id) from feed_values f where f.kind = u.kind), -1)
               + row_number() over (partition by u.kind order by u.value)
      from _feed_values_used(p_ids) u
     where not exists (select from feed_values f where f.kind = u.kind and f.value = u.value);
end
$$;

-- A number as JSON text, null as null (for rows joined without json_build_array's spaces). Not polymorphic: an
-- anyelement function is not inlined, and costs ~3.5 us a call where this costs ~0.2.
create function _feed_n(v bigint) returns text
language sql immutable parallel safe
as $$
    select coalesce(v::text, 'null')
$$;

-- The two rows of the given leads (after _feed_values_add for them), in one statement for the whole batch. Timestamps
-- in UTC whatever the session's time zone (PostgREST lets a client ask for one), spelled as 005 spelled them in a
-- UTC session.
create function _feed_rows_of(p_ids bigint[]) returns table (id bigint, plain text, compact text)
language plpgsql stable
set search_path = public, pg_temp
set timezone = 'UTC'
set plan_cache_mode = force_generic_plan
as $$
begin
    return query
    select l.id,
           -- lead_changes: 005's json_build_array from the lead_id on.
           substr(json_build_array(l.id, l.phone, l.uid, l.customer_name, l.sources, l.lead_status, l.final_status,
                                   c.full_name, s.full_name, l.branch, l.created_at, l.follow_up_date,
                                   l.cre_id, l.lead_category, l.model_interested, l.follow_up_at,
                                   l.last_call_at, l.call_count, l.won_at, l.lost_at,
                                   l.updated_at, l.test_drive_done, s.email)::text, 2),
           -- lead_feed: from the phone on, in lead_feed's column order (its codecs there), without json_build_array's
           -- spaces: 16 % fewer bytes for gzip and the desk's parser, ~5 % fewer on the wire.
           concat_ws(',',
               to_json(l.phone)::text, to_json(l.uid)::text, to_json(l.customer_name)::text,
               -- Nearly every lead has one source: built from the joins; more go through a subquery.
               case when jsonb_array_length(l.sources) = 1 then
                   '[[' || concat_ws(',', _feed_n(d_src.id), _feed_n(d_sub.id),
                                     _feed_n(_feed_us((l.sources->0->>'at')::timestamptz) - t.us)) || ']]'
               else (select '[' || coalesce(string_agg('[' || concat_ws(',',
                                 _feed_n((select f.id from feed_values f
                                           where f.kind = 'source' and f.value = e.v->>'source')),
                                 _feed_n((select f.id from feed_values f
                                           where f.kind = 'sub_source' and f.value = e.v->>'sub_source')),
                                 _feed_n(_feed_us((e.v->>'at')::timestamptz) - t.us)) || ']', ',' order by e.ord), '')
                             || ']'
                       from jsonb_array_elements(l.sources) with ordinality as e (v, ord))
               end,
               _feed_n(d_status.id), _feed_n(d_final.id), _feed_n(d_cre_name.id), _feed_n(d_ps_name.id),
               _feed_n(d_branch.id), _feed_n(l.follow_up_date - (l.created_at at time zone 'UTC')::date),
               _feed_n(d_cre_id.id), _feed_n(d_category.id), _feed_n(d_model.id),
               _feed_n(_feed_us(l.follow_up_at) - t.us), _feed_n(_feed_us(l.last_call_at) - t.us),
               _feed_n(l.call_count), _feed_n(_feed_us(l.won_at) - t.us), _feed_n(_feed_us(l.lost_at) - t.us),
               _feed_n(_feed_us(l.updated_at) - t.us), coalesce(l.test_drive_done::text, 'null'),
               _feed_n(d_ps_email.id)) || ']'
      from leads l
     cross join lateral (select _feed_us(l.created_at) as us) t
      left join profiles c on c.id = l.cre_id
      left join profiles s on s.id = l.ps_id
      left join feed_values d_status on d_status.kind = 'lead_status' and d_status.value = l.lead_status
      left join feed_values d_final on d_final.kind = 'final_status' and d_final.value = l.final_status
      left join feed_values d_cre_name on d_cre_name.kind = 'cre_name' and d_cre_name.value = c.full_name
      left join feed_values d_ps_name on d_ps_name.kind = 'ps_name' and d_ps_name.value = s.full_name
      left join feed_values d_branch on d_branch.kind = 'branch' and d_branch.value = l.branch
      left join feed_values d_cre_id on d_cre_id.kind = 'cre_id' and d_cre_id.value = l.cre_id::text
      left join feed_values d_category on d_category.kind = 'lead_category' and d_category.value = l.lead_category
      left join feed_values d_model on d_model.kind = 'model_interested' and d_model.value = l.model_interested
      left join feed_values d_ps_email on d_ps_email.kind = 'ps_email' and d_ps_email.value = s.email
      left join feed_values d_src on d_src.kind = 'source' and d_src.value = l.sources->0->>'source'
      left join feed_values d_sub on d_sub.kind = 'sub_source' and d_sub.value = l.sources->0->>'sub_source'
     where l.id = any (p_ids);
end
$$;

-- Numbered leads without their rows, after `since` in feed order (at most p_limit): their rows now. Such leads are
-- the seed's and, until the backfill below, all of them; none in the steady state (one probe of an empty index).
-- Returns the last change_id filled (null: none), where a caller filling everything goes on: the index keeps the
-- entries of rows filled in the same transaction until it ends, so starting from 0 again would read them all again.
create function _feed_fill(p_since bigint, p_limit int) returns bigint
language plpgsql
set search_path = public, pg_temp
as $$
declare
    ids bigint[];
    last bigint;
begin
    select array_agg(x.id), max(x.change_id) into ids, last
      from (select id, change_id from leads
             where feed_row is null and change_id is not null and change_id > p_since
             order by change_id limit p_limit) x;
    if last is not null then
        perform _feed_values_add(ids);
        update leads l set feed_row = ('[' || l.change_id || ', ' || r.plain)::json, feed_compact = r.compact
          from _feed_rows_of(ids) r
         where l.id = r.id;
    end if;
    return last;
end
$$;

-- The sequencer of 002 (callers hold its lock): number up to p_limit changed leads, writing their rows in the same
-- UPDATE. Rendering costs more than numbering did, so one call numbers at most 20,000 (lead_changes numbered 100,000).
create function _feed_sequence(p_limit int) returns void
language plpgsql
set search_path = public, pg_temp
as $$
declare
    ids bigint[] := array(select id from leads where change_id is null order by id for update skip locked
                           limit least(p_limit, 20000));
begin
    if cardinality(ids) > 0 then
        perform _feed_values_add(ids);
        update leads l set change_id = r.change_id, feed_row = ('[' || r.change_id || ', ' || r.plain)::json,
                           feed_compact = r.compact
          from (select f.*, nextval('lead_change_seq') as change_id from _feed_rows_of(ids) f) r
         where l.id = r.id;
    end if;
end
$$;

-- A CRE or PS renamed (or a PS's e-mail changed): their leads go into the feed again, rendered with the new name.
create function _profiles_refeed() returns trigger
language plpgsql
set search_path = public, pg_temp
as $$
begin
    update leads set change_id = null where cre_id = new.id or ps_id = new.id;
    return null;
end
$$;

create trigger profiles_refeed
    after update of full_name, email on profiles
    for each row
    when (old.full_name is distinct from new.full_name or old.email is distinct from new.email)
    execute function _profiles_refeed();

-- The leads already there, 20,000 at a time. Their change_id stays: desks that have them keep them (same values).
do $$
declare
    since bigint := 0;
begin
    loop
        since := _feed_fill(since, 20000);
        exit when since is null;
    end loop;
end
$$;

-- What both feeds do before reading a page: who may read it, a valid cursor, the sequencer of 002 (numbers committed,
-- unnumbered rows after commit, see there; one caller at a time, the others read what is numbered), and the rows of
-- the page's leads that were numbered without them.
create function _feed_begin(since bigint, n int) returns void
language plpgsql
set search_path = public, pg_temp
as $$
begin
    perform _caller(array['cre', 'team_lead', 'admin']);
    if since is null or since < 0 then
        perform _fail('invalid_cursor', 'since must be a change id >= 0.', 422, 'since');
    end if;
    if pg_try_advisory_xact_lock(hashtext('crm.lead_changes.sequencer')) then
        perform _feed_sequence(20000);
    end if;
    perform _feed_fill(since, n);
end
$$;

-- The plain feed: the same answer as 005's, byte for byte, from the stored rows.
create or replace function lead_changes(since bigint, max_rows int default 5000) returns json
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    n int := least(greatest(coalesce(max_rows, 5000), 1), 20000);
    result json;
begin
    perform _feed_begin(since, n);

    with page as (
        select l.change_id, l.feed_row
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
        -- json_agg of json values joins their text with ", " as 005's did, without parsing them again.
        'rows', coalesce((select json_agg(p.feed_row order by p.change_id) from page p), '[]'::json),
        'next_since', coalesce(seen.last, since),
        'more', seen.rows = n,
        'remaining', case when seen.rows = n
                          then greatest((select last_value from lead_change_seq) - seen.last, 0) else 0 end)
      into result
      from seen;
    return result;
end
$$;

-- The compact feed: 006's encoding and paging, from the stored rows. Columns: the three whose codec needs the previous
-- row first, then the stored part in _feed_rows_of's order.
create or replace function lead_feed(since bigint, max_rows int default 5000) returns json
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    n int := least(greatest(coalesce(max_rows, 5000), 1), 10000);
    result json;
begin
    perform _feed_begin(since, n);

    with page as materialized (
        select l.change_id, l.id, _feed_us(l.created_at) as c_us, l.feed_compact
          from leads l
         where l.change_id > since
         order by l.change_id
         limit n
    ), seen as (
        select count(*) as rows, max(change_id) as last from page
    )
    select json_build_object(
        'encoding', 'compact-1',
        'columns', json_build_array('change_id', 'lead_id', 'created_at', 'phone', 'uid', 'customer_name', 'sources',
                                    'lead_status', 'final_status', 'cre_name', 'ps_name', 'branch', 'follow_up_date',
                                    'cre_id', 'lead_category', 'model_interested', 'follow_up_at', 'last_call_at',
                                    'call_count', 'won_at', 'lost_at', 'updated_at', 'test_drive_done', 'ps_email'),
        'codecs', json_build_array('delta', 'delta', 'created', 'raw', 'raw', 'raw', 'sources',
                                   'dict', 'dict', 'dict', 'dict', 'dict', 'day',
                                   'dict', 'dict', 'dict', 'at', 'at',
                                   'raw', 'at', 'at', 'at', 'bool', 'dict'),
        -- Every dictionary whole (read in the same snapshot as the rows: every id a row holds is there).
        'dicts', (select coalesce(json_object_agg(v.kind, v.vals), '{}')
                    from (select kind, json_agg(value order by id) as vals from feed_values group by kind) v),
        'rows', coalesce((select ('[' || string_agg(r.j, ',' order by r.change_id) || ']')::json from (
                              select p.change_id,
                                     '[' || (p.change_id - coalesce(lag(p.change_id) over w, 0)) || ','
                                         || (p.id - coalesce(lag(p.id) over w, 0)) || ','
                                         || (p.c_us - coalesce(lag(p.c_us) over w, 0)) || ',' || p.feed_compact as j
                                from page p
                              window w as (order by p.change_id)) r), '[]'::json),
        'next_since', coalesce(seen.last, since),
        'more', seen.rows = n,
        'remaining', case when seen.rows = n
                          then greatest((select last_value from lead_change_seq) - seen.last, 0) else 0 end,
        -- Where the three pages after the next one start (see 006).
        'ahead', case when seen.rows = n
                      then coalesce((select json_agg(b.change_id order by b.change_id)
                                       from (select x.change_id, row_number() over (order by x.change_id) as rn
                                               from (select change_id from leads where change_id > seen.last
                                                      order by change_id limit n * 3) x) b
                                      where b.rn % n = 0), '[]'::json)
                      else '[]'::json end)
      into result
      from seen;
    return result;
end
$$;

-- Private helpers; the two RPCs keep their grants (create or replace keeps them).
revoke execute on function _feed_n(bigint), _feed_values_used(bigint[]), _feed_values_add(bigint[]),
                           _feed_rows_of(bigint[]), _feed_fill(bigint, int), _feed_sequence(int),
                           _feed_begin(bigint, int), _profiles_refeed()
    from public, anon, authenticated;
