"""Durable state (applet/store.py, applet/state.py) and card folders (applet/profile.py)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu import messages as m
from applet import open_card
from applet.errors import StateFileError
from applet.profile import (
    CardProfile,
    IssueRequest,
    issue_card,
    load_profile,
    profile_from_json,
)
from applet.state import (
    ANSWER_CIDS,
    CDOL1_DATA_LENGTH,
    MAX_STATE_TEXT,
    AnswerInputs,
    CardState,
    state_from_bytes,
    state_from_json,
    state_to_bytes,
    state_to_json,
)
from applet.store import (
    SEED_FILE,
    SLOT_MAGIC,
    SLOT_SIZE,
    STATE_FILE,
    CardInUseError,
    FileStateStore,
    MemoryStateStore,
    decode_slot,
    encode_slot,
)
from authority.keyfiles import load_public
from authority.rsa import generate

# a GENERATE AC answer as sent (a state keeps only answers GET DATA DF02 can give)
SENT = m.build_generate_ac_response(m.GenerateAcResponse(0x40, 7, b"\x01"))
gac_answers = st.builds(
    m.GenerateAcResponse,
    st.integers(0, 0xFF),
    st.integers(0, 0xFFFF),
    st.binary(min_size=1, max_size=300),
).map(m.build_generate_ac_response)
as_sent = st.builds(m.LastAnswer, gac_answers, st.binary(max_size=64))
cdol1_data = st.builds(  # amount and currency (n, the first 8 bytes), then any bytes
    lambda amount, currency, rest: bytes.fromhex(f"{amount:012d}{currency:04d}") + rest,
    st.integers(0, 999_999_999_999),
    st.integers(0, 9999),
    st.binary(min_size=CDOL1_DATA_LENGTH - 8, max_size=CDOL1_DATA_LENGTH - 8),
)


@st.composite
def states(draw: st.DrawFn) -> CardState:
    """Any valid state: answers kept as inputs carry an ATC up to the card's."""
    atc = draw(st.integers(0, 0xFFFF))
    as_inputs = st.builds(
        AnswerInputs, st.sampled_from(ANSWER_CIDS), st.integers(0, atc), cdol1_data
    )
    answers = draw(st.lists(as_sent | as_inputs, max_size=10).map(tuple))
    return CardState(atc, draw(st.integers(0, 999_999_999_999)), answers)


@given(states())
def test_state_json_round_trip(state: CardState) -> None:
    assert state_from_json(state_to_json(state)) == state


@given(states())
def test_state_bytes_round_trip(state: CardState) -> None:
    assert state_from_bytes(state_to_bytes(state)) == state


@given(states(), st.data())
def test_a_cut_or_padded_binary_state_is_refused(state: CardState, data: st.DataObject) -> None:
    raw = state_to_bytes(state)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(ValueError, match="binary state"):
        state_from_bytes(raw[:cut])
    with pytest.raises(ValueError, match="after the binary state"):
        state_from_bytes(raw + b"\x00")


@st.composite
def binary_states(draw: st.DrawFn) -> bytes:
    """Bytes near a binary state (version 2): a valid one with a few bytes changed, cut or
    added, or one made by hand of answers whose fields are any bytes."""
    if draw(st.booleans()):
        raw = bytearray(state_to_bytes(draw(states())))
        for _ in range(draw(st.integers(0, 3))):
            if raw:
                raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        cut = draw(st.integers(0, len(raw)))
        return bytes(raw[:cut] if draw(st.booleans()) else raw) + draw(st.binary(max_size=2))
    as_inputs = st.builds(  # CID, ATC 0 and CDOL1 data of any bytes
        lambda cid, data: b"\x01" + struct.pack(">BHH", cid, 0, len(data)) + data,
        st.sampled_from(ANSWER_CIDS),
        st.binary(min_size=CDOL1_DATA_LENGTH, max_size=CDOL1_DATA_LENGTH),
    )
    as_sent = st.builds(  # an answer and its CDOL1 data, any bytes
        lambda answer, data: (
            b"\x00" + struct.pack(">H", len(answer)) + answer + struct.pack(">H", len(data)) + data
        ),
        gac_answers | st.binary(max_size=40),
        st.binary(max_size=CDOL1_DATA_LENGTH),
    )
    answers = draw(st.lists(as_inputs | as_sent, max_size=4))
    head = struct.pack(">HQB", draw(st.integers(0, 0xFFFF)), 0, len(answers))
    return head + b"".join(answers)


@given(binary_states(), st.sampled_from([1, 2]))
def test_any_binary_state_is_canonical_or_value_error(raw: bytes, version: int) -> None:
    """A state.dat payload (PROTOCOL.md §9) of any bytes is a state or a ValueError; a state
    is written back (version 2) as the same bytes, and holds only answers GET DATA DF02 can
    give (the seed's JSON reads it back too). The binary form kept a last answer of any bytes
    or with CDOL1 data whose amount is not BCD, and DF02 answered 6F00 for it."""
    try:
        state = state_from_bytes(raw, version)
    except ValueError:
        return
    if version == 2:
        assert state_to_bytes(state) == raw
    assert state_from_json(state_to_json(state)) == state


@given(st.text(max_size=80) | states().map(state_to_json).map(lambda t: t.replace("1", "9", 1)))
def test_any_state_json_is_a_state_or_value_error(text: str) -> None:
    """A state.json seed of any text is a state (that round-trips) or a ValueError."""
    try:
        state = state_from_json(text)
    except ValueError:
        return
    assert state_from_json(state_to_json(state)) == state


