"""Response APDUs: data followed by SW1 SW2 (ISO 7816-4 5.1)."""

from __future__ import annotations

from dataclasses import dataclass

import construct as cs

from apdu.errors import DecodeError, EncodeError

# The trailer is the only fixed format of a response: SW1 SW2 as one big-endian word.
_TRAILER = cs.Struct("sw1" / cs.Int8ub, "sw2" / cs.Int8ub).compile()


@dataclass(frozen=True, slots=True)
class ResponseAPDU:
    """A response APDU: `data` then the status word `sw` (ISO 7816-4 5.1)."""

    data: bytes
    sw: int

    @classmethod
    def parse(cls, raw: bytes) -> ResponseAPDU:
        """Split data and status word; DecodeError when shorter than the two SW bytes."""
        if len(raw) < 2:
            raise DecodeError("response shorter than its 2-byte status word", len(raw))
        return cls(bytes(raw[:-2]), raw[-2] << 8 | raw[-1])  # equal to `parse_with_format`

    @classmethod
    def parse_with_format(cls, raw: bytes) -> ResponseAPDU:
        """The same split with the trailer read through its construct format (the reference)."""
        if len(raw) < 2:
            raise DecodeError("response shorter than its 2-byte status word", len(raw))
        trailer = _TRAILER.parse(raw[-2:])
        return cls(bytes(raw[:-2]), trailer.sw1 << 8 | trailer.sw2)

    def to_bytes(self) -> bytes:
        """The response as sent: data then SW1 SW2."""
        if not 0 <= self.sw <= 0xFFFF:
            raise EncodeError(f"status word {self.sw:#x} out of range")
        return self.data + bytes(_TRAILER.build({"sw1": self.sw >> 8, "sw2": self.sw & 0xFF}))

    @property
    def sw1(self) -> int:
        """The first status byte."""
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        """The second status byte."""
        return self.sw & 0xFF
