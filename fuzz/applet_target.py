"""Applet fuzz target (issue 8): random and mutated command sequences sent to the card.

Invariants, for every command (PROTOCOL.md §6):
* the card answers (never raises) with at least a status word;
* the status word is one of §6's (`9000`, `61xx`, `6Cxx`, `6700`, `6A80`, `6A82`, `6A83`,
  `6A86`, `6985`, `6A88`, `6D00`, `6E00`); `6F00` means a bug in the applet;
* the durable state (state.json) changes only on a `9000` or `61xx` answer (the first part of
  a long success answer); "an error never changes the state".

Input format: byte 0 picks a genuine prefix (nothing, SELECT AID, + GPO, + READ RECORDs, +
GENERATE AC); then up to 16 commands, each a length byte and that many bytes; a length byte
below 16 means "the genuine command number n" (fuzz/seeds.py), so mutations splice real
commands into random ones.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from fuzz.applet_rules import Harness, check_sequence, split_input
from fuzz.applet_rules import seeds as seeds

try:  # the contract names open_card in applet/ (docs/architecture.md)
    from applet import open_card  # type: ignore[attr-defined]
except ImportError:
    from applet.runtime import open_card  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "vectors" / "profiles" / "test-card-1"
RESET_EVERY = 2000  # a fresh card state every N inputs, so the ATC never runs out
if not (PROFILE / "card.json").is_file():
    raise ImportError(f"no test profile at {PROFILE}")


class _Scratch:
    """A file-backed card (applet.open_card) on a copy of the profile in a RAM folder."""

    def __init__(self) -> None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.folder = Path(tempfile.mkdtemp(prefix="hcepay-fuzz-card-", dir=base))
        atexit.register(shutil.rmtree, self.folder, True)
        self.count = 0
        self.harness = self._open()

    def _open(self) -> Harness:
        card_folder = self.folder / "card"
        shutil.rmtree(card_folder, ignore_errors=True)
        shutil.copytree(PROFILE, card_folder)
        for pem in card_folder.glob("*.pem"):
            pem.chmod(0o600)
        card = open_card(card_folder)
        state = card_folder / "state.json"

        def read_state() -> bytes:
            try:
                return state.read_bytes()
            except FileNotFoundError:
                return b""

        return Harness(card.process, card.power_on, read_state)

    def next(self) -> Harness:
        self.count += 1
        if self.count % RESET_EVERY == 0:
            self.harness = self._open()
        return self.harness


_scratch: _Scratch | None = None


def fuzz_applet(data: bytes) -> None:
    """The atheris entry point."""
    global _scratch
    if _scratch is None:
        _scratch = _Scratch()
    check_sequence(_scratch.next(), split_input(data[:2048]))
