"""Every user setting, declared once with its type, default and description; stored with QSettings.

User preferences (this file's SETTINGS) are kept apart from window state (geometry, splitter, last tab), which lives
under the `window/` group and is never shown in the settings dialog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QByteArray, QSettings


@dataclass(frozen=True)
class Setting:
    key: str
    type: type
    default: Any
    label: str
    description: str
    choices: tuple[tuple[str, str], ...] = ()  # (stored value, what the dialog shows); empty = free value


#: Regions whose numbering rules the phone field can apply (a free-text "India" used to break every keystroke).
REGIONS: tuple[tuple[str, str], ...] = (
    ("IN", "India"), ("AE", "United Arab Emirates"), ("SA", "Saudi Arabia"), ("QA", "Qatar"), ("OM", "Oman"),
    ("KW", "Kuwait"), ("BH", "Bahrain"), ("SG", "Singapore"), ("MY", "Malaysia"), ("LK", "Sri Lanka"),
    ("NP", "Nepal"), ("BD", "Bangladesh"), ("GB", "United Kingdom"), ("US", "United States"),
)  # fmt: skip


SETTINGS: tuple[Setting, ...] = (
    Setting("server/url", str, "", "Server URL", "Your Supabase project URL (https://<project>.supabase.co)."),
    Setting("server/anon_key", str, "", "Anon key", "The project's public anon key (Supabase: Settings → API)."),
    Setting("account/email", str, "", "E-mail", "The e-mail you sign in with; remembered for the next start."),
    Setting("sync/interval_s", int, 15, "Sync interval (s)", "How often new leads from others are fetched."),
    Setting(
        "phone/region", str, "IN", "Phone region", "Country whose numbering rules apply to typed numbers.", REGIONS
    ),
    Setting("dashboard/refresh_s", int, 60, "Dashboard refresh (s)", "How often the dashboard refreshes itself."),
    Setting("network/proxy", str, "", "Proxy", "An HTTP proxy for the server (http://host:port); empty: the system's."),
    Setting("server/allow_http", bool, False, "Allow http://", "Allow an unencrypted server address (IT only)."),
)
# Machine-wide defaults IT sets once per PC (core/paths.py: cre-desk.ini); a user's own value wins here. The server
# is the exception: which one a desk uses is decided by ui/server_config.py, where IT's file wins over this desk's.
_MACHINE_KEYS = {"server/url": "server_url", "server/anon_key": "anon_key", "network/proxy": "proxy",
                 "server/allow_http": "allow_http"}  # fmt: skip
_BY_KEY = {s.key: s for s in SETTINGS}


class Settings:
    """Typed access to the declared settings. `organization`/`application` select the QSettings store (tests pass a
    temporary one)."""

    def __init__(self, qsettings: QSettings | None = None, machine: dict[str, str] | None = None) -> None:
        self._q = qsettings or QSettings("CRE Desk", "CRE Desk")
        self._machine = machine or {}

    def get(self, key: str) -> Any:
        spec = _BY_KEY[key]
        default = self._machine.get(_MACHINE_KEYS.get(key, ""), spec.default)
        value = self._q.value(key, default)
        if spec.type is bool:  # QSettings' INI files give back "true"/"false" strings
            return str(value).strip().lower() in ("1", "true", "yes", "on")
        try:
            typed = spec.type(value)
        except (TypeError, ValueError):
            return spec.default
        if spec.choices and typed not in {v for v, _ in spec.choices}:
            return spec.default  # a hand-edited file with a value the desk cannot use
        return typed

    def set(self, key: str, value: Any) -> None:
        spec = _BY_KEY[key]
        if spec.type is bool:
            value = value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")
        typed = spec.type(value)
        if spec.choices and typed not in {v for v, _ in spec.choices}:
            raise ValueError(f"{spec.label}: {typed!r} is not one of the choices")
        self._q.setValue(key, typed)

    def is_own(self, key: str) -> bool:
        """True when this user's settings file holds the value (not a machine-wide default or the built-in one)."""
        return bool(self._q.contains(key))

    @property
    def machine(self) -> dict[str, str]:
        """What IT's machine-wide file (cre-desk.ini, read at start) says; empty when there is none."""
        return dict(self._machine)

    def note(self, name: str) -> str:
        """A fact the desk noted for itself (not a preference: never in the settings dialog), "" when none."""
        return str(self._q.value(f"notes/{name}", "") or "")

    def set_note(self, name: str, value: str) -> None:
        self._q.setValue(f"notes/{name}", value)

    def window_state(self, name: str) -> QByteArray | None:
        value = self._q.value(f"window/{name}")
        return value if isinstance(value, QByteArray) else None

    def set_window_state(self, name: str, value: QByteArray) -> None:
        self._q.setValue(f"window/{name}", value)

    def window_value(self, name: str, default: Any = None) -> Any:
        return self._q.value(f"window/{name}", default)

    def set_window_value(self, name: str, value: Any) -> None:
        self._q.setValue(f"window/{name}", value)

    def sync(self) -> None:
        self._q.sync()

    @property
    def path(self) -> str:
        return self._q.fileName()
