"""The omnichannel profile record: every profile with its ids, links,
attributes and indicators, one row each, in a CSV or XLSX file.

A marketing platform's profile holds, per person, a field for each
attribute it was sent and its purchase indicators; this writes that record
in one pass, so nobody joins a customer export with an indicators file by
hand::

    export_profiles(g, "profiles.xlsx", as_of=datetime(2024, 7, 1, tzinfo=UTC))

Columns, in this order:

- ``Profile_ID``: the profile's id; an anonymous profile's is its link,
  written ``name:value``;
- ``Customer_IDs``: the profile's customers, sorted (empty for an
  anonymous profile);
- one column per link name the graph has seen (every link ever owned,
  and the link of every anonymous profile in the file), sorted by name: the
  profile's current links of that name;
- one column per attribute name any customer has, sorted by name: the
  profile's value (its customers' attributes merged, the latest-set value
  winning).  An attribute named like a link is headed ``attribute:NAME``;
- the 69 indicators of ``g.kpis(as_of)``, named as the omnichannel platform
  prints them (:data:`~identity_graph.kpis.ICOMMKT_NAMES`: ``ICOMMKT_``
  before each, ``RFM_Group`` and ``RFM_Segment`` bare).

Rows are the profiles of ``g.kpis(as_of)``, in its order: the customer
profiles in the order their oldest customer was registered, then the
anonymous profiles with a purchase at or before ``as_of``, by link name and
value.

Several values in one cell (customer ids, links, indicator lists) are
joined with ``|``, sorted; inside a value a ``\\`` is written ``\\\\`` and a
``|`` is written ``\\|``, so :func:`split_values` gives back exactly the
values.  An empty cell is no value.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import StoreError
from ..ids import Link
from ..kpis import ICOMMKT_NAMES, indicator_text
from .cells import FORMULA_TRIGGERS, cell_text, escape_formula
from .summary import Progress
from .tables import is_csv
from .xlsxfiles import XlsxWriter

if TYPE_CHECKING:
    from ..graph import IdentityGraph
    from ..journal import ProfileId

__all__ = ["SEPARATOR", "export_profiles", "join_values", "split_values"]

#: Between the values of a cell that holds several.
SEPARATOR = "|"
#: Exports of at least this many profiles show a progress bar on a terminal.
LONG_EXPORT_ROWS = 10_000

_SPECIAL = re.compile(r"[\\|]")
_INDICATORS = tuple(ICOMMKT_NAMES)


def join_values(values: Iterable[str]) -> str:
    """Several values as the text of one cell: ``|`` between them, and a
    ``\\`` or ``|`` inside a value escaped with a ``\\``.  O(total length).

    >>> join_values(["a@example.com", "b|c", "d\\\\e"])
    'a@example.com|b\\\\|c|d\\\\\\\\e'
    """
    return SEPARATOR.join(
        _SPECIAL.sub(r"\\\g<0>", value) if "|" in value or "\\" in value else value
        for value in values
    )


def split_values(text: str) -> list[str]:
    """The values :func:`join_values` joined; an empty cell is no value.

    A ``\\`` takes the next character as it is; a ``\\`` at the very end
    (which :func:`join_values` never writes) is kept.  O(len(text)).

    >>> split_values("a@example.com|b\\\\|c|d\\\\\\\\e"), split_values("")
    (['a@example.com', 'b|c', 'd\\\\e'], [])
    """
    if not text:
        return []
    values: list[str] = []
    current: list[str] = []
    characters = iter(text)
    for character in characters:
        if character == "\\":
            current.append(next(characters, "\\"))
        elif character == SEPARATOR:
            values.append("".join(current))
            current = []
        else:
            current.append(character)
    values.append("".join(current))
    return values


@attrs.frozen
class _Columns:
    """The link and attribute names that get a column, sorted."""

    links: tuple[str, ...]
    attributes: tuple[str, ...]

    @classmethod
    def of(cls, graph: IdentityGraph, result: Mapping[ProfileId, Any]) -> _Columns:
        # The graph's own tables, read after kpis() brought a store up to
        # date: one pass each, no call per customer.
        state = graph.state
        links = {name for name, _value in state.ownership.links()}
        links.update(profile.name for profile in result if isinstance(profile, Link))
        attributes = {name for _customer, held in state.with_attributes() for name in held}
        return cls(tuple(sorted(links)), tuple(sorted(attributes)))

    @property
    def header(self) -> list[str]:
        links = set(self.links)
        return [
            "Profile_ID",
            "Customer_IDs",
            *self.links,
            *(f"attribute:{name}" if name in links else name for name in self.attributes),
            *ICOMMKT_NAMES.values(),
        ]


#: Per profile: its id, its own cells (ids, joined links, attribute values)
#: and its indicators.
_Rows = Iterator[tuple["ProfileId", list[Any], Mapping[str, Any]]]


def _rows(
    graph: IdentityGraph, columns: _Columns, result: Mapping[ProfileId, Any], target: Path
) -> _Rows:
    """Each profile's own cells (ids, joined links, attribute values) and its
    indicators, one profile at a time, in ``result``'s order."""
    link_slot = {name: slot for slot, name in enumerate(columns.links)}
    attribute_slot = {name: slot for slot, name in enumerate(columns.attributes)}

    def changed(what: str) -> StoreError:
        return StoreError(
            f"{target}: the store changed while the profiles were written ({what}); export again"
        )

    for profile_id, indicators in result.items():
        links: list[list[str]] = [[] for _ in columns.links]
        attributes: list[Any] = [None] * len(columns.attributes)
        if isinstance(profile_id, Link):
            customers = ""
            links[link_slot[profile_id.name]].append(profile_id.value)
        else:
            profile = graph.profile(profile_id)
            # On a shared store another process may write meanwhile: what
            # would break the file's shape stops the export.
            if profile.id != profile_id:
                raise changed(f"profile {profile_id!r} is now part of {profile.id!r}")
            customers = join_values(sorted(profile.customer_ids))
            for link in profile.links:  # sorted by name, then value
                slot = link_slot.get(link.name)
                if slot is None:
                    raise changed(f"a new link name {link.name!r}")
                links[slot].append(link.value)
            for name, value in profile.attributes.items():
                slot = attribute_slot.get(name)
                if slot is None:
                    raise changed(f"a new attribute name {name!r}")
                attributes[slot] = value
        cells = [str(profile_id), customers, *(join_values(held) for held in links), *attributes]
        yield profile_id, cells, indicators


