"""`hcepay demo --trace`: the trace is PROTOCOL.md §8 JSON, and an independent check (plain
`cryptography` + `pow`, none of the reader's code) recovers the license and the
authorization from it with the authority's public key."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from typer.testing import CliRunner

from reader.cli import app
from reader.trace import check_output_path, note_for


def _tlvs(data: bytes) -> dict[int, bytes]:
    """A minimal BER-TLV reader, independent of apdu/: every tag at any depth -> value."""
    out: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag & 0x1F == 0x1F:
            tag = tag << 8 | data[i]
            i += 1
        length = data[i]
        i += 1
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[i : i + n], "big")
            i += n
        value = data[i : i + length]
        i += length
        out[tag] = value
        if (tag >> 8 if tag > 0xFF else tag) & 0x20:
            out.update(_tlvs(value))
    return out


def _responses(steps: list[dict[str, str]]) -> list[tuple[bytes, bytes]]:
    """(command, whole response data) pairs with GET RESPONSE parts joined."""
    out: list[tuple[bytes, bytes]] = []
    pending = b""
    for step in steps:
        c, r = bytes.fromhex(step["c"]), bytes.fromhex(step["r"])
        if c[1] == 0xC0:
            command = out.pop()[0]
        else:
            command, pending = c, b""
        pending += r[:-2]
        out.append((command, pending))
        if r[-2] != 0x61:
            assert r[-2:] == b"\x90\x00"
    return out


def test_trace_recovers_license_and_authorization(tmp_path: Path, profile: Path) -> None:
    trace = tmp_path / "demo.json"
    result = CliRunner().invoke(app, ["demo", "--amount", "12.34", "--trace", str(trace)])
    assert result.exit_code == 0, result.output
    for n in range(1, 7):
        assert f"\n{n} " in "\n" + result.output
    doc = json.loads(trace.read_text())
    assert doc["hcepay_vector"] == 1 and doc["name"] and "description" in doc
    assert all(s["c"] == s["c"].upper() and s["r"] == s["r"].upper() for s in doc["steps"])
    by_ins: dict[tuple[int, int], bytes] = {}
    for command, data in _responses(doc["steps"]):
        by_ins[(command[1], command[2])] = data

    ca = load_pem_public_key((profile / "ca-01.pub.pem").read_bytes())
    assert isinstance(ca, RSAPublicKey)
    n_ca, e_ca = ca.public_numbers().n, ca.public_numbers().e
    size = (n_ca.bit_length() + 7) // 8
    rec1, rec2, rec3 = (by_ins[(0xB2, r)] for r in (1, 2, 3))
    license_ = _tlvs(rec2)[0x9F46]
    r3 = _tlvs(rec3)
    exponent, remainder = r3[0x9F47], r3.get(0x9F48, b"")
    x = pow(int.from_bytes(license_, "big"), e_ca, n_ca).to_bytes(size, "big")
    assert x[0] == 0x6A and x[1] == 0x04 and x[-1] == 0xBC and x[17] == 0x02
    record1_value = _tlvs(rec1)  # its 70's value is what the hash covers
    inner = rec1[2:] if rec1[1] < 0x80 else rec1[2 + (rec1[1] & 0x7F) :]
    body = x[1 : size - 33]
    assert hashlib.sha256(body + remainder + exponent + inner).digest() == x[size - 33 : -1]
    assert x[2:12].hex().upper().rstrip("F") == record1_value[0x5A].hex().upper().rstrip("F")
    app_size = x[19]
    modulus = (x[21 : size - 33] + remainder)[:app_size]
    n_app, e_app = int.from_bytes(modulus, "big"), int.from_bytes(exponent, "big")

    gac = _tlvs(by_ins[(0xAE, 0x50)])
    cdol1_data = next(bytes.fromhex(s["c"])[5:-1] for s in doc["steps"] if s["c"][2:4] == "AE")
    y = pow(int.from_bytes(gac[0x9F4B], "big"), e_app, n_app).to_bytes(app_size, "big")
    assert y[0] == 0x6A and y[1] == 0x05 and y[-1] == 0xBC and y[3] == 25
    assert hashlib.sha256(y[1 : app_size - 33] + cdol1_data).digest() == y[app_size - 33 : -1]
    dynamic = y[4:29]
    assert dynamic[0:2] == gac[0x9F36] and dynamic[2] == gac[0x9F27][0] == 0x40
    assert dynamic[3:9] == bytes.fromhex("000000001234") and dynamic[9:11] == b"\x01\x56"
    assert dynamic[11:15].hex().upper() == doc["terminal"]["unpredictable_number"]


def test_trace_loads_as_a_vector(tmp_path: Path) -> None:
    from reader import vectors

    trace = tmp_path / "t.json"
    result = CliRunner().invoke(app, ["demo", "--json", "--trace", str(trace)])
    assert result.exit_code == 0, result.output
    vector = vectors.load(trace)
    assert vector.card is not None and vector.card.profile == "test-card-1"
    assert vector.terminal is not None and vector.terminal.amount == 1234
    assert [s.note for s in vector.steps][:3] == [
        "SELECT PPSE (discovery)",
        "SELECT AID",
        "1 credit payment request (GET PROCESSING OPTIONS)",
    ]
    assert json.loads(result.stdout)["verdict"] == "approved"


@pytest.mark.parametrize("command", [["demo"], ["pay", "--amount", "1.00"]], ids=" ".join)
def test_a_trace_written_is_said_on_stderr(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """demo and pay wrote the trace without a word (vectors record says `wrote FILE`); it is
    said on stderr, so that --json's stdout stays one JSON object."""
    from reader.cli_pay import make_demo_home

    make_demo_home(tmp_path / "home")
    monkeypatch.setenv("HCEPAY_HOME", str(tmp_path / "home"))
    trace = tmp_path / "t.json"
    result = CliRunner().invoke(app, [*command, "--json", "--trace", str(trace)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["verdict"] == "approved"
    assert result.stderr == f"trace written to {trace}\n"
    assert json.loads(trace.read_text())["steps"]


@pytest.mark.parametrize(
    ("command", "note"),
    [
        ("00B2010C", "2 payment response (READ RECORD 1)"),  # case 1: no Le, 4 bytes
        ("00B2020C00", "2 payment response (READ RECORD 2)"),  # P1 is the record
        ("00B2030C00", "2 payment response (READ RECORD 3)"),
        ("00A404000E325041592E5359532E444446303100", "SELECT PPSE (discovery)"),
        ("00A4040009F0484345504159000100", "SELECT AID"),
        ("00A4040002AABB00", "SELECT"),
        ("00C0000010", "GET RESPONSE"),
        ("80CA9F3600", "GET DATA"),
        ("00A404", ""),  # shorter than a header
        ("00840000", ""),  # not one of the protocol's commands
    ],
)
def test_each_command_gets_the_note_of_its_step(command: str, note: str) -> None:
    """A trace names the step of the credit payment each command carries (PROTOCOL.md §3,
    §8): READ RECORD with its record number (P1), SELECT by what it selects."""
    assert note_for(bytes.fromhex(command)) == note


def test_a_trace_needs_a_folder_it_can_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before a payment, the trace's folder is checked for writing (W_OK): a trace that
    cannot be written must stop the payment before it is made. Checked with a stand-in
    for os.access, since root may write anywhere."""

    monkeypatch.setattr(os, "access", lambda path, mode: not mode & os.W_OK)
    with pytest.raises(PermissionError, match="folder not writable"):
        check_output_path(tmp_path / "trace.json")


def test_a_relative_trace_in_a_removed_current_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from a folder that was removed, `pay --trace t.json` resolved the path after
    the checks and raised FileNotFoundError (internal error, exit 70); `demo` wrote the
    trace into the removed folder, lost. Both refuse it before paying, exit 2."""
    from reader.cli_pay import make_demo_home

    home = tmp_path / "home"
    make_demo_home(home)
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    with pytest.raises(FileNotFoundError, match="the current folder no longer exists"):
        check_output_path(Path("t.json"))
    for argv in (["pay", "--amount", "1", "--home", str(home)], ["demo"]):
        result = CliRunner().invoke(app, [*argv, "--trace", "t.json"])
        assert (result.exit_code, result.stdout) == (2, ""), result.output
        assert result.stderr == (
            "hcepay: error: --trace t.json: the current folder no longer exists (t.json)\n"
        )


def test_a_trace_in_a_missing_folder_says_so(tmp_path: Path) -> None:
    """A trace path whose folder does not exist is "no such folder" (naming the folder),
    before any payment, not a misleading "not writable"."""
    with pytest.raises(FileNotFoundError, match="no such folder") as caught:
        check_output_path(tmp_path / "missing" / "trace.json")
    assert caught.value.filename == str(tmp_path / "missing")
