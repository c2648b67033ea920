"""Durable card state (PROTOCOL.md §6, §9): commit() returns only once the state is stored.

FileStateStore writes `state.json` whole or not at all: a temp file in the same folder,
fsync, rename over the old file, fsync the folder. A kill at any moment leaves the old or
the new state, never a torn one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final, Protocol

from applet.errors import StateFileError
from applet.state import MAX_STATE_TEXT, CardState, state_from_json, state_to_json

STATE_FILE: Final = "state.json"


class StateStore(Protocol):
    """Where a card keeps its state between power-offs."""

    def load(self) -> CardState:
        """The stored state (a fresh card's when none is stored yet)."""
        ...

    def commit(self, state: CardState) -> None:
        """Store `state` durably; return only when it is stored, raise otherwise."""
        ...


class MemoryStateStore:
    """A store in memory (tests, vectors, profiles): `commits` counts the commits."""

    def __init__(self, state: CardState | None = None) -> None:
        self.state = state if state is not None else CardState()
        self.commits = 0

    def load(self) -> CardState:
        """The state last committed."""
        return self.state

    def commit(self, state: CardState) -> None:
        """Keep `state`."""
        self.state = state
        self.commits += 1


class FileStateStore:
    """`<folder>/state.json`, replaced atomically on every commit."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / STATE_FILE

    def load(self) -> CardState:
        """Read state.json; a missing file is a fresh card; StateFileError if unreadable."""
        try:
            with self.path.open("rb") as f:
                raw = f.read(MAX_STATE_TEXT + 1)
        except FileNotFoundError:
            return CardState()
        except OSError as exc:
            raise StateFileError(str(self.path), f"cannot read ({exc.strerror})") from None
        try:
            return state_from_json(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise StateFileError(str(self.path), f"bad card state: {exc}") from None

    def commit(self, state: CardState) -> None:
        """Write a temp file, fsync it, rename it over state.json, fsync the folder."""
        data = state_to_json(state).encode("utf-8")
        tmp = self.folder / f".{STATE_FILE}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:  # bounded: each write takes at least one byte
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
