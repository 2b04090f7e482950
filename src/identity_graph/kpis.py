"""Omnichannel indicators and RFM segmentation from purchase events.

One pass groups the purchases at or before ``as_of`` by the profile each one
belongs to (the ledger's attribution: links over time, then merges); each
profile's purchases are sorted once by ``(at, id)``, so every window is a
bisection, and the RFM ranks of a window come from sorting each measure once
over the profiles that bought in it.  Cost: O(p log p) for p purchases plus
O(q log q) per window for the q profiles with purchases in it — never a
query per profile per indicator.

Money is :class:`decimal.Decimal` from end to end; nothing passes through
``float`` arithmetic.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

from . import history as hist
from .ids import Link
from .purchases import KINDS, WINDOW_KINDS, plain_data, ticket_strings, ticket_value, whole

if TYPE_CHECKING:
    from .events import Event
    from .graph import IdentityGraph, Ref
    from .journal import ProfileId

__all__ = [
    "ENGINES",
    "ICOMMKT_NAMES",
    "INDICATORS",
    "NAMINGS",
    "WINDOWS",
    "Indicator",
    "indicator_text",
    "rfm_group",
    "rfm_segment",
    "write_csv",
]

#: Window lengths in days; each window is ``(as_of - W days, as_of]``.
WINDOWS = (30, 60, 90, 180, 360)
_PERIODS: tuple[int | None, ...] = (*WINDOWS, None)  # None: Total


@attrs.frozen
class Indicator:
    """One indicator: its name, the Python type of its value, its definition."""

    name: str
    type: str
    definition: str


def _window_name(measure: str, days: int | None) -> str:
    return f"Total_{measure}" if days is None else f"{measure}_{days}_Days"


_WINDOW_MEASURES = (
    ("Items", "int", "sum of the items' quantities"),
    ("Brands", "int", "number of distinct item brands"),
    ("Categories", "int", "number of distinct item categories"),
    ("Purchases", "int", "number of purchases (tickets)"),
    ("Value", "Decimal", "sum of the purchases' amounts"),
    ("Average_Value", "Decimal | None", "Value / Purchases; None without a purchase"),
    ("RFM", "str | None", "three-digit R, F, M code; None without a purchase"),
    ("Promo_Codes", "tuple[str, ...]", "sorted distinct promo codes"),
    ("Stores", "tuple[str, ...]", "sorted distinct store codes"),
)
_LAST_FIELDS = (
    ("Payment_Methods", "payment_methods"),
    ("Shipping_Methods", "shipping_methods"),
    ("Items", "sku"),
    ("Brands", "brand"),
    ("Categories", "category"),
    ("Sellers", "seller"),
    ("Stores", "store"),
    ("Promo_Codes", "promo_codes"),
)


def _indicators() -> tuple[Indicator, ...]:
    found = [
        Indicator("First_Purchase_Date", "datetime | None", "time of the first purchase"),
        Indicator("Last_Purchase_Date", "datetime | None", "time of the latest purchase"),
        Indicator(
            "Days_Since_First_Purchase",
            "int | None",
            "whole days (floor) from the first purchase to as_of",
        ),
        Indicator(
            "Days_Since_Last_Purchase",
            "int | None",
            "whole days (floor) from the latest purchase to as_of",
        ),
        Indicator("Last_Purchase_Amount", "Decimal | None", "amount of the latest purchase"),
    ]
    for days in _PERIODS:
        span = "all purchases at or before as_of" if days is None else f"the last {days} days"
        for measure, kind, definition in _WINDOW_MEASURES:
            found.append(Indicator(_window_name(measure, days), kind, f"{definition}, {span}"))
    for name, field in _LAST_FIELDS:
        found.append(
            Indicator(
                f"Last_Purchase_{name}",
                "tuple[str, ...]",
                f"sorted distinct {field} values of the latest purchase",
            )
        )
    found.append(Indicator("RFM_Segment", "str | None", "segment of Total_RFM's R and F"))
    found.append(Indicator("RFM_Group", "str | None", "coarser group of RFM_Segment"))
    return tuple(found)


#: Every indicator, in the column order of :func:`write_csv`.
INDICATORS: tuple[Indicator, ...] = _indicators()

#: The names the omnichannel platform's profile record prints the
#: indicators under: ``ICOMMKT_`` before each name, except ``RFM_Group`` and
#: ``RFM_Segment``, which it prints bare.  Indicator name -> column name, in
#: the order of :data:`INDICATORS`.
ICOMMKT_NAMES: Mapping[str, str] = MappingProxyType(
    {
        indicator.name: (
            indicator.name
            if indicator.name in ("RFM_Group", "RFM_Segment")
            else f"ICOMMKT_{indicator.name}"
        )
        for indicator in INDICATORS
    }
)

#: The column names :func:`write_csv` can give the indicators: ``"plain"``
#: (the indicators' own names) or ``"icommkt"`` (:data:`ICOMMKT_NAMES`).
NAMINGS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "plain": MappingProxyType({indicator.name: indicator.name for indicator in INDICATORS}),
        "icommkt": ICOMMKT_NAMES,
    }
)

_SEGMENTS = {
    **{f"{r}{f}": "Hibernating" for r in "12" for f in "12"},
    **{f"{r}{f}": "At Risk" for r in "12" for f in "34"},
    **{f"{r}5": "Can't Lose Them" for r in "12"},
    **{f"3{f}": "About To Sleep" for f in "12"},
    "33": "Need Attention",
    **{f"{r}{f}": "Loyal Customers" for r in "34" for f in "45"},
    "41": "Promising",
    "51": "New Customers",
    **{f"{r}{f}": "Potential Loyalists" for r in "45" for f in "23"},
    **{f"5{f}": "Champions" for f in "45"},
}

#: The documented coarser grouping of the segments (docs/indicators.md).
GROUPS = {
    "Champions": "Best",
    "Loyal Customers": "Best",
    "Potential Loyalists": "Promising",
    "New Customers": "Promising",
    "Promising": "Promising",
    "Need Attention": "Needs Attention",
    "About To Sleep": "Needs Attention",
    "At Risk": "At Risk",
    "Can't Lose Them": "At Risk",
    "Hibernating": "Lost",
}


def rfm_segment(code: str | None) -> str | None:
    """The segment of an RFM code by its R and F digits."""
    return None if code is None else _SEGMENTS[code[:2]]


def rfm_group(code: str | None) -> str | None:
    """The coarser group of an RFM code's segment."""
    segment = rfm_segment(code)
    return None if segment is None else GROUPS[segment]


