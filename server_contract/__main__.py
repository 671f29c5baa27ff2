"""`crm-server`: the reference server of the CRE Desk contract.

    crm-server serve [--data-dir DIR | --database-url URL] [--host 127.0.0.1] [--port N] [--demo] [--smtp HOST:PORT]
                     [--stop-when-stdin-closes]
    crm-server migrate [--data-dir DIR | --database-url URL] [--dry-run]
    crm-server seed --leads N [--data-dir DIR | --database-url URL]
    crm-server mail --smtp HOST:PORT [--data-dir DIR | --database-url URL]

`serve` prints one JSON line first, `{"url", "anon_key", ...}`, so tools and tests can find it (port 0 = a free port).
`migrate` applies what the database lacks and recognises migrations applied elsewhere (Supabase's SQL editor); on a
database whose `auth` schema belongs to Supabase's auth service it changes nothing there, and `serve` refuses it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("server_contract")


def default_data_dir() -> Path:
    from platformdirs import user_data_path

    return user_data_path("cre-desk") / "reference-server" / "pgdata"


def _open_database(args: argparse.Namespace) -> Any:
    from server_contract import db

    if args.database_url:
        return db.from_url(args.database_url)
    return db.start_embedded(Path(args.data_dir) if args.data_dir else default_data_dir())


def _add_db_args(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--data-dir", help="embedded PostgreSQL data directory (default: under the user data dir)")
    group.add_argument("--database-url", help="use this PostgreSQL 15+ instead of the embedded one")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio enables TCP_NODELAY only on sockets created with it. With protocol 0, Nagle
    # plus delayed ACKs added ~40 ms to every sequential request (measured by bench/bench_server.py).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    option = reuse_option()
    if option is not None:
        sock.setsockopt(socket.SOL_SOCKET, option, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def reuse_option(platform: str | None = None) -> int | None:
    """POSIX: SO_REUSEADDR, so a restarted server (tests stop and restart it) gets its port back at once. Windows:
    there SO_REUSEADDR lets a second socket take a port still in use, and a closed port is free at once anyway, so
    SO_EXCLUSIVEADDRUSE instead."""
    if (platform or sys.platform) == "win32":
        return getattr(socket, "SO_EXCLUSIVEADDRUSE", None)
    return socket.SO_REUSEADDR


def event_loop_factory(platform: str | None = None) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Windows: a selector loop. uvicorn hands out a ProactorEventLoop there, which psycopg's async pool refuses, so
    the server would never answer. Elsewhere None: uvicorn's own choice (uvloop where installed)."""
    if (platform or sys.platform) == "win32":
        return asyncio.SelectorEventLoop
    return None


def run_server(server: Any, sock: socket.socket) -> None:
    """Run a uvicorn.Server on `sock` in the event loop this platform needs."""
    factory = event_loop_factory()
    if factory is None:
        server.run(sockets=[sock])
        return
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(server.serve(sockets=[sock]))


class StdinWatch:
    """Stop when stdin reaches end of file: the channel a parent (the desk's --demo) has on every system. Its end of
    the pipe closes when it stops us, and also when it crashes or is killed, so the server never outlives it."""

    def __init__(self) -> None:
        self.closed = threading.Event()
        self.server: Any = None
        self._thread = threading.Thread(target=self._wait, name="stdin-watch", daemon=True)

    def start(self) -> StdinWatch:
        self._thread.start()
        return self

    def _wait(self) -> None:
        stream = sys.stdin.buffer if sys.stdin is not None else None
        try:
            while stream is not None and stream.read(4096):
                pass
        except (OSError, ValueError):
            pass
        log.info("stdin closed: stopping")
        self.closed.set()
        if self.server is not None:
            self.server.should_exit = True

    def attach(self, server: Any) -> None:
        self.server = server
        if self.closed.is_set():
            server.should_exit = True


FOREIGN_AUTH_MESSAGE = (
    "This database has an `auth` schema that the reference server did not create (Supabase's auth service, GoTrue)."
    " `crm-server serve` would have to add its own sign-in there, so it will not run on it. Point the desk at the"
    " project's own URL and anon key; use `crm-server migrate --database-url ...` for the schema and"
    " `crm-server mail --database-url ...` for the PS e-mails."
)


def serve(args: argparse.Namespace) -> int:
    import psycopg
    import uvicorn

    from server_contract import auth, db, seed
    from server_contract.app import ServerState, create_app, sign_in_limiters
    from server_contract.http_guard import uvicorn_config
    from server_contract.mailer import MailWorker, SmtpTarget

    watch = StdinWatch().start() if args.stop_when_stdin_closes else None
    database = _open_database(args)
    try:
        if database.embedded is None:
            with psycopg.connect(database.admin_conninfo, autocommit=True) as conn:
                if db.auth_kind(conn) == db.AUTH_FOREIGN:
                    print(FOREIGN_AUTH_MESSAGE, file=sys.stderr)
                    return 2
        db.migrate(database, reference=True)
        with psycopg.connect(database.admin_conninfo, autocommit=True) as conn:
            secret = auth.load_or_create_secret(conn)
            if args.demo:
                seed.seed_demo(conn)
        issuer = auth.TokenIssuer(secret, access_ttl=args.access_token_ttl)
        state = ServerState(conninfo=database.pool_conninfo, issuer=issuer, anon_key=issuer.anon_key())
        state.email_limiter, state.address_limiter = sign_in_limiters(args.sign_in_limits)
        app = create_app(state)
        sock = _bind(args.host, args.port)
        host, port = sock.getsockname()[:2]
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        first_line: dict[str, Any] = {"url": url, "anon_key": state.anon_key}
        if database.embedded is not None:
            first_line["database_url"] = database.admin_conninfo
        print(json.dumps(first_line), flush=True)

        mailer: MailWorker | None = None
        if args.smtp:
            mailer = MailWorker(database.pool_conninfo, SmtpTarget.parse(args.smtp), poll_interval=args.mail_poll)
            mailer.start()
        else:
            log.warning("no --smtp given: PS e-mails stay queued in email_outbox until a server with --smtp runs")

        config = uvicorn_config(
            app, args.log_level, header_timeout=args.header_timeout, max_connections=args.max_connections
        )
        server = uvicorn.Server(config)
        if watch is not None:
            watch.attach(server)
        try:
            run_server(server, sock)
        finally:
            if mailer is not None:
                mailer.stop()
    finally:
        database.stop()
    return 0


