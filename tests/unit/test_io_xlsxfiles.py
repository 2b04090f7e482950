"""XLSX files (io.xlsxfiles): hostile workbooks (defusedxml in use, archive-size
and row limits checked, broken archives named), every row read whatever the
sheet declares, and text escaped as Office escapes it, both ways."""

from __future__ import annotations

import csv
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from identity_graph import IdentityGraph
from identity_graph.io import FileFormatError, FileTooLarge, XlsxLimits, import_customers
from identity_graph.io.csvfiles import MAX_ROW_CHARACTERS
from identity_graph.io.tables import UnreadableRow
from identity_graph.io.xlsxfiles import (
    XlsxTable,
    XlsxWriter,
    check_archive,
    escape_text,
    unescape_text,
)


def workbook(path: Path, rows: int = 3) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Customer ID", "Firstname"])
    for i in range(rows):
        sheet.append([f"c{i}", f"Name {i}"])
    book.save(path)
    return path


def replace_member(path: Path, member: str, data: bytes) -> None:
    """Rewrite one member of the archive."""
    with zipfile.ZipFile(path) as source:
        items = [(info, source.read(info.filename)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info, content in items:
            target.writestr(info.filename, data if info.filename == member else content)


def declare(path: Path, ref: str | None) -> None:
    """Rewrite the sheet's ``<dimension>``: declare ``ref``, or drop the element."""
    member = "xl/worksheets/sheet1.xml"
    sheet = zipfile.ZipFile(path).read(member)
    element = b"" if ref is None else f'<dimension ref="{ref}"/>'.encode()
    rewritten = re.sub(rb"<dimension [^>]*>", element, sheet)
    assert rewritten != sheet and rewritten.count(b"<dimension") == (ref is not None)
    replace_member(path, member, rewritten)


LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>
<row r="1"><c r="A1" t="inlineStr"><is><t>Customer ID</t></is></c></row>
<row r="2"><c r="A2" t="inlineStr"><is><t>&lol9;</t></is></c></row>
</sheetData></worksheet>"""

EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>
<row r="1"><c r="A1" t="inlineStr"><is><t>Customer ID</t></is></c></row>
<row r="2"><c r="A2" t="inlineStr"><is><t>&secret;</t></is></c></row>
</sheetData></worksheet>"""


def test_openpyxl_parses_with_defusedxml() -> None:
    import defusedxml.ElementTree
    from openpyxl.xml import functions

    assert openpyxl.DEFUSEDXML is True
    assert functions.iterparse is defusedxml.ElementTree.iterparse


@pytest.mark.parametrize("payload", [LAUGHS, EXTERNAL], ids=["billion-laughs", "external-entity"])
def test_entity_tricks_are_refused(tmp_path: Path, payload: bytes) -> None:
    path = workbook(tmp_path / "evil.xlsx")
    replace_member(path, "xl/worksheets/sheet1.xml", payload)
    g = IdentityGraph()
    with pytest.raises(FileFormatError) as error:
        import_customers(g, path)
    assert "EntitiesForbidden" in str(error.value)
    assert g.customers() == []


def test_entity_tricks_in_the_workbook_part_are_refused(tmp_path: Path) -> None:
    path = workbook(tmp_path / "evil.xlsx")
    replace_member(path, "xl/workbook.xml", LAUGHS.replace(b"worksheet", b"workbook"))
    with pytest.raises(FileFormatError, match="cannot read the workbook"):
        import_customers(IdentityGraph(), path)


def test_no_workbook_is_read_without_defusedxml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(openpyxl, "DEFUSEDXML", False)
    with pytest.raises(FileFormatError, match="not using defusedxml"):
        import_customers(IdentityGraph(), workbook(tmp_path / "a.xlsx"))


def test_the_uncompressed_size_is_checked_before_parsing(tmp_path: Path) -> None:
    path = workbook(tmp_path / "a.xlsx")
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/padding.bin", b"\0" * (20 * 2**20))  # 20 MiB, compresses to ~20 KiB
    assert path.stat().st_size < 2**20
    with pytest.raises(FileTooLarge) as caught:
        import_customers(
            IdentityGraph(), path, limits=XlsxLimits(max_uncompressed_bytes=10 * 2**20)
        )
    # The limit is named as the API and the command line call it.
    assert "more than 10,485,760, the limit max_uncompressed_bytes (--max-bytes)" in str(
        caught.value
    )
    check_archive(path, XlsxLimits())  # the default allows it


def test_the_declared_size_is_only_a_progress_hint(tmp_path: Path) -> None:
    # A sheet that declares more rows than the limit is not refused for
    # it: the rows are counted as they are read (see the tests below).
    path = workbook(tmp_path / "a.xlsx", rows=10)
    with XlsxTable(path, limits=XlsxLimits(max_rows=5)) as table:
        assert table.total == 11
    declare(path, None)
    with XlsxTable(path) as table:
        assert table.total is None
        assert len(list(table.rows())) == 10


def test_a_lying_member_size_cannot_inflate_past_it(tmp_path: Path) -> None:
    # zipfile returns at most a member's declared size, so the size check
    # cannot be dodged by declaring less than the data inflates to.
    path = workbook(tmp_path / "a.xlsx")
    member = "xl/worksheets/sheet1.xml"
    real = zipfile.ZipFile(path).read(member)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    small = (40).to_bytes(4, "little")
    local = info.header_offset
    data[local + 22 : local + 26] = small  # local header: uncompressed size
    start = 0
    while True:
        at = data.index(b"PK\x01\x02", start)
        name_length = int.from_bytes(data[at + 28 : at + 30], "little")
        if data[at + 46 : at + 46 + name_length].decode() == member:
            data[at + 24 : at + 28] = small  # central directory: uncompressed size
            break
        start = at + 4
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo(member).file_size == 40
        with pytest.raises(zipfile.BadZipFile), archive.open(member) as handle:
            assert len(handle.read()) == 40 < len(real)
    with pytest.raises(FileFormatError):
        import_customers(IdentityGraph(), path)


def test_files_that_are_not_workbooks(tmp_path: Path) -> None:
    path = tmp_path / "a.xlsx"
    path.write_text("Customer ID\nc1\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="not a zip archive"):
        import_customers(IdentityGraph(), path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(FileFormatError, match="cannot read the workbook"):
        import_customers(IdentityGraph(), path)


def test_broken_sheet_xml_names_the_row(tmp_path: Path) -> None:
    path = workbook(tmp_path / "a.xlsx")
    broken = (
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b'<dimension ref="A1:A3"/><sheetData>'
        b'<row r="1"><c r="A1" t="inlineStr"><is><t>Customer ID</t></is></c></row>'
        b'<row r="2"><c r="A2" t="inlineStr"><is><t>c1</t></is></c></row>'
        b'<row r="3"><c r="A3" t="inlineStr"><is><t>c2</t></is></c'
    )
    replace_member(path, "xl/worksheets/sheet1.xml", broken)
    g = IdentityGraph()
    with pytest.raises(FileFormatError, match=r"row 3: cannot read the sheet"):
        import_customers(g, path)
    assert g.customers() == ["c1"]


# ------------------------------------------------------------------ declared sizes


@pytest.mark.parametrize("ref", ["A1:B3", "A1", "A1:A6", "B2:B3", "A1:B1048576", "A1:XFD1", None])
def test_every_row_is_read_whatever_the_sheet_declares(tmp_path: Path, ref: str | None) -> None:
    path = workbook(tmp_path / "a.xlsx", rows=5)
    declare(path, ref)
    with XlsxTable(path) as table:
        assert table.header == ("Customer ID", "Firstname")
        assert list(table.rows()) == [(i + 2, [f"c{i}", f"Name {i}"]) for i in range(5)]
    g = IdentityGraph()
    summary = import_customers(g, path, attributes={"Firstname": "first_name"})
    assert (summary.read, summary.imported, summary.rejected) == (5, 5, 0)
    assert [g.attributes(c)["first_name"] for c in g.customers()] == [f"Name {i}" for i in range(5)]


@pytest.mark.parametrize("ref", ["A1:B3", "A1", "A1:B1048576", None])
def test_the_row_limit_holds_whatever_the_sheet_declares(tmp_path: Path, ref: str | None) -> None:
    path = workbook(tmp_path / "a.xlsx", rows=10)
    declare(path, ref)
    g = IdentityGraph()
    with pytest.raises(FileTooLarge) as caught:
        import_customers(g, path, limits=XlsxLimits(max_rows=5))
    assert str(caught.value).endswith(
        "a.xlsx: row 7: the sheet has more than 5 data rows, the limit max_rows (--max-rows)"
    )
    assert len(g.customers()) == 5  # the rows before the limit were imported
    assert import_customers(g, path, limits=XlsxLimits(max_rows=10)).read == 10


def test_cells_right_of_the_header_are_not_read(tmp_path: Path) -> None:
    # A cell far right of the header (XFD is Excel's last column) neither
    # widens the rows nor costs a row of that width.
    path = workbook(tmp_path / "a.xlsx", rows=2)
    member = "xl/worksheets/sheet1.xml"
    sheet = zipfile.ZipFile(path).read(member)
    far = b'<c r="XFD3" t="inlineStr"><is><t>far</t></is></c></row>'
    rewritten = sheet.replace(b"</row>", far, 3).replace(far, b"</row>", 2)
    assert rewritten.count(b"XFD3") == 1
    replace_member(path, member, rewritten)
    declare(path, "A1:B2")
    with XlsxTable(path) as table:
        assert list(table.rows()) == [(2, ["c0", "Name 0"]), (3, ["c1", "Name 1"])]


# ------------------------------------------------------------------ text escaping (ST_Xstring)

#: Text built to hit the escaping's edge cases: pieces that look like escapes,
#: underscores, carriage returns and characters XML cannot carry.
PIECES = ["_x000D_", "_x005F_", "_x0041_", "_x", "_", "x0041", "00e9_", "\r", "\r\n", "\n"]
#: A high surrogate followed by a low one, as two code points: such a
#: string (which the graph refuses) is written as the two halves of a
#: character, and reads back as that character.
SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
TRICKY_TEXT = (
    st.lists(
        st.one_of(st.sampled_from(PIECES), st.characters(blacklist_categories=())), max_size=12
    )
    .map("".join)
    .filter(lambda text: SURROGATE_PAIR.search(text) is None)
)
#: XML 1.0's characters, less CR (which a parser turns into LF).
XML_CHAR = re.compile("[\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


@given(TRICKY_TEXT)
def test_unescape_gives_back_what_escape_wrote(text: str) -> None:
    escaped = escape_text(text)
    assert XML_CHAR.fullmatch(escaped), escaped
    assert unescape_text(escaped) == text


def test_escapes_are_those_office_writes() -> None:
    assert escape_text("line1\r\nline2") == "line1_x000D_\nline2"
    assert escape_text("\r=1") == "_x000D_=1"
    assert escape_text("An\x00n\x1f\ufffe") == "An_x0000_n_x001F__xFFFE_"
    assert escape_text("_x0041_ and _x00e9_") == "_x005F_x0041_ and _x005F_x00e9_"
    # An underscore whose escape the next escape would close is protected too.
    assert escape_text("_x0041\x01") == "_x005F_x0041_x0001_"
    assert escape_text("snake_case x0041_ _x41_ \t tab") == "snake_case x0041_ _x41_ \t tab"
    assert unescape_text("_x000d_ _x005f_x000D_ _x41_") == "\r _x000D_ _x41_"


def test_an_escaped_surrogate_pair_is_the_character_it_encodes() -> None:
    """Office writes a character outside the Basic Multilingual Plane that
    it escapes as its two UTF-16 halves; a half without its partner stays
    alone (and the graph's door then refuses it)."""
    assert unescape_text("_xD83D__xDE00_") == "\U0001f600"
    assert unescape_text("a_xd83d__xde00_b_xDBFF__xDFFF_") == "a\U0001f600b\U0010ffff"
    assert unescape_text("_xD83D_") == "\ud83d"
    assert unescape_text("_xDE00__xD83D_") == "\ude00\ud83d"  # the wrong order: no pair
    assert unescape_text("_xD83D_x_xDE00_") == "\ud83dx\ude00"
    assert unescape_text("_xD83D__xD83D__xDE00_") == "\ud83d\U0001f600"


def shared_strings_workbook(path: Path, texts: list[str]) -> Path:
    """A workbook whose cells are shared strings, as Excel writes them (openpyxl
    writes inline strings): column A of row 1 the header, then one row per text,
    each ``<si>`` holding the XML given."""
    workbook(path, rows=0)
    rows = "".join(
        f'<row r="{n}"><c r="A{n}" t="s"><v>{n - 1}</v></c></row>' for n in range(1, len(texts) + 2)
    )
    sheet = (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="A1"/><sheetData>{rows}</sheetData></worksheet>'
    )
    items = "".join(f"<si>{text}</si>" for text in ["<t>Firstname</t>", *texts])
    strings = (
        f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{items}</sst>'
    )
    with zipfile.ZipFile(path) as source:
        types = source.read("[Content_Types].xml").decode()
        rels = source.read("xl/_rels/workbook.xml.rels").decode()
    types = types.replace(
        "</Types>",
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
    )
    rels = rels.replace(
        "</Relationships>",
        '<Relationship Id="rIdS" Target="sharedStrings.xml" Type="http://schemas.'
        'openxmlformats.org/officeDocument/2006/relationships/sharedStrings"/></Relationships>',
    )
    replace_member(path, "[Content_Types].xml", types.encode())
    replace_member(path, "xl/_rels/workbook.xml.rels", rels.encode())
    replace_member(path, "xl/worksheets/sheet1.xml", sheet.encode())
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("xl/sharedStrings.xml", strings.encode())
    return path


def test_excel_s_escapes_are_read_in_shared_and_inline_strings(tmp_path: Path) -> None:
    written = [
        "<t>line1_x000D_\nline2</t>",  # Excel's CR
        "<t>_x005F_x000D_</t>",  # the text _x000D_ typed into a cell
        "<t>ax005F_b</t>",  # not an escape: openpyxl alone would drop x005F_
        "<r><t>A_x0009_</t></r><r><rPr><b/></rPr><t>n_x0001_n</t></r>",  # rich text runs
        '<t xml:space="preserve"> _x0000_ </t>',
        "<t>_xD83D__xDE00_</t>",  # an emoji, as two escaped UTF-16 halves
    ]
    expected = ["line1\r\nline2", "_x000D_", "ax005F_b", "A\tn\x01n", " \x00 ", "\U0001f600"]
    path = shared_strings_workbook(tmp_path / "excel.xlsx", written)
    with XlsxTable(path) as table:
        assert table.header == ("Firstname",)
        assert [values[0] for _, values in table.rows()] == expected
    inline = "".join(
        f'<row r="{n}"><c r="A{n}" t="inlineStr"><is>{text}</is></c></row>'
        for n, text in enumerate(["<t>Firstname</t>", *written], start=1)
    )
    replace_member(
        path,
        "xl/worksheets/sheet1.xml",
        (
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            f"<sheetData>{inline}</sheetData></worksheet>"
        ).encode(),
    )
    with XlsxTable(path) as table:
        assert [values[0] for _, values in table.rows()] == expected


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(texts=st.lists(TRICKY_TEXT.filter(lambda text: text.strip() != ""), min_size=1, max_size=4))
def test_every_string_is_written_and_read_back(tmp_path: Path, texts: list[str]) -> None:
    """Every Python string can be written (none stops the file, control
    characters and lone surrogates included) and reads back as it was, in
    the header too."""
    path = tmp_path / "t.xlsx"
    header = ["A_x0041_\r", *(f"c{i}" for i in range(1, len(texts)))]
    writer = XlsxWriter(path, header, "Sheet")
    writer.append(texts)
    writer.append([f"={text}" for text in texts])
    writer.save()
    with XlsxTable(path) as table:
        assert list(table.header) == [name.strip() for name in header]
        assert [values for _, values in table.rows()] == [texts, [f"={t}" for t in texts]]


# ------------------------------------------------------------------ sizes of cells and rows


@pytest.mark.parametrize(
    ("text", "fits"),
    [
        ("a" * 32_767, True),
        ("a" * 32_768, False),
        ("\x01" * 4681, True),  # written _x0001_ each: 32,767 characters
        ("\x01" * 4682, False),
        ("\U0001f600" * 16_383 + "a", True),  # an emoji is two UTF-16 units, as Excel counts
        ("\U0001f600" * 16_384, False),
        ("=" + "a" * 32_767, False),  # text that starts like a formula, too
    ],
    ids=[
        "32767",
        "32768",
        "escaped-32767",
        "escaped-32774",
        "emoji-32767",
        "emoji-32768",
        "formula",
    ],
)
def test_a_text_too_long_for_an_excel_cell_stops_the_export_never_cut(
    tmp_path: Path, text: str, fits: bool
) -> None:
    path = tmp_path / "long.xlsx"
    writer = XlsxWriter(path, ["Customer ID", "Note"], "Sheet", name="customers.xlsx")
    writer.append(["c1", "short"])
    if fits:
        writer.append(["c2", text])
        writer.save()
        with XlsxTable(path) as table:
            assert [values for _, values in table.rows()][-1] == ["c2", text]
        return
    with pytest.raises(ValueError) as caught:
        writer.append(["c2", text])
    message = str(caught.value)
    assert message.startswith("customers.xlsx: row 3, column 'Note': ")
    assert "more than 32,767" in message and "CSV has no such limit" in message
    assert text[:50] not in message  # named by its place, not repeated


def test_a_header_too_long_for_an_excel_cell_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"a.xlsx: row 1, column 2: .*more than 32,767"):
        XlsxWriter(tmp_path / "a.xlsx", ["id", "\r" * 5000], "Sheet")


def rows_sheet(path: Path, rows: list[list[str]]) -> Path:
    """A workbook whose sheet holds ``rows`` as inline strings, written by
    hand: openpyxl itself cuts a cell at 32,767 characters, another tool may not."""
    workbook(path, rows=0)
    xml = "".join(
        f'<row r="{n}">'
        + "".join(
            f'<c r="{chr(65 + i)}{n}" t="inlineStr"><is><t>{text}</t></is></c>'
            for i, text in enumerate(row)
        )
        + "</row>"
        for n, row in enumerate(rows, start=1)
    )
    sheet = (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"<sheetData>{xml}</sheetData></worksheet>"
    )
    replace_member(path, "xl/worksheets/sheet1.xml", sheet.encode())
    return path


def test_a_row_longer_than_a_csv_row_may_be_is_rejected_and_the_import_goes_on(
    tmp_path: Path,
) -> None:
    """One size rule for both formats: a row holds at most 1,048,576
    characters (its cells' text together), CSV or XLSX."""
    assert MAX_ROW_CHARACTERS == 1_048_576
    # Counted as read (an escape is one character): 2 + 2 + 1,048,571 + 1.
    at_limit = "x" * (MAX_ROW_CHARACTERS - 5) + "_x0001_"
    rows = [
        ["Customer ID", "Firstname", "Note"],
        ["c0", "Ann", "a"],
        ["c1", "Bob", "y" * 2_000_000],  # one 2 MB cell
        ["c2", "Cid", "b"],
        ["c3", "_x0001__x0001_", at_limit],
        ["c4", "Dan", "z" * (MAX_ROW_CHARACTERS // 2), "ignored: right of the header"],
        ["c5", "Eve" + "e" * (MAX_ROW_CHARACTERS // 2), "z" * (MAX_ROW_CHARACTERS // 2)],
    ]
    path = rows_sheet(tmp_path / "big.xlsx", rows)
    with XlsxTable(path) as table:
        read = list(table.rows())
    assert [row for row, _ in read] == [2, 3, 4, 5, 6, 7]
    assert read[0][1] == ["c0", "Ann", "a"] and read[2][1] == ["c2", "Cid", "b"]
    assert sum(map(len, read[3][1])) == MAX_ROW_CHARACTERS  # at the limit: read
    assert len(read[4][1]) == 3  # cells right of the header do not count
    for row, values in (read[1], read[5]):
        assert isinstance(values, UnreadableRow) and values == [], row
        assert "more than 1,048,576 characters, the most a row may hold" in values.reason
    g, rejects = IdentityGraph(), tmp_path / "r.csv"
    summary = import_customers(g, path, attributes={"Firstname": "first_name"}, rejects=rejects)
    assert (summary.read, summary.imported, summary.rejected) == (6, 4, 2)
    assert g.customers() == ["c0", "c2", "c3", "c4"]
    with open(rejects, newline="", encoding="utf-8") as handle:
        rejected = list(csv.DictReader(handle))
    assert [(r["row"], r["column"]) for r in rejected] == [("3", ""), ("7", "")]
    assert "1,048,576" in rejected[0]["reason"]
