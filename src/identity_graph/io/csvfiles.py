"""Reading CSV files the way the importers need: streamed, with the
delimiter sniffed among ``,`` ``;`` and tab, and every failure naming the row.

The file is read as bytes one physical line at a time and each line decoded
on its own, so that a byte the encoding cannot decode is reported at the
row that holds it (a text wrapper decodes 8 KiB ahead and would blame an
earlier row).  Records come from the standard :mod:`csv` module in strict
mode: a stray quote is an error, not a silently swallowed rest of the file.
Memory is O(longest row), whatever the file's size.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Collection, Iterator
from functools import partial
from pathlib import Path
from typing import BinaryIO

from .errors import FileFormatError
from .tables import ClosesOnExit, column_key

__all__ = ["DELIMITERS", "MAX_LINE_BYTES", "CsvTable"]

#: The delimiters sniffed for, in order of preference.
DELIMITERS = (",", ";", "\t")
#: How much of the file's start the delimiter is sniffed from.
SNIFF_BYTES = 64 * 1024
#: The longest physical line read; a longer one is refused rather than held
#: in memory (a file with no line breaks at all would otherwise be read whole).
MAX_LINE_BYTES = 1 << 20

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE, whose BOM it starts with
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class _LineTooLong(Exception):
    pass


def _ascii_compatible(encoding: str) -> bool:
    """Whether the encoding writes ASCII as ASCII (so a line ends at byte 0x0A)."""
    probe = 'a\n,;\t"'
    try:
        return probe.encode(encoding).endswith(probe.encode("ascii"))
    except (UnicodeError, LookupError):  # pragma: no cover - checked by codecs.lookup first
        return False


class _Lines:
    """The file's text lines, each decoded separately; counts physical lines."""

    def __init__(self, handle: BinaryIO, encoding: str) -> None:
        self._handle = handle
        self._encoding = encoding
        self.line = 0

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder(self._encoding)("strict")
        readline = partial(self._handle.readline, MAX_LINE_BYTES + 1)
        if _ascii_compatible(self._encoding):
            # Fast path: each chunk is one whole line.
            for chunk in iter(readline, b""):
                self.line += 1
                if len(chunk) > MAX_LINE_BYTES:
                    raise _LineTooLong
                yield decoder.decode(chunk)
            tail = decoder.decode(b"", final=True)
            if tail:  # pragma: no cover - an ASCII-compatible decoder keeps nothing back
                yield tail
            return
        # UTF-16/32: a 0x0A byte need not end a line; re-split the decoded text.
        pending = ""
        for chunk in iter(readline, b""):
            if len(chunk) > MAX_LINE_BYTES:
                raise _LineTooLong
            text = pending + decoder.decode(chunk)
            *complete, pending = text.split("\n")
            for line in complete:
                self.line += 1
                yield line + "\n"
            if len(pending) > MAX_LINE_BYTES:
                raise _LineTooLong
        pending += decoder.decode(b"", final=True)
        if pending:
            self.line += 1
            yield pending


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
        any codec name Python knows (``"cp1252"``, ``"latin-1"``).
    delimiter:
        ``None`` to sniff among ``,`` ``;`` and tab; or one of them.

    Rows are numbered as a spreadsheet numbers them: the header is row 1.
    A row whose bytes the encoding cannot decode, broken quoting and a line
    over 1 MiB raise :class:`FileFormatError` naming the file and the row.
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
            try:
                codecs.lookup(encoding)
            except LookupError:
                raise ValueError(f"encoding {encoding!r} is not one Python knows") from None
        self._handle: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self.size = os.fstat(self._handle.fileno()).st_size
            head = self._handle.read(SNIFF_BYTES)
            self.encoding = encoding or self._declared_encoding(head)
            sample = self._sample(head)
            self.delimiter = delimiter or self._sniff(sample, required)
            self._handle.seek(0)
            self._lines = _Lines(self._handle, self.encoding)
            self._reader = csv.reader(
                iter(self._lines), delimiter=self.delimiter, quotechar='"', strict=True
            )
            self._row = 0
            header = self._next()
            if header is None:
                raise FileFormatError(f"{self.path}: the file is empty; row 1 must be a header")
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
        text = codecs.getincrementaldecoder(self.encoding)("replace").decode(head)
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
        """The next record, or None at the end; read errors name the row."""
        row = self._row + 1
        try:
            record = next(self._reader)
        except StopIteration:
            return None
        except UnicodeDecodeError as error:
            bad = error.object[error.start : error.start + 1].hex()
            raise FileFormatError(
                f"{self.path}: row {row} (line {self._lines.line}): byte 0x{bad} is not "
                f"valid {self.encoding}; save the file as UTF-8 or give its encoding "
                "(for example cp1252 or latin-1)"
            ) from None
        except csv.Error as error:
            quoting = "expected" in str(error) or "end of data" in str(error)
            hint = (
                ' (broken quoting: a field that starts with " must end with ")' if quoting else ""
            )
            raise FileFormatError(
                f"{self.path}: row {row} (line {self._lines.line}): {error}{hint}"
            ) from None
        except _LineTooLong:
            raise FileFormatError(
                f"{self.path}: row {row} (line {self._lines.line}): a line is longer than "
                f"{MAX_LINE_BYTES} bytes; this is not a CSV file the importers read"
            ) from None
        self._row = row
        return record

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """``(row number, cells)`` of each data row; blank lines are skipped
        (their row numbers are not reused).  O(1) memory per row."""
        while True:
            record = self._next()
            if record is None:
                return
            if record:
                yield self._row, record

    def position(self) -> int:
        """Bytes read so far (for progress)."""
        return self._handle.tell()

    def close(self) -> None:
        self._handle.close()
