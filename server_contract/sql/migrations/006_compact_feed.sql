-- The cache feed in a compact encoding (issue 12): what a desk downloads over a shared office link.
--
-- lead_changes sends ~270 bytes per lead (every key name in `columns` once, but every value spelled out in every
-- row: a CRE's name, a branch, a status, three ISO timestamps, the sources' keys). A call centre's first syncs share
-- one link of tens of Mbit/s, so lead_feed sends the same rows, column for column, in a form that says each thing
-- once:
--   * repeated values (statuses, names, branch, CRE id, PS e-mail, ...) as small integers into a per-page
--     dictionary (`dicts`): self-contained, so a lead owned by a CRE who has left still decodes;
--   * change_id, lead_id and created_at as differences from the previous row (they grow with the feed);
--   * the other timestamps as microseconds after the row's own created_at (often 0: set in the same transaction),
--     follow_up_date as days after created_at's (UTC) day;
--   * sources as [source id, sub_source id, microseconds after created_at].
-- Nothing is rounded: the desk rebuilds exactly the values lead_changes sends (crm_desktop/core/feed.py).
-- A full page also says where the next pages start ("ahead"), so a desk far away asks for several at once.
-- The page says which encoding it uses ("encoding": "compact-1") and which codec each column has, so a desk can
-- refuse an encoding it does not know instead of misreading it, and a desk talking to a server without lead_feed
-- (PostgREST answers 404 PGRST202) keeps using lead_changes. Response compression (gzip) comes on top.
--
-- Work per call is bounded: at most 10,000 rows per page and at most 20,000 rows numbered by the sequencer per call
-- (lead_changes: 20,000 and 100,000), so a shift of desks starting together cannot make one call run long.

-- Microseconds since the epoch, exactly, compact as a difference. Not extract(epoch ...) * 1e6: numeric arithmetic,
-- 2.5x the CPU of the whole call for six timestamps a row. A minute's epoch and the microseconds within it are exact
-- in float8, so their sum is too (checked against extract over 1M leads and 130 years of odd instants).
create function _feed_us(t timestamptz) returns bigint
language sql immutable parallel safe
as $$
    select date_part('epoch', date_trunc('minute', t at time zone 'UTC'))::bigint * 1000000
           + date_part('microseconds', t at time zone 'UTC')::bigint
$$;

create function lead_feed(since bigint, max_rows int default 5000) returns json
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    n int := least(greatest(coalesce(max_rows, 5000), 1), 10000);
    result json;
