"""The vector model of PROTOCOL.md §8: loading, `..` masks, first differences, the table."""

from __future__ import annotations

import errno
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from reader import cli_vectors
from reader import vectors as vx
from reader.transport import TransportError

SAMPLE: dict[str, Any] = {
    "hcepay_vector": 1,
    "name": "approve-basic",
    "description": "one approved payment of 12.34 CNY",
    "card": {"profile": "test-card-1", "atc": 0, "used": "000000000000"},
    "terminal": {"unpredictable_number": "1A2B3C4D", "date": "261128", "time": "120000"},
    "steps": [
        {"c": "00A404000E325041592E5359532E444446303100", "r": "6F..9000"},
        {"c": "80A8000002830000", "r": "770A9000", "note": "credit payment request"},
    ],
}


def test_the_protocol_example_loads() -> None:
    vector = vx.vector_from_json(SAMPLE)
    assert vector.name == "approve-basic"
    assert vector.side is vx.Side.CARD
    assert vector.card == vx.CardStart("test-card-1", 0, 0)
    assert vector.terminal is not None
    assert vector.terminal.unpredictable_number == bytes.fromhex("1A2B3C4D")
    assert vector.steps[0].response.known == (True, False, True, True)
    assert vector.steps[1].note == "credit payment request"


def test_dumps_then_loads_is_identity() -> None:
    vector = vx.vector_from_json(SAMPLE)
    assert vx.loads(vx.dumps(vector)) == vector
    assert json.loads(vx.dumps(vector))["steps"][0]["r"] == "6F..9000"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v: v.update(hcepay_vector=2), "'hcepay_vector' must be 1"),
        (lambda v: v.pop("name"), "missing 'name'"),
        (lambda v: v.update(steps=[]), "'steps' is empty"),
        (lambda v: v["steps"][1].update(c="80A8ZZ"), "steps[1].c: 'ZZ' is not a hex byte (byte 2)"),
        (lambda v: v["steps"][0].update(c="00A4..00"), "'..' is not allowed here"),
        (lambda v: v["steps"][0].update(r="900"), "odd number of hex digits"),
        (lambda v: v["steps"][0].update(r="90"), "at least its 2-byte status word"),
        (lambda v: v["card"].update(atc=70000), "atc 70000 out of 0..65535"),
        (lambda v: v["card"].update(atc=65536), "atc 65536 out of 0..65535"),
        (lambda v: v["card"].update(used="12"), "expected 12 decimal digits"),
        (lambda v: v["terminal"].update(date="2611"), "expected 6 decimal digits"),
        (lambda v: v["terminal"].update(unpredictable_number="1A2B3C"), "must be 4 bytes"),
        (lambda v: v["terminal"].update(unpredictable_number="1A2B3C4D5E"), "must be 4 bytes"),
        (lambda v: v["terminal"].update(currency=1000), "currency 1000 out of n3"),
        (lambda v: v["terminal"].update(amount=10**12), "out of n12"),
        (lambda v: v.update(expect={"verdict": "maybe"}), "verdict 'maybe' is not one of"),
        (lambda v: v.update(expect={"verdict": "refused"}), "responses cannot hold '..'"),
        (lambda v: v["card"].update(profile="../etc"), "bad profile name"),
        (lambda v: v.update(hcepay_vector=True), "'hcepay_vector' must be 1, got True"),
        (lambda v: v.update(hcepay_vector=1.0), "'hcepay_vector' must be 1, got 1.0"),
        (lambda v: v.update(steps=v["steps"][:1] * 257), "more than 256 steps"),
        (lambda v: v["steps"][0].update(c="00" * 65545), "longer than 65544 bytes"),
        (lambda v: v["steps"][0].update(r="00" * 65545), "longer than 65544 bytes"),
    ],
)
def test_bad_vectors_say_what_and_where(change: Any, message: str) -> None:
    obj = json.loads(json.dumps(SAMPLE))
    change(obj)
    with pytest.raises(vx.VectorError) as info:
        vx.vector_from_json(obj)
    assert message in str(info.value)


def test_load_reports_bad_json_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  nope", encoding="utf-8")
    with pytest.raises(vx.VectorError, match=r"bad.json: not JSON: .* line 2"):
        vx.load(bad)
    with pytest.raises(vx.VectorError, match=r"absent\.json"):
        vx.load(tmp_path / "absent.json")


def test_collect_skips_profiles(tmp_path: Path) -> None:
    (tmp_path / "profiles" / "p").mkdir(parents=True)
    (tmp_path / "profiles" / "p" / "card.json").write_text("{}", encoding="utf-8")
    (tmp_path / "card").mkdir()
    (tmp_path / "card" / "b.json").write_text("{}", encoding="utf-8")
    (tmp_path / "card" / "a.json").write_text("{}", encoding="utf-8")
    assert [p.name for p in vx.collect([tmp_path])] == ["a.json", "b.json"]