def test_a_binary_state_with_too_many_answers_is_refused() -> None:
    with pytest.raises(ValueError, match="more than 10 last answers"):
        state_from_bytes(b"\x00\x01" + bytes(8) + b"\x0b")
    with pytest.raises(ValueError, match="longer than 65535"):
        state_to_bytes(CardState(1, 0, (m.LastAnswer(bytes(65536), b""),)))
    with pytest.raises(ValueError, match="longer than 65535"):  # its CDOL1 data too
        state_to_bytes(CardState(1, 0, (m.LastAnswer(b"\x77\x00", bytes(65536)),)))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[]", "not an hcepay state"),
        ('{"hcepay_state": 1, "atc": "1", "used": 0}', "'atc' must be an integer"),
        ('{"hcepay_state": 1, "atc": 65536, "used": 0}', "ATC 65536"),
        ('{"hcepay_state": 1, "atc": 1, "used": -1}', "used credit"),
        ('{"hcepay_state": 1, "atc": 1, "used": true}', "'used' must be an integer"),
        ('{"hcepay_state": 1, "atc": 1, "used": 0, "last_answers": [1]}', "'answer' .as sent"),
        ('{"hcepay_state": 1, "atc": 1, "used": 0, "last_answers": [{}]}', "or 'cid' and 'atc'"),
        ("[" * 60000, "nested too deeply"),
        (
            '{"hcepay_state": 1, "atc": 1, "used": 0, "last_answers": '
            '[{"answer": "ZZ", "cdol1_data": ""}]}',
            "last answer 'answer' must be a hex string",
        ),
        (
            '{"hcepay_state": 1, "atc": 1, "used": 0, "last_answers": '
            '[{"answer": "7700", "cdol1_data": ""}]}',
            "last answer is no GENERATE AC template",
        ),
        (
            '{"hcepay_state": 1, "atc": 1, "used": 0, "last_answers": '
            '[{"cid": 64, "atc": 1, "cdol1_data": "' + "FF" * CDOL1_DATA_LENGTH + '"}]}',
            "9F02 is not BCD",
        ),
        (
            '{"hcepay_state": 1, "atc": 1, "used": 0, "last_answers": '
            '[{"cid": 64, "atc": 1, "cdol1_data": "'
            + "00" * 6
            + "FFFF"
            + "00" * (CDOL1_DATA_LENGTH - 8)
            + '"}]}',
            "5F2A is not BCD",
        ),
    ],
)
def test_bad_state_text_is_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        state_from_json(text)


_INPUTS_DATA = bytes(CDOL1_DATA_LENGTH)


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: AnswerInputs(0x80, 1, _INPUTS_DATA), "CID 0x80: not 00 or 40"),  # no ARQC
        (lambda: AnswerInputs(0x40, 0x10000, _INPUTS_DATA), "ATC 65536 outside"),
        (lambda: AnswerInputs(0x40, -1, _INPUTS_DATA), "ATC -1 outside"),
        (lambda: AnswerInputs(0x40, 1, _INPUTS_DATA[:-1]), "CDOL1 data of"),
        (lambda: CardState(0x10000, 0), "ATC 65536 outside"),
        (lambda: CardState(1, 1_000_000_000_000), "used credit"),
        (lambda: CardState(11, 0, (AnswerInputs(0x40, 1, _INPUTS_DATA),) * 11), "more than 10"),
        (lambda: CardState(1, 0, (AnswerInputs(0x40, 2, _INPUTS_DATA),)), "above the card's ATC"),
    ],
)
def test_a_state_outside_the_protocol_cannot_be_made(make: Any, why: str) -> None:
    """PROTOCOL.md §6, §9: the ATC is b2 (0..FFFF), the used credit n12, at most 10 last
    answers, each an AC or AAC (CID 40 or 00: the card never answers an ARQC) of an ATC the
    card has reached, with CDOL1 data of the CDOL1's length."""
    with pytest.raises(ValueError, match=why):
        make()


def test_a_state_at_its_bounds_can_be_made() -> None:
    """The largest values of PROTOCOL.md §6, §9 are kept: ATC FFFF, used credit n12 all 9s,
    10 answers, an answer of the card's own ATC."""
    answers = tuple(AnswerInputs(cid, 0xFFFF, _INPUTS_DATA) for cid in (0x00, 0x40) * 5)
    state = CardState(0xFFFF, 999_999_999_999, answers)
    assert state_from_bytes(state_to_bytes(state)) == state
    assert state_from_json(state_to_json(state)) == state


@pytest.mark.parametrize(
    "text",
    [
        '{"atc": 1, "used": 0}',
        '{"hcepay_state": 2, "atc": 1, "used": 0}',
        '{"hcepay_state": "1", "atc": 1, "used": 0}',
        '{"hcepay_state": true, "atc": 1, "used": 0}',
        '{"hcepay_state": 1.0, "atc": 1, "used": 0}',
    ],
)
def test_state_text_of_another_version_is_refused(text: str) -> None:
    """state.json names its format (`hcepay_state` 1, the integer): a text without it, of
    another version, or with 1 as true or 1.0, is not read as this one."""
    with pytest.raises(ValueError, match="not an hcepay state"):
        state_from_json(text)


