-- Hosted Supabase preloads pg-safeupdate for the role PostgREST connects as: an UPDATE or DELETE without a WHERE
-- clause fails with 21000 "DELETE requires a WHERE clause" -- checked at parse time, also inside a data-modifying
-- CTE in a function, so 002's _fold_stats made every dashboard_summary call fail there even with nothing to fold.
-- Same fold, with the WHERE that states what it deletes: every event visible to this transaction.

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
         where id is not null  -- all of them; a WHERE clause is what pg-safeupdate asks for
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
