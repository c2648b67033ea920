"""Shared fixtures for the applet tests: the published test profile, cards in any state."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from apdu import messages as m
from apdu.dol import fill_dol
from applet.payment import CardEnv, PaymentApplet
from applet.profile import CardProfile, load_app_key, load_profile
from applet.runtime import CardRuntime
from applet.state import CardState
from applet.store import MemoryStateStore, StateStore

PROFILE = Path(__file__).resolve().parents[2] / "vectors" / "profiles" / "test-card-1"
AMOUNT = 1234
CURRENCY = 156
UN = bytes.fromhex("1A2B3C4D")


def terminal_values(amount: int = AMOUNT, currency: int = CURRENCY) -> dict[int, bytes]:
    """The terminal's data elements for PDOL and CDOL1 (PROTOCOL.md §3)."""
    return {
        0x9F02: bytes.fromhex(f"{amount:012d}"),
        0x5F2A: bytes.fromhex(f"{currency:04d}"),
        0x9F37: UN,
        0x9F1A: bytes.fromhex("0156"),
        0x9A: bytes.fromhex("261128"),
        0x9F21: bytes.fromhex("120000"),
        0x9C: b"\x00",
        0x9F16: b"MERCHANT0000001",
        0x9F1C: b"TERM0001",
    }


@pytest.fixture(scope="session")
def profile_folder() -> Path:
    """vectors/profiles/test-card-1 (published test keys)."""
    return PROFILE


@pytest.fixture(scope="session")
def profile() -> CardProfile:
    """The test profile's card.json."""
    return load_profile(PROFILE)


@pytest.fixture(scope="session")
def env(profile: CardProfile) -> CardEnv:
    """The applet's inputs for the test profile (keys loaded once per session)."""
    return CardEnv(profile.card_data(), load_app_key(PROFILE, profile))


MakeCard = Callable[..., CardRuntime]


@pytest.fixture
def make_card(env: CardEnv) -> MakeCard:
    """A powered-on test card: `make_card(atc=, used=, store=)`."""

    def make(atc: int = 0, used: int = 0, store: StateStore | None = None) -> CardRuntime:
        card = CardRuntime(
            PaymentApplet(env), store or MemoryStateStore(CardState(atc=atc, used=used))
        )
        card.power_on()
        return card

    return make


class Terminal:
    """The terminal side of the tests: commands filled from fixed terminal values."""

    amount = AMOUNT
    currency = CURRENCY
    un = UN

    @staticmethod
    def values(amount: int = AMOUNT, currency: int = CURRENCY) -> dict[int, bytes]:
        """The terminal's data elements (PROTOCOL.md §3)."""
        return terminal_values(amount, currency)

    @staticmethod
    def gpo(amount: int = AMOUNT, currency: int = CURRENCY) -> bytes:
        """GPO with the PDOL filled."""
        return m.gpo(fill_dol(m.PDOL, terminal_values(amount, currency))).to_bytes()

    @staticmethod
    def cdol1(amount: int = AMOUNT, currency: int = CURRENCY) -> bytes:
        """CDOL1 data as the terminal fills it."""
        return fill_dol(m.CDOL1, terminal_values(amount, currency))

    @staticmethod
    def generate_ac(amount: int = AMOUNT, currency: int = CURRENCY) -> bytes:
        """GENERATE AC with the CDOL1 filled."""
        return m.generate_ac(fill_dol(m.CDOL1, terminal_values(amount, currency))).to_bytes()

    @staticmethod
    def exchange(card: CardRuntime, command: bytes) -> tuple[bytes, int]:
        """Send a command and fetch every 61xx part: (whole data, final SW)."""
        response = card.process(command)
        data = response[:-2]
        for _ in range(16):
            if response[-2] != 0x61:
                break
            response = card.process(m.get_response(response[-1]).to_bytes())
            data += response[:-2]
        return data, int.from_bytes(response[-2:], "big")


@pytest.fixture(scope="session")
def term() -> type[Terminal]:
    """Terminal helpers (commands, chained exchange)."""
    return Terminal


class Crash(BaseException):
    """The machine stops in the middle of a write."""


class Disk:
    """What the disk holds of one file: its bytes as of the last fdatasync that succeeded.
    A failed fdatasync flushes nothing (Linux drops the pages it could not write, while a
    read still shows them); `fail_flush` = N fails the Nth flush from now; `tear_next` cuts
    the next write in half and stops the machine."""

    Crash = Crash

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = path
        self.image = bytearray(path.read_bytes())
        self.fail_flush = 0
        self.tear_next = False
        flush, pwrite = os.fdatasync, os.pwrite

        def torn_pwrite(fd: int, data: bytes, offset: int) -> int:
            if self.tear_next:
                half = bytes(data)[: len(data) // 2]
                self.image[offset : offset + len(half)] = half
                self.crash()
                raise self.Crash
            return pwrite(fd, data, offset)

        def failing_flush(fd: int) -> None:
            self.fail_flush -= 1
            if self.fail_flush == 0:
                raise OSError(errno.EIO, "Input/output error")
            flush(fd)
            self.image[:] = path.read_bytes()

        monkeypatch.setattr(os, "pwrite", torn_pwrite)
        monkeypatch.setattr(os, "fdatasync", failing_flush)

    def crash(self) -> None:
        """The power goes: the file holds what the disk held."""
        self.path.write_bytes(bytes(self.image))


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], Disk]:
    """`disk(path)`: the file as its disk holds it, from now on (fdatasync and pwrite watched)."""
    return lambda path: Disk(path, monkeypatch)
