"""PostgreSQL for the reference server: the embedded cluster (pgserver), the migration runner and connection info.

The migrations in `sql/migrations/` are the contract and run unchanged on Supabase; `sql/reference/` holds what
Supabase would otherwise provide (roles, `auth` schema) and is applied only by this server, before the migrations.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).with_name("sql")
DATABASE_NAME = "crm"
# Serialises migration runs of several servers starting at once against one database.
MIGRATION_LOCK_KEY = 7_214_401


def migration_files() -> list[Path]:
    return sorted((SQL_DIR / "migrations").glob("*.sql"))


def reference_files() -> list[Path]:
    return sorted((SQL_DIR / "reference").glob("*.sql"))


@dataclass
class Database:
    """Where the server's PostgreSQL is: an admin conninfo (migrations, seeding) and the pool's conninfo, which logs in
    as `authenticator` (or switches to it at connect time), a role that can do nothing until it becomes `anon`,
    `authenticated` or `service_role` for one transaction."""

    admin_conninfo: str
    embedded: Any = None  # the pgserver handle, kept alive while the server runs

    @property
    def pool_conninfo(self) -> str:
        params = conninfo_to_dict(self.admin_conninfo)
        if self.embedded is not None:
            # Embedded cluster: local socket with trust auth, so log in as the powerless role itself.
            params["user"] = "authenticator"
        else:
            # A given URL: keep its credentials but start every session as authenticator.
            params["options"] = (str(params.get("options") or "") + " -c role=authenticator").strip()
        return make_conninfo("", **params)

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.cleanup()
            self.embedded = None


def start_embedded(data_dir: Path) -> Database:
    """Start (or join) the embedded PostgreSQL in `data_dir` and make sure the `crm` database exists."""
    import pgserver  # imported here: a server given --database-url does not need the embedded binaries

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    uri = server.get_uri()
    with psycopg.connect(uri, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (DATABASE_NAME,)).fetchone()
        if not exists:
            conn.execute(f"create database {DATABASE_NAME}")
    params = conninfo_to_dict(uri)
    params["dbname"] = DATABASE_NAME
    return Database(admin_conninfo=make_conninfo("", **params), embedded=server)


def from_url(url: str) -> Database:
    return Database(admin_conninfo=url)


@contextmanager
def admin_connection(db: Database, autocommit: bool = True) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db.admin_conninfo, autocommit=autocommit) as conn:
        yield conn


def migrate(db: Database, *, reference: bool = True) -> list[str]:
    """Apply the reference shim (idempotent) and every migration not yet recorded, each in its own transaction.

    Returns the versions applied by this call."""
    applied_now: list[str] = []
    with admin_connection(db) as conn:
        conn.execute("select pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            if reference:
                for path in reference_files():
                    with conn.transaction():
                        conn.execute(path.read_text(encoding="utf-8"))
            conn.execute(
                "create table if not exists public.schema_migrations "
                "(version text primary key, applied_at timestamptz not null default now())"
            )
            done = {row[0] for row in conn.execute("select version from public.schema_migrations")}
            for path in migration_files():
                version = path.stem
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text(encoding="utf-8"))
                    conn.execute("insert into public.schema_migrations (version) values (%s)", (version,))
                applied_now.append(version)
                log.info("applied migration %s", version)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now
