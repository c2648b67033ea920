"""vpcd framing (pure) and the socket loop against a stand-in vpcd listener."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu import messages as m
from apdu.command import CommandAPDU
from applet.vpcd import (
    MAX_BUFFER,
    ApduMessage,
    CardSession,
    Control,
    ControlMessage,
    FrameError,
    FrameReader,
    Message,
    VpcdClient,
    VpcdConfig,
    encode_frame,
    format_endpoint,
    parse_endpoint,
)

ATR = bytes.fromhex("3B80800101")


def _payload(message: Message) -> bytes:
    return bytes([message.control]) if isinstance(message, ControlMessage) else message.apdu


messages = st.one_of(
    st.sampled_from(list(Control)).map(ControlMessage),
    st.binary(max_size=300)
    .filter(lambda b: len(b) != 1 or b[0] not in set(Control))
    .map(ApduMessage),
)


@settings(max_examples=200)
@given(st.lists(messages, max_size=12), st.data())
def test_any_split_of_the_stream_gives_back_exactly_the_messages(
    sent: list[Message], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(_payload(m)) for m in sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    reader = FrameReader()
    received: list[Message] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        reader.feed(stream[start:cut])
        start = cut
        received.extend(reader.messages())
    assert received == sent
    assert reader.pending == 0


@given(st.binary(min_size=2, max_size=400))
def test_a_partial_frame_is_never_returned(frame_payload: bytes) -> None:
    frame = encode_frame(frame_payload)
    reader = FrameReader()
    for i in range(len(frame) - 1):
        reader.feed(frame[i : i + 1])
        assert reader.next_message() is None
    reader.feed(frame[-1:])
    assert reader.next_message() is not None


def test_control_bytes_and_apdus() -> None:
    reader = FrameReader()
    reader.feed(bytes.fromhex("000104000100000102000101000500A40400000000"))
    assert reader.messages() == [
        ControlMessage(Control.ATR_REQUEST),
        ControlMessage(Control.POWER_OFF),
        ControlMessage(Control.RESET),
        ControlMessage(Control.POWER_ON),
        ApduMessage(bytes.fromhex("00A4040000")),
        ApduMessage(b""),
    ]


def test_a_one_byte_payload_that_is_no_control_byte_is_an_apdu() -> None:
    """vpcd sends a 1-byte command APDU as any other and waits for its answer."""
    reader = FrameReader()
    reader.feed(bytes.fromhex("000103000101000180"))
    assert reader.messages() == [
        ApduMessage(b"\x03"),
        ControlMessage(Control.POWER_ON),
        ApduMessage(b"\x80"),
    ]


def test_the_buffer_is_bounded() -> None:
    reader = FrameReader()
    reader.feed(b"\xff\xff" + bytes(MAX_BUFFER - 2))
    with pytest.raises(FrameError):
        reader.feed(b"\x00")


def test_a_payload_longer_than_the_length_field_is_refused() -> None:
    with pytest.raises(FrameError):
        encode_frame(bytes(0x10000))
    assert encode_frame(b"\x90\x00") == bytes.fromhex("00029000")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:35964", ("127.0.0.1", 35964)),
        ("35964", ("127.0.0.1", 35964)),
        ("localhost", ("localhost", 35963)),
        ("[::1]:35963", ("::1", 35963)),
        ("[::1]", ("::1", 35963)),  # an IPv6 host in brackets, no port
        ("::1", ("::1", 35963)),  # bare: its colons are the address's, not a port's
        ("fe80::1%eth0", ("fe80::1%eth0", 35963)),
    ],
)
def test_parse_endpoint(text: str, expected: tuple[str, int]) -> None:
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize(
    "text", ["host:0", "host:70000", "host:port", ":", "", " ", "[::1]:", "[::1]:x"]
)
def test_parse_endpoint_refuses_bad_ports(text: str) -> None:
    with pytest.raises(ValueError, match="bad vpcd address"):
        parse_endpoint(text)


class RecordingCard:
    """A Card that records what happens to it and answers APDUs with their reverse + 9000."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def power_on(self) -> bytes:
        self.events.append("power_on")
        return ATR

    def process(self, apdu: bytes) -> bytes:
        self.events.append(f"process {apdu.hex()}")
        return apdu[::-1] + b"\x90\x00"

    def deactivate(self, reason: str) -> None:
        self.events.append(f"deactivate {reason}")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A stand-in for vpcd: a listening socket on a free local port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    yield server
    server.close()


