"""Discovery templates: PPSE and PSE FCIs and the PSE directory record (PROTOCOL.md §3)."""

from __future__ import annotations

from dataclasses import dataclass

from apdu import tlv
from apdu.errors import DecodeError, EncodeError
from apdu.templates import byte_field, field, template
from apdu.tlv import Tlv, constructed, primitive, tag_hex

AID_SIZES = range(5, 17)  # ISO 7816-5
LABEL_SIZES = range(17)
MAX_ENTRIES = 16


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """One application in a PPSE FCI or PSE record: 61{4F AID, 50 label, 87 priority}."""

    aid: bytes
    label: bytes
    priority: int


def _entry_tlv(entry: DirectoryEntry) -> Tlv:
    if len(entry.aid) not in AID_SIZES:
        raise EncodeError(f"AID of {len(entry.aid)} bytes, expected 5..16")
    return constructed(
        0x61,
        primitive(0x4F, entry.aid),
        primitive(0x50, entry.label),
        primitive(0x87, byte_field(entry.priority, "priority")),
    )


def _parse_entries(node: Tlv) -> tuple[DirectoryEntry, ...]:
    entries = tuple(
        DirectoryEntry(
            field(child, 0x4F, AID_SIZES).value,
            field(child, 0x50, LABEL_SIZES).value,
            field(child, 0x87, range(1, 2)).value[0],
        )
        for child in node.children
        if child.tag == 0x61
    )
    if not entries:
        raise DecodeError(f"mandatory tag 61 missing from template {tag_hex(node.tag)}", 0)
    if len(entries) > MAX_ENTRIES:
        raise DecodeError(f"more than {MAX_ENTRIES} directory entries", 0)
    return entries


@dataclass(frozen=True, slots=True)
class PpseFci:
    """SELECT PPSE answer: 6F{84 name, A5{BF0C{61{...}...}}} (PROTOCOL.md §3)."""

    df_name: bytes
    entries: tuple[DirectoryEntry, ...]


def build_ppse_fci(m: PpseFci) -> bytes:
    """Encode a PPSE FCI."""
    bf0c = constructed(0xBF0C, *(_entry_tlv(e) for e in m.entries))
    return tlv.encode(constructed(0x6F, primitive(0x84, m.df_name), constructed(0xA5, bf0c)))


def parse_ppse_fci(data: bytes) -> PpseFci:
    """Decode a PPSE FCI."""
    root = template(data, 0x6F, frozenset({0x61}))
    bf0c = field(field(root, 0xA5), 0xBF0C)
    return PpseFci(field(root, 0x84).value, _parse_entries(bf0c))


@dataclass(frozen=True, slots=True)
class PseFci:
    """SELECT PSE answer: 6F{84 name, A5{88 SFI}} (PROTOCOL.md §3)."""

    df_name: bytes
    sfi: int


def build_pse_fci(m: PseFci) -> bytes:
    """Encode a PSE FCI."""
    if not 1 <= m.sfi <= 30:
        raise EncodeError(f"SFI {m.sfi} outside 1..30")
    a5 = constructed(0xA5, primitive(0x88, bytes((m.sfi,))))
    return tlv.encode(constructed(0x6F, primitive(0x84, m.df_name), a5))


def parse_pse_fci(data: bytes) -> PseFci:
    """Decode a PSE FCI."""
    root = template(data, 0x6F)
    sfi = field(field(root, 0xA5), 0x88, range(1, 2)).value[0]
    if not 1 <= sfi <= 30:
        raise DecodeError(f"tag 88 holds SFI {sfi}, outside 1..30", 0)
    return PseFci(field(root, 0x84).value, sfi)


@dataclass(frozen=True, slots=True)
class DirectoryRecord:
    """A record of the PSE directory: 70{61{...}...} (PROTOCOL.md §3)."""

    entries: tuple[DirectoryEntry, ...]


def build_directory_record(m: DirectoryRecord) -> bytes:
    """Encode a PSE directory record."""
    return tlv.encode(constructed(0x70, *(_entry_tlv(e) for e in m.entries)))


def parse_directory_record(data: bytes) -> DirectoryRecord:
    """Decode a PSE directory record."""
    return DirectoryRecord(_parse_entries(template(data, 0x70, frozenset({0x61}))))
