#!/usr/bin/env python3
"""Generate the conformance suite from vectors/profiles/test-card-1 (PROTOCOL.md §8).

    python scripts/gen_vectors.py            rewrite vectors/card/ and vectors/terminal/
    python scripts/gen_vectors.py --check    exit 1 when a committed file differs

Deterministic: fixed terminal values, a fresh in-memory card per vector, and ISO/IEC 9796-2
scheme 1 signing (deterministic). Card-side vectors are what the card must answer; the
generator also asserts each scenario's status words against PROTOCOL.md §6, the values a note
states (ATC, available credit, a 6Cxx length) and the §7 check behind each refusal, so the suite
cannot silently record a card bug. Terminal-side vectors are recorded by running the
terminal's flow against a card that alters one thing, with the verdict and reason expected.
"""

# ruff: noqa: E501  (the descriptions are data: one line each)
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apdu import messages as m  # noqa: E402
from apdu.command import CommandAPDU  # noqa: E402
from apdu.dol import fill_dol  # noqa: E402
from apdu.errors import DecodeError  # noqa: E402
from apdu.response import ResponseAPDU  # noqa: E402
from apdu.sw import (  # noqa: E402
    INS,
    SW,
    SW1_MORE_DATA,
    SW1_WRONG_LE,
)
from apdu.tlv import Tlv, tag_bytes  # noqa: E402
from apdu.tlv import constructed as tlv_constructed  # noqa: E402
from apdu.tlv import encode as tlv_encode  # noqa: E402
from apdu.tlv import primitive as tlv_primitive  # noqa: E402
from applet.card import Card  # noqa: E402
from authority.authorization import DynamicData, sign_authorization  # noqa: E402
from authority.authorization import build_recovered as build_authorization  # noqa: E402
from authority.iso9796 import HASH_SHA256  # noqa: E402
from authority.keyfiles import load_private  # noqa: E402
from authority.license import LicenseFields, account_from_digits, build_recovered  # noqa: E402
from authority.rsa import RsaPrivateKey  # noqa: E402
from reader import vectors as vx  # noqa: E402
from reader.checks import Verdict  # noqa: E402

PROFILE = "test-card-1"
PROFILES = ROOT / "vectors" / "profiles"
TERMINAL = vx.TerminalValues(bytes.fromhex("1A2B3C4D"), "261128", "120000")
AMOUNT = 1234  # 12.34 in minor units
CURRENCY = 156
MAX_CHAIN = 16
LE_MAX = 256


class Session:
    """One card session that records every command and response as a step."""

    def __init__(self, card: Card) -> None:
        self.card = card
        self.steps: list[vx.Step] = []
        card.power_on()

    def send(self, command: bytes, note: str = "") -> ResponseAPDU:
        """Send one command as it is; record the step."""
        response = self.card.process(command)
        self.steps.append(vx.Step(command, vx.Pattern.exact(response), note))
        return ResponseAPDU.parse(response)

    def exchange(self, command: bytes, note: str = "") -> ResponseAPDU:
        """Send a command, then GET RESPONSE / re-issue on 61xx / 6Cxx (P§3), bounded."""
        response = self.send(command, note)
        data = b""
        for _ in range(MAX_CHAIN):
            if response.sw1 == SW1_MORE_DATA:
                data += response.data
                response = self.send(m.get_response(response.sw2 or 256).to_bytes(), "GET RESPONSE")
            elif response.sw1 == SW1_WRONG_LE:
                command = command[:-1] + bytes([response.sw2])
                response = self.send(command, "repeated with the Le the card asked for")
            else:
                return ResponseAPDU(data + response.data, response.sw)
        raise RuntimeError("chaining did not end")


def card_for(atc: int = 0, used: int = 0) -> tuple[Card, vx.CardStart]:
    """A fresh in-process card of the test profile in the given state."""
    start = vx.CardStart(PROFILE, atc, used)
    return vx.in_process_card(start, PROFILES), start


def bcd(number: int, digits: int) -> bytes:
    """n format: packed BCD, right-justified (P§1)."""
    return bytes.fromhex(f"{number:0{digits}d}")


def values(amount: int = AMOUNT, currency: int = CURRENCY) -> dict[int, bytes]:
    """The terminal's data elements for the PDOL and CDOL1 (P§3), from terminal.json."""
    config = json.loads((PROFILES / PROFILE / "terminal.json").read_text(encoding="utf-8"))
    return {
        0x9F02: bcd(amount, 12),
        0x5F2A: bcd(currency, 4),
        0x9F37: TERMINAL.unpredictable_number,
        0x9F1A: bcd(int(config["country"]), 4),
        0x9A: bytes.fromhex(TERMINAL.date),
        0x9F21: bytes.fromhex(TERMINAL.time),
        0x9C: b"\x00",
        0x9F16: config["merchant_id"].encode("ascii"),
        0x9F1C: config["terminal_id"].encode("ascii"),
    }


def gpo(session: Session, amount: int = AMOUNT, currency: int = CURRENCY) -> ResponseAPDU:
    """GPO with the PDOL filled from the terminal's values."""
    data = fill_dol(m.PDOL, values(amount, currency))
    return session.exchange(m.gpo(data).to_bytes(), "credit payment request (GPO)")


def generate_ac(session: Session, amount: int = AMOUNT, currency: int = CURRENCY) -> ResponseAPDU:
    """GENERATE AC with the CDOL1 filled from the terminal's values."""
    data = fill_dol(m.CDOL1, values(amount, currency))
    return session.exchange(m.generate_ac(data).to_bytes(), "payment deduction request")


def select_ppse(session: Session) -> ResponseAPDU:
    return session.exchange(m.select(m.PPSE_NAME).to_bytes(), "SELECT PPSE")


def select_aid(session: Session) -> ResponseAPDU:
    return session.exchange(m.select(m.CREDIT_AID).to_bytes(), "SELECT AID")


def read_records(session: Session) -> None:
    for record in (1, 2, 3):
        ok(session.exchange(m.read_record(record).to_bytes(), f"READ RECORD {record}"))


def ok(response: ResponseAPDU) -> ResponseAPDU:
    if response.sw != SW.OK:
        raise AssertionError(f"expected 9000, the card answered {response.sw:04X}")
    return response


def holds(response: ResponseAPDU, expected_hex: str) -> None:
    """The data of a 9000 answer is exactly what P§3 and §6 make it (the ATC, the credit):
    a value the vector's note states is checked, not only recorded."""
    ok(response)
    if response.data != bytes.fromhex(expected_hex):
        raise AssertionError(f"expected {expected_hex}, the card answered {response.data.hex()}")


def expect_sw(response: ResponseAPDU, sw: int) -> None:
    if response.sw != sw:
        raise AssertionError(f"PROTOCOL.md §6 wants {sw:04X}, the card answered {response.sw:04X}")


def payment(session: Session, amount: int = AMOUNT) -> ResponseAPDU:
    ok(select_ppse(session))
    ok(select_aid(session))
    ok(gpo(session, amount))
    read_records(session)
    return ok(generate_ac(session, amount))


def cid_of(response: ResponseAPDU) -> int:
    return m.parse_generate_ac_response(response.data).cid


# ---------------------------------------------------------------------------- card side

CardScenario = Callable[[], tuple[vx.CardStart, list[vx.Step], str, bool]]
CARD: dict[str, CardScenario] = {}


def card_vector(
    name: str, description: str, atc: int = 0, used: int = 0, *, choice: bool = False
) -> Callable[[Callable[[Session], None]], Callable[[Session], None]]:
    """Register a card-side scenario: it drives a Session of a fresh card in that state.
    `choice`: it holds one of docs/protocol-choices.md, not a rule of PROTOCOL.md."""

    def register(run: Callable[[Session], None]) -> Callable[[Session], None]:
        def build() -> tuple[vx.CardStart, list[vx.Step], str, bool]:
            card, start = card_for(atc, used)
            session = Session(card)
            run(session)
            return start, session.steps, description, choice

        CARD[name] = build
        return run

    return register


@card_vector(
    "card-ppse-discovery",
    "SELECT PPSE returns the directory FCI with the credit AID, label HCE CREDIT and priority 1 (P§3 discovery).",
)
def _ppse(s: Session) -> None:
    fci = m.parse_ppse_fci(ok(select_ppse(s)).data)
    assert fci.entries[0].aid == m.CREDIT_AID


@card_vector(
    "card-pse-discovery",
    "The contact PSE is answered with its FCI (SFI 1), its directory record 1 names the credit AID, record 2 is 6A83 (P§3 discovery).",
)
def _pse(s: Session) -> None:
    fci = m.parse_pse_fci(ok(s.exchange(m.select(m.PSE_NAME).to_bytes(), "SELECT PSE")).data)
    ok(s.exchange(m.read_record(1, fci.sfi).to_bytes(), "READ RECORD 1 of the PSE directory"))
    expect_sw(
        s.exchange(m.read_record(2, fci.sfi).to_bytes(), "READ RECORD 2: none"), SW.RECORD_NOT_FOUND
    )


@card_vector(
    "card-select-aid",
    "SELECT AID returns the application FCI: AID, label, priority and the PDOL of P§3.",
)
def _select(s: Session) -> None:
    fci = m.parse_app_fci(ok(select_aid(s)).data)
    assert fci.pdol == m.pdol_bytes()


