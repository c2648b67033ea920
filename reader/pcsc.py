"""The terminal's PC/SC transport: any reader pcscd knows, through pyscard's `scard` layer.

Reader names and indices are the ones pyscard (and `pcsc_scan`) shows. Every PC/SC failure
becomes one `TransportError` with a reason a user can act on (PC/SC part 5, SCARD_E_*/W_*).
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from smartcard import scard

from reader.transport import ReaderChoiceError, TransportError

MAX_RESPONSE = 65538  # an extended-length response and its status word


class Hresult(IntEnum):
    """The PC/SC return codes we tell apart (pcsc-lite pcsclite.h)."""

    SUCCESS = 0x00000000
    INVALID_HANDLE = 0x80100003
    UNKNOWN_READER = 0x80100009
    TIMEOUT = 0x8010000A
    SHARING_VIOLATION = 0x8010000B
    NO_SMARTCARD = 0x8010000C
    PROTO_MISMATCH = 0x8010000F
    COMM_ERROR = 0x80100013
    NOT_TRANSACTED = 0x80100016
    READER_UNAVAILABLE = 0x80100017
    NO_SERVICE = 0x8010001D
    SERVICE_STOPPED = 0x8010001E
    NO_READERS_AVAILABLE = 0x8010002E
    UNSUPPORTED_CARD = 0x80100065
    UNRESPONSIVE_CARD = 0x80100066
    UNPOWERED_CARD = 0x80100067
    RESET_CARD = 0x80100068
    REMOVED_CARD = 0x80100069
    SECURITY_VIOLATION = 0x8010006A


CARD_REMOVED = "card removed"
NO_ANSWER = "no answer from the card (the reader returned nothing)"
NO_CARD = "no card in reader"
NO_READER = "no reader connected"
MUTE_CARD = "card not responding (no answer to reset): take it away and present it again"
READER_BUSY = "reader busy"
NO_PCSCD = "pcscd not running (start it: /usr/sbin/pcscd --foreground &)"
ACCESS_DENIED = (
    "pcscd denied access (its polkit rules do not allow this user or session: see docs/pcsc.md)"
)
REFUSED = (
    "pcscd closed the connection (access denied by its polkit rules, or a pcscd of another "
    "version than this libpcsclite: see docs/pcsc.md)"
)
WAIT_SLICE = 0.25  # one SCardGetStatusChange of a wait: Ctrl-C is seen between two
BUSY_RETRY = 2.0  # seconds a connect answered SCARD_E_SHARING_VIOLATION is tried again
BUSY_SLICE = 0.1  # the pause between two of those tries


def busy_reason(reader: str) -> str:
    """A reader another application holds: who usually does, right after a tap."""
    return (
        f"{READER_BUSY}: another application holds {reader} (a desktop service that takes "
        "every new card: scdaemon without disable-ccid in ~/.gnupg/scdaemon.conf, "
        "gsd-smartcard; or another hcepay)"
    )


_REASONS: dict[int, str] = {
    Hresult.NO_SMARTCARD: NO_CARD,
    Hresult.REMOVED_CARD: CARD_REMOVED,
    Hresult.NOT_TRANSACTED: CARD_REMOVED,
    Hresult.UNRESPONSIVE_CARD: CARD_REMOVED,
    Hresult.UNPOWERED_CARD: CARD_REMOVED,
    Hresult.RESET_CARD: "card reset by another application",
    Hresult.COMM_ERROR: CARD_REMOVED,
    Hresult.INVALID_HANDLE: CARD_REMOVED,
    Hresult.READER_UNAVAILABLE: "reader unavailable",
    Hresult.SHARING_VIOLATION: READER_BUSY,
    Hresult.NO_SERVICE: NO_PCSCD,
    Hresult.SERVICE_STOPPED: NO_PCSCD,
    Hresult.NO_READERS_AVAILABLE: NO_READER,
    Hresult.UNSUPPORTED_CARD: "card not supported (no T=0 or T=1)",
    Hresult.PROTO_MISMATCH: "card not supported (no T=0 or T=1)",
    Hresult.TIMEOUT: "reader timed out",
    Hresult.SECURITY_VIOLATION: ACCESS_DENIED,
}


_STALE = frozenset({Hresult.INVALID_HANDLE, Hresult.NO_SERVICE, Hresult.SERVICE_STOPPED})


# SCardConnect's answers while a phone is being tapped: not there yet, seen and gone again,
# or there but mute (no answer to reset: it must be taken away and presented again)
_NO_CARD_YET = frozenset({Hresult.NO_SMARTCARD, Hresult.REMOVED_CARD, Hresult.UNRESPONSIVE_CARD})


class _StaleContext(Exception):
    """The kept PC/SC context no longer works (pcscd restarted or is gone)."""


def reason_for(hresult: int) -> str:
    """The user-facing reason for a PC/SC return code."""
    code = hresult & 0xFFFFFFFF
    if code in _REASONS:
        return _REASONS[code]
    return f"PC/SC error {code:08X} ({scard.SCardGetErrorMessage(hresult)})"


def _check(hresult: int, *, reader: str | None = None) -> None:
    """Raise the TransportError for a failed PC/SC call."""
    code = hresult & 0xFFFFFFFF
    if code == Hresult.SUCCESS:
        return
    if code == Hresult.UNKNOWN_READER and reader is not None:
        raise TransportError(f"no reader named {reader!r}")
    raise TransportError(reason_for(code))


def _call(function: Any, *args: Any) -> Any:
    """Call one scard function; its own exceptions (bad arguments, a lost library) become
    TransportError too."""
    try:
        return function(*args)
    except (scard.error, TypeError, ValueError, OSError) as exc:
        raise TransportError(f"PC/SC call {function.__name__} failed: {exc}") from exc


def _establish() -> int:
    """A fresh PC/SC context. pcscd that turns a client away (polkit) makes the client
    library answer "Access denied" (SCARD_W_SECURITY_VIOLATION) or, from older versions,
    "RPC transport error" (SCARD_F_COMM_ERROR): no card is involved yet."""
    hresult, context = _call(scard.SCardEstablishContext, scard.SCARD_SCOPE_USER)
    if hresult & 0xFFFFFFFF == Hresult.COMM_ERROR:
        raise TransportError(REFUSED)
    _check(hresult)
    return int(context)


def _release(context: int) -> None:
    with contextlib.suppress(TransportError):
        _call(scard.SCardReleaseContext, context)


def _reader_names(context: int, *, kept: bool = False) -> list[str]:
    """pcscd's reader names; on a `kept` context (PcscTransport's), a code that says the
    context died with pcscd is _StaleContext, for connect to try once more afresh."""
    hresult, names = _call(scard.SCardListReaders, context, [])
    code = hresult & 0xFFFFFFFF
    if code == Hresult.NO_READERS_AVAILABLE:
        return []
    if kept and code in _STALE:
        raise _StaleContext
    _check(hresult)
    return [str(name) for name in names]


@dataclass(frozen=True)
class ReaderInfo:
    """One reader as pcscd lists it: its index, its name, the ATR of its card (None: empty,
    or `mute`: a card is there that did not answer the reset, PC/SC SCARD_STATE_MUTE)."""

    index: int
    name: str
    atr: bytes | None
    mute: bool = False


def list_readers() -> list[ReaderInfo]:
    """Every reader pcscd knows, with the ATR of a present card (no connection is made)."""
    context = _establish()
    try:
        names = _reader_names(context)
        if not names:
            return []
        states = [(name, scard.SCARD_STATE_UNAWARE) for name in names]
        hresult, results = _call(scard.SCardGetStatusChange, context, 0, states)
        _check(hresult)
        infos = []
        for index, (name, event_state, atr) in enumerate(results):
            present = bool(event_state & scard.SCARD_STATE_PRESENT)
            mute = present and bool(event_state & scard.SCARD_STATE_MUTE)
            shown = bytes(atr) if present and not mute and atr else None
            infos.append(ReaderInfo(index, str(name), shown, mute))
        return infos
    finally:
        _release(context)


def resolve_reader(reader: str | int, names: list[str]) -> str:
    """A reader's name from, in this order: its exact name; its index (a string of digits
    that names no reader is an index); its whole name in another case; a part of its name,
    any case, that only it holds ("acr122" for "ACS ACR122U PICC Interface 00 00").
    ReaderChoiceError when that part is in several names. With no reader at all, any
    choice is "no reader connected": the fix is a reader, not another name."""
    if isinstance(reader, str) and reader in names:
        return reader
    if not names:
        raise TransportError(NO_READER)
    if isinstance(reader, int) or (reader.isascii() and reader.isdigit()):
        index = int(reader)
        if 0 <= index < len(names):
            return names[index]
        readers = f"{len(names)} reader{'' if len(names) == 1 else 's'}"
        raise TransportError(f"no reader number {index} ({readers})")
    part = reader.casefold()
    whole = [name for name in names if part == name.casefold()]
    if len(whole) == 1:  # "reader 0" is "Reader 0", also beside "Reader 0 extra"
        return whole[0]
    matches = [name for name in names if part and part in name.casefold()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ReaderChoiceError(reader, matches)
    raise TransportError(f"no reader named {reader!r}")


def find_reader(reader: str | int) -> str:
    """The name of the reader `reader` stands for (resolve_reader over pcscd's list)."""
    context = _establish()
    try:
        return resolve_reader(reader, _reader_names(context))
    finally:
        _release(context)


class PcscTransport:
    """`Transport` over a PC/SC reader: connect (exclusive, T=0 or T=1), transmit, disconnect.

    Exclusive by default: no other application can slip a SELECT into our payment; a reader
    held by another application is tried again for `busy_retry` seconds (desktop services
    take a new card for a moment), then gives `TransportError(busy_reason(name))`.
    """

    def __init__(
        self,
        reader: str | int,
        *,
        exclusive: bool = True,
        busy_retry: float = BUSY_RETRY,
        wait: float = 0.0,
        on_wait: Callable[[str, float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.reader = reader
        self.exclusive = exclusive
        self.busy_retry = busy_retry
        self.wait = wait  # seconds a connect waits for a card in an empty reader
        self.on_wait = on_wait  # called once (reader name, wait) when it starts waiting
        self._clock = clock
        self._sleep = sleep
        self.name = f"pcsc:{reader}"
        self._context: int | None = None
        self._card: int | None = None
        self._pci = scard.SCARD_PCI_T1
        self.disposition = scard.SCARD_RESET_CARD
        self._finalizer: weakref.finalize[[int], PcscTransport] | None = None
        self._wait_until: float | None = None  # the end of this connect's wait for a tap

    def _open_context(self, fresh: bool) -> int:
        """The PC/SC context, kept from one connect to the next (establishing one costs a
        pcscd round trip of ~0.2 ms); `fresh` replaces it (pcscd restarted)."""
        if fresh:
            self.close()
        if self._context is None:
            self._context = _establish()
            self._finalizer = weakref.finalize(self, _release, self._context)
        return self._context

    def connect(self) -> bytes:
        """Connect to the card in the reader and return its ATR."""
        if self._card is not None:
            self.disconnect()
        self._wait_until = None
        for fresh in (False, True):  # a kept context dies with pcscd: one retry, fresh
            try:
                return self._connect(self._open_context(fresh))
            except _StaleContext:
                continue
        raise TransportError(NO_PCSCD)

    def _connect(self, context: int) -> bytes:
        share = scard.SCARD_SHARE_EXCLUSIVE if self.exclusive else scard.SCARD_SHARE_SHARED
        protocols = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1

        def attempt(name: str) -> tuple[int, Any, Any]:
            hresult, card, protocol = _call(scard.SCardConnect, context, name, share, protocols)
            return int(hresult) & 0xFFFFFFFF, card, protocol

        name = self.reader if isinstance(self.reader, str) else None
        code = int(Hresult.UNKNOWN_READER)
        if name is not None:  # a name: connect at once (one IPC round trip saved)
            code, card, protocol = attempt(name)
        if code in _STALE:
            raise _StaleContext
        if name is None or code == Hresult.UNKNOWN_READER:  # an index, or a part of a name
            name = resolve_reader(self.reader, _reader_names(context, kept=True))
            code, card, protocol = attempt(name)
        if code in _NO_CARD_YET and self.wait > 0:  # the phone is not there yet
            deadline = self._wait_deadline(name)
            self._await_card(context, name, deadline)
            code, card, protocol = attempt(name)
            while code in _NO_CARD_YET:  # a phone seen, then gone (or mute) at the connect: a
                self._sleep(BUSY_SLICE)  # tap that wobbles; watched again until the deadline
                self._await_card(context, name, deadline)
                code, card, protocol = attempt(name)
        busy_until = self._clock() + self.busy_retry
        while code == Hresult.SHARING_VIOLATION and self._clock() < busy_until:
            self._sleep(BUSY_SLICE)  # a service that took the new card lets go within ~1 s
            code, card, protocol = attempt(name)
        if code == Hresult.SHARING_VIOLATION:
            raise TransportError(busy_reason(name))
        if code == Hresult.UNRESPONSIVE_CARD:  # there, but mute: not a card that left
            raise TransportError(MUTE_CARD)
        _check(code, reader=name)
        self.name = f"pcsc:{name}"
        self._pci = (
            scard.SCARD_PCI_T0 if protocol == scard.SCARD_PROTOCOL_T0 else scard.SCARD_PCI_T1
        )
        hresult, _reader, _state, _protocol, atr = _call(scard.SCardStatus, card)
        if hresult & 0xFFFFFFFF != Hresult.SUCCESS:
            _call(scard.SCardDisconnect, card, scard.SCARD_LEAVE_CARD)
            _check(hresult, reader=name)
        self._card = int(card)
        return bytes(atr)

    def _wait_deadline(self, name: str) -> float:
        """When this connect's wait for a tap ends, set and announced once: a wait that a
        pcscd restart moved to a fresh context goes on, it does not start again."""
        if self._wait_until is None:
            if self.on_wait is not None:
                self.on_wait(name, self.wait)
            self._wait_until = self._clock() + self.wait
        return self._wait_until

    def _await_card(self, context: int, name: str, deadline: float) -> None:
        """Wait until `deadline` for a card in reader `name` (PC/SC part 5
        SCardGetStatusChange, in slices of WAIT_SLICE); TransportError when none comes."""
        state = scard.SCARD_STATE_UNAWARE
        while (left := deadline - self._clock()) > 0:
            timeout_ms = max(1, int(min(left, WAIT_SLICE) * 1000))
            hresult, states = _call(
                scard.SCardGetStatusChange, context, timeout_ms, [(name, state)]
            )
            code = hresult & 0xFFFFFFFF
            if code == Hresult.TIMEOUT:
                continue
            if code in _STALE:  # pcscd restarted (or stopped) during the wait
                raise _StaleContext
            _check(hresult, reader=name)
            event = int(states[0][1])
            if event & scard.SCARD_STATE_UNKNOWN:  # pcscd no longer knows the reader
                raise TransportError(f"reader {name} is gone (unplugged during the wait)")
            if event & scard.SCARD_STATE_PRESENT and not event & scard.SCARD_STATE_MUTE:
                return
            state = event & ~scard.SCARD_STATE_CHANGED
        if state & scard.SCARD_STATE_PRESENT:  # there all along, but mute (no ATR)
            raise TransportError(MUTE_CARD)
        raise TransportError(f"no card presented to {name} within {self.wait:g} s")

    def transmit(self, command: bytes) -> bytes:
        """Send one command APDU; return the response APDU (data and status word)."""
        if self._card is None:
            raise TransportError("not connected")
        hresult, response = _call(scard.SCardTransmit, self._card, self._pci, list(command))
        if hresult & 0xFFFFFFFF != Hresult.SUCCESS:
            raise TransportError(self._transmit_reason(hresult))
        if not response:  # a phone that did not answer (ACR122U), or vpcd's card gone
            raise TransportError(NO_ANSWER)
        if len(response) < 2 or len(response) > MAX_RESPONSE:
            raise TransportError(f"reader returned a response of {len(response)} bytes")
        return bytes(response)

    def _transmit_reason(self, hresult: int) -> str:
        """Why a transmit failed. pcsc-lite's client answers a transmit that pcscd died under
        with SCARD_F_COMM_ERROR or SCARD_W_SECURITY_VIOLATION (pcsc-lite 1.9.9), not
        SCARD_E_NO_SERVICE: the card's status, asked once more, tells a pcscd that is gone
        from a card that is. With pcscd still there, both codes are the same broken link:
        polkit judges a connect, never a transmit, so neither is "pcscd denied access"."""
        code = hresult & 0xFFFFFFFF
        if code not in (Hresult.NO_SERVICE, Hresult.SERVICE_STOPPED) and self._card is not None:
            with contextlib.suppress(TransportError):
                status = _call(scard.SCardStatus, self._card)[0] & 0xFFFFFFFF
                if status in (Hresult.NO_SERVICE, Hresult.SERVICE_STOPPED):
                    return NO_PCSCD
        if code == Hresult.SECURITY_VIOLATION:
            code = Hresult.COMM_ERROR
        return reason_for(code)

    def disconnect(self) -> None:
        """Reset the card (its applet returns to IDLE) and release the reader; never raises.
        The PC/SC context is kept for the next connect (close() releases it)."""
        card, self._card = self._card, None
        if card is not None:
            with contextlib.suppress(TransportError):
                _call(scard.SCardDisconnect, card, self.disposition)

    def close(self) -> None:
        """Disconnect and release the PC/SC context (also done when the object is collected)."""
        self.disconnect()
        finalizer, self._finalizer, self._context = self._finalizer, None, None
        if finalizer is not None:
            finalizer()

    def __enter__(self) -> PcscTransport:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
