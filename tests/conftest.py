"""Every test keeps its files to itself: the spool's other folders ($XDG_STATE_HOME, and the
system's temporary folder as the last resort) point into folders of the test's own, beside
its tmp_path (which a test may use as a card or home folder and list)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_state_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path_factory.mktemp("system-tmp")))
