"""Where the desk keeps its files: one data root, which IT can move.

Queued leads live in the data root. The per-user default (`%LOCALAPPDATA%\\cre-desk`, `~/.local/share/cre-desk`) is
right for a normal PC, but pooled/VDI and mandatory profiles wipe it at logoff, taking unsent leads with it. So IT can
point the root at a persistent place (an FSLogix container, a second disk), in this order of precedence:
1. the environment variable `CRE_DESK_DATA_DIR` (a logon script, a GPO environment preference);
2. `data_dir` in the machine-wide config file (`%PROGRAMDATA%\\CRE Desk\\cre-desk.ini`,
   `/etc/xdg/cre-desk/cre-desk.ini`, the file `CRE_DESK_MACHINE_CONFIG` names, or `--config FILE`), which also
   gives every user of the PC the server URL and anon key. It is the desk's one setup file (ui/server_config.py).

Logs live under the same root (`logs/`), so support looks in one place. Qt-free."""

from __future__ import annotations

import configparser
import json
import logging
import os
import sys
from pathlib import Path

from platformdirs import site_config_dir, user_data_dir

log = logging.getLogger(__name__)

APP = "cre-desk"
ENV_DATA_DIR = "CRE_DESK_DATA_DIR"
ENV_MACHINE_CONFIG = "CRE_DESK_MACHINE_CONFIG"
MACHINE_SECTION = "desk"
# Keys IT may set in the machine-wide file, with what they mean (README: "Installing on Windows PCs").
MACHINE_KEYS = {
    "data_dir": "where queued leads, the cache and the logs live (per user: a {user} in it is the login name)",
    "server_url": "the server every user of this PC signs in to",
    "anon_key": "that server's public anon key",
    "proxy": "an HTTP proxy for the server (default: HTTPS_PROXY / the system proxy)",
    "allow_http": "true to allow an http:// server that is not on this computer (a trusted network only)",
}


def machine_config_path() -> Path:
    override = os.environ.get(ENV_MACHINE_CONFIG)
    if override:
        return Path(override)
    if sys.platform == "win32":
        return Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / "CRE Desk" / "cre-desk.ini"
    return Path(site_config_dir(APP, appauthor=False)) / "cre-desk.ini"


def machine_config() -> dict[str, str]:
    """The `[desk]` section of the machine-wide file; empty when there is none. A broken file is logged, not fatal:
    the desk must start, and its settings dialog still works."""
    return read_config(machine_config_path())


def read_config(path: Path) -> dict[str, str]:
    """The `[desk]` section of a config file in cre-desk.ini's format (the machine-wide one, or `--config FILE`).

    An old JSON server file (`{"server_url": ..., "anon_key": ...}`, the format `--config` took before the two files
    became this one) is still read, with a warning, so a desk shortcut that names one keeps its server."""
    if not path.is_file():
        return {}
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.MissingSectionHeaderError:
        return _read_old_json(path)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        log.warning("config file %s is unreadable (%s); ignored", path, exc)
        return {}
    if not parser.has_section(MACHINE_SECTION):
        return {}
    return {k: v.strip() for k, v in parser.items(MACHINE_SECTION) if k in MACHINE_KEYS and v.strip()}


def read_old_server_json(path: Path) -> dict[str, str] | None:
    """server_url and anon_key from an old-format server.json; None when there is no such file (or it is broken,
    which is logged)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("the old server file %s cannot be read: %s", path, exc)
        return None
    if not isinstance(data, dict):
        log.warning("the old server file %s is not a JSON object", path)
        return None
    url, key = str(data.get("server_url") or data.get("url") or "").strip(), str(data.get("anon_key") or "").strip()
    return {k: v for k, v in (("server_url", url), ("anon_key", key)) if v}


def _read_old_json(path: Path) -> dict[str, str]:
    found = read_old_server_json(path)
    if found is None:
        return {}
    log.warning("%s is an old JSON server file: it still works, but write it as cre-desk.ini's [desk] section "
                "(README: Installing on call-centre PCs)", path)  # fmt: skip
    return found


def _expand(value: str) -> Path:
    login = os.environ.get("USERNAME") or os.environ.get("USER") or "user"
    return Path(os.path.expandvars(os.path.expanduser(value.replace("{user}", login))))


def data_root() -> Path:
    """The folder for the store files and logs (see the module docstring for the override order)."""
    env = os.environ.get(ENV_DATA_DIR, "").strip()
    if env:
        return _expand(env)
    configured = machine_config().get("data_dir")
    if configured:
        return _expand(configured)
    return Path(user_data_dir(APP, appauthor=False))


def log_dir() -> Path:
    return data_root() / "logs"