@card_vector(
    "card-select-partial-and-next",
    "As a terminal's list of AIDs does (EMV Book 1 12.3.3): SELECT with the AID's first 5 bytes answers the whole AID's FCI; SELECT of the next occurrence (P2 02) answers 6A82, the card holds one, and the app stays selected; the payment goes on (docs/protocol-choices.md).",
    choice=True,
)
def _select_partial(s: Session) -> None:
    ok(select_ppse(s))
    whole = m.select(m.CREDIT_AID)
    partial = replace(whole, data=m.CREDIT_AID[:5])
    fci = m.parse_app_fci(ok(s.exchange(partial.to_bytes(), "SELECT F048434550 (RID)")).data)
    assert fci.aid == m.CREDIT_AID, fci.aid.hex()
    following = replace(partial, p2=0x02).to_bytes()
    expect_sw(s.send(following, "SELECT next occurrence"), SW.FILE_NOT_FOUND)
    ok(gpo(s))


@card_vector(
    "card-approve-basic",
    "A complete approved payment of 12.34 CNY from ATC 0 and nothing used: GPO answers ATC 0001, the records carry the license, GENERATE AC answers CID 40 with the authorization (chained with 61xx when longer than 256 bytes).",
)
def _approve(s: Session) -> None:
    assert cid_of(payment(s)) == 0x40


@card_vector(
    "card-decline-over-limit",
    "An amount over the available credit (limit - used) is declined: CID 00, still signed, and nothing is deducted (P§6).",
    used=99_000,
)
def _decline(s: Session) -> None:
    assert cid_of(payment(s, amount=1001)) == 0x00
    available = s.exchange(
        m.get_data(m.TAG_AVAILABLE_CREDIT).to_bytes(), "available credit unchanged"
    )
    holds(available, "DF0106000000001000")  # 100000 - 99000


@card_vector(
    "card-approve-exact-limit",
    "An amount equal to the available credit is approved (amount <= limit - used, P§6), and the available credit becomes 0.",
    used=98_766,
)
def _exact(s: Session) -> None:
    assert cid_of(payment(s)) == 0x40
    available = s.exchange(
        m.get_data(m.TAG_AVAILABLE_CREDIT).to_bytes(), "available credit is now 0"
    )
    holds(available, "DF0106000000000000")


@card_vector(
    "card-chaining-le-00",
    "GENERATE AC with Le 00 and a response over 256 bytes: the card answers the first 256 bytes with 61xx, GET RESPONSE fetches the rest (P§3 chaining).",
)
def _chaining(s: Session) -> None:
    ok(select_aid(s))
    ok(gpo(s))
    command = m.generate_ac(fill_dol(m.CDOL1, values())).to_bytes()
    first = s.send(command, "GENERATE AC, Le 00")
    if first.sw1 == SW1_MORE_DATA:
        ok(s.send(m.get_response(first.sw2 or 256).to_bytes(), "GET RESPONSE"))
    else:
        ok(first)


@card_vector(
    "card-wrong-le-6c",
    "READ RECORD 1 with a non-zero Le shorter than the record: the card answers 6Cxx with the right length, and the command repeated with that Le gets the record (P§3).",
)
def _wrong_le(s: Session) -> None:
    ok(select_aid(s))
    ok(gpo(s))
    command = m.read_record(1).to_bytes()[:-1] + b"\x05"
    first = s.send(command, "READ RECORD 1 with Le 05")
    assert first.sw1 == SW1_WRONG_LE, f"{first.sw:04X}"
    again = ok(s.send(command[:-1] + bytes([first.sw2]), "READ RECORD 1 with the Le the card gave"))
    assert len(again.data) == first.sw2, "6Cxx names the record's exact length"


@card_vector(
    "card-no-le-61xx",
    "Commands without Le (GPO as case 3, READ RECORD as case 1): no Le is Ne = 0 (ISO 7816-4 5.1), so the card executes the command and answers 61xx alone; GET RESPONSE fetches the data (docs/protocol-choices.md).",
    choice=True,
)
def _no_le(s: Session) -> None:
    ok(select_aid(s))
    gpo_case4 = m.gpo(fill_dol(m.PDOL, values())).to_bytes()
    first = s.send(gpo_case4[:-1], "credit payment request (GPO) without Le")
    assert first.sw1 == SW1_MORE_DATA and not first.data, f"{first.sw:04X}"
    answer = ok(s.send(m.get_response(first.sw2 or 256).to_bytes(), "GET RESPONSE"))
    assert m.parse_gpo_response(answer.data).atc == 1, "the GPO was executed: ATC 0001"
    record = s.send(m.read_record(1).to_bytes()[:-1], "READ RECORD 1 without Le (case 1)")
    assert record.sw1 == SW1_MORE_DATA and not record.data, f"{record.sw:04X}"
    ok(s.send(m.get_response(record.sw2 or 256).to_bytes(), "GET RESPONSE"))


@card_vector(
    "card-get-data-atc",
    "GET DATA 9F36 returns the ATC as a TLV, before and after a GPO (P§3).",
    atc=41,
)
def _get_atc(s: Session) -> None:
    ok(select_aid(s))
    holds(s.exchange(m.get_data(0x9F36).to_bytes(), "ATC before GPO: 0029"), "9F36020029")
    ok(gpo(s))
    holds(s.exchange(m.get_data(0x9F36).to_bytes(), "ATC after GPO: 002A"), "9F3602002A")


@card_vector(
    "card-get-data-available-credit",
    "GET DATA DF01 returns the available credit (limit - used) as n12 (P§3).",
    used=12_345,
)
def _get_credit(s: Session) -> None:
    ok(select_aid(s))
    available = s.exchange(m.get_data(m.TAG_AVAILABLE_CREDIT).to_bytes(), "available credit")
    holds(available, "DF0106000000087655")  # 100000 - 12345


@card_vector(
    "card-get-data-unknown-tag", "GET DATA of a tag the card does not hold answers 6A88 (P§6)."
)
def _get_unknown(s: Session) -> None:
    ok(select_aid(s))
    expect_sw(
        s.exchange(m.get_data(0x9F13).to_bytes(), "GET DATA 9F13"), SW.REFERENCED_DATA_NOT_FOUND
    )


@card_vector(
    "card-get-data-last-answer",
    "GET DATA DF02 answers 6A88 before any payment, then the last GENERATE AC answer with its CDOL1 data after one (P§9).",
)
def _last_answer(s: Session) -> None:
    ok(select_aid(s))
    expect_sw(
        s.exchange(m.get_data(m.TAG_LAST_ANSWER).to_bytes(), "no answer yet"),
        SW.REFERENCED_DATA_NOT_FOUND,
    )
    payment(s)
    ok(s.exchange(m.get_data(m.TAG_LAST_ANSWER).to_bytes(), "the last answer"))


@card_vector(
    "card-get-data-last-answer-decline",
    "After an approval and then a decline, GET DATA DF02 answers the decline (CID 00, ATC 0002) with its own CDOL1 data: the last GENERATE AC answer, whichever its verdict (P§9).",
)
def _last_answer_decline(s: Session) -> None:
    assert cid_of(payment(s)) == 0x40
    over = 100_000  # more than the 987.66 left
    assert cid_of(payment(s, amount=over)) == 0x00
    last = m.parse_last_answer(
        ok(
            s.exchange(m.get_data(m.TAG_LAST_ANSWER).to_bytes(), "the last answer: the decline")
        ).data
    )
    answer = m.parse_generate_ac_response(last.answer)
    assert (answer.cid, answer.atc) == (0x00, 2), answer
    assert last.cdol1_data == fill_dol(m.CDOL1, values(over))


@card_vector(
    "card-get-data-before-select",
    "GET DATA is answered before any SELECT: the ATC, the available credit and no last answer (6A88) (docs/protocol-choices.md: read-only, every state).",
    atc=7,
    choice=True,
)
def _get_data_idle(s: Session) -> None:
    holds(s.exchange(m.get_data(0x9F36).to_bytes(), "ATC 0007, nothing selected"), "9F36020007")
    available = s.exchange(m.get_data(m.TAG_AVAILABLE_CREDIT).to_bytes(), "available credit")
    holds(available, "DF0106000000100000")
    expect_sw(
        s.exchange(m.get_data(m.TAG_LAST_ANSWER).to_bytes(), "no answer yet"),
        SW.REFERENCED_DATA_NOT_FOUND,
    )


@card_vector(
    "card-atc-progression",
    "Three payments in one session: the ATC goes 0001, 0002, 0003, one per GPO, and the available credit goes down by each approval (P§6).",
)
def _three(s: Session) -> None:
    for _ in range(3):
        assert cid_of(payment(s)) == 0x40
    holds(s.exchange(m.get_data(0x9F36).to_bytes(), "ATC is 0003"), "9F36020003")
    available = s.exchange(m.get_data(m.TAG_AVAILABLE_CREDIT).to_bytes(), "limit less 3 x 12.34")
    holds(available, "DF0106000000096298")  # 100000 - 3 x 1234


@card_vector(
    "card-new-select-restarts",
    "A SELECT AID in the middle of a payment starts again: GENERATE AC is then refused with 6985 until a new GPO (P§6 state machine).",
)
def _restart(s: Session) -> None:
    ok(select_aid(s))
    ok(gpo(s))
    ok(select_aid(s))
    expect_sw(generate_ac(s), SW.CONDITIONS_NOT_SATISFIED)
    ok(gpo(s))
    assert cid_of(ok(generate_ac(s))) == 0x40


@card_vector(
    "card-sw-wrong-length-short",
    "A command shorter than 4 bytes answers 6700 and leaves the state as it was (P§6).",
)
def _short(s: Session) -> None:
    ok(select_aid(s))
    expect_sw(s.send(b"\x00\xa4\x04", "3 bytes"), SW.WRONG_LENGTH)
    ok(gpo(s))


@card_vector(
    "card-sw-wrong-length-lc", "A command whose Lc does not match its data answers 6700 (P§6)."
)
def _lc(s: Session) -> None:
    ok(select_aid(s))
    expect_sw(
        s.send(bytes.fromhex("80A8000010830100"), "Lc 10 with 3 bytes of data"), SW.WRONG_LENGTH
    )
    ok(gpo(s))


