"""The sans-IO rule (docs/architecture.md): codecs, crypto, state machines import no IO."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IO_MODULES = {"os", "socket", "sqlite3", "smartcard", "time", "subprocess", "shutil", "tempfile"}
PURE_PACKAGES = ("apdu", "authority")
PURE_MODULES = (
    "applet/payment.py",
    "applet/runtime.py",
    "applet/state.py",
    "reader/flow.py",
    "reader/checks.py",
    "reader/recovery.py",
)
IO_EDGES = {"authority/home.py", "authority/keyfiles.py", "authority/keystore.py"}


def _pure_files() -> list[Path]:
    files = [p for pkg in PURE_PACKAGES for p in sorted((ROOT / pkg).glob("*.py"))]
    files += [ROOT / m for m in PURE_MODULES if (ROOT / m).exists()]
    return [f for f in files if f.relative_to(ROOT).as_posix() not in IO_EDGES]


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_there_are_pure_modules_to_check() -> None:
    assert len(_pure_files()) >= 5


@pytest.mark.parametrize("path", _pure_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_pure_module_imports_no_io(path: Path) -> None:
    banned = _imported_roots(path) & IO_MODULES
    assert not banned, f"{path.relative_to(ROOT)} imports IO modules {sorted(banned)}"
