"""Shared fixtures for the terminal tests: the published test profile, keys, log, env."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path

import pytest

from applet.profile import open_card
from applet.runtime import CardRuntime
from applet.state import CardState
from applet.store import MemoryStateStore
from authority.keyfiles import load_private, load_public
from authority.keystore import AuthorityKey, KeyStore
from authority.rsa import RsaPrivateKey
from reader.flow import Env, TerminalConfig
from reader.log import TransactionLog

PROFILE = Path(__file__).resolve().parents[2] / "vectors" / "profiles" / "test-card-1"
NOW = datetime(2026, 11, 28, 12, 0, 0)


@pytest.fixture(scope="session")
def profile() -> Path:
    """The published test profile folder."""
    return PROFILE


@pytest.fixture(scope="session")
def ca_private() -> RsaPrivateKey:
    """The published test authority key (index 01)."""
    return load_private(PROFILE / "ca-01.pem", published_test_key=True)


@pytest.fixture
def keys() -> KeyStore:
    """The terminal's store: the test authority key 01, valid until 2031."""
    ca = load_public(PROFILE / "ca-01.pub.pem")
    return KeyStore({1: AuthorityKey(1, ca, date(2031, 12, 31))})


@pytest.fixture
def make_card() -> Callable[..., CardRuntime]:
    """A fresh in-memory card of the test profile (optionally at a given state)."""

    def make(state: CardState | None = None) -> CardRuntime:
        return open_card(PROFILE, MemoryStateStore(state or CardState()))

    return make


@pytest.fixture
def cfg() -> TerminalConfig:
    """The profile's terminal."""
    return TerminalConfig("TERM0001", "MERCHANT0000001", 156)


@pytest.fixture
def env() -> Env:
    """A fixed clock and unpredictable number."""
    return Env(NOW, bytes.fromhex("1A2B3C4D"))


@pytest.fixture
def log(tmp_path: Path) -> Iterator[TransactionLog]:
    """An empty transaction log in a temporary folder."""
    with TransactionLog(tmp_path / "terminal.db") as opened:
        yield opened
