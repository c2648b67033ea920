"""The payment, terminal side, as a sans-IO generator of commands (PROTOCOL.md §3, §4, §7).

`payment(cfg, request, env, keys)` yields each CommandAPDU and receives its ResponseAPDU:
SELECT PPSE, SELECT AID, GET PROCESSING OPTIONS, READ RECORD 1-3, then — after the checks
of PROTOCOL.md §7 (1-3) — it yields a `PendingEntry` (PROTOCOL.md §9: the driver writes it
durably and sends back None) and only then GENERATE AC. It returns an `Outcome` once check 4
has passed, or raises the CheckError of the first check that fails. Time, the unpredictable
number and the keys are injected (`Env`, `KeyStore`), so a payment replays byte for byte.

With open pending entries (`pending`), the flow first reads the card's last answer (GET DATA
`DF02`, right after SELECT AID) and, once the license has given the APP key, yields one
decision per pending entry of this card's account (PROTOCOL.md §9): `RecoveredPayment` to
record once, or `CloseNotPaid`.

`drive(flow, transport)` runs a flow over a transport; `pay(...)` adds the journal (the
transaction log): pending entry before GENERATE AC, the row after every check.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache, partial
from typing import Final, Protocol

from apdu import messages as m
from apdu.command import CommandAPDU
from apdu.dol import DolEntry, fill_dol, parse_dol
from apdu.errors import DecodeError, EncodeError
from apdu.response import ResponseAPDU
from apdu.sw import SW
from authority.authorization import MAX_AMOUNT, bcd
from authority.keystore import KeyStore
from authority.license import LicenseFields, account_digits, pad_account
from reader import checks
from reader.checks import ResponseError, StatusError, Verdict
from reader.recovery import CloseNotPaid, PendingEntry, RecordOnce, decide, sent_with
from reader.transport import Transport

MAX_EFFECTS: Final = 32  # the flow yields 9; anything beyond is a bug in a flow
TERMINAL_ID_LENGTH: Final = 8  # 9F1C an8
MERCHANT_ID_LENGTH: Final = 15  # 9F16 an15
PURCHASE: Final = 0x00  # 9C transaction type
AIP_COMBINED_SIGNATURE: Final = 0x01  # AIP byte 1 bit 1 (PROTOCOL.md §3)
RECORDS: Final = 3
MAX_PDOL_DATA: Final = 252  # 83 81 L data in a short command's 255 bytes (ISO 7816-4 5.1)
MAX_RECOVERIES: Final = 16  # pending entries decided at one contact (PROTOCOL.md §9)
# The commands that never change, made once (immutable)
_SELECT_PPSE: Final = m.select(m.PPSE_NAME)
NO_PPSE_HINT: Final = (
    "is the payment app installed and the default for contactless payments, with "
    f"{m.PPSE_NAME.decode()} and the AID {m.CREDIT_AID.hex().upper()} registered?"
)  # what a phone whose HCE app is not set up answers SELECT PPSE with: 6A82 (ISO 7816-4)
_SELECT_AID: Final = m.select(m.CREDIT_AID)
_READ_RECORDS: Final = tuple(
    (f"READ RECORD {record}", m.read_record(record)) for record in range(1, RECORDS + 1)
)
_CDOL1_BYTES: Final = m.cdol1_bytes()


def _an(value: str, length: int, what: str) -> str:
    """An id sent right-padded with spaces (`9F1C`, `9F16`): a space at its end could not be
    told from the padding, so the log row would not match its signed CDOL1 data (§9)."""
    if not value or len(value) > length or not value.isascii() or not value.isprintable():
        raise ValueError(f"{what} must be 1 to {length} printable ASCII characters")
    if value.endswith(" "):
        raise ValueError(f"{what} must not end in a space (the field is padded with spaces)")
    return value


@dataclass(frozen=True)
class TerminalConfig:
    """Who the terminal is (`9F1C` an8, `9F16` an15, `9F1A` n4) and what it accepts."""

    terminal_id: str
    merchant_id: str
    country: int = 156
    allow_sha1: bool = False

    def __post_init__(self) -> None:
        _an(self.terminal_id, TERMINAL_ID_LENGTH, "terminal id")
        _an(self.merchant_id, MERCHANT_ID_LENGTH, "merchant id")
        if not 0 <= self.country <= 999:
            raise ValueError("country must be an ISO 3166 numeric code (0..999)")


@dataclass(frozen=True)
class PaymentRequest:
    """What is asked: the amount in minor units (n12) and the ISO 4217 numeric currency."""

    amount: int
    currency: int = 156

    def __post_init__(self) -> None:
        if not 0 <= self.amount <= MAX_AMOUNT:
            raise ValueError("amount must be 0 to 999999999999 minor units (n12)")
        if not 0 <= self.currency <= 999:
            raise ValueError("currency must be an ISO 4217 numeric code (0..999)")


@dataclass(frozen=True)
class Env:
    """Injected per transaction: the clock and a fresh 4-byte unpredictable number (CSPRNG)."""

    now: datetime
    unpredictable_number: bytes

    def __post_init__(self) -> None:
        if len(self.unpredictable_number) != 4:
            raise ValueError("the unpredictable number is 4 bytes")


@dataclass(frozen=True)
class Outcome:
    """A payment that passed checks 1-4: everything PROTOCOL.md §7 asks the log to keep."""

    verdict: Verdict
    time: datetime
    terminal_id: str
    merchant_id: str
    account: str  # digits of 5A
    amount: int
    currency: int
    atc: int
    unpredictable_number: bytes
    cid: int
    serial: int
    ca_index: int
    authorization: bytes  # 9F4B as received
    license: bytes  # 9F46
    remainder: bytes  # 9F48 (may be empty)
    exponent: bytes  # 9F47
    record1_value: bytes  # what the license hash covers
    cdol1_data: bytes  # exactly as sent

    @property
    def approved(self) -> bool:
        """The card approved (and deducted)."""
        return self.verdict is Verdict.APPROVED


@dataclass(frozen=True)
class RecoveredPayment:
    """A torn payment proven by the card's last answer: record it once (PROTOCOL.md §9)."""

    pending: PendingEntry
    outcome: Outcome


