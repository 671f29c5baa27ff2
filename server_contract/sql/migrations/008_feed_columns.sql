-- lead_feed pages column by column, for a desk's long syncs (issue 12: bytes on the office link).
--
-- A compact-1 page lists its rows one after the other: [[change, lead, created, phone, ...], [...], ...]. What is left
-- after compression is mostly what sits between the dictionary ids: a phone, a UID, a name, timestamps, then the
-- next row's ids again. Sent column by column instead ({"cols": [[every change_id], [every lead_id], ...]}), like
-- values sit together: a column of statuses or branches compresses to almost nothing, and the timestamps and phones
-- compress among their own kind. Measured on the 1M-lead bench database's recorded pages (zstd level 7, as the
-- reference server sends them): 39.4 -> 25.8 bytes per lead; gzip level 6: 40.1 -> 30.0.
--
-- The same encoding (compact-1: the same columns, codecs, dictionaries and paging), only laid out by column, and only
-- when the caller asks: lead_feed(..., layout => 'columns'). A desk asks for it in a long sync (a first sync, a
-- resumed one), where the bytes are; an older desk never asks and gets rows as before; a desk that asks an older
-- server is told the function has no such parameter (PostgREST: 404 PGRST202) and asks for rows from then on.
--
-- The stored part of each lead's row (007's feed_compact, one text) becomes one text per column (feed_cols), so a
-- page is one aggregate per column over stored values, never a parse; a rows page joins them again
-- (array_to_string). Measured at 1M leads (10,000-row pages, PostgreSQL 16, the same session): ~86-100 ms a page by
-- row, ~103-115 ms by column. Storage: feed_cols ~247 bytes a lead, where feed_compact was ~120.

alter table leads add column feed_cols text[];

-- 007's _feed_rows_of with the compact part as an array, one JSON text per column, in lead_feed's column order. Every
-- element is non-null text ('null' for a JSON null): string_agg skips nulls, which would shift a column.
drop function _feed_rows_of(bigint[]);
create function _feed_rows_of(p_ids bigint[]) returns table (id bigint, plain text, cols text[])
language plpgsql stable
set search_path = public, pg_temp
set timezone = 'UTC'
set plan_cache_mode = force_generic_plan
as $$
begin
    return query
    select l.id,
           -- lead_changes: 005's json_build_array from the lead_id on (as 007).
           substr(json_build_array(l.id, l.phone, l.uid, l.customer_name, l.sources, l.lead_status, l.final_status,
                                   c.full_name, s.full_name, l.branch, l.created_at, l.follow_up_date,
                                   l.cre_id, l.lead_category, l.model_interested, l.follow_up_at,
                                   l.last_call_at, l.call_count, l.won_at, l.lost_at,
                                   l.updated_at, l.test_drive_done, s.email)::text, 2),
           array[
               coalesce(to_json(l.phone)::text, 'null'), coalesce(to_json(l.uid)::text, 'null'),
               coalesce(to_json(l.customer_name)::text, 'null'),
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
               _feed_n(d_ps_email.id)]
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

-- 007's writers of the stored rows, writing feed_cols.
create or replace function _feed_fill(p_since bigint, p_limit int) returns bigint
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
        update leads l set feed_row = ('[' || l.change_id || ', ' || r.plain)::json, feed_cols = r.cols
          from _feed_rows_of(ids) r
         where l.id = r.id;
    end if;
    return last;
end
$$;

create or replace function _feed_sequence(p_limit int) returns void
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
                           feed_cols = r.cols
          from (select f.*, nextval('lead_change_seq') as change_id from _feed_rows_of(ids) f) r
         where l.id = r.id;
    end if;
end
$$;

-- Every numbered lead's columns, 20,000 at a time in feed order (leads not rendered yet get them from _feed_fill or
-- _feed_sequence, as 007's rows). One rewrite of each row; the values feed_values needs are there since 007.
do $$
declare
    since bigint := 0;
    ids bigint[];
    last bigint;
