#!/usr/bin/env python3
"""Kill test of the whole system (PROTOCOL.md §6 and §9).

A served card (one process: `applet.open_card` on a card folder, over a Unix socket) and a
terminal (one process: the payment flow, the §9 recovery, the SQLite log) run payments one
after another. The orchestrator kills the card, the terminal, or both with SIGKILL at random
moments, restarts them, and goes on until `--payments` payments have been attempted. Then it
makes one clean contact (so §9 recovery runs) and checks:

1. every approval the card journaled is in the log, and none is in the log twice;
2. no pending entry is left open;
3. the card's used credit equals the sum of the approved amounts in the log (and spool).

With `--points`, the kills are not random but named: each kill point (KILL_POINTS) is one
payment in which the card or the terminal kills itself with SIGKILL at that exact place (a
durable write about to start or just made, an answer made but not sent, a command sent but
not answered...). After each, one clean contact must leave the checks above holding, and the
torn payment must end as the point says: recorded once at the next contact (§9), closed as
not paid, or never started. A point the payment did not reach is a failure, not a pass.

Usage: python scripts/killtest.py [--payments 500] [--seed N] [--workdir D] [--keep]
       python scripts/killtest.py --points [NAME ...] [--workdir D] [--keep]
Exit status 0 when every check holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from applet.runtime import CardRuntime
    from applet.state import CardState
    from reader.log import PendingRow

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROFILE = ROOT / "vectors" / "profiles" / "test-card-1"
LIMIT = 10**11  # minor units: the card never runs out during the test
MAX_FRAME = 0xFFFF
CONNECT_TRIES = 200
PAY_TIMEOUT_S = 60.0
T = TypeVar("T")

# Where a payment is torn, and how it must end (PROTOCOL.md §6, §9):
# "recovered": the card deducted, the terminal has no row; the next contact records it, once;
# "recorded": the row was made before the kill; the next contact has nothing to recover;
# "not paid": a pending entry was written but the card deducted nothing; it is closed;
# "none": the payment stopped before its pending entry; nothing to recover;
# "either": the kill races the card's own commit: "recovered" or "not paid", exactly one.
KILL_POINTS: dict[str, str] = {
    "card-gpo-before-store": "none",  # GPO: the ATC not yet stored
    "card-gpo-stored": "none",  # GPO: the ATC stored, the answer not sent
    "card-gac-before-store": "not paid",  # GENERATE AC: nothing stored yet
    "card-gac-while-storing": "either",  # GENERATE AC: killed while its state is written
    "card-gac-stored": "recovered",  # GENERATE AC: deducted and answered, the answer not sent
    "card-gac-chained": "recovered",  # GENERATE AC: its first part (61xx) sent, not the rest
    "terminal-before-pending": "none",  # the pending entry not yet written
    "terminal-pending-written": "not paid",  # pending entry durable, GENERATE AC not sent
    "terminal-gac-sent": "recovered",  # GENERATE AC sent, its answer never read
    "terminal-answer-checked": "recovered",  # the answer read and checked, not recorded
    "terminal-recorded": "recorded",  # the row and its entry's closing made, then killed
}


# --- the socket between terminal and card: 2-byte length, payload (vpcd's framing) ----------


def _n(count: int, noun: str, nouns: str = "") -> str:
    """`1 payment`, `2 payments`: reader/cli_common.py's plural, imported when first used
    (as this script imports the project: late, for the children it forks)."""
    from reader.cli_common import plural

    return plural(count, noun, nouns)


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = conn.recv(size - len(buf))
        if not chunk:
            raise ConnectionError("peer closed")
        buf += chunk
    return bytes(buf)


def send_frame(conn: socket.socket, payload: bytes) -> None:
    if len(payload) > MAX_FRAME:
        raise ValueError("frame too large")
    conn.sendall(len(payload).to_bytes(2, "big") + payload)


def recv_frame(conn: socket.socket) -> bytes:
    return _recv_exact(conn, int.from_bytes(_recv_exact(conn, 2), "big"))


# --- the card process ------------------------------------------------------------------------


def die() -> None:
    """This process ends here, as a SIGKILL ends it: no cleanup, no flush, no atexit."""
    os.kill(os.getpid(), signal.SIGKILL)


def serve_card(folder: Path, sock_path: Path, journal: Path, kill_at: str = "") -> None:
    """Serve the card: one connection = one power-on; journal each GENERATE AC answer.

    The journal line is written from the card's stored state right after the applet has
    answered (the answer itself may be chained), before the answer leaves the process.
    `kill_at` names a card kill point (KILL_POINTS): the process kills itself there.
    """
    from apdu.sw import INS
    from applet import open_card
    from applet.state import answer_cid_atc
    from applet.store import FileStateStore

    card = open_card(folder)
    store = FileStateStore(folder)
    current = [0]  # the INS being processed
    if kill_at:
        _arm_card(card, kill_at, current)
    sock_path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # bound and listening under another name first: the socket's name appears (what the
    # harness waits for) only once a connection is accepted; between bind and listen a
    # connection is refused, and a clean contact then failed as a transport error
    listening = sock_path.with_name(sock_path.name + ".new")
    listening.unlink(missing_ok=True)
    server.bind(str(listening))
    server.listen(1)
    os.rename(listening, sock_path)
    with journal.open("a", encoding="utf-8") as jf:
        while True:
            conn, _ = server.accept()
            with conn:
                send_frame(conn, card.power_on())
                try:
                    while True:
                        command = recv_frame(conn)
                        ins = command[1] if len(command) > 1 else -1
                        current[0] = ins
                        if kill_at == "card-gac-chained" and ins == INS.GET_RESPONSE:
                            die()
                        response = card.process(command)
                        last = store.load().last_answer
                        if ins == INS.GENERATE_AC and last:
                            cid, atc = answer_cid_atc(last)
                            jf.write(json.dumps({"atc": atc, "cid": cid}) + "\n")
                            jf.flush()
                        if (kill_at, ins) in (
                            ("card-gpo-stored", INS.GET_PROCESSING_OPTIONS),
                            ("card-gac-stored", INS.GENERATE_AC),
                        ):
                            die()
                        send_frame(conn, response)
                except (ConnectionError, OSError):
                    card.deactivate("field lost")


def _arm_card(card: CardRuntime, kill_at: str, current: list[int]) -> None:
    """Make the card's store kill this process at `kill_at` (a card kill point)."""
    from apdu.sw import INS

    store = card.store
    commit, commit_while = store.commit, store.commit_while

    def armed_commit(state: CardState) -> None:
        if kill_at == "card-gpo-before-store" and current[0] == INS.GET_PROCESSING_OPTIONS:
            die()
        commit(state)

    def armed_commit_while(
        state: CardState,
        work: Callable[[], T],
        before: CardState,
        then: Callable[[], None] | None = None,
    ) -> T:
        if kill_at == "card-gac-before-store":
            die()
        if kill_at == "card-gac-while-storing":

            def signing() -> T:
                time.sleep(0.0001)  # the commit thread has the slot in hand by now
                die()
                return work()

            return commit_while(state, signing, before, then)
        return commit_while(state, work, before, then)

    store.commit = armed_commit  # type: ignore[method-assign]
    store.commit_while = armed_commit_while  # type: ignore[method-assign]


