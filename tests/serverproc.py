"""Test helpers: run the real reference server as a subprocess on a loopback port, and talk to its database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

# Tables create_lead writes; emptied between tests (users and catalogues stay).
LEAD_TABLES = (
    "call_attempts, ps_followups, email_outbox, lead_sources, lead_requests, leads, "
    "stats_events, stats_cre, stats_source, stats_status, stats_hour, stats_follow_up, lead_owner_changes, "
    "stats_follow_up_events, stats_follow_up_cre"
)


@dataclass
class ServerProcess:
    """`crm-server serve` in a child process. `stop()` and `start()` again keep the same port (outage tests).

    Stopped the way every system allows: closing its stdin (it runs with --stop-when-stdin-closes) is the graceful
    stop; `Popen.kill()` the hard one. No POSIX signal, so the same helper runs on Windows."""

    data_dir: Path
    log_path: Path
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None  # the child's environment (default: this process's)
    port: int = 0
    url: str = ""
    anon_key: str = ""
    database_url: str = ""
    proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        cmd = [
            sys.executable, "-m", "server_contract", "serve", "--data-dir", str(self.data_dir),
            "--port", str(self.port), "--stop-when-stdin-closes", *self.extra_args,
        ]  # fmt: skip
        env = dict(self.env if self.env is not None else os.environ, PYTHONUNBUFFERED="1", PYTHONUTF8="1")
        with self.log_path.open("a", encoding="utf-8") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=30)
            self._close_pipes()
            text = self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RuntimeError(f"server did not start; see {self.log_path}:\n{text}")
        info = json.loads(line)
        self.url, self.anon_key = info["url"], info["anon_key"]
        self.database_url = info.get("database_url", "")
        self.port = int(self.url.rsplit(":", 1)[1])
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server never became healthy")

    def stop(self, kill: bool = False) -> None:
        """Graceful: close its stdin, the server shuts down (and releases PostgreSQL). `kill`: at once, no cleanup."""
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        elif self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._close_pipes()
        self.proc = None

    def _close_pipes(self) -> None:
        assert self.proc is not None
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass  # stdin of a process already gone: nothing left to flush

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Api:
    """A bare HTTP caller for server tests (the app's own client lives in crm_desktop.core.api)."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, headers={"apikey": server.anon_key}, timeout=30)

    def login(self, email: str, password: str = "demo1234") -> dict[str, Any]:
        r = self.http.post(
            "/auth/v1/token", params={"grant_type": "password"}, json={"email": email, "password": password}
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def token(self, email: str) -> str:
        return str(self.login(email)["access_token"])

    def rpc(self, name: str, token: str | None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.post(f"/rest/v1/rpc/{name}", json=params, headers=headers)

    def close(self) -> None:
        self.http.close()


def new_lead(phone: str, **overrides: Any) -> dict[str, Any]:
    lead: dict[str, Any] = {
        "client_ref": str(uuid.uuid4()),
        "customer_name": "Ravi Kumar",
        "phone": phone,
        "source": "GOOGLE",
        "sub_source": "Google Know",
        "lead_status": "Interested",
        "lead_category": "Hot",
        "model_interested": "450 X (2.9 kWh)",
        "branch": "SOMAJIGUDA",
        "ps_email": None,
        "final_status": "Pending",
        "follow_up_date": (date.today() + timedelta(days=2)).isoformat(),
        "remark": "asked for a test ride",
        "test_drive_done": False,
    }
    lead.update(overrides)
    return lead


def import_campaign(api: Api, email: str, names: list[str], first: int) -> None:
    """A team lead imports campaign leads (META / Meta Know) for `email`, phones phone_for(first ...): fresh leads."""
    rows = [{"customer_name": n, "phone": phone_for(first + i)} for i, n in enumerate(names)]
    batch = {"client_ref": str(uuid.uuid4()), "source": "META", "sub_source": "Meta Know", "assign_to": [email],
             "rows": rows}  # fmt: skip
    r = api.rpc("import_leads", api.token("lead@demo.local"), batch=batch)
    assert r.status_code == 200 and r.json()["created"] == len(names), r.text


def phone_for(n: int) -> str:
    """A distinct valid Indian mobile per n (below the seed's numbering range)."""
    return f"+9199{n:08d}"


def stop_cluster(cluster: Any) -> None:
    """Release the test process's hold on the embedded cluster: servers killed during the session hold it no longer
    (the cluster prunes dead holders), so this stops PostgreSQL."""
    cluster.release()