@card_vector("card-sw-unknown-cla", "An unknown class byte answers 6E00 (P§6).")
def _cla(s: Session) -> None:
    ok(select_aid(s))
    expect_sw(s.send(bytes.fromhex("90B2010C00"), "CLA 90"), SW.CLA_NOT_SUPPORTED)


@card_vector("card-sw-unknown-ins", "An unknown instruction answers 6D00 (P§6).")
def _ins(s: Session) -> None:
    ok(select_aid(s))
    expect_sw(s.send(bytes.fromhex("0020008000"), "INS 20 (VERIFY)"), SW.INS_NOT_SUPPORTED)


@card_vector(
    "card-sw-wrong-p1p2",
    "READ RECORD with P2 not naming SFI 1 by record number answers 6A86 (P§6).",
)
def _p1p2(s: Session) -> None:
    ok(select_aid(s))
    ok(gpo(s))
    expect_sw(s.send(bytes.fromhex("00B2010000"), "READ RECORD P2 00"), SW.INCORRECT_P1P2)


@card_vector(
    "card-sw-record-not-found", "READ RECORD 4 of SFI 1 (the AFL lists 1 to 3) answers 6A83 (P§6)."
)
def _record(s: Session) -> None:
    ok(select_aid(s))
    ok(gpo(s))
    expect_sw(s.exchange(m.read_record(4).to_bytes(), "READ RECORD 4"), SW.RECORD_NOT_FOUND)


@card_vector("card-sw-aid-not-found", "SELECT of an AID the card does not hold answers 6A82 (P§6).")
def _aid(s: Session) -> None:
    expect_sw(
        s.send(m.select(bytes.fromhex("A0000000031010")).to_bytes(), "SELECT A0000000031010"),
        SW.FILE_NOT_FOUND,
    )


@card_vector("card-sw-gpo-before-select", "GPO before SELECT AID answers 6985, wrong state (P§6).")
def _gpo_state(s: Session) -> None:
    expect_sw(gpo(s), SW.CONDITIONS_NOT_SATISFIED)


@card_vector(
    "card-sw-generate-ac-before-gpo",
    "GENERATE AC after SELECT AID but before GPO answers 6985, wrong state, and the ATC does not move (P§6).",
)
def _genac_state(s: Session) -> None:
    ok(select_aid(s))
    expect_sw(generate_ac(s), SW.CONDITIONS_NOT_SATISFIED)
    holds(s.exchange(m.get_data(0x9F36).to_bytes(), "ATC still 0000"), "9F36020000")


@card_vector(
    "card-sw-second-generate-ac",
    "A second GENERATE AC after the same GPO answers 6985 and deducts nothing more (P§6).",
)
def _second(s: Session) -> None:
    payment(s)
    expect_sw(generate_ac(s), SW.CONDITIONS_NOT_SATISFIED)
    ok(s.exchange(m.get_data(m.TAG_AVAILABLE_CREDIT).to_bytes(), "one deduction only"))


@card_vector(
    "card-sw-amount-differs",
    "GENERATE AC whose amount differs from the GPO's answers 6A80, and a GENERATE AC with the GPO's amount is then accepted (P§6).",
)
def _amount(s: Session) -> None:
    ok(select_aid(s))
    ok(gpo(s))
    expect_sw(generate_ac(s, amount=AMOUNT + 1), SW.WRONG_DATA)
    assert cid_of(ok(generate_ac(s))) == 0x40


@card_vector(
    "card-sw-currency-differs",
    "GENERATE AC whose currency differs from the GPO's answers 6A80 (P§6).",
)
def _currency(s: Session) -> None:
    ok(select_aid(s))
    ok(gpo(s))
    expect_sw(generate_ac(s, currency=978), SW.WRONG_DATA)


@card_vector(
    "card-atc-last-value",
    "A card at ATC FFFE accepts one more GPO (ATC FFFF), then answers 6985 to every GPO (P§6).",
    atc=0xFFFE,
)
def _last(s: Session) -> None:
    ok(select_aid(s))
    ok(gpo(s))
    ok(select_aid(s))
    expect_sw(gpo(s), SW.CONDITIONS_NOT_SATISFIED)


@card_vector(
    "card-sw-atc-ffff",
    "A card whose ATC is FFFF answers 6985 to GPO for ever, even after a new SELECT (P§6).",
    atc=0xFFFF,
)
def _ffff(s: Session) -> None:
    ok(select_aid(s))
    expect_sw(gpo(s), SW.CONDITIONS_NOT_SATISFIED)
    ok(select_aid(s))
    expect_sw(gpo(s), SW.CONDITIONS_NOT_SATISFIED)


@card_vector(
    "card-read-records-before-gpo", "READ RECORD before GPO answers 6985, wrong state (P§6)."
)
def _rr_state(s: Session) -> None:
    ok(select_aid(s))
    expect_sw(
        s.exchange(m.read_record(1).to_bytes(), "READ RECORD 1 before GPO"),
        SW.CONDITIONS_NOT_SATISFIED,
    )


@card_vector(
    "card-sw-gpo-twice",
    "A second GPO after the first answers 6985, wrong state, and the ATC does not move: a new payment starts with SELECT AID (P§6).",
)
def _gpo_twice(s: Session) -> None:
    ok(select_aid(s))
    ok(gpo(s))
    expect_sw(gpo(s), SW.CONDITIONS_NOT_SATISFIED)
    holds(s.exchange(m.get_data(0x9F36).to_bytes(), "ATC still 0001"), "9F36020001")


@card_vector(
    "card-sw-gpo-after-generate-ac",
    "GPO after a completed GENERATE AC, with no new SELECT, answers 6985 and the ATC does not move; SELECT AID starts the next payment, whose GPO answers ATC 0002 (P§6 state machine).",
)
def _gpo_after_genac(s: Session) -> None:
    assert cid_of(payment(s)) == 0x40
    expect_sw(gpo(s), SW.CONDITIONS_NOT_SATISFIED)
    holds(s.exchange(m.get_data(0x9F36).to_bytes(), "ATC still 0001"), "9F36020001")
    ok(select_aid(s))
    assert m.parse_gpo_response(ok(gpo(s)).data).atc == 2, "ATC 0002"


@card_vector(
    "card-wrong-le-6c-gpo",
    "GPO with a non-zero Le shorter than its answer gets 6Cxx and is not executed: the ATC stays 0000; the GPO repeated with that Le answers ATC 0001 (P§3, docs/protocol-choices.md).",
    choice=True,
)
def _wrong_le_gpo(s: Session) -> None:
    ok(select_aid(s))
    command = m.gpo(fill_dol(m.PDOL, values())).to_bytes()[:-1] + b"\x05"
    first = s.send(command, "GPO with Le 05")
    assert first.sw1 == SW1_WRONG_LE, f"{first.sw:04X}"
    holds(s.exchange(m.get_data(0x9F36).to_bytes(), "ATC still 0000"), "9F36020000")
    again = ok(s.send(command[:-1] + bytes([first.sw2]), "GPO with the Le the card gave"))
    assert m.parse_gpo_response(again.data).atc == 1, "ATC 0001"


@card_vector(
    "card-sw-refusal-keeps-pending",
    "A refused command between a 61xx and its GET RESPONSE (INS 20: 6D00) changes nothing: GET RESPONSE still fetches the record (P§6: an error never changes the state; docs/protocol-choices.md).",
)
def _refusal_keeps_pending(s: Session) -> None:
    ok(select_aid(s))
    ok(gpo(s))
    first = s.send(m.read_record(1).to_bytes()[:-1], "READ RECORD 1 without Le: 61xx")
    assert first.sw1 == SW1_MORE_DATA and not first.data, f"{first.sw:04X}"
    expect_sw(s.send(bytes.fromhex("0020008000"), "INS 20 (VERIFY)"), SW.INS_NOT_SUPPORTED)
    ok(s.send(m.get_response(first.sw2 or LE_MAX).to_bytes(), "GET RESPONSE: the record"))


@card_vector(
    "card-sw-dol-data-length",
    "GPO with PDOL data one byte short and GENERATE AC with CDOL1 data one byte short answer 6700 and change nothing: the ATC stays, the payment goes on (docs/protocol-choices.md, P§6).",
)
def _dol_length(s: Session) -> None:
    ok(select_aid(s))
    short_pdol = m.gpo(fill_dol(m.PDOL, values())[:-1]).to_bytes()
    expect_sw(s.send(short_pdol, "GPO, PDOL data one byte short"), SW.WRONG_LENGTH)
    holds(s.exchange(m.get_data(0x9F36).to_bytes(), "ATC still 0000"), "9F36020000")
    ok(gpo(s))
    short_cdol1 = m.generate_ac(fill_dol(m.CDOL1, values())[:-1]).to_bytes()
    expect_sw(s.send(short_cdol1, "GENERATE AC, CDOL1 data one byte short"), SW.WRONG_LENGTH)
    assert cid_of(ok(generate_ac(s))) == 0x40


@card_vector(
    "card-sw-gpo-bad-data",
    "GPO data that is not an 83 template, or whose amount is not BCD, answers 6A80 and the ATC does not move (docs/protocol-choices.md, P§6).",
)
def _gpo_data(s: Session) -> None:
    ok(select_aid(s))
    pdol_data = fill_dol(m.PDOL, values())
    not_83 = CommandAPDU(0x80, INS.GET_PROCESSING_OPTIONS, 0, 0, b"\x84\x00", LE_MAX)
    expect_sw(s.send(not_83.to_bytes(), "GPO data 84 00: no 83 template"), SW.WRONG_DATA)
    not_bcd = m.gpo(bytes.fromhex("00000000123A") + pdol_data[6:]).to_bytes()
    expect_sw(s.send(not_bcd, "GPO amount 00000000123A: not BCD"), SW.WRONG_DATA)
    holds(s.exchange(m.get_data(0x9F36).to_bytes(), "ATC still 0000"), "9F36020000")


