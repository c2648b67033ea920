"""Serve a card to pcscd through vsmartcard's vpcd driver.

vpcd runs inside pcscd and listens (reader "Virtual PCD 00 00" on TCP 35963, "... 00 01" on
35964); the card is the TCP client. Each message either way is a 2-byte big-endian length,
then the payload. From vpcd, a 1-byte payload 00, 01, 02 or 04 is a control byte (`Control`);
any other payload is a command APDU (a 1-byte APDU included: vpcd sends it like any APDU and
waits for its answer). The card answers an APDU with its response APDU and an ATR request with
the ATR; power off, power on and reset get no answer.

Two layers: `FrameReader` is pure (bytes in, whole messages out, never half a frame), and
`VpcdClient` is the socket loop around it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from applet.card import Card

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 35963
_PORT = re.compile(r"[0-9]{1,5}")  # ASCII digits: isdigit() takes "٣" and "²"
LENGTH_SIZE = 2
MAX_PAYLOAD = 0xFFFF
MAX_BUFFER = 4 * (LENGTH_SIZE + MAX_PAYLOAD)  # feed() refuses more unread bytes than this


class Control(IntEnum):
    """vpcd's control bytes (a 1-byte payload from the reader)."""

    POWER_OFF = 0
    POWER_ON = 1
    RESET = 2
    ATR_REQUEST = 4


_CONTROL_BYTES = frozenset(Control)


class FrameError(Exception):
    """A vpcd message that breaks the framing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ControlMessage:
    """A control byte from vpcd."""

    control: Control


@dataclass(frozen=True)
class ApduMessage:
    """A command APDU from vpcd (any bytes but one: the card judges the APDU)."""

    apdu: bytes


Message = ControlMessage | ApduMessage


def encode_frame(payload: bytes) -> bytes:
    """Frame one payload: 2-byte big-endian length, then the payload."""
    if len(payload) > MAX_PAYLOAD:
        raise FrameError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return len(payload).to_bytes(LENGTH_SIZE, "big") + payload


class FrameReader:
    """A pure vpcd frame reader: feed it bytes as they come, take whole messages out.

    `next_message()` returns None until a whole frame is buffered; it never returns part of
    one.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """How many bytes are buffered and not yet returned as a message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Append received bytes (bounded: at most MAX_BUFFER unread bytes)."""
        if len(self._buffer) + len(data) > MAX_BUFFER:
            raise FrameError(f"more than {MAX_BUFFER} unread bytes")
        self._buffer += data

    def next_message(self) -> Message | None:
        """The next whole message, or None when the buffer holds no whole frame yet."""
        if len(self._buffer) < LENGTH_SIZE:
            return None
        length = int.from_bytes(self._buffer[:LENGTH_SIZE], "big")
        end = LENGTH_SIZE + length
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[LENGTH_SIZE:end])
        del self._buffer[:end]
        if length == 1 and payload[0] in _CONTROL_BYTES:
            return ControlMessage(Control(payload[0]))
        return ApduMessage(payload)

    def messages(self) -> list[Message]:
        """Every whole message buffered now."""
        out: list[Message] = []
        while (message := self.next_message()) is not None:
            out.append(message)
        return out


class CardSession:
    """The card as vpcd sees it over one connection: its answers, and its ATR.

    pcscd polls a vpcd card's presence with an ATR request every 400 ms, in the middle of
    transactions too: that request must not reset the applet. Only the first ATR request of
    a connection (the card entering the field), power on and reset call `power_on()`.
    """

    def __init__(self, card: Card) -> None:
        self.card = card
        self.atr: bytes | None = None

    def answer(self, message: Message) -> bytes | None:
        """What the card sends back for one message (None: no answer), vpcd's rules."""
        if isinstance(message, ApduMessage):
            return self.card.process(message.apdu)
        match message.control:
            case Control.ATR_REQUEST:
                if self.atr is None:
                    self.atr = self.card.power_on()
                return self.atr
            case Control.POWER_ON | Control.RESET:
                self.atr = self.card.power_on()
                return None
            case Control.POWER_OFF:
                self.card.deactivate("power off")
                return None


