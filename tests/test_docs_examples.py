"""The docs' examples run: every `hcepay` line of README.md's and docs/conformance.md's shell
blocks that needs no PC/SC reader runs in order, in a home of its own, and exits as its
comment says ("exit 1 declined"), else 0. The PC/SC lines are the integration tests' (they
run the same commands through pcscd + vpcd)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reader.cli import app

ROOT = Path(__file__).resolve().parent.parent
BLOCK_RE = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXIT_RE = re.compile(r"#.*\bexit (\d+)")
NEEDS_PCSC = ("--reader", "card serve", "hcepay readers", "vectors serve")
DOCS = ("README.md", "docs/conformance.md")


def _examples(doc: str) -> list[tuple[list[str], int]]:
    """(argv after `hcepay`, expected exit code) of each runnable line, in the doc's order."""
    found = []
    for block in BLOCK_RE.findall((ROOT / doc).read_text(encoding="utf-8")):
        for line in block.splitlines():
            command = re.sub(r"^(\.venv/bin/)?hcepay\s+", "", line.strip(), count=1)
            if command == line.strip() or any(n in line for n in NEEDS_PCSC):
                continue  # not hcepay, or it needs a PC/SC reader
            expected = EXIT_RE.search(line)
            argv = shlex.split(command, comments=True)
            found.append((argv, int(expected.group(1)) if expected else 0))
    return found


@pytest.mark.parametrize("doc", DOCS)
def test_every_example_of_the_doc_runs(
    doc: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = _examples(doc)
    assert len(examples) >= 4, examples  # the blocks were found
    work = tmp_path / "work"  # the examples' folder: vectors/ as in a clone, files they write
    work.mkdir()
    (work / "vectors").symlink_to(ROOT / "vectors")
    monkeypatch.chdir(work)
    env = {"HCEPAY_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    runner = CliRunner()
    for argv, expected in examples:
        result = runner.invoke(app, argv, env=env)
        assert result.exit_code == expected, (argv, result.output)


def test_the_readme_examples_pay_decline_and_verify() -> None:
    """The README's block is the one a new user runs: it pays, is declined, and verifies."""
    commands = [" ".join(argv[:2]) for argv, _ in _examples("README.md")]
    assert commands[:5] == [
        "authority init",
        "card issue",
        "pay --amount",
        "pay --amount",
        "log --verify",
    ], commands
    assert [code for _, code in _examples("README.md")][2:4] == [0, 1]
