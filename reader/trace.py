"""Recorded traces in the vector format of PROTOCOL.md §8 (one exchange a file).

`trace_json` turns the (command, response) pairs a TracingTransport kept into the JSON
object: `hcepay_vector` 1, name, description, card (only when the card is a profile: the
demo's; a `pay` trace has none), terminal, steps with `c` / `r` in upper-case hex and a note
naming the step of the credit payment each command carries.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from apdu import messages as m
from apdu.sw import INS
from authority.home import write_atomic
from reader.flow import Env, PaymentRequest

VECTOR_VERSION: Final = 1


@dataclass(frozen=True)
class CardStart:
    """The `card` object: the profile a replay starts from, its ATC and used credit."""

    profile: str
    atc: int = 0
    used: int = 0


def note_for(command: bytes) -> str:
    """What a command is in the protocol's words (PROTOCOL.md §3)."""
    if len(command) < 4:
        return ""
    ins, p1 = command[1], command[2]
    if ins == INS.SELECT:
        name = command[5 : 5 + command[4]] if len(command) > 5 else b""
        if name == m.PPSE_NAME:
            return "SELECT PPSE (discovery)"
        if name == m.CREDIT_AID:
            return "SELECT AID"
        return "SELECT"
    notes: dict[int, str] = {
        INS.GET_PROCESSING_OPTIONS: "1 credit payment request (GET PROCESSING OPTIONS)",
        INS.GENERATE_AC: "4 payment deduction request (GENERATE AC)",
        INS.GET_RESPONSE: "GET RESPONSE",
        INS.GET_DATA: "GET DATA",
    }
    if ins == INS.READ_RECORD:
        return f"2 payment response (READ RECORD {p1})"
    return notes.get(ins, "")


def trace_json(
    steps: Sequence[tuple[bytes, bytes]],
    *,
    name: str,
    description: str,
    env: Env,
    request: PaymentRequest,
    card: CardStart | None = None,
) -> dict[str, Any]:
    """The trace as the JSON object of PROTOCOL.md §8."""
    out: dict[str, Any] = {"hcepay_vector": VECTOR_VERSION, "name": name}
    out["description"] = description
    if card is not None:
        out["card"] = {"profile": card.profile, "atc": card.atc, "used": f"{card.used:012d}"}
    out["terminal"] = {
        "unpredictable_number": env.unpredictable_number.hex().upper(),
        "date": env.now.strftime("%y%m%d"),
        "time": env.now.strftime("%H%M%S"),
        "amount": request.amount,
        "currency": request.currency,
    }
    out["steps"] = [
        {"c": c.hex().upper(), "r": r.hex().upper(), **({"note": n} if (n := note_for(c)) else {})}
        for c, r in steps
    ]
    return out


def check_output_path(path: Path) -> None:
    """Before a payment: OSError (with a strerror) when `path` could not take a §8 file (a
    `--trace`, a `vectors record --out`), so that a payment is never made, then reported
    as a failure to write its file."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
    if path.exists() and not path.is_file():  # the file is renamed into place (write_atomic):
        # it would take the place of a device (/dev/null, as root) or a pipe, not write to it
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(folder))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "folder not writable", str(folder))
    try:  # a relative path in a current folder that was removed: written, it is lost
        os.path.abspath(path)  # getcwd(); `pay` resolves the path (FileNotFoundError, exit 70)
    except FileNotFoundError:
        raise FileNotFoundError(
            errno.ENOENT, "the current folder no longer exists", str(path)
        ) from None


def write_trace(path: Path, trace: dict[str, Any]) -> None:
    """Write the trace file whole (authority/home.py write_atomic); OSError when it cannot
    (and no temp file is left behind)."""
    write_atomic(path, (json.dumps(trace, indent=2) + "\n").encode("utf-8"))
