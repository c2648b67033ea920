"""The PC/SC stack for integration tests: pcscd with vpcd, and cards served to its readers.

Where pcscd or the virtual reader is missing, tests skip with the reason; when CI is set they
fail instead (CI starts pcscd through scripts/dev and must never skip silently).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from applet.atr import ATR
from applet.vpcd import VpcdClient, VpcdConfig

READERS = ("Virtual PCD 00 00", "Virtual PCD 00 01")
PORTS = (35963, 35964)
INTEGRATION_DIR = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder needs pcscd: mark it `integration`."""
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def unavailable(reason: str) -> None:
    """Skip, or fail when CI is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: scripts/dev test must start pcscd with vpcd)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pcsc_stack() -> tuple[str, ...]:
    """pcscd is running and lists both vpcd readers (else skip, or fail in CI)."""
    try:
        from reader.pcsc import list_readers
        from reader.transport import TransportError
    except ImportError as exc:  # pyscard without libpcsclite
        unavailable(f"pyscard unusable: {exc}")
        raise
    try:
        names = [info.name for info in list_readers()]
    except TransportError as exc:
        unavailable(f"PC/SC: {exc.reason}")
        raise
    missing = [name for name in READERS if name not in names]
    if missing:
        unavailable(f"no reader {missing[0]!r}: is vsmartcard-vpcd installed? (readers: {names})")
    return READERS


def card_atr(reader: str) -> bytes | None:
    """The ATR pcscd shows for `reader` (None when it holds no card)."""
    from reader.pcsc import list_readers

    return next((info.atr for info in list_readers() if info.name == reader), None)


def wait_for(reader: str, present: bool, timeout: float = 5.0) -> None:
    """Wait until pcscd sees a card in `reader` (or sees it gone); pcscd polls every 400 ms."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (card_atr(reader) is not None) == present:
            return
        time.sleep(0.03)
    raise AssertionError(
        f"{reader}: card still {'absent' if present else 'present'} after {timeout}s"
    )


class EchoCard:
    """A bare card: answers 9000 to everything (with the command's data echoed, case 3/4)."""

    def __init__(self) -> None:
        self.apdus = 0

    def power_on(self) -> bytes:
        return ATR

    def process(self, apdu: bytes) -> bytes:
        self.apdus += 1
        data = apdu[5 : 5 + apdu[4]] if len(apdu) > 5 else b""
        return data + b"\x90\x00"

    def deactivate(self, reason: str) -> None:
        """Nothing to save."""


@dataclass
class ServedCard:
    """A card served in a thread to one vpcd slot."""

    client: VpcdClient
    thread: threading.Thread
    reader: str
    stopped: bool = field(default=False)

    def stop(self) -> None:
        """Stop serving; wait until pcscd sees the card gone."""
        if self.stopped:
            return
        self.stopped = True
        self.client.stop()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive(), "the vpcd loop did not stop"
        wait_for(self.reader, present=False)


Serve = Callable[..., ServedCard]


@pytest.fixture
def serve(pcsc_stack: tuple[str, ...]) -> Iterator[Serve]:
    """serve(card, slot=0) -> ServedCard: the card is in the reader when this returns; every
    card served is stopped (and seen gone) at teardown."""
    served: list[ServedCard] = []

    def start(card: object, slot: int = 0) -> ServedCard:
        reader = pcsc_stack[slot]
        try:  # pcscd may be shared (a developer's own session): wait for the slot to be free
            wait_for(reader, present=False, timeout=15)
        except AssertionError:
            pytest.fail(f"{reader} is in use by another program serving a card")
        # pcscd polls every 400 ms. Right after a card left this slot, vpcd's driver was seen
        # (twice in full CI runs, never alone) to take a new connection and never report the
        # card: a fresh connection then brings it. Three tries of 8 s; the last one fails.
        for attempt in range(1, 4):
            client = VpcdClient(card, VpcdConfig(port=PORTS[slot], poll_interval=0.05))  # type: ignore[arg-type]
            thread = threading.Thread(target=client.serve_forever, name=f"vpcd-{slot}", daemon=True)
            thread.start()
            one = ServedCard(client, thread, reader)
            served.append(one)
            try:
                wait_for(reader, present=True, timeout=8)
                return one
            except AssertionError:
                if attempt == 3:
                    raise
                one.stopped = True
                client.stop()
                thread.join(timeout=5)
                assert not thread.is_alive(), "the vpcd loop did not stop"
                logging.getLogger(__name__).warning("%s: no card after 8 s, serving again", reader)
        raise AssertionError("unreachable")

    yield start
    for one in served:
        one.stop()


@pytest.fixture
def echo_card() -> EchoCard:
    """A fresh bare card."""
    return EchoCard()


PROFILE = Path(__file__).resolve().parents[2] / "vectors" / "profiles" / "test-card-1"
ACCOUNT = "6200123456789012"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home folder as `hcepay demo` makes it: the published test authority in the terminal's
    key store, and the test profile's card (limit 1000.00 CNY) in cards/<account>."""
    from reader.cli_pay import make_demo_home

    root = tmp_path / "home"
    make_demo_home(root)
    (root / "authority" / "ca-01.pem").chmod(0o600)  # so that `hcepay card issue` accepts it
    return root


@pytest.fixture
def card_folder(home: Path) -> Path:
    """The folder of the home's card."""
    folder = home / "cards" / ACCOUNT
    assert (folder / "card.json").is_file()
    return folder


@dataclass(frozen=True)
class Terminal:
    """The home's terminal and card as the tests see them: `hcepay pay --json` run in this
    process, the log's rows, the card's stored state."""

    home: Path
    card_folder: Path

    def pay(self, amount: str, reader: str = READERS[0]) -> tuple[int, dict[str, Any]]:
        """`hcepay pay --json` on `reader`: its exit code and JSON."""
        from typer.testing import CliRunner

        from reader.cli import app

        result = CliRunner().invoke(
            app, ["pay", "--amount", amount, "--reader", reader, "--home", str(self.home), "--json"]
        )
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        return result.exit_code, json.loads(lines[-1]) if lines else {"output": result.output}

    def rows(self) -> list[tuple[str, int, int, int]]:
        """(account, ATC, amount, CID) of every row of the terminal's log."""
        from reader.log import TransactionLog, log_path

        with TransactionLog(log_path(self.home)) as log:
            return [
                (r.outcome.account, r.outcome.atc, r.outcome.amount, r.outcome.cid)
                for r in log.rows()
            ]

    def stored(self) -> tuple[int, int]:
        """The card's stored (ATC, used credit)."""
        from applet.store import FileStateStore

        state = FileStateStore(self.card_folder).load()
        return state.atc, state.used


@pytest.fixture
def terminal(home: Path, card_folder: Path) -> Terminal:
    """The home's terminal and card (see Terminal)."""
    return Terminal(home, card_folder)


@pytest.fixture
def our_card(card_folder: Path) -> Any:
    """Our card, file-backed in `card_folder` (not served yet: pass it to `serve`)."""
    from applet import open_card

    return open_card(card_folder)


@pytest.fixture
def wait_card(pcsc_stack: tuple[str, ...]) -> Callable[[int, bool], None]:
    """wait_card(slot, present): wait until pcscd sees a card in that slot (or sees none)."""

    def wait(slot: int, present: bool) -> None:
        wait_for(pcsc_stack[slot], present)

    return wait