Recovery = RecoveredPayment | CloseNotPaid
Effect = CommandAPDU | PendingEntry | RecoveredPayment | CloseNotPaid


def dol_values(cfg: TerminalConfig, request: PaymentRequest, env: Env) -> dict[int, bytes]:
    """The terminal's data elements for the PDOL and CDOL1 (PROTOCOL.md §3)."""
    now = env.now  # 9A YYMMDD and 9F21 HHMMSS, n6 (strftime's %y%m%d and %H%M%S)
    return {
        0x9F02: bcd(request.amount, 6),
        0x5F2A: bcd(request.currency, 2),
        0x9F37: env.unpredictable_number,
        0x9F1A: bcd(cfg.country, 2),
        0x9A: bytes.fromhex(f"{now.year % 100:02d}{now.month:02d}{now.day:02d}"),
        0x9F21: bytes.fromhex(f"{now.hour:02d}{now.minute:02d}{now.second:02d}"),
        0x9C: bytes([PURCHASE]),
        0x9F16: cfg.merchant_id.ljust(MERCHANT_ID_LENGTH).encode("ascii"),
        0x9F1C: cfg.terminal_id.ljust(TERMINAL_ID_LENGTH).encode("ascii"),
    }


def _exchange(cmd: CommandAPDU) -> Generator[Effect, ResponseAPDU | None, ResponseAPDU]:
    response = yield cmd
    if response is None:
        raise ResponseError(f"no response to {cmd.to_bytes()[:4].hex().upper()}")
    return response


@lru_cache(maxsize=16)
def _parse_dol(raw: bytes) -> tuple[DolEntry, ...]:
    """parse_dol, remembered: a card sends the same PDOL and CDOL1 every time (pure)."""
    return parse_dol(raw)


def _parse_ppse_fci(data: bytes) -> m.PpseFci:
    """parse_ppse_fci, remembered: every card of the app answers the same PPSE FCI."""
    return _remembered_ppse_fci(bytes(data))


def _parse_app_fci(data: bytes) -> m.AppFci:
    """parse_app_fci, remembered: every card of the app answers the same app FCI."""
    return _remembered_app_fci(bytes(data))


# pure parsers of immutable results; a malformed template raises (and is never remembered)
_remembered_ppse_fci = lru_cache(maxsize=16)(m.parse_ppse_fci)
_remembered_app_fci = lru_cache(maxsize=16)(m.parse_app_fci)