# --------------------------------------------------------------------- purchases


class _Ticket(NamedTuple):
    """What the window indicators need of one purchase, read once.

    A tuple, not a frozen attrs class: a million of them are built per call.
    The latest-ticket lists are read from ``event`` for the latest one only.
    """

    at: datetime
    id: str
    amount: Decimal
    quantity: int
    brands: frozenset[str]
    categories: frozenset[str]
    promo_codes: frozenset[str]
    stores: frozenset[str]
    event: Event


_NOTHING: frozenset[str] = frozenset()


def _ticket(event: Event, at: datetime) -> _Ticket:
    """``at`` is the event's time in UTC (the ledger's index key)."""
    data = plain_data(event.data)
    items = [plain_data(item) for item in data.get("items") or ()]
    quantity = 0
    for item in items:
        quantity += whole(item.get("quantity", 1))
    families: tuple[set[str], ...] = tuple(set() for _ in WINDOW_KINDS)
    for kind, name in ticket_strings(data, items):
        if kind < len(WINDOW_KINDS):
            families[kind].add(name)
    brands, categories, promo, stores = (frozenset(f) if f else _NOTHING for f in families)
    assert event.id is not None
    return _Ticket(
        at,
        event.id,
        ticket_value(data, items),
        quantity,
        brands,
        categories,
        promo,
        stores,
        event,
    )


def _last_fields(event: Event) -> dict[str, tuple[str, ...]]:
    """The ``Last_Purchase_*`` lists of the latest ticket."""
    data = plain_data(event.data)
    found: dict[str, set[str]] = {name: set() for name in KINDS}
    for kind, name in ticket_strings(data, [plain_data(i) for i in data.get("items") or ()]):
        found[KINDS[kind]].add(name)
    return {name: tuple(sorted(names)) for name, names in found.items()}


