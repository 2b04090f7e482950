"""Reading CSV files the way the importers need: streamed, with the
delimiter sniffed among ``,`` ``;`` and tab, and every failure naming the row.

The file is read as bytes one physical line at a time and each line decoded
on its own, so that a byte the encoding cannot decode is reported at the
row that holds it (a text wrapper decodes 8 KiB ahead and would blame an
earlier row).  In UTF-16 and UTF-32 a line's end is two or four bytes that
a read may split; the lines decoded before a bad code unit are still given
to the reader first, so the error names the bad unit's own row.  Records
come from the standard :mod:`csv` module in strict mode: a stray quote is
an error, not a silently swallowed rest of the file.

One size rule holds for lines and fields alike: a row — every line of it,
when a quoted field runs over several — may hold at most
:data:`MAX_ROW_CHARACTERS` characters, and the :mod:`csv` module's field
limit is raised to that same number (a field is part of a row, so the row
rule is the one that bites).  A longer row is skipped without being held in
memory and handed to the importer as an :class:`UnreadableRow`, which it
rejects; the import goes on.  Memory is O(longest row), whatever the
file's size.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Callable, Collection, Iterator
from functools import partial
from pathlib import Path
from typing import BinaryIO

from .errors import FileFormatError
from .tables import ClosesOnExit, UnreadableRow, column_key

__all__ = ["DELIMITERS", "MAX_ROW_CHARACTERS", "CsvTable", "check_encoding"]

#: The delimiters sniffed for, in order of preference.
DELIMITERS = (",", ";", "\t")
#: How much of the file's start the delimiter is sniffed from.
SNIFF_BYTES = 64 * 1024
#: The most characters a row may hold (1 Mi), all its lines included; also the
#: csv module's field limit here.  A longer row is rejected rather than held
#: in memory (a file with no line breaks at all would otherwise be read whole).
MAX_ROW_CHARACTERS = 1 << 20
#: The most bytes read at once while looking for a line's end: four per
#: character, the most a character takes in any encoding (UTF-8, UTF-32…).
_CHUNK_BYTES = 4 * MAX_ROW_CHARACTERS

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE, whose BOM it starts with
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# Where a skipped row's reading stands, as the csv module's strict parser
# sees it: at a field's start, inside an unquoted field, inside a quoted
# one, or just after a quote inside a quoted one (its end, or half of "").
_START, _FIELD, _QUOTED, _CLOSED = range(4)


def check_encoding(encoding: object, what: str = "encoding") -> str:
    """``encoding`` if it names a text encoding Python knows; ``ValueError``
    naming ``what`` otherwise.

    Python also registers codecs that turn bytes into bytes (``base64``,
    ``zlib``) or str into str (``rot13``); ``codecs.lookup`` finds them, and
    ``str.encode`` / ``bytes.decode`` refuse them (with ``LookupError``),
    which is how Python itself tells a text encoding.  O(1).
    """
    try:
        codecs.lookup(encoding)  # type: ignore[arg-type]
    except (LookupError, TypeError):
        raise ValueError(f"{what} {encoding!r} is not one Python knows") from None
    try:
        "".encode(str(encoding))
        b"".decode(str(encoding))
    except LookupError:
        raise ValueError(
            f"{what} {encoding!r} is not a text encoding (it turns bytes into bytes or str "
            "into str); give one such as utf-8, utf-16, cp1252 or latin-1"
        ) from None
    try:  # what reading does: incrementally, and (to sniff) with a replacement
        sample = "ab".encode(str(encoding))
        codecs.getincrementaldecoder(str(encoding))("replace").decode(sample, final=True)
    except UnicodeError:  # idna: one domain name at a time, strict only
        raise ValueError(
            f"{what} {encoding!r} is not an encoding of text files; give one such as "
            "utf-8, utf-16, cp1252 or latin-1"
        ) from None
    return str(encoding)


def _raise_field_limit() -> None:
    """Let the csv module read a field as long as a row may be (its default
    is 131,072 characters).  The limit is the module's, process-wide; it is
    only ever raised here, never lowered."""
    if csv.field_size_limit() < MAX_ROW_CHARACTERS:
        csv.field_size_limit(MAX_ROW_CHARACTERS)


def _ascii_compatible(encoding: str) -> bool:
    """Whether the encoding writes ASCII as ASCII (so a line ends at byte 0x0A)."""
    probe = 'a\n,;\t"'
    try:
        return probe.encode(encoding).endswith(probe.encode("ascii"))
    except (UnicodeError, LookupError):  # pragma: no cover - checked by codecs.lookup first
        return False


def _scan(text: str, state: int, delimiter: str) -> int:
    """The parser's state after reading ``text`` from ``state``.  O(len(text)),
    with the searches in C; used only to skip a row that is too long."""
    at, end = 0, len(text)
    while at < end:
        if state == _QUOTED:
            found = text.find('"', at)
            if found < 0:
                return _QUOTED
            at, state = found + 1, _CLOSED
        elif state in (_START, _CLOSED):
            quote = text[at] == '"'
            # A quote opens a field at its start; after a quote it is "" (a
            # quote inside the field).  Anything else is read as the field.
            state = _QUOTED if quote else _FIELD
            at += quote
        else:
            found = text.find(delimiter, at)
            if found < 0:
                return _FIELD
            at, state = found + 1, _START
    return state


class _Lines:
    """The file's text lines for the csv reader, each decoded on its own.

    Counts physical lines (``line``) and the characters of the current row
    (:meth:`start_row` starts one).  A row past :data:`MAX_ROW_CHARACTERS`
    is read to its end without being kept, ``too_long`` set to its first
    and last line, and the csv reader given a line that ends the row it is
    reading, so that the reader's next row is the file's next row.
    """

    def __init__(self, handle: BinaryIO, encoding: str, delimiter: str) -> None:
        self.line = 0
        self.too_long: tuple[int, int] | None = None
        self._handle = handle
        self._encoding = encoding
        self._delimiter = delimiter
        self._size = 0
        self._first = 1

    def start_row(self) -> None:
        self._size = 0
        self._first = self.line + 1
        self.too_long = None

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder(self._encoding)("strict")
        readline = partial(self._handle.readline, _CHUNK_BYTES)
        if _ascii_compatible(self._encoding):
            # Fast path: each chunk is one whole line, or part of a very long one.
            rest = _ascii_pieces(readline, decoder)  # only read to skip a row
            for chunk in iter(readline, b""):
                self.line += 1
                text = decoder.decode(chunk)
                self._size += len(text)
                if self._size > MAX_ROW_CHARACTERS or len(chunk) == _CHUNK_BYTES:
                    whole = len(chunk) < _CHUNK_BYTES or chunk.endswith(b"\n")
                    text = self._skip(text, whole, rest)
                yield text
            tail = decoder.decode(b"", final=True)  # a sequence cut off by the file's end
            if tail:  # pragma: no cover - an ASCII-compatible decoder keeps nothing back
                yield tail
            return
        # UTF-16/32: a 0x0A byte need not end a line; the pieces re-split the text.
        pieces = _wide_pieces(readline, decoder)
        try:
            for text, whole in pieces:
                self.line += 1
                self._size += len(text)
                if not whole or self._size > MAX_ROW_CHARACTERS:
                    text = self._skip(text, whole, pieces)
                yield text
        except UnicodeError:
            self.line += 1  # the error is in the line being read
            raise

    def _skip(self, text: str, whole: bool, rest: Iterator[tuple[str, bool]]) -> str:
        """Read the rest of the row that ``text`` makes too long from
        ``rest``, keeping nothing; return the line that ends the row for
        the csv reader.  The row ends at the first line end outside a quoted
        field, as the csv module ends it.  O(length of the row)."""
        # A row only runs onto a next line from inside a quoted field.
        inside = self._size > len(text)
        state = _scan(text, _QUOTED if inside else _START, self._delimiter)
        while not whole or state == _QUOTED:
            try:
                text, ends = next(rest)
            except StopIteration:
                break
            if whole:  # the last piece ended a line: this one starts the next
                self.line += 1
            whole = ends
            state = _scan(text, state, self._delimiter)
        self.too_long = (self._first, self.line)
        return '"\n' if inside else "\n"


def _wide_without_mark(head: bytes) -> str | None:
    """The UTF-16 or UTF-32 byte order that ``head`` (no byte-order mark)
    plainly is, or None: mostly ASCII text in it is one non-zero byte per
    code unit and zeros.  O(len(head)), on at most 4 KiB."""
    sample = head[:4096]
    if b"\x00" not in sample:
        return None
    for name, width, at in (
        ("utf-32-le", 4, 0),
        ("utf-32-be", 4, 3),
        ("utf-16-le", 2, 0),
        ("utf-16-be", 2, 1),
    ):
        units = [sample[i : i + width] for i in range(0, len(sample) - width + 1, width)]
        plain = sum(1 for unit in units if unit[at] != 0 and unit.count(0) == width - 1)
        if units and plain >= 0.9 * len(units):
            return name
    return None


def _ascii_pieces(
    readline: Callable[[], bytes], decoder: codecs.IncrementalDecoder
) -> Iterator[tuple[str, bool]]:
    """``(text, whole)`` of each chunk: a line (``whole``) or a part of one."""
    for chunk in iter(readline, b""):
        yield decoder.decode(chunk), len(chunk) < _CHUNK_BYTES or chunk.endswith(b"\n")


def _wide_pieces(
    readline: Callable[[], bytes], decoder: codecs.IncrementalDecoder
) -> Iterator[tuple[str, bool]]:
    """``(text, whole)``: each line of a UTF-16 or UTF-32 file decoded
    (``whole``), or the parts of one too long to keep (not ``whole``)."""
    pending = ""
    for chunk in iter(readline, b""):
        state = decoder.getstate()
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as error:
            yield from _lines_before(error, decoder, state, chunk, pending)
            raise error from None
        *complete, pending = (pending + text).split("\n")
        for line in complete:
            yield line + "\n", True
        if len(pending) > MAX_ROW_CHARACTERS:
            yield pending, False
            pending = ""
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending, True


def _lines_before(
    error: UnicodeDecodeError,
    decoder: codecs.IncrementalDecoder,
    state: tuple[bytes, int],
    chunk: bytes,
    pending: str,
) -> Iterator[tuple[str, bool]]:
    """The whole lines decoded before a bad code unit in ``chunk``.

    A line's end (``0A 00`` in UTF-16 LE) can be split between two reads, so
    the line before a bad unit may only be complete in the chunk that holds
    the unit; decoding the chunk's good start again gives it.  The error's
    bytes are the decoder's buffered bytes and the chunk (the codecs module's
    buffered decoders work so); anything else gives nothing."""
    buffered = state[0]
    if error.object != buffered + chunk:  # pragma: no cover - an unbuffered decoder
        return
    decoder.setstate(state)
    good = decoder.decode(chunk[: error.start - len(buffered)])
    *complete, _ = (pending + good).split("\n")
    for line in complete:
        yield line + "\n", True


def _csv_problem(error: csv.Error) -> str:
    """The csv module's complaint, said as what to do about the file."""
    message = str(error)
    if "new-line character seen in unquoted field" in message:
        # Python's wording suggests a programming fix ("universal-newline mode").
        return (
            "a carriage return (CR) that does not end a line, outside quotes; lines must "
            "end with LF or CRLF (a file whose lines end with CR alone, as old Mac "
            "spreadsheets saved CSV, must be saved again, e.g. as 'CSV UTF-8'), and a "
            'field holding a line break must be quoted ("...")'
        )
    if "expected" in message or "end of data" in message:
        return f'{message} (broken quoting: a field that starts with " must end with ")'
    return message


