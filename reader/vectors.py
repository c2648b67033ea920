"""Conformance vectors and traces: one JSON format, one exchange a file (PROTOCOL.md §8).

The model (`Vector`, `Step`, `Pattern` with its `..` masks), loading with clear errors,
the comparison that finds the first difference, and the two replays:

* `replay_card_vector(vector, transport)` sends each step's command to a card and compares
  each response with the expected bytes (card side);
* `replay_terminal_vector(vector, ...)` runs the terminal's flow against a scripted card that
  answers from the vector and checks the commands, the verdict, the reason and the log
  (terminal side).
"""

from __future__ import annotations

import json
import re
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from authority.home import os_problem, parse_day, write_atomic
from authority.license import account_from_digits
from reader.checks import Verdict

if TYPE_CHECKING:
    from applet.card import Card
    from authority.keystore import KeyStore
    from reader.flow import Env, Outcome, PaymentRequest, TerminalConfig
    from reader.log import TransactionLog

VECTOR_VERSION = 1
MAX_VECTOR_FILE_BYTES = 1 << 20  # a vector is a few kilobytes; refuse anything absurd
MAX_STEPS = 256
CHOICE_KEY: Final = "choice"  # a vector of a choice PROTOCOL.md leaves open
MAX_APDU_BYTES = 65_544  # extended case 4: 4 + 3 + 65535 + 2 (ISO 7816-4 5.1)
_HEX_BYTE = re.compile("[0-9A-Fa-f]{2}")
WILDCARD = ".."
GENERATE_AC_INS = 0xAE  # PROTOCOL.md §3


class VectorError(ValueError):
    """A vector that cannot be loaded: `.where` (file or field path) and `.reason`."""

    def __init__(self, reason: str, where: str = "") -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"{where}: {reason}" if where else reason)


class Side(StrEnum):
    """Which side a vector tests: the card's answers, or the terminal's decisions."""

    CARD = "card"
    TERMINAL = "terminal"


# ---------------------------------------------------------------------------- patterns


def _parse_hex(text: str, where: str, *, masks: bool) -> tuple[bytes, tuple[bool, ...]]:
    """Hex pairs (upper or lower case), and `..` where `masks` allows: (bytes, known flags)."""
    if not isinstance(text, str):
        raise VectorError("expected a hex string", where)
    compact = "".join(text.split())
    if len(compact) % 2:
        raise VectorError(f"odd number of hex digits ({len(compact)})", where)
    if len(compact) // 2 > MAX_APDU_BYTES:
        raise VectorError(f"longer than {MAX_APDU_BYTES} bytes", where)
    data = bytearray()
    known: list[bool] = []
    for index in range(0, len(compact), 2):
        pair = compact[index : index + 2]
        if pair == WILDCARD:
            if not masks:
                raise VectorError(f"'..' is not allowed here (byte {index // 2})", where)
            data.append(0)
            known.append(False)
            continue
        if _HEX_BYTE.fullmatch(pair) is None:  # int(x, 16) takes "+1" and non-ASCII digits
            raise VectorError(f"{pair!r} is not a hex byte (byte {index // 2})", where)
        data.append(int(pair, 16))
        known.append(True)
    return bytes(data), tuple(known)


@dataclass(frozen=True)
class Pattern:
    """Expected response bytes where some may be `..`: unknown in advance (PROTOCOL.md §8)."""

    data: bytes  # a masked position holds 00
    known: tuple[bool, ...]

    @classmethod
    def exact(cls, data: bytes) -> Pattern:
        """A pattern with every byte known."""
        return cls(bytes(data), (True,) * len(data))

    @classmethod
    def parse(cls, text: str, where: str = "") -> Pattern:
        """Parse `6F..9000` style text; VectorError on anything else."""
        data, known = _parse_hex(text, where, masks=True)
        return cls(data, known)

    @property
    def masked(self) -> bool:
        """True when at least one byte is `..`."""
        return not all(self.known)

    def to_hex(self) -> str:
        """Upper-case hex with `..` for masked bytes."""
        return "".join(
            f"{b:02X}" if k else WILDCARD for b, k in zip(self.data, self.known, strict=True)
        )

    def differing(self, got: bytes) -> tuple[int, ...]:
        """Offsets where `got` differs from the known bytes, plus any length excess or lack."""
        common = min(len(got), len(self.data))
        offsets = [i for i in range(common) if self.known[i] and self.data[i] != got[i]]
        offsets.extend(range(common, max(len(got), len(self.data))))
        return tuple(offsets)


# ---------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Step:
    """One command and its expected response (PROTOCOL.md §8: `c`, `r`, optional `note`)."""

    command: bytes
    response: Pattern
    note: str = ""


@dataclass(frozen=True)
class CardStart:
    """The card's starting state: which profile, its ATC and its used credit (minor units)."""

    profile: str
    atc: int = 0
    used: int = 0

    def __post_init__(self) -> None:
        """A profile is a folder of the profiles folder, named as a vector file may name it:
        `vectors record --profile ../x` wrote a vector that replay refused, read outside."""
        if not _profile_name_ok(self.profile):
            raise VectorError(f"bad profile name {self.profile!r}", "card.profile")


