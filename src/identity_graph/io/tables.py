"""What the importers' tables share: header matching, row checks and ``with`` support.

People write one column name many ways: ``Var 1``, ``Var1``, ``var_1``;
``Customer ID``, ``customer_id``, ``CustomerId``.  Every importer finds a
column by its :func:`column_key` — the name case-folded, without spaces,
underscores or hyphens — both for the names its format defines and for the
names a caller's mapping gives.  Messages and rejects files keep naming a
column as the file spells it.

A format whose every column means something (offline data, offline events)
refuses a header with two spellings of one name.  A customers mapping may
name two columns that are one name this way (``Customer ID`` for the id,
``customerId`` for a card, as the loyalty system writes them): each name
then finds the column spelt exactly like it, and one that finds neither
exactly is ambiguous, an error.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Self

import attrs

from ..text import text_problem
from .errors import FileFormatError

__all__ = [
    "CSV_SUFFIXES",
    "SPELLING_RULE",
    "ClosesOnExit",
    "Columns",
    "UnreadableRow",
    "column_index",
    "column_key",
    "distinct_keys",
    "is_csv",
    "text_problems",
    "unnamed_columns",
    "unnamed_value",
    "wrong_width",
]

#: How column names are compared, for messages.
SPELLING_RULE = "case, spaces, underscores and hyphens do not tell column names apart"

_IGNORED = re.compile(r"[\s_-]+")


def column_key(name: str) -> str:
    """The key two spellings of one column name share: the name case-folded,
    with spaces (any white space), underscores and hyphens removed.  O(len(name)).

    >>> column_key("Var 1") == column_key("var_1") == column_key("VAR-1") == "var1"
    True
    >>> column_key("Customer ID") == column_key("customer_id") == column_key("CustomerId")
    True
    """
    return _IGNORED.sub("", name.casefold())


def distinct_keys(names: Iterable[str], what: str) -> dict[str, str]:
    """``{key: name}`` of a caller's column names; ``ValueError`` naming both
    when two of them are one column by :func:`column_key`.  ``what`` says
    where the names come from (``"ticket_fields"``).  O(names)."""
    found: dict[str, str] = {}
    for name in names:
        key = column_key(name)
        if key in found:
            both = f"{found[key]!r} and {name!r}"
            raise ValueError(f"{what}: {both} name one column twice ({SPELLING_RULE})")
        found[key] = name
    return found


@attrs.frozen
class Columns:
    """A file's header, each column found by its name however it is spelt.

    ``names`` is the header as the file spells it; ``exact`` maps each
    non-empty name to its position, ``keys`` each :func:`column_key` to the
    positions of the columns that have it, in file order.
    """

    path: Path
    names: tuple[str, ...]
    exact: Mapping[str, int]
    keys: Mapping[str, tuple[int, ...]]

    def position(self, name: str) -> int | None:
        """The position of column ``name``: the column spelt exactly so, else
        the one column with its :func:`column_key`, else None.  Two columns
        with that key and neither spelt exactly so raise FileFormatError
        (which one was meant cannot be told).  O(len(name))."""
        found = self.exact.get(name)
        if found is not None:
            return found
        candidates = self.keys.get(column_key(name), ())
        if len(candidates) > 1:
            spelt = " and ".join(f"{self.names[p]!r} (column {p + 1})" for p in candidates)
            raise FileFormatError(
                f"{self.path}: row 1: the column {name!r} could be {spelt} ({SPELLING_RULE}); "
                "name it as the file spells it"
            )
        return candidates[0] if candidates else None

    def __getitem__(self, name: str) -> int:
        position = self.position(name)
        if position is None:
            raise KeyError(name)
        return position

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.position(name) is not None

    def spelling(self, name: str) -> str:
        """Column ``name`` as the file spells it (``name`` itself when absent)."""
        position = self.position(name)
        return name if position is None else self.names[position]

    def items(self) -> Iterator[tuple[str, str, int]]:
        """``(spelling, key, position)`` of every named column, in file order."""
        for position, name in enumerate(self.names):
            if name:
                yield name, column_key(name), position


def column_index(
    path: Path,
    header: Sequence[str],
    required: Collection[str],
    delimiter: str | None = None,
    *,
    every_column: bool = True,
) -> Columns:
    """The :class:`Columns` of a header, checked.  O(columns).

    FileFormatError when the header repeats a name; when a ``required``
    column is missing (the message lists the columns expected and the
    columns found); when two required names find one column; and, with
    ``every_column`` (a format whose every column means something), when two
    columns are one name by :func:`column_key`.  Without it (a mapping that
    reads some columns and ignores the rest), such columns are fine as long
    as each name looked for is spelt exactly as one of them, or finds only
    one.  Columns with an empty name (a trailing delimiter) are left out.
    """
    exact: dict[str, int] = {}
    keys: dict[str, tuple[int, ...]] = {}
    for position, name in enumerate(header):
        if not name:
            continue
        key = column_key(name)
        same = keys.get(key, ())
        if name in exact or (every_column and same):
            first = exact.get(name, same[0] if same else position)
            rule = "" if name == header[first] else f" ({SPELLING_RULE})"
            raise FileFormatError(
                f"{path}: row 1: the header repeats a column: {header[first]!r} (column "
                f"{first + 1}) and {name!r} (column {position + 1}) are one name{rule}"
            )
        exact[name] = position
        keys[key] = (*same, position)
    columns = Columns(path, tuple(header), exact, keys)
    found: dict[int, str] = {}
    missing: list[str] = []
    for name in required:
        at = columns.position(name)
        if at is None:
            missing.append(name)
        elif found.setdefault(at, name) != name:
            raise FileFormatError(
                f"{path}: row 1: {found[at]!r} and {name!r} both find the column "
                f"{header[at]!r} ({SPELLING_RULE}); name each as the file spells it"
            )
    if missing:
        read_with = "" if delimiter is None else f" (read with delimiter {delimiter!r})"
        expected = list(dict.fromkeys(required))
        raise FileFormatError(
            f"{path}: row 1: the header lacks the column(s) {missing}{read_with}; "
            f"expected {expected}, found {list(exact)} ({SPELLING_RULE})"
        )
    return columns


class UnreadableRow(list[str]):
    """A row the table could not read (longer than a row may be): no cells,
    and ``reason`` saying why.  It is a list so that it travels with the
    rows; :func:`wrong_width` gives its reason, so every importer rejects it."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


