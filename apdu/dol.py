"""Data object lists: parse, build, fill and split (EMV Book 3 5.4; PROTOCOL.md §1).

A DOL is a list of (tag, length); its entries are a construct format (a BER tag then one
length byte). Filling follows EMV Book 3 5.4: numeric (`n`) values are truncated or padded
with zeros on the left, others on the right, compressed numeric (`cn`) padded with `F`s and
the rest with zeros; a tag with no value is filled with zeros.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import construct as cs

from apdu.elements import format_of
from apdu.errors import DecodeError, EncodeError
from apdu.tlv import MAX_TAG_BYTES, read_tag, tag_bytes, tag_hex

MAX_ENTRY_LENGTH = 0xFF
MAX_ENTRIES = 64


class _BerTag(cs.Construct):  # type: ignore[misc]
    """A BER tag as a construct field (ISO 7816-4 5.2.2.1), as an int."""

    def _parse(self, stream: Any, context: Any, path: Any) -> int:
        start = stream.tell()
        raw = stream.read(MAX_TAG_BYTES)
        stream.seek(start)
        if raw[0] in (0x00, 0xFF):
            raise DecodeError(f"byte {raw[0]:02X} is no DOL tag", start)
        tag, size = read_tag(raw, 0, len(raw))
        stream.seek(start + size)
        return tag

    def _build(self, obj: Any, stream: Any, context: Any, path: Any) -> int:
        stream.write(tag_bytes(obj))
        return int(obj)


_ENTRY = cs.Struct("tag" / _BerTag(), "length" / cs.Int8ub)


@dataclass(frozen=True, slots=True)
class DolEntry:
    """One DOL entry: the tag asked for and how many bytes of it (EMV Book 3 5.4)."""

    tag: int
    length: int


def parse_dol(data: bytes) -> tuple[DolEntry, ...]:
    """Parse a DOL; DecodeError on a truncated entry or more than 64 entries. A tag named
    twice is two entries, each filled (PROTOCOL.md §1: the terminal fills each entry);
    `dol_slices` alone, which cuts data back by tag, refuses it.

    A payment parses the same few DOLs (PDOL, CDOL1) on both sides every time: the parsed
    entries (immutable) are memoized per DOL, bounded; a bad DOL is parsed (and refused)
    each time.
    """
    return _parse_dol(bytes(data))


@lru_cache(maxsize=64)
def _parse_dol(data: bytes) -> tuple[DolEntry, ...]:
    stream = io.BytesIO(data)
    entries: list[DolEntry] = []
    while (start := stream.tell()) < len(data):  # bounded: an entry takes 2 bytes or more
        if len(entries) == MAX_ENTRIES:
            raise DecodeError(f"DOL longer than {MAX_ENTRIES} entries", start)
        try:
            entry = _ENTRY.parse_stream(stream)
        except cs.ConstructError:
            raise DecodeError("DOL entry truncated: length missing", len(data)) from None
        entries.append(DolEntry(entry["tag"], entry["length"]))
    return tuple(entries)


def build_dol(entries: Sequence[DolEntry]) -> bytes:
    """Encode a DOL; EncodeError for a bad tag or a length outside 0..255."""
    out = bytearray()
    for entry in entries:
        if not 0 <= entry.length <= MAX_ENTRY_LENGTH:
            raise EncodeError(
                f"DOL length {entry.length} of tag {tag_hex(entry.tag)} is not a byte"
            )
        out += _ENTRY.build({"tag": entry.tag, "length": entry.length})
    return bytes(out)


def fit(tag: int, value: bytes, length: int) -> bytes:
    """Fit one value to `length` bytes by its format (EMV Book 3 5.4)."""
    kind = format_of(tag)
    if kind == "n":
        return value[-length:].rjust(length, b"\x00") if length else b""
    return value[:length].ljust(length, b"\xff" if kind == "cn" else b"\x00")


def fill_dol(entries: Sequence[DolEntry], values: Mapping[int, bytes]) -> bytes:
    """The DOL data a terminal sends: each entry's value fitted, missing tags zero-filled."""
    parts: list[bytes] = []
    for entry in entries:
        value = values.get(entry.tag)
        if value is None:
            parts.append(bytes(entry.length))
        elif len(value) == entry.length:  # already the right size: fit() would keep it whole
            parts.append(value)
        else:
            parts.append(fit(entry.tag, value, entry.length))
    return b"".join(parts)


def dol_slices(entries: Sequence[DolEntry]) -> dict[int, slice]:
    """Where each tag's value lies in DOL data (EMV Book 3 5.4); DecodeError for a tag the
    DOL repeats."""
    slices: dict[int, slice] = {}
    pos = 0
    for entry in entries:
        if entry.tag in slices:
            raise DecodeError(f"tag {tag_hex(entry.tag)} repeated in DOL", pos)
        slices[entry.tag] = slice(pos, pos + entry.length)
        pos += entry.length
    return slices


def split_dol(entries: Sequence[DolEntry], data: bytes) -> dict[int, bytes]:
    """Cut DOL data back into values by tag; DecodeError when the length does not match."""
    expected = sum(entry.length for entry in entries)
    if len(data) != expected:
        raise DecodeError(f"DOL data of {len(data)} bytes, the DOL asks for {expected}", 0)
    return {tag: bytes(data[where]) for tag, where in dol_slices(entries).items()}