def _dol(step: str, raw: bytes, limit: int) -> tuple[DolEntry, ...]:
    """The card's DOL, refused when its data would not fit a short command (check 1)."""
    try:
        entries = _parse_dol(raw)
    except DecodeError as exc:
        raise ResponseError(f"{step}: {exc}") from None
    size = sum(e.length for e in entries)
    if size > limit:
        raise ResponseError(f"{step}: the DOL asks for {size} bytes, more than {limit}")
    return entries


def payment(
    cfg: TerminalConfig,
    request: PaymentRequest,
    env: Env,
    keys: KeyStore,
    pending: Sequence[PendingEntry] = (),
) -> Generator[Effect, ResponseAPDU | None, Outcome]:
    """One payment (PROTOCOL.md §3 steps, §7 checks 1-4 in order, §9 recovery first)."""
    today = env.now.date()
    values = dol_values(cfg, request, env)

    step = "SELECT PPSE"
    rsp = yield from _exchange(_SELECT_PPSE)
    if rsp.sw == SW.FILE_NOT_FOUND:  # most often a phone whose payment app is not set up
        raise StatusError(step, rsp.sw, NO_PPSE_HINT)
    ppse = checks.parsed(step, _parse_ppse_fci, checks.ok_data(step, rsp))
    if not any(e.aid == m.CREDIT_AID for e in ppse.entries):
        raise ResponseError("SELECT PPSE: the directory lists no credit payment app")

    step = "SELECT AID"
    rsp = yield from _exchange(_SELECT_AID)
    fci = checks.parsed(step, _parse_app_fci, checks.ok_data(step, rsp))
    if fci.aid != m.CREDIT_AID:
        raise ResponseError(f"SELECT AID: the FCI names AID {fci.aid.hex().upper()}")
    pdol_data = fill_dol(_dol(step, fci.pdol, MAX_PDOL_DATA), values)
    last_answer: ResponseAPDU | None = None
    if pending:  # PROTOCOL.md §9: read the card's last answer at the next contact
        last_answer = yield from _exchange(m.get_data(m.TAG_LAST_ANSWER))

    step = "GET PROCESSING OPTIONS"
    rsp = yield from _exchange(m.gpo(pdol_data))
    gpo = checks.parsed(step, m.parse_gpo_response, checks.ok_data(step, rsp))
    if not gpo.aip[0] & AIP_COMBINED_SIGNATURE:
        raise ResponseError(f"{step}: the AIP {gpo.aip.hex().upper()} offers no authorization")
    if gpo.afl != m.AFL:
        raise ResponseError(f"{step}: AFL {gpo.afl.hex().upper()}, expected 08010301")

    answers: list[bytes] = []
    for step, read in _READ_RECORDS:
        rsp = yield from _exchange(read)
        answers.append(checks.ok_data(step, rsp))
    checks.records_unique(answers)
    rec1, rec1_value = checks.parsed("READ RECORD 1", m.parse_record1, answers[0])
    rec2 = checks.parsed("READ RECORD 2", m.parse_record2, answers[1])
    rec3 = checks.parsed("READ RECORD 3", m.parse_record3, answers[2])
    if rec1.cdol1 != _CDOL1_BYTES:  # the log and §9 read CDOL1 data by §3's layout
        raise ResponseError(
            f"READ RECORD 1: CDOL1 {rec1.cdol1.hex().upper()}, expected "
            f"{_CDOL1_BYTES.hex().upper()} (PROTOCOL.md §3)"
        )
    try:
        padded_account = pad_account(rec1.account)
        account = account_digits(padded_account)
    except ValueError:
        raise ResponseError("READ RECORD 1: 5A is not a cn account id") from None

    records = checks.CardRecords(
        rec1.account, rec1_value, rec2.license, rec3.remainder, rec3.exponent
    )
    # what every log row of this card session holds besides the transaction (PROTOCOL.md §7)
    card_outcome = partial(
        Outcome,
        time=env.now,
        terminal_id=cfg.terminal_id,
        merchant_id=cfg.merchant_id,
        account=account,
        ca_index=rec1.ca_index,
        license=rec2.license,
        remainder=rec3.remainder,
        exponent=rec3.exponent,
        record1_value=rec1_value,
    )

    if last_answer is not None:
        mine = [p for p in pending if p.account == padded_account]
        for entry in mine[:MAX_RECOVERIES]:
            then = _license_then(keys, rec1.ca_index, records, entry, today, cfg.allow_sha1)
            if then is None:
                continue  # the license verifies neither then nor now: this contact is refused
            decision = decide(
                entry, last_answer, then.app_key, allow_sha1=cfg.allow_sha1, today=today
            )
            if isinstance(decision, CloseNotPaid) and not decision.read:
                detail = f" ({decision.detail})" if decision.detail else ""
                raise ResponseError(
                    f"GET DATA DF02: {decision.reason.value}{detail}; the torn payment of "
                    f"ATC {entry.atc:04X} stays open for the card's next contact, and this "
                    "payment is not made"
                )
            if isinstance(decision, RecordOnce):
                d, torn = decision.dynamic, decision.sent
                recovered = card_outcome(  # when and where the torn GENERATE AC was sent
                    serial=then.serial,
                    time=torn.time,
                    terminal_id=torn.terminal_id,
                    merchant_id=torn.merchant_id,
                    verdict=checks.verdict_of(d.cid),
                    amount=d.amount,
                    currency=d.currency,
                    atc=entry.atc,
                    unpredictable_number=d.unpredictable_number,
                    cid=d.cid,
                    authorization=decision.answer.authorization,
                    cdol1_data=entry.cdol1_data,
                )
                yield RecoveredPayment(entry, recovered)
            else:
                yield decision

    ca = checks.authority_key(keys, rec1.ca_index, today)
    fields = checks.license_fields(
        ca.key, records, today=today, revoked=keys.revoked, allow_sha1=cfg.allow_sha1
    )
    cdol1_data = fill_dol(m.CDOL1, values)
    sent = yield PendingEntry(padded_account, gpo.atc, cdol1_data, fields.serial)
    if sent is not None:
        raise ResponseError("the driver answered a pending entry with a response")

    step = "GENERATE AC"
    rsp = yield from _exchange(m.generate_ac(cdol1_data))
    gac = checks.parsed(step, m.parse_generate_ac_response, checks.ok_data(step, rsp))
    expected = checks.Expected(
        gpo.atc, request.amount, request.currency, env.unpredictable_number, rec1.account
    )
    checks.authorization(
        fields.app_key,
        cid=gac.cid,
        atc=gac.atc,
        signature=gac.authorization,
        cdol1_data=cdol1_data,
        expected=expected,
        allow_sha1=cfg.allow_sha1,
    )
    return card_outcome(
        serial=fields.serial,
        verdict=checks.verdict_of(gac.cid),
        amount=request.amount,
        currency=request.currency,
        atc=gpo.atc,
        unpredictable_number=env.unpredictable_number,
        cid=gac.cid,
        authorization=gac.authorization,
        cdol1_data=cdol1_data,
    )