class SocketTransport:
    """reader's Transport protocol over the card process's socket."""

    name = "killtest"

    def __init__(self, sock_path: Path, kill_at: str = "") -> None:
        self.sock_path = sock_path
        self.kill_at = kill_at
        self.conn: socket.socket | None = None

    def connect(self) -> bytes:
        from reader.transport import TransportError

        try:
            self.conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.conn.settimeout(5)
            self.conn.connect(str(self.sock_path))
            return recv_frame(self.conn)
        except OSError as exc:
            raise TransportError("card removed") from exc

    def transmit(self, command: bytes) -> bytes:
        from reader.transport import TransportError

        if self.conn is None:
            raise TransportError("not connected")
        try:
            send_frame(self.conn, command)
            if self.kill_at == "terminal-gac-sent" and command[1:2] == b"\xae":
                # die once the card has answered (deducted and stored), the answer unread:
                # dying at once raced the harness, which then killed the card before it
                # read the command (an untouched card, closed as not paid, not recovered)
                select.select([self.conn], [], [], PAY_TIMEOUT_S)
                die()
            return recv_frame(self.conn)
        except OSError as exc:
            raise TransportError("card removed") from exc

    def disconnect(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --- the terminal process --------------------------------------------------------------------


def _arm_terminal(kill_at: str) -> None:
    """Make the log kill this process at `kill_at` (a terminal kill point)."""
    from reader.log import TransactionLog

    write_pending, record = TransactionLog.write_pending, TransactionLog.record

    def armed_write_pending(*args: object, **kwargs: object) -> None:
        if kill_at == "terminal-before-pending":
            die()
        write_pending(*args, **kwargs)  # type: ignore[arg-type]
        if kill_at == "terminal-pending-written":
            die()

    def armed_record(*args: object, **kwargs: object) -> int:
        if kill_at == "terminal-answer-checked":
            die()
        row = record(*args, **kwargs)  # type: ignore[arg-type]
        if kill_at == "terminal-recorded":
            die()
        return row

    TransactionLog.write_pending = armed_write_pending  # type: ignore[method-assign]
    TransactionLog.record = armed_record  # type: ignore[method-assign]


def pay_once(home: Path, sock_path: Path, amount: int, kill_at: str = "") -> str:
    """One payment with the real flow, §9 recovery and log; the verdict as a word.

    `kill_at` names a terminal kill point (KILL_POINTS): this process kills itself there."""
    import secrets
    from datetime import datetime

    from authority.keystore import load_keystore
    from reader.checks import CheckError
    from reader.cli_pay import terminal_config
    from reader.flow import Env, NotRecordedError, PaymentRequest, pay
    from reader.log import LogError, TransactionLog, log_path
    from reader.transport import ChainingTransport, TransportError

    if kill_at:
        _arm_terminal(kill_at)
    env = Env(datetime.now().replace(microsecond=0), secrets.token_bytes(4))
    transport = ChainingTransport(SocketTransport(sock_path, kill_at))
    try:
        with TransactionLog(log_path(home)) as log:
            paid = pay(
                transport,
                terminal_config(home),
                PaymentRequest(amount),
                env,
                load_keystore(home),
                log,
            )
    except CheckError as exc:
        return f"refused: {exc.reason}"
    except TransportError:
        return "transport"
    except (NotRecordedError, LogError) as exc:
        return f"log: {exc}"
    recovered = f" recovered={len(paid.recovered)}" if paid.recovered else ""
    return ("approved" if paid.outcome.approved else "declined") + recovered


def terminal_loop(home: Path, sock_path: Path, progress: Path, seed: int) -> None:
    """Pay again and again until killed; one line in `progress` before and after each."""
    rnd = random.Random(seed)
    with progress.open("a", encoding="utf-8") as pf:
        while True:
            amount = rnd.randint(1, 9999)
            pf.write(json.dumps({"start": amount}) + "\n")
            pf.flush()
            verdict = pay_once(home, sock_path, amount)
            pf.write(json.dumps({"verdict": verdict}) + "\n")
            pf.flush()
            if verdict == "transport":
                time.sleep(0.01)  # the card is being restarted


# --- the orchestrator ------------------------------------------------------------------------


@dataclass
class Counts:
    attempts: int = 0  # payments started by the terminal (some fail at once: no card)
    reached: int = 0  # payments that reached GENERATE AC (a pending entry was written)
    kills: dict[str, int] = field(default_factory=lambda: {"card": 0, "terminal": 0, "both": 0})
    verdicts: dict[str, int] = field(default_factory=dict)


def _setup(work: Path) -> tuple[Path, Path]:
    """A home with the test authority and the test card (limit raised), and the card folder."""
    from reader.cli_pay import make_demo_home

    home = work / "home"
    folder = make_demo_home(home)
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    card["limit"] = LIMIT
    (folder / "card.json").write_text(json.dumps(card), encoding="utf-8")
    return home, folder


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.DEVNULL)


