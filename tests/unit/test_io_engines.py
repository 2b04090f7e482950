"""The polars reader and the Python reader give the same import: random
files (good and bad lines, tickets, decimal commas, time zones with their
DST gaps and folds, quoting, byte-order marks, CRLF, blank and short rows)
imported with each into its own graph give equal summaries, rejects files,
ledgers and journals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity_graph import IdentityGraph, Link
from identity_graph.io import import_offline_data, import_offline_events, offline_data, polars_csv
from identity_graph.io.csvfiles import CsvTable
from identity_graph.io.polars_csv import polars_rows

pytest.importorskip("polars")

ZONES = ("Europe/Helsinki", "UTC", "America/New_York", "Australia/Lord_Howe")
# Around the DST changes of 2024 in Helsinki (31 March, 27 October) and New
# York (10 March, 3 November): gaps, folds, and plain days.
DAYS = ("2024-03-31", "2024-10-27", "2024-03-10", "2024-11-03", "2024-06-01", "2024-04-06")
HOURS = ("00:30:00", "01:30:00", "02:30:00", "03:30:00", "04:15:00", "12:00:00")
BAD_TIMES = ("2024-02-30 10:00:00", "2024-06-01 24:00:00", "2024-06-01 12:00:60", "yesterday", "")


def _quote(cell: str, delimiter: str) -> str:
    if any(c in cell for c in (delimiter, '"', "\n")) or cell.startswith(" "):
        return '"' + cell.replace('"', '""') + '"'
    return cell


times = st.one_of(
    st.builds(lambda d, h: f"{d} {h}", st.sampled_from(DAYS), st.sampled_from(HOURS)),
    st.sampled_from(BAD_TIMES),
)
amounts = st.sampled_from(["7,80", "3.20", "2", "0", "-1,5", "1e3", "1.000,50", "", "x", " 4 "])
quantities = st.sampled_from(["1", "2", "3,0", "0", "-1", "1,5", "", "many"])
codes = st.sampled_from(["7", "7", "7", "3", "12", "", "seven"])
customers = st.sampled_from(["c1", "c2", "c3", "", "c 4", "x" * 300])
transactions = st.sampled_from(["T-1", "T-2", "T;3", 'T"4', "", ""])
texts = st.sampled_from(["", "Coffee", "Bakery; fresh", 'say "hi"', "two\nlines", " padded "])


@st.composite
def offline_files(draw: st.DrawFn) -> tuple[bytes, str]:
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    header = [
        "Time Stamp",
        "Customer ID",
        "Event Type",
        "Category",
        "Event Name",
        "Num1",
        "Num2",
        "Var1",
        "EventTransaction Attr1",
    ]
    lines = [delimiter.join(header)]
    # Short rows in a file with quotes send it to the Python reader: both kinds of file.
    kinds = ["line", "line", "line", "blank", "empty"] + ["short"] * draw(st.integers(0, 1))
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(kinds))
        if kind == "blank":
            lines.append("")
            continue
        if kind == "empty":
            lines.append(delimiter * (len(header) - 1))
            continue
        cells = [
            draw(times),
            draw(customers),
            draw(codes),
            draw(texts),
            draw(st.sampled_from(["SKU-1", "SKU-2", ""])),
            draw(quantities),
            draw(amounts),
            draw(st.sampled_from(["S1", "S2", ""])),
            draw(transactions),
        ]
        if kind == "short":
            cells = cells[: draw(st.integers(1, len(cells) - 1))]
        lines.append(delimiter.join(_quote(cell, delimiter) for cell in cells))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + draw(st.sampled_from([newline, ""]))
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    return bom + text.encode("utf-8"), draw(st.sampled_from(ZONES))


def _import(path: Path, engine: str, zone: str, **options: Any) -> tuple[Any, ...]:
    graph = IdentityGraph()
    rejects = path.with_name(f"rejects-{engine}.csv")
    summary = import_offline_data(
        graph,
        path,
        tz=zone,
        engine=engine,
        rejects=rejects,
        ticket_fields={"Var1": "store"},
        **options,
    )
    ledger = sorted((e.id, e.content()) for p in graph.profiles() for e in graph.events(p.id))
    return summary, rejects.read_text(encoding="utf-8"), ledger, list(graph.journal())


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(offline_files(), st.sampled_from([1, 3, 100]), st.sampled_from([2, 1000]))
def test_offline_data_is_the_same_with_either_reader(
    tmp_path: Path, case: tuple[bytes, str], batch_size: int, window: int
) -> None:
    data, zone = case
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    options = {"batch_size": batch_size, "ticket_window": window}
    assert _import(path, "polars", zone, **options) == _import(path, "python", zone, **options)


def test_a_row_long_for_its_escaped_quotes_is_rejected_by_either_reader(tmp_path: Path) -> None:
    """The polars reader measured a row by its cells, where each doubled
    quote of the file is one character: a row over the limit in the file
    was imported by polars and rejected by the Python reader."""
    header = "Time Stamp,Customer ID,Event Type,Event Name,Num1,Num2,Var1,Var2\n"
    path = tmp_path / "data.csv"
    path.write_text(
        header
        + '2024-03-01 10:00:00,c1,3,CALL,1,0,S1,"'
        + '""' * 600_000
        + '"\n2024-03-01 11:00:00,c2,3,CALL,1,0,S1,x\n',
        encoding="utf-8",
    )
    polars, python = _import(path, "polars", "UTC"), _import(path, "python", "UTC")
    assert polars == python
    assert polars[0].rejected == 1 and "longer than" in polars[1]


def test_a_time_beyond_the_supported_instants_is_rejected_alike(tmp_path: Path) -> None:
    """The polars time parser checked the local year, not the UTC instant:
    a stamp past the last instant in UTC was passed on and refused by the
    graph, in another column's words, instead of by the time check."""
    path = tmp_path / "data.csv"
    path.write_text(
        "Time Stamp,Customer ID,Event Type,Event Name,Num1,Num2,Var1\n"
        "9998-12-31 23:59:59,c1,3,CALL,1,0,S1\n"
        "2024-03-01 11:00:00,c2,3,CALL,1,0,S1\n",
        encoding="utf-8",
    )
    polars, python = (_import(path, engine, "Etc/GMT+12") for engine in ("polars", "python"))
    assert polars == python
    assert polars[0].rejected == 1 and "Time Stamp" in polars[1]