class CsvTable(ClosesOnExit):
    """A CSV file opened for streaming: its header, then ``rows()``.

    Parameters
    ----------
    path:
        The file.
    required:
        Columns the caller needs (however the file spells them: see
        :func:`~identity_graph.io.tables.column_key`); when the sniffer's
        choice of delimiter does not split the header into them and another
        candidate does, that one is used.
    encoding:
        ``None`` (the default): UTF-8, or the encoding a byte-order mark at
        the start of the file declares (UTF-8, UTF-16, UTF-32).  Otherwise
        any text encoding Python knows (``"cp1252"``, ``"latin-1"``); a codec
        that is not a text encoding (``"rot13"``, ``"base64"``) is a
        ``ValueError``.
    delimiter:
        ``None`` to sniff among ``,`` ``;`` and tab; or one of them.

    Rows are numbered as a spreadsheet numbers them: the header is row 1.
    A row whose bytes the encoding cannot decode and broken quoting raise
    :class:`FileFormatError` naming the file and the row; a row of more than
    :data:`MAX_ROW_CHARACTERS` characters comes out of :meth:`rows` as an
    :class:`UnreadableRow` (the importers reject it and go on), or, in the
    header, is a :class:`FileFormatError`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        required: Collection[str] = (),
        encoding: str | None = None,
        delimiter: str | None = None,
    ) -> None:
        self.path = Path(path)
        if delimiter is not None and delimiter not in DELIMITERS:
            raise ValueError(f"delimiter {delimiter!r} must be ',', ';' or a tab")
        if encoding is not None:
            check_encoding(encoding)
        _raise_field_limit()
        self._handle: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self.size = os.fstat(self._handle.fileno()).st_size
            head = self._handle.read(SNIFF_BYTES)
            self._marked = self._declared_encoding(head)
            if encoding is None and self._marked == "utf-8":
                wide = _wide_without_mark(head)
                if wide is not None:  # read as UTF-8, it would be NUL bytes and nonsense
                    raise FileFormatError(
                        f"{self.path}: row 1: the file looks like {wide} text without a "
                        f"byte-order mark (most characters are one byte and zeros); give "
                        f"its encoding: {wide}"
                    )
            self.encoding = encoding or self._marked
            sample = self._sample(head)
            self.delimiter = delimiter or self._sniff(sample, required)
            self._handle.seek(0)
            self._lines = _Lines(self._handle, self.encoding, self.delimiter)
            self._reader = csv.reader(
                self._lines, delimiter=self.delimiter, quotechar='"', strict=True
            )
            self._row = 0
            header = self._next()
            if header is None:
                raise FileFormatError(f"{self.path}: the file is empty; row 1 must be a header")
            if isinstance(header, UnreadableRow):  # said of a data row: "it was skipped"
                reason = header.reason.removesuffix("; it was skipped")
                raise FileFormatError(f"{self.path}: row 1 (the header): {reason}")
            if header:  # a UTF-8 BOM read with an explicit encoding="utf-8"
                header[0] = header[0].lstrip("\ufeff")
            self.header: tuple[str, ...] = tuple(cell.strip() for cell in header)
        except BaseException:
            self._handle.close()
            raise

    # ------------------------------------------------------------------ opening

    @staticmethod
    def _declared_encoding(head: bytes) -> str:
        for bom, name in _BOMS:
            if head.startswith(bom):
                return name
        return "utf-8"

    def _sample(self, head: bytes) -> str:
        """The start of the file as text, cut after its last complete line."""
        try:
            text = codecs.getincrementaldecoder(self.encoding)("replace").decode(head)
        except UnicodeError as error:  # "UTF-16 stream does not start with BOM"
            if "BOM" in str(error):
                raise FileFormatError(
                    f"{self.path}: row 1: the file has no byte-order mark, so "
                    f"{self.encoding!r} cannot tell its byte order; give "
                    f"{self.encoding}-le or {self.encoding}-be"
                ) from None
            raise FileFormatError(
                f"{self.path}: row 1: {error}; is the file {self.encoding}?"
            ) from None
        text = text.lstrip("\ufeff")
        if len(head) == SNIFF_BYTES and "\n" in text:
            text = text[: text.rindex("\n") + 1]
        return text

    @staticmethod
    def _sniff(sample: str, required: Collection[str]) -> str:
        sniffed: str | None
        try:
            sniffed = str(csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter)
        except csv.Error:  # "Could not determine delimiter"
            sniffed = None
        candidates = [sniffed] if sniffed in DELIMITERS else []
        candidates += [d for d in DELIMITERS if d not in candidates]
        wanted = {column_key(name) for name in required}
        headers: dict[str, set[str]] = {}
        for candidate in candidates:
            try:
                first = next(csv.reader(io.StringIO(sample), delimiter=candidate), [])
            except csv.Error:
                first = []
            headers[candidate] = {column_key(cell) for cell in first if cell.strip()}
            if wanted and wanted <= headers[candidate]:
                return candidate
        if sniffed is not None and sniffed in DELIMITERS:
            return sniffed
        # Nothing fits: the candidate that splits the header most; the caller's
        # header check then names the columns that are missing.
        return max(candidates, key=lambda d: len(headers[d]))

    # ------------------------------------------------------------------ reading

    def _next(self) -> list[str] | None:
        """The next record, an UnreadableRow for one too long, or None at the
        end; read errors name the row."""
        row = self._row + 1
        self._lines.start_row()
        try:
            record = next(self._reader)
        except StopIteration:
            return None
        except UnicodeDecodeError as error:
            bad = error.object[error.start : max(error.end, error.start + 1)]
            what = f"byte{'s' if len(bad) > 1 else ''} 0x{bad.hex()}"
            # A byte-order mark the caller's encoding overrode explains the error.
            marked = None if self._marked in ("utf-8", "utf-8-sig") else self._marked
            if marked is not None and marked != self.encoding:
                advice = (
                    f"the file starts with a {marked} byte-order mark: leave the encoding "
                    "out to read it so"
                )
            elif marked is not None:  # the file's own mark chose the encoding
                advice = f"the file's byte-order mark says {marked}: the file is damaged here"
            else:
                advice = (
                    "save the file as UTF-8 or give its encoding (for example cp1252 or latin-1)"
                )
            raise FileFormatError(
                f"{self.path}: row {row} (line {self._lines.line}): {what} is not "
                f"valid {self.encoding}; {advice}"
            ) from None
        except UnicodeError as error:  # not a bad byte: "UTF-16 stream does not start with BOM"
            raise FileFormatError(
                f"{self.path}: row {row} (line {self._lines.line}): {error}; "
                f"is the file {self.encoding}?"
            ) from None
        except csv.Error as error:
            raise FileFormatError(
                f"{self.path}: row {row} (line {self._lines.line}): {_csv_problem(error)}"
            ) from None
        self._row = row
        if self._lines.too_long is not None:
            first, last = self._lines.too_long
            lines = f"line {first}" if first == last else f"lines {first}-{last}"
            return UnreadableRow(
                f"the row ({lines}) is longer than {MAX_ROW_CHARACTERS:,} characters, the "
                "most a row may hold; it was skipped"
            )
        return record

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """``(row number, cells)`` of each data row; blank rows are skipped
        (their row numbers are not reused): empty lines, and rows of empty
        cells only (``;;;;``), which spreadsheets write for the empty rows of
        a sheet.  A row too long to read is an empty :class:`UnreadableRow`
        saying why.  O(1) memory per row."""
        while True:
            record = self._next()
            if record is None:
                return
            if isinstance(record, UnreadableRow) or any(cell.strip() for cell in record):
                yield self._row, record

    def position(self) -> int:
        """Bytes read so far (for progress)."""
        return self._handle.tell()

    def close(self) -> None:
        self._handle.close()
