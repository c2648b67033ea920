"""Shared fixtures for the applet tests: the published test profile, cards in any state."""

from __future__ import annotations

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
