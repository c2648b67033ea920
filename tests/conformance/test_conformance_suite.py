"""The committed suite: it replays green in-process and is what the generator makes."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from reader import vectors as vx

ROOT = Path(__file__).resolve().parents[2]
CARD = sorted((ROOT / "vectors" / "card").rglob("*.json"))
TERMINAL = sorted((ROOT / "vectors" / "terminal").rglob("*.json"))


def test_the_suite_is_large_enough_and_described() -> None:
    assert len(CARD) + len(TERMINAL) >= 40
    assert len(CARD) >= 20 and len(TERMINAL) >= 20
    for path in CARD + TERMINAL:
        vector = vx.load(path)
        assert vector.name == path.stem
        assert len(vector.description) > 30, path.name
        assert vector.side is (vx.Side.CARD if path in CARD else vx.Side.TERMINAL)


@pytest.mark.parametrize("path", CARD, ids=[p.stem for p in CARD])
def test_card_vector_replays_in_process(path: Path, profiles: Path) -> None:
    result = vx.replay_vector(vx.load(path), profiles)
    assert result.passed, result.difference and result.difference.describe()
    assert result.done == result.steps


@pytest.mark.parametrize("path", TERMINAL, ids=[p.stem for p in TERMINAL])
def test_terminal_vector_replays_in_process(path: Path, profiles: Path) -> None:
    vector = vx.load(path)
    result = vx.replay_vector(vector, profiles)
    assert result.passed, result.difference and result.difference.describe()
    assert vector.expect is not None and result.verdict is vector.expect.verdict


def test_committed_files_are_what_the_script_makes(generator: ModuleType) -> None:
    files = generator.build_all()
    committed = {p.relative_to(ROOT) for p in CARD + TERMINAL}
    assert set(files) == committed
    for relative, text in files.items():
        assert (ROOT / relative).read_text(encoding="utf-8") == text, f"{relative} is stale"
