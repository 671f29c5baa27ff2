"""Build the desk's one-folder bundle from packaging/cre-desk.spec and smoke-test it.

    python packaging/build_desk.py            # build, then: --self-test, a missing resource must fail it, and a
                                              # screenshot of the bundle signed in to a fresh reference server
    python packaging/build_desk.py --no-build # the checks only, on build/dist/CREDesk

Needs `pip install -e .[build,server]` (PyInstaller; the reference server for the screenshot). Exit 0 when every
check passed; prints each step's time. CI runs it after the test suite (.ci/run); Windows CI too (.github/)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "build" / "dist"
WORK = ROOT / "build" / "work"
EXE = DIST / "CREDesk" / ("CREDesk.exe" if sys.platform == "win32" else "CREDesk")


def step(name: str, started: float) -> None:
    print(f"[build_desk] {name}: {time.monotonic() - started:.1f} s", flush=True)


def build() -> None:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "PyInstaller", str(ROOT / "packaging" / "cre-desk.spec"), "--noconfirm",
         "--log-level", "WARN", "--distpath", str(DIST), "--workpath", str(WORK)],
        check=True, cwd=ROOT,
    )  # fmt: skip
    step("build", started)
    size = sum(f.stat().st_size for f in EXE.parent.rglob("*") if f.is_file())
    print(f"[build_desk] bundle: {EXE.parent} ({size / 2**20:.0f} MiB)", flush=True)


def desk_env(tmp: Path) -> dict[str, str]:
    return dict(os.environ, QT_QPA_PLATFORM="offscreen", CRE_DESK_DATA_DIR=str(tmp / "data"),
                CRE_DESK_MACHINE_CONFIG=str(tmp / "no-machine-config.ini"), HOME=str(tmp / "home"),
                XDG_CONFIG_HOME=str(tmp / "config"), APPDATA=str(tmp / "appdata"))  # fmt: skip


def self_test(tmp: Path) -> dict[str, object]:
    report_file = tmp / "data" / "logs" / "self-test.json"
    report_file.unlink(missing_ok=True)
    result = subprocess.run([str(EXE), "--self-test"], env=desk_env(tmp), capture_output=True, text=True, timeout=120)
    report: dict[str, object] = (
        json.loads(report_file.read_text(encoding="utf-8")) if report_file.is_file() else {"ok": False}
    )
    report["exit_code"] = result.returncode
    if not report_file.is_file():
        report["stderr"] = result.stderr[-3000:]
    return report


def check_self_test(tmp: Path) -> None:
    started = time.monotonic()
    report = self_test(tmp)
    if report["exit_code"] != 0 or not report.get("ok") or not report.get("frozen"):
        sys.exit(f"[build_desk] self-test of the bundle FAILED:\n{json.dumps(report, indent=2)}")
    step("self-test", started)
    # The check must be able to fail: without its style sheet the bundle must say so.
    started = time.monotonic()
    sheet = next(EXE.parent.rglob("crm_desktop/resources/style.qss"))
    hidden = sheet.with_name("style.qss.hidden")
    sheet.rename(hidden)
    try:
        broken = self_test(tmp)
    finally:
        hidden.rename(sheet)
    if broken["exit_code"] == 0 or broken.get("ok"):
        sys.exit("[build_desk] the self-test passed with style.qss removed from the bundle: it checks nothing")
    step("self-test without style.qss fails as it must", started)


def check_screenshot(tmp: Path) -> None:
    """The bundle signed in to a fresh reference server renders its window (the server runs from this Python)."""
    started = time.monotonic()
    server_log = (tmp / "server.log").open("w", encoding="utf-8")
    server = subprocess.Popen(
        [sys.executable, "-m", "server_contract", "serve", "--demo", "--port", "0", "--data-dir", str(tmp / "pgdata")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=server_log, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            sys.exit(f"[build_desk] the reference server did not start; see {tmp / 'server.log'}")
        info = json.loads(line)
        shot = tmp / "desk.png"
        logs = tmp / "data" / "logs" / "cre-desk.log"
        try:
            result = subprocess.run(
                [str(EXE), "--server", info["url"], "--anon-key", info["anon_key"], "--as", "cre1@demo.local",
                 "--password", "demo1234", "--screenshot", str(shot)],
                env=desk_env(tmp), capture_output=True, text=True, timeout=240,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            # Say where it stood (the desk's log and output): a hang here once went unexplained.
            tail = logs.read_text(encoding="utf-8", errors="replace")[-4000:] if logs.is_file() else "(no log)"
            server_tail = (tmp / "server.log").read_text(encoding="utf-8", errors="replace")[-2000:]
            sys.exit(f"[build_desk] screenshot HUNG for {exc.timeout} s; desk log:\n{tail}\nstderr: {exc.stderr!r}"
                     f"\nserver log:\n{server_tail}")  # fmt: skip
        if result.returncode != 0 or not shot.is_file() or shot.stat().st_size < 10_000:
            tail = logs.read_text(encoding="utf-8", errors="replace")[-4000:] if logs.is_file() else result.stderr
            sys.exit(f"[build_desk] screenshot FAILED (exit {result.returncode}):\n{tail}")
        with shot.open("rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                sys.exit("[build_desk] the screenshot is not a PNG")
        kept = ROOT / "build" / "bundle-smoke.png"
        shutil.copyfile(shot, kept)
        print(f"[build_desk] screenshot: {kept} ({shot.stat().st_size} bytes)", flush=True)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()
        server_log.close()
    step("screenshot against a reference server", started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-build", action="store_true", help="check an existing build/dist/CREDesk")
    parser.add_argument("--no-screenshot", action="store_true", help="skip the reference-server screenshot")
    args = parser.parse_args()
    if not args.no_build:
        build()
    if not EXE.is_file():
        sys.exit(f"[build_desk] no bundle at {EXE}")
    with tempfile.TemporaryDirectory(prefix="cre-desk-bundle-") as tmp_name:
        tmp = Path(tmp_name)
        check_self_test(tmp)
        if not args.no_screenshot:
            check_screenshot(tmp)
    print("[build_desk] bundle OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
