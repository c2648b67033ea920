"""Complete in-process payments (durable card state and log) against a floor, same run.

The floor is what one payment cannot avoid, each part timed alone:
* RSA: the card's private operation (the authorization) and the terminal's two public
  operations (license, authorization recovery);
* flushes: the card stores its state twice (GPO: the ATC; GENERATE AC: the used credit), each
  one fdatasync of a slot written in place (applet/store.py); the terminal commits twice (the
  pending entry before GENERATE AC, the row after the checks), each one fdatasync of a WAL
  frame written into a WAL file that has wrapped (the steady state of a terminal's log: the
  payments are timed after a warm-up of 300 payments, past the first checkpoint).
Prints payments/s, the floor, the ratio (goal <= 1.3x) and where the rest goes, measured in
the same run: "writes + RSA" is one payment's durable writes made through the real code (the
card's two commits through applet/store.py, the pending entry and the row through
reader/log.py, on their own state.dat and log) and its RSA operations, in the payment's order
(the card's second commit overlapping its signature, and its commit thread then making the
next signature's blinding, as in applet/runtime.py), with no APDU and no check. The floor's
private operation makes its blinding itself, as a signature alone does. payment - (writes +
RSA) is what the protocol's work costs (APDUs, parsing, checks); (writes + RSA) - floor is
what making those writes costs beyond the bare flushes.
Then the payment step by step (each APDU as the card answers it, each log call, the terminal's
work in between), next to the same steps of the payment with nothing on disk: where each
step's time beyond its floor part goes. Then a cProfile of the payments. Two kernel lines
measure what the code cannot choose: a flush that starts a clock tick (the file's new mtime
is written too), and where a thread runs (each CPU in turn: a flush waited on from it, a
signature made on it while another CPU flushes).
Run: .venv/bin/python bench/payment.py [--count 200] [--warmup 300]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import partial
from pathlib import Path
from queue import SimpleQueue
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from timing import per_call_s  # noqa: E402

from applet.profile import load_app_key, load_profile, open_card  # noqa: E402
from applet.state import CardState, state_to_bytes  # noqa: E402
from applet.store import (  # noqa: E402
    SLOT_SIZE,
    FileStateStore,
    MemoryStateStore,
    StateStore,
    encode_slot,
)
from authority.keyfiles import load_public  # noqa: E402
from authority.keystore import AuthorityKey, KeyStore  # noqa: E402
from reader.flow import Env, Outcome, PaymentRequest, TerminalConfig, pay  # noqa: E402
from reader.log import TransactionLog  # noqa: E402
from reader.recovery import PendingEntry  # noqa: E402
from reader.transport import ChainingTransport, InProcessTransport, Transport  # noqa: E402

ROUNDS = 10
STEP_PAYMENTS = 200  # payments of the step table, after STEP_WARMUP more
STEP_WARMUP = 50
T = TypeVar("T")
LINUX_CLOCK_REALTIME_COARSE = 5  # the clock of file times (unnamed in Python 3.11's time)
WAL_FRAME = 24 + 4096  # a WAL frame: its header and one page
WAL_BYTES = 1000 * WAL_FRAME  # SQLite checkpoints at 1000 frames, then reuses the file
WARMUP = 300  # payments before timing: the log's WAL has wrapped (steady state)
PROFILE = ROOT / "vectors" / "profiles" / "test-card-1"
CFG = TerminalConfig("TERM0001", "MERCHANT0000001", 156)


INS_NAMES = {
    0xA4: "SELECT",
    0xA8: "GET PROCESSING OPTIONS",
    0xB2: "READ RECORD",
    0xAE: "GENERATE AC",
    0xC0: "GET RESPONSE",
    0xCA: "GET DATA",
}
FLOOR_PARTS = {  # what the floor counts for a step (the terminal's public RSA: other steps)
    "card: GET PROCESSING OPTIONS": "1 card flush",
    "card: GENERATE AC": "1 card flush + private RSA",
    "log: write_pending": "1 WAL flush",
    "log: record": "1 WAL flush",
}


class Stamps:
    """The (step, end time) pairs of one payment: each step ends where the next begins."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []

    def mark(self, step: str) -> None:
        self.marks.append((step, time.perf_counter()))

    def steps(self, start: float) -> list[tuple[str, float]]:
        """(step, duration) in order; a terminal step is named by the step it leads to."""
        out = []
        for (step, end), (following, _) in zip(
            self.marks, [*self.marks[1:], ("end", 0.0)], strict=True
        ):
            name = f"terminal, then {following}" if step == "terminal" else step
            out.append((name, end - start))
            start = end
        return out


