"""`crm-desktop --demo`: start the reference server (embedded PostgreSQL, demo data, a free loopback port) as a child
process, and stop it when the app closes. The app talks to it over HTTP like to any server: `crm_desktop` never
imports `server_contract` (the contract is HTTP + SQL)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_path, user_log_path

log = logging.getLogger(__name__)


class DemoUnavailable(RuntimeError):
    """The reference server could not be started; the message says why and what to do."""


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
               "--data-dir", str(data_dir / "pgdata")]  # fmt: skip
        with (log_dir / "demo-server.log").open("a", encoding="utf-8") as err:
            try:
                proc = subprocess.Popen(
                    cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1")
                )
            except OSError as exc:
                raise DemoUnavailable(f"Could not start the demo server: {exc}") from exc
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            proc.wait(timeout=5)
            raise DemoUnavailable(
                "The demo server did not start. Is the server part installed (pip install 'cre-desk[server]')? "
                f"Details are in {log_dir / 'demo-server.log'}."
            )
        info = json.loads(line)
        log.info("demo server at %s", info["url"])
        return cls(url=info["url"], anon_key=info["anon_key"], proc=proc)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: uvicorn shuts down, then the embedded PostgreSQL stops
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
