"""Terminal-side vectors served as a card (reader/served_vectors.py, `hcepay vectors serve`):
the pure card against every vector, the serve loop and the command against a stand-in vpcd."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from applet.vpcd import (
    ApduMessage,
    CardSession,
    Control,
    ControlMessage,
    FrameReader,
    VpcdConfig,
    encode_frame,
)
from reader.cli import app
from reader.served_vectors import (
    OFF_SCRIPT,
    ServeTiming,
    VectorCard,
    VpcdUnreachableError,
    expected_end,
    serve_vector,
    setup_lines,
)
from reader.vectors import Problem, ReplayResult, Vector, load, terminal_setup

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "vectors" / "profiles"
TERMINAL = sorted((ROOT / "vectors" / "terminal").glob("*.json"))
VECTORS = {path.stem: load(path) for path in TERMINAL}
APPROVE = VECTORS["terminal-approve"]


def _control(card: CardSession, control: Control) -> bytes | None:
    return card.answer(ControlMessage(control))


def _send(card: CardSession, command: bytes) -> bytes | None:
    return card.answer(ApduMessage(command))


def _session(vector: Vector) -> tuple[VectorCard, CardSession]:
    card = VectorCard(vector)
    session = CardSession(card)
    # pcscd's first look at a new card, and a power cycle before any terminal talks to it
    assert _control(session, Control.ATR_REQUEST) == bytes.fromhex("3B80800101")
    _control(session, Control.POWER_OFF)
    _control(session, Control.POWER_ON)
    assert not card.ended
    return card, session


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_a_terminal_that_sends_the_vectors_commands_passes(name: str) -> None:
    vector = VECTORS[name]
    card, session = _session(vector)
    for step in vector.steps:
        assert _send(session, step.command) == step.response.data
        assert not card.ended
    _control(session, Control.ATR_REQUEST)  # pcscd's presence poll mid-exchange
    assert not card.ended
    _control(session, Control.RESET)  # the terminal disconnects, resetting the card
    assert card.ended
    result = card.result()
    assert result.passed, result.difference
    assert (result.done, result.steps, result.name) == (len(vector.steps), len(vector.steps), name)


def test_off_the_script_the_card_answers_6f00() -> None:
    """A command off the vector's script is answered 6F00, no precise diagnosis (ISO 7816-4
    5.6; reader/served_vectors.py): a status word that makes any terminal stop."""
    assert bytes.fromhex("6F00") == OFF_SCRIPT
    vector = next(iter(VECTORS.values()))
    _, session = _session(vector)
    assert _send(session, bytes.fromhex("00B2010C00")) == bytes.fromhex("6F00")


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_the_first_command_off_the_script_is_found_and_ends_the_exchange(
    data: st.DataObject,
) -> None:
    vector = data.draw(st.sampled_from(list(VECTORS.values())))
    at = data.draw(st.integers(0, len(vector.steps) - 1))
    command = vector.steps[at].command
    offset = data.draw(st.integers(0, len(command) - 1))
    flip = data.draw(st.integers(1, 255))
    changed = command[:offset] + bytes([command[offset] ^ flip]) + command[offset + 1 :]
    card, session = _session(vector)
    for step in vector.steps[:at]:
        assert _send(session, step.command) == step.response.data
    assert _send(session, changed) == OFF_SCRIPT
    assert card.ended
    # what comes after the departure gets 6F00 and leaves the result as it was
    assert _send(session, command) == OFF_SCRIPT
    difference = card.result().difference
    assert difference is not None
    assert (difference.problem, difference.step, difference.offset) == (
        Problem.COMMAND,
        at,
        offset,
    )
    assert difference.got == changed.hex().upper()
    assert card.result().done == at


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_a_terminal_that_stops_early_misses_the_next_command(data: st.DataObject) -> None:
    vector = data.draw(st.sampled_from(list(VECTORS.values())))
    sent = data.draw(st.integers(1, len(vector.steps) - 1))
    end = data.draw(st.sampled_from([Control.POWER_OFF, Control.RESET, Control.POWER_ON]))
    card, session = _session(vector)
    for step in vector.steps[:sent]:
        _send(session, step.command)
    _control(session, end)
    assert card.ended
    difference = card.result().difference
    assert difference is not None
    assert (difference.problem, difference.step) == (Problem.MISSING_COMMAND, sent)
    assert difference.expected == vector.steps[sent].command.hex().upper()


def test_a_command_past_the_vectors_end_fails_it() -> None:
    """A terminal that sends GENERATE AC after a license it should have refused."""
    refused = VECTORS["terminal-license-expired"]
    card, session = _session(refused)
    for step in refused.steps:
        _send(session, step.command)
    generate_ac = APPROVE.steps[len(refused.steps)].command
    assert generate_ac[1] == 0xAE
    assert _send(session, generate_ac) == OFF_SCRIPT
    difference = card.result().difference
    assert difference is not None
    assert (difference.problem, difference.step) == (Problem.EXTRA_COMMAND, len(refused.steps))


def test_the_field_lost_before_any_command_does_not_end_the_exchange() -> None:
    card = VectorCard(APPROVE)
    card.deactivate("field lost")
    card.power_on()
    assert not card.ended
    assert card.last_command_at is None


def test_the_setup_says_what_the_terminal_must_hold() -> None:
    torn = VECTORS["terminal-torn-recorded"]
    lines = setup_lines(terminal_setup(torn, PROFILES))
    text = "\n".join(lines)
    assert "unpredictable number 1A2B3C4D, date 261128, time 120000, amount 1234" in text
    assert "terminal id TERM0001, merchant id MERCHANT0000001, country 0156" in text
    assert "ca-01.pub.pem, valid until 2049-12-31" in text
    assert torn.terminal is not None
    account, atc, data, serial = torn.terminal.pending[0]
    assert f"open pending entry (PROTOCOL.md §9): account {account}, ATC {atc:04X}" in text
    assert f"{data.hex().upper()}, license serial {serial} checked" in text
    assert expected_end(torn) == (
        "approved, 2 new row(s) in its log; its pending entries closed as: recorded"
    )
    replayed = VECTORS["terminal-replayed-authorization"]
    lines = setup_lines(terminal_setup(replayed, PROFILES))
    assert "a row already in its log: account 6200123456789012, ATC 0001" in lines
    assert expected_end(replayed).startswith("refused (check 5: ")
    assert expected_end(replayed).endswith(
        ", 0 new row(s) in its log; this payment's pending entry closed (a replay)"
    )
    revoked = VECTORS["terminal-license-revoked"]
    assert any(
        line.startswith("revoked license serials: ")
        for line in setup_lines(terminal_setup(revoked, PROFILES))
    )
    expired = VECTORS["terminal-expired-authority-key"]
    assert expired.terminal is not None and expired.terminal.authority_expires
    until = f"valid until {expired.terminal.authority_expires}"
    assert any(line.endswith(until) for line in setup_lines(terminal_setup(expired, PROFILES)))


# ---------------------------------------------------------------------------- over a socket


class StandInVpcd:
    """vpcd's side of the socket: it takes the card's connection and talks to it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(10)
        self.port: int = self.server.getsockname()[1]
        self.conn: socket.socket | None = None
        self.reader = FrameReader()

    def accept(self) -> None:
        self.conn, _ = self.server.accept()
        self.conn.settimeout(10)

    def control(self, control: Control) -> None:
        assert self.conn is not None
        self.conn.sendall(encode_frame(bytes([control])))

    def exchange(self, payload: bytes) -> bytes:
        """Send a command (or an ATR request) and take the card's answer."""
        assert self.conn is not None
        self.conn.sendall(encode_frame(payload))
        while (message := self.reader.next_message()) is None:
            chunk = self.conn.recv(4096)
            assert chunk, "the card closed the connection"
            self.reader.feed(chunk)
        return message.apdu if isinstance(message, ApduMessage) else bytes([message.control])

    def wait_closed(self) -> None:
        """Until the card closes the connection (it leaves the reader)."""
        assert self.conn is not None
        while self.conn.recv(4096):
            pass
        self.conn.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


