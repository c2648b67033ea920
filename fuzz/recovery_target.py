"""Recovery fuzz target (PROTOCOL.md §9): any GET DATA DF02 answer gives a decision.

A genuine last answer is made once (test profile's card, one torn payment); an input is
either a mutation of it (byte 0 even: the input's bytes are XORed over it) or a whole random
answer (byte 0 odd). `reader.recovery.decide` must return RecordOnce or CloseNotPaid, never
raise, and RecordOnce only for the genuine payment.
"""

from __future__ import annotations

from pathlib import Path

from apdu import dol, messages
from apdu.response import ResponseAPDU
from applet import open_card
from applet.store import MemoryStateStore
from authority.keyfiles import load_public
from authority.license import account_from_digits
from reader.recovery import CloseNotPaid, PendingEntry, RecordOnce, decide

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "vectors" / "profiles" / "test-card-1"
if not (PROFILE / "card.json").is_file():
    raise ImportError(f"no test profile at {PROFILE}")
APP_KEY = load_public(PROFILE / "app.pub.pem")
AMOUNT = 4321


def _genuine() -> tuple[PendingEntry, bytes]:
    card = open_card(PROFILE, MemoryStateStore())
    values = {0x9F02: bytes.fromhex(f"{AMOUNT:012d}"), 0x5F2A: b"\x01\x56", 0x9F37: b"\x0a" * 4}
    card.power_on()
    card.process(messages.select(messages.CREDIT_AID).to_bytes())
    gpo = card.process(messages.gpo(dol.fill_dol(messages.PDOL, values)).to_bytes())
    atc = messages.parse_gpo_response(gpo[:-2]).atc
    cdol1 = dol.fill_dol(messages.CDOL1, values)
    card.process(messages.generate_ac(cdol1).to_bytes())
    state = card.process(messages.get_data(messages.TAG_LAST_ANSWER).to_bytes())
    data = state[:-2]
    while state[-2] == 0x61:  # GET RESPONSE, bounded by the card's answer size
        state = card.process(messages.get_response(state[-1] or 256).to_bytes())
        data += state[:-2]
    return PendingEntry(account_from_digits("6200123456789012"), atc, cdol1), data


PENDING, LAST = _genuine()


class InvariantError(AssertionError):
    """A fuzz finding: a wrong payment would be recorded, or decide raised."""


def fuzz_recovery(data: bytes) -> None:
    """The atheris entry point."""
    if not data:
        return
    if data[0] & 1:
        answer = data[1:2048]
    else:
        body = data[1:]
        answer = bytes(b ^ (body[i] if i < len(body) else 0) for i, b in enumerate(LAST))
    sw = 0x9000 if len(data) < 2 or data[-1] & 0x80 == 0 else 0x6A88
    decision = decide(PENDING, ResponseAPDU(answer, sw), APP_KEY)
    if isinstance(decision, RecordOnce):
        if decision.dynamic.amount != AMOUNT or decision.pending != PENDING:
            raise InvariantError(f"recorded a wrong payment: {decision}")
    elif not isinstance(decision, CloseNotPaid):
        raise InvariantError(f"no decision: {decision!r}")


def seeds() -> list[bytes]:
    """The genuine answer untouched, and a few single-byte flips."""
    return [b"\x00", b"\x00\x00\x00\x00\x01", b"\x00" + bytes(40) + b"\x10", b"\x01" + LAST]
