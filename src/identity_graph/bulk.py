"""Event tables checked per column: what ``IdentityGraph.record_table`` records.

A table is a polars DataFrame, an object with ``to_pydict()`` (a pyarrow
Table) or a mapping of equal-length columns.  Its columns are ``type`` and
``at`` (required), ``id``, ``customer_id``, ``data`` and one per link name
the graph knows; row ``i`` stands for the event
``Event(type, at=at, customer_id=customer_id, links=(Link(name, value) for
each link column whose cell is neither None nor "", in column order),
data=data or {}, id=id)``.

Everything that does not depend on the graph's state is checked here, once
per column rather than once per event: a type, a customer id and a link
value once per *distinct* value (a backfill repeats them), times and ids
per cell with the cheap test of the common case, data frozen once (the
per-event door does not walk it again).  A row that passes every check is
*plain* and the facade files it from these parts; any other row (a fault,
a value to log, a refusal) takes the per-event path, which gives it
exactly the answer, the log entry and the error ``record`` would.  So the
checks here only need to be right when they say yes.

polars is imported only when the table is a polars DataFrame.  O(rows +
distinct values × their check).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import IdentityGraphError, InvalidEvent
from .events import (
    MAX_DATA_DEPTH,
    Event,
    FrozenMap,
    check_purchase_data,
    data_keeps_rules,
    event_id_ok,
    event_type_ok,
    freeze_data,
)
from .ids import CustomerId, Link, LinkKey, LinkTypes, check_customer_id
from .times import EPOCH, utc

__all__ = ["COLUMNS", "EventRows", "read_table"]

#: The columns every event table may have, besides one per link name.
COLUMNS = ("type", "at", "id", "customer_id", "data")
_REQUIRED = ("type", "at")

_NO_KEYS: tuple[LinkKey, ...] = ()
_NO_LINKS: tuple[Link, ...] = ()


def _column_list(name: str, column: Any) -> list[Any]:
    """One column of a mapping table as a list; ValueError if it is no sequence."""
    if type(column) is list:
        return column
    if isinstance(column, str | bytes | Mapping) or not hasattr(column, "__len__"):
        raise ValueError(
            f"record_table: column {name!r} is a {type(column).__name__}; a column is a "
            "sequence of values, one per row"
        )
    to_list = getattr(column, "to_list", None)  # a polars Series, a pyarrow array
    if callable(to_list):
        return list(to_list())
    return list(column)


def _polars_columns(table: Any) -> dict[str, list[Any]]:
    """A polars DataFrame's columns as lists; a Datetime column with a time
    zone converted to UTC in polars (its cells become UTC datetimes)."""
    import polars as pl

    columns: dict[str, list[Any]] = {}
    for name in table.columns:
        series = table.get_column(name)
        dtype = series.dtype
        if name == "at" and isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            micros = series.dt.epoch("us").to_list()
            try:
                columns[name] = [
                    None if us is None else EPOCH + timedelta(microseconds=us) for us in micros
                ]
                continue
            except OverflowError:  # beyond Python's calendar: polars' own values, refused per row
                pass
        if name == "data" and isinstance(dtype, pl.Struct):
            frozen = _frozen_struct(series)
            columns[name] = frozen if frozen is not None else _without_nulls(series.to_list())
            continue
        columns[name] = series.to_list()
    return columns


#: Text that keeps the text rule by construction: ASCII without NUL (what
#: ``freeze_data`` marks clean).  Anything else is left to the door's walk.
_NOT_PLAIN_TEXT = r"[^\x01-\x7f]"


def _without_nulls(value: Any) -> Any:
    """A struct column's Python values with the null fields of every
    mapping left out, at any depth (see :func:`_field_values`).  O(cells)."""
    if type(value) is dict:
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if type(value) is list:
        return [_without_nulls(v) for v in value]
    return value


def _frozen_struct(series: Any) -> list[Any] | None:
    """A polars ``Struct`` data column as the frozen data of each row (None
    for a null row): what ``freeze_data`` makes of ``series.to_list()``,
    built field by field — each field's values come out of polars as one
    list, a ``List`` field's elements as one flat list cut per row — instead
    of one Python dict per row and a walk of each.  Marked clean (no second
    walk at the door) only when no field name or string anywhere in the
    column leaves plain ASCII without NUL.  None for a field type this does
    not handle (a time, binary…): the column then takes the per-row path.
    O(cells)."""
    return _field_values(series, 1, [])


#: FrozenMap's slots set directly: a table's data builds a million of them.
_new_map = FrozenMap.__new__
_set_data: Callable[[FrozenMap, dict[str, Any]], None] = vars(FrozenMap)["_data"].__set__
_set_clean: Callable[[FrozenMap, bool], None] = vars(FrozenMap)["_clean"].__set__


def _field_values(series: Any, depth: int, texts: list[bool]) -> list[Any] | None:
    """The values of one polars column as frozen data values, None if a
    type is not handled.  ``texts`` gets True for any name or string that
    is not plain ASCII without NUL.  ``depth`` is the nesting level of the
    column's values (the data mapping is level 1)."""
    import polars as pl

    dtype = series.dtype
    if isinstance(dtype, pl.Struct):
        if depth > MAX_DATA_DEPTH:
            return None
        names = [field.name for field in dtype.fields]
        texts.append(not "".join(names).isascii() or "\x00" in "".join(names))
        fields = []
        for name in names:
            values = _field_values(series.struct.field(name), depth + 1, texts)
            if values is None:
                return None
            fields.append(values)
        # The data mapping is clean when nothing in the column, its nested
        # fields included (converted above), leaves plain ASCII without NUL.
        clean = depth == 1 and not any(texts)
        # A struct has every field in every row: a key some rows lack is
        # null there.  Null is read as absent (polars cannot tell the two
        # apart), so the rows are the mappings given as plain dicts.
        gaps = any(series.struct.field(name).null_count() for name in names)
        rows: list[FrozenMap | None] = []
        # Without strict=: polars gives every field one value per row, and
        # the check would cost a tenth of the conversion.
        for row in zip(*fields):  # noqa: B905
            frozen = _new_map(FrozenMap)  # FrozenMap(...) without its __init__'s frame
            if gaps:
                _set_data(frozen, {k: v for k, v in zip(names, row) if v is not None})  # noqa: B905
            else:
                _set_data(frozen, dict(zip(names, row)))  # noqa: B905
            _set_clean(frozen, clean)
            rows.append(frozen)
        if series.null_count():
            rows = [None if null else row for row, null in zip(rows, series.is_null(), strict=True)]
        return rows
    if isinstance(dtype, pl.List):
        if depth > MAX_DATA_DEPTH:
            return None
        lengths = series.list.len().to_list()
        flat = _field_values(series.filter(series.list.len() > 0).explode(), depth + 1, texts)
        if flat is None:
            return None
        lists: list[Any] = []
        position = 0
        for length in lengths:
            if length is None:
                lists.append(None)
            else:
                lists.append(tuple(flat[position : position + length]))
                position += length
        return lists
    if dtype == pl.String:
        texts.append(bool(series.str.contains(_NOT_PLAIN_TEXT).any()))
        return list(series.to_list())
    if dtype.is_integer() or dtype.is_float() or dtype in (pl.Boolean, pl.Null, pl.Date):
        return list(series.to_list())
    if isinstance(dtype, pl.Decimal):
        return list(series.to_list())
    return None


