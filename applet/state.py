"""The card's durable state: ATC, used credit, the last GENERATE AC answers (PROTOCOL.md §6, §9).

Pure: the two shapes live here, the file IO in applet/store.py. The binary form is what a
state.dat slot holds (written twice per payment, so it is cheap to make); the JSON form is
the hand-written seed `state.json`.

A last answer is kept in one of two kinds. The card keeps what it answers as `AnswerInputs`
(CID, ATC, CDOL1 data): ISO 9796-2 scheme 1 signing is deterministic (PROTOCOL.md §8), so
the card's key re-makes the template `77` byte for byte, and the card can store its state
while it signs (applet/runtime.py). A seed may give an answer as sent (`LastAnswer`).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any, Final

from apdu.dol import dol_slices
from apdu.messages import CDOL1, LastAnswer, build_last_answer, parse_generate_ac_response
from apdu.tlv import tag_hex
from authority.authorization import from_bcd

MAX_ATC: Final = 0xFFFF  # b2; at FFFF the card answers 6985 to GPO for ever
MAX_USED: Final = 999_999_999_999  # n12
MAX_LAST_ANSWERS: Final = 10  # PROTOCOL.md §9
STATE_VERSION: Final = 1
MAX_STATE_TEXT: Final = 64 * 1024
BINARY_VERSION: Final = 2  # 1: every answer as sent; 2: a kind byte before each answer
_FIXED: Final = struct.Struct(">HQB")  # ATC, used credit, how many last answers
_LENGTH: Final = struct.Struct(">H")
_INPUTS: Final = struct.Struct(">BH")  # CID, ATC
_AS_SENT: Final = 0  # kind byte: length | answer | length | CDOL1 data
_AS_INPUTS: Final = 1  # kind byte: CID | ATC | length | CDOL1 data
_KIND_BYTE: Final = (b"\x00", b"\x01")


CDOL1_DATA_LENGTH: Final = sum(entry.length for entry in CDOL1)
CDOL1_SLICES: Final = dol_slices(CDOL1)  # cut in place: the app's CDOL1 is a constant
ANSWER_CIDS: Final = (0x00, 0x40)  # declined, approved (PROTOCOL.md §5.2)


@dataclass(frozen=True)
class AnswerInputs:
    """A GENERATE AC answer kept as what makes it: its CID, ATC and CDOL1 data (§5.2, §9).

    The card's current key and card data re-make it: a card whose key is replaced re-signs
    its old answers with the new key."""

    cid: int
    atc: int
    cdol1_data: bytes

    def __post_init__(self) -> None:
        if self.cid not in ANSWER_CIDS:
            raise ValueError(f"answer inputs CID {self.cid:#04x}: not 00 or 40")
        if not 0 <= self.atc <= MAX_ATC:
            raise ValueError(f"answer inputs ATC {self.atc} outside 0..FFFF")
        if len(self.cdol1_data) != CDOL1_DATA_LENGTH:
            raise ValueError(
                f"answer inputs CDOL1 data of {len(self.cdol1_data)} bytes, "
                f"expected {CDOL1_DATA_LENGTH}"
            )


KeptAnswer = LastAnswer | AnswerInputs


def answer_cid_atc(answer: KeptAnswer) -> tuple[int, int]:
    """The CID and ATC of a kept answer (read from its template when kept as sent)."""
    if isinstance(answer, AnswerInputs):
        return answer.cid, answer.atc
    sent = parse_generate_ac_response(answer.answer)
    return sent.cid, sent.atc


@dataclass(frozen=True)
class CardState:
    """What survives a power-off: the ATC, the credit used, the last 10 GENERATE AC answers."""

    atc: int = 0
    used: int = 0
    last_answers: tuple[KeptAnswer, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.atc <= MAX_ATC:
            raise ValueError(f"ATC {self.atc} outside 0..FFFF")
        if not 0 <= self.used <= MAX_USED:
            raise ValueError(f"used credit {self.used} outside n12")
        if len(self.last_answers) > MAX_LAST_ANSWERS:
            raise ValueError(f"more than {MAX_LAST_ANSWERS} last answers")
        for a in self.last_answers:
            if isinstance(a, AnswerInputs) and a.atc > self.atc:
                raise ValueError(f"a last answer of ATC {a.atc}, above the card's ATC")

    def with_atc(self, atc: int) -> CardState:
        """This state with the ATC `atc` (as `replace` checks it, at a fraction of its cost:
        every GPO makes one)."""
        return CardState(atc, self.used, self.last_answers)

    def with_answer(self, answer: KeptAnswer, used: int | None = None) -> CardState:
        """This state with `answer` as the newest of the last answers (oldest dropped) and,
        when given, `used` as the credit used (one state made and checked, not two)."""
        kept = (*self.last_answers, answer)[-MAX_LAST_ANSWERS:]
        return CardState(self.atc, self.used if used is None else used, kept)

    @property
    def last_answer(self) -> KeptAnswer | None:
        """The newest GENERATE AC answer, if any (GET DATA DF02)."""
        return self.last_answers[-1] if self.last_answers else None


def state_to_json(state: CardState) -> str:
    """The state.json text (hex for bytes)."""
    obj = {
        "hcepay_state": STATE_VERSION,
        "atc": state.atc,
        "used": state.used,
        "last_answers": [_answer_to_json(a) for a in state.last_answers],
    }
    return json.dumps(obj, separators=(",", ":")) + "\n"


def _answer_to_json(a: KeptAnswer) -> dict[str, str | int]:
    if isinstance(a, AnswerInputs):
        return {"cid": a.cid, "atc": a.atc, "cdol1_data": a.cdol1_data.hex().upper()}
    return {"answer": a.answer.hex().upper(), "cdol1_data": a.cdol1_data.hex().upper()}


def _checked(answer: KeptAnswer) -> KeptAnswer:
    """`answer`, once GET DATA DF02 can give it: ValueError now, not 6F00 at each DF02."""
    if isinstance(answer, LastAnswer):
        build_last_answer(answer)  # EncodeError is a ValueError
        return answer
    for tag in (0x9F02, 0x5F2A):  # DF02 re-makes the answer from them (n, PROTOCOL.md §5.2)
        try:
            from_bcd(answer.cdol1_data[CDOL1_SLICES[tag]])
        except ValueError:
            raise ValueError(f"last answer CDOL1 data: {tag_hex(tag)} is not BCD") from None
    return answer


def _answer_from_json(obj: Any) -> KeptAnswer:
    if isinstance(obj, dict) and "answer" in obj:
        return _checked(LastAnswer(_hex(obj, "answer"), _hex(obj, "cdol1_data")))
    if isinstance(obj, dict) and "cid" in obj:
        return _checked(AnswerInputs(_int(obj, "cid"), _int(obj, "atc"), _hex(obj, "cdol1_data")))
    raise ValueError("a last answer gives 'answer' (as sent) or 'cid' and 'atc' (its inputs)")


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key!r} must be an integer")
    return value


def _hex(obj: Any, key: str) -> bytes:
    if not isinstance(obj, dict) or not isinstance(obj.get(key), str):
        raise ValueError(f"last answer {key!r} must be a hex string")
    try:
        return bytes.fromhex(obj[key])
    except ValueError:  # fromhex's own text names a position, not the field
        raise ValueError(f"last answer {key!r} must be a hex string") from None


def state_from_json(text: str) -> CardState:
    """Parse state.json; ValueError names what is wrong."""
    if len(text) > MAX_STATE_TEXT:
        raise ValueError("state text too large")
    try:
        obj = json.loads(text)
    except RecursionError:  # json's decoder recurses once per level
        raise ValueError("nested too deeply") from None
    except json.JSONDecodeError as exc:  # its own text names no file and reads as Python's
        raise ValueError(f"not valid JSON (line {exc.lineno} column {exc.colno})") from None
    version = obj.get("hcepay_state") if isinstance(obj, dict) else None
    if type(version) is not int or version != STATE_VERSION:  # not true, not 1.0
        raise ValueError(f"not an hcepay state (version {STATE_VERSION})")
    answers = obj.get("last_answers", [])
    if not isinstance(answers, list) or len(answers) > MAX_LAST_ANSWERS:
        raise ValueError(f"'last_answers' must be a list of at most {MAX_LAST_ANSWERS}")
    last = tuple(_answer_from_json(a) for a in answers)
    return CardState(_int(obj, "atc"), _int(obj, "used"), last)


def state_to_bytes(state: CardState) -> bytes:
    """The binary form (version 2): ATC (2) | used (8) | count (1) | per answer a kind byte,
    then length (2) | answer | length (2) | CDOL1 data (as sent) or CID (1) | ATC (2) |
    length (2) | CDOL1 data (inputs); big-endian. ValueError when a field exceeds 65535 bytes."""
    parts = [_FIXED.pack(state.atc, state.used, len(state.last_answers))]
    for a in state.last_answers:
        if len(a.cdol1_data) > 0xFFFF:
            raise ValueError("a last answer longer than 65535 bytes")
        if isinstance(a, AnswerInputs):
            parts += (
                _KIND_BYTE[_AS_INPUTS],
                _INPUTS.pack(a.cid, a.atc),
                _LENGTH.pack(len(a.cdol1_data)),
            )
        else:
            if len(a.answer) > 0xFFFF:
                raise ValueError("a last answer longer than 65535 bytes")
            parts += (_KIND_BYTE[_AS_SENT], _LENGTH.pack(len(a.answer)), a.answer)
            parts.append(_LENGTH.pack(len(a.cdol1_data)))
        parts.append(a.cdol1_data)
    return b"".join(parts)


class _Reader:
    """Bounded reads over a binary state; ValueError when a field runs past its end."""

    def __init__(self, data: bytes, at: int) -> None:
        self.data, self.at = data, at

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise ValueError("binary state cut inside a last answer")
        self.at += size
        return self.data[self.at - size : self.at]

    def field(self) -> bytes:
        (length,) = _LENGTH.unpack(self.take(_LENGTH.size))
        return self.take(length)


def state_from_bytes(data: bytes, version: int = BINARY_VERSION) -> CardState:
    """Parse the binary form of `version` (1: no kind bytes, every answer as sent); ValueError
    names what is wrong (nothing may follow it)."""
    if version not in (1, BINARY_VERSION):
        raise ValueError(f"binary state version {version} unknown")
    if len(data) < _FIXED.size:
        raise ValueError("binary state too short")
    atc, used, count = _FIXED.unpack_from(data)
    if count > MAX_LAST_ANSWERS:
        raise ValueError(f"more than {MAX_LAST_ANSWERS} last answers")
    read = _Reader(data, _FIXED.size)
    last: list[KeptAnswer] = []
    for _ in range(count):
        kind = read.take(1)[0] if version == BINARY_VERSION else _AS_SENT
        if kind == _AS_SENT:
            answer = read.field()
            last.append(_checked(LastAnswer(answer, read.field())))
        elif kind == _AS_INPUTS:
            cid, answer_atc = _INPUTS.unpack(read.take(_INPUTS.size))
            last.append(_checked(AnswerInputs(cid, answer_atc, read.field())))
        else:
            raise ValueError(f"last answer of unknown kind {kind}")
    if read.at != len(data):
        raise ValueError(f"{len(data) - read.at} bytes after the binary state")
    return CardState(atc, used, tuple(last))
