"""Reading CSV files (io.csvfiles): delimiter sniffing, encodings, broken
quoting — every failure names the file and the row."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identity_graph.io import FileFormatError
from identity_graph.io.csvfiles import MAX_ROW_CHARACTERS, CsvTable
from identity_graph.io.tables import UnreadableRow

HEADER = ["Time Stamp", "Customer ID", "Amount"]


def table(path: Path, **options: object) -> tuple[CsvTable, list[tuple[int, list[str]]]]:
    with CsvTable(path, required=HEADER, **options) as opened:  # type: ignore[arg-type]
        return opened, list(opened.rows())


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "f.csv"
    rows = [HEADER, ["2024-01-01 10:00:00", "c1", "1,50"], ["2024-01-02 10:00:00", "c;2", "3"]]
    lines = [
        delimiter.join(f'"{cell}"' if {",", ";"} & set(cell) else cell for cell in row)
        for row in rows
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    opened, found = table(path)
    assert opened.delimiter == delimiter
    assert opened.header == tuple(HEADER)
    assert found == [(2, rows[1]), (3, rows[2])]


@settings(max_examples=60, deadline=None)
@given(
    delimiter=st.sampled_from([",", ";", "\t"]),
    cells=st.lists(
        st.lists(
            st.text(
                st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\r"),
                max_size=12,
            ),
            min_size=3,
            max_size=3,
        ),
        max_size=8,
    ),
)
def test_any_cells_written_by_the_csv_module_read_back(
    tmp_path_factory: pytest.TempPathFactory, delimiter: str, cells: list[list[str]]
) -> None:
    import csv

    path = tmp_path_factory.mktemp("csv") / "f.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(HEADER)
        writer.writerows(cells)
    opened, found = table(path)
    assert opened.delimiter == delimiter
    # Every row but the blank ones (empty cells only), with its row number.
    rows = enumerate(cells, start=2)
    assert found == [(row, given) for row, given in rows if any(c.strip() for c in given)]


def test_blank_lines_are_skipped_but_keep_their_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("a,b\n1,2\n\n3,4\n", encoding="utf-8")
    with CsvTable(path) as opened:
        assert list(opened.rows()) == [(2, ["1", "2"]), (4, ["3", "4"])]
    # Rows of empty cells only are what a spreadsheet saves for empty rows.
    path.write_text('a;b;c\n1;2;3\n;;\n ; ;\n"";;\n4;5;6\n;;;;;;\n', encoding="utf-8")
    with CsvTable(path) as opened:
        assert list(opened.rows()) == [(2, ["1", "2", "3"]), (6, ["4", "5", "6"])]


def test_a_quoted_line_break_is_one_row(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text('a,b\n"x\ny",2\n3,4\n', encoding="utf-8")
    with CsvTable(path) as opened:
        assert list(opened.rows()) == [(2, ["x\ny", "2"]), (3, ["3", "4"])]


@pytest.mark.parametrize(
    ("bom", "encoding"),
    [
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ],
)
def test_a_byte_order_mark_declares_the_encoding(tmp_path: Path, bom: bytes, encoding: str) -> None:
    path = tmp_path / "f.csv"
    text = "Time Stamp\tCustomer ID\tAmount\n2024-01-01 10:00:00\tMäkinen ✓\t1\n"
    path.write_bytes(bom + text.encode(encoding))
    opened, found = table(path)
    assert opened.header == tuple(HEADER)
    assert found == [(2, ["2024-01-01 10:00:00", "Mäkinen ✓", "1"])]


def test_an_explicit_encoding_is_used(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes("a;b\nMäkinen;Söderberg\n".encode("cp1252"))
    with CsvTable(path, encoding="cp1252") as opened:
        assert list(opened.rows()) == [(2, ["Mäkinen", "Söderberg"])]
    with pytest.raises(ValueError, match="not one Python knows"):
        CsvTable(path, encoding="no-such-codec")


def test_an_undecodable_byte_names_its_row_and_line(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    rows = ["a,b"] + [f"{i},ok" for i in range(2000)] + ['"multi\nline",x', "M\xe4kinen,1"]
    path.write_bytes("\n".join(rows).encode("cp1252"))
    with CsvTable(path) as opened, pytest.raises(FileFormatError) as error:
        list(opened.rows())
    message = str(error.value)
    # Header + 2000 rows + the two-line row: the bad one is row 2003, line 2004.
    assert str(path) in message and "row 2003 (line 2004)" in message
    assert "0xe4" in message and "utf-8" in message


@pytest.mark.parametrize(
    ("text", "row", "words"),
    [
        ('a,b\n1,2\n"x"y,3\n', 3, "broken quoting"),
        ('a,b\n1,2\n3,"unclosed\n', 3, "broken quoting"),
        ("a,b\n1,2\n3,x\ry\n", 3, "a carriage return (CR) that does not end a line"),
    ],
)
def test_broken_files_name_the_row(tmp_path: Path, text: str, row: int, words: str) -> None:
    path = tmp_path / "f.csv"
    path.write_text(text, encoding="utf-8")
    with CsvTable(path) as opened, pytest.raises(FileFormatError) as error:
        list(opened.rows())
    assert f"{path}: row {row}" in str(error.value)
    assert words in str(error.value)


def test_an_empty_file_has_no_header(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"")
    with pytest.raises(FileFormatError, match="empty"):
        CsvTable(path)


def test_a_delimiter_can_be_forced(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("a;b,c\n1;2,3\n", encoding="utf-8")
    with CsvTable(path, delimiter=",") as opened:
        assert opened.header == ("a;b", "c")
    with pytest.raises(ValueError, match="delimiter"):
        CsvTable(path, delimiter="|")


def test_the_required_columns_decide_between_candidates(tmp_path: Path) -> None:
    # One data line with more commas than semicolons would fool a guess.
    path = tmp_path / "f.csv"
    path.write_text(
        "Time Stamp;Customer ID;Amount\n2024-01-01 10:00:00;a,b,c,d;1,5\n", encoding="utf-8"
    )
    opened, found = table(path)
    assert opened.delimiter == ";"
    assert found == [(2, ["2024-01-01 10:00:00", "a,b,c,d", "1,5"])]


def test_the_required_columns_decide_however_they_are_spelt(tmp_path: Path) -> None:
    # The sniffer has no guess here, and "," splits the header most.
    path = tmp_path / "f.csv"
    path.write_text("time_stamp;CUSTOMER ID;Note: a,b,c,d\nx\n", encoding="utf-8")
    with CsvTable(path, required=["Time Stamp", "Customer-ID"]) as opened:
        assert opened.delimiter == ";"
        assert opened.header == ("time_stamp", "CUSTOMER ID", "Note: a,b,c,d")


# --- a bad byte names its own row, whatever the encoding ----------------------------

#: Bytes each encoding cannot decode: a byte that starts no UTF-8 sequence, a
#: UTF-8 sequence cut short, a lone low surrogate, a high one without its pair.
BAD_BYTES = {
    "utf-8": [b"\xff", b"\xe4", b"\xc3("],
    "utf-16-le": [b"\x00\xdc", b"\x00\xd8a\x00"],
    "utf-16-be": [b"\xdc\x00", b"\xd8\x00\x00a"],
    "utf-32-le": [b"\x00\xdc\x00\x00", b"\x00\x00\x11\x00"],
}
BOM = {
    "utf-8": b"",
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
    "utf-32-le": codecs.BOM_UTF32_LE,
}
CELL = st.text(
    # Characters whose code units hold a 0x0A byte (U+0A0A, U+010A…) and
    # ones outside the BMP (a surrogate pair in UTF-16) on purpose.
    st.sampled_from("abc xyzÄö\u0a0a\u010a\u0a00😀漢"),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(
    encoding=st.sampled_from(sorted(BAD_BYTES)),
    cells=st.lists(CELL, min_size=1, max_size=12),
    data=st.data(),
)
def test_bad_bytes_at_any_row_name_that_row_and_every_row_before_it_is_read(
    tmp_path_factory: pytest.TempPathFactory, encoding: str, cells: list[str], data: st.DataObject
) -> None:
    bad_index = data.draw(st.integers(0, len(cells) - 1), label="bad row index")
    bad = data.draw(st.sampled_from(BAD_BYTES[encoding]), label="bad bytes")
    where = data.draw(st.integers(0, len(cells[bad_index])), label="position in the cell")
    body = BOM[encoding] + "a,b\n".encode(encoding)
    for index, cell in enumerate(cells):
        row = f"{cell},{index}\n".encode(encoding)
        if index == bad_index:
            cut = len(cell[:where].encode(encoding))
            row = row[:cut] + bad + row[cut:]
        body += row
    path = tmp_path_factory.mktemp("csv") / "f.csv"
    path.write_bytes(body)
    bad_row = bad_index + 2  # the header is row 1
    read: list[tuple[int, list[str]]] = []
    with CsvTable(path) as opened, pytest.raises(FileFormatError) as error:
        read.extend(opened.rows())
    assert read == [(index + 2, [cell, str(index)]) for index, cell in enumerate(cells[:bad_index])]
    assert f"{path}: row {bad_row} (line {bad_row}): " in str(error.value)
    assert "is not valid" in str(error.value)


# --- one size rule for rows and fields ----------------------------------------------


def test_a_field_of_200_kb_is_read_not_refused_by_the_field_limit(tmp_path: Path) -> None:
    # The csv module's own limit is 131,072 characters per field.
    path = tmp_path / "f.csv"
    path.write_text(f"a,b\n1,{'x' * 200_000}\n2,y\n", encoding="utf-8")
    with CsvTable(path) as opened:
        assert list(opened.rows()) == [(2, ["1", "x" * 200_000]), (3, ["2", "y"])]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_the_longest_row_is_read_and_one_character_more_is_an_unreadable_row(
    tmp_path: Path, encoding: str
) -> None:
    path = tmp_path / "f.csv"
    # A row's characters include its line break.
    longest = "1," + "é" * (MAX_ROW_CHARACTERS - 3) + "\n"
    assert len(longest) == MAX_ROW_CHARACTERS
    longer = "2," + "é" * (MAX_ROW_CHARACTERS - 2) + "\n"
    path.write_bytes(("a,b\n" + longest + longer + "3,z\n").encode(encoding))
    with CsvTable(path) as opened:
        rows = list(opened.rows())
    assert rows[0] == (2, ["1", "é" * (MAX_ROW_CHARACTERS - 3)])
    assert rows[1][0] == 3 and isinstance(rows[1][1], UnreadableRow) and rows[1][1] == []
    assert rows[1][1].reason == (
        f"the row (line 3) is longer than {MAX_ROW_CHARACTERS:,} characters, "
        "the most a row may hold; it was skipped"
    )
    assert rows[2] == (4, ["3", "z"])


@pytest.mark.parametrize(
    ("middle", "lines"),
    [
        # One line of 4 MiB of ASCII: read in pieces, never whole.
        ("x" * (4 * MAX_ROW_CHARACTERS + 10) + "\n", "line 3"),
        # A quoted field over three lines, each short, the row too long; its
        # quotes and delimiters must not be mistaken for the next rows.
        ('"' + ("y" * 600_000 + '"",;\n') * 2 + 'end",x\n', "lines 3-5"),
        # A too-long line that opens a quoted field closed on the next line.
        ("q," + '"' + "z" * (MAX_ROW_CHARACTERS + 5) + "\n" + 'still inside",x\n', "lines 3-4"),
    ],
)
def test_a_row_too_long_is_skipped_to_its_end_and_reading_goes_on(
    tmp_path: Path, middle: str, lines: str
) -> None:
    path = tmp_path / "f.csv"
    path.write_text("a,b\n1,ok\n" + middle + "3,fine\n", encoding="utf-8")
    with CsvTable(path) as opened:
        rows = list(opened.rows())
        assert opened.position() == path.stat().st_size
    assert [(row, list(cells)) for row, cells in rows] == [
        (2, ["1", "ok"]),
        (3, []),
        (4, ["3", "fine"]),
    ]
    assert isinstance(rows[1][1], UnreadableRow) and f"({lines})" in rows[1][1].reason


def test_a_last_line_without_end_is_an_unreadable_row_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    with open(path, "wb") as handle:
        handle.write(b"a,b\n1,ok\n")
        handle.write(b"x" * (MAX_ROW_CHARACTERS + 10))
    with CsvTable(path) as opened:
        (first, (row, cells)) = list(opened.rows())
    assert first == (2, ["1", "ok"])
    assert row == 3 and isinstance(cells, UnreadableRow) and "(line 3)" in cells.reason


def test_a_header_too_long_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("a," + "b" * (MAX_ROW_CHARACTERS + 1) + "\n1,2\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"row 1 \(the header\): the row \(line 1\) is") as e:
        CsvTable(path)
    assert "skipped" not in str(e.value)  # the file stops: nothing was skipped


def test_a_bad_unit_in_a_file_with_its_mark_is_damage_not_a_wrong_encoding(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.csv"
    good = "a,b\n1,2\n".encode("utf-16")
    path.write_bytes(good + b"\x00\xdc" + "3,4\n".encode("utf-16-le"))  # a lone low surrogate
    with pytest.raises(FileFormatError, match="byte-order mark says utf-16: the file is damaged"):
        list(table(path)[1])


# --- only text encodings --------------------------------------------------------------


@pytest.mark.parametrize("codec", ["rot13", "base64", "zlib", "hex", "uu", "bz2"])
def test_a_codec_that_is_not_a_text_encoding_is_refused(tmp_path: Path, codec: str) -> None:
    path = tmp_path / "f.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"^encoding '{codec}' is not a text encoding"):
        CsvTable(path, encoding=codec)


def test_a_codec_that_cannot_read_a_file_is_refused(tmp_path: Path) -> None:
    """idna encodes one domain name at a time; reading a file with it failed
    with "Unsupported error handling replace"."""
    path = tmp_path / "f.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"^encoding 'idna' is not an encoding of text files"):
        CsvTable(path, encoding="idna")


@settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(8, 60),
    delimiter=st.sampled_from([",", ";"]),
    encoding=st.sampled_from(["utf-8", "utf-16"]),
    cells=st.lists(
        st.lists(st.text(st.sampled_from('ab ä"\n,;😀'), max_size=25), min_size=3, max_size=3),
        min_size=1,
        max_size=8,
    ),
)
def test_exactly_the_rows_over_the_limit_are_unreadable_and_the_others_read_back(
    tmp_path_factory: pytest.TempPathFactory,
    limit: int,
    delimiter: str,
    encoding: str,
    cells: list[list[str]],
) -> None:

    from identity_graph.io import csvfiles

    # A small limit, so that short rows (quotes, delimiters and line breaks
    # in their fields) cross it; the read size shrinks with it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(csvfiles, "MAX_ROW_CHARACTERS", limit)
        patch.setattr(csvfiles, "_CHUNK_BYTES", 4 * limit)
        _check_rows_against_the_limit(tmp_path_factory, limit, delimiter, encoding, cells)


def _check_rows_against_the_limit(
    tmp_path_factory: pytest.TempPathFactory,
    limit: int,
    delimiter: str,
    encoding: str,
    cells: list[list[str]],
) -> None:
    import csv
    import io

    texts = []
    for row in [["a", "b", "c"], *cells]:
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, lineterminator="\n").writerow(row)
        texts.append(out.getvalue())
    path = tmp_path_factory.mktemp("csv") / "f.csv"
    path.write_bytes("".join(texts).encode(encoding))
    with CsvTable(
        path, delimiter=delimiter, encoding=None if encoding == "utf-8" else "utf-16"
    ) as opened:
        found = list(opened.rows())
    # Blank rows (empty cells only) are skipped, unless too long to be read.
    kept = [
        (number, row, text)
        for number, (row, text) in enumerate(zip(cells, texts[1:], strict=True), start=2)
        if len(text) > limit or any(cell.strip() for cell in row)
    ]
    assert [row for row, _ in found] == [number for number, _, _ in kept]
    for (_, read), (_, row, text) in zip(found, kept, strict=True):
        if len(text) > limit:
            assert isinstance(read, UnreadableRow), (text, read)
        else:
            assert read == row


def test_lines_ending_with_a_bare_carriage_return_are_explained(tmp_path: Path) -> None:
    """Old Mac spreadsheets saved CSV with CR line ends: the message says how
    to save the file, not Python's "universal-newline mode"."""
    path = tmp_path / "mac.csv"
    path.write_bytes(b"a,b\r1,2\r3,4\r")
    with pytest.raises(FileFormatError) as error:
        CsvTable(path)
    message = str(error.value)
    assert f"{path}: row 1" in message and "old Mac" in message and "LF or CRLF" in message
    assert "universal-newline" not in message


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_a_wide_file_without_its_mark_is_named_with_its_encoding(
    tmp_path: Path, encoding: str
) -> None:
    """Read as UTF-8 it would be NUL bytes and nonsense (it was blamed on a
    carriage return); the message names the encoding to give, which reads it."""
    path = tmp_path / "wide.csv"
    path.write_bytes("Customer ID,Email\r\nc1,a@b.co\r\nc2,ä@b.co\r\n".encode(encoding))
    with pytest.raises(FileFormatError, match=f"looks like {encoding} text without a byte-order"):
        CsvTable(path)
    _, rows = table(path, encoding=encoding)
    assert rows == [(2, ["c1", "a@b.co"]), (3, ["c2", "ä@b.co"])]


def test_utf_16_without_a_mark_asks_for_the_byte_order(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_bytes("a,b\n1,2\n".encode("utf-16-le"))
    with pytest.raises(FileFormatError, match="give utf-16-le or utf-16-be"):
        CsvTable(path, encoding="utf-16")


def test_an_encoding_that_overrides_the_files_mark_is_named(tmp_path: Path) -> None:
    path = tmp_path / "marked.csv"
    path.write_bytes("a,b\n1,2\n".encode("utf-16"))  # with its byte-order mark
    with pytest.raises(FileFormatError, match="starts with a utf-16 byte-order mark") as error:
        list(table(path, encoding="utf-8")[1])
    assert "cp1252" not in str(error.value)
