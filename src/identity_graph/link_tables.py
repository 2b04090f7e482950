"""The columns of ``link_table`` and ``merge_table``, read and checked once.

A table is a polars ``DataFrame``, any object with ``to_pydict()`` (a
pyarrow ``Table``) or a mapping of column names to equal-length
sequences.  Everything that makes a table unusable as a whole (a column
nobody knows, columns of unequal length, a required column missing, a
time without a zone) raises ``ValueError`` naming the column and the rule
here, before the graph is touched; what is wrong with one cell (an invalid
customer id, a blocked value) is the graph's to refuse, cell by cell.

polars is optional: it is imported only to read a polars ``at`` column
whose type says whether it carries a time zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from .errors import InvalidTime
from .text import a_type
from .times import utc

__all__ = ["LinkColumns", "MergeColumns", "link_columns", "merge_columns"]


@attrs.frozen
class LinkColumns:
    """A ``link_table``: its rows, customer ids, times (None: one time for
    all) and link columns ``(name, values)`` in the table's column order."""

    rows: int
    customer_id: Sequence[Any]
    at: Sequence[datetime | None] | None
    links: tuple[tuple[str, Sequence[Any]], ...]


@attrs.frozen
class MergeColumns:
    """A ``merge_table``: its rows and columns (``reason`` and ``at`` None when absent)."""

    rows: int
    a: Sequence[Any]
    b: Sequence[Any]
    reason: Sequence[Any] | None
    at: Sequence[datetime | None] | None


def _is_polars(table: object) -> bool:
    return type(table).__module__.split(".")[0] == "polars"


def _read(table: object, what: str) -> dict[str, Any]:
    """The table's columns by name, each as something indexable (polars
    columns stay Series until :func:`_values`).  O(columns)."""
    if _is_polars(table) and hasattr(table, "get_column"):
        return {name: table.get_column(name) for name in table.columns}  # type: ignore[attr-defined]
    to_pydict = getattr(table, "to_pydict", None)
    if callable(to_pydict):
        table = to_pydict()
    if not isinstance(table, Mapping):
        raise TypeError(
            f"{what}: the table is {a_type(table)}; give a polars DataFrame, "
            "an object with to_pydict() (a pyarrow Table) or a mapping of column "
            "names to equal-length sequences"
        )
    for name in table:
        if not isinstance(name, str):
            raise ValueError(f"{what}: column name {name!r} is not a string")
    return dict(table)


def _values(column: Any, name: str, what: str) -> Sequence[Any]:
    """A column's cells as a Python sequence of Python values.  O(rows)."""
    if type(column) is list or type(column) is tuple:
        return column
    if isinstance(column, str | bytes | Mapping):
        raise ValueError(f"{what}: column {name!r} is {a_type(column)}, not a sequence")
    for method in ("to_list", "to_pylist", "tolist"):  # polars, pyarrow, numpy
        convert = getattr(column, method, None)
        if callable(convert):
            return convert()  # type: ignore[no-any-return]
    if isinstance(column, Sequence):
        return column
    if isinstance(column, Iterable):
        return list(column)
    raise ValueError(f"{what}: column {name!r} is {a_type(column)}, not a sequence")


def _check_names(columns: Iterable[str], accepted: Sequence[str], what: str, hint: str) -> None:
    for name in columns:
        if name not in accepted:
            raise ValueError(
                f"{what}: column {name!r} is not one this table takes; "
                f"the accepted columns are {', '.join(accepted)}{hint}"
            )


def _lengths(columns: Mapping[str, Sequence[Any]], first: str, what: str) -> int:
    rows = len(columns[first])
    for name, values in columns.items():
        if len(values) != rows:
            raise ValueError(
                f"{what}: column {name!r} has {len(values)} rows and column {first!r} "
                f"{rows}; every column needs one cell per row"
            )
    return rows


def _times(column: Any, what: str) -> list[datetime | None]:
    """The ``at`` column as UTC instants (None cells stay None).  Aware
    datetimes, or a polars Datetime column with a time zone.  O(rows)."""
    if _is_polars(column) and hasattr(column, "dtype"):
        import polars as pl

        dtype = column.dtype
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
            raise ValueError(
                f"{what}: column 'at' is a polars Datetime without a time zone; give it "
                "one (the library never guesses one), e.g. with .dt.replace_time_zone('UTC')"
            )
        if isinstance(dtype, pl.Datetime):
            column = column.dt.convert_time_zone("UTC")
    values = _values(column, "at", what)
    times: list[datetime | None] = []
    seen: dict[datetime, datetime] = {}
    for row, value in enumerate(values):
        if value is None:
            times.append(None)
            continue
        if type(value) is datetime:
            found = seen.get(value)
            if found is not None and found.tzinfo is not None:
                times.append(found)
                continue
        try:
            moved = utc(value, "at")
        except (TypeError, InvalidTime) as error:
            raise ValueError(f"{what}: column 'at', row {row}: {error}") from None
        if type(value) is datetime:
            seen[value] = moved
        times.append(moved)
    return times


def link_columns(table: object, link_names: Sequence[str]) -> LinkColumns:
    """Read and check a ``link_table``: ``customer_id`` (required), ``at``
    (optional), one column per name of ``link_names``.  O(rows × columns)."""
    what = "link_table"
    raw = _read(table, what)
    accepted = ["customer_id", "at", *link_names]
    _check_names(
        raw, accepted, what, " (another link name needs a LinkType in the graph's link_types)"
    )
    if "customer_id" not in raw:
        raise ValueError(f"{what}: the table needs a 'customer_id' column (the link's owner)")
    times = _times(raw.pop("at"), what) if "at" in raw else None
    columns = {name: _values(column, name, what) for name, column in raw.items()}
    links = tuple((name, values) for name, values in columns.items() if name != "customer_id")
    if times is not None:
        columns["at"] = times
    rows = _lengths(columns, "customer_id", what)
    return LinkColumns(rows, columns["customer_id"], times, links)


def merge_columns(table: object) -> MergeColumns:
    """Read and check a ``merge_table``: ``a`` and ``b`` (required),
    ``reason`` and ``at`` (optional).  O(rows)."""
    what = "merge_table"
    raw = _read(table, what)
    _check_names(raw, ["a", "b", "reason", "at"], what, "")
    for name in ("a", "b"):
        if name not in raw:
            raise ValueError(
                f"{what}: the table needs columns 'a' and 'b' (the customers to merge)"
            )
    times = _times(raw.pop("at"), what) if "at" in raw else None
    columns = {name: _values(column, name, what) for name, column in raw.items()}
    if times is not None:
        columns["at"] = times
    rows = _lengths(columns, "a", what)
    return MergeColumns(rows, columns["a"], columns["b"], columns.get("reason"), times)
