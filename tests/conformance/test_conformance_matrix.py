"""The command × status word matrix of docs/conformance.md is what the card vectors prove.

The columns come from PROTOCOL.md §6's list of status words and the rows from §3's commands
(GET DATA once per tag §3 and §9 name), so a status word or command added to PROTOCOL.md
fails here until the matrix has it. Every cell the matrix marks as answered must be shown by
a step of each vector it names, and every (command, status word) pair a card vector shows,
or the applet answers when probed in each state of §6, must be a marked cell: the table can
neither overclaim nor fall behind the suite or the applet.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Final

from apdu import messages as m
from apdu.command import CommandAPDU
from apdu.dol import fill_dol
from apdu.errors import DecodeError
from apdu.sw import INS, SW1_MORE_DATA, SW1_WRONG_LE
from reader import vectors as vx

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "docs" / "PROTOCOL.md"
CONFORMANCE = ROOT / "docs" / "conformance.md"
CARD = sorted((ROOT / "vectors" / "card").rglob("*.json"))

NOT_APPLICABLE: Final = "·"  # a cell no command of that row can be answered (docs/conformance.md)
SELECT_NAMES: Final = {m.PPSE_NAME: "SELECT PPSE", m.PSE_NAME: "SELECT PSE"}
APP_RECORDS: Final = (1, 2, 3)
MALFORMED: Final = "malformed APDU"
PSE_DIRECTORY: Final = "READ RECORD (PSE directory)"
APP_SFI_P2: Final = 0x0C  # SFI 1, P1 a record number (ISO 7816-4 7.3.3)
Matrix = dict[str, dict[str, str]]  # row -> column -> cell text


def column(sw: int) -> str:
    """A status word as the matrix heads it: `61xx` and `6Cxx` are one column each."""
    if sw >> 8 in (SW1_MORE_DATA, SW1_WRONG_LE):
        return f"{sw >> 8:02X}xx"
    return f"{sw:04X}"


def cells_of(vector: vx.Vector) -> set[tuple[str, str]]:
    """(row, column) of each step of a vector whose status word is known."""
    return cells_in(vector.steps)


def cells_in(steps: Iterable[vx.Step]) -> set[tuple[str, str]]:
    """(row, column) of each step whose status word is known; a READ RECORD is of the PSE
    directory while the PSE is the last name selected (PROTOCOL.md §3 discovery)."""
    cells: set[tuple[str, str]] = set()
    pse = False
    for step in steps:
        c, r = step.command, step.response
        if not all(r.known[-2:]):
            continue
        sw = int.from_bytes(r.data[-2:], "big")
        row = row_of(c, pse)
        cells.add((row, column(sw)))
        if row.startswith("SELECT") and (sw == 0x9000 or sw >> 8 == SW1_MORE_DATA):
            pse = row == "SELECT PSE"
    return cells


def row_of(c: bytes, pse: bool) -> str:
    """The matrix row of a command APDU (PROTOCOL.md §3), by INS, name, record or tag."""
    try:
        cmd = CommandAPDU.parse(c)
    except DecodeError:
        return MALFORMED
    if cmd.cla not in (0x00, 0x80):
        return "unknown CLA"
    ins, p1, p2 = cmd.ins, cmd.p1, cmd.p2
    if ins == INS.SELECT:
        return SELECT_NAMES.get(cmd.data, "SELECT AID")
    if ins == INS.READ_RECORD:
        if pse:
            return PSE_DIRECTORY
        if p1 in APP_RECORDS and p2 == APP_SFI_P2:
            return f"READ RECORD {p1}"
        return "READ RECORD (other record or SFI)"
    if ins == INS.GET_DATA:
        tag = p1 << 8 | p2
        return f"GET DATA {tag:04X}" if tag in GET_DATA_TAGS else "GET DATA (other tag)"
    return COMMAND_ROWS.get(ins, "unknown INS")


GET_DATA_TAGS: Final = {0x9F36, m.TAG_AVAILABLE_CREDIT, m.TAG_LAST_ANSWER}
COMMAND_ROWS: Final[dict[int, str]] = {
    INS.GET_PROCESSING_OPTIONS: "GET PROCESSING OPTIONS",
    INS.GENERATE_AC: "GENERATE AC",
    INS.GET_RESPONSE: "GET RESPONSE",
}


def protocol_columns() -> list[str]:
    """`9000` and every status word of PROTOCOL.md §6's list, as the matrix heads them."""
    text = PROTOCOL.read_text(encoding="utf-8")
    found = re.search(r"Status words:(.*?)\n(?:- |\n)", text, re.DOTALL)
    assert found, "PROTOCOL.md §6 lists no status words"
    line = "`9000` " + found.group(1)
    words = re.findall(r"`([0-9A-F]{2}(?:[0-9A-F]{2}|xx))`", line)
    return list(dict.fromkeys(words))


