"""Random runs of payments over a disk whose flushes fail, whose page cache forgets what a
failed flush did not write, and whose power goes (PROTOCOL.md §6, §9; applet/store.py):
every answer that leaves is stored, no ATC answers two transactions, no used credit is
lost, and the card pays again once the disk works."""

from __future__ import annotations

import errno
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import pytest

from apdu import messages as m
from applet import payment
from applet.payment import CardEnv, PaymentApplet
from applet.runtime import CardRuntime
from applet.state import MAX_LAST_ANSWERS, CardState, answer_cid_atc
from applet.store import STATE_FILE, FileStateStore
from authority.authorization import sign_authorization
from authority.errors import SigningFaultError

SELECT_AID = m.select(m.CREDIT_AID).to_bytes()
SCRIPTS = (("sel", "gpo", "gac"), ("gpo", "gac"), ("gac",), ("sel", "gpo", "gpo", "gac", "gac"))


class PageCacheDisk:
    """One file as Linux keeps it: a write dirties its pages; a flush that succeeds puts
    them on the disk; one that fails puts a random part of each there and marks them clean
    (a read still shows them until `evict`); `crash` leaves what the disk holds."""

    def __init__(self, path: Path, rng: random.Random, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = path
        self.rng = rng
        self.image = bytearray(path.read_bytes())
        self.dirty: list[tuple[int, int]] = []
        self.dropped: list[tuple[int, int]] = []
        self.fail_rate = 0.0
        pwrite, flush = os.pwrite, os.fdatasync

        def watched_pwrite(fd: int, data: Any, offset: int) -> int:
            done = pwrite(fd, data, offset)
            self.dirty.append((offset, done))
            return done

        def failing_flush(fd: int) -> None:
            now = path.read_bytes()
            if self.rng.random() < self.fail_rate:
                for offset, size in self.dirty:
                    cut = offset + self.rng.randint(0, size)
                    self.image[offset:cut] = now[offset:cut]
                self.dropped += self.dirty
                self.dirty = []
                raise OSError(errno.EIO, "Input/output error")
            flush(fd)
            for offset, size in self.dirty:
                self.image[offset : offset + size] = now[offset : offset + size]
            self.dirty = []

        monkeypatch.setattr(os, "pwrite", watched_pwrite)
        monkeypatch.setattr(os, "fdatasync", failing_flush)

    def evict(self) -> None:
        """The cache drops the pages a failed flush left clean: a read shows the disk."""
        data = bytearray(self.path.read_bytes())
        for offset, size in self.dropped:
            data[offset : offset + size] = self.image[offset : offset + size]
        self.dropped = []
        self.path.write_bytes(bytes(data))

    def crash(self) -> None:
        """The power goes: the file holds what the disk held."""
        self.dirty, self.dropped = [], []
        self.path.write_bytes(bytes(self.image))

    def durable(self) -> CardState:
        """The state a power cut now would leave."""
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / STATE_FILE).write_bytes(bytes(self.image))
            return FileStateStore(Path(folder)).load()


class Watch:
    """What left the card, held against what the disk keeps."""

    def __init__(self, disk: PageCacheDisk) -> None:
        self.disk = disk
        self.gpo_atcs: set[int] = set()
        self.answers: dict[int, bytes] = {}
        self.approved: dict[int, int] = {}
        self.steps: list[object] = []

    def gpo(self, data: bytes) -> None:
        atc = m.parse_gpo_response(data).atc
        assert atc not in self.gpo_atcs, (self.steps, f"GPO answered ATC {atc} twice")
        self.gpo_atcs.add(atc)
        assert self.disk.durable().atc >= atc, (self.steps, f"ATC {atc} sent, not stored")

    def answer(self, answer: bytes, amount: int | None) -> None:
        sent = m.parse_generate_ac_response(answer)
        first = self.answers.setdefault(sent.atc, answer)
        assert first == answer, (self.steps, f"ATC {sent.atc} answered two transactions")
        stored = self.disk.durable()
        kept = {answer_cid_atc(a) for a in stored.last_answers}
        full = len(stored.last_answers) == MAX_LAST_ANSWERS
        assert (sent.cid, sent.atc) in kept or full, (self.steps, "answer sent, not stored")
        if sent.cid == 0x40 and amount is not None:
            self.approved[sent.atc] = amount
        assert stored.used >= sum(self.approved.values()), (self.steps, "used credit lost")


@pytest.mark.parametrize("seed", range(150))
def test_what_leaves_the_card_is_stored_whatever_the_disk_does(
    seed: int, env: CardEnv, term: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    FileStateStore(tmp_path).commit(CardState())
    disk = PageCacheDisk(tmp_path / STATE_FILE, rng, monkeypatch)
    sign = sign_authorization
    signing_fails = [0.0]

    def faulty_sign(*args: Any, **kwargs: Any) -> Any:
        if rng.random() < signing_fails[0]:
            raise SigningFaultError("the private operation failed its public-key check")
        return sign(*args, **kwargs)

    monkeypatch.setattr(payment, "sign_authorization", faulty_sign)

    def power_on() -> CardRuntime:
        card = CardRuntime(PaymentApplet(env), FileStateStore(tmp_path))
        card.power_on()
        return card

    card = power_on()
    watch = Watch(disk)
    for _ in range(40):
        disk.fail_rate = rng.choice([0.0, 0.0, 0.3, 0.6, 1.0])
        signing_fails[0] = rng.choice([0.0, 0.0, 0.5, 1.0])
        action = rng.choice(["pay", "pay", "pay", "df02", "crash", "evict", "reset"])
        watch.steps.append((action, disk.fail_rate, signing_fails[0]))
        if action == "crash":
            disk.crash()
            card = power_on()  # StateFileError: no intact slot, the state lost
        elif action == "evict":
            disk.evict()
        elif action == "reset":
            card.power_on()
        elif action == "df02":
            data, sw = term.exchange(card, m.get_data(0xDF02).to_bytes())
            watch.steps.append(f"DF02 {sw:04X}")
            if sw == 0x9000:
                watch.answer(m.parse_last_answer(data).answer, None)
        else:
            amount = rng.randint(1, 50)
            for name in rng.choice(SCRIPTS):
                commands = {
                    "sel": SELECT_AID,
                    "gpo": term.gpo(amount),
                    "gac": term.generate_ac(amount),
                }
                data, sw = term.exchange(card, commands[name])
                watch.steps.append(f"{name} {sw:04X}")
                if sw == 0x9000 and name == "gpo":
                    watch.gpo(data)
                elif sw == 0x9000 and name == "gac":
                    watch.answer(data, amount)
    disk.fail_rate = signing_fails[0] = 0.0
    disk.evict()
    card.power_on()
    for command in (SELECT_AID, term.gpo(1), term.generate_ac(1)):
        data, sw = term.exchange(card, command)
        assert sw == 0x9000, (watch.steps, f"{sw:04X} once the disk works")
    watch.answer(data, 1)
