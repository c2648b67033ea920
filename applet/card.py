"""The card interface every transport and server uses: three methods."""

from __future__ import annotations

from typing import Protocol


class Card(Protocol):
    """A card as a reader sees it: power, APDUs, and losing the field."""

    def power_on(self) -> bytes:
        """Reset and answer the ATR; the applet is back in IDLE."""
        ...

    def process(self, apdu: bytes) -> bytes:
        """Any bytes in, a response APDU (data + SW1 SW2) out; never raises."""
        ...

    def deactivate(self, reason: str) -> None:
        """Power off, deselect or field lost: back to IDLE (durable state is kept)."""
        ...
