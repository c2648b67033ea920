"""Short fuzz runs in CI: every target, a few seconds each, total under 60 s."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "fuzz" / "run.py"
CODEC_TARGETS = ["command", "response", "tlv", "dol", "messages"]
SECONDS = {
    "command": 2,
    "response": 2,
    "tlv": 3,
    "dol": 3,
    "messages": 4,
    "applet": 8,
    "recovery": 4,
    "terminal": 8,
}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUN), *args], capture_output=True, text=True, check=False, cwd=ROOT
    )


@pytest.mark.parametrize("target", [*CODEC_TARGETS, "applet", "terminal", "recovery"])
def test_target_finds_nothing(target: str) -> None:
    done = _run("--target", target, "--seconds", str(SECONDS[target]))
    line = done.stdout.strip()
    if " skipped " in f" {line} ":
        pytest.skip(line)
    assert done.returncode == 0, line + done.stderr[-2000:]
    runs = int(line.split("runs=")[1].split()[0])
    assert runs > 100, line


def test_random_engine_runs_the_codecs_in_process() -> None:
    done = _run("--engine", "random", "--target", "messages", "--runs", "3000")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "runs=3000" in done.stdout


def test_a_finding_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner must not swallow a crash: a target that raises on a byte is a finding."""
    (tmp_path / "planted_target.py").write_text(
        "def fuzz_planted(data: bytes) -> None:\n"
        "    if b'\\xa4' in data:\n"
        "        raise KeyError('planted')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from fuzz import run

    monkeypatch.setitem(run.TARGETS, "planted", ("planted_target", "fuzz_planted", "commands"))
    result = run.run_random("planted", 5000, None)
    assert result.finding
    assert "KeyError" in result.note
    rnd = __import__("random").Random(3)
    for _ in range(200):
        assert len(run.mutate(rnd, b"\x00" * 2000, [b"\x01"])) <= run.MAX_LEN


def test_without_atheris_the_random_engine_runs_instead(tmp_path: Path) -> None:
    """A plain `.[dev]` install has no atheris: its child died on the import and the runner
    reported a FINDING with runs=0. It now runs the random engine and says so."""
    hidden = tmp_path / "no-atheris"
    hidden.mkdir()
    (hidden / "atheris.py").write_text("raise ImportError(\"No module named 'atheris'\")\n")
    done = subprocess.run(
        [sys.executable, str(RUN), "--target", "command", "--runs", "500"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(hidden)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split()[:3] == ["command", "ok", "runs=500"], done.stdout
    assert "atheris cannot be imported; using --engine random" in done.stderr


def test_with_atheris_the_atheris_engine_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a failing import changes the engine (fuzz/run.py main)."""
    from fuzz import run

    assert run.atheris_importable() is (importlib.util.find_spec("atheris") is not None)
    monkeypatch.setattr(run, "atheris_importable", lambda: True)

    used: list[str] = []

    def fake(name: str, runs: int | None, seconds: int | None) -> object:
        used.append(name)
        return run.Result(name, 1, 0.0, False)

    monkeypatch.setattr(run, "run_atheris", fake)
    assert run.main(["--target", "dol", "--runs", "1"]) == 0
    assert used == ["dol"]