def _profile_name_ok(profile: str) -> bool:
    """Whether `profile` names a folder right inside the profiles folder."""
    return bool(profile) and "/" not in profile and not profile.startswith(".")


@dataclass(frozen=True)
class TerminalValues:
    """The terminal's values of one exchange (PROTOCOL.md §8 `terminal`).

    `unpredictable_number`, `date` (YYMMDD) and `time` (HHMMSS) are the protocol's; the rest
    are this project's extensions for terminal-side vectors (docs/conformance.md): the amount
    and currency asked, the authority key expiry, revoked serials, accounts+ATCs already in
    the log (to prove that a replayed authorization is refused) and open pending entries of
    torn transactions (PROTOCOL.md §9).
    """

    unpredictable_number: bytes
    date: str
    time: str
    amount: int | None = None
    currency: int | None = None
    authority_expires: str | None = None  # YYYY-MM-DD
    revoked: tuple[int, ...] = ()
    logged: tuple[tuple[str, int], ...] = ()  # (account, ATC) rows already in the log
    # open (account, ATC, CDOL1 data, the license serial checked before it or None), §9
    pending: tuple[tuple[str, int, bytes, int | None], ...] = ()


@dataclass(frozen=True)
class Expect:
    """A terminal-side vector's expected verdict and reason (`expect`)."""

    verdict: Verdict
    reason: str = ""
    pending: tuple[str, ...] | None = None  # what closed each `terminal.pending` entry (§9)


@dataclass(frozen=True)
class Vector:
    """One conformance vector or recorded trace (PROTOCOL.md §8)."""

    name: str
    description: str
    steps: tuple[Step, ...]
    card: CardStart | None = None
    terminal: TerminalValues | None = None
    expect: Expect | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # unknown keys, kept on save

    @property
    def side(self) -> Side:
        """A vector with `expect` tests the terminal; without it, the card."""
        return Side.TERMINAL if self.expect is not None else Side.CARD

    @property
    def choice(self) -> bool:
        """`"choice": true`: what it checks is one of docs/protocol-choices.md, where
        PROTOCOL.md leaves the answer open; a card may choose otherwise and conform."""
        return self.extra.get(CHOICE_KEY) is True


# ---------------------------------------------------------------------------- JSON


