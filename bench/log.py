"""`hcepay log` (the table) against `hcepay log --json` on the same log, same run.

Builds a log of N rows (one in-process payment, then its row recorded again with other ATCs
through TransactionLog.record; after 65,535 ATCs the next account), then runs each command
as its own process, its stdout /dev/null (a file: rich's width for files, no terminal), and
prints its time, its peak RSS and the ratio table / JSON (goal: about 1x, the table bounded
in memory as the JSON is). With --verify, the same for `--verify` (exit 3: a copy fails its
re-check, on the paid account after both RSA recoveries, the work of a row that verifies; on
the next account after the license's). With --columns N, both run with COLUMNS=N: the
table folded to a console of N columns, as a terminal that narrow gets it.

    .venv/bin/python bench/log.py [--rows 100000] [--verify] [--columns 80]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from reader.cli_pay import make_demo_home  # noqa: E402
from reader.log import TransactionLog, log_path  # noqa: E402

ATCS = 0x10000  # an ATC is two bytes: (account, ATC) is the log's unique key


def build_log(home: Path, rows: int) -> None:
    """A home whose log holds `rows` rows: one payment, its row copied with other ATCs."""
    make_demo_home(home)
    hcepay = [sys.executable, "-m", "reader.entry"]
    paid = subprocess.run(
        [*hcepay, "pay", "--home", str(home), "--in-process", "--amount", "12.34"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if paid.returncode != 0:
        raise SystemExit(f"bench: the payment failed: {paid.stderr.strip()}")
    with TransactionLog(log_path(home)) as log:
        (first,) = log.rows()
        # a bench log need not survive a crash: one fsync per row would take minutes
        log._db.execute("PRAGMA synchronous=OFF")
        for n in range(2, rows + 1):
            account, atc = divmod(n, ATCS)
            number = str(int(first.outcome.account) + account)
            log.record(replace(first.outcome, atc=atc, account=number))


def run(home: Path, columns: int | None, *args: str) -> tuple[float, int, int]:
    """`hcepay log ARGS` into /dev/null: seconds, peak RSS in KB, exit code."""
    command = [sys.executable, "-m", "reader.entry", "log", "--home", str(home), *args]
    env = {name: value for name, value in os.environ.items() if name != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    with open(os.devnull, "w") as devnull:
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, stdout=devnull, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return seconds, usage.ru_maxrss, child.returncode


def compare(home: Path, columns: int | None, extra: list[str], code: int) -> None:
    """The table and the JSON of the same log, one after the other, and their ratio."""
    results = []
    for args in ([*extra, "--json"], extra):
        seconds, peak_kb, exit_code = run(home, columns, *args)
        if exit_code != code:
            raise SystemExit(f"bench: hcepay log {' '.join(args)} exited {exit_code}, not {code}")
        name = " ".join(["log", *args])
        print(f"{name:<24} {seconds:>8.2f} s {peak_kb / 1024:>8.0f} MB")
        results.append((seconds, peak_kb))
    (json_s, json_kb), (table_s, table_kb) = results
    print(f"{'ratio table / json':<24} {table_s / json_s:>8.2f}x {table_kb / json_kb:>8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--verify", action="store_true", help="compare --verify too")
    parser.add_argument("--columns", type=int, help="COLUMNS for both (default: a file's)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hcepay-bench-log-"))
    try:
        home = work / "home"
        start = time.perf_counter()
        build_log(home, args.rows)
        size = log_path(home).stat().st_size
        print(
            f"{args.rows:,} rows ({size / 2**20:.0f} MB log, built in "
            f"{time.perf_counter() - start:.1f} s), stdout /dev/null"
            + (f", COLUMNS={args.columns}" if args.columns is not None else "")
        )
        print(f"{'':<24} {'time':>10} {'peak RSS':>11}")
        compare(home, args.columns, [], 0)
        if args.verify:
            compare(home, args.columns, ["--verify"], 3 if args.rows > 1 else 0)
        print("goal: the table takes about the time and memory of the JSON (ratio about 1x)")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
