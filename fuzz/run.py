"""Run hcepay's fuzz targets: `python fuzz/run.py [--target T] [--seconds N | --runs N]`.

Each target runs in its own child process under atheris (libFuzzer ends the process when it
is done), seeded with the protocol's own messages (fuzz/seeds.py). The parent prints one line
per target: runs tried, seconds, and whether a finding was written to fuzz/findings/.
`--engine random` runs a plain in-process mutation loop instead (no coverage feedback),
for machines where atheris does not build; it is also what runs, with a note on stderr,
when atheris is asked for but cannot be imported (a plain `.[dev]` install).
Exit status: 0 when no target found anything, 1 otherwise, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz.seeds import command_seeds, response_seeds  # noqa: E402

# target name -> (module, function, seeds)
TARGETS: dict[str, tuple[str, str, str]] = {
    "command": ("fuzz.codecs", "fuzz_command", "commands"),
    "response": ("fuzz.codecs", "fuzz_response", "responses"),
    "tlv": ("fuzz.codecs", "fuzz_tlv", "responses"),
    "dol": ("fuzz.codecs", "fuzz_dol", "responses"),
    "messages": ("fuzz.codecs", "fuzz_messages", "responses"),
    "applet": ("fuzz.applet_target", "fuzz_applet", "commands"),
    "terminal": ("fuzz.terminal_target", "fuzz_terminal", "responses"),
    "recovery": ("fuzz.recovery_target", "fuzz_recovery", "responses"),
}
MAX_LEN = 1024
_DONE = re.compile(r"Done (\d+) runs in (\d+) second")


class TargetUnavailable(Exception):
    """The target's package has not landed (its import fails)."""


@dataclass(frozen=True)
class Result:
    target: str
    runs: int
    seconds: float
    finding: bool
    note: str = ""


def load(name: str) -> Callable[[bytes], None]:
    module, function, _ = TARGETS[name]
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise TargetUnavailable(str(exc)) from None
    target: Callable[[bytes], None] = getattr(mod, function)
    return target


def seeds(name: str) -> list[bytes]:
    own = getattr(importlib.import_module(TARGETS[name][0]), "seeds", None)
    if callable(own):
        made: list[bytes] = own()
        return made
    kind = TARGETS[name][2]
    return command_seeds() if kind == "commands" else response_seeds()


def _child(name: str, runs: int | None, seconds: int | None, corpus: str) -> None:
    """Run one target under atheris; never returns (libFuzzer exits)."""
    import atheris

    # where it lives (types-atheris' __init__.pyi does not re-export it; atheris's __init__ does)
    from atheris.import_hook import instrument_imports

    with instrument_imports(include=["apdu", "applet", "authority", "reader"]):
        target = load(name)
    args = [sys.argv[0], corpus, f"-max_len={MAX_LEN}", "-print_final_stats=1"]
    args.append("-artifact_prefix=" + str(ROOT / "fuzz" / "findings") + f"/{name}-")
    if runs is not None:
        args.append(f"-runs={runs}")
    if seconds is not None:
        args.append(f"-max_total_time={seconds}")
    atheris.Setup(args, target)
    atheris.Fuzz()


def atheris_importable() -> bool:
    """Whether the child could import atheris (not installed, or a broken build: False)."""
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def run_atheris(name: str, runs: int | None, seconds: int | None) -> Result:
    """Fuzz one target in a child process and read libFuzzer's final count."""
    try:
        load(name)
    except TargetUnavailable as exc:
        return Result(name, 0, 0.0, False, f"unavailable: {exc}")
    (ROOT / "fuzz" / "findings").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"hcepay-fuzz-{name}-") as corpus:
        for i, seed in enumerate(seeds(name)):
            Path(corpus, f"seed-{i:03d}").write_bytes(seed)
        command = [sys.executable, __file__, "--child", name, "--corpus", corpus]
        if runs is not None:
            command += ["--runs", str(runs)]
        if seconds is not None:
            command += ["--seconds", str(seconds)]
        start = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - start
    match = _DONE.search(done.stderr)
    count = int(match.group(1)) if match else _last_count(done.stderr)
    finding = done.returncode != 0
    note = _finding_note(done.stderr) if finding else ""
    return Result(name, count, elapsed, finding, note)


def _last_count(stderr: str) -> int:
    counts = re.findall(r"^#(\d+)\s", stderr, re.MULTILINE)
    return int(counts[-1]) if counts else 0


def _finding_note(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if "Error" in ln or "Exception" in ln]
    artifact = re.findall(r"Test unit written to (\S+)", stderr)
    return "; ".join(lines[-2:] + artifact[-1:])[:400]


def run_random(name: str, runs: int | None, seconds: int | None, seed: int = 0) -> Result:
    """A coverage-blind mutation loop in this process (byte flips, inserts, cuts, splices)."""
    try:
        target = load(name)
    except TargetUnavailable as exc:
        return Result(name, 0, 0.0, False, f"unavailable: {exc}")
    rnd = random.Random(seed)
    pool = seeds(name)
    limit = runs if runs is not None else 10**12
    deadline = time.monotonic() + (seconds if seconds is not None else 10**9)
    start = time.monotonic()
    count = 0
    while count < limit and time.monotonic() < deadline:
        data = mutate(rnd, rnd.choice(pool), pool)
        try:
            target(data)
        except Exception as exc:  # a finding: report the input, keep the message short
            note = f"{type(exc).__name__}: {exc} on {data.hex()[:200]}"
            return Result(name, count + 1, time.monotonic() - start, True, note)
        count += 1
    return Result(name, count, time.monotonic() - start, False)


def mutate(rnd: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    """One to four random edits of a seed (bounded by MAX_LEN)."""
    buf = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(6)
        pos = rnd.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] = rnd.randrange(256)
        elif op == 1:
            buf[pos:pos] = bytes([rnd.randrange(256)])
        elif op == 2 and buf:
            del buf[pos : pos + rnd.randint(1, 8)]
        elif op == 3:
            other = rnd.choice(pool)
            cut = rnd.randrange(len(other) + 1)
            buf = buf[:pos] + bytearray(other[cut:])
        elif op == 4:
            buf = bytearray(rnd.randbytes(rnd.randrange(64)))
        elif buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rnd.randrange(8)
    return bytes(buf[:MAX_LEN])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=[*TARGETS, "all"], default="all")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=int)
    budget.add_argument("--runs", type=int)
    parser.add_argument("--engine", choices=["atheris", "random"], default="atheris")
    parser.add_argument("--child", choices=list(TARGETS), help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.runs, args.seconds, args.corpus)
        return 0
    if args.seconds is None and args.runs is None:
        args.seconds = 10
    names = list(TARGETS) if args.target == "all" else [args.target]
    if args.engine == "atheris" and not atheris_importable():
        # its child would die on `import atheris` and be reported as a finding (runs=0)
        print("fuzz: atheris cannot be imported; using --engine random", file=sys.stderr)
        args.engine = "random"
    engine = run_atheris if args.engine == "atheris" else run_random
    found = False
    for name in names:
        result = engine(name, args.runs, args.seconds)
        status = "FINDING" if result.finding else "ok"
        if result.note.startswith("unavailable"):
            status = "skipped"
        print(
            f"{result.target:10s} {status:8s} runs={result.runs:<10d} "
            f"seconds={result.seconds:.1f} {result.note}",
            flush=True,
        )
        found = found or result.finding
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