def _purchases_by_profile(graph: IdentityGraph, as_of: datetime) -> dict[ProfileId, list[_Ticket]]:
    """Every purchase at or before ``as_of``, grouped by the profile it belongs to."""
    ledger = graph._ledger
    events = ledger._events
    partition = graph._partition
    grouped: dict[Any, list[_Ticket]] = {}
    for anchor, index in ledger._by_anchor.items():
        on_customer = isinstance(anchor, str)
        history = None
        tickets: list[_Ticket] = []
        if isinstance(anchor, str):
            if anchor not in graph._order:
                continue  # a later customer, seen through an as_of() view's shared ledger
            tickets = grouped.setdefault(partition.profile_id(anchor), [])
        else:
            history = graph._history.get(anchor)
        for at, event_id in index:
            if at > as_of:
                break  # the index is sorted by time
            event = events[event_id]
            if event.type != "purchase":
                continue
            if not on_customer:  # a link's events follow its owner at their time
                owner = hist.owner_at(history, at)
                profile = anchor if owner is None else partition.profile_id(owner)
                tickets = grouped.setdefault(profile, [])
            tickets.append(_ticket(event, at))
    result: dict[ProfileId, list[_Ticket]] = {}
    for profile, found in grouped.items():
        if found:
            found.sort(key=lambda t: (t.at, t.id))
            result[Link(*profile) if isinstance(profile, tuple) else profile] = found
    return result


# --------------------------------------------------------------------- indicators


def _days(delta: timedelta) -> int:
    return delta.days  # whole days, floored: timedelta keeps days floored


_DAY_NAMES = {
    days: {measure: _window_name(measure, days) for measure, _, _ in _WINDOW_MEASURES}
    for days in _PERIODS
}
#: Per period, the indicator names in the order _windows() fills them.
_PERIOD_NAMES = {
    days: tuple(_window_name(measure, days) for measure, _, _ in _WINDOW_MEASURES)
    for days in _PERIODS
}


def _windows(
    row: dict[str, Any], tickets: list[_Ticket], starts: list[datetime]
) -> list[int | None]:
    """Fill the window indicators of one profile in a single pass, newest
    ticket first: the windows are nested, so each one's totals are the
    running totals when the pass crosses its start (``starts[i]`` is
    ``as_of - WINDOWS[i]`` days; a window is ``(start, as_of]``).  Returns
    the periods in which the profile has a purchase.  O(k) for k tickets,
    plus the sizes of the distinct sets at each boundary."""
    brands: set[str] = set()
    categories: set[str] = set()
    promo: set[str] = set()
    stores: set[str] = set()
    items = count = 0
    value = Decimal(0)
    bought: list[int | None] = []
    values: tuple[Any, ...] = (0, 0, 0, 0, Decimal(0), None, None, (), ())
    changed = False

    def close(days: int | None) -> None:
        nonlocal values, changed
        if changed:  # else the previous (smaller) window's values still hold
            values = (
                items,
                len(brands),
                len(categories),
                count,
                value,
                value / count,
                None,
                tuple(sorted(promo)) if promo else (),
                tuple(sorted(stores)) if stores else (),
            )
            changed = False
        for name, item in zip(_PERIOD_NAMES[days], values, strict=True):
            row[name] = item
        if count:
            bought.append(days)

    period = 0
    last = len(WINDOWS)
    for ticket in reversed(tickets):
        while period < last and ticket.at <= starts[period]:
            close(WINDOWS[period])
            period += 1
        changed = True
        items += ticket.quantity
        count += 1
        value += ticket.amount
        if ticket.brands:
            brands |= ticket.brands
        if ticket.categories:
            categories |= ticket.categories
        if ticket.promo_codes:
            promo |= ticket.promo_codes
        if ticket.stores:
            stores |= ticket.stores
    while period < last:
        close(WINDOWS[period])
        period += 1
    close(None)
    return bought


