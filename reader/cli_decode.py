"""`hcepay decode`: a command or response APDU, and any BER-TLV in its data, as a tree or JSON."""

from __future__ import annotations

import json
import string
from typing import TYPE_CHECKING, Annotated, Any

import typer

from apdu.elements import format_of, name_of
from apdu.errors import DecodeError
from apdu.sw import describe, ins_name
from reader.cli_common import ExitCode, JsonOption, examples, fail, hex_input, plural, stdout

if TYPE_CHECKING:
    from apdu import tlv

MAX_INPUT_HEX = 2 * (65536 + 9)  # the longest extended APDU
_PRINTABLE = frozenset(string.printable.encode()) - frozenset(b"\t\n\r\x0b\x0c")


def _parse_hex(text: str) -> bytes:
    cleaned = "".join(text.split()).replace(":", "")
    if len(cleaned) > MAX_INPUT_HEX:
        fail(f"input longer than {MAX_INPUT_HEX} hex digits", ExitCode.DECLINED)
    try:
        return hex_input(cleaned)
    except ValueError as exc:
        fail(f"input {exc}", ExitCode.DECLINED)


def _tlv_tree(data: bytes) -> tuple[tuple[tlv.Tlv, ...] | None, str | None]:
    """The TLVs in `data` and None; or None and why they are not shown (data that is not
    BER-TLV: a DF name, DOL data, a malformed answer; or nested deeper than tlv.decode's
    bound). (None, None) for no data; data of padding bytes only is an empty tree."""
    from apdu import tlv

    if not data:
        return None, None
    try:
        return tlv.decode(data), None
    except DecodeError as exc:
        return None, str(exc)


def _tlv_json(item: tlv.Tlv) -> dict[str, Any]:
    from apdu.tlv import tag_hex

    node: dict[str, Any] = {
        "tag": f"{tag_hex(item.tag)}",
        "name": name_of(item.tag),
        "value": item.value.hex().upper(),
    }
    if item.constructed:
        node["children"] = [_tlv_json(child) for child in item.children]
    return node


def _text_of(item: tlv.Tlv) -> str:
    if format_of(item.tag) in ("an", "ans") or (
        item.value and all(b in _PRINTABLE for b in item.value) and len(item.value) > 3
    ):
        shown = "".join(chr(b) if b in _PRINTABLE else "." for b in item.value)
        return f' "{shown}"'  # a card's control bytes never reach the terminal
    return ""


def _tlv_lines(items: tuple[tlv.Tlv, ...], depth: int = 0) -> list[str]:
    from apdu.tlv import tag_hex

    lines: list[str] = []
    for item in items:
        head = f"{'  ' * depth}{tag_hex(item.tag)} {name_of(item.tag)}"
        if item.constructed:
            lines.append(f"{head} ({plural(len(item.value), 'byte')})")
            lines.extend(_tlv_lines(item.children, depth + 1))
        else:
            lines.append(f"{head}: {item.value.hex().upper()}{_text_of(item)}")
    return lines


def decode_command(raw: bytes) -> dict[str, Any]:
    """The fields of a command APDU (ISO 7816-4 5.1) as a JSON-ready dict."""
    from apdu.command import CommandAPDU

    cmd = CommandAPDU.parse(raw)
    tree, why = _tlv_tree(cmd.data)
    return {
        "kind": "command",
        "case": cmd.case,
        "cla": f"{cmd.cla:02X}",
        "ins": f"{cmd.ins:02X}",
        "ins_name": ins_name(cmd.ins),
        "p1": f"{cmd.p1:02X}",
        "p2": f"{cmd.p2:02X}",
        "lc": len(cmd.data) if cmd.data else None,
        "data": cmd.data.hex().upper(),
        "le": cmd.le,
        "tlv": [_tlv_json(t) for t in tree] if tree is not None else None,
        "tlv_error": why,
    }


def decode_response(raw: bytes) -> dict[str, Any]:
    """The fields of a response APDU as a JSON-ready dict."""
    from apdu.response import ResponseAPDU

    rsp = ResponseAPDU.parse(raw)
    tree, why = _tlv_tree(rsp.data)
    return {
        "kind": "response",
        "data": rsp.data.hex().upper(),
        "sw": f"{rsp.sw:04X}",
        "sw_meaning": describe(rsp.sw),
        "tlv": [_tlv_json(t) for t in tree] if tree is not None else None,
        "tlv_error": why,
    }


def _print_text(result: dict[str, Any], raw: bytes, response: bool) -> None:
    from apdu.command import CommandAPDU
    from apdu.response import ResponseAPDU

    if response:
        rsp = ResponseAPDU.parse(raw)
        stdout.print(f"response: {plural(len(rsp.data), 'data byte')}")
        stdout.print(f"SW    {result['sw_meaning']}")
        data = rsp.data
    else:
        cmd = CommandAPDU.parse(raw)
        stdout.print(f"command, case {result['case']}")
        stdout.print(f"CLA   {result['cla']}")
        stdout.print(f"INS   {result['ins']} {result['ins_name']}")
        stdout.print(f"P1 P2 {result['p1']} {result['p2']}")
        if cmd.data:
            stdout.print(f"Lc    {len(cmd.data)}")
        if cmd.le is not None:
            stdout.print(f"Le    {cmd.le}")
        data = cmd.data
    if data:
        stdout.print(f"data  {data.hex().upper()}")
    tree, why = _tlv_tree(data)
    if why is not None and response:  # a command's data is often not TLV (an AID, DOL data)
        stdout.print(f"TLV   not decoded: {why}")
    if tree:
        stdout.print("TLV:")
        for line in _tlv_lines(tree, 1):
            stdout.print(line)


def decode(
    hex_apdu: Annotated[
        str,
        typer.Argument(
            metavar="HEX",
            help="The APDU in hex, header first (00A40400...); blanks and colons between "
            "bytes are skipped (quote them).",
        ),
    ],
    response: Annotated[
        bool, typer.Option("--response", "-r", help="Decode a response APDU (data + SW).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Decode a command APDU (or, with --response, a response APDU) and any BER-TLV inside.

    Data that does not decode as BER-TLV is shown in hex: an answer's (malformed, or too
    deeply nested) with one line saying why; a command's (often no TLV: a DF name, DOL data)
    without. With --json, `tlv` is then null and `tlv_error` the reason, for both (null
    when the tree is there, or there is no data).

    Exit 0 decoded, 1 not an APDU (not hex, or a length that does not fit ISO 7816-4's
    cases), 2 usage."""
    raw = _parse_hex(hex_apdu)
    try:
        result = decode_response(raw) if response else decode_command(raw)
    except DecodeError as exc:
        fail(str(exc), ExitCode.DECLINED)
    if as_json:
        stdout.print(json.dumps(result))
    else:
        _print_text(result, raw, response)


def register(app: typer.Typer) -> None:
    """Add `hcepay decode` to the root app."""
    app.command(
        "decode",
        epilog=examples(
            "hcepay decode 00A404000E325041592E5359532E444446303100",
            "hcepay decode --response 770F82020100940408010301" + "9F360200019000",
        ),
    )(decode)
