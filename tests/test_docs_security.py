"""docs/security.md makes each point once: the torn payment a card pays elsewhere first was
stated twice under "What it does not protect", in two bullets of other titles."""

from __future__ import annotations

import re
from pathlib import Path

SECURITY = Path(__file__).resolve().parents[1] / "docs" / "security.md"


def _bullets(section: str) -> list[str]:
    """The bullets of a `## section` of docs/security.md, each as one line of text."""
    text = SECURITY.read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [" ".join(b.split()) for b in re.split(r"^- ", body, flags=re.MULTILINE)[1:]]


def test_what_it_does_not_protect_names_the_torn_payment_once() -> None:
    bullets = _bullets("What it does not protect")
    titles = [b.split("**")[1] for b in bullets]
    assert len(titles) == len(set(titles)) >= 5
    torn = [b for b in bullets if "torn payment" in b.lower()]
    assert len(torn) == 1, torn
    assert "DF02" in torn[0] and "reconciliation" in torn[0]