def test_polars_reads_the_common_files(tmp_path: Path) -> None:
    """The comparison above would pass if polars never read anything: the
    files people write (quoted cells, BOM, CRLF, blank rows, short rows)
    are read by polars, and the rest by the Python reader."""
    path = tmp_path / "data.csv"
    read = {
        b'a;b\r\n"x;1";2\r\n\r\n3;""\r\n': True,
        b"\xef\xbb\xbfa,b\n1,2\n,\n": True,
        b"a,b\n1,2,3\n": True,  # a long row: rejected for its width, as by the Python reader
        'a,b\n"é",2\n'.encode("cp1252"): False,  # not UTF-8
        b'a,b\n"x"y,2\n': False,  # broken quoting: the Python reader names the row
        b'a,b\n"x",2,3\n': False,  # a quoted file's row of the wrong width
        b"a,b\n1\r2,3\n": False,  # a CR that ends no line: the Python reader names the row
        b"a,b\n1,\x00\n": False,
    }
    for data, expected in read.items():
        path.write_bytes(data)
        with CsvTable(path) as table:
            assert (polars_rows(table, "auto") is not None) is expected, data
            assert polars_rows(table, "python") is None


def test_auto_streams_a_file_too_large_for_the_polars_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The polars path holds the file's events in memory: ``auto`` leaves a
    file over the bound to the streaming reader, ``polars`` reads it."""
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\n1,2\n3,4\n")
    monkeypatch.setattr(polars_csv, "AUTO_MAX_BYTES", path.stat().st_size - 1)
    with CsvTable(path) as table:
        assert polars_rows(table, "auto") is None
        assert polars_rows(table, "polars") is not None
    monkeypatch.setattr(polars_csv, "AUTO_MAX_BYTES", path.stat().st_size)
    with CsvTable(path) as table:
        assert polars_rows(table, "auto") is not None


def test_an_unknown_engine_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("Time Stamp,Customer ID,Event Type,Event Name,Num1,Num2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="engine='fast' must be one of"):
        import_offline_data(IdentityGraph(), path, tz="UTC", engine="fast")
    with pytest.raises(ValueError, match="engine='fast' must be one of"):
        import_offline_events(IdentityGraph(), path, tz="UTC", engine="fast")


EVENT_ROWS = (
    "plain,Store visit,{address},Spring,{time},,,",
    "interest,Catalogue,{address},Spring,{time},Aware,10,",
    "purchase,Sofa,{address},Spring,{time},Bought,50,1",
    "purchase,Sofa,{address},Spring,{time},,,0",
    "other,Sofa,{address},Spring,{time},,,",
    'plain,"Visit, long",{address},Spring,{time},,,',
    "plain,Visit,{address},Spring",
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(EVENT_ROWS),
            st.sampled_from(["ann@example.com", "ANN@example.com", "bob@example.com", "no"]),
            times,
        ),
        max_size=15,
    ),
    st.sampled_from(ZONES),
    st.sampled_from(["\n", "\r\n"]),
)
def test_offline_events_are_the_same_with_either_reader(
    tmp_path: Path, rows: list[tuple[str, str, str]], zone: str, newline: str
) -> None:
    header = "Type,Event Name,Member Email Address,Mailing,Time Stamp,Interest Stage,"
    header += "Interest Points,Quantity"
    lines = [header] + [row.format(address=a, time=t) for row, a, t in rows]
    path = tmp_path / "events.csv"
    path.write_text(newline.join(lines) + newline, encoding="utf-8", newline="")
    found = []
    for engine in ("polars", "python"):
        graph = IdentityGraph()
        graph.link("ann", Link("email", "ann@example.com"), at=datetime(2020, 1, 1, tzinfo=UTC))
        rejects = tmp_path / f"rejects-{engine}.csv"
        summary = import_offline_events(graph, path, tz=zone, engine=engine, rejects=rejects)
        events = sorted((e.id, e.content()) for e in graph.events("ann"))
        found.append((summary, rejects.read_text(encoding="utf-8"), events, list(graph.journal())))
    assert found[0] == found[1]


# ------------------------------------------------------------------ the columns' checks

number_texts = st.one_of(
    st.text(alphabet="0123456789+-., e\u00a0\x1c", max_size=8),
    st.from_regex(r"[+-]?[0-9]{0,22}([.,][0-9]{0,22})?", fullmatch=True),
    st.text(max_size=4),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(number_texts, min_size=1, max_size=30), st.booleans())
def test_the_columns_read_numbers_as_the_cells_do(texts: list[str], comma: bool) -> None:
    """A number cell the columns accept is one parse_decimal reads, to the
    same value; one they refuse, it refuses (or it is left to the Python
    path for its size); likewise whole quantities and parse_whole."""
    import polars as pl

    from identity_graph.io.cells import parse_decimal, parse_whole
    from identity_graph.io.polars_csv import decimal_columns, stripped, whole_columns

    frame = (
        pl.DataFrame({"c0": texts}, schema={"c0": pl.String})
        .with_columns(*decimal_columns(stripped("c0"), comma, "_n"))
        .with_columns(*whole_columns("_n"))
    )
    for text, ok, normal, unscaled, exponent, whole in frame.select(
        "c0", "_nok", "_ntext", "_nunscaled", "_nexp", "_nwhole"
    ).iter_rows():
        try:
            expected = parse_decimal(text, comma)
        except ValueError:
            expected = None
        assert ok == (expected is not None), text
        if expected is not None:
            assert str(Decimal(normal)) == str(expected), text
            if unscaled is not None:
                assert Decimal(unscaled).scaleb(exponent) == expected, text
                assert Decimal(unscaled).scaleb(exponent).as_tuple().exponent == exponent
        try:
            quantity: int | None = parse_whole(text, 0, comma)
        except ValueError:
            quantity = None
        if whole is not None:
            assert whole == quantity, text
        elif quantity is not None:
            assert quantity >= 10**17 or len(text.strip()) > 18, text


# ------------------------------------------------------------------ the fast path and its fallbacks

good_lines = st.tuples(
    st.sampled_from(["2024-06-01 12:00:00", "2024-06-02 08:30:00", "2024-03-31 03:30:00"]),
    st.sampled_from(["c1", "c2", "c3", "cé"]),
    st.sampled_from(["1", "2", "3,0"]),
    st.sampled_from(["7,80", "3.20", "10", "0,333", "-1,5", "-0"]),
    st.sampled_from(["S1", "S2", ""]),
    st.sampled_from(["Coffee", ""]),
)
#: Faults put into an otherwise valid line: a bad cell, another customer
#: (the ticket's lines disagree), another store, a line that is no purchase.
faults = st.sampled_from(
    [None] * 6 + ["time", "customer", "quantity", "amount", "other-customer", "store", "code"]
)


@st.composite
def ticket_files(draw: st.DrawFn) -> tuple[bytes, int]:
    """Mostly valid tickets of 1-4 lines, interleaved, some spread apart
    (beyond a small ticket_window), a few lines with one fault."""
    header = "Time Stamp;Customer ID;Event Type;Category;Event Name;Num1;Num2;Var1;"
    header += "EventTransaction Attr1;EventTransaction Attr2"
    lines: list[str] = []
    for ticket in range(draw(st.integers(1, 12))):
        at, customer, _, _, store, _ = draw(good_lines)
        txn = draw(st.sampled_from([f"T{ticket}", f"T{ticket}", "", "T0"]))
        for _ in range(draw(st.integers(1, 4))):
            _, _, quantity, amount, _, category = draw(good_lines)
            cells = [at, customer, "7", category, "SKU", quantity, amount, store, txn, "card"]
            fault = draw(faults)
            if fault == "time":
                cells[0] = "2024-02-30 10:00:00"
            elif fault == "customer":
                cells[1] = ""
            elif fault == "quantity":
                cells[5] = "-1"
            elif fault == "amount":
                cells[6] = "1.000,50"
            elif fault == "other-customer":
                cells[1] = "c9"
            elif fault == "store":
                cells[7] = "S9"
            elif fault == "code":
                cells[2] = draw(st.sampled_from(["3", "x"]))
            position = draw(st.integers(0, len(lines)))
            lines.insert(position, ";".join(cells))
        if draw(st.booleans()):
            lines.append("")  # a blank row keeps its number
    return ("\n".join([header, *lines]) + "\n").encode(), draw(st.sampled_from([1, 2, 5, 100]))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ticket_files(), st.sampled_from([1, 2, 1000]), st.sampled_from(ZONES))
def test_tickets_are_the_same_column_by_column(
    tmp_path: Path, case: tuple[bytes, int], batch_size: int, zone: str
) -> None:
    data, window = case
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    options = {"batch_size": batch_size, "ticket_window": window}
    assert _import(path, "polars", zone, **options) == _import(path, "python", zone, **options)


def test_valid_tickets_never_reach_the_python_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparisons above would pass if the columns left every line to
    the Python path: valid lines are read from the columns, and only the
    lines of a ticket with a bad line go line by line."""
    lines = ["Time Stamp;Customer ID;Event Type;Event Name;Num1;Num2;EventTransaction Attr1"]
    for n in range(200):
        lines.append(f"2024-06-01 12:00:00;c{n // 3 % 7};7;SKU-{n};2;{n},50;T{n // 3}")
    lines.append("2024-06-01 12:00:00;c9;3;CALL;1;0;")
    lines.append("2024-06-01 12:00:00;c1;7;SKU;2;x;T0")  # spoils ticket T0's lines
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    seen: list[int] = []
    line = offline_data._Reader.line

    def counted(self: Any, row: int, cells: Any) -> None:
        seen.append(row)
        line(self, row, cells)

    monkeypatch.setattr(offline_data._Reader, "line", counted)
    summary = import_offline_data(IdentityGraph(), path, tz="UTC", engine="polars")
    assert summary.imported == 198 and summary.rejected == 4
    assert seen == [2, 3, 4, 203]