begin
    perform _caller(array['cre', 'team_lead', 'admin']);
    if since is null or since < 0 then
        perform _fail('invalid_cursor', 'since must be a change id >= 0.', 422, 'since');
    end if;
    -- The sequencer of 002 (same lock, so it never runs twice at once), with a smaller batch.
    if pg_try_advisory_xact_lock(hashtext('crm.lead_changes.sequencer')) then
        update leads set change_id = nextval('lead_change_seq')
         where id in (select id from leads where change_id is null order by id for update skip locked limit 20000);
    end if;

    with page as materialized (
        select l.change_id, l.id, l.phone, l.uid, l.customer_name, l.sources, l.lead_status, l.final_status,
               c.full_name as cre_name, s.full_name as ps_name, l.branch, l.created_at, l.follow_up_date,
               l.cre_id::text as cre_id, l.lead_category, l.model_interested, l.follow_up_at, l.last_call_at,
               l.call_count, l.won_at, l.lost_at, l.updated_at, l.test_drive_done, s.email as ps_email,
               _feed_us(l.created_at) as c_us
          from (select * from leads where change_id > since order by change_id limit n) l
          left join profiles c on c.id = l.cre_id
          left join profiles s on s.id = l.ps_id
    ), src as materialized (
        select e.v->>'source' as source, e.v->>'sub_source' as sub_source
          from page p, jsonb_array_elements(p.sources) as e (v)
    ), d as (
        -- Sorted distinct values per column; a row holds a value's 0-based position (array_position - 1).
        select array(select distinct lead_status from page where lead_status is not null order by 1) as lead_status,
               array(select distinct final_status from page where final_status is not null order by 1) as final_status,
               array(select distinct cre_name from page where cre_name is not null order by 1) as cre_name,
               array(select distinct ps_name from page where ps_name is not null order by 1) as ps_name,
               array(select distinct branch from page where branch is not null order by 1) as branch,
               array(select distinct cre_id from page where cre_id is not null order by 1) as cre_id,
               array(select distinct lead_category from page where lead_category is not null order by 1)
                   as lead_category,
               array(select distinct model_interested from page where model_interested is not null order by 1)
                   as model_interested,
               array(select distinct ps_email from page where ps_email is not null order by 1) as ps_email,
               array(select distinct source from src where source is not null order by 1) as source,
               array(select distinct sub_source from src where sub_source is not null order by 1) as sub_source
    ), seen as (
        select count(*) as rows, max(change_id) as last from page
    )
    select json_build_object(
        'encoding', 'compact-1',
        'columns', json_build_array('change_id', 'lead_id', 'phone', 'uid', 'customer_name', 'sources',
                                    'lead_status', 'final_status', 'cre_name', 'ps_name', 'branch', 'created_at',
                                    'follow_up_date', 'cre_id', 'lead_category', 'model_interested', 'follow_up_at',
                                    'last_call_at', 'call_count', 'won_at', 'lost_at', 'updated_at',
                                    'test_drive_done', 'ps_email'),
        'codecs', json_build_array('delta', 'delta', 'raw', 'raw', 'raw', 'sources',
                                   'dict', 'dict', 'dict', 'dict', 'dict', 'created',
                                   'day', 'dict', 'dict', 'dict', 'at',
                                   'at', 'raw', 'at', 'at', 'at',
                                   'bool', 'dict'),
        'dicts', (select json_build_object('lead_status', d.lead_status, 'final_status', d.final_status,
                                           'cre_name', d.cre_name, 'ps_name', d.ps_name, 'branch', d.branch,
                                           'cre_id', d.cre_id, 'lead_category', d.lead_category,
                                           'model_interested', d.model_interested, 'ps_email', d.ps_email,
                                           'source', d.source, 'sub_source', d.sub_source) from d),
        'rows', coalesce((select json_agg(r.j order by r.change_id) from (
                              select p.change_id, json_build_array(
                                   p.change_id - coalesce(lag(p.change_id) over w, 0),
                                   p.id - coalesce(lag(p.id) over w, 0),
                                   p.phone, p.uid, p.customer_name,
                                   -- Nearly every lead has one source: built in place; more go through a subquery.
                                   case when jsonb_array_length(p.sources) = 1 then
                                       json_build_array(json_build_array(
                                           array_position(d.source, p.sources->0->>'source') - 1,
                                           array_position(d.sub_source, p.sources->0->>'sub_source') - 1,
                                           _feed_us((p.sources->0->>'at')::timestamptz) - p.c_us))
                                   else (select coalesce(json_agg(json_build_array(
                                                    array_position(d.source, e.v->>'source') - 1,
                                                    array_position(d.sub_source, e.v->>'sub_source') - 1,
                                                    _feed_us((e.v->>'at')::timestamptz) - p.c_us) order by e.ord),
                                                 '[]'::json)
                                           from jsonb_array_elements(p.sources) with ordinality as e (v, ord))
                                   end,
                                   array_position(d.lead_status, p.lead_status) - 1,
                                   array_position(d.final_status, p.final_status) - 1,
                                   array_position(d.cre_name, p.cre_name) - 1,
                                   array_position(d.ps_name, p.ps_name) - 1,
                                   array_position(d.branch, p.branch) - 1,
                                   p.c_us - coalesce(lag(p.c_us) over w, 0),
                                   p.follow_up_date - (p.created_at at time zone 'UTC')::date,
                                   array_position(d.cre_id, p.cre_id) - 1,
                                   array_position(d.lead_category, p.lead_category) - 1,
                                   array_position(d.model_interested, p.model_interested) - 1,
                                   _feed_us(p.follow_up_at) - p.c_us,
                                   _feed_us(p.last_call_at) - p.c_us,
                                   p.call_count,
                                   _feed_us(p.won_at) - p.c_us,
                                   _feed_us(p.lost_at) - p.c_us,
                                   _feed_us(p.updated_at) - p.c_us,
                                   p.test_drive_done,
                                   array_position(d.ps_email, p.ps_email) - 1) as j
                                from page p
                               cross join d
                              window w as (order by p.change_id)) r), '[]'::json),
        'next_since', coalesce(seen.last, since),
        'more', seen.rows = n,
        'remaining', case when seen.rows = n
                          then greatest((select last_value from lead_change_seq) - seen.last, 0) else 0 end,
        -- Where the three pages after the next one start (the change_id of every n-th row after this page), so a
        -- desk 50 ms away can have several pages in flight. An index-only scan of 3n entries. A row renumbered
        -- meanwhile only moves above these starts, so a desk that uses them never misses a lead.
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

revoke execute on function _feed_us(timestamptz), lead_feed(bigint, int) from public, anon, authenticated;
grant execute on function lead_feed(bigint, int) to authenticated;
