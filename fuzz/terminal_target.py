"""Terminal fuzz target: mutated and random card answers fed to the payment flow.

Two genuine transcripts are recorded once from the test profile's card (an approval and a
decline over the limit). An input picks one and edits its raw answers (byte flips, cuts,
status words, inserted bytes, whole answers replaced by the input's bytes, answers dropped);
`reader.flow.pay` then runs against that script. Invariants (PROTOCOL.md §7, §9):

* `pay` returns, or raises a CheckError or a TransportError: nothing else;
* the journal records only a verified payment: the genuine authorization of that
  transcript, with its verdict, amount and ATC;
* the pending entry is written before GENERATE AC leaves the terminal.

Input format: byte 0 picks the transcript (bit 0); then up to 8 edits of 4 bytes
(step, kind, position, value); kind 4 takes `value` more bytes from the input as the answer.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from apdu.sw import INS
from applet import open_card
from applet.store import MemoryStateStore
from authority.keyfiles import load_public
from authority.keystore import AuthorityKey, KeyStore
from reader.checks import CheckError
from reader.flow import (
    Env,
    Outcome,
    PaymentRequest,
    TerminalConfig,
    drive,
    pay,
    payment,
)
from reader.recovery import PendingEntry
from reader.transport import ChainingTransport, InProcessTransport, TransportError

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "vectors" / "profiles" / "test-card-1"
if not (PROFILE / "card.json").is_file():
    raise ImportError(f"no test profile at {PROFILE}")
CFG = TerminalConfig("TERM0001", "MERCHANT0000001")
ENV = Env(datetime(2026, 11, 28, 12, 0, 0), bytes.fromhex("1A2B3C4D"))
KEYS = KeyStore({1: AuthorityKey(1, load_public(PROFILE / "ca-01.pub.pem"), date(2099, 12, 31))})
REQUESTS = (PaymentRequest(1234), PaymentRequest(100_001))
MAX_EDITS = 8
MAX_ANSWER = 600


class InvariantError(AssertionError):
    """A fuzz finding: the terminal broke a rule of PROTOCOL.md §7 or §9."""


class _Recorder:
    """Records the raw answers of the card below the chaining layer."""

    name = "recorder"

    def __init__(self, inner: InProcessTransport) -> None:
        self.inner = inner
        self.answers: list[bytes] = []

    def connect(self) -> bytes:
        return self.inner.connect()

    def transmit(self, command: bytes) -> bytes:
        answer = self.inner.transmit(command)
        self.answers.append(answer)
        return answer

    def disconnect(self) -> None:
        self.inner.disconnect()


@dataclass(frozen=True)
class Transcript:
    request: PaymentRequest
    answers: tuple[bytes, ...]
    outcome: Outcome


def _record(request: PaymentRequest) -> Transcript:
    card = open_card(PROFILE, MemoryStateStore())
    recorder = _Recorder(InProcessTransport(card))
    recorder.connect()
    outcome = drive(payment(CFG, request, ENV, KEYS), ChainingTransport(recorder))
    return Transcript(request, tuple(recorder.answers), outcome)


TRANSCRIPTS = tuple(_record(r) for r in REQUESTS)


@dataclass
class _Journal:
    """reader.flow.Journal in memory, checking the order of effects."""

    written: list[PendingEntry] = field(default_factory=list)
    rows: list[Outcome] = field(default_factory=list)

    def write_pending(self, pending: PendingEntry, now: datetime) -> None:
        self.written.append(pending)

    def close_pending(self, pending: PendingEntry, outcome: str = "refused") -> None:
        pass

    def pending(self) -> list[PendingEntry]:
        return []

    def record(self, outcome: Outcome, *, later: bool = False) -> int:
        self.rows.append(outcome)
        return len(self.rows)


class _Script:
    """A card that answers the k-th command with the k-th scripted answer."""

    name = "script"

    def __init__(self, answers: list[bytes | None], journal: _Journal) -> None:
        self.answers = answers
        self.journal = journal
        self.index = 0

    def connect(self) -> bytes:
        return b"\x3b\x80\x80\x01\x01"

    def transmit(self, command: bytes) -> bytes:
        if len(command) > 1 and command[1] == INS.GENERATE_AC and not self.journal.written:
            raise InvariantError("GENERATE AC sent before the pending entry was written")
        if self.index >= len(self.answers):
            raise TransportError("card removed")
        answer = self.answers[self.index]
        self.index += 1
        if answer is None:
            raise TransportError("card removed")
        return answer

    def disconnect(self) -> None:
        pass


def mutate(data: bytes) -> tuple[Transcript, list[bytes | None]]:
    """The transcript an input picks and its edited answers (see the module docstring)."""
    transcript = TRANSCRIPTS[data[0] & 1] if data else TRANSCRIPTS[0]
    answers: list[bytes | None] = list(transcript.answers)
    pos = 1
    for _ in range(MAX_EDITS):
        if pos + 4 > len(data):
            break
        step, kind, where, value = data[pos : pos + 4]
        pos += 4
        i = step % len(answers)
        answer = answers[i]
        if answer is None:
            continue
        at = where * len(answer) // 256
        kind %= 6
        if kind == 0 and answer:
            answer = answer[:at] + bytes([answer[at] ^ (value or 1)]) + answer[at + 1 :]
        elif kind == 1:
            answer = answer[:at]
        elif kind == 2:
            answer = answer[:-2] + bytes([value, where])
        elif kind == 3:
            answer = answer[:at] + bytes([value]) + answer[at:]
        elif kind == 4:
            answer = data[pos : pos + value][:MAX_ANSWER]
            pos += value
        else:
            answers[i] = None
            continue
        answers[i] = answer
    return transcript, answers


def seeds() -> list[bytes]:
    """Each transcript untouched, and one flip in each answer of each."""
    out = [b"\x00", b"\x01"]
    for t in range(2):
        out += [bytes([t, step, 0, 0x40, 0x01]) for step in range(len(TRANSCRIPTS[t].answers))]
    return out


def check(data: bytes) -> None:
    """Run one payment against the edited script and check the invariants."""
    transcript, answers = mutate(data[:4096])
    journal = _Journal()
    with contextlib.suppress(CheckError, TransportError):
        pay(_Script(answers, journal), CFG, transcript.request, ENV, KEYS, journal)
    genuine = transcript.outcome
    for row in journal.rows:
        if (row.authorization, row.verdict, row.amount, row.atc, row.cid) != (
            genuine.authorization,
            genuine.verdict,
            genuine.amount,
            genuine.atc,
            genuine.cid,
        ):
            raise InvariantError(f"recorded an unverified payment: {row}")


def fuzz_terminal(data: bytes) -> None:
    """The atheris entry point."""
    check(data)
