"""Kill the card at random moments (PROTOCOL.md §6, §9; applet/store.py).

A forked child runs payments in a loop against a file-backed card and appends each response
it has received to a log; the parent SIGKILLs it at a random moment, 250 times. After each
kill the stored state loads, the ATC never goes back nor below a received GPO's, and the
used credit equals the approvals the child received plus the torn ones: at most one per kill,
the newest answer the card stored but the child never got (kept for GET DATA DF02, §9).
"""

from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import pytest

from apdu import messages as m
from applet.payment import CardEnv, PaymentApplet
from applet.runtime import CardRuntime
from applet.state import CardState, answer_cid_atc
from applet.store import FileStateStore

KILLS = 250
LIMIT = 10**9
OVER_LIMIT = 10**10  # always declined
MAX_PAYMENTS = 100_000


def child(folder: Path, log: Path, env: CardEnv, term: Any, seed: int) -> NoReturn:
    """Payments until killed; each received response is logged after it arrives."""
    code = 0
    try:
        rng = random.Random(seed)
        card = CardRuntime(PaymentApplet(env), FileStateStore(folder))
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        for _ in range(MAX_PAYMENTS):
            amount = OVER_LIMIT if rng.random() < 0.2 else rng.randint(1, 5000)
            card.power_on()
            term.exchange(card, m.select(m.CREDIT_AID).to_bytes())
            data, sw = term.exchange(card, term.gpo(amount))
            if sw != 0x9000:
                break
            os.write(fd, f"G {m.parse_gpo_response(data).atc}\n".encode())
            data, sw = term.exchange(card, term.generate_ac(amount))
            answer = m.parse_generate_ac_response(data)
            os.write(fd, f"A {answer.atc} {answer.cid} {amount}\n".encode())
    except BaseException:  # reported through the exit code
        code = 1
    os._exit(code)


def read_log(log: Path) -> tuple[int, dict[int, int]]:
    """(highest ATC received, {ATC: amount} of the approvals received)."""
    highest, approved = 0, {}
    text = log.read_text(encoding="ascii") if log.exists() else ""
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            continue  # a line cut by the kill: its answer counts through the card's own list
        kind, atc, *rest = line.split()
        highest = max(highest, int(atc))
        if kind == "A" and int(rest[0]) == 0x40:
            approved[int(atc)] = int(rest[1])
    return highest, approved


def stored_approvals(state: CardState) -> dict[int, int]:
    """{ATC: amount} of the approvals among the card's last answers (PROTOCOL.md §9)."""
    found = {}
    for last in state.last_answers:
        cid, atc = answer_cid_atc(last)
        if cid == 0x40:
            found[atc] = int(last.cdol1_data[:6].hex())
    return found


@pytest.mark.slow
# Python 3.12+ warns when a process with threads forks; the card's commit thread may run
# (started by an earlier test) and the child does not need it: it starts its own.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_kill_at_random_moments(tmp_path: Path, env: CardEnv, term: Any) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("needs fork")
    env = CardEnv(replace(env.data, limit=LIMIT), env.app_key)
    folder, log = tmp_path / "card", tmp_path / "received.log"
    folder.mkdir()
    rng = random.Random(20261129)
    last_atc, kills_during_payments = 0, 0
    torn: dict[int, int] = {}  # approvals stored by the card whose answer the child never got
    for kill in range(KILLS):
        pid = os.fork()
        if pid == 0:
            child(folder, log, env, term, kill)
        time.sleep(rng.uniform(0.0, 0.08))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), f"child ended by itself (status {status}) at kill {kill}"

        state = FileStateStore(folder).load()
        highest, received = read_log(log)
        assert state.atc >= last_atc, f"ATC went back at kill {kill}"
        assert state.atc >= highest, "a GPO answer left the card before its ATC was stored"
        stored = stored_approvals(state)
        for atc, amount in received.items():
            assert stored.get(atc, amount) == amount
        torn_now = {a: v for a, v in stored.items() if a not in received and a not in torn}
        assert len(torn_now) <= 1 and all(a == state.atc for a in torn_now)
        torn.update(torn_now)
        assert state.used == sum(received.values()) + sum(torn.values())
        kills_during_payments += state.atc > last_atc
        last_atc = state.atc
    assert kills_during_payments > KILLS // 2  # the kills did land inside payments
