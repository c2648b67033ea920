"""A whole payment through the applet alone, every response checked byte by byte against
PROTOCOL.md §3, §4, §5 (written out by hand here, not built with apdu.messages)."""

from __future__ import annotations

import hashlib
from typing import Any

from applet.profile import CardProfile
from authority import iso9796
from authority.keyfiles import load_public
from authority.rsa import RsaPublicKey

AID = "F04843455041590001"
PPSE = "325041592E5359532E4444463031"
PSE = "315041592E5359532E4444463031"
LABEL = "48434520435245444954"  # "HCE CREDIT"
PDOL = "9F02065F2A029F37049F1A029A039F160F9F1C08"
CDOL1 = "9F02065F2A029A039F21039C019F37049F160F9F1C08"
HOLDER = b"TEST/CARD ONE".hex().upper()
MERCHANT = b"MERCHANT0000001".hex().upper()
TERMINAL = b"TERM0001".hex().upper()
PDOL_DATA = "00000000123401561A2B3C4D0156261128" + MERCHANT + TERMINAL
CDOL1_DATA = "0000000012340156261128120000001A2B3C4D" + MERCHANT + TERMINAL


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def send(card: Any, command: str) -> str:
    return bytes(card.process(h(command))).hex().upper()


def test_discovery_answers_byte_by_byte(make_card: Any) -> None:
    card = make_card()
    entry = f"611A4F09{AID}500A{LABEL}870101"
    assert send(card, f"00A404000E{PPSE}00") == f"6F31840E{PPSE}A51FBF0C1C{entry}9000"
    assert send(card, f"00A404000E{PSE}00") == f"6F15840E{PSE}A503880101" + "9000"
    assert send(card, "00B2010C00") == f"701C{entry}9000"
    assert send(card, "00B2020C00") == "6A83"


def test_whole_payment_byte_by_byte(
    make_card: Any, term: Any, profile: CardProfile, profile_folder: Any
) -> None:
    card = make_card()
    assert send(card, f"00A404000E{PPSE}00").startswith("6F31")
    fci = send(card, f"00A4040009{AID}00")
    assert fci == f"6F338409{AID}A526500A{LABEL}8701019F3814{PDOL}9000"

    gpo = send(card, f"80A800002A8328{PDOL_DATA}00")
    assert gpo == "770F820201009404080103019F360200019000"

    record1 = send(card, "00B2010C00")
    body1 = f"5A0862001234567890125F24033012315F200D{HOLDER}8C16{CDOL1}8F0101"
    assert record1 == f"70{len(h(body1)):02X}{body1}9000"

    license = profile.license
    assert len(license) == 248  # N_CA for 1984 bits
    assert send(card, "00B2020C00") == f"7081FC9F4681F8{license.hex().upper()}9000"

    remainder = profile.remainder.hex().upper()
    body3 = f"9F4701039F48{len(profile.remainder):02X}{remainder}"
    assert send(card, "00B2030C00") == f"70{len(h(body3)):02X}{body3}9000"

    # GENERATE AC: 77 82 01 05 {9F27 01 40, 9F36 02 0001, 9F4B 81 F8 <248>} = 265 bytes:
    # 256 bytes with 61 09, then GET RESPONSE 09 (PROTOCOL.md §3 chaining).
    first = send(card, f"80AE50002A{CDOL1_DATA}00")
    assert first.endswith("6109") and len(h(first)) == 258
    rest = send(card, "00C0000009")
    assert rest.endswith("9000") and len(h(rest)) == 11
    answer = h(first[:-4] + rest[:-4])
    assert answer[:17] == h("778201059F2701409F360200019F4B81F8")
    authorization = answer[17:]
    assert len(authorization) == 248

    ca = load_public(profile_folder / "ca-01.pub.pem")
    app_key = check_license(ca, profile, h(body1))
    check_authorization(app_key, authorization, cid=0x40)

    assert send(card, "80CA9F3600") == "9F360200019000"
    assert send(card, "80CADF0100") == "DF01060000000987669000"
    last, sw = term.exchange(card, h("80CADF0200"))
    assert sw == 0x9000
    assert last == h("DF02820136") + answer + h(f"DF032A{CDOL1_DATA}")


def check_license(ca: RsaPublicKey, profile: CardProfile, record1_value: bytes) -> RsaPublicKey:
    """Recover the license (PROTOCOL.md §5.1) and check each field; return the APP key."""
    x = iso9796.recover(ca, profile.license)
    assert (x[0], x[1], x[-1]) == (0x6A, 0x04, 0xBC)
    assert x[2:12] == h("6200123456789012FFFF")
    assert x[12:14] == h("1230")  # MMYY
    assert x[14:17] == h("000001")  # serial
    assert (x[17], x[18], x[20]) == (0x02, 0x01, 0x01)  # SHA-256, RSA, exponent length 1
    n_app = x[19]
    leftmost = x[21 : 248 - 33]
    assert len(leftmost) == 248 - 54
    modulus = (leftmost + profile.remainder)[:n_app]
    hashed = hashlib.sha256(x[1 : 248 - 33] + profile.remainder + b"\x03" + record1_value)
    assert x[248 - 33 : 248 - 1] == hashed.digest()
    return RsaPublicKey(int.from_bytes(modulus, "big"), 3)


def check_authorization(app: RsaPublicKey, authorization: bytes, cid: int) -> None:
    """Recover the authorization (PROTOCOL.md §5.2) and check each field."""
    x = iso9796.recover(app, authorization)
    n = len(x)
    assert (x[0], x[1], x[2], x[3], x[-1]) == (0x6A, 0x05, 0x02, 25, 0xBC)
    dynamic = h("0001") + bytes([cid]) + h("00000000123401561A2B3C4D6200123456789012FFFF")
    assert x[4:29] == dynamic
    assert x[29 : n - 33] == b"\xbb" * (n - 62)
    digest = hashlib.sha256(x[1 : n - 33] + h(CDOL1_DATA)).digest()
    assert x[n - 33 : n - 1] == digest


def test_decline_is_signed_with_cid_00(make_card: Any, term: Any, env: Any) -> None:
    card = make_card(used=99_000)
    term.exchange(card, bytes.fromhex(f"00A4040009{AID}00"))
    term.exchange(card, term.gpo(amount=1001))
    data, sw = term.exchange(card, term.generate_ac(amount=1001))
    assert sw == 0x9000
    assert data[:7] == h("778201059F2701") and data[7] == 0x00
    x = iso9796.recover(env.app_key.public, data[17:])
    assert x[4:7] == h("000100") and x[7:13] == h("000000001001")
    assert card.state.card.used == 99_000
