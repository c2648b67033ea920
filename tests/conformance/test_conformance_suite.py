"""The committed suite: it replays green in-process and is what the generator makes."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from apdu import messages as m
from reader import vectors as vx
from reader.recovery import NotPaidReason

ROOT = Path(__file__).resolve().parents[2]
CARD = sorted((ROOT / "vectors" / "card").rglob("*.json"))
TERMINAL = sorted((ROOT / "vectors" / "terminal").rglob("*.json"))


def test_the_suite_is_large_enough_and_described() -> None:
    assert len(CARD) + len(TERMINAL) >= 40
    assert len(CARD) >= 20 and len(TERMINAL) >= 20
    for path in CARD + TERMINAL:
        vector = vx.load(path)
        assert vector.name == path.stem
        assert len(vector.description) > 30, path.name
        assert vector.side is (vx.Side.CARD if path in CARD else vx.Side.TERMINAL)


# PROTOCOL.md §3's commands (CLA, INS), GET DATA's three tags, §6's status words, §7's checks
COMMANDS = {(0x00, 0xA4), (0x80, 0xA8), (0x00, 0xB2), (0x80, 0xAE), (0x80, 0xCA), (0x00, 0xC0)}
GET_DATA_TAGS = {0x9F36, 0xDF01, 0xDF02}
STATUS_WORDS = {0x9000, 0x6700, 0x6A80, 0x6A82, 0x6A83, 0x6A86, 0x6985, 0x6A88, 0x6D00, 0x6E00}
STATUS_FAMILIES = {0x61, 0x6C}  # 61xx more data, 6Cxx wrong Le


def test_the_suite_covers_every_command_status_word_and_check() -> None:
    """A vector removed or regenerated without a case fails here, not silently."""
    commands, tags, words, families, selected = set(), set(), set(), set(), set()
    for path in CARD:
        for step in vx.load(path).steps:
            c, r = step.command, step.response
            commands.add((c[0], c[1]))
            if c[1] == 0xA4 and len(c) > 5:
                selected.add(bytes(c[5 : 5 + c[4]]))
            if c[1] == 0xCA:
                tags.add(c[2] << 8 | c[3])
            if all(r.known[-2:]):
                words.add(int.from_bytes(r.data[-2:], "big"))
                families.add(r.data[-2])
    assert commands >= COMMANDS, COMMANDS - commands
    assert selected >= {m.PPSE_NAME, m.PSE_NAME, m.CREDIT_AID}, selected
    assert tags >= GET_DATA_TAGS, GET_DATA_TAGS - tags
    assert words >= STATUS_WORDS, {f"{w:04X}" for w in STATUS_WORDS - words}
    assert families >= STATUS_FAMILIES, STATUS_FAMILIES - families
    checks, reasons = set(), set()
    for path in TERMINAL:
        expect = vx.load(path).expect
        assert expect is not None
        if expect.reason.startswith("check "):
            checks.add(int(expect.reason.split(":")[0].removeprefix("check ")))
            reasons.add(expect.reason.split(" (")[0])
    assert checks >= {1, 2, 3, 4, 5}, {1, 2, 3, 4, 5} - checks
    assert reasons >= RECOVERED_DATA_REASONS, RECOVERED_DATA_REASONS - reasons
    for what in ("template 70 missing", "AFL 08010401", "CDOL1 9F02"):  # check 1's templates
        assert any(r.startswith("check 1: ") and what in r for r in reasons), what
    torn = {o for p in TERMINAL for o in (vx.load(p).expect.pending or ())}  # type: ignore[union-attr]
    assert torn >= TORN_OUTCOMES, TORN_OUTCOMES - torn


# §9: a torn payment recorded once (approved or declined), or closed as not paid for each
# reason the card can give
TORN_OUTCOMES = {"recorded"} | {
    f"not paid: {reason.value}"
    for reason in (
        NotPaidReason.NO_ANSWER,
        NotPaidReason.OTHER_TRANSACTION,
        NotPaidReason.NOT_VERIFIED,
    )
}

# §7 checks 3 and 4 on the recovered data: 6A, format, BC, hash algorithm, hash, N_CA / N_APP
RECOVERED_DATA_REASONS = {
    f"check {n}: {what} {reason}"
    for n, what in ((3, "license"), (4, "authorization"))
    for reason in ("bad header", "bad format", "bad trailer", "bad hash", "sha1 not enabled")
} | {"check 3: license bad length", "check 4: authorization bad length"}


@pytest.mark.parametrize("path", CARD, ids=[p.stem for p in CARD])
def test_card_vector_replays_in_process(path: Path, profiles: Path) -> None:
    result = vx.replay_vector(vx.load(path), profiles)
    assert result.passed, result.difference and result.difference.describe()
    assert result.done == result.steps


@pytest.mark.parametrize("path", TERMINAL, ids=[p.stem for p in TERMINAL])
def test_terminal_vector_replays_in_process(path: Path, profiles: Path) -> None:
    vector = vx.load(path)
    result = vx.replay_vector(vector, profiles)
    assert result.passed, result.difference and result.difference.describe()
    assert vector.expect is not None and result.verdict is vector.expect.verdict


def test_committed_files_are_what_the_script_makes(generator: ModuleType) -> None:
    files = generator.build_all()
    committed = {p.relative_to(ROOT) for p in CARD + TERMINAL}
    assert set(files) == committed
    for relative, text in files.items():
        assert (ROOT / relative).read_text(encoding="utf-8") == text, f"{relative} is stale"