class StampedTransport:
    """A transport that marks where each APDU starts and ends (below chaining: a GET
    RESPONSE is a step of its own)."""

    def __init__(self, inner: Transport, stamps: Stamps) -> None:
        self.inner, self.stamps, self.name = inner, stamps, inner.name

    def connect(self) -> bytes:
        return self.inner.connect()

    def transmit(self, command: bytes) -> bytes:
        self.stamps.mark("terminal")
        response = self.inner.transmit(command)
        self.stamps.mark(f"card: {INS_NAMES.get(command[1], f'INS {command[1]:02X}')}")
        return response

    def disconnect(self) -> None:
        self.inner.disconnect()


class StampedLog:
    """The transaction log, marking where each of its calls starts and ends."""

    def __init__(self, log: TransactionLog, stamps: Stamps) -> None:
        self.log, self.stamps = log, stamps

    def _call(self, name: str, call: Callable[[], T]) -> T:
        self.stamps.mark("terminal")
        result = call()
        self.stamps.mark(f"log: {name}")
        return result

    def write_pending(self, pending: PendingEntry, now: datetime) -> None:
        self._call("write_pending", lambda: self.log.write_pending(pending, now))

    def close_pending(self, pending: PendingEntry, outcome: str = "refused") -> None:
        self._call("close_pending", lambda: self.log.close_pending(pending, outcome))

    def pending(self) -> list[PendingEntry]:
        return self._call("pending", self.log.pending)

    def record(self, outcome: Outcome, *, later: bool = False) -> int:
        return self._call("record", lambda: self.log.record(outcome, later=later))


def step_times(
    card_dir: Path, store: StateStore, log: TransactionLog, keys: KeyStore, now: datetime
) -> list[tuple[str, list[float]]]:
    """Each step of `count` payments (the card of `card_dir` on `store`, the log `log`):
    (step, its durations), in the flow's order."""
    stamps = Stamps()
    card = open_card(card_dir, store)
    transport = ChainingTransport(StampedTransport(InProcessTransport(card), stamps))
    journal = StampedLog(log, stamps)
    runs: list[list[tuple[str, float]]] = []
    for index in range(STEP_PAYMENTS + STEP_WARMUP):
        stamps.marks.clear()
        start = time.perf_counter()
        pay(transport, CFG, PaymentRequest(1), Env(now, os.urandom(4)), keys, journal)
        stamps.mark("end")
        if index >= STEP_WARMUP:
            runs.append(stamps.steps(start))
    names = [name for name, _ in runs[0]]
    if any([name for name, _ in run] != names for run in runs):
        raise SystemExit("the payments took different steps: no step table")
    return [(name, [run[i][1] for run in runs]) for i, name in enumerate(names)]


def print_steps(
    on_disk: list[tuple[str, list[float]]],
    in_memory: list[tuple[str, list[float]]],
    floor_parts: dict[str, float],
) -> None:
    """The step table: each step's median on disk and in memory, the difference, and what
    the floor counts for it; then the durable steps and the others summed."""
    us = 1e6
    print(
        f"step by step (medians of {STEP_PAYMENTS} payments, us): on disk | the same step with "
        "nothing on disk | difference | the floor's part (timed alone)"
    )
    durable = [0.0, 0.0, 0.0]  # on disk, in memory, the floor's part
    other = [0.0, 0.0]
    for (name, disk), (_, memory) in zip(on_disk, in_memory, strict=True):
        a, b = statistics.median(disk), statistics.median(memory)
        part = floor_parts.get(name)
        print(
            f"  {name:44.44s} {a * us:7.1f} {b * us:7.1f} {(a - b) * us:+8.1f}"
            + (f"  {part * us:7.1f} ({FLOOR_PARTS[name]})" if part is not None else "")
        )
        if part is None:
            other[0] += a
            other[1] += b
        else:
            durable[0] += a
            durable[1] += b
            durable[2] += part
    print(
        f"  the 4 durable steps: {durable[0] * us:.1f} us, {durable[1] * us:.1f} us in memory, "
        f"{(durable[0] - durable[2]) * us:.1f} us beyond their floor parts; the other steps "
        f"{other[0] * us:.1f} us, {other[1] * us:.1f} us in memory "
        f"({other[0] / other[1]:.2f}x: the same code runs slower between flushes)"
    )