def unnamed_columns(header: Sequence[str]) -> tuple[int, ...]:
    """Positions of the header's columns that have no name.  O(columns)."""
    return tuple(position for position, name in enumerate(header) if not name.strip())


def unnamed_value(cells: Sequence[str], unnamed: Sequence[int]) -> str | None:
    """Why a row of a format whose every column means something cannot be
    read as written — a value under a column the header leaves unnamed,
    which no rule could place — or None.  O(len(unnamed))."""
    for position in unnamed:
        if position < len(cells) and cells[position].strip():
            return (
                f"column {position + 1} has the value {cells[position]!r} but no name in "
                "the header; name the column or leave it empty"
            )
    return None


def text_problems(cells: Sequence[str], header: Sequence[str]) -> list[tuple[str, str, str]]:
    """``(column, value, reason)`` of each cell that breaks the text rule (a
    NUL: a decoded file holds no lone surrogate), so that the rejects file
    names the cell, not the event the graph would refuse.  O(len(row)),
    one C-speed scan in the common case."""
    if not any("\x00" in cell for cell in cells):
        return []
    found = []
    for position, cell in enumerate(cells):
        problem = text_problem(cell)
        if problem is not None:
            column = header[position] if position < len(header) else f"column {position + 1}"
            found.append((column, cell, f"the value {problem}"))
    return found


def wrong_width(cells: Sequence[object], width: int) -> str | None:
    """Why a row of ``cells`` does not fit a header of ``width`` columns (or
    could not be read at all), or None."""
    if len(cells) == width:
        return None
    if isinstance(cells, UnreadableRow):
        return cells.reason
    return f"the row has {len(cells)} cells but the header has {width}"


class ClosesOnExit:
    """``with`` support for a reader or writer with a ``close()``: the block's
    end closes it, whether or not the block raised."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


#: Suffixes read as CSV (the delimiter is sniffed).  Only ``.csv`` is
#: written: a ``.tsv`` or ``.txt`` written with commas would mislead.
CSV_SUFFIXES = (".csv", ".tsv", ".txt")


def is_csv(path: Path, writing: bool = False) -> bool:
    """Whether ``path`` is a CSV file (True) or an XLSX workbook (False), by
    its suffix; ValueError naming the suffixes for any other.  O(1)."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return False
    if suffix == ".csv" or (suffix in CSV_SUFFIXES and not writing):
        return True
    allowed = ".csv or .xlsx" if writing else f"{', '.join(CSV_SUFFIXES)} or .xlsx"
    raise ValueError(f"{path}: the file name must end in {allowed} (it decides the format)")
