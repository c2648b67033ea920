"""One table of the data elements the protocol and its EMV neighbours use (PROTOCOL.md §1-§4).

Each tag has a name, a format (`n`, `cn`, `b`, `an`, `ans`; PROTOCOL.md §1) used to fill
DOLs (EMV Book 3 5.4). Traces, vectors and `-v` keep whole APDUs, byte for byte (a replay
compares them): an account id or a holder's name in them is a test card's (docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Element:
    """A data element: its name and format (EMV Book 3 Annex A)."""

    name: str
    format: str


ELEMENTS: dict[int, Element] = {
    # templates (ISO 7816-4 5.2, EMV Book 1 11.3)
    0x61: Element("Application Template", "b"),
    0x6F: Element("FCI Template", "b"),
    0x70: Element("Record Template", "b"),
    0x77: Element("Response Message Template Format 2", "b"),
    0x80: Element("Response Message Template Format 1", "b"),
    0xA5: Element("FCI Proprietary Template", "b"),
    0xBF0C: Element("FCI Issuer Discretionary Data", "b"),
    # discovery and selection (PROTOCOL.md §2, §3)
    0x4F: Element("Application Identifier (AID)", "b"),
    0x50: Element("Application Label", "an"),
    0x84: Element("Dedicated File (DF) Name", "b"),
    0x87: Element("Application Priority Indicator", "b"),
    0x88: Element("Short File Identifier (SFI)", "b"),
    0x9F38: Element("Processing Options Data Object List (PDOL)", "b"),
    0x5F2D: Element("Language Preference", "an"),
    0x9F11: Element("Issuer Code Table Index", "n"),
    0x9F12: Element("Application Preferred Name", "ans"),
    # processing (PROTOCOL.md §3)
    0x82: Element("Application Interchange Profile (AIP)", "b"),
    0x83: Element("Command Template", "b"),
    0x94: Element("Application File Locator (AFL)", "b"),
    0x9F36: Element("Application Transaction Counter (ATC)", "b"),
    # terminal data in PDOL and CDOL1 (PROTOCOL.md §3)
    0x9F02: Element("Amount, Authorised (Numeric)", "n"),
    0x9F03: Element("Amount, Other (Numeric)", "n"),
    0x5F2A: Element("Transaction Currency Code", "n"),
    0x9F37: Element("Unpredictable Number", "b"),
    0x9F1A: Element("Terminal Country Code", "n"),
    0x9A: Element("Transaction Date", "n"),
    0x9F21: Element("Transaction Time", "n"),
    0x9C: Element("Transaction Type", "n"),
    0x9F16: Element("Merchant Identifier", "ans"),
    0x9F1C: Element("Terminal Identification", "an"),
    0x95: Element("Terminal Verification Results", "b"),
    0x9F33: Element("Terminal Capabilities", "b"),
    0x9F35: Element("Terminal Type", "n"),
    0x9F66: Element("Terminal Transaction Qualifiers", "b"),
    # records (PROTOCOL.md §4)
    0x5A: Element("Application PAN (credit account id)", "cn"),
    0x57: Element("Track 2 Equivalent Data", "b"),
    0x5F20: Element("Cardholder Name", "ans"),
    0x5F24: Element("Application Expiration Date", "n"),
    0x5F34: Element("PAN Sequence Number", "n"),
    0x8C: Element("CDOL1", "b"),
    0x8D: Element("CDOL2", "b"),
    0x8E: Element("CVM List", "b"),
    0x8F: Element("Certification Authority Public Key Index", "b"),
    0x90: Element("Issuer Public Key Certificate", "b"),
    0x92: Element("Issuer Public Key Remainder", "b"),
    0x9F32: Element("Issuer Public Key Exponent", "b"),
    0x9F46: Element("ICC Public Key Certificate (APP license)", "b"),
    0x9F47: Element("ICC Public Key Exponent", "b"),
    0x9F48: Element("ICC Public Key Remainder", "b"),
    0x9F4A: Element("Static Data Authentication Tag List", "b"),
    # GENERATE AC (PROTOCOL.md §3, §5.2)
    0x9F26: Element("Application Cryptogram", "b"),
    0x9F27: Element("Cryptogram Information Data", "b"),
    0x9F10: Element("Issuer Application Data", "b"),
    0x9F4B: Element("Signed Dynamic Application Data (authorization)", "b"),
    # the protocol's private tags (PROTOCOL.md §3, §9)
    0xDF01: Element("Available Credit", "n"),
    0xDF02: Element("Last GENERATE AC Answer", "b"),
    0xDF03: Element("CDOL1 Data of the Last Answer", "b"),
}

_UNKNOWN = Element("unknown", "b")


def element(tag: int) -> Element:
    """The table's entry for `tag` (an unknown tag is binary)."""
    return ELEMENTS.get(tag, _UNKNOWN)


def name_of(tag: int) -> str:
    """The element's name, or "unknown"."""
    return element(tag).name


def format_of(tag: int) -> str:
    """The element's format: n, cn, b, an or ans ("b" when unknown)."""
    return element(tag).format
