"""Terminal-side vectors served as a card, to test another terminal (PROTOCOL.md §8).

`hcepay vectors replay` tests our own terminal against terminal-side vectors. This module
lets any terminal be tested with the same vectors: the vector's card answers through a
virtual PC/SC reader (vpcd, applet/vpcd.py), and the terminal under test pays it through
PC/SC as it would pay a phone.

* `VectorCard` is the card of one vector (the Card protocol of applet/card.py). It is pure:
  each command must equal the vector's next one, and gets that step's response; the first
  departure is kept and answered `6F00`. The exchange ends when the terminal powers the card
  off or resets it after its first command, or at the first departure.
* `serve_vector` is the IO around it: it serves the card to vpcd until the exchange ends, or
  the terminal has been silent for `idle` seconds after a command (it stopped without
  powering the card off), or no command came within `timeout`.

What is checked is the terminal's commands: that it sends exactly the vector's, in order,
and stops where the vector stops (a refusal sends no GENERATE AC). Its verdict and its log
are on the terminal's side: `setup_lines` says what the terminal must be set to before the
payment and what it must end with.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from applet.atr import ATR
from applet.vpcd import VpcdClient, VpcdConfig, format_endpoint
from reader.checks import Verdict
from reader.transport import TransportError
from reader.vectors import (
    GENERATE_AC_INS,
    ReplayResult,
    ScriptedCard,
    Side,
    TerminalSetup,
    Vector,
)

OFF_SCRIPT = b"\x6f\x00"  # a command off the script: no precise diagnosis (ISO 7816-4 5.6)


class VpcdUnreachableError(Exception):
    """vpcd never took the card's connection before `timeout`: no terminal could have come,
    so the vector is neither passed nor failed (docs/conformance.md, "Test your terminal")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class VectorCard:
    """The card of one terminal-side vector, served like any card (applet/card.py)."""

    def __init__(self, vector: Vector, clock: Callable[[], float] = time.monotonic) -> None:
        self.vector = vector
        self._script = ScriptedCard(vector.steps, ATR)
        self._clock = clock
        self.last_command_at: float | None = None  # by `clock`; None until the first command
        self.ended = False  # powered off or reset after a command, or off the script

    @property
    def answered(self) -> int:
        """How many of the vector's steps the terminal has gone through."""
        return self._script.index

    def power_on(self) -> bytes:
        """The ATR. pcscd powers a card on and off before a terminal talks to it; once the
        terminal has sent a command, a reset ends the exchange."""
        self._end_if_started()
        return self._script.atr

    def process(self, apdu: bytes) -> bytes:
        """The vector's response to the expected command; `6F00` off the script or after the
        end (the first departure is what the result reports)."""
        self.last_command_at = self._clock()
        if self.ended:
            return OFF_SCRIPT
        try:
            return self._script.transmit(apdu)
        except TransportError:
            self.ended = True
            return OFF_SCRIPT

    def deactivate(self, reason: str) -> None:
        """Power off or the field lost: after a command, the end of the exchange."""
        self._end_if_started()

    def _end_if_started(self) -> None:
        if self.last_command_at is not None:
            self.ended = True

    def result(self) -> ReplayResult:
        """Passed when the terminal sent every command of the vector and nothing else; else
        the first departure, or the first command it did not send."""
        steps = len(self.vector.steps)
        return ReplayResult(
            self.vector.name, Side.TERMINAL, steps, self.answered, self._script.finish()
        )


@dataclass(frozen=True)
class ServeTiming:
    """When `serve_vector` stops waiting (seconds)."""

    idle: float = 2.0  # silence after a command: the terminal has stopped
    timeout: float | None = None  # no first command by then: a failure (None: wait)
    poll: float = 0.05


def serve_vector(
    vector: Vector,
    vpcd: VpcdConfig,
    timing: ServeTiming = ServeTiming(),
    stop: threading.Event | None = None,
) -> ReplayResult | None:
    """Serve the vector's card to vpcd until its exchange is over; its result, or None when
    `stop` was set first. The card leaves the reader before this returns.
    VpcdUnreachableError when `timeout` passed and vpcd never took the connection."""
    card = VectorCard(vector)
    reached = threading.Event()
    client = VpcdClient(card, vpcd, on_connect=reached.set)
    thread = threading.Thread(target=client.serve_forever, name="vpcd-vector", daemon=True)
    stop = stop or threading.Event()
    thread.start()
    started = time.monotonic()
    over = False  # the exchange ended before any stop: its result stands
    try:
        while not over and not stop.wait(timing.poll):
            now = time.monotonic()
            last = card.last_command_at
            over = (
                card.ended
                or (last is not None and now - last >= timing.idle)
                or (last is None and timing.timeout is not None and now - started >= timing.timeout)
            )
    finally:
        client.stop()
        thread.join()
    if not over and not card.ended:  # stopped first (a terminal's reset may beat the stop)
        return None
    if not reached.is_set():
        raise VpcdUnreachableError(
            f"vpcd at {format_endpoint(vpcd.host, vpcd.port)} was not reachable within "
            f"{timing.timeout:g} s "
            "(is pcscd running with vpcd?)"
        )
    return card.result()


def expected_end(vector: Vector) -> str:
    """What the terminal must end with: its verdict, the reason, and the rows it logs."""
    expect = vector.expect
    if expect is None:
        return "(a card-side vector: nothing is expected of a terminal)"
    rows = 0 if expect.verdict is Verdict.REFUSED else 1
    recovered = sum(outcome == "recorded" for outcome in expect.pending or ())
    text = expect.verdict.value + (f" ({expect.reason})" if expect.reason else "")
    text += f", {rows + recovered} new row(s) in its log"
    sent_generate_ac = any(step.command[1:2] == bytes([GENERATE_AC_INS]) for step in vector.steps)
    if expect.verdict is Verdict.REFUSED and sent_generate_ac:
        if expect.reason.startswith("check 5"):  # the log holds it: closed as a replay
            text += "; this payment's pending entry closed (a replay)"
        else:
            text += "; this payment's pending entry left open (the card may have deducted, P§9)"
    if expect.pending:
        text += "; its pending entries closed as: " + "; ".join(expect.pending)
    return text


def setup_lines(setup: TerminalSetup) -> list[str]:
    """What the terminal under test must hold and do for the vector `setup` was made from
    (docs/conformance.md)."""
    values, cfg, request = setup.values, setup.config, setup.request
    lines = [
        f"unpredictable number {values.unpredictable_number.hex().upper()}, date "
        f"{values.date}, time {values.time}, amount {request.amount} (minor units), "
        f"currency {request.currency:03d}",
        f"terminal id {cfg.terminal_id}, merchant id {cfg.merchant_id}, country {cfg.country:04d}",
        f"authority key {setup.index:02X}: {setup.authority_key}, valid until "
        f"{setup.authority_expires.isoformat()}",
    ]
    if values.revoked:
        lines.append("revoked license serials: " + ", ".join(str(s) for s in values.revoked))
    for account, atc in values.logged:
        lines.append(f"a row already in its log: account {account}, ATC {atc:04X}")
    for account, atc, data, serial in values.pending:
        checked = "" if serial is None else f", license serial {serial} checked"
        lines.append(
            f"an open pending entry (PROTOCOL.md §9): account {account}, ATC {atc:04X}, "
            f"CDOL1 data {data.hex().upper()}{checked}"
        )
    return lines