begin
    loop
        select array_agg(x.id), max(x.change_id) into ids, last
          from (select id, change_id from leads
                 where change_id > since and feed_row is not null
                 order by change_id limit 20000) x;
        exit when last is null;
        update leads l set feed_cols = r.cols from _feed_rows_of(ids) r where l.id = r.id;
        since := last;
    end loop;
end
$$;

alter table leads drop column feed_compact;

-- lead_feed with a layout: 'rows' (the default, compact-1 as 006/007 sent it) or 'columns' (the same page with
-- "cols" in place of "rows": one array per column, each as long as the page). A new parameter means a new function;
-- PostgREST finds it by the arguments a call names, so callers that name only since and max_rows get rows.
drop function lead_feed(bigint, int);
create function lead_feed(since bigint, max_rows int default 5000, layout text default 'rows') returns json
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    n int := least(greatest(coalesce(max_rows, 5000), 1), 10000);
    by_column boolean;
    body text;
    got bigint;
    last bigint;
    result json;
begin
    if layout is null or layout not in ('rows', 'columns') then
        perform _fail('invalid_layout', 'layout must be rows or columns.', 422, 'layout');
    end if;
    by_column := layout = 'columns';
    perform _feed_begin(since, n);

    -- The page's rows in feed order, the three columns whose codec needs the previous row as differences first (dc,
    -- di, dt), then the stored part (c). By column: one aggregate per column over the same rows in one pass, each in
    -- feed order (they share the ORDER BY, so PostgreSQL 16 sorts once). By row: each row's text, joined. The
    -- other layout's aggregates have a false FILTER: PostgreSQL evaluates their arguments for no row.
    with page as materialized (
        select l.change_id, l.id, _feed_us(l.created_at) as c_us, l.feed_cols
          from leads l
         where l.change_id > since
         order by l.change_id
         limit n
    )
    select case when by_column then
               '[[' || concat_ws('],[',
                   string_agg(d.dc::text, ',' order by d.change_id) filter (where by_column),
                   string_agg(d.di::text, ',' order by d.change_id) filter (where by_column),
                   string_agg(d.dt::text, ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[1], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[2], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[3], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[4], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[5], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[6], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[7], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[8], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[9], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[10], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[11], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[12], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[13], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[14], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[15], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[16], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[17], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[18], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[19], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[20], ',' order by d.change_id) filter (where by_column),
                   string_agg(d.c[21], ',' order by d.change_id) filter (where by_column)) || ']]'
           else
               '[' || coalesce(string_agg('[' || d.dc || ',' || d.di || ',' || d.dt || ',' || array_to_string(d.c, ',')
                                          || ']', ',' order by d.change_id) filter (where not by_column), '') || ']'
           end,
           count(*), max(d.change_id)
      into body, got, last
      from (select p.change_id, p.change_id - coalesce(lag(p.change_id) over w, 0) as dc,
                   p.id - coalesce(lag(p.id) over w, 0) as di, p.c_us - coalesce(lag(p.c_us) over w, 0) as dt,
                   p.feed_cols as c
              from page p
            window w as (order by p.change_id)) d;
    if by_column and got = 0 then  -- no aggregate had a row: one empty array per column
        body := '[' || array_to_string(array_fill('[]'::text, array[24]), ',') || ']';
    end if;

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
        case when by_column then 'cols' else 'rows' end, body::json,
        'next_since', coalesce(last, since),
        'more', got = n,
        'remaining', case when got = n
                          then greatest((select last_value from lead_change_seq) - last, 0) else 0 end,
        -- Where the three pages after the next one start (see 006).
        'ahead', case when got = n
                      then coalesce((select json_agg(b.change_id order by b.change_id)
                                       from (select x.change_id, row_number() over (order by x.change_id) as rn
                                               from (select change_id from leads where change_id > last
                                                      order by change_id limit n * 3) x) b
                                      where b.rn % n = 0), '[]'::json)
                      else '[]'::json end)
      into result;
    return result;
end
$$;

revoke execute on function _feed_rows_of(bigint[]), lead_feed(bigint, int, text) from public, anon, authenticated;
grant execute on function lead_feed(bigint, int, text) to authenticated;
