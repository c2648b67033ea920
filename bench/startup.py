"""How long `hcepay` takes to start, against a bare Python and a bare typer, same run.

A terminal runs `hcepay pay` once per payment, so what the command line loads before it
works is paid each time. Each command below is a fresh process of this venv's Python
running the `hcepay` script; the rounds are interleaved (every command once per round), so
that a busy machine slows them all alike. Printed: each command's median wall time and its
ratio to the two baselines, `python -c pass` (any Python process) and `python -c "import
typer"` (any typer command line).
The children write and read __pycache__ as a user's `hcepay` does: PYTHONDONTWRITEBYTECODE,
where it is set, would time compiling the sources at every start instead.
Run: .venv/bin/python bench/startup.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from reader.cli_pay import make_demo_home  # noqa: E402

SELECT_PPSE = "00A404000E325041592E5359532E444446303100"


def hcepay_script() -> Path:
    """The venv's `hcepay` console script (what a terminal runs), next to this Python."""
    script = Path(sys.executable).parent / "hcepay"
    if not script.is_file():
        raise SystemExit(f"bench: no {script}: install the project (scripts/dev setup)")
    return script


def commands(home: Path) -> list[tuple[str, list[str]]]:
    """The baselines, then the commands timed: (label, argv)."""
    hcepay = [sys.executable, str(hcepay_script())]
    return [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ('python -c "import typer"', [sys.executable, "-c", "import typer"]),
        ("hcepay --help", [*hcepay, "--help"]),
        ("hcepay pay --help", [*hcepay, "pay", "--help"]),
        ("hcepay decode SELECT", [*hcepay, "decode", SELECT_PPSE]),
        (
            "hcepay pay --in-process",
            [*hcepay, "pay", "--in-process", "--amount", "0.01", "--home", str(home)],
        ),
    ]


def run_once(argv: list[str], env: dict[str, str]) -> float:
    """One process's wall time in seconds; a command that fails stops the bench."""
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"bench: {argv[1:]} exited {done.returncode}: {done.stderr.decode()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE",)}
    env.pop("HCEPAY_DEBUG", None)
    with tempfile.TemporaryDirectory(prefix="hcepay-bench-") as tmp:
        home = Path(tmp) / "home"
        make_demo_home(home)
        timed = commands(home)
        for _, argv in timed:  # warm-up: __pycache__ written, the log made, the disk cache
            run_once(argv, env)
        samples: dict[str, list[float]] = {label: [] for label, _ in timed}
        for _ in range(args.rounds):
            for label, argv in timed:
                samples[label].append(run_once(argv, env))

    medians = {label: statistics.median(times) for label, times in samples.items()}
    python, typer = medians["python -c pass"], medians['python -c "import typer"']
    print(f"startup, {args.rounds} interleaved rounds (median wall time of one process)")
    print(f"  {'':28} {'ms':>8}  {'/ python':>9}  {'/ typer':>8}")
    for label, median in medians.items():
        print(f"  {label:28} {median * 1e3:8.1f}  {median / python:8.2f}x  {median / typer:7.2f}x")


if __name__ == "__main__":
    main()
