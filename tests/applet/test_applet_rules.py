"""PROTOCOL.md §6: every malformed or refused command answers its SW and changes nothing;
the runtime's chaining (61xx, 6Cxx), 6F00 for bugs, and storing before answering."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from apdu import messages as m
from apdu.command import CommandAPDU
from applet import payment
from applet.payment import CardEnv, PaymentApplet, Phase
from applet.profile import CardProfile
from applet.runtime import CardRuntime
from applet.state import CardState
from applet.store import FileStateStore, MemoryStateStore, StateStore
from authority import home
from authority import rsa as rsa_module
from authority.authorization import sign_authorization
from authority.errors import SigningFaultError
from authority.rsa import RsaPrivateKey, generate

SELECT_AID = m.select(m.CREDIT_AID).to_bytes()
SELECT_PSE = m.select(m.PSE_NAME).to_bytes()


def setup_commands(term: Any, phase: str) -> list[bytes]:
    return {
        "idle": [],
        "pse": [SELECT_PSE],
        "selected": [SELECT_AID],
        "requested": [SELECT_AID, term.gpo()],
        "done": [SELECT_AID, term.gpo(), term.generate_ac()],
    }[phase]


CASES: list[tuple[str, str, str, int]] = [
    # (name, phase, command hex or symbolic, SW)
    ("empty", "requested", "", 0x6700),
    ("3 bytes", "requested", "80A800", 0x6700),
    ("Lc longer than data", "selected", "80A8000010830100", 0x6700),
    ("Lc shorter than data", "requested", "80AE5000010000000000", 0x6700),
    ("extended length truncated", "selected", "80A800000000", 0x6700),
    ("GPO without data", "selected", "80A8000000", 0x6700),
    ("unknown CLA", "requested", "90B2010C00", 0x6E00),
    ("CLA with channel bits", "requested", "01B2010C00", 0x6E00),
    ("unknown CLA and INS", "requested", "9020008000", 0x6E00),  # CLA is checked first
    ("GPO with CLA 00", "selected", "GPO_CLA00", 0x6E00),
    ("SELECT with CLA 80", "selected", "80A4040009F0484345504159000100", 0x6E00),
    ("unknown INS", "requested", "0020008000", 0x6D00),
    ("SELECT P1 00", "selected", "00A4000009F0484345504159000100", 0x6A86),
    ("SELECT next occurrence", "selected", "00A4040209F0484345504159000100", 0x6A82),
    ("SELECT next occurrence after GPO", "requested", "00A4040205F04843455000", 0x6A82),
    ("SELECT next occurrence of the PSE", "pse", "00A404020E" + m.PSE_NAME.hex() + "00", 0x6A82),
    ("SELECT P2 0C (no FCI)", "selected", "00A4040C09F0484345504159000100", 0x6A86),
    ("SELECT 4 bytes of the AID", "requested", "00A4040004F048434500", 0x6A82),
    ("SELECT the AID and one byte more", "requested", "00A404000AF048434550415900010000", 0x6A82),
    ("SELECT without name", "selected", "00A4040000", 0x6700),
    ("SELECT unknown AID", "requested", "00A4040007A000000003101000", 0x6A82),
    ("READ RECORD P2 00", "requested", "00B2010000", 0x6A86),
    ("READ RECORD P1 00", "requested", "00B2000C00", 0x6A86),
    ("READ RECORD 4", "requested", "00B2040C00", 0x6A83),
    ("READ RECORD with data", "requested", "00B2010C03AABBCC00", 0x6700),
    ("READ RECORD with data, no Le", "requested", "00B2010C0101", 0x6700),
    ("READ RECORD SFI 2", "requested", "00B2011400", 0x6A83),
    ("PSE directory record 2", "pse", "00B2020C00", 0x6A83),
    ("PSE directory record 1 of SFI 2", "pse", "00B2011400", 0x6A83),
    ("READ RECORD before GPO", "selected", "00B2010C00", 0x6985),
    ("READ RECORD in idle", "idle", "00B2010C00", 0x6985),
    ("GPO before SELECT", "idle", "GPO", 0x6985),
    ("GPO twice", "requested", "GPO", 0x6985),
    ("GPO P1P2", "selected", "GPO_P1", 0x6A86),
    ("GPO P2", "selected", "GPO_P2", 0x6A86),
    ("GPO without 83", "selected", "80A80000028200" + "00", 0x6A80),
    ("GPO short PDOL data", "selected", "80A8000003830100" + "00", 0x6700),
    ("GPO long PDOL data", "selected", "GPO_LONG", 0x6700),
    ("GPO amount not BCD", "selected", "GPO_NOT_BCD", 0x6A80),
    ("GPO 83 padded after", "selected", "GPO_PAD_AFTER", 0x6A80),
    ("GPO 83 padded before", "selected", "GPO_PAD_BEFORE", 0x6A80),
    ("GPO 83 length past the data", "selected", "GPO_83_PAST_END", 0x6A80),
    ("GENERATE AC before GPO", "selected", "GENAC", 0x6985),
    ("second GENERATE AC", "done", "GENAC", 0x6985),
    ("GENERATE AC P1 80 (ARQC)", "requested", "GENAC_P1", 0x6A86),
    ("GENERATE AC short CDOL1", "requested", "80AE500003000000" + "00", 0x6700),
    ("GENERATE AC amount differs", "requested", "GENAC_AMOUNT", 0x6A80),
    ("GENERATE AC currency differs", "requested", "GENAC_CURRENCY", 0x6A80),
    ("GET DATA unknown tag", "requested", "80CA9F1300", 0x6A88),
    ("GET DATA DF02 before any payment", "selected", "80CADF0200", 0x6A88),
    ("GET DATA with data", "selected", "80CA9F360100" + "00", 0x6700),
    ("GET DATA DF02 with data", "selected", "80CADF0201AA00", 0x6700),
    ("GET DATA unknown tag with data: P1-P2 first", "selected", "80CA123401AA00", 0x6A88),
    ("GET RESPONSE with nothing pending", "requested", "00C0000010", 0x6985),
    ("GET RESPONSE P1P2, nothing pending", "requested", "00C0010010", 0x6985),
    ("GET RESPONSE data, nothing pending", "requested", "00C0000001AA", 0x6985),
    ("GET RESPONSE with CLA 80", "requested", "80C0000000", 0x6E00),
]


@pytest.mark.parametrize("length", range(payment.MIN_PARTIAL_AID, len(m.CREDIT_AID) + 1))
@pytest.mark.parametrize("p2", [0x00, 0x02])
def test_the_aid_selects_by_its_first_5_bytes_or_more(
    make_card: Any, term: Any, length: int, p2: int
) -> None:
    """EMV Book 1 12.3.3: a terminal's AID may be the card's first bytes (partial name);
    first or next occurrence from the PPSE, the answer is the whole AID's FCI."""
    card = make_card()
    whole_fci, sw = term.exchange(card, SELECT_AID)
    assert sw == 0x9000
    card.deactivate("field off")
    assert term.exchange(card, m.select(m.PPSE_NAME).to_bytes())[1] == 0x9000
    name = m.CREDIT_AID[:length]
    partial = CommandAPDU(0x00, 0xA4, 0x04, p2, name, 256).to_bytes()
    assert term.exchange(card, partial) == (whole_fci, 0x9000)
    assert card.state.phase == Phase.SELECTED
    assert term.exchange(card, term.gpo())[1] == 0x9000
    again = CommandAPDU(0x00, 0xA4, 0x04, 0x02, name, 256).to_bytes()
    assert term.exchange(card, again)[1] == 0x6A82  # one occurrence: the search ends
    assert card.state.phase == Phase.REQUESTED


