"""Reading CSV files (io.csvfiles): delimiter sniffing, encodings, broken
quoting — every failure names the file and the row."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identity_graph.io import FileFormatError
from identity_graph.io.csvfiles import MAX_LINE_BYTES, CsvTable

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
    assert found == list(enumerate(cells, start=2))


def test_blank_lines_are_skipped_but_keep_their_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("a,b\n1,2\n\n3,4\n", encoding="utf-8")
    with CsvTable(path) as opened:
        assert list(opened.rows()) == [(2, ["1", "2"]), (4, ["3", "4"])]


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
    ],
)
def test_broken_files_name_the_row(tmp_path: Path, text: str, row: int, words: str) -> None:
    path = tmp_path / "f.csv"
    path.write_text(text, encoding="utf-8")
    with CsvTable(path) as opened, pytest.raises(FileFormatError) as error:
        list(opened.rows())
    assert f"{path}: row {row}" in str(error.value)
    assert words in str(error.value)


def test_a_line_without_end_is_refused_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    with open(path, "wb") as handle:
        handle.write(b"a,b\n")
        handle.write(b"x" * (MAX_LINE_BYTES + 10))
    with CsvTable(path) as opened, pytest.raises(FileFormatError, match=r"row 2 .*longer than"):
        list(opened.rows())


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
