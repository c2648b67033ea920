"""Codec throughput: apdu/ (construct, compiled) against a hand-written struct/slicing baseline.

Parses and builds 100k mixed command APDUs (all seven ISO 7816-4 forms) and decodes/encodes
TLV trees, then does the same with a baseline written with `struct` and slicing that yields
the same models, in the same run, and prints the rates and their ratio.

    .venv/bin/python bench/codec.py [--count N]
"""

from __future__ import annotations

import argparse
import random
import struct
import time
from collections.abc import Callable, Sequence

from apdu import messages as m
from apdu import tlv
from apdu.command import CommandAPDU
from apdu.response import ResponseAPDU

_HEADER = struct.Struct(">BBBB")
_U16 = struct.Struct(">H")


def baseline_parse(raw: bytes) -> CommandAPDU:
    """The same seven forms, by slicing (no error reporting beyond ValueError)."""
    size = len(raw)
    cla, ins, p1, p2 = _HEADER.unpack_from(raw)
    if size == 4:
        return CommandAPDU(cla, ins, p1, p2)
    if size == 5:
        return CommandAPDU(cla, ins, p1, p2, b"", raw[4] or 256)
    lc = raw[4]
    if lc:
        if size == 5 + lc:
            return CommandAPDU(cla, ins, p1, p2, raw[5:])
        if size == 6 + lc:
            return CommandAPDU(cla, ins, p1, p2, raw[5:-1], raw[-1] or 256)
        raise ValueError("bad Lc")
    (n,) = _U16.unpack_from(raw, 5)
    if size == 7:
        return CommandAPDU(cla, ins, p1, p2, b"", n or 65536, True)
    if size == 7 + n:
        return CommandAPDU(cla, ins, p1, p2, raw[7:], None, True)
    (le,) = _U16.unpack_from(raw, 7 + n)
    return CommandAPDU(cla, ins, p1, p2, raw[7 : 7 + n], le or 65536, True)


def baseline_build(c: CommandAPDU) -> bytes:
    """The same encodings, by struct.pack and concatenation."""
    head = _HEADER.pack(c.cla, c.ins, c.p1, c.p2)
    if c.extended:
        body = b"\x00" + (_U16.pack(len(c.data)) + c.data if c.data else b"")
        return head + body + (_U16.pack(c.le % 65536) if c.le is not None else b"")
    lc = bytes((len(c.data),)) + c.data if c.data else b""
    return head + lc + (bytes((c.le % 256,)) if c.le is not None else b"")


def baseline_tlv(data: bytes, pos: int = 0, end: int | None = None) -> list[tlv.Tlv]:
    """A minimal recursive BER-TLV reader (1-2 byte tags, 81/82 lengths)."""
    end = len(data) if end is None else end
    out: list[tlv.Tlv] = []
    while pos < end:
        if data[pos] in (0, 0xFF):
            pos += 1
            continue
        tag = data[pos]
        pos += 1
        if tag & 0x1F == 0x1F:
            tag = tag << 8 | data[pos]
            pos += 1
        n = data[pos]
        pos += 1
        if n == 0x81:
            n, pos = data[pos], pos + 1
        elif n == 0x82:
            n, pos = _U16.unpack_from(data, pos)[0], pos + 2
        value = data[pos : pos + n]
        kids = tuple(baseline_tlv(data, pos, pos + n)) if tlv.is_constructed(tag) else ()
        out.append(tlv.Tlv(tag, value, kids))
        pos += n
    return out


def sample_apdus(count: int, rng: random.Random) -> list[bytes]:
    """A mix of the protocol's commands and random APDUs of every form."""
    protocol = [
        m.select(m.PPSE_NAME),
        m.select(m.CREDIT_AID),
        m.gpo(bytes(40)),
        m.read_record(1),
        m.generate_ac(bytes(42)),
        m.get_data(0x9F36),
        m.get_response(0x20),
    ]
    pool = [c.to_bytes() for c in protocol]
    for extended in (False, True):
        for data_size, le in ((0, None), (0, 200), (30, None), (30, 256), (250, 0x20)):
            if extended and not data_size and le is None:
                continue
            c = CommandAPDU(0x80, 0x10, 1, 2, rng.randbytes(data_size), le, extended)
            pool.append(c.to_bytes())
    return [pool[i % len(pool)] for i in range(count)]


def sample_trees() -> list[bytes]:
    """The protocol's responses: FCIs, GPO, records, GENERATE AC."""
    entry = m.DirectoryEntry(m.CREDIT_AID, m.APP_LABEL, 1)
    r1 = m.Record1(bytes.fromhex("6200123456789012"), b"\x30\x12\x31", b"T/C", m.cdol1_bytes(), 1)
    gac = m.build_generate_ac_response(m.GenerateAcResponse(0x40, 7, bytes(248)))
    return [
        m.build_ppse_fci(m.PpseFci(m.PPSE_NAME, (entry,))),
        m.build_app_fci(m.AppFci(m.CREDIT_AID, m.APP_LABEL, 1, m.pdol_bytes())),
        m.build_gpo_response(m.GpoResponse(m.AIP, m.AFL, 7)),
        m.build_record1(r1),
        m.build_record2(m.Record2(bytes(248))),
        gac,
        m.build_last_answer(m.LastAnswer(gac, bytes(42))),
    ]


def rate(fn: Callable[[], object], items: int, repeat: int = 3) -> float:
    """Best of `repeat` runs, in items per second."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return items / best


def _row(name: str, ours: float, base: float) -> None:
    print(f"{name:<26} {ours:>12,.0f}/s {base:>12,.0f}/s {base / ours:>8.2f}x")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args(argv)
    rng = random.Random(7)
    raws = sample_apdus(args.count, rng)
    models = [CommandAPDU.parse(r) for r in raws]
    assert [baseline_parse(r) for r in raws[:200]] == models[:200]
    assert [baseline_build(c) for c in models[:200]] == raws[:200]
    trees = sample_trees() * (args.count // 70)
    assert [tuple(baseline_tlv(t)) for t in trees[:7]] == [tlv.decode(t) for t in trees[:7]]
    decoded = [tlv.decode(t) for t in trees]
    rsps = [r + b"\x90\x00" for r in trees]

    print(f"{args.count:,} mixed command APDUs, {len(trees):,} TLV trees (best of 3)")
    print(f"{'':<26} {'apdu/':>14} {'baseline':>14} {'ratio':>9}")
    _row(
        "APDU parse",
        rate(lambda: [CommandAPDU.parse(r) for r in raws], len(raws)),
        rate(lambda: [baseline_parse(r) for r in raws], len(raws)),
    )
    _row(
        "APDU build",
        rate(lambda: [c.to_bytes() for c in models], len(models)),
        rate(lambda: [baseline_build(c) for c in models], len(models)),
    )
    _row(
        "APDU parse+build",
        rate(lambda: [CommandAPDU.parse(r).to_bytes() for r in raws], len(raws)),
        rate(lambda: [baseline_build(baseline_parse(r)) for r in raws], len(raws)),
    )
    _row(
        "response + TLV tree decode",
        rate(lambda: [tlv.decode(ResponseAPDU.parse(r).data) for r in rsps], len(rsps)),
        rate(lambda: [baseline_tlv(r[:-2]) for r in rsps], len(rsps)),
    )
    encode_rate = rate(lambda: [tlv.encode(*d) for d in decoded], len(decoded))
    print(f"{'TLV tree encode':<26} {encode_rate:>12,.0f}/s")
    print("ratio = apdu/ time / baseline time (goal: APDU parse >= 100,000/s, ratio <= 3x)")


if __name__ == "__main__":
    main()
