"""The applet against a small model of PROTOCOL.md §6 (hypothesis stateful test): status
words, ATC, used credit and state after every step, over random valid and invalid commands."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from apdu import messages as m
from applet.payment import CardEnv, PaymentApplet, Phase
from applet.runtime import CardRuntime
from applet.state import CardState
from applet.store import MemoryStateStore

LIMIT = 100_000
OK, WRONG_STATE, BAD_DATA = 0x9000, 0x6985, 0x6A80
MALFORMED = [  # (command, SW): refused in every state
    (b"\x00\xa4\x04", 0x6700),
    (bytes.fromhex("80A8000010830100"), 0x6700),
    (bytes.fromhex("90B2010C00"), 0x6E00),
    (bytes.fromhex("0020008000"), 0x6D00),
    (bytes.fromhex("00A4000009F0484345504159000100"), 0x6A86),
    (bytes.fromhex("00A4040007A000000003101000"), 0x6A82),
    (bytes.fromhex("80CA9F1300"), 0x6A88),
]


HEADER_INS = (0xA4, 0xA8, 0xAE, 0xB2, 0xC0, 0xCA)
READ_ONLY: frozenset[tuple[int, int]] = frozenset({(0x00, 0xB2), (0x80, 0xCA), (0x00, 0xC0)})


def _may_succeed(command: bytes) -> bool:
    """A READ RECORD, GET DATA or GET RESPONSE with no data field: case 1 (4 bytes), short
    case 2 (5 bytes) or extended case 2 (`00` then a 2-byte Le: 7 bytes), ISO 7816-4 5.1."""
    case_1_or_2 = len(command) in (4, 5) or (len(command) == 7 and command[4] == 0)
    return case_1_or_2 and (command[0], command[1]) in READ_ONLY


# Random bytes after a real header: what a buggy terminal sends (P1-P2 and tail at random)
NEAR_MISSES = st.builds(
    lambda header, p1p2, tail: header + p1p2 + tail,
    st.sampled_from([bytes([cla, ins]) for cla in (0x00, 0x80) for ins in HEADER_INS]),
    st.sampled_from([b"\x01\x0c", b"\x02\x0c", b"\x9f\x36", b"\x00\x00"])
    | st.binary(min_size=2, max_size=2),
    st.binary(max_size=6)  # any tail, or a well-formed data field (Lc, data, maybe Le)
    | st.builds(
        lambda data, le: bytes([len(data)]) + data + le,
        st.binary(min_size=1, max_size=4),
        st.sampled_from([b"", b"\x00"]),
    ),
)


class AppletModel(RuleBasedStateMachine):
    """Model: phase, ATC, used credit, the GPO's amount and currency, answers kept."""

    env: CardEnv
    term: Any

    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStateStore()
        self.card = CardRuntime(PaymentApplet(self.env), self.store)
        self.phase = Phase.IDLE
        self.atc = 0
        self.used = 0
        self.txn: tuple[int, int] | None = None
        self.answers = 0

    @initialize(atc=st.sampled_from([0, 41, 0xFFFD]), used=st.sampled_from([0, 98_000, LIMIT]))
    def start(self, atc: int, used: int) -> None:
        self.store.commit(CardState(atc=atc, used=used))
        self.card = CardRuntime(PaymentApplet(self.env), self.store)
        self.card.power_on()
        self.atc, self.used = atc, used

    def send(self, command: bytes) -> tuple[bytes, int]:
        data, sw = self.term.exchange(self.card, command)
        return data, sw

    @rule(name=st.sampled_from([m.PPSE_NAME, m.PSE_NAME, m.CREDIT_AID]))
    def select(self, name: bytes) -> None:
        _, sw = self.send(m.select(name).to_bytes())
        assert sw == OK
        self.phase = {m.PPSE_NAME: Phase.PPSE, m.PSE_NAME: Phase.PSE}.get(name, Phase.SELECTED)
        self.txn = None

    @rule(amount=st.integers(0, 3000), currency=st.sampled_from([156, 978]), exact=st.booleans())
    def gpo(self, amount: int, currency: int, exact: bool) -> None:
        if exact:  # the boundary: amount == limit - used is approved
            amount = LIMIT - self.used
        data, sw = self.send(self.term.gpo(amount, currency))
        if self.phase != Phase.SELECTED or self.atc == 0xFFFF:
            assert sw == WRONG_STATE
            return
        assert sw == OK
        self.atc += 1
        assert m.parse_gpo_response(data).atc == self.atc
        self.phase, self.txn = Phase.REQUESTED, (amount, currency)

    @rule(same=st.booleans(), amount=st.integers(0, 3000))
    def generate_ac(self, same: bool, amount: int) -> None:
        currency = 156
        if same and self.txn is not None:
            amount, currency = self.txn
        data, sw = self.send(self.term.generate_ac(amount, currency))
        if self.phase != Phase.REQUESTED:
            assert sw == WRONG_STATE
            return
        if (amount, currency) != self.txn:
            assert sw == BAD_DATA
            return
        assert sw == OK
        answer = m.parse_generate_ac_response(data)
        approved = amount <= LIMIT - self.used
        assert answer.cid == (0x40 if approved else 0x00) and answer.atc == self.atc
        self.used += amount if approved else 0
        self.phase = Phase.DONE
        self.answers += 1

    @rule(amount=st.integers(0, 3000), exact=st.booleans(), same=st.booleans())
    def payment(self, amount: int, exact: bool, same: bool) -> None:
        """The valid path (SELECT AID, GPO, GENERATE AC), so that random runs reach it."""
        self.select(m.CREDIT_AID)
        self.gpo(amount, 156, exact)
        if self.atc < 0xFFFF or self.phase == Phase.REQUESTED:
            self.generate_ac(same, amount + 1)

    @rule(record=st.integers(1, 5))
    def read_record(self, record: int) -> None:
        _, sw = self.send(m.read_record(record).to_bytes())
        if self.phase == Phase.PSE:
            assert sw == (OK if record == 1 else 0x6A83)
        elif self.phase in (Phase.REQUESTED, Phase.DONE):
            assert sw == (OK if record <= 3 else 0x6A83)
        else:
            assert sw == WRONG_STATE

    @rule(tag=st.sampled_from([0x9F36, 0xDF01, 0xDF02]))
    def get_data(self, tag: int) -> None:
        data, sw = self.send(m.get_data(tag).to_bytes())
        if tag == 0x9F36:
            assert (data, sw) == (bytes.fromhex("9F3602") + self.atc.to_bytes(2, "big"), OK)
        elif tag == 0xDF01:
            available = f"{LIMIT - self.used:012d}"
            assert (data, sw) == (bytes.fromhex("DF0106" + available), OK)
        elif self.answers == 0:
            assert sw == 0x6A88
        else:
            assert sw == OK and m.parse_last_answer(data).answer[0] == 0x77

    @rule(case=st.sampled_from(MALFORMED))
    def malformed(self, case: tuple[bytes, int]) -> None:
        assert self.card.process(case[0]) == case[1].to_bytes(2, "big")

    @rule(near_miss=NEAR_MISSES)
    def near_miss(self, near_miss: bytes) -> None:
        """A real header with wrong parameters or data: the same rules as garbage."""
        self.garbage(near_miss)

    @rule(garbage=st.binary(max_size=12))
    def garbage(self, garbage: bytes) -> None:
        """No command of 12 bytes or fewer may change the card (SELECT's names, GPO's and
        GENERATE AC's data are longer), and only a READ RECORD, GET DATA or GET RESPONSE
        without a data field may succeed: decided here from the bytes, not from the card."""
        before = self.card.state
        response = self.card.process(garbage)
        assert len(response) >= 2
        if response[-2:] == b"\x90\x00" or response[-2] == 0x61:
            assert _may_succeed(garbage), f"{garbage.hex()} answered {response[-2:].hex()}"
        assert self.card.state == before

    @rule()
    def power_off(self) -> None:
        self.card.deactivate("field lost")
        self.phase, self.txn = Phase.IDLE, None

    @invariant()
    def matches_the_model(self) -> None:
        state = self.card.state
        assert (state.card.atc, state.card.used) == (self.atc, self.used)
        assert state.phase == self.phase
        assert self.store.state == state.card  # the durable state is what the card holds


def test_applet_follows_the_model(env: CardEnv, term: Any) -> None:
    AppletModel.env = env
    AppletModel.term = term
    run_state_machine_as_test(
        AppletModel,
        settings=settings(
            max_examples=60,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