def _is_polars(table: Any) -> bool:
    return type(table).__module__.split(".")[0] == "polars" and hasattr(table, "get_column")


def read_table(table: Any, link_names: tuple[str, ...]) -> dict[str, list[Any]]:
    """The table's columns as lists, in the table's order, checked as a
    table: every name known, ``type`` and ``at`` present, one value per
    row in every column.  ``ValueError`` naming the column and the rule;
    ``TypeError`` for something that is not a table.  O(rows) to copy."""
    if _is_polars(table):
        columns = _polars_columns(table)
    else:
        if not isinstance(table, Mapping) and callable(getattr(table, "to_pydict", None)):
            table = table.to_pydict()
        if not isinstance(table, Mapping):
            raise TypeError(
                f"record_table: {type(table).__name__} is not a table; give a polars "
                "DataFrame, a pyarrow Table or a mapping of column name to values"
            )
        columns = {}
        for name, column in table.items():
            if type(name) is not str:
                raise ValueError(f"record_table: column name {name!r} is not a string")
            columns[name] = column
    accepted = (*COLUMNS, *link_names)
    for name in columns:
        if name not in accepted:
            raise ValueError(
                f"record_table: unknown column {name!r}; the columns are {', '.join(COLUMNS)} "
                f"and one per link name of the graph ({', '.join(link_names)}; configure "
                "another with IdentityGraph(link_types=...))"
            )
    for name in _REQUIRED:
        if name not in columns:
            raise ValueError(
                f"record_table: the table has no {name!r} column; every event needs a type "
                "and a time"
            )
    lists = {name: _column_list(name, column) for name, column in columns.items()}
    rows = len(lists["type"])
    for name, values in lists.items():
        if len(values) != rows:
            raise ValueError(
                f"record_table: column {name!r} has {len(values):,} values but column 'type' "
                f"has {rows:,}; every column holds one value per row"
            )
    return lists


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


