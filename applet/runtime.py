"""The card runtime: parse, route, chain, store, answer (PROTOCOL.md §3, §6; ISO 7816-4 5.1).

`CardRuntime` is the Card every transport serves. It parses the command (`6700` when
malformed), hands it to the applet, stores the durable part of the new state *before*
the response leaves (an answer whose state was not stored is never sent), and splits a
long response into `61xx` parts fetched with GET RESPONSE, or answers `6Cxx` to a non-zero
Le shorter than the data (without storing anything: the terminal repeats the command) when
xx can name the length (`_wrong_le`). A command with no Le (Ne = 0, ISO 7816-4 5.1) that has
response data is executed and answers `61xx` alone: the data waits for GET RESPONSE, as a
case 4 command sent as case 3 over T=0 gets it (ISO 7816-3 12.2.5). A CardError becomes its
status word and changes nothing, a pending response included; a state that cannot be stored
(OSError) answers `6F00` with one line logged; any other exception is a bug and answers
`6F00` with its traceback logged.
Sans-IO: the store is injected.

A GENERATE AC answer comes as a SignedAnswer: the store commits the new state while the
answer is signed (StateStore.commit_while), and the answer leaves after both. A signing
that keeps failing puts the state before it back (6F00). After a failed commit the stored
state is read again and committed again before the next command (what a failed flush
wrote may be in memory only, applet/store.py): when it is the state held (nothing was
stored), the session and a pending response stay, as after any error; when the commit was
written after all, the session starts again from it (IDLE), so that nothing is done twice.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Final

from apdu.command import CommandAPDU
from apdu.errors import DecodeError
from apdu.sw import INS, SW, SW1_MORE_DATA, SW1_WRONG_LE
from applet.atr import ATR
from applet.errors import (
    CardError,
    ClaNotSupported,
    ConditionsNotSatisfied,
    IncorrectP1P2,
    StateFileError,
    WrongLength,
)
from applet.payment import AppState, Cla, PaymentApplet, SignedAnswer
from applet.store import StateStore

log = logging.getLogger(__name__)

SHORT_LE_MAX: Final = 256
MAX_COMMAND: Final = 4 + 3 + 65535 + 2  # the longest extended APDU: case 4E (ISO 7816-4 5.1)


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")


_SW_OK: Final = _sw(SW.OK)
REMEMBERED_COMMAND: Final = 24  # bytes: SELECT by a name of up to 16, READ RECORD, GET RESPONSE


@lru_cache(maxsize=64)
def _parse_remembered(apdu: bytes) -> CommandAPDU:
    """CommandAPDU.parse of a short command, remembered: a terminal sends the same SELECTs,
    READ RECORDs and GET RESPONSEs at every payment (the result is immutable; a malformed
    command raises each time, and is never remembered)."""
    return CommandAPDU.parse(apdu)


def _wrong_le(cmd: CommandAPDU, size: int) -> bool:
    """Whether to answer `6Cxx` (PROTOCOL.md §3): a non-zero Le shorter than the data, when
    xx can say the data's length. Short Le `00` means 256 and chains with `61xx`; so does an
    extended Le shorter than data of more than 256 bytes, which no `6Cxx` can name
    (ISO 7816-4 5.3.4: the card sends Le bytes, then `61xx` for the rest)."""
    if cmd.le is None or cmd.le >= size:
        return False
    if cmd.extended:
        return size <= SHORT_LE_MAX
    return cmd.le != SHORT_LE_MAX


class CardRuntime:
    """A Card around a PaymentApplet and a StateStore (docs/architecture.md `applet/`)."""

    def __init__(self, applet: PaymentApplet, store: StateStore, atr: bytes = ATR) -> None:
        self.applet = applet
        self.store = store
        self.atr = atr
        self._state = AppState(store.load())
        self._pending = b""  # the rest of a chained response
        self._reload = False  # a commit failed: the stored state is re-read before going on

    @property
    def state(self) -> AppState:
        """The applet's current state (durable part and session)."""
        return self._state

    def power_on(self) -> bytes:
        """Reset: IDLE, no pending response; answer the ATR."""
        self._reset()
        return self.atr

    def deactivate(self, reason: str) -> None:
        """Power off, deselect or field lost: back to IDLE (P§6)."""
        log.debug("deactivated: %s", reason)
        self._reset()

    def process(self, apdu: bytes) -> bytes:
        """One command APDU in, one response APDU out; never raises."""
        try:
            return self._process(bytes(apdu))
        except CardError as exc:
            log.debug("%s: %04X %s", apdu[:4].hex().upper(), exc.sw, exc.detail)
            return _sw(exc.sw)
        except (OSError, StateFileError) as exc:  # the state not stored (or not read back)
            log.error("command %s answered 6F00: card state: %s", apdu[:5].hex().upper(), exc)
            return _sw(SW.UNKNOWN)
        except Exception:  # a bug: 6F00, and nothing was sent
            log.exception("command %s failed", apdu[:5].hex().upper())
            return _sw(SW.UNKNOWN)

    def _reset(self) -> None:
        self._pending = b""
        self._state = self.applet.reset(self._state)

    def _process(self, apdu: bytes) -> bytes:
        if self._reload:
            stored = self.store.load()
            self.store.commit(stored)  # what a failed flush wrote may be in memory only
            if stored != self._state.card:  # the failed commit was written after all
                self._pending = b""
                self._state = AppState(stored)
            self._reload = False
        if len(apdu) > MAX_COMMAND:
            raise WrongLength("command longer than an extended APDU")
        try:
            short = len(apdu) <= REMEMBERED_COMMAND
            cmd = _parse_remembered(apdu) if short else CommandAPDU.parse(apdu)
        except DecodeError as exc:
            raise WrongLength(str(exc)) from None
        if cmd.ins == INS.GET_RESPONSE:
            if cmd.cla != Cla.ISO:
                raise ClaNotSupported(f"CLA {cmd.cla:02X} for GET RESPONSE")
            return self._get_response(cmd)
        # A refused command (CardError) changes nothing, a pending response included (P§6).
        answer, new = self.applet.handle(cmd, self._state)
        size = answer.length if isinstance(answer, SignedAnswer) else len(answer)
        if _wrong_le(cmd, size):
            # 6Cxx: nothing stored, nothing changed; the terminal repeats with Le = xx.
            return _sw(SW1_WRONG_LE << 8 | min(size, SHORT_LE_MAX) % SHORT_LE_MAX)
        if new.card is not self._state.card and new.card != self._state.card:
            self._reload = True
            if isinstance(answer, SignedAnswer):
                data = self.store.commit_while(
                    new.card, answer.make, self._state.card, answer.prepare
                )
            else:
                self.store.commit(new.card)  # raises: 6F00, the answer is never sent
                data = answer
            self._reload = False
        else:
            data = answer.make() if isinstance(answer, SignedAnswer) else answer
        self._state = new
        return self._send(data, cmd.le)  # GET RESPONSE follows the command it continues

    def _send(self, data: bytes, le: int | None) -> bytes:
        """Up to Le bytes of `data` and `9000`, or `61xx` when more waits; no Le: no data."""
        limit = 0 if le is None else le
        if len(data) <= limit:
            self._pending = b""
            return data + _SW_OK
        self._pending = data[limit:]
        left = min(len(self._pending), SHORT_LE_MAX) % SHORT_LE_MAX
        return data[:limit] + _sw(SW1_MORE_DATA << 8 | left)

    def _get_response(self, cmd: CommandAPDU) -> bytes:
        """GET RESPONSE: the next part of the pending response (ISO 7816-4 7.6.1); the state
        (a response pending) is checked before P1-P2 and the length, as for every command."""
        if not self._pending:
            raise ConditionsNotSatisfied("no response to get")
        if cmd.p1 or cmd.p2:
            raise IncorrectP1P2("GET RESPONSE takes P1-P2 0000")
        if cmd.data:
            raise WrongLength("GET RESPONSE takes no data")
        return self._send(self._pending, cmd.le)