def protocol_rows() -> set[str]:
    """The rows PROTOCOL.md's command table (§3) and GET DATA commands (§3, §9) make."""
    text = PROTOCOL.read_text(encoding="utf-8")
    rows: set[str] = set()
    for apdu in re.findall(r"\| `([0-9A-F]{2} [0-9A-F]{2} [^`]*)`", text):
        ins = int(apdu.split()[1], 16)
        if ins == INS.SELECT:
            name = next(n for n in ("PPSE", "PSE", "AID") if f"<{n}>" in apdu)
            rows.add(f"SELECT {name}")
        elif ins == INS.READ_RECORD:  # the app's records (`<rec>`, §4) or the PSE directory
            app = "<rec>" in apdu
            rows |= {f"READ RECORD {n}" for n in APP_RECORDS} if app else {PSE_DIRECTORY}
        elif ins != INS.GET_DATA:
            rows.add(COMMAND_ROWS[ins])  # a command new to §3: KeyError until it has a row
    for tag in re.findall(r"`80 CA ([0-9A-F]{2} [0-9A-F]{2}) 00`", text):
        rows.add(f"GET DATA {tag.replace(' ', '')}")
    return rows


def matrix() -> tuple[list[str], Matrix]:
    """docs/conformance.md's matrix: its columns and, by row, each cell's text."""
    text = CONFORMANCE.read_text(encoding="utf-8")
    lines = text.split("<!-- matrix -->")[1].split("<!-- /matrix -->")[0].strip().splitlines()
    head = [x.strip().strip("`") for x in lines[0].strip("|").split("|")]
    rows: Matrix = {}
    for line in lines[2:]:
        cells = [x.strip() for x in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(head[1:], cells[1:], strict=True))
    return head[1:], rows


# Rows the classification makes beyond PROTOCOL.md's commands: the answers §6 gives to
# commands outside §3 (another record or SFI, another tag, INS, CLA, a malformed APDU).
OTHER_ROWS: Final = {
    "READ RECORD (other record or SFI)",
    "GET DATA (other tag)",
    "unknown INS",
    "unknown CLA",
    MALFORMED,
}


def named(cell: str) -> list[tuple[str, bool]]:
    """The vectors a cell names, each with whether it is marked `*` (a choice)."""
    if cell == NOT_APPLICABLE:
        return []
    names = [x.strip() for x in cell.split(",")]
    return [(f"card-{x.rstrip('*')}", x.endswith("*")) for x in names if x]


def shown(vectors: dict[str, vx.Vector]) -> dict[tuple[str, str], set[str]]:
    """Each (row, column) the vectors show, with the vectors that show it."""
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for name, vector in vectors.items():
        for cell in cells_of(vector):
            out[cell].add(name)
    return out


