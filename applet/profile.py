"""Card folders and profiles (docs/architecture.md): card.json, app.pem, state.dat; issuing.

A card folder holds what a card presents (`card.json`), its APP key pair and its durable
state. A profile in `vectors/profiles/` has the same shape, with published test keys
(`"published_test_keys": true` in card.json waives the 0600 check on app.pem).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from apdu import messages as m
from applet.errors import StateFileError
from applet.payment import CardData, CardEnv, PaymentApplet
from applet.runtime import CardRuntime
from applet.state import MAX_USED, CardState
from applet.store import SEED_FILE, STATE_FILE, FileStateStore, StateStore, hold_card_folder
from authority.errors import KeyFileError
from authority.home import read_problem, write_atomic
from authority.iso9796 import HASH_SHA256
from authority.keyfiles import load_private, save_private, save_public
from authority.license import LicenseFields, account_from_digits, issue_license
from authority.rsa import RsaPrivateKey

CARD_FILE: Final = "card.json"
APP_KEY_FILE: Final = "app.pem"
APP_PUBLIC_FILE: Final = "app.pub.pem"
CARD_VERSION: Final = 1
MAX_CARD_TEXT: Final = 64 * 1024
MAX_HOLDER: Final = 26  # EMV 5F20: 2 to 26 characters
DEFAULT_CURRENCY: Final = 156


@dataclass(frozen=True)
class CardProfile:
    """card.json: what a card presents and its credit limit (docs/architecture.md)."""

    account: str  # digits, up to 19
    expiry: str  # YYMMDD
    holder: str
    limit: int  # minor units
    currency: int  # ISO 4217 numeric
    ca_index: int
    license: bytes
    remainder: bytes
    exponent: bytes
    serial: int
    published_test_keys: bool = False

    def __post_init__(self) -> None:
        account_from_digits(self.account)
        if len(self.expiry) != 6 or not (self.expiry.isascii() and self.expiry.isdigit()):
            raise ValueError("expiry must be YYMMDD")
        if not self.holder.isascii() or len(self.holder) > MAX_HOLDER:
            raise ValueError(f"holder must be ASCII, at most {MAX_HOLDER} characters")
        if not 0 <= self.limit <= MAX_USED:
            raise ValueError("limit must fit n12")
        if not 0 <= self.currency <= 9999 or not 1 <= self.ca_index <= 0xFF:
            raise ValueError("currency must fit n4 and ca_index 1..255")

    @property
    def account_5a(self) -> bytes:
        """The `5A` value: the digits as cn, F-padded to a whole byte (PROTOCOL.md §1, §4)."""
        digits = self.account
        return bytes.fromhex(digits + "F" * (len(digits) % 2))

    def card_data(self) -> CardData:
        """The applet's view of this card."""
        return CardData(
            self.account_5a,
            bytes.fromhex(self.expiry),
            self.holder.encode("ascii"),
            self.ca_index,
            self.limit,
            self.license,
            self.remainder,
            self.exponent,
        )

    def to_json(self) -> str:
        """card.json text."""
        obj: dict[str, Any] = {
            "hcepay_card": CARD_VERSION,
            "account": self.account,
            "expiry": self.expiry,
            "holder": self.holder,
            "limit": self.limit,
            "currency": self.currency,
            "ca_index": self.ca_index,
            "license": self.license.hex().upper(),
            "remainder": self.remainder.hex().upper(),
            "exponent": self.exponent.hex().upper(),
            "serial": self.serial,
        }
        if self.published_test_keys:
            obj["published_test_keys"] = True
        return json.dumps(obj, indent=2) + "\n"


def _field(obj: dict[str, Any], key: str, kind: type) -> Any:
    """The field `key` of type `kind`; ValueError saying it is missing, or of another type."""
    if key not in obj:
        raise ValueError(f"missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{key!r} must be {kind.__name__}")
    return value


def _hex_field(obj: dict[str, Any], key: str) -> bytes:
    """A hex string field's bytes; ValueError names the field, not fromhex's position."""
    text = _field(obj, key, str)
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{key!r} must be hexadecimal") from None


def profile_from_json(text: str) -> CardProfile:
    """Parse card.json; ValueError names the bad field."""
    try:
        obj = json.loads(text)
    except RecursionError:  # json's decoder recurses once per level
        raise ValueError("nested too deeply") from None
    except json.JSONDecodeError as exc:  # its own text names no file and reads as Python's
        raise ValueError(f"not valid JSON (line {exc.lineno} column {exc.colno})") from None
    version = obj.get("hcepay_card") if isinstance(obj, dict) else None
    if type(version) is not int or version != CARD_VERSION:  # not true, not 1.0
        raise ValueError(f"not an hcepay card (version {CARD_VERSION})")
    return CardProfile(
        account=_field(obj, "account", str),
        expiry=_field(obj, "expiry", str),
        holder=_field(obj, "holder", str),
        limit=_field(obj, "limit", int),
        currency=_field(obj, "currency", int),
        ca_index=_field(obj, "ca_index", int),
        license=_hex_field(obj, "license"),
        remainder=_hex_field(obj, "remainder"),
        exponent=_hex_field(obj, "exponent"),
        serial=_field(obj, "serial", int),
        published_test_keys=obj.get("published_test_keys") is True,
    )


