"""Shared fixtures of the conformance tests: the repository's vectors and the generator."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from reader import vectors as vx

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors"
PROFILES = VECTORS / "profiles"


def vector_files(side: str) -> list[Path]:
    """The committed vector files of one side, sorted."""
    return sorted((VECTORS / side).rglob("*.json"))


@pytest.fixture(scope="session")
def profiles() -> Path:
    """vectors/profiles/ (published test keys)."""
    return PROFILES


@pytest.fixture(scope="session")
def generator() -> ModuleType:
    """scripts/gen_vectors.py, loaded as a module."""
    spec = importlib.util.spec_from_file_location(
        "hcepay_gen_vectors", ROOT / "scripts" / "gen_vectors.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def card_vectors() -> list[vx.Vector]:
    """Every committed card-side vector."""
    return [vx.load(path) for path in vector_files("card")]
