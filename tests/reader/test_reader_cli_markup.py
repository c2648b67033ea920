"""What a user or a file supplies is printed as it is, never read as rich markup or emoji."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reader.cli import app
from reader.cli_pay import make_demo_home

ROOT = Path(__file__).resolve().parents[2]
APPROVE = ROOT / "vectors" / "card" / "card-approve-basic.json"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})
    return result.exit_code, result.output


@pytest.fixture
def odd_home(tmp_path: Path) -> Path:
    """A demo home whose path holds markup, a closing tag and an emoji code."""
    home = tmp_path / "pos [/shop] [red]x :smile:"
    make_demo_home(home)
    return home


def test_log_and_authority_show_print_the_home_as_it_is(odd_home: Path) -> None:
    code, out = _run("pay", "--home", str(odd_home), "--amount", "1.00")
    assert code == 0, out
    code, out = _run("log", "--home", str(odd_home))
    assert code == 0, out
    assert "[/shop] [red]x :smile:" in out
    code, out = _run("authority", "show", "--home", str(odd_home))
    assert code == 0, out
    assert "[/shop] [red]x :smile:" in out


@pytest.mark.parametrize("name", ["a[/b]c.json", "shop[red]1.json"])
def test_vectors_record_names_the_file_it_wrote(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    out.parent.mkdir(exist_ok=True)  # a[/b]c.json is b]c.json in the folder a[
    code, text = _run("vectors", "record", "--out", str(out), "--amount", "1.00")
    assert code == 0, text
    assert out.is_file() and f"wrote {out}:" in text


def test_a_vector_name_with_markup_replays(tmp_path: Path) -> None:
    doc = json.loads(APPROVE.read_text(encoding="utf-8"))
    doc["name"] = "[/evil] [bold]x"
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    code, out = _run("vectors", "replay", str(path))
    assert code == 0, out
    assert "[/evil] [bold]x" in out


def test_reader_names_are_printed_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    pcsc = pytest.importorskip("reader.pcsc")
    odd = pcsc.ReaderInfo(0, "Reader [/x] [red]y", None)
    monkeypatch.setattr(pcsc, "list_readers", lambda: [odd])
    code, out = _run("readers")
    assert code == 0, out
    assert "Reader [/x] [red]y" in out