def _config(listener: socket.socket) -> VpcdConfig:
    """Quick polls and reconnects, to the stand-in vpcd `listener`."""
    return VpcdConfig(port=listener.getsockname()[1], poll_interval=0.05, backoff_initial=0.01)


@contextmanager
def _served(card: object, config: VpcdConfig) -> Iterator[VpcdClient]:
    """A VpcdClient serving `card` in a thread while the block runs; stopped at its end,
    when its thread must have ended."""
    client = VpcdClient(card, config)  # type: ignore[arg-type]
    thread = threading.Thread(target=client.serve_forever, daemon=True)
    thread.start()
    try:
        yield client
    finally:
        client.stop()
        thread.join(timeout=2)
    assert not thread.is_alive()


def _recv_frame(conn: socket.socket) -> bytes:
    reader = FrameReader()
    for _ in range(100):
        message = reader.next_message()
        if message is not None:
            assert isinstance(message, ApduMessage)
            return message.apdu
        chunk = conn.recv(4096)
        assert chunk, "the card closed the connection"
        reader.feed(chunk)
    raise AssertionError("no frame")


def test_the_loop_answers_reconnects_and_stops(listener: socket.socket) -> None:
    card = RecordingCard()
    with _served(card, _config(listener)) as client:
        conn, _ = listener.accept()
        conn.sendall(encode_frame(bytes([Control.ATR_REQUEST])))
        assert _recv_frame(conn) == ATR
        conn.sendall(encode_frame(bytes([Control.ATR_REQUEST])))  # pcscd's presence poll
        assert _recv_frame(conn) == ATR
        # an APDU split over two writes still gets one answer
        frame = encode_frame(bytes.fromhex("80CA9F3600"))
        conn.sendall(frame[:3])
        conn.sendall(frame[3:])
        assert _recv_frame(conn) == bytes.fromhex("00369FCA80") + b"\x90\x00"
        conn.close()  # pcscd restarts: the card comes back by itself

        conn, _ = listener.accept()
        conn.sendall(encode_frame(bytes([Control.POWER_OFF])) + encode_frame(b"\x00\xb2"))
        assert _recv_frame(conn) == b"\xb2\x00\x90\x00"
    conn.close()
    assert card.events == [
        "power_on",
        "process 80ca9f3600",
        "deactivate field lost",
        "deactivate power off",
        "process 00b2",
        "deactivate field lost",
        "deactivate server stopped",
    ]
    assert client.apdus == 2


def test_a_one_byte_apdu_is_answered(listener: socket.socket) -> None:
    """An application's 1-byte APDU reaches the card as a 1-byte frame and vpcd blocks until
    it is answered: left unanswered, the reader would hang until the card is stopped."""
    card = RecordingCard()
    with _served(card, _config(listener)):
        conn, _ = listener.accept()
        conn.settimeout(2)
        conn.sendall(encode_frame(b"\x80"))
        assert _recv_frame(conn) == b"\x80\x90\x00"
    conn.close()
    assert card.events[0] == "process 80"


def test_abort_withholds_the_answer_and_drops_the_connection(listener: socket.socket) -> None:
    """abort(): the card leaves the field, the answer withheld; it then comes back and
    is served on its next connection (the abort is over)."""
    card = RecordingCard()
    original = card.process
    with _served(card, _config(listener)) as client:

        def process_then_leave(apdu: bytes) -> bytes:
            client.abort()
            return original(apdu)

        card.process = process_then_leave  # type: ignore[method-assign]
        conn, _ = listener.accept()
        conn.settimeout(2)
        conn.sendall(encode_frame(b"\x80\xae\x50\x00"))
        assert conn.recv(16) == b""  # closed, no answer
        card.process = original  # type: ignore[method-assign]
        back, _ = listener.accept()  # the card comes back into the field, and is served again
        back.sendall(encode_frame(bytes([Control.ATR_REQUEST])))
        assert _recv_frame(back) == ATR
    conn.close()
    back.close()


