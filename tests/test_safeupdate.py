"""pg-safeupdate's rule holds for every function the API can reach: no UPDATE/DELETE without WHERE (see
safeupdate_check). Hosted Supabase refuses such a statement on every call (`21000 DELETE requires a WHERE clause`);
002's `_fold_stats` made every dashboard call fail there until migration 004 replaced it."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from safeupdate_check import check_plpgsql, check_schema, check_sql

from server_contract.db import migration_files


def _definition_in(path_stem: str, function: str) -> str:
    """The CREATE FUNCTION statement of `function` as a migration file has it."""
    (path,) = [p for p in migration_files() if p.stem == path_stem]
    from pglast.parser import split

    for statement in split(path.read_text(encoding="utf-8")):
        head = statement.lstrip().lower()
        if head.startswith(("create function", "create or replace function")) and f" {function}(" in head[:200]:
            return statement
    raise AssertionError(f"{function} not in {path.name}")


def test_every_function_of_the_live_database_qualifies_its_updates_and_deletes(db: psycopg.Connection[Any]):
    checked, violations = check_schema(db, "public")
    # The check reaches the functions that matter, plpgsql and SQL alike.
    assert {"create_lead(jsonb)", "_fold_stats()", "dashboard_summary(date,date,text)", "desk_tz()"} <= set(checked)
    assert not violations, "\n".join(map(str, violations))


def test_the_check_flags_002s_fold_stats_which_hosted_supabase_refused():
    violations = check_plpgsql("_fold_stats()", _definition_in("002_functions", "_fold_stats"))
    assert [v.problem for v in violations] == ["DELETE FROM stats_events without WHERE"]
    assert check_plpgsql("_fold_stats()", _definition_in("004_safeupdate", "_fold_stats")) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("update t set x = 1", "UPDATE t without WHERE"),
        ("delete from t", "DELETE FROM t without WHERE"),
        ("with d as (delete from t returning x) select count(*) from d", "DELETE FROM t without WHERE"),
        ("with u as (update t set x = 2 returning x) select 1", "UPDATE t without WHERE"),
        ("delete from t where true", None),
        ("update t set x = 1 where x is not null", None),
    ],
)
def test_the_check_sees_plain_and_cte_statements(body: str, problem: str | None):
    assert [v.problem for v in check_sql("f()", body)] == ([problem] if problem else [])


def test_a_new_unqualified_delete_in_the_live_database_is_caught(db: psycopg.Connection[Any]):
    """Any function added to `public` (by a later migration) is checked: SQL, plpgsql, loops, RETURN QUERY."""
    with db.transaction(force_rollback=True):
        db.execute("create table public.safeupdate_probe (x int)")
        db.execute(
            "create function public.safeupdate_probe_sql() returns void language sql"
            " as $$ delete from public.safeupdate_probe $$"
        )
        db.execute(
            """create function public.safeupdate_probe_plpgsql() returns setof int language plpgsql as $$
               declare r record;
               begin
                   for r in with u as (update public.safeupdate_probe set x = 1 returning x) select x from u loop
                       null;
                   end loop;
                   return query with d as (delete from public.safeupdate_probe where x > 0 returning x)
                                select x from d;
               end $$"""
        )
        db.execute(
            "create function public.safeupdate_probe_atomic() returns void language sql"
            " begin atomic delete from public.safeupdate_probe; end"
        )
        _, violations = check_schema(db, "public")
    assert sorted((v.function, v.problem) for v in violations) == [
        ("safeupdate_probe_atomic()", "DELETE FROM safeupdate_probe without WHERE"),
        ("safeupdate_probe_plpgsql()", "UPDATE safeupdate_probe without WHERE"),
        ("safeupdate_probe_sql()", "DELETE FROM safeupdate_probe without WHERE"),
    ]
