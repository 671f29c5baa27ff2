"""PostgreSQL for the reference server: the embedded cluster, the migration runner and connection info.

The migrations in `sql/migrations/` are the contract and run unchanged on Supabase; `sql/reference/` holds what
Supabase would otherwise provide (roles, `auth` schema) and is applied only where nobody else provides an `auth`
schema: never on a database whose `auth` belongs to Supabase's auth service (GoTrue), whose `auth.uid()` the shim
would otherwise replace.

Migrations may have been applied without this runner (Supabase's SQL editor, `supabase db push`), so a version
missing from `schema_migrations` is first looked for by its objects: the tables, sequences, indexes, policies and
columns it creates and the exact bodies of the functions it defines. All there: it is recorded, not re-run; none
there: it is applied; some: the runner stops and says which, rather than guess. Each applied or recognised version
is recorded with the checksum of its file.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).with_name("sql")
DATABASE_NAME = "crm"
# Serialises migration runs of several servers starting at once against one database.
MIGRATION_LOCK_KEY = 7_214_401


class MigrationError(RuntimeError):
    """The database is in a state the runner will not guess about; the message says what to do."""


def migration_files() -> list[Path]:
    return sorted((SQL_DIR / "migrations").glob("*.sql"))


def reference_files() -> list[Path]:
    return sorted((SQL_DIR / "reference").glob("*.sql"))


def read_sql(path: Path) -> str:
    # UTF-8 whatever the locale (cp1252 on Windows); CRLF from a Windows checkout reads as LF.
    return path.read_text(encoding="utf-8")


def checksum(text: str) -> str:
    """Of the file's text with line endings normalised, so a CRLF checkout has the same checksum."""
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


@dataclass
class Database:
    """Where the server's PostgreSQL is: an admin conninfo (migrations, seeding) and the pool's conninfo, which logs in
    as `authenticator` (or switches to it at connect time), a role that can do nothing until it becomes `anon`,
    `authenticated` or `service_role` for one transaction."""

    admin_conninfo: str
    embedded: Any = None  # the EmbeddedCluster hold, kept while the server runs

    @property
    def pool_conninfo(self) -> str:
        params = conninfo_to_dict(self.admin_conninfo)
        if self.embedded is not None:
            # Embedded cluster: a private local socket with trust auth, so log in as the powerless role itself.
            params["user"] = "authenticator"
        else:
            # A given URL: keep its credentials but start every session as authenticator.
            params["options"] = (str(params.get("options") or "") + " -c role=authenticator").strip()
        return make_conninfo("", **params)

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.release()
            self.embedded = None


def start_embedded(data_dir: Path) -> Database:
    """Start (or join) the embedded PostgreSQL in `data_dir` and make sure the `crm` database exists."""
    from server_contract.embedded import EmbeddedCluster  # a server given --database-url needs no embedded binaries

    cluster = EmbeddedCluster.acquire(data_dir)
    try:
        with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                conn.execute(f"create database {DATABASE_NAME}")
    except BaseException:
        cluster.release()
        raise
    return Database(admin_conninfo=cluster.conninfo(DATABASE_NAME), embedded=cluster)


def from_url(url: str) -> Database:
    return Database(admin_conninfo=url)


@contextmanager
def admin_connection(db: Database, autocommit: bool = True) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db.admin_conninfo, autocommit=autocommit) as conn:
        yield conn


# ------------------------------------------------------------------------------------------------ who owns `auth`

AUTH_NONE = "none"  # no auth schema: the reference shim may create it
AUTH_REFERENCE = "reference"  # made by the shim (auth.refresh_tokens.token_hash): re-applying it is a no-op
AUTH_FOREIGN = "foreign"  # anyone else's, e.g. Supabase's auth service: never touched


def auth_kind(conn: psycopg.Connection[Any]) -> str:
    """Whose `auth` schema this database has. GoTrue's marks win over the shim's: an older `crm-server serve` did
    add the shim's tables to Supabase's `auth`, and that must not make it ours."""
    # pg_catalog, not information_schema: the latter hides columns the connecting role has no privilege on.
    row = conn.execute(
        """with cols as (select c.relname, a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid
                          where c.relnamespace = (select oid from pg_namespace where nspname = 'auth')
                            and a.attnum > 0 and not a.attisdropped)
           select exists (select from pg_namespace where nspname = 'auth'),
                  exists (select from pg_class where relname in ('schema_migrations', 'identities')
                          and relnamespace = (select oid from pg_namespace where nspname = 'auth'))
                  or exists (select from cols where relname = 'users'
                             and attname in ('instance_id', 'aud', 'is_sso_user')),
                  exists (select from cols where relname = 'refresh_tokens' and attname = 'token_hash')"""
    ).fetchone()
    assert row is not None
    has_schema, gotrue, shim = row
    if not has_schema:
        return AUTH_NONE
    if not gotrue and shim:
        return AUTH_REFERENCE
    return AUTH_FOREIGN


