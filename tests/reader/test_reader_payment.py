"""Whole payments in-process: approve, decline, and every PROTOCOL.md §7 check failing.

Each refusal comes from a card (or a wrapping transport) that alters one thing; each must
give its typed CheckError, exit code 3 (4 for a transport error), and leave no row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from apdu import messages as m
from apdu import tlv
from apdu.command import CommandAPDU
from apdu.dol import fill_dol
from applet.payment import CardEnv, PaymentApplet
from applet.profile import load_app_key, load_profile, record1_value
from applet.runtime import CardRuntime
from applet.state import CardState
from applet.store import MemoryStateStore
from authority.authorization import open_authorization, sign_authorization
from authority.errors import LicenseReason
from authority.keystore import AuthorityKey, KeyStore
from authority.license import LicenseFields, account_from_digits, issue_license, pad_account
from authority.rsa import RsaPrivateKey
from reader import checks
from reader.cli_common import ExitCode
from reader.cli_pay import run_payment, verify_row
from reader.flow import (
    Env,
    NotRecordedError,
    Outcome,
    PaymentRequest,
    TerminalConfig,
    dol_values,
    pay,
)
from reader.log import LogError, TransactionLog
from reader.recovery import NotPaidReason, PendingEntry, year_of
from reader.spool import primary_path
from reader.transport import ChainingTransport, InProcessTransport, Transport, TransportError

Alter = Callable[[bytes], bytes]
INS_SELECT, INS_GPO, INS_READ, INS_GAC = 0xA4, 0xA8, 0xB2, 0xAE
OTHER_AID = bytes.fromhex("F04843455041590002")


class Tamper:
    """A transport that alters the (whole, chained) response to one kind of command."""

    name = "tamper"

    def __init__(self, inner: Transport, ins: int, alter: Alter, p1: int | None = None) -> None:
        self.inner, self.ins, self.alter, self.p1 = inner, ins, alter, p1

    def connect(self) -> bytes:
        return self.inner.connect()

    def transmit(self, command: bytes) -> bytes:
        response = self.inner.transmit(command)
        if command[1] == self.ins and (self.p1 is None or command[2] == self.p1):
            return self.alter(response)
        return response

    def disconnect(self) -> None:
        self.inner.disconnect()


def in_tag(tag: int, change: Callable[[bytes], bytes]) -> Alter:
    """Alter the value of `tag` inside the response's template, keep the status word."""

    def alter(response: bytes) -> bytes:
        root = tlv.decode_one(response[:-2])
        children = [
            tlv.primitive(c.tag, change(c.value)) if c.tag == tag else c for c in root.children
        ]
        return tlv.encode(tlv.constructed(root.tag, *children)) + response[-2:]

    return alter


def duplicate(tag: int) -> Alter:
    """Repeat `tag` at the end of the response's template (PROTOCOL.md §7 check 1)."""

    def alter(response: bytes) -> bytes:
        root = tlv.decode_one(response[:-2])
        again = [c for c in root.children if c.tag == tag]
        return tlv.encode(tlv.constructed(root.tag, *root.children, *again)) + response[-2:]

    return alter


def add(*extra: tlv.Tlv) -> Alter:
    """Add data objects at the end of the response's template."""

    def alter(response: bytes) -> bytes:
        root = tlv.decode_one(response[:-2])
        return tlv.encode(tlv.constructed(root.tag, *root.children, *extra)) + response[-2:]

    return alter


def other_aid(*, in_ppse: bool) -> Alter:
    """Name OTHER_AID instead of the credit AID in the PPSE directory or in the app's FCI."""

    def alter(response: bytes) -> bytes:
        if (m.PPSE_NAME in response) is not in_ppse:
            return response
        assert m.CREDIT_AID in response
        return response.replace(m.CREDIT_AID, OTHER_AID)

    return alter


def ppse_not_found(response: bytes) -> bytes:
    """Answer SELECT PPSE 6A82, as a phone with no payment app registered for it does."""
    return b"\x6a\x82" if m.PPSE_NAME in response else response


def aid_not_found(response: bytes) -> bytes:
    """Answer SELECT AID (not SELECT PPSE) 6A82: the app is not installed under the AID."""
    return response if m.PPSE_NAME in response else b"\x6a\x82"


def flip(index: int) -> Callable[[bytes], bytes]:
    return lambda v: v[:index] + bytes([v[index] ^ 0x01]) + v[index + 1 :]


def transport_for(
    card: CardRuntime, ins: int = 0, alter: Alter | None = None, p1: int | None = None
) -> Transport:
    chained = ChainingTransport(InProcessTransport(card))
    return chained if alter is None else Tamper(chained, ins, alter, p1)


