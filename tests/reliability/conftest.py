"""Shared material for the reliability tests: one 1024-bit APP key and a signed last answer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from apdu import dol, messages
from authority.authorization import DynamicData, sign_authorization
from authority.rsa import RsaPrivateKey, generate
from reader.recovery import PendingEntry

ACCOUNT = bytes.fromhex("6200123456789012FFFF")
UN = bytes.fromhex("1A2B3C4D")


@pytest.fixture(scope="session")
def app_private() -> RsaPrivateKey:
    """A 1024-bit APP key made once per session (test material only)."""
    return generate(1024, 65537)


def cdol1(amount: int = 1234, un: bytes = UN) -> bytes:
    return dol.fill_dol(
        messages.CDOL1,
        {
            0x9F02: bytes.fromhex(f"{amount:012d}"),
            0x5F2A: bytes.fromhex("0156"),
            0x9A: bytes.fromhex("261128"),
            0x9F21: bytes.fromhex("120000"),
            0x9F37: un,
        },
    )


LastAnswerMaker = Callable[..., tuple[PendingEntry, bytes]]


@pytest.fixture(scope="session")
def make_last_answer(app_private: RsaPrivateKey) -> LastAnswerMaker:
    """(pending entry, DF02 answer data) for one GENERATE AC; keywords tamper with the answer."""

    def make(
        *, atc: int = 7, cid: int = 0x40, amount: int = 1234, signed_amount: int | None = None
    ) -> tuple[PendingEntry, bytes]:
        data = cdol1(amount)
        dynamic = DynamicData(
            atc, cid, amount if signed_amount is None else signed_amount, 156, UN, ACCOUNT
        )
        authorization = sign_authorization(app_private, dynamic, data)
        answer = messages.build_generate_ac_response(
            messages.GenerateAcResponse(cid, atc, authorization)
        )
        last = messages.build_last_answer(messages.LastAnswer(answer, data))
        return PendingEntry(ACCOUNT, atc, data), last

    return make


@pytest.fixture()
def demo_home(tmp_path: Path) -> Path:
    """A home folder with the published test authority and the test-card-1 card."""
    from reader.cli_pay import make_demo_home

    home = tmp_path / "home"
    make_demo_home(home)
    return home