def timed_sum(fn: Callable[[], float], rounds: int) -> float:
    """Mean of the durations `fn` reports (it times only its own critical part)."""
    fn()
    return sum(fn() for _ in range(rounds)) / rounds


def in_place_fdatasync(path: Path, size: int, chunk: int, step: int) -> Callable[[], float]:
    """A flush timed alone: `chunk` bytes written in place (at offsets 0, step, 2 step...,
    wrapping before the end) into a `size`-byte file whose blocks exist, then fdatasync."""
    path.write_bytes(b"\0" * size)
    data = b"x" * chunk
    offset = [0]

    def run() -> float:
        fd = os.open(path, os.O_WRONLY)
        os.pwrite(fd, data, offset[0])
        offset[0] += step
        if offset[0] + chunk > size:
            offset[0] = 0
        start = time.perf_counter()
        os.fdatasync(fd)
        took = time.perf_counter() - start
        os.close(fd)
        return took

    return run


@dataclass(frozen=True)
class TickFlushes:
    """What a flush costs by where it falls in the clock tick (tick_flushes)."""

    tick_s: float  # the clock tick: the resolution of file timestamps
    new_tick_s: float  # median flush whose write is the file's first in a new tick
    same_tick_s: float  # median flush of the next write in that tick
    new_tick_kib: float | None  # KiB the disk was given per flush, None where unknown
    same_tick_kib: float | None


