"""Template reading shared by the message codecs (PROTOCOL.md §7 check 1): one template,
its mandatory tags, no tag twice, nothing after it. Every failure is a DecodeError naming the tag.
"""

from __future__ import annotations

from collections.abc import Mapping

from apdu import tlv
from apdu.errors import DecodeError, EncodeError
from apdu.tlv import Tlv


def byte_field(value: int, what: str) -> bytes:
    """One byte holding `value`; EncodeError when it is not 0..255."""
    if not 0 <= value <= 0xFF:
        raise EncodeError(f"{what} {value} is not a byte")
    return bytes((value,))


def check_unique(node: Tlv, repeatable: frozenset[int] = frozenset()) -> None:
    """No tag twice anywhere in `node`; each `repeatable` entry is checked on its own."""
    seen: set[int] = set()
    stack = list(node.children)
    while stack:  # bounded: the decoded tree is finite and its depth bounded by tlv.decode
        child = stack.pop()
        if child.tag in repeatable:
            check_unique(child)
            continue
        if child.tag in seen:
            raise DecodeError(f"tag {child.tag:X} repeated in template {node.tag:X}", 0)
        seen.add(child.tag)
        stack.extend(child.children)


def template(data: bytes, tag: int, repeatable: frozenset[int] = frozenset()) -> Tlv:
    """Exactly one template `tag` and nothing after it, no repeated tag."""
    item = tlv.decode_one(data)
    if item.tag != tag:
        raise DecodeError(f"template {tag:X} missing (found tag {item.tag:X})", 0)
    check_unique(item, repeatable)
    return item


def field(node: Tlv, tag: int, sizes: range | None = None) -> Tlv:
    """The mandatory child `tag` of `node`, with a value size in `sizes`."""
    for child in node.children:
        if child.tag == tag:
            if sizes is not None and len(child.value) not in sizes:
                raise DecodeError(
                    f"tag {tag:X} has {len(child.value)} bytes, "
                    f"expected {sizes.start}..{sizes.stop - 1}",
                    0,
                )
            return child
    raise DecodeError(f"mandatory tag {tag:X} missing from template {node.tag:X}", 0)


def optional(node: Tlv, tag: int) -> Tlv | None:
    """The optional child `tag` of `node`, if present."""
    return next((child for child in node.children if child.tag == tag), None)


def flat_fields(
    data: bytes, tag: int, sizes: Mapping[int, range]
) -> tuple[bytes, dict[int, bytes]] | None:
    """The fast path of `template` and `field` for a flat template: its value and its
    children's values by tag, or None.

    None unless `data` is one flat template `tag` (tlv.flat_values) holding every tag of
    `sizes` with a value size in its range; then the caller takes the full path, which
    gives the same values or the DecodeError.
    """
    found = tlv.flat_values(data, tag)
    if found is None:
        return None
    values = found[1]
    for child, allowed in sizes.items():
        value = values.get(child)
        if value is None or len(value) not in allowed:
            return None
    return found
