"""Ctrl-C around a payment: an interrupt stops it until GENERATE AC may go out; from then on
it is held until the verdict is printed (the card may have deducted: the operator must see
the verdict, never a silent exit that invites a second charge)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any

# Set in the `hcepay` process (cli.main): a payment held at its guard's end stays held to
# the process's end (see hold_decided_payments_to_exit).
_hold_to_exit = threading.Event()


def hold_decided_payments_to_exit() -> None:
    """In the `hcepay` process: once a payment is held (GENERATE AC out), SIGINT is ignored
    to the process's end, past its guard, so that a Ctrl-C landing while the verdict is
    printed, flushed or the process exits neither cuts the output nor changes the exit
    code (it was 130, a death by SIGINT, or a traceback at shutdown). Callers in a process
    of their own (tests, embedding) get their handler back at the guard's end."""
    _hold_to_exit.set()


def stop_holding_to_exit() -> None:
    """The `hcepay` run is over (cli.main's end): a guard made after it in the same process
    (a test calling cli.main, then another command in-process) gives SIGINT back again."""
    _hold_to_exit.clear()


class PaymentGuard:
    """SIGINT handling for one payment (a context manager; inert off the main thread).

    Before `hold()`, SIGINT raises KeyboardInterrupt as usual, except inside `shield()`,
    where it is raised when the block ends, whether the block succeeded or failed (a durable
    write is never cut in two), or at `hold()` at the latest. After `hold()`, SIGINT is only
    noted in `interrupted` (which says that an interrupt came too late to stop the payment).
    """

    def __init__(self) -> None:
        self.held = False
        self.interrupted = False  # SIGINT came after hold(): the payment went on
        self._stop = False  # SIGINT came in a shield before hold(): raise it when it ends
        self._shielded = 0
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> PaymentGuard:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._installed:
            keep_holding = self.held and _hold_to_exit.is_set()
            signal.signal(signal.SIGINT, signal.SIG_IGN if keep_holding else self._previous)
            self._installed = False

    def _on_sigint(self, _signum: int, _frame: FrameType | None) -> None:
        if self.held:
            if not self.interrupted:
                sys.stderr.write(
                    "hcepay: interrupt held: GENERATE AC is out, the verdict follows\n"
                )
            self.interrupted = True
            return
        if self._shielded:
            self._stop = True
            return
        raise KeyboardInterrupt

    def hold(self) -> None:
        """From now on the payment runs to its verdict: SIGINT is only noted. An interrupt
        that came during a shielded write before it stops the payment here, first."""
        self._raise_stop()
        self.held = True

    def _raise_stop(self) -> None:
        if self._stop and not self.held:
            self._stop = False
            raise KeyboardInterrupt

    @contextmanager
    def shield(self) -> Iterator[None]:
        """Run a durable write whole; an interrupt during it is raised when it is done
        (unless the payment is held by then)."""
        self._shielded += 1
        try:
            yield
        finally:
            self._shielded -= 1
            if not self._shielded:
                self._raise_stop()  # also when the write failed: the interrupt wins
