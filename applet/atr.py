"""The ATR our emulated card presents (PC/SC part 3, 3.1.3.2.3: contactless ISO 14443-4 card).

A contactless reader builds `3B 8n 80 01 <historical bytes> TCK` for an ISO 14443-4 card.
Android host card emulation presents no historical bytes, so neither do we: `3B 80 80 01 01`.
TD1 = `80` announces T=0 and TD2 = `01` announces T=1, so tools that force T=0 still connect.
"""

from __future__ import annotations


def contactless_atr(historical: bytes = b"") -> bytes:
    """Build `3B 8n 80 01 <historical> TCK` (ISO/IEC 7816-3 8.2; TCK = XOR of T0..last byte)."""
    if len(historical) > 15:
        raise ValueError("an ATR holds at most 15 historical bytes")
    body = bytes([0x80 | len(historical), 0x80, 0x01]) + historical
    tck = 0
    for byte in body:
        tck ^= byte
    return b"\x3b" + body + bytes([tck])


ATR = contactless_atr()