def command_for(term: Any, text: str) -> bytes:
    gpo_data = CommandAPDU.parse(term.gpo()).data  # 83 L <PDOL data>
    symbolic = {
        "GPO": term.gpo(),
        "GPO_CLA00": b"\x00" + term.gpo()[1:],
        "GPO_P1": term.gpo()[:2] + b"\x01" + term.gpo()[3:],
        "GPO_P2": term.gpo()[:3] + b"\x01" + term.gpo()[4:],
        "GPO_NOT_BCD": term.gpo()[:7] + b"\x0a" + term.gpo()[8:],
        "GPO_LONG": m.gpo(CommandAPDU.parse(term.gpo()).data[2:] + b"\x00").to_bytes(),
        "GPO_PAD_AFTER": CommandAPDU(0x80, 0xA8, 0, 0, gpo_data + b"\x00", 256).to_bytes(),
        "GPO_PAD_BEFORE": CommandAPDU(0x80, 0xA8, 0, 0, b"\xff" + gpo_data, 256).to_bytes(),
        "GPO_83_PAST_END": CommandAPDU(
            0x80, 0xA8, 0, 0, gpo_data[:1] + bytes([gpo_data[1] + 1]) + gpo_data[2:], 256
        ).to_bytes(),
        "GENAC": term.generate_ac(),
        "GENAC_P1": term.generate_ac()[:2] + b"\x80" + term.generate_ac()[3:],
        "GENAC_AMOUNT": term.generate_ac(amount=term.amount + 1),
        "GENAC_CURRENCY": term.generate_ac(currency=978),
    }
    return symbolic.get(text) or bytes.fromhex(text)


@pytest.mark.parametrize(("name", "phase", "command", "sw"), CASES, ids=[c[0] for c in CASES])
def test_refused_command_answers_its_sw_and_changes_nothing(
    make_card: Any, term: Any, name: str, phase: str, command: str, sw: int
) -> None:
    store = MemoryStateStore(CardState(atc=5, used=100))
    card = make_card(store=store)
    for setup in setup_commands(term, phase):
        assert term.exchange(card, setup)[1] == 0x9000
    before, commits = card.state, store.commits
    assert card.process(command_for(term, command)) == sw.to_bytes(2, "big")
    assert card.state == before
    assert (store.commits, store.state) == (commits, before.card)


def test_atc_ffff_blocks_gpo_for_ever(make_card: Any, term: Any) -> None:
    store = MemoryStateStore(CardState(atc=0xFFFE))
    card = make_card(store=store)
    assert term.exchange(card, SELECT_AID)[1] == 0x9000
    data, sw = term.exchange(card, term.gpo())
    assert sw == 0x9000 and m.parse_gpo_response(data).atc == 0xFFFF
    for _ in range(3):
        assert term.exchange(card, SELECT_AID)[1] == 0x9000
        assert card.process(term.gpo()) == b"\x69\x85"
        card.power_on()
    assert card.state.card.atc == 0xFFFF and store.commits == 1


def test_amount_differs_then_the_gpo_amount_is_accepted(make_card: Any, term: Any) -> None:
    card = make_card()
    for command in (SELECT_AID, term.gpo()):
        term.exchange(card, command)
    assert card.process(term.generate_ac(amount=1)) == b"\x6a\x80"
    data, sw = term.exchange(card, term.generate_ac())
    assert sw == 0x9000 and m.parse_generate_ac_response(data).cid == 0x40
    assert card.state.card.used == term.amount