@pytest.fixture
def vpcd() -> Iterator[StandInVpcd]:
    stand_in = StandInVpcd()
    yield stand_in
    stand_in.close()


def _config(vpcd: StandInVpcd) -> VpcdConfig:
    return VpcdConfig(port=vpcd.port, poll_interval=0.02, backoff_initial=0.01)


def _pay(vpcd: StandInVpcd, vector: Vector, *, steps: int | None = None) -> list[bytes]:
    """A terminal through vpcd: the card comes in, the vector's commands (the first `steps`)."""
    vpcd.accept()
    assert vpcd.exchange(bytes([Control.ATR_REQUEST])) == bytes.fromhex("3B80800101")
    return [vpcd.exchange(step.command) for step in vector.steps[:steps]]


def test_serving_ends_when_the_terminal_resets_the_card(vpcd: StandInVpcd) -> None:
    results: list[object] = []
    thread = threading.Thread(
        target=lambda: results.append(serve_vector(APPROVE, _config(vpcd), ServeTiming(idle=30)))
    )
    thread.start()
    answers = _pay(vpcd, APPROVE)
    assert answers == [step.response.data for step in APPROVE.steps]
    vpcd.control(Control.RESET)
    thread.join(timeout=10)  # long before the 30 s of silence
    assert not thread.is_alive()
    [result] = results
    assert getattr(result, "passed", False)


