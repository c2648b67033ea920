"""Transports: one small interface, wrappers stacked on it (ISO 7816-4 5.3).

`Transport.transmit(command) -> response` moves whole APDUs. `InProcessTransport` wraps a
Card (applet/card.py). `ChainingTransport` handles `61xx` (GET RESPONSE) and `6Cxx` (repeat
the command, data kept, with the Le the card asked for) once, above every transport, with a
bound on the rounds (PROTOCOL.md §3). `TracingTransport` records every (command, response)
pair it sees, for `--trace` (PROTOCOL.md §8). `LoggingTransport` logs each pair for
`hcepay -v`. Every failure is one `TransportError(reason)`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Final, Protocol

from apdu import messages
from apdu.command import CommandAPDU
from apdu.errors import DecodeError, EncodeError
from apdu.sw import SW1_MORE_DATA, SW1_WRONG_LE

if TYPE_CHECKING:
    from applet.card import Card

MAX_CHAIN_ROUNDS: Final = 64  # GET RESPONSE rounds for one command (64 x 256 bytes)
MAX_WRONG_LE_ROUNDS: Final = 1  # one repeat with the Le the card named; 6Cxx again is its fault
MAX_RESPONSE_BYTES: Final = 65536 + 2
SHORT_LE_MAX: Final = 256
MAX_TRACE_STEPS: Final = 1024
_CHAINING_SW1: Final = frozenset({SW1_WRONG_LE, SW1_MORE_DATA})
_SW1_ERRORS: Final = range(0x64, 0x70)  # execution and checking errors (ISO 7816-4 5.6)

log = logging.getLogger(__name__)


class TransportError(Exception):
    """A transport failed; `.reason` says how ("card removed", "no reader named X", ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReaderChoiceError(TransportError):
    """`--reader` matches several readers' names: a usage error (exit 2), not a failure of
    the transport; `.matches` are the names it matches, in pcscd's order."""

    def __init__(self, reader: str, matches: list[str]) -> None:
        names = ", ".join(repr(name) for name in matches)
        super().__init__(
            f"reader {reader!r} matches {len(matches)} readers: {names} "
            "(give more of the name, or its index: hcepay readers)"
        )
        self.matches = tuple(matches)


class Transport(Protocol):
    """What every transport offers the terminal (docs/architecture.md `reader/`)."""

    name: str

    def connect(self) -> bytes:
        """Power the card on; the ATR."""
        ...

    def transmit(self, command: bytes) -> bytes:
        """One command APDU out, one response APDU (data + SW) back; TransportError."""
        ...

    def disconnect(self) -> None:
        """Release the card."""
        ...


class InProcessTransport:
    """The card in this process: a Card's three methods behind the Transport interface."""

    def __init__(self, card: Card, name: str = "in-process") -> None:
        self.card = card
        self.name = name
        self._connected = False

    def connect(self) -> bytes:
        """Power on: the card's ATR."""
        atr = self.card.power_on()
        self._connected = True
        return atr

    def transmit(self, command: bytes) -> bytes:
        """Hand the command to the card (which never raises)."""
        if not self._connected:
            raise TransportError("card not powered (connect first)")
        return self.card.process(bytes(command))

    def disconnect(self) -> None:
        """Field off: the card goes back to IDLE, its durable state kept."""
        if self._connected:
            self._connected = False
            self.card.deactivate("field off")


def _status(response: bytes) -> tuple[int, int]:
    if len(response) < 2:
        return -1, -1
    return response[-2], response[-1]


class ChainingTransport:
    """`61xx` and `6Cxx` handled once, with bounded rounds (PROTOCOL.md §3, ISO 7816-4 5.6).

    A `6Cxx` answer repeats the same command (its data kept) with Le = xx; a `61xx` answer
    is followed by GET RESPONSE, in the command's class (its logical channel), until the
    card answers anything else; a GET RESPONSE answered `6Cxx` is sent once more with that
    Le. The parts are joined under the last status word; where that is an error (`64xx` to
    `6Fxx`, which carries no data, ISO 7816-4 5.6), the rest of the response is lost and the
    card's error is passed up alone. A response shorter than a status word is passed up
    unchanged: the flow refuses it (PROTOCOL.md §7 check 1).
    """

    def __init__(self, inner: Transport, max_rounds: int = MAX_CHAIN_ROUNDS) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_rounds = max_rounds

    def connect(self) -> bytes:
        """Connect the inner transport."""
        return self.inner.connect()

    def disconnect(self) -> None:
        """Disconnect the inner transport."""
        self.inner.disconnect()

    def transmit(self, command: bytes) -> bytes:
        """The whole response to `command`, chaining resolved."""
        response = self.inner.transmit(command)
        if len(response) < 2 or response[-2] not in _CHAINING_SW1:
            return response  # neither 6Cxx nor 61xx: the loops below would pass it unchanged
        for _ in range(MAX_WRONG_LE_ROUNDS):
            sw1, sw2 = _status(response)
            if sw1 != SW1_WRONG_LE:
                break
            response = self.inner.transmit(_with_le(command, sw2 or SHORT_LE_MAX))
        else:
            if _status(response)[0] == SW1_WRONG_LE:
                raise TransportError("the card keeps answering 6Cxx (wrong Le)")
        return self._collect(_get_response_cla(command[0] if command else 0), response)

    def _collect(self, cla: int, response: bytes) -> bytes:
        data = bytearray()
        for rounds in range(self.max_rounds + 1):  # the answer to the last round is read too
            sw1, sw2 = _status(response)
            if sw1 != SW1_MORE_DATA:
                if not data or len(response) < 2:  # a short answer is passed up as it is
                    return response
                if sw1 in _SW1_ERRORS:  # the rest is lost: no data with an error
                    return response
                if len(data) + len(response) > MAX_RESPONSE_BYTES:
                    raise TransportError("chained response longer than 65536 bytes")
                return bytes(data) + response
            data += response[:-2]
            if len(data) + 2 > MAX_RESPONSE_BYTES:  # its data, then at least a status word
                raise TransportError("chained response longer than 65536 bytes")
            if rounds == self.max_rounds:
                break
            response = self._get_response(cla, sw2)
        raise TransportError(f"response chaining exceeded {self.max_rounds} GET RESPONSE rounds")

    def _get_response(self, cla: int, le: int) -> bytes:
        """GET RESPONSE for the next part; a `6Cxx` answer (the card wants another Le for
        it, ISO 7816-4 5.6) is followed once, as for any command."""
        response = self.inner.transmit(_get_response(cla, le))
        for _ in range(MAX_WRONG_LE_ROUNDS):
            sw1, sw2 = _status(response)
            if sw1 != SW1_WRONG_LE:
                return response
            response = self.inner.transmit(_get_response(cla, sw2))
        if _status(response)[0] == SW1_WRONG_LE:
            raise TransportError("the card keeps answering 6Cxx (wrong Le) to GET RESPONSE")
        return response


def _get_response_cla(cla: int) -> int:
    """The class of the GET RESPONSE that continues a command of class `cla`: the same class
    (ISO 7816-4 5.6), without its command-chaining bit, for an interindustry class; for a
    proprietary one (b8 set: `80` of GPO and GENERATE AC), the interindustry class of the
    same logical channel (PROTOCOL.md §3: `00` on the basic channel; ISO 7816-4 5.4.1)."""
    if cla == 0xFF:  # not a class (ISO 7816-3 PPS; PC/SC part 3 reader commands)
        return 0x00
    if not cla & 0x80:
        return cla & ~0x10
    if cla & 0x40:  # further interindustry coding: channels 4 to 19 in b4-b1
        return 0x40 | cla & 0x0F
    return cla & 0x03  # first interindustry coding: channels 0 to 3 in b2-b1


@lru_cache(maxsize=256)
def _get_response(cla: int, le: int) -> bytes:
    """GET RESPONSE with Le = `le` (0..255, SW2 of 61xx; 0 is 256), encoded once for each."""
    return replace(messages.get_response(le), cla=cla).to_bytes()


def _with_le(command: bytes, le: int) -> bytes:
    """`command` again with Le = `le`, its data kept (ISO 7816-4 5.3.4)."""
    try:
        cmd = CommandAPDU.parse(command)
        return replace(cmd, le=le).to_bytes()
    except (DecodeError, EncodeError) as exc:
        raise TransportError(f"cannot repeat the command with Le {le}: {exc}") from None


class TracingTransport:
    """Records every (command, response) pair that passes, in order (PROTOCOL.md §8)."""

    def __init__(self, inner: Transport, max_steps: int = MAX_TRACE_STEPS) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_steps = max_steps
        self.steps: list[tuple[bytes, bytes]] = []

    def connect(self) -> bytes:
        """Connect the inner transport."""
        return self.inner.connect()

    def disconnect(self) -> None:
        """Disconnect the inner transport."""
        self.inner.disconnect()

    def transmit(self, command: bytes) -> bytes:
        """Pass the command on; keep the pair (at most `max_steps` pairs)."""
        response = self.inner.transmit(command)
        if len(self.steps) < self.max_steps:
            self.steps.append((bytes(command), bytes(response)))
        return response


class LoggingTransport:
    """One INFO line a (command, response) pair, `C <hex> R <hex>`, for `hcepay -v`.

    The line of applet/vpcd.py for a served card, logged here for every command that talks
    to a card (pay, demo, card send, vectors): the whole APDUs, as a `--trace` file keeps
    them (docs/security.md). A command the transport could not answer is logged with its
    reason, then the TransportError goes on. Logging off, an exchange costs one
    `isEnabledFor`: no hex is made.
    """

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.name = inner.name

    def connect(self) -> bytes:
        """Connect the inner transport."""
        return self.inner.connect()

    def disconnect(self) -> None:
        """Disconnect the inner transport."""
        self.inner.disconnect()

    def transmit(self, command: bytes) -> bytes:
        """Pass the command on; log the pair when INFO is on (`-v`)."""
        if not log.isEnabledFor(logging.INFO):
            return self.inner.transmit(command)
        try:
            response = self.inner.transmit(command)
        except TransportError as exc:
            log.info("C %s R none (%s)", command.hex().upper(), exc.reason)
            raise
        log.info("C %s R %s", command.hex().upper(), response.hex().upper())
        return response