@pytest.fixture
def run(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> Callable[..., object]:
    def go(
        ins: int = 0,
        alter: Alter | None = None,
        *,
        p1: int | None = None,
        amount: int = 1234,
        keystore: KeyStore | None = None,
        now: datetime | None = None,
    ) -> object:
        e = env if now is None else Env(now, env.unpredictable_number)
        transport = transport_for(make_card(), ins, alter, p1)
        return run_payment(transport, cfg, PaymentRequest(amount), e, keystore or keys, log)

    return go


def test_approve_records_one_row(run: Callable[..., object], log: TransactionLog) -> None:
    result = run()
    assert result.code is ExitCode.OK and result.paid is not None  # type: ignore[attr-defined]
    rows = list(log.rows())
    assert len(rows) == 1 and rows[0].outcome.amount == 1234 and rows[0].outcome.cid == 0x40
    assert rows[0].outcome.account == "6200123456789012" and rows[0].outcome.atc == 1
    assert log.pending() == []


def test_decline_over_limit(run: Callable[..., object], log: TransactionLog) -> None:
    result = run(amount=100001)  # the profile's limit is 100000 minor units
    assert result.code is ExitCode.DECLINED  # type: ignore[attr-defined]
    assert [r.outcome.cid for r in log.rows()] == [0x00]


def _license_for(
    ca: RsaPrivateKey, folder: Path, *, account: str, expiry: bytes, serial: int = 1
) -> bytes:
    profile = load_profile(folder)
    app = load_app_key(folder, profile)
    fields = LicenseFields(account_from_digits(account), expiry, serial, 2, app.public)
    return issue_license(ca, fields, record1_value(profile.card_data())).license


def _expired_keys(keys: KeyStore) -> KeyStore:
    key = keys.keys[1]
    return KeyStore({1: AuthorityKey(1, key.key, date(2026, 1, 1))})


def _other_index(keys: KeyStore) -> KeyStore:
    key = keys.keys[1]
    return KeyStore({2: AuthorityKey(2, key.key, key.expires)})


CASES: list[tuple[str, dict[str, object], type[checks.CheckError], str]] = [
    (
        "PPSE not found (a phone whose payment app is not set up)",
        {"ins": INS_SELECT, "p1": 0x04, "alter": ppse_not_found},
        checks.StatusError,
        "SELECT PPSE answered 6A82 file or application not found: is the payment app "
        "installed and the default for contactless payments, with 2PAY.SYS.DDF01 and the AID "
        "F04843455041590001 registered?",
    ),
    (
        # the step named is the one refused: SELECT AID, not the SELECT PPSE before it
        "AID not found",
        {"ins": INS_SELECT, "p1": 0x04, "alter": aid_not_found},
        checks.StatusError,
        "SELECT AID answered 6A82",
    ),
    (
        "PPSE lists no credit AID",
        {"ins": INS_SELECT, "alter": other_aid(in_ppse=True)},
        checks.ResponseError,
        "SELECT PPSE: the directory lists no credit payment app",
    ),
    (
        "FCI names another AID",
        {"ins": INS_SELECT, "alter": other_aid(in_ppse=False)},
        checks.ResponseError,
        "SELECT AID: the FCI names AID F04843455041590002",
    ),
    (
        "AIP without combined signature",
        {"ins": INS_GPO, "alter": in_tag(0x82, lambda v: b"\x00\x00")},
        checks.ResponseError,
        "the AIP 0000 offers no authorization",
    ),
    (
        "AIP other bits only",
        {"ins": INS_GPO, "alter": in_tag(0x82, lambda v: b"\xfe\xff")},
        checks.ResponseError,
        "the AIP FEFF offers no authorization",
    ),
    (
        "AFL of two records",
        {"ins": INS_GPO, "alter": in_tag(0x94, lambda v: bytes.fromhex("08010201"))},
        checks.ResponseError,
        "AFL 08010201, expected 08010301",
    ),
    (
        "AFL with an offline record",
        {"ins": INS_GPO, "alter": in_tag(0x94, lambda v: bytes.fromhex("08010302"))},
        checks.ResponseError,
        "AFL 08010302, expected 08010301",
    ),
    (
        "non-9000",
        {"ins": INS_READ, "p1": 2, "alter": lambda r: b"\x6a\x83"},
        checks.StatusError,
        "6A83",
    ),
    (
        # check 1: 9000 and nothing else, not a warning (ISO 7816-4 5.6: 62xx, 63xx) with data
        "warning with the data",
        {"ins": INS_READ, "p1": 1, "alter": lambda r: r[:-2] + b"\x62\x83"},
        checks.StatusError,
        "6283",
    ),
    (
        "truncated",
        {"ins": INS_READ, "p1": 1, "alter": lambda r: r[:-12] + r[-2:]},
        checks.ResponseError,
        "READ RECORD 1",
    ),
    (
        "no status word",
        {"ins": INS_GPO, "alter": lambda r: r[:1]},
        checks.ResponseError,
        "shorter than a status word",
    ),
    (
        "CDOL1 longer than §3's",
        {"ins": INS_READ, "p1": 1, "alter": in_tag(0x8C, lambda v: v + bytes.fromhex("DF01FF"))},
        checks.ResponseError,
        "READ RECORD 1: CDOL1 9F02065F2A029A039F21039C019F37049F160F9F1C08DF01FF, expected",
    ),
    (
        "CDOL1 of §3's entries in another order",  # the log reads CDOL1 data by §3's layout
        {"ins": INS_READ, "p1": 1, "alter": in_tag(0x8C, lambda v: v[3:6] + v[:3] + v[6:])},
        checks.ResponseError,
        "READ RECORD 1: CDOL1 5F2A029F02069A03",
    ),
    (
        "repeated tag",
        {"ins": INS_GPO, "alter": duplicate(0x9F36)},
        checks.ResponseError,
        "repeated",
    ),
    (
        "8F again in record 2",  # EMV Book 3 10.2: a tag in two records ends the transaction
        {"ins": INS_READ, "p1": 2, "alter": add(tlv.primitive(0x8F, b"\x02"))},
        checks.ResponseError,
        "READ RECORD 2: tag 8F repeated (record 1 has it)",
    ),
    (
        "5A again in record 3",
        {"ins": INS_READ, "p1": 3, "alter": add(tlv.primitive(0x5A, bytes.fromhex("99" * 8)))},
        checks.ResponseError,
        "READ RECORD 3: tag 5A repeated (record 1 has it)",
    ),
    (
        "9F47 again in record 2",
        {"ins": INS_READ, "p1": 2, "alter": add(tlv.primitive(0x9F47, b"\x01"))},
        checks.ResponseError,
        "READ RECORD 3: tag 9F47 repeated (record 2 has it)",
    ),
    (
        "unknown index",
        {"keystore": "other index"},
        checks.AuthorityKeyError,
        "unknown authority key index 01",
    ),
    ("expired authority key", {"keystore": "expired"}, checks.AuthorityKeyError, "expired"),
    (
        "license byte",
        {"ins": INS_READ, "p1": 2, "alter": in_tag(0x9F46, flip(100))},
        checks.LicenseCheckError,
        "license bad header",  # any changed bit garbles the whole recovered data
    ),
    (
        "license first byte",
        {"ins": INS_READ, "p1": 2, "alter": in_tag(0x9F46, flip(0))},
        checks.LicenseCheckError,
        "license bad header",  # any changed bit garbles the whole recovered data
    ),
    (
        "license last byte",
        {"ins": INS_READ, "p1": 2, "alter": in_tag(0x9F46, flip(247))},
        checks.LicenseCheckError,
        "license bad header",  # any changed bit garbles the whole recovered data
    ),
    (
        "remainder byte",
        {"ins": INS_READ, "p1": 3, "alter": in_tag(0x9F48, flip(3))},
        checks.LicenseCheckError,
        "bad hash",
    ),
    (
        "record 1 holder",
        {"ins": INS_READ, "p1": 1, "alter": in_tag(0x5F20, lambda v: v.lower())},
        checks.LicenseCheckError,
        "bad hash",
    ),
    (
        "authorization byte",
        {"ins": INS_GAC, "alter": in_tag(0x9F4B, flip(17))},
        checks.AuthorizationCheckError,
        "authorization",
    ),
    (
        "authorization last byte",
        {"ins": INS_GAC, "alter": in_tag(0x9F4B, flip(247))},
        checks.AuthorizationCheckError,
        "authorization",
    ),
    (
        "ATC mismatch",
        {"ins": INS_GAC, "alter": in_tag(0x9F36, lambda v: b"\x00\x07")},
        checks.AtcMismatchError,
        "ATC",
    ),
    (
        "CID mismatch",
        {"ins": INS_GAC, "alter": in_tag(0x9F27, lambda v: b"\x00")},
        checks.CidMismatchError,
        "signed CID 40",
    ),
    (
        "CID unknown",
        {"ins": INS_GAC, "alter": in_tag(0x9F27, lambda v: b"\x80")},
        checks.CidMismatchError,
        "neither",
    ),
]


@pytest.mark.parametrize(("name", "setup", "error", "text"), CASES, ids=[c[0] for c in CASES])
def test_each_check_refuses(
    name: str,
    setup: dict[str, object],
    error: type[checks.CheckError],
    text: str,
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
    run: Callable[..., object],
) -> None:
    ks = {"other index": _other_index(keys), "expired": _expired_keys(keys)}.get(
        str(setup.get("keystore")), keys
    )
    args = {k: v for k, v in setup.items() if k != "keystore"}
    transport = transport_for(make_card(), **args)  # type: ignore[arg-type]
    with pytest.raises(error) as caught:
        pay(transport, cfg, PaymentRequest(1234), env, ks, log)
    assert type(caught.value) is error
    assert text in caught.value.reason
    assert log.count() == 0
    # Once GENERATE AC went out the card may have deducted: its entry stays open, for the
    # card's own last answer to settle at the next contact (PROTOCOL.md §9).
    assert len(log.pending()) == (1 if setup.get("ins") == INS_GAC else 0)
    result = run(keystore=ks, **args)
    assert result.code is ExitCode.REFUSED and result.verdict == "refused"  # type: ignore[attr-defined]
    assert log.count() == 0
    # the user is told when the card may have deducted (an entry left open), and only then
    torn = "; GENERATE AC was sent, so the card may have deducted: the pending entry stays open"
    assert (torn in result.reason) == (setup.get("ins") == INS_GAC)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("account", "expiry", "serial", "reason", "revoked"),
    [
        ("6200123456789099", bytes.fromhex("1230"), 1, LicenseReason.ACCOUNT_MISMATCH, ()),
        ("6200123456789012", bytes.fromhex("1025"), 1, LicenseReason.EXPIRED, ()),
        ("6200123456789012", bytes.fromhex("1230"), 9, LicenseReason.REVOKED, (9,)),
    ],
    ids=["account mismatch", "expired license", "revoked serial"],
)
def test_license_fields_refused(
    account: str,
    expiry: bytes,
    serial: int,
    reason: LicenseReason,
    revoked: tuple[int, ...],
    ca_private: RsaPrivateKey,
    profile: Path,
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    forged = _license_for(ca_private, profile, account=account, expiry=expiry, serial=serial)
    transport = transport_for(make_card(), INS_READ, in_tag(0x9F46, lambda v: forged), 2)
    ks = replace(keys, revoked=frozenset(revoked))
    with pytest.raises(checks.LicenseCheckError) as caught:
        pay(transport, cfg, PaymentRequest(1234), env, ks, log)
    assert caught.value.license_reason is reason
    assert log.count() == 0


def test_genuine_license_passes_when_forged_only_in_serial(
    ca_private: RsaPrivateKey,
    profile: Path,
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """The forging helper itself is sound: a valid reissue with serial 9 is accepted."""
    forged = _license_for(
        ca_private, profile, account="6200123456789012", expiry=bytes.fromhex("1230"), serial=9
    )
    transport = transport_for(make_card(), INS_READ, in_tag(0x9F46, lambda v: forged), 2)
    paid = pay(transport, cfg, PaymentRequest(1234), env, keys, log)
    assert paid.outcome.serial == 9 and log.count() == 1


def test_replayed_old_generate_ac_answer_is_refused(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    card = make_card()
    answers: list[bytes] = []

    def keep(response: bytes) -> bytes:
        answers.append(response)
        return response

    pay(transport_for(card, INS_GAC, keep), cfg, PaymentRequest(1234), env, keys, log)
    old = answers[0]
    fresh = Env(env.now, bytes.fromhex("55667788"))
    with pytest.raises(checks.AtcMismatchError):
        pay(
            transport_for(card, INS_GAC, lambda r: old), cfg, PaymentRequest(1234), fresh, keys, log
        )
    assert log.count() == 1
    # The card did answer ATC 2 (and deducted): its entry stays open, and the next contact
    # records that real answer once, not the replayed one (PROTOCOL.md §9).
    assert [e.atc for e in log.pending()] == [2]
    later = Env(env.now, bytes.fromhex("99AABBCC"))
    paid = pay(transport_for(card), cfg, PaymentRequest(5), later, keys, log)
    assert [o.atc for o in paid.recovered] == [2]
    assert [(r.outcome.atc, r.outcome.amount) for r in log.rows()] == [(1, 1234), (2, 1234), (3, 5)]


def test_whole_replay_with_the_same_number_hits_the_log(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """A card that replays a whole recorded session passes checks 1-4 only when the
    unpredictable number repeats; then check 5 refuses it (PROTOCOL.md §7)."""
    from reader.transport import TracingTransport

    tracer = TracingTransport(InProcessTransport(make_card()))
    pay(ChainingTransport(tracer), cfg, PaymentRequest(1234), env, keys, log)
    recorded = [r for _, r in tracer.steps]

    class Replayer:
        name = "replayer"

        def connect(self) -> bytes:
            return b"\x3b\x00"

        def transmit(self, command: bytes) -> bytes:
            return recorded.pop(0)

        def disconnect(self) -> None:
            pass

    with pytest.raises(checks.ReplayError):
        pay(ChainingTransport(Replayer()), cfg, PaymentRequest(1234), env, keys, log)
    assert log.count() == 1 and log.pending() == []


class AtGenerateAc:
    """A transport on which GENERATE AC never reaches the card: `instead()` answers it, or
    raises (the card left the field)."""

    name = "at generate ac"

    def __init__(self, inner: Transport, instead: Callable[[], bytes]) -> None:
        self.inner, self.instead = inner, instead

    def connect(self) -> bytes:
        return self.inner.connect()

    def transmit(self, command: bytes) -> bytes:
        return self.instead() if command[1] == INS_GAC else self.inner.transmit(command)

    def disconnect(self) -> None:
        self.inner.disconnect()


def card_removed() -> bytes:
    raise TransportError("card removed")


def test_transport_error_exit_4_no_row_pending_left_open(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    transport = AtGenerateAc(transport_for(make_card()), card_removed)
    result = run_payment(transport, cfg, PaymentRequest(1234), env, keys, log)
    assert result.code is ExitCode.TRANSPORT
    assert result.reason == (
        "card removed; GENERATE AC was sent, so the card may have deducted: the pending entry "
        "stays open and is settled at the card's next contact (recorded once, or closed as not "
        "paid)"
    )
    assert log.count() == 0
    (entry,) = log.pending()  # a torn transaction, for PROTOCOL.md §9 recovery
    assert entry.atc == 1 and len(entry.cdol1_data) == 42


def test_a_torn_payment_whose_log_cannot_be_read_back_still_says_the_card_may_have_deducted(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The card left the field after GENERATE AC and the log cannot say whether the entry is
    still open: as far as this payment knows it is, so the user is told (PROTOCOL.md §9)."""

    def gone() -> bytes:
        def unreadable() -> list[PendingEntry]:
            raise LogError("cannot read the pending entries: disk I/O error")

        monkeypatch.setattr(log, "pending", unreadable)
        raise TransportError("card removed")

    transport = AtGenerateAc(transport_for(make_card()), gone)
    result = run_payment(transport, cfg, PaymentRequest(1234), env, keys, log)
    assert result.code is ExitCode.TRANSPORT
    assert result.reason.startswith(
        "card removed; GENERATE AC was sent, so the card may have deducted"
    )
    monkeypatch.undo()
    assert log.count() == 0 and len(log.pending()) == 1


def test_pending_is_written_before_generate_ac(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    seen: list[int] = []

    def look(response: bytes) -> bytes:
        seen.append(len(log.pending()))
        return response

    pay(transport_for(make_card(), INS_GAC, look), cfg, PaymentRequest(1234), env, keys, log)
    assert seen == [1] and log.pending() == []


def _torn_by_status(card: CardRuntime) -> Transport:
    """The card approves and deducts; its GENERATE AC answer reaches the terminal as 6F00."""
    return transport_for(card, INS_GAC, lambda r: b"\x6f\x00")


def test_a_refused_answer_leaves_the_entry_open_and_the_next_contact_records_it(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """PROTOCOL.md §9: after GENERATE AC, a bad answer proves nothing either way; the card's
    own last answer does. The payment is recorded once, with its own time and terminal."""
    card = make_card()
    with pytest.raises(checks.StatusError):
        pay(_torn_by_status(card), cfg, PaymentRequest(1234), env, keys, log)
    assert log.count() == 0 and [e.atc for e in log.pending()] == [1]
    assert card.state.card.used == 1234  # the card did deduct

    later = Env(env.now + timedelta(hours=2), bytes.fromhex("01020304"))
    other = TerminalConfig("TERM0002", "MERCHANT0000002", 156)
    paid = pay(transport_for(card), other, PaymentRequest(100), later, keys, log)
    assert [o.atc for o in paid.recovered] == [1] and log.pending() == []
    first, second = (r.outcome for r in log.rows())
    assert (first.atc, first.amount, first.time) == (1, 1234, env.now)
    assert (first.terminal_id, first.merchant_id) == ("TERM0001", "MERCHANT0000001")
    assert first.unpredictable_number == env.unpredictable_number
    assert (second.atc, second.amount, second.time, second.terminal_id) == (
        2,
        100,
        later.now,
        "TERM0002",
    )
    assert card.state.card.used == 1334


def test_a_torn_decline_is_recorded_as_the_decline_it_was(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """PROTOCOL.md §9: the card declined (over its credit) and its answer was torn; at the
    next contact its verified last answer is recorded once with CID 00, as an untorn decline
    is, and `pay` says it was a decline (nothing paid)."""
    from reader.cli_common import stdout
    from reader.cli_pay import _print_verdict, _run_json, verify_row

    card = make_card()
    with pytest.raises(checks.StatusError):
        pay(_torn_by_status(card), cfg, PaymentRequest(100_001), env, keys, log)
    assert card.state.card.used == 0
    later = Env(env.now + timedelta(hours=2), bytes.fromhex("01020304"))
    request = PaymentRequest(100)
    result = run_payment(transport_for(card), cfg, request, later, keys, log)
    assert result.code is ExitCode.OK
    [torn] = result.recovered
    assert (torn.atc, torn.amount, torn.cid, torn.verdict) == (1, 100_001, 0x00, "declined")
    rows = [r.outcome for r in log.rows()]
    assert [(o.atc, o.verdict, o.time) for o in rows] == [
        (1, checks.Verdict.DECLINED, env.now),
        (2, checks.Verdict.APPROVED, later.now),
    ]
    assert verify_row(rows[0], keys) == ""
    # the torn entry closed as recorded; this contact's own entry removed with its row
    assert [(r.entry.atc, r.outcome) for r in log.pending_rows()] == [(1, "recorded")]
    assert card.state.card.used == 100
    assert _run_json(result, request)["recovered"] == [
        {"atc": 1, "amount": "1000.01", "verdict": "declined"}
    ]
    with stdout.capture() as printed:
        _print_verdict(result, request)
    assert printed.get().splitlines()[0] == (
        "recovered torn payment: ATC 0001, 1000.01, declined by the card (nothing paid)"
    )


def test_a_torn_payment_recovered_is_shown_when_this_payment_is_refused(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """PROTOCOL.md §9 and docs/protocol-choices.md: the torn payment recorded at this contact
    is named even when this payment is then refused (exit 3): only --json said so, and the
    text output gave the refusal alone while the log had a new row."""
    from reader.cli_pay import _report_payment
    from reader.transport import TracingTransport

    card = make_card()
    with pytest.raises(checks.StatusError):
        pay(_torn_by_status(card), cfg, PaymentRequest(1234), env, keys, log)
    later = Env(env.now + timedelta(hours=2), bytes.fromhex("01020304"))
    request = PaymentRequest(100)
    revoked = keys.with_revoked(1)  # after the tear: the torn payment's serial was checked
    tracer = TracingTransport(transport_for(card))
    result = run_payment(tracer, cfg, request, later, revoked, log)
    assert result.code is ExitCode.REFUSED and log.count() == 1
    _report_payment(result, request, tracer, later, None, as_json=False)
    out, err = capsys.readouterr()
    assert out.splitlines() == ["recovered torn payment: ATC 0001, 12.34"]
    assert err.startswith("hcepay: error: refused: license revoked"), err


class BrokenRecord:
    """The log, whose record() fails (a full disk) while everything else works."""

    def __init__(self, inner: TransactionLog) -> None:
        self.inner = inner

    def write_pending(self, pending: PendingEntry, now: datetime) -> None:
        self.inner.write_pending(pending, now)

    def close_pending(self, pending: PendingEntry, outcome: str = "refused") -> None:
        self.inner.close_pending(pending, outcome)

    def pending(self) -> list[PendingEntry]:
        return self.inner.pending()

    def record(self, outcome: Outcome, *, later: bool = False) -> int:
        raise LogError("cannot record the transaction: database or disk is full")

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_a_torn_payment_proven_but_not_recordable_is_not_lost(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """The log fails when the torn payment is proven: pay() stops before GENERATE AC with
    NotRecordedError, and the CLI spools the torn payment and says this one was not made."""
    card = make_card()
    with pytest.raises(checks.StatusError):
        pay(_torn_by_status(card), cfg, PaymentRequest(1234), env, keys, log)
    later = Env(env.now + timedelta(hours=2), bytes.fromhex("01020304"))
    broken = BrokenRecord(log)
    with pytest.raises(NotRecordedError) as caught:
        pay(transport_for(card), cfg, PaymentRequest(100), later, keys, broken)
    assert (caught.value.outcome.atc, caught.value.outcome.amount) == (1, 1234)
    assert caught.value.recovered and "disk is full" in caught.value.reason
    assert card.state.card.used == 1234  # the new payment stopped before GENERATE AC

    result = run_payment(transport_for(card), cfg, PaymentRequest(100), later, keys, broken)  # type: ignore[arg-type]
    assert result.code is ExitCode.NOT_RECORDED and result.outcome is None
    assert "this payment was not made" in result.reason
    assert "torn payment of ATC 0001 (12.34, approved)" in result.reason
    (spooled,) = primary_path(log.path).read_text().splitlines()
    assert json.loads(spooled)["atc"] == 1 and json.loads(spooled)["amount"] == 1234


def test_a_refused_generate_ac_the_card_never_saw_closes_as_not_paid(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    card = make_card()
    refused = AtGenerateAc(transport_for(card), lambda: b"\x69\x85")
    with pytest.raises(checks.StatusError):
        pay(refused, cfg, PaymentRequest(1234), env, keys, log)
    assert [e.atc for e in log.pending()] == [1] and card.state.card.used == 0
    later = Env(env.now + timedelta(hours=2), bytes.fromhex("01020304"))
    paid = pay(transport_for(card), cfg, PaymentRequest(100), later, keys, log)
    assert paid.recovered == () and log.pending() == []
    closed = {r.entry.atc: r.outcome for r in log.pending_rows()}
    assert closed[1] == "not paid: the card holds no last answer (6A88)"
    assert [(r.outcome.atc, r.outcome.amount) for r in log.rows()] == [(2, 100)]


OTHER_CARD = bytes.fromhex("6200123456789099FFFF")  # another card's 5A, F-padded


def test_another_cards_pending_entry_is_left_open(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """PROTOCOL.md §9: a card's last answer settles only that card's entries; another
    card's torn payment waits, untouched, for that card."""
    other = PendingEntry(OTHER_CARD, 3, bytes(42))
    log.write_pending(other, env.now)
    paid = pay(transport_for(make_card()), cfg, PaymentRequest(1234), env, keys, log)
    assert paid.recovered == () and log.count() == 1
    assert log.pending() == [other]
    assert [r.outcome for r in log.pending_rows() if r.entry == other] == [None]


def test_every_pending_entry_of_the_card_is_decided_at_one_contact(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """Two open entries of the same card (a torn payment and an older one the card never
    answered) are both decided at its next contact; another card's entry stays open."""
    card = make_card()
    with pytest.raises(checks.StatusError):
        pay(_torn_by_status(card), cfg, PaymentRequest(1234), env, keys, log)
    (torn,) = log.pending()
    never = PendingEntry(torn.account, 9, torn.cdol1_data)  # an ATC the card never answered
    other = PendingEntry(OTHER_CARD, 1, torn.cdol1_data)
    log.write_pending(never, env.now)
    log.write_pending(other, env.now)
    later = Env(env.now + timedelta(hours=1), bytes.fromhex("01020304"))
    paid = pay(transport_for(card), cfg, PaymentRequest(100), later, keys, log)
    assert [o.atc for o in paid.recovered] == [1]
    assert log.pending() == [other]
    closed = {r.entry.atc: r.outcome for r in log.pending_rows() if r.entry != other}
    assert closed == {  # this payment's own entry (ATC 2): removed with its row
        1: "recorded",
        9: "not paid: the card's last answer is for another transaction",
    }
    assert [(r.outcome.atc, r.outcome.amount) for r in log.rows()] == [(1, 1234), (2, 100)]


class ReSigning:
    """A card holding its own APP key (the test profile's) that answers GENERATE AC with
    9F36 unchanged but an authorization validly signed over altered dynamic data."""

    name = "re-signing"

    def __init__(self, inner: Transport, app: RsaPrivateKey, **changes: int | bytes) -> None:
        self.inner, self.app, self.changes = inner, app, changes

    def connect(self) -> bytes:
        return self.inner.connect()

    def transmit(self, command: bytes) -> bytes:
        response = self.inner.transmit(command)
        if command[1] != INS_GAC:
            return response
        cdol1 = CommandAPDU.parse(command).data
        answer = m.parse_generate_ac_response(response[:-2])
        signed = open_authorization(self.app.public, answer.authorization, cdol1)
        again = sign_authorization(self.app, replace(signed, **self.changes), cdol1)  # type: ignore[arg-type]
        return m.build_generate_ac_response(replace(answer, authorization=again)) + response[-2:]

    def disconnect(self) -> None:
        self.inner.disconnect()


def test_a_signed_atc_other_than_the_gpos_is_refused(
    profile: Path,
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """Check 4 (PROTOCOL.md §7): 9F36 equals the GPO's ATC, but the ATC the authorization
    signs is another: refused, no row, the entry left open for §9."""
    app = load_app_key(profile, load_profile(profile))
    transport = ReSigning(transport_for(make_card()), app, atc=2)
    with pytest.raises(checks.AtcMismatchError) as caught:
        pay(transport, cfg, PaymentRequest(1234), env, keys, log)
    assert caught.value.reason == "signed ATC 0002, GPO ATC 0001"
    assert log.count() == 0 and [e.atc for e in log.pending()] == [1]
    same = ReSigning(transport_for(make_card()), app)  # re-signed unchanged: accepted
    assert pay(same, cfg, PaymentRequest(1234), env, keys, log).outcome.atc == 1


@pytest.mark.parametrize(
    ("field", "value", "name"),
    [
        ("amount", 1235, "amount"),
        ("currency", 840, "currency"),
        ("unpredictable_number", bytes.fromhex("1A2B3C4E"), "unpredictable number"),
        ("account", bytes.fromhex("6200123456789013FFFF"), "account"),
    ],
)
def test_a_signed_field_other_than_the_transactions_is_refused(
    field: str,
    value: int | bytes,
    name: str,
    profile: Path,
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """Check 4 (PROTOCOL.md §7): the authorization opens with the APP key, its ATC and CID
    are the transaction's, but one other signed field (amount, currency, unpredictable
    number, account id) is not what the terminal sent or read: refused, no row."""
    app = load_app_key(profile, load_profile(profile))
    transport = ReSigning(transport_for(make_card()), app, **{field: value})
    with pytest.raises(checks.AuthorizationCheckError) as caught:
        pay(transport, cfg, PaymentRequest(1234), env, keys, log)
    assert type(caught.value) is checks.AuthorizationCheckError
    assert caught.value.reason == f"signed {name} differs"
    assert log.count() == 0 and [e.atc for e in log.pending()] == [1]


PROFILE_CARD = json.loads(
    (Path(__file__).resolve().parents[2] / "vectors/profiles/test-card-1/card.json").read_text()
)


@pytest.mark.parametrize(
    ("later", "revoked", "refusal", "says"),
    [
        # the license (5F24 301231) has expired since the torn payment of 2026-11-28
        (datetime(2031, 6, 1, 9, 0), False, checks.LicenseCheckError, "license expired"),
        # the authority key (valid until 2031-12-31) has expired since
        (datetime(2032, 1, 15, 9, 0), False, checks.AuthorityKeyError, "expired"),
        # the license serial has been revoked since
        (datetime(2026, 11, 28, 14, 0), True, checks.LicenseCheckError, "revoked"),
    ],
    ids=["license-expired-since", "authority-key-expired-since", "serial-revoked-since"],
)
def test_a_torn_payment_is_judged_as_it_stood_when_it_was_sent(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
    later: datetime,
    revoked: bool,
    refusal: type[checks.CheckError],
    says: str,
) -> None:
    """PROTOCOL.md §9: the card deducted while its license and the authority key were good;
    what changed since refuses this contact's payment, and loses not the torn one."""
    from reader.cli_pay import verify_row

    card = make_card()
    with pytest.raises(checks.StatusError):
        pay(_torn_by_status(card), cfg, PaymentRequest(1234), env, keys, log)
    serial = int(PROFILE_CARD["serial"])
    now_keys = replace(keys, revoked=frozenset({serial})) if revoked else keys
    now = Env(later, bytes.fromhex("0B0B0B0B"))
    result = run_payment(transport_for(card), cfg, PaymentRequest(100), now, now_keys, log)
    assert result.code is ExitCode.REFUSED and says in result.reason, result.reason
    assert [o.atc for o in result.recovered] == [1]
    [row] = log.rows()
    assert (row.outcome.atc, row.outcome.amount, row.outcome.time) == (1, 1234, env.now)
    assert row.outcome.serial == serial
    assert log.pending() == [] and [r.outcome for r in log.pending_rows()] == ["recorded"]
    assert verify_row(row.outcome, now_keys) == ""  # `log --verify` judges it at its date
    with pytest.raises(refusal):  # the refusal itself is today's checks' own
        pay(transport_for(card), cfg, PaymentRequest(100), now, now_keys, log)
    assert card.state.card.used == 1234  # neither later payment reached GENERATE AC
    assert log.count() == 1


def test_a_license_revoked_before_the_torn_payment_decides_nothing(
    ca_private: RsaPrivateKey,
    profile: Path,
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """PROTOCOL.md §9: the torn payment was made under a reissued license (serial 9) while the
    old one (the profile's serial) was already revoked. A card presenting that revoked license
    at the next contact must not settle the entry: its key is not trusted, then or now."""
    old_serial = int(PROFILE_CARD["serial"])
    revoked = replace(keys, revoked=frozenset({old_serial}))
    reissued = _license_for(
        ca_private, profile, account="6200123456789012", expiry=bytes.fromhex("1230"), serial=9
    )
    card = make_card()
    torn = Tamper(
        transport_for(card, INS_READ, in_tag(0x9F46, lambda v: reissued), 2),
        INS_GAC,
        lambda r: b"\x6f\x00",
    )
    with pytest.raises(checks.StatusError):
        pay(torn, cfg, PaymentRequest(1234), env, revoked, log)
    assert [e.atc for e in log.pending()] == [1]
    later = Env(env.now + timedelta(hours=1), bytes.fromhex("0B0B0B0B"))
    result = run_payment(transport_for(card), cfg, PaymentRequest(100), later, revoked, log)
    assert result.code is ExitCode.REFUSED and "revoked" in result.reason, result.reason
    assert log.count() == 0 and result.recovered == ()
    assert [e.atc for e in log.pending()] == [1]


@pytest.mark.parametrize(
    ("later", "revoked", "recorded"),
    [
        (datetime(2031, 6, 1, 9, 0), False, True),  # license expired since: judged then
        (datetime(2026, 11, 28, 14, 0), True, False),  # revoked: it names no serial it checked
    ],
    ids=["expired-since", "revoked"],
)
def test_an_entry_of_an_older_log_keeps_todays_revocations(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
    later: datetime,
    revoked: bool,
    recorded: bool,
) -> None:
    """An entry written before schema 4 has no serial: its license is judged at its date but
    against today's revoked serials, since nothing says which license was checked then."""
    card = make_card()
    with pytest.raises(checks.StatusError):
        pay(_torn_by_status(card), cfg, PaymentRequest(1234), env, keys, log)
    log._db.execute("UPDATE pending_open SET serial = NULL")
    assert [e.serial for e in log.pending()] == [None]
    now_keys = replace(keys, revoked=frozenset({int(PROFILE_CARD["serial"])})) if revoked else keys
    now = Env(later, bytes.fromhex("0B0B0B0B"))
    result = run_payment(transport_for(card), cfg, PaymentRequest(100), now, now_keys, log)
    assert result.code is ExitCode.REFUSED
    assert log.count() == (1 if recorded else 0)
    assert [e.atc for e in log.pending()] == ([] if recorded else [1])


def test_a_recovered_payment_is_reported_when_the_log_then_fails(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PROTOCOL.md §9: the torn payment is recorded at this contact, then the log refuses
    this payment's own pending entry. The run is not attempted, and still names the torn
    payment it recorded (`recovered_atcs`), as a refused or torn run does."""
    card = make_card()
    with pytest.raises(checks.StatusError):
        pay(_torn_by_status(card), cfg, PaymentRequest(1234), env, keys, log)

    def full(pending: PendingEntry, now: datetime) -> None:
        raise LogError("cannot write the pending entry: disk I/O error")

    monkeypatch.setattr(log, "write_pending", full)
    later = Env(env.now + timedelta(hours=1), bytes.fromhex("0B0B0B0B"))
    result = run_payment(transport_for(card), cfg, PaymentRequest(100), later, keys, log)
    assert result.code is ExitCode.USAGE and "disk I/O error" in result.reason
    assert log.count() == 1 and log.pending() == []
    assert [(o.atc, o.amount) for o in result.recovered] == [(1, 1234)]


def test_an_entry_naming_another_license_is_judged_as_todays_payment(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """PROTOCOL.md §9: the entry names a license serial the card no longer presents (it was
    reissued); the license it presents now, good today, settles the torn payment."""
    card = make_card()
    with pytest.raises(checks.StatusError):
        pay(_torn_by_status(card), cfg, PaymentRequest(1234), env, keys, log)
    other = int(PROFILE_CARD["serial"]) + 1
    log._db.execute("UPDATE pending_open SET serial = ?", (other,))
    assert [e.serial for e in log.pending()] == [other]
    later = Env(env.now + timedelta(hours=1), bytes.fromhex("0B0B0B0B"))
    result = run_payment(transport_for(card), cfg, PaymentRequest(100), later, keys, log)
    assert result.code is ExitCode.OK, result.reason
    assert [(o.atc, o.amount) for o in result.recovered] == [(1, 1234)]
    assert log.count() == 2 and log.pending() == []
    assert result.recovered[0].serial == int(PROFILE_CARD["serial"])


def test_an_entry_no_license_settles_leaves_the_next_one_judged(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """PROTOCOL.md §9: an older entry names a license the card no longer presents, and the
    card's license has expired since: that entry stays open, and the next one, made under the
    license presented, is still judged as it stood and recorded."""
    card = make_card()
    with pytest.raises(checks.StatusError):
        pay(_torn_by_status(card), cfg, PaymentRequest(1234), env, keys, log)
    [torn] = log.pending()
    other = replace(torn, atc=0, serial=int(PROFILE_CARD["serial"]) + 1)
    log.write_pending(other, env.now - timedelta(hours=1))
    assert [e.atc for e in log.pending()] == [0, 1]
    now = Env(datetime(2031, 6, 1, 9, 0), bytes.fromhex("0B0B0B0B"))
    result = run_payment(transport_for(card), cfg, PaymentRequest(100), now, keys, log)
    assert result.code is ExitCode.REFUSED and "license expired" in result.reason
    assert [(o.atc, o.amount) for o in result.recovered] == [(1, 1234)]
    assert [e.atc for e in log.pending()] == [0]


def test_a_torn_entry_stays_open_while_its_authority_key_is_missing(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """docs/protocol-choices.md: a torn payment whose license verifies neither then nor now
    (its authority key left the key store) is not closed as not paid, since the card did
    deduct; this contact is refused by check 2, and a contact with the key back records it."""
    card = make_card()
    with pytest.raises(checks.StatusError):
        pay(_torn_by_status(card), cfg, PaymentRequest(1234), env, keys, log)
    later = Env(env.now + timedelta(hours=1), bytes.fromhex("0B0B0B0B"))
    keyless = run_payment(transport_for(card), cfg, PaymentRequest(100), later, KeyStore(), log)
    assert keyless.code is ExitCode.REFUSED and "unknown authority key index" in keyless.reason
    assert keyless.recovered == () and [e.atc for e in log.pending()] == [1]
    assert log.count() == 0
    result = run_payment(transport_for(card), cfg, PaymentRequest(100), later, keys, log)
    assert result.code is ExitCode.OK
    assert [(o.atc, o.amount) for o in result.recovered] == [(1, 1234)]
    assert log.pending() == [] and log.count() == 2


class RecordsOnce(BrokenRecord):
    """The log records the first row (a torn payment proven now), then fails (a full disk)."""

    def __init__(self, inner: TransactionLog) -> None:
        super().__init__(inner)
        self.rows = 0

    def record(self, outcome: Outcome, *, later: bool = False) -> int:
        if self.rows:
            return super().record(outcome, later=later)
        self.rows += 1
        return self.inner.record(outcome, later=later)


@pytest.mark.parametrize("spool_fails", [False, True], ids=["spooled", "spool-failed"])
def test_a_recovered_payment_is_reported_when_this_ones_row_is_not_recorded(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
    monkeypatch: pytest.MonkeyPatch,
    spool_fails: bool,
) -> None:
    """PROTOCOL.md §9: the torn payment is recorded at this contact; this payment's own row is
    not (and maybe not spooled either). The run still names the torn payment it recorded."""
    from reader import spool

    card = make_card()
    with pytest.raises(checks.StatusError):
        pay(_torn_by_status(card), cfg, PaymentRequest(1234), env, keys, log)
    if spool_fails:

        def full(log_path: Path, entry: object) -> Path:
            raise spool.SpoolError("no space left on device")

        monkeypatch.setattr(spool, "append", full)
    later = Env(env.now + timedelta(hours=1), bytes.fromhex("0B0B0B0B"))
    once = RecordsOnce(log)
    result = run_payment(transport_for(card), cfg, PaymentRequest(100), later, keys, once)  # type: ignore[arg-type]
    assert result.code is ExitCode.NOT_RECORDED, result.reason
    assert ("spool failed too" in result.reason) is spool_fails
    assert [(o.atc, o.amount) for o in result.recovered] == [(1, 1234)]
    assert log.count() == 1


def test_a_recovered_payment_is_reported_when_the_card_is_then_removed(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    card = make_card()
    with pytest.raises(checks.StatusError):
        pay(_torn_by_status(card), cfg, PaymentRequest(1234), env, keys, log)
    later = Env(env.now + timedelta(hours=1), bytes.fromhex("0B0B0B0B"))
    gone = AtGenerateAc(transport_for(card), card_removed)
    result = run_payment(gone, cfg, PaymentRequest(100), later, keys, log)
    assert result.code is ExitCode.TRANSPORT
    assert [(o.atc, o.amount) for o in result.recovered] == [(1, 1234)]
    assert log.count() == 1 and [e.atc for e in log.pending()] == [2]


def test_a_recovered_payment_is_reported_when_this_one_is_declined(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    card = make_card()
    with pytest.raises(checks.StatusError):
        pay(_torn_by_status(card), cfg, PaymentRequest(1234), env, keys, log)
    later = Env(env.now + timedelta(hours=1), bytes.fromhex("0B0B0B0B"))
    result = run_payment(transport_for(card), cfg, PaymentRequest(100001), later, keys, log)
    assert result.code is ExitCode.DECLINED
    assert [(o.atc, o.amount) for o in result.recovered] == [(1, 1234)]
    assert log.count() == 2


def test_a_row_is_verified_with_the_keys_as_they_stood_on_its_day(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """`log --verify` (checks.verify_recorded) judges the authority key at the transaction's
    date, not today's: a key that expired since (on the day of the payment, it was still
    valid through that day) still verifies the row; one that had expired the day before
    refuses it (PROTOCOL.md §7 check 2)."""
    then = Env(datetime(2020, 1, 15, 9, 30), env.unpredictable_number)
    paid = pay(transport_for(make_card()), cfg, PaymentRequest(1234), then, keys, log)
    key = keys.keys[1]
    on_the_day = KeyStore({1: AuthorityKey(1, key.key, date(2020, 1, 15))})
    assert verify_row(paid.outcome, on_the_day) == ""
    day_before = KeyStore({1: AuthorityKey(1, key.key, date(2020, 1, 14))})
    assert (
        verify_row(paid.outcome, day_before) == "authority key 01 expired (valid until 2020-01-14)"
    )


class Recording:
    """A transport that keeps the header (CLA INS P1 P2) of each command it sends."""

    name = "recording"

    def __init__(self, inner: Transport) -> None:
        self.inner, self.headers = inner, list[str]()

    def connect(self) -> bytes:
        return self.inner.connect()

    def transmit(self, command: bytes) -> bytes:
        self.headers.append(command[:4].hex().upper())
        return self.inner.transmit(command)

    def disconnect(self) -> None:
        self.inner.disconnect()


STEPS = ["00A40400", "00A40400", "80A80000", "00B2010C", "00B2020C", "00B2030C", "80AE5000"]


def test_the_commands_of_a_payment_and_of_one_with_an_open_entry(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """PROTOCOL.md §3 steps: SELECT PPSE, SELECT AID, GPO, READ RECORD 1-3, GENERATE AC and
    nothing else; with an open pending entry (of any card) the terminal reads the card's
    last answer, GET DATA DF02, right after SELECT AID (§9), and only then."""
    card = make_card()
    plain = Recording(transport_for(card))
    pay(plain, cfg, PaymentRequest(1234), env, keys, log)
    assert plain.headers == STEPS
    other = PendingEntry(bytes.fromhex("6200999999999999FFFF"), 5, bytes(43))
    log.write_pending(other, env.now)
    torn = Recording(transport_for(card))
    pay(torn, cfg, PaymentRequest(1234), env, keys, log)
    assert torn.headers == [*STEPS[:2], "80CADF02", *STEPS[2:]]
    assert log.pending() == [other]


def test_at_most_16_entries_are_decided_at_one_contact_the_rest_wait(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """reader/flow.py MAX_RECOVERIES: one contact decides at most 16 open entries of the
    card, oldest first (PROTOCOL.md §9); the 17th stays open for the next contact, where it
    is decided in turn: a bounded contact loses no entry."""
    account = bytes.fromhex("6200123456789012FFFF")
    entries = [PendingEntry(account, 100 + i, bytes(42)) for i in range(17)]
    for i, pending in enumerate(entries):
        log.write_pending(pending, env.now + timedelta(seconds=i))
    card = make_card()
    pay(transport_for(card), cfg, PaymentRequest(1234), env, keys, log)
    assert log.pending() == entries[16:]
    later = Env(env.now + timedelta(hours=1), bytes.fromhex("01020304"))
    pay(transport_for(card), cfg, PaymentRequest(100), later, keys, log)
    assert log.pending() == []
    outcomes = {r.entry.atc: r.outcome for r in log.pending_rows()}
    first, second = (
        f"not paid: {NotPaidReason.NO_ANSWER}",
        f"not paid: {NotPaidReason.OTHER_TRANSACTION}",
    )
    assert [outcomes[e.atc] for e in entries] == [first] * 16 + [second]


def test_the_terminal_fills_the_pdol_and_cdol1_as_protocol_3_says() -> None:
    """PROTOCOL.md §3, byte for byte: amount n12, currency n4, the unpredictable number,
    country n4, date YYMMDD, time HHMMSS, transaction type 00 (purchase), merchant id an15
    and terminal id an8 padded with spaces (the bytes every authorization signs)."""
    cfg = TerminalConfig("T1", "SHOP 7", 250)
    request = PaymentRequest(987654321, 978)
    env = Env(datetime(2027, 3, 4, 9, 5, 7), bytes.fromhex("A1B2C3D4"))
    values = dol_values(cfg, request, env)
    amount, currency, un = "000987654321", "0978", "A1B2C3D4"
    merchant, terminal = "53484F502037202020202020202020", "5431202020202020"
    pdol = [amount, currency, un, "0250", "270304", merchant, terminal]
    assert fill_dol(m.PDOL, values).hex().upper() == "".join(pdol)
    cdol1 = [amount, currency, "270304", "090507", "00", un, merchant, terminal]
    assert fill_dol(m.CDOL1, values).hex().upper() == "".join(cdol1)


@pytest.mark.parametrize(
    ("terminal_id", "merchant_id", "country"),
    [
        ("TERM\u00e90001", "MERCHANT0000001", 156),
        ("TERM0001", "MERCHANT\t000001", 156),
        ("TERM0001", "MERCHANT0000001", 1000),
        ("TERM0001", "MERCHANT0000001", -1),
    ],
    ids=["non-ASCII terminal id", "tab in merchant id", "country 1000", "country -1"],
)
def test_a_terminal_config_the_fields_cannot_carry_is_refused(
    terminal_id: str, merchant_id: str, country: int
) -> None:
    """`9F1C` and `9F16` are an (printable ASCII), `9F1A` is an ISO 3166 numeric code of 3
    digits: a config they cannot carry is refused when it is made, not sent garbled."""
    with pytest.raises(ValueError, match=r"printable ASCII|ISO 3166"):
        TerminalConfig(terminal_id, merchant_id, country)


class RepeatedPdol:
    """The real card, except that its FCI's PDOL names `9F37` a second time: the GPO's
    PDOL data is kept in `sent`, and the card is handed the data of its own PDOL."""

    name = "repeated-pdol"

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.sent = b""

    def connect(self) -> bytes:
        return self.inner.connect()

    def transmit(self, command: bytes) -> bytes:
        cmd = CommandAPDU.parse(command)
        if cmd.ins == INS_GPO:
            self.sent = m.gpo_pdol_data(cmd.data)
            return self.inner.transmit(m.gpo(self.sent[: len(fill_dol(m.PDOL, {}))]).to_bytes())
        response = self.inner.transmit(command)
        if cmd.ins == INS_SELECT and cmd.data == m.CREDIT_AID:
            pdol = m.pdol_bytes() + bytes.fromhex("9F3704")
            fci = m.AppFci(m.CREDIT_AID, m.APP_LABEL, 1, pdol)
            return m.build_app_fci(fci) + response[-2:]
        return response

    def disconnect(self) -> None:
        self.inner.disconnect()


def test_a_pdol_that_names_a_tag_twice_is_filled_entry_by_entry(
    make_card: Callable[[], CardRuntime],
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """PROTOCOL.md §1: a DOL is a list of tag + length and the terminal fills each entry;
    nothing there (nor in §7) makes a tag named twice a refusal. The PDOL's data only goes
    to GPO, so the payment goes on, each entry filled (here the unpredictable number twice)."""
    transport = RepeatedPdol(ChainingTransport(InProcessTransport(make_card())))
    paid = pay(transport, cfg, PaymentRequest(1234), env, keys, log)
    assert paid.outcome.approved
    assert transport.sent == fill_dol(m.PDOL, dol_values(cfg, PaymentRequest(1234), env)) + (
        env.unpredictable_number
    )


def test_a_card_whose_account_id_is_20_digits_is_paid_and_its_row_verifies(
    ca_private: RsaPrivateKey,
    profile: Path,
    cfg: TerminalConfig,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """PROTOCOL.md §4: `5A` is cn of up to 10 bytes, so 20 digits and no `F` (hcepay issues
    19 at most, docs/protocol-choices.md; another issuer's card may hold 20). The terminal
    reads it, the license and the authorization carry it whole, and the row re-verifies."""
    card_profile = load_profile(profile)
    app = load_app_key(profile, card_profile)
    account = bytes.fromhex("62001234567890123456")
    data = replace(card_profile.card_data(), account=account)
    fields = LicenseFields(account, bytes.fromhex("1230"), 9, 2, app.public)
    issued = issue_license(ca_private, fields, record1_value(data))
    data = replace(data, license=issued.license, remainder=issued.remainder)
    card = CardRuntime(PaymentApplet(CardEnv(data, app)), MemoryStateStore(CardState()))
    paid = pay(transport_for(card), cfg, PaymentRequest(1234), env, keys, log)
    assert paid.outcome.approved and paid.outcome.account == "62001234567890123456"
    assert [r.outcome.account for r in log.rows()] == ["62001234567890123456"]
    assert verify_row(paid.outcome, keys) == ""


def _card_licensed_until_2099(ca_private: RsaPrivateKey, profile: Path) -> CardRuntime:
    """The test card with a license that runs through December 2099 (MMYY 1299)."""
    card_profile = load_profile(profile)
    app = load_app_key(profile, card_profile)
    data = card_profile.card_data()
    fields = LicenseFields(pad_account(data.account), bytes.fromhex("1299"), 9, 2, app.public)
    issued = issue_license(ca_private, fields, record1_value(data))
    data = replace(data, license=issued.license, remainder=issued.remainder)
    return CardRuntime(PaymentApplet(CardEnv(data, app)), MemoryStateStore(CardState()))


def test_a_row_of_2050_verifies_and_a_torn_payment_of_2050_keeps_its_year(
    ca_private: RsaPrivateKey,
    profile: Path,
    cfg: TerminalConfig,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """`9A` holds two digits of the year (PROTOCOL.md §3). Read back with EMV's fixed window
    (50-99 is 19YY), a payment of 2050 was dated 1950: `log --verify` refused its row (time
    differs from the signed CDOL1 data) and a torn payment of 2050 was recorded as of 1950.
    The year read back is now the one nearest to the row's time, or to today's date."""
    later_keys = KeyStore({1: AuthorityKey(1, keys.keys[1].key, date(2099, 12, 31))})
    card = _card_licensed_until_2099(ca_private, profile)
    then = Env(datetime(2050, 3, 4, 5, 6, 7), bytes.fromhex("50505050"))
    paid = pay(transport_for(card), cfg, PaymentRequest(1234), then, later_keys, log)
    assert verify_row(paid.outcome, later_keys) == ""
    with pytest.raises(checks.StatusError):
        pay(_torn_by_status(card), cfg, PaymentRequest(500), then, later_keys, log)
    next_day = Env(then.now + timedelta(days=1), bytes.fromhex("51515151"))
    again = pay(transport_for(card), cfg, PaymentRequest(100), next_day, later_keys, log)
    (torn,) = again.recovered
    assert torn.time == then.now and verify_row(torn, later_keys) == ""


@pytest.mark.parametrize(
    ("yy", "near", "year"),
    [
        (26, None, 2026),
        (49, None, 2049),
        (50, None, 1950),
        (50, date(2050, 1, 1), 2050),
        (99, date(2050, 1, 1), 2099),  # 2099 is 49 years off, 1999 51
        (0, date(2050, 6, 1), 2000),  # 2000 and 2100 are 50 years off: the earlier
        (26, date(2026, 11, 28), 2026),
        (76, date(2026, 11, 28), 1976),  # 1976 and 2076: the earlier
        (99, date(2101, 1, 1), 2099),
    ],
)
def test_the_year_of_two_digits_is_the_nearest(yy: int, near: date | None, year: int) -> None:
    assert year_of(yy, near) == year
