"""The quick start and the repository on Windows: run.py uses the Python that runs it and the venv's own
interpreter (Scripts\\python.exe on Windows), and .gitattributes keeps the bash scripts LF on a Windows checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import run  # noqa: E402  (the repository's top-level script)


def test_run_py_makes_the_venv_with_this_python_and_uses_the_venvs_interpreter_after(tmp_path: Path):
    venv = tmp_path / ".venv"
    steps = run.commands("tests", ["-x"], venv, platform="win32")
    assert steps[0] == [sys.executable, "-m", "venv", str(venv)]
    windows_python = str(venv / "Scripts/python.exe")
    assert all(step[0] == windows_python for step in steps[1:])
    assert steps[-1] == [windows_python, "-m", "pytest", "-q", "-x"]
    assert steps[2][-1] == ".[test]"
    demo = run.commands("demo", ["--as", "lead@demo.local"], venv, platform="linux")
    assert demo[-1] == [str(venv / "bin/python"), "-m", "crm_desktop", "--demo", "--as", "lead@demo.local"]
    assert demo[2][-1] == ".[server]"


def test_run_py_dry_run_prints_the_commands():
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--dry-run", "tests", "-k", "x"],
                            capture_output=True, text=True, encoding="utf-8", timeout=60)  # fmt: skip
    assert result.returncode == 0 and "-m pytest -q -k x" in result.stdout
    assert subprocess.run([sys.executable, str(ROOT / "run.py")], capture_output=True, timeout=60).returncode == 2


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs the git checkout")
def test_gitattributes_keeps_scripts_lf_on_every_checkout():
    out = subprocess.run(["git", "check-attr", "eol", "run-tests", "run-demo", ".ci/run", "run.py"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert out.count(": eol: lf") == 4, out
