"""`crm-desktop --demo`: start the reference server (embedded PostgreSQL, demo data, a free loopback port) as a child
process, and stop it when the app closes. The app talks to it over HTTP like to any server: `crm_desktop` never
imports `server_contract` (the contract is HTTP + SQL).

The stop channel is the child's stdin, because every system has one: the server stops (PostgreSQL cleanly included)
when its stdin reaches end of file. `stop()` closes it; if the desk crashes or is killed, the system closes it, so the
server never outlives the desk. A signal would not do: on Windows `terminate()` is TerminateProcess, which leaves
PostgreSQL running, and nothing at all is sent when the desk itself is killed."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platformdirs import user_data_path, user_log_path

log = logging.getLogger(__name__)


class DemoUnavailable(RuntimeError):
    """The reference server could not be started; the message says why and what to do."""


def popen_kwargs(platform: str | None = None) -> dict[str, Any]:
    """Windows: no console window for the server (the desk is a GUI app; a console a CRE could close would kill it)."""
    if (platform or sys.platform) == "win32":
        return {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0x08000000)}
    return {}


@dataclass
class DemoServer:
    url: str
    anon_key: str
    proc: subprocess.Popen[str]

    @classmethod
    def start(cls, data_dir: Path | None = None, timeout: float = 120.0) -> DemoServer:
        data_dir = data_dir or user_data_path("cre-desk") / "demo-server"
        data_dir.mkdir(parents=True, exist_ok=True)
        log_dir = user_log_path("cre-desk")
        log_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "server_contract", "serve", "--demo", "--port", "0",
               "--data-dir", str(data_dir / "pgdata"), "--stop-when-stdin-closes"]  # fmt: skip
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONUTF8="1")
        with (log_dir / "demo-server.log").open("a", encoding="utf-8") as err:
            try:
                proc = subprocess.Popen(
                    cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, env=env,
                    **popen_kwargs(),
                )  # fmt: skip
            except OSError as exc:
                raise DemoUnavailable(f"Could not start the demo server: {exc}") from exc
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            proc.wait(timeout=30)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
            raise DemoUnavailable(
                "The demo server did not start. Is the server part installed (pip install 'cre-desk[server]')? "
                f"Details are in {log_dir / 'demo-server.log'}."
            )
        info = json.loads(line)
        log.info("demo server at %s", info["url"])
        return cls(url=info["url"], anon_key=info["anon_key"], proc=proc)

    def stop(self) -> None:
        """Close the server's stdin: uvicorn shuts down, then PostgreSQL stops cleanly. Kill only if that hangs."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass  # the server is already gone
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            log.warning("the demo server did not stop within 60 s; killing it")
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