def _strictly_less(values: list[Any]) -> dict[Any, int]:
    """Each distinct value of a sorted list -> how many values are smaller.  O(n)."""
    table: dict[Any, int] = {}
    for index, value in enumerate(values):
        if value not in table:
            table[value] = index
    return table


#: The engines ``compute`` can run (see docs/indicators.md).
ENGINES = ("auto", "python", "polars")
#: What the columnar engine imports beyond the base install (the ``[polars]``
#: extra).  ``"auto"`` falls back when any one of them is missing: the base
#: install must answer, whichever of them a machine happens to have.
COLUMNAR_PACKAGES = ("polars", "numpy")


def compute(
    graph: IdentityGraph, as_of: datetime, engine: str = "auto"
) -> Mapping[ProfileId, dict[str, Any]]:
    """Every indicator of every customer profile, and of every anonymous
    profile with a purchase, at ``as_of``.

    ``engine``: ``"python"`` runs the pure-Python pass below (a ``dict``);
    ``"polars"`` the columnar engine of :mod:`identity_graph.kpis_polars`
    (an :class:`~identity_graph.kpis_polars.Indicators` mapping, equal value
    for value); ``"auto"`` the columnar one when polars is installed and the
    purchases fit its exact range, else the pure-Python one.
    """
    if engine not in ENGINES:
        raise ValueError(f"kpis engine {engine!r} is not one of {', '.join(ENGINES)}")
    # Windows and day counts are instants apart (W x 24 hours): Python would
    # count the wall-clock days of a zone with daylight saving time.
    as_of = as_of.astimezone(UTC)
    if engine == "python":
        return compute_python(graph, as_of)
    try:
        from . import kpis_polars
    except ModuleNotFoundError as error:
        missing = (error.name or "").partition(".")[0]
        if missing not in COLUMNAR_PACKAGES:
            raise
        if engine == "auto":
            return compute_python(graph, as_of)
        raise ModuleNotFoundError(
            f"kpis engine 'polars' needs {missing}, which is not installed: "
            "pip install 'identity-graph[polars]'",
            name=missing,
        ) from None
    try:
        return kpis_polars.compute(graph, as_of)
    except kpis_polars.EngineUnavailable as why:
        if engine == "auto":
            return compute_python(graph, as_of)
        raise ValueError(f"kpis engine 'polars' cannot answer exactly: {why}") from None


def _key(link: Link) -> tuple[str, str]:
    return link.key


def compute_python(graph: IdentityGraph, as_of: datetime) -> dict[ProfileId, dict[str, Any]]:
    """The pure-Python engine: one pass over the ledger, O(p log p + windows × q log q)."""
    as_of = as_of.astimezone(UTC)
    purchases = _purchases_by_profile(graph, as_of)
    profiles: dict[Any, None] = dict.fromkeys(graph._partition.profile_id(c) for c in graph._order)
    # Then the anonymous profiles, in the order of their link keys.
    profiles.update(dict.fromkeys(sorted((p for p in purchases if isinstance(p, Link)), key=_key)))
    template = compute_empty()
    starts = [as_of - timedelta(days=days) for days in WINDOWS]
    result: dict[ProfileId, dict[str, Any]] = {}
    # Per period: (row, recency days, purchases, value) of the profiles that bought.
    active: dict[int | None, list[tuple[dict[str, Any], int, int, Decimal]]] = {
        days: [] for days in _PERIODS
    }
    for profile in profiles:
        row = template.copy()
        result[profile] = row
        tickets = purchases.get(profile)
        if not tickets:
            continue
        first, last = tickets[0], tickets[-1]
        row["First_Purchase_Date"] = first.event.at  # as recorded, in its own zone
        row["Last_Purchase_Date"] = last.event.at
        row["Days_Since_First_Purchase"] = _days(as_of - first.at)
        row["Days_Since_Last_Purchase"] = _days(as_of - last.at)
        row["Last_Purchase_Amount"] = last.amount
        recency = row["Days_Since_Last_Purchase"]
        for days in _windows(row, tickets, starts):
            names = _DAY_NAMES[days]
            active[days].append((row, recency, row[names["Purchases"]], row[names["Value"]]))
        for name, values in _last_fields(last.event).items():
            row[f"Last_Purchase_{name}"] = values
    for days, rows in active.items():
        n = len(rows)
        if not n:
            continue
        recencies = sorted(r for _, r, _, _ in rows)
        # R counts the profiles with a strictly greater recency.
        greater = {r: n - k for r, k in _strictly_greater_end(recencies).items()}
        fewer_f = _strictly_less(sorted(f for _, _, f, _ in rows))
        fewer_m = _strictly_less(sorted(m for _, _, _, m in rows))
        name = _DAY_NAMES[days]["RFM"]
        for row, r, f, m in rows:
            row[name] = (
                f"{1 + 5 * greater[r] // n}{1 + 5 * fewer_f[f] // n}{1 + 5 * fewer_m[m] // n}"
            )
    for row in result.values():
        code = row["Total_RFM"]
        if code is not None:
            row["RFM_Segment"] = rfm_segment(code)
            row["RFM_Group"] = rfm_group(code)
    return result


