"""The applet's fuzz invariants (PROTOCOL.md §6), independent of any card implementation.

See fuzz/applet_target.py for the input format and the card under test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from apdu.sw import SW, SW1_MORE_DATA, SW1_WRONG_LE
from fuzz.seeds import command_seeds

MAX_COMMANDS = 16
GENUINE_MARK = 0xF0  # a length byte >= F0 stands for the genuine command number (L - F0)
MAX_VECTOR_FILES = 1000
VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "card"
GENUINE = command_seeds()
PREFIXES: tuple[tuple[int, ...], ...] = ((), (2,), (2, 3), (2, 3, 4, 5, 6), (2, 3, 4, 5, 6, 7))

ALLOWED = frozenset(
    {
        SW.OK,
        SW.WRONG_LENGTH,
        SW.WRONG_DATA,
        SW.FILE_NOT_FOUND,
        SW.RECORD_NOT_FOUND,
        SW.INCORRECT_P1P2,
        SW.CONDITIONS_NOT_SATISFIED,
        SW.REFERENCED_DATA_NOT_FOUND,
        SW.INS_NOT_SUPPORTED,
        SW.CLA_NOT_SUPPORTED,
    }
)


class InvariantError(AssertionError):
    """A fuzz finding: the applet broke a rule of PROTOCOL.md §6."""


def sw_allowed(sw: int) -> bool:
    """Is this status word one of PROTOCOL.md §6's?"""
    return sw in ALLOWED or (sw >> 8) in (SW1_MORE_DATA, SW1_WRONG_LE)


def success(sw: int) -> bool:
    """A status word after which the state may have changed."""
    return sw == SW.OK or (sw >> 8) == SW1_MORE_DATA


def split_input(data: bytes) -> list[bytes]:
    """The command sequence an input describes (see the module docstring)."""
    if not data:
        return []
    commands = [GENUINE[i] for i in PREFIXES[data[0] % len(PREFIXES)]]
    pos = 1
    while pos < len(data) and len(commands) < MAX_COMMANDS + 6:
        length = data[pos]
        pos += 1
        if length >= GENUINE_MARK:
            commands.append(GENUINE[(length - GENUINE_MARK) % len(GENUINE)])
            continue
        commands.append(data[pos : pos + length])
        pos += length
    return commands


def encode_input(prefix: int, commands: list[bytes]) -> bytes:
    """The inverse of split_input for commands shorter than GENUINE_MARK bytes."""
    body = b"".join(bytes([len(c)]) + c for c in commands if len(c) < GENUINE_MARK)
    return bytes([prefix]) + body


def vector_seeds(folder: Path) -> list[bytes]:
    """Each card-side vector's command sequence (PROTOCOL.md §8) as one input."""
    out: list[bytes] = []
    for path in sorted(folder.glob("*.json"))[:MAX_VECTOR_FILES]:
        try:
            steps = json.loads(path.read_text(encoding="utf-8"))["steps"]
            commands = [bytes.fromhex(step["c"]) for step in steps[:MAX_COMMANDS]]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        out.append(encode_input(0, commands))
    return out


def seeds() -> list[bytes]:
    """A genuine payment, and each prefix followed by each genuine command."""
    out = [bytes([p]) for p in range(len(PREFIXES))]
    out += [bytes([p, GENUINE_MARK + i]) for p in range(len(PREFIXES)) for i in range(len(GENUINE))]
    return out + vector_seeds(VECTORS)


@dataclass
class Harness:
    """A card under test and how to read its durable state."""

    process: Callable[[bytes], bytes]
    power_on: Callable[[], bytes]
    state: Callable[[], object]


def check_sequence(harness: Harness, commands: list[bytes]) -> None:
    """Run the commands on a powered card and check §6's invariants after each."""
    harness.power_on()
    for command in commands:
        before = harness.state()
        response = harness.process(command)
        if not isinstance(response, bytes) or len(response) < 2:
            raise InvariantError(f"no status word for {command.hex()}: {response!r}")
        sw = int.from_bytes(response[-2:], "big")
        if not sw_allowed(sw):
            raise InvariantError(f"status word {sw:04X} for {command.hex()}")
        if not success(sw) and harness.state() != before:
            raise InvariantError(f"state changed on {sw:04X} for {command.hex()}")
