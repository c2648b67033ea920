"""BER-TLV: tags of 1 to 3 bytes, short and long (81, 82) lengths, nested templates.

ISO 7816-4 5.2 and EMV Book 3 Annex B (PROTOCOL.md §1). Reading skips 00/FF padding between
TLVs, refuses the indefinite length (80) and any value that runs past its container, and
bounds the nesting depth; writing uses minimal lengths and never pads. The long length forms
are construct formats (the reference); the tag/length walk and the length fields are written
by hand on the hot path, and tests hold the hand length fields equal to the formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import construct as cs

from apdu.errors import DecodeError, EncodeError

MAX_TAG_BYTES = 3
MAX_LENGTH = 0xFFFF
DEFAULT_MAX_DEPTH = 8
_PADDING = (0x00, 0xFF)
_CONSTRUCTED_BIT = 0x20
_MORE_TAG_BYTES = 0x1F
# ISO/IEC 7816-4 5.2.2.1 (ASN.1 BER, X.690 8.1.2.4.2 c): in a tag of three bytes, bits b7-b1
# of the second byte are not all 0 (a tag number starts with its first significant bits)
_NOT_MINIMAL = 0x80
_LONG_FORM = 0x80

# Long length forms (ISO 7816-4 5.2.2.2): 81 xx for 128..255, 82 xx xx for 256..65535.
_LONG_LENGTHS: dict[int, cs.Construct] = {
    0x81: cs.Int8ub.compile(),
    0x82: cs.Int16ub.compile(),
}
_LONG_HEADERS: tuple[tuple[int, cs.Construct], ...] = (
    (0xFF, cs.Struct(cs.Const(b"\x81"), "n" / cs.Int8ub).compile()),
    (0xFFFF, cs.Struct(cs.Const(b"\x82"), "n" / cs.Int16ub).compile()),
)


def tag_hex(tag: int) -> str:
    """A tag in hex as its bytes read, for messages: 03, 9F36 (EMV writes tags so; "3" for
    tag 03 read as a length or a digit). Never raises: it names invalid tags too."""
    return f"{tag:0{2 * max(1, (tag.bit_length() + 7) // 8)}X}"


def tag_bytes(tag: int) -> bytes:
    """The encoded tag (ISO 7816-4 5.2.2.1); EncodeError when `tag` is no valid BER tag."""
    return _tag_bytes(tag)


@lru_cache(maxsize=256, typed=True)  # a few dozen tags in use; a bad tag raises, never cached
def _tag_bytes(tag: int) -> bytes:
    size = max(1, (tag.bit_length() + 7) // 8)
    if tag < 0 or size > MAX_TAG_BYTES:
        raise EncodeError(f"tag {tag:#x} is not a 1 to 3 byte BER tag")
    raw = tag.to_bytes(size, "big")
    first_ok = (raw[0] & _MORE_TAG_BYTES == _MORE_TAG_BYTES) == (size > 1)
    middle_ok = all(b & 0x80 for b in raw[1:-1]) and raw[1:2] != bytes((_NOT_MINIMAL,))
    last_ok = size == 1 or not raw[-1] & 0x80
    if not (first_ok and middle_ok and last_ok) or raw[0] in _PADDING:
        raise EncodeError(f"tag {tag_hex(tag)} is not a valid BER tag encoding")
    return raw


# The protocol's private tag DF02 (the last GENERATE AC answer) holds TLVs although b6 of DF
# is clear (PROTOCOL.md §9: DF02{77{...}, DF03 ...}): it is read and written as a template.
PRIVATE_TEMPLATES = frozenset({0xDF02})


def is_constructed(tag: int) -> bool:
    """b6 of the first tag byte: the value is itself BER-TLV (ISO 7816-4 5.2.2.1)."""
    if tag in PRIVATE_TEMPLATES:
        return True
    first = tag >> (8 * max(0, (tag.bit_length() - 1) // 8))
    return bool(first & _CONSTRUCTED_BIT)


def read_tag(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read a BER tag at `pos` (ISO 7816-4 5.2.2.1): (tag, position after it)."""
    start = pos
    first = data[pos]
    tag = first
    pos += 1
    if first & _MORE_TAG_BYTES == _MORE_TAG_BYTES:
        for _ in range(MAX_TAG_BYTES - 1):
            if pos >= end:
                raise DecodeError("tag runs past the end", start)
            b = data[pos]
            if b == _NOT_MINIMAL and pos == start + 1:
                raise DecodeError("tag's first subsequent byte is 80 (not minimal)", start)
            tag = tag << 8 | b
            pos += 1
            if not b & 0x80:
                break
        else:
            raise DecodeError(f"tag longer than {MAX_TAG_BYTES} bytes", start)
    return tag, pos


