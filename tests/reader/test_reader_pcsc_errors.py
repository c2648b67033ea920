"""PC/SC return codes become the TransportError reasons users act on; reader names resolve."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from smartcard import scard
from typer.testing import CliRunner

from reader import pcsc
from reader.cli import app
from reader.cli_pay import make_demo_home
from reader.pcsc import Hresult, PcscTransport, reason_for, resolve_reader
from reader.transport import ReaderChoiceError, TransportError

ROOT = Path(__file__).resolve().parent.parent.parent

NAMES = ["Virtual PCD 00 00", "Virtual PCD 00 01"]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (Hresult.REMOVED_CARD, "card removed"),
        (Hresult.NOT_TRANSACTED, "card removed"),
        (Hresult.NO_SMARTCARD, "no card in reader"),
        (Hresult.SHARING_VIOLATION, "reader busy"),
        (Hresult.NO_SERVICE, "pcscd not running (start it: /usr/sbin/pcscd --foreground &)"),
        (Hresult.SERVICE_STOPPED, "pcscd not running (start it: /usr/sbin/pcscd --foreground &)"),
        (Hresult.UNRESPONSIVE_CARD, "card removed"),
        (Hresult.UNPOWERED_CARD, "card removed"),
        (Hresult.COMM_ERROR, "card removed"),
        (Hresult.INVALID_HANDLE, "card removed"),
        (Hresult.RESET_CARD, "card reset by another application"),
        (Hresult.READER_UNAVAILABLE, "reader unavailable"),
        (Hresult.NO_READERS_AVAILABLE, "no reader connected"),
        (Hresult.UNSUPPORTED_CARD, "card not supported (no T=0 or T=1)"),
        (Hresult.PROTO_MISMATCH, "card not supported (no T=0 or T=1)"),
        (Hresult.TIMEOUT, "reader timed out"),
        (Hresult.SECURITY_VIOLATION, pcsc.ACCESS_DENIED),
    ],
)
def test_reasons(code: int, reason: str) -> None:
    assert reason_for(code) == reason


def test_an_unlisted_code_keeps_its_number() -> None:
    assert reason_for(0x80100024).startswith("PC/SC error 80100024")


@pytest.mark.parametrize(
    ("reader", "name"),
    [
        ("Virtual PCD 00 01", "Virtual PCD 00 01"),
        (1, "Virtual PCD 00 01"),
        ("0", "Virtual PCD 00 00"),
    ],
)
def test_resolve_reader(reader: str | int, name: str) -> None:
    assert resolve_reader(reader, NAMES) == name


ACS = [
    "ACS ACR122U PICC Interface 00 00",
    "ACS ACR1252 1S CL Reader PICC 01 00",
    "Virtual PCD 00 00",
]


@pytest.mark.parametrize(
    ("reader", "name"),
    [
        ("acr122", ACS[0]),  # a part of one name, any case
        ("VIRTUAL", ACS[2]),
        ("1252 1s", ACS[1]),
        ("Virtual PCD 00 00", ACS[2]),
    ],
)
def test_a_part_of_one_name_picks_that_reader(reader: str, name: str) -> None:
    assert resolve_reader(reader, ACS) == name


def test_digits_are_an_index_before_a_part_of_a_name() -> None:
    with pytest.raises(TransportError, match="no reader number 1252"):
        resolve_reader("1252", ACS)


def test_an_exact_name_wins_over_a_part_of_another() -> None:
    names = ["Reader 0", "Reader 0 extra"]
    assert resolve_reader("Reader 0", names) == "Reader 0"
    assert resolve_reader("1", ["x 1", "y"]) == "y"  # the index before the part "1"


def test_a_whole_name_in_another_case_wins_over_a_part_of_another() -> None:
    """A name that is the start of another ("Reader 0", "Reader 0 extra") typed in another
    case is that reader, not both: it is the whole of one name and a part of the other."""
    names = ["Reader 0", "Reader 0 extra"]
    assert resolve_reader("reader 0", names) == "Reader 0"
    assert resolve_reader("READER 0 EXTRA", names) == "Reader 0 extra"
    with pytest.raises(ReaderChoiceError):
        resolve_reader("reader", names)


@pytest.mark.parametrize("reader", ["Virtual PCD 00 00", "virtual", "0", 0, ""])
def test_any_choice_among_no_readers_says_there_is_none(reader: str | int) -> None:
    """pcscd lists no reader (none plugged in, vpcd not installed): the reason is that,
    not "no reader named ..." or "no reader number 0 (0 readers)"."""
    with pytest.raises(TransportError) as caught:
        resolve_reader(reader, [])
    assert caught.value.reason == "no reader connected"


def test_connect_with_no_reader_says_there_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = NamedScard([])
    fake.install(monkeypatch)
    monkeypatch.setattr(
        scard, "SCardListReaders", lambda context, groups: (Hresult.NO_READERS_AVAILABLE, [])
    )
    with pytest.raises(TransportError) as caught:
        PcscTransport("Virtual PCD 00 00").connect()
    assert caught.value.reason == "no reader connected"


def test_a_part_of_several_names_lists_them() -> None:
    with pytest.raises(ReaderChoiceError) as caught:
        resolve_reader("acs", ACS)
    assert caught.value.matches == tuple(ACS[:2])
    assert caught.value.reason == (
        f"reader 'acs' matches 2 readers: {ACS[0]!r}, {ACS[1]!r} "
        "(give more of the name, or its index: hcepay readers)"
    )


def test_one_reader_is_singular() -> None:
    with pytest.raises(TransportError) as caught:
        resolve_reader(1, NAMES[:1])
    assert caught.value.reason == "no reader number 1 (1 reader)"


@pytest.mark.parametrize(
    ("reader", "reason"),
    [
        ("Other", "no reader named 'Other'"),
        (2, "no reader number 2 (2 readers)"),
        ("-1", "no reader named '-1'"),
        ("", "no reader named ''"),
        ("\u0661", "no reader named '\u0661'"),  # an Arabic-Indic digit is no index
    ],
)
def test_unknown_readers(reader: str | int, reason: str) -> None:
    with pytest.raises(TransportError) as caught:
        resolve_reader(reader, NAMES)
    assert caught.value.reason == reason


class FakeScard:
    """pyscard's scard calls PcscTransport makes, answering as pcsc-lite 1.9.9 does once
    pcscd has died under a connected card (or, with `daemon_alive`, once the card left)."""

    def __init__(self, transmit_code: int, *, daemon_alive: bool) -> None:
        self.transmit_code = transmit_code
        self.daemon_alive = daemon_alive
        self.connected = False

    def SCardEstablishContext(self, scope: int) -> tuple[int, int]:
        return 0, 1

    def SCardConnect(self, *args: object) -> tuple[int, int, int]:
        return 0, 7, scard.SCARD_PROTOCOL_T1

    def SCardStatus(self, card: int) -> tuple[int, str, int, int, list[int]]:
        if not self.connected:
            self.connected = True
            return 0, NAMES[0], 0, scard.SCARD_PROTOCOL_T1, list(bytes.fromhex("3B80800101"))
        code = Hresult.REMOVED_CARD if self.daemon_alive else Hresult.NO_SERVICE
        return code, "", 0, 0, []

    def SCardTransmit(self, card: int, pci: object, command: list[int]) -> tuple[int, list[int]]:
        return self.transmit_code, list(bytes(300))  # pyscard hands back its whole buffer

    def SCardDisconnect(self, card: int, disposition: int) -> int:
        return Hresult.NO_SERVICE

    def SCardReleaseContext(self, context: int) -> int:
        return Hresult.NO_SERVICE


@pytest.mark.parametrize(
    ("transmit_code", "daemon_alive", "reason"),
    [
        (
            0x8010006A,
            False,
            "pcscd not running (start it: /usr/sbin/pcscd --foreground &)",
        ),  # SCARD_W_SECURITY_VIOLATION
        (Hresult.COMM_ERROR, False, "pcscd not running (start it: /usr/sbin/pcscd --foreground &)"),
        (Hresult.NO_SERVICE, False, "pcscd not running (start it: /usr/sbin/pcscd --foreground &)"),
        (Hresult.COMM_ERROR, True, "card removed"),
        # the other code pcsc-lite gives for a broken link: polkit judges SCardConnect and
        # SCardEstablishContext, never a transmit, so no "pcscd denied access" here
        (Hresult.SECURITY_VIOLATION, True, "card removed"),
        (Hresult.REMOVED_CARD, True, "card removed"),
    ],
)
def test_a_transmit_that_pcscd_died_under_says_so(
    monkeypatch: pytest.MonkeyPatch, transmit_code: int, daemon_alive: bool, reason: str
) -> None:
    fake = FakeScard(transmit_code, daemon_alive=daemon_alive)
    for name in (
        "SCardEstablishContext",
        "SCardConnect",
        "SCardStatus",
        "SCardTransmit",
        "SCardDisconnect",
        "SCardReleaseContext",
    ):
        monkeypatch.setattr(scard, name, getattr(fake, name))
    transport = PcscTransport(NAMES[0])
    assert transport.connect() == bytes.fromhex("3B80800101")
    with pytest.raises(TransportError) as caught:
        transport.transmit(bytes.fromhex("80AE50002B00"))
    assert caught.value.reason == reason
    transport.close()


class AnsweringScard(FakeScard):
    """A connected card whose transmit succeeds with the given bytes."""

    def __init__(self, response: bytes) -> None:
        super().__init__(Hresult.SUCCESS, daemon_alive=True)
        self.response = response

    def SCardTransmit(self, card: int, pci: object, command: list[int]) -> tuple[int, list[int]]:
        return Hresult.SUCCESS, list(self.response)


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        # an ACR122U whose phone did not answer, or vpcd's card that closed its connection:
        # the transmit succeeds with nothing; the card may still be there
        (b"", "no answer from the card (the reader returned nothing)"),
        (b"\x90", "reader returned a response of 1 bytes"),
        (bytes(65537) + b"\x90\x00", "reader returned a response of 65539 bytes"),
    ],
)
def test_a_response_no_apdu_can_be_is_a_transport_error(
    monkeypatch: pytest.MonkeyPatch, response: bytes, reason: str
) -> None:
    """ISO 7816-4 5.1: a response APDU is 2 to 65538 bytes (its data and SW1 SW2); anything
    else from the reader is a TransportError, and nothing at all is no answer (the card may
    still be in the field: a phone whose app did not answer)."""
    fake = AnsweringScard(response)
    for name in ("SCardEstablishContext", "SCardConnect", "SCardStatus", "SCardTransmit"):
        monkeypatch.setattr(scard, name, getattr(fake, name))
    monkeypatch.setattr(scard, "SCardDisconnect", lambda card, disposition: 0)
    monkeypatch.setattr(scard, "SCardReleaseContext", lambda context: 0)
    transport = PcscTransport(NAMES[0])
    transport.connect()
    with pytest.raises(TransportError) as caught:
        transport.transmit(bytes.fromhex("00A4040000"))
    assert caught.value.reason == reason
    fake.response = bytes(65536) + b"\x90\x00"  # the longest response is taken
    assert len(transport.transmit(bytes.fromhex("00A4040000"))) == 65538
    transport.close()


class RecordingScard:
    """pyscard's scard calls, answering from scripted return codes and keeping the calls."""

    def __init__(
        self,
        connect_codes: list[int] | None = None,
        status_code: int = Hresult.SUCCESS,
        protocol: int = scard.SCARD_PROTOCOL_T1,
    ) -> None:
        self.connect_codes = list(connect_codes or [])
        self.status_code = status_code
        self.protocol = protocol
        self.calls: list[tuple[object, ...]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in (
            "SCardEstablishContext",
            "SCardReleaseContext",
            "SCardListReaders",
            "SCardConnect",
            "SCardStatus",
            "SCardTransmit",
            "SCardDisconnect",
        ):
            monkeypatch.setattr(scard, name, getattr(self, name))

    def SCardEstablishContext(self, scope: int) -> tuple[int, int]:
        self.calls.append(("establish",))
        return 0, 100 + len(self.calls)

    def SCardReleaseContext(self, context: int) -> int:
        self.calls.append(("release", context))
        return 0

    def SCardListReaders(self, context: int, groups: list[str]) -> tuple[int, list[str]]:
        return 0, NAMES

    def SCardConnect(
        self, context: int, name: str, share: int, protocols: int
    ) -> tuple[int, int, int]:
        self.calls.append(("connect", context, name, share))
        code = self.connect_codes.pop(0) if self.connect_codes else Hresult.SUCCESS
        return code, 7, self.protocol

    def SCardStatus(self, card: int) -> tuple[int, str, int, int, list[int]]:
        return self.status_code, NAMES[0], 0, self.protocol, [0x3B, 0x00]

    def SCardTransmit(self, card: int, pci: object, command: list[int]) -> tuple[int, list[int]]:
        self.calls.append(("transmit", pci))
        return 0, [0x90, 0x00]

    def SCardDisconnect(self, card: int, disposition: int) -> int:
        self.calls.append(("disconnect", card, disposition))
        return 0


@pytest.mark.parametrize(
    ("exclusive", "share"), [(True, scard.SCARD_SHARE_EXCLUSIVE), (False, scard.SCARD_SHARE_SHARED)]
)
def test_the_reader_is_held_exclusively_by_default(
    monkeypatch: pytest.MonkeyPatch, exclusive: bool, share: int
) -> None:
    """No other application may slip a command into a payment: PcscTransport connects with
    SCARD_SHARE_EXCLUSIVE unless told otherwise (PC/SC part 5 SCardConnect)."""
    fake = RecordingScard()
    fake.install(monkeypatch)
    transport = PcscTransport(NAMES[0], exclusive=exclusive)
    transport.connect()
    assert [c[3] for c in fake.calls if c[0] == "connect"] == [share]
    transport.close()


@pytest.mark.parametrize(
    ("protocol", "pci"),
    [(scard.SCARD_PROTOCOL_T0, scard.SCARD_PCI_T0), (scard.SCARD_PROTOCOL_T1, scard.SCARD_PCI_T1)],
)
def test_commands_go_out_with_the_protocol_the_card_took(
    monkeypatch: pytest.MonkeyPatch, protocol: int, pci: object
) -> None:
    """The PCI of each transmit is that of the protocol SCardConnect chose (T=0 or T=1)."""
    fake = RecordingScard(protocol=protocol)
    fake.install(monkeypatch)
    transport = PcscTransport(NAMES[0])
    transport.connect()
    transport.transmit(bytes.fromhex("00A4040000"))
    assert [c[1] for c in fake.calls if c[0] == "transmit"] == [pci]
    transport.close()


def test_connecting_again_lets_go_of_the_card_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second connect resets and releases the card of the first (no handle is leaked)."""
    fake = RecordingScard()
    fake.install(monkeypatch)
    transport = PcscTransport(NAMES[0])
    transport.connect()
    transport.connect()
    kinds = [c[0] for c in fake.calls if c[0] in ("connect", "disconnect")]
    assert kinds == ["connect", "disconnect", "connect"]
    transport.close()


def test_a_card_whose_status_fails_is_left_and_released(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connect whose SCardStatus fails gives the card handle back (SCARD_LEAVE_CARD)
    before its TransportError: a failed connect holds no reader."""
    fake = RecordingScard(status_code=Hresult.REMOVED_CARD)
    fake.install(monkeypatch)
    transport = PcscTransport(NAMES[0])
    with pytest.raises(TransportError, match="card removed"):
        transport.connect()
    assert ("disconnect", 7, scard.SCARD_LEAVE_CARD) in fake.calls
    transport.close()


def test_a_stale_context_is_replaced_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """pcscd restarted: the kept context answers SCARD_E_INVALID_HANDLE; connect makes a
    fresh context and tries once more, which succeeds."""
    fake = RecordingScard(connect_codes=[Hresult.INVALID_HANDLE])
    fake.install(monkeypatch)
    transport = PcscTransport(NAMES[0])
    assert transport.connect() == b"\x3b\x00"
    connects = [c for c in fake.calls if c[0] == "connect"]
    assert len(connects) == 2 and connects[0][1] != connects[1][1]
    assert [c[0] for c in fake.calls].count("establish") == 2
    transport.close()


class RestartedPcscd(RecordingScard):
    """pcscd restarted after the first connect: the contexts made before answer `code` to
    SCardListReaders and SCardConnect, the ones made after work."""

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code
        self.contexts: list[int] = []
        self.dead: set[int] = set()

    def restart(self) -> None:
        self.dead = set(self.contexts)

    def SCardEstablishContext(self, scope: int) -> tuple[int, int]:
        code, context = super().SCardEstablishContext(scope)
        self.contexts.append(context)
        return code, context

    def SCardListReaders(self, context: int, groups: list[str]) -> tuple[int, list[str]]:
        self.calls.append(("list", context))
        return (self.code, []) if context in self.dead else (0, NAMES)

    def SCardConnect(
        self, context: int, name: str, share: int, protocols: int
    ) -> tuple[int, int, int]:
        if context in self.dead:
            self.calls.append(("connect", context, name, share))
            return self.code, 0, 0
        if name not in NAMES:
            return Hresult.UNKNOWN_READER, 0, 0
        return super().SCardConnect(context, name, share, protocols)


@pytest.mark.parametrize("code", [Hresult.INVALID_HANDLE, Hresult.NO_SERVICE])
@pytest.mark.parametrize("reader", [1, "1", "pcd 00 01"], ids=["int", "digits", "part"])
def test_a_stale_context_is_replaced_for_an_index_or_a_part_of_a_name(
    monkeypatch: pytest.MonkeyPatch, code: int, reader: str | int
) -> None:
    """Once pcscd restarted, the kept context fails whichever call comes first: for an index
    given as a number that is SCardListReaders, and the connect is made again on a fresh
    context, not refused as "card removed" or "pcscd not running" (pcscd runs again); as
    for a reader given by digits or by a part of its name (SCardConnect first)."""
    fake = RestartedPcscd(code)
    fake.install(monkeypatch)
    transport = PcscTransport(reader)
    assert transport.connect() == b"\x3b\x00"
    fake.restart()
    assert transport.connect() == b"\x3b\x00"
    assert transport.name == f"pcsc:{NAMES[1]}"
    assert [c[0] for c in fake.calls].count("establish") == 2
    transport.close()


def test_a_pcscd_restart_during_the_wait_for_a_card_connects_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pcscd restarted while `pay` waits for the tap: the watch's SCARD_E_INVALID_HANDLE
    makes a fresh context and the wait goes on there, not "card removed"."""
    clock = FakeClock()
    fake = EmptyReaderScard(clock, arrives_after=2)
    fake.install(monkeypatch)
    watches: list[int] = []

    def status_change(
        context: int, timeout: int, states: list[tuple[str, int]]
    ) -> tuple[int, list[tuple[str, int, list[int]]]]:
        watches.append(context)
        if len(watches) == 1:
            return Hresult.INVALID_HANDLE, []
        return fake.SCardGetStatusChange(context, timeout, states)

    monkeypatch.setattr(scard, "SCardGetStatusChange", status_change)
    transport = PcscTransport(NAMES[0], wait=30, clock=clock, sleep=clock.sleep)
    assert transport.connect() == b"\x3b\x00"
    assert len(set(watches)) == 2  # the second context watched on
    transport.close()


def test_a_pcscd_restart_during_the_wait_keeps_the_wait_and_its_announcement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wait goes on on the fresh context: "present the card" is said once, and `wait`
    seconds after it began the wait ends, not `wait` seconds after pcscd restarted."""
    clock = FakeClock()
    fake = EmptyReaderScard(clock, arrives_after=None)
    fake.install(monkeypatch)
    watches = 0

    def status_change(
        context: int, timeout: int, states: list[tuple[str, int]]
    ) -> tuple[int, list[tuple[str, int, list[int]]]]:
        nonlocal watches
        watches += 1
        if clock.now >= 2 and watches < 100:  # pcscd restarts 2 s into the wait
            watches = 100
            return Hresult.INVALID_HANDLE, []
        return fake.SCardGetStatusChange(context, timeout, states)

    monkeypatch.setattr(scard, "SCardGetStatusChange", status_change)
    said: list[tuple[str, float]] = []
    transport = PcscTransport(
        NAMES[0], wait=3, on_wait=lambda *a: said.append(a), clock=clock, sleep=clock.sleep
    )
    with pytest.raises(TransportError) as caught:
        transport.connect()
    assert caught.value.reason == f"no card presented to {NAMES[0]} within 3 s"
    assert watches >= 100  # the restart was seen
    assert said == [(NAMES[0], 3)]
    assert clock.now <= 3.3
    transport.close()


def test_a_named_reader_that_goes_away_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader listed by pcscd but gone when connected to: "no reader named ..." (what a
    user can act on), not the PC/SC error number."""
    fake = RecordingScard(connect_codes=[Hresult.UNKNOWN_READER, Hresult.UNKNOWN_READER])
    fake.install(monkeypatch)
    transport = PcscTransport(NAMES[0])
    with pytest.raises(TransportError) as caught:
        transport.connect()
    assert caught.value.reason == f"no reader named {NAMES[0]!r}"
    transport.close()


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (Hresult.SECURITY_VIOLATION, "pcscd denied access (its polkit rules do not allow"),
        (Hresult.COMM_ERROR, "pcscd closed the connection (access denied by its polkit"),
    ],
    ids=["access-denied", "rpc-transport-error"],
)
def test_a_client_pcscd_turns_away_is_told_so(
    monkeypatch: pytest.MonkeyPatch, code: int, reason: str
) -> None:
    """pcscd running, its polkit rules refusing this user or session (over ssh, in a
    container): SCardEstablishContext answers "Access denied", or "RPC transport error"
    from older client libraries. Neither is "card removed": no card is involved yet."""
    fake = RecordingScard()
    fake.install(monkeypatch)
    monkeypatch.setattr(scard, "SCardEstablishContext", lambda scope: (code, 0))
    with pytest.raises(TransportError) as caught:
        pcsc.list_readers()
    assert caught.value.reason.startswith(reason)
    assert "docs/pcsc.md" in caught.value.reason
    with pytest.raises(TransportError) as caught:
        PcscTransport(NAMES[0]).connect()
    assert caught.value.reason.startswith(reason)


def test_a_card_pcscd_denies_is_told_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """polkit may allow pcscd but not the card (SCardConnect: SCARD_W_SECURITY_VIOLATION)."""
    RecordingScard(connect_codes=[Hresult.SECURITY_VIOLATION]).install(monkeypatch)
    with pytest.raises(TransportError) as caught:
        PcscTransport(NAMES[0]).connect()
    assert caught.value.reason == pcsc.ACCESS_DENIED


def test_list_readers_with_no_reader_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    """SCARD_E_NO_READERS_AVAILABLE from SCardListReaders is an empty list, not an error
    (`hcepay readers` says there is none)."""
    fake = RecordingScard()
    fake.install(monkeypatch)
    monkeypatch.setattr(
        scard, "SCardListReaders", lambda context, groups: (Hresult.NO_READERS_AVAILABLE, [])
    )
    assert pcsc.list_readers() == []


def test_list_readers_gives_an_atr_only_for_a_present_card(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader's ATR is shown only when SCardGetStatusChange says a card is present (an
    empty reader may still hand back the last card's ATR)."""
    fake = RecordingScard()
    fake.install(monkeypatch)

    def status_change(
        context: int, timeout: int, states: list[tuple[str, int]]
    ) -> tuple[int, list[tuple[str, int, list[int]]]]:
        return 0, [
            (NAMES[0], scard.SCARD_STATE_EMPTY, [0x3B, 0x00]),
            (NAMES[1], scard.SCARD_STATE_PRESENT, [0x3B, 0x80]),
            ("Mute 00 00", scard.SCARD_STATE_PRESENT | scard.SCARD_STATE_MUTE, [0x3B, 0x81]),
        ]

    monkeypatch.setattr(scard, "SCardGetStatusChange", status_change)
    assert pcsc.list_readers() == [
        pcsc.ReaderInfo(0, NAMES[0], None),
        pcsc.ReaderInfo(1, NAMES[1], b"\x3b\x80"),
        pcsc.ReaderInfo(2, "Mute 00 00", None, mute=True),
    ]


def test_a_mute_card_is_not_a_card_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    """SCardConnect's SCARD_W_UNRESPONSIVE_CARD: a card is in the field and did not answer
    the reset. Said so, not "card removed" (the card never left)."""
    RecordingScard(connect_codes=[Hresult.UNRESPONSIVE_CARD]).install(monkeypatch)
    transport = PcscTransport(NAMES[0])
    with pytest.raises(TransportError) as caught:
        transport.connect()
    assert caught.value.reason == (
        "card not responding (no answer to reset): take it away and present it again"
    )
    transport.close()


class NamedScard(RecordingScard):
    """pcscd with the readers `names`: SCardConnect knows only their exact names."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

    def SCardListReaders(self, context: int, groups: list[str]) -> tuple[int, list[str]]:
        return 0, self.names

    def SCardConnect(
        self, context: int, name: str, share: int, protocols: int
    ) -> tuple[int, int, int]:
        if name not in self.names:
            self.calls.append(("connect", context, name, share))
            return Hresult.UNKNOWN_READER, 0, 0
        return super().SCardConnect(context, name, share, protocols)


def test_a_part_of_a_name_connects_to_that_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = NamedScard(ACS)
    fake.install(monkeypatch)
    transport = PcscTransport("acr122")
    transport.connect()
    assert transport.name == f"pcsc:{ACS[0]}"
    transport.close()


@pytest.mark.parametrize(
    "argv",
    [
        ["pay", "--amount", "1.00", "--reader", "acs"],
        ["card", "send", "--reader", "acs", "00A4040000"],
        ["vectors", "replay", "--reader", "acs", "VECTORS"],
        ["vectors", "record", "--out", "OUT", "--reader", "acs"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_a_reader_part_of_several_names_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str]
) -> None:
    """`--reader acs` with two ACS readers: exit 2, both named; nothing sent to a card."""
    NamedScard(ACS).install(monkeypatch)
    home = tmp_path / "home"
    make_demo_home(home)
    vectors = Path(__file__).resolve().parents[2] / "vectors" / "card"
    where = {"VECTORS": str(vectors), "OUT": str(tmp_path / "v.json")}
    args = [where.get(a, a) for a in argv]
    result = CliRunner().invoke(app, args, env={"HCEPAY_HOME": str(home), "COLUMNS": "300"})
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr.count("\n") == 1
    assert f"reader 'acs' matches 2 readers: {ACS[0]!r}, {ACS[1]!r}" in result.stderr
    assert not (tmp_path / "v.json").exists()


class FakeClock:
    """A monotonic clock that only `sleep` moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class RealSleepClock(FakeClock):
    """A FakeClock whose `sleep` is the real one (the CLI's clock is the real one)."""

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def test_a_reader_busy_for_a_moment_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A desktop service grabs the new card for a moment: the connect is tried again after
    short sleeps and then succeeds (SCARD_E_SHARING_VIOLATION three times)."""
    fake = RecordingScard(connect_codes=[Hresult.SHARING_VIOLATION] * 3)
    fake.install(monkeypatch)
    clock = FakeClock()
    transport = PcscTransport(NAMES[0], clock=clock, sleep=clock.sleep)
    assert transport.connect() == b"\x3b\x00"
    assert [c[0] for c in fake.calls].count("connect") == 4
    assert clock.sleeps == [pcsc.BUSY_SLICE] * 3
    transport.close()


def test_a_reader_held_for_good_is_busy_after_about_two_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = RecordingScard(connect_codes=[Hresult.SHARING_VIOLATION] * 1000)
    fake.install(monkeypatch)
    clock = FakeClock()
    transport = PcscTransport(NAMES[0], clock=clock, sleep=clock.sleep)
    with pytest.raises(TransportError) as caught:
        transport.connect()
    assert caught.value.reason == pcsc.busy_reason(NAMES[0])
    assert caught.value.reason.startswith(f"reader busy: another application holds {NAMES[0]} (")
    assert "scdaemon" in caught.value.reason and "gsd-smartcard" in caught.value.reason
    assert 1.9 <= clock.now <= 2.2 and max(clock.sleeps) <= 0.2  # bounded, in short sleeps
    transport.close()


class EmptyReaderScard(RecordingScard):
    """A reader with no card until `arrives_after` status checks have timed out (None: never);
    each timed-out SCardGetStatusChange moves `clock` on by its timeout."""

    def __init__(self, clock: FakeClock, arrives_after: int | None) -> None:
        super().__init__()
        self.clock = clock
        self.arrives_after = arrives_after
        self.present = False
        self.timeouts: list[int] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        super().install(monkeypatch)
        monkeypatch.setattr(scard, "SCardGetStatusChange", self.SCardGetStatusChange)

    def SCardConnect(
        self, context: int, name: str, share: int, protocols: int
    ) -> tuple[int, int, int]:
        if name not in NAMES or not self.present:
            self.calls.append(("connect", context, name, share))
            return Hresult.UNKNOWN_READER if name not in NAMES else Hresult.NO_SMARTCARD, 0, 0
        return super().SCardConnect(context, name, share, protocols)

    def SCardGetStatusChange(
        self, context: int, timeout: int, states: list[tuple[str, int]]
    ) -> tuple[int, list[tuple[str, int, list[int]]]]:
        ((name, current),) = states
        if self.arrives_after is not None and len(self.timeouts) >= self.arrives_after:
            self.present = True
            return 0, [(name, scard.SCARD_STATE_PRESENT | scard.SCARD_STATE_CHANGED, [0x3B])]
        if current == scard.SCARD_STATE_UNAWARE:  # the first call answers the state at once
            return 0, [(name, scard.SCARD_STATE_EMPTY | scard.SCARD_STATE_CHANGED, [])]
        self.timeouts.append(timeout)
        self.clock.sleep(timeout / 1000)
        return Hresult.TIMEOUT, [(name, current, [])]


def test_a_connect_waits_for_the_card_to_be_presented(monkeypatch: pytest.MonkeyPatch) -> None:
    """`wait`: an empty reader is watched (SCardGetStatusChange, in short slices) until the
    phone is tapped; the reader is announced once."""
    clock = FakeClock()
    fake = EmptyReaderScard(clock, arrives_after=3)
    fake.install(monkeypatch)
    said: list[tuple[str, float]] = []
    transport = PcscTransport(
        "pcd 00 00", wait=30, on_wait=lambda *a: said.append(a), clock=clock, sleep=clock.sleep
    )
    assert transport.connect() == b"\x3b\x00"
    assert said == [(NAMES[0], 30)]
    assert fake.timeouts and max(fake.timeouts) <= 500  # Ctrl-C is seen within half a second
    transport.close()


class WobblingTapScard(EmptyReaderScard):
    """A phone seen in the field, gone again when connected to (`gone_code`), then back."""

    def __init__(self, clock: FakeClock, gone_code: int) -> None:
        super().__init__(clock, arrives_after=2)
        self.gone_code = gone_code
        self.wobbled = False

    def SCardConnect(
        self, context: int, name: str, share: int, protocols: int
    ) -> tuple[int, int, int]:
        if self.present and not self.wobbled:
            self.wobbled = True
            self.present = False
            self.arrives_after = len(self.timeouts) + 2
            self.calls.append(("connect", context, name, share))
            return self.gone_code, 0, 0
        return super().SCardConnect(context, name, share, protocols)


@pytest.mark.parametrize(
    "gone_code", [Hresult.NO_SMARTCARD, Hresult.REMOVED_CARD], ids=["no-card", "removed"]
)
def test_a_tap_that_wobbles_is_waited_for_again(
    monkeypatch: pytest.MonkeyPatch, gone_code: int
) -> None:
    """A phone that enters the field and leaves it before SCardConnect (a hand that
    wobbles) is watched for again within the same wait, not "no card in reader" or "card
    removed" with most of the wait left; the wait is announced once."""
    clock = FakeClock()
    fake = WobblingTapScard(clock, gone_code)
    fake.install(monkeypatch)
    said: list[tuple[str, float]] = []
    transport = PcscTransport(
        NAMES[0], wait=30, on_wait=lambda *a: said.append(a), clock=clock, sleep=clock.sleep
    )
    assert transport.connect() == b"\x3b\x00"
    assert fake.wobbled and said == [(NAMES[0], 30)]
    assert clock.now < 5
    transport.close()


def test_a_tap_that_keeps_wobbling_ends_with_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader that reports a card SCardConnect never finds: tried again, paced, until
    the wait is over, then the wait's own reason."""
    clock = FakeClock()
    fake = EmptyReaderScard(clock, arrives_after=0)
    fake.install(monkeypatch)
    monkeypatch.setattr(scard, "SCardConnect", lambda *a: (Hresult.NO_SMARTCARD, 0, 0))
    transport = PcscTransport(NAMES[0], wait=3, clock=clock, sleep=clock.sleep)
    with pytest.raises(TransportError) as caught:
        transport.connect()
    assert caught.value.reason == f"no card presented to {NAMES[0]} within 3 s"
    assert 3 <= clock.now <= 3.3
    transport.close()


def test_a_reader_unplugged_during_the_wait_is_said_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reader is unplugged while `pay` waits for the tap: SCardGetStatusChange reports
    SCARD_STATE_UNKNOWN (pcsc-lite: the name is no longer known) and the wait ends then,
    saying so, not with "no card presented ... within 30 s" half a minute later."""
    clock = FakeClock()
    fake = EmptyReaderScard(clock, arrives_after=None)
    fake.install(monkeypatch)
    calls: list[int] = []

    def status_change(
        context: int, timeout: int, states: list[tuple[str, int]]
    ) -> tuple[int, list[tuple[str, int, list[int]]]]:
        calls.append(timeout)
        if len(calls) < 3:
            return fake.SCardGetStatusChange(context, timeout, states)
        ((name, current),) = states
        if current & scard.SCARD_STATE_UNKNOWN:  # told already: a slice goes by unchanged
            clock.sleep(timeout / 1000)
            return Hresult.TIMEOUT, [(name, current, [])]
        return 0, [(name, scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_CHANGED, [])]

    monkeypatch.setattr(scard, "SCardGetStatusChange", status_change)
    transport = PcscTransport(NAMES[0], wait=30, clock=clock, sleep=clock.sleep)
    with pytest.raises(TransportError) as caught:
        transport.connect()
    assert caught.value.reason == f"reader {NAMES[0]} is gone (unplugged during the wait)"
    assert clock.now < 1
    transport.close()


def test_a_mute_card_at_the_end_of_the_wait_is_said_to_be_mute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A card held in the field the whole wait that never answers the reset (PC/SC
    SCARD_STATE_PRESENT | SCARD_STATE_MUTE): at the wait's end the reason is that card,
    not "no card presented"."""
    clock = FakeClock()
    EmptyReaderScard(clock, arrives_after=None).install(monkeypatch)
    mute = scard.SCARD_STATE_PRESENT | scard.SCARD_STATE_MUTE

    def status_change(
        context: int, timeout: int, states: list[tuple[str, int]]
    ) -> tuple[int, list[tuple[str, int, list[int]]]]:
        ((name, current),) = states
        if current == scard.SCARD_STATE_UNAWARE:
            return 0, [(name, mute | scard.SCARD_STATE_CHANGED, [])]
        clock.sleep(timeout / 1000)
        return Hresult.TIMEOUT, [(name, current, [])]

    monkeypatch.setattr(scard, "SCardGetStatusChange", status_change)
    transport = PcscTransport(NAMES[0], wait=3, clock=clock, sleep=clock.sleep)
    with pytest.raises(TransportError) as caught:
        transport.connect()
    assert caught.value.reason == pcsc.MUTE_CARD
    assert 3 <= clock.now <= 3.3
    transport.close()


def test_a_card_mute_at_the_connect_is_waited_on_until_presented_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a wait, a card that is mute when the connect starts (SCARD_W_UNRESPONSIVE_CARD:
    a phone held badly) is not the end: the reader is watched until the phone, taken away
    and presented again, answers its reset, as the mute message asks the user to do."""
    clock = FakeClock()
    fake = EmptyReaderScard(clock, arrives_after=2)
    fake.install(monkeypatch)
    fake.present = True  # a card is in the field, but the first connect finds it mute
    fake.connect_codes = [Hresult.UNRESPONSIVE_CARD]
    transport = PcscTransport(NAMES[0], wait=3, clock=clock, sleep=clock.sleep)
    assert transport.connect() == bytes([0x3B, 0x00])
    assert [c[0] for c in fake.calls].count("connect") == 2  # mute, then answered
    assert len(fake.timeouts) == 2 and 0 < clock.now < 3  # it waited, then connected
    transport.close()


def test_no_card_within_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    EmptyReaderScard(clock, arrives_after=None).install(monkeypatch)
    transport = PcscTransport(NAMES[0], wait=3, clock=clock, sleep=clock.sleep)
    with pytest.raises(TransportError) as caught:
        transport.connect()
    assert caught.value.reason == f"no card presented to {NAMES[0]} within 3 s"
    assert 3 <= clock.now <= 3.3
    transport.close()


def test_pay_waits_for_the_tap_and_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`pay --reader NAME --wait N` with nothing on the reader: one line asks for the card,
    then exit 4 naming the wait (it said "no card in reader" at once)."""
    clock = RealSleepClock()
    EmptyReaderScard(clock, arrives_after=None).install(monkeypatch)
    home = tmp_path / "home"
    make_demo_home(home)
    args = ["pay", "--amount", "1.00", "--reader", "0", "--wait", "0.6", "--home", str(home)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 4, (result.output, result.exception)
    assert result.stderr.splitlines() == [
        f"present the card or phone to {NAMES[0]} (waiting up to 0.6 s)",
        f"hcepay: error: transport error: no card presented to {NAMES[0]} within 0.6 s",
    ]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["vectors", "replay", "vectors/card/card-approve-basic.json"], "transport"),
        (["vectors", "record", "--out", "{out}"], "hcepay: error: transport error: "),
    ],
)
def test_vectors_replay_and_record_wait_for_the_tap(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], said: str
) -> None:
    """`vectors replay` and `record` on a --reader wait for the card as `pay` does (they
    answered "no card" at once: the phone had to be on the reader first)."""
    clock = RealSleepClock()
    EmptyReaderScard(clock, arrives_after=None).install(monkeypatch)
    monkeypatch.chdir(ROOT)
    argv = [a.format(out=tmp_path / "v.json") for a in args]
    result = CliRunner().invoke(app, [*argv, "--reader", "0", "--wait", "0.6"])
    assert result.exit_code == 4, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert lines[0] == f"present the card or phone to {NAMES[0]} (waiting up to 0.6 s)"
    assert f"no card presented to {NAMES[0]} within 0.6 s" in result.output
    assert said in result.output
    assert not (tmp_path / "v.json").exists()