def _license_then(
    keys: KeyStore,
    index: int,
    records: checks.CardRecords,
    entry: PendingEntry,
    today: date,
    allow_sha1: bool,
) -> LicenseFields | None:
    """Checks 2-3 for a torn payment (PROTOCOL.md §9), judged as they stood when its
    GENERATE AC was sent: the license the terminal checked then (the entry's serial) at the
    date of its CDOL1 data, with no revocation made since, as `log --verify` judges a row.
    So a license or key that has expired, or a serial revoked, since then does not lose a
    payment the card made. Any other license (another serial, or an entry of a log older
    than schema 4, which names none), and one that does not verify then, is judged as today's
    payment is; None when that fails too (the same checks refuse this contact right after).
    An entry whose CDOL1 data holds no date is judged today (`decide` then closes it)."""
    judged: list[tuple[date, frozenset[int], int | None]] = []
    try:
        day = sent_with(entry.cdol1_data, today).time.date()
        if entry.serial is not None:
            judged.append((day, frozenset(), entry.serial))
        else:
            judged.append((day, keys.revoked, None))
    except (ValueError, KeyError, DecodeError):
        pass
    for when, revoked, serial in [*judged, (today, keys.revoked, None)]:
        try:
            ca = checks.authority_key(keys, index, when)
            fields = checks.license_fields(
                ca.key, records, today=when, revoked=revoked, allow_sha1=allow_sha1
            )
        except checks.CheckError:
            continue
        if serial is None or fields.serial == serial:
            return fields
    return None