def load_profile(folder: Path) -> CardProfile:
    """Read `<folder>/card.json`; StateFileError when missing or malformed."""
    path = folder / CARD_FILE
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CARD_TEXT + 1)
        if len(raw) > MAX_CARD_TEXT:
            raise ValueError("too large")
        return profile_from_json(raw.decode("utf-8"))
    except FileNotFoundError:
        raise StateFileError(str(path), "no such file") from None
    except OSError as exc:
        raise StateFileError(str(path), read_problem(exc)) from None
    except UnicodeDecodeError:  # its own text is Python's ("'utf-8' codec can't decode")
        raise StateFileError(str(path), "bad card description: not UTF-8 text") from None
    except ValueError as exc:
        raise StateFileError(str(path), f"bad card description: {exc}") from None


def load_app_key(folder: Path, profile: CardProfile) -> RsaPrivateKey:
    """The APP private key; StateFileError (a ValueError) when it cannot be used."""
    try:
        return load_private(folder / APP_KEY_FILE, published_test_key=profile.published_test_keys)
    except KeyFileError as exc:
        raise StateFileError(str(folder / APP_KEY_FILE), exc.reason) from None


def open_card(folder: Path, store: StateStore | None = None) -> CardRuntime:
    """A card ready to serve: the folder's description and key, its state in `store`.

    The default store is the folder's own `state.dat` (FileStateStore; a `state.json` there
    is only its starting seed), and this process then holds the folder: another process
    that opens it gets CardInUseError (an OSError), so that a card is never served twice.
    Raises StateFileError (a ValueError) or OSError when the folder cannot be used.
    """
    profile = load_profile(folder)
    key = load_app_key(folder, profile)
    applet = PaymentApplet(CardEnv(profile.card_data(), key))
    if store is None:
        hold_card_folder(folder)
        _check_state_kept(folder, profile)
        store = FileStateStore(folder)
        store.settle()  # nothing is answered from a state an earlier process did not store
    return CardRuntime(applet, store)


def _check_state_kept(folder: Path, profile: CardProfile) -> None:
    """An issued card always has its state (`card issue` makes state.dat; a hand-written
    state.json seeds one): with neither, it was lost, and a fresh state would reuse its ATCs
    and forget its used credit (P§6). Only a profile with published test keys starts fresh."""
    if profile.published_test_keys:
        return
    if not (folder / STATE_FILE).exists() and not (folder / SEED_FILE).exists():
        raise StateFileError(
            str(folder / STATE_FILE),
            "the card's state is missing (no state.dat, no state.json): restore state.dat "
            "from a backup (a card started afresh would reuse its ATCs, which a terminal "
            "refuses as replays, and forget its used credit)",
        )


def record1_value(profile_fields: CardData) -> bytes:
    """The value of record 1 (inside its 70), which the license hash covers (P§5.1)."""
    d = profile_fields
    record = m.Record1(d.account, d.expiry, d.holder, m.cdol1_bytes(), d.ca_index)
    _, value = m.parse_record1(m.build_record1(record))
    return value


@dataclass(frozen=True)
class IssueRequest:
    """What `hcepay card issue` asks for."""

    account: str
    limit: int
    expiry: str  # YYMMDD, the last day of the expiry month
    holder: str
    ca_index: int
    serial: int
    currency: int = DEFAULT_CURRENCY
    published_test_keys: bool = False


def issue_card(
    folder: Path, request: IssueRequest, ca: RsaPrivateKey, app: RsaPrivateKey
) -> CardProfile:
    """Write a new card folder: card.json (with a license signed by `ca`), app key pair,
    and (for a card, not a profile) a fresh state.json. Refuses an existing card.json."""
    if (folder / CARD_FILE).exists():
        raise FileExistsError(f"{folder / CARD_FILE} exists already")
    draft = CardProfile(
        request.account,
        request.expiry,
        request.holder,
        request.limit,
        request.currency,
        request.ca_index,
        b"",
        b"",
        b"",
        request.serial,
        request.published_test_keys,
    )
    fields = LicenseFields(
        account=account_from_digits(request.account),
        expiry=bytes.fromhex(request.expiry[2:4] + request.expiry[0:2]),  # YYMMDD -> MMYY
        serial=request.serial,
        hash_algorithm=HASH_SHA256,
        app_key=app.public,
    )
    issued = issue_license(ca, fields, record1_value(draft.card_data()))
    profile = CardProfile(
        draft.account,
        draft.expiry,
        draft.holder,
        draft.limit,
        draft.currency,
        draft.ca_index,
        issued.license,
        issued.remainder,
        issued.exponent,
        draft.serial,
        draft.published_test_keys,
    )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    save_private(folder / APP_KEY_FILE, app)
    save_public(folder / APP_PUBLIC_FILE, app.public)
    if not request.published_test_keys:
        FileStateStore(folder).commit(CardState())
    write_atomic(folder / CARD_FILE, profile.to_json().encode("utf-8"))
    return profile


__all__ = [
    "CardProfile",
    "IssueRequest",
    "issue_card",
    "load_app_key",
    "load_profile",
    "open_card",
    "profile_from_json",
    "record1_value",
]
