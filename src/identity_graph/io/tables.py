"""What the importers' tables share: header checks and ``with`` support."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Self

from .errors import FileFormatError

__all__ = ["ClosesOnExit", "column_index", "wrong_width"]


def column_index(
    path: Path, header: Sequence[str], required: Collection[str], delimiter: str | None = None
) -> dict[str, int]:
    """``{column name: position}`` of a header; FileFormatError when a required
    column is missing or a name appears twice.  Columns with an empty name
    (a trailing delimiter) are left out."""
    named = [name for name in header if name]
    twice = sorted(name for name, count in Counter(named).items() if count > 1)
    if twice:
        raise FileFormatError(f"{path}: row 1: the header repeats the column(s) {twice}")
    missing = [name for name in required if name not in named]
    if missing:
        read_with = "" if delimiter is None else f" (read with delimiter {delimiter!r})"
        raise FileFormatError(
            f"{path}: row 1: the header lacks the column(s) {missing}{read_with}; it has {named}"
        )
    return {name: position for position, name in enumerate(header) if name}


def wrong_width(cells: Sequence[object], width: int) -> str | None:
    """Why a row of ``cells`` does not fit a header of ``width`` columns, or None."""
    if len(cells) == width:
        return None
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
