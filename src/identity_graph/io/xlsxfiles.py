"""Reading and writing XLSX workbooks safely, with ``openpyxl``.

Reading a workbook from somewhere else is reading untrusted XML inside an
untrusted zip archive.  Three defences, in order:

1. **The archive's declared sizes** are checked with :mod:`zipfile` before
   ``openpyxl`` opens it: the sum of the members' uncompressed sizes must
   stay within :attr:`XlsxLimits.max_uncompressed_bytes`.  Declared sizes
   can be trusted because Python's ``zipfile`` never returns more bytes
   than a member declares (a member that inflates further fails its check),
   so a zip bomb cannot get past this gate.
2. **defusedxml**: openpyxl parses with ``defusedxml`` whenever it is
   installed (``openpyxl.DEFUSEDXML``), which refuses entity expansion
   ("billion laughs") and external entities.  We refuse to read at all if
   it is not in use (``OPENPYXL_DEFUSEDXML=False`` turns it off).
3. **Streaming with a row limit**: ``load_workbook(read_only=True)`` parses
   the sheet as it is iterated; rows are counted and reading stops past
   :attr:`XlsxLimits.max_rows`, however many rows the sheet declares.

Writing uses a write-only workbook (streamed, inline strings) and stores
every text as a string cell: a value that starts with ``=`` is text, never a
formula, and one that starts like a formula also gets Excel's "quote
prefix", so editing the cell later does not turn it into one either.

Text is escaped as Office escapes it (:func:`escape_text`): a character XML
cannot carry, or a carriage return, is written ``_xHHHH_``; reading undoes it
(:func:`unescape_text`), for our files and Excel's alike.  So every string
can be written — one odd value never stops an export — and reads back as it
was.  A cell holds at most 32,767 characters (Excel's limit, :data:`CELL_LIMIT`),
escapes included: a longer text is never cut, the export stops naming its
row and column.  Reading applies the rule of CSV rows: a row whose text
passes 1,048,576 characters is handed to the importer as unreadable, and
rejected.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from .cells import FORMULA_TRIGGERS
from .csvfiles import MAX_ROW_CHARACTERS
from .errors import FileFormatError, FileTooLarge
from .tables import ClosesOnExit, UnreadableRow

__all__ = [
    "CELL_LIMIT",
    "Formula",
    "XlsxLimits",
    "XlsxTable",
    "XlsxWriter",
    "check_archive",
    "escape_text",
    "unescape_text",
]


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"XlsxLimits.{attribute.name} = {value!r} must be a whole number >= 1")


#: Each limit's command-line option, which messages name beside the keyword.
_OPTIONS = {"max_uncompressed_bytes": "--max-bytes", "max_rows": "--max-rows"}


def _limit(name: str) -> str:
    """A limit as messages name it, for callers of the API and of the command
    line alike: ``max_rows (--max-rows)``."""
    return f"{name} ({_OPTIONS[name]})"


@attrs.frozen
class XlsxLimits:
    """How large an XLSX file the importers agree to read.

    - ``max_uncompressed_bytes`` (512 MiB): the sum of the archive members'
      uncompressed sizes — about 2 million rows of ten short columns;
    - ``max_rows`` (1,048,576, Excel's own limit): data rows read from the sheet.

    The command line's ``--max-bytes`` and ``--max-rows`` set them; a file
    past one is a ``FileTooLarge`` naming both spellings.
    """

    max_uncompressed_bytes: int = attrs.field(default=512 * 2**20, validator=_positive)
    max_rows: int = attrs.field(default=1_048_576, validator=_positive)


@attrs.frozen
class Formula:
    """A cell that holds a formula rather than a value (never imported)."""

    text: str


def check_archive(path: Path, limits: XlsxLimits) -> None:
    """Refuse a file that is not a zip archive or whose members, uncompressed,
    pass ``limits``.  Reads only the archive's central directory: O(members)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as error:
        raise FileFormatError(
            f"{path}: not an XLSX workbook (not a zip archive: {error})"
        ) from None
    total = sum(member.file_size for member in members)
    if total > limits.max_uncompressed_bytes:
        raise FileTooLarge(
            f"{path}: the workbook holds {total:,} bytes uncompressed, more than "
            f"{limits.max_uncompressed_bytes:,}, the limit {_limit('max_uncompressed_bytes')}"
        )


def _describe(error: BaseException) -> str:
    """The innermost cause of an openpyxl error, which says what was wrong
    (openpyxl wraps XML errors in a generic "Unable to read workbook")."""
    while error.__cause__ is not None:
        error = error.__cause__
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def _defused() -> bool:
    import openpyxl

    return bool(openpyxl.DEFUSEDXML)


#: What a text cell cannot hold as it is: the characters XML 1.0 cannot carry
#: (C0 controls but tab and line feed, lone surrogates, U+FFFE, U+FFFF) and
#: carriage return, which every XML parser turns into a line feed.
_UNSAFE = "[\x00-\x08\x0b-\x1f\ud800-\udfff\ufffe\uffff]"
_HEX4 = "[0-9A-Fa-f]{4}"
#: An unsafe character, or an ``_`` that would read as the start of an escape.
_TO_ESCAPE = re.compile(f"{_UNSAFE}|_(?=x{_HEX4}(?:_|{_UNSAFE}))")
_ESCAPED = re.compile(f"_x({_HEX4})_")
#: A high surrogate followed by a low one: the two UTF-16 halves of a character.
_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def escape_text(text: str) -> str:
    r"""``text`` as an XLSX text cell holds it: OOXML's escaping (ST_Xstring).

    XML cannot carry most control characters, and turns a carriage return
    into a line feed, so Office writes such a character as ``_xHHHH_``, its
    code in hex (``\r`` is ``_x000D_``).  An ``_`` that would otherwise
    start such an escape is itself written ``_x005F_``: ``_x0041_`` as text
    is ``_x005F_x0041_``.  That includes an ``_`` whose escape would be
    closed by the next escape's ``_`` (``_x0041`` then ``\x01``), which a
    plain "protect every ``_xHHHH_``" rule misses.  openpyxl does neither
    (it refuses control characters and lets CR become LF), hence this.
    :func:`unescape_text` gives back exactly ``text``.  O(len(text)).

    >>> escape_text("line1\r\nline2"), escape_text("An\x00n"), escape_text("_x0041_")
    ('line1_x000D_\nline2', 'An_x0000_n', '_x005F_x0041_')
    """
    return _TO_ESCAPE.sub(_escape_one, text)


def _escape_one(match: re.Match[str]) -> str:
    return f"_x{ord(match.group()):04X}_"


def unescape_text(text: str) -> str:
    r"""The text of an XLSX text cell as written: each ``_xHHHH_`` is the
    character with that code (Excel writes them; openpyxl leaves them as
    they are).  The inverse of :func:`escape_text`.  O(len(text)).

    A character beyond U+FFFF is escaped as its two UTF-16 halves
    (``_xD83D__xDE00_`` is 😀): an escaped high surrogate followed by a low
    one is the character they make; a half without its partner stays alone
    (and the graph refuses it).  So :func:`escape_text` is undone for every
    string but one that holds such a pair as two code points, which no
    valid Unicode text does.

    >>> unescape_text("line1_x000D_\nline2"), unescape_text("_x005F_x0041_")
    ('line1\r\nline2', '_x0041_')
    >>> unescape_text("_xD83D__xDE00_") == "\U0001f600"
    True
    """
    if "_x" not in text:
        return text
    text = _ESCAPED.sub(_unescape_one, text)
    if _PAIR.search(text) is None:
        return text
    # UTF-16 joins each high-low pair into its character and, with
    # surrogatepass, keeps a lone half as it is.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _unescape_one(match: re.Match[str]) -> str:
    return chr(int(match.group(1), 16))


def _open_workbook(path: Path) -> Any:
    """``load_workbook(path, read_only=True)``, with the shared strings as written.

    openpyxl deletes every ``x005F_`` from a shared string (a half-way
    unescape that also eats that text where it is not an escape), which
    cannot be undone; this reader keeps the text as the file has it, so
    :func:`unescape_text` reads shared and inline strings alike.
    """
    from openpyxl.cell.text import Text
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.xml.constants import SHARED_STRINGS, SHEET_MAIN_NS
    from openpyxl.xml.functions import iterparse  # defusedxml's (checked by the caller)

    item = f"{{{SHEET_MAIN_NS}}}si"

    class Reader(ExcelReader):  # type: ignore[misc]
        def read_strings(self) -> None:
            part = self.package.find(SHARED_STRINGS)
            if part is None:
                return
            strings: list[str] = []
            with self.archive.open(part.PartName[1:]) as source:
                for _event, node in iterparse(source):
                    if node.tag == item:
                        strings.append(Text.from_tree(node).content)
                        node.clear()
            self.shared_strings = strings

    reader = Reader(path, read_only=True, data_only=False)
    reader.read()
    return reader.wb


def _cell_value(cell: Any) -> Any:
    """A read-only cell's value: text unescaped (:func:`unescape_text`),
    dates by their number format, formulas marked."""
    value = cell.value
    if value is None:
        return None
    kind = cell.data_type
    if kind == "f":
        return Formula(str(value))
    if kind == "s" and isinstance(value, str):
        return unescape_text(value)
    if isinstance(value, datetime):
        from openpyxl.styles.numbers import is_datetime

        if is_datetime(cell.number_format) == "date" and value.time() == time(0):
            return value.date()
    return value


def _characters(values: Sequence[Any]) -> int:
    """How many characters of text a row's values hold (text and formula
    cells; a number or a date is a few characters at most).  O(cells)."""
    total = 0
    for value in values:
        if isinstance(value, str):
            total += len(value)
        elif isinstance(value, Formula):
            total += len(value.text)
    return total


class XlsxTable(ClosesOnExit):
    """One sheet of an XLSX workbook opened for streaming: its header, then ``rows()``.

    ``sheet`` names the sheet; ``None`` is the first.  The header is row 1.
    Values keep their types (``str``, ``int``, ``float``, ``bool``,
    ``date``, ``datetime``); a formula cell is a :class:`Formula`.
    Memory is O(one row) plus openpyxl's shared-string table, which the
    size limit bounds.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sheet: str | None = None,
        limits: XlsxLimits | None = None,
    ) -> None:
        self.path = Path(path)
        self.limits = limits or XlsxLimits()
        self.size = self.path.stat().st_size
        if not _defused():
            raise FileFormatError(
                f"{self.path}: refusing to read XLSX: openpyxl is not using defusedxml "
                "(is OPENPYXL_DEFUSEDXML set to something other than True?)"
            )
        check_archive(self.path, self.limits)
        try:
            self._book = _open_workbook(self.path)
        except Exception as error:  # openpyxl raises many types for a malformed archive
            raise FileFormatError(
                f"{self.path}: cannot read the workbook: {_describe(error)}"
            ) from None
        try:
            if sheet is None:
                self._sheet = self._book.worksheets[0]
            elif sheet in self._book.sheetnames:
                self._sheet = self._book[sheet]
            else:
                raise FileFormatError(
                    f"{self.path}: no sheet named {sheet!r}; it has {self._book.sheetnames}"
                )
            # The declared size (<dimension>) is only a hint for the progress
            # bar: openpyxl would stop at the rows and columns it names, and
            # some writers leave it stale, so it is forgotten before reading.
            self.total = self._declared_rows()
            self._sheet.reset_dimensions()
            self._row = 0
            self._rows = self._sheet.iter_rows(max_row=1)
            first = self._next(None)
            if first is None:
                raise FileFormatError(f"{self.path}: the sheet is empty; row 1 must be a header")
            self.header: tuple[str, ...] = tuple(
                "" if value is None else str(value).strip() for value in map(_cell_value, first)
            )
            self._width = len(self.header)
            # Data rows as wide as the header: a cell further right is not
            # read, so no row costs more than the header's width.
            self._rows = self._sheet.iter_rows(min_row=2, max_col=max(self._width, 1))
        except BaseException:
            self._book.close()
            raise

    def _declared_rows(self) -> int | None:
        try:
            declared = self._sheet.max_row
        except Exception:  # a malformed <dimension>: no hint
            return None
        return declared if isinstance(declared, int) else None

    def _next(self, width: int | None) -> Sequence[Any] | None:
        try:
            cells = next(self._rows)
        except StopIteration:
            return None
        except Exception as error:  # malformed XML, refused entities, bad cell types
            raise FileFormatError(
                f"{self.path}: row {self._row + 1}: cannot read the sheet: {_describe(error)}"
            ) from None
        self._row += 1
        row: Sequence[Any] = cells if width is None else cells[:width]
        return row

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        """``(row number, values)`` of each data row, padded or cut to the
        header's width; empty rows are skipped.  A row whose text passes
        :data:`~identity_graph.io.csvfiles.MAX_ROW_CHARACTERS` (the rule of
        CSV rows) is an empty :class:`UnreadableRow` saying why, which the
        importer rejects.  Raises ``FileTooLarge`` past ``max_rows`` and
        ``FileFormatError`` for unreadable XML."""
        width = self._width
        limit = self.limits.max_rows + 1
        while True:
            cells = self._next(width)
            if cells is None:
                return
            if self._row > limit:
                raise FileTooLarge(
                    f"{self.path}: row {self._row}: the sheet has more than "
                    f"{self.limits.max_rows:,} data rows, the limit {_limit('max_rows')}"
                )
            values = [_cell_value(cell) for cell in cells]
            if len(values) < width:
                values.extend([None] * (width - len(values)))
            if not any(value is not None and value != "" for value in values):
                continue
            size = _characters(values)
            if size > MAX_ROW_CHARACTERS:
                reason = (
                    f"the row's cells hold {size:,} characters together, more than "
                    f"{MAX_ROW_CHARACTERS:,} characters, the most a row may hold; it was skipped"
                )
                yield self._row, UnreadableRow(reason)
            else:
                yield self._row, values

    def position(self) -> int:
        """Rows read so far (for progress)."""
        return self._row

    def close(self) -> None:
        self._book.close()


#: Integers beyond this lose digits in a spreadsheet (a double has 15-16).
_EXACT_INT = 10**15
#: The most characters an Excel cell holds, counted as Excel counts them: in
#: UTF-16 units (a character beyond U+FFFF, such as an emoji, is two).
CELL_LIMIT = 32_767


def _units(text: str) -> int:
    """``len(text)`` in UTF-16 units, as Excel counts a cell.  O(len(text))."""
    if len(text) * 2 <= CELL_LIMIT or text.isascii():
        return len(text)  # short enough either way, or one unit a character
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class XlsxWriter:
    """A one-sheet workbook written row by row (openpyxl's write-only mode).

    Text cells are escaped (:func:`escape_text`) and never cut: a text
    longer, once escaped, than an Excel cell holds (:data:`CELL_LIMIT`)
    raises ``ValueError`` naming the row and the column, where openpyxl
    would silently keep the first 32,767 characters.  ``name`` is how
    messages name the file (default: ``path``, which may be a temporary
    file that replaces the target when complete).  Nothing is written to
    ``path`` before :meth:`save`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        header: Sequence[str],
        sheet: str,
        *,
        name: str | os.PathLike[str] | None = None,
    ) -> None:
        from openpyxl import Workbook

        self.path = Path(path)
        self.name = str(self.path if name is None else name)
        self._header = [str(column) for column in header]
        self._row = 0
        self._column = 0
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet(sheet)
        self.append(list(header))

    def _cell(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | float):
            return value
        if isinstance(value, int):
            return value if -_EXACT_INT < value < _EXACT_INT else self._text(str(value))
        if isinstance(value, datetime):
            # A spreadsheet has no time zones, and keeps whole milliseconds.
            if value.tzinfo is not None or value.microsecond % 1000:
                return self._text(value.isoformat())
            return value
        if isinstance(value, date):
            return value
        if isinstance(value, Decimal | time | timedelta):
            return self._text(str(value))  # exact, not a float
        text = str(value)
        if text[:1] in FORMULA_TRIGGERS or text.startswith("#"):
            return self._text(text)
        return self._escaped(text)

    def _escaped(self, text: str) -> str:
        """``text`` escaped, checked to fit one cell whole."""
        escaped = escape_text(text)
        units = _units(escaped)
        if units > CELL_LIMIT:
            column = (
                f"column {self._header[self._column]!r}"
                if self._row > 1 and self._column < len(self._header)
                else f"column {self._column + 1}"
            )
            raise ValueError(
                f"{self.name}: row {self._row}, {column}: the text takes {units:,} characters "
                f"in the workbook (its _xHHHH_ escapes included), more than {CELL_LIMIT:,}, "
                "the most an Excel cell holds; an XLSX export never cuts a value: write a "
                ".csv file instead (CSV has no such limit)"
            )
        return escaped

    def _text(self, text: str) -> Any:
        """A string cell holding ``text`` (escaped), whatever it starts with."""
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(self._sheet, value=self._escaped(text))
        # openpyxl types "=…" as a formula and "#N/A" as an error: a string it is.
        cell.data_type = "s"
        if text[:1] in FORMULA_TRIGGERS:
            cell.quotePrefix = True  # and stays text when someone edits it in Excel
        return cell

    def append(self, values: Sequence[Any]) -> None:
        """Write one row (the first is the header); ``ValueError`` for a text
        too long for a cell, before anything of the row is written."""
        self._row += 1
        cells = []
        try:
            for column, value in enumerate(values):
                self._column = column  # for the message of a text too long
                cells.append(self._cell(value))
        except ValueError:
            # The export stops: close the sheet's stream now, while its file
            # is open, rather than leave it to the garbage collector.
            self._sheet.close()
            raise
        self._sheet.append(cells)

    def save(self) -> None:
        self._book.save(self.path)