def _require(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in obj:
        raise VectorError(f"missing {key!r}", where)
    value = obj[key]
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise VectorError(f"{key!r} must be {kind.__name__}", where)
    return value


def _optional(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    return _require(obj, key, kind, where) if key in obj else None


def _digits(text: str, count: int, where: str) -> str:
    if not isinstance(text, str) or len(text) != count or not (text.isascii() and text.isdigit()):
        raise VectorError(f"expected {count} decimal digits, got {text!r}", where)
    return text


def _parse_card(obj: Any, where: str) -> CardStart:
    if not isinstance(obj, dict):
        raise VectorError("must be an object", where)
    profile = _require(obj, "profile", str, where)
    if not _profile_name_ok(profile):
        raise VectorError(f"bad profile name {profile!r}", where)
    atc = _optional(obj, "atc", int, where) or 0
    if not 0 <= atc <= 0xFFFF:
        raise VectorError(f"atc {atc} out of 0..65535", where)
    used_text = obj.get("used", "000000000000")
    used = int(_digits(used_text, 12, f"{where}.used"))
    return CardStart(profile, atc, used)


def _account_rows(
    raw: list[Any], where: str, what: str
) -> Iterator[tuple[dict[str, Any], str, str, int]]:
    """The objects of a `logged` or `pending` list, each with its account (1 to 19 digits)
    and ATC checked: (the object, where it is, the account, the ATC)."""
    for index, row in enumerate(raw[: MAX_STEPS + 1]):
        row_where = f"{where}[{index}]"
        if index == MAX_STEPS:
            raise VectorError(f"too many {what}", row_where)
        if not isinstance(row, dict):
            raise VectorError("must be an object", row_where)
        account = _require(row, "account", str, row_where)
        atc = _require(row, "atc", int, row_where)
        try:
            account_from_digits(account)
        except ValueError:
            raise VectorError(f"account {account!r}: expected 1 to 19 digits", row_where) from None
        if not 0 <= atc <= 0xFFFF:
            raise VectorError(f"atc {atc} outside 0..FFFF", row_where)
        yield row, row_where, account, atc


def _parse_terminal(obj: Any, where: str) -> TerminalValues:
    if not isinstance(obj, dict):
        raise VectorError("must be an object", where)
    un, _ = _parse_hex(_require(obj, "unpredictable_number", str, where), where, masks=False)
    if len(un) != 4:
        raise VectorError("unpredictable_number must be 4 bytes", where)
    day = _digits(_require(obj, "date", str, where), 6, f"{where}.date")
    clock = _digits(_require(obj, "time", str, where), 6, f"{where}.time")
    _when(day, clock, where)
    amount = _optional(obj, "amount", int, where)
    currency = _optional(obj, "currency", int, where)
    if amount is not None and not 0 <= amount <= 999_999_999_999:
        raise VectorError(f"amount {amount} out of n12", where)
    if currency is not None and not 0 <= currency <= 999:
        raise VectorError(f"currency {currency} out of n3", where)
    expires = _optional(obj, "authority_expires", str, where)
    if expires is not None:
        try:
            parse_day(expires)
        except ValueError:
            raise VectorError(f"authority_expires {expires!r} is not YYYY-MM-DD", where) from None
    revoked = _optional(obj, "revoked", list, where) or []
    if len(revoked) > MAX_STEPS or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in revoked
    ):
        raise VectorError("revoked must be a short list of serial numbers", where)
    logged_raw = _optional(obj, "logged", list, where) or []
    logged = [
        (account, atc)
        for _, _, account, atc in _account_rows(logged_raw, f"{where}.logged", "rows")
    ]
    pending_raw = _optional(obj, "pending", list, where) or []
    pending: list[tuple[str, int, bytes, int | None]] = []
    for row, row_where, account, atc in _account_rows(pending_raw, f"{where}.pending", "entries"):
        cdol1_where = f"{row_where}.cdol1_data"
        cdol1, _ = _parse_hex(_require(row, "cdol1_data", str, row_where), cdol1_where, masks=False)
        serial = _optional(row, "serial", int, row_where)
        if serial is not None and not 0 <= serial < 1 << 24:
            raise VectorError(f"serial {serial} outside 0..FFFFFF", row_where)
        pending.append((account, atc, cdol1, serial))
    return TerminalValues(
        un,
        day,
        clock,
        amount,
        currency,
        expires,
        tuple(revoked),
        tuple(logged),
        tuple(pending),
    )


def terminal_values_from_json(obj: Any, where: str = "terminal") -> TerminalValues:
    """Validate a `terminal` object (PROTOCOL.md §8 plus this project's keys)."""
    return _parse_terminal(obj, where)


def _parse_expect(obj: Any, where: str) -> Expect:
    if not isinstance(obj, dict):
        raise VectorError("must be an object", where)
    text = _require(obj, "verdict", str, where)
    try:
        verdict = Verdict(text)
    except ValueError:
        choices = ", ".join(v.value for v in Verdict)
        raise VectorError(f"verdict {text!r} is not one of {choices}", where) from None
    pending = _optional(obj, "pending", list, where)
    if pending is not None and not all(isinstance(p, str) for p in pending):
        raise VectorError("'pending' must be a list of outcomes (text)", where)
    reason = _optional(obj, "reason", str, where) or ""
    return Expect(verdict, reason, None if pending is None else tuple(pending))


def vector_from_json(obj: Any, where: str = "") -> Vector:
    """Validate a parsed JSON value as a vector (PROTOCOL.md §8); VectorError names the field."""
    if not isinstance(obj, dict):
        raise VectorError("a vector is a JSON object", where)
    version = obj.get("hcepay_vector")
    if type(version) is not int or version != VECTOR_VERSION:  # not True, not 1.0
        raise VectorError(f"'hcepay_vector' must be {VECTOR_VERSION}, got {version!r}", where)
    name = _require(obj, "name", str, where)
    description = _optional(obj, "description", str, where) or ""
    raw_steps = _require(obj, "steps", list, where)
    if not raw_steps:
        raise VectorError("'steps' is empty", where)
    if len(raw_steps) > MAX_STEPS:
        raise VectorError(f"more than {MAX_STEPS} steps", where)
    steps: list[Step] = []
    for index, raw in enumerate(raw_steps):
        step_where = f"{where}.steps[{index}]" if where else f"steps[{index}]"
        if not isinstance(raw, dict):
            raise VectorError("a step is an object with 'c' and 'r'", step_where)
        command, _ = _parse_hex(_require(raw, "c", str, step_where), f"{step_where}.c", masks=False)
        response = Pattern.parse(_require(raw, "r", str, step_where), f"{step_where}.r")
        if not command:
            raise VectorError("an empty command", f"{step_where}.c")
        if len(response.data) < 2:
            raise VectorError("a response APDU has at least its 2-byte status word", step_where)
        steps.append(Step(command, response, _optional(raw, "note", str, step_where) or ""))
    card = _parse_card(obj["card"], f"{where}.card") if obj.get("card") is not None else None
    terminal = (
        _parse_terminal(obj["terminal"], f"{where}.terminal")
        if obj.get("terminal") is not None
        else None
    )
    expect = _parse_expect(obj["expect"], f"{where}.expect") if "expect" in obj else None
    if expect is None and card is None:
        raise VectorError("a card-side vector needs 'card' (its profile and start)", where)
    if expect is not None:
        if terminal is None:
            raise VectorError("a terminal-side vector needs 'terminal' values", where)
        if expect.pending is not None and len(expect.pending) != len(terminal.pending):
            raise VectorError(
                "'expect.pending' needs one outcome per 'terminal.pending' entry", where
            )
        for index, step in enumerate(steps):
            if step.response.masked:
                raise VectorError(
                    "a terminal-side vector's responses cannot hold '..'",
                    f"{where}.steps[{index}].r",
                )
    if type(obj.get(CHOICE_KEY, False)) is not bool:
        raise VectorError(f"'{CHOICE_KEY}' must be true or false", where)
    known = {"hcepay_vector", "name", "description", "card", "terminal", "expect", "steps"}
    extra = {k: v for k, v in obj.items() if k not in known}
    return Vector(name, description, tuple(steps), card, terminal, expect, extra)


def vector_to_json(vector: Vector) -> dict[str, Any]:
    """The vector as the JSON object of PROTOCOL.md §8 (upper-case hex)."""
    out: dict[str, Any] = {"hcepay_vector": VECTOR_VERSION, "name": vector.name}
    out["description"] = vector.description
    if vector.card is not None:
        out["card"] = {
            "profile": vector.card.profile,
            "atc": vector.card.atc,
            "used": f"{vector.card.used:012d}",
        }
    if vector.terminal is not None:
        t = vector.terminal
        terminal: dict[str, Any] = {
            "unpredictable_number": t.unpredictable_number.hex().upper(),
            "date": t.date,
            "time": t.time,
        }
        if t.amount is not None:
            terminal["amount"] = t.amount
        if t.currency is not None:
            terminal["currency"] = t.currency
        if t.authority_expires is not None:
            terminal["authority_expires"] = t.authority_expires
        if t.revoked:
            terminal["revoked"] = list(t.revoked)
        if t.logged:
            terminal["logged"] = [{"account": a, "atc": n} for a, n in t.logged]
        if t.pending:
            terminal["pending"] = [
                {"account": a, "atc": n, "cdol1_data": d.hex().upper()}
                | ({} if serial is None else {"serial": serial})
                for a, n, d, serial in t.pending
            ]
        out["terminal"] = terminal
    if vector.expect is not None:
        out["expect"] = {"verdict": vector.expect.verdict.value, "reason": vector.expect.reason}
        if vector.expect.pending is not None:
            out["expect"]["pending"] = list(vector.expect.pending)
    out.update(vector.extra)
    steps = []
    for step in vector.steps:
        item = {"c": step.command.hex().upper(), "r": step.response.to_hex()}
        if step.note:
            item["note"] = step.note
        steps.append(item)
    out["steps"] = steps
    return out


def dumps(vector: Vector) -> str:
    """The vector as the text of its file: indented JSON, a newline at the end."""
    return json.dumps(vector_to_json(vector), indent=2, ensure_ascii=False) + "\n"


def loads(text: str, where: str = "") -> Vector:
    """Parse and validate vector text; VectorError on bad JSON or a bad field."""
    if len(text) > MAX_VECTOR_FILE_BYTES:
        raise VectorError(f"larger than {MAX_VECTOR_FILE_BYTES} bytes", where)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VectorError(
            f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", where
        ) from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit number, nesting too deep
        raise VectorError(f"not a vector: {type(exc).__name__}: {exc}"[:200], where) from None
    return vector_from_json(obj, where)


def load(path: Path) -> Vector:
    """Load one vector file; VectorError (never OSError) when it cannot be read or is invalid."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block, a device never end
            raise VectorError("not a regular file", str(path))
        if info.st_size > MAX_VECTOR_FILE_BYTES:
            raise VectorError(f"larger than {MAX_VECTOR_FILE_BYTES} bytes", str(path))
        with path.open("rb") as f:
            raw = f.read(MAX_VECTOR_FILE_BYTES + 1)
        if len(raw) > MAX_VECTOR_FILE_BYTES:
            raise VectorError(f"larger than {MAX_VECTOR_FILE_BYTES} bytes", str(path))
        text = raw.decode("utf-8")
    except OSError as exc:
        raise VectorError(exc.strerror or "cannot be read", str(path)) from None
    except UnicodeDecodeError:
        raise VectorError("not UTF-8 text", str(path)) from None
    return loads(text, str(path))


def save(path: Path, vector: Vector) -> None:
    """Write one vector file (the text of `dumps`) whole or not at all (write_atomic), as a
    trace is: a full disk left half a vector over the one it replaced. The CLI checks the
    path first (reader/trace.py check_output_path: a device or a pipe is refused)."""
    write_atomic(path, dumps(vector).encode("utf-8"))


def collect(paths: Iterable[Path], *, limit: int = 10_000) -> list[Path]:
    """Vector files named by `paths`: files as given, folders searched for `*.json` (sorted)."""
    found: list[Path] = []
    for path in paths:
        if is_folder(path, str(path)):
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*.json")
                    if p.is_file() and "profiles" not in p.relative_to(path).parts
                )
            )
        else:
            found.append(path)
        if len(found) > limit:
            raise VectorError(f"more than {limit} vector files", str(path))
    return found


# ---------------------------------------------------------------------------- differences


class Problem(StrEnum):
    """What kind of difference a replay found."""

    RESPONSE = "response"  # the card answered other bytes
    COMMAND = "command"  # the terminal sent another command
    MISSING_COMMAND = "missing command"  # the terminal stopped before the vector's end
    EXTRA_COMMAND = "extra command"  # the terminal sent more than the vector holds
    VERDICT = "verdict"
    REASON = "reason"
    LOG = "log"  # a refusal left a row, or an approval none
    PENDING = "torn transaction"  # a §9 pending entry closed otherwise than the vector says
    TRANSPORT = "transport error"  # the card could not be reached
    SETUP = "setup error"  # the vector could not be set up (profile missing...)


@dataclass(frozen=True)
class Difference:
    """The first place where a replay departs from its vector.

    `step` is the step index (0-based, None for a verdict or log difference), `offset` the
    first differing byte, `positions` every differing byte offset (for marking them).
    """

    problem: Problem
    expected: str
    got: str
    step: int | None = None
    offset: int | None = None
    positions: tuple[int, ...] = ()

    def describe(self) -> str:
        """One line: where, then expected vs got (a window around the first difference)."""
        where = []
        if self.step is not None:
            where.append(f"step {self.step + 1}")
        if self.offset is not None:
            where.append(f"byte {self.offset}")
        place = f" at {', '.join(where)}" if where else ""
        if self.problem in (Problem.TRANSPORT, Problem.SETUP):
            return f"{self.problem.value}{place}: {self.got}"
        expected, got = _window(self.expected, self.offset), _window(self.got, self.offset)
        return (
            f"{self.problem.value} differs{place}: "
            f"expected {expected or '(nothing)'}, got {got or '(nothing)'}"
        )


DESCRIBE_WINDOW = 8  # bytes either side of a difference in `Difference.describe`


def _window(hex_text: str, offset: int | None) -> str:
    """The hex around byte `offset`, with an ellipsis where bytes are left out."""
    if offset is None or len(hex_text) <= 4 * DESCRIBE_WINDOW + 2:
        return hex_text
    first = max(0, offset - DESCRIBE_WINDOW)
    last = min(len(hex_text) // 2, offset + DESCRIBE_WINDOW + 1)
    head = "…" if first > 0 else ""
    tail = "…" if last < len(hex_text) // 2 else ""
    return head + hex_text[2 * first : 2 * last] + tail


def compare_response(step: int, expected: Pattern, got: bytes) -> Difference | None:
    """Compare a response with its pattern, `..` bytes excepted (PROTOCOL.md §8)."""
    positions = expected.differing(got)
    if not positions:
        return None
    return Difference(
        Problem.RESPONSE, expected.to_hex(), got.hex().upper(), step, positions[0], positions
    )


def compare_command(step: int, expected: bytes, got: bytes) -> Difference | None:
    """Compare the command a terminal sent with the vector's (every byte counts)."""
    positions = Pattern.exact(expected).differing(got)
    if not positions:
        return None
    return Difference(
        Problem.COMMAND, expected.hex().upper(), got.hex().upper(), step, positions[0], positions
    )


@dataclass(frozen=True)
class ReplayResult:
    """The outcome of replaying one vector: `passed` when nothing differs."""

    name: str
    side: Side
    steps: int  # how many steps the vector holds
    done: int  # how many steps were exchanged before the first difference or the end
    difference: Difference | None = None
    verdict: Verdict | None = None  # terminal side: what the terminal decided
    reason: str = ""
    path: str = ""
    choice: bool = False  # the vector holds a choice PROTOCOL.md leaves open (Vector.choice)

    @property
    def passed(self) -> bool:
        """True when the replay matched the vector in full."""
        return self.difference is None


class Transport(Protocol):
    """The transport shape the replay needs (reader.transport.Transport satisfies it)."""

    name: str

    def connect(self) -> bytes: ...
    def transmit(self, command: bytes) -> bytes: ...
    def disconnect(self) -> None: ...


def replay_card_vector(
    vector: Vector, transport: Transport, *, connect: bool = True
) -> ReplayResult:
    """Send each command of `vector` to the card behind `transport`; compare each response.

    Card-side replay (PROTOCOL.md §8). `transport` must be a *bare* transport (no chaining
    wrapper): the vector's own steps hold the `61xx` / `6Cxx` answers and the GET RESPONSE
    commands. The card's starting state is the caller's business (`in_process_card` builds
    one from the vector's `card` object; a phone or served card starts where it is). With
    `connect` the transport is connected first and disconnected at the end. Returns at the
    first difference; a transport failure is reported as a `Problem.TRANSPORT` difference.
    """
    from reader.transport import LoggingTransport, TransportError

    transport = LoggingTransport(transport)  # one line a pair with -v
    done = 0
    try:
        if connect:
            transport.connect()
        try:
            for index, step in enumerate(vector.steps):
                got = transport.transmit(step.command)
                difference = compare_response(index, step.response, got)
                if difference is not None:
                    return ReplayResult(vector.name, Side.CARD, len(vector.steps), done, difference)
                done += 1
        finally:
            if connect:
                transport.disconnect()
    except TransportError as exc:
        problem = Difference(Problem.TRANSPORT, "a response", exc.reason, done)
        return ReplayResult(vector.name, Side.CARD, len(vector.steps), done, problem)
    return ReplayResult(vector.name, Side.CARD, len(vector.steps), done)


# ---------------------------------------------------------------------------- terminal side


class ScriptedCard:
    """A transport whose card answers from a terminal-side vector (PROTOCOL.md §8).

    Each command the terminal sends must equal the next step's `c`; the answer is that
    step's `r`. The first departure is kept in `difference` and ends the exchange with a
    TransportError, so the terminal's flow stops there.
    """

    name = "scripted card"

    def __init__(self, steps: Sequence[Step], atr: bytes = b"\x3b\x80\x80\x01\x01") -> None:
        self.steps = tuple(steps)
        self.atr = atr
        self.index = 0
        self.difference: Difference | None = None

    def connect(self) -> bytes:
        """Power on: the ATR (applet/atr.py)."""
        return self.atr

    def transmit(self, command: bytes) -> bytes:
        """The vector's response to the expected command; TransportError on any departure."""
        from reader.transport import TransportError

        if self.difference is not None:
            raise TransportError("the scripted card has left the exchange")
        if self.index >= len(self.steps):
            self.difference = Difference(
                Problem.EXTRA_COMMAND, "", command.hex().upper(), self.index
            )
            raise TransportError("the terminal sent more commands than the vector holds")
        step = self.steps[self.index]
        difference = compare_command(self.index, step.command, command)
        if difference is not None:
            self.difference = difference
            raise TransportError("the terminal sent another command than the vector's")
        self.index += 1
        return step.response.data

    def disconnect(self) -> None:
        """Nothing to release."""

    def finish(self) -> Difference | None:
        """The first difference, or a missing command when the terminal stopped early."""
        if self.difference is None and self.index < len(self.steps):
            step = self.steps[self.index]
            return Difference(Problem.MISSING_COMMAND, step.command.hex().upper(), "", self.index)
        return self.difference


# ---------------------------------------------------------------------------- terminal runs

DEFAULT_AMOUNT = 1234  # 12.34, when a vector does not say
DEFAULT_CURRENCY = 156
DEFAULT_AUTHORITY_EXPIRY = "2049-12-31"


@dataclass(frozen=True)
class TerminalRun:
    """What the terminal did over one exchange: its verdict (None when the exchange broke
    off), the reason (`check n: ...` for a refusal), the raw steps, and the rows it logged."""

    verdict: Verdict | None
    reason: str
    steps: tuple[Step, ...]
    rows_added: int
    log_problem: str = ""  # what the log holds that it should not, or lacks ("" when right)
    pending: tuple[str, ...] = ()  # what closed each `terminal.pending` entry ("open": none)


def _when(day: str, clock: str, where: str) -> datetime:
    """The terminal's clock from a vector's `date` (YYMMDD) and `time` (HHMMSS)."""
    try:
        return datetime.strptime(day + clock, "%y%m%d%H%M%S")
    except ValueError:
        raise VectorError(f"no such date and time: {day} {clock} (YYMMDD HHMMSS)", where) from None


def _now(values: TerminalValues) -> datetime:
    return _when(values.date, values.time, "terminal")


@dataclass(frozen=True)
class TerminalSetup:
    """What a terminal must hold to run a terminal-side vector: the profile's terminal ids
    (`terminal.json`), the authority key file, index and expiry, and the vector's values."""

    values: TerminalValues
    config: TerminalConfig
    request: PaymentRequest
    env: Env
    index: int
    authority_key: Path
    authority_expires: date


def _problem(exc: Exception) -> str:
    """A profile file's error in plain words: an OSError names its file ("PATH: No such file
    or directory", authority/home.py os_problem), never Python's "[Errno 2] ..."; a missing
    JSON field is named as missing."""
    if isinstance(exc, OSError):
        return os_problem(exc)
    if isinstance(exc, KeyError):
        return f"missing field {exc}"
    if isinstance(exc, RecursionError):  # json's decoder recurses once per level
        return "JSON nested too deeply"
    return str(exc)


def terminal_setup(vector: Vector, profiles: Path) -> TerminalSetup:
    """The terminal of a terminal-side vector, from its profile; VectorError when the profile
    cannot give it (PROTOCOL.md §8, docs/conformance.md)."""
    from reader.flow import Env, PaymentRequest, TerminalConfig

    if vector.card is None or vector.terminal is None:
        raise VectorError("a terminal run needs 'card' (the profile) and 'terminal' values")
    values = vector.terminal
    folder = profile_folder(profiles, vector.card)
    try:
        config = json.loads((folder / "terminal.json").read_text(encoding="utf-8"))
        card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
        cfg = TerminalConfig(config["terminal_id"], config["merchant_id"], int(config["country"]))
        index = int(card["ca_index"])
        expires = parse_day(values.authority_expires or DEFAULT_AUTHORITY_EXPIRY)
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:  # too deep
        raise VectorError(f"profile {vector.card.profile!r}: {_problem(exc)}", "terminal") from None
    request = PaymentRequest(
        DEFAULT_AMOUNT if values.amount is None else values.amount,
        DEFAULT_CURRENCY if values.currency is None else values.currency,
    )
    env = Env(_now(values), values.unpredictable_number)
    key = folder / f"ca-{index:02X}.pub.pem"
    return TerminalSetup(values, cfg, request, env, index, key, expires)


def run_terminal(vector: Vector, profiles: Path, transport: Transport) -> TerminalRun:
    """Run our terminal's payment (reader.flow.pay) over a bare `transport`, with the
    vector's terminal values injected (PROTOCOL.md §7, §8).

    The terminal is the profile's (`terminal.json`, `ca-01.pub.pem`), its key store and a
    fresh transaction log in a temporary folder are set from the vector's `terminal`
    object; chaining is added above `transport`, and every raw exchange is recorded.
    """
    from authority.errors import KeyFileError
    from authority.keyfiles import load_public
    from authority.keystore import AuthorityKey, KeyStore
    from reader.checks import CheckError
    from reader.flow import pay
    from reader.log import TransactionLog
    from reader.recovery import PendingEntry
    from reader.trace import note_for
    from reader.transport import (
        ChainingTransport,
        LoggingTransport,
        TracingTransport,
        TransportError,
    )

    setup = terminal_setup(vector, profiles)
    values, cfg, request, env = setup.values, setup.config, setup.request, setup.env
    try:
        authority = load_public(setup.authority_key)
    except (OSError, ValueError, KeyFileError) as exc:
        raise VectorError(f"the terminal's authority key: {_problem(exc)}", "terminal") from None
    keys = KeyStore(
        {setup.index: AuthorityKey(setup.index, authority, setup.authority_expires)},
        frozenset(values.revoked),
    )
    verdict: Verdict | None
    with (
        tempfile.TemporaryDirectory(prefix="hcepay-vector-") as tmp,
        TransactionLog(Path(tmp) / "terminal.db") as log,
    ):
        watch = PendingWatch(LoggingTransport(transport), log)  # one line a pair with -v
        tracer = TracingTransport(watch)
        for account, atc in values.logged:
            log.record(_placeholder(account, atc, env, cfg))
        torn = [PendingEntry(account_from_digits(a), n, d, k) for a, n, d, k in values.pending]
        for entry in torn:
            log.write_pending(entry, env.now)
        before = log.count()
        try:
            paid = pay(ChainingTransport(tracer), cfg, request, env, keys, log)
            verdict, reason = paid.outcome.verdict, ""
        except CheckError as exc:
            verdict, reason = Verdict.REFUSED, str(exc)
        except TransportError as exc:
            verdict, reason = None, f"transport error: {exc.reason}"
        rows = log.count() - before
        problem = watch.problem or _row_problem(
            [row.outcome for row in log.rows()][before:], keys, request, env, verdict
        )
        decided = verdict in (Verdict.APPROVED, Verdict.DECLINED)
        if not problem and decided and any(e.cdol1_data == watch.sent for e in log.pending()):
            problem = "a pending entry is still open after the payment was recorded"
        closed = {(p.entry.account, p.entry.atc): p.outcome for p in log.pending_rows()}
        outcomes = tuple(closed.get((e.account, e.atc)) or "open" for e in torn)
    steps = tuple(Step(c, Pattern.exact(r), note_for(c)) for c, r in tracer.steps)
    return TerminalRun(verdict, reason, steps, rows, problem, outcomes)


class PendingWatch:
    """A transport that checks the pending entry is in the log when GENERATE AC goes out
    (PROTOCOL.md §9: written durably before it is sent); `problem` says when it was not."""

    def __init__(self, inner: Transport, log: TransactionLog) -> None:
        self.inner = inner
        self.name = inner.name
        self.log = log
        self.problem = ""
        self.sent = b""  # the CDOL1 data of the GENERATE AC that went out

    def connect(self) -> bytes:
        """Connect the inner transport."""
        return self.inner.connect()

    def transmit(self, command: bytes) -> bytes:
        """Pass the command on; a GENERATE AC whose CDOL1 data no open entry holds is noted."""
        if len(command) > 5 and command[1] == GENERATE_AC_INS and not self.problem:
            data = self.sent = command[5 : 5 + command[4]]
            if not any(entry.cdol1_data == data for entry in self.log.pending()):
                self.problem = "GENERATE AC was sent before its pending entry was written"
        return self.inner.transmit(command)

    def disconnect(self) -> None:
        """Disconnect the inner transport."""
        self.inner.disconnect()


def _row_problem(
    rows: Sequence[Outcome],
    keys: KeyStore,
    request: PaymentRequest,
    env: Env,
    verdict: Verdict | None,
) -> str:
    """Why a row the terminal logged is wrong, "" when none is (PROTOCOL.md §7): each
    re-checks with the authority key as `hcepay log --verify` does, and this contact's own
    (the last; a torn payment recorded at this contact comes first, §9) holds the vector's
    amount, currency, unpredictable number, time and the terminal's verdict."""
    from reader.cli_pay import verify_row

    for row in rows:
        failure = verify_row(row, keys)
        if failure:
            return f"the row does not verify: {failure}"
    if rows and verdict in (Verdict.APPROVED, Verdict.DECLINED):  # this contact's, last (§9)
        row = rows[-1]
        kept = (row.amount, row.currency, row.unpredictable_number, row.time, row.verdict)
        want = (request.amount, request.currency, env.unpredictable_number, env.now, verdict)
        names = ("amount", "currency", "unpredictable number", "time", "verdict")
        wrong = [n for n, k, w in zip(names, kept, want, strict=True) if k != w]
        if wrong:
            return f"the row's {', '.join(wrong)} differ from the transaction's"
    return ""


def _placeholder(account: str, atc: int, env: Env, cfg: TerminalConfig) -> Outcome:
    """A log row holding only (account, ATC): what check 5 looks at (PROTOCOL.md §7)."""
    from reader.flow import Outcome

    return Outcome(
        verdict=Verdict.APPROVED,
        time=env.now,
        terminal_id=cfg.terminal_id,
        merchant_id=cfg.merchant_id,
        account=account,
        amount=0,
        currency=0,
        atc=atc,
        unpredictable_number=bytes(4),
        cid=0x40,
        serial=0,
        ca_index=0,
        authorization=b"",
        license=b"",
        remainder=b"",
        exponent=b"",
        record1_value=b"",
        cdol1_data=b"",
    )


def record_terminal(draft: Vector, profiles: Path, card: Card) -> TerminalRun:
    """Run the terminal against an in-process `card` and keep the exchange (for recording)."""
    from reader.transport import InProcessTransport

    return run_terminal(draft, profiles, InProcessTransport(card))


def replay_terminal_vector(vector: Vector, profiles: Path) -> ReplayResult:
    """Terminal-side replay (PROTOCOL.md §8): our terminal against a card scripted by the
    vector. Passes when the terminal sent exactly the vector's commands, reached the expected
    verdict and reason, and logged one row for an approval or decline (that row re-checked,
    PROTOCOL.md §7), none for a refusal, with its §9 pending entry written before GENERATE AC
    and closed by the record."""
    if vector.expect is None:
        raise VectorError("not a terminal-side vector (no 'expect')")
    card = ScriptedCard(vector.steps)
    run = run_terminal(vector, profiles, card)
    expect = vector.expect
    difference = card.finish()
    got_verdict = run.verdict.value if run.verdict else "no verdict"
    if difference is None and run.verdict is not expect.verdict:
        difference = Difference(
            Problem.VERDICT, expect.verdict.value, f"{got_verdict} ({run.reason})"
        )
    elif difference is None and expect.reason and run.reason != expect.reason:
        difference = Difference(Problem.REASON, expect.reason, run.reason)
    elif difference is None and expect.pending is not None and run.pending != expect.pending:
        difference = Difference(
            Problem.PENDING, "; ".join(expect.pending), "; ".join(run.pending) or "(none)"
        )
    elif difference is None:
        rows = 0 if expect.verdict is Verdict.REFUSED else 1
        rows += sum(outcome == "recorded" for outcome in run.pending)
        if run.rows_added != rows:
            difference = Difference(Problem.LOG, f"{rows} new row(s)", f"{run.rows_added}")
        elif run.log_problem:
            difference = Difference(Problem.LOG, "the log of PROTOCOL.md §7, §9", run.log_problem)
    return ReplayResult(
        vector.name,
        Side.TERMINAL,
        len(vector.steps),
        card.index,
        difference,
        run.verdict,
        run.reason,
    )


# ---------------------------------------------------------------------------- in-process


def is_folder(path: Path, where: str) -> bool:
    """path.is_dir(), where what it raises (a name too long for the system) is a VectorError
    at `where`: a path the user gave, not a bug."""
    try:
        return path.is_dir()
    except OSError as exc:
        raise VectorError(exc.strerror or "cannot be looked up", where) from None


def profile_folder(profiles: Path, start: CardStart) -> Path:
    """The folder of the vector's profile; VectorError when it is not there."""
    folder = profiles / start.profile
    try:
        found = (folder / "card.json").is_file()
    except OSError as exc:  # a name too long: the vector's or --profiles's
        why = f"profile {start.profile!r} in {profiles}: {exc.strerror}"
        raise VectorError(why, "card.profile") from None
    if not found:
        raise VectorError(f"no profile {start.profile!r} in {profiles}", "card.profile")
    return folder


def in_process_card(start: CardStart, profiles: Path) -> Card:
    """A fresh card of the vector's profile in its starting state, with an in-memory store.

    The state is the vector's `card` object (ATC, used credit) and no last answers; nothing
    is written to the profile folder (PROTOCOL.md §8).
    """
    from applet.profile import open_card
    from applet.state import CardState
    from applet.store import MemoryStateStore

    folder = profile_folder(profiles, start)
    try:
        return open_card(folder, MemoryStateStore(CardState(start.atc, start.used)))
    except (OSError, ValueError) as exc:
        why = _problem(exc)
        raise VectorError(f"profile {start.profile!r} cannot be opened: {why}", "card") from None


def replay_card_in_process(vector: Vector, profiles: Path) -> ReplayResult:
    """Card-side replay against our applet built from the vector's profile and state."""
    from reader.transport import InProcessTransport

    if vector.card is None:
        raise VectorError("a card-side vector needs a 'card' object to replay in-process")
    card = in_process_card(vector.card, profiles)
    return replay_card_vector(vector, InProcessTransport(card))


def replay_vector(
    vector: Vector,
    profiles: Path,
    *,
    reader: str | None = None,
    card_transport: Callable[[str], Transport] | None = None,
) -> ReplayResult:
    """Replay one vector: card side in-process (or on the card in `reader`, reached through
    `card_transport`, by default a PcscTransport that does not wait), terminal side against
    a scripted card. VectorError when the vector cannot be set up (bad profile)."""
    if vector.side is Side.TERMINAL:
        return replay_terminal_vector(vector, profiles)
    if reader is None:
        return replay_card_in_process(vector, profiles)
    if card_transport is None:
        from reader.pcsc import PcscTransport

        card_transport = PcscTransport
    return replay_card_vector(vector, card_transport(reader))
