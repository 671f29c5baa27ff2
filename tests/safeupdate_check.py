"""The pg-safeupdate rule, checked by parsing: no UPDATE or DELETE without a WHERE clause, anywhere in a function.

Hosted Supabase preloads pg-safeupdate for `authenticator`, the role PostgREST logs in as, so such a statement fails
with 21000 on every call, at parse time (also inside a data-modifying CTE in a function, also when it would touch no
row). The reference server cannot load that C module, so the tests parse every function body of the live database
with PostgreSQL's own parser (pglast, libpg_query): SQL bodies as SQL, plpgsql bodies through the plpgsql parser and
then every SQL statement and expression in them. The check is stricter than safeupdate (any nesting counts), which
is what a rule for code written from now on should be."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pglast
from pglast import ast
from pglast.visitors import Visitor

# plpgsql expression parse modes (PostgreSQL's RawParseMode): 0 a whole statement, 2 an expression, 3-5 assignments.
_STATEMENT, _EXPRESSION = 0, 2
_DML = re.compile(r"\b(update|delete)\b", re.IGNORECASE)

# Every function of a schema with what parsing it needs. prosqlbody is set for SQL-standard (BEGIN ATOMIC) bodies.
FUNCTIONS = """
select p.oid::regprocedure::text, l.lanname, p.prosrc, p.prosqlbody is not null, pg_get_functiondef(p.oid)
  from pg_proc p
  join pg_namespace n on n.oid = p.pronamespace
  join pg_language l on l.oid = p.prolang
 where n.nspname = %s and p.prokind in ('f', 'p')
 order by 1
"""


@dataclass(frozen=True)
class Violation:
    function: str
    problem: str
    statement: str

    def __str__(self) -> str:
        return f"{self.function}: {self.problem}: {' '.join(self.statement.split())[:160]}"


class _Unqualified(Visitor):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def visit_DeleteStmt(self, ancestors: Any, node: ast.DeleteStmt) -> None:
        if node.whereClause is None:
            self.found.append(f"DELETE FROM {node.relation.relname} without WHERE")

    def visit_UpdateStmt(self, ancestors: Any, node: ast.UpdateStmt) -> None:
        if node.whereClause is None:
            self.found.append(f"UPDATE {node.relation.relname} without WHERE")


def check_sql(function: str, text: str) -> list[Violation]:
    """Violations in SQL text (one or more statements)."""
    visitor = _Unqualified()
    for stmt in pglast.parse_sql(text):
        visitor(stmt)
    return [Violation(function, problem, text) for problem in visitor.found]


def _plpgsql_queries(tree: Any) -> Iterator[tuple[str, int, str]]:
    """(query text, parse mode, enclosing plpgsql node) of every PLpgSQL_expr in a parsed plpgsql function."""
    stack: list[tuple[Any, str]] = [(tree, "")]
    while stack:
        node, owner = stack.pop()
        if isinstance(node, dict):
            expr = node.get("PLpgSQL_expr")
            if isinstance(expr, dict) and isinstance(expr.get("query"), str):
                yield expr["query"], int(expr.get("parseMode", _STATEMENT)), owner
                continue
            for key, value in node.items():
                stack.append((value, key if key.startswith("PLpgSQL_stmt") else owner))
        elif isinstance(node, list):
            stack.extend((item, owner) for item in node)


def check_plpgsql(function: str, definition: str) -> list[Violation]:
    """Violations in a plpgsql function, given its whole CREATE FUNCTION text."""
    found: list[Violation] = []
    for query, mode, owner in _plpgsql_queries(pglast.parse_plpgsql(definition)):
        if owner == "PLpgSQL_stmt_dynexecute":
            if _DML.search(query):  # EXECUTE of built text: the parser cannot see it, so nobody may rely on it
                found.append(Violation(function, "UPDATE/DELETE in dynamic SQL cannot be checked", query))
            continue
        if mode == _STATEMENT:
            text = query
        elif mode == _EXPRESSION:
            text = "select " + query
        else:  # an assignment `target := expression`: only the expression is SQL
            text = "select " + query.split(":=", 1)[-1]
        try:
            found += check_sql(function, text)
        except pglast.parser.ParseError:
            if _DML.search(query):
                found.append(Violation(function, "cannot parse a statement that mentions UPDATE/DELETE", query))
    return found


def check_function(function: str, language: str, source: str, atomic: bool, definition: str) -> list[Violation]:
    if language == "plpgsql":
        return check_plpgsql(function, definition)
    if language == "sql":
        return check_sql(function, definition if atomic else source)
    return []  # C and internal functions are PostgreSQL's own


def check_schema(conn: Any, schema: str = "public") -> tuple[list[str], list[Violation]]:
    """(functions checked, violations) for every SQL and plpgsql function of `schema` in the connected database."""
    checked: list[str] = []
    found: list[Violation] = []
    for name, language, source, atomic, definition in conn.execute(FUNCTIONS, (schema,)).fetchall():
        if language in ("sql", "plpgsql"):
            checked.append(name)
            found += check_function(name, language, source, atomic, definition)
    return checked, found
