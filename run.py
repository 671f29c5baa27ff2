"""The quick start on every system, Windows included (no bash there):

    python run.py demo [crm-desktop args]   install the app and the reference server into .venv, open the demo desk
    python run.py tests [pytest args]       install everything the suite needs into .venv and run it

It uses the Python that runs it (`sys.executable`: on Windows `py -3.12 run.py demo`) to make .venv, and .venv's own
interpreter after that (`.venv\\Scripts\\python.exe` on Windows, `.venv/bin/python` elsewhere). The demo and the tests
need Python 3.11 or 3.12: the embedded PostgreSQL (pgserver) has no wheels for 3.13+ yet; the desk alone runs on
3.11–3.14. `--dry-run` prints the commands instead of running them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
EXTRAS = {"demo": "server", "tests": "test"}


def venv_python(venv: Path, platform: str = sys.platform) -> Path:
    return venv / ("Scripts/python.exe" if platform == "win32" else "bin/python")


def commands(what: str, args: list[str], venv: Path, platform: str = sys.platform) -> list[list[str]]:
    """What `run.py what args` runs, in order."""
    py = str(venv_python(venv, platform))
    steps: list[list[str]] = []
    if not venv_python(venv, platform).exists():
        steps.append([sys.executable, "-m", "venv", str(venv)])
    steps.append([py, "-m", "pip", "install", "-q", "--upgrade", "pip"])
    steps.append([py, "-m", "pip", "install", "-q", "-e", f".[{EXTRAS[what]}]"])
    if what == "demo":
        steps.append([py, "-m", "crm_desktop", "--demo", *args])
    else:
        steps.append([py, "-m", "pytest", "-q", *args])
    return steps


def main(argv: list[str]) -> int:
    dry = "--dry-run" in argv
    argv = [a for a in argv if a != "--dry-run"]
    if not argv or argv[0] not in EXTRAS:
        print(__doc__)
        return 2
    what, rest = argv[0], argv[1:]
    if sys.version_info >= (3, 13):
        print(f"Note: Python {sys.version_info.major}.{sys.version_info.minor} has no pgserver wheel (the embedded "
              "PostgreSQL of the demo and the tests); use 3.11 or 3.12, e.g. `py -3.12 run.py ...`.")  # fmt: skip
    env = dict(os.environ, PYTHONUTF8="1")  # UTF-8 for every child, whatever the Windows code page
    if what == "tests":
        env["QT_QPA_PLATFORM"] = "offscreen"
    for cmd in commands(what, rest, ROOT / ".venv"):
        if dry:
            print(subprocess.list2cmdline(cmd))
            continue
        code = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