def test_state_text_of_more_than_10_answers_is_refused_as_a_list() -> None:
    """PROTOCOL.md §9 keeps 10 answers: a state.json listing 11 is refused by its list's
    bound, before any of them is parsed."""
    text = json.dumps({"hcepay_state": 1, "atc": 1, "used": 0, "last_answers": [{}] * 11})
    with pytest.raises(ValueError, match="at most 10"):
        state_from_json(text)


def test_state_text_bound_is_exact() -> None:
    """state.json is read up to MAX_STATE_TEXT characters (a bound, docs/architecture.md): a
    text of exactly that length is read, one character more is refused."""
    core = '{"hcepay_state": 1, "atc": 1, "used": 0}'
    assert state_from_json(core.ljust(MAX_STATE_TEXT)) == CardState(1, 0)
    with pytest.raises(ValueError, match="too large"):
        state_from_json(core.ljust(MAX_STATE_TEXT + 1))


def test_a_card_folder_nested_too_deeply_is_a_bad_file_not_a_crash(tmp_path: Path) -> None:
    """state.json and card.json of 60000 '[': StateFileError naming the file (a one-line
    usage error in the CLI), not a RecursionError."""
    (tmp_path / "state.json").write_text("[" * 60000, encoding="utf-8")
    with pytest.raises(StateFileError, match=r"state\.json: bad card state: nested too deeply"):
        FileStateStore(tmp_path).load()
    (tmp_path / "card.json").write_text("[" * 60000, encoding="utf-8")
    with pytest.raises(StateFileError, match=r"card\.json: bad card description: nested too"):
        load_profile(tmp_path)


def test_only_ten_answers_are_kept() -> None:
    state = CardState()
    for i in range(12):
        state = state.with_answer(m.LastAnswer(bytes([i + 1]), b""))
    assert state.last_answers == tuple(m.LastAnswer(bytes([i]), b"") for i in range(3, 13))
    assert state.last_answer == m.LastAnswer(b"\x0c", b"")