@pytest.mark.parametrize("wait", ["-1", "abc", "nan", "inf", "3601"])
@pytest.mark.parametrize("command", ["vectors replay", "vectors record --out v.json"])
def test_a_bad_wait_of_the_vectors_commands_is_a_usage_error(
    tmp_path: Path, wait: str, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [*command.split(), "--reader", "0", "--wait", wait])
    assert result.exit_code == 2, (result.output, result.exception)
    assert "--wait" in result.stderr and "no such option" not in result.stderr
    assert not (tmp_path / "v.json").exists()


@pytest.mark.parametrize("wait", ["-1", "abc", "nan", "inf", "3601"])
@pytest.mark.parametrize("command", ["pay", "card send"])
def test_a_bad_wait_is_a_usage_error(tmp_path: Path, wait: str, command: str) -> None:
    home = tmp_path / "home"
    make_demo_home(home)
    argv = ["--amount", "1.00"] if command == "pay" else ["00A4040000"]
    args = [*command.split(), "--reader", "0", "--wait", wait, "--home", str(home), *argv]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 2, (result.output, result.exception)
    assert "--wait" in result.stderr


def test_wait_without_a_reader_is_a_usage_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_demo_home(home)
    args = ["pay", "--amount", "1.00", "--wait", "5", "--home", str(home)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr == (
        "hcepay: error: --wait waits for a card in a PC/SC reader: give --reader NAME too\n"
    )