@dataclass(frozen=True)
class VpcdConfig:
    """Where vpcd listens and how patiently we reconnect."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    poll_interval: float = 0.2  # how often a blocked recv looks at the stop flag (s)
    # how long a TCP connect may take: a vpcd across a network (a Wi-Fi in power save)
    # answers a SYN in more than one poll interval; Ctrl-C waits for it at most this long
    connect_timeout: float = 2.0
    backoff_initial: float = 0.05
    backoff_max: float = 2.0
    # pcscd powers a new card up within one poll (400 ms): a connection vpcd has accepted but
    # sends nothing on is one it does not serve (seen after a quick stop and restart in the
    # same slot), so it is dropped and made again.
    first_message_timeout: float = 5.0
    # this many silent connections in a row: vpcd serves another card on this port
    silent_connections_hint: int = 3


def _hint(sock: socket.socket, option: int) -> None:
    """Set a TCP option that only speeds the exchange up; a socket that refuses it (one the
    peer already closed: EINVAL on macOS) is served all the same, its end found by recv."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, option, 1)


def parse_endpoint(text: str) -> tuple[str, int]:
    """Parse `HOST:PORT` (or `PORT`, or `HOST`) into a host and a port. An IPv6 address is
    a host with a port only in brackets (`[::1]:35964`, RFC 3986 3.2.2); bare (`::1`), its
    colons are its own. An empty text is refused: `--vpcd ""` (an unset variable) is a
    mistake, not the default address."""
    if not text.strip():
        raise ValueError(f"bad vpcd address {text!r}: expected HOST:PORT, HOST or PORT")
    host, sep, port_text = text.rpartition(":")
    bracketed = text.startswith("[")
    if (bracketed and text.endswith("]")) or (not bracketed and text.count(":") > 1):
        host, sep, port_text = text, ":", str(DEFAULT_PORT)  # an IPv6 host, no port
    if not sep:
        if _PORT.fullmatch(text):
            host, port_text = DEFAULT_HOST, text
        else:
            host, port_text = text, str(DEFAULT_PORT)
    host = host.strip("[]") or DEFAULT_HOST
    if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad vpcd address {text!r}: expected HOST:PORT with a port 1-65535")
    return host, int(port_text)


