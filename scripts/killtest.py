#!/usr/bin/env python3
"""Kill test of the whole system (issue 8 item 4, PROTOCOL.md §6 and §9).

A served card (one process: `applet.open_card` on a card folder, over a Unix socket) and a
terminal (one process: the payment flow, the §9 recovery, the SQLite log) run payments one
after another. The orchestrator kills the card, the terminal, or both with SIGKILL at random
moments, restarts them, and goes on until `--payments` payments have been attempted. Then it
makes one clean contact (so §9 recovery runs) and checks:

1. every approval the card journaled is in the log, and none is in the log twice;
2. no pending entry is left open;
3. the card's used credit equals the sum of the approved amounts in the log (and spool).

Usage: python scripts/killtest.py [--payments 500] [--seed N] [--workdir D] [--keep]
Exit status 0 when every check holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROFILE = ROOT / "vectors" / "profiles" / "test-card-1"
LIMIT = 10**11  # minor units: the card never runs out during the test
MAX_FRAME = 0xFFFF
CONNECT_TRIES = 200


# --- the socket between terminal and card: 2-byte length, payload (vpcd's framing) ----------


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


def serve_card(folder: Path, sock_path: Path, journal: Path) -> None:
    """Serve the card: one connection = one power-on; journal each GENERATE AC answer.

    The journal line is written from the card's stored state right after the applet has
    answered (the answer itself may be chained), before the answer leaves the process.
    """
    from apdu.sw import INS
    from applet import open_card
    from applet.state import answer_cid_atc
    from applet.store import FileStateStore

    card = open_card(folder)
    store = FileStateStore(folder)
    sock_path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(1)
    with journal.open("a", encoding="utf-8") as jf:
        while True:
            conn, _ = server.accept()
            with conn:
                send_frame(conn, card.power_on())
                try:
                    while True:
                        command = recv_frame(conn)
                        response = card.process(command)
                        last = store.load().last_answer
                        if len(command) > 1 and command[1] == INS.GENERATE_AC and last:
                            cid, atc = answer_cid_atc(last)
                            jf.write(json.dumps({"atc": atc, "cid": cid}) + "\n")
                            jf.flush()
                        send_frame(conn, response)
                except (ConnectionError, OSError):
                    card.deactivate("field lost")


class SocketTransport:
    """reader's Transport protocol over the card process's socket."""

    name = "killtest"

    def __init__(self, sock_path: Path) -> None:
        self.sock_path = sock_path
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
            return recv_frame(self.conn)
        except OSError as exc:
            raise TransportError("card removed") from exc

    def disconnect(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --- the terminal process --------------------------------------------------------------------


def pay_once(home: Path, sock_path: Path, amount: int) -> str:
    """One payment with the real flow, §9 recovery and log; the verdict as a word."""
    import secrets
    from datetime import datetime

    from authority.keystore import load_keystore
    from reader.checks import CheckError
    from reader.cli_pay import terminal_config
    from reader.flow import Env, NotRecordedError, PaymentRequest, pay
    from reader.log import LogError, TransactionLog, log_path
    from reader.transport import ChainingTransport, TransportError

    env = Env(datetime.now().replace(microsecond=0), secrets.token_bytes(4))
    transport = ChainingTransport(SocketTransport(sock_path))
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
    """Pending entries written so far: payments that got as far as GENERATE AC."""
    from reader.log import LogError, TransactionLog, log_path

    try:
        with TransactionLog(log_path(home)) as log:
            return len(log.pending_rows())
    except LogError:
        return 0


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
    round_ = 0
    while counts.reached < payments:
        round_ += 1
        if card is None:
            sock_path.unlink(missing_ok=True)
            card = _spawn("--serve-card", str(folder), str(sock_path), str(journal))
            _wait_socket(sock_path)
        if terminal is None:
            terminal = _spawn("--terminal", str(home), str(sock_path), str(progress), str(round_))
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
        print(f"round {round_}: killed {victim}, {counts.reached} payments", flush=True)
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
    print(f"payments: {len(closed)} reached GENERATE AC, {counts.attempts} started")
    print(f"final contact: {final}")
    print(f"kills: {counts.kills}")
    print(f"terminal verdicts seen: {counts.verdicts}")
    print(f"card: ATC {state.atc}, used {state.used}")
    print(
        f"log: {len(rows)} rows, {len(approvals)} approved, sum {sum(o.amount for o in approvals)}"
    )
    print(
        f"pending entries: {len(closed)} written, {recovered_rows} recorded, "
        f"{not_paid} closed as not paid, {len(open_pending)} open; spool {spooled}"
    )
    print(f"card journal: {len(journaled)} approvals; missing from the log: {missing}")
    problems = []
    if missing:
        problems.append(f"{len(missing)} journaled approvals missing from the log")
    if len(keys) != len(set(keys)):
        problems.append("an (account, ATC) is in the log twice")
    if open_pending:
        problems.append(f"{len(open_pending)} pending entries left open")
    if not used_ok:
        problems.append(f"used credit {state.used} != sum of approvals")
    if spooled:
        problems.append(f"{spooled} payments left in the spool")
    print("RESULT: " + ("ok" if not problems else "FAIL: " + "; ".join(problems)))
    return 0 if not problems else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--serve-card", nargs=3, metavar=("FOLDER", "SOCKET", "JOURNAL"))
    parser.add_argument("--terminal", nargs=4, metavar=("HOME", "SOCKET", "PROGRESS", "SEED"))
    args = parser.parse_args(argv)
    if args.serve_card:
        folder, sock, journal = (Path(a) for a in args.serve_card)
        serve_card(folder, sock, journal)
        return 0
    if args.terminal:
        home, sock, progress = (Path(a) for a in args.terminal[:3])
        terminal_loop(home, sock, progress, int(args.terminal[3]))
        return 0
    if not 1 <= args.payments <= 1_000_000:
        parser.error("--payments must be 1..1000000")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="hcepay-killtest-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return run(args.payments, args.seed, work)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
