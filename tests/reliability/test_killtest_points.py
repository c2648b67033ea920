"""scripts/killtest.py --points: a SIGKILL at each named place of a payment, card or terminal.

Each kill point must be reached (the process really died there) and the torn payment must end
as the point says (PROTOCOL.md §9): recorded once at the next contact, closed as not paid, or
never started; and the whole run must hold the kill test's checks (nothing lost, nothing twice).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "killtest.py"


def _killtest(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """scripts/killtest.py ARGS in a child process, its output captured."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def kill_points() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("killtest", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("killtest", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    points: dict[str, str] = module.KILL_POINTS
    return points


def test_every_kill_point_loses_nothing_and_ends_as_it_should(tmp_path: Path) -> None:
    points = kill_points()
    # the points cover both sides, and every way a torn payment can end
    assert {name.split("-")[0] for name in points} == {"card", "terminal"}
    assert set(points.values()) == {"none", "recorded", "recovered", "not paid", "either"}
    done = _killtest("--points", "--workdir", str(tmp_path / "work"), timeout=600)
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-3000:]
    for name, end in points.items():
        line = next(line for line in out.splitlines() if line.startswith(f"{name}: "))
        assert line.startswith(f"{name}: ok"), line
        if end == "recovered":
            assert "recovered=1" in line, line  # recorded at the next contact, by §9
        elif end != "either":
            assert "recovered=" not in line, line
    assert "RESULT: ok" in out
    assert "missing from the log: []" in out
    assert ", 0 open; spool 0" in out


def test_an_unknown_kill_point_is_a_usage_error(tmp_path: Path) -> None:
    done = _killtest("--points", "card-nowhere", "--workdir", str(tmp_path))
    assert done.returncode == 2
    assert "unknown kill point 'card-nowhere'" in done.stderr


def test_a_work_folder_of_an_earlier_run_is_a_usage_error(tmp_path: Path) -> None:
    """A second run in the same --workdir stopped with a traceback (FileExistsError)."""
    (tmp_path / "home").mkdir()
    done = _killtest("--points", "--workdir", str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"--workdir {tmp_path}: not empty" in done.stderr


def test_a_work_folder_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    """--workdir naming a file stopped with a traceback (NotADirectoryError)."""
    (tmp_path / "notes").write_text("x", encoding="utf-8")
    done = _killtest("--points", "--workdir", str(tmp_path / "notes"))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"--workdir {tmp_path / 'notes'}: not a folder" in done.stderr
