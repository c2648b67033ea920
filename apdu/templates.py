"""Template reading shared by the message codecs (PROTOCOL.md §7 check 1): one template,
its mandatory tags, no tag twice, nothing around it but `00`/`FF` padding (PROTOCOL.md §1:
BER-TLV as ISO/IEC 7816-4 5.2 and EMV Book 3 Annex B, which allow it before, between and
after data objects). Every failure is a DecodeError naming the tag.
"""

from __future__ import annotations

from collections.abc import Mapping

from apdu import tlv
from apdu.errors import DecodeError, EncodeError
from apdu.tlv import Tlv, tag_hex


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
            raise DecodeError(
                f"tag {tag_hex(child.tag)} repeated in template {tag_hex(node.tag)}", 0
            )
        seen.add(child.tag)
        stack.extend(child.children)


def template(data: bytes, tag: int, repeatable: frozenset[int] = frozenset()) -> Tlv:
    """Exactly one template `tag`, only padding around it, no repeated tag."""
    items = tlv.decode(data)
    if len(items) != 1:
        found = " ".join(tag_hex(item.tag) for item in items[:4]) or "none"
        raise DecodeError(f"one template {tag_hex(tag)} expected, found {len(items)} ({found})", 0)
    item = items[0]
    if item.tag != tag:
        raise DecodeError(f"template {tag_hex(tag)} missing (found tag {tag_hex(item.tag)})", 0)
    check_unique(item, repeatable)
    return item


def field(node: Tlv, tag: int, sizes: range | None = None) -> Tlv:
    """The mandatory child `tag` of `node`, with a value size in `sizes`."""
    for child in node.children:
        if child.tag == tag:
            if sizes is not None and len(child.value) not in sizes:
                raise DecodeError(
                    f"tag {tag_hex(tag)} has {len(child.value)} bytes, "
                    f"expected {sizes.start}..{sizes.stop - 1}",
                    0,
                )
            return child
    raise DecodeError(f"mandatory tag {tag_hex(tag)} missing from template {tag_hex(node.tag)}", 0)


def tags_in(data: bytes, tag: int) -> list[int]:
    """Every tag inside the template `tag` that `data` holds (what `template` accepts)."""
    flat = tlv.flat_values(data, tag)
    if flat is not None:
        return list(flat[1])
    tags: list[int] = []
    stack = list(template(data, tag).children)
    while stack:  # bounded: the decoded tree is finite
        child = stack.pop()
        tags.append(child.tag)
        stack.extend(child.children)
    return tags


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
