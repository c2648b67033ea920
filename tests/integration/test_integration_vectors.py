"""Every card-side vector replayed through the real stack: pyscard, pcscd, vpcd, our card.

One card is served to "Virtual PCD 00 00" for the whole module; before each vector its applet
is swapped for a fresh one built from the vector's profile in the vector's starting state
(`card`: ATC and used credit, no last answers), so no vector sees another's state
(PROTOCOL.md §8, docs/conformance.md "the served card"). The transport is bare: the vectors
hold their own `61xx` / `6Cxx` answers and GET RESPONSE steps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from applet.vpcd import VpcdClient, VpcdConfig
from reader.vectors import Pattern, Side, Vector, in_process_card, load, replay_card_vector

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "vectors" / "profiles"
CARD_VECTORS = sorted((ROOT / "vectors" / "card").glob("*.json"))
READER, PORT = "Virtual PCD 00 00", 35963  # slot 0 only: slot 1 may be another test's
PRESENCE_TIMEOUT = 15.0  # seconds; pcscd polls a vpcd slot every 400 ms


class SwappableCard:
    """A Card whose applet can be replaced between exchanges (the served card stays put)."""

    def __init__(self) -> None:
        self.inner: Any = None
        self.commands = 0

    def power_on(self) -> bytes:
        return bytes(self.inner.power_on())

    def process(self, apdu: bytes) -> bytes:
        self.commands += 1
        return bytes(self.inner.process(apdu))

    def deactivate(self, reason: str) -> None:
        self.inner.deactivate(reason)

    def load(self, vector: Vector) -> None:
        """A fresh card of the vector's profile in its starting state (PROTOCOL.md §8)."""
        assert vector.card is not None, f"{vector.name}: a card-side vector needs 'card'"
        self.inner = in_process_card(vector.card, PROFILES)


def _present(reader: str) -> bool:
    from reader.pcsc import list_readers

    return any(info.name == reader and info.atr is not None for info in list_readers())


def _wait(reader: str, present: bool) -> None:
    deadline = time.monotonic() + PRESENCE_TIMEOUT
    while time.monotonic() < deadline:
        if _present(reader) == present:
            return
        time.sleep(0.03)
    state = "absent" if present else "present"
    raise AssertionError(f"{reader}: card still {state} after {PRESENCE_TIMEOUT}s")


@pytest.fixture(scope="module")
def served(pcsc_stack: tuple[str, ...]) -> Iterator[SwappableCard]:
    """One swappable card served to slot 0 for the module; stopped (and seen gone) after."""
    assert READER in pcsc_stack
    try:
        _wait(READER, present=False)
    except AssertionError:
        pytest.fail(f"{READER} is in use by another program serving a card")
    card = SwappableCard()
    card.load(load(CARD_VECTORS[0]))  # something to answer pcscd's first ATR request
    client = VpcdClient(card, VpcdConfig(port=PORT, poll_interval=0.05))
    thread = threading.Thread(target=client.serve_forever, name="vpcd-vectors", daemon=True)
    thread.start()
    try:
        _wait(READER, present=True)
        yield card
    finally:
        client.stop()
        thread.join(timeout=5)
        assert not thread.is_alive(), "the vpcd loop did not stop"
        _wait(READER, present=False)


@pytest.fixture
def transport() -> Iterator[Any]:
    """A bare PC/SC transport to slot 0 (no chaining wrapper); its context closed after."""
    from reader.pcsc import PcscTransport

    pcsc = PcscTransport(READER)
    yield pcsc
    pcsc.close()


def test_there_are_card_vectors() -> None:
    """The suite below is not empty, and every file in vectors/card is a card-side vector."""
    assert len(CARD_VECTORS) >= 20
    assert all(load(path).side is Side.CARD for path in CARD_VECTORS)


@pytest.mark.parametrize("path", CARD_VECTORS, ids=[p.stem for p in CARD_VECTORS])
def test_card_vector_replays_through_pcscd(
    path: Path, served: SwappableCard, transport: Any
) -> None:
    """The served card answers every step as the vector says (masked bytes aside)."""
    vector = load(path)
    served.load(vector)
    before = served.commands
    result = replay_card_vector(vector, transport)
    assert result.difference is None, f"{vector.name}: {result.difference.describe()}"
    assert result.passed and result.done == len(vector.steps)
    assert served.commands - before == len(vector.steps)  # every step reached our card


def test_a_wrong_expectation_is_reported(served: SwappableCard, transport: Any) -> None:
    """The replay through pcscd can fail: a vector expecting another status word is caught at
    that step, with the card's real answer."""
    vector = load(ROOT / "vectors" / "card" / "card-select-aid.json")
    last = len(vector.steps) - 1
    step = vector.steps[last]
    wrong = bytes(step.response.data[:-2]) + b"\x6a\x82"
    tampered = replace(
        vector,
        steps=(*vector.steps[:last], replace(step, response=Pattern.exact(wrong))),
    )
    served.load(tampered)
    result = replay_card_vector(tampered, transport)
    assert not result.passed
    assert result.difference is not None and result.difference.step == last
    assert result.difference.got.endswith("9000")
    assert result.done == last
