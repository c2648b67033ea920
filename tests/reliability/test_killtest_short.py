"""scripts/killtest.py in CI: a short run (30 payments to GENERATE AC) must hold every check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_short_kill_run_loses_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "killtest.py"),
            "--payments",
            "30",
            "--seed",
            "3",
            "--workdir",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "RESULT: ok" in done.stdout
    assert "missing from the log: []" in done.stdout