# ------------------------------------------------------------------------------ what a migration leaves behind

_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")
_NAME = r'(?:"?[A-Za-z_][A-Za-z_0-9$]*"?\.)?"?([A-Za-z_][A-Za-z_0-9$]*)"?'


def _statements(sql: str) -> list[tuple[str, list[str]]]:
    """Split SQL into statements: (text with string bodies blanked, [dollar-quoted bodies in order])."""
    out: list[tuple[str, list[str]]] = []
    buf: list[str] = []
    bodies: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "'":
            j = i + 1
            while j < n:
                if sql[j] == "'" and sql.startswith("''", j):
                    j += 2
                    continue
                if sql[j] == "'":
                    break
                j += 1
            buf.append("''")
            i = j + 1
        elif c == "$" and (m := _DOLLAR.match(sql, i)):
            tag = m.group(0)
            end = sql.find(tag, m.end())
            end = n if end < 0 else end
            bodies.append(sql[m.end() : end])
            buf.append("$$")
            i = end + len(tag)
        elif c == ";":
            out.append(("".join(buf).strip(), bodies))
            buf, bodies = [], []
            i += 1
        else:
            buf.append(c)
            i += 1
    if "".join(buf).strip():
        out.append(("".join(buf).strip(), bodies))
    return out


@dataclass
class Footprint:
    """The named objects one migration creates (not those it creates `if not exists`) and drops."""

    relations: set[str] = field(default_factory=set)  # tables, sequences, indexes, views
    policies: set[tuple[str, str]] = field(default_factory=set)  # (table, policy)
    columns: set[tuple[str, str]] = field(default_factory=set)  # (table, column) added by alter table
    functions: dict[str, str] = field(default_factory=dict)  # name -> body as written
    dropped: set[str] = field(default_factory=set)
    dropped_columns: set[tuple[str, str]] = field(default_factory=set)  # (table, column) dropped by alter table

    def empty(self) -> bool:
        return not (self.relations or self.policies or self.columns or self.functions)


_RELATION = re.compile(
    rf"create (?:unlogged )?(?:table|sequence|view|materialized view) (?!if not exists){_NAME}"
    rf"|create (?:unique )?index (?:concurrently )?(?!if not exists){_NAME} on"
)


def footprint(sql: str) -> Footprint:
    fp = Footprint()
    for text, bodies in _statements(_normalise(sql)):
        flat = " ".join(text.split()).lower()
        if m := _RELATION.match(flat):
            fp.relations.add(m.group(1) or m.group(2))
        elif m := re.match(rf"create policy {_NAME} on {_NAME}", flat):
            fp.policies.add((m.group(2), m.group(1)))
        elif m := re.match(rf"create (?:or replace )?function {_NAME}\s*\(", flat):
            if bodies:
                fp.functions[m.group(1)] = bodies[0]
        elif m := re.match(rf"alter table (?:only )?(?:if exists )?{_NAME} (.*)", flat):
            table = m.group(1)
            for add in re.finditer(rf"add (?:column )?(?!if not exists|constraint|primary|unique|foreign|check){_NAME}",
                                   m.group(2)):  # fmt: skip
                fp.columns.add((table, add.group(1)))
            for drop in re.finditer(rf"drop column (?:if exists )?{_NAME}", m.group(2)):
                fp.dropped_columns.add((table, drop.group(1)))
        elif m := re.match(rf"drop (?:table|sequence|view|index|function|materialized view) (?:if exists )?{_NAME}",
                           flat):  # fmt: skip
            fp.dropped.add(m.group(1))
    return fp


def _normalise(sql: str) -> str:
    return sql.replace("\r\n", "\n")


@dataclass
class Presence:
    present: list[str]
    missing: list[str]