def test_file_store_round_trip_and_fresh_card(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    assert store.load() == CardState()
    state = CardState(7, 1234, (m.LastAnswer(SENT, b"\x01"),))
    store.commit(state)
    assert FileStateStore(tmp_path).load() == state
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.dat"]
    assert (tmp_path / "state.dat").stat().st_mode & 0o077 == 0


def _slot(folder: Path, index: int) -> bytes:
    return (folder / STATE_FILE).read_bytes()[index * SLOT_SIZE : (index + 1) * SLOT_SIZE]


def test_commits_alternate_slots_in_a_file_that_never_changes_size(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    inode = None
    for atc in range(1, 6):
        store.commit(CardState(atc, 0))
        stat = (tmp_path / STATE_FILE).stat()
        assert stat.st_size == 2 * SLOT_SIZE
        inode = inode or stat.st_ino
        assert stat.st_ino == inode  # written in place, never replaced
        newest = decode_slot(_slot(tmp_path, (atc - 1) % 2))
        assert newest is not None and newest[0] == atc - 1
        assert FileStateStore(tmp_path).load() == CardState(atc, 0)


def test_the_slot_layout_on_disk_is_fixed(tmp_path: Path) -> None:
    """The file format (applet/store.py) is what earlier hcepay wrote and later ones read:
    two slots of 64 KiB + 1 KiB, slot `seq % 2` at byte `(seq % 2) * 66560`, each magic,
    sequence, payload length, payload, SHA-256 of all before it. Written here by hand, not
    with the module's constants, so a changed constant cannot move both sides at once."""
    state = CardState(9, 4321)
    payload = state_to_bytes(state)
    head = b"HCEPAYS2" + (3).to_bytes(8, "big") + len(payload).to_bytes(4, "big") + payload
    slot = head + hashlib.sha256(head).digest()
    (tmp_path / STATE_FILE).write_bytes(bytes(66560) + slot.ljust(66560, b"\0"))
    store = FileStateStore(tmp_path)
    assert store.load() == state
    store.commit(replace(state, atc=10))  # sequence 4: slot 0, in place
    raw = (tmp_path / STATE_FILE).read_bytes()
    assert len(raw) == 2 * 66560
    assert raw[:20] == b"HCEPAYS2" + (4).to_bytes(8, "big") + len(payload).to_bytes(4, "big")
    assert raw[66560 : 66560 + len(slot)] == slot


def test_a_payload_of_max_state_text_bytes_makes_a_slot() -> None:
    """The bound is exact: MAX_STATE_TEXT bytes of payload are written and read back (one
    more is refused: test_a_slot_claiming_more_than_max_state_text_is_not_intact)."""
    payload = bytes(range(256)) * (MAX_STATE_TEXT // 256) + bytes(MAX_STATE_TEXT % 256)
    slot = encode_slot(5, payload)
    assert len(slot) <= SLOT_SIZE
    assert decode_slot(slot.ljust(SLOT_SIZE, b"\0")) == (5, payload, 2)


@given(st.data())
def test_a_torn_commit_leaves_the_state_before_it(data: st.DataObject) -> None:
    """A write cut after any number of bytes (the rest of the slot keeps its old bytes)."""
    old = data.draw(states(), label="old")
    new = data.draw(states(), label="new")
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        store = FileStateStore(folder)
        store.commit(CardState(1, 0))  # sequence 0, slot 0
        store.commit(old)  # sequence 1, slot 1
        before = (folder / STATE_FILE).read_bytes()
        store.commit(new)  # sequence 2, slot 0
        after = (folder / STATE_FILE).read_bytes()
        written = len(encode_slot(2, state_to_bytes(new)))
        cut = data.draw(st.integers(0, written), label="cut")
        (folder / STATE_FILE).write_bytes(after[:cut] + before[cut:])
        assert FileStateStore(folder).load() == (new if cut == written else old)


def test_a_leftover_temp_file_does_not_matter(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    store.commit(CardState(3, 0))
    (tmp_path / ".state.dat.tmp").write_bytes(b"HCEPAYS1")
    assert store.load() == CardState(3, 0)
    store.commit(CardState(4, 0))
    assert store.load() == CardState(4, 0)


@pytest.mark.parametrize("content", [b"", b"{", b"\xff\xfe", b"x" * (2 * SLOT_SIZE)])
def test_a_state_file_without_an_intact_slot_is_a_typed_error(
    tmp_path: Path, content: bytes
) -> None:
    (tmp_path / STATE_FILE).write_bytes(content)
    with pytest.raises(StateFileError, match="no intact slot"):
        FileStateStore(tmp_path).load()


def test_a_slot_in_the_wrong_place_is_not_intact(tmp_path: Path) -> None:
    slot = encode_slot(1, state_to_bytes(CardState(9, 0)))  # odd sequence in slot 0
    (tmp_path / STATE_FILE).write_bytes(slot.ljust(2 * SLOT_SIZE, b"\0"))
    with pytest.raises(StateFileError, match="no intact slot"):
        FileStateStore(tmp_path).load()


def test_an_intact_slot_with_a_bad_state_is_a_typed_error(tmp_path: Path) -> None:
    slot = encode_slot(0, b"\x00\x01" + (10**12).to_bytes(8, "big") + b"\x00")
    (tmp_path / STATE_FILE).write_bytes(slot.ljust(2 * SLOT_SIZE, b"\0"))
    with pytest.raises(StateFileError, match="bad card state: used credit"):
        FileStateStore(tmp_path).load()


@given(st.binary(max_size=200) | st.binary(max_size=100).map(lambda b: SLOT_MAGIC + b))
def test_any_bytes_are_a_slot_or_none(raw: bytes) -> None:
    """A state.dat slot of any bytes is blank/torn/foreign (None) or the slot its sequence
    and payload encode, byte for byte (the SHA-256 covers all it holds)."""
    slot = decode_slot(raw)
    if slot is not None:
        sequence, payload, version = slot
        assert version == 2
        assert raw.startswith(encode_slot(sequence, payload))


@given(st.integers(0, 2**64 - 1), st.binary(max_size=2000))
def test_slot_round_trip(sequence: int, payload: bytes) -> None:
    slot = encode_slot(sequence, payload)
    assert slot.startswith(SLOT_MAGIC)
    assert decode_slot(slot + b"\0" * 7) == (sequence, payload, 2)
    assert decode_slot(slot[:-1]) is None
    flipped = bytearray(slot)
    flipped[len(slot) // 2] ^= 0x01
    assert decode_slot(bytes(flipped)) is None


def test_a_seed_state_json_starts_the_card_and_goes_at_the_first_commit(
    tmp_path: Path,
) -> None:
    (tmp_path / SEED_FILE).write_text(state_to_json(CardState(41, 500)), encoding="utf-8")
    store = FileStateStore(tmp_path)
    assert store.load() == CardState(41, 500)
    store.commit(CardState(42, 500))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.dat"]
    assert FileStateStore(tmp_path).load() == CardState(42, 500)


@pytest.mark.parametrize("content", [b"", b"{", b"\xff\xfe", b"x" * (70 * 1024)])
def test_a_damaged_seed_is_a_typed_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / SEED_FILE).write_bytes(content)
    with pytest.raises(StateFileError, match="bad card state"):
        FileStateStore(tmp_path).load()


def test_a_failed_flush_raises_and_the_next_commit_starts_from_what_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStateStore(tmp_path)
    store.commit(CardState(1, 0))
    store.commit(CardState(2, 0))

    def fail(fd: int) -> None:
        raise OSError(5, "Input/output error")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fdatasync", fail)
        with pytest.raises(OSError, match="Input/output"):
            store.commit(CardState(3, 0))
    assert FileStateStore(tmp_path).load() in (CardState(2, 0), CardState(3, 0))
    store.commit(CardState(4, 0))
    assert FileStateStore(tmp_path).load() == CardState(4, 0)
    store.commit(CardState(5, 0))
    assert FileStateStore(tmp_path).load() == CardState(5, 0)


def test_after_a_failed_flush_the_last_stored_state_survives_a_torn_commit(
    tmp_path: Path, disk: Any
) -> None:
    """A flush that fails may drop what it wrote while a read still shows it: the next
    commit writes that slot again, not the other one, which holds the last state known
    stored (ATC 2, whose answer the card has sent)."""
    store = FileStateStore(tmp_path)
    store.commit(CardState(1, 0))
    drive = disk(tmp_path / STATE_FILE)
    store.commit(CardState(2, 0))
    drive.fail_flush = 1
    with pytest.raises(OSError, match="Input/output"):
        store.commit(CardState(3, 0))
    assert store.load() == CardState(3, 0)  # in memory only
    drive.tear_next = True
    with pytest.raises(drive.Crash):
        store.commit(CardState(4, 0))
    assert FileStateStore(tmp_path).load() == CardState(2, 0)


def test_memory_store_counts_commits() -> None:
    store = MemoryStateStore(CardState(1, 2))
    store.commit(CardState(2, 2))
    assert (store.load(), store.commits) == (CardState(2, 2), 1)


def test_profile_card_serves_from_memory(profile_folder: Path) -> None:
    before = sorted(os.listdir(profile_folder))
    card = open_card(profile_folder, MemoryStateStore(CardState(atc=41)))
    card.power_on()
    assert card.process(m.get_data(0x9F36).to_bytes()) == bytes.fromhex("9F360200299000")
    assert sorted(os.listdir(profile_folder)) == before


def test_issue_card_writes_a_card_folder(tmp_path: Path, profile_folder: Path) -> None:
    from authority.keyfiles import load_private

    ca = load_private(profile_folder / "ca-01.pem", published_test_key=True)
    folder = tmp_path / "cards" / "4000123412341234"
    request = IssueRequest("4000123412341234", 50_000, "291130", "A/B", 1, 9)
    made = issue_card(folder, request, ca, generate(1024, 3))
    assert load_profile(folder) == made and made.serial == 9
    assert (folder / "app.pem").stat().st_mode & 0o077 == 0
    assert load_public(folder / "app.pub.pem").bits == 1024
    assert FileStateStore(folder).load() == CardState()
    card = open_card(folder)
    card.power_on()
    assert card.process(m.select(m.CREDIT_AID).to_bytes())[-2:] == b"\x90\x00"
    with pytest.raises(FileExistsError):
        issue_card(folder, request, ca, generate(1024, 3))


def test_a_card_folder_is_served_by_one_process_only(tmp_path: Path, profile_folder: Path) -> None:
    """Two processes serving one card would each keep their own ATC and credit (a clone):
    the second is refused, naming the first; the holding process may reopen its card."""
    import shutil
    import subprocess
    import sys

    folder = tmp_path / "card"
    shutil.copytree(profile_folder, folder)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_CARD, str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(CardInUseError, match=f"in use by another process .pid {holder.pid}"):
            open_card(folder)
    finally:
        holder.kill()
        holder.communicate()
    first = open_card(folder)  # free again once that process has ended
    again = open_card(folder)  # the same process reopens its own card
    assert first.state == again.state


HOLD_CARD = """
import sys, time
from pathlib import Path
from applet import open_card
card = open_card(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(60)
"""


def test_an_issued_card_whose_state_is_gone_is_refused_not_reset(
    tmp_path: Path, profile_folder: Path
) -> None:
    """A fresh state would reuse the card's ATCs and forget its used credit: a card folder
    with neither state.dat nor state.json is refused (a test profile still starts fresh)."""
    from authority.keyfiles import load_private

    ca = load_private(profile_folder / "ca-01.pem", published_test_key=True)
    folder = tmp_path / "cards" / "4000123412341234"
    issue_card(
        folder,
        IssueRequest("4000123412341234", 50_000, "291130", "A/B", 1, 9),
        ca,
        generate(1024, 3),
    )
    assert open_card(folder).state.card == CardState()
    (folder / STATE_FILE).unlink(missing_ok=True)
    (folder / SEED_FILE).unlink(missing_ok=True)
    with pytest.raises(StateFileError, match="state is missing"):
        open_card(folder)
    profile_copy = tmp_path / "profile"
    import shutil

    shutil.copytree(profile_folder, profile_copy)
    assert open_card(profile_copy).state.card == CardState()


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"expiry": "2612AB"}, "expiry must be YYMMDD"),
        ({"expiry": "26123"}, "expiry must be YYMMDD"),
        ({"holder": "A" * 27}, "holder must be ASCII, at most 26"),
        ({"holder": "JOS\u00c9 CARD"}, "holder must be ASCII"),
        ({"limit": 1_000_000_000_000}, "limit must fit n12"),
        ({"limit": -1}, "limit must fit n12"),
        ({"ca_index": 0}, "ca_index 1..255"),
        ({"ca_index": 256}, "ca_index 1..255"),
        ({"currency": 10000}, "currency must fit n4"),
    ],
)
def test_a_card_description_outside_the_protocol_is_refused(
    profile: CardProfile, change: dict[str, Any], why: str
) -> None:
    """card.json (PROTOCOL.md §4): expiry 5F24 is YYMMDD digits, the holder 5F20 at most 26
    ASCII characters, the limit n12, the currency n4, the key index 8F 01 to FF."""
    with pytest.raises(ValueError, match=why):
        replace(profile, **change)


