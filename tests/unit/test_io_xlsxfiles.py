"""Hostile workbooks (io.xlsxfiles): defusedxml in use, archive-size and row
limits checked before anything is parsed, broken archives named."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl import Workbook

from identity_graph import IdentityGraph
from identity_graph.io import FileFormatError, FileTooLarge, XlsxLimits, import_customers
from identity_graph.io.xlsxfiles import XlsxTable, check_archive


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
    with pytest.raises(FileTooLarge, match="max_uncompressed_bytes is 10,485,760"):
        import_customers(
            IdentityGraph(), path, limits=XlsxLimits(max_uncompressed_bytes=10 * 2**20)
        )
    check_archive(path, XlsxLimits())  # the default allows it


def test_the_row_limit_stops_reading(tmp_path: Path) -> None:
    path = workbook(tmp_path / "a.xlsx", rows=10)
    g = IdentityGraph()
    with pytest.raises(FileTooLarge, match="declares 10 data rows; max_rows is 5"):
        import_customers(g, path, limits=XlsxLimits(max_rows=5))
    # A sheet that does not declare its size is counted while it is read.
    sheet = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml")
    unsized = re.sub(rb"<dimension [^>]*>", b"", sheet)
    assert unsized != sheet
    replace_member(path, "xl/worksheets/sheet1.xml", unsized)
    with XlsxTable(path) as table:
        assert table.total is None
    with pytest.raises(FileTooLarge, match="row 7: the sheet has more than 5 data rows"):
        import_customers(g, path, limits=XlsxLimits(max_rows=5))
    assert len(g.customers()) == 5  # the rows before the limit were imported
    assert import_customers(g, path, limits=XlsxLimits(max_rows=10)).read == 10


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