def probe(conn: psycopg.Connection[Any], fp: Footprint, later: list[Footprint]) -> Presence:
    """Which of a migration's objects the database has. A function counts as present when its body is the one this
    migration wrote or one a later migration replaced it with; an object (or column) a later migration drops is not
    looked for."""
    dropped_later = set().union(*(f.dropped for f in later)) if later else set()
    columns_dropped_later = set().union(*(f.dropped_columns for f in later)) if later else set()
    present: list[str] = []
    missing: list[str] = []

    def note(ok: bool, what: str) -> None:
        (present if ok else missing).append(what)

    for rel in sorted(fp.relations - dropped_later):
        row = conn.execute("select to_regclass(%s) is not null", (f"public.{rel}",)).fetchone()
        note(bool(row and row[0]), f"relation {rel}")
    for table, policy in sorted(fp.policies):
        row = conn.execute(
            "select exists (select from pg_policies"
            " where schemaname = 'public' and tablename = %s and policyname = %s)",
            (table, policy),
        ).fetchone()
        note(bool(row and row[0]), f"policy {policy} on {table}")
    for table, column in sorted(fp.columns - columns_dropped_later):
        row = conn.execute(
            "select exists (select from information_schema.columns"
            " where table_schema = 'public' and table_name = %s and column_name = %s)",
            (table, column),
        ).fetchone()
        note(bool(row and row[0]), f"column {table}.{column}")
    for name, body in sorted(fp.functions.items()):
        if name in dropped_later:
            continue
        accepted = {_normalise(body)} | {_normalise(f.functions[name]) for f in later if name in f.functions}
        rows = conn.execute(
            "select prosrc from pg_proc where proname = %s and pronamespace = 'public'::regnamespace", (name,)
        ).fetchall()
        note(any(_normalise(r[0]) in accepted for r in rows), f"function {name}")
    return Presence(present, missing)


# ------------------------------------------------------------------------------------------------- the runner


@dataclass
class MigrationPlan:
    """What `migrate` did or would do: versions recognised as applied elsewhere, and versions it applies."""

    auth: str
    recognised: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)


def _ensure_ledger(conn: psycopg.Connection[Any]) -> dict[str, str | None]:
    conn.execute(
        "create table if not exists public.schema_migrations "
        "(version text primary key, applied_at timestamptz not null default now())"
    )
    conn.execute("alter table public.schema_migrations add column if not exists checksum text")
    return {str(v): c for v, c in conn.execute("select version, checksum from public.schema_migrations")}


def pending(conn: psycopg.Connection[Any]) -> MigrationPlan:
    """Read-only: which migrations the database lacks, and which it has without a record (SQL editor)."""
    plan = MigrationPlan(auth=auth_kind(conn))
    files = migration_files()
    row = conn.execute("select to_regclass('public.schema_migrations') is not null").fetchone()
    recorded: set[str] = set()
    if row and row[0]:
        recorded = {str(r[0]) for r in conn.execute("select version from public.schema_migrations")}
    prints = [footprint(read_sql(p)) for p in files]
    for i, path in enumerate(files):
        if path.stem in recorded:
            continue
        state = _state(conn, path.stem, prints[i], prints[i + 1 :])
        (plan.recognised if state == "present" else plan.applied).append(path.stem)
    return plan


def _state(conn: psycopg.Connection[Any], version: str, fp: Footprint, later: list[Footprint]) -> str:
    if fp.empty():
        return "absent"  # nothing to recognise it by: such a migration is written to be re-runnable (003 is)
    found = probe(conn, fp, later)
    if not found.missing:
        return "present"
    if not found.present:
        return "absent"
    raise MigrationError(
        f"migration {version} looks partly applied: present {', '.join(found.present)}; missing "
        f"{', '.join(found.missing)}. Finish or undo it by hand (e.g. in the SQL editor), then run migrate again."
    )


def migrate(db: Database, *, reference: bool = True) -> MigrationPlan:
    """Apply the reference shim where the `auth` schema is absent or the shim's own (when `reference`), then every
    migration not yet in the database, each in its own transaction. Migrations found applied without a record are
    recorded, not re-run. Never changes a foreign `auth` schema."""
    with admin_connection(db) as conn:
        conn.execute("select pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            plan = MigrationPlan(auth=auth_kind(conn))
            if reference and plan.auth != AUTH_FOREIGN:
                for path in reference_files():
                    with conn.transaction():
                        conn.execute(read_sql(path))
            with conn.transaction():
                ledger = _ensure_ledger(conn)
            files = migration_files()
            prints = [footprint(read_sql(p)) for p in files]
            for i, path in enumerate(files):
                version, text = path.stem, read_sql(path)
                if version in ledger:
                    if ledger[version] is None:
                        conn.execute("update public.schema_migrations set checksum = %s where version = %s",
                                     (checksum(text), version))  # fmt: skip
                    elif ledger[version] != checksum(text):
                        log.warning("migration %s was applied from a different text than %s", version, path.name)
                    continue
                with conn.transaction():
                    if _state(conn, version, prints[i], prints[i + 1 :]) == "present":
                        plan.recognised.append(version)
                        log.info("migration %s is already in the database (applied elsewhere): recorded", version)
                    else:
                        conn.execute(text)
                        plan.applied.append(version)
                        log.info("applied migration %s", version)
                    conn.execute(
                        "insert into public.schema_migrations (version, checksum) values (%s, %s)",
                        (version, checksum(text)),
                    )
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return plan