def test_exact_limit_approves_and_one_more_declines(make_card: Any, term: Any) -> None:
    card = make_card(used=100_000 - 1234)
    cids = []
    for _ in range(2):
        for command in (SELECT_AID, term.gpo()):
            term.exchange(card, command)
        data, _ = term.exchange(card, term.generate_ac())
        cids.append(m.parse_generate_ac_response(data).cid)
    assert cids == [0x40, 0x00]
    assert card.state.card.used == 100_000
    assert term.exchange(card, m.get_data(0xDF01).to_bytes()) == (
        bytes.fromhex("DF0106") + bytes(6),
        0x9000,
    )


def test_available_credit_is_zero_when_used_exceeds_the_limit(make_card: Any, term: Any) -> None:
    """A card whose used amount is past its limit (a lowered limit) offers 0, not a
    negative n12 (PROTOCOL.md §3, §6: DF01 is limit - used, at least 0)."""
    card = make_card(used=100_000 + 1)
    assert term.exchange(card, m.get_data(0xDF01).to_bytes()) == (
        bytes.fromhex("DF0106") + bytes(6),
        0x9000,
    )


def test_last_ten_answers_are_kept(make_card: Any, term: Any) -> None:
    card = make_card()
    answers = []
    for _ in range(12):
        for command in (SELECT_AID, term.gpo()):
            term.exchange(card, command)
        answers.append(term.exchange(card, term.generate_ac())[0])
    kept = card.state.card.last_answers  # kept as inputs, re-made byte for byte
    assert [card.applet.answer_as_sent(a).answer for a in kept] == answers[-10:]
    data, sw = term.exchange(card, m.get_data(0xDF02).to_bytes())
    assert sw == 0x9000 and m.parse_last_answer(data) == m.LastAnswer(answers[-1], term.cdol1())


def test_power_on_and_deactivate_return_to_idle(make_card: Any, term: Any) -> None:
    card = make_card()
    for command in (SELECT_AID, term.gpo()):
        term.exchange(card, command)
    card.deactivate("field lost")
    assert card.state.phase == Phase.IDLE and card.state.card.atc == 1
    assert card.process(term.generate_ac()) == b"\x69\x85"


@pytest.mark.parametrize("reset", ["power on", "deactivate"])
def test_power_on_and_deactivate_drop_the_pending_response(
    make_card: Any, term: Any, reset: str
) -> None:
    """P§6: a reset ends the session, the rest of a chained response with it: a GET
    RESPONSE after it is 6985, nothing of the session before is answered."""
    card = make_card()
    term.exchange(card, SELECT_AID)
    assert card.process(bytes.fromhex("80CADF01")) == b"\x61\x09"  # no Le: the data waits
    if reset == "power on":
        card.power_on()
    else:
        card.deactivate("field lost")
    assert card.process(bytes.fromhex("00C0000009")) == b"\x69\x85"


def test_wrong_le_answers_6cxx_and_stores_nothing(make_card: Any, term: Any) -> None:
    store = MemoryStateStore()
    card = make_card(store=store)
    term.exchange(card, SELECT_AID)
    gpo = term.gpo()
    assert card.process(gpo[:-1] + b"\x05") == b"\x6c\x11"  # GPO answer: 17 bytes
    assert store.commits == 0 and card.state.phase == Phase.SELECTED
    response = card.process(gpo[:-1] + b"\x11")
    assert response[-2:] == b"\x90\x00" and len(response) == 19 and store.commits == 1
    genac = term.generate_ac()
    assert card.process(genac[:-1] + b"\x10") == b"\x6c\x00"  # 265 bytes: 256 or more
    assert store.commits == 1


def test_an_extended_le_shorter_than_an_answer_of_exactly_256_bytes_answers_6c00(
    profile: CardProfile, term: Any
) -> None:
    """6C00 names 256 bytes (ISO 7816-4 5.1.3), so an answer of exactly 256 bytes and an
    extended Le shorter than it is answered 6C00, nothing stored (runtime._wrong_le: only
    more than 256 bytes chain with 61xx). A 1920-bit APP key makes GENERATE AC 256 bytes."""
    env = CardEnv(profile.card_data(), generate(1920, 65537))
    assert env.answer_length == 256
    store = MemoryStateStore()
    card = CardRuntime(PaymentApplet(env), store)
    card.power_on()
    for command in (SELECT_AID, term.gpo()):
        assert term.exchange(card, command)[1] == 0x9000
    before, commits = card.state, store.commits
    genac = CommandAPDU.parse(term.generate_ac())
    assert card.process(replace(genac, le=16, extended=True).to_bytes()) == b"\x6c\x00"
    assert (card.state, store.commits) == (before, commits)
    answer = card.process(replace(genac, le=256, extended=True).to_bytes())
    assert len(answer) == 258 and answer[-2:] == b"\x90\x00" and store.commits == commits + 1


def test_get_response_in_parts(make_card: Any, term: Any) -> None:
    card = make_card()
    for command in (SELECT_AID, term.gpo()):
        term.exchange(card, command)
    first = card.process(term.generate_ac())
    assert first[-2:] == b"\x61\x09" and len(first) == 258
    part = card.process(bytes.fromhex("00C0000004"))
    assert part[-2:] == b"\x61\x05" and len(part) == 6
    last = card.process(bytes.fromhex("00C0000000"))
    assert last[-2:] == b"\x90\x00" and len(last) == 7
    assert card.process(bytes.fromhex("00C0000000")) == b"\x69\x85"


