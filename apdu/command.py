"""Command APDUs of ISO 7816-4 5.1: cases 1 to 4, short and extended length fields.

Each of the seven forms is one compiled construct format (parse and build from one
definition); which form an APDU has follows from its length alone (ISO 7816-4 5.1.2),
decided here before the format runs, so a format never meets a truncated input.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import construct as cs

from apdu.errors import DecodeError, EncodeError

SHORT_MAX_DATA = 255
SHORT_MAX_LE = 256
EXTENDED_MAX_DATA = 65535
EXTENDED_MAX_LE = 65536
HEADER_LENGTH = 4

_HEADER = ("cla" / cs.Int8ub, "ins" / cs.Int8ub, "p1" / cs.Int8ub, "p2" / cs.Int8ub)
_EXT = cs.Const(b"\x00")  # the marker byte of extended length fields
_FORMATS: dict[str, cs.Construct] = {
    "1": cs.Struct(*_HEADER),
    "2S": cs.Struct(*_HEADER, "le" / cs.Int8ub),
    "3S": cs.Struct(*_HEADER, "data" / cs.Prefixed(cs.Int8ub, cs.GreedyBytes)),
    "4S": cs.Struct(*_HEADER, "data" / cs.Prefixed(cs.Int8ub, cs.GreedyBytes), "le" / cs.Int8ub),
    "2E": cs.Struct(*_HEADER, _EXT, "le" / cs.Int16ub),
    "3E": cs.Struct(*_HEADER, _EXT, "data" / cs.Prefixed(cs.Int16ub, cs.GreedyBytes)),
    "4E": cs.Struct(
        *_HEADER, _EXT, "data" / cs.Prefixed(cs.Int16ub, cs.GreedyBytes), "le" / cs.Int16ub
    ),
}


class _Compiled:
    """A compiled construct format called without its per-call wrapper (the hot path)."""

    def __init__(self, fmt: cs.Construct) -> None:
        compiled = fmt.compile()
        self._parse = compiled.parsefunc
        self._build = compiled.buildfunc
        self._pctx = cs.Container(_params={}, _parsing=True, _building=False, _index=None)
        self._bctx = cs.Container(_params={}, _parsing=False, _building=True, _index=None)

    def parse(self, raw: bytes) -> Any:
        return self._parse(io.BytesIO(raw), self._pctx)

    def build(self, obj: dict[str, Any]) -> bytes:
        stream = io.BytesIO()
        self._build(obj, stream, self._bctx)
        return stream.getvalue()


_CODECS = {case: _Compiled(fmt) for case, fmt in _FORMATS.items()}
_C1, _C2S, _C3S, _C4S = _CODECS["1"], _CODECS["2S"], _CODECS["3S"], _CODECS["4S"]
_C2E, _C3E, _C4E = _CODECS["2E"], _CODECS["3E"], _CODECS["4E"]


def _case_of(raw: bytes) -> str:
    """The form of an encoded command, from its length and length bytes (ISO 7816-4 5.1.2)."""
    size = len(raw)
    if size < HEADER_LENGTH:
        raise DecodeError("command APDU shorter than its 4-byte header", size)
    if size == HEADER_LENGTH:
        return "1"
    if size == 5:
        return "2S"
    lc = raw[4]
    if lc:
        if size == 5 + lc:
            return "3S"
        if size == 6 + lc:
            return "4S"
        after = f"{size - 5} byte{'s' if size - 5 != 1 else ''}"
        raise DecodeError(f"Lc {lc} does not match the {after} after it", 4)
    if size == 6:
        raise DecodeError("extended length field truncated", 5)
    if size == 7:
        return "2E"
    lc = raw[5] << 8 | raw[6]
    if lc == 0:
        raise DecodeError("extended Lc of 0 followed by data", 5)
    if size == 7 + lc:
        return "3E"
    if size == 9 + lc:
        return "4E"
    after = f"{size - 7} byte{'s' if size - 7 != 1 else ''}"
    raise DecodeError(f"extended Lc {lc} does not match the {after} after it", 5)


@dataclass(frozen=True, slots=True)
class CommandAPDU:
    """A command APDU (ISO 7816-4 5.1). `le` None: no Le field; `extended`: the encoding form."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    @classmethod
    def parse(cls, raw: bytes) -> CommandAPDU:
        """Decode any of the seven forms; DecodeError on a bad length or stray bytes.

        A thin hand layer over the form `_case_of` found (construct's parse costs several
        times more here); tests hold it equal to `parse_with_format`, the construct formats.
        """
        case = _case_of(raw)
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        if case == "1":
            return cls(cla, ins, p1, p2)
        if case == "2S":
            return cls(cla, ins, p1, p2, b"", raw[4] or SHORT_MAX_LE, False)
        if case == "3S":
            return cls(cla, ins, p1, p2, bytes(raw[5:]), None, False)
        if case == "4S":
            return cls(cla, ins, p1, p2, bytes(raw[5:-1]), raw[-1] or SHORT_MAX_LE, False)
        if case == "2E":
            return cls(cla, ins, p1, p2, b"", (raw[5] << 8 | raw[6]) or EXTENDED_MAX_LE, True)
        if case == "3E":
            return cls(cla, ins, p1, p2, bytes(raw[7:]), None, True)
        le = (raw[-2] << 8 | raw[-1]) or EXTENDED_MAX_LE
        return cls(cla, ins, p1, p2, bytes(raw[7:-2]), le, True)

    @classmethod
    def parse_with_format(cls, raw: bytes) -> CommandAPDU:
        """The same decoding through the construct format of the form (the reference)."""
        case = _case_of(raw)
        m = _CODECS[case].parse(raw)  # a construct Container: item access is its fast path
        cla, ins, p1, p2 = m["cla"], m["ins"], m["p1"], m["p2"]
        if case == "1":
            return cls(cla, ins, p1, p2)
        extended = case[1] == "E"
        data = m["data"] if case[0] != "2" else b""
        if case[0] == "3":
            return cls(cla, ins, p1, p2, data, None, extended)
        le = m["le"] or (EXTENDED_MAX_LE if extended else SHORT_MAX_LE)
        return cls(cla, ins, p1, p2, data, le, extended)

    def to_bytes(self) -> bytes:
        """Encode in the form `extended` names; EncodeError for a field out of range.

        A thin hand layer (construct's build costs ten times more here); tests hold it
        equal to `build_with_format`, the construct definition, for every model.
        """
        try:
            out = bytes((self.cla, self.ins, self.p1, self.p2))
        except ValueError:
            raise EncodeError(self._header_error()) from None
        data, le, size = self.data, self.le, len(self.data)
        if self.extended:
            if size > EXTENDED_MAX_DATA:
                raise EncodeError(f"{size} data bytes exceed the {EXTENDED_MAX_DATA} of this form")
            if le is not None and not 1 <= le <= EXTENDED_MAX_LE:
                raise EncodeError(f"Le {le} outside 1..{EXTENDED_MAX_LE}")
            if not size and le is None:
                raise EncodeError("case 1 has no extended form")
            out += b"\x00"
            if size:
                out += size.to_bytes(2, "big") + data
            if le is not None:
                out += (le % EXTENDED_MAX_LE).to_bytes(2, "big")
            return out
        if size > SHORT_MAX_DATA:
            raise EncodeError(f"{size} data bytes exceed the {SHORT_MAX_DATA} of this form")
        if size:
            out += bytes((size,)) + data
        if le is not None:
            if not 1 <= le <= SHORT_MAX_LE:
                raise EncodeError(f"Le {le} outside 1..{SHORT_MAX_LE}")
            out += bytes((le % SHORT_MAX_LE,))
        return out

    def _header_error(self) -> str:
        bad = next(n for n in ("cla", "ins", "p1", "p2") if not 0 <= getattr(self, n) <= 0xFF)
        return f"{bad.upper()} {getattr(self, bad)} is not a byte"

    def build_with_format(self) -> bytes:
        """The same encoding through the construct format of this form (the reference)."""
        self.to_bytes()  # the same range checks
        fields: dict[str, Any] = {"cla": self.cla, "ins": self.ins, "p1": self.p1, "p2": self.p2}
        fields["data"] = self.data
        if self.le is not None:
            fields["le"] = self.le % (EXTENDED_MAX_LE if self.extended else SHORT_MAX_LE)
        return _CODECS[self.case].build(fields)

    @property
    def case(self) -> str:
        """The ISO 7816-4 case: "1", "2S", "3S", "4S", "2E", "3E" or "4E"."""
        if not self.data:
            if self.le is None:
                return "1"
            return "2E" if self.extended else "2S"
        if self.le is None:
            return "3E" if self.extended else "3S"
        return "4E" if self.extended else "4S"