@card_vector(
    "card-sw-p1p2-per-command",
    "GPO with P1-P2 0100 and GENERATE AC with P1 80 (the only P1-P2 are 0000 and 5000) answer 6A86 and change nothing (P§3, §6).",
)
def _p1p2_commands(s: Session) -> None:
    ok(select_aid(s))
    command = m.gpo(fill_dol(m.PDOL, values())).to_bytes()
    expect_sw(s.send(command[:2] + b"\x01" + command[3:], "GPO P1 01"), SW.INCORRECT_P1P2)
    ok(gpo(s))
    command = m.generate_ac(fill_dol(m.CDOL1, values())).to_bytes()
    expect_sw(s.send(command[:2] + b"\x80" + command[3:], "GENERATE AC P1 80"), SW.INCORRECT_P1P2)
    assert cid_of(ok(generate_ac(s))) == 0x40


@card_vector(
    "card-sw-cla-per-command",
    "Each command takes its own class (00 for SELECT, READ RECORD, GET RESPONSE; 80 for GPO, GENERATE AC, GET DATA): GPO with CLA 00, SELECT and GET RESPONSE with CLA 80 answer 6E00, and a refused command keeps the pending part of a response (docs/protocol-choices.md, P§6).",
)
def _cla_commands(s: Session) -> None:
    ok(select_aid(s))
    command = m.gpo(fill_dol(m.PDOL, values())).to_bytes()
    expect_sw(s.send(b"\x00" + command[1:], "GPO with CLA 00"), SW.CLA_NOT_SUPPORTED)
    select = m.select(m.CREDIT_AID).to_bytes()
    expect_sw(s.send(b"\x80" + select[1:], "SELECT with CLA 80"), SW.CLA_NOT_SUPPORTED)
    ok(gpo(s))
    first = s.send(m.read_record(1).to_bytes()[:-1], "READ RECORD 1 without Le: 61xx")
    assert first.sw1 == SW1_MORE_DATA and not first.data, f"{first.sw:04X}"
    get = m.get_response(first.sw2 or LE_MAX).to_bytes()
    expect_sw(s.send(b"\x80" + get[1:], "GET RESPONSE with CLA 80"), SW.CLA_NOT_SUPPORTED)
    ok(s.send(get, "GET RESPONSE with CLA 00: the record is still there"))


@card_vector(
    "card-sw-read-record-forms",
    "READ RECORD with P1 00 (the current record, which the card does not keep) answers 6A86, with a data field (it is case 2) 6700, of SFI 2 6A83 (docs/protocol-choices.md, P§6).",
    choice=True,
)
def _read_record_forms(s: Session) -> None:
    ok(select_aid(s))
    ok(gpo(s))
    expect_sw(s.send(bytes.fromhex("00B2000C00"), "READ RECORD P1 00"), SW.INCORRECT_P1P2)
    expect_sw(s.send(bytes.fromhex("00B2010C01AA00"), "READ RECORD with data"), SW.WRONG_LENGTH)
    expect_sw(
        s.send(m.read_record(1, sfi=2).to_bytes(), "READ RECORD 1 of SFI 2"), SW.RECORD_NOT_FOUND
    )
    ok(s.exchange(m.read_record(1).to_bytes(), "READ RECORD 1"))


@card_vector(
    "card-sw-get-response-nothing-pending",
    "GET RESPONSE with no response waiting answers 6985, before any command and once the last part was fetched (docs/protocol-choices.md).",
    choice=True,
)
def _get_response_none(s: Session) -> None:
    expect_sw(
        s.send(m.get_response(LE_MAX).to_bytes(), "nothing to get"), SW.CONDITIONS_NOT_SATISFIED
    )
    first = s.send(m.select(m.CREDIT_AID).to_bytes()[:-1], "SELECT AID without Le: 61xx")
    assert first.sw1 == SW1_MORE_DATA and not first.data, f"{first.sw:04X}"
    ok(s.send(m.get_response(first.sw2 or LE_MAX).to_bytes(), "GET RESPONSE: the FCI"))
    expect_sw(
        s.send(m.get_response(LE_MAX).to_bytes(), "nothing left to get"),
        SW.CONDITIONS_NOT_SATISFIED,
    )


# Each command × each status word PROTOCOL.md names for it (docs/conformance.md's matrix).


def with_le(command: CommandAPDU, le: int | None) -> bytes:
    """The command with another Le (None: no Le field, a case 1 or 3 command)."""
    return replace(command, le=le).to_bytes()


def with_cla(command: CommandAPDU, cla: int) -> bytes:
    """The command with another class byte (P§3 gives each command its own)."""
    return replace(command, cla=cla).to_bytes()


def repeat_6c(s: Session, command: CommandAPDU, note: str) -> None:
    """The command with Le 01: 6Cxx, then repeated with Le xx: the whole answer (P§3)."""
    first = s.send(with_le(command, 1), f"{note} with Le 01")
    assert first.sw1 == SW1_WRONG_LE, f"{first.sw:04X}"
    again = s.send(with_le(command, first.sw2 or LE_MAX), f"{note} with the Le the card gave")
    if first.sw2:
        assert len(ok(again).data) == first.sw2, "6Cxx names the exact length"
    else:  # 6C00: more than 256 bytes; Le 00 gets them chained (P§3)
        assert again.sw1 == SW1_MORE_DATA, f"{again.sw:04X}"
        ok(s.send(m.get_response(again.sw2 or LE_MAX).to_bytes(), "GET RESPONSE"))


def fetch_61(s: Session, command: bytes, note: str) -> ResponseAPDU:
    """A command answered 61xx alone, then GET RESPONSE until 9000."""
    response = s.send(command, note)
    assert response.sw1 == SW1_MORE_DATA and not response.data, f"{response.sw:04X}"
    data = b""
    while response.sw1 == SW1_MORE_DATA:
        data += response.data
        response = s.send(m.get_response(response.sw2 or LE_MAX).to_bytes(), "GET RESPONSE")
    return ResponseAPDU(data + ok(response).data, response.sw)


GET_DATA_TAGS = (0x9F36, m.TAG_AVAILABLE_CREDIT, m.TAG_LAST_ANSWER)


@card_vector(
    "card-wrong-le-6c-each-command",
    "Each command whose answer fits 256 bytes, sent with Le 01, gets 6Cxx naming the answer's length; repeated with that Le it gets the answer: SELECT PPSE, PSE and AID, READ RECORD of the PSE directory and records 1-3, GET DATA 9F36 and DF01 (P§3).",
)
def _wrong_le_each(s: Session) -> None:
    repeat_6c(s, m.select(m.PPSE_NAME), "SELECT PPSE")
    repeat_6c(s, m.select(m.PSE_NAME), "SELECT PSE")
    repeat_6c(s, m.read_record(1, 1), "READ RECORD 1 of the PSE directory")
    repeat_6c(s, m.select(m.CREDIT_AID), "SELECT AID")
    ok(gpo(s))
    for record in (1, 2, 3):
        repeat_6c(s, m.read_record(record), f"READ RECORD {record}")
    for tag in (0x9F36, m.TAG_AVAILABLE_CREDIT):
        repeat_6c(s, m.get_data(tag), f"GET DATA {tag:04X}")


@card_vector(
    "card-wrong-le-6c00-long",
    "GENERATE AC with Le 01 gets 6C00 (its answer is over 256 bytes) and is not executed: nothing deducted, no last answer, the ATC stays 0001; repeated with Le 00 it approves, chained with 61xx; GET DATA DF02 with Le 01 gets 6C00 too (docs/protocol-choices.md: 6Cxx, Le shorter than data over 256 bytes).",
    choice=True,
)
def _wrong_le_long(s: Session) -> None:
    ok(select_aid(s))
    ok(gpo(s))
    command = m.generate_ac(fill_dol(m.CDOL1, values()))
    first = s.send(with_le(command, 1), "GENERATE AC with Le 01")
    assert first.sw == SW1_WRONG_LE << 8, f"{first.sw:04X}"  # 6C00: more than 256 bytes
    available = s.exchange(m.get_data(m.TAG_AVAILABLE_CREDIT).to_bytes(), "nothing deducted")
    holds(available, "DF0106000000100000")
    expect_sw(
        s.exchange(m.get_data(m.TAG_LAST_ANSWER).to_bytes(), "no answer made: 6A88"),
        SW.REFERENCED_DATA_NOT_FOUND,
    )
    holds(s.exchange(m.get_data(0x9F36).to_bytes(), "ATC still 0001"), "9F36020001")
    again = s.send(with_le(command, LE_MAX), "GENERATE AC with Le 00, as 6C00 asked")
    assert again.sw1 == SW1_MORE_DATA, f"{again.sw:04X}"
    answer = ok(s.send(m.get_response(again.sw2 or LE_MAX).to_bytes(), "GET RESPONSE"))
    assert cid_of(ResponseAPDU(again.data + answer.data, answer.sw)) == 0x40
    repeat_6c(s, m.get_data(m.TAG_LAST_ANSWER), "GET DATA DF02")