def test_256_bytes_or_more_pending_answer_6100(make_card: Any, term: Any) -> None:
    """61xx counts at most 256 bytes, as 00 (ISO 7816-4 5.1.3): 264 or 265 bytes left
    answer 6100, and a GET RESPONSE of 256 leaves the last 8 as 6108."""
    card = make_card()
    for command in (SELECT_AID, term.gpo()):
        term.exchange(card, command)
    genac = CommandAPDU.parse(term.generate_ac())
    first = card.process(replace(genac, le=1, extended=True).to_bytes())
    assert len(first) == 3 and first[-2:] == b"\x61\x00"  # 264 bytes left
    part = card.process(bytes.fromhex("00C0000000"))
    assert len(part) == 258 and part[-2:] == b"\x61\x08"
    assert card.process(bytes.fromhex("00C0000008"))[-2:] == b"\x90\x00"
    card2 = make_card()
    for command in (SELECT_AID, term.gpo()):
        term.exchange(card2, command)
    assert card2.process(term.generate_ac()[:-1]) == b"\x61\x00"  # no Le: all 265 wait


def test_an_extended_le_shorter_than_a_long_answer_chains(make_card: Any, term: Any) -> None:
    """No 6Cxx names 265 bytes: an extended Le of 16 gets 16 bytes and 61xx, and GET
    RESPONSE fetches the rest (ISO 7816-4 5.3.4); the answer is stored and sent once."""
    store = MemoryStateStore()
    card = make_card(store=store)
    for command in (SELECT_AID, term.gpo()):
        term.exchange(card, command)
    genac = CommandAPDU.parse(term.generate_ac())
    first = card.process(replace(genac, le=16, extended=True).to_bytes())
    assert len(first) == 18 and first[-2:] == b"\x61\xf9"  # 249 bytes left
    assert card.state.phase == Phase.DONE and store.commits == 2
    rest = card.process(bytes.fromhex("00C0000000"))
    assert rest[-2:] == b"\x90\x00" and len(first) - 2 + len(rest) - 2 == 265
    gpo = CommandAPDU.parse(term.gpo())
    card2 = make_card()
    term.exchange(card2, SELECT_AID)
    short_answer = card2.process(replace(gpo, le=5, extended=True).to_bytes())
    assert short_answer == b"\x6c\x11"  # 17 bytes fit a 6Cxx
    assert card2.state.phase == Phase.SELECTED


def test_a_command_without_le_is_executed_and_its_data_waits_for_get_response(
    make_card: Any, term: Any
) -> None:
    """No Le is Ne = 0 (ISO 7816-4 5.1): no data with the status; the command runs and its
    data waits behind `61xx`, as T=0 gives a case 4 command sent as case 3."""
    store = MemoryStateStore()
    card = make_card(store=store)
    with_le = card.process(SELECT_AID)
    card2 = make_card()
    assert card2.process(SELECT_AID[:-1]) == b"\x61" + bytes((len(with_le) - 2,))
    assert card2.process(bytes.fromhex("00C0000000")) == with_le
    gpo = term.gpo()
    assert card.process(gpo[:-1]) == b"\x61\x11"  # executed: the ATC is stored
    assert card.state.phase == Phase.REQUESTED and store.commits == 1
    assert card.process(bytes.fromhex("00C00000")) == b"\x61\x11"  # no Le again: still waits
    answer = card.process(bytes.fromhex("00C0000000"))
    assert answer[-2:] == b"\x90\x00" and m.parse_gpo_response(answer[:-2]).atc == 1
    record1 = card.process(bytes.fromhex("00B2010C"))  # case 1
    assert record1[0] == 0x61
    fetched = card.process(bytes.fromhex("00C0000000"))
    assert fetched == card2_record1(make_card, term)


def card2_record1(make_card: Any, term: Any) -> bytes:
    """Record 1 as a fresh card answers READ RECORD with Le 00."""
    card: CardRuntime = make_card()
    for command in (SELECT_AID, term.gpo()):
        term.exchange(card, command)
    return card.process(bytes.fromhex("00B2010C00"))


@pytest.mark.parametrize("p1p2", ["0100", "0001", "FFFF"])
def test_get_response_with_p1_p2_other_than_0000_is_6a86_and_keeps_the_rest(
    make_card: Any, term: Any, p1p2: str
) -> None:
    """ISO 7816-4 7.6.1: GET RESPONSE takes P1-P2 0000; with a response pending, any other
    P1-P2 is 6A86 (PROTOCOL.md §6) and the pending part is still there to fetch."""
    card = make_card()
    for command in (SELECT_AID, term.gpo()):
        term.exchange(card, command)
    first = card.process(term.generate_ac())
    assert first[-2:] == b"\x61\x09"
    assert card.process(bytes.fromhex(f"00C0{p1p2}09")) == b"\x6a\x86"
    rest = card.process(bytes.fromhex("00C0000009"))
    assert rest[-2:] == b"\x90\x00" and len(first[:-2] + rest[:-2]) == 265


def test_a_refused_command_keeps_the_pending_response(make_card: Any, term: Any) -> None:
    """PROTOCOL.md §6: an error changes nothing, the rest of a chained answer included."""
    card = make_card()
    for command in (SELECT_AID, term.gpo()):
        term.exchange(card, command)
    assert card.process(term.generate_ac())[-2:] == b"\x61\x09"
    assert card.process(bytes.fromhex("80CA123400")) == b"\x6a\x88"
    assert card.process(term.gpo()) == b"\x69\x85"
    assert card.process(bytes.fromhex("00C0010009")) == b"\x6a\x86"  # P1-P2 of a pending one
    assert card.process(bytes.fromhex("00C0000001AA09")) == b"\x67\x00"
    last = card.process(bytes.fromhex("00C0000009"))
    assert last[-2:] == b"\x90\x00" and len(last) == 11


