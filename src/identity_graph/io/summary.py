"""What every importer shares: the summary it returns, the rejects file it
writes, and the progress bar it shows on long files."""

from __future__ import annotations

import csv
import os
import re
import sys
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import attrs

from .cells import cell_text, quote_formula
from .tables import ClosesOnExit

__all__ = ["REJECT_COLUMNS", "ImportSummary", "Progress", "Reject", "Rejects"]

#: The columns of a rejects file.
REJECT_COLUMNS = ("row", "column", "value", "reason")

#: Files at least this large show a progress bar when stderr is a terminal.
LONG_FILE_BYTES = 1 << 20


def _count(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"ImportSummary.{attribute.name} = {value!r} must be a count >= 0")


@attrs.frozen
class ImportSummary:
    """What an import did, counted in data rows (the header is not a data row).

    ``read == imported + unchanged + rejected``: every row read was either
    imported (it changed the graph or the ledger), already there
    (``unchanged``: a re-import), or rejected (see the rejects file).

    >>> print(ImportSummary(read=3, imported=1, unchanged=1, rejected=1))
    read 3, imported 1, unchanged 1, rejected 1
    """

    read: int = attrs.field(validator=_count)
    imported: int = attrs.field(validator=_count)
    unchanged: int = attrs.field(validator=_count)
    rejected: int = attrs.field(validator=_count)

    def __attrs_post_init__(self) -> None:
        if self.read != self.imported + self.unchanged + self.rejected:
            raise ValueError(
                f"ImportSummary: read {self.read} != imported {self.imported} + unchanged "
                f"{self.unchanged} + rejected {self.rejected}"
            )

    def __str__(self) -> str:
        return (
            f"read {self.read}, imported {self.imported}, unchanged {self.unchanged}, "
            f"rejected {self.rejected}"
        )


@attrs.frozen
class Reject:
    """One reason a row was rejected: its row number (header = 1), the column
    (empty when the reason concerns the whole row), the cell's value and why."""

    row: int
    column: str
    value: str
    reason: str


# A control character other than tab and line breaks (a raw NUL stops many
# CSV readers), or a lone surrogate (no UTF-8 encoding exists for it).
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


#: Unicode categories written escaped: controls, and format characters.
_HIDDEN = frozenset({"Cc", "Cf"})


def _visible(text: str) -> str:
    """``text`` with each character a rejects file cannot show or hold —
    a control or format (invisible, bidirectional) character, a lone
    surrogate — written as Python writes it in a string (``\\x00``,
    ``\\u202e``, ``\\ud800``), so the file stays readable by any tool and
    the value shows what was refused.  Tab and line breaks stay.  O(len(text))."""
    text = _INVISIBLE.sub(lambda match: repr(match.group())[1:-1], text)
    if text.isascii():
        return text
    # Invisible and bidirectional characters (U+200B, U+202E…) would hide
    # the very thing a rejected identifier was refused for.
    return "".join(
        repr(char)[1:-1] if char > "\x7f" and unicodedata.category(char) in _HIDDEN else char
        for char in text
    )


class Rejects(ClosesOnExit):
    """The rejects file of one import, and the count of rejected rows.

    With a path, the file is (re)written from the first line: it always
    holds the header, so a rejects file left by an earlier run never survives
    a clean one.  Without a path, rejects are only counted.  A row may have
    several reasons, one line each; it counts once.  Lines are buffered and
    written sorted by row at each :meth:`flush` (importers flush once per
    batch), so the file reads top to bottom like the input.  A cell that
    starts like a formula gets a leading ``'``: the file is meant to be
    opened in a spreadsheet.
    """

    #: Buffered lines that force a flush, whatever the importer's batches.
    BUFFER = 10_000

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = None if path is None else Path(path)
        self.rows = 0
        self._buffer: list[Reject] = []
        self._handle: IO[str] | None = None
        self._writer: Any = None
        if self.path is not None:
            self._handle = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115
            self._writer = csv.writer(self._handle)
            self._writer.writerow(REJECT_COLUMNS)

    def add(self, row: int, problems: Iterable[tuple[str, Any, str]]) -> None:
        """Reject ``row`` for each ``(column, value, reason)`` of ``problems``.  O(problems)."""
        self.rows += 1
        if self._writer is None:
            return
        for column, value, reason in problems:
            text = value if isinstance(value, str) else cell_text(value)
            self._buffer.append(Reject(row, _visible(column), _visible(text), _visible(reason)))
        if len(self._buffer) >= self.BUFFER:
            self.flush()

    def flush(self) -> None:
        """Write the buffered lines, sorted by row.  O(b log b)."""
        if self._writer is None or not self._buffer:
            return
        self._buffer.sort(key=lambda reject: reject.row)
        self._writer.writerows(
            [
                reject.row,
                quote_formula(reject.column),
                quote_formula(reject.value),
                quote_formula(reject.reason),
            ]
            for reject in self._buffer
        )
        self._buffer.clear()

    def close(self) -> None:
        if self._handle is not None:
            self.flush()
            self._handle.close()
            self._handle = None


class Progress:
    """A ``rich`` progress bar on stderr for long imports, or nothing at all.

    ``enabled=None`` shows it when stderr is a terminal and the file is at
    least 1 MiB; ``True``/``False`` force it on or off.  ``total`` is in
    whatever unit ``update`` is given (bytes read, rows), ``None`` when
    unknown.  Updates are cheap; callers still make them every few hundred
    rows, not every row.
    """

    def __init__(
        self, label: str, total: int | None, size: int, enabled: bool | None = None
    ) -> None:
        if enabled is None:
            enabled = size >= LONG_FILE_BYTES and sys.stderr.isatty()
        self._bar: Any = None
        self._task: Any = None
        if enabled:
            # Imported here: most imports are short and never draw a bar.
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import (
                Progress as RichProgress,
            )

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(label, total=total)

    @property
    def shown(self) -> bool:
        """Whether a bar is on screen."""
        return self._bar is not None

    def update(self, completed: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=completed)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