def drive(
    flow: Generator[Effect, ResponseAPDU | None, Outcome],
    transport: Transport,
    on_pending: Callable[[PendingEntry], None] | None = None,
    on_recovery: Callable[[Recovery], None] | None = None,
) -> Outcome:
    """Run `flow` over a connected transport; `on_pending` stores the pending entry and
    `on_recovery` applies a torn transaction's decision (§9)."""
    try:
        effect = next(flow)
        for _ in range(MAX_EFFECTS):
            reply: ResponseAPDU | None = None
            if isinstance(effect, PendingEntry):
                if on_pending is not None:
                    on_pending(effect)
            elif isinstance(effect, Recovery):
                if on_recovery is not None:
                    on_recovery(effect)
            else:
                try:
                    command = effect.to_bytes()
                except EncodeError as exc:
                    flow.close()
                    raise ResponseError(f"the card's data makes no valid command: {exc}") from None
                raw = transport.transmit(command)
                try:
                    reply = ResponseAPDU.parse(raw)
                except DecodeError:
                    flow.close()
                    raise ResponseError(
                        f"{command[:4].hex().upper()}: response of {len(raw)} bytes, "
                        "shorter than a status word"
                    ) from None
            effect = flow.send(reply)
    except StopIteration as stop:
        outcome: Outcome = stop.value
        return outcome
    flow.close()
    raise ResponseError(f"the flow did not end within {MAX_EFFECTS} steps")


class Journal(Protocol):
    """Where a terminal keeps its transactions (reader/log.py's TransactionLog)."""

    def write_pending(self, pending: PendingEntry, now: datetime) -> None:
        """Store the pending entry durably before GENERATE AC (PROTOCOL.md §9)."""
        ...

    def close_pending(self, pending: PendingEntry, outcome: str = "refused") -> None:
        """Close a pending entry after a refusal or a §9 decision (`outcome` says which)."""
        ...

    def pending(self) -> list[PendingEntry]:
        """The open pending entries (PROTOCOL.md §9)."""
        ...

    def record(self, outcome: Outcome, *, later: bool = False) -> int:
        """Store the checked transaction and close its pending entry (`later`: recorded
        after its own contact, a torn payment proven at the next one, §9: the entry is kept,
        closed); the row id. Raises ReplayError for an (account, ATC) already stored
        (check 5)."""
        ...


class NotRecordedError(Exception):
    """Every check passed but the journal could not store the transaction (spool it).
    `recovered`: it is a torn payment proven at this contact (PROTOCOL.md §9), and this
    contact's own payment was not made."""

    def __init__(self, outcome: Outcome, reason: str, *, recovered: bool = False) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.recovered = recovered


@dataclass(frozen=True)
class Paid:
    """A payment the terminal decided and recorded: the outcome and its log row."""

    outcome: Outcome
    row_id: int
    recovered: tuple[Outcome, ...] = ()  # torn payments recorded at this contact (§9)


def pay(
    transport: Transport,
    cfg: TerminalConfig,
    request: PaymentRequest,
    env: Env,
    keys: KeyStore,
    journal: Journal,
) -> Paid:
    """One whole payment: connect, run the flow, record; CheckError or TransportError.

    Once the pending entry is written, GENERATE AC goes out and the card may have deducted:
    a TransportError, or a CheckError on its answer (a bad status word, a malformed or
    unverifiable answer), leaves the entry open, a torn transaction that the card's own
    last answer (`DF02`) settles at its next contact (PROTOCOL.md §9). A torn payment
    proven then that the log cannot store raises NotRecordedError, like this payment's.
    """
    recovered: list[Outcome] = []

    def keep(entry: PendingEntry) -> None:
        journal.write_pending(entry, env.now)

    def settle(decision: Recovery) -> None:
        if isinstance(decision, CloseNotPaid):
            journal.close_pending(decision.pending, f"not paid: {decision.reason.value}")
            return
        try:
            journal.record(decision.outcome, later=True)
        except checks.ReplayError:
            return  # stored already (from the spool): record() closed the entry
        except Exception as exc:  # the log is broken: the proven payment must not be lost
            reason = f"{type(exc).__name__}: {exc}"
            raise NotRecordedError(decision.outcome, reason, recovered=True) from exc
        recovered.append(decision.outcome)

    open_entries = journal.pending()
    transport.connect()
    try:
        flow = payment(cfg, request, env, keys, open_entries)
        outcome = drive(flow, transport, keep, settle)
    finally:
        transport.disconnect()
    try:
        return Paid(outcome, journal.record(outcome), tuple(recovered))
    except checks.CheckError:
        raise
    except Exception as exc:  # the log is broken: the verified payment must not be lost
        raise NotRecordedError(outcome, f"{type(exc).__name__}: {exc}") from exc
