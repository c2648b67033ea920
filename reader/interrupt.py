"""Ctrl-C around a payment: an interrupt stops it until GENERATE AC may go out; from then on
it is held until the verdict is printed (the card may have deducted: the operator must see
the verdict, never a silent exit that invites a second charge)."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any

# Set in the `hcepay` process (cli.main): a payment held at its guard's end stays held to
# the process's end (see hold_decided_payments_to_exit).
_hold_to_exit = threading.Event()
# When (time.monotonic()) a SIGINT last became a KeyboardInterrupt that nobody has caught
# yet, else None. Python swallows an exception raised in a finalizer or a weakref callback
# (it prints "Exception ignored in ..." and goes on), so a Ctrl-C landing there would not
# stop the payment: the guard's hold() sees it here and stops it before GENERATE AC.
_uncaught_since: list[float | None] = [None]
UNWINDING_S = 1.0  # a run stops within this of a Ctrl-C it did not swallow


def ignore_signal(_signum: int, _frame: FrameType | None) -> None:
    """A handler that does nothing: a Ctrl-C (or a second SIGTERM) on its way while a handler
    is being replaced runs this, and changes nothing."""


def ignore_to_exit(signum: int = signal.SIGINT) -> None:
    """Ignore `signum` to the process's end, Python's shutdown included (only SIG_IGN outlives
    it: Python puts the default action back for a handler of its own, and a late Ctrl-C then
    kills the process, exit -2). Two steps, since each change first runs the signals already
    on their way with the handler it replaces: set straight to SIG_IGN, one of them makes
    Python print "Signal 2 ignored due to race condition" and a traceback; with the handler
    that raises, KeyboardInterrupt (the run is ending on one already: it is let go)."""
    while True:  # bounded by the Ctrl-Cs a person can type
        try:
            signal.signal(signum, ignore_signal)
            break
        except KeyboardInterrupt:
            continue
    signal.signal(signum, signal.SIG_IGN)


def raise_interrupt(_signum: int = signal.SIGINT, _frame: FrameType | None = None) -> None:
    """SIGINT's handler outside a payment (reader/entry.py installs it first thing): raise
    KeyboardInterrupt as Python's own handler does, and remember that it was raised. A
    second Ctrl-C within UNWINDING_S of one not yet caught does nothing: the first is
    unwinding the run, and a second KeyboardInterrupt raised in its `except` or `finally`
    would end it in a traceback (seen: two Ctrl-Cs 0 ms apart)."""
    since = _uncaught_since[0]
    if since is not None and time.monotonic() - since < UNWINDING_S:
        return
    _uncaught_since[0] = time.monotonic()
    raise KeyboardInterrupt


def interrupt_swallowed() -> bool:
    """Whether a Ctrl-C was raised and nobody has caught it yet (it was swallowed)."""
    return _uncaught_since[0] is not None


def interrupt_caught() -> None:
    """A KeyboardInterrupt was caught: it stops what it should, nothing is swallowed."""
    _uncaught_since[0] = None


def run_ends_on_interrupt() -> None:
    """A Ctrl-C was caught and the `hcepay` run ends on it (exit 130): a second one could only
    cut its last line short or print a traceback from Python's shutdown (which waits for
    threads), so SIGINT is ignored to the process's end. Only in the `hcepay` process, as
    hold_decided_payments_to_exit."""
    if _hold_to_exit.is_set() and threading.current_thread() is threading.main_thread():
        ignore_to_exit()
    interrupt_caught()


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
    interrupt_caught()


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
        if isinstance(exc, KeyboardInterrupt):
            interrupt_caught()  # it stops the payment: it was not swallowed
        if self._installed:
            if self.held and _hold_to_exit.is_set():
                ignore_to_exit()
            else:
                signal.signal(signal.SIGINT, self._previous)
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
        raise_interrupt()

    def hold(self) -> None:
        """From now on the payment runs to its verdict: SIGINT is only noted. An interrupt
        that came during a shielded write before it, or that Python swallowed, stops the
        payment here, first."""
        self._raise_stop()
        self.held = True

    def _raise_stop(self) -> None:
        if (self._stop or interrupt_swallowed()) and not self.held:
            self._stop = False
            interrupt_caught()  # raised here, in plain code: nothing can swallow this one
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
