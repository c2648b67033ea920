"""Card-side replay edges: masks against a real card, a card lost mid-way, a missing profile."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from reader import vectors as vx
from reader.transport import InProcessTransport, TransportError

ROOT = Path(__file__).resolve().parents[2]
ATC_VECTOR = ROOT / "vectors" / "card" / "card-sw-generate-ac-before-gpo.json"


def masked_atc(vector: vx.Vector) -> vx.Vector:
    """The last step (GET DATA 9F36 -> 9F36 02 xx xx 9000) with its two ATC bytes as `..`."""
    last = vector.steps[-1].response
    pattern = vx.Pattern.parse(last.to_hex()[:6] + "...." + last.to_hex()[10:])
    return replace(vector, steps=(*vector.steps[:-1], replace(vector.steps[-1], response=pattern)))


def test_masked_bytes_let_a_card_in_another_state_pass(profiles: Path) -> None:
    vector = vx.load(ATC_VECTOR)
    assert vector.card is not None
    elsewhere = replace(vector, card=replace(vector.card, atc=7))
    strict = vx.replay_vector(elsewhere, profiles)
    assert strict.difference is not None
    assert (strict.difference.step, strict.difference.offset) == (2, 4)
    assert vx.replay_vector(masked_atc(elsewhere), profiles).passed


class LosingTransport:
    """A transport whose card leaves the field after `keep` commands."""

    name = "losing"

    def __init__(self, inner: InProcessTransport, keep: int) -> None:
        self.inner, self.keep, self.disconnected = inner, keep, False

    def connect(self) -> bytes:
        return self.inner.connect()

    def transmit(self, command: bytes) -> bytes:
        if self.keep == 0:
            raise TransportError("card removed")
        self.keep -= 1
        return self.inner.transmit(command)

    def disconnect(self) -> None:
        self.disconnected = True


def test_a_card_lost_mid_way_is_a_transport_difference(profiles: Path) -> None:
    vector = vx.load(ROOT / "vectors" / "card" / "card-approve-basic.json")
    assert vector.card is not None
    transport = LosingTransport(InProcessTransport(vx.in_process_card(vector.card, profiles)), 3)
    result = vx.replay_card_vector(vector, transport)
    assert not result.passed and result.done == 3 and transport.disconnected
    assert result.difference is not None
    assert result.difference.problem is vx.Problem.TRANSPORT
    assert result.difference.describe() == "transport error at step 4: card removed"


def test_a_missing_profile_is_a_vector_error(tmp_path: Path) -> None:
    vector = vx.load(ATC_VECTOR)
    with pytest.raises(vx.VectorError, match="no profile 'test-card-1'"):
        vx.replay_vector(vector, tmp_path)
