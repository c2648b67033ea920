"""Flipping an expected byte of a card-side vector makes its replay fail and say where."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from reader import vectors as vx

SAMPLES_PER_VECTOR = 3  # sampled positions keep this fast; the seed keeps it reproducible


def flipped(vector: vx.Vector, step: int, offset: int) -> vx.Vector:
    pattern = vector.steps[step].response
    data = bytearray(pattern.data)
    data[offset] ^= 0x01
    steps = list(vector.steps)
    steps[step] = replace(steps[step], response=vx.Pattern(bytes(data), pattern.known))
    return replace(vector, steps=tuple(steps))


def test_every_sampled_flip_fails_at_its_place(
    card_vectors: list[vx.Vector], profiles: Path
) -> None:
    rng = random.Random(7)
    checked = 0
    for vector in card_vectors:
        places = [
            (s, o)
            for s, step in enumerate(vector.steps)
            for o, known in enumerate(step.response.known)
            if known
        ]
        for step, offset in rng.sample(places, min(SAMPLES_PER_VECTOR, len(places))):
            result = vx.replay_vector(flipped(vector, step, offset), profiles)
            assert not result.passed, (vector.name, step, offset)
            difference = result.difference
            assert difference is not None
            assert (difference.step, difference.offset) == (step, offset), vector.name
            assert difference.problem is vx.Problem.RESPONSE
            assert f"step {step + 1}, byte {offset}" in difference.describe()
            checked += 1
    assert checked >= 3 * len(card_vectors) - 5