_GUARDED = FORMULA_TRIGGERS | {"'"}


def _csv_cell(text: str) -> str:
    # Most cells start with a letter or a digit: skip the call for them.
    return escape_formula(text, keep_numbers=True) if text[:1] in _GUARDED else text


def _xlsx_value(value: Any) -> Any:
    """An indicator as an XLSX cell: lists joined; numbers, text and times as
    :class:`~identity_graph.io.xlsxfiles.XlsxWriter` types them."""
    if isinstance(value, tuple):
        return join_values(value) or None
    return value


@contextlib.contextmanager
def _replacing(target: Path) -> Iterator[Path]:
    """A file next to ``target`` that takes its place once complete: a
    failed export leaves no truncated file that looks whole."""
    if not target.parent.is_dir():
        # Said of the target: the hidden partial file's name would mislead.
        raise FileNotFoundError(errno.ENOENT, "the folder does not exist", str(target.parent))
    partial = target.with_name(f".{target.name}.partial")
    try:
        yield partial
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def export_profiles(
    graph: IdentityGraph,
    path: str | os.PathLike[str],
    as_of: datetime,
    *,
    sheet: str = "Profiles",
    progress: bool | None = None,
) -> int:
    """Write the omnichannel profile record of every profile; return the rows.

    Parameters
    ----------
    graph:
        The identity graph.
    path:
        A ``.csv`` or ``.xlsx`` file (the suffix decides), replaced when
        complete.
    as_of:
        When the indicators are computed (aware), as in ``g.kpis(as_of)``.
    sheet:
        XLSX only: the sheet's name.
    progress:
        Show a progress bar (default: on a terminal, for 10,000 profiles or more).

    Returns
    -------
    int
        The rows written: ``len(g.kpis(as_of))``.

    Raises
    ------
    ValueError
        A naive ``as_of``, a suffix other than .csv / .xlsx, or (CSV) a
        text that UTF-8 cannot encode (a lone surrogate), or (XLSX) a cell
        whose text (a profile's joined links, say) is longer than an Excel
        cell holds (32,767 characters, escapes included): it is never cut,
        and CSV has no such limit.
    StoreError
        Another process changed the store during the export in a way that
        would break the file (a listed profile merged into another, a new
        link or attribute name); export again.

    The columns, the order of the rows and how cells holding several values
    are written are described in this module's docstring.

    ``.csv``: UTF-8, ``,``; a cell that starts like a formula (``= + - @``,
    tab, CR) or with ``'`` gets a leading ``'``, except a plain number such
    as ``-5.00``; ``unescape_formula`` gives back the text.  ``.xlsx``:
    typed cells (whole numbers, dates), exact amounts and aware times as
    text, every text a string cell, never a formula; a character XML cannot
    hold (a control character, a carriage return) is escaped as Office
    escapes it, ``_xHHHH_``.

    The indicators are computed once (``g.kpis(as_of)``); rows are then
    built and written one at a time, so memory holds that result and one
    row, never a second copy of every row.  O(p log p) for p purchases, plus
    O(profile size + columns) per profile.
    """
    target = Path(path)
    csv_file = is_csv(target, writing=True)
    result = graph.kpis(as_of)
    columns = _Columns.of(graph, result)
    total = len(result)
    if progress is None:
        progress = total >= LONG_EXPORT_ROWS and sys.stderr.isatty()
    rows = _rows(graph, columns, result, target)
    with (
        Progress(f"profiles {target.name}", total, 0, progress) as bar,
        _replacing(target) as partial,
    ):
        if csv_file:
            written = _write_csv(partial, columns.header, rows, bar)
        else:
            written = _write_xlsx(partial, target, columns.header, sheet, rows, bar)
        bar.update(written)
    return written


def _write_csv(path: Path, header: list[str], rows: _Rows, bar: Progress) -> int:
    written = 0
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for _profile, cells, indicators in rows:
            writer.writerow(
                [
                    *(_csv_cell(cell_text(cell)) for cell in cells),
                    *(
                        _csv_cell(indicator_text(indicators[name], join_values))
                        for name in _INDICATORS
                    ),
                ]
            )
            written += 1
            if written % 256 == 0:
                bar.update(written)
    return written


def _write_xlsx(
    path: Path, target: Path, header: list[str], sheet: str, rows: _Rows, bar: Progress
) -> int:
    written = 0
    book = XlsxWriter(path, header, sheet, name=target)  # messages name the target
    for _profile, cells, indicators in rows:
        values = [None if cell == "" else cell for cell in cells]
        values += [_xlsx_value(indicators[name]) for name in _INDICATORS]
        book.append(values)  # any text: XlsxWriter escapes what XML cannot hold
        written += 1
        if written % 256 == 0:
            bar.update(written)
    book.save()
    return written