@dataclass(frozen=True, slots=True)
class Tlv:
    """One data object: `value` is the raw value; `children` are parsed when constructed."""

    tag: int
    value: bytes
    children: tuple[Tlv, ...] = ()

    @property
    def constructed(self) -> bool:
        """True when the tag says the value is a sequence of TLVs."""
        return is_constructed(self.tag)

    def find(self, tag: int) -> Tlv | None:
        """The first descendant with `tag`, depth-first (the depth is bounded by decode)."""
        for child in self.children:
            if child.tag == tag:
                return child
            found = child.find(tag)
            if found is not None:
                return found
        return None

    def find_all(self, tag: int) -> tuple[Tlv, ...]:
        """Every descendant with `tag`, depth-first."""
        found: list[Tlv] = []
        for child in self.children:
            if child.tag == tag:
                found.append(child)
            found.extend(child.find_all(tag))
        return tuple(found)


def primitive(tag: int, value: bytes) -> Tlv:
    """A primitive data object; EncodeError for a constructed tag."""
    if is_constructed(tag):
        raise EncodeError(f"tag {tag_hex(tag)} is constructed: use constructed()")
    tag_bytes(tag)
    return Tlv(tag, bytes(value))


def constructed(tag: int, *children: Tlv) -> Tlv:
    """A template holding `children` (its value is their encoding)."""
    if not is_constructed(tag):
        raise EncodeError(f"tag {tag_hex(tag)} is primitive: use primitive()")
    tag_bytes(tag)
    return Tlv(tag, encode(*children), tuple(children))


def _length_bytes(length: int) -> bytes:
    """Minimal length field (ISO 7816-4 5.2.2.2), by hand: equal to `_length_with_format`."""
    if length < _LONG_FORM:
        return bytes((length,))
    if length <= 0xFF:
        return bytes((0x81, length))
    if length <= MAX_LENGTH:
        return bytes((0x82, length >> 8, length & 0xFF))
    raise EncodeError(f"value of {length} bytes exceeds {MAX_LENGTH}")


def _length_with_format(length: int) -> bytes:
    """The same length field through the construct formats (the reference)."""
    if length < _LONG_FORM:
        return bytes((length,))
    for limit, fmt in _LONG_HEADERS:
        if length <= limit:
            return bytes(fmt.build({"n": length}))
    raise EncodeError(f"value of {length} bytes exceeds {MAX_LENGTH}")


def encode(*items: Tlv) -> bytes:
    """Encode data objects with minimal lengths and no padding."""
    out = bytearray()
    for item in items:
        out += tag_bytes(item.tag)
        out += _length_bytes(len(item.value))
        out += item.value
    return bytes(out)


def _length_with_format_parse(data: bytes) -> int:
    """A long length field's value through the construct format (the reference)."""
    return int(_LONG_LENGTHS[data[0]].parse(data[1:]))


def _decode_item(data: bytes, pos: int, end: int, depth: int, max_depth: int) -> tuple[Tlv, int]:
    """One TLV at `pos` (never a padding byte): tag, length and value, checked, inline."""
    start = pos
    first = data[pos]
    pos += 1
    if first & _MORE_TAG_BYTES != _MORE_TAG_BYTES:
        tag = first
    elif pos < end and not data[pos] & 0x80:  # a two-byte tag: read_tag's first pass, inline
        tag = first << 8 | data[pos]
        pos += 1
    else:
        tag, pos = read_tag(data, start, end)
    if pos >= end:
        raise DecodeError(f"length of tag {tag_hex(tag)} missing", pos)
    length = data[pos]
    if length < _LONG_FORM:
        pos += 1
    else:
        if length not in _LONG_LENGTHS:
            kind = "indefinite length" if length == _LONG_FORM else f"length form {length:02X}"
            raise DecodeError(f"{kind} not allowed for tag {tag_hex(tag)}", pos)
        size = length - _LONG_FORM
        if pos + 1 + size > end:
            raise DecodeError(f"length of tag {tag_hex(tag)} runs past the end", pos)
        length = int.from_bytes(data[pos + 1 : pos + 1 + size], "big")
        pos += 1 + size
    vend = pos + length
    if vend > end:
        raise DecodeError(
            f"value of tag {tag_hex(tag)} runs past the end (needs {length}, has {end - pos})", pos
        )
    # b6 of the first tag byte (is_constructed; the first byte is never 00 here)
    if first & _CONSTRUCTED_BIT or tag in PRIVATE_TEMPLATES:
        if depth >= max_depth:
            raise DecodeError(
                f"templates nested deeper than {max_depth} at tag {tag_hex(tag)}", start
            )
        children = _decode_range(data, pos, vend, depth + 1, max_depth)
        return Tlv(tag, data[pos:vend], children), vend
    return Tlv(tag, data[pos:vend]), vend


