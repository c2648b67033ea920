"""The card side of hcepay: an HCE-style credit payment applet as a sans-IO state machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from applet.runtime import CardRuntime
    from applet.store import StateStore


def open_card(folder: Path, store: StateStore | None = None) -> CardRuntime:
    """A file-backed card ready to serve (applet/profile.py `open_card`)."""
    from applet.profile import open_card as _open_card

    return _open_card(folder, store)