def _written_sectors(path: Path) -> Callable[[], int] | None:
    """The sectors written so far to the block device holding `path` (its stat file in
    /sys, Linux), or None where there is none to read."""
    st = os.stat(path)
    stat_file = Path(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/stat")
    try:
        stat_file.read_text()
    except OSError:
        return None
    return lambda: int(stat_file.read_text().split()[6])  # field 7: sectors written


def _kib(kib: float | None) -> str:
    """ " (N KiB to the disk)" for the kernel line, or nothing where it is unknown."""
    return "" if kib is None else f" ({kib:.0f} KiB to the disk)"


def tick_flushes(path: Path, pairs: int = 40) -> TickFlushes:
    """A flush that is the file's first write in a new clock tick, then the next one in
    that tick; timed, and counted in what reached the disk.

    File times move in clock ticks (the coarse clock): the first write to a file in a new
    tick changes its mtime, and fdatasync then writes the file's inode as well (ext4
    without a journal, as here: the disk is given one block more). A loop of bare flushes
    (the floor) mostly writes within one tick. Each pair starts right after a tick begins,
    with no idle time before it (so no device wake-up is timed)."""
    coarse = getattr(time, "CLOCK_REALTIME_COARSE", LINUX_CLOCK_REALTIME_COARSE)
    path.write_bytes(b"\0" * (2 * SLOT_SIZE))
    written = _written_sectors(path)
    times: tuple[list[float], list[float]] = ([], [])
    sectors = [0, 0]
    fd = os.open(path, os.O_WRONLY)
    try:
        os.fdatasync(fd)
        for _ in range(pairs):
            tick = time.clock_gettime_ns(coarse)
            while time.clock_gettime_ns(coarse) == tick:
                pass
            for which, offset in enumerate((0, SLOT_SIZE)):
                before = written() if written else 0
                os.pwrite(fd, b"x" * 512, offset)
                start = time.perf_counter()
                os.fdatasync(fd)
                times[which].append(time.perf_counter() - start)
                sectors[which] += (written() if written else 0) - before
    finally:
        os.close(fd)
    kib = [n * 512 / 1024 / pairs if written else None for n in sectors]
    return TickFlushes(
        time.clock_getres(coarse),
        statistics.median(times[0]),
        statistics.median(times[1]),
        kib[0],
        kib[1],
    )


def cpu_placement(
    path: Path, sign: Callable[[], object], pairs: int = 100
) -> list[tuple[int, float, float]] | None:
    """Per CPU this process may use: (cpu, median flush waited on from it, median extra time
    of a signature made on it while a thread on another CPU flushes, beyond handing that
    thread a job that does not flush). None with one CPU, or where threads cannot be pinned.

    Where a thread runs changes what a flush and an overlap cost: the CPU that takes the
    disk's completion interrupts wakes its own waiter at once, while another CPU's waiter
    needs a cross-CPU wake-up; a signature made on the interrupts' CPU shares it with the
    interrupt work. The payment does not pin its threads (the kernel places them, and that
    differs from machine to machine), so its flushes and overlap cost somewhere in between.
    This thread's CPU set is put back afterwards."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    path.write_bytes(b"\0" * (2 * SLOT_SIZE))
    jobs: SimpleQueue[tuple[int, bool, SimpleQueue[None]]] = SimpleQueue()

    def flush(fd: int, index: int) -> None:
        os.pwrite(fd, b"x" * 512, (index % 2) * SLOT_SIZE)
        os.fdatasync(fd)

    def flusher(fd: int) -> None:  # pins itself to the CPU each job names
        while True:  # ends on the job -1
            cpu, flushes, done = jobs.get()
            if cpu < 0:
                return
            os.sched_setaffinity(0, {cpu})
            if flushes:
                flush(fd, cpu)
            done.put(None)

    def timed(fn: Callable[[], object]) -> float:
        end = time.perf_counter() + 0.0005  # busy: the CPU stays awake, as in a payment
        while time.perf_counter() < end:
            pass
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    def overlapped(other: int, flushes: bool) -> None:
        done: SimpleQueue[None] = SimpleQueue()
        jobs.put((other, flushes, done))
        sign()
        done.get()

    fd = os.open(path, os.O_WRONLY)
    thread = threading.Thread(target=flusher, args=(fd,), daemon=True)
    thread.start()
    out = []
    try:
        for cpu in cpus:
            other = next(c for c in cpus if c != cpu)
            os.sched_setaffinity(0, {cpu})
            waits, handed, during = [], [], []
            for index in range(pairs):
                waits.append(timed(partial(flush, fd, index)))
                handed.append(timed(partial(overlapped, other, False)))
                during.append(timed(partial(overlapped, other, True)))
            extra = statistics.median(during) - statistics.median(handed)
            out.append((cpu, statistics.median(waits), extra))
    except OSError:
        return None
    finally:
        os.sched_setaffinity(0, cpus)
        jobs.put((-1, False, SimpleQueue()))
        thread.join()
        os.close(fd)
    return out


def writes_and_rsa(
    work: Path,
    card_state: CardState,
    row: Outcome,
    rsa_parts: dict[str, Callable[[], object]],
    prepare: Callable[[], None],
) -> tuple[Callable[[], None], Callable[[], None]]:
    """(one payment's durable writes and RSA operations with no protocol work, close).

    Its own state.dat (from the card's state, so the slot has the card's size) and its own
    log (rows like `row`, one per call, so the WAL wraps as the payments' does)."""
    store = FileStateStore(work)
    log = TransactionLog(work / "terminal.db")
    state = [card_state]
    padded = bytes.fromhex(row.account.ljust(20, "F"))
    atc = [0]

    def one() -> None:
        atc[0] += 1
        requested = replace(state[0], atc=min(state[0].atc + 1, 0xFFFF))
        store.commit(requested)  # GPO: the ATC
        rsa_parts["public_ca"]()  # the license
        log.write_pending(PendingEntry(padded, atc[0], row.cdol1_data, row.serial), row.time)
        store.commit_while(requested, rsa_parts["private"], state[0], prepare)  # GENERATE AC
        rsa_parts["public_app"]()  # the authorization
        log.record(replace(row, atc=atc[0]))
        state[0] = requested

    return one, log.close


def no_flush(
    card_dir: Path, keys: KeyStore, now: datetime
) -> tuple[Callable[[], None], Callable[[], None]]:
    """(one payment that never waits on the disk, close): the card of `card_dir` with its
    state in memory (MemoryStateStore), the log in an in-memory SQLite database."""
    card = open_card(card_dir, MemoryStateStore())
    transport = ChainingTransport(InProcessTransport(card))
    log = TransactionLog(Path(":memory:"))

    def one() -> None:
        pay(transport, CFG, PaymentRequest(1), Env(now, os.urandom(4)), keys, log)

    return one, log.close


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=WARMUP, help="payments before timing")
    args = parser.parse_args()
    count = max(10, min(args.count, 50_000))

    work = Path(tempfile.mkdtemp(prefix="hcepay-bench-"))
    try:
        card_dir = work / "card"
        card_dir.mkdir()
        for name in ("card.json", "app.pem", "app.pub.pem"):
            shutil.copy(PROFILE / name, card_dir / name)
        profile = load_profile(card_dir)
        app = load_app_key(card_dir, profile)
        ca = load_public(PROFILE / "ca-01.pub.pem")
        keys = KeyStore({1: AuthorityKey(1, ca, date(2099, 12, 31))})
        card = open_card(card_dir)  # FileStateStore: state.dat, two slots, fdatasync
        transport = ChainingTransport(InProcessTransport(card))
        now = datetime.now().replace(microsecond=0)

        x = int.from_bytes(b"\x6a" + b"\x55" * (app.public.size - 2) + b"\xbc", "big")
        sig = app.private_op(x)
        rsa_parts: dict[str, Callable[[], object]] = {
            "private": lambda: app.private_op(x),
            "public_app": lambda: pow(sig, app.public.e, app.public.n),
            "public_ca": lambda: pow(sig % ca.n, ca.e, ca.n),
        }
        with TransactionLog(work / "terminal.db") as log:

            def one() -> None:
                env = Env(now, os.urandom(4))
                pay(transport, CFG, PaymentRequest(1), env, keys, log)

            for _ in range(args.warmup):  # steady state: the WAL has wrapped, caches warm
                one()
            (skeleton_dir := work / "writes").mkdir()
            bare, close_bare = writes_and_rsa(
                skeleton_dir,
                card.state.card,
                next(log.rows(limit=1)).outcome,
                rsa_parts,
                app.prepare,
            )
            for _ in range(args.warmup):
                bare()
            in_memory, close_in_memory = no_flush(card_dir, keys, now)
            for _ in range(args.warmup):
                in_memory()
            # a slot as the card writes it now: 10 last answers kept as their inputs
            slot_bytes = len(encode_slot(0, state_to_bytes(card.state.card)))
            io_parts: dict[str, Callable[[], float]] = {
                # the card: a slot of state.dat, the two slots in turn (applet/store.py)
                "card": in_place_fdatasync(
                    work / "state.dat", 2 * SLOT_SIZE, slot_bytes, SLOT_SIZE
                ),
                # the log: one WAL frame in a WAL that has wrapped (SQLite reuses it from the
                # start after each checkpoint), flushed as SQLite's unix VFS does
                "wal": in_place_fdatasync(work / "wal.bin", WAL_BYTES, WAL_FRAME, WAL_FRAME),
            }
            # Interleaved rounds: payments and each floor part timed in the same window,
            # so that a busy shared disk weighs on both alike; medians over the rounds.
            batch = max(2, count // ROUNDS)
            names = ("payment", "writes", "no_flush", *rsa_parts, *io_parts)
            times: dict[str, list[float]] = {name: [] for name in names}
            for _ in range(ROUNDS):
                times["payment"].append(per_call_s(one, batch, repeats=1))
                times["writes"].append(per_call_s(bare, batch, repeats=1))
                times["no_flush"].append(per_call_s(in_memory, batch, repeats=1))
                for name, fn in rsa_parts.items():
                    times[name].append(per_call_s(fn, batch, repeats=1))
                for name, timed in io_parts.items():
                    times[name].append(timed_sum(timed, batch))

            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(min(count, 100)):
                one()
            profiler.disable()
            close_bare()
            close_in_memory()
            # the steps: a copy of the card as it is now (its state.dat goes on), the same log
            shutil.copytree(card_dir, steps_dir := work / "steps-card")
            on_disk = step_times(steps_dir, FileStateStore(steps_dir), log, keys, now)
            with TransactionLog(Path(":memory:")) as memory_log:
                in_memory_steps = step_times(card_dir, MemoryStateStore(), memory_log, keys, now)
            ticks = tick_flushes(work / "tick.bin")
            placement = cpu_placement(work / "placement.bin", rsa_parts["private"])
        median = {name: statistics.median(values) for name, values in times.items()}
        payment_s, private_s, writes_s = median["payment"], median["private"], median["writes"]
        public_app_s, public_ca_s = median["public_app"], median["public_ca"]
        card_s, wal_s, no_flush_s = median["card"], median["wal"], median["no_flush"]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rsa_s = private_s + public_app_s + public_ca_s
    fsyncs_s = 2 * card_s + 2 * wal_s
    floor_s = rsa_s + fsyncs_s
    ms = 1e3
    print(
        f"payments: {count} in {ROUNDS} interleaved rounds, complete in-process "
        "(durable card state + SQLite log)"
    )
    print(f"  payment      {payment_s * ms:8.3f} ms   {1 / payment_s:8.1f} payments/s")
    print(
        f"  floor        {floor_s * ms:8.3f} ms   {1 / floor_s:8.1f} payments/s"
        f"   (RSA {rsa_s * ms:.3f} ms: private {private_s * ms:.3f}, public "
        f"{public_app_s * ms:.3f} + {public_ca_s * ms:.3f}; fsyncs {fsyncs_s * ms:.3f} ms: "
        f"card 2 x slot of {slot_bytes} B {card_s * ms:.3f}, "
        f"log 2 x WAL {wal_s * ms:.3f})"
    )
    ratio = payment_s / floor_s
    print(f"  ratio        {ratio:8.2f}x  (goal <= 1.3x: {'met' if ratio <= 1.3 else 'not met'})")
    print(
        f"  writes + RSA {writes_s * ms:8.3f} ms   {writes_s / floor_s:8.2f}x the floor: the same "
        "durable writes through applet/store.py and reader/log.py and the same RSA, in the "
        "payment's order, no APDU"
    )
    print(
        f"  the rest     protocol work (APDUs, parsing, checks) {(payment_s - writes_s) * ms:.3f}"
        f" ms; making the writes beyond the bare flushes {(writes_s - floor_s) * ms:.3f} ms"
    )
    code_s = no_flush_s - rsa_s
    times_code = (
        f"{(payment_s - floor_s) / code_s:.2f}x" if code_s > 0 else "n/a: a noisy no-flush run"
    )
    print(
        f"  no flush     {no_flush_s * ms:8.3f} ms   the same payment, card state and log in "
        f"memory: beyond its RSA, the code costs {code_s * ms:.3f} ms when nothing waits in "
        f"between,\n               {(payment_s - floor_s) * ms:.3f} ms in the payment "
        f"(payment - floor: {times_code})"
    )
    print(
        f"  kernel       a flush whose write starts a clock tick (new mtime: the inode is written "
        f"too) {ticks.new_tick_s * ms:.3f} ms{_kib(ticks.new_tick_kib)}, the next one in that "
        f"tick {ticks.same_tick_s * ms:.3f} ms{_kib(ticks.same_tick_kib)};"
        f"\n               the floor's loops mostly flush within one tick ({ticks.tick_s * ms:.0f} "
        "ms); a payment starts a new tick for each of its two files every "
        f"~{ticks.tick_s / payment_s:.1f} payments"
    )
    if placement is None:
        print("  placement    n/a: one CPU, or threads cannot be pinned here")
    else:
        waits = ", ".join(f"CPU {cpu} {wait * ms:.3f} ms" for cpu, wait, _ in placement)
        extras = ", ".join(f"CPU {cpu} {extra * ms:+.3f} ms" for cpu, _, extra in placement)
        print(
            f"  placement    a flush waited on from {waits};\n               a signature "
            f"while a thread on another CPU flushes, made on {extras}\n               (the CPU "
            "that takes the disk's interrupts wakes its own waiter at once and shares its time "
            "with them;\n               the payment's threads go where the kernel puts them)"
        )
    print_steps(
        on_disk,
        in_memory_steps,
        {
            "card: GET PROCESSING OPTIONS": card_s,
            "card: GENERATE AC": card_s + private_s,
            "log: write_pending": wal_s,
            "log: record": wal_s,
        },
    )
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    raw = stats.stats  # type: ignore[attr-defined]
    calls = min(count, 100)
    io_names = (
        "posix.fsync",
        "posix.fdatasync",
        "sqlite3.Connection",
        "posix.open",
        "posix.pwrite",
    )
    total = sum(v[2] for v in raw.values())
    io_s = sum(v[2] for (_, _, name), v in raw.items() if any(n in name for n in io_names))
    print(
        f"  per payment under the profiler (slower): IO (fsync, fdatasync, SQLite, open, pwrite) "
        f"{io_s / calls * ms:.3f} ms, Python and crypto {(total - io_s) / calls * ms:.3f} ms"
    )
    print("where the rest goes (cProfile, top functions by own time):")
    stats.sort_stats("tottime").print_stats(12)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start_at = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    for line in lines[start_at : start_at + 13]:
        print("  " + line.strip()[:150])


if __name__ == "__main__":
    main()
