"""Card vectors a phone can carry: each starts with a SELECT by name.

Before an app is selected, a phone's host card emulation routes only a SELECT by name
(`00 A4 04`, CLA `00`) to an app; it answers any other command itself (`6F00` on
Android), so the app never sees it. A card vector that starts otherwise shows the app's
IDLE state, which only a card that sees every APDU (in-process, served through vpcd) can
show; those are listed here and in docs/conformance.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from reader import vectors as vx

ROOT = Path(__file__).resolve().parents[2]
CARD = sorted((ROOT / "vectors" / "card").rglob("*.json"))
CONFORMANCE = ROOT / "docs" / "conformance.md"

# The vectors of the app's IDLE state: their first command is not a SELECT by name.
IDLE_STATE: Final = {
    "card-get-data-before-select",
    "card-sw-get-response-nothing-pending",
    "card-sw-gpo-before-select",
    "card-sw-wrong-state-each-command",
}


def routed_to_the_app(command: bytes) -> bool:
    """A SELECT by name on the basic channel: what a phone routes before any selection."""
    return len(command) > 5 and command[:3] == b"\x00\xa4\x04"


def test_every_card_vector_but_the_idle_state_ones_starts_with_a_select_by_name() -> None:
    starts = {path.stem: vx.load(path).steps[0].command for path in CARD}
    others = {name for name, command in starts.items() if not routed_to_the_app(command)}
    assert others == IDLE_STATE


def test_conformance_md_names_the_idle_state_vectors() -> None:
    text = CONFORMANCE.read_text(encoding="utf-8")
    assert all(f"`{name}`" in text for name in sorted(IDLE_STATE))