_card_fields = st.fixed_dictionaries(
    {},
    optional={
        "account": st.text(alphabet="0123456789", min_size=1, max_size=19) | st.text(max_size=6),
        "expiry": st.text(alphabet="0123456789", min_size=6, max_size=6)
        | st.text(alphabet=st.characters(categories=["Nd"]), min_size=6, max_size=6)
        | st.text(min_size=6, max_size=6),
        "holder": st.text(max_size=30),
        "limit": st.integers(-1, 10**12) | st.booleans(),
        "currency": st.integers(-1, 10**4),
        "ca_index": st.integers(0, 256),
        "license": st.binary(max_size=8).map(bytes.hex) | st.text(max_size=4),
        "serial": st.integers(0, 2**24) | st.none(),
        "published_test_keys": st.booleans() | st.integers(0, 1),
    },
)


@given(_card_fields)
def test_any_card_json_is_a_card_or_value_error(
    profile: CardProfile, change: dict[str, Any]
) -> None:
    """card.json (PROTOCOL.md §4) with any of its fields changed is a card description that
    writes back to the same description and gives the card's data (5A, 5F24, 5F20, ...), or
    a ValueError. An expiry of six digits other than ASCII (isdigit takes "١٢٣٤٥٦") was
    read, and the card's data raised on it (bytes.fromhex) when the card was opened."""
    obj = {**json.loads(profile.to_json()), **change}
    try:
        read = profile_from_json(json.dumps(obj))
    except ValueError:
        return
    assert profile_from_json(read.to_json()) == read
    data = read.card_data()
    assert data.account == read.account_5a and len(data.expiry) == 3


