"""Offline data: store purchases and call-centre events from a CSV file.

One line per product sold or event logged::

    Time Stamp;Customer ID;Event Type;Category;Event Name;Num1;Num2;EventTransaction Attr1
    2024-03-01 10:15:00;c-001;7;Coffee;SKU-123;2;7,80;T-1001
    2024-03-01 10:15:00;c-001;7;Bakery;SKU-777;1;3,20;T-1001
    2024-03-02 09:00:00;c-002;3;;CALL-IN;1;0;

Purchase lines (``Event Type`` 7) are grouped into **tickets**: by the
transaction id ``EventTransaction Attr1``, or, without one, by customer and
time stamp.  Each ticket becomes one ``purchase`` event whose ``amount`` and
``items`` feed the indicators; its id is derived from the ticket
(``offline:<transaction id>``, or ``offline:<customer>@<UTC time>``), so a
re-import finds it recorded and changes nothing.  Every other line becomes
one event of the type its code maps to (``offline_<code>`` by default),
with an id derived from its content.

A ticket is imported whole or not at all: one bad line rejects the
ticket's other lines too.  Lines of one ticket need not be adjacent, but
must lie within ``ticket_window`` rows of each other; memory is
O(ticket_window + batch_size), whatever the file's length, with the Python
reader (``engine="python"``).  The polars reader (``engine="auto"`` when the
``[polars]`` extra is installed; :mod:`.polars_csv`) reads the file's cells
into memory first, about the file's size, and checks them column by column
(:class:`_Columns`): the lines that keep every rule, in tickets whose lines
agree and lie within ``ticket_window`` rows of each other, become events
without a Python call per cell; every other line, with the rest of its
ticket, goes through the Python checks, which write the rejects.  Both give
the same import, row for row, in the same order.

Column names are matched however they are spelt (case, spaces, underscores
and hyphens aside: ``Var 1`` is ``Var1``, ``customer_id`` is ``Customer
ID``), in the header and in ``ticket_fields`` / ``item_fields``; rejects
name a column as the file spells it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import IdentityGraphError
from ..events import MAX_EVENT_ID_LENGTH, MONEY_DIGITS, Event, FrozenMap
from ..ids import ERASED_PREFIX, MAX_CUSTOMER_ID_LENGTH, check_customer_id
from ..purchases import exact_sum, exact_unit_price
from ..times import EPOCH, micros
from .cells import parse_decimal, parse_time, parse_whole, time_zone
from .csvfiles import CsvTable
from .errors import FileFormatError
from .polars_csv import (
    INT64_DIGITS,
    PolarsRows,
    check_engine,
    decimal_columns,
    polars_rows,
    stripped,
    utc_micros,
    whole_columns,
)
from .recording import EventBatches
from .summary import ImportSummary, Progress, Rejects
from .tables import (
    SPELLING_RULE,
    column_index,
    column_key,
    distinct_keys,
    text_problems,
    unnamed_columns,
    unnamed_value,
    wrong_width,
)

if TYPE_CHECKING:
    from ..graph import IdentityGraph

__all__ = ["ARGUMENT_NAMES", "PURCHASE_CODE", "check_options", "import_offline_data"]

TIME, CUSTOMER, TYPE, CATEGORY = "Time Stamp", "Customer ID", "Event Type", "Category"
NAME, NUM1, NUM2 = "Event Name", "Num1", "Num2"
TRANSACTION = "EventTransaction Attr1"
REQUIRED = (TIME, CUSTOMER, TYPE, NAME, NUM1, NUM2)
#: The event code of a purchase line.
PURCHASE_CODE = 7

#: The item columns by their key (``var1``, ``eventnameattr1``), and the
#: item data key each fills by default, in the order items list them.
_ITEM_COLUMNS = {
    **{column_key(f"Var{n}"): f"var{n}" for n in range(1, 6)},
    **{column_key(f"EventName Attr{n}"): f"attr{n}" for n in range(1, 11)},
}
#: ``EventTransaction Attr1``, ``Attr2``, … by key: any number of them.
_TRANSACTION_ATTR = re.compile(r"eventtransactionattr([1-9][0-9]*)")
_TRANSACTION_KEY = column_key(TRANSACTION)
_KNOWN_KEYS = frozenset(column_key(name) for name in (*REQUIRED, CATEGORY)) | _ITEM_COLUMNS.keys()
_DEFINED = (
    f"{', '.join(REQUIRED)}, {CATEGORY}, Var1-Var5, EventName Attr1-Attr10 and "
    "EventTransaction Attr1, Attr2, …"
)
_CODE = re.compile(r"[0-9]+")
_RESERVED = frozenset({"amount", "items", "channel", "transaction"})
_ITEM_RESERVED = frozenset({"sku", "quantity", "line_total", "unit_price", "category"})

Problem = tuple[str, Any, str]


class _Ticket:
    """The lines of one purchase read so far."""

    __slots__ = (
        "amount",
        "at",
        "customer",
        "fields",
        "items",
        "last_row",
        "problems",
        "rows",
        "transaction",
    )

    def __init__(self, transaction: str, customer: str | None, at: datetime | None) -> None:
        self.transaction = transaction
        self.customer = customer
        self.at = at
        self.rows: list[int] = []
        self.items: list[FrozenMap] = []
        self.amount = Decimal(0)
        self.fields: dict[str, str] = {}
        self.problems: dict[int, list[Problem]] = {}
        self.last_row = 0


def _ticket_id(transaction: str, customer: str, at: datetime) -> str:
    if transaction:
        return _transaction_id(transaction)
    return _bounded(f"offline:{customer}@{at:%Y-%m-%dT%H:%M:%SZ}")


def _transaction_id(transaction: str) -> str:
    """The event id of the ticket with transaction id ``transaction``."""
    return _bounded(f"offline:{transaction}")


def _bounded(ticket_id: str) -> str:
    if len(ticket_id) > MAX_EVENT_ID_LENGTH:
        # Still derived from the ticket, so still idempotent.
        ticket_id = "offline:h-" + hashlib.sha256(ticket_id.encode()).hexdigest()[:32]
    return ticket_id


#: The most entries a cell cache holds before it starts again.
CACHE_ENTRIES = 1 << 16

_K = TypeVar("_K")
_V = TypeVar("_V")


def _remember(cache: dict[_K, _V], text: _K, value: _V) -> _V:
    """``value``, kept in ``cache`` under ``text``; a full cache is emptied
    first, so that memory stays bounded whatever the file.  O(1) amortised."""
    if len(cache) >= CACHE_ENTRIES:
        cache.clear()
    cache[text] = value
    return value


def import_offline_data(
    graph: IdentityGraph,
    path: str | os.PathLike[str],
    *,
    tz: str | tzinfo,
    event_types: Mapping[str, str] | None = None,
    ticket_fields: Mapping[str, str] | None = None,
    item_fields: Mapping[str, str] | None = None,
    register_unknown: bool = True,
    rejects: str | os.PathLike[str] | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    ticket_window: int = 10_000,
    batch_size: int = 5_000,
    progress: bool | None = None,
    engine: str = "auto",
) -> ImportSummary:
    """Import an offline-data CSV file into ``graph``.

    Parameters
    ----------
    graph:
        The identity graph whose ledger receives the events.
    path:
        The CSV file (``,`` ``;`` or tab between columns, sniffed).
    tz:
        The time zone of the ``Time Stamp`` column: an IANA name
        (``"Europe/Helsinki"``) or a ``tzinfo``.  Required: the file does
        not say, and the library never guesses.
    event_types:
        Event type of each non-purchase code, e.g. ``{"3": "call"}``;
        a code not listed becomes ``offline_<code>``.
    ticket_fields:
        Columns whose values belong to the whole ticket, and the event data
        field each fills, e.g. ``{"Var2": "store", "EventTransaction Attr2":
        "payment_methods"}`` (the indicators read ``store``, ``seller``,
        ``payment_methods``, ``shipping_methods``, ``promo_codes``).  The
        lines of one ticket must agree on them.  A column is named however
        the file spells it (``"var 2"`` is ``Var2``).
    item_fields:
        The item field each of the columns ``Var1``-``Var5`` and ``EventName
        Attr1``-``Attr10`` fills, e.g. ``{"EventName Attr1": "brand"}`` (the
        indicators count ``brand`` and list ``seller``; ``category`` comes
        from the ``Category`` column); by default ``var1``… and ``attr1``….
    register_unknown:
        Whether a customer id the graph does not know is registered (the
        default: the file's system issued it) or its lines rejected.
    rejects:
        Where to write the rejects CSV (``row, column, value, reason``).
    encoding, delimiter:
        As :class:`~identity_graph.io.csvfiles.CsvTable`; both found by
        default.  With ``;`` or tab between columns, a ``,`` is also read as
        a decimal separator (``7,80``).
    ticket_window:
        How many rows apart the first and last line of one ticket may be.
    batch_size:
        Events per ``record_many`` call (one transaction in a store).
    progress:
        Show a progress bar: ``None`` when stderr is a terminal and the
        file is long.
    engine:
        ``"auto"`` (the default): polars reads the file when the
        ``[polars]`` extra is installed and the file is one it reads exactly
        as the Python reader does (UTF-8, well-formed quoting…), the Python
        reader otherwise; ``"polars"`` the same, but ValueError without
        polars; ``"python"`` always the Python reader, which streams (memory
        O(ticket_window + batch_size)).  The import is the same either way.

    Returns
    -------
    ImportSummary
        Rows read, imported, unchanged (recorded before) and rejected.

    Raises
    ------
    FileFormatError
        The file cannot be read (encoding, quoting, missing columns, a
        column ``ticket_fields`` or ``item_fields`` names and the header
        lacks), with the file and row; the rows before it are imported.
    ValueError
        An unknown time zone or a bad keyword (two ``ticket_fields`` or two
        ``item_fields`` columns that are one name however spelt, say).

    Cost: O(rows × log n) time, O(ticket_window + batch_size) memory with
    the Python reader, O(file size) with polars (the file's cells and the
    events built from them).
    """
    engine = check_engine(engine)
    zone = time_zone(tz)
    types, fields, items = check_options(event_types, ticket_fields, item_fields)
    if not isinstance(ticket_window, int) or ticket_window < 1:
        raise ValueError(f"ticket_window={ticket_window!r} must be a whole number >= 1")
    with (
        CsvTable(path, required=REQUIRED, encoding=encoding, delimiter=delimiter) as table,
        Rejects(rejects) as rejected,
        Progress(f"offline data {table.path.name}", table.size, table.size, progress) as bar,
    ):
        reader = _Reader(
            graph, table, zone, types, fields, items, rejected, batch_size, register_unknown
        )
        reader.run(ticket_window, bar, polars_rows(table, engine))
        return ImportSummary(
            read=reader.read,
            imported=reader.batches.imported,
            unchanged=reader.batches.unchanged,
            rejected=rejected.rows,
        )


#: How :func:`check_options` names the arguments in its messages by default.
ARGUMENT_NAMES = {
    "event_types": "event_types",
    "ticket_fields": "ticket_fields",
    "item_fields": "item_fields",
}


def check_options(
    event_types: Mapping[str, str] | None = None,
    ticket_fields: Mapping[str, str] | None = None,
    item_fields: Mapping[str, str] | None = None,
    names: Mapping[str, str] = ARGUMENT_NAMES,
) -> tuple[dict[str, str], dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
    """The mappings of :func:`import_offline_data`, checked before any file
    is read: ``ValueError`` names the argument as ``names`` calls it (a
    command line passes its options' names, ``--item-field``…) and the rule.
    O(entries)."""
    types = {str(code).strip(): kind for code, kind in (event_types or {}).items()}
    what = names["event_types"]
    for code, kind in types.items():
        if not _CODE.fullmatch(code) or int(code) == PURCHASE_CODE:
            raise ValueError(f"{what}: code {code!r} must be a number other than 7")
        if not isinstance(kind, str) or not kind.strip():
            raise ValueError(f"{what}: the type of code {code!r} must be a non-empty string")
        if kind.strip() == "purchase":
            # A purchase is a ticket of code-7 lines, with its amount and
            # items; a bare event typed "purchase" would count in the
            # indicators as a ticket of nothing.
            raise ValueError(
                f"{what}: code {code!r} cannot be typed 'purchase'; "
                "purchases are the lines of code 7"
            )
    fields = _mapping(ticket_fields, names["ticket_fields"], _RESERVED, transaction=True)
    items = _mapping(item_fields, names["item_fields"], _ITEM_RESERVED, transaction=False)
    return types, fields, items


def _mapping(
    given: Mapping[str, str] | None, what: str, reserved: frozenset[str], *, transaction: bool
) -> dict[str, tuple[str, str]]:
    """``{column key: (column as given, field)}`` of ``ticket_fields`` or
    ``item_fields``; ValueError for a column they may not name, a reserved
    field, or two columns that are one name however spelt."""
    pairs = dict(given or {})
    for column in pairs:
        if not isinstance(column, str):
            raise ValueError(f"{what}: column {column!r} must be a name")
    keys = distinct_keys(pairs, what)
    allowed = "Var1-Var5, EventName Attr1-Attr10"
    if transaction:
        allowed += ", EventTransaction Attr2..."
    found: dict[str, tuple[str, str]] = {}
    for key, column in keys.items():
        field = pairs[column]
        if not (
            key in _ITEM_COLUMNS
            or (transaction and _TRANSACTION_ATTR.fullmatch(key) and key != _TRANSACTION_KEY)
        ):
            raise ValueError(f"{what}: {column!r} is not one of {allowed} ({SPELLING_RULE})")
        if not isinstance(field, str) or not field or field in reserved:
            raise ValueError(
                f"{what}: {column!r} -> {field!r}; the field must be a name other "
                f"than {sorted(reserved)} (the format's own columns fill those)"
            )
        found[key] = (column, field)
    return found


class _Reader:
    """One import's state: the open tickets and the pending events."""

    def __init__(
        self,
        graph: IdentityGraph,
        table: CsvTable,
        zone: tzinfo,
        types: dict[str, str],
        fields: dict[str, tuple[str, str]],
        items: dict[str, tuple[str, str]],
        rejects: Rejects,
        batch_size: int,
        register_unknown: bool,
    ) -> None:
        self.graph = graph
        self.table = table
        self.zone = zone
        self.types = types
        self.rejects = rejects
        self.read = 0
        self.decimal_comma = table.delimiter != ","
        columns = column_index(table.path, table.header, REQUIRED, table.delimiter)
        unknown = [
            name
            for name, key, _ in columns.items()
            if key not in _KNOWN_KEYS and not _TRANSACTION_ATTR.fullmatch(key)
        ]
        if unknown:
            raise FileFormatError(
                f"{table.path}: row 1: the header has column(s) {unknown} that the offline "
                f"data format does not define; it defines {_DEFINED} ({SPELLING_RULE})"
            )
        # Every column is one name however spelt (column_index refused two
        # spellings of one), so a key finds one position.
        at_key = {key: position for _, key, position in columns.items()}
        for what, mapping in (("ticket", fields), ("item", items)):
            # A mapped column the file lacks would leave its field empty without a word.
            missing = [column for key, (column, _) in mapping.items() if key not in at_key]
            if missing:
                fills = ", ".join(
                    f"{column}={mapping[column_key(column)][1]}" for column in missing
                )
                raise FileFormatError(
                    f"{table.path}: row 1: the {what} field(s) {fills} name column(s) that the "
                    f"header lacks; it has {[name for name, _, _ in columns.items()]} "
                    f"({SPELLING_RULE})"
                )
        # Columns copied into each item / event, as (position, data key).
        self.item_columns = [
            (at_key[key], items[key][1] if key in items else default)
            for key, default in _ITEM_COLUMNS.items()
            if key in at_key and key not in fields
        ]
        self.transaction_columns = [
            (position, "attr" + number.group(1))
            for _, key, position in columns.items()
            if (number := _TRANSACTION_ATTR.fullmatch(key))
            and key != _TRANSACTION_KEY
            and key not in fields
        ]
        # (the file's spelling, position, field) of each ticket-wide column.
        self.field_columns = [
            (columns.names[at_key[key]], at_key[key], field) for key, (_, field) in fields.items()
        ]
        # Messages and rejects name a column as the file spells it.
        self.spelt = {name: columns.spelling(name) for name in (*REQUIRED, CATEGORY, TRANSACTION)}
        self.batches = EventBatches(
            graph,
            rejects,
            batch_size=batch_size,
            register_unknown=register_unknown,
            explain=self._explain,
            column=columns.spelling(TRANSACTION) if TRANSACTION in columns else "",
            erased_column=self._erased_column,
        )
        self.unnamed = unnamed_columns(table.header)
        self.open: OrderedDict[tuple[Any, ...], _Ticket] = OrderedDict()
        self.front_last = 0  # at most the last row of the first open ticket
        # Cells repeat (a ticket's lines share their time, customers come
        # back, prices recur): each distinct text is parsed once, while the
        # caches stay small (cleared when full).
        self.times: dict[str, datetime] = {}
        self.chunk_times: dict[str, datetime] = {}  # polars rows: read column by column
        self.customers: dict[str, str] = {}
        self.numbers: dict[str, Decimal] = {}
        self.quantities: dict[str, int] = {}
        self.check_text = True  # False for polars rows: the file holds no NUL
        self.p_time, self.p_customer = columns[TIME], columns[CUSTOMER]
        self.p_type, self.p_name = columns[TYPE], columns[NAME]
        self.p_num1, self.p_num2 = columns[NUM1], columns[NUM2]
        self.p_category = columns.position(CATEGORY)
        self.p_transaction = columns.position(TRANSACTION)

    @staticmethod
    def _explain(event: Event, error: str, reason: str) -> str:
        if error == "DuplicateEvent" and event.type == "purchase":
            return (
                f"{error}: {reason} (another ticket with this id was imported before; the "
                "lines of one ticket must lie within ticket_window rows of each other)"
            )
        return f"{error}: {reason}"

    def _erased_column(self, event: Event, erased: str) -> str | None:
        """The column a line refused for an erased value names: ``Customer
        ID`` for the customer id; for the event id, the transaction column
        when the ticket's id derives from it, else none (the id derives from
        several cells: a ticket's customer and time, a line's content)."""
        if erased == "customer_id":
            return self.spelt[CUSTOMER]
        if erased == "event":
            transaction = event.data.get("transaction") or {}
            return None if event.type == "purchase" and "attr1" in transaction else ""
        return None

    def shown_customer(self, customer: str) -> str:
        """How a rejects line names ``customer``: by its keyed hash if the id
        was erased at the person's request.  O(len)."""
        if self.graph.suppressed(customer):
            return self.graph.state.suppression.customer_hash(customer)
        return customer

    def shown_ticket(self, ticket: _Ticket) -> str:
        """How a rejects line names a ticket: its transaction id, by its
        event id's keyed hash if that event was erased at the person's
        request, or the row of its first line when it has none."""
        if not ticket.transaction:
            return f"of row {ticket.rows[0]}"
        suppression = self.graph.state.suppression
        if suppression.events:
            hashed = suppression.event_hash(_transaction_id(ticket.transaction))
            if hashed in suppression.events:
                return hashed
        return repr(ticket.transaction)

    # ------------------------------------------------------------------ reading

    def run(self, window: int, bar: Progress, fast: PolarsRows | None) -> None:
        try:
            if fast is None:
                self.read_rows(self.table.rows(), window, bar, self.table.position)
            else:
                self.check_text = False  # the polars reader reads no file with a NUL
                self.read = len(fast)
                _Columns(self, fast, window).run()
                fast.finish()
        except FileFormatError:
            # Fix the file and import it again: what was read before the
            # unreadable row is recorded now, except the tickets still open
            # (within ticket_window rows of it), whose lines may go on past
            # it; recorded now, each would come back from the fixed file as
            # a different ticket under its own id.
            self.batches.flush()
            raise
        while self.open:
            self.close(self.open.popitem(last=False)[1])
        self.batches.flush()
        bar.update(self.table.position() if fast is None else fast.position())

    def read_rows(
        self,
        rows: Iterable[tuple[int, Sequence[str]]],
        window: int,
        bar: Progress,
        position: Callable[[], int],
    ) -> None:
        """Check every row; close each ticket once ``window`` rows have gone by."""
        width = len(self.table.header)
        for row, cells in rows:
            self.read += 1
            if row % 1024 == 0:
                bar.update(position())
            self.one_row(row, cells, width)
            self.close_before(row - window)

    def one_row(self, row: int, cells: Sequence[str], width: int) -> None:
        """Check one row of the file (its width first)."""
        width_problem = wrong_width(cells, width)
        if width_problem is not None:
            self.rejects.add(row, [("", "", width_problem)])
        else:
            self.line(row, cells)

    def close_before(self, row: int) -> None:
        """Close the open tickets whose last line is before ``row``: they
        are kept in the order of their last line, so these come first.  The
        first one's last line only moves forward (it is closed, or it gets
        a line and goes last), so the one found last time bounds it: most
        rows close nothing and look at no ticket.  O(1) amortised."""
        if self.front_last >= row:
            return
        open_tickets = self.open
        while open_tickets:
            first = next(iter(open_tickets.values()))
            if first.last_row >= row:
                self.front_last = first.last_row
                break
            self.close(open_tickets.popitem(last=False)[1])

    def time(self, text: str) -> datetime:
        at = self.chunk_times.get(text) or self.times.get(text)
        if at is None:
            at = _remember(self.times, text, parse_time(text, self.zone))
        return at

    def customer(self, text: str) -> str:
        customer = self.customers.get(text)
        if customer is None:
            customer = _remember(self.customers, text, check_customer_id(text))
        return customer

    # Small methods on purpose: besides reading better, tracemalloc (used by
    # the memory test) finds a line number per allocation by scanning the
    # function's line table, so long hot functions cost it dearly.

    def line(self, row: int, cells: Sequence[str]) -> None:
        """Check one line, and add it to its ticket or queue its event."""
        # Problems of any cell count against the line (and so its ticket).
        problems: list[Problem] = (
            text_problems(cells, self.table.header)
            if self.check_text and "\x00" in "".join(cells)  # one scan of the row
            else []
        )
        unnamed = unnamed_value(cells, self.unnamed)
        if unnamed is not None:
            problems.append(("", "", unnamed))
        at = self.time_cell(cells[self.p_time], problems)
        customer = self.customer_cell(cells[self.p_customer], problems)
        code = self.code_cell(cells[self.p_type], problems)
        name = cells[self.p_name].strip()
        if not name:
            self.mandatory(NAME, problems)
        if code == PURCHASE_CODE:
            self.purchase(row, cells, at, customer, name, problems)
        else:
            self.other(row, cells, at, customer, code, name, problems)

    def mandatory(self, column: str, problems: list[Problem]) -> None:
        spelt = self.spelt[column]
        problems.append((spelt, "", f"{spelt} is mandatory"))

    def time_cell(self, text: str, problems: list[Problem]) -> datetime | None:
        if not text.strip():
            self.mandatory(TIME, problems)
            return None
        try:
            return self.time(text)
        except ValueError as error:
            problems.append((self.spelt[TIME], text, str(error)))
            return None

    def customer_cell(self, text: str, problems: list[Problem]) -> str | None:
        if not text.strip():
            self.mandatory(CUSTOMER, problems)
            return None
        try:
            return self.customer(text)
        except IdentityGraphError as error:
            problems.append((self.spelt[CUSTOMER], text, str(error)))
            return None

    def code_cell(self, text: str, problems: list[Problem]) -> int | None:
        text = text.strip()
        if not text:
            self.mandatory(TYPE, problems)
        elif _CODE.fullmatch(text):
            return int(text)
        else:
            problems.append((self.spelt[TYPE], text, f"event type {text!r} is not a code number"))
        return None

    def number_cell(self, text: str, column: str, problems: list[Problem]) -> Decimal | None:
        number = self.numbers.get(text)
        if number is not None:
            return number
        if not text.strip():
            self.mandatory(column, problems)
            return None
        try:
            return _remember(self.numbers, text, parse_decimal(text, self.decimal_comma))
        except ValueError as error:
            problems.append((self.spelt[column], text, str(error)))
            return None

    def quantity_cell(self, text: str, problems: list[Problem]) -> int | None:
        quantity = self.quantities.get(text)
        if quantity is not None:
            return quantity
        if not text.strip():
            self.mandatory(NUM1, problems)
            return None
        try:
            return _remember(self.quantities, text, parse_whole(text, 0, self.decimal_comma))
        except ValueError as error:
            problems.append(
                (self.spelt[NUM1], text, f"{error} (the quantity: a whole number >= 0)")
            )
            return None

    @staticmethod
    def copy(cells: Sequence[str], columns: list[tuple[int, str]], into: dict[str, Any]) -> None:
        for position, key in columns:
            value = cells[position].strip()
            if value:
                into[key] = value

    def other(
        self,
        row: int,
        cells: Sequence[str],
        at: datetime | None,
        customer: str | None,
        code: int | None,
        name: str,
        problems: list[Problem],
    ) -> None:
        """Queue the event of a line that is not a purchase line, or reject it."""
        num1 = self.number_cell(cells[self.p_num1], NUM1, problems)
        num2 = self.number_cell(cells[self.p_num2], NUM2, problems)
        if problems or code is None or at is None or customer is None:
            self.rejects.add(row, problems)
            return
        data: dict[str, Any] = {"name": name, "num1": num1, "num2": num2}
        category = "" if self.p_category is None else cells[self.p_category].strip()
        if category:
            data["category"] = category
        self.copy(cells, self.item_columns, data)
        transaction: dict[str, Any] = {}
        txn = "" if self.p_transaction is None else cells[self.p_transaction].strip()
        if txn:
            transaction["attr1"] = txn
        self.copy(cells, self.transaction_columns, transaction)
        if transaction:
            data["transaction"] = FrozenMap(dict(sorted(transaction.items())))
        for _name, position, field in self.field_columns:
            value = cells[position].strip()
            if value:
                data[field] = value
        kind = self.types.get(str(code), f"offline_{code}")
        # No id: the ledger derives one from the content, so a re-import matches.
        self.batches.add_row(kind, at, customer, FrozenMap(data), [row])

    def purchase(
        self,
        row: int,
        cells: Sequence[str],
        at: datetime | None,
        customer: str | None,
        name: str,
        problems: list[Problem],
    ) -> None:
        """Add a purchase line to its ticket (its problems make the ticket bad)."""
        quantity = self.quantity_cell(cells[self.p_num1], problems)
        total = self.number_cell(cells[self.p_num2], NUM2, problems)
        txn = "" if self.p_transaction is None else cells[self.p_transaction].strip()
        ticket = self.ticket(row, txn, customer, at)
        if ticket is None:  # no way to tell which ticket the line belongs to
            self.rejects.add(row, problems)
            return
        self.agree(ticket, cells, customer, problems)
        if problems or quantity is None or total is None:
            ticket.problems[row] = problems
            return
        amount = exact_sum(ticket.amount, total)
        if amount is None:
            problems.append(
                (
                    self.spelt[NUM2],
                    cells[self.p_num2],
                    f"the ticket's amount would need more than {MONEY_DIGITS} significant "
                    "digits, the precision amounts are added at; it could not be kept exactly",
                )
            )
            ticket.problems[row] = problems
            return
        ticket.items.append(self.item(cells, name, quantity, total))
        ticket.amount = amount

    def ticket(
        self, row: int, txn: str, customer: str | None, at: datetime | None
    ) -> _Ticket | None:
        """The open ticket of a line (opened if new), or None without a key."""
        if txn:
            key: tuple[Any, ...] = ("t", txn)
        elif customer is not None and at is not None:
            key = ("c", customer, at)
        else:
            return None
        ticket = self.open.get(key)
        if ticket is None:
            ticket = self.open[key] = _Ticket(txn, customer, at)
        else:
            self.open.move_to_end(key)
        ticket.rows.append(row)
        ticket.last_row = row
        if at is not None and (ticket.at is None or at < ticket.at):
            ticket.at = at  # a ticket is as old as its first line
        return ticket

    def agree(
        self, ticket: _Ticket, cells: Sequence[str], customer: str | None, problems: list[Problem]
    ) -> None:
        """Check that a line agrees with its ticket on the customer and ticket-wide columns."""
        if customer is not None and ticket.customer is not None and customer != ticket.customer:
            problems.append(
                (
                    self.spelt[CUSTOMER],
                    self.shown_customer(customer),
                    f"ticket {self.shown_ticket(ticket)} belongs to customer "
                    f"{self.shown_customer(ticket.customer)!r} (row {ticket.rows[0]}); "
                    "one ticket has one customer",
                )
            )
        elif ticket.customer is None and customer is not None:
            ticket.customer = customer
        for column, position, field in self.field_columns:
            value = cells[position].strip()
            if value:
                known = ticket.fields.setdefault(field, value)
                if known != value:
                    problems.append((column, value, f"{column} is {known!r} on another line"))
        for position, key_name in self.transaction_columns:
            value = cells[position].strip()
            if value:
                known = ticket.fields.setdefault(f"transaction.{key_name}", value)
                if known != value:
                    column = self.table.header[position]
                    problems.append((column, value, f"{column} is {known!r} on another line"))

    def item(self, cells: Sequence[str], name: str, quantity: int, total: Decimal) -> FrozenMap:
        """One purchase line as an item of its ticket."""
        item: dict[str, Any] = {"sku": name, "quantity": quantity, "line_total": total}
        price = exact_unit_price(total, quantity)  # only an exact one: amounts stay exact
        if price is not None:
            item["unit_price"] = price
        category = "" if self.p_category is None else cells[self.p_category].strip()
        if category:
            item["category"] = category
        self.copy(cells, self.item_columns, item)
        return FrozenMap(item)

    def close(self, ticket: _Ticket) -> None:
        """Queue a complete ticket as one purchase event, or reject all its rows."""
        if ticket.customer is None or ticket.at is None:  # pragma: no cover - always a problem
            ticket.problems.setdefault(ticket.rows[0], [("", "", "no valid customer or time")])
        if ticket.problems:
            bad = min(ticket.problems)
            name = self.shown_ticket(ticket)
            for row in ticket.rows:
                self.rejects.add(
                    row,
                    ticket.problems.get(row)
                    or [
                        (
                            "",
                            "",
                            f"ticket {name} has a rejected line (row {bad}); a ticket is "
                            "imported whole or not at all",
                        )
                    ],
                )
            return
        assert ticket.customer is not None and ticket.at is not None
        data: dict[str, Any] = {
            "amount": ticket.amount,
            "items": tuple(ticket.items),
            "channel": "offline",
        }
        transaction = {}
        for field, value in ticket.fields.items():
            if field.startswith("transaction."):
                transaction[field[len("transaction.") :]] = value
            else:
                data[field] = value
        if ticket.transaction:
            transaction["attr1"] = ticket.transaction
        if transaction:
            data["transaction"] = FrozenMap(dict(sorted(transaction.items())))
        ticket_id = _ticket_id(ticket.transaction, ticket.customer, ticket.at)
        # A FrozenMap of plain values all the way down: the ledger keeps it as
        # it is instead of deep-copying it (ledger.FrozenMap).
        self.batches.add_row(
            "purchase", ticket.at, ticket.customer, FrozenMap(data), ticket.rows, ticket_id
        )


#: The sort key of what comes at the end of the file (the tickets still open).
_END = 1 << 62
#: The largest sum of a ticket's line totals, at their common exponent, that
#: is added in 64-bit integers (well within 2**63, and within 28 digits).
_SUM_BOUND = 1e17

# Where an event or rejects line comes in the order the Python reader makes
# them: (row, 0, 0) for a line's own, (closing row, 1, last row) for a
# ticket's, the closing row being the first row read more than
# ticket_window rows after its last line.
Place = tuple[int, int, int]


class _Deferred:
    """Stands in for a reader's batches and rejects while the Python path
    reads the rows the columns leave to it: each event and rejects line is
    kept with its :data:`Place`, to be merged with the columns' events."""

    def __init__(self) -> None:
        self.place: Place = (0, 0, 0)
        self.actions: list[tuple[Place, bool, tuple[Any, ...]]] = []

    def add_row(self, *args: Any) -> None:
        self.actions.append((self.place, True, args))

    def add(self, row: int, problems: list[Problem]) -> None:
        self.actions.append((self.place, False, (row, problems)))


class _Columns:
    """An import of a file polars has read, checked column by column.

    Every cell rule of the Python path is a polars expression here, over the
    whole file; a line that passes them all, in a ticket whose lines all
    pass, agree on the customer and ticket-wide columns, and follow each
    other within ``ticket_window`` rows, is built into its event from the
    columns.  Every other line — and every line of its ticket — goes through
    the Python path (:meth:`_Reader.line`), which writes its rejects lines
    as ever.  Both kinds of event are then recorded in the order the Python
    reader alone would record them, so the import is the same row for row.
    O(rows) in polars, plus O(events + items) Python objects.
    """

    def __init__(self, reader: _Reader, fast: PolarsRows, window: int) -> None:
        self.reader = reader
        self.fast = fast
        self.window = window
        self.decimals: dict[str, Decimal] = {}
        self.items: Any = None  # the distinct items of the tickets (tickets())
        self.ats: Any = None  # the distinct times of the tickets, sorted

    # ------------------------------------------------------------ the columns

    def run(self) -> None:
        import polars as pl

        reader = self.reader
        frame = self.checked(pl, self.fast.frame)
        read_rows = frame["row"].cast(pl.Int64)
        tickets, ticket_rows = self.tickets(pl, frame)
        others = frame.filter(~pl.col("_purchase") & pl.col("_ok"))
        slow = frame.filter(
            ~(~pl.col("_purchase") & pl.col("_ok")) & ~pl.col("row").is_in(ticket_rows.implode())
        )
        names = [f"c{i}" for i in range(len(reader.table.header))]
        widths = self.fast.widths
        slow_cells: list[Sequence[str]] = list(slow.select(names).rows())
        slow_rows: list[int] = slow["row"].to_list()
        for index, row in enumerate(slow_rows):
            if row in widths:
                slow_cells[index] = [""] * widths[row]
        actions = self.python_path(slow_rows, slow_cells, read_rows.to_list())
        # Place of each ticket: the first row read after its window.
        ends = read_rows.append(pl.Series([_END], dtype=pl.Int64))
        closing = ends.gather(
            read_rows.search_sorted(tickets["_last"].cast(pl.Int64) + self.window, side="right")
        )
        order = pl.concat(
            [
                others.select(
                    pl.col("row").alias("k1"),
                    pl.lit(0, pl.Int64).alias("k2"),
                    pl.lit(0, pl.Int64).alias("k3"),
                    pl.lit(False).alias("ticket"),
                    pl.int_range(pl.len(), dtype=pl.Int64).alias("index"),
                ),
                pl.DataFrame(
                    {
                        "k1": closing,
                        "k2": pl.Series([1] * tickets.height, dtype=pl.Int64),
                        "k3": tickets["_last"],
                        "ticket": pl.Series([True] * tickets.height),
                        "index": pl.Series(range(tickets.height), dtype=pl.Int64),
                    }
                ).with_columns(pl.col("k1", "k3").cast(pl.Int64)),
            ],
            how="vertical_relaxed",
        ).sort("k1", "k2", "k3")
        other_events = self.other_events(others)
        ticket_events = self.ticket_events(tickets)
        batches, rejects = reader.batches, reader.rejects
        pending = iter(actions)
        action = next(pending, None)
        for k1, k2, k3, is_ticket, index in order.iter_rows():
            while action is not None and action[0] < (k1, k2, k3):
                self.act(batches, rejects, action)
                action = next(pending, None)
            args = ticket_events[index] if is_ticket else other_events[index]
            batches.add_row(*args)
        while action is not None:
            self.act(batches, rejects, action)
            action = next(pending, None)

    @staticmethod
    def act(
        batches: EventBatches, rejects: Rejects, action: tuple[Place, bool, tuple[Any, ...]]
    ) -> None:
        _, event, args = action
        if event:
            batches.add_row(*args)
        else:
            rejects.add(*args)

    def checked(self, pl: Any, frame: Any) -> Any:
        """``frame`` with every cell read and checked: ``_at`` (µs UTC),
        ``_customer``, ``_code``, the numbers' columns, ``_purchase`` and
        ``_ok`` (every rule of the line's kind kept), null where the Python
        path would find a problem.  O(rows) in polars, plus one Python call
        per distinct time stamp or customer id polars cannot read."""
        reader = self.reader
        col = self.cell
        times = frame[f"c{reader.p_time}"]
        known = utc_micros(times, reader.zone)
        distinct = times.unique()
        rest = distinct.filter(~distinct.is_in(known["text"].implode()))
        extra_text, extra_us = [], []
        for text in rest.to_list():
            try:
                at = parse_time(text, reader.zone)
            except ValueError:
                continue
            extra_text.append(text)
            extra_us.append(micros(at))
        lookup_text = pl.concat([known["text"], pl.Series(extra_text, dtype=pl.String)])
        lookup_us = pl.concat([known["us"], pl.Series(extra_us, dtype=pl.Int64)])
        customer_text = pl.col(f"c{reader.p_customer}")
        customer_plain = (
            customer_text.str.contains("^[\\x00-\\x7f]*$")
            & col(reader.p_customer).str.len_chars().is_between(1, MAX_CUSTOMER_ID_LENGTH)
            & ~col(reader.p_customer).str.contains("[\\x00-\\x1f\\x7f]")
            & ~col(reader.p_customer).str.starts_with(ERASED_PREFIX)
        )
        odd = frame.filter(~customer_plain)[f"c{reader.p_customer}"].unique().to_list()
        odd_ids = {}
        for text in odd:
            with contextlib.suppress(IdentityGraphError):
                odd_ids[text] = check_customer_id(text)
        code = col(reader.p_type)
        code_digits = code.str.strip_chars_start("0")
        frame = frame.with_columns(
            pl.col(f"c{reader.p_time}")
            .replace_strict(lookup_text, lookup_us, default=None, return_dtype=pl.Int64)
            .alias("_at"),
            pl.when(customer_plain)
            .then(col(reader.p_customer))
            .otherwise(
                customer_text.replace_strict(
                    list(odd_ids), list(odd_ids.values()), default=None, return_dtype=pl.String
                )
            )
            .alias("_customer"),
            pl.when(code.str.contains("^[0-9]+$") & (code_digits.str.len_chars() <= INT64_DIGITS))
            .then(pl.when(code_digits == "").then(pl.lit("0")).otherwise(code_digits))
            .cast(pl.Int64, strict=False)
            .alias("_code"),
            col(reader.p_name).alias("_name"),
            *decimal_columns(col(reader.p_num1), reader.decimal_comma, "_n1"),
            *decimal_columns(col(reader.p_num2), reader.decimal_comma, "_n2"),
            *[col(p).alias(f"_s{p}") for p in self.copied()],
        ).with_columns(*whole_columns("_n1"), (pl.col("_code") == PURCHASE_CODE).alias("_purchase"))
        line_ok = (
            pl.col("_at").is_not_null()
            & pl.col("_customer").is_not_null()
            & pl.col("_code").is_not_null()
            & (pl.col("_name") != "")
            & ~pl.col("row").is_in(pl.Series(list(self.fast.widths), dtype=pl.Int64).implode())
        )
        for position in reader.unnamed:
            line_ok = line_ok & (col(position) == "")
        numbers_ok = (
            pl.when(pl.col("_purchase"))
            .then(pl.col("_n1whole").is_not_null() & pl.col("_n2unscaled").is_not_null())
            .otherwise(pl.col("_n1ok") & pl.col("_n2ok"))
        )
        return frame.with_columns((line_ok & numbers_ok).fill_null(False).alias("_ok"))

    @staticmethod
    def cell(position: int) -> Any:
        return stripped(f"c{position}")

    def copied(self) -> list[int]:
        """Positions of the cells an event copies (category, transaction id,
        item, transaction and ticket-wide columns), each once."""
        reader = self.reader
        positions = [reader.p_category, reader.p_transaction]
        positions += [p for p, _ in reader.item_columns]
        positions += [p for p, _ in reader.transaction_columns]
        positions += [p for _, p, _ in reader.field_columns]
        return sorted({p for p in positions if p is not None})

    def shared(self) -> list[int]:
        """Positions of the ticket-wide columns its lines must agree on."""
        reader = self.reader
        return [p for _, p, _ in reader.field_columns] + [p for p, _ in reader.transaction_columns]

    def tickets(self, pl: Any, frame: Any) -> tuple[Any, Any]:
        """The tickets whose every line is read from the columns, one row
        each (``_last``: the row of its last line), and the rows of their
        lines.  A ticket is left to the Python path when a line breaks a
        rule, when the customer or a ticket-wide column differs between its
        lines, when two of its lines are more than ``ticket_window`` rows
        apart (the Python path splits it), or when its amount is too large
        to add in 64-bit integers."""
        reader = self.reader
        txn = pl.col(f"_s{reader.p_transaction}") if reader.p_transaction is not None else None
        no_txn = (txn == "") if txn is not None else pl.lit(True)
        keyed = frame.filter(
            pl.col("_purchase")
            & (~no_txn | (pl.col("_customer").is_not_null() & pl.col("_at").is_not_null()))
        ).with_columns(
            (txn if txn is not None else pl.lit("")).alias("_k_txn"),
            pl.when(no_txn).then(pl.col("_customer")).alias("_k_customer"),
            pl.when(no_txn).then(pl.col("_at")).alias("_k_at"),
        )
        keys = ["_k_txn", "_k_customer", "_k_at"]
        shared = self.shared()
        # Agreement is checked per column; the Python path checks it per
        # field, which is the same when no two columns fill one field.
        fields = [field for _, _, field in reader.field_columns]
        fields += [f"transaction.{key}" for _, key in reader.transaction_columns]
        distinct_fields = len(set(fields)) == len(fields)
        agree = pl.lit(distinct_fields)
        for position in shared:
            value = pl.col(f"_s{position}")
            agree = agree & (value.filter(value != "").n_unique().over(keys) <= 1)
        emin = pl.min_horizontal(pl.col("_n2exp").min().over(keys), pl.lit(0, pl.Int64))
        keyed = keyed.with_columns(emin.alias("_emin"))
        scale = pl.lit(10, pl.Int64).pow(pl.col("_n2exp") - pl.col("_emin"))
        bound = (
            pl.col("_n2unscaled").abs().cast(pl.Float64)
            * pl.lit(10.0).pow((pl.col("_n2exp") - pl.col("_emin")).cast(pl.Float64))
        ).sum()
        keyed = keyed.with_columns(pl.col("row").diff().over(keys).fill_null(0).alias("_gap"))
        fits = (
            pl.col("_ok").all().over(keys)
            & (pl.col("_gap").max().over(keys) <= self.window)
            & (pl.col("_customer").n_unique().over(keys) == 1)
            & agree
            & (bound.over(keys) < _SUM_BOUND)
        )
        good = keyed.filter(fits.fill_null(False))
        # Items repeat (a product at a price): each distinct one is made once.
        good = good.with_columns(
            (pl.struct(self.item_cells()).rank("dense").cast(pl.Int64) - 1).alias("_item")
        )
        firsts = []
        for position in shared:
            value = pl.col(f"_s{position}")
            firsts.append(value.filter(value != "").first().alias(f"_v{position}"))
            firsts.append(pl.col("row").filter(value != "").first().alias(f"_r{position}"))
        tickets = good.group_by(keys, maintain_order=True).agg(
            pl.col("row").alias("_rows"),
            pl.col("row").last().alias("_last"),
            pl.col("_customer").first(),
            pl.col("_at").min(),
            pl.col("_emin").first(),
            (pl.col("_n2unscaled") * scale).sum().alias("_amount"),
            pl.col("_item"),
            *firsts,
        )
        plain = (pl.col("_k_txn") != "") & (
            pl.col("_k_txn").str.len_chars() <= MAX_EVENT_ID_LENGTH - len("offline:")
        )
        tickets = tickets.with_columns(
            pl.when(plain).then(pl.lit("offline:") + pl.col("_k_txn")).alias("_id"),
            (pl.col("_at").rank("dense").cast(pl.Int64) - 1).alias("_at_index"),
        )
        self.items = good.select("_item", *self.item_cells()).unique("_item").sort("_item")
        self.ats = tickets["_at"].unique().sort()
        return tickets, good["row"]

    # ------------------------------------------------------------ the events

    def decimal(self, text: str) -> Decimal:
        number = self.decimals.get(text)
        if number is None:
            number = _remember(self.decimals, text, Decimal(text))
        return number

    @staticmethod
    def instant(us: int) -> datetime:
        # Not cached: whole seconds in microseconds share their low bits,
        # which a dict of them would hash into long chains.
        return EPOCH + timedelta(microseconds=us)

    def item_cells(self) -> list[str]:
        """The columns an item is made of."""
        reader = self.reader
        names = ["_name", "_n1whole", "_n2text"]
        if reader.p_category is not None:
            names.append(f"_s{reader.p_category}")
        return names + [f"_s{p}" for p, _ in reader.item_columns]

    def item_maps(self) -> list[FrozenMap]:
        """Each distinct item of the tickets, as :meth:`_Reader.item` makes
        it.  O(distinct items)."""
        reader = self.reader
        keys = [key for _, key in reader.item_columns]
        if reader.p_category is not None:
            keys = ["category", *keys]
        decimal = self.decimal
        items = []
        for name, quantity, text, *extras in self.items.drop("_item").iter_rows():
            total = decimal(text)
            item: dict[str, Any] = {"sku": name, "quantity": quantity, "line_total": total}
            price = exact_unit_price(total, quantity)  # only an exact one
            if price is not None:
                item["unit_price"] = price
            for key, value in zip(keys, extras, strict=True):
                if value:
                    item[key] = value
            items.append(FrozenMap(item))
        return items

    def ticket_events(self, tickets: Any) -> list[tuple[Any, ...]]:
        """The ``add_row`` arguments of each ticket, as :meth:`_Reader.close`
        makes them.  O(tickets + items)."""
        reader = self.reader
        shared = self.shared()
        # The data fields and transaction keys in the order agree() meets
        # them; a transaction's keys are then sorted.
        field_keys = [field for _, _, field in reader.field_columns]
        field_keys += [f"transaction.{key}" for _, key in reader.transaction_columns]
        items = self.item_maps()
        ats = [EPOCH + timedelta(microseconds=us) for us in self.ats.to_list()]
        names = ("_k_txn", "_customer", "_at_index", "_id", "_emin", "_amount", "_rows", "_item")
        columns = [tickets[name].to_list() for name in names]
        values = [tickets[f"_v{p}"].to_list() for p in shared]
        firsts = [tickets[f"_r{p}"].to_list() for p in shared]
        pick = items.__getitem__
        events: list[tuple[Any, ...]] = []
        append = events.append
        for t, (txn, customer, at_index, ticket_id, emin, amount, rows, item_ids) in enumerate(
            zip(*columns, strict=True)
        ):
            data: dict[str, Any] = {
                "amount": Decimal(amount).scaleb(emin),
                "items": tuple(map(pick, item_ids)),
                "channel": "offline",
            }
            found = [
                (firsts[i][t], i, field_keys[i], values[i][t])
                for i in range(len(shared))
                if values[i][t] is not None
            ]
            if len(found) > 1:
                found.sort()  # by row, then column
            transaction = {}
            for _, _, field, value in found:
                if field.startswith("transaction."):
                    transaction[field[len("transaction.") :]] = value
                else:
                    data[field] = value
            if txn:
                transaction["attr1"] = txn
            if transaction:
                data["transaction"] = FrozenMap(dict(sorted(transaction.items())))
            at = ats[at_index]
            if ticket_id is None:
                ticket_id = _ticket_id(txn, customer, at)
            append(("purchase", at, customer, FrozenMap(data), rows, ticket_id))
        return events

    def other_events(self, others: Any) -> list[tuple[Any, ...]]:
        """The ``add_row`` arguments of each line that is not a purchase, as
        :meth:`_Reader.other` makes them.  O(lines)."""
        reader = self.reader
        decimal = self.decimal
        kinds: dict[int, str] = {}
        category = (
            others[f"_s{reader.p_category}"].to_list() if reader.p_category is not None else None
        )
        txns = (
            others[f"_s{reader.p_transaction}"].to_list()
            if reader.p_transaction is not None
            else None
        )
        items = [(others[f"_s{p}"].to_list(), key) for p, key in reader.item_columns]
        attrs = [(others[f"_s{p}"].to_list(), key) for p, key in reader.transaction_columns]
        fields = [(others[f"_s{p}"].to_list(), field) for _, p, field in reader.field_columns]
        events: list[tuple[Any, ...]] = []
        for i, (row, us, customer, code, name, num1, num2) in enumerate(
            others.select(
                "row", "_at", "_customer", "_code", "_name", "_n1text", "_n2text"
            ).iter_rows()
        ):
            data: dict[str, Any] = {"name": name, "num1": decimal(num1), "num2": decimal(num2)}
            if category is not None and category[i]:
                data["category"] = category[i]
            for column, key in items:
                if column[i]:
                    data[key] = column[i]
            transaction: dict[str, Any] = {}
            if txns is not None and txns[i]:
                transaction["attr1"] = txns[i]
            for column, key in attrs:
                if column[i]:
                    transaction[key] = column[i]
            if transaction:
                data["transaction"] = FrozenMap(dict(sorted(transaction.items())))
            for column, field in fields:
                if column[i]:
                    data[field] = column[i]
            kind = kinds.get(code)
            if kind is None:
                kind = kinds[code] = reader.types.get(str(code), f"offline_{code}")
            events.append((kind, self.instant(us), customer, FrozenMap(data), [row]))
        return events

    # ------------------------------------------------------------ the rest

    def python_path(
        self, rows: list[int], cells: list[Sequence[str]], read: list[int]
    ) -> list[tuple[Place, bool, tuple[Any, ...]]]:
        """The events and rejects lines of the rows the columns leave to the
        Python path, each with its place.  No ticket of these rows has a
        line among the others (they are grouped by the same key), so the
        open tickets are these rows' alone; a ticket closes when the Python
        reader would close it, the first row read past its window."""
        reader = self.reader
        deferred = _Deferred()
        saved = reader.batches, reader.rejects
        reader.batches = reader.rejects = deferred  # type: ignore[assignment]
        window, width = self.window, len(reader.table.header)

        def close_before(limit: int) -> None:
            open_tickets = reader.open
            while open_tickets:
                first = next(iter(open_tickets.values()))
                if first.last_row >= limit:
                    break
                end = bisect_right(read, first.last_row + window)
                deferred.place = (read[end] if end < len(read) else _END, 1, first.last_row)
                reader.close(open_tickets.popitem(last=False)[1])

        try:
            for row, line in zip(rows, cells, strict=True):
                before = bisect_left(read, row)
                if before:
                    close_before(read[before - 1] - window)
                deferred.place = (row, 0, 0)
                reader.one_row(row, line, width)
                close_before(row - window)
            close_before(_END)
        finally:
            reader.batches, reader.rejects = saved
        return deferred.actions
