"""Many `hcepay` processes changing one home at once lose nothing (authority/home.py
hold_home): every revocation is kept, every authority key reaches the terminal's store,
and license serials stay unique (PROTOCOL.md §5.1).

Each command runs in a forked process of its own; a barrier lets them all go at the same
moment, so that without the home's lock their read-modify-writes overlap.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from authority.home import (
    LOCK_FILE,
    allocate_serial,
    ca_private_path,
    cards_dir,
    hold_home,
    serials_path,
)
from authority.keystore import KeyStore, load_keystore, save_keystore
from authority.rsa import RsaPrivateKey
from reader.cli import app

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork"),
    # Python 3.12+ warns when a process with threads forks; the children run one command.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]

Runner = Callable[[list[list[str]]], list[tuple[int, str]]]


def _child(barrier: Any, argv: list[str], out: Path) -> None:
    """Run one `hcepay` command once every sibling is ready; exit with its code."""
    code: Any = 70
    with out.open("w", encoding="utf-8") as sink:
        sys.stdout = sys.stderr = sink
        try:
            barrier.wait(timeout=60)
            app(args=argv, prog_name="hcepay")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:
            print(f"child: {type(exc).__name__}: {exc}", file=sink)
        sink.flush()
    os._exit(code)


@pytest.fixture
def run_at_once(tmp_path: Path) -> Runner:
    """Run each argv in its own process, all at once; (exit code, output) of each."""
    ctx = multiprocessing.get_context("fork")

    def run(argvs: list[list[str]]) -> list[tuple[int, str]]:
        barrier = ctx.Barrier(len(argvs))
        outs = [tmp_path / f"out-{n}.txt" for n in range(len(argvs))]
        procs = [
            ctx.Process(target=_child, args=(barrier, argv, out))
            for argv, out in zip(argvs, outs, strict=True)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(120)
            if proc.exitcode is None:
                proc.kill()
                proc.join()
        return [
            (proc.exitcode if proc.exitcode is not None else -1, out.read_text())
            for proc, out in zip(procs, outs, strict=True)
        ]

    return run


@pytest.fixture
def fast_keys(monkeypatch: pytest.MonkeyPatch, ca_key: RsaPrivateKey) -> None:
    """Published test keys instead of new ones: no process is held back by key generation,
    so that all of them reach the home's files together."""
    # `authority init` and `card issue` import it when they run
    monkeypatch.setattr("authority.rsa.generate", lambda *args: ca_key)


def _ok(results: list[tuple[int, str]]) -> None:
    for code, out in results:
        assert code == 0, out


@pytest.mark.usefixtures("fast_keys")
def test_concurrent_revocations_are_all_kept(tmp_path: Path, run_at_once: Runner) -> None:
    home = tmp_path / "home"
    _ok(run_at_once([["authority", "init", "--home", str(home)]]))
    for batch in (range(11, 19), range(21, 29)):  # two rounds of eight at once
        results = run_at_once([["authority", "revoke", str(s), "--home", str(home)] for s in batch])
        _ok(results)
        assert sorted(out for _, out in results) == [f"serial {s} revoked\n" for s in batch]
    store = load_keystore(home)
    assert store.revoked == frozenset([*range(11, 19), *range(21, 29)])
    assert store.lookup(1) is not None
    assert sorted(p.name for p in (home / "terminal").iterdir()) == [
        "ca-01.pub.pem",
        "keystore.json",
    ]  # no temp file left


@pytest.mark.usefixtures("fast_keys")
def test_concurrent_issues_get_unique_serials(tmp_path: Path, run_at_once: Runner) -> None:
    home = tmp_path / "home"
    _ok(run_at_once([["authority", "init", "--home", str(home)]]))
    issue = ["card", "issue", "--limit", "100.00", "--bits", "1024", "--home", str(home)]
    accounts = [f"62001234567890{n:02d}" for n in range(12)]
    for batch in (accounts[:6], accounts[6:]):  # two rounds of six at once
        _ok(run_at_once([[*issue, "--account", account] for account in batch]))
    serials = sorted(
        json.loads((cards_dir(home) / a / "card.json").read_text())["serial"] for a in accounts
    )
    assert serials == list(range(1, 13))
    assert json.loads(serials_path(home).read_text()) == {"next_serial": 13}
    assert [p.name for p in serials_path(home).parent.iterdir() if p.name.endswith(".tmp")] == []


def _allocate_child(barrier: Any, home: Path, count: int, out: Path) -> None:
    """Take `count` serials with allocate_serial once every sibling is ready; write them."""
    code = 70
    try:
        barrier.wait(timeout=60)
        serials = [allocate_serial(home) for _ in range(count)]
        out.write_text(json.dumps(serials), encoding="utf-8")
        code = 0
    finally:
        os._exit(code)


def test_allocate_serial_alone_gives_unique_serials_across_processes(tmp_path: Path) -> None:
    """PROTOCOL.md §5.1: license serials are unique, also when processes issue at once.
    allocate_serial holds the home's lock around its read-modify-write itself, whoever
    calls it (not only the CLI, which holds the lock around a whole command)."""
    home = tmp_path / "home"
    ctx = multiprocessing.get_context("fork")
    children, count = 4, 25
    barrier = ctx.Barrier(children)
    outs = [tmp_path / f"serials-{n}.json" for n in range(children)]
    procs = [ctx.Process(target=_allocate_child, args=(barrier, home, count, o)) for o in outs]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    taken = sorted(serial for out in outs for serial in json.loads(out.read_text()))
    assert taken == list(range(1, children * count + 1))
    assert json.loads(serials_path(home).read_text()) == {"next_serial": children * count + 1}


@pytest.mark.usefixtures("fast_keys")
def test_concurrent_inits_of_distinct_indexes_all_reach_the_terminal(
    tmp_path: Path, run_at_once: Runner
) -> None:
    home = tmp_path / "home"
    init = ["authority", "init", "--home", str(home), "--index"]
    for batch in ([1, 2, 3, 4], [5, 6, 7, 8]):  # two rounds of four at once
        _ok(run_at_once([[*init, f"{i:02X}"] for i in batch]))
        assert sorted(load_keystore(home).keys) == list(range(1, batch[-1] + 1))
    assert all(ca_private_path(home, i).is_file() for i in range(1, 9))
    assert json.loads(serials_path(home).read_text()) == {"next_serial": 1}
    assert (home / LOCK_FILE).is_file()


def test_a_held_home_is_a_one_line_error(
    tmp_path: Path, run_at_once: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another process holds the home past the wait, a change fails in one line and
    changes nothing."""
    home = tmp_path / "home"
    monkeypatch.setattr("authority.home.LOCK_WAIT", 0.2)
    with hold_home(home):
        [(code, out)] = run_at_once([["authority", "revoke", "5", "--home", str(home)]])
    assert code == 2
    assert out == f"hcepay: error: {home}: another hcepay is changing this home; try again\n"
    assert not (home / "terminal").exists()
    save_keystore(home, KeyStore())  # revoke needs a key store (authority init makes one)
    _ok(run_at_once([["authority", "revoke", "5", "--home", str(home)]]))  # let go: works
    assert load_keystore(home).revoked == {5}
