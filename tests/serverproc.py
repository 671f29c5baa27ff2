"""Test helpers: run the real reference server as a subprocess on a loopback port, and talk to its database."""

from __future__ import annotations

import json
import os
import signal
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
    """`crm-server serve` in a child process. `stop()` and `start()` again keep the same port (outage tests)."""

    data_dir: Path
    log_path: Path
    extra_args: list[str] = field(default_factory=list)
    port: int = 0
    url: str = ""
    anon_key: str = ""
    database_url: str = ""
    proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        cmd = [
            sys.executable, "-m", "server_contract", "serve", "--data-dir", str(self.data_dir),
            "--port", str(self.port), *self.extra_args,
        ]  # fmt: skip
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with self.log_path.open("a", encoding="utf-8") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        if not line:
            tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RuntimeError(f"server did not start; see {self.log_path}:\n{tail}")
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
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

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


def phone_for(n: int) -> str:
    """A distinct valid Indian mobile per n (below the seed's numbering range)."""
    return f"+9199{n:08d}"


def stop_cluster(cluster: Any) -> None:
    """Stop an embedded cluster even if a killed child left its pid in pgserver's handle list."""
    from pgserver._commands import pg_ctl

    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=cluster.pgdata, user=cluster.system_user)
    except subprocess.CalledProcessError:
        pass  # already stopped
    cluster.cleanup_mode = None  # nothing left for pgserver's own atexit hook to stop