def test_masked_bytes_match_anything_and_others_are_compared() -> None:
    pattern = vx.Pattern.parse("6F..9000")
    assert vx.compare_response(0, pattern, bytes.fromhex("6F009000")) is None
    assert vx.compare_response(0, pattern, bytes.fromhex("6FFF9000")) is None
    difference = vx.compare_response(3, pattern, bytes.fromhex("6F116A83"))
    assert difference is not None
    assert (difference.step, difference.offset, difference.positions) == (3, 2, (2, 3))
    assert difference.expected == "6F..9000" and difference.got == "6F116A83"
    assert difference.describe() == (
        "response differs at step 4, byte 2: expected 6F..9000, got 6F116A83"
    )


def test_a_length_difference_points_past_the_shorter() -> None:
    pattern = vx.Pattern.parse("01029000")
    short = vx.compare_response(0, pattern, bytes.fromhex("9000"))
    assert short is not None and short.offset == 0
    longer = vx.compare_response(0, pattern, bytes.fromhex("0102900000"))
    assert longer is not None and longer.positions == (4,)


def test_a_vector_at_its_bounds_loads() -> None:
    """256 steps, and an APDU of 65544 bytes (extended case 4: 4 + 3 + 65535 + 2), are
    within the bounds of a vector (reader/vectors.py MAX_STEPS, MAX_APDU_BYTES)."""
    obj = json.loads(json.dumps(SAMPLE))
    obj["steps"] = obj["steps"][:1] * 255 + [{"c": "00" * 65544, "r": "9000"}]
    vector = vx.vector_from_json(obj)
    assert len(vector.steps) == 256 and len(vector.steps[-1].command) == 65544


@given(st.binary(min_size=3, max_size=300), st.data())
def test_a_response_cut_short_or_run_on_always_differs(
    expected: bytes, data: st.DataObject
) -> None:
    """PROTOCOL.md §8: a response matches its pattern only at its length; bytes missing
    (a card that stopped short) or added are a difference at the first byte past the
    shorter, whatever the bytes before it and however many are masked."""
    known = tuple(
        data.draw(st.lists(st.booleans(), min_size=len(expected), max_size=len(expected)))
    )
    pattern = vx.Pattern(bytes(b if k else 0 for b, k in zip(expected, known, strict=True)), known)
    cut = data.draw(st.integers(0, len(expected) - 1))
    short = vx.compare_response(0, pattern, expected[:cut])
    assert short is not None and short.positions == tuple(range(cut, len(expected)))
    extra = data.draw(st.binary(min_size=1, max_size=8))
    longer = vx.compare_response(0, pattern, expected + extra)
    assert longer is not None and longer.positions == tuple(
        range(len(expected), len(expected) + len(extra))
    )


@given(st.binary(min_size=2, max_size=300), st.data())
def test_flipping_any_known_byte_is_found_where_it_is(expected: bytes, data: st.DataObject) -> None:
    offset = data.draw(st.integers(0, len(expected) - 1))
    flip = data.draw(st.integers(1, 255))
    got = bytearray(expected)
    got[offset] ^= flip
    difference = vx.compare_response(0, vx.Pattern.exact(expected), bytes(got))
    assert difference is not None
    assert difference.offset == offset and difference.positions == (offset,)


@given(st.binary(min_size=2, max_size=64), st.data())
def test_pattern_text_round_trips(raw: bytes, data: st.DataObject) -> None:
    known = tuple(data.draw(st.lists(st.booleans(), min_size=len(raw), max_size=len(raw))))
    pattern = vx.Pattern(bytes(b if k else 0 for b, k in zip(raw, known, strict=True)), known)
    assert vx.Pattern.parse(pattern.to_hex()) == pattern


@given(st.text(alphabet="0123456789abcdefABCDEF. \n+-g٣", max_size=40))
def test_any_pattern_text_is_a_pattern_or_a_vector_error(text: str) -> None:
    """A response pattern (PROTOCOL.md §8: hex bytes, `..` unknown) of any text is a pattern
    written back as the same bytes in upper case without blanks, or a VectorError."""
    try:
        pattern = vx.Pattern.parse(text)
    except vx.VectorError as exc:
        assert exc.reason
        return
    assert pattern.to_hex() == "".join(text.split()).upper()
    assert vx.Pattern.parse(pattern.to_hex()) == pattern


def test_the_table_marks_the_differing_bytes() -> None:
    difference = vx.compare_response(1, vx.Pattern.parse("770A9000"), bytes.fromhex("770B9000"))
    assert difference is not None
    result = vx.ReplayResult("approve-basic", vx.Side.CARD, 2, 1, difference)
    console = Console(record=True, width=200, color_system="truecolor")
    console.print(cli_vectors.results_table([result]))
    text = console.export_text()
    assert "approve-basic" in text and "FAIL" in text and "1/2" in text
    assert "step 2, byte 1" in text
    cell = cli_vectors.difference_cell(difference)
    red = [cell.plain[s.start : s.end] for s in cell.spans if "red" in str(s.style)]
    assert red == ["0A", "0B"]


