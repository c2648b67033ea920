"""The two errors of the codec layer: every malformed input raises DecodeError (PROTOCOL.md §1)."""

from __future__ import annotations


class DecodeError(ValueError):
    """Malformed bytes: `reason` says what is wrong, `offset` where (index into the input)."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(f"{reason} at offset {offset}")
        self.reason = reason
        self.offset = offset


class EncodeError(ValueError):
    """A model that has no valid encoding (a field out of range, a value too long)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
