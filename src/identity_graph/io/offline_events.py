"""Offline events of an e-mail marketing tool, from a CSV file.

One row per event::

    Type,Event Name,Member Email Address,Mailing,Time Stamp,Interest Stage,Interest Points,Quantity
    plain,Store visit,ann@example.com,Spring 2024,2024-03-01 10:00:00,,,
    interest,Catalogue,ann@example.com,Spring 2024,2024-03-02 11:00:00,Aware,10,
    purchase,Sofa,ann@example.com,Spring 2024,2024-03-09 15:30:00,Bought,50,1

The address must be a **member**: the current owner of an ``email`` link.
Rows for other addresses are rejected, as the tool itself refuses them.
``plain``, ``interest`` and ``purchase`` rows become events of type
``offline``, ``interest`` and ``offline_purchase`` of that customer; any
column beyond the eight above is kept in the event's ``data["fields"]``.
An event's id is derived from the row's content (with the address
normalised and the time in UTC), so a re-import changes nothing.

Column names are matched however they are spelt (case, spaces, underscores
and hyphens aside: ``member_email_address`` is ``Member Email Address``);
rejects name a column as the file spells it, and a further column is kept
under its header as written.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from ..errors import IdentityGraphError
from ..events import Event
from ..ids import Link
from .cells import parse_time, parse_whole, time_zone
from .csvfiles import CsvTable
from .errors import FileFormatError
from .polars_csv import PolarsRows, check_engine, polars_rows, utc_times
from .recording import EventBatches
from .summary import ImportSummary, Progress, Rejects
from .tables import (
    column_index,
    column_key,
    text_problems,
    unnamed_columns,
    unnamed_value,
    wrong_width,
)

if TYPE_CHECKING:
    from ..graph import IdentityGraph

__all__ = ["EVENT_TYPES", "import_offline_events"]

TYPE, NAME, EMAIL, MAILING, TIME = (
    "Type",
    "Event Name",
    "Member Email Address",
    "Mailing",
    "Time Stamp",
)
STAGE, POINTS, QUANTITY = "Interest Stage", "Interest Points", "Quantity"
REQUIRED = (TYPE, NAME, EMAIL, MAILING, TIME)
KNOWN = (*REQUIRED, STAGE, POINTS, QUANTITY)
_KNOWN_KEYS = frozenset(column_key(name) for name in KNOWN)

#: The event type each row type becomes.
EVENT_TYPES = {"plain": "offline", "interest": "interest", "purchase": "offline_purchase"}

Problem = tuple[str, Any, str]


def import_offline_events(
    graph: IdentityGraph,
    path: str | os.PathLike[str],
    *,
    tz: str | tzinfo,
    rejects: str | os.PathLike[str] | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    batch_size: int = 5_000,
    progress: bool | None = None,
    engine: str = "auto",
) -> ImportSummary:
    """Import an offline-events CSV file into ``graph``'s ledger.

    Parameters
    ----------
    graph:
        The identity graph; each row's address is looked up in it.
    path:
        The CSV file (``,`` ``;`` or tab between columns, sniffed).
    tz:
        The time zone of ``Time Stamp`` (an IANA name or a ``tzinfo``).
    rejects, encoding, delimiter, batch_size, progress, engine:
        As for :func:`~identity_graph.io.import_offline_data`.

    Rules per row: ``Type``, ``Event Name``, ``Member Email Address``,
    ``Mailing`` and ``Time Stamp`` are mandatory; ``interest`` rows need
    ``Interest Stage`` and a whole number of ``Interest Points``;
    ``purchase`` rows need a whole ``Quantity`` >= 1 (their interest cells
    are optional); a cell of a column its row type does not have must be
    empty.

    Returns the :class:`ImportSummary`; raises ``FileFormatError`` for a
    file that cannot be read.  Cost: O(rows × log n) time (one owner lookup
    per row), O(batch_size) memory.
    """
    engine = check_engine(engine)
    zone = time_zone(tz)
    with (
        CsvTable(path, required=REQUIRED, encoding=encoding, delimiter=delimiter) as table,
        Rejects(rejects) as rejected,
        Progress(f"offline events {table.path.name}", table.size, table.size, progress) as bar,
    ):
        columns = column_index(table.path, table.header, REQUIRED, table.delimiter)
        index = {name: columns.position(name) for name in KNOWN}
        # Messages and rejects name a column as the file spells it.
        spelt = {name: columns.spelling(name) for name in KNOWN}
        order = {name: position for name, _, position in columns.items()}
        extras = [
            (name, position) for name, key, position in columns.items() if key not in _KNOWN_KEYS
        ]
        # A refused event is named by its id, which derives from the row's
        # content and is refused for its address: under the address's column.
        batches = EventBatches(
            graph, rejected, batch_size=batch_size, column=spelt[EMAIL], links=("email",)
        )
        width = len(table.header)
        unnamed = unnamed_columns(table.header)
        read = 0
        fast = polars_rows(table, engine)
        position = table.position if fast is None else fast.position
        times: dict[str, datetime] = {}
        rows: Iterator[tuple[int, Sequence[str]]] = (
            table.rows() if fast is None else _chunked(fast, index[TIME], zone, times)
        )
        try:
            for row, cells in rows:
                read += 1
                if row % 1024 == 0:
                    bar.update(position())
                width_problem = wrong_width(cells, width) or unnamed_value(cells, unnamed)
                if width_problem is not None:
                    rejected.add(row, [("", "", width_problem)])
                    continue
                problems: list[Problem] = text_problems(cells, table.header) if fast is None else []
                event = _event(graph, cells, index, spelt, extras, zone, problems, times)
                if event is None:
                    problems.sort(key=lambda problem: order.get(problem[0], -1))  # file order
                    rejected.add(row, problems)
                else:
                    batches.add(event, [row])
        except FileFormatError:
            # Fix the file and import it again: the rows read before the
            # unreadable one are recorded now.
            batches.flush()
            raise
        batches.flush()
        bar.update(position())
        return ImportSummary(
            read=read,
            imported=batches.imported,
            unchanged=batches.unchanged,
            rejected=rejected.rows,
        )


def _chunked(
    fast: PolarsRows, position: int | None, zone: tzinfo, times: dict[str, datetime]
) -> Iterator[tuple[int, Sequence[str]]]:
    """The rows polars read, filling ``times`` with each chunk's time
    stamps read column by column, where that gives what ``parse_time``
    gives (:func:`~identity_graph.io.polars_csv.utc_times`)."""
    for chunk in fast.chunks():
        times.clear()
        if position is not None:
            times.update(utc_times(chunk.frame[f"c{position}"], zone))
        yield from chunk.pairs()


def _cell(cells: Sequence[str], index: dict[str, int | None], column: str) -> str:
    position = index[column]
    return "" if position is None else cells[position].strip()


def _event(
    graph: IdentityGraph,
    cells: Sequence[str],
    index: dict[str, int | None],
    spelt: dict[str, str],
    extras: list[tuple[str, int]],
    zone: tzinfo,
    problems: list[Problem],
    times: dict[str, datetime],
) -> Event | None:
    """The event of one row, or None with the reasons in ``problems``, which
    name each column as ``spelt`` (the file) spells it."""
    values = {column: _cell(cells, index, column) for column in KNOWN}
    for column in REQUIRED:
        if not values[column]:
            problems.append((spelt[column], "", f"{spelt[column]} is mandatory"))
    kind = values[TYPE].lower()
    if values[TYPE] and kind not in EVENT_TYPES:
        problems.append(
            (spelt[TYPE], values[TYPE], f"{spelt[TYPE]} must be plain, interest or purchase")
        )
    at: datetime | None = None
    if values[TIME]:
        try:
            at = times.get(values[TIME]) or parse_time(values[TIME], zone)
        except ValueError as error:
            problems.append((spelt[TIME], values[TIME], str(error)))
    owner: str | None = None
    address = ""
    erased = False
    if values[EMAIL]:
        try:
            link = graph.normalize(Link("email", values[EMAIL]))
            address = link.value
            owner = graph.owner(link)
        except IdentityGraphError as error:
            problems.append((spelt[EMAIL], values[EMAIL], str(error)))
        else:
            # An address erased at its owner's request goes to the graph,
            # which refuses it and logs its keyed hash: the rejects row then
            # names the hash, not the address.
            erased = owner is None and graph.suppressed(link)
            if owner is None and not erased:
                problems.append(
                    (spelt[EMAIL], values[EMAIL], f"{address} is not a member: no customer owns it")
                )
    data: dict[str, Any] = {"name": values[NAME], "mailing": values[MAILING]}
    wanted = {
        "plain": (),
        "interest": (STAGE, POINTS),
        "purchase": (QUANTITY,),
    }.get(kind, ())
    allowed = {"plain": (), "interest": (STAGE, POINTS), "purchase": (STAGE, POINTS, QUANTITY)}
    for column in (STAGE, POINTS, QUANTITY):
        text = values[column]
        name = spelt[column]
        if not text:
            if column in wanted:
                problems.append((name, "", f"{name} is mandatory for {kind} events"))
            continue
        if kind in allowed and column not in allowed[kind]:
            problems.append((name, text, f"{kind} events have no {name}"))
            continue
        try:
            if column == STAGE:
                data["interest_stage"] = text
            elif column == POINTS:
                data["interest_points"] = parse_whole(text)
            else:
                data["quantity"] = parse_whole(text, minimum=1)
        except ValueError as error:
            rule = "a whole number >= 1" if column == QUANTITY else "a whole number"
            problems.append((name, text, f"{error}; {name} is {rule}"))
    fields = {name: cells[position].strip() for name, position in extras}
    fields = {name: value for name, value in fields.items() if value}
    if fields:
        data["fields"] = fields
    if problems or at is None or (owner is None and not erased):
        return None
    content = json.dumps(
        [kind, address, at.isoformat(), sorted(data.items())],
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
        default=str,
    )
    event_id = "oe-" + hashlib.sha256(content.encode()).hexdigest()[:32]
    return Event(
        EVENT_TYPES[kind],
        at=at,
        customer_id=owner,
        links=(Link("email", address),),
        data=data,
        id=event_id,
    )