def migrate_cmd(args: argparse.Namespace) -> int:
    import psycopg

    from server_contract import db

    database = _open_database(args)
    try:
        try:
            if args.dry_run:
                with psycopg.connect(database.admin_conninfo, autocommit=True) as conn:
                    plan = db.pending(conn)
            else:
                plan = db.migrate(database, reference=True)
        except db.MigrationError as exc:
            print(f"crm-server migrate: {exc}", file=sys.stderr)
            return 1
        print(json.dumps({"auth": plan.auth, "recognised": plan.recognised, "applied": plan.applied,
                          "dry_run": bool(args.dry_run)}))  # fmt: skip
    finally:
        database.stop()
    return 0


def seed_cmd(args: argparse.Namespace) -> int:
    import psycopg

    from server_contract import db, seed

    database = _open_database(args)
    try:
        try:
            # Never the shim on a foreign auth schema; migrations applied in the SQL editor are recognised, not re-run.
            db.migrate(database, reference=True)
        except db.MigrationError as exc:
            print(f"crm-server seed: {exc}", file=sys.stderr)
            return 1
        with psycopg.connect(database.admin_conninfo, autocommit=True) as conn:
            try:
                seed.seed_users(conn)
            except seed.SeedError as exc:
                print(f"crm-server seed: {exc}", file=sys.stderr)
                return 1
            t0 = time.perf_counter()

            def progress(done: int, total: int) -> None:
                rate = done / max(time.perf_counter() - t0, 1e-9)
                print(f"  {done:,}/{total:,} leads ({rate:,.0f}/s)", file=sys.stderr, flush=True)

            n = seed.bulk_leads(conn, args.leads, days=args.days, progress=progress)
            dt = time.perf_counter() - t0
            print(json.dumps({"inserted": n, "seconds": round(dt, 2), "rows_per_second": round(n / max(dt, 1e-9))}))
    finally:
        database.stop()
    return 0


def mail_cmd(args: argparse.Namespace) -> int:
    """Run only the mail worker against a database (e.g. a Supabase project, with its connection string)."""
    from server_contract.mailer import MailWorker, SmtpTarget

    database = _open_database(args)
    worker = MailWorker(database.admin_conninfo, SmtpTarget.parse(args.smtp), poll_interval=args.mail_poll)
    worker.start()
    print(json.dumps({"mail_worker": "running", "smtp": args.smtp}), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()
        database.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="crm-server", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p_serve = sub.add_parser("serve", help="run the HTTP server (auth + RPC) and the mail worker")
    _add_db_args(p_serve)
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=54321)
    p_serve.add_argument("--demo", action="store_true", help="seed demo users and leads on an empty database")
    p_serve.add_argument("--smtp", help="HOST:PORT of the SMTP server for PS e-mails")
    p_serve.add_argument("--mail-poll", type=float, default=1.0, help="seconds between outbox checks")
    p_serve.add_argument("--access-token-ttl", type=int, default=3600, help="access token lifetime in seconds")
    p_serve.add_argument("--log-level", default="warning")
    p_serve.add_argument("--header-timeout", type=float, default=10.0, help="seconds a client may take to send headers")
    p_serve.add_argument(
        "--sign-in-limits",
        default="10/300,30/300",
        help="failed sign-ins per e-mail and per address, as BURST/SECONDS,BURST/SECONDS",
    )
    p_serve.add_argument(
        "--max-connections", type=int, default=1000, help="open connections at most (lowered to fit the fd limit)"
    )
    p_serve.add_argument(
        "--stop-when-stdin-closes",
        action="store_true",
        help="stop (PostgreSQL included) when stdin reaches end of file: a parent's way to stop us on any system",
    )
    p_serve.set_defaults(func=serve)

    p_migrate = sub.add_parser("migrate", help="apply the migrations a database lacks (recognises SQL-editor runs)")
    _add_db_args(p_migrate)
    p_migrate.add_argument("--dry-run", action="store_true", help="only say what would be recognised and applied")
    p_migrate.set_defaults(func=migrate_cmd)

    p_seed = sub.add_parser("seed", help="load N synthetic leads (for benchmarks)")
    _add_db_args(p_seed)
    p_seed.add_argument("--leads", type=int, required=True)
    p_seed.add_argument("--days", type=float, default=365.0, help="spread creation times over this many days")
    # Kept so old command lines still parse: whether the shim applies is now decided from the database itself.
    p_seed.add_argument("--reference-shim", action="store_true", help=argparse.SUPPRESS)
    p_seed.set_defaults(func=seed_cmd)

    p_mail = sub.add_parser("mail", help="run only the PS e-mail worker (e.g. beside a Supabase project)")
    _add_db_args(p_mail)
    p_mail.add_argument("--smtp", required=True, help="HOST:PORT of the SMTP server")
    p_mail.add_argument("--mail-poll", type=float, default=5.0)
    p_mail.set_defaults(func=mail_cmd)

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.command in ("seed", "migrate") else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # SIGTERM stops like Ctrl-C: uvicorn shuts down, then the embedded PostgreSQL is stopped in `finally`.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
