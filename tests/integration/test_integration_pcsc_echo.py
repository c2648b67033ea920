"""PcscTransport and list_readers through the real pcscd + vpcd, against a bare echo card."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from reader.pcsc import NO_ANSWER, PcscTransport, list_readers
from reader.transport import TransportError

ATR = bytes.fromhex("3B80800101")


def test_the_served_card_is_listed_with_its_atr(serve: Any, echo_card: Any) -> None:
    serve(echo_card, 1)
    infos = {info.name: info for info in list_readers()}
    assert infos["Virtual PCD 00 01"].atr == ATR
    assert infos["Virtual PCD 00 00"].atr is None
    assert [info.index for info in list_readers()][:2] == [0, 1]


@pytest.mark.parametrize("reader", ["Virtual PCD 00 00", 0, "0"])
def test_connect_and_transmit(serve: Any, echo_card: Any, reader: str | int) -> None:
    serve(echo_card)
    transport = PcscTransport(reader)
    assert transport.connect() == ATR
    assert transport.name == "pcsc:Virtual PCD 00 00"
    try:
        assert transport.transmit(bytes.fromhex("00A4040002AABB00")) == bytes.fromhex("AABB9000")
        assert transport.transmit(bytes.fromhex("80CA9F3600")) == bytes.fromhex("9000")
    finally:
        transport.disconnect()
    assert echo_card.apdus == 2


def test_a_card_leaving_the_field_is_card_removed(serve: Any, echo_card: Any) -> None:
    served = serve(echo_card)
    transport = PcscTransport("Virtual PCD 00 00")
    transport.connect()
    transport.transmit(bytes.fromhex("80CA9F3600"))
    served.client.abort()
    reasons = []
    for _ in range(3):
        with pytest.raises(TransportError) as caught:
            transport.transmit(bytes.fromhex("80CA9F3600"))
        reasons.append(caught.value.reason)
    transport.disconnect()
    # pcscd answers a transmit with nothing (no answer) until it has noticed the card left,
    # then with SCARD_W_REMOVED_CARD: most runs give one of each, a slower test none first
    assert reasons[0] in (NO_ANSWER, "card removed"), reasons
    assert reasons[1:] == ["card removed", "card removed"], reasons


def test_the_card_comes_back_after_it_left(serve: Any, echo_card: Any) -> None:
    served = serve(echo_card)
    served.client.abort()  # the loop reconnects by itself, as after a pcscd restart
    deadline = time.monotonic() + 5
    while True:
        transport = PcscTransport("Virtual PCD 00 00")
        try:
            transport.connect()
            assert transport.transmit(bytes.fromhex("0001020300")) == bytes.fromhex("9000")
            break
        except TransportError:
            assert time.monotonic() < deadline, "the card did not come back"
            time.sleep(0.1)
        finally:
            transport.disconnect()


def test_an_empty_reader(pcsc_stack: Any) -> None:
    with pytest.raises(TransportError) as caught:
        PcscTransport("Virtual PCD 00 01").connect()
    assert caught.value.reason == "no card in reader"


@pytest.mark.parametrize(
    ("reader", "reason"),
    [("Nowhere 00 00", "no reader named 'Nowhere 00 00'"), (7, "no reader number 7")],
)
def test_an_unknown_reader(pcsc_stack: Any, reader: str | int, reason: str) -> None:
    with pytest.raises(TransportError) as caught:
        PcscTransport(reader).connect()
    assert caught.value.reason.startswith(reason)


def test_a_reader_held_by_another_application_is_busy(serve: Any, echo_card: Any) -> None:
    serve(echo_card)
    first = PcscTransport("Virtual PCD 00 00")
    first.connect()
    try:
        with pytest.raises(TransportError) as caught:
            PcscTransport("Virtual PCD 00 00", busy_retry=0).connect()  # no 2 s of retries
        assert caught.value.reason.startswith(
            "reader busy: another application holds Virtual PCD 00 00 ("
        )
    finally:
        first.disconnect()


def test_transmit_before_connect(pcsc_stack: Any) -> None:
    with pytest.raises(TransportError, match="not connected"):
        PcscTransport(0).transmit(b"\x00\xa4\x04\x00")


def test_two_slots_at_once(serve: Any, echo_card: Any) -> None:
    other = type(echo_card)()
    serve(echo_card, 0)
    serve(other, 1)
    results: dict[int, bytes] = {}

    def pay(slot: int) -> None:
        transport = PcscTransport(slot)
        transport.connect()
        try:
            results[slot] = transport.transmit(bytes([0, 0xCA, 0, 0, 1, slot]))
        finally:
            transport.disconnect()

    threads = [threading.Thread(target=pay, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert results == {0: b"\x00\x90\x00", 1: b"\x01\x90\x00"}
    assert (echo_card.apdus, other.apdus) == (1, 1)


def test_hcepay_readers_json_shows_the_atr(serve: Any, echo_card: Any) -> None:
    from typer.testing import CliRunner

    from reader.cli import app

    serve(echo_card, 1)
    result = CliRunner().invoke(app, ["readers", "--json"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1, result.stdout  # one line, as every --json
    listed = json.loads(result.stdout)
    assert listed[:2] == [
        {"index": 0, "name": "Virtual PCD 00 00", "atr": None, "mute": False},
        {"index": 1, "name": "Virtual PCD 00 01", "atr": "3B80800101", "mute": False},
    ]
    table = CliRunner().invoke(app, ["readers"])
    assert "3B 80 80 01 01" in table.stdout and "(no card)" in table.stdout
