"""The card's durable state: ATC, used credit, the last GENERATE AC answers (PROTOCOL.md §6, §9).

Pure: the two shapes live here, the file IO in applet/store.py. The binary form is what a
state.dat slot holds (written twice per payment, so it is cheap to make); the JSON form is
the hand-written seed `state.json`.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, replace
from typing import Any, Final

from apdu.messages import LastAnswer

MAX_ATC: Final = 0xFFFF  # b2; at FFFF the card answers 6985 to GPO for ever
MAX_USED: Final = 999_999_999_999  # n12
MAX_LAST_ANSWERS: Final = 10  # PROTOCOL.md §9
STATE_VERSION: Final = 1
MAX_STATE_TEXT: Final = 64 * 1024
_FIXED: Final = struct.Struct(">HQB")  # ATC, used credit, how many last answers
_LENGTH: Final = struct.Struct(">H")


@dataclass(frozen=True)
class CardState:
    """What survives a power-off: the ATC, the credit used, the last 10 GENERATE AC answers."""

    atc: int = 0
    used: int = 0
    last_answers: tuple[LastAnswer, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.atc <= MAX_ATC:
            raise ValueError(f"ATC {self.atc} outside 0..FFFF")
        if not 0 <= self.used <= MAX_USED:
            raise ValueError(f"used credit {self.used} outside n12")
        if len(self.last_answers) > MAX_LAST_ANSWERS:
            raise ValueError(f"more than {MAX_LAST_ANSWERS} last answers")

    def with_answer(self, answer: LastAnswer) -> CardState:
        """This state with `answer` as the newest of the last answers (oldest dropped)."""
        kept = (*self.last_answers, answer)[-MAX_LAST_ANSWERS:]
        return replace(self, last_answers=kept)

    @property
    def last_answer(self) -> LastAnswer | None:
        """The newest GENERATE AC answer, if any (GET DATA DF02)."""
        return self.last_answers[-1] if self.last_answers else None


def state_to_json(state: CardState) -> str:
    """The state.json text (hex for bytes)."""
    obj = {
        "hcepay_state": STATE_VERSION,
        "atc": state.atc,
        "used": state.used,
        "last_answers": [
            {"answer": a.answer.hex().upper(), "cdol1_data": a.cdol1_data.hex().upper()}
            for a in state.last_answers
        ],
    }
    return json.dumps(obj, separators=(",", ":")) + "\n"  # C encoder: it is on the hot path


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key!r} must be an integer")
    return value


def _hex(obj: Any, key: str) -> bytes:
    if not isinstance(obj, dict) or not isinstance(obj.get(key), str):
        raise ValueError(f"last answer {key!r} must be a hex string")
    return bytes.fromhex(obj[key])


def state_from_json(text: str) -> CardState:
    """Parse state.json; ValueError names what is wrong."""
    if len(text) > MAX_STATE_TEXT:
        raise ValueError("state text too large")
    obj = json.loads(text)
    if not isinstance(obj, dict) or obj.get("hcepay_state") != STATE_VERSION:
        raise ValueError(f"not an hcepay state (version {STATE_VERSION})")
    answers = obj.get("last_answers", [])
    if not isinstance(answers, list) or len(answers) > MAX_LAST_ANSWERS:
        raise ValueError(f"'last_answers' must be a list of at most {MAX_LAST_ANSWERS}")
    last = tuple(LastAnswer(_hex(a, "answer"), _hex(a, "cdol1_data")) for a in answers)
    return CardState(_int(obj, "atc"), _int(obj, "used"), last)


def state_to_bytes(state: CardState) -> bytes:
    """The binary form: ATC (2) | used (8) | count (1) | per answer: length (2) | answer |
    length (2) | CDOL1 data; big-endian. ValueError when an answer exceeds 65535 bytes."""
    parts = [_FIXED.pack(state.atc, state.used, len(state.last_answers))]
    for a in state.last_answers:
        if len(a.answer) > 0xFFFF or len(a.cdol1_data) > 0xFFFF:
            raise ValueError("a last answer longer than 65535 bytes")
        parts += (_LENGTH.pack(len(a.answer)), a.answer, _LENGTH.pack(len(a.cdol1_data)))
        parts.append(a.cdol1_data)
    return b"".join(parts)


def state_from_bytes(data: bytes) -> CardState:
    """Parse the binary form; ValueError names what is wrong (nothing may follow it)."""
    if len(data) < _FIXED.size:
        raise ValueError("binary state too short")
    atc, used, count = _FIXED.unpack_from(data)
    if count > MAX_LAST_ANSWERS:
        raise ValueError(f"more than {MAX_LAST_ANSWERS} last answers")
    at, last = _FIXED.size, []
    for _ in range(count):
        fields = []
        for _part in ("answer", "cdol1_data"):
            if at + _LENGTH.size > len(data):
                raise ValueError("binary state cut inside a last answer")
            (length,) = _LENGTH.unpack_from(data, at)
            at += _LENGTH.size
            if at + length > len(data):
                raise ValueError("binary state cut inside a last answer")
            fields.append(data[at : at + length])
            at += length
        last.append(LastAnswer(fields[0], fields[1]))
    if at != len(data):
        raise ValueError(f"{len(data) - at} bytes after the binary state")
    return CardState(atc, used, tuple(last))