@card_vector(
    "card-no-le-each-command",
    "Every command with an answer, sent without Le, is executed and answered 61xx alone, and GET RESPONSE fetches the answer: SELECT PPSE and PSE, READ RECORD of the PSE directory and records 2-3, GENERATE AC, GET DATA of each tag; a GET RESPONSE whose Le is shorter than what is left gets that many bytes and 61xx (docs/protocol-choices.md).",
    choice=True,
)
def _no_le_each(s: Session) -> None:
    fetch_61(s, with_le(m.select(m.PPSE_NAME), None), "SELECT PPSE without Le")
    fetch_61(s, with_le(m.select(m.PSE_NAME), None), "SELECT PSE without Le")
    fetch_61(s, with_le(m.read_record(1, 1), None), "READ RECORD 1 of the PSE directory, no Le")
    ok(select_aid(s))
    ok(gpo(s))
    ok(s.exchange(m.read_record(1).to_bytes(), "READ RECORD 1"))
    for record in (2, 3):
        fetch_61(s, with_le(m.read_record(record), None), f"READ RECORD {record} without Le")
    command = with_le(m.generate_ac(fill_dol(m.CDOL1, values())), None)
    assert cid_of(fetch_61(s, command, "GENERATE AC without Le")) == 0x40
    for tag in GET_DATA_TAGS:
        fetch_61(s, with_le(m.get_data(tag), None), f"GET DATA {tag:04X} without Le")
    first = s.send(with_le(m.get_data(m.TAG_LAST_ANSWER), None), "GET DATA DF02 without Le")
    assert first.sw1 == SW1_MORE_DATA, f"{first.sw:04X}"
    part = s.send(m.get_response(16).to_bytes(), "GET RESPONSE, Le 10: a part")
    assert len(part.data) == 16 and part.sw1 == SW1_MORE_DATA, f"{part.sw:04X}"
    while part.sw1 == SW1_MORE_DATA:
        part = s.send(m.get_response(part.sw2 or LE_MAX).to_bytes(), "GET RESPONSE: the rest")
    ok(part)


@card_vector(
    "card-extended-le-whole",
    "An extended Le that allows the whole answer gets it in one response with 9000, no 61xx: GENERATE AC and GET DATA DF02, both longer than 256 bytes (docs/protocol-choices.md: extended-length APDUs).",
    choice=True,
)
def _extended(s: Session) -> None:
    ok(select_aid(s))
    ok(gpo(s))
    command = replace(m.generate_ac(fill_dol(m.CDOL1, values())), le=65536, extended=True)
    answer = ok(s.send(command.to_bytes(), "GENERATE AC, extended Le 0000"))
    assert len(answer.data) > LE_MAX and cid_of(answer) == 0x40
    last = replace(m.get_data(m.TAG_LAST_ANSWER), le=65536, extended=True)
    assert len(ok(s.send(last.to_bytes(), "GET DATA DF02, extended Le 0000")).data) > LE_MAX


@card_vector(
    "card-sw-cla-each-command",
    "Each command sent with the other class (00 and 80 swapped) answers 6E00 and changes nothing: with the PSE selected, SELECT PPSE and PSE and READ RECORD of the PSE directory; then records 1-4, GENERATE AC (then accepted with CLA 80), GET DATA of each tag and of an unknown one (P§3 classes, §6).",
)
def _cla_each(s: Session) -> None:
    ok(s.exchange(m.select(m.PSE_NAME).to_bytes(), "SELECT PSE"))  # a phone routes it first
    for name, note in ((m.PPSE_NAME, "SELECT PPSE"), (m.PSE_NAME, "SELECT PSE")):
        expect_sw(s.send(with_cla(m.select(name), 0x80), f"{note}, CLA 80"), SW.CLA_NOT_SUPPORTED)
    directory = with_cla(m.read_record(1, 1), 0x80)
    expect_sw(s.send(directory, "READ RECORD 1 of the PSE directory, CLA 80"), SW.CLA_NOT_SUPPORTED)
    ok(select_aid(s))
    ok(gpo(s))
    for record in (1, 2, 3, 4):
        other = with_cla(m.read_record(record), 0x80)
        expect_sw(s.send(other, f"READ RECORD {record}, CLA 80"), SW.CLA_NOT_SUPPORTED)
    command = m.generate_ac(fill_dol(m.CDOL1, values()))
    expect_sw(s.send(with_cla(command, 0x00), "GENERATE AC, CLA 00"), SW.CLA_NOT_SUPPORTED)
    assert cid_of(ok(generate_ac(s))) == 0x40
    for tag in (*GET_DATA_TAGS, 0x9F13):
        other = with_cla(m.get_data(tag), 0x00)
        expect_sw(s.send(other, f"GET DATA {tag:04X}, CLA 00"), SW.CLA_NOT_SUPPORTED)


@card_vector(
    "card-sw-forms-each-command",
    "Forms §3 does not use, each command: SELECT with P2 0C (no FCI) 6A86, of the next occurrence of the PPSE or PSE selected 6A82, with no name 6700; READ RECORD of the PSE directory with P1 00 6A86 and with data 6700; records 2-4 with data 6700; GET DATA of each tag with data 6700; with a response pending, GET RESPONSE with P1-P2 0100 6A86 and with data 6700, the response kept (docs/protocol-choices.md).",
    choice=True,
)
def _forms_each(s: Session) -> None:
    for name, note in ((m.PPSE_NAME, "PPSE"), (m.PSE_NAME, "PSE"), (m.CREDIT_AID, "AID")):
        no_fci = replace(m.select(name), p2=0x0C).to_bytes()
        expect_sw(s.send(no_fci, f"SELECT {note}, P2 0C"), SW.INCORRECT_P1P2)
    for name, note in ((m.PPSE_NAME, "PPSE"), (m.PSE_NAME, "PSE")):
        ok(s.exchange(m.select(name).to_bytes(), f"SELECT {note}"))
        following = replace(m.select(name), p2=0x02).to_bytes()
        expect_sw(s.send(following, f"SELECT {note}, next occurrence"), SW.FILE_NOT_FOUND)
    expect_sw(s.send(bytes.fromhex("00A4040000"), "SELECT with no name"), SW.WRONG_LENGTH)
    ok(s.exchange(m.select(m.PSE_NAME).to_bytes(), "SELECT PSE"))
    expect_sw(s.send(bytes.fromhex("00B2000C00"), "directory READ RECORD P1 00"), SW.INCORRECT_P1P2)
    with_data = replace(m.read_record(1, 1), data=b"\xaa").to_bytes()
    expect_sw(s.send(with_data, "directory READ RECORD 1 with data"), SW.WRONG_LENGTH)
    ok(select_aid(s))
    ok(gpo(s))
    for record in (2, 3, 4):
        with_data = replace(m.read_record(record), data=b"\xaa").to_bytes()
        expect_sw(s.send(with_data, f"READ RECORD {record} with data"), SW.WRONG_LENGTH)
    for tag in GET_DATA_TAGS:
        with_data = replace(m.get_data(tag), data=b"\xaa").to_bytes()
        expect_sw(s.send(with_data, f"GET DATA {tag:04X} with data"), SW.WRONG_LENGTH)
    first = s.send(with_le(m.read_record(1), None), "READ RECORD 1 without Le: 61xx")
    assert first.sw1 == SW1_MORE_DATA and not first.data, f"{first.sw:04X}"
    get = m.get_response(first.sw2 or LE_MAX)
    expect_sw(s.send(replace(get, p1=0x01).to_bytes(), "GET RESPONSE P1 01"), SW.INCORRECT_P1P2)
    with_data = replace(get, data=b"\xaa").to_bytes()
    expect_sw(s.send(with_data, "GET RESPONSE with data"), SW.WRONG_LENGTH)
    ok(s.send(get.to_bytes(), "GET RESPONSE: the record is still there"))


@card_vector(
    "card-sw-wrong-state-each-command",
    "Each command outside its state answers 6985 and changes nothing: READ RECORD 1-4 with nothing selected, records 2-4 before GPO and in the PPSE, GPO with only the PPSE selected, GENERATE AC with nothing selected; the ATC stays 0000 and the payment then goes (P§6 state machine).",
)
def _state_each(s: Session) -> None:
    for record in (1, 2, 3, 4):
        note = f"READ RECORD {record}, nothing selected"
        expect_sw(s.send(m.read_record(record).to_bytes(), note), SW.CONDITIONS_NOT_SATISFIED)
    expect_sw(generate_ac(s), SW.CONDITIONS_NOT_SATISFIED)
    ok(select_ppse(s))
    expect_sw(gpo(s), SW.CONDITIONS_NOT_SATISFIED)
    for record in (2, 3, 4):
        note = f"READ RECORD {record} in the PPSE"
        expect_sw(s.send(m.read_record(record).to_bytes(), note), SW.CONDITIONS_NOT_SATISFIED)
    ok(select_aid(s))
    for record in (2, 3, 4):
        note = f"READ RECORD {record} before GPO"
        expect_sw(s.send(m.read_record(record).to_bytes(), note), SW.CONDITIONS_NOT_SATISFIED)
    holds(s.exchange(m.get_data(0x9F36).to_bytes(), "ATC still 0000"), "9F36020000")
    assert m.parse_gpo_response(ok(gpo(s)).data).atc == 1, "ATC 0001"
    read_records(s)
    assert cid_of(ok(generate_ac(s))) == 0x40


@card_vector(
    "card-sw-errors-keep-payment",
    "Refused commands in the middle of a payment change nothing (P§6: an error never changes the state): after GPO, SELECT of an unknown AID (6A82), SELECT with P1-P2 0401 (6A86), GET DATA of an unknown tag (6A88), READ RECORD 4 (6A83) and INS 20 (6D00) leave the app selected with its GPO: the records are read and GENERATE AC approves with ATC 0001.",
)
def _errors_keep(s: Session) -> None:
    ok(select_aid(s))
    ok(gpo(s))
    unknown = m.select(bytes.fromhex("A0000000031010")).to_bytes()
    expect_sw(s.send(unknown, "SELECT A0000000031010"), SW.FILE_NOT_FOUND)
    bad_p2 = replace(m.select(m.CREDIT_AID), p2=0x01).to_bytes()
    expect_sw(s.send(bad_p2, "SELECT AID, P1-P2 0401"), SW.INCORRECT_P1P2)
    expect_sw(s.send(m.get_data(0x9F13).to_bytes(), "GET DATA 9F13"), SW.REFERENCED_DATA_NOT_FOUND)
    expect_sw(s.send(m.read_record(4).to_bytes(), "READ RECORD 4"), SW.RECORD_NOT_FOUND)
    expect_sw(s.send(bytes.fromhex("0020008000"), "INS 20 (VERIFY)"), SW.INS_NOT_SUPPORTED)
    read_records(s)
    answer = m.parse_generate_ac_response(ok(generate_ac(s)).data)
    assert (answer.cid, answer.atc) == (0x40, 1), answer


