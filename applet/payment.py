"""The credit payment applet: one transition table, sans-IO (PROTOCOL.md §3, §4, §6, §9).

A handler takes (command, state, env) and returns (response data, new state), or raises a
CardError whose status word the runtime answers, leaving the state as it was. The runtime
(applet/runtime.py) stores the durable part of a new state before the response leaves.

Choices (PROTOCOL.md leaves them open): checks run CLA, INS, state, P1-P2, length, data,
in that order; READ RECORD of another SFI or record is `6A83`; GET DATA is answered in every
state; a GPO or GENERATE AC whose data has the wrong size is `6700`, whose data is not BCD
or not an `83` template is `6A80`; every GENERATE AC answer (approval or decline) joins the
last-10 list; the authorization signs the unpredictable number of the CDOL1 data.

GENERATE AC returns its answer as a `SignedAnswer`: the state it returns keeps the answer as
its inputs (applet/state.py), so the runtime stores that state while `make()` signs, and the
answer still leaves only once both are done. GET DATA DF02 re-makes the newest answer from
its inputs, byte for byte (ISO 9796-2 scheme 1 is deterministic, PROTOCOL.md §8).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from functools import partial
from typing import Final

from apdu import messages as m
from apdu import tlv
from apdu.command import CommandAPDU
from apdu.dol import dol_slices
from apdu.errors import DecodeError
from apdu.sw import INS
from applet.errors import (
    ClaNotSupported,
    ConditionsNotSatisfied,
    FileNotFound,
    IncorrectP1P2,
    InsNotSupported,
    RecordNotFound,
    ReferencedDataNotFound,
    WrongData,
    WrongLength,
)
from applet.state import (
    CDOL1_DATA_LENGTH,
    CDOL1_SLICES,
    MAX_ATC,
    AnswerInputs,
    CardState,
    KeptAnswer,
)
from authority.authorization import DynamicData, bcd, from_bcd, sign_authorization
from authority.iso9796 import HASH_SHA256
from authority.license import pad_account
from authority.rsa import RsaPrivateKey


class Cla(IntEnum):
    """Class bytes the app takes (ISO 7816-4 5.4.1: 00 interindustry, 80 proprietary)."""

    ISO = 0x00
    PROPRIETARY = 0x80


class Phase(IntEnum):
    """PROTOCOL.md §6 states; PPSE and PSE are IDLE with a directory selected (discovery)."""

    IDLE = 0
    PPSE = 1
    PSE = 2
    SELECTED = 3
    REQUESTED = 4
    DONE = 5


class Cid(IntEnum):
    """Cryptogram information data `9F27` (PROTOCOL.md §5.2)."""

    DECLINED = 0x00
    APPROVED = 0x40


TAG_ATC: Final = 0x9F36
SELECT_BY_NAME: Final = 0x04
SELECT_FIRST_FCI: Final = 0x00
SELECT_NEXT_FCI: Final = 0x02
MIN_PARTIAL_AID: Final = 5  # a RID (ISO/IEC 7816-5): the shortest name a terminal AID has
GENERATE_AC_P1: Final = 0x50
READ_RECORD_BY_NUMBER: Final = 0x04  # P2 low bits: P1 is a record number (ISO 7816-4 7.3.3)
DIRECTORY_SFI: Final = 1
APP_RECORDS: Final = 3
PRIORITY: Final = 1
PDOL_DATA_LENGTH: Final = sum(e.length for e in m.PDOL)
AMOUNT_BYTES: Final = 6


# The app's own DOLs are constants: their data, once its length is checked, is cut in place.
PDOL_SLICES: Final = dol_slices(m.PDOL)
# The GPO answer 77{82 AIP, 94 AFL, 9F36 ATC} but its last two bytes (the ATC): all constant.
_GPO_ANSWER_HEAD: Final = m.build_gpo_response(m.GpoResponse(m.AIP, m.AFL, 0))[:-2]


@dataclass(frozen=True)
class Transaction:
    """What the GPO fixed for this payment: its ATC, amount and currency."""

    atc: int
    amount: int
    currency: int


@dataclass(frozen=True)
class AppState:
    """The whole applet state: the durable card state plus the session (lost at power-off)."""

    card: CardState
    phase: Phase = Phase.IDLE
    transaction: Transaction | None = None


@dataclass(frozen=True)
class CardData:
    """What the card presents (card.json): record 1 fields, limit and license (PROTOCOL.md §4)."""

    account: bytes  # 5A value, cn (up to 10 bytes)
    expiry: bytes  # 5F24, YYMMDD (3 bytes, n)
    holder: bytes  # 5F20, an
    ca_index: int  # 8F
    limit: int  # minor units
    license: bytes  # 9F46
    remainder: bytes  # 9F48, may be empty
    exponent: bytes  # 9F47


@dataclass(frozen=True)
class CardEnv:
    """The applet's fixed inputs: card data, APP key, and the templates built once from them."""

    data: CardData
    app_key: RsaPrivateKey = field(repr=False)
    hash_algorithm: int = HASH_SHA256
    ppse_fci: bytes = field(init=False, repr=False)
    pse_fci: bytes = field(init=False, repr=False)
    directory_record: bytes = field(init=False, repr=False)
    app_fci: bytes = field(init=False, repr=False)
    records: tuple[bytes, ...] = field(init=False, repr=False)
    account_field: bytes = field(init=False, repr=False)
    answer_length: int = field(init=False, repr=False)  # of a GENERATE AC answer, this key
    selectable: Mapping[bytes, tuple[bytes, Phase]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        entry = m.DirectoryEntry(m.CREDIT_AID, m.APP_LABEL, PRIORITY)
        d = self.data
        record1 = m.Record1(d.account, d.expiry, d.holder, m.cdol1_bytes(), d.ca_index)
        built = {
            "ppse_fci": m.build_ppse_fci(m.PpseFci(m.PPSE_NAME, (entry,))),
            "pse_fci": m.build_pse_fci(m.PseFci(m.PSE_NAME, DIRECTORY_SFI)),
            "directory_record": m.build_directory_record(m.DirectoryRecord((entry,))),
            "app_fci": m.build_app_fci(
                m.AppFci(m.CREDIT_AID, m.APP_LABEL, PRIORITY, m.pdol_bytes())
            ),
            "records": (
                m.build_record1(record1),
                m.build_record2(m.Record2(d.license)),
                m.build_record3(m.Record3(d.exponent, d.remainder)),
            ),
            "account_field": pad_account(d.account),
            "answer_length": len(
                m.build_generate_ac_response(
                    m.GenerateAcResponse(Cid.APPROVED, 0, bytes(self.app_key.public.size))
                )
            ),
        }
        for name, value in built.items():
            object.__setattr__(self, name, value)
        selectable = {  # SELECT by name: the FCI and the state it leads to
            m.PPSE_NAME: (self.ppse_fci, Phase.PPSE),
            m.PSE_NAME: (self.pse_fci, Phase.PSE),
            m.CREDIT_AID: (self.app_fci, Phase.SELECTED),
        }
        object.__setattr__(self, "selectable", selectable)


@dataclass(frozen=True)
class SignedAnswer:
    """Response data of `length` bytes that `make()` signs after the handler returns (the
    runtime stores the new state meanwhile; P§6: the answer leaves after both)."""

    length: int
    make: Callable[[], bytes]
    prepare: Callable[[], None] | None = None  # for the next answer, while this one is made


Result = tuple[bytes | SignedAnswer, AppState]
Handler = Callable[[CommandAPDU, AppState, CardEnv], Result]


def _n(value: bytes) -> int:
    """An n field's value; 6A80 for a nibble above 9."""
    try:
        return from_bcd(value)
    except ValueError:
        raise WrongData("amount or currency is not BCD") from None


def _amount_currency(data: bytes, slices: Mapping[int, slice]) -> tuple[int, int]:
    """9F02 and 5F2A of the app's own DOL data, cut in place; 6A80 when not BCD."""
    return _n(data[slices[0x9F02]]), _n(data[slices[0x5F2A]])


def _select(cmd: CommandAPDU, state: AppState, env: CardEnv) -> Result:
    """SELECT by name: PPSE, PSE or the credit AID (P§3); a new SELECT starts again (P§6).

    As EMV Book 1 11.3.5 and 12.3.3 (a terminal's list of AIDs): the credit AID may be named
    by its first 5 bytes or more (partial name selection), and P2 `02` asks for the next
    occurrence of a name. The card holds one of each, so the next occurrence of the one
    selected is `6A82`, which ends the terminal's search for that AID."""
    if cmd.p1 != SELECT_BY_NAME or cmd.p2 not in (SELECT_FIRST_FCI, SELECT_NEXT_FCI):
        raise IncorrectP1P2("SELECT takes P1-P2 0400 or 0402")
    if not cmd.data:
        raise WrongLength("SELECT without a name")
    found = env.selectable.get(cmd.data)
    if found is None and len(cmd.data) >= MIN_PARTIAL_AID and m.CREDIT_AID.startswith(cmd.data):
        found = env.selectable[m.CREDIT_AID]
    if found is None:
        raise FileNotFound(f"no application {cmd.data.hex().upper()}")
    fci, phase = found
    if cmd.p2 == SELECT_NEXT_FCI and _selected(state.phase) == _selected(phase):
        raise FileNotFound(f"no next occurrence of {cmd.data.hex().upper()}")
    return fci, AppState(state.card, phase)


def _selected(phase: Phase) -> Phase:
    """The DF a phase has selected: the credit app for each of its phases."""
    return Phase.SELECTED if phase in APP_PHASES else phase


def _gpo(cmd: CommandAPDU, state: AppState, env: CardEnv) -> Result:
    """Credit payment request: the ATC goes up by one, stored before the answer (P§6)."""
    if state.card.atc >= MAX_ATC:
        raise ConditionsNotSatisfied("ATC exhausted")
    if cmd.p1 or cmd.p2:
        raise IncorrectP1P2("GPO takes P1-P2 0000")
    if not cmd.data:
        raise WrongLength("GPO without its 83 template")
    try:
        pdol_data = m.gpo_pdol_data(cmd.data)
    except DecodeError as exc:
        raise WrongData(f"GPO data: {exc}") from None
    if len(pdol_data) != PDOL_DATA_LENGTH:
        raise WrongLength(f"PDOL data of {len(pdol_data)} bytes, expected {PDOL_DATA_LENGTH}")
    amount, currency = _amount_currency(pdol_data, PDOL_SLICES)
    atc = state.card.atc + 1
    transaction = Transaction(atc, amount, currency)
    answer = _GPO_ANSWER_HEAD + atc.to_bytes(2, "big")  # = build_gpo_response (atc <= FFFF)
    return answer, AppState(state.card.with_atc(atc), Phase.REQUESTED, transaction)


def _read_record(cmd: CommandAPDU, state: AppState, env: CardEnv) -> Result:
    """READ RECORD: the PSE directory record (P§3) or records 1-3 of SFI 1 (P§4)."""
    if cmd.p1 == 0 or cmd.p2 & 0x07 != READ_RECORD_BY_NUMBER:
        raise IncorrectP1P2("READ RECORD takes a record number and an SFI")
    if cmd.data:
        raise WrongLength("READ RECORD takes no data")  # ISO 7816-4 7.3.3: case 2
    sfi, record = cmd.p2 >> 3, cmd.p1
    if state.phase == Phase.PSE:
        if sfi != DIRECTORY_SFI or record != 1:
            raise RecordNotFound(f"directory record {record} of SFI {sfi}")
        return env.directory_record, state
    if sfi != m.SFI or record > APP_RECORDS:
        raise RecordNotFound(f"record {record} of SFI {sfi}")
    return env.records[record - 1], state


def _generate_ac(cmd: CommandAPDU, state: AppState, env: CardEnv) -> Result:
    """Payment deduction request: approve iff amount <= limit - used; signed either way (P§6)."""
    if cmd.p1 != GENERATE_AC_P1 or cmd.p2:
        raise IncorrectP1P2("GENERATE AC takes P1-P2 5000")
    if len(cmd.data) != CDOL1_DATA_LENGTH:
        raise WrongLength(f"CDOL1 data of {len(cmd.data)} bytes, expected {CDOL1_DATA_LENGTH}")
    transaction = state.transaction
    if transaction is None:  # REQUESTED always has one; kept for the type checker
        raise ConditionsNotSatisfied("no GPO")
    data = bytes(cmd.data)
    amount, currency = _amount_currency(data, CDOL1_SLICES)
    if (amount, currency) != (transaction.amount, transaction.currency):
        raise WrongData("amount or currency differs from the GPO's")
    approved = amount <= env.data.limit - state.card.used
    cid = Cid.APPROVED if approved else Cid.DECLINED
    used = state.card.used + amount if approved else state.card.used
    inputs = AnswerInputs(int(cid), transaction.atc, data)
    card = state.card.with_answer(inputs, used)
    answer = SignedAnswer(env.answer_length, partial(make_answer, inputs, env), env.app_key.prepare)
    return answer, AppState(card, Phase.DONE, transaction)


def make_answer(inputs: AnswerInputs, env: CardEnv) -> bytes:
    """The GENERATE AC answer 77{9F27, 9F36, 9F4B} that `inputs` make (P§5.2): the
    authorization signs the dynamic data and the CDOL1 data with the APP key."""
    data = inputs.cdol1_data  # CDOL1_DATA_LENGTH bytes (AnswerInputs checks it)
    amount, currency = _amount_currency(data, CDOL1_SLICES)
    un = data[CDOL1_SLICES[0x9F37]]
    dynamic = DynamicData(inputs.atc, inputs.cid, amount, currency, un, env.account_field)
    authorization = sign_authorization(env.app_key, dynamic, data, env.hash_algorithm)
    return m.build_generate_ac_response(m.GenerateAcResponse(inputs.cid, inputs.atc, authorization))


def answer_as_sent(kept: KeptAnswer, env: CardEnv) -> m.LastAnswer:
    """A kept answer as the terminal received it: re-made from its inputs, or as stored."""
    if isinstance(kept, AnswerInputs):
        return m.LastAnswer(make_answer(kept, env), kept.cdol1_data)
    return kept


def _get_data(cmd: CommandAPDU, state: AppState, env: CardEnv) -> Result:
    """GET DATA: 9F36 ATC, DF01 available credit (n12), DF02 last answer (P§3, §9).

    P1-P2 (the tag) is checked before the length, as for every command: an unknown tag is
    `6A88` whatever the data field; a known one with data is `6700`."""
    tag = cmd.p1 << 8 | cmd.p2
    if tag not in _GET_DATA_TAGS:
        raise ReferencedDataNotFound(f"no data object {tag:04X}")
    if cmd.data:
        raise WrongLength("GET DATA takes no data")
    card = state.card
    if tag == TAG_ATC:
        return tlv.encode(tlv.primitive(TAG_ATC, card.atc.to_bytes(2, "big"))), state
    if tag == m.TAG_AVAILABLE_CREDIT:
        available = max(env.data.limit - card.used, 0)
        return tlv.encode(tlv.primitive(tag, bcd(available, AMOUNT_BYTES))), state
    if tag == m.TAG_LAST_ANSWER and card.last_answer is not None:
        return m.build_last_answer(answer_as_sent(card.last_answer, env)), state
    raise ReferencedDataNotFound("no last answer yet")  # DF02 before any GENERATE AC


_GET_DATA_TAGS: Final = frozenset({TAG_ATC, m.TAG_AVAILABLE_CREDIT, m.TAG_LAST_ANSWER})
ALL_PHASES: Final = frozenset(Phase)
APP_PHASES: Final = frozenset({Phase.SELECTED, Phase.REQUESTED, Phase.DONE})


@dataclass(frozen=True)
class Route:
    """One row of the transition table: the class, the states it is accepted in, the handler."""

    cla: Cla
    phases: frozenset[Phase]
    handler: Handler


TABLE: Final[Mapping[int, Route]] = {
    INS.SELECT: Route(Cla.ISO, ALL_PHASES, _select),
    INS.GET_PROCESSING_OPTIONS: Route(Cla.PROPRIETARY, frozenset({Phase.SELECTED}), _gpo),
    INS.READ_RECORD: Route(
        Cla.ISO, frozenset({Phase.PSE, Phase.REQUESTED, Phase.DONE}), _read_record
    ),
    INS.GENERATE_AC: Route(Cla.PROPRIETARY, frozenset({Phase.REQUESTED}), _generate_ac),
    INS.GET_DATA: Route(Cla.PROPRIETARY, ALL_PHASES, _get_data),
}
KNOWN_CLA: Final = frozenset(int(c) for c in Cla)


class PaymentApplet:
    """The credit payment app (PROTOCOL.md §6): `handle(command, state) -> (data, state)`."""

    def __init__(self, env: CardEnv) -> None:
        self.env = env

    def handle(self, cmd: CommandAPDU, state: AppState) -> Result:
        """Route by INS through the table; a CardError leaves `state` as it was."""
        if cmd.cla not in KNOWN_CLA:
            raise ClaNotSupported(f"CLA {cmd.cla:02X}")
        route = TABLE.get(cmd.ins)
        if route is None:
            raise InsNotSupported(f"INS {cmd.ins:02X}")
        if cmd.cla != route.cla:
            raise ClaNotSupported(f"CLA {cmd.cla:02X} for INS {cmd.ins:02X}")
        if state.phase not in route.phases:
            raise ConditionsNotSatisfied(f"INS {cmd.ins:02X} in state {state.phase.name}")
        return route.handler(cmd, state, self.env)

    def answer_as_sent(self, kept: KeptAnswer) -> m.LastAnswer:
        """A kept answer (CardState.last_answers) as the terminal received it."""
        return answer_as_sent(kept, self.env)

    @staticmethod
    def reset(state: AppState) -> AppState:
        """Power-off, reset or deselect: back to IDLE; the durable state stays (P§6)."""
        return AppState(state.card)