def _kill(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    if proc is not None:
        proc.wait()


def _wait_socket(sock_path: Path) -> None:
    for _ in range(CONNECT_TRIES):
        if sock_path.exists():
            return
        time.sleep(0.02)
    raise RuntimeError("the card process did not start")


def _attempts(progress: Path) -> tuple[int, dict[str, int]]:
    attempts = 0
    verdicts: dict[str, int] = {}
    if not progress.exists():
        return 0, verdicts
    for line in progress.read_text(encoding="utf-8").splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue  # a line torn by SIGKILL
        if "start" in obj:
            attempts += 1
        elif "verdict" in obj:
            key = str(obj["verdict"]).split(":")[0]
            verdicts[key] = verdicts.get(key, 0) + 1
    return attempts, verdicts


def _reached(home: Path) -> int:
    """Payments that got as far as GENERATE AC so far (each wrote a pending entry)."""
    from reader.log import LogError, TransactionLog, log_path

    try:
        with TransactionLog(log_path(home)) as log:
            return _written(log.count(), log.pending_rows())
    except LogError:
        return 0


def _written(rows: int, entries: list[PendingRow]) -> int:
    """Pending entries written: one per row (a row recorded at its own contact removed its
    entry; one recorded at a later contact closed it as "recorded"), and one per entry
    closed without a row or still open."""
    return rows + sum(1 for p in entries if p.outcome != "recorded")


def run(payments: int, seed: int, work: Path) -> int:
    """Kill and restart until `payments` attempts, then check; the exit status."""
    rnd = random.Random(seed)
    home, folder = _setup(work)
    sock_path = work / "card.sock"
    journal = work / "card-journal.jsonl"
    progress = work / "terminal-progress.jsonl"
    counts = Counts()
    card: subprocess.Popen[bytes] | None = None
    terminal: subprocess.Popen[bytes] | None = None
    try:
        round_ = 0
        while counts.reached < payments:
            round_ += 1
            if card is None:
                sock_path.unlink(missing_ok=True)
                card = _spawn("--serve-card", str(folder), str(sock_path), str(journal))
                _wait_socket(sock_path)
            if terminal is None:
                terminal = _spawn(
                    "--terminal", str(home), str(sock_path), str(progress), str(round_)
                )
            time.sleep(rnd.uniform(0.02, 0.5))
            victim = rnd.choice(["card", "terminal", "both"])
            counts.kills[victim] += 1
            if victim in ("card", "both"):
                _kill(card)
                card = None
            if victim in ("terminal", "both"):
                _kill(terminal)
                terminal = None
            counts.attempts, counts.verdicts = _attempts(progress)
            counts.reached = _reached(home)
            print(f"round {round_}: killed {victim}, {_n(counts.reached, 'payment')}", flush=True)
    finally:  # no process of this run outlives it
        _kill(terminal)
        _kill(card)
    return finish(home, folder, sock_path, journal, counts)


def finish(home: Path, folder: Path, sock_path: Path, journal: Path, counts: Counts) -> int:
    """One clean contact (so §9 recovery runs), then the checks of the module docstring."""
    from applet.store import FileStateStore
    from reader.log import TransactionLog, log_path
    from reader.spool import pending_count

    sock_path.unlink(missing_ok=True)
    card = _spawn("--serve-card", str(folder), str(sock_path), str(journal))
    _wait_socket(sock_path)
    final = pay_once(home, sock_path, 1)
    _kill(card)
    state = FileStateStore(folder).load()
    with TransactionLog(log_path(home)) as log:
        rows = [r.outcome for r in log.rows()]
        open_pending = log.pending()
        closed = log.pending_rows()
    approvals = [o for o in rows if o.approved]
    keys = [(o.account, o.atc) for o in rows]
    journaled: set[int] = set()
    if journal.exists():
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if obj.get("cid") == 0x40:
                journaled.add(int(obj["atc"]))
    logged_atcs = {o.atc for o in approvals}
    missing = sorted(journaled - logged_atcs)
    used_ok = state.used == sum(o.amount for o in approvals)
    not_paid = sum(1 for p in closed if p.outcome and p.outcome.startswith("not paid"))
    recovered_rows = sum(1 for p in closed if p.outcome == "recorded")
    spooled = pending_count(log_path(home))
    written = _written(len(rows), closed)
    print(f"payments: {written} reached GENERATE AC, {counts.attempts} started")
    print(f"final contact: {final}")
    print(f"kills: {counts.kills}")
    print(f"terminal verdicts seen: {counts.verdicts}")
    print(f"card: ATC {state.atc}, used {state.used}")
    print(
        f"log: {_n(len(rows), 'row')}, {len(approvals)} approved, "
        f"sum {sum(o.amount for o in approvals)}"
    )
    print(
        f"pending entries: {written} written, {recovered_rows} recorded at a later contact, "
        f"{not_paid} closed as not paid, {len(open_pending)} open; spool {spooled}"
    )
    print(f"card journal: {_n(len(journaled), 'approval')}; missing from the log: {missing}")
    problems = []
    if missing:
        problems.append(f"{_n(len(missing), 'journaled approval')} missing from the log")
    if len(keys) != len(set(keys)):
        problems.append("an (account, ATC) is in the log twice")
    if open_pending:
        problems.append(f"{_n(len(open_pending), 'pending entry', 'pending entries')} left open")
    if not used_ok:
        problems.append(f"used credit {state.used} != sum of approvals")
    if spooled:
        problems.append(f"{_n(spooled, 'payment')} left in the spool")
    print("RESULT: " + ("ok" if not problems else "FAIL: " + "; ".join(problems)))
    return 0 if not problems else 1


def _outcomes(home: Path) -> dict[str, int]:
    """How the payments that wrote a pending entry ended so far: "recorded" (the log's rows:
    at their own contact, or torn and recorded at a later one), "not paid", "open"."""
    from reader.log import TransactionLog, log_path

    with TransactionLog(log_path(home)) as log:
        counts = {"recorded": log.count(), "not paid": 0, "open": 0, "other": 0}
        for row in log.pending_rows():
            if row.outcome is None:
                counts["open"] += 1
            elif row.outcome.startswith("not paid"):
                counts["not paid"] += 1
            elif row.outcome != "recorded":  # a recorded entry's row is counted above
                counts["other"] += 1
    return counts


def _expected_end(expect: str, before: dict[str, int], after: dict[str, int], clean: str) -> str:
    """Empty when the torn payment ended as `expect` says; else what went wrong. `clean` is
    the verdict of the clean contact that followed (its own payment adds one "recorded")."""
    recorded = after["recorded"] - before["recorded"] - 1
    not_paid = after["not paid"] - before["not paid"]
    recovered = int(clean.partition("recovered=")[2] or 0)
    ends = {
        "none": [(0, 0, 0)],
        "recorded": [(1, 0, 0)],
        "recovered": [(1, 0, 1)],
        "not paid": [(0, 1, 0)],
        "either": [(1, 0, 1), (0, 1, 0)],
    }[expect]
    if (recorded, not_paid, recovered) in ends and after["other"] == before["other"]:
        return ""
    # (a kill point that is reached but ends otherwise is the failure this test is for)
    return (
        f"expected {expect}: the torn payment gave {recorded} recorded, "
        f"{not_paid} not paid; the next contact recovered {recovered}"
    )


def run_points(points: list[str], work: Path) -> int:
    """One torn payment per kill point, each followed by a clean contact; the exit status."""
    home, folder = _setup(work)
    sock_path = work / "card.sock"
    journal = work / "card-journal.jsonl"
    failures: list[str] = []
    card: subprocess.Popen[bytes] | None = None
    terminal: subprocess.Popen[bytes] | None = None
    try:
        for point in points:
            sock_path.unlink(missing_ok=True)
            card_kill = point if point.startswith("card-") else ""
            card = _spawn(
                "--serve-card", str(folder), str(sock_path), str(journal), "--kill-at", card_kill
            )
            _wait_socket(sock_path)
            before = _outcomes(home)
            terminal_kill = point if point.startswith("terminal-") else ""
            terminal = _spawn("--pay-once", str(home), str(sock_path), "--kill-at", terminal_kill)
            try:
                terminal.wait(timeout=PAY_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _kill(terminal)
                failures.append(f"{point}: the payment did not end in {PAY_TIMEOUT_S:.0f} s")
            killed = card if card_kill else terminal
            if card_kill:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    card.wait(timeout=PAY_TIMEOUT_S)
            reached = killed.poll() == -signal.SIGKILL
            _kill(card)
            # the clean contact: a new card process, one payment, §9 recovery on the way
            sock_path.unlink(missing_ok=True)
            card = _spawn("--serve-card", str(folder), str(sock_path), str(journal))
            _wait_socket(sock_path)
            final = pay_once(home, sock_path, 1)
            _kill(card)
            after = _outcomes(home)
            problems = [] if reached else ["the payment never reached this point"]
            if not final.startswith("approved"):
                problems.append(f"the clean payment gave {final!r}")
            wrong = _expected_end(KILL_POINTS[point], before, after, final)
            problems += [wrong] if wrong else []
            verdict = (
                f"ok (the next contact: {final})"
                if not problems
                else "FAIL: " + "; ".join(problems)
            )
            print(f"{point}: {verdict}", flush=True)
            failures += [f"{point}: {problem}" for problem in problems]
    finally:  # no process of this run outlives it
        _kill(terminal)
        _kill(card)
    counts = Counts(attempts=2 * len(points), kills={point: 1 for point in points})
    status = finish(home, folder, sock_path, journal, counts)
    if failures:
        print("RESULT: FAIL: " + "; ".join(failures))
        return 1
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--points",
        nargs="*",
        metavar="NAME",
        help="named kill points instead of random kills (none given: all of them): "
        + ", ".join(KILL_POINTS),
    )
    parser.add_argument("--serve-card", nargs=3, metavar=("FOLDER", "SOCKET", "JOURNAL"))
    parser.add_argument("--terminal", nargs=4, metavar=("HOME", "SOCKET", "PROGRESS", "SEED"))
    parser.add_argument("--pay-once", nargs=2, metavar=("HOME", "SOCKET"))
    parser.add_argument("--kill-at", default="", metavar="POINT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_card:
        folder, sock, journal = (Path(a) for a in args.serve_card)
        serve_card(folder, sock, journal, args.kill_at)
        return 0
    if args.pay_once:
        verdict = pay_once(Path(args.pay_once[0]), Path(args.pay_once[1]), 1234, args.kill_at)
        print(f"  the torn payment's terminal: {verdict}", flush=True)
        return 0
    if args.terminal:
        home, sock, progress = (Path(a) for a in args.terminal[:3])
        terminal_loop(home, sock, progress, int(args.terminal[3]))
        return 0
    if not 1 <= args.payments <= 1_000_000:
        parser.error("--payments must be 1..1000000")
    points = list(KILL_POINTS) if args.points == [] else args.points
    unknown = [name for name in points or [] if name not in KILL_POINTS]
    if unknown:
        parser.error(f"unknown kill point {unknown[0]!r}: one of {', '.join(KILL_POINTS)}")
    if args.workdir is not None and args.workdir.exists() and not args.workdir.is_dir():
        parser.error(f"--workdir {args.workdir}: not a folder")
    if args.workdir is not None and args.workdir.exists() and any(args.workdir.iterdir()):
        parser.error(f"--workdir {args.workdir}: not empty (a run makes its home there)")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="hcepay-killtest-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if points is not None:
            return run_points(points, work)
        return run(args.payments, args.seed, work)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