# ---------------------------------------------------------------------------- terminal side

Alter = Callable[[bytes, bytes], bytes]  # (command, whole response) -> response to send


class TamperCard:
    """A Card that alters one whole response of the real card, then chains it itself (P§3).

    The real card's 61xx parts are gathered into the whole response first, so an alteration
    can touch any byte; the altered response goes out in parts of at most Le (256 for 00).
    """

    def __init__(self, inner: Card, alter: Alter) -> None:
        self.inner = inner
        self.alter = alter
        self.pending = b""  # the rest of an altered response, with its status word
        self.seen: dict[str, bytes] = {}

    def power_on(self) -> bytes:
        self.pending = b""
        return self.inner.power_on()

    def deactivate(self, reason: str) -> None:
        self.pending = b""
        self.inner.deactivate(reason)

    def process(self, apdu: bytes) -> bytes:
        try:
            command = CommandAPDU.parse(apdu)
        except DecodeError:
            return self.inner.process(apdu)
        le = command.le or LE_MAX
        if command.ins == INS.GET_RESPONSE and self.pending:
            return self._serve(self.pending[:-2], self.pending[-2:], le)
        raw = self.inner.process(apdu)
        whole = raw[:-2]
        for _ in range(MAX_CHAIN):
            if raw[-2] != SW1_MORE_DATA:
                break
            raw = self.inner.process(m.get_response(raw[-1] or LE_MAX).to_bytes())
            whole += raw[:-2]
        if raw[-2] == SW1_WRONG_LE:
            return raw
        if command.ins == INS.READ_RECORD:
            self.seen[f"record{command.p1}"] = whole
        altered = self.alter(apdu, whole + raw[-2:])
        return self._serve(altered[:-2], altered[-2:], le)

    def _serve(self, data: bytes, sw: bytes, le: int) -> bytes:
        if len(data) <= le:
            self.pending = b""
            return data + sw
        rest = data[le:]
        self.pending = rest + sw
        return data[:le] + bytes([SW1_MORE_DATA, min(len(rest), LE_MAX) & 0xFF])


def value_span(data: bytes, tag: int) -> tuple[int, int]:
    """Where the value of the one `tag` in `data` starts and ends (BER length, P§1)."""
    raw_tag = tag_bytes(tag)
    start = data.find(raw_tag)
    assert start >= 0 and data.find(raw_tag, start + 1) < 0, f"tag {tag:X} not unique"
    at = start + len(raw_tag)
    first = data[at]
    if first < 0x80:
        return at + 1, at + 1 + first
    size = first & 0x7F
    length = int.from_bytes(data[at + 1 : at + 1 + size], "big")
    return at + 1 + size, at + 1 + size + length


def is_record(command: bytes, record: int) -> bool:
    return command[1] == INS.READ_RECORD and command[2] == record and command[3] == 0x0C


def is_ins(command: bytes, ins: int) -> bool:
    return command[1] == ins


