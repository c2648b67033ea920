"""Applet fuzz target: random and mutated command sequences sent to the card.

Invariants, for every command (PROTOCOL.md §6):
* the card answers (never raises) with at least a status word;
* the status word is one of §6's (`9000`, `61xx`, `6Cxx`, `6700`, `6A80`, `6A82`, `6A83`,
  `6A86`, `6985`, `6A88`, `6D00`, `6E00`); `6F00` means a bug in the applet;
* the durable state (the card's StateStore) changes only on a `9000` or `61xx` answer (the
  first part of a long success answer); "an error never changes the state".

Input format: byte 0 picks a genuine prefix (nothing, SELECT AID, + GPO, + READ RECORDs, +
GENERATE AC); then up to 16 commands, each a length byte and that many bytes; a length byte
F0 + n means "the genuine command number n" (fuzz/seeds.py), so mutations splice real
commands into random ones. The seeds also hold every card-side vector's command sequence
(vectors/card/), so the fuzzer mutates the vectors' commands.
"""

from __future__ import annotations

from pathlib import Path

from applet import open_card
from applet.store import MemoryStateStore
from fuzz.applet_rules import Harness, check_sequence, split_input
from fuzz.applet_rules import seeds as seeds

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "vectors" / "profiles" / "test-card-1"
RESET_EVERY = 2000  # a fresh card state every N inputs, so the ATC never runs out
if not (PROFILE / "card.json").is_file():
    raise ImportError(f"no test profile at {PROFILE}")


class _Cards:
    """The test profile's card with its state in memory, renewed every RESET_EVERY inputs."""

    def __init__(self) -> None:
        self.count = 0
        self.harness = self._open()

    @staticmethod
    def _open() -> Harness:
        store = MemoryStateStore()
        card = open_card(PROFILE, store)
        return Harness(card.process, card.power_on, store.load)

    def next(self) -> Harness:
        self.count += 1
        if self.count % RESET_EVERY == 0:
            self.harness = self._open()
        return self.harness


_cards: _Cards | None = None


def fuzz_applet(data: bytes) -> None:
    """The atheris entry point."""
    global _cards
    if _cards is None:
        _cards = _Cards()
    check_sequence(_cards.next(), split_input(data[:2048]))
