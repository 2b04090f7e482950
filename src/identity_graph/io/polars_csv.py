"""Reading a CSV file's rows with polars (the ``[polars]`` extra), when that
reads exactly what :class:`~identity_graph.io.csvfiles.CsvTable` reads.

The importers take ``engine="auto" | "polars" | "python"``.  ``"python"``
reads with :class:`CsvTable` (streamed, any encoding).  ``"polars"`` and
``"auto"`` (the default, when polars can be imported) first open the file
with :class:`CsvTable` — so the encoding, byte-order mark, delimiter sniffing
and header checks are those of every import — then hand the file to polars
when polars provably reads the same cells, and to :class:`CsvTable`
otherwise.  Polars reads it when:

- the file is UTF-8 (with or without a byte-order mark) and decodes;
  any other encoding, and a byte that does not decode, go to the Python
  reader, which names the row of a bad byte;
- it holds no NUL and no carriage return that does not end a line;
- its quoting is well formed and every record of a quoted file has the
  header's width or is an empty line (checked with one regular expression
  over the file); a file without quotes may have rows of any width: each
  row's width is counted from its line, so a short or long row is rejected
  exactly as the Python reader rejects it;
- no row is near :data:`~identity_graph.io.csvfiles.MAX_ROW_CHARACTERS`.

The choice is made before a single row is imported, so the answer never
depends on it: only the speed does.  Rows are numbered as :class:`CsvTable`
numbers them (the header is row 1; blank rows keep their numbers and are
skipped).  The polars reader holds the file's cells in memory (about the
file's size, in Arrow strings) and hands them out in chunks of
:data:`CHUNK_ROWS` rows; the Python reader streams.

Polars is imported only here, and only when this module reads a file.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import attrs

from ..times import EARLIEST, EPOCH, LATEST, micros
from .csvfiles import MAX_ROW_CHARACTERS, CsvTable

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "CHUNK_ROWS",
    "ENGINES",
    "Chunk",
    "PolarsRows",
    "check_engine",
    "decimal_columns",
    "polars_rows",
    "stripped",
    "utc_micros",
    "utc_times",
    "whole_columns",
]

#: The engines an importer takes.
ENGINES = ("auto", "polars", "python")
#: Rows handed to the importer at once (its Python objects are made per chunk).
CHUNK_ROWS = 1 << 16

#: Every character ``str.strip()`` removes, for polars to strip the same ones
#: (its own notion of white space is Unicode's, which lacks \x1c-\x1f).
PYTHON_WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
_BLANK = "^[" + "".join(f"\\x{{{ord(c):x}}}" for c in PYTHON_WHITESPACE) + "]*$"
_LONE_CR = re.compile(rb"\r(?!\n)")


def check_engine(engine: object) -> str:
    """``engine`` if it is one of :data:`ENGINES`; ``ValueError`` otherwise,
    and for ``"polars"`` when polars cannot be imported.  O(1)."""
    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r} must be one of {', '.join(map(repr, ENGINES))}")
    if engine == "polars" and _polars() is None:
        raise ValueError(
            "engine='polars' needs the polars package (pip install 'identity-graph[polars]'); "
            "engine='auto' reads without it"
        )
    return str(engine)


def _polars() -> Any:
    try:
        import polars
    except ImportError:
        return None
    return polars


@attrs.frozen
class Chunk:
    """Consecutive data rows: their numbers, their cells, and the same cells
    as a polars frame (column ``c<i>`` for the file's column ``i``), for
    whatever an importer wants to compute column by column."""

    rows: Sequence[int]
    cells: Sequence[Sequence[str]]
    frame: pl.DataFrame

    def pairs(self) -> Iterator[tuple[int, Sequence[str]]]:
        """``(row number, cells)`` of each row, as ``CsvTable.rows()`` gives them."""
        return zip(self.rows, self.cells, strict=True)


class PolarsRows:
    """The data rows of a file polars has read (see :func:`polars_rows`)."""

    def __init__(self, frame: pl.DataFrame, widths: dict[int, int], size: int) -> None:
        self._frame = frame
        self._widths = widths  # row number -> cell count, for rows of the wrong width
        self._size = size
        self._done = 0

    def __len__(self) -> int:
        return self._frame.height

    def chunks(self) -> Iterator[Chunk]:
        """The rows in :data:`CHUNK_ROWS` chunks, in file order; a row of the
        wrong width comes as that many empty cells (the importer rejects it
        for its width).  O(rows × columns)."""
        frame = self._frame
        names = [name for name in frame.columns if name != "row"]
        for start in range(0, frame.height, CHUNK_ROWS):
            part = frame.slice(start, CHUNK_ROWS)
            rows: list[int] = part["row"].to_list()
            columns = [part[name].to_list() for name in names]
            cells: list[Sequence[str]] = list(zip(*columns, strict=True))
            if self._widths:
                for index, row in enumerate(rows):
                    width = self._widths.get(row)
                    if width is not None:
                        cells[index] = [""] * width
            self._done = start + part.height
            yield Chunk(rows, cells, part.drop("row"))

    @property
    def frame(self) -> pl.DataFrame:
        """Every data row: ``row`` (its number) and the cells ``c0``, ``c1``…"""
        return self._frame

    @property
    def widths(self) -> dict[int, int]:
        """The cell count of each row of the wrong width, by row number."""
        return self._widths

    def finish(self) -> None:
        """Mark every row as read (for progress), when read as a whole."""
        self._done = len(self)

    def position(self) -> int:
        """Bytes read so far, as a share of the file (for progress)."""
        return self._size * self._done // max(1, len(self))


#: ``engine="auto"`` reads a file with polars only up to this size: the
#: polars path holds the file's cells and the events it builds in memory
#: (about 18 times the file, measured on offline data), where the Python
#: reader streams.  ``engine="polars"`` reads a file of any size.
AUTO_MAX_BYTES = 128 * 2**20


def polars_rows(table: CsvTable, engine: str) -> PolarsRows | None:
    """The data rows of ``table``'s file read by polars, or None when
    ``engine`` says not to (``"auto"`` and a file over
    :data:`AUTO_MAX_BYTES`), polars cannot be imported, or the file is one
    polars might read differently (the module's rules); ``table`` is then
    read as it is.  ``table`` is open and its header read.  O(file)."""
    if engine == "python":
        return None
    if engine == "auto" and table.path.stat().st_size > AUTO_MAX_BYTES:
        return None
    pl = _polars()
    if pl is None or codecs.lookup(table.encoding).name not in ("utf-8", "utf-8-sig"):
        return None
    data = table.path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None  # the Python reader names the row of the bad byte
    if b"\x00" in data or (b"\r" in data and _LONE_CR.search(data)):
        return None
    width = len(table.header)
    delimiter = table.delimiter
    quoted = b'"' in data
    if quoted and not _well_quoted(data, delimiter.encode(), width):
        return None
    try:
        frame = pl.read_csv(
            data,
            has_header=False,
            separator=delimiter,
            quote_char='"',
            infer_schema=False,
            truncate_ragged_lines=True,
            empty_string_is_null=False,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError:  # pragma: no cover - the checks above let none through
        return None
    if frame.width != width or frame.height == 0:
        return None
    names = [f"c{i}" for i in range(width)]
    frame = frame.rename(dict(zip(frame.columns, names, strict=True))).with_columns(
        pl.col(names).fill_null("")
    )
    frame = frame.with_row_index("row", offset=1).slice(1)  # the header is row 1
    counts: Any = None
    if not quoted:
        counts = _cell_counts(pl, data, delimiter, frame.height + 1)
        if counts is None:
            return None
        frame = frame.with_columns(counts.slice(1).alias("_cells"))
    blank = pl.all_horizontal(pl.col(name).str.contains(_BLANK) for name in names)
    frame = frame.filter(~blank)
    if len(data) > MAX_ROW_CHARACTERS // 2:
        # A row near the limit is read by the Python reader, which skips one past it.
        # A quote inside a quoted cell is two characters in the file.
        longest = frame.select(
            pl.sum_horizontal(
                pl.col(name).str.len_bytes() + pl.col(name).str.count_matches('"', literal=True)
                for name in names
            ).max()
        ).item()
        if longest is not None and longest + 3 * width + 2 > MAX_ROW_CHARACTERS:
            return None
    widths: dict[int, int] = {}
    if counts is not None:
        wrong = frame.filter(pl.col("_cells") != width)
        widths = dict(zip(wrong["row"].to_list(), wrong["_cells"].to_list(), strict=True))
        frame = frame.drop("_cells")
    return PolarsRows(frame, widths, table.size)


def _well_quoted(data: bytes, delimiter: bytes, width: int) -> bool:
    """Whether every record of ``data`` is ``width`` fields, each either
    quoted (``"..."``, ``""`` inside, no carriage return) or unquoted
    without a quote, or is an empty line.  O(len(data)), one regular
    expression without backtracking."""
    d = re.escape(delimiter)
    field = rb'(?:"(?:[^"\r]|"")*+"|[^"\r\n' + d + rb"]*+)"
    record = (
        field
        + (rb"(?:" + d + field + rb")" if width > 1 else b"")
        + (b"{%d}" % (width - 1) if width > 1 else b"")
    )
    grammar = rb"(?:(?:" + record + rb")?\r?\n)*+(?:" + record + rb")?"
    return re.fullmatch(grammar, data) is not None


def _cell_counts(pl: Any, data: bytes, delimiter: str, records: int) -> Any:
    """The number of cells of each line of a file without quotes (a line is
    a record there), as a polars series; None if polars does not see
    ``records`` lines.  O(len(data))."""
    free = next((chr(c) for c in range(1, 32) if chr(c).encode() not in data), None)
    if free is None or free in "\n\r":  # pragma: no cover - a file of every control
        return None
    lines = pl.read_csv(
        data,
        has_header=False,
        separator=free,
        quote_char=None,
        infer_schema=False,
        empty_string_is_null=False,
        raise_if_empty=False,
    )
    if lines.width != 1 or lines.height != records:
        return None
    column = lines.to_series().fill_null("")
    return (column.str.count_matches(delimiter, literal=True) + 1).cast(pl.Int64)


# ------------------------------------------------------------------ times

_FAST_TIME = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]) ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"
)


def utc_times(texts: pl.Series, zone: tzinfo) -> dict[str, datetime]:
    """The instants of the time stamps in ``texts`` that polars can read
    exactly as :func:`~identity_graph.io.cells.parse_time` does, by text;
    the others (malformed, out of range, or on a local date when the zone's
    offset changes) are left to ``parse_time``, which gives their errors and
    their DST answers.

    The offset of each local date is read from ``zone`` itself (every half
    hour of the date, and its last second): a date whose offset never
    changes has no gap and no fold, so its times are the local time minus
    that offset, which is what ``parse_time`` computes.  Only
    :class:`~zoneinfo.ZoneInfo` and fixed-offset zones are read so.
    O(distinct texts + distinct dates × 49).
    """
    frame = utc_micros(texts, zone)
    epoch, delta = EPOCH, timedelta
    return {
        text: epoch + delta(microseconds=us)
        for text, us in zip(frame["text"].to_list(), frame["us"].to_list(), strict=True)
    }


def utc_micros(texts: pl.Series, zone: tzinfo) -> pl.DataFrame:
    """What :func:`utc_times` finds, as a frame of ``text`` (each distinct
    text polars reads exactly as ``parse_time``) and ``us`` (its instant in
    microseconds since 1970 UTC).  O(distinct texts + distinct dates × 49)."""
    import polars as pl

    empty = pl.DataFrame(schema={"text": pl.String, "us": pl.Int64})
    if not isinstance(zone, ZoneInfo | timezone):
        return empty
    distinct = texts.unique().drop_nulls()
    frame = pl.DataFrame({"text": distinct}).with_columns(
        pl.col("text").str.strip_chars(PYTHON_WHITESPACE).alias("stripped")
    )
    frame = frame.filter(pl.col("stripped").str.contains(_FAST_TIME))
    frame = frame.with_columns(
        pl.col("stripped").str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
    ).filter(pl.col("stripped").is_not_null())
    frame = frame.filter(pl.col("stripped").dt.year().is_between(3, 9998))
    if frame.height == 0:
        return empty
    frame = frame.with_columns(pl.col("stripped").dt.date().alias("date"))
    offsets = {}
    for day in frame["date"].unique().to_list():
        offset = _steady_offset(day, zone)
        if offset is not None:
            offsets[day] = offset
    if not offsets:
        return empty
    table = pl.DataFrame(
        {"date": list(offsets), "offset": list(offsets.values())},
        schema={"date": pl.Date, "offset": pl.Int64},
    )
    frame = frame.join(table, on="date", how="inner").with_columns(
        (pl.col("stripped").dt.epoch("us") - pl.col("offset")).alias("us")
    )
    # Instants outside the supported range are left to parse_time, which
    # names the rule (the local year was checked above, not the instant).
    low, high = micros(EARLIEST), micros(LATEST)
    frame = frame.filter(pl.col("us").is_between(low, high))
    return frame.select("text", "us")


def _steady_offset(day: date, zone: tzinfo) -> int | None:
    """The UTC offset of ``zone`` on local ``day`` in microseconds, or None
    when it changes within the day.  O(1): 49 readings."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    first = start.utcoffset()
    if first is None:  # pragma: no cover - ZoneInfo and timezone always answer
        return None
    for minutes in range(30, 24 * 60, 30):
        moment = start + timedelta(minutes=minutes)  # wall-clock arithmetic, as parse_time
        if moment.utcoffset() != first:
            return None
    if start.replace(hour=23, minute=59, second=59).utcoffset() != first:
        return None
    return (first.days * 86_400 + first.seconds) * 1_000_000 + first.microseconds


# ------------------------------------------------------------------ numbers

#: The longest run of significant digits read into a 64-bit integer.
INT64_DIGITS = 18


def stripped(name: str) -> pl.Expr:
    """Column ``name`` stripped as ``str.strip()`` strips (every character
    Python calls white space, \\x1c-\\x1f among them)."""
    import polars as pl

    return pl.col(name).str.strip_chars(PYTHON_WHITESPACE)


def _number_pattern(decimal_comma: bool) -> str:
    # cells._NUMBER_COMMA / _NUMBER_POINT, anchored: [0-9] is ASCII in both
    # Python's re and polars' regex.
    separator = "[.,]" if decimal_comma else "[.]"
    return f"^[+-]?([0-9]+({separator}[0-9]*)?|{separator}[0-9]+)$"


def decimal_columns(text: pl.Expr, decimal_comma: bool, prefix: str) -> list[pl.Expr]:
    """Columns that read the stripped cell ``text`` as
    :func:`~identity_graph.io.cells.parse_decimal` does, without a Python
    call per cell:

    - ``<prefix>ok``: whether ``parse_decimal`` reads it (the number pattern,
      and no more characters than its digit bound, which a text of the
      pattern within that length always keeps);
    - ``<prefix>text``: the text ``Decimal`` is made from (``,`` read as
      ``.``), so that the value is exactly ``parse_decimal``'s;
    - ``<prefix>unscaled`` and ``<prefix>exp``: the value as an exact
      (integer, exponent) pair, ``unscaled`` null beyond
      :data:`INT64_DIGITS` significant digits (such a cell is left to the
      Python path);
    - ``<prefix>frac0``: whether its fractional digits are all zero.

    O(len(text)) per cell, in polars."""
    import polars as pl

    from .cells import MAX_WHOLE_DIGITS

    ok = text.str.contains(_number_pattern(decimal_comma)) & (
        text.str.len_chars() <= MAX_WHOLE_DIGITS
    )
    integer = text.str.extract(r"^[+-]?([0-9]*)", 1).fill_null("")
    fraction = text.str.extract(r"[.,]([0-9]*)$", 1).fill_null("")
    digits = (integer + fraction).str.strip_chars_start("0")
    magnitude = (
        pl.when(digits.str.len_chars() <= INT64_DIGITS)
        .then(pl.when(digits == "").then(pl.lit("0")).otherwise(digits))
        .cast(pl.Int64, strict=False)
    )
    negative = text.str.starts_with("-")
    return [
        ok.alias(f"{prefix}ok"),
        (text.str.replace(",", ".", literal=True) if decimal_comma else text).alias(
            f"{prefix}text"
        ),
        pl.when(ok)
        .then(pl.when(negative).then(-magnitude).otherwise(magnitude))
        .alias(f"{prefix}unscaled"),
        (-fraction.str.len_chars().cast(pl.Int64)).alias(f"{prefix}exp"),
        fraction.str.contains("^0*$").alias(f"{prefix}frac0"),
        integer.str.strip_chars_start("0").str.len_chars().alias(f"{prefix}intlen"),
    ]


def whole_columns(prefix: str) -> list[pl.Expr]:
    """From the columns of :func:`decimal_columns` under ``prefix``:
    ``<prefix>whole``, the whole number >= 0 that
    :func:`~identity_graph.io.cells.parse_whole` (minimum 0) reads from the
    cell, or null when it reads none or one beyond :data:`INT64_DIGITS`
    digits (left to the Python path).  O(1) per cell, in polars."""
    import polars as pl

    unscaled = pl.col(f"{prefix}unscaled")
    exponent = pl.col(f"{prefix}exp")
    fits = (
        pl.col(f"{prefix}ok")
        & pl.col(f"{prefix}frac0")
        & (pl.col(f"{prefix}intlen") <= INT64_DIGITS)
        & unscaled.is_not_null()
        & (unscaled >= 0)
    )
    # All fractional digits are zero: the value is unscaled / 10**-exponent.
    whole = unscaled // pl.lit(10, pl.Int64).pow(-exponent)
    return [pl.when(fits).then(whole).alias(f"{prefix}whole")]