def problems(columns: list[str], rows: Matrix, vectors: dict[str, vx.Vector]) -> list[str]:
    """What makes the matrix untrue to PROTOCOL.md or to the vectors; empty when none."""
    found: list[str] = []
    if columns != protocol_columns():
        found.append(f"columns {columns}, PROTOCOL.md §6 names {protocol_columns()}")
    missing_rows = (protocol_rows() | OTHER_ROWS) - set(rows)
    found += [f"no row for {row}" for row in sorted(missing_rows)]
    seen = shown(vectors)
    for row, cells in rows.items():
        for col, text in cells.items():
            names = named(text)
            if text != NOT_APPLICABLE and not names:
                found.append(f"{row} × {col}: no vector")
            for name, star in names:
                if name not in vectors:
                    found.append(f"{row} × {col}: no vector {name}")
                elif name not in seen.get((row, col), set()):
                    found.append(f"{row} × {col}: {name} does not show it")
                elif star != vectors[name].choice:
                    found.append(f"{row} × {col}: {name} is {'' if star else 'not '}marked *")
    for (row, col), showing in sorted(seen.items()):
        if rows.get(row, {}).get(col, NOT_APPLICABLE) == NOT_APPLICABLE:
            found.append(f"{row} × {col} is shown by {sorted(showing)} but not in the matrix")
    return found


def card_vectors() -> dict[str, vx.Vector]:
    return {path.stem: vx.load(path) for path in CARD}


def test_the_matrix_is_what_protocol_md_names_and_the_vectors_show() -> None:
    columns, rows = matrix()
    assert problems(columns, rows, card_vectors()) == []


def test_every_cell_but_the_not_applicable_ones_names_a_vector() -> None:
    """The cells are PROTOCOL.md's status words × its commands, less those marked `·`."""
    columns, rows = matrix()
    answered = {(r, c) for r, cells in rows.items() for c, t in cells.items() if named(t)}
    assert answered == set(shown(card_vectors()))
    assert {c for _, c in answered} == set(columns), "a status word no vector shows"
    assert {r for r, _ in answered} == set(rows), "a command no vector shows"


def test_a_vector_removed_leaves_its_cells_unproved() -> None:
    """The check sees a cell whose only vector is gone, and a shown cell marked `·`."""
    columns, rows = matrix()
    vectors = card_vectors()
    del vectors["card-sw-cla-each-command"]
    assert "SELECT PPSE × 6E00: no vector card-sw-cla-each-command" in problems(
        columns, rows, vectors
    )
    vectors = card_vectors()
    hidden = {row: dict(cells) for row, cells in rows.items()}
    hidden["GET PROCESSING OPTIONS"]["6A80"] = NOT_APPLICABLE
    assert any(
        p.startswith("GET PROCESSING OPTIONS × 6A80 is shown by")
        for p in problems(columns, hidden, vectors)
    )


def test_a_status_word_added_to_protocol_md_needs_a_column() -> None:
    columns, rows = matrix()
    assert "6A88" in protocol_columns()
    fewer = [c for c in columns if c != "6A88"]
    assert any(p.startswith("columns") for p in problems(fewer, rows, card_vectors()))


def test_the_state_rules_name_vectors_that_exist() -> None:
    """The rules table under the matrix names vectors of the suite, choices marked `*`."""
    text = CONFORMANCE.read_text(encoding="utf-8").split("<!-- /matrix -->")[1]
    table = text.split("\n\n")[2].splitlines()
    assert table[0].startswith("| rule | vectors |")
    vectors = card_vectors()
    for line in table[2:]:
        for name, star in named(line.strip("|").split("|")[1].strip()):
            assert name in vectors, name
            assert star == vectors[name].choice, name


# The probe: what the applet answers, so that a cell marked `·` is one it cannot answer.
AMOUNT: Final = {0x9F02: bytes.fromhex("000000001234"), 0x5F2A: bytes.fromhex("0156")}
PDOL_DATA: Final = fill_dol(m.PDOL, AMOUNT)
CDOL1_DATA: Final = fill_dol(m.CDOL1, AMOUNT)