def test_stop_while_vpcd_is_unreachable_returns_promptly() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again: nobody listens there
    with _served(RecordingCard(), VpcdConfig(port=port, backoff_initial=0.01)):
        pass  # stopped at once, while it tries to connect


def test_a_presence_poll_does_not_reset_the_card() -> None:
    card = RecordingCard()
    session = CardSession(card)
    atr_request = ControlMessage(Control.ATR_REQUEST)
    assert session.answer(atr_request) == ATR
    assert session.answer(ApduMessage(b"\x80\xa8\x00\x00")) == b"\x00\x00\xa8\x80\x90\x00"
    assert session.answer(atr_request) == ATR  # mid-transaction: answered from the cache
    assert session.answer(ControlMessage(Control.RESET)) is None
    assert card.events == ["power_on", "process 80a80000", "power_on"]


def test_a_connection_vpcd_never_talks_on_is_made_again(listener: socket.socket) -> None:
    """After a quick restart in the same slot, vpcd may accept a connection and never poll
    it: with nothing received for first_message_timeout, the card connects again."""
    card = RecordingCard()
    port = listener.getsockname()[1]
    config = VpcdConfig(port=port, poll_interval=0.02, first_message_timeout=0.2)
    with _served(card, config):
        silent, _ = listener.accept()  # accepted, never spoken to
        again, _ = listener.accept()  # the card connected again on its own
        again.sendall(encode_frame(bytes([Control.ATR_REQUEST])))
        assert _recv_frame(again) == ATR
    silent.close()
    again.close()