def test_the_differing_bytes_are_marked_with_carets_where_no_colour_shows() -> None:
    """Piped or in a file, the bold red is gone and the marks with it: docs/conformance.md
    said the differing bytes were marked. A `^^` line under "got" marks them there."""
    difference = vx.compare_response(1, vx.Pattern.parse("770A9000"), bytes.fromhex("770B9000"))
    assert difference is not None
    lines = cli_vectors.difference_cell(difference, caret_line=True).plain.splitlines()
    assert lines[-2:] == ["got      770B9000", "           ^^"]
    assert "^" not in cli_vectors.difference_cell(difference, caret_line=False).plain
    assert cli_vectors.carets(100, [50], 50) == " " + "  " * cli_vectors.CONTEXT_BYTES + "^^"


def test_a_long_response_shows_a_window_around_the_difference() -> None:
    text = cli_vectors.marked("00" * 100, [50], around=50)
    assert text.plain.startswith("…") and text.plain.endswith("…")
    assert len(text.plain) == 2 + 2 * (2 * cli_vectors.CONTEXT_BYTES + 1)


def test_describe_shows_8_bytes_either_side_of_a_difference() -> None:
    """A one-line difference of a long response shows the bytes around the first
    difference: 8 either side (DESCRIBE_WINDOW), an ellipsis where bytes are left out;
    a response of 17 bytes or fewer is shown whole."""
    expected = bytes(range(40))
    got = bytearray(expected)
    got[20] = 0xFF
    difference = vx.compare_response(0, vx.Pattern.exact(expected), bytes(got))
    assert difference is not None
    assert difference.describe() == (
        "response differs at step 1, byte 20: "
        f"expected …{bytes(range(12, 29)).hex().upper()}…, "
        f"got …{bytes(got[12:29]).hex().upper()}…"
    )
    short = vx.compare_response(0, vx.Pattern.exact(expected[:17]), bytes(got[:17]))
    assert short is None
    whole = vx.compare_response(0, vx.Pattern.exact(expected[:17]), bytes(16) + b"\x01")
    assert whole is not None and f"expected {expected[:17].hex().upper()}," in whole.describe()


def test_too_many_logged_rows_are_refused() -> None:
    """The terminal's `logged` and `pending` lists are bounded like the steps (256): a
    longer one is refused, not cut short."""
    obj = json.loads(json.dumps(SAMPLE))
    obj["terminal"]["logged"] = [{"account": "6200123456789012", "atc": n} for n in range(257)]
    with pytest.raises(vx.VectorError, match="too many rows"):
        vx.vector_from_json(obj)
    obj["terminal"]["logged"] = obj["terminal"]["logged"][:256]
    assert vx.vector_from_json(obj).terminal is not None


def test_a_scripted_card_answers_nothing_after_a_departure() -> None:
    """Terminal-side replay (PROTOCOL.md §8): once the terminal sent another command than
    the vector's, the scripted card has left the exchange: even the expected command gets
    no answer, and the first departure is the one reported."""
    vector = vx.vector_from_json(SAMPLE)
    card = vx.ScriptedCard(vector.steps)
    with pytest.raises(TransportError, match="another command"):
        card.transmit(bytes.fromhex("00A4040000"))
    with pytest.raises(TransportError, match="left the exchange"):
        card.transmit(vector.steps[0].command)
    difference = card.finish()
    assert difference is not None and difference.problem is vx.Problem.COMMAND
    assert card.index == 0


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["hcepay_vector", "name", "steps", "c", "r", "card", "terminal", "x"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@given(JSON)
def test_any_json_is_a_vector_or_a_vector_error(obj: Any) -> None:
    try:
        vx.vector_from_json(obj)
    except vx.VectorError as exc:
        assert exc.reason


@given(st.data())
def test_mutated_sample_fields_are_a_vector_or_a_vector_error(data: st.DataObject) -> None:
    obj = json.loads(json.dumps(SAMPLE))
    section = data.draw(st.sampled_from(["card", "terminal", "steps"]))
    target = obj["steps"][data.draw(st.integers(0, 1))] if section == "steps" else obj[section]
    key = data.draw(st.sampled_from(sorted(target)))
    target[key] = data.draw(JSON)
    try:
        vector = vx.vector_from_json(obj)
    except vx.VectorError as exc:
        assert exc.reason
    else:
        assert vx.loads(vx.dumps(vector)) == vector


def test_a_vector_is_saved_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails (a full disk) leaves the vector it was to replace as it was, and
    no temporary file; `vectors record --out` over an old vector wrote it in place."""
    vector = vx.vector_from_json(SAMPLE)
    path = tmp_path / "v.json"
    vx.save(path, vector)
    before = path.read_bytes()

    def full(fd: int, data: bytes, offset: int | None = None) -> None:
        os.write(fd, data[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("authority.home.write_all", full)
    with pytest.raises(OSError, match="No space"):
        vx.save(path, replace(vector, name="other"))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.json"]