def probe_commands() -> list[CommandAPDU]:
    """§3's commands, other names, records, tags and data, each in the forms a terminal may
    send: as is, no Le, Le 01, an extended Le, the other class, CLA 90, other P1 or P2, a
    data field added or cut (ISO 7816-4 5.1)."""
    bases = [
        *(m.select(name) for name in (m.PPSE_NAME, m.PSE_NAME, m.CREDIT_AID)),
        m.select(m.CREDIT_AID[:5]),
        m.select(bytes.fromhex("A0000000031010")),
        replace(m.select(m.CREDIT_AID), data=b""),
        m.gpo(PDOL_DATA),
        m.gpo(PDOL_DATA[:-1]),
        CommandAPDU(0x80, INS.GET_PROCESSING_OPTIONS, 0, 0, b"\x84\x00", 256),
        *(m.read_record(record, sfi) for record in (1, 2, 3, 4) for sfi in (1, 2)),
        m.generate_ac(CDOL1_DATA),
        m.generate_ac(fill_dol(m.CDOL1, {**AMOUNT, 0x9F02: bytes.fromhex("000000001235")})),
        m.get_response(0),
        m.get_response(16),
        *(m.get_data(tag) for tag in (*GET_DATA_TAGS, 0x9F13)),
        CommandAPDU(0x00, 0x20, 0x00, 0x80, b"", 256),
    ]
    forms: list[CommandAPDU] = []
    for base in bases:
        forms += [
            base,
            replace(base, le=None),
            replace(base, le=1),
            replace(base, le=65536, extended=True),
            replace(base, cla=base.cla ^ 0x80),
            replace(base, cla=0x90),
            replace(base, p1=base.p1 ^ 0x01),
            replace(base, p2=base.p2 ^ 0x02),
            replace(base, p2=base.p2 ^ 0x0C),
            replace(base, p1=0),
            replace(base, data=base.data + b"\xaa"),
            replace(base, data=base.data[:-1]),
        ]
    return forms


def probe_prefixes() -> list[tuple[int, list[bytes]]]:
    """A starting ATC and the commands that lead to each state of P§6 (and a `61xx` part
    pending): IDLE, PPSE, PSE, SELECTED, REQUESTED, DONE, and an ATC at `FFFF`."""
    select_aid, gpo = m.select(m.CREDIT_AID).to_bytes(), m.gpo(PDOL_DATA).to_bytes()
    generate_ac = m.generate_ac(CDOL1_DATA).to_bytes()
    return [
        (0, []),
        (0, [m.select(m.PPSE_NAME).to_bytes()]),
        (0, [m.select(m.PSE_NAME).to_bytes()]),
        (0, [select_aid]),
        (0, [select_aid, gpo]),
        (0, [select_aid, gpo, replace(m.read_record(1), le=None).to_bytes()]),
        (0, [select_aid, gpo, generate_ac, m.get_response(0).to_bytes()]),
        (0xFFFF, [select_aid]),
    ]


def probed_cells() -> set[tuple[str, str]]:
    """Every (row, column) the applet answers to the probe's commands in the probe's states."""
    commands = [c.to_bytes() for c in probe_commands() if encodable(c)]
    commands += [b"\x00\xa4\x04", bytes.fromhex("80A8000010830100")]  # malformed
    cells: set[tuple[str, str]] = set()
    for atc, prefix in probe_prefixes():
        card = vx.in_process_card(vx.CardStart("test-card-1", atc), ROOT / "vectors" / "profiles")
        for command in commands:
            card.power_on()
            steps = [vx.Step(c, vx.Pattern.exact(card.process(c))) for c in [*prefix, command]]
            cells |= cells_in(steps)
    return cells


def encodable(command: CommandAPDU) -> bool:
    try:
        command.to_bytes()
    except ValueError:
        return False
    return True


def test_the_applet_answers_no_cell_the_matrix_marks_not_applicable() -> None:
    """A cell is `·` only where the applet cannot answer it: probed in every state of P§6,
    each command in many forms, whatever it answers is a cell with a vector, and the probe
    reaches every cell the matrix names."""
    _, rows = matrix()
    answered = {(r, c) for r, cells in rows.items() for c, t in cells.items() if named(t)}
    probed = probed_cells()
    assert probed - answered == set(), "answered by the applet, with no vector"
    assert answered - probed == set(), "not reached by the probe"