def test_a_command_answered_6cxx_keeps_the_pending_response(make_card: Any, term: Any) -> None:
    """A `6Cxx` command is not executed (docs/protocol-choices.md, ISO 7816-4 5.3.4): like a
    refused one, it leaves the rest of a chained answer for GET RESPONSE."""
    card = make_card()
    for command in (SELECT_AID, term.gpo()):
        term.exchange(card, command)
    assert card.process(term.generate_ac())[-2:] == b"\x61\x09"
    assert card.process(bytes.fromhex("80CA9F3601")) == b"\x6c\x05"  # GET DATA ATC, Le 1
    last = card.process(bytes.fromhex("00C0000009"))
    assert last[-2:] == b"\x90\x00" and len(last) == 11


def test_another_command_drops_the_pending_response(make_card: Any, term: Any) -> None:
    card = make_card()
    for command in (SELECT_AID, term.gpo()):
        term.exchange(card, command)
    assert card.process(term.generate_ac())[-2] == 0x61
    assert card.process(m.get_data(0x9F36).to_bytes())[-2:] == b"\x90\x00"
    assert card.process(bytes.fromhex("00C0000009")) == b"\x69\x85"


class FailingStore(MemoryStateStore):
    """A store whose commits fail while `failing` is set."""

    failing = False

    def commit(self, state: CardState) -> None:
        if self.failing:
            raise OSError("disk full")
        super().commit(state)


def test_an_answer_whose_state_was_not_stored_is_never_sent(
    requested: Requested, term: Any
) -> None:
    store = FailingStore()
    card = requested(store)
    store.failing = True
    assert card.process(term.generate_ac()) == b"\x6f\x00"
    assert card.state.card.used == 0 and store.state.used == 0
    store.failing = False
    assert card.process(m.get_data(0xDF01).to_bytes()) == bytes.fromhex("DF01060000001000009000")