def test_a_card_description_at_its_bounds_is_kept(profile: CardProfile) -> None:
    """The largest values PROTOCOL.md §4 allows are taken (and read back from card.json)."""
    edge = replace(profile, holder="A" * 26, limit=999_999_999_999, ca_index=0xFF, currency=9999)
    assert profile_from_json(edge.to_json()) == edge
    assert replace(profile, ca_index=1).ca_index == 1


def test_an_odd_account_is_padded_with_f(profile: CardProfile) -> None:
    """5A is cn (PROTOCOL.md §1, §4): an odd number of digits is padded with one F nibble."""
    assert replace(profile, account="620012345678901").account_5a == bytes.fromhex(
        "620012345678901F"
    )
    assert replace(profile, account="6200123456789012").account_5a == bytes.fromhex(
        "6200123456789012"
    )


@pytest.mark.parametrize("key", ["limit", "currency", "ca_index", "serial"])
def test_a_card_description_with_true_for_a_number_is_refused(
    profile: CardProfile, key: str
) -> None:
    """JSON true is not the number 1 in card.json (bool is an int in Python)."""
    obj = json.loads(profile.to_json())
    obj[key] = True
    with pytest.raises(ValueError, match=f"'{key}' must be int"):
        profile_from_json(json.dumps(obj))


CARD_FIELDS = {
    "account": "str",
    "expiry": "str",
    "holder": "str",
    "limit": "int",
    "currency": "int",
    "ca_index": "int",
    "license": "str",
    "remainder": "str",
    "exponent": "str",
    "serial": "int",
}


@pytest.mark.parametrize(("key", "kind"), CARD_FIELDS.items())
def test_a_missing_field_of_card_json_is_named_as_missing(
    profile: CardProfile, key: str, kind: str, tmp_path: Path
) -> None:
    """A card.json without 'account' said "'account' must be str", as if it held another
    type: each field is said to be missing; a field of another type keeps its message."""
    obj = json.loads(profile.to_json())
    del obj[key]
    (tmp_path / "card.json").write_text(json.dumps(obj), encoding="utf-8")
    with pytest.raises(StateFileError) as caught:
        load_profile(tmp_path)
    assert str(caught.value).endswith(f"card.json: bad card description: missing field '{key}'")
    obj[key] = None  # there, but null: not missing
    with pytest.raises(ValueError, match=f"^'{key}' must be {kind}$"):
        profile_from_json(json.dumps(obj))


@pytest.mark.parametrize("value", [1, "true", "yes", [True]])
def test_only_json_true_marks_published_test_keys(profile: CardProfile, value: object) -> None:
    """`"published_test_keys": true` waives the 0600 check of app.pem and the state check
    (docs/architecture.md): nothing but JSON true does, not a truthy 1 or "yes"."""
    obj = json.loads(profile.to_json())
    obj["published_test_keys"] = value
    assert profile_from_json(json.dumps(obj)).published_test_keys is False
    obj["published_test_keys"] = True
    assert profile_from_json(json.dumps(obj)).published_test_keys is True


def test_card_json_bound_is_exact(tmp_path: Path, profile: CardProfile) -> None:
    """card.json is read up to 64 KiB (a bound, docs/architecture.md): a file of exactly that
    many bytes is read, one byte more is refused whatever it holds."""
    from applet.profile import MAX_CARD_TEXT

    text = profile.to_json()
    (tmp_path / "card.json").write_text(text.ljust(MAX_CARD_TEXT), encoding="utf-8")
    assert load_profile(tmp_path) == profile
    (tmp_path / "card.json").write_text(text.ljust(MAX_CARD_TEXT + 1), encoding="utf-8")
    with pytest.raises(StateFileError, match="bad card description: too large"):
        load_profile(tmp_path)


@pytest.mark.parametrize("version", [None, 2, "1", True, 1.0])
def test_a_card_description_of_another_version_is_refused(
    profile: CardProfile, version: object
) -> None:
    """card.json names its format (`hcepay_card` 1, the integer): without it, or of another
    version, or 1 as true or 1.0, it is not read as this one."""
    obj = json.loads(profile.to_json())
    if version is None:
        del obj["hcepay_card"]
    else:
        obj["hcepay_card"] = version
    with pytest.raises(ValueError, match="not an hcepay card"):
        profile_from_json(json.dumps(obj))


def test_open_card_refuses_a_bad_folder(tmp_path: Path, profile: CardProfile) -> None:
    with pytest.raises(StateFileError, match="no such file"):
        open_card(tmp_path)
    obj = json.loads(profile.to_json())
    obj["limit"] = "lots"
    (tmp_path / "card.json").write_text(json.dumps(obj), encoding="utf-8")
    with pytest.raises(StateFileError, match="'limit' must be int"):
        open_card(tmp_path)
    obj["limit"] = 5
    (tmp_path / "card.json").write_text(json.dumps(obj), encoding="utf-8")
    with pytest.raises(StateFileError, match=r"app\.pem"):
        open_card(tmp_path)