class EventRows:
    """The rows of an event table, checked by everything that does not
    depend on the graph's state.

    ``plain[i]`` is 1 when row ``i`` passed (``kinds``, ``ats``, ``ids``,
    ``data``, ``links`` and ``link_anchor`` then hold its checked parts;
    its customer id is ``checked_customer(raw)``); a row marked 0 takes the
    per-event path with :meth:`event`, or is refused with ``broken[i]`` when
    it cannot even be an :class:`Event`.
    """

    def __init__(
        self,
        columns: dict[str, list[Any]],
        types: LinkTypes,
        erased: Callable[[LinkKey], bool] | None = None,
    ) -> None:
        rows = len(columns["type"])
        self.rows = rows
        none = [None] * rows
        self.raw_types = columns["type"]
        self.ats: list[Any] = columns["at"]
        self.ids: list[Any] = columns.get("id", none)
        self.customers: list[Any] = columns.get("customer_id", none)
        self._raw_data: list[Any] = columns.get("data", none)
        self._link_columns = [
            (name, values) for name, values in columns.items() if name not in COLUMNS
        ]
        self.plain = bytearray(b"\x01") * rows
        self.broken: dict[int, IdentityGraphError] = {}
        self.kinds: list[str | None] = [None] * rows
        self._customers: dict[Any, CustomerId | None] = {}
        self._check_links(types, erased)
        self._check_data()
        self._check_kinds()
        self._check_times_ids()
        self._check_customers()

    # ------------------------------------------------------------------ columns

    def _check_links(self, types: LinkTypes, erased: Callable[[LinkKey], bool] | None) -> None:
        """Each distinct (name, value) normalised once; per row the sorted
        distinct keys, their ``Link`` objects and the link an event without
        customer id is anchored on.  A cell that cannot be a ``Link`` (not
        text) makes the row broken, as the constructor would refuse it.
        A value whose key ``erased`` says was erased leaves the
        normalisation cache at once: the row may be refused before its
        links are looked at again (a broken row, an erased customer id)."""
        rows, plain, broken = self.rows, self.plain, self.broken
        found: list[list[LinkKey] | None] = [None] * rows
        for name, values in self._link_columns:
            keys: dict[str, LinkKey | None] = {}
            for i, value in enumerate(values):
                if value is None or value == "":
                    continue
                if type(value) is not str:
                    if not isinstance(value, str) and i not in broken:
                        broken[i] = _link_error(name, value)
                    plain[i] = 0  # (a str subclass: the per-event path keeps it as given)
                    continue
                key = keys.get(value, _UNSEEN)
                if key is _UNSEEN:
                    key = keys[value] = _key(types, name, value)
                    if key is not None and erased is not None and erased(key):
                        types.forget_recent(Link(name, value))
                if key is None:  # invalid or blocked: logged per row by the per-event path
                    plain[i] = 0
                    continue
                held = found[i]
                if held is None:
                    found[i] = [key]
                elif key not in held:
                    held.append(key)
        link_of: dict[LinkKey, Link] = {}
        by_keys: dict[tuple[LinkKey, ...], tuple[tuple[Link, ...], LinkKey]] = {}
        priority = types.priority_key
        self.keys: list[tuple[LinkKey, ...]] = [_NO_KEYS] * rows
        self.links: list[tuple[Link, ...]] = [_NO_LINKS] * rows
        self.link_anchor: list[LinkKey | None] = [None] * rows
        for i, held in enumerate(found):
            if held is None:
                continue
            ordered = tuple(sorted(held))
            known = by_keys.get(ordered)
            if known is None:
                links = []
                for key in ordered:
                    link = link_of.get(key)
                    if link is None:
                        link = link_of[key] = Link(key[0], key[1])
                    links.append(link)
                if len(ordered) == 1:
                    anchor = ordered[0]
                else:
                    anchor = min(ordered, key=lambda key: (priority(key[0]), key[1]))
                known = by_keys[ordered] = (tuple(links), anchor)
            self.keys[i] = ordered
            self.links[i], self.link_anchor[i] = known

    def _check_data(self) -> None:
        """Each cell frozen once, as ``Event`` freezes it; a cell that cannot
        be data makes the row broken (after a link error, as the constructor
        converts links first)."""
        empty = freeze_data({})
        plain, broken = self.plain, self.broken
        data: list[FrozenMap] = [empty] * self.rows
        for i, value in enumerate(self._raw_data):
            if value is None:
                continue
            if type(value) is FrozenMap:
                frozen = value
            else:
                try:
                    frozen = freeze_data(value)
                except InvalidEvent as error:
                    broken.setdefault(i, error)
                    plain[i] = 0
                    continue
            if not data_keeps_rules(frozen):
                plain[i] = 0
            data[i] = frozen
        self.data = data

    def _check_kinds(self) -> None:
        """Each distinct type once; a purchase's data checked as a purchase."""
        kinds: dict[Any, str | None] = {}
        plain, data, out = self.plain, self.data, self.kinds
        for i, kind in enumerate(self.raw_types):
            if type(kind) is not str and not _hashable(kind):
                plain[i] = 0
                continue
            checked = kinds.get(kind, _UNSEEN)
            if checked is _UNSEEN:
                checked = kinds[kind] = kind.strip() if event_type_ok(kind) else None
            if checked is None:
                plain[i] = 0
                continue
            out[i] = checked
            if checked == "purchase" and plain[i]:
                try:
                    check_purchase_data(data[i], "purchase")
                except InvalidEvent:
                    plain[i] = 0  # the per-event path names the event in the message

    def _check_times_ids(self) -> None:
        plain = self.plain
        for i, at in enumerate(self.ats):
            if not (type(at) is datetime and at.tzinfo is UTC and 1 < at.year < 9999):
                try:
                    utc(at)
                except (TypeError, ValueError):
                    plain[i] = 0
        for i, event_id in enumerate(self.ids):
            if event_id is not None and not event_id_ok(event_id):
                plain[i] = 0

    def _check_customers(self) -> None:
        """Each distinct customer id checked once; a row with neither a
        customer id nor a valid link is left to the per-event path."""
        checked = self._customers
        plain, keys = self.plain, self.keys
        for i, raw in enumerate(self.customers):
            if raw is None:
                if not keys[i]:
                    plain[i] = 0
                continue
            if type(raw) is not str:
                plain[i] = 0  # refused (or raised) by the per-event path
                continue
            found = checked.get(raw, _UNSEEN)
            if found is _UNSEEN:
                found = checked[raw] = _customer(raw)
            if found is None:
                plain[i] = 0

    # ------------------------------------------------------------------ rows

    def checked_customer(self, raw: str) -> CustomerId:
        """The checked form of a plain row's customer id.  O(1)."""
        customer = self._customers[raw]
        assert customer is not None
        return customer

    def event(self, i: int) -> Event:
        """Row ``i`` as the ``Event`` it stands for (not for a broken row)."""
        links = tuple(
            Link(name, values[i])
            for name, values in self._link_columns
            if values[i] is not None and values[i] != ""
        )
        data = self._raw_data[i]
        return Event(
            self.raw_types[i],
            at=self.ats[i],
            customer_id=self.customers[i],
            links=links,
            data=self.data[i] if data is not None else {},
            id=self.ids[i],
        )

    def time(self, i: int, now: Callable[[], datetime]) -> datetime:
        """Row ``i``'s time as a UTC instant, or ``now()`` if it has no valid one."""
        try:
            return utc(self.ats[i])
        except (TypeError, ValueError):
            return now()


_UNSEEN: Any = object()


def _key(types: LinkTypes, name: str, value: str) -> LinkKey | None:
    """The key of a link value, or None if it is invalid or blocked."""
    try:
        return types.key(Link(name, value))
    except (IdentityGraphError, ValueError):
        return None


def _customer(raw: str) -> CustomerId | None:
    try:
        return check_customer_id(raw)
    except IdentityGraphError:
        return None


def _link_error(name: str, value: object) -> IdentityGraphError:
    """What ``Link(name, value)`` raises for a value that is not text."""
    try:
        Link(name, value)  # type: ignore[arg-type]
    except IdentityGraphError as error:
        return error
    raise AssertionError(f"Link({name!r}, {value!r}) was accepted")  # pragma: no cover