def flip(tag: int, where: str, when: Callable[[bytes], bool]) -> Alter:
    """XOR 01 into the first, middle or last byte of the value of `tag`."""

    def alter(command: bytes, response: bytes) -> bytes:
        if not when(command) or response[-2:] != b"\x90\x00":
            return response
        start, end = value_span(response, tag)
        offset = {"start": start, "middle": (start + end) // 2, "end": end - 1}[where]
        return response[:offset] + bytes([response[offset] ^ 1]) + response[offset + 1 :]

    return alter


def replace_value(tag: int, value: bytes, when: Callable[[bytes], bool]) -> Alter:
    """Put another value of the same length in place of `tag`'s."""

    def alter(command: bytes, response: bytes) -> bytes:
        if not when(command):
            return response
        start, end = value_span(response, tag)
        assert len(value) == end - start
        return response[:start] + value + response[end:]

    return alter


def answer(when: Callable[[bytes], bool], make: Callable[[bytes], bytes]) -> Alter:
    """Answer `make(response)` in place of the real response."""
    return lambda command, response: make(response) if when(command) else response


class Keys:
    """The profile's published test keys and card description."""

    def __init__(self) -> None:
        folder = PROFILES / PROFILE
        self.ca = load_private(folder / "ca-01.pem", published_test_key=True)
        self.app = load_private(folder / "app.pem", published_test_key=True)
        self.card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
        self.account = account_from_digits(self.card["account"])


def raw_sign(key: RsaPrivateKey, recovered: bytes) -> bytes:
    """X^d mod n of any X (iso9796.sign refuses an X without 6A .. BC, which a vector needs)."""
    return key.private_op(int.from_bytes(recovered, "big")).to_bytes(key.public.size, "big")


def license_record(
    keys: Keys, tamper: TamperCard, poke: dict[int, int] | None = None, **changes: object
) -> bytes:
    """Record 2 with a license re-issued by the test authority with `changes` (P§5.1), and
    the recovered data's bytes at `poke`'s offsets set before it is signed."""
    record1 = tamper.seen["record1"]
    _, value = m.parse_record1(record1)
    expiry = keys.card["expiry"]
    fields = LicenseFields(
        account=keys.account,
        expiry=bytes.fromhex(expiry[2:4] + expiry[0:2]),
        serial=int(keys.card["serial"]),
        hash_algorithm=HASH_SHA256,
        app_key=keys.app.public,
    )
    fields = replace(fields, **changes)  # type: ignore[arg-type]
    algorithm = fields.hash_algorithm
    built = build_recovered(replace(fields, hash_algorithm=HASH_SHA256), keys.ca.public.size, value)
    recovered = bytearray(built.license)
    recovered[17] = algorithm  # header, format, account 10, expiry 2, serial 3, then the algorithm
    for offset, byte in (poke or {}).items():
        recovered[offset] = byte
    signed = raw_sign(keys.ca, bytes(recovered))
    return m.build_record2(m.Record2(signed)) + b"\x90\x00"


def authorization_answer(keys: Keys, cdol1: bytes, **changes: object) -> Callable[[bytes], bytes]:
    """A GENERATE AC answer re-signed by the APP key over altered dynamic data (P§5.2)."""

    def make(response: bytes) -> bytes:
        answer_ = m.parse_generate_ac_response(response[:-2])
        dynamic = DynamicData(
            atc=answer_.atc,
            cid=answer_.cid,
            amount=AMOUNT,
            currency=CURRENCY,
            unpredictable_number=TERMINAL.unpredictable_number,
            account=keys.account,
        )
        dynamic = replace(dynamic, **changes)  # type: ignore[arg-type]
        signed = sign_authorization(keys.app, dynamic, cdol1)
        return m.build_generate_ac_response(replace(answer_, authorization=signed)) + b"\x90\x00"

    return make


def crafted_answer(
    keys: Keys,
    cdol1: bytes,
    *,
    poke: dict[int, int] | None = None,
    hash_algorithm: int = HASH_SHA256,
    hashed_cdol1: bytes | None = None,
) -> Callable[[bytes], bytes]:
    """A GENERATE AC answer whose authorization the APP key signs over the transaction's own
    dynamic data, with one thing wrong (P§5.2): the recovered data's bytes at `poke`'s
    offsets set after it is built, another hash algorithm, or the hash over `hashed_cdol1`."""

    def make(response: bytes) -> bytes:
        answer_ = m.parse_generate_ac_response(response[:-2])
        dynamic = DynamicData(
            answer_.atc, answer_.cid, AMOUNT, CURRENCY, TERMINAL.unpredictable_number, keys.account
        )
        hashed = cdol1 if hashed_cdol1 is None else hashed_cdol1
        recovered = bytearray(
            build_authorization(dynamic, keys.app.public.size, hashed, hash_algorithm)
        )
        for offset, value in (poke or {}).items():
            recovered[offset] = value
        signed = raw_sign(keys.app, bytes(recovered))
        return m.build_generate_ac_response(replace(answer_, authorization=signed)) + b"\x90\x00"

    return make


def swap_cdol1(response: bytes) -> bytes:
    """Record 1 with the CDOL1's `9C 01` and `9F37 04` entries swapped (the same length)."""
    start, end = value_span(response, 0x8C)
    cdol1 = m.cdol1_bytes()
    swapped = cdol1.replace(bytes.fromhex("9C019F3704"), bytes.fromhex("9F37049C01"))
    assert swapped != cdol1 and response[start:end] == cdol1
    return response[:start] + swapped + response[end:]


def gpo_template(*children: Tlv) -> bytes:
    return tlv_encode(tlv_constructed(0x77, *children)) + b"\x90\x00"


@dataclass(frozen=True)
class TerminalScenario:
    """One terminal-side vector: what the card alters, what the terminal must decide."""

    name: str
    description: str
    verdict: Verdict
    alter: Callable[[Keys, TamperCard], Alter] | None = None
    used: int = 0
    amount: int = AMOUNT
    authority_expires: str | None = None
    revoked: tuple[int, ...] = ()
    logged_atc: int | None = None
    torn: Callable[[Card], tuple[str, int, bytes, int | None]] | None = None  # P§9: before
    closes: str = ""  # what must close the torn transaction's pending entry


TORN = {0x9F37: bytes.fromhex("0BADCAFE"), 0x9F21: bytes.fromhex("115900")}  # an earlier contact


def torn_payment(
    card: Card, amount: int = AMOUNT, *, generate_ac: bool = True, then: int = 0
) -> tuple[str, int, bytes, int | None]:
    """A payment at 11:59:00 whose answer the terminal never had (P§9), and `then` whole
    payments after it: the terminal's pending entry (account, ATC, CDOL1 data, and the
    license serial it checked before GENERATE AC)."""
    session = Session(card)
    torn = {**values(amount), **TORN}
    ok(select_ppse(session))
    ok(select_aid(session))
    gpo_answer = ok(session.exchange(m.gpo(fill_dol(m.PDOL, torn)).to_bytes()))
    read_records(session)
    cdol1 = fill_dol(m.CDOL1, torn)
    if generate_ac:
        ok(session.exchange(m.generate_ac(cdol1).to_bytes()))
    for _ in range(then):
        payment(session)
    card.deactivate("the card left the field")
    card_json = json.loads((PROFILES / PROFILE / "card.json").read_text(encoding="utf-8"))
    atc = m.parse_gpo_response(gpo_answer.data).atc
    return card_json["account"], atc, cdol1, int(card_json["serial"])


def is_last_answer(command: bytes) -> bool:
    return command[:4] == m.get_data(m.TAG_LAST_ANSWER).to_bytes()[:4]


def terminal_scenarios(keys: Keys) -> list[TerminalScenario]:
    """The terminal-side suite: the two verdicts and each refusal of P§7."""
    cdol1 = fill_dol(m.CDOL1, values())
    refused = Verdict.REFUSED
    genac: Callable[[bytes], bool] = lambda c: is_ins(c, INS.GENERATE_AC)  # noqa: E731
    gpo_: Callable[[bytes], bool] = lambda c: is_ins(c, INS.GET_PROCESSING_OPTIONS)  # noqa: E731
    rec: Callable[[int], Callable[[bytes], bool]] = lambda n: lambda c: is_record(c, n)  # noqa: E731
    atc = tlv_primitive(0x9F36, b"\x00\x01")
    aip, afl = tlv_primitive(0x82, m.AIP), tlv_primitive(0x94, m.AFL)
    s = TerminalScenario
    return [
        s(
            "terminal-approve",
            "An honest card approves 12.34 CNY: every check of P§7 passes, the terminal approves and logs one row.",
            Verdict.APPROVED,
        ),
        s(
            "terminal-decline",
            "An honest card declines an amount over its available credit with a signed CID 00: the terminal reports a decline (P§5.2).",
            Verdict.DECLINED,
            used=99_000,
            amount=1001,
        ),
        s(
            "terminal-unknown-index",
            "Record 1 names authority key index 02, which the terminal does not hold: refused (P§7 check 2).",
            refused,
            lambda k, t: replace_value(0x8F, b"\x02", rec(1)),
        ),
        s(
            "terminal-expired-authority-key",
            "The terminal's authority key 01 expired before the transaction date: refused (P§7 check 2).",
            refused,
            authority_expires="2020-01-31",
        ),
        s(
            "terminal-license-byte-start",
            "The first byte of the license 9F46 is changed: its recovered data is wrong, refused (P§7 check 3).",
            refused,
            lambda k, t: flip(0x9F46, "start", rec(2)),
        ),
        s(
            "terminal-license-byte-middle",
            "A middle byte of the license 9F46 is changed: refused (P§7 check 3).",
            refused,
            lambda k, t: flip(0x9F46, "middle", rec(2)),
        ),
        s(
            "terminal-license-byte-end",
            "The last byte of the license 9F46 is changed: refused (P§7 check 3).",
            refused,
            lambda k, t: flip(0x9F46, "end", rec(2)),
        ),
        s(
            "terminal-license-short",
            "The license is one byte shorter than N_CA: refused (P§7 check 3).",
            refused,
            lambda k, t: answer(
                rec(2),
                lambda r: (
                    m.build_record2(m.Record2(m.parse_record2(r[:-2]).license[:-1])) + b"\x90\x00"
                ),
            ),
        ),
        s(
            "terminal-license-sha1",
            "A license signed by the authority with hash algorithm 01 (SHA-1), which the terminal does not enable: refused (P§5, §7 check 3).",
            refused,
            lambda k, t: answer(rec(2), lambda r: license_record(k, t, hash_algorithm=0x01)),
        ),
        s(
            "terminal-license-unknown-hash",
            "A license signed by the authority naming hash algorithm 07, which does not exist: refused (P§7 check 3).",
            refused,
            lambda k, t: answer(rec(2), lambda r: license_record(k, t, hash_algorithm=0x07)),
        ),
        s(
            "terminal-license-account-mismatch",
            "A license validly signed for another account than record 1's 5A: refused (P§7 check 3).",
            refused,
            lambda k, t: answer(
                rec(2),
                lambda r: license_record(k, t, account=account_from_digits("6200999999999999")),
            ),
        ),
        s(
            "terminal-license-expired",
            "A license validly signed but expired in January 2020: refused (P§7 check 3).",
            refused,
            lambda k, t: answer(rec(2), lambda r: license_record(k, t, expiry=b"\x01\x20")),
        ),
        s(
            "terminal-license-revoked",
            "The license serial is on the terminal's revoked list: refused (P§7 check 3).",
            refused,
            revoked=(int(keys.card["serial"]),),
        ),
        s(
            "terminal-record1-changed",
            "A byte of the holder name in record 1 is changed: the license hash covers record 1, refused (P§5.1, §7 check 3).",
            refused,
            lambda k, t: flip(0x5F20, "start", rec(1)),
        ),
        s(
            "terminal-authorization-byte-start",
            "The first byte of the authorization 9F4B is changed: refused (P§7 check 4).",
            refused,
            lambda k, t: flip(0x9F4B, "start", genac),
        ),
        s(
            "terminal-authorization-byte-middle",
            "A middle byte of the authorization 9F4B is changed: refused (P§7 check 4).",
            refused,
            lambda k, t: flip(0x9F4B, "middle", genac),
        ),
        s(
            "terminal-authorization-byte-end",
            "The last byte of the authorization 9F4B is changed: refused (P§7 check 4).",
            refused,
            lambda k, t: flip(0x9F4B, "end", genac),
        ),
        s(
            "terminal-atc-mismatch",
            "GENERATE AC answers ATC 0002 after the GPO's 0001: refused (P§7 check 4).",
            refused,
            lambda k, t: replace_value(0x9F36, b"\x00\x02", genac),
        ),
        s(
            "terminal-signed-atc-mismatch",
            "The authorization is validly signed over ATC 0002 while 9F36 and the GPO say 0001: refused (P§7 check 4).",
            refused,
            lambda k, t: answer(genac, authorization_answer(k, cdol1, atc=2)),
        ),
        s(
            "terminal-cid-mismatch",
            "GENERATE AC answers CID 00 while the authorization signs 40: refused (P§7 check 4).",
            refused,
            lambda k, t: replace_value(0x9F27, b"\x00", genac),
        ),
        s(
            "terminal-amount-mismatch",
            "The authorization is validly signed over amount 12.35 for a 12.34 transaction: refused (P§7 check 4).",
            refused,
            lambda k, t: answer(genac, authorization_answer(k, cdol1, amount=AMOUNT + 1)),
        ),
        s(
            "terminal-currency-mismatch",
            "The authorization is validly signed over currency 978 for a 156 transaction: refused (P§7 check 4).",
            refused,
            lambda k, t: answer(genac, authorization_answer(k, cdol1, currency=978)),
        ),
        s(
            "terminal-un-mismatch",
            "The authorization is validly signed over another unpredictable number (an old answer): refused (P§7 check 4).",
            refused,
            lambda k, t: answer(
                genac, authorization_answer(k, cdol1, unpredictable_number=b"\xde\xad\xbe\xef")
            ),
        ),
        s(
            "terminal-authorization-account-mismatch",
            "The authorization is validly signed over another account id: refused (P§7 check 4).",
            refused,
            lambda k, t: answer(
                genac,
                authorization_answer(k, cdol1, account=account_from_digits("6200999999999999")),
            ),
        ),
        s(
            "terminal-authorization-other-cdol1",
            "The authorization is validly signed over the transaction's dynamic data, but its hash covers other CDOL1 data (the time 120001) than the terminal sent: refused (P§5.2, §7 check 4).",
            refused,
            lambda k, t: answer(
                genac,
                crafted_answer(
                    k,
                    cdol1,
                    hashed_cdol1=fill_dol(m.CDOL1, {**values(), 0x9F21: bytes.fromhex("120001")}),
                ),
            ),
        ),
        s(
            "terminal-authorization-format-04",
            "The authorization's recovered data is validly signed but of format 04, not 05: refused (P§5.2, §7 check 4).",
            refused,
            lambda k, t: answer(genac, crafted_answer(k, cdol1, poke={1: 0x04})),
        ),
        s(
            "terminal-authorization-trailer",
            "The authorization's recovered data is validly signed but ends in BD, not BC: refused (P§5, §7 check 4).",
            refused,
            lambda k, t: answer(genac, crafted_answer(k, cdol1, poke={-1: 0xBD})),
        ),
        s(
            "terminal-authorization-sha1",
            "The authorization is validly signed with hash algorithm 01 (SHA-1), which the terminal does not enable: refused (P§5, §7 check 4).",
            refused,
            lambda k, t: answer(genac, crafted_answer(k, cdol1, hash_algorithm=0x01)),
        ),
        s(
            "terminal-authorization-short",
            "9F4B is one byte shorter than N_APP (its TLV length says so): refused (P§7 check 4).",
            refused,
            lambda k, t: answer(
                genac,
                lambda r: (
                    m.build_generate_ac_response(
                        replace(
                            parsed := m.parse_generate_ac_response(r[:-2]),
                            authorization=parsed.authorization[1:],
                        )
                    )
                    + b"\x90\x00"
                ),
            ),
        ),
        s(
            "terminal-license-format-05",
            "The license's recovered data is validly signed by the authority but of format 05, not 04: refused (P§5.1, §7 check 3).",
            refused,
            lambda k, t: answer(rec(2), lambda r: license_record(k, t, poke={1: 0x05})),
        ),
        s(
            "terminal-license-trailer",
            "The license's recovered data is validly signed by the authority but ends in BD, not BC: refused (P§5, §7 check 3).",
            refused,
            lambda k, t: answer(rec(2), lambda r: license_record(k, t, poke={-1: 0xBD})),
        ),
        s(
            "terminal-replayed-authorization",
            "The log already holds this account with ATC 0001: the same (account, ATC) is refused as a replay and not stored twice (P§7 check 5).",
            refused,
            logged_atc=1,
        ),
        s(
            "terminal-torn-recorded",
            "A pending entry holds a payment of 12.34 at ATC 0001 torn at 11:59 (the card approved it, the terminal never had the answer); the card started at ATC 0 with nothing used. At this contact the terminal reads GET DATA DF02 after SELECT AID, records the torn payment once, then pays 12.34 at ATC 0002: two rows (P§9).",
            Verdict.APPROVED,
            torn=torn_payment,
            closes="recorded",
        ),
        s(
            "terminal-torn-no-answer",
            "A pending entry holds ATC 0001, but the card never had the GENERATE AC (it left the field after the records): DF02 answers 6A88 and the entry closes as not paid; this contact's payment is made (P§9).",
            Verdict.APPROVED,
            torn=lambda card: torn_payment(card, generate_ac=False),
            closes="not paid: the card holds no last answer (6A88)",
        ),
        s(
            "terminal-torn-declined",
            "The torn payment at ATC 0001 was declined by the card (over its credit, nothing deducted): its signed answer matches the pending entry and verifies, so it is recorded once with CID 00, as an untorn decline is, then this contact pays 12.34 at ATC 0002: two rows (P§9).",
            Verdict.APPROVED,
            torn=lambda card: torn_payment(card, 100_001),
            closes="recorded",
        ),
        s(
            "terminal-torn-other-transaction",
            "The torn payment at ATC 0001 was followed by another payment elsewhere (ATC 0002): the card's last answer is not the pending entry's, which closes as not paid; it is never recorded from another transaction's answer (P§9).",
            Verdict.APPROVED,
            torn=lambda card: torn_payment(card, then=1),
            closes="not paid: the card's last answer is for another transaction",
        ),
        s(
            "terminal-torn-not-verified",
            "The card's last answer (DF02) for the torn payment at ATC 0001 carries an authorization with a byte changed: it does not verify, the entry closes as not paid and nothing is recorded for it (P§9).",
            Verdict.APPROVED,
            lambda k, t: flip(0x9F4B, "middle", is_last_answer),
            torn=torn_payment,
            closes="not paid: the last answer's authorization does not verify",
        ),
        s(
            "terminal-torn-license-revoked-since",
            "The torn payment at ATC 0001 was approved while its license was good; the license serial has been revoked since. The torn payment is judged as it stood when it was sent and recorded once; this contact's payment is refused (P§9, §7 check 3): one row.",
            refused,
            revoked=(int(keys.card["serial"]),),
            torn=torn_payment,
            closes="recorded",
        ),
        s(
            "terminal-truncated-record",
            "Record 1 is cut short by 5 bytes (status 9000 kept): refused (P§7 check 1).",
            refused,
            lambda k, t: answer(rec(1), lambda r: r[:-7] + r[-2:]),
        ),
        s(
            "terminal-truncated-generate-ac",
            "The GENERATE AC answer is cut short by 10 bytes: refused (P§7 check 1).",
            refused,
            lambda k, t: answer(genac, lambda r: r[:-12] + r[-2:]),
        ),
        s(
            "terminal-missing-tag",
            "The GPO answer lacks the ATC 9F36: refused (P§7 check 1).",
            refused,
            lambda k, t: answer(gpo_, lambda r: gpo_template(aip, afl)),
        ),
        s(
            "terminal-repeated-tag",
            "The GPO answer holds the ATC 9F36 twice: refused (P§7 check 1).",
            refused,
            lambda k, t: answer(gpo_, lambda r: gpo_template(aip, afl, atc, atc)),
        ),
        s(
            "terminal-wrong-template",
            "READ RECORD 2 answers its license in template 77 instead of 70: refused (P§4, §7 check 1).",
            refused,
            lambda k, t: answer(rec(2), lambda r: b"\x77" + r[1:]),
        ),
        s(
            "terminal-afl-other",
            "The GPO answer's AFL 94 lists records 1 to 4 (08010401), not P§4's 08010301: refused before any record is read (docs/protocol-choices.md, P§7 check 1).",
            refused,
            lambda k, t: answer(
                gpo_,
                lambda r: gpo_template(aip, tlv_primitive(0x94, bytes.fromhex("08010401")), atc),
            ),
        ),
        s(
            "terminal-cdol1-order",
            "Record 1's CDOL1 8C lists P§3's entries with 9F37 and 9C swapped: refused before the license is opened, since the log and P§9 read CDOL1 data by P§3's layout (docs/protocol-choices.md, P§7 check 1).",
            refused,
            lambda k, t: answer(rec(1), lambda r: swap_cdol1(r)),
        ),
        s(
            "terminal-non-9000-record",
            "READ RECORD 3 answers 6A83: refused (P§7 check 1).",
            refused,
            lambda k, t: answer(rec(3), lambda r: b"\x6a\x83"),
        ),
        s(
            "terminal-non-9000-generate-ac",
            "GENERATE AC answers 6985: refused (P§7 check 1).",
            refused,
            lambda k, t: answer(genac, lambda r: b"\x69\x85"),
        ),
    ]


CHECKS = (  # which check of P§7 each refusal must come from, by name (first match wins)
    (("replayed",), 5),
    (("truncated", "missing", "repeated", "non-9000", "template", "afl-", "cdol1-order"), 1),
    (("unknown-index", "expired-authority"), 2),
    (("license", "record1"), 3),
    (("authorization", "atc-", "cid-", "amount-", "currency-", "un-"), 4),
)


def expected_check(name: str) -> int:
    """The P§7 check a terminal-side refusal scenario must fail (0 for a verdict)."""
    for words, check in CHECKS:
        if any(word in name for word in words):
            return check
    return 0


def build_terminal_vectors() -> dict[str, vx.Vector]:
    """Every terminal-side vector: the terminal's flow against a card that alters one thing."""
    keys = Keys()
    out: dict[str, vx.Vector] = {}
    for scenario in terminal_scenarios(keys):
        card, start = card_for(used=scenario.used)
        torn = (scenario.torn(card),) if scenario.torn is not None else ()
        tamper = TamperCard(card, lambda c, r: r)
        if scenario.alter is not None:
            tamper.alter = scenario.alter(keys, tamper)
        logged = ((keys.card["account"], scenario.logged_atc),) if scenario.logged_atc else ()
        values_ = replace(
            TERMINAL,
            amount=scenario.amount,
            currency=CURRENCY,
            authority_expires=scenario.authority_expires,
            revoked=scenario.revoked,
            logged=logged,
            pending=torn,
        )
        draft = vx.Vector(scenario.name, scenario.description, (), start, values_)
        run = vx.record_terminal(draft, PROFILES, tamper)
        if run.verdict is not scenario.verdict:
            raise AssertionError(
                f"{scenario.name}: the terminal decided {run.verdict} ({run.reason})"
            )
        if run.log_problem:
            raise AssertionError(f"{scenario.name}: {run.log_problem}")
        if run.pending != ((scenario.closes,) if torn else ()):
            raise AssertionError(f"{scenario.name}: the pending entry closed as {run.pending}")
        check = expected_check(scenario.name)
        if scenario.verdict is Verdict.REFUSED and not check:
            raise AssertionError(f"{scenario.name}: no check of P§7 named for it in CHECKS")
        if check and not run.reason.startswith(f"check {check}:"):
            raise AssertionError(f"{scenario.name}: refused by {run.reason!r}, not check {check}")
        out[scenario.name] = replace(
            draft,
            steps=run.steps,
            expect=vx.Expect(run.verdict, run.reason, run.pending if torn else None),
        )
    return out


# ---------------------------------------------------------------------------- the suite


def build_card_vectors() -> dict[str, vx.Vector]:
    """Every card-side vector, by file name."""
    out: dict[str, vx.Vector] = {}
    for name, build in CARD.items():
        start, steps, description, choice = build()
        extra = {vx.CHOICE_KEY: True} if choice else {}
        out[name] = vx.Vector(name, description, tuple(steps), start, TERMINAL, extra=extra)
    return out


def build_all() -> dict[Path, str]:
    """Every vector file's path (relative to ROOT) and text."""
    files: dict[Path, str] = {}
    for name, vector in build_card_vectors().items():
        files[Path("vectors/card") / f"{name}.json"] = vx.dumps(vector)
    for name, vector in build_terminal_vectors().items():
        files[Path("vectors/terminal") / f"{name}.json"] = vx.dumps(vector)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    files = build_all()
    stale = []
    for relative, text in files.items():
        path = ROOT / relative
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(relative)
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    for folder in ("vectors/card", "vectors/terminal"):
        for path in sorted((ROOT / folder).rglob("*.json")):
            if path.relative_to(ROOT) not in files:
                stale.append(path.relative_to(ROOT))
                if not args.check:
                    path.unlink()
    verb = "differ" if args.check else "written"
    print(f"{len(files)} vectors; {len(stale)} {verb}: {', '.join(map(str, stale)) or 'none'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