def _version_1_slot(sequence: int, state: CardState) -> bytes:
    """A slot as hcepay wrote it before answers were kept as inputs: magic HCEPAYS1, and
    each answer as length | answer | length | CDOL1 data, with no kind byte."""
    payload = bytearray(state.atc.to_bytes(2, "big") + state.used.to_bytes(8, "big"))
    payload.append(len(state.last_answers))
    for a in state.last_answers:
        assert isinstance(a, m.LastAnswer)
        for part in (a.answer, a.cdol1_data):
            payload += len(part).to_bytes(2, "big") + part
    head = b"HCEPAYS1" + sequence.to_bytes(8, "big") + len(payload).to_bytes(4, "big")
    head += payload
    return head + hashlib.sha256(head).digest()


@given(st.lists(as_sent, max_size=10).map(tuple))
def test_a_version_1_state_dat_still_loads(last: tuple[m.LastAnswer, ...]) -> None:
    state = CardState(7, 1234, last)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder)
        (path / STATE_FILE).write_bytes(_version_1_slot(4, state).ljust(2 * SLOT_SIZE, b"\0"))
        store = FileStateStore(path)
        assert store.load() == state
        store.commit(replace(state, atc=8))  # the next slot is written as version 2
        assert FileStateStore(path).load() == replace(state, atc=8)
        assert _slot(path, 1).startswith(SLOT_MAGIC)


def test_an_unknown_answer_kind_is_refused() -> None:
    raw = state_to_bytes(CardState(1, 0, (AnswerInputs(0x40, 1, bytes(CDOL1_DATA_LENGTH)),)))
    with pytest.raises(ValueError, match="unknown kind 7"):
        state_from_bytes(raw[:11] + b"\x07" + raw[12:])
    with pytest.raises(ValueError, match="version 3 unknown"):
        state_from_bytes(raw, 3)


@pytest.mark.parametrize("version", [0, 3, 255])
def test_a_binary_state_of_an_unknown_version_is_refused(version: int) -> None:
    """state.dat's slots are of version 1 (answers as sent) or 2 (a kind byte per answer);
    any other version is refused, never read as one of them."""
    raw = state_to_bytes(CardState(1, 0))
    with pytest.raises(ValueError, match=f"version {version} unknown"):
        state_from_bytes(raw, version)


def test_state_dat_removed_between_commits_is_an_error_not_a_write_into_the_void(
    tmp_path: Path,
) -> None:
    store = FileStateStore(tmp_path)
    store.commit(CardState(1, 0))
    store.commit(CardState(2, 0))
    (tmp_path / STATE_FILE).unlink()
    with pytest.raises(FileNotFoundError):
        store.commit(CardState(3, 0))


def test_state_dat_replaced_between_commits_is_written_afresh(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    store.commit(CardState(1, 0))
    store.commit(CardState(2, 0))
    other = tmp_path / "other"
    other.mkdir()
    FileStateStore(other).commit(CardState(40, 0))
    FileStateStore(other).commit(CardState(41, 0))
    os.replace(other / STATE_FILE, tmp_path / STATE_FILE)  # sequence 1 in the new file
    store.commit(CardState(42, 0))
    assert FileStateStore(tmp_path).load() == CardState(42, 0)


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        ({"cid": 0x12, "atc": 1, "cdol1_data": "00" * CDOL1_DATA_LENGTH}, "not 00 or 40"),
        ({"cid": 0x40, "atc": 9, "cdol1_data": "00" * CDOL1_DATA_LENGTH}, "above the card"),
        ({"cid": 0x40, "atc": 1, "cdol1_data": "0000"}, "CDOL1 data of 2 bytes"),
    ],
)
def test_a_seed_with_answer_inputs_the_card_never_made_is_refused(
    tmp_path: Path, inputs: dict[str, object], reason: str
) -> None:
    seed = {"hcepay_state": 1, "atc": 5, "used": 0, "last_answers": [inputs]}
    (tmp_path / SEED_FILE).write_text(json.dumps(seed), encoding="utf-8")
    with pytest.raises(StateFileError, match=reason):
        FileStateStore(tmp_path).load()


def test_the_first_commit_over_a_version_1_file_leaves_no_version_1_slot(tmp_path: Path) -> None:
    state = CardState(7, 1234, (m.LastAnswer(SENT, b"\x01"),))
    (tmp_path / STATE_FILE).write_bytes(_version_1_slot(4, state).ljust(2 * SLOT_SIZE, b"\0"))
    store = FileStateStore(tmp_path)
    store.load()
    store.commit(replace(state, atc=8))
    assert _slot(tmp_path, 0).startswith(SLOT_MAGIC) and _slot(tmp_path, 1).startswith(SLOT_MAGIC)
    assert FileStateStore(tmp_path).load() == replace(state, atc=8)


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_does_not_serve_its_parents_card(
    tmp_path: Path, profile_folder: Path
) -> None:
    import shutil

    folder = tmp_path / "card"
    shutil.copytree(profile_folder, folder)
    open_card(folder)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: refused, like any other process
        try:
            open_card(folder)
            os.write(write, b"served")
        except CardInUseError:
            os.write(write, b"refused")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 16) == b"refused"
    os.close(read)


def _settle_writes(folder: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bytes]]:
    """(offset, bytes) of each write FileStateStore.settle makes on `folder`."""
    import applet.store
    from authority.home import write_all

    writes: list[tuple[int, bytes]] = []
    real = write_all

    def spy(fd: int, data: bytes, offset: int) -> None:
        writes.append((offset, data))
        real(fd, data, offset)

    monkeypatch.setattr(applet.store, "write_all", spy)
    FileStateStore(folder).settle()
    return writes


