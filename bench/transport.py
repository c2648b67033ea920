"""Round trips through pcscd + vpcd: our served card next to a bare echo card, same run.

    python bench/transport.py [--apdus 3000] [--payments 30]

Needs a running pcscd with vpcd (`scripts/dev pcscd`), both virtual readers free. Each card
is served by its own process (as `hcepay card serve` does): the bare card (answers `90 00`)
on "Virtual PCD 00 00", ours on "Virtual PCD 00 01". Printed:
- per APDU: the bare round trip (the floor), ours for GET DATA and SELECT PPSE, and the ratio
  (goal: ours <= 1.2 x bare);
- a whole payment over vpcd next to the same payment in-process (goal: vpcd <= in-process
  + 12 bare round trips).
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from applet.atr import ATR  # noqa: E402
from applet.vpcd import VpcdClient, VpcdConfig  # noqa: E402

PROFILE = ROOT / "vectors" / "profiles" / "test-card-1"
ECHO_READER, CARD_READER = "Virtual PCD 00 00", "Virtual PCD 00 01"
ECHO_PORT, CARD_PORT = 35963, 35964
GET_DATA_ATC = bytes.fromhex("80CA9F3600")
SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")


class EchoCard:
    """The bare card: `90 00` to everything, nothing else."""

    def power_on(self) -> bytes:
        return ATR

    def process(self, apdu: bytes) -> bytes:
        return b"\x90\x00"

    def deactivate(self, reason: str) -> None:
        """Nothing to do."""


def serve(kind: str, port: int, folder: str | None) -> None:
    """Child process: serve the echo card or our card to vpcd until terminated."""
    import signal

    if kind == "echo":
        card: object = EchoCard()
    else:
        from applet import open_card

        assert folder is not None
        card = open_card(Path(folder))
    client = VpcdClient(card, VpcdConfig(port=port))  # type: ignore[arg-type]
    signal.signal(signal.SIGTERM, lambda *_: client.stop())
    client.serve_forever()


def wait_present(reader: str, timeout: float = 10.0) -> None:
    from reader.pcsc import list_readers

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(i.name == reader and i.atr for i in list_readers()):
            return
        time.sleep(0.05)
    raise SystemExit(f"bench: no card in {reader} after {timeout}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apdus", type=int, default=3000)
    parser.add_argument("--payments", type=int, default=30)
    parser.add_argument("--serve", choices=["echo", "card"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.folder)
        return

    from reader.pcsc import PcscTransport, list_readers
    from reader.transport import TransportError

    try:
        busy = [i.name for i in list_readers() if i.atr]
    except TransportError as exc:
        raise SystemExit(f"bench: {exc.reason} (start it: scripts/dev pcscd)") from None
    if busy:
        raise SystemExit(f"bench: readers in use: {busy}; stop the cards served there")

    work = Path(tempfile.mkdtemp(prefix="hcepay-bench-"))
    folder = work / "card"
    shutil.copytree(PROFILE, folder)
    me = [sys.executable, str(Path(__file__).resolve())]
    children = [
        subprocess.Popen([*me, "--serve", "echo", "--port", str(ECHO_PORT)]),
        subprocess.Popen(
            [*me, "--serve", "card", "--port", str(CARD_PORT), "--folder", str(folder)]
        ),
    ]
    try:
        wait_present(ECHO_READER)
        wait_present(CARD_READER)
        echo, card = PcscTransport(ECHO_READER), PcscTransport(CARD_READER)
        echo.connect()
        card.connect()
        assert card.transmit(SELECT_PPSE)[-2:] == b"\x90\x00", "our card did not answer"
        rounds = [
            ("bare", echo.transmit, GET_DATA_ATC),
            ("GET DATA", card.transmit, GET_DATA_ATC),
            ("SELECT PPSE", card.transmit, SELECT_PPSE),
        ]
        samples: dict[str, list[float]] = {name: [] for name, _, _ in rounds}
        clock = time.perf_counter
        for _ in range(args.apdus):  # one of each in turn: drift and noise hit all alike
            for name, transmit, apdu in rounds:
                start = clock()
                transmit(apdu)
                samples[name].append(clock() - start)
        echo.disconnect()
        card.disconnect()
        bare = statistics.median(samples["bare"])
        print(f"per APDU round trip through pcscd + vpcd (median of {args.apdus} each):")
        for name, values in samples.items():
            median = statistics.median(values)
            mean = statistics.fmean(values)
            print(
                f"  {name:12s} {median * 1e6:8.1f} us   x{median / bare:5.2f} of bare"
                f"   (+{(median - bare) * 1e6:6.1f} us; mean {mean * 1e6:.1f} us)"
            )
        payments(folder, work, bare, args.payments)
    except TransportError as exc:
        raise SystemExit(f"bench: {exc.reason} (is another program using the readers?)") from None
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def payments(folder: Path, work: Path, bare: float, count: int) -> None:
    """A whole payment over vpcd (our served card) vs the same payment in-process.

    Both go through the same terminal code (reader.flow.pay, chaining, the SQLite log with its
    fsyncs) and a file-backed card (state stored before each answer); only the channel differs.
    """
    from datetime import datetime

    from applet import open_card
    from authority.keyfiles import load_public
    from authority.keystore import AuthorityKey, KeyStore
    from reader.flow import Env, PaymentRequest, TerminalConfig, pay
    from reader.log import TransactionLog
    from reader.pcsc import PcscTransport
    from reader.transport import ChainingTransport, InProcessTransport, Transport

    cfg = TerminalConfig("TERM0001", "MERCHANT0000001")
    ca = load_public(PROFILE / "ca-01.pub.pem")
    keys = KeyStore({1: AuthorityKey(1, ca, date(2099, 12, 31))}, frozenset())
    request = PaymentRequest(100)
    local = work / "local-card"
    shutil.copytree(PROFILE, local)

    channels: dict[str, Transport] = {
        "vpcd": PcscTransport(CARD_READER),
        "in-process": InProcessTransport(open_card(local)),
    }
    times: dict[str, list[float]] = {name: [] for name in channels}
    logs = {name: TransactionLog(work / f"{name}.db") for name in channels}
    try:
        for round_ in range(count + 2):  # one of each in turn; the first two are warm-up
            for name, transport in channels.items():
                env = Env(datetime.now().replace(microsecond=0), secrets.token_bytes(4))
                start = time.perf_counter()
                paid = pay(ChainingTransport(transport), cfg, request, env, keys, logs[name])
                if round_ >= 2:
                    times[name].append(time.perf_counter() - start)
                assert paid.outcome.approved
    finally:
        for log in logs.values():
            log.close()
    vpcd, inproc = times["vpcd"], times["in-process"]
    v, i = statistics.median(vpcd), statistics.median(inproc)
    bound = i + 12 * bare
    print(f"whole payment (median of {count} each, alternating; 8 APDUs, 1984-bit keys):")
    print(f"  in-process   {i * 1e3:8.2f} ms")
    print(f"  over vpcd    {v * 1e3:8.2f} ms   (+{(v - i) * 1e3:.2f} ms)")
    print(f"  goal         {bound * 1e3:8.2f} ms   (in-process + 12 bare round trips): ", end="")
    print("met" if v <= bound else "NOT met")
    del folder


if __name__ == "__main__":
    main()