def format_endpoint(host: str, port: int) -> str:
    """`host:port` as parse_endpoint reads it back: an IPv6 host in brackets (RFC 3986
    3.2.2), so that an address a message names can be given to `--vpcd` as it is."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class VpcdClient:
    """Serve one card to vpcd until `stop()`: reconnect with backoff when pcscd goes away.

    `abort()` drops the connection at once and withholds the answer being computed, as a card
    leaving the field would; the loop then reconnects (the card comes back) unless stopped.
    """

    def __init__(
        self,
        card: Card,
        config: VpcdConfig | None = None,
        *,
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        self.card = card
        self.config = config or VpcdConfig()
        self._stop = threading.Event()
        self._abort = threading.Event()
        self._connected = threading.Event()
        self._on_connect = on_connect
        self.apdus = 0
        self._silent = 0  # connections in a row on which vpcd said nothing

    @property
    def connected(self) -> threading.Event:
        """Set while a connection to vpcd is up."""
        return self._connected

    def stop(self) -> None:
        """Ask the loop to end: it returns within one poll interval, or within the connect
        timeout when a connect to vpcd is in progress."""
        self._stop.set()

    def abort(self) -> None:
        """Drop the connection now without answering (the card leaves the field)."""
        self._abort.set()

    def serve_forever(self) -> None:
        """Connect, serve, reconnect; return when stopped. The card is deactivated at the end."""
        backoff = self.config.backoff_initial
        address = format_endpoint(self.config.host, self.config.port)
        warned: str | None = None  # the warning given for the current streak of failures
        try:
            while not self._stop.is_set():
                try:
                    sock = socket.create_connection(
                        (self.config.host, self.config.port),
                        timeout=max(self.config.connect_timeout, self.config.poll_interval),
                    )
                    sock.settimeout(self.config.poll_interval)
                except OSError as exc:
                    # vpcd listens with a backlog of 0 and accepts nobody while its reader
                    # holds a card: after a silent connection (left in that one-deep queue),
                    # connecting times out. It counts as one more connection not served.
                    if isinstance(exc, TimeoutError) and self._silent:
                        self._silent += 1
                        self._hint_another_card(address)
                    if warned != "unreachable":
                        log.warning(
                            "vpcd at %s not reachable (%s): is pcscd running, with "
                            "vsmartcard-vpcd? retrying",
                            address,
                            exc.strerror or exc,
                        )
                        warned = "unreachable"
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self.config.backoff_max)
                    continue
                log.info("connected to vpcd at %s", address)
                silent_before = self._silent
                try:
                    heard = self._serve_connection(sock)
                finally:
                    sock.close()
                    self._connected.clear()
                    self.card.deactivate("field lost")
                if self._silent > silent_before:  # this one was silent too: counted once
                    self._hint_another_card(address)
                    continue  # it waited first_message_timeout already
                if self._stop.is_set():
                    continue
                if self._abort.is_set():  # we dropped it (the card left): not vpcd's doing
                    log.info("card removed from vpcd at %s: connecting again", address)
                    warned = None
                    backoff = self.config.backoff_initial
                    continue
                if heard:
                    warned = None
                    backoff = self.config.backoff_initial
                    log.warning("vpcd at %s closed the connection: reconnecting", address)
                    continue
                # Closed before a whole vpcd frame came (a port forward with nothing behind
                # it, another service and its banner): not vpcd serving us. Tried again with
                # the backoff of a refused connect, or the loop would spin, a connection and
                # a line each time.
                if warned != "closed":
                    log.warning(
                        "vpcd at %s closed the connection before saying anything (is vpcd "
                        "what listens there?): retrying",
                        address,
                    )
                    warned = "closed"
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.config.backoff_max)
        finally:
            self.card.deactivate("server stopped")
            log.info("stopped serving vpcd at %s (%d APDUs)", address, self.apdus)

    def _hint_another_card(self, address: str) -> None:
        """Once, at the hint's count of connections in a row that vpcd did not serve."""
        if self._silent == self.config.silent_connections_hint:
            log.warning(
                "vpcd at %s served none of %d connections in a row: another card is "
                "probably served on this port (each vpcd reader has its own port: 35963, "
                "35964...; `card serve --vpcd HOST:PORT` picks one); still trying",
                address,
                self._silent,
            )

    def _serve_connection(self, sock: socket.socket) -> bool:
        """Serve one connection until it closes, we are stopped, or aborted; whether vpcd
        sent a whole message on it."""
        _hint(sock, socket.TCP_NODELAY)
        self._abort.clear()
        self._connected.set()
        if self._on_connect is not None:
            self._on_connect()
        reader = FrameReader()
        session = CardSession(self.card)
        silent_until: float | None = time.monotonic() + self.config.first_message_timeout
        heard = False
        while not self._stop.is_set() and not self._abort.is_set():
            # Linux turns quick ACKs off again after a while: set it before every recv, or
            # delayed ACKs cost ~40 ms per APDU.
            if hasattr(socket, "TCP_QUICKACK"):
                _hint(sock, socket.TCP_QUICKACK)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                if silent_until is not None and time.monotonic() > silent_until:
                    log.warning("vpcd sent nothing on a new connection: connecting again")
                    self._silent += 1
                    return heard
                continue
            except OSError as exc:
                log.warning("vpcd connection error: %s", exc.strerror or exc)
                return heard
            if not data:
                return heard
            try:
                reader.feed(data)
                while (message := reader.next_message()) is not None:
                    # vpcd has spoken once a whole frame came: bytes that make none (a
                    # banner, an error line) are not vpcd, and end like a silent connection
                    silent_until = None
                    heard = True
                    self._silent = 0
                    reply = self._handle(session, message)
                    if self._abort.is_set():
                        log.info("card removed: connection dropped without an answer")
                        return heard
                    if reply is not None:
                        sock.sendall(encode_frame(reply))
            except FrameError as exc:
                log.warning("vpcd framing error: %s: dropping the connection", exc.reason)
                return heard
            except OSError as exc:
                log.warning("vpcd connection error: %s", exc.strerror or exc)
                return heard
        return heard

    def _handle(self, session: CardSession, message: Message) -> bytes | None:
        """Answer one message, with one log line per APDU."""
        reply = session.answer(message)
        if isinstance(message, ApduMessage):
            self.apdus += 1
            if log.isEnabledFor(logging.INFO):
                log.info("C %s R %s", message.apdu.hex().upper(), (reply or b"").hex().upper())
        else:
            log.debug("vpcd control %s", message.control.name)
        return reply
