"""The design's boundaries: a Qt-free core, and no imports between the client and the server contract."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package: str) -> dict[Path, set[str]]:
    found: dict[Path, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        found[path] = names
    return found


def test_core_does_not_import_qt_even_indirectly():
    code = (
        "import sys, crm_desktop.core.api, crm_desktop.core.store, crm_desktop.core.sync, crm_desktop.core.phone, "
        "crm_desktop.core.models; print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_core_sources_never_name_qt():
    for path, names in imported_modules("crm_desktop/core").items():
        assert not any(n.split(".")[0] in ("PySide6", "shiboken6") for n in names), path


def test_client_and_server_contract_do_not_import_each_other():
    for path, names in imported_modules("crm_desktop").items():
        assert not any(n.split(".")[0] == "server_contract" for n in names), path
    for path, names in imported_modules("server_contract").items():
        assert not any(n.split(".")[0] == "crm_desktop" for n in names), path


def test_ui_is_the_only_layer_that_imports_qt():
    for path, names in imported_modules("crm_desktop").items():
        if "ui" not in path.relative_to(ROOT / "crm_desktop").parts:
            assert not any(n.startswith("PySide6") for n in names), path