def _strictly_greater_end(values: list[Any]) -> dict[Any, int]:
    """Each distinct value of a sorted list -> the index just past its last copy."""
    table: dict[Any, int] = {}
    for index, value in enumerate(values):
        table[value] = index + 1
    return table


def compute_one(
    graph: IdentityGraph, as_of: datetime, ref: Ref, engine: str = "auto"
) -> dict[str, Any]:
    """The indicators of ``ref``'s profile.  RFM ranks compare it with every
    profile, so this costs what :func:`compute` costs."""
    profile = graph.resolve(ref)
    every = compute(graph, as_of, engine)
    if profile in every:
        return every[profile]
    # An anonymous profile without purchases: all empty.
    return compute_empty()


def compute_empty() -> dict[str, Any]:
    """The indicators of a profile without purchases."""
    row: dict[str, Any] = {}
    for indicator in INDICATORS:
        if indicator.type == "int":
            row[indicator.name] = 0
        elif indicator.type == "Decimal":
            row[indicator.name] = Decimal(0)
        elif indicator.type.startswith("tuple"):
            row[indicator.name] = ()
        else:
            row[indicator.name] = None
    return row


def indicator_text(value: Any, join: Callable[[Iterable[str]], str] = "|".join) -> str:
    """An indicator's value as the text of a CSV cell (before any formula guard).

    ``None`` is empty, a time is ISO 8601 with its offset, a ``Decimal`` is
    written exactly as it is (``10.50``), a list is ``join`` of its items
    (by default ``|`` between them, as :func:`write_csv` writes it).

    >>> from decimal import Decimal
    >>> indicator_text(None), indicator_text(Decimal("10.50")), indicator_text(("S01", "WEB"))
    ('', '10.50', 'S01|WEB')
    """
    if value is None:
        return ""
    if isinstance(value, tuple):
        return join(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def write_csv(
    result: Mapping[ProfileId, Mapping[str, Any]], path: str | Path, names: str = "plain"
) -> int:
    """Write ``kpis()`` output as CSV: one row per profile (sorted by id), one
    column per indicator, lists joined with ``|``; return the rows written.

    ``names``: the indicators' column names, ``"plain"`` (their own names)
    or ``"icommkt"`` (as the omnichannel platform prints them,
    :data:`ICOMMKT_NAMES`).  The first column is ``Profile_ID`` either way.

    Cells that a spreadsheet would evaluate as a formula (starting with
    ``=``, ``+``, ``-`` or ``@``) are prefixed with ``'``, except numbers.
    """
    if names not in NAMINGS:
        raise ValueError(f"names={names!r} is not one of {', '.join(NAMINGS)}")
    header = NAMINGS[names]
    indicators = [indicator.name for indicator in INDICATORS]
    rows = sorted(result.items(), key=lambda item: str(item[0]))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Profile_ID", *(header[name] for name in indicators)])
        for profile, row in rows:
            cells = [str(profile), *(indicator_text(row[name]) for name in indicators)]
            writer.writerow([_safe(cell) for cell in cells])
    return len(rows)


_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _safe(cell: str) -> str:
    # What a spreadsheet may evaluate starts with one of these; only a plain
    # negative number ("-5.00") is left as it is.
    if cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell
