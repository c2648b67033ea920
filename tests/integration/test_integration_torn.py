"""A torn payment through the real stack (PROTOCOL.md §9): the served card deducts, the vpcd
connection drops before its GENERATE AC answer reaches the terminal, and the next payment with
that card records the torn one first, exactly once.

Slot "Virtual PCD 00 01" only (slot 1).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from applet import open_card
from reader.log import TransactionLog, log_path
from reader.pcsc import NO_ANSWER

INS_GENERATE_AC = 0xAE
SLOT = 1
READER = "Virtual PCD 00 01"
LEFT = (NO_ANSWER,)  # a card that dropped its connection: pcscd answers its transmit with nothing
ACCOUNT = "6200123456789012"
PADDED_ACCOUNT = ACCOUNT + "ffff"  # the pending entry holds the account as the card sends it


class TornAtGenerateAc:
    """Wraps a Card: at the first GENERATE AC the card computes its answer (the state and the
    deduction are stored, DF02 holds the answer), then the vpcd connection drops before that
    answer goes out, as when the phone leaves the field at the worst moment."""

    def __init__(self, card: Any) -> None:
        self.card = card
        self.client: Any = None  # the VpcdClient, once served
        self.torn = False

    def power_on(self) -> bytes:
        return bytes(self.card.power_on())

    def process(self, apdu: bytes) -> bytes:
        response = bytes(self.card.process(apdu))
        if not self.torn and len(apdu) > 1 and apdu[1] == INS_GENERATE_AC:
            assert self.client is not None, "serve the wrapper, then set its client"
            self.torn = True
            self.client.abort()  # the client drops the connection instead of sending this
        return response

    def deactivate(self, reason: str) -> None:
        self.card.deactivate(reason)


def pending(home: Path) -> list[tuple[str, int, str | None]]:
    """(account, ATC, outcome) of every pending entry, open (None) or closed."""
    with TransactionLog(log_path(home)) as log:
        return [(p.entry.account.hex(), p.entry.atc, p.outcome) for p in log.pending_rows()]


def tear(serve: Callable[..., Any], card_folder: Path, amount: str, terminal: Any) -> None:
    """One payment whose GENERATE AC answer is lost after the card deducted: exit 4."""
    torn = TornAtGenerateAc(open_card(card_folder))
    served = serve(torn, SLOT)
    torn.client = served.client
    code, result = terminal.pay(amount, READER)
    assert torn.torn, "the card never saw GENERATE AC"
    assert (code, result["verdict"]) == (4, "transport error"), result
    # GENERATE AC went out: the card may have deducted, and its pending entry stays open (§9)
    # the card dropped its connection: pcscd answers the transmit with nothing (no answer)
    # or, once it noticed, with SCARD_W_REMOVED_CARD (card removed)
    assert result["reason"].startswith(
        tuple(f"{why}; GENERATE AC was sent, so the card may have deducted" for why in LEFT)
    ), result
    assert result["row_id"] is None
    served.stop()


def test_torn_approval_is_recorded_once_at_the_next_payment(
    serve: Callable[..., Any], home: Path, card_folder: Path, terminal: Any
) -> None:
    tear(serve, card_folder, "12.34", terminal)
    assert terminal.rows() == []
    assert pending(home) == [(PADDED_ACCOUNT, 1, None)]
    assert terminal.stored() == (1, 1234)  # the card deducted; the terminal never saw it

    serve(open_card(card_folder), SLOT)  # the same card folder, back in the field
    code, result = terminal.pay("5.00", READER)
    assert (code, result["verdict"], result["atc"]) == (0, "approved", 2), result
    assert result["recovered_atcs"] == [1]
    assert terminal.rows() == [(ACCOUNT, 1, 1234, 0x40), (ACCOUNT, 2, 500, 0x40)]
    # the torn entry closed as recorded; ATC 2's own entry removed with its row
    assert pending(home) == [(PADDED_ACCOUNT, 1, "recorded")]
    assert terminal.stored() == (2, 1234 + 500)

    code, result = terminal.pay("1.00", READER)  # once: nothing left to recover
    assert (code, result["verdict"], result["atc"]) == (0, "approved", 3), result
    assert result["recovered_atcs"] == []
    assert terminal.rows() == [
        (ACCOUNT, 1, 1234, 0x40),
        (ACCOUNT, 2, 500, 0x40),
        (ACCOUNT, 3, 100, 0x40),
    ]
    assert sum(r[2] for r in terminal.rows()) == terminal.stored()[1]
    assert pending(home) == [(PADDED_ACCOUNT, 1, "recorded")]  # none left open


def test_torn_decline_is_recorded_as_a_decline(
    serve: Callable[..., Any], home: Path, card_folder: Path, terminal: Any
) -> None:
    """§9 records the verified last answer, a decline too (CID 00), as an untorn decline is."""
    tear(serve, card_folder, "1000.01", terminal)  # over the 1000.00 limit: the card declines
    assert terminal.stored() == (1, 0)
    assert pending(home) == [(PADDED_ACCOUNT, 1, None)]

    serve(open_card(card_folder), SLOT)
    code, result = terminal.pay("3.00", READER)
    assert (code, result["verdict"], result["recovered_atcs"]) == (0, "approved", [1]), result
    assert terminal.rows() == [(ACCOUNT, 1, 100_001, 0x00), (ACCOUNT, 2, 300, 0x40)]
    assert pending(home) == [(PADDED_ACCOUNT, 1, "recorded")]
    assert terminal.stored() == (2, 300)  # the decline deducted nothing


def test_hcepay_pay_process_reports_the_torn_payment_it_recovers(
    serve: Callable[..., Any], home: Path, card_folder: Path, terminal: Any
) -> None:
    """`hcepay pay` as its own process: exit 4 when torn, then the recovery line, once."""
    torn = TornAtGenerateAc(open_card(card_folder))
    served = serve(torn, SLOT)
    torn.client = served.client
    hcepay = [sys.executable, "-m", "reader.cli", "pay", "--reader", READER, "--home", str(home)]

    def run(amount: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*hcepay, "--amount", amount], capture_output=True, text=True, timeout=60, check=False
        )

    first = run("20.00")
    assert first.returncode == 4, (first.stdout, first.stderr)
    served.stop()
    serve(open_card(card_folder), SLOT)
    second = run("2.50")
    assert second.returncode == 0, second.stderr
    assert "recovered torn payment: ATC 0001, 20.00" in second.stdout
    third = run("1.50")
    assert third.returncode == 0, third.stderr
    assert "recovered torn payment" not in third.stdout
    assert [r[1:3] for r in terminal.rows()] == [(1, 2000), (2, 250), (3, 150)]
    assert terminal.stored() == (3, 2000 + 250 + 150)
