"""Which server a desk signs in to: setup, not something a CRE types at the start of a shift.

In order: the command line (`--server`, `--anon-key`: what IT's shortcut says), the settings file (what this desk used
last, saved after each sign-in), and an admin config file that IT places once per machine or image — JSON
`{"server_url": ..., "anon_key": ...}` at `--config FILE`, `$CRE_DESK_CONFIG`, or `server.json` in the platform's
site or user config directory. The sign-in dialog shows the server it will use and where that came from."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import site_config_path, user_config_path

from crm_desktop.ui.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    url: str
    anon_key: str
    origin: str  # in the CRE's words: "from the command line", "from this desk's settings", "from IT's config file"

    @property
    def complete(self) -> bool:
        return bool(self.url and self.anon_key)


def admin_config_paths(explicit: str | None = None) -> list[Path]:
    paths = [Path(explicit)] if explicit else []
    env = os.environ.get("CRE_DESK_CONFIG")
    if env:
        paths.append(Path(env))
    paths.append(site_config_path("cre-desk") / "server.json")
    paths.append(user_config_path("cre-desk") / "server.json")
    return paths


def read_admin_config(path: Path) -> tuple[str, str] | None:
    """(url, anon key) from an admin config file; None when absent. A broken file is logged, never fatal: the CRE can
    still be given the server in the dialog."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("the admin config file %s cannot be read: %s", path, exc)
        return None
    if not isinstance(data, dict):
        log.warning("the admin config file %s is not a JSON object", path)
        return None
    return str(data.get("server_url") or data.get("url") or ""), str(data.get("anon_key") or "")


def resolve_server(
    settings: Settings, cli_url: str | None = None, cli_key: str | None = None, config_file: str | None = None
) -> ServerConfig:
    url, key, origin = "", "", ""
    if cli_url:
        url, origin = cli_url, "from the command line"
    if cli_key:
        key = cli_key
    saved_url, saved_key = str(settings.get("server/url")), str(settings.get("server/anon_key"))
    if not url and saved_url:
        own = settings.is_own("server/url")
        url, origin = saved_url, "from this desk's settings" if own else "from IT's settings for this PC"
    if not key and saved_key and (url == saved_url or not saved_url):
        key = saved_key
    if not url or not key:
        for path in admin_config_paths(config_file):
            found = read_admin_config(path)
            if found is None:
                continue
            admin_url, admin_key = found
            if not url and admin_url:
                url, origin = admin_url, f"from IT's config file ({path})"
            if not key and admin_key and url == admin_url:
                key = admin_key
            break
    return ServerConfig(url.rstrip("/"), key, origin)