def test_serving_ends_after_the_silence_of_a_terminal_that_leaves_the_card(
    vpcd: StandInVpcd,
) -> None:
    results: list[object] = []
    timing = ServeTiming(idle=0.3, poll=0.02)
    thread = threading.Thread(
        target=lambda: results.append(serve_vector(APPROVE, _config(vpcd), timing))
    )
    thread.start()
    _pay(vpcd, APPROVE, steps=3)
    thread.join(timeout=10)
    [result] = results
    difference = getattr(result, "difference", None)
    assert difference is not None
    assert (difference.problem, difference.step) == (Problem.MISSING_COMMAND, 3)


def test_no_first_command_within_the_timeout_fails_at_step_one(vpcd: StandInVpcd) -> None:
    """No terminal comes: the vector fails at its first command once `timeout` has passed
    (a serving loop that ignored the timeout would wait for ever: the stop below ends it,
    and the test fails instead of hanging)."""
    results: list[object] = []
    stop = threading.Event()
    timing = ServeTiming(timeout=0.3, poll=0.02)
    thread = threading.Thread(
        target=lambda: results.append(serve_vector(APPROVE, _config(vpcd), timing, stop))
    )
    thread.start()
    thread.join(timeout=10)
    stop.set()
    thread.join(timeout=10)
    [result] = results
    assert isinstance(result, ReplayResult) and result.difference is not None
    assert (result.difference.problem, result.difference.step) == (Problem.MISSING_COMMAND, 0)


def test_a_stop_ends_serving_with_no_result(vpcd: StandInVpcd) -> None:
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    assert serve_vector(APPROVE, _config(vpcd), ServeTiming(), stop) is None


# ---------------------------------------------------------------------------- the command


def _serve_cli(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["vectors", "serve", *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_command_serves_each_vector_in_turn_and_reports(vpcd: StandInVpcd) -> None:
    refused = VECTORS["terminal-license-expired"]

    def terminal() -> None:  # pays the first vector right, sends GENERATE AC in the second
        _pay(vpcd, APPROVE)
        vpcd.control(Control.POWER_OFF)
        vpcd.wait_closed()  # the first vector's card leaves; the next one comes
        _pay(vpcd, refused)
        vpcd.exchange(APPROVE.steps[len(refused.steps)].command)

    thread = threading.Thread(target=terminal)
    thread.start()
    paths = [str(TERMINAL[0].parent / f"{v.name}.json") for v in (APPROVE, refused)]
    where = ["--vpcd", f"127.0.0.1:{vpcd.port}", "--timeout", "10"]
    code, out, err = _serve_cli([*paths, *where, "--json"])
    thread.join(timeout=10)
    assert code == 1, err
    report = json.loads(out)
    assert (report["passed"], report["failed"]) == (1, 1)
    first, second = report["results"]
    assert first["passed"] and first["done"] == len(APPROVE.steps)
    assert first["expect"] == "approved, 1 new row(s) in its log"
    assert second["difference"]["problem"] == "extra command"
    assert second["difference"]["step"] == len(refused.steps) + 1
    assert "[1/2] terminal-approve" in err and "[2/2] terminal-license-expired" in err
    assert "set: unpredictable number 1A2B3C4D" in err
    assert "FAIL: extra command differs at step 7" in err


def test_the_command_exits_0_when_every_vector_passes(vpcd: StandInVpcd) -> None:
    def pay_then_reset() -> None:
        _pay(vpcd, APPROVE)
        vpcd.control(Control.RESET)

    thread = threading.Thread(target=pay_then_reset)
    thread.start()
    path = str(TERMINAL[0].parent / "terminal-approve.json")
    code, out, err = _serve_cli([path, "--vpcd", f"127.0.0.1:{vpcd.port}", "--timeout", "10"])
    thread.join(timeout=10)
    assert code == 0, err
    assert "1 passed, 0 failed" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["vectors/card/card-approve-basic.json"], "a card-side vector"),
        (["--vpcd", "127.0.0.1:0"], "bad vpcd address"),
        (["--idle", "0"], "--idle and --timeout must be a number of seconds more than 0"),
        (["--timeout", "0"], "--idle and --timeout must be a number of seconds more than 0"),
        (["--idle", "inf"], "'inf' is not a number of seconds like 30 or 0.5"),
        (["--timeout", "-1"], "'-1' is not a number of seconds like 30 or 0.5"),
        (["no-such-file.json"], "no-such-file.json"),
    ],
)
def test_the_command_refuses_bad_input_in_one_line(args: list[str], message: str) -> None:
    code, _, err = _serve_cli([a if not a.startswith("vectors/") else str(ROOT / a) for a in args])
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as server:
        return int(server.getsockname()[1])