def test_connections_vpcd_never_talks_on_say_another_card_holds_the_port(
    listener: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    """A second `card serve` on a port whose reader already has a card: vpcd accepts and
    never speaks; after a few such connections the card says what is probably wrong."""
    port = listener.getsockname()[1]
    config = VpcdConfig(port=port, poll_interval=0.02, first_message_timeout=0.1)
    with caplog.at_level(logging.WARNING, logger="applet.vpcd"), _served(RecordingCard(), config):
        silent = [listener.accept()[0] for _ in range(4)]  # never spoken to
        hints = [r for r in caplog.records if "another card is probably served" in r.getMessage()]
        assert len(hints) == 1 and f"127.0.0.1:{port}" in hints[0].getMessage()
        spoken, _ = listener.accept()  # vpcd talks on this one: the count starts again
        spoken.sendall(encode_frame(bytes([Control.ATR_REQUEST])))
        assert _recv_frame(spoken) == ATR
    for conn in (*silent, spoken):
        conn.close()


def test_a_port_whose_vpcd_serves_another_card_is_named(caplog: pytest.LogCaptureFixture) -> None:
    """vpcd listens with a backlog of 0 and accepts nobody while it serves a card: the first
    connection waits in its accept queue, silent, and every later one times out. The hint
    comes all the same."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)  # never accepted, as vpcd's socket while its reader holds a card
    port = server.getsockname()[1]
    config = VpcdConfig(
        port=port,
        poll_interval=0.02,
        connect_timeout=0.02,
        first_message_timeout=0.1,
        backoff_initial=0.01,
        backoff_max=0.02,
    )
    with caplog.at_level(logging.WARNING, logger="applet.vpcd"):
        try:
            with _served(RecordingCard(), config):
                for _ in range(300):
                    if any(
                        "another card is probably served" in r.getMessage() for r in caplog.records
                    ):
                        break
                    threading.Event().wait(0.01)
        finally:
            server.close()
    hints = [r for r in caplog.records if "another card is probably served" in r.getMessage()]
    assert len(hints) == 1 and f"127.0.0.1:{port}" in hints[0].getMessage()


def test_reconnect_backoff_doubles_up_to_its_bound() -> None:
    """While vpcd is unreachable the card tries again after backoff_initial, doubling each
    time up to backoff_max, never beyond: a pcscd that comes back is found within
    backoff_max seconds, however long it was gone."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again: nobody listens there
    config = VpcdConfig(port=port, backoff_initial=0.01, backoff_max=0.05)
    client = VpcdClient(RecordingCard(), config)
    waits: list[float] = []
    stop = client._stop

    class CountingStop:
        def is_set(self) -> bool:
            return stop.is_set()

        def wait(self, timeout: float) -> bool:
            waits.append(timeout)
            if len(waits) == 7:
                stop.set()
            return stop.is_set()

    client._stop = CountingStop()  # type: ignore[assignment]
    client.serve_forever()
    assert waits == [0.01, 0.02, 0.04, 0.05, 0.05, 0.05, 0.05]


def test_a_served_connection_starts_the_count_of_silent_ones_again(
    listener: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    """The hint counts silent connections in a row: once vpcd talks on one, the count starts
    again, so three more silent ones (another card took the port since) bring it again."""
    port = listener.getsockname()[1]
    config = VpcdConfig(port=port, poll_interval=0.02, first_message_timeout=0.1)
    conns: list[socket.socket] = []

    def hints() -> int:
        return sum("another card is probably served" in r.getMessage() for r in caplog.records)

    try:
        with (
            caplog.at_level(logging.WARNING, logger="applet.vpcd"),
            _served(RecordingCard(), config),
        ):
            conns += [listener.accept()[0] for _ in range(3)]  # never spoken to
            spoken, _ = listener.accept()
            conns.append(spoken)
            assert hints() == 1
            spoken.sendall(encode_frame(bytes([Control.ATR_REQUEST])))
            assert _recv_frame(spoken) == ATR
            spoken.close()  # vpcd goes away; the card connects again
            conns += [listener.accept()[0] for _ in range(4)]  # silent again, 3 in a row
    finally:
        for conn in conns:
            conn.close()
    assert hints() == 2


def test_the_hint_is_given_once_a_streak(
    listener: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    """The hint comes once, when the third silent connection in a row ends: neither a
    fourth silent one nor a connection that ends without being counted (the card stopped
    while it was open) brings it again."""
    port = listener.getsockname()[1]
    config = VpcdConfig(port=port, poll_interval=0.02, first_message_timeout=0.1)
    conns: list[socket.socket] = []
    try:
        with (
            caplog.at_level(logging.WARNING, logger="applet.vpcd"),
            _served(RecordingCard(), config),
        ):
            conns += [listener.accept()[0] for _ in range(5)]  # four silent, the fifth open
    finally:
        for conn in conns:
            conn.close()
    assert sum("another card is probably served" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("control", [Control.POWER_OFF, Control.POWER_ON, Control.RESET])
def test_power_off_on_and_reset_end_the_session_and_keep_the_card(
    make_card: Any, term: Any, control: Control
) -> None:
    """vpcd's power off, power on and reset end the applet's session (IDLE, no pending
    response: PROTOCOL.md §6) and keep the card's durable state (its ATC, its credit); a
    presence poll does neither."""
    from applet.payment import Phase

    card = make_card(atc=4)
    session = CardSession(card)
    assert session.answer(ControlMessage(Control.ATR_REQUEST)) == card.atr
    selected = session.answer(ApduMessage(m.select(m.CREDIT_AID).to_bytes()))
    assert selected is not None and selected[-2:] == b"\x90\x00"
    gpo_no_le = replace(CommandAPDU.parse(term.gpo()), le=None).to_bytes()
    gpo = session.answer(ApduMessage(gpo_no_le))
    assert gpo is not None and gpo[-2] == 0x61  # executed, its answer pending for GET RESPONSE
    assert card.state.phase != Phase.IDLE and card.state.card.atc == 5
    assert session.answer(ControlMessage(Control.ATR_REQUEST)) == card.atr
    assert card.state.phase != Phase.IDLE  # the poll left the session as it was

    assert session.answer(ControlMessage(control)) is None
    assert card.state.phase == Phase.IDLE and card.state.card.atc == 5
    get_response = ApduMessage(m.get_response(gpo[-1]).to_bytes())
    assert session.answer(get_response) == b"\x69\x85"  # the pending answer went with it


class RefusingOptions:
    """A connected socket whose setsockopt fails, as macOS's does (EINVAL) once the peer
    has closed: every other call goes to the socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def setsockopt(self, *args: object) -> None:
        raise OSError(22, "Invalid argument")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def test_a_socket_that_refuses_tcp_options_is_served_all_the_same(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TCP_NODELAY and TCP_QUICKACK only speed the exchange up: a socket that refuses them
    is served, not the end of `card serve` with a traceback."""
    connect = socket.create_connection
    monkeypatch.setattr(
        socket, "create_connection", lambda *a, **k: RefusingOptions(connect(*a, **k))
    )
    card = RecordingCard()
    with _served(card, _config(listener)):
        conn, _ = listener.accept()
        conn.settimeout(2)
        conn.sendall(encode_frame(bytes([Control.ATR_REQUEST])))
        assert _recv_frame(conn) == ATR
    conn.close()
    assert card.events[0] == "power_on"


def test_vpcd_not_listening_is_one_plain_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Nobody listens at the address (pcscd stopped, or vpcd not installed): one warning
    line that says so in plain words and what to check, not Python's "[Errno 111]", and
    not again at every try."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again: nobody listens there
    config = VpcdConfig(port=port, backoff_initial=0.01, backoff_max=0.01)
    with caplog.at_level(logging.WARNING, logger="applet.vpcd"), _served(RecordingCard(), config):
        threading.Event().wait(0.2)  # many tries
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert said == [
        f"vpcd at 127.0.0.1:{port} not reachable (Connection refused): is pcscd running, "
        "with vsmartcard-vpcd? retrying"
    ]


def test_a_connect_may_take_longer_than_a_poll(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TCP connect to vpcd gets connect_timeout (2 s), not the 0.2 s poll interval: a
    vpcd across a network whose SYN answer takes longer was never reached ("timed out",
    over and over). Once connected, recv polls the stop flag at the poll interval again."""
    connect = socket.create_connection
    timeouts: list[float | None] = []
    connected: list[socket.socket] = []

    def recording(address: tuple[str, int], timeout: float | None = None) -> socket.socket:
        timeouts.append(timeout)
        sock = connect(address, timeout=timeout)
        connected.append(sock)
        return sock

    monkeypatch.setattr(socket, "create_connection", recording)
    config = VpcdConfig(port=listener.getsockname()[1], poll_interval=0.05)
    with _served(RecordingCard(), config):
        conn, _ = listener.accept()
        conn.sendall(encode_frame(bytes([Control.ATR_REQUEST])))
        assert _recv_frame(conn) == ATR
        assert connected[0].gettimeout() == 0.05
    conn.close()
    assert timeouts[0] == 2.0


def test_a_port_that_closes_every_connection_is_tried_with_the_backoff(
    listener: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    """Something that accepts and closes at once (a port forward with nothing behind it):
    the card tries again after the backoff, doubling, with one warning, and is served as
    soon as vpcd speaks. It had reconnected at once, some 10 000 connections and warning
    lines a second."""
    closed = 0
    speak = threading.Event()
    spoken: list[socket.socket] = []

    def accept_and_close() -> None:
        nonlocal closed
        while not speak.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if speak.is_set():
                spoken.append(conn)
                return
            closed += 1
            conn.close()

    acceptor = threading.Thread(target=accept_and_close, daemon=True)
    config = VpcdConfig(port=listener.getsockname()[1], backoff_initial=0.01, backoff_max=0.1)
    with caplog.at_level(logging.WARNING, logger="applet.vpcd"), _served(RecordingCard(), config):
        acceptor.start()
        threading.Event().wait(0.5)
        speak.set()
        acceptor.join(timeout=2)
        conn = spoken[0] if spoken else listener.accept()[0]
        conn.sendall(encode_frame(bytes([Control.ATR_REQUEST])))
        assert _recv_frame(conn) == ATR
    conn.close()
    assert 2 <= closed <= 15  # 0.01, 0.02, 0.04, then 0.1 s apart
    said = [r.getMessage() for r in caplog.records if "before saying anything" in r.getMessage()]
    assert len(said) == 1


def test_an_empty_frame_is_an_apdu_too_short(make_card: Any) -> None:
    """A frame of length 0 is no control byte: an APDU with no header, which the card
    answers `6700` (ISO 7816-4 5.1: a command has at least its 4-byte header); the frame
    round-trips through the reader as an empty APDU message."""
    reader = FrameReader()
    reader.feed(b"\x00\x00")
    message = reader.next_message()
    assert message == ApduMessage(b"") and reader.pending == 0
    assert CardSession(make_card()).answer(message) == b"\x67\x00"


def test_a_connection_reset_is_one_plain_warning(
    listener: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    """vpcd's end resets the connection (pcscd killed): one warning line in plain words,
    not Python's "[Errno 104]"; the card then connects again."""
    import struct

    card = RecordingCard()
    with caplog.at_level(logging.WARNING, logger="applet.vpcd"), _served(card, _config(listener)):
        conn, _ = listener.accept()
        conn.sendall(encode_frame(bytes([Control.ATR_REQUEST])))
        assert _recv_frame(conn) == ATR
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # linger 0: a reset, not a close
        again, _ = listener.accept()
    again.close()
    said = [r.getMessage() for r in caplog.records if "connection error" in r.getMessage()]
    assert said == ["vpcd connection error: Connection reset by peer"]


def test_a_port_that_sends_part_of_a_frame_and_closes_is_tried_with_the_backoff(
    listener: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    """Something that greets with a few bytes and closes (a banner, an error line) has not
    spoken vpcd: no whole frame came. The card tries again after the backoff, as for a port
    that closes at once, not in a spin of connections and warning lines."""
    closed = 0
    done = threading.Event()

    def greet_and_close() -> None:
        nonlocal closed
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with contextlib.suppress(OSError):
                conn.sendall(b"\x00\x10ERR\r\n")  # a length of 16, then 5 bytes: no frame
            closed += 1
            conn.close()

    acceptor = threading.Thread(target=greet_and_close, daemon=True)
    config = VpcdConfig(port=listener.getsockname()[1], backoff_initial=0.01, backoff_max=0.1)
    with caplog.at_level(logging.WARNING, logger="applet.vpcd"), _served(RecordingCard(), config):
        acceptor.start()
        threading.Event().wait(0.5)
        done.set()
    acceptor.join(timeout=6)
    assert 2 <= closed <= 15  # 0.01, 0.02, 0.04, then 0.1 s apart
    messages = [r.getMessage() for r in caplog.records]
    assert sum("before saying anything" in m for m in messages) == 1
    assert not any("closed the connection: reconnecting" in m for m in messages)


def test_an_abort_before_vpcd_speaks_is_the_card_leaving_not_vpcd_closing(
    listener: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    """abort() drops the connection itself (the card leaves the field): vpcd did not close
    it, so no warning says so, and the card is back at once, not after the backoff of a
    port that closes every connection."""
    config = replace(_config(listener), backoff_initial=3.0, backoff_max=3.0)
    with (
        caplog.at_level(logging.WARNING, logger="applet.vpcd"),
        _served(RecordingCard(), config) as client,
    ):
        first, _ = listener.accept()
        client.connected.wait(2)
        client.abort()
        assert first.recv(16) == b""  # dropped by the card
        start = time.monotonic()
        back, _ = listener.accept()
        elapsed = time.monotonic() - start
        back.sendall(encode_frame(bytes([Control.ATR_REQUEST])))
        assert _recv_frame(back) == ATR
    first.close()
    back.close()
    assert elapsed < 1.5
    assert [
        r.getMessage() for r in caplog.records if "closed the connection" in r.getMessage()
    ] == []


@pytest.mark.parametrize(
    ("host", "port", "text"),
    [("::1", 35964, "[::1]:35964"), ("127.0.0.1", 35963, "127.0.0.1:35963"), ("pos", 1, "pos:1")],
)
def test_an_address_is_written_as_vpcd_takes_it_back(host: str, port: int, text: str) -> None:
    """An address said in a message can be given to --vpcd again: an IPv6 host is written
    in brackets (RFC 3986 3.2.2); bare, `::1:35964` would be read as a host."""
    assert format_endpoint(host, port) == text
    assert parse_endpoint(text) == (host, port)


def test_an_ipv6_vpcd_is_named_in_brackets_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """The warning for an unreachable vpcd names its address as --vpcd takes it."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again: nobody listens there
    config = VpcdConfig(host="::1", port=port, backoff_initial=0.01, connect_timeout=0.2)
    with caplog.at_level(logging.WARNING, logger="applet.vpcd"), _served(RecordingCard(), config):
        threading.Event().wait(0.2)
    said = [r.getMessage() for r in caplog.records if "not reachable" in r.getMessage()]
    assert said and said[0].startswith(f"vpcd at [::1]:{port} not reachable")
