"""Customers to and from a spreadsheet (CSV or XLSX) through a column mapping.

The mapping names which of the file's columns hold the customer id, which
hold attributes and which hold links::

    import_customers(
        g, "customers.xlsx",
        id_column="Customer ID",
        attributes={"Firstname": "first_name", "Lastname": "last_name"},
        links={"Email": "email", "phoneNumber:1": "phone", "phoneNumber:2": "phone",
               "customerId": "loyalty_card"},
        rejects="rejects.csv",
    )

- Several columns may map to one link name: they are its slots, the
  customer's first, second, … link of that name, oldest first.  A value in
  a slot replaces the customer's previous value of that slot; an empty
  cell leaves the slot as it is; values the customer holds change nothing
  (:mod:`.slots` has the whole rule).
- ``generate()`` in a link column asks for a new loyalty card number with a
  Luhn check digit, unless the customer has a link of the name that the row
  does not give (then it is kept: a re-import issues no other number).
- With ``id_column=None`` each row is matched to the current owner of its
  links; a row that matches nobody becomes a new customer whose id is
  derived from its highest-priority link (so a re-import finds it); a row
  whose links belong to two different customers is rejected, never merged.
- The mapping's column names match the file's header however either is
  spelt: case, spaces, underscores and hyphens aside (``"Customer ID"``
  finds ``customer_id``).  A column spelt exactly as mapped is found
  first, so a file may hold ``Customer ID`` and ``customerId`` as two
  columns.  Rejects name a column as the file spells it; an export writes
  the mapping's own spelling.
- Only changed cells are sent: an attribute equal to the customer's own
  value, or a link the customer already owns, is not sent again, so a
  second import of the same file changes nothing.
- A file must not contradict itself: a second row for one customer, or a
  link value an earlier row gave, is rejected (:mod:`.fileindex` remembers
  the keys).  A row whose link belongs to another customer under the
  policy ``reject`` or ``merge`` waits until the file has been read, as a
  later row may free the link.

:func:`export_customers` writes the same layout back (CSV or XLSX by the
file's suffix); importing its output into the same graph changes nothing.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import IdentityGraphError, SuppressedLink, UnknownCustomer
from ..ids import Link, check_customer_id
from ..text import attribute_problem
from ..times import utc
from .cards import new_card_number
from .cells import cell_text, escape_formula, unescape_formula
from .csvfiles import CsvTable
from .errors import FileFormatError
from .fileindex import FileIndex
from .polars_csv import check_engine, polars_rows
from .slots import GENERATE_CELL, Cell, Slots, held_in_slot_order, plan, slots_of
from .summary import ImportSummary, Progress, Rejects
from .tables import Columns, column_index, is_csv, wrong_width
from .xlsxfiles import Formula, XlsxLimits, XlsxTable, XlsxWriter

if TYPE_CHECKING:
    from ..graph import IdentityGraph

__all__ = ["GENERATE", "CustomerLayout", "LinkColumn", "export_customers", "import_customers"]

#: Rows per transaction when the graph is kept in a store.
BATCH_ROWS = 1000

#: The cell text that asks for a new link value.
GENERATE = "generate()"
#: How many fresh numbers ``generate()`` tries before giving up on a row.
_GENERATE_TRIES = 100
_ATTRIBUTE = re.compile(r"[a-z0-9_]+")

Problem = tuple[str, Any, str]


@attrs.frozen
class _Conflicts:
    """A row put off because a link it gives belongs to another customer,
    whose link type's policy is ``reject`` (``problems``) or ``merge``: it
    is tried again once the file has been read, as a later row may free the
    link; only then is it rejected, or the profiles merged."""

    problems: list[Problem]


@attrs.frozen
class LinkColumn:
    """A file column holding the ``slot``-th (from 0) link named ``name``."""

    header: str
    name: str
    slot: int


@attrs.frozen
class CustomerLayout:
    """A validated column mapping: which header holds what.

    Built by :meth:`build` from the keywords ``import_customers`` and
    ``export_customers`` share; raises ``ValueError`` for a mapping that
    cannot work (a header used twice, a bad attribute or link name, nothing
    to identify a row by).
    """

    id_column: str | None
    attributes: tuple[tuple[str, str], ...]
    links: tuple[LinkColumn, ...]

    @classmethod
    def build(
        cls,
        id_column: str | None,
        attributes: Mapping[str, str] | None,
        links: Mapping[str, str] | None,
    ) -> CustomerLayout:
        headers: list[str] = [] if id_column is None else [id_column]
        attribute_pairs = tuple((attributes or {}).items())
        link_pairs = tuple((links or {}).items())
        headers += [header for header, _ in attribute_pairs]
        headers += [header for header, _ in link_pairs]
        for header in headers:
            if not isinstance(header, str) or not header.strip() or header != header.strip():
                raise ValueError(f"column {header!r} must be a non-empty name without padding")
        twice = sorted({header for header in headers if headers.count(header) > 1})
        if twice:
            raise ValueError(f"column(s) {twice} are mapped twice")
        for header, name in attribute_pairs:
            if not isinstance(name, str) or not _ATTRIBUTE.fullmatch(name):
                raise ValueError(f"attribute {name!r} (column {header!r}) must match [a-z0-9_]+")
        names = [name for _, name in attribute_pairs]
        if len(set(names)) != len(names):
            raise ValueError(f"attributes {names} name one attribute twice")
        slots: dict[str, int] = {}
        columns = []
        for header, name in link_pairs:
            Link(name, "")  # raises InvalidLink for a bad link name
            columns.append(LinkColumn(header, name, slots.get(name, 0)))
            slots[name] = slots.get(name, 0) + 1
        if id_column is None and not columns:
            raise ValueError("with id_column=None, links must map at least one column")
        return cls(id_column, attribute_pairs, tuple(columns))

    def spelt_as(self, columns: Columns) -> CustomerLayout:
        """This layout with each column named as ``columns`` (a file's header)
        spells it, so that rejects name the file's columns.  O(columns)."""
        return CustomerLayout(
            None if self.id_column is None else columns.spelling(self.id_column),
            tuple((columns.spelling(header), name) for header, name in self.attributes),
            tuple(attrs.evolve(link, header=columns.spelling(link.header)) for link in self.links),
        )

    @property
    def headers(self) -> list[str]:
        """Every mapped header, in the file layout's order: id, attributes, links."""
        first = [] if self.id_column is None else [self.id_column]
        return first + [h for h, _ in self.attributes] + [c.header for c in self.links]


def _text(value: Any) -> str:
    """A cell as text, for ids and link values (an id typed as a number is text)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return cell_text(value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(cell: Any, stored: Any) -> bool:
    """Whether a file's cell says what the customer already has.

    Equal values of the same type are the same (``1`` is not ``True``), and
    so are equal numbers (a spreadsheet has one kind of number: the ``3.0``
    an XLSX export wrote reads back as ``3``); a text cell is also the same
    as a stored value written as that text — what a CSV export made of a
    date or a ``Decimal``.
    """
    if type(cell) is type(stored) and cell == stored:
        return True
    if _number(cell) and _number(stored):
        return bool(cell == stored)
    return isinstance(cell, str) and cell == cell_text(stored)


def import_customers(
    graph: IdentityGraph,
    path: str | os.PathLike[str],
    *,
    id_column: str | None = "Customer ID",
    attributes: Mapping[str, str] | None = None,
    links: Mapping[str, str] | None = None,
    rejects: str | os.PathLike[str] | None = None,
    at: datetime | None = None,
    sheet: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    limits: XlsxLimits | None = None,
    generate: Callable[[], str] = new_card_number,
    progress: bool | None = None,
    engine: str = "auto",
) -> ImportSummary:
    """Import customers, their attributes and links from a CSV or XLSX file.

    Parameters
    ----------
    graph:
        The identity graph to update.
    path:
        A ``.csv`` (``,`` ``;`` or tab, sniffed) or ``.xlsx`` file; row 1
        is the header.  Columns the mapping does not name are ignored.
    id_column:
        The column of customer ids, or ``None`` to match rows by their links.
    attributes:
        ``{column: attribute name}``.
    links:
        ``{column: link name}``; several columns may name one link.

        Columns are found however the file spells them (``"Customer ID"``
        matches a header ``customer_id``).  Where the file has two spellings
        of one name (``Customer ID`` and ``customerId``), each mapped name
        finds the column spelt exactly like it; one that finds neither
        exactly raises ``FileFormatError``, as do two mapped names that
        find one column.
    rejects:
        Where to write the rejects CSV (``row, column, value, reason``).
    at:
        When the import takes effect (aware); by default the graph's clock,
        read once, so every change of one import has the same time.
    sheet, limits:
        XLSX only: the sheet (default: the first) and the size limits
        (:class:`~identity_graph.io.xlsxfiles.XlsxLimits`).
    encoding, delimiter:
        CSV only; found by default.  A CSV cell written as ``'=…`` (the
        formula guard of :func:`export_customers`) is read without the ``'``.
    generate:
        Makes a candidate value for a ``generate()`` cell; the importer
        checks the value was never used (``history`` is empty).  Default: a
        16-digit random number with a Luhn check digit.
    progress:
        Show a progress bar (default: on a terminal, for a long file).
    engine:
        CSV only: ``"auto"`` (polars reads the file when the ``[polars]``
        extra is installed and reads it exactly as the Python reader does),
        ``"polars"`` (the same; ValueError without polars) or ``"python"``
        (the Python reader, which streams).  The import is the same.

    Returns
    -------
    ImportSummary
        Rows read, imported (something changed), unchanged, rejected.

    Raises
    ------
    FileFormatError / FileTooLarge
        The file cannot be read, or passes the XLSX limits.
    ValueError
        A mapping that cannot work, or a suffix other than .csv / .xlsx.

    Rows are applied one at a time, each with a few graph calls (O(links ×
    log k) per row, plus O(log n) look-ups in the file's index).  A row is
    checked completely before anything is sent, so a rejected row changes
    nothing — except when a guard of the graph (a cap, a frozen link)
    refuses one of its links after others were sent; the reason then says
    so.  Rows put off for a conflict are tried again after the last row
    (O(d²) for d of them).
    """
    engine = check_engine(engine)
    layout = CustomerLayout.build(id_column, attributes, links)
    source = Path(path)
    csv_file = is_csv(source)
    when = utc(graph.clock() if at is None else at)  # reads the graph's clock once
    table: CsvTable | XlsxTable
    if csv_file:
        table = CsvTable(source, required=layout.headers, encoding=encoding, delimiter=delimiter)
    else:
        table = XlsxTable(source, sheet=sheet, limits=limits)
    total = table.size if isinstance(table, CsvTable) else table.total
    with (
        table,
        Rejects(rejects) as rejected,
        FileIndex() as seen,
        Progress(f"customers {source.name}", total, table.size, progress) as bar,
    ):
        delimiter_used = table.delimiter if isinstance(table, CsvTable) else None
        columns = column_index(
            table.path, table.header, layout.headers, delimiter_used, every_column=False
        )
        rows = _Rows(graph, layout.spelt_as(columns), columns, when, generate, csv_file, seen)
        width = len(table.header)
        read = imported = unchanged = 0
        fast = polars_rows(table, engine) if isinstance(table, CsvTable) else None
        position = table.position if fast is None else fast.position
        source_rows: Iterator[tuple[int, list[Any]]] = (
            table.rows()
            if fast is None
            else ((row, list(cells)) for chunk in fast.chunks() for row, cells in chunk.pairs())
        )
        finished = False
        unreadable: FileFormatError | None = None
        # Rows go in batches: on a store, one transaction (one disk sync) per
        # BATCH_ROWS rows instead of one per call.  A file that breaks part
        # way keeps the rows before the break, as in memory: the batch is
        # committed first, then the error raised.
        while not finished:
            with graph.batch():
                for _ in range(BATCH_ROWS):
                    try:
                        row, values = next(source_rows)
                    except StopIteration:
                        finished = True
                        break
                    except FileFormatError as error:
                        unreadable, finished = error, True
                        break
                    read += 1
                    if row % 256 == 0:
                        bar.update(position())
                    # An XLSX row is as wide as its header, so the check only
                    # finds a row too long to read (an UnreadableRow), as in CSV.
                    width_problem = wrong_width(values, width)
                    problems = (
                        [("", "", width_problem)] if width_problem else rows.apply(values, row)
                    )
                    if isinstance(problems, _Conflicts):
                        seen.defer(row, values)
                    elif problems is True:
                        imported += 1
                    elif problems is False:
                        unchanged += 1
                    else:
                        rejected.add(row, problems)
                        seen.reject(row)  # a later row's message must not say it kept a link
        with graph.batch():
            for row, result in rows.retry():
                if isinstance(result, list):
                    rejected.add(row, result)
                elif result:
                    imported += 1
                else:
                    unchanged += 1
        if unreadable is not None:
            raise unreadable
        bar.update(position())
        imported, unchanged = imported + rows.revised, unchanged - rows.revised
        return ImportSummary(read, imported, unchanged, rejected.rows)


class _Rows:
    """Checks and applies the rows of one import."""

    def __init__(
        self,
        graph: IdentityGraph,
        layout: CustomerLayout,
        index: Columns,
        at: datetime,
        generate: Callable[[], str],
        csv_file: bool,
        seen: FileIndex,
    ) -> None:
        self.graph = graph
        self.layout = layout
        self.at = at
        self.generate = generate
        self.csv_file = csv_file
        self.seen = seen
        # Changes at this time from this journal entry on are this import's.
        self.started = (at, graph.state.journal.next_seq())
        self.header = ""  # the column whose change is being sent, for errors
        # Rows counted unchanged whose generate() cells a card held then
        # served: a later row taking that card makes them change after all.
        self.quiet_generating: set[int] = set()
        self.revised = 0  # how many of those did change, later in the file
        self.id_position = None if layout.id_column is None else index[layout.id_column]
        self.attributes = [(header, name, index[header]) for header, name in layout.attributes]
        self.links = [(column, index[column.header]) for column in layout.links]
        # Link names in the order of their first column; each with its columns (slots).
        self.names: dict[str, list[LinkColumn]] = {}
        for column in layout.links:
            self.names.setdefault(column.name, []).append(column)

    def value(self, raw: Any) -> Any:
        """A cell's value, or None when empty."""
        if isinstance(raw, str):
            if not raw.strip():
                return None
            return unescape_formula(raw) if self.csv_file else raw
        return raw

    def apply(
        self, values: list[Any], row: int, merging: bool = False
    ) -> bool | list[Problem] | _Conflicts:
        """Apply one row: True if it changed the graph, False if not, its
        problems, or the conflicts that put it off until the end of the file
        (``merging``: the end has come, a link shared under ``merge`` merges)."""
        graph = self.graph
        problems: list[Problem] = []
        customer: str | None = None
        if self.id_position is not None:
            header = self.layout.id_column or ""
            raw = self.value(values[self.id_position])
            if raw is None:
                problems.append((header, "", f"{header} is mandatory"))
            elif isinstance(raw, Formula):
                problems.append((header, raw.text, "the cell holds a formula, not a value"))
            else:
                try:
                    customer = check_customer_id(_text(raw))
                except IdentityGraphError as error:
                    problems.append((header, _text(raw), str(error)))
        wanted: dict[str, Any] = {}
        for header, name, position in self.attributes:
            raw = self.value(values[position])
            if raw is None:
                continue
            if isinstance(raw, Formula):
                problems.append((header, raw.text, "the cell holds a formula, not a value"))
            elif isinstance(raw, time | timedelta):
                problems.append((header, str(raw), "a time of day or duration is not supported"))
            elif (problem := attribute_problem(raw)) is not None:
                # The graph would refuse it too, but without the column's name.
                problems.append((header, cell_text(raw), f"the value {problem}"))
            else:
                wanted[name] = raw
        found: list[tuple[LinkColumn, Link]] = []
        cells: dict[LinkColumn, Cell] = {}
        for column, position in self.links:
            raw = self.value(values[position])
            if raw is None:
                continue
            if isinstance(raw, Formula):
                problems.append((column.header, raw.text, "the cell holds a formula, not a value"))
                continue
            text = _text(raw)
            if text.lower() == GENERATE:
                cells[column] = GENERATE_CELL
                continue
            try:
                link = graph.normalize(Link(column.name, text))
            except IdentityGraphError as error:
                problems.append((column.header, text, str(error)))
                continue
            twin = next((c for c, known in found if known == link), None)
            if twin is not None:
                value, named = self.shown_link(link)
                if value == link.value:
                    value = text  # not erased: the cell as the file gives it
                problems.append(
                    (column.header, value, f"{named} is in column {twin.header!r} of this row too")
                )
                continue
            found.append((column, link))
            cells[column] = link.value
        problems += self.contradictions(row, customer, found)
        if problems:
            return problems
        if customer is None:
            matched = self.match(found, GENERATE_CELL in cells.values())
            if isinstance(matched, list):
                return matched
            customer = matched
            earlier = self.seen.claim_customer(customer, row)
            if earlier is not None:
                shown = self.shown_customer(customer)
                return [("", "", f"the row matches customer {shown!r}, as row {earlier} does")]
        refused, merges = self.conflicts(customer, found)
        if refused or (merges and not merging):
            return _Conflicts(refused)
        return self.send(customer, wanted, cells, row)

    def retry(self) -> Iterator[tuple[int, bool | list[Problem]]]:
        """The rows put off for a conflict, once the file is read: tried again
        in file order, pass after pass while a pass lets one in (it may free
        a link another needs); when none comes in, the first that only
        needs a merge merges, and the passes go on.  Those still refused are
        rejected.  O(d²) rows for d put off.
        """
        while True:
            progress = False
            for row, values in self.seen.deferred():
                result = self.apply(values, row)
                if not isinstance(result, _Conflicts):
                    self.seen.undefer(row)
                    progress = True
                    yield row, result
            if progress:
                continue
            for row, values in self.seen.deferred():
                result = self.apply(values, row, merging=True)
                if not isinstance(result, _Conflicts):
                    self.seen.undefer(row)
                    progress = True
                    yield row, result
                    break
            if not progress:
                break
        for row, values in self.seen.deferred():
            result = self.apply(values, row, merging=True)
            yield row, result.problems if isinstance(result, _Conflicts) else result

    def contradictions(
        self, row: int, customer: str | None, found: list[tuple[LinkColumn, Link]]
    ) -> list[Problem]:
        """Where the row contradicts an earlier row of the file: a customer
        given a second row, a link value given to a second row.

        Decided on the file's content alone, so every import of one file
        rejects the same rows, whatever became of the earlier row; the
        message says what did (it keeps the link, was rejected, or waits
        for the end of the file).  An erased value is named by its keyed
        hash, never as the file gives it.
        """
        problems: list[Problem] = []
        if customer is not None and self.id_position is not None:
            earlier = self.seen.claim_customer(customer, row)
            if earlier is not None:
                header = self.layout.id_column or ""
                shown = self.shown_customer(customer)
                problems.append(
                    (
                        header,
                        shown,
                        f"customer {shown!r} has row {earlier} of this file already; "
                        "give a customer one row (a second link goes in a second column)",
                    )
                )
        given = self.seen.claim_links([(link.name, link.value) for _, link in found], row)
        for column, link in found:
            earlier = given.get((link.name, link.value))
            if earlier is not None:
                value, named = self.shown_link(link)
                problems.append(
                    (
                        column.header,
                        value,
                        f"{named} is given by row {earlier} of this file already; a link "
                        f"belongs to one customer at a time ({self.fate(earlier)})",
                    )
                )
        return problems

    def fate(self, row: int) -> str:
        """What became of an earlier ``row`` of the file, for a message."""
        fate = self.seen.fate(row)
        if fate == "rejected":
            return f"row {row} was rejected: its own line says why"
        if fate == "deferred":
            return (
                f"row {row} waits for the end of the file, as a link of it belongs to another "
                "customer, and keeps this one only if it is imported then"
            )
        return "that row keeps it"

    def shown_customer(self, customer: str) -> str:
        """How a rejects line names ``customer``: by its keyed hash if the id
        was erased at the person's request.  O(len) per id."""
        if customer not in self.graph.state.order and self.graph.suppressed(customer):
            return self.graph.state.suppression.customer_hash(customer)
        return customer

    def shown_link(self, link: Link) -> tuple[str, str]:
        """How a rejects line names the normalised ``link``: its value and
        ``name:value``, or its keyed hash and ``name hash`` if the value was
        erased at the person's request (the form the graph's own refusal
        uses).  O(len)."""
        if self.graph.suppressed(link):
            _, hashed = self.graph.state.suppression.link_hash(link.key)
            return hashed, f"{link.name} {hashed}"
        return link.value, str(link)

    def match(self, found: list[tuple[LinkColumn, Link]], generated: bool) -> str | list[Problem]:
        """The customer a row without an id belongs to, or why there is none."""
        if not found:
            reason = "only generate() cells" if generated else "no link"
            return [("", "", f"the row has {reason}; with no id column a row is matched by links")]
        priority = self.graph.link_types.priority_key
        found = sorted(found, key=lambda pair: (priority(pair[1].name), pair[1].value))
        owners: dict[str, tuple[LinkColumn, Link]] = {}
        for column, link in found:
            owner = self.graph.owner(link)
            if owner is not None:
                owners.setdefault(owner, (column, link))
        if len(owners) > 1:
            named = "; ".join(
                f"{link} is customer {owner!r}'s" for owner, (_, link) in owners.items()
            )
            return [
                (
                    column.header,
                    link.value,
                    f"{named}: the row matches {len(owners)} customers; rows are never merged",
                )
                for column, link in owners.values()
            ]
        if owners:
            return next(iter(owners))
        first = found[0][1]
        digest = hashlib.sha256(f"{first.name}:{first.value}".encode()).hexdigest()[:24]
        return f"{first.name}-{digest}"

    def conflicts(
        self, customer: str, found: list[tuple[LinkColumn, Link]]
    ) -> tuple[list[Problem], bool]:
        """Links the graph would refuse to move to ``customer`` (policy
        ``reject``), and whether a link would merge two profiles (policy
        ``merge``); found before anything of the row is sent."""
        problems = []
        merges = False
        graph = self.graph
        for column, link in found:
            policy = graph.link_types.get(link.name).conflict
            if policy == "move":
                continue
            owner = graph.owner(link, at=self.at)
            if owner is None or owner == customer:
                continue
            if policy == "merge":
                merges = merges or (
                    customer not in graph.state.order
                    or graph.resolve(owner) != graph.resolve(customer)
                )
            else:
                problems.append(
                    (
                        column.header,
                        link.value,
                        f"{link} belongs to customer {owner!r} and the {link.name} conflict "
                        "policy is 'reject'",
                    )
                )
        return problems, merges

    def send(
        self, customer: str, wanted: dict[str, Any], cells: dict[LinkColumn, Cell], row: int
    ) -> bool | list[Problem]:
        """Send the row's changes; True if anything changed.

        Per link name, the slot rule (:func:`.slots.plan`) says what to
        unlink, link and generate.  Unlinks go first, so that replacing a
        link never trips a cap on how many links a customer may hold.
        """
        graph, at = self.graph, self.at
        changed = generating = False
        self.header = ""
        refused = self.suppressed(customer, cells)
        if refused is not None:
            return refused
        try:
            try:
                known = graph.attributes(customer)
                new = False
            except UnknownCustomer:
                known, new = {}, True
            changes = {
                name: value
                for name, value in wanted.items()
                if name not in known or not _same(value, known[name])
            }
            if new or changes:
                changed = graph.register(customer, attributes=changes, at=at) is not None
            held = slots_of(graph, customer, lost=self.started)
            for name, columns in self.names.items():
                row_cells = [cells.get(column) for column in columns]
                if not any(row_cells):
                    continue  # only empty cells: nothing to do for this name
                merge_policy = graph.link_types.get(name).conflict == "merge"
                slots = held.get(name, Slots())
                steps = plan(slots.values, row_cells, slots.gone)
                for old in steps.unlink:
                    slot = slots.values.index(old)
                    self.header = columns[min(slot, len(columns) - 1)].header
                    changed = graph.unlink(Link(name, old), at=at) is not None or changed
                given = {cell for cell in row_cells if isinstance(cell, str)}
                for position, value in steps.steps:
                    self.header = columns[position].header
                    if value is None:
                        graph.link(customer, self.fresh(name, given), at=at)
                        changed = True
                        continue
                    link = Link(name, value)
                    before = graph.owner(link)
                    changed = graph.link(customer, link, at=at) is not None or changed
                    if merge_policy and graph.owner(link) != customer:
                        # The profiles are one now; the file says whose slot
                        # the link fills.
                        changed = graph.relink(link, to=customer, at=at) is not None or changed
                    if before is not None and before != customer:
                        self.refill(before, name)
                wanted_new = sum(1 for cell in row_cells if cell is GENERATE_CELL)
                if wanted_new:
                    self.seen.note_generate(customer, name, row, wanted_new)
                    generating = True
        except (IdentityGraphError, ValueError) as error:  # ValueError: generate() gave up
            kept = " (the row's earlier changes were kept)" if changed else ""
            return [(self.header, "", f"{type(error).__name__}: {error}{kept}")]
        if generating and not changed:
            self.quiet_generating.add(row)
        return changed

    def suppressed(self, customer: str, cells: dict[LinkColumn, Cell]) -> list[Problem] | None:
        """The problem of a row that brings back a value erased at a person's
        request (its customer id or a link), or None.  The graph is asked to
        take it, so that it refuses and logs the keyed hash; nothing of the
        row is sent before.  The problem names the hash, not the value."""
        graph, at = self.graph, self.at
        attempts: list[tuple[str, Callable[[], object]]] = []
        if customer not in graph.state.order and graph.suppressed(customer):
            header = self.layout.id_column or ""
            attempts.append((header, functools.partial(graph.register, customer, None, at)))
        for column, cell in cells.items():
            if isinstance(cell, str) and graph.suppressed(Link(column.name, cell)):
                link = Link(column.name, cell)
                attempts.append((column.header, functools.partial(graph.link, customer, link, at)))
        for header, attempt in attempts:
            try:
                attempt()
            except SuppressedLink as error:
                shown = next(iter(error.shown.values()), "")
                value = shown.value if isinstance(shown, Link) else str(shown)
                return [(header, value, f"SuppressedLink: {error}")]
        return None

    def refill(self, owner: str, name: str) -> None:
        """``owner`` just lost a ``name`` link to a later row of the file: if
        an earlier row gave ``owner`` ``generate()`` cells that the link
        served, issue the new values now — what the earlier row would have
        done had the file not moved the link yet, and what a re-import asks."""
        noted = self.seen.generate_of(owner, name)
        if noted is None:
            return
        row, wanted = noted
        held = held_in_slot_order(self.graph, owner).get(name, [])
        serving = sum(1 for value in held if self.seen.row_of_link(name, value) != row)
        for _ in range(wanted - serving):
            self.graph.link(owner, self.fresh(name, set()), at=self.at)
            if row in self.quiet_generating:  # counted unchanged; it changed now
                self.quiet_generating.discard(row)
                self.revised += 1

    def fresh(self, name: str, avoid: set[str]) -> Link:
        """A value for link ``name`` that no link of that name ever had and
        that is not in ``avoid`` (the row's own values, not linked yet)."""
        for _ in range(_GENERATE_TRIES):
            candidate = self.graph.normalize(Link(name, self.generate()))
            if candidate.value not in avoid and not self.graph.history(candidate):
                return candidate
        raise ValueError(
            f"generate() found no unused {name} value in {_GENERATE_TRIES} tries; "
            "use longer numbers"
        )


def export_customers(
    graph: IdentityGraph,
    path: str | os.PathLike[str],
    *,
    id_column: str | None = "Customer ID",
    attributes: Mapping[str, str] | None = None,
    links: Mapping[str, str] | None = None,
    sheet: str = "Customers",
) -> int:
    """Write every customer in the layout ``import_customers`` reads; return the rows.

    The keywords are those of :func:`import_customers`: the header is the id
    column, then the attribute columns, then the link columns, in the
    mapping's order.  One row per customer (registration order): its own
    attributes (not its profile's), and its current links of each name in
    slot order (oldest first, see :mod:`.slots`), in the columns mapped to
    that name (links beyond the columns are not written).  Link values are
    written normalised.  Importing the file into a new graph and exporting
    again gives the same file.

    ``.xlsx``: typed cells; text is always a string cell (``=1+2`` stays
    text) and text that starts like a formula gets Excel's quote prefix; a
    character XML cannot hold (a control character, a carriage return) is
    escaped as Office escapes it, ``_xHHHH_``, so no value stops the export.
    Every value the graph accepts fits one cell, escaped (an attribute's
    text holds at most 4,096 characters); a longer one, kept by a store
    from before that rule, is never cut: the export raises ``ValueError``
    naming its row and column, and writes nothing (CSV has no such limit).
    ``.csv``: UTF-8, ``,``; a cell that starts like a formula (or with
    ``'``) gets a leading ``'`` that ``import_customers`` removes again.
    Either way, importing the file back gives the values written.

    O(customers × (attributes + links)); an XLSX file is streamed to disk.
    """
    layout = CustomerLayout.build(id_column, attributes, links)
    target = Path(path)
    rows = _export_rows(graph, layout)
    written = 0
    if is_csv(target, writing=True):
        import csv

        with open(target, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow([escape_formula(header) for header in layout.headers])
            for _customer, values in rows:
                writer.writerow([escape_formula(cell_text(value)) for value in values])
                written += 1
        return written
    book = XlsxWriter(target, layout.headers, sheet)
    for _customer, values in rows:
        book.append(values)  # any text: XlsxWriter escapes what XML cannot hold
        written += 1
    book.save()
    return written


def _export_rows(graph: IdentityGraph, layout: CustomerLayout) -> Iterator[tuple[str, list[Any]]]:
    for customer in graph.customers():
        values: list[Any] = [] if layout.id_column is None else [customer]
        own = graph.attributes(customer)
        values += [own.get(name) for _, name in layout.attributes]
        by_name = held_in_slot_order(graph, customer)
        for column in layout.links:
            held = by_name.get(column.name, [])
            values.append(held[column.slot] if column.slot < len(held) else None)
        yield customer, values
