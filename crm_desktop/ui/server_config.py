"""Which server a desk signs in to: setup, not something a CRE types at the start of a shift.

One setup file: cre-desk.ini's `[desk]` section (`server_url`, `anon_key`), the machine-wide file IT deploys
(core/paths.py: `%PROGRAMDATA%\\CRE Desk\\cre-desk.ini`, `/etc/xdg/cre-desk/cre-desk.ini`, `CRE_DESK_MACHINE_CONFIG`)
or the one `--config FILE` names. In order:
1. the command line (`--server`, `--anon-key`: what a shortcut says);
2. that file (IT's word for every user of the PC: it wins over what a desk remembers, so moving the server is one
   file for IT, not a visit to each desk);
3. this desk's settings (the server it signed in to last: typed in "Server settings…" at the sign-in, or moved over
   from an old server.json);
4. nothing: the sign-in dialog opens its server fields and says to ask IT.

The old second file, a JSON `server.json` (`$CRE_DESK_CONFIG`, or in the platform's site or user config directory),
is read once: its server and key move into this desk's settings (unless the desk already has its own), the move is
noted there, and the file is never read again. The sign-in dialog shows the server it will use and where it came
from."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import site_config_path, user_config_path

from crm_desktop.core import paths
from crm_desktop.ui.settings import Settings

log = logging.getLogger(__name__)

#: Where this desk's settings note that the old server.json was read (its path), so it is read once.
MIGRATED_NOTE = "setup/old_server_json"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    url: str
    anon_key: str
    origin: str  # in the CRE's words: "from the command line", "from IT's config file (…)", "from this desk's settings"

    @property
    def complete(self) -> bool:
        return bool(self.url and self.anon_key)


def old_server_json_paths() -> list[Path]:
    """Where the old JSON server file was looked for, in its old order."""
    found = []
    env = os.environ.get("CRE_DESK_CONFIG")
    if env:
        found.append(Path(env))
    found.append(site_config_path("cre-desk") / "server.json")
    found.append(user_config_path("cre-desk") / "server.json")
    return found


def migrate_old_server_json(settings: Settings) -> Path | None:
    """Once per desk: the first old server.json found gives this desk's settings its server and key, unless the
    desk already has a server of its own. Returns the file read (None when nothing was read: already done, or no
    such file)."""
    if settings.note(MIGRATED_NOTE):
        return None
    for path in old_server_json_paths():
        found = paths.read_old_server_json(path)
        if found is None:
            continue
        url, key = found.get("server_url", ""), found.get("anon_key", "")
        if url and not settings.is_own("server/url"):
            settings.set("server/url", url.rstrip("/"))
            if key:
                settings.set("server/anon_key", key)
            log.info("moved the server from the old %s into this desk's settings; IT's one file is now "
                     "cre-desk.ini (README)", path)  # fmt: skip
        else:
            log.info("the old %s was not needed (this desk has its own server); it is not read again", path)
        settings.set_note(MIGRATED_NOTE, str(path))
        settings.sync()
        return path
    return None


def resolve_server(
    settings: Settings, cli_url: str | None = None, cli_key: str | None = None, config_file: str | None = None
) -> ServerConfig:
    """The server this desk uses (the module docstring's order). The key goes with its URL: a key from a tier
    whose URL differs from the one chosen is not used (the command line's key always is)."""
    migrate_old_server_json(settings)
    if config_file:
        file_path, file = Path(config_file), paths.read_config(Path(config_file))
    else:  # the machine-wide file, as read when the desk started (app.run: Settings(machine=...))
        file_path, file = paths.machine_config_path(), settings.machine

    def own(key: str) -> str:
        return str(settings.get(key)) if settings.is_own(key) else ""

    tiers = [
        ("from the command line", (cli_url or "").strip(), ""),
        (f"from IT's config file ({file_path})", file.get("server_url", ""), file.get("anon_key", "")),
        ("from this desk's settings", own("server/url"), own("server/anon_key")),
    ]
    url, origin = next(((u.rstrip("/"), o) for o, u, _k in tiers if u), ("", ""))
    key = (cli_key or "").strip() or next((k for _o, u, k in tiers if k and u.rstrip("/") == url), "")
    return ServerConfig(url, key, origin)
