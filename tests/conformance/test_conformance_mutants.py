"""A card that departs from PROTOCOL.md §6 and §9 in one way fails a card-side vector."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

import applet.payment as payment
import applet.runtime as runtime
from applet.state import CardState
from reader import vectors as vx

ROOT = Path(__file__).resolve().parents[2]
Mutate = Callable[[pytest.MonkeyPatch], None]


def oldest_last_answer(mp: pytest.MonkeyPatch) -> None:
    """DF02 answers the oldest kept answer, not the last (P§9)."""
    mp.setattr(CardState, "last_answer", property(lambda s: (s.last_answers or (None,))[0]))


def declines_not_kept(mp: pytest.MonkeyPatch) -> None:
    """Only approvals join the kept answers (P§9 keeps every GENERATE AC answer)."""
    keep = CardState.with_answer
    mp.setattr(CardState, "with_answer", lambda s, a: s if a.cid == 0 else keep(s, a))


def route(ins: int, phases: set[payment.Phase]) -> Mutate:
    def mutate(mp: pytest.MonkeyPatch) -> None:
        table = dict(payment.TABLE)
        table[ins] = replace(table[ins], phases=frozenset(phases))
        mp.setattr(payment, "TABLE", table)

    return mutate


def executes_on_6c(mp: pytest.MonkeyPatch) -> None:
    """A GPO answered 6Cxx is executed all the same (its ATC stored)."""
    process = runtime.CardRuntime._process

    def mutated(self: runtime.CardRuntime, apdu: bytes) -> bytes:
        answer = process(self, apdu)
        if answer[0] == 0x6C and apdu[1] == 0xA8:
            process(self, apdu[:-1] + b"\x00")
        return answer

    mp.setattr(runtime.CardRuntime, "_process", mutated)


def refusal_drops_pending(mp: pytest.MonkeyPatch) -> None:
    """A refused command drops the pending part of a chained response."""
    process = runtime.CardRuntime.process

    def mutated(self: runtime.CardRuntime, apdu: bytes) -> bytes:
        answer = process(self, apdu)
        if apdu[1:2] != b"\xc0" and answer[-2] != 0x61:
            self._pending = b""
        return answer

    mp.setattr(runtime.CardRuntime, "process", mutated)


SELECTED, DONE = payment.Phase.SELECTED, payment.Phase.DONE
MUTANTS: list[tuple[str, Mutate, str]] = [
    ("oldest last answer", oldest_last_answer, "card-get-data-last-answer-decline"),
    ("declines not kept", declines_not_kept, "card-get-data-last-answer-decline"),
    ("GPO in DONE", route(0xA8, {SELECTED, DONE}), "card-sw-gpo-after-generate-ac"),
    ("GET DATA once selected", route(0xCA, set(payment.APP_PHASES)), "card-get-data-before-select"),
    ("6Cxx executed", executes_on_6c, "card-wrong-le-6c-gpo"),
    ("refusal drops pending", refusal_drops_pending, "card-sw-refusal-keeps-pending"),
]


@pytest.mark.parametrize(("mutate", "name"), [m[1:] for m in MUTANTS], ids=[m[0] for m in MUTANTS])
def test_a_mutant_card_fails_its_vector(
    monkeypatch: pytest.MonkeyPatch, profiles: Path, mutate: Mutate, name: str
) -> None:
    vector = vx.load(ROOT / "vectors" / "card" / f"{name}.json")
    assert vx.replay_vector(vector, profiles).passed
    mutate(monkeypatch)
    result = vx.replay_vector(vector, profiles)
    assert result.difference is not None, name
    assert result.difference.problem is vx.Problem.RESPONSE