def test_a_state_that_cannot_be_stored_is_logged_once_with_the_command_header(
    make_card: Any, term: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """applet/runtime.py: a state that cannot be stored answers 6F00 with one ERROR line
    naming the command's header and Lc (its first 5 bytes) and why, and no traceback."""
    store = FailingStore()
    card = make_card(store=store)
    term.exchange(card, SELECT_AID)
    store.failing = True
    with caplog.at_level(logging.ERROR, logger="applet.runtime"):
        assert card.process(term.gpo()) == b"\x6f\x00"
    header = term.gpo()[:5].hex().upper()
    assert [(r.levelno, r.getMessage(), r.exc_info) for r in caplog.records] == [
        (logging.ERROR, f"command {header} answered 6F00: card state: disk full", None)
    ]


def test_a_command_whose_state_cannot_be_stored_changes_nothing(make_card: Any, term: Any) -> None:
    """docs/protocol-choices.md: 6F00, old state kept; PROTOCOL.md §6: an error changes
    nothing, the selected app, the phase and the pending response included."""
    store = FailingStore()
    card = make_card(store=store)
    term.exchange(card, SELECT_AID)
    assert card.process(bytes.fromhex("80CADF01")) == b"\x61\x09"  # no Le: the data waits
    before = card.state
    store.failing = True
    assert card.process(term.gpo()) == b"\x6f\x00"
    store.failing = False
    assert card.state == before and store.state == before.card
    assert card.process(bytes.fromhex("00C0000009")) == bytes.fromhex("DF01060000001000009000")
    assert card.state == before  # still SELECTED: the terminal may send its GPO again
    data, sw = term.exchange(card, term.gpo())
    assert sw == 0x9000 and m.parse_gpo_response(data).atc == 1


def test_after_a_failed_commit_the_stored_state_is_written_again_once(
    make_card: Any, term: Any
) -> None:
    """applet/runtime.py: after a failed commit the stored state is read and committed
    again before the next command (what a failed flush wrote may be in memory only), and
    only before that one: the commands after it that change nothing store nothing."""
    store = FailingStore()
    card = make_card(store=store)
    term.exchange(card, SELECT_AID)
    store.failing = True
    assert card.process(term.gpo()) == b"\x6f\x00"
    store.failing = False
    commits = store.commits
    get_atc = bytes.fromhex("80CA9F3600")
    assert card.process(get_atc) == bytes.fromhex("9F360200009000")
    assert store.commits == commits + 1
    for _ in range(3):
        assert card.process(get_atc) == bytes.fromhex("9F360200009000")
    assert store.commits == commits + 1


class StoredThenFailingStore(MemoryStateStore):
    """A store whose commits keep the state, then raise while `failing` is set (a flush
    that fails after its write)."""

    failing = False

    def commit(self, state: CardState) -> None:
        super().commit(state)
        if self.failing:
            raise OSError("flush failed")


def test_a_failed_commit_that_stored_its_state_starts_the_session_again(
    requested: Requested, term: Any
) -> None:
    """The card reads back what was stored: here the deduction, so a repeated GENERATE AC
    must not deduct again (its answer is DF02's, PROTOCOL.md §9)."""
    store = StoredThenFailingStore()
    card = requested(store)
    store.failing = True
    assert card.process(term.generate_ac()) == b"\x6f\x00"
    store.failing = False
    assert card.process(term.generate_ac()) == b"\x69\x85"
    assert card.state.phase == Phase.IDLE and card.state.card == store.state
    assert store.state.used == term.amount


def test_a_failed_commit_that_stored_its_state_drops_the_pending_response(
    make_card: Any, term: Any
) -> None:
    """applet/runtime.py: when the failed commit was stored after all, the session starts
    again from it, and the rest of a response of the session before is gone with it (a
    GET RESPONSE is 6985), so nothing of a session the card left is answered."""
    store = StoredThenFailingStore()
    card = make_card(store=store)
    term.exchange(card, SELECT_AID)
    assert card.process(bytes.fromhex("80CADF01")) == b"\x61\x09"  # no Le: the data waits
    store.failing = True
    assert card.process(term.gpo()) == b"\x6f\x00"  # the ATC was stored all the same
    store.failing = False
    assert card.process(bytes.fromhex("00C0000009")) == b"\x69\x85"
    assert card.state.phase == Phase.IDLE and card.state.card.atc == 1 == store.state.atc


class FailingFileStore(FileStateStore):
    """state.dat whose slot writes fail while `failing` is set; notes each write's thread."""

    failing = False
    threads: list[str]

    def _store_slot(self, sequence: int, slot: bytes) -> None:
        self.threads.append(threading.current_thread().name)
        if self.failing:
            raise OSError("disk full")
        super()._store_slot(sequence, slot)


@pytest.fixture
def file_store(tmp_path: Path) -> FailingFileStore:
    store = FailingFileStore(tmp_path)
    store.threads = []
    return store


Requested = Callable[[StateStore], Any]


@pytest.fixture
def requested(make_card: Any, term: Any) -> Requested:
    """`requested(store)`: a card on `store` after SELECT AID and GPO, ready for GENERATE AC."""

    def make(store: StateStore) -> Any:
        card = make_card(store=store)
        for command in setup_commands(term, "requested"):
            term.exchange(card, command)
        return card

    return make


def signing_fault(*_: object) -> bytes:
    """A signature withheld by the private operation's public-key check."""
    raise SigningFaultError("the private operation failed its public-key check")


def test_generate_ac_stores_on_the_commit_thread_and_answers_what_it_stored(
    requested: Requested, term: Any, file_store: FailingFileStore
) -> None:
    card = requested(file_store)
    answer, sw = term.exchange(card, term.generate_ac())
    assert sw == 0x9000
    assert file_store.threads == ["MainThread", "hcepay-commit"]  # GPO here, GENERATE AC there
    stored = FileStateStore(file_store.folder).load()
    assert stored.used == term.amount and stored.atc == 1
    assert card.applet.answer_as_sent(stored.last_answers[-1]).answer == answer


def _watch_prepare(
    monkeypatch: pytest.MonkeyPatch, folder: Path | None, then: Callable[[], None] | None = None
) -> tuple[list[tuple[str, int | None]], threading.Event]:
    """RsaPrivateKey.prepare, watched: (its thread, the card's stored used credit then) per
    call, and an event set after each; `then` runs in its place when given."""
    calls: list[tuple[str, int | None]] = []
    ran = threading.Event()
    real = RsaPrivateKey.prepare

    def watched(key: RsaPrivateKey) -> None:
        try:
            used = FileStateStore(folder).load().used if folder is not None else None
            calls.append((threading.current_thread().name, used))
            (then or partial(real, key))()
        finally:
            ran.set()

    monkeypatch.setattr(RsaPrivateKey, "prepare", watched)
    return calls, ran


def test_the_commit_thread_prepares_the_next_blinding_once_the_state_is_stored(
    requested: Requested, term: Any, file_store: FailingFileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After GENERATE AC's flush, while the card signs, the commit thread makes the next
    signature's blinding (authority/rsa.py prepare): after the deduction is stored."""
    card = requested(file_store)
    calls, ran = _watch_prepare(monkeypatch, file_store.folder)
    assert term.exchange(card, term.generate_ac())[1] == 0x9000
    assert ran.wait(5)
    assert calls == [("hcepay-commit", term.amount)]


def test_a_forked_child_does_not_use_the_blinding_prepared_for_its_parent(
    requested: Requested, term: Any, file_store: FailingFileStore
) -> None:
    card = requested(file_store)
    assert term.exchange(card, term.generate_ac())[1] == 0x9000
    key = card.applet.env.app_key
    deadline = time.monotonic() + 5
    while not key._spare and time.monotonic() < deadline:  # prepared after the answer
        time.sleep(0.001)
    assert len(key._spare) == 1
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: is its copy of the prepared blinding still usable?
        usable = key._spare[0][0] is rsa_module._epoch[0]
        os.write(write, b"1" if usable else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"0"
    os.close(read)
    os.waitpid(child, 0)
    assert key._spare[0][0] is rsa_module._epoch[0]  # the parent's still is


def test_a_failed_preparation_changes_nothing_of_the_answer(
    requested: Requested, term: Any, file_store: FailingFileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = requested(file_store)

    def fails() -> None:
        raise SigningFaultError("no blinding factor found")

    _, ran = _watch_prepare(monkeypatch, None, fails)
    answer, sw = term.exchange(card, term.generate_ac())
    assert sw == 0x9000 and ran.wait(5)
    stored = FileStateStore(file_store.folder).load()
    assert card.applet.answer_as_sent(stored.last_answers[-1]).answer == answer


def test_the_commit_thread_outlives_work_after_a_commit_that_raises_anything(
    tmp_path: Path,
) -> None:
    """A `then` that raises even SystemExit leaves the commit thread alive: the next commit,
    which waits for it, still returns."""
    store = FileStateStore(tmp_path)
    store.commit(CardState(atc=1))

    def exits() -> None:
        raise SystemExit(3)

    assert store.commit_while(CardState(atc=2), lambda: "signed", CardState(atc=1), exits)
    after = threading.Thread(
        target=store.commit_while,
        args=(CardState(atc=3), lambda: "signed", CardState(atc=2)),
        daemon=True,  # a dead commit thread would leave it waiting for ever
    )
    after.start()
    after.join(5)
    assert not after.is_alive()
    assert FileStateStore(tmp_path).load() == CardState(atc=3)


def test_no_preparation_after_a_failed_commit_or_in_memory(
    requested: Requested, term: Any, file_store: FailingFileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit that failed runs no work after it; a card in memory has no wait to fill."""
    calls, _ = _watch_prepare(monkeypatch, None)
    card = requested(file_store)
    file_store.failing = True
    assert card.process(term.generate_ac()) == b"\x6f\x00"
    assert term.exchange(requested(MemoryStateStore()), term.generate_ac())[1] == 0x9000
    file_store.failing = False
    (other := file_store.folder / "other").mkdir()
    card = requested(FileStateStore(other))
    assert term.exchange(card, term.generate_ac())[1] == 0x9000  # the thread's next job
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.001)
    assert calls == [("hcepay-commit", None)]  # the last card's only


def test_a_generate_ac_whose_commit_fails_sends_nothing(
    requested: Requested, term: Any, file_store: FailingFileStore
) -> None:
    card = requested(file_store)
    file_store.failing = True
    assert card.process(term.generate_ac()) == b"\x6f\x00"
    file_store.failing = False
    assert card.process(m.get_data(0xDF02).to_bytes()) == b"\x6a\x88"
    assert FileStateStore(file_store.folder).load() == CardState(atc=1)


def test_a_signature_that_fails_after_the_commit_leaves_the_state_before_it(
    requested: Requested, term: Any, file_store: FailingFileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = requested(file_store)

    monkeypatch.setattr(payment, "sign_authorization", signing_fault)
    assert card.process(term.generate_ac()) == b"\x6f\x00"
    assert file_store.threads == ["MainThread", "hcepay-commit", "MainThread"]  # put back
    assert FileStateStore(file_store.folder).load() == CardState(atc=1)
    assert card.process(m.get_data(0xDF01).to_bytes()) == bytes.fromhex("DF01060000001000009000")


def test_a_signature_withheld_once_is_made_again_after_the_commit(
    requested: Requested, term: Any, file_store: FailingFileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = requested(file_store)
    real, calls = sign_authorization, []

    def fault_once(*args: Any) -> bytes:
        calls.append(1)
        return signing_fault() if len(calls) == 1 else real(*args)

    monkeypatch.setattr(payment, "sign_authorization", fault_once)
    answer, sw = term.exchange(card, term.generate_ac())
    assert sw == 0x9000 and len(calls) == 2
    assert file_store.threads == ["MainThread", "hcepay-commit"]  # stored once, no undo
    stored = FileStateStore(file_store.folder).load()
    assert stored.used == term.amount
    assert card.applet.answer_as_sent(stored.last_answers[-1]).answer == answer


def test_when_the_undo_fails_too_the_card_holds_the_deduction_as_after_a_kill(
    requested: Requested, term: Any, file_store: FailingFileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = requested(file_store)

    def undo_fails(_: CardState) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(payment, "sign_authorization", signing_fault)
    monkeypatch.setattr(file_store, "commit", undo_fails)  # the undo is a plain commit
    assert card.process(term.generate_ac()) == b"\x6f\x00"
    monkeypatch.undo()
    stored = FileStateStore(file_store.folder).load()
    assert stored.used == term.amount  # charged, its answer never sent: a torn payment
    data, sw = term.exchange(card, m.get_data(0xDF02).to_bytes())  # the card re-reads it
    assert sw == 0x9000
    last = m.parse_last_answer(data)
    assert last.cdol1_data == term.cdol1()
    assert m.parse_generate_ac_response(last.answer).cid == 0x40


def test_a_deduction_whose_flush_failed_is_stored_before_df02_gives_its_answer(
    requested: Requested, term: Any, tmp_path: Path, disk: Any
) -> None:
    """GENERATE AC's flush fails (6F00) after its slot was written, so a read shows the
    deduction: the card stores it again before it goes on from it, else DF02 would hand out
    (and a terminal record, PROTOCOL.md §9) an approval that a power cut takes back."""
    card = requested(FileStateStore(tmp_path))
    drive = disk(tmp_path / "state.dat")
    drive.fail_flush = 1
    assert card.process(term.generate_ac()) == b"\x6f\x00"
    data, sw = term.exchange(card, m.get_data(0xDF02).to_bytes())
    assert sw == 0x9000
    assert m.parse_generate_ac_response(m.parse_last_answer(data).answer).cid == 0x40
    drive.crash()
    assert FileStateStore(tmp_path).load().used == term.amount


def test_an_undo_whose_flush_failed_is_stored_before_the_card_goes_on(
    requested: Requested,
    term: Any,
    tmp_path: Path,
    disk: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The signature fails after the deduction was stored, and putting the state before it
    back fails its flush: the card goes on from the state before (DF02: no answer, so a
    terminal closes its entry as not paid), so that state is what must survive a power cut."""
    card = requested(FileStateStore(tmp_path))
    drive = disk(tmp_path / "state.dat")
    drive.fail_flush = 2  # the deduction is flushed, the undo is not
    monkeypatch.setattr(payment, "sign_authorization", signing_fault)
    assert card.process(term.generate_ac()) == b"\x6f\x00"
    assert card.process(m.get_data(0xDF02).to_bytes()) == b"\x6a\x88"
    drive.crash()
    assert FileStateStore(tmp_path).load() == CardState(atc=1)


def test_cards_in_several_threads_share_one_commit_thread(requested: Requested, term: Any) -> None:
    def pay_once(folder: Path) -> None:
        card = requested(FileStateStore(folder))
        assert term.exchange(card, term.generate_ac())[1] == 0x9000

    with tempfile.TemporaryDirectory() as root:
        folders = [Path(root) / str(i) for i in range(6)]
        for folder in folders:
            folder.mkdir()
        workers = [threading.Thread(target=pay_once, args=(f,)) for f in folders]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert all(FileStateStore(f).load().used == term.amount for f in folders)
    names = [t.name for t in threading.enumerate()]
    assert names.count("hcepay-commit") == 1


def test_a_bug_answers_6f00(make_card: Any, term: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    card = make_card()
    term.exchange(card, SELECT_AID)

    def broken(*_: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(card.applet, "handle", broken)
    assert card.process(term.gpo()) == b"\x6f\x00"
    assert card.state.card.atc == 0


def test_a_state_file_whose_name_was_not_stored_is_made_again_before_the_card_goes_on(
    make_card: Any, term: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first commit makes state.dat; when the sync of its folder fails (6F00) the file
    is there but its name may not survive a power cut. The card goes on from what it reads
    back only once that name is stored: else a power cut after a GPO answered ATC 1 leaves
    no state.dat, and the card answers ATC 1 again (PROTOCOL.md §6)."""
    durable: set[str] = set()
    sync = home.fsync_folder
    failures = [1]

    def failing_sync(folder: Path) -> None:
        if failures[0]:
            failures[0] -= 1
            raise OSError(errno.EIO, "Input/output error")
        sync(folder)
        durable.update(os.listdir(folder))

    monkeypatch.setattr(home, "fsync_folder", failing_sync)
    card = make_card(store=FileStateStore(tmp_path))
    term.exchange(card, SELECT_AID)
    assert card.process(term.gpo()) == b"\x6f\x00"
    term.exchange(card, SELECT_AID)
    data, sw = term.exchange(card, term.gpo())
    assert sw == 0x9000 and m.parse_gpo_response(data).atc == 2
    assert "state.dat" in durable  # a power cut now keeps the file, so ATC 2 stays spent


def test_a_new_process_stores_the_state_it_answers_from(
    profile_folder: Path, term: Any, tmp_path: Path, disk: Any
) -> None:
    """GENERATE AC's flush fails (6F00) and that process ends; the next one to open the card
    reads the deduction from memory. open_card stores it before answering, else DF02 would
    hand out (and a terminal record, PROTOCOL.md §9) an approval a power cut takes back."""
    from applet.profile import open_card

    folder = tmp_path / "card"
    folder.mkdir()
    for name in ("card.json", "app.pem", "app.pub.pem"):
        shutil.copy(profile_folder / name, folder / name)
    first = open_card(folder)
    first.power_on()
    for command in setup_commands(term, "requested"):
        assert term.exchange(first, command)[1] == 0x9000
    drive = disk(folder / "state.dat")
    drive.fail_flush = 1
    assert first.process(term.generate_ac()) == b"\x6f\x00"
    second = open_card(folder)  # the next process (this one holds the folder already)
    second.power_on()
    data, sw = term.exchange(second, m.get_data(0xDF02).to_bytes())
    assert sw == 0x9000
    assert m.parse_generate_ac_response(m.parse_last_answer(data).answer).cid == 0x40
    drive.crash()
    assert FileStateStore(folder).load().used == term.amount


def test_settle_leaves_a_stored_slot_as_it_was(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    store.settle()  # no state.dat yet: nothing to do
    assert not (tmp_path / "state.dat").exists()
    store.commit(CardState(atc=3, used=40))
    store.commit(CardState(atc=4, used=40))
    before = (tmp_path / "state.dat").read_bytes()
    FileStateStore(tmp_path).settle()
    assert (tmp_path / "state.dat").read_bytes() == before
    assert FileStateStore(tmp_path).load() == CardState(atc=4, used=40)


def test_generate_ac_signs_its_own_unpredictable_number(
    make_card: Any, term: Any, env: CardEnv
) -> None:
    """docs/protocol-choices.md: the number signed is the CDOL1's; §6 compares only the
    amount and currency with the GPO's, so another number in GENERATE AC is approved."""
    from authority.authorization import open_authorization

    card = make_card()
    for command in (SELECT_AID, term.gpo()):
        assert term.exchange(card, command)[1] == 0x9000
    cdol1 = bytearray(term.cdol1())
    at = 6 + 2 + 3 + 3 + 1  # 9F37 follows 9F02, 5F2A, 9A, 9F21, 9C (PROTOCOL.md §3)
    pdol_data = CommandAPDU.parse(term.gpo()).data[2:]  # its 9F37 follows 9F02 and 5F2A
    assert cdol1[at : at + 4] == pdol_data[8:12]  # the same number as the GPO's
    cdol1[at : at + 4] = bytes.fromhex("0C0C0C0C")
    data, sw = term.exchange(card, m.generate_ac(bytes(cdol1)).to_bytes())
    assert sw == 0x9000
    answer = m.parse_generate_ac_response(data)
    signed = open_authorization(env.app_key.public, answer.authorization, bytes(cdol1))
    assert signed.unpredictable_number == bytes.fromhex("0C0C0C0C")
    assert signed.cid == 0x40
