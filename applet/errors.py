"""Errors the applet raises: each CardError subclass carries its status word (PROTOCOL.md §6).

The runtime turns a CardError into its SW and leaves the state as it was; any other
exception is a bug and answers `6F00`.
"""

from __future__ import annotations

from typing import ClassVar

from apdu.sw import SW


class CardError(Exception):
    """A refused command: `sw` is the status word the card answers."""

    sw: ClassVar[SW] = SW.UNKNOWN

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.__class__.__name__)
        self.detail = detail


class WrongLength(CardError):
    """`6700`: shorter than 4 bytes, Lc not matching, or data of the wrong size."""

    sw = SW.WRONG_LENGTH


class ConditionsNotSatisfied(CardError):
    """`6985`: wrong state, second GENERATE AC, ATC exhausted, no response to get."""

    sw = SW.CONDITIONS_NOT_SATISFIED


class WrongData(CardError):
    """`6A80`: malformed data, or GENERATE AC amount/currency not the GPO's."""

    sw = SW.WRONG_DATA


class FileNotFound(CardError):
    """`6A82`: SELECT of a name the card does not hold."""

    sw = SW.FILE_NOT_FOUND


class RecordNotFound(CardError):
    """`6A83`: READ RECORD of a record or SFI the card does not hold."""

    sw = SW.RECORD_NOT_FOUND


class IncorrectP1P2(CardError):
    """`6A86`: P1-P2 not valid for the instruction."""

    sw = SW.INCORRECT_P1P2


class ReferencedDataNotFound(CardError):
    """`6A88`: GET DATA of a tag the card does not hold (or no last answer yet)."""

    sw = SW.REFERENCED_DATA_NOT_FOUND


class InsNotSupported(CardError):
    """`6D00`: an instruction the card does not know."""

    sw = SW.INS_NOT_SUPPORTED


class ClaNotSupported(CardError):
    """`6E00`: a class byte the instruction does not take."""

    sw = SW.CLA_NOT_SUPPORTED


class StateFileError(ValueError):
    """A stored card state or card description that cannot be read (never a torn write)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
