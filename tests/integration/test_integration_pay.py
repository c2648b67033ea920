"""Payments through the real stack: `hcepay pay --reader`, pyscard, pcscd, vpcd, our card."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from applet import open_card
from reader.cli import app
from reader.log import TransactionLog, log_path
from reader.pcsc import NO_ANSWER

INS_GENERATE_AC, INS_GET_RESPONSE = 0xAE, 0xC0
SECOND_ACCOUNT = "6200555566667777"
PRESENCE_POLL = 0.4  # pcscd asks a vpcd card for its ATR this often
LEFT = (NO_ANSWER,)  # a card that dropped its connection: pcscd answers its transmit with nothing


class Spy:
    """Wraps a Card: records each command's INS and status word; can leave the field at a
    chosen INS (drops the connection before the card sees the command)."""

    def __init__(self, card: Any, leave_at: int | None = None, pause_at: int | None = None) -> None:
        self.card = card
        self.leave_at = leave_at
        self.pause_at = pause_at
        self.client: Any = None  # the VpcdClient, once served
        self.seen: list[tuple[int, int]] = []

    def power_on(self) -> bytes:
        return bytes(self.card.power_on())

    def process(self, apdu: bytes) -> bytes:
        ins = apdu[1] if len(apdu) > 1 else -1
        if ins == self.leave_at and self.client is not None:
            self.leave_at = None
            self.client.abort()
            return b""
        if ins == self.pause_at:
            time.sleep(PRESENCE_POLL * 2.5)  # pcscd polls the card (ATR request) meanwhile
        response = bytes(self.card.process(apdu))
        self.seen.append((ins, int.from_bytes(response[-2:], "big")))
        return response

    def deactivate(self, reason: str) -> None:
        self.card.deactivate(reason)


def test_approve(serve: Callable[..., Any], our_card: Any, terminal: Any) -> None:
    serve(our_card)
    code, result = terminal.pay("12.34")
    assert (code, result["verdict"], result["atc"]) == (0, "approved", 1), result
    assert terminal.rows() == [("6200123456789012", 1, 1234, 0x40)]
    assert terminal.stored() == (1, 1234)


def test_decline(serve: Callable[..., Any], our_card: Any, terminal: Any) -> None:
    serve(our_card)
    code, result = terminal.pay("1000.01")  # limit 1000.00
    assert (code, result["verdict"]) == (1, "declined"), result
    assert terminal.rows() == [("6200123456789012", 1, 100001, 0x00)]
    assert terminal.stored() == (1, 0)


def test_generate_ac_answer_is_chained(
    serve: Callable[..., Any], our_card: Any, terminal: Any
) -> None:
    spy = Spy(our_card)
    serve(spy)
    code, result = terminal.pay("1.00")
    assert code == 0, result
    at = spy.seen.index(next(s for s in spy.seen if s[0] == INS_GENERATE_AC))
    # the 1984-bit authorization does not fit one short response: 61xx, then GET RESPONSE
    assert spy.seen[at][1] >> 8 == 0x61
    assert spy.seen[at + 1] == (INS_GET_RESPONSE, 0x9000)


def test_a_slow_card_is_not_reset_by_pcscds_presence_polls(
    serve: Callable[..., Any], our_card: Any, terminal: Any
) -> None:
    serve(Spy(our_card, pause_at=INS_GENERATE_AC))
    code, result = terminal.pay("7.00")
    assert (code, result["verdict"]) == (0, "approved"), result
    assert terminal.stored() == (1, 700)


def test_card_removed_between_gpo_and_generate_ac(
    serve: Callable[..., Any], our_card: Any, home: Path, card_folder: Path, terminal: Any
) -> None:
    spy = Spy(our_card, leave_at=INS_GENERATE_AC)
    served = serve(spy)
    spy.client = served.client
    code, result = terminal.pay("12.34")
    assert (code, result["verdict"]) == (4, "transport error"), result
    # GENERATE AC went out: the card may have deducted, and its pending entry stays open (§9)
    assert result["reason"].startswith(
        tuple(f"{why}; GENERATE AC was sent, so the card may have deducted" for why in LEFT)
    ), result
    assert terminal.rows() == []
    with TransactionLog(log_path(home)) as log:
        assert [(p.account.hex(), p.atc) for p in log.pending()] == [("6200123456789012ffff", 1)]
    served.stop()
    assert terminal.stored() == (1, 0)  # the GPO counted; nothing deducted

    serve(open_card(card_folder))  # the same card folder, served again
    code, result = terminal.pay("12.34")
    assert (code, result["verdict"], result["atc"]) == (0, "approved", 2), result
    assert terminal.rows() == [("6200123456789012", 2, 1234, 0x40)]
    assert terminal.stored() == (2, 1234)


def test_two_cards_on_two_slots_paid_in_turn(
    serve: Callable[..., Any], our_card: Any, home: Path, terminal: Any
) -> None:
    issued = CliRunner().invoke(
        app,
        [
            *("card", "issue", "--account", SECOND_ACCOUNT, "--limit", "50.00"),
            *("--bits", "1024", "--home", str(home)),
        ],
    )
    assert issued.exit_code == 0, issued.output
    serve(our_card, 0)
    serve(open_card(home / "cards" / SECOND_ACCOUNT), 1)
    results = [
        terminal.pay("10.00", "Virtual PCD 00 00"),
        terminal.pay("20.00", "Virtual PCD 00 01"),
        terminal.pay(
            "30.00", "Virtual PCD 00 01"
        ),  # over the second card's remaining 30.00? no: equal
        terminal.pay("40.00", "Virtual PCD 00 00"),
        terminal.pay("0.01", "Virtual PCD 00 01"),  # 50.00 used: declined
    ]
    assert [(code, r["verdict"]) for code, r in results] == [
        (0, "approved"),
        (0, "approved"),
        (0, "approved"),
        (0, "approved"),
        (1, "declined"),
    ]
    assert terminal.rows() == [
        ("6200123456789012", 1, 1000, 0x40),
        (SECOND_ACCOUNT, 1, 2000, 0x40),
        (SECOND_ACCOUNT, 2, 3000, 0x40),
        ("6200123456789012", 2, 4000, 0x40),
        (SECOND_ACCOUNT, 3, 1, 0x00),
    ]


def test_hcepay_pay_and_card_serve_as_processes(
    home: Path, wait_card: Callable[[int, bool], None], terminal: Any
) -> None:
    wait_card(1, False)
    hcepay = [sys.executable, "-m", "reader.cli"]
    server = subprocess.Popen(
        [*hcepay, "card", "serve", "--home", str(home), "--vpcd", "127.0.0.1:35964"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_card(1, True)
        done = subprocess.run(
            [
                *hcepay,
                "pay",
                "--amount",
                "5.00",
                "--reader",
                "Virtual PCD 00 01",
                "--home",
                str(home),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "ATC 0001" in done.stdout
    finally:
        server.terminate()
        server.communicate(timeout=10)
        wait_card(1, False)
    assert server.returncode == 0
    assert terminal.stored() == (1, 500)