def test_settle_flushes_the_slot_and_then_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """settle() makes what the card answers from durable: the slot written again is
    fdatasync'd, then the folder is fsync'd (state.dat's name may not be stored either)."""
    import applet.store

    FileStateStore(tmp_path).commit(CardState(1, 0))
    synced: list[object] = []
    real_flush = os.fdatasync

    def flush(fd: int) -> None:
        synced.append("slot")
        real_flush(fd)

    monkeypatch.setattr(os, "fdatasync", flush)
    monkeypatch.setattr(applet.store, "fsync_folder", synced.append)
    FileStateStore(tmp_path).settle()
    assert synced == ["slot", tmp_path]


def test_settle_over_a_torn_newest_slot_writes_the_intact_one_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill tore sequence 2's slot: the state answered from is sequence 1's, so that is
    the slot stored again, and the torn one is left for the next commit."""
    store = FileStateStore(tmp_path)
    for atc in (1, 2, 3):
        store.commit(CardState(atc, 0))  # sequences 0, 1, 2
    raw = bytearray((tmp_path / STATE_FILE).read_bytes())
    raw[25] ^= 0xFF  # slot 0 (sequence 2) fails its check
    (tmp_path / STATE_FILE).write_bytes(raw)
    assert _settle_writes(tmp_path, monkeypatch) == [(SLOT_SIZE, bytes(raw[SLOT_SIZE:]))]
    assert (tmp_path / STATE_FILE).read_bytes() == raw
    assert FileStateStore(tmp_path).load() == CardState(2, 0)


@pytest.mark.parametrize(("commits", "newest"), [(2, 1), (3, 0)])
def test_settle_over_two_intact_slots_writes_the_newest_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, commits: int, newest: int
) -> None:
    """Both slots intact: the newest (the state the card answers from, whose flush may have
    failed in an earlier process) is the one written again and flushed, not the older."""
    store = FileStateStore(tmp_path)
    for atc in range(1, commits + 1):
        store.commit(CardState(atc, 0))  # sequences 0 .. commits - 1
    raw = (tmp_path / STATE_FILE).read_bytes()
    start = newest * SLOT_SIZE
    assert _settle_writes(tmp_path, monkeypatch) == [(start, raw[start : start + SLOT_SIZE])]
    assert (tmp_path / STATE_FILE).read_bytes() == raw
    assert FileStateStore(tmp_path).load() == CardState(commits, 0)


def test_settle_over_a_version_1_file_keeps_it_version_1_until_a_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = CardState(7, 1234, (m.LastAnswer(SENT, b"\x01"),))
    raw = _version_1_slot(4, state).ljust(2 * SLOT_SIZE, b"\0")
    (tmp_path / STATE_FILE).write_bytes(raw)
    assert _settle_writes(tmp_path, monkeypatch) == [(0, raw[:SLOT_SIZE])]
    assert (tmp_path / STATE_FILE).read_bytes() == raw
    store = FileStateStore(tmp_path)
    assert store.load() == state
    store.commit(replace(state, atc=8))
    assert _slot(tmp_path, 0).startswith(SLOT_MAGIC) and _slot(tmp_path, 1).startswith(SLOT_MAGIC)


def test_settle_over_a_file_with_no_intact_slot_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / STATE_FILE).write_bytes(bytes(2 * SLOT_SIZE))
    assert _settle_writes(tmp_path, monkeypatch) == []
    with pytest.raises(StateFileError, match="no intact slot"):
        FileStateStore(tmp_path).load()


def test_a_slot_claiming_more_than_max_state_text_is_not_intact() -> None:
    """A slot's payload is at most MAX_STATE_TEXT bytes (what `encode_slot` writes): one
    that claims more is not a slot, even with a digest that matches (a foreign or forged
    file), although it would fit the slot's room."""
    payload = bytes(MAX_STATE_TEXT + 1)
    head = struct.pack(">8sQI", SLOT_MAGIC, 1, len(payload)) + payload
    slot = head + hashlib.sha256(head).digest()
    assert len(slot) <= SLOT_SIZE
    assert decode_slot(slot) is None
    with pytest.raises(ValueError, match="exceeds"):
        encode_slot(1, payload)


def test_only_the_first_commit_over_a_version_1_file_writes_both_slots(tmp_path: Path) -> None:
    """Retiring the version 1 slot costs one more write, at the first commit only: the
    commits after it write one slot each, the sequence going up by one."""
    state = CardState(7, 1234, (m.LastAnswer(SENT, b"\x01"),))
    (tmp_path / STATE_FILE).write_bytes(_version_1_slot(4, state).ljust(2 * SLOT_SIZE, b"\0"))
    store = FileStateStore(tmp_path)
    store.load()
    store.commit(replace(state, atc=8))  # sequences 5 and 6
    sequences = [decode_slot(_slot(tmp_path, i)) for i in (0, 1)]
    assert sorted(s[0] for s in sequences if s is not None) == [5, 6]
    store.commit(replace(state, atc=9))  # sequence 7 only, over 5
    sequences = [decode_slot(_slot(tmp_path, i)) for i in (0, 1)]
    assert sorted(s[0] for s in sequences if s is not None) == [6, 7]
    assert FileStateStore(tmp_path).load() == replace(state, atc=9)