def test_vpcd_unreachable_is_not_a_terminal_that_never_came() -> None:
    """The card never reached a reader: no verdict on the terminal (docs/conformance.md)."""
    config = VpcdConfig(port=_closed_port(), poll_interval=0.02, backoff_initial=0.01)
    with pytest.raises(VpcdUnreachableError, match="not reachable"):
        serve_vector(APPROVE, config, ServeTiming(timeout=0.3, poll=0.02))
    path = str(TERMINAL[0].parent / "terminal-approve.json")
    code, out, err = _serve_cli([path, "--vpcd", f"127.0.0.1:{config.port}", "--timeout", "0.3"])
    assert code == 4, err
    assert "not reachable" in err and "FAIL" not in err and out == ""
    assert "Traceback" not in err
    both = [path, str(TERMINAL[0].parent / "terminal-torn-recorded.json")]
    code, _, err = _serve_cli([*both, "--vpcd", f"127.0.0.1:{config.port}", "--timeout", "0.3"])
    assert code == 4, err
    assert "[1/2]" in err and "[2/2]" not in err  # no vector is served once vpcd is missing


def test_a_stop_after_the_exchange_ended_keeps_its_result(vpcd: StandInVpcd) -> None:
    """Ctrl-C just after a terminal reset the card: that vector was served; it counts."""
    stop = threading.Event()
    results: list[object] = []
    thread = threading.Thread(
        target=lambda: results.append(
            serve_vector(APPROVE, _config(vpcd), ServeTiming(poll=30), stop)
        )
    )
    thread.start()
    _pay(vpcd, APPROVE)
    vpcd.control(Control.RESET)
    vpcd.exchange(bytes([Control.ATR_REQUEST]))  # answered after the reset: it was taken
    stop.set()  # before the serving loop looks again (it polls every 30 s)
    thread.join(timeout=10)
    [result] = results
    assert getattr(result, "passed", False)


def test_a_refusal_after_generate_ac_expects_the_entry_left_open() -> None:
    after = VECTORS["terminal-amount-mismatch"]
    assert expected_end(after).endswith(
        "; this payment's pending entry left open (the card may have deducted, P§9)"
    )
    assert "left open" not in expected_end(VECTORS["terminal-license-expired"])


def test_a_command_after_the_terminal_ended_the_exchange_is_off_the_script() -> None:
    """After a reset that ends the exchange, the vector's next command is no longer served:
    the result stays the command the terminal did not send before the end."""
    card, session = _session(APPROVE)
    _send(session, APPROVE.steps[0].command)
    _control(session, Control.RESET)
    assert card.ended
    assert _send(session, APPROVE.steps[1].command) == OFF_SCRIPT
    result = card.result()
    assert result.done == 1
    assert result.difference is not None
    assert (result.difference.problem, result.difference.step) == (Problem.MISSING_COMMAND, 1)


def test_only_a_torn_payment_recorded_adds_a_row_to_the_expected_log() -> None:
    revoked_since = VECTORS["terminal-torn-license-revoked-since"]
    assert expected_end(revoked_since).startswith(
        "refused (check 3: license revoked (serial 1)), 1 new row(s) in its log; "
    )
    declined = VECTORS["terminal-torn-declined"]
    assert expected_end(declined) == (
        "approved, 2 new row(s) in its log; its pending entries closed as: recorded"
    )


def test_a_stop_ends_the_command_with_the_vectors_not_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C while the first vector is served: no further vector is served, and the command
    says how many were not (exit 130)."""
    import reader.served_vectors as sv

    served: list[str] = []

    def stopped(vector: Vector, *args: object) -> None:
        served.append(vector.name)
        return None

    monkeypatch.setattr(sv, "serve_vector", stopped)
    paths = [
        str(TERMINAL[0].parent / f"{name}.json")
        for name in ("terminal-approve", "terminal-torn-recorded")
    ]
    code, out, err = _serve_cli(paths)
    assert code == 130, err
    assert served == ["terminal-approve"]
    assert "interrupted (2 of 2 vector(s) not served)" in err
    assert out == ""