def _decode_range(data: bytes, pos: int, end: int, depth: int, max_depth: int) -> tuple[Tlv, ...]:
    items: list[Tlv] = []
    while pos < end:  # every pass consumes at least one byte
        if data[pos] in _PADDING:
            pos += 1
            continue
        item, pos = _decode_item(data, pos, end, depth, max_depth)
        items.append(item)
    return tuple(items)


def decode(data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> tuple[Tlv, ...]:
    """Decode a sequence of TLVs (00/FF padding skipped); DecodeError on malformed input."""
    data = bytes(data)
    return _decode_range(data, 0, len(data), 0, max_depth)


def decode_one(data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Tlv:
    """Decode exactly one TLV with nothing before or after it."""
    data = bytes(data)
    if not data:
        raise DecodeError("no TLV in empty data", 0)
    if data[0] in _PADDING:  # EMV Book 3 Annex B: 00 and FF never start a tag
        raise DecodeError(f"padding byte {data[0]:02X} where a tag must start", 0)
    item, end = _decode_item(data, 0, len(data), 0, max_depth)
    if end != len(data):
        raise DecodeError(f"{len(data) - end} trailing bytes after tag {tag_hex(item.tag)}", end)
    return item


def flat_values(data: bytes, tag: int) -> tuple[bytes, dict[int, bytes]] | None:
    """The fast path of `decode_one` for a flat template: its value and children's, or None.

    Only a one-byte constructed `tag` holding primitive TLVs (tags of one or two bytes),
    no padding, no tag twice and nothing after it takes this path; for anything else the
    answer is None and the caller decodes in full (which gives the same values, or the
    DecodeError). Bounded: each pass consumes at least two bytes.
    """
    data = bytes(data)
    end = len(data)
    if end < 2 or data[0] != tag or not tag & _CONSTRUCTED_BIT:
        return None
    if tag & _MORE_TAG_BYTES == _MORE_TAG_BYTES:
        return None
    length = data[1]
    pos = 2
    if length >= _LONG_FORM:
        size = length - _LONG_FORM
        if size not in (1, 2) or end < 2 + size:
            return None
        length = int.from_bytes(data[2 : 2 + size], "big")
        pos += size
    if pos + length != end:
        return None
    start = pos
    values: dict[int, bytes] = {}
    while pos < end:
        first = data[pos]
        if first in _PADDING or first & _CONSTRUCTED_BIT:
            return None
        pos += 1
        child = first
        if first & _MORE_TAG_BYTES == _MORE_TAG_BYTES:
            if pos >= end or data[pos] & 0x80:
                return None
            child = first << 8 | data[pos]
            pos += 1
        if pos >= end or child in PRIVATE_TEMPLATES or child in values:
            return None
        length = data[pos]
        pos += 1
        if length >= _LONG_FORM:
            size = length - _LONG_FORM
            if size not in (1, 2) or pos + size > end:
                return None
            length = int.from_bytes(data[pos : pos + size], "big")
            pos += size
        if pos + length > end:
            return None
        values[child] = data[pos : pos + length]
        pos += length
    return data[start:], values


def encode_primitive(tag: int, value: bytes) -> bytes:
    """`encode(primitive(tag, value))` without building the tree: the same bytes and errors."""
    if is_constructed(tag):
        raise EncodeError(f"tag {tag_hex(tag)} is constructed: use constructed()")
    raw = tag_bytes(tag)
    value = bytes(value)
    return raw + _length_bytes(len(value)) + value


def encode_template(tag: int, *encoded: bytes) -> bytes:
    """`encode(constructed(tag, *children))` from the children already encoded (the same
    bytes and errors, provided each child was encoded in order)."""
    if not is_constructed(tag):
        raise EncodeError(f"tag {tag_hex(tag)} is primitive: use primitive()")
    raw = tag_bytes(tag)
    value = b"".join(encoded)
    return raw + _length_bytes(len(value)) + value
